#!/usr/bin/env bash
# maint_vm.sh - resize, compact and defrag of a whole machine, and compact
# of a whole chain:
#  1. a VM folder with two disks (monolithicSparse, twoGbMaxExtentSparse)
#     whose guest zeroed part of its data: compact via the folder, then via
#     the .vmx, shrinks both disks each time, their content stays what
#     qemu-img read before (qemu-img compare with raw copies), qemu-img
#     check is clean; --json gives {vm, disks: [one object per disk]};
#  2. a machine with a .lck (running) is refused with exit 8 by all three
#     commands, nothing changed; the first disk that fails ends the run
#     with its exit status;
#  3. resize of the machine by +DELTA grows each disk by DELTA, after
#     checking them all (a refused second disk, streamOptimized or held,
#     leaves the first as it was); defrag of the machine keeps both disks'
#     content;
#  4. compact --chain of a 3-link chain whose links all hold zero grains
#     (over zeros and, in the deltas, over parent data): all three files
#     shrink, every link reads what it read before, check is clean; a
#     held middle link refuses the whole run, no link changed;
#  5. kill trials: compact --chain SIGKILLed at random moments leaves every
#     link reading as before, check finding no corruption (leaked space,
#     exit 3, is what an interrupted compact in place leaves); the next run
#     finishes, and check is clean then.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need qemu-img jq
need_vmdkit
mk_tmpdir

MiB=1048576
V=Dev.vmwarevm

# zero_half: data in both disks of the machine, half of it zeroed again,
# then raw copies of what they read
zero_half() { # FILL
    check "data into Dev.vmdk" "$VMDKIT" io $V/Dev.vmdk -c "write -P $1 0 16m" -c "write -P 0 0 8m"
    check "data into Data.vmdk (both pieces)" "$VMDKIT" io $V/Data.vmdk -c "write -P $1 2040m 16m" \
        -c "write -P 0 2040m 8m" -c "write -P 0 2050m 4m"
    check "raw copy of Dev" qemu-img convert -f vmdk -O raw $V/Dev.vmdk dev.raw
    check "raw copy of Data" qemu-img convert -f vmdk -O raw $V/Data.vmdk data.raw
}
files_of_vm() { echo $V/Dev.vmdk $V/Data.vmdk $V/Data-s001.vmdk $V/Data-s002.vmdk; }
sizes_of_vm() { for f in $(files_of_vm); do file_size "$f"; done | xargs; }
same_as_copies() { # DESC
    check "$1: Dev reads as before" qemu-img compare -f vmdk -F raw $V/Dev.vmdk dev.raw
    check "$1: Data reads as before" qemu-img compare -f vmdk -F raw $V/Data.vmdk data.raw
    check "$1: qemu-img check Dev" qemu-img check -f vmdk $V/Dev.vmdk
    check "$1: qemu-img check Data" qemu-img check -f vmdk $V/Data.vmdk
}

say "--- 1. compact of a machine, via its folder and via its .vmx"
mkdir $V
cat >$V/Dev.vmx <<'EOF'
.encoding = "UTF-8"
displayName = "Dev box"
scsi0:0.fileName = "Dev.vmdk"
scsi0:0.present = "TRUE"
sata0:0.fileName = "Data.vmdk"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "install.iso"
EOF
check "create Dev.vmdk" "$VMDKIT" create $V/Dev.vmdk 64M
check "create Data.vmdk (two pieces)" "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 2g $V/Data.vmdk 3G
assert_true "Data.vmdk has its second piece" [ -f $V/Data-s002.vmdk ]
zero_half 0x41
dev0=$(file_size $V/Dev.vmdk) data0=$(file_size $V/Data-s001.vmdk) data1=$(file_size $V/Data-s002.vmdk)
check "compact the folder" "$VMDKIT" compact $V
assert_eq "one line per disk" 2 "$(grep -c 'bytes on the host' "$OUT")"
assert_true "Dev shrank by 8 MiB or more ($dev0 -> $(file_size $V/Dev.vmdk))" \
    [ $((dev0 - $(file_size $V/Dev.vmdk))) -ge $((8 * MiB)) ]
