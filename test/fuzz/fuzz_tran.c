/*
 * Fuzzer of the framing layer (lib/common/tran.h) on a real socketpair: the input
 * is what a peer writes (raw bytes, well-formed headers, fds attached) and
 * when the reader fills, takes messages, holds and releases its buffer,
 * receives a reply directly into a caller's buffer, or changes its size
 * limit. A model of the byte stream says which message must come next and
 * whether it is malformed or oversized; a payload taken before a hold must
 * stay intact until that hold is released (tran_rx_hold() pins what was
 * received so far; a payload taken and not pinned is good only until the
 * next receive); every fd must be closed in the end. The reader is either
 * one buffer for good or elastic (a small buffer, and a big one borrowed
 * from a pool for larger messages, given back by tran_rx_trim() and every
 * receive): each big buffer must be back in the pool in the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fuzz.h"
#include "tran.h"

#define HDR     sizeof(struct vfio_user_header)
#define MAX_SENT (1u << 20)

/* The big buffers of an elastic reader: the largest message it takes. */
static struct tran_pool pool = TRAN_POOL_INIT(16384);

/* A payload a hold pins, to check until that hold is released. */
struct kept {
    const uint8_t *payload;
    size_t len;
    size_t stream_off;
    unsigned level;
};

static struct {
    int sock, peer;
    bool peer_shut;
    struct tran_rx rx;
    uint8_t *stream;            /* every byte the peer sent */
    size_t sent;
    size_t model;               /* where the next message starts in it */
    struct kept kept[64];
    size_t nr_kept;
    struct kept taken[64];      /* taken since the last receive, unpinned */
    size_t nr_taken;
} t;

static size_t
received(void)
{
    int queued = 0;

    (void)ioctl(t.sock, FIONREAD, &queued);
    return t.sent - (size_t)queued;
}

/* A blocking receive with nothing (or too little) there: end the stream. */
static ssize_t
hook_recvmsg(int fd, struct msghdr *msg, int flags)
{
    int queued = 0;
    size_t want = 1;

    if (fd != t.sock || (flags & MSG_DONTWAIT) || t.peer_shut) {
        return fz_real_recvmsg(fd, msg, flags);
    }
    if (flags & MSG_WAITALL) {
        want = 0;
        for (size_t i = 0; i < msg->msg_iovlen; i++) {
            want += msg->msg_iov[i].iov_len;
        }
    }
    (void)ioctl(t.sock, FIONREAD, &queued);
    if ((size_t)queued < want) {
        shutdown(t.peer, SHUT_WR);
        t.peer_shut = true;
    }
    return fz_real_recvmsg(fd, msg, flags);
}

static const struct fz_hooks hooks = { .recvmsg = hook_recvmsg };

/* The largest message the reader can take at all. */
static size_t
rx_limit(void)
{
    return t.rx.pool != NULL ? t.rx.pool->size : t.rx.cap;
}

/* A receive may move what no hold pins: those payloads are no more. */
static ssize_t
fill(void)
{
    t.nr_taken = 0;
    return tran_rx_fill(&t.rx, t.sock, 0);
}

static void
pump(void)
{
    (void)fill();
}

/* A hold that succeeds pins every payload taken since the last receive. */
static void
hold(void)
{
    if (tran_rx_hold(&t.rx) != 0) {
        return;
    }
    for (size_t i = 0; i < t.nr_taken && t.nr_kept < 64; i++) {
        t.kept[t.nr_kept] = t.taken[i];
        t.kept[t.nr_kept++].level = t.rx.hold;
    }
    t.nr_taken = 0;
}

static void
peer_send(const uint8_t *buf, size_t len, int *fds, size_t nr)
{
    size_t n;

    if (t.peer_shut || len == 0 || t.sent + len > MAX_SENT) {
        fz_close_fds(fds, nr);
        return;
    }
    n = fz_send_all(t.peer, buf, len, fds, nr, pump);
    memcpy(t.stream + t.sent, buf, n);
    t.sent += n;
    fz_close_fds(fds, nr);
}

