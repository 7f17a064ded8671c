/*
 * Message framing on a UNIX stream socket (see tran.h). Receiving reads as
 * much as the kernel has into one buffer, so a burst of small requests costs
 * one recvmsg(); a message larger than one read is completed by further
 * reads. File descriptors arrive with the first bytes of the sendmsg() that
 * carried them, and the kernel ends a read right after them, so they belong
 * to the last message that starts inside that read.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "tran.h"

#define HDR_SIZE sizeof(struct vfio_user_header)

int
tran_rx_init(struct tran_rx *rx, size_t cap)
{
    memset(rx, 0, sizeof(*rx));
    rx->buf = malloc(cap);
    if (rx->buf == NULL) {
        return -ENOMEM;
    }
    rx->cap = cap;
    rx->small_cap = cap;
    rx->max_msg = SIZE_MAX;
    return 0;
}

int
tran_rx_init_pooled(struct tran_rx *rx, size_t small_cap,
                    struct tran_pool *pool)
{
    int ret = tran_rx_init(rx, small_cap);

    if (ret == 0 && pool->size > small_cap) {
        rx->pool = pool;
    }
    return ret;
}

/* The largest message the buffers can hold. */
static size_t
rx_limit(const struct tran_rx *rx)
{
    return rx->pool != NULL ? rx->pool->size : rx->cap;
}

/* A new buffer: one of the pool's, or a small one of ours. */
static uint8_t *
buf_new(struct tran_rx *rx, bool big)
{
    uint8_t *buf;

    if (big) {
        return tran_pool_get(rx->pool);
    }
    if (rx->spare != NULL) {
        buf = rx->spare;
        rx->spare = NULL;
        return buf;
    }
    return malloc(rx->pool != NULL ? rx->small_cap : rx->cap);
}

/* A buffer nobody needs any more; one small buffer is kept for reuse. */
static void
buf_drop(struct tran_rx *rx, uint8_t *buf, bool big)
{
    if (big) {
        tran_pool_put(rx->pool, buf);
    } else if (rx->pool != NULL && rx->spare == NULL) {
        rx->spare = buf;
    } else {
        free(buf);
    }
}

static void
close_fd_set(struct tran_fd_set *set)
{
    for (size_t i = 0; i < set->nr; i++) {
        close(set->fds[i]);
    }
    set->nr = 0;
}

static void
drop_fd_set(struct tran_rx *rx, size_t i)
{
    rx->fd_sets[i] = rx->fd_sets[rx->nr_fd_sets - 1];
    rx->nr_fd_sets--;
}

void
tran_rx_reset(struct tran_rx *rx)
{
    for (size_t i = 0; i < rx->nr_retired; i++) {
        buf_drop(rx, rx->retired[i], rx->retired_big[i]);
    }
    rx->nr_retired = 0;
    rx->hold = 0;
    for (size_t i = 0; i < rx->nr_fd_sets; i++) {
        close_fd_set(&rx->fd_sets[i]);
    }
    rx->nr_fd_sets = 0;
    rx->start = rx->end = 0;
    rx->skip = 0;
    tran_rx_trim(rx);
}

void
tran_rx_fini(struct tran_rx *rx)
{
    tran_rx_reset(rx);
    if (rx->buf != NULL) {
        buf_drop(rx, rx->buf, rx->big);
    }
    free(rx->spare);
    rx->spare = NULL;
    rx->buf = NULL;
}

bool
tran_rx_pending(const struct tran_rx *rx)
{
    return rx->end > rx->start || rx->skip > 0;
}

int
tran_rx_hold(struct tran_rx *rx)
{
    if (rx->hold == TRAN_MAX_HOLDS) {
        return -ENOBUFS;
    }
    rx->pins[rx->hold++] = rx->buf;
    return 0;
}

