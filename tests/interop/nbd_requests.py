# nbd_requests.py - every NBD command and flag the vmdkit plugin
# advertises, sent by nbdsh (exec'd with the handle `h` connected, with the
# base:allocation context) and checked against a raw model file that this
# script keeps up to date with every change it asks for.  Used by
# nbd_commands.sh; prints "ok   - ..." / "FAIL - ..." lines and exits 1
# after a failed check.
#
# Environment: KIND (sparse, zsparse, delta, split, flat, stream), PHASE
# (rw: a writable export; ro: a read-only one), MODEL (the raw model),
# SEED, BOUNDARY (an extent boundary to cross, or 0).
import errno
import os
import random

kind = os.environ["KIND"]
phase = os.environ["PHASE"]
rng = random.Random(os.environ["SEED"])
boundary = int(os.environ.get("BOUNDARY", "0"))
rw = phase == "rw"
GRAIN = 65536
MiB = 1 << 20
size = h.get_size()
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok   - %s: %s" % (kind, what))
    else:
        failed += 1
        print("FAIL - %s: %s" % (kind, what))


model = os.open(os.environ["MODEL"], os.O_RDWR if rw else os.O_RDONLY)
check(os.fstat(model).st_size == size, "the export size is the model's (%d)" % size)


def mread(off, n):
    return os.pread(model, n, off).ljust(n, b"\0")


def mwrite(off, data):
    os.pwrite(model, data, off)


def model_zero(off, n):
    """Is [off, off + n) of the model all zeros?  (Holes of the model file
    are skipped without reading them.)"""
    end = off + n
    while off < end:
        try:
            off = os.lseek(model, off, os.SEEK_DATA)
        except OSError:
            return True  # no data after off
        if off >= end:
            return True
        c = min(end - off, 4 * MiB)
        if os.pread(model, c, off) != bytes(c):
            return False
        off += c
    return True


def mzero(off, n):
    while n > 0:
        k = min(n, 4 * MiB)
        os.pwrite(model, bytes(k), off)
        off += k
        n -= k


def same(off, n, what):
    check(h.pread(n, off) == mread(off, n), what)


def err_name(fn):
    """None when FN succeeds, else the name of the NBD error."""
    try:
        fn()
        return None
    except nbd.Error as e:
        v = e.errno
        return errno.errorcode.get(v, str(v)) if isinstance(v, int) else str(v)


def expect_error(fn, names, what):
    got = err_name(fn)
    check(got in names, "%s: refused with %s (got %s)" % (what, "/".join(names), got))


def trimmed(off, n, unit):
    """The part of [off, off + n) that trim in whole UNITs drops."""
    a = (off + unit - 1) // unit * unit
    b = (off + n) // unit * unit
    return (a, b - a) if a < b else (a, 0)


# ---- what is advertised ----
trims = rw and kind in ("zsparse", "flat")
check(h.is_read_only() == (not rw), "is_read_only is %s" % (not rw))
check(h.can_flush(), "can_flush")
check(h.can_fua() == rw, "can_fua is %s" % rw)
check(h.can_multi_conn(), "can_multi_conn")
check(h.can_cache(), "can_cache")
check(h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION), "base:allocation (block status)")
check(h.can_zero() == rw, "can_zero is %s" % rw)
check(h.can_fast_zero() == rw, "can_fast_zero is %s" % rw)
check(h.can_trim() == trims, "can_trim is %s" % trims)

h.set_strict_mode(0)  # send what we ask for, even past the end: the server must cope

