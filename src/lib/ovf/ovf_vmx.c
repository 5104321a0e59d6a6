/* ovf_vmx.c - a machine's .vmx and the model of ovf.h, both ways: what
 * export reads from a .vmx, the .vmx import writes for a new machine, and
 * the check of a machine against an older hardware version. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "ovf.h"
#include "path.h"
#include "vm/vmx.h"

/* ---- reading a .vmx ---- */

static bool vmx_true(const char *s)
{
    return s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0);
}

static bool vmx_false(const char *s)
{
    return s && (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcmp(s, "0") == 0);
}

static const char *getf(const vk_vmx *v, const char *fmt, ...) VK_PRINTF(2, 3);
static const char *getf(const vk_vmx *v, const char *fmt, ...)
{
    char key[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < sizeof key ? vk_vmx_get(v, key) : NULL;
}

/* A decimal number in [MIN, MAX] from FIELD of the .vmx. */
static int vmx_number(const vk_vmx *v, const char *key, uint64_t min, uint64_t max, uint64_t dflt,
                      uint64_t *out, vk_err *e)
{
    const char *s = vk_vmx_get(v, key);
    *out = dflt;
    if (!s)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end || errno || n < min || n > max)
        return vk_fail(e, VMDKIT_EFORMAT, "%s: %s: \"%s\" is not a number in %llu..%llu", vk_vmx_path(v),
                       key, s, (unsigned long long)min, (unsigned long long)max);
    *out = n;
    return 0;
}

/* Is KEY "<bus>N:M.<anything>" or "<bus>N.<anything>"?  Fills the parts. */
static bool parse_bus_key(const char *key, int *bus, unsigned *num, bool *has_unit, unsigned *unit,
                          const char **field)
{
    size_t n = 0;
    while (isalpha((unsigned char)key[n]))
        n++;
    int b = vk_ovf_bus_parse(key, n);
    if (b < 0 || !isdigit((unsigned char)key[n]))
        return false;
    char *end;
    unsigned long c = strtoul(key + n, &end, 10);
    *has_unit = *end == ':';
    unsigned long u = 0;
    if (*has_unit) {
        if (!isdigit((unsigned char)end[1]))
            return false;
        u = strtoul(end + 1, &end, 10);
    }
    if (*end != '.' || c > 99 || u > 999)
        return false;
    *bus = b;
    *num = (unsigned)c;
    *unit = (unsigned)u;
    *field = end + 1;
    return true;
}

static int add_ctrl(vk_ovf_vm *vm, enum vk_ovf_bus bus, unsigned num, const char *vmx_dev, vk_err *e)
{
    if (vk_ovf_find_ctrl(vm, bus, num))
        return 0;
    vk_ovf_ctrl *c = vk_ovf_grow((void **)&vm->ctrls, &vm->n_ctrls, sizeof *c, e);
    if (!c)
        return VMDKIT_ENOMEM;
    c->bus = bus;
    c->num = num;
    c->vmx_dev = vmx_dev;
    return 0;
}

/* The parts of a key parse_bus_key accepts. */
struct bus_key {
    int bus;
    unsigned num, unit;
    bool has_unit;
    const char *field;
};

/* The next entry of V from *POS whose key parse_bus_key accepts: its key in
 * *KEY and its parts in *K; false after the last. */
static bool next_bus_key(const vk_vmx *v, size_t *pos, const char **key, struct bus_key *k)
{
    const char *val;
    while (vk_vmx_next(v, pos, key, &val))
        if (parse_bus_key(*key, &k->bus, &k->num, &k->has_unit, &k->unit, &k->field))
            return true;
    return false;
}

/* Controllers: "scsiN.present", "sataN.present", "nvmeN.present"; IDE
 * ones exist whenever a device sits on them. */
