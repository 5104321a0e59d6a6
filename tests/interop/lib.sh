# lib.sh - functions shared by the interop tests (sourced, never run).
#
# A test script does:
#     . "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
#     need qemu-img ...
#     mk_tmpdir                # work in a fresh folder, removed on exit
#     check "what" cmd ...     # one line per check: "ok - what" / "FAIL - what"
#     finish                   # summary; exit 1 if any check failed
#
# Environment: VMDKIT (the binary under test), VMDKIT_CORPUS (folder of
# third-party images).  Exit code 77 means "skipped" to CTest.

VMDKIT=${VMDKIT:-vmdkit}
TEST_NAME=$(basename "$0" .sh)
T_PASS=0
T_FAIL=0
RC=0
TMP=
OUT=/dev/null
ERR=/dev/null

# The size of one split piece of a twoGbMaxExtent disk as current VMware
# products write it (4064 MiB; vmdkit's default), in sectors, and the older
# 2047 MiB one (--split-size 2g).
SPLIT_SECTORS=8323072
SPLIT_2G_SECTORS=4192256

say() { printf '%s\n' "$*"; }

skip() {
    say "SKIP: $TEST_NAME: $*"
    exit 77
}

# need TOOL... : skip the test when a peer tool is missing.
need() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || skip "$t is not installed"
    done
}

