/*
 * client.c owns the client library (include/vfio-user-client.h): connecting
 * to a device server, VERSION negotiation, the synchronous request/reply
 * exchange, the typed wrappers for device info, region info, region
 * access and reset, and the raw calls. DMA and dirty logging are in
 * client_dma.c, interrupts in client_irq.c, migration in
 * client_migration.c, io fds and doorbells in client_ioeventfd.c.
 * Framing comes from tran.c, capability JSON from negotiate.c.
 *
 * Receive buffer: it starts at VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE plus
 * CLIENT_RX_SLACK, enough for the largest reply to a default-sized transfer
 * without ever reallocating. When the header of an incoming message announces
 * more than the buffer holds, the buffer grows (once, to that size plus
 * slack), up to CLIENT_RX_MAX: the reply to a REGION_READ of the largest
 * max_data_xfer_size a server may announce. A message bigger than that is
 * skipped by tran.c and reported as EMSGSIZE.
 *
 * Region reads and writes bigger than the server's max_data_xfer_size (the
 * spec default of 1 MiB until negotiation) fail with EINVAL before anything
 * is sent; the raw calls (vfu_client_send/request) check nothing.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client_private.h"

/* --- Receiving --- */

/*
 * Grows the receive buffer when the next message's header says it will not
 * fit. tran_rx keeps offsets, not pointers, so a realloc() is safe at any
 * time between messages.
 */
int
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
 * DMA_READ and DMA_WRITE requests are served (serve_dma()); that is not a
 * fault even when the answer is an error. Any other command that wants a
 * reply gets an error reply (so a server blocked on it does not hang) and,
 * like a stray reply, counts as a protocol fault.
 */
int
handle_server_msg(struct vfu_client *c, struct tran_msg *msg)
{
    if (!msg->malformed && tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_REPLY &&
        forget_abandoned(c, msg->hdr.msg_id)) {
        tran_msg_close_fds(msg);    /* the late reply to a request we left */
        return 0;
    }
    if (!msg->malformed && tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_COMMAND &&
        (msg->hdr.cmd == VFIO_USER_DMA_READ ||
         msg->hdr.cmd == VFIO_USER_DMA_WRITE)) {
        serve_dma(c, msg);
        return 0;
    }
    tran_msg_close_fds(msg);
    if (msg->malformed || msg->oversized) {
        return -EPROTO;
    }
    if (tran_hdr_type(&msg->hdr) == VFIO_USER_F_TYPE_COMMAND &&
        !tran_hdr_no_reply(&msg->hdr)) {
        (void)tran_send_error(c->fd, &msg->hdr, EOPNOTSUPP);
    }
    return -EPROTO;
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
    c->deadline = c->timeout_ms < 0 ? 0 : vfu_now_ms() + c->timeout_ms;
    c->rx.deadline = c->deadline;
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
    ret = tran_send(c->fd, &hdr, iov, iovcnt, fds, nr_fds);
    if (ret == 0) {
        c->requests++;
    }
    return ret == -EAGAIN ? -ETIMEDOUT : ret;   /* SO_SNDTIMEO */
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

/* Applies the timeout to the socket: SO_RCVTIMEO ticks, SO_SNDTIMEO. */
static int
set_socket_timeouts(struct vfu_client *c)
{
    struct timeval rcv = { 0 }, snd = { 0 };

    if (c->timeout_ms >= 0) {
        int tick = c->timeout_ms / CLIENT_TIMEOUT_TICKS;

        tick = tick > 0 ? tick : 1;
        rcv = (struct timeval){ tick / 1000, (tick % 1000) * 1000 };
        snd = (struct timeval){ c->timeout_ms / 1000,
                                (c->timeout_ms % 1000) * 1000 };
        if (c->timeout_ms == 0) {
            snd.tv_usec = 1000;     /* 0 would mean no limit */
        }
    }
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv)) < 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)) < 0) {
        return -errno;
    }
    return 0;
}

