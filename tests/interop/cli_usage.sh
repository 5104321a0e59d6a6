#!/usr/bin/env bash
# The command line's argument handling: manuals, unknown commands and
# options, bad sizes and patterns (exit 2, naming the bad argument, nothing
# created or opened), the exit codes of a missing file (6) and of a convert
# to an existing file (9, the file untouched).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

# usage_error DESC BAD VMDKIT CMD...: exit 2; the first stderr line starts
# with "vmdkit: " and names BAD; the command's synopsis and a pointer to its
# manual follow.
usage_error() {
    local desc=$1 bad=$2 first
    shift 2
    expect_exit 2 "$desc" "$@" || return 1
    first=$(head -n 1 "$ERR")
    case $first in
    "vmdkit: "*"$bad"*) pass "$desc: message names '$bad'" ;;
    *) fail "$desc: first stderr line must start with 'vmdkit: ' and name '$bad': $first" ;;
    esac
    [ -n "${SYNOPSIS[$2]:-}" ] || return 0 # not a command: no synopsis to show
    if grep -qxF "Usage: ${SYNOPSIS[$2]}" "$ERR" && grep -qF "vmdkit $2 --help" "$ERR"; then
        pass "$desc: synopsis and help hint on stderr"
    else
        fail "$desc: stderr lacks 'Usage: ${SYNOPSIS[$2]}' and 'vmdkit $2 --help'"
        show_output
    fi
}

# empty_dir DESC DIR: nothing was created in DIR.
empty_dir() {
    assert_eq "$1: nothing created" "" "$(ls -A "$2")"
}

say "--- manuals"
declare -A SYNOPSIS=(
    [create]="vmdkit create [-t TYPE] [-a ide|buslogic|lsilogic|legacyESX] [--hw N] [--zeroed-grain] [--split-size 4g|2g] [-b PARENT [--absolute]] FILE SIZE"
    [info]="vmdkit info [--json] [--chain] [--ignore-cid] [--allow-external-extents] [--allow-absolute-parents] DISK"
    [map]="vmdkit map [--json] [--ignore-cid] [--allow-external-extents] [--allow-absolute-parents] DISK"
    [convert]="vmdkit convert [-f vmdk|raw] [-O vmdk|raw] [-t TYPE] [-a ADAPTER] [--hw N] [--split-size 4g|2g] [-p | --progress=json] [--threads N] [--ignore-cid] [--allow-external-extents] [--allow-absolute-parents] SRC DST"
    [compare]="vmdkit compare [-s] [--json] [-p | --progress=json] [-f vmdk|raw] [-F vmdk|raw] [--ignore-cid] [--allow-external-extents] [--allow-absolute-parents] A B"
    [io]="vmdkit io [-f vmdk|raw] [-r] [--allow-external-extents] [--allow-absolute-parents] -c CMD [-c CMD ...] DISK"
)
check "vmdkit --help" "$VMDKIT" --help && cp "$OUT" main-help.txt
for cmd in create info map convert compare io; do
    assert_true "--help lists: ${SYNOPSIS[$cmd]}" grep -qF -- "${SYNOPSIS[$cmd]}" main-help.txt
done
for code in 0 1 2 3 4 5 6 7 8 9; do
    assert_true "--help lists exit status $code" grep -Eq "^ +$code +[a-zA-Z]" main-help.txt
done
for cmd in create info map convert compare io; do
    if check "vmdkit $cmd --help" "$VMDKIT" "$cmd" --help; then
        assert_true "$cmd --help shows the synopsis" grep -qF -- "${SYNOPSIS[$cmd]}" "$OUT"
        for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
            assert_true "$cmd --help has a $section section" grep -qx "$section" "$OUT"
        done
        assert_eq "$cmd --help writes nothing on stderr" "" "$(cat "$ERR")"
        cp "$OUT" help1.txt
        check "vmdkit help $cmd" "$VMDKIT" help "$cmd" &&
            assert_true "help $cmd equals $cmd --help" cmp -s help1.txt "$OUT"
    fi
done
if check "vmdkit --version" "$VMDKIT" --version; then
    assert_true "--version prints 'vmdkit X.Y.Z'" grep -Eqx 'vmdkit [0-9]+\.[0-9]+\.[0-9]+.*' "$OUT"
fi

say "--- commands and options"
if expect_exit 2 "no arguments" "$VMDKIT"; then
    assert_true "no arguments: usage on stderr" grep -q "vmdkit create" "$ERR"
    assert_eq "no arguments: nothing on stdout" "" "$(cat "$OUT")"
