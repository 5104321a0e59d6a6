#!/usr/bin/env bash
# Linked clones of a whole virtual machine, measured on a Fusion-style
# Base.vmwarevm (a .vmx with a SCSI disk, a MAC address and BIOS UUIDs, an
# nvram file; an 8 GiB twoGbMaxExtentSparse disk holding 1 GiB of data):
#  1. `vmdkit clone --linked` takes under 1 MiB of new space (its time is
#     printed, not asserted); qemu-img follows the clone's chain to the base and reads the
#     same content; writes into the clone leave every base extent file
#     byte-identical; the source now writes to its own new delta; the
#     clone's .vmx is the source's with exactly the expected changes.
#  2. ten more linked clones: `vmdkit tree` shows one family holding them
#     all, and --json lists the same.
#  3. `vmdkit mv` of the base machine into another folder: every clone
#     still opens (qemu-img info --backing-chain, vmdkit info --chain).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img qemu-io python3
mk_tmpdir

now_ms() { echo $(($(date +%s%N) / 1000000)); }
kib_used() { du -sk "$1" | cut -f1; }
# chain_end DISK: the real path of the last image of qemu-img's chain.
chain_end() {
    qemu-img info --backing-chain --output=json "$1" >"$TMP/chain.json" 2>"$ERR" || return 1
    realpath "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[-1]["filename"])' "$TMP/chain.json")"
}
# extent_sums DIR: sha256 of the base disk's descriptor and extent files.
extent_sums() { sums_of "$1"/Base.vmdk "$1"/Base-s00[1-5].vmdk; }

mkdir lib
cd lib || exit 1
B=Base.vmwarevm
mkdir $B
cat >$B/Base.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
# Created by VMware Fusion
displayName = "Base"
guestOS = "ubuntu-64"
memsize = "2048"
numvcpus = "2"
nvram = "Base.nvram"
extendedConfigFile = "Base.vmxf"
pciBridge0.present = "TRUE"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "Base.vmdk"
scsi0:0.redo = ""
sata0.present = "TRUE"
sata0:1.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "/Users/test/ubuntu.iso"
  # network: NAT
ethernet0.present = "TRUE"
ethernet0.connectionType = "nat"
ethernet0.addressType = "generated"
ethernet0.virtualDev = "e1000e"
ethernet0.generatedAddress = "00:0c:29:3a:5b:7c"
ethernet0.generatedAddressOffset = "0"
uuid.bios = "56 4d 3a 5b 7c 9d 0e 1f-20 31 42 53 64 75 86 97"
uuid.location = "56 4d 3a 5b 7c 9d 0e 1f-20 31 42 53 64 75 86 97"
checkpoint.vmState = ""
tools.syncTime = "TRUE"   # keep the clock
EOF
cp $B/Base.vmx "$TMP/base-orig.vmx"
random_bytes 7 8684 >$B/Base.nvram
printf '<?xml version="1.0"?>\n<Foundry><VM><VMId type="string">52 1a</VMId></VM></Foundry>\n' >$B/Base.vmxf
printf 'encoding = "UTF-8"\nsnapshot.lastUID = "1"\n' >$B/Base.vmsd

say "--- the base machine: 8 GiB disk, 1 GiB of data in 64 MiB pieces"
check "create the base disk" "$VMDKIT" create -t twoGbMaxExtentSparse -a lsilogic $B/Base.vmdk 8G
writes=()
for k in $(seq 0 15); do
    off=$((k * 512))
    # across the first and the second extent boundary (4064 and 8128 MiB)
    [ "$k" -eq 8 ] && off=4032
    [ "$k" -eq 15 ] && off=8096
    writes+=(-c "write -P $((0x10 + k)) ${off}M 64M")
done
t0=$(now_ms)
check "write 1 GiB into the base" "$VMDKIT" io $B/Base.vmdk "${writes[@]}" -c flush
say "       (1 GiB written in $(($(now_ms) - t0)) ms)"
assert_true "the base stores 1 GiB (du >= 1048576 KiB)" test "$(kib_used $B)" -ge 1048576
extent_sums $B >"$TMP/base-sums.txt"
cp $B/Base.vmsd "$TMP/base.vmsd"

