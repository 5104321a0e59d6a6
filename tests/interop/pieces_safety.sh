#!/usr/bin/env bash
# pieces_safety.sh - a sparse file without a descriptor of its own (a piece
# of a split disk) is read, never written: io, rebase -u, check --repair,
# snapshot, create -b and the nbdkit plugin refuse it for writing, a
# descriptor rewrite never replaces a file that holds grain data, and no
# chain takes such a piece as a parent (another disk's piece, or its own
# extent: a loop).  Also: a .vmx is not a disk, a file probed as raw is
# written only with -f raw, and an atomic rewrite through a symbolic link
# keeps the link.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need python3
mk_tmpdir

# unchanged DESC FILE SUM: FILE still has the sha256 SUM.
unchanged() { assert_eq "$1" "$3" "$(sha256 "$2")"; }

# refused CODE DESC FILE CMD...: CMD exits CODE with one error line naming FILE.
refused() {
    local code=$1 desc=$2 file=$3
    shift 3
    expect_exit "$code" "$desc" "$@" && assert_err_line "$desc" &&
        assert_true "$desc: the message names $file" grep -qF "$file" "$ERR"
}

"$VMDKIT" create -t twoGbMaxExtentSparse d.vmdk 1M >/dev/null || exit 1
"$VMDKIT" io d.vmdk -c 'write -P 0x5a 0 1M' >/dev/null || exit 1
"$VMDKIT" create -t twoGbMaxExtentSparse o.vmdk 1M >/dev/null || exit 1
PIECE=$(sha256 d-s001.vmdk)
DESC=$(sha256 d.vmdk)

say "--- a piece of a split disk is never opened for writing"
refused 9 "io write to the piece" d-s001.vmdk "$VMDKIT" io d-s001.vmdk -c 'write -P 0xcd 0 512'
assert_true "the message says it is one piece of a disk" grep -q 'one piece of a disk.*open its descriptor' "$ERR"
refused 9 "io write -z to the piece" d-s001.vmdk "$VMDKIT" io d-s001.vmdk -c 'write -z 0 64k'
refused 9 "rebase -u of the piece" d-s001.vmdk "$VMDKIT" rebase -u -b o.vmdk d-s001.vmdk
expect_exit 1 "check --repair of the piece cannot be done" "$VMDKIT" check --repair d-s001.vmdk
assert_true "check --repair: the message says to repair through the descriptor" \
    grep -q 'd-s001.vmdk: is one piece of a disk.*through its descriptor' "$ERR"
refused 9 "snapshot of the piece" d-s001.vmdk "$VMDKIT" snapshot d-s001.vmdk
refused 9 "create -b the piece" d-s001.vmdk "$VMDKIT" create -b d-s001.vmdk child.vmdk 1M
assert_true "no child was made" test ! -e child.vmdk -a ! -e d-s001-000001.vmdk
unchanged "the piece is byte for byte as it was" d-s001.vmdk "$PIECE"
unchanged "the disk's descriptor too" d.vmdk "$DESC"
check "reading the piece alone still works" "$VMDKIT" io -r d-s001.vmdk -c 'read -P 0x5a 0 1M'
check "check of the piece alone (no repair) still runs" "$VMDKIT" check d-s001.vmdk
check "the disk reads what was written" "$VMDKIT" io -r d.vmdk -c 'read -P 0x5a 0 1M'
if command -v qemu-img >/dev/null 2>&1; then
    check "qemu-img check finds the disk sound" qemu-img check -f vmdk d.vmdk
fi

if [ -n "${VMDKIT_NBDKIT_PLUGIN:-}" ] && command -v nbdkit >/dev/null 2>&1; then
    PRELOAD=
    ldd "$VMDKIT_NBDKIT_PLUGIN" | grep -q 'libasan\.so' &&
        PRELOAD=$(ldd "$VMDKIT_NBDKIT_PLUGIN" | awk '/libasan\.so/ {print $3; exit}')
    # a disk of its own, so that this part does not depend on the ones above
    "$VMDKIT" create -t twoGbMaxExtentSparse n.vmdk 1M >/dev/null || exit 1
    "$VMDKIT" io n.vmdk -c 'write -P 0x5a 0 1M' >/dev/null || exit 1
    NSUM=$(sha256 n-s001.vmdk)
    # nbdkit -U - --run: the server exits with the command (a client write
    # when qemu-io is there)
    CLIENT=true
    command -v qemu-io >/dev/null 2>&1 && CLIENT='qemu-io -f raw -c "write -P 0xcd 0 512" "$uri"'
    run env ${PRELOAD:+LD_PRELOAD=$PRELOAD} ASAN_OPTIONS=detect_leaks=0 \
        nbdkit -U - "$VMDKIT_NBDKIT_PLUGIN" file="$TMP/n-s001.vmdk" --run "$CLIENT"
    assert_true "the plugin refuses to serve the piece writable (exit $RC)" test "$RC" -ne 0
    assert_true "the plugin says it is one piece of a disk" grep -q 'one piece of a disk' "$ERR"
    unchanged "the piece is unchanged after the plugin" n-s001.vmdk "$NSUM"
    run env ${PRELOAD:+LD_PRELOAD=$PRELOAD} ASAN_OPTIONS=detect_leaks=0 \
        nbdkit -U - -r "$VMDKIT_NBDKIT_PLUGIN" file="$TMP/n-s001.vmdk" readonly=true --run 'true'
    assert_eq "with readonly=true the plugin serves it" 0 "$RC"
