/*
 * bad_probe.c - open a disk and read all of it; print the error class.
 *
 *   bad_probe [--allow-external-extents] [--write] DISK
 *
 * Opens DISK read-only the way the vmdkit command does (format detection),
 * walks its block status from start to end and reads every run that holds
 * data, like a conversion would.  With --write it opens DISK read-write
 * instead and then writes: a sector and a whole 64 KiB run at the start,
 * a sector in the middle, the last sector; then closes (flushing).  Prints
 * one line: "ok", or the class name of the first error
 * (vmdkit_errcode_name) and its message.  Exit status 0 when it printed
 * "ok", 1 for a library error, 2 for usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdkit.h"

#define CHUNK (1u << 20)

static int report(int code, const char *msg)
{
    printf("%s\t%s\n", vmdkit_errcode_name(code), msg);
    return 1;
}

/* The writes of --write; each must succeed or fail cleanly. */
static int write_some(vmdkit_disk *d, uint8_t *buf)
{
    uint64_t size = vmdkit_size(d);
    const struct {
        uint64_t off, len;
    } w[] = {
        {0, 512},
        {0, 65536},
        {size / 2 / 512 * 512, 512},
        {size - 512, 512},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (w[i].off + w[i].len > size)
            continue;
        memset(buf, (int)(0xa0 + i), (size_t)w[i].len);
        int e = vmdkit_pwrite(d, buf, (size_t)w[i].len, w[i].off);
        if (e < 0)
            return report(e, vmdkit_last_error(d)->msg);
    }
    int e = vmdkit_flush(d);
    return e < 0 ? report(e, vmdkit_last_error(d)->msg) : 0;
}

int main(int argc, char **argv)
{
    unsigned flags = VMDKIT_OPEN_PROBE;
    bool write = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--allow-external-extents") == 0)
            flags |= VMDKIT_OPEN_ALLOW_EXTERNAL;
        else if (strcmp(argv[i], "--write") == 0)
            write = true;
        else
            break;
    }
    if (argc - i != 1) {
        fprintf(stderr, "usage: bad_probe [--allow-external-extents] [--write] DISK\n");
        return 2;
    }
    if (write)
        flags |= VMDKIT_OPEN_RDWR;
    vmdkit_error err;
    vmdkit_disk *d;
    int e = vmdkit_open(argv[i], flags, &d, &err);
    if (e < 0)
        return report(e, err.msg);
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        vmdkit_close(d, NULL);
        return report(VMDKIT_ENOMEM, "out of memory");
    }
    uint64_t size = vmdkit_size(d);
    int rc = write ? write_some(d, buf) : 0;
    for (uint64_t off = 0; !write && off < size && rc == 0;) {
        vmdkit_block_status st;
        if ((e = vmdkit_block_status_at(d, size - off, off, &st)) < 0) {
            rc = report(e, vmdkit_last_error(d)->msg);
            break;
        }
        if (st.alloc == VMDKIT_ALLOC_DATA) {
            for (uint64_t done = 0; done < st.length;) {
                size_t n = st.length - done < CHUNK ? (size_t)(st.length - done) : CHUNK;
                if ((e = vmdkit_pread(d, buf, n, off + done)) < 0) {
                    rc = report(e, vmdkit_last_error(d)->msg);
                    break;
                }
                done += n;
            }
        }
        off += st.length;
    }
    free(buf);
    e = vmdkit_close(d, &err);
    if (rc == 0 && e < 0)
        rc = report(e, err.msg);
    if (rc == 0)
        printf("ok\n");
    return rc;
}
