/* test_copy_tree.c - copying a machine folder for a move to another file
 * system: content and holes of files, folders and links, the refusal of a
 * file another process writes, the check for changes made during a copy,
 * the removal of only what was copied and is unchanged, and progress with
 * cancellation through the copy's callback. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vm/copy_tree.h"
#include "path.h"
#include "test_base.h"

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
    if (base_make("copy-tree"))
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
    assert_int_equal(vk_copy_tree(at("src"), at("dst"), &l, NULL, &e), 0);
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
    assert_int_equal(vk_copy_file(at("dst/VM.vmx"), at("dst/link"), NULL, &e), VMDKIT_EEXIST);
    /* a file another process holds for writing */
    write_at("busy.vmdk", "x", 1, 0);
    int fd = open(at("busy.vmdk"), O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(vk_lock_fd(fd, true, "busy.vmdk", &e), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vk_err ce = {0};
        int r = vk_copy_file(at("busy.vmdk"), at("busy-copy.vmdk"), NULL, &ce);
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
    assert_int_equal(vk_copy_tree(at("odd"), at("odd-copy"), &l, NULL, &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "odd/pipe: neither a file, a folder nor a link"));
    vk_copied_list_free(&l);
}

/* The callback of the progress tests: records what it is told and asks to
 * stop once DONE reaches stop_at (0: never). */
struct seen {
    unsigned calls;
    uint64_t last_done, last_total, stop_at;
};

static int seen_cb(void *opaque, uint64_t done, uint64_t total)
{
    struct seen *s = opaque;
    s->calls++;
    assert_true(done >= s->last_done); /* never goes back */
    s->last_done = done;
    s->last_total = total;
    return s->stop_at && done >= s->stop_at;
}

static void fill(const char *rel, size_t mib, int byte)
{
    static char buf[1 << 20];
    memset(buf, byte, sizeof buf);
    for (size_t i = 0; i < mib; i++)
        write_at(rel, buf, sizeof buf, (off_t)(i << 20));
}

static void test_progress_and_cancel(void **state)
{
    (void)state;
    assert_int_equal(mkdir(at("p"), 0700), 0);
    assert_int_equal(mkdir(at("p/sub"), 0700), 0);
    fill("p/a.bin", 3, 0x11);
    fill("p/sub/c.bin", 1, 0x33);
    fill("p/b.bin", 2, 0x22);
    vk_err e = {0};

    /* uncancelled: every byte is reported, with the total the caller set */
    assert_int_equal(mkdir(at("p-all"), 0700), 0);
    struct seen all = {0};
    vk_copy_progress pg = {.fn = seen_cb, .opaque = &all, .total_bytes = 6u << 20};
    vk_copied_list l = {0};
    assert_int_equal(vk_copy_tree(at("p"), at("p-all"), &l, &pg, &e), 0);
    assert_int_equal(pg.done_bytes, 6u << 20);
    assert_int_equal(all.last_done, 6u << 20);
    assert_int_equal(all.last_total, 6u << 20);
    assert_true(all.calls >= 6); /* at least once per MiB */
    assert_true(same_bytes(at("p/sub/c.bin"), at("p-all/sub/c.bin")));
    vk_copied_list_free(&l);

    /* cancelled after 2 MiB: VMDKIT_ECANCELED, no partial file left, and
     * what was made is listed for removal */
    assert_int_equal(mkdir(at("p-cut"), 0700), 0);
    struct seen cut = {.stop_at = 2u << 20};
    vk_copy_progress pc = {.fn = seen_cb, .opaque = &cut};
    assert_int_equal(vk_copy_tree(at("p"), at("p-cut"), &l, &pc, &e), VMDKIT_ECANCELED);
    assert_int_equal(e.code, VMDKIT_ECANCELED);
    assert_non_null(strstr(e.msg, "copy cancelled"));
    assert_true(pc.done_bytes >= 2u << 20 && pc.done_bytes < 6u << 20);
    assert_true(cut.calls < all.calls);
    /* the file being copied when it stopped is gone; none is half there */
    const char *names[] = {"a.bin", "b.bin", "sub/c.bin"};
    size_t whole = 0;
    for (size_t i = 0; i < 3; i++) {
        char from[64], to[64];
        snprintf(from, sizeof from, "p/%s", names[i]);
        snprintf(to, sizeof to, "p-cut/%s", names[i]);
        if (access(at(to), F_OK) == 0) {
            whole++;
            assert_true(same_bytes(at(from), at(to)));
        }
    }
    assert_true(whole < 3);
    assert_int_equal(vk_remove_copied(at("p-cut"), &l, false, NULL), 0);
    DIR *d = opendir(at("p-cut"));
    assert_non_null(d);
    struct dirent *de;
    size_t left = 0;
    while ((de = readdir(d)))
        left += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(left, 0);
    vk_copied_list_free(&l);

    /* one file cancelled at its first report: no DST */
    struct seen now = {.stop_at = 1};
    vk_copy_progress pn = {.fn = seen_cb, .opaque = &now};
    assert_int_equal(vk_copy_file(at("p/a.bin"), at("a-copy.bin"), &pn, &e), VMDKIT_ECANCELED);
    assert_int_equal(access(at("a-copy.bin"), F_OK), -1);
    /* and without a callback the struct still counts */
    vk_copy_progress quiet = {0};
    assert_int_equal(vk_copy_file(at("p/a.bin"), at("a-copy.bin"), &quiet, &e), 0);
    assert_int_equal(quiet.done_bytes, 3u << 20);
    assert_true(same_bytes(at("p/a.bin"), at("a-copy.bin")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_and_remove),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_progress_and_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
