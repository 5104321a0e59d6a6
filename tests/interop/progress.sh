#!/usr/bin/env bash
# Progress reports (docs/json.md, "Progress lines"): convert, compare,
# clone, commit, rebase, check, resize, compact and defrag with --progress=json write one JSON object per
# line on stderr, done never goes back, total stays the virtual size, and the
# last line is finished with success true (false when the command fails);
# -p prints nothing when stderr is not a terminal; stdout stays clean.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need jq
mk_tmpdir

SIZE=$((48 * 1048576))
check "create a disk" "$VMDKIT" create d.vmdk $SIZE
check "write into it" "$VMDKIT" io d.vmdk -c 'write -P 0x61 0 8M' -c 'write -P 0x62 40M 8M'

# progress_ok DESC SUCCESS: the stderr of the last command ($ERR) is a
# sequence of progress lines as documented, ending with success SUCCESS.
progress_ok() {
    local desc=$1 success=$2 P=$TMP/progress.jsonl
    grep '^{' "$ERR" >"$P"
    assert_eq "$desc: the other lines of stderr are vmdkit's messages" "" \
        "$(grep -v -e '^{' -e '^vmdkit: ' "$ERR")"
    assert_true "$desc: every progress line is a JSON object" \
        jq -e -s 'length > 0 and all(.[]; type == "object")' "$P"
    assert_true "$desc: done never goes back, total is constant" \
        jq -e -s '[.[].done] as $d | [.[].total] | (unique | length == 1) and
                  ($d | . == sort)' "$P"
    assert_true "$desc: percent is done / total" \
        jq -e -s 'all(.[]; (.percent - (if .total > 0 then .done * 100 / .total
                                        elif .success then 100 else 0 end)) | fabs < 0.01)' "$P"
    assert_eq "$desc: only the last line is final, success $success" "true $success" \
        "$(jq -s -r '[(.[:-1] | all(has("finished") | not)), .[-1].success] | map(tostring) | join(" ")' "$P")"
    if [ "$success" = true ]; then
        assert_eq "$desc: the last line has done = total" "true" \
            "$(jq -s -r '.[-1] | (.done == .total and .finished == true)' "$P")"
    fi
}

check "convert --progress=json" "$VMDKIT" convert --progress=json -O raw d.vmdk d.raw
progress_ok "convert" true
assert_eq "convert: total is the virtual size" "$SIZE" "$(jq -s '.[-1].total' "$ERR")"
assert_eq "convert: nothing on stdout" "" "$(cat "$OUT")"

check "compare --progress=json" "$VMDKIT" compare --progress=json d.vmdk d.raw
progress_ok "compare" true

check "clone --progress=json (full)" "$VMDKIT" clone --progress=json d.vmdk full.vmdk
progress_ok "clone" true

check "snapshot" "$VMDKIT" snapshot d.vmdk
check "write into the delta" "$VMDKIT" io d-000001.vmdk -c 'write -P 0x63 4M 1M'
check "commit --progress=json" "$VMDKIT" commit --progress=json d-000001.vmdk
progress_ok "commit" true

check "a second base with other content" "$VMDKIT" convert d.vmdk other.vmdk
check "snapshot d.vmdk again" "$VMDKIT" snapshot d.vmdk
check "rebase --progress=json onto the other base" "$VMDKIT" rebase --progress=json -b other.vmdk d-000002.vmdk
progress_ok "rebase" true

check "check --progress=json of the two-link chain" "$VMDKIT" check --progress=json d-000002.vmdk
progress_ok "check" true
assert_eq "check: total is the capacity times the links" $((2 * SIZE)) "$(jq -s '.[-1].total' "$TMP/progress.jsonl")"
assert_true "check: its verdict stays on stdout" grep -q 'No errors were found' "$OUT"

# a failure ends with success false: compare of disks of different sizes
check "a smaller disk" "$VMDKIT" create small.vmdk 16M
check "write into the smaller disk" "$VMDKIT" io small.vmdk -c 'write -P 0x71 1M 4k'
expect_exit 1 "compare --progress=json of disks that differ (and differ in size)" "$VMDKIT" compare --progress=json d.vmdk small.vmdk
progress_ok "compare of different disks" true
assert_eq "its total is the larger size" "$SIZE" "$(jq -s '.[0].total' "$ERR")"
# a convert that fails on the way: grain 0's table entry points into the header
cp d.vmdk bad.vmdk
python3 - bad.vmdk <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    gd = struct.unpack_from("<Q", f.read(512), 56)[0]
    f.seek(gd * 512)
    gt = struct.unpack("<I", f.read(4))[0]
    f.seek(gt * 512)
    f.write(struct.pack("<I", 1))
