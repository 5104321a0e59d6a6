#!/usr/bin/env bash
# vmdkit tree shows the library model:
#  1. the VMware snapshots (.vmsd) next to the disks they froze;
#  2. who holds a disk (QEMU, a vmdkit writer);
#  3. references that lead nowhere (nvram, a .vmsd's disk, cloneOf0);
#  4. leftovers of interrupted commands, with their size;
#  5. H4/M3: an 8000-link chain neither crashes tree nor makes --json
#     quadratic (the output of 4000 links is at most 2.5 times that of
#     2000), and links 255 deep and more are flagged (L2).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need python3 jq
mk_tmpdir

say "--- 1. VMware snapshots next to the disks they froze"
mkdir VM.vmwarevm
check "create" "$VMDKIT" create VM.vmwarevm/VM.vmdk 8M
printf 'displayName = "VM"\nscsi0:0.fileName = "VM.vmdk"\nnvram = "VM.nvram"\n' >VM.vmwarevm/VM.vmx
check "snapshot" "$VMDKIT" snapshot VM.vmwarevm
cat >VM.vmwarevm/VM.vmsd <<'EOF'
.encoding = "UTF-8"
snapshot.lastUID = "2"
snapshot0.uid = "1"
snapshot0.displayName = "Before update"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "VM.vmdk"
snapshot1.uid = "2"
snapshot1.displayName = "Gone"
snapshot1.numDisks = "1"
snapshot1.disk0.fileName = "VM-000009.vmdk"
snapshot.numSnapshots = "2"
EOF
check "tree" "$VMDKIT" tree .
assert_true "the snapshot is shown on the disk it froze" \
    grep -q '^VM.vmwarevm/VM.vmdk .*snapshot VM: "Before update"' "$OUT"
check "tree --json" "$VMDKIT" tree --json .
assert_eq "in JSON too" '["VM: \"Before update\""]' \
    "$(jq -c '.disks[] | select(.path == "VM.vmwarevm/VM.vmdk") | .snapshots' "$OUT")"

say "--- 3. references that lead nowhere"
assert_true "the .vmsd naming a missing disk" \
    jq -e '.problems[] | select(.path == "VM.vmwarevm/VM.vmsd" and (.message | test("snapshot1.disk0.fileName: VMware snapshot \"Gone\" names \"VM-000009.vmdk\": not found")))' "$OUT"
assert_true "the missing nvram" \
    jq -e '.problems[] | select(.path == "VM.vmwarevm/VM.vmx" and .message == "nvram: \"VM.nvram\": not found")' "$OUT"
mkdir Clone.vmwarevm
check "a clone" "$VMDKIT" create -b VM.vmwarevm/VM-000001.vmdk Clone.vmwarevm/Clone.vmdk 8M
printf 'displayName = "Clone"\nscsi0:0.fileName = "Clone.vmdk"\ncloneOf0 = "%s/Gone.vmwarevm/Gone.vmx"\n' "$PWD" >Clone.vmwarevm/Clone.vmx
check "tree --json" "$VMDKIT" tree --json .
assert_true "a cloneOf0 whose source is gone" \
    jq -e '.problems[] | select(.path == "Clone.vmwarevm/Clone.vmx" and (.message | test("^cloneOf0: the machine this clone was made from")))' "$OUT"

say "--- 2. who holds a disk"
if command -v qemu-io >/dev/null; then
    qemu-io -f vmdk -c 'sleep 4000' Clone.vmwarevm/Clone.vmdk >/dev/null 2>&1 &
    qpid=$!
    check "QEMU holds Clone.vmwarevm/Clone.vmdk for writing" wait_qemu_writer Clone.vmwarevm/Clone.vmdk
    check "tree while QEMU writes the clone" "$VMDKIT" tree .
    assert_true "QEMU is shown" grep -q '── Clone.vmwarevm/Clone.vmdk .*(in use by QEMU (writing))' "$OUT"
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
    # our read lock takes QEMU's reader bytes too: it is still told apart
    "$VMDKIT" io -r Clone.vmwarevm/Clone.vmdk -c 'sleep 4000' >/dev/null 2>&1 &
    vpid=$!
    for _ in $(seq 1 50); do grep -q "$(stat -c %i Clone.vmwarevm/Clone.vmdk) 0 " /proc/locks && break; sleep 0.1; done
    check "QEMU reads the clone beside our reader" qemu-io -r -f vmdk -c 'read 0 512' Clone.vmwarevm/Clone.vmdk
    check "tree while vmdkit reads the clone" "$VMDKIT" tree .
    assert_true "our reader is not shown as QEMU" sh -c "! grep -q 'Clone.vmdk .*QEMU' '$OUT'"
    kill "$vpid" 2>/dev/null
    wait "$vpid" 2>/dev/null
