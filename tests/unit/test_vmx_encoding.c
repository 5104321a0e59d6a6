/* test_vmx_encoding.c - .vmx values in the file's ".encoding": windows-1252
 * and Shift_JIS (read as code page 932) decoded to UTF-8 and encoded back,
 * characters an encoding cannot hold refused, unknown encodings, invalid
 * bytes, changing .encoding; and the editor's insert-after and rename. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vm/vmx.h"

static vk_vmx *parse_ok(const char *text, size_t len)
{
    vk_vmx *v = NULL;
    vk_err e = {0};
    if (vk_vmx_parse("t.vmx", text, len, &v, &e) != 0)
        fail_msg("parse failed: %s", e.msg);
    return v;
}

static void expect_bytes(const vk_vmx *v, const char *want, size_t len)
{
    char *got;
    size_t n;
    vk_err e = {0};
    assert_int_equal(vk_vmx_serialize(v, &got, &n, &e), 0);
    if (n != len || memcmp(got, want, len) != 0)
        fail_msg("serialized text differs:\n--- got (%zu bytes)\n%.*s\n--- want (%zu bytes)\n%.*s", n,
                 (int)n, got, len, (int)len, want);
    free(got);
}

#define PARSE_LIT(lit) parse_ok(lit, sizeof(lit) - 1)
#define EXPECT_LIT(v, lit) expect_bytes(v, lit, sizeof(lit) - 1)

/* ---- windows-1252 ---- */

static const char cp1252[] = ".encoding = \"windows-1252\"\r\n"
                             "displayName = \"Caf\xe9 cr\xe8me\"\r\n"
                             "annotation = \"price |22\x80 5|22\"\r\n";

static void test_cp1252_get(void **state)
{
    (void)state;
    vk_vmx *v = PARSE_LIT(cp1252);
    assert_string_equal(vk_vmx_encoding(v), "windows-1252");
    assert_string_equal(vk_vmx_get(v, "displayName"), "Caf\xc3\xa9 cr\xc3\xa8me");
    /* 0x80 is the euro sign in windows-1252 (not U+0080 as in Latin-1) */
    assert_string_equal(vk_vmx_get(v, "annotation"), "price \"\xe2\x82\xac 5\"");
    EXPECT_LIT(v, cp1252);
    vk_vmx_free(v);
}

static void test_cp1252_set(void **state)
{
    (void)state;
    vk_vmx *v = PARSE_LIT(cp1252);
    vk_err e = {0};
    assert_int_equal(vk_vmx_set(v, "displayName",
                                "Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                                "e",
                                &e),
                     0);
    assert_int_equal(vk_vmx_set(v, "guestinfo.owner", "Jos\xc3\xa9", &e), 0);
    EXPECT_LIT(v, ".encoding = \"windows-1252\"\r\n"
                  "displayName = \"Cr\xe8me br\xfbl\xe9"
                  "e\"\r\n"
                  "annotation = \"price |22\x80 5|22\"\r\n"
                  "guestinfo.owner = \"Jos\xe9\"\r\n");
    assert_string_equal(vk_vmx_get(v, "guestinfo.owner"), "Jos\xc3\xa9");
    vk_vmx_free(v);
}

static void test_cp1252_refuses_what_it_cannot_hold(void **state)
{
    (void)state;
    vk_vmx *v = PARSE_LIT(cp1252);
    vk_err e = {0};
    /* 日本 */
    assert_int_equal(vk_vmx_set(v, "displayName", "\xe6\x97\xa5\xe6\x9c\xac", &e), VMDKIT_EINVAL);
    assert_string_equal(e.msg, "t.vmx: displayName: the character U+65E5 cannot be written in the "
                               "file's encoding windows-1252");
    assert_int_equal(vk_vmx_encodable(v, "displayName", "\xe6\x97\xa5", &e), VMDKIT_EINVAL);
    assert_int_equal(vk_vmx_encodable(v, "displayName", "Caf\xc3\xa9", &e), 0);
    /* a new key that cannot be stored is not added */
    assert_int_equal(vk_vmx_set(v, "new.key", "\xe6\x97\xa5", &e), VMDKIT_EINVAL);
    assert_null(vk_vmx_get(v, "new.key"));
    /* nor is invalid UTF-8 */
    assert_int_equal(vk_vmx_set(v, "displayName", "bad \xff byte", &e), VMDKIT_EINVAL);
    assert_non_null(strstr(e.msg, "not valid UTF-8"));
    EXPECT_LIT(v, cp1252);
    vk_vmx_free(v);
}

