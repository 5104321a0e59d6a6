/* test_vmsd.c - the .vmsd snapshot database: every .vmsd and .vmx of the
 * VM corpus parses and writes back byte for byte, the typed view of its
 * multi-snapshot samples, sparse indices, empty and lastUID-only files,
 * CRLF, the split creation time both ways, and the edits VMware makes
 * (add, set current, remove with re-parenting and renumbering). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "vm/vmsd.h"

/* ---- helpers ---- */

static vk_vmsd *parse_ok(const char *text, size_t len)
{
    vk_vmsd *s = NULL;
    vk_err e = {0};
    if (vk_vmsd_parse("t.vmsd", text, len, &s, &e) != 0)
        fail_msg("parse failed: %s", e.msg);
    return s;
}

static void expect_bytes(const vk_vmsd *s, const char *want, size_t len)
{
    char *got;
    size_t n;
    vk_err e = {0};
    assert_int_equal(vk_vmx_serialize(s->file, &got, &n, &e), 0);
    if (n != len || memcmp(got, want, len) != 0)
        fail_msg("serialized text differs:\n--- got (%zu bytes)\n%.*s\n--- want (%zu bytes)\n%.*s", n,
                 (int)n, got, len, (int)len, want);
    free(got);
}

#define PARSE_LIT(lit) parse_ok(lit, sizeof(lit) - 1)
#define EXPECT_LIT(s, lit) expect_bytes(s, lit, sizeof(lit) - 1)

static void expect_bad(const char *text, int code, const char *msg)
{
    vk_vmsd *s = NULL;
    vk_err e = {0};
    assert_int_equal(vk_vmsd_parse("t.vmsd", text, strlen(text), &s, &e), code);
    assert_null(s);
    assert_string_equal(e.msg, msg);
}

/* ---- the corpus ---- */

static char corpus_path[4096];

/* $VMDKIT_VM_CORPUS, else ../shared/vm-corpus beside the source tree. */
static const char *corpus(void)
{
    const char *env = getenv("VMDKIT_VM_CORPUS");
    if (env && *env) {
        snprintf(corpus_path, sizeof corpus_path, "%s", env);
    } else {
        const char *src = __FILE__;
        const char *cut = strstr(src, "/tests/unit/");
        if (!cut)
            return NULL;
        snprintf(corpus_path, sizeof corpus_path, "%.*s/../shared/vm-corpus", (int)(cut - src), src);
    }
    char sources[4200];
    struct stat st;
    snprintf(sources, sizeof sources, "%s/SOURCES.md", corpus_path);
    return stat(sources, &st) == 0 ? corpus_path : NULL;
}

#define NEED_CORPUS()                                                                    \
    do {                                                                                 \
        if (!corpus()) {                                                                 \
            print_message("vm corpus not found (set VMDKIT_VM_CORPUS): test skipped\n"); \
            skip();                                                                      \
        }                                                                                \
    } while (0)

static char *read_all(const char *path, size_t *len)
{
    char *data;
    vk_err e = {0};
    if (vk_read_file(path, 64u << 20, &data, len, &e) != 0)
        fail_msg("%s", e.msg);
    return data;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

struct counts {
    unsigned vmsd, vmx;
};

/* Parse every .vmsd and .vmx under DIR; each must write back unchanged. */
static void roundtrip_tree(const char *dir, struct counts *c)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            roundtrip_tree(p, c);
            continue;
        }
        bool vmsd = ends_with(p, ".vmsd"), vmx = ends_with(p, ".vmx");
        if (!vmsd && !vmx)
            continue;
        size_t len;
        char *data = read_all(p, &len);
        vk_err e = {0};
        char *out;
        size_t n;
        if (vmsd) {
            vk_vmsd *s;
            if (vk_vmsd_parse(p, data, len, &s, &e) != 0)
                fail_msg("%s", e.msg);
            assert_int_equal(vk_vmx_serialize(s->file, &out, &n, &e), 0);
            vk_vmsd_free(s);
            c->vmsd++;
        } else {
            vk_vmx *v;
            if (vk_vmx_parse(p, data, len, &v, &e) != 0)
                fail_msg("%s", e.msg);
            assert_int_equal(vk_vmx_serialize(v, &out, &n, &e), 0);
            vk_vmx_free(v);
            c->vmx++;
        }
        if (n != len || memcmp(out, data, len) != 0)
            fail_msg("%s: not written back byte for byte", p);
        free(out);
        free(data);
    }
    closedir(d);
}

