/* ovf_write.c - the OVF 1.x descriptor of a machine, laid out as VMware's
 * ovftool writes it: the envelope/1 namespace as default (elements
 * unprefixed, attributes ovf:), References -> DiskSection ->
 * NetworkSection -> VirtualSystem { Info, Name, OperatingSystemSection,
 * VirtualHardwareSection { Info, System, Items, vmw:Config,
 * vmw:ExtraConfig }, AnnotationSection }, the rasd children of every Item
 * sorted by name (VMware requires it), two-space indentation.  Built as a
 * libxml2 tree and serialised by libxml2: every name and value is escaped
 * there. */
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>

#include "ovf.h"

struct w {
    xmlDocPtr doc;
    xmlNsPtr def, ovf, rasd, vssd, vmw;
    unsigned next_instance;
    bool oom;
};

static const xmlChar *X(const char *s) { return (const xmlChar *)s; }

static xmlNodePtr el(struct w *w, xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    xmlNodePtr n = xmlNewChild(parent, ns, X(name), NULL);
    if (!n) {
        w->oom = true;
        return NULL;
    }
    if (text) {
        xmlNodePtr t = xmlNewText(X(text));
        if (!t || !xmlAddChild(n, t)) {
            xmlFreeNode(t);
            w->oom = true;
        }
    }
    return n;
}

static void attr(struct w *w, xmlNodePtr n, xmlNsPtr ns, const char *name, const char *value)
{
    if (n && !xmlNewNsProp(n, ns, X(name), X(value)))
        w->oom = true;
}

static void attr_u64(struct w *w, xmlNodePtr n, xmlNsPtr ns, const char *name, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    attr(w, n, ns, name, buf);
}

/* ---- Items: rasd children collected, then emitted sorted by name ---- */

#define MAX_FIELDS 16

struct item {
    const char *name[MAX_FIELDS];
    char value[MAX_FIELDS][400];
    size_t n;
    bool optional; /* ovf:required="false" */
    /* vmw children after the rasd ones, in this order */
    const char *cfg_key[8];
    const char *cfg_val[8];
    size_t n_cfg;
    unsigned cores; /* vmw:CoresPerSocket, 0: none */
};

static void field(struct item *it, const char *name, const char *fmt, ...) VK_PRINTF(3, 4);
static void field(struct item *it, const char *name, const char *fmt, ...)
{
    if (it->n == MAX_FIELDS)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->value[it->n], sizeof it->value[it->n], fmt, ap);
    va_end(ap);
    it->name[it->n++] = name;
}

static void cfg(struct item *it, const char *key, const char *value)
{
    if (it->n_cfg < 8) {
        it->cfg_key[it->n_cfg] = key;
        it->cfg_val[it->n_cfg++] = value;
    }
}

static void emit_item(struct w *w, xmlNodePtr vhs, struct item *it)
{
    field(it, "InstanceID", "%u", w->next_instance++);
    /* insertion sort by element name (a few fields) */
    for (size_t i = 1; i < it->n; i++)
        for (size_t j = i; j > 0 && strcmp(it->name[j - 1], it->name[j]) > 0; j--) {
            const char *tn = it->name[j];
            it->name[j] = it->name[j - 1];
            it->name[j - 1] = tn;
            char tv[400];
            memcpy(tv, it->value[j], sizeof tv);
            memcpy(it->value[j], it->value[j - 1], sizeof tv);
            memcpy(it->value[j - 1], tv, sizeof tv);
        }
    xmlNodePtr n = el(w, vhs, w->def, "Item", NULL);
    if (!n)
        return;
    if (it->optional)
        attr(w, n, w->ovf, "required", "false");
    for (size_t i = 0; i < it->n; i++)
        el(w, n, w->rasd, it->name[i], it->value[i]);
    if (it->cores) {
        char buf[16];
        snprintf(buf, sizeof buf, "%u", it->cores);
        xmlNodePtr c = el(w, n, w->vmw, "CoresPerSocket", buf);
        attr(w, c, w->ovf, "required", "false");
    }
    for (size_t i = 0; i < it->n_cfg; i++) {
        xmlNodePtr c = el(w, n, w->vmw, "Config", NULL);
        attr(w, c, w->ovf, "required", "false");
        attr(w, c, w->vmw, "key", it->cfg_key[i]);
        attr(w, c, w->vmw, "value", it->cfg_val[i]);
    }
}

