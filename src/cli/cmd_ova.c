/* cmd_ova.c - vmdkit ova export|import|check: OVF packages. */
#include <string.h>
#include <strings.h>

#include "cli.h"

enum { OPT_HW_MAX = 256, OPT_CHECKSUM, OPT_EXTRA, OPT_TARGET };

static const struct cli_opt ova_opts[] = {
    {0, "hw-max", "N",
     "export: the highest virtual hardware version the package may ask for\n"
     "(ESXi 6.5: 13, 6.7: 14, 7.0 U2: 19, 8.0 U2: 21).  A machine of a higher\n"
     "version is written as vmx-N when it has nothing version N lacks; a device\n"
     "or setting it lacks is refused, never dropped.",
     OPT_HW_MAX},
    {0, "checksum", "sha256|sha1|sha512",
     "export: the manifest's digest (default sha256; sha1 for vSphere 5.5).", OPT_CHECKSUM},
    {0, "extra-config", NULL,
     "export: .vmx keys without an OVF element become vmw:ExtraConfig (never\n"
     "identity, paths or PCI slots).",
     OPT_EXTRA},
    {'t', "type", "TYPE", "import: createType of the disks (default twoGbMaxExtentSparse).", 't'},
    {0, "target", "esxi-6.5|esxi-7.0|esxi-8.0|workstation|virtualbox|virt-v2v",
     "check: the importer to check for (default esxi-8.0).", OPT_TARGET},
    CLI_OPTS_PROGRESS,
    CLI_OPTS_HELP,
    CLI_OPTS_END,
};

