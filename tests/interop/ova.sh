#!/usr/bin/env bash
# ova.sh - vmdkit ova export and import: a Fusion-style machine (two disks
# on SCSI and NVMe, one of them a chain, a CD-ROM, two NICs, EFI with
# secure boot) to an .ova and back; the archive's members, headers and
# manifest; the disks against qemu-img; identity left out; --hw-max;
# .ovf folders; refusals; digests that do not match; an interrupted import.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img tar sha256sum sha1sum python3
mk_tmpdir

# ---- the machine --------------------------------------------------------
mkdir Fus.vmwarevm
check "a twoGbMaxExtentSparse system disk" "$VMDKIT" create -t twoGbMaxExtentSparse -a lsilogic Fus.vmwarevm/Fus.vmdk 64M
check "a monolithicSparse data disk" "$VMDKIT" create Fus.vmwarevm/Data.vmdk 40M
check "data on the system disk" "$VMDKIT" io Fus.vmwarevm/Fus.vmdk -c 'write -P 0xab 1M 3M' -c 'write -P 0x11 60M 64k'
check "data on the data disk" "$VMDKIT" io Fus.vmwarevm/Data.vmdk -c 'write -P 0x5c 0 1M' -c 'write -P 0x3d 39M 512'
cat >Fus.vmwarevm/Fus.vmx <<'EOF'
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "20"
displayName = "Fus"
guestOS = "arm-ubuntu-64"
numvcpus = "4"
cpuid.coresPerSocket = "2"
memsize = "4096"
firmware = "efi"
uefi.secureBoot.enabled = "TRUE"
nvram = "Fus.nvram"
pciBridge0.present = "TRUE"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "Fus.vmdk"
nvme0.present = "TRUE"
nvme0:0.present = "TRUE"
nvme0:0.fileName = "Data.vmdk"
sata0.present = "TRUE"
sata0:1.present = "TRUE"
sata0:1.deviceType = "cdrom-image"
sata0:1.fileName = "/Users/me/Downloads/ubuntu-24.04-live-server-arm64.iso"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "e1000e"
ethernet0.connectionType = "nat"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:12:34:56"
ethernet0.generatedAddressOffset = "0"
ethernet1.present = "TRUE"
ethernet1.virtualDev = "vmxnet3"
ethernet1.connectionType = "bridged"
ethernet1.addressType = "static"
ethernet1.address = "00:50:56:3f:00:01"
usb.present = "TRUE"
ehci.present = "TRUE"
usb_xhci.present = "TRUE"
sound.present = "TRUE"
sound.virtualDev = "hdaudio"
vmci0.present = "TRUE"
svga.vramSize = "268435456"
isolation.tools.copy.disable = "FALSE"
sharedFolder0.hostPath = "/Users/me/src"
uuid.bios = "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"
uuid.location = "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"
EOF
# the system disk becomes a chain: the export must flatten it
check "a snapshot of the machine" "$VMDKIT" snapshot Fus.vmwarevm
check "data in the snapshot" "$VMDKIT" io Fus.vmwarevm/Fus-000001.vmdk -c 'write -P 0xcd 2M 64k'
assert_eq "the machine now runs on the delta" "Fus-000001.vmdk" "$("$VMDKIT" vmx get Fus.vmwarevm/Fus.vmx scsi0:0.fileName)"

# ---- export ---------------------------------------------------------------
check "ova export" "$VMDKIT" ova export --extra-config Fus.vmwarevm Fus.ova
assert_eq "tar lists the members in order: ovf, mf, disks" "Fus.ovf Fus.mf Fus-disk1.vmdk Fus-disk2.vmdk" \
    "$(tar tf Fus.ova | tr '\n' ' ' | sed 's/ $//')"
assert_eq "every member is root/root (0/0), mode 0644" "4" \
    "$(tar --numeric-owner -tvf Fus.ova | grep -c '^-rw-r--r-- 0/0 ')"
# GNU tar's own USTAR writer: the headers must have its magic and fields
tar --format=ustar -cf ref.tar -C Fus.vmwarevm Fus.vmx 2>/dev/null
assert_eq "each member header carries POSIX ustar's magic, as tar --format=ustar writes" \
    "$(od -A n -c -j 257 -N 8 ref.tar)" "$(od -A n -c -j 257 -N 8 Fus.ova)"
