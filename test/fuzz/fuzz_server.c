/*
 * Fuzzer of the server library through its public API (libvfio-user.h):
 * a device with every kind of region, capability, interrupt, DMA,
 * migration, reset and quiesce callback, and ioeventfds, served with a
 * non-blocking context in this thread, and a client that is the input.
 *
 * Each input is a fresh device and a client on a real UNIX socket: after
 * VERSION (built from the first byte, or itself fuzzed) the input is a
 * stream of operations: messages (a header built around fuzzed bytes, or
 * raw bytes) with fds attached (memfds, eventfds, pipes, ...), calls the
 * device makes (vfu_irq_trigger, its own DMA, vfu_device_quiesced, how its
 * callbacks behave), reconnecting and half-closing. The server is run
 * after each. Its DMA_READ / DMA_WRITE requests are answered from the
 * same input when the library waits for them (the poll() hook): correctly,
 * with an error, malformed, out of order, after sending more requests (so
 * waits nest), never (the clock jumps past the timeout), or by hanging up.
 *
 * Checked: no sanitizer report; what the server sends is well-formed (a
 * reply, or a DMA_READ / DMA_WRITE laid out as the spec says); callbacks
 * get arguments inside what the device declared; a mapping the device
 * holds stays mapped until its unregister callback; after each input every
 * fd and every mapping of the client's memory is gone.
 *
 * The device's BAR0 has a register block at DOORBELL: a 16-byte write
 * there is a device operation (struct dev_op), so a client's write makes
 * the device do DMA (by message where memory came without an fd), use
 * vfu_sgl_get(), hold a mapping, or raise an interrupt from a callback.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz.h"
#include "libvfio-user.h"

#define HDR         sizeof(struct vfio_user_header)
#define BAR0_SIZE   8192
#define DOORBELL    0xf00           /* struct dev_op */
#define MSIX_TABLE  0x1000          /* in BAR0 */
#define MSIX_PBA    0x1800
#define BAR1_SIZE   256             /* I/O */
#define BAR2_SIZE   (64 * 1024)     /* 64-bit, prefetchable, memfd */
#define BAR4_SIZE   (1024 * 1024)   /* large, callback */
#define ROM_SIZE    4096
#define CFG_SIZE    4096
#define DMA_BUF     (256 * 1024)
#define MIG_STATE   6000            /* bytes read_data produces */
#define MAX_SGS     8
#define MAX_ACTIONS 512             /* peer actions per input */

/* What a 16-byte write at DOORBELL makes the device do. */
struct dev_op {
    uint8_t op;
    uint8_t flags;                  /* bit 0: VFU_SGL_DIRECT_ACCESS */
    uint16_t max_sgs;
    uint32_t len;
    uint64_t addr;
} __attribute__((packed));

enum { OP_READ, OP_WRITE, OP_GET, OP_HOLD, OP_DIRTY, OP_IRQ, OP_RW,
       OP_TOUCH, NR_OPS };

/* Device behaviour (the second input byte, and MODE operations). */
#define FAIL_BAR        (1u << 0)
#define FAIL_CFG        (1u << 1)
#define FAIL_RESET      (1u << 2)
#define FAIL_TRANSITION (1u << 3)
#define FAIL_MIGDATA    (1u << 4)
#define FAIL_DATASIZE   (1u << 5)
#define SHORT_BAR       (1u << 6)   /* region callbacks return too few */
#define CB_DMA          (1u << 7)   /* reset/transition/register do DMA */

enum { QUIESCE_NOW, QUIESCE_LATER, QUIESCE_FAIL };

static struct dev {
    vfu_ctx_t *ctx;
    uint8_t bar0[BAR0_SIZE];
    uint8_t bar1[BAR1_SIZE];
    int bar2_fd;
    uint8_t rom[ROM_SIZE];
    uint8_t cfg[CFG_SIZE];
    int ioefd, shadow_fd;
    unsigned mode;                  /* FAIL_* ... */
    int quiesce;                    /* QUIESCE_* */
    bool busy;                      /* quiesce deferred, not completed */
    struct dev_op last_op;
    unsigned depth;                 /* device ops running (nesting) */
    int maps;                       /* registered minus unregistered */
    struct iovec held;              /* a mapping kept across requests */
    uint8_t held_sg[64];
    size_t mig_out, mig_in;
} dev;

static uint8_t bar4[BAR4_SIZE];
static uint8_t dmabuf[4][DMA_BUF];  /* one per nesting depth */

/* --- The peer: the fuzzed client --- */

struct inbox {
    uint8_t *buf;
    size_t len, cap;
};

struct dma_req {
    uint16_t id, cmd;
    uint64_t addr, count;
    bool twin;
};

static struct peer {
    int sock, twin;
    bool shut;
    bool dead;                      /* the server dropped us */
    uint8_t caps;                   /* how we negotiated */
    uint16_t next_id;
    struct inbox in[2];             /* main, twin */
    struct dma_req reqs[16];
    size_t nr_reqs;
    struct fz *input;
    int actions;
} peer;

static char sock_path[108];

static void serve(void);
static void run_op(const struct dev_op *op);

/* Every message is formatted; VFU_FUZZ_LOG=1 shows them, for debugging. */
static void
log_msg(vfu_ctx_t *ctx, int level, const char *msg)
{
    static int show = -1;

    (void)ctx;
    if (show < 0) {
        show = getenv("VFU_FUZZ_LOG") != NULL;
    }
    if (show) {
        fprintf(stderr, "server[%d]: %s\n", level, msg);
    }
}

