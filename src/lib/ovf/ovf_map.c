/* ovf_map.c - the one table that maps .vmx values to OVF values and back:
 * controllers, NICs, USB and sound (with the lowest virtualHW.version that
 * has each), guest operating systems (guestOS <-> vmw:osType <-> CIM
 * OsType), CPU and memory limits per hardware version, and the typed
 * vmw:Config switches.  Export and import both read it; nothing else spells
 * these values.
 *
 * Sources: ovftool's output (the VMware-written descriptors of the vm
 * corpus), open-vmdk's ova-compose, VirtualBox's OVF reader and writer (the
 * other spellings), VMware's hardware-feature-by-version tables (minimum
 * versions) and DMTF's CIM_OperatingSystem OsType enumeration (ids).
 */
#include <strings.h>

#include "ovf.h"

static const char *const bus_names[VK_BUS_COUNT] = {"ide", "scsi", "sata", "nvme"};

const char *vk_ovf_bus_vmx(enum vk_ovf_bus bus) { return bus < VK_BUS_COUNT ? bus_names[bus] : "?"; }

int vk_ovf_bus_parse(const char *s, size_t len)
{
    for (int b = 0; b < VK_BUS_COUNT; b++)
        if (strlen(bus_names[b]) == len && strncasecmp(s, bus_names[b], len) == 0)
            return b;
    return -1;
}

/* ---- devices ---- */

static const vk_ovf_dev devices[] = {
    /* SCSI controllers: scsiN.virtualDev <-> ResourceType 6 */
    {VK_DEV_SCSI, "lsilogic", 6, "lsilogic", NULL, 4, "SCSI"},
    {VK_DEV_SCSI, "lsisas1068", 6, "lsilogicsas", NULL, 7, "SCSI"},
    {VK_DEV_SCSI, "pvscsi", 6, "VirtualSCSI", NULL, 7, "SCSI"},
    {VK_DEV_SCSI, "buslogic", 6, "buslogic", NULL, 4, "SCSI"},
    /* ResourceType 20: SATA (AHCI) and NVMe; VirtualBox writes AHCI, NVMe */
    {VK_DEV_SATA, "ahci", 20, "vmware.sata.ahci", "AHCI", 10, "SATA"},
    {VK_DEV_NVME, "nvme", 20, "vmware.nvme.controller", "NVMe", 13, "NVMe"},
    {VK_DEV_IDE, "ide", 5, NULL, "PIIX3|PIIX4|ICH6", 4, "IDE"},
    /* NICs: ethernetN.virtualDev <-> ResourceType 10 */
    {VK_DEV_NIC, "e1000", 10, "E1000", NULL, 4, "E1000"},
    {VK_DEV_NIC, "e1000e", 10, "E1000e", NULL, 8, "E1000e"},
    {VK_DEV_NIC, "vmxnet3", 10, "VmxNet3", NULL, 7, "VmxNet3"},
    {VK_DEV_NIC, "vlance", 10, "PCNet32", "pcnet32", 4, "PCNet32"},
    /* USB controllers (ResourceType 23): ehci.present / usb_xhci.present */
    {VK_DEV_USB, "ehci", 23, "vmware.usb.ehci", NULL, 7, "USB"},
    {VK_DEV_USB, "xhci", 23, "vmware.usb.xhci", NULL, 8, "USB"},
    /* sound: VMware writes ResourceType 1, VirtualBox 35 */
    {VK_DEV_SOUND, "hdaudio", 1, "vmware.soundcard.hdaudio", NULL, 7, "Sound card"},
    {VK_DEV_SOUND, "es1371", 1, "vmware.soundcard.ensoniq1371", "ensoniq1371", 4, "Sound card"},
    {VK_DEV_SOUND, "sb16", 1, "vmware.soundcard.sb16", "sb16", 4, "Sound card"},
};

#define N_DEVICES (sizeof devices / sizeof devices[0])

const vk_ovf_dev *vk_ovf_dev_by_vmx(vk_ovf_dev_kind kind, const char *vmx)
{
    for (size_t i = 0; vmx && i < N_DEVICES; i++)
        if (devices[i].kind == kind && strcasecmp(devices[i].vmx, vmx) == 0)
            return &devices[i];
    return NULL;
}

const vk_ovf_dev *vk_ovf_ctrl_dev(const vk_ovf_ctrl *c)
{
    return c->bus == VK_BUS_SCSI   ? vk_ovf_dev_by_vmx(VK_DEV_SCSI, c->vmx_dev)
           : c->bus == VK_BUS_SATA ? vk_ovf_dev_by_vmx(VK_DEV_SATA, "ahci")
           : c->bus == VK_BUS_NVME ? vk_ovf_dev_by_vmx(VK_DEV_NVME, "nvme")
                                   : vk_ovf_dev_by_vmx(VK_DEV_IDE, "ide");
}

/* Is S one of the '|' separated words of LIST (case ignored)? */
static bool in_list(const char *list, const char *s)
{
    size_t n = strlen(s);
    while (list && *list) {
        const char *bar = strchr(list, '|');
        size_t k = bar ? (size_t)(bar - list) : strlen(list);
        if (k == n && strncasecmp(list, s, n) == 0)
            return true;
        list = bar ? bar + 1 : NULL;
    }
    return false;
}