static void test_corpus_roundtrip(void **state)
{
    (void)state;
    NEED_CORPUS();
    struct counts c = {0};
    roundtrip_tree(corpus_path, &c);
    print_message("%u .vmsd and %u .vmx files written back unchanged\n", c.vmsd, c.vmx);
    /* SOURCES.md lists 10 and 20 */
    assert_true(c.vmsd >= 10);
    assert_true(c.vmx >= 20);
}

static vk_vmsd *load_corpus(const char *rel)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", corpus_path, rel);
    vk_vmsd *s = NULL;
    vk_err e = {0};
    if (vk_vmsd_load(p, &s, &e) != 0)
        fail_msg("%s", e.msg);
    return s;
}

static void test_corpus_esx_four_snapshots(void **state)
{
    (void)state;
    NEED_CORPUS();
    vk_vmsd *s = load_corpus("virtuallyhyper/sql.vmsd");
    assert_int_equal(s->n_snaps, 4);
    assert_int_equal(s->last_uid, 18);
    assert_true(s->has_current);
    assert_int_equal(s->current, 18);
    static const uint32_t uids[] = {15, 16, 17, 18};
    static const char *const names[] = {"sad", "aksdn", "alkBS", "ASKDB"};
    static const char *const files[] = {"sql.vmdk", "sql-000002.vmdk", "sql-000001.vmdk",
                                        "sql-000003.vmdk"};
    /* high 310880, low -365210110 ... (recomputed: 2012-04-23 23:22:42 UTC on) */
    static const int64_t times[] = {1335223362737666, 1335223401753650, 1335223474625707,
                                    1335223542526876};
    for (size_t i = 0; i < 4; i++) {
        const vk_vmsd_snap *sn = &s->snaps[i];
        assert_int_equal(sn->index, i);
        assert_int_equal(sn->uid, uids[i]);
        assert_int_equal(sn->has_parent, i > 0);
        if (i)
            assert_int_equal(sn->parent, uids[i - 1]);
        assert_string_equal(sn->display_name, names[i]);
        assert_true(sn->has_time);
        assert_true(sn->create_time_us == times[i]);
        assert_int_equal(sn->n_disks, 1);
        assert_string_equal(sn->disks[0].file, files[i]);
        assert_string_equal(sn->disks[0].node, "scsi0:0");
    }
    assert_null(s->snaps[0].description);
    assert_string_equal(s->snaps[3].description, "");
    assert_string_equal(s->snaps[1].filename, "sql-Snapshot16.vmsn");
    vk_vmsd_free(s);
}

