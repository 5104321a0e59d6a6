#!/usr/bin/env bash
# Whole-machine operations on a small two-disk VM: snapshot of a machine,
# full clone, refusal of running or suspended machines (nothing written),
# machine folders that hold no or several .vmx files, mv of a disk (extent
# files renamed, dependents' hints and .vmx fileNames rewritten), mv of a
# machine folder to another file system and back (copied byte for byte with
# its holes, refused while a disk is being written), mv of a disk there and
# back (its files copied), and what
# vmdkit tree flags: DANGER, broken hints with their likely parent,
# capacity mismatches, damaged and stray files.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img python3
mk_tmpdir

mkdir lib
cd lib || exit 1
V=Dev.vmwarevm
mkdir $V
cat >$V/Dev.vmx <<'EOF'
.encoding = "UTF-8"
displayName = "Dev box"
# two disks and a CD
scsi0:0.fileName = "Dev.vmdk"
scsi0:0.present = "TRUE"
sata0:0.fileName = "Data.vmdk"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "install.iso"
uuid.bios = "56 4d 00 11 22 33 44 55-66 77 88 99 aa bb cc dd"
ethernet0.generatedAddress = "00:0c:29:00:11:22"
ethernet1.generatedAddress = "00:0c:29:00:11:23"
ethernet1.generatedAddressOffset = "10"
snapshot.action = "keep"
EOF
cp $V/Dev.vmx "$TMP/dev-orig.vmx"
random_bytes 3 8684 >$V/Dev.nvram
echo "an install disc" >$V/install.iso
check "create Dev.vmdk" "$VMDKIT" create -t monolithicSparse -a lsilogic $V/Dev.vmdk 64M
check "create Data.vmdk" "$VMDKIT" create -t twoGbMaxExtentSparse $V/Data.vmdk 5G
check "write into both" "$VMDKIT" io $V/Dev.vmdk -c 'write -P 0x11 0 4M'
check "write into Data" "$VMDKIT" io $V/Data.vmdk -c 'write -P 0x22 4062M 4M'

say "--- refusals: running or suspended machines, nothing written"
ls -R >"$TMP/before.txt"
sums_of $V/Dev.vmx $V/Dev.vmdk $V/Data.vmdk >"$TMP/sums.txt"
mkdir $V/Dev.vmx.lck
expect_exit 8 "snapshot of a running machine (.vmx.lck) is refused" "$VMDKIT" snapshot $V &&
    assert_true "the message names the lock" grep -q 'Dev.vmx.lck' "$ERR"
expect_exit 8 "linked clone of a running machine is refused" "$VMDKIT" clone --linked $V Run.vmwarevm
expect_exit 8 "mv of a running machine is refused" "$VMDKIT" mv $V Moved.vmwarevm
rmdir $V/Dev.vmx.lck
touch $V/Dev-1a2b.vmss
expect_exit 8 "clone of a suspended machine (.vmss) is refused" "$VMDKIT" clone $V Susp.vmwarevm &&
    assert_true "the message names the .vmss" grep -q 'Dev-1a2b.vmss' "$ERR"
rm $V/Dev-1a2b.vmss
touch $V/state.vmem
"$VMDKIT" vmx set $V/Dev.vmx checkpoint.vmState state.vmem
expect_exit 8 "snapshot with checkpoint.vmState naming a file is refused" "$VMDKIT" snapshot $V
"$VMDKIT" vmx set $V/Dev.vmx checkpoint.vmState ""
rm $V/state.vmem
cp "$TMP/dev-orig.vmx" $V/Dev.vmx
assert_eq "the refusals created nothing" "$(cat "$TMP/before.txt")" "$(ls -R)"
assert_eq "the refusals wrote nothing" "$(cat "$TMP/sums.txt")" "$(sums_of $V/Dev.vmx $V/Dev.vmdk $V/Data.vmdk)"
mkdir Empty.vmwarevm Two.vmwarevm && touch Two.vmwarevm/a.vmx Two.vmwarevm/b.vmx
expect_exit 6 "a folder without .vmx is not a machine" "$VMDKIT" snapshot Empty.vmwarevm
expect_exit 9 "a folder with two .vmx files is ambiguous" "$VMDKIT" snapshot Two.vmwarevm &&
    assert_true "the message names both" grep -q 'a.vmx.*b.vmx\|b.vmx.*a.vmx' "$ERR"
rm -r Empty.vmwarevm Two.vmwarevm