# the zeros: 7 MiB at the end of piece 1, 1 + 4 MiB in piece 2
assert_true "Data piece 1 shrank by 7 MiB or more" [ $((data0 - $(file_size $V/Data-s001.vmdk))) -ge $((7 * MiB)) ]
assert_true "Data piece 2 shrank by 5 MiB or more" [ $((data1 - $(file_size $V/Data-s002.vmdk))) -ge $((5 * MiB)) ]
same_as_copies "after compact of the folder"

zero_half 0x42
dev0=$(file_size $V/Dev.vmdk) data0=$(file_size $V/Data-s001.vmdk)
check "compact --json the .vmx" "$VMDKIT" compact --json $V/Dev.vmx
assert_eq "--json: the machine's .vmx" "$TMP/$V/Dev.vmx" "$(jq -r .vm "$OUT")"
assert_eq "--json: one object per disk, in .vmx order" "$TMP/$V/Dev.vmdk $TMP/$V/Data.vmdk" \
    "$(jq -r '[.disks[].path] | join(" ")' "$OUT")"
assert_eq "--json: Dev dropped 8 MiB of zero grains" 128 "$(jq '.disks[0]."grains-dropped"' "$OUT")"
assert_eq "--json: Data dropped 12 MiB of zero grains" 192 "$(jq '.disks[1]."grains-dropped"' "$OUT")"
assert_true "Dev shrank again" [ $((dev0 - $(file_size $V/Dev.vmdk))) -ge $((8 * MiB)) ]
assert_true "Data piece 1 shrank again" [ $((data0 - $(file_size $V/Data-s001.vmdk))) -ge $((7 * MiB)) ]
same_as_copies "after compact of the .vmx"

say "--- 2. refusals"
check "more zeros to give back" "$VMDKIT" io $V/Dev.vmdk -c "write -P 0 8m 4m"
check "raw copy of Dev" qemu-img convert -f vmdk -O raw $V/Dev.vmdk dev.raw
sums_of $(files_of_vm) $V/Dev.vmx >sums.before
mkdir $V/Dev.vmx.lck
expect_exit 8 "compact of a running machine (.lck)" "$VMDKIT" compact $V &&
    assert_true "the message names the lock" grep -q 'Dev.vmx.lck' "$ERR"
expect_exit 8 "defrag of a running machine" "$VMDKIT" defrag $V/Dev.vmx
expect_exit 8 "resize of a running machine" "$VMDKIT" resize $V +1m
expect_exit 8 "compact --json of a running machine" "$VMDKIT" compact --json $V
assert_eq "nothing on stdout" "" "$(cat "$OUT")"
sums_of $(files_of_vm) $V/Dev.vmx >sums.after
assert_eq "no file of the machine changed" "$(cat sums.before)" "$(cat sums.after)"
rmdir $V/Dev.vmx.lck
mkdir $V/Data.vmdk.lck
expect_exit 8 "a disk of the machine held (Data.vmdk.lck)" "$VMDKIT" compact $V
rmdir $V/Data.vmdk.lck
sums_of $(files_of_vm) $V/Dev.vmx >sums.after
assert_eq "no file of the machine changed" "$(cat sums.before)" "$(cat sums.after)"
mkdir Mix
printf '.encoding = "UTF-8"\nscsi0:0.fileName = "a.vmdk"\nscsi0:1.fileName = "f.vmdk"\n' >Mix/Mix.vmx
check "Mix: a sparse disk" "$VMDKIT" create Mix/a.vmdk 16M
check "Mix: zeros in it" "$VMDKIT" io Mix/a.vmdk -c "write -P 0x51 0 4m" -c "write -P 0 0 2m"
check "Mix: then a flat disk" "$VMDKIT" create -t monolithicFlat Mix/f.vmdk 16M
a0=$(file_size Mix/a.vmdk)
expect_exit 5 "Mix: the flat disk ends the run with its exit status" "$VMDKIT" compact Mix
assert_true "the message names f.vmdk" grep -q 'f.vmdk' "$ERR"
assert_eq "the disk before it was done" 1 "$(grep -c 'a.vmdk: .* bytes on the host' "$OUT")"
assert_true "and shrank" [ "$(file_size Mix/a.vmdk)" -lt "$a0" ]
same_as_copies "after the refusals"
mkdir Empty
printf '.encoding = "UTF-8"\ndisplayName = "Empty"\n' >Empty/Empty.vmx
expect_exit 6 "a machine without hard disks" "$VMDKIT" compact Empty