else
    say "(no nbdkit plugin: its refusal is not tested here)"
fi

CORPUS=${VMDKIT_CORPUS:-}
VMW=$CORPUS/vmdk-rs/twoGbMaxExtentSparse-s001.vmdk
if [ -f "$VMW" ]; then
    cp "$VMW" vmw-s001.vmdk
    VSUM=$(sha256 vmw-s001.vmdk)
    refused 9 "io write to a piece VMware made" vmw-s001.vmdk "$VMDKIT" io vmw-s001.vmdk -c 'write -P 0x11 0 512'
    unchanged "VMware's piece is unchanged" vmw-s001.vmdk "$VSUM"
else
    say "(no corpus piece $VMW: VMware's own piece is not tested)"
fi

say "--- a descriptor rewrite never replaces a file that holds grain data"
# a writer opens the disk; before its first write (which records a new
# CID in the descriptor file) a sparse file takes the descriptor's name
"$VMDKIT" create -t twoGbMaxExtentSparse w.vmdk 1M >/dev/null || exit 1
"$VMDKIT" create s.vmdk 1M >/dev/null || exit 1
"$VMDKIT" io s.vmdk -c 'write -P 0x77 0 1M' >/dev/null || exit 1
SSUM=$(sha256 s.vmdk)
"$VMDKIT" io w.vmdk -c 'sleep 1500' -c 'write -P 0x33 0 512' >"$TMP/w.out" 2>"$TMP/w.err" &
WPID=$!
sleep 0.5
mv s.vmdk w.vmdk
wait "$WPID"
WRC=$?
assert_true "the write after the switch fails (exit $WRC)" test "$WRC" -ne 0
assert_true "the message says the file is not replaced" grep -q 'w.vmdk: .*not replaced by a descriptor' "$TMP/w.err"
unchanged "the sparse file at the descriptor's path is unchanged" w.vmdk "$SSUM"

say "--- another disk's piece is never a parent"
mkdir victim evil
"$VMDKIT" create -t twoGbMaxExtentSparse victim/v.vmdk 1M >/dev/null || exit 1
"$VMDKIT" io victim/v.vmdk -c 'write -P 0x11 0 1M' >/dev/null || exit 1
VICTIM=$(sha256 victim/v-s001.vmdk)
"$VMDKIT" create -t twoGbMaxExtentSparse evil/e.vmdk 1M >/dev/null || exit 1
# a piece has no CID of its own: whatever the child names, the piece is refused first
sed -i 's|^parentCID=.*|parentCID=0badc0de\nparentFileNameHint="../victim/v-s001.vmdk"|' evil/e.vmdk
refused 7 "info --chain of a delta whose parent is another disk's piece" e.vmdk "$VMDKIT" info --chain evil/e.vmdk
assert_true "the message says a piece is never a parent" grep -q 'v-s001.vmdk.*one piece of a disk.*never a parent' "$ERR"
refused 7 "io write to that delta" e.vmdk "$VMDKIT" io evil/e.vmdk -c 'write -P 0xee 0 64k'
refused 7 "convert of that delta" e.vmdk "$VMDKIT" convert -O raw evil/e.vmdk out.raw
assert_true "convert left no output" test ! -e out.raw
refused 7 "commit of that delta" e.vmdk "$VMDKIT" commit evil/e.vmdk
expect_exit 2 "check reports the parent as corruption" "$VMDKIT" check evil/e.vmdk
assert_true "check names the piece" grep -q 'v-s001.vmdk.*one piece of a disk.*never a parent' "$OUT"
unchanged "the victim's piece is unchanged" victim/v-s001.vmdk "$VICTIM"
check "the victim reads its own data" "$VMDKIT" io -r victim/v.vmdk -c 'read -P 0x11 0 1M'

say "--- parentCID ffffffff (no parent) with a hint is malformed, whatever the hint names"
"$VMDKIT" create victim/whole.vmdk 1M >/dev/null || exit 1
"$VMDKIT" io victim/whole.vmdk -c 'write -P 0x22 0 1M' >/dev/null || exit 1
WHOLE=$(sha256 victim/whole.vmdk)
"$VMDKIT" create -t monolithicFlat evil/n.vmdk 1M >/dev/null || exit 1
sed -i 's|^parentCID=.*|parentCID=ffffffff\nparentFileNameHint="../victim/whole.vmdk"|' evil/n.vmdk
NSUM=$(sha256 evil/n.vmdk)
refused 4 "info of a base whose parentCID says none but names a hint" n.vmdk "$VMDKIT" info evil/n.vmdk
assert_true "the message names the field and the hint" grep -q 'n.vmdk: parentCID: ffffffff (no parent) although parentFileNameHint names "../victim/whole.vmdk"' "$ERR"
refused 4 "convert of it" n.vmdk "$VMDKIT" convert -O raw evil/n.vmdk out.raw
assert_true "convert left no output" test ! -e out.raw
refused 4 "commit of it" n.vmdk "$VMDKIT" commit evil/n.vmdk
expect_exit 2 "check reports it as corruption" "$VMDKIT" check evil/n.vmdk
assert_true "check names the field" grep -q 'parentCID: ffffffff (no parent) although parentFileNameHint' "$OUT"
unchanged "the named disk is unchanged" victim/whole.vmdk "$WHOLE"
unchanged "the file itself is unchanged" evil/n.vmdk "$NSUM"