static void test_cp1252_invalid_byte(void **state)
{
    (void)state;
    /* 0x81 has no character in windows-1252 */
    static const char bad[] = ".encoding = \"windows-1252\"\na = \"1\"\nb = \"x\x81y\"\n";
    vk_vmx *v = NULL;
    vk_err e = {0};
    assert_int_equal(vk_vmx_parse("t.vmx", bad, sizeof bad - 1, &v, &e), VMDKIT_EFORMAT);
    assert_null(v);
    assert_string_equal(e.msg, "t.vmx: line 3: b: not valid windows-1252 text (byte 0x81 at offset 1)");
}

/* ---- Shift_JIS (code page 932) ---- */

/* "I:\Media\日本語" and "－41" (0x81 0x7C, U+FF0D in code page 932: its
 * trail byte is '|') */
static const char sjis[] = ".encoding = \"Shift_JIS\"\r\n"
                           "sata0:1.fileName = \"I:\\Media\\\x93\xfa\x96\x7b\x8c\xea.iso\"\r\n"
                           "annotation = \"\x81\x7c"
                           "41\"\r\n";

static void test_sjis_get(void **state)
{
    (void)state;
    vk_vmx *v = PARSE_LIT(sjis);
    /* the backslashes stay backslashes (strict SHIFT_JIS would give yen signs) */
    assert_string_equal(vk_vmx_get(v, "sata0:1.fileName"),
                        "I:\\Media\\\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e.iso");
    /* converted before the |XX escapes are undone: |41 here is no escape */
    assert_string_equal(vk_vmx_get(v, "annotation"), "\xef\xbc\x8d"
                                                     "41");
    EXPECT_LIT(v, sjis);
    vk_vmx_free(v);
}

static void test_sjis_set(void **state)
{
    (void)state;
    vk_vmx *v = PARSE_LIT(sjis);
    vk_err e = {0};
    /* ソフト: 0x83 0x5C (a '\' trail byte) 0x83 0x74 0x83 0x67 */
    assert_int_equal(vk_vmx_set(v, "displayName", "\xe3\x82\xbd\xe3\x83\x95\xe3\x83\x88 |1|", &e), 0);
    EXPECT_LIT(v, ".encoding = \"Shift_JIS\"\r\n"
                  "sata0:1.fileName = \"I:\\Media\\\x93\xfa\x96\x7b\x8c\xea.iso\"\r\n"
                  "annotation = \"\x81\x7c"
                  "41\"\r\n"
                  "displayName = \"\x83\x5c\x83\x74\x83\x67 |7C1|7C\"\r\n");
    /* read back after a fresh parse of the bytes written */
    char *text;
    size_t n;
    assert_int_equal(vk_vmx_serialize(v, &text, &n, &e), 0);
    vk_vmx *w = parse_ok(text, n);
    assert_string_equal(vk_vmx_get(w, "displayName"), "\xe3\x82\xbd\xe3\x83\x95\xe3\x83\x88 |1|");
    vk_vmx_free(w);
    free(text);
    /* Korean has no place in code page 932 */
    assert_int_equal(vk_vmx_set(v, "displayName", "\xed\x95\x9c", &e), VMDKIT_EINVAL);
    assert_non_null(strstr(e.msg, "U+D55C cannot be written in the file's encoding Shift_JIS"));
    vk_vmx_free(v);
}

