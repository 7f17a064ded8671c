/*
 * vfu-bench-doorbell: a 4-byte doorbell write three ways, against the raw
 * AF_UNIX round trip, in one run.
 *
 *   reply     REGION_WRITE, waiting for its reply (vfu_client_region_write)
 *   posted    REGION_WRITE with NO_REPLY, as QEMU sends MMIO writes
 *   ioeventfd the device's ioeventfd signalled (vfu_client_doorbell after
 *             vfu_client_ioeventfds_install): no message at all
 *   raw       a 36-byte request and a 36-byte reply on a socketpair, served
 *             by a minimal big-buffer server (the round trip a message costs
 *             without libvfio-user); for the stream, 36-byte messages
 *             without reply, then one round trip
 *
 * The device (a forked libvfio-user server, non-blocking, polling its
 * socket and the doorbell's eventfd as samples/doorbell does) counts rings
 * and raises MSI vector 0 when it has seen them: after every ring in the
 * latency test, once all N have come in the stream (NOTIFY_AT). The client
 * waits for that interrupt (a blocking read of its eventfd) in every method,
 * so each is timed from the write to the client knowing the device saw it.
 *
 * latency   one write, then the interrupt; us per write
 * stream    N writes back to back, then the interrupt for the last one;
 *           us per write and writes per second, and the device's wake-ups
 *           per write (its poll() returns: how many writes one took in)
 *
 * Each test runs several rounds; in a round every method runs once, in
 * turn (forward in even rounds, backward in odd ones), after a warm-up.
 * Reported: the median round, and the median and middle half of the
 * per-round ratios to the raw round trip of the same round. CPU time per
 * write (client and server, from CLOCK_PROCESS_CPUTIME_ID and
 * /proc/PID/schedstat) shows the work done whatever the scheduler did. A
 * benchmark reports; it fails only when it cannot run.
 *
 *   vfu-bench-doorbell [-q] [-r ROUNDS] [-n N] [-p same|split] [-v]
 *     -q  quick: shorter rounds, N / 10, 3 rounds (CI smoke test)
 *     -r  rounds (default 7)
 *     -n  writes in the stream (default 20000)
 *     -p  pin: all processes on one CPU, or the client on one and the
 *         servers on another (default: the scheduler decides)
 *     -v  print every round
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define HDR             sizeof(struct vfio_user_header)
#define ACC             sizeof(struct vfio_user_region_access)
#define RAW_MSG         (HDR + ACC + 4)     /* 36 bytes each way */
#define RAW_BUF         (1024 * 1024)
#define MAX_ROUNDS      31

/* The device's BAR0. */
#define REG_DOORBELL    0x00    /* u32 W: a ring (ioeventfd) */
#define REG_NOTIFY_AT   0x08    /* u64 RW: interrupt when RINGS reaches it; 0: every pass */
#define REG_RINGS       0x10    /* u64 R: rings seen */
#define REG_WAKEUPS     0x18    /* u64 R: times the device's poll() returned */
#define MSI_CAP         0x40