const vk_ovf_dev *vk_ovf_dev_by_ovf(unsigned rtype, const char *subtype)
{
    bool sound = rtype == 35; /* VirtualBox's sound card */
    for (size_t i = 0; i < N_DEVICES; i++) {
        const vk_ovf_dev *d = &devices[i];
        if (d->rtype != rtype && !(sound && d->kind == VK_DEV_SOUND))
            continue;
        if (!subtype || !*subtype) {
            if (!d->subtype || d->kind == VK_DEV_IDE)
                return d;
            continue;
        }
        if ((d->subtype && strcasecmp(d->subtype, subtype) == 0) || in_list(d->also, subtype))
            return d;
    }
    return NULL;
}

/* ---- guest operating systems ----
 * guestOS (.vmx) <-> osType (vSphere GuestOsDescriptor id) <-> CIM OsType.
 * Where several guestOS map to one CIM id, reading by CIM id (VirtualBox
 * descriptors carry no vmw:osType) takes the first row with it. */
static const vk_ovf_os oses[] = {
    {"other", "otherGuest", 1, "Other (32-bit)"},
    {"other-64", "otherGuest64", 102, "Other (64-bit)"},
    {"otherlinux", "otherLinuxGuest", 36, "Other Linux (32-bit)"},
    {"otherlinux-64", "otherLinux64Guest", 101, "Other Linux (64-bit)"},
    {"other24xlinux", "other24xLinuxGuest", 97, "Other 2.4.x Linux (32-bit)"},
    {"other24xlinux-64", "other24xLinux64Guest", 98, "Other 2.4.x Linux (64-bit)"},
    {"other26xlinux", "other26xLinuxGuest", 99, "Other 2.6.x Linux (32-bit)"},
    {"other26xlinux-64", "other26xLinux64Guest", 100, "Other 2.6.x Linux (64-bit)"},
    {"other3xlinux", "other3xLinuxGuest", 36, "Other 3.x Linux (32-bit)"},
    {"other3xlinux-64", "other3xLinux64Guest", 101, "Other 3.x Linux (64-bit)"},
    {"other4xlinux", "other4xLinuxGuest", 36, "Other 4.x Linux (32-bit)"},
    {"other4xlinux-64", "other4xLinux64Guest", 101, "Other 4.x Linux (64-bit)"},
    {"other5xlinux", "other5xLinuxGuest", 36, "Other 5.x Linux (32-bit)"},
    {"other5xlinux-64", "other5xLinux64Guest", 101, "Other 5.x Linux (64-bit)"},
    {"other6xlinux", "other6xLinuxGuest", 36, "Other 6.x Linux (32-bit)"},
    {"other6xlinux-64", "other6xLinux64Guest", 101, "Other 6.x Linux (64-bit)"},
    {"arm-other5xlinux-64", "otherArmLinux64Guest", 101, "Other 5.x Linux (64-bit Arm)"},
    {"arm-other6xlinux-64", "otherArmLinux64Guest", 101, "Other 6.x Linux (64-bit Arm)"},
    {"ubuntu", "ubuntuGuest", 93, "Ubuntu Linux (32-bit)"},
    {"ubuntu-64", "ubuntu64Guest", 94, "Ubuntu Linux (64-bit)"},
    {"arm-ubuntu-64", "armUbuntu64Guest", 94, "Ubuntu Linux (64-bit Arm)"},
    {"debian10", "debian10Guest", 95, "Debian GNU/Linux 10 (32-bit)"},
    {"debian10-64", "debian10_64Guest", 96, "Debian GNU/Linux 10 (64-bit)"},
    {"debian11", "debian11Guest", 95, "Debian GNU/Linux 11 (32-bit)"},
    {"debian11-64", "debian11_64Guest", 96, "Debian GNU/Linux 11 (64-bit)"},
    {"debian12", "debian12Guest", 95, "Debian GNU/Linux 12 (32-bit)"},
    {"debian12-64", "debian12_64Guest", 96, "Debian GNU/Linux 12 (64-bit)"},
    {"centos", "centosGuest", 106, "CentOS 4/5 (32-bit)"},
    {"centos-64", "centos64Guest", 107, "CentOS 4/5 (64-bit)"},
    {"centos7-64", "centos7_64Guest", 107, "CentOS 7 (64-bit)"},
    {"centos8-64", "centos8_64Guest", 107, "CentOS 8 (64-bit)"},
    {"rhel6", "rhel6Guest", 79, "Red Hat Enterprise Linux 6 (32-bit)"},
    {"rhel6-64", "rhel6_64Guest", 80, "Red Hat Enterprise Linux 6 (64-bit)"},
    {"rhel7-64", "rhel7_64Guest", 80, "Red Hat Enterprise Linux 7 (64-bit)"},
    {"rhel8-64", "rhel8_64Guest", 80, "Red Hat Enterprise Linux 8 (64-bit)"},
    {"rhel9-64", "rhel9_64Guest", 80, "Red Hat Enterprise Linux 9 (64-bit)"},
    {"oraclelinux-64", "oracleLinux64Guest", 109, "Oracle Linux (64-bit)"},
    {"sles12-64", "sles12_64Guest", 85, "SUSE Linux Enterprise 12 (64-bit)"},
    {"sles15-64", "sles15_64Guest", 85, "SUSE Linux Enterprise 15 (64-bit)"},
    {"opensuse-64", "opensuse64Guest", 83, "openSUSE (64-bit)"},
    {"fedora-64", "fedora64Guest", 101, "Fedora (64-bit)"},
    {"vmware-photon-64", "vmwarePhoton64Guest", 36, "VMware Photon OS (64-bit)"},
    {"freebsd", "freebsdGuest", 42, "FreeBSD (32-bit)"},
    {"freebsd-64", "freebsd64Guest", 78, "FreeBSD (64-bit)"},
    {"solaris11-64", "solaris11_64Guest", 81, "Oracle Solaris 11 (64-bit)"},
    {"vmkernel7", "vmkernel7Guest", 104, "VMware ESXi 7.x"},
    {"vmkernel8", "vmkernel8Guest", 104, "VMware ESXi 8.x"},
    {"winxppro", "winXPProGuest", 67, "Microsoft Windows XP Professional (32-bit)"},
    {"winxppro-64", "winXPPro64Guest", 71, "Microsoft Windows XP Professional (64-bit)"},
    {"windows7", "windows7Guest", 105, "Microsoft Windows 7 (32-bit)"},
    {"windows7-64", "windows7_64Guest", 105, "Microsoft Windows 7 (64-bit)"},
    {"windows8-64", "windows8_64Guest", 114, "Microsoft Windows 8 (64-bit)"},
    {"windows9", "windows9Guest", 1, "Microsoft Windows 10 (32-bit)"},
    {"windows9-64", "windows9_64Guest", 1, "Microsoft Windows 10 (64-bit)"},
    {"windows11-64", "windows11_64Guest", 1, "Microsoft Windows 11 (64-bit)"},
    {"windows2019srv-64", "windows2019srv_64Guest", 1, "Microsoft Windows Server 2019 (64-bit)"},
    {"windows2019srvnext-64", "windows2019srvNext_64Guest", 1, "Microsoft Windows Server 2022 (64-bit)"},
    {"darwin21-64", "darwin21_64Guest", 1, "Apple macOS 12 (64-bit)"},
};

