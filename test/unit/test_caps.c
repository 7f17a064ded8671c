/*
 * Unit tests for lib/server/caps.c, lib/server/cap_kinds.c and the register
 * table (lib/server/pci_table.c): adding
 * capabilities (every refusal and its errno), placement and the two chains,
 * find/find_next, each capability's write/W1C/sticky masks, its behaviour
 * through region_config_access() (the access path and the reset
 * orchestrator), the kinds of reset, the INTx pin and status, and the
 * interrupt-state getters. Contexts are built by hand, no socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "private.h"

static struct {
    int resets[3];
    vfu_reset_type_t last;
    int fail_errno;         /* reset fails with this when set */
    uint8_t devctl_seen[2]; /* Device Control as the FLR callback saw it */
    size_t px;              /* where to look */
    int cb_calls;
    loff_t cb_off;
    size_t cb_count;
    bool cb_write;
    uint8_t cb_data[16];
} st;

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    st.resets[type]++;
    st.last = type;
    if (st.px != 0) {
        memcpy(st.devctl_seen, ctx->pci.cfg + st.px + PCI_EXP_DEVCTL, 2);
    }
    if (st.fail_errno != 0) {
        errno = st.fail_errno;
        return -1;
    }
    return 0;
}

static ssize_t
cfg_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    (void)ctx;
    st.cb_calls++;
    st.cb_off = off;
    st.cb_count = count;
    st.cb_write = is_write;
    if (is_write) {
        memcpy(st.cb_data, buf, count < 16 ? count : 16);
    } else {
        for (size_t i = 0; i < count; i++) {
            buf[i] = (char)(0xc0 + i);
        }
    }
    return (ssize_t)count;
}

static vfu_ctx_t *
new_ctx(vfu_pci_type_t type)
{
    vfu_ctx_t *ctx = calloc(1, sizeof(*ctx));

    assert_non_null(ctx);
    assert_int_equal(pci_alloc(ctx), 0);
    for (int i = 0; i < VFU_PCI_DEV_NUM_REGIONS; i++) {
        ctx->regions[i].fd = -1;
    }
    ctx->reset_cb = reset_cb;
    if ((int)type >= 0) {
        assert_int_equal(vfu_pci_init(ctx, type, PCI_HEADER_TYPE_NORMAL, 0), 0);
    }
    return ctx;
}

static int
setup_conv(void **state)
{
    memset(&st, 0, sizeof(st));
    *state = new_ctx(VFU_PCI_TYPE_CONVENTIONAL);
    return 0;
}

static int
setup_express(void **state)
{
    memset(&st, 0, sizeof(st));
    *state = new_ctx(VFU_PCI_TYPE_EXPRESS);
    return 0;
}

static int
teardown(void **state)
{
    vfu_ctx_t *ctx = *state;

    pci_free(ctx);
    free(ctx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static ssize_t
wr(vfu_ctx_t *ctx, size_t off, uint32_t val, size_t len)
{
    char buf[4];

    memcpy(buf, &val, 4);       /* little-endian hosts */
    return region_config_access(ctx, buf, len, off, true);
}

static uint32_t
rd(vfu_ctx_t *ctx, size_t off, size_t len)
{
    char buf[4] = { 0 };
    uint32_t val = 0;

    assert_int_equal(region_config_access(ctx, buf, len, off, false), len);
    memcpy(&val, buf, len);
    return val;
}

/* Adds a capability; returns the offset, or -errno. */
static ssize_t
add(vfu_ctx_t *ctx, size_t pos, int flags, const void *data)
{
    ssize_t ret;

    errno = 0;
    ret = vfu_pci_add_capability(ctx, pos, flags, (void *)data);
    if (ret < 0) {
        assert_int_not_equal(errno, 0);
        return -errno;
    }
    return ret;
}

static uint32_t
mask32(const uint8_t *m, size_t off)
{
    return pci_get32(m, off);
}

static uint16_t
mask16(const uint8_t *m, size_t off)
{
    return pci_get16(m, off);
}

static struct pmcap
pm_cap(uint16_t pmc, uint16_t pmcsr)
{
    struct pmcap pm;

    memset(&pm, 0, sizeof(pm));
    pm.hdr.id = PCI_CAP_ID_PM;
    memcpy(&pm.pc, &pmc, 2);
    pm.pmcs.raw = pmcsr;
    return pm;
}

static struct msicap
msi_cap(uint16_t flags)
{
    struct msicap msi;

    memset(&msi, 0, sizeof(msi));
    msi.hdr.id = PCI_CAP_ID_MSI;
    memcpy(&msi.mc, &flags, 2);
    return msi;
}

static struct msixcap
msix_cap(uint16_t nvec, uint32_t table, uint32_t pba)
{
    struct msixcap x;
    uint16_t flags = (uint16_t)(nvec - 1);

    memset(&x, 0, sizeof(x));
    x.hdr.id = PCI_CAP_ID_MSIX;
    memcpy(&x.mxc, &flags, 2);
    memcpy(&x.mtab, &table, 4);
    memcpy(&x.mpba, &pba, 4);
    return x;
}

static struct pxcap
px_cap(unsigned ver, uint32_t devcap, uint32_t devcap2)
{
    struct pxcap px;

    memset(&px, 0, sizeof(px));
    px.hdr.id = PCI_CAP_ID_EXP;
    px.pxcaps.ver = ver & 0xf;
    px.pxcaps.dpt = PCI_EXP_TYPE_ENDPOINT;
    memcpy(&px.pxdcap, &devcap, 4);
    memcpy(&px.pxdcap2, &devcap2, 4);
    return px;
}

static void
vsc(uint8_t *buf, uint8_t size)
{
    memset(buf, 0, size);
    buf[0] = PCI_CAP_ID_VNDR;
    buf[2] = size;
}

static void
ext_vsc(uint8_t *buf, uint16_t len)
{
    uint32_t h = PCI_EXT_CAP_ID_VNDR | 1u << 16;
    uint32_t v = 0x1234 | 1u << 16 | (uint32_t)len << 20;

    memset(buf, 0, len);
    memcpy(buf, &h, 4);
    memcpy(buf + 4, &v, 4);
}

static struct dsncap
dsn_cap(uint64_t sn)
{
    struct dsncap d;

    memset(&d, 0, sizeof(d));
    d.hdr.id = PCI_EXT_CAP_ID_DSN;
    d.hdr.version = 1;
    d.sn_lo = (uint32_t)sn;
    d.sn_hi = (uint32_t)(sn >> 32);
    return d;
}

/* ------------------------------------------------------------------ */
/* Adding: refusals                                                    */
/* ------------------------------------------------------------------ */

static void
test_add_refused(void **state)
{
    vfu_ctx_t *ctx = *state;
    vfu_ctx_t *bare = new_ctx((vfu_pci_type_t)-1);
    struct pmcap pm = pm_cap(3, 0);
    struct msicap msi = msi_cap(6 << 1);
    struct msixcap x6 = msix_cap(4, 6, 0);
    struct msixcap x7 = msix_cap(4, 0, 7);
    uint8_t agp[8] = { PCI_CAP_ID_AGP };
    uint8_t v[0xc1];

    errno = 0;
    assert_int_equal(vfu_pci_add_capability(NULL, 0, 0, &pm), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(add(bare, 0, 0, &pm), -EINVAL);       /* no pci_init */
    assert_int_equal(add(ctx, 0, 0, NULL), -EINVAL);
    assert_int_equal(add(ctx, 0, 1 << 3, &pm), -EINVAL);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_CALLBACK |
                                 VFU_CAP_FLAG_READONLY, &pm), -EINVAL);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &pm), -EINVAL);
    assert_int_equal(add(ctx, 0, 0, agp), -ENOTSUP);
    assert_int_equal(add(ctx, 0, 0, &msi), -EINVAL);       /* 64 vectors */
    assert_int_equal(add(ctx, 0, 0, &x6), -EINVAL);        /* table BIR 6 */
    assert_int_equal(add(ctx, 0, 0, &x7), -EINVAL);        /* PBA BIR 7 */
    vsc(v, 2);
    assert_int_equal(add(ctx, 0, 0, v), -EINVAL);          /* shorter than header */
    vsc(v, 0xc1);
    assert_int_equal(add(ctx, 0, 0, v), -EINVAL);          /* larger than 0x40-0xff */
    assert_int_equal(add(ctx, 0x3c, 0, &pm), -EINVAL);     /* in the header */
    assert_int_equal(add(ctx, 0x42, 0, &pm), -EINVAL);     /* not dword aligned */
    assert_int_equal(add(ctx, 0xfc, 0, &pm), -EINVAL);     /* runs past 0xff */
    assert_int_equal(add(ctx, 0x100, 0, &pm), -EINVAL);

    /* Nothing of it shows. */
    assert_int_equal(ctx->pci.nr_caps, 0);
    assert_int_equal(rd(ctx, PCI_CAPABILITY_LIST, 1), 0);
    assert_int_equal(rd(ctx, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
    teardown((void **)&bare);
}

/*
 * Config space keeps its address from vfu_pci_init() on: a device may hold
 * the pointer while it adds capabilities (the register table grows for the
 * first extended one, config space does not move).
 */
static void
test_config_space_stays(void **state)
{
    vfu_ctx_t *ctx = *state;
    vfu_pci_config_space_t *cs = vfu_pci_get_config_space(ctx);
    uint8_t *raw = (uint8_t *)cs;           /* all 4096 bytes of it */
    struct dsncap d = dsn_cap(1);
    uint8_t v[0x40];

    raw[0x300] = 0x5a;                      /* a device byte, past 256 */
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);
    assert_ptr_equal(vfu_pci_get_config_space(ctx), cs);
    ext_vsc(v, 8);
    assert_int_equal(add(ctx, 0x200, VFU_CAP_FLAG_EXTENDED, v), 0x200);
    assert_ptr_equal(vfu_pci_get_config_space(ctx), cs);
    assert_int_equal(raw[0x300], 0x5a);
    assert_int_equal(raw[0x100], PCI_EXT_CAP_ID_DSN);
    assert_int_equal(rd(ctx, 0x300, 1), 0x5a);
}

