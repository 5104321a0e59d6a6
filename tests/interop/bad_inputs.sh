#!/usr/bin/env bash
# Malformed inputs, made here from good qemu-img disks: every command that
# opens them must fail with the documented exit code and one error line
# ("vmdkit: ..."), never crash or hang, never write the input files, and
# never leave a half-made destination behind.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img qemu-io timeout
need_vmdkit
mk_tmpdir
mkdir out

# bad_case NAME CODE DISK: every command that opens DISK must exit CODE.
bad_case() {
    local name=$1 code=$2 disk=$3 dir before i
    dir=$(dirname "$disk")
    say "--- $name"
    before=$(cd "$dir" && sums_of *)
    for i in 1 2 3 4 5 6 7 8 9; do
        case $i in
        1) set -- info "$disk" ;;
        2) set -- info --json "$disk" ;;
        3) set -- map "$disk" ;;
        4) set -- map --json "$disk" ;;
        5) set -- io "$disk" -c 'read 0 512' ;;
        6) set -- io "$disk" -c 'write -P 0x01 0 512' ;;
        7) set -- compare "$disk" ref.raw ;;
        8) set -- convert -O raw "$disk" out/x.raw ;;
        9) set -- convert -O vmdk "$disk" out/x.vmdk ;;
        esac
        expect_exit "$code" "$name: vmdkit $*" timeout 30 "$VMDKIT" "$@" &&
            assert_err_line "$name: vmdkit $1"
    done
    assert_true "$name: no destination left behind" test -z "$(ls out)"
    rm -f out/*
    assert_eq "$name: input files unchanged" "$before" "$(cd "$dir" && sums_of *)"
}

truncate -s 1M ref.raw

# Good disks to break.
mkdisk() { # mkdisk DIR NAME [qemu-img create options...]
    mkdir -p "$1"
    qemu-img create -q -f vmdk "${@:3}" "$1/$2" 4M &&
        qemu-io -f vmdk -c 'write -P 0x11 0 64k' "$1/$2" >/dev/null
}

mkdisk trunc1 d.vmdk
head -c 100 trunc1/d.vmdk >trunc1/t.vmdk
rm trunc1/d.vmdk
bad_case "header cut at 100 bytes" 4 trunc1/t.vmdk

mkdir trunc2
{ printf 'KDMV'; head -c 96 /dev/zero; } >trunc2/t.vmdk
bad_case "magic then 96 zero bytes" 4 trunc2/t.vmdk

mkdir empty
: >empty/e.vmdk
bad_case "empty .vmdk file" 4 empty/e.vmdk

mkdir magic1
for i in $(seq 1 200); do echo "line $i: this is a text file, not a disk"; done >magic1/x.vmdk
bad_case "text file named .vmdk (not read as raw)" 4 magic1/x.vmdk

mkdir magic2
random_bytes 3 65536 >magic2/r.vmdk
bad_case "random bytes named .vmdk" 4 magic2/r.vmdk

mkdisk noext1 f.vmdk -o subformat=monolithicFlat
rm noext1/f-flat.vmdk
bad_case "flat extent file missing" 6 noext1/f.vmdk

mkdisk noext2 s.vmdk -o subformat=twoGbMaxExtentSparse
rm noext2/s-s001.vmdk
bad_case "sparse extent file missing" 6 noext2/s.vmdk

mkdisk short f.vmdk -o subformat=monolithicFlat
truncate -s 2M short/f-flat.vmdk
bad_case "flat extent larger than its file" 4 short/f.vmdk

mkdisk gd1 d.vmdk
put_le64 gd1/d.vmdk 56 $((0x10000000))
bad_case "grain directory past end of file" 4 gd1/d.vmdk

mkdisk gd2 d.vmdk
put_le64 gd2/d.vmdk 56 $((0x10000000))
put_le64 gd2/d.vmdk 48 $((0x10000001))
bad_case "both grain directories past end of file" 4 gd2/d.vmdk

mkdir noextents
cat >noextents/d.vmdk <<'EOF'
# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="monolithicFlat"

# Extent description

# The Disk Data Base
#DDB
ddb.adapterType = "ide"
EOF
bad_case "descriptor without extents" 4 noextents/d.vmdk

mkdir -p policy/inner
truncate -s 1M policy/outside-flat.vmdk
sed 's|^# Extent description$|&\nRW 2048 FLAT "../outside-flat.vmdk" 0|' noextents/d.vmdk >policy/inner/d.vmdk
bad_case "extent outside the descriptor's folder" 9 policy/inner/d.vmdk
expect_exit 0 "extent outside the folder opens with --allow-external-extents" \
    "$VMDKIT" info --allow-external-extents policy/inner/d.vmdk

mkdir abspath
sed 's|^# Extent description$|&\nRW 1 FLAT "/etc/passwd" 0|' noextents/d.vmdk >abspath/d.vmdk
bad_case "extent with an absolute path" 9 abspath/d.vmdk

# Chains --------------------------------------------------------------------
mkdisk noparent base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk noparent/child.vmdk
rm noparent/base.vmdk
bad_case "parent file missing" 6 noparent/child.vmdk

mkdisk cid base.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk cid/child.vmdk
qemu-io -f vmdk -c 'write -P 0x22 1M 4k' cid/base.vmdk >/dev/null
pcid=$(descriptor_value cid/child.vmdk parentCID)
bcid=$(descriptor_value cid/base.vmdk CID)
say "CID mismatch: child parentCID=$pcid, base CID=$bcid"
bad_case "parent CID mismatch" 7 cid/child.vmdk
run "$VMDKIT" info cid/child.vmdk
msg=$(head -n 1 "$ERR")
assert_true "CID message names child.vmdk: $msg" grep -q 'child\.vmdk' <<<"$msg"
assert_true "CID message names base.vmdk" grep -q 'base\.vmdk' <<<"$msg"
assert_true "CID message gives the child's parentCID $pcid" grep -Eiq "\b0*${pcid#"${pcid%%[!0]*}"}\b" <<<"$msg"
# L4: an error echoed to whoever made the child must not tell them the CID to write
assert_true "CID message keeps the base's CID $bcid to itself" test -n "$bcid" -a "${msg#*"$bcid"}" = "$msg"
run "$VMDKIT" check cid/child.vmdk
assert_true "check keeps it to itself too" sh -c '! grep -qi "$1" "$2" "$3"' - "$bcid" "$OUT" "$ERR"
before=$(cd cid && sums_of *)
expect_exit 0 "info --ignore-cid opens the mismatched chain" "$VMDKIT" info --ignore-cid cid/child.vmdk
expect_exit 0 "map --ignore-cid opens the mismatched chain" "$VMDKIT" map --ignore-cid cid/child.vmdk
assert_eq "--ignore-cid leaves the files unchanged" "$before" "$(cd cid && sums_of *)"

mkdir capacity
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse capacity/base.vmdk 4M
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b base.vmdk -F vmdk capacity/child.vmdk
sed -i 's/^RW 8192 SPARSE "child-s001.vmdk"$/&\nRW 8192 ZERO/' capacity/child.vmdk
bad_case "a child larger than its parent" 7 capacity/child.vmdk

mkdir loop
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse loop/a.vmdk 4M
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b a.vmdk -F vmdk loop/b.vmdk
bcid=$(descriptor_value loop/b.vmdk CID)
sed -i -e "s/^parentCID=.*/parentCID=$bcid/" \
    -e 's/^createType=.*/&\nparentFileNameHint="b.vmdk"/' loop/a.vmdk
