/* test_descriptor_layout.c - vk_descriptor_format_like: a rewritten
 * descriptor keeps the bytes of every line it does not change (comments,
 * unknown lines, order, spacing, quoting, CRLF), and says what the
 * descriptor says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor.h"

/* A Windows-written text, edited by hand: CRLF, comments in every section,
 * odd spacing, a bare value, a lowercase key, an unknown header key. */
static const char windows_text[] = "# Disk DescriptorFile\r\n"
                                   "# copied from the Windows host, do not edit\r\n"
                                   "version=1\r\n"
                                   "encoding=\"windows-1252\"\r\n"
                                   "CID=0000beef\r\n"
                                   "parentCID  =  1a2b3c4d\r\n"
                                   "isNativeSnapshot=\"no\"\r\n"
                                   "createType=\"twoGbMaxExtentSparse\"\r\n"
                                   "parentFileNameHint = \"..\\Base\\Base.vmdk\"   \r\n"
                                   "\r\n"
                                   "# Extent description\r\n"
                                   "RW 4192256 SPARSE \"Clone-s001.vmdk\"\r\n"
                                   "RW 2048 SPARSE \"Clone-s002.vmdk\"\r\n"
                                   "\r\n"
                                   "# The Disk Data Base \r\n"
                                   "#DDB\r\n"
                                   "\r\n"
                                   "ddb.adapterType = \"lsilogic\"\r\n"
                                   "# keep: the controller was changed by hand\r\n"
                                   "ddb.geometry.cylinders = \"261\"\r\n"
                                   "ddb.longContentID = \"0123456789abcdef012345670000beef\"\r\n"
                                   "ddb.uuid = \"60 00 C2 9a 55 3d 1a 4f-b2 10 6e 0b 61 3f 2a 77\"\r\n"
                                   "DDB.virtualHWVersion = \"19\"\r\n";

static void parse(const char *text, size_t len, vk_descriptor *d)
{
    vk_err e = {0};
    if (vk_descriptor_parse(text, len, "t.vmdk", d, &e) != 0)
        fail_msg("parse: %s", e.msg);
}

/* Rewrite D over OLD; the result must parse back to what D says. */
static char *rewrite(const vk_descriptor *d, const char *old, size_t old_len, size_t *len)
{
    vk_err e = {0};
    char *text = NULL;
    if (vk_descriptor_format_like(d, old, old_len, &text, len, &e) != 0)
        fail_msg("format_like: %s", e.msg);
    assert_int_equal(strlen(text), *len);
    return text;
}

/* S with the first occurrence of FROM replaced by TO. */
static char *replaced(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    assert_non_null(r);
    size_t k = (size_t)(at - s);
    memcpy(r, s, k);
    strcpy(r + k, to);
    strcat(r, at + strlen(from));
    return r;
}

static void test_unchanged_is_byte_identical(void **state)
{
    (void)state;
    vk_descriptor d;
    parse(windows_text, sizeof windows_text - 1, &d);
    size_t len;
    char *t = rewrite(&d, windows_text, sizeof windows_text - 1, &len);
    assert_string_equal(t, windows_text);
    free(t);
    vk_descriptor_free(&d);
}

static void test_new_cid_changes_two_lines(void **state)
{
    (void)state;
    vk_descriptor d;
    parse(windows_text, sizeof windows_text - 1, &d);
    vk_descriptor_set_cid(&d, 0x5a5a0001, NULL);
    size_t len;
    char *t = rewrite(&d, windows_text, sizeof windows_text - 1, &len);
    char *a = replaced(windows_text, "CID=0000beef\r\n", "CID=5a5a0001\r\n");
    char *want = replaced(a, "012345670000beef\"", "012345675a5a0001\"");
    assert_string_equal(t, want);
    free(a);
    free(want);
    free(t);
    vk_descriptor_free(&d);
}

static void test_new_parent_keeps_spacing(void **state)
{
    (void)state;
    vk_descriptor d;
    parse(windows_text, sizeof windows_text - 1, &d);
    free(d.parent_hint);
    d.parent_hint = strdup("../Other/Other.vmdk");
    d.parent_cid = 0x99990000;
    size_t len;
    char *t = rewrite(&d, windows_text, sizeof windows_text - 1, &len);
    char *a = replaced(windows_text, "parentCID  =  1a2b3c4d\r\n", "parentCID  =  99990000\r\n");
    char *want = replaced(a, "\"..\\Base\\Base.vmdk\"   \r\n", "\"../Other/Other.vmdk\"   \r\n");
    assert_string_equal(t, want);
    free(a);
    free(want);
    free(t);
    vk_descriptor_free(&d);
}