say "--- a linked clone that fails after the freeze undoes it"
mkdir Ro && cp -r $V Ro/ && cp $V/Dev.vmx "$TMP/ro.vmx"
if chattr +i Ro 2>/dev/null; then
    # the library folder is immutable: the clone's temporary folder cannot
    # be made, after the source was frozen
    run "$VMDKIT" clone --linked Ro/$V Ro/Fail.vmwarevm
    chattr -i Ro
    assert_true "the clone failed (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 125
    assert_true "the source .vmx is back to its disks" cmp -s "$TMP/ro.vmx" Ro/$V/Dev.vmx
    assert_eq "the source's freeze deltas are gone" "" "$(ls Ro/$V | grep -- '-000001')"
else
    say "       (chattr +i is not available here: not tested)"
fi
rm -rf Ro

say "--- snapshot of a whole machine"
check "vmdkit snapshot Dev.vmwarevm" "$VMDKIT" snapshot $V
assert_eq "one new delta per disk, printed" "$V/Dev-000001.vmdk $V/Data-000001.vmdk" "$(tr '\n' ' ' <"$OUT" | sed 's/ $//')"
sed -e 's/"Dev.vmdk"/"Dev-000001.vmdk"/' -e 's/"Data.vmdk"/"Data-000001.vmdk"/' "$TMP/dev-orig.vmx" >"$TMP/expected.vmx"
assert_true "the .vmx names the deltas, nothing else changed" cmp -s "$TMP/expected.vmx" $V/Dev.vmx
assert_eq "the split disk got a split delta" "twoGbMaxExtentSparse" "$(descriptor_value $V/Data-000001.vmdk createType)"
check "the machine's disks read their data through the deltas" "$VMDKIT" io -r $V/Data-000001.vmdk \
    -c 'read -P 0x22 4062M 4M'

say "--- full clone"
check "vmdkit clone --name 'Dev copy' Dev.vmwarevm Copy.vmwarevm" "$VMDKIT" clone --name 'Dev copy' $V Copy.vmwarevm
C=Copy.vmwarevm
assert_eq "the clone's files" "Dev copy-2-s001.vmdk Dev copy-2-s002.vmdk Dev copy-2.vmdk Dev copy.nvram Dev copy.vmdk Dev copy.vmx" \
    "$(ls $C | tr '\n' ' ' | sed 's/ $//')"
check "first disk: same content" "$VMDKIT" compare "$C/Dev copy.vmdk" $V/Dev-000001.vmdk
check "second disk: same content" "$VMDKIT" compare "$C/Dev copy-2.vmdk" $V/Data-000001.vmdk
assert_eq "full copies have no parent; types and adapter kept" "ffffffff monolithicSparse lsilogic twoGbMaxExtentSparse" \
    "$(descriptor_value "$C/Dev copy.vmdk" parentCID) $(descriptor_value "$C/Dev copy.vmdk" createType) $(descriptor_value "$C/Dev copy.vmdk" ddb.adapterType) $(descriptor_value "$C/Dev copy-2.vmdk" createType)"
cat >"$TMP/expected-copy.vmx" <<'EOF'
.encoding = "UTF-8"
displayName = "Dev copy"
# two disks and a CD
scsi0:0.fileName = "Dev copy.vmdk"
scsi0:0.present = "TRUE"
sata0:0.fileName = "Dev copy-2.vmdk"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "../Dev.vmwarevm/install.iso"
EOF
assert_true "the full clone's .vmx: no identity, no snapshot keys, no cloneOf; the CD still reaches its ISO" \
    cmp -s "$TMP/expected-copy.vmx" "$C/Dev copy.vmx"
check "qemu-img check of the copied split disk" qemu-img check "$C/Dev copy-2.vmdk"
assert_eq "no temporary folder left" "" "$(ls -A | grep vmdkit-tmp)"

say "--- mv of a disk: extents renamed, hints and .vmx rewritten"
# the machine ran since its snapshot: its deltas hold data, so the linked
# clone freezes them under new ones
check "the machine writes into its deltas" "$VMDKIT" io $V/Dev-000001.vmdk -c 'write -P 0x33 32M 64k'
check "and into its second disk's" "$VMDKIT" io $V/Data-000001.vmdk -c 'write -P 0x33 100M 64k'
check "linked clone for a dependent in another folder" "$VMDKIT" clone --linked $V Lnk.vmwarevm
# Dev's current disks are now Dev-000002 and Data-000002; Lnk depends on Data-000001
check "vmdkit mv Data-000001.vmdk Stable.vmdk" "$VMDKIT" mv $V/Data-000001.vmdk $V/Stable.vmdk
assert_eq "the extent files follow the new name" "Stable-s001.vmdk Stable-s002.vmdk Stable.vmdk" \
    "$(cd $V && ls Stable*.vmdk | tr '\n' ' ' | sed 's/ $//')"
