/*
 * Functional tests of config space and capabilities through a real client
 * on a real UNIX socket. The device here is a PCI Express endpoint with
 * every kind of BAR and every capability the library knows:
 *
 *   BAR0  16 KiB memory, MSI-X table at 0, PBA at 0x2000 (callback)
 *   BAR1  256 B I/O
 *   BAR2  1 MiB 64-bit prefetchable memory
 *   BAR4  8 GiB 64-bit memory
 *   ROM   64 KiB
 *   caps  PM, MSI (64-bit, maskable, 4 vectors), MSI-X (16 vectors),
 *         PCI Express v2 (FLR), vendor-specific (writable, read-only,
 *         callback), DSN, extended vendor-specific (added after realize)
 *
 * A client sizes every BAR and walks both chains and must see exactly what
 * the device declared; then each capability's behaviour and each refused
 * write, with the exact errno of the error reply.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define CFG             VFU_PCI_DEV_CFG_REGION_IDX
#define VID             0x1b36
#define DID             0x0042
#define BAR0_SIZE       0x4000
#define BAR1_SIZE       0x100
#define BAR2_SIZE       (1u << 20)
#define BAR4_SIZE       (8ull << 30)
#define ROM_SIZE        0x10000
#define MSIX_VECS       16
#define DSN             0x0011223344556677ull

struct cap_decl {
    bool ext;
    uint16_t id;
    size_t off;
};

struct dev {
    char dir[64];
    char sock[96];
    vfu_ctx_t *ctx;
    pthread_t thread;
    uint8_t shadow[4096];       /* config bytes the callback serves */
    int cb_reads, cb_writes;
    loff_t cb_last_off;
    size_t cb_last_count;
    int resets[3];
    int run_errno;
    struct cap_decl caps[16];
    size_t nr_caps;
    size_t pm, msi, msix, px, vsc, vsc_ro, vsc_cb, dsn, evsc;
};

struct fx {
    struct dev *dev;
    vfu_client_t *c;
};

/* ------------------------------------------------------------------ */
/* The device                                                          */
/* ------------------------------------------------------------------ */

static ssize_t
cfg_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);

    d->cb_last_off = off;
    d->cb_last_count = count;
    if (is_write) {
        d->cb_writes++;
        memcpy(d->shadow + off, buf, count);
    } else {
        d->cb_reads++;
        memcpy(buf, d->shadow + off, count);
    }
    return (ssize_t)count;
}

static ssize_t
bar_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    (void)ctx;
    (void)off;
    if (!is_write) {
        memset(buf, 0, count);
    }
    return (ssize_t)count;
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct dev *d = vfu_get_private(ctx);

    d->resets[type]++;
    return 0;
}

static void *
serve(void *arg)
{
    struct dev *d = arg;

    if (vfu_attach_ctx(d->ctx) == 0) {
        while (vfu_run_ctx(d->ctx) >= 0) {
            ;
        }
        d->run_errno = errno;
    }
    return NULL;
}

static size_t
add_cap(struct dev *d, size_t pos, int flags, void *data)
{
    ssize_t off = vfu_pci_add_capability(d->ctx, pos, flags, data);
    bool ext = (flags & VFU_CAP_FLAG_EXTENDED) != 0;

    assert_true(off > 0);
    d->caps[d->nr_caps++] = (struct cap_decl){
        .ext = ext,
        .id = ext ? *(uint16_t *)data : *(uint8_t *)data,
        .off = (size_t)off,
    };
    return (size_t)off;
}

