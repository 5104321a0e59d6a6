#!/bin/bash
# check.sh - `vmdkit check` against images qemu-img makes (every subformat,
# with data written by qemu-io), against qemu-img check on damaged copies,
# its exit codes (0 clean, 2 corruption, 3 leaks only, 1 not completed),
# and --repair followed by qemu-img check.  A check without --repair never
# changes a byte of its input.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io jq
need_vmdkit
mk_tmpdir

# folder_sums: checksums of the files of the current folder.
folder_sums() {
    local f
    find . -maxdepth 1 -type f ! -name '.*' | sort | while read -r f; do sums_of "$f"; done
}

# check_exit CODE DESC DISK [OPTIONS...]: vmdkit check exits with CODE and,
# without --repair, leaves every file of the folder as it was.
check_exit() {
    local want=$1 desc=$2 disk=$3
    shift 3
    local before after
    before=$(folder_sums)
    expect_exit "$want" "$desc" "$VMDKIT" check "$@" "$disk"
    case " $* " in
    *" --repair "*) ;;
    *)
        after=$(folder_sums)
        assert_eq "$desc: files unchanged" "$before" "$after"
        ;;
    esac
}

# qemu_data DISK: data at a few places, one of them a partial grain.
qemu_data() {
    qemu-io -f vmdk -c 'write -P 0x11 0 1M' -c 'write -P 0x22 33M 64k' \
        -c 'write -P 0x33 50M 4k' "$1" >/dev/null
}

