#!/usr/bin/env bash
# ova_check.sh - vmdkit ova check: each way a package is known to be
# rejected by vCenter, ESXi, Workstation or virt-v2v (see the notes on
# OVF/OVA) is made from a clean export, and check must name it; the clean
# package passes.  Nothing is written into a package checked.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need tar sha256sum openssl python3 qemu-img gzip
mk_tmpdir

mkdir M.vmwarevm
"$VMDKIT" create -t monolithicSparse M.vmwarevm/M.vmdk 16M >/dev/null
"$VMDKIT" io M.vmwarevm/M.vmdk -c 'write -P 0x42 0 1M' >/dev/null
printf 'virtualHW.version = "13"\nguestOS = "other4xlinux-64"\nmemsize = "1024"\nscsi0.present = "TRUE"\nscsi0.virtualDev = "lsilogic"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "M.vmdk"\nethernet0.present = "TRUE"\nethernet0.virtualDev = "vmxnet3"\n' >M.vmwarevm/M.vmx
check "export a machine" "$VMDKIT" ova export M.vmwarevm M.ova
for t in esxi-6.5 esxi-7.0 esxi-8.0 workstation virtualbox virt-v2v; do
    expect_exit 0 "the export is clean for $t" "$VMDKIT" ova check --target "$t" M.ova
    assert_eq "... and says nothing" "" "$(cat "$OUT")"
done
expect_exit 9 "an unknown target is refused" "$VMDKIT" ova check --target hyper-v M.ova
mkdir p && tar xf M.ova -C p
F="M.ovf M.mf M-disk1.vmdk"

# pack DIR OUT FORMAT FILE...: a package with these members in this order
pack() {
    local dir=$1 out=$2 fmt=$3
    shift 3
    tar --format="$fmt" --owner=0 --group=0 -cf "$out" -C "$dir" "$@"
}
# remanifest DIR [FORMAT]: rewrite DIR/M.mf for the files there
remanifest() {
    (cd "$1" && for f in M.ovf M-disk1.vmdk; do
        case ${2:-ovftool} in
        ovftool) printf 'SHA256(%s)= %s\n' "$f" "$(sha256sum "$f" | cut -d' ' -f1)" ;;
        tag) sha256sum --tag "$f" ;;
        openssl3) openssl dgst -sha256 "$f" | sed 's/^SHA256(/SHA2-256(/' ;;
        md5) printf 'MD5(%s)= %s\n' "$f" "$(md5sum "$f" | cut -d' ' -f1)" ;;
        esac
    done >M.mf)
}
# finding CODE DESC OVA [TARGET]: check exits 1 and reports CODE
finding() {
    local code=$1 desc=$2 ova=$3 target=${4:-esxi-8.0}
    local before
    before=$(sums_of "$ova")
    expect_exit 1 "$desc" "$VMDKIT" ova check --target "$target" "$ova" &&
        assert_true "... reported as $code: $(grep -m1 "^$code:" "$OUT" | cut -c1-150)" grep -q "^$code: " "$OUT"
    assert_eq "... the package is unchanged" "$before" "$(sums_of "$ova")"
}
variant() { rm -rf v && cp -r p v; }

pack p same.ova ustar $F
expect_exit 0 "repacked by tar --format=ustar, still clean" "$VMDKIT" ova check same.ova

# member order (osbuild/image-builder#431: Workstation and ovftool need the OVF first)
pack p order1.ova ustar M-disk1.vmdk M.ovf M.mf
finding member-order "the disk before the descriptor" order1.ova
pack p order2.ova ustar M.ovf M-disk1.vmdk M.mf
expect_exit 0 "the manifest last (DSP0243 allows it)" "$VMDKIT" ova check order2.ova
variant && printf 'x' >v/M.cert
pack v order3.ova ustar M.ovf M-disk1.vmdk M.mf M.cert
expect_exit 0 "the manifest and the certificate last" "$VMDKIT" ova check order3.ova
pack v order4.ova ustar M.ovf M.cert M.mf M-disk1.vmdk
finding member-order "the manifest neither second nor last" order4.ova

# tar format (macOS tar and importers that need USTAR)
pack p gnu.ova gnu $F
finding tar-format "a GNU tar archive" gnu.ova
pack p pax.ova pax $F
finding tar-format "a pax archive" pax.ova