static void test_windows_949_2000(void **state)
{
    (void)state;
    /* 한국 in code page 949 */
    static const char text[] = ".encoding = \"windows-949-2000\"\ndisplayName = \"\xc7\xd1\xb1\xb9\"\n";
    vk_vmx *v = PARSE_LIT(text);
    assert_string_equal(vk_vmx_get(v, "displayName"), "\xed\x95\x9c\xea\xb5\xad");
    vk_vmx_free(v);
}

/* ---- unknown encodings, changing .encoding ---- */

static void test_unknown_encoding(void **state)
{
    (void)state;
    static const char ascii[] = ".encoding = \"x-no-such\"\na = \"plain\"\n";
    vk_vmx *v = PARSE_LIT(ascii);
    vk_err e = {0};
    assert_string_equal(vk_vmx_get(v, "a"), "plain");
    assert_int_equal(vk_vmx_set(v, "a", "still ascii", &e), 0);
    assert_int_equal(vk_vmx_set(v, "a", "caf\xc3\xa9", &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "t.vmx: a: the file's encoding \"x-no-such\" is unknown"));
    vk_vmx_free(v);

    static const char high[] = ".encoding = \"x-no-such\"\na = \"caf\xe9\"\n";
    v = NULL;
    assert_int_equal(vk_vmx_parse("t.vmx", high, sizeof high - 1, &v, &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "t.vmx: line 2: a: non-ASCII text"));
    /* a "//IGNORE" suffix is no way to make iconv drop characters */
    static const char ignore[] = ".encoding = \"windows-1252//IGNORE\"\na = \"caf\xe9\"\n";
    assert_int_equal(vk_vmx_parse("t.vmx", ignore, sizeof ignore - 1, &v, &e), VMDKIT_EUNSUPPORTED);
}

static void test_change_encoding(void **state)
{
    (void)state;
    vk_vmx *v = PARSE_LIT(cp1252);
    vk_err e = {0};
    assert_int_equal(vk_vmx_set(v, ".encoding", "UTF-8", &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "would change the meaning of line 2"));
    assert_int_equal(vk_vmx_unset(v, ".encoding", &e), VMDKIT_EUNSUPPORTED);
    /* the same encoding in another spelling is no change */
    assert_int_equal(vk_vmx_set(v, ".ENCODING", "WINDOWS-1252", &e), 0);
    assert_string_equal(vk_vmx_get(v, "displayName"), "Caf\xc3\xa9 cr\xc3\xa8me");
    vk_vmx_free(v);

    /* a second .encoding line counts like any other: its bytes stay */
    static const char two[] = ".encoding = \"\xaa\xab\"\n.encoding = \n";
    v = PARSE_LIT(two);
    assert_int_equal(vk_vmx_set(v, ".encoding", "x-other", &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "line 1"));
    EXPECT_LIT(v, ".encoding = \"\xaa\xab\"\n.encoding = \n");
    vk_vmx_free(v);
    /* the name is read with its |XX escapes undone, as it was set */
    static const char escaped[] = ".encoding = \"windows|2D1252\"\na = \"\xe9\"\n";
    v = PARSE_LIT(escaped);
    assert_string_equal(vk_vmx_get(v, "a"), "\xc3\xa9");
    vk_vmx_free(v);

    static const char ascii[] = ".encoding = \"windows-1252\"\na = \"x\"\n";
    v = PARSE_LIT(ascii);
    assert_int_equal(vk_vmx_set(v, ".encoding", "UTF-8", &e), 0);
    assert_int_equal(vk_vmx_set(v, "a", "\xe6\x97\xa5", &e), 0); /* UTF-8 now */
    EXPECT_LIT(v, ".encoding = \"UTF-8\"\na = \"\xe6\x97\xa5\"\n");
    vk_vmx_free(v);
}

/* ---- insert after a key, rekey ---- */

/* snapshot0.* goes, snapshot1.* becomes snapshot0.* (in any case) */
static int shift_down(void *opaque, const char *key, char **new_key, vk_err *e)
{
    (void)opaque;
    (void)e;
    if (strncasecmp(key, "snapshot0.", 10) == 0)
        return VK_VMX_DROP;
    if (strncasecmp(key, "snapshot1.", 10) == 0) {
        *new_key = strdup(key);
        (*new_key)[8] = '0';
        return VK_VMX_RENAME;
    }
    return VK_VMX_KEEP;
}

