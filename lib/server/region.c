/*
 * Device regions: their set-up (vfu_setup_region), GET_REGION_INFO with the
 * sparse-mmap capability and the region's fd, and region accesses that
 * arrive as messages (REGION_READ, REGION_WRITE, REGION_WRITE_MULTI). Config
 * space accesses go through the access path (pci_access.c), then to the
 * reset orchestrator (reset.c) when a write asks for a reset.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private.h"

#define MAX_MMAP_AREAS 64

static bool
is_bar(int idx)
{
    return idx >= VFU_PCI_DEV_BAR0_REGION_IDX && idx <= VFU_PCI_DEV_BAR5_REGION_IDX;
}

static int
check_mmap_areas(const struct iovec *areas, uint32_t nr, size_t size)
{
    long pgsize = sysconf(_SC_PAGESIZE);

    if (nr > MAX_MMAP_AREAS) {
        return -EINVAL;
    }
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t start = (uintptr_t)areas[i].iov_base;
        uint64_t len = areas[i].iov_len;

        if (len == 0 || start % (uint64_t)pgsize != 0 ||
            start > size || len > size - start) {
            return -EINVAL;
        }
        for (uint32_t j = 0; j < i; j++) {
            uint64_t s2 = (uintptr_t)areas[j].iov_base;
            if (start < s2 + areas[j].iov_len && s2 < start + len) {
                return -EINVAL;     /* overlapping areas */
            }
        }
    }
    return 0;
}

/* Argument rules of vfu_setup_region(); 0 or -errno. */
static int
check_region_args(vfu_ctx_t *ctx, int idx, size_t size,
                  vfu_region_access_cb_t *cb, int flags,
                  const struct iovec *areas, uint32_t nr_areas, int fd,
                  uint64_t offset)
{
    struct stat st;
    int ret;

    if (idx < 0 || idx >= VFU_PCI_DEV_NUM_REGIONS ||
        (flags & ~VFU_REGION_FLAG_MASK) || fd < -1 ||
        (areas == NULL) != (nr_areas == 0)) {
        return -EINVAL;
    }
    if (size == 0 && idx != VFU_PCI_DEV_CFG_REGION_IDX) {
        return 0;               /* clears the region: nothing else counts */
    }
    if (!(flags & VFU_REGION_FLAG_RW)) {
        return -EINVAL;         /* neither readable nor writable */
    }
    if (idx == VFU_PCI_DEV_CFG_REGION_IDX) {
        /* Config space is emulated here and never mapped by the client. */
        if (fd != -1 || areas != NULL ||
            (flags & (VFU_REGION_FLAG_MEM | VFU_REGION_FLAG_64_BITS |
                      VFU_REGION_FLAG_PREFETCH)) ||
            ((flags & VFU_REGION_FLAG_ALWAYS_CB) && cb == NULL)) {
            return -EINVAL;
        }
        return 0;
    }
    /* A BAR decodes a power of two (so does the ROM BAR). */
    if ((is_bar(idx) || idx == VFU_PCI_DEV_ROM_REGION_IDX) &&
        (size & (size - 1)) != 0) {
        return -EINVAL;
    }
    if (flags & VFU_REGION_FLAG_ALWAYS_CB) {
        return -EINVAL;
    }
    if ((flags & (VFU_REGION_FLAG_64_BITS | VFU_REGION_FLAG_PREFETCH)) &&
        (!is_bar(idx) || !(flags & VFU_REGION_FLAG_MEM))) {
        return -EINVAL;
    }
    if (flags & VFU_REGION_FLAG_64_BITS) {
        if (idx == VFU_PCI_DEV_BAR5_REGION_IDX || ctx->regions[idx + 1].size) {
            return -EINVAL;     /* the upper half needs the next slot free */
        }
    }
    if (is_bar(idx) && idx > VFU_PCI_DEV_BAR0_REGION_IDX &&
        (ctx->regions[idx - 1].flags & VFU_REGION_FLAG_64_BITS) &&
        ctx->regions[idx - 1].size) {
        return -EINVAL;         /* taken by the 64-bit BAR below */
    }
    if (idx == VFU_PCI_DEV_ROM_REGION_IDX && (flags & VFU_REGION_FLAG_WRITE)) {
        return -EINVAL;
    }
    if (fd == -1) {
        return areas != NULL ? -EINVAL : 0;
    }
    if (offset % (uint64_t)sysconf(_SC_PAGESIZE) != 0) {
        return -EINVAL;
    }
    if (fstat(fd, &st) < 0) {
        return -EBADF;
    }
    ret = check_mmap_areas(areas, nr_areas, size);
    if (ret < 0 || !S_ISREG(st.st_mode)) {
        return ret;
    }
    /*
     * What the client may map must lie in the file (past its end a mapping
     * faults): the mmap areas, or the whole region when none are given. The
     * rest of a larger region is reached through the callback (SPDK's BAR0
     * is 16 KiB with only its doorbell page in an 8 KiB file).
     */
    for (uint32_t i = 0; i < (nr_areas > 0 ? nr_areas : 1); i++) {
        uint64_t end = nr_areas > 0 ? (uintptr_t)areas[i].iov_base +
                                      areas[i].iov_len : size;
        if (offset > (uint64_t)st.st_size ||
            end > (uint64_t)st.st_size - offset) {
            return -EINVAL;
        }
    }
    return 0;
}

