/* export.c - a machine as an OVF package (vmdkit_ova_export).
 *
 * An .ova is written in one pass, disks compressed straight into the tar:
 *
 *   [hdr OVF][OVF: R bytes reserved][hdr MF][MF: M bytes][hdr disk1][stream 1]...[end]
 *
 * M, the manifest's length, is known before anything is written (each line
 * is "SHA256(name)= " + a fixed number of hex digits).  The OVF's length is
 * not: File ovf:size and ovf:populatedSize are known only once a disk is
 * written.  R is the length of the descriptor with every such number at
 * its widest (20 digits); the real descriptor is never longer, and is
 * padded to R with blanks after its closing tag (ovftool's own output has
 * such blanks).  A second compression pass (2x the CPU) or a temporary copy
 * of each disk (2x the I/O and space) is what this layout avoids.
 *
 * Order (crash safety): the disks' data, each stream's tar header once its
 * size is known, then the manifest and the descriptor (which describe the
 * disks), fdatasync, then the rename of the temporary file to OUT and the
 * folder's fsync.  Until the rename nothing is under OUT's name; an
 * interrupted export leaves only ".OUT.vmdkit-tmp-XXXXXX".
 *
 * An .ovf package: the disks, the manifest and the descriptor are each
 * written under a temporary name and made durable, then renamed in that
 * order: the descriptor, which names the others, appears last.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "copy.h"
#include "create.h"
#include "ovf.h"
#include "path.h"
#include "temp_folder.h"
#include "vm/vm.h"

struct progress {
    const vmdkit_ova_export_opts *o;
    uint64_t done_before, total;
};

static int progress_cb(void *opaque, uint64_t done, uint64_t total)
{
    (void)total;
    struct progress *p = opaque;
    return p->o->progress(p->o->progress_opaque, p->done_before + done, p->total);
}

struct out_file {
    char *final; /* where it goes */
    char *tmp;   /* where it is built */
    int fd;
    bool renamed;
};

static int open_tmp(struct out_file *f, const char *final, vk_err *e)
{
    char *dir = vk_path_dirname(final, e);
    if (!dir)
        return VMDKIT_ENOMEM;
    size_t n = strlen(dir) + strlen(vk_path_basename(final)) + 32;
    f->tmp = vk_malloc(n, e);
    f->final = vk_strdup(final, e);
    if (!f->tmp || !f->final) {
        free(dir);
        return VMDKIT_ENOMEM;
    }
    snprintf(f->tmp, n, "%s/.%s.vmdkit-tmp-XXXXXX", dir, vk_path_basename(final));
    free(dir);
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        int r = vk_fail_errno(e, errno, "%s: create", f->tmp);
        free(f->tmp);
        f->tmp = NULL;
        return r;
    }
    (void)fchmod(f->fd, 0644);
    return 0;
}

/* Close; on failure remove what was made (the temporary file, or the
 * renamed file when a later step failed). */
static void out_file_end(struct out_file *f, bool failed)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (failed && f->tmp)
        unlink(f->renamed ? f->final : f->tmp);
    free(f->tmp);
    free(f->final);
    f->tmp = f->final = NULL;
}

static int out_file_commit(struct out_file *f, vk_err *e)
{
    int r = vk_fdatasync(f->fd, f->tmp, e);
    if (!r && close(f->fd) != 0)
        r = vk_fail_errno(e, errno, "%s: close", f->tmp);
    f->fd = -1;
    if (!r)
        r = vk_rename_noreplace(f->tmp, f->final, e);
    if (!r)
        f->renamed = true;
    return r;
}

/* OUT without its folder and extension: names the package's files. */
static char *package_base(const char *out, vk_err *e)
{
    const char *b = vk_path_basename(out);
    return vk_strndup(b, strlen(b) - 4, e);
}

