/* test_library.c - the library model: every kind of reference read from
 * disks, .vmx and .vmsd files; the same answers through relative paths,
 * "..", and symbolic links to folders; the default root reaching the
 * clones of a base kept in a subfolder; and every .vmx and .vmsd of the VM
 * corpus (../shared/vm-corpus) read without a problem. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/library.h"
#include "vm/vmx.h"
#include "test_base.h"

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_disk(const char *rel, const char *parent)
{
    vmdkit_create_opts o = {
        .struct_size = sizeof o, .type = VMDKIT_MONOLITHIC_SPARSE, .size_bytes = 1 << 20};
    vmdkit_error err = {0};
    int r =
        parent ? vmdkit_create_delta(at(parent), at(rel), 0, &err) : vmdkit_create(at(rel), &o, &err);
    if (r)
        fail_msg("%s", err.msg);
}

/* lib/
 *   Templates/Base.vmwarevm/  Base.vmx Base.vmdk Base.vmsd Base.nvram tools.iso
 *   C1.vmwarevm/              C1.vmx (cloneOf0) C1.vmdk (child of Base) C1.vmsd (sentinel)
 *   link -> Templates          */
static int setup(void **state)
{
    (void)state;
    if (base_make("library"))
        return -1;
    if (mkdir(at("lib"), 0755) || mkdir(at("lib/Templates"), 0755) ||
        mkdir(at("lib/Templates/Base.vmwarevm"), 0755) || mkdir(at("lib/C1.vmwarevm"), 0755))
        return -1;
    make_disk("lib/Templates/Base.vmwarevm/Base.vmdk", NULL);
    make_disk("lib/C1.vmwarevm/C1.vmdk", "lib/Templates/Base.vmwarevm/Base.vmdk");
    put("lib/Templates/Base.vmwarevm/Base.nvram", "nv");
    put("lib/Templates/Base.vmwarevm/tools.iso", "iso");
    put("lib/Templates/Base.vmwarevm/serial.txt", "");
    put("lib/Templates/Base.vmwarevm/Base.vmx", "displayName = \"Base\"\n"
                                                "scsi0:0.fileName = \"Base.vmdk\"\n"
                                                "nvram = \"Base.nvram\"\n"
                                                "extendedConfigFile = \"Base.vmxf\"\n"
                                                "sata0:1.deviceType = \"cdrom-image\"\n"
                                                "sata0:1.fileName = \"tools.iso\"\n"
                                                "floppy0.fileType = \"file\"\n"
                                                "floppy0.fileName = \"boot.flp\"\n"
                                                "serial0.fileType = \"file\"\n"
                                                "serial0.fileName = \"serial.txt\"\n"
                                                "parallel0.fileType = \"device\"\n"
                                                "parallel0.fileName = \"/dev/parport0\"\n"
                                                "checkpoint.vmState = \"Base.vmss\"\n");
    put("lib/Templates/Base.vmwarevm/Base.vmsd", ".encoding = \"UTF-8\"\n"
                                                 "snapshot.lastUID = \"3\"\n"
                                                 "snapshot2.uid = \"3\"\n"
                                                 "snapshot2.filename = \"Base-Snapshot3.vmsn\"\n"
                                                 "snapshot2.displayName = \"golden\"\n"
                                                 "snapshot2.disk0.fileName = \"Base.vmdk\"\n"
                                                 "snapshot2.clone0 = \"../../C1.vmwarevm/C1.vmx\"\n"
                                                 "snapshot2.numClones = \"1\"\n");
    char vmx[PATH_MAX + 64];
    snprintf(vmx, sizeof vmx,
             "displayName = \"C1\"\nscsi0:0.fileName = \"C1.vmdk\"\ncloneOf0 = \"%s\"\n",
             at("lib/Templates/Base.vmwarevm/Base.vmx"));
    put("lib/C1.vmwarevm/C1.vmx", vmx);
    put("lib/C1.vmwarevm/C1.vmsd",
        "cloneOf0 = \"../Templates/Base.vmwarevm/Base.vmx\"\nnumCloneOf = \"1\"\n"
        "sentinel0 = \"C1.vmdk\"\nnumSentinels = \"1\"\n");
    return symlink("Templates", at("lib/link"));
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static vk_lib *load(const char *rel_root)
{
    vk_lib *lib = NULL;
    vmdkit_error err = {0};
    const char *roots[1] = {at(rel_root)};
    if (vk_lib_load(roots, 1, &lib, &err))
        fail_msg("%s", err.msg);
    return lib;
}

/* The kinds and keys of the references naming REL, as "KIND:KEY" sorted. */
static void refs_named(const vk_lib *lib, const char *rel, char *out, size_t size)
{
    size_t *idx, n;
    assert_int_equal(vk_lib_refs_to(lib, at(rel), VK_REFS_ALL, &idx, &n, NULL), 0);
    char items[16][128];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 16; i++, k++)
        snprintf(items[k], sizeof items[k], "%d:%s", (int)lib->refs[idx[i]].kind,
                 lib->refs[idx[i]].key ? lib->refs[idx[i]].key : "hint");
    free(idx);
    qsort(items, k, sizeof items[0], (int (*)(const void *, const void *))strcmp);
    out[0] = 0;
    for (size_t i = 0; i < k; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? " " : "", items[i]);
}

