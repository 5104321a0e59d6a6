#!/usr/bin/env bash
# Third-party disks (VMware, ESXi, VirtualBox, vmdktool, FreeBSD mkimg,
# qemu of several versions) from $VMDKIT_CORPUS: vmdkit must report the
# capacity and produce the content whose SHA-256 the corpus's SOURCES.md
# records, and must refuse the corrupt or incomplete ones with the
# documented exit code.  The corpus is only read; conversions go to a
# temporary folder.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need jq openssl timeout gzip
need_vmdkit
corpus_or_skip
mk_tmpdir

ZEROS=zeros # the whole disk reads as zeros

# file | capacity in bytes | sha256 of the whole content (from SOURCES.md)
GOOD=(
    "vmdk-rs/monolithicFlat.vmdk|10485760|a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727"
    "vmdk-rs/twoGbMaxExtentFlat.vmdk|10485760|a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727"
    "vmdk-rs/monolithicSparse.vmdk|10485760|a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727"
    "vmdk-rs/twoGbMaxExtentSparse.vmdk|10485760|a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727"
    "vmdk-rs/streamOptimized.vmdk|10485760|a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727"
    "vmdk-rs/streamOptimizedWithMarkers.vmdk|1048576|92c0f8b4280377437056f57c51ef51a5f8aeb1462ac630ef0633febcbfc3db4e"
    "vmdk-rs/vmfs_thick.vmdk|2097152|8d43c795d24bce01b49f92744f934c1072210dcac170bb1c83a5aa56df46ab7d"
    "qemu-iotests/iotest-version3.vmdk|17179869184|0859bb3397bc1d30fa979c80a289ce98bfd6c1141a64594d6f3cc8cd68218faf"
    "cot/blank.vmdk|536870912|9acca8e8c22201155389f65abbf6bc9723edc7384ead80503839f49dcc56d767"
    "cot/input.vmdk|1073741824|49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"
    "cot/input-old-8aec514.vmdk|8589934592|$ZEROS"
    "cot/ubuntu.2.0-disk1.vmdk|8589934592|$ZEROS"
    "xo-vmdk-to-vhd/test.vmdk|4194304|$ZEROS"
    "freebsd-mkimg/img-1x1-4096-gpt.vmdk|5242880|be8e6b405d0ffd721d841189bb14b1df46816e5f4f9684441e37cb7d9aeb1478"
    "freebsd-mkimg/img-63x255-512-mbr.vmdk|8388608|7255789b5f305e9f7a6c0771c45240db90594f7044ea8da6a823c070e1b06d8a"
    "freebsd-mkimg/img-63x255-512-vtoc8.vmdk|25165824|8a695d4407693de82091c7fbcea1f17dcf397cefa5abd8fcf383cbab1ad8c3f3"
    "dfvfs/ext2.vmdk|4194304|a6c2f0e39afe6c6ab432ca5465349fcefe8dc944398e97b2d957d3f89dbb5d80"
    "plaso/image.vmdk|102400|854c3db1c4a07a241e2ed9fbd8892adf2adc662c7862a75deed26f3483f414c9"
    "go-vmdk-parser/vmdk-monolith.img|65536|de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc31"
    "go-vmdk-parser/vmdk-streamoptimized.img|65536|de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc31"
    "vmdk-forensic/compressed_stream_opt.vmdk|65536|55f4f09be519d8702500e4442b9efd7d58c912ea774d5f767c2444a02bcf8080"
    "vmdk-forensic/tw_sparse.vmdk|4194304|$ZEROS"
    "vmdk-forensic/flat.vmdk|1048576|30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58"
)

# file | exit code | why (from SOURCES.md)
BAD=(
    "qemu-iotests/afl9.vmdk|4|fuzzed header: capacity and GD offset far out of range"
    "go-vmdk-parser/vmdk-invalid.img|4|embedded descriptor wiped, file cut short"
    "vmdk-rs/vmfs_thick-000001.vmdk|6|ESXi delta whose COWD extent file is absent"
    "vmdk-forensic/ms3-win.vmdk|6|16-extent descriptor without its extent files"
    "libvmdk/descriptor_file.1|6|stand-alone descriptor naming an absent test1.vmdk"
)

# Everything in the corpus, to prove afterwards that nothing was written.
corpus_sums() { (cd "$CORPUS" && find . -type f | LC_ALL=C sort | while read -r f; do sums_of "$f"; done); }
BEFORE=$(corpus_sums)

