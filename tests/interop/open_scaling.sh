#!/usr/bin/env bash
# open_scaling.sh - opening a split disk costs the same per piece for its
# 998th piece as for its first (M1): the check whether a piece's file is
# one an earlier piece already has (vk_extent_find_file) took a walk over
# every earlier piece, quadratic in the pieces (8.5 million steps for a
# 4129-piece link of a 16 TiB disk).  Counted without timing: the
# instructions callgrind counts inside vk_extent_find_file for the open of
# a disk of 998 pieces must be near twice those for 499 pieces (below 3
# times; 4.0 with the walk).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need valgrind
if ldd "$VMDKIT" 2>/dev/null | grep -q 'libasan\.so' || nm "$VMDKIT" 2>/dev/null | grep -q __asan_init; then
    skip "valgrind does not run an ASan build"
fi
mk_tmpdir

PIECE=$((4192256 * 512)) # the 2g split size
check "create a split disk of 499 pieces" "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 2g a.vmdk $((499 * PIECE))
check "create a split disk of 998 pieces" "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 2g b.vmdk $((998 * PIECE))

count() { # DISK: instructions inside vk_extent_find_file while DISK opens and reads
    valgrind --tool=callgrind --toggle-collect=vk_extent_find_file --callgrind-out-file="$TMP/cg.out" \
        "$VMDKIT" io -r "$1" -c 'read 0 4k' >"$OUT" 2>"$ERR" || return 1
    sed -n 's/^summary: *//p' "$TMP/cg.out"
}
a=$(count a.vmdk) || fail "callgrind of the open of a.vmdk failed"
b=$(count b.vmdk) || fail "callgrind of the open of b.vmdk failed"
if [ -z "$a" ] || [ "$a" -eq 0 ]; then
    fail "callgrind counted nothing in vk_extent_find_file (inlined or stripped?)"
elif [ $((b * 10)) -lt $((a * 30)) ]; then
    pass "finding earlier pieces' files: $a instructions for 499 pieces, $b for 998 (ratio below 3)"
else
    fail "finding earlier pieces' files: $a instructions for 499 pieces, $b for 998: quadratic (ratio $((b * 10 / a / 10)).$((b * 10 / a % 10)))"
fi

finish
