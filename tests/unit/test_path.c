/* test_path.c - path.c: relative paths between folders and files (the
 * parent hints vmdkit writes), suffix tests, absolute and normalised forms,
 * and the extent path policy. */
#include <limits.h>
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

#include "path.h"

/* vk_path_relative(FROM, TO) must give WANT, and WANT joined to FROM must
 * name TO again. */
static void expect_relative(const char *from, const char *to, const char *want)
{
    vk_err e = {0};
    char *r = vk_path_relative(from, to, &e);
    assert_non_null(r);
    if (strcmp(r, want) != 0)
        fail_msg("relative(%s, %s) = \"%s\", expected \"%s\"", from, to, r, want);
    char *joined = vk_path_join(from, r, &e);
    char *back = vk_path_absolute(joined, &e);
    char *target = vk_path_absolute(to, &e);
    assert_string_equal(back, target);
    free(target);
    free(back);
    free(joined);
    free(r);
}

static void test_relative_basic(void **state)
{
    (void)state;
    expect_relative("/vms/Clone.vmwarevm", "/vms/Base.vmwarevm/Base.vmdk", "../Base.vmwarevm/Base.vmdk");
    expect_relative("/vms/Base.vmwarevm", "/vms/Base.vmwarevm/Base.vmdk", "Base.vmdk");
    expect_relative("/a/b/c", "/a/x.vmdk", "../../x.vmdk");
    expect_relative("/a", "/a/b/c/d.vmdk", "b/c/d.vmdk");
    expect_relative("/a/b/c/d", "/x/y.vmdk", "../../../../x/y.vmdk");
}

static void test_relative_dotdot(void **state)
{
    (void)state;
    /* ".." and "." in either path are resolved first: never "a/../b" */
    expect_relative("/a/b/../c", "/a/b/x.vmdk", "../b/x.vmdk");
    expect_relative("/a/./b", "/a/b/./x.vmdk", "x.vmdk");
    expect_relative("/a/b", "/a/b/../../c/x.vmdk", "../../c/x.vmdk");
    expect_relative("/../a", "/a/x.vmdk", "x.vmdk"); /* ".." above the root stays at the root */
}

static void test_relative_root(void **state)
{
    (void)state;
    expect_relative("/", "/x.vmdk", "x.vmdk");
    expect_relative("/", "/a/b/x.vmdk", "a/b/x.vmdk");
    expect_relative("/a/b", "/x.vmdk", "../../x.vmdk");
    expect_relative("//", "//a//x.vmdk", "a/x.vmdk");
}

static void test_relative_trailing_slashes(void **state)
{
    (void)state;
    expect_relative("/a/b/", "/a/b/x.vmdk", "x.vmdk");
    expect_relative("/a/b///", "/a/c/x.vmdk", "../c/x.vmdk");
    expect_relative("/a/b", "/a/c/d/", "../c/d");
}

static void test_relative_equal_paths(void **state)
{
    (void)state;
    /* the folder itself: "." rather than an empty name */
    expect_relative("/a/b", "/a/b", ".");
    expect_relative("/a/b/", "/a/b", ".");
    expect_relative("/", "/", ".");
}

static void test_relative_prefix_is_not_a_folder(void **state)
{
    (void)state;
    /* /a/b is a prefix of /a/bc as a string, not as a folder */
    expect_relative("/a/b", "/a/bc/x.vmdk", "../bc/x.vmdk");
    expect_relative("/a/bc", "/a/b/x.vmdk", "../b/x.vmdk");
    expect_relative("/a/b", "/a/b.vmdk", "../b.vmdk");
    expect_relative("/a/b", "/a/bx", "../bx");
}

static void test_relative_from_current_folder(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char to[PATH_MAX + 16];
    snprintf(to, sizeof to, "%s/sub/x.vmdk", cwd);
    expect_relative(".", to, "sub/x.vmdk");
    expect_relative("sub", "sub/x.vmdk", "x.vmdk");
    expect_relative("sub/deeper", "x.vmdk", "../../x.vmdk");
}

