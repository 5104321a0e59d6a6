/* link_cid.c - record a link's new CID without moving a byte of an
 * embedded descriptor.
 *
 * The first write of a session gives the link a new CID.  A separate
 * descriptor file is replaced atomically, but a descriptor embedded in a
 * sparse extent is rewritten in place, and a power cut may tear that write
 * between sectors.  A canonical rewrite can shift every line of a text laid
 * out by another tool; old and new sectors side by side then no longer
 * parse, and the disk cannot be opened.  So the text on disk keeps its
 * layout: only the CID digits (and the CID at the end of
 * ddb.longContentID) change in place, each sector then holds either its
 * old or its new bytes, and any mixture of them still parses.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "link.h"

#define CID_DIGITS 8

/* Are the 8 characters at P the hex digits of VALUE? */
static bool hex8_is(const char *p, uint32_t value)
{
    uint32_t v = 0;
    for (int i = 0; i < CID_DIGITS; i++) {
        int c = tolower((unsigned char)p[i]);
        if (!isxdigit(c))
            return false;
        v = v << 4 | (uint32_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
    }
    return v == value;
}

/* The value of line [P, END) when its key is KEY: *VAL and *VEND bound it
 * (quotes excluded); false for another key. */
static bool line_value(const char *p, const char *end, const char *key, const char **val,
                       const char **vend)
{
    size_t klen = strlen(key);
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t)(end - p) < klen || strncasecmp(p, key, klen) != 0)
        return false;
    p += klen;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end || *p != '=')
        return false;
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *e = end;
    while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (e - p >= 2 && *p == '"' && e[-1] == '"') {
        p++;
        e--;
    }
    *val = p;
    *vend = e;
    return true;
}

/* Put the new CID into TEXT (LEN bytes) in place; false when the text
 * does not hold exactly one CID line with OLD as 8 hex digits. */
static bool patch_text(char *text, size_t len, uint32_t old, uint32_t cid)
{
    char digits[CID_DIGITS + 1];
    snprintf(digits, sizeof digits, "%08x", cid);
    char *cid_at = NULL, *lcid_at = NULL;
    int n_cid = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        const char *v, *ve;
        if (line_value(p, le, "CID", &v, &ve)) {
            n_cid++;
            if (ve - v == CID_DIGITS && hex8_is(v, old))
                cid_at = (char *)v;
        } else if (line_value(p, le, "ddb.longContentID", &v, &ve) && ve - v >= CID_DIGITS &&
                   hex8_is(ve - CID_DIGITS, old)) {
            lcid_at = (char *)ve - CID_DIGITS;
        }
        p = nl ? nl + 1 : end;
    }
    if (n_cid != 1 || !cid_at)
        return false;
    memcpy(cid_at, digits, CID_DIGITS);
    if (lcid_at)
        memcpy(lcid_at, digits, CID_DIGITS);
    return true;
}

int vk_link_write_cid(vk_link *l, uint32_t old_cid, vk_err *e)
{
    if (!l->embedded)
        return vk_link_write_descriptor(l, e);
    int fd = l->ext[0].fd;
    size_t area = (size_t)l->embedded_size_sectors * VK_SECTOR;
    uint64_t at = l->embedded_off_sectors * VK_SECTOR;
    char *now = vk_malloc(area, e);
    char *was = vk_malloc(area, e);
    bool rewrite = false;
    int r = now && was ? vk_pread_full(fd, now, area, at, l->path, e) : VMDKIT_ENOMEM;
    if (!r) {
        memcpy(was, now, area);
        rewrite = !patch_text(now, strnlen(now, area), old_cid, l->desc.cid);
    }
    if (!r && !rewrite) {
        /* write only the sectors that changed */
        size_t first = 0, last = area;
        while (first < area && now[first] == was[first])
            first++;
        while (last > first && now[last - 1] == was[last - 1])
            last--;
        if (first < last) {
            first -= first % VK_SECTOR;
            last = (size_t)vk_div_round_up(last, VK_SECTOR) * VK_SECTOR;
            r = vk_pwrite_full(fd, now + first, last - first, at + first, l->path, e);
            if (!r)
                r = vk_fdatasync(fd, l->path, e);
        }
    }
    free(now);
    free(was);
    /* a CID the text does not hold in the usual form: rewrite it all */
    return !r && rewrite ? vk_link_write_descriptor(l, e) : r;
}
