/* test_err.c - err.c: messages longer than the buffer keep their start
 * (the file), the field and the reason at the end; the middle of long
 * paths is replaced by U+2026 at '/' boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vk.h"

#define ELLIPSIS "\xe2\x80\xa6"

static bool ends_with(const char *s, const char *end)
{
    size_t n = strlen(s), k = strlen(end);
    return n >= k && memcmp(s + n - k, end, k) == 0;
}

static bool starts_with(const char *s, const char *start)
{
    return strncmp(s, start, strlen(start)) == 0;
}

/* "d/d/…/d/NAME": COUNT components "d" and a last one. */
static char *deep_path(unsigned count, const char *name)
{
    char *p = malloc(2 * count + strlen(name) + 1);
    assert_non_null(p);
    for (unsigned i = 0; i < count; i++)
        memcpy(p + 2 * i, "d/", 2);
    strcpy(p + 2 * count, name);
    return p;
}

/* No byte of S starts in the middle of a UTF-8 sequence it breaks. */
static void assert_utf8(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int k = *p < 0x80             ? 1
                : (*p & 0xe0) == 0xc0 ? 2
                : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4
                                      : 0;
        assert_true(k > 0);
        for (int i = 1; i < k; i++)
            assert_true((p[i] & 0xc0) == 0x80);
        p += k;
    }
}

static void test_elide_short_is_unchanged(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(vk_elide_middle(out, sizeof out, "a/b.vmdk", 8, 20), 8);
    assert_string_equal(out, "a/b.vmdk");
}

static void test_elide_path_at_separators(void **state)
{
    (void)state;
    const char *p = "/home/user/Virtual Machines/Windows 11/Windows 11-000001.vmdk";
    char out[128];
    size_t n = vk_elide_middle(out, sizeof out, p, strlen(p), 40);
    assert_true(n <= 40);
    assert_int_equal(n, strlen(out));
    /* the start ends with a separator, the end is whole components */
    assert_string_equal(out, "/home/user/" ELLIPSIS "/Windows 11-000001.vmdk");

    char *deep = deep_path(600, "x.vmdk");
    n = vk_elide_middle(out, sizeof out, deep, strlen(deep), 60);
    assert_true(n <= 60);
    assert_true(starts_with(out, "d/d/"));
    assert_true(ends_with(out, "/d/x.vmdk"));
    assert_non_null(strstr(out, "/" ELLIPSIS "/"));
    free(deep);
}

static void test_elide_without_separators(void **state)
{
    (void)state;
    char word[200];
    memset(word, 'a', sizeof word);
    word[199] = 'z';
    char out[64];
    size_t n = vk_elide_middle(out, sizeof out, word, sizeof word, 30);
    assert_int_equal(n, 30);
    assert_true(starts_with(out, "aaaaaaaa"));
    assert_true(ends_with(out, "az"));
    assert_non_null(strstr(out, ELLIPSIS));
    /* the output buffer bounds MAX */
    n = vk_elide_middle(out, 20, word, sizeof word, 100);
    assert_true(n <= 19);
    assert_true(ends_with(out, "az"));
}

static void test_elide_keeps_utf8_whole(void **state)
{
    (void)state;
    /* 3-byte characters and no separator: cuts must fall between them */
    char word[301] = "";
    for (int i = 0; i < 100; i++)
        strcat(word, "\xe4\xbb\xae"); /* 仮 */
    char out[64];
    for (size_t max = 10; max < 40; max++) {
        size_t n = vk_elide_middle(out, sizeof out, word, strlen(word), max);
        assert_true(n <= max);
        assert_utf8(out);
    }
}

/* The review's case: a 1.2 KB parent hint used to cut the message inside
 * the path, so "not found" and the resolved path were lost. */
static void test_fail_keeps_field_and_reason(void **state)
{
    (void)state;
    char *hint = deep_path(600, "x.vmdk");
    char *resolved = deep_path(610, "x.vmdk");
    vk_err e = {0};
    assert_int_equal(vk_fail(&e, VMDKIT_ENOENT, "%s: parentFileNameHint: parent \"%s\" not found (%s)",
                             "c.vmdk", hint, resolved),
                     VMDKIT_ENOENT);
    assert_int_equal(e.code, VMDKIT_ENOENT);
    assert_true(strlen(e.msg) < VMDKIT_ERRMSG_MAX);
    assert_true(strlen(e.msg) > VMDKIT_ERRMSG_MAX - 100); /* cut no more than needed */
    assert_true(starts_with(e.msg, "c.vmdk: parentFileNameHint: parent \"d/d/d/"));
    assert_true(ends_with(e.msg, "/d/x.vmdk)"));
    assert_non_null(strstr(e.msg, "/d/x.vmdk\" not found (d/d/d/"));
    /* both paths lost their middle, by about the same amount */
    const char *first = strstr(e.msg, ELLIPSIS);
    assert_non_null(first);
    assert_non_null(strstr(first + 3, ELLIPSIS));
    free(hint);
    free(resolved);
}

