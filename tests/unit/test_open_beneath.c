/* test_open_beneath.c - open_beneath.c: names opened beneath a folder
 * descriptor, by openat2 and by the component walk used without it, refuse
 * every symbolic link and every way out; vk_path_normalise_relative. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "open_beneath.h"
#include "path.h"

static char root[64];
static int root_fd = -1;

static void write_file(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/vmdkit-beneath-XXXXXX");
    if (!mkdtemp(root))
        return -1;
    char p[256];
    snprintf(p, sizeof p, "%s/in", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/in/sub", root);
    mkdir(p, 0755);
    write_file("outside.txt", "outside");
    write_file("in/a.txt", "inside");
    write_file("in/sub/b.txt", "deeper");
    snprintf(p, sizeof p, "%s/in/link.txt", root);
    if (symlink("a.txt", p) != 0) /* a link that stays inside is refused too */
        return -1;
    snprintf(p, sizeof p, "%s/in/out.txt", root);
    if (symlink("../outside.txt", p) != 0)
        return -1;
    snprintf(p, sizeof p, "%s/in/subl", root);
    if (symlink("sub", p) != 0)
        return -1;
    snprintf(p, sizeof p, "%s/in", root);
    root_fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return root_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    close(root_fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

typedef int (*open_fn)(int, const char *, int);

static void expect_content(open_fn fn, const char *rel, const char *want)
{
    int fd = fn(root_fd, rel, O_RDONLY);
    if (fd < 0)
        fail_msg("%s: %s", rel, strerror(errno));
    char buf[32] = {0};
    assert_true(read(fd, buf, sizeof buf - 1) > 0);
    assert_string_equal(buf, want);
    /* the descriptor is blocking for the I/O that follows */
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, fn == vk_open_beneath ? 0 : O_NONBLOCK);
    close(fd);
}

static void expect_refused(open_fn fn, const char *rel, int want_errno)
{
    errno = 0;
    int fd = fn(root_fd, rel, O_RDONLY);
    if (fd >= 0) {
        close(fd);
        fail_msg("%s: opened, expected errno %d", rel, want_errno);
    }
    if (errno != want_errno)
        fail_msg("%s: errno %d (%s), expected %d", rel, errno, strerror(errno), want_errno);
}

static void check_rules(open_fn fn)
{
    expect_content(fn, "a.txt", "inside");
    expect_content(fn, "sub/b.txt", "deeper");
    expect_refused(fn, "link.txt", ELOOP);
    expect_refused(fn, "out.txt", ELOOP);
    expect_refused(fn, "subl/b.txt", ELOOP);
    expect_refused(fn, "missing.txt", ENOENT);
    expect_refused(fn, "a.txt/x", ENOTDIR);
}

static void test_openat2(void **state)
{
    (void)state;
    check_rules(vk_open_beneath);
    expect_refused(vk_open_beneath, "../outside.txt", EXDEV);
}

static void test_walk(void **state)
{
    (void)state;
    check_rules(vk_open_beneath_walk);
    /* the walk takes normalised names only: ".." never passes */
    expect_refused(vk_open_beneath_walk, "../outside.txt", EXDEV);
    expect_refused(vk_open_beneath_walk, "sub/../a.txt", EXDEV);
    expect_refused(vk_open_beneath_walk, "/etc/passwd", EXDEV);
}

static void test_dir_up(void **state)
{
    (void)state;
    int up = vk_open_dir_up(root_fd, 1);
    assert_true(up >= 0);
    int fd = vk_open_beneath(up, "outside.txt", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    close(up);
}

static void expect_normalised(const char *name, const char *want, unsigned want_ups)
{
    vk_err e = {0};
    unsigned ups = 99;
    char *r = vk_path_normalise_relative(name, &ups, &e);
    assert_non_null(r);
    if (strcmp(r, want) != 0 || ups != want_ups)
        fail_msg("normalise(%s) = \"%s\" up %u, expected \"%s\" up %u", name, r, ups, want, want_ups);
    free(r);
}

static void test_normalise(void **state)
{
    (void)state;
    expect_normalised("../Base.vmwarevm/Base.vmdk", "Base.vmwarevm/Base.vmdk", 1);
    expect_normalised("a.vmdk", "a.vmdk", 0);
    expect_normalised("./a//b/./c.vmdk", "a/b/c.vmdk", 0);
    expect_normalised("a/../../b.vmdk", "b.vmdk", 1);
    expect_normalised("../../x/y/../z.vmdk", "x/z.vmdk", 2);
    expect_normalised("a/..", "", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openat2),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_dir_up),
        cmocka_unit_test(test_normalise),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
