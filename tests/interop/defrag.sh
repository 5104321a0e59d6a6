#!/usr/bin/env bash
# defrag.sh - vmdkit defrag puts the grains of sparse disks in virtual
# order and keeps everything else:
#  1. a zeroed-grain monolithicSparse disk written back to front (grains in
#     reverse order on the host, qemu-img map shows it): afterwards qemu-img
#     map reports host offsets rising with the virtual ones, vmdkit map is
#     unchanged (stored zeros, zeroed grains and holes stay what they were),
#     qemu-img compare and vmdkit compare find the raw model, both checks
#     are clean;
#  2. a twoGbMaxExtentSparse delta: the same, its parent untouched;
#  3. refusals: monolithicFlat (5), VMware's .lck (8);
#  4. kill trials: defrag SIGKILLed at random moments leaves a disk equal to
#     the model that passes check; the next run finishes.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img jq
need_vmdkit
mk_tmpdir

# in_order DISK [PIECE_BYTES]: do the host offsets of DISK's own data runs
# (depth 0) rise with their virtual offsets, within each piece?
in_order() {
    qemu-img map -f vmdk --output=json "$1" |
        jq -e --argjson p "${2:-0}" '[.[] | select(.data and .depth == 0 and .offset != null)]
            | group_by(if $p > 0 then (.start / $p | floor) else 0 end)
            | all(map(.offset) | . == sort)' >/dev/null
}
out_of_order() { ! in_order "$@"; }

say "--- 1. monolithicSparse written back to front"
check "create z.vmdk (zeroed-grain)" "$VMDKIT" create --zeroed-grain z.vmdk 32M
for i in 7 6 5 4 3 2 1 0; do
    check "write MiB $i" "$VMDKIT" io z.vmdk -c "write -P 0x1$i ${i}m 1m"
done
check "stored zeros at 2M, a zeroed range at 5M" "$VMDKIT" io z.vmdk -c "write -P 0 2m 1m" -c "write -z 5m 1m"
assert_true "the grains are out of order before" out_of_order z.vmdk
check "raw model" qemu-img convert -f vmdk -O raw z.vmdk z.raw
check "map before" "$VMDKIT" map z.vmdk
cp "$OUT" before.map
check "defrag" "$VMDKIT" defrag z.vmdk
assert_true "the grains are in virtual order after" in_order z.vmdk
check "map after" "$VMDKIT" map z.vmdk
assert_eq "vmdkit map unchanged" "$(cat before.map)" "$(cat "$OUT")"
check "qemu-img compare" qemu-img compare -f vmdk -F raw z.vmdk z.raw
check "vmdkit compare" "$VMDKIT" compare z.vmdk z.raw
check "qemu-img check" qemu-img check -f vmdk z.vmdk
check "vmdkit check" "$VMDKIT" check z.vmdk

say "--- 2. a split delta"
mkdir s
check "create s 5G (two pieces)" "$VMDKIT" create -t twoGbMaxExtentSparse s/s.vmdk 5G
check "base data" "$VMDKIT" io s/s.vmdk -c "write -P 0x41 0 4m"
check "snapshot" "$VMDKIT" snapshot s/s.vmdk
base_sum=$(sums_of s/s.vmdk s/s-s001.vmdk s/s-s002.vmdk)
for m in 4099 4098 4097 3 2 1; do
    check "delta write at ${m}M" "$VMDKIT" io s/s-000001.vmdk -c "write -P 0x5$((m % 10)) ${m}m 1m"
done
assert_true "the delta's grains are out of order before" out_of_order s/s-000001.vmdk $((SPLIT_SECTORS * 512))
check "model of the delta" qemu-img convert -f vmdk -O raw s/s-000001.vmdk s.raw
check "defrag the delta" "$VMDKIT" defrag s/s-000001.vmdk
assert_true "its grains are in virtual order, piece by piece" in_order s/s-000001.vmdk $((SPLIT_SECTORS * 512))
check "qemu-img compare (through the parent)" qemu-img compare -f vmdk -F raw s/s-000001.vmdk s.raw
check "vmdkit check" "$VMDKIT" check s/s-000001.vmdk
assert_eq "the parent is byte-identical" "$base_sum" "$(sums_of s/s.vmdk s/s-s001.vmdk s/s-s002.vmdk)"
rm -f s.raw

say "--- 3. refusals"
check "create f.vmdk (monolithicFlat)" "$VMDKIT" create -t monolithicFlat f.vmdk 16M
expect_exit 5 "monolithicFlat" "$VMDKIT" defrag f.vmdk
assert_err_line "monolithicFlat"
before=$(sha256 z.vmdk)
mkdir z.vmdk.lck
expect_exit 8 "VMware holds it (z.vmdk.lck)" "$VMDKIT" defrag z.vmdk
rmdir z.vmdk.lck
assert_eq "z.vmdk is byte-identical" "$before" "$(sha256 z.vmdk)"

say "--- 4. kill trials"
mkdir k
for trial in 1 2 3 4; do
    rm -f k/k.vmdk
    "$VMDKIT" create k/k.vmdk 256M >/dev/null
    for i in 144 96 48 0; do "$VMDKIT" io k/k.vmdk -c "write -P 0x$trial$((i % 10)) ${i}m 48m" >/dev/null; done
    ino=$(stat -c %i k/k.vmdk)
    qemu-img convert -f vmdk -O raw k/k.vmdk k.raw
    "$VMDKIT" defrag k/k.vmdk >/dev/null 2>&1 &
    pid=$!
    sleep "$((RANDOM % 3)).$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    say "       trial $trial: $(ls -A k | grep -c vmdkit-tmp) leftover folder(s), $([ "$(stat -c %i k/k.vmdk)" = "$ino" ] && echo old || echo new) file"
    check "trial $trial: vmdkit check" "$VMDKIT" check k/k.vmdk
    check "trial $trial: content equal" qemu-img compare -f vmdk -F raw k/k.vmdk k.raw
    check "trial $trial: the next run finishes" "$VMDKIT" defrag k/k.vmdk
    assert_true "trial $trial: in order" in_order k/k.vmdk
    check "trial $trial: content equal after it" qemu-img compare -f vmdk -F raw k/k.vmdk k.raw
    assert_eq "trial $trial: only the disk is left" "k.vmdk" "$(ls -A k)"
done
finish
