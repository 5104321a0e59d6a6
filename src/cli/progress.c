/* progress.c - the "(NN.NN/100%)" progress line of long commands. */
#include <unistd.h>

#include "cli.h"

static void show(struct cli_progress *p, int hundredths)
{
    fprintf(stderr, "\r    (%d.%02d/100%%)", hundredths / 100, hundredths % 100);
    fflush(stderr);
    p->last_shown = hundredths;
}

void cli_progress_init(struct cli_progress *p, bool wanted)
{
    /* a progress line only makes sense on a terminal; logs stay clean */
    p->enabled = wanted && isatty(STDERR_FILENO);
    p->last_shown = -1;
    if (p->enabled)
        show(p, 0);
}

int cli_progress_cb(void *opaque, uint64_t done_bytes, uint64_t total_bytes)
{
    struct cli_progress *p = opaque;
    if (!p || !p->enabled)
        return 0;
    int h = 10000;
    if (total_bytes > 0 && done_bytes < total_bytes)
        h = (int)((long double)done_bytes * 10000.0L / (long double)total_bytes);
    if (h != p->last_shown)
        show(p, h);
    return 0;
}

void cli_progress_done(struct cli_progress *p, bool success)
{
    if (!p->enabled)
        return;
    if (success && p->last_shown != 10000)
        show(p, 10000);
    fputc('\n', stderr);
}