static int bad_rename(void *opaque, const char *key, char **new_key, vk_err *e)
{
    (void)opaque;
    (void)e;
    if (strcmp(key, "z") == 0)
        return VK_VMX_DROP;
    *new_key = strdup("a key");
    return strcmp(key, "snapshot0.uid") == 0 ? VK_VMX_RENAME : VK_VMX_KEEP;
}

static int drop_z(void *opaque, const char *key, char **new_key, vk_err *e)
{
    (void)opaque;
    (void)e;
    (void)new_key;
    return strcmp(key, "z") == 0 ? VK_VMX_DROP : VK_VMX_KEEP;
}

static void test_set_after_and_rekey(void **state)
{
    (void)state;
    static const char text[] = "a = \"1\"\r\nsnapshot0.uid = \"1\"\r\nsnapshot0.displayName = \"x\"\r\n"
                               "snapshot.numSnapshots = \"1\"";
    vk_vmx *v = PARSE_LIT(text);
    vk_err e = {0};
    assert_int_equal(vk_vmx_set_after(v, "snapshot1.uid", "2", "snapshot0.displayName", &e), 0);
    assert_int_equal(vk_vmx_set_after(v, "snapshot1.displayName", "y", "snapshot1.uid", &e), 0);
    /* absent AFTER: at the end, and the missing final line ending stays missing */
    assert_int_equal(vk_vmx_set_after(v, "z", "9", "no.such.key", &e), 0);
    /* present key: replaced in place */
    assert_int_equal(vk_vmx_set_after(v, "a", "2", "z", &e), 0);
    EXPECT_LIT(v, "a = \"2\"\r\nsnapshot0.uid = \"1\"\r\nsnapshot0.displayName = \"x\"\r\n"
                  "snapshot1.uid = \"2\"\r\nsnapshot1.displayName = \"y\"\r\n"
                  "snapshot.numSnapshots = \"1\"\r\nz = \"9\"");

    /* one pass: the snapshot0 lines go, snapshot1 becomes snapshot0 */
    assert_int_equal(vk_vmx_rekey(v, shift_down, NULL, &e), 0);
    assert_string_equal(vk_vmx_get(v, "snapshot0.uid"), "2");
    assert_null(vk_vmx_get(v, "snapshot1.uid"));
    EXPECT_LIT(v, "a = \"2\"\r\nsnapshot0.uid = \"2\"\r\nsnapshot0.displayName = \"y\"\r\n"
                  "snapshot.numSnapshots = \"1\"\r\nz = \"9\"");
    /* a key that could not be read back: nothing changes */
    assert_int_equal(vk_vmx_rekey(v, bad_rename, NULL, &e), VMDKIT_EINVAL);
    EXPECT_LIT(v, "a = \"2\"\r\nsnapshot0.uid = \"2\"\r\nsnapshot0.displayName = \"y\"\r\n"
                  "snapshot.numSnapshots = \"1\"\r\nz = \"9\"");
    /* dropping the last line keeps the file without a final line ending */
    assert_int_equal(vk_vmx_rekey(v, drop_z, NULL, &e), 0);
    EXPECT_LIT(v, "a = \"2\"\r\nsnapshot0.uid = \"2\"\r\nsnapshot0.displayName = \"y\"\r\n"
                  "snapshot.numSnapshots = \"1\"");
    vk_vmx_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cp1252_get),
        cmocka_unit_test(test_cp1252_set),
        cmocka_unit_test(test_cp1252_refuses_what_it_cannot_hold),
        cmocka_unit_test(test_cp1252_invalid_byte),
        cmocka_unit_test(test_sjis_get),
        cmocka_unit_test(test_sjis_set),
        cmocka_unit_test(test_windows_949_2000),
        cmocka_unit_test(test_unknown_encoding),
        cmocka_unit_test(test_change_encoding),
        cmocka_unit_test(test_set_after_and_rekey),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
