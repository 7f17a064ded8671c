/*
 * A device as a user of the installed library writes it, including the
 * headers the way SPDK does (<vfio-user/...>) or the way QEMU does
 * ("libvfio-user.h", found through the .pc file's or the subproject's -I).
 */
#include <stdio.h>
#include <string.h>

#ifdef VFU_INCLUDE_PREFIXED
#include <vfio-user/libvfio-user.h>
#include <vfio-user/pci_caps/px.h>
#else
#include "libvfio-user.h"
#include "pci_caps/px.h"
#endif

int
main(int argc, char *argv[])
{
    struct pxcap px;
    vfu_ctx_t *ctx;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[1], 0, NULL, VFU_DEV_TYPE_PCI);
    memset(&px, 0, sizeof(px));
    px.hdr.id = PCI_CAP_ID_EXP;
    px.pxcaps.ver = 2;
    px.pxdcap.flrc = 1;
    if (ctx == NULL ||
        vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, PCI_HEADER_TYPE_NORMAL, 0) < 0 ||
        vfu_pci_add_capability(ctx, 0, 0, &px) <= 0 ||
        vfu_setup_device_dma(ctx, NULL, NULL) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        perror("device set-up");
        return 1;
    }
    vfu_destroy_ctx(ctx);
    printf("device built and realized\n");
    return 0;
}
