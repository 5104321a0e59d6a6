/* check_kdmv.c - checks of one hosted sparse (KDMV) extent file: the
 * header, the directories, then (check_tables.c) the grain tables and
 * grains, then leaked space; for streamOptimized files the footer and the
 * marker sequence (check_stream.c). */
#include <stdlib.h>

#include "check_sparse.h"

/* Header at sector 0: decode, validate, note the flags.  *ok is false when
 * nothing more can be checked. */
static int check_header(vk_sparse_check *s, bool *ok)
{
    vk_check *c = s->c;
    *ok = false;
    if (s->file_bytes < VK_SECTOR) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, 0,
                        "%s: header: file is %llu bytes, shorter than a sparse header", s->file,
                        (unsigned long long)s->file_bytes);
        return 0;
    }
    int r = vk_pread_full(s->fd, s->raw_header, VK_SECTOR, 0, s->file, c->e);
    if (r)
        return r;
    vk_sparse_header_decode(s->raw_header, &s->h);
    vk_err why = {0};
    r = vk_sparse_header_validate(&s->h, s->file_sectors, s->file, &why);
    if (r == VMDKIT_EUNSUPPORTED) {
        vk_check_report(c, VMDKIT_FIND_INFO, s->file, 0, "%s (not checked)", why.msg);
        c->n.incomplete = true;
        return 0;
    }
    if (r) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, 0, "%s", why.msg);
        return 0;
    }
    s->compressed = (s->h.flags & VK_FLAG_COMPRESSED) != 0;
    s->markers = (s->h.flags & VK_FLAG_MARKERS) != 0;
    s->zeroed_flag = (s->h.flags & VK_FLAG_ZEROED_GRAIN) != 0;
    s->stream_footer = s->h.gd_offset_sectors == VK_GD_AT_END;
    s->x->compressed = s->compressed;
    if (s->h.unclean_shutdown) {
        s->x->unclean = true;
        c->n.unclean = true;
        c->n.unclean_kept |= !(c->plan && s->x->repairable);
        vk_check_report(
            c, VMDKIT_FIND_INFO, s->file, 72,
            "%s: uncleanShutdown: set: the extent was not closed cleanly (not an error by itself)",
            s->file);
        if (c->plan && s->x->repairable) {
            uint8_t zero = 0;
            r = vk_check_plan_write(c, VK_FIX_HEADER, VMDKIT_FIND_INFO, s->x->file, 72, &zero, 1,
                                    "%s: uncleanShutdown: cleared", s->file);
            if (r)
                return r;
        }
    }
    if (s->compressed && !s->markers)
        vk_check_report(c, VMDKIT_FIND_INFO, s->file, 8,
                        "%s: flags: compressed grains without markers, a variant writers disagree on",
                        s->file);
    if (s->stream_footer && !s->markers) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, 56,
                        "%s: gdOffset: at the end of the stream, but the stream has no markers",
                        s->file);
        return 0;
    }
    if (s->h.overhead_sectors > s->file_sectors)
        vk_check_report(c, VMDKIT_FIND_INFO, s->file, 64,
                        "%s: overHead: %llu sectors, past the end of the file (%llu sectors)", s->file,
                        (unsigned long long)s->h.overhead_sectors, (unsigned long long)s->file_sectors);
    if (s->stream_footer) {
        bool footer_ok;
        if ((r = vk_check_stream_footer(s, &footer_ok)) || !footer_ok)
            return r;
    }
    s->x->header_ok = true;
    s->x->capacity_sectors = s->h.capacity_sectors;
    s->x->grain_sectors = s->h.grain_sectors;
    *ok = true;
    return 0;
}

/* Is [a, a+alen) overlapping [b, b+blen)? */
static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* The fixed structures (header, descriptor, directories): their sizes,
 * places and overlaps; load both directories. */
