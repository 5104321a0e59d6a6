/* ovf.h - OVF descriptors and OVA packages: the machine model shared by
 * export, import and lint, and the pieces that work on it.
 *
 *   ovf_map.c     the one table mapping .vmx values <-> OVF values
 *   ovf_vmx.c     .vmx -> model (export), model -> .vmx (import)
 *   ovf_write.c   model -> OVF XML (ovftool's layout)
 *   ovf_read.c    OVF XML -> model (VMware, open-vmdk, COT, osbuild, VirtualBox)
 *   manifest.c    digests and .mf lines
 *   tar.c         USTAR members: headers written, archives listed
 *   stream_read.c a sequential decoder of a streamOptimized member
 *   export.c, import.c, lint.c   the three public operations
 */
#ifndef VK_OVF_H
#define VK_OVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vk.h"

/* Largest OVF descriptor read (bytes): real ones are 5-100 KiB. */
#define VK_OVF_MAX_BYTES (16u << 20)
/* Bounds on what one descriptor may ask for. */
#define VK_OVF_MAX_ITEMS 1024u
#define VK_OVF_MAX_FILES 256u

#define VK_OVF_NS_ENV1 "http://schemas.dmtf.org/ovf/envelope/1"
#define VK_OVF_NS_ENV2 "http://schemas.dmtf.org/ovf/envelope/2"
#define VK_OVF_NS_RASD \
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
#define VK_OVF_NS_VSSD "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
#define VK_OVF_NS_CIM "http://schemas.dmtf.org/wbem/wscim/1/common"
#define VK_OVF_NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define VK_OVF_NS_VMW "http://www.vmware.com/schema/ovf"
#define VK_OVF_FORMAT_STREAM "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

/* ---- the machine model ---- */

enum vk_ovf_bus { VK_BUS_IDE, VK_BUS_SCSI, VK_BUS_SATA, VK_BUS_NVME, VK_BUS_COUNT };

typedef struct vk_ovf_ctrl {
    enum vk_ovf_bus bus;
    unsigned num;        /* scsi0 -> 0 */
    const char *vmx_dev; /* SCSI: scsiN.virtualDev ("lsilogic" ...); else NULL */
    unsigned instance;   /* OVF InstanceID (import: as read; export: assigned) */
} vk_ovf_ctrl;

typedef struct vk_ovf_disk {
    enum vk_ovf_bus bus;
    unsigned ctrl, unit; /* scsi0:1 -> 0, 1 */
    uint64_t capacity_bytes;
    char *source; /* export: the disk's path; import: NULL */
    char *href;   /* the file in the package; NULL: an empty disk */
    char *file_id, *disk_id;
    uint64_t file_size; /* bytes of the file (0 when not stated) */
    bool has_file_size;
    uint64_t populated_bytes;
    bool gzip;    /* File ovf:compression="gzip" */
    char *format; /* ovf:format */
} vk_ovf_disk;

typedef struct vk_ovf_cdrom {
    enum vk_ovf_bus bus;
    unsigned ctrl, unit;
    char *iso_href; /* import: an ISO in the package, else NULL */
} vk_ovf_cdrom;

typedef struct vk_ovf_nic {
    unsigned num;        /* ethernetN */
    const char *vmx_dev; /* "e1000", "e1000e", "vmxnet3", "vlance" */
    char *network;       /* Connection */
    bool start_connected;
} vk_ovf_nic;

/* Typed vmw:Config switches of the VirtualHardwareSection (booleans on
 * both sides); the table in ovf_map.c gives their names. */
enum vk_ovf_cfg_id { VK_CFG_CPU_HOT_ADD, VK_CFG_MEM_HOT_ADD, VK_CFG_SECURE_BOOT, VK_CFG_COUNT };

typedef struct vk_ovf_kv {
    char *key, *value;
} vk_ovf_kv;

typedef struct vk_ovf_vm {
    char *name;
    const char *guest_os;            /* .vmx guestOS id (table entry or ...) */
    char *guest_os_own;              /* ... a value not in the table, kept as read */
    unsigned hw_version;             /* virtualHW.version / vmx-NN */
    unsigned cpus, cores_per_socket; /* cores 0: not stated */
    uint64_t memory_mib;
    bool efi;
    bool cfg[VK_CFG_COUNT];
    bool usb_ehci, usb_xhci, vmci, video, sound;
    const char *sound_dev; /* "hdaudio", "es1371", "sb16" */
    uint64_t vram_bytes;   /* svga.vramSize, 0 when not stated */
    bool enable_3d;
    char *annotation;
    vk_ovf_ctrl *ctrls;
    size_t n_ctrls;
    vk_ovf_disk *disks;
    size_t n_disks;
    vk_ovf_cdrom *cdroms;
    size_t n_cdroms;
    vk_ovf_nic *nics;
    size_t n_nics;
    vk_ovf_kv *extra; /* vmw:ExtraConfig */
    size_t n_extra;
    /* import: what the descriptor holds that the model cannot (for notes) */
    char **notes;
    size_t n_notes;
} vk_ovf_vm;