enum { M_REPLY, M_POSTED, M_IOEVENTFD, M_RAW, NR_METHODS };
static const char *const method_name[NR_METHODS] = {
    "REGION_WRITE with reply", "REGION_WRITE posted", "ioeventfd",
    "raw AF_UNIX round trip",
};

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
    va_list ap;
    int err = errno;

    fflush(stdout);
    fprintf(stderr, "vfu-bench-doorbell: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, err != 0 ? ": %s\n" : "\n", strerror(err));
    exit(1);
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU time of this process (@pid 0) or a child, in ns; -1 when unknown. */
static double
cpu_ns(pid_t pid)
{
    unsigned long long run = 0;
    char path[64];
    FILE *f;

    if (pid == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
    }
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

/* -p: where the processes run. */
static int pin_cpu[2] = { -1, -1 };     /* client, servers */

static void
pin_self(bool server)
{
    cpu_set_t set;
    int cpu = pin_cpu[server ? 1 : 0];

    if (cpu < 0) {
        return;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) {
        die("sched_setaffinity");
    }
}

/* ------------------------------------------------------------------ */
/* The device                                                          */
/* ------------------------------------------------------------------ */

struct dev {
    vfu_ctx_t *ctx;
    int doorbell;
    uint64_t notify_at, rings, wakeups;
};

/* @n rings seen: count them, and interrupt if this is what was asked. */
static void
rings_seen(struct dev *d, uint64_t n)
{
    d->rings += n;
    if (d->notify_at == 0 || d->rings >= d->notify_at) {
        d->notify_at = 0;
        if (vfu_irq_trigger(d->ctx, 0) < 0) {
            die("device: vfu_irq_trigger");
        }
    }
}

static ssize_t
bar0(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);
    uint64_t regs[4] = { 0, d->notify_at, d->rings, d->wakeups };

    if (!is_write) {
        memcpy(buf, (uint8_t *)regs + off, count);
    } else if (off == REG_DOORBELL) {
        rings_seen(d, 1);
    } else if (off == REG_NOTIFY_AT && count == 8) {
        memcpy(&d->notify_at, buf, 8);
    }
    return (ssize_t)count;
}

/* Serves one client as samples/doorbell does; the process exit status. */
static int
serve_lib(const char *path, int ready_fd)
{
    struct msicap msi = { .hdr.id = PCI_CAP_ID_MSI };
    struct dev d = { .doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
    vfu_ctx_t *ctx;
    int n;

    ctx = d.ctx = vfu_create_ctx(VFU_TRANS_SOCK, path,
                                 LIBVFIO_USER_FLAG_ATTACH_NB, &d,
                                 VFU_DEV_TYPE_PCI);
    if (ctx == NULL || d.doorbell < 0 ||
        vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL,
                     0) < 0 ||
        vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, 4096, bar0,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM, NULL, 0,
                         -1, 0) < 0 ||
        vfu_pci_add_capability(ctx, MSI_CAP, 0, &msi) < 0 ||
        vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSI_IRQ, 1) < 0 ||
        vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, d.doorbell,
                             REG_DOORBELL, 4, 0, 0, -1, 0) < 0 ||
        vfu_realize_ctx(ctx) < 0) {
        die("device set-up");
    }
    (void)!write(ready_fd, "r", 1);
    close(ready_fd);
    while (vfu_attach_ctx(ctx) < 0) {
        struct pollfd p = { .fd = vfu_get_poll_fd(ctx), .events = POLLIN };
        if (errno != EAGAIN) {
            die("device: vfu_attach_ctx");
        }
        (void)poll(&p, 1, -1);
    }
    for (;;) {
        struct pollfd p[2] = {
            { .fd = vfu_get_poll_fd(ctx), .events = POLLIN },
            { .fd = d.doorbell, .events = POLLIN },
        };
        eventfd_t rings = 0;

        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            die("device: poll");
        }
        d.wakeups++;
        /* The signals, then the socket, then act (docs/ioeventfd.md). */
        (void)eventfd_read(d.doorbell, &rings);
        while ((n = vfu_run_ctx(ctx)) > 0) {
            ;
        }
        if (n < 0) {
            break;
        }
        if (rings > 0) {
            rings_seen(&d, rings);
        }
    }
    n = errno == ENOTCONN ? 0 : 1;
    vfu_destroy_ctx(ctx);
    close(d.doorbell);
    return n;
}

/* ------------------------------------------------------------------ */
/* The raw server                                                      */
/* ------------------------------------------------------------------ */

/* The raw server's doorbell register: written, as the device's is. */
static volatile uint32_t raw_register;

/*
 * Takes whole messages out of one big buffer, refilled with one recvmsg()
 * when none is left whole; answers those without NO_REPLY with the same
 * 36 bytes, stores the 4 data bytes of every one.
 */
