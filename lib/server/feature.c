/*
 * DEVICE_FEATURE: the request's common rules (argsz, the GET / SET / PROBE
 * bits, the feature index) and the features behind it. Dirty-page logging
 * (DMA_LOGGING_START / STOP / REPORT) is carried out by dma.c, the
 * migration features (MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE) by
 * migration.c; those a device does not offer are refused with ENOTTY.
 */
#include <string.h>

#include "private.h"

#define FEATURE_HDR     sizeof(struct vfio_user_device_feature)

typedef struct vfio_user_device_feature_dma_logging_control log_control_t;
typedef struct vfio_user_device_feature_dma_logging_range log_range_t;
typedef struct vfio_user_device_feature_dma_logging_report log_report_t;

/* Most ranges one DMA_LOGGING_START may carry. */
#define LOG_MAX_RANGES  SERVER_MAX_DMA_MAPS

/* The operations (GET, SET) a feature supports; 0: not offered. */
static uint32_t
feature_ops(vfu_ctx_t *ctx, uint32_t feature)
{
    switch (feature) {
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
        return VFIO_DEVICE_FEATURE_SET;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return VFIO_DEVICE_FEATURE_GET;
    case VFIO_DEVICE_FEATURE_MIGRATION:
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        return migration_feature_ops(ctx, feature);
    default:
        return 0;
    }
}

/* START: control and ranges in; the same back with the page size chosen. */
static int
logging_start(vfu_ctx_t *ctx, struct tran_msg *msg,
              const struct vfio_user_device_feature *req,
              struct vfu_reply *reply)
{
    const size_t head = FEATURE_HDR + sizeof(log_control_t);
    log_control_t ctl;
    uint64_t page_size;
    int ret;

