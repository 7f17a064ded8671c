/*
 * vfu-dma-bench: what DMA costs in libvfio-user, measured in one run.
 *
 * lookup  ns per vfu_addr_to_sgl() of 64 bytes at a random mapped address,
 *         with 1, 64, 4096, 65535 and 10^6 regions mapped, against a plain
 *         binary search over the same regions' start addresses (the least
 *         work a lookup can do). The device runs both loops in its BAR0
 *         callback, on the server's thread, over the same addresses.
 * map     the time to map 10^6 one-page regions (posted DMA_MAPs, then one
 *         request with a reply) in ascending, descending and random order,
 *         and to drop them with one DMA_UNMAP, against the same messages
 *         sent over a socketpair to a thread that only parses them (the
 *         raw AF_UNIX cost of the stream).
 * msg     DMA by message: the device reads (vfu_sgl_read) or writes
 *         (vfu_sgl_write) 4 KiB or 64 KiB of memory the client registered
 *         without an fd; libvfio-user-client answers each DMA_READ /
 *         DMA_WRITE while it waits for the reply to the BAR write that
 *         started the transfers. Against a raw exchange of the same
 *         messages (same sizes, same layout) between two threads on a
 *         socketpair, the raw client reading with a big buffer and
 *         answering from its memory without a copy, as the library does.
 *
 * The library server and the raw server are threads of this process; the
 * client is the main thread. Each test runs several rounds; in a round the
 * library and the raw variant run one after the other (library first in
 * even rounds), and the medians of the rounds and of the per-round ratios
 * (library/raw time) are reported, with the middle half of the ratios.
 * Nothing is enforced: a benchmark reports; it fails only when it cannot
 * run.
 *
 *   vfu-dma-bench [-q] [-r ROUNDS] [-m REGIONS]
 *     -q  quick: 10x fewer lookups and transfers, 65535 regions at most,
 *         one round of maps (CI smoke test)
 *     -r  rounds per test (default 7; the map test runs at most 3)
 *     -m  regions for the map test and the largest lookup test (default
 *         1000000, LIBVFIO_USER_MAX_DMA_REGIONS)
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define PG              4096u
#define KiB             1024u
#define HDR             sizeof(struct vfio_user_header)
#define IOVA            0x100000000ull      /* where message DMA goes */
#define MSG_MAX         (64 * KiB)
#define MAX_ROUNDS      31
#define NR_ADDRS        (1u << 16)          /* lookup addresses, reused */

/* The device's BAR0 registers. */
#define REG_OP          0x00    /* u32: writing runs OP_* */
#define REG_N           0x08    /* u64: lookups or transfers */
#define REG_ARG         0x10    /* u64: regions mapped, or transfer size */
#define REG_RESULT      0x18    /* u64: ns for the lookups, 0 if one missed */
enum { OP_LOOKUP = 1, OP_BSEARCH, OP_READ, OP_WRITE };

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vfu-dma-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s\n", strerror(errno));
    va_end(ap);
    exit(1);
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* The library server: a device whose BAR0 runs the loops              */
/* ------------------------------------------------------------------ */

struct dev {
    vfu_ctx_t *ctx;
    uint8_t regs[PG];
    uint64_t addrs[NR_ADDRS];       /* lookup addresses */
    uint64_t *starts;               /* the baseline's sorted region starts */
    uint64_t nr_starts;             /* regions addrs and starts are for */
    uint8_t data[MSG_MAX];          /* the device's side of a transfer */
    volatile uint64_t sink;
};

static uint64_t
reg64(struct dev *d, unsigned off)
{
    uint64_t v;
    memcpy(&v, d->regs + off, 8);
    return v;
}

/* Regions are one page each, at every other page from 0. */
static void
make_addrs(struct dev *d, uint64_t nr)
{
    uint64_t x = 88172645463325252ull;

    for (size_t i = 0; i < NR_ADDRS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        d->addrs[i] = (x % nr) * 2 * PG + (x >> 40) % (PG - 64);
    }
    free(d->starts);
    d->starts = malloc(nr * sizeof(*d->starts));
    if (d->starts == NULL) {
        die("malloc");
    }
    for (uint64_t i = 0; i < nr; i++) {
        d->starts[i] = i * 2 * PG;
    }
}

