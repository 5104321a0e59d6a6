#!/usr/bin/env bash
# Every disk qemu-img writes must read identically in vmdkit: each
# subformat, with and without zeroed_grain, filled by qemu-io (patterns,
# unaligned writes, writes across grain and split boundaries, zero writes),
# and qemu-img create -b chains.  For each: `vmdkit convert -O raw` must
# give the same bytes as `qemu-img convert -O raw`, `vmdkit map` must agree
# with `qemu-img map` on where the data lives, and reading must leave the
# files untouched.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io jq
need_vmdkit
mk_tmpdir

SMALL=$((6 * 1048576 + 1536)) # last grain partial
BIG=$((5 * 1073741824))       # three 2 GiB pieces in qemu's split disks
G2=2147483648

# qemu-io writes for seekable disks (any order, any alignment).
WRITES_SMALL=(
    -c 'write -P 0x11 0 64k'
    -c 'write -P 0x22 100k 3000'
    -c 'write -P 0x33 1048064 1024'
    -c 'write -P 0x44 2M 1M'
    -c 'write -z 2304k 128k'
    -c 'write -z 2107152 5000'
    -c "write -P 0x55 $((SMALL - 4096)) 4096"
)
WRITES_BIG=(
    -c 'write -P 0x11 0 64k'
    -c 'write -P 0x22 100k 3000'
    -c 'write -z 40k 8k'
    -c "write -P 0x66 $((G2 - 1024)) 2048"
    -c "write -P 0x77 $((2 * G2 - 512)) 1024"
    -c "write -z $((2 * G2 - 256)) 512"
    -c "write -P 0x88 $((BIG - 65536)) 65536"
)
# streamOptimized takes whole grains in ascending order only.
WRITES_STREAM=(
    -c 'write -P 0x11 0 64k'
    -c 'write -P 0x22 1M 128k'
    -c 'write -z 2M 64k'
    -c 'write -P 0x33 3M 192k'
    -c "write -P 0x44 6M 1536"
)

