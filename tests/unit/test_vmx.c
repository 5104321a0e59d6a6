/* test_vmx.c - .vmx files: byte-exact round trips (LF, CRLF, byte order
 * mark, no final newline), one-line edits, |XX escapes, the disk list,
 * malformed files and the size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/vmx.h"

/* A Workstation/Fusion configuration as VMware writes it, with a few
 * hand edits: comments, blank lines, odd spacing, a trailing comment. */
static const char vmx_lf[] = ".encoding = \"UTF-8\"\n"
                             "config.version = \"8\"\n"
                             "virtualHW.version = \"19\"\n"
                             "# edited by hand: more memory for the build\n"
                             "displayName = \"Ubuntu 22.04\"\n"
                             "guestOS = \"ubuntu-64\"\n"
                             "memsize = \"4096\"\n"
                             "numvcpus = \"2\"\n"
                             "\n"
                             "scsi0.present = \"TRUE\"\n"
                             "scsi0.virtualDev = \"lsilogic\"\n"
                             "scsi0:0.present = \"TRUE\"\n"
                             "scsi0:0.fileName = \"Base.vmdk\"\n"
                             "sata0.present = \"TRUE\"\n"
                             "sata0:1.present = \"TRUE\"\n"
                             "sata0:1.deviceType = \"cdrom-image\"\n"
                             "sata0:1.fileName = \"ubuntu.iso\"\n"
                             "nvme0.present = \"TRUE\"\n"
                             "nvme0:0.present = \"TRUE\"\n"
                             "nvme0:0.fileName = \"Data-000001.vmdk\"\n"
                             "ide1:0.present = \"FALSE\"\n"
                             "ide1:0.fileName = \"Old.vmdk\"\n"
                             "ethernet0.present = \"TRUE\"\n"
                             "ethernet0.connectionType = \"nat\"\n"
                             "ethernet0.virtualDev = \"e1000\"\n"
                             "ethernet0.addressType = \"generated\"\n"
                             "ethernet0.generatedAddress = \"00:0c:29:3b:8a:10\"\n"
                             "uuid.bios = \"56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc\"\n"
                             "annotation = \"Test VM for |22vmdkit|22 |7C pipes|0Asecond line\"\n"
                             "   # an indented comment\n"
                             "tools.syncTime   =   \"FALSE\"   # keep the guest clock\n"
                             "\t\n";

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/vmdkit-test-vmx.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char p[512];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
                unlink(p);
            }
        closedir(d);
    }
    return rmdir(tmpdir);
}

/* ---- helpers ---- */

static vk_vmx *parse_ok(const char *text, size_t len)
{
    vk_vmx *v = NULL;
    vk_err e = {0};
    int r = vk_vmx_parse("t.vmx", text, len, &v, &e);
    if (r != 0)
        fail_msg("parse failed (%d): %s", r, e.msg);
    return v;
}

/* V serialized must equal the LEN bytes of WANT exactly. */
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

/* The same for string literals (which may hold NUL bytes). */
#define PARSE_LIT(lit) parse_ok(lit, sizeof(lit) - 1)
#define EXPECT_LIT(v, lit) expect_bytes(v, lit, sizeof(lit) - 1)
#define BAD(lit, where, what) expect_bad(lit, sizeof(lit) - 1, where, what)

/* TEXT with its single occurrence of OLD replaced by NEW (caller frees). */
static char *replace_once(const char *text, const char *old, const char *new_text)
{
    const char *at = strstr(text, old);
    assert_non_null(at);
    assert_null(strstr(at + 1, old));
    size_t head = (size_t)(at - text), nold = strlen(old), nnew = strlen(new_text);
    char *out = malloc(strlen(text) - nold + nnew + 1);
    assert_non_null(out);
    memcpy(out, text, head);
    memcpy(out + head, new_text, nnew);
    strcpy(out + head + nnew, at + nold);
    return out;
}