static void test_corpus_workstation_and_clones(void **state)
{
    (void)state;
    NEED_CORPUS();
    vk_vmsd *s = load_corpus("faithro/FaithRO-GATE5-LAB.vmsd");
    assert_int_equal(s->n_snaps, 1);
    assert_string_equal(s->snaps[0].disks[0].node, "nvme0:0");
    assert_non_null(strstr(s->snaps[0].description, "altera\xc3\xa7\xc3\xb5"
                                                    "es"));
    assert_true(s->snaps[0].create_time_us == 1788442923920000); /* 2026-09-03 13:42:03 UTC */
    assert_int_equal(s->n_mru, 1);
    vk_vmsd_free(s);

    s = load_corpus("xen-orchestra/test flo.vmsd");
    assert_int_equal(s->n_snaps, 4);
    assert_true(s->has_num_snapshots);
    assert_int_equal(s->num_snapshots, 4);
    assert_string_equal(s->snaps[2].type, "1");
    assert_string_equal(s->snaps[1].disks[0].file, "test flo_0-000001.vmdk");
    vk_vmsd_free(s);

    s = load_corpus("ProjectGGZ/Windows 10 x64.vmsd");
    assert_int_equal(s->n_snaps, 0);
    assert_int_equal(s->last_uid, 3);
    assert_false(s->has_current);
    assert_int_equal(s->n_mru, 3);
    assert_int_equal(s->mru[0], 3);
    assert_int_equal(s->mru[2], 1);
    assert_string_equal(vk_vmx_encoding(s->file), "windows-1252");
    vk_vmsd_free(s);

    s = load_corpus("Vagrant_VMware/centos-7-1-1.x86_64.vmsd");
    assert_int_equal(s->n_clone_of, 1);
    assert_non_null(strstr(s->clone_of[0], "C:\\Users\\"));
    assert_int_equal(s->n_sentinels, 1);
    assert_string_equal(s->sentinels[0], "centos-7-1-1.x86_64-disk1-cl1.vmdk");
    vk_vmsd_free(s);

    s = load_corpus("windows7-vmware17/new-disk-7c5a074/Windows 7 x64.vmsd");
    assert_true(s->existed);
    assert_int_equal(s->n_snaps, 0);
    assert_int_equal(s->last_uid, 0);
    vk_vmsd_free(s);
}

/* ---- shapes ---- */

static void test_sparse_indices(void **state)
{
    (void)state;
    /* no snapshot0, entries out of order, keys in mixed case */
    static const char text[] = ".encoding = \"UTF-8\"\n"
                               "snapshot.lastUID = \"9\"\n"
                               "SNAPSHOT3.UID = \"9\"\n"
                               "snapshot3.parent = \"4\"\n"
                               "snapshot1.uid = \"4\"\n"
                               "snapshot1.disk2.node = \"scsi0:1\"\n"
                               "snapshot1.disk0.fileName = \"a.vmdk\"\n"
                               "snapshot1.disk2.fileName = \"b.vmdk\"\n"
                               "snapshot1.disk0.node = \"scsi0:0\"\n"
                               "snapshot1.clone0 = \"/vms/c1/c1.vmx\"\n"
                               "snapshot1.numClones = \"1\"\n"
                               "snapshot3.unknownKey = \"kept\"\n";
    vk_vmsd *s = PARSE_LIT(text);
    assert_int_equal(s->n_snaps, 2);
    assert_int_equal(s->snaps[0].index, 1);
    assert_int_equal(s->snaps[0].uid, 4);
    assert_int_equal(s->snaps[0].n_disks, 2);
    assert_int_equal(s->snaps[0].disks[1].index, 2);
    assert_string_equal(s->snaps[0].disks[1].file, "b.vmdk");
    assert_string_equal(s->snaps[0].disks[1].node, "scsi0:1");
    assert_int_equal(s->snaps[0].n_clones, 1);
    assert_string_equal(s->snaps[0].clones[0], "/vms/c1/c1.vmx");
    assert_int_equal(s->snaps[1].index, 3);
    assert_int_equal(s->snaps[1].parent, 4);
    assert_false(s->snaps[1].has_time);
    assert_ptr_equal(vk_vmsd_find(s, 9), &s->snaps[1]);
    assert_null(vk_vmsd_find(s, 5));

    /* a new entry goes after the highest index; the unknown key stays */
    vk_err e = {0};
    vk_vmsd_new n = {.display_name = "next", .create_time_us = 0};
    uint32_t uid;
    assert_int_equal(vk_vmsd_add(s, &n, &uid, &e), 0);
    assert_int_equal(uid, 10);
    assert_int_equal(vk_vmsd_find(s, 10)->index, 4);
    assert_false(vk_vmsd_find(s, 10)->has_parent); /* no snapshot.current: a new root */
    assert_string_equal(vk_vmx_get(s->file, "snapshot3.unknownKey"), "kept");
    /* removing index 1 moves 3 and 4 down one */
    assert_int_equal(vk_vmsd_remove(s, 4, &e), 0);
    assert_int_equal(vk_vmsd_find(s, 9)->index, 2);
    assert_false(vk_vmsd_find(s, 9)->has_parent); /* its parent went: a root now */
    assert_int_equal(vk_vmsd_find(s, 10)->index, 3);
    assert_string_equal(vk_vmx_get(s->file, "snapshot2.unknownKey"), "kept");
    assert_null(vk_vmx_get(s->file, "snapshot1.clone0"));
    vk_vmsd_free(s);
}