static void
test_add_refused_express(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct dsncap d = dsn_cap(1);
    struct pxcap px3 = px_cap(3, 0, 0);
    uint8_t aer[8] = { PCI_EXT_CAP_ID_ERR, 0, 1, 0 };
    uint8_t v[0x40];
    uint8_t big[8];
    uint32_t h;

    assert_int_equal(add(ctx, 0, 0, &px3), -EINVAL);       /* version 3 */
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, aer), -ENOTSUP);
    /* The first extended capability must be at 0x100. */
    assert_int_equal(add(ctx, 0x104, VFU_CAP_FLAG_EXTENDED, &d), -EINVAL);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);
    assert_int_equal(add(ctx, 0x200, VFU_CAP_FLAG_EXTENDED, &d), -EEXIST);
    ext_vsc(v, 4);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, v), -EINVAL);
    ext_vsc(v, 8);
    assert_int_equal(add(ctx, 0x108, VFU_CAP_FLAG_EXTENDED, v), -EEXIST);
    assert_int_equal(add(ctx, 0x10e, VFU_CAP_FLAG_EXTENDED, v), -EINVAL);
    assert_int_equal(add(ctx, 0xffc, VFU_CAP_FLAG_EXTENDED, v), -EINVAL);
    assert_int_equal(add(ctx, 0x1000, VFU_CAP_FLAG_EXTENDED, v), -EINVAL);
    assert_int_equal(add(ctx, 0xff8, VFU_CAP_FLAG_EXTENDED, v), 0xff8);
    /* Longer than the extended space (len is 12 bits: 0xf04 fits it). */
    memcpy(big, v, 8);
    h = 0x1234 | 1u << 16 | 0xf04u << 20;
    memcpy(big + 4, &h, 4);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, big), -EINVAL);
    /* Standard capabilities stay below 0x100. */
    vsc(v, 8);
    assert_int_equal(add(ctx, 0x100, 0, v), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* Placement and chains                                                */
/* ------------------------------------------------------------------ */

static void
test_placement_chain(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3, 0);
    struct msicap msi = msi_cap(0);     /* 32-bit, no masking: 10 bytes */
    struct msixcap x = msix_cap(4, 0, 0x800);
    uint8_t v5[5], v32[32], v8[8];

    pm.hdr.next = 0xaa;                 /* ignored */
    assert_int_equal(add(ctx, 0, 0, &pm), 0x40);
    assert_int_equal(add(ctx, 0, 0, &msi), 0x48);
    vsc(v5, 5);
    assert_int_equal(add(ctx, 0, 0, v5), 0x54);
    assert_int_equal(add(ctx, 0x80, 0, &x), 0x80);
    vsc(v32, 32);
    assert_int_equal(add(ctx, 0, 0, v32), 0x5c);       /* fits before 0x80 */
    vsc(v8, 8);
    assert_int_equal(add(ctx, 0, 0, v8), 0x8c);        /* not before 0x80 */
    assert_int_equal(add(ctx, 0x88, 0, v8), -EEXIST);
    assert_int_equal(add(ctx, 0, 0, &pm), -EEXIST);    /* one PM only */

    /* The chain follows the order of adding, not of offsets. */
    assert_int_equal(rd(ctx, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST,
                     PCI_STATUS_CAP_LIST);
    assert_int_equal(rd(ctx, PCI_CAPABILITY_LIST, 1), 0x40);
    assert_int_equal(rd(ctx, 0x40, 2), 0x4801);
    assert_int_equal(rd(ctx, 0x48, 2), 0x5405);
    assert_int_equal(rd(ctx, 0x54, 2), 0x8009);
    assert_int_equal(rd(ctx, 0x80, 2), 0x5c11);
    assert_int_equal(rd(ctx, 0x5c, 2), 0x8c09);
    assert_int_equal(rd(ctx, 0x8c, 2), 0x0009);
    assert_int_equal(rd(ctx, 0x56, 1), 5);             /* vendor size */
    /* Bytes past a short capability stay the device's. */
    assert_int_equal(ctx->pci.emul[0x52], 0);
    assert_int_equal(ctx->pci.emul[0x51], 1);
}

static void
test_placement_full(void **state)
{
    vfu_ctx_t *ctx = *state;
    uint8_t v[0xc0];

    vsc(v, 0xbc);
    assert_int_equal(add(ctx, 0, 0, v), 0x40);
    vsc(v, 4);
    assert_int_equal(add(ctx, 0, 0, v), 0xfc);
    vsc(v, 3);
    assert_int_equal(add(ctx, 0, 0, v), -ENOSPC);
    assert_int_equal(ctx->pci.nr_caps, 2);
}

static void
test_ext_chain(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pxcap px = px_cap(2, 0, 0);
    struct dsncap d = dsn_cap(0x0123456789abcdefULL);
    uint8_t v[0x10];

    assert_int_equal(add(ctx, 0, 0, &px), 0x40);
    d.hdr.next = 0xfff;                 /* ignored */
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);
    ext_vsc(v, 0x10);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, v), 0x10c);
    assert_int_equal(add(ctx, 0x200, VFU_CAP_FLAG_EXTENDED, v), 0x200);

    assert_int_equal(rd(ctx, 0x100, 4), 0x10c10003);
    assert_int_equal(rd(ctx, 0x104, 4), 0x89abcdef);
    assert_int_equal(rd(ctx, 0x108, 4), 0x01234567);
    assert_int_equal(rd(ctx, 0x10c, 4), 0x2001000b);
    assert_int_equal(rd(ctx, 0x110, 4), 0x01011234);
    assert_int_equal(rd(ctx, 0x200, 4), 0x0001000b);
    /* The standard chain is separate. */
    assert_int_equal(rd(ctx, 0x40, 2), 0x0010);
    /* PCI Express v2 takes 0x3c bytes; the next one goes after it. */
    assert_int_equal(ctx->pci.caps[0].size, 0x3c);
}

