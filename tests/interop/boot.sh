#!/usr/bin/env bash
# boot.sh - real guests boot from vmdkit disks, over NBD and in QEMU's own
# vmdk driver (the guest: tests/interop/guest_disk.bash).  The 64 MiB BIOS
# disk (syslinux, a Debian cloud kernel, a busybox initramfs; an ext2
# partition holding a marker file) is converted to twoGbMaxExtentSparse and
# made a VM; after its snapshot the VM writes the disk's last MiB, and three
# linked clones (A, B, C) freeze that delta and read through it to the base.
# Clones A and B boot at the same time from one nbdkit serving the library
# with the vmdkit plugin (dir=, one export each); clone C boots beside them
# through QEMU's vmdk driver, reading the base files the plugin holds.  Every guest reads the marker and the last MiB, writes
# its own file and 2 MiB of random data into the ext2 partition, prints
# their checksums on the serial console and powers off.  Then qemu-img
# check and vmdkit check find every disk clean, the files the clones depend
# on are byte-identical, and each clone holds exactly what its guest wrote
# (e2fsck and debugfs on the partition of `vmdkit convert -O raw`).  Last,
# the frozen snapshot is served once, read-only, to two QEMUs at the same
# time, each writing into its own qcow2 overlay whose backing file is the
# NBD export: each overlay holds its guest's data, the golden image is
# unchanged.  A plugin that serves these disks read-only fails the test.
#
# QEMU always runs with -accel tcg (the emulator; /dev/kvm is not used).
# The kernel and busybox come from `apt-get download` (unpacked, never
# installed) and are kept in boot-cache/ under the build folder, so later
# runs need no network.  18-22 s on 2 quiet cores, up to 2 minutes on busy ones.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need qemu-img nbdinfo jq debugfs e2fsck xxd
. "$(dirname "${VMDKIT_TESTLIB:-$0}")/guest_disk.bash"
guest_tools_or_skip
mk_tmpdir
nbd_setup

# section TITLE: a heading with the seconds since the test began.
section() { say "--- $* (at ${SECONDS} s)"; }

guest_files "${VMDKIT_BUILD_DIR:-$TMP}/boot-cache"
P2_START=$GUEST_P2_START P2_SECTORS=$GUEST_P2_SECTORS TAIL_START=$GUEST_TAIL_START
MARKER=golden-$(random_bytes 15 16 | xxd -p)
check "a bootable 64 MiB disk: MBR, syslinux on FAT16, an ext2 partition with the marker" \
    guest_disk disk.raw "$MARKER"

# --- the VM, its snapshot and three linked clones --------------------------

mkdir lib
B=lib/Base.vmwarevm
mkdir $B
check "vmdkit convert to twoGbMaxExtentSparse" \
    "$VMDKIT" convert -f raw -t twoGbMaxExtentSparse disk.raw $B/Base.vmdk
cat >$B/Base.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "Base"
guestOS = "debian12-64"
memsize = "256"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "Base.vmdk"
EOF
check "vmdkit snapshot of the VM" "$VMDKIT" snapshot --name installed $B
# What the VM wrote after its snapshot: the clones freeze this delta and
# read through it to the base.
check "data in the snapshot's delta (the last MiB of the disk)" "$VMDKIT" io $B/Base-000001.vmdk \
    -c "write -P 0x5a $((TAIL_START * 512)) 700k" -c "write -P 0xa5 $((TAIL_START * 512 + 700 * 1024)) 324k"
TAIL_SUM=$({ head -c $((700 * 1024)) /dev/zero | tr '\0' '\132'
    head -c $((324 * 1024)) /dev/zero | tr '\0' '\245'; } | sha256sum | cut -d' ' -f1)
for c in A B C; do
    check "vmdkit clone --linked $c" "$VMDKIT" clone --linked $B lib/$c.vmwarevm
done
for c in A B C; do
    run qemu-img info --backing-chain --output=json lib/$c.vmwarevm/$c.vmdk
    assert_eq "clone $c: qemu-img follows clone -> snapshot -> base" \
        "$c.vmdk Base-000001.vmdk Base.vmdk" \
        "$(jq -r '[.[].filename | split("/")[-1]] | join(" ")' "$OUT")"
done
# Every file the clones read through; the source VM's current delta too.
base_files() { sums_of $B/*.vmdk; }
BASE_SUMS=$(base_files)

# --- boots -----------------------------------------------------------------

# guest_ran NAME QEMU-STATUS: the guest ran to its end and read what the
# base holds; sets GUEST_SUM to the checksum it printed of its random data.
guest_ran() {
    local name=$1 rc=$2 line
    line=$(guest_result "$name")
    GUEST_SUM=${line##*bin=}
    if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
        pass "guest $name booted, wrote its files and powered off"
        assert_eq "guest $name read the base's marker" "$MARKER" \
            "$(sed -n 's/.* marker=\([^ ]*\) .*/\1/p' <<<"$line")"
        assert_eq "guest $name read the snapshot's last MiB (sha256)" "$TAIL_SUM" \
            "$(sed -n 's/.* tail=\([^ ]*\) .*/\1/p' <<<"$line")"
        return 0
    fi
    fail "guest $name: qemu exit $rc$([ "$rc" -eq 124 ] && echo ' (timeout)'), no RESULT line"
    say "       qemu:"
    tail -n 5 "$name.qemu.log" | sed 's/^/         /'
    say "       console:"
    tr -d '\r' <"$name.console" 2>/dev/null | tail -n 15 | sed 's/^/         /'
    return 1
}

