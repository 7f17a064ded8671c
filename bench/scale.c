/*
 * vfu-bench-scale: N devices in one process, served by one epoll loop over
 * vfu_get_poll_fd(), with N client connections driving 4-byte reads; and
 * in the same run the raw AF_UNIX round trip with N connections served by
 * the same kind of loop.
 *
 * This process is the server: it creates N non-blocking contexts (one BAR
 * of 4 KiB each), forks a client process that connects and negotiates N
 * clients (libvfio-user-client), and serves them all from one epoll loop.
 * The client keeps one REGION_READ of 4 bytes in flight on every
 * connection (a reply is answered with the next read on that connection)
 * for the test's time. The raw variant does the same with N socketpairs:
 * a 32-byte request, a 36-byte reply, the shapes of REGION_READ.
 *
 * Reported per N: the time to create and attach all N (from the first
 * vfu_create_ctx() until every client has negotiated), aggregate requests
 * per second and p50/p99 latency (send to reply, in the client) for the
 * library and raw, their ratio, and the server's RSS and fds per context
 * (once all are attached and have served traffic, against before the
 * first was created). A benchmark reports; it fails only when it cannot
 * run.
 *
 *   vfu-bench-scale [-q] [-t MS] [-n N,N,...]
 *     -q  quick: 300 ms per test, N up to 100 (CI smoke test)
 *     -t  milliseconds per test (default 2000)
 *     -n  device counts (default 1,10,100,1000)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define BAR_SZ      4096
#define MAX_N       100000
#define MAX_SAMPLES (1u << 21)

static uint8_t bar[BAR_SZ];

static void
die(const char *what)
{
    fprintf(stderr, "vfu-bench-scale: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static ssize_t
bar_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    (void)ctx;
    if (is_write) {
        memcpy(bar + off, buf, count);
    } else {
        memcpy(buf, bar + off, count);
    }
    return (ssize_t)count;
}

static size_t
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, rss = 0;

    if (f == NULL || fscanf(f, "%lu %lu", &size, &rss) != 2) {
        die("statm");
    }
    fclose(f);
    return rss * (size_t)sysconf(_SC_PAGESIZE);
}

static int
count_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 65536; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) {
            n++;
        }
    }
    return n;
}

/* What the client process reports at the end of a test. */
struct result {
    double secs;
    uint64_t requests;
    double p50_us, p99_us;
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* The client process                                                 */
/* ------------------------------------------------------------------ */

struct conn {
    vfu_client_t *c;                /* NULL: raw */
    int fd;
    double sent;
};

static void
send_req(struct conn *k)
{
    struct vfio_user_region_access ra = {
        .offset = 0, .region = VFU_PCI_DEV_BAR0_REGION_IDX, .count = 4,
    };

    k->sent = now_us();
    if (k->c != NULL) {
        uint16_t id;
        if (vfu_client_send(k->c, VFIO_USER_REGION_READ, 0, &ra, sizeof(ra),
                            NULL, 0, &id) < 0) {
            die("send");
        }
    } else {
        uint8_t msg[32] = { 0 };
        struct vfio_user_header hdr = {
            .cmd = VFIO_USER_REGION_READ, .msg_size = sizeof(msg),
        };
        memcpy(msg, &hdr, sizeof(hdr));
        memcpy(msg + sizeof(hdr), &ra, sizeof(ra));
        if (send(k->fd, msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) {
            die("raw send");
        }
    }
}

static void
recv_reply(struct conn *k)
{
    if (k->c != NULL) {
        struct vfio_user_header hdr;
        uint8_t payload[64];
        if (vfu_client_recv(k->c, &hdr, payload, sizeof(payload), NULL,
                            NULL) < 0 || (hdr.flags & VFIO_USER_F_ERROR)) {
            die("reply");
        }
    } else {
        uint8_t msg[36];
        if (recv(k->fd, msg, sizeof(msg), MSG_WAITALL) != sizeof(msg)) {
            die("raw reply");
        }
    }
}

/* Keeps one request in flight per connection for @ms; fills @res. */
static void
drive(struct conn *k, size_t n, int ms, struct result *res, double *lat)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t nr_lat = 0;
    double start, end;
    size_t inflight = 0;

    if (ep < 0) {
        die("epoll");
    }
    for (size_t i = 0; i < n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, k[i].fd, &ev) < 0) {
            die("epoll_ctl");
        }
    }
    start = now_us();
    end = start + ms * 1000.0;
    for (size_t i = 0; i < n; i++) {
        send_req(&k[i]);
        inflight++;
    }
    res->requests = 0;
    while (inflight > 0) {
        struct epoll_event ev[256];
        int got = epoll_wait(ep, ev, 256, 10000);
        double t;

        if (got <= 0) {
            die("no reply in 10 s");
        }
        t = now_us();
        for (int e = 0; e < got; e++) {
            struct conn *c = &k[ev[e].data.u64];
            recv_reply(c);
            inflight--;
            if (nr_lat < MAX_SAMPLES) {
                lat[nr_lat++] = t - c->sent;
            }
            res->requests++;
            if (t < end) {
                send_req(c);
                inflight++;
            }
        }
    }
    res->secs = (now_us() - start) / 1e6;
    qsort(lat, nr_lat, sizeof(*lat), cmp_double);
    res->p50_us = nr_lat ? lat[nr_lat / 2] : 0;
    res->p99_us = nr_lat ? lat[nr_lat * 99 / 100] : 0;
    close(ep);
}

