#!/usr/bin/env bash
# Linked clones and VMware's snapshots on one Fusion-style bundle (an NVMe
# disk and a split SATA disk):
#  - clone --linked --snapshot NAME|UID: the clone reads exactly what the
#    source read when that snapshot was taken (qemu-img compare against raw
#    copies made then), its disks are deltas of the snapshot's disks, and
#    not one byte of the source's folder changes: the folder is read-only
#    (chmod -R a-w) and every file's sha256 is the same after;
#  - without --snapshot the freeze is a recorded snapshot of the source
#    ("Linked clone NAME YYYY-MM-DD HH:MM", current, the frozen disks), a
#    second clone of an unchanged source shares it (no new entry, no new
#    delta), --no-record leaves the .vmsd byte-identical;
#  - --register writes snapshotN.cloneM / numClones, and snapshot delete is
#    refused (exit 7, the clone named) for a registered clone and for one
#    found only through its disks;
#  - --vmware-names: <parent>-cl1.vmdk disks with absolute hints;
#  - tree: a snapshot.current no entry has, a machine running on deltas no
#    snapshot accounts for, clones of an unrecorded freeze and of a deleted
#    snapshot, a .vmsd naming a missing disk;
#  - refusals: an unknown snapshot (exit 6, nothing made), options that do
#    not go together (exit 2), a snapshot whose slots are not the
#    machine's (exit 5), a snapshot naming the disk the machine runs on
#    (exit 9).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img jq sha256sum
mk_tmpdir
# the read-only mounts made below go before the folder is removed
trap 'cd /; umount "$TMP/Dev.vmwarevm" "$TMP/Shut" 2>/dev/null; rm -rf "$TMP"' EXIT

V=Dev.vmwarevm
X=$V/Dev.vmx
# current SLOT: the disk the source writes to in SLOT
current() { echo "$V/$("$VMDKIT" vmx get $X "$1.fileName")"; }
# keep_state NAME: raw copies of what both disks read now
keep_state() {
    qemu-img convert -O raw "$(current nvme0:0)" "$TMP/$1-sys.raw" &&
        qemu-img convert -O raw "$(current sata0:1)" "$TMP/$1-data.raw"
}
# clone_reads_as NAME CLONE: the clone's two disks read what the source read at NAME
clone_reads_as() {
    expect_exit 0 "$2: its system disk reads as the source at '$1'" \
        qemu-img compare "$TMP/$1-sys.raw" "$2/$(basename "$2" .vmwarevm).vmdk"
    expect_exit 0 "$2: its data disk reads as the source at '$1'" \
        qemu-img compare "$TMP/$1-data.raw" "$2/$(basename "$2" .vmwarevm)-2.vmdk"
}
# sums: sha256 of every file of the source's folder, with names and modes
sums() { (cd $V && find . -type f -print0 | sort -z | xargs -0 sha256sum && stat -c '%n %a' -- * | sort); }
list_json() { "$VMDKIT" snapshot list --json $V >"$TMP/list.json"; }
jqv() { jq -r "$1" "$TMP/list.json"; }

say "--- a Fusion bundle, two snapshots with data written between them"
mkdir $V
cat >$X <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "21"
displayName = "Dev"
nvme0.present = "TRUE"
nvme0:0.fileName = "Dev.vmdk"
nvme0:0.present = "TRUE"
sata0.present = "TRUE"
sata0:1.fileName = "Data.vmdk"
sata0:1.present = "TRUE"
nvram = "Dev.nvram"
EOF
random_bytes 1 8684 >$V/Dev.nvram
check "create the system disk" "$VMDKIT" create -a lsilogic $V/Dev.vmdk 32M
check "create the split data disk" "$VMDKIT" create -t twoGbMaxExtentSparse $V/Data.vmdk 32M
check "write the install" "$VMDKIT" io $V/Dev.vmdk -c 'write -P 0x11 0 4M' -c 'write -P 0x12 28M 4M'
check "and data" "$VMDKIT" io $V/Data.vmdk -c 'write -P 0x21 1M 3M'
keep_state first
check "snapshot 'first'" "$VMDKIT" snapshot --name first $V
check "write updates" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x31 2M 4M' -c 'write -z 28M 1M'
check "and more data" "$VMDKIT" io "$(current sata0:1)" -c 'write -P 0x41 2M 2M'
keep_state second
check "snapshot 'second'" "$VMDKIT" snapshot --name second $V
check "write after the last snapshot" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x51 0 8M'
check "and its data" "$VMDKIT" io "$(current sata0:1)" -c 'write -z 0 4M'
keep_state now

