/*
 * PCI config space, the header: owns the emulated type-0 header (ids,
 * class, command/status, BARs and their sizing, expansion ROM BAR,
 * interrupt line and pin, the INTx status bit the interrupt code drives),
 * its entries in the register table, and config space's life: allocated
 * with the context, its capabilities freed with it. Below it, the storage
 * and the register table (pci_table.c); beside it, the capabilities
 * (caps.c); above it, the access path (pci_access.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

#define HDR_SIZE PCI_STD_HEADER_SIZEOF

/* Command bits a client may change; the rest are reserved or obsolete. */
#define CMD_WMASK (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
                   PCI_COMMAND_PARITY | PCI_COMMAND_SERR | \
                   PCI_COMMAND_INTX_DISABLE)

/* Error bits of the status register, which a client clears by writing 1. */
#define STS_W1CMASK (PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | \
                     PCI_STATUS_REC_TARGET_ABORT | \
                     PCI_STATUS_REC_MASTER_ABORT | \
                     PCI_STATUS_SIG_SYSTEM_ERROR | \
                     PCI_STATUS_DETECTED_PARITY)

#define MIN_MEM_BAR_SIZE 16
#define MIN_IO_BAR_SIZE  4
#define MIN_ROM_SIZE     2048

/* Smallest power of two >= @size and >= @min (a power of two). */
static uint64_t
decode_size(uint64_t size, uint64_t min)
{
    uint64_t s = min;

    /* Stop at 2^63 rather than shift to 0 and spin forever. */
    while (s < size && s < (UINT64_C(1) << 63)) {
        s <<= 1;
    }
    return s;
}

static bool
is_mem64(const struct vfu_region *r)
{
    return r->size != 0 && (r->flags & VFU_REGION_FLAG_MEM) &&
           (r->flags & VFU_REGION_FLAG_64_BITS);
}

static void
set_header_masks(vfu_ctx_t *ctx)
{
    pci_put16(ctx->pci.wmask, PCI_COMMAND, CMD_WMASK);
    pci_put16(ctx->pci.w1cmask, PCI_STATUS, STS_W1CMASK);
    ctx->pci.wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    ctx->pci.wmask[PCI_LATENCY_TIMER] = 0xff;
    ctx->pci.wmask[PCI_INTERRUPT_LINE] = 0xff;
    /* Every writable header bit resets to 0 (rstval is zeroed). */
    memset(ctx->pci.emul, 1, HDR_SIZE);
}

int
pci_alloc(vfu_ctx_t *ctx)
{
    int ret = pci_table_alloc(ctx);

    if (ret < 0) {
        return ret;
    }
    ctx->pci.type = VFU_PCI_TYPE_CONVENTIONAL;
    set_header_masks(ctx);
    return 0;
}

void
pci_free(vfu_ctx_t *ctx)
{
    caps_free(ctx);
    pci_table_free(ctx);
}

/* Installs @type | kept address bits, with @mask as the writable bits. */
static void
set_bar_reg(vfu_ctx_t *ctx, size_t off, uint32_t type, uint32_t mask)
{
    uint32_t cur = pci_get32(ctx->pci.cfg, off);

    pci_put32(ctx->pci.cfg, off, (cur & mask) | type);
    pci_put32(ctx->pci.wmask, off, mask);
}

static void
rom_changed(vfu_ctx_t *ctx)
{
    const struct vfu_region *r = &ctx->regions[VFU_PCI_DEV_ROM_REGION_IDX];
    uint32_t mask;

    if (r->size == 0) {
        pci_put32(ctx->pci.cfg, PCI_ROM_ADDRESS, 0);
        pci_put32(ctx->pci.wmask, PCI_ROM_ADDRESS, 0);
        return;
    }
    mask = (uint32_t)~(decode_size(r->size, MIN_ROM_SIZE) - 1) &
           PCI_ROM_ADDRESS_MASK;
    set_bar_reg(ctx, PCI_ROM_ADDRESS, 0, mask | PCI_ROM_ADDRESS_ENABLE);
}

