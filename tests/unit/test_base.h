/* test_base.h - paths inside a unit test's temporary folder BASE (which the
 * test's setup fills in): at("a/b") is "BASE/a/b", in one of eight buffers
 * used in turn, so that a call may take several at() results. */
#ifndef TEST_BASE_H
#define TEST_BASE_H

#include <limits.h>
#include <stdio.h>

static char base[256];

static char *at(const char *rel)
{
    static char buf[8][PATH_MAX];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", base, rel);
    return buf[i];
}

#endif
