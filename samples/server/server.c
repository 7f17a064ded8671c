/*
 * A DMA copy engine: the guest programs a source, a destination and a
 * length into BAR0 and rings the doorbell; the device copies guest memory
 * to guest memory with vfu_sgl_read()/vfu_sgl_write() (through the mapping
 * when the client shared the memory, by DMA_READ/DMA_WRITE messages when
 * not) and raises an interrupt (MSI-X vector 0, or INTx) when done.
 *
 *   vfu-server [-v] [-p] SOCKET     -p: serve client after client
 *
 * BAR0 (4 KiB, memory, reached by message; QEMU posts the writes):
 *   0x00 SRC     u64  guest address to copy from
 *   0x08 DST     u64  guest address to copy to
 *   0x10 LEN     u32  bytes, at most 1 MiB
 *   0x14 DOORBELL    write anything: copy now
 *   0x18 STATUS  u32  bit 0 done, bit 1 failed, bits 16-31 the errno;
 *                     write 1s to clear
 *   0x1c COUNT   u32  copies done
 *   0x20 MAGIC   u32  0x53554656 ("VFUS")
 * BAR1 (8 KiB, memory): the MSI-X table (2 vectors) at 0, PBA at 0x1000.
 *
 * Migratable: the saved state is one record per snapshot (BAR0's registers
 * and the MSI-X table), taken on entering PRE_COPY and again on entering
 * STOP_AND_COPY; the destination keeps the last whole record it received
 * and applies it when it leaves RESUME (refusing the state if there is
 * none, which puts the device in ERROR until reset).
 */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libvfio-user.h"

#define REG_SRC         0x00
#define REG_DST         0x08
#define REG_LEN         0x10
#define REG_DOORBELL    0x14
#define REG_STATUS      0x18
#define REG_COUNT       0x1c
#define REG_MAGIC       0x20
#define MAGIC           0x53554656u
#define STATUS_DONE     1u
#define STATUS_FAILED   2u
#define MAX_LEN         (1u << 20)
#define MAX_SGS         64
#define NR_VECTORS      2
#define BAR1_SIZE       8192
#define PBA_OFFSET      0x1000

#define MIG_MAGIC       0x4d475556u     /* "VUGM" */

/* One saved state: what a move keeps of the device. */
struct mig_record {
    uint32_t magic;
    uint32_t size;                  /* of the whole record */
    uint8_t regs[4096];
    uint8_t bar1[PBA_OFFSET];       /* the MSI-X table; the PBA follows it */
};

struct dev {
    uint8_t regs[4096];
    uint8_t bar1[BAR1_SIZE];        /* MSI-X table and PBA */
    vfu_migr_state_t mig_state;
    struct mig_record out;          /* the snapshot being read */
    size_t out_pos;                 /* sizeof(out): all of it read */
    uint8_t *in;                    /* what RESUME received */
    size_t in_len;
    uint8_t *bounce;
    uint8_t *sgs;                   /* MAX_SGS entries of dma_sg_size() */
    size_t msix_off;                /* the MSI-X capability in config space */
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
    fprintf(stderr, "server[%d]: %s\n", level, msg);
}

/* Describes [addr, addr + len) into d->sgs + @first; entries made or -errno. */
static int
describe(vfu_ctx_t *ctx, struct dev *d, size_t first, uint64_t addr,
         uint32_t len, int prot)
{
    dma_sg_t *sg = (dma_sg_t *)(d->sgs + first * dma_sg_size());
    int n = vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)addr, len, sg,
                            MAX_SGS / 2, prot);
    if (n < 0) {
        return errno != 0 ? -errno : -E2BIG;    /* errno 0: too many pieces */
    }
    return n;
}

/*
 * Raises the completion interrupt: INTx or MSI-X vector 0, whichever the
 * client uses. The MSI-X table is the device's, so with MSI-X enabled a
 * vector the guest masked there is not raised. QEMU, though, keeps the
 * table (masks included) to itself and never writes ours: an entry whose
 * message address was never set is not the client's, and masks nothing.
 */
static void
raise_irq(vfu_ctx_t *ctx, struct dev *d)
{
    vfu_pci_config_space_t *cfg = vfu_pci_get_config_space(ctx);
    uint16_t msgctl;
    uint64_t addr;
    uint32_t ctrl;

    memcpy(&msgctl, cfg->raw + d->msix_off + PCI_MSIX_FLAGS, 2);
    memcpy(&addr, d->bar1 + PCI_MSIX_ENTRY_LOWER_ADDR, 8);    /* vector 0 */
    memcpy(&ctrl, d->bar1 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4);
    if ((msgctl & PCI_MSIX_FLAGS_ENABLE) && addr != 0 &&
        (ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT)) {
        return;
    }
    if (vfu_irq_trigger(ctx, 0) < 0) {
        if (errno != ENOENT) {
            vfu_log(ctx, LOG_ERR, "interrupt failed: %m");
        }
    } else {
        vfu_log(ctx, LOG_DEBUG, "completion interrupt raised (%s)",
                (msgctl & PCI_MSIX_FLAGS_ENABLE) ? "MSI-X vector 0" : "INTx");
    }
}