static void test_every_reference_kind(void **state)
{
    (void)state;
    vk_lib *lib = load("lib");
    char got[1024], want[1024];
    refs_named(lib, "lib/Templates/Base.vmwarevm/Base.vmdk", got, sizeof got);
    snprintf(want, sizeof want, "%d:hint %d:scsi0:0.fileName %d:snapshot2.disk0.fileName", VK_REF_PARENT,
             VK_REF_VM_DISK, VK_REF_SNAPSHOT_DISK);
    assert_string_equal(got, want);
    refs_named(lib, "lib/Templates/Base.vmwarevm/Base.nvram", got, sizeof got);
    snprintf(want, sizeof want, "%d:nvram", VK_REF_NVRAM);
    assert_string_equal(got, want);
    refs_named(lib, "lib/Templates/Base.vmwarevm/tools.iso", got, sizeof got);
    snprintf(want, sizeof want, "%d:sata0:1.fileName", VK_REF_BACKING);
    assert_string_equal(got, want);
    refs_named(lib, "lib/Templates/Base.vmwarevm/serial.txt", got, sizeof got);
    snprintf(want, sizeof want, "%d:serial0.fileName", VK_REF_BACKING);
    assert_string_equal(got, want);
    refs_named(lib, "lib/Templates/Base.vmwarevm/Base.vmx", got, sizeof got);
    snprintf(want, sizeof want, "%d:cloneOf0 %d:cloneOf0", VK_REF_CLONE_OF, VK_REF_CLONE_OF);
    assert_string_equal(got, want);
    refs_named(lib, "lib/C1.vmwarevm/C1.vmdk", got, sizeof got);
    snprintf(want, sizeof want, "%d:scsi0:0.fileName %d:sentinel0", VK_REF_VM_DISK, VK_REF_SENTINEL);
    assert_string_equal(got, want);
    refs_named(lib, "lib/C1.vmwarevm/C1.vmx", got, sizeof got);
    snprintf(want, sizeof want, "%d:snapshot2.clone0", VK_REF_SNAPSHOT_CLONE);
    assert_string_equal(got, want);
    /* references to files that are not there are kept, as not existing */
    size_t missing = 0, parport = 0;
    for (size_t i = 0; i < lib->n_refs; i++) {
        const vk_lib_ref *f = &lib->refs[i];
        if (!f->exists && f->key &&
            (strcmp(f->key, "extendedConfigFile") == 0 || strcmp(f->key, "floppy0.fileName") == 0 ||
             strcmp(f->key, "checkpoint.vmState") == 0 || strcmp(f->key, "snapshot2.filename") == 0))
            missing++;
        if (f->key && strcmp(f->key, "parallel0.fileName") == 0)
            parport++;
    }
    assert_int_equal(missing, 4);
    assert_int_equal(parport, 0); /* a device, not a file backing */
    /* the snapshot's name is carried for messages */
    size_t d = vk_lib_disk_at(lib, at("lib/Templates/Base.vmwarevm/Base.vmdk"));
    assert_int_not_equal(d, VK_LIB_NONE);
    size_t c1 = vk_lib_disk_at(lib, at("lib/C1.vmwarevm/C1.vmdk"));
    assert_int_equal(lib->disks[c1].parent, d);
    vk_lib_free(lib);
}

