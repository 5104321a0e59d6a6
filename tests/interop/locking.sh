#!/usr/bin/env bash
# Locking: one writer at a time, readers share, a killed writer leaves no
# stale lock, every extent file of a split disk is locked, VMware's .lck
# folders (and .lck files or links) refuse writes, and qemu's locks are
# respected.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need timeout
need_vmdkit
mk_tmpdir

HOLD_MS=4000
BG=()
cleanup_bg() {
    local p
    for p in "${BG[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap 'cleanup_bg; cd /; rm -rf "$TMP"' EXIT

# hold NAME CMD...: start CMD in the background (it must keep a disk open);
# sets HELD to its pid.
hold() {
    local name=$1
    shift
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    HELD=$!
    BG+=("$HELD")
}

# write_locked FILE: does some process hold a write lock on FILE?  Asks the
# kernel (F_OFD_GETLK) without taking a lock, so the probe never competes
# with the holder.
write_locked() {
    python3 - "$1" <<'PY'
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
req = struct.pack("@hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
res = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, req)
sys.exit(0 if struct.unpack("@hhqqixxxx", res)[0] != fcntl.F_UNLCK else 1)
PY
}

# wait_locked DISK: wait until DISK is locked against writers (its holder
# has opened it); 0 when that happened within 5 seconds.
wait_locked() {
    local i
    for i in $(seq 1 100); do
        write_locked "$1" && return 0
        sleep 0.05
    done
    return 1
}

# refused_8 DESC CMD...: CMD exits 8 with one line naming a file.
refused_8() {
    local desc=$1
    shift
    expect_exit 8 "$desc" "$@" && assert_err_line "$desc"
}

"$VMDKIT" create d.vmdk 8M >/dev/null || exit 1
"$VMDKIT" create -t twoGbMaxExtentSparse s.vmdk $(((SPLIT_SECTORS + 2048) * 512)) >/dev/null || exit 1

say "--- two writers"
hold w1 "$VMDKIT" io d.vmdk -c 'write -P 0x11 0 64k' -c flush -c "sleep $HOLD_MS"
assert_true "the first writer holds its lock" wait_locked d.vmdk
refused_8 "a second writer is refused" "$VMDKIT" io d.vmdk -c 'write -P 0x22 0 512'
assert_true "the message says the disk is in use" grep -q 'd\.vmdk.*in use' "$ERR"
refused_8 "a reader is refused while a writer holds the disk (info)" "$VMDKIT" info d.vmdk
refused_8 "a reader is refused while a writer holds the disk (io -r)" "$VMDKIT" io -r d.vmdk -c 'read 0 512'
wait "$HELD"
assert_eq "the first writer ended normally" 0 "$?"
check "after the writer closed, a new writer gets the disk" "$VMDKIT" io d.vmdk -c 'write -P 0x33 4k 512'
check "and its data and the first writer's are there" \
    "$VMDKIT" io -r d.vmdk -c 'read -P 0x11 0 4k' -c 'read -P 0x33 4k 512' -c 'read -P 0x11 4608 59904'

say "--- readers share"
hold r1 "$VMDKIT" io -r d.vmdk -c 'read 0 512' -c "sleep $HOLD_MS"
r1=$HELD
assert_true "a writer is refused while a reader holds the disk" wait_locked d.vmdk
check "a second reader opens the disk (info)" "$VMDKIT" info d.vmdk
check "a second reader opens the disk (io -r)" "$VMDKIT" io -r d.vmdk -c 'read -P 0x11 0 512'
hold r2 "$VMDKIT" io -r d.vmdk -c "sleep 1000"
r2=$HELD
sleep 0.3
refused_8 "a writer is refused while two readers share the disk" "$VMDKIT" io d.vmdk -c 'write 0 512'
wait "$r2"
assert_eq "the second long reader ended normally" 0 "$?"
wait "$r1"
assert_eq "the first long reader ended normally" 0 "$?"

say "--- a killed writer leaves no stale lock"
hold w2 "$VMDKIT" io d.vmdk -c 'write -P 0x44 1M 128k' -c "sleep 60000"
assert_true "the writer holds its lock" wait_locked d.vmdk
kill -KILL "$HELD"
wait "$HELD" 2>/dev/null
check "the next writer gets the disk at once" timeout 5 "$VMDKIT" io d.vmdk -c 'write -P 0x55 2M 4k' -c flush
if "$VMDKIT" help check >/dev/null 2>&1; then
    run "$VMDKIT" check d.vmdk
    assert_true "check finds no corruption after the kill (exit $RC)" test "$RC" -eq 0 -o "$RC" -eq 3
fi

say "--- every extent file of a split disk is locked"
# a piece alone is never opened for writing (pieces_safety.sh): another
# program's write lock stands for a writer of the second piece
hold w3 python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+b"); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(4)' s-s002.vmdk
assert_true "a writer of the second piece alone holds its lock" wait_locked s-s002.vmdk
refused_8 "a writer of the whole disk is refused" "$VMDKIT" io s.vmdk -c 'write 0 512'
assert_true "the message names the locked piece" grep -q 's-s002\.vmdk' "$ERR"
refused_8 "a reader of the whole disk is refused" "$VMDKIT" info s.vmdk
wait "$HELD"
hold w4 "$VMDKIT" io s.vmdk -c 'write -P 0x66 0 512' -c "sleep $HOLD_MS"
assert_true "a writer of the whole disk holds its lock" wait_locked s.vmdk
refused_8 "then the first piece alone is refused to a reader" "$VMDKIT" io -r s-s001.vmdk -c 'read 0 512'
refused_8 "and the second piece alone too" "$VMDKIT" io -r s-s002.vmdk -c 'read 0 512'
refused_8 "and a writer of a piece alone is refused for the lock first" "$VMDKIT" io s-s001.vmdk -c flush
refused_8 "and a reader of the whole disk is refused" "$VMDKIT" info s.vmdk
wait "$HELD"
if command -v python3 >/dev/null 2>&1; then
    # a POSIX record lock taken by another program conflicts with ours too
    hold py python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+b"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(4)' s-s001.vmdk
    for _ in $(seq 1 100); do grep -q locked "$TMP/py.out" && break; sleep 0.05; done
    refused_8 "a piece locked by another program (lockf) refuses a writer" "$VMDKIT" io s.vmdk -c 'write 0 512'
    kill -KILL "$HELD" 2>/dev/null
    wait "$HELD" 2>/dev/null
fi

say "--- VMware's lock folders"
mkdir d.vmdk.lck
refused_8 "d.vmdk.lck refuses writes" "$VMDKIT" io d.vmdk -c 'write 0 512'
assert_true "the message names VMware" grep -q 'VMware' "$ERR"
check "d.vmdk.lck allows info" "$VMDKIT" info d.vmdk
check "d.vmdk.lck allows reads" "$VMDKIT" io -r d.vmdk -c 'read -P 0x55 2M 4k'
rmdir d.vmdk.lck
check "without d.vmdk.lck the disk takes writes again" "$VMDKIT" io d.vmdk -c 'write 0 512'
: >d.vmdk.lck
refused_8 "a lock file d.vmdk.lck (older VMware) refuses writes too" "$VMDKIT" io d.vmdk -c 'write 0 512'
rm d.vmdk.lck
ln -s nowhere d.vmdk.lck
refused_8 "a dangling link d.vmdk.lck refuses writes too" "$VMDKIT" io d.vmdk -c 'write 0 512'
rm d.vmdk.lck
for lck in s.vmdk.lck s-s001.vmdk.lck s-s002.vmdk.lck; do
    mkdir "$lck"
    refused_8 "$lck refuses writes to the split disk" "$VMDKIT" io s.vmdk -c 'write 0 512'
    check "$lck allows reads of the split disk" "$VMDKIT" io -r s.vmdk -c 'read -P 0x66 0 512'
    rmdir "$lck"
done
check "without lock folders the split disk takes writes" "$VMDKIT" io s.vmdk -c 'write -P 0x77 0 512'

if command -v qemu-io >/dev/null 2>&1; then
    say "--- qemu's locks"
    hold q qemu-io -f vmdk -c "sleep $HOLD_MS" d.vmdk
    assert_true "qemu-io holding the disk read-write refuses our writers" wait_locked d.vmdk
    wait "$HELD"
    hold w5 "$VMDKIT" io d.vmdk -c 'write 0 512' -c "sleep $HOLD_MS"
    assert_true "our writer holds its lock" wait_locked d.vmdk
    run qemu-io -f vmdk -c 'read 0 512' d.vmdk
    assert_true "qemu-io cannot open the disk while we write it (exit $RC)" test "$RC" -ne 0
    wait "$HELD"

    # readers share across the two tools: our read lock takes QEMU's bytes
    # as a QEMU reader does (it reads; it shares no write), so QEMU readers
    # start beside it (a plugin serving a golden image, then qemu-img info)
    # and QEMU writers do not
    hold r3 "$VMDKIT" io -r s.vmdk -c 'read 0 512' -c "sleep $HOLD_MS"
    assert_true "our reader holds its lock" wait_locked s.vmdk
    check "qemu-img info opens the disk beside our reader" qemu-img info s.vmdk
    check "qemu-io -r reads the disk beside our reader" qemu-io -r -f vmdk -c 'read -P 0x77 0 512' s.vmdk
    run qemu-io -f vmdk -c 'read 0 512' s.vmdk
    assert_true "qemu-io read-write cannot open the disk while we read it (exit $RC)" test "$RC" -ne 0
    check "a second reader of ours still opens the disk" "$VMDKIT" io -r s.vmdk -c 'read -P 0x77 0 512'
    refused_8 "our writers are still refused" "$VMDKIT" io s.vmdk -c 'write 0 512'
    assert_true "the refusal does not blame QEMU" sh -c "! grep -q QEMU '$ERR'"
    wait "$HELD"
    hold q2 qemu-io -r -f vmdk -c "sleep $HOLD_MS" s.vmdk
    for _ in $(seq 1 100); do write_locked s.vmdk && break; sleep 0.05; done
    check "our reader opens the disk beside qemu-io -r" "$VMDKIT" io -r s.vmdk -c 'read -P 0x77 0 512'
    refused_8 "our writers are refused beside qemu-io -r" "$VMDKIT" io s.vmdk -c 'write 0 512'
    wait "$HELD"
fi

finish
