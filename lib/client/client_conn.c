/*
 * The client's connection layer: receiving whole messages (growing the
 * receive buffer as they need), sending commands, waiting for a reply with
 * the request's deadline, the requests given up on, the socket timeouts,
 * what the server announced, the raw calls, and vfu_client_serve(). A
 * message the server sends that is not the awaited reply goes to the
 * handler the library plugged in with client_on_request() (client.c plugs
 * in client_dma.c's), or is answered as a protocol fault.
 *
 * Receive buffer: it starts at VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE plus
 * CLIENT_RX_SLACK, enough for the largest reply to a default-sized transfer
 * without ever reallocating. When the header of an incoming message announces
 * more than the buffer holds, the buffer grows (once, to that size plus
 * slack), up to CLIENT_RX_MAX: the reply to a REGION_READ of the largest
 * max_data_xfer_size a server may announce. A message bigger than that is
 * skipped by tran.c and reported as EMSGSIZE.
 *
 * The raw calls (vfu_client_send/request) check nothing.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

/* --- Receiving --- */

/*
 * Grows the receive buffer when the next message's header says it will not
 * fit. tran_rx keeps offsets, not pointers, so a realloc() is safe at any
 * time between messages.
 */
static int
rx_make_room(struct tran_rx *rx)
{
    struct vfio_user_header hdr;
    size_t cap;
    uint8_t *buf;

    if (rx->skip > 0 || rx->end - rx->start < HDR_SIZE) {
        return 0;
    }
    memcpy(&hdr, rx->buf + rx->start, HDR_SIZE);
    if (hdr.msg_size <= rx->cap || hdr.msg_size > CLIENT_RX_MAX) {
        return 0;   /* fits, or tran.c skips it as oversized */
    }
    cap = (size_t)hdr.msg_size + CLIENT_RX_SLACK;
    if (cap > CLIENT_RX_MAX) {
        cap = CLIENT_RX_MAX;
    }
    buf = realloc(rx->buf, cap);
    if (buf == NULL) {
        return -ENOMEM;
    }
    rx->buf = buf;
    rx->cap = cap;
    return 0;
}

/*
 * Blocks until the next whole message is there, or the deadline of the
 * request under way. Returns 0 with @msg filled (its fds are the
 * caller's), or -errno: -ENOTCONN when the server closed, -ETIMEDOUT.
 * A receive that returns for SO_RCVTIMEO's tick (or a few trickled bytes)
 * only makes us look at the deadline again.
 */
int
next_msg(struct vfu_client *c, struct tran_msg *msg)
{
    for (;;) {
        int ret = rx_make_room(&c->rx);
        if (ret < 0) {
            return ret;
        }
        if (tran_rx_next(&c->rx, msg) == 1) {
            return 0;
        }
        if (c->deadline != 0 && vfu_now_ms() >= c->deadline) {
            return -ETIMEDOUT;
        }
        ssize_t n = tran_rx_fill(&c->rx, c->fd, TRAN_RX_BLOCK);
        if (n == -EAGAIN && c->deadline != 0) {
            continue;
        }
        if (n < 0) {
            return (int)n;
        }
    }
}

void
abandon(struct vfu_client *c, uint16_t id)
{
    c->abandoned[c->nr_abandoned++ % CLIENT_MAX_ABANDONED] = id;
}

/* Forgets @id if we gave up on it; whether we had. */
static bool
forget_abandoned(struct vfu_client *c, uint16_t id)
{
    unsigned n = c->nr_abandoned < CLIENT_MAX_ABANDONED ?
                 c->nr_abandoned : CLIENT_MAX_ABANDONED;

    for (unsigned i = 0; i < n; i++) {
        if (c->abandoned[i] == id) {
            /* The slot gets an id no reply will match soon. */
            c->abandoned[i] = (uint16_t)(c->next_id - 1 - CLIENT_MAX_ABANDONED);
            return true;
        }
    }
    return false;
}

/*
 * Hands a message's fds to the caller: up to *nr into @fds (when both are
 * given), closing the rest; *nr becomes the number stored.
 */
void
give_fds(struct tran_msg *msg, int *fds, size_t *nr)
{
    size_t cap = (fds != NULL && nr != NULL) ? *nr : 0;
    size_t n = 0;

    for (size_t i = 0; i < msg->nr_fds; i++) {
        if (n < cap) {
            fds[n++] = msg->fds[i];
        } else if (msg->fds[i] >= 0) {
            close(msg->fds[i]);
        }
        msg->fds[i] = -1;
    }
    msg->nr_fds = 0;
    if (nr != NULL) {
        *nr = n;
    }
}