/* TEXT with every "\n" turned into "\r\n" (caller frees). */
static char *to_crlf(const char *text)
{
    size_t n = strlen(text), lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    char *out = malloc(n + lines + 1), *o = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n')
            *o++ = '\r';
        *o++ = text[i];
    }
    *o = 0;
    return out;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_all(const char *path, size_t *len)
{
    char *data;
    vk_err e = {0};
    if (vk_read_file(path, 64u << 20, &data, len, &e) != 0)
        fail_msg("%s", e.msg);
    return data;
}

/* ---- round trips ---- */

static void roundtrip(const char *text, size_t len)
{
    vk_vmx *v = parse_ok(text, len);
    expect_bytes(v, text, len);
    vk_vmx_free(v);
}

static void test_roundtrip_variants(void **state)
{
    (void)state;
    roundtrip(vmx_lf, strlen(vmx_lf));

    char *crlf = to_crlf(vmx_lf);
    roundtrip(crlf, strlen(crlf));

    /* byte order mark + mixed endings + no final newline */
    static const char mixed[] = "\xef\xbb\xbf.encoding = \"UTF-8\"\r\n"
                                "a = \"1\"\n"
                                "b = bare\r\n"
                                "c = \"3\"";
    roundtrip(mixed, sizeof mixed - 1);
    roundtrip("", 0);
    roundtrip("\xef\xbb\xbf", sizeof("\xef\xbb\xbf") - 1);
    roundtrip("\n\n", sizeof("\n\n") - 1);
    roundtrip("# only a comment", sizeof("# only a comment") - 1);
    /* non-ASCII UTF-8 bytes pass through untouched */
    roundtrip("displayName = \"Téléchargé\"\n", strlen("displayName = \"Téléchargé\"\n"));
    free(crlf);
}

static void test_load_save_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/Ubuntu.vmx", tmpdir);
    char *crlf = to_crlf(vmx_lf);
    write_file(path, crlf, strlen(crlf));
    chmod(path, 0600);

    vk_vmx *v = NULL;
    vk_err e = {0};
    assert_int_equal(vk_vmx_load(path, &v, &e), 0);
    assert_string_equal(vk_vmx_path(v), path);
    assert_int_equal(vk_vmx_save(v, &e), 0);
    size_t len;
    char *back = read_all(path, &len);
    assert_int_equal(len, strlen(crlf));
    assert_memory_equal(back, crlf, len);
    free(back);

    /* an edit reaches the file; the mode is kept; no temporary file stays */
    assert_int_equal(vk_vmx_set(v, "memsize", "8192", &e), 0);
    assert_int_equal(vk_vmx_save(v, &e), 0);
    vk_vmx_free(v);
    char *want = replace_once(crlf, "memsize = \"4096\"", "memsize = \"8192\"");
    back = read_all(path, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(back, want, len);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            files++;
    closedir(d);
    assert_int_equal(files, 1);
    free(back);
    free(want);
    free(crlf);
    unlink(path);
}

/* ---- get ---- */

