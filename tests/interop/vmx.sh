#!/usr/bin/env bash
# vmdkit vmx get|set|unset: an edit changes exactly one line of a .vmx with
# comments (LF and CRLF), set/unset round trips restore the original bytes,
# the file is replaced atomically (a new inode, no temporary file left),
# and the exit codes of a missing key (6), a missing file (6), a malformed
# file (4) and a bad command line (2) leave the file untouched.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

cat >orig.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
# Windows 8 test machine
displayName = "Win8"
guestOS = "windows8-64"
memsize = "2048"

scsi0.present = "TRUE"
scsi0.virtualDev = "lsisas1068"
scsi0:0.fileName = "Win8.vmdk"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "win8.iso"
  # network
ethernet0.present = "TRUE"
ethernet0.virtualDev   =   "e1000"   # changed by hand
ethernet0.generatedAddress = "00:0c:29:aa:bb:cc"
annotation = "Built for |22tests|22 |7C daily"
EOF
sed 's/ethernet0.virtualDev   =   "e1000"/ethernet0.virtualDev   =   "e1000e"/' orig.vmx >expected.vmx

inode() { stat -c %i "$1"; }
# only_files DESC NAME...: the folder holds exactly these files (and the
# test's own output files).
only_files() {
    local desc=$1
    shift
    assert_eq "$desc: no temporary file left" "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" \
        "$(find . -maxdepth 1 ! -name '.*' -printf '%f\n' | sort | tr '\n' ' ')"
}

say "--- set changes exactly one line"
cp orig.vmx Win8.vmx
before=$(inode Win8.vmx)
check "vmx set Win8.vmx ethernet0.virtualDev e1000e" \
    "$VMDKIT" vmx set Win8.vmx ethernet0.virtualDev e1000e
assert_eq "set prints nothing" "" "$(cat "$OUT" "$ERR")"
assert_true "only the ethernet0.virtualDev line changed (cmp with expected)" cmp -s expected.vmx Win8.vmx
assert_eq "diff: line 16 replaced, nothing else" "16c16 2" \
    "$(diff orig.vmx Win8.vmx | head -n 1) $(diff orig.vmx Win8.vmx | grep -c '^[<>]')"
assert_true "the file was replaced (new inode)" test "$before" != "$(inode Win8.vmx)"
only_files "set" Win8.vmx expected.vmx orig.vmx
check "vmx get reads the new value" "$VMDKIT" vmx get Win8.vmx ETHERNET0.VIRTUALDEV &&
    assert_eq "get is case-insensitive" "e1000e" "$(cat "$OUT")"

say "--- get/set/unset round trips"
check "vmx set back to e1000" "$VMDKIT" vmx set Win8.vmx ethernet0.virtualDev e1000
assert_true "setting the old value back restores the original bytes" cmp -s orig.vmx Win8.vmx
check "vmx set of a new key" "$VMDKIT" vmx set Win8.vmx guestinfo.note 'a "quoted" | value'
assert_eq "the new key is appended as key = \"value\"" 'guestinfo.note = "a |22quoted|22 |7C value"' \
    "$(tail -n 1 Win8.vmx)"
assert_eq "the file grew by one line" "$(($(wc -l <orig.vmx) + 1))" "$(wc -l <Win8.vmx)"
check "vmx get of the new key" "$VMDKIT" vmx get Win8.vmx guestinfo.note &&
    assert_eq "get decodes |22 and |7C" 'a "quoted" | value' "$(cat "$OUT")"
check "vmx unset of the new key" "$VMDKIT" vmx unset Win8.vmx guestinfo.note
assert_true "set + unset restores the original bytes" cmp -s orig.vmx Win8.vmx
check "vmx get annotation" "$VMDKIT" vmx get Win8.vmx annotation &&
    assert_eq "a stored |22 reads as a quote" 'Built for "tests" | daily' "$(cat "$OUT")"
check "vmx set of a value that starts with '-'" "$VMDKIT" vmx set Win8.vmx memsize -1 &&
    check "vmx get memsize" "$VMDKIT" vmx get Win8.vmx memsize &&
    assert_eq "the value '-1' was stored" "-1" "$(cat "$OUT")"
check "vmx set memsize back" "$VMDKIT" vmx set Win8.vmx memsize 2048
assert_true "the original bytes are back" cmp -s orig.vmx Win8.vmx
check "vmx unset of a disk line" "$VMDKIT" vmx unset Win8.vmx sata0:1.fileName
grep -vxF 'sata0:1.fileName = "win8.iso"' orig.vmx >unset-expected.vmx
assert_true "unset removed exactly that line" cmp -s unset-expected.vmx Win8.vmx
rm -f unset-expected.vmx
only_files "set/unset" Win8.vmx expected.vmx orig.vmx