/* Checks one message the server sent and notes DMA requests. */
static void
server_msg(const struct vfio_user_header *hdr, const uint8_t *payload,
           size_t len, bool twin)
{
    unsigned type = hdr->flags & VFIO_USER_F_TYPE_MASK;

    FZ_CHECK(!(hdr->flags & ~(VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY |
                              VFIO_USER_F_ERROR)),
             "server sent flags %#x", hdr->flags);
    if (type == VFIO_USER_F_TYPE_REPLY) {
        FZ_CHECK(!twin, "a reply on the twin socket");
        FZ_CHECK(!(hdr->flags & VFIO_USER_F_ERROR) ||
                 (len == 0 && hdr->error_no != 0),
                 "error reply with errno %u and %zu bytes", hdr->error_no,
                 len);
        return;
    }
    FZ_CHECK(type == VFIO_USER_F_TYPE_COMMAND &&
             (hdr->cmd == VFIO_USER_DMA_READ ||
              hdr->cmd == VFIO_USER_DMA_WRITE) &&
             !(hdr->flags & (VFIO_USER_F_ERROR | VFIO_USER_F_NO_REPLY)),
             "server sent command %u, flags %#x", hdr->cmd, hdr->flags);
    FZ_CHECK(twin == (peer.twin >= 0), "DMA request on the wrong socket");
    struct vfio_user_dma_rw rw;
    FZ_CHECK(len >= sizeof(rw), "DMA request of %zu bytes", len);
    memcpy(&rw, payload, sizeof(rw));
    FZ_CHECK(rw.count > 0 &&
             len == sizeof(rw) + (hdr->cmd == VFIO_USER_DMA_WRITE ? rw.count
                                                                  : 0),
             "DMA request for %llu bytes in %zu",
             (unsigned long long)rw.count, len);
    if (peer.nr_reqs == 16) {
        /* Forget the oldest: the server gave up on it (timed out). */
        memmove(&peer.reqs[0], &peer.reqs[1], 15 * sizeof(peer.reqs[0]));
        peer.nr_reqs--;
    }
    peer.reqs[peer.nr_reqs++] = (struct dma_req){
        .id = hdr->msg_id, .cmd = hdr->cmd, .addr = rw.addr,
        .count = rw.count, .twin = twin,
    };
}

/* Reads what the server sent on one socket, without blocking. */
static void
drain_one(int fd, struct inbox *box, bool twin)
{
    for (;;) {
        union {
            char buf[CMSG_SPACE(64 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        ssize_t n;

        if (box->cap - box->len < 65536) {
            box->cap = box->cap == 0 ? (1 << 20) : box->cap * 2;
            FZ_CHECK(box->cap <= (64u << 20), "server sent too much");
            box->buf = realloc(box->buf, box->cap);
            FZ_CHECK(box->buf != NULL, "out of memory");
        }
        iov = (struct iovec){ box->buf + box->len, box->cap - box->len };
        n = fz_real_recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c != NULL;
             c = CMSG_NXTHDR(&mh, c)) {
            int nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < nfds; i++) {
                int rfd;
                memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(rfd);
            }
        }
        if (n <= 0) {
            break;
        }
        box->len += (size_t)n;
    }
    /* Whole messages out of the buffer. */
    size_t off = 0;
    while (box->len - off >= HDR) {
        struct vfio_user_header hdr;
        memcpy(&hdr, box->buf + off, HDR);
        FZ_CHECK(hdr.msg_size >= HDR, "server sent msg_size %u", hdr.msg_size);
        if (box->len - off < hdr.msg_size) {
            break;
        }
        server_msg(&hdr, box->buf + off + HDR, hdr.msg_size - HDR, twin);
        off += hdr.msg_size;
    }
    memmove(box->buf, box->buf + off, box->len - off);
    box->len -= off;
}

static void
drain(void)
{
    if (peer.sock >= 0) {
        drain_one(peer.sock, &peer.in[0], false);
    }
    if (peer.twin >= 0) {
        drain_one(peer.twin, &peer.in[1], true);
    }
}

/* Sends on the main (or twin) socket, letting the server read if full. */
static void
peer_send(const void *buf, size_t len, int *fds, size_t nr, bool twin,
          bool pump)
{
    int sock = twin && peer.twin >= 0 ? peer.twin : peer.sock;

    if (sock >= 0 && !peer.shut) {
        (void)fz_send_all(sock, buf, len, fds, nr, pump ? serve : NULL);
    }
    fz_close_fds(fds, nr);
}

/* Pattern of client memory, so that reads bring recognisable bytes. */
static void
fill_guest(uint8_t *p, uint64_t addr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)((addr + i) * 7);
    }
}

/* Answers request @r: @how 0 correct, 1 error, 2 resized, 3 wrong fields. */
static void
answer(const struct dma_req *r, int how, struct fz *in, bool other_socket)
{
    struct vfio_user_header hdr = { .msg_id = r->id, .cmd = r->cmd,
                                    .flags = VFIO_USER_F_TYPE_REPLY };
    struct vfio_user_dma_rw rw = { .addr = r->addr, .count = r->count };
    size_t len = sizeof(rw), have;
    int fds[FZ_MAX_FDS];
    size_t nr = 0;
    uint8_t *msg;

    if (r->cmd == VFIO_USER_DMA_READ) {
        len += r->count;
    } else if (how == 0 && (fz_u8(in) & 1)) {
        len = 0;                    /* a bare DMA_WRITE reply is fine too */
    }
    switch (how) {
    case 1: {
        uint8_t e = fz_u8(in);
        hdr.flags |= VFIO_USER_F_ERROR;
        hdr.error_no = e == 0xff ? fz_u32(in) : e;     /* any value */
        len = 0;
        break;
    }
    case 2:
        len += (size_t)(int8_t)fz_u8(in);
        if (len > sizeof(rw) + r->count + 128) {
            len = 0;
        }
        break;
    case 3:
        rw.addr ^= fz_u8(in);
        rw.count ^= fz_u8(in);
        break;
    case 4:
        nr = fz_make_fds(in, fds);
        break;
    default:
        break;
    }
    have = len > sizeof(rw) ? len : sizeof(rw);
    msg = calloc(1, HDR + have);
    FZ_CHECK(msg != NULL, "out of memory");
    hdr.msg_size = (uint32_t)(HDR + len);
    memcpy(msg, &hdr, HDR);
    memcpy(msg + HDR, &rw, sizeof(rw));
    if (len > sizeof(rw)) {
        fill_guest(msg + HDR + sizeof(rw), r->addr, len - sizeof(rw));
    }
    peer_send(msg, HDR + len, fds, nr, r->twin != other_socket, false);
    free(msg);
}

