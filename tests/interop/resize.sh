#!/usr/bin/env bash
# resize.sh - vmdkit resize grows each writable hosted type in place:
#  1. monolithicSparse (plain, zeroed-grain v2) grown by odd sizes (not a
#     multiple of a grain; across the size where the grain directory must
#     move): qemu-img info shows the size, qemu-img check and vmdkit check
#     are clean, qemu-img compare finds the old content and zeros after it
#     (a raw model truncated to the new size), qemu-io writes in the new
#     range; the CID, ddb.uuid and an unknown ddb key stay; +DELTA;
#  2. twoGbMaxExtentSparse/Flat (2047 MiB pieces) grown across a piece
#     boundary (the flat last piece topped up, the sparse one kept), with
#     an extra ddb key kept; monolithicFlat; twoGbMaxExtentFlat past 2 TiB;
#  3. refusals with their exit codes, nothing changed: shrink (9),
#     streamOptimized (5), a delta (7), a parent of a delta (7), a
#     monolithicSparse disk past 2 TiB (4), VMware's .lck (8), QEMU
#     writing (8), a running machine using it (8; once it stops, it grows);
#  4. kill trials: resize SIGKILLed at random moments leaves the old or
#     the new disk, complete (check passes, content equal), and a second
#     run gives the new one.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io jq
need_vmdkit
mk_tmpdir

MiB=1048576

# same_as_model DISK MODEL DESC: DISK reads as the raw MODEL (qemu-img), and
# its size is MODEL's.
same_as_model() {
    assert_eq "$3: qemu-img info size" "$(file_size "$2")" "$(qemu_size "$1")"
    check "$3: qemu-img compare with the raw model" qemu-img compare -f vmdk -F raw "$1" "$2"
    check "$3: qemu-img check" qemu-img check -f vmdk "$1"
    check "$3: vmdkit check" "$VMDKIT" check "$1"
}

desc_of() { # the descriptor text of a disk (embedded or separate)
    if [ "$(head -c 4 "$1")" = KDMV ]; then dd if="$1" bs=512 skip=1 count=20 2>/dev/null | tr -d '\0'; else cat "$1"; fi
}

say "--- 1. monolithicSparse"
for z in "" --zeroed-grain; do
    rm -f m.vmdk m.raw
    check "create m.vmdk 100M $z" "$VMDKIT" create $z m.vmdk 100M
    check "data at the start and the end" "$VMDKIT" io m.vmdk -c "write -P 0x5a 0 3m" -c "write -P 0xa5 99m 1m"
    check "a raw model" qemu-img convert -f vmdk -O raw m.vmdk m.raw
    cid=$(desc_of m.vmdk | sed -n 's/^CID=//p')
    uuid=$(desc_of m.vmdk | grep '^ddb.uuid')
    # 5 GiB + 3 sectors + 7 bytes: not a grain multiple, and the directory moves
    size=$((5 * 1024 * MiB + 3 * 512 + 7))
    check "resize to $size bytes" "$VMDKIT" resize m.vmdk $size
    truncate -s $((5 * 1024 * MiB + 4 * 512)) m.raw
    same_as_model m.vmdk m.raw "monolithicSparse $z"
    assert_eq "CID kept" "$cid" "$(desc_of m.vmdk | sed -n 's/^CID=//p')"
    assert_eq "ddb.uuid kept" "$uuid" "$(desc_of m.vmdk | grep '^ddb.uuid')"
    assert_eq "geometry recomputed (ide: 16 heads, 63 sectors)" 10402 \
        "$(desc_of m.vmdk | sed -n 's/^ddb.geometry.cylinders = "\(.*\)"/\1/p')"
    check "qemu-io writes in the new range" qemu-io -f vmdk -c "write -P 0x33 4g 1m" m.vmdk
    check "vmdkit reads it back" "$VMDKIT" io m.vmdk -c "read -P 0x33 4g 1m" -c "read -P 0xa5 99m 1m"
    check "qemu-img check after the write" qemu-img check -f vmdk m.vmdk
    check "vmdkit check after the write" "$VMDKIT" check m.vmdk
