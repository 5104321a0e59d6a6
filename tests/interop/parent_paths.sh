#!/usr/bin/env bash
# Parent paths (user test F21): hints written by VMware on Windows
# ("..\Base\Base.vmdk") are followed; an absolute Windows hint ("C:\...")
# gets an error that says so and how to repair; a relative -b PARENT of
# create and rebase is taken from the current folder, and a parent that is
# not found is reported with that rule.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

# set_hint FILE HINT: replace the parentFileNameHint of a text descriptor
set_hint() {
    local f=$1 hint=$2
    # ENVIRON: awk -v would read the backslashes as escapes
    HINT=$hint awk '/^parentFileNameHint=/ { print "parentFileNameHint=\"" ENVIRON["HINT"] "\""; next } { print }' \
        "$f" >"$f.new" && mv "$f.new" "$f"
}

say "--- Windows hints: backslashes separate folders"
mkdir -p Base Clone
check "a base with data" "$VMDKIT" create Base/Base.vmdk 1M
check "write the base" "$VMDKIT" io Base/Base.vmdk -c 'write -P 0x5a 0 64k'
check "a child in another folder" "$VMDKIT" create -t twoGbMaxExtentSparse -b Base/Base.vmdk Clone/Clone.vmdk 1M
set_hint Clone/Clone.vmdk '..\Base\Base.vmdk'
assert_true "the hint is Windows-style" grep -qF 'parentFileNameHint="..\Base\Base.vmdk"' Clone/Clone.vmdk
check "info --chain follows ..\\Base\\Base.vmdk" "$VMDKIT" info --chain Clone/Clone.vmdk
assert_true "info names the base as the parent" grep -q 'Base/Base.vmdk' "$OUT"
check "the child reads the base's data" "$VMDKIT" io Clone/Clone.vmdk -c 'read -P 0x5a 0 64k'
check "check: the chain is clean" "$VMDKIT" check Clone/Clone.vmdk
check "tree: the child is under its base" "$VMDKIT" tree .
assert_true "tree: no broken link" sh -c "! grep -q broken '$OUT'"
check "a write through the child" "$VMDKIT" io Clone/Clone.vmdk -c 'write -P 0x11 0 512'
assert_true "the write kept the Windows hint as written" grep -qF 'parentFileNameHint="..\Base\Base.vmdk"' Clone/Clone.vmdk

say "--- absolute Windows hints: a clear error"
for hint in 'C:\VMs\Base\Base.vmdk' '\\fileserver\vms\Base\Base.vmdk'; do
    set_hint Clone/Clone.vmdk "$hint"
    if expect_exit 6 "info with hint $hint" "$VMDKIT" info Clone/Clone.vmdk; then
        assert_err_line "info with hint $hint"
        assert_true "$hint: the message names the field, says why and how to repair" \
            grep -qF "vmdkit: Clone/Clone.vmdk: parentFileNameHint: parent \"$hint\" is an absolute Windows path, which names no file here; point the disk at its parent with: vmdkit rebase -u -b PARENT Clone/Clone.vmdk" "$ERR"
    fi
    expect_exit 2 "check with hint $hint" "$VMDKIT" check Clone/Clone.vmdk
    assert_true "check: the same finding" grep -qF 'is an absolute Windows path' "$OUT"
done
check "rebase -u -b repairs it" "$VMDKIT" rebase -u -b Base/Base.vmdk Clone/Clone.vmdk
assert_true "the new hint is relative, with slashes" grep -qF 'parentFileNameHint="../Base/Base.vmdk"' Clone/Clone.vmdk
check "the child reads through its base again" "$VMDKIT" io Clone/Clone.vmdk -c 'read -P 0x5a 512 64512'

say "--- create -b: a relative PARENT is taken from the current folder"
if expect_exit 6 "create -b ../Base/Base.vmdk Clone/new.vmdk (relative to Clone/, not here)" \
    "$VMDKIT" create -b ../Base/Base.vmdk Clone/new.vmdk 1M; then
    assert_err_line "create -b relative"
    assert_true "create: the message names the rule" \
        grep -qx 'vmdkit: ../Base/Base.vmdk: not found (relative to the current folder)' "$ERR"
fi
assert_true "create: nothing made" test ! -e Clone/new.vmdk
expect_exit 6 "create -b with a missing absolute parent" "$VMDKIT" create -b "$PWD/nowhere.vmdk" Clone/new.vmdk 1M &&
    assert_true "absolute: plain not found" grep -qx "vmdkit: $PWD/nowhere.vmdk: not found" "$ERR"
check "create -b Base/Base.vmdk Clone/new.vmdk (from the current folder)" \
    "$VMDKIT" create -b Base/Base.vmdk Clone/new.vmdk 1M
assert_true "the hint is relative to the new disk's folder" grep -qaF 'parentFileNameHint="../Base/Base.vmdk"' Clone/new.vmdk
assert_true "create's manual states the rule" sh -c "'$VMDKIT' help create | grep -q 'relative PARENT is a path from the current folder'"
expect_exit 6 "rebase -b ../Base/Base.vmdk: the same rule" "$VMDKIT" rebase -b ../Base/Base.vmdk Clone/new.vmdk &&
    assert_true "rebase: the message names the rule" \
        grep -qx 'vmdkit: ../Base/Base.vmdk: not found (relative to the current folder)' "$ERR"

finish