static bool
pinned(const struct tran_rx *rx, const uint8_t *buf)
{
    for (unsigned i = 0; i < rx->hold; i++) {
        if (rx->pins[i] == buf) {
            return true;
        }
    }
    return false;
}

void
tran_rx_release(struct tran_rx *rx)
{
    uint8_t *buf;

    if (rx->hold == 0) {
        return;
    }
    buf = rx->pins[--rx->hold];
    if (buf == rx->buf || pinned(rx, buf)) {
        return;
    }
    /* A retired buffer nobody pins any more. */
    for (size_t i = 0; i < rx->nr_retired; i++) {
        if (rx->retired[i] == buf) {
            buf_drop(rx, buf, rx->retired_big[i]);
            rx->nr_retired--;
            rx->retired[i] = rx->retired[rx->nr_retired];
            rx->retired_big[i] = rx->retired_big[rx->nr_retired];
            return;
        }
    }
}

/*
 * Whether an elastic receiver needs a big buffer for what it holds: more
 * than a small buffer takes, or the start of a message that size (one
 * that will be refused as oversized is skipped: no buffer needed).
 */
static bool
want_big(const struct tran_rx *rx)
{
    size_t avail = rx->end - rx->start;
    struct vfio_user_header hdr;

    if (rx->pool == NULL) {
        return false;
    }
    if (avail > rx->small_cap) {
        return true;
    }
    if (rx->skip > 0 || avail < HDR_SIZE) {
        return false;
    }
    memcpy(&hdr, rx->buf + rx->start, HDR_SIZE);
    return hdr.msg_size > rx->small_cap && hdr.msg_size <= rx->pool->size &&
           hdr.msg_size <= rx->max_msg;
}

/*
 * Makes room for the next receive by moving the unread bytes to the front,
 * into a big buffer when the message they begin needs one, or back into a
 * small one once it does not. In a buffer a hold pins, the bytes before
 * them belong to messages being served, so nothing moves until it is full;
 * then the unread bytes go to a new buffer and the pinned one is retired
 * until its hold is released.
 */
static int
compact(struct tran_rx *rx)
{
    size_t i = 0;
    uint8_t *dst = rx->buf;
    bool keep = pinned(rx, rx->buf);
    bool big = rx->pool != NULL ? want_big(rx) : rx->big;

    if (big == rx->big &&
        (rx->start == 0 || (keep && rx->end < rx->cap))) {
        return 0;
    }
    if (keep || big != rx->big) {
        if (keep && rx->nr_retired == TRAN_MAX_HOLDS) {
            return -ENOBUFS;
        }
        dst = buf_new(rx, big);
        if (dst == NULL && !big && !keep) {
            /* No small buffer: the big one will do. */
            dst = rx->buf;
            big = true;
        } else if (dst == NULL) {
            return -ENOBUFS;
        }
    }
    while (i < rx->nr_fd_sets) {
        if (rx->fd_sets[i].off < rx->start) {
            /* Its message is gone: nobody will take these fds. */
            close_fd_set(&rx->fd_sets[i]);
            drop_fd_set(rx, i);
            continue;
        }
        rx->fd_sets[i].off -= rx->start;
        i++;
    }
    if (rx->end > rx->start) {
        memmove(dst, rx->buf + rx->start, rx->end - rx->start);
    }
    if (dst != rx->buf) {
        if (keep) {
            rx->retired[rx->nr_retired] = rx->buf;
            rx->retired_big[rx->nr_retired++] = rx->big;
        } else {
            buf_drop(rx, rx->buf, rx->big);
        }
        rx->buf = dst;
        rx->big = big;
        if (rx->pool != NULL) {
            rx->cap = big ? rx->pool->size : rx->small_cap;
        }
    }
    rx->end -= rx->start;
    rx->start = 0;
    return 0;
}

