/*
 * A queue device whose doorbell is an ioeventfd: the guest writes 64-bit
 * work items into a ring in BAR0 and the count it has produced into
 * PRODUCED (as QEMU does, by posted REGION_WRITEs), then rings DOORBELL.
 * The device takes every item from CONSUMED up to PRODUCED, adds it to
 * SUM, and raises MSI vector 0. A client that asked for the io fds rings
 * by signalling an eventfd; the device polls it beside vfu_get_poll_fd()
 * and, on a signal, serves what the socket holds before taking the items:
 * they and PRODUCED were sent before the ring. Rings that come as REGION_WRITE (a
 * client without io fds) do the same through the BAR0 callback.
 *
 *   vfu-doorbell [-v] [-p] SOCKET     -p: serve client after client
 *
 * BAR0 (4 KiB, memory, by message; * marks an ioeventfd):
 *   0x000 DOORBELL *  u32 W  any value: take the items produced
 *   0x004 CMD      *  u32 W  1: clear SUM, RINGS and BY_MSG (an ioeventfd
 *                            with datamatch 1); other values are ignored
 *                            (they come by message). Raises MSI vector 0.
 *   0x008 PRODUCED    u32 RW items written so far (wraps)
 *   0x00c CONSUMED    u32 R  items taken so far
 *   0x010 SUM         u64 R  sum of the items taken
 *   0x018 RINGS       u32 R  doorbell rings seen, however they came
 *   0x01c BY_MSG      u32 R  of which came as REGION_WRITE
 *   0x100 ITEMS       u64[64] W  item n at 0x100 + 8 * (n % 64)
 * Config space: MSI (one vector) at 0x40.
 */
#include <err.h>
#include <errno.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "libvfio-user.h"

#define REG_DOORBELL    0x000
#define REG_CMD         0x004
#define REG_PRODUCED    0x008
#define REG_CONSUMED    0x00c
#define REG_SUM         0x010
#define REG_RINGS       0x018
#define REG_BY_MSG      0x01c
#define REG_ITEMS       0x100
#define NR_ITEMS        64
#define CMD_CLEAR       1u

struct dev {
    vfu_ctx_t *ctx;
    uint8_t regs[4096];
    int doorbell;                   /* eventfds: the device polls these */
    int cmd;
};

static uint32_t
reg32(struct dev *d, unsigned off)
{
    uint32_t v;
    memcpy(&v, d->regs + off, 4);
    return v;
}

static void
set_reg32(struct dev *d, unsigned off, uint32_t v)
{
    memcpy(d->regs + off, &v, 4);
}

static void
log_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "doorbell[%d]: %s\n", level, msg);
}

static void
raise_irq(struct dev *d)
{
    /* ENOENT: the client set no eventfd; EINVAL: it enabled no MSI. */
    if (vfu_irq_trigger(d->ctx, 0) < 0 && errno != ENOENT && errno != EINVAL) {
        vfu_log(d->ctx, LOG_ERR, "interrupt failed: %m");
    }
}

/* @n rings (a signal count, or 1 for a message): take what was produced. */
static void
ring(struct dev *d, uint32_t n, bool by_msg)
{
    uint32_t consumed = reg32(d, REG_CONSUMED);
    uint32_t produced = reg32(d, REG_PRODUCED);
    uint64_t sum;

    memcpy(&sum, d->regs + REG_SUM, 8);
    set_reg32(d, REG_RINGS, reg32(d, REG_RINGS) + n);
    set_reg32(d, REG_BY_MSG, reg32(d, REG_BY_MSG) + (by_msg ? n : 0));
    /* At most a ring's worth: a bad PRODUCED cannot make us spin. */
    for (unsigned i = 0; consumed != produced && i < NR_ITEMS; i++, consumed++) {
        uint64_t item;
        memcpy(&item, d->regs + REG_ITEMS + 8 * (consumed % NR_ITEMS), 8);
        sum += item;
    }
    memcpy(d->regs + REG_SUM, &sum, 8);
    set_reg32(d, REG_CONSUMED, consumed);
    vfu_log(d->ctx, LOG_DEBUG, "%u ring(s)%s: consumed %u, sum %llu", n,
            by_msg ? " by message" : "", consumed, (unsigned long long)sum);
    raise_irq(d);
}

static void
command(struct dev *d, uint32_t cmd)
{
    if (cmd != CMD_CLEAR) {
        vfu_log(d->ctx, LOG_INFO, "unknown command %u ignored", cmd);
        return;
    }
    memset(d->regs + REG_SUM, 0, 8);
    set_reg32(d, REG_RINGS, 0);
    set_reg32(d, REG_BY_MSG, 0);
    raise_irq(d);
}

