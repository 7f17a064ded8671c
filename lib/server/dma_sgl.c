/*
 * dma_sgl.c owns the scatter/gather calls on the DMA map table:
 * vfu_addr_to_sgl() turns a DMA range into entries, one per region it
 * crosses; vfu_sgl_get/put, vfu_sgl_mark_dirty and vfu_sg_is_mappable use
 * them in place; dma_sg_lookup() and dma_range_check() serve
 * vfu_sgl_read/write (dma_msg.c). It reads the table (dma_table.h) and
 * never changes it. See docs/dma.md.
 */
#include <string.h>
#include <sys/mman.h>

#include "dma_table.h"

/* What a dma_sg_t really is; the public header keeps it opaque. */
struct dma_sg {
    uint64_t iova;
    uint64_t length;
    uint64_t gen;               /* generation of the region it points into */
    uint64_t offset;            /* of iova into the region */
    uint32_t slot;
    uint32_t prot;              /* PROT_* asked of vfu_addr_to_sgl() */
};
_Static_assert(sizeof(struct dma_sg) == 40, "dma_sg_t is 40 bytes");

static bool
prot_ok(uint32_t have, uint32_t want)
{
    return (want & ~have) == 0;
}

/*
 * Walks [iova, iova + len) over contiguous regions, checking access @prot.
 * Fills up to @max entries of @sgl (may be NULL) and returns how many the
 * range needs, or -ENOENT / -EACCES. Each region after the first is found
 * by its start, where the one before ended.
 */
static long
walk_range(const struct dma_table *t, uint64_t iova, uint64_t len,
           dma_sg_t *sgl, size_t max, uint32_t prot)
{
    struct dma_ent e;
    bool found;
    long n = 0;

    if (len == 0 || len - 1 > UINT64_MAX - iova) {
        return -ENOENT;
    }
    found = dma_find(t, iova, &e);
    for (;;) {
        uint64_t offset, chunk;

        if (!found) {
            return -ENOENT;     /* not mapped, or a hole */
        }
        if (!prot_ok(e.prot, prot)) {
            return -EACCES;
        }
        offset = iova - e.iova;
        chunk = e.size - offset;
        if (chunk > len) {
            chunk = len;
        }
        if ((size_t)n < max) {
            struct dma_sg sg = {
                .iova = iova, .length = chunk, .gen = e.gen,
                .offset = offset, .slot = e.slot, .prot = prot,
            };
            memcpy((uint8_t *)sgl + (size_t)n * sizeof(sg), &sg, sizeof(sg));
        }
        n++;
        len -= chunk;
        if (len == 0) {
            return n;
        }
        /* No wrap: the range's end was checked above. */
        iova += chunk;
        found = dma_find(t, iova, &e);
    }
}

/* The live region an entry points into, or NULL when it is stale. */
static struct dma_region *
sg_region(const vfu_ctx_t *ctx, const struct dma_sg *sg)
{
    const struct dma_table *t = ctx->dma;
    struct dma_region *r;

    if (t == NULL || sg->slot >= t->nr_slots) {
        return NULL;
    }
    r = dma_slot(t, sg->slot);
    if (r->gen == 0 || r->gen != sg->gen || sg->offset > r->size ||
        sg->length > r->size - sg->offset || sg->iova != r->iova + sg->offset) {
        return NULL;
    }
    return r;
}

/* Entry @i of a list; copied, as callers may keep lists in byte arrays. */
static struct dma_sg
sg_at(const dma_sg_t *sgl, size_t i)
{
    struct dma_sg sg;
    memcpy(&sg, (const uint8_t *)sgl + i * sizeof(sg), sizeof(sg));
    return sg;
}

int
dma_sg_lookup(vfu_ctx_t *ctx, const dma_sg_t *entry, bool is_write,
              struct dma_sg_where *where)
{
    struct dma_sg sg = sg_at(entry, 0);
    const struct dma_region *r = sg_region(ctx, &sg);

