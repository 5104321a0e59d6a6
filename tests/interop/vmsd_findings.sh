#!/usr/bin/env bash
# check and info read the machine's .vmsd, from the library model and the
# rules tree uses:
#  - info DISK lists the VMware snapshots that froze DISK or a link of its
#    chain (name, uid, machine, .vmsd), in text and as vmware-snapshots in
#    --json;
#  - check DISK reports, for the machines of DISK, a snapshot naming a
#    missing disk (history lost: exit 2), a snapshot.current no entry has,
#    a machine running on deltas no snapshot accounts for, a linked clone
#    of an unrecorded freeze and of a deleted snapshot (exit 0: the image
#    is sound), each as a "VMware" line and a vmsd finding in --json;
#  - a clean machine gives no such finding;
#  - info VM prints the machine's disks and its snapshot tree in short;
#  - check VM checks each disk of the machine, then its .vmsd once (worst
#    exit code; --json: {vm, disks, findings}); --repair takes a disk.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need jq
mk_tmpdir

# machine NAME: a bundle NAME.vmwarevm running on NAME.vmdk
machine() {
    mkdir "$1.vmwarevm"
    printf '.encoding = "UTF-8"\ndisplayName = "%s"\nscsi0:0.fileName = "%s.vmdk"\nscsi0:0.present = "TRUE"\n' \
        "$1" "$1" >"$1.vmwarevm/$1.vmx"
    check "create $1" "$VMDKIT" create "$1.vmwarevm/$1.vmdk" 8M
}
# current NAME: the disk machine NAME runs on
current() { echo "$1.vmwarevm/$("$VMDKIT" vmx get "$1.vmwarevm/$1.vmx" scsi0:0.fileName)"; }
# vmsd_kinds: the vmsd-kind of each .vmsd finding of check --json ($OUT)
vmsd_kinds() { jq -r '[.findings[] | select(.kind | startswith("vmsd")) | .kind + ":" + ."vmsd-kind"] | join(" ")' "$OUT"; }
# check_finds DESC CODE NAME KIND LINE: check of machine NAME's disk finds KIND,
# prints LINE (a grep -E pattern), exits CODE
check_finds() {
    local disk
    disk=$(current "$3")
    expect_exit "$2" "$1: check" "$VMDKIT" check "$disk"
    assert_true "$1: the VMware line" grep -qE "$5" "$OUT"
    assert_eq "$1: one VMware line" 1 "$(grep -c '^VMware' "$OUT")"
    expect_exit "$2" "$1: check --json" "$VMDKIT" check --json "$disk"
    assert_eq "$1: the finding in --json" "$4" "$(vmsd_kinds)"
    assert_eq "$1: counted" "1 $([ "${4%%:*}" = vmsd-history-lost ] && echo 1 || echo 0)" \
        "$(jq -r '"\(."vmsd-findings") \(."vmsd-history-lost")"' "$OUT")"
}

say "--- a clean machine: two snapshots"
machine Clean
check "snapshot 1" "$VMDKIT" snapshot --name "clean install" Clean.vmwarevm
check "snapshot 2" "$VMDKIT" snapshot --name updates Clean.vmwarevm
expect_exit 0 "check of the running disk" "$VMDKIT" check "$(current Clean)"
assert_eq "no VMware line" 0 "$(grep -c '^VMware' "$OUT")"
assert_eq "and the image is clean" "No errors were found on the image." "$(cat "$OUT")"
expect_exit 0 "check --json" "$VMDKIT" check --json "$(current Clean)"
assert_eq "no .vmsd finding, counts 0" "0 0 " \
    "$(jq -r '"\(."vmsd-findings") \(."vmsd-history-lost") \([.findings[].kind] | join(" "))"' "$OUT")"
check "info of the running disk" "$VMDKIT" info "$(current Clean)"
assert_true "info: the snapshot that froze its parent" grep -qF \
    "\"updates\" (uid 2) of Clean froze link 1 $(pwd -P)/Clean.vmwarevm/Clean-000001.vmdk  [$(pwd -P)/Clean.vmwarevm/Clean.vmsd snapshot1.disk0.fileName]" "$OUT"
assert_true "info: the one that froze the base" grep -qF '"clean install" (uid 1) of Clean froze link 2' "$OUT"
check "info --json" "$VMDKIT" info --json "$(current Clean)"
assert_eq "info --json: vmware-snapshots on each link" \
    "none|updates 2 Clean snapshot1.disk0.fileName|clean install 1 Clean snapshot0.disk0.fileName" \
    "$(jq -r '[., ."backing-image", ."backing-image"."backing-image"] | map(if ."vmware-snapshots" then
        (."vmware-snapshots"[] | "\(.name) \(.uid) \(.vm) \(.key)") else "none" end) | join("|")' "$OUT")"
assert_eq "info --json: the .vmsd" "$(pwd -P)/Clean.vmwarevm/Clean.vmsd" \
    "$(jq -r '."backing-image"."vmware-snapshots"[0].vmsd' "$OUT")"
check "info --chain --json" "$VMDKIT" info --chain --json "$(current Clean)"
assert_eq "info --chain --json: names per link" "|updates|clean install" \
    "$(jq -r 'map([."vmware-snapshots"[]?.name] | join(",")) | join("|")' "$OUT")"
check "info of a disk no snapshot froze" "$VMDKIT" info --json Clean.vmwarevm/Clean.vmdk
assert_eq "its own snapshot only" "clean install" "$(jq -r '."vmware-snapshots" | map(.name) | join(",")' "$OUT")"
check "tree agrees: no problem" "$VMDKIT" tree
assert_eq "tree: no problem" "" "$(sed -n '/^Problems:/,$p' "$OUT")"

