#!/usr/bin/env bash
# faults.sh - I/O errors and power cuts at every write of scripted sequences.
#
# The fault layer (faultfs, preloaded) counts the writes a sequence makes
# to the disk's folder; then, for every N from 1 to that count:
#   A. crash_writer (24 seeded writes and zeroings, a flush every 1..4):
#      - the N-th write fails with EIO, then with ENOSPC: the writer must
#        report the error naming the file and its class, and exit 3;
#      - a power cut at the N-th write (FAULTS_SEEDS seeds: which unflushed
#        writes survive, whole or torn at a sector boundary), and one that
#        keeps every earlier write and only the first sector of the N-th;
#      - the N-th fsync/fdatasync fails (N up to the number of syncs);
#      after each: `vmdkit check` finds no corruption, or `vmdkit check
#      --repair` leaves a disk that check accepts, and every flushed write
#      reads back (crash_writer verify).
#   B. `vmdkit io` writing, zeroing and flushing: EIO and ENOSPC at the N-th
#      write must exit 3 with a message naming the file; the disk stays
#      consistent as in A.
#   C. `vmdkit convert` to each output type: EIO and ENOSPC at the N-th write
#      must exit 3 with a message naming the output, leaving no output.
# Disks: monolithicSparse with and without redundant tables, one whose
# embedded descriptor another tool laid out (CRLF, more than a sector), and
# a twoGbMaxExtentSparse disk of two pieces with zeroed grains written
# across the piece boundary.
#
# Environment: VMDKIT, CRASH_WRITER, FAULTFS_LIB (the preload library),
# VMDKIT_SANITIZE (ON in sanitizer builds), FAULTS_SEEDS (default 3),
# CRASH_KEEP (where failing cases are kept).
set -u
VMDKIT=${VMDKIT:-vmdkit}
CRASH_WRITER=${CRASH_WRITER:-crash_writer}
FAULTFS_LIB=${FAULTFS_LIB:-}
SEEDS=${FAULTS_SEEDS:-3}
KEEP=${CRASH_KEEP:-${TMPDIR:-/tmp}/vmdkit-crash-failures}
SPLIT_BYTES=$((8323072 * 512)) # one twoGbMaxExtentSparse piece (4064 MiB, the default)
MIB=$((1024 * 1024))

for tool in "$VMDKIT" "$CRASH_WRITER"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not found"; exit 1; }
done
[ -f "$FAULTFS_LIB" ] || { echo "FAIL: FAULTFS_LIB ($FAULTFS_LIB) not found"; exit 1; }
if ! "$VMDKIT" help check >/dev/null 2>&1; then
    echo "FAIL: this vmdkit has no check command"
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vmdkit-faults.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
WORK=$(cd "$WORK" && pwd -P)
mkdir "$WORK/disk" "$WORK/tpl" "$WORK/src"
DIR=$WORK/disk   # the folder the fault layer watches

. "$(dirname "$0")/faultfs.bash"
faultfs_probe

passed=0
failed=0
consistent=0
repaired=0
declare -A cases=()

# clear_redundant FILE: clear header flag bit 1 (redundant grain tables).
clear_redundant() {
    local flags
    flags=$(od -A n -t u4 -j 8 -N 4 "$1" | tr -d ' ')
    flags=$((flags & ~2))
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((flags & 255)) $(((flags >> 8) & 255)) \
        $(((flags >> 16) & 255)) $(((flags >> 24) & 255)))" |
        dd of="$1" bs=1 seek=8 conv=notrunc status=none
}