    if (r == NULL) {
        return -ENOENT;
    }
    if (!prot_ok(r->prot, is_write ? PROT_WRITE : PROT_READ)) {
        return -EACCES;
    }
    *where = (struct dma_sg_where){
        .iova = sg.iova, .len = sg.length,
        .vaddr = r->vaddr != NULL ? r->vaddr + sg.offset : NULL,
        .fd = r->fd, .file_offset = r->offset + sg.offset,
    };
    return 0;
}

int
dma_range_check(vfu_ctx_t *ctx, uint64_t iova, size_t len, bool is_write)
{
    long n = walk_range(ctx->dma, iova, len, NULL, 0,
                        is_write ? PROT_WRITE : PROT_READ);
    return n < 0 ? (int)n : 0;
}

VFU_EXPORT size_t
dma_sg_size(void)
{
    return sizeof(struct dma_sg);
}

VFU_EXPORT int
vfu_addr_to_sgl(vfu_ctx_t *ctx, vfu_dma_addr_t dma_addr, size_t len,
                dma_sg_t *sgl, size_t max_nr_sgs, int prot)
{
    long n;

    if (ctx == NULL || (sgl == NULL && max_nr_sgs > 0) || len == 0 ||
        (prot & ~(PROT_READ | PROT_WRITE))) {
        errno = EINVAL;
        return -1;
    }
    n = walk_range(ctx->dma, (uintptr_t)dma_addr, len, sgl, max_nr_sgs,
                   (uint32_t)prot);
    if (n < 0) {
        errno = (int)-n;
        return -1;
    }
    if ((size_t)n > max_nr_sgs) {
        errno = 0;
        return (int)(-n - 1);
    }
    return (int)n;
}

VFU_EXPORT int
vfu_sgl_get(vfu_ctx_t *ctx, dma_sg_t *sgl, struct iovec *iov, size_t cnt,
            int flags)
{
    if (ctx == NULL || flags != 0 || (cnt > 0 && (sgl == NULL || iov == NULL))) {
        errno = EINVAL;
        return -1;
    }
    /* All or nothing: check every entry before filling any iovec. */
    for (size_t i = 0; i < cnt; i++) {
        struct dma_sg sg = sg_at(sgl, i);
        const struct dma_region *r = sg_region(ctx, &sg);
        if (r == NULL) {
            /* Stale (unmapped since): ENOENT; never made by us: EINVAL. */
            errno = sg.gen == 0 ? EINVAL : ENOENT;
            return -1;
        }
        if (r->vaddr == NULL) {
            errno = EFAULT;     /* reachable only by message */
            return -1;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        struct dma_sg sg = sg_at(sgl, i);
        const struct dma_region *r = sg_region(ctx, &sg);
        iov[i].iov_base = r->vaddr + sg.offset;
        iov[i].iov_len = sg.length;
    }
    return 0;
}

VFU_EXPORT void
vfu_sgl_put(vfu_ctx_t *ctx, dma_sg_t *sgl, struct iovec *iov, size_t cnt)
{
    (void)iov;
    if (ctx == NULL || sgl == NULL) {
        return;
    }
    for (size_t i = 0; i < cnt; i++) {
        struct dma_sg sg = sg_at(sgl, i);
        if ((sg.prot & PROT_WRITE) && sg_region(ctx, &sg) != NULL) {
            dma_mark_dirty(ctx, sg.iova, sg.length);
        }
    }
}

VFU_EXPORT void
vfu_sgl_mark_dirty(vfu_ctx_t *ctx, dma_sg_t *sgl, size_t cnt)
{
    if (ctx == NULL || sgl == NULL) {
        return;
    }
    for (size_t i = 0; i < cnt; i++) {
        struct dma_sg sg = sg_at(sgl, i);
        if (sg_region(ctx, &sg) != NULL) {
            dma_mark_dirty(ctx, sg.iova, sg.length);
        }
    }
}

VFU_EXPORT bool
vfu_sg_is_mappable(vfu_ctx_t *ctx, dma_sg_t *sg)
{
    struct dma_sg entry;
    const struct dma_region *r;

    if (ctx == NULL || sg == NULL) {
        return false;
    }
    entry = sg_at(sg, 0);
    r = sg_region(ctx, &entry);
    return r != NULL && r->vaddr != NULL;
}
