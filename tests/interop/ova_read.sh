#!/usr/bin/env bash
# ova_read.sh - the disk inside an OVA read in place: info, map, convert,
# compare and the nbdkit plugin take FILE.ova (its first disk) or
# FILE.ova/NAME.vmdk and read the member where it lies in the archive,
# which stays byte-identical; writes, a gzip member and a missing member
# are refused with their exit codes.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img tar gzip
mk_tmpdir

# ---- a machine with two disks, exported ------------------------------------
mkdir M.vmwarevm
"$VMDKIT" create M.vmwarevm/M.vmdk 24M >/dev/null
"$VMDKIT" create -t twoGbMaxExtentSparse M.vmwarevm/Data.vmdk 16M >/dev/null
"$VMDKIT" io M.vmwarevm/M.vmdk -c 'write -P 0xab 1M 3M' -c 'write -P 0x11 20M 64k' -c 'write -P 0x7e 24575k 1k' >/dev/null
"$VMDKIT" io M.vmwarevm/Data.vmdk -c 'write -P 0x5c 0 1M' -c 'write -P 0x3d 15M 512' >/dev/null
cat >M.vmwarevm/M.vmx <<'VMX'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "M"
guestOS = "ubuntu-64"
memsize = "1024"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "M.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "Data.vmdk"
VMX
check "ova export" "$VMDKIT" ova export M.vmwarevm M.ova
assert_eq "the archive holds two disks" "M.ovf M.mf M-disk1.vmdk M-disk2.vmdk" \
    "$(tar tf M.ova | tr '\n' ' ' | sed 's/ $//')"
before=$(sha256 M.ova)

# the map's runs and kinds, without the file column
runs() { "$VMDKIT" map "$1" | awk 'NR > 1 { print $1, $2, $3 }'; }

say "--- the first disk: FILE.ova"
check "info M.ova" "$VMDKIT" info M.ova
assert_true "info: the first disk, streamOptimized, 24 MiB" \
    grep -q 'virtual size: 24 MiB (25165824 bytes)' "$OUT"
assert_true "info: its create type" grep -q 'create type: streamOptimized' "$OUT"
assert_eq "info: the extent's file is the member's bytes, not the whole archive" \
    "$(tar tvf M.ova M-disk1.vmdk | awk '{ printf "%d", int(($3 + 511) / 512) * 512 }')" \
    "$(sed -n 's/.*SPARSE "M-disk1.vmdk".* file \([0-9]*\) bytes.*/\1/p' "$OUT")"
check "map M.ova" "$VMDKIT" map M.ova
assert_eq "map: the same runs as the source disk" "$(runs M.vmwarevm/M.vmdk)" "$(runs M.ova)"
check "convert M.ova to raw" "$VMDKIT" convert M.ova m.raw -O raw
check "qemu-img compare: the converted disk is the source disk" qemu-img compare -q m.raw M.vmwarevm/M.vmdk
check "convert M.ova to monolithicSparse" "$VMDKIT" convert M.ova m.vmdk
check "qemu-img compare: that one too" qemu-img compare -q m.vmdk M.vmwarevm/M.vmdk

say "--- another disk: FILE.ova/NAME.vmdk"
check "compare M.ova/M-disk2.vmdk with the source disk" "$VMDKIT" compare M.ova/M-disk2.vmdk M.vmwarevm/Data.vmdk
check "map M.ova/M-disk2.vmdk" "$VMDKIT" map M.ova/M-disk2.vmdk
assert_eq "map: the second disk's runs" "$(runs M.vmwarevm/Data.vmdk)" "$(runs M.ova/M-disk2.vmdk)"
check "convert M.ova/M-disk2.vmdk to raw" "$VMDKIT" convert -O raw M.ova/M-disk2.vmdk d.raw
check "qemu-img compare: the second disk" qemu-img compare -q d.raw M.vmwarevm/Data.vmdk
check "info M.ova/M-disk1.vmdk names the first disk too" "$VMDKIT" info M.ova/M-disk1.vmdk
assert_true "info: 24 MiB" grep -q 'virtual size: 24 MiB' "$OUT"

