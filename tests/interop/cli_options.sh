#!/usr/bin/env bash
# cli_options.sh - every command's options come from one table, so every
# place that names them agrees: for each command, the OPTIONS of its --help,
# its SYNOPSIS, its generated man page and the bash completion's option list
# name the same options, and the parser accepts every one of them (a table
# row that the command's switch does not handle is reported as not
# implemented, and fails here).  The shared --allow-external-extents is
# listed by `vmdkit --help` for exactly the commands that take it, and each of
# them opens a disk whose extent lies outside its folder only when it is given.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
SRC=${VMDKIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${VMDKIT_BUILD_DIR:-}
mk_tmpdir
export LC_ALL=C.UTF-8

# shellcheck source=../../completions/vmdkit
. "$SRC/completions/vmdkit"

commands=$("$VMDKIT" --help | awk '/^Commands:/ {on = 1; next} on && /^$/ {exit}
                                   on && /^  [a-z]/ {print $1}')
assert_true "vmdkit --help lists commands" test -n "$commands"

# options_of CMD: the OPTIONS lines of CMD's manual ("-t, --type TYPE"), one per line
options_of() {
    "$VMDKIT" help "$1" | awk '/^[A-Z]/ {on = ($0 == "OPTIONS"); next} on && /^    -/ {print substr($0, 5)}'
}

# spellings LINE: each spelling of one OPTIONS line, without its value
spellings() {
    local w
    IFS=, read -ra w <<<"$1"
    for s in "${w[@]}"; do
        s=${s# }
        s=${s%% *}
        echo "${s%%\[*}"
    done
}

# value_of LINE: the value's name ("TYPE"), "[OPT]" for an optional one, "" for none
value_of() {
    local last=${1##*, }
    case $last in
    *"[="*) echo "[OPT]" ;;
    *" "*) echo "${last#* }" ;;
    *) echo "" ;;
    esac
}

mkdir empty
external_cmds= absolute_cmds=
for cmd in $commands; do
    say "--- $cmd"
    options_of "$cmd" >"$cmd.opts"
    synopsis=$("$VMDKIT" help "$cmd" | awk '/^SYNOPSIS/ {getline; sub(/^ +/, ""); print; exit}')
    assert_eq "$cmd: the synopsis names the command" "vmdkit $cmd" "$(cut -d' ' -f1-2 <<<"$synopsis")"
    grep -q -- '--allow-external-extents' "$cmd.opts" && external_cmds="$external_cmds $cmd"
    grep -q -- '--allow-absolute-parents' "$cmd.opts" && absolute_cmds="$absolute_cmds $cmd"

    # 1. OPTIONS against SYNOPSIS: each option (but -h) in the synopsis, with its value
    missing=
    while IFS= read -r line; do
        first=$(spellings "$line" | head -n 1)
        [ "$first" = -h ] && continue
        value=$(value_of "$line")
        case $value in
        "" | "[OPT]") want=$first ;;
        *) want="$first $value" ;;
        esac
        grep -qF -- "$want" <<<"$synopsis" || missing="$missing '$want'"
    done <"$cmd.opts"
    assert_eq "$cmd: every option of OPTIONS is in the synopsis" "" "${missing# }"
    extra=
    for tok in $(grep -oE '(^| |\[)--?[a-zA-Z][a-zA-Z-]*' <<<"$synopsis" | tr -d ' ['); do
        spellings_all=$(while IFS= read -r l; do spellings "$l"; done <"$cmd.opts")
        grep -qxF -- "$tok" <<<"$spellings_all" || extra="$extra $tok"
    done
    assert_eq "$cmd: every option of the synopsis is in OPTIONS" "" "${extra# }"

    # 2. the generated man page: the same OPTIONS lines and synopsis
    if [ -n "$BUILD" ] && [ -f "$BUILD/man/vmdkit-$cmd.1" ]; then
        page=$BUILD/man/vmdkit-$cmd.1
        awk '/^\.SH/ {on = ($2 == "OPTIONS"); next} on && prev == ".TP" && /^\.B / {print substr($0, 4)} {prev = $0}' \
            "$page" | sed 's/\\-/-/g' >"$cmd.man-opts"
        if cmp -s "$cmd.opts" "$cmd.man-opts"; then
            pass "$cmd: the man page lists the options of --help"
        else
            fail "$cmd: the man page lists the options of --help"
            diff "$cmd.opts" "$cmd.man-opts" | sed 's/^/       /'
        fi
        man_synopsis=$(awk '/^\.SH SYNOPSIS/ {getline; getline; print; exit}' "$page" | sed 's/\\-/-/g')
        assert_eq "$cmd: the man page's synopsis" "${synopsis#vmdkit "$cmd"}" " $man_synopsis"
    else
        say "skipped: $cmd's man page (VMDKIT_BUILD_DIR unset or page not generated)"
    fi

    # 3. the completion's list: each spelling, " ARG" when a value follows as a
    # word, "--long" and "--long=" when the value is optional
    while IFS= read -r line; do
        value=$(value_of "$line")
        for s in $(spellings "$line"); do
            if [ "$value" = "[OPT]" ]; then
                case $s in --*) echo "$s"; echo "$s=" ;; *) echo "$s" ;; esac
            elif [ -n "$value" ]; then
                echo "$s ARG"
            else
                echo "$s"
            fi
        done
    done <"$cmd.opts" | sort >"$cmd.want-completion"
    _vmdkit_options "$VMDKIT" "$cmd" | sort >"$cmd.completion"
    if [ -s "$cmd.completion" ] && cmp -s "$cmd.want-completion" "$cmd.completion"; then
        pass "$cmd: the completion offers the options of --help"
    else
        fail "$cmd: the completion offers the options of --help"
        diff "$cmd.want-completion" "$cmd.completion" | sed 's/^/       /'
    fi

    # 4. the parser accepts every spelling of every option (no operands: a
    # wired option gets as far as the operand check or a bad value)
    unwired=
    while IFS= read -r line; do
        value=$(value_of "$line")
        for s in $(spellings "$line"); do
            case $value in
            "" | "[OPT]") args=("$s") ;;
            *) args=("$s" x) ;;
            esac
            cd empty && run "$VMDKIT" "$cmd" "${args[@]}" && cd ..
            if [ "$RC" -eq 125 ] || grep -qE "unknown option|not implemented|needs an argument" "$ERR"; then
                unwired="$unwired ${args[*]}($RC: $(head -n 1 "$ERR"))"
            fi
        done
    done <"$cmd.opts"
    assert_eq "$cmd: the parser handles every option" "" "${unwired# }"
    if grep -qF -- "-h, --help" "$cmd.opts"; then
        cd empty && run "$VMDKIT" "$cmd" --help && cd ..
        assert_true "$cmd --help prints the manual (exit 0)" test "$RC" -eq 0 -a -s "$OUT"
    fi
