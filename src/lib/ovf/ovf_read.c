/* ovf_read.c - an OVF descriptor (1.x or 2.0; VMware, open-vmdk, COT,
 * osbuild, VirtualBox) into the machine model.  Parsed by libxml2 without
 * network access, without loading a DTD and without substituting entities
 * (so a hostile file can neither fetch nor expand anything); elements are
 * matched by namespace and local name, so any prefix works. */
#include <ctype.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "ovf.h"

struct rd {
    const char *name;
    const xmlChar *env_ns; /* envelope/1 or envelope/2 */
    vk_ovf_vm *vm;
    vk_ovf_facts *facts;
    vk_err *e;
};

static bool is(const xmlNode *n, const char *local)
{
    return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)local) == 0;
}

static xmlNodePtr child(const xmlNode *n, const char *local)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (is(c, local))
            return c;
    return NULL;
}

/* An attribute in the envelope namespace, or without one (some writers
 * leave the prefix out).  Caller frees with xmlFree. */
static char *get_attr(const struct rd *rd, xmlNodePtr n, const char *name)
{
    xmlChar *v = xmlGetNsProp(n, (const xmlChar *)name, rd->env_ns);
    if (!v)
        v = xmlGetNoNsProp(n, (const xmlChar *)name);
    return (char *)v;
}

static char *get_vmw_attr(xmlNodePtr n, const char *name)
{
    return (char *)xmlGetNsProp(n, (const xmlChar *)name, (const xmlChar *)VK_OVF_NS_VMW);
}

/* The text of N with surrounding white space removed; caller frees. */
static char *text_of(xmlNodePtr n)
{
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    if (!t)
        return NULL;
    char *s = (char *)t, *start = s;
    while (isspace((unsigned char)*start))
        start++;
    size_t len = strlen(start);
    while (len && isspace((unsigned char)start[len - 1]))
        len--;
    memmove(s, start, len);
    s[len] = 0;
    return s;
}