say "--- 1. vmdkit clone --linked"
cd .. && before_kib=$(kib_used lib) && cd lib || exit 1
t0=$(now_ms)
check "vmdkit clone --linked Base.vmwarevm Clone.vmwarevm" "$VMDKIT" clone --linked $B Clone.vmwarevm
elapsed=$(($(now_ms) - t0))
cp "$OUT" "$TMP/clone-out.txt"
cd .. && new_kib=$(($(kib_used lib) - before_kib)) && cd lib || exit 1
say "       linked clone of the 8 GiB machine with 1 GiB of data: $elapsed ms, $new_kib KiB of new space"
assert_true "it used under 1 MiB of new space ($new_kib KiB: the clone folder and the source's new delta)" \
    test "$new_kib" -lt 1024
assert_eq "the clone's .vmx is printed first" "$PWD/Clone.vmwarevm/Clone.vmx" "$(head -n 1 "$TMP/clone-out.txt")"

C=Clone.vmwarevm/Clone.vmdk
assert_eq "the clone's disk names its parent relative and normalised" "../Base.vmwarevm/Base.vmdk" \
    "$(descriptor_value $C parentFileNameHint)"
assert_eq "the clone's parentCID is the base's CID" "$(descriptor_value $B/Base.vmdk CID)" \
    "$(descriptor_value $C parentCID)"
assert_eq "the clone's disk keeps the adapter type" "lsilogic" "$(descriptor_value $C ddb.adapterType)"
if end=$(chain_end $C); then
    assert_eq "qemu-img info --backing-chain: the clone's chain ends at the base disk" "$(realpath $B/Base.vmdk)" "$end"
else
    fail "qemu-img info --backing-chain on the clone"
fi
check "qemu-img compare clone base" qemu-img compare $C $B/Base.vmdk
assert_true "qemu-img: the contents are identical" grep -q "identical" "$OUT"

check "qemu-io writes into the clone" qemu-io -c 'write -P 0xee 10M 1M' -c 'write -P 0xef 4056M 16M' \
    -c 'write -z 3G 64k' $C
check "qemu-io reads the clone's new data" qemu-io -r -c 'read -P 0xee 10M 1M' -c 'read -P 0xef 4056M 16M' $C
check "the base still reads its own data there" "$VMDKIT" io -r $B/Base.vmdk -c 'read -P 0x10 10M 1M' \
    -c 'read -P 0x18 4056M 16M'
assert_eq "every extent file of the base is byte-identical to before" "$(cat "$TMP/base-sums.txt")" \
    "$(extent_sums $B)"
expect_exit 1 "qemu-img compare now sees the clone's writes" qemu-img compare $C $B/Base.vmdk

check "vmx get: the source's disk" "$VMDKIT" vmx get $B/Base.vmx scsi0:0.fileName &&
    assert_eq "the source machine now writes to its own new delta" "Base-000001.vmdk" "$(cat "$OUT")"
assert_eq "the source's new delta has the base as parent" "Base.vmdk" \
    "$(descriptor_value $B/Base-000001.vmdk parentFileNameHint)"
assert_eq "source line: 'source now writes to' its delta" "source now writes to $B/Base-000001.vmdk" \
    "$(sed -n 2p "$TMP/clone-out.txt")"
sed 's/^scsi0:0.fileName = "Base.vmdk"$/scsi0:0.fileName = "Base-000001.vmdk"/' "$TMP/base-orig.vmx" >"$TMP/expected-base.vmx"
assert_true "the source .vmx changed in exactly that line" cmp -s "$TMP/expected-base.vmx" $B/Base.vmx
check "the source machine writes into its delta" "$VMDKIT" io $B/Base-000001.vmdk -c 'write -P 0x5a 0 1M'
assert_eq "the base is still byte-identical" "$(cat "$TMP/base-sums.txt")" "$(extent_sums $B)"
check "the source's snapshots" "$VMDKIT" snapshot list --json $B
assert_eq "the source's .vmsd records the freeze as a snapshot of the base disk" \
    "1 Linked clone Clone scsi0:0=Base.vmdk" \
    "$(jq -r '.snapshots | length as $n | .[0] | "\($n) \(.name | sub(" [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$"; "")) \(.disks | map("\(.node)=\(.file)") | join(","))"' "$OUT")"
