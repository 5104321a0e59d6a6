#!/usr/bin/env bash
# `vmdkit snapshot list --json` on the .vmsd files of the VM corpus (see
# ../shared/vm-corpus/SOURCES.md): the ESX file of four snapshots with UIDs
# from 15 and negative low time halves, the ESXi file whose numSnapshots
# sits after the first entry, Workstation's CRLF file with UTF-8 text, the
# files VMware leaves when every snapshot is deleted, an empty one, and a
# linked clone's.  UIDs, parents, names, descriptions, times (UTC) and
# disks are as recomputed from the files; nothing in the corpus is written.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need jq
VMC=${VMDKIT_VM_CORPUS:-}
[ -n "$VMC" ] && [ -f "$VMC/SOURCES.md" ] || skip "no VM corpus (set VMDKIT_VM_CORPUS; see ../shared/vm-corpus)"
VMC=$(cd "$VMC" && pwd)
mk_tmpdir
corpus_sums() { (cd "$VMC" && find . -type f | LC_ALL=C sort | while read -r f; do sums_of "$f"; done); }
BEFORE=$(corpus_sums)

# list FILE: list --json of a corpus .vmsd into list.json
list() { expect_exit 0 "list --json $1" "$VMDKIT" snapshot list --json "$VMC/$1" && cp "$OUT" list.json; }
q() { jq -r "$1" list.json; }

list virtuallyhyper/sql.vmsd
assert_eq "sql.vmsd: uid:parent:name" "15:-:sad 16:15:aksdn 17:16:alkBS 18:17:ASKDB" \
    "$(q '[.snapshots[] | "\(.uid):\(.parent // "-"):\(.name)"] | join(" ")')"
assert_eq "sql.vmsd: times (high 310880, low -365210110 ...)" \
    "2012-04-23T23:22:42Z 2012-04-23T23:23:21Z 2012-04-23T23:24:34Z 2012-04-23T23:25:42Z" \
    "$(q '[.snapshots[].time] | join(" ")')"
assert_eq "sql.vmsd: microseconds" "1335223362737666 1335223542526876" \
    "$(q '"\(.snapshots[0]."create-time-us") \(.snapshots[3]."create-time-us")"')"
assert_eq "sql.vmsd: the disks, numbered out of chain order" "sql.vmdk sql-000002.vmdk sql-000001.vmdk sql-000003.vmdk" \
    "$(q '[.snapshots[].disks[0].file] | join(" ")')"
assert_eq "sql.vmsd: current, lastUID, the empty description" "18 18 true" \
    "$(q '"\(.current) \(."last-uid") \(.snapshots[3].description == "")"')"
assert_eq "sql.vmsd: .vmsn files and the current flag" "sql-Snapshot15.vmsn:false sql-Snapshot18.vmsn:true" \
    "$(q '"\(.snapshots[0].vmsn):\(.snapshots[0].current) \(.snapshots[3].vmsn):\(.snapshots[3].current)"')"

list "xen-orchestra/test flo.vmsd"
assert_eq "test flo: uid:parent:name" "1:-:SNAPSHOT POST INSTALL 2:1:SECOND 3:2:third 4:3:from cli" \
    "$(q '[.snapshots[] | "\(.uid):\(.parent // "-"):\(.name)"] | join(" ")')"
assert_eq "test flo: times" "2022-11-28T15:24:12Z 2022-12-01T10:37:39Z 2022-12-01T10:52:51Z 2022-12-01T13:40:06Z" \
    "$(q '[.snapshots[].time] | join(" ")')"
assert_eq "test flo: descriptions" "blablabla|small|-|-" "$(q '[.snapshots[] | .description // "-"] | join("|")')"
assert_eq "test flo: children" "[2] [3] [4] []" "$(q '[.snapshots[] | .children | tojson] | join(" ")')"

list faithro/FaithRO-GATE5-LAB.vmsd
assert_eq "FaithRO (CRLF): one snapshot on nvme0:0" "1 GATE5-Baseline 2026-09-03T13:42:03Z nvme0:0 FaithRO-GATE5-LAB.vmdk" \
    "$(q '.snapshots[0] | "\(.uid) \(.name) \(.time) \(.disks[0].node) \(.disks[0].file)"')"
assert_true "FaithRO: the UTF-8 description, without the CR" \
    test "$(q '.snapshots[0].description')" = $'Baseline Windows 11 operacional antes das altera\xc3\xa7\xc3\xb5es controladas do cliente FaithRO.'

list metasploitable2/Metasploitable.vmsd
assert_eq "every snapshot deleted: none listed, lastUID kept, nothing current" "0 1 none" \
    "$(q '"\(.snapshots | length) \(."last-uid") \(.current // "none")"')"
list "ProjectGGZ/Windows 10 x64.vmsd"
assert_eq "the same in windows-1252" "0 3" "$(q '"\(.snapshots | length) \(."last-uid")"')"
list "windows7-vmware17/new-disk-7c5a074/Windows 7 x64.vmsd"
assert_eq "the empty .vmsd of a new machine" "0 0" "$(q '"\(.snapshots | length) \(."last-uid")"')"
list Vagrant_VMware/centos-7-1-1.x86_64.vmsd
assert_eq "a linked clone's .vmsd (windows-949-2000) has no snapshots" "0" "$(q '.snapshots | length')"

say "--- the same file as a machine's .vmsd"
mkdir "test flo"
cp "$VMC/xen-orchestra/test flo.vmsd" "test flo/"
printf '.encoding = "UTF-8"\nscsi0:0.fileName = "test flo_0-000004.vmdk"\n' >"test flo/test flo.vmx"
check "list of the machine" "$VMDKIT" snapshot list "test flo"
assert_eq "the tree: You are here below the current snapshot" \
    '1  "SNAPSHOT POST INSTALL"  2022-11-28T15:24:12Z  scsi0:0 test flo_0.vmdk|└── 2  "SECOND"  2022-12-01T10:37:39Z  scsi0:0 test flo_0-000001.vmdk|    └── 3  "third"  2022-12-01T10:52:51Z  scsi0:0 test flo_0-000002.vmdk|        └── 4  "from cli"  2022-12-01T13:40:06Z  scsi0:0 test flo_0-000003.vmdk|            └── You are here' \
    "$(sed -n '2,$p' "$OUT" | grep -v 'blablabla\|small' | paste -sd '|')"
check "list with the machine's .vmx" "$VMDKIT" snapshot list --json "test flo/test flo.vmx"
assert_eq "the same four snapshots" "1 2 3 4" "$(jq -r '[.snapshots[].uid] | join(" ")' "$OUT")"

assert_eq "nothing in the corpus was written" "$BEFORE" "$(corpus_sums)"
finish
