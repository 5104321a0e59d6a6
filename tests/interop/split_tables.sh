#!/usr/bin/env bash
# split_tables.sh - reading a large split disk costs memory for the grain
# tables that hold data, not for every table of every piece (M1): a 3.9 TiB
# twoGbMaxExtentSparse disk with a split snapshot (999 pieces each, 127
# preallocated tables per piece, all but a few empty) is described, read,
# compared and converted with at most 32 KiB more peak memory per open
# piece than a chain of 8-piece links (what remains is a few KiB per piece:
# its directory, cache index and names; about twice that under ASan).  Before, every table read stayed cached: 254 KiB per
# piece, about 250 MiB per link (500 MiB for info and convert of the chain,
# 1 GiB for compare, which opens it twice).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need /usr/bin/time
mk_tmpdir

# peak_kib CMD...: run CMD (its output to $OUT), its peak RSS in KiB in PEAK
peak_kib() {
    /usr/bin/time -f %M -o "$TMP/.rss" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    PEAK=$(tail -n 1 "$TMP/.rss")
}

make_disk() { # NAME SIZE: a split disk with data at its start, middle and end, and a snapshot
    check "create $1 ($2)" "$VMDKIT" create -t twoGbMaxExtentSparse "$1.vmdk" "$2"
    local end=$(($3 - 65536)) mid=$(($3 / 2))
    check "write $1's start, middle and end" "$VMDKIT" io "$1.vmdk" -c "write -P 0xa1 0 64k" \
        -c "write -P 0xa2 $mid 64k" -c "write -P 0xa3 $end 64k"
    check "snapshot $1" "$VMDKIT" snapshot "$1.vmdk"
    check "write $1's snapshot" "$VMDKIT" io "$1-000001.vmdk" -c "write -P 0xb1 32k 64k" \
        -c "write -P 0xb2 $((mid + 4096)) 8k"
}
SMALL=$((8 * 8323072 * 512))
BIG=$((999 * 8323072 * 512))
make_disk small "$SMALL" "$SMALL"
make_disk big "$BIG" "$BIG"
assert_eq "the big snapshot is split in 999 pieces" 999 "$(ls big-000001-s*.vmdk | wc -l)"

# the data both links wrote, as the snapshot reads it
mid=$((BIG / 2))
READS=(-c "read -P 0xa1 0 32k" -c "read -P 0xb1 32k 64k" -c "read -P 0xa2 $mid 4k"
    -c "read -P 0xb2 $((mid + 4096)) 8k" -c "read -P 0xa2 $((mid + 12288)) 52k"
    -c "read -P 0xa3 $((BIG - 65536)) 64k" -c "read -P 0 $((mid + 65536)) 64k")
check "the big chain reads what both links wrote" "$VMDKIT" io -r big-000001.vmdk "${READS[@]}"

# within WHAT SMALL-KIB BIG-KIB PIECES: the big chain's peak (PIECES open)
# is at most the small one's plus 32 KiB per piece
within() {
    if [ "$3" -le $(($2 + 32 * $4)) ]; then
        pass "$1: peak RSS $3 KiB with $4 pieces open, $2 KiB for the small chain"
    else
        fail "$1: peak RSS $3 KiB with $4 pieces open, more than $2 KiB for the small chain plus 32 KiB a piece"
    fi
}
peak_kib "$VMDKIT" info small-000001.vmdk
s=$PEAK
peak_kib "$VMDKIT" info big-000001.vmdk
b=$PEAK
assert_eq "info of the big chain (exit)" 0 "$RC"
within "info" "$s" "$b" 1998
peak_kib "$VMDKIT" compare small-000001.vmdk small-000001.vmdk
s=$PEAK
peak_kib "$VMDKIT" compare big-000001.vmdk big-000001.vmdk
b=$PEAK
assert_eq "compare of the big chain with itself (exit)" 0 "$RC"
within "compare" "$s" "$b" 3996
peak_kib "$VMDKIT" convert -O raw small-000001.vmdk small.raw
s=$PEAK
peak_kib "$VMDKIT" convert -O raw big-000001.vmdk big.raw
b=$PEAK
assert_eq "convert of the big chain to raw (exit)" 0 "$RC"
within "convert" "$s" "$b" 1998
check "the raw copy holds the data" "$VMDKIT" io -r -f raw big.raw "${READS[@]}"
check "the raw copy compares equal" "$VMDKIT" compare -F raw big-000001.vmdk big.raw

finish
