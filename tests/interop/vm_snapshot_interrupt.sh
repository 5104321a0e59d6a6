#!/usr/bin/env bash
# snapshot take, revert and delete killed (SIGKILL) at moments spread over
# their run: afterwards the .vmsd parses and names only disks that exist,
# every snapshot still listed reads as it did when it was taken, the
# machine reads either its old state or its new one, and running the
# operation again completes it.  The delete merges 48 MiB, so most kills
# land inside the merge.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img jq timeout
mk_tmpdir

M=1048576
say "--- the template: two snapshots, 48 MiB written after each"
mkdir T.vmwarevm
printf '.encoding = "UTF-8"\ndisplayName = "T"\nscsi0:0.fileName = "T.vmdk"\nscsi0:0.present = "TRUE"\n' \
    >T.vmwarevm/T.vmx
check "create the disk" "$VMDKIT" create T.vmwarevm/T.vmdk 64M
check "write into it" "$VMDKIT" io T.vmwarevm/T.vmdk -c 'write -P 0x11 0 4M'
qemu-img convert -O raw T.vmwarevm/T.vmdk s1.raw
check "snapshot 1" "$VMDKIT" snapshot T.vmwarevm
check "48 MiB into the first delta" qemu-io -f vmdk -c "write -P 0x22 8M 48M" T.vmwarevm/T-000001.vmdk
qemu-img convert -O raw T.vmwarevm/T-000001.vmdk s2.raw
check "snapshot 2" "$VMDKIT" snapshot T.vmwarevm
check "48 MiB into the running delta" qemu-io -f vmdk -c "write -P 0x33 12M 48M" T.vmwarevm/T-000002.vmdk
qemu-img convert -O raw T.vmwarevm/T-000002.vmdk now.raw
# what the snapshots a take adds (3, and 4 when it is run again) read as
ln -s now.raw s3.raw
ln -s now.raw s4.raw

# consistent DESC: the .vmsd parses, every disk it and the .vmx name exists,
# each snapshot reads as when it was taken; OK_STATES: raw files the
# running state may read as
consistent() {
    local desc=$1 w=$2 cur ok=0 f uid raw
    shift 2
    if ! "$VMDKIT" snapshot list --json "$w" >list.json 2>err.txt; then
        fail "$desc: the .vmsd does not parse: $(cat err.txt)"
        return 1
    fi
    for f in $(jq -r '.snapshots[].disks[].file' list.json); do
        [ -e "$w/$f" ] || { fail "$desc: the .vmsd names the missing $f"; return 1; }
    done
    for uid in $(jq -r '.snapshots[].uid' list.json); do
        f=$(jq -r ".snapshots[] | select(.uid == $uid) | .disks[0].file" list.json)
        qemu-img compare -q "s$uid.raw" "$w/$f" ||
            { fail "$desc: snapshot $uid no longer reads as when it was taken"; return 1; }
    done
    cur=$w/$("$VMDKIT" vmx get "$w/T.vmx" scsi0:0.fileName)
    [ -e "$cur" ] || { fail "$desc: the .vmx names the missing $cur"; return 1; }
    for raw in "$@"; do
        qemu-img compare -q "$raw" "$cur" && ok=1
    done
    [ "$ok" = 1 ] || { fail "$desc: the machine reads neither its old nor its new state"; return 1; }
    pass "$desc"
}

# trial OP DELAY: kill `snapshot OP` after DELAY seconds, check, run again
trial() {
    local op=$1 delay=$2 w=W-$op-$2 rc
    shift 2
    rm -rf "$w" && cp -a --sparse=always T.vmwarevm "$w"
    case $op in
    take) args=(snapshot "$w") states=(now.raw) ;;
    revert) args=(snapshot revert "$w" 1) states=(now.raw s1.raw) ;;
    delete) args=(snapshot delete "$w" 2) states=(now.raw) ;;
    esac
    timeout --foreground -s KILL "$delay" "$VMDKIT" "${args[@]}" >/dev/null 2>&1
    rc=$?
    consistent "$op killed after ${delay}s (exit $rc)" "$w" "${states[@]}" || return
    # run it again: a take adds one more, a revert or delete finishes
    if [ "$op" = delete ] && ! jq -e '.snapshots[] | select(.uid == 2)' list.json >/dev/null; then
        local left=none
        [ -e "$w/T-000002.vmdk" ] && left="T-000002.vmdk, $(qemu-img compare -q now.raw "$w/T-000001.vmdk" &&
            echo merged || echo not merged yet)"
        pass "delete after ${delay}s: the entry was already gone (child left: $left)"
    else
        expect_exit 0 "$op after ${delay}s: run again" "$VMDKIT" "${args[@]}" || return
    fi
    [ "$op" = revert ] && states=(s1.raw)
    consistent "$op after ${delay}s: done" "$w" "${states[@]}"
    [ "$op" = delete ] && jq -e '.snapshots[] | select(.uid == 2)' list.json >/dev/null &&
        fail "delete after ${delay}s: snapshot 2 is still listed"
    rm -rf "$w"
}

t0=$(date +%s%N)
cp -a --sparse=always T.vmwarevm Probe.vmwarevm
"$VMDKIT" snapshot delete Probe.vmwarevm 2 >/dev/null
say "       (an uninterrupted delete takes $((($(date +%s%N) - t0) / 1000000)) ms with the copy)"
rm -rf Probe.vmwarevm

for d in 0.005 0.01 0.02 0.04; do trial take $d; done
for d in 0.005 0.01 0.02 0.04; do trial revert $d; done
for d in 0.005 0.02 0.05 0.08 0.12 0.2 0.3; do trial delete $d; done

finish
