/* test_temp_folder.c - the hidden build folder: its name and mode, its
 * owner's lock seen from another process, publication under the final
 * names (never replacing one), and the leftovers of killed owners: listed
 * with their size, removed for their NAME only, with the extent names a
 * publication cut short had given out, while folders in use stay. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "temp_folder.h"
#include "test_base.h"

static void write_file(const char *path, size_t len, int byte)
{
    char buf[4096];
    memset(buf, byte, sizeof buf);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    for (size_t done = 0; done < len; done += sizeof buf)
        assert_int_equal(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Entries of DIR whose names hold ".vmdkit-tmp-". */
static size_t temps_in(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".vmdkit-tmp-") != NULL;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    return base_make("temp-folder");
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", base, base);
    return system(cmd) == 0 ? 0 : -1;
}

/* A child process makes a folder for NAME in DIR, puts a 64 KiB file
 * "data" in it, tells the parent the folder's path, and holds it until
 * the parent closes GO; then it exits without releasing anything, as a
 * killed process would. */
struct owner {
    pid_t pid;
    int go;         /* write end: closing it lets the child die */
    char path[512]; /* the folder it made */
};

static void spawn_owner(const char *dir, const char *name, struct owner *o)
{
    int path_pipe[2], go_pipe[2];
    assert_int_equal(pipe(path_pipe), 0);
    assert_int_equal(pipe(go_pipe), 0);
    o->pid = fork();
    assert_true(o->pid >= 0);
    if (o->pid == 0) {
        close(path_pipe[0]);
        close(go_pipe[1]);
        vk_temp_folder t;
        vk_err e = {0};
        if (vk_temp_folder_make(dir, name, &t, &e) != 0)
            _exit(1);
        char data[600];
        snprintf(data, sizeof data, "%s/data", t.path);
        write_file(data, 65536, 0x5a);
        if (write(path_pipe[1], t.path, strlen(t.path) + 1) < 0)
            _exit(1);
        char c;
        (void)!read(go_pipe[0], &c, 1); /* EOF when the parent lets go */
        _exit(0);
    }
    close(path_pipe[1]);
    close(go_pipe[0]);
    o->go = go_pipe[1];
    memset(o->path, 0, sizeof o->path);
    assert_true(read(path_pipe[0], o->path, sizeof o->path - 1) > 0);
    close(path_pipe[0]);
}