static void
test_find(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3, 0);
    struct dsncap d = dsn_cap(1);
    uint8_t v[8];

    errno = 0;
    assert_int_equal(vfu_pci_find_capability(ctx, false, PCI_CAP_ID_PM), 0);
    assert_int_equal(errno, ENOENT);
    vsc(v, 8);
    assert_int_equal(add(ctx, 0, 0, v), 0x40);
    assert_int_equal(add(ctx, 0, 0, &pm), 0x48);
    assert_int_equal(add(ctx, 0xa0, 0, v), 0xa0);
    assert_int_equal(add(ctx, 0x60, 0, v), 0x60);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);

    assert_int_equal(vfu_pci_find_capability(ctx, false, PCI_CAP_ID_PM), 0x48);
    assert_int_equal(vfu_pci_find_capability(ctx, false, PCI_CAP_ID_VNDR), 0x40);
    assert_int_equal(vfu_pci_find_capability(ctx, true, PCI_EXT_CAP_ID_DSN),
                     0x100);
    /* In chain order: 0x40, 0xa0, 0x60. */
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0x40,
                                                  PCI_CAP_ID_VNDR), 0xa0);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0x48,
                                                  PCI_CAP_ID_VNDR), 0xa0);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0xa0,
                                                  PCI_CAP_ID_VNDR), 0x60);
    errno = 0;
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0x60,
                                                  PCI_CAP_ID_VNDR), 0);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(vfu_pci_find_capability(ctx, true, PCI_CAP_ID_PM), 0);
    assert_int_equal(errno, ENOENT);

    /*
     * Inside the chain's space but not a capability: no next (ENOENT, as
     * the original); where no header fits: EINVAL. Bad ids, no context.
     */
    errno = 0;
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0x44,
                                                  PCI_CAP_ID_VNDR), 0);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0xff,
                                                  PCI_CAP_ID_VNDR), 0);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0x100,
                                                  PCI_CAP_ID_VNDR), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_find_next_capability(ctx, true, 0x40,
                                                  PCI_CAP_ID_VNDR), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_find_capability(ctx, false, 0x100), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_find_capability(ctx, true, -1), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_find_capability(NULL, false, 1), 0);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_find_next_capability(NULL, false, 0x40, 1), 0);
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* Register tables                                                     */
/* ------------------------------------------------------------------ */

static void
test_table_header(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;

    assert_int_equal(mask16(p->wmask, PCI_COMMAND), 0x0547);
    assert_int_equal(mask16(p->w1cmask, PCI_STATUS), 0xf900);
    assert_int_equal(mask16(p->wmask, PCI_STATUS), 0);
    assert_int_equal(p->wmask[PCI_CACHE_LINE_SIZE], 0xff);
    assert_int_equal(p->wmask[PCI_LATENCY_TIMER], 0xff);
    assert_int_equal(p->wmask[PCI_INTERRUPT_LINE], 0xff);
    assert_int_equal(p->wmask[PCI_INTERRUPT_PIN], 0);
    assert_int_equal(mask32(p->wmask, PCI_VENDOR_ID), 0);
    assert_int_equal(mask32(p->wmask, PCI_CLASS_REVISION), 0);
    assert_int_equal(p->wmask[PCI_HEADER_TYPE], 0);
    assert_int_equal(p->wmask[PCI_CAPABILITY_LIST], 0);
    for (size_t i = 0; i < PCI_STD_HEADER_SIZEOF; i++) {
        assert_int_equal(p->emul[i], 1);
        assert_int_equal(p->rstval[i], 0);
        assert_int_equal(p->sticky[i], 0);
    }
    assert_int_equal(p->emul[PCI_STD_HEADER_SIZEOF], 0);
}

static void
test_table_pm(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    struct pmcap pme = pm_cap(3 | PCI_PM_CAP_D1 | PCI_PM_CAP_PME_D0 |
                              PCI_PM_CAP_PME_D3cold, 0);
    struct pmcap nopme = pm_cap(3, 0);

    assert_int_equal(add(ctx, 0x40, 0, &pme), 0x40);
    assert_int_equal(mask16(p->wmask, 0x42), 0);               /* PMC */
    assert_int_equal(mask16(p->wmask, 0x44), 0x0103);          /* state, PME_En */
    assert_int_equal(mask16(p->w1cmask, 0x44), 0x8000);        /* PME_Status */
    assert_int_equal(mask16(p->sticky, 0x44), 0x8100);
    assert_int_equal(mask16(p->wmask, 0x46), 0);
    assert_int_equal(mask16(p->wmask, 0x40), 0);               /* header */

    /* Without PME support only the power state is the client's. */
    pci_free(ctx);
    assert_int_equal(pci_alloc(ctx), 0);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    assert_int_equal(add(ctx, 0x40, 0, &nopme), 0x40);
    assert_int_equal(mask16(p->wmask, 0x44), 0x0003);
    assert_int_equal(mask16(p->w1cmask, 0x44), 0);
    assert_int_equal(mask16(p->sticky, 0x44), 0);
}

static void
test_table_msi(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    /* 64-bit, maskable, 4 vectors. */
    struct msicap m64 = msi_cap(PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
                                2 << 1);
    /* 32-bit, maskable, 32 vectors. */
    struct msicap m32 = msi_cap(PCI_MSI_FLAGS_MASKBIT | 5 << 1);

    assert_int_equal(add(ctx, 0x40, 0, &m64), 0x40);
    assert_int_equal(ctx->pci.caps[0].size, 0x18);
    assert_int_equal(mask16(p->wmask, 0x42), 0x0071);
    assert_int_equal(mask32(p->wmask, 0x44), 0xfffffffc);
    assert_int_equal(mask32(p->wmask, 0x48), 0xffffffff);
    assert_int_equal(mask16(p->wmask, 0x4c), 0xffff);
    assert_int_equal(mask16(p->wmask, 0x4e), 0);               /* ext data */
    assert_int_equal(mask32(p->wmask, 0x50), 0x0000000f);      /* 4 vectors */
    assert_int_equal(mask32(p->wmask, 0x54), 0);               /* pending */

    /* Other layouts, through a second device. */
    pci_free(ctx);
    assert_int_equal(pci_alloc(ctx), 0);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    assert_int_equal(add(ctx, 0x40, 0, &m32), 0x40);
    assert_int_equal(ctx->pci.caps[0].size, 0x14);
    assert_int_equal(mask16(p->wmask, 0x48), 0xffff);          /* data */
    assert_int_equal(mask16(p->wmask, 0x4a), 0);
    assert_int_equal(mask32(p->wmask, 0x4c), 0xffffffff);      /* 32 vectors */
    assert_int_equal(mask32(p->wmask, 0x50), 0);
    assert_int_equal(add(ctx, 0x80, 0, &m64), -EEXIST);        /* one MSI */
    assert_int_equal(ctx->pci.emul[0x54], 0);
}

static void
test_table_msi_sizes(void **state)
{
    static const struct { uint16_t flags; size_t size; } forms[] = {
        { 0, 0x0a },
        { PCI_MSI_FLAGS_64BIT, 0x0e },
        { PCI_MSI_FLAGS_MASKBIT, 0x14 },
        { PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT, 0x18 },
    };
    vfu_ctx_t *ctx = *state;

    for (size_t i = 0; i < 4; i++) {
        struct msicap m = msi_cap(forms[i].flags);
        uint8_t v[0x18];

        memset(v, 0x5a, sizeof(v));
        memcpy(v, &m, 4);
        pci_free(ctx);
        assert_int_equal(pci_alloc(ctx), 0);
        assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                      PCI_HEADER_TYPE_NORMAL, 0), 0);
        assert_int_equal(add(ctx, 0, 0, v), 0x40);
        assert_int_equal(ctx->pci.caps[0].size, forms[i].size);
        assert_int_equal(ctx->pci.emul[0x40 + forms[i].size - 1], 1);
        assert_int_equal(ctx->pci.emul[0x40 + forms[i].size], 0);
        /* The data register is writable in every form. */
        assert_int_equal(mask16(ctx->pci.wmask, 0x40 + forms[i].size -
                                (forms[i].flags & PCI_MSI_FLAGS_MASKBIT ?
                                 12 : 2)), 0xffff);
    }
}

static void
test_table_msix(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    struct msixcap x = msix_cap(16, 0x1000 | 2, 0x2000 | 2);

    assert_int_equal(add(ctx, 0, 0, &x), 0x40);
    assert_int_equal(mask16(p->wmask, 0x42), 0xc000);
    assert_int_equal(mask32(p->wmask, 0x44), 0);
    assert_int_equal(mask32(p->wmask, 0x48), 0);
    assert_int_equal(rd(ctx, 0x44, 4), 0x1002);
    assert_int_equal(rd(ctx, 0x48, 4), 0x2002);
}

