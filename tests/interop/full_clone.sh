#!/usr/bin/env bash
# Full clones: what the copy of a disk or a machine looks like.
#  1. A chain on a streamOptimized base (a machine imported from an OVA):
#     the full clone is a monolithicSparse disk that `vmdkit io` and
#     qemu-io can write, equal to the source, with the base's adapter and
#     hardware version; inside a .vmwarevm bundle it is
#     twoGbMaxExtentSparse, as Fusion makes disks, for a disk and for a
#     whole machine; a vmfs base gives monolithicSparse too.
#  2. Bases vmdkit writes in place keep their createType; -t overrides.
#  3. A read-only template folder (files 0444, folder 0555) is cloned by a
#     user that is not root: the clone is complete, equal, and its folder
#     has the template's mode; no hidden folder is left.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir
HAVE_QEMU=0
command -v qemu-io >/dev/null 2>&1 && command -v qemu-img >/dev/null 2>&1 && HAVE_QEMU=1

no_temps() { assert_eq "$1: no hidden build folder left" "" "$(ls -A "${2:-.}" | grep vmdkit-tmp-)"; }

say "--- 1. a chain on a streamOptimized base"
check "create a streamOptimized base (lsilogic, hw 11)" \
    "$VMDKIT" create -t streamOptimized -a lsilogic --hw 11 s.vmdk 16M
check "snapshot it" "$VMDKIT" snapshot s.vmdk
check "write into the delta" "$VMDKIT" io s-000001.vmdk -c 'write -P 7 0 64k' -c 'write -P 8 15M 1M'
check "vmdkit clone s-000001.vmdk full.vmdk" "$VMDKIT" clone s-000001.vmdk full.vmdk
assert_eq "the clone is monolithicSparse, not streamOptimized" monolithicSparse \
    "$(descriptor_value full.vmdk createType)"
assert_eq "it keeps the base's adapter and hardware version" "lsilogic 11" \
    "$(descriptor_value full.vmdk ddb.adapterType) $(descriptor_value full.vmdk ddb.virtualHWVersion)"
assert_eq "it has no parent" ffffffff "$(descriptor_value full.vmdk parentCID)"
check "it equals the source" "$VMDKIT" compare s-000001.vmdk full.vmdk
check "vmdkit check passes" "$VMDKIT" check full.vmdk
check "vmdkit io writes into the clone" "$VMDKIT" io full.vmdk -c 'write -P 9 1M 64k' -c flush
check "and reads it back" "$VMDKIT" io -r full.vmdk -c 'read -P 9 1M 64k' -c 'read -P 7 0 64k'
if ((HAVE_QEMU)); then
    check "qemu-io writes into the clone too" qemu-io -c 'write -P 10 2M 64k' full.vmdk
    check "qemu-img check of the clone" qemu-img check full.vmdk
fi
expect_exit 1 "the source did not change (the clone differs after its writes)" \
    "$VMDKIT" compare s-000001.vmdk full.vmdk

mkdir Out.vmwarevm
check "the same clone into a .vmwarevm bundle" "$VMDKIT" clone s-000001.vmdk Out.vmwarevm/full.vmdk
assert_eq "inside a bundle it is twoGbMaxExtentSparse" twoGbMaxExtentSparse \
    "$(descriptor_value Out.vmwarevm/full.vmdk createType)"
check "and equals the source" "$VMDKIT" compare s-000001.vmdk Out.vmwarevm/full.vmdk
check "and takes writes" "$VMDKIT" io Out.vmwarevm/full.vmdk -c 'write -P 11 0 64k'

mkdir Imp.vmwarevm
mv s.vmdk s-000001.vmdk Imp.vmwarevm/
printf '.encoding = "UTF-8"\ndisplayName = "Imp"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "s-000001.vmdk"\n' \
    >Imp.vmwarevm/Imp.vmx
check "vmdkit clone of the machine into Copy.vmwarevm" "$VMDKIT" clone Imp.vmwarevm Copy.vmwarevm
assert_eq "the machine's clone has a twoGbMaxExtentSparse disk" twoGbMaxExtentSparse \
    "$(descriptor_value Copy.vmwarevm/Copy.vmdk createType)"
check "equal to the source's disk" "$VMDKIT" compare Imp.vmwarevm/s-000001.vmdk Copy.vmwarevm/Copy.vmdk
check "and writable" "$VMDKIT" io Copy.vmwarevm/Copy.vmdk -c 'write -P 12 0 64k'
check "a machine clone into a plain folder" "$VMDKIT" clone Imp.vmwarevm CopyDir
assert_eq "gives a monolithicSparse disk" monolithicSparse "$(descriptor_value CopyDir/CopyDir.vmdk createType)"
no_temps "machine clones"

