/*
 * Server-to-client requests: DMA_READ and DMA_WRITE messages for guest
 * memory the client registered without a file descriptor, behind
 * vfu_sgl_read() and vfu_sgl_write() (which also copy through a mapping,
 * or a file given for file I/O, when asked to): the requests, their size
 * limits and the checks of their replies (docs/dma.md). While a reply is
 * awaited the client is served by the dispatcher (dispatch_await(), on
 * which this file is built).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

/* How long we wait for the client to answer one DMA message. */

/*
 * Most bytes one DMA_READ asks for. QEMU (11.1) sends each message with one
 * non-blocking write and takes a short write for a whole one, so a reply
 * longer than its socket accepts at once is cut and the stream is lost.
 * Linux takes up to about half the send buffer in one go (~104 KiB by
 * default), whatever max_data_xfer_size the client offered.
 */
#define DMA_READ_MAX        (64 * 1024)

/*
 * Checks the client's reply to our DMA request and takes a DMA_READ's data.
 * A DMA_WRITE's reply is a bare header, or echoes the address and count
 * (the spec's 12 bytes, or QEMU's 16).
 */
static int
take_reply(vfu_ctx_t *ctx, const struct tran_msg *msg, uint64_t addr,
           void *dst, uint32_t count, bool is_write)
{
    struct vfio_user_dma_rw rw;

    if (tran_hdr_error(&msg->hdr)) {
        /* None, or beyond any errno (negated it could overflow): EIO. */
        int err = msg->hdr.error_no != 0 && msg->hdr.error_no < 4096 ?
                  (int)msg->hdr.error_no : EIO;
        vfu_log_err(ctx, "DMA %s of %u bytes at %#" PRIx64 " refused: %s",
                    is_write ? "write" : "read", count, addr, strerror(err));
        return -err;
    }
    if (is_write) {
        uint32_t n;

        if (msg->len == 0) {
            return 0;
        }
        if (msg->len < sizeof(rw.addr) + sizeof(n)) {
            return -EPROTO;
        }
        memcpy(&rw.addr, msg->payload, sizeof(rw.addr));
        memcpy(&n, msg->payload + sizeof(rw.addr), sizeof(n));
        return rw.addr == addr && n == count ? 0 : -EPROTO;
    }
    if (msg->len != VFIO_USER_DMA_RW_MSG_SIZE(count) -
                    sizeof(struct vfio_user_header)) {
        return -EPROTO;
    }
    memcpy(&rw, msg->payload, sizeof(rw));
    if (rw.addr != addr || rw.count != count) {
        return -EPROTO;
    }
    memcpy(dst, msg->payload + sizeof(rw), count);
    return 0;
}

/* What a DMA request awaits: where its reply's data goes. */
struct dma_rw_wait {
    uint64_t addr;
    void *dst;                      /* a DMA_READ's data goes here */
    uint32_t count;
};

/* The dispatch_wait's take function of a DMA_READ / DMA_WRITE. */
static int
take_dma_reply(vfu_ctx_t *ctx, struct dispatch_wait *w,
               const struct tran_msg *msg)
{
    const struct dma_rw_wait *rw = w->arg;

    return take_reply(ctx, msg, rw->addr, rw->dst, rw->count,
                      w->cmd == VFIO_USER_DMA_WRITE);
}

/*
 * One DMA_READ or DMA_WRITE of at most the transfer limit, sent and its
 * reply awaited while the client is served (dispatch_await()); 0 or -errno.
 */
static int
dma_msg_chunk(vfu_ctx_t *ctx, uint64_t addr, void *buf, uint32_t count,
              bool is_write)
{
    int sock = ctx->twin_fd >= 0 ? ctx->twin_fd : ctx->out_fd;
    uint16_t cmd = is_write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;
    struct vfio_user_dma_rw rw = { .addr = addr, .count = count };
    struct vfio_user_header hdr;
    struct iovec iov[2];
    uint16_t id = ctx->next_msg_id++;
    int ret;

    iov[0] = (struct iovec){ &rw, sizeof(rw) };
    iov[1] = (struct iovec){ is_write ? buf : NULL, is_write ? count : 0 };
    tran_hdr_init(&hdr, id, cmd, VFIO_USER_F_TYPE_COMMAND, false);
    ret = tran_send(sock, server_send_deadline(), &hdr, iov, 2, NULL, 0);
    if (ret < 0) {
        /* Part of it may have gone: the stream is of no use any more. */
        return -ENOTCONN;
    }
    struct dma_rw_wait dw = { .addr = addr, .dst = buf, .count = count };
    struct dispatch_wait w = { .id = id, .cmd = cmd, .take = take_dma_reply,
                               .arg = &dw };
    return dispatch_await(ctx, &w, SERVER_PEER_TIMEOUT_MS);
}