assert_eq "the source folder gained only its new delta" \
    "Base-000001-s001.vmdk Base-000001-s002.vmdk Base-000001-s003.vmdk Base-000001.vmdk Base-s001.vmdk Base-s002.vmdk Base-s003.vmdk Base.nvram Base.vmdk Base.vmsd Base.vmx Base.vmxf" \
    "$(ls $B | tr '\n' ' ' | sed 's/ $//')"
assert_eq "the clone folder holds the clone's files, its own .vmsd among them" \
    "Clone-s001.vmdk Clone-s002.vmdk Clone-s003.vmdk Clone.nvram Clone.vmdk Clone.vmsd Clone.vmx Clone.vmxf" \
    "$(ls Clone.vmwarevm | tr '\n' ' ' | sed 's/ $//')"
assert_true "the nvram was copied" cmp -s $B/Base.nvram Clone.vmwarevm/Clone.nvram
assert_true "the vmxf was copied" cmp -s $B/Base.vmxf Clone.vmwarevm/Clone.vmxf

# the expected transformation: new name and files, identity and state
# removed, origin recorded; every other byte kept
cat >"$TMP/expected-clone.vmx" <<EOF
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
# Created by VMware Fusion
displayName = "Clone"
guestOS = "ubuntu-64"
memsize = "2048"
numvcpus = "2"
nvram = "Clone.nvram"
extendedConfigFile = "Clone.vmxf"
pciBridge0.present = "TRUE"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsilogic"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "Clone.vmdk"
scsi0:0.redo = ""
sata0.present = "TRUE"
sata0:1.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "/Users/test/ubuntu.iso"
  # network: NAT
ethernet0.present = "TRUE"
ethernet0.connectionType = "nat"
ethernet0.addressType = "generated"
ethernet0.virtualDev = "e1000e"
tools.syncTime = "TRUE"   # keep the clock
filesearchpath = ".;$PWD/$B"
EOF
if cmp -s "$TMP/expected-clone.vmx" Clone.vmwarevm/Clone.vmx; then
    pass "the clone's .vmx: displayName, files, no uuid.bios/uuid.location/generatedAddress, filesearchpath; the rest byte-identical"
else
    fail "the clone's .vmx differs from the expected transformation"
    diff "$TMP/expected-clone.vmx" Clone.vmwarevm/Clone.vmx | head -n 20 | sed 's/^/       /'
fi
printf '.encoding = "UTF-8"\ncloneOf0 = "%s/%s/Base.vmx"\nnumCloneOf = "1"\nsentinel0 = "Clone.vmdk"\nnumSentinels = "1"\n' \
    "$PWD" "$B" >"$TMP/expected-clone.vmsd"
assert_true "the clone's .vmsd records its origin and its delta, as Workstation's linked clones do" \
    cmp -s "$TMP/expected-clone.vmsd" Clone.vmwarevm/Clone.vmsd
expect_exit 6 "vmx get uuid.bios on the clone: absent" "$VMDKIT" vmx get Clone.vmwarevm/Clone.vmx uuid.bios
expect_exit 9 "a second clone onto the existing folder is refused" \
    "$VMDKIT" clone --linked $B Clone.vmwarevm
assert_eq "the refused clone changed nothing in the source" "Base-000001.vmdk" \
    "$("$VMDKIT" vmx get $B/Base.vmx scsi0:0.fileName)"

say "--- 2. ten linked clones of one base, and vmdkit tree"
slowest=0
for i in $(seq -w 1 10); do
    t0=$(now_ms)
    run "$VMDKIT" clone --linked $B "Test$i.vmwarevm"
    ms=$(($(now_ms) - t0))
    [ "$ms" -gt "$slowest" ] && slowest=$ms
    [ "$RC" -eq 0 ] || { fail "clone --linked Test$i: exit $RC"; show_output; }
done
say "       ten more linked clones: the slowest took $slowest ms"
assert_eq "every clone exists" 10 "$(ls -d Test??.vmwarevm/Test??.vmx | wc -l)"
check "vmdkit tree" "$VMDKIT" tree && cp "$OUT" "$TMP/tree.txt"
sed 's/^/       /' "$TMP/tree.txt"
assert_eq "tree: one family (one line at the left margin)" 1 \
    "$(grep -cvE '^$|^[0-9]+ famil|^Problems:|^[ │├└]' "$TMP/tree.txt")"