static void test_parent_removed_and_added(void **state)
{
    (void)state;
    vk_descriptor d;
    parse(windows_text, sizeof windows_text - 1, &d);
    free(d.parent_hint);
    d.parent_hint = NULL;
    d.parent_cid = VK_CID_NONE;
    size_t len;
    char *t = rewrite(&d, windows_text, sizeof windows_text - 1, &len);
    char *a = replaced(windows_text, "parentCID  =  1a2b3c4d\r\n", "parentCID  =  ffffffff\r\n");
    char *want = replaced(a, "parentFileNameHint = \"..\\Base\\Base.vmdk\"   \r\n", "");
    assert_string_equal(t, want);

    /* and back: the hint line comes after createType, with CRLF */
    vk_descriptor base;
    parse(t, len, &base);
    base.parent_hint = strdup("Base.vmdk");
    base.parent_cid = 0x1a2b3c4d;
    size_t len2;
    char *t2 = rewrite(&base, t, len, &len2);
    char *b = replaced(t, "parentCID  =  ffffffff\r\n", "parentCID  =  1a2b3c4d\r\n");
    char *want2 =
        replaced(b, "createType=\"twoGbMaxExtentSparse\"\r\n",
                 "createType=\"twoGbMaxExtentSparse\"\r\nparentFileNameHint=\"Base.vmdk\"\r\n");
    assert_string_equal(t2, want2);
    free(a);
    free(b);
    free(want);
    free(want2);
    free(t);
    free(t2);
    vk_descriptor_free(&d);
    vk_descriptor_free(&base);
}

static void test_renamed_extent_and_new_ddb_key(void **state)
{
    (void)state;
    vk_descriptor d;
    parse(windows_text, sizeof windows_text - 1, &d);
    free(d.extents[1].filename);
    d.extents[1].filename = strdup("Moved-s002.vmdk");
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.toolsInstallType", "4", NULL), 0);
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.adapterType", "buslogic", NULL), 0);
    size_t len;
    char *t = rewrite(&d, windows_text, sizeof windows_text - 1, &len);
    char *a = replaced(windows_text, "RW 2048 SPARSE \"Clone-s002.vmdk\"\r\n",
                       "RW 2048 SPARSE \"Moved-s002.vmdk\"\r\n");
    char *b = replaced(a, "\"lsilogic\"", "\"buslogic\"");
    char *want = replaced(b, "DDB.virtualHWVersion = \"19\"\r\n",
                          "DDB.virtualHWVersion = \"19\"\r\nddb.toolsInstallType = \"4\"\r\n");
    assert_string_equal(t, want);
    free(a);
    free(b);
    free(want);
    free(t);
    vk_descriptor_free(&d);
}

static void test_lf_text_without_last_line_end(void **state)
{
    (void)state;
    static const char text[] = "# Disk DescriptorFile\nversion=1\nCID=00000001\nparentCID=ffffffff\n"
                               "createType=\"monolithicFlat\"\n# extents\nRW 64 FLAT \"f.img\" 0\n"
                               "ddb.adapterType = ide";
    vk_descriptor d;
    parse(text, sizeof text - 1, &d);
    vk_descriptor_set_cid(&d, 2, NULL);
    assert_int_equal(vk_descriptor_ddb_set(&d, "ddb.uuid", "60 00", NULL), 0);
    size_t len;
    char *t = rewrite(&d, text, sizeof text - 1, &len);
    assert_string_equal(t, "# Disk DescriptorFile\nversion=1\nCID=00000002\nparentCID=ffffffff\n"
                           "createType=\"monolithicFlat\"\n# extents\nRW 64 FLAT \"f.img\" 0\n"
                           "ddb.adapterType = ide\nddb.uuid = \"60 00\"\n");
    free(t);
    vk_descriptor_free(&d);
}

static void test_embedded_area_and_repeated_key(void **state)
{
    (void)state;
    /* an embedded area is NUL-padded; a repeated key: the last one counts,
     * so a new value goes into every copy */
    char area[1024] =
        "# Disk DescriptorFile\nversion=1\nCID=00000001\nCID=00000007\nparentCID=ffffffff\n"
        "createType=\"monolithicSparse\"\nRW 64 SPARSE \"s.vmdk\"\n";
    vk_descriptor d;
    parse(area, sizeof area, &d);
    assert_int_equal(d.cid, 7);
    vk_descriptor_set_cid(&d, 9, NULL);
    size_t len;
    char *t = rewrite(&d, area, sizeof area, &len);
    assert_string_equal(
        t, "# Disk DescriptorFile\nversion=1\nCID=00000009\nCID=00000009\nparentCID=ffffffff\n"
           "createType=\"monolithicSparse\"\nRW 64 SPARSE \"s.vmdk\"\n");
    free(t);
    vk_descriptor_free(&d);
}

static void test_canonical_without_a_usable_text(void **state)
{
    (void)state;
    vk_descriptor d;
    parse(windows_text, sizeof windows_text - 1, &d);
    char *canon = NULL, *t;
    size_t clen, len;
    assert_int_equal(vk_descriptor_format(&d, &canon, &clen, NULL), 0);
    t = rewrite(&d, NULL, 0, &len);
    assert_string_equal(t, canon);
    free(t);
    t = rewrite(&d, "not a descriptor", 16, &len);
    assert_string_equal(t, canon);
    free(t);
    free(canon);
    vk_descriptor_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_is_byte_identical),
        cmocka_unit_test(test_new_cid_changes_two_lines),
        cmocka_unit_test(test_new_parent_keeps_spacing),
        cmocka_unit_test(test_parent_removed_and_added),
        cmocka_unit_test(test_renamed_extent_and_new_ddb_key),
        cmocka_unit_test(test_lf_text_without_last_line_end),
        cmocka_unit_test(test_embedded_area_and_repeated_key),
        cmocka_unit_test(test_canonical_without_a_usable_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