#define N_OSES (sizeof oses / sizeof oses[0])

const vk_ovf_os *vk_ovf_os_by_vmx(const char *guest_os)
{
    for (size_t i = 0; guest_os && i < N_OSES; i++)
        if (strcasecmp(oses[i].vmx, guest_os) == 0)
            return &oses[i];
    return NULL;
}

const vk_ovf_os *vk_ovf_os_by_vmw(const char *os_type)
{
    for (size_t i = 0; os_type && i < N_OSES; i++)
        if (strcasecmp(oses[i].vmw, os_type) == 0)
            return &oses[i];
    return NULL;
}

const vk_ovf_os *vk_ovf_os_by_cim(unsigned cim)
{
    for (size_t i = 0; i < N_OSES; i++)
        if (oses[i].cim == cim)
            return &oses[i];
    return NULL;
}

const vk_ovf_os *vk_ovf_os_other(bool x64) { return &oses[x64 ? 1 : 0]; }

/* ---- limits per hardware version ---- */

struct hw_limit {
    unsigned hw;
    uint64_t max;
};

static const struct hw_limit cpu_limits[] = {
    {4, 4}, {7, 8}, {8, 32}, {9, 64}, {11, 128}, {15, 256}, {20, 768}, {21, 768},
};
static const struct hw_limit memory_limits_mib[] = {
    /* MiB */
    {4, 65532}, {7, 261120}, {8, 1035264}, {11, 4177920}, {13, 6275072}, {17, 25149440},
};

static unsigned min_hw(const struct hw_limit *t, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (v <= t[i].max)
            return t[i].hw;
    return 0; /* beyond every version */
}

unsigned vk_ovf_min_hw_cpus(unsigned cpus)
{
    return min_hw(cpu_limits, sizeof cpu_limits / sizeof cpu_limits[0], cpus);
}

unsigned vk_ovf_min_hw_memory(uint64_t memory_mib)
{
    return min_hw(memory_limits_mib, sizeof memory_limits_mib / sizeof memory_limits_mib[0], memory_mib);
}

/* ---- typed vmw:Config switches of the VirtualHardwareSection ---- */

const vk_ovf_cfg vk_ovf_cfgs[VK_CFG_COUNT] = {
    [VK_CFG_CPU_HOT_ADD] = {"cpuHotAddEnabled", "vcpu.hotadd", 7},
    [VK_CFG_MEM_HOT_ADD] = {"memoryHotAddEnabled", "mem.hotadd", 7},
    [VK_CFG_SECURE_BOOT] = {"bootOptions.efiSecureBootEnabled", "uefi.secureBoot.enabled", 13},
};