static void test_empty_and_last_uid_only(void **state)
{
    (void)state;
    vk_vmsd *s = parse_ok("", 0);
    assert_int_equal(s->n_snaps, 0);
    vk_err e = {0};
    const char *files[] = {"Base.vmdk", "Data.vmdk"}, *nodes[] = {"scsi0:0", "sata0:1"};
    /* 2026-09-03 13:42:03.92 UTC */
    vk_vmsd_new n = {.create_time_us = 1788442923920000, .files = files, .nodes = nodes, .n_disks = 2};
    uint32_t uid;
    assert_int_equal(vk_vmsd_add(s, &n, &uid, &e), 0);
    assert_int_equal(uid, 1);
    EXPECT_LIT(s, ".encoding = \"UTF-8\"\n"
                  "snapshot.lastUID = \"1\"\n"
                  "snapshot.current = \"1\"\n"
                  "snapshot0.uid = \"1\"\n"
                  "snapshot0.displayName = \"Snapshot 1\"\n"
                  "snapshot0.createTimeHigh = \"416404\"\n"
                  "snapshot0.createTimeLow = \"1361996416\"\n"
                  "snapshot0.numDisks = \"2\"\n"
                  "snapshot0.disk0.fileName = \"Base.vmdk\"\n"
                  "snapshot0.disk0.node = \"scsi0:0\"\n"
                  "snapshot0.disk1.fileName = \"Data.vmdk\"\n"
                  "snapshot0.disk1.node = \"sata0:1\"\n"
                  "snapshot.numSnapshots = \"1\"\n"
                  "snapshot.mru0.uid = \"1\"\n");
    /* removing the only snapshot leaves what VMware leaves */
    assert_int_equal(vk_vmsd_remove(s, 1, &e), 0);
    EXPECT_LIT(s, ".encoding = \"UTF-8\"\n"
                  "snapshot.lastUID = \"1\"\n"
                  "snapshot.mru0.uid = \"1\"\n");
    vk_vmsd_free(s);

    /* all snapshots deleted (Workstation): the UIDs go on from lastUID */
    static const char gone[] = ".encoding = \"windows-1252\"\n"
                               "snapshot.lastUID = \"3\"\n"
                               "snapshot.mru0.uid = \"3\"\n"
                               "snapshot.mru1.uid = \"2\"\n"
                               "snapshot.mru2.uid = \"1\"\n";
    s = PARSE_LIT(gone);
    vk_vmsd_new d = {.display_name = "Caf\xc3\xa9", .description = "", .create_time_us = -1};
    assert_int_equal(vk_vmsd_add(s, &d, &uid, &e), 0);
    assert_int_equal(uid, 4);
    EXPECT_LIT(s, ".encoding = \"windows-1252\"\n"
                  "snapshot.lastUID = \"4\"\n"
                  "snapshot.current = \"4\"\n"
                  "snapshot0.uid = \"4\"\n"
                  "snapshot0.displayName = \"Caf\xe9\"\n"
                  "snapshot0.description = \"\"\n"
                  "snapshot0.createTimeHigh = \"-1\"\n"
                  "snapshot0.createTimeLow = \"-1\"\n"
                  "snapshot0.numDisks = \"0\"\n"
                  "snapshot.numSnapshots = \"1\"\n"
                  "snapshot.mru0.uid = \"4\"\n"
                  "snapshot.mru1.uid = \"3\"\n"
                  "snapshot.mru2.uid = \"2\"\n"
                  "snapshot.mru3.uid = \"1\"\n");
    assert_true(vk_vmsd_find(s, 4)->create_time_us == -1);
    vk_vmsd_free(s);
}

