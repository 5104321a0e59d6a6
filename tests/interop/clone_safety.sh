#!/usr/bin/env bash
# What a clone (and a snapshot) may take from its source and what it must
# refuse:
#  1. C3: nvram / extendedConfigFile naming files outside the machine's
#     folder (absolute, "..", a symbolic link) are not copied, with a
#     warning; the clone holds none of their bytes;
#  2. F6: a CD-ROM image named relative to the source's folder is named
#     from the clone's folder, and exists there;
#  3. F13: linked clones of a source nothing wrote since the last freeze
#     share that freeze: no new empty delta per clone;
#  4. F20: --absolute makes the clone's hints absolute, not the source's;
#  5. F21: a clone inside its source's folder, a destination naming no
#     folder and the name ".." are refused; a static MAC address is warned
#     about;
#  6. H6/C5: snapshot and linked clone of a disk VMware (DISK.lck) or QEMU
#     is writing are refused with exit 8, nothing written.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

mkdir lib
cd lib || exit 1
echo "TOP SECRET" >../secret.txt
mkdir Evil.vmwarevm
cat >Evil.vmwarevm/Evil.vmx <<'EOF'
.encoding = "UTF-8"
displayName = "Evil"
nvram = "../../secret.txt"
extendedConfigFile = "/etc/passwd"
scsi0.present = "TRUE"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "Evil.vmdk"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:01:02:03"
EOF
check "create Evil.vmdk" "$VMDKIT" create Evil.vmwarevm/Evil.vmdk 1M

say "--- 1. side files outside the machine's folder are not copied"
check "linked clone of Evil" "$VMDKIT" clone --linked Evil.vmwarevm Clone.vmwarevm
assert_true "warning for nvram" grep -q 'warning: nvram = "../../secret.txt" lies outside the machine.s folder: not copied' "$ERR"
assert_true "warning for the vmxf" grep -q 'warning: extendedConfigFile = "/etc/passwd" lies outside' "$ERR"
assert_true "warning for the static MAC" grep -q 'warning: ethernet0.address = "00:50:56:01:02:03" is static' "$ERR"
assert_eq "no secret in the clone" "" "$(grep -rl 'TOP SECRET\|root:' Clone.vmwarevm)"
assert_true "no nvram, no vmxf copied" test ! -e Clone.vmwarevm/Clone.nvram -a ! -e Clone.vmwarevm/Clone.vmxf
check "full clone of Evil" "$VMDKIT" clone Evil.vmwarevm Full.vmwarevm
assert_eq "no secret in the full clone" "" "$(grep -rl 'TOP SECRET\|root:' Full.vmwarevm)"
ln -s ../../secret.txt Evil.vmwarevm/Evil.nvram
"$VMDKIT" vmx set Evil.vmwarevm/Evil.vmx nvram Evil.nvram
check "clone when nvram is a symbolic link leading out" "$VMDKIT" clone Evil.vmwarevm Full2.vmwarevm
assert_true "warning for the link" grep -q 'nvram = "Evil.nvram" is a symbolic link: not copied' "$ERR"
assert_eq "no secret in that clone" "" "$(grep -rl 'TOP SECRET' Full2.vmwarevm)"

say "--- 2. relative CD-ROM images are still found from the clone"
mkdir Base.vmwarevm
echo "iso" >Base.vmwarevm/install.iso
cat >Base.vmwarevm/Base.vmx <<'EOF'
displayName = "Base"
scsi0:0.fileName = "Base.vmdk"
sata0:1.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "install.iso"
floppy0.fileType = "file"
floppy0.fileName = "gone.flp"
EOF
check "create Base.vmdk" "$VMDKIT" create -t twoGbMaxExtentSparse Base.vmwarevm/Base.vmdk 64M
check "write into it" "$VMDKIT" io Base.vmwarevm/Base.vmdk -c 'write -P 0x11 0 1M'
check "linked clone C1" "$VMDKIT" clone --linked Base.vmwarevm C1.vmwarevm
check "vmx get" "$VMDKIT" vmx get C1.vmwarevm/C1.vmx sata0:1.fileName &&
    assert_eq "the ISO is named from the clone's folder" "../Base.vmwarevm/install.iso" "$(cat "$OUT")"
assert_true "and is there" test -f "C1.vmwarevm/$(cat "$OUT")"
check "vmx get floppy" "$VMDKIT" vmx get C1.vmwarevm/C1.vmx floppy0.fileName &&
    assert_eq "a file that does not exist is left as it was" "gone.flp" "$(cat "$OUT")"

