/*
 * PCI capabilities: owns the list of capabilities the device added and the
 * two chains that link them in config space (standard: from the pointer at
 * 0x34, inside 0x40-0xff; extended: from 0x100), where they are placed,
 * and for each kind of capability the library knows its size, its register
 * table (which bits a client writes or clears, which survive resets) and
 * its behaviour: power state changes and the D3hot->D0 soft reset, MSI's
 * enabled vectors, MSI-X, PCI Express device/link control and
 * function-level reset, device serial number, vendor-specific. The resets
 * themselves are pci.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

#define STD_START       PCI_STD_HEADER_SIZEOF   /* 0x40 */
#define STD_END         PCI_CFG_SPACE_SIZE      /* 0x100 */
#define EXT_START       PCI_CFG_SPACE_SIZE

#define CAP_FLAG_MASK   (VFU_CAP_FLAG_EXTENDED | VFU_CAP_FLAG_CALLBACK | \
                         VFU_CAP_FLAG_READONLY)

/* PCI Express capability sizes: all registers of version 1, version 2. */
#define PX_SIZEOF_V1    0x24
#define PX_SIZEOF_V2    0x3c
/* Device Capabilities 2 / Device Control 2 bits <linux/pci_regs.h> lacks. */
#define PX_DEVCAP2_TAG10_REQ    0x00020000  /* 10-bit tag requester */
#define PX_DEVCTL2_TAG10_REQ    0x1000
/* Link Control 2: modified compliance, compliance SOS, preset. */
#define PX_LNKCTL2_COMPLIANCE   0xfc00
/* Link Status 2: link equalisation request (RW1CS). */
#define PX_LNKSTA2_EQU_REQ      0x0020

/* Largest capability with behaviour (PCI Express v2). */
#define MAX_HOOKED_SIZE PX_SIZEOF_V2

/* One register of a capability and how its bits behave. */
struct reg_rule {
    uint8_t off;        /* from the start of the capability */
    uint8_t len;        /* 1, 2 or 4 bytes */
    uint32_t rw;        /* bits the client writes */
    uint32_t w1c;       /* bits the client clears by writing 1 */
    uint32_t sticky;    /* bits no reset changes */
    uint32_t flrkeep;   /* bits a function-level reset keeps */
};

#define MAX_RULES 8

/* What the library knows about one kind of capability. */
struct cap_kind {
    uint16_t id;
    bool ext;
    bool unique;            /* at most one per function */
    /* Size in config space worked out from @data; 0 when @data is invalid. */
    size_t (*size)(const uint8_t *data);
    size_t copy_max;        /* bytes taken from @data (0: the size) */
    /* The capability's registers, from its contents; returns how many. */
    size_t (*rules)(const uint8_t *cap, struct reg_rule *rules);
    size_t rw_from;         /* device data writable from here to the end */
    /*
     * Adjusts the new values @val of the capability's registers after a
     * write (@old holds the current ones) and records side effects.
     */
    void (*write)(const uint8_t *old, uint8_t *val,
                  struct caps_pending *pending);
};

/* ------------------------------------------------------------------ */
/* Power management                                                    */
/* ------------------------------------------------------------------ */

#define PM_D0       0
#define PM_D1       1
#define PM_D2       2
#define PM_D3HOT    3

static size_t
pm_size(const uint8_t *data)
{
    (void)data;
    return PCI_PM_SIZEOF;
}

static size_t
pm_rules(const uint8_t *cap, struct reg_rule *r)
{
    uint16_t pmc = pci_get16(cap, PCI_PM_PMC);
    bool pme = (pmc & PCI_PM_CAP_PME_MASK) != 0;
    /* PME context survives resets when PME works from D3cold. */
    bool pme_sticky = (pmc & PCI_PM_CAP_PME_D3cold) != 0;
    uint32_t pme_bits = PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS;

    r[0] = (struct reg_rule){
        .off = PCI_PM_CTRL, .len = 2,
        .rw = PCI_PM_CTRL_STATE_MASK | (pme ? PCI_PM_CTRL_PME_ENABLE : 0),
        .w1c = pme ? PCI_PM_CTRL_PME_STATUS : 0,
        .sticky = pme_sticky ? pme_bits : 0,
    };
    return 1;
}

