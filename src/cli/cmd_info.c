/* cmd_info.c - vmdkit info: describe a disk, its extents and its chain. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct cli_opt info_opts[] = {
    {0, "json", NULL,
     "Print a JSON object with field names like 'qemu-img info --output=json'\n"
     "(filename, format, virtual-size, actual-size, create-type, cid,\n"
     "parent-cid, extents ...).  The parent is nested as backing-image.",
     CLI_INSPECT_JSON},
    {0, "chain", NULL,
     "Print the full description of every link of the chain, top first (with\n"
     "--json: an array of link objects, like 'qemu-img info --backing-chain').",
     CLI_INSPECT_CHAIN},
    CLI_OPTS_IGNORE_CID,
    CLI_OPTS_DISK,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_info_help = {
    .description = "Describe DISK: its format and createType, virtual size, the space its files\n"
                   "use on the host (\"disk size\"), content IDs, parent, adapter, geometry, hardware\n"
                   "version and every extent, with the sparse header facts of sparse extents.\n"
                   "When DISK has a parent, the chain of links is listed, top first.\n"
                   "The VMware snapshots that froze DISK or a link of its chain are listed with\n"
                   "their name, uid, machine and .vmsd, from the model 'vmdkit tree' reads of\n"
                   "the folders around DISK (with --json: vmware-snapshots on each link).\n"
                   "\n"
                   "DISK may also name a machine (a folder or a .vmx): then its .vmx, the disks\n"
                   "its slots name and its snapshot tree in short (uid, parent, name, the current\n"
                   "one) are printed; with --json {vm, disks, vmsd, current, snapshots (each\n"
                   "{uid, parent, name, current})}.  'vmdkit snapshot list' gives the whole tree.\n"
                   "\n"
                   "DISK may be FILE.ova, the first disk inside an OVA, or FILE.ova/NAME.vmdk for\n"
                   "another of its disks: the member is read where it lies in the archive, never\n"
                   "copied out, and only read.  A gzip-compressed member cannot be read in place\n"
                   "(vmdkit ova import converts it).\n"
                   "\n"
                   "The disk is opened read-only and nothing is changed.",
    .opts = info_opts,
    .exit_status = "",
    .examples = "vmdkit info disk.vmdk\n"
                "vmdkit info --chain child.vmdk\n"
                "vmdkit info appliance.ova/appliance-disk2.vmdk\n"
                "vmdkit info --json disk.vmdk | jq '.\"virtual-size\"'",
};

/* Host bytes of every distinct file of a link: extents plus a separate descriptor. */
static uint64_t link_host_bytes(const vmdkit_link_info *li)
{
    uint64_t total = 0;
    bool descriptor_counted = li->embedded_descriptor;
    for (size_t i = 0; i < li->n_extents; i++) {
        const vmdkit_extent_info *x = &li->extents[i];
        if (!x->path)
            continue; /* ZERO extents have no file */
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = li->extents[j].path && strcmp(li->extents[j].path, x->path) == 0;
        if (seen)
            continue;
        if (strcmp(x->path, li->path) == 0)
            descriptor_counted = true;
        total += x->file_bytes;
    }
    if (!descriptor_counted)
        total += cli_file_host_bytes(li->path);
    return total;
}

/* Names of the sparse header flag bits, e.g. "newline,redundant". */
static void flag_names(uint32_t flags, char *buf, size_t n)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {0x1, "newline"},        {0x2, "redundant"},   {0x4, "zeroed-grain"},
        {0x10000, "compressed"}, {0x20000, "markers"},
    };
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].bit))
            continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? "," : "", names[i].name);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
}

