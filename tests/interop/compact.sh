#!/usr/bin/env bash
# compact.sh - vmdkit compact drops the all-zero grains of sparse disks:
#  1. monolithicSparse whose guest zeroed half its data: qemu-img compare
#     and vmdkit compare find it equal to a raw model, qemu-img check and
#     vmdkit check are clean, du and the file size drop by at least the
#     zeroed amount minus 1 MiB, the CID stays, --json reports the sizes;
#     a disk qemu-img made (its own layout) too; a second compact, with
#     nothing to give back, leaves the file alone;
#  2. twoGbMaxExtentSparse: every piece compacted, equal, clean;
#  3. deltas: zeros over parent data stay (stored, or zeroed-grain entries
#     on a version 2 delta), zeros over nothing are dropped; a base with a
#     child compacts and the child still opens and reads the same;
#  4. refusals with their exit codes, nothing changed: flat (5),
#     streamOptimized (5), VMware's .lck (8), QEMU writing (8), a crafted
#     delta whose two extents name one file (5);
#  5. kill trials: compact SIGKILLed at random moments leaves a disk equal
#     to the model in which check finds no corruption (leaked space, exit
#     3, is what an interrupted compact in place leaves); the next run
#     cleans up and finishes, and check is clean then.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io jq
need_vmdkit
mk_tmpdir

MiB=1048576
used() { echo $(($(stat -c %b "$1") * 512)); }
cid_of() { dd if="$1" bs=512 skip=1 count=20 2>/dev/null | tr -d '\0' | sed -n 's/^CID=//p'; }

same_content() { # DISK MODEL DESC
    check "$3: qemu-img compare with the model" qemu-img compare -f vmdk -F raw "$1" "$2"
    check "$3: vmdkit compare with the model" "$VMDKIT" compare "$1" "$2"
    check "$3: qemu-img check" qemu-img check -f vmdk "$1"
    check "$3: vmdkit check" "$VMDKIT" check "$1"
}

say "--- 1. monolithicSparse, half zeroed"
check "create m.vmdk 256M" "$VMDKIT" create m.vmdk 256M
check "64 MiB of data" "$VMDKIT" io m.vmdk -c "write -P 0x5a 0 32m" -c "write -P 0xa5 128m 32m"
check "the guest zeroes 32 MiB of it" "$VMDKIT" io m.vmdk -c "write -P 0 8m 16m" -c "write -P 0 136m 16m"
check "raw model" qemu-img convert -f vmdk -O raw m.vmdk m.raw
b_used=$(used m.vmdk) b_size=$(file_size m.vmdk) cid=$(cid_of m.vmdk) ino0=$(stat -c %i m.vmdk)
check "compact --json" "$VMDKIT" compact --json m.vmdk
assert_eq "compacted in place (the same inode)" "$ino0" "$(stat -c %i m.vmdk)"
assert_eq "grains dropped (32 MiB of 64 KiB grains)" 512 "$(jq '."grains-dropped"' "$OUT")"
assert_eq "bytes-before is what du saw" "$b_used" "$(jq '."bytes-before"' "$OUT")"
assert_eq "bytes-after is what du sees" "$(used m.vmdk)" "$(jq '."bytes-after"' "$OUT")"
same_content m.vmdk m.raw "monolithicSparse"
assert_true "du dropped by 31 MiB or more ($b_used -> $(used m.vmdk))" [ $((b_used - $(used m.vmdk))) -ge $((31 * MiB)) ]
assert_true "the file shrank by 31 MiB or more ($b_size -> $(file_size m.vmdk))" \
    [ $((b_size - $(file_size m.vmdk))) -ge $((31 * MiB)) ]
assert_eq "CID kept" "$cid" "$(cid_of m.vmdk)"
assert_eq "no leftover folder" "" "$(ls -A | grep vmdkit-tmp)"
ino=$(stat -c %i m.vmdk) sum=$(sha256 m.vmdk)
check "a second compact drops nothing" "$VMDKIT" compact --json m.vmdk
assert_eq "nothing more dropped" 0 "$(jq '."grains-dropped"' "$OUT")"
assert_eq "and leaves the file alone (same inode)" "$ino" "$(stat -c %i m.vmdk)"
assert_eq "byte-identical" "$sum" "$(sha256 m.vmdk)"
check "qemu-io writes after compact" qemu-io -f vmdk -c "write -P 0x66 200m 1m" m.vmdk
check "vmdkit reads both" "$VMDKIT" io m.vmdk -c "read -P 0x66 200m 1m" -c "read -P 0x5a 0 8m"