static void test_same_answer_however_named(void **state)
{
    (void)state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *roots[4] = {NULL};
    assert_int_equal(vk_lib_default_root(at("lib/Templates/Base.vmwarevm/Base.vmdk"), &roots[0], NULL),
                     0);
    assert_int_equal(vk_lib_default_root(at("lib/link/Base.vmwarevm/Base.vmdk"), &roots[1], NULL), 0);
    assert_int_equal(vk_lib_default_root(at("lib/C1.vmwarevm/../Templates/./Base.vmwarevm/Base.vmdk"),
                                         &roots[2], NULL),
                     0);
    assert_int_equal(chdir(at("lib/Templates/Base.vmwarevm")), 0);
    assert_int_equal(vk_lib_default_root("Base.vmdk", &roots[3], NULL), 0);
    assert_int_equal(chdir(cwd), 0);
    char *lib_real = realpath(at("lib"), NULL);
    /* the base sits in lib/Templates: the root widens to lib, where its clone lives */
    for (int i = 0; i < 4; i++) {
        assert_string_equal(roots[i], lib_real);
        free(roots[i]);
    }
    /* a relative target and a symbolic link reach the same clone */
    assert_int_equal(chdir(at("lib/Templates/Base.vmwarevm")), 0);
    vk_lib *lib = NULL;
    const char *targets[1] = {"Base.vmdk"};
    assert_int_equal(vk_lib_load_around(NULL, targets, 1, &lib, NULL), 0);
    assert_int_equal(chdir(cwd), 0);
    size_t *idx, n;
    assert_int_equal(vk_lib_refs_to(lib, at("lib/link/Base.vmwarevm/Base.vmdk"), VK_REFS(VK_REF_PARENT),
                                    &idx, &n, NULL),
                     0);
    assert_int_equal(n, 1);
    char *c1 = realpath(at("lib/C1.vmwarevm/C1.vmdk"), NULL);
    char *holder = realpath(lib->refs[idx[0]].file, NULL);
    assert_string_equal(holder, c1);
    free(holder);
    free(c1);
    free(idx);
    vk_lib_free(lib);
    /* a root given twice, or inside another, is walked once */
    const char *two[3] = {at("lib"), at("lib/C1.vmwarevm"), at("lib/../lib")};
    assert_int_equal(vk_lib_load(two, 3, &lib, NULL), 0);
    assert_int_equal(lib->n_roots, 1);
    assert_int_equal(lib->n_disks, 2);
    vk_lib_free(lib);
    free(lib_real);
}

static void test_no_widening_past_unrelated_folders(void **state)
{
    (void)state;
    /* a lone disk folder whose parent holds nothing else of a library */
    assert_int_equal(mkdir(at("lone"), 0755), 0);
    assert_int_equal(mkdir(at("lone/A"), 0755), 0);
    make_disk("lone/A/a.vmdk", NULL);
    char *root = NULL;
    assert_int_equal(vk_lib_default_root(at("lone/A/a.vmdk"), &root, NULL), 0);
    char *want = realpath(at("lone"), NULL);
    assert_string_equal(root, want);
    free(root);
    free(want);
}

/* ---- the VM corpus ---- */

/* Entries of the .vmx-dialect file PATH whose key matches the sscanf-style
 * test MATCH and whose value is not empty. */
