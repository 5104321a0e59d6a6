#!/usr/bin/env bash
# fd_limit.sh - the CLI raises its soft limit of open files to the hard one
# (security review M1, first part): a split disk of 259 pieces with a
# snapshot holds 518 extent files open, more than macOS' default soft
# limit of 256 (set here with ulimit -S), and still opens, reads and copies.
# (Under a hard limit below that, the pool of extent descriptors keeps the
# disk working: fd_pool.sh.)
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

hard=$(ulimit -H -n)
[ "$hard" = unlimited ] || [ "$hard" -ge 1024 ] || skip "the hard limit of open files is $hard"

check "create a 1 TiB split disk (259 pieces)" "$VMDKIT" create -t twoGbMaxExtentSparse d.vmdk 1T
check "write into its last piece" "$VMDKIT" io d.vmdk -c 'write -P 0x5a 1023g 64k'
check "snapshot it" "$VMDKIT" snapshot d.vmdk
check "write into the snapshot's first piece" "$VMDKIT" io d-000001.vmdk -c 'write -P 0x11 0 64k'

soft() { (ulimit -S -n 256 && "$@"); }
expect_exit 0 "info under ulimit -S -n 256" soft "$VMDKIT" info d-000001.vmdk
expect_exit 0 "io reads both links under ulimit -S -n 256" \
    soft "$VMDKIT" io -r d-000001.vmdk -c 'read -P 0x11 0 64k' -c 'read -P 0x5a 1023g 64k' -c 'read -P 0 512g 64k'
expect_exit 0 "convert to a split VMDK under ulimit -S -n 256" \
    soft "$VMDKIT" convert -t twoGbMaxExtentSparse d-000001.vmdk copy.vmdk
expect_exit 0 "the copy has the same content (compare, under ulimit -S -n 256)" \
    soft "$VMDKIT" compare d-000001.vmdk copy.vmdk

finish
