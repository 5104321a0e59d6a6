/* test_dir.h - the temporary folder of a unit test program, for cmocka's
 * group fixtures: setup makes DIR, teardown removes it with all it holds.
 * Define TEST_DIR_NAME (a string) before including it. */
#ifndef TEST_DIR_H
#define TEST_DIR_H

#include <stdio.h>
#include <stdlib.h>

static char dir[] = "/tmp/vmdkit-test-" TEST_DIR_NAME ".XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