/* The baseline: the last start at or below @addr, and whether it holds it. */
static bool
bsearch_hit(const uint64_t *starts, uint64_t nr, uint64_t addr)
{
    uint64_t lo = 0, hi = nr;

    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (starts[mid] <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo > 0 && addr < starts[lo - 1] + PG;
}

static uint64_t
run_lookups(struct dev *d, int op, uint64_t n, uint64_t nr)
{
    uint8_t sg[256] __attribute__((aligned(8)));
    uint64_t hits = 0;
    double t0;

    if (d->nr_starts != nr) {
        make_addrs(d, nr);
        d->nr_starts = nr;
    }
    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = d->addrs[i % NR_ADDRS];
        if (op == OP_LOOKUP) {
            hits += vfu_addr_to_sgl(d->ctx, (vfu_dma_addr_t)(uintptr_t)a, 64,
                                    (dma_sg_t *)sg, 1, PROT_READ) == 1;
        } else {
            hits += bsearch_hit(d->starts, nr, a);
        }
    }
    t0 = now_ns() - t0;
    d->sink = hits;
    return hits == n ? (uint64_t)t0 : 0;    /* 0: a lookup missed */
}

static uint64_t
run_transfers(struct dev *d, int op, uint64_t n, uint64_t size)
{
    uint8_t sg[256] __attribute__((aligned(8)));
    bool w = op == OP_WRITE;

    for (uint64_t i = 0; i < n; i++) {
        int nr = vfu_addr_to_sgl(d->ctx, (vfu_dma_addr_t)(uintptr_t)IOVA, size,
                                 (dma_sg_t *)sg, 1, w ? PROT_WRITE : PROT_READ);
        if (nr != 1 || (w ? vfu_sgl_write(d->ctx, (dma_sg_t *)sg, 1, d->data, 0)
                          : vfu_sgl_read(d->ctx, (dma_sg_t *)sg, 1, d->data,
                                         0)) < 0) {
            return errno != 0 ? (uint64_t)errno : EIO;
        }
    }
    return 0;
}

static ssize_t
bar0(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);
    uint32_t op;
    uint64_t result;

    if (!is_write) {
        memcpy(buf, d->regs + off, count);
        return (ssize_t)count;
    }
    memcpy(d->regs + off, buf, count);
    if (off != REG_OP || count != 4) {
        return (ssize_t)count;
    }
    memcpy(&op, buf, 4);
    if (op == OP_LOOKUP || op == OP_BSEARCH) {
        result = run_lookups(d, (int)op, reg64(d, REG_N), reg64(d, REG_ARG));
        memcpy(d->regs + REG_RESULT, &result, 8);
    } else {
        /* A failed transfer fails the write that asked for it. */
        result = run_transfers(d, (int)op, reg64(d, REG_N), reg64(d, REG_ARG));
        if (result != 0) {
            errno = (int)result;
            return -1;
        }
    }
    return (ssize_t)count;
}

static void
server_log(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level <= LOG_WARNING || getenv("VFU_DMA_BENCH_DEBUG") != NULL) {
        fprintf(stderr, "server: %s\n", msg);
    }
}

