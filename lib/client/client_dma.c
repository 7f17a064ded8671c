/*
 * The client library's DMA side: registering memory with the server
 * (DMA_MAP / DMA_UNMAP), answering the server's DMA_READ / DMA_WRITE from
 * that memory (client_dma_request(), the handler client.c plugs into the
 * connection layer), and dirty-page logging through DEVICE_FEATURE.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

/* --- Serving the server's DMA requests --- */

/* Index of the last region starting at or below @addr, or -1. */
static long
dma_floor(const struct vfu_client *c, uint64_t addr)
{
    long lo = 0, hi = (long)c->nr_dma - 1, found = -1;

    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (c->dma[mid].iova <= addr) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

/*
 * Finds our memory for [addr, addr + count) with access @flag, over
 * adjacent regions: up to @max pieces in @iov, their number in *n. 0, or
 * the errno of the refusal: ENODEV where nothing is registered, EPERM
 * without the access, EFAULT where we registered no mapping of our own.
 */
static int
dma_find(const struct vfu_client *c, uint64_t addr, uint64_t count,
         uint32_t flag, struct iovec *iov, size_t max, size_t *n)
{
    long i = dma_floor(c, addr);

    *n = 0;
    if (count - 1 > UINT64_MAX - addr) {
        return ENODEV;
    }
    while (count > 0) {
        const struct client_dma *d;
        uint64_t len;

        if (i < 0 || (size_t)i >= c->nr_dma || addr < c->dma[i].iova ||
            addr >= c->dma[i].end) {
            return ENODEV;
        }
        d = &c->dma[i];
        if (!(d->flags & flag)) {
            return EPERM;
        }
        if (d->vaddr == NULL) {
            return EFAULT;
        }
        len = d->end - addr < count ? d->end - addr : count;
        if (*n < max) {
            iov[*n].iov_base = d->vaddr + (addr - d->iova);
            iov[*n].iov_len = len;
        }
        (*n)++;
        addr += len;
        count -= len;
        i++;
    }
    return 0;
}

/*
 * Checks a DMA_READ / DMA_WRITE request (address, count, data at 16: see
 * vfio-user.h) and does its copy; 0 or the errno for the error reply.
 * A DMA_READ's pieces are left in @iov (*n of them; *bounce when they
 * were more than DMA_READ_IOV).
 */
static int
dma_request(struct vfu_client *c, const struct tran_msg *msg,
            struct vfio_user_dma_rw *rw, struct iovec *iov, size_t *n,
            uint8_t **bounce)
{
    bool is_write = msg->hdr.cmd == VFIO_USER_DMA_WRITE;
    uint32_t flag = is_write ? VFIO_USER_F_DMA_REGION_WRITE
                             : VFIO_USER_F_DMA_REGION_READ;
    struct iovec *pieces = iov;
    int err;

    if (msg->oversized) {
        return E2BIG;           /* more than we take; its bytes are gone */
    }
    if (msg->nr_fds > 0 || msg->fds_lost || msg->len < sizeof(*rw)) {
        return EINVAL;
    }
    memcpy(rw, msg->payload, sizeof(*rw));
    if (rw->count > c->max_xfer) {
        return E2BIG;
    }
    if (rw->count == 0 ||
        msg->len != sizeof(*rw) + (is_write ? rw->count : 0)) {
        return EINVAL;
    }
    err = dma_find(c, rw->addr, rw->count, flag, iov, DMA_READ_IOV, n);
    if (err != 0) {
        return err;
    }
    if (*n > DMA_READ_IOV) {
        /* Many small regions: go through a buffer of our own. */
        pieces = malloc(*n * sizeof(*pieces));
        *bounce = is_write ? NULL : malloc(rw->count);
        if (pieces == NULL || (!is_write && *bounce == NULL)) {
            free(pieces);
            return ENOMEM;
        }
        (void)dma_find(c, rw->addr, rw->count, flag, pieces, *n, n);
    }
    for (size_t i = 0, off = 0; i < *n; off += pieces[i].iov_len, i++) {
        if (is_write) {
            memcpy(pieces[i].iov_base, msg->payload + sizeof(*rw) + off,
                   pieces[i].iov_len);
        } else if (*bounce != NULL) {
            memcpy(*bounce + off, pieces[i].iov_base, pieces[i].iov_len);
        }
    }
    if (pieces != iov) {
        free(pieces);
    }
    return 0;
}

/*
 * Serves a DMA_READ or DMA_WRITE from the server and answers it, as QEMU
 * (11.1) does: a DMA_READ with address, count and the data, a DMA_WRITE
 * with address and count, a refusal with an error reply. Takes the
 * message's fds.
 */
static void
serve_dma(struct vfu_client *c, struct tran_msg *msg)
{
    struct vfio_user_dma_rw rw = { 0 };
    struct iovec iov[DMA_READ_IOV + 1], out[DMA_READ_IOV + 1];
    struct vfio_user_header hdr;
    uint8_t *bounce = NULL;
    size_t n = 0, nout = 0;
    int err;

    err = dma_request(c, msg, &rw, iov, &n, &bounce);
    tran_msg_close_fds(msg);
    c->dma_served++;
    if (tran_hdr_no_reply(&msg->hdr)) {
        free(bounce);
        return;
    }
    tran_hdr_init(&hdr, msg->hdr.msg_id, msg->hdr.cmd, VFIO_USER_F_TYPE_REPLY,
                  false);
    if (err != 0) {
        hdr.flags |= VFIO_USER_F_ERROR;
        hdr.error_no = (uint32_t)err;
    } else {
        out[nout++] = iov_of(&rw, sizeof(rw));
        if (msg->hdr.cmd == VFIO_USER_DMA_READ && bounce != NULL) {
            out[nout++] = iov_of(bounce, rw.count);
        } else if (msg->hdr.cmd == VFIO_USER_DMA_READ) {
            for (size_t i = 0; i < n; i++) {
                out[nout++] = iov[i];
            }
        }
    }
    (void)client_send(c, client_send_deadline(c), &hdr, out, nout, NULL, 0);
    free(bounce);
}

bool
client_dma_request(struct vfu_client *c, struct tran_msg *msg)
{
    if (msg->hdr.cmd != VFIO_USER_DMA_READ &&
        msg->hdr.cmd != VFIO_USER_DMA_WRITE) {
        return false;
    }
    serve_dma(c, msg);
    return true;
}

/* --- DMA --- */

VFU_EXPORT int
vfu_client_dma_map(vfu_client_t *c, uint64_t iova, uint64_t size, int fd,
                   uint64_t offset, void *vaddr, uint32_t flags)
{
    const uint32_t rw = VFIO_USER_F_DMA_REGION_READ |
                        VFIO_USER_F_DMA_REGION_WRITE;
    const uint32_t with_fd = VFIO_USER_F_DMA_REGION_MMAP |
                             VFIO_USER_F_DMA_REGION_FILE_IO;
    struct vfio_user_dma_map req = {
        .argsz = sizeof(req), .flags = flags, .offset = offset,
        .addr = iova, .size = size,
    };
    struct iovec iov = iov_of(&req, sizeof(req));
    struct tran_msg reply;
    uint16_t id;
    long i;
    int ret;

    if (c == NULL || fd < -1 || (fd < 0 && vaddr == NULL) ||
        (flags & ~(rw | with_fd)) || (fd < 0 && (flags & with_fd)) ||
        (flags & with_fd) == with_fd || size == 0 ||
        size - 1 > UINT64_MAX - iova) {
        return fail(-EINVAL);
    }
    /* The server refuses overlaps too; we must not take one either. */
    i = dma_floor(c, iova + (size - 1));
    if (i >= 0 && c->dma[i].end > iova) {
        return fail(-EEXIST);
    }
    if (c->nr_dma == c->cap_dma) {
        size_t cap = c->cap_dma == 0 ? 16 : c->cap_dma * 2;
        struct client_dma *d = realloc(c->dma, cap * sizeof(*d));
        if (d == NULL) {
            return fail(-ENOMEM);
        }
        c->dma = d;
        c->cap_dma = cap;
    }
    ret = send_cmd(c, VFIO_USER_DMA_MAP, false, &iov, 1, &fd, fd >= 0, &id);
    if (ret == 0) {
        ret = wait_reply(c, id, VFIO_USER_DMA_MAP, &reply);
    }
    if (ret < 0) {
        return fail(ret);
    }
    ret = reply.nr_fds > 0 || reply.len != 0 ? -EPROTO : 0;
    tran_msg_close_fds(&reply);
    if (ret < 0) {
        /* The server may have mapped it: we cannot know, so we do not. */
        return fail(ret);
    }
    i = dma_floor(c, iova) + 1;
    memmove(&c->dma[i + 1], &c->dma[i], (c->nr_dma - (size_t)i) * sizeof(*c->dma));
    c->dma[i] = (struct client_dma){ .iova = iova, .end = iova + size,
                                     .vaddr = vaddr, .flags = flags };
    c->nr_dma++;
    return 0;
}

VFU_EXPORT int
vfu_client_dma_unmap(vfu_client_t *c, uint64_t iova, uint64_t size,
                     uint32_t flags)
{
    struct vfio_user_dma_unmap req = {
        .argsz = sizeof(req), .flags = flags, .addr = iova, .size = size,
    };
    struct iovec iov = iov_of(&req, sizeof(req));
    struct vfio_user_dma_unmap echo;
    struct tran_msg reply;
    long i;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DMA_UNMAP, false, &iov, 1, sizeof(echo),
                        sizeof(echo), &reply);
    if (ret < 0) {
        return fail(ret);
    }
    memcpy(&echo, reply.payload, sizeof(echo));
    if (echo.addr != iova || echo.size != size || echo.flags != flags) {
        return fail(-EPROTO);
    }
    if (flags & VFIO_DMA_UNMAP_FLAG_ALL) {
        c->nr_dma = 0;
        return 0;
    }
    i = dma_floor(c, iova);
    if (i >= 0 && c->dma[i].iova == iova && c->dma[i].end - iova == size) {
        memmove(&c->dma[i], &c->dma[i + 1],
                (c->nr_dma - (size_t)i - 1) * sizeof(*c->dma));
        c->nr_dma--;
    }
    return 0;
}