say "--- running on deltas no snapshot accounts for; clones of an unrecorded freeze and of a deleted snapshot"
machine M
check "snapshot M" "$VMDKIT" snapshot --name base M.vmwarevm
check "a clone of M's snapshot" "$VMDKIT" clone --linked --snapshot base M.vmwarevm FromBase.vmwarevm
check "write into M" "$VMDKIT" io "$(current M)" -c "write -P 0x71 0 1M"
check "a clone whose freeze is not recorded" "$VMDKIT" clone --linked --no-record M.vmwarevm Hidden.vmwarevm
check_finds "M" 0 M "vmsd:unrecorded-deltas" \
    '^VMware: .*/M\.vmwarevm/M\.vmx: scsi0:0\.fileName: runs on deltas no snapshot accounts for: M-000001\.vmdk frozen below "M-000002\.vmdk"'
check_finds "the clone of the unrecorded freeze" 0 Hidden "vmsd:orphan-clone" \
    '^VMware: .*/Hidden\.vmwarevm/Hidden\.vmx: scsi0:0\.fileName: a linked clone of M\.vmwarevm/M-000001\.vmdk, which no snapshot of "M" records'
expect_exit 0 "the clone of the snapshot: check" "$VMDKIT" check "$(current FromBase)"
assert_eq "the clone of the snapshot: no VMware line" 0 "$(grep -c '^VMware' "$OUT")"
check "info of the clone names the source's snapshot" "$VMDKIT" info "$(current FromBase)"
assert_true "the snapshot of M that froze the clone's parent" grep -qF '"base" (uid 1) of M froze link 1' "$OUT"
check "delete the snapshot anyway (--force)" "$VMDKIT" snapshot delete --force M.vmwarevm base
check_finds "the clone of the deleted snapshot" 0 FromBase "vmsd:orphan-clone" \
    '^VMware: .*/FromBase\.vmwarevm/FromBase\.vmx: scsi0:0\.fileName: a linked clone of M\.vmwarevm/M\.vmdk, which no snapshot of "M" records \(deleted'

say "--- a snapshot.current no entry has"
machine C
check "snapshot C" "$VMDKIT" snapshot --name base C.vmwarevm
printf 'snapshot.current = "99"\n' >>C.vmwarevm/C.vmsd
check_finds "C" 0 C "vmsd:bad-current" \
    '^VMware: .*/C\.vmwarevm/C\.vmsd: snapshot\.current = "99": no snapshot has that uid'

say "--- a snapshot naming a disk that is not there: history lost"
machine G
check "snapshot G" "$VMDKIT" snapshot --name base G.vmwarevm
printf 'snapshot0.disk1.fileName = "Gone.vmdk"\nsnapshot0.disk1.node = "scsi0:1"\n' >>G.vmwarevm/G.vmsd
check_finds "G" 2 G "vmsd-history-lost:missing-disk" \
    '^VMware, history lost: .*/G\.vmwarevm/G\.vmsd: snapshot0\.disk1\.fileName: VMware snapshot "base" names "Gone\.vmdk": not found'
expect_exit 2 "G: text" "$VMDKIT" check "$(current G)"
assert_true "G: the summary says the image has no error" grep -q "^No errors were found on the image.$" "$OUT"
assert_true "G: and that a snapshot's history is lost" grep -q "a snapshot's history is lost" "$OUT"

say "--- info VM: the disks and the snapshot tree in short"
check "info of the clean machine" "$VMDKIT" info Clean.vmwarevm
assert_eq "info VM" "vm: $(pwd -P)/Clean.vmwarevm/Clean.vmx
disks:
  $(pwd -P)/Clean.vmwarevm/Clean-000002.vmdk
snapshots (Clean.vmwarevm/Clean.vmsd):
  uid 1: \"clean install\"
  uid 2, parent 1: \"updates\"  <- current" "$(cat "$OUT")"
check "info --json of the clean machine" "$VMDKIT" info --json Clean.vmwarevm/Clean.vmx
assert_eq "info --json VM" "$(pwd -P)/Clean.vmwarevm/Clean.vmx 1 2 1:null:clean install:false|2:1:updates:true" \
    "$(jq -r '"\(.vm) \(.disks | length) \(.current) \(.snapshots | map("\(.uid):\(.parent):\(.name):\(.current)") | join("|"))"' "$OUT")"

say "--- check VM: every disk of the machine, then its .vmsd once"
expect_exit 0 "check of the clean machine" "$VMDKIT" check Clean.vmwarevm
assert_eq "its disk, then no VMware line" "== $(pwd -P)/Clean.vmwarevm/Clean-000002.vmdk|No errors were found on the image.|0" \
    "$(head -n 2 "$OUT" | paste -sd'|')|$(grep -c '^VMware' "$OUT")"
expect_exit 2 "check of G (history lost)" "$VMDKIT" check G.vmwarevm
assert_eq "one VMware line after the disk's check" 1 "$(grep -c '^VMware, history lost: ' "$OUT")"
expect_exit 0 "check --json of C" "$VMDKIT" check --json C.vmwarevm
assert_eq "C: vm, one disk, the finding once" "$(pwd -P)/C.vmwarevm/C.vmx 1 0 bad-current 1" \
    "$(jq -r '"\(.vm) \(.disks | length) \(.disks[0].corruptions) \([.findings[]."vmsd-kind"] | join(",")) \(."vmsd-findings")"' "$OUT")"
expect_exit 1 "check --repair of a machine is refused" "$VMDKIT" check --repair C.vmwarevm
assert_err_line "check --repair VM"
finish
