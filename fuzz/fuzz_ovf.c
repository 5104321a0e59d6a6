/* fuzz_ovf.c - the OVF descriptor reader, the manifest parser, what
 * import makes of a descriptor, and the package readers: the tar lister and
 * the one-pass stream decoder (plain, and through gzip when the input
 * starts like gzip).
 *
 * Any input may be refused; an accepted descriptor must give a machine
 * whose OVF (as export writes it) reads back with the same hardware, and
 * whose .vmx parses. */
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ovf/ovf.h"
#include "vm/vmx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a file: tar listing and stream decoding read files. */
static void packages(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-ova", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return;
    }
    vk_err e;
    vk_tar t;
    if (vk_tar_list(fd, "fuzz.ova", &t, &e) == 0)
        vk_tar_free(&t);
    bool gzip = size > 2 && data[0] == 0x1f && data[1] == 0x8b;
    vk_digest *d = NULL;
    vk_member_src *s = NULL;
    vk_stream_info info = {0};
    if (vk_digest_new(VK_ALGO_SHA256, &d, &e) == 0 &&
        vk_member_open(fd, "fuzz.vmdk", 0, size, gzip, d, &s, &e) == 0 &&
        vk_stream_read_header(s, "fuzz.vmdk", &info, &e) == 0 &&
        vk_stream_decode(s, "fuzz.vmdk", &info, NULL, NULL, NULL, NULL, &e) == 0)
        (void)vk_member_drain(s, &e);
    vk_stream_info_free(&info);
    vk_member_close(s);
    vk_digest_free(d);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vk_err e;
    packages(data, size);
    vk_mf mf;
    if (vk_mf_parse((const char *)data, size, &mf, &e) == 0)
        vk_mf_free(&mf);
    vk_ovf_vm vm;
    vk_ovf_facts facts;
    if (vk_ovf_read_xml("fuzz.ovf", (const char *)data, size, &vm, &facts, &e) != 0)
        return 0;
    vk_ovf_facts_free(&facts);
    if (!vm.hw_version)
        vm.hw_version = 14;
    /* export's writer needs ids for every disk and a file size */
    char *xml = NULL;
    size_t len = 0;
    if (vk_ovf_write_xml(&vm, &xml, &len, &e) != 0)
        abort();
    vk_ovf_vm back;
    if (vk_ovf_read_xml("again.ovf", xml, len, &back, NULL, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        abort(); /* our own descriptor must read back */
    }
    if (back.cpus != vm.cpus || back.memory_mib != vm.memory_mib || back.n_disks != vm.n_disks ||
        back.n_nics != vm.n_nics || back.n_ctrls != vm.n_ctrls || back.efi != vm.efi ||
        back.hw_version != vm.hw_version)
        abort(); /* and describe the same hardware */
    free(xml);
    vk_ovf_vm_free(&back);
    const char **files = calloc(vm.n_disks + 1, sizeof *files);
    for (size_t i = 0; files && i < vm.n_disks; i++)
        files[i] = "d.vmdk";
    char *text = NULL;
    if (files && vk_ovf_to_vmx(&vm, files, NULL, &text, &len, &e) == 0) {
        vk_vmx *v;
        if (vk_vmx_parse("fuzz.vmx", text, len, &v, &e) != 0)
            abort(); /* the .vmx import writes must parse */
        vk_vmx_free(v);
        free(text);
    }
    free(files);
    vk_ovf_vm_free(&vm);
    return 0;
}