static int read_controllers(const vk_vmx *v, vk_ovf_vm *vm, vk_err *e)
{
    size_t pos = 0;
    const char *key;
    struct bus_key k;
    while (next_bus_key(v, &pos, &key, &k)) {
        if (k.has_unit || strcasecmp(k.field, "present") != 0 || k.bus == VK_BUS_IDE)
            continue;
        if (!vmx_true(vk_vmx_get(v, key)))
            continue;
        const char *dev = NULL;
        if (k.bus == VK_BUS_SCSI) {
            const char *vd = getf(v, "scsi%u.virtualDev", k.num);
            const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_SCSI, vd ? vd : "lsilogic");
            if (!d)
                return vk_fail(e, VMDKIT_EUNSUPPORTED,
                               "%s: scsi%u.virtualDev: \"%s\" has no OVF equivalent", vk_vmx_path(v),
                               k.num, vd);
            dev = d->vmx;
        }
        int r = add_ctrl(vm, (enum vk_ovf_bus)k.bus, k.num, dev, e);
        if (r)
            return r;
    }
    return 0;
}

static bool is_cdrom_type(const char *t)
{
    return t && (strncasecmp(t, "cdrom", 5) == 0 || strcasecmp(t, "atapi-cdrom") == 0);
}

/* Split "scsi0:1" into its parts. */
static bool parse_slot(const char *slot, int *bus, unsigned *num, unsigned *unit)
{
    char key[64];
    bool has_unit;
    const char *field;
    if ((size_t)snprintf(key, sizeof key, "%s.x", slot) >= sizeof key)
        return false;
    return parse_bus_key(key, bus, num, &has_unit, unit, &field) && has_unit;
}