# manifest syntax and algorithm
variant && remanifest v tag && pack v tag.ova ustar $F
finding manifest-syntax "sha256sum --tag's 'SHA256 (name) = hex' (home-assistant/operating-system PR #1674)" tag.ova
assert_true "... citing vCenter's 'Invalid OVF checksum algorithm'" grep -q "Invalid OVF checksum algorithm" "$OUT"
variant && remanifest v openssl3 && pack v sha2.ova ustar $F
finding manifest-algorithm "OpenSSL 3's 'SHA2-256(name)= hex' (home-assistant/operating-system#3654)" sha2.ova
variant && remanifest v md5 && pack v md5.ova ustar $F
finding manifest-algorithm "an MD5 manifest" md5.ova
variant && printf 'garbage line\n' >>v/M.mf && pack v junk.ova ustar $F
finding manifest-syntax "a line that is no digest line" junk.ova
variant && sed -i '/M-disk1/d' v/M.mf && pack v partial.ova ustar $F
finding manifest-digest "a file missing from the manifest" partial.ova
variant && remanifest v && cp p/M.mf v/M.mf && printf 'y' >>v/M-disk1.vmdk && pack v changed.ova ustar $F
finding manifest-digest "a disk changed after the manifest was written" changed.ova

# hardware family against the target (librenms/packer-builds#36, Seagate/cortx#417)
variant && sed -i 's/vmx-13/vmx-20/' v/M.ovf && remanifest v && pack v hw20.ova ustar $F
finding hardware-family "vmx-20 on ESXi 7.0" hw20.ova esxi-7.0
expect_exit 0 "vmx-20 on ESXi 8.0 is fine" "$VMDKIT" ova check --target esxi-8.0 hw20.ova
variant && sed -i 's/vmx-13/vmx-17/' v/M.ovf && remanifest v && pack v hw17.ova ustar $F
finding hardware-family "vmx-17 on ESXi 6.5" hw17.ova esxi-6.5
variant && sed -i 's/vmx-13/virtualbox-2.2/' v/M.ovf && remanifest v && pack v vbox.ova ustar $F
finding virtualbox-family "VirtualBox's family on ESXi (owncloud-archive/vm#53)" vbox.ova
finding virtualbox-family "VirtualBox's family on Workstation" vbox.ova workstation
expect_exit 0 "VirtualBox's family for VirtualBox is fine" "$VMDKIT" ova check --target virtualbox vbox.ova

# disks: capacity (teamdfir/sift#220, siderolabs/talos#7627), EOS, gzip (EMCECS#329)
variant && sed -i 's/ovf:capacity="16777216"/ovf:capacity="8388608"/' v/M.ovf && remanifest v && pack v cap.ova ustar $F
finding capacity "ovf:capacity smaller than the VMDK's" cap.ova
assert_true "... citing 'Capacity of uploaded disk is larger than requested'" grep -q "larger than requested" "$OUT"
variant && sed -i 's/ovf:capacity="16777216"/ovf:capacity="17179869184"/' v/M.ovf && remanifest v && pack v cap2.ova ustar $F
finding capacity "ovf:capacity 1024 times the VMDK's (a units slip)" cap2.ova
variant && truncate -s -512 v/M-disk1.vmdk && size=$(file_size v/M-disk1.vmdk) &&
    /usr/bin/env python3 -c "
import re,sys; p='v/M.ovf'; s=open(p).read()
s=re.sub(r'(href=\"M-disk1.vmdk\" ovf:id=\"file1\" ovf:size=\")\d+', r'\g<1>$size', s); open(p,'w').write(s)" &&
    remanifest v && pack v eos.ova ustar $F
finding stream-eos "a stream without its end-of-stream marker (qemu#1357)" eos.ova
variant && dd if=/dev/zero of=v/M-disk1.vmdk bs=512 seek=$(($(file_size v/M-disk1.vmdk) / 512 - 3)) count=1 conv=notrunc status=none &&
    remanifest v && pack v nofooter.ova ustar $F
