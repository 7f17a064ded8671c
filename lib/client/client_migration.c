/*
 * Client library, live migration: the migration features of DEVICE_FEATURE,
 * MIG_DATA_READ / MIG_DATA_WRITE in pieces of the negotiated transfer size,
 * and vfu_client_migrate(), a whole move from one server to another. The
 * data moves without extra copies: read replies land in the caller's buffer
 * (tran_rx_direct()), writes go out as header and data in one sendmsg().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

#define FEATURE_HDR     sizeof(struct vfio_user_device_feature)
#define MIG_DATA_HDR    sizeof(struct vfio_user_mig_data)
/* A migration round's buffer: what one copy step holds. */
#define COPY_CHUNK      (1u << 20)

/*
 * A feature GET of @len bytes of data into @out: the reply is the request's
 * head (flags echoed, argsz the reply's size) and the data, no fds. 0 or -1
 * with errno.
 */
static int
feature_get(vfu_client_t *c, uint32_t feature, void *out, size_t len)
{
    struct vfio_user_device_feature req = {
        .argsz = (uint32_t)(FEATURE_HDR + len),
        .flags = VFIO_DEVICE_FEATURE_GET | feature,
    };
    struct iovec iov = iov_of(&req, sizeof(req));
    struct vfio_user_device_feature head;
    struct tran_msg reply;
    int ret;

    if (c == NULL || out == NULL) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DEVICE_FEATURE, false, &iov, 1,
                        FEATURE_HDR + len, FEATURE_HDR + len, &reply);
    if (ret < 0) {
        return fail(ret);
    }
    memcpy(&head, reply.payload, sizeof(head));
    if (head.flags != req.flags || head.argsz != FEATURE_HDR + len) {
        return fail(-EPROTO);
    }
    memcpy(out, reply.payload + FEATURE_HDR, len);
    return 0;
}

VFU_EXPORT int
vfu_client_mig_flags(vfu_client_t *c, uint64_t *flags)
{
    return feature_get(c, VFIO_DEVICE_FEATURE_MIGRATION, flags,
                       sizeof(*flags));
}

VFU_EXPORT int
vfu_client_mig_state_get(vfu_client_t *c, uint32_t *state)
{
    struct vfio_user_device_feature_mig_state st;

    if (state == NULL || feature_get(c, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                                     &st, sizeof(st)) < 0) {
        return state == NULL ? fail(-EINVAL) : -1;
    }
    *state = st.device_state;
    return 0;
}

VFU_EXPORT int
vfu_client_mig_state_set(vfu_client_t *c, uint32_t state)
{
    uint8_t req[FEATURE_HDR + sizeof(struct vfio_user_device_feature_mig_state)];
    struct vfio_user_device_feature h = {
        .argsz = sizeof(req),
        .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    };
    struct vfio_user_device_feature_mig_state st = {
        .device_state = state, .data_fd = UINT32_MAX,
    };
    struct tran_msg reply;
    struct iovec iov;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    memcpy(req, &h, sizeof(h));
    memcpy(req + sizeof(h), &st, sizeof(st));
    iov = iov_of(req, sizeof(req));
    /* The reply is the request. */
    ret = typed_request(c, VFIO_USER_DEVICE_FEATURE, false, &iov, 1,
                        sizeof(req), sizeof(req), &reply);
    if (ret < 0) {
        return fail(ret);
    }
    return memcmp(reply.payload + sizeof(h), &st, sizeof(st)) == 0 ? 0
                                                                 : fail(-EPROTO);
}

VFU_EXPORT int
vfu_client_mig_data_size(vfu_client_t *c, uint64_t *stop_copy_length)
{
    return feature_get(c, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, stop_copy_length,
                       sizeof(*stop_copy_length));
}

/* The most data one message carries: the server's limit. */
static size_t
chunk_of(vfu_client_t *c)
{
    const struct vfu_client_server_info *info = vfu_client_server_info(c);
    uint64_t limit = VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE;

    if (info != NULL && info->max_data_xfer_size > 0) {
        limit = info->max_data_xfer_size;
    }
    return limit > UINT32_MAX ? UINT32_MAX : (size_t)limit;
}