/* The transitions of the PCI PM state diagram, and only supported states. */
static bool
pm_transition_ok(uint16_t pmc, unsigned from, unsigned to)
{
    if ((to == PM_D1 && !(pmc & PCI_PM_CAP_D1)) ||
        (to == PM_D2 && !(pmc & PCI_PM_CAP_D2))) {
        return false;
    }
    if (from == PM_D3HOT) {
        return to == PM_D0;
    }
    return !(from == PM_D2 && to == PM_D1);
}

static void
pm_write(const uint8_t *old, uint8_t *val, struct caps_pending *pending)
{
    uint16_t pmc = pci_get16(old, PCI_PM_PMC);
    uint16_t octl = pci_get16(old, PCI_PM_CTRL);
    uint16_t nctl = pci_get16(val, PCI_PM_CTRL);
    unsigned from = octl & PCI_PM_CTRL_STATE_MASK;
    unsigned to = nctl & PCI_PM_CTRL_STATE_MASK;

    if (from == to) {
        return;
    }
    if (!pm_transition_ok(pmc, from, to)) {
        /* The write completes, the state does not change. */
        nctl = (uint16_t)((nctl & ~PCI_PM_CTRL_STATE_MASK) | from);
        pci_put16(val, PCI_PM_CTRL, nctl);
        return;
    }
    if (from == PM_D3HOT && !(octl & PCI_PM_CTRL_NO_SOFT_RESET)) {
        pending->soft_reset = true;
    }
}

/* ------------------------------------------------------------------ */
/* MSI                                                                 */
/* ------------------------------------------------------------------ */

#define MSI_MAX_LOG2 5          /* 32 vectors */

static unsigned
msi_log2_capable(uint16_t flags)
{
    return (flags & PCI_MSI_FLAGS_QMASK) >> 1;
}

static unsigned
msi_log2_enabled(uint16_t flags)
{
    return (flags & PCI_MSI_FLAGS_QSIZE) >> 4;
}

static size_t
msi_mask_off(uint16_t flags)
{
    return (flags & PCI_MSI_FLAGS_64BIT) ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32;
}

static size_t
msi_size(const uint8_t *data)
{
    uint16_t flags = pci_get16(data, PCI_MSI_FLAGS);
    bool is64 = (flags & PCI_MSI_FLAGS_64BIT) != 0;

    if (msi_log2_capable(flags) > MSI_MAX_LOG2) {
        return 0;       /* 64 and 128 vectors are reserved encodings */
    }
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
        return is64 ? PCI_MSI_PENDING_64 + 4 : PCI_MSI_PENDING_32 + 4;
    }
    return is64 ? PCI_MSI_DATA_64 + 2 : PCI_MSI_DATA_32 + 2;
}

static size_t
msi_rules(const uint8_t *cap, struct reg_rule *r)
{
    uint16_t flags = pci_get16(cap, PCI_MSI_FLAGS);
    bool is64 = (flags & PCI_MSI_FLAGS_64BIT) != 0;
    unsigned nvec = 1u << msi_log2_capable(flags);
    size_t n = 0;

    r[n++] = (struct reg_rule){ .off = PCI_MSI_FLAGS, .len = 2,
        .rw = PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE };
    r[n++] = (struct reg_rule){ .off = PCI_MSI_ADDRESS_LO, .len = 4,
        .rw = 0xfffffffc };
    if (is64) {
        r[n++] = (struct reg_rule){ .off = PCI_MSI_ADDRESS_HI, .len = 4,
            .rw = 0xffffffff };
    }
    r[n++] = (struct reg_rule){
        .off = is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32, .len = 2,
        .rw = 0xffff };
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
        /* One mask bit per vector offered; pending bits are read-only. */
        r[n++] = (struct reg_rule){ .off = (uint8_t)msi_mask_off(flags),
            .len = 4,
            .rw = nvec >= 32 ? 0xffffffff : (1u << nvec) - 1 };
    }
    return n;
}

