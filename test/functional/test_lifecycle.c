/*
 * Functional tests of a context's life: version negotiation (good and bad
 * proposals), attach in blocking and non-blocking mode, disconnect and
 * reconnect, fd hygiene across connections, and vfu_setup_region's argument
 * checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* Version data sent without its terminating NUL. */
static bool no_nul;

/* Sends VERSION with @json (raw) and returns the reply's error_no. */
static int
propose(vfu_client_t *c, uint16_t major, const char *json, void *reply,
        size_t cap, size_t *len)
{
    uint8_t buf[512];
    struct vfio_user_version *ver = (void *)buf;
    size_t n = json != NULL ? strlen(json) + !no_nul : 0;

    ver->major = major;
    ver->minor = 7;
    memcpy(ver->data, json != NULL ? json : "", n);
    return raw_request(c, VFIO_USER_VERSION, 0, buf, sizeof(*ver) + n, NULL, 0,
                       reply, cap, len);
}

static void
test_negotiation_reply(void **state)
{
    struct test_dev *dev = dev_start(1);
    vfu_client_t *c = vfu_client_connect(dev->sock);
    char reply[512];
    size_t len = 0;
    (void)state;

    assert_int_equal(propose(c, 0, "{\"capabilities\":{\"max_msg_fds\":8,"
                             "\"write_multiple\":true}}", reply, sizeof(reply),
                             &len), 0);
    struct vfio_user_version *ver = (void *)reply;
    assert_int_equal(ver->major, 0);
    assert_int_equal(ver->minor, 0);            /* min(7, ours) */
    assert_true(len > sizeof(*ver) + 2);
    assert_int_equal(reply[len - 1], '\0');     /* NUL-terminated JSON */
    assert_non_null(strstr((char *)ver->data, "\"max_data_xfer_size\""));
    assert_non_null(strstr((char *)ver->data, "\"write_multiple\":true"));
    assert_true(server_alive(c));
    vfu_client_close(c);
    dev_join(dev);
    assert_int_equal(dev->run_errno, ENOTCONN);
    dev_stop(dev);
}

/*
 * The reply's max_dma_maps never exceeds the client's (QEMU refuses a
 * device that raises it): the smaller of that and the device's
 * max_regions (65535 in the test device).
 */
static void
test_negotiation_lowers_only(void **state)
{
    static const struct { const char *json; const char *expect; } cases[] = {
        { "{\"capabilities\":{\"max_dma_maps\":100}}", "\"max_dma_maps\":100," },
        { "{\"capabilities\":{}}", "\"max_dma_maps\":65535," },
        { "{\"capabilities\":{\"max_dma_maps\":1000000}}",
          "\"max_dma_maps\":65535," },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct test_dev *dev = dev_start(1);
        vfu_client_t *c = vfu_client_connect(dev->sock);
        char reply[512] = { 0 };
        size_t len = 0;

        assert_int_equal(propose(c, 0, cases[i].json, reply, sizeof(reply) - 1,
                                 &len), 0);
        assert_non_null(strstr(reply + 4, cases[i].expect));
        vfu_client_close(c);
        dev_join(dev);
        dev_stop(dev);
    }
}

/* A bad proposal fails that attach; the next client is served. */
static void
check_rejected(uint16_t major, const char *json, int expect)
{
    struct test_dev *dev = dev_start(1);
    vfu_client_t *c = vfu_client_connect(dev->sock);
    char reply[512];

    assert_int_equal(propose(c, major, json, reply, sizeof(reply), NULL), expect);
    vfu_client_close(c);

    c = client_open(dev);
    assert_true(server_alive(c));
    vfu_client_close(c);
    dev_join(dev);
    assert_int_equal(dev->attach_errno, expect);
    assert_int_equal(dev->nr_attaches, 1);
    dev_stop(dev);
}

static void
test_negotiation_rejects(void **state)
{
    (void)state;
    check_rejected(0, "{\"capabilities\":", EINVAL);
    check_rejected(0, "{\"capabilities\":{\"max_msg_fds\":\"many\"}}", EINVAL);
    check_rejected(0, "{\"capabilities\":{\"max_data_xfer_size\":0}}", EINVAL);
    check_rejected(0, "{\"capabilities\":{\"pgsizes\":1000}}", EINVAL);
    check_rejected(1, "{}", EINVAL);
    /* Version data is a NUL-terminated JSON string, or nothing. */
    no_nul = true;
    check_rejected(0, "{}", EINVAL);
    no_nul = false;
}