void vk_ovf_vm_free(vk_ovf_vm *vm);
/* Append one element to a model array (grows by doubling); NULL on ENOMEM. */
void *vk_ovf_grow(void **array, size_t *n, size_t elem, vk_err *e);
int vk_ovf_note(vk_ovf_vm *vm, vk_err *e, const char *fmt, ...) VK_PRINTF(3, 4);
int vk_ovf_add_extra(vk_ovf_vm *vm, const char *key, const char *value, vk_err *e);
vk_ovf_ctrl *vk_ovf_find_ctrl(vk_ovf_vm *vm, enum vk_ovf_bus bus, unsigned num);

/* ---- ovf_map.c: the mapping table ---- */

/* Bus names as in .vmx keys ("scsi", "sata", "ide", "nvme"). */
const char *vk_ovf_bus_vmx(enum vk_ovf_bus bus);
/* "scsi0:1" style key prefix -> bus; -1 when none. */
int vk_ovf_bus_parse(const char *s, size_t len);

/* One row per kind of device: the .vmx value, the OVF ResourceType and
 * ResourceSubType, other OVF spellings accepted on reading, and the lowest
 * virtualHW.version that has it. */
typedef enum vk_ovf_dev_kind {
    VK_DEV_SCSI,
    VK_DEV_SATA,
    VK_DEV_NVME,
    VK_DEV_IDE,
    VK_DEV_NIC,
    VK_DEV_USB,
    VK_DEV_SOUND,
} vk_ovf_dev_kind;

typedef struct vk_ovf_dev {
    vk_ovf_dev_kind kind;
    const char *vmx;     /* scsiN.virtualDev, ethernetN.virtualDev, usb kind, sound.virtualDev */
    unsigned rtype;      /* OVF ResourceType */
    const char *subtype; /* what is written */
    const char *also;    /* other subtypes read as this one, '|' separated, or NULL */
    unsigned min_hw;
    const char *label; /* for ElementName / Description */
} vk_ovf_dev;

/* The row of KIND whose .vmx value is VMX (ASCII case ignored); NULL if none. */
const vk_ovf_dev *vk_ovf_dev_by_vmx(vk_ovf_dev_kind kind, const char *vmx);
/* The row of controller C's model: its virtualDev on SCSI, AHCI on SATA,
 * NVMe, else IDE; NULL if the table has none. */
const vk_ovf_dev *vk_ovf_ctrl_dev(const vk_ovf_ctrl *c);
/* The row of a ResourceType and ResourceSubType (either may be 0/NULL where
 * the table allows it); NULL if none. */
const vk_ovf_dev *vk_ovf_dev_by_ovf(unsigned rtype, const char *subtype);

typedef struct vk_ovf_os {
    const char *vmx;  /* guestOS */
    const char *vmw;  /* vmw:osType */
    unsigned cim;     /* OperatingSystemSection ovf:id (CIM_OperatingSystem OsType) */
    const char *text; /* Description */
} vk_ovf_os;

const vk_ovf_os *vk_ovf_os_by_vmx(const char *guest_os);
const vk_ovf_os *vk_ovf_os_by_vmw(const char *os_type);
const vk_ovf_os *vk_ovf_os_by_cim(unsigned cim);
/* The row for "other" (32-bit) and "other-64". */
const vk_ovf_os *vk_ovf_os_other(bool x64);

/* Lowest virtualHW.version that allows CPUS virtual CPUs / MEMORY_MIB of
 * memory. */
unsigned vk_ovf_min_hw_cpus(unsigned cpus);
unsigned vk_ovf_min_hw_memory(uint64_t memory_mib);
#define VK_OVF_MIN_HW_EFI 7u

/* The vmw:Config key and the .vmx key of each enum vk_ovf_cfg_id, and the
 * lowest virtualHW.version that has it. */
