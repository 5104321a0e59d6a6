#!/usr/bin/env bash
# path_races.sh - a file swapped between the path policy's check and the
# open cannot lead outside the folder (security review H2).
#
# A background process flips a name the disk uses between a good file
# inside the folder (a hard link, so a regular file) and a symbolic link to
# a file outside, as fast as it can, while vmdkit opens the disk again and
# again:
#  1. convert of a flat disk whose extent flips: never the outside bytes;
#  2. io -c write on it: the outside file is never written;
#  3. nbdkit confine=DIR, a child whose parent hint flips between a decoy
#     inside DIR and a parent outside: the outside parent is never served.
# Some runs must succeed (the good file was in place), so the loops are
# not just refusals of a missing file.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need python3
mk_tmpdir

# fewer runs in a sanitizer build, where each start is ten times slower
if ldd "$VMDKIT" 2>/dev/null | grep -q 'libasan\.so'; then
    RUNS=${PATH_RACE_RUNS:-90}
else
    RUNS=${PATH_RACE_RUNS:-300}
fi

# flip NAME GOOD BAD: replace NAME atomically, alternately by a hard link of
# GOOD and by a symbolic link to BAD (both relative to NAME's folder), until
# the file "stop" exists.
cat >flip.py <<'EOF'
import os, sys
name, good, bad = sys.argv[1:4]
d = os.path.dirname(name) or '.'
tmp = os.path.join(d, '.flip')
while not os.path.exists('stop'):
    for make in (lambda: os.link(os.path.join(d, good), tmp), lambda: os.symlink(bad, tmp)):
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        make()
        os.replace(tmp, name)
    open('flipping', 'w').close()
EOF
FLIP_PID=
start_flip() {
    rm -f stop flipping
    python3 flip.py "$@" &
    FLIP_PID=$!
    while [ ! -e flipping ]; do sleep 0.01; done
}
stop_flip() {
    touch stop
    wait "$FLIP_PID" 2>/dev/null
}

say "--- 1. convert of a flat disk whose extent file flips"
mkdir d
python3 -c "open('secret.bin','wb').write(b'S'*4096); open('d/inside.bin','wb').write(b'I'*4096)"
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 8 FLAT "x.bin" 0\n' >d/disk.vmdk
start_flip d/x.bin inside.bin ../secret.bin
leaks=0 good=0
for _ in $(seq "$RUNS"); do
    rm -f o.raw
    if "$VMDKIT" convert -O raw d/disk.vmdk o.raw 2>/dev/null; then
        case $(head -c 1 o.raw) in
        S) leaks=$((leaks + 1)) ;;
        I) good=$((good + 1)) ;;
        esac
    fi
done
stop_flip
assert_eq "convert: the outside file was never read in $RUNS runs" 0 "$leaks"
assert_true "convert: some runs found the good extent in place ($good)" [ "$good" -gt 0 ]

say "--- 2. io -c write on the same disk"
secret_sum=$(sha256sum <secret.bin)
start_flip d/x.bin inside.bin ../secret.bin
good=0
for _ in $(seq "$RUNS"); do
    "$VMDKIT" io d/disk.vmdk -c 'write -P 0x57 0 16' >/dev/null 2>&1 && good=$((good + 1))
done
stop_flip
assert_eq "io write: the outside file is unchanged after $RUNS runs" "$secret_sum" "$(sha256sum <secret.bin)"
assert_true "io write: some runs wrote the good extent ($good)" [ "$good" -gt 0 ]
assert_eq "io write: the good extent holds what was written" "WWWWWWWWWWWWWWWW" "$(head -c 16 d/inside.bin)"

say "--- 3. nbdkit confine=DIR, a parent hint that flips"
nbd_setup
need nbdcopy
mkdir jail out
# the parent outside (0x5a) and a decoy inside with the same CID (0x44):
# a copy whose data grain is overwritten in the file, so the CID stays
check "create the parent outside" "$VMDKIT" create out/base.vmdk 1M
check "write 0x5a into it" "$VMDKIT" io out/base.vmdk -c 'write -P 0x5a 0 64k'
python3 - <<'EOF2'
b = bytearray(open('out/base.vmdk', 'rb').read())
at = b.index(b'\x5a' * 65536)
b[at:at + 65536] = b'\x44' * 65536
open('jail/decoy.vmdk', 'wb').write(b)
EOF2
check "create a child of the decoy" "$VMDKIT" create -t twoGbMaxExtentSparse -b jail/decoy.vmdk jail/child.vmdk 1M
sed -i 's|^parentFileNameHint=.*|parentFileNameHint="p.vmdk"|' jail/child.vmdk
start_flip jail/p.vmdk decoy.vmdk ../out/base.vmdk
NRUNS=$((RUNS / 3))
leaks=0 good=0
for _ in $(seq "$NRUNS"); do
    b=$(LD_PRELOAD=$PRELOAD nbdkit -U - "$PLUGIN" file=jail/child.vmdk confine=jail readonly=true \
        --run 'nbdcopy "$uri" - | head -c 1 | od -An -tx1' 2>/dev/null | tr -d ' \n')
    case $b in
    5a) leaks=$((leaks + 1)) ;;
    44) good=$((good + 1)) ;;
    esac
done
stop_flip
assert_eq "confine=DIR: the parent outside was never served in $NRUNS starts" 0 "$leaks"
assert_true "confine=DIR: some starts served the decoy inside ($good)" [ "$good" -gt 0 ]

finish
