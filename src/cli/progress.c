/*
 * progress.c - progress of long commands on standard error: a bar with
 * percent, throughput and ETA on a terminal, or one JSON object per line
 * for programs (--progress=json).  Either is redrawn at most ten times a
 * second, however often the library reports.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MIN_INTERVAL_S 0.1

bool cli_parse_progress(const char *arg, enum cli_progress_mode *mode)
{
    if (!arg || strcmp(arg, "bar") == 0)
        *mode = CLI_PROGRESS_BAR;
    else if (strcmp(arg, "json") == 0)
        *mode = CLI_PROGRESS_JSON;
    else
        return false;
    return true;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* Before the library has named the total, nothing is done yet: 0 %, not
 * the 100 % that done >= total would say; the final report is 100 %. */
static double percent_of(const struct cli_progress *p)
{
    if (p->finished)
        return 100.0;
    if (p->total_bytes == 0)
        return 0.0;
    if (p->done_bytes >= p->total_bytes)
        return 100.0;
    return (double)p->done_bytes * 100.0 / (double)p->total_bytes;
}

/* Average rate since the start; 0 before a millisecond has passed. */
static double rate_of(const struct cli_progress *p, double now)
{
    double elapsed = now - p->start_s;
    return elapsed >= 0.001 ? (double)p->done_bytes / elapsed : 0.0;
}

/* Seconds left at the average rate; -1 when unknown. */
static double eta_of(const struct cli_progress *p, double rate)
{
    if (p->finished || (p->total_bytes > 0 && p->done_bytes >= p->total_bytes))
        return 0.0;
    if (p->total_bytes == 0)
        return -1.0; /* not known yet */
    if (rate <= 0.0)
        return -1.0;
    return (double)(p->total_bytes - p->done_bytes) / rate;
}

static void format_eta(double eta, char *buf, size_t n)
{
    if (eta < 0.0 || eta > 360000.0) {
        snprintf(buf, n, "--:--");
        return;
    }
    unsigned long s = (unsigned long)(eta + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%lu:%02lu", s / 60, s % 60);
}

static void draw_bar(struct cli_progress *p, double now)
{
    double pct = percent_of(p), rate = rate_of(p, now);
    char speed[32], eta[24], tail[96];
    cli_human_size((uint64_t)rate, speed, sizeof speed);
    format_eta(eta_of(p, rate), eta, sizeof eta);
    int tail_len = snprintf(tail, sizeof tail, " %5.1f%%  %s/s  ETA %s", pct, speed, eta);
    int bar = terminal_width() - 1 - tail_len - 2; /* "[...]" plus one free column */
    if (bar > 50)
        bar = 50;
    if (bar < 10)
        bar = 10;
    int filled = (int)(pct / 100.0 * bar);
    char line[160];
    int len = 0;
    line[len++] = '[';
    for (int i = 0; i < bar; i++)
        line[len++] = i < filled ? '#' : '-';
    line[len++] = ']';
    line[len] = '\0';
    int width = len + tail_len;
    /* blank what a longer previous line left behind */
    int pad = p->bar_width > width ? p->bar_width - width : 0;
    fprintf(stderr, "\r%s%s%*s", line, tail, pad, "");
    fflush(stderr);
    p->bar_width = width;
}

static void print_json(const struct cli_progress *p, double now, bool final, bool success)
{
    double pct = percent_of(p), rate = rate_of(p, now), eta = eta_of(p, rate);
    char pct_text[16];
    snprintf(pct_text, sizeof pct_text, "%.2f", pct);
    json_object *o = json_object_new_object();
    cli_json_add_u64(o, "done", p->done_bytes);
    cli_json_add_u64(o, "total", p->total_bytes);
    json_object_object_add(o, "percent", json_object_new_double_s(pct, pct_text));
    cli_json_add_u64(o, "bytes-per-second", (uint64_t)rate);
    json_object_object_add(o, "eta-seconds",
                           eta < 0.0 ? NULL : json_object_new_int64((int64_t)(eta + 0.5)));
    if (final) {
        cli_json_add_bool(o, "finished", true);
        cli_json_add_bool(o, "success", success);
    }
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (text) {
        fprintf(stderr, "%s\n", text);
        fflush(stderr);
    }
    json_object_put(o);
}

static void show(struct cli_progress *p, double now)
{
    if (p->mode == CLI_PROGRESS_JSON)
        print_json(p, now, false, false);
    else
        draw_bar(p, now);
    p->last_shown_s = now;
    p->shown_once = true;
}

void cli_progress_start(struct cli_progress *p, enum cli_progress_mode mode)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->on_terminal = isatty(STDERR_FILENO) != 0;
    /* a bar only makes sense on a terminal: logs stay clean */
    p->enabled = mode == CLI_PROGRESS_JSON || (mode == CLI_PROGRESS_BAR && p->on_terminal);
    p->start_s = now_s();
    if (p->mode == CLI_PROGRESS_BAR && p->enabled)
        show(p, p->start_s);
}

void cli_progress_init(struct cli_progress *p, bool wanted)
{
    cli_progress_start(p, wanted ? CLI_PROGRESS_BAR : CLI_PROGRESS_NONE);
}

int cli_progress_cb(void *opaque, uint64_t done_bytes, uint64_t total_bytes)
{
    struct cli_progress *p = opaque;
    if (p && p->enabled) {
        p->done_bytes = done_bytes;
        p->total_bytes = total_bytes;
        double now = now_s();
        if (!p->shown_once || now - p->last_shown_s >= MIN_INTERVAL_S)
            show(p, now);
    }
    return cli_cancel_requested();
}

void cli_progress_done(struct cli_progress *p, bool success)
{
    if (!p->enabled)
        return;
    double now = now_s();
    if (success && p->done_bytes < p->total_bytes)
        p->done_bytes = p->total_bytes;
    p->finished = success;
    if (p->mode == CLI_PROGRESS_JSON) {
        print_json(p, now, true, success);
        return;
    }
    draw_bar(p, now);
    fputc('\n', stderr);
}
