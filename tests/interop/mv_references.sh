#!/usr/bin/env bash
# mv rewrites every reference the library model knows, and refuses what is
# in use:
#  1. F7: absolute nvram and ISO paths into a moved machine folder follow
#     it; so do the .vmsd's snapshot disks and .vmsn;
#  2. F8: a base kept in lib/Templates/ with its clones in lib/ moves to
#     lib/Archive/ and every clone follows, without --root; the folders
#     searched are printed;
#  3. a disk that a VMware snapshot froze is renamed and the .vmsd names the
#     new name;
#  4. F21: a machine moved "into" another machine, or a folder given a
#     disk's name, is refused;
#  5. C5/F21: a folder whose disk QEMU or a vmdkit writer holds is not moved
#     (exit 8), on the same file system too.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

make_vm() { # make_vm DIR NAME: a machine with one disk and data in it
    mkdir -p "$1"
    printf '.encoding = "UTF-8"\ndisplayName = "%s"\nscsi0.present = "TRUE"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "%s.vmdk"\n' \
        "$2" "$2" >"$1/$2.vmx"
    "$VMDKIT" create -t twoGbMaxExtentSparse "$1/$2.vmdk" 16M >/dev/null &&
        "$VMDKIT" io "$1/$2.vmdk" -c 'write -P 0x11 0 1M' >/dev/null
}

say "--- 1. absolute paths into the moved folder, and its .vmsd"
make_vm B.vmwarevm B
echo nv >B.vmwarevm/B.nvram
echo iso >B.vmwarevm/tools.iso
"$VMDKIT" vmx set B.vmwarevm/B.vmx nvram "$PWD/B.vmwarevm/B.nvram"
"$VMDKIT" vmx set B.vmwarevm/B.vmx sata0:1.deviceType cdrom-image
"$VMDKIT" vmx set B.vmwarevm/B.vmx sata0:1.fileName "$PWD/B.vmwarevm/tools.iso"
check "snapshot" "$VMDKIT" snapshot B.vmwarevm
touch B.vmwarevm/B-Snapshot1.vmsn
cat >B.vmwarevm/B.vmsd <<EOF
.encoding = "UTF-8"
snapshot.lastUID = "1"
snapshot.current = "1"
snapshot0.uid = "1"
snapshot0.filename = "$PWD/B.vmwarevm/B-Snapshot1.vmsn"
snapshot0.displayName = "clean"
snapshot0.numDisks = "1"
snapshot0.disk0.fileName = "$PWD/B.vmwarevm/B.vmdk"
snapshot0.disk0.node = "scsi0:0"
snapshot.numSnapshots = "1"
EOF
mkdir T
check "mv B.vmwarevm T/" "$VMDKIT" mv B.vmwarevm T/
assert_true "the folders searched are printed" grep -q '^searched for references under ' "$OUT"
check "vmx get nvram" "$VMDKIT" vmx get T/B.vmwarevm/B.vmx nvram &&
    assert_eq "nvram follows" "$PWD/T/B.vmwarevm/B.nvram" "$(cat "$OUT")"
check "vmx get the ISO" "$VMDKIT" vmx get T/B.vmwarevm/B.vmx sata0:1.fileName &&
    assert_eq "the ISO follows" "$PWD/T/B.vmwarevm/tools.iso" "$(cat "$OUT")"
check "vmx get the snapshot's disk" "$VMDKIT" vmx get T/B.vmwarevm/B.vmsd snapshot0.disk0.fileName &&
    assert_eq "the .vmsd's disk follows" "$PWD/T/B.vmwarevm/B.vmdk" "$(cat "$OUT")"
check "vmx get the snapshot's state" "$VMDKIT" vmx get T/B.vmwarevm/B.vmsd snapshot0.filename &&
    assert_eq "the .vmsn follows" "$PWD/T/B.vmwarevm/B-Snapshot1.vmsn" "$(cat "$OUT")"
check "tree" "$VMDKIT" tree --json T &&
    assert_eq "no problem" "[]" "$(json_get "$OUT" '.problems | map(.message)' | tr -d ' \n')"

say "--- 2. a base in lib/Templates/, its clones in lib/"
make_vm lib/Templates/Base.vmwarevm Base
check "linked clone 1" "$VMDKIT" clone --linked lib/Templates/Base.vmwarevm lib/C1.vmwarevm
check "linked clone 2" "$VMDKIT" clone --linked lib/Templates/Base.vmwarevm lib/C2.vmwarevm
mkdir lib/Archive
check "mv lib/Templates/Base.vmwarevm lib/Archive/" "$VMDKIT" mv lib/Templates/Base.vmwarevm lib/Archive/
assert_true "the search covered lib" grep -q "^searched for references under $(realpath lib)" "$OUT"
assert_true "clone 1's hint rewritten" grep -q '^updated .*lib/C1.vmwarevm/C1.vmdk: parentFileNameHint = "../Archive/Base.vmwarevm/' "$OUT"
for c in C1 C2; do
    check "$c still opens and reads the base" "$VMDKIT" io -r lib/$c.vmwarevm/$c.vmdk -c 'read -P 0x11 0 1M'
    check "$c's cloneOf0" "$VMDKIT" vmx get lib/$c.vmwarevm/$c.vmsd cloneOf0 &&
        assert_eq "$c's cloneOf0 follows" "$(realpath lib/Archive/Base.vmwarevm)/Base.vmx" "$(cat "$OUT")"