/*
 * A VERSION announcing more than any VERSION can be is refused on its
 * header, without waiting for a body that may never come.
 */
static void
test_version_too_big(void **state)
{
    struct test_dev *dev = dev_start(1);
    vfu_client_t *c = vfu_client_connect(dev->sock);
    struct vfio_user_header h = { .msg_id = 9, .cmd = VFIO_USER_VERSION,
                                  .msg_size = 1u << 20 };
    struct pollfd p = { .fd = vfu_client_fd(c), .events = POLLIN };
    (void)state;

    assert_int_equal(send(p.fd, &h, sizeof(h), MSG_NOSIGNAL), sizeof(h));
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_true(vfu_client_recv(c, &h, NULL, 0, NULL, NULL) >= 0);
    assert_int_equal(h.msg_id, 9);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(h.error_no, EINVAL);
    vfu_client_close(c);
    c = client_open(dev);
    assert_true(server_alive(c));
    vfu_client_close(c);
    dev_join(dev);
    assert_int_equal(dev->attach_errno, EINVAL);
    dev_stop(dev);
}

static void
test_other_command_first(void **state)
{
    struct test_dev *dev = dev_start(1);
    vfu_client_t *c = vfu_client_connect(dev->sock);
    struct vfio_user_device_info info = { .argsz = sizeof(info) };
    (void)state;

    assert_int_equal(raw_request(c, VFIO_USER_DEVICE_GET_INFO, 0, &info,
                                 sizeof(info), NULL, 0, NULL, 0, NULL), EINVAL);
    vfu_client_close(c);
    c = client_open(dev);
    assert_int_equal(vfu_client_device_info(c, &info), 0);
    vfu_client_close(c);
    dev_join(dev);
    assert_int_equal(dev->attach_errno, EINVAL);
    dev_stop(dev);
}

/* Client leaves: reset(LOST_CONN), fds closed, a second client attaches. */
static void
test_disconnect_and_reconnect(void **state)
{
    int before = count_open_fds();
    struct test_dev *dev = dev_start(2);
    int base = count_open_fds();
    vfu_client_t *c = client_open(dev);
    struct vfio_region_info *info;
    int fd;
    (void)state;

    /* Leave a message half-sent and an fd in flight when we go. */
    assert_int_equal(vfu_client_region_info(c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                            &info, &fd), 0);
    free(info);
    close(fd);
    uint8_t partial[10] = { 0 };
    assert_int_equal(write(vfu_client_fd(c), partial, sizeof(partial)), 10);
    vfu_client_close(c);

    c = client_open(dev);
    assert_true(server_alive(c));
    vfu_client_close(c);
    dev_join(dev);
    assert_int_equal(dev->nr_attaches, 2);
    assert_int_equal(dev->nr_resets[VFU_RESET_LOST_CONN], 2);
    assert_int_equal(dev->run_errno, ENOTCONN);
    assert_int_equal(count_open_fds(), base);
    dev_stop(dev);
    assert_int_equal(count_open_fds(), before);
}

