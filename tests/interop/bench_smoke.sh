#!/usr/bin/env bash
# The benchmark at tiny sizes (bench/run --smoke): every workload is built,
# every output of both tools is checked with qemu-img compare, and vmdkit
# bench must send the requests qemu-img bench sends.  No timing verdict:
# this only keeps the benchmark working.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io qemu-nbd nbdkit nbdcopy openssl
need_vmdkit
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -x "$SRC/bench/run" ] || skip "no bench/run in $SRC"
mk_tmpdir

start=$(date +%s)
# W7 serves W3's chain through the plugin, qemu-nbd and nbdkit file
PLUGIN_ARGS=()
[ -z "${VMDKIT_NBDKIT_PLUGIN:-}" ] || PLUGIN_ARGS=(--plugin "$VMDKIT_NBDKIT_PLUGIN")
BENCH_TMPDIR=$TMP run "$SRC/bench/run" --smoke --vmdkit "$VMDKIT" "${PLUGIN_ARGS[@]}"
if [ "$RC" -eq 0 ]; then
    pass "bench/run --smoke: every workload built and every output checked"
else
    fail "bench/run --smoke: exit $RC"
    show_output
fi
assert_true "the report has a line for every case" \
    test "$(grep -c '^| W[1-4] ' "$OUT")" -eq 18
assert_true "every convert case has its durable row: qemu-img -t writeback and the dd floor, round by round and of the medians (W1, W2)" \
    test "$(grep -Ec '^\| W[12] .*, durable \| [0-9]+ ms \| -t writeback [0-9]+ ms \| .*floor: dd conv=sparse,fdatasync of vmdkit.s output [0-9]+ ms; vmdkit / floor: [0-9.]+ round by round \(median of the rounds. ratios\), [0-9.]+ of the medians' "$OUT")" -eq 6
# one round: the median of the rounds' ratios is that round's ratio, the ratio of the medians
assert_true "with one round, each durable row's two vmdkit / floor figures agree" \
    test "$(grep '^| W[12] ' "$OUT" | sed -En 's/.*vmdkit \/ floor: ([0-9.]+) round by round \(median of the rounds. ratios\), ([0-9.]+) of the medians.*/\1 \2/p' | awk '$1 == $2' | wc -l)" -eq 6
assert_true "every default row gives qemu-img's time without the sync" \
    test "$(grep -Ec "^\| W[12] .*never flushes: its time here adds sync -d of its output, [0-9]+ ms without" "$OUT")" -eq 6
if [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ]; then
    assert_true "the report has the NBD reads through the plugin, qemu-nbd and nbdkit file (W7)" \
        test "$(grep -Ec '^\| W7 NBD read, .* \| [0-9]+ MiB/s \| qemu-nbd [0-9]+ MiB/s \| [0-9.]+ \| .*nbdkit file \(raw\) [0-9]+ MiB/s' "$OUT")" -eq 6
    assert_true "each W7 server served the bytes of the raw copy" \
        test "$(grep -Ec '^  ok: (plugin|qemu-nbd|file) serves the bytes of the raw copy' "$OUT")" -eq 3
else
    say "W7 not checked: the nbdkit plugin was not built"
fi
assert_true "the report has the compact case and its RSS (W6)" \
    test "$(grep -c '^| W6 ' "$OUT")" -eq 2
assert_true "readfloor read the W3 chain and the single image" \
    grep -Eq '^\| W3 floor: bare preads \(readfloor\) \| chain [0-9]+ ms \| single [0-9]+ ms \|' "$OUT"
assert_true "the report says every output was checked" grep -q '^correctness: every output checked' "$OUT"
assert_true "no case failed a correctness check" sh -c "! grep -q FAILED '$OUT' '$ERR'"
say "(the smoke run took $(($(date +%s) - start)) s)"
finish