static int bad(const struct rd *rd, const char *field, const char *fmt, ...) VK_PRINTF(3, 4);
static int bad(const struct rd *rd, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vk_fail(rd->e, VMDKIT_EFORMAT, "%s: %s: %s", rd->name, field, msg);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Multiplier of an allocation-units string: "byte", "byte * 2^20",
 * "byte*2^30", "KiloBytes", "MegaBytes", "GigaBytes", "MB" ...  0 when
 * unknown. */
static uint64_t units_of(const char *u)
{
    if (!u || !*u)
        return 1;
    char s[64];
    size_t k = 0;
    for (const char *p = u; *p && k + 1 < sizeof s; p++)
        if (!isspace((unsigned char)*p))
            s[k++] = (char)tolower((unsigned char)*p);
    s[k] = 0;
    static const struct {
        const char *name;
        unsigned shift;
    } words[] = {{"byte", 0},       {"bytes", 0}, {"kilobytes", 10}, {"kb", 10},
                 {"megabytes", 20}, {"mb", 20},   {"mib", 20},       {"gigabytes", 30},
                 {"gb", 30},        {"gib", 30},  {"terabytes", 40}, {"tb", 40}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(s, words[i].name) == 0)
            return UINT64_C(1) << words[i].shift;
    unsigned p;
    char tail;
    if (sscanf(s, "byte*2^%u%c", &p, &tail) == 1 && p <= 50)
        return UINT64_C(1) << p;
    if (sscanf(s, "byte*10^%u%c", &p, &tail) == 1 && p <= 15) {
        uint64_t m = 1;
        while (p--)
            m *= 10;
        return m;
    }
    return 0;
}

/* A size attribute: NUMBER x UNITS into *out, refusing overflow. */
static int sized(const struct rd *rd, const char *field, const char *num, const char *units,
                 uint64_t *out)
{
    uint64_t v, m = units_of(units);
    if (!parse_u64(num, &v))
        return bad(rd, field, "\"%s\" is not a number", num ? num : "");
    if (!m)
        return vk_fail(rd->e, VMDKIT_EUNSUPPORTED, "%s: %s: allocation units \"%s\" are not known",
                       rd->name, field, units);
    if (!vk_mul_ok(v, m, out))
        return vk_fail(rd->e, VMDKIT_ELIMIT, "%s: %s: %s x %s is beyond 2^64 bytes", rd->name, field,
                       num, units);
    return 0;
}

bool vk_ovf_safe_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 255 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

/* ---- References and DiskSection ---- */

struct file_ref {
    char *id, *href, *compression;
    uint64_t size;
    bool has_size;
};

struct refs {
    struct file_ref *v;
    size_t n;
};

static void refs_free(struct refs *r)
{
    for (size_t i = 0; i < r->n; i++) {
        xmlFree(r->v[i].id);
        xmlFree(r->v[i].href);
        xmlFree(r->v[i].compression);
    }
    free(r->v);
}

static int read_references(struct rd *rd, xmlNodePtr env, struct refs *refs)
{
    xmlNodePtr sec = child(env, "References");
    for (xmlNodePtr f = sec ? sec->children : NULL; f; f = f->next) {
        if (!is(f, "File"))
            continue;
        if (refs->n >= VK_OVF_MAX_FILES)
            return vk_fail(rd->e, VMDKIT_ELIMIT, "%s: References: more than %u files", rd->name,
                           VK_OVF_MAX_FILES);
        struct file_ref *fr = vk_ovf_grow((void **)&refs->v, &refs->n, sizeof *fr, rd->e);
        if (!fr)
            return VMDKIT_ENOMEM;
        fr->id = get_attr(rd, f, "id");
        fr->href = get_attr(rd, f, "href");
        fr->compression = get_attr(rd, f, "compression");
        char *size = get_attr(rd, f, "size");
        char *chunk = get_attr(rd, f, "chunkSize");
        int r = 0;
        if (!fr->id || !fr->href)
            r = bad(rd, "References/File", "a File needs ovf:id and ovf:href");
        else if (strstr(fr->href, "://"))
            r = vk_fail(rd->e, VMDKIT_EUNSUPPORTED,
                        "%s: File %s: href \"%s\": files fetched from a URL are not supported", rd->name,
                        fr->id, fr->href);
        else if (!vk_ovf_safe_name(fr->href))
            r = vk_fail(rd->e, VMDKIT_EPATH,
                        "%s: File %s: href \"%s\": not a plain file name inside the package", rd->name,
                        fr->id, fr->href);
        else if (chunk)
            r = vk_fail(rd->e, VMDKIT_EUNSUPPORTED,
                        "%s: File %s: ovf:chunkSize: files split into chunks are not supported",
                        rd->name, fr->id);
        else if (size && !(fr->has_size = parse_u64(size, &fr->size)))
            r = bad(rd, "References/File", "%s: ovf:size \"%s\" is not a number", fr->id, size);
        xmlFree(size);
        xmlFree(chunk);
        if (r)
            return r;
        if (rd->facts) {
            char *h = vk_strdup(fr->href, rd->e);
            char **slot =
                h ? vk_ovf_grow((void **)&rd->facts->hrefs, &rd->facts->n_hrefs, sizeof *slot, rd->e)
                  : NULL;
            if (!slot) {
                free(h);
                return VMDKIT_ENOMEM;
            }
            *slot = h;
        }
    }
    return 0;
}

static const struct file_ref *find_file(const struct refs *refs, const char *id)
{
    for (size_t i = 0; id && i < refs->n; i++)
        if (strcmp(refs->v[i].id, id) == 0)
            return &refs->v[i];
    return NULL;
}

/* Disks of the DiskSection, unattached (bus set when an Item names them). */
struct disk_decl {
    char *id;
    size_t index; /* into vm->disks */
    bool used;
    char *iso; /* a CD image VirtualBox lists as a Disk (ISO 9660): its file */
};

static bool is_iso_format(const char *fmt)
{
    return fmt && (strstr(fmt, "Ecma-119") || strstr(fmt, "ecma-119") || strstr(fmt, "iso9660"));
}

static int read_disks(struct rd *rd, xmlNodePtr env, const struct refs *refs, struct disk_decl **decls,
                      size_t *n_decls)
{
    xmlNodePtr sec = child(env, "DiskSection");
    for (xmlNodePtr d = sec ? sec->children : NULL; d; d = d->next) {
        if (!is(d, "Disk"))
            continue;
        if (*n_decls >= VK_OVF_MAX_FILES)
            return vk_fail(rd->e, VMDKIT_ELIMIT, "%s: DiskSection: more than %u disks", rd->name,
                           VK_OVF_MAX_FILES);
        char *id = get_attr(rd, d, "diskId"), *cap = get_attr(rd, d, "capacity");
        char *units = get_attr(rd, d, "capacityAllocationUnits"), *ref = get_attr(rd, d, "fileRef");
        char *fmt = get_attr(rd, d, "format"), *pop = get_attr(rd, d, "populatedSize");
        int r = 0;
        uint64_t capacity = 0;
        const struct file_ref *f = ref && *ref ? find_file(refs, ref) : NULL;
        if (!id)
            r = bad(rd, "DiskSection/Disk", "a Disk needs ovf:diskId");
        else if (!cap)
            r = bad(rd, "DiskSection/Disk", "%s: a Disk needs ovf:capacity", id);
        else if (cap && strstr(cap, "${"))
            r = vk_fail(
                rd->e, VMDKIT_EUNSUPPORTED,
                "%s: Disk %s: ovf:capacity \"%s\": capacities set by a property are not supported",
                rd->name, id, cap);
        else if ((r = sized(rd, "DiskSection/Disk ovf:capacity", cap, units, &capacity)))
            ;
        else if (capacity == 0)
            r = bad(rd, "DiskSection/Disk", "%s: ovf:capacity is 0", id);
        else if (ref && *ref && !f)
            r = bad(rd, "DiskSection/Disk", "%s: ovf:fileRef \"%s\" names no File of References", id,
                    ref);
        else if (f && f->compression && *f->compression && strcmp(f->compression, "gzip") != 0)
            r = vk_fail(rd->e, VMDKIT_EUNSUPPORTED,
                        "%s: File %s: ovf:compression \"%s\" is not supported (only gzip)", rd->name,
                        f->id, f->compression);
        else if (f && fmt && !strstr(fmt, "vmdk.html") && !is_iso_format(fmt))
            r = vk_fail(rd->e, VMDKIT_EUNSUPPORTED, "%s: Disk %s: ovf:format \"%s\" is not a VMDK",
                        rd->name, id, fmt);
        for (size_t i = 0; !r && i < *n_decls; i++)
            if (strcmp((*decls)[i].id, id) == 0)
                r = bad(rd, "DiskSection/Disk", "ovf:diskId \"%s\" appears twice", id);
        vk_ovf_disk *disk = NULL;
        struct disk_decl *decl = NULL;
        if (!r && f && is_iso_format(fmt)) {
            /* not a disk: a CD-ROM Item names it */
            if (!(decl = vk_ovf_grow((void **)decls, n_decls, sizeof *decl, rd->e)) ||
                !(decl->id = vk_strdup(id, rd->e)) || !(decl->iso = vk_strdup(f->href, rd->e)))
                r = VMDKIT_ENOMEM;
            else
                decl->index = SIZE_MAX;
        } else if (!r) {
            disk = vk_ovf_grow((void **)&rd->vm->disks, &rd->vm->n_disks, sizeof *disk, rd->e);
            decl = disk ? vk_ovf_grow((void **)decls, n_decls, sizeof *decl, rd->e) : NULL;
            if (!decl)
                r = VMDKIT_ENOMEM;
        }
        if (!r && disk) {
            decl->index = rd->vm->n_disks - 1;
            disk->bus = VK_BUS_COUNT; /* not attached yet */
            disk->capacity_bytes = capacity;
            if (!(decl->id = vk_strdup(id, rd->e)) || !(disk->disk_id = vk_strdup(id, rd->e)) ||
                (fmt && !(disk->format = vk_strdup(fmt, rd->e))))
                r = VMDKIT_ENOMEM;
            if (!r && f) {
                disk->gzip = f->compression && strcmp(f->compression, "gzip") == 0;
                disk->file_size = f->size;
                disk->has_file_size = f->has_size;
                if (!(disk->href = vk_strdup(f->href, rd->e)) ||
                    !(disk->file_id = vk_strdup(f->id, rd->e)))
                    r = VMDKIT_ENOMEM;
            }
            uint64_t p;
            if (!r && pop && parse_u64(pop, &p))
                disk->populated_bytes = p;
        }
        xmlFree(id);
        xmlFree(cap);
        xmlFree(units);
        xmlFree(ref);
        xmlFree(fmt);
        xmlFree(pop);
        if (r)
            return r;
    }
    return 0;
}

/* ---- Items ---- */

/* The fields of one Item (rasd), StorageItem (sasd) or EthernetPortItem
 * (epasd): the same local names in all three. */
struct item {
    xmlNodePtr node;
    unsigned rtype;
    char *subtype, *address, *parent, *unit, *host, *connection, *quantity, *units, *instance,
        *automatic;
    unsigned cores;
};

static void item_free(struct item *it)
{
    free(it->subtype);
    free(it->address);
    free(it->parent);
    free(it->unit);
    free(it->host);
    free(it->connection);
    free(it->quantity);
    free(it->units);
    free(it->instance);
    free(it->automatic);
}

static int item_read(struct rd *rd, xmlNodePtr n, struct item *it)
{
    memset(it, 0, sizeof *it);
    it->node = n;
    char *rtype = NULL;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        char **slot = is(c, "ResourceType")          ? &rtype
                      : is(c, "ResourceSubType")     ? &it->subtype
                      : is(c, "Address")             ? &it->address
                      : is(c, "Parent")              ? &it->parent
                      : is(c, "AddressOnParent")     ? &it->unit
                      : is(c, "HostResource")        ? &it->host
                      : is(c, "Connection")          ? &it->connection
                      : is(c, "VirtualQuantity")     ? &it->quantity
                      : is(c, "AllocationUnits")     ? &it->units
                      : is(c, "InstanceID")          ? &it->instance
                      : is(c, "AutomaticAllocation") ? &it->automatic
                                                     : NULL;
        if (is(c, "CoresPerSocket")) {
            char *t = text_of(c);
            uint64_t v;
            if (t && parse_u64(t, &v) && v >= 1 && v <= 4096)
                it->cores = (unsigned)v;
            free(t);
            continue;
        }
        if (!slot || *slot)
            continue;
        *slot = text_of(c);
    }
    uint64_t v = 0;
    int r = 0;
    if (!rtype || !parse_u64(rtype, &v) || v > 65535)
        r = bad(rd, "VirtualHardwareSection/Item", "ResourceType \"%s\" is not a number",
                rtype ? rtype : "");
    it->rtype = (unsigned)v;
    free(rtype);
    return r;
}

