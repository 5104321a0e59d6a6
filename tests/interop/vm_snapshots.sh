#!/usr/bin/env bash
# VMware's snapshot history through vmdkit: on a Fusion-style bundle with
# two disks, three snapshots taken with vmdkit with data written between
# them, recorded in the .vmsd as VMware records them (uids, parents, names,
# times, frozen disks, current, mru); revert to the first, the second and
# the third, each compared with qemu-img against raw copies taken when the
# snapshot was taken; delete of the middle one (its disk merged with its
# child, the others still read exactly as before).  The same on a machine
# whose .vmsd and chain follow VMware's own naming (uids from 15, delta
# numbers out of chain order, .vmsn files).  Refusals: running machines,
# unknown and ambiguous names, a damaged .vmsd, linked clones depending on
# the disks a delete would change (and --force), names the .vmsd's encoding
# cannot hold; a take whose .vmsd entry cannot be made leaves nothing.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img jq
mk_tmpdir

M=1048576
V=Dev.vmwarevm
X=$V/Dev.vmx
now_us() { echo $(($(date +%s%N) / 1000)); }

# current SLOT: the disk the machine writes to in SLOT, as a path
current() { echo "$V/$("$VMDKIT" vmx get $X "$1.fileName")"; }
# keep_state NAME: raw copies of what both disks read now
keep_state() {
    qemu-img convert -O raw "$(current nvme0:0)" "$TMP/$1-sys.raw" &&
        qemu-img convert -O raw "$(current sata0:1)" "$TMP/$1-data.raw"
}
# reads_as NAME DESC: both disks read what they read when NAME was kept
reads_as() {
    expect_exit 0 "$2: nvme0:0 reads as at '$1'" qemu-img compare "$TMP/$1-sys.raw" "$(current nvme0:0)"
    expect_exit 0 "$2: sata0:1 reads as at '$1'" qemu-img compare "$TMP/$1-data.raw" "$(current sata0:1)"
}
# snap_json: the snapshot list as JSON in $TMP/list.json
snap_json() { "$VMDKIT" snapshot list --json $V >"$TMP/list.json"; }
jqv() { jq -r "$1" "$TMP/list.json"; }

say "--- a Fusion bundle with an NVMe disk and a split SATA disk"
mkdir $V
cat >$X <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "21"
displayName = "Dev"
firmware = "efi"
guestOS = "arm-ubuntu-64"
nvme0.present = "TRUE"
nvme0:0.fileName = "Dev.vmdk"
nvme0:0.present = "TRUE"
sata0.present = "TRUE"
sata0:1.fileName = "Data.vmdk"
sata0:1.present = "TRUE"
sata0:2.deviceType = "cdrom-image"
sata0:2.fileName = "/Users/me/ubuntu.iso"
nvram = "Dev.nvram"
extendedConfigFile = "Dev.vmxf"
EOF
random_bytes 1 8684 >$V/Dev.nvram
printf '<?xml version="1.0"?>\n<Foundry><VM><VMId type="string">52 3d</VMId></VM></Foundry>\n' >$V/Dev.vmxf
check "create the system disk" "$VMDKIT" create -a lsilogic $V/Dev.vmdk 64M
check "create the split data disk" "$VMDKIT" create -t twoGbMaxExtentSparse $V/Data.vmdk 64M
check "write the install" "$VMDKIT" io $V/Dev.vmdk -c 'write -P 0x11 0 8M' -c 'write -P 0x12 60M 4M'
check "and data" "$VMDKIT" io $V/Data.vmdk -c 'write -P 0x21 1M 3M'
keep_state s1
cp $X "$TMP/dev-orig.vmx"
t0=$(now_us)
check "snapshot 1 (--name, --description)" "$VMDKIT" snapshot --name "clean install" \
    --description "fresh: before the updates" $V
