/*
 * Connection teardown: when the client goes (or the context is destroyed),
 * the device quiesces and is told (reset LOST_CONN), loses the client's DMA
 * regions, dirty log and eventfds, and what was held for the connection is
 * dropped: the request waiting for a quiesce, requests set aside during a
 * DMA wait, the twin socket, buffered bytes and fds. Below the dispatcher,
 * which calls it when the link fails.
 */
#include <stdlib.h>
#include <unistd.h>

#include "private.h"

void
ctx_close_conn(vfu_ctx_t *ctx)
{
    if (ctx->trans != VFU_TRANS_PIPE) {
        close(ctx->conn_fd);
    }
    ctx->conn_fd = -1;
    ctx->out_fd = -1;
}

int
ctx_disconnect(vfu_ctx_t *ctx, bool quiesce_first)
{
    if (ctx->conn_fd < 0) {
        return 0;
    }
    if (quiesce_first && ctx->negotiated && !ctx->quiesced &&
        !ctx->disconnecting) {
        if (device_quiesce(ctx) == HANDLER_PENDING) {
            ctx->disconnecting = true;  /* vfu_device_quiesced() goes on */
            return -EBUSY;
        }
        /* A device that cannot quiesce is reset all the same: no client. */
    }
    ctx->disconnecting = false;
    if (ctx->negotiated) {
        (void)device_call_reset(ctx, VFU_RESET_LOST_CONN);  /* logs failure */
    }
    dma_remove_all(ctx);    /* unregister callbacks, then unmap */
    /* The log was the client's: the next one starts (or not) its own. */
    dma_log_stop(ctx);
    if (ctx->quiesce_pending) {
        tran_msg_close_fds(&ctx->pending_msg);
        free(ctx->pending_data);
        ctx->pending_data = NULL;
        ctx->quiesce_pending = false;
    }
    while (ctx->deferred != NULL) {
        struct deferred_msg *d = ctx->deferred;
        ctx->deferred = d->next;
        tran_msg_close_fds(&d->msg);
        free(d);
    }
    ctx->deferred_tail = &ctx->deferred;
    ctx->nr_deferred = 0;
    ctx->deferred_bytes = 0;
    if (ctx->twin_fd >= 0) {
        close(ctx->twin_fd);
        ctx->twin_fd = -1;
        tran_rx_reset(&ctx->twin_rx);
    }
    ctx->quiesced = false;
    ctx->conn_broken = false;
    ctx->nr_abandoned = 0;
    ctx_close_conn(ctx);
    ctx->negotiated = false;
    tran_rx_reset(&ctx->rx);
    irq_reset(ctx);         /* the client's eventfds go with it */
    if (migration_reset(ctx) < 0) {     /* the next client finds it running */
        vfu_log_warn(ctx, "device failed to return to RUNNING");
    }
    vfu_log_info(ctx, "client disconnected");
    return 0;
}