void
tran_rx_trim(struct tran_rx *rx)
{
    if (rx->pool == NULL) {
        return;
    }
    if (rx->big && !pinned(rx, rx->buf) && !want_big(rx)) {
        (void)compact(rx);      /* on failure it stays big: harmless */
    }
    if (!rx->big && rx->spare != NULL) {
        free(rx->spare);
        rx->spare = NULL;
    }
}

/* Offset of the last message that starts in [from, to), or SIZE_MAX. */
static size_t
last_msg_start(const struct tran_rx *rx, size_t from, size_t to)
{
    uint64_t off = rx->start + rx->skip;
    size_t owner = SIZE_MAX;

    while (off < to) {
        struct vfio_user_header hdr;

        if (off >= from) {
            owner = off;
        }
        if (off + HDR_SIZE > to) {
            break;
        }
        memcpy(&hdr, rx->buf + off, sizeof(hdr));
        off += hdr.msg_size < HDR_SIZE ? HDR_SIZE : hdr.msg_size;
    }
    return owner;
}

static void
store_fds(struct tran_rx *rx, size_t from, int *fds, size_t nr, bool lost)
{
    size_t owner = last_msg_start(rx, from, rx->end);

    if (owner == SIZE_MAX || rx->nr_fd_sets == TRAN_MAX_FD_SETS) {
        for (size_t i = 0; i < nr; i++) {
            close(fds[i]);
        }
        return;
    }
    struct tran_fd_set *set = &rx->fd_sets[rx->nr_fd_sets++];
    set->off = owner;
    memcpy(set->fds, fds, nr * sizeof(int));
    set->nr = nr;
    set->lost = lost;
}

/*
 * One read from a stream that is not a socket (VFU_TRANS_PIPE's standard
 * input): no fds, and non-blocking only by asking poll() first, since the
 * fd's flags are shared with whoever else holds it.
 */
static ssize_t
read_pipe(int fd, struct iovec *iov, size_t iovcnt, int flags)
{
    ssize_t n;

    if (flags & MSG_DONTWAIT) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 0) == 0) {
            return -EAGAIN;
        }
    }
    do {
        n = readv(fd, iov, (int)iovcnt);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    return n == 0 ? -ENOTCONN : n;
}

/*
 * One recvmsg() into @iov; received fds go to @fds (closed beyond
 * TRAN_MAX_FDS). Returns bytes received or -errno (-ENOTCONN at EOF).
 */
