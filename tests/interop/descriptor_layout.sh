#!/usr/bin/env bash
# A descriptor rewritten by vmdkit (the new CID of a first write, rebase,
# a disk rename) keeps every byte of the lines it does not change:
# comments, unknown lines, their order, spacing and CRLF line ends (user
# test F21: a Windows-written or hand-edited descriptor lost its comments
# and CRLF on the first write).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

# crlf FILE: the text of FILE with CRLF line ends, plus comments and an
# unknown key that vmdkit does not write itself
crlf_edit() {
    awk '{ print }
         /^# Disk DescriptorFile/ { print "# hand-edited on the Windows host" }
         /^createType=/ { print "isNativeSnapshot = \"no\"   " }
         /^ddb.adapterType/ { print "# keep: the controller was changed by hand" }' "$1" |
        sed 's/$/\r/' >"$1.new" && mv "$1.new" "$1"
}

# changed_lines OLD NEW: the lines of NEW that differ, as "< old" / "> new"
changed_lines() { diff "$1" "$2" | grep '^[<>]' | tr -d '\r'; }

say "--- the new CID of a first write"
check "a split base" "$VMDKIT" create -t twoGbMaxExtentSparse base.vmdk 1M
crlf_edit base.vmdk
cp base.vmdk before.vmdk
old_cid=$(descriptor_value base.vmdk CID | tr -d '\r')
lcid=$(descriptor_value base.vmdk ddb.longContentID | tr -d '\r"')
check "a write" "$VMDKIT" io base.vmdk -c 'write -P 0x11 0 4k'
new_cid=$(descriptor_value base.vmdk CID | tr -d '\r')
assert_true "the CID changed" test "$old_cid" != "$new_cid"
assert_eq "only CID and ddb.longContentID changed, in place" \
    "< CID=$old_cid
< ddb.longContentID = \"$lcid\"
> CID=$new_cid
> ddb.longContentID = \"${lcid%????????}$new_cid\"" \
    "$(changed_lines before.vmdk base.vmdk | sort)"
assert_eq "every line still ends in CRLF" "$(wc -l <base.vmdk)" "$(grep -c $'\r$' base.vmdk)"
check "the disk reads what was written" "$VMDKIT" io base.vmdk -c 'read -P 0x11 0 4k'

say "--- rebase -u: the parent's lines"
check "a child" "$VMDKIT" create -t twoGbMaxExtentSparse -b base.vmdk child.vmdk 1M
check "another base" "$VMDKIT" create -t twoGbMaxExtentSparse other.vmdk 1M
crlf_edit child.vmdk
cp child.vmdk before.vmdk
other_cid=$(descriptor_value other.vmdk CID)
check "rebase -u -b other.vmdk child.vmdk" "$VMDKIT" rebase -u -b other.vmdk child.vmdk
assert_eq "only parentCID and the hint changed" \
    "< parentCID=$new_cid
< parentFileNameHint=\"base.vmdk\"
> parentCID=$other_cid
> parentFileNameHint=\"other.vmdk\"" \
    "$(changed_lines before.vmdk child.vmdk | sort)"
assert_eq "every line still ends in CRLF" "$(wc -l <child.vmdk)" "$(grep -c $'\r$' child.vmdk)"

say "--- mv: the extent lines"
cp child.vmdk before.vmdk
check "mv child.vmdk renamed.vmdk" "$VMDKIT" mv child.vmdk renamed.vmdk
assert_eq "only the extent line changed" \
    '< RW 2048 SPARSE "child-s001.vmdk"
> RW 2048 SPARSE "renamed-s001.vmdk"' \
    "$(changed_lines before.vmdk renamed.vmdk)"
assert_eq "every line still ends in CRLF" "$(wc -l <renamed.vmdk)" "$(grep -c $'\r$' renamed.vmdk)"
check "the renamed disk opens" "$VMDKIT" info --chain renamed.vmdk

finish
