#!/usr/bin/env bash
# chain_depth.sh - no command makes a link deeper than the deepest chain
# vmdkit opens (255 links; security review L2): create -b, snapshot and
# rebase refuse a parent already 255 links deep, and accept one 254 deep,
# whose child then opens.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need python3
mk_tmpdir

# d0 ... d254: 255 descriptors of 1 MiB (ZERO extents), each the parent of the next
python3 - <<'EOF'
for i in range(255):
    p = '' if i == 0 else 'parentFileNameHint="d%d.vmdk"\n' % (i - 1)
    open('d%d.vmdk' % i, 'w').write(
        '# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%s\ncreateType="monolithicFlat"\n%s\nRW 2048 ZERO\n'
        % (i + 1, 'ffffffff' if i == 0 else '%08x' % i, p))
EOF
check "a chain of 255 links opens" "$VMDKIT" info d254.vmdk
assert_true "... all 255 of them" grep -q '255' <("$VMDKIT" info --json --chain d254.vmdk | grep -c '"filename"')

expect_exit 4 "create -b on a parent 255 links deep" "$VMDKIT" create -b d254.vmdk d255.vmdk 1M
assert_true "the message says why" grep -q 'already 255 links deep' "$ERR"
assert_true "nothing was created" [ ! -e d255.vmdk ]
before=$(ls | sort)
expect_exit 4 "snapshot of a disk 255 links deep" "$VMDKIT" snapshot d254.vmdk
assert_eq "snapshot left no file" "$before" "$(ls | sort)"
check "create a disk to rebase" "$VMDKIT" create -t twoGbMaxExtentSparse x.vmdk 1M
expect_exit 4 "rebase -u onto a parent 255 links deep" "$VMDKIT" rebase -u -b d254.vmdk x.vmdk
assert_true "the rebased disk keeps having no parent" [ -z "$(grep parentFileNameHint x.vmdk)" ]

check "create -b on a parent 254 links deep" "$VMDKIT" create -b d253.vmdk c254.vmdk 1M
check "... and the child (the 255th link) opens" "$VMDKIT" info c254.vmdk

finish
