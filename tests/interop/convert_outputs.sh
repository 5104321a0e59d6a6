#!/usr/bin/env bash
# Every createType vmdkit writes must be read back identically by qemu-img
# and libvmdk: `vmdkit convert` of a mixed raw file (zeros, text, random; a
# size that is not a multiple of the grain) to each type, then qemu-img
# check/compare, vmdkinfo's size and CID, vmdkit's own compare and a
# conversion back to raw.  Also a split disk whose data crosses the split
# boundaries, and the rule that all-zero grains are never stored.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img vmdkinfo jq openssl
need_vmdkit
mk_tmpdir

GRAIN=65536
SIZE=$((5 * 1048576 + 3 * 512)) # not a multiple of the 64 KiB grain
mkmixed mixed.raw "$SIZE" || exit 1
say "source: mixed.raw, $SIZE bytes, sha256 $(sha256 mixed.raw)"

# Bytes of FILE that lie in grains holding at least one non-zero byte.
nonzero_grain_bytes() {
    local f=$1 size i len total=0
    size=$(file_size "$f")
    for ((i = 0; i * GRAIN < size; i++)); do
        len=$((size - i * GRAIN))
        [ "$len" -gt "$GRAIN" ] && len=$GRAIN
        cmp -s -i $((i * GRAIN)):0 -n "$len" "$f" /dev/zero || total=$((total + len))
    done
    echo "$total"
}
EXPECTED_DATA=$(nonzero_grain_bytes mixed.raw)

# Files a disk of each type consists of (VMware's naming).
expected_files() {
    case $1 in
    monolithicSparse | streamOptimized) echo "out.vmdk" ;;
    monolithicFlat | vmfs) echo "out-flat.vmdk out.vmdk" ;;
    twoGbMaxExtentSparse) echo "out-s001.vmdk out.vmdk" ;;
    twoGbMaxExtentFlat) echo "out-f001.vmdk out.vmdk" ;;
    esac
}

# Extent line a descriptor of each type must hold for the 5 MiB source.
expected_extent_re() {
    local s=$((SIZE / 512))
    case $1 in
    monolithicFlat) echo "^RW $s FLAT \"out-flat.vmdk\" 0\$" ;;
    vmfs) echo "^RW $s VMFS \"out-flat.vmdk\"( 0)?\$" ;;
    twoGbMaxExtentSparse) echo "^RW $s SPARSE \"out-s001.vmdk\"\$" ;;
    twoGbMaxExtentFlat) echo "^RW $s FLAT \"out-f001.vmdk\" 0\$" ;;
    monolithicSparse) echo "^RW $s SPARSE \"out.vmdk\"\$" ;;
    streamOptimized) echo "^(RW|RDONLY) $s SPARSE \"out.vmdk\"\$" ;;
    esac
}

# A hosted sparse extent: version 1, newline check + redundant directory,
# 128-sector grains, sparse data = non-zero grains only.
check_sparse_header() {
    local what=$1 f=$2 flags
    assert_eq "$what: sparse magic" KDMV "$(head -c 4 "$f")"
    assert_eq "$what: sparse header version" 1 "$(le_u32 "$f" 4)"
    flags=$(le_u32 "$f" 8)
    assert_eq "$what: flags have newline check + redundant GD (0x3)" 3 $((flags & 3))
    assert_eq "$what: grain size in sectors" 128 "$(printf '%d' "0x$(le_u64_hex "$f" 20)")"
    assert_true "$what: redundant GD offset is set" \
        test "$(le_u64_hex "$f" 48)" != 0000000000000000
}

# streamOptimized as ESXi/vCenter accept it: v3, compressed + markers, no
# redundant GD flag, GD_AT_END in the header, footer + EOS at the end.
check_stream_layout() {
    local f=$1 size flags fgd
    size=$(file_size "$f")
    assert_eq "stream: magic" KDMV "$(head -c 4 "$f")"
    assert_eq "stream: header version" 3 "$(le_u32 "$f" 4)"
    flags=$(le_u32 "$f" 8)
    assert_eq "stream: compressed + markers flags" $((0x30000)) $((flags & 0x30000))
    assert_eq "stream: no redundant-GD flag" 0 $((flags & 2))
    assert_eq "stream: compressAlgorithm deflate" 1 \
        $(($(od -A n -t u2 -j 77 -N 2 "$f")))
    assert_eq "stream: header gdOffset is GD_AT_END" ffffffffffffffff "$(le_u64_hex "$f" 56)"
    assert_eq "stream: file size is a multiple of 512" 0 $((size % 512))
    assert_true "stream: last sector is the end-of-stream marker (all zero)" \
        cmp -s -i $((size - 512)):0 -n 512 "$f" /dev/zero
    assert_eq "stream: footer marker type (3) at size-1536" 3 "$(le_u32 "$f" $((size - 1536 + 12)))"
    assert_eq "stream: footer marker size field is 0" 0 "$(le_u32 "$f" $((size - 1536 + 8)))"
    assert_eq "stream: footer magic at size-1024" KDMV \
        "$(dd if="$f" bs=1 skip=$((size - 1024)) count=4 status=none)"
    fgd=$(le_u64_hex "$f" $((size - 1024 + 56)))
    if [ "$fgd" = ffffffffffffffff ]; then
        fail "stream: footer gdOffset must be the real GD sector"
    else
        fgd=$(printf '%d' "0x$fgd")
        assert_true "stream: footer gdOffset $fgd lies inside the file" test $((fgd * 512)) -lt "$size"
        assert_eq "stream: GD marker (type 2) precedes the GD" 2 "$(le_u32 "$f" $(((fgd - 1) * 512 + 12)))"
    fi
}