static void test_crlf_and_vmware_order(void **state)
{
    (void)state;
    /* a Workstation file of one snapshot, CRLF, numSnapshots then mru at the end */
    static const char text[] = ".encoding = \"UTF-8\"\r\n"
                               "snapshot.lastUID = \"1\"\r\n"
                               "snapshot.current = \"1\"\r\n"
                               "snapshot0.uid = \"1\"\r\n"
                               "snapshot0.filename = \"VM-Snapshot1.vmsn\"\r\n"
                               "snapshot0.displayName = \"first\"\r\n"
                               "snapshot0.createTimeHigh = \"416404\"\r\n"
                               "snapshot0.createTimeLow = \"-2\"\r\n"
                               "snapshot0.numDisks = \"1\"\r\n"
                               "snapshot0.disk0.fileName = \"VM.vmdk\"\r\n"
                               "snapshot0.disk0.node = \"nvme0:0\"\r\n"
                               "snapshot.numSnapshots = \"1\"\r\n"
                               "snapshot.mru0.uid = \"1\"\r\n";
    vk_vmsd *s = PARSE_LIT(text);
    vk_err e = {0};
    const char *files[] = {"VM-000001.vmdk"}, *nodes[] = {"nvme0:0"};
    vk_vmsd_new n = {.display_name = "second",
                     .description = "two",
                     .create_time_us = 1788442923920001,
                     .files = files,
                     .nodes = nodes,
                     .n_disks = 1};
    uint32_t uid;
    assert_int_equal(vk_vmsd_add(s, &n, &uid, &e), 0);
    EXPECT_LIT(s, ".encoding = \"UTF-8\"\r\n"
                  "snapshot.lastUID = \"2\"\r\n"
                  "snapshot.current = \"2\"\r\n"
                  "snapshot0.uid = \"1\"\r\n"
                  "snapshot0.filename = \"VM-Snapshot1.vmsn\"\r\n"
                  "snapshot0.displayName = \"first\"\r\n"
                  "snapshot0.createTimeHigh = \"416404\"\r\n"
                  "snapshot0.createTimeLow = \"-2\"\r\n"
                  "snapshot0.numDisks = \"1\"\r\n"
                  "snapshot0.disk0.fileName = \"VM.vmdk\"\r\n"
                  "snapshot0.disk0.node = \"nvme0:0\"\r\n"
                  "snapshot1.uid = \"2\"\r\n"
                  "snapshot1.parent = \"1\"\r\n"
                  "snapshot1.displayName = \"second\"\r\n"
                  "snapshot1.description = \"two\"\r\n"
                  "snapshot1.createTimeHigh = \"416404\"\r\n"
                  "snapshot1.createTimeLow = \"1361996417\"\r\n"
                  "snapshot1.numDisks = \"1\"\r\n"
                  "snapshot1.disk0.fileName = \"VM-000001.vmdk\"\r\n"
                  "snapshot1.disk0.node = \"nvme0:0\"\r\n"
                  "snapshot.numSnapshots = \"2\"\r\n"
                  "snapshot.mru0.uid = \"2\"\r\n"
                  "snapshot.mru1.uid = \"1\"\r\n");
    /* back to the first: current and the mru list change, nothing else */
    assert_int_equal(vk_vmsd_set_current(s, 1, &e), 0);
    assert_string_equal(vk_vmx_get(s->file, "snapshot.current"), "1");
    assert_string_equal(vk_vmx_get(s->file, "snapshot.mru0.uid"), "1");
    assert_string_equal(vk_vmx_get(s->file, "snapshot.mru1.uid"), "2");
    /* delete the first (the root): the second becomes a root, current its
     * parent's: none is left above "You are here" */
    assert_int_equal(vk_vmsd_set_disk_file(s, 2, 0, "VM.vmdk", &e), 0);
    assert_int_equal(vk_vmsd_remove(s, 1, &e), 0);
    EXPECT_LIT(s, ".encoding = \"UTF-8\"\r\n"
                  "snapshot.lastUID = \"2\"\r\n"
                  "snapshot0.uid = \"2\"\r\n"
                  "snapshot0.displayName = \"second\"\r\n"
                  "snapshot0.description = \"two\"\r\n"
                  "snapshot0.createTimeHigh = \"416404\"\r\n"
                  "snapshot0.createTimeLow = \"1361996417\"\r\n"
                  "snapshot0.numDisks = \"1\"\r\n"
                  "snapshot0.disk0.fileName = \"VM.vmdk\"\r\n"
                  "snapshot0.disk0.node = \"nvme0:0\"\r\n"
                  "snapshot.numSnapshots = \"1\"\r\n"
                  "snapshot.mru0.uid = \"1\"\r\n"
                  "snapshot.mru1.uid = \"2\"\r\n");
    vk_vmsd_free(s);
}

