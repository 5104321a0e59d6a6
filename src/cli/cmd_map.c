/* cmd_map.c - vmdkit map: which link stores each range of a disk. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_opt map_opts[] = {
    {0, "json", NULL,
     "Print a JSON array of {start, length, type, data, zero, present, depth,\n"
     "file} (start, length, data, zero, present and depth as in 'qemu-img map\n"
     "--output=json': depth is the link that stores the run, or the last link\n"
     "for runs no link stores, whose present is false).",
     CLI_INSPECT_JSON},
    CLI_OPTS_IGNORE_CID,
    CLI_OPTS_DISK,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_map_help = {
    .description = "List the virtual disk as runs of bytes and say for each run whether it holds\n"
                   "stored data, reads as zeros without stored data (zeroed grains, ZERO extents),\n"
                   "or is not stored in any link of the chain (unalloc; it reads as zeros).\n"
                   "For stored runs the link (0 = DISK itself, 1 = its parent, ...) and that\n"
                   "link's file are shown.  Adjacent runs of the same type and link are merged.\n"
                   "\n"
                   "Columns: offset, length (hexadecimal bytes), type, link, file.\n"
                   "\n"
                   "DISK may be FILE.ova, the first disk inside an OVA, or FILE.ova/NAME.vmdk for\n"
                   "another of its disks: the member is read where it lies in the archive, never\n"
                   "copied out, and only read.  A gzip-compressed member cannot be read in place\n"
                   "(vmdkit ova import converts it).",
    .opts = map_opts,
    .exit_status = "",
    .examples = "vmdkit map child.vmdk\n"
                "vmdkit map --json disk.vmdk | jq '[.[] | select(.data)] | length'",
};

struct run {
    uint64_t start, length;
    enum vmdkit_alloc alloc;
    int link; /* -1 when no link stores it */
};

struct map_out {
    bool json;
    json_object *array; /* JSON mode */
    char **paths;       /* path of each link */
    int n_links;
};

static const char *type_name(enum vmdkit_alloc alloc, bool json)
{
    switch (alloc) {
    case VMDKIT_ALLOC_DATA:
        return "data";
    case VMDKIT_ALLOC_ZERO:
        return "zero";
    default:
        return json ? "unallocated" : "unalloc";
    }
}

static void emit(struct map_out *m, const struct run *r)
{
    const char *path = r->link >= 0 && r->link < m->n_links ? m->paths[r->link] : NULL;
    if (m->json) {
        json_object *o = json_object_new_object();
        cli_json_add_u64(o, "start", r->start);
        cli_json_add_u64(o, "length", r->length);
        cli_json_add_str(o, "type", type_name(r->alloc, true));
        cli_json_add_bool(o, "data", r->alloc == VMDKIT_ALLOC_DATA);
        cli_json_add_bool(o, "zero", r->alloc != VMDKIT_ALLOC_DATA);
        cli_json_add_bool(o, "present", r->alloc != VMDKIT_ALLOC_UNALLOC);
        /* like qemu-img: a run no link stores was looked for down to the last link */
        cli_json_add_u64(o, "depth",
                         r->link >= 0 ? (uint64_t)r->link
                                      : (uint64_t)(m->n_links > 0 ? m->n_links - 1 : 0));
        cli_json_add_str(o, "file", path);
        json_object_array_add(m->array, o);
        return;
    }
    char off[24], len[24], link[16];
    snprintf(off, sizeof off, "0x%" PRIx64, r->start);
    snprintf(len, sizeof len, "0x%" PRIx64, r->length);
    if (r->link >= 0)
        snprintf(link, sizeof link, "%d", r->link);
    else
        snprintf(link, sizeof link, "-");
    printf("%-16s%-16s%-10s%-6s%s\n", off, len, type_name(r->alloc, false), link,
           path ? cli_basename(path) : "-");
}

/* Walk the disk with block status and emit merged runs. */
static int walk(vmdkit_disk *disk, const char *name, struct map_out *m)
{
    uint64_t size = vmdkit_size(disk), off = 0;
    struct run cur = {0};
    bool have = false;
    while (off < size) {
        vmdkit_block_status st;
        int e = vmdkit_block_status_at(disk, size - off, off, &st);
        if (e < 0)
            return cli_fail(e, vmdkit_last_error(disk)->msg);
        if (st.length == 0) {
            cli_errorf("%s: block status at offset %" PRIu64 " reported an empty run", name, off);
            return CLI_EXIT_IO;
        }
        if (st.length > size - off)
            st.length = size - off;
        int link = st.alloc == VMDKIT_ALLOC_UNALLOC ? -1 : st.link;
        if (have && cur.alloc == st.alloc && cur.link == link) {
            cur.length += st.length;
        } else {
            if (have)
                emit(m, &cur);
            cur = (struct run){.start = off, .length = st.length, .alloc = st.alloc, .link = link};
            have = true;
        }
        off += st.length;
    }
    if (have)
        emit(m, &cur);
    return CLI_EXIT_OK;
}

static int map_disk(vmdkit_disk *disk, const char *name, bool json)
{
    struct map_out m = {.json = json, .n_links = vmdkit_chain_length(disk)};
    int rc = CLI_EXIT_OK;
    m.paths = calloc(m.n_links > 0 ? (size_t)m.n_links : 1, sizeof *m.paths);
    if (!m.paths) {
        cli_errorf("out of memory");
        return CLI_EXIT_IO;
    }
    for (int i = 0; i < m.n_links && !rc; i++) {
        vmdkit_link_info li;
        int e = vmdkit_link_info_get(disk, i, &li);
        if (e < 0) {
            rc = cli_fail(e, vmdkit_last_error(disk)->msg);
            break;
        }
        m.paths[i] = strdup(li.path ? li.path : "?");
        vmdkit_link_info_free(&li);
        if (!m.paths[i]) {
            cli_errorf("out of memory");
            rc = CLI_EXIT_IO;
        }
    }
    if (!rc) {
        if (json) {
            m.array = json_object_new_array();
        } else {
            printf("%-16s%-16s%-10s%-6s%s\n", "offset", "length", "type", "link", "file");
        }
        rc = walk(disk, name, &m);
        if (json) {
            if (rc)
                json_object_put(m.array);
            else
                rc = cli_json_print(m.array);
        }
    }
    for (int i = 0; i < m.n_links; i++)
        free(m.paths[i]);
    free(m.paths);
    return rc;
}

int cmd_map(int argc, char **argv)
{
    struct cli_inspect_args a;
    int rc = cli_parse_inspect("map", "DISK", argc, argv, &a);
    if (rc || !a.disk)
        return rc;
    vmdkit_disk *disk;
    rc = cli_open(a.disk, a.open_flags, CLI_FMT_AUTO, &disk);
    if (rc)
        return rc;
    rc = map_disk(disk, a.disk, a.json);
    int crc = cli_close(disk);
    return rc ? rc : crc;
}