static void drop_req(size_t i)
{
    peer.reqs[i] = peer.reqs[--peer.nr_reqs];
}

static void peer_hangup(void)
{
    if (peer.sock >= 0) {
        shutdown(peer.sock, SHUT_WR);
    }
    if (peer.twin >= 0) {
        shutdown(peer.twin, SHUT_WR);
    }
    peer.shut = true;
}

static void send_op_msg(struct fz *in, bool pump);
static void peer_connect(uint8_t caps, struct fz *in);

/*
 * The library waits for the client (a DMA reply): the peer acts, from the
 * input, until the server has something to read, or the wait times out.
 */
static int
hook_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    for (;;) {
        struct fz *in = peer.input;
        int ret = fz_real_poll(fds, nfds, 0);

        if (ret != 0) {
            return ret;
        }
        if (peer.shut) {
            /* Nothing more will come (cannot happen: EOF is readable). */
            fz_clock_advance(timeout > 0 ? timeout + 1 : 1);
            return 0;
        }
        drain();
        if (fz_empty(in) || ++peer.actions > MAX_ACTIONS) {
            /* Out of input: answer everything, or leave. */
            if (peer.nr_reqs == 0) {
                peer_hangup();
            }
            while (peer.nr_reqs > 0) {
                answer(&peer.reqs[0], 0, in, false);
                drop_req(0);
            }
            continue;
        }
        uint8_t a = fz_u8(in);
        size_t which = peer.nr_reqs > 0 ? ((a >> 3) & 15) % peer.nr_reqs : 0;
        int kind = a & 7;

        if (peer.nr_reqs == 0 && kind <= 4) {
            kind = 5;
        }
        switch (kind) {
        case 0: case 1: case 2: case 3: case 4:
            answer(&peer.reqs[which], kind, in, (a & 0x80) != 0);
            drop_req(which);
            break;
        case 5:                     /* a request of ours first */
            send_op_msg(in, false);
            break;
        case 6: {                   /* a reply to nothing */
            struct vfio_user_header hdr = {
                .msg_id = fz_u16(in), .cmd = fz_u8(in),
                .flags = VFIO_USER_F_TYPE_REPLY | (fz_u8(in) & 0x30),
                .msg_size = HDR,
            };
            peer_send(&hdr, HDR, NULL, 0, (a & 0x80) != 0, false);
            break;
        }
        default:                    /* never answer: the wait times out */
            if (a & 0x80) {
                peer_hangup();
                break;
            }
            fz_clock_advance(timeout > 0 ? timeout + 1 : 1);
            return 0;
        }
    }
}

static const struct fz_hooks hooks = { .poll = hook_poll, .drain = drain };

/* --- The device --- */

static bool
bounded(size_t off, size_t count, size_t size)
{
    return off <= size && count <= size - off;
}

static ssize_t
fail_or_short(size_t count)
{
    if (dev.mode & FAIL_BAR) {
        errno = EIO;
        return -1;
    }
    return (dev.mode & SHORT_BAR) && count > 1 ? (ssize_t)count - 1
                                               : (ssize_t)count;
}

static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
            bool is_write)
{
    struct dev_op op;

    (void)ctx;
    FZ_CHECK(bounded((size_t)off, count, BAR0_SIZE),
             "BAR0 access %zu at %lld", count, (long long)off);
    if (is_write && off == DOORBELL && count >= sizeof(op)) {
        memcpy(&op, buf, sizeof(op));
        dev.last_op = op;
        run_op(&op);
        return fail_or_short(count);
    }
    if (is_write) {
        memcpy(dev.bar0 + off, buf, count);
    } else {
        memcpy(buf, dev.bar0 + off, count);
    }
    return fail_or_short(count);
}

static ssize_t
bar1_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
            bool is_write)
{
    (void)ctx;
    FZ_CHECK(bounded((size_t)off, count, BAR1_SIZE), "BAR1 access");
    if (is_write) {
        memcpy(dev.bar1 + off, buf, count);
    } else {
        memcpy(buf, dev.bar1 + off, count);
    }
    return fail_or_short(count);
}

static ssize_t
bar4_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
            bool is_write)
{
    (void)ctx;
    FZ_CHECK(bounded((size_t)off, count, BAR4_SIZE), "BAR4 access");
    if (is_write) {
        memcpy(bar4 + off, buf, count);
    } else {
        memcpy(buf, bar4 + off, count);
    }
    return fail_or_short(count);
}

static ssize_t
rom_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
           bool is_write)
{
    (void)ctx;
    FZ_CHECK(!is_write, "ROM written");
    FZ_CHECK(bounded((size_t)off, count, ROM_SIZE), "ROM access");
    memcpy(buf, dev.rom + off, count);
    return fail_or_short(count);
}

