/* tar.c - tar archives as OVA packages use them: USTAR headers written
 * (POSIX 1003.1-1988 layout, "ustar\0" "00", owner 0/0, mode 0644), and
 * archives listed with where each member's data lies, whatever wrote them
 * (USTAR, GNU with its long names and base-256 sizes, pax extended
 * headers, old v7).  Every header's checksum is verified; counts and name
 * lengths are bounded. */
#include <stdio.h>
#include <stdlib.h>

#include "ovf.h"

#define MAX_MEMBERS (VK_OVF_MAX_FILES * 4u)
#define MAX_LONG_NAME 4096u
#define USTAR_MAX_OCTAL_SIZE ((UINT64_C(1) << 33) - 1) /* 11 octal digits */

static void octal(uint8_t *field, size_t width, uint64_t v)
{
    /* WIDTH - 1 digits, zero padded, then NUL */
    for (size_t i = width - 1; i-- > 0;) {
        field[i] = (uint8_t)('0' + (v & 7));
        v >>= 3;
    }
    field[width - 1] = 0;
}

static unsigned checksum(const uint8_t hdr[VK_TAR_BLOCK])
{
    unsigned sum = 0;
    for (size_t i = 0; i < VK_TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : hdr[i];
    return sum;
}

int vk_tar_header(uint8_t hdr[VK_TAR_BLOCK], const char *name, uint64_t size, uint64_t mtime, vk_err *e)
{
    size_t n = strlen(name);
    if (n == 0 || n > 100)
        return vk_fail(e, VMDKIT_EINVAL, "%s: a USTAR member name holds 1 to 100 bytes", name);
    memset(hdr, 0, VK_TAR_BLOCK);
    memcpy(hdr, name, n);
    octal(hdr + 100, 8, 0644);
    octal(hdr + 108, 8, 0);
    octal(hdr + 116, 8, 0);
    if (size <= USTAR_MAX_OCTAL_SIZE) {
        octal(hdr + 124, 12, size);
    } else {
        /* base-256: high bit of the first byte set, big-endian value */
        hdr[124] = 0x80;
        for (int i = 11; i >= 4; i--) {
            hdr[124 + i] = (uint8_t)size;
            size >>= 8;
        }
    }
    octal(hdr + 136, 12, mtime & ((UINT64_C(1) << 33) - 1));
    hdr[156] = '0';
    memcpy(hdr + 257, "ustar", 6); /* "ustar\0" */
    memcpy(hdr + 263, "00", 2);
    memcpy(hdr + 265, "root", 4);
    memcpy(hdr + 297, "root", 4);
    unsigned sum = checksum(hdr);
    /* six octal digits, NUL, space: what POSIX tar writes */
    snprintf((char *)hdr + 148, 8, "%06o", sum);
    hdr[155] = ' ';
    return 0;
}

/* ---- reading ---- */

/* A numeric field: octal digits (leading blanks, ending NUL or blank), or
 * GNU base-256.  False when malformed. */
static bool number(const uint8_t *f, size_t width, uint64_t *out, bool *base256)
{
    *base256 = false;
    if (f[0] & 0x80) {
        if (f[0] != 0x80)
            return false; /* negative or too wide */
        uint64_t v = 0;
        for (size_t i = 1; i < width; i++) {
            if (v >> 56)
                return false;
            v = v << 8 | f[i];
        }
        *out = v;
        *base256 = true;
        return true;
    }
    size_t i = 0;
    while (i < width && f[i] == ' ')
        i++;
    uint64_t v = 0; /* an empty field reads as 0 */
    for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return false;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < width; i++)
        if (f[i] != 0 && f[i] != ' ')
            return false;
    *out = v;
    return true;
}

static bool header_ok(const uint8_t *h)
{
    uint64_t stored;
    bool b256;
    return number(h + 148, 8, &stored, &b256) && !b256 && stored == checksum(h);
}

bool vk_tar_probe(int fd)
{
    uint8_t h[VK_TAR_BLOCK];
    vk_err ignore;
    return vk_pread_full(fd, h, sizeof h, 0, "tar", &ignore) == 0 && !vk_is_zero(h, sizeof h) &&
           header_ok(h);
}

