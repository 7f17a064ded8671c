/*
 * The client library's interrupts: IRQ info, SET_IRQS with eventfds, and
 * waiting on an eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "private.h"

/* --- Interrupts: IRQ info, SET_IRQS, waiting on an eventfd --- */

VFU_EXPORT int
vfu_client_irq_info(vfu_client_t *c, uint32_t index,
                    struct vfio_irq_info *info)
{
    struct vfio_irq_info req = { .argsz = sizeof(req), .index = index };
    struct iovec iov = iov_of(&req, sizeof(req));
    struct tran_msg reply;
    int ret;

    if (c == NULL || info == NULL) {
        return fail(-EINVAL);
    }
    ret = typed_request(c, VFIO_USER_DEVICE_GET_IRQ_INFO, false, &iov, 1,
                        sizeof(*info), sizeof(*info), &reply);
    if (ret < 0) {
        return fail(ret);
    }
    memcpy(info, reply.payload, sizeof(*info));
    return info->index == index && info->argsz == sizeof(*info) ? 0
                                                                : fail(-EPROTO);
}

/* One SET_IRQS message; @nr_fds is 0 or @count. */
static int
set_irqs_msg(struct vfu_client *c, uint32_t index, uint32_t flags,
             uint32_t start, uint32_t count, const int *fds, size_t nr_fds,
             const uint8_t *bools)
{
    struct vfio_irq_set req = {
        .argsz = sizeof(req), .flags = flags, .index = index,
        .start = start, .count = count,
    };
    struct iovec iov[2] = { iov_of(&req, sizeof(req)), iov_of(bools, 0) };
    struct tran_msg reply;
    int ret;

    if (bools != NULL) {
        req.argsz += count;
        iov[1].iov_len = count;
    }
    ret = do_request(c, VFIO_USER_DEVICE_SET_IRQS, iov, bools != NULL ? 2 : 1,
                     fds, nr_fds, &reply);
    if (ret == 0) {
        ret = reply.nr_fds > 0 || reply.len != 0 ? -EPROTO : 0;
        tran_msg_close_fds(&reply);
    }
    return ret;
}

VFU_EXPORT int
vfu_client_set_irqs(vfu_client_t *c, uint32_t index, uint32_t flags,
                    uint32_t start, uint32_t count, const int *fds,
                    const uint8_t *bools)
{
    uint32_t max_fds, done, n;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    if ((flags & VFIO_IRQ_SET_DATA_BOOL) && bools == NULL && count > 0) {
        return fail(-EINVAL);
    }
    if (!(flags & VFIO_IRQ_SET_DATA_EVENTFD) || count == 0) {
        ret = set_irqs_msg(c, index, flags, start, count, NULL, 0,
                           (flags & VFIO_IRQ_SET_DATA_BOOL) ? bools : NULL);
        return ret < 0 ? fail(ret) : 0;
    }
    max_fds = c->info.max_msg_fds > 0 ? c->info.max_msg_fds : 1;
    if (max_fds > TRAN_MAX_FDS) {
        max_fds = TRAN_MAX_FDS;
    }
    /* Runs of eventfds (at most max_fds a message) and runs of -1. */
    for (done = 0; done < count; done += n) {
        bool assign = fds != NULL && fds[done] >= 0;

        n = 1;
        while (done + n < count &&
               (assign ? n < max_fds && fds[done + n] >= 0
                       : fds == NULL || fds[done + n] < 0)) {
            n++;
        }
        ret = set_irqs_msg(c, index, flags, start + done, n,
                           assign ? fds + done : NULL, assign ? n : 0, NULL);
        if (ret < 0) {
            return fail(ret);
        }
    }
    return 0;
}

VFU_EXPORT int64_t
vfu_client_wait_irq(int eventfd, int timeout_ms)
{
    struct pollfd pfd = { .fd = eventfd, .events = POLLIN };
    uint64_t n;
    int ret;

    do {
        ret = poll(&pfd, 1, timeout_ms);
    } while (ret < 0 && errno == EINTR);
    if (ret <= 0) {
        return ret;
    }
    if (read(eventfd, &n, sizeof(n)) != (ssize_t)sizeof(n)) {
        return errno == EAGAIN ? 0 : -1;
    }
    return n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}