static void print_extent(size_t i, const vmdkit_extent_info *x)
{
    printf("    [%zu] %s %" PRIu64 " %s", i, x->access ? x->access : "?", x->size_sectors,
           x->type ? x->type : "?");
    if (x->file)
        printf(" \"%s\"", x->file);
    if (x->path && !x->sparse.present) /* FLAT-like lines carry an offset */
        printf(" %" PRIu64, x->offset_sectors);
    if (x->path)
        printf("  allocated %" PRIu64 " bytes, file %" PRIu64 " bytes", x->allocated_bytes,
               x->file_bytes);
    putchar('\n');
    const vmdkit_sparse_facts *s = &x->sparse;
    if (!s->present)
        return;
    char flags[96];
    flag_names(s->flags, flags, sizeof flags);
    printf("        sparse: ");
    if (strcmp(s->magic, "KDMV") != 0)
        printf("%s ", s->magic);
    printf("version %" PRIu32 ", grain %" PRIu64 " sectors, %" PRIu32 " GTEs/GT, flags 0x%" PRIx32,
           s->version, s->grain_sectors, s->gtes_per_gt, s->flags);
    if (flags[0])
        printf(" (%s)", flags);
    printf(", gd %" PRIu64, s->gd_offset_sectors);
    if (s->rgd_offset_sectors)
        printf(", rgd %" PRIu64, s->rgd_offset_sectors);
    printf(", overhead %" PRIu64, s->overhead_sectors);
    if (s->footer)
        printf(", header from footer");
    if (s->unclean_shutdown)
        printf(", unclean shutdown");
    putchar('\n');
}

static void print_link(const vmdkit_link_info *li)
{
    char h[32];
    printf("image: %s\n", li->path);
    printf("format: %s\n", li->raw ? "raw" : "vmdk");
    if (!li->raw && li->create_type)
        printf("create type: %s\n", li->create_type);
    cli_human_size(li->capacity_bytes, h, sizeof h);
    printf("virtual size: %s (%" PRIu64 " bytes)\n", h, li->capacity_bytes);
    cli_human_size(link_host_bytes(li), h, sizeof h);
    printf("disk size: %s\n", h);
    if (!li->raw) {
        printf("CID: %08" PRIx32 "\n", li->cid);
        printf("parent CID: %08" PRIx32 "\n", li->parent_cid);
    }
    if (li->parent_hint)
        printf("parent: %s -> %s\n", li->parent_hint, li->parent_path ? li->parent_path : "?");
    if (li->adapter_type)
        printf("adapter: %s\n", li->adapter_type);
    if (li->geometry.cylinders)
        printf("geometry: %" PRIu64 "/%" PRIu32 "/%" PRIu32 "\n", li->geometry.cylinders,
               li->geometry.heads, li->geometry.sectors);
    if (li->hw_version)
        printf("hardware version: %s\n", li->hw_version);
    if (li->tools_version)
        printf("tools version: %s\n", li->tools_version);
    if (li->uuid)
        printf("uuid: %s\n", li->uuid);
    if (li->long_content_id)
        printf("long content ID: %s\n", li->long_content_id);
    if (li->n_extents) {
        printf("extents:\n");
        for (size_t i = 0; i < li->n_extents; i++)
            print_extent(i, &li->extents[i]);
    }
}

static void print_chain_list(const vmdkit_link_info *links, int n)
{
    printf("chain:\n");
    for (int i = 0; i < n; i++) {
        printf("  %d %s", i, links[i].path);
        if (links[i].raw)
            printf(" (raw)");
        else
            printf(" (CID %08" PRIx32 ")", links[i].cid);
        if (i == 0)
            printf("  <- top");
        putchar('\n');
    }
}

/* A decimal descriptor value as a JSON number, anything else as a string. */
static void json_add_number_text(json_object *o, const char *key, const char *text)
{
    if (!text)
        return;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0)
        json_object_object_add(o, key, json_object_new_int64(v));
    else
        json_object_object_add(o, key, json_object_new_string(text));
}

