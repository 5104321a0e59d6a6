/* test_ovf.c - pieces of the OVF code: USTAR headers (base-256 sizes past
 * 8 GiB) and archive listing (GNU long names, pax paths), manifest lines,
 * the .vmx <-> OVF table both ways, and descriptors that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ovf/ovf.h"
#include "vm/vmx.h"

/* ---- tar ---- */

static int tmp_fd(char *path)
{
    strcpy(path, "/tmp/vmdkit-test-ovf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    return fd;
}

static void put_member(int fd, uint64_t *off, const char *name, const char *data, size_t len)
{
    uint8_t h[VK_TAR_BLOCK];
    vk_err e;
    assert_int_equal(vk_tar_header(h, name, len, 0, &e), 0);
    assert_int_equal(pwrite(fd, h, sizeof h, (off_t)*off), (ssize_t)sizeof h);
    assert_int_equal(pwrite(fd, data, len, (off_t)(*off + VK_TAR_BLOCK)), (ssize_t)len);
    *off += VK_TAR_BLOCK + (len + VK_TAR_BLOCK - 1) / VK_TAR_BLOCK * VK_TAR_BLOCK;
}

static void test_tar_roundtrip(void **state)
{
    (void)state;
    char path[64];
    int fd = tmp_fd(path);
    uint64_t off = 0;
    put_member(fd, &off, "a.ovf", "<Envelope/>", 11);
    put_member(fd, &off, "a.mf", "SHA256(a.ovf)= 00\n", 18);
    assert_int_equal(ftruncate(fd, (off_t)(off + 2 * VK_TAR_BLOCK)), 0);
    vk_tar t;
    vk_err e;
    assert_int_equal(vk_tar_list(fd, path, &t, &e), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.m[0].name, "a.ovf");
    assert_int_equal(t.m[0].offset, 512);
    assert_int_equal(t.m[0].size, 11);
    assert_int_equal(t.m[0].kind, VK_TAR_USTAR);
    assert_int_equal(t.m[0].mode, 0644);
    assert_int_equal(t.m[1].offset, 1536);
    assert_false(t.no_end);
    assert_non_null(vk_tar_find(&t, "a.mf"));
    assert_null(vk_tar_find(&t, "b.mf"));
    vk_tar_free(&t);
    assert_true(vk_tar_probe(fd));
    /* a flipped byte breaks the header's checksum */
    uint8_t x = 'b';
    assert_int_equal(pwrite(fd, &x, 1, 0), 1);
    assert_false(vk_tar_probe(fd));
    assert_int_equal(vk_tar_list(fd, path, &t, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "bad checksum"));
    close(fd);
    unlink(path);
}

static void test_tar_big_size(void **state)
{
    (void)state;
    uint8_t h[VK_TAR_BLOCK];
    vk_err e;
    /* 8 GiB - 1 still fits 11 octal digits */
    assert_int_equal(vk_tar_header(h, "d.vmdk", (UINT64_C(1) << 33) - 1, 0, &e), 0);
    assert_memory_equal(h + 124, "77777777777", 11);
    /* beyond: base-256, high bit set, big-endian */
    uint64_t big = (UINT64_C(100) << 30) + 12345;
    assert_int_equal(vk_tar_header(h, "d.vmdk", big, 0, &e), 0);
    assert_int_equal(h[124], 0x80);
    uint64_t v = 0;
    for (int i = 4; i < 12; i++)
        v = v << 8 | h[124 + i];
    assert_true(v == big);
    /* and the reader takes it back, as a size past the end of this file */
    char path[64];
    int fd = tmp_fd(path);
    assert_int_equal(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    assert_int_equal(ftruncate(fd, 4096), 0);
    vk_tar t;
    assert_int_equal(vk_tar_list(fd, path, &t, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "run past the end"));
    close(fd);
    unlink(path);
    /* names longer than USTAR's 100 bytes are refused, not cut */
    char name[102];
    memset(name, 'n', 101);
    name[101] = 0;
    assert_int_equal(vk_tar_header(h, name, 1, 0, &e), VMDKIT_EINVAL);
}

/* A GNU 'L' long name and a pax 'x' path, as other writers make them. */
static void test_tar_long_names(void **state)
{
    (void)state;
    char path[64];
    int fd = tmp_fd(path);
    uint64_t off = 0;
    char long_name[300];
    memset(long_name, 'q', 250);
    strcpy(long_name + 250, ".vmdk");
    uint8_t h[VK_TAR_BLOCK];
    vk_err e;
    /* GNU: a '././@LongLink' member of type 'L' holding the name */
    assert_int_equal(vk_tar_header(h, "././@LongLink", strlen(long_name) + 1, 0, &e), 0);
    h[156] = 'L';
    memcpy(h + 257, "ustar  ", 8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    assert_int_equal(pwrite(fd, h, 512, 0), 512);
    assert_int_equal(pwrite(fd, long_name, strlen(long_name) + 1, 512), (ssize_t)strlen(long_name) + 1);
    off = 1024;
    put_member(fd, &off, "truncated", "data", 4);
    /* pax: "NN path=...\n" */
    char rec[64];
    int n = snprintf(rec, sizeof rec, "xx path=pax-name.ovf\n");
    snprintf(rec, sizeof rec, "%d path=pax-name.ovf\n", n);
    assert_int_equal(vk_tar_header(h, "PaxHeader", strlen(rec), 0, &e), 0);
    h[156] = 'x';
    memset(h + 148, ' ', 8);
    sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    assert_int_equal(pwrite(fd, h, 512, (off_t)off), 512);
    assert_int_equal(pwrite(fd, rec, strlen(rec), (off_t)off + 512), (ssize_t)strlen(rec));
    off += 1024;
    put_member(fd, &off, "short.ovf", "<x/>", 4);
    assert_int_equal(ftruncate(fd, (off_t)(off + 1024)), 0);
    vk_tar t;
    assert_int_equal(vk_tar_list(fd, path, &t, &e), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.m[0].name, long_name);
    assert_true(t.m[0].gnu_longname);
    assert_string_equal(t.m[1].name, "pax-name.ovf");
    assert_true(t.m[1].pax);
    vk_tar_free(&t);
    close(fd);
    unlink(path);
}

/* ---- manifests ---- */

static void test_manifest_lines(void **state)
{
    (void)state;
    char buf[256];
    size_t pos = 0;
    char hex[65];
    memset(hex, 'a', 64);
    hex[64] = 0;
    vk_ovf_mf_line(buf, &pos, VK_ALGO_SHA256, "x.ovf", hex);
    assert_int_equal(pos, vk_ovf_mf_line_len(VK_ALGO_SHA256, "x.ovf"));
    buf[pos] = 0;
    char want[128];
    snprintf(want, sizeof want, "SHA256(x.ovf)= %s\n", hex);
    assert_string_equal(buf, want);

    const char *text =
        "SHA256(a.ovf)= AB12\r\n"                                    /* wrong length: unknown */
        "SHA1 (b.vmdk) = 0123456789012345678901234567890123456789\n" /* --tag form */
        "SHA2-256(c.vmdk)= 0000000000000000000000000000000000000000000000000000000000000000\n"
        "\n"
        "not a line\n"
        "SHA256(d (1).vmdk)= 1111111111111111111111111111111111111111111111111111111111111111";
    vk_mf mf;
    vk_err e;
    assert_int_equal(vk_mf_parse(text, strlen(text), &mf, &e), 0);
    assert_int_equal(mf.n, 4);
    assert_int_equal(mf.n_bad, 1);
    assert_int_equal(mf.bad_lines[0], 5);
    assert_string_equal(mf.v[0].hex, "ab12");
    assert_true(mf.v[0].crlf);
    assert_int_equal(mf.v[0].known, -1);
    assert_true(mf.v[1].blank_before_paren);
    assert_true(mf.v[1].bad_blank);
    assert_int_equal(mf.v[1].known, VK_ALGO_SHA1);
    assert_string_equal(mf.v[2].algo, "SHA2-256");
    assert_int_equal(mf.v[2].known, -1);
    assert_false(mf.v[2].blank_before_paren);
    assert_string_equal(mf.v[3].name, "d (1).vmdk");
    assert_int_equal(mf.v[3].known, VK_ALGO_SHA256);
    vk_mf_free(&mf);

    vk_digest *d;
    assert_int_equal(vk_digest_new(VK_ALGO_SHA256, &d, &e), 0);
    vk_digest_update(d, "abc", 3);
    char out[2 * VK_OVF_MAX_DIGEST + 1];
    vk_digest_finish(d, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* ---- the table ---- */

static void test_table_both_ways(void **state)
{
    (void)state;
    static const char *const scsi[] = {"lsilogic", "lsisas1068", "pvscsi", "buslogic"};
    static const char *const ovf_scsi[] = {"lsilogic", "lsilogicsas", "VirtualSCSI", "buslogic"};
    for (int i = 0; i < 4; i++) {
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_SCSI, scsi[i]);
        assert_non_null(d);
        assert_string_equal(d->subtype, ovf_scsi[i]);
        assert_ptr_equal(vk_ovf_dev_by_ovf(6, ovf_scsi[i]), d);
    }
    static const char *const nic[] = {"e1000", "e1000e", "vmxnet3"};
    static const char *const ovf_nic[] = {"E1000", "E1000e", "VmxNet3"};
    for (int i = 0; i < 3; i++) {
        const vk_ovf_dev *d = vk_ovf_dev_by_vmx(VK_DEV_NIC, nic[i]);
        assert_string_equal(d->subtype, ovf_nic[i]);
        assert_ptr_equal(vk_ovf_dev_by_ovf(10, ovf_nic[i]), d);
    }
    assert_int_equal(vk_ovf_dev_by_ovf(20, "AHCI")->kind, VK_DEV_SATA); /* VirtualBox */
    assert_int_equal(vk_ovf_dev_by_ovf(20, "vmware.nvme.controller")->kind, VK_DEV_NVME);
    assert_int_equal(vk_ovf_dev_by_ovf(20, "vmware.nvme.controller")->min_hw, 13);
    assert_int_equal(vk_ovf_dev_by_ovf(5, "PIIX4")->kind, VK_DEV_IDE);
    assert_int_equal(vk_ovf_dev_by_ovf(35, "ensoniq1371")->kind, VK_DEV_SOUND);
    assert_null(vk_ovf_dev_by_ovf(20, "VirtioSCSI"));
    /* every guestOS row reads back from its vmw:osType as itself, unless
     * an earlier row shares that osType */
    const char *guests[] = {"ubuntu-64", "other4xlinux-64", "windows9-64", "vmkernel8",
                            "rhel6-64",  "debian12-64",     "centos7-64",  "arm-ubuntu-64"};
    for (size_t i = 0; i < sizeof guests / sizeof guests[0]; i++) {
        const vk_ovf_os *os = vk_ovf_os_by_vmx(guests[i]);
        assert_non_null(os);
        assert_ptr_equal(vk_ovf_os_by_vmw(os->vmw), os);
    }
    assert_string_equal(vk_ovf_os_by_vmw("rhel6_64Guest")->vmx, "rhel6-64"); /* COT's ovftool export */
    assert_int_equal(vk_ovf_os_by_vmw("rhel6_64Guest")->cim, 80);
    assert_int_equal(vk_ovf_os_by_vmw("vmkernel8Guest")->cim, 104); /* govmomi's ESX export */
    assert_string_equal(vk_ovf_os_by_cim(94)->vmx, "ubuntu-64");    /* VirtualBox's Ubuntu_64 */
    assert_int_equal(vk_ovf_min_hw_cpus(8), 7);
    assert_int_equal(vk_ovf_min_hw_cpus(9), 8);
    assert_int_equal(vk_ovf_min_hw_cpus(300), 20);
}

/* A .vmx into the model and its .vmx back: the keys the table covers come
 * back as they were. */
static void test_vmx_model_vmx(void **state)
{
    (void)state;
    const char *text =
        "virtualHW.version = \"17\"\nguestOS = \"debian12-64\"\nnumvcpus = \"2\"\n"
        "memsize = \"2048\"\nfirmware = \"efi\"\nscsi0.present = \"TRUE\"\n"
        "scsi0.virtualDev = \"lsisas1068\"\nscsi0:1.present = \"TRUE\"\n"
        "scsi0:1.fileName = \"a.vmdk\"\nethernet2.present = \"TRUE\"\n"
        "ethernet2.virtualDev = \"vmxnet3\"\nethernet2.networkName = \"VM Network\"\n"
        "vcpu.hotadd = \"TRUE\"\nmonitor.phys_bits_used = \"43\"\nsvga.vramSize = \"8388608\"\n";
    vk_vmx *v;
    vk_err e;
    assert_int_equal(vk_vmx_parse("/vm/t.vmx", text, strlen(text), &v, &e), 0);
    vk_ovf_vm vm;
    assert_int_equal(vk_ovf_from_vmx(v, "/vm/t.vmx", true, &vm, &e), 0);
    assert_int_equal(vm.hw_version, 17);
    assert_int_equal(vm.n_disks, 1);
    assert_string_equal(vm.disks[0].source, "/vm/a.vmdk");
    assert_int_equal(vm.disks[0].unit, 1);
    assert_int_equal(vm.n_nics, 1);
    assert_int_equal(vm.nics[0].num, 2);
    assert_true(vm.cfg[VK_CFG_CPU_HOT_ADD]);
    assert_int_equal(vm.n_extra, 0); /* monitor.phys_bits_used is this host's */
    /* hardware version limits */
    assert_int_equal(vk_ovf_check_hw(&vm, 17, "t", &e), 0);
    assert_int_equal(vk_ovf_check_hw(&vm, 6, "t", &e), VMDKIT_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "scsi0 (SCSI lsilogicsas) needs virtual hardware version 7"));
    const char *files[] = {"x.vmdk"};
    char *out;
    size_t len;
    assert_int_equal(vk_ovf_to_vmx(&vm, files, NULL, &out, &len, &e), 0);
    vk_vmx *w;
    assert_int_equal(vk_vmx_parse("/x/x.vmx", out, len, &w, &e), 0);
    static const char *const keys[] = {"virtualHW.version",
                                       "guestOS",
                                       "numvcpus",
                                       "memsize",
                                       "firmware",
                                       "scsi0.virtualDev",
                                       "ethernet2.virtualDev",
                                       "ethernet2.networkName",
                                       "vcpu.hotadd",
                                       "svga.vramSize"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_string_equal(vk_vmx_get(w, keys[i]), vk_vmx_get(v, keys[i]));
    assert_string_equal(vk_vmx_get(w, "scsi0:1.fileName"), "x.vmdk");
    free(out);
    vk_vmx_free(w);
    vk_ovf_vm_free(&vm);
    vk_vmx_free(v);
}

/* ---- hostile descriptors ---- */

static int read_ovf(const char *body, vk_ovf_vm *vm, vk_err *e)
{
    char xml[4096];
    snprintf(xml, sizeof xml,
             "<?xml version=\"1.0\"?>\n<Envelope xmlns=\"" VK_OVF_NS_ENV1
             "\" xmlns:ovf=\"" VK_OVF_NS_ENV1 "\" xmlns:rasd=\"" VK_OVF_NS_RASD "\">%s</Envelope>",
             body);
    return vk_ovf_read_xml("t.ovf", xml, strlen(xml), vm, NULL, e);
}

#define HW                                                                               \
    "<VirtualSystem ovf:id=\"v\"><VirtualHardwareSection>"                               \
    "<Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>" \
    "<rasd:VirtualQuantity>512</rasd:VirtualQuantity></Item>%s</VirtualHardwareSection></VirtualSystem>"

static void test_hostile_descriptors(void **state)
{
    (void)state;
    vk_ovf_vm vm;
    vk_err e;
    char body[2048];
    snprintf(body, sizeof body,
             "<References><File ovf:id=\"f\" ovf:href=\"../../etc/passwd\"/></References>" HW, "");
    assert_int_equal(read_ovf(body, &vm, &e), VMDKIT_EPATH);
    assert_non_null(strstr(e.msg, "not a plain file name"));
    snprintf(body, sizeof body,
             "<References><File ovf:id=\"f\" ovf:href=\"http://x/d.vmdk\"/></References>" HW, "");
    assert_int_equal(read_ovf(body, &vm, &e), VMDKIT_EUNSUPPORTED);
    snprintf(body, sizeof body,
             "<DiskSection><Disk ovf:diskId=\"d\" ovf:capacity=\"18446744073709551615\" "
             "ovf:capacityAllocationUnits=\"byte * 2^20\"/></DiskSection>" HW,
             "");
    assert_int_equal(read_ovf(body, &vm, &e), VMDKIT_ELIMIT);
    snprintf(body, sizeof body, HW, "<Item><rasd:ResourceType>x</rasd:ResourceType></Item>");
    assert_int_equal(read_ovf(body, &vm, &e), VMDKIT_EFORMAT);
    snprintf(body, sizeof body, HW,
             "<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType>"
             "<rasd:HostResource>ovf:/disk/none</rasd:HostResource><rasd:Parent>9</rasd:Parent></Item>");
    assert_int_equal(read_ovf(body, &vm, &e), VMDKIT_EFORMAT);
    assert_non_null(strstr(e.msg, "not in the DiskSection"));
    /* IDE has buses 0 and 1: a third IDE controller without an Address is
     * refused, not numbered 2 (which the writer would write and no reader
     * accept) */
    snprintf(
        body, sizeof body, HW,
        "<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>"
        "<Item><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>"
        "<Item><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>");
    assert_int_equal(read_ovf(body, &vm, &e), VMDKIT_ELIMIT);
    assert_non_null(strstr(e.msg, "Item 5: more than 2 ide controllers"));
    /* a free number below: the one without an Address takes it */
    snprintf(
        body, sizeof body, HW,
        "<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType>"
        "<rasd:Address>1</rasd:Address></Item>"
        "<Item><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceType>5</rasd:ResourceType></Item>");
    assert_int_equal(read_ovf(body, &vm, &e), 0);
    assert_int_equal(vm.n_ctrls, 2);
    assert_int_equal(vm.ctrls[0].num, 1);
    assert_int_equal(vm.ctrls[1].num, 0);
    vk_ovf_vm_free(&vm);
    /* an entity that would read a file is never expanded */
    const char *xxe =
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY s SYSTEM \"file:///etc/passwd\">]>"
        "<Envelope xmlns=\"" VK_OVF_NS_ENV1 "\" xmlns:rasd=\"" VK_OVF_NS_RASD "\">"
        "<VirtualSystem><Name>&s;</Name><VirtualHardwareSection><Item>"
        "<rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>64</rasd:VirtualQuantity>"
        "</Item></VirtualHardwareSection></VirtualSystem></Envelope>";
    int r = vk_ovf_read_xml("x.ovf", xxe, strlen(xxe), &vm, NULL, &e);
    if (r == 0) {
        assert_null(strstr(vm.name, "root:"));
        vk_ovf_vm_free(&vm);
    }
    const char *v09 = "<Envelope xmlns=\"http://www.vmware.com/schema/ovf/1/envelope\"/>";
    assert_int_equal(vk_ovf_read_xml("o.ovf", v09, strlen(v09), &vm, NULL, &e), VMDKIT_EUNSUPPORTED);
    assert_int_equal(vk_ovf_read_xml("n.ovf", "<Envelope", 9, &vm, NULL, &e), VMDKIT_EFORMAT);
    assert_null(strchr(e.msg, '\n'));
    /* units */
    snprintf(body, sizeof body,
             "<References><File ovf:id=\"f\" ovf:href=\"d.vmdk\"/></References>"
             "<DiskSection><Disk ovf:diskId=\"d\" ovf:fileRef=\"f\" ovf:capacity=\"3\" "
             "ovf:capacityAllocationUnits=\"byte * 2^30\"/></DiskSection>" HW,
             "<Item><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>6</rasd:ResourceType></Item>"
             "<Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType>"
             "<rasd:HostResource>ovf:/disk/d</rasd:HostResource><rasd:Parent>2</rasd:Parent></Item>");
    assert_int_equal(read_ovf(body, &vm, &e), 0);
    assert_int_equal(vm.n_disks, 1);
    assert_true(vm.disks[0].capacity_bytes == (UINT64_C(3) << 30));
    assert_int_equal(vm.memory_mib, 512);
    assert_string_equal(vm.ctrls[0].vmx_dev, "lsilogic");
    vk_ovf_vm_free(&vm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar_roundtrip),       cmocka_unit_test(test_tar_big_size),
        cmocka_unit_test(test_tar_long_names),      cmocka_unit_test(test_manifest_lines),
        cmocka_unit_test(test_table_both_ways),     cmocka_unit_test(test_vmx_model_vmx),
        cmocka_unit_test(test_hostile_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
