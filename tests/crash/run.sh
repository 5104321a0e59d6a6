#!/usr/bin/env bash
# run.sh TRIALS [FIRST_SEED] - kill a writer at random points and check the
# disk it leaves behind.
#
# Each trial makes a fresh disk of one of these shapes (chosen by the seed):
#   mono       monolithicSparse, redundant tables
#   mono-nord  monolithicSparse whose header says "no redundant tables"
#   mono-zg    monolithicSparse with zeroed-grain entries, zeroing operations
#   split      twoGbMaxExtentSparse of two pieces, writes across the boundary
#   split-zg   the same without redundant tables, zeroed grains, zeroing
#   delta      a child of a filled parent (copy-on-write of partial grains)
#   qemu       monolithicSparse made by qemu-img (its layout), when installed
# runs crash_writer on it, sends SIGKILL after 0 to 200 ms, and then requires:
#   - `vmdkit check DISK` finds no corruption (exit 0, or 3 for leaked space);
#   - every operation acknowledged by a completed flush reads back
#     (crash_writer verify);
#   - a second writing session on the crashed disk ends cleanly, and check
#     still finds no corruption.
# Once per shape, a writer that is not killed is cross-checked against
# qemu-img's reading of the disk.
#
# Environment: VMDKIT (vmdkit binary), CRASH_WRITER (crash_writer binary),
# CRASH_KEEP (folder where failing trials are kept; default
# ${TMPDIR:-/tmp}/vmdkit-crash-failures).  Exit 0 when every trial passed.
set -u
TRIALS=${1:-200}
FIRST=${2:-1}
VMDKIT=${VMDKIT:-vmdkit}
CRASH_WRITER=${CRASH_WRITER:-crash_writer}
KEEP=${CRASH_KEEP:-${TMPDIR:-/tmp}/vmdkit-crash-failures}
SPLIT_BYTES=$((8323072 * 512))   # one twoGbMaxExtentSparse piece (4064 MiB, the default)
MIB=$((1024 * 1024))

for tool in "$VMDKIT" "$CRASH_WRITER"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool not found (set VMDKIT and CRASH_WRITER)"
        exit 1
    fi
done
if ! "$VMDKIT" help check >/dev/null 2>&1; then
    echo "FAIL: this vmdkit has no check command"
    exit 1
fi
HAVE_QEMU=0
command -v qemu-img >/dev/null 2>&1 && HAVE_QEMU=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-crash.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
SHAPES=(mono mono-nord mono-zg split split-zg delta)
((HAVE_QEMU)) && SHAPES+=(qemu)

passed=0
failed=0
in_flight=0     # trials killed with unflushed operations started
durable_sum=0   # operations durable at the kill, summed over trials

# clear_redundant FILE: clear header flag bit 1 (redundant grain tables).
clear_redundant() {
    local flags
    flags=$(od -A n -t u4 -j 8 -N 4 "$1" | tr -d ' ')
    flags=$((flags & ~2))
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((flags & 255)) $(((flags >> 8) & 255)) \
        $(((flags >> 16) & 255)) $(((flags >> 24) & 255)))" |
        dd of="$1" bs=1 seek=8 conv=notrunc status=none
}

# make_disk SHAPE DIR SEED: create the disk; sets DISK and WARGS (writer options).
make_disk() {
    local shape=$1 dir=$2 seed=$3
    DISK=$dir/d.vmdk
    WARGS=()
    case $shape in
    mono)
        "$VMDKIT" create "$DISK" 16M >/dev/null ;;
    mono-nord)
        "$VMDKIT" create "$DISK" 16M >/dev/null && clear_redundant "$DISK" ;;
    mono-zg)
        "$VMDKIT" create --zeroed-grain "$DISK" 16M >/dev/null && WARGS=(-z) ;;
    split | split-zg)
        local opt=()
        [ "$shape" = split-zg ] && opt=(--zeroed-grain)
        "$VMDKIT" create -t twoGbMaxExtentSparse "${opt[@]}" "$DISK" $((SPLIT_BYTES + 4 * MIB)) \
            >/dev/null || return 1
        if [ "$shape" = split-zg ]; then
            clear_redundant "$dir/d-s001.vmdk" && clear_redundant "$dir/d-s002.vmdk" || return 1
            WARGS=(-z)
        fi
        WARGS+=(-w 0:$((4 * MIB)) -w $((SPLIT_BYTES - 4 * MIB)):$((8 * MIB))) ;;
    delta)
        "$VMDKIT" create "$dir/base.vmdk" 16M >/dev/null &&
            "$CRASH_WRITER" write "$dir/base.vmdk" "$dir/base.journal" $((seed + 1000000)) -n 200 \
                >/dev/null &&
            "$VMDKIT" create -b "$dir/base.vmdk" "$DISK" 16M >/dev/null || return 1
        WARGS=(-b $((seed + 1000000)):200) ;;
    qemu)
        qemu-img create -q -f vmdk "$DISK" 16M ;;
    esac
}

