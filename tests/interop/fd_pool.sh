#!/usr/bin/env bash
# fd_pool.sh - extent files are opened through a bounded pool of
# descriptors (security review M1): a 1.9 TiB twoGbMaxExtentSparse disk
# (479 pieces) with a split snapshot (479 more) opens, checks, reads,
# writes, converts, compares and is repaired (check --repair) under a hard
# limit of 64 open files, and the
# plugin serves it; data written at its start, middle and end reads back
# through both links.  Without the pool every piece of both links held a
# descriptor for as long as the disk was open ("Too many open files").
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

check "create a 1900 GiB split disk" "$VMDKIT" create -t twoGbMaxExtentSparse d.vmdk 1900G
check "write its start, middle and end" "$VMDKIT" io d.vmdk -c 'write -P 0xa1 0 64k' \
    -c 'write -P 0xa2 950g 64k' -c 'write -P 0xa3 2040109400064 64k'
check "snapshot it" "$VMDKIT" snapshot d.vmdk
assert_eq "the snapshot is split too" 479 "$(ls d-000001-s*.vmdk | wc -l)"

# low CMD...: CMD under a hard and soft limit of 64 open files
low() { (ulimit -n 64 && "$@"); }
expect_exit 0 "info of the snapshot under ulimit -n 64" low "$VMDKIT" info d-000001.vmdk
expect_exit 0 "check the chain under ulimit -n 64" low "$VMDKIT" check d-000001.vmdk
expect_exit 0 "write the snapshot's start, middle and end under ulimit -n 64" \
    low "$VMDKIT" io d-000001.vmdk -c 'write -P 0xb1 32k 64k' -c 'write -P 0xb2 1073741819904 8k' \
    -c 'write -P 0xb3 2040109449216 8k' -c flush
expect_exit 0 "read both links under ulimit -n 64" \
    low "$VMDKIT" io -r d-000001.vmdk -c 'read -P 0xa1 0 32k' -c 'read -P 0xb1 32k 64k' \
    -c 'read -P 0xa2 950g 64k' -c 'read -P 0xb2 1073741819904 8k' -c 'read -P 0 1073741828096 64k' \
    -c 'read -P 0xa3 2040109400064 48k' -c 'read -P 0xb3 2040109449216 8k' -c 'read -P 0xa3 2040109457408 8k'
expect_exit 0 "convert the chain to a new split disk under ulimit -n 64" \
    low "$VMDKIT" convert -t twoGbMaxExtentSparse d-000001.vmdk copy.vmdk
expect_exit 0 "compare the copy with the chain under ulimit -n 64" \
    low "$VMDKIT" compare d-000001.vmdk copy.vmdk
expect_exit 0 "check the copy under ulimit -n 64" low "$VMDKIT" check copy.vmdk
expect_exit 0 "the copy holds the data" \
    low "$VMDKIT" io -r copy.vmdk -c 'read -P 0xa1 0 32k' -c 'read -P 0xb1 32k 64k' \
    -c 'read -P 0xb2 1073741819904 8k' -c 'read -P 0xa3 2040109400064 48k' -c 'read -P 0xb3 2040109449216 8k'

# the repair opens every piece for writing: they go through the pool too
size200=$(file_size copy-s200.vmdk)
head -c 131072 /dev/urandom >>copy-s200.vmdk
head -c 131072 /dev/urandom >>copy-s400.vmdk
expect_exit 3 "check finds the leaked tails of two pieces under ulimit -n 64" low "$VMDKIT" check copy.vmdk
expect_exit 0 "check --repair cuts them under ulimit -n 64" low "$VMDKIT" check --repair copy.vmdk
assert_eq "both pieces are their old size again" "$size200 $size200" \
    "$(file_size copy-s200.vmdk) $(file_size copy-s400.vmdk)"
expect_exit 0 "the repaired copy checks clean" low "$VMDKIT" check copy.vmdk
expect_exit 0 "and still equals the chain" low "$VMDKIT" compare d-000001.vmdk copy.vmdk

if [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ] && command -v nbdkit >/dev/null 2>&1 &&
    command -v qemu-io >/dev/null 2>&1; then
    nbd_setup
    say "--- the plugin serves the chain under ulimit -n 64 (read with qemu-io)"
    serve() {
        ulimit -n 64
        start_nbdkit "$TMP/nbdkit.log" file="$TMP/d-000001.vmdk" readonly=true || return 1
        qemu-io -r -f raw -c 'read -P 0xa1 0 32k' -c 'read -P 0xb1 32k 64k' -c 'read -P 0xa2 950g 64k' \
            -c 'read -P 0xb2 1073741819904 8k' -c 'read -P 0xb3 2040109449216 8k' -c 'read -P 0xa3 2040109457408 8k' \
            -c 'read -P 0 1500g 64k' "$URI" >"$TMP/qemu-io.out" 2>&1 || return 1
        ! grep -q 'Pattern verification failed\|error' "$TMP/qemu-io.out"
    }
    run serve
    assert_eq "qemu-io read the data the plugin served (exit)" 0 "$RC"
    stop_nbdkit
    nbd_check_logs
fi

finish