static int item_number(struct rd *rd, const struct item *it, const char *field, const char *s,
                       uint64_t max, unsigned *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > max)
        return bad(rd, field, "Item %s: \"%s\" is not a number in 0..%llu",
                   it->instance ? it->instance : "?", s ? s : "", (unsigned long long)max);
    *out = (unsigned)v;
    return 0;
}

/* A controller as read, with its InstanceID for the Parent of devices. */
struct ctrl_ref {
    char *instance;
    enum vk_ovf_bus bus;
    unsigned num;
};

struct hw {
    struct ctrl_ref *ctrls;
    size_t n_ctrls;
    unsigned next_num[VK_BUS_COUNT];
};

static int add_controller(struct rd *rd, struct hw *hw, const struct item *it, const vk_ovf_dev *d)
{
    enum vk_ovf_bus bus = d->kind == VK_DEV_SCSI   ? VK_BUS_SCSI
                          : d->kind == VK_DEV_SATA ? VK_BUS_SATA
                          : d->kind == VK_DEV_NVME ? VK_BUS_NVME
                                                   : VK_BUS_IDE;
    unsigned num = hw->next_num[bus];
    unsigned limit = bus == VK_BUS_IDE ? 1 : 3;
    if (it->address && item_number(rd, it, "Item Address", it->address, limit, &num))
        return rd->e->code;
    if (num > limit || vk_ovf_find_ctrl(rd->vm, bus, num)) {
        /* two controllers claim one number, or one without an Address
         * follows the last number the bus has: give it the first free one */
        num = 0;
        while (num <= limit && vk_ovf_find_ctrl(rd->vm, bus, num))
            num++;
        if (num > limit)
            return vk_fail(rd->e, VMDKIT_ELIMIT, "%s: Item %s: more than %u %s controllers", rd->name,
                           it->instance ? it->instance : "?", limit + 1, vk_ovf_bus_vmx(bus));
    }
    hw->next_num[bus] = num + 1;
    vk_ovf_ctrl *c = vk_ovf_grow((void **)&rd->vm->ctrls, &rd->vm->n_ctrls, sizeof *c, rd->e);
    struct ctrl_ref *cr = c ? vk_ovf_grow((void **)&hw->ctrls, &hw->n_ctrls, sizeof *cr, rd->e) : NULL;
    if (!cr)
        return VMDKIT_ENOMEM;
    c->bus = bus;
    c->num = num;
    c->vmx_dev = bus == VK_BUS_SCSI ? d->vmx : NULL;
    cr->bus = bus;
    cr->num = num;
    if (it->instance && !(cr->instance = vk_strdup(it->instance, rd->e)))
        return VMDKIT_ENOMEM;
    return 0;
}