say "--- clone --linked --snapshot: from a read-only source, nothing written"
sums >"$TMP/sums-before.txt"
# read-only: by permissions for a user; for root, whom they do not stop,
# by a read-only bind mount of the folder when one can be made
chmod -R a-w $V
ro_mount=0
if [ "$(id -u)" -eq 0 ] && mount --bind $V $V 2>/dev/null; then
    if mount -o remount,ro,bind $V 2>/dev/null; then ro_mount=1; else umount $V; fi
fi
[ "$(id -u)" -ne 0 ] || [ $ro_mount -eq 1 ] || say "       (root, no read-only mount: only the checksums below show that nothing was written)"
[ $ro_mount -eq 0 ] || assert_true "the source's folder is a read-only mount" test "$(touch $V/x 2>&1 | grep -c 'Read-only')" -eq 1
expect_exit 0 "clone from snapshot 'first' (by name)" "$VMDKIT" clone --linked --snapshot first $V First.vmwarevm
assert_eq "no 'source now writes to' line: the source is not frozen" "" "$(grep 'source now writes' "$OUT")"
expect_exit 0 "clone from snapshot 2 (by UID)" "$VMDKIT" clone --linked --snapshot 2 $V Second.vmwarevm
expect_exit 6 "an unknown snapshot is refused" "$VMDKIT" clone --linked --snapshot nosuch $V None.vmwarevm &&
    assert_true "the message names the .vmsd and the name" grep -q 'Dev.vmsd: no snapshot with the uid or name "nosuch"' "$ERR"
assert_true "and nothing is made" test ! -e None.vmwarevm
expect_exit 2 "--snapshot without --linked is a usage error" "$VMDKIT" clone --snapshot first $V Full.vmwarevm
expect_exit 2 "--snapshot with --no-record is a usage error" "$VMDKIT" clone --linked --snapshot first --no-record $V Bad.vmwarevm
[ $ro_mount -eq 0 ] || umount $V
chmod -R u+w $V
sums >"$TMP/sums-after.txt"
assert_true "every file of the source is byte-identical, with its mode" cmp -s "$TMP/sums-before.txt" "$TMP/sums-after.txt"
clone_reads_as first First.vmwarevm
clone_reads_as second Second.vmwarevm
assert_eq "the first clone's disks are deltas of the disks 'first' froze" "../$V/Dev.vmdk ../$V/Data.vmdk" \
    "$(descriptor_value First.vmwarevm/First.vmdk parentFileNameHint) $(descriptor_value First.vmwarevm/First-2.vmdk parentFileNameHint)"
assert_eq "the second clone's: of the disks 'second' froze" "../$V/Dev-000001.vmdk ../$V/Data-000001.vmdk" \
    "$(descriptor_value Second.vmwarevm/Second.vmdk parentFileNameHint) $(descriptor_value Second.vmwarevm/Second-2.vmdk parentFileNameHint)"
assert_eq "the clone's .vmsd records its origin" "$(pwd -P)/$X First.vmdk First-2.vmdk 2" \
    "$("$VMDKIT" vmx get First.vmwarevm/First.vmsd cloneOf0) $("$VMDKIT" vmx get First.vmwarevm/First.vmsd sentinel0) $("$VMDKIT" vmx get First.vmwarevm/First.vmsd sentinel1) $("$VMDKIT" vmx get First.vmwarevm/First.vmsd numSentinels)"