static void test_remove_middle(void **state)
{
    (void)state;
    /* 1 <- 2 <- 3 and 2 <- 4: removing 2 re-parents 3 and 4 to 1 */
    static const char text[] = "snapshot.lastUID = \"4\"\n"
                               "snapshot.current = \"2\"\n"
                               "snapshot0.uid = \"1\"\n"
                               "snapshot1.uid = \"2\"\n"
                               "snapshot1.parent = \"1\"\n"
                               "snapshot2.uid = \"3\"\n"
                               "snapshot2.parent = \"2\"\n"
                               "snapshot3.uid = \"4\"\n"
                               "snapshot3.parent = \"2\"\n"
                               "snapshot.numSnapshots = \"4\"\n";
    vk_vmsd *s = PARSE_LIT(text);
    vk_err e = {0};
    assert_int_equal(vk_vmsd_remove(s, 2, &e), 0);
    EXPECT_LIT(s, "snapshot.lastUID = \"4\"\n"
                  "snapshot.current = \"1\"\n"
                  "snapshot0.uid = \"1\"\n"
                  "snapshot1.uid = \"3\"\n"
                  "snapshot1.parent = \"1\"\n"
                  "snapshot2.uid = \"4\"\n"
                  "snapshot2.parent = \"1\"\n"
                  "snapshot.numSnapshots = \"3\"\n");
    assert_int_equal(vk_vmsd_remove(s, 2, &e), VMDKIT_ENOENT);
    /* lastUID only grows: the next snapshot is 5 */
    vk_vmsd_new n = {0};
    uint32_t uid;
    assert_int_equal(vk_vmsd_add(s, &n, &uid, &e), 0);
    assert_int_equal(uid, 5);
    assert_int_equal(vk_vmsd_find(s, 5)->parent, 1);
    vk_vmsd_free(s);
}

/* A clone recorded in an entry goes after that entry's last line; a clone
 * index already used (sparse, CRLF kept) is skipped; recording one twice
 * changes nothing. */
static void test_add_clone(void **state)
{
    (void)state;
    static const char text[] = "snapshot.lastUID = \"2\"\r\n"
                               "snapshot0.uid = \"1\"\r\n"
                               "snapshot0.clone2 = \"/a/Old.vmx\"\r\n"
                               "snapshot0.numClones = \"1\"\r\n"
                               "snapshot1.uid = \"2\"\r\n"
                               "snapshot1.parent = \"1\"\r\n"
                               "snapshot.numSnapshots = \"2\"\r\n";
    vk_vmsd *s = PARSE_LIT(text);
    vk_err e = {0};
    assert_int_equal(vk_vmsd_add_clone(s, 2, "/lib/C1.vmwarevm/C1.vmx", &e), 0);
    assert_int_equal(vk_vmsd_add_clone(s, 1, "/lib/C2.vmwarevm/C2.vmx", &e), 0);
    assert_int_equal(vk_vmsd_add_clone(s, 1, "/lib/C2.vmwarevm/C2.vmx", &e), 0);
    EXPECT_LIT(s, "snapshot.lastUID = \"2\"\r\n"
                  "snapshot0.uid = \"1\"\r\n"
                  "snapshot0.clone2 = \"/a/Old.vmx\"\r\n"
                  "snapshot0.numClones = \"2\"\r\n"
                  "snapshot0.clone3 = \"/lib/C2.vmwarevm/C2.vmx\"\r\n"
                  "snapshot1.uid = \"2\"\r\n"
                  "snapshot1.parent = \"1\"\r\n"
                  "snapshot1.clone0 = \"/lib/C1.vmwarevm/C1.vmx\"\r\n"
                  "snapshot1.numClones = \"1\"\r\n"
                  "snapshot.numSnapshots = \"2\"\r\n");
    assert_int_equal(vk_vmsd_find(s, 1)->n_clones, 2);
    assert_string_equal(vk_vmsd_find(s, 1)->clones[1], "/lib/C2.vmwarevm/C2.vmx");
    assert_int_equal(vk_vmsd_add_clone(s, 7, "/x.vmx", &e), VMDKIT_ENOENT);
    vk_vmsd_free(s);
}