/* The adapter type a disk's descriptor gets for its controller. */
static const char *adapter_for(const vk_ovf_vm *vm, const vk_ovf_disk *d)
{
    if (d->bus == VK_BUS_IDE)
        return "ide";
    for (size_t i = 0; d->bus == VK_BUS_SCSI && i < vm->n_ctrls; i++)
        if (vm->ctrls[i].bus == VK_BUS_SCSI && vm->ctrls[i].num == d->ctrl && vm->ctrls[i].vmx_dev &&
            strcmp(vm->ctrls[i].vmx_dev, "buslogic") == 0)
            return "buslogic";
    return "lsilogic";
}

struct exporter {
    const vmdkit_ova_export_opts *o;
    enum vk_ovf_algo algo;
    vk_ovf_vm vm;
    vmdkit_disk **disks;
    char (*hex)[2 * VK_OVF_MAX_DIGEST + 1];
    struct progress prog;
    vk_err *e;
};

static void tap_digest(void *opaque, const uint8_t *buf, size_t len)
{
    vk_digest_update(opaque, buf, len);
}

/* Compress disk I into FD at BASE; fills its sizes and digest. */
static int write_disk(struct exporter *x, size_t i, int fd, uint64_t base)
{
    vk_ovf_disk *d = &x->vm.disks[i];
    vk_digest *dg;
    int r = vk_digest_new(x->algo, &dg, x->e);
    if (r)
        return r;
    char *desc = NULL;
    uint64_t cap_sectors = vk_div_round_up(d->capacity_bytes, VK_SECTOR);
    vk_stream_target t = {.fd = fd, .base = base, .tap = tap_digest, .tap_opaque = dg};
    vk_stream_writer *sw = NULL;
    r = vk_create_stream_descriptor(d->href, cap_sectors, adapter_for(&x->vm, d), 0, &desc, x->e);
    if (!r)
        r = vk_stream_writer_open_target(&t, d->href, cap_sectors, desc, x->o->threads, 0, &sw, x->e);
    free(desc);
    if (!r) {
        vmdkit_convert_opts co = {.struct_size = sizeof co, .threads = x->o->threads};
        if (x->o->progress) {
            co.progress = progress_cb;
            co.progress_opaque = &x->prog;
        }
        r = vk_copy_into_stream(x->disks[i], sw, &co, x->e);
        if (r) {
            vk_stream_writer_abort(sw);
            vk_err_prefix(x->e, "%s", d->source);
        } else {
            r = vk_stream_writer_finish(sw, x->e);
        }
    }
    if (r) {
        vk_digest_free(dg);
        return r;
    }
    vk_digest_finish(dg, x->hex[i]);
    d->file_size = t.bytes;
    d->populated_bytes = t.populated_bytes;
    x->prog.done_before += d->capacity_bytes;
    return 0;
}

/* The manifest for the descriptor's digest OVF_HEX and the disks'. */
static char *manifest(const struct exporter *x, const char *ovf_name, const char *ovf_hex, size_t *len)
{
    size_t n = vk_ovf_mf_line_len(x->algo, ovf_name);
    for (size_t i = 0; i < x->vm.n_disks; i++)
        n += vk_ovf_mf_line_len(x->algo, x->vm.disks[i].href);
    char *mf = vk_malloc(n + 1, x->e);
    if (!mf)
        return NULL;
    size_t pos = 0;
    vk_ovf_mf_line(mf, &pos, x->algo, ovf_name, ovf_hex ? ovf_hex : "");
    for (size_t i = 0; i < x->vm.n_disks; i++)
        vk_ovf_mf_line(mf, &pos, x->algo, x->vm.disks[i].href, x->hex[i]);
    *len = n;
    return mf;
}

static void hex_of(enum vk_ovf_algo a, const void *buf, size_t len, char *hex, vk_err *e)
{
    vk_digest *d;
    hex[0] = 0;
    if (vk_digest_new(a, &d, e) == 0) {
        vk_digest_update(d, buf, len);
        vk_digest_finish(d, hex);
    }
}

static uint64_t round_block(uint64_t n) { return vk_div_round_up(n, VK_TAR_BLOCK) * VK_TAR_BLOCK; }