const struct cli_help cmd_ova_help = {
    .description = "OVF packages: move a VMware machine to ESXi, vCenter, Workstation, VirtualBox or\n"
                   "virt-v2v and back.\n"
                   "\n"
                   "export VM OUT.ova|OUT.ovf\n"
                   "    VM is a .vmwarevm bundle, a VM folder or a .vmx, shut down.  OUT.ova is one\n"
                   "    USTAR archive: the descriptor OUT.ovf first, then the manifest OUT.mf, then\n"
                   "    the disks OUT-disk1.vmdk ... (owner 0/0, mode 0644).  OUT.ovf writes the\n"
                   "    same files side by side.  The descriptor is OVF 1.x laid out as VMware's\n"
                   "    ovftool writes it: VirtualSystemType vmx-NN from virtualHW.version, the\n"
                   "    guest OS as vmw:osType and CIM id, Items for the CPUs (and cores per\n"
                   "    socket), memory, IDE, SCSI (lsilogic, lsilogicsas, VirtualSCSI, buslogic),\n"
                   "    SATA and NVMe controllers, disks, CD-ROM drives, network adapters (E1000,\n"
                   "    E1000e, VmxNet3) with their networks, USB, video, VMCI and sound, and\n"
                   "    vmw:Config for the firmware, secure boot and hot add.  The machine's\n"
                   "    identity (uuid.bios, uuid.location, MAC addresses) and host paths are not\n"
                   "    exported.  Each disk's chain is flattened into a streamOptimized VMDK,\n"
                   "    compressed on all CPUs straight into the archive: no temporary copy of a\n"
                   "    disk is made.  The manifest holds one 'SHA256(name)= hex' line per file.\n"
                   "    The package is built under a hidden temporary name and renamed to OUT when\n"
                   "    complete.\n"
                   "\n"
                   "import IN.ova|IN.ovf DIR\n"
                   "    A new VMware machine in the folder DIR (it must not exist; end it in\n"
                   "    .vmwarevm for a Fusion bundle): NAME.vmx as VMware writes a new machine and\n"
                   "    NAME-disk1.vmdk ... of TYPE.  Packages from VMware, open-vmdk, COT, osbuild\n"
                   "    and VirtualBox are read: OVF 1.x and 2.0, the virtualbox-2.2 family (it\n"
                   "    becomes virtualHW.version 14), StorageItem and EthernetPortItem, gzip\n"
                   "    compressed disks, an archive or a folder holding an .ovf.  Each disk is\n"
                   "    decoded from its place in the archive in one pass that also checks its\n"
                   "    manifest digest; every manifest line that parses is checked, and a\n"
                   "    mismatch fails naming the file.  What the package holds that the machine\n"
                   "    cannot (a floppy, a device VMware lacks, ExtraConfig keys) is listed as\n"
                   "    notes on standard error.  The machine is built in a hidden folder beside\n"
                   "    DIR and renamed to DIR when complete: an interrupted import leaves nothing\n"
                   "    under DIR's name.  The new .vmx is printed.\n"
                   "\n"
                   "check IN.ova|IN.ovf\n"
                   "    Lint a package for what importers of the target reject, one finding per\n"
                   "    line ('CODE: FILE: what is wrong: what the importer says'):\n"
                   "      tar-format          a member header that is not USTAR (GNU, pax, v7)\n"
                   "      member-order        the descriptor not first, the manifest not right after\n"
                   "                          it (or last), files out of References order\n"
                   "      extra-member        a file References does not name, a folder\n"
                   "      missing-file        a file References names that is not there\n"
                   "      manifest-syntax     the blank before '(' ('SHA256 (x) = ...', what\n"
                   "                          sha256sum --tag writes), other malformed lines\n"
                   "      manifest-algorithm  OpenSSL 3's 'SHA2-256' label, MD5, unknown ones\n"
                   "      manifest-digest     a digest that does not match, a file not listed\n"
                   "      descriptor          the descriptor does not parse\n"
                   "      hardware-family     vmx-NN above what the target runs\n"
                   "      virtualbox-family   VirtualBox's 'virtualbox-2.2' on a VMware target\n"
                   "      ovf2-items          OVF 2.0 StorageItem/EthernetPortItem on VMware,\n"
                   "                          an envelope/2 descriptor for virt-v2v\n"
                   "      sata-subtype        VirtualBox's 'AHCI' SATA subtype on ESXi\n"
                   "      capacity            ovf:capacity other than the VMDK header's\n"
                   "      stream-eos          no footer or end-of-stream marker\n"
                   "      compressed-disk     ovf:compression=\"gzip\" on a VMware target\n"
                   "      disk-format         not a streamOptimized VMDK\n"
                   "      file-size           File ovf:size other than the file's",
    .opts = ova_opts,
    .options_note = "export takes --hw-max, --checksum and --extra-config; import -t; check --target;\n"
                    "export and import -p.",
    .exit_status = "check: 0 no finding, 1 findings (one per line on standard output)\n"
                   "export: 5 a device the lower --hw-max lacks; 8 the machine runs\n"
                   "import: 4 a digest does not match the manifest, or a malformed package;\n"
                   "        5 something the package asks for that VMware has no equivalent of\n"
                   "9 OUT or DIR exists",
    .examples = "vmdkit ova export ~/Virtual\\ Machines.localized/Ubuntu.vmwarevm Ubuntu.ova\n"
                "vmdkit ova check --target esxi-7.0 Ubuntu.ova\n"
                "vmdkit ova export --hw-max 13 Ubuntu.vmwarevm Ubuntu-esxi65.ova\n"
                "vmdkit ova import appliance.ova ~/VMs/Appliance.vmwarevm",
};

static void print_finding(void *opaque, const char *code, const char *message)
{
    (void)opaque;
    printf("%s: %s\n", code, message);
}