static ssize_t
recv_some(int sock, struct iovec *iov, size_t iovcnt, int flags, bool restart,
          int *fds, size_t *nr_fds, bool *ctrunc)
{
    union {
        char buf[CMSG_SPACE(TRAN_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { 0 };
    ssize_t n;

    mh.msg_iov = iov;
    mh.msg_iovlen = iovcnt;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    *nr_fds = 0;
    *ctrunc = false;

    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR && restart);

    if (n < 0) {
        if (errno == EWOULDBLOCK || errno == EAGAIN) {
            return -EAGAIN;
        }
        if (errno == EINTR) {
            return -EINTR;
        }
        if (errno == ENOTSOCK) {
            return read_pipe(sock, iov, iovcnt, flags);
        }
        return (errno == ECONNRESET || errno == EPIPE) ? -ENOTCONN : -errno;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
         c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < cnt && *nr_fds < TRAN_MAX_FDS; i++) {
            memcpy(&fds[(*nr_fds)++], CMSG_DATA(c) + i * sizeof(int),
                   sizeof(int));
        }
    }
    *ctrunc = (mh.msg_flags & MSG_CTRUNC) != 0;
    if (n == 0) {
        for (size_t i = 0; i < *nr_fds; i++) {
            close(fds[i]);
        }
        return -ENOTCONN;
    }
    return n;
}

/*
 * Bytes still missing for the next message: the rest of its header, then
 * the rest of its body, or what is left of one being skipped. Fds come
 * with a message's first bytes, so reading up to here never splits a
 * message from its fds.
 */
static size_t
next_msg_need(const struct tran_rx *rx)
{
    size_t avail = rx->end - rx->start;
    struct vfio_user_header hdr;

    if (rx->skip > 0) {
        return rx->skip > SIZE_MAX - avail ? SIZE_MAX : (size_t)rx->skip;
    }
    if (avail < HDR_SIZE) {
        return HDR_SIZE - avail;
    }
    memcpy(&hdr, rx->buf + rx->start, HDR_SIZE);
    return hdr.msg_size > avail ? hdr.msg_size - avail : 1;
}

ssize_t
tran_rx_fill(struct tran_rx *rx, int sock, unsigned how)
{
    struct iovec iov;
    int fds[TRAN_MAX_FDS];
    size_t nr_fds;
    bool ctrunc;
    ssize_t n;

    if (compact(rx) < 0 || rx->end == rx->cap) {
        return -ENOBUFS;
    }
    iov.iov_base = rx->buf + rx->end;
    iov.iov_len = rx->cap - rx->end;
    if (how & TRAN_RX_ONE_MSG) {
        size_t want = next_msg_need(rx);
        if (want < iov.iov_len) {
            iov.iov_len = want;
        }
    }
    n = recv_some(sock, &iov, 1, (how & TRAN_RX_BLOCK) ? 0 : MSG_DONTWAIT,
                  !(how & TRAN_RX_EINTR), fds, &nr_fds, &ctrunc);
    if (n < 0) {
        return n;
    }
    size_t from = rx->end;
    rx->end += (size_t)n;
    rx->nr_recv++;
    if (nr_fds > 0 || ctrunc) {
        store_fds(rx, from, fds, nr_fds, ctrunc);
    }
    return n;
}

int
tran_rx_direct(struct tran_rx *rx, int sock,
               const struct vfio_user_header *expect, size_t head_len,
               void *dst, struct tran_msg *msg)
{
    size_t head = HDR_SIZE + head_len;
    size_t total = expect->msg_size;
    struct iovec iov[2];
    struct vfio_user_header hdr;
    int fds[TRAN_MAX_FDS];
    size_t nr_fds;
    bool ctrunc;
    ssize_t n;

    /* A held buffer keeps the bytes before start: it cannot take these. */
    if (tran_rx_pending(rx) || rx->nr_fd_sets > 0 || rx->hold > 0) {
        return 0;
    }
    compact(rx);
    if (total < head || total > rx->cap) {
        return 0;
    }
    iov[0] = (struct iovec){ rx->buf, head };
    iov[1] = (struct iovec){ dst, total - head };
    n = recv_some(sock, iov, 2, 0, true, fds, &nr_fds, &ctrunc);
    if (n < 0) {
        return (int)n;
    }
    rx->nr_recv++;
    if ((size_t)n >= HDR_SIZE) {
        memcpy(&hdr, rx->buf, HDR_SIZE);
    }
    if ((size_t)n < HDR_SIZE || nr_fds > 0 || ctrunc ||
        hdr.msg_id != expect->msg_id || hdr.cmd != expect->cmd ||
        hdr.msg_size != total || tran_hdr_type(&hdr) != VFIO_USER_F_TYPE_REPLY ||
        tran_hdr_error(&hdr)) {
        /* Not it: put everything where tran_rx_next() will look. */
        if ((size_t)n > head) {
            memcpy(rx->buf + head, dst, (size_t)n - head);
        }
        rx->end = (size_t)n;
        if (nr_fds > 0 || ctrunc) {
            store_fds(rx, 0, fds, nr_fds, ctrunc);
        }
        return 0;
    }

    /* The expected reply: wait for all of the rest in one call. */
    while ((size_t)n < total) {
        size_t got = (size_t)n;
        struct iovec rest[2];
        size_t nv = 0;

        if (got < head) {
            rest[nv++] = (struct iovec){ rx->buf + got, head - got };
            rest[nv++] = (struct iovec){ dst, total - head };
        } else {
            rest[nv++] = (struct iovec){ (uint8_t *)dst + (got - head),
                                         total - got };
        }
        ssize_t m = recv_some(sock, rest, nv, MSG_WAITALL, true, fds,
                              &nr_fds, &ctrunc);
        if (m == -EAGAIN && rx->deadline != 0 &&
            vfu_now_ms() < rx->deadline) {
            continue;           /* SO_RCVTIMEO's tick, not the deadline */
        }
        if (m < 0) {
            /*
             * Out of time (or of the peer): what came stays buffered as
             * the start of a message, so the stream stays in step.
             */
            if ((size_t)n > head) {
                memcpy(rx->buf + head, dst, (size_t)n - head);
            }
            rx->end = (size_t)n;
            return m == -EAGAIN && rx->deadline != 0 ? -ETIMEDOUT : (int)m;
        }
        for (size_t i = 0; i < nr_fds; i++) {
            close(fds[i]);      /* fds belong to a message's first bytes */
        }
        rx->nr_recv++;
        n += m;
    }
    memset(msg, 0, sizeof(*msg));
    msg->hdr = hdr;
    msg->payload = rx->buf + HDR_SIZE;
    msg->len = total - HDR_SIZE;
    return 1;
}

/* Hands the fds that came with the message at @off to @msg. */
static void
take_fds(struct tran_rx *rx, size_t off, struct tran_msg *msg)
{
    for (size_t i = 0; i < rx->nr_fd_sets; i++) {
        struct tran_fd_set *set = &rx->fd_sets[i];
        if (set->off != off) {
            continue;
        }
        memcpy(msg->fds, set->fds, set->nr * sizeof(int));
        msg->nr_fds = set->nr;
        msg->fds_lost = set->lost;
        drop_fd_set(rx, i);
        return;
    }
}

int
tran_rx_next(struct tran_rx *rx, struct tran_msg *msg)
{
    size_t avail;

    if (rx->skip > 0) {
        size_t drop = rx->end - rx->start;
        if (drop > rx->skip) {
            drop = rx->skip;
        }
        rx->start += drop;
        rx->skip -= drop;
        if (rx->skip > 0) {
            return 0;
        }
    }

    avail = rx->end - rx->start;
    if (avail < HDR_SIZE) {
        return 0;
    }

    memset(msg, 0, offsetof(struct tran_msg, fds));
    msg->nr_fds = 0;
    msg->malformed = msg->oversized = msg->fds_lost = false;
    memcpy(&msg->hdr, rx->buf + rx->start, HDR_SIZE);
    size_t off = rx->start;
    uint32_t size = msg->hdr.msg_size;

    if (size < HDR_SIZE) {
        msg->malformed = true;
        rx->start += HDR_SIZE;
    } else if (size > rx_limit(rx) || size > rx->max_msg) {
        size_t drop = avail < size ? avail : size;
        msg->oversized = true;          /* no payload: see tran.h */
        rx->start += drop;
        rx->skip = size - drop;
    } else if (avail < size) {
        return 0;
    } else {
        msg->payload = rx->buf + off + HDR_SIZE;
        msg->len = size - HDR_SIZE;
        rx->start += size;
    }
    take_fds(rx, off, msg);
    return 1;
}

void
tran_msg_close_fds(struct tran_msg *msg)
{
    for (size_t i = 0; i < msg->nr_fds; i++) {
        if (msg->fds[i] >= 0) {
            close(msg->fds[i]);
        }
        msg->fds[i] = -1;
    }
    msg->nr_fds = 0;
}

void
tran_hdr_init(struct vfio_user_header *hdr, uint16_t msg_id, uint16_t cmd,
              unsigned type, bool no_reply)
{
    memset(hdr, 0, sizeof(*hdr));
    hdr->msg_id = msg_id;
    hdr->cmd = cmd;
    hdr->flags = type & VFIO_USER_F_TYPE_MASK;
    if (no_reply) {
        hdr->flags |= VFIO_USER_F_NO_REPLY;
    }
}

int
tran_send_error(int sock, int64_t deadline,
                const struct vfio_user_header *req, int err)
{
    struct vfio_user_header hdr;

    tran_hdr_init_error(&hdr, req, err);
    return tran_send(sock, deadline, &hdr, NULL, 0, NULL, 0);
}

/* Waits until @sock takes more, or -ETIMEDOUT once @deadline has passed. */
static int
wait_writable(int sock, int64_t deadline)
{
    struct pollfd p = { .fd = sock, .events = POLLOUT };
    int64_t left = deadline - vfu_now_ms();

    if (left <= 0) {
        return -ETIMEDOUT;
    }
    if (poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left) < 0) {
        return -errno;              /* EINTR: the caller tries again */
    }
    return 0;
}