static int
serve_raw(int fd)
{
    uint8_t *buf = malloc(RAW_BUF);
    size_t start = 0, end = 0;

    if (buf == NULL) {
        return 1;
    }
    for (;;) {
        struct vfio_user_header h;
        ssize_t n;

        if (end - start >= HDR) {
            memcpy(&h, buf + start, HDR);
            if (h.msg_size != RAW_MSG) {
                return 1;
            }
            if (end - start >= RAW_MSG) {
                uint32_t v;
                memcpy(&v, buf + start + HDR + ACC, 4);
                raw_register = v;
                if (!(h.flags & VFIO_USER_F_NO_REPLY)) {
                    h.flags = VFIO_USER_F_TYPE_REPLY;
                    memcpy(buf + start, &h, HDR);
                    if (send(fd, buf + start, RAW_MSG, MSG_NOSIGNAL) != RAW_MSG) {
                        return 1;
                    }
                }
                start += RAW_MSG;
                continue;
            }
        }
        memmove(buf, buf + start, end - start);
        end -= start;
        start = 0;
        struct iovec iov = { buf + end, RAW_BUF - end };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        n = recvmsg(fd, &mh, 0);
        if (n <= 0) {
            free(buf);
            return n == 0 ? 0 : 1;
        }
        end += (size_t)n;
    }
}

/* ------------------------------------------------------------------ */
/* The client side                                                     */
/* ------------------------------------------------------------------ */

struct bench {
    vfu_client_t *c;
    int irq;
    int raw_fd;
    uint8_t raw_rx[RAW_BUF];
    uint16_t raw_id;
    uint64_t rings;             /* doorbells the device has been sent */
};

static void
wait_irq(struct bench *b)
{
    uint64_t v;

    while (read(b->irq, &v, sizeof(v)) != sizeof(v)) {
        if (errno != EINTR) {
            die("interrupt eventfd");
        }
    }
}

static void
doorbell(struct bench *b, int m)
{
    uint32_t v = (uint32_t)b->rings;
    int ret;

    switch (m) {
    case M_REPLY:
    case M_POSTED:
        ret = vfu_client_region_write(b->c, 0, REG_DOORBELL, &v, 4,
                                      m == M_POSTED);
        break;
    default:
        ret = vfu_client_doorbell(b->c, 0, REG_DOORBELL, &v, 4, true);
        if (ret == 0) {
            errno = 0;
            die("the doorbell went as a message, not through the ioeventfd");
        }
        break;
    }
    if (ret < 0) {
        die("%s", method_name[m]);
    }
    b->rings++;
}

static void
raw_send(struct bench *b, bool no_reply)
{
    uint8_t msg[RAW_MSG] = { 0 };
    struct vfio_user_header h = {
        .msg_id = b->raw_id++, .cmd = VFIO_USER_REGION_WRITE,
        .msg_size = RAW_MSG, .flags = no_reply ? VFIO_USER_F_NO_REPLY : 0,
    };

    memcpy(msg, &h, HDR);
    if (send(b->raw_fd, msg, RAW_MSG, MSG_NOSIGNAL) != RAW_MSG) {
        die("raw send");
    }
}

static void
raw_round_trip(struct bench *b)
{
    size_t got = 0;

    raw_send(b, false);
    while (got < RAW_MSG) {
        ssize_t n = recv(b->raw_fd, b->raw_rx + got, sizeof(b->raw_rx) - got, 0);
        if (n <= 0) {
            die("raw receive");
        }
        got += (size_t)n;
    }
}

static void
set_notify_at(struct bench *b, uint64_t at)
{
    if (vfu_client_region_write(b->c, 0, REG_NOTIFY_AT, &at, 8, false) < 0) {
        die("NOTIFY_AT");
    }
}

static uint64_t
device_wakeups(struct bench *b)
{
    uint64_t v;

    if (vfu_client_region_read(b->c, 0, REG_WAKEUPS, &v, 8) < 0) {
        die("WAKEUPS");
    }
    return v;
}

/* One write and the device's interrupt for it (raw: a round trip). */
static void
one_latency(struct bench *b, int m)
{
    if (m == M_RAW) {
        raw_round_trip(b);
    } else {
        doorbell(b, m);
        wait_irq(b);
    }
}

/* @n writes back to back, and the interrupt once the device saw them. */
static void
one_stream(struct bench *b, int m, size_t n)
{
    if (m == M_RAW) {
        for (size_t i = 0; i < n; i++) {
            raw_send(b, true);
        }
        raw_round_trip(b);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        doorbell(b, m);
    }
    wait_irq(b);
}