bad_case "two disks naming each other as parent" 7 loop/b.vmdk

mkdir self
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse self/s.vmdk 4M
scid=$(descriptor_value self/s.vmdk CID)
sed -i -e "s/^parentCID=.*/parentCID=$scid/" \
    -e 's/^createType=.*/&\nparentFileNameHint="s.vmdk"/' self/s.vmdk
bad_case "disk naming itself as parent" 7 self/s.vmdk

# A grain table entry pointing past the end of the file: opening may work,
# reading that grain must fail.
mkdisk gte d.vmdk
gd=$(printf '%d' "0x$(le_u64_hex gte/d.vmdk 56)")
gt=$(le_u32 gte/d.vmdk $((gd * 512)))
printf '\x00\x00\x00\x10' | dd of=gte/d.vmdk bs=1 seek=$((gt * 512)) conv=notrunc status=none
say "--- grain past end of file (GT at sector $gt)"
before=$(cd gte && sums_of *)
expect_exit 4 "grain past EOF: convert -O raw" timeout 30 "$VMDKIT" convert -O raw gte/d.vmdk out/gte.raw &&
    assert_err_line "grain past EOF: convert"
assert_true "grain past EOF: no destination left behind" test ! -e out/gte.raw
expect_exit 4 "grain past EOF: io read" timeout 30 "$VMDKIT" io gte/d.vmdk -c 'read 0 512' &&
    assert_err_line "grain past EOF: io read"
assert_eq "grain past EOF: input unchanged" "$before" "$(cd gte && sums_of *)"


# Long parent hints (deep folder trees): a message longer than 1 KiB loses
# the middle of its paths, never the field, the reason or the file names.
mkdir longhint
truncate -s 1M longhint/f-flat.vmdk
long_hint_disk() { # long_hint_disk FILE HINT
    printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=11111111\nparentFileNameHint="%s"\ncreateType="monolithicFlat"\n\n# Extent description\nRW 2048 FLAT "f-flat.vmdk" 0\n' "$2" >"$1"
}
long_hint_disk longhint/c.vmdk "$(printf 'd/%.0s' $(seq 600))x.vmdk"
expect_exit 6 "1.2 KB parent hint: info" "$VMDKIT" info longhint/c.vmdk &&
    assert_err_line "1.2 KB parent hint: info"
assert_true "1.2 KB parent hint: the message fits 1 KiB" test "$(wc -c <"$ERR")" -le $((8 + 1023 + 1))
assert_true "1.2 KB parent hint: file and field first" grep -q '^vmdkit: longhint/c.vmdk: parentFileNameHint: parent "d/d/d/' "$ERR"
assert_true "1.2 KB parent hint: the reason and the resolved path's file name last" \
    grep -q '/d/x\.vmdk" not found (.*/d/x\.vmdk)$' "$ERR"
expect_exit 2 "1.2 KB parent hint: check" "$VMDKIT" check longhint/c.vmdk
assert_true "1.2 KB parent hint: check's finding keeps its end too" \
    grep -q '^ERROR: longhint/c.vmdk: parentFileNameHint: parent "d/d/.*/d/x\.vmdk" not found (.*/d/x\.vmdk)$' "$OUT"
long_hint_disk longhint/c2.vmdk "$(printf 'dd/%.0s' $(seq 1500))x.vmdk"
run "$VMDKIT" info longhint/c2.vmdk
assert_true "4.5 KB parent hint: info fails" test "$RC" -ne 0 -a "$RC" -lt 124
assert_err_line "4.5 KB parent hint: info"
assert_true "4.5 KB parent hint: the field and the reason survive" \
    grep -q '^vmdkit: longhint/c2.vmdk: parentFileNameHint: "dd/dd/.*/dd/x\.vmdk": open: File name too long$' "$ERR"

finish
