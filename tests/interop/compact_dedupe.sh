#!/usr/bin/env bash
# compact_dedupe.sh - vmdkit compact --dedupe-parent drops the grains of a
# delta that hold what its parent chain reads there:
#  1. a delta whose guest wrote the parent's 32 MiB pattern again shrinks
#     by at least those 32 MiB minus 1 MiB of metadata, to near zero; it
#     reads as before (qemu-img compare with a copy taken before, and with
#     a raw model), qemu-img check and vmdkit check are clean, the CID
#     stays; grains that differ in one sector, or hold new data, stay the
#     delta's (map); a child of the delta still reads the same;
#  2. --json counts the grains deduped and the zero grains apart;
#  3. plain compact keeps the identical grains (only the option drops them);
#  4. refused on a base (exit 9, one error line, the file unchanged);
#  5. kill trials: compact --dedupe-parent SIGKILLed at random moments
#     leaves a delta equal to the model that passes check.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img jq
need_vmdkit
mk_tmpdir

MiB=1048576
cid_of() { dd if="$1" bs=512 skip=1 count=20 2>/dev/null | tr -d '\0' | sed -n 's/^CID=//p'; }

# mkdelta NAME: NAME.vmdk (a base with 40 MiB of 0x5a and 4 MiB of 0x77)
# and its delta NAME-000001.vmdk: the same 32 MiB of 0x5a written again,
# one grain of 0x5a with a sector of 0x66 inside, new data over nothing,
# one grain of 0x78 over the 0x77 and 1 MiB of zeros over nothing.
mkdelta() {
    "$VMDKIT" create "$1.vmdk" 128M >/dev/null &&
        "$VMDKIT" io "$1.vmdk" -c "write -P 0x5a 0 40m" -c "write -P 0x77 64m 4m" >/dev/null &&
        "$VMDKIT" snapshot "$1.vmdk" >/dev/null &&
        "$VMDKIT" io "$1-000001.vmdk" -c "write -P 0x5a 0 32m" -c "write -P 0x5a 33m 64k" \
            -c "write -P 0x66 $((33 * MiB + 4096)) 512" -c "write -P 0x5b 48m 1m" \
            -c "write -P 0x78 64m 64k" -c "write -P 0 100m 1m" >/dev/null
}

say "--- 1. a delta that rewrote its parent's data"
check "base and delta" mkdelta b
check "a copy of the delta, taken before" cp --sparse=always b-000001.vmdk pre-000001.vmdk
check "raw model" qemu-img convert -f vmdk -O raw b-000001.vmdk d.raw
check "a child of the delta" "$VMDKIT" snapshot b-000001.vmdk
check "raw model of the child" qemu-img convert -f vmdk -O raw b-000002.vmdk c.raw
b_size=$(file_size b-000001.vmdk) cid=$(cid_of b-000001.vmdk)
check "compact --dedupe-parent --json" "$VMDKIT" compact --dedupe-parent --json b-000001.vmdk
say "       $(cat "$OUT")"
assert_eq "grains deduped (32 MiB + nothing else, of 64 KiB grains)" 512 "$(jq '."grains-deduped"' "$OUT")"
assert_eq "zero grains over nothing dropped (1 MiB)" 16 "$(jq '."grains-dropped"' "$OUT")"
a_size=$(file_size b-000001.vmdk)
assert_true "the file shrank by 31 MiB or more ($b_size -> $a_size)" [ $((b_size - a_size)) -ge $((31 * MiB)) ]
assert_true "to near zero: no more than the kept 1.125 MiB + 1 MiB of metadata ($a_size)" \
    [ "$a_size" -le $((2 * MiB + 128 * 1024)) ]
assert_eq "file-bytes-after is its size" "$a_size" "$(jq '."file-bytes-after"' "$OUT")"
check "qemu-img compare with the copy taken before" qemu-img compare -f vmdk -F vmdk b-000001.vmdk pre-000001.vmdk
check "qemu-img compare with the raw model" qemu-img compare -f vmdk -F raw b-000001.vmdk d.raw
check "vmdkit compare with the raw model" "$VMDKIT" compare b-000001.vmdk d.raw
check "qemu-img check" qemu-img check -f vmdk b-000001.vmdk
check "vmdkit check" "$VMDKIT" check b-000001.vmdk
assert_eq "CID kept" "$cid" "$(cid_of b-000001.vmdk)"
check "the child still reads the same" qemu-img compare -f vmdk -F raw b-000002.vmdk c.raw
check "map of the delta" "$VMDKIT" map b-000001.vmdk
say "$(sed 's/^/       /' "$OUT")"
assert_true "the rewritten 32 MiB read through to the parent now (up to the different grain)" grep -qE '^0x0 +0x2100000 +data +1 ' "$OUT"
assert_true "the grain with one different sector stays the delta's" grep -qE '^0x2100000 +0x10000 +data +0 ' "$OUT"
assert_true "new data over nothing stays" grep -qE '^0x3000000 +0x100000 +data +0 ' "$OUT"
assert_true "the grain of 0x78 over 0x77 stays" grep -qE '^0x4000000 +0x10000 +data +0 ' "$OUT"
assert_eq "no leftover folder" "" "$(ls -A | grep vmdkit-tmp)"

say "--- 2. plain compact keeps grains equal to the parent"
check "base and delta p" mkdelta p
check "plain compact --json" "$VMDKIT" compact --json p-000001.vmdk
assert_eq "nothing deduped" 0 "$(jq '."grains-deduped"' "$OUT")"
check "map of p's delta" "$VMDKIT" map p-000001.vmdk
assert_true "the rewritten 32 MiB are still the delta's" grep -qE '^0x0 +0x2000000 +data +0 ' "$OUT"
check "then --dedupe-parent (human line)" "$VMDKIT" compact --dedupe-parent p-000001.vmdk
assert_true "the line counts them" grep -q ', 512 grains equal to the parent dropped' "$OUT"

say "--- 3. refused on a base"
before=$(sha256 b.vmdk)
expect_exit 9 "--dedupe-parent on a base" "$VMDKIT" compact --dedupe-parent b.vmdk
assert_err_line "base"
assert_true "the message names the disk and the field" grep -q 'b.vmdk: parentFileNameHint' "$ERR"
assert_eq "b.vmdk unchanged" "$before" "$(sha256 b.vmdk)"
check "--help names the option" "$VMDKIT" compact --help
assert_true "--dedupe-parent in --help" grep -q -- '--dedupe-parent' "$OUT"

say "--- 4. kill trials"
mkdir k
for trial in 1 2 3 4; do
    rm -f k/*
    (cd k && mkdelta k) || fail "trial $trial: setup"
    qemu-img convert -f vmdk -O raw k/k-000001.vmdk k.raw
    "$VMDKIT" compact --dedupe-parent k/k-000001.vmdk >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 6))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    check "trial $trial: vmdkit check" "$VMDKIT" check k/k-000001.vmdk
    check "trial $trial: content equal" qemu-img compare -f vmdk -F raw k/k-000001.vmdk k.raw
    check "trial $trial: the next run finishes" "$VMDKIT" compact --dedupe-parent k/k-000001.vmdk
    check "trial $trial: content equal after it" qemu-img compare -f vmdk -F raw k/k-000001.vmdk k.raw
    assert_eq "trial $trial: only the disks are left" "k-000001.vmdk k.vmdk" "$(ls -A k | tr '\n' ' ' | sed 's/ $//')"
done
finish