static void test_fail_errno_keeps_reason(void **state)
{
    (void)state;
    char *p = deep_path(1500, "x.vmdk");
    vk_err e = {0};
    assert_int_equal(vk_fail_errno(&e, 2 /* ENOENT */, "%s: open", p), VMDKIT_ENOENT);
    assert_true(strlen(e.msg) < VMDKIT_ERRMSG_MAX);
    assert_true(starts_with(e.msg, "d/d/"));
    assert_true(ends_with(e.msg, "/d/x.vmdk: open: No such file or directory"));
    free(p);
}

static void test_prefix_keeps_reason(void **state)
{
    (void)state;
    char *p = deep_path(450, "p.vmdk");
    vk_err e = {0};
    vk_fail(&e, VMDKIT_EFORMAT, "%s: grainSize: 4096 sectors is too large", p);
    assert_true(ends_with(e.msg, "/d/p.vmdk: grainSize: 4096 sectors is too large"));
    vk_err_prefix(&e, "%s: parent", "child.vmdk");
    assert_int_equal(e.code, VMDKIT_EFORMAT);
    assert_true(strlen(e.msg) < VMDKIT_ERRMSG_MAX);
    assert_true(starts_with(e.msg, "child.vmdk: parent: d/d/"));
    assert_true(ends_with(e.msg, "/d/p.vmdk: grainSize: 4096 sectors is too large"));
    /* a long prefix too */
    vk_err_prefix(&e, "%s: parent", p);
    assert_true(strlen(e.msg) < VMDKIT_ERRMSG_MAX);
    assert_true(ends_with(e.msg, "/d/p.vmdk: grainSize: 4096 sectors is too large"));
    free(p);
}

static void test_many_long_words(void **state)
{
    (void)state;
    /* more long words than can each keep 48 bytes: the message's middle goes */
    char text[4000] = "start:";
    for (int i = 0; i < 50; i++) {
        strcat(text, " ");
        size_t n = strlen(text);
        memset(text + n, 'a' + i % 26, 70);
        text[n + 70] = 0;
    }
    strcat(text, " :end");
    vk_err e = {0};
    vk_fail(&e, VMDKIT_EIO, "%s", text);
    assert_true(strlen(e.msg) < VMDKIT_ERRMSG_MAX);
    assert_true(starts_with(e.msg, "start: aaaa"));
    assert_true(ends_with(e.msg, " :end"));
}

static void test_short_message_is_one_line(void **state)
{
    (void)state;
    vk_err e = {0};
    vk_fail(&e, VMDKIT_EFORMAT, "%s: bad\nline\r", "a.vmdk");
    assert_string_equal(e.msg, "a.vmdk: bad line ");
    /* a NULL error only returns the code */
    assert_int_equal(vk_fail(NULL, VMDKIT_EIO, "x"), VMDKIT_EIO);
    assert_int_equal(vk_fail_errno(NULL, 2, "x"), VMDKIT_ENOENT);
}

/* An entry point's start: the caller's stale error is cleared and the
 * result zeroed; a missing argument is refused before the options are read
 * (its message, not theirs); then the options are read as vk_opts_read does
 * (here a longer struct with an unknown field set). */
static void test_entry_opts_order(void **state)
{
    (void)state;
    struct {
        vmdkit_check_opts known;
        uint64_t later;
    } longer = {.known = {.struct_size = sizeof longer}, .later = 1};
    vmdkit_error err = {.code = VMDKIT_EIO, .msg = "stale"};
    vk_err local, *e;
    uint64_t res = 42;
    vmdkit_check_opts o;
    assert_int_equal(vk_entry_opts(&e, &err, &local, &res, sizeof res, NULL, &o, sizeof o, NULL, "opts"),
                     0);
    assert_ptr_equal(e, &err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    assert_int_equal(res, 0);
    assert_int_equal(o.struct_size, sizeof o);
    assert_int_equal(vk_entry_opts(&e, &err, &local, NULL, 0, "f: x is required", &o, sizeof o,
                                   &longer.known, "opts"),
                     VMDKIT_EINVAL);
    assert_string_equal(err.msg, "f: x is required");
    assert_int_equal(vk_entry_opts(&e, NULL, &local, NULL, 0, NULL, &o, sizeof o, &longer.known, "opts"),
                     VMDKIT_EINVAL);
    assert_ptr_equal(e, &local);
    assert_non_null(strstr(local.msg, "opts: struct_size"));
    /* through the public entry points that require an argument */
    assert_int_equal(vmdkit_check("x.vmdk", &longer.known, NULL, &err), VMDKIT_EINVAL);
    assert_string_equal(err.msg, "check: no result structure given");
    assert_int_equal(vmdkit_ova_check(NULL, NULL, NULL, NULL, NULL, &err), VMDKIT_EINVAL);
    assert_string_equal(err.msg, "vmdkit_ova_check: in is required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elide_short_is_unchanged),
        cmocka_unit_test(test_elide_path_at_separators),
        cmocka_unit_test(test_elide_without_separators),
        cmocka_unit_test(test_elide_keeps_utf8_whole),
        cmocka_unit_test(test_fail_keeps_field_and_reason),
        cmocka_unit_test(test_fail_errno_keeps_reason),
        cmocka_unit_test(test_prefix_keeps_reason),
        cmocka_unit_test(test_many_long_words),
        cmocka_unit_test(test_short_message_is_one_line),
        cmocka_unit_test(test_entry_opts_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