/* ---- time ---- */

static void test_time_conversion(void **state)
{
    (void)state;
    /* the corpus's samples, recomputed: high·2^32 + (uint32)low */
    assert_true(vk_vmsd_time_join(310880, -365210110) == 1335223362737666);
    assert_true(vk_vmsd_time_join(310880, 3929757186) == 1335223362737666); /* low unsigned */
    assert_true(vk_vmsd_time_join(416404, 1361996416) == 1788442923920000);
    int32_t high, low;
    vk_vmsd_time_split(1335223362737666, &high, &low);
    assert_int_equal(high, 310880);
    assert_int_equal(low, -365210110);
    vk_vmsd_time_split(1788442923920000, &high, &low);
    assert_int_equal(high, 416404);
    assert_int_equal(low, 1361996416);
    /* the edges of the low half */
    vk_vmsd_time_split((int64_t)1 << 32, &high, &low);
    assert_int_equal(high, 1);
    assert_int_equal(low, 0);
    vk_vmsd_time_split(((int64_t)1 << 32) - 1, &high, &low);
    assert_int_equal(high, 0);
    assert_int_equal(low, -1);
    vk_vmsd_time_split(0x80000000, &high, &low);
    assert_int_equal(low, INT32_MIN);
    assert_true(vk_vmsd_time_join(0, INT32_MIN) == 0x80000000);
    /* before 1970 */
    vk_vmsd_time_split(-1, &high, &low);
    assert_int_equal(high, -1);
    assert_int_equal(low, -1);
    assert_true(vk_vmsd_time_join(-1, -1) == -1);
}

/* ---- malformed ---- */

static void test_malformed(void **state)
{
    (void)state;
    expect_bad("snapshot0.uid = \"x1\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot0.uid: \"x1\" is not a valid number here");
    expect_bad("snapshot0.uid = \"4294967296\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot0.uid: \"4294967296\" is not a valid number here");
    expect_bad(
        "snapshot0.uid = \"1\"\nsnapshot0.createTimeLow = \"1e3\"\nsnapshot0.createTimeHigh = \"1\"\n",
        VMDKIT_EFORMAT, "t.vmsd: snapshot0.createTimeLow: \"1e3\" is not a valid number here");
    expect_bad("snapshot0.displayName = \"no uid\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot0: an entry without snapshot0.uid");
    expect_bad("snapshot0.uid = \"2\"\nsnapshot5.uid = \"2\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot5.uid: 2 is also the uid of snapshot0");
    expect_bad("snapshot.lastUID = \"-1\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot.lastUID: \"-1\" is not a valid number here");
    expect_bad("snapshot1000000.uid = \"2\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot1000000.uid: index larger than 999999");
    expect_bad("snapshot.current = \"\"\n", VMDKIT_EFORMAT,
               "t.vmsd: snapshot.current: \"\" is not a valid number here");

    /* no UID left */
    vk_vmsd *s = PARSE_LIT("snapshot.lastUID = \"4294967295\"\n");
    vk_err e = {0};
    vk_vmsd_new n = {0};
    assert_int_equal(vk_vmsd_add(s, &n, NULL, &e), VMDKIT_ELIMIT);
    vk_vmsd_free(s);
}