static void
copy(vfu_ctx_t *ctx, struct dev *d)
{
    uint64_t src, dst;
    uint32_t len = reg32(d, REG_LEN);
    int nsrc, ndst, err = 0;

    memcpy(&src, d->regs + REG_SRC, 8);
    memcpy(&dst, d->regs + REG_DST, 8);
    if (len == 0 || len > MAX_LEN) {
        err = EINVAL;
    } else if ((nsrc = describe(ctx, d, 0, src, len, PROT_READ)) < 0) {
        err = -nsrc;
    } else if ((ndst = describe(ctx, d, MAX_SGS / 2, dst, len, PROT_WRITE)) < 0) {
        err = -ndst;
    } else if (vfu_sgl_read(ctx, (dma_sg_t *)d->sgs, nsrc, d->bounce,
                            VFU_SGL_DIRECT_ACCESS) < 0 ||
               vfu_sgl_write(ctx, (dma_sg_t *)(d->sgs + MAX_SGS / 2 *
                                               dma_sg_size()), ndst,
                             d->bounce, VFU_SGL_DIRECT_ACCESS) < 0) {
        err = errno;
    }
    if (err != 0) {
        vfu_log(ctx, LOG_ERR, "copy of %u bytes %#llx -> %#llx failed: %s",
                len, (unsigned long long)src, (unsigned long long)dst,
                strerror(err));
        set_reg32(d, REG_STATUS, STATUS_FAILED | (uint32_t)err << 16);
    } else {
        bool mapped = vfu_sg_is_mappable(ctx, (dma_sg_t *)d->sgs);
        vfu_log(ctx, LOG_INFO, "copied %u bytes %#llx -> %#llx (%s)", len,
                (unsigned long long)src, (unsigned long long)dst,
                mapped ? "mapped" : "by message");
        set_reg32(d, REG_STATUS, STATUS_DONE);
        set_reg32(d, REG_COUNT, reg32(d, REG_COUNT) + 1);
    }
    raise_irq(ctx, d);
}

static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);

    if (!is_write) {
        memcpy(buf, d->regs + off, count);
        return (ssize_t)count;
    }
    vfu_log(ctx, LOG_DEBUG, "BAR0 write of %zu bytes at %#llx", count,
            (unsigned long long)off);
    if (off == REG_DOORBELL) {
        copy(ctx, d);
    } else if (off == REG_STATUS && count == 4) {
        uint32_t v;
        memcpy(&v, buf, 4);
        set_reg32(d, REG_STATUS, reg32(d, REG_STATUS) & ~v);
    } else if (off < REG_DOORBELL) {
        memcpy(d->regs + off, buf, count);
    }
    return (ssize_t)count;
}

static ssize_t
bar1_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);

    if (is_write && off < PBA_OFFSET) {
        memcpy(d->bar1 + off, buf, count);      /* the PBA is read-only */
    } else if (!is_write) {
        memcpy(buf, d->bar1 + off, count);
    }
    return (ssize_t)count;
}

static int
reset(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct dev *d = vfu_get_private(ctx);

    vfu_log(ctx, LOG_INFO, "reset (%s)", type == VFU_RESET_LOST_CONN ?
            "client left" : type == VFU_RESET_PCI_FLR ? "FLR" : "device");
    memset(d->regs, 0, sizeof(d->regs));
    set_reg32(d, REG_MAGIC, MAGIC);
    d->in_len = 0;                      /* a resume in progress is void */
    d->mig_state = VFU_MIGR_STATE_RUNNING;
    memset(d->bar1, 0, sizeof(d->bar1));
    for (int v = 0; v < NR_VECTORS; v++) {
        /* Vectors start masked. */
        d->bar1[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL] =
            PCI_MSIX_ENTRY_CTRL_MASKBIT;
    }
    return 0;
}

static void
snapshot(struct dev *d)
{
    d->out.magic = MIG_MAGIC;
    d->out.size = sizeof(d->out);
    memcpy(d->out.regs, d->regs, sizeof(d->regs));
    memcpy(d->out.bar1, d->bar1, sizeof(d->out.bar1));
    d->out_pos = 0;
}

/* Applies the last whole record received; -1/EINVAL when there is none. */
static int
restore(vfu_ctx_t *ctx, struct dev *d)
{
    const struct mig_record *last = NULL;
    size_t pos = 0;

    while (d->in_len - pos >= sizeof(struct mig_record)) {
        const struct mig_record *r = (const void *)(d->in + pos);
        if (r->magic != MIG_MAGIC || r->size != sizeof(*r)) {
            break;
        }
        last = r;
        pos += sizeof(*r);
    }
    if (last == NULL || pos != d->in_len) {
        vfu_log(ctx, LOG_ERR, "migration: bad state stream (%zu bytes)",
                d->in_len);
        errno = EINVAL;
        return -1;
    }
    memcpy(d->regs, last->regs, sizeof(d->regs));
    memcpy(d->bar1, last->bar1, sizeof(last->bar1));
    vfu_log(ctx, LOG_INFO, "migration: state restored, COUNT %u",
            reg32(d, REG_COUNT));
    return 0;
}

