#!/usr/bin/env bash
# nbd_commands.sh - every NBD command and flag the plugin advertises, sent
# with nbdsh to writable and read-only exports of monolithicSparse (with and
# without zeroed-grain entries), a delta over a sparse base,
# twoGbMaxExtentSparse (across its extent boundary), monolithicFlat and (read
# only) streamOptimized disks: reads, writes (with FUA), flush, trim, zero
# (with and without MAY_TRIM, FAST_ZERO, FUA), block status, cache,
# unaligned offsets and requests past the end.  nbd_requests.py keeps a raw
# model of every change it asks for; afterwards the server is still up, and
# `vmdkit compare` and `qemu-img compare` find the disk equal to the model.
# A FAST_ZERO request that would need data writes gets ENOTSUP (nbdkit 1.32
# aborted on the first FAST_ZERO when the plugin did not offer it).
# Also: a 1 GiB zero on an empty monolithicFlat disk punches a hole - no
# space allocated - and reads as zeros.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need qemu-img qemu-io nbdinfo
mk_tmpdir
nbd_setup
nbd_python
REQUESTS=$(cd "$(dirname "$0")" && pwd)/nbd_requests.py
[ -f "$REQUESTS" ] || { say "FAIL: $TEST_NAME: $REQUESTS is missing"; exit 1; }

# serve KIND PHASE DISK MODEL [PARAM...]: run nbd_requests.py against DISK
# served by the plugin; the server must survive and the disk equal MODEL.
serve() {
    local kind=$1 phase=$2 disk=$3 model=$4 before=
    shift 4
    [ "$phase" = ro ] && before=$(sums_of "${disk%.vmdk}"*.vmdk)
    if ! start_nbdkit "$kind-$phase.log" file="$disk" "$@"; then
        fail "$kind $phase: nbdkit serves $disk (exit $NBDKIT_RC)"
        cat "$kind-$phase.log"
        return
    fi
    KIND=$kind PHASE=$phase MODEL=$model SEED="$kind-$phase" BOUNDARY=${BOUNDARY:-0} \
        nbdsh --base-allocation -u "$URI" -c "exec(open('$REQUESTS').read())" >"$kind-$phase.out" 2>&1
    local rc=$?
    grep -c '^ok ' "$kind-$phase.out" >/dev/null && T_PASS=$((T_PASS + $(grep -c '^ok ' "$kind-$phase.out")))
    if grep -q '^FAIL' "$kind-$phase.out" || [ $rc -ne 0 ]; then
        fail "$kind $phase: nbd_requests.py (exit $rc)"
        grep -v '^ok ' "$kind-$phase.out" | head -n 30 | sed 's/^/       /'
    else
        pass "$kind $phase: $(tail -n 1 "$kind-$phase.out")"
    fi
    assert_true "$kind $phase: the server is still up after every request" nbdkit_alive
    check "$kind $phase: and still answers" nbdinfo --size "$URI"
    stop_nbdkit
    if grep -q 'Assertion\|assertion' "$kind-$phase.log"; then
        fail "$kind $phase: nbdkit asserted"
        grep -i assert "$kind-$phase.log" | head -n 3
    fi
    check "$kind $phase: vmdkit compare: the disk equals the model" "$VMDKIT" compare "$disk" "$model"
    check "$kind $phase: qemu-img compare: the disk equals the model" \
        qemu-img compare -q -f vmdk -F raw "$disk" "$model"
    if [ "$phase" = ro ]; then
        assert_eq "$kind ro: the disk's files are unchanged" "$before" "$(sums_of "${disk%.vmdk}"*.vmdk)"
    else
        check "$kind rw: qemu-img check is clean" qemu-img check -q "$disk"
    fi
}

# new_model FILE SIZE: an all-zero raw model.
new_model() { rm -f "$1" && truncate -s "$2" "$1"; }

say "--- monolithicSparse"
"$VMDKIT" create sparse.vmdk 32M
new_model sparse.raw 32M
serve sparse rw sparse.vmdk sparse.raw
serve sparse ro sparse.vmdk sparse.raw readonly=true

say "--- monolithicSparse with zeroed-grain entries"
"$VMDKIT" create --zeroed-grain zsparse.vmdk 32M
new_model zsparse.raw 32M
serve zsparse rw zsparse.vmdk zsparse.raw
serve zsparse ro zsparse.vmdk zsparse.raw readonly=true

say "--- a delta over a sparse base with data"
"$VMDKIT" create base.vmdk 32M
"$VMDKIT" io base.vmdk -c 'write -P 0x5b 0 20M' -c 'write -P 0x5c 22M 4M' >/dev/null
"$VMDKIT" create -b base.vmdk delta.vmdk 32M
"$VMDKIT" convert -O raw delta.vmdk delta.raw
serve delta rw delta.vmdk delta.raw
serve delta ro delta.vmdk delta.raw readonly=true

say "--- twoGbMaxExtentSparse, across its first extent boundary"
SPLIT_BYTES=$((SPLIT_SECTORS * 512 + 52 * 1048576)) # the second piece holds 52 MiB
"$VMDKIT" create -t twoGbMaxExtentSparse split.vmdk "$SPLIT_BYTES"
check "the split disk has two pieces" [ "$(grep -c '^RW ' split.vmdk)" = 2 ]
new_model split.raw "$SPLIT_BYTES"
BOUNDARY=$((SPLIT_SECTORS * 512)) serve split rw split.vmdk split.raw
BOUNDARY=$((SPLIT_SECTORS * 512)) serve split ro split.vmdk split.raw readonly=true

say "--- monolithicFlat"
"$VMDKIT" create -t monolithicFlat flat.vmdk 32M
new_model flat.raw 32M
serve flat rw flat.vmdk flat.raw
serve flat ro flat.vmdk flat.raw readonly=true

say "--- streamOptimized (read-only)"
"$VMDKIT" convert -t streamOptimized sparse.vmdk stream.vmdk
serve stream ro stream.vmdk sparse.raw readonly=true

say "--- a 1 GiB zero on an empty monolithicFlat disk"
"$VMDKIT" create -t monolithicFlat big.vmdk 2G
if start_nbdkit big.log file=big.vmdk; then
    # a 64 KiB write first, then a 1 GiB zero over it; the zero must be a
    # hole punched, not 1 GiB of written zeros
    nbdsh -u "$URI" -c '
import time
h.pwrite(b"\x42" * 65536, 5 << 20)
t = time.monotonic()
h.zero(1 << 30, 0)
print("%.3f" % (time.monotonic() - t))
d = h.pread(1 << 20, 5 << 20)
print("zeros" if d == bytes(len(d)) else "data")
' >big.out 2>&1
    secs=$(sed -n 1p big.out)
    assert_eq "the zeroed range reads as zeros" "zeros" "$(sed -n 2p big.out)"
    # not timed (timings are noise on a shared machine): no space allocated
    # shows that no zeros were written
    say "       (the 1 GiB zero took ${secs:-?} s)"
    used=$(du -k big-flat.vmdk | cut -f1)
    assert_true "the flat file holds no allocated space after the zero (du: ${used} KiB)" \
        test "$used" -le 64
    stop_nbdkit
    check "qemu-img reads zeros there" qemu-io -r -f vmdk big.vmdk -c 'read -P 0 0 64M' \
        -c 'read -P 0 1023M 1M'
else
    fail "nbdkit serves big.vmdk (exit $NBDKIT_RC)"
    cat big.log
fi

nbd_check_logs
finish
