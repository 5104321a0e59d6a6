/* test_pieces.c - through the library API: a piece of a split disk (a
 * sparse extent without a descriptor of its own) opens read-only but never
 * for writing and is never a parent; a parent hint naming an extent of the
 * chain is a loop, on open and in vmdkit_check; under VMDKIT_OPEN_PROBE a
 * .vmx is no disk and a file probed as raw opens read-only only; an atomic
 * rewrite through a symbolic link replaces the file it leads to. */
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

#include "vk.h"

#define TEST_DIR_NAME "pieces"
#include "test_dir.h"

static void at(char *path, size_t n, const char *name) { snprintf(path, n, "%s/%s", dir, name); }

static void make_split(const char *name)
{
    char path[4096];
    at(path, sizeof path, name);
    vmdkit_create_opts o = {.struct_size = sizeof o, .type = VMDKIT_TWOGB_SPARSE, .size_bytes = 1 << 20};
    vmdkit_error err;
    if (vmdkit_create(path, &o, &err))
        fail_msg("create %s: %s", path, err.msg);
}

static void write_text(const char *name, const char *text)
{
    char path[4096];
    at(path, sizeof path, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Give the descriptor NAME the parent hint HINT with some parentCID: a
 * piece has no CID of its own, so it is refused before any CID is compared
 * (ffffffff would be refused as "no parent" before the parent is opened). */
static void set_parent_hint(const char *name, const char *hint)
{
    static const char none[] = "parentCID=ffffffff\n";
    char path[4096], *text;
    size_t len;
    at(path, sizeof path, name);
    assert_int_equal(vk_read_file(path, 1 << 20, &text, &len, NULL), 0);
    char *p = strstr(text, none);
    assert_non_null(p);
    size_t cap = len + strlen(hint) + 64;
    char *out = malloc(cap);
    assert_non_null(out);
    int k = snprintf(out, cap, "%.*sparentCID=0badc0de\nparentFileNameHint=\"%s\"\n%s", (int)(p - text),
                     text, hint, p + strlen(none));
    assert_int_equal(vk_write_file_atomic(path, out, (size_t)k, NULL), 0);
    free(out);
    free(text);
}

static void test_piece_not_writable(void **state)
{
    (void)state;
    make_split("d.vmdk");
    char path[4096];
    at(path, sizeof path, "d-s001.vmdk");
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    vmdkit_disk *d = NULL;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDWR, &d, &err), VMDKIT_ERDONLY);
    assert_non_null(strstr(err.msg, "one piece of a disk"));
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), 0);
    assert_int_equal(vmdkit_size(d), 1 << 20);
    assert_int_equal(vmdkit_close(d, &err), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_ino, before.st_ino);
}

static void test_piece_never_parent(void **state)
{
    (void)state;
    make_split("v.vmdk");
    make_split("e.vmdk");
    set_parent_hint("e.vmdk", "v-s001.vmdk");
    char path[4096];
    at(path, sizeof path, "e.vmdk");
    vmdkit_disk *d = NULL;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), VMDKIT_ECHAIN);
    assert_non_null(strstr(err.msg, "never a parent"));
    vmdkit_check_opts copts = {.struct_size = sizeof copts};
    vmdkit_check_result res;
    assert_int_equal(vmdkit_check(path, &copts, &res, &err), 0);
    assert_true(res.corruptions > 0);
    char piece[4096];
    at(piece, sizeof piece, "v-s001.vmdk");
    vmdkit_create_opts o = {.struct_size = sizeof o,
                            .type = VMDKIT_MONOLITHIC_SPARSE,
                            .size_bytes = 1 << 20,
                            .parent = piece};
    at(path, sizeof path, "child.vmdk");
    assert_int_equal(vmdkit_create(path, &o, &err), VMDKIT_EINVAL);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_own_extent_is_loop(void **state)
{
    (void)state;
    make_split("c.vmdk");
    set_parent_hint("c.vmdk", "c-s001.vmdk");
    char path[4096];
    at(path, sizeof path, "c.vmdk");
    vmdkit_disk *d = NULL;
    vmdkit_error err;
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RDONLY, &d, &err), VMDKIT_ECHAIN);
    assert_non_null(strstr(err.msg, "loop"));
    vmdkit_check_opts copts = {.struct_size = sizeof copts};
    vmdkit_check_result res;
    assert_int_equal(vmdkit_check(path, &copts, &res, &err), 0);
    assert_true(res.corruptions > 0);
}

static void test_probe(void **state)
{
    (void)state;
    write_text("Base.vmx", ".encoding = \"UTF-8\"\nconfig.version = \"8\"\n");
    write_text("notes.txt", "config.version = \"8\"\n");
    write_text("r.img", "some bytes that are not a descriptor\n");
    char path[4096];
    vmdkit_disk *d = NULL;
    vmdkit_error err;
    at(path, sizeof path, "Base.vmx");
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_PROBE, &d, &err), VMDKIT_EFORMAT);
    assert_non_null(strstr(err.msg, "not a disk"));
    at(path, sizeof path, "notes.txt");
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_PROBE, &d, &err), VMDKIT_EFORMAT);
    at(path, sizeof path, "r.img");
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_PROBE | VMDKIT_OPEN_RDWR, &d, &err), VMDKIT_ERDONLY);
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_PROBE, &d, &err), 0);
    assert_int_equal(vmdkit_close(d, &err), 0);
    assert_int_equal(vmdkit_open(path, VMDKIT_OPEN_RAW | VMDKIT_OPEN_RDWR, &d, &err), 0);
    assert_int_equal(vmdkit_close(d, &err), 0);
}

static void test_atomic_write_keeps_symlink(void **state)
{
    (void)state;
    char real[4096], link[4096];
    write_text("real.txt", "one\n");
    at(real, sizeof real, "real.txt");
    at(link, sizeof link, "link.txt");
    assert_int_equal(symlink("real.txt", link), 0);
    assert_int_equal(vk_write_file_atomic(link, "two\n", 4, NULL), 0);
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    char *text;
    size_t len;
    assert_int_equal(vk_read_file(real, 64, &text, &len, NULL), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(text, "two\n", 4);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_piece_not_writable),         cmocka_unit_test(test_piece_never_parent),
        cmocka_unit_test(test_own_extent_is_loop),         cmocka_unit_test(test_probe),
        cmocka_unit_test(test_atomic_write_keeps_symlink),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