check "writes into the clone" "$VMDKIT" io First.vmwarevm/First.vmdk -c 'write -P 0x77 0 1M'
assert_true "leave the source's files as they were" cmp -s "$TMP/sums-before.txt" <(sums)
reads_now() {
    expect_exit 0 "$1: the source still reads what it read" qemu-img compare "$TMP/now-sys.raw" "$(current nvme0:0)"
}
reads_now "after the clones from snapshots"

say "--- --vmware-names: VMware's -cl1 disk names and absolute hints"
expect_exit 0 "clone from 'second' with VMware's names" "$VMDKIT" clone --linked --snapshot second --vmware-names $V VN.vmwarevm
assert_eq "the disks are named after their parents, without the snapshot number" \
    "Data-cl1-s001.vmdk Data-cl1.vmdk Dev-cl1.vmdk VN.nvram VN.vmsd VN.vmx" "$(ls VN.vmwarevm | xargs)"
assert_eq "their hints are absolute" "$(pwd -P)/$V/Dev-000001.vmdk $(pwd -P)/$V/Data-000001.vmdk" \
    "$(descriptor_value VN.vmwarevm/Dev-cl1.vmdk parentFileNameHint) $(descriptor_value VN.vmwarevm/Data-cl1.vmdk parentFileNameHint)"
assert_eq "the .vmx and the .vmsd's sentinels name them" "Dev-cl1.vmdk Data-cl1.vmdk Dev-cl1.vmdk Data-cl1.vmdk" \
    "$("$VMDKIT" vmx get VN.vmwarevm/VN.vmx nvme0:0.fileName) $("$VMDKIT" vmx get VN.vmwarevm/VN.vmx sata0:1.fileName) $("$VMDKIT" vmx get VN.vmwarevm/VN.vmsd sentinel0) $("$VMDKIT" vmx get VN.vmwarevm/VN.vmsd sentinel1)"
expect_exit 0 "it reads as the source at 'second'" qemu-img compare "$TMP/second-sys.raw" VN.vmwarevm/Dev-cl1.vmdk
expect_exit 0 "its data disk too" qemu-img compare "$TMP/second-data.raw" VN.vmwarevm/Data-cl1.vmdk
assert_true "the source's files are still byte-identical" cmp -s "$TMP/sums-before.txt" <(sums)

say "--- a snapshot whose slots are not the machine's"
cp $X "$TMP/dev-vmx.txt"
printf 'sata0:2.fileName = "Extra.vmdk"\nsata0:2.present = "TRUE"\n' >>$X
check "create an added disk" "$VMDKIT" create $V/Extra.vmdk 8M
expect_exit 5 "a clone from a snapshot taken before a disk was added is refused" \
    "$VMDKIT" clone --linked --snapshot first $V Added.vmwarevm &&
    assert_true "the message names the slot" grep -q 'sata0:2' "$ERR"
assert_true "and nothing is made" test ! -e Added.vmwarevm
cp "$TMP/dev-vmx.txt" $X
rm $V/Extra.vmdk

say "--- a snapshot whose disk the machine still writes to"
mkdir W.vmwarevm
printf '.encoding = "UTF-8"\nscsi0:0.fileName = "W.vmdk"\nscsi0:0.present = "TRUE"\n' >W.vmwarevm/W.vmx
printf '.encoding = "UTF-8"\nsnapshot.lastUID = "1"\nsnapshot.current = "1"\nsnapshot0.uid = "1"\nsnapshot0.displayName = "bad"\nsnapshot0.numDisks = "1"\nsnapshot0.disk0.fileName = "W.vmdk"\nsnapshot0.disk0.node = "scsi0:0"\nsnapshot.numSnapshots = "1"\n' >W.vmwarevm/W.vmsd
check "create W" "$VMDKIT" create W.vmwarevm/W.vmdk 8M
expect_exit 9 "a clone of a snapshot whose disk is W's running disk is refused" \
    "$VMDKIT" clone --linked --snapshot bad W.vmwarevm WC.vmwarevm &&
    assert_true "naming the disk and the slot" grep -q 'W.vmsd: snapshot 1: disk0.fileName "W.vmdk" is the disk scsi0:0 still writes to' "$ERR"
