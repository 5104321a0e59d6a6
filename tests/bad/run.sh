#!/usr/bin/env bash
# run.sh - the hostile-input corpus: every case of tests/bad/EXPECTED must
# give its documented error class, without crash, within bounded memory
# and time, leaving the input files byte-identical.
#
# The committed files (tests/bad/files) are first compared with what
# make_bad writes, so they cannot drift from their generator.  Cases that
# cannot be committed (FIFOs, directories, symlinks, a 2 MiB descriptor, a
# chain of 300 links) are made here, in make_generated.
#
# EXPECTED columns, one line per case:
#   NAME     file in the corpus: bad/NAME (the committed files) or gen/NAME
#            (made here); "+external" appended: opened with
#            --allow-external-extents
#   CLASS    class (vmdkit_errcode_name) of the first error met by opening
#            the disk and reading all of it (bad_probe), or "ok"
#   INFO     exit status of `vmdkit info NAME`
#   CONVERT  exit status of `vmdkit convert -O raw NAME OUT` (OUT must not
#            be left behind on failure)
#   WRITE    class when a copy is opened read-write and written (bad_probe
#            --write), or "ok"
#   CHECK    exit statuses `vmdkit check NAME` may give, comma-separated
#
# Environment: VMDKIT, BAD_PROBE, MAKE_BAD (binaries), VMDKIT_SANITIZE (ON
# in sanitizer builds: no address-space limit then), BAD_MEM_KIB (address
# space limit, default 262144 = 256 MiB), BAD_TIMEOUT (seconds, default 10).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
VMDKIT=${VMDKIT:-vmdkit}
BAD_PROBE=${BAD_PROBE:-bad_probe}
MAKE_BAD=${MAKE_BAD:-make_bad}
MEM_KIB=${BAD_MEM_KIB:-262144}
TIMEOUT=${BAD_TIMEOUT:-10}

for tool in "$VMDKIT" "$BAD_PROBE" "$MAKE_BAD"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
HAVE_CHECK=0
"$VMDKIT" help check >/dev/null 2>&1 && HAVE_CHECK=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-bad.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/regen" "$WORK/out" "$WORK/scratch"
# cases live one level down, so that "../" leads somewhere
mkdir -p "$WORK/corpus/bad" "$WORK/corpus/gen"
printf 'outside the corpus folder\n' >"$WORK/corpus/outside.img"

passed=0
failed=0
fail() {
    failed=$((failed + 1))
    echo "FAIL - $*"
}

# --- the committed files are exactly the generator's output ----------------
"$MAKE_BAD" "$WORK/regen" || { echo "FAIL: make_bad failed"; exit 1; }
if diff -r "$HERE/files" "$WORK/regen" >"$WORK/diff.txt"; then
    passed=$((passed + 1))
else
    fail "tests/bad/files differ from what make_bad writes (run: make_bad tests/bad/files):"
    head -n 20 "$WORK/diff.txt"
fi
cp -a "$HERE/files/." "$WORK/corpus/bad/"

