/* lint.c - what importers reject in an OVF package (vmdkit_ova_check).
 * Each check names the importer's own words where they are known (see the
 * notes on OVF/OVA: vCenter, ESXi, Workstation, virt-v2v).  Read only:
 * the package is listed, its descriptor parsed, its manifest's digests
 * recomputed, and each disk's VMDK header and stream end examined. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "package.h"
#include "sparse_header.h"

struct target {
    const char *name;
    const char *label;
    unsigned max_hw; /* highest vmx-NN; 0: no hardware family check */
    bool vmware, esxi, v2v;
};

static const struct target targets[] = {
    {"esxi-6.5", "ESXi 6.5", 13, true, true, false},
    {"esxi-7.0", "ESXi 7.0", 19, true, true, false},
    {"esxi-8.0", "ESXi 8.0", 21, true, true, false},
    {"workstation", "Workstation 17", 21, true, false, false},
    {"virtualbox", "VirtualBox", 0, false, false, false},
    {"virt-v2v", "virt-v2v", 0, false, false, true},
};

struct lint {
    const struct target *t;
    vk_pkg pkg;
    vmdkit_ova_finding_fn fn;
    void *opaque;
    size_t n;
    vk_err *e;
};

static void find(struct lint *l, const char *code, const char *fmt, ...) VK_PRINTF(3, 4);
static void find(struct lint *l, const char *code, const char *fmt, ...)
{
    char msg[1024];
    int k = snprintf(msg, sizeof msg, "%s: ", l->pkg.path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof msg - (size_t)k, fmt, ap);
    va_end(ap);
    l->n++;
    if (l->fn)
        l->fn(l->opaque, code, msg);
}

static bool is_name(const char *member, const char *name)
{
    if (strncmp(member, "./", 2) == 0)
        member += 2;
    return strcmp(member, name) == 0;
}

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* ---- the archive ---- */

static void check_tar(struct lint *l, const vk_ovf_facts *f)
{
    const vk_tar *t = &l->pkg.tar;
    char cert[300];
    snprintf(cert, sizeof cert, "%.*s.cert", (int)strlen(l->pkg.ovf_name) - 4, l->pkg.ovf_name);
    for (size_t i = 0; i < t->n; i++) {
        const vk_tar_member *m = &t->m[i];
        if (m->kind == VK_TAR_GNU)
            find(
                l, "tar-format",
                "%s: GNU tar header, not USTAR (tar --format=ustar; DSP0243 asks for USTAR, macOS and some importers need it)",
                m->name);
        else if (m->kind == VK_TAR_V7)
            find(l, "tar-format", "%s: old v7 tar header, not USTAR", m->name);
        if (m->pax)
            find(l, "tar-format", "%s: a pax extended header precedes it: not plain USTAR", m->name);
        if (m->type != '0' && m->type != '7') {
            find(l, "extra-member",
                 "%s: a tar entry of type '%c', not a file: packages hold files only, at the top level",
                 m->name, m->type);
            continue;
        }
        if (strchr(strncmp(m->name, "./", 2) == 0 ? m->name + 2 : m->name, '/'))
            find(l, "extra-member", "%s: in a folder: every file of a package lies at the top level",
                 m->name);
        bool known = is_name(m->name, l->pkg.ovf_name) || is_name(m->name, l->pkg.mf_name) ||
                     is_name(m->name, cert);
        for (size_t k = 0; f && !known && k < f->n_hrefs; k++)
            known = is_name(m->name, f->hrefs[k]);
        if (!known)
            find(
                l, "extra-member",
                "%s: not named in References: importers refuse files the descriptor does not list (a deploy through pyvmomi failed with 405 on an .nvram member)",
                m->name);
    }
    /* order: descriptor; manifest (and certificate) right after it or both
     * last; then the files in References order */
    size_t i = 0;
    if (!t->n || !is_name(t->m[0].name, l->pkg.ovf_name)) {
        find(
            l, "member-order",
            "%s: the descriptor is not the first member (Workstation and ovftool refuse the package; vSphere's import from a URL chokes)",
            l->pkg.ovf_name);
    } else {
        i = 1;
    }
    const vk_tar_member *mf = vk_tar_find(t, l->pkg.mf_name);
    if (mf) {
        size_t at = (size_t)(mf - t->m);
        bool second = at == 1;
        bool last = at + 1 == t->n || (at + 2 == t->n && is_name(t->m[at + 1].name, cert));
        if (!second && !last)
            find(
                l, "member-order",
                "%s: the manifest must come right after the descriptor (ovftool's order: ovf, mf, then the files)",
                l->pkg.mf_name);
        if (second)
            i = 2;
    }
    /* referenced files: in References order */
    size_t last_pos = 0;
    const char *last_name = NULL;
    for (size_t k = 0; f && k < f->n_hrefs; k++) {
        const vk_tar_member *m = vk_tar_find(t, f->hrefs[k]);
        if (!m)
            continue;
        size_t pos = (size_t)(m - t->m);
        if (last_name && pos < last_pos)
            find(l, "member-order", "%s comes before %s, against the order of References", f->hrefs[k],
                 last_name);
        last_pos = pos;
        last_name = f->hrefs[k];
    }
    (void)i;
    if (t->no_end)
        find(l, "tar-format", "the archive ends without the two zero blocks of a tar end");
}