static void test_get(void **state)
{
    (void)state;
    vk_vmx *v = parse_ok(vmx_lf, strlen(vmx_lf));
    assert_string_equal(vk_vmx_get(v, ".encoding"), "UTF-8");
    assert_string_equal(vk_vmx_get(v, "displayName"), "Ubuntu 22.04");
    assert_string_equal(vk_vmx_get(v, "DISPLAYNAME"), "Ubuntu 22.04");
    assert_string_equal(vk_vmx_get(v, "Scsi0:0.FILENAME"), "Base.vmdk");
    assert_string_equal(vk_vmx_get(v, "uuid.bios"), "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc");
    assert_string_equal(vk_vmx_get(v, "tools.syncTime"), "FALSE");
    assert_string_equal(vk_vmx_get(v, "annotation"), "Test VM for \"vmdkit\" | pipes\nsecond line");
    assert_null(vk_vmx_get(v, "ethernet1.present"));
    assert_null(vk_vmx_get(v, "displayNam"));
    assert_null(vk_vmx_get(v, "# edited"));

    size_t pos = 0, n = 0;
    const char *k, *val;
    while (vk_vmx_next(v, &pos, &k, &val)) {
        if (n == 0) {
            assert_string_equal(k, ".encoding");
            assert_string_equal(val, "UTF-8");
        }
        n++;
    }
    assert_int_equal(n, 28); /* every line but 2 comments and 2 blank lines */
    vk_vmx_free(v);

    /* bare values, empty values, lowercase escapes, a lone '|', duplicates */
    static const char t[] = "a = bare\n"
                            "b =\n"
                            "c = # nothing\n"
                            "d = \"x|7cy|2z|\"\n"
                            "dup = \"first\"\n"
                            "DUP = \"second\"\n";
    v = parse_ok(t, sizeof t - 1);
    assert_string_equal(vk_vmx_get(v, "a"), "bare");
    assert_string_equal(vk_vmx_get(v, "b"), "");
    assert_string_equal(vk_vmx_get(v, "c"), "");
    assert_string_equal(vk_vmx_get(v, "d"), "x|y|2z|");
    assert_string_equal(vk_vmx_get(v, "dup"), "second");
    vk_vmx_free(v);
}

/* ---- set ---- */

/* set KEY VALUE on vmx_lf must change exactly OLD_LINE into NEW_LINE. */
static void expect_set_line(const char *key, const char *value, const char *old_line,
                            const char *new_line)
{
    vk_vmx *v = parse_ok(vmx_lf, strlen(vmx_lf));
    vk_err e = {0};
    assert_int_equal(vk_vmx_set(v, key, value, &e), 0);
    char *want = replace_once(vmx_lf, old_line, new_line);
    expect_bytes(v, want, strlen(want));
    assert_string_equal(vk_vmx_get(v, key), value);
    free(want);
    vk_vmx_free(v);
}

static void test_set_existing(void **state)
{
    (void)state;
    expect_set_line("ethernet0.virtualDev", "e1000e", "ethernet0.virtualDev = \"e1000\"\n",
                    "ethernet0.virtualDev = \"e1000e\"\n");
    /* key spelling, spacing and the trailing comment are kept */
    expect_set_line("TOOLS.SYNCTIME", "TRUE", "tools.syncTime   =   \"FALSE\"   # keep",
                    "tools.syncTime   =   \"TRUE\"   # keep");
    /* quotes, pipes and control characters are escaped; tab and '#' are not */
    expect_set_line("annotation", "say \"hi\" | a\tb # c\nd\r",
                    "annotation = \"Test VM for |22vmdkit|22 |7C pipes|0Asecond line\"",
                    "annotation = \"say |22hi|22 |7C a\tb # c|0Ad|0D\"");
    expect_set_line("displayName", "", "displayName = \"Ubuntu 22.04\"", "displayName = \"\"");

    /* CRLF: the edited line keeps its CRLF */
    char *crlf = to_crlf(vmx_lf);
    vk_vmx *v = parse_ok(crlf, strlen(crlf));
    vk_err e = {0};
    assert_int_equal(vk_vmx_set(v, "numvcpus", "4", &e), 0);
    char *want = replace_once(crlf, "numvcpus = \"2\"\r\n", "numvcpus = \"4\"\r\n");
    expect_bytes(v, want, strlen(want));
    free(want);
    free(crlf);
    vk_vmx_free(v);
}

