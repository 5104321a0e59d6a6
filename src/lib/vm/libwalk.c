/* libwalk.c - walk a VM library: every .vmdk (disk, damaged disk, or
 * something else such as an extent file) and every .vmx under a folder. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#include "libwalk.h"
#include "path.h"
#include "scan.h"
#include "vm.h"

#define WALK_MAX_DEPTH 16

/* Folders that never hold a library's disks: VMware's lock folders and the
 * unfinished destination of an interrupted vmdkit clone. */
static bool skipped_folder(const char *name)
{
    return vk_path_has_suffix(name, ".lck") || strstr(name, ".vmdkit-tmp-") != NULL;
}

static int visit_file(const char *path, const char *name, vk_lib_fn fn, void *opaque, vk_err *e)
{
    if (vk_path_has_suffix(name, ".vmx"))
        return fn(opaque, path, VK_LIB_VMX, NULL, NULL);
    if (!vk_path_has_suffix(name, ".vmdk"))
        return 0;
    vk_descriptor d;
    bool is_disk;
    vk_err why = {0};
    int r = vk_read_descriptor(path, &d, &is_disk, &why);
    if (r == VMDKIT_ENOMEM) {
        vk_descriptor_free(&d);
        return vk_fail(e, r, "%s: out of memory", path);
    }
    if (r)
        r = fn(opaque, path, VK_LIB_BAD_DISK, NULL, why.msg);
    else
        r = fn(opaque, path, is_disk ? VK_LIB_DISK : VK_LIB_OTHER_VMDK, is_disk ? &d : NULL, NULL);
    vk_descriptor_free(&d);
    return r;
}

static int walk(const char *dir, int depth, vk_lib_fn fn, void *opaque, vk_err *e)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return depth == 0 ? vk_fail_errno(e, errno, "%s: open folder", dir) : 0;
    int r = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (!r && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
            char *p = vk_path_join(dir, name, e);
            struct stat st;
            if (!p)
                r = VMDKIT_ENOMEM;
            else if (lstat(p, &st) != 0)
                ; /* vanished meanwhile */
            else if (S_ISDIR(st.st_mode) && depth < WALK_MAX_DEPTH && !skipped_folder(name))
                r = walk(p, depth + 1, fn, opaque, e);
            else if (S_ISREG(st.st_mode))
                r = visit_file(p, name, fn, opaque, e);
            free(p);
        }
        free(names[i]);
    }
    free(names);
    return r;
}

int vk_lib_walk(const char *root, vk_lib_fn fn, void *opaque, vk_err *e)
{
    return walk(root, 0, fn, opaque, e);
}