/* ---- the manifest ---- */

static int digest_file(struct lint *l, const char *name, enum vk_ovf_algo a, char *hex, bool *absent)
{
    vk_pkg_file pf;
    *absent = false;
    vk_err local;
    int r = vk_pkg_find(&l->pkg, name, &pf, &local);
    if (r == VMDKIT_ENOENT || r == VMDKIT_EPATH) {
        *absent = true;
        return 0;
    }
    if (r) {
        *l->e = local;
        return r;
    }
    vk_digest *d;
    vk_member_src *s = NULL;
    if ((r = vk_digest_new(a, &d, l->e)))
        return r;
    if (!(r = vk_member_open(pf.fd, name, pf.offset, pf.size, false, d, &s, l->e)) &&
        !(r = vk_member_drain(s, l->e))) {
        vk_digest_finish(d, hex);
        d = NULL;
    }
    vk_digest_free(d);
    vk_member_close(s);
    return r;
}

static int check_manifest(struct lint *l, const vk_ovf_facts *f)
{
    if (!l->pkg.mf)
        return 0;
    vk_mf mf;
    int r = vk_mf_parse(l->pkg.mf, l->pkg.mf_len, &mf, l->e);
    if (r)
        return r;
    const char *mfn = l->pkg.mf_name;
    for (size_t i = 0; i < mf.n_bad; i++)
        find(l, "manifest-syntax", "%s line %zu: not a digest line 'SHA256(name)= hex'", mfn,
             mf.bad_lines[i]);
    for (size_t i = 0; !r && i < mf.n; i++) {
        const vk_mf_entry *m = &mf.v[i];
        if (m->blank_before_paren)
            find(
                l, "manifest-syntax",
                "%s line %zu: '%s (%s)': the blank before '(' (sha256sum --tag's form) makes vCenter fail with 'Invalid OVF checksum algorithm'; write '%s(%s)= hex'",
                mfn, m->line, m->algo, m->name, m->algo, m->name);
        else if (m->bad_blank)
            find(
                l, "manifest-syntax",
                "%s line %zu: %s(%s): exactly ')= ' must separate the name and the digest (ovftool's form)",
                mfn, m->line, m->algo, m->name);
        if (strncmp(m->algo, "SHA2-", 5) == 0)
            find(l, "manifest-algorithm",
                 "%s line %zu: '%s' is OpenSSL 3's label: vCenter 8 rejects it; write SHA%s", mfn,
                 m->line, m->algo, m->algo + 5);
        else if (m->known < 0)
            find(l, "manifest-algorithm",
                 "%s line %zu: '%s': not SHA1, SHA256 or SHA512 (or the digest has the wrong length)",
                 mfn, m->line, m->algo);
        else if (l->t->v2v && m->known == VK_ALGO_SHA512)
            find(l, "manifest-algorithm",
                 "%s line %zu: virt-v2v checks SHA1 and SHA256 lines only: this one is not verified",
                 mfn, m->line);
        if (m->known < 0)
            continue;
        char hex[2 * VK_OVF_MAX_DIGEST + 1];
        bool absent;
        if ((r = digest_file(l, m->name, (enum vk_ovf_algo)m->known, hex, &absent)))
            break;
        if (absent)
            find(l, "manifest-digest", "%s line %zu: %s is not in the package", mfn, m->line, m->name);
        else if (strcmp(hex, m->hex) != 0)
            find(
                l, "manifest-digest",
                "%s: %s %s does not match the manifest's %s: 'The checksum(s) from the provided manifest file do not match the content of file(s)'",
                m->name, m->algo, hex, m->hex);
    }
    /* every file of the package should be listed */
    for (size_t k = 0; !r && f && k <= f->n_hrefs; k++) {
        const char *name = k < f->n_hrefs ? f->hrefs[k] : l->pkg.ovf_name;
        bool listed = false;
        for (size_t i = 0; i < mf.n; i++)
            listed |= strcmp(mf.v[i].name, name) == 0;
        vk_pkg_file pf;
        vk_err ignore;
        if (!listed && vk_pkg_find(&l->pkg, name, &pf, &ignore) == 0)
            find(l, "manifest-digest", "%s: not listed in %s: vCenter's manifest check fails", name,
                 mfn);
    }
    vk_mf_free(&mf);
    return r;
}