static void
test_nonblocking(void **state)
{
    char dir[] = "/tmp/vfu-nb.XXXXXX";
    char sock[64];
    vfu_ctx_t *ctx;
    vfu_client_t *c;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, sock, LIBVFIO_USER_FLAG_ATTACH_NB,
                         NULL, VFU_DEV_TYPE_PCI);
    assert_non_null(ctx);
    assert_int_equal(vfu_attach_ctx(ctx), -1);
    assert_int_equal(errno, EINVAL);            /* not realized yet */
    assert_int_equal(vfu_realize_ctx(ctx), 0);
    assert_int_equal(vfu_attach_ctx(ctx), -1);
    assert_int_equal(errno, EAGAIN);            /* nobody there */
    assert_int_equal(vfu_run_ctx(ctx), -1);
    assert_int_equal(errno, ENOTCONN);

    /* The socket listens from creation on: connect and propose first. */
    c = vfu_client_connect(sock);
    assert_non_null(c);
    int listen_fd = vfu_get_poll_fd(ctx);
    assert_true(listen_fd >= 0);
    /*
     * Connected but no VERSION yet: still EAGAIN, and from now on the poll
     * fd is the client's socket, so an event loop (QEMU's server object)
     * wakes when VERSION arrives, not when the next client connects.
     */
    assert_int_equal(vfu_attach_ctx(ctx), -1);
    assert_int_equal(errno, EAGAIN);
    int conn_fd = vfu_get_poll_fd(ctx);
    assert_int_not_equal(conn_fd, listen_fd);
    struct pollfd pfd = { .fd = conn_fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 0), 0);

    uint8_t ver[4] = { 0, 0, 0, 0 };
    uint16_t id;
    assert_int_equal(vfu_client_send(c, VFIO_USER_VERSION, 0, ver, 4, NULL, 0,
                                     &id), 0);
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(vfu_attach_ctx(ctx), 0);
    assert_int_equal(vfu_get_poll_fd(ctx), conn_fd);
    struct vfio_user_header hdr;
    assert_true(vfu_client_recv(c, &hdr, NULL, 0, NULL, NULL) >= 0);
    assert_false(!!(hdr.flags & VFIO_USER_F_ERROR));

    /* Nothing queued: 0 handled. Three queued: 3 handled in one call. */
    assert_int_equal(vfu_run_ctx(ctx), 0);
    uint32_t off = 0;
    for (int i = 0; i < 3; i++) {
        struct vfio_user_region_access rd = {
            .offset = off, .region = VFU_PCI_DEV_CFG_REGION_IDX, .count = 4 };
        assert_int_equal(vfu_client_send(c, VFIO_USER_REGION_READ, 0, &rd,
                                         sizeof(rd), NULL, 0, &id), 0);
    }
    usleep(20000);
    assert_int_equal(vfu_run_ctx(ctx), 3);
    for (int i = 0; i < 3; i++) {
        assert_true(vfu_client_recv(c, &hdr, NULL, 0, NULL, NULL) >= 0);
        assert_false(!!(hdr.flags & VFIO_USER_F_ERROR));
    }
    vfu_client_close(c);
    while (vfu_run_ctx(ctx) >= 0) {
        usleep(1000);
    }
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(vfu_get_poll_fd(ctx), listen_fd);
    vfu_destroy_ctx(ctx);
    /* The socket file is gone with the context. */
    struct stat st;
    assert_int_equal(stat(sock, &st), -1);
    rmdir(dir);
}

static void
test_create_errors(void **state)
{
    char dir[] = "/tmp/vfu-cr.XXXXXX";
    char sock[64];
    vfu_ctx_t *ctx;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    assert_null(vfu_create_ctx(VFU_TRANS_MAX, sock, 0, NULL, VFU_DEV_TYPE_PCI));
    assert_int_equal(errno, EINVAL);
    assert_null(vfu_create_ctx(VFU_TRANS_SOCK, sock, 0x80, NULL, VFU_DEV_TYPE_PCI));
    assert_int_equal(errno, EINVAL);
    assert_null(vfu_create_ctx(VFU_TRANS_SOCK, NULL, 0, NULL, VFU_DEV_TYPE_PCI));
    assert_int_equal(errno, EINVAL);
    assert_null(vfu_create_ctx(VFU_TRANS_SOCK, sock, 0, NULL,
                               (vfu_dev_type_t)(VFU_DEV_TYPE_PCI + 4)));
    assert_int_equal(errno, ENOTSUP);           /* as the original */
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, sock, 0, (void *)0x1234,
                         VFU_DEV_TYPE_PCI);
    assert_non_null(ctx);
    assert_ptr_equal(vfu_get_private(ctx), (void *)0x1234);
    assert_int_equal(vfu_run_ctx(ctx), -1);
    assert_int_equal(errno, EINVAL);            /* not realized */
    /* The path is taken. */
    assert_null(vfu_create_ctx(VFU_TRANS_SOCK, sock, 0, NULL, VFU_DEV_TYPE_PCI));
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(vfu_setup_log(ctx, NULL, 99), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, 0, 0), 0);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, 0, 0), -1);
    assert_int_equal(errno, EEXIST);
    vfu_destroy_ctx(ctx);
    rmdir(dir);
}

