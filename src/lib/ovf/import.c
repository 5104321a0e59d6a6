/* import.c - an OVF package as a new VMware machine (vmdkit_ova_import).
 *
 * Everything is built in a hidden folder beside DIR
 * (".NAME.vmdkit-tmp-XXXXXX"): the disks, decoded straight from their
 * place in the package and made durable; CD images; the .vmx last; the
 * folder's fsync; then one rename gives it DIR's name.  An import
 * interrupted at any point leaves nothing under DIR's name; a failure
 * removes the hidden folder.
 *
 * The manifest is checked as the files are read: the descriptor first
 * (before anything is written), each disk and image in the same pass that
 * decodes it, any other file listed by reading it once. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "create.h"
#include "package.h"
#include "path.h"
#include "temp_folder.h"
#include "stream_writer.h"
#include "vm/copy_tree.h"

#define DEFAULT_HW_VERSION 14 /* for a VirtualBox package: Workstation 15, ESXi 6.7 */

struct importer {
    const vmdkit_ova_import_opts *o;
    vk_pkg pkg;
    vk_mf mf;
    bool *mf_checked; /* per manifest entry */
    vk_ovf_vm vm;
    vk_temp_folder tmp;   /* the hidden folder */
    uint64_t done, total; /* package bytes read, for progress */
    size_t n_verified;
    vk_err *e;
};

/* The manifest entry for NAME that can be verified, or NULL. */
static int mf_algo(const vk_mf_entry *m)
{
    if (m->known >= 0)
        return m->known;
    /* OpenSSL 3 labels: the same digests under other names */
    static const struct {
        const char *name;
        int algo;
    } aliases[] = {{"SHA2-256", VK_ALGO_SHA256}, {"SHA2-512", VK_ALGO_SHA512}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(m->algo, aliases[i].name) == 0 &&
            strlen(m->hex) == 2 * vk_ovf_algo_len((enum vk_ovf_algo)aliases[i].algo))
            return aliases[i].algo;
    return -1;
}

static const vk_mf_entry *mf_entry(struct importer *im, const char *name, size_t *index)
{
    for (size_t i = 0; i < im->mf.n; i++)
        if (strcmp(im->mf.v[i].name, name) == 0 && mf_algo(&im->mf.v[i]) >= 0) {
            *index = i;
            return &im->mf.v[i];
        }
    return NULL;
}

static int digest_for(struct importer *im, const char *name, vk_digest **d, size_t *index)
{
    *d = NULL;
    const vk_mf_entry *m = mf_entry(im, name, index);
    return m ? vk_digest_new((enum vk_ovf_algo)mf_algo(m), d, im->e) : 0;
}

/* Compare digest D of NAME with its manifest line (frees D). */
static int verify(struct importer *im, const char *name, vk_digest *d, size_t index)
{
    if (!d)
        return 0;
    char hex[2 * VK_OVF_MAX_DIGEST + 1];
    vk_digest_finish(d, hex);
    const vk_mf_entry *m = &im->mf.v[index];
    im->mf_checked[index] = true;
    im->n_verified++;
    if (strcmp(hex, m->hex) != 0)
        return vk_fail(
            im->e, VMDKIT_EFORMAT,
            "%s: %s: %s digest %s does not match the manifest's %s (line %zu of %s): the file is corrupt or was changed",
            im->pkg.path, name, m->algo, hex, m->hex, m->line, im->pkg.mf_name);
    return 0;
}

static int progress(void *opaque, uint64_t raw_done)
{
    struct importer *im = opaque;
    return im->o->progress ? im->o->progress(im->o->progress_opaque, im->done + raw_done, im->total) : 0;
}

/* ---- disks ---- */

struct disk_sink {
    vmdkit_disk *disk;    /* any createType but streamOptimized */
    vk_stream_writer *sw; /* streamOptimized */
    uint64_t next_grain;
};

static int grain_to_disk(void *opaque, uint64_t off, const uint8_t *data, size_t len, vk_err *e)
{
    struct disk_sink *s = opaque;
    if (s->disk) {
        int r = vmdkit_pwrite(s->disk, data, len, off);
        if (r)
            *e = *vmdkit_last_error(s->disk);
        return r;
    }
    /* the writer's 64 KiB grains, in order; all-zero ones are left out */
    uint64_t gb = vk_stream_writer_grain_sectors(s->sw) * VK_SECTOR;
    for (size_t i = 0; i < len; i += (size_t)gb) {
        size_t n = (size_t)vk_min(gb, len - i);
        uint64_t g = (off + i) / gb;
        if (vk_is_zero(data + i, n))
            continue;
        if (g < s->next_grain)
            return vk_fail(
                e, VMDKIT_EUNSUPPORTED,
                "grains out of order: a streamOptimized copy needs them ascending; import to another type");
        int r = vk_stream_writer_put(s->sw, g, data + i, n, e);
        if (r)
            return r;
        s->next_grain = g + 1;
    }
    return 0;
}

