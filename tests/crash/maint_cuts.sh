#!/usr/bin/env bash
# maint_cuts.sh - power cuts during resize, compact and defrag.
#
# The fault layer (faultfs, preloaded) counts the writes each operation
# makes to the disk's folder (its hidden build folder included); then, for
# every N from 1 to that count, a power cut at the N-th write: every write
# since the last fsync/fdatasync of its file is kept, dropped or torn at a
# sector, chosen by each of CUTS_SEEDS seeds (a prefix of the run cut at
# any sync boundary, plus a random subset of the writes not yet synced),
# and once keeping every earlier write and only the first sector of the
# N-th.  After each cut:
#   - every disk of the case opens, and `vmdkit check` passes (or
#     `vmdkit check --repair` leaves a disk that check accepts; counted
#     and shown: the one write resize cannot make atomic, a header and an
#     embedded descriptor torn apart, is what --repair is for);
#   - each reads as before or after: equal to the raw model taken before
#     (resize: its old range equal, what lies beyond reads zeros, and its
#     size is the old one or the new one);
#   - the same command run again finishes: check passes, equal, the new
#     size, no hidden folder left.
# Operations: resize of a monolithicSparse disk by an odd size, of a
# twoGbMaxExtentSparse disk (a new piece), resize --chain of a base and two
# deltas, compact (half the grains zeros; and grains moving from one grain
# table's range into another's places), compact --dedupe-parent of a
# delta, compact --chain of a base and two deltas, defrag of grains
# written out of order.
#
# Environment: VMDKIT, FAULTFS_LIB, VMDKIT_SANITIZE, CUTS_SEEDS (default 2),
# CRASH_KEEP (where failing cases are kept).
set -u
VMDKIT=${VMDKIT:-vmdkit}
FAULTFS_LIB=${FAULTFS_LIB:-}
SEEDS=${CUTS_SEEDS:-2}
KEEP=${CRASH_KEEP:-${TMPDIR:-/tmp}/vmdkit-crash-failures}
MIB=$((1024 * 1024))