static json_object *json_extent(const vmdkit_extent_info *x)
{
    json_object *o = json_object_new_object();
    cli_json_add_str(o, "file", x->file);
    cli_json_add_str(o, "path", x->path);
    cli_json_add_str(o, "type", x->type);
    cli_json_add_str(o, "access", x->access);
    cli_json_add_u64(o, "sectors", x->size_sectors);
    cli_json_add_u64(o, "offset", x->offset_sectors);
    cli_json_add_u64(o, "allocated-bytes", x->allocated_bytes);
    cli_json_add_u64(o, "file-bytes", x->file_bytes);
    const vmdkit_sparse_facts *s = &x->sparse;
    if (s->present) {
        json_object *sp = json_object_new_object();
        cli_json_add_str(sp, "magic", s->magic);
        cli_json_add_u64(sp, "version", s->version);
        cli_json_add_u64(sp, "flags", s->flags);
        cli_json_add_u64(sp, "grain-sectors", s->grain_sectors);
        cli_json_add_u64(sp, "gtes-per-gt", s->gtes_per_gt);
        cli_json_add_u64(sp, "gd-offset", s->gd_offset_sectors);
        cli_json_add_u64(sp, "rgd-offset", s->rgd_offset_sectors);
        cli_json_add_u64(sp, "overhead", s->overhead_sectors);
        cli_json_add_u64(sp, "descriptor-offset", s->descriptor_offset_sectors);
        cli_json_add_u64(sp, "descriptor-size", s->descriptor_size_sectors);
        cli_json_add_bool(sp, "compressed", s->compressed);
        cli_json_add_bool(sp, "markers", s->markers);
        cli_json_add_bool(sp, "zeroed-grain", s->zeroed_grain);
        cli_json_add_bool(sp, "unclean-shutdown", s->unclean_shutdown);
        cli_json_add_bool(sp, "footer", s->footer);
        json_object_object_add(o, "sparse", sp);
    }
    return o;
}

/* The snapshots of V that froze link LINK, as a JSON array (NULL: none). */
static json_object *json_snapshots(const vmdkit_vmsd_report *v, unsigned link)
{
    json_object *arr = NULL;
    for (size_t i = 0; v && i < v->n_snapshots; i++) {
        const vmdkit_vmsd_snapshot *s = &v->snapshots[i];
        if (s->link != link)
            continue;
        if (!arr)
            arr = json_object_new_array();
        json_object *o = json_object_new_object();
        cli_json_add_str(o, "name", s->name);
        cli_json_add_u64(o, "uid", s->uid);
        cli_json_add_str(o, "vm", s->vm);
        cli_json_add_str(o, "vmsd", s->vmsd);
        cli_json_add_str(o, "key", s->key);
        json_object_array_add(arr, o);
    }
    return arr;
}

static void print_snapshots(const vmdkit_vmsd_report *v)
{
    if (!v || !v->n_snapshots)
        return;
    printf("VMware snapshots:\n");
    for (size_t i = 0; i < v->n_snapshots; i++) {
        const vmdkit_vmsd_snapshot *s = &v->snapshots[i];
        printf("  \"%s\" (uid %" PRIu32 ") of %s froze link %u %s  [%s %s]\n", s->name, s->uid, s->vm,
               s->link, s->disk, s->vmsd, s->key);
    }
}

