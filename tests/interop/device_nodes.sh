#!/usr/bin/env bash
# device_nodes.sh - a block device node inside a disk's folder (out of an
# archive or an image layer) is not a disk's storage unless the user said
# so (security review H5):
#  1. a FLAT extent that is a block device: convert, io -c write (exit 9),
#     check (exit 1) and nbdkit confine=DIR refuse it;
#     --allow-external-extents reads it;
#  2. a parent hint naming a block device node in the folder (holding a
#     valid disk with the right CID): refused;
#  3. the device named on the command line itself is still opened.
# Needs root (mknod, a loop device); skipped otherwise.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need python3 losetup mknod
mk_tmpdir

python3 -c "open('backing.img','wb').write(b'HOST-DEVICE-SECRET'.ljust(1 << 20, b'\0'))"
LO=$(losetup -f --show backing.img 2>/dev/null) || skip "cannot attach a loop device (not root?)"
trap 'losetup -d "$LO"; cd /; rm -rf "$TMP"' EXIT
mkdir jail
if ! mknod jail/disk-flat.vmdk b "$(stat -c '%t' "$LO" | xargs -I{} printf '%d' 0x{})" \
    "$(stat -c '%T' "$LO" | xargs -I{} printf '%d' 0x{})" 2>/dev/null; then
    skip "mknod is not permitted here"
fi
sum=$(sha256sum <backing.img)
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 2048 FLAT "disk-flat.vmdk" 0\n' >jail/disk.vmdk

say "--- 1. a block device as a FLAT extent"
expect_exit 9 "convert refuses the device node" "$VMDKIT" convert -O raw jail/disk.vmdk out.raw
assert_true "the message names the extent and the option" \
    grep -q 'extent file "disk-flat.vmdk": a block device (use --allow-external-extents' "$ERR"
assert_true "no output was left" [ ! -e out.raw ]
expect_exit 9 "io -c write refuses it" "$VMDKIT" io jail/disk.vmdk -c 'write -P 0x41 512k 4k'
assert_eq "the device is unchanged" "$sum" "$(sha256sum <backing.img)"
expect_exit 1 "check refuses it" "$VMDKIT" check jail/disk.vmdk
assert_true "... naming the block device" grep -q 'a block device' "$ERR" "$OUT"
check "check --allow-external-extents accepts it" "$VMDKIT" check --allow-external-extents jail/disk.vmdk
check "with --allow-external-extents the device is read" \
    "$VMDKIT" convert --allow-external-extents -O raw jail/disk.vmdk out.raw
assert_eq "... and its bytes are the device's" "HOST-DEVICE-SECRET" "$(head -c 18 out.raw)"
if [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ] && command -v nbdkit >/dev/null 2>&1; then
    nbd_setup
    trap 'stop_nbdkit 2>/dev/null; losetup -d "$LO"; cd /; rm -rf "$TMP"' EXIT
    run env LD_PRELOAD="$PRELOAD" nbdkit -U - "$PLUGIN" file=jail/disk.vmdk confine=jail readonly=true \
        --run 'nbdcopy "$uri" nb.raw'
    assert_true "nbdkit confine=DIR does not serve the device node" [ "$RC" -ne 0 ]
    assert_true "... saying why" grep -q 'a block device' "$ERR"
    assert_true "... and nothing was copied" [ ! -s nb.raw ]
else
    say "skipped: nbdkit plugin checks (plugin not built or nbdkit missing)"
fi

say "--- 2. a parent hint naming a block device node holding a disk"
check "create a sparse disk" "$VMDKIT" create p.vmdk 1M
check "write 0x33 into it" "$VMDKIT" io p.vmdk -c 'write -P 0x33 0 64k'
LO2=$(losetup -f --show p.vmdk) || skip "cannot attach a second loop device"
trap 'losetup -d "$LO2"; losetup -d "$LO"; cd /; rm -rf "$TMP"' EXIT
mknod jail/parent.vmdk b "$(stat -c '%t' "$LO2" | xargs -I{} printf '%d' 0x{})" \
    "$(stat -c '%T' "$LO2" | xargs -I{} printf '%d' 0x{})"
check "create a child of the disk" "$VMDKIT" create -t twoGbMaxExtentSparse -b p.vmdk jail/child.vmdk 1M
sed -i 's|^parentFileNameHint=.*|parentFileNameHint="parent.vmdk"|' jail/child.vmdk
run "$VMDKIT" convert -O raw jail/child.vmdk child.raw
assert_eq "convert refuses a device as a parent (exit 4)" 4 "$RC"
assert_true "the message names the hint" grep -q 'parentFileNameHint: "parent.vmdk": not a regular file' "$ERR"
assert_true "no output was left" [ ! -e child.raw ]

say "--- 3. the device named on the command line"
check "io -f raw on the device the user names" "$VMDKIT" io -f raw -r jail/disk-flat.vmdk -c 'read -P 0 1k 4k'

finish