PY
expect_exit 4 "convert --progress=json of a disk whose first grain is damaged" \
    "$VMDKIT" convert --progress=json -O raw bad.vmdk bad.raw
progress_ok "the failed convert" false
assert_true "the error follows the progress lines" grep -q 'inside the metadata' "$ERR"
run "$VMDKIT" convert --progress=json -O raw missing.vmdk out.raw
assert_true "a convert that cannot start exits non-zero" test "$RC" -ne 0
assert_true "and reports no success" sh -c "! jq -e -s 'any(.[]; .success == true)' '$ERR' 2>/dev/null"

# resize, compact and defrag: the same lines; without -p nothing on stderr
check "a disk to maintain" "$VMDKIT" create m.vmdk $SIZE
check "data and zeros in it" "$VMDKIT" io m.vmdk -c 'write -P 0x61 0 8M' -c 'write -P 0 0 4M'
check "resize --progress=json" "$VMDKIT" resize --progress=json m.vmdk +3M
progress_ok "resize" true
assert_eq "resize: total is the bytes added" $((3 * 1048576)) "$(jq -s '.[-1].total' "$TMP/progress.jsonl")"
check "compact --progress=json" "$VMDKIT" compact --progress=json m.vmdk
progress_ok "compact" true
assert_eq "compact: total is the virtual size" $((SIZE + 3 * 1048576)) "$(jq -s '.[-1].total' "$TMP/progress.jsonl")"
assert_true "compact: its summary stays on stdout" grep -q 'bytes on the host' "$OUT"
check "defrag --progress=json" "$VMDKIT" defrag --progress=json m.vmdk
progress_ok "defrag" true
check "snapshot m.vmdk" "$VMDKIT" snapshot m.vmdk
check "compact --chain --progress=json" "$VMDKIT" compact --chain --progress=json m-000001.vmdk
progress_ok "compact --chain" true
assert_eq "compact --chain: total is the capacity times the links" $((2 * (SIZE + 3 * 1048576))) \
    "$(jq -s '.[-1].total' "$TMP/progress.jsonl")"
check "resize --chain --progress=json" "$VMDKIT" resize --chain --progress=json m-000001.vmdk +1M
progress_ok "resize --chain" true
assert_eq "resize --chain: total is the bytes added to both links" $((2 * 1048576)) \
    "$(jq -s '.[-1].total' "$TMP/progress.jsonl")"
for cmd in "resize --chain m-000001.vmdk +1M" "compact m.vmdk" "defrag m.vmdk" "resize -p --chain m.vmdk +1M" \
    "compact -p m.vmdk" "defrag -p m.vmdk"; do
    run "$VMDKIT" $cmd
    assert_eq "$cmd: exit 0" 0 "$RC"
    assert_eq "$cmd: nothing on stderr (no -p, or stderr not a terminal)" "" "$(cat "$ERR")"
done

run "$VMDKIT" convert -p -O raw d.vmdk d2.raw
assert_eq "-p with stderr not a terminal: exit 0" 0 "$RC"
assert_eq "-p with stderr not a terminal prints nothing" "" "$(cat "$ERR")"

# -p on a terminal (script(1) gives the command one): the bar starts at 0 %,
# never goes back, ends at 100 %; before any work it is not drawn full
if command -v script >/dev/null 2>&1; then
    head -c $((16 * 1048576)) /dev/urandom >noise.raw
    for args in "convert -p -f raw noise.raw bar.vmdk" "compare -p d.vmdk d2.raw" "check -p d.vmdk" \
        "resize -p bar.vmdk +5M" "compact -p bar.vmdk" "defrag -p bar.vmdk"; do
        script -q -c "$VMDKIT $args" /dev/null </dev/null >bar.txt 2>&1
        percents=$(tr '\r' '\n' <bar.txt | grep -o '[0-9.]*%' | tr -d '%' | xargs)
        assert_eq "$args on a terminal: the first bar is 0.0 %" 0.0 "${percents%% *}"
        assert_eq "$args on a terminal: the last bar is 100.0 %" 100.0 "${percents##* }"
        assert_true "$args on a terminal: the percent never goes back ($percents)" \
            sh -c 'prev=-1; for p in $0 "$@"; do awk -v a="$prev" -v b="$p" "BEGIN {exit !(b >= a)}" || exit 1; prev=$p; done' $percents
    done
else
    say "skipped: -p on a terminal (script(1) is not installed)"
fi

finish
