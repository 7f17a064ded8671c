/*
 * Framing of vfio-user messages on a UNIX stream socket, shared by the server
 * library and the client library: reading whole messages (and the file
 * descriptors that came with them) however the kernel splits or joins them,
 * and sending a message in one sendmsg().
 */
#ifndef VFU_TRAN_H
#define VFU_TRAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pool.h"
#include "vfio-user.h"

/* Most file descriptors one message may carry. */
#define TRAN_MAX_FDS            16
/* Most fd-carrying messages that can be in the receive buffer at once. */
#define TRAN_MAX_FD_SETS        4
/* Most holds at once (see tran_rx_hold()): one per nested message served. */
#define TRAN_MAX_HOLDS          16

/* One received message; payload points into the receive buffer. */
struct tran_msg {
    struct vfio_user_header hdr;
    uint8_t *payload;
    size_t len;                 /* payload bytes (msg_size - header) */
    int fds[TRAN_MAX_FDS];      /* owned by the message; -1 once taken */
    size_t nr_fds;
    /*
     * Framing faults: the message cannot be served, only answered with an
     * error. 'malformed' when msg_size is smaller than a header (the 16
     * header bytes are consumed as the message), 'oversized' when it exceeds
     * max_msg or the largest receive buffer (its bytes are skipped as they
     * arrive),
     * 'fds_lost'
     * when the kernel truncated its descriptors. A malformed or oversized
     * message has no payload: payload is NULL and len 0, whatever its
     * header's msg_size announced.
     */
    bool malformed;
    bool oversized;
    bool fds_lost;
};

struct tran_fd_set {
    size_t off;                 /* offset of the owning message in buf */
    int fds[TRAN_MAX_FDS];
    size_t nr;
    bool lost;
};

struct tran_rx {
    uint8_t *buf;
    size_t cap;                 /* of buf */
    /*
     * Elastic receivers (tran_rx_init_pooled()): buf is a small buffer of
     * small_cap bytes of their own for ordinary messages, or, while a
     * message larger than that is being received and served, one of
     * pool's big buffers ('big'). NULL pool: one buffer of cap bytes.
     */
    struct tran_pool *pool;
    size_t small_cap;
    bool big;
    uint8_t *spare;             /* a small buffer set aside while big */
    size_t start;               /* first unconsumed byte */
    size_t end;                 /* end of received bytes */
    uint64_t skip;              /* bytes of an oversized message still to drop */
    /*
     * The largest message the reader accepts (SIZE_MAX: what fits the
     * buffer). One announcing more is refused on its header, before its
     * body arrives, and its bytes are skipped as they come.
     */
    size_t max_msg;
    /*
     * tran_rx_direct() on a socket with SO_RCVTIMEO: when set (vfu_now_ms()
     * time), a receive that times out before it is retried, and one after
     * it ends the call with -ETIMEDOUT. 0: a timeout ends it (-EAGAIN).
     */
    int64_t deadline;
    struct tran_fd_set fd_sets[TRAN_MAX_FD_SETS];
    size_t nr_fd_sets;
    uint64_t nr_recv;           /* recvmsg calls that returned data (stats) */
    /*
     * Each hold pins the buffer that was current when it was taken: a
     * message being served points into it. A receive that needs room in a
     * pinned buffer moves the unread bytes to a new one; the pinned buffer
     * is kept (retired) until its hold is released. Buffers no hold pins
     * are compacted in place as usual.
     */
    unsigned hold;
    uint8_t *pins[TRAN_MAX_HOLDS];
    uint8_t *retired[TRAN_MAX_HOLDS];
    bool retired_big[TRAN_MAX_HOLDS];
    size_t nr_retired;
};

/* A receiver with one buffer of @cap bytes for good. */
int tran_rx_init(struct tran_rx *rx, size_t cap);
/*
 * An elastic receiver: a buffer of @small_cap bytes, and for a message
 * larger than that (up to @pool's size) a buffer borrowed from @pool until
 * the message has been served and no hold pins it.
 */
int tran_rx_init_pooled(struct tran_rx *rx, size_t small_cap,
                        struct tran_pool *pool);
/*
 * An elastic receiver between messages gives back its big buffer when
 * what is buffered fits the small one (also done by tran_rx_fill()).
 */