t1=$(now_us)
assert_eq "the new deltas are printed" "$V/Dev-000001.vmdk $V/Data-000001.vmdk" "$(xargs <"$OUT")"
sed -e 's/"Dev.vmdk"/"Dev-000001.vmdk"/' -e 's/"Data.vmdk"/"Data-000001.vmdk"/' "$TMP/dev-orig.vmx" >"$TMP/want.vmx"
assert_true "the .vmx names the deltas, every other line as it was" cmp -s "$TMP/want.vmx" $X
assert_eq "the split disk's delta is split" 'RW 131072 SPARSE "Data-000001-s001.vmdk"' "$(grep '^RW' $V/Data-000001.vmdk)"
cat >"$TMP/want.vmsd" <<'EOF'
.encoding = "UTF-8"
snapshot.lastUID = "1"
snapshot.current = "1"
snapshot0.uid = "1"
snapshot0.displayName = "clean install"
snapshot0.description = "fresh: before the updates"
snapshot0.createTimeHigh = "H"
snapshot0.createTimeLow = "L"
snapshot0.numDisks = "2"
snapshot0.disk0.fileName = "Dev.vmdk"
snapshot0.disk0.node = "nvme0:0"
snapshot0.disk1.fileName = "Data.vmdk"
snapshot0.disk1.node = "sata0:1"
snapshot.numSnapshots = "1"
snapshot.mru0.uid = "1"
EOF
assert_eq "the .vmsd holds the entry VMware writes (no .vmsn, no filename)" "$(cat "$TMP/want.vmsd")" \
    "$(sed -e 's/\(createTimeHigh = \)"-\{0,1\}[0-9]*"/\1"H"/' -e 's/\(createTimeLow = \)"-\{0,1\}[0-9]*"/\1"L"/' $V/Dev.vmsd)"
snap_json
t=$(jqv '.snapshots[0]."create-time-us"')
assert_true "its time is the time it was taken ($t in [$t0, $t1])" test "$t" -ge "$t0" -a "$t" -le "$t1"
high=$(sed -n 's/.*createTimeHigh = "\(.*\)"/\1/p' $V/Dev.vmsd)
low=$(sed -n 's/.*createTimeLow = "\(.*\)"/\1/p' $V/Dev.vmsd)
assert_eq "high and low halves: high * 2^32 + (uint32)low" "$t" "$((high * 4294967296 + (low & 0xffffffff)))"
assert_eq "list: the ISO time is that time in UTC" "$(date -u -d "@$((t / 1000000))" +%Y-%m-%dT%H:%M:%SZ)" \
    "$(jqv '.snapshots[0].time')"
ls $V >"$TMP/files.txt"
assert_true "no .vmsn is written" test -z "$(ls $V | grep -i vmsn)"

check "write updates" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x31 4M 8M' -c 'write -z 60M 1M'
check "and more data" "$VMDKIT" io "$(current sata0:1)" -c 'write -P 0x41 2M 2M' -c 'write -P 0x42 63M 1M'
keep_state s2
check "snapshot 2 (default name)" "$VMDKIT" snapshot $V
check "write a broken update" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x51 0 16M'
check "and its data" "$VMDKIT" io "$(current sata0:1)" -c 'write -z 0 8M'
keep_state s3
check "snapshot 3" "$VMDKIT" snapshot --name third $V
check "write after the last snapshot" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x61 20M 1M'
keep_state now