assert_true "nothing is made" test ! -e WC.vmwarevm
rm -r W.vmwarevm

say "--- clone --linked without --snapshot: the freeze is a recorded snapshot"
cp $V/Dev.vmsd "$TMP/vmsd-2.txt"
before=$(current nvme0:0)
expect_exit 0 "a linked clone of the running state" "$VMDKIT" clone --linked $V Now.vmwarevm
clone_reads_as now Now.vmwarevm
list_json
assert_eq "a third entry, child of 'second', current" "3 2 true" "$(jqv '.snapshots[2] | "\(.uid) \(.parent) \(.current)"')"
assert_true "named 'Linked clone Now YYYY-MM-DD HH:MM' ($(jqv '.snapshots[2].name'))" \
    grep -qE '^Linked clone Now [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$' <(jqv '.snapshots[2].name')
assert_eq "it names the disks the source ran on, now frozen" \
    "nvme0:0=$(basename "$before") sata0:1=Data-000002.vmdk" "$(jqv '.snapshots[2].disks | map("\(.node)=\(.file)") | join(" ")')"
assert_eq "the clone is made from those disks" "../$before" "$(descriptor_value Now.vmwarevm/Now.vmdk parentFileNameHint)"
assert_true "the entry is the one 'snapshot' writes (same keys, same order)" \
    test "$(grep -c '^snapshot2\.' $V/Dev.vmsd)" -eq 10
expect_exit 0 "a second clone, nothing written since" "$VMDKIT" clone --linked $V Again.vmwarevm
assert_eq "no new delta for the source" "" "$(grep 'source now writes' "$OUT")"
list_json
assert_eq "no new entry: it shares the snapshot" "3 3" "$(jqv '"\(.snapshots | length) \(.current)"')"
assert_eq "and its disks" "../$before" "$(descriptor_value Again.vmwarevm/Again.vmdk parentFileNameHint)"

say "--- a clone that fails after the freeze was recorded leaves the source as it was"
# a folder the clone cannot be built in: read-only for a user, a read-only
# file system for root (whom permissions do not stop)
mkdir Shut
if [ "$(id -u)" -eq 0 ]; then
    mount -t tmpfs -o ro,size=1m tmpfs Shut 2>/dev/null || say "       (cannot mount a read-only folder: the failure below is not provoked)"
else
    chmod a-w Shut
fi
cp $V/Dev.vmsd "$TMP/vmsd-pre-fail.txt"
cp $X "$TMP/vmx-pre-fail.txt"
check "write into the source (so that the next clone freezes it)" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x66 1M 1M'
run "$VMDKIT" clone --linked $V Shut/Fail.vmwarevm
assert_true "a clone into a folder it cannot write to fails (exit $RC)" test "$RC" -ne 0 -a "$RC" -lt 125
assert_true "the source's .vmsd is put back byte for byte" cmp -s "$TMP/vmsd-pre-fail.txt" $V/Dev.vmsd
assert_true "and its .vmx (the freeze undone)" cmp -s "$TMP/vmx-pre-fail.txt" $X
assert_eq "no new delta is left" "" "$(ls $V | grep -- '-000004')"
if [ "$(id -u)" -eq 0 ]; then umount Shut 2>/dev/null; else chmod u+w Shut; fi

