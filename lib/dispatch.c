/*
 * The request loop: takes whole messages from the socket in order, rejects
 * what is not a well-formed command, calls the command's handler and sends
 * its reply (header, payload and fds in one sendmsg). Commands flagged
 * NO_REPLY never get a reply, not even an error.
 */
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
};

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
    irq_poll(ctx);          /* an INTx unmask signalled by eventfd first */

    if (!msg->malformed && tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_REPLY &&
        dma_msg_late_reply(ctx, &msg->hdr)) {
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
                      cmd_names[msg->hdr.cmd] != NULL ?
                      cmd_names[msg->hdr.cmd] : "?", msg->hdr.msg_size,
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
    ret = tran_send(ctx->out_fd, &hdr, reply.iov, reply.iovcnt, reply.fds,
                    reply.nr_fds);
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
              tran_send_error(ctx->out_fd, &msg.hdr, quiesce_errno);
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

    for (;;) {
        ssize_t n;

        ret = serve_buffered(ctx, &handled);
        if (ret == -EBUSY) {
            errno = EBUSY;
            return -1;
        }
        if (ret < 0 || ctx->conn_broken) {
            break;
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
        if (!block) {
            ret = serve_buffered(ctx, &handled);
            if (ret == -EBUSY) {
                errno = EBUSY;
                return -1;
            }
            if (ret < 0 || ctx->conn_broken) {
                break;
            }
            tran_rx_trim(&ctx->rx);     /* idle: no big buffer kept */
            return handled;
        }
    }
    errno = ctx_disconnect(ctx, true) == -EBUSY ? EBUSY : ENOTCONN;
    return -1;
}
