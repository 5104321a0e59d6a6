# guest_disk.bash - a small BIOS guest for QEMU, shared by the boot test
# and bench/run (sourced after lib.sh, never run).
#
#     guest_tools_or_skip        skip (lib.sh) when a tool is missing
#     guest_files CACHE          kernel, busybox, modules in CACHE (downloaded once)
#     guest_disk DISK MARKER     a 64 MiB bootable raw disk
#     guest_boot NAME DRIVE      boot it in the background (GUEST_PID)
#     guest_result NAME          its RESULT line, once it powered off
#
# The disk: an MBR (syslinux's mbr.bin); a FAT16 partition with syslinux
# (its mtools flavour writes the unmounted image at an offset), a Debian
# cloud kernel and a busybox initramfs; an ext2 partition holding the file
# `marker`; the last MiB in no partition.  The guest's init loads the virtio
# modules, mounts the ext2 partition, reads the marker and the sha256 of the
# disk's last MiB, writes NAME.txt and 2 MiB of random data in NAME.bin
# (NAME: the SMBIOS serial number QEMU gives it), unmounts, prints
#     VMDKIT-GUEST RESULT NAME marker=M tail=SHA256 bin=SHA256
# on the serial console and powers off.  Errors print VMDKIT-GUEST ERROR.
#
# The kernel (linux-image-*-cloud-amd64) and busybox-static come from
# `apt-get download`, unpacked with dpkg-deb -x, never installed.  QEMU runs
# with -accel tcg: the emulator, which needs no /dev/kvm.

# Layout, in sectors of 512 bytes.
GUEST_P1_START=2048
GUEST_P1_SECTORS=65536
GUEST_P2_START=$((GUEST_P1_START + GUEST_P1_SECTORS))
GUEST_DISK_SECTORS=131072
GUEST_TAIL_START=$((GUEST_DISK_SECTORS - 2048))
GUEST_P2_SECTORS=$((GUEST_TAIL_START - GUEST_P2_START))
GUEST_TIMEOUT=${VMDKIT_BOOT_TIMEOUT:-120} # seconds for one boot, write and power-off
GUEST_MBR=/usr/lib/syslinux/mbr/mbr.bin
# The virtio PCI transport and disk driver; what they depend on is read
# from the modules (depends=), since it changes with the kernel version.
GUEST_ROOT_MODULES="virtio_pci virtio_blk"

guest_tools_or_skip() {
    need qemu-system-x86_64 syslinux mcopy mkfs.fat sfdisk cpio mke2fs dpkg-deb gzip timeout
    [ -f "$GUEST_MBR" ] || skip "no $GUEST_MBR (syslinux-common)"
    GUEST_MODINFO=$(command -v modinfo || echo /sbin/modinfo)
    [ -x "$GUEST_MODINFO" ] || skip "modinfo is not installed (kmod)"
}

# guest_fetch DIR: download the current cloud kernel and busybox-static into
# DIR (built under a temporary name, renamed when complete): vmlinuz,
# busybox, modules/NAME.ko, modules.order (dependencies first) and
# kernel-package.  Returns 2 when the packages cannot be downloaded.
guest_fetch() {
    local dir=$1 work=$1.part.$$ kpkg deb kver m
    rm -rf "$work"
    mkdir -p "$work/deb" "$work/x" "$work/modules" || return 1
    # the meta-package depends on the current versioned kernel package
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
    # module_order NAME: NAME's dependencies, then NAME
    module_order() {
        local f d
        grep -qx "$1" "$work/modules.order" 2>/dev/null && return 0
        f=$(find "$work/x/lib/modules/$kver" -name "$1.ko*" | head -n 1)
        [ -n "$f" ] || { say "module $1 is not in $kpkg"; return 1; }
        for d in $("$GUEST_MODINFO" -F depends "$f" | tr ',' ' '); do
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
    for m in $GUEST_ROOT_MODULES; do module_order "$m" || return 1; done
    echo "$kpkg" >"$work/kernel-package"
    rm -rf "$work/deb" "$work/x" "$work/apt.log"
    rm -rf "$dir"
    mv "$work" "$dir"
}

# guest_files CACHE: make sure CACHE holds the guest's files (downloading
# them the first time); skips when they cannot be downloaded.
guest_files() {
    GUEST_FILES=$1
    if [ ! -f "$GUEST_FILES/kernel-package" ]; then
        need apt-get apt-cache
        say "downloading the guest's kernel and busybox into $GUEST_FILES"
        mkdir -p "$(dirname "$GUEST_FILES")"
        guest_fetch "$GUEST_FILES"
        case $? in
        0) ;;
        2) skip "the guest's packages cannot be downloaded (see above)" ;;
        *) say "FAIL: $TEST_NAME: unpacking the guest's packages failed"; exit 1 ;;
        esac
    fi
    say "guest kernel: $(cat "$GUEST_FILES/kernel-package"); modules: $(tr '\n' ' ' <"$GUEST_FILES/modules.order")"
}