static const struct ctrl_ref *parent_of(const struct hw *hw, const char *parent)
{
    for (size_t i = 0; parent && i < hw->n_ctrls; i++)
        if (hw->ctrls[i].instance && strcmp(hw->ctrls[i].instance, parent) == 0)
            return &hw->ctrls[i];
    return NULL;
}

/* The SCSI subtype: VMware writes one word; older files list several
 * ("virtio lsilogic"): the first one known wins. */
static const vk_ovf_dev *scsi_subtype(const char *subtype)
{
    if (!subtype || !*subtype)
        return vk_ovf_dev_by_vmx(VK_DEV_SCSI, "lsilogic");
    char buf[128];
    snprintf(buf, sizeof buf, "%s", subtype);
    for (char *save = NULL, *w = strtok_r(buf, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        const vk_ovf_dev *d = vk_ovf_dev_by_ovf(6, w);
        if (d)
            return d;
    }
    return NULL;
}

/* Is unit UNIT of controller CTRL on BUS taken by a disk or a CD-ROM of VM? */
static bool slot_used(const vk_ovf_vm *vm, enum vk_ovf_bus bus, unsigned ctrl, unsigned unit)
{
    bool used = false;
    for (size_t i = 0; i < vm->n_disks; i++)
        used |= vm->disks[i].bus == bus && vm->disks[i].ctrl == ctrl && vm->disks[i].unit == unit;
    for (size_t i = 0; i < vm->n_cdroms; i++)
        used |= vm->cdroms[i].bus == bus && vm->cdroms[i].ctrl == ctrl && vm->cdroms[i].unit == unit;
    return used;
}

/* The unit of IT on controller C: its AddressOnParent, else the first unit
 * nothing else uses; a unit some other device holds is an error. */
static int unit_of(struct rd *rd, const struct item *it, const struct ctrl_ref *c, unsigned *unit)
{
    unsigned max = c->bus == VK_BUS_IDE    ? 1
                   : c->bus == VK_BUS_SATA ? 29
                   : c->bus == VK_BUS_NVME ? 14
                                           : 15;
    *unit = 0;
    if (it->unit) {
        int r = item_number(rd, it, "Item AddressOnParent", it->unit, max, unit);
        if (r)
            return r;
    } else {
        while (slot_used(rd->vm, c->bus, c->num, *unit) && *unit < max)
            (*unit)++;
    }
    if (slot_used(rd->vm, c->bus, c->num, *unit))
        return bad(rd, "VirtualHardwareSection/Item", "Item %s: %s%u:%u holds two devices",
                   it->instance ? it->instance : "?", vk_ovf_bus_vmx(c->bus), c->num, *unit);
    return 0;
}

/* "ovf:/disk/ID" (1.x) or "/disk/ID" (2.0) -> ID; same for "file". */
static const char *host_id(const char *host, const char *kind)
{
    if (!host)
        return NULL;
    if (strncmp(host, "ovf:", 4) == 0)
        host += 4;
    size_t k = strlen(kind);
    if (host[0] != '/' || strncmp(host + 1, kind, k) != 0 || host[1 + k] != '/')
        return NULL;
    return host + 2 + k;
}

static int add_disk(struct rd *rd, const struct hw *hw, const struct item *it, struct disk_decl *decls,
                    size_t n_decls, const struct refs *refs)
{
    const char *id = host_id(it->host, "disk");
    if (!id && host_id(it->host, "file"))
        return vk_fail(
            rd->e, VMDKIT_EUNSUPPORTED,
            "%s: Item %s: a disk naming a file (%s) rather than a Disk of the DiskSection is not supported",
            rd->name, it->instance ? it->instance : "?", it->host);
    if (!id)
        return bad(rd, "VirtualHardwareSection/Item", "Item %s: disk HostResource \"%s\" names no disk",
                   it->instance ? it->instance : "?", it->host ? it->host : "");
    struct disk_decl *decl = NULL;
    for (size_t i = 0; i < n_decls; i++)
        if (strcmp(decls[i].id, id) == 0)
            decl = &decls[i];
    if (!decl)
        return bad(rd, "VirtualHardwareSection/Item", "Item %s: disk \"%s\" is not in the DiskSection",
                   it->instance ? it->instance : "?", id);
    if (decl->used)
        return bad(rd, "VirtualHardwareSection/Item", "disk \"%s\" is attached twice", id);
    if (decl->iso)
        return bad(rd, "VirtualHardwareSection/Item",
                   "Item %s: the CD image \"%s\" is attached as a hard disk",
                   it->instance ? it->instance : "?", id);
    const struct ctrl_ref *c = parent_of(hw, it->parent);
    if (!c)
        return bad(rd, "VirtualHardwareSection/Item",
                   "Item %s: Parent \"%s\" is no disk controller Item",
                   it->instance ? it->instance : "?", it->parent ? it->parent : "");
    unsigned unit;
    int r = unit_of(rd, it, c, &unit);
    if (r)
        return r;
    (void)refs;
    vk_ovf_disk *d = &rd->vm->disks[decl->index];
    decl->used = true;
    d->bus = c->bus;
    d->ctrl = c->num;
    d->unit = unit;
    return 0;
}

static int add_cdrom(struct rd *rd, const struct hw *hw, const struct item *it, const struct refs *refs,
                     struct disk_decl *decls, size_t n_decls)
{
    const struct ctrl_ref *c = parent_of(hw, it->parent);
    if (!c)
        return vk_ovf_note(rd->vm, rd->e, "Item %s: a CD-ROM without a controller: left out",
                           it->instance ? it->instance : "?");
    unsigned unit;
    int r = unit_of(rd, it, c, &unit);
    if (r)
        return r;
    vk_ovf_cdrom *cd = vk_ovf_grow((void **)&rd->vm->cdroms, &rd->vm->n_cdroms, sizeof *cd, rd->e);
    if (!cd)
        return VMDKIT_ENOMEM;
    cd->bus = c->bus;
    cd->ctrl = c->num;
    cd->unit = unit;
    const char *fid = host_id(it->host, "file");
    const struct file_ref *f = fid ? find_file(refs, fid) : NULL;
    if (fid && !f)
        return bad(rd, "VirtualHardwareSection/Item", "Item %s: CD image \"%s\" is not in References",
                   it->instance ? it->instance : "?", fid);
    const char *iso = f ? f->href : NULL;
    const char *did = host_id(it->host, "disk");
    for (size_t i = 0; did && i < n_decls; i++)
        if (strcmp(decls[i].id, did) == 0 && decls[i].iso) {
            iso = decls[i].iso;
            decls[i].used = true;
        }
    if (iso && !(cd->iso_href = vk_strdup(iso, rd->e)))
        return VMDKIT_ENOMEM;
    return 0;
}

static int add_nic(struct rd *rd, const struct item *it)
{
    const vk_ovf_dev *d = vk_ovf_dev_by_ovf(10, it->subtype);
    int r = 0;
    if (!d) {
        /* VirtualBox's virtio and Am79C973 NICs have no VMware twin:
         * e1000 is the one every guest drives */
        d = vk_ovf_dev_by_vmx(VK_DEV_NIC, "e1000");
        if (it->subtype && *it->subtype)
            r = vk_ovf_note(rd->vm, rd->e, "Item %s: network adapter \"%s\" becomes an e1000",
                            it->instance ? it->instance : "?", it->subtype);
    }
    unsigned num = (unsigned)rd->vm->n_nics;
    if (num >= 10)
        return vk_fail(rd->e, VMDKIT_ELIMIT, "%s: more than 10 network adapters", rd->name);
    vk_ovf_nic *n = r ? NULL : vk_ovf_grow((void **)&rd->vm->nics, &rd->vm->n_nics, sizeof *n, rd->e);
    if (!n)
        return r ? r : VMDKIT_ENOMEM;
    n->num = num;
    n->vmx_dev = d->vmx;
    n->start_connected = !it->automatic || strcasecmp(it->automatic, "false") != 0;
    if (!(n->network = vk_strdup(it->connection && *it->connection ? it->connection : "nat", rd->e)))
        return VMDKIT_ENOMEM;
    return 0;
}

static bool item_has_config(xmlNodePtr n, const char *key, const char *value)
{
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (!is(c, "Config"))
            continue;
        char *k = get_vmw_attr(c, "key"), *v = get_vmw_attr(c, "value");
        bool hit = k && v && strcmp(k, key) == 0 && strcasecmp(v, value) == 0;
        xmlFree(k);
        xmlFree(v);
        if (hit)
            return true;
    }
    return false;
}

