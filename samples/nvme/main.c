/*
 * vfu-nvme: an NVMe 1.4 controller with one namespace backed by a file or
 * memfd, served over vfio-user (docs/nvme.md). This file owns the PCI
 * function (ids, class 01:08:02, BAR0 registers, BAR4 MSI-X, PCI Express,
 * power management, INTx), the command line, the reset callback and the
 * event loop: it polls the socket and the doorbell eventfd, serves the
 * socket, and then runs the queues (queue.c).
 *
 *   vfu-nvme [-v] [-p] [-n] [-s SERIAL] BACKING SOCKET
 *     BACKING   the namespace: a file (its size, in 512-byte blocks), or
 *               fd:N for an open file or memfd inherited as descriptor N
 *     -p        serve client after client (the namespace persists)
 *     -n        no ioeventfds: every doorbell comes as REGION_WRITE
 *     -s        serial number (default "VFU0001")
 *     -v        debug log
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvme.h"

static void
log_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "nvme[%d]: %s\n", level, msg);
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct nvme_ctrl *c = vfu_get_private(ctx);

    vfu_log(ctx, LOG_INFO, "reset (%s)", type == VFU_RESET_LOST_CONN ?
            "client left" : type == VFU_RESET_PCI_FLR ? "FLR" : "device");
    if ((c->cc & NVME_CC_EN) &&
        (c->csts & NVME_CSTS_SHST_MASK) != NVME_CSTS_SHST_DONE) {
        c->smart.unsafe_shutdowns++;    /* enabled, never shut down */
    }
    nvme_flush_backing(c);
    nvme_ctrl_reset(c, true);
    return 0;
}

static void
dma_register(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    vfu_log(ctx, LOG_DEBUG, "DMA region %p+%#zx %s", info->iova.iov_base,
            info->iova.iov_len, info->vaddr != NULL ? "mapped" : "by message");
}

static void
dma_unregister(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    vfu_log(ctx, LOG_DEBUG, "DMA region %p+%#zx gone", info->iova.iov_base,
            info->iova.iov_len);
}

static void
add_caps(vfu_ctx_t *ctx, struct nvme_ctrl *c)
{
    struct pmcap pm = { .hdr.id = PCI_CAP_ID_PM };
    struct msixcap msix = { .hdr.id = PCI_CAP_ID_MSIX };
    struct pxcap px = { .hdr.id = PCI_CAP_ID_EXP };
    ssize_t off;

    pm.pc.vs = 3;
    pm.pmcs.nsfrst = 1;         /* D3hot -> D0 keeps the controller's state */
    msix.mxc.ts = NVME_NR_VECTORS - 1;
    msix.mtab.tbir = VFU_PCI_DEV_BAR4_REGION_IDX;
    msix.mpba.pbir = VFU_PCI_DEV_BAR4_REGION_IDX;
    msix.mpba.pbao = NVME_PBA_OFFSET >> 3;
    px.pxcaps.ver = 2;
    px.pxcaps.dpt = PCI_EXP_TYPE_ENDPOINT;
    px.pxdcap.mps = 1;
    px.pxdcap.flrc = 1;         /* function level reset */
    px.pxlcap.stuff = PCI_EXP_LNKCAP_SLS_2_5GB | 1 << 4;
    px.pxls.stuff = PCI_EXP_LNKSTA_CLS_2_5GB | PCI_EXP_LNKSTA_NLW_X1;
    if (vfu_pci_add_capability(ctx, 0, 0, &pm) < 0 ||
        (off = vfu_pci_add_capability(ctx, 0, 0, &msix)) < 0 ||
        vfu_pci_add_capability(ctx, 0, 0, &px) < 0) {
        err(1, "capabilities");
    }
    c->msix_cap = (size_t)off;
}

/*
 * Doorbells through shadow ioeventfds: every SQ tail and CQ head doorbell
 * signals one eventfd after the client stored the value in shadow memory
 * (a memfd laid out like the doorbell page).
 */
static void
setup_ioeventfds(vfu_ctx_t *ctx, struct nvme_ctrl *c)
{
    size_t len = 2 * NVME_NR_QUEUES * 4;
    int shadow = memfd_create("nvme-doorbells", MFD_CLOEXEC);

    c->db_eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (shadow < 0 || c->db_eventfd < 0 || ftruncate(shadow, 4096) < 0) {
        err(1, "doorbell eventfd");
    }
    c->db_shadow = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
                        shadow, 0);
    if (c->db_shadow == MAP_FAILED) {
        err(1, "mmap");
    }
    for (size_t i = 0; i < len / 4; i++) {
        if (vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX,
                                 c->db_eventfd, NVME_REG_DBS + 4 * i, 4, 0, 0,
                                 shadow, 4 * i) < 0) {
            err(1, "vfu_create_ioeventfd");
        }
    }
    close(shadow);              /* the mapping and the library keep it */
}

static int
open_backing(const char *arg, uint64_t *blocks)
{
    struct stat st;
    int fd;

    if (strncmp(arg, "fd:", 3) == 0) {
        fd = atoi(arg + 3);
    } else if ((fd = open(arg, O_RDWR | O_CLOEXEC)) < 0) {
        err(1, "%s", arg);
    }
    if (fstat(fd, &st) < 0) {
        err(1, "%s", arg);
    }
    if (st.st_size < 4096) {
        errx(1, "%s: %lld bytes; a namespace needs at least 4096", arg,
             (long long)st.st_size);
    }
    *blocks = (uint64_t)st.st_size / 512;
    return fd;
}