static ssize_t
cfg_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
           bool is_write)
{
    (void)ctx;
    FZ_CHECK(bounded((size_t)off, count, CFG_SIZE), "config access");
    if (dev.mode & FAIL_CFG) {
        errno = EIO;
        return -1;
    }
    if (is_write) {
        memcpy(dev.cfg + off, buf, count);
    } else {
        memcpy(buf, dev.cfg + off, count);
    }
    return (ssize_t)count;
}

/* The device's last operation again, from inside another callback. */
static void
callback_dma(void)
{
    if ((dev.mode & CB_DMA) && dev.depth == 0) {
        struct dev_op op = dev.last_op;
        run_op(&op);
    }
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    (void)ctx;
    FZ_CHECK(type == VFU_RESET_DEVICE || type == VFU_RESET_LOST_CONN ||
             type == VFU_RESET_PCI_FLR, "reset type %d", (int)type);
    if (type != VFU_RESET_LOST_CONN) {
        callback_dma();
    }
    if (dev.mode & FAIL_RESET) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static int
quiesce_cb(vfu_ctx_t *ctx)
{
    (void)ctx;
    FZ_CHECK(!dev.busy, "quiesce asked again while deferred");
    switch (dev.quiesce) {
    case QUIESCE_LATER:
        dev.busy = true;
        errno = EBUSY;
        return -1;
    case QUIESCE_FAIL:
        errno = EIO;
        return -1;
    default:
        return 0;
    }
}

static void
touch(const uint8_t *p, size_t len, bool write)
{
    volatile const uint8_t *v = p;

    if (len == 0) {
        return;
    }
    (void)v[0];
    (void)v[len - 1];
    if (write) {
        ((volatile uint8_t *)p)[len - 1] = v[len - 1];
    }
}

static void
dma_register(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    (void)ctx;
    FZ_CHECK(info->iova.iov_len > 0 && info->prot != 0 &&
             !(info->prot & ~(PROT_READ | PROT_WRITE)), "register info");
    FZ_CHECK((info->vaddr == NULL) == (info->mapping.iov_base == NULL) &&
             (info->vaddr == NULL || info->page_size >= 4096),
             "register mapping info");
    if (info->vaddr != NULL) {
        touch(info->vaddr, info->iova.iov_len, false);
    }
    dev.maps++;
    callback_dma();
}

static void
dma_unregister(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    uint8_t *base = info->vaddr;

    (void)ctx;
    FZ_CHECK(dev.maps > 0, "unregister without register");
    dev.maps--;
    if (base != NULL) {
        touch(base, info->iova.iov_len, false);     /* still mapped */
        if (dev.held.iov_base != NULL &&
            (uint8_t *)dev.held.iov_base >= base &&
            (uint8_t *)dev.held.iov_base < base + info->iova.iov_len) {
            dev.held.iov_base = NULL;               /* let go of it */
        }
    }
}

static void
irq_state(vfu_ctx_t *ctx, uint32_t start, uint32_t count, bool mask)
{
    (void)ctx;
    (void)mask;
    FZ_CHECK(count > 0 && start + count <= 2048, "irq state %u+%u", start,
             count);
}

static int
mig_transition(vfu_ctx_t *ctx, vfu_migr_state_t state)
{
    (void)ctx;
    FZ_CHECK(state <= VFU_MIGR_STATE_RESUME, "migration state %d",
             (int)state);
    callback_dma();
    if (dev.mode & FAIL_TRANSITION) {
        errno = EBUSY;
        return -1;
    }
    if (state == VFU_MIGR_STATE_PRE_COPY ||
        state == VFU_MIGR_STATE_STOP_AND_COPY) {
        dev.mig_out = 0;
    }
    if (state == VFU_MIGR_STATE_RESUME) {
        dev.mig_in = 0;
    }
    return 0;
}

static ssize_t
mig_read(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    size_t n = MIG_STATE - dev.mig_out;

    (void)ctx;
    FZ_CHECK(count > 0 && count <= (1u << 20), "read_data of %llu",
             (unsigned long long)count);
    if (dev.mode & FAIL_MIGDATA) {
        errno = EIO;
        return -1;
    }
    n = n < count ? n : (size_t)count;
    memset(buf, 0x5a, n);
    dev.mig_out += n;
    return (ssize_t)n;
}

static ssize_t
mig_write(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    (void)ctx;
    FZ_CHECK(count > 0 && count <= (1u << 20), "write_data of %llu",
             (unsigned long long)count);
    touch(buf, (size_t)count, false);
    if (dev.mode & FAIL_MIGDATA) {
        errno = EIO;
        return -1;
    }
    /* Takes at most 4 KiB at a time: the library offers the rest again. */
    count = count < 4096 ? count : 4096;
    dev.mig_in += count;
    return (ssize_t)count;
}

static int
mig_data_size(vfu_ctx_t *ctx, uint64_t *len)
{
    (void)ctx;
    if (dev.mode & FAIL_DATASIZE) {
        errno = ENODEV;
        return -1;
    }
    *len = MIG_STATE - dev.mig_out;
    return 0;
}

/* One device operation (struct dev_op); nests as callbacks run inside. */
static void
run_op(const struct dev_op *op)
{
    uint8_t sg[MAX_SGS * 64];
    struct iovec iov[MAX_SGS];
    size_t len = op->len % (DMA_BUF + 1);
    size_t max = op->max_sgs % (MAX_SGS + 1);
    int flags = (op->flags & 1) ? VFU_SGL_DIRECT_ACCESS : 0;
    int prot, n, ret;
    uint8_t *buf;

    FZ_CHECK(dma_sg_size() <= 64, "dma_sg_t of %zu bytes", dma_sg_size());
    if (dev.depth >= 4) {
        return;
    }
    buf = dmabuf[dev.depth++];
    switch (op->op % NR_OPS) {
    case OP_IRQ:
        (void)vfu_irq_trigger(dev.ctx, (uint32_t)op->addr);
        goto out;
    case OP_TOUCH:
        if (dev.held.iov_base != NULL) {
            touch(dev.held.iov_base, dev.held.iov_len, true);
            vfu_sgl_put(dev.ctx, (dma_sg_t *)dev.held_sg, &dev.held, 1);
            dev.held.iov_base = NULL;
        }
        goto out;
    case OP_READ:
        prot = PROT_READ;
        break;
    case OP_WRITE: case OP_DIRTY:
        prot = PROT_WRITE;
        break;
    default:
        prot = PROT_READ | PROT_WRITE;
        break;
    }
    n = vfu_addr_to_sgl(dev.ctx, (vfu_dma_addr_t)(uintptr_t)op->addr, len,
                        (dma_sg_t *)sg, max, prot);
    if (n < 0) {
        FZ_CHECK(n == -1 || (errno == 0 && (size_t)(-n - 1) > max),
                 "vfu_addr_to_sgl returned %d", n);
        goto out;
    }
    FZ_CHECK((size_t)n <= max && n > 0 && len > 0, "%d entries", n);
    switch (op->op % NR_OPS) {
    case OP_READ:
        (void)vfu_sgl_read(dev.ctx, (dma_sg_t *)sg, (size_t)n, buf, flags);
        break;
    case OP_WRITE:
        memset(buf, op->flags, len);
        (void)vfu_sgl_write(dev.ctx, (dma_sg_t *)sg, (size_t)n, buf, flags);
        break;
    case OP_GET:
        ret = vfu_sgl_get(dev.ctx, (dma_sg_t *)sg, iov, (size_t)n, 0);
        if (ret == 0) {
            size_t total = 0;
            for (int i = 0; i < n; i++) {
                touch(iov[i].iov_base, iov[i].iov_len, true);
                total += iov[i].iov_len;
            }
            FZ_CHECK(total == len, "entries cover %zu of %zu bytes", total,
                     len);
            vfu_sgl_put(dev.ctx, (dma_sg_t *)sg, iov, (size_t)n);
        }
        break;
    case OP_HOLD:
        if (dev.held.iov_base == NULL &&
            vfu_sgl_get(dev.ctx, (dma_sg_t *)sg, iov, 1, 0) == 0) {
            dev.held = iov[0];
            memcpy(dev.held_sg, sg, dma_sg_size());
        }
        break;
    case OP_DIRTY:
        vfu_sgl_mark_dirty(dev.ctx, (dma_sg_t *)sg, (size_t)n);
        (void)vfu_sg_is_mappable(dev.ctx, (dma_sg_t *)sg);
        break;
    default:                        /* OP_RW */
        if (vfu_sgl_read(dev.ctx, (dma_sg_t *)sg, (size_t)n, buf, flags) == 0) {
            (void)vfu_sgl_write(dev.ctx, (dma_sg_t *)sg, (size_t)n, buf,
                                flags);
        }
        break;
    }
out:
    dev.depth--;
}

static void
add_caps(vfu_ctx_t *ctx)
{
    struct pmcap pm = { .hdr.id = PCI_CAP_ID_PM };
    struct msicap msi = { .hdr.id = PCI_CAP_ID_MSI };
    struct msixcap msix = { .hdr.id = PCI_CAP_ID_MSIX };
    struct pxcap px = { .hdr.id = PCI_CAP_ID_EXP };
    struct dsncap dsn = { .hdr = { .id = PCI_EXT_CAP_ID_DSN, .version = 1 } };
    uint8_t vsc[8] = { PCI_CAP_ID_VNDR, 0, sizeof(vsc), 'v', 'f', 'u' };
    uint8_t vsc_cb[12] = { PCI_CAP_ID_VNDR, 0, sizeof(vsc_cb) };
    uint8_t vsc_ro[8] = { PCI_CAP_ID_VNDR, 0, sizeof(vsc_ro), 1, 2, 3 };
    union {
        struct pcie_ext_cap_vsc_hdr h;
        uint8_t raw[16];
    } evsc = { .h = { .hdr = { .id = PCI_EXT_CAP_ID_VNDR, .version = 1 },
                      .id = 0x1234, .rev = 1, .len = 16 } };

    pm.pc.vs = 3;
    pm.pc.psup = 0x09;
    pm.pmcs.nsfrst = 0;             /* D3hot -> D0 resets */
    msi.mc.mmc = 2;                 /* 4 vectors */
    msi.mc.c64 = 1;
    msi.mc.pvm = 1;
    msix.mxc.ts = 7;                /* 8 vectors */
    msix.mtab.tbir = 0;
    msix.mtab.to = MSIX_TABLE >> 3;
    msix.mpba.pbir = 0;
    msix.mpba.pbao = MSIX_PBA >> 3;
    px.pxcaps.ver = 2;
    px.pxcaps.dpt = PCI_EXP_TYPE_ENDPOINT;
    px.pxdcap.flrc = 1;
    px.pxdcap2.ctrs = 0x2;
    px.pxdcap2.ctds = 1;
    dsn.sn_lo = 0x12345678;
    FZ_CHECK(vfu_pci_add_capability(ctx, 0, 0, &pm) > 0 &&
             vfu_pci_add_capability(ctx, 0, 0, &msi) > 0 &&
             vfu_pci_add_capability(ctx, 0, 0, &msix) > 0 &&
             vfu_pci_add_capability(ctx, 0, 0, &px) > 0 &&
             vfu_pci_add_capability(ctx, 0, 0, vsc) > 0 &&
             vfu_pci_add_capability(ctx, 0, VFU_CAP_FLAG_CALLBACK,
                                    vsc_cb) > 0 &&
             vfu_pci_add_capability(ctx, 0, VFU_CAP_FLAG_READONLY,
                                    vsc_ro) > 0 &&
             vfu_pci_add_capability(ctx, 0, VFU_CAP_FLAG_EXTENDED,
                                    &dsn) > 0 &&
             vfu_pci_add_capability(ctx, 0, VFU_CAP_FLAG_EXTENDED,
                                    &evsc) > 0, "add capabilities");
}

static void
dev_create(uint8_t behaviour)
{
    static const vfu_migration_callbacks_t mig = {
        .version = VFU_MIGR_CALLBACKS_VERS, .transition = mig_transition,
        .read_data = mig_read, .write_data = mig_write,
    };
    struct iovec areas[2] = {
        { .iov_base = (void *)0, .iov_len = 4096 },
        { .iov_base = (void *)8192, .iov_len = 4096 },
    };
    vfu_ctx_t *ctx;
    bool ok;

    memset(dev.bar0, 0, sizeof(dev.bar0));
    memset(dev.bar1, 0, sizeof(dev.bar1));
    memset(dev.cfg, 0, sizeof(dev.cfg));
    dev.mode = behaviour & ~3u;
    dev.quiesce = behaviour & 3;
    if (dev.quiesce > QUIESCE_FAIL) {
        dev.quiesce = QUIESCE_NOW;
    }
    dev.busy = false;
    dev.depth = 0;
    dev.maps = 0;
    dev.held.iov_base = NULL;
    dev.mig_out = dev.mig_in = 0;
    memset(&dev.last_op, 0, sizeof(dev.last_op));

    ctx = vfu_create_ctx(VFU_TRANS_SOCK, sock_path,
                         LIBVFIO_USER_FLAG_ATTACH_NB, &dev, VFU_DEV_TYPE_PCI);
    FZ_CHECK(ctx != NULL, "vfu_create_ctx: %s", strerror(errno));
    dev.ctx = ctx;
    dev.bar2_fd = memfd_create("vfu-fuzz-bar2", MFD_CLOEXEC);
    dev.ioefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    dev.shadow_fd = memfd_create("vfu-fuzz-shadow", MFD_CLOEXEC);
    FZ_CHECK(dev.bar2_fd >= 0 && ftruncate(dev.bar2_fd, BAR2_SIZE) == 0 &&
             dev.ioefd >= 0 && dev.shadow_fd >= 0 &&
             ftruncate(dev.shadow_fd, 4096) == 0, "device fds");
    ok = vfu_setup_log(ctx, log_msg, LOG_DEBUG) == 0 &&
         vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, PCI_HEADER_TYPE_NORMAL,
                      1) == 0;
    vfu_pci_set_id(ctx, 0x1af4, 0x10f0, 0x1af4, 0x0001);
    vfu_pci_set_class(ctx, 0xff, 0, 0);
    ok = ok &&
         vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE,
                          bar0_access, VFU_REGION_FLAG_RW |
                          VFU_REGION_FLAG_MEM, NULL, 0, -1, 0) == 0 &&
         vfu_setup_region(ctx, VFU_PCI_DEV_BAR1_REGION_IDX, BAR1_SIZE,
                          bar1_access, VFU_REGION_FLAG_RW, NULL, 0, -1,
                          0) == 0 &&
         vfu_setup_region(ctx, VFU_PCI_DEV_BAR2_REGION_IDX, BAR2_SIZE, NULL,
                          VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                          VFU_REGION_FLAG_64_BITS | VFU_REGION_FLAG_PREFETCH,
                          areas, 2, dev.bar2_fd, 0) == 0 &&
         vfu_setup_region(ctx, VFU_PCI_DEV_BAR4_REGION_IDX, BAR4_SIZE,
                          bar4_access, VFU_REGION_FLAG_RW |
                          VFU_REGION_FLAG_MEM | VFU_REGION_FLAG_64_BITS,
                          NULL, 0, -1, 0) == 0 &&
         vfu_setup_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, ROM_SIZE,
                          rom_access, VFU_REGION_FLAG_READ, NULL, 0, -1,
                          0) == 0 &&
         vfu_setup_region(ctx, VFU_PCI_DEV_CFG_REGION_IDX, CFG_SIZE,
                          cfg_access, VFU_REGION_FLAG_RW, NULL, 0, -1, 0) == 0;
    FZ_CHECK(ok, "device regions: %s", strerror(errno));
    add_caps(ctx);
    ok = vfu_setup_device_nr_irqs(ctx, VFU_DEV_INTX_IRQ, 1) == 0 &&
         vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSI_IRQ, 4) == 0 &&
         vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSIX_IRQ, 8) == 0 &&
         vfu_setup_irq_state_callback(ctx, VFU_DEV_INTX_IRQ, irq_state) == 0 &&
         vfu_setup_irq_state_callback(ctx, VFU_DEV_MSI_IRQ, irq_state) == 0 &&
         vfu_setup_irq_state_callback(ctx, VFU_DEV_MSIX_IRQ, irq_state) == 0 &&
         vfu_setup_device_reset_cb(ctx, reset_cb) == 0 &&
         vfu_setup_device_dma(ctx, 8, dma_register, dma_unregister) == 0 &&
         vfu_setup_device_migration_callbacks(ctx, &mig) == 0 &&
         vfu_setup_device_migration_data_size(ctx, mig_data_size) == 0;
    FZ_CHECK(ok, "device set-up: %s", strerror(errno));
    vfu_setup_device_quiesce_cb(ctx, quiesce_cb);
    ok = vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, dev.ioefd,
                              0x100, 4, 0, 0, -1, 0) == 0 &&
         vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, dev.ioefd,
                              0x108, 4, KVM_IOEVENTFD_FLAG_DATAMATCH, 7, -1,
                              0) == 0 &&
         vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR2_REGION_IDX, dev.ioefd,
                              0x0, 8, 0, 0, dev.shadow_fd, 8) == 0;
    FZ_CHECK(ok, "ioeventfds: %s", strerror(errno));
    FZ_CHECK(vfu_realize_ctx(ctx) == 0, "realize: %s", strerror(errno));
}