/* The message the model expects next, checked against @msg. */
static void
model_take(const struct tran_msg *msg, bool direct)
{
    struct vfio_user_header hdr;
    uint32_t size;

    FZ_CHECK(t.model + HDR <= received(),
             "a message at %zu with only %zu bytes received", t.model,
             received());
    memcpy(&hdr, t.stream + t.model, HDR);
    FZ_CHECK(memcmp(&hdr, &msg->hdr, HDR) == 0, "header at %zu differs",
             t.model);
    size = hdr.msg_size;
    if (size < HDR) {
        FZ_CHECK(msg->malformed && !msg->oversized && msg->payload == NULL &&
                 msg->len == 0, "msg_size %u not malformed", size);
        t.model += HDR;
        return;
    }
    if (!direct && (size > rx_limit() || size > t.rx.max_msg)) {
        FZ_CHECK(msg->oversized && !msg->malformed && msg->payload == NULL &&
                 msg->len == 0, "msg_size %u not oversized", size);
        t.model += size;
        return;
    }
    FZ_CHECK(!msg->malformed && !msg->oversized && msg->len == size - HDR,
             "msg_size %u taken as %zu bytes", size, msg->len);
    FZ_CHECK(t.model + size <= received(), "message beyond what came");
    if (!direct) {
        FZ_CHECK(msg->len == 0 ||
                 memcmp(msg->payload, t.stream + t.model + HDR, msg->len) == 0,
                 "payload at %zu differs", t.model);
    }
    t.model += size;
}

/* When tran_rx_next() finds nothing, no whole message may be there. */
static void
model_none(void)
{
    struct vfio_user_header hdr;
    size_t have = received();

    if (t.model + HDR > have) {
        return;
    }
    memcpy(&hdr, t.stream + t.model, HDR);
    FZ_CHECK(!(hdr.msg_size < HDR || hdr.msg_size > rx_limit() ||
               hdr.msg_size > t.rx.max_msg ||
               t.model + hdr.msg_size <= have),
             "message at %zu of %u bytes received but not taken", t.model,
             hdr.msg_size);
}

static void
check_kept(void)
{
    for (size_t i = 0; i < t.nr_kept; i++) {
        const struct kept *k = &t.kept[i];
        FZ_CHECK(memcmp(k->payload, t.stream + k->stream_off, k->len) == 0,
                 "a held payload changed");
    }
}

static void
take_fds(struct tran_msg *msg)
{
    FZ_CHECK(msg->nr_fds <= TRAN_MAX_FDS, "%zu fds", msg->nr_fds);
    for (size_t i = 0; i < msg->nr_fds; i++) {
        FZ_CHECK(fcntl(msg->fds[i], F_GETFD) >= 0, "a closed fd handed over");
    }
    tran_msg_close_fds(msg);
}

static void
next_all(void)
{
    struct tran_msg msg;

    for (;;) {
        size_t at = t.model;

        if (tran_rx_next(&t.rx, &msg) != 1) {
            model_none();
            return;
        }
        model_take(&msg, false);
        take_fds(&msg);
        if (msg.len > 0 && t.nr_taken < 64) {
            t.taken[t.nr_taken++] = (struct kept){
                .payload = msg.payload, .len = msg.len,
                .stream_off = at + HDR,
            };
        }
    }
}