finding stream-eos "a stream whose header defers the directory to a footer that is missing" nofooter.ova
# qemu-img's streams put the directory up front and end without a footer: valid
variant && rm v/M-disk1.vmdk && qemu-img convert -O vmdk -o subformat=streamOptimized M.vmwarevm/M.vmdk v/M-disk1.vmdk &&
    sed -i "s/ovf:size=\"[0-9]*\"/ovf:size=\"$(file_size v/M-disk1.vmdk)\"/" v/M.ovf && remanifest v && pack v qemu.ova ustar $F
expect_exit 0 "a disk written by qemu-img convert -o subformat=streamOptimized checks clean" "$VMDKIT" ova check qemu.ova
check "... and imports" "$VMDKIT" ova import qemu.ova Q.vmwarevm
check "... with its content" qemu-img compare Q.vmwarevm/M-disk1.vmdk M.vmwarevm/M.vmdk
variant && gzip -n v/M-disk1.vmdk && mv v/M-disk1.vmdk.gz v/M-disk1.vmdk &&
    sed -i "s/ovf:id=\"file1\" ovf:size=\"[0-9]*\"/ovf:id=\"file1\" ovf:size=\"$(file_size v/M-disk1.vmdk)\" ovf:compression=\"gzip\"/" v/M.ovf &&
    remanifest v && pack v gz.ova ustar $F
finding compressed-disk "a gzip-compressed disk on ESXi 6.5" gz.ova esxi-6.5
assert_true "... citing 'OVF package with compressed disks is currently not supported'" grep -q "compressed disks is currently not supported" "$OUT"
expect_exit 0 "... which virt-v2v takes" "$VMDKIT" ova check --target virt-v2v gz.ova
check "and vmdkit imports it, inflating as it reads" "$VMDKIT" ova import gz.ova Gz.vmwarevm
check "... with the disk's content" qemu-img compare Gz.vmwarevm/M-disk1.vmdk M.vmwarevm/M.vmdk
variant && printf 'raw' >v/M-disk1.vmdk && remanifest v && pack v notvmdk.ova ustar $F
finding disk-format "a disk that is not a sparse VMDK (pyvmomi-community-samples#398)" notvmdk.ova
assert_true "... citing 'invalid sparse VMDK header'" grep -q "invalid sparse VMDK header" "$OUT"
variant && sed -i 's/ovf:size="[0-9]*"/ovf:size="1"/' v/M.ovf && remanifest v && pack v size.ova ustar $F
finding file-size "File ovf:size other than the member's" size.ova

# extra members (pyvmomi-community-samples#540: an .nvram member)
variant && printf 'nvram' >v/M.nvram && remanifest v && pack v extra.ova ustar M.ovf M.mf M-disk1.vmdk M.nvram
finding extra-member "an .nvram member References does not name" extra.ova
variant && mkdir v/sub && pack v dir.ova ustar $F sub
finding extra-member "a folder member" dir.ova

# OVF 2.0 and VirtualBox's SATA subtype: COT's VirtualBox export from the corpus
VMC=${VMDKIT_VM_CORPUS:-${VMDKIT_SOURCE_DIR:-$(dirname "$0")/../..}/../shared/vm-corpus}
if [ -f "$VMC/cot/ubuntu.2.0.ovf" ] && [ -n "${VMDKIT_CORPUS:-}" ] && [ -f "$VMDKIT_CORPUS/cot/ubuntu.2.0-disk1.vmdk" ]; then
    mkdir u && cp "$VMC/cot/ubuntu.2.0.ovf" "$VMC/cot/ubuntu.2.0.mf" "$VMDKIT_CORPUS/cot/ubuntu.2.0-disk1.vmdk" u/
    tar --format=ustar -cf u.ova -C u ubuntu.2.0.ovf ubuntu.2.0.mf ubuntu.2.0-disk1.vmdk
    finding ovf2-items "VirtualBox's OVF 2.0 StorageItem/EthernetPortItem on Workstation (BlackArch/blackarch#1937)" u.ova workstation
    finding sata-subtype "VirtualBox's 'AHCI' SATA subtype on ESXi (home-assistant/operating-system#826)" u.ova esxi-7.0
    finding ovf2-items "an OVF 2.0 envelope for virt-v2v (libguestfs/virt-v2v#18)" u.ova virt-v2v
    assert_true "... whose manifest verifies (no manifest-digest finding)" bash -c "! grep -q manifest-digest $OUT"
else
    say "note: the corpus' VirtualBox OVF 2.0 package is absent: its findings are not checked"
fi
finish
