/*
 * Many devices in one process (docs/limits.md): what an idle attached
 * context costs in memory after traffic, that nothing stays behind over
 * many client sessions, and that a limit met by one client (no fd for
 * accept(), no address space for a DMA mapping) is an error for that
 * client while the others are served, and that a client that stops
 * reading holds the loop only until the server gives up on it.
 *
 * The server side runs here: non-blocking contexts served by one epoll
 * loop over vfu_get_poll_fd(), as a process with many devices does. The
 * clients (libvfio-user-client) run in a forked child, so that their
 * memory and fds are not counted; the two step along through a pipe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

/* The figure docs/limits.md promises: bytes of RSS per idle context. */
#define RSS_PER_CTX_LIMIT   12000

/* Contexts of the memory test (fewer if RLIMIT_NOFILE cannot be raised). */
#define NR_CTX              1000
/* Sessions of the leak test, after some to warm up. */
#define NR_CYCLES           10000
#define NR_WARMUP           100

#define BAR0_SZ             (1u << 20)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Device memory, shared by every device: it is the device's, not ours. */
static uint8_t bar0[BAR0_SZ];

static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    (void)ctx;
    if (is_write) {
        memcpy(bar0 + off, buf, count);
    } else {
        memcpy(buf, bar0 + off, count);
    }
    return (ssize_t)count;
}

struct server {
    char dir[64];
    size_t nr;                      /* contexts made so far */
    size_t cap;
    vfu_ctx_t **ctx;
    int *fd;                        /* the fd registered for it, or -1 */
    bool *attached;
    int *attach_err;                /* errno of its last failed attach */
    int ep;
    int from_child;
    int to_child;
    pid_t child;
};

static struct server srv;

/* test_limits: fds taken to leave none, and the limit to restore. */
static int fillers[256];
static int nr_fillers;
static struct rlimit saved_nofile;
static bool nofile_lowered;

static void
restore_fds(void)
{
    while (nr_fillers > 0) {
        close(fillers[--nr_fillers]);
    }
    if (nofile_lowered) {
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
        nofile_lowered = false;
    }
}

static void
sock_path(const char *dir, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%zu.sock", dir, i);
}

/* Points the epoll set at the context's current poll fd. */
static void
track(struct server *s, size_t i)
{
    int fd = vfu_get_poll_fd(s->ctx[i]);

    if (fd == s->fd[i]) {
        return;
    }
    if (s->fd[i] >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, s->fd[i], NULL);
    }
    s->fd[i] = -1;
    if (fd >= 0) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        assert_int_equal(epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev), 0);
        s->fd[i] = fd;
    }
}

static void
add_ctx(struct server *s, vfu_pci_type_t type, bool dma)
{
    char path[128];
    size_t i = s->nr;
    vfu_ctx_t *ctx;

    assert_true(i < s->cap);
    sock_path(s->dir, i, path, sizeof(path));
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, path, LIBVFIO_USER_FLAG_ATTACH_NB,
                         NULL, VFU_DEV_TYPE_PCI);
    assert_non_null(ctx);
    assert_int_equal(vfu_pci_init(ctx, type, PCI_HEADER_TYPE_NORMAL, 0), 0);
    vfu_pci_set_id(ctx, 0x4e58, 0x0001, 0x4e58, 0x0001);
    assert_int_equal(vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX,
                                      BAR0_SZ, bar0_access,
                                      VFU_REGION_FLAG_RW |
                                      VFU_REGION_FLAG_MEM, NULL, 0, -1, 0), 0);
    if (dma) {
        assert_int_equal(vfu_setup_device_dma(ctx, 16, NULL, NULL), 0);
    }
    assert_int_equal(vfu_realize_ctx(ctx), 0);
    s->ctx[i] = ctx;
    s->fd[i] = -1;
    s->attached[i] = false;
    s->attach_err[i] = 0;
    s->nr++;
    track(s, i);
}

/* One context's turn: attach, or serve what came. */
static void
serve_one(struct server *s, size_t i)
{
    if (!s->attached[i]) {
        if (vfu_attach_ctx(s->ctx[i]) == 0) {
            s->attached[i] = true;
        } else if (errno != EAGAIN) {
            s->attach_err[i] = errno;
        }
    } else if (vfu_run_ctx(s->ctx[i]) < 0) {
        assert_int_equal(errno, ENOTCONN);
        s->attached[i] = false;
    }
    track(s, i);
}

