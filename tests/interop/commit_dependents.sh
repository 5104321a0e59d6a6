#!/usr/bin/env bash
# commit asks the library model who depends on the parent and who holds
# the disks, however the delta is named:
#  1. F2: from inside the VM folder, through a symbolic link to the folder
#     and through "..", a linked clone in a sibling folder is found: exit 7
#     naming it, and the clone still reads its data;
#  2. F3: a disk a VMware snapshot froze (.vmsd snapshotN.diskM.fileName) is
#     a dependent: exit 7 naming the snapshot, the parent byte-identical;
#  3. F4/C4/H1: a running machine (VM.vmx.lck) or a locked delta
#     (DELTA.lck) is refused with exit 8 and nothing changes; commit --delete
#     of a machine's current disk re-points the .vmx at the parent first,
#     and the machine's disk then opens with the merged content;
#  4. a delta a VMware snapshot froze is never deleted (exit 7);
#  5. C5: a delta QEMU writes is not merged (exit 8).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

say "--- 1. a linked clone in a sibling folder, however the delta is named"
mkdir A B
check "create A/A.vmdk" "$VMDKIT" create A/A.vmdk 16M
check "write 0x11" "$VMDKIT" io A/A.vmdk -c 'write -P 0x11 0 1M'
check "snapshot" "$VMDKIT" snapshot A/A.vmdk
check "linked clone in B" "$VMDKIT" clone --linked A/A.vmdk B/B.vmdk
check "write 0x22 into the snapshot" "$VMDKIT" io A/A-000001.vmdk -c 'write -P 0x22 0 1M'
a_sum=$(sha256sum A/A.vmdk)
expect_exit 7 "commit A/A-000001.vmdk" "$VMDKIT" commit A/A-000001.vmdk
assert_true "the clone is named" grep -q 'B/B.vmdk (parent hint)' "$ERR"
cd A || exit 1
expect_exit 7 "commit from inside the folder (cd A; commit A-000001.vmdk)" "$VMDKIT" commit A-000001.vmdk
assert_true "the clone is named" grep -q '\.\./B/B.vmdk (parent hint)' "$ERR"
expect_exit 7 "commit ../A/./A-000001.vmdk" "$VMDKIT" commit ../A/./A-000001.vmdk
cd .. || exit 1
ln -s A L
expect_exit 7 "commit through a symbolic link to the folder" "$VMDKIT" commit L/A-000001.vmdk
assert_eq "the parent is byte-identical" "$a_sum" "$(sha256sum A/A.vmdk)"
check "the clone still reads the base's data" "$VMDKIT" io -r B/B.vmdk -c 'read -P 0x11 0 1M'

say "--- 2. a disk a VMware snapshot froze"
mkdir VM.vmwarevm
cd VM.vmwarevm || exit 1
check "create VM.vmdk" "$VMDKIT" create VM.vmdk 16M
check "write 1" "$VMDKIT" io VM.vmdk -c 'write -P 1 0 1M'
check "snapshot" "$VMDKIT" snapshot VM.vmdk
check "write 2" "$VMDKIT" io VM-000001.vmdk -c 'write -P 2 0 1M'
cat >VM.vmsd <<'EOF'
.encoding = "UTF-8"
snapshot.lastUID = "1"
snapshot.current = "1"
snapshot0.uid = "1"
snapshot0.filename = "VM-Snapshot1.vmsn"
snapshot0.displayName = "S1"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "VM.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "1"
EOF
printf 'displayName = "VM"\nscsi0:0.fileName = "VM-000001.vmdk"\n' >VM.vmx
vm_sum=$(sha256sum VM.vmdk)
expect_exit 7 "commit into a disk snapshot S1 froze" "$VMDKIT" commit VM-000001.vmdk
assert_true "the snapshot is named" grep -q 'VM.vmsd: VMware snapshot "S1" (snapshot0.disk0.fileName)' "$ERR"
assert_eq "snapshot S1's disk is byte-identical" "$vm_sum" "$(sha256sum VM.vmdk)"
check "S1 still reads its state" "$VMDKIT" io -r VM.vmdk -c 'read -P 1 0 1M'
say "--- 4. a delta a VMware snapshot froze is never deleted"
check "snapshot again (VM-000002 on VM-000001)" "$VMDKIT" snapshot VM-000001.vmdk
sed -i 's/"VM.vmdk"/"VM-000001.vmdk"/' VM.vmsd
printf 'displayName = "VM"\nscsi0:0.fileName = "VM-000002.vmdk"\n' >VM.vmx
expect_exit 7 "commit --delete of the disk snapshot S1 froze" "$VMDKIT" commit --delete VM-000001.vmdk
assert_true "the snapshot is named" grep -q 'holds the state of VM.vmsd: VMware snapshot "S1"' "$ERR"
assert_true "its files are all there" test -f VM-000001.vmdk
cd .. || exit 1

