#!/usr/bin/env bash
# nbd.sh - the nbdkit plugin against NBD clients: nbdinfo's map equals
# `vmdkit map`, nbdcopy's copy equals `vmdkit convert -O raw`, writes by
# qemu-io over NBD land in the disk (qemu-img check is clean and qemu-io
# reads them back from the file), confine=DIR refuses what lies outside DIR,
# and nbdfuse exposes the disk as a file.
#
# Sanitizer builds: nbdkit's logs are checked for sanitizer reports (see
# nbd_setup in lib.sh).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need qemu-img qemu-io nbdkit nbdinfo nbdcopy jq
mk_tmpdir
nbd_setup
MOUNTED=
cleanup() {
    if [ -n "$MOUNTED" ]; then
        fusermount3 -u "$MOUNTED" 2>/dev/null || umount "$MOUNTED" 2>/dev/null
    fi
    stop_nbdkit 2>/dev/null
    cd /
    rm -rf "$TMP"
}
trap cleanup EXIT

# merged_runs: "start length class" lines from "start length class" input,
# adjacent runs of one class merged.
merged_runs() {
    awk '{ if (n && $3 == c && $1 == s + l) { l += $2 } else { if (n) print s, l, c; s = $1; l = $2; c = $3; n = 1 } }
         END { if (n) print s, l, c }'
}

say "--- test disks"
# base: data, a partial grain, a zeroed-grain run; child: data over the
# parent, new data, and zeroed grains hiding parent data
qemu-img create -q -f vmdk -o zeroed_grain=on base.vmdk 64M
qemu-io -f vmdk base.vmdk -c 'write -P 0x11 1M 1M' -c 'write -P 0x22 5M 256k' \
    -c 'write -P 0x33 10485860 4000' -c 'write -z 12M 1M' >/dev/null
qemu-img create -q -f vmdk -o zeroed_grain=on -b base.vmdk -F vmdk child.vmdk
qemu-io -f vmdk child.vmdk -c 'write -P 0x44 1088k 64k' -c 'write -P 0x55 30M 128k' \
    -c 'write -z 5M 64k' >/dev/null
check "vmdkit reads the chain" "$VMDKIT" info child.vmdk

say "--- read-only server: map and copy"
if start_nbdkit ro.log file=child.vmdk readonly=true; then
    check "nbdinfo --map" nbdinfo --map --json "$URI" && cp "$OUT" nbd-map.json
    check "vmdkit map --json" "$VMDKIT" map --json child.vmdk && cp "$OUT" vmdkit-map.json
    jq -r '.[] | "\(.offset) \(.length) \(if .type == 0 then "data" else "zero" end)"' nbd-map.json |
        merged_runs >nbd-runs.txt
    jq -r '.[] | "\(.start) \(.length) \(if .data then "data" else "zero" end)"' vmdkit-map.json |
        merged_runs >vmdkit-runs.txt
    assert_eq "nbdinfo's data and hole runs equal vmdkit map's" "$(cat vmdkit-runs.txt)" \
        "$(cat nbd-runs.txt)"
    assert_true "the map has data and hole runs ($(wc -l <nbd-runs.txt) runs)" \
        grep -q ' zero$' nbd-runs.txt
    assert_eq "holes are reported as hole,zero (type 3)" "3" \
        "$(jq '[.[] | select(.type != 0) | .type] | unique | join(",")' -r nbd-map.json)"

    check "nbdinfo shows the size" nbdinfo --size "$URI" &&
        assert_eq "export size is the virtual size" "67108864" "$(cat "$OUT")"
    run nbdinfo --json "$URI"
    assert_eq "read-only server: is_read_only" "true" "$(jq '.exports[0].is_read_only' "$OUT")"

    check "nbdcopy to a raw file" nbdcopy "$URI" nbd.raw
    check "vmdkit convert -O raw" "$VMDKIT" convert -O raw child.vmdk vmdkit.raw
    assert_true "nbdcopy's copy equals vmdkit convert's (cmp)" cmp nbd.raw vmdkit.raw
    data=$(jq '[.[] | select(.data) | .length] | add' vmdkit-map.json)
    used=$(($(stat -c %b nbd.raw) * $(stat -c %B nbd.raw)))
    assert_true "nbdcopy skipped the holes: $used bytes allocated for $data bytes of data" \
        test "$used" -le $((data + 4 * 1048576))

    check "qemu-img map over NBD" qemu-img map -f raw --output=json "$URI"
    jq -r '.[] | "\(.start) \(.length) \(if .data then "data" else "zero" end)"' "$OUT" |
        merged_runs >qemu-runs.txt
    assert_eq "qemu-img's map over NBD equals vmdkit map's" "$(cat vmdkit-runs.txt)" \
        "$(cat qemu-runs.txt)"
    check "qemu-img convert from NBD" qemu-img convert -f raw -O raw "$URI" qemu.raw
    assert_true "qemu-img convert's copy equals vmdkit convert's" cmp qemu.raw vmdkit.raw
    # a golden image served by the plugin is read by QEMU's own driver too,
    # and still cannot be written by it
    check "qemu-img info opens the chain the plugin serves" qemu-img info child.vmdk
    check "qemu-io -r reads the chain the plugin serves" qemu-io -r -f vmdk -c 'read -P 0x44 1088k 64k' child.vmdk
    run qemu-io -f vmdk -c 'write 0 512' base.vmdk
    assert_true "qemu-io cannot write the base the plugin serves (exit $RC)" test "$RC" -ne 0
    assert_true "the server is still up" nbdkit_alive
    stop_nbdkit