static void test_has_suffix(void **state)
{
    (void)state;
    assert_true(vk_path_has_suffix("Base.vmdk", ".vmdk"));
    assert_true(vk_path_has_suffix("dir/Base.VMDK", ".vmdk"));
    assert_true(vk_path_has_suffix("/vms/Win.vmwarevm/Win.Vmx", ".vmx"));
    assert_true(vk_path_has_suffix("a.vmdk/b.vmdk", ".vmdk"));
    assert_false(vk_path_has_suffix("Base.vmdk.bak", ".vmdk"));
    assert_false(vk_path_has_suffix("Basevmdk", ".vmdk"));
    assert_false(vk_path_has_suffix(".vmdk", ".vmdk")); /* no name before the suffix */
    assert_false(vk_path_has_suffix("dir/.vmdk", ".vmdk"));
    assert_false(vk_path_has_suffix("x.vmdk/", ".vmdk")); /* a folder's path, last component empty */
    assert_false(vk_path_has_suffix("x.vmdk/y", ".vmdk"));
    assert_false(vk_path_has_suffix("", ".vmdk"));
    assert_false(vk_path_has_suffix("vmdk", ".vmdk"));
}

static void test_absolute(void **state)
{
    (void)state;
    vk_err e = {0};
    struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},        {"//", "/"},       {"/a/./b//c/", "/a/b/c"}, {"/a/b/../../..", "/"},
        {"/a/../b", "/b"}, {"/a/b/..", "/a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *r = vk_path_absolute(cases[i].in, &e);
        assert_non_null(r);
        if (strcmp(r, cases[i].want) != 0)
            fail_msg("absolute(%s) = %s, expected %s", cases[i].in, r, cases[i].want);
        free(r);
    }
}

static void test_inside(void **state)
{
    (void)state;
    assert_true(vk_path_inside("/a/b/c", "/a/b"));
    assert_false(vk_path_inside("/a/bc", "/a/b"));
    assert_false(vk_path_inside("/a/b", "/a/b"));
    assert_true(vk_path_inside("/a", "/"));
    assert_false(vk_path_inside("/", "/"));
}

static void test_resolve_extent_policy(void **state)
{
    (void)state;
    vk_err e = {0};
    char *p = vk_path_resolve_extent("/vms/d.vmdk", "d-flat.vmdk", false, &e);
    assert_non_null(p);
    assert_string_equal(p, "/vms/d-flat.vmdk");
    free(p);
    const char *outside[] = {"../d-flat.vmdk", "/etc/passwd", "a/../../x", "a/..", ".."};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++) {
        e.code = 0;
        assert_null(vk_path_resolve_extent("/vms/d.vmdk", outside[i], false, &e));
        assert_int_equal(e.code, VMDKIT_EPATH);
        p = vk_path_resolve_extent("/vms/d.vmdk", outside[i], true, &e);
        assert_non_null(p);
        free(p);
    }
}

static void test_with_suffix(void **state)
{
    (void)state;
    vk_err e = {0};
    char *r = vk_path_with_suffix("dir.x/name.vmdk", "-s001", &e);
    assert_string_equal(r, "dir.x/name-s001.vmdk");
    free(r);
    r = vk_path_with_suffix("dir.x/name", "-flat", &e);
    assert_string_equal(r, "dir.x/name-flat");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relative_basic),
        cmocka_unit_test(test_relative_dotdot),
        cmocka_unit_test(test_relative_root),
        cmocka_unit_test(test_relative_trailing_slashes),
        cmocka_unit_test(test_relative_equal_paths),
        cmocka_unit_test(test_relative_prefix_is_not_a_folder),
        cmocka_unit_test(test_relative_from_current_folder),
        cmocka_unit_test(test_has_suffix),
        cmocka_unit_test(test_absolute),
        cmocka_unit_test(test_inside),
        cmocka_unit_test(test_resolve_extent_policy),
        cmocka_unit_test(test_with_suffix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