static void
direct(struct fz *in)
{
    struct vfio_user_header expect = { 0 };
    struct tran_msg msg;
    size_t head = fz_u8(in) % 48;
    uint8_t *dst;
    int ret;

    if (fz_u8(in) & 1) {
        /* Expect what the model says comes next (if it is a header). */
        if (t.model + HDR <= t.sent) {
            memcpy(&expect, t.stream + t.model, HDR);
        }
    } else {
        expect.msg_id = fz_u16(in);
        expect.cmd = fz_u16(in);
        expect.msg_size = fz_u16(in);
    }
    if (expect.msg_size < HDR + head || expect.msg_size > t.rx.cap) {
        return;                 /* tran_rx_direct() refuses: nothing read */
    }
    dst = malloc(expect.msg_size - HDR - head + 1);
    FZ_CHECK(dst != NULL, "out of memory");
    t.nr_taken = 0;             /* a receive, as fill() */
    ret = tran_rx_direct(&t.rx, t.sock, &expect, head, dst, &msg);
    if (ret == 1) {
        size_t at = t.model;
        model_take(&msg, true);
        FZ_CHECK(memcmp(msg.payload, t.stream + at + HDR, head) == 0 &&
                 memcmp(dst, t.stream + at + HDR + head,
                        expect.msg_size - HDR - head) == 0,
                 "direct receive got other bytes");
    }
    free(dst);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[4] = { 64, 256, 4096, 65536 };
    static const size_t small_caps[4] = { 64, 256, 2048, 4096 };
    static const size_t limits[4] = { SIZE_MAX, 32, 100, 4096 };
    struct fz in = { data, size };
    int sv[2], fds0 = fz_count_fds(), large0 = fz_large_in_use(), steps = 0;
    uint8_t cfg = fz_u8(&in);

    memset(&t, 0, sizeof(t));
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
             "socketpair");
    t.sock = sv[0];
    t.peer = sv[1];
    t.stream = malloc(MAX_SENT);
    FZ_CHECK(t.stream != NULL &&
             ((cfg & 0x10) ?
              tran_rx_init_pooled(&t.rx, small_caps[cfg & 3], &pool) :
              tran_rx_init(&t.rx, caps[cfg & 3])) == 0,
             "out of memory");
    t.rx.max_msg = limits[(cfg >> 2) & 3];
    fz_set_hooks(&hooks);

    while (!fz_empty(&in) && steps++ < 4096) {
        uint8_t buf[8192];
        int fds[FZ_MAX_FDS];
        size_t len, nr;

        switch (fz_u8(&in) % 9) {
        case 0: {                       /* raw bytes */
            const uint8_t *p = fz_take(&in, fz_u16(&in) % sizeof(buf), &len);
            nr = fz_make_fds(&in, fds);
            peer_send(p, len, fds, nr);
            break;
        }
        case 1: {                       /* a well-formed message */
            struct vfio_user_header hdr = {
                .msg_id = fz_u16(&in), .cmd = fz_u8(&in),
                .flags = fz_u8(&in),
            };
            size_t plen = fz_u16(&in) % (sizeof(buf) - HDR);
            const uint8_t *p = fz_take(&in, plen, &len);

            hdr.msg_size = (uint32_t)(HDR + plen);
            memcpy(buf, &hdr, HDR);
            memset(buf + HDR, 0, plen);
            memcpy(buf + HDR, p, len);
            nr = fz_make_fds(&in, fds);
            peer_send(buf, HDR + plen, fds, nr);
            break;
        }
        case 2:
            (void)fill();
            break;
        case 3:
            next_all();
            break;
        case 4:
            hold();
            break;
        case 5:
            while (t.nr_kept > 0 && t.kept[t.nr_kept - 1].level == t.rx.hold) {
                t.nr_kept--;
            }
            tran_rx_release(&t.rx);
            if (t.rx.pool != NULL) {
                /* As the server does between requests: may move what no
                 * hold pins, as a receive may. */
                t.nr_taken = 0;
                tran_rx_trim(&t.rx);
            }
            break;
        case 6:
            direct(&in);
            break;
        case 7:
            t.rx.max_msg = limits[fz_u8(&in) & 3];
            break;
        default:
            shutdown(t.peer, SHUT_WR);
            t.peer_shut = true;
            break;
        }
        check_kept();
        FZ_CHECK(t.rx.start <= t.rx.end && t.rx.end <= t.rx.cap &&
                 t.rx.nr_fd_sets <= TRAN_MAX_FD_SETS &&
                 t.rx.hold <= TRAN_MAX_HOLDS &&
                 t.rx.nr_retired <= TRAN_MAX_HOLDS,
                 "reader state broken: start %zu end %zu cap %zu, %zu fd "
                 "sets, %u holds, %zu retired", t.rx.start, t.rx.end,
                 t.rx.cap, t.rx.nr_fd_sets, t.rx.hold, t.rx.nr_retired);
    }
    /* Everything that came is taken; then all is released. */
    for (int i = 0; i < 64; i++) {
        if (fill() <= 0) {
            break;
        }
        next_all();
    }
    next_all();
    while (t.rx.hold > 0) {
        tran_rx_release(&t.rx);
    }
    fz_set_hooks(NULL);
    tran_rx_fini(&t.rx);
    close(t.sock);
    close(t.peer);
    free(t.stream);
    FZ_CHECK(fz_count_fds() == fds0, "fds leaked: %d open, %d before",
             fz_count_fds(), fds0);
    FZ_CHECK(fz_large_in_use() == large0, "large blocks leaked");
    FZ_CHECK(pool.nr_out == 0, "%zu big buffers not given back", pool.nr_out);
    return 0;
}