say "--- --no-record: the old unrecorded freeze"
check "write into the source" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x61 0 1M'
cp $V/Dev.vmsd "$TMP/vmsd-3.txt"
expect_exit 0 "clone --linked --no-record" "$VMDKIT" clone --linked --no-record $V Quiet.vmwarevm
assert_true "the source's .vmsd is byte-identical" cmp -s "$TMP/vmsd-3.txt" $V/Dev.vmsd
assert_true "but the source was frozen" grep -q 'source now writes to' "$OUT"

say "--- --register: the clone recorded under its snapshot, delete refused"
expect_exit 2 "--register with --no-record is a usage error" "$VMDKIT" clone --linked --no-record --register $V R0.vmwarevm
expect_exit 0 "clone from 'first', registered" "$VMDKIT" clone --linked --snapshot first --register $V Reg.vmwarevm
assert_eq "snapshot0.clone0 names the clone's .vmx, numClones = 1" "$(pwd -P)/Reg.vmwarevm/Reg.vmx 1" \
    "$("$VMDKIT" vmx get $V/Dev.vmsd snapshot0.clone0) $("$VMDKIT" vmx get $V/Dev.vmsd snapshot0.numClones)"
list_json
assert_eq "snapshot list shows it first, then the clones found by their disks" \
    "$(pwd -P)/Reg.vmwarevm/Reg.vmx $(pwd -P)/First.vmwarevm/First.vmx" "$(jqv '.snapshots[0].clones | join(" ")')"
assert_eq "and for 'second', the clones of it (found in the library)" \
    "$(pwd -P)/Second.vmwarevm/Second.vmx $(pwd -P)/VN.vmwarevm/VN.vmx" "$(jqv '.snapshots[1].clones | sort | join(" ")')"
check "snapshot list (text)" "$VMDKIT" snapshot list $V
assert_true "the text lists them below the snapshot" grep -q "linked clone $(pwd -P)/Second.vmwarevm/Second.vmx" "$OUT"
expect_exit 0 "a second registered clone of 'first'" "$VMDKIT" clone --linked --snapshot 1 --register $V Reg2.vmwarevm
assert_eq "clone1, numClones = 2" "$(pwd -P)/Reg2.vmwarevm/Reg2.vmx 2" \
    "$("$VMDKIT" vmx get $V/Dev.vmsd snapshot0.clone1) $("$VMDKIT" vmx get $V/Dev.vmsd snapshot0.numClones)"
cp $V/Dev.vmsd "$TMP/vmsd-reg.txt"
sums >"$TMP/sums-reg.txt"
expect_exit 7 "snapshot delete of 'first' is refused" "$VMDKIT" snapshot delete $V first &&
    assert_true "naming the clones" grep -q "First.vmwarevm/First.vmdk\|Reg.vmwarevm/Reg.vmx" "$ERR"
expect_exit 7 "snapshot delete of 'second' (a clone found by its disks, not registered) is refused" \
    "$VMDKIT" snapshot delete $V second &&
    assert_true "naming the clone" grep -q 'Second.vmwarevm/Second' "$ERR"
assert_true "and nothing is written" cmp -s "$TMP/sums-reg.txt" <(sums)
mkdir $V/Dev.vmx.lck
expect_exit 0 "a running source (a .lck folder): a clone from a snapshot still works" \
    "$VMDKIT" clone --linked --snapshot second $V Running.vmwarevm
cp $V/Dev.vmsd "$TMP/vmsd-running.txt"
expect_exit 8 "but --register, which writes its .vmsd, is refused" \
    "$VMDKIT" clone --linked --snapshot second --register $V RunReg.vmwarevm
assert_true "nothing written" cmp -s "$TMP/vmsd-running.txt" $V/Dev.vmsd
assert_true "nothing made" test ! -e RunReg.vmwarevm
rmdir $V/Dev.vmx.lck
expect_exit 0 "a recorded freeze, registered: the entry and the clone in one" \
    "$VMDKIT" clone --linked --register $V Last.vmwarevm
