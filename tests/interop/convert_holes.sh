#!/usr/bin/env bash
# Raw sources whose holes do not follow the 64 KiB grain grid: data that
# starts or ends inside a grain, two data runs in one grain, a hole inside a
# grain.  Every output type must hold exactly the source's bytes (the copy
# engine walks the source by its holes, the stream writer takes whole
# grains), and a raw copy must keep the holes.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img
need_vmdkit
mk_tmpdir

# put FILE OFFSET LEN BYTE: LEN bytes of BYTE (hex) at OFFSET, the rest of
# the file untouched (holes stay holes).
put() {
    head -c "$3" /dev/zero | tr '\000' "\\$(printf '%03o' "$4")" |
        dd of="$1" bs=4k seek="$2" oflag=seek_bytes conv=notrunc status=none
}

# holey.raw: 4 MiB, data at 4 KiB granularity in a few places.
truncate -s 4M holey.raw
put holey.raw $((8 * 1024)) 8192 0x41          # inside grain 0, not at its start
put holey.raw $((20 * 1024)) 4096 0x42         # a second run in grain 0
put holey.raw $((60 * 1024)) 12288 0x43        # across the grain 0/1 boundary
put holey.raw $((1024 * 1024 - 4096)) 4096 0x44 # the last 4 KiB of a grain
put holey.raw $((4 * 1048576 - 4096)) 4096 0x45 # the end of the disk
# a grain of data with a 4 KiB hole in its middle
put holey.raw $((2 * 1048576)) 28672 0x46
put holey.raw $((2 * 1048576 + 32768)) 32768 0x47

for t in streamOptimized monolithicSparse twoGbMaxExtentSparse monolithicFlat; do
    check "raw with sub-grain holes -> $t" "$VMDKIT" convert -f raw -t "$t" holey.raw "o-$t.vmdk"
    check "$t output reads as the source (qemu-img compare)" qemu-img compare -q holey.raw "o-$t.vmdk"
    check "$t output converts back to the source's bytes" "$VMDKIT" convert -O raw "o-$t.vmdk" "back-$t.raw"
    assert_eq "$t round trip keeps every byte" "$(sha256 holey.raw)" "$(sha256 "back-$t.raw")"
done

check "raw with sub-grain holes -> raw" "$VMDKIT" convert -f raw -O raw holey.raw copy.raw
assert_eq "the raw copy holds the same bytes" "$(sha256 holey.raw)" "$(sha256 copy.raw)"
alloc=$(($(stat -c %b copy.raw) * $(stat -c %B copy.raw)))
assert_true "the raw copy keeps the holes ($alloc bytes allocated of 4 MiB)" test "$alloc" -le $((1024 * 1024))
finish
