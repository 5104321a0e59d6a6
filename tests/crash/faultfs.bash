# faultfs.bash - sourced by the scripts that run commands under the fault
# layer (faults.sh, maint_cuts.sh).  Needs VMDKIT, FAULTFS_LIB, WORK (the
# work folder), DIR (the folder the layer watches, under WORK) and KEEP;
# counts in failed, consistent and repaired.

# A sanitizer runtime wants to be loaded first; let it accept the preload.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# faulty VAR=VALUE... -- CMD...: run CMD with the fault layer and settings.
faulty() {
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env FAULTFS_DIR="$DIR" "${envs[@]}" LD_PRELOAD="$FAULTFS_LIB" "$@"
}

# faultfs_probe: the layer must see the writes of a real run, or the test
# means nothing; exits 77 (skip) in a sanitizer build that refuses it.
faultfs_probe() {
    "$VMDKIT" create "$DIR/probe.vmdk" 1M >/dev/null || exit 1
    rm -f "$WORK/count"
    faulty FAULTFS_COUNT="$WORK/count" -- "$VMDKIT" io "$DIR/probe.vmdk" -c 'write 0 4k' >/dev/null 2>"$WORK/probe.err"
    if ! grep -q '^writes [1-9]' "$WORK/count" 2>/dev/null; then
        if [ "${VMDKIT_SANITIZE:-}" = ON ] || grep -q Sanitizer "$WORK/probe.err"; then
            echo "SKIP: the fault layer cannot be preloaded into this sanitizer build:"
            sed 's/^/    /' "$WORK/probe.err" | head -n 5
            exit 77
        fi
        echo "FAIL: the fault layer saw no writes"; cat "$WORK/probe.err"; exit 1
    fi
    rm -f "$DIR"/*
}

# fail_case NAME MESSAGE [FILE-TO-SHOW]: count a failure, show the end of
# FILE, keep the watched folder in KEEP/NAME.
fail_case() {
    failed=$((failed + 1))
    echo "FAIL - $1: $2"
    [ -n "${3:-}" ] && [ -f "$3" ] && sed 's/^/         /' "$3" | tail -n 12
    mkdir -p "$KEEP" && rm -rf "${KEEP:?}/$1" && cp -a "$DIR" "$KEEP/$1" 2>/dev/null &&
        echo "       kept in $KEEP/$1"
}

# check_or_repair NAME DISK: vmdkit check finds no corruption in DISK
# (leaks allowed), or after one check --repair it finds none: counted in
# consistent or repaired (and shown).  Returns 1 (a failed case) otherwise.
check_or_repair() {
    "$VMDKIT" check "$2" >"$WORK/check.out" 2>&1
    local rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then
        consistent=$((consistent + 1))
        return 0
    fi
    if [ $rc -ne 2 ]; then
        fail_case "$1" "check of $2 exits $rc (could not check)" "$WORK/check.out"
        return 1
    fi
    cp "$WORK/check.out" "$WORK/check-before-repair.out"
    "$VMDKIT" check --repair "$2" >"$WORK/repair.out" 2>&1
    "$VMDKIT" check "$2" >"$WORK/check.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
        fail_case "$1" "$2 corrupt, and check --repair did not fix it (check exits $rc)" \
            "$WORK/check-before-repair.out"
        return 1
    fi
    repaired=$((repaired + 1))
    echo "note - $1: check found corruption in $(basename "$2"); --repair fixed it:"
    sed 's/^/         /' "$WORK/check-before-repair.out" | grep -v '^ *$' | head -n 6
    return 0
}