command -v "$VMDKIT" >/dev/null 2>&1 || { echo "FAIL: $VMDKIT not found"; exit 1; }
[ -f "$FAULTFS_LIB" ] || { echo "FAIL: FAULTFS_LIB ($FAULTFS_LIB) not found"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-cuts.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
WORK=$(cd "$WORK" && pwd -P)
mkdir "$WORK/disk" "$WORK/tpl"
DIR=$WORK/disk # the folder the fault layer watches
. "$(dirname "$0")/faultfs.bash"
faultfs_probe

passed=0 failed=0 consistent=0 repaired=0 cuts=0

size_of() { "$VMDKIT" info --json "$1" 2>/dev/null | sed -n 's/^  "virtual-size": \([0-9]*\),$/\1/p'; }

# as_before NAME: every disk of the case reads as its model, at its old
# size or NEW_SIZE (when set).
as_before() {
    local d m sz
    for d in $DISKS; do
        m=$WORK/tpl/$CASE/$d.raw
        check_or_repair "$1" "$DIR/$d" || return 1
        if ! "$VMDKIT" compare "$DIR/$d" "$m" >"$WORK/cmp.out" 2>&1; then
            fail_case "$1" "$d does not read as before" "$WORK/cmp.out"
            return 1
        fi
        sz=$(size_of "$DIR/$d")
        if [ "$sz" != "$(stat -c %s "$m")" ] && [ "$sz" != "${NEW_SIZE:-none}" ]; then
            fail_case "$1" "$d has size $sz, neither the old $(stat -c %s "$m") nor the new ${NEW_SIZE:-}"
            return 1
        fi
    done
}

# finished NAME: after the command ran again.
finished() {
    local d
    as_before "$1" || return 1
    for d in $DISKS; do
        if [ -n "${NEW_SIZE:-}" ] && [ "$(size_of "$DIR/$d")" != "$NEW_SIZE" ]; then
            fail_case "$1" "$d: not at the new size after the second run"
            return 1
        fi
    done
    if ls -A "$DIR" | grep -q vmdkit-tmp; then
        fail_case "$1" "a hidden folder is left: $(ls -A "$DIR" | tr '\n' ' ')"
        return 1
    fi
}

fresh() { rm -rf "${DIR:?}"/* "$DIR"/.[!.]* 2>/dev/null; cp -a --sparse=always "$WORK/tpl/$CASE"/*.vmdk "$DIR/"; }

# matrix CASE "DISKS" NEW-SIZE CMD...: CMD works on the disks in $DIR
# (named relative to it); the template in tpl/CASE has them and a raw model
# DISK.raw of each.
matrix() {
    CASE=$1 DISKS=$2 NEW_SIZE=$3
    shift 3
    local cmd=("$@") n s name rc w
    local d
    for d in $DISKS; do
        "$VMDKIT" convert -O raw "$WORK/tpl/$CASE/$d" "$WORK/tpl/$CASE/$d.raw" >/dev/null ||
            { fail_case "$CASE" "no model of $d"; return; }
    done
    fresh
    rm -f "$WORK/count"
    (cd "$DIR" && faulty FAULTFS_COUNT="$WORK/count" -- "${cmd[@]}") >/dev/null 2>"$WORK/err" ||
        { fail_case "$CASE" "the command fails without faults" "$WORK/err"; return; }
    finished "$CASE-uncut" || return
    w=$(awk '{w += $2} END {print w + 0}' "$WORK/count")
    echo "--- $CASE: $w writes, $(awk '{s += $4} END {print s + 0}' "$WORK/count") syncs: ${cmd[*]}"
    for ((n = 1; n <= w; n++)); do
        for ((s = 0; s <= SEEDS; s++)); do
            name=$CASE-cut-at-$n-seed-$s
            local how=(FAULTFS_CUT_NTH=$n FAULTFS_SEED=$s)
            ((s)) || { how=(FAULTFS_CUT_NTH=$n FAULTFS_TEAR_AT=1); name=$CASE-cut-at-$n-first-sector; }
            fresh
            (cd "$DIR" && faulty "${how[@]}" -- "${cmd[@]}") >/dev/null 2>"$WORK/err"
            rc=$?
            cuts=$((cuts + 1))
            if [ $rc -ne 99 ]; then
                fail_case "$name" "exit $rc, expected the power cut (99)" "$WORK/err"; continue
            fi
            as_before "$name" || continue
            if ! (cd "$DIR" && "${cmd[@]}") >/dev/null 2>"$WORK/err"; then
                fail_case "$name" "the second run fails" "$WORK/err"; continue
            fi
            finished "$name-again" || continue
            passed=$((passed + 1))
        done
    done
}

tpl() { mkdir -p "$WORK/tpl/$1" && cd "$WORK/tpl/$1"; }

# resize of a monolithicSparse disk by an odd size
(tpl resize-mono && "$VMDKIT" create d.vmdk 4M >/dev/null &&
    "$VMDKIT" io d.vmdk -c 'write -P 0x5a 0 1m' -c 'write -P 0x6b 3m 1m' >/dev/null) || exit 1
matrix resize-mono d.vmdk $((6 * MIB + 4608)) "$VMDKIT" resize d.vmdk $((6 * MIB + 4608))

# resize of a twoGbMaxExtentSparse disk: a new piece
(tpl resize-split && "$VMDKIT" create -t twoGbMaxExtentSparse d.vmdk 3M >/dev/null &&
    "$VMDKIT" io d.vmdk -c 'write -P 0x5a 0 1m' -c 'write -P 0x6b 2m 1m' >/dev/null) || exit 1
matrix resize-split d.vmdk $((5 * MIB)) "$VMDKIT" resize d.vmdk $((5 * MIB))

# resize --chain of a base and two deltas
(tpl resize-chain && "$VMDKIT" create b.vmdk 4M >/dev/null &&
    "$VMDKIT" io b.vmdk -c 'write -P 0x11 0 1m' >/dev/null && "$VMDKIT" snapshot b.vmdk >/dev/null &&
    "$VMDKIT" io b-000001.vmdk -c 'write -P 0x22 1m 1m' >/dev/null && "$VMDKIT" snapshot b-000001.vmdk >/dev/null &&
    "$VMDKIT" io b-000002.vmdk -c 'write -P 0x33 3m 1m' >/dev/null) || exit 1
matrix resize-chain "b.vmdk b-000001.vmdk b-000002.vmdk" $((5 * MIB + 512)) \
    "$VMDKIT" resize --chain --root . b-000002.vmdk $((5 * MIB + 512))

# compact: half the stored grains zeros
(tpl compact && "$VMDKIT" create d.vmdk 4M >/dev/null &&
    "$VMDKIT" io d.vmdk -c 'write -P 0x5a 0 2m' -c 'write -P 0 256k 512k' -c 'write -P 0 1m 512k' >/dev/null) || exit 1
matrix compact d.vmdk "" "$VMDKIT" compact d.vmdk

# compact in place across tables: the kept grains of grain table 1 move
# into the places of table 0's dropped zeros
(tpl compact-tables && "$VMDKIT" create d.vmdk 80M >/dev/null &&
    "$VMDKIT" io d.vmdk -c 'write -P 0x5a 0 2m' -c 'write -P 0x6b 40m 1m' -c 'write -P 0 0 1m' >/dev/null) || exit 1
matrix compact-tables d.vmdk "" "$VMDKIT" compact d.vmdk

# compact --dedupe-parent: a delta that wrote its parent's data again
(tpl dedupe && "$VMDKIT" create b.vmdk 4M >/dev/null && "$VMDKIT" io b.vmdk -c 'write -P 0x5a 0 2m' >/dev/null &&
    "$VMDKIT" snapshot b.vmdk >/dev/null &&
    "$VMDKIT" io b-000001.vmdk -c 'write -P 0x5a 0 1m' -c 'write -P 0x6b 1m 256k' >/dev/null) || exit 1
matrix dedupe "b-000001.vmdk" "" "$VMDKIT" compact --dedupe-parent b-000001.vmdk

# compact --chain: a base and two deltas, each holding zero grains (over
# zeros and, in the deltas, over their parent's data, which must stay)
(tpl compact-chain && "$VMDKIT" create b.vmdk 4M >/dev/null &&
    "$VMDKIT" io b.vmdk -c 'write -P 0x11 0 1m' -c 'write -P 0 256k 256k' >/dev/null &&
    "$VMDKIT" snapshot b.vmdk >/dev/null &&
    "$VMDKIT" io b-000001.vmdk -c 'write -P 0 512k 256k' -c 'write -P 0 2m 256k' -c 'write -P 0x22 3m 256k' >/dev/null &&
    "$VMDKIT" snapshot b-000001.vmdk >/dev/null &&
    "$VMDKIT" io b-000002.vmdk -c 'write -P 0 3m 128k' -c 'write -P 0x33 1m 128k' >/dev/null) || exit 1
matrix compact-chain "b.vmdk b-000001.vmdk b-000002.vmdk" "" "$VMDKIT" compact --chain b-000002.vmdk

# defrag: grains written back to front
(tpl defrag && "$VMDKIT" create d.vmdk 4M >/dev/null &&
    "$VMDKIT" io d.vmdk -c 'write -P 0x31 3m 512k' -c 'write -P 0x32 2m 512k' -c 'write -P 0x33 0 512k' >/dev/null) || exit 1
matrix defrag d.vmdk "" "$VMDKIT" defrag d.vmdk

echo "power cuts: $cuts; disks repaired by check --repair: $repaired"
echo "maint cuts: $passed passed, $failed failed"
[ $failed -eq 0 ]