static int check_directories(vk_sparse_check *s, bool *ok)
{
    vk_check *c = s->c;
    vk_err *e = c->e;
    const vk_sparse_header *h = &s->h;
    *ok = false;
    s->grain_bytes = h->grain_sectors * VK_SECTOR;
    s->num_gdes = vk_num_gdes(h);
    s->gd_sectors = vk_gd_sectors(s->num_gdes);
    s->gt_sectors = vk_gt_sectors(h->gtes_per_gt);
    s->gt_bytes = (uint64_t)h->gtes_per_gt * 4;
    s->grains = vk_div_round_up(h->capacity_sectors, h->grain_sectors);
    if (s->num_gdes > VK_CHECK_MAX_GDES) {
        vk_check_report(
            c, VMDKIT_FIND_INFO, s->file, 12,
            "%s: capacity: %llu sectors need a grain directory of %llu entries, more than the %llu vmdkit checks (not checked)",
            s->file, (unsigned long long)h->capacity_sectors, (unsigned long long)s->num_gdes,
            (unsigned long long)VK_CHECK_MAX_GDES);
        c->n.incomplete = true;
        return 0;
    }
    s->has_rgd = (h->flags & VK_FLAG_REDUNDANT_GD) && h->rgd_offset_sectors != 0 && !s->stream_footer;
    if (s->has_rgd && s->compressed && (h->rgd_offset_sectors + s->gd_sectors > s->file_sectors)) {
        /* streams ignore the redundant directory; only a real one is checked */
        vk_check_report(
            c, VMDKIT_FIND_INFO, s->file, 48,
            "%s: rgdOffset: redundant grain directory lies outside the file (ignored in a compressed extent)",
            s->file);
        s->has_rgd = false;
    }
    int r = vk_space_init(&s->space, s->file_sectors, h->grain_sectors, e);
    if (r)
        return r;
    if (!s->space.enabled) {
        vk_check_report(
            c, VMDKIT_FIND_INFO, s->file, VMDKIT_CHECK_NO_OFFSET,
            "%s: grainSize: %llu sectors is too small for the file size to account for its space; overlaps and leaks were not checked",
            s->file, (unsigned long long)h->grain_sectors);
        c->n.incomplete = true;
    }
    /* fixed structures: where the header puts them */
    uint64_t desc_len = h->desc_offset_sectors ? h->desc_size_sectors : 0;
    if ((r = vk_space_add_meta(&s->space, 0, 1, VK_OWN_HEADER, 0, true, e)) ||
        (desc_len && (r = vk_space_add_meta(&s->space, h->desc_offset_sectors, desc_len,
                                            VK_OWN_DESCRIPTOR, 0, true, e))) ||
        (r = vk_space_add_meta(&s->space, h->gd_offset_sectors, s->gd_sectors, VK_OWN_GD, 0, true, e)) ||
        (s->has_rgd && (r = vk_space_add_meta(&s->space, h->rgd_offset_sectors, s->gd_sectors,
                                              VK_OWN_RGD, 0, true, e))))
        return r;
    bool clash = false;
    if (desc_len && overlaps(h->desc_offset_sectors, desc_len, h->gd_offset_sectors, s->gd_sectors)) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, s->file, 28,
            "%s: descriptorOffset/gdOffset: the descriptor area and the grain directory overlap",
            s->file);
        clash = true;
    }
    if (s->has_rgd && desc_len &&
        overlaps(h->desc_offset_sectors, desc_len, h->rgd_offset_sectors, s->gd_sectors)) {
        vk_check_report(
            c, VMDKIT_FIND_CORRUPT, s->file, 28,
            "%s: descriptorOffset/rgdOffset: the descriptor area and the redundant grain directory overlap",
            s->file);
        clash = true;
    }
    if (s->has_rgd &&
        overlaps(h->rgd_offset_sectors, s->gd_sectors, h->gd_offset_sectors, s->gd_sectors)) {
        vk_check_report(c, VMDKIT_FIND_CORRUPT, s->file, 48,
                        "%s: rgdOffset/gdOffset: the two grain directories overlap", s->file);
        clash = true;
    }
    if (clash)
        return 0; /* the directories cannot be told apart: nothing below is meaningful */

    size_t bytes = (size_t)(s->gd_sectors * VK_SECTOR);
    uint8_t *buf = vk_malloc(bytes, e);
    s->gd = vk_calloc((size_t)s->num_gdes, sizeof *s->gd, e);
    if (s->has_rgd)
        s->rgd = vk_calloc((size_t)s->num_gdes, sizeof *s->rgd, e);
    if (!buf || !s->gd || (s->has_rgd && !s->rgd)) {
        free(buf);
        return VMDKIT_ENOMEM;
    }
    r = vk_pread_full(s->fd, buf, bytes, h->gd_offset_sectors * VK_SECTOR, s->file, e);
    for (uint64_t i = 0; !r && i < s->num_gdes; i++)
        s->gd[i] = vk_le32(buf + 4 * i);
    /* some stream writers list one table more than the capacity needs, in
     * the rest of the directory's last sector: that table is not leaked */
    s->n_gd_extra = bytes / 4 - (size_t)s->num_gdes;
    if (!r && s->compressed && s->n_gd_extra) {
        if (!(s->gd_extra = vk_malloc(s->n_gd_extra * sizeof *s->gd_extra, e)))
            r = VMDKIT_ENOMEM;
        for (size_t k = 0; !r && k < s->n_gd_extra; k++)
            s->gd_extra[k] = vk_le32(buf + 4 * (s->num_gdes + k));
    } else {
        s->n_gd_extra = 0;
    }
    if (!r && s->has_rgd) {
        r = vk_pread_full(s->fd, buf, bytes, h->rgd_offset_sectors * VK_SECTOR, s->file, e);
        for (uint64_t i = 0; !r && i < s->num_gdes; i++)
            s->rgd[i] = vk_le32(buf + 4 * i);
    }
    free(buf);
    if (r)
        return r;
    *ok = true;
    return 0;
}

