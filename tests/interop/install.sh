#!/usr/bin/env bash
# install.sh - `cmake --install` into a fresh prefix puts every file in
# place; libvmdkit.so has its SONAME and exports exactly the functions of
# vmdkit.h; a program built with `pkg-config --cflags --libs vmdkit` (and
# once against the static library with --static) creates, writes and reads
# a disk; the command needs no libvmdkit.so; the completion script parses.
#
# Sanitizer builds: the libraries then call into the ASan/UBSan runtimes,
# so the test program is compiled with the same -fsanitize flags.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"

need_vmdkit
need cmake pkg-config readelf nm cc
BUILD=${VMDKIT_BUILD_DIR:-}
[ -n "$BUILD" ] || skip "VMDKIT_BUILD_DIR is not set (the build tree to install from)"
[ -f "$BUILD/CMakeCache.txt" ] || skip "$BUILD is not a CMake build tree"
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

mk_tmpdir
PREFIX=$TMP/prefix
LIBDIR=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
LIBDIR=${LIBDIR:-lib}
version=$("$VMDKIT" --version | awk '{print $2}')

say "--- cmake --install --prefix $PREFIX"
check "cmake --install into a fresh prefix" cmake --install "$BUILD" --prefix "$PREFIX"

commands=$("$VMDKIT" --help | awk '/^Commands:/ {on = 1; next} on && /^$/ {exit}
                                   on && /^  [a-z]/ {print $1}')
files=(
    bin/vmdkit
    "$LIBDIR/libvmdkit.so" "$LIBDIR/libvmdkit.so.1" "$LIBDIR/libvmdkit.so.$version"
    "$LIBDIR/libvmdkit.a" include/vmdkit.h "$LIBDIR/pkgconfig/vmdkit.pc"
    share/man/man1/vmdkit.1 share/man/man1/nbdkit-vmdkit-plugin.1 share/man/man3/libvmdkit.3
    share/bash-completion/completions/vmdkit
)
for c in $commands; do
    files+=("share/man/man1/vmdkit-$c.1")
done
PLUGIN_INSTALLED=
if [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ]; then
    # LIBDIR/nbdkit/plugins unless VMDKIT_NBDKIT_PLUGINDIR says otherwise
    PLUGIN_INSTALLED=$(cd "$PREFIX" && find . -name nbdkit-vmdkit-plugin.so | sed 's|^\./||' | head -n 1)
    say "the plugin is installed as $PREFIX/${PLUGIN_INSTALLED:-?}"
    files+=("${PLUGIN_INSTALLED:-$LIBDIR/nbdkit/plugins/nbdkit-vmdkit-plugin.so}")
fi
missing=
for f in "${files[@]}"; do
    [ -e "$PREFIX/$f" ] || missing="$missing $f"
done
assert_eq "all ${#files[@]} files are installed" "" "${missing# }"
assert_eq "libvmdkit.so links to the SONAME file" "libvmdkit.so.1" \
    "$(readlink "$PREFIX/$LIBDIR/libvmdkit.so")"
assert_eq "nothing is installed outside the prefix's usual folders" "" \
    "$(cd "$PREFIX" && ls -A | grep -Evx 'bin|include|lib|lib64|share|lib/.*' | grep -v "^${LIBDIR%%/*}$")"

say "--- the shared library"
SO=$PREFIX/$LIBDIR/libvmdkit.so
assert_eq "SONAME" "libvmdkit.so.1" \
    "$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
nm -D --defined-only "$SO" | awk '{print $NF}' | sort >exported.txt
assert_eq "only vmdkit_* symbols are exported" "" "$(grep -v '^vmdkit_' exported.txt)"
grep -oE '\bvmdkit_[a-z0-9_]+\(' "$PREFIX/include/vmdkit.h" | tr -d '(' | sort -u >declared.txt
assert_eq "every function of vmdkit.h is exported (VMDKIT_API)" "" \
    "$(comm -23 declared.txt exported.txt | tr '\n' ' ')"
assert_eq "every exported symbol is declared in vmdkit.h" "" \
    "$(comm -13 declared.txt exported.txt | tr '\n' ' ')"

say "--- the command"
assert_eq "the installed vmdkit does not need libvmdkit.so" "" \
    "$(readelf -d "$PREFIX/bin/vmdkit" | grep -F 'libvmdkit')"
check "the installed vmdkit runs" env LD_LIBRARY_PATH= "$PREFIX/bin/vmdkit" --version &&
    assert_eq "it reports the version" "vmdkit $version" "$(cat "$OUT")"

say "--- a program built with pkg-config"
SAN=()
if readelf -d "$SO" | grep -q 'libasan'; then
    SAN=(-fsanitize=address,undefined)
    say "sanitizer build: the test program is compiled with ${SAN[*]}"
fi
cat >prog.c <<'EOF'
#include <stdio.h>
#include <string.h>
#include <vmdkit.h>

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "%s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    vmdkit_error err;
    vmdkit_create_opts o = {.struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 8u << 20};
    if (vmdkit_create(argv[1], &o, &err) < 0)
        return fail("create", err.msg);
    vmdkit_disk *d;
    if (vmdkit_open(argv[1], VMDKIT_OPEN_RDWR, &d, &err) < 0)
        return fail("open", err.msg);
    unsigned char buf[4096], back[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    if (vmdkit_pwrite(d, buf, sizeof buf, 1000000) < 0 || vmdkit_flush(d) < 0 ||
        vmdkit_pread(d, back, sizeof back, 1000000) < 0)
        return fail("io", vmdkit_last_error(d)->msg);
    vmdkit_block_status st;
    if (vmdkit_block_status_at(d, vmdkit_size(d), 0, &st) < 0)
        return fail("block status", vmdkit_last_error(d)->msg);
    printf("%s %llu %s %s\n", vmdkit_create_type_name(VMDKIT_MONOLITHIC_SPARSE),
           (unsigned long long)vmdkit_size(d), memcmp(buf, back, sizeof buf) ? "differ" : "equal",
           st.alloc == VMDKIT_ALLOC_UNALLOC ? "unalloc" : "stored");
    if (vmdkit_close(d, &err) < 0)
        return fail("close", err.msg);
    return 0;
}
EOF
export PKG_CONFIG_PATH=$PREFIX/$LIBDIR/pkgconfig
check "pkg-config --cflags --libs vmdkit" pkg-config --cflags --libs vmdkit && cp "$OUT" pc.txt
assert_true "the flags name the fresh prefix ($(tr -d '\n' <pc.txt))" grep -qF -- "-I$PREFIX/include" pc.txt
check "pkg-config --modversion is the version" pkg-config --modversion vmdkit &&
    assert_eq "vmdkit.pc version" "$version" "$(cat "$OUT")"
# shellcheck disable=SC2046 # word splitting of pkg-config output is wanted
check "cc prog.c \$(pkg-config --cflags --libs vmdkit)" \
    cc "${SAN[@]}" -std=c17 -Wall -Wextra -Werror -o prog prog.c $(pkg-config --cflags --libs vmdkit)
if [ -x prog ]; then
    assert_true "prog needs libvmdkit.so.1" sh -c "readelf -d prog | grep -q 'libvmdkit.so.1'"
    check "prog runs with LD_LIBRARY_PATH" env LD_LIBRARY_PATH="$PREFIX/$LIBDIR" ./prog dyn.vmdk &&
        assert_eq "prog wrote and read the disk" "monolithicSparse 8388608 equal unalloc" "$(cat "$OUT")"
    run env LD_LIBRARY_PATH="$PREFIX/$LIBDIR" ldd ./prog
    assert_true "prog loads libvmdkit.so.1 from the prefix" grep -qF "$PREFIX/$LIBDIR/libvmdkit.so.1" "$OUT"
    check "qemu-img reads what prog wrote" qemu-io -r -f vmdk dyn.vmdk -c 'read 1000000 4096'
fi

# the static library: -l:libvmdkit.a picks the archive over the .so, the
# rest of the line must come from vmdkit.pc's private fields
static_flags=$(pkg-config --cflags --static --libs vmdkit | sed 's/-lvmdkit\b/-l:libvmdkit.a/')
assert_true "pkg-config --static adds libdeflate ($static_flags)" grep -q -- '-ldeflate' <<<"$static_flags"
# shellcheck disable=SC2086
check "cc prog.c \$(pkg-config --static --cflags --libs vmdkit)" \
    cc "${SAN[@]}" -std=c17 -Wall -Wextra -Werror -o prog-static prog.c $static_flags
if [ -x prog-static ]; then
    assert_eq "prog-static does not need libvmdkit.so" "" "$(readelf -d prog-static | grep -F libvmdkit)"
    check "prog-static runs" env LD_LIBRARY_PATH= ./prog-static static.vmdk &&
        assert_eq "prog-static wrote and read the disk" "monolithicSparse 8388608 equal unalloc" \
            "$(cat "$OUT")"
fi

say "--- plugin, completion"
if [ -n "$PLUGIN_INSTALLED" ] && command -v nbdkit >/dev/null 2>&1; then
    PRELOAD=
    if ldd "$PREFIX/$PLUGIN_INSTALLED" | grep -q 'libasan\.so'; then
        PRELOAD=$(ldd "$PREFIX/$PLUGIN_INSTALLED" | awk '/libasan\.so/ {print $3; exit}')
    fi
    check "nbdkit loads the installed plugin" env ${PRELOAD:+LD_PRELOAD=$PRELOAD} \
        nbdkit --dump-plugin "$PREFIX/$PLUGIN_INSTALLED" &&
        assert_true "it is the vmdkit plugin" grep -qx 'name=vmdkit' "$OUT"
    assert_eq "the plugin exports only plugin_init" "plugin_init" \
        "$(nm -D --defined-only "$PREFIX/$PLUGIN_INSTALLED" | awk '{print $NF}' | tr '\n' ' ' | sed 's/ $//')"
fi
check "the bash completion script parses (bash -n)" bash -n "$PREFIX/share/bash-completion/completions/vmdkit"
check "the bash completion script defines the completion" \
    bash -c ". '$PREFIX/share/bash-completion/completions/vmdkit' && complete -p vmdkit"

finish