static void end_owner(struct owner *o)
{
    close(o->go);
    int status;
    assert_int_equal(waitpid(o->pid, &status, 0), o->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_make_and_release(void **state)
{
    (void)state;
    assert_int_equal(mkdir(at("m"), 0755), 0);
    vk_temp_folder t;
    vk_err e = {0};
    assert_int_equal(vk_temp_folder_make(at("m"), "d.vmdk", &t, &e), 0);
    const char *leaf = strrchr(t.path, '/') + 1;
    assert_int_equal(strncmp(leaf, ".d.vmdk.vmdkit-tmp-", 19), 0);
    assert_int_equal(strlen(leaf), 19 + 6);
    struct stat st;
    assert_int_equal(stat(t.path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_true(t.lock_fd >= 0);
    /* held: another open of the folder cannot take it exclusively */
    int fd = open(t.path, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), -1);
    /* so it is neither listed nor removed, even from this process */
    vk_stale_temp *v;
    size_t n;
    assert_int_equal(vk_list_stale_temps(at("m"), &v, &n, &e), 0);
    assert_int_equal(n, 0);
    size_t removed = 9;
    assert_int_equal(vk_remove_stale_temps(at("m"), "d.vmdk", &removed, &e), 0);
    assert_int_equal(removed, 0);
    assert_true(exists(t.path));
    /* discarded: gone, with what it held */
    char inner[600];
    snprintf(inner, sizeof inner, "%s/x", t.path);
    write_file(inner, 4096, 1);
    vk_temp_folder_discard(&t);
    assert_null(t.path);
    assert_int_equal(temps_in(at("m")), 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    close(fd);
    /* "." as the parent gives a name without "./" */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(at("m")), 0);
    assert_int_equal(vk_temp_folder_make(".", "x.raw", &t, &e), 0);
    assert_int_equal(strncmp(t.path, ".x.raw.vmdkit-tmp-", 18), 0);
    vk_temp_folder_discard(&t);
    assert_int_equal(chdir(cwd), 0);
}

static void test_leftovers_of_dead_owners(void **state)
{
    (void)state;
    assert_int_equal(mkdir(at("s"), 0755), 0);
    /* alive in another process: left alone */
    struct owner a, b;
    spawn_owner(at("s"), "Copy.vmwarevm", &a);
    vk_err e = {0};
    vk_stale_temp *v;
    size_t n, removed;
    assert_int_equal(vk_list_stale_temps(at("s"), &v, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_int_equal(vk_remove_stale_temps(at("s"), "Copy.vmwarevm", &removed, &e), 0);
    assert_int_equal(removed, 0);
    assert_true(exists(a.path));
    /* the owner dies: a leftover, listed with its name and size */
    end_owner(&a);
    spawn_owner(at("s"), "Other.vmdk", &b);
    end_owner(&b);
    /* a folder made by hand (or by a vmdkit without locks) has no owner either */
    assert_int_equal(mkdir(at("s/.Copy.vmwarevm.vmdkit-tmp-Ab12Cd"), 0700), 0);
    /* names that are not leftovers, and a symlink that looks like one */
    assert_int_equal(mkdir(at("s/.Copy.vmwarevm.vmdkit-tmp-short"), 0700), 0);
    assert_int_equal(mkdir(at("s/Copy.vmwarevm.vmdkit-tmp-Zz99Yy"), 0700), 0);
    assert_int_equal(mkdir(at("s/target"), 0700), 0);
    assert_int_equal(symlink("target", at("s/.Copy.vmwarevm.vmdkit-tmp-LnLnLn")), 0);
    assert_int_equal(vk_list_stale_temps(at("s"), &v, &n, &e), 0);
    assert_int_equal(n, 3);
    size_t with_data = 0;
    for (size_t i = 0; i < n; i++) {
        assert_non_null(strstr(v[i].path, ".vmdkit-tmp-"));
        if (i)
            assert_true(strcmp(v[i - 1].path, v[i].path) < 0);
        if (strcmp(v[i].path, a.path) == 0) {
            assert_string_equal(v[i].name, "Copy.vmwarevm");
            assert_true(v[i].bytes >= 65536);
            with_data++;
        } else if (strcmp(v[i].path, b.path) == 0) {
            assert_string_equal(v[i].name, "Other.vmdk");
            assert_true(v[i].bytes >= 65536);
            with_data++;
        } else {
            assert_string_equal(v[i].path, at("s/.Copy.vmwarevm.vmdkit-tmp-Ab12Cd"));
            assert_string_equal(v[i].name, "Copy.vmwarevm");
        }
    }
    assert_int_equal(with_data, 2);
    vk_stale_temps_free(v, n);
    /* removal is by NAME: Other.vmdk's leftover stays */
    assert_int_equal(vk_remove_stale_temps(at("s"), "Copy.vmwarevm", &removed, &e), 0);
    assert_int_equal(removed, 2);
    assert_false(exists(a.path));
    assert_false(exists(at("s/.Copy.vmwarevm.vmdkit-tmp-Ab12Cd")));
    assert_true(exists(b.path));
    assert_true(exists(at("s/.Copy.vmwarevm.vmdkit-tmp-short")));
    assert_true(exists(at("s/Copy.vmwarevm.vmdkit-tmp-Zz99Yy")));
    assert_true(exists(at("s/.Copy.vmwarevm.vmdkit-tmp-LnLnLn")));
    assert_true(exists(at("s/target")));
    assert_int_equal(vk_remove_stale_temps(at("s"), "Other.vmdk", &removed, &e), 0);
    assert_int_equal(removed, 1);
    assert_false(exists(b.path));
    /* a leftover whose folders were made read-only (a copy given its
     * source's modes) goes too */
    assert_int_equal(mkdir(at("s/.Ro.vmdkit-tmp-RoRoRo"), 0700), 0);
    assert_int_equal(mkdir(at("s/.Ro.vmdkit-tmp-RoRoRo/sub"), 0700), 0);
    write_file(at("s/.Ro.vmdkit-tmp-RoRoRo/sub/f"), 4096, 2);
    assert_int_equal(chmod(at("s/.Ro.vmdkit-tmp-RoRoRo/sub"), 0555), 0);
    assert_int_equal(chmod(at("s/.Ro.vmdkit-tmp-RoRoRo"), 0555), 0);
    assert_int_equal(vk_remove_stale_temps(at("s"), "Ro", &removed, &e), 0);
    assert_int_equal(removed, 1);
    assert_false(exists(at("s/.Ro.vmdkit-tmp-RoRoRo")));
    /* a folder that is not there */
    assert_int_equal(vk_remove_stale_temps(at("nowhere"), "x", &removed, &e), VMDKIT_ENOENT);
    assert_int_equal(vk_list_stale_temps(at("nowhere"), &v, &n, &e), VMDKIT_ENOENT);
}

static void test_another_users_leftover(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("(not root: a leftover of another user cannot be made here)\n");
        skip();
    }
    assert_int_equal(mkdir(at("u"), 0755), 0);
    assert_int_equal(mkdir(at("u/.d.vmdk.vmdkit-tmp-OtHeR1"), 0700), 0);
    assert_int_equal(chown(at("u/.d.vmdk.vmdkit-tmp-OtHeR1"), 65534, 65534), 0);
    vk_err e = {0};
    size_t removed;
    assert_int_equal(vk_remove_stale_temps(at("u"), "d.vmdk", &removed, &e), 0);
    assert_int_equal(removed, 0);
    assert_true(exists(at("u/.d.vmdk.vmdkit-tmp-OtHeR1")));
}

/* Build d.vmdk with two extents in a folder of P's. */
static void build_disk(vk_temp_folder *t, const char *parent)
{
    vk_err e = {0};
    assert_int_equal(vk_temp_folder_make(parent, "d.vmdk", t, &e), 0);
    char p[600];
    const char *files[] = {"d.vmdk", "d-s001.vmdk", "d-s002.vmdk"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", t->path, files[i]);
        write_file(p, 8192, 0x10 + i);
    }
}

static const char *const extents[] = {"d-s001.vmdk", "d-s002.vmdk"};

static void test_publish(void **state)
{
    (void)state;
    assert_int_equal(mkdir(at("p"), 0755), 0);
    vk_temp_folder t;
    vk_err e = {0};
    build_disk(&t, at("p"));
    struct stat built;
    char p[600];
    snprintf(p, sizeof p, "%s/d-s002.vmdk", t.path);
    assert_int_equal(stat(p, &built), 0);
    assert_int_equal(vk_temp_folder_publish(&t, at("p"), extents, 2, "d.vmdk", &e), 0);
    assert_null(t.path);
    assert_true(exists(at("p/d.vmdk")) && exists(at("p/d-s001.vmdk")) && exists(at("p/d-s002.vmdk")));
    struct stat st;
    assert_int_equal(stat(at("p/d-s002.vmdk"), &st), 0);
    assert_int_equal(st.st_ino, built.st_ino); /* the same file, not a copy */
    assert_int_equal(st.st_nlink, 1);          /* its second name went with the folder */
    assert_int_equal(temps_in(at("p")), 0);

    /* never over an existing name: an extent, then the descriptor */
    assert_int_equal(mkdir(at("q"), 0755), 0);
    write_file(at("q/d-s002.vmdk"), 4096, 0x77);
    build_disk(&t, at("q"));
    assert_int_equal(vk_temp_folder_publish(&t, at("q"), extents, 2, "d.vmdk", &e), VMDKIT_EEXIST);
    assert_non_null(strstr(e.msg, "q/d-s002.vmdk: already exists"));
    assert_false(exists(at("q/d-s001.vmdk"))); /* taken back */
    assert_false(exists(at("q/d.vmdk")));
    assert_int_equal(stat(at("q/d-s002.vmdk"), &st), 0);
    assert_int_equal(st.st_size, 4096); /* untouched */
    assert_non_null(t.path);            /* left to the caller */
    vk_temp_folder_discard(&t);
    unlink(at("q/d-s002.vmdk"));
    write_file(at("q/d.vmdk"), 4096, 0x78);
    build_disk(&t, at("q"));
    assert_int_equal(vk_temp_folder_publish(&t, at("q"), extents, 2, "d.vmdk", &e), VMDKIT_EEXIST);
    assert_false(exists(at("q/d-s001.vmdk")));
    assert_false(exists(at("q/d-s002.vmdk")));
    assert_int_equal(stat(at("q/d.vmdk"), &st), 0);
    assert_int_equal(st.st_size, 4096);
    vk_temp_folder_discard(&t);
    assert_int_equal(temps_in(at("q")), 0);
}

/* A publication cut short by a crash, as a child that dies after STEPS:
 * 1 = the extent names given out, 2 = the descriptor renamed too. */
static void crash_publish(const char *parent, int steps)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vk_temp_folder t;
        build_disk(&t, parent);
        char from[600], to[600];
        for (int i = 0; i < 2; i++) {
            snprintf(from, sizeof from, "%s/%s", t.path, extents[i]);
            snprintf(to, sizeof to, "%s/%s", parent, extents[i]);
            if (link(from, to) != 0)
                _exit(1);
        }
        snprintf(from, sizeof from, "%s/d.vmdk", t.path);
        snprintf(to, sizeof to, "%s/d.vmdk", parent);
        if (steps >= 2 && rename(from, to) != 0)
            _exit(1);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_leftovers_of_a_cut_publication(void **state)
{
    (void)state;
    vk_err e = {0};
    size_t removed;
    /* cut after the extents: names without a descriptor are removed with
     * the folder, an unrelated file of another name stays */
    assert_int_equal(mkdir(at("c1"), 0755), 0);
    write_file(at("c1/keep.vmdk"), 4096, 3);
    crash_publish(at("c1"), 1);
    assert_true(exists(at("c1/d-s001.vmdk")) && !exists(at("c1/d.vmdk")));
    assert_int_equal(vk_remove_stale_temps(at("c1"), "d.vmdk", &removed, &e), 0);
    assert_int_equal(removed, 1);
    assert_false(exists(at("c1/d-s001.vmdk")));
    assert_false(exists(at("c1/d-s002.vmdk")));
    assert_true(exists(at("c1/keep.vmdk")));
    assert_int_equal(temps_in(at("c1")), 0);
    /* the same, but an extent name was replaced by another file meanwhile:
     * that file is not the folder's and stays */
    assert_int_equal(mkdir(at("c2"), 0755), 0);
    crash_publish(at("c2"), 1);
    assert_int_equal(unlink(at("c2/d-s002.vmdk")), 0);
    write_file(at("c2/d-s002.vmdk"), 4096, 4);
    assert_int_equal(vk_remove_stale_temps(at("c2"), "d.vmdk", &removed, &e), 0);
    assert_false(exists(at("c2/d-s001.vmdk")));
    assert_true(exists(at("c2/d-s002.vmdk")));
    /* cut after the descriptor: the disk is complete and stays whole */
    assert_int_equal(mkdir(at("c3"), 0755), 0);
    crash_publish(at("c3"), 2);
    assert_int_equal(vk_remove_stale_temps(at("c3"), "d.vmdk", &removed, &e), 0);
    assert_int_equal(removed, 1);
    struct stat st;
    assert_int_equal(stat(at("c3/d-s001.vmdk"), &st), 0);
    assert_int_equal(st.st_nlink, 1);
    assert_true(exists(at("c3/d.vmdk")) && exists(at("c3/d-s002.vmdk")));
    assert_int_equal(temps_in(at("c3")), 0);
}

static void test_unhide_message(void **state)
{
    (void)state;
    vk_temp_folder t = {.path = "/v/.d.vmdk.vmdkit-tmp-abcdef", .lock_fd = -1};
    vk_err e = {0};
    vk_fail(&e, VMDKIT_ENOSPC, "/v/.d.vmdk.vmdkit-tmp-abcdef/d-s001.vmdk: write at offset 0: No space");
    vk_temp_folder_unhide_message(&t, "/v", &e);
    assert_string_equal(e.msg, "/v/d-s001.vmdk: write at offset 0: No space");
    vk_temp_folder t2 = {.path = ".d.vmdk.vmdkit-tmp-abcdef", .lock_fd = -1};
    vk_fail(&e, VMDKIT_EIO, ".d.vmdk.vmdkit-tmp-abcdef/d.vmdk: fdatasync: I/O error");
    vk_temp_folder_unhide_message(&t2, ".", &e);
    assert_string_equal(e.msg, "d.vmdk: fdatasync: I/O error");
    vk_fail(&e, VMDKIT_EIO, "/v/.C.vmdkit-tmp-abcdef/C.vmdk: read");
    vk_temp_folder t3 = {.path = "/v/.C.vmdkit-tmp-abcdef", .lock_fd = -1};
    vk_temp_folder_unhide_message(&t3, "/v/C.vmwarevm", &e);
    assert_string_equal(e.msg, "/v/C.vmwarevm/C.vmdk: read");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make_and_release),
        cmocka_unit_test(test_leftovers_of_dead_owners),
        cmocka_unit_test(test_another_users_leftover),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_leftovers_of_a_cut_publication),
        cmocka_unit_test(test_unhide_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