static int count_keys(const char *path, bool (*match)(const char *key))
{
    vk_vmx *v;
    if (vk_vmx_load(path, &v, NULL))
        return -1;
    size_t pos = 0;
    const char *key, *value;
    int n = 0;
    while (vk_vmx_next(v, &pos, &key, &value))
        n += *value && match(key);
    vk_vmx_free(v);
    return n;
}

/* snapshotN.diskM.fileName */
static bool is_snapshot_disk_key(const char *key)
{
    unsigned a, b;
    int end = 0;
    char rest[16];
    return sscanf(key, "snapshot%u.disk%u.%15s%n", &a, &b, rest, &end) == 3 && key[end] == 0 &&
           strcasecmp(rest, "fileName") == 0;
}

/* sentinelN */
static bool is_sentinel_key(const char *key)
{
    unsigned a;
    int end = 0;
    return sscanf(key, "sentinel%u%n", &a, &end) == 1 && key[end] == 0;
}

static void test_vm_corpus(void **state)
{
    (void)state;
    const char *corpus = getenv("VMDKIT_CORPUS");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/../vm-corpus", corpus ? corpus : "../shared/vmdk-corpus");
    struct stat st;
    if (stat(dir, &st) != 0) {
        print_message("skipped: no VM corpus at %s\n", dir);
        skip();
    }
    vk_lib *lib = NULL;
    vmdkit_error err = {0};
    const char *roots[1] = {dir};
    if (vk_lib_load(roots, 1, &lib, &err))
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < lib->n_problems; i++)
        if (strstr(lib->problems[i].message, "not a readable"))
            fail_msg("%s: %s", lib->problems[i].path, lib->problems[i].message);
    assert_true(lib->n_vms >= 10);
    size_t sentinels = 0;
    for (size_t m = 0; m < lib->n_vms; m++) {
        /* every hard disk slot of every .vmx is a machine-disk reference */
        size_t refs = 0;
        for (size_t i = 0; i < lib->n_refs; i++)
            refs +=
                lib->refs[i].kind == VK_REF_VM_DISK && strcmp(lib->refs[i].file, lib->vms[m].vmx) == 0;
        vk_vmx *v;
        assert_int_equal(vk_vmx_load(lib->vms[m].vmx, &v, NULL), 0);
        vk_vmx_disk *disks;
        size_t n;
        assert_int_equal(vk_vmx_disks(v, &disks, &n, NULL), 0);
        assert_int_equal(refs, n);
        vk_vmx_disks_free(disks, n);
        vk_vmx_free(v);
    }
    /* every .vmsd's snapshot disks and sentinels are references */
    DIR *top = opendir(dir);
    struct dirent *de;
    while ((de = readdir(top))) {
        char sub[PATH_MAX + 256];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        DIR *dh = de->d_name[0] != '.' ? opendir(sub) : NULL;
        struct dirent *f;
        while (dh && (f = readdir(dh))) {
            size_t k = strlen(f->d_name);
            if (k < 5 || strcasecmp(f->d_name + k - 5, ".vmsd") != 0)
                continue;
            char path[PATH_MAX * 2 + 512];
            snprintf(path, sizeof path, "%s/%s", sub, f->d_name);
            char *real = realpath(path, NULL);
            int disks = 0, sent = 0;
            for (size_t i = 0; i < lib->n_refs; i++) {
                char *holder = realpath(lib->refs[i].file, NULL);
                if (holder && strcmp(holder, real) == 0) {
                    disks += lib->refs[i].kind == VK_REF_SNAPSHOT_DISK;
                    sent += lib->refs[i].kind == VK_REF_SENTINEL;
                }
                free(holder);
            }
            assert_int_equal(disks, count_keys(path, is_snapshot_disk_key));
            assert_int_equal(sent, count_keys(path, is_sentinel_key));
            sentinels += (size_t)sent;
            free(real);
        }
        if (dh)
            closedir(dh);
    }
    closedir(top);
    assert_true(sentinels >= 3);
    vk_lib_free(lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_reference_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_answer_however_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_widening_past_unrelated_folders, setup, teardown),
        cmocka_unit_test(test_vm_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