/*
 * Serves every context until the child says something (returned), or,
 * with @until_idle, until context @idle is no longer attached.
 */
static int
serve(struct server *s, bool until_detached, size_t idle)
{
    for (;;) {
        struct epoll_event ev[64];
        int n;

        if (until_detached && !s->attached[idle]) {
            return 0;
        }
        n = epoll_wait(s->ep, ev, 64, 30000);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        assert_true(n > 0);         /* 30 s without a sign: the child hung */
        for (int k = 0; k < n; k++) {
            if (ev[k].data.u64 == UINT64_MAX) {
                char c;
                if (until_detached) {
                    continue;       /* level-triggered: read it later */
                }
                assert_int_equal(read(s->from_child, &c, 1), 1);
                if (c == 'X') {
                    fail_msg("the client side failed");
                }
                return c;
            }
            serve_one(s, (size_t)ev[k].data.u64);
        }
    }
}

static void
answer(struct server *s, char c)
{
    assert_int_equal(write(s->to_child, &c, 1), 1);
}

/* --- The client side (in the child: no cmocka, exit status instead) --- */

static int child_in, child_out;

static void
tell(char c)
{
    if (write(child_out, &c, 1) != 1) {
        _exit(3);
    }
}

static char
hear(void)
{
    char c;

    if (read(child_in, &c, 1) != 1) {
        _exit(3);
    }
    return c;
}

static void
check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "client side: %s failed: %s\n", what, strerror(errno));
        tell('X');
        _exit(2);
    }
}

static vfu_client_t *
connect_to(const char *dir, size_t i)
{
    char path[128];
    vfu_client_t *c;

    sock_path(dir, i, path, sizeof(path));
    c = vfu_client_connect(path);
    check(c != NULL, "connect");
    check(vfu_client_set_timeout(c, 20000) == 0, "set timeout");
    check(vfu_client_negotiate(c, NULL) == 0, "negotiate");
    return c;
}

/* Small and big requests both ways: what makes a context grow, if any. */
static void
traffic(vfu_client_t *c, uint8_t *big)
{
    uint32_t v = 0;

    check(vfu_client_region_read(c, VFU_PCI_DEV_CFG_REGION_IDX, 0, &v, 4) == 0,
          "config read");
    check(vfu_client_region_read(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "4-byte read");
    check(vfu_client_region_write(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, big, 4096,
                                  false) == 0, "4 KiB write");
    check(vfu_client_region_write(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, big,
                                  BAR0_SZ, false) == 0, "1 MiB write");
    check(vfu_client_region_read(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, big,
                                 BAR0_SZ) == 0, "1 MiB read");
    check(vfu_client_region_write(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4,
                                  true) == 0, "posted write");
    check(vfu_client_region_read(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "4-byte read");
}

static void
start_child(struct server *s, void (*fn)(const char *dir, size_t nr), size_t nr)
{
    int down[2], up[2];
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };

    assert_int_equal(pipe2(down, O_CLOEXEC), 0);
    assert_int_equal(pipe2(up, O_CLOEXEC), 0);
    fflush(NULL);
    s->child = fork();
    assert_true(s->child >= 0);
    if (s->child == 0) {
        close(down[1]);
        close(up[0]);
        child_in = down[0];
        child_out = up[1];
        fn(s->dir, nr);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    s->from_child = up[0];
    s->to_child = down[1];
    assert_int_equal(epoll_ctl(s->ep, EPOLL_CTL_ADD, s->from_child, &ev), 0);
}

static void
finish_child(struct server *s)
{
    int status;

    assert_int_equal(waitpid(s->child, &status, 0), s->child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    s->child = 0;
    close(s->from_child);
    close(s->to_child);
}

/* Sets the soft fd limit to at least @want if the hard one allows; the soft. */
static rlim_t
raise_nofile(rlim_t want)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    return rl.rlim_cur;
}

static int
setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    strcpy(srv.dir, "/tmp/vfu-scale-XXXXXX");
    assert_non_null(mkdtemp(srv.dir));
    srv.cap = NR_CTX + 1;
    srv.ctx = calloc(srv.cap, sizeof(*srv.ctx));
    srv.fd = calloc(srv.cap, sizeof(*srv.fd));
    srv.attached = calloc(srv.cap, sizeof(*srv.attached));
    srv.attach_err = calloc(srv.cap, sizeof(*srv.attach_err));
    assert_true(srv.ctx && srv.fd && srv.attached && srv.attach_err);
    srv.ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(srv.ep >= 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    restore_fds();
    if (srv.child > 0 && waitpid(srv.child, NULL, WNOHANG) == 0) {
        kill(srv.child, SIGKILL);   /* a test failed half-way */
        waitpid(srv.child, NULL, 0);
    }
    for (size_t i = 0; i < srv.nr; i++) {
        vfu_destroy_ctx(srv.ctx[i]);
    }
    close(srv.ep);
    rmdir(srv.dir);
    free(srv.ctx);
    free(srv.fd);
    free(srv.attached);
    free(srv.attach_err);
    return 0;
}

static size_t
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size, rss;

    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &size, &rss), 2);
    fclose(f);
    return rss * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t