say "--- 3. resize and defrag of a machine"
# every disk is checked before the first grows: a refused second disk
# leaves the first one as it was
mkdir Mixr
printf '.encoding = "UTF-8"\nscsi0:0.fileName = "a.vmdk"\nscsi0:1.fileName = "s.vmdk"\n' >Mixr/Mixr.vmx
check "Mixr: a sparse disk" "$VMDKIT" create Mixr/a.vmdk 16M
check "Mixr: then a streamOptimized one" "$VMDKIT" create -t streamOptimized Mixr/s.vmdk 16M
sums_of Mixr/a.vmdk Mixr/s.vmdk >sums.before
expect_exit 5 "Mixr: resize refused for the streamOptimized disk" "$VMDKIT" resize Mixr +1m &&
    assert_true "the message names s.vmdk" grep -q 's.vmdk' "$ERR"
assert_eq "Mixr: no disk reported grown" "" "$(cat "$OUT")"
assert_eq "Mixr: the first disk did not grow" $((16 * MiB)) "$(qemu_size Mixr/a.vmdk)"
sums_of Mixr/a.vmdk Mixr/s.vmdk >sums.after
assert_eq "Mixr: no disk changed" "$(cat sums.before)" "$(cat sums.after)"
rm Mixr/s.vmdk && check "Mixr: a sparse second disk" "$VMDKIT" create Mixr/s.vmdk 16M
mkdir Mixr/s.vmdk.lck
expect_exit 8 "Mixr: resize refused for a held second disk" "$VMDKIT" resize Mixr 20m
assert_eq "Mixr: the first disk did not grow" $((16 * MiB)) "$(qemu_size Mixr/a.vmdk)"
rmdir Mixr/s.vmdk.lck
check "resize the machine by +1000k" "$VMDKIT" resize $V +1000k
assert_eq "one line per disk" 2 "$(grep -c 'bytes$' "$OUT")"
assert_eq "Dev grew by 1000 KiB" $((64 * MiB + 1024000)) "$(qemu_size $V/Dev.vmdk)"
assert_eq "Data grew by 1000 KiB" $((3072 * MiB + 1024000)) "$(qemu_size $V/Data.vmdk)"
check "Dev: the old range reads as before" qemu-img compare -f vmdk -F raw $V/Dev.vmdk dev.raw
check "Data: the old range reads as before" qemu-img compare -f vmdk -F raw $V/Data.vmdk data.raw
check "qemu-img check Dev" qemu-img check -f vmdk $V/Dev.vmdk
check "defrag the machine" "$VMDKIT" defrag $V
assert_eq "defrag: one line per disk" 2 "$(grep -c 'bytes on the host' "$OUT")"
check "Dev reads as before after defrag" qemu-img compare -f vmdk -F raw $V/Dev.vmdk dev.raw
check "Data reads as before after defrag" qemu-img compare -f vmdk -F raw $V/Data.vmdk data.raw
check "vmdkit check Data" "$VMDKIT" check $V/Data.vmdk

say "--- 4. compact --chain"
mkdir c
check "create the base" "$VMDKIT" create c/b.vmdk 64M
check "base: data, then zeros over part of it" "$VMDKIT" io c/b.vmdk -c "write -P 0x11 0 32m" -c "write -P 0 0 8m"
check "snapshot 1" "$VMDKIT" snapshot c/b.vmdk
check "link 2: zeros over base data and over zeros" "$VMDKIT" io c/b-000001.vmdk \
    -c "write -P 0 16m 4m" -c "write -P 0 40m 8m" -c "write -P 0x22 48m 4m"
check "snapshot 2" "$VMDKIT" snapshot c/b-000001.vmdk
check "link 3: zeros over link 2's data and over zeros" "$VMDKIT" io c/b-000002.vmdk \
    -c "write -P 0 48m 2m" -c "write -P 0 56m 4m" -c "write -P 0x33 60m 1m"
links="b b-000001 b-000002"
for l in $links; do
    check "copy of what $l reads" qemu-img convert -f vmdk -O raw c/$l.vmdk $l.raw
    eval "size_$(echo $l | tr - _)=$(file_size c/$l.vmdk)"