static void
set_info(struct vfu_client *c, uint16_t major, uint16_t minor,
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

/* --- Connection --- */

VFU_EXPORT vfu_client_t *
vfu_client_connect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct vfu_client *c;
    struct vfu_caps caps;
    int err;

    if (path == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    strcpy(addr.sun_path, path);

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->max_xfer = VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE;
    err = tran_rx_init(&c->rx, CLIENT_RX_INITIAL);
    if (err < 0) {
        free(c);
        errno = -err;
        return NULL;
    }
    c->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 ||
        connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        (err = set_socket_timeouts(c)) < 0) {
        err = errno;
        vfu_client_close(c);
        errno = err;
        return NULL;
    }

    /* Until negotiation, what the spec assumes of a silent server. */
    vfu_caps_defaults(&caps);
    set_info(c, 0, 0, &caps);
    return c;
}

/*
 * What our capabilities @json (of @len bytes) announce: the
 * max_data_xfer_size, and whether they ask for a twin socket. 0, or
 * -ENOMEM.
 */
static int
announced(const char *json, size_t len, uint64_t *xfer, bool *twin)
{
    struct vfio_user_version ver = { .major = VFIO_USER_MAJOR_VER };
    uint8_t *payload = malloc(sizeof(ver) + len);
    struct vfu_caps caps;
    uint16_t major, minor;

    *xfer = VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE;
    *twin = false;
    if (payload == NULL) {
        return -ENOMEM;
    }
    memcpy(payload, &ver, sizeof(ver));
    memcpy(payload + sizeof(ver), json, len);
    if (vfu_version_parse(payload, sizeof(ver) + len, &major, &minor,
                          &caps, NULL) == 0) {
        *xfer = caps.max_data_xfer_size;
        *twin = caps.twin_socket;
    }
    free(payload);
    return 0;
}

VFU_EXPORT int
vfu_client_negotiate(vfu_client_t *c, const char *caps_json)
{
    struct vfio_user_version ver = {
        .major = VFIO_USER_MAJOR_VER,
        .minor = VFIO_USER_MINOR_VER,
    };
    struct vfu_caps caps;
    struct tran_msg reply;
    struct iovec iov[2];
    uint64_t our_xfer;
    char *ours = NULL;
    size_t len;
    uint16_t major, minor;
    bool twin;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    if (caps_json == NULL) {
        /* What we can take: a full set of fds, default transfers. */
        vfu_caps_defaults(&caps);
        caps.max_msg_fds = TRAN_MAX_FDS;
        caps.write_multiple = true;
        ours = vfu_caps_format(&caps, &len);
        if (ours == NULL) {
            return fail(-ENOMEM);
        }
        caps_json = ours;
    } else {
        len = strlen(caps_json) + 1;
    }
    ret = announced(caps_json, len, &our_xfer, &twin);
    if (ret < 0 || twin) {
        /* A twin socket is for the raw calls: this library has none. */
        free(ours);
        return fail(ret < 0 ? ret : -EINVAL);
    }
    iov[0] = iov_of(&ver, sizeof(ver));
    iov[1] = iov_of(caps_json, len);
    ret = do_request(c, VFIO_USER_VERSION, iov, 2, NULL, 0, &reply);
    free(ours);
    if (ret < 0) {
        return fail(ret);
    }
    if (reply.nr_fds > 0) {
        tran_msg_close_fds(&reply);
        return fail(-EPROTO);       /* we asked for no twin socket */
    }

    ret = vfu_version_parse(reply.payload, reply.len, &major, &minor, &caps,
                            NULL);
    if (ret < 0) {
        /* A major we do not speak is ENOTSUP; any other fault is theirs. */
        return fail(ret == -ENOTSUP ? ret : -EPROTO);
    }
    if (minor > VFIO_USER_MINOR_VER || caps.twin_socket) {
        /* The server must not go above our minor, nor offer a twin. */
        return fail(-EPROTO);
    }
    set_info(c, major, minor, &caps);
    c->max_xfer = our_xfer < CLIENT_MAX_DATA_XFER ? our_xfer
                                                  : CLIENT_MAX_DATA_XFER;
    return 0;
}

VFU_EXPORT void
vfu_client_close(vfu_client_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    tran_rx_fini(&c->rx);
    free(c->dma);
    client_ioeventfds_clear(c, UINT32_MAX);
    free(c->ioefds);
    free(c);
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
    ret = set_socket_timeouts(c);
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

/* --- Device and regions --- */

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
    ret = tran_send(c->fd, &hdr, &iov, 1, fds, nr_fds);
    if (ret < 0) {
        return fail(ret == -EAGAIN ? -ETIMEDOUT : ret);
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