vm_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size;

    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu", &size), 1);
    fclose(f);
    return size * (size_t)sysconf(_SC_PAGESIZE);
}

static int
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n - 3;           /* ".", ".." and the directory's own fd */
}

/* ------------------------------------------------------------------ */
/* Memory per idle attached context                                    */
/* ------------------------------------------------------------------ */

/*
 * Context 0 warms up (the process's shared buffers, the allocator); then
 * contexts 1..nr each get a client that does traffic up to 1 MiB both
 * ways and stays connected, idle.
 */
static void
idle_clients(const char *dir, size_t nr)
{
    uint8_t *big = malloc(BAR0_SZ);
    vfu_client_t **c = calloc(nr + 1, sizeof(*c));

    check(big != NULL && c != NULL, "malloc");
    memset(big, 0x5a, BAR0_SZ);
    c[0] = connect_to(dir, 0);
    traffic(c[0], big);
    tell('w');
    hear();
    for (size_t i = 1; i <= nr; i++) {
        c[i] = connect_to(dir, i);
        traffic(c[i], big);
    }
    tell('d');
    hear();
    for (size_t i = 0; i <= nr; i++) {
        vfu_client_close(c[i]);
    }
    free(c);
    free(big);
}

static void
idle_memory(vfu_pci_type_t type, const char *name)
{
    size_t nr = NR_CTX;
    rlim_t lim = raise_nofile(2 * (NR_CTX + 1) + 64);
    size_t rss0, rss1;
    double per;

    if (lim < 2 * (nr + 1) + 64) {
        nr = (size_t)(lim - 64) / 2 - 1;
    }
    assert_true(nr >= 100);
    add_ctx(&srv, type, false);
    start_child(&srv, idle_clients, nr);
    assert_int_equal(serve(&srv, false, 0), 'w');
    malloc_trim(0);
    rss0 = rss_bytes();
    for (size_t i = 1; i <= nr; i++) {
        add_ctx(&srv, type, false);
    }
    answer(&srv, 'g');
    assert_int_equal(serve(&srv, false, 0), 'd');
    for (size_t i = 0; i <= nr; i++) {
        assert_true(srv.attached[i]);
    }
    malloc_trim(0);
    rss1 = rss_bytes();
    per = (double)(rss1 > rss0 ? rss1 - rss0 : 0) / (double)nr;
    printf("%s: %zu idle attached contexts after up to 1 MiB each way: "
           "%.0f bytes of RSS each (limit %d)%s\n", name, nr, per,
           RSS_PER_CTX_LIMIT, UNDER_ASAN ? ", not checked under ASan" : "");
    answer(&srv, 'q');
    finish_child(&srv);
    if (!UNDER_ASAN) {
        assert_true(per <= RSS_PER_CTX_LIMIT);
    }
}

static void
test_idle_memory_conventional(void **state)
{
    (void)state;
    idle_memory(VFU_PCI_TYPE_CONVENTIONAL, "conventional PCI");
}

static void
test_idle_memory_express(void **state)
{
    (void)state;
    idle_memory(VFU_PCI_TYPE_EXPRESS, "PCI Express");
}