static void
msi_write(const uint8_t *old, uint8_t *val, struct caps_pending *pending)
{
    uint16_t flags = pci_get16(val, PCI_MSI_FLAGS);
    unsigned capable = msi_log2_capable(pci_get16(old, PCI_MSI_FLAGS));

    (void)pending;
    /* No more vectors than offered: a larger request gets all of them. */
    if (msi_log2_enabled(flags) > capable) {
        flags = (uint16_t)((flags & ~PCI_MSI_FLAGS_QSIZE) | (capable << 4));
        pci_put16(val, PCI_MSI_FLAGS, flags);
    }
}

/* ------------------------------------------------------------------ */
/* MSI-X                                                               */
/* ------------------------------------------------------------------ */

static size_t
msix_size(const uint8_t *data)
{
    if ((pci_get32(data, PCI_MSIX_TABLE) & PCI_MSIX_TABLE_BIR) >= PCI_BARS_NR ||
        (pci_get32(data, PCI_MSIX_PBA) & PCI_MSIX_PBA_BIR) >= PCI_BARS_NR) {
        return 0;
    }
    return PCI_CAP_MSIX_SIZEOF;
}

static size_t
msix_rules(const uint8_t *cap, struct reg_rule *r)
{
    (void)cap;
    r[0] = (struct reg_rule){ .off = PCI_MSIX_FLAGS, .len = 2,
        .rw = PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL };
    return 1;
}

/*
 * Whether @len bytes at @off of BAR @bir fit; 0 or -EINVAL. A BAR not set
 * up (yet: vfu_setup_region() may come later) is not held against the
 * capability, as the original library does not.
 */
static int
msix_in_bar(vfu_ctx_t *ctx, uint32_t bir, uint64_t off, uint64_t len,
            const char *what)
{
    const struct vfu_region *r = &ctx->regions[bir];

    if (r->size == 0) {
        vfu_log_info(ctx, "MSI-X %s is in BAR%u, not set up", what, bir);
        return 0;
    }
    if (off > r->size || len > r->size - off) {
        vfu_log_err(ctx, "MSI-X %s (%#" PRIx64 "+%#" PRIx64 ") is not "
                    "inside BAR%u (%zu bytes)", what, off, len, bir, r->size);
        return -EINVAL;
    }
    return 0;
}