static int read_disks(const vk_vmx *v, const char *vmx_path, vk_ovf_vm *vm, vk_err *e)
{
    vk_vmx_disk *disks;
    size_t n;
    int r = vk_vmx_disks(v, &disks, &n, e);
    if (r)
        return r;
    char *folder = vk_path_dirname(vmx_path, e);
    r = folder ? 0 : VMDKIT_ENOMEM;
    for (size_t i = 0; !r && i < n; i++) {
        int bus;
        unsigned num, unit;
        if (!parse_slot(disks[i].slot, &bus, &num, &unit)) {
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: %s: not a disk slot", vmx_path, disks[i].slot);
            break;
        }
        if (!vk_ovf_find_ctrl(vm, (enum vk_ovf_bus)bus, num)) {
            if (bus != VK_BUS_IDE) {
                r = vk_fail(e, VMDKIT_EFORMAT, "%s: %s: the disk's controller %s%u is not present",
                            vmx_path, disks[i].slot, vk_ovf_bus_vmx((enum vk_ovf_bus)bus), num);
                break;
            }
            if ((r = add_ctrl(vm, VK_BUS_IDE, num, NULL, e)))
                break;
        }
        vk_ovf_disk *d = vk_ovf_grow((void **)&vm->disks, &vm->n_disks, sizeof *d, e);
        if (!d || !(d->source = vk_path_join(folder, disks[i].file, e))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        d->bus = (enum vk_ovf_bus)bus;
        d->ctrl = num;
        d->unit = unit;
    }
    free(folder);
    vk_vmx_disks_free(disks, n);
    return r;
}

static int read_cdroms(const vk_vmx *v, vk_ovf_vm *vm, vk_err *e)
{
    size_t pos = 0;
    const char *key;
    struct bus_key k;
    while (next_bus_key(v, &pos, &key, &k)) {
        if (!k.has_unit || strcasecmp(k.field, "deviceType") != 0 || !is_cdrom_type(vk_vmx_get(v, key)))
            continue;
        const char *bus_name = vk_ovf_bus_vmx((enum vk_ovf_bus)k.bus);
        if (vmx_false(getf(v, "%s%u:%u.present", bus_name, k.num, k.unit)))
            continue;
        bool dup = false;
        for (size_t i = 0; i < vm->n_cdroms; i++)
            dup |= vm->cdroms[i].bus == (enum vk_ovf_bus)k.bus && vm->cdroms[i].ctrl == k.num &&
                   vm->cdroms[i].unit == k.unit;
        if (dup)
            continue;
        int r = 0;
        if (!vk_ovf_find_ctrl(vm, (enum vk_ovf_bus)k.bus, k.num)) {
            if (k.bus != VK_BUS_IDE)
                continue; /* a drive on a controller that is not there */
            if ((r = add_ctrl(vm, VK_BUS_IDE, k.num, NULL, e)))
                return r;
        }
        vk_ovf_cdrom *c = vk_ovf_grow((void **)&vm->cdroms, &vm->n_cdroms, sizeof *c, e);
        if (!c)
            return VMDKIT_ENOMEM;
        c->bus = (enum vk_ovf_bus)k.bus;
        c->ctrl = k.num;
        c->unit = k.unit;
    }
    return 0;
}

static int read_nics(const vk_vmx *v, vk_ovf_vm *vm, vk_err *e)
{
    for (unsigned i = 0; i < 10; i++) {
        if (!vmx_true(getf(v, "ethernet%u.present", i)))
            continue;
        const char *vd = getf(v, "ethernet%u.virtualDev", i);
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_NIC, vd ? vd : "e1000");
        if (!d)
            return vk_fail(e, VMDKIT_EUNSUPPORTED,
                           "%s: ethernet%u.virtualDev: \"%s\" has no OVF equivalent", vk_vmx_path(v), i,
                           vd);
        /* the network: ESXi's port group name, else the hosted connection
         * type ("nat", "bridged", "hostonly", "custom") */
        const char *net = getf(v, "ethernet%u.networkName", i);
        if (!net || !*net)
            net = getf(v, "ethernet%u.connectionType", i);
        if (!net || !*net)
            net = "bridged";
        if (strlen(net) > 255)
            return vk_fail(e, VMDKIT_ELIMIT, "%s: ethernet%u: a network name of %zu bytes (255 at most)",
                           vk_vmx_path(v), i, strlen(net));
        vk_ovf_nic *nic = vk_ovf_grow((void **)&vm->nics, &vm->n_nics, sizeof *nic, e);
        if (!nic || !(nic->network = vk_strdup(net, e)))
            return VMDKIT_ENOMEM;
        nic->num = i;
        nic->vmx_dev = d->vmx;
        nic->start_connected = !vmx_false(getf(v, "ethernet%u.startConnected", i));
    }
    return 0;
}

/* Keys the model stands for, or that belong to this host or this machine's
 * identity: never exported as ExtraConfig. */
