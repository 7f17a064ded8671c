/*
 * Device-wide requests: DEVICE_GET_INFO, and DEVICE_RESET, which is
 * checked here and carried out by the reset orchestrator (reset.c).
 */
#include <string.h>

#include "private.h"

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
    return reset_device(ctx);
}
