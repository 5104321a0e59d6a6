#!/usr/bin/env bash
# boot.sh - real guests boot from vmdkit disks, over NBD and in QEMU's own
# vmdk driver.  A 64 MiB BIOS disk (MBR, a FAT partition with syslinux, a
# Debian cloud kernel and a busybox initramfs; an ext2 partition holding a
# marker file) is converted to twoGbMaxExtentSparse, made a VM, snapshotted
# and linked-cloned three times (A, B, C).  Clones A and B boot at the same
# time from one nbdkit serving the library with the vmdkit plugin
# (dir=, one export each), clone C boots through QEMU's vmdk driver.  Every
# guest reads the base's marker, writes its own file and 2 MiB of random
# data into the ext2 partition, prints their checksum on the serial console
# and powers off.  Then qemu-img check and vmdkit check find every clone
# clean, the base's files are byte-identical, and each clone holds exactly
# what its guest wrote (debugfs on the partition of `vmdkit convert -O raw`).
# Last, the base is served once, read-only, to two QEMUs at the same time,
# each writing into its own qcow2 overlay whose backing file is the NBD
# export: each overlay holds its guest's data, the base is unchanged.
#
# QEMU runs with -accel tcg (the software emulator: no /dev/kvm needed).
# The kernel and busybox come from `apt-get download` (unpacked with
# dpkg-deb -x, never installed), cached under the build folder in
# boot-cache/ so that later runs need no network.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need qemu-img nbdinfo jq qemu-system-x86_64 syslinux mcopy mkfs.fat sfdisk cpio mke2fs debugfs e2fsck \
    dpkg-deb gzip timeout
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || skip "no /usr/lib/syslinux/mbr/mbr.bin (syslinux-common)"
MODINFO=$(command -v modinfo || echo /sbin/modinfo)
[ -x "$MODINFO" ] || skip "modinfo is not installed (kmod)"
mk_tmpdir
nbd_setup

# The guest's minutes: boot, write, power off.  Generous under a busy
# machine; a guest that hangs ends the test, it does not stall it.
GUEST_TIMEOUT=${VMDKIT_BOOT_TIMEOUT:-120}
# section TITLE: a heading with the seconds since the test began.
section() { say "--- $* (at ${SECONDS} s)"; }

# --- kernel, modules and busybox (cached) ----------------------------------

CACHE=${VMDKIT_BUILD_DIR:+$VMDKIT_BUILD_DIR/boot-cache}
CACHE=${CACHE:-$TMP/boot-cache}
# The initramfs needs the virtio PCI transport and the virtio disk driver;
# their dependencies are read from the modules themselves.
ROOT_MODULES="virtio_pci virtio_blk"