/* Size 0: the region goes, and its BAR (both halves of a 64-bit one) reads 0. */
static void
clear_region(vfu_ctx_t *ctx, int idx)
{
    struct vfu_region *r = &ctx->regions[idx];
    bool mem64 = (r->flags & VFU_REGION_FLAG_64_BITS) != 0;

    free(r->mmap_areas);
    *r = (struct vfu_region){ .fd = -1 };
    if (idx <= VFU_PCI_DEV_ROM_REGION_IDX) {
        pci_region_changed(ctx, idx);
        if (mem64) {
            pci_region_changed(ctx, idx + 1);
        }
    }
}

VFU_EXPORT int
vfu_setup_region(vfu_ctx_t *ctx, int idx, size_t size,
                 vfu_region_access_cb_t *cb, int flags,
                 struct iovec *mmap_areas, uint32_t nr_mmap_areas, int fd,
                 uint64_t offset)
{
    struct iovec *areas = NULL;
    struct vfu_region *r;
    int ret;

    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    ret = check_region_args(ctx, idx, size, cb, flags, mmap_areas,
                            nr_mmap_areas, fd, offset);
    if (ret < 0) {
        vfu_log_err(ctx, "region %d: invalid set-up: %s", idx, strerror(-ret));
        errno = -ret;
        return -1;
    }
    if (nr_mmap_areas > 0) {
        areas = malloc(nr_mmap_areas * sizeof(*areas));
        if (areas == NULL) {
            return -1;
        }
        memcpy(areas, mmap_areas, nr_mmap_areas * sizeof(*areas));
    }

    r = &ctx->regions[idx];
    if (size == 0 && idx != VFU_PCI_DEV_CFG_REGION_IDX) {
        clear_region(ctx, idx);
        return 0;
    }
    free(r->mmap_areas);
    r->cb = cb;
    r->flags = flags;
    r->fd = fd;
    r->fd_offset = offset;
    r->mmap_areas = areas;
    r->nr_mmap_areas = nr_mmap_areas;
    r->size = idx == VFU_PCI_DEV_CFG_REGION_IDX ? ctx->pci.cfg_size : size;
    if (idx <= VFU_PCI_DEV_ROM_REGION_IDX) {
        pci_region_changed(ctx, idx);
        if (flags & VFU_REGION_FLAG_64_BITS) {
            pci_region_changed(ctx, idx + 1);
        }
    }
    return 0;
}

void
regions_free(vfu_ctx_t *ctx)
{
    for (int i = 0; i < VFU_PCI_DEV_NUM_REGIONS; i++) {
        free(ctx->regions[i].mmap_areas);
        ctx->regions[i].mmap_areas = NULL;
    }
}

int
handle_region_info(vfu_ctx_t *ctx, struct tran_msg *msg,
                   struct vfu_reply *reply)
{
    struct vfio_region_info in;
    struct vfio_region_info *out = (void *)ctx->reply_buf;
    struct vfio_region_info_cap_sparse_mmap *sparse = (void *)(out + 1);
    const struct vfu_region *r;
    size_t caps_size = 0;