say "--- 3. running machines and locked deltas"
mkdir R
check "create R/d.vmdk" "$VMDKIT" create R/d.vmdk 16M
printf 'displayName = "R"\nscsi0:0.fileName = "d.vmdk"\n' >R/R.vmx
# a delta the machine runs on that no VMware snapshot records (a snapshot
# of the machine would freeze d.vmdk as a .vmsd entry, and commit refuse)
check "a delta of the machine's disk" "$VMDKIT" snapshot R/d.vmdk
check "the machine runs on it" "$VMDKIT" vmx set R/R.vmx scsi0:0.fileName d-000001.vmdk
check "write into its delta" "$VMDKIT" io R/d-000001.vmdk -c 'write -P 0x44 0 64k'
r_sums=$(sha256sum R/*)
mkdir R/R.vmx.lck
expect_exit 8 "commit while the machine runs (R.vmx.lck)" "$VMDKIT" commit R/d-000001.vmdk
assert_true "the message names the lock" grep -q 'R.vmx.lck' "$ERR"
rmdir R/R.vmx.lck
mkdir R/d-000001.vmdk.lck
expect_exit 8 "commit --delete while VMware holds the delta (d-000001.vmdk.lck)" \
    "$VMDKIT" commit --delete R/d-000001.vmdk
rmdir R/d-000001.vmdk.lck
assert_eq "nothing changed" "$r_sums" "$(sha256sum R/*)"
check "commit --delete of the machine's current disk" "$VMDKIT" commit --delete R/d-000001.vmdk
assert_true "the .vmx rewrite is printed" grep -q '^updated .*R/R.vmx: scsi0:0.fileName = "d.vmdk"' "$OUT"
check "vmx get" "$VMDKIT" vmx get R/R.vmx scsi0:0.fileName &&
    assert_eq "the .vmx names the parent" "d.vmdk" "$(cat "$OUT")"
assert_true "the delta is gone" test ! -e R/d-000001.vmdk
check "the machine's disk holds the merged data" "$VMDKIT" io -r R/d.vmdk -c 'read -P 0x44 0 64k'
check "tree: nothing wrong" "$VMDKIT" tree --json R &&
    assert_eq "no problem" "[]" "$(json_get "$OUT" '.problems | map(.message)' | tr -d ' \n')"

say "--- 5. a delta QEMU writes"
if command -v qemu-io >/dev/null; then
    mkdir Q
    check "create Q/q.vmdk" "$VMDKIT" create Q/q.vmdk 16M
    check "snapshot" "$VMDKIT" snapshot Q/q.vmdk
    qemu-io -f vmdk -c 'write -P 5 0 64k' -c 'sleep 4000' Q/q-000001.vmdk >/dev/null 2>&1 &
    qpid=$!
    check "QEMU holds Q/q-000001.vmdk for writing" wait_qemu_writer Q/q-000001.vmdk
    q_sum=$(sha256sum Q/q.vmdk)
    expect_exit 8 "commit while QEMU writes the delta" "$VMDKIT" commit Q/q-000001.vmdk
    assert_true "QEMU is named" grep -q 'in use by QEMU' "$ERR"
    assert_eq "the parent is byte-identical" "$q_sum" "$(sha256sum Q/q.vmdk)"
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
else
    say "       (qemu-io not installed: part 5 skipped)"
fi
finish
