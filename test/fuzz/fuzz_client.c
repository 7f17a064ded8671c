/*
 * Fuzzer of the client library (vfio-user-client.h) against a malicious
 * server: the input is both the calls a VMM makes (every call of the API,
 * with arguments from the input) and what the server sends back while the
 * client waits: replies built for the request and then broken (an error
 * with any errno, sizes cut or grown, a byte changed, fds attached, another
 * command, a reserved flag, another id), raw replies and raw bytes, DMA_READ
 * / DMA_WRITE requests of its own, other commands, silence (the client's
 * clock jumps: its timeout passes without waiting) and hanging up.
 *
 * The server is this fuzzer, in the client's thread: when the client would
 * block receiving (the recvmsg() and poll() hooks), the server reads what
 * the client sent and takes its next action from the input; when the client
 * would block sending, the server reads. Replies larger than the socket
 * holds are queued and sent as the client reads.
 *
 * Checked: no sanitizer report and no hang; what the client sends is
 * well-formed, and it answers only requests the server made, once; what a
 * call hands back is usable as its documentation says (a region info's
 * capability chain walked as a caller would, fds open); after each input
 * every fd and mapping is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "vfio-user-client.h"

#define HDR         sizeof(struct vfio_user_header)
#define MAX_PENDING 32
#define MAX_OUT     64
#define GUEST_SIZE  (1u << 20)
#define BUF_SIZE    (2u << 20)
#define REGION_SIZE 0x10000u
#define MAX_STEPS   2048            /* server actions per input */

/* A request of the client's, as far as the server needs to answer it. */
struct request {
    uint16_t id, cmd;
    uint8_t payload[512];
    size_t len;                     /* of the payload (maybe more was sent) */
};

/* A message the server has yet to send (the client's socket was full). */
struct outmsg {
    uint8_t *buf;
    size_t len, off;
    int fds[FZ_MAX_FDS];
    size_t nr_fds;
};

static struct srv {
    char path[108];
    int listen_fd;
    int fd;                         /* the server's end */
    bool shut;
    uint8_t *in;                    /* what the client sent, unparsed */
    size_t in_len, in_cap;
    struct request pending[MAX_PENDING];
    size_t nr_pending;
    uint16_t ours[64];              /* our requests awaiting the client */
    size_t nr_ours;
    bool raw_sent;                  /* raw bytes went: ours not all known */
    uint16_t next_id;
    struct outmsg out[MAX_OUT];
    size_t nr_out;
    struct fz *input;
    int steps;
    int tick_ms;                    /* SO_RCVTIMEO as the client set it */
    vfu_client_t *c;
} S;

static uint8_t guest[GUEST_SIZE];
static uint8_t buf[BUF_SIZE];

/* --- The server's side --- */

static int
queued(int fd)
{
    int n = 0;

    (void)ioctl(fd, FIONREAD, &n);
    return n;
}

/* Sends what is queued, as far as the client's socket takes it. */
static void
flush(void)
{
    while (S.nr_out > 0 && !S.shut) {
        struct outmsg *m = &S.out[0];
        size_t n = fz_send_all(S.fd, m->buf + m->off, m->len - m->off,
                               m->off == 0 ? m->fds : NULL,
                               m->off == 0 ? m->nr_fds : 0, NULL);

        if (n > 0) {
            fz_close_fds(m->fds, m->nr_fds);
            m->nr_fds = 0;
        }
        m->off += n;
        if (m->off < m->len) {
            return;
        }
        free(m->buf);
        memmove(&S.out[0], &S.out[1], --S.nr_out * sizeof(S.out[0]));
    }
}

static void
drop_out(void)
{
    for (size_t i = 0; i < S.nr_out; i++) {
        free(S.out[i].buf);
        fz_close_fds(S.out[i].fds, S.out[i].nr_fds);
    }
    S.nr_out = 0;
}

/* Queues @head and @len more bytes, with @nr fds on their first byte. */
static void
emit_bytes(const void *head, size_t head_len, const void *p, size_t len,
           int *fds, size_t nr)
{
    struct outmsg *m;

    if (S.shut || S.nr_out == MAX_OUT || head_len + len == 0) {
        fz_close_fds(fds, nr);
        return;
    }
    m = &S.out[S.nr_out++];
    m->buf = malloc(head_len + len);
    FZ_CHECK(m->buf != NULL, "out of memory");
    memcpy(m->buf, head, head_len);
    if (len > 0) {
        memcpy(m->buf + head_len, p, len);
    }
    m->len = head_len + len;
    m->off = 0;
    if (nr > 0) {
        memcpy(m->fds, fds, nr * sizeof(int));
    }
    m->nr_fds = nr;
    flush();
}