static bool
attach(vfu_ctx_t *ctx)
{
    while (vfu_attach_ctx(ctx) < 0) {
        struct pollfd pfd = { .fd = vfu_get_poll_fd(ctx), .events = POLLIN };
        if (errno != EAGAIN) {
            warn("vfu_attach_ctx");
            return false;
        }
        (void)poll(&pfd, 1, -1);
    }
    return true;
}

/* Serves one client until it leaves. */
static void
serve(struct nvme_ctrl *c)
{
    bool buffered = false;

    c->smart.power_cycles++;
    for (;;) {
        struct pollfd pfd[2] = {
            { .fd = vfu_get_poll_fd(c->ctx), .events = POLLIN },
            { .fd = c->db_eventfd, .events = POLLIN },
        };
        eventfd_t rings = 0;
        uint64_t msgs = c->msgs_dma;
        int n;

        if (!buffered && poll(pfd, c->db_eventfd >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            err(1, "poll");
        }
        /*
         * The signal first, then the socket, then the doorbells: what the
         * client sent before ringing is in the socket by now (docs/ioeventfd.md).
         */
        if (c->db_eventfd >= 0) {
            (void)eventfd_read(c->db_eventfd, &rings);
        }
        while ((n = vfu_run_ctx(c->ctx)) > 0) {
            ;
        }
        if (n < 0 && errno != EBUSY) {
            if (errno != ENOTCONN) {
                warn("vfu_run_ctx");
            }
            break;
        }
        if (rings > 0) {
            nvme_shadow_doorbells(c);
        }
        nvme_process(c);
        /*
         * While it waited for a DMA reply the library may have read the
         * client's next requests off the socket with the reply and kept
         * them: poll() would not see them. Serve once more before polling.
         */
        buffered = c->msgs_dma != msgs;
    }
    vfu_log(c->ctx, LOG_INFO, "client gone: %llu reads, %llu writes, %llu "
            "with SGLs, %llu transfers by message",
            (unsigned long long)c->smart.read_cmds,
            (unsigned long long)c->smart.write_cmds,
            (unsigned long long)c->sgl_cmds, (unsigned long long)c->msgs_dma);
}

static void
usage(const char *prog)
{
    errx(2, "usage: %s [-v] [-p] [-n] [-s SERIAL] BACKING SOCKET", prog);
}

int
main(int argc, char *argv[])
{
    static struct nvme_ctrl c = { .db_eventfd = -1 };
    const char *serial = "VFU0001";
    int level = LOG_INFO, opt;
    bool persist = false, ioeventfds = true;
    vfu_ctx_t *ctx;

    while ((opt = getopt(argc, argv, "vpns:")) != -1) {
        switch (opt) {
        case 'v': level = LOG_DEBUG; break;
        case 'p': persist = true; break;
        case 'n': ioeventfds = false; break;
        case 's': serial = optarg; break;
        default: usage(argv[0]);
        }
    }
    if (optind != argc - 2) {
        usage(argv[0]);
    }
    snprintf(c.serial, sizeof(c.serial), "%s", serial);
    c.backing = open_backing(argv[optind], &c.nsze);
    c.bounce = malloc(NVME_MAX_XFER);
    c.sgl_cap = NVME_MAX_SGS;
    c.sgl_buf = calloc(c.sgl_cap, dma_sg_size());
    if (c.bounce == NULL || c.sgl_buf == NULL) {
        err(1, "malloc");
    }

    ctx = c.ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[optind + 1],
                                 LIBVFIO_USER_FLAG_ATTACH_NB, &c,
                                 VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        err(1, "vfu_create_ctx");
    }
    vfu_setup_log(ctx, log_stderr, level);
    nvme_ctrl_init(&c);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, PCI_HEADER_TYPE_NORMAL, 0) < 0) {
        err(1, "vfu_pci_init");
    }
    vfu_pci_set_id(ctx, NVME_PCI_VID, NVME_PCI_DID, NVME_PCI_VID, NVME_PCI_SSID);
    vfu_pci_set_class(ctx, 0x01, 0x08, 0x02);   /* mass storage, NVM, NVMe */
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, NVME_BAR0_SIZE,
                         nvme_bar0_access, VFU_REGION_FLAG_RW |
                         VFU_REGION_FLAG_MEM | VFU_REGION_FLAG_64_BITS,
                         NULL, 0, -1, 0) < 0 ||
        vfu_setup_region(ctx, VFU_PCI_DEV_BAR4_REGION_IDX, NVME_BAR4_SIZE,
                         nvme_bar4_access, VFU_REGION_FLAG_RW |
                         VFU_REGION_FLAG_MEM, NULL, 0, -1, 0) < 0) {
        err(1, "vfu_setup_region");
    }
    add_caps(ctx, &c);
    if (vfu_setup_device_nr_irqs(ctx, VFU_DEV_INTX_IRQ, 1) < 0 ||
        vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSIX_IRQ, NVME_NR_VECTORS) < 0 ||
        vfu_setup_device_reset_cb(ctx, reset_cb) < 0 ||
        vfu_setup_device_dma(ctx, LIBVFIO_USER_MAX_DMA_REGIONS, dma_register,
                             dma_unregister) < 0) {
        err(1, "device set-up");
    }
    if (ioeventfds) {
        setup_ioeventfds(ctx, &c);
    }
    if (vfu_realize_ctx(ctx) < 0) {
        err(1, "vfu_realize_ctx");
    }

    fprintf(stderr, "nvme: %llu blocks of 512 bytes, listening on %s\n",
            (unsigned long long)c.nsze, argv[optind + 1]);
    do {
        if (attach(ctx)) {
            serve(&c);
        }
    } while (persist);
    nvme_flush_backing(&c);
    vfu_destroy_ctx(ctx);
    if (c.db_eventfd >= 0) {
        close(c.db_eventfd);
    }
    free(c.bounce);
    free(c.sgl_buf);
    return 0;
}