done
check "resize +1m --keep-geometry" "$VMDKIT" resize --keep-geometry m.vmdk +1m
assert_eq "size grew by 1 MiB" $((5 * 1024 * MiB + 4 * 512 + MiB)) "$(qemu_size m.vmdk)"
assert_eq "geometry kept" 10402 "$(desc_of m.vmdk | sed -n 's/^ddb.geometry.cylinders = "\(.*\)"/\1/p')"
check "the same size again is a no-op" "$VMDKIT" resize m.vmdk $((5 * 1024 * MiB + 4 * 512 + MiB))

say "--- 2. split and flat types"
for t in twoGbMaxExtentSparse twoGbMaxExtentFlat monolithicFlat; do
    rm -rf s && mkdir s
    split=--split-size=2g
    [ $t = monolithicFlat ] && split=
    check "create $t 3000M (2047 MiB pieces)" "$VMDKIT" create -t $t $split s/s.vmdk 3000M
    printf 'ddb.custom = "kept"\n' >>s/s.vmdk
    check "data at the end" "$VMDKIT" io s/s.vmdk -c "write -P 0x42 2999m 1m"
    check "$t: raw model" qemu-img convert -f vmdk -O raw s/s.vmdk s.raw
    # 2047 MiB pieces: 3000M -> 6000M + 1 sector crosses a piece boundary
    check "$t: resize to 6000M + 512" "$VMDKIT" resize s/s.vmdk $((6000 * MiB + 512))
    truncate -s $((6000 * MiB + 512)) s.raw
    same_as_model s/s.vmdk s.raw "$t"
    assert_true "$t: ddb.custom kept" grep -q '^ddb.custom = "kept"' s/s.vmdk
    # a flat last piece is topped up; a sparse one keeps its size (its
    # header cannot change in one step with the descriptor)
    case $t in
    twoGbMaxExtentFlat) want="4192256 4192256 3903489" ;;
    twoGbMaxExtentSparse) want="4192256 1951744 4192256 1951745" ;;
    monolithicFlat) want=12288001 ;;
    esac
    assert_eq "$t: extent sizes" "$want" "$(awk '/^RW/ {printf "%s%s", s, $2; s=" "}' s/s.vmdk)"
    assert_eq "$t: no leftover folder" "" "$(ls -A s | grep vmdkit-tmp)"
    rm -f s.raw
done
rm -rf big && mkdir big
check "create twoGbMaxExtentFlat 2 TiB - 1 MiB" "$VMDKIT" create -t twoGbMaxExtentFlat big/b.vmdk $((2 * 1024 * 1024 - 1))m
check "write its last MiB" "$VMDKIT" io big/b.vmdk -c "write -P 0x61 $((2 * 1024 * 1024 - 2))m 1m"
check "grow past 2 TiB" "$VMDKIT" resize big/b.vmdk 2049g
assert_eq "qemu-img sees 2049 GiB" $((2049 * 1024 * MiB)) "$(qemu_size big/b.vmdk)"
check "old data still there" qemu-io -f vmdk -r -c "read -P 0x61 $((2 * 1024 * 1024 - 2))m 1m" -c "read -P 0 2t 1m" big/b.vmdk
check "vmdkit check past 2 TiB" "$VMDKIT" check big/b.vmdk
rm -rf big