/* Queues a message (header and @len payload bytes) with @nr fds. */
static void
emit(const struct vfio_user_header *hdr, const void *payload, size_t len,
     int *fds, size_t nr)
{
    emit_bytes(hdr, HDR, payload, len, fds, nr);
}

/* Notes one message the client sent. */
static void
client_msg(const struct vfio_user_header *hdr, const uint8_t *payload,
           size_t len)
{
    if ((hdr->flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
        /* Only to what we asked, once. */
        for (size_t i = 0; i < S.nr_ours; i++) {
            if (S.ours[i] == hdr->msg_id) {
                S.ours[i] = S.ours[--S.nr_ours];
                return;
            }
        }
        FZ_CHECK(S.raw_sent, "the client replied to msg%u, which we did not "
                 "send", hdr->msg_id);
        return;
    }
    FZ_CHECK((hdr->flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND,
             "client sent type %u", hdr->flags & VFIO_USER_F_TYPE_MASK);
    if (hdr->flags & VFIO_USER_F_NO_REPLY) {
        return;
    }
    if (S.nr_pending == MAX_PENDING) {
        memmove(&S.pending[0], &S.pending[1],
                (MAX_PENDING - 1) * sizeof(S.pending[0]));
        S.nr_pending--;
    }
    struct request *r = &S.pending[S.nr_pending++];
    r->id = hdr->msg_id;
    r->cmd = hdr->cmd;
    r->len = len < sizeof(r->payload) ? len : sizeof(r->payload);
    memcpy(r->payload, payload, r->len);
}

/* Reads what the client sent, without blocking. */
static void
drain(void)
{
    size_t off = 0;

    if (S.fd < 0) {
        return;
    }
    for (;;) {
        union {
            char b[CMSG_SPACE(32 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.b,
                             .msg_controllen = sizeof(ctl.b) };
        ssize_t n;

        FZ_CHECK(S.in_cap - S.in_len >= 65536, "client sent too much");
        iov = (struct iovec){ S.in + S.in_len, S.in_cap - S.in_len };
        n = fz_real_recvmsg(S.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c != NULL;
             c = CMSG_NXTHDR(&mh, c)) {
            int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < cnt; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(fd);
            }
        }
        if (n <= 0) {
            break;
        }
        S.in_len += (size_t)n;
    }
    while (S.in_len - off >= HDR) {
        struct vfio_user_header hdr;

        memcpy(&hdr, S.in + off, HDR);
        FZ_CHECK(hdr.msg_size >= HDR, "client sent msg_size %u", hdr.msg_size);
        if (S.in_len - off < hdr.msg_size) {
            break;
        }
        client_msg(&hdr, S.in + off + HDR, hdr.msg_size - HDR);
        off += hdr.msg_size;
    }
    memmove(S.in, S.in + off, S.in_len - off);
    S.in_len -= off;
}

static uint32_t
get32(const struct request *r, size_t off)
{
    uint32_t v = 0;
    if (off + 4 <= r->len) {
        memcpy(&v, r->payload + off, 4);
    }
    return v;
}

static uint64_t
get64(const struct request *r, size_t off)
{
    uint64_t v = 0;
    if (off + 8 <= r->len) {
        memcpy(&v, r->payload + off, 8);
    }
    return v;
}

/*
 * The reply a correct server gives to @r, in buf: its length, the fds
 * (their number in *nr).
 */
static size_t
good_reply(const struct request *r, int *fds, size_t *nr)
{
    *nr = 0;
    switch (r->cmd) {
    case VFIO_USER_VERSION: {
        const char *json = "{\"capabilities\":{\"max_msg_fds\":8,"
                           "\"max_data_xfer_size\":1048576}}";
        memset(buf, 0, 4);
        memcpy(buf + 4, json, strlen(json) + 1);
        return 4 + strlen(json) + 1;
    }
    case VFIO_USER_DEVICE_GET_INFO: {
        struct vfio_user_device_info di = {
            .argsz = sizeof(di), .flags = VFIO_DEVICE_FLAGS_PCI,
            .num_regions = 9, .num_irqs = 5,
        };
        memcpy(buf, &di, sizeof(di));
        return sizeof(di);
    }
    case VFIO_USER_DEVICE_GET_REGION_INFO: {
        /* The info, a sparse mmap capability with two areas, an fd. */
        struct vfio_region_info info = {
            .index = get32(r, 8), .size = REGION_SIZE,
            .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                     VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS,
        };
        struct vfio_region_info_cap_sparse_mmap sp = {
            .header = { .id = VFIO_REGION_INFO_CAP_SPARSE_MMAP, .version = 1 },
            .nr_areas = 2,
        };
        struct vfio_region_sparse_mmap_area areas[2] = { { 0, 4096 },
                                                         { 8192, 4096 } };
        size_t total = sizeof(info) + sizeof(sp) + sizeof(areas);

        info.argsz = (uint32_t)total;
        if (get32(r, 0) < total) {
            memcpy(buf, &info, sizeof(info));
            return sizeof(info);
        }
        info.cap_offset = sizeof(info);
        memcpy(buf, &info, sizeof(info));
        memcpy(buf + sizeof(info), &sp, sizeof(sp));
        memcpy(buf + sizeof(info) + sizeof(sp), areas, sizeof(areas));
        fds[0] = fz_make_fd(FZ_FD_MEMFD | (15 << 3));   /* 64 KiB */
        *nr = fds[0] >= 0;
        return total;
    }
    case VFIO_USER_DEVICE_GET_IRQ_INFO: {
        struct vfio_irq_info ii = {
            .argsz = sizeof(ii), .index = get32(r, 8), .count = 4,
            .flags = VFIO_IRQ_INFO_EVENTFD,
        };
        memcpy(buf, &ii, sizeof(ii));
        return sizeof(ii);
    }
    case VFIO_USER_REGION_READ: {
        uint32_t count = get32(r, 12);
        size_t n = 16 + (count < BUF_SIZE - 512 ? count : 0);
        memcpy(buf, r->payload, 16);
        memset(buf + 16, 0xab, n - 16);
        return n;
    }
    case VFIO_USER_REGION_WRITE:
        memcpy(buf, r->payload, 16);
        return 16;
    case VFIO_USER_REGION_WRITE_MULTI:
        memcpy(buf, r->payload, 8);
        return 8;
    case VFIO_USER_DMA_UNMAP:
        memcpy(buf, r->payload, 24);
        return 24;
    case VFIO_USER_DEVICE_FEATURE: {
        uint32_t flags = get32(r, 4);
        uint32_t feature = flags & VFIO_DEVICE_FEATURE_MASK;
        struct vfio_user_device_feature h = { .flags = flags };
        size_t len = 8;

        if (feature == VFIO_DEVICE_FEATURE_MIGRATION ||
            feature == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE) {
            uint64_t v = feature == VFIO_DEVICE_FEATURE_MIGRATION ?
                         VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY :
                         4096;
            memcpy(buf + 8, &v, 8);
            len = 16;
        } else if (feature == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
            if (flags & VFIO_DEVICE_FEATURE_GET) {
                uint32_t st[2] = { VFIO_DEVICE_STATE_RUNNING, UINT32_MAX };
                memcpy(buf + 8, st, 8);
            } else {
                memcpy(buf + 8, r->payload + 8, 8);
            }
            len = 16;
        } else if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
            len = r->len;
            memcpy(buf, r->payload, len);
        } else if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) {
            uint64_t length = get64(r, 16), page = get64(r, 24), bytes;
            bytes = page == 0 || length == 0 ? 0 :
                    ((length - 1) / page + 1 + 63) / 64 * 8;
            bytes = bytes < BUF_SIZE - 512 ? bytes : 0;
            memcpy(buf + 8, r->payload + 8, 24);
            memset(buf + 32, 0x55, bytes);
            len = 32 + bytes;
        }
        h.argsz = (uint32_t)len;
        memcpy(buf, &h, 8);
        return len;
    }
    case VFIO_USER_MIG_DATA_READ: {
        uint32_t size = get32(r, 4);
        struct vfio_user_mig_data d;
        size = size < BUF_SIZE - 512 ? size : 0;
        d.argsz = 8 + size;
        d.size = size;
        memcpy(buf, &d, 8);
        memset(buf + 8, 0x3c, size);
        return 8 + size;
    }
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS: {
        struct vfio_user_region_io_fds_reply h = {
            .argsz = sizeof(h) + sizeof(struct vfio_user_sub_region_ioeventfd),
            .index = get32(r, 8), .count = 1,
        };
        struct vfio_user_sub_region_ioeventfd e = {
            .gpa_offset = 0x100, .size = 4, .fd_index = 0,
            .type = VFIO_USER_IO_FD_TYPE_IOEVENTFD,
        };
        if (get32(r, 0) < h.argsz) {
            h.count = 0;
            memcpy(buf, &h, sizeof(h));
            return sizeof(h);
        }
        memcpy(buf, &h, sizeof(h));
        memcpy(buf + sizeof(h), &e, sizeof(e));
        fds[0] = fz_make_fd(FZ_FD_EVENTFD);
        *nr = fds[0] >= 0;
        return sizeof(h) + sizeof(e);
    }
    default:        /* DMA_MAP, SET_IRQS, RESET, MIG_DATA_WRITE: nothing */
        return 0;
    }
}

/* A reply to @r, built right and then broken as the input says. */
static void
reply_to(const struct request *r, struct fz *in, bool broken)
{
    struct vfio_user_header hdr = { .msg_id = r->id, .cmd = r->cmd,
                                    .flags = VFIO_USER_F_TYPE_REPLY };
    int fds[FZ_MAX_FDS];
    size_t nr, len = good_reply(r, fds, &nr);
    uint8_t how = broken ? fz_u8(in) : 0;

    if (how & 1) {                  /* an error, any errno */
        uint8_t e = fz_u8(in);
        hdr.flags |= VFIO_USER_F_ERROR;
        hdr.error_no = e == 0xff ? fz_u32(in) : e;
        if (!(how & 0x80)) {
            len = 0;
        }
    }
    if (how & 2) {                  /* cut or grown */
        int8_t d = (int8_t)fz_u8(in);
        len = d < 0 && (size_t)-d > len ? 0 : len + (size_t)(ssize_t)d;
        if (d > 0) {
            memset(buf + len - (size_t)d, 0, (size_t)d);
        }
    }
    if ((how & 4) && len > 0) {     /* a byte changed */
        uint16_t at = fz_u16(in);
        buf[at % len] ^= fz_u8(in) | 1;
    }
    if (how & 8) {                  /* fds where (maybe) none belong */
        fz_close_fds(fds, nr);
        nr = fz_make_fds(in, fds);
    }
    if (how & 0x10) {
        hdr.cmd ^= fz_u8(in) | 1;
    }
    if (how & 0x20) {
        hdr.flags |= fz_u8(in) & 0xfe & ~VFIO_USER_F_ERROR;
    }
    if (how & 0x40) {
        hdr.msg_id += fz_u8(in) | 1;
    }
    hdr.msg_size = (uint32_t)(HDR + len);
    emit(&hdr, buf, len, fds, nr);
}

static void
take_pending(size_t i)
{
    memmove(&S.pending[i], &S.pending[i + 1],
            (--S.nr_pending - i) * sizeof(S.pending[0]));
}

static void
hang_up(void)
{
    if (S.fd >= 0 && !S.shut) {
        shutdown(S.fd, SHUT_WR);
    }
    S.shut = true;
    drop_out();
}

/*
 * The server acts once: true when it sent something (or hung up), false
 * when it stays silent.
 */
static bool
server_step(void)
{
    struct fz *in = S.input;
    uint8_t a;

    drain();
    if (S.shut) {
        return true;
    }
    if (fz_empty(in) || ++S.steps > MAX_STEPS) {
        /* Out of input: answer everything properly, then leave. */
        if (S.nr_pending == 0) {
            hang_up();
        }
        while (S.nr_pending > 0) {
            reply_to(&S.pending[0], in, false);
            take_pending(0);
        }
        return true;
    }
    a = fz_u8(in);
    switch (a % 8) {
    case 0:                         /* a reply, maybe broken */
    case 7:
        if (S.nr_pending == 0) {
            return false;
        }
        {
            size_t i = (a >> 3) % S.nr_pending;
            struct request r = S.pending[i];
            take_pending(i);
            reply_to(&r, in, a % 8 == 0);
        }
        return true;
    case 1: {                       /* a raw reply to a pending request */
        struct vfio_user_header hdr = { .flags = VFIO_USER_F_TYPE_REPLY };
        size_t len;
        const uint8_t *p = fz_take(in, fz_u16(in) % 4096, &len);
        int fds[FZ_MAX_FDS];
        size_t nr = fz_make_fds(in, fds);

        if (S.nr_pending > 0) {
            size_t i = (a >> 3) % S.nr_pending;
            hdr.msg_id = S.pending[i].id;
            hdr.cmd = S.pending[i].cmd;
            take_pending(i);
        }
        hdr.msg_size = (uint32_t)(HDR + len);
        emit(&hdr, p, len, fds, nr);
        return true;
    }
    case 2: {                       /* raw bytes */
        size_t len;
        const uint8_t *p = fz_take(in, fz_u16(in) % 4096, &len);
        int fds[FZ_MAX_FDS];
        size_t nr = fz_make_fds(in, fds);
        S.raw_sent = true;      /* it may hold commands we cannot track */
        emit_bytes(p, len, NULL, 0, fds, nr);
        return true;
    }
    case 3: {                       /* a DMA request of ours */
        struct vfio_user_header hdr = {
            .msg_id = S.next_id++,
            .cmd = (a & 8) ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ,
            .flags = VFIO_USER_F_TYPE_COMMAND |
                     ((a & 0x10) ? VFIO_USER_F_NO_REPLY : 0),
        };
        struct vfio_user_dma_rw rw = { .addr = fz_u32(in), .count = fz_u32(in) };
        size_t len = sizeof(rw);
        int fds[FZ_MAX_FDS];
        size_t nr = (a & 0x20) ? fz_make_fds(in, fds) : 0;

        if (a & 0x40) {
            rw.addr |= (uint64_t)fz_u32(in) << 32;
        }
        if (hdr.cmd == VFIO_USER_DMA_WRITE) {
            size_t n = rw.count < 65536 ? rw.count : fz_u16(in);
            memcpy(buf, &rw, sizeof(rw));
            memset(buf + sizeof(rw), 0x77, n);
            len += n;
        } else {
            memcpy(buf, &rw, sizeof(rw));
        }
        if (!(hdr.flags & VFIO_USER_F_NO_REPLY) && S.nr_ours < 64) {
            S.ours[S.nr_ours++] = hdr.msg_id;
        }
        hdr.msg_size = (uint32_t)(HDR + len);
        emit(&hdr, buf, len, fds, nr);
        return true;
    }
    case 4:                         /* another command of ours */
        {
            struct vfio_user_header hdr = {
                .msg_id = S.next_id++, .cmd = fz_u8(in),
                .flags = VFIO_USER_F_TYPE_COMMAND | (fz_u8(in) & 0x30),
                .msg_size = HDR,
            };
            if (hdr.cmd == VFIO_USER_DMA_READ || hdr.cmd == VFIO_USER_DMA_WRITE) {
                hdr.cmd = VFIO_USER_VERSION;
            }
            if (!(hdr.flags & VFIO_USER_F_NO_REPLY) && S.nr_ours < 64) {
                S.ours[S.nr_ours++] = hdr.msg_id;
            }
            emit(&hdr, NULL, 0, NULL, 0);
        }
        return true;
    case 5:
        if (a & 0x80) {
            hang_up();
            return true;
        }
        return false;               /* silence */
    default:                        /* 6: answer everything in order */
        if (S.nr_pending == 0) {
            return false;
        }
        while (S.nr_pending > 0) {
            reply_to(&S.pending[0], in, false);
            take_pending(0);
        }
        return true;
    }
}

/* The client is about to receive, blocking: the server acts first. */
static ssize_t
hook_recvmsg(int fd, struct msghdr *msg, int flags)
{
    size_t want = 1;

    if (S.c == NULL || fd != vfu_client_fd(S.c) || (flags & MSG_DONTWAIT)) {
        return fz_real_recvmsg(fd, msg, flags);
    }
    if (flags & MSG_WAITALL) {
        want = 0;
        for (size_t i = 0; i < msg->msg_iovlen; i++) {
            want += msg->msg_iov[i].iov_len;
        }
    }
    for (int i = 0; i < 64 && (size_t)queued(fd) < want && !S.shut; i++) {
        flush();
        if ((size_t)queued(fd) >= want || S.nr_out > 0) {
            break;              /* more will come as it reads */
        }
        if (!server_step()) {
            break;
        }
        flush();
    }
    if (queued(fd) > 0 || S.shut) {
        return fz_real_recvmsg(fd, msg, S.shut ? flags : flags | MSG_DONTWAIT);
    }
    /* Nothing will come: the receive times out, as with SO_RCVTIMEO. */
    fz_clock_advance(S.tick_ms);
    errno = EAGAIN;
    return -1;
}

/* vfu_client_serve() waits: the same, in poll() form. */
static int
hook_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    int ret;

    for (int i = 0; i < 64; i++) {
        ret = fz_real_poll(fds, nfds, 0);
        if (ret != 0 || S.c == NULL || S.shut) {
            return ret;
        }
        flush();
        if (S.nr_out > 0 || !server_step()) {
            break;
        }
        flush();
    }
    ret = fz_real_poll(fds, nfds, 0);
    if (ret == 0 && timeout > 0) {
        fz_clock_advance(timeout);
    }
    return ret;
}

