/*
 * libvfio-user-client against a hostile server: every reply is checked.
 *
 * The server is the test: it accepts the client's connection and writes
 * replies ahead of the calls (the client numbers its requests 0, 1, 2...),
 * or says nothing, or keeps the client busy from a thread. Each broken
 * reply must fail its call with the errno the header documents (EPROTO
 * for a reply that breaks a rule), close every fd it brought, and leave
 * the client usable: the next request, answered properly, succeeds. A
 * server that does not answer costs a call its timeout (ETIMEDOUT), and
 * its late reply is dropped rather than taken for the next one's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user-client.h"

#define HDR sizeof(struct vfio_user_header)

struct fx {
    char dir[64];
    char sock[96];
    int listen_fd;
    int srv;                    /* our end of the connection */
    vfu_client_t *c;
    uint16_t next_id;           /* the id of the client's next request */
    int fds_before;
};

static int
count_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++) {
        n += fcntl(fd, F_GETFD) >= 0;
    }
    return n;
}

/* A message from the server, with @nr fds (eventfds made here). */
static void
server_send(struct fx *f, uint16_t id, uint16_t cmd, uint32_t flags,
            uint32_t err, const void *payload, size_t len, int nr_fds)
{
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct vfio_user_header hdr = {
        .msg_id = id, .cmd = cmd, .flags = flags, .error_no = err,
        .msg_size = (uint32_t)(HDR + len),
    };
    struct iovec iov[2] = { { &hdr, HDR }, { (void *)payload, len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
    int fds[8];

    if (nr_fds > 0) {
        struct cmsghdr *c;

        for (int i = 0; i < nr_fds; i++) {
            fds[i] = eventfd(0, EFD_CLOEXEC);
        }
        memset(ctl.buf, 0, sizeof(ctl.buf));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nr_fds * sizeof(int));
    }
    assert_int_equal(sendmsg(f->srv, &mh, MSG_NOSIGNAL),
                     (ssize_t)(HDR + len));
    for (int i = 0; i < nr_fds; i++) {
        close(fds[i]);
    }
}

/* The reply to the client's next request. */
static void
reply(struct fx *f, uint16_t cmd, const void *payload, size_t len, int nr_fds)
{
    server_send(f, f->next_id, cmd, VFIO_USER_F_TYPE_REPLY, 0, payload, len,
                nr_fds);
}

/* Reads and drops what the client sent. */
static void
drain(struct fx *f)
{
    char buf[65536];

    while (recv(f->srv, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

/* The client made a request: the next one has the next id. */
static void
sent(struct fx *f)
{
    f->next_id++;
    drain(f);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    const char caps[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
    uint8_t ver[4 + sizeof(caps)] = { 0 };

    assert_non_null(f);
    f->fds_before = count_fds();
    strcpy(f->dir, "/tmp/vfu-strict-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/sock", f->dir);
    strcpy(addr.sun_path, f->sock);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr,
                          sizeof(addr)), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    f->c = vfu_client_connect(f->sock);
    assert_non_null(f->c);
    f->srv = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(f->srv >= 0);
    memcpy(ver + 4, caps, sizeof(caps));
    reply(f, VFIO_USER_VERSION, ver, sizeof(ver), 0);
    assert_int_equal(vfu_client_negotiate(f->c, NULL), 0);
    sent(f);
    assert_int_equal(vfu_client_set_timeout(f->c, 200), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    vfu_client_close(f->c);
    close(f->srv);
    close(f->listen_fd);
    unlink(f->sock);
    rmdir(f->dir);
    /* Every fd any reply brought was closed. */
    assert_int_equal(count_fds(), f->fds_before);
    free(f);
    return 0;
}

/* The client still works: a device info request answered properly. */
static void
still_usable(struct fx *f)
{
    struct vfio_user_device_info di = { .argsz = sizeof(di), .num_regions = 9 };
    struct vfio_user_device_info got;

    reply(f, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), 0);
    assert_int_equal(vfu_client_device_info(f->c, &got), 0);
    sent(f);
    assert_int_equal(got.num_regions, 9);
}

#define EXPECT_FAIL(f, call, err) do {              \
        errno = 0;                                  \
        assert_int_equal((call), -1);               \
        assert_int_equal(errno, (err));             \
        sent(f);                                    \
        still_usable(f);                            \
    } while (0)

/* Replies that break the rules of every reply. */
static void
test_reply_header(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info di = { .argsz = sizeof(di) }, got;

    /* Another command's reply with our id. */
    reply(f, VFIO_USER_DEVICE_RESET, &di, sizeof(di), 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    /* Flags a reply does not have. */
    server_send(f, f->next_id, VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_NO_REPLY, 0, &di,
                sizeof(di), 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    server_send(f, f->next_id, VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_REPLY | 0x100, 0, &di, sizeof(di), 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    /* An errno no errno is: EIO, not an overflow. */
    server_send(f, f->next_id, VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR, 0x80000000u, NULL,
                0, 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EIO);
    server_send(f, f->next_id, VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR, 0, NULL, 0, 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EIO);
    server_send(f, f->next_id, VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR, ENODEV, NULL, 0, 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), ENODEV);
    /* Sizes: short, long; fds where none belong. */
    reply(f, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di) - 1, 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    {
        uint8_t longer[sizeof(di) + 4] = { 0 };
        memcpy(longer, &di, sizeof(di));
        reply(f, VFIO_USER_DEVICE_GET_INFO, longer, sizeof(longer), 0);
        EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    }
    reply(f, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), 2);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    di.argsz = 64;              /* more than it sent */
    reply(f, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
    /* A stray reply first (id ahead of ours), then ours: EPROTO. */
    server_send(f, (uint16_t)(f->next_id + 100), VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_REPLY, 0, NULL, 0, 0);
    di.argsz = sizeof(di);
    reply(f, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), 0);
    EXPECT_FAIL(f, vfu_client_device_info(f->c, &got), EPROTO);
}

/* Region accesses: the reply echoes the request and has its size. */
static void
test_region_access(void **state)
{
    struct fx *f = *state;
    struct vfio_user_region_access a = { .offset = 8, .region = 0,
                                         .count = 4 };
    uint8_t buf[sizeof(a) + 4] = { 0 };
    uint32_t v = 0;

    memcpy(buf, &a, sizeof(a));
    reply(f, VFIO_USER_REGION_READ, buf, sizeof(buf), 0);
    assert_int_equal(vfu_client_region_read(f->c, 0, 8, &v, 4), 0);
    sent(f);
    a.offset = 12;              /* another offset */
    memcpy(buf, &a, sizeof(a));
    reply(f, VFIO_USER_REGION_READ, buf, sizeof(buf), 0);
    EXPECT_FAIL(f, vfu_client_region_read(f->c, 0, 8, &v, 4), EPROTO);
    a.offset = 8;
    a.region = 1;               /* another region */
    memcpy(buf, &a, sizeof(a));
    reply(f, VFIO_USER_REGION_READ, buf, sizeof(buf), 0);
    EXPECT_FAIL(f, vfu_client_region_read(f->c, 0, 8, &v, 4), EPROTO);
    a.region = 0;
    memcpy(buf, &a, sizeof(a));
    reply(f, VFIO_USER_REGION_READ, buf, sizeof(buf) - 1, 0);
    EXPECT_FAIL(f, vfu_client_region_read(f->c, 0, 8, &v, 4), EPROTO);
    reply(f, VFIO_USER_REGION_READ, buf, sizeof(buf), 1);
    EXPECT_FAIL(f, vfu_client_region_read(f->c, 0, 8, &v, 4), EPROTO);

    /* A write's reply: the request's head, nothing more. */
    reply(f, VFIO_USER_REGION_WRITE, &a, sizeof(a), 0);
    assert_int_equal(vfu_client_region_write(f->c, 0, 8, &v, 4, false), 0);
    sent(f);
    reply(f, VFIO_USER_REGION_WRITE, buf, sizeof(buf), 0);
    EXPECT_FAIL(f, vfu_client_region_write(f->c, 0, 8, &v, 4, false), EPROTO);
    a.offset = 0;
    reply(f, VFIO_USER_REGION_WRITE, &a, sizeof(a), 0);
    EXPECT_FAIL(f, vfu_client_region_write(f->c, 0, 8, &v, 4, false), EPROTO);

    /* Replies without a payload have none. */
    reply(f, VFIO_USER_DEVICE_RESET, &a, 4, 0);
    EXPECT_FAIL(f, vfu_client_reset(f->c), EPROTO);
    reply(f, VFIO_USER_DEVICE_RESET, NULL, 0, 1);
    EXPECT_FAIL(f, vfu_client_reset(f->c), EPROTO);
    reply(f, VFIO_USER_DEVICE_SET_IRQS, NULL, 0, 1);
    EXPECT_FAIL(f, vfu_client_set_irqs(f->c, 0, VFIO_IRQ_SET_DATA_NONE |
                                       VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0,
                                       NULL, NULL), EPROTO);
    reply(f, VFIO_USER_DMA_MAP, &a, 8, 0);
    EXPECT_FAIL(f, vfu_client_dma_map(f->c, 0x10000, 4096, -1, 0, buf,
                                      VFIO_USER_F_DMA_REGION_READ), EPROTO);
}

/* Region info: index, size and capability chain checked, fd iff mappable. */
static void
test_region_info(void **state)
{
    struct fx *f = *state;
    /* The info, a sparse mmap capability and its areas, laid out by hand. */
    struct layout {
        struct vfio_region_info info;
        struct vfio_info_cap_header hdr;
        uint32_t nr_areas;
        uint32_t reserved;
        struct vfio_region_sparse_mmap_area areas[2];
    } r;
    struct vfio_region_info *out;
    int fd;

    memset(&r, 0, sizeof(r));
    r.info.argsz = sizeof(r);
    r.info.index = 2;
    r.info.size = 65536;
    r.info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP |
                   VFIO_REGION_INFO_FLAG_CAPS;
    r.info.cap_offset = sizeof(r.info);
    r.hdr.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
    r.hdr.version = 1;
    r.nr_areas = 2;
    r.areas[0] = (struct vfio_region_sparse_mmap_area){ 0, 4096 };
    r.areas[1] = (struct vfio_region_sparse_mmap_area){ 8192, 4096 };

    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    assert_int_equal(vfu_client_region_info(f->c, 2, &out, &fd), 0);
    sent(f);
    assert_true(fd >= 0);
    close(fd);
    free(out);

    /* No fd for a mappable region, an fd for one that is not, two fds. */
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 0);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 2);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    r.info.flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    r.info.flags |= VFIO_REGION_INFO_FLAG_MMAP;
    /* Another index; a payload shorter than argsz. */
    r.info.index = 3;
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    r.info.index = 2;
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r) - 8, 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    /* Capabilities outside the payload, looping, or too many areas. */
    r.info.cap_offset = sizeof(r) - 4;
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    r.info.cap_offset = sizeof(r.info);
    r.hdr.next = sizeof(r.info);
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    r.hdr.next = 0;
    r.nr_areas = 3;
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
    r.nr_areas = 2;
    r.areas[1].size = 65536;    /* past the region's end */
    reply(f, VFIO_USER_DEVICE_GET_REGION_INFO, &r, sizeof(r), 1);
    EXPECT_FAIL(f, vfu_client_region_info(f->c, 2, &out, &fd), EPROTO);
}

/* Negotiation: no fds, no twin socket, not above our minor. */
static void
test_version(void **state)
{
    struct fx *f = *state;
    const char twin[] = "{\"capabilities\":{\"twin_socket\":"
                        "{\"supported\":true}}}";
    uint8_t ver[4 + sizeof(twin)] = { 0 };

    memcpy(ver + 4, twin, sizeof(twin));
    reply(f, VFIO_USER_VERSION, ver, 4, 1);
    EXPECT_FAIL(f, vfu_client_negotiate(f->c, NULL), EPROTO);
    reply(f, VFIO_USER_VERSION, ver, sizeof(ver), 0);
    EXPECT_FAIL(f, vfu_client_negotiate(f->c, NULL), EPROTO);
    ver[2] = 1;                 /* minor 1 */
    reply(f, VFIO_USER_VERSION, ver, 4, 0);
    EXPECT_FAIL(f, vfu_client_negotiate(f->c, NULL), EPROTO);
    /* Asking for a twin socket is for the raw calls: refused unsent. */
    errno = 0;
    assert_int_equal(vfu_client_negotiate(f->c, twin), -1);
    assert_int_equal(errno, EINVAL);
    still_usable(f);
}

/* Migration features: exact sizes and the fields echoed. */
static void
test_migration(void **state)
{
    struct fx *f = *state;
    uint8_t buf[8 + 8] = { 0 };
    struct vfio_user_device_feature h = {
        .argsz = sizeof(buf),
        .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
    };
    uint64_t flags;
    uint32_t state32;

    memcpy(buf, &h, 8);
    reply(f, VFIO_USER_DEVICE_FEATURE, buf, sizeof(buf), 0);
    assert_int_equal(vfu_client_mig_flags(f->c, &flags), 0);
    sent(f);
    reply(f, VFIO_USER_DEVICE_FEATURE, buf, sizeof(buf), 1);
    EXPECT_FAIL(f, vfu_client_mig_flags(f->c, &flags), EPROTO);
    h.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE;
    memcpy(buf, &h, 8);
    reply(f, VFIO_USER_DEVICE_FEATURE, buf, sizeof(buf), 0);
    EXPECT_FAIL(f, vfu_client_mig_flags(f->c, &flags), EPROTO);
    /* A state change's reply is its request. */
    h.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE;
    memcpy(buf, &h, 8);
    state32 = VFIO_DEVICE_STATE_STOP;
    memcpy(buf + 8, &state32, 4);
    memset(buf + 12, 0xff, 4);
    reply(f, VFIO_USER_DEVICE_FEATURE, buf, sizeof(buf), 0);
    assert_int_equal(vfu_client_mig_state_set(f->c, VFIO_DEVICE_STATE_STOP),
                     0);
    sent(f);
    reply(f, VFIO_USER_DEVICE_FEATURE, buf, sizeof(buf), 0);
    EXPECT_FAIL(f, vfu_client_mig_state_set(f->c, VFIO_DEVICE_STATE_RUNNING),
                EPROTO);
    reply(f, VFIO_USER_MIG_DATA_WRITE, buf, 8, 0);
    EXPECT_FAIL(f, vfu_client_mig_write(f->c, buf, 8), EPROTO);
}

/*
 * A server that says nothing costs the call its timeout; its late reply
 * is then dropped, not taken for the next request's.
 */
static void
test_timeout(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info di = { .argsz = sizeof(di), .num_regions = 1 };
    struct vfio_user_device_info got;
    uint16_t late = f->next_id;

    errno = 0;
    assert_int_equal(vfu_client_device_info(f->c, &got), -1);
    assert_int_equal(errno, ETIMEDOUT);
    sent(f);
    server_send(f, late, VFIO_USER_DEVICE_GET_INFO, VFIO_USER_F_TYPE_REPLY, 0,
                &di, sizeof(di), 1);
    still_usable(f);

    /* Half a reply, then nothing: the rest arriving later is dropped too. */
    late = f->next_id;
    {
        struct vfio_user_header hdr = {
            .msg_id = late, .cmd = VFIO_USER_DEVICE_GET_INFO,
            .flags = VFIO_USER_F_TYPE_REPLY,
            .msg_size = (uint32_t)(HDR + sizeof(di)),
        };
        uint8_t msg[HDR + sizeof(di)];

        memcpy(msg, &hdr, HDR);
        memcpy(msg + HDR, &di, sizeof(di));
        assert_int_equal(write(f->srv, msg, 20), 20);
        errno = 0;
        assert_int_equal(vfu_client_device_info(f->c, &got), -1);
        assert_int_equal(errno, ETIMEDOUT);
        sent(f);
        assert_int_equal(write(f->srv, msg + 20, sizeof(msg) - 20),
                         (ssize_t)(sizeof(msg) - 20));
    }
    still_usable(f);
}

/*
 * The raw calls: a receive waits up to the timeout from when it is made,
 * however long ago the last request was.
 */
static void
test_raw_recv_after_idle(void **state)
{
    struct fx *f = *state;
    struct vfio_user_header hdr;
    uint8_t buf[16];

    still_usable(f);
    usleep(300 * 1000);         /* longer than the 200 ms timeout */
    server_send(f, 0x9000, VFIO_USER_DEVICE_GET_INFO,
                VFIO_USER_F_TYPE_COMMAND, 0, NULL, 0, 0);
    assert_int_equal(vfu_client_recv(f->c, &hdr, buf, sizeof(buf), NULL,
                                     NULL), 0);
    assert_int_equal(hdr.msg_id, 0x9000);
    /* And with nothing coming, it gives up after the timeout. */
    errno = 0;
    assert_int_equal(vfu_client_recv(f->c, &hdr, buf, sizeof(buf), NULL,
                                     NULL), -1);
    assert_int_equal(errno, ETIMEDOUT);
}

struct flood {
    struct fx *f;
    volatile bool stop;
};

/* Sends DMA requests (for memory the client never registered) until told. */
static void *
flood_thread(void *arg)
{
    struct flood *fl = arg;
    struct vfio_user_dma_rw rw = { .addr = 0x1000, .count = 8 };
    uint16_t id = 0x8000;

    while (!fl->stop) {
        struct vfio_user_header hdr = {
            .msg_id = id++, .cmd = VFIO_USER_DMA_READ,
            .flags = VFIO_USER_F_TYPE_COMMAND,
            .msg_size = (uint32_t)(HDR + sizeof(rw)),
        };
        uint8_t msg[HDR + sizeof(rw)];
        char junk[4096];

        memcpy(msg, &hdr, HDR);
        memcpy(msg + HDR, &rw, sizeof(rw));
        /* Never blocks: once the client gives up it stops reading. */
        if (send(fl->f->srv, msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
            errno != EAGAIN) {
            break;
        }
        while (recv(fl->f->srv, junk, sizeof(junk), MSG_DONTWAIT) > 0) {
        }
    }
    return NULL;
}

/* A server that keeps the client busy cannot hold a call past its timeout. */
static void
test_busy_server(void **state)
{
    struct fx *f = *state;
    struct flood fl = { .f = f };
    struct vfio_user_device_info got;
    struct vfu_client_stats st;
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, flood_thread, &fl), 0);
    errno = 0;
    assert_int_equal(vfu_client_device_info(f->c, &got), -1);
    assert_int_equal(errno, ETIMEDOUT);
    fl.stop = true;
    pthread_join(t, NULL);
    vfu_client_get_stats(f->c, &st);
    assert_true(st.dma_served > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reply_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_access, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_recv_after_idle, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