say "--- CRLF files keep their line endings"
sed 's/$/\r/' orig.vmx >crlf.vmx
sed 's/$/\r/' expected.vmx >crlf-expected.vmx
cp crlf.vmx Crlf.vmx
check "vmx set on a CRLF file" "$VMDKIT" vmx set Crlf.vmx ethernet0.virtualDev e1000e
assert_true "CRLF: only one line changed, CRLF kept" cmp -s crlf-expected.vmx Crlf.vmx
check "vmx set of a new key on a CRLF file" "$VMDKIT" vmx set Crlf.vmx uuid.action keep
assert_eq "CRLF: the appended line ends in CRLF" 'uuid.action = "keep"\r' \
    "$(tail -n 1 Crlf.vmx | sed 's/\r$/\\r/')"
check "vmx unset on a CRLF file" "$VMDKIT" vmx unset Crlf.vmx uuid.action &&
    check "vmx set back on a CRLF file" "$VMDKIT" vmx set Crlf.vmx ethernet0.virtualDev e1000
assert_true "CRLF: round trip restores the original bytes" cmp -s crlf.vmx Crlf.vmx
rm -f crlf.vmx crlf-expected.vmx Crlf.vmx

say "--- errors leave the file untouched"
cp orig.vmx Win8.vmx
sum=$(sha256 Win8.vmx)
expect_exit 6 "vmx get of a missing key" "$VMDKIT" vmx get Win8.vmx nvme0:0.fileName &&
    assert_eq "missing key message" "vmdkit: Win8.vmx: nvme0:0.fileName: no such key" "$(cat "$ERR")"
assert_eq "get of a missing key prints nothing on stdout" "" "$(cat "$OUT")"
expect_exit 6 "vmx unset of a missing key" "$VMDKIT" vmx unset Win8.vmx nvme0:0.fileName &&
    assert_eq "unset: missing key message" "vmdkit: Win8.vmx: nvme0:0.fileName: no such key" \
        "$(cat "$ERR")"
expect_exit 6 "vmx get on a missing file" "$VMDKIT" vmx get Missing.vmx memsize &&
    assert_err_line "missing file"
expect_exit 6 "vmx set on a missing file" "$VMDKIT" vmx set Missing.vmx memsize 1
assert_true "set on a missing file creates nothing" test ! -e Missing.vmx
expect_exit 9 "vmx set of a key with a space" "$VMDKIT" vmx set Win8.vmx 'bad key' 1 &&
    assert_err_line "bad key"
for args in "" "get" "get Win8.vmx" "set Win8.vmx memsize" "unset Win8.vmx" \
    "get Win8.vmx memsize extra" "set Win8.vmx memsize 1 extra" "frob Win8.vmx memsize" \
    "-x get Win8.vmx memsize"; do
    # shellcheck disable=SC2086 # split ARGS on purpose
    expect_exit 2 "bad usage: vmdkit vmx $args" "$VMDKIT" vmx $args &&
        assert_true "bad usage: vmx $args: a usage line on stderr" \
            grep -qF 'Usage: vmdkit vmx get|set|unset FILE.vmx KEY [VALUE]' "$ERR"
done
assert_eq "the file is unchanged after every refused command" "$sum" "$(sha256 Win8.vmx)"

printf '.encoding = "UTF-8"\nmemsize = "2048"\ndisplayName = "unterminated\n' >Bad.vmx
sum=$(sha256 Bad.vmx)
expect_exit 4 "vmx set on a malformed file" "$VMDKIT" vmx set Bad.vmx memsize 4096 &&
    assert_err_line "malformed file" &&
    assert_true "the message names the file and line 3" grep -qF "Bad.vmx: line 3: " "$ERR"
assert_eq "the malformed file is unchanged" "$sum" "$(sha256 Bad.vmx)"
rm -f Bad.vmx Win8.vmx

say "--- manual"
check "vmdkit vmx --help" "$VMDKIT" vmx --help &&
    assert_true "--help shows the example" \
        grep -qF 'vmdkit vmx set Win8.vmx ethernet0.virtualDev e1000e' "$OUT"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
    assert_true "vmx --help has a $section section" grep -qx "$section" "$OUT"
done
check "vmdkit --help lists vmx" "$VMDKIT" --help &&
    assert_true "main help names the vmx command" grep -qF 'vmdkit vmx get|set|unset FILE.vmx KEY [VALUE]' "$OUT"

finish