else
    fail "nbdkit serves child.vmdk read-only (exit $NBDKIT_RC)"
    cat ro.log
fi

say "--- writes over NBD"
WRITES=(-c 'write -P 0x66 3M 64k' -c 'write -P 0x77 1048676 1000' -c 'write -P 0x88 40M 1M'
    -c 'write -z 30M 64k' -c 'write -P 0x99 67108352 512' -c flush)
# what the disk must read afterwards: the same writes applied to a raw copy
cp vmdkit.raw expected.raw
qemu-io -f raw expected.raw "${WRITES[@]}" -c 'write -z 42467328 128k' >/dev/null
if start_nbdkit rw.log file=child.vmdk; then
    run nbdinfo --json "$URI"
    assert_eq "writable server: can_multi_conn, can_zero, can_trim" "true true true" \
        "$(jq -r '.exports[0] | "\(.can_multi_conn) \(.can_zero) \(.can_trim)"' "$OUT")"
    check "qemu-io writes through NBD" qemu-io -f raw "$URI" "${WRITES[@]}"
    check "qemu-io discards whole grains through NBD" qemu-io -f raw "$URI" -c 'discard 42467328 128k'
    check "qemu-io reads its writes back through NBD" qemu-io -f raw "$URI" \
        -c 'read -P 0x66 3M 64k' -c 'read -P 0x77 1048676 1000' -c 'read -P 0x11 1048576 100'
    run "$VMDKIT" info child.vmdk
    assert_eq "the disk is locked while served" "8" "$RC"
    stop_nbdkit
    check "qemu-img check of the disk is clean" qemu-img check child.vmdk
    check "qemu-io reads the patterns from the disk file" qemu-io -r -f vmdk child.vmdk \
        -c 'read -P 0x66 3M 64k' -c 'read -P 0x77 1048676 1000' -c 'read -P 0x88 40M 512k' \
        -c 'read -P 0 42467328 128k' -c 'read -P 0x88 42598400 393216' \
        -c 'read -P 0 30M 64k' -c 'read -P 0x99 67108352 512' -c 'read -P 0x11 1048576 100'
    check "vmdkit compare: the disk reads as the writes applied to a raw copy" \
        "$VMDKIT" compare child.vmdk expected.raw
    check "the parent was not written" qemu-io -r -f vmdk base.vmdk -c 'read -P 0 3M 64k' \
        -c 'read -P 0 40M 1M'
else
    fail "nbdkit serves child.vmdk read-write (exit $NBDKIT_RC)"
    cat rw.log
fi

say "--- parameters"
if start_nbdkit bad.log file=child.vmdk ignore-cid=true; then
    fail "ignore-cid=true without readonly=true is refused"
    stop_nbdkit
else
    assert_true "ignore-cid=true without readonly=true is refused" grep -q 'readonly=true' bad.log
fi
if start_nbdkit missing.log file=nothing.vmdk; then
    fail "a missing disk stops nbdkit"
    stop_nbdkit
else
    assert_true "a missing disk stops nbdkit with a message" grep -q 'nothing.vmdk' missing.log
fi
"$VMDKIT" create -t streamOptimized stream.vmdk 1M
if start_nbdkit stream.log file=stream.vmdk; then
    fail "a streamOptimized disk is not served for writing"
    stop_nbdkit
else
    assert_true "a streamOptimized disk is refused for writing, naming readonly=true" \
        grep -q 'stream.vmdk.*readonly=true' stream.log
fi
if start_nbdkit stream-ro.log file=stream.vmdk readonly=true; then
    pass "a streamOptimized disk is served with readonly=true"
    stop_nbdkit
else
    fail "a streamOptimized disk is served with readonly=true"
    cat stream-ro.log
fi

