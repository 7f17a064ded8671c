/*
 * PCI capabilities: owns the list of capabilities the device added and the
 * two chains that link them in config space (standard: from the pointer at
 * 0x34, inside 0x40-0xff; extended: from 0x100), where they are placed,
 * each one's entries in the register table (from its kind: cap_kinds.c),
 * the MSI-X table and PBA checks, what a config write to them asks for,
 * and the MSI and MSI-X enables and masks the interrupt code reads. The
 * resets a write asks for are the reset orchestrator's (reset.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cap_kinds.h"

#define STD_START       PCI_STD_HEADER_SIZEOF   /* 0x40 */
#define STD_END         PCI_CFG_SPACE_SIZE      /* 0x100 */
#define EXT_START       PCI_CFG_SPACE_SIZE

#define CAP_FLAG_MASK   (VFU_CAP_FLAG_EXTENDED | VFU_CAP_FLAG_CALLBACK | \
                         VFU_CAP_FLAG_READONLY)

/* ------------------------------------------------------------------ */
/* MSI-X table and PBA                                                 */
/* ------------------------------------------------------------------ */

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
    k = cap_kind_of(id, ext);
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
        const struct cap_kind *k = cap_kind_of(c->id, c->ext);
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

void
caps_after_soft_reset(vfu_ctx_t *ctx)
{
    const struct vfu_cap *pm = caps_find(ctx, false, PCI_CAP_ID_PM);

    if (pm != NULL) {
        size_t o = pm->off + PCI_PM_CTRL;
        pci_put16(ctx->pci.cfg, o, pci_get16(ctx->pci.cfg, o) &
                  ~PCI_PM_CTRL_STATE_MASK);
    }
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
caps_msi_enabled(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSI);

    return c != NULL && (cap_flags(ctx, c) & PCI_MSI_FLAGS_ENABLE);
}

unsigned
caps_msi_vectors(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSI);

    if (c == NULL || !(cap_flags(ctx, c) & PCI_MSI_FLAGS_ENABLE)) {
        return 0;
    }
    return 1u << (unsigned)((cap_flags(ctx, c) & PCI_MSI_FLAGS_QSIZE) >> 4);
}

bool
caps_msi_vector_masked(vfu_ctx_t *ctx, unsigned vector)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSI);
    uint16_t flags;
    size_t mask;

    if (c == NULL || vector >= caps_msi_vectors(ctx)) {
        return true;
    }
    flags = cap_flags(ctx, c);
    if (!(flags & PCI_MSI_FLAGS_MASKBIT)) {
        return false;
    }
    mask = c->off + ((flags & PCI_MSI_FLAGS_64BIT) ? PCI_MSI_MASK_64
                                                   : PCI_MSI_MASK_32);
    return (pci_get32(ctx->pci.cfg, mask) >> vector) & 1;
}

bool
caps_msix_enabled(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSIX);

    return c != NULL && (cap_flags(ctx, c) & PCI_MSIX_FLAGS_ENABLE);
}

bool
caps_msix_masked(vfu_ctx_t *ctx)
{
    const struct vfu_cap *c = caps_find(ctx, false, PCI_CAP_ID_MSIX);

    return c != NULL && (cap_flags(ctx, c) & PCI_MSIX_FLAGS_MASKALL);
}