# ---- writes, zeros, trims ----
# random writes in the first 12 MiB; fixed regions at 16 MiB (data) and
# 24 MiB (never written); the extent boundary of a split disk.
A, U = 16 * MiB, 24 * MiB
if rw:
    # FAST_ZERO: only where no data has to be written, else ENOTSUP and
    # nothing changed
    def fast(off, n, flags, ok_expected, what):
        before = h.pread(n, off)
        got = err_name(lambda: h.zero(n, off, nbd.CMD_FLAG_FAST_ZERO | flags))
        if ok_expected is None:  # depends on the file system: consistent either way
            ok_expected = got is None
        if ok_expected:
            check(got is None, "fast zero %s: done" % what)
            mzero(off, n)
        else:
            check(got == "ENOTSUP", "fast zero %s: ENOTSUP (got %s)" % (what, got))
            check(h.pread(n, off) == before, "fast zero %s: refused, nothing changed" % what)
        same(off, n, "fast zero %s: content" % what)

    if boundary:  # first, while the grains around the boundary are unallocated
        fast(boundary - 2 * GRAIN, 4 * GRAIN, 0, True, "across the extent boundary")
    for i in range(40):
        n = rng.randrange(1, 200000)
        off = rng.randrange(12 * MiB - n)
        data = rng.randbytes(n)
        h.pwrite(data, off, nbd.CMD_FLAG_FUA if i % 5 == 0 else 0)
        mwrite(off, data)
    same(0, 12 * MiB, "40 unaligned writes (8 with FUA) read back")
    data = rng.randbytes(4 * GRAIN)
    h.pwrite(data, A)
    mwrite(A, data)
    same(A, 4 * GRAIN, "whole-grain write")
    if boundary:
        data = rng.randbytes(70001)
        h.pwrite(data, boundary - 3000, nbd.CMD_FLAG_FUA)
        mwrite(boundary - 3000, data)
        same(boundary - 65536, 2 * 65536 + 10000, "a write across the extent boundary")

    metadata_only_over_data = kind in ("zsparse", "flat")
    fast(A, 2 * GRAIN, 0, metadata_only_over_data, "of whole grains holding data")
    fast(U, 4 * GRAIN, 0, kind != "delta", "of whole unallocated grains")
    fast(A + 2 * GRAIN + 1024, GRAIN, 0, kind == "flat", "of whole sectors, partial grains")
    fast(A + 3 * GRAIN + 100, 1000, 0, False, "of partial sectors")
    if kind == "flat":
        fast(A + 3 * GRAIN, GRAIN, nbd.CMD_FLAG_NO_HOLE, None, "with NO_HOLE (zero range)")

    # plain zeros: any alignment, with and without MAY_TRIM (NO_HOLE), FUA
    for flags, what in ((0, "zero"), (nbd.CMD_FLAG_NO_HOLE, "zero with NO_HOLE"),
                        (nbd.CMD_FLAG_FUA, "zero with FUA"),
                        (nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA, "zero with NO_HOLE and FUA")):
        n = rng.randrange(1, 300000)
        off = rng.randrange(12 * MiB - n)
        h.zero(n, off, flags)
        mzero(off, n)
        same(max(0, off - 1000), n + 2000, "%s at %d+%d" % (what, off, n))
    h.zero(8 * MiB, 3 * MiB + 7)
    mzero(3 * MiB + 7, 8 * MiB)
    same(0, 12 * MiB, "an 8 MiB zero")
    if boundary:
        h.zero(100000, boundary - 50000)
        mzero(boundary - 50000, 100000)
        same(boundary - 65536, 2 * 65536, "a zero across the extent boundary")

    # trim: a hint that drops whole units where that writes no data
    data = rng.randbytes(8 * GRAIN)
    h.pwrite(data, A + 8 * GRAIN)
    mwrite(A + 8 * GRAIN, data)
    off, n = A + 8 * GRAIN + 777, 5 * GRAIN + 3333
    if trims:
        h.trim(n, off)
        t_off, t_n = trimmed(off, n, GRAIN if kind == "zsparse" else 512)
        mzero(t_off, t_n)
        same(A + 8 * GRAIN, 8 * GRAIN, "trim at %d+%d dropped only its whole units" % (off, n))
        h.trim(1000, A + 8 * GRAIN + 10)
        same(A + 8 * GRAIN, 8 * GRAIN, "a trim of less than a unit changes nothing")
    else:
        expect_error(lambda: h.trim(n, off), ("EINVAL", "ENOTSUP", "EPERM"), "trim where not offered")
        same(A + 8 * GRAIN, 8 * GRAIN, "trim where not offered changed nothing")

    h.flush()
    check(True, "flush")
