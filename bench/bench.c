/*
 * vfu-bench: what libvfio-user costs over a bare AF_UNIX socket, measured in
 * one run on one machine.
 *
 * Library runs: this process is a vfio-user client (libvfio-user-client)
 * talking to a forked server process built on libvfio-user, whose 1 MiB BAR0
 * callback memcpy()s to and from the device memory.
 *
 * Raw runs: the same process talks to another forked server over a
 * socketpair(AF_UNIX, SOCK_STREAM). Its messages use the vfio-user header and
 * region-access layout, so the same bytes move. The raw server is what a
 * minimal server is: a big-buffer reader (one recvmsg() into a buffer of
 * 1 MiB + 64 KiB takes whatever has arrived; whole messages are served from
 * it, a partial one waits for the next recvmsg()), doing the same device
 * work (memcpy to or from its device memory), answering with one sendmsg().
 * The raw client likewise receives into one buffer and uses the data where
 * it landed. A second raw variant ("no copy") skips the device memcpy and
 * sends straight from device memory: the bare transport.
 *
 * Each test runs for several rounds; in each round the library and the raw
 * variants run one after the other (see measure_round()), and the median
 * round and the median of the per-round ratios are reported. Also per op:
 * the CPU time of client and server, sendmsg()/recvmsg() calls counted by
 * wrapping them (syscount.c) and by the client library's own stats, and
 * whether the scheduler ran client and server on the same CPU. When strace
 * is installed, a separate short pass runs both library processes under
 * `strace -c`, where every system call shows up (a run of 0 requests is
 * subtracted to remove set-up).
 *
 *   vfu-bench [-q] [-r ROUNDS] [-S] [-v] [-t TEST,...] [-a OFFSET]
 *             [-p same|split]
 *     -q  quick: rounds and warm-up 10x shorter, 10x fewer requests in the
 *         stream and strace runs (CI smoke test)
 *     -r  rounds per test (default 7)
 *     -S  skip the strace pass
 *     -v  print every round
 *     -t  run only the named tests (read4 write4 read64k read1m write1m
 *         stream)
 *     -a  start device memory OFFSET bytes into a page (default 0; see
 *         alloc_device_memory())
 *     -p  pin the processes: "same" puts all three on one CPU, "split" the
 *         client on one and both servers on another. Default: no pinning,
 *         the scheduler decides (what a deployment gets); the pinned modes
 *         are for telling library cost from placement effects.
 *
 * Internal modes, used by the strace pass:
 *   vfu-bench --serve-lib SOCKET
 *   vfu-bench --count-client TEST N SOCKET
 *
 * A benchmark reports; it exits non-zero only when it could not run.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"
#include "syscount.h"

#define KiB             1024u
#define MiB             (1024u * 1024u)
#define BAR_SIZE        MiB
#define HDR_SIZE        sizeof(struct vfio_user_header)
#define ACC_SIZE        sizeof(struct vfio_user_region_access)
#define PREFIX          (HDR_SIZE + ACC_SIZE)       /* 32 bytes */
#define RAW_RX_CAP      (PREFIX + MiB + 64 * KiB)
#define MAX_ROUNDS      31

/*
 * Raw commands. READ and WRITE carry the device memcpy like the library's
 * BAR callback; the NOCOPY ones do not; PING writes 4 bytes and reads them
 * back (a 36-byte request and a 36-byte reply).
 */
#define RAW_READ            VFIO_USER_REGION_READ
#define RAW_WRITE           VFIO_USER_REGION_WRITE
#define RAW_READ_NOCOPY     100
#define RAW_WRITE_NOCOPY    101
#define RAW_PING            102

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;
    int err = errno;

    fflush(stdout);
    fprintf(stderr, "vfu-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (err != 0) {
        fprintf(stderr, ": %s", strerror(err));
    }
    fputc('\n', stderr);
    exit(1);
}

static double
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *
alloc_touched(size_t size)
{
    uint8_t *p = malloc(size);

    if (p == NULL) {
        die("malloc(%zu)", size);
    }
    for (size_t i = 0; i < size; i++) {
        p[i] = (uint8_t)(i * 7);
    }
    return p;
}

/*
 * Device memory (BAR0 of the library server, the raw server's backing
 * buffer): mmap()ed, so page aligned, then moved @bar_offset bytes in (-a).
 * Where it starts within a page matters on some CPUs: AMD Zen 3's
 * `rep movsb`, which glibc uses for copies of a few KiB up to about L2
 * size, runs some 20x slower when the destination is 1..31 bytes past the
 * source modulo 4096 (4K aliasing). Page aligned, the device's copies into
 * and out of the messages are clear of that on both servers; -a 16 puts
 * BAR0 where a 1 MiB malloc() would and shows the trap.
 */
static size_t bar_offset;

static uint8_t *
alloc_device_memory(void)
{
    size_t size = BAR_SIZE + 4096;
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        die("mmap");
    }
    for (size_t i = 0; i < size; i++) {
        p[i] = (uint8_t)(i * 7);
    }
    return p + bar_offset;
}

/* ------------------------------------------------------------------ */
/* Library server                                                      */
/* ------------------------------------------------------------------ */

static uint8_t *bar0;

static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t offset,
            bool is_write)
{
    (void)ctx;
    if (is_write) {
        memcpy(bar0 + offset, buf, count);
    } else {
        memcpy(buf, bar0 + offset, count);
    }
    return (ssize_t)count;
}

static void
server_log(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "vfu-bench server[%d]: %s\n", level, msg);
}

/*
 * Serves one client at @path until it leaves. Writes a byte to @ready_fd
 * (unless -1) once the socket listens. Returns the process exit status.
 */
static int
serve_lib(const char *path, int ready_fd)
{
    vfu_ctx_t *ctx;

    bar0 = alloc_device_memory();
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, path, 0, NULL, VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        perror("vfu-bench server: vfu_create_ctx");
        return 1;
    }
    vfu_setup_log(ctx, server_log, LOG_ERR);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0 ||
        vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, BAR_SIZE,
                         bar0_access,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        perror("vfu-bench server: device set-up");
        vfu_destroy_ctx(ctx);
        return 1;
    }
    vfu_pci_set_id(ctx, 0x1234, 0x0002, 0x1234, 0x0002);
    if (ready_fd >= 0) {
        (void)!write(ready_fd, "r", 1);
        close(ready_fd);
    }
    if (vfu_attach_ctx(ctx) < 0) {
        perror("vfu-bench server: vfu_attach_ctx");
        vfu_destroy_ctx(ctx);
        return 1;
    }
    while (vfu_run_ctx(ctx) >= 0) {
        ;
    }
    int ok = errno == ENOTCONN;
    if (!ok) {
        perror("vfu-bench server: vfu_run_ctx");
    }
    vfu_destroy_ctx(ctx);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* Raw framing, shared by the raw client and server                    */
/* ------------------------------------------------------------------ */

struct rawbuf {
    uint8_t *buf;
    size_t cap;
    size_t start;
    size_t end;
};

