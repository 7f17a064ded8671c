/*
 * PCI config space: owns the emulated type-0 header (ids, class,
 * command/status, BARs and their sizing, expansion ROM BAR, interrupt line
 * and pin, the INTx status bit), the per-byte register table that governs
 * every client write (write mask, write-1-to-clear mask, reset value, sticky
 * and FLR-kept bits, emulated or device-owned), config space resets and
 * function-level resets, the interrupt state the interrupt code reads
 * (INTx pin and status, MSI and MSI-X enables and masks), and the access
 * path that splits an access between this emulation and the device's
 * config region callback. Capabilities are in caps.c.
 */
#include <endian.h>
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

/* The per-byte arrays of struct vfu_pci, allocated as one block. */
#define NR_CFG_ARRAYS    7

/* Registers are little endian and may sit at any byte offset. */
uint32_t
pci_get32(const uint8_t *p, size_t off)
{
    uint32_t v;

    memcpy(&v, p + off, sizeof(v));
    return le32toh(v);
}

void
pci_put32(uint8_t *p, size_t off, uint32_t val)
{
    uint32_t v = htole32(val);

    memcpy(p + off, &v, sizeof(v));
}

uint16_t
pci_get16(const uint8_t *p, size_t off)
{
    uint16_t v;

    memcpy(&v, p + off, sizeof(v));
    return le16toh(v);
}

void
pci_put16(uint8_t *p, size_t off, uint16_t val)
{
    uint16_t v = htole16(val);

    memcpy(p + off, &v, sizeof(v));
}

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

/*
 * Sizes the tables: config space of @cfg_size bytes (256 for conventional
 * PCI, 4096 for PCI Express), and the six attribute arrays covering its
 * first @attr_size bytes (beyond, every attribute is 0: the device's bytes,
 * nothing emulated). Extended config space gets attributes only once an
 * extended capability is added, so a thousand devices pay for neither
 * what they do not have nor what they do not use. What the tables held
 * is kept, new bytes are 0. 0 or -ENOMEM (nothing changed).
 */
static int
pci_resize(vfu_ctx_t *ctx, size_t cfg_size, size_t attr_size)
{
    uint8_t *block = calloc(1, cfg_size + (NR_CFG_ARRAYS - 1) * attr_size);
    uint8_t **arrays[NR_CFG_ARRAYS] = {
        &ctx->pci.cfg, &ctx->pci.wmask, &ctx->pci.w1cmask, &ctx->pci.rstval,
        &ctx->pci.sticky, &ctx->pci.flrkeep, &ctx->pci.emul,
    };
    uint8_t *old = ctx->pci.cfg;    /* the old block starts with cfg */
    uint8_t *at = block;

    if (block == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < NR_CFG_ARRAYS; i++) {
        size_t size = i == 0 ? cfg_size : attr_size;
        size_t had = i == 0 ? ctx->pci.cfg_size : ctx->pci.attr_size;

        if (*arrays[i] != NULL) {
            memcpy(at, *arrays[i], had < size ? had : size);
        }
        *arrays[i] = at;
        at += size;
    }
    free(old);
    ctx->pci.cfg_size = cfg_size;
    ctx->pci.attr_size = attr_size;
    return 0;
}

int
pci_attr_full(vfu_ctx_t *ctx)
{
    if (ctx->pci.attr_size == ctx->pci.cfg_size) {
        return 0;
    }
    return pci_resize(ctx, ctx->pci.cfg_size, ctx->pci.cfg_size);
}

/* The emulated-or-device's attribute of byte @off. */
static inline uint8_t
emul_at(vfu_ctx_t *ctx, size_t off)
{
    return off < ctx->pci.attr_size ? ctx->pci.emul[off] : 0;
}

int
pci_alloc(vfu_ctx_t *ctx)
{
    memset(&ctx->pci, 0, sizeof(ctx->pci));
    if (pci_resize(ctx, PCI_CFG_SPACE_SIZE, PCI_CFG_SPACE_SIZE) < 0) {
        return -ENOMEM;
    }
    ctx->pci.type = VFU_PCI_TYPE_CONVENTIONAL;
    set_header_masks(ctx);
    return 0;
}