done

say "--- --allow-external-extents: listed for the commands that take it, and honoured"
listed=$("$VMDKIT" --help | awk '/^Option accepted by/ {sub(/^Option accepted by /, ""); sub(/:$/, "");
                                  gsub(/,| and /, " "); print}' | xargs -n1 | sort | xargs)
assert_eq "vmdkit --help names the commands whose OPTIONS have --allow-external-extents" \
    "$(echo $external_cmds | xargs -n1 | sort | xargs)" "$listed"

# a flat disk whose extent file lies in the folder above its descriptor
mkdir vm
check "create a flat disk" "$VMDKIT" create -t monolithicFlat vm/d.vmdk 1M
mv vm/d-flat.vmdk ext-flat.vmdk
sed -i 's|"d-flat.vmdk"|"../ext-flat.vmdk"|' vm/d.vmdk
head -c 1048576 /dev/zero >zero.raw
# opens CMD ARGS...: exit code without and with the option
honours() {
    local cmd=$1 want_without=$2
    shift 2
    run "$VMDKIT" "$cmd" "$@"
    local without=$RC
    rm -rf out.vmdk out-flat.vmdk clone.vmdk
    run "$VMDKIT" "$cmd" --allow-external-extents "$@"
    local with=$RC
    rm -rf out.vmdk clone.vmdk
    assert_eq "$cmd: refused without --allow-external-extents, done with it" "$want_without 0" "$without $with"
}
for cmd in $external_cmds; do
    case $cmd in
    info | map) honours "$cmd" 9 vm/d.vmdk ;;
    check) honours check 1 vm/d.vmdk ;;
    convert) honours convert 9 vm/d.vmdk out.vmdk ;;
    compare) honours compare 9 vm/d.vmdk zero.raw ;;
    io) honours io 9 vm/d.vmdk -c 'read -P 0 0 4k' ;;
    clone) honours clone 9 vm/d.vmdk clone.vmdk ;;
    bench) honours bench 9 -c 4 vm/d.vmdk ;;
    *) fail "$cmd takes --allow-external-extents but this test does not try it" ;;
    esac
done
usage_rc() { run "$@"; echo "$RC"; }
assert_eq "clone --linked --allow-external-extents is a usage error" 2 \
    "$(usage_rc "$VMDKIT" clone --linked --allow-external-extents vm/d.vmdk linked.vmdk)"

say "--- --allow-absolute-parents: the same commands take it, and honour it"
assert_eq "the commands with --allow-absolute-parents are those with --allow-external-extents" \
    "$external_cmds" "$absolute_cmds"
# a child whose hint names its parent by an absolute path (VMware's linked clones)
check "create the parent" "$VMDKIT" create abs-base.vmdk 1M
check "create a child with an absolute hint" "$VMDKIT" create -b abs-base.vmdk --absolute vm/abs.vmdk 1M
honours_absolute() {
    local cmd=$1 want_without=$2
    shift 2
    run "$VMDKIT" "$cmd" "$@"
    local without=$RC
    assert_true "$cmd: the refusal names the option" grep -q -- '--allow-absolute-parents' "$ERR"
    rm -rf out.vmdk clone.vmdk
    run "$VMDKIT" "$cmd" --allow-absolute-parents "$@"
    local with=$RC
    rm -rf out.vmdk clone.vmdk
    assert_eq "$cmd: refused without --allow-absolute-parents, done with it" "$want_without 0" "$without $with"
}
for cmd in $absolute_cmds; do
    case $cmd in
    info | map) honours_absolute "$cmd" 9 vm/abs.vmdk ;;
    check) honours_absolute check 1 vm/abs.vmdk ;;
    convert) honours_absolute convert 9 vm/abs.vmdk out.vmdk ;;
    compare) honours_absolute compare 9 vm/abs.vmdk zero.raw ;;
    io) honours_absolute io 9 vm/abs.vmdk -c 'read -P 0 0 4k' ;;
    clone) honours_absolute clone 9 vm/abs.vmdk clone.vmdk ;;
    bench) honours_absolute bench 9 -c 4 vm/abs.vmdk ;;
    *) fail "$cmd takes --allow-absolute-parents but this test does not try it" ;;
    esac
done
check "snapshot follows the absolute hint of the disk it is given" "$VMDKIT" snapshot vm/abs.vmdk

finish