static bool key_not_extra(const char *key, const char *value)
{
    static const char *const exact[] = {
        ".encoding",
        "config.version",
        "virtualHW.version",
        "displayName",
        "guestOS",
        "numvcpus",
        "cpuid.coresPerSocket",
        "memsize",
        "firmware",
        "uefi.secureBoot.enabled",
        "vcpu.hotadd",
        "mem.hotadd",
        "annotation",
        "nvram",
        "extendedConfigFile",
        "vc.uuid",
        "cleanShutdown",
        "softPowerOff",
        "vmci0.id",
        "monitor.phys_bits_used",
        "filesearchpath",
        "usb.present",
        "ehci.present",
        "usb_xhci.present",
        "vmci0.present",
        "svga.present",
        "svga.vramSize",
        "mks.enable3d",
        "sound.present",
        "sound.virtualDev",
        "sound.fileName",
        "sound.autodetect",
        "virtualHW.productCompatibility",
        "tools.syncTime",
        "vhv.enable",
        "policy.vm.mvmtid",
        "vmxstats.filename",
        "checkpoint.vmState",
        "hpet0.present",
        "floppy0.present",
    };
    static const char *const prefixes[] = {
        "uuid.",          "checkpoint.",
        "suspend.",       "sched.swap.",
        "migrate.",       "snapshot.",
        "gui.",           "guestInfo.",
        "guestinfo.",     "toolsInstallManager.",
        "vmotion.",       "answer.",
        "usb:",           "usb_xhci:",
        "ethernet",       "floppy",
        "serial",         "parallel",
        "sharedFolder",   "hgfs.",
        "pciBridge",      "numa.autosize.",
        "vm.genid",       "sata",
        "scsi",           "ide",
        "nvme",           "ehci:",
        "vmci0.",         "remotedisplay.",
        "RemoteDisplay.", "tools.remindInstall",
        "sensor.",
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcasecmp(key, exact[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncasecmp(key, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    size_t n = strlen(key);
    static const char *const suffixes[] = {".fileName", ".filename",         ".pciSlotNumber",
                                           ".sasWWID",  ".generatedAddress", ".address"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcasecmp(key + n - k, suffixes[i]) == 0)
            return true;
    }
    /* a host path: "/...", "C:\...", "\\server\..." */
    return value[0] == '/' || value[0] == '\\' ||
           (isalpha((unsigned char)value[0]) && value[1] == ':' && value[2] == '\\');
}

int vk_ovf_from_vmx(const vk_vmx *v, const char *vmx_path, bool extra, vk_ovf_vm *vm, vk_err *e)
{
    memset(vm, 0, sizeof *vm);
    uint64_t hw, cpus, cores, mem;
    int r = vmx_number(v, "virtualHW.version", 3, 99, 4, &hw, e);
    if (!r)
        r = vmx_number(v, "numvcpus", 1, 4096, 1, &cpus, e);
    if (!r)
        r = vmx_number(v, "cpuid.coresPerSocket", 1, 4096, 0, &cores, e);
    if (!r)
        r = vmx_number(v, "memsize", 4, UINT64_C(1) << 32, 256, &mem, e);
    if (r)
        return r;
    vm->hw_version = (unsigned)hw;
    vm->cpus = (unsigned)cpus;
    vm->cores_per_socket = (unsigned)cores;
    vm->memory_mib = mem;

    const char *name = vk_vmx_get(v, "displayName");
    if (name && *name) {
        vm->name = vk_strdup(name, e);
    } else {
        const char *base = vk_path_basename(vmx_path);
        size_t n = strlen(base);
        if (n > 4 && strcasecmp(base + n - 4, ".vmx") == 0)
            n -= 4;
        vm->name = vk_strndup(base, n, e);
    }
    if (!vm->name)
        return VMDKIT_ENOMEM;

    const char *guest = vk_vmx_get(v, "guestOS");
    const vk_ovf_os *os = vk_ovf_os_by_vmx(guest);
    if (os) {
        vm->guest_os = os->vmx;
    } else if (guest && *guest) {
        if (!(vm->guest_os_own = vk_strdup(guest, e)))
            return VMDKIT_ENOMEM;
        vm->guest_os = vm->guest_os_own;
    } else {
        vm->guest_os = vk_ovf_os_other(false)->vmx;
    }

    const char *fw = vk_vmx_get(v, "firmware");
    vm->efi = fw && strcasecmp(fw, "efi") == 0;
    for (int i = 0; i < VK_CFG_COUNT; i++)
        vm->cfg[i] = vmx_true(vk_vmx_get(v, vk_ovf_cfgs[i].vmx));

    if ((r = read_controllers(v, vm, e)) || (r = read_disks(v, vmx_path, vm, e)) ||
        (r = read_cdroms(v, vm, e)) || (r = read_nics(v, vm, e)))
        return r;

    vm->usb_ehci = vmx_true(vk_vmx_get(v, "usb.present")) && vmx_true(vk_vmx_get(v, "ehci.present"));
    vm->usb_xhci = vmx_true(vk_vmx_get(v, "usb_xhci.present"));
    vm->vmci = vmx_true(vk_vmx_get(v, "vmci0.present"));
    vm->video = !vmx_false(vk_vmx_get(v, "svga.present"));
    uint64_t vram;
    if ((r = vmx_number(v, "svga.vramSize", 0, UINT64_C(1) << 34, 0, &vram, e)))
        return r;
    vm->vram_bytes = vram;
    vm->enable_3d = vmx_true(vk_vmx_get(v, "mks.enable3d"));
    if (vmx_true(vk_vmx_get(v, "sound.present"))) {
        const char *sd = vk_vmx_get(v, "sound.virtualDev");
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_SOUND, sd ? sd : "es1371");
        if (d) {
            vm->sound = true;
            vm->sound_dev = d->vmx;
        }
    }
    const char *ann = vk_vmx_get(v, "annotation");
    if (ann && *ann && !(vm->annotation = vk_strdup(ann, e)))
        return VMDKIT_ENOMEM;

    if (extra) {
        size_t pos = 0;
        const char *key, *val;
        while (!r && vk_vmx_next(v, &pos, &key, &val)) {
            if (key_not_extra(key, val))
                continue;
            /* the last line of a key wins: skip earlier duplicates */
            if (vk_vmx_get(v, key) != val)
                continue;
            r = vk_ovf_add_extra(vm, key, val, e);
        }
    }
    return r;
}

/* ---- checking against an older hardware version ---- */

static int too_new(const char *what, const char *device, unsigned need, unsigned max_hw, vk_err *e)
{
    return vk_fail(e, VMDKIT_EUNSUPPORTED,
                   "%s: %s needs virtual hardware version %u; --hw-max %u would drop it", what, device,
                   need, max_hw);
}

int vk_ovf_check_hw(const vk_ovf_vm *vm, unsigned max_hw, const char *what, vk_err *e)
{
    char dev[96];
    for (size_t i = 0; i < vm->n_ctrls; i++) {
        const vk_ovf_ctrl *c = &vm->ctrls[i];
        const vk_ovf_dev *d = vk_ovf_ctrl_dev(c);
        if (d && d->min_hw > max_hw) {
            snprintf(dev, sizeof dev, "%s%u (%s %s)", vk_ovf_bus_vmx(c->bus), c->num, d->label,
                     d->subtype ? d->subtype : "controller");
            return too_new(what, dev, d->min_hw, max_hw, e);
        }
    }
    for (size_t i = 0; i < vm->n_nics; i++) {
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_NIC, vm->nics[i].vmx_dev);
        if (d && d->min_hw > max_hw) {
            snprintf(dev, sizeof dev, "ethernet%u (%s)", vm->nics[i].num, d->vmx);
            return too_new(what, dev, d->min_hw, max_hw, e);
        }
    }
    const vk_ovf_dev *usb[2] = {vm->usb_ehci ? vk_ovf_dev_by_vmx(VK_DEV_USB, "ehci") : NULL,
                                vm->usb_xhci ? vk_ovf_dev_by_vmx(VK_DEV_USB, "xhci") : NULL};
    for (int i = 0; i < 2; i++)
        if (usb[i] && usb[i]->min_hw > max_hw) {
            snprintf(dev, sizeof dev, "the USB controller %s", usb[i]->subtype);
            return too_new(what, dev, usb[i]->min_hw, max_hw, e);
        }
    const vk_ovf_dev *snd = vm->sound ? vk_ovf_dev_by_vmx(VK_DEV_SOUND, vm->sound_dev) : NULL;
    if (snd && snd->min_hw > max_hw) {
        snprintf(dev, sizeof dev, "the sound card %s", snd->vmx);
        return too_new(what, dev, snd->min_hw, max_hw, e);
    }
    if (vm->efi && VK_OVF_MIN_HW_EFI > max_hw)
        return too_new(what, "EFI firmware", VK_OVF_MIN_HW_EFI, max_hw, e);
    for (int i = 0; i < VK_CFG_COUNT; i++)
        if (vm->cfg[i] && vk_ovf_cfgs[i].min_hw > max_hw)
            return too_new(what, vk_ovf_cfgs[i].vmx, vk_ovf_cfgs[i].min_hw, max_hw, e);
    unsigned need = vk_ovf_min_hw_cpus(vm->cpus);
    if (need == 0 || need > max_hw) {
        snprintf(dev, sizeof dev, "%u virtual CPUs", vm->cpus);
        return too_new(what, dev, need ? need : 99, max_hw, e);
    }
    need = vk_ovf_min_hw_memory(vm->memory_mib);
    if (need == 0 || need > max_hw) {
        snprintf(dev, sizeof dev, "%llu MiB of memory", (unsigned long long)vm->memory_mib);
        return too_new(what, dev, need ? need : 99, max_hw, e);
    }
    return 0;
}

/* ---- writing a .vmx for a new machine ---- */

struct out {
    vk_vmx *v;
    int r;
    vk_err *e;
};

static void put(struct out *o, const char *key, const char *value)
{
    if (!o->r)
        o->r = vk_vmx_set(o->v, key, value, o->e);
}

/* put() with a formatted key */
#define PUTF(o, value, ...)                       \
    do {                                          \
        char key_[96];                            \
        snprintf(key_, sizeof key_, __VA_ARGS__); \
        put(o, key_, value);                      \
    } while (0)

static void put_num(struct out *o, const char *key, uint64_t n)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
    put(o, key, buf);
}

