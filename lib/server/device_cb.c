/*
 * The device's own callbacks for quiescing and resetting, and the only
 * calls into them: vfu_setup_device_quiesce_cb(), vfu_setup_device_reset_cb(),
 * asking the device to quiesce (device_quiesce()) and calling its reset
 * callback (device_call_reset()). At the bottom of the library, so that
 * every layer that needs the device quiet may ask.
 */
#include <string.h>

#include "private.h"

VFU_EXPORT int
vfu_setup_device_reset_cb(vfu_ctx_t *ctx, vfu_reset_cb_t *reset)
{
    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    ctx->reset_cb = reset;
    return 0;
}

VFU_EXPORT void
vfu_setup_device_quiesce_cb(vfu_ctx_t *ctx, vfu_device_quiesce_cb_t *quiesce_cb)
{
    if (ctx != NULL) {
        ctx->quiesce_cb = quiesce_cb;
    }
}

int
device_quiesce(vfu_ctx_t *ctx)
{
    int err;

    if (ctx->quiesced || ctx->quiesce_cb == NULL) {
        ctx->quiesced = true;
        return 0;
    }
    errno = 0;
    if (ctx->quiesce_cb(ctx) >= 0) {    /* any value >= 0, as the original */
        ctx->quiesced = true;
        return 0;
    }
    err = errno != 0 ? errno : EIO;
    if (err == EBUSY) {
        return HANDLER_PENDING;
    }
    vfu_log_err(ctx, "device failed to quiesce: %s", strerror(err));
    return -err;
}

int
device_call_reset(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    int err;

    errno = 0;
    if (ctx->reset_cb == NULL || ctx->reset_cb(ctx, type) >= 0) {
        return 0;
    }
    err = errno != 0 ? errno : EIO;
    vfu_log_err(ctx, "device reset (type %d) failed: %s", (int)type,
                strerror(err));
    return -err;
}