snap_json
assert_eq "list --json: uids, parents, names" "1:-:clean install 2:1:Snapshot 2 3:2:third" \
    "$(jqv '[.snapshots[] | "\(.uid):\(.parent // "-"):\(.name)"] | join(" ")')"
assert_eq "list --json: current and lastUID" "3 3" "$(jqv '"\(.current) \(."last-uid")"')"
assert_eq "list --json: the disks each snapshot froze" \
    "nvme0:0=Dev.vmdk,sata0:1=Data.vmdk nvme0:0=Dev-000001.vmdk,sata0:1=Data-000001.vmdk nvme0:0=Dev-000002.vmdk,sata0:1=Data-000002.vmdk" \
    "$(jqv '[.snapshots[] | [.disks[] | "\(.node)=\(.file)"] | join(",")] | join(" ")')"
assert_eq "list --json: children and the current flag" "[2]false [3]false []true" \
    "$(jqv '[.snapshots[] | "\(.children | tojson)\(.current)"] | join(" ")')"
assert_eq "list --json: description only where given" "fresh: before the updates - -" \
    "$(jqv '[.snapshots[] | .description // "-"] | join(" ")')"
assert_eq "the mru list, newest first" "3 2 1" "$(sed -n 's/^snapshot.mru[0-9]*.uid = "\(.*\)"/\1/p' $V/Dev.vmsd | xargs)"
check "list (tree)" "$VMDKIT" snapshot list $V
assert_eq "the tree, with You are here below the current snapshot" \
    "1  \"clean install\"|└── 2  \"Snapshot 2\"|    └── 3  \"third\"|        └── You are here" \
    "$(sed -n '2,$p' "$OUT" | grep -v 'fresh:' | sed 's/  20[0-9T:Z-]*  .*//' | paste -sd '|')"
check "qemu-img follows the running chain" qemu-img info --backing-chain "$(current nvme0:0)"

say "--- refusals: nothing is written"
sums_of $X $V/Dev.vmsd >"$TMP/sums.txt"
ls -R >"$TMP/ls.txt"
mkdir $V/Dev.vmx.lck
expect_exit 8 "take on a running machine" "$VMDKIT" snapshot $V
expect_exit 8 "revert on a running machine" "$VMDKIT" snapshot revert $V 1
expect_exit 8 "delete on a running machine" "$VMDKIT" snapshot delete $V 1 && assert_err_line "delete refused"
check "list works on a running machine" "$VMDKIT" snapshot list $V
rmdir $V/Dev.vmx.lck
expect_exit 6 "revert to a uid no snapshot has" "$VMDKIT" snapshot revert $V 7 && assert_err_line "unknown uid"
expect_exit 6 "delete of a name no snapshot has" "$VMDKIT" snapshot delete $V nope
expect_exit 2 "--json applies to list only" "$VMDKIT" snapshot revert --json $V 1
expect_exit 2 "--force applies to delete only" "$VMDKIT" snapshot --force $V
expect_exit 2 "--name needs a machine" "$VMDKIT" snapshot --name x $V/Dev.vmdk
expect_exit 2 "revert without a snapshot" "$VMDKIT" snapshot revert $V
assert_eq "the refusals wrote nothing" "$(cat "$TMP/sums.txt")" "$(sums_of $X $V/Dev.vmsd)"
assert_eq "and created nothing" "$(cat "$TMP/ls.txt")" "$(ls -R)"

say "--- revert to the first, the second, the third"
before=$(current nvme0:0)
check "revert to 'clean install'" "$VMDKIT" snapshot revert $V "clean install"
assert_true "the deltas the machine ran on are removed" test ! -e "$before" -a ! -e $V/Data-000003.vmdk
assert_true "the snapshots' disks stay" test -e $V/Dev.vmdk -a -e $V/Dev-000001.vmdk -a -e $V/Dev-000002.vmdk
reads_as s1 "after revert to 1"
snap_json
assert_eq "snapshot.current is 1, first in the mru list" "1 1" \
    "$(jqv .current) $(sed -n 's/^snapshot.mru0.uid = "\(.*\)"/\1/p' $V/Dev.vmsd)"
assert_eq "the .vmx names fresh deltas on the snapshot's disks" "Dev.vmdk Data.vmdk" \
    "$(descriptor_value "$(current nvme0:0)" parentFileNameHint) $(descriptor_value "$(current sata0:1)" parentFileNameHint)"
check "write into the reverted state" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x71 0 1M'
check "revert to uid 2" "$VMDKIT" snapshot revert $V 2
reads_as s2 "after revert to 2"
check "revert to 'third'" "$VMDKIT" snapshot revert $V third
reads_as s3 "after revert to 3"
# the new delta is made before the old one goes: numbers 3 and 4 take turns
cur=$(basename "$(current nvme0:0)" .vmdk) curd=$(basename "$(current sata0:1)" .vmdk)
assert_eq "nothing but the snapshots' disks and the running deltas is left" \
    "$(printf '%s\n' Data-000001-s001.vmdk Data-000001.vmdk Data-000002-s001.vmdk Data-000002.vmdk \
        "$curd-s001.vmdk" "$curd.vmdk" Data-s001.vmdk Data.vmdk Dev-000001.vmdk Dev-000002.vmdk "$cur.vmdk" \
        Dev.nvram Dev.vmdk Dev.vmsd Dev.vmx Dev.vmxf | sort | xargs)" "$(ls $V | xargs)"
check "write after the revert" "$VMDKIT" io "$(current nvme0:0)" -c 'write -P 0x61 20M 1M'
keep_state now

say "--- delete the middle snapshot"
check "delete snapshot 2" "$VMDKIT" snapshot delete $V "Snapshot 2"
assert_eq "its disks are merged with their one child" \
    "merged $V/Dev-000002.vmdk into $V/Dev-000001.vmdk|merged $V/Data-000002.vmdk into $V/Data-000001.vmdk" \
    "$(grep '^merged' "$OUT" | paste -sd '|')"
assert_true "the children are gone" test ! -e $V/Dev-000002.vmdk -a ! -e $V/Data-000002.vmdk -a ! -e $V/Data-000002-s001.vmdk
snap_json
assert_eq "the entries left: 3 is now a child of 1" "1:- 3:1" "$(jqv '[.snapshots[] | "\(.uid):\(.parent // "-")"] | join(" ")')"
assert_eq "snapshot 3 names the disk it was merged into" "Dev-000001.vmdk Data-000001.vmdk" \
    "$(jqv '[.snapshots[1].disks[].file] | join(" ")')"
assert_eq "the indices stay dense, numSnapshots drops" "snapshot1.uid = \"3\"|snapshot.numSnapshots = \"2\"" \
    "$(grep -E '^snapshot1.uid|numSnapshots' $V/Dev.vmsd | paste -sd '|')"
reads_as now "the running state after the delete"
check "qemu-img check of the merged disk" qemu-img check $V/Dev-000001.vmdk
check "revert to 3 after the delete" "$VMDKIT" snapshot revert $V 3
reads_as s3 "snapshot 3 after the delete"
check "revert to 1 after the delete" "$VMDKIT" snapshot revert $V 1
reads_as s1 "snapshot 1 after the delete"
check "delete of the current snapshot 1 (the root; its disks have two children)" "$VMDKIT" snapshot delete $V 1
assert_true "the base disks are kept as the parents of both" grep -q "^kept $V/Dev.vmdk: the parent of several deltas" "$OUT"
snap_json
assert_eq "3 is a root; nothing is current" "3:- null" "$(jqv '[.snapshots[] | "\(.uid):\(.parent // "-")"] | join(" ")') $(jqv .current)"
reads_as s1 "the running state after deleting its snapshot"
before=$(current nvme0:0)
check "revert to 3" "$VMDKIT" snapshot revert $V 3
reads_as s3 "snapshot 3 after deleting 1"
assert_true "the running delta that branched off the tree is removed" test ! -e "$before"
check "delete the last snapshot" "$VMDKIT" snapshot delete $V 3
reads_as s3 "the running state after deleting the last snapshot"
assert_eq "the .vmsd keeps what VMware keeps: lastUID and the mru list" \
    '.encoding = "UTF-8"|snapshot.lastUID = "3"|snapshot.mru0.uid = "3"|snapshot.mru1.uid = "1"|snapshot.mru2.uid = "2"' \
    "$(paste -sd '|' $V/Dev.vmsd)"
assert_eq "the machine runs on the disks its running delta was merged into" "Dev-000001.vmdk Data-000001.vmdk" \
    "$("$VMDKIT" vmx get $X nvme0:0.fileName) $("$VMDKIT" vmx get $X sata0:1.fileName)"
assert_eq "only the base disks are left below them" "Data-000001-s001.vmdk Data-000001.vmdk Data-s001.vmdk Data.vmdk Dev-000001.vmdk Dev.nvram Dev.vmdk Dev.vmsd Dev.vmx Dev.vmxf" \
    "$(ls $V | xargs)"
check "a new snapshot gets uid 4" "$VMDKIT" snapshot $V
snap_json
assert_eq "uids are never reused" "4 Snapshot 4" "$(jqv '.snapshots[0] | "\(.uid) \(.name)"')"

say "--- linked clones depending on the disks a delete would change"
check "a linked clone of the running state" "$VMDKIT" clone --linked $V Clone.vmwarevm
C=Clone.vmwarevm/Clone.vmdk
qemu-img convert -O raw $C "$TMP/clone.raw"
sums_of $V/Dev.vmsd $V/Dev.vmdk >"$TMP/sums.txt"
expect_exit 7 "delete refused: the clone's parent would be merged away" "$VMDKIT" snapshot delete $V 4 &&
    assert_err_line "refused delete" &&
    assert_true "the message names the clone" grep -q 'Clone.vmwarevm/Clone.vmdk' "$ERR"
assert_eq "the refusal wrote nothing" "$(cat "$TMP/sums.txt")" "$(sums_of $V/Dev.vmsd $V/Dev.vmdk)"
four=$(jq -r '.snapshots[0].disks[0].file' <("$VMDKIT" snapshot list --json $V))
check "delete --force re-points the clone" "$VMDKIT" snapshot delete --force $V 4
assert_eq "the clone's parent is the disk its parent was merged into" "../Dev.vmwarevm/$four" \
    "$(descriptor_value $C parentFileNameHint)"
expect_exit 0 "the clone reads as before" qemu-img compare "$TMP/clone.raw" $C
check "snapshot 5" "$VMDKIT" snapshot --name five $V
mkdir Other.vmwarevm
check "a delta in another folder made from snapshot 5's disk" \
    "$VMDKIT" create -b "$V/$(jq -r '.snapshots[0].disks[0].file' <("$VMDKIT" snapshot list --json $V))" \
    Other.vmwarevm/Other.vmdk 64M
frozen=$V/$(jq -r '.snapshots[0].disks[0].file' <("$VMDKIT" snapshot list --json $V))
sums_of "$frozen" >"$TMP/frozen.txt"
expect_exit 7 "delete refused: a clone is made from its disk" "$VMDKIT" snapshot delete $V five &&
    assert_true "the message names it" grep -q 'Other.vmwarevm/Other.vmdk' "$ERR"
check "delete --force" "$VMDKIT" snapshot delete --force $V five
assert_true "the disk the clone is made from is kept, unchanged" \
    test "$(cat "$TMP/frozen.txt")" = "$(sums_of "$frozen")"
assert_true "and said so" grep -q "^kept .*: kept for the linked clones that depend on it" "$OUT"
expect_exit 0 "the clone still reads its parent's data" qemu-img compare "$frozen" Other.vmwarevm/Other.vmdk

say "--- revert keeps an abandoned delta a linked clone depends on"
mkdir K.vmwarevm
printf '.encoding = "UTF-8"\nscsi0:0.fileName = "K.vmdk"\n' >K.vmwarevm/K.vmx
check "create K" "$VMDKIT" create K.vmwarevm/K.vmdk 8M
check "snapshot K" "$VMDKIT" snapshot K.vmwarevm
check "write into K's running delta" "$VMDKIT" io K.vmwarevm/K-000001.vmdk -c 'write -P 0x44 0 1M'
check "a linked clone of K, freeze not recorded (K-000001 becomes its parent)" \
    "$VMDKIT" clone --linked --no-record K.vmwarevm KC.vmwarevm
check "revert K to its snapshot" "$VMDKIT" snapshot revert K.vmwarevm 1
assert_eq "the running delta is removed, the clone's parent kept with the reason" \
    "removed K.vmwarevm/K-000002.vmdk|kept K.vmwarevm/K-000001.vmdk: used by $(pwd -P)/KC.vmwarevm/KC.vmdk" \
    "$(grep -E '^(removed|kept)' "$OUT" | paste -sd '|')"
check "the clone still reads what K had" "$VMDKIT" io -r KC.vmwarevm/KC.vmdk -c 'read -P 0x44 0 1M'

say "--- a .vmsd that does not parse, a .vmsd entry that cannot be made"
cp $V/Dev.vmsd "$TMP/good.vmsd"
cp $X "$TMP/x.vmx"
printf 'snapshot0.uid = "x"\n' >>$V/Dev.vmsd
ls $V >"$TMP/ls.txt"
expect_exit 4 "take with a damaged .vmsd is refused" "$VMDKIT" snapshot $V && assert_err_line "damaged .vmsd"
assert_eq "before any delta was made" "$(cat "$TMP/ls.txt")" "$(ls $V)"
printf '.encoding = "UTF-8"\nsnapshot.lastUID = "4294967295"\n' >$V/Dev.vmsd
expect_exit 4 "take when no uid is left" "$VMDKIT" snapshot $V
assert_eq "the deltas made are removed again" "$(cat "$TMP/ls.txt")" "$(ls $V)"
assert_true "and the .vmx names the old disks" cmp -s "$TMP/x.vmx" $X
printf '.encoding = "windows-1252"\nsnapshot.lastUID = "7"\n' >$V/Dev.vmsd
expect_exit 9 "a name the .vmsd's encoding cannot hold" "$VMDKIT" snapshot --name $'\xe6\x97\xa5' $V &&
    assert_true "the message names the character" grep -q 'U+65E5' "$ERR"
assert_eq "nothing was made" "$(cat "$TMP/ls.txt")" "$(ls $V)"
check "a name it can hold" "$VMDKIT" snapshot --name $'Caf\xc3\xa9' $V
assert_true "stored in windows-1252" grep -q $'^snapshot0.displayName = "Caf\xe9"$' $V/Dev.vmsd
assert_eq "and listed in UTF-8" $'Caf\xc3\xa9 8' "$("$VMDKIT" snapshot list --json $V | jq -r '.snapshots[0] | "\(.name) \(.uid)"')"

say "--- a machine whose .vmsd and chain follow VMware's naming"
S=Srv.vmwarevm
mkdir $S
printf '.encoding = "UTF-8"\ndisplayName = "srv"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "Srv-000004.vmdk"\n' >$S/Srv.vmx
# the chain of an ESX-style history: delta numbers reused out of order
check "base" "$VMDKIT" create -a lsilogic $S/Srv.vmdk 32M
check "data at uid 15" "$VMDKIT" io $S/Srv.vmdk -c 'write -P 0xa1 0 4M'
qemu-img convert -O raw $S/Srv.vmdk "$TMP/u15.raw"
prev=Srv.vmdk
for step in 000002:0xa2:16 000001:0xa3:17 000003:0xa4:18 000004:0xa5:now; do
    n=${step%%:*} rest=${step#*:}
    pat=${rest%%:*} tag=${rest#*:}
    "$VMDKIT" create -b $S/$prev $S/Srv-$n.vmdk 32M >/dev/null || fail "create Srv-$n"
    "$VMDKIT" io $S/Srv-$n.vmdk -c "write -P $pat $(((pat & 7) * M)) 3M" >/dev/null || fail "write Srv-$n"
    qemu-img convert -O raw $S/Srv-$n.vmdk "$TMP/u$tag.raw"
    prev=Srv-$n.vmdk
done
for u in 15 16 17 18; do random_bytes "$u" 4096 >$S/Srv-Snapshot$u.vmsn; done
cat >$S/Srv.vmsd <<'EOF'
.encoding = "UTF-8"
snapshot.lastUID = "18"
snapshot.current = "18"
snapshot0.uid = "15"
snapshot0.filename = "Srv-Snapshot15.vmsn"
snapshot0.displayName = "os"
snapshot0.createTimeHigh = "310880"
snapshot0.createTimeLow = "-365210110"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "Srv.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot1.uid = "16"
snapshot1.filename = "Srv-Snapshot16.vmsn"
snapshot1.parent = "15"
snapshot1.displayName = "db"
snapshot1.createTimeHigh = "310880"
snapshot1.createTimeLow = "-326194126"
snapshot1.numDisks = "1"
snapshot1.disk0.fileName = "Srv-000002.vmdk"
snapshot1.disk0.node = "scsi0:0"
snapshot2.uid = "17"
snapshot2.filename = "Srv-Snapshot17.vmsn"
snapshot2.parent = "16"
snapshot2.displayName = "app"
snapshot2.description = ""
snapshot2.createTimeHigh = "310880"
snapshot2.createTimeLow = "-253322069"
snapshot2.numDisks = "1"
snapshot2.disk0.fileName = "Srv-000001.vmdk"
snapshot2.disk0.node = "scsi0:0"
snapshot3.uid = "18"
snapshot3.filename = "Srv-Snapshot18.vmsn"
snapshot3.parent = "17"
snapshot3.displayName = "config"
snapshot3.type = "1"
snapshot3.createTimeHigh = "310880"
snapshot3.createTimeLow = "-185420900"
snapshot3.numDisks = "1"
snapshot3.disk0.fileName = "Srv-000003.vmdk"
snapshot3.disk0.node = "scsi0:0"
snapshot.numSnapshots = "4"
EOF
"$VMDKIT" snapshot list --json $S >"$TMP/srv.json"
assert_eq "list --json: uids, parents, names, times, .vmsn" \
    "15:-:os:2012-04-23T23:22:42Z:Srv-Snapshot15.vmsn 16:15:db:2012-04-23T23:23:21Z:Srv-Snapshot16.vmsn 17:16:app:2012-04-23T23:24:34Z:Srv-Snapshot17.vmsn 18:17:config:2012-04-23T23:25:42Z:Srv-Snapshot18.vmsn" \
    "$(jq -r '[.snapshots[] | "\(.uid):\(.parent // "-"):\(.name):\(.time):\(.vmsn)"] | join(" ")' "$TMP/srv.json")"
assert_eq "list --json: the exact microseconds of a negative low half" "1335223362737666" \
    "$(jq -r '.snapshots[0]."create-time-us"' "$TMP/srv.json")"
check "revert to 'db' (uid 16, disk Srv-000002)" "$VMDKIT" snapshot revert $S db
assert_true "the abandoned Srv-000004 is removed" test ! -e $S/Srv-000004.vmdk
cur=$S/$("$VMDKIT" vmx get $S/Srv.vmx scsi0:0.fileName)
expect_exit 0 "it reads as snapshot 16" qemu-img compare "$TMP/u16.raw" "$cur"
check "revert to 17 (disk Srv-000001)" "$VMDKIT" snapshot revert $S 17
cur=$S/$("$VMDKIT" vmx get $S/Srv.vmx scsi0:0.fileName)
expect_exit 0 "it reads as snapshot 17" qemu-img compare "$TMP/u17.raw" "$cur"
check "write into the running state" "$VMDKIT" io "$cur" -c 'write -P 0xb1 30M 1M'
qemu-img convert -O raw "$cur" "$TMP/srv-now.raw"
check "delete the middle snapshot 16" "$VMDKIT" snapshot delete $S 16
assert_true "Srv-000001 was merged into Srv-000002" grep -qx "merged $S/Srv-000001.vmdk into $S/Srv-000002.vmdk" "$OUT"
assert_true "its .vmsn is removed, the others stay" \
    test ! -e $S/Srv-Snapshot16.vmsn -a -e $S/Srv-Snapshot15.vmsn -a -e $S/Srv-Snapshot17.vmsn
"$VMDKIT" snapshot list --json $S >"$TMP/srv.json"
assert_eq "17 is now a child of 15, on the merged disk" "15:-:Srv.vmdk 17:15:Srv-000002.vmdk 18:17:Srv-000003.vmdk" \
    "$(jq -r '[.snapshots[] | "\(.uid):\(.parent // "-"):\(.disks[0].file)"] | join(" ")' "$TMP/srv.json")"
assert_true "unknown keys of the entries are kept" grep -qx 'snapshot2.type = "1"' $S/Srv.vmsd
cur=$S/$("$VMDKIT" vmx get $S/Srv.vmx scsi0:0.fileName)
expect_exit 0 "the running state reads as before" qemu-img compare "$TMP/srv-now.raw" "$cur"
for u in 18 15 17; do
    check "revert to $u" "$VMDKIT" snapshot revert $S $u
    cur=$S/$("$VMDKIT" vmx get $S/Srv.vmx scsi0:0.fileName)
    expect_exit 0 "snapshot $u reads as before the delete" qemu-img compare "$TMP/u$u.raw" "$cur"
done
check "qemu-img check of every disk left" bash -c 'for d in '$S'/Srv*.vmdk; do qemu-img check "$d" >/dev/null || exit 1; done'

say "--- names several snapshots share, slots added after a snapshot, parents in a loop"
check "a snapshot named x" "$VMDKIT" snapshot --name x $S
check "another one named x" "$VMDKIT" snapshot --name x $S
sums_of $S/Srv.vmx $S/Srv.vmsd >"$TMP/sums.txt"
expect_exit 9 "revert to a name two snapshots have" "$VMDKIT" snapshot revert $S x &&
    assert_true "the message gives their uids" grep -q '2 snapshots are named "x" (uids 19, 20)' "$ERR"
check "a second disk" "$VMDKIT" create $S/Extra.vmdk 1M
"$VMDKIT" vmx set $S/Srv.vmx scsi0:1.fileName Extra.vmdk
sums_of $S/Srv.vmx $S/Srv.vmsd >"$TMP/sums.txt"
expect_exit 5 "revert to a snapshot without the new slot" "$VMDKIT" snapshot revert $S 15 &&
    assert_true "the message names the slot" grep -q 'scsi0:1: added after snapshot 15' "$ERR"
assert_eq "nothing was written" "$(cat "$TMP/sums.txt")" "$(sums_of $S/Srv.vmx $S/Srv.vmsd)"
printf 'snapshot.current = "2"\nsnapshot0.uid = "1"\nsnapshot0.parent = "2"\nsnapshot1.uid = "2"\nsnapshot1.parent = "1"\nsnapshot2.uid = "3"\n' >loop.vmsd
check "list of a .vmsd whose parents go round" "$VMDKIT" snapshot list loop.vmsd
assert_eq "the root, the entries of the loop, no You are here in the tree" \
    '3  ""  no time|(parents in a loop) 1  ""  no time|(parents in a loop) 2  ""  no time|You are here (snapshot.current names no snapshot in the tree)' \
    "$(sed -n '2,$p' "$OUT" | paste -sd '|')"

finish