# need_vmdkit: the binary under test must exist (a missing binary is a
# failure, not a skip: the build is ours).
need_vmdkit() {
    if ! command -v "$VMDKIT" >/dev/null 2>&1; then
        say "FAIL: $TEST_NAME: vmdkit binary not found ($VMDKIT); set VMDKIT"
        exit 1
    fi
    VMDKIT=$(command -v "$VMDKIT")
    case $VMDKIT in /*) ;; *) VMDKIT=$PWD/$VMDKIT ;; esac
}

# corpus_or_skip: set CORPUS to the absolute corpus folder, or skip.
corpus_or_skip() {
    CORPUS=${VMDKIT_CORPUS:-}
    [ -n "$CORPUS" ] || skip "VMDKIT_CORPUS is not set"
    [ -f "$CORPUS/SOURCES.md" ] || skip "no corpus at $CORPUS (SOURCES.md missing)"
    CORPUS=$(cd "$CORPUS" && pwd)
}

# mk_tmpdir: create $TMP, cd into it, remove it when the script exits.
mk_tmpdir() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-$TEST_NAME.XXXXXX") || exit 1
    trap 'cd /; rm -rf "$TMP"' EXIT
    OUT=$TMP/.stdout
    ERR=$TMP/.stderr
    cd "$TMP" || exit 1
}

pass() {
    T_PASS=$((T_PASS + 1))
    say "ok   - $*"
}

fail() {
    T_FAIL=$((T_FAIL + 1))
    say "FAIL - $*"
}

# show_output: the tail of the last command's stderr and stdout, indented.
show_output() {
    if [ -s "$ERR" ]; then
        say "       stderr:"
        tail -n 8 "$ERR" | sed 's/^/         /'
    fi
    if [ -s "$OUT" ]; then
        say "       stdout:"
        tail -n 8 "$OUT" | sed 's/^/         /'
    fi
}

# run CMD...: run a command with stdout in $OUT and stderr in $ERR; RC is
# its exit code.  A sanitizer report on stderr counts as exit code 125.
run() {
    "$@" >"$OUT" 2>"$ERR"
    RC=$?
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$ERR"; then
        say "       sanitizer report from: $*"
        RC=125
    fi
    return 0
}

# expect_exit CODE DESC CMD...: the command must exit with CODE.
# Returns 0 when it did, so callers can chain further checks.
expect_exit() {
    local want=$1 desc=$2
    shift 2
    run "$@"
    if [ "$RC" -eq "$want" ]; then
        pass "$desc (exit $want)"
        return 0
    fi
    fail "$desc: exit $RC, expected $want"
    say "       command: $*"
    show_output
    return 1
}

# check DESC CMD...: the command must succeed.
check() {
    local desc=$1
    shift
    expect_exit 0 "$desc" "$@"
}

# assert_eq DESC EXPECTED ACTUAL
assert_eq() {
    if [ "$2" = "$3" ]; then
        case $3 in
        *$'\n'*) pass "$1" ;;
        *) if [ ${#3} -le 80 ]; then pass "$1 ($3)"; else pass "$1"; fi ;;
        esac
        return 0
    fi
    fail "$1: got '$3', expected '$2'"
    return 1
}

# assert_true DESC CMD...: like check but silent about output (for tests
# of files and strings).
assert_true() {
    local desc=$1
    shift
    if "$@"; then
        pass "$desc"
        return 0
    fi
    fail "$desc"
    return 1
}

# assert_err_line DESC: the last command wrote exactly one line on stderr,
# starting with "vmdkit: ".
assert_err_line() {
    local n first
    n=$(wc -l <"$ERR")
    first=$(head -n 1 "$ERR")
    if [ "$n" -eq 1 ] && [ "${first#vmdkit: }" != "$first" ]; then
        pass "$1: one error line: $first"
        return 0
    fi
    fail "$1: stderr must be one line starting with 'vmdkit: ' ($n lines)"
    show_output
    return 1
}

sha256() {
    if command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 -r "$1" | cut -d' ' -f1
    else
        sha256sum "$1" | cut -d' ' -f1
    fi
}

file_size() { stat -c %s "$1"; }

# qemu_size DISK: the virtual size qemu-img sees.
qemu_size() { qemu-img info --output=json "$1" 2>/dev/null | jq '."virtual-size"'; }

# sums_of FILE...: "sha256  name" lines, to compare a set of files before
# and after a command.
sums_of() {
    local f
    for f in "$@"; do
        printf '%s  %s\n' "$(sha256 "$f")" "$f"
    done
}

# wait_qemu_writer FILE: wait (5 s at most) until QEMU holds its "write"
# lock byte (101) on FILE, as /proc/locks shows; false when it never does.
wait_qemu_writer() {
    local id i
    id=$(stat -c '%D:%i' "$1") || return 1
    local maj=$((0x${id%%:*} >> 8)) min=$((0x${id%%:*} & 0xff)) ino=${id#*:}
    local want
    want=$(printf '%02x:%02x:%s' "$maj" "$min" "$ino")
    for i in $(seq 50); do
        awk -v w="$want" '$6 == w && $7 <= 101 && $8 >= 101 {found = 1} END {exit !found}' /proc/locks && return 0
        sleep 0.1
    done
    return 1
}

# json_get FILE JQ-FILTER: one value from a JSON file (empty on error).
json_get() { jq -r "$2" "$1" 2>/dev/null; }

# le_u32 FILE OFFSET: a little-endian u32, in decimal.
# le_u64_hex FILE OFFSET: a little-endian u64 as 16 hex digits.
le_u32() {
    local h
    h=$(od -A n -t x1 -j "$2" -N 4 "$1" | tr -d ' \n')
    printf '%d\n' "0x${h:6:2}${h:4:2}${h:2:2}${h:0:2}"
}
le_u64_hex() {
    local h
    h=$(od -A n -t x1 -j "$2" -N 8 "$1" | tr -d ' \n')
    printf '%s\n' "${h:14:2}${h:12:2}${h:10:2}${h:8:2}${h:6:2}${h:4:2}${h:2:2}${h:0:2}"
}

# put_le64 FILE OFFSET VALUE: patch a little-endian u64 in place.
put_le64() {
    local v=$3 i s=
    for i in 0 1 2 3 4 5 6 7; do
        s=$s$(printf '\\x%02x' $(((v >> (8 * i)) & 255)))
    done
    printf '%b' "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# descriptor_text DISK: the descriptor, embedded in a sparse extent or in
# its own file.
descriptor_text() {
    if [ "$(head -c 4 "$1")" = KDMV ]; then
        local off size
        off=$(printf '%d' "0x$(le_u64_hex "$1" 28)")
        size=$(printf '%d' "0x$(le_u64_hex "$1" 36)")
        dd if="$1" bs=512 skip="$off" count="$size" status=none | tr -d '\0'
    else
        cat "$1"
    fi
}

# descriptor_value DISK KEY: a descriptor value without quotes.
descriptor_value() {
    descriptor_text "$1" | sed -n "s/^$2[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"[:space:]]*\).*/\1/p" |
        head -n 1
}

# Deterministic data -------------------------------------------------------

