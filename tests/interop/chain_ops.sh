#!/usr/bin/env bash
# Living with snapshot chains:
#  4. commit of a delta with a single dependent gives the same content as a
#     convert of the chain (and its own child keeps its content); commit is
#     refused (exit 7, nothing written) when the parent has a second
#     dependent.
#  5. a safe rebase keeps the content (qemu-img compare before and after);
#     rebase -u repairs a chain broken by moving the parent's files by hand.
#  6. a parent modified after its child was made: info, tree and opening the
#     child all report the CID mismatch with both CIDs.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img python3
mk_tmpdir

say "--- 4. commit"
mkdir c4 && cd c4 || exit 1
check "create base" "$VMDKIT" create -t monolithicSparse base.vmdk 32M
check "write into base" "$VMDKIT" io base.vmdk -c 'write -P 0x31 0 4M' -c 'write -P 0x32 8M 4M'
check "snapshot base" "$VMDKIT" snapshot base.vmdk
check "write into the delta (over, beside and zeroing the base's data)" "$VMDKIT" io base-000001.vmdk \
    -c 'write -P 0x41 2M 4M' -c 'write -z 9M 1M' -c 'write -P 0x42 20M 1M' -c 'write -P 0x43 100 1000'
check "snapshot the delta" "$VMDKIT" snapshot base-000001.vmdk
check "write into the delta's child" "$VMDKIT" io base-000002.vmdk -c 'write -P 0x51 30M 64k'
check "convert the chain to raw" "$VMDKIT" convert -O raw base-000001.vmdk chain.raw
check "convert the longer chain to raw" "$VMDKIT" convert -O raw base-000002.vmdk chain2.raw
check "commit base-000001.vmdk (the base's only dependent)" "$VMDKIT" commit base-000001.vmdk
check "convert the committed base to raw" "$VMDKIT" convert -O raw base.vmdk committed.raw
assert_true "commit gives the same content as convert of the chain (cmp of raw outputs)" \
    cmp -s chain.raw committed.raw
check "qemu-img check of the committed base" qemu-img check base.vmdk
check "qemu-img compare: chain raw vs committed base" qemu-img compare chain.raw base.vmdk
assert_eq "the delta's child now points at the base" "base.vmdk" \
    "$(descriptor_value base-000002.vmdk parentFileNameHint)"