fi
usage_error "unknown command" frobnicate "$VMDKIT" frobnicate x
usage_error "help for an unknown command" frobnicate "$VMDKIT" help frobnicate
usage_error "unknown global option" --frobnicate "$VMDKIT" --frobnicate
usage_error "info: unknown option" --bogus "$VMDKIT" info --bogus x.vmdk
usage_error "create: unknown short option" "-Z" "$VMDKIT" create -Z x.vmdk 1M
usage_error "info: missing DISK" DISK "$VMDKIT" info
usage_error "info: two disks" y.vmdk "$VMDKIT" info x.vmdk y.vmdk
usage_error "convert: missing option argument" "-O" "$VMDKIT" convert a b -O
usage_error "convert: unknown output format" qcow2 "$VMDKIT" convert -O qcow2 a b
usage_error "convert: negative threads" "-1" "$VMDKIT" convert --threads -1 a b
usage_error "convert: garbage threads" 4x "$VMDKIT" convert --threads 4x a b
usage_error "compare: unknown format" vhd "$VMDKIT" compare -F vhd a b
usage_error "compare: one image" B "$VMDKIT" compare a

say "--- create: bad arguments create nothing"
mkdir new
for bad in 12Q -5 99999999999999999999T 16777216T 18446744073709551616 1.5G "" " 1M" abc 1MB; do
    usage_error "create size '$bad'" "'$bad'" "$VMDKIT" create new/x.vmdk "$bad"
    empty_dir "create size '$bad'" new
done
usage_error "create: unknown type" bogusType "$VMDKIT" create -t bogusType new/x.vmdk 1M
usage_error "create: unknown adapter" scsi "$VMDKIT" create -a scsi new/x.vmdk 1M
usage_error "create: bad hardware version" "'0'" "$VMDKIT" create --hw 0 new/x.vmdk 1M
usage_error "create: missing SIZE" SIZE "$VMDKIT" create new/x.vmdk
usage_error "create: --absolute without -b" --absolute "$VMDKIT" create --absolute new/x.vmdk 1M
usage_error "create: extra argument" extra "$VMDKIT" create new/x.vmdk 1M extra
usage_error "create: split size not 2g or 4g" "'3g'" "$VMDKIT" create -t twoGbMaxExtentSparse --split-size 3g new/x.vmdk 1M
usage_error "create: split size of a disk that is not split" --split-size "$VMDKIT" create --split-size 2g new/x.vmdk 1M
usage_error "convert: split size of raw output" --split-size "$VMDKIT" convert -O raw --split-size 2g new/a new/b
empty_dir "create: bad options" new

say "--- io: every command is checked before the disk is opened"
# The disk does not exist: a syntax error must win over "not found".
for bad in "frob 0 512" "read 0" "read -P 0x100 0 512" "read -P zz 0 512" "write 0 12Q" \
    "write -z -P 1 0 512" "write -x 0 512" "flush now" "read 0 -512" "readfile 0 512"; do
    usage_error "io -c '$bad'" "$bad" "$VMDKIT" io missing.vmdk -c 'read 0 512' -c "$bad"
done
usage_error "io: no -c" "-c" "$VMDKIT" io missing.vmdk
head -c 65536 /dev/zero | tr '\000' '\132' >pattern.raw
before=$(sha256 pattern.raw)
usage_error "io: a bad command after a write" "12Q" \
    "$VMDKIT" io -f raw pattern.raw -c 'write -P 0x11 0 512' -c 'read 0 12Q'
assert_eq "io: the write before the bad command did not run" "$before" "$(sha256 pattern.raw)"

say "--- exit codes of the library's refusals"
for cmd in info map; do
    if expect_exit 6 "$cmd: missing file" "$VMDKIT" "$cmd" missing.vmdk; then
        assert_err_line "$cmd: missing file"
    fi
done
expect_exit 6 "compare: missing file" "$VMDKIT" compare missing.vmdk pattern.raw
expect_exit 6 "io: missing file" "$VMDKIT" io missing.vmdk -c 'read 0 512'
expect_exit 6 "convert: missing source" "$VMDKIT" convert missing.vmdk out.vmdk
assert_true "convert: nothing created for a missing source" test ! -e out.vmdk

head -c 1048576 /dev/zero >src.raw
printf 'not to be overwritten\n' >dst.vmdk
before=$(sha256 dst.vmdk)
for args in "-f raw src.raw dst.vmdk" "-f raw -O raw src.raw dst.vmdk" "src.raw dst.vmdk"; do
    # shellcheck disable=SC2086
    if expect_exit 9 "convert $args: DST exists" "$VMDKIT" convert $args; then
        assert_err_line "convert $args: DST exists"
        assert_true "convert $args: message names dst.vmdk" grep -q dst.vmdk "$ERR"
    fi
    assert_eq "convert $args: DST unchanged" "$before" "$(sha256 dst.vmdk)"