if python3 - Fus.ova <<'EOF'; then pass "python's tarfile reads all four headers as USTAR (ustar\\000, uid/gid 0, mode 0644)"; else fail "a header is not plain USTAR"; fi
import sys
data = open(sys.argv[1], "rb").read()
off, n = 0, 0
while data[off:off + 512] != bytes(512):
    h = data[off:off + 512]
    assert h[257:265] == b"ustar\x0000", h[257:265]
    assert int(h[108:115], 8) == 0 and int(h[116:123], 8) == 0 and int(h[100:107], 8) == 0o644
    size = int(h[124:135], 8)
    off += 512 + (size + 511) // 512 * 512
    n += 1
assert n == 4 and len(data) % 10240 == 0, (n, len(data))
EOF
mkdir x && tar xf Fus.ova -C x
assert_true "the manifest has exactly the form SHA256(name)= hex, three lines" \
    test "$(grep -cE '^SHA256\([^ ()]+\)= [0-9a-f]{64}$' x/Fus.mf)" = 3 -a "$(wc -l <x/Fus.mf)" = 3
assert_eq "its digests are the files' (sha256sum)" \
    "$(cd x && sha256sum Fus.ovf Fus-disk1.vmdk Fus-disk2.vmdk | awk '{print "SHA256(" $2 ")= " $1}')" \
    "$(cat x/Fus.mf)"
assert_eq "the descriptor ends in blanks after </Envelope>, as ovftool's does" "</Envelope>" \
    "$(tail -n 1 x/Fus.ovf | sed 's/ *$//')"
check "qemu-img checks the first disk" qemu-img check x/Fus-disk1.vmdk
check "qemu-img checks the second disk" qemu-img check x/Fus-disk2.vmdk
check "disk 1 holds the flattened chain (qemu-img compare)" qemu-img compare x/Fus-disk1.vmdk Fus.vmwarevm/Fus-000001.vmdk
check "disk 2 holds the data disk (qemu-img compare)" qemu-img compare x/Fus-disk2.vmdk Fus.vmwarevm/Data.vmdk
assert_eq "the disks are streamOptimized" "streamOptimized streamOptimized" \
    "$(for d in x/Fus-disk1.vmdk x/Fus-disk2.vmdk; do descriptor_value "$d" createType; done | tr '\n' ' ' | sed 's/ $//')"
assert_eq "ovf:capacity is the disk's size in bytes" "67108864" \
    "$(grep -o 'ovf:capacity="[0-9]*"' x/Fus.ovf | head -n 1 | tr -dc 0-9)"
assert_eq "File ovf:size is the member's size" "$(file_size x/Fus-disk1.vmdk)" \
    "$(grep -o 'href="Fus-disk1.vmdk" ovf:id="file1" ovf:size="[0-9]*"' x/Fus.ovf | sed 's/.*size="//; s/"//')"
# 3 MiB + 64 KiB written to the base, 64 KiB of it overwritten in the delta
assert_eq "ovf:populatedSize counts the grains stored (uncompressed)" "$((3 * 1048576 + 65536))" \
    "$(grep -o 'ovf:populatedSize="[0-9]*"' x/Fus.ovf | head -n 1 | tr -dc 0-9)"