static void *
serve_lib(void *arg)
{
    struct dev *d = arg;

    if (vfu_attach_ctx(d->ctx) < 0) {
        die("vfu_attach_ctx");
    }
    while (vfu_run_ctx(d->ctx) >= 0) {
        ;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The raw pair: the same DMA messages over a socketpair               */
/* ------------------------------------------------------------------ */

/* The DMA_READ / DMA_WRITE payload head: address, count. */
struct rw_head {
    uint64_t addr;
    uint64_t count;
} __attribute__((packed));

/* A big-buffer reader: one recv() takes whatever has arrived. */
struct rawbuf {
    uint8_t *buf;
    size_t cap, start, end;
};

static const uint8_t *
raw_next(struct rawbuf *rb, int fd)
{
    for (;;) {
        size_t avail = rb->end - rb->start;
        struct vfio_user_header h;

        if (avail >= HDR) {
            memcpy(&h, rb->buf + rb->start, HDR);
            if (avail >= h.msg_size) {
                rb->start += h.msg_size;
                return rb->buf + rb->start - h.msg_size;
            }
        }
        memmove(rb->buf, rb->buf + rb->start, avail);
        rb->start = 0;
        rb->end = avail;
        ssize_t n = recv(fd, rb->buf + rb->end, rb->cap - rb->end, 0);
        if (n <= 0) {
            die("raw recv");
        }
        rb->end += (size_t)n;
    }
}

static void
raw_send(int fd, uint16_t cmd, unsigned type, struct iovec *iov, int nr)
{
    struct vfio_user_header h = { .cmd = cmd, .msg_size = HDR };
    struct iovec v[4] = { { &h, HDR } };
    struct msghdr mh = { .msg_iov = v, .msg_iovlen = 1 };

    h.flags = (h.flags & ~VFIO_USER_F_TYPE_MASK) | (type);
    for (int i = 0; i < nr; i++) {
        v[mh.msg_iovlen++] = iov[i];
        h.msg_size += (uint32_t)iov[i].iov_len;
    }
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) != h.msg_size) {
        die("raw send");    /* socketpair sends of this size are whole */
    }
}

/* What the raw server is asked to do next: n transfers of size bytes. */
struct raw_go {
    uint64_t n;
    uint64_t size;
    uint32_t op;                /* 0: quit */
} __attribute__((packed));

/*
 * The raw server: for each "go" from the client, n DMA requests, each
 * waited for, then a bare reply to the "go".
 */
static void *
serve_raw(void *arg)
{
    int fd = *(int *)arg;
    struct rawbuf rb = { .buf = malloc(2 * MSG_MAX), .cap = 2 * MSG_MAX };
    uint8_t *data = malloc(MSG_MAX);

    if (rb.buf == NULL || data == NULL) {
        die("malloc");
    }
    for (;;) {
        struct raw_go go;
        memcpy(&go, raw_next(&rb, fd) + HDR, sizeof(go));
        if (go.op == 0) {
            break;
        }
        bool w = go.op == OP_WRITE;
        for (uint64_t i = 0; i < go.n; i++) {
            struct rw_head h = { .addr = IOVA, .count = go.size };
            struct iovec iov[2] = { { &h, sizeof(h) }, { data, w ? go.size : 0 } };
            const uint8_t *reply;

            raw_send(fd, w ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ,
                     VFIO_USER_F_TYPE_COMMAND, iov, 2);
            reply = raw_next(&rb, fd);
            if (!w) {
                memcpy(data, reply + HDR + sizeof(h), go.size);
            }
        }
        raw_send(fd, VFIO_USER_REGION_WRITE, VFIO_USER_F_TYPE_REPLY, NULL, 0);
    }
    free(rb.buf);
    free(data);
    return NULL;
}

/*
 * The raw client: sends "go" and answers DMA requests from @mem until the
 * reply to it comes.
 */
