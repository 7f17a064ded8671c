/*
 * dma.c owns the DMA map table: the regions of client memory the client
 * announced with DMA_MAP and withdrew with DMA_UNMAP, the server's mappings
 * of those that came with a file descriptor, the register / unregister
 * callbacks, the scatter/gather calls (vfu_addr_to_sgl, vfu_sgl_get/put,
 * vfu_sgl_mark_dirty, vfu_sg_is_mappable) and dirty-page logging (the
 * DMA_LOGGING_* device features that feature.c parses). Access by message
 * (vfu_sgl_read/write) is dma_msg.c's, through dma_sg_lookup() and
 * dma_range_check(). See docs/dma.md.
 *
 * The table: regions live in slots that keep their index for their
 * lifetime, and a sorted array of [iova, end) -> slot serves lookups by
 * binary search. Each mapping gets a new generation number; a dma_sg_t
 * records slot and generation, so an entry made before an unmap is
 * recognised as stale even if a later map reuses the slot.
 *
 * Dirty logging: the log (dirty.c) covers the ranges the client named at
 * START or, when it named none, every region mapped while logging.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private.h"

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

struct dma_region {
    uint64_t iova;
    uint64_t size;
    uint64_t gen;               /* 0: the slot is free */
    uint32_t prot;              /* PROT_READ / PROT_WRITE the client granted */
    uint32_t next_free;         /* free-slot list */
    void *vaddr;                /* our mapping, or NULL: messages only */
    size_t page_size;           /* of the mapping; 0 without one */
};

/*
 * One mapped range in iova order (its start in starts[]), with what a
 * lookup needs so that it touches no slot.
 */
struct dma_ent {
    uint64_t end;               /* exclusive; never wraps (DMA_MAP checks) */
    uint64_t gen;
    uint32_t slot;
    uint32_t prot;
};

struct dma_table {
    vfu_dma_register_cb_t *register_cb;
    vfu_dma_unregister_cb_t *unregister_cb;

    struct dma_region *slots;
    uint32_t nr_slots;          /* slots ever used (free ones included) */
    uint32_t cap_slots;
    uint32_t free_head;         /* UINT32_MAX: none free */
    uint64_t *starts;           /* sorted, disjoint regions' starts... */
    struct dma_ent *ents;       /* ...and the rest, apart: fewer cache lines */
    uint32_t nr_ents;
    uint32_t cap_ents;
    uint64_t next_gen;
    uint32_t max_regions;       /* vfu_setup_device_dma() */

    struct dirty_log *log;      /* dirty.c; NULL: not logging */
    bool log_all;               /* no ranges given: log every mapping */
};

#define NO_SLOT         UINT32_MAX

static struct dma_table *
table_get(vfu_ctx_t *ctx)
{
    if (ctx->dma == NULL) {
        ctx->dma = calloc(1, sizeof(*ctx->dma));
        if (ctx->dma != NULL) {
            ctx->dma->free_head = NO_SLOT;
            ctx->dma->next_gen = 1;
            ctx->dma->max_regions = SERVER_MAX_DMA_MAPS;
        }
    }
    return ctx->dma;
}

/* ------------------------------------------------------------------ */
/* Lookup                                                              */
/* ------------------------------------------------------------------ */