static int
mig_transition(vfu_ctx_t *ctx, vfu_migr_state_t state)
{
    struct dev *d = vfu_get_private(ctx);

    vfu_log(ctx, LOG_DEBUG, "migration: state %d -> %d", d->mig_state, state);
    if (state == VFU_MIGR_STATE_PRE_COPY ||
        state == VFU_MIGR_STATE_STOP_AND_COPY) {
        snapshot(d);        /* STOP_AND_COPY: again, the device has stopped */
    } else if (state == VFU_MIGR_STATE_RESUME) {
        d->in_len = 0;
    } else if (d->mig_state == VFU_MIGR_STATE_RESUME && restore(ctx, d) < 0) {
        return -1;
    }
    d->mig_state = state;
    return 0;
}

static ssize_t
mig_read(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct dev *d = vfu_get_private(ctx);
    size_t n = sizeof(d->out) - d->out_pos;

    n = n < count ? n : (size_t)count;
    memcpy(buf, (uint8_t *)&d->out + d->out_pos, n);
    d->out_pos += n;
    return (ssize_t)n;
}

static ssize_t
mig_write(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct dev *d = vfu_get_private(ctx);
    uint8_t *in;

    if (count > 64 * sizeof(struct mig_record) - d->in_len) {
        errno = EFBIG;      /* more snapshots than any move sends */
        return -1;
    }
    in = realloc(d->in, d->in_len + count);
    if (in == NULL) {
        return -1;
    }
    d->in = in;
    memcpy(d->in + d->in_len, buf, count);
    d->in_len += count;
    return (ssize_t)count;
}

static int
mig_data_size(vfu_ctx_t *ctx, uint64_t *len)
{
    (void)ctx;
    *len = sizeof(struct mig_record);
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

int
main(int argc, char *argv[])
{
    struct dev d = { .mig_state = VFU_MIGR_STATE_RUNNING };
    const vfu_migration_callbacks_t mig = {
        .version = VFU_MIGR_CALLBACKS_VERS, .transition = mig_transition,
        .read_data = mig_read, .write_data = mig_write,
    };
    struct msixcap msix = { .hdr.id = PCI_CAP_ID_MSIX };
    ssize_t msix_off;
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
    d.bounce = malloc(MAX_LEN);
    d.sgs = calloc(MAX_SGS, dma_sg_size());
    if (d.bounce == NULL || d.sgs == NULL) {
        err(1, "malloc");
    }

    ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[optind], 0, &d, VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        err(1, "vfu_create_ctx");
    }
    vfu_setup_log(ctx, log_stderr, level);
    reset(ctx, VFU_RESET_DEVICE);
    msix.mxc.ts = NR_VECTORS - 1;
    msix.mtab.tbir = VFU_PCI_DEV_BAR1_REGION_IDX;
    msix.mpba.pbir = VFU_PCI_DEV_BAR1_REGION_IDX;
    msix.mpba.pbao = PBA_OFFSET >> 3;
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0) {
        err(1, "vfu_pci_init");
    }
    vfu_pci_set_id(ctx, 0x1234, 0x0002, 0x1234, 0x0002);
    vfu_pci_set_class(ctx, 0xff, 0x00, 0x00);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, sizeof(d.regs),
                         bar0_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0 ||
        vfu_setup_region(ctx, VFU_PCI_DEV_BAR1_REGION_IDX, BAR1_SIZE,
                         bar1_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0 ||
        (msix_off = vfu_pci_add_capability(ctx, 0, 0, &msix)) < 0 ||
        vfu_setup_device_nr_irqs(ctx, VFU_DEV_INTX_IRQ, 1) < 0 ||
        vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSIX_IRQ, NR_VECTORS) < 0 ||
        vfu_setup_device_dma(ctx, LIBVFIO_USER_MAX_DMA_REGIONS, dma_register,
                             dma_unregister) < 0 ||
        vfu_setup_device_reset_cb(ctx, reset) < 0 ||
        vfu_setup_device_migration_callbacks(ctx, &mig) < 0 ||
        vfu_setup_device_migration_data_size(ctx, mig_data_size) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        err(1, "device set-up");
    }

    d.msix_off = (size_t)msix_off;
    fprintf(stderr, "server: listening on %s\n", argv[optind]);
    do {
        if (vfu_attach_ctx(ctx) < 0) {
            warn("vfu_attach_ctx");
            continue;
        }
        while (vfu_run_ctx(ctx) >= 0) {
            ;
        }
        if (errno != ENOTCONN) {
            warn("vfu_run_ctx");
        }
    } while (persist);
    vfu_destroy_ctx(ctx);
    free(d.bounce);
    free(d.sgs);
    free(d.in);
    return 0;
}