static const char *adapter_for(const vk_ovf_vm *vm, const vk_ovf_disk *d)
{
    if (d->bus == VK_BUS_IDE)
        return "ide";
    vk_ovf_ctrl *c = vk_ovf_find_ctrl((vk_ovf_vm *)vm, d->bus, d->ctrl);
    return c && c->vmx_dev && strcmp(c->vmx_dev, "buslogic") == 0 ? "buslogic" : "lsilogic";
}

/* A new empty disk at PATH of DISK's capacity, opened for writing (or a
 * stream writer for streamOptimized). */
static int create_disk(struct importer *im, const vk_ovf_disk *d, const char *path, uint64_t capacity,
                       struct disk_sink *s)
{
    int type = im->o->type < 0 ? VMDKIT_TWOGB_SPARSE : im->o->type;
    vk_err *e = im->e;
    if (type == VMDKIT_STREAM_OPTIMIZED) {
        char *desc;
        uint64_t cap = vk_div_round_up(capacity, VK_SECTOR);
        int r = vk_create_stream_descriptor(path, cap, adapter_for(&im->vm, d), 0, &desc, e);
        if (!r)
            r = vk_stream_writer_open(path, cap, desc, 0, 0, &s->sw, e);
        free(desc);
        return r;
    }
    vmdkit_create_opts co = {.struct_size = sizeof co,
                             .type = (vmdkit_create_type)type,
                             .size_bytes = capacity,
                             .adapter = adapter_for(&im->vm, d)};
    int r = vmdkit_create(path, &co, e);
    if (!r)
        r = vmdkit_open(path, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDWR, &s->disk, e);
    return r;
}

static int close_disk(struct disk_sink *s, bool ok, vk_err *e)
{
    int r = 0;
    if (s->sw) {
        if (ok)
            r = vk_stream_writer_finish(s->sw, e);
        else
            vk_stream_writer_abort(s->sw);
    }
    if (s->disk) {
        vk_err ignore;
        r = vmdkit_close(s->disk, ok ? e : &ignore);
    }
    s->sw = NULL;
    s->disk = NULL;
    return ok ? r : 0;
}

/* A disk file that is not a stream, in an .ovf's folder: opened as a
 * disk (extents confined to the folder) and converted. */
static int convert_plain(struct importer *im, const vk_ovf_disk *d, const char *dst, uint64_t capacity)
{
    char *src = vk_path_join(im->pkg.dir, d->href, im->e);
    if (!src)
        return VMDKIT_ENOMEM;
    vmdkit_disk *in = NULL;
    int r = vmdkit_open(src, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY, &in, im->e);
    if (!r && vmdkit_size(in) > capacity)
        r = vk_fail(im->e, VMDKIT_EFORMAT, "%s: capacity: %llu bytes, more than the descriptor's %llu",
                    src, (unsigned long long)vmdkit_size(in), (unsigned long long)capacity);
    if (!r) {
        int type = im->o->type < 0 ? VMDKIT_TWOGB_SPARSE : im->o->type;
        vmdkit_create_opts vmdk = {.struct_size = sizeof vmdk,
                                   .type = (vmdkit_create_type)type,
                                   .adapter = adapter_for(&im->vm, d)};
        vmdkit_convert_opts co = {.struct_size = sizeof co, .vmdk = &vmdk};
        r = vmdkit_convert(in, dst, &co, im->e);
    }
    if (in)
        vmdkit_close(in, NULL);
    free(src);
    return r;
}

