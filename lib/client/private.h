/*
 * What the client library's files share: the client struct and the
 * interfaces between its layers. From the top down:
 *   client.c            connect (plugs client_dma.c's handler into the
 *                       connection layer), negotiate, close
 *   client_migration.c  migration calls, vfu_client_migrate()
 *   client_ioeventfd.c  GET_REGION_IO_FDS, doorbells through ioeventfds
 *                       (uses client_region.c's region calls)
 *   client_region.c     device info, region info, region access, reset
 *   client_irq.c        interrupt info, SET_IRQS, waiting on eventfds
 *   client_dma.c        DMA map/unmap, answering DMA_READ/WRITE, dirty log
 *   client_conn.c       the connection: messages, requests and replies,
 *                       timeouts, raw calls, vfu_client_serve()
 * Each calls only files below it; none calls the server library.
 */
#ifndef VFU_CLIENT_PRIVATE_H
#define VFU_CLIENT_PRIVATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vfio-user-client.h"
#include "common.h"
#include "negotiate.h"
#include "tran.h"

#define HDR_SIZE            sizeof(struct vfio_user_header)
#define CLIENT_RX_SLACK     (64 * 1024)
#define CLIENT_RX_INITIAL   (VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE + \
                             CLIENT_RX_SLACK)
/* The most data one message brings us, whatever we or the server announce. */
#define CLIENT_MAX_DATA_XFER (64u * 1024 * 1024)
#define CLIENT_RX_MAX       ((size_t)CLIENT_MAX_DATA_XFER + CLIENT_RX_SLACK)

/*
 * Reads at least this big are received straight into the caller's buffer.
 * Below it, receiving into our buffer and copying out measured faster
 * (bench/: 64 KiB reads 1.0x raw buffered, 0.7x direct; 1 MiB reads 0.83x
 * buffered, 0.97x direct; see docs/performance.md).
 */
#define DIRECT_READ_MIN     (256u * 1024)

/* Region info: what we offer first, and how often we re-ask. */
#define REGION_INFO_FIRST   4096u
#define REGION_INFO_TRIES   3
#define REGION_INFO_MAX     (1024u * 1024)


/* Memory the server may access (vfu_client_dma_map()), in iova order. */
struct client_dma {
    uint64_t iova;
    uint64_t end;               /* exclusive */
    uint8_t *vaddr;             /* NULL: only the server's mapping */
    uint32_t flags;             /* VFIO_USER_F_DMA_REGION_* */
};

/* An ioeventfd installed with vfu_client_ioeventfds_install(). */
struct client_ioeventfd {
    struct vfu_client_ioeventfd e;
    void *map;                  /* shadow memory mapping, or NULL */
    size_t map_len;
    uint8_t *shadow;            /* where the value goes in it */
};

/* DMA_READ data gathered without a copy from at most this many regions. */
#define DMA_READ_IOV        7     /* + the head: TRAN_MAX_IOV */

/*
 * How long a request waits for its reply unless vfu_client_set_timeout()
 * says otherwise. A blocked receive wakes this many times per timeout
 * (SO_RCVTIMEO) to look at the deadline, so it ends at most a quarter of
 * the timeout late, however the server trickles its bytes.
 */
#define CLIENT_DEFAULT_TIMEOUT_MS   30000
#define CLIENT_TIMEOUT_TICKS        4
/* Requests given up on whose late replies are dropped quietly. */
#define CLIENT_MAX_ABANDONED        16

struct vfu_client;
/*
 * A handler of the server's requests (a command that is not a reply):
 * true when it took @msg (its fds too) and answered it as it asked,
 * false when it is not one the handler serves.
 */
typedef bool client_request_fn(struct vfu_client *c, struct tran_msg *msg);

struct vfu_client {
    int fd;
    struct tran_rx rx;
    uint16_t next_id;
    struct vfu_client_server_info info;
    uint64_t requests;          /* commands sent */
    uint64_t max_xfer;          /* the max_data_xfer_size we announced */
    uint64_t dma_served;        /* DMA_READ / DMA_WRITE requests answered */
    struct client_dma *dma;
    size_t nr_dma;
    size_t cap_dma;
    struct client_ioeventfd *ioefds;    /* installed, in region order */
    size_t nr_ioefds;
    int timeout_ms;             /* per request; -1: none */
    int64_t deadline;           /* of the request under way; 0: none */
    uint16_t abandoned[CLIENT_MAX_ABANDONED];
    unsigned nr_abandoned;
    client_request_fn *on_request;  /* the server's requests; may be NULL */
};