static json_object *json_link(const vmdkit_link_info *li, const vmdkit_vmsd_report *v, unsigned link)
{
    json_object *o = json_object_new_object();
    cli_json_add_str(o, "filename", li->path);
    cli_json_add_str(o, "format", li->raw ? "raw" : "vmdk");
    cli_json_add_u64(o, "virtual-size", li->capacity_bytes);
    cli_json_add_u64(o, "actual-size", link_host_bytes(li));
    /* qemu-img's cluster-size of a sparse VMDK: the grain of its first extent */
    if (li->n_extents > 0 && li->extents[0].sparse.present)
        cli_json_add_u64(o, "cluster-size", li->extents[0].sparse.grain_sectors * VMDKIT_SECTOR_SIZE);
    if (!li->raw) {
        cli_json_add_str(o, "create-type", li->create_type);
        cli_json_add_hex32(o, "cid", li->cid);
        cli_json_add_hex32(o, "parent-cid", li->parent_cid);
    }
    cli_json_add_str(o, "parent-hint", li->parent_hint);
    cli_json_add_str(o, "parent-filename", li->parent_path);
    cli_json_add_str(o, "adapter-type", li->adapter_type);
    if (li->geometry.cylinders) {
        json_object *g = json_object_new_object();
        cli_json_add_u64(g, "cylinders", li->geometry.cylinders);
        cli_json_add_u64(g, "heads", li->geometry.heads);
        cli_json_add_u64(g, "sectors", li->geometry.sectors);
        json_object_object_add(o, "geometry", g);
    }
    json_add_number_text(o, "hw-version", li->hw_version);
    json_add_number_text(o, "tools-version", li->tools_version);
    cli_json_add_str(o, "uuid", li->uuid);
    cli_json_add_str(o, "long-content-id", li->long_content_id);
    cli_json_add_bool(o, "embedded-descriptor", li->embedded_descriptor);
    json_object *ext = json_object_new_array();
    for (size_t i = 0; i < li->n_extents; i++)
        json_object_array_add(ext, json_extent(&li->extents[i]));
    json_object_object_add(o, "extents", ext);
    cli_json_add_str(o, "backing-filename", li->parent_hint);
    cli_json_add_str(o, "full-backing-filename", li->parent_path);
    if (li->parent_hint)
        cli_json_add_str(o, "backing-filename-format", "vmdk");
    json_object *snaps = json_snapshots(v, link);
    if (snaps)
        json_object_object_add(o, "vmware-snapshots", snaps);
    return o;
}

static int print_json(const vmdkit_link_info *links, int n, bool chain, const vmdkit_vmsd_report *v)
{
    if (chain) {
        json_object *arr = json_object_new_array();
        for (int i = 0; i < n; i++)
            json_object_array_add(arr, json_link(&links[i], v, (unsigned)i));
        return cli_json_print(arr);
    }
    /* nest each parent inside its child, base first */
    json_object *inner = NULL;
    for (int i = n - 1; i >= 0; i--) {
        json_object *o = json_link(&links[i], v, (unsigned)i);
        if (inner)
            json_object_object_add(o, "backing-image", inner);
        inner = o;
    }
    return cli_json_print(inner);
}

/* A machine: its disks and its snapshot tree in short. */
static int info_vm(const char *vm, bool json)
{
    vmdkit_vmsd_report *v = NULL;
    vmdkit_snapshot_list *l = NULL;
    vmdkit_error err = {0};
    int e = vmdkit_vmsd_report_get(vm, &v, &err);
    if (e >= 0)
        e = vmdkit_vm_snapshot_list(vm, &l, &err);
    if (e < 0) {
        vmdkit_vmsd_report_free(v);
        return cli_fail(e, err.msg);
    }
    int rc = CLI_EXIT_OK;
    if (json) {
        json_object *o = json_object_new_object();
        cli_json_add_str(o, "vm", v->machines[0]);
        json_object *d = json_object_new_array();
        for (size_t i = 0; i < v->n_disks; i++)
            json_object_array_add(d, json_object_new_string(v->disks[i]));
        json_object_object_add(o, "disks", d);
        json_object_object_add(o, "vmsd", l->exists ? json_object_new_string(l->vmsd) : NULL);
        json_object_object_add(o, "current", l->has_current ? json_object_new_uint64(l->current) : NULL);
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < l->n; i++) {
            const vmdkit_snapshot_info *s = &l->snapshots[i];
            json_object *j = json_object_new_object();
            cli_json_add_u64(j, "uid", s->uid);
            json_object_object_add(j, "parent",
                                   s->has_parent ? json_object_new_uint64(s->parent) : NULL);
            json_object_object_add(j, "name", s->name ? json_object_new_string(s->name) : NULL);
            cli_json_add_bool(j, "current", s->current);
            json_object_array_add(a, j);
        }
        json_object_object_add(o, "snapshots", a);
        rc = cli_json_print(o);
    } else {
        printf("vm: %s\n", v->machines[0]);
        printf("disks:\n");
        for (size_t i = 0; i < v->n_disks; i++)
            printf("  %s\n", v->disks[i]);
        if (l->exists && l->n) {
            printf("snapshots (%s):\n", l->vmsd);
            for (size_t i = 0; i < l->n; i++) {
                const vmdkit_snapshot_info *s = &l->snapshots[i];
                printf("  uid %" PRIu32, s->uid);
                if (s->has_parent)
                    printf(", parent %" PRIu32, s->parent);
                printf(": \"%s\"%s\n", s->name ? s->name : "", s->current ? "  <- current" : "");
            }
        } else {
            printf("snapshots: none\n");
        }
    }
    vmdkit_snapshot_list_free(l);
    vmdkit_vmsd_report_free(v);
    return rc;
}