/* Leaked space of an uncompressed extent: units after overHead that nothing
 * references; the repair cuts a leak that reaches the end of the file. */
static int check_leaks(vk_sparse_check *s)
{
    vk_check *c = s->c;
    vk_space *sp = &s->space;
    if (!sp->enabled)
        return 0;
    if (s->space_uncertain) {
        vk_check_report(c, VMDKIT_FIND_INFO, s->file, VMDKIT_CHECK_NO_OFFSET,
                        "%s: leaked space not checked: a grain table could not be trusted", s->file);
        c->n.incomplete = true;
        return 0;
    }
    uint64_t unit_bytes = sp->unit * VK_SECTOR;
    uint64_t first = vk_div_round_up(s->h.overhead_sectors, sp->unit);
    bool tail = false;
    for (uint64_t u = first; u < sp->n_units;) {
        if (!vk_space_unit_free(sp, u)) {
            u++;
            continue;
        }
        uint64_t v = u;
        while (v < sp->n_units && vk_space_unit_free(sp, v))
            v++;
        uint64_t from = u * unit_bytes;
        uint64_t to = vk_min(v * unit_bytes, s->file_bytes);
        vk_check_leak(
            c, s->file, from, v - u, to - from,
            "%s: sectors %llu-%llu (%llu bytes): allocated but not referenced by any grain table",
            s->file, (unsigned long long)(from / VK_SECTOR),
            (unsigned long long)(vk_div_round_up(to, VK_SECTOR) - 1), (unsigned long long)(to - from));
        tail = v == sp->n_units;
        u = v;
    }
    if (!tail || !c->plan || !s->x->repairable || c->plan_grows_file)
        return 0;
    uint64_t keep = vk_max(sp->max_end, s->h.overhead_sectors) * VK_SECTOR;
    return vk_space_cut_tail(s, keep);
}

int vk_check_kdmv(vk_check *c, vk_check_extent *x)
{
    vk_sparse_check s = {0};
    s.c = c;
    s.x = x;
    int r0 = vk_check_fd(c, x->file, &s.fd);
    if (r0)
        return r0;
    s.file = c->files[x->file].path;
    int r = vk_file_size(s.fd, &s.file_bytes, s.file, c->e);
    if (r)
        return r;
    c->files[x->file].size = s.file_bytes;
    s.file_sectors = vk_div_round_up(s.file_bytes, VK_SECTOR);
    bool ok;
    if ((r = check_header(&s, &ok)) || !ok)
        goto out;
    if ((r = check_directories(&s, &ok)) || !ok)
        goto out;
    if ((r = vk_check_tables_judge(&s)) || (r = vk_check_tables_grains(&s)))
        goto out;
    if (s.tail_grains)
        vk_check_report(
            c, VMDKIT_FIND_INFO, s.file, VMDKIT_CHECK_NO_OFFSET,
            "%s: %llu grain(s) end past the end of the file; the missing part reads as zeros", s.file,
            (unsigned long long)s.tail_grains);
    if (s.compressed)
        r = vk_check_stream_walk(&s);
    else
        r = check_leaks(&s);
out:
    free(s.gd);
    free(s.gd_extra);
    free(s.rgd);
    free(s.pst);
    free(s.rst);
    free(s.auth);
    free(s.tbl);
    free(s.rtbl);
    vk_check_stream_free(&s);
    vk_space_free(&s.space);
    return r;
}