static char *item_config(xmlNodePtr n, const char *key)
{
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (!is(c, "Config"))
            continue;
        char *k = get_vmw_attr(c, "key");
        bool hit = k && strcmp(k, key) == 0;
        xmlFree(k);
        if (hit)
            return get_vmw_attr(c, "value");
    }
    return NULL;
}

/* One Item; controllers were taken in an earlier pass. */
static int read_item(struct rd *rd, struct hw *hw, const struct item *it, struct disk_decl *decls,
                     size_t n_decls, const struct refs *refs, bool controllers)
{
    vk_ovf_vm *vm = rd->vm;
    const vk_ovf_dev *d;
    switch (it->rtype) {
    case 5:
    case 6:
    case 20:
        if (!controllers)
            return 0;
        d = it->rtype == 6 ? scsi_subtype(it->subtype) : vk_ovf_dev_by_ovf(it->rtype, it->subtype);
        if (it->rtype == 5 && !d)
            d = vk_ovf_dev_by_vmx(VK_DEV_IDE, "ide");
        if (!d)
            return vk_fail(
                rd->e, VMDKIT_EUNSUPPORTED,
                "%s: Item %s: disk controller \"%s\" (ResourceType %u) has no VMware equivalent",
                rd->name, it->instance ? it->instance : "?", it->subtype ? it->subtype : "", it->rtype);
        return add_controller(rd, hw, it, d);
    default:
        break;
    }
    if (controllers)
        return 0;
    uint64_t q;
    switch (it->rtype) {
    case 3:
        if (!parse_u64(it->quantity, &q) || q < 1 || q > 4096)
            return bad(rd, "VirtualHardwareSection/Item", "CPU VirtualQuantity \"%s\" is not in 1..4096",
                       it->quantity ? it->quantity : "");
        vm->cpus = (unsigned)q;
        vm->cores_per_socket = it->cores;
        return 0;
    case 4: {
        uint64_t bytes;
        int r = sized(rd, "memory VirtualQuantity", it->quantity, it->units ? it->units : "byte * 2^20",
                      &bytes);
        if (r)
            return r;
        if (bytes < (UINT64_C(4) << 20))
            return bad(rd, "VirtualHardwareSection/Item", "memory of %llu bytes is less than 4 MiB",
                       (unsigned long long)bytes);
        vm->memory_mib = bytes >> 20;
        return 0;
    }
    case 17:
        return add_disk(rd, hw, it, decls, n_decls, refs);
    case 15:
    case 16:
        return add_cdrom(rd, hw, it, refs, decls, n_decls);
    case 14:
        return 0; /* floppy drives: VMware's new machines have none */
    case 10:
        return add_nic(rd, it);
    case 23:
        if (!it->subtype || !*it->subtype || strcasecmp(it->subtype, "vmware.usb.ehci") == 0)
            vm->usb_ehci = true;
        else if (strcasecmp(it->subtype, "vmware.usb.xhci") == 0)
            vm->usb_xhci = true;
        else
            return vk_ovf_note(vm, rd->e, "Item %s: USB controller \"%s\" left out",
                               it->instance ? it->instance : "?", it->subtype);
        return 0;
    case 24: {
        vm->video = true;
        char *kb = item_config(it->node, "videoRamSizeInKB");
        uint64_t v;
        if (kb && parse_u64(kb, &v) && v <= (UINT64_C(1) << 24))
            vm->vram_bytes = v * 1024;
        xmlFree(kb);
        vm->enable_3d = item_has_config(it->node, "enable3DSupport", "true");
        return 0;
    }
    case 1:
    case 35:
        if (it->subtype && strcasecmp(it->subtype, "vmware.vmci") == 0) {
            vm->vmci = true;
            return 0;
        }
        if ((d = vk_ovf_dev_by_ovf(it->rtype, it->subtype)) && d->kind == VK_DEV_SOUND) {
            vm->sound = true;
            vm->sound_dev = d->vmx;
            return 0;
        }
        break;
    default:
        break;
    }
    return vk_ovf_note(vm, rd->e, "Item %s: ResourceType %u%s%s left out",
                       it->instance ? it->instance : "?", it->rtype, it->subtype ? " " : "",
                       it->subtype ? it->subtype : "");
}