/*
 * Reads or writes @len bytes of client memory at @addr by message, split
 * at the smaller of the client's and our transfer limits, reads also at
 * DMA_READ_MAX. Each piece is checked against the DMA map first: a request
 * served while we waited may have unmapped it.
 */
static int
dma_msg_transfer(vfu_ctx_t *ctx, uint64_t addr, uint8_t *buf, size_t len,
                 bool is_write)
{
    uint64_t limit = ctx->client_caps.max_data_xfer_size;

    if (limit > SERVER_MAX_DATA_XFER) {
        limit = SERVER_MAX_DATA_XFER;
    }
    if (!is_write && limit > DMA_READ_MAX) {
        limit = DMA_READ_MAX;
    }
    while (len > 0) {
        uint32_t n = (uint32_t)(len < limit ? len : limit);
        int ret;

        if (ctx->conn_fd < 0 || !ctx->negotiated || ctx->conn_broken) {
            return -ENOTCONN;
        }
        ret = dma_range_check(ctx, addr, n, is_write);
        if (ret == 0) {
            ret = dma_msg_chunk(ctx, addr, buf, n, is_write);
        }
        if (ret == -ENOTCONN || ret == -EPIPE) {
            ctx->conn_broken = true;    /* vfu_run_ctx() disconnects */
            return -ENOTCONN;
        }
        if (ret < 0) {
            return ret;
        }
        addr += n;
        buf += n;
        len -= n;
    }
    return 0;
}


static const dma_sg_t *
sg_at(const dma_sg_t *sgl, size_t i)
{
    return (const dma_sg_t *)((const char *)sgl + i * dma_sg_size());
}

/*
 * @len bytes at @off of a region's file, for a region the client gave for
 * file I/O: short transfers go on, interrupted ones are retried. A file
 * that ends early (the client truncated it) fails with EFAULT, as its
 * memory would be missing.
 */
static int
file_rw(int fd, uint8_t *buf, size_t len, uint64_t off, bool is_write)
{
    while (len > 0) {
        ssize_t n = is_write ? pwrite(fd, buf, len, (off_t)off)
                             : pread(fd, buf, len, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return -EFAULT;
        }
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/*
 * Copies each entry by its own way: with VFU_SGL_DIRECT_ACCESS through
 * our mapping or, for a file I/O region, its file; otherwise (and always
 * for a region without an fd) by message.
 */
static int
sgl_access(vfu_ctx_t *ctx, dma_sg_t *sgl, size_t cnt, void *data, int flags,
           bool is_write)
{
    bool direct = (flags & VFU_SGL_DIRECT_ACCESS) != 0;
    uint8_t *p = data;

    if (ctx == NULL || (cnt > 0 && (sgl == NULL || data == NULL)) ||
        (flags & ~VFU_SGL_DIRECT_ACCESS)) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        struct dma_sg_where w;
        int ret = dma_sg_lookup(ctx, sg_at(sgl, i), is_write, &w);

        if (ret == 0 && direct && w.vaddr != NULL) {
            if (is_write) {
                memcpy(w.vaddr, p, w.len);
            } else {
                memcpy(p, w.vaddr, w.len);
            }
        } else if (ret == 0 && direct && w.fd >= 0) {
            ret = file_rw(w.fd, p, w.len, w.file_offset, is_write);
        } else if (ret == 0) {
            ret = dma_msg_transfer(ctx, w.iova, p, w.len, is_write);
        }
        if (ret < 0) {
            errno = -ret;
            return -1;
        }
        if (is_write) {
            dma_mark_dirty(ctx, w.iova, w.len);
        }
        p += w.len;
    }
    return 0;
}

/* In parentheses: the header also defines macros of these names. */
VFU_EXPORT int
(vfu_sgl_read)(vfu_ctx_t *ctx, dma_sg_t *sgl, size_t cnt, void *data,
               int flags)
{
    return sgl_access(ctx, sgl, cnt, data, flags, false);
}

VFU_EXPORT int
(vfu_sgl_write)(vfu_ctx_t *ctx, dma_sg_t *sgl, size_t cnt, void *data,
                int flags)
{
    return sgl_access(ctx, sgl, cnt, data, flags, true);
}