/* ------------------------------------------------------------------ */
/* The server                                                         */
/* ------------------------------------------------------------------ */

struct row {
    size_t n;
    double attach_ms;
    struct result lib, raw;
    double rss_per_ctx;
    double fds_per_ctx;
};

static void
write_full(int fd, const void *buf, size_t len)
{
    if (write(fd, buf, len) != (ssize_t)len) {
        die("pipe write");
    }
}

static void
read_full(int fd, void *buf, size_t len)
{
    if (read(fd, buf, len) != (ssize_t)len) {
        die("pipe read");
    }
}

static void
path_of(const char *dir, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%zu.sock", dir, i);
}

static void
lib_client(const char *dir, size_t n, int ms, int up, int down)
{
    struct conn *k = calloc(n, sizeof(*k));
    double *lat = malloc(MAX_SAMPLES * sizeof(*lat));
    struct result res;
    char path[128];
    char c;

    if (k == NULL || lat == NULL) {
        die("malloc");
    }
    for (size_t i = 0; i < n; i++) {
        path_of(dir, i, path, sizeof(path));
        k[i].c = vfu_client_connect(path);
        if (k[i].c == NULL || vfu_client_negotiate(k[i].c, NULL) < 0) {
            die("connect");
        }
        k[i].fd = vfu_client_fd(k[i].c);
    }
    write_full(up, "a", 1);
    read_full(down, &c, 1);
    drive(k, n, ms, &res, lat);
    write_full(up, &res, sizeof(res));
    read_full(down, &c, 1);
    for (size_t i = 0; i < n; i++) {
        vfu_client_close(k[i].c);
    }
    exit(0);
}

/* One context's turn in the loop: attach or serve; re-registers its fd. */
static void
serve_one(int ep, vfu_ctx_t *ctx, int *fd, bool *attached, size_t i)
{
    int nfd;

    if (!*attached) {
        if (vfu_attach_ctx(ctx) == 0) {
            *attached = true;
        } else if (errno != EAGAIN) {
            die("attach");
        }
    } else if (vfu_run_ctx(ctx) < 0 && errno != EAGAIN) {
        *attached = false;      /* the client left */
    }
    nfd = vfu_get_poll_fd(ctx);
    if (nfd != *fd) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        epoll_ctl(ep, EPOLL_CTL_DEL, *fd, NULL);
        *fd = nfd;
        if (nfd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, nfd, &ev) < 0) {
            die("epoll_ctl");
        }
    }
}

/*
 * Serves until the client process writes something on @pipe_fd (which is
 * in the epoll set as UINT64_MAX).
 */
static void
serve_until_pipe(int ep, vfu_ctx_t **ctx, int *fds, bool *att)
{
    for (;;) {
        struct epoll_event ev[256];
        int got = epoll_wait(ep, ev, 256, 30000);

        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            die("server loop idle for 30 s");
        }
        for (int e = 0; e < got; e++) {
            uint64_t i = ev[e].data.u64;
            if (i == UINT64_MAX) {
                return;
            }
            serve_one(ep, ctx[i], &fds[i], &att[i], i);
        }
    }
}