static void
test_setup_region_checks(void **state)
{
    char dir[] = "/tmp/vfu-rg.XXXXXX";
    char sock[64];
    int memfd = memfd_create("r", MFD_CLOEXEC);
    struct iovec good = { (void *)4096, 4096 };
    struct iovec outside = { (void *)8192, 8192 };
    struct iovec unaligned = { (void *)100, 4096 };
    struct iovec overlap[2] = { { (void *)0, 8192 }, { (void *)4096, 4096 } };
    vfu_ctx_t *ctx;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    assert_int_equal(ftruncate(memfd, 16384), 0);
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, sock, 0, NULL, VFU_DEV_TYPE_PCI);
    assert_non_null(ctx);

#define REFUSED(call, err) do { \
        assert_int_equal((call), -1); assert_int_equal(errno, (err)); \
    } while (0)
    int rw = VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM;
    REFUSED(vfu_setup_region(ctx, 9, 4096, NULL, rw, NULL, 0, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, -1, 4096, NULL, rw, NULL, 0, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 4096, NULL, 1 << 10, NULL, 0, -1, 0), EINVAL);
    /* As the original: neither readable nor writable; not a power of two. */
    REFUSED(vfu_setup_region(ctx, 2, 4096, NULL, 0, NULL, 0, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 2, 4096, NULL, VFU_REGION_FLAG_MEM, NULL, 0,
                             -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 2, 12288, NULL, rw, NULL, 0, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, 3000, NULL,
                             VFU_REGION_FLAG_READ, NULL, 0, -1, 0), EINVAL);
    /* Config space: ALWAYS_CB needs a callback. */
    REFUSED(vfu_setup_region(ctx, VFU_PCI_DEV_CFG_REGION_IDX, 256, NULL,
                             VFU_REGION_FLAG_RW | VFU_REGION_FLAG_ALWAYS_CB,
                             NULL, 0, -1, 0), EINVAL);
    /* Sparse areas need an fd, and must lie inside, aligned, apart. */
    REFUSED(vfu_setup_region(ctx, 0, 8192, NULL, rw, &good, 1, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 8192, NULL, rw, &outside, 1, memfd, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 8192, NULL, rw, &unaligned, 1, memfd, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 16384, NULL, rw, overlap, 2, memfd, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 8192, NULL, rw, &good, 0, memfd, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 8192, NULL, rw, NULL, 0, memfd, 100), EINVAL);
    /* The fd must hold what the client may map: all of it without areas... */
    REFUSED(vfu_setup_region(ctx, 0, 32768, NULL, rw, NULL, 0, memfd, 0), EINVAL);
    /* ...or the areas, in a region larger than the file (SPDK's BAR0). */
    struct iovec past_end = { (void *)16384, 4096 };
    REFUSED(vfu_setup_region(ctx, 0, 32768, NULL, rw, &past_end, 1, memfd, 0),
            EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 32768, NULL, rw, &good, 1, memfd, 16384),
            EINVAL);
    assert_int_equal(vfu_setup_region(ctx, 4, 32768, NULL,
                                      rw | VFU_REGION_FLAG_64_BITS |
                                      VFU_REGION_FLAG_PREFETCH, &good, 1, memfd,
                                      0), 0);
    REFUSED(vfu_setup_region(ctx, 0, 4096, NULL, rw, NULL, 0, 1000, 0), EBADF);
    /* 64-bit BARs: memory only, not BAR5, and the next slot stays free. */
    REFUSED(vfu_setup_region(ctx, 5, 4096, NULL, rw | VFU_REGION_FLAG_64_BITS,
                             NULL, 0, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 0, 4096, NULL,
                             VFU_REGION_FLAG_RW | VFU_REGION_FLAG_64_BITS,
                             NULL, 0, -1, 0), EINVAL);
    assert_int_equal(vfu_setup_region(ctx, 0, 4096, NULL,
                                      rw | VFU_REGION_FLAG_64_BITS, NULL, 0,
                                      -1, 0), 0);
    REFUSED(vfu_setup_region(ctx, 1, 4096, NULL, rw, NULL, 0, -1, 0), EINVAL);
    /* The ROM is read-only; config space is never mappable. */
    REFUSED(vfu_setup_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, 4096, NULL,
                             VFU_REGION_FLAG_RW, NULL, 0, -1, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, VFU_PCI_DEV_CFG_REGION_IDX, 256, NULL,
                             VFU_REGION_FLAG_RW, NULL, 0, memfd, 0), EINVAL);
    REFUSED(vfu_setup_region(ctx, 2, 4096, NULL,
                             rw | VFU_REGION_FLAG_ALWAYS_CB, NULL, 0, -1, 0),
            EINVAL);
    /* Good ones, also after realize. */
    assert_int_equal(vfu_setup_region(ctx, 2, 16384, NULL, rw, &good, 1, memfd,
                                      0), 0);
    assert_int_equal(vfu_realize_ctx(ctx), 0);
    assert_int_equal(vfu_setup_region(ctx, 3, 256, NULL, VFU_REGION_FLAG_RW,
                                      NULL, 0, -1, 0), 0);
    vfu_pci_config_space_t *cfg = vfu_pci_get_config_space(ctx);
    assert_non_null(cfg);
    assert_int_equal(cfg->hdr.bars[3].raw & 1, 1);   /* an I/O BAR now */
    assert_int_equal(cfg->hdr.bars[0].raw & 0x6, 0x4); /* 64-bit */
    assert_int_equal(cfg->hdr.bars[4].raw, 0xc);   /* 64-bit prefetchable */
    /* Size 0 clears a region and its BAR, both halves of a 64-bit one. */
    assert_int_equal(vfu_setup_region(ctx, 4, 0, NULL, 0, NULL, 0, -1, 0), 0);
    assert_int_equal(cfg->hdr.bars[4].raw, 0);
    assert_int_equal(vfu_setup_region(ctx, 5, 4096, NULL, rw, NULL, 0, -1, 0),
                     0);                            /* BAR5 is free again */
    assert_int_equal(vfu_setup_region(ctx, 0, 0, NULL, 0, NULL, 0, -1, 0), 0);
    assert_int_equal(cfg->hdr.bars[0].raw, 0);
    assert_int_equal(cfg->hdr.bars[1].raw, 0);
    assert_int_equal(vfu_setup_region(ctx, 1, 4096, NULL, rw, NULL, 0, -1, 0),
                     0);                            /* BAR1 is free again */
    vfu_destroy_ctx(ctx);
    close(memfd);
    rmdir(dir);
}

