#!/usr/bin/env bash
# In-place writes with `vmdkit io` into sparse and flat disks (made by
# vmdkit or by qemu-img, with zeroed-grain entries, as a chain's child),
# at any alignment, across grain, grain-table and split-extent boundaries.
# The same writes applied by qemu-io to a raw copy give the expected
# content: qemu-img compare and qemu-io read it back, qemu-img check finds
# no errors, the CID changes, the parent stays untouched.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io vmdkinfo jq
need_vmdkit
mk_tmpdir

M=1048576
G=1073741824
G2=$((2 * G))
PARENT_FILES=()

disk_cid() { descriptor_value "$1" CID | tr 'A-F' 'a-f'; }

# inplace NAME DISK WRITES READS: WRITES and READS name arrays of -c args.
inplace() {
    local name=$1 disk=$2
    local -n writes=$3 reads=$4
    local cid0 cid1 lcid nwrites parents_before size
    size=$(qemu_size "$disk")
    parents_before=$( ((${#PARENT_FILES[@]})) && sums_of "${PARENT_FILES[@]}")
    rm -f exp.raw
    check "$name: reference copy of the old content" qemu-img convert -O raw "$disk" exp.raw || return
    cid0=$(disk_cid "$disk")

    expect_exit 0 "$name: vmdkit io writes" "$VMDKIT" io "$disk" "${writes[@]}" || return
    nwrites=$(printf '%s\n' "${writes[@]}" | grep -c '^write')
    assert_eq "$name: one 'wrote' line per write" "$nwrites" "$(grep -c '^wrote ' "$OUT")"
    check "$name: qemu-io applies the same writes to the raw copy" \
        qemu-io -f raw "${writes[@]}" exp.raw || return

    check "$name: qemu-img check" qemu-img check "$disk"
    expect_exit 0 "$name: qemu-img compare with the expected content" \
        qemu-img compare -f raw -F vmdk exp.raw "$disk"
    expect_exit 0 "$name: qemu-io reads the patterns back" qemu-io -r -f vmdk "${reads[@]}" "$disk"
    expect_exit 0 "$name: vmdkit io -r reads the patterns back" "$VMDKIT" io -r "$disk" "${reads[@]}"
    expect_exit 0 "$name: vmdkit compare with the expected content" "$VMDKIT" compare exp.raw "$disk"

    cid1=$(disk_cid "$disk")
    assert_true "$name: CID changed on the first write ($cid0 -> $cid1)" \
        test -n "$cid1" -a "$cid1" != "$cid0" -a "$cid1" != ffffffff -a "$cid1" != fffffffe
    lcid=$(descriptor_value "$disk" ddb.longContentID | tr 'A-F' 'a-f')
    if [ -n "$lcid" ] && [ -n "$cid1" ]; then
        assert_eq "$name: ddb.longContentID ends with the new CID" \
            "$(printf '%08x' "$((16#$cid1))")" "${lcid: -8}"
    fi
    assert_eq "$name: size unchanged" "$size" "$(qemu_size "$disk")"
    run vmdkinfo "$disk"
    assert_eq "$name: vmdkinfo opens it, media size" "$size" \
        "$(sed -n 's/.*Media size:.*(\([0-9]*\) bytes).*/\1/p' "$OUT" | head -n 1)"
    if ((${#PARENT_FILES[@]})); then
        assert_eq "$name: parent files unchanged" "$parents_before" "$(sums_of "${PARENT_FILES[@]}")"
    fi
    rm -f exp.raw
}

say "--- monolithicSparse made by vmdkit"
check "vmdkit create monolithicSparse 64M" "$VMDKIT" create a.vmdk 64M
check "fresh disk: qemu-img check" qemu-img check a.vmdk
W_A=(
    -c 'write -P 0xab 1M 64k'
    -c 'write -P 0x5c 100 1000'
    -c 'write -P 0x5d 65000 1000'
    -c 'write -P 0x5e 4M 1M'
    -c "write -P 0x5f $((40 * M)) 4096"
    -c "write -z $((M + 16384)) 16384"
    -c "write -P 0x60 $((64 * M - 512)) 512"
    -c flush
)
R_A=(
    -c 'read -P 0xab 1M 16k'
    -c "read -P 0 $((M + 16384)) 16384"
    -c "read -P 0xab $((M + 32768)) 32768"
    -c 'read -P 0 0 100'
    -c 'read -P 0x5c 100 1000'
    -c 'read -P 0x5d 65000 1000'
    -c 'read -P 0x5e 4M 1M'
    -c "read -P 0x5f $((40 * M)) 4096"
    -c "read -P 0 $((40 * M + 4096)) 61440"
    -c "read -P 0x60 $((64 * M - 512)) 512"
)
inplace "vmdkit monolithicSparse" a.vmdk W_A R_A

# split_writes NAME DISK PIECE: writes across the first two piece
# boundaries of a 5 GiB split disk with pieces of PIECE sectors (the second
# boundary may be past the end)
split_writes() {
    local name=$1 disk=$2 b1=$(($3 * 512)) b2=$((2 * $3 * 512))
    local W=(
        -c 'write -P 0xab 1M 64k'
        -c 'write -P 0x5c 100 1000'
        -c "write -P 0x71 $((b1 - 3000)) 10000"
        -c "write -P 0x73 $((5 * G - 4096)) 4096"
    )
    local R=(
        -c 'read -P 0xab 1M 64k'
        -c 'read -P 0x5c 100 1000'
        -c "read -P 0 $((b1 - 65536)) $((65536 - 3000))"
        -c "read -P 0x71 $((b1 - 3000)) 10000"
        -c "read -P 0 $((b1 + 7000)) 1000"
        -c "read -P 0x73 $((5 * G - 4096)) 4096"
    )
    if [ "$b2" -lt $((5 * G)) ]; then
        W+=(-c "write -P 0x72 $((b2 - 512)) 1024")
        R+=(-c "read -P 0x72 $((b2 - 512)) 1024")
    fi
    W+=(-c flush)
    inplace "$name" "$disk" W R
}

say "--- twoGbMaxExtentSparse made by vmdkit (5 GiB: two pieces of at most 4064 MiB)"
if check "vmdkit create -t twoGbMaxExtentSparse 5G" "$VMDKIT" create -t twoGbMaxExtentSparse b.vmdk 5G; then
    assert_eq "split create: extent lines" \
        "RW 8323072 SPARSE \"b-s001.vmdk\"|RW 2162688 SPARSE \"b-s002.vmdk\"" \
        "$(grep -E '^(RW|RDONLY|NOACCESS) ' b.vmdk | paste -sd '|')"
fi
split_writes "vmdkit twoGbMaxExtentSparse" b.vmdk "$SPLIT_SECTORS"

say "--- twoGbMaxExtentSparse --split-size 2g made by vmdkit (5 GiB: three pieces of 2047 MiB)"
if check "vmdkit create -t twoGbMaxExtentSparse --split-size 2g 5G" \
    "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 2g b2.vmdk 5G; then
    assert_eq "split create: extent lines" \
        "RW 4192256 SPARSE \"b2-s001.vmdk\"|RW 4192256 SPARSE \"b2-s002.vmdk\"|RW 2101248 SPARSE \"b2-s003.vmdk\"" \
        "$(grep -E '^(RW|RDONLY|NOACCESS) ' b2.vmdk | paste -sd '|')"
fi
split_writes "vmdkit twoGbMaxExtentSparse 2g" b2.vmdk "$SPLIT_2G_SECTORS"

say "--- twoGbMaxExtentSparse made by qemu-img (2 GiB pieces)"
check "qemu-img create twoGbMaxExtentSparse 5G" \
    qemu-img create -f vmdk -o subformat=twoGbMaxExtentSparse c.vmdk 5G
W_C=(
    -c "write -P 0x81 $((G2 - 3000)) 10000"
    -c "write -P 0x82 $((2 * G2 - 100)) 200"
    -c 'write -P 0x83 0 512'
)
R_C=(
    -c "read -P 0x81 $((G2 - 3000)) 10000"
    -c "read -P 0x82 $((2 * G2 - 100)) 200"
    -c 'read -P 0x83 0 512'
    -c 'read -P 0 512 65024'
)
inplace "qemu twoGbMaxExtentSparse" c.vmdk W_C R_C

say "--- qemu-made disk with zeroed-grain entries"
check "qemu-img create zeroed_grain=on 16M" qemu-img create -f vmdk -o zeroed_grain=on z.vmdk 16M
check "qemu-io fills 8 MiB" qemu-io -f vmdk -c 'write -P 0x44 0 8M' z.vmdk
W_D=(
    -c 'write -z 1M 128k'
    -c "write -z $((2 * M + 1000)) 3000"
    -c 'write -P 0x45 12M 64k'
    -c 'write -z 14M 64k'
)
R_D=(
    -c 'read -P 0 1M 128k'
    -c 'read -P 0x44 1179648 64k'
    -c 'read -P 0x44 2M 1000'
    -c "read -P 0 $((2 * M + 1000)) 3000"
    -c "read -P 0x44 $((2 * M + 4000)) 4000"
    -c 'read -P 0x45 12M 64k'
    -c 'read -P 0 14M 64k'
)
inplace "qemu zeroed-grain monolithicSparse" z.vmdk W_D R_D
run qemu-img map --output=json z.vmdk
assert_eq "zeroed-grain: whole grains zeroed by vmdkit are zero entries, not data" \
    "true false" "$(jq -r '[.[] | select(.start <= 1048576 and 1048576 < .start + .length)][0]
                          | "\(.zero) \(.data)"' "$OUT")"
assert_true "zeroed-grain: the zeroed run covers 128 KiB" \
    jq -e '[.[] | select(.start <= 1048576 and 1048576 < .start + .length)][0]
           | .start + .length >= 1179648' "$OUT" >/dev/null

say "--- flat disks"
W_F=(
    -c 'write -P 0x91 100 1000'
    -c 'write -P 0x92 2M 64k'
    -c "write -z $((2 * M + 4096)) 4096"
    -c "write -P 0x93 $((4 * M - 10)) 10"
)
R_F=(
    -c 'read -P 0x91 100 1000'
    -c 'read -P 0x92 2M 4096'
    -c "read -P 0 $((2 * M + 4096)) 4096"
    -c "read -P 0x92 $((2 * M + 8192)) $((65536 - 8192))"
    -c "read -P 0x93 $((4 * M - 10)) 10"
)
check "qemu-img create monolithicFlat 4M" qemu-img create -f vmdk -o subformat=monolithicFlat qf.vmdk 4M
inplace "qemu monolithicFlat" qf.vmdk W_F R_F
for type in monolithicFlat twoGbMaxExtentFlat vmfs; do
    check "vmdkit create -t $type 4M" "$VMDKIT" create -t "$type" "v$type.vmdk" 4M &&
        inplace "vmdkit $type" "v$type.vmdk" W_F R_F
done

say "--- child of a qemu-made chain"
mkdir chain
cd chain || exit 1
check "chain: base" qemu-img create -f vmdk base.vmdk 8M
check "chain: base data" qemu-io -f vmdk -c 'write -P 0xaa 0 2M' base.vmdk
check "chain: child" qemu-img create -f vmdk -b base.vmdk -F vmdk child.vmdk
check "chain: zeroed-grain child" qemu-img create -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk zchild.vmdk
PARENT_FILES=(base.vmdk)
W_G=(
    -c "write -P 0x12 $((524288 + 100)) 1000"
    -c 'write -P 0x13 1M 64k'
    -c 'write -z 1536k 64k'
    -c "write -z $((262144 + 10)) 20"
)
R_G=(
    -c 'read -P 0xaa 512k 100'
    -c "read -P 0x12 $((524288 + 100)) 1000"
    -c "read -P 0xaa $((524288 + 1100)) $((65536 - 1100))"
    -c 'read -P 0x13 1M 64k'
    -c 'read -P 0 1536k 64k'
    -c 'read -P 0xaa 1600k 64k'
    -c 'read -P 0xaa 0 262154'
    -c "read -P 0 $((262144 + 10)) 20"
    -c "read -P 0xaa $((262144 + 30)) 1000"
)
inplace "chain child" child.vmdk W_G R_G
inplace "chain zeroed-grain child" zchild.vmdk W_G R_G
run qemu-img map --output=json zchild.vmdk
assert_eq "zeroed-grain child: whole grain zeroed over parent data is a zero entry" \
    "true false 0" "$(jq -r '[.[] | select(.start <= 1572864 and 1572864 < .start + .length)][0]
                             | "\(.zero) \(.data) \(.depth)"' "$OUT")"
PARENT_FILES=()
cd "$TMP" || exit 1

say "--- read-only opens"
before=$(sums_of a.vmdk)
expect_exit 9 "io -r refuses a write" "$VMDKIT" io -r a.vmdk -c 'write -P 0x01 0 512' &&
    assert_err_line "io -r write"
expect_exit 0 "io with reads only" "$VMDKIT" io a.vmdk -c 'read 0 64k' -c 'read -P 0x5c 100 1000'
assert_eq "reads leave the file byte-identical" "$before" "$(sums_of a.vmdk)"

say "--- read -P reports a mismatch"
expect_exit 1 "read -P with the wrong pattern fails" "$VMDKIT" io a.vmdk -c 'read -P 0x77 1M 64k'
assert_true "mismatch message names offset and byte: $(head -n 1 "$ERR")" \
    grep -q '^vmdkit: .*read -P 0x77: byte at offset 1048576 is 0xab$' "$ERR"
assert_eq "reads leave the file byte-identical" "$before" "$(sums_of a.vmdk)"

finish