static void
dev_destroy(void)
{
    vfu_destroy_ctx(dev.ctx);
    dev.ctx = NULL;
    close(dev.bar2_fd);
    close(dev.ioefd);
    close(dev.shadow_fd);
}

/* --- Driving the server --- */

/* Lets the server read what has come; notes a dropped connection. */
static void
serve(void)
{
    if (dev.ctx == NULL || peer.dead) {
        return;
    }
    if (vfu_run_ctx(dev.ctx) < 0 && errno == ENOTCONN) {
        peer.dead = true;
    }
}

static void
peer_close(void)
{
    if (peer.sock >= 0) {
        close(peer.sock);
    }
    if (peer.twin >= 0) {
        close(peer.twin);
    }
    peer.sock = peer.twin = -1;
    peer.nr_reqs = 0;
    peer.in[0].len = peer.in[1].len = 0;
}

/* The VERSION we propose, from one byte. */
static size_t
version_msg(uint8_t *buf, size_t cap, uint8_t caps)
{
    static const unsigned fds[4] = { 16, 1, 0, 4 };
    static const unsigned xfer[4] = { 1 << 20, 4096, 65536, 2 << 20 };
    struct vfio_user_header hdr = { .msg_id = peer.next_id++,
                                    .cmd = VFIO_USER_VERSION };
    struct vfio_user_version ver = { .major = 0, .minor = 0 };
    int n;

    n = snprintf((char *)buf + HDR + sizeof(ver), cap - HDR - sizeof(ver),
                 "{\"capabilities\":{\"max_msg_fds\":%u,"
                 "\"max_data_xfer_size\":%u%s}}", fds[caps & 3],
                 xfer[(caps >> 2) & 3],
                 (caps & 0x10) ? ",\"twin_socket\":{\"supported\":true}" : "");
    hdr.msg_size = (uint32_t)(HDR + sizeof(ver) + (size_t)n + 1);
    memcpy(buf, &hdr, HDR);
    memcpy(buf + HDR, &ver, sizeof(ver));
    return hdr.msg_size;
}

