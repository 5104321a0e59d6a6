/* readfloor.c - the least work any reader does to read a whole disk whose
 * layout is known: one bare pread per stored piece and one memset per hole,
 * in requests of SIZE bytes into one buffer, in disk order.  No format
 * logic at all, so its time on a chain against its time on a single image
 * shows how much of that difference belongs to the kernel (page cache
 * lookups and copies of scattered pieces) rather than to the reader.
 *
 *   readfloor SIZE LAYOUT FILE0 [FILE1 ...]
 *
 * LAYOUT has one line per piece, in disk order: "START LENGTH DEPTH OFFSET"
 * (bytes; OFFSET -1 for a piece that reads as zeros), as
 * `qemu-img map --output=json` gives them; DEPTH picks FILE0 (the top of
 * the chain), FILE1 (its parent) ...  Prints the milliseconds of the read
 * loop.  Used by bench/run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct piece {
    int64_t start, length, offset;
    int depth;
};

static void die(const char *what)
{
    fprintf(stderr, "readfloor: %s: %s\n", what, errno ? strerror(errno) : "invalid");
    exit(1);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: readfloor SIZE LAYOUT FILE0 [FILE1 ...]\n");
        return 2;
    }
    int64_t size = strtoll(argv[1], NULL, 0);
    int n_files = argc - 3;
    if (size <= 0 || size % 512)
        die("SIZE");
    int *fd = calloc((size_t)n_files, sizeof *fd);
    if (!fd)
        die("memory");
    for (int i = 0; i < n_files; i++)
        if ((fd[i] = open(argv[3 + i], O_RDONLY | O_CLOEXEC)) < 0)
            die(argv[3 + i]);

    FILE *f = fopen(argv[2], "r");
    if (!f)
        die(argv[2]);
    size_t n = 0, cap = 1024;
    struct piece *p = malloc(cap * sizeof *p);
    if (!p)
        die("memory");
    struct piece q;
    while (fscanf(f, "%" SCNd64 " %" SCNd64 " %d %" SCNd64, &q.start, &q.length, &q.depth, &q.offset) ==
           4) {
        if (q.length <= 0 || q.depth < 0 || (q.offset >= 0 && q.depth >= n_files))
            die("LAYOUT line");
        /* one pread for pieces stored next to each other, one memset for
         * neighbouring holes: the fewest calls this layout allows */
        struct piece *last = n ? &p[n - 1] : NULL;
        if (last && last->start + last->length == q.start &&
            ((last->offset < 0 && q.offset < 0) ||
             (last->offset >= 0 && q.offset == last->offset + last->length && q.depth == last->depth))) {
            last->length += q.length;
            continue;
        }
        if (n == cap && !(p = realloc(p, (cap *= 2) * sizeof *p)))
            die("memory");
        p[n++] = q;
    }
    fclose(f);

    unsigned char *buf = aligned_alloc(4096, (size_t)size);
    if (!buf)
        die("memory");
    double t0 = now_ms();
    /* walk the pieces, cutting them at request boundaries as a reader
     * serving SIZE-byte requests must */
    for (size_t i = 0; i < n; i++) {
        int64_t pos = p[i].start, end = p[i].start + p[i].length;
        while (pos < end) {
            int64_t in_req = pos % size;
            int64_t k = end - pos < size - in_req ? end - pos : size - in_req;
            if (p[i].offset < 0) {
                memset(buf + in_req, 0, (size_t)k);
            } else {
                int64_t at = p[i].offset + (pos - p[i].start);
                if (pread(fd[p[i].depth], buf + in_req, (size_t)k, at) != k)
                    die("pread");
            }
            pos += k;
        }
    }
    printf("%.0f\n", now_ms() - t0);
    return 0;
}