/* ---- the descriptor ---- */

static void check_descriptor(struct lint *l, const vk_ovf_facts *f)
{
    const struct target *t = l->t;
    if (t->vmware && f->virtualbox_family)
        find(l, "virtualbox-family",
             "%s: VirtualSystemType '%s': %s says \"Unsupported hardware family '%s'\"; use vmx-NN",
             l->pkg.ovf_name, f->system_type, t->label, f->system_type);
    else if (t->max_hw && f->max_vmx > t->max_hw)
        find(
            l, "hardware-family",
            "%s: VirtualSystemType '%s': %s runs up to vmx-%02u: \"Unsupported hardware family 'vmx-%02u'\" (export with --hw-max %u)",
            l->pkg.ovf_name, f->system_type, t->label, t->max_hw, f->max_vmx, t->max_hw);
    else if (t->vmware && !f->max_vmx && !f->virtualbox_family)
        find(l, "hardware-family", "%s: VirtualSystemType '%s' names no vmx-NN family", l->pkg.ovf_name,
             f->system_type ? f->system_type : "");
    if (t->vmware && f->ovf2_items)
        find(
            l, "ovf2-items",
            "%s: OVF 2.0 StorageItem/EthernetPortItem elements: Workstation says \"Unsupported element 'StorageItem'\", ESXi \"Missing child element 'VirtualHardwareSection'\"; write rasd Items",
            l->pkg.ovf_name);
    if (t->v2v && f->version == 2)
        find(l, "ovf2-items", "%s: an OVF 2.0 envelope: virt-v2v reads only envelope/1 descriptors",
             l->pkg.ovf_name);
    if (t->esxi && f->bad_sata_subtype)
        find(
            l, "sata-subtype",
            "%s: SATA controller ResourceSubType '%s': ESXi says \"VALUE_ILLEGAL: Value ''3'' of Parent element does not refer to a ref of type DiskControllerReference\"; write vmware.sata.ahci",
            l->pkg.ovf_name, f->bad_sata_subtype);
}

/* The last 1.5 KiB of an uncompressed stream: footer marker, footer (when
 * the header defers the grain directory to it: VMware's layout; qemu-img
 * puts the directory up front and writes none), EOS. */
static void check_stream_end(struct lint *l, const vk_ovf_disk *d, const vk_pkg_file *pf, bool gd_at_end)
{
    uint8_t tail[3 * VK_SECTOR];
    vk_err ignore;
    if (pf->size < sizeof tail + VK_SECTOR ||
        vk_pread_full(pf->fd, tail, sizeof tail, pf->offset + pf->size - sizeof tail, d->href,
                      &ignore)) {
        find(l, "stream-eos", "%s: too short to end in a footer and an end-of-stream marker", d->href);
        return;
    }
    vk_marker fm, eos;
    vk_marker_decode(tail, &fm);
    vk_marker_decode(tail + 2 * VK_SECTOR, &eos);
    vk_sparse_header foot;
    vk_sparse_header_decode(tail + VK_SECTOR, &foot);
    if (!vk_is_zero(tail + 2 * VK_SECTOR, VK_SECTOR))
        find(
            l, "stream-eos",
            "%s: no end-of-stream marker at the end: ESXi refuses the disk (qemu-img's old streams lacked it)",
            d->href);
    else if (gd_at_end && (fm.size != 0 || fm.type != VK_MARKER_FOOTER || foot.magic != VK_KDMV_MAGIC ||
                           foot.gd_offset_sectors == VK_GD_AT_END))
        find(
            l, "stream-eos",
            "%s: the header leaves the grain directory to a footer, and there is none (marker type 3 and a header with the directory's place) before the end-of-stream marker",
            d->href);
}

