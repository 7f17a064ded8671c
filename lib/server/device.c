/*
 * Device-wide requests and callbacks: DEVICE_GET_INFO, DEVICE_RESET with the
 * reset callback (and the way out of the migration ERROR state), and asking
 * the device to quiesce.
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

int
handle_device_get_info(vfu_ctx_t *ctx, struct tran_msg *msg,
                       struct vfu_reply *reply)
{
    struct vfio_user_device_info in;
    struct vfio_user_device_info *out = (void *)ctx->reply_buf;

    if (msg->len != sizeof(in)) {
        vfu_log_err(ctx, "DEVICE_GET_INFO: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&in, msg->payload, sizeof(in));
    if (in.argsz < sizeof(in)) {
        vfu_log_err(ctx, "DEVICE_GET_INFO: argsz %u too small", in.argsz);
        return -EINVAL;
    }
    out->argsz = sizeof(*out);
    out->flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
    out->num_regions = VFU_PCI_DEV_NUM_REGIONS;
    out->num_irqs = VFIO_PCI_NUM_IRQS;
    reply_add(reply, out, sizeof(*out));
    return 0;
}

int
handle_device_reset(vfu_ctx_t *ctx, struct tran_msg *msg,
                    struct vfu_reply *reply)
{
    (void)reply;
    if (msg->len != 0) {
        vfu_log_err(ctx, "DEVICE_RESET: unexpected %zu-byte payload", msg->len);
        return -EINVAL;
    }
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