static int write_ova(struct exporter *x, const char *out, const char *base)
{
    vk_err *e = x->e;
    size_t nd = x->vm.n_disks;
    char *ovf_name = vk_malloc(strlen(base) + 5, e);
    if (!ovf_name)
        return VMDKIT_ENOMEM;
    sprintf(ovf_name, "%s.ovf", base);
    char mf_name[300];
    snprintf(mf_name, sizeof mf_name, "%s.mf", base);
    int r = 0;
    if (strlen(ovf_name) > 100)
        r = vk_fail(e, VMDKIT_EINVAL, "%s: the name \"%s\" is too long for a USTAR member (100 bytes)",
                    out, ovf_name);
    /* R: the descriptor with every size at its widest */
    char *xml = NULL;
    size_t reserved = 0, xml_len = 0, mf_len = 0;
    for (size_t i = 0; i < nd; i++) {
        x->vm.disks[i].file_size = UINT64_MAX;
        x->vm.disks[i].populated_bytes = UINT64_MAX;
    }
    if (!r)
        r = vk_ovf_write_xml(&x->vm, &xml, &reserved, e);
    free(xml);
    xml = NULL;
    char *mf = r ? NULL : manifest(x, ovf_name, NULL, &mf_len);
    if (!r && !mf)
        r = VMDKIT_ENOMEM;
    free(mf);
    mf = NULL;

    struct out_file f = {.fd = -1};
    if (!r)
        r = open_tmp(&f, out, e);
    uint64_t mtime = (uint64_t)time(NULL);
    uint64_t ovf_data = VK_TAR_BLOCK, mf_hdr = ovf_data + round_block(reserved);
    uint64_t cur = mf_hdr + VK_TAR_BLOCK + round_block(mf_len);
    uint8_t hdr[VK_TAR_BLOCK];
    for (size_t i = 0; !r && i < nd; i++) {
        uint64_t data = cur + VK_TAR_BLOCK;
        if ((r = write_disk(x, i, f.fd, data)))
            break;
        if (!(r = vk_tar_header(hdr, x->vm.disks[i].href, x->vm.disks[i].file_size, mtime, e)))
            r = vk_pwrite_full(f.fd, hdr, sizeof hdr, cur, f.tmp, e);
        cur = data + round_block(x->vm.disks[i].file_size);
    }
    /* the descriptor, now with the real sizes, padded to R */
    if (!r)
        r = vk_ovf_write_xml(&x->vm, &xml, &xml_len, e);
    if (!r && xml_len > reserved)
        r = vk_fail(e, VMDKIT_ELIMIT, "%s: descriptor outgrew its reserved %zu bytes", out, reserved);
    char *padded = r ? NULL : vk_malloc(reserved, e);
    if (!r && !padded)
        r = VMDKIT_ENOMEM;
    char ovf_hex[2 * VK_OVF_MAX_DIGEST + 1];
    if (!r) {
        /* "...</Envelope>" + blanks + "\n" */
        size_t body = xml_len && xml[xml_len - 1] == '\n' ? xml_len - 1 : xml_len;
        memcpy(padded, xml, body);
        memset(padded + body, ' ', reserved - body - 1);
        padded[reserved - 1] = '\n';
        hex_of(x->algo, padded, reserved, ovf_hex, e);
        if (!ovf_hex[0])
            r = VMDKIT_ENOMEM;
    }
    size_t mf_real = 0;
    if (!r && !(mf = manifest(x, ovf_name, ovf_hex, &mf_real)))
        r = VMDKIT_ENOMEM;
    if (!r && mf_real != mf_len)
        r = vk_fail(e, VMDKIT_EIO, "%s: manifest length changed", out);
    if (!r)
        r = vk_pwrite_full(f.fd, mf, mf_len, mf_hdr + VK_TAR_BLOCK, f.tmp, e);
    if (!r && !(r = vk_tar_header(hdr, mf_name, mf_len, mtime, e)))
        r = vk_pwrite_full(f.fd, hdr, sizeof hdr, mf_hdr, f.tmp, e);
    if (!r)
        r = vk_pwrite_full(f.fd, padded, reserved, ovf_data, f.tmp, e);
    if (!r && !(r = vk_tar_header(hdr, ovf_name, reserved, mtime, e)))
        r = vk_pwrite_full(f.fd, hdr, sizeof hdr, 0, f.tmp, e);
    /* two zero blocks end the archive; tar pads it to 10 KiB records.
     * Everything not written is a hole: it reads as the zeros required. */
    if (!r) {
        uint64_t end = vk_div_round_up(cur + 2 * VK_TAR_BLOCK, 10240) * 10240;
        if (ftruncate(f.fd, (off_t)end) != 0)
            r = vk_fail_errno(e, errno, "%s: set size", f.tmp);
    }
    if (!r)
        r = out_file_commit(&f, e);
    if (!r)
        r = vk_fsync_parent(out, e);
    out_file_end(&f, r != 0);
    free(padded);
    free(xml);
    free(mf);
    free(ovf_name);
    return r;
}