int cli_parse_inspect(const char *name, const char *operand, int argc, char **argv,
                      struct cli_inspect_args *a)
{
    *a = (struct cli_inspect_args){.open_flags = VMDKIT_OPEN_RDONLY};
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, name);
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        if (cli_open_option(c, &a->open_flags))
            continue;
        switch (c) {
        case CLI_INSPECT_JSON:
            a->json = true;
            break;
        case CLI_INSPECT_CHAIN:
            a->chain = true;
            break;
        case 'h':
            return cli_show_help(name);
        default:
            return cli_bad_option(name, argc, argv, c);
        }
    }
    int rc = cli_operands(name, argc, argv, 1, operand);
    if (!rc)
        a->disk = argv[optind];
    return rc;
}

int cmd_info(int argc, char **argv)
{
    struct cli_inspect_args a;
    int rc = cli_parse_inspect("info", "DISK|VM", argc, argv, &a);
    if (rc || !a.disk)
        return rc;
    if (vmdkit_is_vm_path(a.disk))
        return info_vm(a.disk, a.json);

    vmdkit_disk *disk;
    rc = cli_open(a.disk, a.open_flags, CLI_FMT_AUTO, &disk);
    if (rc)
        return rc;
    int n = vmdkit_chain_length(disk);
    vmdkit_link_info *links = calloc(n > 0 ? (size_t)n : 1, sizeof *links);
    int got = 0;
    if (!links) {
        cli_errorf("out of memory");
        rc = CLI_EXIT_IO;
    }
    for (; !rc && got < n; got++) {
        int e = vmdkit_link_info_get(disk, got, &links[got]);
        if (e < 0) {
            rc = cli_fail(e, vmdkit_last_error(disk)->msg);
            break;
        }
    }
    /* the snapshots are an addition: without them the disk is still described */
    vmdkit_vmsd_report *v = NULL;
    vmdkit_error verr = {0};
    if (!rc && vmdkit_vmsd_report_get(a.disk, &v, &verr) < 0)
        fprintf(stderr, "vmdkit info: the VMware snapshots were not read: %s\n", verr.msg);
    if (!rc && a.json) {
        rc = print_json(links, n, a.chain, v);
    } else if (!rc) {
        for (int i = 0; i < (a.chain ? n : 1); i++) {
            if (i)
                putchar('\n');
            print_link(&links[i]);
        }
        if (n > 1) {
            if (a.chain)
                putchar('\n');
            print_chain_list(links, n);
        }
        print_snapshots(v);
    }
    vmdkit_vmsd_report_free(v);
    for (int i = 0; i < got; i++)
        vmdkit_link_info_free(&links[i]);
    free(links);
    int crc = cli_close(disk);
    return rc ? rc : crc;
}