static void
raw_batch(int fd, struct rawbuf *rb, uint8_t *mem, int op, uint64_t n,
          uint64_t size)
{
    struct raw_go go = { .n = n, .size = size, .op = (uint32_t)op };
    struct iovec giov = { &go, sizeof(go) };

    raw_send(fd, VFIO_USER_REGION_WRITE, VFIO_USER_F_TYPE_COMMAND, &giov, 1);
    for (;;) {
        const uint8_t *m = raw_next(rb, fd);
        struct vfio_user_header h;
        struct rw_head rw;

        memcpy(&h, m, HDR);
        if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
            return;
        }
        memcpy(&rw, m + HDR, sizeof(rw));
        if (h.cmd == VFIO_USER_DMA_WRITE) {
            struct iovec iov = { &rw, sizeof(rw) };
            memcpy(mem + (rw.addr - IOVA), m + HDR + sizeof(rw), rw.count);
            raw_send(fd, h.cmd, VFIO_USER_F_TYPE_REPLY, &iov, 1);
        } else {
            struct iovec iov[2] = {
                { &rw, sizeof(rw) }, { mem + (rw.addr - IOVA), rw.count },
            };
            raw_send(fd, h.cmd, VFIO_USER_F_TYPE_REPLY, iov, 2);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Client side and reporting                                           */
/* ------------------------------------------------------------------ */

static void
reg_write(vfu_client_t *c, unsigned off, uint64_t v, uint32_t size)
{
    if (vfu_client_region_write(c, VFU_PCI_DEV_BAR0_REGION_IDX, off, &v, size,
                                false) < 0) {
        die("region write");
    }
}

/* The library's batch: one BAR write, the device's transfers inside it. */
static void
lib_batch(vfu_client_t *c, int op)
{
    uint32_t v = (uint32_t)op;

    if (vfu_client_region_write(c, VFU_PCI_DEV_BAR0_REGION_IDX, REG_OP, &v, 4,
                                false) < 0) {
        die("transfers");
    }
}

static uint64_t
device_op(vfu_client_t *c, int op, uint64_t n, uint64_t arg)
{
    uint64_t result;

    reg_write(c, REG_N, n, 8);
    reg_write(c, REG_ARG, arg, 8);
    reg_write(c, REG_OP, (uint32_t)op, 4);
    if (vfu_client_region_read(c, VFU_PCI_DEV_BAR0_REGION_IDX, REG_RESULT,
                               &result, 8) < 0) {
        die("region read");
    }
    return result;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of @v, and the middle half's bounds. */
static double
median(double *v, int n, double *lo, double *hi)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    *lo = v[(n - 1) / 4];
    *hi = v[n - 1 - (n - 1) / 4];
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The order the map test makes its DMA_MAPs in. */
enum { ORDER_UP, ORDER_DOWN, ORDER_RANDOM, NR_ORDERS };
static const char *const order_names[NR_ORDERS] = {
    "ascending", "descending", "random",
};

/* Region @i of the layout the lookups use: one page at every other page. */
static struct vfio_user_dma_map
region_map(uint64_t i)
{
    return (struct vfio_user_dma_map){
        .argsz = sizeof(struct vfio_user_dma_map),
        .flags = VFIO_USER_F_DMA_REGION_READ, .addr = i * 2 * PG, .size = PG,
    };
}

/* @nr region numbers in @order (the random one fixed by its seed). */
static uint32_t *
make_order(uint64_t nr, int order)
{
    uint32_t *v = malloc(nr * sizeof(*v));
    uint64_t x = 0x9e3779b97f4a7c15ull;

    if (v == NULL) {
        die("malloc");
    }
    for (uint64_t i = 0; i < nr; i++) {
        v[i] = (uint32_t)(order == ORDER_DOWN ? nr - 1 - i : i);
    }
    for (uint64_t i = nr; order == ORDER_RANDOM && i > 1; i--) {
        uint64_t j;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        j = x % i;
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
    return v;
}

/* A request with a reply: every posted request before it is done. */
static void
lib_sync(vfu_client_t *c)
{
    uint32_t ids;

    if (vfu_client_region_read(c, VFU_PCI_DEV_CFG_REGION_IDX, 0, &ids, 4) < 0) {
        die("config read");
    }
}

/* Drops every region; returns the ns it took. */
static double
unmap_all(vfu_client_t *c)
{
    double t0 = now_ns();

    if (vfu_client_dma_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL) < 0) {
        die("unmap all");
    }
    return now_ns() - t0;
}

/*
 * Maps the regions @order names (@nr of them, posted, without fds) into an
 * empty table; returns the ns from the first DMA_MAP to the reply that
 * follows the last.
 */
static double
map_regions(vfu_client_t *c, const uint32_t *order, uint64_t nr)
{
    double t0 = now_ns();

    for (uint64_t i = 0; i < nr; i++) {
        struct vfio_user_dma_map m = region_map(order[i]);
        if (vfu_client_send(c, VFIO_USER_DMA_MAP, VFIO_USER_F_NO_REPLY, &m,
                            sizeof(m), NULL, 0, NULL) < 0) {
            die("DMA_MAP");
        }
    }
    lib_sync(c);
    return now_ns() - t0;
}

/* Maps regions 0..@nr-1 upwards after dropping all (the lookup tests). */
static void
map_ascending(vfu_client_t *c, uint64_t nr)
{
    uint32_t *order = make_order(nr, ORDER_UP);

    unmap_all(c);
    map_regions(c, order, nr);
    free(order);
}

/*
 * The raw side of the map test: a thread that parses a stream of messages
 * as the server's receive path would (one recv() takes what has arrived)
 * and answers only those that want a reply; a header without payload and
 * command 0 ends it.
 */
static void *
serve_raw_maps(void *arg)
{
    int fd = *(int *)arg;
    struct rawbuf rb = { .buf = malloc(2 * MSG_MAX), .cap = 2 * MSG_MAX };
    uint64_t sum = 0;

    if (rb.buf == NULL) {
        die("malloc");
    }
    for (;;) {
        const uint8_t *m = raw_next(&rb, fd);
        struct vfio_user_header h;
        struct vfio_user_dma_map map;

        memcpy(&h, m, HDR);
        if (h.cmd == 0) {
            break;
        }
        if (h.cmd == VFIO_USER_DMA_MAP && h.msg_size == HDR + sizeof(map)) {
            memcpy(&map, m + HDR, sizeof(map));
            sum += map.addr;
        }
        if (!(h.flags & VFIO_USER_F_NO_REPLY)) {
            raw_send(fd, h.cmd, VFIO_USER_F_TYPE_REPLY, NULL, 0);
        }
    }
    free(rb.buf);
    return (void *)(uintptr_t)(sum & 1);
}

/* The same stream as map_regions() over the raw socketpair. */
static double
raw_maps(int fd, struct rawbuf *rb, const uint32_t *order, uint64_t nr)
{
    double t0 = now_ns();

    for (uint64_t i = 0; i < nr; i++) {
        struct vfio_user_dma_map m = region_map(order[i]);
        struct iovec iov = { &m, sizeof(m) };
        raw_send(fd, VFIO_USER_DMA_MAP,
                 VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY, &iov, 1);
    }
    raw_send(fd, VFIO_USER_REGION_READ, VFIO_USER_F_TYPE_COMMAND, NULL, 0);
    (void)raw_next(rb, fd);
    return now_ns() - t0;
}

/*
 * Maps @nr regions in each order, then drops them, library and raw
 * alternately over @rounds rounds; prints the medians.
 */
static void
map_test(vfu_client_t *c, uint64_t nr, int rounds)
{
    double lib[MAX_ROUNDS], raw[MAX_ROUNDS], rat[MAX_ROUNDS], drop[MAX_ROUNDS];
    struct rawbuf rb = { .buf = malloc(2 * MSG_MAX), .cap = 2 * MSG_MAX };
    pthread_t thread;
    int sv[2];

    if (rb.buf == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
        pthread_create(&thread, NULL, serve_raw_maps, &sv[1]) != 0) {
        die("raw map set-up");
    }
    printf("\nDMA_MAP of %" PRIu64 " one-page regions (posted, then one request"
           " with a reply),\nand DMA_UNMAP of all; raw: the same messages "
           "parsed by a thread;\nmedian of %d rounds\n\n", nr, rounds);
    printf("  %-11s %10s %10s %10s %10s   %s\n", "order", "library", "raw",
           "per map", "unmap all", "ratio (middle half)");
    unmap_all(c);
    for (int o = 0; o < NR_ORDERS; o++) {
        uint32_t *order = make_order(nr, o);
        double lo, hi;

        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < 2; k++) {
                if ((r + k) % 2 == 0) {
                    lib[r] = map_regions(c, order, nr);
                    drop[r] = unmap_all(c);
                } else {
                    raw[r] = raw_maps(sv[0], &rb, order, nr);
                }
            }
            rat[r] = lib[r] / raw[r];
        }
        double ml = median(lib, rounds, &lo, &hi);
        double mr = median(raw, rounds, &lo, &hi);
        double md = median(drop, rounds, &lo, &hi);
        double mq = median(rat, rounds, &lo, &hi);
        printf("  %-11s %8.3f s %8.3f s %7.2f us %8.3f s   %5.2fx (%.2f-%.2f)\n",
               order_names[o], ml / 1e9, mr / 1e9, ml / 1e3 / (double)nr,
               md / 1e9, mq, lo, hi);
        fflush(stdout);
        free(order);
    }
    struct vfio_user_header quit = { .msg_size = HDR };
    if (send(sv[0], &quit, HDR, MSG_NOSIGNAL) != (ssize_t)HDR) {
        die("raw quit");
    }
    pthread_join(thread, NULL);
    close(sv[0]);
    close(sv[1]);
    free(rb.buf);
}

int
main(int argc, char *argv[])
{
    /* The last is -m's (10^6 by default), when above 65535. */
    uint64_t nr_regions[] = { 1, 64, 4096, 65535, 0 };
    /*
     * Transfers in batches, each started by one request (a BAR write, or
     * the raw "go"): a request's DMA by message must stay within the few
     * MiB the server's receive buffer can hold while it is served.
     */
    static const struct {
        const char *name;
        int op;
        uint64_t size, batch, batches;
    } xfers[] = {
        { "read 4 KiB", OP_READ, 4 * KiB, 500, 8 },
        { "write 4 KiB", OP_WRITE, 4 * KiB, 500, 8 },
        { "read 64 KiB", OP_READ, 64 * KiB, 100, 10 },
        { "write 64 KiB", OP_WRITE, 64 * KiB, 100, 10 },
    };
    char dir[] = "/tmp/vfu-dma-bench.XXXXXX", sock[64];
    double lib[MAX_ROUNDS], raw[MAX_ROUNDS], rat[MAX_ROUNDS], lo, hi;
    uint64_t lookups = 2000000, scale = 1, max_regions = 0;
    struct dev *d = calloc(1, sizeof(*d));
    struct rawbuf rb = { .buf = malloc(2 * MSG_MAX), .cap = 2 * MSG_MAX };
    uint8_t *mem = aligned_alloc(PG, MSG_MAX);
    int rounds = 7, opt, sv[2];
    pthread_t server, raw_server;
    vfu_client_t *c;

    while ((opt = getopt(argc, argv, "qr:m:")) != -1) {
        if (opt == 'q') {
            scale = 10;
        } else if (opt == 'r') {
            rounds = atoi(optarg);
        } else if (opt == 'm') {
            max_regions = strtoull(optarg, NULL, 0);
        } else {
            fprintf(stderr, "usage: vfu-dma-bench [-q] [-r ROUNDS] "
                    "[-m REGIONS]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        rounds = 7;
    }
    if (max_regions == 0) {
        max_regions = scale > 1 ? 65535 : LIBVFIO_USER_MAX_DMA_REGIONS;
    }
    if (max_regions > LIBVFIO_USER_MAX_DMA_REGIONS) {
        max_regions = LIBVFIO_USER_MAX_DMA_REGIONS;
    }
    nr_regions[4] = max_regions > 65535 ? max_regions : 0;
    if (d == NULL || rb.buf == NULL || mem == NULL || mkdtemp(dir) == NULL) {
        die("set-up");
    }
    memset(mem, 0x5a, MSG_MAX);
    snprintf(sock, sizeof(sock), "%s/sock", dir);
    d->ctx = vfu_create_ctx(VFU_TRANS_SOCK, sock, 0, d, VFU_DEV_TYPE_PCI);
    if (d->ctx == NULL ||
        vfu_pci_init(d->ctx, VFU_PCI_TYPE_CONVENTIONAL,
                     PCI_HEADER_TYPE_NORMAL, 0) < 0 ||
        vfu_setup_region(d->ctx, VFU_PCI_DEV_BAR0_REGION_IDX, PG, bar0,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM, NULL, 0,
                         -1, 0) < 0 ||
        vfu_setup_device_dma(d->ctx, LIBVFIO_USER_MAX_DMA_REGIONS, NULL,
                             NULL) < 0 ||
        /* Debug lines cost a formatted string per request: only on demand. */
        vfu_setup_log(d->ctx, server_log, getenv("VFU_DMA_BENCH_DEBUG") ?
                                          LOG_DEBUG : LOG_WARNING) < 0 ||
        vfu_realize_ctx(d->ctx) < 0 ||
        pthread_create(&server, NULL, serve_lib, d) != 0) {
        die("server set-up");
    }
    c = vfu_client_connect(sock);
    if (c == NULL || vfu_client_negotiate(c, NULL) < 0) {
        die("client set-up");
    }

    printf("DMA map lookup: vfu_addr_to_sgl() of 64 bytes at a random mapped "
           "address,\nagainst a binary search of the region starts; ns per "
           "lookup, median of %d rounds\n\n", rounds);
    printf("  %8s %10s %10s   %s\n", "regions", "library", "bsearch",
           "ratio (middle half)");
    for (size_t t = 0; t < sizeof(nr_regions) / sizeof(nr_regions[0]) &&
                       nr_regions[t] > 0; t++) {
        uint64_t nr = nr_regions[t], n = lookups / scale;
        map_ascending(c, nr);
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < 2; k++) {
                bool is_lib = (r + k) % 2 == 0;
                uint64_t ns = device_op(c, is_lib ? OP_LOOKUP : OP_BSEARCH, n,
                                        nr);
                if (ns == 0) {
                    errno = ENOENT;
                    die("a lookup missed");
                }
                (is_lib ? lib : raw)[r] = (double)ns / (double)n;
            }
            rat[r] = lib[r] / raw[r];
        }
        double ml = median(lib, rounds, &lo, &hi);
        double mr = median(raw, rounds, &lo, &hi);
        double mq = median(rat, rounds, &lo, &hi);
        printf("  %8" PRIu64 " %10.1f %10.1f   %5.2fx (%.2f-%.2f)\n", nr, ml,
               mr, mq, lo, hi);
        fflush(stdout);
    }

    map_test(c, max_regions, scale > 1 ? 1 : rounds < 3 ? rounds : 3);

    if (vfu_client_dma_unmap(c, 0, 0, VFIO_DMA_UNMAP_FLAG_ALL) < 0 ||
        vfu_client_dma_map(c, IOVA, MSG_MAX, -1, 0, mem,
                           VFIO_USER_F_DMA_REGION_READ |
                           VFIO_USER_F_DMA_REGION_WRITE) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        die("DMA set-up");
    }
    printf("\nDMA by message (memory registered without an fd), per transfer,"
           "\nmedian of %d rounds; raw: the same messages between two threads\n\n",
           rounds);
    printf("  %-14s %7s %12s %12s %10s   %s\n", "test", "ops", "library", "raw",
           "library", "ratio (middle half)");
    if (pthread_create(&raw_server, NULL, serve_raw, &sv[1]) != 0) {
        die("pthread_create");
    }
    for (size_t t = 0; t < sizeof(xfers) / sizeof(xfers[0]); t++) {
        uint64_t batches = (xfers[t].batches + scale - 1) / scale;
        uint64_t n = batches * xfers[t].batch;

        reg_write(c, REG_N, xfers[t].batch, 8);
        reg_write(c, REG_ARG, xfers[t].size, 8);
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < 2; k++) {
                bool is_lib = (r + k) % 2 == 0;
                double t0 = now_ns();
                for (uint64_t b = 0; b < batches; b++) {
                    if (is_lib) {
                        lib_batch(c, xfers[t].op);
                    } else {
                        raw_batch(sv[0], &rb, mem, xfers[t].op,
                                  xfers[t].batch, xfers[t].size);
                    }
                }
                (is_lib ? lib : raw)[r] = (now_ns() - t0) / (double)n;
            }
            rat[r] = lib[r] / raw[r];
        }
        double ml = median(lib, rounds, &lo, &hi);
        double mr = median(raw, rounds, &lo, &hi);
        double mq = median(rat, rounds, &lo, &hi);
        printf("  %-14s %7" PRIu64 " %9.2f us %9.2f us %6.0f MB/s   %5.2fx "
               "(%.2f-%.2f)\n", xfers[t].name, n * (uint64_t)rounds, ml / 1e3,
               mr / 1e3, (double)xfers[t].size * 1e3 / ml, mq, lo, hi);
    }
    struct raw_go quit = { .op = 0 };
    struct iovec qiov = { &quit, sizeof(quit) };
    raw_send(sv[0], VFIO_USER_REGION_WRITE, VFIO_USER_F_TYPE_COMMAND, &qiov, 1);
    pthread_join(raw_server, NULL);
    vfu_client_close(c);
    pthread_join(server, NULL);
    vfu_destroy_ctx(d->ctx);
    rmdir(dir);
    close(sv[0]);
    close(sv[1]);
    free(d->starts);
    free(d);
    free(rb.buf);
    free(mem);
    return 0;
}
