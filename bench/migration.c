/*
 * vfu-bench-migration: the device-state stream of a live migration through
 * libvfio-user, against a raw AF_UNIX stream of the same bytes, in one run.
 *
 * save     A forked libvfio-user server whose device holds STATE bytes of
 *          saved state (read_data memcpy()s them out of a buffer). The
 *          client (libvfio-user-client) moves it RUNNING -> STOP_COPY, then
 *          calls vfu_client_mig_read() for one chunk (the transfer limit)
 *          at a time into its stream buffer until a read comes back short;
 *          then back to RUNNING. Only the reads are timed.
 * restore  The same server, moved to RESUMING, takes the stream back with
 *          one vfu_client_mig_write() per chunk (write_data memcpy()s it
 *          into a second buffer). Leaving RESUMING checks every byte.
 * raw      A forked server on a socketpair(AF_UNIX, SOCK_STREAM) exchanging
 *          the same messages: the vfio-user header and {argsz, size} (24
 *          bytes), then the data. Save is a 24-byte request and a 24 B +
 *          chunk reply, restore a 24 B + chunk request and a 16-byte reply,
 *          with the same memcpy() per chunk on the server. It receives a
 *          message with two recvmsg(MSG_WAITALL), head then data, and
 *          replies with one sendmsg(). The raw client sends from and
 *          receives into its stream buffer in place (no copy).
 *
 * Each round runs save and restore, library and raw one after the other
 * (library first in even rounds), each after an untimed pass of the same
 * kind. Reported: the median round's MB/s (10^6 bytes of state per second)
 * of each side, the median of the per-round ratios library/raw with the
 * middle half of them, and sendmsg()/recvmsg() calls per request on both
 * sides, counted by wrapping them (syscount.c) and, for the library
 * client, by vfu_client_get_stats(). Nothing is enforced: it exits non-zero
 * only when it cannot run.
 *
 *   vfu-bench-migration [-q] [-r ROUNDS] [-s MIB] [-c BYTES] [-p same] [-v]
 *     -q  quick (CI smoke test): 16 MiB of state, no untimed passes
 *     -r  rounds (default 5)      -s  MiB of device state (default 64)
 *     -c  chunk size in bytes (default: the transfer limit, 1 MiB)
 *     -p  same: all three processes on one CPU   -v  print every round
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"
#include "syscount.h"

#define MiB             (1024u * 1024u)
#define HDR             sizeof(struct vfio_user_header)         /* 16 */
#define HEAD            (HDR + sizeof(struct vfio_user_mig_data)) /* 24 */
#define MAX_ROUNDS      31

enum { T_SAVE, T_RESTORE, NR_TESTS };
enum { V_LIB, V_RAW, NR_VARIANTS };
enum { SC_CLIENT, SC_LIB, SC_RAW, NR_SC };      /* counters in shared memory */

static const char *const test_names[NR_TESTS] = { "save", "restore" };

struct head {
    struct vfio_user_header hdr;
    struct vfio_user_mig_data mig;
} __attribute__((packed));

static size_t state_size = 64 * MiB;
static size_t chunk;
static uint8_t *saved;          /* the device state, the same in every process */
static struct sc_counts *shm;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;
    int err = errno;

    va_start(ap, fmt);
    fprintf(stderr, "vfu-bench-migration: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s\n", strerror(err));
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

/* Page aligned and faulted in, so that no timed copy takes a page fault. */
static uint8_t *
alloc_touched(size_t size)
{
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        die("mmap(%zu)", size);
    }
    memset(p, 0x5a, size);
    return p;
}

/* ------------------------------------------------------------------ */
/* The library server: a migratable device with STATE bytes of state   */
/* ------------------------------------------------------------------ */

static struct {
    uint8_t *restored;
    size_t rd, wr;              /* stream positions */
    vfu_migr_state_t state;
} dev = { .state = VFU_MIGR_STATE_RUNNING };

static int
mig_transition(vfu_ctx_t *ctx, vfu_migr_state_t state)
{
    if (dev.state == VFU_MIGR_STATE_RESUME &&
        (dev.wr != state_size || memcmp(dev.restored, saved, state_size))) {
        vfu_log(ctx, LOG_ERR, "restored %zu bytes, not the saved state",
                dev.wr);
        errno = EIO;
        return -1;
    }
    if (state == VFU_MIGR_STATE_STOP_AND_COPY) {
        dev.rd = 0;
    } else if (state == VFU_MIGR_STATE_RESUME) {
        dev.wr = 0;
    }
    dev.state = state;
    return 0;
}