assert_eq "VirtualSystemType is vmx-20" "vmx-20" "$(sed -n 's/.*<vssd:VirtualSystemType>\(.*\)<.*/\1/p' x/Fus.ovf)"
assert_eq "guestOS arm-ubuntu-64 is vmw:osType armUbuntu64Guest, CIM id 94" 'ovf:id="94" vmw:osType="armUbuntu64Guest"' \
    "$(grep -o 'ovf:id="[0-9]*" vmw:osType="[^"]*"' x/Fus.ovf)"
for bad in '56 4d' '00:0c:29:12:34:56' '00:50:56:3f:00:01' 'ubuntu-24.04' '/Users/me' 'nvram' 'generatedAddress'; do
    assert_true "identity and host paths are not exported: no '$bad'" bash -c "! grep -qF '$bad' x/Fus.ovf"
done
assert_true "--extra-config exports a plain setting as vmw:ExtraConfig" \
    grep -q 'vmw:ExtraConfig ovf:required="false" vmw:key="isolation.tools.copy.disable" vmw:value="FALSE"' x/Fus.ovf
expect_exit 0 "ova check --target esxi-8.0: the export is clean" "$VMDKIT" ova check --target esxi-8.0 Fus.ova
expect_exit 1 "ova check --target esxi-7.0: vmx-20 is above ESXi 7.0's" "$VMDKIT" ova check --target esxi-7.0 Fus.ova
assert_true "... naming the hardware family" grep -q "^hardware-family: .*Unsupported hardware family 'vmx-20'" "$OUT"

check "ova export --hw-max 19" "$VMDKIT" ova export --hw-max 19 Fus.vmwarevm Fus19.ova
expect_exit 0 "ova check --target esxi-7.0 passes it" "$VMDKIT" ova check --target esxi-7.0 Fus19.ova
assert_eq "its VirtualSystemType is vmx-19" "vmx-19" \
    "$(tar xOf Fus19.ova Fus19.ovf | sed -n 's/.*<vssd:VirtualSystemType>\(.*\)<.*/\1/p')"
expect_exit 5 "ova export --hw-max 12 refuses the NVMe controller (needs 13)" "$VMDKIT" ova export --hw-max 12 Fus.vmwarevm Fus12.ova
assert_true "... naming it" grep -q "nvme0 (NVMe vmware.nvme.controller) needs virtual hardware version 13; --hw-max 12 would drop it" "$ERR"
assert_err_line "--hw-max refusal"
assert_true "... and nothing is left" bash -c '! ls -A | grep -q Fus12'
sed -i '/^nvme0/d; /^uefi.secureBoot/d' Fus.vmwarevm/Fus.vmx
expect_exit 5 "without NVMe, --hw-max 9 still refuses the SATA controller (needs 10)" "$VMDKIT" ova export --hw-max 9 Fus.vmwarevm Fus9.ova
assert_true "... naming sata0" grep -q "sata0 (SATA vmware.sata.ahci) needs virtual hardware version 10" "$ERR"
sed -i 's/^sata0/#sata0/' Fus.vmwarevm/Fus.vmx
expect_exit 5 "without SATA, --hw-max 7 refuses e1000e (needs 8)" "$VMDKIT" ova export --hw-max 7 Fus.vmwarevm Fus7.ova
assert_true "... naming ethernet0" grep -q "ethernet0 (e1000e) needs virtual hardware version 8" "$ERR"
sed -i 's/^#sata0/sata0/' Fus.vmwarevm/Fus.vmx
cp Fus.vmwarevm/Fus.vmx nvme.vmx.bak
printf 'nvme0.present = "TRUE"\nnvme0:0.present = "TRUE"\nnvme0:0.fileName = "Data.vmdk"\nuefi.secureBoot.enabled = "TRUE"\n' >>Fus.vmwarevm/Fus.vmx

check "ova export --checksum sha1" "$VMDKIT" ova export --checksum sha1 Fus.vmwarevm Sha1.ova
assert_eq "SHA1(name)= lines, matching sha1sum" \
    "$(mkdir s1 && tar xf Sha1.ova -C s1 && cd s1 && sha1sum Sha1.ovf Sha1-disk1.vmdk Sha1-disk2.vmdk | awk '{print "SHA1(" $2 ")= " $1}')" \
    "$(tar xOf Sha1.ova Sha1.mf)"
check "ova export --checksum sha512" "$VMDKIT" ova export --checksum sha512 Fus.vmwarevm Sha512.ova
assert_true "SHA512(name)= lines" test "$(tar xOf Sha512.ova Sha512.mf | grep -cE '^SHA512\([^)]+\)= [0-9a-f]{128}$')" = 3

expect_exit 9 "export onto an existing file is refused" "$VMDKIT" ova export Fus.vmwarevm Fus.ova
expect_exit 2 "an unknown --checksum is a usage error" "$VMDKIT" ova export --checksum md5 Fus.vmwarevm M.ova
expect_exit 9 "OUT must end in .ova or .ovf" "$VMDKIT" ova export Fus.vmwarevm Fus.tar
mkdir Fus.vmwarevm/Fus.vmx.lck
expect_exit 8 "a running machine is refused" "$VMDKIT" ova export Fus.vmwarevm Run.ova
rmdir Fus.vmwarevm/Fus.vmx.lck
assert_true "no temporary file is left beside the packages" bash -c '! ls -A | grep -q vmdkit-tmp'

mkdir Empty.vmwarevm
printf 'virtualHW.version = "10"\nmemsize = "256"\n' >Empty.vmwarevm/Empty.vmx
check "a machine without controllers, disks or NICs exports" "$VMDKIT" ova export Empty.vmwarevm Empty.ova
assert_eq "... as a descriptor and a manifest" "Empty.ovf Empty.mf" "$(tar tf Empty.ova | tr '\n' ' ' | sed 's/ $//')"
check "... and imports" "$VMDKIT" ova import Empty.ova Empty2.vmwarevm

# ---- an .ovf folder -------------------------------------------------------
mkdir folder
check "ova export to an .ovf" "$VMDKIT" ova export Fus.vmwarevm folder/Fus.ovf
assert_eq "the descriptor, its manifest and the disks side by side" "Fus-disk1.vmdk Fus-disk2.vmdk Fus.mf Fus.ovf" \
    "$(ls folder | tr '\n' ' ' | sed 's/ $//')"
assert_eq "the folder's manifest matches its files" \
    "$(cd folder && sha256sum Fus.ovf Fus-disk1.vmdk Fus-disk2.vmdk | awk '{print "SHA256(" $2 ")= " $1}')" "$(cat folder/Fus.mf)"
expect_exit 9 "an .ovf export whose disk name exists is refused" "$VMDKIT" ova export Fus.vmwarevm folder/Fus.ovf

# ---- import ---------------------------------------------------------------
check "ova import" "$VMDKIT" ova import Fus.ova Back.vmwarevm
assert_eq "it prints the new .vmx" "Back.vmwarevm/Fus.vmx" "$(cat "$OUT")"
src=Fus.vmwarevm/Fus.vmx dst=Back.vmwarevm/Fus.vmx
for key in virtualHW.version guestOS numvcpus cpuid.coresPerSocket memsize firmware uefi.secureBoot.enabled \
    scsi0.present scsi0.virtualDev nvme0.present sata0.present sata0:1.present \
    ethernet0.present ethernet0.virtualDev ethernet0.connectionType ethernet1.present ethernet1.virtualDev \
    ethernet1.connectionType usb.present ehci.present usb_xhci.present sound.present sound.virtualDev \
    vmci0.present svga.vramSize; do
    assert_eq "the same hardware: $key" "$("$VMDKIT" vmx get $src "$key" 2>&1)" "$("$VMDKIT" vmx get $dst "$key" 2>&1)"
done
assert_eq "the CD-ROM stays a CD-ROM (its host image is not carried)" "cdrom-raw" "$("$VMDKIT" vmx get $dst sata0:1.deviceType)"
assert_eq "disks on the same slots" "Fus-disk1.vmdk Fus-disk2.vmdk" \
    "$("$VMDKIT" vmx get $dst scsi0:0.fileName) $("$VMDKIT" vmx get $dst nvme0:0.fileName)"
check "the same content: disk 1 (qemu-img compare)" qemu-img compare Back.vmwarevm/Fus-disk1.vmdk Fus.vmwarevm/Fus-000001.vmdk
check "the same content: disk 2 (qemu-img compare)" qemu-img compare Back.vmwarevm/Fus-disk2.vmdk Fus.vmwarevm/Data.vmdk
assert_eq "disks are twoGbMaxExtentSparse by default" "twoGbMaxExtentSparse" "$(descriptor_value Back.vmwarevm/Fus-disk1.vmdk createType)"
assert_true "no identity was invented: no uuid.bios, no MAC" bash -c "! grep -qiE 'uuid|generatedAddress =|ethernet.\.address =' $dst"
check "vmdkit check passes the imported disk" "$VMDKIT" check Back.vmwarevm/Fus-disk2.vmdk
check "ova import -t monolithicSparse of the .ovf folder" "$VMDKIT" ova import -t monolithicSparse folder/Fus.ovf Mono.vmwarevm
assert_eq "... monolithicSparse disks" "monolithicSparse" "$(descriptor_value Mono.vmwarevm/Fus-disk1.vmdk createType)"
check "... with the same content" qemu-img compare Mono.vmwarevm/Fus-disk1.vmdk Fus.vmwarevm/Fus-000001.vmdk
check "ova import -t streamOptimized" "$VMDKIT" ova import -t streamOptimized Fus.ova Stream.vmwarevm
check "... with the same content" qemu-img compare Stream.vmwarevm/Fus-disk2.vmdk Fus.vmwarevm/Data.vmdk
expect_exit 9 "import into an existing folder is refused" "$VMDKIT" ova import Fus.ova Back.vmwarevm

# ---- digests that do not match ------------------------------------------
sums_before=$(sums_of Fus.ova)
cp Fus.ova bad-disk.ova
# a byte of disk 1's overhead (after its descriptor): the stream still
# decodes, only the digest can tell
off=$(python3 -c "import tarfile;print([m.offset_data for m in tarfile.open('Fus.ova') if m.name=='Fus-disk1.vmdk'][0] + 40000)")
printf 'X' | dd of=bad-disk.ova bs=1 seek="$off" conv=notrunc status=none
expect_exit 4 "a disk whose digest does not match the manifest fails" "$VMDKIT" ova import bad-disk.ova Bad.vmwarevm
assert_true "... naming the file" grep -q "Fus-disk1.vmdk: SHA256 digest [0-9a-f]* does not match the manifest's" "$ERR"
assert_err_line "digest mismatch"
assert_true "... and nothing is left under DIR's name, nor a hidden folder" bash -c '! ls -A | grep -q "Bad\|vmdkit-tmp"'
cp Fus.ova bad-ovf.ova
printf 'X' | dd of=bad-ovf.ova bs=1 seek=$((512 + $(file_size x/Fus.ovf) - 4)) conv=notrunc status=none
expect_exit 4 "a descriptor whose digest does not match fails before anything is made" "$VMDKIT" ova import bad-ovf.ova Bad.vmwarevm
assert_true "... naming the descriptor" grep -q "Fus.ovf: SHA256 digest" "$ERR"
expect_exit 1 "ova check reports the mismatch" "$VMDKIT" ova check bad-disk.ova
assert_true "... as manifest-digest of Fus-disk1.vmdk" grep -q "^manifest-digest: bad-disk.ova: Fus-disk1.vmdk: SHA256" "$OUT"
assert_eq "the package read is unchanged" "$sums_before" "$(sums_of Fus.ova)"

# ---- an interrupted import leaves nothing under DIR's name ---------------
mkdir Big.vmwarevm
random_bytes 7 $((192 << 20)) >big.raw
check "a disk of 192 MiB of random data" "$VMDKIT" convert -f raw -t monolithicSparse big.raw Big.vmwarevm/Big.vmdk
rm big.raw
printf 'virtualHW.version = "14"\nmemsize = "512"\nscsi0.present = "TRUE"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "Big.vmdk"\n' >Big.vmwarevm/Big.vmx
check "export it" "$VMDKIT" ova export Big.vmwarevm Big.ova
mkfifo progress.fifo
"$VMDKIT" ova import --progress=json Big.ova Killed.vmwarevm 2>progress.fifo >/dev/null &
pid=$!
killed=0
while read -r line; do
    case $line in
    *'"done":0,'* | *finished*) ;;
    *'"done":'*)
        kill -KILL "$pid" 2>/dev/null && killed=1
        break
        ;;
    esac
done <progress.fifo
wait "$pid" 2>/dev/null
assert_eq "the import was killed half way" 1 "$killed"
assert_true "nothing is under DIR's name" test ! -e Killed.vmwarevm
assert_true "what was made is in the hidden .Killed.vmwarevm.vmdkit-tmp-* folder" bash -c 'ls -d .Killed.vmwarevm.vmdkit-tmp-* >/dev/null'

# ---- and an interrupted export leaves nothing under OUT's name -----------
"$VMDKIT" ova export --progress=json Big.vmwarevm Cut.ova 2>progress.fifo >/dev/null &
pid=$!
killed=0
while read -r line; do
    case $line in
    *'"done":0,'* | *finished*) ;;
    *'"done":'*)
        kill -KILL "$pid" 2>/dev/null && killed=1
        break
        ;;
    esac
done <progress.fifo
wait "$pid" 2>/dev/null
assert_eq "the export was killed half way" 1 "$killed"
assert_true "nothing is under OUT's name" test ! -e Cut.ova
assert_true "the partial archive is the hidden .Cut.ova.vmdkit-tmp-* file" bash -c 'ls .Cut.ova.vmdkit-tmp-* >/dev/null'
finish
