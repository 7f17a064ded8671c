/*
 * The client's device and region calls: DEVICE_GET_INFO, GET_REGION_INFO
 * (asking again when the capabilities need more room, every reply checked
 * as a caller will use it), REGION_READ (big reads straight into the
 * caller's buffer), REGION_WRITE, REGION_WRITE_MULTI, DEVICE_RESET.
 *
 * Region reads and writes bigger than the server's max_data_xfer_size (the
 * spec default of 1 MiB until negotiation) fail with EINVAL before anything
 * is sent.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

VFU_EXPORT int
vfu_client_device_info(vfu_client_t *c, struct vfio_user_device_info *info)
{
    struct vfio_user_device_info req = { .argsz = sizeof(req) };
    struct iovec iov = iov_of(&req, sizeof(req));
    struct tran_msg reply;
    int ret;

    if (c == NULL || info == NULL) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DEVICE_GET_INFO, false, &iov, 1,
                        sizeof(*info), sizeof(*info), &reply);
    if (ret < 0) {
        return fail(ret);
    }
    memcpy(info, reply.payload, sizeof(*info));
    return info->argsz == sizeof(*info) ? 0 : fail(-EPROTO);
}

/*
 * A full GET_REGION_INFO reply, checked as a caller will use it: the index
 * echoed, the payload as long as argsz, the capability chain inside it
 * (each header whole, offsets rising, a sparse mmap capability's areas
 * inside the payload and the region), and an fd exactly when the region
 * is mappable. 0 or -EPROTO.
 */
static int
check_region_info(const struct tran_msg *m, uint32_t index)
{
    struct vfio_region_info info;
    uint32_t off, prev = 0;

    memcpy(&info, m->payload, sizeof(info));
    if (info.index != index || m->len != info.argsz ||
        ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) != 0) != (m->nr_fds == 1) ||
        m->nr_fds > 1 || m->fds_lost) {
        return -EPROTO;
    }
    if (!(info.flags & VFIO_REGION_INFO_FLAG_CAPS)) {
        return 0;
    }
    for (off = info.cap_offset; off != 0; ) {
        struct vfio_info_cap_header cap;

        if (off < sizeof(info) || off <= prev || off > info.argsz ||
            info.argsz - off < sizeof(cap) || off % 4 != 0) {
            return -EPROTO;
        }
        memcpy(&cap, m->payload + off, sizeof(cap));
        if (cap.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
            struct vfio_region_info_cap_sparse_mmap sp;
            struct vfio_region_sparse_mmap_area a;

            if (info.argsz - off < sizeof(sp)) {
                return -EPROTO;
            }
            memcpy(&sp, m->payload + off, sizeof(sp));
            if (sp.nr_areas > (info.argsz - off - sizeof(sp)) / sizeof(a)) {
                return -EPROTO;
            }
            for (uint32_t i = 0; i < sp.nr_areas; i++) {
                memcpy(&a, m->payload + off + sizeof(sp) + i * sizeof(a),
                       sizeof(a));
                if (a.offset > info.size || a.size > info.size - a.offset) {
                    return -EPROTO;
                }
            }
        }
        prev = off;
        off = cap.next;
    }
    return 0;
}

VFU_EXPORT int
vfu_client_region_info(vfu_client_t *c, uint32_t index,
                       struct vfio_region_info **info, int *fd)
{
    uint32_t offer = REGION_INFO_FIRST;

    if (c == NULL || info == NULL || fd == NULL) {
        return fail(-EINVAL);
    }
    *info = NULL;
    *fd = -1;
    for (int tries = 0; tries < REGION_INFO_TRIES; tries++) {
        struct vfio_region_info req = { .argsz = offer, .index = index };
        struct iovec iov = iov_of(&req, sizeof(req));
        struct vfio_region_info head, *out;
        struct tran_msg reply;
        int ret;

        ret = do_request(c, VFIO_USER_DEVICE_GET_REGION_INFO, &iov, 1,
                         NULL, 0, &reply);
        if (ret < 0) {
            return fail(ret);
        }
        if (reply.len < sizeof(head)) {
            tran_msg_close_fds(&reply);
            return fail(-EPROTO);
        }
        memcpy(&head, reply.payload, sizeof(head));
        if (head.argsz < sizeof(head) || head.argsz > REGION_INFO_MAX ||
            head.index != index) {
            tran_msg_close_fds(&reply);
            return fail(-EPROTO);
        }
        if (head.argsz > offer) {
            /* The capabilities did not fit: ask again with room for them. */
            ret = reply.len > offer || reply.nr_fds > 1 || reply.fds_lost ||
                  (reply.nr_fds == 1 &&
                   !(head.flags & VFIO_REGION_INFO_FLAG_MMAP)) ? -EPROTO : 0;
            tran_msg_close_fds(&reply);
            if (ret < 0) {
                return fail(ret);
            }
            offer = head.argsz;
            continue;
        }
        ret = check_region_info(&reply, index);
        out = ret == 0 ? malloc(head.argsz) : NULL;
        if (out == NULL) {
            tran_msg_close_fds(&reply);
            return fail(ret < 0 ? ret : -ENOMEM);
        }
        memcpy(out, reply.payload, head.argsz);
        size_t nr = 1;
        give_fds(&reply, fd, &nr);      /* *fd stays -1 when none came */
        *info = out;
        return 0;
    }
    return fail(-EPROTO);   /* the server kept asking for more */
}

