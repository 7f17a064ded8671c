/*
 * The smallest useful device: a PCI function with one 4 KiB memory BAR whose
 * bytes the client can read and write by message. It serves one client and
 * exits when that client leaves.
 *
 *   vfu-null [-v] [-s USEC] SOCKET
 *
 * -v logs every access; -s makes each BAR0 write take USEC microseconds, a
 * slow device that a client's posted writes queue up behind.
 */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvfio-user.h"

#define BAR0_SIZE 4096

static char bar0[BAR0_SIZE];
static unsigned int write_delay_us;

static void
log_to_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "null[%d]: %s\n", level, msg);
}

/* The library has checked that [offset, offset + count) lies inside BAR0. */
static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t offset,
            bool is_write)
{
    if (is_write) {
        memcpy(bar0 + offset, buf, count);
        if (write_delay_us > 0) {
            usleep(write_delay_us);
        }
    } else {
        memcpy(buf, bar0 + offset, count);
    }
    vfu_log(ctx, LOG_DEBUG, "BAR0 %s of %zu bytes at %#llx",
            is_write ? "write" : "read", count, (unsigned long long)offset);
    return (ssize_t)count;
}

static int
reset(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    vfu_log(ctx, LOG_INFO, "reset (%s)",
            type == VFU_RESET_LOST_CONN ? "client left" : "requested");
    memset(bar0, 0, sizeof(bar0));
    return 0;
}

int
main(int argc, char *argv[])
{
    int level = LOG_INFO;
    vfu_ctx_t *ctx;
    int opt;

    while ((opt = getopt(argc, argv, "vs:")) != -1) {
        switch (opt) {
        case 'v':
            level = LOG_DEBUG;
            break;
        case 's':
            write_delay_us = (unsigned int)strtoul(optarg, NULL, 0);
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1) {
usage:
        fprintf(stderr, "usage: %s [-v] [-s USEC] SOCKET\n", argv[0]);
        return 2;
    }

    ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[argc - 1], 0, NULL,
                         VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        err(1, "vfu_create_ctx");
    }
    vfu_setup_log(ctx, log_to_stderr, level);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL, 0) < 0) {
        err(1, "vfu_pci_init");
    }
    /* A vendor id reserved for testing, and "other" device class. */
    vfu_pci_set_id(ctx, 0x1234, 0x0001, 0x1234, 0x0001);
    vfu_pci_set_class(ctx, 0xff, 0x00, 0x00);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE,
                         bar0_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0 ||
        vfu_setup_device_reset_cb(ctx, reset) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        err(1, "device set-up");
    }

    fprintf(stderr, "null: listening on %s\n", argv[argc - 1]);
    if (vfu_attach_ctx(ctx) < 0) {
        err(1, "vfu_attach_ctx");
    }
    while (vfu_run_ctx(ctx) >= 0) {
        ;
    }
    if (errno != ENOTCONN) {
        warn("vfu_run_ctx");
    }
    vfu_destroy_ctx(ctx);
    return 0;
}
