#!/usr/bin/env bash
# The benchmark at tiny sizes (bench/run --smoke): every workload is built,
# every output of both tools is checked with qemu-img compare, and vmdkit
# bench must send the requests qemu-img bench sends.  No timing verdict:
# this only keeps the benchmark working.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io openssl
need_vmdkit
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -x "$SRC/bench/run" ] || skip "no bench/run in $SRC"
mk_tmpdir

start=$(date +%s)
BENCH_TMPDIR=$TMP run "$SRC/bench/run" --smoke --vmdkit "$VMDKIT"
if [ "$RC" -eq 0 ]; then
    pass "bench/run --smoke: every workload built and every output checked"
else
    fail "bench/run --smoke: exit $RC"
    show_output
fi
assert_true "the report has a line for every case" \
    test "$(grep -c '^| W[1-4] ' "$OUT")" -eq 12
assert_true "the report has the compact case and its RSS (W6)" \
    test "$(grep -c '^| W6 ' "$OUT")" -eq 2
assert_true "readfloor read the W3 chain and the single image" \
    grep -Eq '^\| W3 floor: bare preads \(readfloor\) \| chain [0-9]+ ms \| single [0-9]+ ms \|' "$OUT"
assert_true "the report says every output was checked" grep -q '^correctness: every output checked' "$OUT"
assert_true "no case failed a correctness check" sh -c "! grep -q FAILED '$OUT' '$ERR'"
say "(the smoke run took $(($(date +%s) - start)) s)"
finish
