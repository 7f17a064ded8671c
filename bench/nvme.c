/*
 * vfu-bench-nvme: 4 KiB random reads and writes through samples/nvme
 * (vfu-nvme, run as a process on a backing file) with libvfio-user-client
 * as the host (samples/nvme/host.c), at queue depth 1 and 32, beside what
 * the same run measures without the device:
 *
 *   raw RTT      a 36-byte request and a 36-byte reply on an AF_UNIX
 *                socketpair, served by a forked process (what one message
 *                round trip costs)
 *   raw 4K RTT   the same with a 4 KiB + 36-byte reply
 *   pread/pwrite 4 KiB at random offsets of the same backing file, straight
 *                from this process (the page cache: what the device's file
 *                I/O costs with nothing around it)
 *
 * The device runs three ways: guest memory shared with an fd (the device
 * reads and writes it in place) with doorbells as posted REGION_WRITEs, as
 * QEMU sends them; the same with doorbells through the device's shadow
 * ioeventfds (no message at all); and guest memory without an fd, every
 * transfer a DMA_READ / DMA_WRITE message. The host submits QD commands,
 * then reaps whatever has completed (interrupt-driven), rings the CQ head
 * once and refills, as a driver does. Reported per test: IOPS, mean and
 * 99th percentile latency (submission to reaping), the ratios of QD1
 * latency to the raw round trip and of IOPS to pread/pwrite, and the
 * messages per I/O (client to device, and DMA requests of the device).
 * Each figure is the median of the rounds. It reports; it fails only when
 * it cannot run.
 *
 *   vfu-bench-nvme [-q] [-r ROUNDS] [-t MS] [PATH-TO-vfu-nvme]
 *     -q  quick: 1 round of 100 ms per test (the CI smoke test)
 *     -r  rounds (default 3), -t  ms per round and test (default 1000)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

#define NS_BYTES        (64u << 20)
#define BLOCKS_4K       (NS_BYTES / 4096)
#define QSIZE           64
#define MAX_QD          32
#define MAX_ROUNDS      15
#define MAX_SAMPLES     (1u << 20)
#define RAW_SMALL       36
#define RAW_4K          (4096 + 36)

static int rounds = 3, round_ms = 1000;
static char dir[] = "/tmp/vfu-bench-nvme.XXXXXX";
static char img[64], sock[64];

static void __attribute__((noreturn))
die(const char *what)
{
    fprintf(stderr, "vfu-bench-nvme: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rand_block(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng % BLOCKS_4K;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    for (int i = 1; i < n; i++) {       /* insertion sort: a few rounds */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One measurement: operations per second, latencies, messages. */
struct result {
    double iops, mean_us, p99_us, client_msgs, dma_msgs;
};

static uint64_t *samples;

static void
finish(struct result *r, uint64_t ops, uint64_t ns, size_t nsamples)
{
    double sum = 0;
    for (size_t i = 0; i < nsamples; i++) {
        sum += (double)samples[i];
    }
    qsort(samples, nsamples, sizeof(samples[0]), cmp_u64);
    r->iops = (double)ops * 1e9 / (double)ns;
    r->mean_us = nsamples ? sum / (double)nsamples / 1000 : 0;
    r->p99_us = nsamples ? (double)samples[nsamples * 99 / 100] / 1000 : 0;
}

/* ---- raw AF_UNIX round trip ---- */

static void
raw_server(int fd)
{
    static char buf[RAW_4K];
    for (;;) {
        ssize_t n = recv(fd, buf, RAW_SMALL, MSG_WAITALL);
        if (n != RAW_SMALL) {
            _exit(0);
        }
        size_t len = buf[0] ? RAW_4K : RAW_SMALL;   /* the first byte asks */
        if (send(fd, buf, len, 0) != (ssize_t)len) {
            _exit(0);
        }
    }
}

static void
raw_rtt(int fd, bool big, struct result *r)
{
    static char buf[RAW_4K];
    size_t reply = big ? RAW_4K : RAW_SMALL, n = 0;
    uint64_t start = now_ns(), end = start + (uint64_t)round_ms * 1000000;
    uint64_t t;

    memset(buf, 0, sizeof(buf));
    buf[0] = big;
    do {
        t = now_ns();
        if (send(fd, buf, RAW_SMALL, 0) != RAW_SMALL ||
            recv(fd, buf, reply, MSG_WAITALL) != (ssize_t)reply) {
            die("raw round trip");
        }
        if (n < MAX_SAMPLES) {
            samples[n] = now_ns() - t;
        }
        n++;
    } while (now_ns() < end);
    finish(r, n, now_ns() - start, n < MAX_SAMPLES ? n : MAX_SAMPLES);
}

/* ---- the backing file straight ---- */

