#!/usr/bin/env python3
"""ova_tool.py - helpers of the OVA tests, reading OVF with lxml (an XML
parser independent of vmdkit's libxml2 code).

  ova_tool.py disks OVF DIR VMDKIT      make up the files OVF's References name
  ova_tool.py structure OVF OVA REF...  compare OVF with ovftool-written REFs
  ova_tool.py set OVF XPATH ATTR VALUE  set an attribute (ovf: prefix allowed)
  ova_tool.py headers OVA               print each member's name and tar magic
"""
import os
import re
import subprocess
import sys
import tarfile

from lxml import etree

ENV1 = "http://schemas.dmtf.org/ovf/envelope/1"
ENV2 = "http://schemas.dmtf.org/ovf/envelope/2"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VMW = "http://www.vmware.com/schema/ovf"
SMALL = 64 << 20


def local(el):
    return etree.QName(el).localname


def env_ns(root):
    return etree.QName(root).namespace


def attr(el, ns, name):
    v = el.get("{%s}%s" % (ns, name))
    return v if v is not None else el.get(name)


def units(u):
    u = (u or "byte").replace(" ", "").lower()
    m = re.fullmatch(r"byte\*2\^(\d+)", u)
    if m:
        return 1 << int(m.group(1))
    return {"byte": 1, "kilobytes": 1 << 10, "megabytes": 1 << 20, "gigabytes": 1 << 30}.get(u)


