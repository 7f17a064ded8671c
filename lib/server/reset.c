/*
 * The reset orchestrator: the one place that resets the device and every
 * part of the library's state, for each way a reset comes about. A config
 * write that asks for a function-level reset (Initiate FLR) or a soft reset
 * (D3hot->D0 without No_Soft_Reset) comes here once written (pci_access.c
 * returns what it asks for), DEVICE_RESET comes from device.c, a lost
 * connection from disconnect.c. Each quiesces the device, calls its reset
 * callback, and resets the parts it concerns in order: config space,
 * interrupts, migration state, DMA. The device's callbacks are called
 * through device_cb.c.
 */
#include "private.h"

/*
 * The one place where the device is stopped before a function-level reset
 * (Initiate FLR, or the soft reset of a D3hot->D0 transition). The config
 * write that asked for the reset has quiesced the device before it changed
 * anything (the write waits, HANDLER_PENDING, when the device quiesces
 * later), so here the device is quiet already.
 */
static int
function_reset_quiesce(vfu_ctx_t *ctx)
{
    return device_quiesce(ctx);
}

/* Stops the device, lets it reset itself, then resets config space. */
static int
function_reset(vfu_ctx_t *ctx, vfu_reset_type_t type,
               enum pci_reset_kind kind)
{
    int ret = function_reset_quiesce(ctx);

    if (ret != 0) {
        return ret;
    }
    ret = device_call_reset(ctx, type);
    if (ret < 0) {
        return ret;
    }
    pci_reset_config(ctx, kind);
    return 0;
}

int
reset_function(vfu_ctx_t *ctx, const struct caps_pending *asks)
{
    int ret = 0;

    if (asks->flr) {
        vfu_log_info(ctx, "function-level reset");
        ret = function_reset(ctx, VFU_RESET_PCI_FLR, PCI_RESET_FLR);
    } else if (asks->soft_reset) {
        vfu_log_info(ctx, "D3hot -> D0 soft reset");
        ret = function_reset(ctx, VFU_RESET_DEVICE, PCI_RESET_SOFT);
        if (ret == 0) {
            /* The reset must not undo the move to D0 that caused it. */
            caps_after_soft_reset(ctx);
        }
    }
    /* Enables and masks may have changed: deliver what they held back. */
    irq_config_written(ctx);
    return ret;
}

int
reset_device(vfu_ctx_t *ctx)
{
    int ret = device_quiesce(ctx);

    if (ret != 0) {
        return ret;
    }
    ret = device_call_reset(ctx, VFU_RESET_DEVICE);
    if (ret < 0) {
        return ret;
    }
    pci_reset(ctx);
    irq_reset(ctx);         /* the client sets its eventfds up again */
    return migration_leave_error(ctx);
}

int
reset_lost_conn(vfu_ctx_t *ctx, bool quiesce_first,
                void (*drop_conn)(vfu_ctx_t *ctx))
{
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
    drop_conn(ctx);
    irq_reset(ctx);         /* the client's eventfds go with it */
    if (migration_reset(ctx) < 0) {     /* the next client finds it running */
        vfu_log_warn(ctx, "device failed to return to RUNNING");
    }
    return 0;
}
