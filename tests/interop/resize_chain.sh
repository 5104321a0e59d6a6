#!/usr/bin/env bash
# resize_chain.sh - vmdkit resize --chain grows a whole chain with every
# disk the library finds depending on it:
#  1. a 3-link chain (B/b.vmdk, b-000001, b-000002) and two linked clones of
#     the middle link (C1/c1.vmdk, C2/c2.vmdk in sibling folders): without
#     --chain the middle link, the base and a clone are refused (7, naming
#     the parent or the dependents), nothing changed;
#  2. --chain, named by the middle link, grows all five to an odd size
#     (not a multiple of a grain): qemu-img info shows it on every member,
#     qemu-img compare against a copy taken before and against raw models
#     finds the old range equal, the new range reads zeros, qemu-img check
#     and vmdkit check are clean, CIDs and parentCIDs stay;
#  3. a crash after the base alone was grown (the state built by hand):
#     every member still opens and reads as before in vmdkit and qemu,
#     vmdkit check passes and notes each child smaller than its parent, and
#     the same command again finishes the job;
#  4. refusals with --chain: a smaller size (9), a member QEMU writes (8),
#     nothing changed.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io jq
need_vmdkit
mk_tmpdir

MiB=1048576
MEMBERS="B/b.vmdk B/b-000001.vmdk B/b-000002.vmdk C1/c1.vmdk C2/c2.vmdk"
cid_line() { dd if="$1" bs=512 skip=1 count=20 2>/dev/null | tr -d '\0' | grep -E '^(CID|parentCID)=' | tr '\n' ' '; }
sums() { for m in $MEMBERS; do sha256 "$m"; done; }

# mkchain DIR: the chain and its clones in DIR/lib
mkchain() {
    mkdir -p "$1/lib/B" "$1/lib/C1" "$1/lib/C2" && (
        cd "$1/lib" &&
            "$VMDKIT" create B/b.vmdk 64M >/dev/null &&
            "$VMDKIT" io B/b.vmdk -c "write -P 0x11 0 8m" -c "write -P 0x1f 63m 1m" >/dev/null &&
            "$VMDKIT" snapshot B/b.vmdk >/dev/null &&
            "$VMDKIT" io B/b-000001.vmdk -c "write -P 0x22 8m 8m" >/dev/null &&
            "$VMDKIT" snapshot B/b-000001.vmdk >/dev/null &&
            "$VMDKIT" io B/b-000002.vmdk -c "write -P 0x33 16m 8m" >/dev/null &&
            "$VMDKIT" clone --linked B/b-000001.vmdk C1/c1.vmdk >/dev/null &&
            "$VMDKIT" clone --linked B/b-000001.vmdk C2/c2.vmdk >/dev/null &&
            "$VMDKIT" io C1/c1.vmdk -c "write -P 0x44 4m 1m" >/dev/null &&
            "$VMDKIT" io C2/c2.vmdk -c "write -P 0x55 62m 2m" >/dev/null
    )
}

OLD=$((64 * MiB))
NEW=$((64 * MiB + 3 * MiB + 5 * 4096 + 512)) # not a multiple of a grain
check "the chain and two linked clones of its middle link" mkchain w
cd w/lib || exit 1
for m in $MEMBERS; do
    qemu-img convert -f vmdk -O raw "$m" "../$(basename "$m" .vmdk).raw" || fail "model of $m"
done
cp -a --sparse=always . ../pre
for m in $MEMBERS; do cids="$cids$(cid_line "$m")|"; done

say "--- 1. without --chain: refused, naming them"
before=$(sums)
expect_exit 7 "the middle link" "$VMDKIT" resize B/b-000001.vmdk "$NEW"
assert_err_line "the middle link"
assert_true "the message names its parent" grep -q 'delta of "b.vmdk"' "$ERR"
expect_exit 7 "the base" "$VMDKIT" resize B/b.vmdk "$NEW"
assert_err_line "the base"
assert_true "the message names its dependent" grep -q 'B/b-000001.vmdk (parent hint)' "$ERR"
expect_exit 7 "a linked clone" "$VMDKIT" resize C1/c1.vmdk "$NEW"
assert_true "the message names the clone's parent" grep -q 'delta of "../B/b-000001.vmdk"' "$ERR"
assert_eq "nothing changed" "$before" "$(sums)"