static void
test_table_px(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    struct pxcap px = px_cap(2, PCI_EXP_DEVCAP_FLR | PCI_EXP_DEVCAP_EXT_TAG,
                             0x2 | PCI_EXP_DEVCAP2_COMP_TMOUT_DIS |
                             PCI_EXP_DEVCAP2_LTR);

    assert_int_equal(add(ctx, 0, 0, &px), 0x40);
    assert_int_equal(mask16(p->wmask, 0x42), 0);               /* flags */
    assert_int_equal(mask32(p->wmask, 0x44), 0);               /* devcap */
    assert_int_equal(mask16(p->wmask, 0x48), 0xfdff);          /* devctl */
    assert_int_equal(mask16(p->flrkeep, 0x48), 0x00e0);        /* MPS */
    assert_int_equal(mask16(p->w1cmask, 0x4a), 0x000f);        /* devsta */
    assert_int_equal(mask32(p->wmask, 0x4c), 0);               /* lnkcap */
    assert_int_equal(mask16(p->wmask, 0x50), 0x03cb);          /* lnkctl */
    assert_int_equal(mask16(p->flrkeep, 0x50), 0x03cb);
    assert_int_equal(mask16(p->wmask, 0x52), 0);               /* lnksta */
    assert_int_equal(mask16(p->w1cmask, 0x52), 0);
    for (size_t o = 0x54; o < 0x64; o++) {                     /* slot, root */
        assert_int_equal(p->wmask[o] | p->w1cmask[o], 0);
    }
    assert_int_equal(mask16(p->wmask, 0x68), 0x075f);          /* devctl2 */
    assert_int_equal(mask16(p->wmask, 0x70), 0xffbf);          /* lnkctl2 */
    assert_int_equal(mask16(p->sticky, 0x70), 0xff9f);
    assert_int_equal(mask16(p->w1cmask, 0x72), 0x0020);        /* lnksta2 */
    for (size_t o = 0x74; o < 0x7c; o++) {                     /* slot 2 */
        assert_int_equal(p->wmask[o] | p->w1cmask[o], 0);
        assert_int_equal(p->emul[o], 1);
    }
    assert_int_equal(p->emul[0x7c], 0);
}

static void
test_table_px_minimal(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    struct pxcap px = px_cap(1, 0, 0xffffffff);

    px.pxdc.iflr = 1;           /* never kept */
    assert_int_equal(add(ctx, 0, 0, &px), 0x40);
    assert_int_equal(ctx->pci.caps[0].size, 0x24);
    /* No FLR, no extended tags, no phantom functions. */
    assert_int_equal(mask16(p->wmask, 0x48), 0x7cff);
    assert_int_equal(rd(ctx, 0x48, 2), 0);
    /* Version 1 has no second-generation registers. */
    assert_int_equal(p->emul[0x64], 0);
    assert_int_equal(mask16(p->wmask, 0x68), 0);
}

static void
test_table_readonly_callback(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    struct pmcap pm = pm_cap(3 | PCI_PM_CAP_PME_D0, 0);
    struct msicap msi = msi_cap(0);
    uint8_t v[8];

    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_READONLY, &pm), 0x40);
    for (size_t o = 0x40; o < 0x48; o++) {
        assert_int_equal(p->wmask[o] | p->w1cmask[o], 0);
        assert_int_equal(p->emul[o], 1);
    }
    /* A callback capability needs the config region's callback. */
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_CALLBACK, &msi), -EINVAL);
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].cb = cfg_cb;
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_CALLBACK, &msi), 0x48);
    assert_int_equal(p->emul[0x48], 1);
    assert_int_equal(p->emul[0x49], 1);
    for (size_t o = 0x4a; o < 0x52; o++) {
        assert_int_equal(p->emul[o], 0);
        assert_int_equal(p->wmask[o], 0);
    }
    /* Vendor-specific: the data is the client's, the length is not. */
    vsc(v, 8);
    assert_int_equal(add(ctx, 0, 0, v), 0x54);
    assert_int_equal(p->wmask[0x56], 0);
    for (size_t o = 0x57; o < 0x5c; o++) {
        assert_int_equal(p->wmask[o], 0xff);
    }
}

static void
test_table_dsn_ext_vsc(void **state)
{
    vfu_ctx_t *ctx = *state;
    const struct vfu_pci *p = &ctx->pci;
    struct dsncap d = dsn_cap(42);
    uint8_t v[0x14];

    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);
    for (size_t o = 0x100; o < 0x10c; o++) {
        assert_int_equal(p->wmask[o] | p->w1cmask[o], 0);
        assert_int_equal(p->emul[o], 1);
    }
    ext_vsc(v, 0x14);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, v), 0x10c);
    for (size_t o = 0x10c; o < 0x114; o++) {
        assert_int_equal(p->wmask[o], 0);
    }
    for (size_t o = 0x114; o < 0x120; o++) {
        assert_int_equal(p->wmask[o], 0xff);
    }
    assert_int_equal(p->emul[0x120], 0);
}

/* ------------------------------------------------------------------ */
/* Behaviour                                                           */
/* ------------------------------------------------------------------ */

static void
test_pm_states(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3 | PCI_PM_CAP_D1 | PCI_PM_CAP_PME_D3hot, 0);

    assert_int_equal(add(ctx, 0x40, 0, &pm), 0x40);
    /* D2 is not supported: the write completes, the state stays. */
    assert_int_equal(wr(ctx, 0x44, 2, 2), 2);
    assert_int_equal(rd(ctx, 0x44, 2), 0);
    assert_int_equal(wr(ctx, 0x44, 1, 2), 2);          /* D1 */
    assert_int_equal(rd(ctx, 0x44, 2), 1);
    assert_int_equal(wr(ctx, 0x44, 3, 2), 2);          /* D3hot */
    assert_int_equal(rd(ctx, 0x44, 2), 3);
    assert_int_equal(wr(ctx, 0x44, 1, 2), 2);          /* D3hot -> D1: no */
    assert_int_equal(rd(ctx, 0x44, 2), 3);
    /* PME enable, PME status W1C; reserved and read-only bits ignored. */
    ctx->pci.cfg[0x45] |= 0x80;
    assert_int_equal(wr(ctx, 0x44, 0x0103 | 0x7e0c, 2), 2);
    assert_int_equal(rd(ctx, 0x44, 2), 0x8103);
    assert_int_equal(wr(ctx, 0x44, 0x8103, 2), 2);
    assert_int_equal(rd(ctx, 0x44, 2), 0x0103);
    assert_int_equal(st.resets[VFU_RESET_DEVICE], 0);
    /* PMC is read-only: refused when it would change. */
    assert_int_equal(wr(ctx, 0x42, 0, 2), -EPERM);
    assert_int_equal(rd(ctx, 0x42, 2), 3 | PCI_PM_CAP_D1 | PCI_PM_CAP_PME_D3hot);
    assert_int_equal(wr(ctx, 0x40, 0x0201, 2), -EPERM);   /* header */
    assert_int_equal(wr(ctx, 0x40, 0x0001, 2), 2);        /* same value */
}

static void
test_pm_soft_reset(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3 | PCI_PM_CAP_PME_D3cold | PCI_PM_CAP_PME_D0, 0);

    assert_int_equal(add(ctx, 0x40, 0, &pm), 0x40);
    ctx->regions[0].size = 0x1000;
    ctx->regions[0].flags = VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM;
    pci_region_changed(ctx, 0);
    assert_int_equal(wr(ctx, PCI_BASE_ADDRESS_0, 0xfe000000, 4), 4);
    assert_int_equal(wr(ctx, PCI_COMMAND, PCI_COMMAND_MEMORY, 2), 2);
    assert_int_equal(wr(ctx, 0x44, 0x0103, 2), 2);     /* D3hot, PME_En */
    ctx->pci.cfg[0x45] |= 0x80;                          /* PME_Status */

    /* D3hot -> D0 without No_Soft_Reset: the function resets. */
    assert_int_equal(wr(ctx, 0x44, 0x0100, 2), 2);
    assert_int_equal(st.resets[VFU_RESET_DEVICE], 1);
    assert_int_equal(rd(ctx, PCI_COMMAND, 2), 0);
    assert_int_equal(rd(ctx, PCI_BASE_ADDRESS_0, 4), 0);
    /* D0, PME context kept (PME from D3cold makes it sticky). */
    assert_int_equal(rd(ctx, 0x44, 2), 0x8100);

    /* A failing reset is reported; the state change stands. */
    assert_int_equal(wr(ctx, 0x44, 0x0003, 2), 2);
    st.fail_errno = EIO;
    assert_int_equal(wr(ctx, 0x44, 0x0000, 2), -EIO);
    st.fail_errno = 0;
    assert_int_equal(rd(ctx, 0x44, 2) & 3, 0);
}