done
(cd lib/Archive/Base.vmwarevm && "$VMDKIT" mv . ../../Templates/Base.vmwarevm >/dev/null 2>&1)
check "and back from inside the folder itself (cd; mv . ...)" test -d lib/Templates/Base.vmwarevm
check "C1 opens after the move back" "$VMDKIT" io -r lib/C1.vmwarevm/C1.vmdk -c 'read -P 0x11 0 1M'

say "--- 3. a disk a VMware snapshot froze"
make_vm S.vmwarevm S
check "snapshot" "$VMDKIT" snapshot S.vmwarevm
printf '.encoding = "UTF-8"\nsnapshot.lastUID = "1"\nsnapshot0.uid = "1"\nsnapshot0.displayName = "one"\nsnapshot0.numDisks = "1"\nsnapshot0.disk0.fileName = "S.vmdk"\nsnapshot0.disk0.node = "scsi0:0"\nsnapshot.numSnapshots = "1"\n' >S.vmwarevm/S.vmsd
check "mv S.vmdk Frozen.vmdk" "$VMDKIT" mv S.vmwarevm/S.vmdk S.vmwarevm/Frozen.vmdk
check "vmx get" "$VMDKIT" vmx get S.vmwarevm/S.vmsd snapshot0.disk0.fileName &&
    assert_eq "the .vmsd names the new name" "Frozen.vmdk" "$(cat "$OUT")"
check "the machine's delta follows" "$VMDKIT" io -r "S.vmwarevm/$("$VMDKIT" vmx get S.vmwarevm/S.vmx scsi0:0.fileName)" \
    -c 'read -P 0x11 0 1M'

say "--- 4. destinations that are no place for a machine"
make_vm X1.vmwarevm X1
make_vm X2.vmwarevm X2
expect_exit 9 "mv X1.vmwarevm X2.vmwarevm (into another machine)" "$VMDKIT" mv X1.vmwarevm X2.vmwarevm
assert_true "the message says why" grep -q 'would put one machine inside another' "$ERR"
expect_exit 9 "mv X1.vmwarevm Y.vmdk (a folder with a disk's name)" "$VMDKIT" mv X1.vmwarevm Y.vmdk
assert_true "nothing moved" test -d X1.vmwarevm -a ! -e X2.vmwarevm/X1.vmwarevm -a ! -e Y.vmdk

say "--- 5. folders whose disks are in use"
if [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ] && command -v nbdkit >/dev/null; then
    # a sanitizer build's plugin needs its runtime loaded first (as nbd_setup does)
    preload=$(ldd "$VMDKIT_NBDKIT_PLUGIN" | awk '/libasan\.so/ {print $3; exit}')
    LD_PRELOAD=$preload nbdkit -U "$TMP/nbd.sock" -P "$TMP/nbd.pid" --exit-with-parent "$VMDKIT_NBDKIT_PLUGIN" \
        file="$PWD/X1.vmwarevm/X1.vmdk" &
    for _ in $(seq 50); do [ -S "$TMP/nbd.sock" ] && break; sleep 0.1; done
    expect_exit 8 "mv of a folder a vmdkit writer holds (same file system)" "$VMDKIT" mv X1.vmwarevm Z.vmwarevm
    assert_true "not moved" test -d X1.vmwarevm -a ! -e Z.vmwarevm
    kill "$(cat "$TMP/nbd.pid")" 2>/dev/null
    wait 2>/dev/null
else
    say "       (the nbdkit plugin is not built: the vmdkit-writer case is skipped)"
fi
if command -v qemu-io >/dev/null; then
    qemu-io -f vmdk -c 'write -P 5 0 64k' -c 'sleep 4000' X2.vmwarevm/X2.vmdk >/dev/null 2>&1 &
    qpid=$!
    check "QEMU holds X2.vmwarevm/X2.vmdk for writing" wait_qemu_writer X2.vmwarevm/X2.vmdk
    expect_exit 8 "mv of a folder whose disk QEMU writes" "$VMDKIT" mv X2.vmwarevm W.vmwarevm
    assert_true "QEMU is named" grep -q 'in use by QEMU' "$ERR"
    if [ -d /dev/shm ] && [ "$(stat -c %d /dev/shm)" != "$(stat -c %d .)" ]; then
        expect_exit 8 "mv of it to another file system" "$VMDKIT" mv X2.vmwarevm /dev/shm/"$(basename "$TMP")-W.vmwarevm"
        assert_true "nothing arrived there" test ! -e /dev/shm/"$(basename "$TMP")-W.vmwarevm"
    fi
    kill "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
    assert_true "not moved" test -d X2.vmwarevm -a ! -e W.vmwarevm
else
    say "       (qemu-io not installed: the QEMU case is skipped)"
fi
finish
