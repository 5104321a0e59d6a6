#!/usr/bin/env bash
# ova_corpus.sh - every OVF descriptor of ../shared/vm-corpus imports, or
# fails with a message naming what is not supported.  The corpus holds no
# disks: each File a Disk names is made up as a streamOptimized VMDK of the
# declared capacity, or of 64 MiB when the declared one is larger (then the
# imported disk still gets the declared capacity), with 1 MiB of data;
# other files (an ISO) are small plain files.  Where the vmdk corpus has
# the real disk (COT's), it is used, and its package's manifest verifies.
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need qemu-img jq
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

# name -> expected exit and message of a package that must fail
declare -A WANT_RC WANT_MSG
WANT_RC[open-vmdk/template-hw20]=4
WANT_MSG[open-vmdk/template-hw20]='ovf:size "@@VMDK_FILE_SIZE@@" is not a number'
WANT_RC[virt-manager/test1]=5
WANT_MSG[virt-manager/test1]='a disk naming a file (ovf:/file/vmfile1) rather than a Disk of the DiskSection is not supported'
# its manifest is sha1sum --tag's over a stand-in disk we do not have: the
# descriptor's line verifies, the made-up disk's does not
WANT_RC[govmomi/ttylinux-pc_i486-16.1]=4
WANT_MSG[govmomi/ttylinux-pc_i486-16.1]='ttylinux-pc_i486-16.1-disk1.vmdk: SHA1 digest [0-9a-f]* does not match the manifest'

n=0
while IFS= read -r ovf; do
    rel=${ovf#"$VMC"/}
    key=${rel%.ovf}
    name=$(basename "$key")
    dir=pkg-$n
    n=$((n + 1))
    mkdir "$dir"
    cp "$ovf" "$dir/"
    [ -f "${ovf%.ovf}.mf" ] && cp "${ovf%.ovf}.mf" "$dir/"
    case $key in
    cot/ubuntu.2.0) [ -n "${VMDKIT_CORPUS:-}" ] && cp "$VMDKIT_CORPUS/cot/ubuntu.2.0-disk1.vmdk" "$dir/" 2>/dev/null ;;
    cot/vmware) [ -n "${VMDKIT_CORPUS:-}" ] && cp "$VMDKIT_CORPUS/cot/input-old-8aec514.vmdk" "$dir/input.vmdk" 2>/dev/null ;;
    esac
    chmod -R u+w "$dir"
    "$PY" "$TOOL" disks "$dir/$name.ovf" "$dir" "$VMDKIT" >"$dir.made" || fail "$rel: could not make its files"
    if [ -n "${WANT_RC[$key]:-}" ]; then
        expect_exit "${WANT_RC[$key]}" "$rel fails" "$VMDKIT" ova import "$dir/$name.ovf" "$dir.vmwarevm" &&
            assert_true "... saying: ${WANT_MSG[$key]}" grep -q -- "${WANT_MSG[$key]}" "$ERR"
        assert_err_line "$rel"
        assert_true "... and leaves nothing" bash -c "! ls -A | grep -q '$dir.vmwarevm'"
        continue
    fi
    expect_exit 0 "$rel imports ($(tr '\n' ';' <"$dir.made" | sed 's/;$//'))" \
        "$VMDKIT" ova import "$dir/$name.ovf" "$dir.vmwarevm" || continue
    vmx=$(cat "$OUT")
    assert_true "... a .vmx: $vmx" test -f "$vmx"
    want=$("$PY" "$TOOL" count "$dir/$name.ovf")
    got=$(grep -c '^[a-z]*[0-9]:[0-9]*\.fileName = ".*\.vmdk"$' "$vmx")
    assert_eq "... with the descriptor's $want hard disk(s)" "$want" "$got"
    assert_true "... and the memory it asks for" test "$("$VMDKIT" vmx get "$vmx" memsize)" -gt 0
    # each disk holds what its file held
    while IFS= read -r line; do
        slot=${line%%.fileName*}
        file=$(sed -n 's/.*= "\(.*\)"$/\1/p' <<<"$line")
        disk=$(dirname "$vmx")/$file
        check "... $slot: vmdkit check" "$VMDKIT" check "$disk"
    done < <(grep '^[a-z]*[0-9]:[0-9]*\.fileName = ".*\.vmdk"$' "$vmx")
    case $key in
    cot/ubuntu.2.0)
        if [ -f "$dir/ubuntu.2.0-disk1.vmdk" ]; then
            check "... COT's real disk arrives whole (qemu-img compare)" \
                qemu-img compare "$(dirname "$vmx")/ubuntu-disk1.vmdk" "$dir/ubuntu.2.0-disk1.vmdk"
            assert_true "... and no note says the manifest went unchecked" bash -c "! grep -q 'no manifest' $ERR"
        fi
        ;;
    govmomi/esxvmovf-25262174)
        assert_eq "... its 32 GiB disk keeps the declared capacity (made up as 64 MiB)" 34359738368 \
            "$(qemu_size "$(dirname "$vmx")/esxvm-sb-62272164-rZ0-disk1.vmdk")"
        assert_eq "... EFI from vmw:Config firmware" efi "$("$VMDKIT" vmx get "$vmx" firmware)"
        assert_eq "... pvscsi from VirtualSCSI" pvscsi "$("$VMDKIT" vmx get "$vmx" scsi0.virtualDev)"
        assert_eq "... vmxnet3 from VmxNet3" vmxnet3 "$("$VMDKIT" vmx get "$vmx" ethernet0.virtualDev)"
        assert_eq "... guestOS vmkernel8 from vmkernel8Guest" vmkernel8 "$("$VMDKIT" vmx get "$vmx" guestOS)"
        assert_eq "... vmx-20" 20 "$("$VMDKIT" vmx get "$vmx" virtualHW.version)"
        ;;
    govmomi/Vcf-License-Server-9.1.0.0.25262073)
        assert_eq "... its third disk, with no file, is made empty" \
            '[{"start":0,"length":4294967296,"depth":0,"present":false,"zero":true,"data":false}]' \
            "$(qemu-img map --output=json "$(dirname "$vmx")/$("$VMDKIT" vmx get "$vmx" scsi0:2.fileName)" | jq -c '[.[] | del(.offset, .compressed)]')"
        ;;
    vagrant-smartos-cpp/box)
        assert_eq "... the ISO VirtualBox lists as a Disk becomes the CD's image" "cdrom-image box-disk002.iso" \
            "$("$VMDKIT" vmx get "$vmx" ide0:1.deviceType) $("$VMDKIT" vmx get "$vmx" ide0:1.fileName)"
        assert_true "... copied beside the .vmx" cmp "$dir/box-disk002.iso" "$(dirname "$vmx")/box-disk002.iso"
        ;;
    virt-manager/CentOS-6.4-i386-Gnome)
        assert_eq "... virtualbox-2.2 becomes virtualHW.version 14" 14 "$("$VMDKIT" vmx get "$vmx" virtualHW.version)"
        ;;
    esac
done < <(find "$VMC" -name '*.ovf' | LC_ALL=C sort)
assert_true "every descriptor of the corpus was tried ($n)" test "$n" -ge 15
finish