done
mkdir c/b-000001.vmdk.lck
sums_of c/b.vmdk c/b-000001.vmdk c/b-000002.vmdk >sums.before
expect_exit 8 "compact --chain with a held middle link" "$VMDKIT" compact --chain c/b-000002.vmdk
sums_of c/b.vmdk c/b-000001.vmdk c/b-000002.vmdk >sums.after
assert_eq "no link changed, not even the base" "$(cat sums.before)" "$(cat sums.after)"
rmdir c/b-000001.vmdk.lck
check "compact --chain --json the top" "$VMDKIT" compact --chain --json c/b-000002.vmdk
assert_eq "grains dropped: 8 MiB of the base, 8 MiB of link 2, 4 MiB of link 3" 320 \
    "$(jq '."grains-dropped"' "$OUT")"
assert_true "the base shrank by 8 MiB or more ($size_b -> $(file_size c/b.vmdk))" \
    [ $((size_b - $(file_size c/b.vmdk))) -ge $((8 * MiB)) ]
assert_true "link 2 shrank by 8 MiB or more ($size_b_000001 -> $(file_size c/b-000001.vmdk))" \
    [ $((size_b_000001 - $(file_size c/b-000001.vmdk))) -ge $((8 * MiB)) ]
assert_true "link 3 shrank by 4 MiB or more ($size_b_000002 -> $(file_size c/b-000002.vmdk))" \
    [ $((size_b_000002 - $(file_size c/b-000002.vmdk))) -ge $((4 * MiB)) ]
for l in $links; do
    check "$l reads as before" qemu-img compare -f vmdk -F raw c/$l.vmdk $l.raw
    check "qemu-img check $l" qemu-img check -f vmdk c/$l.vmdk
done
check "vmdkit check of the top" "$VMDKIT" check c/b-000002.vmdk
check "map of link 2" "$VMDKIT" map c/b-000001.vmdk
assert_true "link 2 keeps its zeros over base data" grep -qE '^0x1000000 +0x400000 +data +0 ' "$OUT"
check "compact --chain text output" "$VMDKIT" compact --chain c/b-000002.vmdk
assert_true "it names the chain" grep -q 'b-000002.vmdk and its parents: ' "$OUT"
say "--- 5. kill trials of compact --chain"
mkdir k
for trial in 1 2 3; do
    rm -f k/*
    "$VMDKIT" create k/k.vmdk 256M >/dev/null &&
        "$VMDKIT" io k/k.vmdk -c "write -P 0x1$trial 0 64m" -c "write -P 0 0 24m" >/dev/null &&
        "$VMDKIT" snapshot k/k.vmdk >/dev/null &&
        "$VMDKIT" io k/k-000001.vmdk -c "write -P 0x2$trial 64m 64m" -c "write -P 0 64m 24m" \
            -c "write -P 0 32m 8m" >/dev/null
    qemu-img convert -f vmdk -O raw k/k.vmdk k0.raw
    qemu-img convert -f vmdk -O raw k/k-000001.vmdk k1.raw
    "$VMDKIT" compact --chain k/k-000001.vmdk >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    say "       trial $trial: $(ls -A k | grep -c vmdkit-tmp) leftover folder(s), sizes $(file_size k/k.vmdk) $(file_size k/k-000001.vmdk)"
    "$VMDKIT" check k/k-000001.vmdk >/dev/null 2>&1
    rc=$?
    assert_true "trial $trial: vmdkit check of the top finds no corruption (exit $rc: 0, or 3 for leaked space)" \
        [ $rc -eq 0 -o $rc -eq 3 ]
    check "trial $trial: the base reads as before" qemu-img compare -f vmdk -F raw k/k.vmdk k0.raw
    check "trial $trial: the top reads as before" qemu-img compare -f vmdk -F raw k/k-000001.vmdk k1.raw
    check "trial $trial: the next run finishes" "$VMDKIT" compact --chain k/k-000001.vmdk
    check "trial $trial: the base reads as before after it" qemu-img compare -f vmdk -F raw k/k.vmdk k0.raw
    check "trial $trial: the top reads as before after it" qemu-img compare -f vmdk -F raw k/k-000001.vmdk k1.raw
    check "trial $trial: vmdkit check of the top clean after it" "$VMDKIT" check k/k-000001.vmdk
    assert_eq "trial $trial: only the disks are left" "k-000001.vmdk k.vmdk" "$(cd k && LC_ALL=C ls -A | xargs)"
done
finish