VFU_EXPORT int
vfu_client_region_read(vfu_client_t *c, uint32_t region, uint64_t offset,
                       void *data, uint32_t count)
{
    struct vfio_user_region_access req = {
        .offset = offset, .region = region, .count = count,
    };
    struct iovec iov = iov_of(&req, sizeof(req));
    struct vfio_user_region_access head;
    struct vfio_user_header expect;
    struct tran_msg reply;
    uint16_t id;
    int ret;

    if (c == NULL || (data == NULL && count > 0) ||
        count > c->info.max_data_xfer_size) {
        return fail(-EINVAL);
    }
    ret = send_cmd(c, VFIO_USER_REGION_READ, false, &iov, 1, NULL, 0, &id);
    if (ret < 0) {
        return fail(ret);
    }
    /* Big reads land in the caller's buffer without a copy. */
    expect.msg_id = id;
    expect.cmd = VFIO_USER_REGION_READ;
    expect.msg_size = (uint32_t)(HDR_SIZE + sizeof(head) + count);
    if (count >= DIRECT_READ_MIN) {
        ret = tran_rx_direct(&c->rx, c->fd, &expect, sizeof(head), data,
                             &reply);
        if (ret < 0 && ret != -EAGAIN) {
            abandon(c, id);
            return fail(ret);
        }
        if (ret == 1) {
            memcpy(&head, reply.payload, sizeof(head));
            return head.count == count && head.offset == offset &&
                   head.region == region ? 0 : fail(-EPROTO);
        }
        /* Something else came first (or nothing yet): the usual way. */
    }
    ret = wait_reply(c, id, VFIO_USER_REGION_READ, &reply);
    if (ret < 0) {
        return fail(ret);
    }
    ret = reply.nr_fds > 0 || reply.len != sizeof(head) + count ? -EPROTO : 0;
    tran_msg_close_fds(&reply);
    if (ret < 0) {
        return fail(ret);
    }
    memcpy(&head, reply.payload, sizeof(head));
    if (head.count != count || head.offset != offset || head.region != region) {
        return fail(-EPROTO);
    }
    if (count > 0) {
        memcpy(data, reply.payload + sizeof(head), count);
    }
    return 0;
}

VFU_EXPORT int
vfu_client_region_write(vfu_client_t *c, uint32_t region, uint64_t offset,
                        const void *data, uint32_t count, bool posted)
{
    struct vfio_user_region_access req = {
        .offset = offset, .region = region, .count = count,
    };
    struct iovec iov[2] = { iov_of(&req, sizeof(req)), iov_of(data, count) };
    struct vfio_user_region_access head;
    struct tran_msg reply;
    int ret;

    if (c == NULL || (data == NULL && count > 0) ||
        count > c->info.max_data_xfer_size) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_REGION_WRITE, posted, iov, 2,
                        sizeof(head), sizeof(head), &reply);
    if (ret != 0) {
        return ret < 0 ? fail(ret) : 0;
    }
    memcpy(&head, reply.payload, sizeof(head));
    return head.count == count && head.offset == offset &&
           head.region == region ? 0 : fail(-EPROTO);
}

VFU_EXPORT int
vfu_client_region_write_multi(vfu_client_t *c,
                              const struct vfio_user_write_multi_data *wrs,
                              size_t nr, bool posted)
{
    uint64_t wr_cnt = nr, done;
    struct iovec iov[2] = {
        iov_of(&wr_cnt, sizeof(wr_cnt)), iov_of(wrs, nr * sizeof(*wrs)),
    };
    struct tran_msg reply;
    int ret;

    if (c == NULL || wrs == NULL || nr == 0 || nr > VFIO_USER_MULTI_MAX) {
        return fail(-EINVAL);
    }
    for (size_t i = 0; i < nr; i++) {
        if (wrs[i].count == 0 || wrs[i].count > VFIO_USER_MULTI_DATA) {
            return fail(-EINVAL);
        }
    }
    ret = typed_request(c, VFIO_USER_REGION_WRITE_MULTI, posted, iov, 2,
                        sizeof(done), sizeof(done), &reply);
    if (ret != 0) {
        return ret < 0 ? fail(ret) : (int)nr;
    }
    memcpy(&done, reply.payload, sizeof(done));
    return done <= nr ? (int)done : fail(-EPROTO);
}

VFU_EXPORT int
vfu_client_reset(vfu_client_t *c)
{
    struct tran_msg reply;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DEVICE_RESET, false, NULL, 0, 0, 0,
                        &reply);
    return ret < 0 ? fail(ret) : 0;
}
