#!/usr/bin/env bash
# fuzz/run.sh [--no-build] [BUILD_DIR] - build the libFuzzer harnesses with
# clang and run each for a bounded time; fails on any finding.
#
# BUILD_DIR defaults to build-fuzz.  Without --no-build the folder is
# configured with CC=clang -DVMDKIT_FUZZ=ON and only the harnesses are built.
# Environment:
#   VMDKIT_FUZZ_SECONDS   seconds per harness (default 60)
#   VMDKIT_FUZZ_ONLY      space-separated harness names to run (default all)
#   VMDKIT_FUZZ_ARGS      extra libFuzzer options (e.g. -jobs=2 -workers=2)
# Inputs found that add coverage accumulate in BUILD_DIR/fuzz-corpus/NAME,
# so later runs start from there; the seeds (fuzz/corpus/NAME and the
# tests/bad files) are never modified.  A finding is saved as
# BUILD_DIR/fuzz-artifacts/NAME-crash-... (or leak-, timeout-, oom-).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=build-fuzz
NO_BUILD=0
for arg in "$@"; do
    case $arg in
    --no-build) NO_BUILD=1 ;;
    -h | --help) sed -n '2,/^set -/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) BUILD=$arg ;;
    esac
done
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SECONDS_EACH=${VMDKIT_FUZZ_SECONDS:-60}
ALL=(fuzz_descriptor fuzz_sparse fuzz_stream fuzz_chain fuzz_vmx fuzz_ovf fuzz_vmsd)
# fuzz_plugin is built where the plugin is (nbdkit's plugin header installed)
if pkg-config --exists nbdkit 2>/dev/null; then
    ALL+=(fuzz_plugin)
fi
HARNESSES=${VMDKIT_FUZZ_ONLY:-${ALL[*]}}

if ((!NO_BUILD)); then
    command -v clang >/dev/null 2>&1 || { echo "fuzz: clang is not installed"; exit 1; }
    CC=clang cmake -S "$ROOT" -B "$BUILD" -DVMDKIT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$BUILD" -j"$(nproc)" --target $HARNESSES || { echo "fuzz: build failed"; exit 1; }
fi

mkdir -p "$BUILD/fuzz-artifacts"
# the harnesses write their inputs to files: keep them in memory when we can
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
# a small quarantine: ASan's default (256 MiB of freed memory kept) alone
# would exceed the RSS cap below after a few thousand inputs
# (appended, so that it holds also when the caller set ASAN_OPTIONS, as
# scripts/test does for the sanitizer build: the last setting wins)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:quarantine_size_mb=32
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
summary=()
for h in $HARNESSES; do
    bin=$BUILD/fuzz/$h
    [ -x "$bin" ] || { echo "fuzz: $bin not built"; failed=1; summary+=("$h: not built"); continue; }
    work=$BUILD/fuzz-corpus/$h
    mkdir -p "$work"
    seeds=("$ROOT/fuzz/corpus/$h")
    case $h in
    fuzz_descriptor | fuzz_sparse | fuzz_stream) seeds+=("$ROOT/tests/bad/files") ;;
    esac
    log=$BUILD/fuzz-artifacts/$h.log
    before=$(ls "$BUILD/fuzz-artifacts" | grep -c "^$h-")
    echo "=== $h: ${SECONDS_EACH}s"
    # Resource caps make costs findings, not only crashes: -rss_limit_mb,
    # the whole process (a small input must not make vmdkit hold much; a
    # 1 GiB grain would); -malloc_limit_mb, one allocation; -timeout, one
    # input may not take seconds.
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=5 -rss_limit_mb=256 -malloc_limit_mb=256 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$h-" \
        ${VMDKIT_FUZZ_ARGS:-} "$work" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
    after=$(ls "$BUILD/fuzz-artifacts" | grep -c "^$h-")
    if [ $rc -ne 0 ] || [ "$after" -ne "$before" ]; then
        failed=1
        summary+=("$h: FINDING (exit $rc), ${execs:-?} executions; see $log")
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 8
        # enough to reproduce from a CI log alone: where it stopped, and
        # the input itself when libFuzzer printed it (small units)
        grep -E '^ +#[0-9]+ 0x' "$log" | head -n 16
        grep -E '^Base64: ' "$log" | head -n 1
    else
        summary+=("$h: ${execs:-?} executions, ${cov:-cov: ?}, no finding")
    fi
done
echo "=== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $failed