void
pci_free(vfu_ctx_t *ctx)
{
    caps_free(ctx);
    free(ctx->pci.cfg);     /* the whole block */
    ctx->pci.cfg = NULL;
    ctx->pci.wmask = NULL;
    ctx->pci.w1cmask = NULL;
    ctx->pci.rstval = NULL;
    ctx->pci.sticky = NULL;
    ctx->pci.flrkeep = NULL;
    ctx->pci.emul = NULL;
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

/* Calls the config region callback, turning its result into count/-errno. */
static ssize_t
call_cfg_cb(vfu_ctx_t *ctx, vfu_region_access_cb_t *cb, char *buf,
            size_t count, uint64_t offset, bool is_write)
{
    ssize_t ret;

    errno = 0;
    ret = cb(ctx, buf, count, (loff_t)offset, is_write);
    if (ret < 0) {
        return errno > 0 ? -errno : -EIO;
    }
    if ((size_t)ret != count) {
        return -EIO;
    }
    return ret;
}

/*
 * Whether a write to emulated byte @off may be accepted, its read-only bits
 * ignored. Bytes with writable or W1C bits may, and so may every byte of
 * the six BAR registers and the ROM BAR, implemented or not: a guest sizes
 * every one of them by writing all-ones and reading back (0 for an absent
 * BAR), and the lower dword of a 64-bit BAR of 4 GiB or more has no
 * writable bit at all.
 */
static bool
byte_accepts_write(vfu_ctx_t *ctx, size_t off)
{
    return (off < ctx->pci.attr_size &&
            (ctx->pci.wmask[off] | ctx->pci.w1cmask[off]) != 0) ||
           (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_5 + 4) ||
           (off >= PCI_ROM_ADDRESS && off < PCI_ROM_ADDRESS + 4);
}

/* Length of the run of bytes from @off (at most @max) with one owner. */
static size_t
owner_run(vfu_ctx_t *ctx, size_t off, size_t max)
{
    size_t n = 1;

    while (n < max && emul_at(ctx, off + n) == emul_at(ctx, off)) {
        n++;
    }
    return n;
}

static ssize_t
config_read(vfu_ctx_t *ctx, vfu_region_access_cb_t *cb, char *buf,
            size_t count, size_t offset)
{
    size_t i, n;
    ssize_t ret;

    for (i = 0; i < count; i += n) {
        n = owner_run(ctx, offset + i, count - i);
        if (emul_at(ctx, offset + i) || cb == NULL) {
            memcpy(buf + i, ctx->pci.cfg + offset + i, n);
        } else {
            ret = call_cfg_cb(ctx, cb, buf + i, n, offset + i, false);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return (ssize_t)count;
}

/*
 * A write: every emulated byte takes the client's value through the masks,
 * device-owned bytes go to the callback. The refusal rule: when no byte
 * written accepts writes (no writable or W1C bit, not a BAR, not the
 * device's) yet some byte would differ, the client is trying to change
 * read-only state and gets EPERM; writing back the current value is
 * accepted because clients write whole dwords that mix read-only and
 * writable bytes. Device-owned bytes without a callback: EINVAL. Nothing
 * changes when the write fails. With @dry_run only the checks are made.
 */
static ssize_t
config_write(vfu_ctx_t *ctx, vfu_region_access_cb_t *cb, const char *buf,
             size_t count, size_t offset, bool dry_run)
{
    const uint8_t *in = (const uint8_t *)buf;
    uint8_t val[PCI_CFG_SPACE_EXP_SIZE];
    struct caps_pending pending = { 0 };
    bool accepts = false, differs = false, has_dev = false;
    size_t i, n;
    ssize_t ret;

    for (i = 0; i < count; i++) {
        size_t off = offset + i;
        uint8_t old = ctx->pci.cfg[off];
        uint8_t wm, cm;

        if (!emul_at(ctx, off)) {
            has_dev = true;
            continue;
        }
        wm = ctx->pci.wmask[off];
        cm = ctx->pci.w1cmask[off];
        val[i] = (uint8_t)(((old & ~wm) | (in[i] & wm)) & ~(in[i] & cm));
        accepts |= byte_accepts_write(ctx, off);
        differs |= in[i] != old;
    }
    if (!accepts && !has_dev && differs) {
        vfu_log_debug(ctx, "refused write of %zu bytes to read-only config "
                      "space at %#zx", count, offset);
        return -EPERM;
    }
    if (has_dev && cb == NULL) {
        vfu_log_debug(ctx, "write of %zu bytes at %#zx reaches config space "
                      "with no callback", count, offset);
        return -EINVAL;
    }
    caps_write_prepare(ctx, val, count, offset, &pending);
    if (dry_run) {
        return (ssize_t)count;
    }
    if (pending.flr || pending.soft_reset) {
        /* Quiet the device before anything changes: the write may wait. */
        ret = device_quiesce(ctx);
        if (ret != 0) {
            return ret;
        }
    }

    /*
     * The device's bytes go first, so that a failing callback leaves the
     * emulated registers as they were.
     */
    for (i = 0; i < count; i += n) {
        n = owner_run(ctx, offset + i, count - i);
        if (!emul_at(ctx, offset + i)) {
            ret = call_cfg_cb(ctx, cb, (char *)buf + i, n, offset + i, true);
            if (ret < 0) {
                return ret;
            }
        }
    }
    for (i = 0; i < count; i++) {
        if (emul_at(ctx, offset + i)) {
            ctx->pci.cfg[offset + i] = val[i];
        }
    }
    ret = caps_write_done(ctx, &pending);
    /* Enables and masks may have changed: deliver what they held back. */
    irq_config_written(ctx);
    return ret < 0 ? ret : (ssize_t)count;
}

/*
 * Config space access of @count bytes at @offset, already checked to lie
 * inside config space; with @dry_run a write is only checked.
 */
static ssize_t
config_access(vfu_ctx_t *ctx, char *buf, size_t count, uint64_t offset,
              bool is_write, bool dry_run)
{
    const struct vfu_region *cr = &ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX];

    if (count == 0 || offset > ctx->pci.cfg_size ||
        count > ctx->pci.cfg_size - offset) {
        return -EINVAL;
    }
    if ((cr->flags & VFU_REGION_FLAG_ALWAYS_CB) && cr->cb != NULL) {
        return dry_run ? (ssize_t)count :
               call_cfg_cb(ctx, cr->cb, buf, count, offset, is_write);
    }
    if (is_write) {
        return config_write(ctx, cr->cb, buf, count, (size_t)offset, dry_run);
    }
    return config_read(ctx, cr->cb, buf, count, (size_t)offset);
}

void
pci_reset_config(vfu_ctx_t *ctx, enum pci_reset_kind kind)
{
    struct vfu_pci *p = &ctx->pci;
    size_t i;

    for (i = 0; i < p->attr_size; i++) {      /* beyond: nothing writable */
        uint8_t keep = p->sticky[i];
        uint8_t bits;

        if (kind != PCI_RESET_DEVICE) {
            keep |= p->flrkeep[i];
        }
        bits = (uint8_t)((p->wmask[i] | p->w1cmask[i]) & ~keep);
        p->cfg[i] = (uint8_t)((p->cfg[i] & ~bits) | (p->rstval[i] & bits));
    }
}

void
pci_reset(vfu_ctx_t *ctx)
{
    pci_reset_config(ctx, PCI_RESET_DEVICE);
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

/*
 * The one place where the device is stopped before a function-level reset
 * (Initiate FLR, or the soft reset of a D3hot->D0 transition). When the
 * device defers quiescing, the config write that asked for the reset waits
 * (HANDLER_PENDING) and is written again once the device is quiet.
 */
static int
function_reset_quiesce(vfu_ctx_t *ctx)
{
    return device_quiesce(ctx);
}

/* Stops the device, lets it reset itself, then resets config space. */
int
pci_function_reset(vfu_ctx_t *ctx, vfu_reset_type_t type,
               enum pci_reset_kind kind)
{
    int ret = function_reset_quiesce(ctx);

    if (ret != 0) {
        return ret;
    }
    ret = device_call_reset(ctx, type);
    if (ret < 0) {
        return ret;
    }
    pci_reset_config(ctx, kind);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Interrupt state, for the interrupt code                             */
/* ------------------------------------------------------------------ */

static uint16_t
cap_flags(vfu_ctx_t *ctx, const struct vfu_cap *c)
{
    return pci_get16(ctx->pci.cfg, c->off + PCI_MSI_FLAGS);
}

bool
pci_msi_enabled(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSI);

    return c != NULL && (cap_flags(ctx, c) & PCI_MSI_FLAGS_ENABLE);
}

unsigned
pci_msi_vectors(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSI);

    if (c == NULL || !(cap_flags(ctx, c) & PCI_MSI_FLAGS_ENABLE)) {
        return 0;
    }
    return 1u << (unsigned)((cap_flags(ctx, c) & PCI_MSI_FLAGS_QSIZE) >> 4);
}

bool
pci_msi_vector_masked(vfu_ctx_t *ctx, unsigned vector)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSI);
    uint16_t flags;

    if (c == NULL || vector >= pci_msi_vectors(ctx)) {
        return true;
    }
    flags = cap_flags(ctx, c);
    if (!(flags & PCI_MSI_FLAGS_MASKBIT)) {
        return false;
    }
    return (pci_get32(ctx->pci.cfg, c->off + ((flags & PCI_MSI_FLAGS_64BIT) ? PCI_MSI_MASK_64
                                               : PCI_MSI_MASK_32)) >>
            vector) & 1;
}

bool
pci_msix_enabled(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSIX);

    return c != NULL && (cap_flags(ctx, c) & PCI_MSIX_FLAGS_ENABLE);
}

bool
pci_msix_masked(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSIX);

    return c != NULL && (cap_flags(ctx, c) & PCI_MSIX_FLAGS_MASKALL);
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
        pci_resize(ctx, PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE) < 0) {
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

ssize_t
pci_config_access(vfu_ctx_t *ctx, char *buf, size_t count, uint64_t offset,
                  bool is_write)
{
    return config_access(ctx, buf, count, offset, is_write, false);
}

int
pci_config_check_write(vfu_ctx_t *ctx, const char *buf, size_t count,
                       uint64_t offset)
{
    /* A dry run reads @buf only. */
    ssize_t ret = config_access(ctx, (char *)buf, count, offset, true, true);
    return ret < 0 ? (int)ret : 0;
}