static void
test_pm_no_soft_reset(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3, PCI_PM_CTRL_NO_SOFT_RESET);

    assert_int_equal(add(ctx, 0, 0, &pm), 0x40);
    assert_int_equal(wr(ctx, PCI_COMMAND, PCI_COMMAND_IO, 2), 2);
    assert_int_equal(wr(ctx, 0x44, 3, 2), 2);
    assert_int_equal(rd(ctx, 0x44, 2), 0x000b);
    assert_int_equal(wr(ctx, 0x44, 0, 2), 2);
    assert_int_equal(rd(ctx, 0x44, 2), 0x0008);
    assert_int_equal(st.resets[VFU_RESET_DEVICE], 0);
    assert_int_equal(rd(ctx, PCI_COMMAND, 2), PCI_COMMAND_IO);
    /* No_Soft_Reset is read-only; no PME support: PME_En stays 0. */
    assert_int_equal(wr(ctx, 0x44, 0x0100, 2), 2);
    assert_int_equal(rd(ctx, 0x44, 2), 0x0008);
    assert_int_equal(wr(ctx, 0x45, 0x01, 1), -EPERM);
}

static void
test_msi_behaviour(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msicap m = msi_cap(PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT |
                              2 << 1);

    assert_false(caps_msi_enabled(ctx));
    assert_int_equal(caps_msi_vectors(ctx), 0);
    assert_true(caps_msi_vector_masked(ctx, 0));
    m.mpend = 0x5;
    assert_int_equal(add(ctx, 0x50, 0, &m), 0x50);

    /* Address: bits 1:0 read 0; the upper dword is all writable. */
    assert_int_equal(wr(ctx, 0x54, 0xfee00003, 4), 4);
    assert_int_equal(rd(ctx, 0x54, 4), 0xfee00000);
    assert_int_equal(wr(ctx, 0x58, 0x12345678, 4), 4);
    assert_int_equal(rd(ctx, 0x58, 4), 0x12345678);
    assert_int_equal(wr(ctx, 0x5c, 0x4041, 2), 2);
    assert_int_equal(rd(ctx, 0x5c, 2), 0x4041);

    /* 8 vectors asked for, 4 offered: 4 enabled. */
    assert_int_equal(wr(ctx, 0x52, PCI_MSI_FLAGS_ENABLE | 3 << 4, 2), 2);
    assert_int_equal(rd(ctx, 0x52, 2), 0x01a5);
    assert_true(caps_msi_enabled(ctx));
    assert_int_equal(caps_msi_vectors(ctx), 4);
    /* Reserved encodings too. */
    assert_int_equal(wr(ctx, 0x52, PCI_MSI_FLAGS_ENABLE | 7 << 4, 2), 2);
    assert_int_equal(rd(ctx, 0x52, 2), 0x01a5);
    assert_int_equal(wr(ctx, 0x52, PCI_MSI_FLAGS_ENABLE | 1 << 4, 2), 2);
    assert_int_equal(caps_msi_vectors(ctx), 2);
    /* The high byte alone leaves the enabled vectors alone. */
    assert_int_equal(wr(ctx, 0x53, 0x01, 1), 1);
    assert_int_equal(rd(ctx, 0x52, 2), 0x0195);

    /* Mask bits for the 4 vectors offered; the rest read 0. */
    assert_int_equal(wr(ctx, 0x60, 0xffffffff, 4), 4);
    assert_int_equal(rd(ctx, 0x60, 4), 0xf);
    assert_true(caps_msi_vector_masked(ctx, 1));
    assert_int_equal(wr(ctx, 0x60, 0x1, 4), 4);
    assert_true(caps_msi_vector_masked(ctx, 0));
    assert_false(caps_msi_vector_masked(ctx, 1));
    assert_true(caps_msi_vector_masked(ctx, 2));    /* only 2 enabled */

    /* Pending bits are the device's. */
    assert_int_equal(wr(ctx, 0x64, 0, 4), -EPERM);
    assert_int_equal(rd(ctx, 0x64, 4), 0x5);
    assert_int_equal(wr(ctx, 0x64, 0x5, 4), 4);

    assert_int_equal(wr(ctx, 0x52, 0, 2), 2);
    assert_false(caps_msi_enabled(ctx));
    assert_int_equal(caps_msi_vectors(ctx), 0);
}

static void
test_msi_unmaskable(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msicap m = msi_cap(0);

    assert_int_equal(add(ctx, 0, 0, &m), 0x40);
    assert_int_equal(wr(ctx, 0x42, PCI_MSI_FLAGS_ENABLE | 5 << 4, 2), 2);
    assert_int_equal(rd(ctx, 0x42, 2), 0x0001);
    assert_int_equal(caps_msi_vectors(ctx), 1);
    assert_false(caps_msi_vector_masked(ctx, 0));
    assert_true(caps_msi_vector_masked(ctx, 1));
    assert_int_equal(wr(ctx, 0x48, 0xabcd, 2), 2);     /* 32-bit data */
    assert_int_equal(rd(ctx, 0x48, 2), 0xabcd);
}

static void
test_msix_behaviour(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msixcap x = msix_cap(8, 0x0 | 1, 0x800 | 1);

    assert_false(caps_msix_enabled(ctx));
    assert_false(caps_msix_masked(ctx));
    assert_int_equal(add(ctx, 0x70, 0, &x), 0x70);
    assert_int_equal(rd(ctx, 0x72, 2), 7);
    assert_int_equal(wr(ctx, 0x72, 0xffff, 2), 2);
    assert_int_equal(rd(ctx, 0x72, 2), 0xc007);
    assert_true(caps_msix_enabled(ctx));
    assert_true(caps_msix_masked(ctx));
    assert_int_equal(wr(ctx, 0x73, 0x80, 1), 1);
    assert_true(caps_msix_enabled(ctx));
    assert_false(caps_msix_masked(ctx));
    /* Table and PBA locations are read-only. */
    assert_int_equal(wr(ctx, 0x74, 0x1000, 4), -EPERM);
    assert_int_equal(wr(ctx, 0x78, 0x801, 4), 4);
    assert_int_equal(rd(ctx, 0x74, 4), 1);
    /* Reset disables. */
    pci_reset(ctx);
    assert_false(caps_msix_enabled(ctx));
    assert_int_equal(rd(ctx, 0x72, 2), 7);
}

static void
test_msix_bars(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msixcap x = msix_cap(64, 0x1000 | 2, 0x1400 | 2);
    struct msixcap bad = msix_cap(64, 0x1000 | 2, 0x2000 | 2);

    /*
     * A BAR not set up is not held against the capability (it may come
     * later; the original does not check); one that is set up must hold
     * the table and the PBA.
     */
    assert_int_equal(add(ctx, 0, 0, &x), 0x40);
    assert_int_equal(caps_realize(ctx), 0);
    ctx->regions[2].size = 0x1000;      /* table would end at 0x1400 */
    assert_int_equal(caps_realize(ctx), -EINVAL);
    ctx->regions[2].size = 0x1408;      /* the PBA of 64 vectors: 8 bytes */
    assert_int_equal(caps_realize(ctx), 0);
    ctx->regions[2].size = 0x1404;
    assert_int_equal(caps_realize(ctx), -EINVAL);

    /* After realize, checked when added. */
    pci_free(ctx);
    assert_int_equal(pci_alloc(ctx), 0);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    ctx->regions[2].size = 0x2000;
    ctx->realized = true;
    assert_int_equal(add(ctx, 0, 0, &bad), -EINVAL);
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].cb = cfg_cb;
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_CALLBACK, &bad), 0x40);
    assert_int_equal(caps_realize(ctx), 0);    /* the device's business */
}

