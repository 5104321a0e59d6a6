/* test_copy_tree.c - copying a machine folder for a move to another file
 * system: content and holes of files, folders and links, the refusal of a
 * file another process writes, the check for changes made during a copy,
 * and the removal of only what was copied and is unchanged. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/copy_tree.h"
#include "path.h"

static char base[256];

static char *at(const char *rel)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", base, rel);
    return buf[i];
}

static void write_at(const char *rel, const void *data, size_t len, off_t off)
{
    int fd = open(at(rel), O_WRONLY | O_CREAT, 0640);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "%s/vmdkit-copy-tree-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(base))
        return -1;
    /* src/VM.vmx, src/Disk.vmdk (16 MiB with 4 KiB of data at 8 MiB),
     * src/sub/notes.txt, src/link -> VM.vmx */
    if (mkdir(at("src"), 0750) != 0 || mkdir(at("src/sub"), 0700) != 0 || mkdir(at("dst"), 0700) != 0)
        return -1;
    write_at("src/VM.vmx", "displayName = \"VM\"\n", 19, 0);
    char data[4096];
    memset(data, 0x5a, sizeof data);
    write_at("src/Disk.vmdk", data, sizeof data, 8 << 20);
    if (truncate(at("src/Disk.vmdk"), 16 << 20) != 0)
        return -1;
    write_at("src/sub/notes.txt", "notes", 5, 0);
    return symlink("VM.vmx", at("src/link"));
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static bool same_bytes(const char *a, const char *b)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

static void test_copy_and_remove(void **state)
{
    (void)state;
    vk_copied_list l = {0};
    vk_err e = {0};
    assert_int_equal(vk_copy_tree(at("src"), at("dst"), &l, &e), 0);
    assert_int_equal(l.n, 5); /* VM.vmx, Disk.vmdk, sub, sub/notes.txt, link */
    assert_true(same_bytes(at("src/Disk.vmdk"), at("dst/Disk.vmdk")));
    assert_true(same_bytes(at("src/sub/notes.txt"), at("dst/sub/notes.txt")));
    struct stat s, d;
    assert_int_equal(stat(at("src/Disk.vmdk"), &s), 0);
    assert_int_equal(stat(at("dst/Disk.vmdk"), &d), 0);
    assert_int_equal(d.st_size, 16 << 20);
    assert_true(d.st_blocks * 512 < (1 << 20)); /* the holes stayed holes */
    assert_int_equal(d.st_mode & 07777, 0640);
    assert_int_equal(d.st_mtim.tv_sec, s.st_mtim.tv_sec);
    assert_int_equal(stat(at("dst"), &d), 0);
    assert_int_equal(d.st_mode & 07777, 0750); /* the source folder's mode */
    char target[64] = {0};
    assert_int_equal(readlink(at("dst/link"), target, sizeof target - 1), 6);
    assert_string_equal(target, "VM.vmx");
    assert_int_equal(vk_check_unchanged(at("src"), &l, &e), 0);

    /* a file that changes after the copy is named, and stays at removal */
    write_at("src/sub/notes.txt", "more notes", 10, 0);
    assert_int_equal(vk_check_unchanged(at("src"), &l, &e), VMDKIT_ELOCKED);
    assert_non_null(strstr(e.msg, "sub/notes.txt: changed while it was being copied"));
    char *kept = NULL;
    assert_int_equal(vk_remove_copied(at("src"), &l, true, &kept), 2); /* the file and its folder */
    assert_non_null(kept);
    assert_non_null(strstr(kept, "sub/notes.txt"));
    free(kept);
    assert_int_equal(access(at("src/VM.vmx"), F_OK), -1);
    assert_int_equal(access(at("src/Disk.vmdk"), F_OK), -1);
    assert_int_equal(access(at("src/sub/notes.txt"), F_OK), 0);
    /* the copy is untouched */
    assert_int_equal(access(at("dst/Disk.vmdk"), F_OK), 0);
    vk_copied_list_free(&l);
}

static void test_refusals(void **state)
{
    (void)state;
    vk_err e = {0};
    /* never over an existing file */
    assert_int_equal(vk_copy_file(at("dst/VM.vmx"), at("dst/link"), &e), VMDKIT_EEXIST);
    /* a file another process holds for writing */
    write_at("busy.vmdk", "x", 1, 0);
    int fd = open(at("busy.vmdk"), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(vk_lock_fd(fd, true, "busy.vmdk", &e), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vk_err ce = {0};
        int r = vk_copy_file(at("busy.vmdk"), at("busy-copy.vmdk"), &ce);
        _exit(r == VMDKIT_ELOCKED && access(at("busy-copy.vmdk"), F_OK) != 0 ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
    /* entries other than files, folders and links */
    assert_int_equal(mkdir(at("odd"), 0700), 0);
    assert_int_equal(mkfifo(at("odd/pipe"), 0600), 0);
    assert_int_equal(mkdir(at("odd-copy"), 0700), 0);
    vk_copied_list l = {0};
    assert_int_equal(vk_copy_tree(at("odd"), at("odd-copy"), &l, &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "odd/pipe: neither a file, a folder nor a link"));
    vk_copied_list_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_and_remove),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