VFU_EXPORT ssize_t
vfu_client_mig_read(vfu_client_t *c, void *buf, size_t count)
{
    size_t chunk, done = 0;

    if (c == NULL || (buf == NULL && count > 0)) {
        return fail(-EINVAL);
    }
    chunk = chunk_of(c);
    while (done < count) {
        size_t want = count - done < chunk ? count - done : chunk;
        struct vfio_user_mig_data req = {
            .argsz = (uint32_t)(MIG_DATA_HDR + want), .size = (uint32_t)want,
        };
        struct iovec iov = iov_of(&req, sizeof(req));
        struct vfio_user_header expect = {
            .cmd = VFIO_USER_MIG_DATA_READ,
            .msg_size = (uint32_t)(HDR_SIZE + MIG_DATA_HDR + want),
        };
        struct vfio_user_mig_data rep;
        struct tran_msg reply;
        uint16_t id;
        int ret;

        ret = send_cmd(c, VFIO_USER_MIG_DATA_READ, false, &iov, 1, NULL, 0,
                       &id);
        if (ret < 0) {
            return fail(ret);
        }
        /* A full piece lands where the caller wants it. */
        expect.msg_id = id;
        ret = tran_rx_direct(&c->rx, c->fd, &expect, MIG_DATA_HDR,
                             (uint8_t *)buf + done, &reply);
        if (ret < 0 && ret != -EAGAIN) {
            abandon(c, id);
            return fail(ret);
        }
        if (ret == 1) {
            /* A server may pad a short piece's reply to the size asked. */
            memcpy(&rep, reply.payload, sizeof(rep));
            if (rep.size > want) {
                return fail(-EPROTO);
            }
            done += rep.size;
            if (rep.size < want) {
                break;              /* the end of the stream, for now */
            }
            continue;
        }
        /* Anything else (a short read at the end, an error) as usual. */
        ret = wait_reply(c, id, VFIO_USER_MIG_DATA_READ, &reply);
        if (ret < 0) {
            return fail(ret);
        }
        ret = reply.nr_fds > 0 || reply.len < MIG_DATA_HDR ? -EPROTO : 0;
        tran_msg_close_fds(&reply);
        if (ret < 0) {
            return fail(ret);
        }
        memcpy(&rep, reply.payload, sizeof(rep));
        /* The data is rep.size bytes; a longer message is padding. */
        if (rep.size > want || reply.len < MIG_DATA_HDR + rep.size ||
            reply.len > MIG_DATA_HDR + want) {
            return fail(-EPROTO);
        }
        memcpy((uint8_t *)buf + done, reply.payload + MIG_DATA_HDR, rep.size);
        done += rep.size;
        if (rep.size < want) {
            break;                  /* the end of the stream, for now */
        }
    }
    return (ssize_t)done;
}

VFU_EXPORT int
vfu_client_mig_write(vfu_client_t *c, const void *buf, size_t count)
{
    size_t chunk, done = 0;

    if (c == NULL || (buf == NULL && count > 0)) {
        return fail(-EINVAL);
    }
    chunk = chunk_of(c);
    do {
        size_t n = count - done < chunk ? count - done : chunk;
        struct vfio_user_mig_data req = {
            .argsz = MIG_DATA_HDR, .size = (uint32_t)n,
        };
        struct iovec iov[2] = {
            iov_of(&req, sizeof(req)),
            iov_of((const uint8_t *)buf + done, n),
        };
        struct tran_msg reply;
        int ret = typed_request(c, VFIO_USER_MIG_DATA_WRITE, false, iov, 2, 0,
                                0, &reply);

        if (ret < 0) {
            return fail(ret);
        }
        done += n;
    } while (done < count);
    return 0;
}

/* Copies what @src has ready (all of it, in STOP_COPY) to @dst. */
static int
copy_stream(vfu_client_t *src, vfu_client_t *dst, uint8_t *buf,
            uint64_t *bytes)
{
    ssize_t n;

    *bytes = 0;
    do {
        n = vfu_client_mig_read(src, buf, COPY_CHUNK);
        if (n < 0 || (n > 0 && vfu_client_mig_write(dst, buf, (size_t)n) < 0)) {
            return -1;
        }
        *bytes += (uint64_t)n;
    } while (n == COPY_CHUNK);
    return 0;
}

VFU_EXPORT int
vfu_client_migrate(vfu_client_t *src, vfu_client_t *dst,
                   const struct vfu_client_migrate_opts *opts,
                   struct vfu_client_migrate_stats *stats)
{
    struct vfu_client_migrate_opts none = { 0 };
    struct vfu_client_migrate_stats st = { 0 };
    uint64_t bytes;
    uint8_t *buf;
    int ret = -1;

    if (src == NULL || dst == NULL || src == dst) {
        return fail(-EINVAL);
    }
    if (opts == NULL) {
        opts = &none;
    }
    buf = malloc(COPY_CHUNK);
    if (buf == NULL) {
        return fail(-ENOMEM);
    }
    if (vfu_client_mig_state_set(dst, VFIO_DEVICE_STATE_RESUMING) < 0) {
        goto out;
    }
    if (opts->max_precopy_rounds > 0) {
        if (vfu_client_mig_state_set(src, VFIO_DEVICE_STATE_PRE_COPY) < 0) {
            goto out;
        }
        do {
            if (copy_stream(src, dst, buf, &bytes) < 0) {
                goto out;
            }
            st.precopy_rounds++;
            st.precopy_bytes += bytes;
            if (opts->round != NULL &&
                opts->round(opts->arg, st.precopy_rounds, bytes, false) != 0) {
                goto out;
            }
        } while (st.precopy_rounds < opts->max_precopy_rounds &&
                 bytes > opts->precopy_stop_bytes);
    }
    if (vfu_client_mig_state_set(src, VFIO_DEVICE_STATE_STOP_COPY) < 0 ||
        copy_stream(src, dst, buf, &st.stopcopy_bytes) < 0) {
        goto out;
    }
    if (opts->round != NULL &&
        opts->round(opts->arg, st.precopy_rounds + 1, st.stopcopy_bytes,
                    true) != 0) {
        goto out;
    }
    if (vfu_client_mig_state_set(dst, VFIO_DEVICE_STATE_STOP) < 0 ||
        vfu_client_mig_state_set(dst, VFIO_DEVICE_STATE_RUNNING) < 0 ||
        vfu_client_mig_state_set(src, VFIO_DEVICE_STATE_STOP) < 0) {
        goto out;
    }
    ret = 0;
out:
    free(buf);
    if (stats != NULL) {
        *stats = st;
    }
    return ret;
}