# content_ok NAME RAW CAPACITY SHA: the converted raw holds the expected bytes.
content_ok() {
    local name=$1 raw=$2 cap=$3 want=$4
    assert_eq "$name: raw size" "$cap" "$(file_size "$raw")" || return
    if [ "$want" = "$ZEROS" ]; then
        assert_true "$name: content is all zeros" cmp -s -n "$cap" "$raw" /dev/zero
    else
        assert_eq "$name: content sha256" "$want" "$(sha256 "$raw")"
    fi
}

# good_disk NAME PATH CAPACITY SHA
good_disk() {
    local name=$1 path=$2 cap=$3 want=$4
    say "--- $name"
    if check "$name: info --json" "$VMDKIT" info --json "$path"; then
        assert_eq "$name: virtual-size" "$cap" "$(jq '."virtual-size"' "$OUT" 2>/dev/null)"
    fi
    check "$name: info" "$VMDKIT" info "$path"
    check "$name: map" "$VMDKIT" map "$path"
    if check "$name: convert -O raw" "$VMDKIT" convert -O raw "$path" out.raw; then
        content_ok "$name" out.raw "$cap" "$want"
    fi
    rm -f out.raw
}

for row in "${GOOD[@]}"; do
    IFS='|' read -r file cap want <<<"$row"
    good_disk "$file" "$CORPUS/$file" "$cap" "$want"
done

# A VMFS extent line with an offset field, as an older vmware-vdiskmanager
# wrote it: the descriptor needs its flat file beside it.
say "--- vmdk-rs/old_vmfs_thick_descriptor_v1.vmdk.txt (with its flat file)"
mkdir oldvmfs
cp "$CORPUS/vmdk-rs/old_vmfs_thick_descriptor_v1.vmdk.txt" oldvmfs/old.vmdk
cp "$CORPUS/vmdk-rs/monolithicFlat-flat.vmdk" oldvmfs/vmfs_thick-flat.vmdk
good_disk "old VMFS line with offset" oldvmfs/old.vmdk 10485760 \
    a3bcf05f07a1c06a3380eeca8571f0efb2b85afafa1e21662b8cad436d1f7727
rm -rf oldvmfs

# QEMU's test 059 content check on the VMware-written 16 GiB stream: the
# 512 bytes at i*655360 + i*512 are all 0x30 + i%10.
say "--- iotest-version3.vmdk: sector patterns"
reads=()
for ((i = 0; i < 100; i++)); do
    reads+=(-c "read -P $((0x30 + i % 10)) $((i * 655360 + i * 512)) 512")
done
expect_exit 0 "iotest-version3: 100 sectors read with their patterns" \
    "$VMDKIT" io -r "$CORPUS/qemu-iotests/iotest-version3.vmdk" "${reads[@]}"

# ESXi seSparse extent: either read correctly or refused as unsupported.
say "--- dissect/sesparse-wrapper.vmdk"
mkdir sesparse
cp "$CORPUS/dissect/sesparse-wrapper.vmdk" sesparse/
gzip -dc "$CORPUS/dissect/sesparse.vmdk.gz" >sesparse/sesparse.vmdk
run "$VMDKIT" convert -O raw sesparse/sesparse-wrapper.vmdk out.raw
case $RC in
0)
    pass "seSparse: converted"
    content_ok "seSparse" out.raw 536870912 3afa48010241335528fe402f083fc9f3a1013a49485221443a78d9a8604e2f90
    ;;
5)
    pass "seSparse: refused as unsupported (exit 5): $(head -n 1 "$ERR")"
    assert_err_line "seSparse"
    assert_true "seSparse: no destination left behind" test ! -e out.raw
    ;;
*)
    fail "seSparse: exit $RC, expected 0 (read) or 5 (unsupported)"
    show_output
    ;;
esac
rm -rf sesparse out.raw

for row in "${BAD[@]}"; do
    IFS='|' read -r file code why <<<"$row"
    say "--- $file ($why)"
    for cmd in info convert; do
        if [ "$cmd" = info ]; then
            set -- info "$CORPUS/$file"
        else
            set -- convert -O raw "$CORPUS/$file" out.raw
        fi
        expect_exit "$code" "$file: $cmd" timeout 10 "$VMDKIT" "$@" && assert_err_line "$file: $cmd"
        assert_true "$file: $cmd leaves no destination" test ! -e out.raw
        rm -f out.raw
    done
done

assert_eq "corpus files unchanged and nothing added" "$BEFORE" "$(corpus_sums)"

finish