# Hex CID as a canonical 8-digit lower-case string.
canon_cid() {
    if [[ $1 =~ ^(0x)?[0-9a-fA-F]{1,8}$ ]]; then
        printf '%08x' "$((16#${1#0x}))"
    else
        echo "not-a-CID:$1"
    fi
}

for type in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized vmfs; do
    say "--- $type"
    mkdir "$type"
    out=$type/out.vmdk
    check "$type: vmdkit convert -f raw -O vmdk -t $type" \
        "$VMDKIT" convert -f raw -O vmdk -t "$type" mixed.raw "$out" || continue
    assert_eq "$type: files written" "$(expected_files "$type")" "$(cd "$type" && ls | sort | xargs)"
    check "$type: qemu-img check" qemu-img check "$out"
    expect_exit 0 "$type: qemu-img compare with the source" \
        qemu-img compare -f raw -F vmdk mixed.raw "$out"
    assert_eq "$type: qemu-img virtual size" "$SIZE" "$(qemu_size "$out")"

    run vmdkinfo "$out"
    assert_eq "$type: vmdkinfo media size" "$SIZE" \
        "$(sed -n 's/.*Media size:.*(\([0-9]*\) bytes).*/\1/p' "$OUT" | head -n 1)"
    vcid=$(sed -n 's/.*Content identifier:[[:space:]]*0x\([0-9a-fA-F]*\).*/\1/p' "$OUT" | head -n 1)

    rm -f info.json
    check "$type: vmdkit info --json" "$VMDKIT" info --json "$out" && cp "$OUT" info.json
    assert_eq "$type: info virtual-size" "$SIZE" "$(json_get info.json '."virtual-size"')"
    assert_eq "$type: info create-type" "$type" "$(json_get info.json '."create-type"')"
    jcid=$(json_get info.json '.cid')
    if [ -n "$vcid" ] && [ -n "$jcid" ] && [ "$jcid" != null ]; then
        assert_eq "$type: CID agrees with vmdkinfo" "$(canon_cid "$vcid")" "$(canon_cid "$jcid")"
    else
        fail "$type: CID from vmdkinfo ('$vcid') and vmdkit info ('$jcid')"
    fi

    desc=$(descriptor_text "$out")
    assert_true "$type: descriptor createType" grep -q "^createType *= *\"$type\"" <<<"$desc"
    assert_true "$type: descriptor extent line /$(expected_extent_re "$type")/" \
        grep -Eq "$(expected_extent_re "$type")" <<<"$desc"
    lcid=$(descriptor_value "$out" ddb.longContentID)
    assert_eq "$type: ddb.longContentID ends with the CID" "$(canon_cid "${jcid:-0}")" "${lcid: -8}"
    for key in ddb.uuid ddb.longContentID ddb.virtualHWVersion ddb.adapterType \
        ddb.geometry.cylinders ddb.geometry.heads ddb.geometry.sectors; do
        assert_true "$type: descriptor has $key" grep -q "^$key *= *\"[^\"]" <<<"$desc"
    done

    run "$VMDKIT" compare mixed.raw "$out"
    assert_eq "$type: vmdkit compare with the source (exit)" 0 "$RC"
    assert_eq "$type: vmdkit compare message" "Images are identical." "$(head -n 1 "$OUT")"

    check "$type: vmdkit convert -O raw back" "$VMDKIT" convert -O raw "$out" "$type/back.raw" &&
        assert_true "$type: round trip gives the same bytes" cmp mixed.raw "$type/back.raw"

    case $type in
    monolithicSparse | twoGbMaxExtentSparse)
        ext=$out
        [ "$type" = twoGbMaxExtentSparse ] && ext=$type/out-s001.vmdk
        check_sparse_header "$type" "$ext"
        run qemu-img map --output=json "$out"
        assert_eq "$type: stored data = the non-zero grains (qemu-img map)" "$EXPECTED_DATA" \
            "$(jq '[.[] | select(.data) | .length] | add // 0' "$OUT")"
        ;;
    streamOptimized) check_stream_layout "$out" ;;
    esac
    rm -f "$type/back.raw"
done