    if (msg->len < sizeof(in)) {
        vfu_log_err(ctx, "GET_REGION_INFO: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&in, msg->payload, sizeof(in));
    if (in.argsz < sizeof(in) || in.index >= VFU_PCI_DEV_NUM_REGIONS) {
        vfu_log_err(ctx, "GET_REGION_INFO: argsz %u, index %u", in.argsz,
                    in.index);
        return -EINVAL;
    }
    r = &ctx->regions[in.index];

    memset(out, 0, sizeof(*out));
    out->index = in.index;
    out->size = r->size;
    if (r->size > 0) {
        out->flags |= (r->flags & VFU_REGION_FLAG_READ) ? VFIO_REGION_INFO_FLAG_READ : 0;
        out->flags |= (r->flags & VFU_REGION_FLAG_WRITE) ? VFIO_REGION_INFO_FLAG_WRITE : 0;
    }
    if (r->size > 0 && r->fd >= 0) {
        out->flags |= VFIO_REGION_INFO_FLAG_MMAP;
        out->offset = r->fd_offset;
    }
    if (r->fd >= 0 && r->nr_mmap_areas > 0) {
        caps_size = sizeof(*sparse) + r->nr_mmap_areas * sizeof(sparse->areas[0]);
        out->flags |= VFIO_REGION_INFO_FLAG_CAPS;
    }
    out->argsz = (uint32_t)(sizeof(*out) + caps_size);

    if (in.argsz < out->argsz) {
        /* Tell the client how much room it needs; it will ask again. */
        reply_add(reply, out, sizeof(*out));
        return 0;
    }
    if (caps_size > 0) {
        out->cap_offset = sizeof(*out);
        memset(sparse, 0, caps_size);
        sparse->header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
        sparse->header.version = 1;
        sparse->nr_areas = r->nr_mmap_areas;
        for (uint32_t i = 0; i < r->nr_mmap_areas; i++) {
            sparse->areas[i].offset = (uintptr_t)r->mmap_areas[i].iov_base;
            sparse->areas[i].size = r->mmap_areas[i].iov_len;
        }
    }
    reply_add(reply, out, out->argsz);
    if (out->flags & VFIO_REGION_INFO_FLAG_MMAP) {
        reply->fds[reply->nr_fds++] = r->fd;
    }
    return 0;
}

/* Whether @count bytes at @offset of region @idx may be accessed; 0 or -errno. */
static int
check_access(vfu_ctx_t *ctx, uint32_t idx, uint64_t offset, uint64_t count,
             bool is_write)
{
    const struct vfu_region *r;

    if (idx >= VFU_PCI_DEV_NUM_REGIONS || ctx->regions[idx].size == 0) {
        vfu_log_err(ctx, "access to unknown region %u", idx);
        return -EINVAL;
    }
    r = &ctx->regions[idx];
    if (offset > r->size || count > r->size - offset) {
        vfu_log_err(ctx, "region %u: access %#" PRIx64 "+%" PRIu64
                    " outside its %zu bytes", idx, offset, count, r->size);
        return -EINVAL;
    }
    if (!(r->flags & (is_write ? VFU_REGION_FLAG_WRITE : VFU_REGION_FLAG_READ))) {
        vfu_log_err(ctx, "region %u: not %s", idx,
                    is_write ? "writable" : "readable");
        return -EACCES;
    }
    return 0;
}

ssize_t
region_config_access(vfu_ctx_t *ctx, char *buf, size_t count,
                     uint64_t offset, bool is_write)
{
    struct caps_pending asks;
    ssize_t ret = pci_config_access(ctx, buf, count, offset, is_write, &asks);

    if (ret >= 0 && (asks.flr || asks.soft_reset)) {
        int err = reset_function(ctx, &asks);
        if (err < 0) {
            return err;
        }
    }
    return ret;
}

/* Performs a checked access; 0 or -errno. */
static int
region_access(vfu_ctx_t *ctx, uint32_t idx, char *buf, size_t count,
              uint64_t offset, bool is_write)
{
    const struct vfu_region *r = &ctx->regions[idx];
    ssize_t ret;

    if (count == 0) {
        return 0;       /* nothing to move; the device is not asked */
    }
    if (idx == VFU_PCI_DEV_CFG_REGION_IDX) {
        ret = region_config_access(ctx, buf, count, offset, is_write);
        return ret < 0 ? (int)ret : 0;
    }
    errno = 0;
    if (r->cb != NULL) {
        ret = r->cb(ctx, buf, count, (loff_t)offset, is_write);
    } else if (r->fd >= 0) {
        /* Mappable memory without a callback: reach it through its fd. */
        off_t at = (off_t)(r->fd_offset + offset);
        ret = is_write ? pwrite(r->fd, buf, count, at) : pread(r->fd, buf, count, at);
    } else {
        vfu_log_err(ctx, "region %u has no access callback", idx);
        return -EINVAL;
    }
    if (ret < 0) {
        return errno != 0 ? -errno : -EIO;
    }
    if ((size_t)ret != count) {
        vfu_log_err(ctx, "region %u: short %s (%zd of %zu bytes)", idx,
                    is_write ? "write" : "read", ret, count);
        return -EIO;
    }
    return 0;
}

int
handle_region_read(vfu_ctx_t *ctx, struct tran_msg *msg,
                   struct vfu_reply *reply)
{
    struct vfio_user_region_access *out = (void *)ctx->reply_buf;
    struct vfio_user_region_access in;
    int ret;

    if (msg->len != sizeof(in)) {
        vfu_log_err(ctx, "REGION_READ: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&in, msg->payload, sizeof(in));
    if (in.count > SERVER_MAX_DATA_XFER) {
        vfu_log_err(ctx, "REGION_READ: %u bytes exceed the transfer limit",
                    in.count);
        return -EINVAL;
    }
    ret = check_access(ctx, in.region, in.offset, in.count, false);
    if (ret == 0) {
        ret = region_access(ctx, in.region, (char *)out->data, in.count,
                            in.offset, false);
    }
    if (ret < 0) {
        return ret;
    }
    *out = in;
    reply_add(reply, out, sizeof(*out) + in.count);
    return 0;
}

int
handle_region_write(vfu_ctx_t *ctx, struct tran_msg *msg,
                    struct vfu_reply *reply)
{
    struct vfio_user_region_access *out = (void *)ctx->reply_buf;
    struct vfio_user_region_access in;
    int ret;

    if (msg->len < sizeof(in)) {
        vfu_log_err(ctx, "REGION_WRITE: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&in, msg->payload, sizeof(in));
    if (in.count != msg->len - sizeof(in)) {
        vfu_log_err(ctx, "REGION_WRITE: count %u but %zu data bytes",
                    in.count, msg->len - sizeof(in));
        return -EINVAL;
    }
    if (in.count > SERVER_MAX_DATA_XFER) {
        /* It fits the receive buffer's slack, but we announced the limit. */
        vfu_log_err(ctx, "REGION_WRITE: %u bytes exceed the transfer limit",
                    in.count);
        return -EINVAL;
    }
    ret = check_access(ctx, in.region, in.offset, in.count, true);
    if (ret == 0) {
        ret = region_access(ctx, in.region, (char *)msg->payload + sizeof(in),
                            in.count, in.offset, true);
    }
    if (ret < 0) {
        return ret;
    }
    *out = in;
    reply_add(reply, out, sizeof(*out));
    return 0;
}

int
handle_region_write_multi(vfu_ctx_t *ctx, struct tran_msg *msg,
                          struct vfu_reply *reply)
{
    const size_t entry = sizeof(struct vfio_user_write_multi_data);
    struct vfio_user_write_multi *out = (void *)ctx->reply_buf;
    uint64_t wr_cnt;
    int ret;

    if (msg->len < sizeof(wr_cnt)) {
        vfu_log_err(ctx, "REGION_WRITE_MULTI: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&wr_cnt, msg->payload, sizeof(wr_cnt));
    if (wr_cnt == 0 || wr_cnt > VFIO_USER_MULTI_MAX ||
        msg->len != sizeof(wr_cnt) + wr_cnt * entry) {
        vfu_log_err(ctx, "REGION_WRITE_MULTI: %" PRIu64 " writes in %zu bytes",
                    wr_cnt, msg->len);
        return -EINVAL;
    }

    /* Check every write before doing any, so a bad one changes nothing. */
    for (uint64_t i = 0; i < wr_cnt; i++) {
        struct vfio_user_write_multi_data wr;
        memcpy(&wr, msg->payload + sizeof(wr_cnt) + i * entry, entry);
        if (wr.count > VFIO_USER_MULTI_DATA) {
            vfu_log_err(ctx, "REGION_WRITE_MULTI: write %" PRIu64 " of %u bytes",
                        i, wr.count);
            return -EINVAL;
        }
        ret = check_access(ctx, wr.region, wr.offset, wr.count, true);
        if (ret == 0 && wr.region == VFU_PCI_DEV_CFG_REGION_IDX) {
            ret = pci_config_check_write(ctx, (const char *)wr.data, wr.count,
                                         wr.offset);
        }
        if (ret < 0) {
            return ret;
        }
    }
    for (uint64_t i = 0; i < wr_cnt; i++) {
        struct vfio_user_write_multi_data wr;
        memcpy(&wr, msg->payload + sizeof(wr_cnt) + i * entry, entry);
        ret = region_access(ctx, wr.region, (char *)wr.data, wr.count,
                            wr.offset, true);
        if (ret < 0) {
            return ret;
        }
    }
    out->wr_cnt = wr_cnt;
    reply_add(reply, out, sizeof(*out));
    return 0;
}