static bool is_item(const xmlNode *n)
{
    return is(n, "Item") || is(n, "StorageItem") || is(n, "EthernetPortItem");
}

static int read_items(struct rd *rd, xmlNodePtr vhs, struct disk_decl *decls, size_t n_decls,
                      const struct refs *refs)
{
    struct hw hw = {0};
    size_t count = 0;
    int r = 0;
    /* controllers first: devices name them by InstanceID, in any order */
    for (int pass = 0; pass < 2 && !r; pass++) {
        for (xmlNodePtr n = vhs->children; n && !r; n = n->next) {
            if (!is_item(n))
                continue;
            if (pass == 0 && ++count > VK_OVF_MAX_ITEMS) {
                r = vk_fail(rd->e, VMDKIT_ELIMIT, "%s: more than %u Items", rd->name, VK_OVF_MAX_ITEMS);
                break;
            }
            if (pass == 0 && rd->facts && !is(n, "Item"))
                rd->facts->ovf2_items = true;
            struct item it;
            r = item_read(rd, n, &it);
            if (!r && pass == 0 && rd->facts && it.rtype == 20 && it.subtype &&
                strcmp(it.subtype, "vmware.sata.ahci") != 0 &&
                strcmp(it.subtype, "vmware.nvme.controller") != 0 && !rd->facts->bad_sata_subtype &&
                !(rd->facts->bad_sata_subtype = vk_strdup(it.subtype, rd->e)))
                r = VMDKIT_ENOMEM;
            if (!r)
                r = read_item(rd, &hw, &it, decls, n_decls, refs, pass == 0);
            item_free(&it);
        }
    }
    for (size_t i = 0; i < hw.n_ctrls; i++)
        free(hw.ctrls[i].instance);
    free(hw.ctrls);
    return r;
}