void tran_rx_trim(struct tran_rx *rx);
/* Frees the buffer and closes every fd still held. */
void tran_rx_fini(struct tran_rx *rx);
/* Drops buffered bytes and closes held fds (new connection). */
void tran_rx_reset(struct tran_rx *rx);
/*
 * Pins the bytes received so far (messages being served point into them)
 * until the matching release; receives in between go to a new buffer when
 * the pinned one is full. A message taken after the hold is not pinned by
 * it (it is good until the next receive): hold again to keep it, as the
 * dispatcher does for each message it serves. Returns 0, or -ENOBUFS when
 * too many are held.
 */
int tran_rx_hold(struct tran_rx *rx);
void tran_rx_release(struct tran_rx *rx);

/* True when bytes of an unfinished message are buffered. */
bool tran_rx_pending(const struct tran_rx *rx);

/*
 * tran_rx_fill() @how: wait for bytes; let a signal end the wait; read no
 * further than the end of the next message (two reads a message, but
 * nothing after it is taken from the socket).
 */
#define TRAN_RX_BLOCK   1u
#define TRAN_RX_EINTR   2u
#define TRAN_RX_ONE_MSG 4u

/*
 * One recvmsg() into the buffer. Returns the number of bytes received,
 * -EAGAIN without TRAN_RX_BLOCK when nothing is there, -EINTR with
 * TRAN_RX_EINTR when a signal came first, -ENOTCONN when the peer closed,
 * or another -errno.
 */
ssize_t tran_rx_fill(struct tran_rx *rx, int sock, unsigned how);

/*
 * Takes the next complete message out of the buffer. Returns 1 and fills
 * @msg, or 0 when more bytes are needed. The payload stays valid until the
 * next tran_rx_fill(); fds in @msg must be closed or taken by the caller
 * (tran_msg_close_fds()).
 */
int tran_rx_next(struct tran_rx *rx, struct tran_msg *msg);

/*
 * Receives one message whose size and header the caller expects (a reply
 * carrying bulk data), with its payload after the first @head_len bytes going
 * straight into @dst: saves copying large replies out of the buffer. Works
 * only when nothing is buffered and nothing held (returns 0 otherwise). Returns 1 when the expected message
 * (@expect's msg_id, cmd and msg_size, a reply without error or fds) arrived
 * this way: @msg's payload holds the first @head_len bytes and @dst the rest.
 * Returns 0 when something else came (an error reply, a server request):
 * what was received is in the buffer as if tran_rx_fill() had read it, bytes
 * that landed in @dst included. Or -errno as tran_rx_fill(), -ETIMEDOUT
 * past rx->deadline; bytes of the reply received by then are buffered as
 * the start of a message, as if tran_rx_fill() had read them.
 */
int tran_rx_direct(struct tran_rx *rx, int sock,
                   const struct vfio_user_header *expect, size_t head_len,
                   void *dst, struct tran_msg *msg);

void tran_msg_close_fds(struct tran_msg *msg);

/* The header's flags word, read through the VFIO_USER_F_* masks. */
static inline unsigned
tran_hdr_type(const struct vfio_user_header *hdr)
{
    return hdr->flags & VFIO_USER_F_TYPE_MASK;
}

static inline bool
tran_hdr_no_reply(const struct vfio_user_header *hdr)
{
    return (hdr->flags & VFIO_USER_F_NO_REPLY) != 0;
}

static inline bool
tran_hdr_error(const struct vfio_user_header *hdr)
{
    return (hdr->flags & VFIO_USER_F_ERROR) != 0;
}

/* Flag bits the protocol does not define. */
#define TRAN_HDR_RESERVED_FLAGS \
    ~(uint32_t)(VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY | VFIO_USER_F_ERROR)

/*
 * Sends a header and payload as one message with one sendmsg() (more only if
 * the kernel accepts part of it). @hdr->msg_size is set here. Without a
 * @deadline (0) a send into a full socket blocks; with one (vfu_now_ms()
 * time) it waits for room until then and ends with -ETIMEDOUT, however
 * much of the message went out: the stream is then unusable. Returns 0 or
 * -errno.
 */
int tran_send(int sock, int64_t deadline, struct vfio_user_header *hdr,
              const struct iovec *iov, size_t iovcnt, const int *fds,
              size_t nr_fds);

/* The header of an error reply to @req carrying @err. */
void tran_hdr_init_error(struct vfio_user_header *hdr,
                         const struct vfio_user_header *req, int err);
/* Answers request @req with an error reply carrying @err; 0 or -errno. */
int tran_send_error(int sock, int64_t deadline,
                    const struct vfio_user_header *req, int err);

/* Fills a command or reply header. */
void tran_hdr_init(struct vfio_user_header *hdr, uint16_t msg_id, uint16_t cmd,
                   unsigned type, bool no_reply);

#endif /* VFU_TRAN_H */
