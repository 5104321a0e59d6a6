/*
 * cancel.c - SIGINT, SIGTERM and SIGHUP stop long work cleanly.
 *
 * A command whose library work polls for cancellation through its progress
 * callback (cli_progress_cb) calls cli_cancel_on_signals() just before it.
 * The first of these signals then only sets a flag; the library sees it at
 * its next progress report, removes what it had begun and returns
 * VMDKIT_ECANCELED; the command reports that and returns, and main() ends
 * the process by the same signal (cli_exit_if_interrupted), so that the
 * shell sees 128+N and a script stops as after any Ctrl-C.  The handlers
 * are one-shot: a second signal kills at once (what was begun is then a
 * leftover that the next run of the command removes).  A signal that was
 * ignored when vmdkit started (nohup, a background job) stays ignored.
 * A signal that comes after the last progress report (while the finished
 * output is flushed and named) lets the command complete; it still ends by
 * the signal.  Commands that do not call it keep the default: a signal
 * ends them at once.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

static atomic_int caught_signal; /* 0, or the first signal caught */

static void on_signal(int sig)
{
    int none = 0;
    atomic_compare_exchange_strong(&caught_signal, &none, sig);
}

void cli_cancel_on_signals(void)
{
    static const int signals[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction old;
        if (sigaction(signals[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN)
            continue;
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART | SA_RESETHAND;
        (void)sigaction(signals[i], &sa, NULL);
    }
}

bool cli_cancel_requested(void) { return atomic_load(&caught_signal) != 0; }

void cli_exit_if_interrupted(void)
{
    int sig = atomic_load(&caught_signal);
    if (!sig)
        return;
    fflush(stdout);
    fflush(stderr);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig); /* not reached unless the signal could not end the process */
}