static unsigned ctrl_instance(const vk_ovf_vm *vm, enum vk_ovf_bus bus, unsigned num)
{
    for (size_t i = 0; i < vm->n_ctrls; i++)
        if (vm->ctrls[i].bus == bus && vm->ctrls[i].num == num)
            return vm->ctrls[i].instance;
    return 0;
}

static void hardware(struct w *w, xmlNodePtr vs, const vk_ovf_vm *vm, vk_ovf_ctrl *ctrls)
{
    xmlNodePtr vhs = el(w, vs, w->def, "VirtualHardwareSection", NULL);
    el(w, vhs, w->def, "Info", "Virtual hardware requirements");
    xmlNodePtr sys = el(w, vhs, w->def, "System", NULL);
    char type[16];
    snprintf(type, sizeof type, "vmx-%02u", vm->hw_version);
    el(w, sys, w->vssd, "ElementName", "Virtual Hardware Family");
    el(w, sys, w->vssd, "InstanceID", "0");
    el(w, sys, w->vssd, "VirtualSystemIdentifier", vm->name);
    el(w, sys, w->vssd, "VirtualSystemType", type);
    w->next_instance = 1;

    struct item it = {0};
    field(&it, "AllocationUnits", "hertz * 10^6");
    field(&it, "Description", "Number of Virtual CPUs");
    field(&it, "ElementName", "%u virtual CPU(s)", vm->cpus);
    field(&it, "ResourceType", "3");
    field(&it, "VirtualQuantity", "%u", vm->cpus);
    it.cores = vm->cores_per_socket;
    emit_item(w, vhs, &it);

    it = (struct item){0};
    field(&it, "AllocationUnits", "byte * 2^20");
    field(&it, "Description", "Memory Size");
    field(&it, "ElementName", "%lluMB of memory", (unsigned long long)vm->memory_mib);
    field(&it, "ResourceType", "4");
    field(&it, "VirtualQuantity", "%llu", (unsigned long long)vm->memory_mib);
    emit_item(w, vhs, &it);

    for (size_t i = 0; i < vm->n_ctrls; i++) {
        const vk_ovf_ctrl *c = &vm->ctrls[i];
        const vk_ovf_dev *d = vk_ovf_ctrl_dev(c);
        it = (struct item){0};
        field(&it, "Address", "%u", c->num);
        field(&it, "Description", "%s Controller", d->label);
        if (c->bus == VK_BUS_IDE)
            field(&it, "ElementName", "IDE %u", c->num);
        else
            field(&it, "ElementName", "%s controller %u", d->label, c->num);
        if (d->subtype)
            field(&it, "ResourceSubType", "%s", d->subtype);
        field(&it, "ResourceType", "%u", d->rtype);
        ctrls[i].instance = w->next_instance;
        emit_item(w, vhs, &it);
    }
    for (size_t i = 0; i < vm->n_disks; i++) {
        const vk_ovf_disk *d = &vm->disks[i];
        it = (struct item){0};
        field(&it, "AddressOnParent", "%u", d->unit);
        field(&it, "ElementName", "Hard disk %zu", i + 1);
        field(&it, "HostResource", "ovf:/disk/%s", d->disk_id);
        field(&it, "Parent", "%u", ctrl_instance(vm, d->bus, d->ctrl));
        field(&it, "ResourceType", "17");
        cfg(&it, "backing.writeThrough", "false");
        emit_item(w, vhs, &it);
    }
    for (size_t i = 0; i < vm->n_cdroms; i++) {
        const vk_ovf_cdrom *c = &vm->cdroms[i];
        it = (struct item){.optional = true};
        field(&it, "AddressOnParent", "%u", c->unit);
        field(&it, "AutomaticAllocation", "false");
        field(&it, "ElementName", "CD/DVD drive %zu", i + 1);
        field(&it, "Parent", "%u", ctrl_instance(vm, c->bus, c->ctrl));
        field(&it, "ResourceSubType", "vmware.cdrom.remotepassthrough");
        field(&it, "ResourceType", "15");
        cfg(&it, "backing.exclusive", "false");
        cfg(&it, "connectable.allowGuestControl", "true");
        emit_item(w, vhs, &it);
    }
    for (size_t i = 0; i < vm->n_nics; i++) {
        const vk_ovf_nic *n = &vm->nics[i];
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_NIC, n->vmx_dev);
        it = (struct item){0};
        field(&it, "AddressOnParent", "%u", 7 + n->num);
        field(&it, "AutomaticAllocation", "%s", n->start_connected ? "true" : "false");
        field(&it, "Connection", "%s", n->network);
        field(&it, "Description", "%s ethernet adapter on \"%s\"", d->subtype, n->network);
        field(&it, "ElementName", "Network adapter %zu", i + 1);
        field(&it, "ResourceSubType", "%s", d->subtype);
        field(&it, "ResourceType", "10");
        cfg(&it, "wakeOnLanEnabled", "false");
        cfg(&it, "connectable.allowGuestControl", "true");
        emit_item(w, vhs, &it);
    }
    const char *usb[2] = {vm->usb_ehci ? "ehci" : NULL, vm->usb_xhci ? "xhci" : NULL};
    for (int i = 0; i < 2; i++) {
        if (!usb[i])
            continue;
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_USB, usb[i]);
        it = (struct item){.optional = true};
        field(&it, "Address", "0");
        field(&it, "AutomaticAllocation", "false");
        field(&it, "Description", "USB Controller (%s)", i == 0 ? "EHCI" : "XHCI");
        field(&it, "ElementName", "USB controller%s", i == 0 ? "" : " (XHCI)");
        field(&it, "ResourceSubType", "%s", d->subtype);
        field(&it, "ResourceType", "23");
        if (i == 0)
            cfg(&it, "ehciEnabled", "true");
        emit_item(w, vhs, &it);
    }
    char vram_kb[24];
    if (vm->video) {
        it = (struct item){.optional = true};
        field(&it, "AutomaticAllocation", "false");
        field(&it, "ElementName", "Video card");
        field(&it, "ResourceType", "24");
        cfg(&it, "useAutoDetect", "false");
        if (vm->vram_bytes) {
            snprintf(vram_kb, sizeof vram_kb, "%llu", (unsigned long long)(vm->vram_bytes / 1024));
            cfg(&it, "videoRamSizeInKB", vram_kb);
        }
        cfg(&it, "enable3DSupport", vm->enable_3d ? "true" : "false");
        emit_item(w, vhs, &it);
    }
    if (vm->vmci) {
        it = (struct item){.optional = true};
        field(&it, "AutomaticAllocation", "false");
        field(&it, "ElementName", "VMCI device");
        field(&it, "ResourceSubType", "vmware.vmci");
        field(&it, "ResourceType", "1");
        cfg(&it, "allowUnrestrictedCommunication", "false");
        emit_item(w, vhs, &it);
    }
    if (vm->sound) {
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_SOUND, vm->sound_dev);
        it = (struct item){.optional = true};
        field(&it, "AutomaticAllocation", "false");
        field(&it, "ElementName", "Sound card");
        field(&it, "ResourceSubType", "%s", d->subtype);
        field(&it, "ResourceType", "%u", d->rtype);
        emit_item(w, vhs, &it);
    }

    /* typed settings of the machine, then the raw .vmx keys */
    struct {
        const char *key, *value;
    } cfgs[2 + VK_CFG_COUNT];
    size_t nc = 0;
    for (int i = 0; i < VK_CFG_COUNT; i++)
        if (i != VK_CFG_SECURE_BOOT)
            cfgs[nc].key = vk_ovf_cfgs[i].ovf, cfgs[nc++].value = vm->cfg[i] ? "true" : "false";
    cfgs[nc].key = "firmware", cfgs[nc++].value = vm->efi ? "efi" : "bios";
    if (vm->efi)
        cfgs[nc].key = vk_ovf_cfgs[VK_CFG_SECURE_BOOT].ovf,
        cfgs[nc++].value = vm->cfg[VK_CFG_SECURE_BOOT] ? "true" : "false";
    for (size_t i = 0; i < nc; i++) {
        xmlNodePtr c = el(w, vhs, w->vmw, "Config", NULL);
        attr(w, c, w->ovf, "required", "false");
        attr(w, c, w->vmw, "key", cfgs[i].key);
        attr(w, c, w->vmw, "value", cfgs[i].value);
    }
    for (size_t i = 0; i < vm->n_extra; i++) {
        xmlNodePtr c = el(w, vhs, w->vmw, "ExtraConfig", NULL);
        attr(w, c, w->ovf, "required", "false");
        attr(w, c, w->vmw, "key", vm->extra[i].key);
        attr(w, c, w->vmw, "value", vm->extra[i].value);
    }
}