# text_bytes SEED N: N bytes of compressible, line-numbered text.
text_bytes() {
    local - first=$(($1 * 1000000))
    set +o pipefail # seq ends on SIGPIPE when head has enough
    seq -f "%012.0f vmdkit test text: the quick brown fox jumps over the lazy dog" \
        "$first" $((first + 999999)) | head -c "$2"
}

# random_bytes SEED N: N pseudo-random (incompressible) bytes, the same for
# the same SEED on every machine (AES-128-CTR keystream).
random_bytes() {
    local -
    set +o pipefail # openssl ends on SIGPIPE when head has enough
    if command -v openssl >/dev/null 2>&1; then
        openssl enc -aes-128-ctr -nosalt -K 766d646b69742d746573742d6b657921 \
            -iv "$(printf '%032x' "$1")" -in /dev/zero 2>/dev/null | head -c "$2"
    else
        say "openssl is needed for random test data" >&2
        return 1
    fi
}

# mkmixed FILE SIZE [ZEROS TEXT RANDOM]: a raw file of SIZE bytes made of
# repeating segments: ZEROS bytes of zeros, TEXT bytes of text, RANDOM bytes
# of random data (defaults 160K/96K/80K: every segment holds at least one
# all-zero 64 KiB grain and grains that mix zeros with data).
mkmixed() {
    local file=$1 size=$2 z=${3:-163840} t=${4:-98304} r=${5:-81920}
    local seg=$((z + t + r)) k n -
    set +o pipefail
    n=$(((size + seg - 1) / seg))
    {
        for ((k = 0; k < n; k++)); do
            head -c "$z" /dev/zero
            text_bytes "$k" "$t"
            random_bytes "$k" "$r"
        done
    } | head -c "$size" >"$file"
    if [ "$(file_size "$file")" -ne "$size" ]; then
        say "mkmixed: could not make $size bytes in $file" >&2
        return 1
    fi
}

# Maps ---------------------------------------------------------------------

# map_classes_vmdkit JSON [UNIT] / map_classes_qemu JSON [UNIT]: one line
# per UNIT bytes (default 512) of the disk: "D<depth>" data stored in that
# link, "Z" reads as zeros through a zero entry, "U" stored nowhere.  Lets
# the two tools' maps be compared whatever their run boundaries.
map_classes_vmdkit() {
    jq -r '.[] | (if .type == "data" or (.data == true) then "D\(.depth)"
                  elif .type == "zero" then "Z" else "U" end) as $c
           | range(.start / $u; (.start + .length) / $u) | $c' --argjson u "${2:-512}" "$1"
}
map_classes_qemu() {
    jq -r '.[] | (if .data then "D\(.depth)"
                  elif .present and .zero then "Z" else "U" end) as $c
           | range(.start / $u; (.start + .length) / $u) | $c' --argjson u "${2:-512}" "$1"
}

# NBD servers --------------------------------------------------------------

# nbd_setup: for tests of the nbdkit plugin, after mk_tmpdir.  Sets PLUGIN
# (skips when the plugin was not built), PRELOAD (a sanitizer build's plugin
# needs the ASan runtime loaded first in nbdkit, an uninstrumented program),
# SOCK and URI (a Unix socket in $TMP), and a trap that stops nbdkit and
# removes $TMP.  With the runtime preloaded, nbdkit's exit after a start-up
# error can hang in a library destructor (p11-kit's freelocale), so a start
# that logged an error is ended after a grace period.
nbd_setup() {
    need nbdkit
    PLUGIN=${VMDKIT_NBDKIT_PLUGIN:-}
    [ -n "$PLUGIN" ] || skip "the nbdkit plugin was not built (nbdkit-plugin-dev missing or VMDKIT_NBDKIT=OFF)"
    if [ ! -f "$PLUGIN" ]; then
        say "FAIL: $TEST_NAME: plugin $PLUGIN does not exist"
        exit 1
    fi
    PRELOAD=
    if ldd "$PLUGIN" | grep -q 'libasan\.so'; then
        PRELOAD=$(ldd "$PLUGIN" | awk '/libasan\.so/ {print $3; exit}')
        say "plugin built with AddressSanitizer: nbdkit runs with LD_PRELOAD=$PRELOAD"
    fi
    SOCK=$TMP/nbd.sock
    URI="nbd+unix:///?socket=$SOCK"
    NBDKIT_PID=
    NBDKIT_OPTS=()
    NBD_LOGS=()
    trap 'stop_nbdkit 2>/dev/null; cd /; rm -rf "$TMP"' EXIT
}