/*
 * A message from the server that is not the reply we are waiting for.
 *
 * A command the library's handler takes (client_on_request(): DMA_READ
 * and DMA_WRITE) is served; that is not a fault even when the answer is an
 * error. Any other command that wants a reply gets an error reply (so a
 * server blocked on it does not hang) and, like a stray reply, counts as a
 * protocol fault.
 */
static int
handle_server_msg(struct vfu_client *c, struct tran_msg *msg)
{
    if (!msg->malformed && tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_REPLY &&
        forget_abandoned(c, msg->hdr.msg_id)) {
        tran_msg_close_fds(msg);    /* the late reply to a request we left */
        return 0;
    }
    if (!msg->malformed && tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_COMMAND &&
        c->on_request != NULL && c->on_request(c, msg)) {
        return 0;
    }
    tran_msg_close_fds(msg);
    if (msg->malformed || msg->oversized) {
        return -EPROTO;
    }
    if (tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_COMMAND &&
        !tran_hdr_no_reply(&msg->hdr)) {
        struct vfio_user_header err;

        tran_hdr_init_error(&err, &msg->hdr, EOPNOTSUPP);
        (void)client_send(c, client_send_deadline(c), &err, NULL, 0, NULL, 0);
    }
    return -EPROTO;
}

void
client_on_request(struct vfu_client *c, client_request_fn *fn)
{
    c->on_request = fn;
}

/* The errno an error reply carries, as a negative errno. */
static int
reply_errno(const struct vfio_user_header *hdr)
{
    /* 0 or beyond any errno (a negation that would overflow): EIO. */
    return hdr->error_no != 0 && hdr->error_no < 4096 ?
           -(int)hdr->error_no : -EIO;
}

/*
 * Waits for the reply to command @cmd sent as @id. Returns 0 with @reply
 * filled (payload valid until the next receive; fds owned by @reply), or
 * -errno: the error reply's errno (EIO for none, or one out of range),
 * -EPROTO for a reply that does not match (command, flags, lost fds) or
 * when other messages came first, -EMSGSIZE for a reply too big to hold,
 * -ETIMEDOUT past the deadline, -ENOTCONN when the server left.
 *
 * Other messages are consumed on the way and the wait goes on until the
 * awaited reply arrives, so that the next request is not answered by this
 * one's reply; a request given up on (a timeout) has its reply dropped
 * when it comes.
 */
int
wait_reply(struct vfu_client *c, uint16_t id, uint16_t cmd,
           struct tran_msg *reply)
{
    int fault = 0;

    for (;;) {
        int ret = next_msg(c, reply);
        if (ret < 0) {
            abandon(c, id);
            return ret;
        }
        if (reply->malformed) {
            /* msg_size below a header: the stream cannot be trusted. */
            tran_msg_close_fds(reply);
            return -EPROTO;
        }
        if (tran_hdr_type(&reply->hdr) != VFIO_USER_F_TYPE_REPLY ||
            reply->hdr.msg_id != id) {
            ret = handle_server_msg(c, reply);
            if (ret < 0 && fault == 0) {
                fault = ret;
            }
            continue;
        }
        if (fault != 0) {
            /* keep the first fault */
        } else if (reply->hdr.cmd != cmd || reply->fds_lost ||
                   (reply->hdr.flags & ~(VFIO_USER_F_TYPE_MASK |
                                         VFIO_USER_F_ERROR))) {
            fault = -EPROTO;
        } else if (reply->oversized) {
            fault = -EMSGSIZE;
        } else if (tran_hdr_error(&reply->hdr)) {
            fault = reply_errno(&reply->hdr);
        }
        if (fault != 0) {
            tran_msg_close_fds(reply);
        }
        return fault;
    }
}

/* --- Sending --- */

/* A request starts: the time its reply may take runs from now. */
static void
start_deadline(struct vfu_client *c)
{
    c->deadline = client_send_deadline(c);
    c->rx.deadline = c->deadline;
}

int
client_send(struct vfu_client *c, int64_t deadline,
            struct vfio_user_header *hdr, const struct iovec *iov,
            size_t iovcnt, const int *fds, size_t nr_fds)
{
    int ret = tran_send(c->fd, deadline, hdr, iov, iovcnt, fds, nr_fds);

    if (ret < 0 && ret != -EINVAL) {
        /* Part of it may be out: what we sent next would be garbage. */
        (void)shutdown(c->fd, SHUT_RDWR);
    }
    return ret;
}

