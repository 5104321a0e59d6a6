/* cmd_clone.c - vmdkit clone: linked or full copy of a disk. */
#include <getopt.h>
#include <strings.h>

#include "cli.h"

enum {
    OPT_LINKED = CLI_OPT_LONG,
    OPT_ABSOLUTE,
    OPT_NAME,
    OPT_SNAPSHOT,
    OPT_NO_RECORD,
    OPT_REGISTER,
    OPT_VMWARE_NAMES
};

static const struct cli_opt clone_opts[] = {
    {0, "linked", NULL, "Make a linked clone (deltas) instead of a full copy.", OPT_LINKED},
    {0, "absolute", NULL, "With --linked: store the parents as absolute paths.", OPT_ABSOLUTE,
     CLI_OPT_NEST},
    {0, "snapshot", "NAME|UID",
     "With --linked, of a virtual machine: make the clone from that snapshot of\n"
     "SRC (its UID, else its name in SRC's .vmsd); nothing in SRC's folder is\n"
     "written.",
     OPT_SNAPSHOT, CLI_OPT_BESIDE},
    {0, "no-record", NULL,
     "With --linked, of a virtual machine, without --snapshot: do not record the\n"
     "freeze of SRC as a snapshot in its .vmsd.",
     OPT_NO_RECORD, CLI_OPT_BESIDE},
    {0, "register", NULL,
     "With --linked, of a virtual machine: also record the clone in SRC's .vmsd\n"
     "under the snapshot it is made from (snapshotN.cloneM), as Workstation does.",
     OPT_REGISTER, CLI_OPT_BESIDE},
    {0, "vmware-names", NULL,
     "With --linked, of a virtual machine: name the clone's disks as VMware does,\n"
     "after the disks they are made from (Base-000002.vmdk gives Base-cl1.vmdk),\n"
     "with absolute parent hints.",
     OPT_VMWARE_NAMES, CLI_OPT_BESIDE},
    {'t', "type", "TYPE", "createType of a full clone's disks.", 't', CLI_OPT_OR},
    CLI_OPTS_PROGRESS,
    {0, "name", "NAME", "Virtual machines: the clone's displayName and file names.", OPT_NAME},
    CLI_OPTS_DISK,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_clone_help = {
    .description = "Copy the disk SRC to NEW, or the virtual machine SRC into the new folder NEW.\n"
                   "\n"
                   "Disks.  With --linked, NEW is a delta whose parent is SRC's current top link:\n"
                   "it holds no data, takes milliseconds whatever the disk size, and reads\n"
                   "everything it does not store from SRC.  Its parentFileNameHint is the\n"
                   "normalised path of SRC relative to NEW's folder (e.g.\n"
                   "../Base.vmwarevm/Base.vmdk).  SRC must not be written afterwards (take a\n"
                   "snapshot of it first if it is in use: see vmdkit snapshot).  Without\n"
                   "--linked, NEW is a full, independent copy: the chain is flattened into a disk\n"
                   "of TYPE keeping the adapter type and hardware version of SRC's base.  The\n"
                   "default TYPE is the base's createType when vmdkit writes it in place\n"
                   "(monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat);\n"
                   "a streamOptimized base (an OVA import), a vmfs base or any other gives\n"
                   "monolithicSparse, or twoGbMaxExtentSparse when NEW is inside a .vmwarevm\n"
                   "bundle, as VMware Fusion makes disks.  A full clone is built under hidden\n"
                   "names and appears complete or not at all.\n"
                   "\n"
                   "Virtual machines.  SRC is a .vmwarevm bundle, a VM folder holding one .vmx,\n"
                   "or a .vmx file; it must be shut down.  NEW, a folder that must not exist\n"
                   "(end it in .vmwarevm for a Fusion bundle), receives NAME.vmx, a copy of the\n"
                   "nvram (NAME.nvram) and .vmxf, and one disk per disk of SRC: NAME.vmdk,\n"
                   "NAME-2.vmdk ... in the order of the .vmx.  NAME is --name, or NEW's last\n"
                   "component without .vmwarevm.\n"
                   "\n"
                   "The clone's .vmx keeps every line and comment of SRC's except: displayName\n"
                   "is NAME; disk fileNames, nvram and extendedConfigFile name the clone's files;\n"
                   "uuid.bios, uuid.location, vc.uuid, ethernetN.generatedAddress and\n"
                   "ethernetN.generatedAddressOffset are removed, so VMware gives the clone a new\n"
                   "identity and new MAC addresses; suspend state (checkpoint.vmState*,\n"
                   "suspend.vmState), sched.swap.derivedName and every snapshot.* key are\n"
                   "removed; the .vmsd (snapshot list) is not copied.\n"
                   "\n"
                   "With --linked the source is frozen first: each of its disks gets a new delta\n"
                   "(as vmdkit snapshot VM does) and its .vmx names them, so the links it wrote\n"
                   "to become read-only parents that nothing writes again.  The freeze is\n"
                   "recorded in the source's .vmsd as a snapshot named \"Linked clone NAME\n"
                   "YYYY-MM-DD HH:MM\", so that the Snapshot Manager of Fusion and Workstation\n"
                   "shows what the clones depend on (--no-record: not recorded; a source nothing\n"
                   "wrote since its last recorded freeze adds no entry).  With --snapshot the\n"
                   "clone is made from a snapshot SRC has (taken in VMware or with vmdkit\n"
                   "snapshot): each disk of the clone is a delta of the disk the snapshot froze\n"
                   "for its slot, SRC is not frozen and nothing in its folder is written (a\n"
                   "read-only template stays read-only; SRC may even be running); the clone's\n"
                   ".vmx is SRC's as it is now, and the snapshot's disk slots must be SRC's\n"
                   "slots.  --register also records the clone in SRC's .vmsd under that\n"
                   "snapshot (snapshotN.cloneM = the clone's .vmx, snapshotN.numClones), as\n"
                   "Workstation records its linked clones, so that VMware refuses to delete the\n"
                   "snapshot; vmdkit snapshot delete refuses it either way (exit 7).  The\n"
                   ".vmsd is saved before the clone is built and put back if the clone fails.\n"
                   "The clone's disks are deltas of those parents with relative hints\n"
                   "(../Base.vmwarevm/Base.vmdk); its NAME.vmsd records its origin as\n"
                   "Workstation does (cloneOf0 = the source .vmx's absolute path, numCloneOf,\n"
                   "sentinel0 = its own delta, numSentinels) and its .vmx gets filesearchpath =\n"
                   "\".;<source folder>\".  Nothing else is written in the source's folder; a\n"
                   "source nothing wrote since its last freeze is not frozen again.  Without\n"
                   "--linked every disk is flattened (see above) and the source is only read.\n"
                   "--vmware-names names a linked clone's disks as vmrun clone does, after the\n"
                   "disk each is made from without its snapshot number (Base-000002.vmdk gives\n"
                   "Base-cl1.vmdk, its pieces Base-cl1-s001.vmdk ...), with absolute hints; the\n"
                   "default keeps NAME.vmdk and relative hints, which survive moving the library.\n"
                   "\n"
                   "An nvram or .vmxf outside the source's folder (absolute, .., a symbolic\n"
                   "link) is not copied, with a warning; CD-ROM and floppy images named\n"
                   "relative to the source's folder are named from the clone's.  A disk that\n"
                   "VMware, QEMU or another vmdkit is writing is refused (exit 8).\n"
                   "\n"
                   "The clone is built in a hidden folder next to NEW (.NAME.vmdkit-tmp-XXXXXX),\n"
                   "writable by its owner while it is filled, given the mode of SRC's folder at\n"
                   "the end and renamed to NEW when complete: an interruption never leaves a half\n"
                   "clone under NEW, and the next clone to NEW removes what a killed one left.\n"
                   "Ctrl-C (SIGINT), SIGTERM or SIGHUP during a full clone stops it, removes the\n"
                   "partial copy and ends vmdkit by that signal (status 128+N).  On failure the\n"
                   "freeze of the source is undone.  The clone's .vmx is printed, then (linked)\n"
                   "the disks the source writes to from now on.",
    .opts = clone_opts,
    .options_note = "Only the full clone of a disk takes --allow-external-extents and\n"
                    "the option --allow-absolute-parents: linked clones and virtual machines\n"
                    "refuse extent files outside a descriptor's folder and follow their parent\n"
                    "hints.",
    .exit_status = "5  --snapshot: the snapshot's disk slots are not SRC's slots now\n"
                   "6  --snapshot: SRC has no snapshot with that UID or name\n"
                   "8  the source machine is running or suspended\n"
                   "9  NEW exists; --snapshot: the snapshot names a disk SRC still writes to",
    .examples =
        "vmdkit clone --linked Base.vmwarevm/Base.vmdk Clone.vmwarevm/Clone.vmdk\n"
        "vmdkit clone -t twoGbMaxExtentSparse Base.vmdk Copy.vmdk\n"
        "vmdkit clone --linked ~/VMs/Base.vmwarevm ~/VMs/Test1.vmwarevm\n"
        "vmdkit clone --linked --snapshot 'clean install' --register ~/VMs/Base.vmwarevm ~/VMs/T2.vmwarevm\n"
        "vmdkit clone --name 'Win10 copy' ~/VMs/Win10.vmwarevm ~/VMs/Win10-copy.vmwarevm",
};

/* Full clone of a disk: the library decides type, adapter and hw version. */
static int full_clone(const char *src, const char *dst, int type, enum cli_progress_mode progress,
                      unsigned open_flags)
{
    struct cli_progress pg;
    cli_progress_start(&pg, progress);
    vmdkit_clone_disk_opts o = {
        .struct_size = sizeof o,
        .type = type,
        .progress = cli_progress_cb,
        .progress_opaque = &pg,
        .open_flags = open_flags,
    };
    vmdkit_error err = {0};
    cli_cancel_on_signals();
    int rc = vmdkit_clone_disk(src, dst, &o, &err);
    cli_progress_done(&pg, rc == 0);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}

/* Clone of a whole virtual machine. */
static int vm_clone(const char *src, const char *dst, const vmdkit_vm_clone_opts *o)
{
    vmdkit_vm_clone_result res;
    vmdkit_error err = {0};
    int rc = vmdkit_vm_clone(src, dst, o, &res, &err);
    if (rc < 0)
        return cli_fail(rc, err.msg);
    printf("%s\n", res.vmx);
    for (size_t i = 0; i < res.n_source_deltas; i++)
        printf("source now writes to %s\n", res.source_deltas[i]);
    for (size_t i = 0; i < res.n_warnings; i++)
        cli_errorf("warning: %s", res.warnings[i]);
    vmdkit_vm_clone_result_free(&res);
    return CLI_EXIT_OK;
}

int cmd_clone(int argc, char **argv)
{
    const char *name = NULL, *snapshot = NULL;
    bool linked = false, absolute = false;
    unsigned vm_flags = 0;
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    int type = -1;
    unsigned open_flags = 0;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "clone");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        if (cli_open_option(c, &open_flags))
            continue;
        switch (c) {
        case OPT_LINKED:
            linked = true;
            break;
        case OPT_ABSOLUTE:
            absolute = true;
            break;
        case OPT_NAME:
            name = optarg;
            break;
        case OPT_SNAPSHOT:
            snapshot = optarg;
            break;
        case OPT_NO_RECORD:
            vm_flags |= VMDKIT_VM_CLONE_NO_RECORD;
            break;
        case OPT_REGISTER:
            vm_flags |= VMDKIT_VM_CLONE_REGISTER;
            break;
        case OPT_VMWARE_NAMES:
            vm_flags |= VMDKIT_VM_CLONE_VMWARE_NAMES;
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("clone", "unknown progress format '%s'", optarg);
            break;
        case 't':
            type = vmdkit_create_type_parse(optarg);
            if (type < 0)
                return cli_usage_error("clone", "unknown disk type '%s'", optarg);
            break;
        case 'h':
            return cli_show_help("clone");
        default:
            return cli_bad_option("clone", argc, argv, c);
        }
    }
    if (argc - optind != 2)
        return cli_usage_error("clone", argc - optind < 2 ? "missing SRC or NEW" : "too many arguments");
    const char *src = argv[optind], *dst = argv[optind + 1];
    if (linked && type >= 0)
        return cli_usage_error("clone", "-t applies to full clones only");
    if (absolute && !linked)
        return cli_usage_error("clone", "--absolute applies to linked clones only");
    if ((snapshot || vm_flags) && !linked)
        return cli_usage_error(
            "clone",
            "--snapshot, --no-record, --register and --vmware-names apply to linked clones only");
    if (snapshot && (vm_flags & VMDKIT_VM_CLONE_NO_RECORD))
        return cli_usage_error("clone", "--no-record applies without --snapshot only");
    if ((vm_flags & VMDKIT_VM_CLONE_NO_RECORD) && (vm_flags & VMDKIT_VM_CLONE_REGISTER))
        return cli_usage_error("clone", "--register needs a recorded snapshot: not with --no-record");
    bool vm = vmdkit_is_vm_path(src);
    /* linked clones and machines are opened by the library with its own policy */
    if (open_flags && (linked || vm))
        return cli_usage_error("clone", "%s applies to a full clone of a disk only",
                               open_flags & VMDKIT_OPEN_ALLOW_EXTERNAL ? "--allow-external-extents"
                                                                       : "--allow-absolute-parents");
    if (vm) {
        struct cli_progress pg;
        cli_progress_start(&pg, linked ? CLI_PROGRESS_NONE : progress);
        vmdkit_vm_clone_opts o = {
            .struct_size = sizeof o,
            .linked = linked,
            .absolute_hint = absolute,
            .name = name,
            .type = type,
            .progress = linked ? NULL : cli_progress_cb,
            .progress_opaque = &pg,
            .snapshot = snapshot,
            .flags = vm_flags,
        };
        if (!linked)
            cli_cancel_on_signals();
        int rc = vm_clone(src, dst, &o);
        if (!linked)
            cli_progress_done(&pg, rc == CLI_EXIT_OK);
        return rc;
    }
    if (name)
        return cli_usage_error("clone", "--name applies to virtual machines only");
    if (snapshot || vm_flags)
        return cli_usage_error(
            "clone",
            "--snapshot, --no-record, --register and --vmware-names apply to virtual machines only");
    if (!linked)
        return full_clone(src, dst, type, progress, open_flags);
    vmdkit_error err = {0};
    int rc = vmdkit_create_delta(src, dst, absolute ? VMDKIT_DELTA_ABSOLUTE_HINT : 0, &err);
    return rc < 0 ? cli_fail(rc, err.msg) : CLI_EXIT_OK;
}
