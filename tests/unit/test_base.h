/* test_base.h - a unit test's temporary folder BASE, which the test's
 * setup makes with base_make("NAME"): $TMPDIR/vmdkit-NAME-XXXXXX (/tmp
 * without TMPDIR); and paths inside it: at("a/b") is "BASE/a/b", in one of
 * eight buffers used in turn, so that a call may take several at() results. */
#ifndef TEST_BASE_H
#define TEST_BASE_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static char base[256];

static inline int base_make(const char *name)
{
    snprintf(base, sizeof base, "%s/vmdkit-%s-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             name);
    return mkdtemp(base) ? 0 : -1;
}

static char *at(const char *rel)
{
    static char buf[8][PATH_MAX];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", base, rel);
    return buf[i];
}

#endif