else
    say "       (qemu-io not installed: QEMU holder not tested)"
fi

if command -v strace >/dev/null; then
    # the system's lock table is read once per tree, not once per file: a
    # library of thousands of pieces would read it thousands of times
    mkdir split
    check "a split disk of many pieces" "$VMDKIT" create -t twoGbMaxExtentSparse split/big.vmdk 40G
    pieces=$(find split -name 'big-s*.vmdk' | wc -l)
    # (LeakSanitizer cannot run under a tracer: it is off for this one run)
    check "tree under strace" env ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -e trace=openat -o split.trace "$VMDKIT" tree split
    assert_eq "/proc/locks read once for $pieces pieces" 1 "$(grep -c '"/proc/locks"' split.trace)"
    rm -r split split.trace
else
    say "       (strace not installed: lock table reads not counted)"
fi

say "--- 4. leftovers of interrupted commands"
mkdir .New.vmdkit-tmp-a1b2c3
head -c 3145728 /dev/urandom >.New.vmdkit-tmp-a1b2c3/half.vmdk
check "tree --json" "$VMDKIT" tree --json .
assert_true "the leftover is listed with its size" \
    jq -e '.problems[] | select(.path == ".New.vmdkit-tmp-a1b2c3" and (.message | test("interrupted vmdkit command \\(3.0 MiB\\)")))' "$OUT"
if command -v flock >/dev/null; then
    flock -s .New.vmdkit-tmp-a1b2c3 sleep 30 &
    fpid=$!
    sleep 0.3
    check "tree --json while a command holds it" "$VMDKIT" tree --json .
    assert_true "a folder in use is told from a leftover" \
        jq -e '.problems[] | select(.path == ".New.vmdkit-tmp-a1b2c3" and (.message | test("^being built by a running vmdkit command")))' "$OUT"
    kill "$fpid" 2>/dev/null
    wait "$fpid" 2>/dev/null
fi
rm -r .New.vmdkit-tmp-a1b2c3

say "--- 5. deep chains"
mkdir deep
python3 - deep 8000 <<'EOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    p = '' if i == 0 else 'parentFileNameHint="d%d.vmdk"\n' % (i - 1)
    open('%s/d%d.vmdk' % (d, i), 'w').write(
        '# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%s\ncreateType="monolithicFlat"\n%s\nRW 2048 ZERO\n'
        % (i + 1, 'ffffffff' if i == 0 else '%08x' % i, p))
EOF
check "tree of an 8000-link chain" "$VMDKIT" tree deep
assert_eq "8000 disks in one family" "1 family, 8000 disks, 0 in use by a VM" "$(grep famil "$OUT")"
check "tree --json of it" "$VMDKIT" tree --json deep
assert_eq "link 254 is fine, 255 is too deep" "[] [\"too-deep\"]" \
    "$(jq -c '[.disks[] | select(.path == "d254.vmdk") | .flags[]]' "$OUT") $(jq -c '[.disks[] | select(.path == "d255.vmdk") | .flags[]]' "$OUT")"
rm -r deep
size_of_json() { # size_of_json N: bytes of tree --json for an N-link chain
    rm -rf deep && mkdir deep
    python3 - deep "$1" <<'EOF'
import sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    p = '' if i == 0 else 'parentFileNameHint="d%d.vmdk"\n' % (i - 1)
    open('%s/d%d.vmdk' % (d, i), 'w').write(
        '# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%s\ncreateType="monolithicFlat"\n%s\nRW 2048 ZERO\n'
        % (i + 1, 'ffffffff' if i == 0 else '%08x' % i, p))
EOF
    "$VMDKIT" tree --json deep | wc -c
}
s2=$(size_of_json 2000)
s4=$(size_of_json 4000)
say "       tree --json: 2000 links $s2 bytes, 4000 links $s4 bytes"
assert_true "linear in depth ($s4 <= 2.5 x $s2)" test "$((s4 * 2))" -le "$((s2 * 5))"
finish