# foreign_descriptor DISK: replace the embedded descriptor of a new
# monolithicSparse DISK of 4 MiB by the same facts in another tool's layout:
# CRLF line ends, more keys, over 700 bytes (vmdkit would lay it out
# differently, so a rewrite of the whole text would move its lines).
foreign_descriptor() {
    head -c $((20 * 512)) /dev/zero | dd of="$1" bs=512 seek=1 conv=notrunc status=none
    {
        printf '# Disk DescriptorFile\r\nversion=1\r\nencoding="windows-1252"\r\nCID=1a2b3c4d\r\n'
        printf 'parentCID=ffffffff\r\nisNativeSnapshot="no"\r\ncreateType="monolithicSparse"\r\n\r\n'
        printf '# Extent description\r\nRW 8192 SPARSE "d.vmdk"\r\n\r\n# The Disk Data Base \r\n#DDB\r\n\r\n'
        printf 'ddb.adapterType = "lsilogic"\r\nddb.geometry.cylinders = "8"\r\nddb.geometry.heads = "16"\r\n'
        printf 'ddb.geometry.sectors = "63"\r\nddb.longContentID = "0123456789abcdef012345671a2b3c4d"\r\n'
        printf 'ddb.toolsInstallType = "4"\r\nddb.toolsVersion = "12352"\r\n'
        printf 'ddb.uuid = "60 00 C2 9a 8b 7c 6d 5e-4f 30 21 12 03 f4 e5 d6"\r\nddb.virtualHWVersion = "14"\r\n'
        printf 'ddb.comment = "%s"\r\n' "$(printf 'x%.0s' $(seq 1 200))"
    } | dd of="$1" bs=512 seek=1 conv=notrunc status=none
}

# make_template SHAPE: disk files in tpl/SHAPE; sets WARGS for the writer.
make_template() {
    local t=$WORK/tpl/$1
    mkdir -p "$t"
    case $1 in
    mono) "$VMDKIT" create "$t/d.vmdk" 4M >/dev/null ;;
    mono-nord) "$VMDKIT" create "$t/d.vmdk" 4M >/dev/null && clear_redundant "$t/d.vmdk" ;;
    mono-foreign) "$VMDKIT" create "$t/d.vmdk" 4M >/dev/null && foreign_descriptor "$t/d.vmdk" ;;
    split-zg) "$VMDKIT" create -t twoGbMaxExtentSparse --zeroed-grain "$t/d.vmdk" \
        $((SPLIT_BYTES + 2 * MIB)) >/dev/null ;;
    esac
}

writer_args() { # writer_args SHAPE: options of crash_writer for the shape
    case $1 in
    split-zg) echo "-z -w $((SPLIT_BYTES - 2 * MIB)):$((4 * MIB))" ;;
    *) echo "-z" ;;
    esac
}