static void test_set_bare_and_duplicates(void **state)
{
    (void)state;
    static const char t[] = "a = bare # c\n"
                            "b =\n"
                            "c = # nothing\n"
                            "dup = \"first\"\n"
                            "Dup = \"second\"\n";
    vk_vmx *v = parse_ok(t, sizeof t - 1);
    vk_err e = {0};
    assert_int_equal(vk_vmx_set(v, "a", "other", &e), 0); /* stays bare */
    assert_int_equal(vk_vmx_set(v, "b", "x", &e), 0);     /* empty bare gains quotes */
    assert_int_equal(vk_vmx_set(v, "c", "two words", &e), 0);
    assert_int_equal(vk_vmx_set(v, "dup", "third", &e), 0); /* the line that counts */
    static const char want[] = "a = other # c\n"
                               "b = \"x\"\n"
                               "c = \"two words\" # nothing\n"
                               "dup = \"first\"\n"
                               "Dup = \"third\"\n";
    expect_bytes(v, want, sizeof want - 1);
    assert_int_equal(vk_vmx_set(v, "a", "has space", &e), 0);
    assert_string_equal(vk_vmx_get(v, "a"), "has space");
    assert_int_equal(vk_vmx_set(v, "a", "", &e), 0);
    assert_string_equal(vk_vmx_get(v, "a"), "");
    assert_string_equal(vk_vmx_get(v, "dup"), "third");
    vk_vmx_free(v);
}

static void test_set_appends(void **state)
{
    (void)state;
    vk_vmx *v = parse_ok(vmx_lf, strlen(vmx_lf));
    vk_err e = {0};
    assert_int_equal(vk_vmx_set(v, "ethernet1.present", "TRUE", &e), 0);
    assert_int_equal(vk_vmx_set(v, "guestinfo.note", "a \"b\"", &e), 0);
    size_t n = strlen(vmx_lf);
    static const char tail[] = "ethernet1.present = \"TRUE\"\n"
                               "guestinfo.note = \"a |22b|22\"\n";
    char *want = malloc(n + sizeof tail);
    assert_non_null(want);
    memcpy(want, vmx_lf, n);
    memcpy(want + n, tail, sizeof tail);
    expect_bytes(v, want, strlen(want));
    free(want);
    vk_vmx_free(v);

    /* CRLF file: the new line ends in CRLF */
    v = PARSE_LIT("a = \"1\"\r\n");
    assert_int_equal(vk_vmx_set(v, "b", "2", &e), 0);
    EXPECT_LIT(v, "a = \"1\"\r\nb = \"2\"\r\n");
    vk_vmx_free(v);

    /* no final newline: still none after an append, and unset restores */
    static const char nofinal[] = "a = \"1\"\r\nc = \"3\"";
    v = parse_ok(nofinal, sizeof nofinal - 1);
    assert_int_equal(vk_vmx_set(v, "b", "2", &e), 0);
    EXPECT_LIT(v, "a = \"1\"\r\nc = \"3\"\r\nb = \"2\"");
    assert_int_equal(vk_vmx_unset(v, "B", &e), 0);
    expect_bytes(v, nofinal, sizeof nofinal - 1);
    vk_vmx_free(v);

    /* an empty file */
    v = parse_ok("", 0);
    assert_int_equal(vk_vmx_set(v, "a", "1", &e), 0);
    EXPECT_LIT(v, "a = \"1\"\n");
    vk_vmx_free(v);
}

static void test_set_refuses_bad_keys(void **state)
{
    (void)state;
    vk_vmx *v = parse_ok(vmx_lf, strlen(vmx_lf));
    static const char *const bad[] = {"", "a b", "a=b", "#a", "a\"b", "a\nb", "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vk_err e = {0};
        assert_int_equal(vk_vmx_set(v, bad[i], "x", &e), VMDKIT_EINVAL);
        assert_int_equal(e.code, VMDKIT_EINVAL);
        assert_non_null(strstr(e.msg, "t.vmx"));
    }
    expect_bytes(v, vmx_lf, strlen(vmx_lf));
    vk_vmx_free(v);
}

/* ---- unset ---- */

