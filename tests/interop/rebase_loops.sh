#!/usr/bin/env bash
# rebase never makes a loop (F11, F12): a disk cannot be its own parent,
# and a new parent whose hints lead back to the disk is refused, -u
# included; the descriptors stay byte-identical.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

check "create a" "$VMDKIT" create a.vmdk 1M
check "b on a" "$VMDKIT" create -b a.vmdk b.vmdk 1M
check "c on b" "$VMDKIT" create -b b.vmdk c.vmdk 1M
sums=$(sha256sum a.vmdk b.vmdk c.vmdk)
expect_exit 7 "rebase -u -b b.vmdk a.vmdk (b is a's child)" "$VMDKIT" rebase -u -b b.vmdk a.vmdk
assert_true "the loop is named" grep -q 'a.vmdk: new parent b.vmdk depends on it: that would be a loop' "$ERR"
expect_exit 7 "rebase -u -b c.vmdk a.vmdk (a grandchild)" "$VMDKIT" rebase -u -b c.vmdk a.vmdk
expect_exit 7 "rebase -b c.vmdk a.vmdk (safe mode)" "$VMDKIT" rebase -b c.vmdk a.vmdk
expect_exit 7 "rebase -b b.vmdk b.vmdk" "$VMDKIT" rebase -b b.vmdk b.vmdk
assert_true "the message says why" grep -q 'b.vmdk: cannot be its own parent' "$ERR"
mkdir sub
expect_exit 7 "rebase -u -b sub/../b.vmdk b.vmdk" "$VMDKIT" rebase -u -b sub/../b.vmdk b.vmdk
expect_exit 6 "a new parent that does not exist" "$VMDKIT" rebase -b nowhere.vmdk b.vmdk
assert_true "the rule for relative paths is named" grep -q 'relative to the current folder' "$ERR"
assert_eq "no descriptor changed" "$sums" "$(sha256sum a.vmdk b.vmdk c.vmdk)"
check "the chain still opens" "$VMDKIT" info --chain c.vmdk
finish