check "the child opens (info --chain)" "$VMDKIT" info --chain base-000002.vmdk
check "convert the child's chain again" "$VMDKIT" convert -O raw base-000002.vmdk after2.raw
assert_true "the child reads what it read before the commit" cmp -s chain2.raw after2.raw
rm -f ./*.raw

check "create p" "$VMDKIT" create p.vmdk 16M
check "write into p" "$VMDKIT" io p.vmdk -c 'write -P 0x61 0 1M'
check "first snapshot of p" "$VMDKIT" snapshot p.vmdk
check "second snapshot of p (a second dependent)" "$VMDKIT" snapshot p.vmdk
assert_eq "both have p as parent" "p.vmdk p.vmdk" \
    "$(descriptor_value p-000001.vmdk parentFileNameHint) $(descriptor_value p-000002.vmdk parentFileNameHint)"
check "write into p-000001" "$VMDKIT" io p-000001.vmdk -c 'write -P 0x62 0 1M'
sums_of p.vmdk p-000001.vmdk p-000002.vmdk >sums-before.txt
expect_exit 7 "commit p-000001.vmdk is refused: p has a second dependent" "$VMDKIT" commit p-000001.vmdk &&
    assert_err_line "refused commit" &&
    assert_true "the message names the other dependent" grep -q 'p-000002.vmdk' "$ERR"
assert_eq "nothing was written" "$(cat sums-before.txt)" "$(sums_of p.vmdk p-000001.vmdk p-000002.vmdk)"
check "p-000002 still reads p's data" "$VMDKIT" io -r p-000002.vmdk -c 'read -P 0x61 0 1M'
cd .. || exit 1

say "--- 5. rebase"
mkdir c5 && cd c5 || exit 1
check "create a split base (2047 MiB pieces)" "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 2g r.vmdk 3G
check "write into the base" "$VMDKIT" io r.vmdk -c 'write -P 0x71 0 2M' -c 'write -P 0x72 2046M 4M' \
    -c 'write -P 0x73 3000M 1M'
check "snapshot: mid" "$VMDKIT" snapshot r.vmdk
assert_eq "the delta has its parent's pieces of 2047 MiB" \
    'RW 4192256 SPARSE "r-000001-s001.vmdk"|RW 2099200 SPARSE "r-000001-s002.vmdk"' \
    "$(grep -E '^RW ' r-000001.vmdk | paste -sd '|')"
check "write into mid" "$VMDKIT" io r-000001.vmdk -c 'write -P 0x81 1M 2M' -c 'write -z 2047M 1M' \
    -c 'write -P 0x82 100M 1M'
check "snapshot: top" "$VMDKIT" snapshot r-000001.vmdk
check "write into top" "$VMDKIT" io r-000002.vmdk -c 'write -P 0x91 1536k 64k' -c 'write -P 0x92 200M 1M'
check "top's content before, as raw" "$VMDKIT" convert -O raw r-000002.vmdk before.raw
check "rebase (safe) of top onto the base" "$VMDKIT" rebase -b r.vmdk r-000002.vmdk
assert_eq "top's parent is now the base" "r.vmdk" "$(descriptor_value r-000002.vmdk parentFileNameHint)"
assert_eq "top's parentCID is the base's CID" "$(descriptor_value r.vmdk CID)" \
    "$(descriptor_value r-000002.vmdk parentCID)"
check "qemu-img compare before/after the safe rebase" qemu-img compare before.raw r-000002.vmdk
assert_true "qemu-img: identical" grep -q identical "$OUT"
check "qemu-img check of the rebased top" qemu-img check r-000002.vmdk

mkdir moved
mv r.vmdk r-s001.vmdk r-s002.vmdk moved/
expect_exit 6 "after moving the base by hand, top no longer opens" "$VMDKIT" info r-000002.vmdk
expect_exit 1 "qemu-img info --backing-chain fails too" qemu-img info --backing-chain r-000002.vmdk
printf 'not a disk\n' >fake.vmdk
sums_of r-000002.vmdk >sums-before.txt
run "$VMDKIT" rebase -u -b fake.vmdk r-000002.vmdk
assert_true "rebase -u onto a file that is not a VMDK is refused (exit $RC)" test "$RC" -ne 0 -a "$RC" -ne 125
assert_eq "the refused rebase wrote nothing" "$(cat sums-before.txt)" "$(sums_of r-000002.vmdk)"
check "rebase -u -b moved/r.vmdk repairs the chain" "$VMDKIT" rebase -u -b moved/r.vmdk r-000002.vmdk
assert_eq "the hint names the new place" "moved/r.vmdk" "$(descriptor_value r-000002.vmdk parentFileNameHint)"
check "vmdkit info --chain opens it again" "$VMDKIT" info --chain r-000002.vmdk
check "qemu-img compare: the content is the one before the move" qemu-img compare before.raw r-000002.vmdk
rm -f ./*.raw
cd .. || exit 1

say "--- 6. a parent modified after its child was made"
mkdir c6 && cd c6 || exit 1
check "create m" "$VMDKIT" create m.vmdk 8M
check "snapshot m" "$VMDKIT" snapshot m.vmdk
pcid=$(descriptor_value m-000001.vmdk parentCID)
check "write into the parent m after its child was made" "$VMDKIT" io m.vmdk -c 'write -P 0xa1 0 64k'
ncid=$(descriptor_value m.vmdk CID)
assert_true "the parent's CID changed ($pcid -> $ncid)" test -n "$ncid" -a "$pcid" != "$ncid"
expect_exit 7 "vmdkit info of the child" "$VMDKIT" info m-000001.vmdk
assert_true "info names the child's parentCID, not the parent's CID (L4)" \
    sh -c 'grep -q "$1" "$3" && ! grep -q "$2" "$3"' - "$pcid" "$ncid" "$ERR"
expect_exit 7 "opening the child (io -r)" "$VMDKIT" io -r m-000001.vmdk -c 'read 0 512' &&
    assert_true "io names the child's parentCID, not the parent's CID" \
        sh -c 'grep -q "$1" "$3" && ! grep -q "$2" "$3"' - "$pcid" "$ncid" "$ERR"
check "vmdkit tree" "$VMDKIT" tree .
assert_true "tree flags the child with both CIDs" grep -q "m-000001.vmdk .*CID mismatch.*$pcid.*$ncid" "$OUT"
check "vmdkit tree --json" "$VMDKIT" tree --json .
assert_eq "tree --json: the flag and both CIDs" "['cid-mismatch'] $pcid $ncid" \
    "$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
n = d["disks"][d["disks"][d["families"][0]]["children"][0]]
print(n["flags"], n["parent-cid"], n["parent-actual-cid"])' "$OUT")"
# rescuing the data of a broken chain takes no write: read-only --ignore-cid
expect_exit 7 "convert of the broken chain" "$VMDKIT" convert -O raw m-000001.vmdk rescued.raw
check "convert --ignore-cid of it" "$VMDKIT" convert --ignore-cid -O raw m-000001.vmdk rescued.raw
check "the rescue holds what the chain reads now" "$VMDKIT" io -f raw -r rescued.raw -c 'read -P 0xa1 0 64k'
expect_exit 7 "compare of the broken chain" "$VMDKIT" compare m-000001.vmdk m.vmdk
check "compare --ignore-cid of it with its parent" "$VMDKIT" compare --ignore-cid m-000001.vmdk m.vmdk
cd .. || exit 1

finish