/* Index of the last entry starting at or below @addr, or -1. */
static long
ent_floor(const struct dma_table *t, uint64_t addr)
{
    long lo = 0, hi = (long)t->nr_ents - 1, found = -1;

    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (t->starts[mid] <= addr) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

/* Index of the entry containing @addr, or -1. */
static long
ent_find(const struct dma_table *t, uint64_t addr)
{
    long i = t == NULL ? -1 : ent_floor(t, addr);
    return i >= 0 && addr < t->ents[i].end ? i : -1;
}

static bool
prot_ok(uint32_t have, uint32_t want)
{
    return (want & ~have) == 0;
}

/*
 * Walks [iova, iova + len) over contiguous regions, checking access @prot.
 * Fills up to @max entries of @sgl (may be NULL) and returns how many the
 * range needs, or -ENOENT / -EACCES.
 */
static long
walk_range(const struct dma_table *t, uint64_t iova, uint64_t len,
           dma_sg_t *sgl, size_t max, uint32_t prot)
{
    long i, n = 0;

    if (len == 0 || len - 1 > UINT64_MAX - iova) {
        return -ENOENT;
    }
    i = ent_find(t, iova);
    if (i < 0) {
        return -ENOENT;
    }
    for (;;) {
        const struct dma_ent *e = &t->ents[i];
        uint64_t chunk = e->end - iova;

        if (!prot_ok(e->prot, prot)) {
            return -EACCES;
        }
        if (chunk > len) {
            chunk = len;
        }
        if ((size_t)n < max) {
            struct dma_sg sg = {
                .iova = iova, .length = chunk, .gen = e->gen,
                .offset = iova - t->starts[i], .slot = e->slot, .prot = prot,
            };
            memcpy((uint8_t *)sgl + (size_t)n * sizeof(sg), &sg, sizeof(sg));
        }
        n++;
        len -= chunk;
        if (len == 0) {
            return n;
        }
        iova += chunk;
        i++;
        if ((uint32_t)i >= t->nr_ents || t->starts[i] != iova) {
            return -ENOENT;     /* a hole */
        }
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
    r = &t->slots[sg->slot];
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
dma_sg_lookup(vfu_ctx_t *ctx, const dma_sg_t *entry, uint64_t *iova,
              size_t *len, void **vaddr, bool is_write)
{
    struct dma_sg sg = sg_at(entry, 0);
    const struct dma_region *r = sg_region(ctx, &sg);

    if (r == NULL) {
        return -ENOENT;
    }
    if (!prot_ok(r->prot, is_write ? PROT_WRITE : PROT_READ)) {
        return -EACCES;
    }
    *iova = sg.iova;
    *len = sg.length;
    *vaddr = r->vaddr != NULL ? (uint8_t *)r->vaddr + sg.offset : NULL;
    return 0;
}

int
dma_range_check(vfu_ctx_t *ctx, uint64_t iova, size_t len, bool is_write)
{
    long n = walk_range(ctx->dma, iova, len, NULL, 0,
                        is_write ? PROT_WRITE : PROT_READ);
    return n < 0 ? (int)n : 0;
}

/* ------------------------------------------------------------------ */
/* Public scatter/gather calls                                         */
/* ------------------------------------------------------------------ */

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
            errno = ENOENT;
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
        iov[i].iov_base = (uint8_t *)r->vaddr + sg.offset;
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

/* In parentheses: the header also defines a macro of this name. */
VFU_EXPORT int
(vfu_setup_device_dma)(vfu_ctx_t *ctx, size_t max_regions,
                       vfu_dma_register_cb_t *dma_register,
                       vfu_dma_unregister_cb_t *dma_unregister)
{
    struct dma_table *t;

    if (ctx == NULL || max_regions == 0 ||
        max_regions > LIBVFIO_USER_MAX_DMA_REGIONS) {
        errno = EINVAL;
        return -1;
    }
    t = table_get(ctx);
    if (t == NULL) {
        errno = ENOMEM;
        return -1;
    }
    t->register_cb = dma_register;
    t->unregister_cb = dma_unregister;
    t->max_regions = (uint32_t)max_regions;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Dirty logging                                                       */
/* ------------------------------------------------------------------ */

void
dma_mark_dirty(vfu_ctx_t *ctx, uint64_t iova, size_t len)
{
    if (ctx->dma != NULL && ctx->dma->log != NULL) {
        dirty_mark(ctx->dma->log, iova, len);
    }
}

bool
dma_logging(vfu_ctx_t *ctx)
{
    return ctx->dma != NULL && ctx->dma->log != NULL;
}

static int
range_cmp(const void *a, const void *b)
{
    const struct vfio_user_device_feature_dma_logging_range *x = a, *y = b;
    return x->iova < y->iova ? -1 : x->iova > y->iova;
}

int
dma_log_start(vfu_ctx_t *ctx, uint64_t *page_size,
              const struct vfio_user_device_feature_dma_logging_range *ranges,
              uint32_t nr)
{
    struct vfio_user_device_feature_dma_logging_range *sorted;
    struct dma_table *t = table_get(ctx);
    int ret = 0;

    if (t == NULL) {
        return -ENOMEM;
    }
    if (t->log != NULL) {
        return -EBUSY;
    }
    if (*page_size == 0 || (*page_size & (*page_size - 1)) != 0) {
        return -EINVAL;
    }
    /* Each range non-empty, inside the 64-bit space, none overlapping. */
    sorted = malloc((nr > 0 ? nr : 1) * sizeof(*sorted));
    if (sorted == NULL) {
        return -ENOMEM;
    }
    if (nr > 0) {
        memcpy(sorted, ranges, nr * sizeof(*sorted));
        qsort(sorted, nr, sizeof(*sorted), range_cmp);
    }
    for (uint32_t i = 0; i < nr && ret == 0; i++) {
        uint64_t a = sorted[i].iova, len = sorted[i].length;
        if (len == 0 || len - 1 > UINT64_MAX - a ||
            (i > 0 && a - sorted[i - 1].iova < sorted[i - 1].length)) {
            ret = -EINVAL;
        }
    }
    if (ret == 0) {
        t->log = dirty_new(*page_size < SERVER_DMA_PGSIZE ? SERVER_DMA_PGSIZE
                                                          : *page_size);
        ret = t->log == NULL ? -ENOMEM : 0;
    }
    t->log_all = nr == 0;
    for (uint32_t i = 0; i < nr && ret == 0; i++) {
        ret = dirty_cover(t->log, sorted[i].iova, sorted[i].length);
    }
    for (uint32_t i = 0; t->log_all && i < t->nr_ents && ret == 0; i++) {
        ret = dirty_cover(t->log, t->starts[i], t->ents[i].end - t->starts[i]);
    }
    free(sorted);
    if (ret < 0) {
        dma_log_stop(ctx);
        return ret;
    }
    *page_size = *page_size < SERVER_DMA_PGSIZE ? SERVER_DMA_PGSIZE : *page_size;
    vfu_log_info(ctx, "dirty logging started: %u ranges, %" PRIu64
                 "-byte pages", nr, *page_size);
    return 0;
}

void
dma_log_stop(vfu_ctx_t *ctx)
{
    if (ctx->dma != NULL && ctx->dma->log != NULL) {
        dirty_free(ctx->dma->log);
        ctx->dma->log = NULL;
        ctx->dma->log_all = false;
        vfu_log_info(ctx, "dirty logging stopped");
    }
}

int
dma_log_report(vfu_ctx_t *ctx, uint64_t iova, uint64_t length,
               uint64_t page_size, uint64_t *bitmap)
{
    if (!dma_logging(ctx) || length == 0 || length - 1 > UINT64_MAX - iova ||
        page_size == 0 || (page_size & (page_size - 1)) != 0) {
        return -EINVAL;
    }
    dirty_report(ctx->dma->log, iova, length, page_size, bitmap);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Mapping and unmapping                                               */
/* ------------------------------------------------------------------ */

static vfu_dma_info_t
region_info(const struct dma_region *r)
{
    vfu_dma_info_t info = {
        .iova = { .iov_base = (void *)(uintptr_t)r->iova, .iov_len = r->size },
        .vaddr = r->vaddr,
        .page_size = r->page_size,
        .prot = r->prot,
    };

    if (r->vaddr != NULL) {
        info.mapping = (struct iovec){ .iov_base = r->vaddr,
                                       .iov_len = r->size };
    }
    return info;
}

/* The rules of a new mapping, nothing changed; 0 or -errno. */
static int
map_check(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd,
          uint64_t offset, uint32_t prot)
{
    const struct dma_table *t = ctx->dma;
    long i;

    if (size == 0 || prot == 0 || (prot & ~(PROT_READ | PROT_WRITE)) ||
        iova % SERVER_DMA_PGSIZE != 0 || size % SERVER_DMA_PGSIZE != 0 ||
        size > UINT64_MAX - iova) {
        return -EINVAL;
    }
    if (fd < 0 ? offset != 0 : (offset % SERVER_DMA_PGSIZE != 0 ||
                                size > UINT64_MAX - offset ||
                                offset + size > (uint64_t)INT64_MAX)) {
        return -EINVAL;
    }
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) < 0) {
            return -errno;
        }
        /* Memory past the end of a file would fault on access (SIGBUS). */
        if (S_ISREG(st.st_mode) && offset + size > (uint64_t)st.st_size) {
            return -EINVAL;
        }
    }
    if (t != NULL) {
        i = ent_floor(t, iova + (size - 1));
        if (i >= 0 && t->ents[i].end > iova) {
            return -EEXIST;
        }
        if (t->nr_ents >= t->max_regions) {
            return -EINVAL;     /* as the original: beyond max_regions */
        }
    }
    return 0;
}

static uint32_t
slot_alloc(struct dma_table *t)
{
    uint32_t s = t->free_head;

    if (s != NO_SLOT) {
        t->free_head = t->slots[s].next_free;
        return s;
    }
    if (t->nr_slots == t->cap_slots) {
        /* Slots move in memory but never change index. */
        uint32_t cap = t->cap_slots == 0 ? 16 : t->cap_slots * 2;
        struct dma_region *grown = realloc(t->slots, cap * sizeof(*grown));
        if (grown == NULL) {
            return NO_SLOT;
        }
        t->slots = grown;
        t->cap_slots = cap;
    }
    return t->nr_slots++;
}

int
dma_map(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd, uint64_t offset,
        uint32_t prot)
{
    struct dma_table *t = table_get(ctx);
    struct dma_region r = { .iova = iova, .size = size, .prot = prot };
    vfu_dma_info_t info;
    uint32_t slot;
    long pos;
    int ret;

    if (t == NULL) {
        return -ENOMEM;
    }
    ret = map_check(ctx, iova, size, fd, offset, prot);
    if (ret < 0) {
        return ret;
    }
    if (t->nr_ents == t->cap_ents) {
        uint32_t cap = t->cap_ents == 0 ? 16 : t->cap_ents * 2;
        struct dma_ent *e = realloc(t->ents, cap * sizeof(*e));
        uint64_t *st = e == NULL ? NULL
                                 : realloc(t->starts, cap * sizeof(*st));
        if (e != NULL) {
            t->ents = e;
        }
        if (st == NULL) {
            return -ENOMEM;
        }
        t->starts = st;
        t->cap_ents = cap;
    }
    if (t->log != NULL && t->log_all) {
        ret = dirty_cover(t->log, iova, size);
        if (ret < 0) {
            return ret;
        }
    }
    if (fd >= 0) {
        struct stat st;
        r.vaddr = mmap(NULL, size, (int)prot, MAP_SHARED, fd, (off_t)offset);
        if (r.vaddr == MAP_FAILED) {
            ret = -errno;
            vfu_log_err(ctx, "DMA_MAP: mmap of [%#" PRIx64 ", +%#" PRIx64
                        ") failed: %s", iova, size, strerror(-ret));
            return ret;
        }
        r.page_size = (size_t)sysconf(_SC_PAGESIZE);
        if (fstat(fd, &st) == 0 && st.st_blksize > 0 &&
            ((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)) == 0 &&
            (size_t)st.st_blksize > r.page_size) {
            r.page_size = (size_t)st.st_blksize;    /* huge pages */
        }
    }
    slot = slot_alloc(t);
    if (slot == NO_SLOT) {
        if (r.vaddr != NULL) {
            munmap(r.vaddr, size);
        }
        return -ENOMEM;
    }
    r.gen = t->next_gen++;
    r.next_free = NO_SLOT;
    t->slots[slot] = r;
    pos = ent_floor(t, iova) + 1;
    memmove(&t->ents[pos + 1], &t->ents[pos],
            (t->nr_ents - (size_t)pos) * sizeof(*t->ents));
    memmove(&t->starts[pos + 1], &t->starts[pos],
            (t->nr_ents - (size_t)pos) * sizeof(*t->starts));
    t->starts[pos] = iova;
    t->ents[pos] = (struct dma_ent){ .end = iova + size, .gen = r.gen,
                                     .slot = slot, .prot = prot };
    t->nr_ents++;
    vfu_log_debug(ctx, "DMA map [%#" PRIx64 ", %#" PRIx64 ") prot %#x%s",
                  iova, iova + size, prot, r.vaddr ? " mapped" : "");

    if (t->register_cb != NULL) {
        info = region_info(&r);
        t->register_cb(ctx, &info);
    }
    return 0;
}

/*
 * Tells the device, then drops the region of entry @i. The entry stays
 * findable during the callback; the callback may change the table (it may
 * serve requests while waiting for DMA by message), so the region is found
 * again by slot and generation afterwards.
 */
static void
remove_ent(vfu_ctx_t *ctx, long i)
{
    struct dma_table *t = ctx->dma;
    uint32_t slot = t->ents[i].slot;
    uint64_t gen = t->slots[slot].gen;
    struct dma_region *r;

    if (t->unregister_cb != NULL) {
        vfu_dma_info_t info = region_info(&t->slots[slot]);
        t->unregister_cb(ctx, &info);
    }
    r = &t->slots[slot];
    if (r->gen != gen) {
        return;                 /* removed meanwhile */
    }
    i = ent_find(t, r->iova);
    vfu_log_debug(ctx, "DMA unmap [%#" PRIx64 ", %#" PRIx64 ")", r->iova,
                  r->iova + r->size);
    if (r->vaddr != NULL && munmap(r->vaddr, r->size) < 0) {
        vfu_log_warn(ctx, "munmap of DMA region failed: %m");
    }
    r->gen = 0;
    r->vaddr = NULL;
    r->next_free = t->free_head;
    t->free_head = slot;
    memmove(&t->ents[i], &t->ents[i + 1],
            (t->nr_ents - (size_t)i - 1) * sizeof(*t->ents));
    memmove(&t->starts[i], &t->starts[i + 1],
            (t->nr_ents - (size_t)i - 1) * sizeof(*t->starts));
    t->nr_ents--;
}

int
dma_unmap(vfu_ctx_t *ctx, uint64_t iova, uint64_t size)
{
    long i = ent_find(ctx->dma, iova);

    if (i < 0 || ctx->dma->starts[i] != iova ||
        ctx->dma->ents[i].end - iova != size) {
        return -ENOENT;
    }
    remove_ent(ctx, i);
    return 0;
}

size_t
dma_max_regions(vfu_ctx_t *ctx)
{
    return ctx->dma == NULL ? SERVER_MAX_DMA_MAPS : ctx->dma->max_regions;
}

size_t
dma_nr_maps(vfu_ctx_t *ctx)
{
    return ctx->dma == NULL ? 0 : ctx->dma->nr_ents;
}

void
dma_remove_all(vfu_ctx_t *ctx)
{
    struct dma_table *t = ctx->dma;

    if (t == NULL) {
        return;
    }
    while (t->nr_ents > 0) {
        remove_ent(ctx, (long)t->nr_ents - 1);
    }
}

void
dma_free(vfu_ctx_t *ctx)
{
    if (ctx->dma == NULL) {
        return;
    }
    /* The device is going: no callbacks. */
    ctx->dma->unregister_cb = NULL;
    dma_remove_all(ctx);
    dma_log_stop(ctx);
    free(ctx->dma->slots);
    free(ctx->dma->ents);
    free(ctx->dma->starts);
    free(ctx->dma);
    ctx->dma = NULL;
}

/* ------------------------------------------------------------------ */
/* DMA_MAP, DMA_UNMAP                                                  */
/* ------------------------------------------------------------------ */

int
handle_dma_map(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    struct vfio_user_dma_map m;
    uint32_t prot = 0;
    int fd, ret;

    (void)reply;
    if (msg->len != sizeof(m)) {
        vfu_log_err(ctx, "DMA_MAP: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&m, msg->payload, sizeof(m));
    if (m.argsz < sizeof(m) || msg->nr_fds > 1 ||
        (m.flags & ~(VFIO_USER_F_DMA_REGION_READ |
                     VFIO_USER_F_DMA_REGION_WRITE))) {
        vfu_log_err(ctx, "DMA_MAP: argsz %u, flags %#x, %zu fds", m.argsz,
                    m.flags, msg->nr_fds);
        return -EINVAL;
    }
    prot |= (m.flags & VFIO_USER_F_DMA_REGION_READ) ? PROT_READ : 0;
    prot |= (m.flags & VFIO_USER_F_DMA_REGION_WRITE) ? PROT_WRITE : 0;
    fd = msg->nr_fds == 1 ? msg->fds[0] : -1;
    if (table_get(ctx) == NULL) {
        return -ENOMEM;
    }
    ret = map_check(ctx, m.addr, m.size, fd, m.offset, prot);
    if (ret < 0) {
        vfu_log_err(ctx, "DMA_MAP [%#" PRIx64 ", +%#" PRIx64 ") offset %#"
                    PRIx64 " flags %#x refused: %s", m.addr, m.size, m.offset,
                    m.flags, strerror(-ret));
        return ret;
    }
    ret = device_quiesce(ctx);
    if (ret != 0) {
        return ret;             /* HANDLER_PENDING, or the device failed */
    }
    /* The mapping keeps what it needs: the dispatcher closes the fd. */
    return dma_map(ctx, m.addr, m.size, fd, m.offset, prot);
}

int
handle_dma_unmap(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    struct vfio_user_dma_unmap u;
    long i;
    int ret;

    if (msg->len != sizeof(u)) {
        vfu_log_err(ctx, "DMA_UNMAP: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&u, msg->payload, sizeof(u));
    /* GET_DIRTY_BITMAP went with the old dirty page protocol. */
    if (u.argsz < sizeof(u) || (u.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) ||
        ((u.flags & VFIO_DMA_UNMAP_FLAG_ALL) ? (u.addr | u.size) != 0
                                             : u.size == 0)) {
        vfu_log_err(ctx, "DMA_UNMAP: argsz %u, flags %#x, [%#" PRIx64
                    ", +%#" PRIx64 ")", u.argsz, u.flags, u.addr, u.size);
        return -EINVAL;
    }
    if (!(u.flags & VFIO_DMA_UNMAP_FLAG_ALL)) {
        i = ent_find(ctx->dma, u.addr);
        if (i < 0 || ctx->dma->starts[i] != u.addr ||
            ctx->dma->ents[i].end - u.addr != u.size) {
            vfu_log_err(ctx, "DMA_UNMAP [%#" PRIx64 ", +%#" PRIx64
                        ") matches no mapping", u.addr, u.size);
            return -ENOENT;
        }
    }
    if (dma_nr_maps(ctx) > 0) {
        ret = device_quiesce(ctx);
        if (ret != 0) {
            return ret;
        }
        if (u.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
            dma_remove_all(ctx);
        } else {
            (void)dma_unmap(ctx, u.addr, u.size);
        }
    }
    memcpy(ctx->reply_buf, &u, sizeof(u));
    reply_add(reply, ctx->reply_buf, sizeof(u));
    return 0;
}