static ssize_t
mig_read_data(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    size_t n = count < state_size - dev.rd ? count : state_size - dev.rd;

    (void)ctx;
    memcpy(buf, saved + dev.rd, n);
    dev.rd += n;
    return (ssize_t)n;
}

static ssize_t
mig_write_data(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    size_t n = count < state_size - dev.wr ? count : state_size - dev.wr;

    (void)ctx;
    if (n == 0) {
        errno = ENOSPC;
        return -1;
    }
    memcpy(dev.restored + dev.wr, buf, n);
    dev.wr += n;
    return (ssize_t)n;
}

static void
server_log(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "vfu-bench-migration server[%d]: %s\n", level, msg);
}

/* Serves one client at @path until it leaves; a byte to @ready_fd first. */
static int
serve_lib(const char *path, int ready_fd)
{
    static const vfu_migration_callbacks_t mig = {
        .version = VFU_MIGR_CALLBACKS_VERS,
        .transition = mig_transition,
        .read_data = mig_read_data,
        .write_data = mig_write_data,
    };
    vfu_ctx_t *ctx;
    bool ok;

    dev.restored = alloc_touched(state_size);
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, path, 0, NULL, VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        die("server: vfu_create_ctx");
    }
    vfu_setup_log(ctx, server_log, LOG_ERR);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0 ||
        vfu_setup_device_migration_callbacks(ctx, &mig) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        die("server: device set-up");
    }
    (void)!write(ready_fd, "r", 1);
    close(ready_fd);
    if (vfu_attach_ctx(ctx) < 0) {
        die("server: vfu_attach_ctx");
    }
    while (vfu_run_ctx(ctx) >= 0) {
        ;
    }
    ok = errno == ENOTCONN;
    if (!ok) {
        perror("vfu-bench-migration server: vfu_run_ctx");
    }
    vfu_destroy_ctx(ctx);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------ */
/* Raw messages, and the raw server                                    */
/* ------------------------------------------------------------------ */

/*
 * No signal is handled here, so on these blocking stream sockets one call
 * moves it all: recvmsg(MSG_WAITALL) returns short only at the end (or on
 * an error), sendmsg() only on an error.
 */