/* Writes the client did not turn into eventfd signals arrive here. */
static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);
    uint32_t v = 0;

    if (!is_write) {
        memcpy(buf, d->regs + off, count);
        return (ssize_t)count;
    }
    memcpy(&v, buf, count < 4 ? count : 4);
    if (off == REG_DOORBELL) {
        ring(d, 1, true);
    } else if (off == REG_CMD) {
        command(d, v);
    } else if (off >= REG_ITEMS || (off == REG_PRODUCED && count == 4)) {
        memcpy(d->regs + off, buf, count);
    }
    return (ssize_t)count;
}

/* Waits for a client; false when attaching failed for another reason. */
static bool
attach(vfu_ctx_t *ctx)
{
    while (vfu_attach_ctx(ctx) < 0) {
        /* The listener, then the connection waiting for its VERSION. */
        struct pollfd pfd = { .fd = vfu_get_poll_fd(ctx), .events = POLLIN };

        if (errno != EAGAIN) {
            warn("vfu_attach_ctx");
            return false;
        }
        (void)poll(&pfd, 1, -1);
    }
    return true;
}

/* Serves everything that has arrived; false when the client left. */
static bool
serve_socket(vfu_ctx_t *ctx)
{
    int n;

    while ((n = vfu_run_ctx(ctx)) > 0) {
        ;
    }
    if (n < 0 && errno != EBUSY) {
        if (errno != ENOTCONN) {
            warn("vfu_run_ctx");
        }
        return false;
    }
    return true;
}

/* Serves one client: its socket, the doorbell and the command eventfd. */
static void
serve(struct dev *d)
{
    for (;;) {
        struct pollfd pfd[3] = {
            { .fd = vfu_get_poll_fd(d->ctx), .events = POLLIN },
            { .fd = d->doorbell, .events = POLLIN },
            { .fd = d->cmd, .events = POLLIN },
        };
        eventfd_t rings = 0, cmds = 0;

        if (poll(pfd, 3, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            err(1, "poll");
        }
        /*
         * Take the signals, then serve the socket, then act on them: what
         * the client sent before a signal we took (items, PRODUCED) is in
         * the socket by now. Serving first could miss a message sent just
         * before a signal that came after the socket was drained.
         */
        (void)eventfd_read(d->doorbell, &rings);
        (void)eventfd_read(d->cmd, &cmds);
        if (!serve_socket(d->ctx)) {
            return;
        }
        if (rings > 0) {
            ring(d, (uint32_t)rings, false);
        }
        if (cmds > 0) {
            command(d, CMD_CLEAR);      /* only CMD_CLEAR writes signal it */
        }
    }
}

int
main(int argc, char *argv[])
{
    struct dev d = { .doorbell = -1, .cmd = -1 };
    struct msicap msi = { .hdr.id = PCI_CAP_ID_MSI };
    int level = LOG_INFO, opt;
    bool persist = false;
    vfu_ctx_t *ctx;

    while ((opt = getopt(argc, argv, "vp")) != -1) {
        if (opt == 'v') {
            level = LOG_DEBUG;
        } else if (opt == 'p') {
            persist = true;
        } else {
            errx(2, "usage: %s [-v] [-p] SOCKET", argv[0]);
        }
    }
    if (optind != argc - 1) {
        errx(2, "usage: %s [-v] [-p] SOCKET", argv[0]);
    }
    d.doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    d.cmd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d.doorbell < 0 || d.cmd < 0) {
        err(1, "eventfd");
    }
    ctx = d.ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[optind],
                                 LIBVFIO_USER_FLAG_ATTACH_NB, &d,
                                 VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        err(1, "vfu_create_ctx");
    }
    vfu_setup_log(ctx, log_stderr, level);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0) {
        err(1, "vfu_pci_init");
    }
    vfu_pci_set_id(ctx, 0x1234, 0x0003, 0x1234, 0x0003);
    vfu_pci_set_class(ctx, 0xff, 0x00, 0x00);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, sizeof(d.regs),
                         bar0_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0 ||
        vfu_pci_add_capability(ctx, 0x40, 0, &msi) < 0 ||
        vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSI_IRQ, 1) < 0 ||
        /* The doorbell: any 4-byte write. CMD: only the value 1. */
        vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, d.doorbell,
                             REG_DOORBELL, 4, 0, 0, -1, 0) < 0 ||
        vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, d.cmd,
                             REG_CMD, 4, KVM_IOEVENTFD_FLAG_DATAMATCH,
                             CMD_CLEAR, -1, 0) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        err(1, "device set-up");
    }

    fprintf(stderr, "doorbell: listening on %s\n", argv[optind]);
    do {
        if (attach(ctx)) {
            serve(&d);
        }
    } while (persist);
    vfu_destroy_ctx(ctx);
    close(d.doorbell);
    close(d.cmd);
    return 0;
}