static int import_disk(struct importer *im, size_t i, const char *dst)
{
    vk_ovf_disk *d = &im->vm.disks[i];
    vk_err *e = im->e;
    struct disk_sink s = {0};
    if (!d->href) /* a disk the package declares but ships no file for: empty */
        return create_disk(im, d, dst, d->capacity_bytes, &s) || close_disk(&s, true, e) ? e->code : 0;
    vk_pkg_file f;
    int r = vk_pkg_find(&im->pkg, d->href, &f, e);
    if (r)
        return r;
    if (d->has_file_size && !d->gzip && d->file_size != f.size)
        (void)vk_ovf_note(&im->vm, e, "%s: File ovf:size %llu, but the file holds %llu bytes", d->href,
                          (unsigned long long)d->file_size, (unsigned long long)f.size);
    vk_digest *dg;
    size_t mi = 0;
    if ((r = digest_for(im, d->href, &dg, &mi)))
        return r;
    vk_member_src *src = NULL;
    vk_stream_info info = {0};
    char name[4200];
    snprintf(name, sizeof name, "%s: %s", im->pkg.path, d->href);
    r = vk_member_open(f.fd, name, f.offset, f.size, d->gzip, dg, &src, e);
    if (!r)
        r = vk_stream_read_header(src, name, &info, e);
    if (r && !im->pkg.is_tar && !d->gzip && (r == VMDKIT_EUNSUPPORTED || r == VMDKIT_EFORMAT)) {
        /* an .ovf beside a disk of another kind: read it as a disk */
        vk_member_close(src);
        vk_digest_free(dg);
        vk_stream_info_free(&info);
        if ((r = digest_for(im, d->href, &dg, &mi)) ||
            (r = vk_member_open(f.fd, name, 0, f.size, false, dg, &src, e)) ||
            (r = vk_member_drain(src, e)) || (r = verify(im, d->href, dg, mi))) {
            vk_member_close(src);
            return r;
        }
        vk_member_close(src);
        im->done += f.size;
        return convert_plain(im, d, dst, d->capacity_bytes);
    }
    if (!r && info.capacity_bytes > d->capacity_bytes)
        r = vk_fail(
            e, VMDKIT_EFORMAT,
            "%s: capacity: the VMDK holds %llu bytes, more than the descriptor's ovf:capacity %llu",
            name, (unsigned long long)info.capacity_bytes, (unsigned long long)d->capacity_bytes);
    if (!r)
        r = create_disk(im, d, dst, d->capacity_bytes, &s);
    if (!r)
        r = vk_stream_decode(src, name, &info, grain_to_disk, &s, progress, im, e);
    if (!r)
        r = vk_member_drain(src, e);
    if (!r) {
        r = verify(im, d->href, dg, mi);
        dg = NULL;
    }
    int c = close_disk(&s, r == 0, e);
    if (!r)
        r = c;
    vk_member_close(src);
    vk_digest_free(dg);
    vk_stream_info_free(&info);
    im->done += f.size;
    return r;
}

/* ---- other files ---- */

/* Copy the package file NAME to DST (a CD image), digesting it. */
static int copy_file(struct importer *im, const char *name, const char *dst)
{
    vk_pkg_file f;
    int r = vk_pkg_find(&im->pkg, name, &f, im->e);
    if (r)
        return r;
    vk_digest *dg;
    size_t mi = 0;
    if ((r = digest_for(im, name, &dg, &mi)))
        return r;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        vk_digest_free(dg);
        return vk_fail_errno(im->e, errno, "%s: create", dst);
    }
    vk_member_src *src;
    r = vk_member_open(f.fd, name, f.offset, f.size, false, dg, &src, im->e);
    uint8_t *buf = r ? NULL : vk_malloc(1u << 20, im->e);
    if (!r && !buf)
        r = VMDKIT_ENOMEM;
    uint64_t off = 0;
    while (!r) {
        size_t got;
        if ((r = vk_member_read(src, buf, 1u << 20, &got, im->e)) || !got)
            break;
        r = vk_pwrite_full(out, buf, got, off, dst, im->e);
        off += got;
    }
    if (!r)
        r = vk_fdatasync(out, dst, im->e);
    close(out);
    if (!r) {
        r = verify(im, name, dg, mi);
        dg = NULL;
    }
    vk_digest_free(dg);
    vk_member_close(src);
    free(buf);
    im->done += f.size;
    return r;
}

/* Check every parsable manifest line not checked yet: read its file. */
static int verify_rest(struct importer *im)
{
    for (size_t i = 0; i < im->mf.n; i++) {
        const vk_mf_entry *m = &im->mf.v[i];
        if (im->mf_checked[i])
            continue;
        int algo = mf_algo(m);
        if (algo < 0) {
            int r = vk_ovf_note(&im->vm, im->e, "%s line %zu: %s digests are not checked",
                                im->pkg.mf_name, m->line, m->algo);
            if (r)
                return r;
            continue;
        }
        vk_pkg_file f;
        int r = vk_pkg_find(&im->pkg, m->name, &f, im->e);
        if (r == VMDKIT_ENOENT)
            return vk_fail(im->e, VMDKIT_EFORMAT,
                           "%s: %s: listed in %s (line %zu) but not in the package", im->pkg.path,
                           m->name, im->pkg.mf_name, m->line);
        if (r)
            return r;
        vk_digest *dg;
        vk_member_src *src = NULL;
        if ((r = vk_digest_new((enum vk_ovf_algo)algo, &dg, im->e)))
            return r;
        if (!(r = vk_member_open(f.fd, m->name, f.offset, f.size, false, dg, &src, im->e)) &&
            !(r = vk_member_drain(src, im->e))) {
            r = verify(im, m->name, dg, i);
            dg = NULL;
        }
        vk_digest_free(dg);
        vk_member_close(src);
        if (r)
            return r;
    }
    return 0;
}