/* The table and PBA of the MSI-X capability @cap lie in BARs. */
static int
msix_check_bars(vfu_ctx_t *ctx, const uint8_t *cap)
{
    uint32_t nvec = (pci_get16(cap, PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1;
    uint32_t tbl = pci_get32(cap, PCI_MSIX_TABLE);
    uint32_t pba = pci_get32(cap, PCI_MSIX_PBA);
    int ret;

    ret = msix_in_bar(ctx, tbl & PCI_MSIX_TABLE_BIR,
                      tbl & PCI_MSIX_TABLE_OFFSET,
                      (uint64_t)nvec * PCI_MSIX_ENTRY_SIZE, "table");
    if (ret == 0) {
        ret = msix_in_bar(ctx, pba & PCI_MSIX_PBA_BIR,
                          pba & PCI_MSIX_PBA_OFFSET,
                          (uint64_t)(nvec + 63) / 64 * 8, "PBA");
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* PCI Express                                                         */
/* ------------------------------------------------------------------ */

static unsigned
px_version(const uint8_t *cap)
{
    return pci_get16(cap, PCI_EXP_FLAGS) & PCI_EXP_FLAGS_VERS;
}

/*
 * Version 1 is 0x24 bytes; 2, and 0 as devices written for the original
 * library leave it (struct pxcap zeroed), all of struct pxcap.
 */
static size_t
px_size(const uint8_t *data)
{
    switch (px_version(data)) {
    case 1:
        return PX_SIZEOF_V1;
    case 0:
    case 2:
        return PX_SIZEOF_V2;
    default:
        return 0;
    }
}

/* The registers of an endpoint; port-only controls stay read-only. */
static size_t
px_rules(const uint8_t *cap, struct reg_rule *r)
{
    uint32_t devcap = pci_get32(cap, PCI_EXP_DEVCAP);
    uint32_t devctl = PCI_EXP_DEVCTL_CERE | PCI_EXP_DEVCTL_NFERE |
                      PCI_EXP_DEVCTL_FERE | PCI_EXP_DEVCTL_URRE |
                      PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_PAYLOAD |
                      PCI_EXP_DEVCTL_AUX_PME | PCI_EXP_DEVCTL_NOSNOOP_EN |
                      PCI_EXP_DEVCTL_READRQ;
    uint32_t lnkctl = PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_RCB |
                      PCI_EXP_LNKCTL_CCC | PCI_EXP_LNKCTL_ES |
                      PCI_EXP_LNKCTL_CLKREQ_EN | PCI_EXP_LNKCTL_HAWD;
    size_t n = 0;

    devctl |= (devcap & PCI_EXP_DEVCAP_EXT_TAG) ? PCI_EXP_DEVCTL_EXT_TAG : 0;
    devctl |= (devcap & PCI_EXP_DEVCAP_PHANTOM) ? PCI_EXP_DEVCTL_PHANTOM : 0;
    devctl |= (devcap & PCI_EXP_DEVCAP_FLR) ? PCI_EXP_DEVCTL_BCR_FLR : 0;

    /* FLR leaves Max_Payload_Size and the link settings alone. */
    r[n++] = (struct reg_rule){ .off = PCI_EXP_DEVCTL, .len = 2,
        .rw = devctl, .flrkeep = PCI_EXP_DEVCTL_PAYLOAD };
    r[n++] = (struct reg_rule){ .off = PCI_EXP_DEVSTA, .len = 2,
        .w1c = PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED |
               PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD };
    r[n++] = (struct reg_rule){ .off = PCI_EXP_LNKCTL, .len = 2,
        .rw = lnkctl, .flrkeep = lnkctl };

    if (px_version(cap) != 1) {         /* 2, or 0 read as 2 (px_size) */
        uint32_t devcap2 = pci_get32(cap, PCI_EXP_DEVCAP2);
        uint32_t devctl2 = PCI_EXP_DEVCTL2_ATOMIC_REQ |
                           PCI_EXP_DEVCTL2_IDO_REQ_EN |
                           PCI_EXP_DEVCTL2_IDO_CMP_EN;
        uint32_t lnkctl2 = PCI_EXP_LNKCTL2_TLS | PCI_EXP_LNKCTL2_ENTER_COMP |
                           PCI_EXP_LNKCTL2_HASD | PCI_EXP_LNKCTL2_TX_MARGIN |
                           PX_LNKCTL2_COMPLIANCE;

        if (devcap2 & 0xf) {    /* completion timeout ranges */
            devctl2 |= PCI_EXP_DEVCTL2_COMP_TIMEOUT;
        }
        if (devcap2 & PCI_EXP_DEVCAP2_COMP_TMOUT_DIS) {
            devctl2 |= PCI_EXP_DEVCTL2_COMP_TMOUT_DIS;
        }
        if (devcap2 & PCI_EXP_DEVCAP2_LTR) {
            devctl2 |= PCI_EXP_DEVCTL2_LTR_EN;
        }
        if (devcap2 & PX_DEVCAP2_TAG10_REQ) {
            devctl2 |= PX_DEVCTL2_TAG10_REQ;
        }
        if (devcap2 & PCI_EXP_DEVCAP2_OBFF_MASK) {
            devctl2 |= PCI_EXP_DEVCTL2_OBFF_WAKE_EN;
        }
        r[n++] = (struct reg_rule){ .off = PCI_EXP_DEVCTL2, .len = 2,
            .rw = devctl2 };
        /* All but HASD are sticky; FLR keeps the whole register. */
        r[n++] = (struct reg_rule){ .off = PCI_EXP_LNKCTL2, .len = 2,
            .rw = lnkctl2, .sticky = lnkctl2 & ~PCI_EXP_LNKCTL2_HASD,
            .flrkeep = lnkctl2 };
        r[n++] = (struct reg_rule){ .off = PCI_EXP_LNKSTA2, .len = 2,
            .w1c = PX_LNKSTA2_EQU_REQ, .sticky = PX_LNKSTA2_EQU_REQ };
    }
    return n;
}

static void
px_write(const uint8_t *old, uint8_t *val, struct caps_pending *pending)
{
    uint16_t devctl = pci_get16(val, PCI_EXP_DEVCTL);

    (void)old;
    /* Only writable, so present, when the device is FLR capable. */
    if (devctl & PCI_EXP_DEVCTL_BCR_FLR) {
        pci_put16(val, PCI_EXP_DEVCTL,
                  (uint16_t)(devctl & ~PCI_EXP_DEVCTL_BCR_FLR));
        pending->flr = true;
    }
}

/* ------------------------------------------------------------------ */
/* Serial number, vendor-specific                                      */
/* ------------------------------------------------------------------ */

static size_t
dsn_size(const uint8_t *data)
{
    (void)data;
    return PCI_EXT_CAP_DSN_SIZEOF;
}

static size_t
vsc_size(const uint8_t *data)
{
    size_t size = data[PCI_CAP_FLAGS];      /* the byte after the header */

    return size >= 3 ? size : 0;
}

static size_t
ext_vsc_size(const uint8_t *data)
{
    size_t len = PCI_VNDR_HEADER_LEN(pci_get32(data, PCI_VNDR_HEADER));

    return len >= 8 ? len : 0;
}

static const struct cap_kind kinds[] = {
    { .id = PCI_CAP_ID_PM, .unique = true, .size = pm_size,
      .rules = pm_rules, .write = pm_write },
    { .id = PCI_CAP_ID_MSI, .unique = true, .size = msi_size,
      .rules = msi_rules, .write = msi_write },
    { .id = PCI_CAP_ID_MSIX, .unique = true, .size = msix_size,
      .rules = msix_rules },
    { .id = PCI_CAP_ID_EXP, .unique = true,
      .size = px_size, .copy_max = sizeof(struct pxcap),
      .rules = px_rules, .write = px_write },
    { .id = PCI_CAP_ID_VNDR, .size = vsc_size, .rw_from = 3 },
    { .id = PCI_EXT_CAP_ID_DSN, .ext = true, .unique = true,
      .size = dsn_size },
    { .id = PCI_EXT_CAP_ID_VNDR, .ext = true, .size = ext_vsc_size,
      .rw_from = 8 },
};

static const struct cap_kind *
kind_of(uint16_t id, bool ext)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i].id == id && kinds[i].ext == ext) {
            return &kinds[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The list, placement, the chains                                     */
/* ------------------------------------------------------------------ */

const struct vfu_cap *
caps_find(vfu_ctx_t *ctx, bool ext, uint16_t id)
{
    for (size_t i = 0; i < ctx->pci.nr_caps; i++) {
        if (ctx->pci.caps[i].ext == ext && ctx->pci.caps[i].id == id) {
            return &ctx->pci.caps[i];
        }
    }
    return NULL;
}

/* The capability [@pos, @pos + @size) would overlap, or NULL. */
static const struct vfu_cap *
overlapping(vfu_ctx_t *ctx, size_t pos, size_t size)
{
    for (size_t i = 0; i < ctx->pci.nr_caps; i++) {
        const struct vfu_cap *c = &ctx->pci.caps[i];
        if (pos < c->off + c->size && c->off < pos + size) {
            return c;
        }
    }
    return NULL;
}

/* Lowest dword-aligned place in [@lo, @hi) for @size bytes, or 0. */
static size_t
place(vfu_ctx_t *ctx, size_t size, size_t lo, size_t hi)
{
    size_t pos = lo;
    const struct vfu_cap *c;

    while (pos + size <= hi) {
        c = overlapping(ctx, pos, size);
        if (c == NULL) {
            return pos;
        }
        pos = (c->off + c->size + 3) & ~(size_t)3;
    }
    return 0;
}

/* The last capability of a chain, or NULL when it is empty. */
static const struct vfu_cap *
chain_tail(vfu_ctx_t *ctx, bool ext)
{
    const struct vfu_cap *tail = NULL;

    for (size_t i = 0; i < ctx->pci.nr_caps; i++) {
        if (ctx->pci.caps[i].ext == ext) {
            tail = &ctx->pci.caps[i];
        }
    }
    return tail;
}

static void
link_cap(vfu_ctx_t *ctx, const struct vfu_cap *tail, bool ext, size_t pos)
{
    uint8_t *cfg = ctx->pci.cfg;

    if (ext) {
        uint32_t hdr = pci_get32(cfg, pos) & 0x000fffff;
        pci_put32(cfg, pos, hdr);                   /* next = 0 */
        if (tail != NULL) {
            hdr = pci_get32(cfg, tail->off) & 0x000fffff;
            pci_put32(cfg, tail->off, hdr | (uint32_t)pos << 20);
        }
        return;
    }
    cfg[pos + PCI_CAP_LIST_NEXT] = 0;
    if (tail != NULL) {
        cfg[tail->off + PCI_CAP_LIST_NEXT] = (uint8_t)pos;
    } else {
        cfg[PCI_CAPABILITY_LIST] = (uint8_t)pos;
        pci_put16(cfg, PCI_STATUS,
                  pci_get16(cfg, PCI_STATUS) | PCI_STATUS_CAP_LIST);
    }
}

static void
apply_rule(struct vfu_pci *p, size_t base, const struct reg_rule *r)
{
    for (size_t b = 0; b < r->len; b++) {
        size_t o = base + r->off + b;
        unsigned shift = 8 * (unsigned)b;

        p->wmask[o] = (uint8_t)(r->rw >> shift);
        p->w1cmask[o] = (uint8_t)(r->w1c >> shift);
        p->sticky[o] = (uint8_t)(r->sticky >> shift);
        p->flrkeep[o] = (uint8_t)(r->flrkeep >> shift);
    }
}

/* Fills the register table for the capability just copied to @c->off. */
static void
install_table(vfu_ctx_t *ctx, const struct cap_kind *k,
              const struct vfu_cap *c)
{
    struct vfu_pci *p = &ctx->pci;
    size_t hdr = c->ext ? 4 : 2;
    struct reg_rule rules[MAX_RULES];
    size_t n;

    memset(p->wmask + c->off, 0, c->size);
    memset(p->w1cmask + c->off, 0, c->size);
    memset(p->sticky + c->off, 0, c->size);
    memset(p->flrkeep + c->off, 0, c->size);
    /* A callback capability's header stays ours, read-only. */
    memset(p->emul + c->off, 1, c->size);
    if (c->flags & VFU_CAP_FLAG_CALLBACK) {
        memset(p->emul + c->off + hdr, 0, c->size - hdr);
    }
    memcpy(p->rstval + c->off, p->cfg + c->off, c->size);
    if (c->flags & (VFU_CAP_FLAG_CALLBACK | VFU_CAP_FLAG_READONLY)) {
        return;
    }
    if (k->rules != NULL) {
        n = k->rules(p->cfg + c->off, rules);
        for (size_t i = 0; i < n; i++) {
            apply_rule(p, c->off, &rules[i]);
        }
    }
    if (k->rw_from > 0) {
        memset(p->wmask + c->off + k->rw_from, 0xff, c->size - k->rw_from);
    }
}

static ssize_t
add_cap(vfu_ctx_t *ctx, size_t pos, int flags, const uint8_t *data)
{
    bool ext = (flags & VFU_CAP_FLAG_EXTENDED) != 0;
    size_t lo = ext ? EXT_START : STD_START;
    size_t hi = ext ? ctx->pci.cfg_size : STD_END;
    const struct cap_kind *k;
    const struct vfu_cap *tail;
    struct vfu_cap *caps, *c;
    size_t size, copy;
    uint16_t id;

    if (data == NULL || (flags & ~CAP_FLAG_MASK) ||
        ((flags & VFU_CAP_FLAG_CALLBACK) && (flags & VFU_CAP_FLAG_READONLY)) ||
        /* A callback capability is served by the config region's callback. */
        ((flags & VFU_CAP_FLAG_CALLBACK) &&
         ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].cb == NULL) ||
        !ctx->pci.initialized ||
        (ext && ctx->pci.cfg_size != PCI_CFG_SPACE_EXP_SIZE)) {
        return -EINVAL;
    }
    id = ext ? (uint16_t)PCI_EXT_CAP_ID(pci_get32(data, 0)) : data[0];
    k = kind_of(id, ext);
    if (k == NULL) {
        vfu_log_err(ctx, "capability %#x%s: size unknown", id,
                    ext ? " (extended)" : "");
        return -ENOTSUP;
    }
    size = k->size(data);
    if (size == 0 || size > hi - lo) {
        vfu_log_err(ctx, "capability %#x: invalid contents", id);
        return -EINVAL;
    }
    if (k->unique && caps_find(ctx, ext, id) != NULL) {
        return -EEXIST;
    }
    if (id == PCI_CAP_ID_MSIX && !ext && ctx->realized &&
        !(flags & VFU_CAP_FLAG_CALLBACK) && msix_check_bars(ctx, data) < 0) {
        return -EINVAL;
    }

    tail = chain_tail(ctx, ext);
    if (pos == 0) {
        pos = tail == NULL && ext ? EXT_START : place(ctx, size, lo, hi);
        if (pos == 0) {
            return -ENOSPC;
        }
    } else if (pos % 4 != 0 || pos < lo || pos > hi || size > hi - pos ||
               (ext && tail == NULL && pos != EXT_START)) {
        return -EINVAL;
    } else if (overlapping(ctx, pos, size) != NULL) {
        return -EEXIST;
    }

    if (ext && pci_attr_full(ctx) < 0) {
        return -ENOMEM;
    }
    caps = realloc(ctx->pci.caps, (ctx->pci.nr_caps + 1) * sizeof(*caps));
    if (caps == NULL) {
        return -ENOMEM;
    }
    ctx->pci.caps = caps;
    tail = chain_tail(ctx, ext);        /* the array may have moved */

    copy = k->copy_max != 0 && k->copy_max < size ? k->copy_max : size;
    memset(ctx->pci.cfg + pos, 0, size);
    memcpy(ctx->pci.cfg + pos, data, copy);
    if (id == PCI_CAP_ID_EXP && !ext) {
        /* Initiate FLR always reads 0. */
        pci_put16(ctx->pci.cfg, pos + PCI_EXP_DEVCTL,
                  pci_get16(ctx->pci.cfg, pos + PCI_EXP_DEVCTL) &
                  ~PCI_EXP_DEVCTL_BCR_FLR);
    }
    link_cap(ctx, tail, ext, pos);

    c = &caps[ctx->pci.nr_caps++];
    *c = (struct vfu_cap){ .id = id, .ext = ext, .flags = flags,
                           .off = pos, .size = size };
    install_table(ctx, k, c);
    vfu_log_debug(ctx, "capability %#x%s at %#zx, %zu bytes", id,
                  ext ? " (extended)" : "", pos, size);
    return (ssize_t)pos;
}

VFU_EXPORT ssize_t
vfu_pci_add_capability(vfu_ctx_t *ctx, size_t pos, int flags, void *data)
{
    ssize_t ret;

    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    ret = add_cap(ctx, pos, flags, data);
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

static bool
id_in_range(bool ext, int cap_id)
{
    return cap_id >= 0 && cap_id <= (ext ? 0xffff : 0xff);
}

VFU_EXPORT size_t
vfu_pci_find_capability(vfu_ctx_t *ctx, bool extended, int cap_id)
{
    const struct vfu_cap *c;

    if (ctx == NULL || !id_in_range(extended, cap_id)) {
        errno = EINVAL;
        return 0;
    }
    c = caps_find(ctx, extended, (uint16_t)cap_id);
    if (c == NULL) {
        errno = ENOENT;
        return 0;
    }
    return c->off;
}

VFU_EXPORT size_t
vfu_pci_find_next_capability(vfu_ctx_t *ctx, bool extended, size_t pos,
                             int cap_id)
{
    size_t i;

    if (ctx == NULL || !id_in_range(extended, cap_id)) {
        errno = EINVAL;
        return 0;
    }
    /*
     * The chain is in list order; position 0 means its head. A position
     * where no header fits is invalid; one inside the space that is not a
     * capability's start has no next (ENOENT, as the original says).
     */
    if (pos == 0) {
        i = 0;
    } else if (extended ? pos < STD_END || pos + 4 > ctx->pci.cfg_size
                        : pos < PCI_STD_HEADER_SIZEOF || pos + 2 > STD_END) {
        errno = EINVAL;         /* outside the chain's space */
        return 0;
    } else {
        for (i = 0; i < ctx->pci.nr_caps; i++) {
            if (ctx->pci.caps[i].ext == extended &&
                ctx->pci.caps[i].off == pos) {
                break;
            }
        }
        if (i == ctx->pci.nr_caps) {
            errno = ENOENT;
            return 0;
        }
        i++;
    }
    for (; i < ctx->pci.nr_caps; i++) {
        if (ctx->pci.caps[i].ext == extended &&
            ctx->pci.caps[i].id == cap_id) {
            return ctx->pci.caps[i].off;
        }
    }
    errno = ENOENT;
    return 0;
}

int
caps_realize(vfu_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->pci.nr_caps; i++) {
        const struct vfu_cap *c = &ctx->pci.caps[i];
        if (!c->ext && c->id == PCI_CAP_ID_MSIX &&
            !(c->flags & VFU_CAP_FLAG_CALLBACK) &&
            msix_check_bars(ctx, ctx->pci.cfg + c->off) < 0) {
            return -EINVAL;
        }
    }
    return 0;
}

void
caps_free(vfu_ctx_t *ctx)
{
    free(ctx->pci.caps);
    ctx->pci.caps = NULL;
    ctx->pci.nr_caps = 0;
}

/* ------------------------------------------------------------------ */
/* Writes                                                              */
/* ------------------------------------------------------------------ */

void
caps_write_prepare(vfu_ctx_t *ctx, uint8_t *val, size_t count, size_t offset,
                   struct caps_pending *pending)
{
    uint8_t old[MAX_HOOKED_SIZE], img[MAX_HOOKED_SIZE];

    for (size_t i = 0; i < ctx->pci.nr_caps; i++) {
        const struct vfu_cap *c = &ctx->pci.caps[i];
        const struct cap_kind *k = kind_of(c->id, c->ext);
        size_t lo, hi, o;

        if (k == NULL || k->write == NULL || c->size > sizeof(img) ||
            (c->flags & (VFU_CAP_FLAG_CALLBACK | VFU_CAP_FLAG_READONLY)) ||
            c->off >= offset + count || offset >= c->off + c->size) {
            continue;
        }
        lo = offset > c->off ? offset : c->off;
        hi = offset + count < c->off + c->size ? offset + count
                                                : c->off + c->size;
        memcpy(old, ctx->pci.cfg + c->off, c->size);
        memcpy(img, old, c->size);
        for (o = lo; o < hi; o++) {
            img[o - c->off] = val[o - offset];
        }
        k->write(old, img, pending);
        for (o = lo; o < hi; o++) {
            val[o - offset] = img[o - c->off];
        }
    }
}

int
caps_write_done(vfu_ctx_t *ctx, const struct caps_pending *pending)
{
    const struct vfu_cap *pm;
    int ret;

    if (pending->flr) {
        vfu_log_info(ctx, "function-level reset");
        return pci_function_reset(ctx, VFU_RESET_PCI_FLR, PCI_RESET_FLR);
    }
    if (pending->soft_reset) {
        vfu_log_info(ctx, "D3hot -> D0 soft reset");
        ret = pci_function_reset(ctx, VFU_RESET_DEVICE, PCI_RESET_SOFT);
        if (ret < 0) {
            return ret;
        }
        /* The reset must not undo the move to D0 that caused it. */
        pm = caps_find(ctx, false, PCI_CAP_ID_PM);
        if (pm != NULL) {
            size_t o = pm->off + PCI_PM_CTRL;
            pci_put16(ctx->pci.cfg, o, pci_get16(ctx->pci.cfg, o) &
                      ~PCI_PM_CTRL_STATE_MASK);
        }
    }
    return 0;
}