struct raw_prefix {
    struct vfio_user_header hdr;
    struct vfio_user_region_access acc;
} __attribute__((packed));

/* Sends all of @mh in one sendmsg() (more only if the kernel splits it). */
static int
send_all(int fd, struct msghdr *mh)
{
    for (;;) {
        ssize_t n = sendmsg(fd, mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        while (n > 0 && mh->msg_iovlen > 0) {
            if ((size_t)n >= mh->msg_iov->iov_len) {
                n -= (ssize_t)mh->msg_iov->iov_len;
                mh->msg_iov++;
                mh->msg_iovlen--;
            } else {
                mh->msg_iov->iov_base = (uint8_t *)mh->msg_iov->iov_base + n;
                mh->msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
        if (mh->msg_iovlen == 0) {
            return 0;
        }
    }
}

static int
send_iov(int fd, struct iovec *iov, size_t iovcnt)
{
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = iovcnt };

    return send_all(fd, &mh);
}

/*
 * The next whole message, received as a big-buffer reader does: a recvmsg()
 * only when no whole message is buffered, taking all that has arrived.
 * Returns its length (*msg points into the buffer, valid until the next
 * call), 0 when the peer closed, or -1.
 */
static ssize_t
raw_next(struct rawbuf *rb, int fd, const uint8_t **msg)
{
    for (;;) {
        size_t avail = rb->end - rb->start;

        if (avail >= HDR_SIZE) {
            struct vfio_user_header hdr;
            memcpy(&hdr, rb->buf + rb->start, HDR_SIZE);
            if (hdr.msg_size < HDR_SIZE || hdr.msg_size > rb->cap) {
                errno = EPROTO;
                return -1;
            }
            if (avail >= hdr.msg_size) {
                *msg = rb->buf + rb->start;
                rb->start += hdr.msg_size;
                return hdr.msg_size;
            }
        }
        if (rb->start == rb->end) {
            rb->start = rb->end = 0;
        } else if (rb->start > 0) {
            memmove(rb->buf, rb->buf + rb->start, avail);
            rb->start = 0;
            rb->end = avail;
        }
        struct iovec iov = { rb->buf + rb->end, rb->cap - rb->end };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = recvmsg(fd, &mh, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return n;
        }
        rb->end += (size_t)n;
    }
}

/* ------------------------------------------------------------------ */
/* Raw server                                                          */
/* ------------------------------------------------------------------ */

/*
 * Serves one raw message. The reply is laid out as the library lays out
 * its own: the header in its own iovec, then a buffer holding the region
 * access and the data (so the device copies land at the same place within
 * a page as in the library server), all sent with one sendmsg().
 */
static int
raw_serve_one(int fd, const uint8_t *msg, size_t len, uint8_t *reply,
              uint8_t *backing)
{
    struct raw_prefix in;
    struct vfio_user_header hdr;
    const uint8_t *data = msg + PREFIX;
    struct iovec iov[3] = {
        { &hdr, HDR_SIZE }, { reply, ACC_SIZE }, { NULL, 0 },
    };
    size_t iovcnt = 2;
    uint32_t data_len = 0;

    if (len < PREFIX) {
        errno = EPROTO;
        return -1;
    }
    memcpy(&in, msg, PREFIX);
    if (in.acc.offset > BAR_SIZE || in.acc.count > BAR_SIZE - in.acc.offset) {
        errno = EPROTO;
        return -1;
    }
    switch (in.hdr.cmd) {
    case RAW_READ:
        memcpy(reply + ACC_SIZE, backing + in.acc.offset, in.acc.count);
        iov[1].iov_len += in.acc.count;
        data_len = in.acc.count;
        break;
    case RAW_READ_NOCOPY:
        iov[2].iov_base = backing + in.acc.offset;
        iov[2].iov_len = in.acc.count;
        iovcnt = 3;
        data_len = in.acc.count;
        break;
    case RAW_WRITE:
    case RAW_PING:
        if (len != PREFIX + in.acc.count) {
            errno = EPROTO;
            return -1;
        }
        memcpy(backing + in.acc.offset, data, in.acc.count);
        if (in.hdr.cmd == RAW_PING) {
            memcpy(reply + ACC_SIZE, backing + in.acc.offset, in.acc.count);
            iov[1].iov_len += in.acc.count;
            data_len = in.acc.count;
        }
        break;
    case RAW_WRITE_NOCOPY:
        if (len != PREFIX + in.acc.count) {
            errno = EPROTO;
            return -1;
        }
        break;
    default:
        errno = EPROTO;
        return -1;
    }
    if (in.hdr.flags & VFIO_USER_F_NO_REPLY) {
        return 0;
    }
    memset(&hdr, 0, sizeof(hdr));
    hdr.msg_id = in.hdr.msg_id;
    hdr.cmd = in.hdr.cmd;
    hdr.msg_size = (uint32_t)(PREFIX + data_len);
    hdr.flags = (hdr.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    memcpy(reply, &in.acc, ACC_SIZE);
    return send_iov(fd, iov, iovcnt);
}

static int
serve_raw(int fd)
{
    /* Buffers allocated as the library allocates its own. */
    struct rawbuf rb = { .buf = alloc_touched(RAW_RX_CAP), .cap = RAW_RX_CAP };
    uint8_t *reply = alloc_touched(ACC_SIZE + BAR_SIZE);
    uint8_t *backing = alloc_device_memory();
    const uint8_t *msg;
    ssize_t len;

    while ((len = raw_next(&rb, fd, &msg)) > 0) {
        if (raw_serve_one(fd, msg, (size_t)len, reply, backing) < 0) {
            perror("vfu-bench raw server");
            return 1;
        }
    }
    if (len < 0 && errno != ECONNRESET) {
        perror("vfu-bench raw server: recvmsg");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The client side of each test                                        */
/* ------------------------------------------------------------------ */

struct bench {
    vfu_client_t *lib;
    int raw_fd;
    struct rawbuf rx;
    uint16_t raw_id;
    uint8_t *data;          /* the caller's buffer: read into, written from */
};

typedef int (op_fn)(struct bench *b, size_t n);

static int
lib_read(struct bench *b, size_t n, uint32_t count)
{
    for (size_t i = 0; i < n; i++) {
        if (vfu_client_region_read(b->lib, VFU_PCI_DEV_BAR0_REGION_IDX, 0,
                                   b->data, count) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
lib_write(struct bench *b, size_t n, uint32_t count, bool posted)
{
    for (size_t i = 0; i < n; i++) {
        if (vfu_client_region_write(b->lib, VFU_PCI_DEV_BAR0_REGION_IDX, 0,
                                    b->data, count, posted) < 0) {
            return -1;
        }
    }
    return 0;
}

static int lib_read4(struct bench *b, size_t n)    { return lib_read(b, n, 4); }
static int lib_read64k(struct bench *b, size_t n)  { return lib_read(b, n, 64 * KiB); }
static int lib_read1m(struct bench *b, size_t n)   { return lib_read(b, n, MiB); }
static int lib_write4(struct bench *b, size_t n)   { return lib_write(b, n, 4, false); }
static int lib_write1m(struct bench *b, size_t n)  { return lib_write(b, n, MiB, false); }

/* @n posted writes, then one read whose reply says all were served. */
static int
lib_stream(struct bench *b, size_t n)
{
    return lib_write(b, n, 4, true) < 0 ? -1 : lib_read(b, 1, 4);
}

static int
raw_send(struct bench *b, uint16_t cmd, bool no_reply, uint32_t count,
         const void *data, uint32_t data_len)
{
    struct raw_prefix p;
    struct iovec iov[2] = {
        { &p, PREFIX }, { (void *)(uintptr_t)data, data_len },
    };

    memset(&p, 0, sizeof(p));
    p.hdr.msg_id = b->raw_id++;
    p.hdr.cmd = cmd;
    p.hdr.msg_size = (uint32_t)(PREFIX + data_len);
    p.hdr.flags |= no_reply ? VFIO_USER_F_NO_REPLY : 0;
    p.acc.count = count;
    return send_iov(b->raw_fd, iov, data_len > 0 ? 2 : 1);
}

/* Waits for the reply to the last request; it must be @expect bytes. */
static int
raw_reply(struct bench *b, size_t expect)
{
    const uint8_t *msg;
    struct vfio_user_header hdr;
    ssize_t len = raw_next(&b->rx, b->raw_fd, &msg);

    if (len <= 0) {
        if (len == 0) {
            errno = ENOTCONN;
        }
        return -1;
    }
    memcpy(&hdr, msg, HDR_SIZE);
    if ((size_t)len != expect || hdr.msg_id != (uint16_t)(b->raw_id - 1) ||
        (hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY) {
        errno = EPROTO;
        return -1;
    }
    return 0;
}

static int
raw_ping(struct bench *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (raw_send(b, RAW_PING, false, 4, b->data, 4) < 0 ||
            raw_reply(b, PREFIX + 4) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
raw_read(struct bench *b, size_t n, uint16_t cmd, uint32_t count)
{
    for (size_t i = 0; i < n; i++) {
        if (raw_send(b, cmd, false, count, NULL, 0) < 0 ||
            raw_reply(b, PREFIX + count) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
raw_write(struct bench *b, size_t n, uint16_t cmd, uint32_t count)
{
    for (size_t i = 0; i < n; i++) {
        if (raw_send(b, cmd, false, count, b->data, count) < 0 ||
            raw_reply(b, PREFIX) < 0) {
            return -1;
        }
    }
    return 0;
}

static int raw_read64k(struct bench *b, size_t n)    { return raw_read(b, n, RAW_READ, 64 * KiB); }
static int raw_read1m(struct bench *b, size_t n)     { return raw_read(b, n, RAW_READ, MiB); }
static int raw_write1m(struct bench *b, size_t n)    { return raw_write(b, n, RAW_WRITE, MiB); }
static int rawnc_read1m(struct bench *b, size_t n)   { return raw_read(b, n, RAW_READ_NOCOPY, MiB); }
static int rawnc_write1m(struct bench *b, size_t n)  { return raw_write(b, n, RAW_WRITE_NOCOPY, MiB); }

/* @n 36-byte messages without reply, then one ping-pong. */
static int
raw_stream(struct bench *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (raw_send(b, RAW_WRITE, true, 4, b->data, 4) < 0) {
            return -1;
        }
    }
    return raw_ping(b, 1);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

struct row {
    const char *key;            /* for --count-client */
    const char *name;
    const char *raw_shape;
    uint32_t bytes;             /* data bytes per op: a bandwidth test */
    size_t chunk;               /* ops between looks at the clock */
    size_t fixed_ops;           /* ops per round when not timed (stream) */
    size_t trace_ops;           /* requests in the strace pass */
    op_fn *lib;
    op_fn *raw;
    op_fn *raw_nocopy;          /* NULL: no such variant */
};

static const struct row rows[] = {
    { "read4", "read 4 B, round trip", "36 B / 36 B ping-pong",
      0, 100, 0, 2000, lib_read4, raw_ping, NULL },
    { "write4", "write 4 B, round trip", "36 B / 36 B ping-pong",
      0, 100, 0, 2000, lib_write4, raw_ping, NULL },
    { "read64k", "read 64 KiB", "32 B / 64 KiB+32",
      64 * KiB, 20, 0, 1000, lib_read64k, raw_read64k, NULL },
    { "read1m", "read 1 MiB", "32 B / 1 MiB+32",
      MiB, 4, 0, 200, lib_read1m, raw_read1m, rawnc_read1m },
    { "write1m", "write 1 MiB", "1 MiB+32 / 32 B",
      MiB, 4, 0, 200, lib_write1m, raw_write1m, rawnc_write1m },
    { "stream", "posted write 4 B, stream", "36 B each, then a ping-pong",
      0, 10000, 100000, 2000, lib_stream, raw_stream, NULL },
};
#define NR_ROWS (sizeof(rows) / sizeof(rows[0]))

enum { V_LIB, V_RAW, V_NOCOPY, NR_VARIANTS };

/* Syscall counts of one variant of one test, summed over its rounds. */
struct tally {
    uint64_t ops;
    uint64_t cli_send, cli_recv;        /* wrapper counts, this process */
    uint64_t srv_send, srv_recv;        /* wrapper counts, the server */
    uint64_t srv_same_cpu;              /* receives on the client's CPU */
    uint64_t stat_requests, stat_recv;  /* vfu_client_get_stats() */
};

struct result {
    double ns[NR_VARIANTS][MAX_ROUNDS];   /* per op, each round */
    double same_cpu[NR_VARIANTS][MAX_ROUNDS]; /* share of server receives */
    double cli_cpu[NR_VARIANTS][MAX_ROUNDS];  /* CPU ns per op, client */
    double srv_cpu[NR_VARIANTS][MAX_ROUNDS];  /* CPU ns per op, server */
    struct tally t[NR_VARIANTS];
};

/* Tests chosen with -t (all by default). */
static bool enabled[NR_ROWS];

/* The server processes, for their CPU time. */
static pid_t server_pid[2];

/* CPU time a process has used, in ns (-1 when unknown). */
static double
cpu_ns(pid_t pid)
{
    char path[64];
    unsigned long long run = 0;
    FILE *f;

    if (pid == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
    }
    /* On-CPU time is the first field; exact for a task that sleeps. */
    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%llu", &run) != 1) {
        run = 0;
    }
    fclose(f);
    return run > 0 ? (double)run : -1;
}

/* Each round: untimed for warm_up_ms, then timed for round_ms. */
static double warm_up_ms = 100;
static double round_ms = 150;

/* Shared counters: the library server, the raw server, this client. */
enum { SC_LIB_SERVER, SC_RAW_SERVER, SC_CLIENT, NR_SC };
static struct sc_counts *shm;

static op_fn *
variant_fn(const struct row *row, int v)
{
    return v == V_LIB ? row->lib : v == V_RAW ? row->raw : row->raw_nocopy;
}

static void
run_ops(struct bench *b, const struct row *row, int v, size_t n)
{
    if (variant_fn(row, v)(b, n) < 0) {
        die("%s (%s)", row->name, v == V_LIB ? "library" : "raw");
    }
}

/*
 * Runs variant @v for one round, untimed for warm_up_ms and then timed for
 * round_ms in whole chunks (with @fixed, the stream test: one run of
 * @fixed ops), and records what it cost.
 */
static void
measure(struct bench *b, const struct row *row, int v, size_t fixed,
        struct result *res, int round)
{
    struct sc_counts *srv = &shm[v == V_LIB ? SC_LIB_SERVER : SC_RAW_SERVER];
    pid_t spid = server_pid[v == V_LIB ? 0 : 1];
    struct tally *t = &res->t[v];
    struct sc_counts c0, c1, s0, s1;
    struct vfu_client_stats st0, st1;
    double t0, t1, cc0, cc1, sc0, sc1, until;
    size_t ops = 0;

    until = now_ns() + warm_up_ms * 1e6;
    do {
        run_ops(b, row, v, row->chunk);
    } while (now_ns() < until);

    vfu_client_get_stats(b->lib, &st0);
    sc_read(&shm[SC_CLIENT], &c0);
    sc_read(srv, &s0);
    sc0 = cpu_ns(spid);
    cc0 = cpu_ns(0);
    t0 = now_ns();
    if (fixed > 0) {
        run_ops(b, row, v, fixed);
        ops = fixed;
        t1 = now_ns();
    } else {
        until = t0 + round_ms * 1e6;
        do {
            run_ops(b, row, v, row->chunk);
            ops += row->chunk;
            t1 = now_ns();
        } while (t1 < until);
    }
    cc1 = cpu_ns(0);
    sc1 = cpu_ns(spid);
    sc_read(srv, &s1);
    sc_read(&shm[SC_CLIENT], &c1);
    vfu_client_get_stats(b->lib, &st1);

    res->ns[v][round] = (t1 - t0) / (double)ops;
    res->cli_cpu[v][round] = (cc1 - cc0) / (double)ops;
    res->srv_cpu[v][round] = sc0 >= 0 && sc1 >= 0 ?
                             (sc1 - sc0) / (double)ops : -1;
    res->same_cpu[v][round] = s1.recvmsg > s0.recvmsg ?
        (double)(s1.recv_same_cpu - s0.recv_same_cpu) /
        (double)(s1.recvmsg - s0.recvmsg) : 0;

    t->ops += ops;
    t->cli_send += c1.sendmsg - c0.sendmsg;
    t->cli_recv += c1.recvmsg - c0.recvmsg;
    t->srv_send += s1.sendmsg - s0.sendmsg;
    t->srv_recv += s1.recvmsg - s0.recvmsg;
    t->srv_same_cpu += s1.recv_same_cpu - s0.recv_same_cpu;
    t->stat_requests += st1.requests - st0.requests;
    t->stat_recv += st1.recv_calls - st0.recv_calls;
}

/*
 * One round of a test: each variant in turn, library first in even
 * rounds and raw first in odd ones.
 *
 * Each variant runs its whole round alone, after a warm-up, rather than
 * all taking turns chunk by chunk: on a machine whose scheduler packs
 * tasks (like the 2-vCPU VM this was written on), fine-grained turns let
 * it put the client next to one server and the other server on the other
 * CPU, which compares unlike placements. After a switch the scheduler
 * needs tens of milliseconds to settle the new pair; the warm-up covers
 * that (see docs/performance.md).
 */
static void
measure_round(struct bench *b, const struct row *row, size_t fixed,
              struct result *res, int round)
{
    for (int i = 0; i < NR_VARIANTS; i++) {
        int v = round % 2 ? NR_VARIANTS - 1 - i : i;

        if (variant_fn(row, v) != NULL) {
            measure(b, row, v, fixed, res, round);
        }
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median and relative spread ((max - min) / median) of @n values. */
static double
median(const double *v, int n, double *spread)
{
    double s[MAX_ROUNDS];
    double m;

    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    if (spread != NULL) {
        *spread = m > 0 ? (s[n - 1] - s[0]) / m : 0;
    }
    return m;
}

static double ratio(const struct row *row, double lib_ns, double raw_ns);

/* Which rounds to look at: all, or those with a given placement. */
enum { PLACE_ANY, PLACE_TOGETHER, PLACE_APART };

struct sel_stats {
    int n;                      /* rounds selected */
    double lib, other;          /* median ns per op */
    double ratio, q1, q3;       /* median and middle half of round ratios */
    double lib_cli, lib_srv;    /* M_CPU: median ns per op of each process */
    double other_cli, other_srv;
};

static bool
is_round_trip(const struct row *row)
{
    return row->bytes == 0 && row->lib != lib_stream;
}

static bool
placed(double same_cpu, int place)
{
    return place == PLACE_ANY ||
           (place == PLACE_TOGETHER && same_cpu >= 0.9) ||
           (place == PLACE_APART && same_cpu <= 0.1);
}

/* What select_rounds() looks at. */
enum { M_TIME, M_CPU };

static double
metric(const struct result *res, int v, int i, int m, double *cli, double *srv)
{
    *cli = res->cli_cpu[v][i];
    *srv = res->srv_cpu[v][i];
    return m == M_TIME ? res->ns[v][i] : *cli + *srv;
}

/*
 * The library and variant @v over the rounds with placement @place, and
 * the ratios of the rounds that ran back to back (which share the state of
 * the machine, where the medians of the two sides may not). With M_CPU the
 * values are CPU time per op of client and server together, and the ratio
 * is always library/raw, and lib_cli etc. are the medians of the parts.
 */
static void
select_rounds(const struct row *row, const struct result *res, int v,
              int rounds, int place, int m, struct sel_stats *st)
{
    double lib[MAX_ROUNDS], other[MAX_ROUNDS], q[MAX_ROUNDS];
    double lc[MAX_ROUNDS], ls[MAX_ROUNDS], oc[MAX_ROUNDS], os[MAX_ROUNDS];
    int n = 0;

    memset(st, 0, sizeof(*st));
    for (int i = 0; i < rounds; i++) {
        if (!placed(res->same_cpu[V_LIB][i], place) ||
            !placed(res->same_cpu[v][i], place)) {
            continue;
        }
        if (m == M_CPU && (res->srv_cpu[V_LIB][i] < 0 ||
                           res->srv_cpu[v][i] < 0)) {
            continue;
        }
        lib[n] = metric(res, V_LIB, i, m, &lc[n], &ls[n]);
        other[n] = metric(res, v, i, m, &oc[n], &os[n]);
        q[n] = m == M_CPU ? lib[n] / other[n] : ratio(row, lib[n], other[n]);
        n++;
    }
    st->n = n;
    if (n == 0) {
        return;
    }
    if (m == M_CPU) {
        st->lib_cli = median(lc, n, NULL);
        st->lib_srv = median(ls, n, NULL);
        st->other_cli = median(oc, n, NULL);
        st->other_srv = median(os, n, NULL);
    }
    st->lib = median(lib, n, NULL);
    st->other = median(other, n, NULL);
    st->ratio = median(q, n, NULL);
    qsort(q, (size_t)n, sizeof(q[0]), cmp_double);
    st->q1 = q[(n - 1) / 4];
    st->q3 = q[n - 1 - (n - 1) / 4];
}

/* ------------------------------------------------------------------ */
/* Processes                                                           */
/* ------------------------------------------------------------------ */

/* -p: where the processes run. Default: wherever the scheduler puts them. */
enum { PIN_NONE, PIN_SAME, PIN_SPLIT };
static int pin_mode = PIN_NONE;
static int pin_cpu[2] = { -1, -1 };     /* client, servers */

/* Picks the first two CPUs we may run on; false when there are fewer. */
static bool
choose_cpus(void)
{
    cpu_set_t set;
    int n = 0;

    if (sched_getaffinity(0, sizeof(set), &set) < 0) {
        return false;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            pin_cpu[n++] = cpu;
        }
    }
    if (n < 2 && pin_mode == PIN_SPLIT) {
        return false;
    }
    if (pin_mode == PIN_SAME) {
        pin_cpu[1] = pin_cpu[0];
    }
    return true;
}

/* Pins this process as -p says; @server: it is one of the servers. */
static void
pin_self(bool server)
{
    cpu_set_t set;

    if (pin_mode == PIN_NONE) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(pin_cpu[server ? 1 : 0], &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        die("sched_setaffinity");
    }
}

/* Short enough that every socket path in it fits a sockaddr_un. */
static char sock_dir[64];

static pid_t main_pid;

/* Removes what this run left in sock_dir, from the main process only. */
static void
remove_sock_dir(void)
{
    char path[128];

    if (getpid() != main_pid || sock_dir[0] == '\0') {
        return;
    }
    snprintf(path, sizeof(path), "%s/lib.sock", sock_dir);
    unlink(path);
    rmdir(sock_dir);
}

static vfu_client_t *
connect_retry(const char *path, int wait_ms)
{
    for (int i = 0;; i++) {
        vfu_client_t *c = vfu_client_connect(path);
        if (c != NULL) {
            return c;
        }
        if ((errno != ENOENT && errno != ECONNREFUSED) || i >= wait_ms) {
            return NULL;
        }
        usleep(1000);
    }
}

static vfu_client_t *
lib_client(const char *path, int wait_ms)
{
    vfu_client_t *c = connect_retry(path, wait_ms);

    if (c == NULL) {
        die("connect to %s", path);
    }
    if (vfu_client_negotiate(c, NULL) < 0) {
        die("negotiate");
    }
    if (vfu_client_server_info(c)->max_data_xfer_size < MiB) {
        errno = 0;
        die("server takes transfers of only %" PRIu64 " bytes",
            vfu_client_server_info(c)->max_data_xfer_size);
    }
    return c;
}

/* ------------------------------------------------------------------ */
/* strace pass                                                         */
/* ------------------------------------------------------------------ */

enum { S_SENDMSG, S_RECVMSG, S_READ, S_WRITE, S_POLL, S_OTHER, S_TOTAL,
       NR_SYS };
static const char *const sys_names[NR_SYS] = {
    "sendmsg", "recvmsg", "read", "write", "poll", "other", "total",
};

/* Parses `strace -c` output; false when it has no summary table. */
static bool
parse_strace(const char *file, double counts[NR_SYS])
{
    FILE *f = fopen(file, "r");
    char line[512];
    bool seen = false;

    memset(counts, 0, NR_SYS * sizeof(counts[0]));
    if (f == NULL) {
        return false;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tok[8];
        int nt = 0;

        for (char *s = strtok(line, " \t\n"); s != NULL && nt < 8;
             s = strtok(NULL, " \t\n")) {
            tok[nt++] = s;
        }
        /* % time, seconds, usecs/call, calls, [errors,] syscall */
        if (nt < 5 || strspn(tok[0], "0123456789.") != strlen(tok[0])) {
            continue;
        }
        const char *name = tok[nt - 1];
        double calls = strtod(tok[3], NULL);
        if (strcmp(name, "total") == 0) {
            counts[S_TOTAL] = calls;
            seen = true;
            continue;
        }
        int k = S_OTHER;
        for (int i = 0; i < S_OTHER; i++) {
            if (strcmp(name, sys_names[i]) == 0 ||
                (i == S_POLL && strcmp(name, "ppoll") == 0) ||
                (i == S_SENDMSG && strcmp(name, "sendto") == 0) ||
                (i == S_RECVMSG && strcmp(name, "recvfrom") == 0)) {
                k = i;
            }
        }
        counts[k] += calls;
    }
    fclose(f);
    return seen;
}

static pid_t
spawn(char *const argv[])
{
    pid_t pid = fork();

    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        /* LeakSanitizer cannot run under ptrace; say so to ASan builds. */
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[512];
        snprintf(opts, sizeof(opts), "%s%sdetect_leaks=0",
                 asan != NULL ? asan : "",
                 asan != NULL && *asan != '\0' ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int
wait_status(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * Runs test @row for @n requests with both library processes under strace.
 * Fills @srv and @cli with the counts; returns false (and says why in
 * @why) when strace could not do it.
 */
static bool
trace_once(const char *self, const struct row *row, size_t n,
           double srv[NR_SYS], double cli[NR_SYS], char *why, size_t why_len)
{
    char sock[128], srv_out[128], cli_out[128], nstr[32];
    pid_t ps, pc;
    int ss, sc;

    snprintf(sock, sizeof(sock), "%s/%s-%zu.sock", sock_dir, row->key, n);
    snprintf(srv_out, sizeof(srv_out), "%s/%s-%zu.server", sock_dir, row->key, n);
    snprintf(cli_out, sizeof(cli_out), "%s/%s-%zu.client", sock_dir, row->key, n);
    snprintf(nstr, sizeof(nstr), "%zu", n);

    char *sargv[] = { "strace", "-c", "-f", "-o", srv_out, (char *)self,
                      "--serve-lib", sock, NULL };
    char *cargv[] = { "strace", "-c", "-f", "-o", cli_out, (char *)self,
                      "--count-client", (char *)row->key, nstr, sock, NULL };
    ps = spawn(sargv);
    /*
     * Start the client once the server listens, so that set-up makes the
     * same calls in every run (no connect() retries).
     */
    ss = -1;
    for (int i = 0; i < 10000 && ss < 0; i++) {
        struct stat st;
        int status;
        if (stat(sock, &st) == 0) {
            break;
        }
        if (waitpid(ps, &status, WNOHANG) == ps) {
            ss = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
            break;
        }
        usleep(1000);
    }
    if (ss >= 0) {
        unlink(srv_out);
        snprintf(why, why_len, "the server under strace exited (%d) before "
                 "listening; is ptrace allowed here?", ss);
        return false;
    }
    usleep(10000);
    pc = spawn(cargv);
    sc = wait_status(pc);
    if (sc != 0) {
        /* The server may still wait for a client that never came. */
        kill(ps, SIGTERM);
    }
    ss = wait_status(ps);
    unlink(sock);
    if (ss == 127 || sc == 127) {
        unlink(srv_out);
        unlink(cli_out);
        snprintf(why, why_len, "strace could not be started");
        return false;
    }
    if (ss != 0 || sc != 0) {
        unlink(srv_out);
        unlink(cli_out);
        snprintf(why, why_len, "strace runs failed (server %d, client %d); "
                 "is ptrace allowed here?", ss, sc);
        return false;
    }
    bool ok = parse_strace(srv_out, srv) && parse_strace(cli_out, cli);
    if (!ok) {
        snprintf(why, why_len, "no strace -c summary in its output");
    }
    unlink(srv_out);
    unlink(cli_out);
    return ok;
}

static bool
have_strace(void)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];

    if (path == NULL) {
        return false;
    }
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/strace", (int)len, path);
        if (access(buf, X_OK) == 0) {
            return true;
        }
        path += len;
        path += *path == ':';
    }
    return false;
}

/* Per request: (counts with n requests - counts with none) / n. */
static void
trace_pass(const char *self, bool quick)
{
    char why[256];

    printf("\nSystem calls per request under strace -c (separate pass; "
           "each test run with N\nrequests and with 0, the difference "
           "divided by N; both library processes traced):\n\n");
    if (!have_strace()) {
        printf("  skipped: strace is not installed\n");
        return;
    }
    printf("  %-26s %6s %-7s", "test", "N", "side");
    for (int i = 0; i < S_TOTAL; i++) {
        printf(" %8s", sys_names[i]);
    }
    printf(" %8s\n", "all");

    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
        const struct row *row = &rows[r];
        size_t n = quick ? row->trace_ops / 10 : row->trace_ops;
        double s0[NR_SYS], c0[NR_SYS], s1[NR_SYS], c1[NR_SYS];

        if (!trace_once(self, row, 0, s0, c0, why, sizeof(why)) ||
            !trace_once(self, row, n, s1, c1, why, sizeof(why))) {
            printf("  skipped: %s\n", why);
            return;
        }
        for (int side = 0; side < 2; side++) {
            const double *a = side == 0 ? c0 : s0, *z = side == 0 ? c1 : s1;
            printf("  %-26s %6zu %-7s", side == 0 ? row->name : "",
                   n, side == 0 ? "client" : "server");
            for (int i = 0; i < NR_SYS; i++) {
                printf(" %8.3f", (z[i] - a[i]) / (double)n);
            }
            printf("\n");
        }
    }
    printf("\n  (sendmsg/recvmsg include sendto/recvfrom, poll includes "
           "ppoll; 'all' is every\n  system call; for the stream test N "
           "counts the posted writes.)\n");
}

/* The client of one strace run: --count-client TEST N SOCKET. */
static int
count_client(const char *key, const char *nstr, const char *path)
{
    struct bench b = { .raw_fd = -1 };
    const struct row *row = NULL;
    char *end;
    size_t n = strtoul(nstr, &end, 10);

    for (size_t r = 0; r < NR_ROWS; r++) {
        if (strcmp(rows[r].key, key) == 0) {
            row = &rows[r];
        }
    }
    if (row == NULL || *end != '\0') {
        fprintf(stderr, "vfu-bench: bad --count-client arguments\n");
        return 2;
    }
    b.data = alloc_touched(MiB);
    b.lib = lib_client(path, 10000);
    if (row->lib(&b, n) < 0) {
        die("%s", row->name);
    }
    vfu_client_close(b.lib);
    free(b.data);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Report                                                              */
/* ------------------------------------------------------------------ */

static void
fmt_value(char *buf, size_t len, const struct row *row, double ns)
{
    if (row->bytes > 0) {
        snprintf(buf, len, "%8.0f MB/s", (double)row->bytes * 1e3 / ns);
    } else {
        snprintf(buf, len, "%8.2f us  ", ns / 1e3);
    }
}

static const char *
verdict(bool met, bool missed)
{
    return met ? "met" : missed ? "MISSED" : "unclear";
}

/* library / raw for latency, library bandwidth / raw bandwidth otherwise */
static double
ratio(const struct row *row, double lib_ns, double raw_ns)
{
    return row->bytes > 0 ? raw_ns / lib_ns : lib_ns / raw_ns;
}

static void
usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-q] [-r ROUNDS] [-S] [-v] [-t TEST,...] "
            "[-a OFFSET] [-p same|split]\n"
            "  -q  quick: 10x fewer iterations\n"
            "  -r  rounds per test, 1..%d (default 7); the median is shown\n"
            "  -S  skip the strace pass\n"
            "  -v  print every round\n"
            "  -t  only these tests: read4 write4 read64k read1m write1m "
            "stream\n"
            "  -a  put device memory OFFSET bytes into a page (default 0)\n"
            "  -p  pin: 'same' (all on one CPU) or 'split' (client on one,\n"
            "      servers on another); default: nothing pinned\n",
            argv0, MAX_ROUNDS);
}

int
main(int argc, char *argv[])
{
    struct result res[NR_ROWS];
    struct bench b = { .raw_fd = -1 };
    char self[PATH_MAX], lib_sock[128];
    bool quick = false, no_strace = false, verbose = false;
    const char *only = NULL;
    int rounds = 7;
    int sv[2], ready[2], opt;
    pid_t raw_pid, lib_pid;
    ssize_t len;
    double t_start = now_ns();

    if (argc >= 3 && strcmp(argv[1], "--serve-lib") == 0) {
        return serve_lib(argv[2], -1);
    }
    if (argc >= 5 && strcmp(argv[1], "--count-client") == 0) {
        return count_client(argv[2], argv[3], argv[4]);
    }
    while ((opt = getopt(argc, argv, "qr:St:va:p:h")) != -1) {
        switch (opt) {
        case 'q':
            quick = true;
            break;
        case 'r':
            rounds = atoi(optarg);
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                usage(argv[0]);
                return 2;
            }
            break;
        case 'S':
            no_strace = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 't':
            only = optarg;
            break;
        case 'p':
            pin_mode = strcmp(optarg, "same") == 0 ? PIN_SAME :
                       strcmp(optarg, "split") == 0 ? PIN_SPLIT : -1;
            if (pin_mode < 0) {
                usage(argv[0]);
                return 2;
            }
            break;
        case 'a':
            bar_offset = strtoul(optarg, NULL, 0);
            if (bar_offset > 4095) {
                usage(argv[0]);
                return 2;
            }
            break;
        default:
            usage(argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage(argv[0]);
        return 2;
    }
    if (pin_mode != PIN_NONE && !choose_cpus()) {
        fprintf(stderr, "vfu-bench: -p split needs two CPUs\n");
        return 2;
    }
    for (size_t r = 0; r < NR_ROWS; r++) {
        char list[256];
        enabled[r] = only == NULL;
        if (only != NULL) {
            snprintf(list, sizeof(list), ",%s,", only);
            char key[32];
            snprintf(key, sizeof(key), ",%s,", rows[r].key);
            enabled[r] = strstr(list, key) != NULL;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (quick) {
        warm_up_ms /= 10;
        round_ms /= 10;
    }

    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len < 0) {
        die("readlink /proc/self/exe");
    }
    self[len] = '\0';
    /* In /tmp, not $TMPDIR: socket paths must stay short. */
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/vfu-bench.XXXXXX");
    if (mkdtemp(sock_dir) == NULL) {
        die("mkdtemp %s", sock_dir);
    }
    main_pid = getpid();
    atexit(remove_sock_dir);
    snprintf(lib_sock, sizeof(lib_sock), "%s/lib.sock", sock_dir);

    shm = mmap(NULL, NR_SC * sizeof(*shm), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        die("mmap");
    }
    for (int i = 0; i < NR_SC; i++) {
        shm[i].last_send_cpu = -1;
    }
    sc_count_into(&shm[SC_CLIENT], NULL);

    /* Raw server: a child on one end of a socketpair. */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        die("socketpair");
    }
    raw_pid = fork();
    if (raw_pid < 0) {
        die("fork");
    }
    if (raw_pid == 0) {
        pin_self(true);
        close(sv[0]);
        sc_count_into(&shm[SC_RAW_SERVER], &shm[SC_CLIENT]);
        _exit(serve_raw(sv[1]));
    }
    close(sv[1]);
    b.raw_fd = sv[0];
    b.rx.buf = alloc_touched(RAW_RX_CAP);
    b.rx.cap = RAW_RX_CAP;

    /* Library server: a child listening on a socket in sock_dir. */
    if (pipe(ready) < 0) {
        die("pipe");
    }
    lib_pid = fork();
    if (lib_pid < 0) {
        die("fork");
    }
    if (lib_pid == 0) {
        pin_self(true);
        close(sv[0]);
        close(ready[0]);
        sc_count_into(&shm[SC_LIB_SERVER], &shm[SC_CLIENT]);
        _exit(serve_lib(lib_sock, ready[1]));
    }
    close(ready[1]);
    pin_self(false);
    {
        char c;
        if (read(ready[0], &c, 1) != 1) {
            errno = 0;
            die("the library server did not start");
        }
        close(ready[0]);
    }
    server_pid[0] = lib_pid;
    server_pid[1] = raw_pid;
    b.lib = lib_client(lib_sock, 0);
    b.data = alloc_touched(MiB);

    struct utsname un;
    uname(&un);
    printf("vfu-bench: libvfio-user vs raw AF_UNIX; %ld CPUs online, "
           "Linux %s;\n%d rounds of %.0f ms after %.0f ms of warm-up%s; ",
           sysconf(_SC_NPROCESSORS_ONLN), un.release, rounds, round_ms,
           warm_up_ms, quick ? " (quick)" : "");
    if (pin_mode == PIN_NONE) {
        printf("nothing pinned.\n");
    } else if (pin_mode == PIN_SAME) {
        printf("all three processes pinned to CPU %d.\n", pin_cpu[0]);
    } else {
        printf("client pinned to CPU %d, servers to CPU %d.\n", pin_cpu[0],
               pin_cpu[1]);
    }

    /* Test by test, round by round; see measure_round(). */
    memset(res, 0, sizeof(res));
    for (size_t r = 0; r < NR_ROWS; r++) {
        size_t fixed = quick ? rows[r].fixed_ops / 10 : rows[r].fixed_ops;

        if (!enabled[r]) {
            continue;
        }
        for (int round = 0; round < rounds; round++) {
            measure_round(&b, &rows[r], fixed, &res[r], round);
        }
    }

    vfu_client_close(b.lib);
    close(b.raw_fd);
    free(b.rx.buf);
    free(b.data);
    if (wait_status(lib_pid) != 0 || wait_status(raw_pid) != 0) {
        fprintf(stderr, "vfu-bench: a server process failed\n");
    }

    /* Timing table. */
    printf("\n  %-26s %7s %14s %14s %7s %13s   %s\n", "test", "ops",
           "library", "raw", "ratio", "(middle half)",
           "raw shape (request / reply)");
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
        const struct row *row = &rows[r];
        struct sel_stats st;
        char lv[32], rv[32];

        select_rounds(row, &res[r], V_RAW, rounds, PLACE_ANY, M_TIME, &st);
        fmt_value(lv, sizeof(lv), row, st.lib);
        fmt_value(rv, sizeof(rv), row, st.other);
        printf("  %-26s %7zu %14s %14s %6.2fx  (%4.2f-%4.2f)   %s\n",
               row->name, (size_t)res[r].t[V_LIB].ops, lv, rv, st.ratio,
               st.q1, st.q3, row->raw_shape);
    }
    printf("\n  library, raw: the median round. ratio: library/raw time "
           "(latency rows) or\n  library/raw bandwidth (MB/s, MB = 10^6 data "
           "bytes): the median over the rounds\n  of each round's ratio (in "
           "a round the two run back to back), and the\n  middle half of "
           "those ratios. ops: library ops timed, all rounds. The stream\n"
           "  row is time per posted write, the final read included.\n");

    printf("\n  Bandwidth against the bare transport (raw server sends "
           "straight from its\n  backing buffer and drops written data: "
           "no device memcpy):\n");
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r] || rows[r].raw_nocopy == NULL) {
            continue;
        }
        const struct row *row = &rows[r];
        struct sel_stats st;
        char lv[32], rv[32];

        select_rounds(row, &res[r], V_NOCOPY, rounds, PLACE_ANY, M_TIME, &st);
        fmt_value(lv, sizeof(lv), row, st.lib);
        fmt_value(rv, sizeof(rv), row, st.other);
        printf("  %-26s %7s %14s %14s %6.2fx  (%4.2f-%4.2f)\n", row->name, "",
               lv, rv, st.ratio, st.q1, st.q3);
    }

    printf("\n  Round trips by placement: rounds where at least 90%% (same "
           "CPU) or at most\n  10%% (other CPU) of the server's receives "
           "ran on the CPU the client sent from,\n  in both the library "
           "round and the raw round next to it:\n");
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r] || !is_round_trip(&rows[r])) {
            continue;
        }
        for (int place = PLACE_TOGETHER; place <= PLACE_APART; place++) {
            struct sel_stats st;
            char lv[32], rv[32];

            select_rounds(&rows[r], &res[r], V_RAW, rounds, place, M_TIME, &st);
            if (st.n == 0) {
                printf("  %-26s %-9s %3d rounds\n",
                       place == PLACE_TOGETHER ? rows[r].name : "",
                       place == PLACE_TOGETHER ? "same CPU" : "other CPU",
                       st.n);
                continue;
            }
            fmt_value(lv, sizeof(lv), &rows[r], st.lib);
            fmt_value(rv, sizeof(rv), &rows[r], st.other);
            printf("  %-26s %-9s %3d rounds %14s %14s %6.2fx  (%4.2f-%4.2f)\n",
                   place == PLACE_TOGETHER ? rows[r].name : "",
                   place == PLACE_TOGETHER ? "same CPU" : "other CPU",
                   st.n, lv, rv, st.ratio, st.q1, st.q3);
        }
    }

    printf("\n  CPU time per op, client + server (on-CPU time of both "
           "processes, user and\n  kernel, from CLOCK_PROCESS_CPUTIME_ID and "
           "/proc/PID/schedstat): the work each\n  side does, whatever the "
           "scheduler does with wake-ups:\n");
    printf("  %-26s %24s %24s %7s %13s\n", "test", "library us (cli + srv)",
           "raw us (cli + srv)", "ratio", "(middle half)");
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
        struct sel_stats st;
        char lv[40], rv[40];

        select_rounds(&rows[r], &res[r], V_RAW, rounds, PLACE_ANY, M_CPU,
                      &st);
        if (st.n == 0) {
            printf("  %-26s (server CPU time unavailable)\n", rows[r].name);
            continue;
        }
        snprintf(lv, sizeof(lv), "%7.2f (%.2f + %.2f)", st.lib / 1e3,
                 st.lib_cli / 1e3, st.lib_srv / 1e3);
        snprintf(rv, sizeof(rv), "%7.2f (%.2f + %.2f)", st.other / 1e3,
                 st.other_cli / 1e3, st.other_srv / 1e3);
        printf("  %-26s %24s %24s %6.2fx  (%4.2f-%4.2f)\n", rows[r].name, lv,
               rv, st.ratio, st.q1, st.q3);
    }
    printf("  (each number is a median over the rounds, so the parts need "
           "not add up.)\n\n");

    if (verbose) {
        printf("\n  Every round: us per op / %% of server receives on the "
               "client's CPU\n");
        for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
            for (int v = 0; v < NR_VARIANTS; v++) {
                if (v == V_NOCOPY && rows[r].raw_nocopy == NULL) {
                    continue;
                }
                printf("  %-26s %-8s", v == V_LIB ? rows[r].name : "",
                       v == V_LIB ? "library" : v == V_RAW ? "raw" : "no copy");
                for (int i = 0; i < rounds; i++) {
                    printf(" %7.2f/%-3.0f", res[r].ns[v][i] / 1e3,
                           100 * res[r].same_cpu[v][i]);
                }
                printf("\n");
            }
        }
    }

    /* Syscall table from the timed runs. */
    printf("\n  System calls per op in the timed runs: sendmsg and recvmsg, "
           "counted by wrappers\n  (library client: vfu_client_get_stats()); "
           "'same CPU': share of the server's\n  receives that ran on the "
           "CPU the client last sent from:\n");
    printf("  %-26s %15s %15s %15s %15s  %s\n", "test", "lib client",
           "lib server", "raw client", "raw server", "same CPU");
    printf("  %-26s %15s %15s %15s %15s  %s\n", "", "send   recv",
           "send   recv", "send   recv", "send   recv", " lib   raw");
    bool stats_agree = true;
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
        const struct tally *l = &res[r].t[V_LIB], *w = &res[r].t[V_RAW];
        double lo = (double)l->ops, ro = (double)w->ops;
        printf("  %-26s %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f %7.3f  "
               "%3.0f%%  %3.0f%%\n", rows[r].name,
               (double)l->stat_requests / lo, (double)l->stat_recv / lo,
               (double)l->srv_send / lo, (double)l->srv_recv / lo,
               (double)w->cli_send / ro, (double)w->cli_recv / ro,
               (double)w->srv_send / ro, (double)w->srv_recv / ro,
               l->srv_recv ? 100.0 * (double)l->srv_same_cpu /
                             (double)l->srv_recv : 0,
               w->srv_recv ? 100.0 * (double)w->srv_same_cpu /
                             (double)w->srv_recv : 0);
        if (l->stat_requests != l->cli_send || l->stat_recv != l->cli_recv) {
            stats_agree = false;
        }
    }
    if (!stats_agree) {
        printf("  note: the client library's stats and the recvmsg/sendmsg "
               "wrappers disagree\n");
    }
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
        if (strcmp(rows[r].key, "stream") == 0) {
            const struct tally *l = &res[r].t[V_LIB], *w = &res[r].t[V_RAW];
            printf("\n  Posted stream: the library server made %.4f recvmsg() "
                   "per posted write\n  (%" PRIu64 " for %" PRIu64 " writes), "
                   "the raw server %.4f.\n",
                   (double)l->srv_recv / (double)l->ops, l->srv_recv, l->ops,
                   (double)w->srv_recv / (double)w->ops);
        }
    }

    if (!no_strace) {
        trace_pass(self, quick);
    } else {
        printf("\nstrace pass skipped (-S).\n");
    }

    /* Targets: reported, never enforced. */
    printf("\nTargets (reported, never enforced). A verdict is 'met' or "
           "'missed' when the\nmiddle half of the round ratios is on one side "
           "of the target, else 'unclear':\n");
    for (size_t r = 0; r < NR_ROWS; r++) {
        if (!enabled[r]) {
            continue;
        }
        const struct row *row = &rows[r];
        struct sel_stats st, nc;

        select_rounds(row, &res[r], V_RAW, rounds, PLACE_ANY, M_TIME, &st);
        if (is_round_trip(row)) {
            printf("  %-26s library/raw time %.2f (%.2f-%.2f), target "
                   "<= 1.05: %s\n", row->name, st.ratio, st.q1, st.q3,
                   verdict(st.q3 <= 1.05, st.q1 > 1.05));
        } else if (strcmp(row->key, "read1m") == 0) {
            select_rounds(row, &res[r], V_NOCOPY, rounds, PLACE_ANY, M_TIME,
                          &nc);
            printf("  %-26s library/raw bandwidth %.2f (%.2f-%.2f), target "
                   ">= 0.9: %s\n", row->name, st.ratio, st.q1, st.q3,
                   verdict(st.q1 >= 0.9, st.q3 < 0.9));
            printf("  %-26s against the bare transport %.2f (%.2f-%.2f): "
                   "%s\n", "", nc.ratio, nc.q1, nc.q3,
                   verdict(nc.q1 >= 0.9, nc.q3 < 0.9));
        } else if (row->lib == lib_stream) {
            const struct tally *l = &res[r].t[V_LIB];
            double y = (double)l->srv_recv / (double)l->ops;
            printf("  %-26s %.3f server recvmsg() per posted write, target "
                   "well under 1: %s\n", row->name, y,
                   verdict(y <= 0.5, y > 0.5));
        }
    }
    if (quick) {
        printf("  (a quick run is too short for these to mean much)\n");
    }
    printf("\nTotal run time %.1f s.\n", (now_ns() - t_start) / 1e9);

    return 0;
}