check "qemu-img create q.vmdk" qemu-img create -q -f vmdk q.vmdk 64M
check "qemu-io data and zeros" qemu-io -f vmdk -c "write -P 0x21 0 16m" -c "write -P 0 0 8m" q.vmdk
check "raw model of q" qemu-img convert -f vmdk -O raw q.vmdk q.raw
ino0=$(stat -c %i q.vmdk) q_size=$(file_size q.vmdk)
check "compact a disk qemu-img made" "$VMDKIT" compact q.vmdk
assert_eq "qemu-img's layout compacted in place (the same inode)" "$ino0" "$(stat -c %i q.vmdk)"
assert_true "and cut by 8 MiB ($q_size -> $(file_size q.vmdk))" [ $((q_size - $(file_size q.vmdk))) -ge $((8 * MiB)) ]
same_content q.vmdk q.raw "qemu-made"

say "--- 2. twoGbMaxExtentSparse"
mkdir s
check "create s 5G (two pieces)" "$VMDKIT" create -t twoGbMaxExtentSparse s/s.vmdk 5G
check "data in both pieces, half zeroed" "$VMDKIT" io s/s.vmdk -c "write -P 0x31 0 8m" -c "write -P 0x32 4095m 8m" \
    -c "write -P 0 0 4m" -c "write -P 0 4099m 4m"
check "raw model of s" qemu-img convert -f vmdk -O raw s/s.vmdk s.raw
s1=$(used s/s-s001.vmdk) s2=$(used s/s-s002.vmdk)
check "compact s" "$VMDKIT" compact s/s.vmdk
same_content s/s.vmdk s.raw "twoGbMaxExtentSparse"
assert_true "piece 1 smaller" [ "$(used s/s-s001.vmdk)" -lt "$s1" ]
assert_true "piece 2 smaller" [ "$(used s/s-s002.vmdk)" -lt "$s2" ]
rm -f s.raw

say "--- 3. deltas"
check "create b.vmdk" "$VMDKIT" create b.vmdk 64M
check "base data" "$VMDKIT" io b.vmdk -c "write -P 0x11 0 32m"
check "snapshot" "$VMDKIT" snapshot b.vmdk
check "zeros over base data and over nothing" "$VMDKIT" io b-000001.vmdk -c "write -P 0 0 8m" -c "write -P 0 40m 8m" \
    -c "write -P 0x33 50m 1m"
check "model of the delta" qemu-img convert -f vmdk -O raw b-000001.vmdk d.raw
check "compact the delta" "$VMDKIT" compact --json b-000001.vmdk
assert_eq "only the zeros over nothing dropped (8 MiB)" 128 "$(jq '."grains-dropped"' "$OUT")"
same_content b-000001.vmdk d.raw "delta"
check "map" "$VMDKIT" map b-000001.vmdk
assert_true "the zeros over base data are still the delta's" grep -qE '^0x0 +0x800000 +data +0 ' "$OUT"
check "model of the base" qemu-img convert -f vmdk -O raw b.vmdk b.raw
check "the base compacts with a child" "$VMDKIT" compact b.vmdk
same_content b.vmdk b.raw "base"
check "the child still reads the same (CID kept)" qemu-img compare -f vmdk -F raw b-000001.vmdk d.raw

check "create z.vmdk (zeroed-grain)" "$VMDKIT" create --zeroed-grain z.vmdk 64M
check "base data" "$VMDKIT" io z.vmdk -c "write -P 0x44 0 16m"
check "a version 2 delta of z" "$VMDKIT" create --zeroed-grain -b z.vmdk z-000001.vmdk 64M
if [ "$(od -An -tu4 -j4 -N4 z-000001.vmdk | tr -d ' ')" = 2 ]; then
    check "zeros over base data" "$VMDKIT" io z-000001.vmdk -c "write -P 0 0 4m"
    check "model of z's delta" qemu-img convert -f vmdk -O raw z-000001.vmdk z.raw
    check "compact z's delta" "$VMDKIT" compact z-000001.vmdk
    same_content z-000001.vmdk z.raw "zeroed-grain delta"
    check "map z's delta" "$VMDKIT" map z-000001.vmdk
    assert_true "the zeros became zeroed-grain entries" grep -qE '^0x0 +0x400000 +zero +0 ' "$OUT"
else
    say "       (a delta of a version 2 disk is version 1 here: zeroed-grain part skipped)"
fi