typedef struct vk_ovf_cfg {
    const char *ovf;
    const char *vmx;
    unsigned min_hw;
} vk_ovf_cfg;
extern const vk_ovf_cfg vk_ovf_cfgs[VK_CFG_COUNT];

/* ---- ovf_vmx.c ---- */

/* The machine of the parsed .vmx V at VMX_PATH (disk sources resolved
 * against its folder).  With EXTRA, the keys the model does not cover go
 * to vm->extra, except identity and host paths. */
struct vmdkit_vmx;
int vk_ovf_from_vmx(const struct vmdkit_vmx *v, const char *vmx_path, bool extra, vk_ovf_vm *vm,
                    vk_err *e);
/* The .vmx text for VM, whose disks are named DISK_FILES[i] (NULL: no
 * file) and CD images CD_FILES[i] (NULL: host drive), as VMware writes a new
 * machine.  Caller frees *text. */
int vk_ovf_to_vmx(const vk_ovf_vm *vm, const char *const *disk_files, const char *const *cd_files,
                  char **text, size_t *len, vk_err *e);
/* VMDKIT_EUNSUPPORTED naming the first device or setting VM has that
 * virtualHW.version MAX_HW lacks; 0 when none. */
int vk_ovf_check_hw(const vk_ovf_vm *vm, unsigned max_hw, const char *what, vk_err *e);

/* ---- ovf_write.c / ovf_read.c ---- */

/* The OVF descriptor of VM, as ovftool writes it.  Caller frees *xml. */
int vk_ovf_write_xml(const vk_ovf_vm *vm, char **xml, size_t *len, vk_err *e);

/* What the reader saw beyond the model (for lint). */
typedef struct vk_ovf_facts {
    int version;       /* 1 (envelope/1) or 2 (envelope/2) */
    char *system_type; /* VirtualSystemType as written */
    unsigned max_vmx;  /* highest vmx-NN in it, 0 if none */
    bool virtualbox_family;
    bool ovf2_items;        /* StorageItem / EthernetPortItem */
    char *bad_sata_subtype; /* a ResourceType 20 subtype VMware does not write */
    char **hrefs;           /* every References/File href, in order */
    size_t n_hrefs;
} vk_ovf_facts;
void vk_ovf_facts_free(vk_ovf_facts *f);

/* Parse LEN bytes of OVF XML named NAME into VM (and FACTS, may be NULL). */
int vk_ovf_read_xml(const char *name, const char *xml, size_t len, vk_ovf_vm *vm, vk_ovf_facts *facts,
                    vk_err *e);

/* Is NAME a file name a package may hold: not empty, no '/', '\\', no
 * control character, not "." or "..", not starting with '.', at most 255
 * bytes? */
bool vk_ovf_safe_name(const char *name);

/* ---- manifest.c ---- */

enum vk_ovf_algo { VK_ALGO_SHA1, VK_ALGO_SHA256, VK_ALGO_SHA512, VK_ALGO_COUNT };
#define VK_OVF_MAX_DIGEST 64

const char *vk_ovf_algo_name(enum vk_ovf_algo a); /* "SHA256" */
size_t vk_ovf_algo_len(enum vk_ovf_algo a);       /* digest bytes */

typedef struct vk_digest vk_digest;
int vk_digest_new(enum vk_ovf_algo a, vk_digest **out, vk_err *e);
void vk_digest_update(vk_digest *d, const void *buf, size_t len);
/* Hex digest into HEX (2 * VK_OVF_MAX_DIGEST + 1 bytes); frees D. */
void vk_digest_finish(vk_digest *d, char *hex);
void vk_digest_free(vk_digest *d);

/* Bytes of the manifest line for NAME: "SHA256(NAME)= HEX\n". */
size_t vk_ovf_mf_line_len(enum vk_ovf_algo a, const char *name);
/* Append that line to BUF at *POS (the caller sized BUF). */
void vk_ovf_mf_line(char *buf, size_t *pos, enum vk_ovf_algo a, const char *name, const char *hex);

/* One line of a manifest as read, with what is wrong with its form. */
typedef struct vk_mf_entry {
    size_t line;
    char *algo; /* as spelled ("SHA256", "SHA2-256", "MD5" ...) */
    char *name;
    char *hex;               /* lower case */
    int known;               /* enum vk_ovf_algo, or -1 */
    bool blank_before_paren; /* "SHA256 (name) = hex" (sha256sum --tag) */
    bool bad_blank;          /* not exactly one blank after '=' */
    bool crlf;
} vk_mf_entry;

