#!/usr/bin/env bash
# checker_independence.sh - the checker reads every on-disk structure itself
# (src/lib/check/check.h): no file of src/lib/check includes, directly or
# through another header, the reader's headers (link.h, extent.h, scan.h)
# or a header of src/lib/vm; and, in the build, the checker's objects call
# no function of the library outside the checker but those of the pure and
# basic files (descriptor.c, sparse_header.c, path.c, open_beneath.c, io.c,
# err.c, opts.c).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VMDKIT_BUILD_DIR:-}
LIB=$SRC/src/lib
[ -d "$LIB/check" ] || skip "no src/lib/check in $SRC"
mk_tmpdir

# headers FILE: the local headers FILE includes, as paths, one per line
headers() {
    local dir
    dir=$(dirname "$1")
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | while read -r h; do
        if [ -f "$dir/$h" ]; then
            realpath "$dir/$h"
        elif [ -f "$LIB/$h" ]; then
            realpath "$LIB/$h"
        elif [ -f "$SRC/include/$h" ]; then
            realpath "$SRC/include/$h"
        else
            echo "$h" # not found: reported by name
        fi
    done
}

# forbidden_includes TREE: "file: header" for each file of TREE/src/lib/check
# that includes a forbidden header, directly or through others
forbidden_includes() {
    local lib=$1/src/lib f
    LIB=$lib
    for f in "$lib"/check/*.[ch]; do
        local seen=" " todo
        todo=$(headers "$f")
        while [ -n "$todo" ]; do
            local next=
            for h in $todo; do
                case $seen in *" $h "*) continue ;; esac
                seen="$seen$h "
                case $h in
                */link.h | */extent.h | */scan.h | link.h | extent.h | scan.h | */src/lib/vm/* | vm/*)
                    echo "$(basename "$f"): ${h#"$lib"/}"
                    ;;
                esac
                [ -f "$h" ] && next="$next $(headers "$h")"
            done
            todo=$next
        done
    done
}

say "--- includes"
assert_eq "no file of src/lib/check includes link.h, extent.h, scan.h or a vm/ header" \
    "" "$(forbidden_includes "$SRC" | sort -u | tr '\n' ' ')"

# the scan finds what it must: a copy with a forbidden include, direct and indirect
mkdir -p copy/src/lib/check copy/src/lib/vm copy/include
cp "$SRC"/src/lib/*.h copy/src/lib/
cp "$SRC"/include/*.h copy/include/
cp "$SRC"/src/lib/check/*.[ch] copy/src/lib/check/
printf '#include "scan.h"\n' >>copy/src/lib/check/check_space.c
printf '#include "../vm/vm.h"\n' >>copy/src/lib/check/check_sparse.h
: >copy/src/lib/vm/vm.h
found=$(forbidden_includes "$PWD/copy" | sort -u | tr '\n' ' ')
assert_true "the scan reports a direct include of scan.h ($found)" grep -q "check_space.c: scan.h" <<<"$found"
assert_true "the scan reports a vm/ header reached through check_sparse.h" grep -q "check_kdmv.c: vm/vm.h" <<<"$found"
LIB=$SRC/src/lib

say "--- calls (the built objects)"
OBJ=$BUILD/CMakeFiles/vmdkit_obj.dir/src/lib
if [ -n "$BUILD" ] && [ -d "$OBJ/check" ] && command -v nm >/dev/null 2>&1; then
    # every function the library defines, with the object defining it
    find "$OBJ" -name '*.o' | while read -r o; do
        nm --defined-only "$o" | awk -v o="${o#"$OBJ"/}" '$2 ~ /^[TW]$/ {print $3, o}'
    done | sort >defined.txt
    nm --undefined-only "$OBJ"/check/*.o | awk '$1 == "U" {print $2}' | sort -u >used.txt
    bad=$(join used.txt defined.txt | awk '$2 !~ /^check\// && $2 !~ /^(descriptor|sparse_header|path|open_beneath|io|err|opts)\.c\.o$/ {print $1 " (" $2 ")"}')
    assert_eq "the checker calls no function of the reader or of vm/" "" "$(echo $bad)"
    assert_true "the object scan sees the checker's calls (vk_descriptor_parse among them)" \
        grep -qx vk_descriptor_parse used.txt
else
    say "skipped: object scan (VMDKIT_BUILD_DIR unset, objects or nm missing)"
fi

finish