/* What one method did in one round. */
struct sample {
    double ns;                  /* per write */
    double cli_cpu, srv_cpu;    /* per write */
    double wakeups;             /* device poll() returns per write */
};

static pid_t lib_pid, raw_pid;
static double warm_ms = 50, round_ms = 100;

static void
measure(struct bench *b, int m, bool stream, size_t n, struct sample *s)
{
    pid_t spid = m == M_RAW ? raw_pid : lib_pid;
    double t0, t1, c0, c1, s0, s1, until;
    uint64_t p0 = 0, ops = 0;

    if (m != M_RAW) {
        set_notify_at(b, 0);
    }
    until = now_ns() + warm_ms * 1e6;
    do {
        if (stream) {
            if (m != M_RAW) {
                set_notify_at(b, b->rings + n / 10);
            }
            one_stream(b, m, n / 10);
        } else {
            for (int i = 0; i < 20; i++) {
                one_latency(b, m);
            }
        }
    } while (now_ns() < until);

    if (stream && m != M_RAW) {
        p0 = device_wakeups(b);
        set_notify_at(b, b->rings + n);
    }
    s0 = cpu_ns(spid);
    c0 = cpu_ns(0);
    t0 = now_ns();
    if (stream) {
        one_stream(b, m, n);
        ops = n;
        t1 = now_ns();
    } else {
        until = t0 + round_ms * 1e6;
        do {
            for (int i = 0; i < 20; i++) {
                one_latency(b, m);
            }
            ops += 20;
            t1 = now_ns();
        } while (t1 < until);
    }
    c1 = cpu_ns(0);
    s1 = cpu_ns(spid);
    s->ns = (t1 - t0) / (double)ops;
    s->cli_cpu = (c1 - c0) / (double)ops;
    s->srv_cpu = s0 >= 0 && s1 >= 0 ? (s1 - s0) / (double)ops : -1;
    /* The read of WAKEUPS itself woke the device once more. */
    s->wakeups = stream && m != M_RAW ?
                 (double)(device_wakeups(b) - p0 - 1) / (double)ops : 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median, and the middle half's bounds, of @n values. */
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

static struct sample res[2][NR_METHODS][MAX_ROUNDS];    /* [stream][m][r] */

/* Medians of a field over the rounds, and of its ratio to @base's. */
static void
report_row(int t, int m, int base, int rounds, double *val, double *ratio,
           double *q1, double *q3)
{
    double v[MAX_ROUNDS], r[MAX_ROUNDS];

    for (int i = 0; i < rounds; i++) {
        v[i] = res[t][m][i].ns;
        r[i] = res[t][m][i].ns / res[t][base][i].ns;
    }
    *val = median(v, rounds, NULL, NULL);
    *ratio = median(r, rounds, q1, q3);
}

static double
median_of(int t, int m, int rounds, int field)
{
    double v[MAX_ROUNDS];
    int n = 0;

    for (int i = 0; i < rounds; i++) {
        const struct sample *s = &res[t][m][i];
        double x = field == 0 ? s->cli_cpu : field == 1 ? s->srv_cpu :
                   s->wakeups;
        if (x >= 0) {
            v[n++] = x;
        }
    }
    return n > 0 ? median(v, n, NULL, NULL) : -1;
}

static void
print_cpu(int t, int m, int rounds)
{
    double cli = median_of(t, m, rounds, 0), srv = median_of(t, m, rounds, 1);

    if (srv < 0) {
        printf("   %6.2f + ?", cli / 1e3);
    } else {
        printf("   %6.2f (%5.2f + %5.2f)", (cli + srv) / 1e3, cli / 1e3,
               srv / 1e3);
    }
}

static void
usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [-q] [-r ROUNDS] [-n N] [-p same|split] [-v]\n",
            argv0);
}