assert_true "the old names are gone" test ! -e $V/Data-000001.vmdk -a ! -e $V/Data-000001-s001.vmdk
assert_eq "the descriptor's extent lines" 'RW 8323072 SPARSE "Stable-s001.vmdk"' "$(grep -m1 '^RW' $V/Stable.vmdk)"
assert_eq "the machine's own delta points at the new name" "Stable.vmdk" \
    "$(descriptor_value $V/Data-000002.vmdk parentFileNameHint)"
assert_eq "the linked clone in the next folder too" "../Dev.vmwarevm/Stable.vmdk" \
    "$(descriptor_value Lnk.vmwarevm/Lnk-2.vmdk parentFileNameHint)"
check "the clone's second disk opens" "$VMDKIT" io -r Lnk.vmwarevm/Lnk-2.vmdk -c 'read -P 0x22 4062M 4M'
check "qemu-img follows it" qemu-img info --backing-chain Lnk.vmwarevm/Lnk-2.vmdk
check "mv of the machine's current disk" "$VMDKIT" mv $V/Dev-000002.vmdk $V/Work.vmdk
check "vmx get" "$VMDKIT" vmx get $V/Dev.vmx scsi0:0.fileName &&
    assert_eq "the .vmx names the moved disk" "Work.vmdk" "$(cat "$OUT")"
assert_true "a monolithicSparse disk is renamed with its embedded descriptor" \
    grep -aq 'RW 131072 SPARSE "Work.vmdk"' $V/Work.vmdk
check "it opens under its new name" "$VMDKIT" io -r $V/Work.vmdk -c 'read -P 0x11 0 4M'
expect_exit 9 "mv onto an existing disk is refused" "$VMDKIT" mv $V/Work.vmdk $V/Stable.vmdk

say "--- what tree flags"
check "tree with nothing wrong" "$VMDKIT" tree --json .
assert_eq "no problem yet" "[]" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["problems"])' "$OUT")"
"$VMDKIT" vmx set $V/Dev.vmx scsi0:0.fileName Dev.vmdk
check "tree: a machine writing into a shared parent" "$VMDKIT" tree .
assert_true "the parent is flagged DANGER, naming the machine" \
    grep -q '^Dev.vmwarevm/Dev.vmdk .*VM "Dev box".*\[DANGER: parent of 1 disk and the current disk of VM "Dev box"' "$OUT"
"$VMDKIT" vmx set $V/Dev.vmx scsi0:0.fileName Work.vmdk
mkdir Old && mv $V/Stable*.vmdk Old/
check "tree: parent moved away by hand" "$VMDKIT" tree .
assert_true "the orphan is flagged broken, with its likely parent" \
    grep -q 'Lnk.vmwarevm/Lnk-2.vmdk .*\[broken: parent "../Dev.vmwarevm/Stable.vmdk" not found; likely parent: Old/Stable.vmdk' "$OUT"
check "rebase -u with the candidate" "$VMDKIT" rebase -u -b Old/Stable.vmdk Lnk.vmwarevm/Lnk-2.vmdk
check "a child of Stable" "$VMDKIT" create -t twoGbMaxExtentSparse -b Old/Stable.vmdk Old/Child.vmdk 5G
sed -i '/"Child-s002.vmdk"/d' Old/Child.vmdk # now 4064 MiB: smaller than its parent
printf 'version=1\nCID=zz\ncreateType="monolithicFlat"\n' >Old/Bad.vmdk
head -c 4096 /dev/zero >Old/Stray-flat.vmdk
mkdir .Half.vmdkit-tmp-abc123 && cp Old/Bad.vmdk .Half.vmdkit-tmp-abc123/
check "tree --json" "$VMDKIT" tree --json .
python3 - "$OUT" >"$TMP/flags.txt" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for n in d["disks"]:
    if n["flags"]:
        print(n["path"], ",".join(n["flags"]))
for p in d["problems"]:
    print("problem", p["path"], p["message"].split(":")[0])