list_json
assert_eq "a fourth entry recording the clone (first: recorded; then those found by their disks)" \
    "4 $(pwd -P)/Last.vmwarevm/Last.vmx" "$(jqv '.snapshots[3] | "\(.uid) \(.clones[0])"')"
assert_eq "the entry itself records that clone only" "$(pwd -P)/Last.vmwarevm/Last.vmx 1" \
    "$("$VMDKIT" vmx get $V/Dev.vmsd snapshot3.clone0) $("$VMDKIT" vmx get $V/Dev.vmsd snapshot3.numClones)"
clone_reads_as now Now.vmwarevm
check "tree of the library" "$VMDKIT" tree
assert_eq "tree: every freeze is recorded, every clone made from a snapshot: no problem" "" \
    "$(sed -n '/^Problems:/,$p' "$OUT")"
assert_true "tree: the snapshot names on the disks they froze" \
    grep -q "^Dev.vmwarevm/Dev.vmdk .*snapshot Dev: \"first\"" "$OUT"

say "--- tree: where a .vmsd and the disks disagree"
mkdir lib2 && cd lib2 || exit 1
mkdir M.vmwarevm
printf '.encoding = "UTF-8"\ndisplayName = "M"\nscsi0:0.fileName = "M.vmdk"\nscsi0:0.present = "TRUE"\n' >M.vmwarevm/M.vmx
check "create M" "$VMDKIT" create M.vmwarevm/M.vmdk 8M
check "snapshot M" "$VMDKIT" snapshot --name base M.vmwarevm
check "a clone of M's snapshot" "$VMDKIT" clone --linked --snapshot base M.vmwarevm FromBase.vmwarevm
check "write into M" "$VMDKIT" io M.vmwarevm/M-000001.vmdk -c 'write -P 0x71 0 1M'
check "a clone whose freeze is not recorded" "$VMDKIT" clone --linked --no-record M.vmwarevm Hidden.vmwarevm
check "tree" "$VMDKIT" tree
sed -n '/^Problems:/,$p' "$OUT" | sed 's/^/       /'
assert_true "M runs on a delta no snapshot accounts for" grep -q \
    '^  M.vmwarevm/M.vmx: scsi0:0.fileName: runs on deltas no snapshot accounts for: M-000001.vmdk frozen below "M-000002.vmdk" and named by no entry of M.vmsd$' "$OUT"
assert_true "the clone of that freeze depends on what no snapshot records" grep -q \
    '^  Hidden.vmwarevm/Hidden.vmx: scsi0:0.fileName: a linked clone of M.vmwarevm/M-000001.vmdk, which no snapshot of "M" records' "$OUT"
assert_eq "the clone of the snapshot is fine" "" "$(grep 'FromBase.vmwarevm/FromBase.vmx' "$OUT")"
check "delete the snapshot anyway (--force)" "$VMDKIT" snapshot delete --force M.vmwarevm base
check "tree" "$VMDKIT" tree
assert_true "the clone of the deleted snapshot is found" grep -q \
    '^  FromBase.vmwarevm/FromBase.vmx: scsi0:0.fileName: a linked clone of M.vmwarevm/M.vmdk, which no snapshot of "M" records (deleted' "$OUT"
printf 'snapshot.current = "99"\n' >>M.vmwarevm/M.vmsd
check "tree" "$VMDKIT" tree
assert_true "a snapshot.current no entry has" grep -q \
    '^  M.vmwarevm/M.vmsd: snapshot.current = "99": no snapshot has that uid' "$OUT"
check "snapshot of M" "$VMDKIT" snapshot --name again M.vmwarevm
rm M.vmwarevm/M-000002.vmdk
check "tree" "$VMDKIT" tree
assert_true "a .vmsd naming a missing disk" grep -q \
    '^  M.vmwarevm/M.vmsd: snapshot0.disk0.fileName: VMware snapshot "again" names "M-000002.vmdk": not found' "$OUT"
cd ..
finish