static const struct fz_hooks hooks = {
    .poll = hook_poll, .drain = drain, .recvmsg = hook_recvmsg,
};

/* --- The client's side: calls as a VMM makes them --- */

/* Walks a region info's capability chain as a trusting caller would. */
static void
use_region_info(const struct vfio_region_info *info, int fd)
{
    const uint8_t *p = (const uint8_t *)info;

    FZ_CHECK(info->argsz >= sizeof(*info), "region info argsz %u",
             info->argsz);
    if (fd >= 0) {
        FZ_CHECK(fcntl(fd, F_GETFD) >= 0, "region fd not open");
        close(fd);
    }
    if (!(info->flags & VFIO_REGION_INFO_FLAG_CAPS)) {
        return;
    }
    for (uint32_t off = info->cap_offset; off != 0; ) {
        struct vfio_info_cap_header h;

        memcpy(&h, p + off, sizeof(h));
        if (h.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
            const struct vfio_region_info_cap_sparse_mmap *sp =
                (const void *)(p + off);
            for (uint32_t i = 0; i < sp->nr_areas; i++) {
                FZ_CHECK(sp->areas[i].offset <= info->size &&
                         sp->areas[i].size <= info->size - sp->areas[i].offset,
                         "sparse area outside the region");
            }
        }
        off = h.next;
    }
}

