/*
 * Server-to-client requests: DMA_READ and DMA_WRITE messages for guest
 * memory the client registered without a file descriptor, behind
 * vfu_sgl_read() and vfu_sgl_write() (which also copy through a mapping,
 * or a file given for file I/O, when asked to), and what happens to the
 * client's own requests while the server waits for its reply
 * (docs/dma.md).
 *
 * On one socket the client's requests may arrive before the reply. A client
 * such as QEMU answers our DMA messages only from a thread that may itself be
 * blocked waiting for our reply to one of its requests, so the wait serves
 * them, in order, as vfu_run_ctx() would, and only then finds its reply.
 * Requests are set aside for vfu_run_ctx() instead when serving them now
 * would break their order or nest too deep: while a served request waits
 * for the device to quiesce, once anything has been set aside, or at
 * MAX_NEST_DEPTH. In twin-socket mode our requests and their replies use a
 * socket of their own; the main socket is served the same way meanwhile.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

/* How long we wait for the client to answer one DMA message. */
#define DMA_REPLY_TIMEOUT_MS 20000

/*
 * Most bytes one DMA_READ asks for. QEMU (11.1) sends each message with one
 * non-blocking write and takes a short write for a whole one, so a reply
 * longer than its socket accepts at once is cut and the stream is lost.
 * Linux takes up to about half the send buffer in one go (~104 KiB by
 * default), whatever max_data_xfer_size the client offered.
 */
#define DMA_READ_MAX        (64 * 1024)

/*
 * Keeps a copy of a client request to serve it from vfu_run_ctx() later.
 * A request that failed framing has no payload (tran.h): only its header
 * and flags are kept, and vfu_run_ctx() answers it with its error in turn.
 * Returns 0, or -ENOBUFS / -ENOMEM when it cannot be held.
 */
static int
set_aside(vfu_ctx_t *ctx, struct tran_msg *msg)
{
    size_t len = msg->malformed || msg->oversized ? 0 : msg->len;
    struct deferred_msg *d;

    if (ctx->nr_deferred >= MAX_DEFERRED_MSGS ||
        len > MAX_DEFERRED_BYTES - ctx->deferred_bytes) {
        return -ENOBUFS;
    }
    d = malloc(sizeof(*d) + len);
    if (d == NULL) {
        return -ENOMEM;
    }
    d->msg = *msg;
    d->msg.len = len;
    d->msg.payload = len > 0 ? d->data : NULL;
    if (len > 0) {
        memcpy(d->data, msg->payload, len);
    }
    d->next = NULL;
    msg->nr_fds = 0;                /* they travel with the copy */
    *ctx->deferred_tail = d;
    ctx->deferred_tail = &d->next;
    ctx->nr_deferred++;
    ctx->deferred_bytes += len;
    return 0;
}

/*
 * A request that can be neither served now nor held for later is answered
 * at once with @err (out of order: a client matches replies by id), or
 * dropped if it asked for no reply. Either way it is logged.
 */
static int
refuse_now(vfu_ctx_t *ctx, struct tran_msg *msg, int err)
{
    vfu_log_err(ctx, "msg%u: cannot set aside while waiting for DMA: %s",
                msg->hdr.msg_id, strerror(err));
    tran_msg_close_fds(msg);
    if (tran_hdr_no_reply(&msg->hdr)) {
        return 0;
    }
    return tran_send_error(ctx->out_fd, &msg->hdr, err) < 0 ? -ENOTCONN : 0;
}

/*
 * Serves a client request that arrived while we wait (dispatch_msg() lends
 * it a reply buffer of its own: the request below keeps its reply).
 */
static int
serve_nested(vfu_ctx_t *ctx, struct tran_msg *msg)
{
    int ret;

    if (ctx->quiesce_pending || ctx->nr_deferred > 0 ||
        ctx->nest_depth >= MAX_NEST_DEPTH) {
        ret = set_aside(ctx, msg);
        return ret < 0 ? refuse_now(ctx, msg, -ret) : 0;
    }
    ret = dispatch_msg(ctx, msg);
    return ret == -EBUSY ? 0 : ret;     /* a parked request is not a fault */
}

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

/*
 * A reply: finishes whichever of our waits it answers, the innermost or
 * one further out (the client may answer in any order); true if it did.
 */
static bool
take_any_reply(vfu_ctx_t *ctx, const struct tran_msg *msg)
{
    for (unsigned i = 0; i < ctx->nest_depth; i++) {
        struct dma_wait *w = ctx->waits[i];

        if (w->done || msg->hdr.msg_id != w->id || msg->hdr.cmd != w->cmd) {
            continue;
        }
        /* Ours, but without the bytes a reply needs: it failed. */
        w->result = msg->oversized ? -EMSGSIZE :
                    msg->malformed ? -EPROTO :
                    take_reply(ctx, msg, w->addr, w->dst, w->count,
                               w->cmd == VFIO_USER_DMA_WRITE);
        w->done = true;
        return true;
    }
    return false;
}

