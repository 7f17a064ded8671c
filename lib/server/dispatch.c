/*
 * The request loop: takes whole messages from the socket in order, rejects
 * what is not a well-formed command, calls the command's handler and sends
 * its reply (header, payload and fds in one sendmsg). Commands flagged
 * NO_REPLY never get a reply, not even an error. Also owns the requests
 * waiting for the device to quiesce, and dispatch_await(): serving the
 * client until the reply to one of our own requests arrives (the requests
 * set aside meanwhile, the nested reply buffers, the replies given up on).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

typedef int (handler_fn)(vfu_ctx_t *ctx, struct tran_msg *msg,
                         struct vfu_reply *reply);

static handler_fn *const handlers[VFIO_USER_MAX] = {
    [VFIO_USER_DMA_MAP]                 = handle_dma_map,
    [VFIO_USER_DMA_UNMAP]               = handle_dma_unmap,
    [VFIO_USER_DEVICE_GET_INFO]         = handle_device_get_info,
    [VFIO_USER_DEVICE_GET_REGION_INFO]  = handle_region_info,
    [VFIO_USER_DEVICE_GET_REGION_IO_FDS] = handle_region_io_fds,
    [VFIO_USER_DEVICE_GET_IRQ_INFO]     = handle_irq_info,
    [VFIO_USER_DEVICE_SET_IRQS]         = handle_set_irqs,
    [VFIO_USER_REGION_READ]             = handle_region_read,
    [VFIO_USER_REGION_WRITE]            = handle_region_write,
    [VFIO_USER_DEVICE_RESET]            = handle_device_reset,
    [VFIO_USER_REGION_WRITE_MULTI]      = handle_region_write_multi,
    [VFIO_USER_DEVICE_FEATURE]          = handle_device_feature,
    [VFIO_USER_MIG_DATA_READ]           = handle_mig_data_read,
    [VFIO_USER_MIG_DATA_WRITE]          = handle_mig_data_write,
};

/* For the debug log: -v on a sample shows every request by name. */
static const char *const cmd_names[VFIO_USER_MAX] = {
    [VFIO_USER_DMA_MAP]                 = "DMA_MAP",
    [VFIO_USER_DMA_UNMAP]               = "DMA_UNMAP",
    [VFIO_USER_DEVICE_GET_INFO]         = "DEVICE_GET_INFO",
    [VFIO_USER_DEVICE_GET_REGION_INFO]  = "DEVICE_GET_REGION_INFO",
    [VFIO_USER_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
    [VFIO_USER_DEVICE_GET_IRQ_INFO]     = "DEVICE_GET_IRQ_INFO",
    [VFIO_USER_DEVICE_SET_IRQS]         = "DEVICE_SET_IRQS",
    [VFIO_USER_REGION_READ]             = "REGION_READ",
    [VFIO_USER_REGION_WRITE]            = "REGION_WRITE",
    [VFIO_USER_DEVICE_RESET]            = "DEVICE_RESET",
    [VFIO_USER_REGION_WRITE_MULTI]      = "REGION_WRITE_MULTI",
    [VFIO_USER_DEVICE_FEATURE]          = "DEVICE_FEATURE",
    [VFIO_USER_MIG_DATA_READ]           = "MIG_DATA_READ",
    [VFIO_USER_MIG_DATA_WRITE]          = "MIG_DATA_WRITE",
    /* Ours, to the client. */
    [VFIO_USER_DMA_READ]                = "DMA_READ",
    [VFIO_USER_DMA_WRITE]               = "DMA_WRITE",
};

static const char *
cmd_name(uint16_t cmd)
{
    return cmd < VFIO_USER_MAX && cmd_names[cmd] != NULL ? cmd_names[cmd]
                                                         : "?";
}

/*
 * Whether @hdr is the late reply to a request whose wait ended without it
 * (dispatch_await()); if so it is forgotten, and the caller drops it.
 */
static bool
late_reply(vfu_ctx_t *ctx, const struct vfio_user_header *hdr)
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

/* Framing and header checks common to every command; 0 or -errno. */
static int
check_header(vfu_ctx_t *ctx, const struct tran_msg *msg)
{
    const struct vfio_user_header *hdr = &msg->hdr;

    if (msg->malformed) {
        vfu_log_err(ctx, "msg%u: size %u is smaller than a header",
                    hdr->msg_id, hdr->msg_size);
        return -EINVAL;
    }
    if (msg->oversized) {
        /* The limit is the largest request (or what the buffer holds). */
        vfu_log_err(ctx, "msg%u: size %u exceeds the %zu-byte limit",
                    hdr->msg_id, hdr->msg_size, ctx->rx.max_msg);
        return -EINVAL;
    }
    if (msg->fds_lost || msg->nr_fds > SERVER_MAX_MSG_FDS) {
        vfu_log_err(ctx, "msg%u: more fds than %u", hdr->msg_id,
                    SERVER_MAX_MSG_FDS);
        return -EINVAL;
    }
    if (tran_hdr_type(hdr) != VFIO_USER_F_TYPE_COMMAND) {
        vfu_log_err(ctx, "msg%u: type %u where a command belongs",
                    hdr->msg_id, tran_hdr_type(hdr));
        return -EINVAL;
    }
    if (hdr->flags & (VFIO_USER_F_ERROR | TRAN_HDR_RESERVED_FLAGS)) {
        vfu_log_err(ctx, "msg%u: flags %#x set in a command", hdr->msg_id,
                    hdr->flags & (VFIO_USER_F_ERROR | TRAN_HDR_RESERVED_FLAGS));
        return -EINVAL;
    }
    if (hdr->cmd == VFIO_USER_VERSION) {
        vfu_log_err(ctx, "msg%u: VERSION after negotiation", hdr->msg_id);
        return -EINVAL;
    }
    if (hdr->cmd >= VFIO_USER_MAX || handlers[hdr->cmd] == NULL) {
        vfu_log_err(ctx, "msg%u: command %u not supported", hdr->msg_id,
                    hdr->cmd);
        return -ENOSYS;
    }
    return 0;
}

/*
 * Reply buffers, lent to each request for its time: a process serving many
 * contexts needs one per request being served at once, not one per
 * context.
 */
static struct tran_pool reply_pool =
    TRAN_POOL_INIT(REPLY_BUF_OFFSET + REPLY_BUF_SIZE);

/* Gives the request's reply buffer back; the outer request's is current. */
static void
reply_buf_return(vfu_ctx_t *ctx, uint8_t *outer, void *mem)
{
    ctx->reply_buf = outer;
    tran_pool_put(&reply_pool, mem);
}

/* Keeps a request that waits for the device to quiesce, with its fds. */
static int
park_pending(vfu_ctx_t *ctx, struct tran_msg *msg)
{
    uint8_t *data = NULL;

    if (msg->len > 0) {
        data = malloc(msg->len);
        if (data == NULL) {
            return -ENOMEM;
        }
        memcpy(data, msg->payload, msg->len);
    }
    ctx->pending_msg = *msg;
    ctx->pending_msg.payload = data;
    ctx->pending_data = data;
    msg->nr_fds = 0;                /* they travel with the parked copy */
    ctx->quiesce_pending = true;
    return 0;
}

int
dispatch_msg(vfu_ctx_t *ctx, struct tran_msg *msg)
{
    struct vfu_reply reply;
    struct vfio_user_header hdr;
    uint8_t *outer = ctx->reply_buf;    /* a request this one is nested in */
    void *mem = NULL;
    int ret;

    ctx->nr_requests++;
    reply.iovcnt = 0;
    reply.nr_fds = 0;
    if (ctx->irqs.intx_unmask_fd >= 0) {
        irq_poll(ctx);      /* an INTx unmask signalled by eventfd first */
    }

    if (!msg->malformed && tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_REPLY &&
        late_reply(ctx, &msg->hdr)) {
        vfu_log_warn(ctx, "dropped the late reply to DMA msg%u",
                     msg->hdr.msg_id);
        tran_msg_close_fds(msg);
        return 0;
    }
    ret = check_header(ctx, msg);
    if (ret == 0 && (mem = tran_pool_get(&reply_pool)) == NULL) {
        vfu_log_err(ctx, "msg%u: no memory for the reply", msg->hdr.msg_id);
        ret = -ENOMEM;
    }
    if (ret == 0) {
        ctx->reply_buf = (uint8_t *)mem + REPLY_BUF_OFFSET;
        vfu_log_debug(ctx, "msg%u: %s, %u bytes%s", msg->hdr.msg_id,
                      cmd_name(msg->hdr.cmd), msg->hdr.msg_size,
                      tran_hdr_no_reply(&msg->hdr) ? ", no reply (posted)" : "");
        /*
         * The handler may serve nested requests (a DMA wait): pin ours. The
         * nesting limit keeps holds well below TRAN_MAX_HOLDS.
         */
        bool held = tran_rx_hold(&ctx->rx) == 0;
        ctx->handler_depth++;
        ret = handlers[msg->hdr.cmd](ctx, msg, &reply);
        ctx->handler_depth--;
        if (held) {
            tran_rx_release(&ctx->rx);
        }
    }
    if (ret == HANDLER_PENDING) {
        ret = park_pending(ctx, msg);
        if (ret == 0) {
            vfu_log_debug(ctx, "msg%u: waits for the device to quiesce",
                          msg->hdr.msg_id);
            reply_buf_return(ctx, outer, mem);
            return -EBUSY;
        }
    }
    /* Whatever the handler did not take, we close: nothing leaks. */
    tran_msg_close_fds(msg);
    ctx->quiesced = false;

    if (tran_hdr_no_reply(&msg->hdr)) {
        if (ret < 0) {
            vfu_log_err(ctx, "msg%u: posted command %u failed: %s",
                        msg->hdr.msg_id, msg->hdr.cmd, strerror(-ret));
        }
        reply_buf_return(ctx, outer, mem);
        return 0;
    }

    tran_hdr_init(&hdr, msg->hdr.msg_id, msg->hdr.cmd,
                  VFIO_USER_F_TYPE_REPLY, false);
    if (ret < 0) {
        hdr.flags |= VFIO_USER_F_ERROR;
        hdr.error_no = (uint32_t)-ret;
        reply.iovcnt = 0;
        reply.nr_fds = 0;
    }
    ret = tran_send(ctx->out_fd, server_send_deadline(), &hdr, reply.iov,
                    reply.iovcnt, reply.fds, reply.nr_fds);
    reply_buf_return(ctx, outer, mem);
    if (ret < 0) {
        vfu_log_err(ctx, "msg%u: failed to send reply: %s", msg->hdr.msg_id,
                    strerror(-ret));
        return -ENOTCONN;
    }
    return 0;
}

VFU_EXPORT int
vfu_device_quiesced(vfu_ctx_t *ctx, int quiesce_errno)
{
    struct tran_msg msg;
    int ret;

    if (ctx == NULL || quiesce_errno < 0 ||
        !(ctx->quiesce_pending || ctx->disconnecting)) {
        errno = EINVAL;
        return -1;
    }
    if (ctx->disconnecting) {
        /* Quiet (or not: the client is gone either way); finish leaving. */
        (void)ctx_disconnect(ctx, false);
        return 0;
    }
    msg = ctx->pending_msg;
    ctx->quiesce_pending = false;
    if (quiesce_errno == 0) {
        ctx->quiesced = true;       /* the handler finds the device quiet */
        ret = dispatch_msg(ctx, &msg);
    } else {
        vfu_log_err(ctx, "msg%u: device failed to quiesce: %s",
                    msg.hdr.msg_id, strerror(quiesce_errno));
        tran_msg_close_fds(&msg);
        ret = tran_hdr_no_reply(&msg.hdr) ? 0 :
              tran_send_error(ctx->out_fd, server_send_deadline(), &msg.hdr,
                              quiesce_errno);
    }
    free(ctx->pending_data);
    ctx->pending_data = NULL;
    ctx->quiesced = false;
    if (ret == -ENOTCONN || ret == -EPIPE) {
        /* The client left: tear down now, while the device is still quiet. */
        (void)ctx_disconnect(ctx, false);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Serving the client while a reply is awaited                         */
/* ------------------------------------------------------------------ */

/*
 * dispatch_await(): on one socket the client's requests may arrive before
 * the reply to our request. A client such as QEMU answers our DMA messages
 * only from a thread that may itself be blocked waiting for our reply to
 * one of its requests, so the wait serves them, in order, as vfu_run_ctx()
 * would, and only then finds its reply. Requests are set aside for
 * vfu_run_ctx() instead when serving them now would break their order or
 * nest too deep: while a served request waits for the device to quiesce,
 * once anything has been set aside, or at MAX_NEST_DEPTH. In twin-socket
 * mode our requests and their replies use a socket of their own; the main
 * socket is served the same way meanwhile.
 */

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
    return tran_send_error(ctx->out_fd, server_send_deadline(), &msg->hdr,
                           err) < 0 ? -ENOTCONN : 0;
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
 * A reply: finishes whichever of our waits it answers, the innermost or
 * one further out (the client may answer in any order); true if it did.
 */
static bool
take_any_reply(vfu_ctx_t *ctx, const struct tran_msg *msg)
{
    for (unsigned i = 0; i < ctx->nest_depth; i++) {
        struct dispatch_wait *w = ctx->waits[i];

        if (w->done || msg->hdr.msg_id != w->id || msg->hdr.cmd != w->cmd) {
            continue;
        }
        /* Ours, but without the bytes a reply needs: it failed. */
        w->result = msg->oversized ? -EMSGSIZE :
                    msg->malformed ? -EPROTO :
                    w->take(ctx, w, msg);
        w->done = true;
        return true;
    }
    return false;
}

/*
 * Takes what is buffered in @rx until @w is done (1) or more must be
 * received (0), or -ENOTCONN. Replies finish their waits; client requests
 * are served (or set aside) as they come; replies to nothing are dropped.
 * @replies_here: the replies we await come on this socket; @requests_here: the
 * client's requests do.
 */
static int
take_incoming(vfu_ctx_t *ctx, struct tran_rx *rx, bool replies_here,
              bool requests_here, const struct dispatch_wait *w)
{
    struct tran_msg msg;

    while (!w->done && tran_rx_next(rx, &msg) == 1) {
        if (tran_hdr_type(&msg.hdr) == VFIO_USER_F_TYPE_REPLY) {
            tran_msg_close_fds(&msg);
            if (!replies_here || (!take_any_reply(ctx, &msg) &&
                                  !late_reply(ctx, &msg.hdr))) {
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
wait_reply(vfu_ctx_t *ctx, const struct dispatch_wait *w, int timeout_ms)
{
    bool twin = ctx->twin_fd >= 0;
    int64_t deadline = vfu_now_ms() + timeout_ms;
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
            vfu_log_err(ctx, "no reply to %s msg%u in %d ms",
                        cmd_name(w->cmd), w->id, timeout_ms);
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

int
dispatch_await(vfu_ctx_t *ctx, struct dispatch_wait *w, int timeout_ms)
{
    /*
     * A wait the device started outside any request (from its own loop)
     * must not take in what comes after its reply: the device would next
     * poll() the socket, which does not report what we hold. So it (and
     * any wait nested in it) reads no further than one message at a time.
     */
    bool outermost = ctx->nest_depth == 0 && ctx->handler_depth == 0;
    int ret;

    w->done = false;
    if (outermost) {
        ctx->exact_reads = true;
    }
    ctx->waits[ctx->nest_depth++] = w;
    ret = wait_reply(ctx, w, timeout_ms);
    ctx->nest_depth--;
    if (outermost) {
        ctx->exact_reads = false;
    }
    if (!w->done) {
        /* Its reply may still come: it is to be dropped, not answered. */
        unsigned i = ctx->nr_abandoned++ % MAX_ABANDONED_DMA;
        ctx->abandoned[i].id = w->id;
        ctx->abandoned[i].cmd = w->cmd;
    }
    /* A big reply's buffer goes back (one a request being served keeps). */
    tran_rx_trim(&ctx->rx);
    if (ctx->twin_fd >= 0) {
        tran_rx_trim(&ctx->twin_rx);
    }
    return ret;
}

/*
 * Serves every complete message already buffered; -EBUSY when one now waits
 * for the device to quiesce, -ENOTCONN if the link broke. Requests set
 * aside during a DMA wait came before anything still buffered, so they go
 * first, and are looked for again after each request served: its own DMA
 * wait may have set some aside.
 */
static int
serve_buffered(vfu_ctx_t *ctx, int *handled)
{
    for (;;) {
        struct deferred_msg *d = ctx->deferred;
        struct tran_msg msg;
        int ret;

        if (ctx->quiesce_pending) {
            return -EBUSY;
        }
        if (d != NULL) {
            ctx->deferred = d->next;
            if (ctx->deferred == NULL) {
                ctx->deferred_tail = &ctx->deferred;
            }
            ctx->nr_deferred--;
            ctx->deferred_bytes -= d->msg.len;
            ret = dispatch_msg(ctx, &d->msg);
            free(d);
        } else if (tran_rx_next(&ctx->rx, &msg) == 1) {
            ret = dispatch_msg(ctx, &msg);
        } else {
            return 0;
        }
        (*handled)++;
        if (ret == -EBUSY) {
            return -EBUSY;
        }
        if (ret < 0 || ctx->conn_broken) {
            return -ENOTCONN;
        }
    }
}

VFU_EXPORT int
vfu_run_ctx(vfu_ctx_t *ctx)
{
    bool block;
    int handled = 0;
    int ret;

    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ctx->quiesce_pending || ctx->disconnecting) {
        errno = EBUSY;
        return -1;
    }
    if (!ctx->realized) {
        errno = EINVAL;
        return -1;
    }
    if (!ctx->negotiated) {
        errno = ENOTCONN;
        return -1;
    }
    block = !(ctx->flags & LIBVFIO_USER_FLAG_ATTACH_NB);

    /* Non-blocking: what is buffered, one receive, what it brought. */
    for (bool received = false;; received = true) {
        ssize_t n;

        ret = serve_buffered(ctx, &handled);
        if (ret == -EBUSY) {
            errno = EBUSY;
            return -1;
        }
        if (ret < 0 || ctx->conn_broken) {
            break;
        }
        if (!block && received) {
            tran_rx_trim(&ctx->rx);     /* idle: no big buffer kept */
            return handled;
        }
        /* A signal while we wait for the next message ends the call. */
        n = tran_rx_fill(&ctx->rx, ctx->conn_fd,
                         block ? TRAN_RX_BLOCK | TRAN_RX_EINTR : 0);
        if (n == -EAGAIN) {
            return handled;
        }
        if (n == -EINTR) {
            errno = EINTR;
            return -1;
        }
        if (n < 0) {
            if (n != -ENOTCONN) {
                vfu_log_err(ctx, "receive failed: %s", strerror((int)-n));
            }
            break;
        }
    }
    errno = ctx_disconnect(ctx, true) == -EBUSY ? EBUSY : ENOTCONN;
    return -1;
}