/* VirtualSystemType: "vmx-13", "vmx-07 vmx-08", "virtualbox-2.2". */
static int read_system_type(struct rd *rd, xmlNodePtr vhs)
{
    xmlNodePtr sys = child(vhs, "System");
    char *type = text_of(child(sys, "VirtualSystemType"));
    unsigned best = 0;
    bool vbox = false;
    if (type) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", type);
        for (char *save = NULL, *w = strtok_r(buf, " \t,", &save); w;
             w = strtok_r(NULL, " \t,", &save)) {
            unsigned v;
            char tail;
            if (sscanf(w, "vmx-%u%c", &v, &tail) == 1 && v >= 3 && v <= 99)
                best = v > best ? v : best;
            if (strncasecmp(w, "virtualbox", 10) == 0)
                vbox = true;
        }
    }
    if (rd->facts) {
        rd->facts->max_vmx = best;
        rd->facts->virtualbox_family = vbox;
        rd->facts->system_type = type;
        type = NULL;
    }
    free(type);
    rd->vm->hw_version = best;
    return 0;
}

static int read_configs(struct rd *rd, xmlNodePtr vhs)
{
    vk_ovf_vm *vm = rd->vm;
    int r = 0;
    for (xmlNodePtr c = vhs->children; c && !r; c = c->next) {
        bool extra = is(c, "ExtraConfig");
        if (!is(c, "Config") && !extra)
            continue;
        char *k = get_vmw_attr(c, "key"), *v = get_vmw_attr(c, "value");
        if (k && v) {
            if (extra) {
                if (vm->n_extra < 4096)
                    r = vk_ovf_add_extra(vm, k, v, rd->e);
            } else if (strcmp(k, "firmware") == 0) {
                vm->efi = strcasecmp(v, "efi") == 0;
            } else {
                for (int i = 0; i < VK_CFG_COUNT; i++)
                    if (strcmp(k, vk_ovf_cfgs[i].ovf) == 0)
                        vm->cfg[i] = strcasecmp(v, "true") == 0;
            }
        }
        xmlFree(k);
        xmlFree(v);
    }
    return r;
}

static int read_os(struct rd *rd, xmlNodePtr vs)
{
    xmlNodePtr oss = child(vs, "OperatingSystemSection");
    char *type = oss ? get_vmw_attr(oss, "osType") : NULL;
    char *id = oss ? get_attr(rd, oss, "id") : NULL;
    const vk_ovf_os *os = vk_ovf_os_by_vmw(type);
    uint64_t cim;
    if (!os && id && parse_u64(id, &cim) && cim < 65536)
        os = vk_ovf_os_by_cim((unsigned)cim);
    int r = 0;
    if (!os) {
        os = vk_ovf_os_other(true);
        if (type || id)
            r = vk_ovf_note(rd->vm, rd->e, "guest OS \"%s\" (id %s) is not known: guestOS \"%s\"",
                            type ? type : "", id ? id : "-", os->vmx);
    }
    rd->vm->guest_os = os->vmx;
    xmlFree(type);
    xmlFree(id);
    return r;
}

void vk_ovf_facts_free(vk_ovf_facts *f)
{
    if (!f)
        return;
    free(f->system_type);
    free(f->bad_sata_subtype);
    for (size_t i = 0; i < f->n_hrefs; i++)
        free(f->hrefs[i]);
    free(f->hrefs);
    memset(f, 0, sizeof *f);
}