/* A value the file's encoding cannot hold is refused: the edit is all or
 * nothing, so the file in memory and its view still agree (fuzz_vmsd's
 * input: once the entry's first keys stayed in the text, absent from the
 * view). */
static void test_refused_edit_leaves_nothing(void **state)
{
    (void)state;
    vk_vmsd *s = PARSE_LIT(".encoding =De\n");
    vk_err e = {0};
    const char *files[] = {"a.vmdk"}, *nodes[] = {"scsi0:0"};
    vk_vmsd_new n = {
        .display_name = "fuzz", .description = "x\"y|z", .files = files, .nodes = nodes, .n_disks = 1};
    uint32_t uid = 0;
    assert_int_not_equal(vk_vmsd_add(s, &n, &uid, &e), 0);
    assert_int_equal(s->n_snaps, 0);
    assert_false(s->has_current);
    EXPECT_LIT(s, ".encoding =De\n");
    vk_vmsd_free(s);
}

static void test_path_for(void **state)
{
    (void)state;
    vk_err e = {0};
    char *p = vk_vmsd_path_for("/vms/Win 10.vmwarevm/Win 10.VMX", &e);
    assert_string_equal(p, "/vms/Win 10.vmwarevm/Win 10.vmsd");
    free(p);
}

/* The snapshot entry points refuse missing arguments before they read the
 * options, and the options before they look at the machine; the result is
 * zeroed whatever the outcome. */
static void test_snapshot_entry_refusals(void **state)
{
    (void)state;
    struct {
        vmdkit_snapshot_opts known;
        uint64_t later;
    } longer = {.known = {.struct_size = sizeof longer}, .later = 1};
    vmdkit_snapshot_result res;
    vmdkit_error err;
    memset(&res, 0xa5, sizeof res);
    assert_int_equal(vmdkit_vm_snapshot_take(NULL, &longer.known, &res, &err), VMDKIT_EINVAL);
    assert_string_equal(err.msg, "vmdkit_vm_snapshot_take: vm is required");
    assert_null(res.new_disks);
    assert_int_equal(res.n_removed, 0);
    memset(&res, 0xa5, sizeof res);
    assert_int_equal(vmdkit_vm_snapshot_revert("/nonexistent/m.vmx", NULL, &longer.known, &res, &err),
                     VMDKIT_EINVAL);
    assert_string_equal(err.msg, "vmdkit_vm_snapshot_revert: vm and which are required");
    assert_null(res.kept);
    assert_int_equal(vmdkit_vm_snapshot_delete(NULL, "1", NULL, NULL, &err), VMDKIT_EINVAL);
    assert_string_equal(err.msg, "vmdkit_vm_snapshot_delete: vm and which are required");
    assert_int_equal(vmdkit_vm_snapshot_delete("/nonexistent/m.vmx", "1", &longer.known, NULL, &err),
                     VMDKIT_EINVAL);
    assert_non_null(strstr(err.msg, "vmdkit_snapshot_opts: struct_size"));
    assert_int_not_equal(vmdkit_vm_snapshot_take("/nonexistent/m.vmx", NULL, NULL, &err), 0);
    assert_null(strstr(err.msg, "required"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_roundtrip),
        cmocka_unit_test(test_corpus_esx_four_snapshots),
        cmocka_unit_test(test_corpus_workstation_and_clones),
        cmocka_unit_test(test_sparse_indices),
        cmocka_unit_test(test_empty_and_last_uid_only),
        cmocka_unit_test(test_crlf_and_vmware_order),
        cmocka_unit_test(test_remove_middle),
        cmocka_unit_test(test_add_clone),
        cmocka_unit_test(test_time_conversion),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_refused_edit_leaves_nothing),
        cmocka_unit_test(test_path_for),
        cmocka_unit_test(test_snapshot_entry_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