# keep_case NAME: save the trial's folder for a post-mortem.
keep_case() {
    mkdir -p "$KEEP" && cp -a "$T" "$KEEP/$1" 2>/dev/null
    echo "       kept in $KEEP/$1"
}

# check_disk WHAT: vmdkit check must find no corruption.
check_disk() {
    "$VMDKIT" check "$DISK" >"$T/check.out" 2>&1
    local rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
        echo "FAIL - seed $seed ($shape): check after $1 exits $rc"
        sed 's/^/         /' "$T/check.out" | tail -n 15
        return 1
    fi
    return 0
}

# cross_check SHAPE: a complete (unkilled) run must read the same in qemu-img.
cross_check() {
    local shape=$1 seed=424242
    T=$WORK/cross-$shape
    mkdir -p "$T"
    make_disk "$shape" "$T" $seed || { echo "FAIL - $shape: could not create the disk"; return 1; }
    if ! "$CRASH_WRITER" write "$DISK" "$T/journal" $seed -n 400 "${WARGS[@]}" >"$T/w.out" 2>&1; then
        echo "FAIL - $shape: uninterrupted writer failed"; cat "$T/w.out"; return 1
    fi
    check_disk "a clean close" || return 1
    if ((HAVE_QEMU)) && [ "$shape" != split ] && [ "$shape" != split-zg ]; then
        qemu-img convert -O raw "$DISK" "$T/d.raw" &&
            "$CRASH_WRITER" verify "$T/d.raw" "$T/journal" $seed -n 400 -r "${WARGS[@]}" \
                >"$T/v.out" 2>&1 || {
            echo "FAIL - $shape: qemu-img does not read what vmdkit wrote"; cat "$T/v.out"; return 1
        }
    fi
    "$CRASH_WRITER" verify "$DISK" "$T/journal" $seed -n 400 "${WARGS[@]}" >"$T/v.out" 2>&1 || {
        echo "FAIL - $shape: uninterrupted writer: verify"; cat "$T/v.out"; return 1
    }
    rm -rf "$T"
    return 0
}

for shape in "${SHAPES[@]}"; do
    if cross_check "$shape"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done

start=$SECONDS
for ((n = 0; n < TRIALS; n++)); do
    seed=$((FIRST + n))
    shape=${SHAPES[seed % ${#SHAPES[@]}]}
    T=$WORK/t$seed
    mkdir -p "$T"
    if ! make_disk "$shape" "$T" "$seed"; then
        echo "FAIL - seed $seed ($shape): could not create the disk"
        failed=$((failed + 1))
        continue
    fi
    delay_us=$(((seed * 2654435761) % 200000)) # from the seed, to replay a trial
    "$CRASH_WRITER" write "$DISK" "$T/journal" "$seed" "${WARGS[@]}" >"$T/w.out" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%06d' $((delay_us / 1000000)) $((delay_us % 1000000)))"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    wrc=$?
    if [ $wrc -ne 137 ] && [ $wrc -ne 0 ]; then
        echo "FAIL - seed $seed ($shape): writer exited $wrc before the kill"
        sed 's/^/         /' "$T/w.out"
        keep_case "seed-$seed"
        failed=$((failed + 1))
        continue
    fi
    ok=1
    check_disk "SIGKILL at ${delay_us}us" || ok=0
    if ((ok)) && ! "$CRASH_WRITER" verify "$DISK" "$T/journal" "$seed" "${WARGS[@]}" >"$T/v.out" 2>&1; then
        echo "FAIL - seed $seed ($shape): flushed data lost after SIGKILL at ${delay_us}us"
        sed 's/^/         /' "$T/v.out"
        ok=0
    fi
    # the crashed disk must take further writes and close cleanly
    if ((ok)) && ! "$CRASH_WRITER" write "$DISK" "$T/journal2" $((seed + 5000000)) -n 40 "${WARGS[@]}" \
        >"$T/w2.out" 2>&1; then
        echo "FAIL - seed $seed ($shape): writing to the crashed disk failed"
        sed 's/^/         /' "$T/w2.out"
        ok=0
    fi
    ((ok)) && { check_disk "a second session" || ok=0; }
    if ((ok)); then
        passed=$((passed + 1))
        read -r durable started < <(sed -n 's/^verified: \([0-9]*\) operations durable, \([0-9]*\) started$/\1 \2/p' "$T/v.out")
        durable_sum=$((durable_sum + ${durable:-0}))
        [ "${started:-0}" -gt "${durable:-0}" ] && in_flight=$((in_flight + 1))
        rm -rf "$T"
    else
        failed=$((failed + 1))
        keep_case "seed-$seed"
    fi
done

echo "crash trials: $TRIALS in $((SECONDS - start)) s (seeds $FIRST..$((FIRST + TRIALS - 1))), shapes: ${SHAPES[*]}"
echo "killed with unflushed operations in flight: $in_flight; operations durable at the kill: $((durable_sum / (TRIALS > 0 ? TRIALS : 1))) on average"
echo "crash: $passed passed, $failed failed"
[ $failed -eq 0 ]