# nbd_python: set NBD_PY to a python3 that has libnbd's module (nbdsh runs
# "python3 -m nbd"; the first python3 on PATH may be another one), or skip.
nbd_python() {
    local p
    NBD_PY=
    for p in python3 /usr/bin/python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import nbd' 2>/dev/null; then
            NBD_PY=$p
            return 0
        fi
    done
    skip "no python3 with the nbd module (python3-libnbd) for nbdsh"
}

# nbdsh ARG...: libnbd's shell, with the python3 nbd_python found.
nbdsh() { "$NBD_PY" -m nbd "$@"; }

# uri_of EXPORT: the URI of export EXPORT on $SOCK.
uri_of() { printf 'nbd+unix:///%s?socket=%s' "$1" "$SOCK"; }

# start_nbdkit LOG PARAM...: serve with the plugin on $SOCK (nbdkit options
# such as filters in NBDKIT_OPTS); returns 1 (with the log in LOG and the
# exit status in NBDKIT_RC) when nbdkit exits instead of listening.
start_nbdkit() {
    local log=$1 i errored_at=
    shift
    rm -f "$SOCK"
    NBD_LOGS+=("$log")
    env ${PRELOAD:+LD_PRELOAD=$PRELOAD} \
        nbdkit -U "$SOCK" --exit-with-parent -f "${NBDKIT_OPTS[@]}" "$PLUGIN" "$@" >"$log" 2>&1 &
    NBDKIT_PID=$!
    for ((i = 0; i < 200; i++)); do
        [ -S "$SOCK" ] && return 0
        if ! kill -0 "$NBDKIT_PID" 2>/dev/null; then
            wait "$NBDKIT_PID"
            NBDKIT_RC=$?
            NBDKIT_PID=
            return 1
        fi
        if [ -z "$errored_at" ] && grep -qs 'error:' "$log"; then
            errored_at=$i
        elif [ -n "$errored_at" ] && ((i - errored_at >= 40)); then
            say "       nbdkit logged an error and did not exit within 2 s: stopped"
            break
        fi
        sleep 0.05
    done
    [ -z "$errored_at" ] && say "       nbdkit did not listen on $SOCK within 10 s"
    kill -9 "$NBDKIT_PID" 2>/dev/null
    wait "$NBDKIT_PID" 2>/dev/null
    NBDKIT_RC=timeout
    NBDKIT_PID=
    return 1
}

# nbdkit_alive: is the server started last still running?
nbdkit_alive() { [ -n "$NBDKIT_PID" ] && kill -0 "$NBDKIT_PID" 2>/dev/null; }

# stop_nbdkit: end the server (it flushes and closes its disks) and wait.
stop_nbdkit() {
    [ -n "$NBDKIT_PID" ] || return 0
    kill "$NBDKIT_PID" 2>/dev/null
    wait "$NBDKIT_PID" 2>/dev/null
    NBDKIT_PID=
}

# nbd_sanitizer_report LOG: the sanitizer errors in LOG, and its leaks that
# have a vmdkit frame (nbdkit itself leaks a little at exit).
nbd_sanitizer_report() {
    awk '/runtime error:|ERROR: AddressSanitizer/ { print; next }
         /^(Direct|Indirect) leak/ { block = $0; next }
         block != "" && /^$/ { if (ours) print block; block = ""; ours = 0; next }
         block != "" { block = block "\n" $0; if ($0 ~ /vmdkit/) ours = 1 }' "$1"
}

# nbd_check_logs: no sanitizer report in any log of start_nbdkit.
nbd_check_logs() {
    local log reports=
    for log in "${NBD_LOGS[@]}"; do
        [ -n "$(nbd_sanitizer_report "$log")" ] && reports="$reports $log"
    done
    reports=${reports# }
    assert_eq "no sanitizer report in the ${#NBD_LOGS[@]} nbdkit logs" "" "$reports"
    for log in $reports; do
        nbd_sanitizer_report "$log" | sed 's/^/    /' | head -n 40
    done
}

# finish: print the summary and exit (1 when a check failed or none ran).
finish() {
    say "$TEST_NAME: $T_PASS checks passed, $T_FAIL failed"
    if [ "$T_FAIL" -ne 0 ] || [ "$T_PASS" -eq 0 ]; then
        exit 1
    fi
    exit 0
}