static void
test_flr(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pxcap px = px_cap(2, PCI_EXP_DEVCAP_FLR | 2, 0);
    struct msixcap x = msix_cap(4, 0, 0x800);

    ctx->regions[0].size = 0x1000;
    ctx->regions[0].flags = VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM;
    pci_region_changed(ctx, 0);
    assert_int_equal(add(ctx, 0, 0, &px), 0x40);
    assert_int_equal(add(ctx, 0, 0, &x), 0x7c);
    st.px = 0x40;

    assert_int_equal(wr(ctx, PCI_BASE_ADDRESS_0, 0xfe000000, 4), 4);
    assert_int_equal(wr(ctx, PCI_COMMAND, 0x0006, 2), 2);
    assert_int_equal(wr(ctx, 0x7e, PCI_MSIX_FLAGS_ENABLE, 2), 2);
    /* Max payload 256, max read request 512, error reporting on. */
    assert_int_equal(wr(ctx, 0x48, 0x202f, 2), 2);
    assert_int_equal(wr(ctx, 0x50, PCI_EXP_LNKCTL_CCC, 2), 2);
    assert_int_equal(wr(ctx, 0x70, 0x0002, 2), 2);   /* target speed */
    ctx->pci.cfg[0x4a] = PCI_EXP_DEVSTA_CED;

    /* Initiate FLR, with other bits in the same write. */
    assert_int_equal(wr(ctx, 0x48, 0x8000 | 0x202f | 0x0400, 2), 2);
    assert_int_equal(st.resets[VFU_RESET_PCI_FLR], 1);
    assert_int_equal(st.last, VFU_RESET_PCI_FLR);
    /* The callback ran before config space was reset; IFLR read 0 then too. */
    assert_int_equal(pci_get16(st.devctl_seen, 0), 0x242f);
    /* Afterwards: quiet device, MPS and link settings kept. */
    assert_int_equal(rd(ctx, 0x48, 2), 0x0020);
    assert_int_equal(rd(ctx, 0x4a, 2), 0);
    assert_int_equal(rd(ctx, 0x50, 2), PCI_EXP_LNKCTL_CCC);
    assert_int_equal(rd(ctx, 0x70, 2), 0x0002);
    assert_int_equal(rd(ctx, PCI_COMMAND, 2), 0);
    assert_int_equal(rd(ctx, PCI_BASE_ADDRESS_0, 4), 0);
    assert_int_equal(rd(ctx, 0x7e, 2), 3);
    assert_false(caps_msix_enabled(ctx));

    /* A device reset resets the link settings too (LNKCTL2 is sticky). */
    assert_int_equal(wr(ctx, 0x48, 0x0040, 2), 2);
    pci_reset(ctx);
    assert_int_equal(rd(ctx, 0x48, 2), 0);
    assert_int_equal(rd(ctx, 0x50, 2), 0);
    assert_int_equal(rd(ctx, 0x70, 2), 0x0002);

    /* A failing reset callback: its errno, config space untouched. */
    assert_int_equal(wr(ctx, PCI_COMMAND, 0x0002, 2), 2);
    st.fail_errno = EBUSY;
    assert_int_equal(wr(ctx, 0x49, 0x80, 1), -EBUSY);
    assert_int_equal(st.resets[VFU_RESET_PCI_FLR], 2);
    assert_int_equal(rd(ctx, PCI_COMMAND, 2), 0x0002);
    assert_int_equal(rd(ctx, 0x48, 2), 0);
}

static void
test_flr_not_capable(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pxcap px = px_cap(2, 0, 0);

    assert_int_equal(add(ctx, 0, 0, &px), 0x40);
    assert_int_equal(wr(ctx, PCI_COMMAND, 0x0002, 2), 2);
    assert_int_equal(wr(ctx, 0x48, 0x8000, 2), 2);
    assert_int_equal(st.resets[VFU_RESET_PCI_FLR], 0);
    assert_int_equal(rd(ctx, 0x48, 2), 0);
    assert_int_equal(rd(ctx, PCI_COMMAND, 2), 0x0002);
    /* Device capabilities: read-only. */
    assert_int_equal(wr(ctx, 0x44, PCI_EXP_DEVCAP_FLR, 4), -EPERM);
    /* Device status W1C, the rest read-only. */
    ctx->pci.cfg[0x4a] = 0x3f;
    assert_int_equal(wr(ctx, 0x4a, 0x0005, 2), 2);
    assert_int_equal(rd(ctx, 0x4a, 2), 0x003a);
}

static void
test_readonly_cap(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msicap m = msi_cap(PCI_MSI_FLAGS_64BIT);
    uint8_t v[12];

    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_READONLY, &m), 0x40);
    assert_int_equal(wr(ctx, 0x42, PCI_MSI_FLAGS_ENABLE, 2), -EPERM);
    assert_int_equal(wr(ctx, 0x44, 0xfee00000, 4), -EPERM);
    assert_int_equal(rd(ctx, 0x42, 2), PCI_MSI_FLAGS_64BIT);
    assert_int_equal(wr(ctx, 0x42, PCI_MSI_FLAGS_64BIT, 2), 2);
    assert_false(caps_msi_enabled(ctx));
    vsc(v, 12);
    v[5] = 0x77;
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_READONLY, v), 0x50);
    assert_int_equal(wr(ctx, 0x54, 0, 4), -EPERM);
    assert_int_equal(rd(ctx, 0x54, 4), 0x7700);
}

static void
test_vendor_cap(void **state)
{
    vfu_ctx_t *ctx = *state;
    uint8_t v[12];

    vsc(v, 12);
    assert_int_equal(add(ctx, 0, 0, v), 0x40);
    assert_int_equal(wr(ctx, 0x44, 0xdeadbeef, 4), 4);
    assert_int_equal(rd(ctx, 0x44, 4), 0xdeadbeef);
    /* The length byte is read-only, the byte after it is not. */
    assert_int_equal(wr(ctx, 0x42, 0xffff, 2), 2);
    assert_int_equal(rd(ctx, 0x42, 2), 0xff0c);
    assert_int_equal(wr(ctx, 0x42, 0x20, 1), -EPERM);
    /* Data goes back to the device's values on reset. */
    pci_reset(ctx);
    assert_int_equal(rd(ctx, 0x44, 4), 0);
    assert_int_equal(rd(ctx, 0x42, 2), 0x000c);
}

static void
test_callback_cap(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msicap m = msi_cap(0);
    char buf[16];

    /* Refused without a config region callback to serve it. */
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_CALLBACK, &m), -EINVAL);
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].cb = cfg_cb;
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_CALLBACK, &m), 0x40);
    st.cb_calls = 0;

    /* Header from the library, the rest from the device. */
    assert_int_equal(rd(ctx, 0x40, 4), 0xc1c00005);
    assert_int_equal(st.cb_calls, 1);
    assert_int_equal(st.cb_off, 0x42);
    assert_int_equal(st.cb_count, 2);
    /* An access across the end of the header and into the capability. */
    assert_int_equal(region_config_access(ctx, buf, 8, 0x3e, false), 8);
    assert_memory_equal(buf, "\x00\x00\x05\x00\xc0\xc1\xc2\xc3", 8);
    assert_int_equal(st.cb_off, 0x42);
    assert_int_equal(st.cb_count, 4);

    /* Writes: the body to the callback, the header's bytes checked. */
    assert_int_equal(wr(ctx, 0x42, 0x0001, 2), 2);
    assert_true(st.cb_write);
    assert_int_equal(st.cb_off, 0x42);
    assert_memory_equal(st.cb_data, "\x01\x00", 2);
    assert_int_equal(wr(ctx, 0x40, 0x00014005, 4), 4);    /* header same */
    assert_int_equal(st.cb_count, 2);
    assert_memory_equal(st.cb_data, "\x01\x00", 2);
    assert_int_equal(wr(ctx, 0x41, 0x50, 1), -EPERM);
    assert_int_equal(rd(ctx, 0x40, 2), 0x0005);
    /* Never the library's MSI state. */
    assert_false(caps_msi_enabled(ctx));
}

