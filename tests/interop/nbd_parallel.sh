#!/usr/bin/env bash
# nbd_parallel.sh - the plugin serves requests in parallel and stays right:
# its thread model is parallel; four reads held 0.5 s each by nbdkit's delay
# filter finish together (they took 2 s when every request was serialised);
# `nbdcopy --connections=4` (also through nbdkit's readahead filter, which
# then sends cache requests) and four concurrent nbdsh readers of a chain
# (a sparse base and a delta) and of a streamOptimized disk read exactly
# what `vmdkit convert -O raw` writes; on a writable export, four writers on
# their own regions beside two readers leave the disk equal to a model.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need nbdcopy nbdinfo
mk_tmpdir
nbd_setup
nbd_python

say "--- test disks"
mkmixed base.raw $((48 << 20))
"$VMDKIT" convert -f raw base.raw base.vmdk
"$VMDKIT" create -b base.vmdk child.vmdk 48M
"$VMDKIT" io child.vmdk -c 'write -P 0x44 1000000 3M' -c 'write -z 20M 2M' \
    -c 'write -P 0x45 40M 65537' >/dev/null
check "vmdkit convert -O raw of the chain" "$VMDKIT" convert -O raw child.vmdk chain.raw
mkmixed text.raw $((40 << 20)) 65536 262144 16384
"$VMDKIT" convert -f raw -t streamOptimized text.raw stream.vmdk
check "vmdkit convert -O raw of the stream" "$VMDKIT" convert -O raw stream.vmdk stream.raw

run env ${PRELOAD:+LD_PRELOAD=$PRELOAD} nbdkit "$PLUGIN" --dump-plugin
assert_true "nbdkit --dump-plugin: thread_model=parallel" grep -qx 'thread_model=parallel' "$OUT"

# readers URI OUT...: one nbdsh per OUT at once, each reading the whole
# export in 1 MiB pieces in its own random order into OUT.
readers() {
    local uri=$1 o pids=()
    shift
    for o in "$@"; do
        nbdsh -u "$uri" -c "
import random
size = h.get_size()
order = list(range(0, size, 1 << 20))
random.Random('$o').shuffle(order)
with open('$o', 'wb') as f:
    f.truncate(size)
    for off in order:
        f.seek(off)
        f.write(h.pread(min(1 << 20, size - off), off))
" >"$o.log" 2>&1 &
        pids+=($!)
    done
    local rc=0 p
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return $rc
}

for disk in child stream; do
    raw=$([ $disk = child ] && echo chain.raw || echo stream.raw)
    say "--- $disk.vmdk, read-only"
    if start_nbdkit "$disk-ro.log" file=$disk.vmdk readonly=true; then
        run nbdinfo --json "$URI"
        assert_eq "$disk: can_multi_conn and can_cache" "true true" \
            "$(jq -r '.exports[0] | "\(.can_multi_conn) \(.can_cache)"' "$OUT")"
        rm -f copy.raw
        check "$disk: nbdcopy --connections=4" nbdcopy --connections=4 "$URI" copy.raw
        assert_true "$disk: nbdcopy's copy equals vmdkit convert's" cmp copy.raw "$raw"
        check "$disk: four nbdsh readers at once" readers "$URI" r1.raw r2.raw r3.raw r4.raw
        for r in r1 r2 r3 r4; do
            assert_true "$disk: reader $r read what vmdkit convert wrote" cmp "$r.raw" "$raw"
        done
        assert_true "$disk: the server is still up" nbdkit_alive
        stop_nbdkit
    else
        fail "$disk: nbdkit serves $disk.vmdk read-only (exit $NBDKIT_RC)"
        cat "$disk-ro.log"
    fi

    say "--- $disk.vmdk through the readahead filter"
    NBDKIT_OPTS=(-v --filter=readahead)
    if start_nbdkit "$disk-ra.log" file=$disk.vmdk readonly=true; then
        rm -f copy.raw
        check "$disk: nbdcopy --connections=4 through readahead" \
            nbdcopy --connections=4 --requests=4 "$URI" copy.raw
        assert_true "$disk: the copy through readahead equals vmdkit convert's" cmp copy.raw "$raw"
        stop_nbdkit
        assert_true "$disk: the readahead filter works with the plugin (no warning)" \
            bash -c "! grep -q 'readahead: warning' $disk-ra.log"
        assert_true "$disk: readahead sent cache requests to the plugin" \
            grep -q 'vmdkit: cache count=' "$disk-ra.log"
    else
        fail "$disk: nbdkit serves $disk.vmdk through readahead (exit $NBDKIT_RC)"
        cat "$disk-ra.log"
    fi
    NBDKIT_OPTS=()