say "--- 3. refusals"
check "create r.vmdk 64M" "$VMDKIT" create r.vmdk 64M
before=$(sha256 r.vmdk)
expect_exit 9 "shrink" "$VMDKIT" resize r.vmdk 32M
assert_err_line "shrink"
assert_true "the message says shrinking" grep -q 'shrinking is not supported' "$ERR"
expect_exit 4 "monolithicSparse past 2 TiB" "$VMDKIT" resize r.vmdk 2t
expect_exit 2 "a size that is no number" "$VMDKIT" resize r.vmdk lots
check "create a stream" "$VMDKIT" create -t streamOptimized st.vmdk 64M
expect_exit 5 "streamOptimized" "$VMDKIT" resize st.vmdk 128M
assert_true "the message says convert" grep -q 'convert' "$ERR"
check "snapshot r.vmdk" "$VMDKIT" snapshot r.vmdk
expect_exit 7 "a delta" "$VMDKIT" resize r-000001.vmdk 128M
assert_true "the message names the parent" grep -q 'delta of "r.vmdk"' "$ERR"
expect_exit 7 "a parent of a delta" "$VMDKIT" resize r.vmdk 128M
assert_true "the message names the child" grep -q 'r-000001.vmdk' "$ERR"
assert_eq "the parent is byte-identical" "$before" "$(sha256 r.vmdk)"
rm -f r-000001.vmdk
mkdir r.vmdk.lck
expect_exit 8 "VMware holds it (r.vmdk.lck)" "$VMDKIT" resize r.vmdk 128M
rmdir r.vmdk.lck
qemu-io -f vmdk -c 'sleep 4000' r.vmdk >/dev/null 2>&1 &
qpid=$!
if wait_qemu_writer r.vmdk; then
    expect_exit 8 "QEMU writes it" "$VMDKIT" resize r.vmdk 128M
    assert_true "QEMU is named" grep -q 'QEMU' "$ERR"
else
    fail "qemu-io never took its write lock"
fi
kill "$qpid" 2>/dev/null
wait "$qpid" 2>/dev/null
assert_eq "r.vmdk is byte-identical after every refusal" "$before" "$(sha256 r.vmdk)"
mkdir R
check "create R/d.vmdk" "$VMDKIT" create R/d.vmdk 16M
printf 'displayName = "R"\nscsi0:0.fileName = "d.vmdk"\n' >R/R.vmx
mkdir R/R.vmx.lck
expect_exit 8 "the machine using it runs (R.vmx.lck)" "$VMDKIT" resize R/d.vmdk 32M
assert_true "the machine is named" grep -q 'R.vmx' "$ERR"
rmdir R/R.vmx.lck
check "the machine stopped: resize" "$VMDKIT" resize R/d.vmdk 32M
assert_eq "32 MiB" $((32 * MiB)) "$(qemu_size R/d.vmdk)"

say "--- 4. kill trials"
mkdir k
check "create k.vmdk (twoGbMaxExtentSparse, 2047 MiB pieces)" "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 2g k/k.vmdk 3g
check "data" "$VMDKIT" io k/k.vmdk -c "write -P 0x21 0 1m" -c "write -P 0x22 3071m 1m"
check "raw model" qemu-img convert -f vmdk -O raw k/k.vmdk k.raw
old=$((3 * 1024 * MiB))
for trial in 1 2 3 4 5 6; do
    new=$((old + 10 * 1024 * MiB + 512))
    "$VMDKIT" resize k/k.vmdk $new >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 2))$((RANDOM % 10))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    got=$(qemu_size k/k.vmdk)
    if [ "$got" = "$old" ] || [ "$got" = "$new" ]; then
        pass "trial $trial: the old or the new size ($got)"
    else
        fail "trial $trial: size $got, neither $old nor $new"
    fi
    check "trial $trial: vmdkit check" "$VMDKIT" check k/k.vmdk
    truncate -s "$got" k.raw
    check "trial $trial: content equal" qemu-img compare -f vmdk -F raw k/k.vmdk k.raw
    check "trial $trial: a second run finishes" "$VMDKIT" resize k/k.vmdk $new
    assert_eq "trial $trial: new size" "$new" "$(qemu_size k/k.vmdk)"
    truncate -s "$new" k.raw
    check "trial $trial: content after the second run" qemu-img compare -f vmdk -F raw k/k.vmdk k.raw
    assert_eq "trial $trial: no leftover folder or stray piece" "$(awk '/^RW/ {print $4}' k/k.vmdk | tr -d '"' | sort | tr '\n' ' ')k.vmdk " \
        "$(ls -A k | sort | tr '\n' ' ')"
    old=$new
done
finish