# partition_of DISK OUT: the ext2 partition of a disk, through qemu-img's
# or vmdkit's reading (by extension: .vmdk with vmdkit, others qemu-img).
partition_of() {
    case $1 in
    *.vmdk) "$VMDKIT" convert -O raw "$1" "$2.whole" ;;
    *) qemu-img convert -O raw "$1" "$2.whole" ;;
    esac || return 1
    dd if="$2.whole" of="$2" bs=512 skip=$P2_START count=$P2_SECTORS status=none
    rm -f "$2.whole"
}

# files_of PART: the names in the root folder of an ext2 image, sorted.
files_of() { debugfs -R 'ls -p /' "$1" 2>/dev/null | awk -F/ 'NF > 5 && $6 !~ /^\.\.?$/ {print $6}' | sort; }

# holds_guest_data NAME DISK: the data partition of DISK passes e2fsck and
# holds the marker and exactly guest NAME's two files, as it printed them.
holds_guest_data() {
    local name=$1 disk=$2 part=$1.part
    if ! partition_of "$disk" "$part"; then
        fail "$name: reading the data partition of $disk"
        return 1
    fi
    check "$name: e2fsck finds the data partition clean" e2fsck -fn "$part"
    assert_eq "$name: the partition holds the marker and only its guest's files" \
        "$(printf '%s\n' $name.bin $name.txt lost+found marker)" "$(files_of "$part")"
    assert_eq "$name: $name.txt says what the guest read" "$name read $MARKER" \
        "$(debugfs -R "cat /$name.txt" "$part" 2>/dev/null)"
    debugfs -R "cat /$name.bin" "$part" >"$name.bin" 2>/dev/null
    assert_eq "$name: $name.bin is the guest's 2 MiB, byte for byte (sha256)" \
        "2097152 $GUEST_SUM" "$(file_size "$name.bin") $(sha256 "$name.bin")"
    rm -f "$part" "$name.bin"
}

declare -A SUM
section "clones A and B at the same time from one nbdkit serving the library (dir=lib), C beside them through QEMU's vmdk driver"
# C reads the base files the plugin holds open for A and B: the plugin's
# read locks let a QEMU reader in, as QEMU's own readers do
if start_nbdkit lib.log dir=lib; then
    guest_boot A "file=$(uri_of A.vmwarevm/A.vmdk),format=raw"
    pid_a=$GUEST_PID
    guest_boot B "file=$(uri_of B.vmwarevm/B.vmdk),format=raw"
    pid_b=$GUEST_PID
    guest_boot C "file=lib/C.vmwarevm/C.vmdk,format=vmdk"
    pid_c=$GUEST_PID
    wait $pid_a
    rc_a=$?
    wait $pid_b
    rc_b=$?
    wait $pid_c
    rc_c=$?
    guest_ran A $rc_a && SUM[A]=$GUEST_SUM
    guest_ran B $rc_b && SUM[B]=$GUEST_SUM
    guest_ran C $rc_c && SUM[C]=$GUEST_SUM
    assert_true "the server is still up" nbdkit_alive
    stop_nbdkit
else
    fail "nbdkit serves dir=lib (exit $NBDKIT_RC)"
    cat lib.log
fi

section "the disks after the boots"
for c in A B C; do
    check "qemu-img check $c" qemu-img check lib/$c.vmwarevm/$c.vmdk
    check "vmdkit check $c" "$VMDKIT" check lib/$c.vmwarevm/$c.vmdk
done
check "vmdkit check the base VM's disk" "$VMDKIT" check $B/Base.vmdk
assert_eq "the base's files are byte-identical (sha256)" "$BASE_SUMS" "$(base_files)"
for c in A B C; do
    if [ -n "${SUM[$c]:-}" ]; then
        GUEST_SUM=${SUM[$c]}
        holds_guest_data $c lib/$c.vmwarevm/$c.vmdk
    fi
done
partition_of $B/Base-000001.vmdk base.part
assert_eq "the snapshot's partition holds only the marker" "$(printf '%s\n' lost+found marker)" \
    "$(files_of base.part)"

section "one golden image (the frozen snapshot) served read-only to two QEMUs, each with its own qcow2 overlay"
if start_nbdkit golden.log file=$B/Base-000001.vmdk readonly=true; then
    run nbdinfo --json "$URI"
    assert_eq "the golden export is read-only, with multi-conn" "true true" \
        "$(jq -r '.exports[0] | "\(.is_read_only) \(.can_multi_conn)"' "$OUT")"
    for g in G1 G2; do
        check "qcow2 overlay for $g backed by the NBD export" \
            qemu-img create -q -f qcow2 -b "$URI" -F raw $g.qcow2 $((GUEST_DISK_SECTORS * 512))
    done
    guest_boot G1 "file=G1.qcow2,format=qcow2"
    pid_1=$GUEST_PID
    guest_boot G2 "file=G2.qcow2,format=qcow2"
    pid_2=$GUEST_PID
    wait $pid_1
    rc_1=$?
    wait $pid_2
    rc_2=$?
    guest_ran G1 $rc_1 && SUM[G1]=$GUEST_SUM
    guest_ran G2 $rc_2 && SUM[G2]=$GUEST_SUM
    for g in G1 G2; do
        check "qemu-img check $g's overlay" qemu-img check $g.qcow2
        if [ -n "${SUM[$g]:-}" ]; then
            GUEST_SUM=${SUM[$g]}
            holds_guest_data $g $g.qcow2
        fi
    done
    assert_true "the golden server is still up" nbdkit_alive
    stop_nbdkit
else
    fail "nbdkit serves the golden image read-only (exit $NBDKIT_RC)"
    cat golden.log
fi
assert_eq "the base's files are byte-identical after the golden boots (sha256)" "$BASE_SUMS" \
    "$(base_files)"
nbd_check_logs
finish