say "--- a disk whose parent is its own extent is a loop"
"$VMDKIT" create -t twoGbMaxExtentSparse c.vmdk 1M >/dev/null || exit 1
sed -i 's|^parentCID=.*|parentCID=0badc0de\nparentFileNameHint="c-s001.vmdk"|' c.vmdk
refused 7 "info of the disk" c.vmdk "$VMDKIT" info c.vmdk
assert_true "the message says the chain is a loop" grep -q 'c-s001.vmdk.*the chain is a loop' "$ERR"
refused 7 "io write to the disk (a loop, not a lock of its own)" c.vmdk "$VMDKIT" io c.vmdk -c 'write -P 1 0 512'
expect_exit 2 "check reports the loop as corruption" "$VMDKIT" check c.vmdk
assert_true "check says the chain is a loop" grep -q 'is extent "c-s001.vmdk" of c.vmdk: the chain is a loop' "$OUT"

say "--- a virtual machine's files are not disks; probed raw is read-only"
printf '.encoding = "UTF-8"\nconfig.version = "8"\nvirtualHW.version = "19"\n' >Base.vmx
cp Base.vmx settings.txt
printf '.encoding = "UTF-8"\nsnapshot.lastUID = "1"\n' >Base.vmsd
head -c 8684 /dev/zero >Base.nvram
VMX=$(sha256 Base.vmx)
# info takes a machine too: a .vmx is described as the machine, never probed as a disk
check "info of a .vmx describes the machine" "$VMDKIT" info Base.vmx
assert_true "as a machine, not as a raw disk" sh -c "grep -q '^vm: ' '$OUT' && ! grep -qi 'raw' '$OUT'"
refused 4 "map of a .vmx" Base.vmx "$VMDKIT" map Base.vmx
assert_true "the message says it is a configuration, not a disk" grep -q "configuration (.vmx), not a disk" "$ERR"
refused 4 "io write to a .vmx" Base.vmx "$VMDKIT" io Base.vmx -c 'write -P 0x41 0 8'
unchanged "the .vmx is unchanged" Base.vmx "$VMX"
refused 4 "convert of a .vmx" Base.vmx "$VMDKIT" convert Base.vmx x.vmdk
assert_true "convert made no disk" test ! -e x.vmdk
refused 4 "info of a .vmsd" Base.vmsd "$VMDKIT" info Base.vmsd
refused 4 "info of a .nvram" Base.nvram "$VMDKIT" info Base.nvram
refused 4 "info of .vmx text under another name" settings.txt "$VMDKIT" info settings.txt
head -c 65536 /dev/urandom >r.img
RAW=$(sha256 r.img)
check "a file probed as raw is read" "$VMDKIT" io -r r.img -c 'read 0 512'
refused 9 "a file probed as raw is not written" r.img "$VMDKIT" io r.img -c 'write -P 0x41 0 8'
assert_true "the message asks for -f raw" grep -q -- '-f raw' "$ERR"
unchanged "the raw file is unchanged" r.img "$RAW"
check "with -f raw it is written" "$VMDKIT" io -f raw r.img -c 'write -P 0x41 0 8'
assert_eq "and holds the bytes written" 4141414141414141 "$(od -An -tx1 -N8 r.img | tr -d ' \n')"

say "--- atomic rewrites through a symbolic link keep the link"
printf 'a = "1"\n' >real.vmx
ln -s real.vmx link.vmx
check "vmx set through the link" "$VMDKIT" vmx set link.vmx a 2
assert_true "the link is still a link" test -L link.vmx
assert_eq "the file it leads to has the new value" 2 "$("$VMDKIT" vmx get real.vmx a)"
"$VMDKIT" create -t twoGbMaxExtentSparse t.vmdk 1M >/dev/null || exit 1
ln -s t.vmdk tl.vmdk
OLD_CID=$(grep '^CID=' t.vmdk)
check "a write through a linked descriptor (its CID changes)" "$VMDKIT" io tl.vmdk -c 'write -P 0x42 0 4k'
assert_true "the descriptor link is still a link" test -L tl.vmdk
assert_true "the descriptor it leads to has a new CID" test "$(grep '^CID=' t.vmdk)" != "$OLD_CID"
check "the disk reads the write" "$VMDKIT" io -r t.vmdk -c 'read -P 0x42 0 4k'
assert_eq "no temporary file is left" "" "$(ls -a | grep vmdkit-tmp)"

finish