/* --- Dirty page logging (DEVICE_FEATURE) --- */

typedef struct vfio_user_device_feature feature_t;

VFU_EXPORT int
vfu_client_dirty_start(vfu_client_t *c, uint64_t page_size,
                       const struct vfio_user_device_feature_dma_logging_range *ranges,
                       uint32_t nr)
{
    struct vfio_user_device_feature_dma_logging_control ctl = {
        .page_size = page_size, .num_ranges = nr,
    };
    size_t len = sizeof(feature_t) + sizeof(ctl) + (size_t)nr * sizeof(*ranges);
    feature_t f = {
        .argsz = (uint32_t)len,
        .flags = VFIO_DEVICE_FEATURE_DMA_LOGGING_START | VFIO_DEVICE_FEATURE_SET,
    };
    struct iovec iov[3] = {
        iov_of(&f, sizeof(f)), iov_of(&ctl, sizeof(ctl)),
        iov_of(ranges, (size_t)nr * sizeof(*ranges)),
    };
    struct tran_msg reply;
    int ret;

    if (c == NULL || (ranges == NULL && nr > 0) || len > UINT32_MAX) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DEVICE_FEATURE, false, iov, 3, len, len,
                        &reply);
    return ret < 0 ? fail(ret) : 0;
}

VFU_EXPORT int
vfu_client_dirty_stop(vfu_client_t *c)
{
    feature_t f = {
        .argsz = sizeof(f),
        .flags = VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | VFIO_DEVICE_FEATURE_SET,
    };
    struct iovec iov = iov_of(&f, sizeof(f));
    struct tran_msg reply;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DEVICE_FEATURE, false, &iov, 1, sizeof(f),
                        sizeof(f), &reply);
    return ret < 0 ? fail(ret) : 0;
}