static void
file_io(int fd, bool write, struct result *r)
{
    static char buf[4096] __attribute__((aligned(4096)));
    uint64_t start = now_ns(), end = start + (uint64_t)round_ms * 1000000;
    size_t n = 0;

    memset(buf, 0x5a, sizeof(buf));
    do {
        off_t off = (off_t)rand_block() * 4096;
        uint64_t t = now_ns();
        ssize_t k = write ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off);
        if (k != 4096) {
            die("pread/pwrite");
        }
        if (n < MAX_SAMPLES) {
            samples[n] = now_ns() - t;
        }
        n++;
    } while (now_ns() < end);
    finish(r, n, now_ns() - start, n < MAX_SAMPLES ? n : MAX_SAMPLES);
}

/* ---- through the device ---- */

enum { MODE_MAPPED, MODE_IOEVENTFD, MODE_MESSAGE, NR_MODES };
static const char *const mode_name[NR_MODES] = {
    "mapped, doorbells by message", "mapped, doorbells by ioeventfd",
    "DMA by message",
};

struct dev {
    pid_t pid;
    struct nvme_host h;
    uint64_t buf[MAX_QD];               /* a 4 KiB buffer per slot */
    uint64_t t_submit[65536];           /* by cid */
};

static void
submit(struct dev *d, bool write, unsigned slot, bool ring)
{
    struct nvme_sqe c = { .opc = write ? NVME_IO_WRITE : NVME_IO_READ,
                          .nsid = 1 };
    uint64_t lba = rand_block() * 8;
    uint16_t cid;

    c.cdw10 = (uint32_t)lba;
    c.cdw11 = (uint32_t)(lba >> 32);
    c.cdw12 = 7;                        /* 8 blocks */
    c.dptr[0] = d->buf[slot];
    cid = host_submit(&d->h, 1, &c, ring);
    d->t_submit[cid] = now_ns();
}

static void
run_io(struct dev *d, bool write, unsigned qd, int ms, struct result *r)
{
    struct vfu_client_stats s0, s1;
    uint64_t start, end, ops = 0;
    size_t nsamples = 0;
    unsigned inflight = 0;
    uint16_t slot_of[65536];

    vfu_client_get_stats(d->h.c, &s0);
    start = now_ns();
    end = start + (uint64_t)ms * 1000000;
    for (unsigned i = 0; i < qd; i++) {
        slot_of[d->h.cid] = (uint16_t)i;
        submit(d, write, i, i + 1 == qd);
        inflight++;
    }
    while (inflight > 0) {
        unsigned free_slots[MAX_QD], nfree = 0;
        struct nvme_cqe e;

        if (host_reap(&d->h, 1, &e, 10000, true) < 0) {
            die("no completion within 10 s");
        }
        do {
            uint64_t t = now_ns();
            if (host_status(&e) != 0) {
                errno = EIO;
                die("I/O failed");
            }
            if (nsamples < MAX_SAMPLES) {
                samples[nsamples++] = t - d->t_submit[e.cid];
            }
            free_slots[nfree++] = slot_of[e.cid];
            inflight--;
            ops++;
        } while (nfree < qd && host_reap(&d->h, 1, &e, 0, true) == 0);
        {
            uint32_t head = d->h.cq[1].head;
            (void)vfu_client_doorbell(d->h.c, VFIO_PCI_BAR0_REGION_INDEX,
                                      NVME_REG_DBS + 12, &head, 4, true);
        }
        if (now_ns() < end) {
            for (unsigned i = 0; i < nfree; i++) {
                slot_of[d->h.cid] = (uint16_t)free_slots[i];
                submit(d, write, free_slots[i], i + 1 == nfree);
                inflight++;
            }
        }
    }
    vfu_client_get_stats(d->h.c, &s1);
    finish(r, ops, now_ns() - start, nsamples);
    r->client_msgs = (double)(s1.requests - s0.requests) / (double)ops;
    r->dma_msgs = (double)(s1.dma_served - s0.dma_served) / (double)ops;
}

static void
dev_start(struct dev *d, int mode, const char *prog)
{
    struct nvme_sqe c = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07 };

    unlink(sock);
    d->pid = fork();
    if (d->pid == 0) {
        execl(prog, prog, img, sock, (char *)NULL);
        _exit(127);
    }
    if (host_open(&d->h, sock, 8u << 20, mode != MODE_MESSAGE) < 0 ||
        host_enable(&d->h, 32) < 0) {
        die("starting vfu-nvme");
    }
    if (mode == MODE_IOEVENTFD &&
        vfu_client_ioeventfds_install(d->h.c, VFIO_PCI_BAR0_REGION_INDEX) <= 0) {
        die("ioeventfds");
    }
    if (host_admin(&d->h, &c, NULL) != 0 || host_create_io(&d->h, 1, QSIZE) != 0) {
        die("I/O queue");
    }
    for (unsigned i = 0; i < MAX_QD; i++) {
        d->buf[i] = host_alloc(&d->h, 4096, 4096);
    }
}

static void
dev_stop(struct dev *d)
{
    int status;
    host_close(&d->h);
    waitpid(d->pid, &status, 0);
}

