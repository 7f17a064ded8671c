/*
 * Connection teardown: when the client goes (or the context is destroyed),
 * what was held for the connection is dropped (the request waiting for a
 * quiesce, requests set aside during a DMA wait, the twin socket, buffered
 * bytes and fds), inside the lost-connection reset of the device and its
 * state (reset.c). Below the dispatcher, which calls it when the link
 * fails, and vfu_destroy_ctx().
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

/*
 * What the connection held goes: the request waiting for a quiesce,
 * requests set aside during a DMA wait, the twin socket, the socket,
 * buffered bytes and fds. Called by the reset orchestrator once the device
 * has been told and has lost the client's DMA regions.
 */
static void
drop_conn(vfu_ctx_t *ctx)
{
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
}

int
ctx_disconnect(vfu_ctx_t *ctx, bool quiesce_first)
{
    int ret;

    if (ctx->conn_fd < 0) {
        return 0;
    }
    ret = reset_lost_conn(ctx, quiesce_first, drop_conn);
    if (ret < 0) {
        return ret;
    }
    vfu_log_info(ctx, "client disconnected");
    return 0;
}
