/*
 * dma.c owns the DMA map table (dma_table.h): the regions of client memory
 * the client announced with DMA_MAP and withdrew with DMA_UNMAP, the
 * server's mappings of those that came with a file descriptor, the
 * register / unregister callbacks, and dirty-page logging (the
 * DMA_LOGGING_* device features that feature.c parses): what the log
 * covers and what counts as written. The scatter/gather calls that read
 * the table are dma_sgl.c's; access by message is dma_msg.c's. See
 * docs/dma.md.
 *
 * Dirty logging: the log (dirty.c) covers the ranges the client named at
 * START or, when it named none, every region mapped while logging.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dma_table.h"

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

struct cover_all {
    struct dirty_log *log;
    int ret;                    /* the first failure */
};

static void
cover_region(const struct dma_ent *e, void *arg)
{
    struct cover_all *all = arg;

    if (all->ret == 0) {
        all->ret = dirty_cover(all->log, e->iova, e->size);
    }
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
        /* Already logging: again at the same page size is no change. */
        return dirty_page_size(t->log) == *page_size ||
               (*page_size < SERVER_DMA_PGSIZE &&
                dirty_page_size(t->log) == SERVER_DMA_PGSIZE) ? 0 : -EINVAL;
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
    if (t->log_all && ret == 0) {
        /* In address order: each range then goes at the end of the log. */
        struct cover_all all = { .log = t->log };
        dma_index_walk(&t->index, cover_region, &all);
        ret = all.ret;
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
        /* Without a mapping, the system page (as the original reports). */
        .page_size = r->page_size != 0 ? r->page_size
                                       : (size_t)sysconf(_SC_PAGESIZE),
        .prot = r->prot,
    };

    if (r->map_base != NULL) {
        info.mapping = (struct iovec){ .iov_base = r->map_base,
                                       .iov_len = r->map_len };
    }
    return info;
}

/* Largest block size a mapping is rounded out to: hugetlbfs has 1 GiB. */
#define MAX_MAP_BLKSIZE (1ull << 30)

void
dma_map_span(uint64_t offset, uint64_t size, uint64_t blksize,
             uint64_t file_size, uint64_t *start, uint64_t *len)
{
    uint64_t end = offset + size;   /* at most INT64_MAX: map_check() */
    uint64_t up = (end + (blksize - 1)) & ~(blksize - 1);

    *start = offset & ~(blksize - 1);
    /* Not past the end of the file, but never short of the region. */
    if (up > file_size && file_size >= end) {
        up = file_size;
    }
    *len = up - *start;
}

/*
 * Maps a region's part of @fd into @r: rounded out to the file's block
 * size (hugetlbfs maps only whole huge pages, from a huge page boundary),
 * for a regular file not past its end (mapping a hugetlbfs file past its
 * end would grow it); vaddr is the region's start inside the mapping.
 */
static int
map_file(vfu_ctx_t *ctx, int fd, uint64_t offset, uint64_t size,
         uint32_t prot, struct dma_region *r)
{
    uint64_t blksize = (uint64_t)sysconf(_SC_PAGESIZE), start, len;
    struct stat st;
    void *base;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (st.st_blksize > 0 && (uint64_t)st.st_blksize > blksize &&
        (uint64_t)st.st_blksize <= MAX_MAP_BLKSIZE &&
        ((uint64_t)st.st_blksize & ((uint64_t)st.st_blksize - 1)) == 0) {
        blksize = (uint64_t)st.st_blksize;
    }
    dma_map_span(offset, size, blksize,
                 S_ISREG(st.st_mode) ? (uint64_t)st.st_size : UINT64_MAX,
                 &start, &len);
    base = mmap(NULL, len, (int)prot, MAP_SHARED, fd, (off_t)start);
    if (base == MAP_FAILED) {
        int ret = -errno;
        vfu_log_err(ctx, "DMA_MAP: mmap of %#" PRIx64 " bytes at %#" PRIx64
                    " for [%#" PRIx64 ", +%#" PRIx64 ") failed: %s", len,
                    start, r->iova, size, strerror(-ret));
        return ret;
    }
    r->map_base = base;
    r->map_len = len;
    r->vaddr = (uint8_t *)base + (offset - start);
    r->page_size = blksize;
    return 0;
}