static char *field_str(const uint8_t *f, size_t width, vk_err *e)
{
    size_t n = 0;
    while (n < width && f[n])
        n++;
    char *s = vk_malloc(n + 1, e);
    if (s) {
        memcpy(s, f, n);
        s[n] = 0;
    }
    return s;
}

/* The "path" record of a pax extended header DATA (LEN bytes), or NULL. */
static char *pax_path(const char *data, size_t len, uint64_t *size, bool *has_size, vk_err *e)
{
    size_t p = 0;
    char *path = NULL;
    while (p < len) {
        /* "LEN key=value\n", LEN counting the whole record */
        size_t q = p, rec = 0;
        while (q < len && data[q] >= '0' && data[q] <= '9' && rec < 1000000)
            rec = rec * 10 + (size_t)(data[q++] - '0');
        if (q == p || q >= len || data[q] != ' ' || rec == 0 || p + rec > len ||
            data[p + rec - 1] != '\n')
            break;
        const char *kv = data + q + 1, *end = data + p + rec - 1;
        const char *eq = memchr(kv, '=', (size_t)(end - kv));
        if (eq) {
            size_t kn = (size_t)(eq - kv);
            if (kn == 4 && memcmp(kv, "path", 4) == 0) {
                free(path);
                size_t vn = (size_t)(end - eq - 1);
                if ((path = vk_malloc(vn + 1, e))) {
                    memcpy(path, eq + 1, vn);
                    path[vn] = 0;
                }
            } else if (kn == 4 && memcmp(kv, "size", 4) == 0) {
                char buf[32];
                size_t vn = (size_t)(end - eq - 1);
                if (vn < sizeof buf) {
                    memcpy(buf, eq + 1, vn);
                    buf[vn] = 0;
                    char *stop;
                    unsigned long long v = strtoull(buf, &stop, 10);
                    if (!*stop && vn) {
                        *size = v;
                        *has_size = true;
                    }
                }
            }
        }
        p += rec;
    }
    return path;
}

void vk_tar_free(vk_tar *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->m[i].name);
    free(t->m);
    memset(t, 0, sizeof *t);
}