say "--- all-zero source: nothing stored"
head -c $((64 * 1048576)) /dev/zero >zeros.raw
if check "zeros: convert to streamOptimized" "$VMDKIT" convert -f raw -t streamOptimized zeros.raw zs.vmdk; then
    # 1024 stored zero grains would take at least a sector each (512 KiB).
    assert_true "zeros: stream holds no grains ($(file_size zs.vmdk) bytes < 256 KiB)" \
        test "$(file_size zs.vmdk)" -lt 262144
    expect_exit 0 "zeros: qemu-img compare of the stream" qemu-img compare zeros.raw zs.vmdk
fi
if check "zeros: convert to monolithicSparse" "$VMDKIT" convert -f raw zeros.raw zm.vmdk; then
    run qemu-img map --output=json zm.vmdk
    assert_eq "zeros: qemu-img map finds no data" 0 "$(jq '[.[] | select(.data) | .length] | add // 0' "$OUT")"
    run "$VMDKIT" info --json zm.vmdk
    assert_eq "zeros: info reports 0 allocated bytes" 0 "$(jq '[.extents[]."allocated-bytes"] | add' "$OUT")"
fi

say "--- source size not a multiple of 512"
ODD=$((5 * 1048576 + 1000))
head -c "$ODD" mixed.raw >odd.raw
if check "odd: convert to monolithicSparse" "$VMDKIT" convert -f raw odd.raw odd.vmdk; then
    run "$VMDKIT" info --json odd.vmdk
    assert_eq "odd: virtual size rounded up to a sector" $(((ODD + 511) / 512 * 512)) \
        "$(jq '."virtual-size"' "$OUT")"
    expect_exit 0 "odd: qemu-img compare (tail of zeros)" qemu-img compare odd.raw odd.vmdk
    expect_exit 0 "odd: vmdkit compare without -s" "$VMDKIT" compare odd.raw odd.vmdk
    expect_exit 1 "odd: vmdkit compare -s sees the size difference" "$VMDKIT" compare -s odd.raw odd.vmdk
    check "odd: qemu-img check" qemu-img check odd.vmdk
fi

say "--- split disk: data across the split boundaries"
# 2 pieces of the default 4064 MiB: 8323072 + 688128 sectors; with
# --split-size 2g, 3 of 2047 MiB: 4192256 + 4192256 + 626688
BIG=$((4400 * 1048576))
truncate -s "$BIG" big.raw
for b in $SPLIT_SECTORS $SPLIT_2G_SECTORS $((2 * SPLIT_2G_SECTORS)); do
    random_bytes "$b" 8192 | dd of=big.raw bs=4096 seek=$(((b * 512 - 4096) / 4096)) conv=notrunc status=none
done
text_bytes 8 300 | dd of=big.raw bs=1 seek=$((SPLIT_SECTORS * 512 + 100)) conv=notrunc status=none
random_bytes 9 65536 | dd of=big.raw bs=65536 seek=$(((BIG - 65536) / 65536)) conv=notrunc status=none
for variant in twoGbMaxExtentSparse:4g twoGbMaxExtentFlat:4g twoGbMaxExtentSparse:2g; do
    type=${variant%:*} split=${variant#*:}
    p=s kind=SPARSE offset=
    [ "$type" = twoGbMaxExtentFlat ] && p=f kind=FLAT offset=" 0"
    mkdir "big-$type"
    out=big-$type/big.vmdk
    if [ "$split" = 4g ]; then
        opt=() pieces=(8323072 688128)
    else
        opt=(--split-size 2g) pieces=(4192256 4192256 626688)
    fi
    check "split $type $split: convert a $BIG-byte disk" \
        "$VMDKIT" convert -f raw -t "$type" "${opt[@]}" big.raw "$out" || continue
    want= files=
    for i in "${!pieces[@]}"; do
        n=$(printf '%03d' $((i + 1)))
        want="$want${want:+|}RW ${pieces[$i]} $kind \"big-$p$n.vmdk\"$offset"
        files="$files big-$p$n.vmdk"
    done
    assert_eq "split $type $split: extent lines" "$want" \
        "$(grep -E '^(RW|RDONLY|NOACCESS) ' "$out" | paste -sd '|')"
    assert_eq "split $type $split: files" "${files# } big.vmdk" "$(cd "big-$type" && ls | sort | xargs)"
    check "split $type $split: qemu-img check" qemu-img check "$out"
    expect_exit 0 "split $type $split: qemu-img compare" qemu-img compare -f raw big.raw "$out"
    assert_eq "split $type $split: qemu-img virtual size" "$BIG" "$(qemu_size "$out")"
    expect_exit 0 "split $type $split: vmdkit compare" "$VMDKIT" compare big.raw "$out"
    run vmdkinfo "$out"
    assert_eq "split $type $split: vmdkinfo media size" "$BIG" \
        "$(sed -n 's/.*Media size:.*(\([0-9]*\) bytes).*/\1/p' "$OUT" | head -n 1)"
    if check "split $type $split: convert back to raw" "$VMDKIT" convert -O raw "$out" big-back.raw; then
        assert_true "split $type $split: round trip gives the same bytes" cmp big.raw big-back.raw
    fi
    rm -rf big-back.raw "big-$type"
done

finish