# le32 FILE OFFSET / put32 FILE OFFSET VALUE
put32() {
    local v=$3
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((v & 255)) $(((v >> 8) & 255)) \
        $(((v >> 16) & 255)) $(((v >> 24) & 255)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
gd_of() { printf '%d' "0x$(le_u64_hex "$1" 56)"; }
rgd_of() { printf '%d' "0x$(le_u64_hex "$1" 48)"; }
# gte_at FILE GRAIN [r]: byte offset of a grain's entry in the (redundant) table
gte_at() {
    local dir gt
    if [ "${3:-}" = r ]; then dir=$(rgd_of "$1"); else dir=$(gd_of "$1"); fi
    gt=$(le_u32 "$1" $((dir * 512 + 4 * ($2 / 512))))
    echo $((gt * 512 + 4 * ($2 % 512)))
}

# --- images qemu-img makes are clean ---------------------------------------
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    size=64M
    case $sub in twoGbMaxExtentSparse) size=3G ;; esac # two pieces
    mkdir -p "q-$sub" && cd "q-$sub" || exit 1
    qemu-img create -q -f vmdk -o subformat=$sub d.vmdk $size
    qemu_data d.vmdk
    check_exit 0 "qemu-img $sub is clean" d.vmdk
    cd .. || exit 1
done
mkdir -p q-zeroed && cd q-zeroed || exit 1
qemu-img create -q -f vmdk -o zeroed_grain=on d.vmdk 64M
qemu_data d.vmdk
qemu-io -f vmdk -c 'write -z 10M 1M' d.vmdk >/dev/null
check_exit 0 "qemu-img zeroed_grain with zero writes is clean" d.vmdk
# zeroing stored grains makes them zeroed-grain entries: their space leaks
qemu-io -f vmdk -c 'write -z 0 128k' d.vmdk >/dev/null
check_exit 3 "qemu-img zero writes over data leave leaked grains" d.vmdk
cd .. || exit 1
mkdir -p q-stream && cd q-stream || exit 1
qemu-img create -q -f vmdk src.vmdk 64M
qemu_data src.vmdk
qemu-img convert -O vmdk -o subformat=streamOptimized src.vmdk d.vmdk
rm -f src.vmdk
check_exit 0 "qemu-img streamOptimized is clean" d.vmdk
qemu-img create -q -f vmdk -o subformat=streamOptimized empty.vmdk 64M
check_exit 0 "empty qemu-img streamOptimized is clean" empty.vmdk
cd .. || exit 1
mkdir -p q-chain && cd q-chain || exit 1
qemu-img create -q -f vmdk base.vmdk 64M
qemu_data base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk child.vmdk 64M
qemu-io -f vmdk -c 'write -P 0x44 100k 8k' child.vmdk >/dev/null
check_exit 0 "qemu-img chain is clean" child.vmdk
cd .. || exit 1

# --- vmdkit's own output is clean -------------------------------------------
mkdir -p v && cd v || exit 1
"$VMDKIT" convert -t streamOptimized ../q-monolithicSparse/d.vmdk s.vmdk
check_exit 0 "vmdkit streamOptimized is clean" s.vmdk
"$VMDKIT" convert -t twoGbMaxExtentSparse ../q-monolithicSparse/d.vmdk t.vmdk
check_exit 0 "vmdkit twoGbMaxExtentSparse is clean" t.vmdk
cd .. || exit 1

# --- damaged copies: vmdkit and qemu-img both see corruption ---------------
mkdir -p eof && cd eof || exit 1
cp ../q-monolithicSparse/d.vmdk d.vmdk
put32 d.vmdk "$(gte_at d.vmdk 1)" 16777215
put32 d.vmdk "$(gte_at d.vmdk 1 r)" 16777215
check_exit 2 "grain table entry past the end of the file" d.vmdk
run qemu-img check d.vmdk
if [ "$RC" -ne 0 ] && grep -q ERROR "$OUT" "$ERR"; then
    pass "qemu-img check also reports it (exit $RC)"
else
    fail "qemu-img check did not report the entry past the end (exit $RC)"
fi
run "$VMDKIT" check --json d.vmdk
assert_eq "--json counts the corruption" 1 "$(json_get "$OUT" .corruptions)"
assert_eq "--json names the kind" corrupt "$(json_get "$OUT" '.findings[0].kind')"
check_exit 2 "--repair leaves it (both table copies agree)" d.vmdk --repair
cd .. || exit 1

mkdir -p cut && cd cut || exit 1
cp ../q-monolithicSparse/d.vmdk d.vmdk
truncate -s -65536 d.vmdk # the last grain is gone
check_exit 2 "file cut short: a grain lies past its end" d.vmdk
run qemu-img check d.vmdk
if [ "$RC" -ne 0 ]; then pass "qemu-img check also fails (exit $RC)"; else fail "qemu-img check accepted a cut file"; fi
cd .. || exit 1

# --- exit codes 3 and 1 -----------------------------------------------------
mkdir -p leak && cd leak || exit 1
cp ../q-monolithicSparse/d.vmdk d.vmdk
cp d.vmdk orig.vmdk
head -c 131072 /dev/urandom >>d.vmdk
check_exit 3 "leaked grains at the end" d.vmdk
run "$VMDKIT" check --json d.vmdk
assert_eq "--json leaks" 2 "$(json_get "$OUT" .leaks)"
assert_eq "--json leaked-bytes" 131072 "$(json_get "$OUT" '."leaked-bytes"')"
check_exit 0 "--repair cuts the leak" d.vmdk --repair
assert_true "repair output names the change" grep -q '^Repaired: ' "$OUT"
assert_true "repair output names the backup" grep -q 'vmdkit-repair-.*\.bak' "$OUT"
assert_eq "file back to its size" "$(file_size orig.vmdk)" "$(file_size d.vmdk)"
check "qemu-img check after repair" qemu-img check d.vmdk
check "qemu-img compare after repair" qemu-img compare orig.vmdk d.vmdk
rm -f d.vmdk.vmdkit-repair-*.bak
cd .. || exit 1

check_exit 1 "missing disk" nothing-here.vmdk
expect_exit 1 "bad option" "$VMDKIT" check --frobnicate q-monolithicFlat/d.vmdk
expect_exit 1 "no disk" "$VMDKIT" check
mkdir -p garbage && cd garbage || exit 1
printf 'not a disk at all\n' >g.vmdk
check_exit 2 "a file that is not a disk is corruption" g.vmdk
cd .. || exit 1

# --- repair from the redundant copy, then qemu-img agrees -------------------
mkdir -p rgt && cd rgt || exit 1
cp ../q-monolithicSparse/d.vmdk d.vmdk
cp d.vmdk orig.vmdk
put32 d.vmdk "$(gte_at d.vmdk 3)" 16777215 # primary table only
check_exit 2 "damaged primary grain table" d.vmdk
check_exit 0 "--repair restores it from the redundant copy" d.vmdk --repair
assert_true "the change is printed" grep -q '^Repaired: .*grain table 0' "$OUT"
check "qemu-img check after repair" qemu-img check d.vmdk
check "qemu-img compare after repair" qemu-img compare orig.vmdk d.vmdk
check_exit 0 "clean on a second look" d.vmdk
cd .. || exit 1

mkdir -p gd && cd gd || exit 1
cp ../q-monolithicSparse/d.vmdk d.vmdk
cp d.vmdk orig.vmdk
put32 d.vmdk $(($(gd_of d.vmdk) * 512 + 4)) 999999 # directory entry 1 past the end
check_exit 2 "damaged grain directory entry" d.vmdk
check_exit 0 "--repair restores the entry" d.vmdk --repair
check "qemu-img check after repair" qemu-img check d.vmdk
check "qemu-img compare after repair" qemu-img compare orig.vmdk d.vmdk
cd .. || exit 1

# --- the unclean-shutdown flag: reported, not corruption; repair clears it --
mkdir -p unclean && cd unclean || exit 1
cp ../q-monolithicSparse/d.vmdk d.vmdk
printf '\001' | dd of=d.vmdk bs=1 seek=72 conv=notrunc status=none
check_exit 0 "unclean-shutdown flag alone" d.vmdk
run "$VMDKIT" check --json d.vmdk
assert_eq "--json unclean-shutdown" true "$(json_get "$OUT" '."unclean-shutdown"')"
check_exit 0 "--repair clears the flag" d.vmdk --repair
assert_eq "flag cleared" 00 "$(od -A n -t x1 -j 72 -N 1 d.vmdk | tr -d ' ')"
assert_true "--repair says the flag is cleared" grep -qx "The unclean-shutdown flag was set and is cleared." "$OUT"
cd .. || exit 1

# --- a parent's unclean-shutdown flag: the repair of a child leaves it and says so
mkdir -p unclean-parent && cd unclean-parent || exit 1
"$VMDKIT" create base.vmdk 16M && "$VMDKIT" create -b base.vmdk child.vmdk 16M
printf '\001' | dd of=base.vmdk bs=1 seek=72 conv=notrunc status=none
base_before=$(sha256 base.vmdk)
check_exit 0 "child of a parent with the flag set: --repair" child.vmdk --repair
assert_true "the flag is reported as set" grep -qx "The unclean-shutdown flag is set." "$OUT"
assert_true "no claim that it was cleared" sh -c "! grep -q 'cleared' '$OUT'"
assert_eq "the parent is not written" "$base_before" "$(sha256 base.vmdk)"
run "$VMDKIT" check --repair --json child.vmdk
assert_eq "--json: unclean-shutdown" true "$(json_get "$OUT" '."unclean-shutdown"')"
assert_eq "--json: unclean-shutdown-cleared" false "$(json_get "$OUT" '."unclean-shutdown-cleared"')"
printf '\001' | dd of=child.vmdk bs=1 seek=72 conv=notrunc status=none
check_exit 0 "child and parent with the flag set: --repair" child.vmdk --repair
assert_true "the child's flag is cleared, the parent's is said to stay" \
    grep -q "cleared in the disk itself; it is still set in a parent" "$OUT"
assert_eq "the child's flag cleared" 00 "$(od -A n -t x1 -j 72 -N 1 child.vmdk | tr -d ' ')"
assert_eq "the parent is still not written" "$base_before" "$(sha256 base.vmdk)"
cd .. || exit 1

# --- what vmdkit info refuses, check does not pass (exit 2, corruption) ------
mkdir -p refused && cd refused || exit 1
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 0 FLAT "z-flat.vmdk" 0\n' >z.vmdk
: >z-flat.vmdk
expect_exit 4 "info: extents of zero sectors" "$VMDKIT" info z.vmdk
check_exit 2 "check: extents of zero sectors are corruption" z.vmdk
assert_true "check names the zero size" grep -q "z.vmdk: extents: the disk has no sectors" "$OUT"
# qemu-img's pieces of a split disk point at an embedded descriptor area it leaves empty
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 64M
expect_exit 4 "info: a piece of a split disk (empty embedded descriptor)" "$VMDKIT" info split-s001.vmdk
check_exit 2 "check: an empty embedded descriptor area is corruption" split-s001.vmdk
assert_true "check names the empty area" grep -q "split-s001.vmdk: embedded descriptor: the area the header names (sectors 1-20) is empty" "$OUT"
check_exit 0 "check of the split disk itself stays clean" split.vmdk
CORPUS=${VMDKIT_CORPUS:-}
tw=$CORPUS/vmdk-forensic/tw_sparse-s001.vmdk
if [ -f "$tw" ]; then
    expect_exit 4 "info: corpus tw_sparse-s001.vmdk" "$VMDKIT" info "$tw"
    expect_exit 2 "check: corpus tw_sparse-s001.vmdk" "$VMDKIT" check "$tw"
    expect_exit 0 "check: corpus tw_sparse.vmdk (its disk)" "$VMDKIT" check "$CORPUS/vmdk-forensic/tw_sparse.vmdk"
else
    say "skipped: corpus tw_sparse-s001.vmdk (no corpus at ${CORPUS:-VMDKIT_CORPUS unset})"
fi
cd .. || exit 1

finish
