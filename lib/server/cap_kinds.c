/*
 * The kinds of capability the library knows, each with its size, its
 * register table (which bits a client writes or clears, which survive
 * resets) and its behaviour on a write: power management (state changes,
 * the D3hot->D0 soft reset asked for), MSI (enabled vectors bounded by
 * those offered), MSI-X, PCI Express (device and link control, Initiate
 * FLR asked for), device serial number, vendor-specific. Pure functions of
 * a capability's bytes: what a write asks for is recorded, never done.
 */
#include "cap_kinds.h"

/* Device Capabilities 2 / Device Control 2 bits <linux/pci_regs.h> lacks. */
#define PX_DEVCAP2_TAG10_REQ    0x00020000  /* 10-bit tag requester */
#define PX_DEVCTL2_TAG10_REQ    0x1000
/* Link Control 2: modified compliance, compliance SOS, preset. */
#define PX_LNKCTL2_COMPLIANCE   0xfc00
/* Link Status 2: link equalisation request (RW1CS). */
#define PX_LNKSTA2_EQU_REQ      0x0020

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

const struct cap_kind *
cap_kind_of(uint16_t id, bool ext)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i].id == id && kinds[i].ext == ext) {
            return &kinds[i];
        }
    }
    return NULL;
}