static struct dev *
dev_create(void)
{
    struct dev *d = calloc(1, sizeof(*d));
    struct pmcap pm = { .hdr.id = PCI_CAP_ID_PM };
    struct msicap msi = { .hdr.id = PCI_CAP_ID_MSI };
    struct msixcap msix = { .hdr.id = PCI_CAP_ID_MSIX };
    struct pxcap px = { .hdr.id = PCI_CAP_ID_EXP };
    struct dsncap dsn = { .hdr = { .id = PCI_EXT_CAP_ID_DSN, .version = 1 } };
    uint8_t vsc[12] = { PCI_CAP_ID_VNDR, 0, 12, 0xa1, 0xa2, 0xa3 };
    uint8_t vsc_ro[8] = { PCI_CAP_ID_VNDR, 0, 8, 0xb1, 0xb2 };
    uint8_t vsc_cb[16] = { PCI_CAP_ID_VNDR, 0, 16 };
    union {
        struct pcie_ext_cap_vsc_hdr h;
        uint8_t raw[16];
    } evsc = { .h = { .hdr = { .id = PCI_EXT_CAP_ID_VNDR, .version = 1 },
                      .id = 0xabcd, .rev = 2, .len = 16 } };

    assert_non_null(d);
    strcpy(d->dir, "/tmp/vfu-caps.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
    d->ctx = vfu_create_ctx(VFU_TRANS_SOCK, d->sock, 0, d, VFU_DEV_TYPE_PCI);
    assert_non_null(d->ctx);
    assert_int_equal(vfu_pci_init(d->ctx, VFU_PCI_TYPE_EXPRESS,
                                  PCI_HEADER_TYPE_NORMAL, 2), 0);
    vfu_pci_set_id(d->ctx, VID, DID, VID, 0x1100);
    vfu_pci_set_class(d->ctx, 0xff, 0x00, 0x00);
    assert_int_equal(vfu_setup_region(d->ctx, CFG, 0, cfg_cb,
                                      VFU_REGION_FLAG_RW, NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 0, BAR0_SIZE, bar_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 1, BAR1_SIZE, bar_cb,
                                      VFU_REGION_FLAG_RW, NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 2, BAR2_SIZE, bar_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                                      VFU_REGION_FLAG_64_BITS |
                                      VFU_REGION_FLAG_PREFETCH,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 4, BAR4_SIZE, bar_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                                      VFU_REGION_FLAG_64_BITS,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, VFU_PCI_DEV_ROM_REGION_IDX,
                                      ROM_SIZE, bar_cb, VFU_REGION_FLAG_READ,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_device_reset_cb(d->ctx, reset_cb), 0);

    /* PM: D1, D2; PME from D0, D3hot, D3cold; soft reset on D3hot->D0. */
    pm.pc.vs = 3;
    pm.pc.d1s = 1;
    pm.pc.d2s = 1;
    pm.pc.psup = 0x19;
    d->pm = add_cap(d, 0, 0, &pm);
    msi.mc.c64 = 1;
    msi.mc.pvm = 1;
    msi.mc.mmc = 2;
    msi.mpend = 0x2;
    d->msi = add_cap(d, 0, 0, &msi);
    msix.mxc.ts = MSIX_VECS - 1;
    msix.mtab.tbir = 0;
    msix.mtab.to = 0;
    msix.mpba.pbir = 0;
    msix.mpba.pbao = 0x2000 >> 3;
    d->msix = add_cap(d, 0xb0, 0, &msix);
    px.pxcaps.ver = 2;
    px.pxcaps.dpt = PCI_EXP_TYPE_ENDPOINT;
    px.pxdcap.mps = 1;
    px.pxdcap.flrc = 1;
    px.pxdcap2.ctds = 1;
    d->px = add_cap(d, 0, 0, &px);
    d->vsc = add_cap(d, 0, 0, vsc);
    d->vsc_ro = add_cap(d, 0, VFU_CAP_FLAG_READONLY, vsc_ro);
    d->vsc_cb = add_cap(d, 0, VFU_CAP_FLAG_CALLBACK, vsc_cb);
    dsn.sn_lo = (uint32_t)DSN;
    dsn.sn_hi = (uint32_t)(DSN >> 32);
    d->dsn = add_cap(d, 0, VFU_CAP_FLAG_EXTENDED, &dsn);
    for (size_t i = 0; i < 16; i++) {
        d->shadow[d->vsc_cb + i] = (uint8_t)(0x60 + i);
        d->shadow[0x400 + i] = (uint8_t)(0x70 + i);
    }
    assert_int_equal(vfu_realize_ctx(d->ctx), 0);
    /* Capabilities may come after realize. */
    d->evsc = add_cap(d, 0, VFU_CAP_FLAG_EXTENDED, &evsc);
    assert_int_equal(pthread_create(&d->thread, NULL, serve, d), 0);
    return d;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct timeval tv = { .tv_sec = 20 };

    assert_non_null(f);
    f->dev = dev_create();
    f->c = vfu_client_connect(f->dev->sock);
    assert_non_null(f->c);
    assert_int_equal(vfu_client_negotiate(f->c, NULL), 0);
    assert_int_equal(setsockopt(vfu_client_fd(f->c), SOL_SOCKET, SO_RCVTIMEO,
                                &tv, sizeof(tv)), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    vfu_client_close(f->c);
    pthread_join(f->dev->thread, NULL);
    assert_int_equal(f->dev->run_errno, ENOTCONN);
    vfu_destroy_ctx(f->dev->ctx);
    rmdir(f->dev->dir);
    free(f->dev);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Client helpers                                                      */
/* ------------------------------------------------------------------ */

static uint32_t
rd(struct fx *f, uint64_t off, uint32_t len)
{
    uint32_t v = 0;

    assert_int_equal(vfu_client_region_read(f->c, CFG, off, &v, len), 0);
    return v;
}

/* A config write; 0 or the errno of the error reply. */
static int
wr(struct fx *f, uint64_t off, uint32_t val, uint32_t len)
{
    errno = 0;
    if (vfu_client_region_write(f->c, CFG, off, &val, len, false) < 0) {
        assert_int_not_equal(errno, 0);
        return errno;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* What a guest sees first                                             */
/* ------------------------------------------------------------------ */

/* Sizes a BAR as a guest does; returns the read-back and restores it. */
static uint32_t
size_bar(struct fx *f, uint64_t off)
{
    uint32_t old = rd(f, off, 4), v;

    assert_int_equal(wr(f, off, 0xffffffff, 4), 0);
    v = rd(f, off, 4);
    assert_int_equal(wr(f, off, old, 4), 0);
    assert_int_equal(rd(f, off, 4), old);
    return v;
}

static void
test_bars_and_chains(void **state)
{
    struct fx *f = *state;
    struct dev *d = f->dev;
    size_t n = 0, pos, guard;

    assert_int_equal(rd(f, PCI_VENDOR_ID, 4), VID | DID << 16);
    assert_int_equal(rd(f, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST,
                     PCI_STATUS_CAP_LIST);

    assert_int_equal(size_bar(f, PCI_BASE_ADDRESS_0), 0xffffc000);
    assert_int_equal(size_bar(f, PCI_BASE_ADDRESS_1), 0xffffff01);
    assert_int_equal(size_bar(f, PCI_BASE_ADDRESS_2), 0xfff0000c);
    assert_int_equal(size_bar(f, PCI_BASE_ADDRESS_3), 0xffffffff);
    assert_int_equal(size_bar(f, PCI_BASE_ADDRESS_4), 0x00000004);
    assert_int_equal(size_bar(f, PCI_BASE_ADDRESS_5), 0xfffffffe);
    assert_int_equal(size_bar(f, PCI_ROM_ADDRESS), 0xffff0001);

    /* The standard chain: exactly the standard capabilities, in order. */
    pos = rd(f, PCI_CAPABILITY_LIST, 1);
    for (guard = 0; pos != 0 && guard < 48; guard++) {
        uint32_t hdr = rd(f, pos, 2);
        while (n < d->nr_caps && d->caps[n].ext) {
            n++;
        }
        assert_true(n < d->nr_caps);
        assert_int_equal(pos, d->caps[n].off);
        assert_int_equal(hdr & 0xff, d->caps[n].id);
        assert_int_equal(pos % 4, 0);
        pos = hdr >> 8;
        n++;
    }
    assert_int_equal(pos, 0);
    for (; n < d->nr_caps; n++) {
        assert_true(d->caps[n].ext);
    }

    /* The extended chain from 0x100. */
    n = 0;
    pos = 0x100;
    for (guard = 0; pos != 0 && guard < 64; guard++) {
        uint32_t hdr = rd(f, pos, 4);
        while (n < d->nr_caps && !d->caps[n].ext) {
            n++;
        }
        assert_true(n < d->nr_caps);
        assert_int_equal(pos, d->caps[n].off);
        assert_int_equal(PCI_EXT_CAP_ID(hdr), d->caps[n].id);
        pos = PCI_EXT_CAP_NEXT(hdr);
        n++;
    }
    assert_int_equal(pos, 0);
    for (; n < d->nr_caps; n++) {
        assert_false(d->caps[n].ext);
    }
    assert_int_equal(d->evsc, 0x10c);
    assert_int_equal(rd(f, d->dsn + 4, 4), (uint32_t)DSN);
    assert_int_equal(rd(f, d->dsn + 8, 4), (uint32_t)(DSN >> 32));
    assert_int_equal(rd(f, d->evsc + 4, 4), 0x0102abcd);
}

/* Reads of every size at every offset agree with one whole read. */
static void
test_any_size_alignment(void **state)
{
    struct fx *f = *state;
    static uint8_t all[4096];
    uint8_t buf[8];

    assert_int_equal(vfu_client_region_read(f->c, CFG, 0, all, 4096), 0);
    for (uint32_t len = 1; len <= 8; len++) {
        for (uint64_t off = 0; off + len <= 0x120; off++) {
            assert_int_equal(vfu_client_region_read(f->c, CFG, off, buf, len),
                             0);
            assert_memory_equal(buf, all + off, len);
        }
    }
    /* Device-owned bytes came from the callback. */
    assert_memory_equal(all + 0x400, "\x70\x71\x72\x73", 4);
    errno = 0;
    assert_int_equal(vfu_client_region_read(f->c, CFG, 4095, buf, 2), -1);
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* Header                                                              */
/* ------------------------------------------------------------------ */

static void
test_header_registers(void **state)
{
    struct fx *f = *state;

    assert_int_equal(wr(f, PCI_COMMAND, 0xffff, 2), 0);
    assert_int_equal(rd(f, PCI_COMMAND, 2), 0x0547);
    assert_int_equal(wr(f, PCI_COMMAND, 0, 2), 0);
    assert_int_equal(wr(f, PCI_VENDOR_ID, 0, 2), EPERM);
    assert_int_equal(wr(f, PCI_CLASS_REVISION, 0, 4), EPERM);
    assert_int_equal(wr(f, PCI_CAPABILITY_LIST, 0x50, 1), EPERM);
    assert_int_equal(wr(f, PCI_INTERRUPT_PIN, 1, 1), EPERM);
    assert_int_equal(rd(f, PCI_INTERRUPT_PIN, 1), 0);   /* no INTx */
    /* The status register: the capability list bit is not writable. */
    assert_int_equal(wr(f, PCI_STATUS, 0, 2), 0);
    assert_int_equal(rd(f, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
    assert_int_equal(wr(f, PCI_INTERRUPT_LINE, 0x0b, 1), 0);
    assert_int_equal(rd(f, PCI_INTERRUPT_LINE, 1), 0x0b);
}

/* ------------------------------------------------------------------ */
/* Capabilities                                                        */
/* ------------------------------------------------------------------ */

static void
test_pm(void **state)
{
    struct fx *f = *state;
    size_t ctl = f->dev->pm + PCI_PM_CTRL;

    assert_int_equal(rd(f, f->dev->pm + PCI_PM_PMC, 2), 0xce03);
    assert_int_equal(wr(f, ctl, 2, 2), 0);                      /* D2 */
    assert_int_equal(rd(f, ctl, 2), 2);
    assert_int_equal(wr(f, ctl, 1, 2), 0);                      /* D2->D1: no */
    assert_int_equal(rd(f, ctl, 2), 2);
    assert_int_equal(wr(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2), 0);
    assert_int_equal(wr(f, ctl, 0x0103, 2), 0);                 /* D3hot */
    assert_int_equal(rd(f, ctl, 2), 0x0103);
    assert_int_equal(f->dev->resets[VFU_RESET_DEVICE], 0);
    assert_int_equal(wr(f, ctl, 0x0100, 2), 0);                 /* -> D0 */
    assert_int_equal(f->dev->resets[VFU_RESET_DEVICE], 1);
    assert_int_equal(rd(f, PCI_COMMAND, 2), 0);
    assert_int_equal(rd(f, ctl, 2), 0x0100);    /* PME_En sticky (D3cold) */

    /* Read-only parts refused; the header too. */
    assert_int_equal(wr(f, f->dev->pm + PCI_PM_PMC, 0, 2), EPERM);
    assert_int_equal(wr(f, f->dev->pm, 0, 2), EPERM);
    assert_int_equal(wr(f, ctl + 2, 0x0101, 2), EPERM);
    assert_int_equal(rd(f, f->dev->pm + PCI_PM_PMC, 2), 0xce03);
}

static void
test_msi(void **state)
{
    struct fx *f = *state;
    size_t m = f->dev->msi;

    assert_int_equal(rd(f, m + PCI_MSI_FLAGS, 2), 0x0184);
    assert_int_equal(wr(f, m + PCI_MSI_ADDRESS_LO, 0xfee01003, 4), 0);
    assert_int_equal(rd(f, m + PCI_MSI_ADDRESS_LO, 4), 0xfee01000);
    assert_int_equal(wr(f, m + PCI_MSI_ADDRESS_HI, 0x1, 4), 0);
    assert_int_equal(rd(f, m + PCI_MSI_ADDRESS_HI, 4), 0x1);
    assert_int_equal(wr(f, m + PCI_MSI_DATA_64, 0x4021, 2), 0);
    assert_int_equal(rd(f, m + PCI_MSI_DATA_64, 2), 0x4021);
    /* 32 vectors asked, 4 offered. */
    assert_int_equal(wr(f, m + PCI_MSI_FLAGS, 0x0051, 2), 0);
    assert_int_equal(rd(f, m + PCI_MSI_FLAGS, 2), 0x01a5);
    assert_int_equal(wr(f, m + PCI_MSI_MASK_64, 0xffffffff, 4), 0);
    assert_int_equal(rd(f, m + PCI_MSI_MASK_64, 4), 0xf);
    assert_int_equal(wr(f, m + PCI_MSI_PENDING_64, 0, 4), EPERM);
    assert_int_equal(rd(f, m + PCI_MSI_PENDING_64, 4), 0x2);
    /* A device reset disables it again. */
    assert_int_equal(vfu_client_reset(f->c), 0);
    assert_int_equal(rd(f, m + PCI_MSI_FLAGS, 2), 0x0184);
    assert_int_equal(rd(f, m + PCI_MSI_MASK_64, 4), 0);
}

static void
test_msix(void **state)
{
    struct fx *f = *state;
    size_t x = f->dev->msix;

    assert_int_equal(rd(f, x + PCI_MSIX_FLAGS, 2), MSIX_VECS - 1);
    assert_int_equal(rd(f, x + PCI_MSIX_TABLE, 4), 0);
    assert_int_equal(rd(f, x + PCI_MSIX_PBA, 4), 0x2000);
    assert_int_equal(wr(f, x + PCI_MSIX_FLAGS, 0xffff, 2), 0);
    assert_int_equal(rd(f, x + PCI_MSIX_FLAGS, 2), 0xc000 | (MSIX_VECS - 1));
    assert_int_equal(wr(f, x + PCI_MSIX_FLAGS + 1, 0x80, 1), 0);
    assert_int_equal(rd(f, x + PCI_MSIX_FLAGS, 2), 0x8000 | (MSIX_VECS - 1));
    assert_int_equal(wr(f, x + PCI_MSIX_TABLE, 0x100, 4), EPERM);
    assert_int_equal(wr(f, x + PCI_MSIX_PBA, 0x1, 4), EPERM);
    assert_int_equal(rd(f, x + PCI_MSIX_PBA, 4), 0x2000);
}

static void
test_express_flr(void **state)
{
    struct fx *f = *state;
    size_t p = f->dev->px;

    assert_int_equal(wr(f, PCI_BASE_ADDRESS_0, 0xfe000000, 4), 0);
    assert_int_equal(wr(f, PCI_COMMAND, 0x0006, 2), 0);
    assert_int_equal(wr(f, f->dev->msix + PCI_MSIX_FLAGS, 0x8000, 2), 0);
    /* MPS 256 (offered), relaxed ordering, no snoop; ext tag not offered. */
    assert_int_equal(wr(f, p + PCI_EXP_DEVCTL, 0x0930, 2), 0);
    assert_int_equal(rd(f, p + PCI_EXP_DEVCTL, 2), 0x0830);
    assert_int_equal(wr(f, p + PCI_EXP_LNKCTL, 0xffff, 2), 0);
    assert_int_equal(rd(f, p + PCI_EXP_LNKCTL, 2), 0x03cb);
    assert_int_equal(wr(f, p + PCI_EXP_DEVCTL2, 0xffff, 2), 0);
    assert_int_equal(rd(f, p + PCI_EXP_DEVCTL2, 2), 0x0350);
    assert_int_equal(wr(f, p + PCI_EXP_LNKCTL2, 0x0003, 2), 0);
    assert_int_equal(rd(f, p + PCI_EXP_LNKCTL2, 2), 0x0003);

    /* Initiate FLR. */
    assert_int_equal(wr(f, p + PCI_EXP_DEVCTL, 0x8830, 2), 0);
    assert_int_equal(f->dev->resets[VFU_RESET_PCI_FLR], 1);
    assert_int_equal(rd(f, p + PCI_EXP_DEVCTL, 2), 0x0020);     /* MPS kept */
    assert_int_equal(rd(f, p + PCI_EXP_LNKCTL, 2), 0x03cb);     /* kept */
    assert_int_equal(rd(f, p + PCI_EXP_DEVCTL2, 2), 0);
    assert_int_equal(rd(f, p + PCI_EXP_LNKCTL2, 2), 0x0003);
    assert_int_equal(rd(f, PCI_COMMAND, 2), 0);
    assert_int_equal(rd(f, PCI_BASE_ADDRESS_0, 4), 0);
    assert_int_equal(rd(f, f->dev->msix + PCI_MSIX_FLAGS, 2), MSIX_VECS - 1);

    /* Read-only registers. */
    assert_int_equal(wr(f, p + PCI_EXP_FLAGS, 0, 2), EPERM);
    assert_int_equal(wr(f, p + PCI_EXP_DEVCAP, 0, 4), EPERM);
    assert_int_equal(wr(f, p + PCI_EXP_LNKCAP, 1, 4), EPERM);
    assert_int_equal(wr(f, p + PCI_EXP_LNKSTA, 1, 2), EPERM);
    assert_int_equal(wr(f, p + PCI_EXP_DEVCAP2, 0, 4), EPERM);
    assert_int_equal(rd(f, p + PCI_EXP_DEVCAP, 4), 0x10000001);
}

static void
test_vendor_specific(void **state)
{
    struct fx *f = *state;
    struct dev *d = f->dev;
    uint8_t buf[16];

    /* Writable data, read-only size. */
    assert_int_equal(rd(f, d->vsc, 4), 0xa10c0009 | (uint32_t)(d->vsc_ro << 8));
    assert_int_equal(wr(f, d->vsc + 4, 0x11223344, 4), 0);
    assert_int_equal(rd(f, d->vsc + 4, 4), 0x11223344);
    assert_int_equal(wr(f, d->vsc + 2, 0x20, 1), EPERM);
    /* VFU_CAP_FLAG_READONLY. */
    assert_int_equal(wr(f, d->vsc_ro + 4, 1, 4), EPERM);
    assert_int_equal(wr(f, d->vsc_ro + 3, 0xb1, 1), 0);         /* same */
    assert_int_equal(rd(f, d->vsc_ro, 4), 0xb1080009 |
                                          (uint32_t)(d->vsc_cb << 8));
    /* VFU_CAP_FLAG_CALLBACK: the body is the callback's, the header ours. */
    d->cb_reads = 0;
    assert_int_equal(vfu_client_region_read(f->c, CFG, d->vsc_cb - 2, buf, 8),
                     0);
    assert_int_equal(buf[2], PCI_CAP_ID_VNDR);
    assert_int_equal(buf[3], 0);                /* the last one */
    assert_memory_equal(buf + 4, "\x62\x63\x64\x65", 4);
    assert_int_equal(d->cb_reads, 1);
    assert_int_equal(d->cb_last_off, d->vsc_cb + 2);
    assert_int_equal(d->cb_last_count, 4);
    assert_int_equal(wr(f, d->vsc_cb + 4, 0xcafe, 2), 0);
    assert_int_equal(d->cb_writes, 1);
    assert_int_equal(rd(f, d->vsc_cb + 4, 2), 0xcafe);
    assert_int_equal(wr(f, d->vsc_cb + 1, 0x40, 1), EPERM);
    /* Extended vendor-specific: headers read-only, data writable. */
    assert_int_equal(wr(f, d->evsc + 4, 0, 4), EPERM);
    assert_int_equal(wr(f, d->evsc + 8, 0xfeedface, 4), 0);
    assert_int_equal(rd(f, d->evsc + 8, 4), 0xfeedface);
    /* DSN: read-only. */
    assert_int_equal(wr(f, d->dsn + 4, 0, 4), EPERM);
    assert_int_equal(wr(f, d->dsn, 0x0001000b, 4), EPERM);
}

/* A multi-write with one refused entry changes nothing. */
static void
test_write_multi_refused(void **state)
{
    struct fx *f = *state;
    struct vfio_user_write_multi_data w[2];
    uint32_t addr = 0xfee00000, pend = 0;

    memset(w, 0, sizeof(w));
    w[0].region = CFG;
    w[0].offset = f->dev->msi + PCI_MSI_ADDRESS_LO;
    w[0].count = 4;
    memcpy(w[0].data, &addr, 4);
    w[1].region = CFG;
    w[1].offset = f->dev->msi + PCI_MSI_PENDING_64;
    w[1].count = 4;
    memcpy(w[1].data, &pend, 4);
    errno = 0;
    assert_int_equal(vfu_client_region_write_multi(f->c, w, 2, false), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(rd(f, f->dev->msi + PCI_MSI_ADDRESS_LO, 4), 0);
    assert_int_equal(vfu_client_region_write_multi(f->c, w, 1, false), 1);
    assert_int_equal(rd(f, f->dev->msi + PCI_MSI_ADDRESS_LO, 4), addr);
}

/* A write across an emulated register into callback-owned bytes. */
static void
test_split_write(void **state)
{
    struct fx *f = *state;
    struct dev *d = f->dev;
    uint8_t buf[8] = { 0x09, 0x00, 0x10, 0x99,
                       0x11, 0x22, 0x33, 0x44 };

    d->cb_writes = 0;
    assert_int_equal(vfu_client_region_write(f->c, CFG, d->vsc_cb, buf, 8,
                                             false), 0);
    assert_int_equal(d->cb_writes, 1);
    assert_int_equal(d->cb_last_off, d->vsc_cb + 2);
    assert_int_equal(d->cb_last_count, 6);
    assert_memory_equal(d->shadow + d->vsc_cb + 2, buf + 2, 6);
    /* Past the last capability, the device's bytes, through the callback. */
    assert_int_equal(wr(f, 0x400, 0x01020304, 4), 0);
    assert_int_equal(rd(f, 0x400, 4), 0x01020304);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_bars_and_chains),
        T(test_any_size_alignment),
        T(test_header_registers),
        T(test_pm),
        T(test_msi),
        T(test_msix),
        T(test_express_flr),
        T(test_vendor_specific),
        T(test_write_multi_refused),
        T(test_split_write),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