static void test_unset(void **state)
{
    (void)state;
    vk_vmx *v = parse_ok(vmx_lf, strlen(vmx_lf));
    vk_err e = {0};
    assert_int_equal(vk_vmx_unset(v, "SATA0:1.fileName", &e), 0);
    char *want = replace_once(vmx_lf, "sata0:1.fileName = \"ubuntu.iso\"\n", "");
    expect_bytes(v, want, strlen(want));
    assert_null(vk_vmx_get(v, "sata0:1.fileName"));
    free(want);

    e = (vk_err){0};
    assert_int_equal(vk_vmx_unset(v, "sata0:1.fileName", &e), VMDKIT_ENOENT);
    assert_string_equal(e.msg, "t.vmx: sata0:1.fileName: no such key");
    vk_vmx_free(v);

    /* every line of a duplicated key goes */
    v = PARSE_LIT("x = \"1\"\n# c\nX = \"2\"\ny = \"3\"\n");
    assert_int_equal(vk_vmx_unset(v, "x", &e), 0);
    EXPECT_LIT(v, "# c\ny = \"3\"\n");
    vk_vmx_free(v);
}

/* ---- disks ---- */

static void test_disks(void **state)
{
    (void)state;
    vk_vmx *v = parse_ok(vmx_lf, strlen(vmx_lf));
    vk_vmx_disk *d = NULL;
    size_t n = 99;
    vk_err e = {0};
    assert_int_equal(vk_vmx_disks(v, &d, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].slot, "scsi0:0");
    assert_string_equal(d[0].file, "Base.vmdk");
    assert_string_equal(d[1].slot, "nvme0:0");
    assert_string_equal(d[1].file, "Data-000001.vmdk");
    vk_vmx_disks_free(d, n);
    vk_vmx_free(v);

    /* case of keys and suffixes, device types, a re-set fileName (the
     * last line counts), absent present, non-disk keys */
    static const char t[] = "SCSI1:2.FILENAME = \"/vmfs/volumes/ds/Big.VMDK\"\n"
                            "scsi1:2.deviceType = \"scsi-hardDisk\"\n"
                            "sata0:0.fileName = \"first.vmdk\"\n"
                            "ide0:0.fileName = \"cd.vmdk\"\n"
                            "ide0:0.deviceType = \"atapi-cdrom\"\n"
                            "ide0:1.fileName = \"raw.vmdk\"\n"
                            "ide0:1.deviceType = \"cdrom-raw\"\n"
                            "sata0:0.fileName = \"second.vmdk\"\n"
                            "nvme1:0.fileName = \"off.vmdk\"\n"
                            "nvme1:0.present = \"false\"\n"
                            "scsi0.fileName = \"controller.vmdk\"\n"
                            "floppy0:0.fileName = \"f.vmdk\"\n"
                            "scsi2:0.fileName = \"disk.vmdk.bak\"\n"
                            "ide1:1.fileName = \"p.vmdk\"\n"
                            "ide1:1.deviceType = \"ata-hardDisk\"\n"
                            "ide1:1.present = \"TRUE\"\n";
    v = parse_ok(t, sizeof t - 1);
    assert_int_equal(vk_vmx_disks(v, &d, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].slot, "SCSI1:2");
    assert_string_equal(d[0].file, "/vmfs/volumes/ds/Big.VMDK");
    assert_string_equal(d[1].slot, "sata0:0");
    assert_string_equal(d[1].file, "second.vmdk");
    assert_string_equal(d[2].slot, "ide1:1");
    assert_string_equal(d[2].file, "p.vmdk");
    vk_vmx_disks_free(d, n);
    vk_vmx_free(v);

    v = parse_ok("", 0);
    assert_int_equal(vk_vmx_disks(v, &d, &n, &e), 0);
    assert_int_equal(n, 0);
    vk_vmx_disks_free(d, n);
    vk_vmx_free(v);
}

/* ---- malformed files and limits ---- */

static void expect_bad(const char *text, size_t len, const char *where, const char *what)
{
    vk_vmx *v = (vk_vmx *)1;
    vk_err e = {0};
    int r = vk_vmx_parse("bad.vmx", text, len, &v, &e);
    if (r != VMDKIT_EFORMAT)
        fail_msg("expected a format error at %s for %.*s, got %d", where, (int)len, text, r);
    assert_null(v);
    assert_int_equal(e.code, VMDKIT_EFORMAT);
    if (strncmp(e.msg, "bad.vmx: ", 9) != 0 || !strstr(e.msg, where) || !strstr(e.msg, what))
        fail_msg("message '%s' should start with 'bad.vmx: ' and name '%s' and '%s'", e.msg, where,
                 what);
}