/* Sends a command; its msg_id is returned in *id. Returns 0 or -errno. */
int
send_cmd(struct vfu_client *c, uint16_t cmd, bool no_reply,
         const struct iovec *iov, size_t iovcnt, const int *fds,
         size_t nr_fds, uint16_t *id)
{
    struct vfio_user_header hdr;
    int ret;

    *id = c->next_id++;
    (void)forget_abandoned(c, *id);     /* a reply with this id is ours now */
    start_deadline(c);
    tran_hdr_init(&hdr, *id, cmd, VFIO_USER_F_TYPE_COMMAND, no_reply);
    ret = client_send(c, c->deadline, &hdr, iov, iovcnt, fds, nr_fds);
    if (ret == 0) {
        c->requests++;
    }
    return ret;
}

/* Sends a command and waits for its reply (see wait_reply()). */
int
do_request(struct vfu_client *c, uint16_t cmd, const struct iovec *iov,
           size_t iovcnt, const int *fds, size_t nr_fds,
           struct tran_msg *reply)
{
    uint16_t id;
    int ret = send_cmd(c, cmd, false, iov, iovcnt, fds, nr_fds, &id);

    return ret < 0 ? ret : wait_reply(c, id, cmd, reply);
}

/*
 * The typed calls: a command whose reply carries no fds and @min to @max
 * payload bytes (else -EPROTO, the fds closed). With @posted the command
 * carries NO_REPLY and 1 is returned right after the send.
 */
int
typed_request(struct vfu_client *c, uint16_t cmd, bool posted,
              const struct iovec *iov, size_t iovcnt, size_t min, size_t max,
              struct tran_msg *reply)
{
    uint16_t id;
    int ret = send_cmd(c, cmd, posted, iov, iovcnt, NULL, 0, &id);

    if (ret < 0 || posted) {
        return ret < 0 ? ret : 1;
    }
    ret = wait_reply(c, id, cmd, reply);
    if (ret < 0) {
        return ret;
    }
    ret = reply->nr_fds > 0 || reply->len < min || reply->len > max ?
          -EPROTO : 0;
    tran_msg_close_fds(reply);
    return ret;
}

int
client_apply_timeouts(struct vfu_client *c)
{
    struct timeval rcv = { 0 };

    if (c->timeout_ms >= 0) {
        int tick = c->timeout_ms / CLIENT_TIMEOUT_TICKS;

        tick = tick > 0 ? tick : 1;
        rcv = (struct timeval){ tick / 1000, (tick % 1000) * 1000 };
    }
    /* Sends need nothing of the socket: they carry the deadline. */
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)) < 0) {
        return -errno;
    }
    return 0;
}

void
client_set_info(struct vfu_client *c, uint16_t major, uint16_t minor,
         const struct vfu_caps *caps)
{
    c->info = (struct vfu_client_server_info){
        .major = major, .minor = minor,
        .max_msg_fds = caps->max_msg_fds,
        .max_data_xfer_size = caps->max_data_xfer_size,
        .max_dma_maps = caps->max_dma_maps,
        .pgsizes = caps->pgsizes,
        .write_multiple = caps->write_multiple,
    };
}

VFU_EXPORT int
vfu_client_set_timeout(vfu_client_t *c, int timeout_ms)
{
    int saved, ret;

    if (c == NULL || timeout_ms < -1) {
        return fail(-EINVAL);
    }
    saved = c->timeout_ms;
    c->timeout_ms = timeout_ms;
    ret = client_apply_timeouts(c);
    if (ret < 0) {
        c->timeout_ms = saved;
        return fail(ret);
    }
    return 0;
}

VFU_EXPORT int
vfu_client_fd(vfu_client_t *c)
{
    return c != NULL ? c->fd : fail(-EINVAL);
}

VFU_EXPORT const struct vfu_client_server_info *
vfu_client_server_info(vfu_client_t *c)
{
    return c != NULL ? &c->info : NULL;
}

VFU_EXPORT void
vfu_client_get_stats(vfu_client_t *c, struct vfu_client_stats *stats)
{
    if (c == NULL || stats == NULL) {
        return;
    }
    stats->requests = c->requests;
    stats->recv_calls = c->rx.nr_recv;
    stats->dma_served = c->dma_served;
}

/* --- Raw access --- */