# quiet_unless_failed LOG CMD...: run CMD with its output in LOG, shown only
# when it fails (mkfs.fat warns that the image is larger than the partition
# it makes, mke2fs -d names the image it creates).
quiet_unless_failed() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 && return 0
    cat "$log" >&2
    return 1
}

# guest_disk DISK MARKER: the bootable raw disk (in DISK's folder: DISK.d
# holds the initramfs and partition images while it is built).
guest_disk() {
    local disk=$1 w=$1.d
    rm -rf "$w"
    mkdir -p "$w"/initramfs/{bin,lib/modules,proc,sys,dev,mnt} "$w/data" || return 1
    cp "$GUEST_FILES/busybox" "$w/initramfs/bin/busybox" &&
        cp "$GUEST_FILES"/modules/*.ko "$w/initramfs/lib/modules/" &&
        cp "$GUEST_FILES/modules.order" "$w/initramfs/modules.order" &&
        echo "$GUEST_TAIL_START" >"$w/initramfs/tail.start" || return 1
    cat >"$w/initramfs/init" <<'EOF'
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
    chmod 755 "$w/initramfs/init"
    (cd "$w/initramfs" && find . | cpio -o -H newc --quiet) | gzip -1 >"$w/initrd.gz" || return 1
    printf '%s\n' 'DEFAULT linux' 'PROMPT 0' 'TIMEOUT 0' 'LABEL linux' '  KERNEL /vmlinuz' \
        '  APPEND initrd=/initrd.gz console=ttyS0 panic=-1 quiet' >"$w/syslinux.cfg"
    echo "$2" >"$w/data/marker"
    local fat=$disk@@$((GUEST_P1_START * 512))
    rm -f "$disk"
    truncate -s $((GUEST_DISK_SECTORS * 512)) "$disk" &&
        printf 'label: dos\nstart=%d, size=%d, type=6, bootable\nstart=%d, size=%d, type=83\n' \
            $GUEST_P1_START $GUEST_P1_SECTORS $GUEST_P2_START $GUEST_P2_SECTORS | sfdisk -q "$disk" &&
        dd if="$GUEST_MBR" of="$disk" bs=440 count=1 conv=notrunc status=none &&
        quiet_unless_failed "$w/log" mkfs.fat -F 16 -n VMDKITBOOT --offset $GUEST_P1_START "$disk" \
            $((GUEST_P1_SECTORS / 2)) &&
        mcopy -i "$fat" "$GUEST_FILES/vmlinuz" ::/vmlinuz &&
        mcopy -i "$fat" "$w/initrd.gz" "$w/syslinux.cfg" ::/ &&
        syslinux --install --offset $((GUEST_P1_START * 512)) "$disk" &&
        quiet_unless_failed "$w/log" mke2fs -q -t ext2 -b 1024 -L data -d "$w/data" "$w/data.img" \
            $((GUEST_P2_SECTORS / 2)) &&
        dd if="$w/data.img" of="$disk" bs=512 seek=$GUEST_P2_START conv=notrunc status=none || return 1
    rm -rf "$w"
}

# guest_boot NAME DRIVE-OPTIONS: boot a guest whose SMBIOS serial is NAME
# from the -drive DRIVE-OPTIONS (virtio), in the background (pid in
# GUEST_PID), the serial console in NAME.console, QEMU's messages in
# NAME.qemu.log; it is killed after GUEST_TIMEOUT seconds (exit 124).
guest_boot() {
    local name=$1
    rm -f "$name.console"
    timeout "$GUEST_TIMEOUT" qemu-system-x86_64 -accel tcg -m 256 -nodefaults -nographic \
        -no-reboot -serial file:"$name.console" -monitor none -smbios type=1,serial="$name" \
        -drive "$2",if=virtio >"$name.qemu.log" 2>&1 &
    GUEST_PID=$!
}

# guest_result NAME: the guest's RESULT line (empty when it printed none).
guest_result() {
    tr -d '\r' <"$1.console" 2>/dev/null | grep -a "^VMDKIT-GUEST RESULT $1 " | tail -n 1
}