/* Config accesses of every size and alignment agree with byte accesses. */
static void
test_any_size_alignment(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pxcap px = px_cap(2, PCI_EXP_DEVCAP_EXT_TAG, 0);
    struct dsncap d = dsn_cap(0x1122334455667788ULL);
    uint8_t ref[0x140], buf[0x1000];

    assert_int_equal(add(ctx, 0, 0, &px), 0x40);
    assert_int_equal(add(ctx, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);
    memcpy(ref, ctx->pci.cfg, sizeof(ref));
    for (size_t len = 1; len <= 16; len++) {
        for (size_t off = 0; off + len <= sizeof(ref); off += 1) {
            assert_int_equal(region_config_access(ctx, (char *)buf, len,
                                                  off, false), len);
            assert_memory_equal(buf, ref + off, len);
        }
    }
    /* A write over the whole capability at an odd offset. */
    memcpy(buf, ref + 0x41, 0x20);
    buf[0x48 - 0x41] = 0x10;        /* devctl low byte: relaxed ordering */
    buf[0x49 - 0x41] = 0x01;        /* extended tag */
    assert_int_equal(region_config_access(ctx, (char *)buf, 0x20, 0x41,
                                          true), 0x20);
    assert_int_equal(rd(ctx, 0x48, 2), 0x0110);
    /* A whole-space read. */
    assert_int_equal(region_config_access(ctx, (char *)buf, 0x1000 - 0x140,
                                          0x140, false), 0x1000 - 0x140);
    assert_int_equal(region_config_access(ctx, (char *)buf, 1, 0x1000,
                                          false), -EINVAL);
}

static void
test_intx(void **state)
{
    vfu_ctx_t *ctx = *state;

    assert_int_equal(rd(ctx, PCI_INTERRUPT_PIN, 1), 0);
    pci_set_intx_pin(ctx, true);
    assert_int_equal(rd(ctx, PCI_INTERRUPT_PIN, 1), 1);
    assert_int_equal(wr(ctx, PCI_INTERRUPT_PIN, 2, 1), -EPERM);
    pci_set_intx_pin(ctx, false);
    assert_int_equal(rd(ctx, PCI_INTERRUPT_PIN, 1), 0);

    pci_set_intx_status(ctx, true);
    assert_int_equal(rd(ctx, PCI_STATUS, 2), PCI_STATUS_INTERRUPT);
    /* Read-only to the client, and not cleared by writing 1 or a reset. */
    assert_int_equal(wr(ctx, PCI_STATUS, PCI_STATUS_INTERRUPT, 2), 2);
    assert_int_equal(rd(ctx, PCI_STATUS, 2), PCI_STATUS_INTERRUPT);
    assert_int_equal(wr(ctx, PCI_STATUS, 0, 2), 2);
    assert_int_equal(rd(ctx, PCI_STATUS, 2), PCI_STATUS_INTERRUPT);
    pci_reset(ctx);
    assert_int_equal(rd(ctx, PCI_STATUS, 2), PCI_STATUS_INTERRUPT);
    pci_set_intx_status(ctx, false);
    assert_int_equal(rd(ctx, PCI_STATUS, 2), 0);
    /* INTx disable is the client's. */
    assert_int_equal(wr(ctx, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2), 2);
    assert_int_equal(rd(ctx, PCI_COMMAND, 2), PCI_COMMAND_INTX_DISABLE);
}

static void
test_reset_kinds(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3 | PCI_PM_CAP_PME_D3cold | PCI_PM_CAP_PME_D0, 0);

    assert_int_equal(add(ctx, 0, 0, &pm), 0x40);
    /* Sticky bits survive every kind; FLR-kept bits only FLR and soft. */
    ctx->pci.flrkeep[PCI_LATENCY_TIMER] = 0xf0;
    assert_int_equal(wr(ctx, PCI_LATENCY_TIMER, 0xff, 1), 1);
    assert_int_equal(wr(ctx, 0x44, 0x0102, 2), 2);
    pci_reset_config(ctx, PCI_RESET_FLR);
    assert_int_equal(rd(ctx, PCI_LATENCY_TIMER, 1), 0xf0);
    assert_int_equal(rd(ctx, 0x44, 2), 0x0100);
    assert_int_equal(wr(ctx, PCI_LATENCY_TIMER, 0xff, 1), 1);
    pci_reset_config(ctx, PCI_RESET_SOFT);
    assert_int_equal(rd(ctx, PCI_LATENCY_TIMER, 1), 0xf0);
    pci_reset_config(ctx, PCI_RESET_DEVICE);
    assert_int_equal(rd(ctx, PCI_LATENCY_TIMER, 1), 0);
    assert_int_equal(rd(ctx, 0x44, 2), 0x0100);
}

static void
test_added_after_realize(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pmcap pm = pm_cap(3, 0);
    uint8_t v[8];

    ctx->realized = true;
    vsc(v, 8);
    assert_int_equal(add(ctx, 0, 0, v), 0x40);
    assert_int_equal(add(ctx, 0, 0, &pm), 0x48);
    assert_int_equal(rd(ctx, 0x41, 1), 0x48);
    assert_int_equal(wr(ctx, 0x4c, 3, 2), 2);
    assert_int_equal(rd(ctx, 0x4c, 2), 3);
}

/*
 * Devices written for the original library: the PCI Express capability on
 * a conventional device, version 0 taken as all 0x3c bytes, and the
 * search for the next capability starting at position 0.
 */
static void
test_original_habits(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct pxcap px = px_cap(0, 0, 0);
    struct pmcap pm = pm_cap(0, 0);
    uint8_t v[8];
    size_t at;

    memset(&px.pxlcap2, 0xa5, sizeof(px.pxlcap2));  /* beyond version 1 */
    assert_int_equal(add(ctx, 0, 0, &pm), 0x40);
    at = (size_t)add(ctx, 0, 0, &px);
    assert_int_equal(at, 0x48);
    assert_int_equal(rd(ctx, at + offsetof(struct pxcap, pxlcap2), 4),
                     0xa5a5a5a5);
    /* ...and its "2" registers behave as version 2's: writable bits stick. */
    assert_int_equal(wr(ctx, at + PCI_EXP_DEVCTL2, PCI_EXP_DEVCTL2_ATOMIC_REQ,
                        2), 2);
    assert_int_equal(rd(ctx, at + PCI_EXP_DEVCTL2, 2),
                     PCI_EXP_DEVCTL2_ATOMIC_REQ);
    assert_int_equal(wr(ctx, at + PCI_EXP_LNKCTL2, PCI_EXP_LNKCTL2_TLS, 2), 2);
    assert_int_equal(rd(ctx, at + PCI_EXP_LNKCTL2, 2), PCI_EXP_LNKCTL2_TLS);
    vsc(v, 8);
    assert_int_equal(add(ctx, 0, 0, v), 0x48 + 0x3c);
    vsc(v, 8);
    assert_int_equal(add(ctx, 0, 0, v), 0x48 + 0x3c + 8);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0,
                                                  PCI_CAP_ID_EXP), 0x48);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0,
                                                  PCI_CAP_ID_PM), 0x40);
    at = vfu_pci_find_next_capability(ctx, false, 0, PCI_CAP_ID_VNDR);
    assert_int_equal(at, 0x48 + 0x3c);
    at = vfu_pci_find_next_capability(ctx, false, at, PCI_CAP_ID_VNDR);
    assert_int_equal(at, 0x48 + 0x3c + 8);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, at,
                                                  PCI_CAP_ID_VNDR), 0);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(vfu_pci_find_next_capability(ctx, false, 0,
                                                  PCI_CAP_ID_MSI), 0);
    assert_int_equal(errno, ENOENT);
}

static void
test_pcix_extended(void **state)
{
    vfu_ctx_t *x1 = new_ctx(VFU_PCI_TYPE_PCI_X_1);
    vfu_ctx_t *x2 = new_ctx(VFU_PCI_TYPE_PCI_X_2);
    struct dsncap d = dsn_cap(7);
    struct pxcap px = px_cap(2, 0, 0);

    (void)state;
    /* Mode 2 has the 4096-byte space, mode 1 does not. */
    assert_int_equal(add(x1, 0, VFU_CAP_FLAG_EXTENDED, &d), -EINVAL);
    assert_int_equal(add(x2, 0, VFU_CAP_FLAG_EXTENDED, &d), 0x100);
    /* The PCI Express capability goes on any type, as the original allows. */
    assert_int_equal(add(x2, 0, 0, &px), 0x40);
    teardown((void **)&x1);
    teardown((void **)&x2);
}

/* The public structs put each field where <linux/pci_regs.h> says. */
#define BITS_OF(type, field, val) ({                                        \
        type x_;                                                            \
        uint32_t v_ = 0;                                                    \
        memset(&x_, 0, sizeof(x_));                                         \
        x_.field = (val);                                                   \
        memcpy(&v_, &x_, sizeof(x_) < 4 ? sizeof(x_) : 4);                  \
        v_;                                                                 \
    })