VFU_EXPORT int
vfu_client_send(vfu_client_t *c, uint16_t cmd, uint32_t flags,
                const void *payload, size_t len, const int *fds, size_t nr_fds,
                uint16_t *msg_id)
{
    struct vfio_user_header hdr;
    struct iovec iov = iov_of(payload, len);
    uint16_t id;
    int ret;

    if (c == NULL || (payload == NULL && len > 0)) {
        return fail(-EINVAL);
    }
    id = c->next_id++;
    (void)forget_abandoned(c, id);
    start_deadline(c);
    tran_hdr_init(&hdr, id, cmd, flags & VFIO_USER_F_TYPE_MASK,
                  (flags & VFIO_USER_F_NO_REPLY) != 0);
    /* Every bit as given, reserved ones included: tests send odd flags. */
    memcpy(&hdr.flags, &flags, sizeof(flags));
    ret = client_send(c, c->deadline, &hdr, &iov, 1, fds, nr_fds);
    if (ret < 0) {
        return fail(ret);
    }
    c->requests++;
    if (msg_id != NULL) {
        *msg_id = id;
    }
    return 0;
}

VFU_EXPORT ssize_t
vfu_client_recv(vfu_client_t *c, struct vfio_user_header *hdr,
                void *payload, size_t cap, int *fds, size_t *nr_fds)
{
    struct tran_msg msg;
    int ret;

    if (c == NULL || (payload == NULL && cap > 0)) {
        return fail(-EINVAL);
    }
    start_deadline(c);          /* a receive waits at most the timeout */
    ret = next_msg(c, &msg);
    if (ret < 0) {
        return fail(ret);
    }
    if (msg.malformed || msg.oversized || msg.fds_lost) {
        tran_msg_close_fds(&msg);
        return fail(msg.oversized ? -EMSGSIZE : -EPROTO);
    }
    if (hdr != NULL) {
        *hdr = msg.hdr;
    }
    if (cap > 0 && msg.len > 0) {
        memcpy(payload, msg.payload, msg.len < cap ? msg.len : cap);
    }
    give_fds(&msg, fds, nr_fds);
    return (ssize_t)msg.len;
}

VFU_EXPORT ssize_t
vfu_client_request(vfu_client_t *c, uint16_t cmd, const void *req,
                   size_t req_len, const int *fds, size_t nr_fds,
                   void *reply, size_t reply_cap, int *reply_fds,
                   size_t *nr_reply_fds)
{
    struct iovec iov = iov_of(req, req_len);
    struct tran_msg msg;
    int ret;

    if (c == NULL || (req == NULL && req_len > 0) ||
        (reply == NULL && reply_cap > 0)) {
        ret = -EINVAL;
    } else {
        ret = do_request(c, cmd, &iov, 1, fds, nr_fds, &msg);
    }
    if (ret < 0) {
        if (nr_reply_fds != NULL) {
            *nr_reply_fds = 0;
        }
        return fail(ret);
    }
    if (reply_cap > 0 && msg.len > 0) {
        memcpy(reply, msg.payload, msg.len < reply_cap ? msg.len : reply_cap);
    }
    give_fds(&msg, reply_fds, nr_reply_fds);
    return (ssize_t)msg.len;
}

VFU_EXPORT int
vfu_client_serve(vfu_client_t *c, int timeout_ms)
{
    int64_t deadline = vfu_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int served = 0, fault = 0;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    for (;;) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        struct tran_msg msg;
        int ret, wait;

        for (;;) {
            ret = rx_make_room(&c->rx);
            if (ret < 0) {
                return fail(ret);
            }
            if (tran_rx_next(&c->rx, &msg) != 1) {
                break;
            }
            if (tran_hdr_type(&msg.hdr) == VFIO_USER_F_TYPE_COMMAND &&
                !msg.malformed) {
                served++;
            }
            ret = handle_server_msg(c, &msg);   /* replies are stray here */
            if (ret < 0 && fault == 0) {
                fault = ret;
            }
        }
        if (fault != 0) {
            return fail(fault);
        }
        if (served > 0) {
            return served;
        }
        wait = timeout_ms < 0 ? -1 : (int)(deadline - vfu_now_ms());
        if (timeout_ms >= 0 && wait < 0) {
            wait = 0;
        }
        ret = poll(&p, 1, wait);
        if (ret < 0 && errno != EINTR) {
            return -1;
        }
        if (ret == 0) {
            return 0;
        }
        if (ret > 0) {
            ssize_t n = tran_rx_fill(&c->rx, c->fd, TRAN_RX_BLOCK);
            if (n < 0) {
                return fail((int)n);
            }
        }
    }
}