/* All @len bytes: 1; 0 when the peer closed first; -1 on error. */
static int
recv_all(int fd, void *buf, size_t len)
{
    struct iovec iov = { buf, len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n = recvmsg(fd, &mh, MSG_WAITALL);

    return n == (ssize_t)len ? 1 : n < 0 ? -1 : 0;
}

/* The two buffers in one sendmsg(). */
static int
send2(int fd, void *a, size_t a_len, void *b, size_t b_len)
{
    struct iovec iov[2] = { { a, a_len }, { b, b_len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = b_len > 0 ? 2 : 1 };

    return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)(a_len + b_len) ? 0 : -1;
}

static int
serve_raw(int fd)
{
    uint8_t *restored = alloc_touched(state_size);
    uint8_t *buf = alloc_touched(chunk);    /* reply data, received data */
    size_t rd = 0, wr = 0, n;
    struct head h;
    int r;

    while ((r = recv_all(fd, &h, HEAD)) > 0) {
        size_t out = HEAD;

        n = h.mig.size;
        if (n > chunk) {
            errno = E2BIG;
            r = -1;
            break;
        }
        if (h.hdr.cmd == VFIO_USER_MIG_DATA_READ) {
            n = n < state_size - rd ? n : state_size - rd;
            memcpy(buf, saved + rd, n);
            rd = n < h.mig.size ? 0 : rd + n;  /* short: the stream ends */
            h.mig.argsz = (uint32_t)(HEAD - HDR + n);
            h.mig.size = (uint32_t)n;
        } else if (h.hdr.cmd == VFIO_USER_MIG_DATA_WRITE &&
                   h.hdr.msg_size == HEAD + n && n <= state_size - wr) {
            if ((r = recv_all(fd, buf, n)) <= 0) {
                break;
            }
            memcpy(restored + wr, buf, n);
            wr = (wr + n) % state_size;
            out = HDR;
            n = 0;
        } else {
            errno = EPROTO;
            r = -1;
            break;
        }
        h.hdr.msg_size = (uint32_t)(out + n);
        h.hdr.flags = (h.hdr.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
        if (send2(fd, &h, out, buf, n) < 0) {
            r = -1;
            break;
        }
    }
    if (r < 0) {
        perror("vfu-bench-migration raw server");
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The client: one stream of each kind                                 */
/* ------------------------------------------------------------------ */

struct client {
    vfu_client_t *lib;
    int raw_fd;
    uint16_t raw_id;
    uint8_t *stream;            /* state_size + one chunk (the short read) */
};

static void
lib_state(struct client *c, uint32_t state)
{
    if (vfu_client_mig_state_set(c->lib, state) < 0) {
        die("set migration state %u", state);
    }
}

/*
 * One raw request carrying @n bytes of data: sent from @data (WRITE), or
 * asked for and received into @data (READ). Returns the data bytes the
 * reply carried.
 */
static size_t
raw_msg(struct client *c, uint16_t cmd, uint8_t *data, size_t n)
{
    bool wr = cmd == VFIO_USER_MIG_DATA_WRITE;
    struct head h = {
        .hdr = { .msg_id = c->raw_id, .cmd = cmd,
                 .msg_size = (uint32_t)(HEAD + (wr ? n : 0)) },
        .mig = { .argsz = (uint32_t)(HEAD - HDR + (wr ? 0 : n)),
                 .size = (uint32_t)n },
    };
    size_t got;

    if (send2(c->raw_fd, &h, HEAD, data, wr ? n : 0) < 0 ||
        recv_all(c->raw_fd, &h, wr ? HDR : HEAD) <= 0) {
        die("raw request");
    }
    got = wr ? 0 : h.mig.size;
    if (h.hdr.msg_id != c->raw_id++ || got > n ||
        h.hdr.msg_size != (wr ? HDR : HEAD + got) ||
        (got > 0 && recv_all(c->raw_fd, data, got) <= 0)) {
        errno = EPROTO;
        die("raw reply");
    }
    return got;
}

/* The timed part of test @t for variant @v; returns the requests made. */
static size_t
run_stream(struct client *c, int t, int v)
{
    size_t off = 0, reqs = 0, n;
    ssize_t got;

    if (t == T_SAVE) {
        do {        /* until a short read; the stream has room for it */
            if (v == V_LIB) {
                if ((got = vfu_client_mig_read(c->lib, c->stream + off,
                                               chunk)) < 0) {
                    die("MIG_DATA_READ");
                }
                n = (size_t)got;
            } else {
                n = raw_msg(c, VFIO_USER_MIG_DATA_READ, c->stream + off, chunk);
            }
            off += n;
            reqs++;
        } while (n == chunk && off <= state_size);
    } else {
        for (; off < state_size; off += n, reqs++) {
            n = state_size - off < chunk ? state_size - off : chunk;
            if (v == V_RAW) {
                raw_msg(c, VFIO_USER_MIG_DATA_WRITE, c->stream + off, n);
            } else if (vfu_client_mig_write(c->lib, c->stream + off, n) < 0) {
                die("MIG_DATA_WRITE");
            }
        }
    }
    if (off != state_size) {
        errno = EPROTO;
        die("%s stream of %zu bytes, not %zu", test_names[t], off, state_size);
    }
    return reqs;
}

struct sample {
    double ns;                  /* the stream */
    double reqs;
    double cli_send, cli_recv, srv_send, srv_recv;  /* per request */
};

/* One stream of test @t, variant @v, with the library's state changes. */
static void
measure(struct client *c, int t, int v, struct sample *s)
{
    struct sc_counts c0, c1, s0, s1;
    struct vfu_client_stats st0, st1;
    double t0;

    if (v == V_LIB) {
        lib_state(c, t == T_SAVE ? VFIO_DEVICE_STATE_STOP_COPY :
                                   VFIO_DEVICE_STATE_RESUMING);
    }
    vfu_client_get_stats(c->lib, &st0);
    sc_read(&shm[SC_CLIENT], &c0);
    sc_read(&shm[v == V_LIB ? SC_LIB : SC_RAW], &s0);
    t0 = now_ns();
    s->reqs = (double)run_stream(c, t, v);
    s->ns = now_ns() - t0;
    sc_read(&shm[SC_CLIENT], &c1);
    sc_read(&shm[v == V_LIB ? SC_LIB : SC_RAW], &s1);
    vfu_client_get_stats(c->lib, &st1);
    if (v == V_LIB) {       /* the library's own count: the same calls */
        c1.sendmsg = c0.sendmsg + st1.requests - st0.requests;
        c1.recvmsg = c0.recvmsg + st1.recv_calls - st0.recv_calls;
    }
    s->cli_send = (double)(c1.sendmsg - c0.sendmsg) / s->reqs;
    s->cli_recv = (double)(c1.recvmsg - c0.recvmsg) / s->reqs;
    s->srv_send = (double)(s1.sendmsg - s0.sendmsg) / s->reqs;
    s->srv_recv = (double)(s1.recvmsg - s0.recvmsg) / s->reqs;
    if (v == V_LIB) {
        lib_state(c, VFIO_DEVICE_STATE_RUNNING);    /* restore: checks */
    }
}

/* ------------------------------------------------------------------ */
/* Statistics and main                                                 */
/* ------------------------------------------------------------------ */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of @n values; *q1, *q3 (if set): the middle half's ends. */
static double
median(const double *v, int n, double *q1, double *q3)
{
    double s[MAX_ROUNDS];

    memcpy(s, v, (size_t)n * sizeof(*s));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    if (q1 != NULL) {
        *q1 = s[(n - 1) / 4];
        *q3 = s[n - 1 - (n - 1) / 4];
    }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The median over the rounds of field @off of the samples. */
static double
median_of(const struct sample *s, int n, size_t off)
{
    double v[MAX_ROUNDS];

    for (int i = 0; i < n; i++) {
        memcpy(&v[i], (const uint8_t *)&s[i] + off, sizeof(double));
    }
    return median(v, n, NULL, NULL);
}
#define MED(s, n, field) median_of(s, n, offsetof(struct sample, field))

static void
usage(void)
{
    fprintf(stderr, "usage: vfu-bench-migration [-q] [-r ROUNDS] [-s MIB] "
            "[-c BYTES] [-p same] [-v]\n");
    exit(2);
}

int
main(int argc, char *argv[])
{
    static struct sample res[NR_TESTS][NR_VARIANTS][MAX_ROUNDS];
    struct client c = { .raw_fd = -1 };
    char dir[] = "/tmp/vfu-bench-mig.XXXXXX", path[64], byte;
    bool quick = false, verbose = false, same_cpu = false;
    int rounds = 5, sv[2], ready[2], opt, status, failed = 0;
    pid_t pids[2];
    struct utsname un;
    double t_start = now_ns();

    while ((opt = getopt(argc, argv, "qr:s:c:p:v")) != -1) {
        switch (opt) {
        case 'q': quick = true; state_size = 16 * MiB; break;
        case 'r': rounds = atoi(optarg); break;
        case 's': state_size = strtoul(optarg, NULL, 0) * MiB; break;
        case 'c': chunk = strtoul(optarg, NULL, 0); break;
        case 'p': same_cpu = strcmp(optarg, "same") == 0;
                  if (!same_cpu) usage();
                  break;
        case 'v': verbose = true; break;
        default: usage();
        }
    }
    if (optind != argc || rounds < 1 || rounds > MAX_ROUNDS ||
        state_size == 0 || chunk > MiB || (chunk > 0 && chunk < 8)) {
        usage();
    }
    if (same_cpu) {         /* inherited by both servers */
        cpu_set_t set;
        int cpu = 0;

        if (sched_getaffinity(0, sizeof(set), &set) < 0) {
            die("sched_getaffinity");
        }
        while (!CPU_ISSET(cpu, &set)) {
            cpu++;
        }
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0) {
            die("sched_setaffinity");
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The device state: a pattern without zero pages, shared by fork(). */
    saved = alloc_touched(state_size);
    for (uint64_t i = 0, x = 88172645463325252ull; i < state_size / 8; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(saved + i * 8, &x, 8);
    }
    shm = mmap(NULL, NR_SC * sizeof(*shm), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shm == MAP_FAILED) {
        die("mmap");
    }
    sc_count_into(&shm[SC_CLIENT], NULL);
    if (mkdtemp(dir) == NULL) {
        die("mkdtemp");
    }
    snprintf(path, sizeof(path), "%s/lib.sock", dir);

    if (pipe(ready) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        die("pipe/socketpair");
    }
    if (chunk == 0) {
        chunk = MiB;        /* checked against the server's limit below */
    }
    if ((pids[0] = fork()) == 0) {
        close(sv[0]);
        close(sv[1]);
        close(ready[0]);
        sc_count_into(&shm[SC_LIB], &shm[SC_CLIENT]);
        _exit(serve_lib(path, ready[1]));
    }
    if ((pids[1] = fork()) == 0) {
        close(sv[0]);
        close(ready[0]);
        close(ready[1]);
        sc_count_into(&shm[SC_RAW], &shm[SC_CLIENT]);
        _exit(serve_raw(sv[1]));
    }
    if (pids[0] < 0 || pids[1] < 0) {
        die("fork");
    }
    close(sv[1]);
    close(ready[1]);
    c.raw_fd = sv[0];
    if (read(ready[0], &byte, 1) != 1) {
        errno = ECHILD;
        die("the library server did not start");
    }
    close(ready[0]);
    c.lib = vfu_client_connect(path);
    if (c.lib == NULL || vfu_client_negotiate(c.lib, NULL) < 0) {
        die("connect to %s", path);
    }
    unlink(path);
    rmdir(dir);
    if (chunk > vfu_client_server_info(c.lib)->max_data_xfer_size) {
        errno = E2BIG;
        die("chunk of %zu bytes, the server takes %" PRIu64, chunk,
            vfu_client_server_info(c.lib)->max_data_xfer_size);
    }
    c.stream = alloc_touched(state_size + chunk);

    uname(&un);
    printf("vfu-bench-migration: device state through libvfio-user vs a raw "
           "AF_UNIX stream;\n%ld CPUs online%s, Linux %s; %zu MiB of state "
           "in chunks of %zu KiB; median of %d rounds%s\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), same_cpu ? " (all on one)" : "",
           un.release, state_size / MiB, chunk / 1024, rounds,
           quick ? " (quick)" : "");

    /* Warm-up: saves first, so that the stream holds the state. */
    for (int t = 0; t < NR_TESTS; t++) {
        for (int v = 0; v < NR_VARIANTS; v++) {
            measure(&c, t, v, &res[t][v][0]);
        }
    }
    for (int r = 0; r < rounds; r++) {
        for (int t = 0; t < NR_TESTS; t++) {
            for (int k = 0; k < NR_VARIANTS; k++) {
                int v = r % 2 ? NR_VARIANTS - 1 - k : k;
                if (!quick) {
                    measure(&c, t, v, &res[t][v][r]);   /* untimed pass */
                }
                measure(&c, t, v, &res[t][v][r]);
            }
            if (verbose) {
                printf("  round %d %-8s library %8.0f MB/s  raw %8.0f MB/s\n",
                       r, test_names[t], state_size * 1e3 / res[t][V_LIB][r].ns,
                       state_size * 1e3 / res[t][V_RAW][r].ns);
            }
        }
    }

    printf("  test      requests     library          raw   ratio (middle half)"
           "   raw shape (request / reply)\n");
    for (int t = 0; t < NR_TESTS; t++) {
        double bw[NR_VARIANTS][MAX_ROUNDS], q[MAX_ROUNDS], q1, q3, m;

        for (int r = 0; r < rounds; r++) {
            for (int v = 0; v < NR_VARIANTS; v++) {
                bw[v][r] = state_size * 1e3 / res[t][v][r].ns;
            }
            q[r] = bw[V_LIB][r] / bw[V_RAW][r];
        }
        m = median(q, rounds, &q1, &q3);
        printf("  %-8s %9.0f %7.0f MB/s %7.0f MB/s   %5.2fx  (%.2f-%.2f)"
               "    %s\n", test_names[t], res[t][V_LIB][0].reqs,
               median(bw[V_LIB], rounds, NULL, NULL),
               median(bw[V_RAW], rounds, NULL, NULL), m, q1, q3,
               t == T_SAVE ? "24 B / 24 B + chunk" : "24 B + chunk / 16 B");
    }

    printf("\n  sendmsg + recvmsg per request (timed runs, median of rounds):\n"
           "  test         client: library       raw    server: library"
           "       raw\n");
    for (int t = 0; t < NR_TESTS; t++) {
        const struct sample *l = res[t][V_LIB], *w = res[t][V_RAW];
        printf("  %-8s %19.2f + %-5.2f %4.2f + %-5.2f %11.2f + %-5.2f"
               "%4.2f + %.2f\n", test_names[t],
               MED(l, rounds, cli_send), MED(l, rounds, cli_recv),
               MED(w, rounds, cli_send), MED(w, rounds, cli_recv),
               MED(l, rounds, srv_send), MED(l, rounds, srv_recv),
               MED(w, rounds, srv_send), MED(w, rounds, srv_recv));
    }

    vfu_client_close(c.lib);
    close(c.raw_fd);
    for (int i = 0; i < 2; i++) {
        if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "vfu-bench-migration: a server failed\n");
            failed = 1;
        }
    }
    printf("\n(%.1f s)\n", (now_ns() - t_start) / 1e9);
    return failed;
}