/* The machine's name as a file name: '/', '\\', control characters and a
 * leading '.' become '_', at most 80 bytes. */
static char *file_base(const char *name, vk_err *e)
{
    size_t n = strlen(name);
    if (n > 80)
        n = 80;
    char *s = vk_malloc(n + 1, e);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        s[i] = (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '"' || (i == 0 && c == '.'))
                   ? '_'
                   : (char)c;
    }
    s[n] = 0;
    if (!n) {
        free(s);
        return vk_strdup("Imported", e);
    }
    return s;
}

static int build(struct importer *im, const char *dir)
{
    vk_err *e = im->e;
    vk_ovf_vm *vm = &im->vm;
    char *base = file_base(vm->name, e);
    size_t nd = vm->n_disks, nc = vm->n_cdroms;
    char **disk_files = vk_calloc(nd + 1, sizeof *disk_files, e);
    char **cd_files = vk_calloc(nc + 1, sizeof *cd_files, e);
    int r = base && disk_files && cd_files ? 0 : VMDKIT_ENOMEM;
    char path[4096];
    for (size_t i = 0; !r && i < nd; i++) {
        snprintf(path, sizeof path, "%s-disk%zu.vmdk", base, i + 1);
        if (!(disk_files[i] = vk_strdup(path, e))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        snprintf(path, sizeof path, "%s/%s", im->tmp.path, disk_files[i]);
        if ((r = import_disk(im, i, path)))
            vk_err_prefix(e, "%s%u:%u", vk_ovf_bus_vmx(vm->disks[i].bus), vm->disks[i].ctrl,
                          vm->disks[i].unit);
    }
    for (size_t i = 0; !r && i < nc; i++) {
        const char *iso = vm->cdroms[i].iso_href;
        size_t n = iso ? strlen(iso) : 0;
        if (iso && (n < 5 || strcasecmp(iso + n - 4, ".iso") != 0)) {
            /* only an image may land beside the .vmx, never a .vmx or .vmdk */
            r = vk_ovf_note(vm, e, "CD image %s: not an .iso: the drive is left empty", iso);
            free(vm->cdroms[i].iso_href);
            vm->cdroms[i].iso_href = NULL;
            continue;
        }
        if (!iso)
            continue;
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup |= cd_files[j] && strcmp(cd_files[j], iso) == 0;
        if (!(cd_files[i] = vk_strdup(iso, e))) {
            r = VMDKIT_ENOMEM;
            break;
        }
        snprintf(path, sizeof path, "%s/%s", im->tmp.path, iso);
        if (!dup)
            r = copy_file(im, iso, path);
    }
    if (!r)
        r = verify_rest(im);
    char *text = NULL;
    size_t len = 0;
    if (!r)
        r = vk_ovf_to_vmx(vm, (const char *const *)disk_files, (const char *const *)cd_files, &text,
                          &len, e);
    if (!r) {
        snprintf(path, sizeof path, "%s/%s.vmx", im->tmp.path, base);
        r = vk_write_file_atomic(path, text, len, e);
    }
    free(text);
    if (!r)
        r = vk_fsync_dir(im->tmp.path, e);
    if (!r)
        r = vk_rename_noreplace(im->tmp.path, dir, e);
    if (!r) {
        vk_temp_folder_release(&im->tmp);
        r = vk_fsync_parent(dir, e);
    }
    for (size_t i = 0; disk_files && i < nd; i++)
        free(disk_files[i]);
    for (size_t i = 0; cd_files && i < nc; i++)
        free(cd_files[i]);
    free(disk_files);
    free(cd_files);
    free(base);
    return r;
}

static int fill_result(struct importer *im, const char *dir, vmdkit_ova_import_result *res)
{
    char *base = file_base(im->vm.name, im->e);
    size_t n = strlen(dir) + (base ? strlen(base) : 0) + 8;
    res->vmx = base ? vk_malloc(n, im->e) : NULL;
    if (res->vmx)
        snprintf(res->vmx, n, "%s/%s.vmx", dir, base);
    free(base);
    res->n_verified = im->n_verified;
    res->notes = im->vm.notes;
    res->n_notes = im->vm.n_notes;
    im->vm.notes = NULL;
    im->vm.n_notes = 0;
    return res->vmx ? 0 : VMDKIT_ENOMEM;
}

void vmdkit_ova_import_result_free(vmdkit_ova_import_result *res)
{
    if (!res)
        return;
    free(res->vmx);
    for (size_t i = 0; i < res->n_notes; i++)
        free(res->notes[i]);
    free(res->notes);
    memset(res, 0, sizeof *res);
}

int vmdkit_ova_import(const char *in, const char *dir, const vmdkit_ova_import_opts *opts,
                      vmdkit_ova_import_result *res, vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_ova_import_opts o;
    int r0 = vk_entry_opts(&e, err, &local, res, sizeof *res,
                           in && dir ? NULL : "vmdkit_ova_import: in and dir are required", &o, sizeof o,
                           opts, "vmdkit_ova_import_opts");
    if (r0)
        return r0;
    if (!opts)
        o.type = -1;
    if (o.type < -1 || o.type > VMDKIT_VMFS)
        return vk_fail(e, VMDKIT_EINVAL, "%s: disk type %d is unknown", dir, o.type);
    struct stat st;
    if (lstat(dir, &st) == 0)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", dir);
    struct importer im = {.o = &o, .e = e, .tmp = {.path = NULL, .lock_fd = -1}};
    im.pkg.fd = -1;
    int r = vk_pkg_open(in, &im.pkg, e);
    if (!r && im.pkg.mf)
        r = vk_mf_parse(im.pkg.mf, im.pkg.mf_len, &im.mf, e);
    if (!r && !(im.mf_checked = vk_calloc(im.mf.n + 1, sizeof *im.mf_checked, e)))
        r = VMDKIT_ENOMEM;
    /* the descriptor's digest before anything is made from it */
    size_t mi;
    vk_digest *dg = NULL;
    if (!r && !(r = digest_for(&im, im.pkg.ovf_name, &dg, &mi)) && dg) {
        vk_digest_update(dg, im.pkg.ovf, im.pkg.ovf_len);
        r = verify(&im, im.pkg.ovf_name, dg, mi);
    }
    if (!r) {
        char name[4200];
        snprintf(name, sizeof name, "%s: %s", in, im.pkg.ovf_name);
        r = vk_ovf_read_xml(im.pkg.is_tar ? name : in, im.pkg.ovf, im.pkg.ovf_len, &im.vm, NULL, e);
    }
    if (!r && !im.pkg.mf)
        r = vk_ovf_note(&im.vm, e, "no manifest: nothing was checked against digests");
    if (!r && im.vm.n_extra)
        r = vk_ovf_note(&im.vm, e, "%zu vmw:ExtraConfig settings were not applied (%s = \"%s\" ...)",
                        im.vm.n_extra, im.vm.extra[0].key, im.vm.extra[0].value);
    if (!r && im.vm.hw_version == 0)
        im.vm.hw_version = DEFAULT_HW_VERSION;
    for (size_t i = 0; !r && i < im.vm.n_disks; i++) {
        vk_pkg_file f;
        if (im.vm.disks[i].href && !(r = vk_pkg_find(&im.pkg, im.vm.disks[i].href, &f, e)))
            im.total += f.size;
    }
    for (size_t i = 0; !r && i < im.vm.n_cdroms; i++) {
        vk_pkg_file f;
        if (im.vm.cdroms[i].iso_href && !(r = vk_pkg_find(&im.pkg, im.vm.cdroms[i].iso_href, &f, e)))
            im.total += f.size;
    }
    if (!r && o.progress && o.progress(o.progress_opaque, 0, im.total))
        r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    char *parent = r ? NULL : vk_path_dirname(dir, e);
    if (!r && !parent)
        r = VMDKIT_ENOMEM;
    if (!r) /* what a killed import to this name left is nobody's now */
        (void)vk_remove_stale_temps(parent, vk_path_basename(dir), NULL, NULL);
    if (!r)
        r = vk_temp_folder_make(parent, vk_path_basename(dir), &im.tmp, e);
    if (!r)
        (void)chmod(im.tmp.path, 0755);
    if (!r)
        r = build(&im, dir);
    if (!r && o.progress)
        (void)o.progress(o.progress_opaque, im.total, im.total);
    if (!r && res)
        r = fill_result(&im, dir, res);
    if (im.tmp.path) {
        vk_temp_folder_unhide_message(&im.tmp, dir, e);
        vk_temp_folder_discard(&im.tmp);
    }
    free(parent);
    free(im.mf_checked);
    vk_mf_free(&im.mf);
    vk_ovf_vm_free(&im.vm);
    vk_pkg_close(&im.pkg);
    return r;
}