say "--- confine=DIR"
mkdir -p jail outside
qemu-img create -q -f vmdk jail/base.vmdk 16M
qemu-img create -q -f vmdk -b base.vmdk -F vmdk jail/inner.vmdk
qemu-img create -q -f vmdk -b ../base.vmdk -F vmdk jail/escape.vmdk
ln -s ../base.vmdk jail/link.vmdk
"$VMDKIT" create -t monolithicFlat outside/flat.vmdk 1M
sed 's|"flat-flat.vmdk"|"../outside/flat-flat.vmdk"|' outside/flat.vmdk >jail/external.vmdk
if start_nbdkit confine-ok.log file=jail/inner.vmdk confine=jail readonly=true; then
    check "confine=DIR serves a chain inside DIR" nbdinfo --size "$URI"
    stop_nbdkit
else
    fail "confine=DIR serves a chain inside DIR (exit $NBDKIT_RC)"
    cat confine-ok.log
fi
for case in "escape.vmdk:parent" "link.vmdk:disk" "external.vmdk:extent"; do
    f=${case%%:*} what=${case#*:}
    if start_nbdkit "confine-$f.log" file="jail/$f" confine=jail readonly=true \
        allow-external-extents=true; then
        fail "confine=DIR refuses jail/$f (its $what is outside)"
        stop_nbdkit
    else
        assert_true "confine=DIR refuses jail/$f: nbdkit exits, naming the $what outside" \
            grep -q "outside.*confine" "confine-$f.log"
    fi
done
if start_nbdkit external.log file=jail/external.vmdk readonly=true allow-external-extents=true; then
    check "without confine the external extent is served (the refusal above was confine's)" \
        nbdinfo --size "$URI"
    stop_nbdkit
else
    fail "without confine, allow-external-extents=true serves jail/external.vmdk"
    cat external.log
fi

say "--- nbdfuse"
if [ ! -e /dev/fuse ]; then
    say "skipped: /dev/fuse does not exist"
elif ! command -v nbdfuse >/dev/null 2>&1; then
    say "skipped: nbdfuse is not installed"
else
    # a disk with an MBR partition table and an ext2 file system holding a
    # known file in partition 1; nbdkit's partition filter serves that
    # partition, nbdfuse exposes it as a file, debugfs reads the file from it
    # (no mount of the file system needed)
    have_fs=false
    if command -v mke2fs >/dev/null 2>&1 && command -v debugfs >/dev/null 2>&1 &&
        nbdkit --filter=partition null --dump-plugin >/dev/null 2>&1; then
        mkdir fsroot
        text_bytes 7 5000 >fsroot/hello.txt
        if mke2fs -q -F -t ext2 -d fsroot fs.raw 8M >/dev/null 2>&1; then
            truncate -s 16M part.raw
            # partition 1: type 0x83 from sector 2048, 16384 sectors
            printf '\x00\x00\x00\x00\x83\x00\x00\x00\x00\x08\x00\x00\x00\x40\x00\x00' |
                dd of=part.raw bs=1 seek=446 conv=notrunc status=none
            printf '\x55\xaa' | dd of=part.raw bs=1 seek=510 conv=notrunc status=none
            dd if=fs.raw of=part.raw bs=512 seek=2048 conv=notrunc status=none
            "$VMDKIT" convert -f raw part.raw fs.vmdk && have_fs=true
        fi
    fi
    if $have_fs; then
        NBDKIT_OPTS=(--filter=partition)
        fuse_params=(file=fs.vmdk readonly=true partition=1)
    else
        say "no mke2fs/debugfs or partition filter: the nbdfuse file is compared with the disk"
        fuse_params=(file=child.vmdk readonly=true)
    fi
    mkdir mnt
    if start_nbdkit fuse.log "${fuse_params[@]}"; then
        nbdfuse -r mnt "$URI" >nbdfuse.log 2>&1 &
        fuse_pid=$!
        for ((i = 0; i < 100; i++)); do
            [ -e mnt/nbd ] && break
            kill -0 "$fuse_pid" 2>/dev/null || break
            sleep 0.1
        done
        if [ -e mnt/nbd ]; then
            MOUNTED=$TMP/mnt
            if $have_fs; then
                run debugfs -R 'cat /hello.txt' mnt/nbd
                assert_true "a file read from partition 1 of the disk through nbdfuse" \
                    cmp -s "$OUT" fsroot/hello.txt
            else
                assert_true "the first MiB of the nbdfuse file equals the disk's" \
                    cmp -n 1048576 mnt/nbd expected.raw
            fi
            fusermount3 -u mnt 2>/dev/null || umount mnt
            MOUNTED=
            wait "$fuse_pid"
        else
            say "skipped: nbdfuse could not mount here: $(tail -n 1 nbdfuse.log)"
            kill "$fuse_pid" 2>/dev/null
            wait "$fuse_pid" 2>/dev/null
        fi
        stop_nbdkit
    else
        fail "nbdkit serves ${fuse_params[*]}"
        cat fuse.log
    fi
    NBDKIT_OPTS=()
fi

say "--- nbdkit logs"
nbd_check_logs

finish