/* Reads the VERSION reply (it is there: the server answered in attach). */
static void
take_version_reply(bool twin_asked)
{
    union {
        char buf[CMSG_SPACE(16 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    uint8_t buf[4096];
    struct iovec iov = { buf, sizeof(buf) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf) };
    struct vfio_user_header hdr;
    int nfds = 0, fds[16];
    ssize_t n = fz_real_recvmsg(peer.sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c != NULL;
         c = CMSG_NXTHDR(&mh, c)) {
        int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < cnt && nfds < 16; i++) {
            memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    }
    FZ_CHECK(n >= (ssize_t)HDR, "no VERSION reply");
    memcpy(&hdr, buf, HDR);
    FZ_CHECK(hdr.msg_size == (size_t)n && hdr.cmd == VFIO_USER_VERSION &&
             hdr.flags == VFIO_USER_F_TYPE_REPLY,
             "VERSION reply: size %u of %zd, cmd %u, flags %#x", hdr.msg_size,
             n, hdr.cmd, hdr.flags);
    FZ_CHECK(nfds == (twin_asked ? 1 : 0), "%d fds with VERSION", nfds);
    if (nfds == 1) {
        peer.twin = fds[0];
        fcntl(peer.twin, F_SETFL, O_NONBLOCK);
    }
}

/*
 * A new client: connect, VERSION (ours, or with bit 7 of @caps a fuzzed
 * message), attach. A refused VERSION ends this client; the next
 * operation that needs one connects again.
 */
static void
peer_connect(uint8_t caps, struct fz *in)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    uint8_t buf[1024];
    size_t len;

    peer_close();
    peer.dead = peer.shut = false;
    peer.caps = caps;
    peer.sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    strcpy(addr.sun_path, sock_path);
    FZ_CHECK(peer.sock >= 0 &&
             connect(peer.sock, (struct sockaddr *)&addr, sizeof(addr)) == 0,
             "connect: %s", strerror(errno));
    if (caps & 0x80) {
        send_op_msg(in, false);
    } else {
        len = version_msg(buf, sizeof(buf), caps);
        peer_send(buf, len, NULL, 0, false, false);
    }
    if (vfu_attach_ctx(dev.ctx) < 0) {
        FZ_CHECK(caps & 0x80, "our VERSION refused: %s", strerror(errno));
        if (errno == EAGAIN) {
            /* Not a whole message: the client gives up, the server too. */
            peer_hangup();
            FZ_CHECK(vfu_attach_ctx(dev.ctx) < 0 && errno != EAGAIN,
                     "attach after EOF: %s", strerror(errno));
        }
        peer.dead = true;
        drain();
        return;
    }
    if (caps & 0x80) {
        drain();                /* whatever the reply was, it is well-formed */
    } else {
        take_version_reply((caps & 0x10) != 0);
    }
}

/* The client leaves and, once the server has let go, a new one comes. */
static void
reconnect(uint8_t caps, struct fz *in)
{
    peer_close();
    for (int i = 0; i < 16 && !peer.dead; i++) {
        if (dev.busy) {
            dev.busy = false;
            (void)vfu_device_quiesced(dev.ctx, 0);
        }
        serve();
    }
    peer_connect(caps, in);
}

/*
 * A message from the input: command, header flags, payload length and
 * bytes, fds. Flags: bit 0 NO_REPLY, 1 ERROR, 2 type REPLY, 3 a reserved
 * flag bit, 4 msg_size from the input (u32), 5 on the twin socket, 6 raw
 * bytes instead (no header built).
 */
static void
send_op_msg(struct fz *in, bool pump)
{
    struct vfio_user_header hdr = { 0 };
    uint8_t cmd = fz_u8(in), hf = fz_u8(in);
    size_t plen = fz_u16(in) % 4096, got;
    const uint8_t *p;
    uint8_t buf[HDR + 4096];
    int fds[FZ_MAX_FDS];
    size_t nr;

    if (hf & 0x40) {
        p = fz_take(in, plen, &got);
        nr = fz_make_fds(in, fds);
        peer_send(p, got, fds, nr, (hf & 0x20) != 0, pump);
        return;
    }
    hdr.msg_id = peer.next_id++;
    hdr.cmd = cmd;
    hdr.flags = ((hf & 4) ? VFIO_USER_F_TYPE_REPLY : 0) |
                ((hf & 1) ? VFIO_USER_F_NO_REPLY : 0) |
                ((hf & 2) ? VFIO_USER_F_ERROR : 0) | ((hf & 8) ? 0x100 : 0);
    hdr.msg_size = (hf & 0x10) ? fz_u32(in) : (uint32_t)(HDR + plen);
    p = fz_take(in, plen, &got);
    memcpy(buf, &hdr, HDR);
    memset(buf + HDR, 0, plen);
    memcpy(buf + HDR, p, got);
    nr = fz_make_fds(in, fds);
    peer_send(buf, HDR + plen, fds, nr, (hf & 0x20) != 0, pump);
}

/* Leaves: the device completes what it deferred, the server lets go. */
static void
finish(void)
{
    peer_close();
    for (int i = 0; i < 64; i++) {
        if (dev.busy) {
            dev.busy = false;
            (void)vfu_device_quiesced(dev.ctx, 0);
            continue;
        }
        if (vfu_run_ctx(dev.ctx) < 0 && errno != EBUSY) {
            break;
        }
    }
    FZ_CHECK(!dev.busy, "quiesce still deferred at the end");
    FZ_CHECK(dev.maps == 0, "%d DMA regions never unregistered", dev.maps);
    FZ_CHECK(dev.held.iov_base == NULL, "a held mapping was not let go");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz in = { data, size };
    int fds0, maps0, large0;

    if (sock_path[0] == '\0') {
        char dir[] = "/tmp/vfu-fuzz-XXXXXX";
        FZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
        /* Ours, kept from run to run: outside the leak count. */
        for (int i = 0; i < 2; i++) {
            peer.in[i].cap = 1 << 20;
            peer.in[i].buf = malloc(peer.in[i].cap);
            FZ_CHECK(peer.in[i].buf != NULL, "out of memory");
        }
    }
    fds0 = fz_count_fds();
    maps0 = fz_count_maps(FZ_MAP_NAME);
    large0 = fz_large_in_use();
    peer.sock = peer.twin = -1;
    peer.shut = peer.dead = false;
    peer.nr_reqs = 0;
    peer.in[0].len = peer.in[1].len = 0;
    peer.actions = 0;
    peer.input = &in;
    peer.next_id = 0;

    uint8_t caps = fz_u8(&in);
    dev_create(fz_u8(&in));
    fz_set_hooks(&hooks);
    peer_connect(caps, &in);

    for (int steps = 0; !fz_empty(&in) && steps < 1024; steps++) {
        uint8_t op = fz_u8(&in);

        switch (op % 8) {
        case 0: case 1:                 /* a message */
            if (peer.dead || peer.shut) {
                reconnect(peer.caps & 0x7f, &in);
            }
            send_op_msg(&in, true);
            serve();
            break;
        case 2:                         /* the device ends a deferral */
            if (dev.busy) {
                uint8_t e = fz_u8(&in);
                dev.busy = false;
                FZ_CHECK(vfu_device_quiesced(dev.ctx, e & 1 ? EIO : 0) == 0,
                         "vfu_device_quiesced: %s", strerror(errno));
                serve();
            }
            break;
        case 3:                         /* an interrupt */
            (void)vfu_irq_trigger(dev.ctx, fz_u16(&in) % 16);
            break;
        case 4: {                       /* the device's own DMA */
            struct dev_op dop;
            size_t got;
            const uint8_t *p = fz_take(&in, sizeof(dop), &got);
            memset(&dop, 0, sizeof(dop));
            memcpy(&dop, p, got);
            run_op(&dop);
            break;
        }
        case 5: {                       /* the device changes behaviour */
            uint8_t b = fz_u8(&in);
            dev.mode = b & ~3u;
            if (!dev.busy) {
                dev.quiesce = (b & 3) > QUIESCE_FAIL ? QUIESCE_NOW : b & 3;
            }
            break;
        }
        case 6:                         /* a new client */
            reconnect(fz_u8(&in) & 0x7f, &in);
            break;
        default:                        /* the client stops sending */
            peer_hangup();
            serve();
            break;
        }
    }
    finish();
    fz_set_hooks(NULL);
    dev_destroy();
    FZ_CHECK(fz_count_fds() == fds0, "fds leaked: %d open, %d before",
             fz_count_fds(), fds0);
    FZ_CHECK(fz_count_maps(FZ_MAP_NAME) == maps0,
             "client memory still mapped: %d mappings, %d before",
             fz_count_maps(FZ_MAP_NAME), maps0);
    FZ_CHECK(fz_large_in_use() == large0, "large blocks leaked: %d, %d before",
             fz_large_in_use(), large0);
    return 0;
}
