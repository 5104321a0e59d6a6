#!/usr/bin/env bash
# convert_kill.sh [TRIALS_PER_TYPE] [FIRST_SEED] - kill `vmdkit convert` with
# SIGKILL at a random instant, for every output type, and check what it
# leaves under the destination's names.
#
# The source is a 2111 MiB raw file holding 32 MiB of data (random and
# text) in four places, one across 2047 MiB, so that twoGbMaxExtent*
# outputs have two extent files.  For each output type - raw,
# monolithicSparse, monolithicFlat, twoGbMaxExtentSparse,
# twoGbMaxExtentFlat, streamOptimized, vmfs - one uninterrupted convert is
# timed (T) and its file names recorded; then each trial starts a convert,
# sends SIGKILL after a delay drawn from the seed in [0, 1.2 T], and
# requires:
#   - DST is absent, or complete: `vmdkit check` passes (VMDK outputs) and
#     `vmdkit compare` finds it equal to the source, with every extent file;
#   - when DST is absent, any extent name present is a second name (hard
#     link) of a file in the hidden build folder, never a file of its own;
#   - after removing a complete DST, the same convert run again succeeds,
#     gives a copy equal to the source, and leaves no ".vmdkit-tmp-" entry.
# Prints, per type, how many trials left DST absent and how many complete.
#
# Environment: VMDKIT (the binary), CRASH_KEEP (where failing trials are
# kept; default ${TMPDIR:-/tmp}/vmdkit-crash-failures).
set -u
PER_TYPE=${1:-6}
FIRST=${2:-1}
VMDKIT=${VMDKIT:-vmdkit}
KEEP=${CRASH_KEEP:-${TMPDIR:-/tmp}/vmdkit-crash-failures}
MIB=$((1024 * 1024))
TYPES=(raw monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized vmfs)