static void
on_signal(int sig)
{
    (void)sig;
}

struct eintr_run {
    vfu_ctx_t *ctx;
    volatile int stage;             /* 1: waiting in vfu_run_ctx */
    int ret1, errno1, ret2, errno2;
};

static void *
eintr_serve(void *arg)
{
    struct eintr_run *r = arg;

    if (vfu_attach_ctx(r->ctx) < 0) {
        r->ret1 = -2;
        return NULL;
    }
    r->stage = 1;
    r->ret1 = vfu_run_ctx(r->ctx);      /* interrupted between messages */
    r->errno1 = errno;
    r->stage = 2;
    do {                                /* serves on until the client goes */
        r->ret2 = vfu_run_ctx(r->ctx);  /* (a late signal may land here too) */
        r->errno2 = errno;
    } while (r->ret2 < 0 && r->errno2 == EINTR);
    return NULL;
}

/*
 * A blocking vfu_run_ctx() returns -1 with EINTR when a signal arrives while
 * it waits for the next message (devices raise interrupts from SIGALRM);
 * calling it again goes on serving.
 */
static void
test_run_interrupted(void **state)
{
    char dir[] = "/tmp/vfu-in.XXXXXX";
    char sock[64];
    struct sigaction sa = { .sa_handler = on_signal }, old;
    struct eintr_run r = { 0 };
    pthread_t thread;
    vfu_client_t *c;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/s", dir);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);     /* no SA_RESTART */
    r.ctx = vfu_create_ctx(VFU_TRANS_SOCK, sock, 0, NULL, VFU_DEV_TYPE_PCI);
    assert_non_null(r.ctx);
    assert_int_equal(vfu_pci_init(r.ctx, VFU_PCI_TYPE_CONVENTIONAL, 0, 0), 0);
    vfu_pci_set_id(r.ctx, DEV_VID, DEV_DID, 0, 0);
    assert_int_equal(vfu_realize_ctx(r.ctx), 0);
    assert_int_equal(pthread_create(&thread, NULL, eintr_serve, &r), 0);
    c = vfu_client_connect(sock);
    assert_non_null(c);
    assert_int_equal(vfu_client_negotiate(c, NULL), 0);
    assert_true(server_alive(c));
    while (r.stage != 1) {
        usleep(1000);
    }
    while (r.stage != 2) {              /* until one lands in the wait */
        assert_int_equal(pthread_kill(thread, SIGUSR1), 0);
        usleep(10000);
    }
    assert_int_equal(r.ret1, -1);
    assert_int_equal(r.errno1, EINTR);
    assert_true(server_alive(c));       /* served by the second call */
    vfu_client_close(c);
    pthread_join(thread, NULL);
    assert_int_equal(r.ret2, -1);
    assert_int_equal(r.errno2, ENOTCONN);
    vfu_destroy_ctx(r.ctx);
    sigaction(SIGUSR1, &old, NULL);
    rmdir(dir);
}