fresh() { # fresh SHAPE: a new copy of the template disk in the watched folder
    rm -rf "${DIR:?}"/* "$WORK"/journal
    cp --sparse=always "$WORK/tpl/$1"/* "$DIR/"
}

# consistent_or_repaired NAME: check, repairing once if needed.
consistent_or_repaired() { check_or_repair "$1" "$DIR/d.vmdk"; }

# count_writes CMD...: run CMD under the layer without faults; sets W and S.
count_writes() {
    rm -f "$WORK/count"
    faulty FAULTFS_COUNT="$WORK/count" -- "$@" >/dev/null 2>&1
    W=$(awk '{w += $2} END {print w + 0}' "$WORK/count" 2>/dev/null)
    S=$(awk '{s += $4} END {print s + 0}' "$WORK/count" 2>/dev/null)
}

# --- A: crash_writer ---------------------------------------------------------
SEED=7
run_writer_matrix() {
    local shape=$1 wargs n s name rc
    make_template "$shape" || { fail_case "$shape" "could not create the disk"; return; }
    read -r -a wargs <<<"$(writer_args "$shape")"
    local w=("$CRASH_WRITER" write "$DIR/d.vmdk" "$WORK/journal" $SEED -n 24 -f 4 "${wargs[@]}")
    local v=("$CRASH_WRITER" verify "$DIR/d.vmdk" "$WORK/journal" $SEED -n 24 -f 4 "${wargs[@]}")
    fresh "$shape"
    count_writes "${w[@]}"
    echo "--- writer on $shape: $W writes, $S syncs"
    for ((n = 1; n <= W; n++)); do
        for err in EIO ENOSPC; do
            name="writer-$shape-$err-at-$n"
            fresh "$shape"
            faulty FAULTFS_FAIL_NTH=$n FAULTFS_ERRNO=$err -- "${w[@]}" >/dev/null 2>"$WORK/err"
            rc=$?
            cases[writer-error]=$((${cases[writer-error]:-0} + 1))
            local class=io
            [ $err = ENOSPC ] && class=no-space
            if [ $rc -ne 3 ]; then
                fail_case "$name" "writer exits $rc, expected 3" "$WORK/err"; continue
            fi
            if ! grep -Eq "$DIR/d(-s00[12])?\.vmdk.*\($class\)" "$WORK/err"; then
                fail_case "$name" "the message does not name the file and class $class" "$WORK/err"; continue
            fi
            consistent_or_repaired "$name" || continue
            "${v[@]}" >"$WORK/v.out" 2>&1 || { fail_case "$name" "flushed data lost" "$WORK/v.out"; continue; }
            passed=$((passed + 1))
        done
        name="writer-$shape-cut-at-$n-first-sector"
        fresh "$shape"
        faulty FAULTFS_CUT_NTH=$n FAULTFS_TEAR_AT=1 -- "${w[@]}" >/dev/null 2>"$WORK/err"
        rc=$?
        cases[power-cut-tear]=$((${cases[power-cut-tear]:-0} + 1))
        if [ $rc -ne 99 ]; then
            fail_case "$name" "writer exits $rc, expected the power cut (99)" "$WORK/err"
        elif consistent_or_repaired "$name"; then
            if "${v[@]}" >"$WORK/v.out" 2>&1; then
                passed=$((passed + 1))
            else
                fail_case "$name" "flushed data lost" "$WORK/v.out"
            fi
        fi
        for ((s = 1; s <= SEEDS; s++)); do
            name="writer-$shape-cut-at-$n-seed-$s"
            fresh "$shape"
            faulty FAULTFS_CUT_NTH=$n FAULTFS_SEED=$s -- "${w[@]}" >/dev/null 2>"$WORK/err"
            rc=$?
            cases[power-cut]=$((${cases[power-cut]:-0} + 1))
            if [ $rc -ne 99 ]; then
                fail_case "$name" "writer exits $rc, expected the power cut (99)" "$WORK/err"; continue
            fi
            consistent_or_repaired "$name" || continue
            "${v[@]}" >"$WORK/v.out" 2>&1 || { fail_case "$name" "flushed data lost" "$WORK/v.out"; continue; }
            passed=$((passed + 1))
        done
    done
    for ((n = 1; n <= S; n++)); do
        name="writer-$shape-sync-fails-at-$n"
        fresh "$shape"
        faulty FAULTFS_FAIL_SYNC_NTH=$n -- "${w[@]}" >/dev/null 2>"$WORK/err"
        rc=$?
        cases[sync-error]=$((${cases[sync-error]:-0} + 1))
        if [ $rc -ne 3 ] || ! grep -q "$DIR/d" "$WORK/err"; then
            fail_case "$name" "writer exits $rc, expected 3 with a message naming the file" "$WORK/err"
            continue
        fi
        consistent_or_repaired "$name" || continue
        "${v[@]}" >"$WORK/v.out" 2>&1 || { fail_case "$name" "flushed data lost" "$WORK/v.out"; continue; }
        passed=$((passed + 1))
    done
}

# --- B: vmdkit io ------------------------------------------------------------
run_io_matrix() {
    local shape=$1 base=0 n err rc name
    [ "$shape" = split-zg ] && base=$((SPLIT_BYTES - MIB))
    local io=("$VMDKIT" io "$DIR/d.vmdk" -c "write -P 0x11 $base 200k" -c flush
        -c "write -P 0x22 $((base + 100 * 1024 + 3)) 1k" -c "write -z $((base + 64 * 1024)) 128k"
        -c flush -c "write -P 0x33 $((base + MIB - 5000)) 70k")
    fresh "$shape"
    count_writes "${io[@]}"
    echo "--- vmdkit io on $shape: $W writes"
    for ((n = 1; n <= W; n++)); do
        for err in EIO ENOSPC; do
            name="io-$shape-$err-at-$n"
            fresh "$shape"
            faulty FAULTFS_FAIL_NTH=$n FAULTFS_ERRNO=$err -- "${io[@]}" >/dev/null 2>"$WORK/err"
            rc=$?
            cases[io-error]=$((${cases[io-error]:-0} + 1))
            if [ $rc -ne 3 ] || ! grep -Eq "^vmdkit: .*$DIR/d(-s00[12])?\.vmdk" "$WORK/err"; then
                fail_case "$name" "exit $rc, expected 3 with a message naming the file" "$WORK/err"
                continue
            fi
            consistent_or_repaired "$name" || continue
            if ! "$VMDKIT" io "$DIR/d.vmdk" -c "read $base 2M" >/dev/null 2>"$WORK/err"; then
                fail_case "$name" "the disk cannot be read afterwards" "$WORK/err"; continue
            fi
            passed=$((passed + 1))
        done
    done
}

# --- C: vmdkit convert -------------------------------------------------------
run_convert_matrix() {
    local type=$1 n err rc name opts=(-O vmdk -t "$type") out=$DIR/out.vmdk
    [ "$type" = raw ] && opts=(-O raw) && out=$DIR/out.raw
    local cv=("$VMDKIT" convert "${opts[@]}" "$WORK/src/s.vmdk" "$out")
    rm -rf "${DIR:?}"/*
    count_writes "${cv[@]}"
    echo "--- vmdkit convert to $type: $W writes"
    for ((n = 1; n <= W; n++)); do
        for err in EIO ENOSPC; do
            name="convert-$type-$err-at-$n"
            rm -rf "${DIR:?}"/*
            faulty FAULTFS_FAIL_NTH=$n FAULTFS_ERRNO=$err -- "${cv[@]}" >/dev/null 2>"$WORK/err"
            rc=$?
            cases[convert-error]=$((${cases[convert-error]:-0} + 1))
            if [ $rc -ne 3 ] || ! grep -Eq "^vmdkit: .*$DIR/out" "$WORK/err"; then
                fail_case "$name" "exit $rc, expected 3 with a message naming the output" "$WORK/err"
                continue
            fi
            if [ -n "$(ls -A "$DIR")" ]; then
                fail_case "$name" "output left behind: $(ls "$DIR" | tr '\n' ' ')"; continue
            fi
            passed=$((passed + 1))
        done
    done
}

for shape in mono mono-nord mono-foreign split-zg; do
    run_writer_matrix "$shape"
    [ "$shape" = mono-foreign ] || run_io_matrix "$shape"
done
"$VMDKIT" create "$WORK/src/s.vmdk" 3M >/dev/null &&
    "$VMDKIT" io "$WORK/src/s.vmdk" -c 'write -P 0x5a 0 300k' -c 'write -P 0x6b 1M 64k' \
        -c 'write -P 0x7c 2900k 100k' >/dev/null || { echo "FAIL: could not make the source"; exit 1; }
for type in monolithicSparse streamOptimized twoGbMaxExtentSparse monolithicFlat raw; do
    run_convert_matrix "$type"
done

total=0
for k in "${!cases[@]}"; do
    echo "cases: $k ${cases[$k]}"
    total=$((total + cases[$k]))
done
echo "fault cases: $total; disks consistent after the fault: $consistent, repaired by check --repair: $repaired"
echo "faults: $passed passed, $failed failed"
[ $failed -eq 0 ]