VFU_EXPORT int
vfu_client_dirty_report(vfu_client_t *c, uint64_t iova, uint64_t length,
                        uint64_t page_size, uint64_t *bitmap)
{
    struct vfio_user_device_feature_dma_logging_report rep = {
        .iova = iova, .length = length, .page_size = page_size,
    };
    const size_t head = sizeof(feature_t) + sizeof(rep);
    feature_t f = {
        .flags = VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | VFIO_DEVICE_FEATURE_GET,
    };
    struct iovec iov[2] = { iov_of(&f, sizeof(f)), iov_of(&rep, sizeof(rep)) };
    struct tran_msg reply;
    uint64_t bytes;
    feature_t out;
    int ret;

    if (c == NULL || bitmap == NULL || length == 0 || page_size == 0 ||
        (page_size & (page_size - 1)) != 0) {
        return fail(-EINVAL);
    }
    bytes = ((length - 1) / page_size + 1 + 63) / 64 * 8;
    if (bytes > c->info.max_data_xfer_size || bytes > c->max_xfer) {
        return fail(-E2BIG);
    }
    f.argsz = (uint32_t)(head + bytes);
    ret = typed_request(c, VFIO_USER_DEVICE_FEATURE, false, iov, 2,
                        head + bytes, head + bytes, &reply);
    if (ret < 0) {
        return fail(ret);
    }
    memcpy(&out, reply.payload, sizeof(out));
    if (out.argsz != head + bytes) {
        return fail(-EPROTO);
    }
    memcpy(bitmap, reply.payload + head, bytes);
    return 0;
}