/* ------------------------------------------------------------------ */
/* Nothing left behind by many sessions                                */
/* ------------------------------------------------------------------ */

#define MAP_SZ (64u << 10)

static void
session(const char *dir, int memfd, void *vaddr)
{
    vfu_client_t *c = connect_to(dir, 0);
    uint32_t v;

    check(vfu_client_dma_map(c, 0x100000, MAP_SZ, memfd, 0, vaddr,
                             VFIO_USER_F_DMA_REGION_READ |
                             VFIO_USER_F_DMA_REGION_WRITE) == 0, "DMA map");
    check(vfu_client_region_read(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "4-byte read");
    vfu_client_close(c);
}

static void
cycling_clients(const char *dir, size_t nr)
{
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    void *vaddr;

    check(memfd >= 0 && ftruncate(memfd, MAP_SZ) == 0, "memfd");
    vaddr = mmap(NULL, MAP_SZ, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    check(vaddr != MAP_FAILED, "mmap");
    for (size_t k = 0; k < NR_WARMUP; k++) {
        session(dir, memfd, vaddr);
    }
    tell('w');
    hear();
    for (size_t k = 0; k < nr; k++) {
        session(dir, memfd, vaddr);
    }
    tell('d');
    hear();
}

static void
test_no_leak(void **state)
{
    int fds0, fds1;
    size_t heap0, heap1, rss0, rss1, vm0, vm1;

    (void)state;
    add_ctx(&srv, VFU_PCI_TYPE_CONVENTIONAL, true);
    start_child(&srv, cycling_clients, NR_CYCLES);
    assert_int_equal(serve(&srv, false, 0), 'w');
    serve(&srv, true, 0);           /* its last session is over */
    fds0 = count_fds();
    heap0 = mallinfo2().uordblks;
    rss0 = rss_bytes();
    vm0 = vm_bytes();
    answer(&srv, 'g');
    assert_int_equal(serve(&srv, false, 0), 'd');
    serve(&srv, true, 0);
    fds1 = count_fds();
    heap1 = mallinfo2().uordblks;
    rss1 = rss_bytes();
    vm1 = vm_bytes();
    answer(&srv, 'q');
    finish_child(&srv);

    printf("%d sessions (connect, negotiate, DMA map, read, disconnect): "
           "fds %d -> %d, heap in use %+ld B, RSS %+ld B, address space "
           "%+ld B\n", NR_CYCLES, fds0, fds1, (long)(heap1 - heap0),
           (long)(rss1 - rss0), (long)(vm1 - vm0));
    assert_int_equal(fds1, fds0);
    /*
     * Less than a byte a session; no mapping kept. ASan's heap (its
     * quarantine holds freed blocks) says nothing about ours: LSan checks.
     */
    if (!UNDER_ASAN) {
        assert_true((long)(heap1 - heap0) < NR_CYCLES);
        assert_true((long)(rss1 - rss0) < 256 * 1024);
    }
    assert_true((long)(vm1 - vm0) < (long)MAP_SZ);
}

/* ------------------------------------------------------------------ */
/* Limits met by one client                                            */
/* ------------------------------------------------------------------ */

static void
limit_clients(const char *dir, size_t nr)
{
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    vfu_client_t *a, *b;
    char path[128];
    uint32_t v;
    int ret;

    (void)nr;
    /* Sparse: a file as large as the mapping that cannot be made. */
    check(memfd >= 0 && ftruncate(memfd, (off_t)(1ull << 47)) == 0, "memfd");
    a = connect_to(dir, 0);
    tell('a');
    hear();                                 /* the server is out of fds */
    sock_path(dir, 1, path, sizeof(path));
    b = vfu_client_connect(path);
    check(b != NULL, "connect");
    check(vfu_client_set_timeout(b, 20000) == 0, "set timeout");
    ret = vfu_client_negotiate(b, NULL);
    check(ret < 0 && errno != ETIMEDOUT, "turned away");
    vfu_client_close(b);
    check(vfu_client_region_read(a, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "the other client served");
    tell('b');
    hear();                                 /* fds again */
    b = connect_to(dir, 1);
    /* A mapping larger than any address space: mmap() fails, ENOMEM. */
    ret = vfu_client_dma_map(a, 0x100000, 1ull << 47, memfd, 0, NULL,
                             VFIO_USER_F_DMA_REGION_READ |
                             VFIO_USER_F_DMA_REGION_WRITE);
    check(ret < 0 && errno == ENOMEM, "DMA map refused with ENOMEM");
    check(vfu_client_region_read(b, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "the other client served");
    check(vfu_client_dma_map(a, 0x100000, MAP_SZ, memfd, 0, NULL,
                             VFIO_USER_F_DMA_REGION_READ |
                             VFIO_USER_F_DMA_REGION_WRITE) == 0,
          "the same client maps what fits");
    check(vfu_client_region_read(a, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "the client served");
    tell('c');
    hear();
    vfu_client_close(a);
    vfu_client_close(b);
}

/* test_stalled_client: a stops reading, b is served once a is let go. */
static void
stall_clients(const char *dir, size_t nr)
{
    struct vfio_user_region_access ra = {
        .offset = 0, .region = VFU_PCI_DEV_BAR0_REGION_IDX, .count = BAR0_SZ,
    };
    vfu_client_t *a, *b;
    struct pollfd p;
    uint8_t buf[65536];
    size_t got = 0;
    uint16_t id;
    uint32_t v;
    ssize_t n;

    (void)nr;
    a = connect_to(dir, 0);
    b = connect_to(dir, 1);
    check(vfu_client_set_timeout(b, 120000) == 0, "set timeout");
    /* A 1 MiB read whose reply a never takes: the send cannot finish. */
    check(vfu_client_send(a, VFIO_USER_REGION_READ, VFIO_USER_F_TYPE_COMMAND,
                          &ra, sizeof(ra), NULL, 0, &id) == 0, "send");
    p = (struct pollfd){ .fd = vfu_client_fd(a), .events = POLLIN };
    check(poll(&p, 1, 30000) == 1, "the reply begins");
    /* The loop is inside a's send now: b waits until a is let go. */
    check(vfu_client_region_read(b, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v, 4) == 0,
          "the other client served");
    /* a got part of its reply, then the end of the stream. */
    while ((n = read(vfu_client_fd(a), buf, sizeof(buf))) > 0) {
        got += (size_t)n;
    }
    check(n == 0 && got > 0 && got < BAR0_SZ, "a cut reply, then EOF");
    tell('a');
    hear();
    vfu_client_close(a);
    vfu_client_close(b);
}

static void
test_stalled_client(void **state)
{
    (void)state;
    add_ctx(&srv, VFU_PCI_TYPE_CONVENTIONAL, false);
    add_ctx(&srv, VFU_PCI_TYPE_CONVENTIONAL, false);
    start_child(&srv, stall_clients, 0);
    assert_int_equal(serve(&srv, false, 0), 'a');
    assert_false(srv.attached[0]);          /* let go */
    assert_true(srv.attached[1]);
    answer(&srv, 'q');
    finish_child(&srv);
}

static void
test_limits(void **state)
{
    struct rlimit low;
    int top = 0;
    DIR *d;
    struct dirent *e;

    (void)state;
    add_ctx(&srv, VFU_PCI_TYPE_CONVENTIONAL, true);
    add_ctx(&srv, VFU_PCI_TYPE_CONVENTIONAL, true);
    start_child(&srv, limit_clients, 0);
    assert_int_equal(serve(&srv, false, 0), 'a');

    /* No fd left: the limit at the highest open fd, the holes filled. */
    d = opendir("/proc/self/fd");
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        top = fd > top ? fd : top;
    }
    closedir(d);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    low = saved_nofile;
    low.rlim_cur = (rlim_t)top + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    nofile_lowered = true;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        assert_true(nr_fillers < 256);
        fillers[nr_fillers++] = fd;
    }
    answer(&srv, 'g');
    assert_int_equal(serve(&srv, false, 0), 'b');
    assert_int_equal(srv.attach_err[1], EMFILE);
    assert_false(srv.attached[1]);
    restore_fds();

    answer(&srv, 'g');
    assert_int_equal(serve(&srv, false, 0), 'c');
    assert_true(srv.attached[0]);
    assert_true(srv.attached[1]);
    answer(&srv, 'q');
    finish_child(&srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_leak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_memory_conventional, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_memory_express, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