check "create a vmfs base" "$VMDKIT" create -t vmfs -a buslogic v.vmdk 8M
check "write into it" "$VMDKIT" io v.vmdk -c 'write -P 5 4M 1M'
check "clone it" "$VMDKIT" clone v.vmdk v-full.vmdk
assert_eq "a vmfs base gives monolithicSparse, adapter kept" "monolithicSparse buslogic" \
    "$(descriptor_value v-full.vmdk createType) $(descriptor_value v-full.vmdk ddb.adapterType)"
check "equal to the source" "$VMDKIT" compare v.vmdk v-full.vmdk

say "--- 2. bases vmdkit writes in place keep their type"
for t in monolithicFlat twoGbMaxExtentFlat twoGbMaxExtentSparse; do
    check "create a $t base" "$VMDKIT" create -t $t b-$t.vmdk 8M
    check "write into it" "$VMDKIT" io b-$t.vmdk -c 'write -P 3 1M 1M'
    check "snapshot it" "$VMDKIT" snapshot b-$t.vmdk
    check "clone its delta" "$VMDKIT" clone b-$t-000001.vmdk c-$t.vmdk
    assert_eq "the clone of a $t chain is $t" $t "$(descriptor_value c-$t.vmdk createType)"
    check "and equals it" "$VMDKIT" compare b-$t-000001.vmdk c-$t.vmdk
done
check "-t streamOptimized is honoured" "$VMDKIT" clone -t streamOptimized b-monolithicFlat.vmdk c-stream.vmdk
assert_eq "the clone is streamOptimized" streamOptimized "$(descriptor_value c-stream.vmdk createType)"
expect_exit 9 "a clone onto an existing disk is refused" "$VMDKIT" clone b-monolithicFlat.vmdk c-stream.vmdk
expect_exit 9 "a clone onto an existing extent name is refused" \
    sh -c "touch c2-flat.vmdk && exec '$VMDKIT' clone b-monolithicFlat.vmdk c2.vmdk"
assert_true "and leaves no descriptor" test ! -e c2.vmdk
no_temps "disk clones"

say "--- 3. a read-only template, cloned by a user that is not root"
RO=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-ro-template.XXXXXX") || exit 1
trap 'chmod -R u+w "$RO" 2>/dev/null; rm -rf "$RO"; cd /; rm -rf "$TMP"' EXIT
chmod 755 "$RO"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    if command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1 &&
        setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups true 2>/dev/null; then
        as_user=(setpriv --reuid=nobody --regid="$(id -gn nobody)" --clear-groups)
        chown nobody "$RO"
    elif command -v runuser >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
        as_user=(runuser -u nobody --)
        chown nobody "$RO"
    fi
fi
if [ "$(id -u)" -eq 0 ] && [ ${#as_user[@]} -eq 0 ]; then
    say "SKIP part 3: running as root without setpriv or runuser to become nobody (root ignores mode bits)"
elif ! "${as_user[@]}" test -x "$VMDKIT"; then
    say "SKIP part 3: $VMDKIT cannot be run by $("${as_user[@]}" id -un)"
else
    say "       (as $("${as_user[@]}" id -un))"
    cat >"$RO/make.sh" <<'EOF'
set -e
cd "$1"
mkdir T.vmwarevm out
"$2" create T.vmwarevm/T.vmdk 16M >/dev/null
"$2" io T.vmwarevm/T.vmdk -c 'write -P 0x33 1M 1M' >/dev/null
printf 'displayName = "T"\nscsi0:0.fileName = "T.vmdk"\n' >T.vmwarevm/T.vmx
chmod 444 T.vmwarevm/*
chmod 555 T.vmwarevm
EOF
    check "make the read-only template" "${as_user[@]}" bash "$RO/make.sh" "$RO" "$VMDKIT"
    check "clone the template machine" "${as_user[@]}" "$VMDKIT" clone "$RO/T.vmwarevm" "$RO/out/C.vmwarevm"
    check "the clone's disk equals the template's" "$VMDKIT" compare "$RO/T.vmwarevm/T.vmdk" \
        "$RO/out/C.vmwarevm/C.vmdk"
    assert_eq "the clone's folder has the template's mode" 555 "$(stat -c %a "$RO/out/C.vmwarevm")"
    assert_eq "the clone's files" "C.vmdk C.vmx" "$(ls "$RO/out/C.vmwarevm" | tr '\n' ' ' | sed 's/ $//')"
    check "clone the template's disk" "${as_user[@]}" "$VMDKIT" clone "$RO/T.vmwarevm/T.vmdk" "$RO/out/t.vmdk"
    check "equal too" "$VMDKIT" compare "$RO/T.vmwarevm/T.vmdk" "$RO/out/t.vmdk"
    no_temps "read-only template" "$RO/out"
fi

finish