static void
run_lib(struct row *r, int ms)
{
    size_t n = r->n;
    vfu_ctx_t **ctx = calloc(n, sizeof(*ctx));
    int *fds = calloc(n, sizeof(*fds));
    bool *att = calloc(n, sizeof(*att));
    char dir[] = "/tmp/vfu-bench-scale-XXXXXX";
    int up[2], down[2];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t rss0, rss1;
    int fds0, fds1;
    double t0;
    pid_t pid;
    char c;

    if (ctx == NULL || fds == NULL || att == NULL || ep < 0 ||
        mkdtemp(dir) == NULL || pipe2(up, O_CLOEXEC) < 0 ||
        pipe2(down, O_CLOEXEC) < 0) {
        die("setup");
    }
    struct epoll_event pev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
    epoll_ctl(ep, EPOLL_CTL_ADD, up[0], &pev);
    fds0 = count_fds();
    rss0 = rss_bytes();

    t0 = now_us();
    for (size_t i = 0; i < n; i++) {
        char path[128];
        path_of(dir, i, path, sizeof(path));
        ctx[i] = vfu_create_ctx(VFU_TRANS_SOCK, path,
                                LIBVFIO_USER_FLAG_ATTACH_NB, NULL,
                                VFU_DEV_TYPE_PCI);
        if (ctx[i] == NULL ||
            vfu_pci_init(ctx[i], VFU_PCI_TYPE_CONVENTIONAL,
                         PCI_HEADER_TYPE_NORMAL, 0) < 0 ||
            vfu_setup_region(ctx[i], VFU_PCI_DEV_BAR0_REGION_IDX, BAR_SZ,
                             bar_access, VFU_REGION_FLAG_RW |
                             VFU_REGION_FLAG_MEM, NULL, 0, -1, 0) < 0 ||
            vfu_realize_ctx(ctx[i]) < 0) {
            die("context");
        }
        fds[i] = vfu_get_poll_fd(ctx[i]);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            die("epoll_ctl");
        }
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        lib_client(dir, n, ms, up[1], down[0]);
    }
    serve_until_pipe(ep, ctx, fds, att);    /* all negotiated */
    read_full(up[0], &c, 1);
    r->attach_ms = (now_us() - t0) / 1000.0;
    write_full(down[1], "g", 1);
    serve_until_pipe(ep, ctx, fds, att);    /* the load is over */
    read_full(up[0], &r->lib, sizeof(r->lib));
    rss1 = rss_bytes();
    fds1 = count_fds();
    r->rss_per_ctx = ((double)rss1 - (double)rss0) / (double)n;
    r->fds_per_ctx = (double)(fds1 - fds0) / (double)n;
    write_full(down[1], "q", 1);
    waitpid(pid, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        vfu_destroy_ctx(ctx[i]);
    }
    rmdir(dir);
    close(ep);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    free(ctx);
    free(fds);
    free(att);
}

/* The raw baseline: N socketpairs, one epoll loop, 32 B in, 36 B out. */
static void
run_raw(struct row *r, int ms)
{
    size_t n = r->n;
    int (*sv)[2] = calloc(n, sizeof(*sv));
    int up[2], down[2];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    pid_t pid;
    char c;

    if (sv == NULL || ep < 0 || pipe2(up, O_CLOEXEC) < 0 ||
        pipe2(down, O_CLOEXEC) < 0) {
        die("setup");
    }
    for (size_t i = 0; i < n; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]) < 0) {
            die("socketpair");
        }
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        struct conn *k = calloc(n, sizeof(*k));
        double *lat = malloc(MAX_SAMPLES * sizeof(*lat));
        struct result res;

        if (k == NULL || lat == NULL) {
            die("malloc");
        }
        for (size_t i = 0; i < n; i++) {
            close(sv[i][0]);
            k[i].fd = sv[i][1];
        }
        read_full(down[0], &c, 1);
        drive(k, n, ms, &res, lat);
        write_full(up[1], &res, sizeof(res));
        exit(0);
    }
    struct epoll_event pev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
    epoll_ctl(ep, EPOLL_CTL_ADD, up[0], &pev);
    for (size_t i = 0; i < n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        close(sv[i][1]);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sv[i][0], &ev) < 0) {
            die("epoll_ctl");
        }
    }
    write_full(down[1], "g", 1);
    for (bool done = false; !done;) {
        struct epoll_event ev[256];
        int got = epoll_wait(ep, ev, 256, 30000);

        if (got <= 0) {
            die("raw loop");
        }
        for (int e = 0; e < got; e++) {
            uint64_t i = ev[e].data.u64;
            uint8_t buf[4096];
            ssize_t len;

            if (i == UINT64_MAX) {
                done = true;
                continue;
            }
            /* Whole 32-byte requests; answer each with 36 bytes. */
            len = recv(sv[i][0], buf, sizeof(buf), MSG_DONTWAIT);
            for (ssize_t off = 0; off + 32 <= len; off += 32) {
                uint8_t out[36];
                struct vfio_user_header hdr;
                memcpy(&hdr, buf + off, sizeof(hdr));
                hdr.flags = VFIO_USER_F_TYPE_REPLY;
                hdr.msg_size = sizeof(out);
                memcpy(out, &hdr, sizeof(hdr));
                memcpy(out + sizeof(hdr), buf + off + sizeof(hdr), 16);
                memcpy(out + 32, bar, 4);
                if (send(sv[i][0], out, sizeof(out), MSG_NOSIGNAL) < 0) {
                    die("raw reply");
                }
            }
        }
    }
    read_full(up[0], &r->raw, sizeof(r->raw));
    waitpid(pid, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        close(sv[i][0]);
    }
    close(ep);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
    free(sv);
}

