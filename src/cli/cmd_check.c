/* cmd_check.c - vmdkit check: verify a disk's metadata and, with --repair,
 * fix what can be fixed without guessing.  Exit codes follow qemu-img
 * check, not the table the other commands share. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"

/* qemu-img check's exit codes. */
enum {
    CHECK_EXIT_CLEAN = 0,
    CHECK_EXIT_FAILED = 1, /* the check could not be completed */
    CHECK_EXIT_CORRUPT = 2,
    CHECK_EXIT_LEAKS = 3, /* leaked space (or stale redundant entries) only */
};

enum { OPT_JSON = CLI_OPT_LONG, OPT_REPAIR };

static const struct cli_opt check_opts[] = {
    {0, "json", NULL,
     "Print one JSON object: filename, format (\"vmdk\"), check-errors (1 when the\n"
     "check could not be completed), corruptions, leaks (leaked grains; a partial\n"
     "one counts), leaked-bytes, stale, unclean-shutdown, incomplete, findings\n"
     "(each {kind, file, message, offset, after-repair}; kind is corrupt, leak,\n"
     "stale, info, repaired or unrepaired; offset is a byte offset in file, or\n"
     "null), findings-dropped, backup (path or null), vmsd-findings and\n"
     "vmsd-history-lost (counts of the VMware snapshot findings, whose kind is\n"
     "vmsd or vmsd-history-lost and which carry vmsd-kind: missing-disk,\n"
     "bad-current, unrecorded-deltas or orphan-clone); with --repair also\n"
     "corruptions-fixed, leaks-fixed, stale-fixed, repaired, unrepaired and\n"
     "unclean-shutdown-cleared.\n"
     "Names follow 'qemu-img check --output=json' where they mean the same.",
     OPT_JSON},
    {0, "repair", NULL,
     "Fix, in the top link only, what can be fixed without guessing: a damaged\n"
     "grain table or directory entry from its sound redundant copy or the reverse\n"
     "(two copies that both look sound and differ are left alone, unless the\n"
     "unclean-shutdown flag says an interrupted write left the redundant one\n"
     "stale); leaked space at the end of a file (cut, when that removes at most\n"
     "1 GiB); extent sizes in the descriptor that disagree with the sparse\n"
     "headers of the files when the other extents and the parent confirm the\n"
     "headers; then the unclean-shutdown flag, once no corruption remains.\n"
     "Every change is printed.  Before the first one, all bytes to be overwritten\n"
     "or cut are saved to DISK.vmdkit-repair-YYYYmmddTHHMMSS.bak beside the disk\n"
     "(records \"file SIZE LEN\" and \"region OFFSET LENGTH LEN\" with the path and\n"
     "the old bytes; undo them from the last to the first).  Writes go in\n"
     "crash-safe order: tables, directories, descriptor, truncation, header.  The\n"
     "disk is then checked again; what is left is printed after \"Remaining after\n"
     "the repair\".  Refused while VMware holds the disk (a .lck folder exists)\n"
     "or another program has it open for writing.",
     OPT_REPAIR},
    CLI_OPTS_DISK,
    CLI_OPTS_PROGRESS,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_check_help = {
    .description = "Verify every structure of DISK and of its parent chain, reading them directly\n"
                   "(an image too damaged to open is still examined):\n"
                   "  - sparse headers: fields, flags, the unclean-shutdown flag;\n"
                   "  - the descriptor against its extents: files present, extent sizes against\n"
                   "    the files and the sparse headers, createType against the extent types;\n"
                   "  - the grain directory against its redundant copy (entry by entry) and each\n"
                   "    grain table against its redundant copy (byte for byte);\n"
                   "  - grains and tables inside the file, clear of the metadata, none used twice;\n"
                   "  - leaked space: grains of a file that no grain table references;\n"
                   "  - streamOptimized files: the marker sequence (grain LBAs ascending and\n"
                   "    matching the grain tables, compressed grains that inflate to whole grains,\n"
                   "    table markers, a footer equal to the header but for gdOffset, end-of-stream\n"
                   "    marker last);\n"
                   "  - ESX COWD redo logs: header, tables inside the file;\n"
                   "  - for a chain: every link's parentCID against its parent's CID, and the\n"
                   "    capacities.\n"
                   "Each finding is printed on one line: ERROR (corruption), Leaked (space nothing\n"
                   "references), Stale (a redundant copy an interrupted write left behind while the\n"
                   "unclean-shutdown flag is set; the data is intact), Info, Repaired, Not repaired.\n"
                   "The unclean-shutdown flag alone is reported but is not corruption.\n"
                   "\n"
                   "Then the VMware bookkeeping of the machines of DISK (those running on it and\n"
                   "those whose .vmx lies in its folder), from the same model and rules as\n"
                   "'vmdkit tree': a .vmsd that does not parse or whose snapshot.current is no\n"
                   "entry, a snapshot naming a disk that is not there, a machine running on\n"
                   "deltas no snapshot accounts for, a linked clone of a disk no snapshot of its\n"
                   "source records (a deleted snapshot).  Each is printed as a \"VMware:\" line;\n"
                   "they are not errors of the image and --repair leaves them alone.\n"
                   "\n"
                   "DISK may also name a machine (a folder or a .vmx): each disk its slots name\n"
                   "is checked in turn (\"== DISK\" before each), then the machine's .vmsd once;\n"
                   "the exit code is the worst of them (1, then 2, then 3).  --repair takes a\n"
                   "disk.  With --json: {vm, disks (one object per disk, as above), findings\n"
                   "(the .vmsd's), vmsd-findings, vmsd-history-lost}.\n"
                   "Without --repair no file is modified; files are opened read-only with shared\n"
                   "locks, so a disk that a vmdkit writer holds is refused.  With -p the check\n"
                   "is reported, a repair's re-check is not.",
    .opts = check_opts,
    .exit_status =
        "vmdkit check uses the exit codes of 'qemu-img check', so scripts port over;\n"
        "they replace the table the other commands share.\n"
        "\n"
        "0  no problem found (after --repair: everything found was repaired)\n"
        "1  the check could not be completed: the disk or a file is missing or\n"
        "   unreadable, DISK is a pipe or \"-\", an I/O error, a lock held by another\n"
        "   program, an extent outside the folder, --repair of one piece of a split\n"
        "   disk (repair the disk through its descriptor), or a bad command line\n"
        "2  corruption found (after --repair: corruption remains)\n"
        "3  only leaked space (or stale entries an interrupted update left) found, no corruption\n"
        "\n"
        "A file that exists but is not a valid disk is corruption (2).\n"
        "VMware snapshot findings leave the code as the image's structures set it,\n"
        "except a snapshot naming a disk that is not there: that snapshot's history\n"
        "is lost, and the code is 2 (\"VMware, history lost:\").",
    .examples = "vmdkit check disk.vmdk\n"
                "vmdkit check --json child.vmdk | jq '.corruptions'\n"
                "vmdkit check --repair disk.vmdk",
    .own_exit_status = true,
};

struct out {
    bool json;
    json_object *findings;
    bool remaining_shown;
    uint64_t printed;
};

static const char *kind_json(int kind)
{
    static const char *const names[] = {"corrupt", "leak", "stale", "info", "repaired", "unrepaired"};
    return kind >= 0 && kind <= VMDKIT_FIND_UNREPAIRED ? names[kind] : "info";
}

static const char *kind_human(int kind)
{
    static const char *const names[] = {"ERROR", "Leaked", "Stale", "Info", "Repaired", "Not repaired"};
    return kind >= 0 && kind <= VMDKIT_FIND_UNREPAIRED ? names[kind] : "Info";
}

static void on_finding(void *opaque, const vmdkit_check_finding *f)
{
    struct out *o = opaque;
    if (o->json) {
        json_object *j = json_object_new_object();
        cli_json_add_str(j, "kind", kind_json(f->kind));
        cli_json_add_str(j, "file", f->file);
        cli_json_add_str(j, "message", f->message);
        json_object_object_add(
            j, "offset", f->offset == VMDKIT_CHECK_NO_OFFSET ? NULL : json_object_new_uint64(f->offset));
        cli_json_add_bool(j, "after-repair", f->after_repair);
        json_object_array_add(o->findings, j);
        return;
    }
    if (f->after_repair && !o->remaining_shown) {
        printf("\nRemaining after the repair:\n");
        o->remaining_shown = true;
    }
    printf("%s: %s\n", kind_human(f->kind), f->message);
    o->printed++;
}

static int exit_code(const vmdkit_check_result *r)
{
    if (r->corruptions)
        return CHECK_EXIT_CORRUPT;
    if (r->leaks || r->stale)
        return CHECK_EXIT_LEAKS;
    return CHECK_EXIT_CLEAN;
}

static void print_summary(const vmdkit_check_result *r, bool repair, bool after_findings)
{
    if (repair && (r->corruptions_fixed || r->leaks_fixed || r->stale_fixed || r->repaired)) {
        printf("\nThe following inconsistencies were found and repaired:\n");
        printf("    %" PRIu64 " leaked clusters\n", r->leaks_fixed);
        printf("    %" PRIu64 " corruptions\n", r->corruptions_fixed);
        printf("    %" PRIu64 " stale redundant entries\n", r->stale_fixed);
        printf("(%" PRIu64 " changes made; the image was checked again)\n", r->repaired);
    }
    if (after_findings)
        putchar('\n');
    if (!r->corruptions && !r->leaks && !r->stale)
        printf("No errors were found on the image.\n");
    if (r->corruptions)
        printf("%" PRIu64 " errors were found on the image.\n"
               "Data may be corrupted, or further writes to the image may corrupt it.\n",
               r->corruptions);
    if (r->leaks)
        printf("%s%" PRIu64 " leaked clusters were found on the image (%" PRIu64 " bytes).\n"
               "This means waste of disk space, but no harm to data.\n",
               r->corruptions ? "\n" : "", r->leaks, r->leaked_bytes);
    if (r->stale)
        printf(
            "%s%" PRIu64 " stale entries (redundant tables, extent sizes) were found on the image.\n"
            "An interrupted write left them; the data is intact. 'vmdkit check --repair' updates them.\n",
            r->corruptions || r->leaks ? "\n" : "", r->stale);
    /* the repair clears the flag only in DISK itself, never in a parent */
    if (r->unclean_shutdown && r->unclean_shutdown_cleared && r->unclean_shutdown_left)
        printf("The unclean-shutdown flag was cleared in the disk itself; it is still set in a parent,\n"
               "which the repair does not change.\n");
    else if (r->unclean_shutdown && r->unclean_shutdown_cleared)
        printf("The unclean-shutdown flag was set and is cleared.\n");
    else if (r->unclean_shutdown)
        printf("The unclean-shutdown flag is set.\n");
    if (r->incomplete)
        printf("Some parts of the image could not be checked (see the Info lines).\n");
    if (r->findings_dropped)
        printf("%" PRIu64 " more findings were not listed.\n", r->findings_dropped);
    if (r->backup_path[0])
        printf("The overwritten metadata was saved to %s\n", r->backup_path);
}

static const char *vmsd_kind_json(int kind)
{
    static const char *const names[] = {"missing-disk", "bad-current", "unrecorded-deltas",
                                        "orphan-clone"};
    return kind >= 0 && kind <= VMDKIT_VMSD_ORPHAN_CLONE ? names[kind] : "other";
}

/* Is the finding F a loss of the machine's history (see the exit status)? */
static bool vmsd_loss(const vmdkit_vmsd_finding *f) { return f->kind == VMDKIT_VMSD_MISSING_DISK; }

/* The .vmsd findings of the machines of PATH, as findings of their own. */
static size_t report_vmsd(struct out *o, const vmdkit_vmsd_report *v)
{
    size_t losses = 0;
    for (size_t i = 0; v && i < v->n_findings; i++) {
        const vmdkit_vmsd_finding *f = &v->findings[i];
        bool loss = vmsd_loss(f);
        losses += loss;
        if (!o->json) {
            printf("%s: %s: %s\n", loss ? "VMware, history lost" : "VMware", f->file, f->message);
            o->printed++;
            continue;
        }
        json_object *j = json_object_new_object();
        cli_json_add_str(j, "kind", loss ? "vmsd-history-lost" : "vmsd");
        cli_json_add_str(j, "vmsd-kind", vmsd_kind_json(f->kind));
        cli_json_add_str(j, "file", f->file);
        cli_json_add_str(j, "message", f->message);
        json_object_object_add(j, "offset", NULL);
        cli_json_add_bool(j, "after-repair", false);
        json_object_array_add(o->findings, j);
    }
    return losses;
}

static json_object *build_json(struct out *o, const char *path, const vmdkit_check_result *r,
                               bool repair, const vmdkit_error *err, bool failed,
                               const vmdkit_vmsd_report *v, size_t losses)
{
    json_object *j = json_object_new_object();
    cli_json_add_str(j, "filename", path);
    cli_json_add_str(j, "format", "vmdk");
    cli_json_add_u64(j, "check-errors", failed ? 1 : 0);
    if (failed)
        cli_json_add_str(j, "error", err->msg);
    cli_json_add_u64(j, "corruptions", r->corruptions);
    cli_json_add_u64(j, "leaks", r->leaks);
    cli_json_add_u64(j, "leaked-bytes", r->leaked_bytes);
    cli_json_add_u64(j, "stale", r->stale);
    if (repair) {
        cli_json_add_u64(j, "corruptions-fixed", r->corruptions_fixed);
        cli_json_add_u64(j, "leaks-fixed", r->leaks_fixed);
        cli_json_add_u64(j, "stale-fixed", r->stale_fixed);
        cli_json_add_u64(j, "repaired", r->repaired);
        cli_json_add_u64(j, "unrepaired", r->unrepaired);
        cli_json_add_bool(j, "unclean-shutdown-cleared", r->unclean_shutdown_cleared);
    }
    cli_json_add_bool(j, "unclean-shutdown", r->unclean_shutdown);
    cli_json_add_bool(j, "incomplete", r->incomplete);
    json_object_object_add(j, "findings", o->findings);
    o->findings = NULL;
    cli_json_add_u64(j, "findings-dropped", r->findings_dropped);
    cli_json_add_u64(j, "vmsd-findings", v ? v->n_findings : 0);
    cli_json_add_u64(j, "vmsd-history-lost", losses);
    json_object_object_add(j, "backup",
                           r->backup_path[0] ? json_object_new_string(r->backup_path) : NULL);
    return j;
}

/*
 * Check the disk PATH; with WITH_VMSD also the .vmsd of its machines.  With
 * JSON and OBJ the result object is given in *OBJ instead of printed.
 */
static int check_disk(const char *path, unsigned flags, enum cli_progress_mode progress, bool json,
                      bool with_vmsd, json_object **obj)
{
    struct out o = {.json = json};
    bool repair = (flags & VMDKIT_CHECK_REPAIR) != 0;
    if (o.json && !(o.findings = json_object_new_array())) {
        cli_errorf("out of memory");
        return CHECK_EXIT_FAILED;
    }
    vmdkit_check_result res;
    vmdkit_error err = {0};
    struct cli_progress pg;
    cli_progress_start(&pg, progress);
    vmdkit_check_opts co = {.struct_size = sizeof co,
                            .flags = flags,
                            .on_finding = on_finding,
                            .finding_opaque = &o,
                            .progress = pg.enabled ? cli_progress_cb : NULL,
                            .progress_opaque = &pg};
    int rc = vmdkit_check(path, &co, &res, &err);
    cli_progress_done(&pg, rc == 0);
    int code = rc < 0 ? CHECK_EXIT_FAILED : exit_code(&res);
    vmdkit_vmsd_report *v = NULL;
    size_t losses = 0;
    if (rc == 0 && with_vmsd) {
        vmdkit_error verr = {0};
        /* the image's own check stands; the bookkeeping is an addition */
        if (vmdkit_vmsd_report_get(path, &v, &verr) < 0)
            fprintf(stderr, "vmdkit check: the VMware snapshots were not checked: %s\n", verr.msg);
        losses = report_vmsd(&o, v);
        if (losses && code != CHECK_EXIT_FAILED)
            code = CHECK_EXIT_CORRUPT;
    }
    if (o.json) {
        json_object *j = build_json(&o, path, &res, repair, &err, rc < 0, v, losses);
        if (obj)
            *obj = j;
        else if (cli_json_print(j) != CLI_EXIT_OK)
            code = CHECK_EXIT_FAILED;
    } else if (rc == 0) {
        print_summary(&res, repair, o.printed > 0);
        if (v && v->n_findings)
            printf("%zu finding(s) about the machine's VMware snapshots (.vmsd)%s.\n", v->n_findings,
                   losses ? ": a snapshot's history is lost" : "; they are not errors of the image");
    } else if (res.backup_path[0]) {
        printf("The overwritten metadata was saved to %s\n", res.backup_path);
    }
    if (rc < 0)
        cli_errorf("%s", err.msg[0] ? err.msg : vmdkit_errcode_name(rc));
    json_object_put(o.findings);
    vmdkit_vmsd_report_free(v);
    return code;
}

/* The worse of two exit codes: could not check, corrupt, leaks, clean. */
static int worse(int a, int b)
{
    static const int rank[] = {[CHECK_EXIT_CLEAN] = 0,
                               [CHECK_EXIT_LEAKS] = 1,
                               [CHECK_EXIT_CORRUPT] = 2,
                               [CHECK_EXIT_FAILED] = 3};
    return rank[a] >= rank[b] ? a : b;
}

/* Every disk of the machine VM, then its .vmsd findings once. */
static int check_vm(const char *vm, unsigned flags, enum cli_progress_mode progress, bool json)
{
    vmdkit_vmsd_report *v = NULL;
    vmdkit_error err = {0};
    if (vmdkit_vmsd_report_get(vm, &v, &err) < 0) {
        cli_errorf("%s", err.msg);
        return CHECK_EXIT_FAILED;
    }
    struct out o = {.json = json, .findings = json ? json_object_new_array() : NULL};
    json_object *disks = json ? json_object_new_array() : NULL;
    int code = CHECK_EXIT_CLEAN;
    for (size_t i = 0; i < v->n_disks; i++) {
        json_object *one = NULL;
        if (!json)
            printf("%s== %s\n", i ? "\n" : "", v->disks[i]);
        code = worse(code, check_disk(v->disks[i], flags, progress, json, false, json ? &one : NULL));
        if (one)
            json_object_array_add(disks, one);
    }
    if (!json && v->n_findings)
        printf("\n== %s\n", v->machines[0]);
    size_t losses = report_vmsd(&o, v);
    if (losses)
        code = worse(code, CHECK_EXIT_CORRUPT);
    if (json) {
        json_object *j = json_object_new_object();
        cli_json_add_str(j, "vm", v->machines[0]);
        json_object_object_add(j, "disks", disks);
        json_object_object_add(j, "findings", o.findings);
        cli_json_add_u64(j, "vmsd-findings", v->n_findings);
        cli_json_add_u64(j, "vmsd-history-lost", losses);
        if (cli_json_print(j) != CLI_EXIT_OK)
            code = CHECK_EXIT_FAILED;
    } else if (v->n_findings) {
        printf("%zu finding(s) about the machine's VMware snapshots (.vmsd)%s.\n", v->n_findings,
               losses ? ": a snapshot's history is lost" : "; they are not errors of the images");
    }
    vmdkit_vmsd_report_free(v);
    return code;
}

int cmd_check(int argc, char **argv)
{
    bool json = false;
    unsigned flags = 0;
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "check");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress)) {
                cli_usage_error("check", "unknown progress format '%s'", optarg);
                return CHECK_EXIT_FAILED;
            }
            break;
        case OPT_REPAIR:
            flags |= VMDKIT_CHECK_REPAIR;
            break;
        case CLI_OPT_ALLOW_EXTERNAL:
            flags |= VMDKIT_CHECK_ALLOW_EXTERNAL;
            break;
        case CLI_OPT_ALLOW_ABSOLUTE_PARENTS:
            flags |= VMDKIT_CHECK_ALLOW_ABSOLUTE_PARENTS;
            break;
        case 'h':
            cli_show_help("check");
            return CHECK_EXIT_CLEAN;
        default:
            cli_bad_option("check", argc, argv, c);
            return CHECK_EXIT_FAILED;
        }
    }
    if (cli_operands("check", argc, argv, 1, "DISK|VM"))
        return CHECK_EXIT_FAILED; /* qemu-img check's code for "could not check" */
    const char *path = argv[optind];
    if (!cli_path_usable(path, false))
        return CHECK_EXIT_FAILED;
    if (vmdkit_is_vm_path(path))
        return (flags & VMDKIT_CHECK_REPAIR)
                   ? (cli_errorf("check --repair takes a disk, not a machine: %s", path),
                      CHECK_EXIT_FAILED)
                   : check_vm(path, flags, progress, json);
    return check_disk(path, flags, progress, json, true, NULL);
}