int cmd_ova(int argc, char **argv)
{
    long hw_max = 0;
    int checksum = VMDKIT_OVA_SHA256, type = -1;
    bool extra = false, hw_given = false, sum_given = false;
    const char *target = NULL;
    enum cli_progress_mode progress = CLI_PROGRESS_NONE;
    struct cli_getopt g;
    int c;
    cli_getopt_init(&g, "ova");
    while ((c = cli_getopt(&g, argc, argv)) != -1) {
        switch (c) {
        case OPT_HW_MAX:
            if (!cli_parse_int(optarg, 4, 99, &hw_max))
                return cli_usage_error("ova", "--hw-max: '%s' is not a hardware version (4..99)",
                                       optarg);
            hw_given = true;
            break;
        case OPT_CHECKSUM:
            if (strcasecmp(optarg, "sha256") == 0)
                checksum = VMDKIT_OVA_SHA256;
            else if (strcasecmp(optarg, "sha1") == 0)
                checksum = VMDKIT_OVA_SHA1;
            else if (strcasecmp(optarg, "sha512") == 0)
                checksum = VMDKIT_OVA_SHA512;
            else
                return cli_usage_error("ova", "--checksum: '%s' is not sha256, sha1 or sha512", optarg);
            sum_given = true;
            break;
        case OPT_EXTRA:
            extra = true;
            break;
        case OPT_TARGET:
            target = optarg;
            break;
        case 't':
            type = vmdkit_create_type_parse(optarg);
            if (type < 0)
                return cli_usage_error("ova", "unknown disk type '%s'", optarg);
            break;
        case 'p':
            if (!cli_parse_progress(optarg, &progress))
                return cli_usage_error("ova", "unknown progress format '%s'", optarg);
            break;
        case 'h':
            return cli_show_help("ova");
        default:
            return cli_bad_option("ova", argc, argv, c);
        }
    }
    /* the first operand says what to do (options may come before or after it) */
    if (optind >= argc)
        return cli_usage_error("ova", "missing export, import or check");
    const char *sub = argv[optind++];
    bool exp = strcmp(sub, "export") == 0, imp = strcmp(sub, "import") == 0,
         chk = strcmp(sub, "check") == 0;
    if (!exp && !imp && !chk)
        return cli_usage_error("ova", "'%s' is not export, import or check", sub);
    if (!exp && (hw_given || sum_given || extra))
        return cli_usage_error("ova", "--hw-max, --checksum and --extra-config apply to export");
    if (!imp && type >= 0)
        return cli_usage_error("ova", "-t applies to import");
    if (!chk && target)
        return cli_usage_error("ova", "--target applies to check");
    if (chk && progress != CLI_PROGRESS_NONE)
        return cli_usage_error("ova", "-p applies to export and import");
    int rc = cli_operands("ova", argc, argv, chk ? 1 : 2, exp ? "VM or OUT" : imp ? "IN or DIR" : "IN");
    if (rc)
        return rc;
    vmdkit_error err = {0};
    if (chk) {
        vmdkit_ova_check_opts o = {.struct_size = sizeof o, .target = target};
        size_t n = 0;
        int r = vmdkit_ova_check(argv[optind], &o, print_finding, NULL, &n, &err);
        if (r < 0)
            return cli_fail(r, err.msg);
        return n ? CLI_EXIT_DIFFERENT : CLI_EXIT_OK;
    }
    struct cli_progress pg;
    cli_progress_start(&pg, progress);
    int r;
    if (exp) {
        vmdkit_ova_export_opts o = {.struct_size = sizeof o,
                                    .hw_max = (int)hw_max,
                                    .checksum = checksum,
                                    .extra_config = extra,
                                    .progress = cli_progress_cb,
                                    .progress_opaque = &pg};
        r = vmdkit_ova_export(argv[optind], argv[optind + 1], &o, &err);
        cli_progress_done(&pg, r == 0);
        if (r < 0)
            return cli_fail(r, err.msg);
        printf("%s\n", argv[optind + 1]);
        return CLI_EXIT_OK;
    }
    vmdkit_ova_import_opts o = {
        .struct_size = sizeof o, .type = type, .progress = cli_progress_cb, .progress_opaque = &pg};
    vmdkit_ova_import_result res;
    r = vmdkit_ova_import(argv[optind], argv[optind + 1], &o, &res, &err);
    cli_progress_done(&pg, r == 0);
    if (r < 0)
        return cli_fail(r, err.msg);
    for (size_t i = 0; i < res.n_notes; i++)
        cli_errorf("note: %s", res.notes[i]);
    printf("%s\n", res.vmx);
    vmdkit_ova_import_result_free(&res);
    return CLI_EXIT_OK;
}