/* Raises the soft fd limit to @want (the hard one too, if allowed). */
static void
raise_nofile(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        die("getrlimit");
    }
    if (rl.rlim_cur >= want) {
        return;
    }
    if (rl.rlim_max < want) {
        rl.rlim_max = want;         /* needs CAP_SYS_RESOURCE */
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        fprintf(stderr, "vfu-bench-scale: RLIMIT_NOFILE %llu, %llu needed: "
                "raise it (ulimit -n)\n", (unsigned long long)rl.rlim_max,
                (unsigned long long)want);
        exit(1);
    }
}

int
main(int argc, char *argv[])
{
    size_t ns[16] = { 1, 10, 100, 1000 };
    size_t nr_ns = 4;
    size_t max_n = 0;
    int ms = 2000;
    int opt;

    while ((opt = getopt(argc, argv, "qt:n:")) != -1) {
        switch (opt) {
        case 'q':
            ms = 300;
            nr_ns = 3;
            break;
        case 't':
            ms = atoi(optarg);
            break;
        case 'n': {
            char *s = optarg;
            nr_ns = 0;
            while (*s != '\0' && nr_ns < 16) {
                ns[nr_ns] = strtoul(s, &s, 10);
                if (ns[nr_ns] == 0 || ns[nr_ns] > MAX_N) {
                    fprintf(stderr, "vfu-bench-scale: bad -n\n");
                    return 2;
                }
                nr_ns++;
                if (*s == ',') {
                    s++;
                }
            }
            break;
        }
        default:
            fprintf(stderr, "usage: vfu-bench-scale [-q] [-t MS] "
                    "[-n N,N,...]\n");
            return 2;
        }
    }
    for (size_t j = 0; j < nr_ns; j++) {
        max_n = ns[j] > max_n ? ns[j] : max_n;
    }
    /* Listening socket and connection here, a socket there, and slack. */
    raise_nofile((rlim_t)(2 * max_n + 256));

    printf("vfu-bench-scale: N devices in one process, one epoll loop over "
           "vfu_get_poll_fd();\nN connections each keeping one 4-byte "
           "REGION_READ in flight, %d ms per test;\nraw: the same over N "
           "AF_UNIX socketpairs (32 B request, 36 B reply).\n\n", ms);
    printf("  %5s %10s %11s %11s %6s %17s %17s %10s %8s\n", "N",
           "attach ms", "lib req/s", "raw req/s", "ratio",
           "lib p50/p99 us", "raw p50/p99 us", "RSS/ctx", "fds/ctx");
    for (size_t j = 0; j < nr_ns; j++) {
        struct row r = { .n = ns[j] };

        run_lib(&r, ms);
        run_raw(&r, ms);
        double lib = (double)r.lib.requests / r.lib.secs;
        double raw = (double)r.raw.requests / r.raw.secs;
        printf("  %5zu %10.1f %11.0f %11.0f %5.2fx %8.1f/%-8.1f %8.1f/%-8.1f "
               "%8.0f B %8.2f\n", r.n, r.attach_ms, lib, raw, lib / raw,
               r.lib.p50_us, r.lib.p99_us, r.raw.p50_us, r.raw.p99_us,
               r.rss_per_ctx, r.fds_per_ctx);
        fflush(stdout);
    }
    return 0;
}