# --- cases made at test time -------------------------------------------------
C=$WORK/corpus/gen
cp "$HERE/files/flat.img" "$C/"
desc_head() { printf '# Disk DescriptorFile\nversion=1\nCID=1a2b3c4d\nparentCID=%s\ncreateType="%s"\n' "$1" "$2"; }
make_generated() {
    # a 2 MiB line: too large for a descriptor
    { desc_head ffffffff monolithicFlat; printf 'ddb.comment = "'; head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' a; printf '"\nRW 64 FLAT "flat.img" 0\n'; } >"$C/gen-desc-line-2mib.vmdk"
    # a 900 KiB comment line and a 900 KiB ddb value fit, and parse quickly
    { desc_head ffffffff monolithicFlat; printf '#'; head -c $((900 * 1024)) /dev/zero | tr '\0' c; printf '\nRW 64 FLAT "flat.img" 0\n'; } >"$C/gen-desc-comment-900kib.vmdk"
    { desc_head ffffffff monolithicFlat; printf 'RW 64 FLAT "flat.img" 0\nddb.comment = "'; head -c $((900 * 1024)) /dev/zero | tr '\0' v; printf '"\n'; } >"$C/gen-desc-value-900kib.vmdk"
    # more extent lines than accepted, and a flood of blank lines
    { desc_head ffffffff monolithicFlat; yes 'RW 1 ZERO' | head -n 100001; } >"$C/gen-desc-100001-extents.vmdk"
    { desc_head ffffffff monolithicFlat; yes '' | head -n 300000; printf 'RW 64 FLAT "flat.img" 0\n'; } >"$C/gen-desc-300000-blank-lines.vmdk"
    # extents that are not regular files
    mkdir "$C/dir.img"
    { desc_head ffffffff monolithicFlat; printf 'RW 64 FLAT "dir.img" 0\n'; } >"$C/gen-extent-is-directory.vmdk"
    mkfifo "$C/fifo.img"
    { desc_head ffffffff monolithicFlat; printf 'RW 64 FLAT "fifo.img" 0\n'; } >"$C/gen-extent-is-fifo.vmdk"
    mkfifo "$C/gen-disk-is-fifo.vmdk"
    ln -s /dev/zero "$C/devzero.img"
    { desc_head ffffffff monolithicFlat; printf 'RW 64 FLAT "devzero.img" 0\n'; } >"$C/gen-extent-symlink-to-device.vmdk"
    # a symlink inside the folder leading out of it
    ln -s ../outside.img "$C/escape.img"
    { desc_head ffffffff monolithicFlat; printf 'RW 1 FLAT "escape.img" 0\n'; } >"$C/gen-extent-symlink-escape.vmdk"
    # parent chains: 300 links (beyond the limit) and 200 (within it)
    local links n top f
    for links in 300 200; do
        top=$C/gen-chain-$links-links.vmdk
        for ((n = 0; n < links; n++)); do
            f=$C/chain$links-$n.vmdk
            ((n == links - 1)) && f=$top
            {
                printf '# Disk DescriptorFile\nversion=1\nCID=%08x\n' $((0x10000 + n))
                if ((n == 0)); then
                    printf 'parentCID=ffffffff\n'
                else
                    printf 'parentCID=%08x\nparentFileNameHint="chain%d-%d.vmdk"\n' \
                        $((0x10000 + n - 1)) "$links" $((n - 1))
                fi
                printf 'createType="custom"\nRW 64 ZERO\n'
            } >"$f"
        done
    done
}
make_generated

# --- running -------------------------------------------------------------------
# bounded CMD...: run with the time and memory bounds; stdout in $OUTF,
# stderr in $ERRF, exit status in $RC (125 for a sanitizer report).
OUTF=$WORK/stdout
ERRF=$WORK/stderr
bounded() {
    if [ "${VMDKIT_SANITIZE:-}" = ON ]; then
        timeout -k 2 "$TIMEOUT" "$@" >"$OUTF" 2>"$ERRF" </dev/null
    else
        timeout -k 2 "$TIMEOUT" prlimit --as=$((MEM_KIB * 1024)) "$@" >"$OUTF" 2>"$ERRF" </dev/null
    fi
    RC=$?
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$ERRF"; then
        RC=125
    fi
}

# sums DIR: checksums of every regular file under DIR (symlinks not followed).
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
# stamps DIR: size, modification and change time of every file (cheap, per case).
stamps() { (cd "$1" && find . -printf '%p %s %T@ %C@\n' | sort); }
SUMS_BEFORE=$(sums "$WORK/corpus")

probe_class() { # probe_class: class printed by bad_probe (first word), or "crash RC"
    if [ "$RC" -ge 124 ] || { [ "$RC" -ne 0 ] && [ "$RC" -ne 1 ]; }; then
        echo "crash($RC)"
    else
        head -n 1 "$OUTF" | cut -f1
    fi
}

cases=0
while read -r name class info convert write check; do
    case $name in '' | '#'*) continue ;; esac
    cases=$((cases + 1))
    file=${name%+external}
    ext=()
    [ "$file" != "$name" ] && ext=(--allow-external-extents)
    path=$WORK/corpus/$file
    if [ ! -e "$path" ] && [ ! -L "$path" ]; then
        fail "$name: no such case file"
        continue
    fi
    before=$(stamps "$WORK/corpus")
    bad=0

    bounded "$BAD_PROBE" "${ext[@]}" "$path"
    got=$(probe_class)
    if [ "$got" != "$class" ]; then
        fail "$name: class '$got', expected '$class' ($(head -c 300 "$OUTF" "$ERRF" | tr '\n' ' '))"
        bad=1
    fi

    bounded "$VMDKIT" info "${ext[@]}" "$path"
    if [ "$RC" -ne "$info" ]; then
        fail "$name: vmdkit info exits $RC, expected $info: $(head -c 300 "$ERRF")"
        bad=1
    elif [ "$RC" -ne 0 ] && { [ "$(wc -l <"$ERRF")" -ne 1 ] || ! grep -q '^vmdkit: [^:]*: ' "$ERRF"; }; then
        fail "$name: vmdkit info: the error is not one line naming the file: $(head -c 300 "$ERRF")"
        bad=1
    fi

    rm -rf "${WORK:?}/out/"*
    bounded "$VMDKIT" convert "${ext[@]}" -O raw "$path" "$WORK/out/x.raw"
    if [ "$RC" -ne "$convert" ]; then
        fail "$name: vmdkit convert exits $RC, expected $convert: $(head -c 300 "$ERRF")"
        bad=1
    elif [ "$RC" -ne 0 ] && [ -e "$WORK/out/x.raw" ]; then
        fail "$name: vmdkit convert failed but left its output"
        bad=1
    fi

    if ((HAVE_CHECK)) && [ "$check" != - ]; then
        bounded "$VMDKIT" check "${ext[@]}" "$path"
        if [ "$RC" -ge 124 ] || ! grep -qx "$RC" <<<"${check//,/$'\n'}"; then
            fail "$name: vmdkit check exits $RC, expected one of $check: $(head -c 300 "$OUTF" "$ERRF" | tr '\n' ' ')"
            bad=1
        fi
    fi

    if [ "$(stamps "$WORK/corpus")" != "$before" ]; then
        fail "$name: the files changed"
        bad=1
    fi

    # writing goes to a copy of the case's folder
    rm -rf "${WORK:?}/scratch/"*
    mkdir "$WORK/scratch/corpus"
    cp -a "$WORK/corpus/outside.img" "$WORK/corpus/${file%%/*}" "$WORK/scratch/corpus/"
    bounded "$BAD_PROBE" --write "${ext[@]}" "$WORK/scratch/corpus/$file"
    got=$(probe_class)
    if [ "$got" != "$write" ]; then
        fail "$name: writing: class '$got', expected '$write' ($(head -c 300 "$OUTF" "$ERRF" | tr '\n' ' '))"
        bad=1
    fi
    ((bad)) || passed=$((passed + 1))
done <"$HERE/EXPECTED"

if [ "$(sums "$WORK/corpus")" != "$SUMS_BEFORE" ]; then
    fail "the corpus files changed (sha256)"
fi
bad_cases=$(grep -cvE '^(#|$|bad/ok-)' "$HERE/EXPECTED")
committed=$(ls "$HERE/files" | wc -l)
echo "bad inputs: $cases cases ($bad_cases malformed, $((cases - bad_cases)) valid controls), $committed committed files"
if [ "$bad_cases" -lt 60 ]; then
    fail "fewer than 60 malformed cases"
fi
((HAVE_CHECK)) || echo "note: this vmdkit has no check command; CHECK columns not verified"
echo "bad: $passed passed, $failed failed"
[ $failed -eq 0 ]