static void
test_struct_layouts(void **state)
{
    (void)state;
    assert_int_equal(BITS_OF(struct pc, d1s, 1), PCI_PM_CAP_D1);
    assert_int_equal(BITS_OF(struct pc, d2s, 1), PCI_PM_CAP_D2);
    assert_int_equal(BITS_OF(struct pc, psup, 0x1f), PCI_PM_CAP_PME_MASK);
    assert_int_equal(BITS_OF(struct pc, vs, 7), PCI_PM_CAP_VER_MASK);
    assert_int_equal(BITS_OF(struct pmcs, ps, 3), PCI_PM_CTRL_STATE_MASK);
    assert_int_equal(BITS_OF(struct pmcs, nsfrst, 1), PCI_PM_CTRL_NO_SOFT_RESET);
    assert_int_equal(BITS_OF(struct pmcs, pmee, 1), PCI_PM_CTRL_PME_ENABLE);
    assert_int_equal(BITS_OF(struct pmcs, dse, 0xf), PCI_PM_CTRL_DATA_SEL_MASK);
    assert_int_equal(BITS_OF(struct pmcs, pmes, 1), PCI_PM_CTRL_PME_STATUS);
    assert_int_equal(BITS_OF(struct mc, msie, 1), PCI_MSI_FLAGS_ENABLE);
    assert_int_equal(BITS_OF(struct mc, mmc, 7), PCI_MSI_FLAGS_QMASK);
    assert_int_equal(BITS_OF(struct mc, mme, 7), PCI_MSI_FLAGS_QSIZE);
    assert_int_equal(BITS_OF(struct mc, c64, 1), PCI_MSI_FLAGS_64BIT);
    assert_int_equal(BITS_OF(struct mc, pvm, 1), PCI_MSI_FLAGS_MASKBIT);
    assert_int_equal(BITS_OF(struct mxc, ts, 0x7ff), PCI_MSIX_FLAGS_QSIZE);
    assert_int_equal(BITS_OF(struct mxc, fm, 1), PCI_MSIX_FLAGS_MASKALL);
    assert_int_equal(BITS_OF(struct mxc, mxe, 1), PCI_MSIX_FLAGS_ENABLE);
    assert_int_equal(BITS_OF(struct mtab, tbir, 7), PCI_MSIX_TABLE_BIR);
    assert_int_equal(BITS_OF(struct mtab, to, 0x1fffffff),
                     PCI_MSIX_TABLE_OFFSET);
    assert_int_equal(BITS_OF(struct mpba, pbir, 7), PCI_MSIX_PBA_BIR);
    assert_int_equal(BITS_OF(struct pxcaps, ver, 0xf), PCI_EXP_FLAGS_VERS);
    assert_int_equal(BITS_OF(struct pxcaps, dpt, 0xf), PCI_EXP_FLAGS_TYPE);
    assert_int_equal(BITS_OF(struct pxcaps, si, 1), PCI_EXP_FLAGS_SLOT);
    assert_int_equal(BITS_OF(struct pxcaps, imn, 0x1f), PCI_EXP_FLAGS_IRQ);
    assert_int_equal(BITS_OF(struct pxdcap, mps, 7), PCI_EXP_DEVCAP_PAYLOAD);
    assert_int_equal(BITS_OF(struct pxdcap, pfs, 3), PCI_EXP_DEVCAP_PHANTOM);
    assert_int_equal(BITS_OF(struct pxdcap, etfs, 1), PCI_EXP_DEVCAP_EXT_TAG);
    assert_int_equal(BITS_OF(struct pxdcap, l0sl, 7), PCI_EXP_DEVCAP_L0S);
    assert_int_equal(BITS_OF(struct pxdcap, l1l, 7), PCI_EXP_DEVCAP_L1);
    assert_int_equal(BITS_OF(struct pxdcap, rer, 1), PCI_EXP_DEVCAP_RBER);
    assert_int_equal(BITS_OF(struct pxdcap, csplv, 0xff),
                     PCI_EXP_DEVCAP_PWR_VAL);
    assert_int_equal(BITS_OF(struct pxdcap, cspls, 3), PCI_EXP_DEVCAP_PWR_SCL);
    assert_int_equal(BITS_OF(struct pxdcap, flrc, 1), PCI_EXP_DEVCAP_FLR);
    assert_int_equal(BITS_OF(union pxdc, cere, 1), PCI_EXP_DEVCTL_CERE);
    assert_int_equal(BITS_OF(union pxdc, ero, 1), PCI_EXP_DEVCTL_RELAX_EN);
    assert_int_equal(BITS_OF(union pxdc, mps, 7), PCI_EXP_DEVCTL_PAYLOAD);
    assert_int_equal(BITS_OF(union pxdc, ete, 1), PCI_EXP_DEVCTL_EXT_TAG);
    assert_int_equal(BITS_OF(union pxdc, ens, 1), PCI_EXP_DEVCTL_NOSNOOP_EN);
    assert_int_equal(BITS_OF(union pxdc, mrrs, 7), PCI_EXP_DEVCTL_READRQ);
    assert_int_equal(BITS_OF(union pxdc, iflr, 1), PCI_EXP_DEVCTL_BCR_FLR);
    assert_int_equal(BITS_OF(union pxlc, aspmc, 3), PCI_EXP_LNKCTL_ASPMC);
    assert_int_equal(BITS_OF(union pxlc, rcb, 1), PCI_EXP_LNKCTL_RCB);
    assert_int_equal(BITS_OF(union pxlc, ccc, 1), PCI_EXP_LNKCTL_CCC);
    assert_int_equal(BITS_OF(union pxlc, clkreq_en, 1),
                     PCI_EXP_LNKCTL_CLKREQ_EN);
    assert_int_equal(BITS_OF(union pxlc, labie, 1), PCI_EXP_LNKCTL_LABIE);
    assert_int_equal(BITS_OF(union pxdc2, comp_timeout, 0xf),
                     PCI_EXP_DEVCTL2_COMP_TIMEOUT);
    assert_int_equal(BITS_OF(union pxdc2, ari, 1), PCI_EXP_DEVCTL2_ARI);
    assert_int_equal(BITS_OF(union pxdc2, ltr_en, 1), PCI_EXP_DEVCTL2_LTR_EN);
    assert_int_equal(BITS_OF(struct pxdcap2, trs, 1),
                     0x00020000 /* 10-bit tag requester */);
    assert_int_equal(BITS_OF(struct pxdcap2, ctds, 1),
                     PCI_EXP_DEVCAP2_COMP_TMOUT_DIS);
    assert_int_equal(BITS_OF(struct pxdcap2, arifs, 1), PCI_EXP_DEVCAP2_ARI);
    assert_int_equal(BITS_OF(struct pxdcap2, aocs32, 1),
                     PCI_EXP_DEVCAP2_ATOMIC_COMP32);
    assert_int_equal(BITS_OF(struct pxdcap2, ltrs, 1), PCI_EXP_DEVCAP2_LTR);
    assert_int_equal(BITS_OF(struct pxdcap2, obffs, 3),
                     PCI_EXP_DEVCAP2_OBFF_MASK);
    assert_int_equal(BITS_OF(struct pxdcap2, eetps, 1),
                     PCI_EXP_DEVCAP2_EE_PREFIX);
    assert_int_equal(BITS_OF(struct pcie_ext_cap_hdr, id, 0xffff), 0xffff);
    assert_int_equal(BITS_OF(struct pcie_ext_cap_hdr, version, 0xf),
                     0x000f0000);
    assert_int_equal(BITS_OF(struct pcie_ext_cap_hdr, next, 0xfff),
                     0xfff00000);
    assert_int_equal(offsetof(struct pcie_ext_cap_vsc_hdr, data), 8);
    assert_int_equal(offsetof(struct vsc, data), 3);
    assert_int_equal(offsetof(struct dsncap, sn_lo), 4);
    assert_int_equal(offsetof(struct msicap, mua), PCI_MSI_ADDRESS_HI);
    assert_int_equal(offsetof(struct msicap, md), PCI_MSI_DATA_64);
    assert_int_equal(offsetof(struct msicap, mpend), PCI_MSI_PENDING_64);
    assert_int_equal(offsetof(struct pxcap, pxls), PCI_EXP_LNKSTA);
}

#define TC(fn) cmocka_unit_test_setup_teardown(fn, setup_conv, teardown)
#define TE(fn) cmocka_unit_test_setup_teardown(fn, setup_express, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TC(test_struct_layouts),
        TC(test_add_refused),
        TE(test_config_space_stays),
        TE(test_add_refused_express),
        TC(test_pcix_extended),
        TC(test_original_habits),
        TC(test_placement_chain),
        TC(test_placement_full),
        TE(test_ext_chain),
        TE(test_find),
        TC(test_table_header),
        TC(test_table_pm),
        TC(test_table_msi),
        TC(test_table_msi_sizes),
        TC(test_table_msix),
        TE(test_table_px),
        TE(test_table_px_minimal),
        TC(test_table_readonly_callback),
        TE(test_table_dsn_ext_vsc),
        TC(test_pm_states),
        TC(test_pm_soft_reset),
        TC(test_pm_no_soft_reset),
        TC(test_msi_behaviour),
        TC(test_msi_unmaskable),
        TC(test_msix_behaviour),
        TC(test_msix_bars),
        TE(test_flr),
        TE(test_flr_not_capable),
        TC(test_readonly_cap),
        TC(test_vendor_cap),
        TC(test_callback_cap),
        TE(test_any_size_alignment),
        TC(test_intx),
        TC(test_reset_kinds),
        TC(test_added_after_realize),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