static uint64_t
pick_iova(struct fz *in)
{
    static const uint64_t iovas[4] = { 0, 0x100000, 0x180000, ~0ull << 20 };
    return iovas[fz_u8(in) & 3] + (uint64_t)(fz_u8(in) & 0xf) * 0x10000;
}

/* VFU_FUZZ_LOG=1 shows each call and the errno it left, for debugging. */
static int client_call(vfu_client_t *c, uint8_t op, struct fz *in);

static void
trace(uint8_t op, int ret)
{
    static int show = -1;

    if (show < 0) {
        show = getenv("VFU_FUZZ_LOG") != NULL;
    }
    if (show) {
        fprintf(stderr, "client op %u: %d%s%s\n", op % 20, ret,
                ret < 0 ? ", " : "", ret < 0 ? strerror(errno) : "");
    }
}

static void
client_op(struct fz *in)
{
    vfu_client_t *c = S.c;
    uint8_t op = fz_u8(in);

    int ret = client_call(c, op, in);
    trace(op, ret);
}

static int
client_call(vfu_client_t *c, uint8_t op, struct fz *in)
{
    long ret = 0;


    switch (op % 20) {
    case 0: {
        static const char *const caps[4] = {
            NULL, "{}", "{\"capabilities\":{\"max_data_xfer_size\":4096}}",
            "{\"capabilities\":{\"twin_socket\":{\"supported\":true}}}",
        };
        ret = vfu_client_negotiate(c, caps[fz_u8(in) & 3]);
        break;
    }
    case 1: {
        struct vfio_user_device_info di;
        ret = vfu_client_device_info(c, &di);
        break;
    }
    case 2: {
        struct vfio_region_info *info;
        int fd;
        ret = vfu_client_region_info(c, fz_u8(in) % 10, &info, &fd);
        if (ret == 0) {
            use_region_info(info, fd);
            free(info);
        }
        break;
    }
    case 3: {
        uint8_t region = fz_u8(in) % 10;
        uint64_t off = fz_u16(in);
        uint32_t count = fz_u16(in);
        if (fz_u8(in) & 1) {
            count += 256 * 1024;    /* read straight into our buffer */
        }
        ret = vfu_client_region_read(c, region, off, buf, count);
        break;
    }
    case 4: {
        uint8_t region = fz_u8(in) % 10, f = fz_u8(in);
        ret = vfu_client_region_write(c, region, fz_u16(in), buf,
                                      fz_u16(in) % 4097, f & 1);
        break;
    }
    case 5: {
        struct vfio_user_write_multi_data w[4];
        size_t nr = fz_u8(in) % 5;
        for (size_t i = 0; i < 4; i++) {
            w[i] = (struct vfio_user_write_multi_data){
                .offset = i * 8, .region = 0, .count = 4,
            };
        }
        ret = vfu_client_region_write_multi(c, w, nr, fz_u8(in) & 1);
        break;
    }
    case 6:
        ret = vfu_client_reset(c);
        break;
    case 7: {
        struct vfio_irq_info ii;
        ret = vfu_client_irq_info(c, fz_u8(in) % 6, &ii);
        break;
    }
    case 8: {
        static const uint32_t flags[4] = {
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK,
            VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK,
        };
        uint8_t f = fz_u8(in), count = fz_u8(in) % 9, mask = fz_u8(in);
        int fds[8];
        uint8_t bools[8];
        for (int i = 0; i < 8; i++) {
            fds[i] = (mask >> i) & 1 ? eventfd(0, EFD_CLOEXEC) : -1;
            bools[i] = (mask >> i) & 1;
        }
        ret = vfu_client_set_irqs(c, f % 5, flags[(f >> 3) & 3], 0, count,
                                  (f & 0x80) ? NULL : fds, bools);
        fz_close_fds(fds, 8);
        break;
    }
    case 9: {
        uint64_t iova = pick_iova(in);
        uint64_t size = ((uint64_t)(fz_u8(in) % 16) + 1) * 0x10000;
        uint8_t f = fz_u8(in);
        int fd = (f & 4) ? fz_make_fd(FZ_FD_MEMFD | (31 << 3)) : -1;
        ret = vfu_client_dma_map(c, iova, size, fd, 0,
                                 (f & 8) && fd >= 0 ? NULL : guest, f & 3);
        if (fd >= 0) {
            close(fd);
        }
        break;
    }
    case 10: {
        uint64_t iova = pick_iova(in);
        uint64_t size = ((uint64_t)(fz_u8(in) % 16) + 1) * 0x10000;
        if (fz_u8(in) & 1) {
            ret = vfu_client_dma_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL);
        } else {
            ret = vfu_client_dma_unmap(c, iova, size, 0);
        }
        break;
    }
    case 11:
        ret = vfu_client_serve(c, (fz_u8(in) & 1) ? 1000 : 0);
        break;
    case 12: {
        uint8_t f = fz_u8(in);
        struct vfio_user_device_feature_dma_logging_range r[2] = {
            { 0x100000, 0x10000 }, { 0x180000, 0x10000 },
        };
        if (f % 3 == 0) {
            ret = vfu_client_dirty_start(c, 4096, r, (f >> 6) % 3);
        } else if (f % 3 == 1) {
            ret = vfu_client_dirty_stop(c);
        } else {
            uint64_t len = ((uint64_t)fz_u16(in) + 1) * 4096;
            ret = vfu_client_dirty_report(c, 0x100000, len,
                                          4096ull << (f >> 5),
                                          (uint64_t *)(void *)buf);
        }
        break;
    }
    case 13: {
        uint8_t f = fz_u8(in);
        uint64_t v;
        uint32_t st;
        switch (f & 3) {
        case 0: ret = vfu_client_mig_flags(c, &v); break;
        case 1: ret = vfu_client_mig_state_get(c, &st); break;
        case 2: ret = vfu_client_mig_state_set(c, (f >> 2) % 8); break;
        default: ret = vfu_client_mig_data_size(c, &v); break;
        }
        break;
    }
    case 14: {
        uint32_t count = fz_u32(in) % BUF_SIZE;
        if (count & 1) {
            ssize_t n = vfu_client_mig_read(c, buf, count);
            FZ_CHECK(n < 0 || (size_t)n <= count, "mig_read %zd of %u", n,
                     count);
            ret = n;
        } else {
            ret = vfu_client_mig_write(c, buf, count % (1100 * 1024));
        }
        break;
    }
    case 15: {
        uint8_t f = fz_u8(in), index = fz_u8(in) % 10;
        struct vfu_client_ioeventfd *v;
        size_t nr;
        switch (f & 3) {
        case 0:
            ret = vfu_client_region_io_fds(c, index, &v, &nr);
            if (ret == 0) {
                for (size_t i = 0; i < nr; i++) {
                    FZ_CHECK(fcntl(v[i].fd, F_GETFD) >= 0, "io fd not open");
                }
                vfu_client_ioeventfds_free(v, nr);
            }
            break;
        case 1:
            ret = vfu_client_ioeventfds_install(c, index);
            break;
        case 2:
            vfu_client_ioeventfds_remove(c, (f & 4) ? UINT32_MAX : index);
            break;
        default: {
            uint32_t v32 = fz_u32(in);
            ret = vfu_client_doorbell(c, index, fz_u16(in), &v32, 4, f & 4);
            break;
        }
        }
        break;
    }
    case 16: {
        uint8_t f = fz_u8(in);
        size_t len;
        const uint8_t *p = fz_take(in, fz_u8(in), &len);
        struct vfio_user_header hdr;
        int fds[4];
        size_t nr = 4;
        uint16_t id;
        ssize_t n;

        if (f & 1) {
            n = vfu_client_request(c, fz_u8(in), p, len, NULL, 0, buf, 4096,
                                   fds, &nr);
        } else if (f & 2) {
            n = vfu_client_recv(c, &hdr, buf, 4096, fds, &nr);
        } else {
            n = vfu_client_send(c, fz_u8(in), (f & 4) ? VFIO_USER_F_NO_REPLY : 0,
                                p, len, NULL, 0, &id);
            nr = 0;
        }
        if (n >= 0) {
            fz_close_fds(fds, nr);
        }
        ret = n;
        break;
    }
    case 17: {
        static const int timeouts[5] = { 0, 1, 100, 1000, -1 };
        int t = timeouts[fz_u8(in) % 5];
        if (vfu_client_set_timeout(c, t) == 0) {
            S.tick_ms = t < 4 ? 1 : t / 4;
        }
        break;
    }
    case 18:
        /* handled by the caller: a new connection */
        break;
    default: {
        struct vfu_client_stats st;
        const struct vfu_client_server_info *info = vfu_client_server_info(c);
        vfu_client_get_stats(c, &st);
        FZ_CHECK(info != NULL, "no server info");
        break;
    }
    }
    return (int)ret;
}