struct creator {
    const char *path;
    vfu_ctx_t *ctx;
};

static void *
create_ctx(void *arg)
{
    struct creator *cr = arg;
    cr->ctx = vfu_create_ctx(VFU_TRANS_SOCK, cr->path, 0, NULL,
                             VFU_DEV_TYPE_PCI);
    return NULL;
}

/*
 * The socket path appears only once it accepts connections: a client that
 * connects the moment it sees the file (a script starting the VMM) is
 * never refused.
 */
static void
test_path_appears_listening(void **state)
{
    char dir[] = "/tmp/vfu-ap.XXXXXX";
    char path[64];
    int refused = 0;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s", dir);
    for (int i = 0; i < 300; i++) {
        struct creator cr = { .path = path };
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        pthread_t t;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        strcpy(addr.sun_path, path);
        assert_int_equal(pthread_create(&t, NULL, create_ctx, &cr), 0);
        while (access(path, F_OK) != 0) {
            /* spin: connect the moment it appears */
        }
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            refused++;
        }
        pthread_join(t, NULL);
        assert_non_null(cr.ctx);
        close(fd);
        vfu_destroy_ctx(cr.ctx);
    }
    assert_int_equal(refused, 0);
    /* Nothing is left beside it. */
    assert_int_equal(rmdir(dir), 0);
}