assert_true "tree: the summary says 1 family" grep -q '^1 family, ' "$TMP/tree.txt"
assert_eq "tree: ten lines for the ten clones, each with its VM" 10 \
    "$(grep -cE '(├|└)── Test[0-9]{2}\.vmwarevm/Test[0-9]{2}\.vmdk .* VM "Test[0-9]{2}"' "$TMP/tree.txt")"
assert_eq "tree: the first clone is there too" 1 "$(grep -c 'Clone.vmwarevm/Clone.vmdk' "$TMP/tree.txt")"
assert_eq "tree: no problem flagged" 0 "$(grep -c '\[' "$TMP/tree.txt")"
check "vmdkit tree --json" "$VMDKIT" tree --json . && cp "$OUT" "$TMP/tree.json"
assert_eq "tree --json: one family with the ten clones (and Clone), no problem" "1 10 1 0 Base.vmwarevm/Base.vmdk" \
    "$(python3 - "$TMP/tree.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
nodes = d["disks"]
tests = [n for n in nodes if n["path"].startswith("Test") and n["vm"] == n["path"].split(".")[0]]
clone = [n for n in nodes if n["path"] == "Clone.vmwarevm/Clone.vmdk" and n["vm"] == "Clone"]
# the CD-ROM image the machines name is not on this host: that is the only problem
other = [p for p in d["problems"] if "sata0:1.fileName: \"/Users/test/ubuntu.iso\": not found" not in p["message"]]
print(len(d["families"]), len(tests), len(clone), len(other), nodes[d["families"][0]]["path"])
EOF
)"

say "--- 3. vmdkit mv of the base machine to another folder"
mkdir Templates
check "vmdkit mv Base.vmwarevm Templates/" "$VMDKIT" mv $B Templates/
assert_true "mv reports the rewritten hints" grep -q "^updated .*Test10.vmwarevm/Test10.vmdk: parentFileNameHint" "$OUT"
assert_true "the folder moved" test -d Templates/$B -a ! -e $B
base_real=$(realpath Templates/$B/Base.vmdk)
for vm in Clone Test01 Test02 Test03 Test04 Test05 Test06 Test07 Test08 Test09 Test10; do
    disk=$vm.vmwarevm/$vm.vmdk
    if end=$(chain_end "$disk"); then
        assert_eq "$vm: qemu-img info --backing-chain ends at the moved base" "$base_real" "$end"
    else
        fail "$vm: qemu-img info --backing-chain fails"
        show_output
    fi
    check "$vm: vmdkit info --chain" "$VMDKIT" info --chain "$disk"
done
check "the base machine's own disk still opens" "$VMDKIT" info --chain \
    "Templates/$B/$("$VMDKIT" vmx get Templates/$B/Base.vmx scsi0:0.fileName)"
assert_eq "Test01's hint is relative and normalised" "../Templates/Base.vmwarevm/Base-000001.vmdk" \
    "$(descriptor_value Test01.vmwarevm/Test01.vmdk parentFileNameHint)"
check "Test05's cloneOf0 follows the move" "$VMDKIT" vmx get Test05.vmwarevm/Test05.vmsd cloneOf0 &&
    assert_eq "cloneOf0 names the moved .vmx" "$PWD/Templates/$B/Base.vmx" "$(cat "$OUT")"
assert_eq "the moved base's extents are byte-identical" "$(sed "s#  $B/#  Templates/$B/#" "$TMP/base-sums.txt")" \
    "$(extent_sums Templates/$B)"
check "qemu-io reads the clone's writes and the moved base's data" \
    qemu-io -r -c 'read -P 0xee 10M 1M' -c 'read -P 0x11 512M 1M' $C
check "vmdkit tree after the move" "$VMDKIT" tree --json . &&
    assert_eq "still one family, no problem" "1 0" \
        "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["families"]), len([p for p in d["problems"] if "ubuntu.iso" not in p["message"]]))' "$OUT")"

finish
