/*
 * A device written against libvfio-user 0.2's API, as its own samples are:
 * vfu_setup_device_dma() with max_regions, vfu_sgl_read()/vfu_sgl_write()
 * with flags (VFU_SGL_DIRECT_ACCESS: through the mapping where the client
 * shared the memory), and the calls taken by address.
 *
 *   device-current SOCKET
 *
 * BAR0 registers as in device_older.c, plus 0x30 FLAGS: the flags the
 * copy passes to vfu_sgl_read/write. At most MAX_REGIONS DMA regions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "libvfio-user.h"

#define MAX_REGIONS 3

typedef int (sgl_rw_fn)(vfu_ctx_t *, dma_sg_t *, size_t, void *, int);

/* The 0.2 prototypes, taken by address (no argument count to adapt). */
static sgl_rw_fn *const sgl_read = vfu_sgl_read;
static sgl_rw_fn *const sgl_write = &vfu_sgl_write;

static uint64_t regs[7];
static int nr_regions;
static unsigned char bounce[65536];

static void
dma_register(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    (void)ctx;
    (void)info;
    nr_regions++;
}

static void
dma_unregister(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    (void)ctx;
    (void)info;
    nr_regions--;
}

static int
copy(vfu_ctx_t *ctx)
{
    unsigned char src[64], dst[64];
    size_t len = regs[2];
    int flags = (int)regs[6];

    if (len == 0 || len > sizeof(bounce) ||
        vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)regs[0], len,
                        (dma_sg_t *)src, 1, PROT_READ) != 1 ||
        vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)regs[1], len,
                        (dma_sg_t *)dst, 1, PROT_WRITE) != 1) {
        return EINVAL;
    }
    if (sgl_read(ctx, (dma_sg_t *)src, 1, bounce, flags) < 0 ||
        sgl_write(ctx, (dma_sg_t *)dst, 1, bounce, flags) < 0) {
        return errno;
    }
    return 0;
}

static ssize_t
bar0(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    if (count != 8 || off % 8 != 0 || off >= (loff_t)sizeof(regs)) {
        return -1;
    }
    if (!is_write) {
        regs[5] = (uint64_t)nr_regions;
        memcpy(buf, &regs[off / 8], 8);
    } else if (off == 0x18) {
        regs[4] = (uint64_t)copy(ctx);
    } else {
        memcpy(&regs[off / 8], buf, 8);
    }
    return (ssize_t)count;
}

int
main(int argc, char *argv[])
{
    vfu_ctx_t *ctx;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[1], 0, NULL, VFU_DEV_TYPE_PCI);
    if (ctx == NULL ||
        vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0) {
        perror("vfu_create_ctx");
        return 1;
    }
    vfu_pci_set_id(ctx, 0x1af4, 0x0002, 0, 0);
    if (
        vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, 4096, bar0,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM, NULL, 0, -1,
                         0) < 0 ||
        vfu_setup_device_dma(ctx, MAX_REGIONS, dma_register,
                             dma_unregister) < 0 ||
        vfu_realize_ctx(ctx) < 0 || vfu_attach_ctx(ctx) < 0) {
        perror("device-current");
        return 1;
    }
    while (vfu_run_ctx(ctx) >= 0) {
    }
    vfu_destroy_ctx(ctx);
    return 0;
}
