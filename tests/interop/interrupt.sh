#!/usr/bin/env bash
# Interrupted convert and full clones leave nothing behind.
#  1. SIGINT, SIGTERM and SIGHUP in the middle of a convert (with and
#     without -p), a full clone of a disk and of a machine: the command
#     removes its partial output, says so in one line, and ends by the
#     signal (the shell sees 128+N); the folder is as it was before, the
#     source unchanged.  A SIGINT that was ignored when vmdkit started (a
#     background job) stays ignored: that convert completes.
#  2. kill -9 in the middle of a convert, a full clone of a disk and of a
#     machine leaves a hidden .vmdkit-tmp- folder and no destination; the
#     same command run again succeeds, gives a copy equal to the source
#     and leaves no .vmdkit-tmp- entry.
# Each signal is sent once the hidden build folder holds 8 MiB of the
# output (or, with -p, once progress is reported), 384 MiB of random data
# before the end.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need openssl
mk_tmpdir
LOGS=$TMP/.logs
mkdir "$LOGS" lib
cd lib || exit 1

say "--- the source: 384 MiB of random data, as a raw file, a disk and a machine"
random_bytes 11 $((384 << 20)) >"$TMP/src.raw" || exit 1
mkdir Base.vmwarevm
check "convert it into Base.vmwarevm/Base.vmdk" "$VMDKIT" convert -f raw "$TMP/src.raw" Base.vmwarevm/Base.vmdk
printf '.encoding = "UTF-8"\ndisplayName = "Base"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "Base.vmdk"\n' \
    >Base.vmwarevm/Base.vmx
SUMS=$(sums_of Base.vmwarevm/Base.vmx Base.vmwarevm/Base.vmdk)
BEFORE=$(ls -A)

# start CMD...: run CMD in the background (its own process group, so that
# SIGINT is not ignored as in a job without job control); PID is its pid.
start() {
    set -m
    "$@" >"$LOGS/out" 2>"$LOGS/err" &
    PID=$!
    set +m
}

# build_bytes: bytes in the hidden build folders of this folder.
build_bytes() {
    local d total=0
    for d in .*.vmdkit-tmp-*; do
        [ -d "$d" ] && total=$((total + $(du -sb "$d" | cut -f1)))
    done
    echo $total
}

# wait_until DESC CMD...: poll CMD every 10 ms for up to 30 s.
wait_until() {
    local desc=$1 i
    shift
    for ((i = 0; i < 3000; i++)); do
        "$@" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.01
    done
    fail "$desc: not seen before the command ended or 30 s passed"
    return 1
}
building() { [ "$(build_bytes)" -ge $((8 << 20)) ]; }
reporting() { grep -q '"done":[1-9]' "$LOGS/err"; }

# interrupted SIG CODE DESC: send SIG to the running command; it must end
# by it (status CODE) after one line saying what it removed, leaving the
# folder as it was.
interrupted() {
    local sig=$1 code=$2 desc=$3
    kill -s "$sig" "$PID"
    wait "$PID"
    RC=$?
    assert_eq "$desc: ends by SIG$sig (status $code)" "$code" "$RC"
    assert_eq "$desc: says what it did" "1" \
        "$(grep -c '^vmdkit: .*: cancelled; the partial \(output\|clone\) was removed$' "$LOGS/err")"
    assert_eq "$desc: nothing left in the folder" "$BEFORE" "$(ls -A)"
    assert_true "$desc: no sanitizer report" \
        sh -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' '$LOGS/err'"
}

say "--- 1. signals"
start "$VMDKIT" convert --progress=json -f raw -t streamOptimized "$TMP/src.raw" out.vmdk
wait_until "convert -p: progress" reporting && interrupted INT 130 "convert -p -t streamOptimized, SIGINT"
start "$VMDKIT" convert -f raw "$TMP/src.raw" out.vmdk
wait_until "convert: the build folder fills" building && interrupted TERM 143 "convert without -p, SIGTERM"
start "$VMDKIT" convert -f raw -O raw "$TMP/src.raw" out.raw
wait_until "convert -O raw: the build folder fills" building && interrupted HUP 129 "convert -O raw, SIGHUP"
start "$VMDKIT" clone Base.vmwarevm/Base.vmdk Copy.vmdk
wait_until "clone of a disk: the build folder fills" building && interrupted INT 130 "full clone of a disk, SIGINT"
start "$VMDKIT" clone Base.vmwarevm Copy.vmwarevm
wait_until "clone of a machine: the build folder fills" building &&
    interrupted TERM 143 "full clone of a machine, SIGTERM"
assert_eq "the source machine is unchanged" "$SUMS" "$(sums_of Base.vmwarevm/Base.vmx Base.vmwarevm/Base.vmdk)"