def cmd_disks(ovf, out, vmdkit):
    """For each File of References: a streamOptimized VMDK when a Disk
    names it (its declared capacity, or 64 MiB when that is larger, with
    1 MiB of data at the start), else a small plain file."""
    root = etree.parse(ovf).getroot()
    ns = env_ns(root)
    caps = {}
    for d in root.iter("{%s}Disk" % ns):
        ref, cap = attr(d, ns, "fileRef"), attr(d, ns, "capacity")
        u = units(attr(d, ns, "capacityAllocationUnits"))
        fmt = attr(d, ns, "format") or "vmdk"
        if ref and cap and cap.isdigit() and u and "vmdk" in fmt:
            caps[ref] = int(cap) * u
    for f in root.iter("{%s}File" % ns):
        fid, href = attr(f, ns, "id"), attr(f, ns, "href")
        path = os.path.join(out, href)
        if os.path.exists(path) or "/" in href or href.startswith("@@"):
            continue
        if fid in caps:
            size = min(caps[fid], SMALL)
            size -= size % 512
            raw = path + ".raw"
            with open(raw, "wb") as w:
                w.truncate(size)
                w.seek(0)
                w.write((b"vmdkit corpus disk %s\n" % href.encode()) * (min(size, 1 << 20) // 64))
            subprocess.run([vmdkit, "convert", "-f", "raw", "-t", "streamOptimized", raw, path], check=True)
            os.unlink(raw)
            print("%s %d%s" % (href, size, " (declared %d)" % caps[fid] if size != caps[fid] else ""))
        else:
            with open(path, "wb") as w:
                w.write(b"vmdkit test file\n" * 64)
            print("%s file" % href)


def fail(msg):
    print("structure: " + msg)
    sys.exit(1)


def children(el):
    return [c for c in el if isinstance(c.tag, str)]


def cmd_structure(ovf, ova, refs):
    """OVF (our export, member of OVA) against VMware-written REFs."""
    ours = etree.parse(ovf).getroot()
    if ours.tag != "{%s}Envelope" % ENV1:
        fail("root is %s, not envelope/1 Envelope" % ours.tag)
    want_ns = {None: ENV1, "ovf": ENV1, "rasd": RASD, "vssd": VSSD, "vmw": VMW,
               "cim": "http://schemas.dmtf.org/wbem/wscim/1/common",
               "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
    if dict(ours.nsmap) != want_ns:
        fail("namespaces %s, expected ovftool's %s" % (dict(ours.nsmap), want_ns))
    ref_roots = [etree.parse(r).getroot() for r in refs]
    order = ["References", "DiskSection", "NetworkSection", "VirtualSystem"]
    mine = [local(c) for c in children(ours)]
    if mine != [s for s in order if s in mine]:
        fail("Envelope sections %s, not in ovftool's order %s" % (mine, order))
    for r in ref_roots:
        theirs = [local(c) for c in children(r) if local(c) in order]
        if [s for s in theirs if s in mine] != [s for s in mine if s in theirs]:
            fail("section order %s differs from a reference's %s" % (mine, theirs))
    vs = ours.find("{%s}VirtualSystem" % ENV1)
    vs_kids = [local(c) for c in children(vs)]
    if vs_kids[:4] != ["Info", "Name", "OperatingSystemSection", "VirtualHardwareSection"]:
        fail("VirtualSystem children %s" % vs_kids)
    oss = vs.find("{%s}OperatingSystemSection" % ENV1)
    if not (oss.get("{%s}id" % ENV1) or "").isdigit() or not oss.get("{%s}osType" % VMW):
        fail("OperatingSystemSection lacks ovf:id or vmw:osType")
    vhs = vs.find("{%s}VirtualHardwareSection" % ENV1)
    kinds = [local(c) if etree.QName(c).namespace != VMW else "vmw:" + local(c) for c in children(vhs)]
    seq = re.sub(r"(Item,)+", "Item*,", ",".join(kinds) + ",")
    seq = re.sub(r"(vmw:Config,)+", "vmw:Config*,", seq)
    seq = re.sub(r"(vmw:ExtraConfig,)+", "vmw:ExtraConfig*,", seq)
    if not re.fullmatch(r"Info,System,Item\*,vmw:Config\*,(vmw:ExtraConfig\*,)?", seq):
        fail("VirtualHardwareSection layout %s" % seq)
    system = [local(c) for c in children(vhs.find("{%s}System" % ENV1))]
    if system != ["ElementName", "InstanceID", "VirtualSystemIdentifier", "VirtualSystemType"]:
        fail("System children %s" % system)
    vtype = vhs.find("{%s}System/{%s}VirtualSystemType" % (ENV1, VSSD)).text
    if not re.fullmatch(r"vmx-\d\d", vtype):
        fail("VirtualSystemType %s is not vmx-NN" % vtype)

    # what VMware writes per ResourceType: rasd children, ovf:required
    ref_fields, ref_required, ref_subtypes = {}, {}, set()
    for r in ref_roots:
        rns = env_ns(r)
        for it in r.iter("{%s}Item" % rns):
            rt = it.find("{%s}ResourceType" % RASD).text
            ref_fields.setdefault(rt, set()).update(local(c) for c in children(it)
                                                     if etree.QName(c).namespace == RASD)
            ref_required.setdefault(rt, set()).add(it.get("{%s}required" % rns))
            st = it.find("{%s}ResourceSubType" % RASD)
            if st is not None:
                ref_subtypes.add(st.text)
    vocabulary = ref_subtypes | {"lsilogic", "lsilogicsas", "VirtualSCSI", "buslogic", "vmware.sata.ahci",
                                 "vmware.nvme.controller", "E1000", "E1000e", "VmxNet3",
                                 "vmware.usb.ehci", "vmware.usb.xhci", "vmware.soundcard.hdaudio",
                                 "vmware.soundcard.ensoniq1371"}
    ids, parents, hosts, types = set(), [], [], []
    for it in vhs.findall("{%s}Item" % ENV1):
        names = [local(c) for c in children(it) if etree.QName(c).namespace == RASD]
        if names != sorted(names):
            fail("Item %s: rasd children not sorted by name: %s" % (names, names))
        after = [c for c in children(it) if etree.QName(c).namespace == VMW]
        if children(it)[len(names):] != after:
            fail("Item: vmw children must follow the rasd ones")
        for c in after:
            if local(c) == "Config" and not (c.get("{%s}key" % VMW) and c.get("{%s}value" % VMW)
                                             is not None and c.get("{%s}required" % ENV1) == "false"):
                fail("Item vmw:Config without vmw:key, vmw:value, ovf:required=false")
        rt = it.find("{%s}ResourceType" % RASD).text
        types.append(rt)
        iid = it.find("{%s}InstanceID" % RASD).text
        if iid in ids:
            fail("InstanceID %s twice" % iid)
        ids.add(iid)
        if rt in ref_fields and not set(names) <= ref_fields[rt] | {"Description", "AddressOnParent"}:
            fail("ResourceType %s: fields %s beyond VMware's %s" % (rt, sorted(set(names) - ref_fields[rt]),
                                                                   sorted(ref_fields[rt])))
        req = it.get("{%s}required" % ENV1)
        if rt in ref_required and req not in ref_required[rt]:
            fail("ResourceType %s: ovf:required=%s, VMware writes %s" % (rt, req, ref_required[rt]))
        st = it.find("{%s}ResourceSubType" % RASD)
        if st is not None and st.text not in vocabulary:
            fail("ResourceSubType %s is not VMware's" % st.text)
        p = it.find("{%s}Parent" % RASD)
        if p is not None:
            parents.append(p.text)
        h = it.find("{%s}HostResource" % RASD)
        if h is not None:
            hosts.append(h.text)
    for p in parents:
        if p not in ids:
            fail("Parent %s names no Item" % p)
    for c in vhs.findall("{%s}Config" % VMW):
        if c.get("{%s}required" % ENV1) != "false" or not c.get("{%s}key" % VMW):
            fail("vmw:Config without ovf:required=false / vmw:key")

    # References and disks against the archive
    members = {m.name: m for m in tarfile.open(ova).getmembers()}
    files = {}
    for f in ours.find("{%s}References" % ENV1):
        keys = sorted(k.split("}")[1] for k in f.attrib)
        if keys != ["href", "id", "size"]:
            fail("File attributes %s, ovftool writes href id size" % keys)
        href = f.get("{%s}href" % ENV1)
        if int(f.get("{%s}size" % ENV1)) != members[href].size:
            fail("%s: ovf:size %s, member holds %d" % (href, f.get("{%s}size" % ENV1), members[href].size))
        files[f.get("{%s}id" % ENV1)] = href
    disk_ids = set()
    for d in ours.find("{%s}DiskSection" % ENV1).findall("{%s}Disk" % ENV1):
        keys = sorted(k.split("}")[1] for k in d.attrib)
        if keys != ["capacity", "capacityAllocationUnits", "diskId", "fileRef", "format", "populatedSize"]:
            fail("Disk attributes %s" % keys)
        if d.get("{%s}capacityAllocationUnits" % ENV1) != "byte":
            fail("capacityAllocationUnits is not byte")
        if not d.get("{%s}format" % ENV1).endswith("vmdk.html#streamOptimized"):
            fail("format is not streamOptimized")
        cap, pop = int(d.get("{%s}capacity" % ENV1)), int(d.get("{%s}populatedSize" % ENV1))
        if not 0 < pop <= cap:
            fail("populatedSize %d not in (0, capacity %d]" % (pop, cap))
        disk_ids.add(d.get("{%s}diskId" % ENV1))
        print("disk %s capacity %d populated %d file %s" % (d.get("{%s}diskId" % ENV1), cap, pop,
                                                           files[d.get("{%s}fileRef" % ENV1)]))
    for h in hosts:
        if not h.startswith("ovf:/disk/") or h[len("ovf:/disk/"):] not in disk_ids:
            fail("HostResource %s names no Disk" % h)
    print("types " + " ".join(sorted(set(types), key=int)))


def cmd_count(ovf):
    """Hard disks the descriptor attaches (ResourceType 17 Items)."""
    root = etree.parse(ovf).getroot()
    n = 0
    for it in root.iter():
        if isinstance(it.tag, str) and local(it) in ("Item", "StorageItem"):
            rt = [c.text for c in it if isinstance(c.tag, str) and local(c) == "ResourceType"]
            n += rt == ["17"]
    print(n)


def cmd_set(ovf, xpath, name, value):
    tree = etree.parse(ovf)
    root = tree.getroot()
    ns = {"ovf": env_ns(root), "rasd": RASD, "vmw": VMW, "vssd": VSSD}
    hits = root.xpath(xpath, namespaces=ns)
    if not hits:
        fail("%s matches nothing" % xpath)
    for el in hits:
        if name == "text":
            el.text = value
        else:
            key = "{%s}%s" % (ns["ovf"], name[4:]) if name.startswith("ovf:") else name
            el.set(key, value)
    tree.write(ovf, xml_declaration=True, encoding="UTF-8")


def cmd_headers(ova):
    with open(ova, "rb") as f:
        data = f.read()
    off = 0
    while off + 512 <= len(data):
        h = data[off:off + 512]
        if h == bytes(512):
            break
        name = h[:100].rstrip(b"\0").decode()
        size = int(h[124:136].rstrip(b"\0 ").decode() or "0", 8)
        print("%s magic=%r uid=%s gid=%s mode=%s" % (name, h[257:265], h[108:115].decode(),
                                                      h[116:123].decode(), h[100:107].decode()))
        off += 512 + (size + 511) // 512 * 512


if __name__ == "__main__":
    a = sys.argv[1:]
    {"disks": lambda: cmd_disks(a[1], a[2], a[3]),
     "structure": lambda: cmd_structure(a[1], a[2], a[3:]),
     "set": lambda: cmd_set(a[1], a[2], a[3], a[4]),
     "count": lambda: cmd_count(a[1]),
     "headers": lambda: cmd_headers(a[1])}[a[0]]()