say "--- refusals"
expect_exit 9 "a write into the OVA is refused (read-only)" "$VMDKIT" io M.ova -c 'write -P 1 0 512' &&
    assert_err_line "write" && assert_true "the message says why" grep -q 'a disk inside an OVA is read-only; import it' "$ERR"
expect_exit 9 "a write into a named member is refused" "$VMDKIT" io M.ova/M-disk2.vmdk -c 'write -P 1 0 512'
expect_exit 6 "a member that does not exist" "$VMDKIT" info M.ova/nope.vmdk &&
    assert_err_line "missing member" && assert_true "the message names it" grep -q 'M.ova: nope.vmdk: not a member of the archive' "$ERR"
expect_exit 4 "a member that is not a disk" "$VMDKIT" info M.ova/M.ovf && assert_err_line "not a disk"
expect_exit 6 "FILE.ova/NAME when FILE.ova does not exist" "$VMDKIT" info none.ova/x.vmdk
mkdir gz
tar -xf M.ova -C gz
gzip -n gz/M-disk1.vmdk && mv gz/M-disk1.vmdk.gz gz/M-disk1.vmdk
tar --format=ustar -cf gz.ova -C gz M.ovf M.mf M-disk1.vmdk M-disk2.vmdk
expect_exit 5 "a gzip-compressed member cannot be read in place" "$VMDKIT" info gz.ova &&
    assert_err_line "gzip" && assert_true "the message names the member and the way out" \
        grep -q 'gz.ova: member M-disk1.vmdk is gzip-compressed and cannot be read in place; use vmdkit ova import' "$ERR"
check "the plain member beside it still reads" "$VMDKIT" compare gz.ova/M-disk2.vmdk M.vmwarevm/Data.vmdk
tar -cf noDisk.ova -C gz M.ovf M.mf
expect_exit 6 "an archive without a .vmdk member" "$VMDKIT" info noDisk.ova && assert_err_line "no disk"

say "--- the nbdkit plugin"
if command -v nbdkit >/dev/null && command -v nbdcopy >/dev/null && [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ]; then
    nbd_setup
    if start_nbdkit ro.log file=M.ova readonly=true; then
        check "nbdcopy from file=M.ova" nbdcopy "$URI" got.raw
        assert_true "the export reads the first disk's bytes" cmp got.raw m.raw
        py=$(for p in python3 /usr/bin/python3; do "$p" -c 'import nbd' 2>/dev/null && echo "$p" && break; done)
        if [ -n "$py" ]; then
            assert_eq "nbdsh: read-only, 0xab at 1 MiB, 0x7e in the last KiB, zeros at 8 MiB" "True abab 7e7e 0000" \
                "$("$py" -m nbd -u "$URI" -c 'print(h.is_read_only() == 1, h.pread(2, 1 << 20).hex(), h.pread(2, (24 << 20) - 1024).hex(), h.pread(2, 8 << 20).hex())')"
        else
            say "skip: no python3 nbd module: nbdsh not run"
        fi
        stop_nbdkit
    else
        fail "nbdkit did not serve file=M.ova: $(tail -n 3 ro.log)"
    fi
    if start_nbdkit ro2.log file=M.ova/M-disk2.vmdk readonly=true; then
        check "nbdcopy from file=M.ova/M-disk2.vmdk" nbdcopy "$URI" got2.raw
        assert_true "the export reads the second disk's bytes" cmp got2.raw d.raw
        stop_nbdkit
    else
        fail "nbdkit did not serve file=M.ova/M-disk2.vmdk: $(tail -n 3 ro2.log)"
    fi
    if start_nbdkit rw.log file=M.ova; then
        fail "a writable server of file=M.ova started"
        stop_nbdkit
    else
        assert_true "without readonly=true the plugin refuses, saying how to serve it" \
            grep -q 'a disk inside an OVA is read-only; import it (vmdkit ova import) (serve it with readonly=true)' rw.log
    fi
    nbd_check_logs
else
    say "skip: nbdkit, nbdcopy or the plugin is missing: the plugin part is not run"
fi

assert_eq "the archive is byte-identical after all of this" "$before" "$(sha256 M.ova)"
finish