done
ln -s nowhere dangling.vmdk
expect_exit 9 "convert onto a dangling symlink" "$VMDKIT" convert -f raw src.raw dangling.vmdk
assert_true "convert onto a dangling symlink: link kept, target not created" \
    test -L dangling.vmdk -a ! -e nowhere

say "--- pipes and '-' are refused with a reason, not taken for a corrupt image"
mkfifo fifo
for fmt in "-f raw" ""; do
    # shellcheck disable=SC2086
    if expect_exit 9 "convert $fmt FIFO: refused" "$VMDKIT" convert $fmt fifo out.vmdk; then
        assert_err_line "convert $fmt FIFO"
        assert_true "convert $fmt FIFO: the message says it is a pipe" grep -q "^vmdkit: fifo: is a pipe;" "$ERR"
    fi
done
assert_true "convert FIFO: nothing created" test ! -e out.vmdk
for cmd in "info -" "map -" "convert -f raw - out.vmdk" "compare - src.raw" "io - -c flush"; do
    # shellcheck disable=SC2086
    if expect_exit 9 "$cmd: refused" "$VMDKIT" $cmd; then
        assert_err_line "$cmd"
        assert_true "$cmd: the message names standard input" \
            grep -qx "vmdkit: -: reading standard input is not supported; name a file" "$ERR"
    fi
done
expect_exit 1 "check -: could not check (qemu-img check's 1)" "$VMDKIT" check -
assert_true "check -: the message names standard input" grep -q "reading standard input is not supported" "$ERR"
expect_exit 1 "check FIFO: could not check" "$VMDKIT" check fifo
if expect_exit 9 "convert to -: refused" "$VMDKIT" convert -f raw src.raw -; then
    assert_true "convert to -: the message names standard output" \
        grep -qx "vmdkit: -: writing to standard output is not supported; name a file" "$ERR"
fi
assert_true "convert to -: no file named '-'" test ! -e ./-

say "--- convert warns when DST's name says the other format"
# warned DESC: the last command succeeded and wrote exactly one warning line naming DST
warned() {
    assert_eq "$1: one warning line on stderr" 1 "$(grep -c '^vmdkit: warning: ' "$ERR")"
    assert_eq "$1: nothing else on stderr" "" "$(grep -v '^vmdkit: warning: ' "$ERR")"
}
if check "convert to copy.raw without -O" "$VMDKIT" convert -f raw src.raw copy.raw; then
    warned "VMDK named .raw"
    assert_eq "VMDK named .raw: the output is a VMDK all the same" KDMV "$(head -c 4 copy.raw)"
fi
if check "convert to copy.IMG without -O" "$VMDKIT" convert -f raw src.raw copy.IMG; then
    warned "VMDK named .IMG"
fi
if check "convert -O raw to flat.vmdk" "$VMDKIT" convert -O raw copy.raw flat.vmdk; then
    warned "raw named .vmdk"
    assert_true "raw named .vmdk: the output is raw all the same" cmp -s flat.vmdk src.raw
fi
for args in "-f raw src.raw quiet.vmdk" "-O raw copy.raw quiet.img" "-O raw copy.raw quiet.bin"; do
    # shellcheck disable=SC2086
    check "convert $args" "$VMDKIT" convert $args && assert_eq "convert $args: no warning" "" "$(cat "$ERR")"
done

say "--- rebase -b: a relative NEWPARENT is taken from the current folder, and the error says so"
mkdir -p lib/Clone
check "a base" "$VMDKIT" create lib/Base.vmdk 1M
check "a child in another folder" "$VMDKIT" create -b lib/Base.vmdk lib/Clone/c.vmdk 1M
if expect_exit 6 "rebase -b ../Base.vmdk from outside DISK's folder" "$VMDKIT" rebase -u -b ../Base.vmdk lib/Clone/c.vmdk; then
    assert_err_line "rebase -b relative"
    assert_true "rebase: the message says the path is relative to the current folder" \
        grep -qx "vmdkit: ../Base.vmdk: not found (relative to the current folder)" "$ERR"
fi
check "rebase -b lib/Base.vmdk (from the current folder) works" "$VMDKIT" rebase -u -b lib/Base.vmdk lib/Clone/c.vmdk
assert_true "rebase's manual states the rule" sh -c "'$VMDKIT' help rebase | grep -q 'from the current folder'"

finish