typedef struct vk_mf {
    vk_mf_entry *v;
    size_t n;
    size_t *bad_lines; /* lines that are no digest line at all */
    size_t n_bad;
} vk_mf;

/* Parse a manifest (at most 1 MiB).  Never fails on content, only on memory. */
int vk_mf_parse(const char *text, size_t len, vk_mf *mf, vk_err *e);
void vk_mf_free(vk_mf *mf);

/* ---- tar.c ---- */

#define VK_TAR_BLOCK 512u

/* A USTAR header for a regular file NAME of SIZE bytes (owner 0/0, mode
 * 0644, mtime MTIME).  Sizes past 8 GiB - 1 use the base-256 form GNU tar,
 * bsdtar and every tar reader of OVA tools accept.  NAME must be at most
 * 100 bytes (VMDKIT_EINVAL otherwise). */
int vk_tar_header(uint8_t hdr[VK_TAR_BLOCK], const char *name, uint64_t size, uint64_t mtime, vk_err *e);

enum vk_tar_kind { VK_TAR_USTAR, VK_TAR_GNU, VK_TAR_V7 };

typedef struct vk_tar_member {
    char *name;
    uint64_t offset; /* of the data */
    uint64_t size;
    char type;             /* typeflag ('0' for files) */
    enum vk_tar_kind kind; /* of its header */
    bool pax;              /* a pax extended header came before it */
    bool gnu_longname;
    bool base256_size;
    unsigned mode, uid, gid;
} vk_tar_member;

typedef struct vk_tar {
    vk_tar_member *m;
    size_t n;
    bool no_end; /* the file ends without the two zero blocks */
} vk_tar;

/* List the members of the tar archive open at FD (PATH for messages).
 * Bounded: at most VK_OVF_MAX_FILES * 4 members, names of 4 KiB. */
int vk_tar_list(int fd, const char *path, vk_tar *t, vk_err *e);
void vk_tar_free(vk_tar *t);
/* The regular-file member named NAME, or NULL. */
const vk_tar_member *vk_tar_find(const vk_tar *t, const char *name);
/* Does the file at FD start like a tar archive (a header whose checksum
 * holds)? */
bool vk_tar_probe(int fd);

/* ---- stream_read.c ---- */

/* A sequential reader of one package file: LEN bytes at OFF of FD,
 * digested as read (DIGEST may be NULL), inflated when GZIP. */
typedef struct vk_member_src vk_member_src;
int vk_member_open(int fd, const char *name, uint64_t off, uint64_t len, bool gzip, vk_digest *digest,
                   vk_member_src **out, vk_err *e);
/* Up to N bytes (inflated when gzip); *GOT 0 at the end. */
int vk_member_read(vk_member_src *s, void *buf, size_t n, size_t *got, vk_err *e);
/* Read (and digest) what is left of the raw bytes. */
int vk_member_drain(vk_member_src *s, vk_err *e);
/* Raw bytes consumed so far. */
uint64_t vk_member_raw_pos(const vk_member_src *s);
void vk_member_close(vk_member_src *s);

/* Receives the grains of a stream in file order: LEN bytes of grain data
 * for the disk at byte OFFSET (never all zeros). */
typedef int (*vk_grain_sink)(void *opaque, uint64_t offset, const uint8_t *data, size_t len, vk_err *e);

typedef struct vk_stream_info {
    uint64_t capacity_bytes;
    uint64_t grain_bytes;
    uint64_t data_offset; /* where the records start (the overhead) */
    bool gd_at_end;       /* the header defers the directory to a footer */
    char *descriptor;     /* the embedded descriptor text (NUL-terminated) or NULL */
    bool eos;             /* ended with an end-of-stream marker */
    bool footer;
    bool ascending; /* grain LBAs strictly ascending */
    uint64_t grains;
} vk_stream_info;

/* Read the KDMV header of a stream from S (its first 512 bytes) and check
 * that it is a streamOptimized one vmdkit can decode in one pass. */
int vk_stream_read_header(vk_member_src *s, const char *name, vk_stream_info *info, vk_err *e);
/* After the header: decode every grain, calling SINK (may be NULL: only
 * walk), up to the end-of-stream marker or the end of the member.
 * PROGRESS (may be NULL) gets the raw bytes consumed. */
int vk_stream_decode(vk_member_src *s, const char *name, vk_stream_info *info, vk_grain_sink sink,
                     void *opaque, int (*progress)(void *opaque, uint64_t raw_done),
                     void *progress_opaque, vk_err *e);
void vk_stream_info_free(vk_stream_info *info);

#endif