int vk_ovf_write_xml(const vk_ovf_vm *vm, char **xml, size_t *len, vk_err *e)
{
    *xml = NULL;
    *len = 0;
    struct w w = {0};
    vk_ovf_ctrl *ctrls = vk_calloc(vm->n_ctrls + 1, sizeof *ctrls, e);
    if (!ctrls)
        return VMDKIT_ENOMEM;
    if (vm->n_ctrls)
        memcpy(ctrls, vm->ctrls, vm->n_ctrls * sizeof *ctrls);
    vk_ovf_vm local = *vm;
    local.ctrls = ctrls; /* InstanceIDs are assigned here */

    w.doc = xmlNewDoc(X("1.0"));
    xmlNodePtr env = w.doc ? xmlNewNode(NULL, X("Envelope")) : NULL;
    if (!env) {
        xmlFreeDoc(w.doc);
        free(ctrls);
        return vk_fail(e, VMDKIT_ENOMEM, "OVF: out of memory");
    }
    xmlDocSetRootElement(w.doc, env);
    /* the declarations in ovftool's order */
    w.def = xmlNewNs(env, X(VK_OVF_NS_ENV1), NULL);
    xmlNewNs(env, X(VK_OVF_NS_CIM), X("cim"));
    w.ovf = xmlNewNs(env, X(VK_OVF_NS_ENV1), X("ovf"));
    w.rasd = xmlNewNs(env, X(VK_OVF_NS_RASD), X("rasd"));
    w.vmw = xmlNewNs(env, X(VK_OVF_NS_VMW), X("vmw"));
    w.vssd = xmlNewNs(env, X(VK_OVF_NS_VSSD), X("vssd"));
    xmlNewNs(env, X(VK_OVF_NS_XSI), X("xsi"));
    if (!w.def || !w.ovf || !w.rasd || !w.vmw || !w.vssd)
        w.oom = true;
    xmlSetNs(env, w.def);

    xmlNodePtr refs = el(&w, env, w.def, "References", NULL);
    for (size_t i = 0; i < vm->n_disks; i++) {
        const vk_ovf_disk *d = &vm->disks[i];
        if (!d->href)
            continue;
        xmlNodePtr f = el(&w, refs, w.def, "File", NULL);
        attr(&w, f, w.ovf, "href", d->href);
        attr(&w, f, w.ovf, "id", d->file_id);
        attr_u64(&w, f, w.ovf, "size", d->file_size);
    }
    xmlNodePtr ds = el(&w, env, w.def, "DiskSection", NULL);
    el(&w, ds, w.def, "Info", "Virtual disk information");
    for (size_t i = 0; i < vm->n_disks; i++) {
        const vk_ovf_disk *d = &vm->disks[i];
        xmlNodePtr n = el(&w, ds, w.def, "Disk", NULL);
        attr_u64(&w, n, w.ovf, "capacity", d->capacity_bytes);
        attr(&w, n, w.ovf, "capacityAllocationUnits", "byte");
        attr(&w, n, w.ovf, "diskId", d->disk_id);
        attr(&w, n, w.ovf, "fileRef", d->file_id ? d->file_id : "");
        attr(&w, n, w.ovf, "format", VK_OVF_FORMAT_STREAM);
        attr_u64(&w, n, w.ovf, "populatedSize", d->populated_bytes);
    }
    /* one Network per distinct NIC network, in order of first use */
    if (vm->n_nics) {
        xmlNodePtr ns = el(&w, env, w.def, "NetworkSection", NULL);
        el(&w, ns, w.def, "Info", "The list of logical networks");
        for (size_t i = 0; i < vm->n_nics; i++) {
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                seen |= strcmp(vm->nics[j].network, vm->nics[i].network) == 0;
            if (seen)
                continue;
            xmlNodePtr n = el(&w, ns, w.def, "Network", NULL);
            attr(&w, n, w.ovf, "name", vm->nics[i].network);
            char desc[300];
            snprintf(desc, sizeof desc, "The %s network", vm->nics[i].network);
            el(&w, n, w.def, "Description", desc);
        }
    }
    xmlNodePtr vs = el(&w, env, w.def, "VirtualSystem", NULL);
    attr(&w, vs, w.ovf, "id", vm->name);
    el(&w, vs, w.def, "Info", "A virtual machine");
    el(&w, vs, w.def, "Name", vm->name);
    const vk_ovf_os *os = vk_ovf_os_by_vmx(vm->guest_os);
    if (!os) /* a guestOS not in the table: VMware's generic one of its width */
        os = vk_ovf_os_other(strstr(vm->guest_os, "64") != NULL);
    xmlNodePtr oss = el(&w, vs, w.def, "OperatingSystemSection", NULL);
    attr_u64(&w, oss, w.ovf, "id", os->cim);
    attr(&w, oss, w.vmw, "osType", os->vmw);
    el(&w, oss, w.def, "Info", "The kind of installed guest operating system");
    el(&w, oss, w.def, "Description", os->text);
    hardware(&w, vs, &local, ctrls);
    if (vm->annotation) {
        xmlNodePtr a = el(&w, vs, w.def, "AnnotationSection", NULL);
        attr(&w, a, w.ovf, "required", "false");
        el(&w, a, w.def, "Info", "A human-readable annotation");
        el(&w, a, w.def, "Annotation", vm->annotation);
    }
    int r = 0;
    if (w.oom) {
        r = vk_fail(e, VMDKIT_ENOMEM, "OVF: out of memory");
    } else {
        xmlChar *buf = NULL;
        int n = 0;
        xmlDocDumpFormatMemoryEnc(w.doc, &buf, &n, "UTF-8", 1);
        if (!buf || n <= 0) {
            r = vk_fail(e, VMDKIT_ENOMEM, "OVF: out of memory");
        } else if (!(*xml = vk_malloc((size_t)n + 1, e))) {
            r = VMDKIT_ENOMEM;
        } else {
            memcpy(*xml, buf, (size_t)n);
            (*xml)[n] = 0;
            *len = (size_t)n;
        }
        xmlFree(buf);
    }
    xmlFreeDoc(w.doc);
    free(ctrls);
    return r;
}
