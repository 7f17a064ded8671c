/*
 * The ACCES PCI-IDIO-16 isolated digital I/O card, as Linux's
 * gpio-pci-idio-16 driver uses it: vendor 0x494f, device 0x0dc8, and eight
 * byte-wide registers at the start of I/O BAR2 (256 bytes); the driver maps
 * no other BAR.
 *
 *   0x0  read/write   outputs 0-7
 *   0x1  read         inputs 0-7          write: clear interrupt
 *   0x2  read         enable interrupts   write: disable interrupts
 *   0x3  read         activate filters    write: deactivate filters
 *   0x4  read/write   outputs 8-15
 *   0x5  read         inputs 8-15
 *   0x6  read         interrupt status
 *
 * The inputs are wired to the outputs here (input n reads output n), so a
 * client sees its writes take effect. While interrupts are enabled a change
 * of inputs 0-7 or 8-15 sets bit 0 or 1 of the status and bit 2 (pending),
 * until the client clears them, and raises INTx when the status becomes
 * pending. Other offsets read 0 and ignore writes.
 *
 *   vfu-gpio-pci-idio-16 [-v] [-l] SOCKET
 *
 * Serves one client and exits when it leaves; with -l it serves one client
 * after another until killed. -v logs every change of the outputs.
 */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvfio-user.h"

#define IDIO_VID        0x494f
#define IDIO_DID        0x0dc8
#define IDIO_BAR2_SIZE  256

enum {
    REG_OUT0_7 = 0x0,
    REG_IN0_7 = 0x1,            /* write: clear interrupt */
    REG_IRQ_CTL = 0x2,          /* read: enable, write: disable */
    REG_FILTER_CTL = 0x3,       /* read: activate, write: deactivate */
    REG_OUT8_15 = 0x4,
    REG_IN8_15 = 0x5,
    REG_IRQ_STATUS = 0x6,
};

#define STATUS_BANK0    0x01
#define STATUS_BANK1    0x02
#define STATUS_PENDING  0x04

static struct {
    uint8_t out[2];
    bool irq_enabled;
    bool filters;
    uint8_t irq_status;
} card;

static void
log_to_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "gpio[%d]: %s\n", level, msg);
}

/* Inputs follow outputs: latch a status bit for a bank that changed. */
static void
set_outputs(vfu_ctx_t *ctx, unsigned bank, uint8_t val)
{
    vfu_log(ctx, LOG_DEBUG, "outputs %s = %#04x", bank == 0 ? "0-7" : "8-15",
            val);
    if (card.out[bank] != val && card.irq_enabled) {
        bool was_pending = card.irq_status & STATUS_PENDING;

        card.irq_status |= (bank == 0 ? STATUS_BANK0 : STATUS_BANK1) |
                           STATUS_PENDING;
        if (!was_pending) {
            /* ENOENT: the client set no eventfd for INTx */
            if (vfu_irq_trigger(ctx, 0) < 0) {
                vfu_log(ctx, LOG_DEBUG, "raise INTx: %s", strerror(errno));
            } else {
                vfu_log(ctx, LOG_DEBUG, "raise INTx");
            }
        }
    }
    card.out[bank] = val;
}

static uint8_t
reg_read(vfu_ctx_t *ctx, loff_t off)
{
    switch (off) {
    case REG_OUT0_7:
    case REG_IN0_7:
        return card.out[0];
    case REG_OUT8_15:
    case REG_IN8_15:
        return card.out[1];
    case REG_IRQ_CTL:
        card.irq_enabled = true;
        vfu_log(ctx, LOG_DEBUG, "interrupts enabled");
        return 0;
    case REG_FILTER_CTL:
        card.filters = true;
        return 0;
    case REG_IRQ_STATUS:
        return card.irq_status;
    default:
        return 0;
    }
}

static void
reg_write(vfu_ctx_t *ctx, loff_t off, uint8_t val)
{
    switch (off) {
    case REG_OUT0_7:
        set_outputs(ctx, 0, val);
        break;
    case REG_OUT8_15:
        set_outputs(ctx, 1, val);
        break;
    case REG_IN0_7:
        card.irq_status = 0;
        break;
    case REG_IRQ_CTL:
        card.irq_enabled = false;
        vfu_log(ctx, LOG_DEBUG, "interrupts disabled");
        break;
    case REG_FILTER_CTL:
        card.filters = false;
        break;
    default:
        break;
    }
}

/* Byte registers; a wider access is taken a byte at a time, in order. */
static ssize_t
bar2_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t offset,
            bool is_write)
{
    for (size_t i = 0; i < count; i++) {
        if (is_write) {
            reg_write(ctx, offset + (loff_t)i, (uint8_t)buf[i]);
        } else {
            buf[i] = (char)reg_read(ctx, offset + (loff_t)i);
        }
    }
    return (ssize_t)count;
}

static int
reset(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    vfu_log(ctx, LOG_INFO, "reset (%s)",
            type == VFU_RESET_DEVICE ? "device" :
            type == VFU_RESET_LOST_CONN ? "client left" : "function");
    memset(&card, 0, sizeof(card));
    return 0;
}

int
main(int argc, char *argv[])
{
    int level = LOG_INFO;
    bool loop = false;
    vfu_ctx_t *ctx;
    int opt;

    while ((opt = getopt(argc, argv, "vl")) != -1) {
        switch (opt) {
        case 'v':
            level = LOG_DEBUG;
            break;
        case 'l':
            loop = true;
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1) {
usage:
        fprintf(stderr, "usage: %s [-v] [-l] SOCKET\n", argv[0]);
        return 2;
    }

    ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[argc - 1], 0, NULL,
                         VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        err(1, "vfu_create_ctx");
    }
    vfu_setup_log(ctx, log_to_stderr, level);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0) {
        err(1, "vfu_pci_init");
    }
    vfu_pci_set_id(ctx, IDIO_VID, IDIO_DID, IDIO_VID, IDIO_DID);
    vfu_pci_set_class(ctx, 0xff, 0x00, 0x00);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR2_REGION_IDX, IDIO_BAR2_SIZE,
                         bar2_access, VFU_REGION_FLAG_RW, NULL, 0, -1, 0) < 0 ||
        vfu_setup_device_nr_irqs(ctx, VFU_DEV_INTX_IRQ, 1) < 0 ||
        vfu_setup_device_reset_cb(ctx, reset) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        err(1, "device set-up");
    }

    do {
        if (vfu_attach_ctx(ctx) < 0) {
            err(1, "vfu_attach_ctx");
        }
        while (vfu_run_ctx(ctx) >= 0) {
            ;
        }
        if (errno != ENOTCONN) {
            warn("vfu_run_ctx");
            vfu_destroy_ctx(ctx);
            return 1;
        }
    } while (loop);
    vfu_destroy_ctx(ctx);
    return 0;
}