# fetch_guest_files DIR: download the current cloud kernel and busybox-static
# into DIR (made under a temporary name, renamed when complete): vmlinuz,
# busybox, modules/NAME.ko and modules.order (dependencies first).
fetch_guest_files() {
    local dir=$1 work=$1.part.$$ kpkg deb kver m
    rm -rf "$work"
    mkdir -p "$work/deb" "$work/x" "$work/modules" || return 1
    # linux-image-cloud-amd64 depends on the current versioned package
    kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
    if [ -z "$kpkg" ]; then
        say "no package linux-image-cloud-amd64 in apt's lists (apt-get update?)"
        rm -rf "$work"
        return 2
    fi
    if ! (cd "$work/deb" && apt-get download "$kpkg" busybox-static) >"$work/apt.log" 2>&1; then
        say "apt-get download $kpkg busybox-static failed:"
        tail -n 3 "$work/apt.log" | sed 's/^/    /'
        rm -rf "$work"
        return 2
    fi
    for deb in "$work"/deb/*.deb; do
        dpkg-deb -x "$deb" "$work/x" || return 1
    done
    cp "$work"/x/boot/vmlinuz-* "$work/vmlinuz" || return 1
    cp "$work/x/bin/busybox" "$work/busybox" || return 1
    kver=$(basename "$work"/x/lib/modules/*)
    # module_order NAME: NAME's dependencies (from its depends= field), then NAME
    module_order() {
        local f d
        grep -qx "$1" "$work/modules.order" 2>/dev/null && return 0
        f=$(find "$work/x/lib/modules/$kver" -name "$1.ko*" | head -n 1)
        [ -n "$f" ] || { say "module $1 is not in $kpkg"; return 1; }
        for d in $("$MODINFO" -F depends "$f" | tr ',' ' '); do
            module_order "$d" || return 1
        done
        case $f in
        *.ko.xz) xz -dc "$f" >"$work/modules/$1.ko" ;;
        *.ko.zst) zstd -dqc "$f" >"$work/modules/$1.ko" ;;
        *.ko.gz) gzip -dc "$f" >"$work/modules/$1.ko" ;;
        *) cp "$f" "$work/modules/$1.ko" ;;
        esac || return 1
        echo "$1" >>"$work/modules.order"
    }
    for m in $ROOT_MODULES; do module_order "$m" || return 1; done
    echo "$kpkg" >"$work/kernel-package"
    rm -rf "$work/deb" "$work/x" "$work/apt.log"
    rm -rf "$dir"
    mv "$work" "$dir"
}

if [ ! -f "$CACHE/kernel-package" ]; then
    need apt-get apt-cache
    say "--- downloading the guest's kernel and busybox into $CACHE"
    mkdir -p "$(dirname "$CACHE")"
    fetch_guest_files "$CACHE"
    case $? in
    0) ;;
    2) skip "the guest's packages cannot be downloaded (see above)" ;;
    *) say "FAIL: $TEST_NAME: unpacking the guest's packages failed"; exit 1 ;;
    esac
fi
say "guest kernel: $(cat "$CACHE/kernel-package"); modules: $(tr '\n' ' ' <"$CACHE/modules.order")"

# --- the bootable disk -----------------------------------------------------

# Layout (sectors of 512 bytes): MBR; FAT16 boot partition at 2048 (32 MiB);
# ext2 data partition after it; the last MiB of the 64 MiB disk in no
# partition: the snapshot's delta gets data there, which every guest reads.
P1_START=2048 P1_SECTORS=65536
P2_START=$((P1_START + P1_SECTORS))
DISK_SECTORS=131072
TAIL_START=$((DISK_SECTORS - 2048))
P2_SECTORS=$((TAIL_START - P2_START))
MARKER=golden-$(random_bytes 15 16 | xxd -p)

mkdir -p initramfs/bin initramfs/lib/modules initramfs/proc initramfs/sys initramfs/dev initramfs/mnt
cp "$CACHE/busybox" initramfs/bin/busybox
cp "$CACHE"/modules/*.ko initramfs/lib/modules/
cp "$CACHE/modules.order" initramfs/modules.order
echo $TAIL_START >initramfs/tail.start
# The guest: its name is the SMBIOS serial number QEMU gives it.  Every
# line for the test starts with VMDKIT-GUEST; RESULT is printed only when
# the file system was written and unmounted.
cat >initramfs/init <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
say() { echo "VMDKIT-GUEST $*"; }
die() { say "ERROR $*"; poweroff -f; }
for m in $(cat /modules.order); do
    insmod /lib/modules/$m.ko || die "insmod $m"
done
name=$(cat /sys/class/dmi/id/product_serial)
say "START $name"
n=0
while [ ! -b /dev/vda2 ]; do
    n=$((n + 1))
    [ $n -gt 300 ] && die "no /dev/vda2"
    sleep 0.1
done
mount -t ext4 /dev/vda2 /mnt || die "mount /dev/vda2"
marker=$(cat /mnt/marker) || die "read /mnt/marker"
tail=$(dd if=/dev/vda bs=512 skip=$(cat /tail.start) count=2048 2>/dev/null | sha256sum) ||
    die "read the last MiB of /dev/vda"
echo "$name read $marker" >/mnt/$name.txt || die "write /mnt/$name.txt"
head -c 2097152 /dev/urandom >/mnt/$name.bin || die "write /mnt/$name.bin"
sum=$(sha256sum /mnt/$name.bin) || die "sha256sum"
umount /mnt || die "umount /mnt"
say "RESULT $name marker=$marker tail=${tail%% *} bin=${sum%% *}"
poweroff -f
EOF
chmod 755 initramfs/init
(cd initramfs && find . | cpio -o -H newc --quiet) | gzip -1 >initrd.gz

cat >syslinux.cfg <<'EOF'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz console=ttyS0 panic=-1 quiet
EOF

mkdir data
echo "$MARKER" >data/marker
build_disk() {
    truncate -s $((DISK_SECTORS * 512)) disk.raw &&
        printf 'label: dos\nstart=%d, size=%d, type=6, bootable\nstart=%d, size=%d, type=83\n' \
            $P1_START $P1_SECTORS $P2_START $P2_SECTORS | sfdisk -q disk.raw &&
        dd if=/usr/lib/syslinux/mbr/mbr.bin of=disk.raw bs=440 count=1 conv=notrunc status=none &&
        mkfs.fat -F 16 -n VMDKITBOOT --offset $P1_START disk.raw $((P1_SECTORS / 2)) >/dev/null &&
        mcopy -i disk.raw@@$((P1_START * 512)) "$CACHE/vmlinuz" ::/vmlinuz &&
        mcopy -i disk.raw@@$((P1_START * 512)) initrd.gz syslinux.cfg ::/ &&
        syslinux --install --offset $((P1_START * 512)) disk.raw &&
        mke2fs -q -t ext2 -b 1024 -L data -d data data.img $((P2_SECTORS / 2)) &&
        dd if=data.img of=disk.raw bs=512 seek=$P2_START conv=notrunc status=none
}
check "a bootable 64 MiB disk: MBR, syslinux on FAT16, an ext2 partition with the marker" build_disk

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

# guest NAME DRIVE-OPTIONS: boot a guest whose SMBIOS serial is NAME, the
# serial console in NAME.console (in the background: the pid in GUEST_PID).
guest() {
    local name=$1
    shift
    timeout "$GUEST_TIMEOUT" qemu-system-x86_64 -accel tcg -m 256 -nodefaults -nographic \
        -no-reboot -serial file:"$name.console" -monitor none -smbios type=1,serial="$name" \
        -drive "$1",if=virtio >"$name.qemu.log" 2>&1 &
    GUEST_PID=$!
}

# guest_result NAME QEMU-STATUS: the guest ran to its end, and its RESULT
# line; sets GUEST_SUM to the checksum it printed of its random data.
guest_result() {
    local name=$1 rc=$2 line
    line=$(tr -d '\r' <"$name.console" 2>/dev/null | grep -a "^VMDKIT-GUEST RESULT $name " | tail -n 1)
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
section "clones A and B at the same time, from one nbdkit serving the library (dir=lib)"
if start_nbdkit lib.log dir=lib; then
    guest A "file=$(uri_of A.vmwarevm/A.vmdk),format=raw"
    pid_a=$GUEST_PID
    guest B "file=$(uri_of B.vmwarevm/B.vmdk),format=raw"
    pid_b=$GUEST_PID
    wait $pid_a
    rc_a=$?
    wait $pid_b
    rc_b=$?
    guest_result A $rc_a && SUM[A]=$GUEST_SUM
    guest_result B $rc_b && SUM[B]=$GUEST_SUM
    assert_true "the server is still up" nbdkit_alive
    stop_nbdkit
else
    fail "nbdkit serves dir=lib (exit $NBDKIT_RC)"
    cat lib.log
fi

section "clone C through QEMU's vmdk driver"
guest C "file=lib/C.vmwarevm/C.vmdk,format=vmdk"
wait $GUEST_PID
rc_c=$?
guest_result C $rc_c && SUM[C]=$GUEST_SUM

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
            qemu-img create -q -f qcow2 -b "$URI" -F raw $g.qcow2 $((DISK_SECTORS * 512))
    done
    guest G1 "file=G1.qcow2,format=qcow2"
    pid_1=$GUEST_PID
    guest G2 "file=G2.qcow2,format=qcow2"
    pid_2=$GUEST_PID
    wait $pid_1
    rc_1=$?
    wait $pid_2
    rc_2=$?
    guest_result G1 $rc_1 && SUM[G1]=$GUEST_SUM
    guest_result G2 $rc_2 && SUM[G2]=$GUEST_SUM
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
