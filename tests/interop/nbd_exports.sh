#!/usr/bin/env bash
# nbd_exports.sh - one server for the disks of a folder: with dir=DIR,
# `nbdinfo --list` lists every disk under DIR by its path relative to DIR -
# not the extent files of split and flat disks, not raw files, not a symlink
# or a disk whose parent lies outside DIR - and each export serves its
# disk's content; a name that is not such a disk ("", extents, "..", an
# absolute path, the outside parent) is refused and the server stays up.
# On a writable server, a disk that is the parent of another is served
# read-only, a streamOptimized disk read-only, the others writable; the
# connections to one export share one open disk (a write flushed on one is
# read on another at once), closed when the last one leaves.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need nbdinfo nbdcopy qemu-io jq
mk_tmpdir
nbd_setup
nbd_python

say "--- a folder of disks"
mkdir -p lib/A.vmwarevm lib/B out
"$VMDKIT" create lib/A.vmwarevm/A.vmdk 8M
"$VMDKIT" io lib/A.vmwarevm/A.vmdk -c 'write -P 0x11 0 1M' >/dev/null
"$VMDKIT" create -b lib/A.vmwarevm/A.vmdk lib/A.vmwarevm/A-000001.vmdk 8M
"$VMDKIT" io lib/A.vmwarevm/A-000001.vmdk -c 'write -P 0x22 512k 1M' >/dev/null
"$VMDKIT" create -t twoGbMaxExtentSparse lib/B/b.vmdk 8M
"$VMDKIT" io lib/B/b.vmdk -c "write -P 0x33 6M 2M" >/dev/null
"$VMDKIT" create -t monolithicFlat lib/flat.vmdk 4M
"$VMDKIT" io lib/flat.vmdk -c 'write -P 0x44 1M 1M' >/dev/null
"$VMDKIT" convert -t streamOptimized lib/flat.vmdk lib/B/s.vmdk
"$VMDKIT" create out/x.vmdk 8M
"$VMDKIT" create -b out/x.vmdk lib/escape.vmdk 8M
ln -s ../out/x.vmdk lib/link.vmdk
truncate -s 1M lib/raw.img
echo notes >lib/notes.txt
EXPORTS='A.vmwarevm/A-000001.vmdk
A.vmwarevm/A.vmdk
B/b.vmdk
B/s.vmdk
flat.vmdk'
files() { find lib out -type f | sort | while read -r f; do sums_of "$f"; done; }
before=$(files)

say "--- a read-only server"
if start_nbdkit ro.log dir=lib readonly=true; then
    check "nbdinfo --list" nbdinfo --list --json "$URI"
    assert_eq "the exports are the disks under the folder" "$EXPORTS" \
        "$(jq -r '.exports[]."export-name"' "$OUT" | sort)"
    assert_eq "each export is described by its createType and size" \
        "monolithicSparse, 8388608 bytes, a delta of A.vmwarevm/A.vmdk" \
        "$(jq -r '.exports[] | select(."export-name" == "A.vmwarevm/A-000001.vmdk") | .description' "$OUT")"
    while read -r name; do
        rm -f got.raw want.raw
        check "$name: nbdcopy from its export" nbdcopy "$(uri_of "$name")" got.raw
        "$VMDKIT" convert -O raw "lib/$name" want.raw
        assert_true "$name: the export reads what vmdkit convert writes" cmp got.raw want.raw
    done <<<"$EXPORTS"
    for name in "" nope.vmdk ../out/x.vmdk out/x.vmdk /etc/passwd "$TMP/lib/flat.vmdk" \
        B/b-s001.vmdk flat-flat.vmdk raw.img notes.txt escape.vmdk link.vmdk \
        A.vmwarevm/../A.vmwarevm/A.vmdk A.vmwarevm//A.vmdk ./flat.vmdk flat.vmdk/ B; do
        run nbdinfo --size "$(uri_of "$name")"
        assert_true "export \"$name\" is refused (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 125
    done
    assert_true "the refusals name the folder" grep -q 'export "nope.vmdk": not a disk under' ro.log
    assert_true "the server is still up" nbdkit_alive
    check "and serves after the refusals" nbdinfo --size "$(uri_of flat.vmdk)"
    stop_nbdkit
else
    fail "nbdkit serves dir=lib (exit $NBDKIT_RC)"
    cat ro.log
fi
assert_eq "a read-only server changed no file" "$before" "$(files)"

say "--- a writable server"
if start_nbdkit rw.log dir=lib; then
    run nbdinfo --list --json "$URI"
    assert_eq "read-only: the parent and the streamOptimized disk; writable: the others" \
        "A.vmwarevm/A-000001.vmdk false
A.vmwarevm/A.vmdk true
B/b.vmdk false
B/s.vmdk true
flat.vmdk false" "$(jq -r '.exports[] | "\(."export-name") \(.is_read_only)"' "$OUT" | sort)"
    # two connections to one export: a write flushed on one is read on the other
    run nbdsh -c "
a = nbd.NBD(); a.connect_uri('$(uri_of A.vmwarevm/A-000001.vmdk)')
b = nbd.NBD(); b.connect_uri('$(uri_of A.vmwarevm/A-000001.vmdk)')
assert a.can_multi_conn()
a.pwrite(b'\x55' * 70000, 3 << 20)
a.flush()
assert b.pread(70000, 3 << 20) == b'\x55' * 70000, 'the other connection reads the write'
try:
    c = nbd.NBD(); c.connect_uri('$(uri_of A.vmwarevm/A.vmdk)')
    c.pwrite(b'x' * 512, 0)
    print('written')
except nbd.Error as e:
    print('refused')
a.shutdown(); b.shutdown()
print('done')
"
    assert_eq "multi-conn on one export; the parent refuses writes" "refused
done" "$(cat "$OUT")"
    [ "$RC" -eq 0 ] || show_output
    # the last connection left: the disk is closed and unlocked
    check "the disk is unlocked once its connections are gone" \
        qemu-io -f vmdk lib/A.vmwarevm/A-000001.vmdk -c 'read -P 0x55 3M 70000' -c 'read -P 0x22 512k 1M'
    check "qemu-io writes to it beside the running server" qemu-io -f vmdk lib/A.vmwarevm/A-000001.vmdk \
        -c 'write -P 0x66 5M 4096'
    check "a new connection opens it again and reads that write" nbdsh \
        -u "$(uri_of A.vmwarevm/A-000001.vmdk)" -c "assert h.pread(4096, 5 << 20) == b'\x66' * 4096"
    check "the parent is unchanged" qemu-io -r -f vmdk lib/A.vmwarevm/A.vmdk -c 'read -P 0x11 0 1M' \
        -c 'read -P 0 3M 1M'
    stop_nbdkit
else
    fail "nbdkit serves dir=lib read-write (exit $NBDKIT_RC)"
    cat rw.log
fi

say "--- parameters"
if start_nbdkit both.log dir=lib file=lib/flat.vmdk; then
    fail "file= and dir= together are refused"
    stop_nbdkit
else
    assert_true "file= and dir= together are refused" grep -q 'exclusive' both.log
fi
if start_nbdkit notdir.log dir=lib/flat.vmdk; then
    fail "dir= of a file is refused"
    stop_nbdkit
else
    assert_true "dir= of a file is refused" grep -q 'not a directory' notdir.log
fi

nbd_check_logs
finish
