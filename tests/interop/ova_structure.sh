#!/usr/bin/env bash
# ova_structure.sh - the OVF vmdkit exports has the structure of the
# ovftool-written descriptors of ../shared/vm-corpus, element by element,
# as read by an independent XML parser (python3-lxml, see ova_tool.py
# structure): namespaces, section order, the VirtualHardwareSection's
# layout, System, each Item's rasd children (sorted, and only those VMware
# writes for its ResourceType), ovf:required where VMware sets it,
# ResourceSubTypes of VMware's vocabulary, References and Disk attributes
# against the archive's members.  qemu-img then reads the disks.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img tar
VMC=${VMDKIT_VM_CORPUS:-${VMDKIT_SOURCE_DIR:-$(dirname "$0")/../..}/../shared/vm-corpus}
[ -f "$VMC/SOURCES.md" ] || skip "no vm corpus at $VMC"
VMC=$(cd "$VMC" && pwd)
PY=
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import lxml' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || skip "python3-lxml is not installed"
TOOL=$(cd "$(dirname "$0")" && pwd)/ova_tool.py
mk_tmpdir

# ovftool 4.3 and 4.x, and VMware ESX/VirtualCenter exports
REFS=("$VMC/govmomi/esxvmovf-25262174.ovf" "$VMC/govmomi/photon5.ovf" "$VMC/cot/vmware.ovf"
    "$VMC/govmomi/111390-Ubuntu-16.04-64-Desktop-Open-VM-Tools.ovf" "$VMC/govmomi/ttylinux-pc_i486-16.1.ovf")

mkdir W.vmwarevm
"$VMDKIT" create -t twoGbMaxExtentSparse -a lsilogic W.vmwarevm/W.vmdk 48M >/dev/null
"$VMDKIT" create W.vmwarevm/W2.vmdk 8M >/dev/null
"$VMDKIT" io W.vmwarevm/W.vmdk -c 'write -P 0x61 0 2M' >/dev/null
"$VMDKIT" io W.vmwarevm/W2.vmdk -c 'write -P 0x62 4M 64k' >/dev/null
cat >W.vmwarevm/W.vmx <<'EOF2'
virtualHW.version = "19"
displayName = "W"
guestOS = "windows9-64"
numvcpus = "2"
memsize = "2048"
firmware = "efi"
scsi0.present = "TRUE"
scsi0.virtualDev = "lsisas1068"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "W.vmdk"
scsi1.present = "TRUE"
scsi1.virtualDev = "buslogic"
scsi1:3.present = "TRUE"
scsi1:3.fileName = "W2.vmdk"
ide1:0.present = "TRUE"
ide1:0.deviceType = "atapi-cdrom"
ide1:0.fileName = "auto detect"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "e1000"
ethernet0.networkName = "VM Network"
usb.present = "TRUE"
ehci.present = "TRUE"
sound.present = "TRUE"
sound.virtualDev = "es1371"
vmci0.present = "TRUE"
EOF2
check "export a Workstation-style machine" "$VMDKIT" ova export W.vmwarevm W.ova
mkdir x && tar xf W.ova -C x
check "its descriptor has ovftool's structure (lxml)" "$PY" "$TOOL" structure x/W.ovf W.ova "${REFS[@]}"
assert_eq "... with the Items VMware writes: CPU, memory, IDE, SCSI, disks, CD, NIC, USB, video, VMCI and sound" \
    "types 1 3 4 5 6 10 15 17 23 24" "$(tail -n 1 "$OUT")"
assert_true "lsisas1068 is written lsilogicsas, buslogic buslogic" \
    bash -c "grep -q '<rasd:ResourceSubType>lsilogicsas<' x/W.ovf && grep -q '<rasd:ResourceSubType>buslogic<' x/W.ovf"
assert_true "the network is ESXi's port group" grep -q '<Network ovf:name="VM Network">' x/W.ovf
for d in W-disk1 W-disk2; do
    check "qemu-img reads $d" qemu-img check "x/$d.vmdk"
done
check "qemu-img compare: disk 1" qemu-img compare x/W-disk1.vmdk W.vmwarevm/W.vmdk
check "qemu-img compare: disk 2" qemu-img compare x/W-disk2.vmdk W.vmwarevm/W2.vmdk
assert_eq "ovf:capacity equals qemu-img's virtual size" "$(qemu_size x/W-disk1.vmdk)" \
    "$(grep -o 'ovf:capacity="[0-9]*"' x/W.ovf | head -n 1 | tr -dc 0-9)"
expect_exit 0 "ova check --target esxi-7.0 passes it" "$VMDKIT" ova check --target esxi-7.0 W.ova
# the structural test can fail: an Item whose rasd children are out of order
"$PY" - x/W.ovf bad.ovf <<'EOF2'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = next(k for k, l in enumerate(lines) if "<rasd:AllocationUnits>" in l)
lines[i], lines[i + 1] = lines[i + 1], lines[i]
open(sys.argv[2], "w").write("\n".join(lines))
EOF2
expect_exit 1 "a descriptor with unsorted rasd children fails the structural test" "$PY" "$TOOL" structure bad.ovf W.ova "${REFS[@]}"
assert_true "... saying so" grep -q "not sorted by name" "$OUT"
sed 's/ovf:capacityAllocationUnits="byte"/ovf:capacityAllocationUnits="byte * 2^20"/' x/W.ovf >bad2.ovf
expect_exit 1 "... and one with other capacity units" "$PY" "$TOOL" structure bad2.ovf W.ova "${REFS[@]}"
finish