static inline struct iovec
iov_of(const void *base, size_t len)
{
    return (struct iovec){ .iov_base = (void *)(uintptr_t)base,
                           .iov_len = len };
}

/* Returns -1 with errno = @neg_errno (a negative errno). */
static inline int
fail(int neg_errno)
{
    errno = -neg_errno;
    return -1;
}

/*
 * Drops the installed ioeventfds of region @index (UINT32_MAX: all):
 * closes their fds, unmaps shadow memory; the array stays allocated. Here,
 * not in client_ioeventfd.c, so that vfu_client_close() needs no call into
 * that file.
 */
static inline void
client_ioeventfds_clear(struct vfu_client *c, uint32_t index)
{
    size_t kept = 0;

    for (size_t i = 0; i < c->nr_ioefds; i++) {
        struct client_ioeventfd *x = &c->ioefds[i];

        if (index != UINT32_MAX && x->e.region != index) {
            c->ioefds[kept++] = *x;
            continue;
        }
        close(x->e.fd);
        if (x->e.shadow_fd >= 0) {
            close(x->e.shadow_fd);
        }
        if (x->map != NULL) {
            munmap(x->map, x->map_len);
        }
    }
    c->nr_ioefds = kept;
}

/* client_conn.c */
/*
 * Blocks until the next whole message is there, or the deadline of the
 * request under way: 0 with @msg filled (its fds are the caller's), or
 * -errno.
 */
int next_msg(struct vfu_client *c, struct tran_msg *msg);
/* The reply to command @cmd sent as @id: 0 with @reply filled, or -errno. */
int wait_reply(struct vfu_client *c, uint16_t id, uint16_t cmd,
               struct tran_msg *reply);
/* Gives up on request @id: its reply, if it comes, is dropped. */
void abandon(struct vfu_client *c, uint16_t id);
void give_fds(struct tran_msg *msg, int *fds, size_t *nr);
int send_cmd(struct vfu_client *c, uint16_t cmd, bool no_reply,
             const struct iovec *iov, size_t iovcnt, const int *fds,
             size_t nr_fds, uint16_t *id);
int do_request(struct vfu_client *c, uint16_t cmd, const struct iovec *iov,
               size_t iovcnt, const int *fds, size_t nr_fds,
               struct tran_msg *reply);
int typed_request(struct vfu_client *c, uint16_t cmd, bool posted,
                  const struct iovec *iov, size_t iovcnt, size_t min,
                  size_t max, struct tran_msg *reply);
/* Applies the timeout to the socket: SO_RCVTIMEO ticks (sends carry it). */
int client_apply_timeouts(struct vfu_client *c);
/*
 * Sends a message (tran_send()). A send that fails other than on its
 * arguments (EINVAL) may have sent part of the message: the connection is
 * shut down then, so every later call fails with ENOTCONN instead of
 * sending into a stream the server can no longer frame.
 */
int client_send(struct vfu_client *c, int64_t deadline,
                struct vfio_user_header *hdr, const struct iovec *iov,
                size_t iovcnt, const int *fds, size_t nr_fds);
/* When a send started now must be done (0: never gives up). */
static inline int64_t
client_send_deadline(const struct vfu_client *c)
{
    return c->timeout_ms < 0 ? 0 : vfu_now_ms() + c->timeout_ms;
}
/* What the server announced (before negotiation: the spec's defaults). */
void client_set_info(struct vfu_client *c, uint16_t major, uint16_t minor,
                     const struct vfu_caps *caps);
/* The handler of the server's requests from now on (NULL: none). */
void client_on_request(struct vfu_client *c, client_request_fn *fn);

/* client_dma.c */
/* Answers a DMA_READ / DMA_WRITE from the server: a client_request_fn. */
bool client_dma_request(struct vfu_client *c, struct tran_msg *msg);

#endif /* VFU_CLIENT_PRIVATE_H */