void
pci_region_changed(vfu_ctx_t *ctx, int idx)
{
    const struct vfu_region *r;
    size_t off;
    uint64_t mask;
    uint32_t type;
    bool mem64;

    if (idx == VFU_PCI_DEV_ROM_REGION_IDX) {
        rom_changed(ctx);
        return;
    }
    if (idx < 0 || idx >= PCI_BARS_NR) {
        return;
    }
    r = &ctx->regions[idx];
    off = PCI_BASE_ADDRESS_0 + 4 * (size_t)idx;

    mem64 = false;
    if (r->size == 0) {
        /* The upper dword of a 64-bit BAR belongs to the BAR below it. */
        if (idx > 0 && is_mem64(&ctx->regions[idx - 1])) {
            return;
        }
        pci_put32(ctx->pci.cfg, off, 0);
        pci_put32(ctx->pci.wmask, off, 0);
    } else if (!(r->flags & VFU_REGION_FLAG_MEM)) {
        mask = ~(decode_size(r->size, MIN_IO_BAR_SIZE) - 1);
        set_bar_reg(ctx, off, PCI_BASE_ADDRESS_SPACE_IO,
                    (uint32_t)mask & (uint32_t)PCI_BASE_ADDRESS_IO_MASK);
    } else {
        /* BAR5 has no upper slot; a 64-bit flag there cannot be honoured. */
        mem64 = is_mem64(r) && idx + 1 < PCI_BARS_NR;
        type = PCI_BASE_ADDRESS_SPACE_MEMORY |
               (mem64 ? PCI_BASE_ADDRESS_MEM_TYPE_64
                      : PCI_BASE_ADDRESS_MEM_TYPE_32);
        if (r->flags & VFU_REGION_FLAG_PREFETCH) {
            type |= PCI_BASE_ADDRESS_MEM_PREFETCH;
        }
        mask = ~(decode_size(r->size, MIN_MEM_BAR_SIZE) - 1);
        set_bar_reg(ctx, off, type,
                    (uint32_t)mask & (uint32_t)PCI_BASE_ADDRESS_MEM_MASK);
        if (mem64) {
            set_bar_reg(ctx, off + 4, 0, (uint32_t)(mask >> 32));
        }
    }

    /*
     * If this BAR stopped being 64-bit, the slot above may hold a stale
     * upper dword; clear it unless a region of its own lives there.
     */
    if (!mem64 && idx + 1 < PCI_BARS_NR && ctx->regions[idx + 1].size == 0) {
        pci_put32(ctx->pci.cfg, off + 4, 0);
        pci_put32(ctx->pci.wmask, off + 4, 0);
    }
}

void
pci_set_intx_pin(vfu_ctx_t *ctx, bool has_intx)
{
    ctx->pci.cfg[PCI_INTERRUPT_PIN] = has_intx ? 1 : 0;     /* INTA# */
}

void
pci_set_intx_status(vfu_ctx_t *ctx, bool asserted)
{
    uint16_t sts = pci_get16(ctx->pci.cfg, PCI_STATUS);

    sts = asserted ? (sts | PCI_STATUS_INTERRUPT)
                   : (sts & ~PCI_STATUS_INTERRUPT);
    pci_put16(ctx->pci.cfg, PCI_STATUS, sts);
}

VFU_EXPORT int
vfu_pci_init(vfu_ctx_t *ctx, vfu_pci_type_t pci_type, int hdr_type,
             int revision)
{
    int i;

    if (ctx == NULL || ctx->pci.cfg == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ctx->pci.initialized) {
        errno = EEXIST;
        return -1;
    }
    /* Compare as int: the enum may be unsigned, hiding negative values. */
    if ((int)pci_type < (int)VFU_PCI_TYPE_CONVENTIONAL ||
        (int)pci_type > (int)VFU_PCI_TYPE_EXPRESS ||
        hdr_type != PCI_HEADER_TYPE_NORMAL ||
        revision < 0 || revision > 0xff) {
        errno = EINVAL;
        return -1;
    }

    if ((pci_type == VFU_PCI_TYPE_PCI_X_2 ||
         pci_type == VFU_PCI_TYPE_EXPRESS) &&
        pci_table_resize(ctx, PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE) < 0) {
        errno = ENOMEM;
        return -1;
    }
    ctx->pci.type = pci_type;
    ctx->pci.cfg[PCI_REVISION_ID] = (uint8_t)revision;
    ctx->pci.cfg[PCI_HEADER_TYPE] = (uint8_t)hdr_type;
    ctx->pci.initialized = true;

    /* Regions may have been set up first; make sure their BARs show. */
    for (i = 0; i < PCI_BARS_NR; i++) {
        pci_region_changed(ctx, i);
    }
    pci_region_changed(ctx, VFU_PCI_DEV_ROM_REGION_IDX);
    return 0;
}

VFU_EXPORT void
vfu_pci_set_id(vfu_ctx_t *ctx, uint16_t vid, uint16_t did, uint16_t ssvid,
               uint16_t ssid)
{
    if (ctx == NULL || ctx->pci.cfg == NULL) {
        return;
    }
    pci_put16(ctx->pci.cfg, PCI_VENDOR_ID, vid);
    pci_put16(ctx->pci.cfg, PCI_DEVICE_ID, did);
    pci_put16(ctx->pci.cfg, PCI_SUBSYSTEM_VENDOR_ID, ssvid);
    pci_put16(ctx->pci.cfg, PCI_SUBSYSTEM_ID, ssid);
}

VFU_EXPORT void
vfu_pci_set_class(vfu_ctx_t *ctx, uint8_t base, uint8_t sub, uint8_t pi)
{
    if (ctx == NULL || ctx->pci.cfg == NULL) {
        return;
    }
    ctx->pci.cfg[PCI_CLASS_PROG] = pi;
    ctx->pci.cfg[PCI_CLASS_DEVICE] = sub;
    ctx->pci.cfg[PCI_CLASS_DEVICE + 1] = base;
}

VFU_EXPORT vfu_pci_config_space_t *
vfu_pci_get_config_space(vfu_ctx_t *ctx)
{
    if (ctx == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return (vfu_pci_config_space_t *)ctx->pci.cfg;
}