say "--- 2. --chain by an odd size"
check "resize --chain, named by the middle link" "$VMDKIT" resize --chain B/b-000001.vmdk "$NEW"
for m in $MEMBERS; do
    raw=../$(basename "$m" .vmdk).raw
    assert_eq "$m: qemu-img info shows the new size" "$NEW" "$(qemu_size "$m")"
    check "$m: qemu-img compare with the copy taken before (old range; -s would see the sizes)" \
        qemu-img compare -f vmdk -F vmdk "$m" "../pre/$m"
    check "$m: qemu-img compare with the raw model" qemu-img compare -f vmdk -F raw "$m" "$raw"
    check "$m: the new range reads zeros" "$VMDKIT" io "$m" -c "read -P 0 $OLD $((NEW - OLD))"
    check "$m: qemu-io reads the new range as zeros" qemu-io -f vmdk -r -c "read -P 0 $OLD $((NEW - OLD))" "$m"
    check "$m: qemu-img check" qemu-img check -f vmdk "$m"
    check "$m: vmdkit check" "$VMDKIT" check "$m"
    assert_true "$m: vmdkit check has nothing to note" [ ! -s "$ERR" ]
done
for m in $MEMBERS; do cids2="$cids2$(cid_line "$m")|"; done
assert_eq "CIDs and parentCIDs stay" "$cids" "$cids2"
check "a second run is a no-op" "$VMDKIT" resize --chain B/b.vmdk "$NEW"
cd ../.. || exit 1

say "--- 3. a crash after the base was grown"
check "a fresh chain" mkchain x
cd x/lib || exit 1
for m in $MEMBERS; do
    qemu-img convert -f vmdk -O raw "$m" "../$(basename "$m" .vmdk).raw" || fail "model of $m"
done
# the state a crash right after the first member leaves: the base grown alone
mkdir ../solo && cp --sparse=always B/b.vmdk ../solo/b.vmdk
check "the base grown on its own (a copy, elsewhere)" "$VMDKIT" resize --root ../solo ../solo/b.vmdk "$NEW"
mv ../solo/b.vmdk B/b.vmdk
for m in $MEMBERS; do
    raw=../$(basename "$m" .vmdk).raw
    check "$m: vmdkit reads it as before" "$VMDKIT" compare "$m" "$raw"
    check "$m: qemu-img reads it as before" qemu-img compare -f vmdk -F raw "$m" "$raw"
    check "$m: qemu-img check" qemu-img check -f vmdk "$m"
    check "$m: vmdkit check passes" "$VMDKIT" check "$m"
done
assert_eq "base: the new size" "$NEW" "$(qemu_size B/b.vmdk)"
assert_eq "the middle link: its old size" "$OLD" "$(qemu_size B/b-000001.vmdk)"
check "vmdkit check of the middle link" "$VMDKIT" check B/b-000001.vmdk
assert_true "notes it is smaller than its parent" grep -q 'b-000001.vmdk: capacity 131072 sectors is smaller than parent' "$OUT" "$ERR"
check "the same command again finishes" "$VMDKIT" resize --chain C2/c2.vmdk "$NEW"
for m in $MEMBERS; do
    assert_eq "$m: the new size" "$NEW" "$(qemu_size "$m")"
    check "$m: reads as before" qemu-img compare -f vmdk -F raw "$m" "../$(basename "$m" .vmdk).raw"
    check "$m: vmdkit check" "$VMDKIT" check "$m"
done

say "--- 4. refusals with --chain"
before=$(sums)
expect_exit 9 "a smaller size" "$VMDKIT" resize --chain B/b.vmdk 32M
assert_err_line "smaller"
qemu-io -f vmdk -c 'sleep 4000' C1/c1.vmdk >/dev/null 2>&1 &
qpid=$!
if wait_qemu_writer C1/c1.vmdk; then
    expect_exit 8 "QEMU writes a clone" "$VMDKIT" resize --chain B/b.vmdk 128M
    assert_true "QEMU is named" grep -q 'QEMU' "$ERR"
else
    fail "qemu-io never took its write lock"
fi
kill "$qpid" 2>/dev/null
wait "$qpid" 2>/dev/null
assert_eq "nothing changed" "$before" "$(sums)"
cd ../.. || exit 1
finish