command -v "$VMDKIT" >/dev/null 2>&1 || { echo "FAIL: $VMDKIT not found (set VMDKIT)"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-convert-kill.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/src.raw
LOG=$WORK/log   # the commands' output, outside the folders under test
mkdir "$LOG" || exit 1

# the source: holes, random data, text, data across the split boundary
truncate -s $(((2047 + 64) * MIB)) "$SRC" &&
    head -c $((12 * MIB)) /dev/urandom | dd of="$SRC" bs=1M seek=0 conv=notrunc status=none &&
    seq -f '%012.0f vmdkit convert kill trial text line' 1 200000 | head -c $((4 * MIB)) |
    dd of="$SRC" bs=1M seek=100 conv=notrunc status=none &&
    head -c $((12 * MIB)) /dev/urandom | dd of="$SRC" bs=1M seek=2041 conv=notrunc status=none &&
    head -c $((4 * MIB)) /dev/urandom | dd of="$SRC" bs=1M seek=2107 conv=notrunc status=none ||
    { echo "FAIL: could not make the source"; exit 1; }

passed=0
failed=0
now_us() { echo $(($(date +%s%N) / 1000)); }

# convert_args TYPE: sets ARGS (the convert command) and DST.
convert_args() {
    if [ "$1" = raw ]; then
        DST=$T/d.raw
        ARGS=("$VMDKIT" convert -f raw -O raw "$SRC" "$DST")
    else
        DST=$T/d.vmdk
        ARGS=("$VMDKIT" convert -f raw -t "$1" "$SRC" "$DST")
    fi
}

# names_in DIR: visible entries (the output's files), one line.
names_in() { (cd "$1" && ls | tr '\n' ' '); }

# complete TYPE: DST passes check (VMDK) and equals the source.
complete() {
    if [ "$1" != raw ] && ! "$VMDKIT" check "$DST" >"$LOG/check.out" 2>&1; then
        echo "       check: $(tail -n 3 "$LOG/check.out" | tr '\n' ' ')"
        return 1
    fi
    "$VMDKIT" compare -f raw "$SRC" "$DST" >"$LOG/compare.out" 2>&1 || {
        echo "       compare: $(tr '\n' ' ' <"$LOG/compare.out")"
        return 1
    }
}

trial_fail() {
    echo "FAIL - $type seed $seed (SIGKILL at ${delay_us}us): $*"
    mkdir -p "$KEEP" && rm -rf "$KEEP/convert-$type-$seed" && mv "$T" "$KEEP/convert-$type-$seed" &&
        echo "       kept in $KEEP/convert-$type-$seed (without the source)"
    failed=$((failed + 1))
}

start=$SECONDS
seed=$FIRST
for type in "${TYPES[@]}"; do
    # the reference: time and file names of an uninterrupted convert
    T=$WORK/ref-$type
    mkdir -p "$T"
    convert_args "$type"
    t0=$(now_us)
    "${ARGS[@]}" >"$LOG/out" 2>&1
    rc=$?
    ref_us=$(($(now_us) - t0))
    if [ $rc -ne 0 ] || ! complete "$type"; then
        echo "FAIL - $type: an uninterrupted convert does not give a complete copy (exit $rc)"
        cat "$LOG/out"
        failed=$((failed + 1))
        continue
    fi
    ref_names=$(names_in "$T")
    rm -rf "$T"
    absent=0
    whole=0
    for ((k = 0; k < PER_TYPE; k++, seed++)); do
        T=$WORK/t-$type-$seed
        mkdir -p "$T"
        convert_args "$type"
        delay_us=$(((seed * 2654435761 % 1000003) * ref_us * 12 / 10 / 1000003))
        "${ARGS[@]}" >"$LOG/out" 2>&1 &
        pid=$!
        sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
        kill -KILL $pid 2>/dev/null
        wait $pid 2>/dev/null
        rc=$?
        if [ $rc -ne 137 ] && [ $rc -ne 0 ]; then
            trial_fail "convert exited $rc before the kill: $(tr '\n' ' ' <"$LOG/out")"
            continue
        fi
        if [ -e "$DST" ]; then
            if [ "$(names_in "$T")" != "$ref_names" ]; then
                trial_fail "DST exists with the files '$(names_in "$T")', expected '$ref_names'"
                continue
            fi
            if ! complete "$type"; then
                trial_fail "DST exists but is not a complete copy"
                continue
            fi
            whole=$((whole + 1))
            (cd "$T" && rm -f $ref_names) # make room for the second run
        else
            # extent names a cut publication gave out: second names only
            own=
            for f in "$T"/*; do
                [ -e "$f" ] || continue
                [ "$(stat -c %h "$f")" -ge 2 ] || own="$own $(basename "$f")"
            done
            if [ -n "$own" ]; then
                trial_fail "DST is absent but these files are not the build folder's:$own"
                continue
            fi
            absent=$((absent + 1))
        fi
        # the same command again: it succeeds and cleans up what the kill left
        if ! "${ARGS[@]}" >"$LOG/out" 2>&1; then
            trial_fail "the convert run again fails: $(tr '\n' ' ' <"$LOG/out")"
            continue
        fi
        if ! complete "$type"; then
            trial_fail "the second convert is not a complete copy"
            continue
        fi
        left=$(ls -A "$T" | grep -c 'vmdkit-tmp-')
        if [ "$left" -ne 0 ]; then
            trial_fail "the second convert left $(ls -A "$T" | grep 'vmdkit-tmp-' | tr '\n' ' ')"
            continue
        fi
        if [ "$(names_in "$T")" != "$ref_names" ]; then
            trial_fail "after the second convert: files '$(names_in "$T")', expected '$ref_names'"
            continue
        fi
        passed=$((passed + 1))
        rm -rf "$T"
    done
    echo "$type: uninterrupted ${ref_us}us; $PER_TYPE kills: DST absent $absent, complete $whole"
done
echo "convert kill trials: $((passed + failed)) in $((SECONDS - start)) s (seeds $FIRST..$((seed - 1)))"
echo "convert kill: $passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