# files_of DISK: the disk's files (descriptor + extents made by qemu), or
# with WATCH_ALL set every .vmdk beside it (a chain's links).
files_of() {
    if [ -n "${WATCH_ALL:-}" ]; then
        ls "$(dirname "$1")"/*.vmdk
    else
        ls "${1%.vmdk}".vmdk "${1%.vmdk}"-*.vmdk 2>/dev/null
    fi
}

# compare_read NAME DISK SIZE [map|flat]: the common checks for one disk;
# with "map" or "flat" also compare the maps.
compare_read() {
    local name=$1 disk=$2 size=$3 domap=${4:-} before
    before=$(sums_of $(files_of "$disk"))
    if ! check "$name: qemu-img convert -O raw (reference)" qemu-img convert -O raw "$disk" q.raw; then
        return
    fi
    if check "$name: vmdkit convert -O raw" "$VMDKIT" convert -O raw "$disk" v.raw; then
        assert_true "$name: same bytes as qemu-img" cmp q.raw v.raw
    fi
    run "$VMDKIT" info --json "$disk"
    assert_eq "$name: info virtual-size" "$size" "$(jq '."virtual-size"' "$OUT" 2>/dev/null)"
    expect_exit 0 "$name: vmdkit compare with qemu's raw" "$VMDKIT" compare q.raw "$disk"
    if [ -n "$domap" ]; then
        if check "$name: vmdkit map --json" "$VMDKIT" map --json "$disk"; then
            map_classes_vmdkit "$OUT" >v.map
            qemu-img map --output=json "$disk" >q.json
            map_classes_qemu q.json >q.map
            if [ "$domap" = flat ]; then
                # qemu calls all of a flat extent data; vmdkit may report
                # the flat file's holes as zeros (the content is compared
                # above).
                sed -i 's/^Z$/D0/' v.map
            fi
            if assert_true "$name: map agrees with qemu-img map, sector by sector" cmp -s q.map v.map; then
                :
            else
                diff q.map v.map | head -n 6 | sed 's/^/       /'
            fi
        fi
    fi
    assert_eq "$name: files unchanged by reading" "$before" "$(sums_of $(files_of "$disk"))"
    rm -f q.raw v.raw
}

for type in monolithicSparse twoGbMaxExtentSparse streamOptimized monolithicFlat twoGbMaxExtentFlat; do
    zopts=off
    case $type in *Sparse | streamOptimized) zopts="off on" ;; esac
    for z in $zopts; do
        name="$type zeroed_grain=$z"
        say "--- $name"
        dir=$type-$z
        mkdir "$dir"
        size=$SMALL
        writes=("${WRITES_SMALL[@]}")
        domap=map
        case $type in
        monolithicFlat) domap=flat ;;
        twoGbMaxExtent*)
            size=$BIG
            writes=("${WRITES_BIG[@]}")
            domap=
            ;;
        streamOptimized)
            writes=("${WRITES_STREAM[@]}")
            domap=
            ;;
        esac
        opts=subformat=$type
        [ "$z" = on ] && opts=$opts,zeroed_grain=on
        check "$name: qemu-img create ($size bytes)" \
            qemu-img create -f vmdk -o "$opts" "$dir/d.vmdk" "$size" || continue
        check "$name: qemu-io writes" qemu-io -f vmdk "${writes[@]}" "$dir/d.vmdk" || continue
        compare_read "$name" "$dir/d.vmdk" "$size" $domap
        rm -rf "$dir"
    done
done

say "--- chains made by qemu-img create -b and written by qemu-io"
mkdir chain
cd chain || exit 1
CSIZE=$((8 * 1048576))
check "chain: base" qemu-img create -f vmdk base.vmdk "$CSIZE"
check "chain: base data" qemu-io -f vmdk -c 'write -P 0xaa 0 2M' -c 'write -P 0xbb 4M 1M' \
    -c 'write -P 0xee 7M 1M' base.vmdk
check "chain: child of base" qemu-img create -f vmdk -b base.vmdk -F vmdk child.vmdk
# A partial grain over base data, zeros over base data, a sub-sector write.
check "chain: child data" qemu-io -f vmdk -c 'write -P 0xcc 512k 4k' -c 'write -z 4M 64k' \
    -c 'write -P 0xdd 7M 512' child.vmdk
check "chain: top of child (3 links)" qemu-img create -f vmdk -b child.vmdk -F vmdk top.vmdk
check "chain: top data" qemu-io -f vmdk -c 'write -P 0x99 1M 64k' -c 'write -P 0x98 4227072 100' \
    top.vmdk
check "chain: zeroed-grain child of base" \
    qemu-img create -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk zchild.vmdk
check "chain: zeroed-grain child data" qemu-io -f vmdk -c 'write -z 4M 128k' -c 'write -z 100k 10k' \
    -c 'write -P 0x77 6M 64k' zchild.vmdk
check "chain: split child of base" \
    qemu-img create -f vmdk -o subformat=twoGbMaxExtentSparse -b base.vmdk -F vmdk schild.vmdk
check "chain: split child data" qemu-io -f vmdk -c 'write -P 0x66 3M 70k' -c 'write -z 4M 4k' schild.vmdk

WATCH_ALL=1
for disk in child.vmdk top.vmdk zchild.vmdk schild.vmdk; do
    say "--- chain ${disk%.vmdk}"
    compare_read "chain ${disk%.vmdk}" "$disk" "$CSIZE" map
done

# The child's map names the link each run comes from.
if check "chain: vmdkit map --json child.vmdk" "$VMDKIT" map --json child.vmdk; then
    cp "$OUT" child-map.json
    assert_true "chain: map shows data in link 0 (child)" \
        jq -e 'any(.[]; .depth == 0 and (.type == "data" or .data == true))' child-map.json >/dev/null
    assert_true "chain: map shows data in link 1 (base)" \
        jq -e 'any(.[]; .depth == 1 and (.type == "data" or .data == true))' child-map.json >/dev/null
    assert_eq "chain: run at 512 KiB comes from the child" "0" \
        "$(jq '[.[] | select(.start <= 524288 and 524288 < .start + .length)][0].depth' child-map.json)"
    assert_eq "chain: run at 0 comes from the base" "1" \
        "$(jq '[.[] | select(.start == 0)][0].depth' child-map.json)"
fi
if check "chain: vmdkit map (text)" "$VMDKIT" map child.vmdk; then
    assert_true "chain: text map names child.vmdk" grep -q 'child\.vmdk' "$OUT"
    assert_true "chain: text map names base.vmdk" grep -q 'base\.vmdk' "$OUT"
fi

# The parent hint is relative to the child's folder, not the working one.
cd / || exit 1
if check "chain: convert from another working folder" \
    "$VMDKIT" convert -O raw "$TMP/chain/top.vmdk" "$TMP/elsewhere.raw"; then
    qemu-img convert -O raw "$TMP/chain/top.vmdk" "$TMP/q-top.raw"
    assert_true "chain: same bytes from another folder" cmp "$TMP/q-top.raw" "$TMP/elsewhere.raw"
fi
cd "$TMP" || exit 1

finish