/* How VMware's hosted products name a NIC's network: a connection type
 * when the OVF network is one, else the network name (ESXi's port group). */
static void put_network(struct out *o, unsigned num, const char *net)
{
    static const char *const types[] = {"nat", "bridged", "hostonly"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (net && strcasecmp(net, types[i]) == 0) {
            PUTF(o, types[i], "ethernet%u.connectionType", num);
            return;
        }
    PUTF(o, "nat", "ethernet%u.connectionType", num);
    if (net && *net)
        PUTF(o, net, "ethernet%u.networkName", num);
}

int vk_ovf_to_vmx(const vk_ovf_vm *vm, const char *const *disk_files, const char *const *cd_files,
                  char **text, size_t *len, vk_err *e)
{
    vk_vmx *v;
    int r = vk_vmx_parse("new.vmx", "", 0, &v, e);
    if (r)
        return r;
    struct out o = {v, 0, e};
    put(&o, ".encoding", "UTF-8");
    put(&o, "config.version", "8");
    put_num(&o, "virtualHW.version", vm->hw_version);
    put(&o, "displayName", vm->name);
    put(&o, "guestOS", vm->guest_os);
    put_num(&o, "numvcpus", vm->cpus);
    if (vm->cores_per_socket)
        put_num(&o, "cpuid.coresPerSocket", vm->cores_per_socket);
    put_num(&o, "memsize", vm->memory_mib);
    if (vm->efi)
        put(&o, "firmware", "efi");
    for (int i = 0; i < VK_CFG_COUNT; i++)
        if (vm->cfg[i])
            put(&o, vk_ovf_cfgs[i].vmx, "TRUE");
    /* PCI and PCIe bridges: VMware gives every new machine these, and PCIe
     * devices (vmxnet3, e1000e, NVMe) sit behind the root ports */
    put(&o, "pciBridge0.present", "TRUE");
    for (unsigned b = 4; b <= 7; b++) {
        PUTF(&o, "TRUE", "pciBridge%u.present", b);
        PUTF(&o, "pcieRootPort", "pciBridge%u.virtualDev", b);
        PUTF(&o, "8", "pciBridge%u.functions", b);
    }
    put(&o, "hpet0.present", "TRUE");
    if (vm->vmci)
        put(&o, "vmci0.present", "TRUE");
    if (vm->video) {
        put(&o, "svga.present", "TRUE");
        if (vm->vram_bytes)
            put_num(&o, "svga.vramSize", vm->vram_bytes);
        if (vm->enable_3d)
            put(&o, "mks.enable3d", "TRUE");
    }
    for (size_t i = 0; i < vm->n_ctrls; i++) {
        const vk_ovf_ctrl *c = &vm->ctrls[i];
        const char *bus = vk_ovf_bus_vmx(c->bus);
        char key[64];
        if (c->bus == VK_BUS_IDE)
            continue; /* VMware writes no key for the IDE controllers */
        snprintf(key, sizeof key, "%s%u.present", bus, c->num);
        put(&o, key, "TRUE");
        if (c->bus == VK_BUS_SCSI) {
            snprintf(key, sizeof key, "%s%u.virtualDev", bus, c->num);
            put(&o, key, c->vmx_dev);
        }
    }
    for (size_t i = 0; i < vm->n_disks; i++) {
        const vk_ovf_disk *d = &vm->disks[i];
        char key[64];
        const char *bus = vk_ovf_bus_vmx(d->bus);
        snprintf(key, sizeof key, "%s%u:%u.present", bus, d->ctrl, d->unit);
        put(&o, key, "TRUE");
        snprintf(key, sizeof key, "%s%u:%u.fileName", bus, d->ctrl, d->unit);
        put(&o, key, disk_files[i]);
    }
    for (size_t i = 0; i < vm->n_cdroms; i++) {
        const vk_ovf_cdrom *c = &vm->cdroms[i];
        char key[64];
        const char *bus = vk_ovf_bus_vmx(c->bus);
        const char *iso = cd_files ? cd_files[i] : NULL;
        snprintf(key, sizeof key, "%s%u:%u.present", bus, c->ctrl, c->unit);
        put(&o, key, "TRUE");
        snprintf(key, sizeof key, "%s%u:%u.deviceType", bus, c->ctrl, c->unit);
        put(&o, key, iso ? "cdrom-image" : "cdrom-raw");
        snprintf(key, sizeof key, "%s%u:%u.fileName", bus, c->ctrl, c->unit);
        put(&o, key, iso ? iso : "auto detect");
        if (!iso) {
            snprintf(key, sizeof key, "%s%u:%u.autodetect", bus, c->ctrl, c->unit);
            put(&o, key, "TRUE");
        }
        snprintf(key, sizeof key, "%s%u:%u.startConnected", bus, c->ctrl, c->unit);
        put(&o, key, iso ? "TRUE" : "FALSE");
    }
    for (size_t i = 0; i < vm->n_nics; i++) {
        const vk_ovf_nic *n = &vm->nics[i];
        PUTF(&o, "TRUE", "ethernet%u.present", n->num);
        PUTF(&o, n->vmx_dev, "ethernet%u.virtualDev", n->num);
        put_network(&o, n->num, n->network);
        PUTF(&o, "generated", "ethernet%u.addressType", n->num);
        if (!n->start_connected)
            PUTF(&o, "FALSE", "ethernet%u.startConnected", n->num);
    }
    if (vm->usb_ehci || vm->usb_xhci)
        put(&o, "usb.present", "TRUE");
    if (vm->usb_ehci)
        put(&o, "ehci.present", "TRUE");
    if (vm->usb_xhci)
        put(&o, "usb_xhci.present", "TRUE");
    if (vm->sound) {
        put(&o, "sound.present", "TRUE");
        put(&o, "sound.virtualDev", vm->sound_dev);
        put(&o, "sound.autodetect", "TRUE");
        put(&o, "sound.fileName", "-1");
    }
    put(&o, "floppy0.present", "FALSE");
    if (vm->annotation)
        put(&o, "annotation", vm->annotation);
    r = o.r;
    if (!r)
        r = vk_vmx_serialize(v, text, len, e);
    vk_vmx_free(v);
    return r;
}