static void check_disk(struct lint *l, const vk_ovf_disk *d)
{
    const struct target *t = l->t;
    if (!d->href)
        return;
    if (d->gzip && t->vmware)
        find(
            l, "compressed-disk",
            "%s: ovf:compression=\"gzip\": vSphere says \"OVF package with compressed disks is currently not supported\"",
            d->href);
    if (t->vmware && (!d->format || strcmp(d->format, VK_OVF_FORMAT_STREAM) != 0))
        find(l, "disk-format", "%s: ovf:format \"%s\": VMware imports %s", d->href,
             d->format ? d->format : "", VK_OVF_FORMAT_STREAM);
    vk_pkg_file pf;
    vk_err local;
    if (vk_pkg_find(&l->pkg, d->href, &pf, &local)) {
        find(l, "missing-file", "%s: named in References but not in the package", d->href);
        return;
    }
    if (d->has_file_size && d->file_size != pf.size)
        find(l, "file-size", "%s: File ovf:size is %llu, the file holds %llu bytes", d->href,
             (unsigned long long)d->file_size, (unsigned long long)pf.size);
    vk_member_src *s = NULL;
    vk_stream_info info = {0};
    if (vk_member_open(pf.fd, d->href, pf.offset, pf.size, d->gzip, NULL, &s, &local) == 0) {
        int r = vk_stream_read_header(s, d->href, &info, &local);
        if (r == VMDKIT_EFORMAT)
            find(l, "disk-format",
                 "%s: \"Not a supported disk format (invalid sparse VMDK header)\": %s", d->href,
                 local.msg);
        else if (r)
            find(l, "disk-format", "%s: %s", d->href, local.msg);
        else if (info.capacity_bytes > d->capacity_bytes)
            find(
                l, "capacity",
                "%s: the VMDK holds %llu bytes, the descriptor's ovf:capacity says %llu: \"Capacity of uploaded disk is larger than requested\"",
                d->href, (unsigned long long)info.capacity_bytes, (unsigned long long)d->capacity_bytes);
        else if (info.capacity_bytes < d->capacity_bytes)
            find(l, "capacity",
                 "%s: ovf:capacity %llu bytes, the VMDK holds %llu: a slip of capacityAllocationUnits?",
                 d->href, (unsigned long long)d->capacity_bytes,
                 (unsigned long long)info.capacity_bytes);
        if (!r && d->gzip) {
            /* compressed: the end is only reached by decoding */
            if (vk_stream_decode(s, d->href, &info, NULL, NULL, NULL, NULL, &local))
                find(l, "stream-eos", "%s: %s", d->href, local.msg);
            else if (!info.eos)
                find(l, "stream-eos", "%s: no end-of-stream marker at the end", d->href);
        } else if (!r) {
            check_stream_end(l, d, &pf, info.gd_at_end);
        }
        vk_stream_info_free(&info);
    }
    vk_member_close(s);
}

int vmdkit_ova_check(const char *in, const vmdkit_ova_check_opts *opts, vmdkit_ova_finding_fn fn,
                     void *opaque, size_t *n_findings, vmdkit_error *err)
{
    if (n_findings)
        *n_findings = 0;
    vk_err local, *e;
    vmdkit_ova_check_opts o;
    int r0 = vk_entry_opts(&e, err, &local, NULL, 0, in ? NULL : "vmdkit_ova_check: in is required", &o,
                           sizeof o, opts, "vmdkit_ova_check_opts");
    if (r0)
        return r0;
    const char *tname = o.target ? o.target : "esxi-8.0";
    struct lint l = {.fn = fn, .opaque = opaque, .e = e};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (strcmp(targets[i].name, tname) == 0)
            l.t = &targets[i];
    if (!l.t)
        return vk_fail(
            e, VMDKIT_EINVAL,
            "%s: target \"%s\": not esxi-6.5, esxi-7.0, esxi-8.0, workstation, virtualbox or virt-v2v",
            in, tname);
    l.pkg.fd = -1;
    int r = vk_pkg_open(in, &l.pkg, e);
    if (r)
        return r;
    if (!l.pkg.is_tar && ends_with_ci(in, ".ova"))
        find(&l, "tar-format", "not a tar archive");
    vk_ovf_vm vm;
    vk_ovf_facts f;
    vk_err perr;
    char name[4200];
    snprintf(name, sizeof name, "%s", l.pkg.ovf_name);
    bool parsed = vk_ovf_read_xml(name, l.pkg.ovf, l.pkg.ovf_len, &vm, &f, &perr) == 0;
    if (!parsed)
        find(&l, "descriptor", "%s", perr.msg);
    if (l.pkg.is_tar)
        check_tar(&l, parsed ? &f : NULL);
    r = check_manifest(&l, parsed ? &f : NULL);
    if (!r && parsed) {
        check_descriptor(&l, &f);
        for (size_t i = 0; i < vm.n_disks; i++)
            check_disk(&l, &vm.disks[i]);
    }
    if (parsed) {
        vk_ovf_vm_free(&vm);
        vk_ovf_facts_free(&f);
    }
    vk_pkg_close(&l.pkg);
    if (n_findings)
        *n_findings = l.n;
    return r;
}