int vk_tar_list(int fd, const char *path, vk_tar *t, vk_err *e)
{
    memset(t, 0, sizeof *t);
    uint64_t file_size;
    int r = vk_file_size(fd, &file_size, path, e);
    if (r)
        return r;
    uint64_t off = 0;
    char *long_name = NULL; /* from a GNU 'L' or pax 'x' header */
    bool pending_pax = false, pending_gnu = false, pax_has_size = false;
    uint64_t pax_size = 0;
    uint8_t h[VK_TAR_BLOCK];
    for (;;) {
        if (off + VK_TAR_BLOCK > file_size) {
            t->no_end = true;
            break;
        }
        if ((r = vk_pread_full(fd, h, sizeof h, off, path, e)))
            break;
        if (vk_is_zero(h, sizeof h))
            break; /* the end-of-archive blocks */
        if (!header_ok(h)) {
            r = vk_fail(e, VMDKIT_EFORMAT,
                        "%s: tar header at byte %llu: bad checksum: not a tar archive or damaged", path,
                        (unsigned long long)off);
            break;
        }
        uint64_t size;
        bool b256;
        if (!number(h + 124, 12, &size, &b256)) {
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: tar header at byte %llu: size field is malformed", path,
                        (unsigned long long)off);
            break;
        }
        char type = (char)h[156];
        uint64_t data = off + VK_TAR_BLOCK, padded;
        if (!vk_add_ok(size, VK_TAR_BLOCK - 1, &padded) ||
            !vk_add_ok(data, padded / VK_TAR_BLOCK * VK_TAR_BLOCK, &padded) || data + size > file_size) {
            r = vk_fail(e, VMDKIT_EFORMAT,
                        "%s: tar member at byte %llu: %llu bytes run past the end of the file", path,
                        (unsigned long long)off, (unsigned long long)size);
            break;
        }
        if (type == 'L' || type == 'x') {
            /* a long name for the next member */
            if (size > MAX_LONG_NAME) {
                r = vk_fail(e, VMDKIT_ELIMIT, "%s: tar member at byte %llu: a name of %llu bytes", path,
                            (unsigned long long)off, (unsigned long long)size);
                break;
            }
            char *buf = vk_malloc((size_t)size + 1, e);
            if (!buf || (r = vk_pread_full(fd, buf, (size_t)size, data, path, e))) {
                free(buf);
                r = r ? r : VMDKIT_ENOMEM;
                break;
            }
            buf[size] = 0;
            free(long_name);
            if (type == 'L') {
                long_name = buf;
                pending_gnu = true;
            } else {
                long_name = pax_path(buf, (size_t)size, &pax_size, &pax_has_size, e);
                free(buf);
                pending_pax = true;
            }
            off = padded;
            continue;
        }
        if (type == 'g') { /* global pax header: nothing a member needs */
            off = padded;
            continue;
        }
        if (t->n >= MAX_MEMBERS) {
            r = vk_fail(e, VMDKIT_ELIMIT, "%s: more than %u tar members", path, MAX_MEMBERS);
            break;
        }
        vk_tar_member *m = vk_ovf_grow((void **)&t->m, &t->n, sizeof *m, e);
        if (!m) {
            r = VMDKIT_ENOMEM;
            break;
        }
        bool ustar = memcmp(h + 257, "ustar", 6) == 0 && memcmp(h + 263, "00", 2) == 0;
        bool gnu = memcmp(h + 257, "ustar  ", 8) == 0;
        m->kind = ustar ? VK_TAR_USTAR : gnu ? VK_TAR_GNU : VK_TAR_V7;
        m->type = type ? type : '0';
        m->offset = data;
        m->size = pending_pax && pax_has_size ? pax_size : size;
        m->pax = pending_pax;
        m->gnu_longname = pending_gnu;
        m->base256_size = b256;
        uint64_t mode = 0, uid = 0, gid = 0;
        bool ign;
        number(h + 100, 8, &mode, &ign);
        number(h + 108, 8, &uid, &ign);
        number(h + 116, 8, &gid, &ign);
        m->mode = (unsigned)(mode & 07777);
        m->uid = (unsigned)vk_min(uid, UINT32_MAX);
        m->gid = (unsigned)vk_min(gid, UINT32_MAX);
        if (long_name) {
            m->name = long_name;
            long_name = NULL;
        } else {
            char *base = field_str(h, 100, e);
            char *prefix = ustar ? field_str(h + 345, 155, e) : vk_strdup("", e);
            if (base && prefix && *prefix) {
                size_t n = strlen(prefix) + strlen(base) + 2;
                if ((m->name = vk_malloc(n, e)))
                    snprintf(m->name, n, "%s/%s", prefix, base);
                free(base);
            } else {
                m->name = base;
            }
            free(prefix);
        }
        if (!m->name) {
            r = VMDKIT_ENOMEM;
            break;
        }
        if (m->size != size &&
            !vk_add_ok(data, (m->size + VK_TAR_BLOCK - 1) / VK_TAR_BLOCK * VK_TAR_BLOCK, &padded)) {
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: %s: pax size is malformed", path, m->name);
            break;
        }
        if (m->size != size)
            padded = data + (m->size + VK_TAR_BLOCK - 1) / VK_TAR_BLOCK * VK_TAR_BLOCK;
        if (data + m->size > file_size) {
            r = vk_fail(e, VMDKIT_EFORMAT, "%s: %s: %llu bytes run past the end of the file", path,
                        m->name, (unsigned long long)m->size);
            break;
        }
        /* only regular files have data; links and folders take no blocks */
        if (m->type != '0' && m->type != '7')
            padded = data + (m->type == '5' || m->type == '1' || m->type == '2'
                                 ? 0
                                 : (m->size + VK_TAR_BLOCK - 1) / VK_TAR_BLOCK * VK_TAR_BLOCK);
        pending_pax = pending_gnu = pax_has_size = false;
        off = padded;
    }
    free(long_name);
    if (r)
        vk_tar_free(t);
    return r;
}

const vk_tar_member *vk_tar_find(const vk_tar *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        const char *n = t->m[i].name;
        if (strncmp(n, "./", 2) == 0) /* "tar -C dir ." writes these */
            n += 2;
        if ((t->m[i].type == '0' || t->m[i].type == '7') && strcmp(n, name) == 0)
            return &t->m[i];
    }
    return NULL;
}