static void
server_close(void)
{
    drop_out();
    if (S.fd >= 0) {
        close(S.fd);
    }
    S.fd = -1;
    S.shut = false;
    S.in_len = 0;
    S.nr_pending = 0;
    S.nr_ours = 0;
    S.raw_sent = false;
}

/* A new client, connected (and VERSION answered from the input). */
static void
connect_client(struct fz *in)
{
    if (S.c != NULL) {
        vfu_client_close(S.c);
        S.c = NULL;
    }
    server_close();
    S.c = vfu_client_connect(S.path);
    FZ_CHECK(S.c != NULL, "connect: %s", strerror(errno));
    S.fd = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    FZ_CHECK(S.fd >= 0, "accept: %s", strerror(errno));
    FZ_CHECK(vfu_client_set_timeout(S.c, 1000) == 0, "set_timeout");
    S.tick_ms = 250;
    if (fz_u8(in) & 1) {
        (void)vfu_client_negotiate(S.c, NULL);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz in = { data, size };
    int fds0, maps0, large0;

    if (S.path[0] == '\0') {
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        char dir[] = "/tmp/vfu-fuzz-XXXXXX";

        FZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(S.path, sizeof(S.path), "%s/sock", dir);
        strcpy(addr.sun_path, S.path);
        S.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FZ_CHECK(S.listen_fd >= 0 &&
                 bind(S.listen_fd, (struct sockaddr *)&addr,
                      sizeof(addr)) == 0 &&
                 listen(S.listen_fd, 4) == 0, "listen");
        S.fd = -1;
        /*
         * Ours, kept from run to run and mapped here, not malloc()ed: the
         * large blocks counted for leaks are the libraries' only (memory
         * is used only as far as a client ever fills it).
         */
        S.in_cap = 64u << 20;
        S.in = mmap(NULL, S.in_cap, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        FZ_CHECK(S.in != MAP_FAILED, "out of memory");
    }
    fds0 = fz_count_fds();
    maps0 = fz_count_maps(FZ_MAP_NAME);
    large0 = fz_large_in_use();
    S.input = &in;
    S.steps = 0;
    S.next_id = 0x8000;
    fz_set_hooks(&hooks);

    connect_client(&in);
    for (int ops = 0; !fz_empty(&in) && ops < 256; ops++) {
        if (fz_empty(&in)) {
            break;
        }
        if (in.p[0] % 20 == 18) {
            fz_u8(&in);
            connect_client(&in);
            continue;
        }
        client_op(&in);
    }
    vfu_client_close(S.c);
    S.c = NULL;
    server_close();
    fz_set_hooks(NULL);
    FZ_CHECK(fz_count_fds() == fds0, "fds leaked: %d open, %d before",
             fz_count_fds(), fds0);
    FZ_CHECK(fz_count_maps(FZ_MAP_NAME) == maps0, "mappings leaked");
    FZ_CHECK(fz_large_in_use() == large0, "large blocks leaked: %d, %d before",
             fz_large_in_use(), large0);
    return 0;
}