/* Connects the library client: MSI on, its eventfd set, ioeventfds in. */
static void
lib_client(struct bench *b, const char *sock)
{
    uint16_t flags = 0;

    for (int i = 0; i < 5000 && b->c == NULL; i++) {
        b->c = vfu_client_connect(sock);
        if (b->c == NULL) {
            usleep(1000);
        }
    }
    if (b->c == NULL || vfu_client_negotiate(b->c, NULL) < 0) {
        die("connect to the device");
    }
    b->irq = eventfd(0, EFD_CLOEXEC);
    if (vfu_client_region_read(b->c, VFU_PCI_DEV_CFG_REGION_IDX, MSI_CAP + 2,
                               &flags, 2) < 0) {
        die("MSI flags");
    }
    flags |= PCI_MSI_FLAGS_ENABLE;
    if (vfu_client_region_write(b->c, VFU_PCI_DEV_CFG_REGION_IDX, MSI_CAP + 2,
                                &flags, 2, false) < 0 ||
        vfu_client_set_irqs(b->c, VFIO_PCI_MSI_IRQ_INDEX,
                            VFIO_IRQ_SET_DATA_EVENTFD |
                            VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &b->irq,
                            NULL) < 0) {
        die("MSI set-up");
    }
    if (vfu_client_ioeventfds_install(b->c, 0) != 1) {
        die("ioeventfds");
    }
}