else:
    before = h.pread(MiB, 0)
    expect_error(lambda: h.pwrite(b"x" * 512, 0), ("EPERM", "EROFS"), "write to a read-only export")
    expect_error(lambda: h.pwrite(b"x" * 512, 0, nbd.CMD_FLAG_FUA), ("EPERM", "EROFS"),
                 "FUA write to a read-only export")
    expect_error(lambda: h.zero(GRAIN, 0), ("EPERM", "EROFS"), "zero on a read-only export")
    expect_error(lambda: h.zero(GRAIN, 0, nbd.CMD_FLAG_FAST_ZERO), ("EPERM", "EROFS", "EINVAL"),
                 "fast zero on a read-only export")
    expect_error(lambda: h.trim(GRAIN, 0), ("EPERM", "EROFS", "EINVAL"), "trim on a read-only export")
    check(h.pread(MiB, 0) == before, "refused writes changed nothing")
    h.flush()
    check(True, "flush of a read-only export")

# ---- cache, block status, reads ----
for off, n in ((0, MiB), (12345, 99999), (A, 8 * GRAIN), (size - 1000, 1000)):
    check(err_name(lambda: h.cache(n, off)) is None, "cache %d+%d" % (off, n))
if boundary:
    check(err_name(lambda: h.cache(4 * MiB, boundary - 2 * MiB)) is None,
          "cache across the extent boundary")

runs = []


def collect(metacontext, offset, entries, err):
    if metacontext == nbd.CONTEXT_BASE_ALLOCATION:
        for i in range(0, len(entries), 2):
            runs.append((entries[i], entries[i + 1]))


pos = 0
while pos < size:
    start = len(runs)
    h.block_status(min(size - pos, 1 << 30), pos, collect)
    step = sum(n for n, _ in runs[start:])
    if step == 0:
        break
    pos += step
check(pos == size, "block status covers the disk in %d runs" % len(runs))
bad = None
off = 0
zero_runs = 0
for n, flags in runs:
    if flags & nbd.STATE_ZERO:
        zero_runs += 1
        if bad is None and not model_zero(off, n):
            bad = off
    off += n
check(bad is None, "every run reported as reading zeros (%d) is zeros in the model (first bad: %s)"
      % (zero_runs, bad))
one = []
h.block_status(min(size, 1 << 30), 0, lambda m, o, e, err: one.append(len(e)) if m == nbd.CONTEXT_BASE_ALLOCATION else 0,
               nbd.CMD_FLAG_REQ_ONE)
check(one == [2], "block status with REQ_ONE answers one run")

for i in range(60):
    n = rng.randrange(1, 300000)
    off = rng.randrange(size - n)
    if i % 3 == 0:
        off = rng.randrange(min(size, 32 * MiB) - n)
    same(off, n, "random read %d+%d" % (off, n))
if boundary:
    same(boundary - 100001, 200003, "a read across the extent boundary")

# ---- past the end: refused, the server stays up ----
for what, fn in (("read", lambda: h.pread(100, size - 50)),
                 ("read at the end", lambda: h.pread(1, size)),
                 ("read at 2^63", lambda: h.pread(512, 1 << 63)),
                 ("cache", lambda: h.cache(100, size - 50)),
                 ("block status", lambda: h.block_status(512, size, lambda *a: 0))):
    expect_error(fn, ("EINVAL", "ERANGE", "EOVERFLOW"), "%s past the end" % what)
if rw:
    for what, fn in (("write", lambda: h.pwrite(b"y" * 100, size - 50)),
                     ("zero", lambda: h.zero(1024, size - 512)),
                     ("fast zero", lambda: h.zero(GRAIN, size, nbd.CMD_FLAG_FAST_ZERO)),
                     ("trim", lambda: h.trim(GRAIN, size - 512))):
        expect_error(fn, ("EINVAL", "ERANGE", "ENOSPC", "EOVERFLOW"), "%s past the end" % what)
same(size - 4096, 4096, "the last 4 KiB read back after the refusals")

# the whole disk, against the model: the data runs byte by byte; of a run
# that block status calls zero (the model's zeros, checked above) its
# first and last 64 KiB
bad, off = None, 0
for n, flags in runs:
    parts = [(off, n)]
    if flags & nbd.STATE_ZERO and n > 128 * 1024:
        parts = [(off, 65536), (off + n - 65536, 65536)]
    for o, k in parts:
        while k > 0 and bad is None:
            c = min(k, 8 * MiB)
            if h.pread(c, o) != mread(o, c):
                bad = o
            o += c
            k -= c
    off += n
check(bad is None, "the whole disk equals the model (first bad chunk: %s)" % bad)
os.close(model)
print("%s %s: %d checks passed, %d failed" % (kind, phase, passed, failed))
if failed:
    raise SystemExit(1)