int
main(int argc, char *argv[])
{
    char self[PATH_MAX], prog[PATH_MAX + 32];
    static struct dev d;
    struct result rr[2][MAX_ROUNDS], rf[2][MAX_ROUNDS];
    struct result rd[NR_MODES][2][2][MAX_ROUNDS];    /* mode, write, qd32 */
    static const unsigned qds[2] = { 1, 32 };
    double v[MAX_ROUNDS], raw_us, file_iops[2];
    int opt, sv[2], fd;
    pid_t raw;

    while ((opt = getopt(argc, argv, "qr:t:")) != -1) {
        switch (opt) {
        case 'q': rounds = 1; round_ms = 100; break;
        case 'r': rounds = atoi(optarg); break;
        case 't': round_ms = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-q] [-r ROUNDS] [-t MS] [vfu-nvme]\n", argv[0]);
            return 2;
        }
    }
    rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
    if (optind < argc) {
        snprintf(prog, sizeof(prog), "%s", argv[optind]);
    } else {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        *strrchr(self, '/') = '\0';
        snprintf(prog, sizeof(prog), "%s/../samples/nvme/vfu-nvme", self);
    }
    signal(SIGPIPE, SIG_IGN);
    samples = malloc(MAX_SAMPLES * sizeof(*samples));
    if (samples == NULL || mkdtemp(dir) == NULL) {
        die("set-up");
    }
    snprintf(img, sizeof(img), "%s/ns.img", dir);
    snprintf(sock, sizeof(sock), "%s/s", dir);
    /* the backing file, written whole so that it sits in the page cache */
    if ((fd = open(img, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        die(img);
    }
    for (unsigned i = 0; i < NS_BYTES / 4096; i++) {
        char b[4096];
        memset(b, (int)i, sizeof(b));
        if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
            die("backing file");
        }
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        die("socketpair");
    }
    if ((raw = fork()) == 0) {
        close(sv[0]);
        raw_server(sv[1]);
    }
    close(sv[1]);

    for (int r = 0; r < rounds; r++) {
        raw_rtt(sv[0], false, &rr[0][r]);
        raw_rtt(sv[0], true, &rr[1][r]);
        file_io(fd, false, &rf[0][r]);
        file_io(fd, true, &rf[1][r]);
        for (int m = 0; m < NR_MODES; m++) {
            dev_start(&d, m, prog);
            for (int w = 0; w < 2; w++) {
                for (int q = 0; q < 2; q++) {
                    run_io(&d, w, qds[q], round_ms / 5, &rd[m][w][q][r]); /* warm */
                    run_io(&d, w, qds[q], round_ms, &rd[m][w][q][r]);
                }
            }
            dev_stop(&d);
        }
    }
    close(sv[0]);
    waitpid(raw, NULL, 0);

#define MED(field, arr) ({ for (int r_ = 0; r_ < rounds; r_++) v[r_] = (arr)[r_].field; \
                           median(v, rounds); })
    printf("vfu-bench-nvme: 4 KiB random I/O on a %u MiB namespace, %d round(s) "
           "of %d ms per test (medians)\n\n", NS_BYTES >> 20, rounds, round_ms);
    raw_us = MED(mean_us, rr[0]);
    printf("  raw AF_UNIX round trip, 36 B / 36 B       %8.2f us\n", raw_us);
    printf("  raw AF_UNIX round trip, 36 B / 4 KiB+36   %8.2f us\n",
           MED(mean_us, rr[1]));
    file_iops[0] = MED(iops, rf[0]);
    file_iops[1] = MED(iops, rf[1]);
    printf("  pread  4 KiB of the backing file, QD1     %8.2f us  %9.0f IOPS\n",
           MED(mean_us, rf[0]), file_iops[0]);
    printf("  pwrite 4 KiB of the backing file, QD1     %8.2f us  %9.0f IOPS\n\n",
           MED(mean_us, rf[1]), file_iops[1]);
    printf("  %-31s %-5s %2s %9s %9s %9s %8s %8s %7s %7s\n", "device", "op",
           "QD", "IOPS", "mean us", "p99 us", "lat/RTT", "IOPS/f", "msgs/IO",
           "DMA/IO");
    for (int m = 0; m < NR_MODES; m++) {
        for (int w = 0; w < 2; w++) {
            for (int q = 0; q < 2; q++) {
                struct result *res = rd[m][w][q];
                double iops = MED(iops, res), mean = MED(mean_us, res);
                printf("  %-31s %-5s %2u %9.0f %9.2f %9.2f %7.2fx %7.3fx %7.2f %7.2f\n",
                       mode_name[m], w ? "write" : "read", qds[q], iops, mean,
                       MED(p99_us, res), mean / raw_us, iops / file_iops[w],
                       MED(client_msgs, res), MED(dma_msgs, res));
            }
        }
    }
    printf("\n  lat/RTT: mean latency / raw 36-byte round trip; IOPS/f: IOPS / "
           "pread or pwrite IOPS;\n  msgs/IO: messages the host sent per I/O "
           "(doorbells as REGION_WRITE); DMA/IO: DMA_READ and\n  DMA_WRITE "
           "requests of the device per I/O (each with a reply).\n");
    close(fd);
    unlink(img);
    unlink(sock);
    rmdir(dir);
    return 0;
}