EOF
assert_true "capacity mismatch flagged" grep -qx 'Old/Child.vmdk capacity-mismatch' "$TMP/flags.txt"
assert_true "an unparseable descriptor is a problem" grep -qx 'problem Old/Bad.vmdk not a valid disk' "$TMP/flags.txt"
assert_true "a stray extent file is a problem" grep -q '^problem Old/Stray-flat.vmdk not a disk, and no disk' "$TMP/flags.txt"
assert_eq "an unfinished clone's temporary folder is listed, not scanned" \
    "problem .Half.vmdkit-tmp-abc123 left by an interrupted vmdkit command (0.0 MiB)" \
    "$(grep Half "$TMP/flags.txt")"

say "--- a machine whose disk lies in another folder"
mkdir Shared Uses.vmwarevm
check "a shared disk" "$VMDKIT" create Shared/shared.vmdk 8M
printf 'displayName = "Uses"\nide0:0.fileName = "../Shared/shared.vmdk"\n' >Uses.vmwarevm/Uses.vmx
check "snapshot of the machine" "$VMDKIT" snapshot Uses.vmwarevm
assert_eq "the delta is made in the machine's folder, as VMware does" "Uses.vmwarevm/shared-000001.vmdk" "$(cat "$OUT")"
assert_eq "nothing was written beside the shared disk" "shared.vmdk" "$(ls Shared)"
assert_eq "its hint reaches the shared disk" "../Shared/shared.vmdk" \
    "$(descriptor_value Uses.vmwarevm/shared-000001.vmdk parentFileNameHint)"
check "vmx get" "$VMDKIT" vmx get Uses.vmwarevm/Uses.vmx ide0:0.fileName &&
    assert_eq "the .vmx names the delta by its bare name" "shared-000001.vmdk" "$(cat "$OUT")"

say "--- mv: a reference that cannot be rewritten is reported with its repair"
if chattr +i Lnk.vmwarevm/Lnk.vmdk 2>/dev/null; then
    expect_exit 7 "mv of the machine folder while a clone's disk cannot be written" \
        "$VMDKIT" mv $V Moved.vmwarevm
    chattr -i Lnk.vmwarevm/Lnk.vmdk
    assert_true "the folder was moved" test -d Moved.vmwarevm -a ! -e $V
    assert_true "the other references were rewritten" grep -q '^updated .*Lnk.vmsd: cloneOf0' "$OUT"
    repair=$(sed -n 's/^  repair with: vmdkit //p' "$ERR")
    assert_true "the repair command is printed: vmdkit $repair" \
        grep -q "^  repair with: vmdkit rebase -u -b '.*/Moved.vmwarevm/Dev-000001.vmdk' '.*Lnk.vmwarevm/Lnk.vmdk'" "$ERR"
    expect_exit 6 "until repaired the clone's disk does not open" "$VMDKIT" info --chain Lnk.vmwarevm/Lnk.vmdk
    eval "\"\$VMDKIT\" $repair" >/dev/null
    check "after the printed repair it opens" "$VMDKIT" info --chain Lnk.vmwarevm/Lnk.vmdk
    check "move it back" "$VMDKIT" mv Moved.vmwarevm $V
else
    say "       (chattr +i is not available here: not tested)"
fi
say "--- mv to another file system: copied, references rewritten, the old folder removed"
OTHER=/dev/shm
if [ -d "$OTHER" ] && [ -w "$OTHER" ] && [ "$(stat -c %d "$OTHER")" != "$(stat -c %d .)" ]; then
    FAR=$(mktemp -d "$OTHER/vmdkit-test.XXXXXX")
    # every file of the folder by name and sha256; its disks' allocation
    tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
    tree_sums $V >"$TMP/vm-sums.txt"
    du -B1 $V/Data-s001.vmdk | cut -f1 >"$TMP/vm-alloc.txt"
    "$VMDKIT" convert -O raw Lnk.vmwarevm/Lnk.vmdk "$TMP/lnk-before.raw" >/dev/null
    ls -R >"$TMP/before.txt"
    "$VMDKIT" tree --json . >"$TMP/tree-before.json"

    # a writer holds a disk of the folder: refused, nothing left behind
    python3 - "$V/Data.vmdk" >"$TMP/holder.out" <<'PY' &