/*
 * Whether a file for file I/O allows the access the client grants: as
 * mmap() refuses write access to a read-only file, with EACCES.
 */
static int
file_io_check(int fd, const struct stat *st, uint32_t prot)
{
    int mode = fcntl(fd, F_GETFL);

    /* pread/pwrite at an offset: files and block devices, not streams. */
    if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
        return -EINVAL;
    }
    if (mode < 0) {
        return -errno;
    }
    mode &= O_ACCMODE;
    if (((prot & PROT_READ) && mode == O_WRONLY) ||
        ((prot & PROT_WRITE) && mode == O_RDONLY)) {
        return -EACCES;
    }
    return 0;
}

/* The rules of a new region, nothing changed; 0 or -errno. */
static int
map_check(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd,
          uint64_t offset, uint32_t prot, bool file_io)
{
    const struct dma_table *t = ctx->dma;

    if ((file_io && fd < 0) || size == 0 || prot == 0 ||
        (prot & ~(PROT_READ | PROT_WRITE)) ||
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
        /*
         * Memory past the end of a file would fault on access (SIGBUS), a
         * read there would find nothing.
         */
        if (S_ISREG(st.st_mode) && offset + size > (uint64_t)st.st_size) {
            return -EINVAL;
        }
        if (file_io) {
            int ret = file_io_check(fd, &st, prot);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (t != NULL) {
        if (dma_index_overlap(&t->index, iova, size)) {
            return -EEXIST;
        }
        if (t->index.nr >= t->max_regions) {
            return -EINVAL;     /* as the original: beyond max_regions */
        }
    }
    return 0;
}

/* A free slot (its index), or NO_SLOT without memory. */
static uint32_t
slot_alloc(struct dma_table *t)
{
    uint32_t s = t->free_head;
    uint32_t n = t->nr_slots / SLOT_CHUNK0 + 1;
    unsigned k = 31u - (unsigned)__builtin_clz(n);

    if (s != NO_SLOT) {
        t->free_head = dma_slot(t, s)->slot;
        return s;
    }
    /* The first slot of chunk k is SLOT_CHUNK0 * (2^k - 1). */
    if (t->nr_slots == SLOT_CHUNK0 * ((1u << k) - 1)) {
        if (k >= MAX_SLOT_CHUNKS) {
            return NO_SLOT;
        }
        t->chunks[k] = calloc(SLOT_CHUNK0 << k, sizeof(struct dma_region));
        if (t->chunks[k] == NULL) {
            return NO_SLOT;
        }
    }
    return t->nr_slots++;
}

static void
slot_free(struct dma_table *t, uint32_t s)
{
    struct dma_region *r = dma_slot(t, s);

    *r = (struct dma_region){ .fd = -1, .slot = t->free_head };
    t->free_head = s;
}

/*
 * Adds a region: with @fd mapped, or with @file_io a duplicate of @fd kept
 * for pread/pwrite, or without one reached by message. 0 or -errno.
 */
static int
add_region(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd,
           uint64_t offset, uint32_t prot, bool file_io)
{
    struct dma_table *t = table_get(ctx);
    struct dma_region reg = {
        .iova = iova, .size = size, .fd = -1, .offset = offset, .prot = prot,
    };
    struct dma_region *r;
    vfu_dma_info_t info;
    uint32_t slot;
    int ret;

    if (t == NULL) {
        return -ENOMEM;
    }
    ret = map_check(ctx, iova, size, fd, offset, prot, file_io);
    if (ret < 0) {
        return ret;
    }
    if (t->log != NULL && t->log_all) {
        ret = dirty_cover(t->log, iova, size);
        if (ret < 0) {
            return ret;
        }
    }
    if (file_io) {
        reg.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (reg.fd < 0) {
            return -errno;
        }
    } else if (fd >= 0) {
        ret = map_file(ctx, fd, offset, size, prot, &reg);
        if (ret < 0) {
            return ret;
        }
    }
    slot = slot_alloc(t);
    if (slot == NO_SLOT) {
        ret = -ENOMEM;
        goto fail;
    }
    reg.gen = t->next_gen++;
    reg.slot = slot;
    r = dma_slot(t, slot);
    *r = reg;
    ret = dma_index_add(&t->index, &(struct dma_ent){
        .iova = iova, .size = size, .gen = reg.gen, .slot = slot, .prot = prot,
    });
    if (ret < 0) {
        slot_free(t, slot);
        goto fail;
    }
    vfu_log_debug(ctx, "DMA map [%#" PRIx64 ", %#" PRIx64 ") prot %#x%s",
                  iova, iova + size, prot, r->vaddr ? " mapped" :
                                           file_io ? " file I/O" : "");

    if (t->register_cb != NULL) {
        info = region_info(r);
        t->register_cb(ctx, &info);
    }
    return 0;

fail:
    if (reg.map_base != NULL) {
        munmap(reg.map_base, reg.map_len);
    }
    if (reg.fd >= 0) {
        close(reg.fd);
    }
    return ret;
}

int
dma_map(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd, uint64_t offset,
        uint32_t prot)
{
    return add_region(ctx, iova, size, fd, offset, prot, false);
}

int
dma_map_file_io(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd,
                uint64_t offset, uint32_t prot)
{
    return add_region(ctx, iova, size, fd, offset, prot, true);
}

/*
 * Tells the device, then drops the region in @slot. The region stays
 * findable during the callback; the callback may change the table (it may
 * serve requests while waiting for DMA by message), so the region is found
 * again by slot and generation afterwards.
 */
static void
remove_region(vfu_ctx_t *ctx, uint32_t slot)
{
    struct dma_table *t = ctx->dma;
    uint64_t gen = dma_slot(t, slot)->gen;
    struct dma_region *r;

    if (t->unregister_cb != NULL) {
        vfu_dma_info_t info = region_info(dma_slot(t, slot));
        t->unregister_cb(ctx, &info);
    }
    r = dma_slot(t, slot);
    if (r->gen != gen) {
        return;                 /* removed meanwhile */
    }
    vfu_log_debug(ctx, "DMA unmap [%#" PRIx64 ", %#" PRIx64 ")", r->iova,
                  r->iova + r->size);
    (void)dma_index_remove(&t->index, r->iova);
    if (r->map_base != NULL && munmap(r->map_base, r->map_len) < 0) {
        vfu_log_warn(ctx, "munmap of DMA region failed: %m");
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    slot_free(t, slot);
}

/* The slot of the live region that is exactly [iova, iova + size). */
static uint32_t
find_exact(vfu_ctx_t *ctx, uint64_t iova, uint64_t size)
{
    struct dma_ent e;

    return dma_find(ctx->dma, iova, &e) && e.iova == iova && e.size == size ?
           e.slot : NO_SLOT;
}

int
dma_unmap(vfu_ctx_t *ctx, uint64_t iova, uint64_t size)
{
    uint32_t slot = find_exact(ctx, iova, size);

    if (slot == NO_SLOT) {
        return -ENOENT;
    }
    remove_region(ctx, slot);
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
    return ctx->dma == NULL ? 0 : ctx->dma->index.nr;
}

void
dma_remove_all(vfu_ctx_t *ctx)
{
    struct dma_table *t = ctx->dma;

    if (t == NULL) {
        return;
    }
    /* The last again each time: callbacks may change the table meanwhile. */
    for (struct dma_ent e; dma_index_last(&t->index, &e);) {
        remove_region(ctx, e.slot);
    }
}

void
dma_free(vfu_ctx_t *ctx)
{
    struct dma_table *t = ctx->dma;

    if (t == NULL) {
        return;
    }
    /* The device is going: no callbacks. */
    t->unregister_cb = NULL;
    dma_remove_all(ctx);
    dma_log_stop(ctx);
    dma_index_clear(&t->index);
    for (unsigned k = 0; k < MAX_SLOT_CHUNKS; k++) {
        free(t->chunks[k]);
    }
    free(t);
    ctx->dma = NULL;
}

/* ------------------------------------------------------------------ */
/* DMA_MAP, DMA_UNMAP                                                  */
/* ------------------------------------------------------------------ */

/*
 * The flags a DMA_MAP may carry. With an fd the region is mapped (MMAP
 * says so explicitly) or, with FILE_IO, reached with pread/pwrite on the
 * fd; both at once contradict each other, either without an fd means
 * nothing.
 */
#define MAP_FLAGS_KNOWN (VFIO_USER_F_DMA_REGION_READ | \
                         VFIO_USER_F_DMA_REGION_WRITE | \
                         VFIO_USER_F_DMA_REGION_MMAP | \
                         VFIO_USER_F_DMA_REGION_FILE_IO)
#define MAP_FLAGS_FD    (VFIO_USER_F_DMA_REGION_MMAP | \
                         VFIO_USER_F_DMA_REGION_FILE_IO)

int
handle_dma_map(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    struct vfio_user_dma_map m;
    uint32_t prot = 0;
    bool file_io;
    int fd, ret;

    (void)reply;
    if (msg->len != sizeof(m)) {
        vfu_log_err(ctx, "DMA_MAP: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&m, msg->payload, sizeof(m));
    fd = msg->nr_fds == 1 ? msg->fds[0] : -1;
    if (m.argsz < sizeof(m) || msg->nr_fds > 1 ||
        (m.flags & ~MAP_FLAGS_KNOWN) ||
        (m.flags & MAP_FLAGS_FD) == MAP_FLAGS_FD ||
        ((m.flags & MAP_FLAGS_FD) && fd < 0)) {
        vfu_log_err(ctx, "DMA_MAP: argsz %u, flags %#x, %zu fds", m.argsz,
                    m.flags, msg->nr_fds);
        return -EINVAL;
    }
    prot |= (m.flags & VFIO_USER_F_DMA_REGION_READ) ? PROT_READ : 0;
    prot |= (m.flags & VFIO_USER_F_DMA_REGION_WRITE) ? PROT_WRITE : 0;
    file_io = (m.flags & VFIO_USER_F_DMA_REGION_FILE_IO) != 0;
    if (table_get(ctx) == NULL) {
        return -ENOMEM;
    }
    ret = map_check(ctx, m.addr, m.size, fd, m.offset, prot, file_io);
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
    /* What is kept is a mapping or a duplicate: the dispatcher closes fd. */
    return add_region(ctx, m.addr, m.size, fd, m.offset, prot, file_io);
}

int
handle_dma_unmap(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    struct vfio_user_dma_unmap u;
    int ret;

    if (msg->len != sizeof(u)) {
        vfu_log_err(ctx, "DMA_UNMAP: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&u, msg->payload, sizeof(u));
    /* GET_DIRTY_BITMAP went with the old dirty page protocol. */
    /* argsz exactly the struct: there is no dirty bitmap to make room for. */
    if (u.argsz != sizeof(u) || (u.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) ||
        ((u.flags & VFIO_DMA_UNMAP_FLAG_ALL) ? (u.addr | u.size) != 0
                                             : u.size == 0)) {
        vfu_log_err(ctx, "DMA_UNMAP: argsz %u, flags %#x, [%#" PRIx64
                    ", +%#" PRIx64 ")", u.argsz, u.flags, u.addr, u.size);
        return -EINVAL;
    }
    if (!(u.flags & VFIO_DMA_UNMAP_FLAG_ALL)) {
        if (find_exact(ctx, u.addr, u.size) == NO_SLOT) {
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