static int write_ovf_folder(struct exporter *x, const char *out, const char *base)
{
    vk_err *e = x->e;
    size_t nd = x->vm.n_disks;
    char *dir = vk_path_dirname(out, e);
    struct out_file *files = vk_calloc(nd + 2, sizeof *files, e);
    if (!dir || !files) {
        free(dir);
        free(files);
        return VMDKIT_ENOMEM;
    }
    for (size_t i = 0; i < nd + 2; i++)
        files[i].fd = -1;
    int r = 0;
    char path[4096];
    for (size_t i = 0; !r && i < nd; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, x->vm.disks[i].href);
        struct stat st;
        if (lstat(path, &st) == 0)
            r = vk_fail(e, VMDKIT_EEXIST, "%s: already exists", path);
        else if (!(r = open_tmp(&files[i], path, e)))
            r = write_disk(x, i, files[i].fd, 0);
    }
    char *xml = NULL, *mf = NULL;
    size_t xml_len = 0, mf_len = 0;
    char ovf_hex[2 * VK_OVF_MAX_DIGEST + 1] = "";
    if (!r)
        r = vk_ovf_write_xml(&x->vm, &xml, &xml_len, e);
    if (!r) {
        hex_of(x->algo, xml, xml_len, ovf_hex, e);
        if (!(mf = manifest(x, vk_path_basename(out), ovf_hex, &mf_len)))
            r = VMDKIT_ENOMEM;
    }
    snprintf(path, sizeof path, "%s/%s.mf", dir, base);
    if (!r && !(r = open_tmp(&files[nd], path, e)))
        r = vk_pwrite_full(files[nd].fd, mf, mf_len, 0, files[nd].tmp, e);
    if (!r && !(r = open_tmp(&files[nd + 1], out, e)))
        r = vk_pwrite_full(files[nd + 1].fd, xml, xml_len, 0, files[nd + 1].tmp, e);
    /* disks, manifest, descriptor: the one naming the others goes last */
    for (size_t i = 0; !r && i < nd + 2; i++)
        r = out_file_commit(&files[i], e);
    if (!r)
        r = vk_fsync_dir(dir, e);
    for (size_t i = 0; i < nd + 2; i++)
        out_file_end(&files[i], r != 0);
    free(files);
    free(xml);
    free(mf);
    free(dir);
    return r;
}