done

say "--- requests run at the same time"
# nbdkit's delay filter holds every read 0.5 s in the plugin's thread
# model: four reads in flight take 0.5 s in parallel, 2 s one by one
NBDKIT_OPTS=(--filter=delay)
for mode in readonly=true readonly=false; do
    if start_nbdkit "delay-$mode.log" file=child.vmdk "$mode" rdelay=500ms; then
        run nbdsh -u "$URI" -c '
import time
bufs = [nbd.Buffer(4096) for i in range(4)]
t = time.monotonic()
for i in range(4):
    h.aio_pread(bufs[i], i << 20)
while h.aio_in_flight() > 0:
    h.poll(-1)
print("%.2f" % (time.monotonic() - t))
'
        secs=$(cat "$OUT")
        assert_true "$mode: four delayed reads finish together (${secs:-?} s, serialised: 2 s)" \
            awk -v s="${secs:-9}" 'BEGIN { exit !(s < 1.5) }'
        stop_nbdkit
    else
        fail "nbdkit serves child.vmdk with the delay filter (exit $NBDKIT_RC)"
        cat "delay-$mode.log"
    fi
done
NBDKIT_OPTS=()

say "--- a writable export: four writers and two readers at once"
cp chain.raw model.raw
if start_nbdkit rw.log file=child.vmdk; then
    pids=()
    for k in 0 1 2 3; do
        # writer K: 64 random writes (some with FUA) and zeros inside its 8 MiB region
        nbdsh -u "$URI" -c "
import os, random
rng = random.Random($k)
m = os.open('model.raw', os.O_RDWR)
lo = $k * (8 << 20)
for i in range(64):
    n = rng.randrange(1, 300000)
    off = lo + rng.randrange((8 << 20) - n)
    if i % 7 == 3:
        h.zero(n, off)
        os.pwrite(m, bytes(n), off)
    else:
        d = rng.randbytes(n)
        h.pwrite(d, off, nbd.CMD_FLAG_FUA if i % 5 == 0 else 0)
        os.pwrite(m, d, off)
h.flush()
" >"w$k.log" 2>&1 &
        pids+=($!)
    done
    for k in 0 1; do
        # reader K: the region above 32 MiB, which nobody writes, stays as it was
        nbdsh -u "$URI" -c "
import random
rng = random.Random(10 + $k)
want = open('chain.raw', 'rb').read()
for i in range(200):
    n = rng.randrange(1, 200000)
    off = (32 << 20) + rng.randrange((16 << 20) - n)
    assert h.pread(n, off) == want[off:off + n], 'read %d+%d' % (off, n)
" >"r$k.log" 2>&1 &
        pids+=($!)
    done
    rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    assert_eq "writers and readers all finished without an error" 0 "$rc"
    [ "$rc" -eq 0 ] || cat w?.log r?.log | head -n 20
    assert_true "the server is still up" nbdkit_alive
    stop_nbdkit
    check "vmdkit compare: the disk equals the model of all writes" "$VMDKIT" compare child.vmdk model.raw
    check "qemu-img check is clean" qemu-img check -q child.vmdk
else
    fail "nbdkit serves child.vmdk read-write (exit $NBDKIT_RC)"
    cat rw.log
fi

nbd_check_logs
finish
