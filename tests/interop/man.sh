#!/usr/bin/env bash
# man.sh - the man pages render without a single groff warning, every
# command of `vmdkit --help` has its page, and the hand-written pages cover
# what they document: vmdkit.1 every command, libvmdkit.3 every function of
# vmdkit.h, nbdkit-vmdkit-plugin.1 every plugin parameter.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need groff
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VMDKIT_BUILD_DIR:-}
[ -n "$BUILD" ] || skip "VMDKIT_BUILD_DIR is not set (the command pages are generated there)"
GEN=$BUILD/man
mk_tmpdir
export LC_ALL=C.UTF-8

# render PAGE: groff with every warning on; stderr must stay empty
render() {
    run groff -man -Tutf8 -ww -z "$1"
    [ "$RC" -eq 0 ] && [ ! -s "$ERR" ]
}

printf '.TH T 1\n.SH NAME\nt \\- t\n.BADMACRO\n' >broken.1
assert_true "a page with an undefined macro is caught (the check can fail)" \
    sh -c '! { groff -man -Tutf8 -ww -z broken.1 2>&1 | grep -q . && false; }' &&
    assert_true "groff -ww reports it" sh -c 'groff -man -Tutf8 -ww -z broken.1 2>&1 | grep -q BADMACRO'

pages=("$SRC"/docs/man/*.[13] "$GEN"/*.1)
for page in "${pages[@]}"; do
    [ -e "$page" ] || continue
    if render "$page"; then
        pass "$(basename "$page") renders without warnings"
    else
        fail "$(basename "$page") renders without warnings"
        show_output
    fi
done

commands=$("$VMDKIT" --help | awk '/^Commands:/ {on = 1; next} on && /^$/ {exit}
                                   on && /^  [a-z]/ {print $1}')
assert_true "vmdkit --help lists commands" test -n "$commands"
assert_true "vmdkit.1 exists" test -f "$GEN/vmdkit.1"
for c in $commands; do
    page=$GEN/vmdkit-$c.1
    if [ ! -f "$page" ]; then
        fail "command $c has a page vmdkit-$c.1"
        continue
    fi
    # the page's NAME line and synopsis are the command's own
    groff -man -Tascii -P-cbou "$page" 2>/dev/null | tr -s ' \n' '  ' >"$c.txt"
    summary=$("$VMDKIT" --help | awk -v c="$c" '/^Commands:/ {on = 1; next}
                                               on && $1 == c {sub(/^ +[^ ]+ +/, ""); print; exit}')
    assert_true "vmdkit-$c.1: NAME is 'vmdkit-$c - $summary'" grep -qF "vmdkit-$c - $summary" "$c.txt"
    assert_true "vmdkit.1 lists vmdkit-$c(1)" grep -q "vmdkit\\\\-$c (1)" "$GEN/vmdkit.1"
done

# libvmdkit(3) names every function of the public header
missing=
for f in $(grep -oE '\bvmdkit_[a-z0-9_]+\(' "$SRC/include/vmdkit.h" | tr -d '(' | sort -u); do
    grep -q "$f" "$SRC/docs/man/libvmdkit.3" || missing="$missing $f"
done
assert_eq "libvmdkit.3 documents every function of vmdkit.h" "" "${missing# }"

# nbdkit-vmdkit-plugin(1) documents every parameter of the plugin's --help
PLUGIN=${VMDKIT_NBDKIT_PLUGIN:-}
if [ -n "$PLUGIN" ] && command -v nbdkit >/dev/null 2>&1; then
    PRELOAD=
    if ldd "$PLUGIN" | grep -q 'libasan\.so'; then
        PRELOAD=$(ldd "$PLUGIN" | awk '/libasan\.so/ {print $3; exit}')
    fi
    run env ${PRELOAD:+LD_PRELOAD=$PRELOAD} nbdkit "$PLUGIN" --help
    params=$(grep -oE '^[a-z-]+=' "$OUT" | tr -d '=' | sort -u)
    assert_true "the plugin's --help lists parameters ($(echo $params))" test -n "$params"
    missing=
    for p in $params; do
        grep -qF "$(sed 's/-/\\-/g' <<<"$p")=" "$SRC/docs/man/nbdkit-vmdkit-plugin.1" || missing="$missing $p"
    done
    assert_eq "nbdkit-vmdkit-plugin.1 documents every parameter" "" "${missing# }"
else
    say "skipped: the plugin's parameters (plugin not built or nbdkit missing)"
fi

finish