void
tran_hdr_init_error(struct vfio_user_header *hdr,
                    const struct vfio_user_header *req, int err)
{
    tran_hdr_init(hdr, req->msg_id, req->cmd, VFIO_USER_F_TYPE_REPLY, false);
    hdr->flags |= VFIO_USER_F_ERROR;
    hdr->error_no = (uint32_t)err;
}

#define TRAN_MAX_IOV 8

int
tran_send(int sock, int64_t deadline, struct vfio_user_header *hdr,
          const struct iovec *iov, size_t iovcnt, const int *fds,
          size_t nr_fds)
{
    union {
        char buf[CMSG_SPACE(TRAN_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec v[TRAN_MAX_IOV + 1];
    struct msghdr mh = { 0 };
    size_t total = HDR_SIZE;
    size_t nv = 1;
    /*
     * With a deadline nothing blocks in the kernel, where a peer that
     * reads a little now and then could hold one sendmsg() for as long as
     * it likes: a full socket is waited for with poll(), up to the deadline.
     */
    int flags = MSG_NOSIGNAL | (deadline != 0 ? MSG_DONTWAIT : 0);

    if (iovcnt > TRAN_MAX_IOV || nr_fds > TRAN_MAX_FDS) {
        return -EINVAL;
    }
    v[0].iov_base = hdr;
    v[0].iov_len = HDR_SIZE;
    for (size_t i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0) {
            continue;
        }
        v[nv++] = iov[i];
        total += iov[i].iov_len;
    }
    if (total > UINT32_MAX) {
        return -EINVAL;
    }
    hdr->msg_size = (uint32_t)total;

    mh.msg_iov = v;
    mh.msg_iovlen = nv;
    if (nr_fds > 0) {
        struct cmsghdr *c;
        memset(ctl.buf, 0, sizeof(ctl.buf));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nr_fds * sizeof(int));
    }

    while (total > 0) {
        ssize_t n = sendmsg(sock, &mh, flags);
        if (n < 0 && errno == ENOTSOCK) {
            /* A pipe (VFU_TRANS_PIPE's standard output) carries no fds. */
            if (mh.msg_control != NULL) {
                return -EINVAL;
            }
            n = writev(sock, mh.msg_iov, (int)mh.msg_iovlen);
        }
        if (n < 0) {
            int err = errno;

            if (err == EAGAIN && deadline != 0) {
                err = -wait_writable(sock, deadline);
            }
            if (err == 0 || err == EINTR) {
                continue;
            }
            return (err == EPIPE || err == ECONNRESET) ? -ENOTCONN : -err;
        }
        total -= (size_t)n;
        /* Partial send: skip what went out; fds went with the first part. */
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        while (n > 0 && mh.msg_iovlen > 0) {
            if ((size_t)n >= mh.msg_iov->iov_len) {
                n -= (ssize_t)mh.msg_iov->iov_len;
                mh.msg_iov++;
                mh.msg_iovlen--;
            } else {
                mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
                mh.msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return 0;
}