/* Writes all of @len bytes, or fails the test. */
static void
write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads one message from a pipe: its header, and its payload into @buf. */
static size_t
read_msg(int fd, struct vfio_user_header *hdr, void *buf, size_t cap)
{
    size_t got = 0, len;

    while (got < sizeof(*hdr)) {
        ssize_t n = read(fd, (uint8_t *)hdr + got, sizeof(*hdr) - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    len = hdr->msg_size - sizeof(*hdr);
    assert_true(len <= cap);
    for (got = 0; got < len;) {
        ssize_t n = read(fd, (uint8_t *)buf + got, len - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    return len;
}

/* The device side of test_pipe_transport, in a child process. */
static int
pipe_device(void)
{
    vfu_ctx_t *ctx = vfu_create_ctx(VFU_TRANS_PIPE, NULL, 0, NULL,
                                    VFU_DEV_TYPE_PCI);
    if (ctx == NULL || vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, 0, 0) < 0) {
        return 10;
    }
    vfu_pci_set_id(ctx, 0x1af4, 0x4242, 0, 0);
    if (vfu_realize_ctx(ctx) < 0 || vfu_attach_ctx(ctx) < 0) {
        return 11;
    }
    if (vfu_get_poll_fd(ctx) != STDIN_FILENO) {
        return 12;
    }
    while (vfu_run_ctx(ctx) >= 0) {
    }
    if (errno != ENOTCONN) {
        return 13;
    }
    /* A pipe has one client: it does not come back. */
    if (vfu_attach_ctx(ctx) == 0 || errno != ENOTCONN) {
        return 14;
    }
    vfu_destroy_ctx(ctx);
    return 0;
}

/*
 * VFU_TRANS_PIPE: the device talks over its standard input and output,
 * here two pipes to a child process: negotiation, a request, a refused
 * request, and the client leaving.
 */
static void
test_pipe_transport(void **state)
{
    int to_dev[2], from_dev[2], status;
    const char json[] = "{\"capabilities\":{\"max_msg_fds\":0}}";
    uint8_t buf[512];
    struct vfio_user_header h = { .msg_id = 1, .cmd = VFIO_USER_VERSION };
    struct vfio_user_version ver = { .major = 0, .minor = 0 };
    struct vfio_user_region_access rd = {
        .offset = 0, .region = VFU_PCI_DEV_CFG_REGION_IDX, .count = 4 };
    uint32_t ids;
    pid_t pid;
    (void)state;

    assert_int_equal(pipe(to_dev), 0);
    assert_int_equal(pipe(from_dev), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(to_dev[0], STDIN_FILENO);
        dup2(from_dev[1], STDOUT_FILENO);
        close(to_dev[0]); close(to_dev[1]);
        close(from_dev[0]); close(from_dev[1]);
        _exit(pipe_device());
    }
    close(to_dev[0]);
    close(from_dev[1]);

    h.msg_size = sizeof(h) + sizeof(ver) + sizeof(json);
    write_all(to_dev[1], &h, sizeof(h));
    write_all(to_dev[1], &ver, sizeof(ver));
    write_all(to_dev[1], json, sizeof(json));
    assert_true(read_msg(from_dev[0], &h, buf, sizeof(buf)) > sizeof(ver));
    assert_int_equal(h.msg_id, 1);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);

    h = (struct vfio_user_header){ .msg_id = 2, .cmd = VFIO_USER_REGION_READ,
                                   .msg_size = sizeof(h) + sizeof(rd) };
    write_all(to_dev[1], &h, sizeof(h));
    write_all(to_dev[1], &rd, sizeof(rd));
    assert_int_equal(read_msg(from_dev[0], &h, buf, sizeof(buf)),
                     sizeof(rd) + 4);
    assert_int_equal(h.msg_id, 2);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    memcpy(&ids, buf + sizeof(rd), 4);
    assert_int_equal(ids, 0x1af4 | (0x4242u << 16));

    /* A bad request is answered, and the device keeps serving. */
    h = (struct vfio_user_header){ .msg_id = 3, .cmd = 0x7777,
                                   .msg_size = sizeof(h) };
    write_all(to_dev[1], &h, sizeof(h));
    read_msg(from_dev[0], &h, buf, sizeof(buf));
    assert_int_equal(h.msg_id, 3);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(h.error_no, ENOSYS);

    close(to_dev[1]);                   /* the client leaves */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(from_dev[0]);
}

/* An empty path: a device that only builds config space; no client comes. */
static void
test_config_only_device(void **state)
{
    vfu_ctx_t *ctx = vfu_create_ctx(VFU_TRANS_SOCK, "", 0, NULL,
                                    VFU_DEV_TYPE_PCI);
    int fds = count_open_fds();
    (void)state;

    assert_non_null(ctx);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, 0, 0), 0);
    vfu_pci_set_id(ctx, 0x8086, 0x1234, 0, 0);
    assert_int_equal(vfu_realize_ctx(ctx), 0);
    assert_int_equal(vfu_pci_get_config_space(ctx)->hdr.id.vid, 0x8086);
    assert_int_equal(vfu_get_poll_fd(ctx), -1);
    assert_int_equal(vfu_attach_ctx(ctx), -1);
    assert_int_equal(errno, ENOTCONN);
    vfu_destroy_ctx(ctx);
    assert_int_equal(count_open_fds(), fds);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation_reply),
        cmocka_unit_test(test_negotiation_rejects),
        cmocka_unit_test(test_negotiation_lowers_only),
        cmocka_unit_test(test_version_too_big),
        cmocka_unit_test(test_other_command_first),
        cmocka_unit_test(test_disconnect_and_reconnect),
        cmocka_unit_test(test_nonblocking),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_setup_region_checks),
        cmocka_unit_test(test_pipe_transport),
        cmocka_unit_test(test_config_only_device),
        cmocka_unit_test(test_run_interrupted),
        cmocka_unit_test(test_path_appears_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