static void test_malformed(void **state)
{
    (void)state;
    BAD("a = \"1\"\nnot a setting\n", "line 2:", "expected '='");
    BAD("a = \"1\"\n\nb = \"open\n", "line 3:", "unterminated quote");
    BAD("a = \"1\"\r\nb = \"x\0y\"\r\n", "line 2:", "NUL");
    BAD("# ok\nmemsize = 4096 MB\n", "line 2:", "after the value");
    BAD("= \"x\"\n", "line 1:", "not 'key = value'");
    BAD("displayName \"x\"\n", "line 1:", "expected '='");
    BAD("a = \"x\" junk\n", "line 1:", "after the value");
    BAD("\xef\xbb\xbf"
        "a = \"1\"\n\"b\" = \"2\"",
        "line 2:", "not 'key = value'");
    BAD("a = \"|00\"\n", "line 1:", "|00");
    BAD("a = \"1\"\nb", "line 2:", "expected '='");
    BAD("a = \"1\"\nb\x01 = \"2\"\n", "line 2:", "expected '='");
}

static void test_limits_and_missing(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/big.vmx", tmpdir);
    size_t len = VK_VMX_MAX_BYTES + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, '#', len); /* one long comment: valid but too large */
    write_file(path, big, len);
    vk_vmx *v = (vk_vmx *)1;
    vk_err e = {0};
    assert_int_equal(vk_vmx_load(path, &v, &e), VMDKIT_ELIMIT);
    assert_null(v);
    assert_non_null(strstr(e.msg, path));
    e = (vk_err){0};
    assert_int_equal(vk_vmx_parse("big.vmx", big, len, &v, &e), VMDKIT_ELIMIT);
    /* exactly the limit is accepted */
    v = parse_ok(big, len - 1);
    vk_vmx_free(v);
    free(big);
    unlink(path);

    snprintf(path, sizeof path, "%s/none.vmx", tmpdir);
    assert_int_equal(vk_vmx_load(path, &v, &e), VMDKIT_ENOENT);
}

/* ---- the public API ---- */

static void test_public_api(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/Win8.vmx", tmpdir);
    write_file(path, vmx_lf, strlen(vmx_lf));
    vmdkit_vmx *x = NULL;
    vmdkit_error err = {0};
    assert_int_equal(vmdkit_vmx_open(path, &x, &err), 0);
    assert_string_equal(vmdkit_vmx_get(x, "GuestOS"), "ubuntu-64");
    assert_null(vmdkit_vmx_get(x, "nope"));
    assert_int_equal(vmdkit_vmx_set(x, "ethernet0.virtualDev", "vmxnet3", &err), 0);
    assert_int_equal(vmdkit_vmx_unset(x, "nope", &err), VMDKIT_ENOENT);
    assert_int_equal(vmdkit_vmx_unset(x, "ide1:0.fileName", &err), 0);
    assert_int_equal(vmdkit_vmx_save(x, &err), 0);
    vmdkit_vmx_close(x);

    assert_int_equal(vmdkit_vmx_open(path, &x, &err), 0);
    assert_string_equal(vmdkit_vmx_get(x, "ethernet0.virtualDev"), "vmxnet3");
    assert_null(vmdkit_vmx_get(x, "ide1:0.fileName"));
    vmdkit_vmx_close(x);
    vmdkit_vmx_close(NULL);
    assert_int_equal(vmdkit_vmx_open(NULL, &x, &err), VMDKIT_EINVAL);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_variants),
        cmocka_unit_test(test_load_save_file),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_set_existing),
        cmocka_unit_test(test_set_bare_and_duplicates),
        cmocka_unit_test(test_set_appends),
        cmocka_unit_test(test_set_refuses_bad_keys),
        cmocka_unit_test(test_unset),
        cmocka_unit_test(test_disks),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits_and_missing),
        cmocka_unit_test(test_public_api),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