say "--- 4. refusals"
check "create f.vmdk (monolithicFlat)" "$VMDKIT" create -t monolithicFlat f.vmdk 16M
expect_exit 5 "monolithicFlat" "$VMDKIT" compact f.vmdk
assert_err_line "monolithicFlat"
check "create st.vmdk (streamOptimized)" "$VMDKIT" create -t streamOptimized st.vmdk 16M
expect_exit 5 "streamOptimized" "$VMDKIT" compact st.vmdk
before=$(sha256 m.vmdk)
mkdir m.vmdk.lck
expect_exit 8 "VMware holds it (m.vmdk.lck)" "$VMDKIT" compact m.vmdk
rmdir m.vmdk.lck
qemu-io -f vmdk -c 'sleep 4000' m.vmdk >/dev/null 2>&1 &
qpid=$!
if wait_qemu_writer m.vmdk; then
    expect_exit 8 "QEMU writes it" "$VMDKIT" compact m.vmdk
    assert_true "QEMU is named" grep -q 'QEMU' "$ERR"
else
    fail "qemu-io never took its write lock"
fi
kill "$qpid" 2>/dev/null
wait "$qpid" 2>/dev/null
assert_eq "m.vmdk is byte-identical after the refusals" "$before" "$(sha256 m.vmdk)"
# a crafted delta whose two extents name one piece: its zero grain at 0
# also hides the parent's data at 1 MiB, so dropping it (the parent reads
# zeros at 0) would change what the disk reads there
mkdir tw
check "tw/b.vmdk: zeros, then 0x11 from 1 MiB" "$VMDKIT" create tw/b.vmdk 2M
check "its data" "$VMDKIT" io tw/b.vmdk -c "write -P 0x11 1m 1m"
check "one 1 MiB piece" "$VMDKIT" create -t twoGbMaxExtentSparse tw/x.vmdk 1M
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=%s\ncreateType="twoGbMaxExtentSparse"\nparentFileNameHint="b.vmdk"\n\nRW 2048 SPARSE "x-s001.vmdk"\nRW 2048 SPARSE "x-s001.vmdk"\n' \
    "$(cid_of tw/b.vmdk)" >tw/d.vmdk
check "a zero grain through the first extent" "$VMDKIT" io tw/d.vmdk -c "write -P 0 0 64k"
check "raw model of tw/d" qemu-img convert -f vmdk -O raw tw/d.vmdk tw.raw
before=$(sha256 tw/x-s001.vmdk)
expect_exit 5 "two extents naming one file" "$VMDKIT" compact tw/d.vmdk
assert_true "the shared file is named" grep -q 'x-s001.vmdk.*one file' "$ERR"
assert_eq "the piece is byte-identical" "$before" "$(sha256 tw/x-s001.vmdk)"
check "tw/d reads as before" qemu-img compare -f vmdk -F raw tw/d.vmdk tw.raw
rm -f tw.raw

say "--- 5. kill trials"
mkdir k
for trial in 1 2 3 4 5; do
    rm -f k/k.vmdk
    "$VMDKIT" create k/k.vmdk 512M >/dev/null &&
        "$VMDKIT" io k/k.vmdk -c "write -P 0x$trial$trial 0 48m" -c "write -P 0 16m 16m" >/dev/null
    qemu-img convert -f vmdk -O raw k/k.vmdk k.raw
    size0=$(file_size k/k.vmdk)
    "$VMDKIT" compact k/k.vmdk >/dev/null 2>&1 &
    pid=$!
    sleep "$((RANDOM % 2)).$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    say "       trial $trial: $(ls -A k | grep -c vmdkit-tmp) leftover folder(s), k.vmdk $(file_size k/k.vmdk) bytes ($size0 before)"
    "$VMDKIT" check k/k.vmdk >/dev/null 2>&1
    rc=$?
    assert_true "trial $trial: vmdkit check finds no corruption (exit $rc: 0, or 3 for leaked space)" \
        [ $rc -eq 0 -o $rc -eq 3 ]
    check "trial $trial: content equal" qemu-img compare -f vmdk -F raw k/k.vmdk k.raw
    check "trial $trial: the next run finishes" "$VMDKIT" compact k/k.vmdk
    check "trial $trial: content equal after it" qemu-img compare -f vmdk -F raw k/k.vmdk k.raw
    check "trial $trial: vmdkit check clean after it" "$VMDKIT" check k/k.vmdk
    assert_eq "trial $trial: only the disk is left" "k.vmdk" "$(ls -A k)"
done
finish