static int read_envelope(struct rd *rd, xmlNodePtr env)
{
    vk_ovf_vm *vm = rd->vm;
    if (child(env, "VirtualSystemCollection"))
        return vk_fail(rd->e, VMDKIT_EUNSUPPORTED,
                       "%s: VirtualSystemCollection: packages of several machines are not supported",
                       rd->name);
    xmlNodePtr vs = child(env, "VirtualSystem");
    if (!vs)
        return bad(rd, "Envelope", "no VirtualSystem");
    xmlNodePtr vhs = child(vs, "VirtualHardwareSection");
    if (!vhs)
        return bad(rd, "VirtualSystem", "no VirtualHardwareSection");
    struct refs refs = {0};
    struct disk_decl *decls = NULL;
    size_t n_decls = 0;
    int r = read_references(rd, env, &refs);
    if (!r)
        r = read_disks(rd, env, &refs, &decls, &n_decls);
    if (!r)
        r = read_system_type(rd, vhs);
    if (!r)
        r = read_items(rd, vhs, decls, n_decls, &refs);
    if (!r)
        r = read_configs(rd, vhs);
    if (!r)
        r = read_os(rd, vs);
    for (size_t i = 0; !r && i < n_decls; i++)
        if (!decls[i].used)
            r = vk_ovf_note(vm, rd->e, "disk %s is attached to no controller: left out", decls[i].id);
    /* disks no Item attaches are dropped from the model */
    size_t k = 0;
    for (size_t i = 0; i < vm->n_disks; i++) {
        if (vm->disks[i].bus == VK_BUS_COUNT) {
            free(vm->disks[i].source);
            free(vm->disks[i].href);
            free(vm->disks[i].file_id);
            free(vm->disks[i].disk_id);
            free(vm->disks[i].format);
        } else {
            vm->disks[k++] = vm->disks[i];
        }
    }
    vm->n_disks = k;
    for (size_t i = 0; i < n_decls; i++) {
        free(decls[i].id);
        free(decls[i].iso);
    }
    free(decls);
    refs_free(&refs);
    if (r)
        return r;

    char *name = text_of(child(vs, "Name"));
    if (!name || !*name) {
        free(name);
        name = get_attr(rd, vs, "id");
    }
    vm->name = vk_strdup(name && *name ? name : "Imported", rd->e);
    xmlFree(name);
    if (!vm->name)
        return VMDKIT_ENOMEM;
    xmlNodePtr ann = child(child(vs, "AnnotationSection"), "Annotation");
    char *a = text_of(ann);
    if (a && *a && !(vm->annotation = vk_strdup(a, rd->e)))
        r = VMDKIT_ENOMEM;
    free(a);
    if (!vm->cpus)
        vm->cpus = 1;
    if (!vm->memory_mib)
        return bad(rd, "VirtualHardwareSection", "no memory Item (ResourceType 4)");
    return r;
}

int vk_ovf_read_xml(const char *name, const char *xml, size_t len, vk_ovf_vm *vm, vk_ovf_facts *facts,
                    vk_err *e)
{
    memset(vm, 0, sizeof *vm);
    if (facts)
        memset(facts, 0, sizeof *facts);
    if (len > VK_OVF_MAX_BYTES)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: %zu bytes: more than the %u an OVF descriptor may have",
                       name, len, VK_OVF_MAX_BYTES);
    if (len > INT32_MAX)
        return vk_fail(e, VMDKIT_ELIMIT, "%s: too large", name);
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, name, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *xe = xmlGetLastError();
        int r = vk_fail(e, VMDKIT_EFORMAT, "%s: line %d: not well-formed XML: %s", name,
                        xe ? xe->line : 0, xe && xe->message ? xe->message : "parse error");
        /* libxml2's message ends in a newline: keep the error one line */
        size_t n = strlen(e ? e->msg : "");
        while (e && n && (e->msg[n - 1] == '\n' || e->msg[n - 1] == ' '))
            e->msg[--n] = 0;
        xmlResetLastError();
        return r;
    }
    xmlNodePtr env = xmlDocGetRootElement(doc);
    struct rd rd = {name, NULL, vm, facts, e};
    int r = 0;
    if (!is(env, "Envelope")) {
        r = vk_fail(e, VMDKIT_EFORMAT, "%s: the root element is not an OVF Envelope", name);
    } else if (!env->ns || (xmlStrcmp(env->ns->href, (const xmlChar *)VK_OVF_NS_ENV1) != 0 &&
                            xmlStrcmp(env->ns->href, (const xmlChar *)VK_OVF_NS_ENV2) != 0)) {
        r = vk_fail(
            e, VMDKIT_EUNSUPPORTED,
            "%s: Envelope namespace \"%s\": only OVF 1.x (envelope/1) and 2.x (envelope/2) are supported",
            name, env->ns ? (const char *)env->ns->href : "");
    } else {
        rd.env_ns = env->ns->href;
        if (facts)
            facts->version = xmlStrcmp(env->ns->href, (const xmlChar *)VK_OVF_NS_ENV2) == 0 ? 2 : 1;
        r = read_envelope(&rd, env);
    }
    xmlFreeDoc(doc);
    if (r) {
        vk_ovf_vm_free(vm);
        if (facts)
            vk_ovf_facts_free(facts);
    }
    return r;
}