    if (msg->len < head) {
        vfu_log_err(ctx, "DMA_LOGGING_START: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&ctl, msg->payload + FEATURE_HDR, sizeof(ctl));
    if (ctl.num_ranges > LOG_MAX_RANGES) {
        vfu_log_err(ctx, "DMA_LOGGING_START: %u ranges", ctl.num_ranges);
        return -E2BIG;
    }
    if (msg->len != head + (size_t)ctl.num_ranges * sizeof(log_range_t) ||
        req->argsz < msg->len || ctl.reserved != 0) {
        vfu_log_err(ctx, "DMA_LOGGING_START: %u ranges in %zu bytes, argsz %u",
                    ctl.num_ranges, msg->len, req->argsz);
        return -EINVAL;
    }
    /* The ranges are read in place: the payload stays put until the reply. */
    page_size = ctl.page_size;
    ret = dma_log_start(ctx, &page_size,
                        (const log_range_t *)(msg->payload + head),
                        ctl.num_ranges);
    if (ret < 0) {
        vfu_log_err(ctx, "DMA_LOGGING_START refused: %s", strerror(-ret));
        return ret;
    }
    ctl.page_size = page_size;
    memcpy(msg->payload + FEATURE_HDR, &ctl, sizeof(ctl));
    reply_add(reply, msg->payload, msg->len);
    return 0;
}

/*
 * STOP has no data of its own; clients may send START's control block (or
 * anything) after the header, as the kernel's uAPI lets them. It is ignored
 * and the reply is the header alone.
 */
static int
logging_stop(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    if (msg->len < FEATURE_HDR) {
        vfu_log_err(ctx, "DMA_LOGGING_STOP: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    dma_log_stop(ctx);
    reply_add(reply, msg->payload, FEATURE_HDR);
    return 0;
}

/*
 * REPORT: iova, length and page size in; the same back, argsz the whole
 * reply, followed by the bitmap: one bit per page_size from iova, as many
 * 64-bit words as ceil(length / page_size) bits need.
 */
static int
logging_report(vfu_ctx_t *ctx, struct tran_msg *msg,
               struct vfio_user_device_feature *req, struct vfu_reply *reply)
{
    uint64_t limit = ctx->client_caps.max_data_xfer_size;
    uint64_t pages, bytes;
    log_report_t rep;
    int ret;

    if (msg->len != FEATURE_HDR + sizeof(rep)) {
        vfu_log_err(ctx, "DMA_LOGGING_REPORT: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&rep, msg->payload + FEATURE_HDR, sizeof(rep));
    if (rep.length == 0 || rep.page_size == 0 ||
        (rep.page_size & (rep.page_size - 1)) != 0 ||
        rep.length - 1 > UINT64_MAX - rep.iova) {
        vfu_log_err(ctx, "DMA_LOGGING_REPORT: [%#" PRIx64 ", +%#" PRIx64
                    ") in %#" PRIx64 "-byte pages", rep.iova, rep.length,
                    rep.page_size);
        return -EINVAL;
    }
    pages = (rep.length - 1) / rep.page_size + 1;
    bytes = (pages + 63) / 64 * 8;
    if (limit > SERVER_MAX_DATA_XFER) {
        limit = SERVER_MAX_DATA_XFER;
    }
    if (bytes > limit) {
        vfu_log_err(ctx, "DMA_LOGGING_REPORT: a %" PRIu64 "-byte bitmap "
                    "exceeds the transfer limit", bytes);
        return -EINVAL;
    }
    if (req->argsz < msg->len + bytes) {
        vfu_log_err(ctx, "DMA_LOGGING_REPORT: argsz %u, %" PRIu64
                    " needed", req->argsz, msg->len + bytes);
        return -EINVAL;
    }
    memset(ctx->reply_buf, 0, bytes);
    ret = dma_log_report(ctx, rep.iova, rep.length, rep.page_size,
                         (uint64_t *)(void *)ctx->reply_buf);
    if (ret < 0) {
        vfu_log_err(ctx, "DMA_LOGGING_REPORT refused: %s", strerror(-ret));
        return ret;
    }
    /* The head goes back from the request itself, argsz set to the total. */
    req->argsz = (uint32_t)(msg->len + bytes);
    memcpy(msg->payload, req, FEATURE_HDR);
    reply_add(reply, msg->payload, msg->len);
    reply_add(reply, ctx->reply_buf, bytes);
    return 0;
}

int
handle_device_feature(vfu_ctx_t *ctx, struct tran_msg *msg,
                      struct vfu_reply *reply)
{
    const uint32_t known = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET |
                           VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE;
    struct vfio_user_device_feature req;
    uint32_t feature, ops, want;

    if (msg->len < sizeof(req)) {
        vfu_log_err(ctx, "DEVICE_FEATURE: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&req, msg->payload, sizeof(req));
    want = req.flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET);
    if (req.argsz < sizeof(req) || (req.flags & ~known) ||
        (!(req.flags & VFIO_DEVICE_FEATURE_PROBE) &&
         want != VFIO_DEVICE_FEATURE_GET && want != VFIO_DEVICE_FEATURE_SET)) {
        /* Without PROBE exactly one of GET and SET. */
        vfu_log_err(ctx, "DEVICE_FEATURE: argsz %u, flags %#x", req.argsz,
                    req.flags);
        return -EINVAL;
    }
    feature = req.flags & VFIO_DEVICE_FEATURE_MASK;
    ops = feature_ops(ctx, feature);
    if (ops == 0) {
        /* As Linux's vfio-pci (and the original) answer. */
        vfu_log_err(ctx, "DEVICE_FEATURE: feature %u not supported", feature);
        return -ENOTTY;
    }
    if (want & ~ops) {
        vfu_log_err(ctx, "DEVICE_FEATURE: feature %u has no %s", feature,
                    (want & ~ops) == VFIO_DEVICE_FEATURE_GET ? "GET" : "SET");
        return -EINVAL;
    }
    if (req.flags & VFIO_DEVICE_FEATURE_PROBE) {
        if (req.argsz < msg->len) {
            return -EINVAL;     /* the reply is the request */
        }
        reply_add(reply, msg->payload, msg->len);
        return 0;
    }
    switch (feature) {
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
        return logging_start(ctx, msg, &req, reply);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
        return logging_stop(ctx, msg, reply);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return logging_report(ctx, msg, &req, reply);
    default:
        return migration_feature(ctx, msg, &req, reply);
    }
}