say "--- 3. clones of a source nothing wrote since share its freeze"
base_disk=$("$VMDKIT" vmx get Base.vmwarevm/Base.vmx scsi0:0.fileName)
check "linked clone C2" "$VMDKIT" clone --linked Base.vmwarevm C2.vmwarevm
check "linked clone C3" "$VMDKIT" clone --linked Base.vmwarevm C3.vmwarevm
assert_eq "the source still runs on its first freeze delta" "$base_disk" \
    "$("$VMDKIT" vmx get Base.vmwarevm/Base.vmx scsi0:0.fileName)"
assert_eq "no further delta in the source" "Base-000001.vmdk" "$(cd Base.vmwarevm && ls Base-0*.vmdk | grep -v -- -s0)"
check "info --chain C3" "$VMDKIT" info --chain C3.vmwarevm/C3.vmdk
assert_eq "C3's chain has two links" 2 "$(grep -c '^image:' "$OUT")"
check "C3 reads the base's data" "$VMDKIT" io -r C3.vmwarevm/C3.vmdk -c 'read -P 0x11 0 1M'
check "the source writes again" "$VMDKIT" io "Base.vmwarevm/$base_disk" -c 'write -P 0x22 0 1M'
check "C3 still reads the base's data" "$VMDKIT" io -r C3.vmwarevm/C3.vmdk -c 'read -P 0x11 0 1M'
check "linked clone C4 after the source wrote" "$VMDKIT" clone --linked Base.vmwarevm C4.vmwarevm
assert_true "a new freeze now" test -f Base.vmwarevm/Base-000002.vmdk
check "C4 reads what the source wrote" "$VMDKIT" io -r C4.vmwarevm/C4.vmdk -c 'read -P 0x22 0 1M'

say "--- 4. --absolute applies to the clone only"
mkdir V
check "create V/a.vmdk" "$VMDKIT" create V/a.vmdk 1M
printf 'displayName = "V"\nscsi0:0.fileName = "a.vmdk"\n' >V/V.vmx
check "clone --linked --absolute" "$VMDKIT" clone --linked --absolute V L
assert_eq "the source's freeze delta has a relative hint" "a.vmdk" "$(descriptor_value V/a-000001.vmdk parentFileNameHint)"
assert_eq "the clone's hint is absolute" "$PWD/V/a.vmdk" "$(descriptor_value L/L.vmdk parentFileNameHint)"

say "--- 5. destinations that cannot be a clone"
expect_exit 9 "a clone inside its source's folder" "$VMDKIT" clone Base.vmwarevm Base.vmwarevm/inner
assert_true "the message says why" grep -q 'inside the folder of the machine' "$ERR"
expect_exit 9 "a destination naming no folder" "$VMDKIT" clone Base.vmwarevm /
expect_exit 9 "the name .." "$VMDKIT" clone --name .. Base.vmwarevm X.vmwarevm
assert_true "the message names the rule" grep -q 'not "\." or "\.\."' "$ERR"

say "--- 6. disks VMware or QEMU is writing"
check "create B.vmdk" "$VMDKIT" create B.vmdk 1M
mkdir B.vmdk.lck
before=$(ls)
expect_exit 8 "snapshot of a disk VMware holds" "$VMDKIT" snapshot B.vmdk
expect_exit 8 "linked clone of a disk VMware holds" "$VMDKIT" clone --linked B.vmdk BC.vmdk
assert_eq "nothing was created" "$before" "$(ls)"
rmdir B.vmdk.lck
before=$(ls)
if command -v qemu-io >/dev/null; then
    qemu-io -f vmdk -c 'write -P 5 0 64k' -c 'sleep 4000' B.vmdk >/dev/null 2>&1 &
    qpid=$!
    check "QEMU holds B.vmdk for writing" wait_qemu_writer B.vmdk
    expect_exit 8 "snapshot of a disk QEMU writes" "$VMDKIT" snapshot B.vmdk
    assert_true "QEMU is named" grep -q 'in use by QEMU' "$ERR"
    printf 'displayName = "Q"\nscsi0:0.fileName = "../B.vmdk"\n' >V/V.vmx
    v_before=$(ls V)
    expect_exit 8 "linked clone of a machine whose disk QEMU writes" "$VMDKIT" clone --linked V L2
    expect_exit 8 "snapshot of a machine whose disk QEMU writes" "$VMDKIT" snapshot V
    assert_eq "nothing was created in the machine's folder" "$v_before" "$(ls V)"
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
    assert_eq "nothing was created" "$before" "$(ls)"
else
    say "       (qemu-io not installed: the QEMU part is skipped)"
fi
finish
