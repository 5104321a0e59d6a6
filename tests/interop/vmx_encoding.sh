#!/usr/bin/env bash
# .vmx files in the encoding their ".encoding" names: `vmx get` prints
# UTF-8, `vmx set` stores the file's encoding (windows-1252; Shift_JIS read
# as code page 932, so "C:\" paths keep their backslashes), a value the
# encoding cannot hold is refused with one error line and the file left as
# it was; clone --name writes the name in the source's encoding and refuses
# one it cannot hold before anything is made.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
mk_tmpdir

say "--- windows-1252"
printf '.encoding = "windows-1252"\r\ndisplayName = "Caf\xe9"\r\nannotation = "5 \x80|0Anext"\r\n' >w.vmx
cp w.vmx w-orig.vmx
check "vmx get (windows-1252)" "$VMDKIT" vmx get w.vmx displayName &&
    assert_eq "printed in UTF-8" $'Caf\xc3\xa9' "$(cat "$OUT")"
check "vmx get of a value with the euro sign and an escape" "$VMDKIT" vmx get w.vmx annotation &&
    assert_eq "0x80 is the euro sign, |0A a line feed" $'5 \xe2\x82\xac\nnext' "$(cat "$OUT")"
check "vmx set (windows-1252)" "$VMDKIT" vmx set w.vmx displayName $'Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e'
assert_eq "stored in windows-1252, CRLF and every other line kept" \
    "$(printf '.encoding = "windows-1252"\r\ndisplayName = "Cr\xe8me br\xfbl\xe9e"\r\nannotation = "5 \x80|0Anext"\r\n' | od -An -tx1)" \
    "$(od -An -tx1 w.vmx)"
cp w.vmx w-now.vmx
expect_exit 9 "a character windows-1252 cannot hold is refused" "$VMDKIT" vmx set w.vmx displayName $'\xe6\x97\xa5\xe6\x9c\xac' &&
    assert_err_line "refused set" &&
    assert_eq "the message names the key, the character and the encoding" \
        "vmdkit: w.vmx: displayName: the character U+65E5 cannot be written in the file's encoding windows-1252" \
        "$(cat "$ERR")"
assert_true "the file is unchanged" cmp -s w-now.vmx w.vmx

say "--- Shift_JIS (Workstation on a Japanese Windows host)"
# "I:\Media\日本語.iso" in code page 932
printf '.encoding = "Shift_JIS"\r\nsata0:1.fileName = "I:\\Media\\\x93\xfa\x96\x7b\x8c\xea.iso"\r\ndisplayName = "Windows 7 x64"\r\n' >j.vmx
check "vmx get (Shift_JIS)" "$VMDKIT" vmx get j.vmx sata0:1.fileName &&
    assert_eq "printed in UTF-8, the backslashes kept" $'I:\\Media\\\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.iso' "$(cat "$OUT")"
check "vmx set (Shift_JIS)" "$VMDKIT" vmx set j.vmx displayName $'\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 VM'
assert_true "stored in Shift_JIS (テスト = 83 65 83 58 83 67)" \
    grep -q $'^displayName = "\x83\x65\x83\x58\x83\x67 VM"\r$' j.vmx
check "and read back" "$VMDKIT" vmx get j.vmx displayName &&
    assert_eq "the same text" $'\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 VM' "$(cat "$OUT")"
cp j.vmx j-now.vmx
expect_exit 9 "a Korean character is refused in Shift_JIS" "$VMDKIT" vmx set j.vmx displayName $'\xed\x95\x9c' &&
    assert_err_line "refused Shift_JIS set"
assert_true "the file is unchanged" cmp -s j-now.vmx j.vmx

say "--- an encoding vmdkit does not know"
printf '.encoding = "x-mac-klingon"\ndisplayName = "plain"\n' >u.vmx
check "ASCII values are read" "$VMDKIT" vmx get u.vmx displayName
expect_exit 5 "a non-ASCII value cannot be written" "$VMDKIT" vmx set u.vmx displayName $'caf\xc3\xa9'
printf '.encoding = "x-mac-klingon"\ndisplayName = "caf\xe9"\n' >u.vmx
expect_exit 5 "a file with non-ASCII text in it is refused" "$VMDKIT" vmx get u.vmx displayName &&
    assert_err_line "unknown encoding"

say "--- clone --name in the source's encoding"
mkdir lib && cd lib || exit 1
mkdir Src.vmwarevm
printf '.encoding = "windows-1252"\ndisplayName = "Quelle \xe9t\xe9"\nscsi0:0.fileName = "Src.vmdk"\nnvram = "Src.nvram"\n' \
    >Src.vmwarevm/Src.vmx
check "create the source's disk" "$VMDKIT" create Src.vmwarevm/Src.vmdk 8M
cp Src.vmwarevm/Src.vmx "$TMP/src.vmx"
check "clone --name with an accent" "$VMDKIT" clone --name $'Caf\xc3\xa9' Src.vmwarevm Cafe.vmwarevm
assert_true "the clone's files are named in UTF-8" test -f $'Cafe.vmwarevm/Caf\xc3\xa9.vmx' -a -f $'Cafe.vmwarevm/Caf\xc3\xa9.vmdk'
assert_true "its displayName is stored in windows-1252" grep -q $'^displayName = "Caf\xe9"$' $'Cafe.vmwarevm/Caf\xc3\xa9.vmx'
check "vmx get of the clone's name" "$VMDKIT" vmx get $'Cafe.vmwarevm/Caf\xc3\xa9.vmx' displayName &&
    assert_eq "read back in UTF-8" $'Caf\xc3\xa9' "$(cat "$OUT")"
assert_eq "the disk's fileName too" $'Caf\xc3\xa9.vmdk' "$("$VMDKIT" vmx get $'Cafe.vmwarevm/Caf\xc3\xa9.vmx' scsi0:0.fileName)"
ls -A >"$TMP/ls.txt"
for mode in full linked; do
    opt=()
    [ "$mode" = linked ] && opt=(--linked)
    expect_exit 9 "$mode clone --name the encoding cannot hold is refused" \
        "$VMDKIT" clone "${opt[@]}" --name $'\xe6\x97\xa5\xe6\x9c\xac' Src.vmwarevm Jp.vmwarevm &&
        assert_err_line "$mode clone refused" &&
        assert_true "the message names the character" grep -q 'U+65E5' "$ERR"
    assert_eq "$mode: nothing was made" "$(cat "$TMP/ls.txt")" "$(ls -A)"
    assert_true "$mode: the source is unchanged" cmp -s "$TMP/src.vmx" Src.vmwarevm/Src.vmx
done
assert_eq "no delta was made in the source" "Src.vmdk Src.vmx" "$(ls Src.vmwarevm | xargs)"

finish