/*
 * Takes what is buffered in @rx until @w is done (1) or more must be
 * received (0), or -ENOTCONN. Replies finish their waits; client requests
 * are served (or set aside) as they come; replies to nothing are dropped.
 * @replies_here: our replies come on this socket; @requests_here: the
 * client's requests do.
 */
static int
take_incoming(vfu_ctx_t *ctx, struct tran_rx *rx, bool replies_here,
              bool requests_here, const struct dma_wait *w)
{
    struct tran_msg msg;

    while (!w->done && tran_rx_next(rx, &msg) == 1) {
        if (tran_hdr_type(&msg.hdr) == VFIO_USER_F_TYPE_REPLY) {
            tran_msg_close_fds(&msg);
            if (!replies_here || (!take_any_reply(ctx, &msg) &&
                                  !dma_msg_late_reply(ctx, &msg.hdr))) {
                vfu_log_warn(ctx, "dropped a stray reply (msg%u, cmd %u)",
                             msg.hdr.msg_id, msg.hdr.cmd);
            }
        } else if (!requests_here) {
            /* Only our requests' replies belong on the twin socket. */
            vfu_log_err(ctx, "unexpected message on the twin socket");
            tran_msg_close_fds(&msg);
        } else if (serve_nested(ctx, &msg) == -ENOTCONN) {
            return -ENOTCONN;
        }
    }
    return w->done ? 1 : 0;
}

/*
 * Waits until @w is answered, on the twin socket when there is one,
 * serving what the client sends on the main socket meanwhile (which may
 * answer @w from inside a nested wait). 0 with the reply handled, or
 * -errno.
 */
static int
wait_reply(vfu_ctx_t *ctx, const struct dma_wait *w)
{
    bool twin = ctx->twin_fd >= 0;
    int64_t deadline = vfu_now_ms() + DMA_REPLY_TIMEOUT_MS;
    struct pollfd p[2] = {
        { .fd = ctx->conn_fd, .events = POLLIN },
        { .fd = ctx->twin_fd, .events = POLLIN },
    };
    int ret;

    for (;;) {
        ret = take_incoming(ctx, &ctx->rx, !twin, true, w);
        if (ret == 0 && twin) {
            ret = take_incoming(ctx, &ctx->twin_rx, true, false, w);
        }
        if (ret != 0) {
            return ret < 0 ? ret : w->result;
        }

        int left = (int)(deadline - vfu_now_ms());
        if (left <= 0) {
            vfu_log_err(ctx, "no reply to DMA msg%u in %d ms", w->id,
                        DMA_REPLY_TIMEOUT_MS);
            return -ETIMEDOUT;
        }
        ret = poll(p, twin ? 2 : 1, left);
        if (ret < 0 && errno != EINTR) {
            return -errno;
        }
        for (int i = 0; ret > 0 && i < 2; i++) {
            if (p[i].revents != 0) {
                ssize_t n = tran_rx_fill(i == 0 ? &ctx->rx : &ctx->twin_rx,
                                         p[i].fd, ctx->exact_reads ?
                                         TRAN_RX_ONE_MSG : 0);
                if (n < 0 && n != -EAGAIN) {
                    return (int)n;
                }
            }
        }
    }
}

/* One DMA_READ or DMA_WRITE of at most the transfer limit; 0 or -errno. */
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
    ret = tran_send(sock, &hdr, iov, 2, NULL, 0);
    if (ret < 0) {
        return ret;
    }
    struct dma_wait w = { .id = id, .cmd = cmd, .addr = addr, .dst = buf,
                          .count = count };
    /*
     * A wait the device started outside any request (from its own loop)
     * must not take in what comes after its reply: the device would next
     * poll() the socket, which does not report what we hold. So it (and
     * any wait nested in it) reads no further than one message at a time.
     */
    bool outermost = ctx->nest_depth == 0 && ctx->handler_depth == 0;
    if (outermost) {
        ctx->exact_reads = true;
    }
    ctx->waits[ctx->nest_depth++] = &w;
    ret = wait_reply(ctx, &w);
    ctx->nest_depth--;
    if (outermost) {
        ctx->exact_reads = false;
    }
    if (!w.done) {
        /* Its reply may still come: it is to be dropped, not answered. */
        unsigned i = ctx->nr_abandoned++ % MAX_ABANDONED_DMA;
        ctx->abandoned[i].id = id;
        ctx->abandoned[i].cmd = cmd;
    }
    /* A big reply's buffer goes back (one a request being served keeps). */
    tran_rx_trim(&ctx->rx);
    if (ctx->twin_fd >= 0) {
        tran_rx_trim(&ctx->twin_rx);
    }
    return ret;
}

bool
dma_msg_late_reply(vfu_ctx_t *ctx, const struct vfio_user_header *hdr)
{
    unsigned n = ctx->nr_abandoned < MAX_ABANDONED_DMA ? ctx->nr_abandoned
                                                       : MAX_ABANDONED_DMA;

    for (unsigned i = 0; i < n; i++) {
        if (ctx->abandoned[i].id == hdr->msg_id &&
            ctx->abandoned[i].cmd == hdr->cmd) {
            ctx->abandoned[i].cmd = 0;  /* no command 0: matches nothing */
            return true;
        }
    }
    return false;
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