int
main(int argc, char *argv[])
{
    static struct bench b;
    char dir[] = "/tmp/vfu-bench-db.XXXXXX", sock[64];
    int rounds = 7, opt, sv[2], ready[2], st1, st2;
    size_t n = 20000;
    bool quick = false, verbose = false;
    const char *pin = NULL;
    struct utsname un;
    double t_start = now_ns();

    while ((opt = getopt(argc, argv, "qr:n:p:vh")) != -1) {
        switch (opt) {
        case 'q': quick = true; break;
        case 'r': rounds = atoi(optarg); break;
        case 'n': n = strtoul(optarg, NULL, 0); break;
        case 'p': pin = optarg; break;
        case 'v': verbose = true; break;
        default:
            usage(argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (quick) {
        rounds = 3;
        n /= 10;
        warm_ms /= 5;
        round_ms /= 5;
    }
    if (optind != argc || rounds < 1 || rounds > MAX_ROUNDS || n < 10 ||
        (pin != NULL && strcmp(pin, "same") != 0 && strcmp(pin, "split") != 0)) {
        usage(argv[0]);
        return 2;
    }
    if (pin != NULL) {
        cpu_set_t set;
        int k = 0;
        if (sched_getaffinity(0, sizeof(set), &set) < 0) {
            die("sched_getaffinity");
        }
        for (int cpu = 0; cpu < CPU_SETSIZE && k < 2; cpu++) {
            if (CPU_ISSET(cpu, &set)) {
                pin_cpu[k++] = cpu;
            }
        }
        if (strcmp(pin, "same") == 0 || k < 2) {
            pin_cpu[1] = pin_cpu[0];
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mkdtemp(dir) == NULL) {
        die("mkdtemp");
    }
    snprintf(sock, sizeof(sock), "%s/s", dir);

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
        pipe(ready) < 0) {
        die("socketpair");
    }
    raw_pid = fork();
    if (raw_pid == 0) {
        pin_self(true);
        close(sv[0]);
        _exit(serve_raw(sv[1]));
    }
    close(sv[1]);
    b.raw_fd = sv[0];
    lib_pid = fork();
    if (lib_pid == 0) {
        pin_self(true);
        close(sv[0]);
        close(ready[0]);
        _exit(serve_lib(sock, ready[1]));
    }
    if (raw_pid < 0 || lib_pid < 0) {
        die("fork");
    }
    close(ready[1]);
    pin_self(false);
    {
        char c;
        if (read(ready[0], &c, 1) != 1) {
            errno = 0;
            die("the device did not start");
        }
        close(ready[0]);
    }
    lib_client(&b, sock);

    uname(&un);
    printf("vfu-bench-doorbell: a 4-byte doorbell three ways against raw "
           "AF_UNIX; %ld CPUs online,\nLinux %s; %d rounds, %.0f ms of "
           "latency per method after %.0f ms of warm-up, streams of\n%zu "
           "writes%s; %s.\n", sysconf(_SC_NPROCESSORS_ONLN), un.release,
           rounds, round_ms, warm_ms, n, quick ? " (quick)" : "",
           pin == NULL ? "nothing pinned" :
           strcmp(pin, "same") == 0 ? "all on one CPU" :
           "client on one CPU, servers on another");

    for (int r = 0; r < rounds; r++) {
        for (int t = 0; t < 2; t++) {
            for (int i = 0; i < NR_METHODS; i++) {
                int m = r % 2 ? NR_METHODS - 1 - i : i;
                measure(&b, m, t == 1, n, &res[t][m][r]);
            }
        }
        if (verbose) {
            printf("  round %d: latency", r);
            for (int m = 0; m < NR_METHODS; m++) {
                printf(" %.2f", res[0][m][r].ns / 1e3);
            }
            printf(" us; stream");
            for (int m = 0; m < NR_METHODS; m++) {
                printf(" %.2f", res[1][m][r].ns / 1e3);
            }
            printf(" us/write\n");
        }
    }

    printf("\nLatency: one write, then the device's interrupt for it (raw: "
           "a 36 B / 36 B\nround trip). us per write, the median round; "
           "ratio to the raw round trip of\nthe same round, median and "
           "middle half; CPU us per write, client + server.\n\n");
    printf("  %-26s %9s   %-22s %s\n", "method", "us/write",
           "x raw round trip", "CPU us/write (cli + srv)");
    for (int m = 0; m < NR_METHODS; m++) {
        double v, ra, q1, q3;
        report_row(0, m, M_RAW, rounds, &v, &ra, &q1, &q3);
        printf("  %-26s %9.2f   %5.2fx (%4.2f-%4.2f)  ", method_name[m],
               v / 1e3, ra, q1, q3);
        print_cpu(0, m, rounds);
        printf("\n");
    }

    printf("\nStream: %zu writes back to back, then the interrupt once the "
           "device has seen\nthem all (raw: %zu 36-byte messages without "
           "reply, then a round trip). us and\nwrites/s per write, the median "
           "round; ratios to the raw round trip (latency\ntest) and to the raw "
           "stream of the same round; device wake-ups per write.\n\n", n, n);
    printf("  %-26s %9s %10s   %-22s %-20s %8s\n", "method", "us/write",
           "writes/s", "x raw round trip", "x raw stream", "wake-ups");
    for (int m = 0; m < NR_METHODS; m++) {
        double v, rt[MAX_ROUNDS], a, a1, a3, s, s1, s3;
        const char *name = m == M_RAW ? "raw posted stream" : method_name[m];

        for (int i = 0; i < rounds; i++) {
            rt[i] = res[1][m][i].ns / res[0][M_RAW][i].ns;
        }
        report_row(1, m, M_RAW, rounds, &v, &s, &s1, &s3);
        a = median(rt, rounds, &a1, &a3);
        printf("  %-26s %9.3f %10.0f   %6.3fx (%5.3f-%5.3f) %6.2fx (%5.2f-%5.2f)",
               name, v / 1e3, 1e9 / v, a, a1, a3, s, s1, s3);
        if (m != M_RAW) {
            printf(" %8.4f", median_of(1, m, rounds, 2));
        }
        printf("\n");
    }
    printf("\n  CPU us per write in the stream, client + server:\n");
    for (int m = 0; m < NR_METHODS; m++) {
        printf("  %-26s", m == M_RAW ? "raw posted stream" : method_name[m]);
        print_cpu(1, m, rounds);
        printf("\n");
    }

    vfu_client_close(b.c);
    close(b.raw_fd);
    close(b.irq);
    if (waitpid(lib_pid, &st1, 0) != lib_pid || !WIFEXITED(st1) ||
        WEXITSTATUS(st1) != 0 || waitpid(raw_pid, &st2, 0) != raw_pid ||
        !WIFEXITED(st2) || WEXITSTATUS(st2) != 0) {
        errno = 0;
        die("a server failed");
    }
    rmdir(dir);
    printf("\nTotal run time %.1f s.\n", (now_ns() - t_start) / 1e9);
    return 0;
}