# without job control a background job ignores SIGINT: so does vmdkit
"$VMDKIT" convert -f raw "$TMP/src.raw" out.vmdk >"$LOGS/out" 2>"$LOGS/err" &
PID=$!
wait_until "convert with SIGINT ignored: the build folder fills" building
kill -s INT "$PID"
wait "$PID"
RC=$?
assert_eq "a convert that started with SIGINT ignored completes" 0 "$RC"
check "its output equals the source" "$VMDKIT" compare -f raw "$TMP/src.raw" out.vmdk
rm -f out.vmdk

say "--- 2. kill -9, then the same command again"
# killed CMD...: run CMD, SIGKILL it while its build folder fills, run it again
killed() {
    local desc=$1
    shift
    start "$@"
    wait_until "$desc: the build folder fills" building || return 1
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null
    assert_eq "$desc: killed, one hidden folder is left" 1 "$(ls -A | grep -c 'vmdkit-tmp-')"
    check "$desc: run again" "$@"
    assert_eq "$desc: no hidden folder is left" "" "$(ls -A | grep 'vmdkit-tmp-')"
}
killed "convert" "$VMDKIT" convert -f raw -t twoGbMaxExtentSparse "$TMP/src.raw" out.vmdk
check "the convert equals the source" "$VMDKIT" compare -f raw "$TMP/src.raw" out.vmdk
check "vmdkit check of it" "$VMDKIT" check out.vmdk
killed "full clone of a disk" "$VMDKIT" clone Base.vmwarevm/Base.vmdk Copy.vmdk
check "the clone equals the source" "$VMDKIT" compare Base.vmwarevm/Base.vmdk Copy.vmdk
killed "full clone of a machine" "$VMDKIT" clone Base.vmwarevm Copy.vmwarevm
check "the machine's clone equals the source" "$VMDKIT" compare Base.vmwarevm/Base.vmdk Copy.vmwarevm/Copy.vmdk
assert_eq "its folder holds the clone only" "Copy.vmdk Copy.vmx" "$(ls -A Copy.vmwarevm | tr '\n' ' ' | sed 's/ $//')"
assert_eq "the source machine is unchanged" "$SUMS" "$(sums_of Base.vmwarevm/Base.vmx Base.vmwarevm/Base.vmdk)"

say "--- 3. a move to another file system: SIGINT, then kill -9 and again"
SHM=/dev/shm
if [ -d $SHM ] && [ -w $SHM ] && [ "$(stat -c %d $SHM)" != "$(stat -c %d .)" ]; then
    DST=$SHM/$(basename "$TMP")-mv
    mkdir "$DST"
    # copying: the hidden folder in DST holds 8 MiB of the copy
    copying() {
        local d total=0
        for d in "$DST"/.*.vmdkit-tmp-*; do
            [ -d "$d" ] && total=$((total + $(du -sb "$d" | cut -f1)))
        done
        [ "$total" -ge $((8 << 20)) ]
    }
    start "$VMDKIT" mv Base.vmwarevm "$DST"/
    if wait_until "mv to another file system: the copy fills" copying; then
        kill -s INT "$PID"
        wait "$PID"
        RC=$?
        assert_eq "mv, SIGINT: ends by SIGINT (status 130)" 130 "$RC"
        assert_true "mv, SIGINT: says nothing was moved" grep -q 'cancelled; nothing was moved, the partial copy was removed' "$LOGS/err"
        assert_eq "mv, SIGINT: nothing left where it was going" "" "$(ls -A "$DST")"
        assert_eq "mv, SIGINT: the source is whole" "$SUMS" "$(sums_of Base.vmwarevm/Base.vmx Base.vmwarevm/Base.vmdk)"
    fi
    start "$VMDKIT" mv Base.vmwarevm "$DST"/
    if wait_until "mv again: the copy fills" copying; then
        kill -KILL "$PID"
        wait "$PID" 2>/dev/null
        assert_eq "mv, kill -9: one hidden folder is left there" 1 "$(ls -A "$DST" | grep -c 'vmdkit-tmp-')"
        check "mv, run again" "$VMDKIT" mv Base.vmwarevm "$DST"/
        assert_eq "mv, run again: no hidden folder is left" "Base.vmwarevm" "$(ls -A "$DST")"
        assert_eq "the machine arrived whole" "$SUMS" \
            "$(cd "$DST" && sums_of Base.vmwarevm/Base.vmx Base.vmwarevm/Base.vmdk)"
    fi
    rm -rf "$DST"
else
    say "       (/dev/shm is not another writable file system here: part 3 skipped)"
fi

finish