import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(30)
PY
    holder=$!
    for _ in $(seq 50); do grep -q locked "$TMP/holder.out" 2>/dev/null && break; sleep 0.1; done
    expect_exit 8 "mv to another file system while a disk is being written is refused" \
        "$VMDKIT" mv $V "$FAR/Dev.vmwarevm"
    kill $holder 2>/dev/null; wait $holder 2>/dev/null
    assert_true "the message names the disk in use" grep -q 'Data.vmdk: in use by another process' "$ERR"
    assert_eq "nothing moved" "$(cat "$TMP/before.txt")" "$(ls -R)"
    assert_eq "nothing left in the destination" "" "$(ls -A "$FAR")"

    check "mv to another file system" "$VMDKIT" mv $V "$FAR/Dev.vmwarevm"
    assert_true "the old folder is gone" test ! -e $V
    assert_eq "every file arrived byte for byte" "$(cat "$TMP/vm-sums.txt")" "$(tree_sums "$FAR/Dev.vmwarevm")"
    # file systems round allocation differently: within one grain of the source
    far_alloc=$(du -B1 "$FAR/Dev.vmwarevm/Data-s001.vmdk" | cut -f1)
    assert_true "holes stay holes ($far_alloc bytes allocated, source $(cat "$TMP/vm-alloc.txt"))" \
        test "$far_alloc" -le $(($(cat "$TMP/vm-alloc.txt") + 65536))
    assert_eq "no temporary folder is left" "Dev.vmwarevm" "$(ls -A "$FAR")"
    assert_eq "the linked clone's hint names the new place" "$FAR/Dev.vmwarevm/Dev-000001.vmdk" \
        "$(realpath -m "Lnk.vmwarevm/$(descriptor_value Lnk.vmwarevm/Lnk.vmdk parentFileNameHint)")"
    "$VMDKIT" convert -O raw Lnk.vmwarevm/Lnk.vmdk "$TMP/lnk-after.raw" >/dev/null
    assert_true "the linked clone reads as before" cmp -s "$TMP/lnk-before.raw" "$TMP/lnk-after.raw"
    check "qemu-img reads the clone's chain" qemu-img compare -q "$TMP/lnk-before.raw" Lnk.vmwarevm/Lnk.vmdk

    check "and back again" "$VMDKIT" mv "$FAR/Dev.vmwarevm" $V
    assert_eq "every file is back byte for byte" "$(cat "$TMP/vm-sums.txt")" "$(tree_sums $V)"
    assert_eq "the other file system is left empty" "" "$(ls -A "$FAR")"
    say "--- mv of a disk to another file system and back: its files copied"
    check "mv of the linked clone's disk to another file system" \
        "$VMDKIT" mv Lnk.vmwarevm/Lnk.vmdk "$FAR/Lnk.vmdk"
    assert_true "the old disk is gone" test ! -e Lnk.vmwarevm/Lnk.vmdk
    assert_eq "the .vmx names the disk at its new place (relative, as before)" "$FAR/Lnk.vmdk" \
        "$(realpath -m "Lnk.vmwarevm/$("$VMDKIT" vmx get Lnk.vmwarevm/Lnk.vmx scsi0:0.fileName)")"
    assert_eq "its hint, seen from there, still reaches the parent" "$PWD/$V/Dev-000001.vmdk" \
        "$(realpath -m "$FAR/$(descriptor_value "$FAR/Lnk.vmdk" parentFileNameHint)")"
    "$VMDKIT" convert -O raw "$FAR/Lnk.vmdk" "$TMP/lnk-after.raw" >/dev/null
    assert_true "it reads as before" cmp -s "$TMP/lnk-before.raw" "$TMP/lnk-after.raw"
    rm -f "$TMP/lnk-after.raw"
    check "and back, with the library as --root" "$VMDKIT" mv --root . "$FAR/Lnk.vmdk" Lnk.vmwarevm/Lnk.vmdk
    "$VMDKIT" convert -O raw Lnk.vmwarevm/Lnk.vmdk "$TMP/lnk-after.raw" >/dev/null
    assert_true "it reads as before again" cmp -s "$TMP/lnk-before.raw" "$TMP/lnk-after.raw"

    "$VMDKIT" tree --json . >"$TMP/tree-after.json"
    diff "$TMP/tree-before.json" "$TMP/tree-after.json" >"$TMP/tree.diff"
    assert_true "the library's tree is as before the round trip" test ! -s "$TMP/tree.diff" ||
        cat "$TMP/tree.diff"
    rm -rf "$FAR" "$TMP"/lnk-*.raw
else
    say "       (no writable $OTHER on another file system: not tested)"
fi

finish