int vmdkit_ova_export(const char *vm_path, const char *out, const vmdkit_ova_export_opts *opts,
                      vmdkit_error *err)
{
    vk_err local, *e;
    vmdkit_ova_export_opts o = {0};
    int r0 = vk_entry_opts(&e, err, &local, NULL, 0,
                           vm_path && out ? NULL : "vmdkit_ova_export: vm and out are required", &o,
                           sizeof o, opts, "vmdkit_ova_export_opts");
    if (r0)
        return r0;
    if (o.checksum < 0 || o.checksum > VMDKIT_OVA_SHA512)
        return vk_fail(e, VMDKIT_EINVAL, "%s: checksum: unknown algorithm %d", out, o.checksum);
    if (o.hw_max && (o.hw_max < 4 || o.hw_max > 99))
        return vk_fail(e, VMDKIT_EINVAL, "%s: hw-max: %d is not a hardware version (4..99)", out,
                       o.hw_max);
    bool ova = vk_path_has_suffix(out, ".ova");
    if (!ova && !vk_path_has_suffix(out, ".ovf"))
        return vk_fail(e, VMDKIT_EINVAL, "%s: the package must be named NAME.ova or NAME.ovf", out);
    struct stat st;
    if (lstat(out, &st) == 0)
        return vk_fail(e, VMDKIT_EEXIST, "%s: already exists", out);

    struct exporter x = {.o = &o, .e = e, .prog = {.o = &o}};
    x.algo = o.checksum == VMDKIT_OVA_SHA1     ? VK_ALGO_SHA1
             : o.checksum == VMDKIT_OVA_SHA512 ? VK_ALGO_SHA512
                                               : VK_ALGO_SHA256;
    char *vmx_path = NULL, *base = NULL;
    vk_vmx *v = NULL;
    int r = vk_vm_resolve(vm_path, &vmx_path, e);
    if (!r)
        r = vk_vmx_load(vmx_path, &v, e);
    if (!r)
        r = vk_vm_check_stopped(vmx_path, v, e);
    if (!r)
        r = vk_ovf_from_vmx(v, vmx_path, o.extra_config, &x.vm, e);
    if (!r && o.hw_max && x.vm.hw_version > (unsigned)o.hw_max) {
        r = vk_ovf_check_hw(&x.vm, (unsigned)o.hw_max, vmx_path, e);
        if (!r)
            x.vm.hw_version = (unsigned)o.hw_max;
    }
    if (!r && !(base = package_base(out, e)))
        r = VMDKIT_ENOMEM;
    size_t nd = x.vm.n_disks;
    if (!r) {
        x.disks = vk_calloc(nd + 1, sizeof *x.disks, e);
        x.hex = vk_calloc(nd + 1, sizeof *x.hex, e);
        if (!x.disks || !x.hex)
            r = VMDKIT_ENOMEM;
    }
    /* every chain opens before anything is written */
    for (size_t i = 0; !r && i < nd; i++) {
        vk_ovf_disk *d = &x.vm.disks[i];
        char name[300], id[32];
        if ((r = vmdkit_open(d->source, VK_OPEN_CHAIN_OF_USER | VMDKIT_OPEN_RDONLY, &x.disks[i], e))) {
            vk_err_prefix(e, "%s%u:%u", vk_ovf_bus_vmx(d->bus), d->ctrl, d->unit);
            break;
        }
        d->capacity_bytes = vmdkit_size(x.disks[i]);
        x.prog.total += d->capacity_bytes;
        snprintf(name, sizeof name, "%s-disk%zu.vmdk", base, i + 1);
        if (strlen(name) > 100 && ova) {
            r = vk_fail(e, VMDKIT_EINVAL,
                        "%s: the name \"%s\" is too long for a USTAR member (100 bytes)", out, name);
            break;
        }
        if (!(d->href = vk_strdup(name, e)))
            r = VMDKIT_ENOMEM;
        snprintf(id, sizeof id, "file%zu", i + 1);
        if (!r && !(d->file_id = vk_strdup(id, e)))
            r = VMDKIT_ENOMEM;
        snprintf(id, sizeof id, "vmdisk%zu", i + 1);
        if (!r && !(d->disk_id = vk_strdup(id, e)))
            r = VMDKIT_ENOMEM;
    }
    if (!r && o.progress && o.progress(o.progress_opaque, 0, x.prog.total))
        r = vk_fail(e, VMDKIT_ECANCELED, "cancelled");
    if (!r)
        r = ova ? write_ova(&x, out, base) : write_ovf_folder(&x, out, base);
    if (!r && o.progress)
        (void)o.progress(o.progress_opaque, x.prog.total, x.prog.total);
    for (size_t i = 0; x.disks && i < nd; i++)
        if (x.disks[i])
            vmdkit_close(x.disks[i], NULL);
    free(x.disks);
    free(x.hex);
    vk_ovf_vm_free(&x.vm);
    vk_vmx_free(v);
    free(vmx_path);
    free(base);
    return r;
}
