/*
 * Functional tests of every request the server handles, through a real
 * client on a real UNIX socket (see harness.h for the test device):
 * DEVICE_GET_INFO, DEVICE_GET_REGION_INFO, REGION_READ, REGION_WRITE,
 * REGION_WRITE_MULTI (with and without NO_REPLY), DEVICE_RESET, and the
 * framing and dispatch faults. Every bad input checks the exact errno of the
 * error reply and that the server goes on serving.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define MiB             (1024u * 1024u)
#define HDR             sizeof(struct vfio_user_header)
#define ACC             sizeof(struct vfio_user_region_access)
#define MAX_XFER        VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE
/*
 * The largest message the server takes (lib/server/private.h, SERVER_RX_BUF_SIZE):
 * a REGION_WRITE of the transfer limit plus 64 KiB of slack.
 */
/* The largest request: a REGION_WRITE of max_data_xfer_size bytes. */
#define SERVER_MSG_LIMIT (HDR + ACC + MAX_XFER)

#define CFG_IDX         VFU_PCI_DEV_CFG_REGION_IDX
#define CFG_SIZE        256
#define IDS             ((uint32_t)DEV_VID | ((uint32_t)DEV_DID << 16))

#define R_FLAGS         VFIO_REGION_INFO_FLAG_READ
#define RW_FLAGS        (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)

/* BAR2's sparse capability: header, nr_areas, reserved, two areas. */
#define SPARSE_CAP_SIZE (sizeof(struct vfio_region_info_cap_sparse_mmap) + \
                         2 * sizeof(struct vfio_region_sparse_mmap_area))
#define BAR2_INFO_SIZE  (sizeof(struct vfio_region_info) + SPARSE_CAP_SIZE)

struct fx {
    struct test_dev *dev;
    vfu_client_t *c;
};

/* ------------------------------------------------------------------ */
/* Fixture                                                             */
/* ------------------------------------------------------------------ */

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    /* A server that fails to answer fails the test instead of hanging it. */
    struct timeval tv = { .tv_sec = 20 };

    assert_non_null(f);
    f->dev = dev_start(1);
    f->c = client_open(f->dev);
    assert_int_equal(setsockopt(vfu_client_fd(f->c), SOL_SOCKET, SO_RCVTIMEO,
                                &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(vfu_client_fd(f->c), SOL_SOCKET, SO_SNDTIMEO,
                                &tv, sizeof(tv)), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;

    vfu_client_close(f->c);
    dev_join(dev);
    /* The server served one client, until it hung up. */
    assert_int_equal(dev->nr_attaches, 1);
    assert_int_equal(dev->run_errno, ENOTCONN);
    assert_int_equal(dev->nr_resets[VFU_RESET_LOST_CONN], 1);
    dev_stop(dev);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Sends one raw message and receives the next one, which must be its reply:
 * same msg_id and command, type reply, msg_size matching, no payload when it
 * is an error. Returns the reply's errno (0 for success), or -1 when the
 * exchange itself went wrong. Reply payload and fds as in vfu_client_recv().
 */
static int
req_full(vfu_client_t *c, uint16_t cmd, uint32_t flags, const void *payload,
         size_t len, const int *fds, size_t nr_fds, void *reply, size_t cap,
         size_t *reply_len, int *reply_fds, size_t *nr_reply_fds)
{
    struct vfio_user_header hdr;
    uint16_t id;
    ssize_t n;

    if (vfu_client_send(c, cmd, flags, payload, len, fds, nr_fds, &id) < 0) {
        return -1;
    }
    memset(&hdr, 0, sizeof(hdr));
    n = vfu_client_recv(c, &hdr, reply, cap, reply_fds, nr_reply_fds);
    if (n < 0 || hdr.msg_id != id || hdr.cmd != cmd ||
        (hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY || !!(hdr.flags & VFIO_USER_F_NO_REPLY) ||
        (hdr.flags & ~(VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY | VFIO_USER_F_ERROR)) != 0 || hdr.msg_size != HDR + (size_t)n) {
        return -1;
    }
    if (!!(hdr.flags & VFIO_USER_F_ERROR) ? (n != 0 || hdr.error_no == 0) : hdr.error_no != 0) {
        return -1;
    }
    if (reply_len != NULL) {
        *reply_len = (size_t)n;
    }
    return !!(hdr.flags & VFIO_USER_F_ERROR) ? (int)hdr.error_no : 0;
}

static int
req(struct fx *f, uint16_t cmd, const void *payload, size_t len, void *reply,
    size_t cap, size_t *reply_len)
{
    return req_full(f->c, cmd, 0, payload, len, NULL, 0, reply, cap,
                    reply_len, NULL, NULL);
}

/* The command fails with exactly @err and the server still serves. */
#define EXPECT_ERR_FLAGS(f, cmd, flags, payload, len, err) do {             \
        assert_int_equal(req_full((f)->c, (cmd), (flags), (payload), (len), \
                                  NULL, 0, NULL, 0, NULL, NULL, NULL),      \
                         (err));                                            \
        assert_true(server_alive((f)->c));                                  \
    } while (0)
#define EXPECT_ERR(f, cmd, payload, len, err) \
    EXPECT_ERR_FLAGS(f, cmd, 0, payload, len, err)

/* A REGION_READ / REGION_WRITE payload: header then @dlen bytes of @data. */
static size_t
mk_access(void *buf, uint32_t region, uint64_t offset, uint32_t count,
          const void *data, size_t dlen)
{
    struct vfio_user_region_access a = {
        .offset = offset, .region = region, .count = count,
    };

    memcpy(buf, &a, sizeof(a));
    if (dlen > 0) {
        memcpy((uint8_t *)buf + sizeof(a), data, dlen);
    }
    return sizeof(a) + dlen;
}

#define EXPECT_READ_ERR(f, region, offset, count, err) do {                 \
        uint8_t m_[ACC];                                                    \
        size_t l_ = mk_access(m_, (region), (offset), (count), NULL, 0);    \
        EXPECT_ERR(f, VFIO_USER_REGION_READ, m_, l_, err);                  \
    } while (0)

/* A write whose count field matches the data sent. */
#define EXPECT_WRITE_ERR(f, region, offset, count, err) do {                \
        uint8_t m_[ACC + 64];                                               \
        uint8_t d_[64];                                                     \
        memset(d_, 0xee, sizeof(d_));                                       \
        assert_true((count) <= sizeof(d_));                                 \
        size_t l_ = mk_access(m_, (region), (offset), (count), d_, (count)); \
        EXPECT_ERR(f, VFIO_USER_REGION_WRITE, m_, l_, err);                 \
    } while (0)

static struct vfio_user_write_multi_data
wr(uint32_t region, uint64_t offset, uint32_t count, uint64_t val)
{
    struct vfio_user_write_multi_data w = {
        .offset = offset, .region = region, .count = count,
    };

    memcpy(w.data, &val, sizeof(val));
    return w;
}

/* A REGION_WRITE_MULTI payload of wr_cnt @wr_cnt and @nr entries. */
static size_t
mk_multi(void *buf, uint64_t wr_cnt, const struct vfio_user_write_multi_data *w,
         size_t nr)
{
    memcpy(buf, &wr_cnt, sizeof(wr_cnt));
    memcpy((uint8_t *)buf + sizeof(wr_cnt), w, nr * sizeof(*w));
    return sizeof(wr_cnt) + nr * sizeof(*w);
}

#define MULTI_BUF_SIZE (8 + (VFIO_USER_MULTI_MAX + 2) * 24)

static int
send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A raw header, exactly as given. */
static void
mk_hdr(void *buf, uint16_t id, uint16_t cmd, uint32_t msg_size, uint32_t flags)
{
    struct vfio_user_header h;

    memset(&h, 0, sizeof(h));
    h.msg_id = id;
    h.cmd = cmd;
    h.msg_size = msg_size;
    memcpy(&h.flags, &flags, sizeof(flags));
    memcpy(buf, &h, sizeof(h));
}

/*
 * The next message from the server must be the reply to a config read sent
 * now: whatever was sent before it got no reply.
 */
static void
assert_next_is_read_reply(vfu_client_t *c)
{
    uint8_t req_buf[ACC];
    uint8_t rep[ACC + 4];
    struct vfio_user_region_access head;
    struct vfio_user_header hdr;
    uint32_t ids;
    uint16_t id;

    mk_access(req_buf, CFG_IDX, 0, 4, NULL, 0);
    assert_int_equal(vfu_client_send(c, VFIO_USER_REGION_READ, 0, req_buf,
                                     sizeof(req_buf), NULL, 0, &id), 0);
    memset(&hdr, 0, sizeof(hdr));
    assert_int_equal(vfu_client_recv(c, &hdr, rep, sizeof(rep), NULL, NULL),
                     sizeof(rep));
    assert_int_equal(hdr.msg_id, id);
    assert_int_equal(hdr.cmd, VFIO_USER_REGION_READ);
    assert_int_equal((hdr.flags & VFIO_USER_F_TYPE_MASK), VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(!!(hdr.flags & VFIO_USER_F_ERROR), 0);
    memcpy(&head, rep, sizeof(head));
    assert_int_equal(head.region, CFG_IDX);
    assert_int_equal(head.offset, 0);
    assert_int_equal(head.count, 4);
    memcpy(&ids, rep + ACC, sizeof(ids));
    assert_int_equal(ids, IDS);
}

/* Writes raw bytes from a thread, so a big message cannot block the test. */
struct writer {
    pthread_t thread;
    int fd;
    const uint8_t *buf;
    size_t len;
    int ret;
};

static void *
writer_main(void *arg)
{
    struct writer *w = arg;

    w->ret = send_all(w->fd, w->buf, w->len);
    return NULL;
}

static void
writer_start(struct writer *w, int fd, const uint8_t *buf, size_t len)
{
    w->fd = fd;
    w->buf = buf;
    w->len = len;
    w->ret = -1;
    assert_int_equal(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

static void
writer_join(struct writer *w)
{
    assert_int_equal(pthread_join(w->thread, NULL), 0);
    assert_int_equal(w->ret, 0);
}

/*
 * A message of @size bytes (header included) with header @id/@cmd/@flags,
 * whose payload is a run of well-formed DEVICE_GET_INFO commands: if the
 * server ever parsed inside the payload, it would answer them.
 */
static uint8_t *
mk_big_msg(size_t size, uint16_t id, uint16_t cmd, uint32_t flags)
{
    uint8_t *buf = malloc(size);
    uint8_t inner[HDR + sizeof(struct vfio_user_device_info)];
    struct vfio_user_device_info info = { .argsz = sizeof(info) };
    size_t off;

    assert_non_null(buf);
    mk_hdr(inner, 0xdead, VFIO_USER_DEVICE_GET_INFO, sizeof(inner), 0);
    memcpy(inner + HDR, &info, sizeof(info));
    for (off = HDR; off < size; off += sizeof(inner)) {
        size_t n = size - off < sizeof(inner) ? size - off : sizeof(inner);
        memcpy(buf + off, inner, n);
    }
    mk_hdr(buf, id, cmd, (uint32_t)size, flags);
    return buf;
}

/* Receives the next message; it must be an error reply to @id/@cmd. */
static int
recv_error(vfu_client_t *c, uint16_t id, uint16_t cmd)
{
    struct vfio_user_header hdr;
    ssize_t n;

    memset(&hdr, 0, sizeof(hdr));
    n = vfu_client_recv(c, &hdr, NULL, 0, NULL, NULL);
    if (n != 0 || hdr.msg_id != id || hdr.cmd != cmd ||
        (hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY || !(hdr.flags & VFIO_USER_F_ERROR) ||
        hdr.msg_size != HDR) {
        return -1;
    }
    return (int)hdr.error_no;
}

/* Sends @len bytes with @nr fds in one sendmsg(). */
static void
send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t nr)
{
    union {
        char buf[CMSG_SPACE(64 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
    struct msghdr mh = { 0 };
    struct cmsghdr *cm;

    assert_true(nr <= 64);
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = CMSG_SPACE(nr * sizeof(int));
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nr * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nr * sizeof(int));
    assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static bool
all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* DEVICE_GET_INFO                                                     */
/* ------------------------------------------------------------------ */

static void
test_device_info(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info info, in = { .argsz = 64 };
    size_t len = 0;

    memset(&info, 0xff, sizeof(info));
    assert_int_equal(vfu_client_device_info(f->c, &info), 0);
    assert_int_equal(info.argsz, sizeof(info));
    assert_int_equal(info.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    assert_int_equal(info.num_regions, VFU_PCI_DEV_NUM_REGIONS);
    assert_int_equal(info.num_irqs, VFIO_PCI_NUM_IRQS);

    /* A bigger argsz gets the same 16-byte answer. */
    memset(&info, 0xff, sizeof(info));
    assert_int_equal(req(f, VFIO_USER_DEVICE_GET_INFO, &in, sizeof(in), &info,
                         sizeof(info), &len), 0);
    assert_int_equal(len, sizeof(info));
    assert_int_equal(info.argsz, sizeof(info));
    assert_int_equal(info.flags, VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    assert_int_equal(info.num_regions, VFU_PCI_DEV_NUM_REGIONS);
    assert_int_equal(info.num_irqs, VFIO_PCI_NUM_IRQS);
}

static void
test_device_info_bad(void **state)
{
    struct fx *f = *state;
    uint8_t buf[32];
    struct vfio_user_device_info in = { .argsz = sizeof(in) };

    memset(buf, 0, sizeof(buf));
    memcpy(buf, &in, sizeof(in));
    /* Short, empty and oversized payloads. */
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, buf, 8, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, buf, sizeof(in) - 1, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, buf, sizeof(in) + 4, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, buf, sizeof(buf), EINVAL);
    /* argsz smaller than the structure. */
    for (uint32_t argsz = 0; argsz < sizeof(in); argsz += 5) {
        in.argsz = argsz;
        EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, &in, sizeof(in), EINVAL);
    }
    in.argsz = sizeof(in) - 1;
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_INFO, &in, sizeof(in), EINVAL);
}

/* fds nobody asked for are closed by the server, whatever the outcome. */
static void
test_unexpected_fds(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info in = { .argsz = sizeof(in) }, out;
    uint8_t msg[HDR + sizeof(in)];
    int before = count_open_fds();
    int efd[3];
    int many[20];
    size_t len = 0;

    for (int i = 0; i < 3; i++) {
        efd[i] = eventfd(0, EFD_CLOEXEC);
        assert_true(efd[i] >= 0);
    }

    /* The handler takes no fds; it serves the request and they are closed. */
    memset(&out, 0, sizeof(out));
    assert_int_equal(req_full(f->c, VFIO_USER_DEVICE_GET_INFO, 0, &in,
                              sizeof(in), efd, 3, &out, sizeof(out), &len,
                              NULL, NULL), 0);
    assert_int_equal(len, sizeof(out));
    assert_int_equal(out.num_regions, VFU_PCI_DEV_NUM_REGIONS);

    /* With a request that fails, at dispatch and in a handler. */
    assert_int_equal(req_full(f->c, 200, 0, NULL, 0, efd, 3, NULL, 0, NULL,
                              NULL, NULL), ENOSYS);
    assert_int_equal(req_full(f->c, VFIO_USER_DEVICE_GET_INFO, 0, &in, 4,
                              efd, 3, NULL, 0, NULL, NULL, NULL), EINVAL);
    /* With a posted request (no reply). */
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_GET_INFO,
                                     VFIO_USER_F_NO_REPLY, &in, sizeof(in),
                                     efd, 3, NULL), 0);
    assert_next_is_read_reply(f->c);

    /*
     * More fds than the server takes (16): the kernel truncates them, the
     * server refuses the message and nothing leaks.
     */
    for (int i = 0; i < 20; i++) {
        many[i] = efd[i % 3];
    }
    mk_hdr(msg, 0x5151, VFIO_USER_DEVICE_GET_INFO, sizeof(msg), 0);
    memcpy(msg + HDR, &in, sizeof(in));
    send_with_fds(vfu_client_fd(f->c), msg, sizeof(msg), many, 20);
    assert_int_equal(recv_error(f->c, 0x5151, VFIO_USER_DEVICE_GET_INFO),
                     EINVAL);
    assert_true(server_alive(f->c));

    for (int i = 0; i < 3; i++) {
        close(efd[i]);
    }
    assert_int_equal(count_open_fds(), before);
}

/* ------------------------------------------------------------------ */
/* DEVICE_GET_REGION_INFO                                              */
/* ------------------------------------------------------------------ */

static void
test_region_info(void **state)
{
    struct fx *f = *state;
    static const struct {
        uint32_t index;
        uint64_t size;
        uint32_t flags;
    } want[] = {
        { VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE, RW_FLAGS },
        { VFU_PCI_DEV_BAR1_REGION_IDX, BAR1_SIZE, RW_FLAGS },
        { VFU_PCI_DEV_BAR3_REGION_IDX, 0, 0 },  /* BAR2's upper half */
        { VFU_PCI_DEV_BAR4_REGION_IDX, BAR4_SIZE, RW_FLAGS },
        { VFU_PCI_DEV_BAR5_REGION_IDX, 0, 0 },
        { VFU_PCI_DEV_ROM_REGION_IDX, ROM_SIZE, R_FLAGS },
        { VFU_PCI_DEV_CFG_REGION_IDX, CFG_SIZE, RW_FLAGS },
        { VFU_PCI_DEV_VGA_REGION_IDX, 0, 0 },
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct vfio_region_info *info = NULL;
        int fd = -2;

        print_message("region %u\n", want[i].index);
        assert_int_equal(vfu_client_region_info(f->c, want[i].index, &info,
                                                &fd), 0);
        assert_non_null(info);
        assert_int_equal(fd, -1);
        assert_int_equal(info->argsz, sizeof(*info));
        assert_int_equal(info->index, want[i].index);
        assert_int_equal(info->flags, want[i].flags);
        assert_int_equal(info->size, want[i].size);
        assert_int_equal(info->cap_offset, 0);
        assert_int_equal(info->offset, 0);
        free(info);
    }
}

/* BAR2: sparse mmap capability, and an fd that maps the region's memory. */
static void
test_region_info_sparse_mmap(void **state)
{
    struct fx *f = *state;
    struct vfio_region_info *info = NULL;
    struct vfio_region_info_cap_sparse_mmap *sparse;
    uint8_t *map0, *map1;
    uint8_t buf[16];
    int fd = -1;
    int before = count_open_fds();

    assert_int_equal(vfu_client_region_info(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                            &info, &fd), 0);
    assert_non_null(info);
    assert_true(fd >= 0);
    assert_int_equal(info->argsz, BAR2_INFO_SIZE);
    assert_int_equal(info->index, VFU_PCI_DEV_BAR2_REGION_IDX);
    assert_int_equal(info->flags, RW_FLAGS | VFIO_REGION_INFO_FLAG_MMAP |
                                  VFIO_REGION_INFO_FLAG_CAPS);
    assert_int_equal(info->size, BAR2_SIZE);
    assert_int_equal(info->offset, 0);
    assert_int_equal(info->cap_offset, sizeof(*info));

    sparse = (void *)((uint8_t *)info + info->cap_offset);
    assert_int_equal(sparse->header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
    assert_int_equal(sparse->header.version, 1);
    assert_int_equal(sparse->header.next, 0);
    assert_int_equal(sparse->nr_areas, 2);
    assert_int_equal(sparse->reserved, 0);
    assert_int_equal(sparse->areas[0].offset, 0);
    assert_int_equal(sparse->areas[0].size, 4096);
    assert_int_equal(sparse->areas[1].offset, 8192);
    assert_int_equal(sparse->areas[1].size, 4096);

    /* The fd maps the region: both areas, at info->offset + area offset. */
    map0 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                (off_t)(info->offset + sparse->areas[0].offset));
    assert_true(map0 != MAP_FAILED);
    map1 = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                (off_t)(info->offset + sparse->areas[1].offset));
    assert_true(map1 != MAP_FAILED);

    /* REGION_WRITE lands in the mapping... */
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                             16, "abcdefgh", 8, false), 0);
    assert_memory_equal(map0 + 16, "abcdefgh", 8);
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                             8192 + 100, "hello", 5, false), 0);
    assert_memory_equal(map1 + 100, "hello", 5);

    /* ...and what is stored through the mapping reads back by REGION_READ. */
    memcpy(map1 + 4000, "mmapped!", 8);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                            8192 + 4000, buf, 8), 0);
    assert_memory_equal(buf, "mmapped!", 8);

    /* Outside the sparse areas the region is still reachable by messages. */
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                             4096 + 8, "outside", 7, false), 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(pread(f->dev->bar2_fd, buf, 7, 4096 + 8), 7);
    assert_memory_equal(buf, "outside", 7);

    assert_int_equal(munmap(map0, 4096), 0);
    assert_int_equal(munmap(map1, 4096), 0);
    close(fd);
    free(info);
    assert_int_equal(count_open_fds(), before);
}

/*
 * A client whose argsz is too small for the capabilities gets the 32-byte
 * structure with argsz set to what it needs, and no fd; it then asks again.
 */
static void
test_region_info_argsz_requery(void **state)
{
    struct fx *f = *state;
    struct vfio_region_info in = { .index = VFU_PCI_DEV_BAR2_REGION_IDX };
    struct vfio_region_info head;
    uint8_t out[4096];
    const uint32_t argszs[] = { sizeof(in), BAR2_INFO_SIZE - 1 };
    int fds[4];
    size_t nr, len;

    for (size_t i = 0; i < 2; i++) {
        in.argsz = argszs[i];
        nr = 4;
        len = 0;
        memset(out, 0xff, sizeof(out));
        assert_int_equal(req_full(f->c, VFIO_USER_DEVICE_GET_REGION_INFO, 0,
                                  &in, sizeof(in), NULL, 0, out, sizeof(out),
                                  &len, fds, &nr), 0);
        assert_int_equal(len, sizeof(head));
        assert_int_equal(nr, 0);
        memcpy(&head, out, sizeof(head));
        assert_int_equal(head.argsz, BAR2_INFO_SIZE);
        assert_int_equal(head.index, VFU_PCI_DEV_BAR2_REGION_IDX);
        assert_int_equal(head.flags, RW_FLAGS | VFIO_REGION_INFO_FLAG_MMAP |
                                     VFIO_REGION_INFO_FLAG_CAPS);
        assert_int_equal(head.size, BAR2_SIZE);
        assert_int_equal(head.cap_offset, 0);
    }

    /* Exactly enough, and more than enough: the whole answer and the fd. */
    const uint32_t enough[] = { BAR2_INFO_SIZE, 4096 };
    for (size_t i = 0; i < 2; i++) {
        struct vfio_region_info_cap_sparse_mmap sparse;

        in.argsz = enough[i];
        nr = 4;
        len = 0;
        assert_int_equal(req_full(f->c, VFIO_USER_DEVICE_GET_REGION_INFO, 0,
                                  &in, sizeof(in), NULL, 0, out, sizeof(out),
                                  &len, fds, &nr), 0);
        assert_int_equal(len, BAR2_INFO_SIZE);
        assert_int_equal(nr, 1);
        assert_true(fds[0] >= 0);
        close(fds[0]);
        memcpy(&head, out, sizeof(head));
        assert_int_equal(head.argsz, BAR2_INFO_SIZE);
        assert_int_equal(head.cap_offset, sizeof(head));
        memcpy(&sparse, out + sizeof(head), sizeof(sparse));
        assert_int_equal(sparse.header.id, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
        assert_int_equal(sparse.nr_areas, 2);
    }

    /* A region without capabilities fits 32 bytes exactly. */
    in.index = VFU_PCI_DEV_BAR0_REGION_IDX;
    in.argsz = sizeof(in);
    nr = 4;
    assert_int_equal(req_full(f->c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &in,
                              sizeof(in), NULL, 0, out, sizeof(out), &len,
                              fds, &nr), 0);
    assert_int_equal(len, sizeof(head));
    assert_int_equal(nr, 0);
    memcpy(&head, out, sizeof(head));
    assert_int_equal(head.argsz, sizeof(head));
    assert_int_equal(head.size, BAR0_SIZE);
}

static void
test_region_info_bad(void **state)
{
    struct fx *f = *state;
    struct vfio_region_info in = { .argsz = sizeof(in) };
    struct vfio_region_info head;
    uint8_t buf[64];
    size_t len = 0;

    memset(buf, 0, sizeof(buf));
    memcpy(buf, &in, sizeof(in));
    /* Short payloads. */
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_REGION_INFO, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_REGION_INFO, buf, 16, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_REGION_INFO, buf, sizeof(in) - 1, EINVAL);
    /* argsz below the structure. */
    for (uint32_t argsz = 0; argsz < sizeof(in); argsz += 8) {
        in.argsz = argsz;
        EXPECT_ERR(f, VFIO_USER_DEVICE_GET_REGION_INFO, &in, sizeof(in), EINVAL);
    }
    in.argsz = sizeof(in) - 1;
    EXPECT_ERR(f, VFIO_USER_DEVICE_GET_REGION_INFO, &in, sizeof(in), EINVAL);
    /* Unknown regions. */
    in.argsz = sizeof(in);
    const uint32_t bad[] = { VFU_PCI_DEV_NUM_REGIONS, 10, 0x80000000u,
                             0xffffffffu };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in.index = bad[i];
        EXPECT_ERR(f, VFIO_USER_DEVICE_GET_REGION_INFO, &in, sizeof(in), EINVAL);
    }

    /*
     * Bytes after the structure are ignored: like the VFIO ioctl, the
     * request may come in a buffer of argsz bytes.
     */
    in.index = VFU_PCI_DEV_BAR1_REGION_IDX;
    in.argsz = sizeof(buf);
    memcpy(buf, &in, sizeof(in));
    memset(buf + sizeof(in), 0xab, sizeof(buf) - sizeof(in));
    assert_int_equal(req(f, VFIO_USER_DEVICE_GET_REGION_INFO, buf, sizeof(buf),
                         &head, sizeof(head), &len), 0);
    assert_int_equal(len, sizeof(head));
    assert_int_equal(head.argsz, sizeof(head));
    assert_int_equal(head.index, VFU_PCI_DEV_BAR1_REGION_IDX);
    assert_int_equal(head.size, BAR1_SIZE);
    assert_true(server_alive(f->c));
}

/* ------------------------------------------------------------------ */
/* REGION_READ                                                         */
/* ------------------------------------------------------------------ */

static void
test_region_read(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_region_access head;
    uint8_t buf[BAR0_SIZE];
    uint8_t msg[ACC], rep[ACC + 8];
    size_t len = 0;

    for (size_t i = 0; i < BAR0_SIZE; i++) {
        dev->bar0[i] = (uint8_t)(i * 7 + 3);
    }
    for (size_t i = 0; i < BAR1_SIZE; i++) {
        dev->bar1[i] = (uint8_t)(0xff - i);
    }

    memset(buf, 0, sizeof(buf));
    assert_int_equal(vfu_client_region_read(f->c, 0, 0x10, buf, 4), 0);
    assert_memory_equal(buf, dev->bar0 + 0x10, 4);
    assert_int_equal(vfu_client_region_read(f->c, 0, 0, buf, BAR0_SIZE), 0);
    assert_memory_equal(buf, dev->bar0, BAR0_SIZE);
    assert_int_equal(vfu_client_region_read(f->c, 0, BAR0_SIZE - 1, buf, 1), 0);
    assert_int_equal(buf[0], dev->bar0[BAR0_SIZE - 1]);

    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_BAR1_REGION_IDX,
                                            0, buf, BAR1_SIZE), 0);
    assert_memory_equal(buf, dev->bar1, BAR1_SIZE);

    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_ROM_REGION_IDX,
                                            0, buf, ROM_SIZE), 0);
    for (size_t i = 0; i < ROM_SIZE; i++) {
        assert_int_equal(buf[i], (uint8_t)(i ^ 0x5a));
    }

    /* BAR2 has no callback: it is read through its fd. */
    assert_int_equal(pwrite(dev->bar2_fd, "fromfile", 8, 0x3000), 8);
    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                            0x3000, buf, 8), 0);
    assert_memory_equal(buf, "fromfile", 8);
    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                            BAR2_SIZE - 8, buf, 8), 0);
    assert_true(all_zero(buf, 8));

    /* Config space: the ids at 0, the last byte. */
    assert_int_equal(vfu_client_region_read(f->c, CFG_IDX, 0, buf, 4), 0);
    assert_int_equal(buf[0] | buf[1] << 8, DEV_VID);
    assert_int_equal(buf[2] | buf[3] << 8, DEV_DID);
    assert_int_equal(vfu_client_region_read(f->c, CFG_IDX, CFG_SIZE - 1, buf,
                                            1), 0);

    /* The reply echoes offset, region and count, then the data. */
    mk_access(msg, VFU_PCI_DEV_BAR0_REGION_IDX, 0x100, 8, NULL, 0);
    assert_int_equal(req(f, VFIO_USER_REGION_READ, msg, sizeof(msg), rep,
                         sizeof(rep), &len), 0);
    assert_int_equal(len, ACC + 8);
    memcpy(&head, rep, sizeof(head));
    assert_int_equal(head.offset, 0x100);
    assert_int_equal(head.region, VFU_PCI_DEV_BAR0_REGION_IDX);
    assert_int_equal(head.count, 8);
    assert_memory_equal(rep + ACC, dev->bar0 + 0x100, 8);
}

static void
test_region_read_bad(void **state)
{
    struct fx *f = *state;
    uint8_t buf[ACC + 8];

    /* Payloads of the wrong size. */
    memset(buf, 0, sizeof(buf));
    mk_access(buf, VFU_PCI_DEV_BAR0_REGION_IDX, 0, 4, NULL, 0);
    EXPECT_ERR(f, VFIO_USER_REGION_READ, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_READ, buf, 8, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_READ, buf, ACC - 1, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_READ, buf, ACC + 1, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_READ, buf, ACC + 4, EINVAL);

    /* Unknown and absent regions. */
    EXPECT_READ_ERR(f, VFU_PCI_DEV_NUM_REGIONS, 0, 4, EINVAL);
    EXPECT_READ_ERR(f, 0xffffffffu, 0, 4, EINVAL);
    EXPECT_READ_ERR(f, VFU_PCI_DEV_BAR3_REGION_IDX, 0, 4, EINVAL);
    EXPECT_READ_ERR(f, VFU_PCI_DEV_BAR5_REGION_IDX, 0, 4, EINVAL);
    EXPECT_READ_ERR(f, VFU_PCI_DEV_VGA_REGION_IDX, 0, 4, EINVAL);

    /* Out of range, overflowing, empty. */
    EXPECT_READ_ERR(f, 0, BAR0_SIZE, 1, EINVAL);
    EXPECT_READ_ERR(f, 0, BAR0_SIZE - 3, 4, EINVAL);
    EXPECT_READ_ERR(f, 0, 0, BAR0_SIZE + 1, EINVAL);
    EXPECT_READ_ERR(f, 0, UINT64_MAX - 1, 4, EINVAL);
    EXPECT_READ_ERR(f, 0, UINT64_MAX, 1, EINVAL);
    EXPECT_READ_ERR(f, 0, UINT64_C(1) << 63, 4, EINVAL);
    /* Empty reads succeed, as with the original; the device is not asked. */
    EXPECT_READ_ERR(f, 0, 0, 0, 0);
    EXPECT_READ_ERR(f, 0, BAR0_SIZE, 0, 0);
    EXPECT_READ_ERR(f, 0, BAR0_SIZE + 1, 0, EINVAL);
    EXPECT_READ_ERR(f, CFG_IDX, 0, 0, 0);
    EXPECT_READ_ERR(f, CFG_IDX, CFG_SIZE, 1, EINVAL);
    EXPECT_READ_ERR(f, CFG_IDX, CFG_SIZE - 2, 4, EINVAL);
    EXPECT_READ_ERR(f, VFU_PCI_DEV_BAR4_REGION_IDX, BAR4_SIZE - 4, 8, EINVAL);

    /* More than the transfer limit, even where the region is big enough. */
    EXPECT_READ_ERR(f, VFU_PCI_DEV_BAR4_REGION_IDX, 0, MAX_XFER + 1, EINVAL);
    EXPECT_READ_ERR(f, VFU_PCI_DEV_BAR4_REGION_IDX, 0, 0xffffffffu, EINVAL);
    EXPECT_READ_ERR(f, 0, 0, 0xffffffffu, EINVAL);
}

/* ------------------------------------------------------------------ */
/* REGION_WRITE                                                        */
/* ------------------------------------------------------------------ */

static void
test_region_write(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_region_access head;
    uint8_t msg[ACC + 8], rep[64], buf[8];
    size_t len = 0;

    assert_int_equal(vfu_client_region_write(f->c, 0, 0x20, "12345678", 8,
                                             false), 0);
    assert_memory_equal(dev->bar0 + 0x20, "12345678", 8);
    assert_true(all_zero(dev->bar0, 0x20));
    assert_true(all_zero(dev->bar0 + 0x28, BAR0_SIZE - 0x28));
    assert_int_equal(dev->nr_bar0_writes, 1);

    assert_int_equal(vfu_client_region_write(f->c, 0, BAR0_SIZE - 1, "z", 1,
                                             false), 0);
    assert_int_equal(dev->bar0[BAR0_SIZE - 1], 'z');

    /* The reply echoes offset, region and count, without data. */
    mk_access(msg, 0, 0x30, 8, "abcdefgh", 8);
    memset(rep, 0xff, sizeof(rep));
    assert_int_equal(req(f, VFIO_USER_REGION_WRITE, msg, sizeof(msg), rep,
                         sizeof(rep), &len), 0);
    assert_int_equal(len, ACC);
    memcpy(&head, rep, sizeof(head));
    assert_int_equal(head.offset, 0x30);
    assert_int_equal(head.region, 0);
    assert_int_equal(head.count, 8);
    assert_memory_equal(dev->bar0 + 0x30, "abcdefgh", 8);
    assert_int_equal(dev->nr_bar0_writes, 3);

    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR1_REGION_IDX,
                                             BAR1_SIZE - 4, "wxyz", 4, false), 0);
    assert_memory_equal(dev->bar1 + BAR1_SIZE - 4, "wxyz", 4);

    /* BAR2 is written through its fd. */
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                             BAR2_SIZE - 8, "lastbyte", 8,
                                             false), 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(pread(dev->bar2_fd, buf, 8, BAR2_SIZE - 8), 8);
    assert_memory_equal(buf, "lastbyte", 8);

    /* Config space: the command register takes memory and bus master. */
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, got = 0;
    assert_int_equal(vfu_client_region_write(f->c, CFG_IDX, PCI_COMMAND, &cmd,
                                             2, false), 0);
    assert_int_equal(vfu_client_region_read(f->c, CFG_IDX, PCI_COMMAND, &got,
                                            2), 0);
    assert_int_equal(got, cmd);
    assert_int_equal(vfu_pci_get_config_space(dev->ctx)->hdr.cmd.mse, 1);
}

/* NO_REPLY writes are applied, in order, and never answered. */
static void
test_region_write_posted(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;

    assert_int_equal(vfu_client_region_write(f->c, 0, 0x40, "post", 4, true), 0);
    assert_int_equal(vfu_client_region_write(f->c, 0, 0x42, "ST", 2, true), 0);
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR1_REGION_IDX,
                                             8, "b1", 2, true), 0);
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                             0, "b2", 2, true), 0);
    assert_next_is_read_reply(f->c);
    assert_memory_equal(dev->bar0 + 0x40, "poST", 4);
    assert_memory_equal(dev->bar1 + 8, "b1", 2);
    assert_int_equal(dev->nr_bar0_writes, 2);

    uint8_t buf[2] = { 0 };
    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_BAR2_REGION_IDX,
                                            0, buf, 2), 0);
    assert_memory_equal(buf, "b2", 2);
}

static void
test_region_write_bad(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    uint8_t buf[ACC + 16];

    memset(buf, 0xee, sizeof(buf));
    /* Short payloads. */
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, buf, 8, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, buf, ACC - 1, EINVAL);

    /* count and data length disagree. */
    mk_access(buf, 0, 0, 8, "1234", 4);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, buf, ACC + 4, EINVAL);
    mk_access(buf, 0, 0, 4, "12345678", 8);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, buf, ACC + 8, EINVAL);
    mk_access(buf, 0, 0, 0, "1234", 4);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, buf, ACC + 4, EINVAL);
    mk_access(buf, 0, 0, 0xffffffffu, "1234", 4);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, buf, ACC + 4, EINVAL);

    /* Unknown and absent regions. */
    EXPECT_WRITE_ERR(f, VFU_PCI_DEV_NUM_REGIONS, 0, 4, EINVAL);
    EXPECT_WRITE_ERR(f, 0xffffffffu, 0, 4, EINVAL);
    EXPECT_WRITE_ERR(f, VFU_PCI_DEV_BAR3_REGION_IDX, 0, 4, EINVAL);
    EXPECT_WRITE_ERR(f, VFU_PCI_DEV_VGA_REGION_IDX, 0, 4, EINVAL);

    /* Out of range, overflowing, empty. */
    EXPECT_WRITE_ERR(f, 0, BAR0_SIZE, 1, EINVAL);
    EXPECT_WRITE_ERR(f, 0, BAR0_SIZE - 3, 4, EINVAL);
    EXPECT_WRITE_ERR(f, 0, UINT64_MAX - 1, 4, EINVAL);
    EXPECT_WRITE_ERR(f, 0, UINT64_MAX, 1, EINVAL);
    EXPECT_WRITE_ERR(f, 0, 0, 0, 0);               /* empty: succeeds */
    EXPECT_WRITE_ERR(f, 0, BAR0_SIZE + 1, 0, EINVAL);
    EXPECT_WRITE_ERR(f, CFG_IDX, CFG_SIZE - 2, 4, EINVAL);

    /* Nothing reached BAR0. */
    assert_true(all_zero(dev->bar0, BAR0_SIZE));
    assert_int_equal(dev->nr_bar0_writes, 0);

    /* The ROM is read-only. */
    EXPECT_WRITE_ERR(f, VFU_PCI_DEV_ROM_REGION_IDX, 0, 4, EACCES);
    EXPECT_WRITE_ERR(f, VFU_PCI_DEV_ROM_REGION_IDX, ROM_SIZE - 1, 1, EACCES);
    for (size_t i = 0; i < ROM_SIZE; i++) {
        assert_int_equal(dev->rom[i], (uint8_t)(i ^ 0x5a));
    }

    /* Read-only config space (the vendor id) refuses a change. */
    uint16_t vid = 0x1234;
    assert_int_equal(vfu_client_region_write(f->c, CFG_IDX, PCI_VENDOR_ID,
                                             &vid, 2, false), -1);
    assert_int_equal(errno, EPERM);
    assert_true(server_alive(f->c));
}

/* A write of more than the transfer limit is refused even if it fits. */
static void
test_region_write_too_big(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    size_t len = ACC + MAX_XFER + 1;
    uint8_t *msg = malloc(len);

    assert_non_null(msg);
    memset(msg, 0xab, len);
    mk_access(msg, VFU_PCI_DEV_BAR4_REGION_IDX, 0, MAX_XFER + 1, NULL, 0);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE, msg, len, EINVAL);
    assert_int_equal(dev->bar4[0], 0);
    assert_int_equal(dev->bar4[MAX_XFER], 0);

    /* The client library refuses it before sending. */
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR4_REGION_IDX,
                                             0, msg, MAX_XFER + 1, false), -1);
    assert_int_equal(errno, EINVAL);
    assert_true(server_alive(f->c));
    free(msg);
}

/* 1 MiB out and back, many times, posted or not. */
static void
test_region_write_big(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    uint8_t *out = malloc(MAX_XFER), *in = malloc(MAX_XFER);

    assert_non_null(out);
    assert_non_null(in);
    for (unsigned i = 0; i < 20; i++) {
        uint64_t off = (i % 2) * (uint64_t)MAX_XFER;
        bool posted = (i % 4) >= 2;

        for (size_t j = 0; j < MAX_XFER; j++) {
            out[j] = (uint8_t)(i * 31 + j * 7 + (j >> 12));
        }
        assert_int_equal(vfu_client_region_write(f->c,
                                                 VFU_PCI_DEV_BAR4_REGION_IDX,
                                                 off, out, MAX_XFER, posted), 0);
        memset(in, 0, MAX_XFER);
        assert_int_equal(vfu_client_region_read(f->c,
                                                VFU_PCI_DEV_BAR4_REGION_IDX,
                                                off, in, MAX_XFER), 0);
        assert_memory_equal(in, out, MAX_XFER);
        assert_memory_equal(dev->bar4 + off, out, MAX_XFER);
    }
    /* A big write ending at the last byte of BAR4. */
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR4_REGION_IDX,
                                             BAR4_SIZE - MAX_XFER, out,
                                             MAX_XFER, false), 0);
    assert_memory_equal(dev->bar4 + BAR4_SIZE - MAX_XFER, out, MAX_XFER);
    assert_true(server_alive(f->c));
    free(out);
    free(in);
}

/* A region callback's errno reaches the client. */
static void
test_callback_errno(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_write_multi_data w[2] = {
        wr(VFU_PCI_DEV_BAR1_REGION_IDX, 0, 4, 0x01020304),
        wr(0, 0, 4, 0x11223344),
    };
    uint8_t buf[4];

    dev->fail_bar0_errno = EBUSY;
    EXPECT_READ_ERR(f, 0, 0, 4, EBUSY);
    EXPECT_WRITE_ERR(f, 0, 0, 4, EBUSY);
    assert_int_equal(vfu_client_region_read(f->c, 0, 8, buf, 4), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(vfu_client_region_write_multi(f->c, w, 2, false), -1);
    assert_int_equal(errno, EBUSY);
    /* A posted write that fails is not answered either. */
    assert_int_equal(vfu_client_region_write(f->c, 0, 0, "xxxx", 4, true), 0);
    assert_next_is_read_reply(f->c);

    dev->fail_bar0_errno = ENODEV;
    EXPECT_READ_ERR(f, 0, 0, 4, ENODEV);

    dev->fail_bar0_errno = 0;
    assert_true(all_zero(dev->bar0, BAR0_SIZE));
    assert_int_equal(dev->nr_bar0_writes, 0);
    assert_int_equal(vfu_client_region_write(f->c, 0, 0, "okay", 4, false), 0);
    assert_memory_equal(dev->bar0, "okay", 4);
}

/* ------------------------------------------------------------------ */
/* REGION_WRITE_MULTI                                                  */
/* ------------------------------------------------------------------ */

static void
test_write_multi(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    uint16_t cmd = PCI_COMMAND_MEMORY, got = 0;
    struct vfio_user_write_multi_data w[VFIO_USER_MULTI_MAX] = {
        wr(0, 0, 4, 0x44332211),
        wr(0, 8, 8, UINT64_C(0x8877665544332211)),
        wr(VFU_PCI_DEV_BAR1_REGION_IDX, 3, 1, 0xaa),
        wr(VFU_PCI_DEV_BAR2_REGION_IDX, 0x100, 2, 0xbeef),
        wr(CFG_IDX, PCI_COMMAND, 2, cmd),
        wr(0, 2, 1, 0x99),              /* overwrites an earlier write */
    };
    uint8_t msg[MULTI_BUF_SIZE], buf[8];
    uint64_t done = 0;
    size_t len = 0;

    assert_int_equal(vfu_client_region_write_multi(f->c, w, 6, false), 6);
    assert_memory_equal(dev->bar0, "\x11\x22\x99\x44\0\0\0\0"
                                   "\x11\x22\x33\x44\x55\x66\x77\x88", 16);
    assert_true(all_zero(dev->bar0 + 16, BAR0_SIZE - 16));
    assert_int_equal(dev->nr_bar0_writes, 3);
    assert_int_equal(dev->bar1[3], 0xaa);
    assert_true(all_zero(dev->bar1, 3));
    assert_int_equal(pread(dev->bar2_fd, buf, 2, 0x100), 2);
    assert_memory_equal(buf, "\xef\xbe", 2);
    assert_int_equal(vfu_client_region_read(f->c, CFG_IDX, PCI_COMMAND, &got,
                                            2), 0);
    assert_int_equal(got, cmd);

    /* The reply is the wr_cnt. */
    len = mk_multi(msg, 1, w, 1);
    assert_int_equal(req(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, &done,
                         sizeof(done), &len), 0);
    assert_int_equal(len, sizeof(done));
    assert_int_equal(done, 1);

    /* The most writes one message may carry. */
    for (unsigned i = 0; i < VFIO_USER_MULTI_MAX; i++) {
        w[i] = wr(0, 1024 + i * 8, 8, UINT64_C(0x0101010101010101) * (i + 1));
    }
    assert_int_equal(vfu_client_region_write_multi(f->c, w,
                                                   VFIO_USER_MULTI_MAX, false),
                     VFIO_USER_MULTI_MAX);
    for (unsigned i = 0; i < VFIO_USER_MULTI_MAX; i++) {
        for (unsigned j = 0; j < 8; j++) {
            assert_int_equal(dev->bar0[1024 + i * 8 + j], (uint8_t)(i + 1));
        }
    }
}

static void
test_write_multi_posted(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_write_multi_data w[2] = {
        wr(0, 0x10, 4, 0x64636261),
        wr(VFU_PCI_DEV_BAR1_REGION_IDX, 0x20, 2, 0x7a79),
    };

    assert_int_equal(vfu_client_region_write_multi(f->c, w, 2, true), 2);
    assert_int_equal(vfu_client_region_write_multi(f->c, w, 1, true), 1);
    assert_next_is_read_reply(f->c);
    assert_memory_equal(dev->bar0 + 0x10, "abcd", 4);
    assert_memory_equal(dev->bar1 + 0x20, "yz", 2);
    assert_int_equal(dev->nr_bar0_writes, 2);
}

/* Sends a batch of two good BAR0 writes and @bad; expects @err, no change. */
#define EXPECT_MULTI_BATCH_ERR(f, bad, err) do {                            \
        struct vfio_user_write_multi_data b_[3] = {                         \
            wr(0, 0, 4, 0x11111111), wr(0, 8, 8, UINT64_MAX), (bad),        \
        };                                                                  \
        uint8_t m_[8 + sizeof(b_)];                                         \
        size_t l_ = mk_multi(m_, 3, b_, 3);                                 \
        EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, m_, l_, err);           \
        assert_true(all_zero((f)->dev->bar0, BAR0_SIZE));                   \
        assert_int_equal((f)->dev->nr_bar0_writes, 0);                      \
    } while (0)

static void
test_write_multi_bad(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_write_multi_data w[VFIO_USER_MULTI_MAX + 1];
    uint8_t msg[MULTI_BUF_SIZE];
    size_t len;

    for (unsigned i = 0; i < VFIO_USER_MULTI_MAX + 1; i++) {
        w[i] = wr(0, i * 8, 8, 0x0123456789abcdef);
    }

    /* Too short for wr_cnt. */
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, w, 4, EINVAL);
    /* wr_cnt 0, and one over the maximum. */
    len = mk_multi(msg, 0, w, 0);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    len = mk_multi(msg, 0, w, 1);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    len = mk_multi(msg, VFIO_USER_MULTI_MAX + 1, w, VFIO_USER_MULTI_MAX + 1);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    /* wr_cnt and the length disagree. */
    len = mk_multi(msg, 2, w, 3);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    len = mk_multi(msg, 3, w, 2);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    len = mk_multi(msg, 2, w, 2);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len + 1, EINVAL);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len - 1, EINVAL);
    /* A wr_cnt whose byte size would overflow. */
    len = mk_multi(msg, UINT64_MAX, w, 1);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    len = mk_multi(msg, (UINT64_MAX / 24) + 2, w, 1);
    EXPECT_ERR(f, VFIO_USER_REGION_WRITE_MULTI, msg, len, EINVAL);
    assert_true(all_zero(dev->bar0, BAR0_SIZE));
    assert_int_equal(dev->nr_bar0_writes, 0);

    /* One bad entry after good ones: none of the batch is applied. */
    EXPECT_MULTI_BATCH_ERR(f, wr(0, 16, 9, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(0, 16, 0xffffffffu, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(VFU_PCI_DEV_NUM_REGIONS, 0, 4, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(0xffffffffu, 0, 4, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(VFU_PCI_DEV_BAR3_REGION_IDX, 0, 4, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(0, BAR0_SIZE - 4, 8, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(0, BAR0_SIZE, 1, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(0, UINT64_MAX - 1, 4, 0), EINVAL);
    EXPECT_MULTI_BATCH_ERR(f, wr(VFU_PCI_DEV_ROM_REGION_IDX, 0, 4, 0), EACCES);
    /* Config space refusals are found before anything is written too. */
    EXPECT_MULTI_BATCH_ERR(f, wr(CFG_IDX, PCI_VENDOR_ID, 2, 0xbeef), EPERM);
    EXPECT_MULTI_BATCH_ERR(f, wr(CFG_IDX, 0x80, 4, 1), EINVAL);
    for (size_t i = 0; i < ROM_SIZE; i++) {
        assert_int_equal(dev->rom[i], (uint8_t)(i ^ 0x5a));
    }
}

/* ------------------------------------------------------------------ */
/* DEVICE_RESET                                                        */
/* ------------------------------------------------------------------ */

static void
test_reset(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, got = 0;
    size_t len = 99;

    assert_int_equal(vfu_client_region_write(f->c, CFG_IDX, PCI_COMMAND, &cmd,
                                             2, false), 0);
    assert_int_equal(vfu_client_region_read(f->c, CFG_IDX, PCI_COMMAND, &got,
                                            2), 0);
    assert_int_equal(got, cmd);

    assert_int_equal(vfu_client_reset(f->c), 0);
    assert_int_equal(dev->nr_resets[VFU_RESET_DEVICE], 1);
    assert_int_equal(dev->nr_resets[VFU_RESET_LOST_CONN], 0);
    assert_int_equal(dev->nr_resets[VFU_RESET_PCI_FLR], 0);
    /* The command register is cleared by a reset. */
    assert_int_equal(vfu_client_region_read(f->c, CFG_IDX, PCI_COMMAND, &got,
                                            2), 0);
    assert_int_equal(got, 0);

    /* The reply has no payload. */
    assert_int_equal(req(f, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(dev->nr_resets[VFU_RESET_DEVICE], 2);

    /* A payload is refused, and the device is not reset. */
    EXPECT_ERR(f, VFIO_USER_DEVICE_RESET, "abcd", 4, EINVAL);
    assert_int_equal(dev->nr_resets[VFU_RESET_DEVICE], 2);

    /* A posted reset resets, unanswered. */
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_RESET,
                                     VFIO_USER_F_NO_REPLY, NULL, 0, NULL, 0,
                                     NULL), 0);
    assert_next_is_read_reply(f->c);
    assert_int_equal(dev->nr_resets[VFU_RESET_DEVICE], 3);
    assert_int_equal(dev->nr_resets[VFU_RESET_LOST_CONN], 0);
}

/* ------------------------------------------------------------------ */
/* Dispatch faults                                                     */
/* ------------------------------------------------------------------ */

static void
test_unknown_command(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info in = { .argsz = sizeof(in) };
    const uint16_t cmds[] = {
        0, VFIO_USER_DMA_READ,
        VFIO_USER_DMA_WRITE, VFIO_USER_DIRTY_PAGES, VFIO_USER_MIG_DATA_READ,
        VFIO_USER_MIG_DATA_WRITE, VFIO_USER_MAX,
        200, 0xffff,
    };

    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        print_message("command %u\n", cmds[i]);
        EXPECT_ERR(f, cmds[i], NULL, 0, ENOSYS);
        EXPECT_ERR(f, cmds[i], &in, sizeof(in), ENOSYS);
    }
}

static void
test_version_after_negotiation(void **state)
{
    struct fx *f = *state;
    struct vfio_user_version ver = { .major = VFIO_USER_MAJOR_VER,
                                     .minor = VFIO_USER_MINOR_VER };
    uint8_t msg[sizeof(ver) + 3];

    memcpy(msg, &ver, sizeof(ver));
    memcpy(msg + sizeof(ver), "{}", 3);
    EXPECT_ERR(f, VFIO_USER_VERSION, msg, sizeof(msg), EINVAL);
    EXPECT_ERR(f, VFIO_USER_VERSION, &ver, sizeof(ver), EINVAL);
    EXPECT_ERR(f, VFIO_USER_VERSION, NULL, 0, EINVAL);
}

/* A reply, or a type that does not exist, where a command belongs. */
static void
test_not_a_command(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info in = { .argsz = sizeof(in) };
    const uint32_t types[] = { VFIO_USER_F_TYPE_REPLY, 2, 0xf };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EXPECT_ERR_FLAGS(f, VFIO_USER_DEVICE_GET_INFO, types[i], &in,
                         sizeof(in), EINVAL);
        EXPECT_ERR_FLAGS(f, VFIO_USER_DEVICE_RESET, types[i], NULL, 0, EINVAL);
    }
    assert_int_equal(f->dev->nr_resets[VFU_RESET_DEVICE], 0);
}

static void
test_reserved_flags(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_info in = { .argsz = sizeof(in) };
    const uint32_t flags[] = { VFIO_USER_F_ERROR, 0x40, 0x80, 0x100,
                               0x80000000u, 0xffffffc0u };

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        EXPECT_ERR_FLAGS(f, VFIO_USER_DEVICE_GET_INFO, flags[i], &in,
                         sizeof(in), EINVAL);
        EXPECT_ERR_FLAGS(f, VFIO_USER_DEVICE_RESET, flags[i], NULL, 0, EINVAL);
    }
    assert_int_equal(f->dev->nr_resets[VFU_RESET_DEVICE], 0);
}

/* msg_size below a header: the 16 bytes are the message; EINVAL. */
static void
test_msg_size_too_small(void **state)
{
    struct fx *f = *state;
    int sock = vfu_client_fd(f->c);
    const uint32_t sizes[] = { 0, 1, 8, HDR - 1 };
    uint8_t h[HDR];

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint16_t id = (uint16_t)(0x7700 + i);

        mk_hdr(h, id, VFIO_USER_DEVICE_GET_INFO, sizes[i], 0);
        assert_int_equal(send_all(sock, h, sizeof(h)), 0);
        assert_int_equal(recv_error(f->c, id, VFIO_USER_DEVICE_GET_INFO),
                         EINVAL);
        assert_true(server_alive(f->c));
    }

    /* Posted, it is dropped without an answer. */
    mk_hdr(h, 0x7800, VFIO_USER_REGION_WRITE, 4, VFIO_USER_F_NO_REPLY);
    assert_int_equal(send_all(sock, h, sizeof(h)), 0);
    assert_next_is_read_reply(f->c);
}

/*
 * A message bigger than the server takes: EINVAL as soon as its header is
 * seen, its bytes are skipped, and the next message is served.
 */
static void
test_msg_too_big(void **state)
{
    struct fx *f = *state;
    int sock = vfu_client_fd(f->c);
    size_t size = HDR + 2 * MiB;
    struct writer w;
    uint8_t *msg;

    msg = mk_big_msg(size, 0x4242, VFIO_USER_REGION_WRITE, 0);
    writer_start(&w, sock, msg, size);
    assert_int_equal(recv_error(f->c, 0x4242, VFIO_USER_REGION_WRITE), EINVAL);
    writer_join(&w);
    /* Nothing inside the skipped payload was taken for a message. */
    assert_next_is_read_reply(f->c);
    assert_true(server_alive(f->c));
    assert_true(all_zero(f->dev->bar4, BAR4_SIZE));
    free(msg);

    /* Just over the limit, and posted: skipped without an answer. */
    size = SERVER_MSG_LIMIT + 1;
    msg = mk_big_msg(size, 0x4343, VFIO_USER_DEVICE_GET_INFO,
                     VFIO_USER_F_NO_REPLY);
    writer_start(&w, sock, msg, size);
    writer_join(&w);
    assert_next_is_read_reply(f->c);
    free(msg);

    /* Just over the limit: EINVAL. At the limit: it is served (EINVAL). */
    msg = mk_big_msg(size, 0x4444, VFIO_USER_DEVICE_GET_INFO, 0);
    writer_start(&w, sock, msg, size);
    assert_int_equal(recv_error(f->c, 0x4444, VFIO_USER_DEVICE_GET_INFO),
                     EINVAL);
    writer_join(&w);
    mk_hdr(msg, 0x4545, VFIO_USER_DEVICE_GET_INFO, (uint32_t)(size - 1), 0);
    writer_start(&w, sock, msg, size - 1);
    assert_int_equal(recv_error(f->c, 0x4545, VFIO_USER_DEVICE_GET_INFO),
                     EINVAL);
    writer_join(&w);
    assert_next_is_read_reply(f->c);

    /*
     * Refused on the header: the answer comes before any of the body is
     * sent (a server that waited for it would never answer), then the
     * body is skipped as it arrives.
     */
    mk_hdr(msg, 0x4646, VFIO_USER_REGION_WRITE, (uint32_t)size, 0);
    assert_int_equal(send(sock, msg, HDR, MSG_NOSIGNAL), HDR);
    struct pollfd p = { .fd = sock, .events = POLLIN };
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(recv_error(f->c, 0x4646, VFIO_USER_REGION_WRITE), EINVAL);
    writer_start(&w, sock, msg + HDR, size - HDR);
    writer_join(&w);
    assert_next_is_read_reply(f->c);
    assert_true(server_alive(f->c));
    free(msg);
}

/* Requests sent back to back are answered in order. */
static void
test_pipelined(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    uint16_t ids[64];
    uint8_t msg[ACC + 4], rep[ACC + 4];

    for (unsigned i = 0; i < 64; i++) {
        uint32_t v = i * 0x01010101u;
        size_t len;

        /* Posted writes in between, answered by nothing. */
        len = mk_access(msg, 0, i * 4, 4, &v, 4);
        assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_WRITE,
                                         VFIO_USER_F_NO_REPLY, msg, len, NULL,
                                         0, NULL), 0);
        len = mk_access(msg, 0, i * 4, 4, NULL, 0);
        assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_READ, 0, msg,
                                         len, NULL, 0, &ids[i]), 0);
    }
    for (unsigned i = 0; i < 64; i++) {
        struct vfio_user_header hdr;
        uint32_t v;

        assert_int_equal(vfu_client_recv(f->c, &hdr, rep, sizeof(rep), NULL,
                                         NULL), sizeof(rep));
        assert_int_equal(hdr.msg_id, ids[i]);
        assert_int_equal(hdr.cmd, VFIO_USER_REGION_READ);
        assert_int_equal(!!(hdr.flags & VFIO_USER_F_ERROR), 0);
        memcpy(&v, rep + ACC, 4);
        assert_int_equal(v, i * 0x01010101u);
    }
    assert_int_equal(dev->nr_bar0_writes, 64);
}

/* Posted commands are never answered, even when they fail. */
static void
test_posted_failures_unanswered(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_write_multi_data w[2] = {
        wr(0, 0, 4, 0x11111111), wr(VFU_PCI_DEV_ROM_REGION_IDX, 0, 4, 0),
    };
    struct vfio_user_device_info in = { .argsz = sizeof(in) };
    uint8_t msg[MULTI_BUF_SIZE];
    size_t len;

    /* Through the client library: unknown region, read-only region. */
    assert_int_equal(vfu_client_region_write(f->c, 9, 0, "abcd", 4, true), 0);
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_ROM_REGION_IDX,
                                             0, "abcd", 4, true), 0);
    assert_int_equal(vfu_client_region_write(f->c, 0, BAR0_SIZE, "abcd", 4,
                                             true), 0);
    assert_int_equal(vfu_client_region_write_multi(f->c, w, 2, true), 2);
    assert_next_is_read_reply(f->c);

    /* Raw: count mismatch, bad multi, bad header, unknown command. */
    len = mk_access(msg, 0, 0, 8, "abcd", 4);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_WRITE,
                                     VFIO_USER_F_NO_REPLY, msg, len, NULL, 0,
                                     NULL), 0);
    len = mk_multi(msg, 0, w, 0);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_WRITE_MULTI,
                                     VFIO_USER_F_NO_REPLY, msg, len, NULL, 0,
                                     NULL), 0);
    len = mk_multi(msg, 3, w, 2);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_WRITE_MULTI,
                                     VFIO_USER_F_NO_REPLY, msg, len, NULL, 0,
                                     NULL), 0);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_GET_INFO,
                                     VFIO_USER_F_NO_REPLY, &in, 4, NULL, 0,
                                     NULL), 0);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_GET_INFO,
                                     VFIO_USER_F_NO_REPLY | 0x40, &in,
                                     sizeof(in), NULL, 0, NULL), 0);
    assert_int_equal(vfu_client_send(f->c, 200, VFIO_USER_F_NO_REPLY, NULL, 0,
                                     NULL, 0, NULL), 0);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_VERSION,
                                     VFIO_USER_F_NO_REPLY, NULL, 0, NULL, 0,
                                     NULL), 0);
    /* A good posted command with no reply to give: GET_INFO. */
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_GET_INFO,
                                     VFIO_USER_F_NO_REPLY, &in, sizeof(in),
                                     NULL, 0, NULL), 0);
    assert_next_is_read_reply(f->c);

    assert_true(all_zero(dev->bar0, BAR0_SIZE));
    assert_int_equal(dev->nr_bar0_writes, 0);
    assert_true(server_alive(f->c));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_device_info),
        T(test_device_info_bad),
        T(test_unexpected_fds),
        T(test_region_info),
        T(test_region_info_sparse_mmap),
        T(test_region_info_argsz_requery),
        T(test_region_info_bad),
        T(test_region_read),
        T(test_region_read_bad),
        T(test_region_write),
        T(test_region_write_posted),
        T(test_region_write_bad),
        T(test_region_write_too_big),
        T(test_region_write_big),
        T(test_callback_errno),
        T(test_write_multi),
        T(test_write_multi_posted),
        T(test_write_multi_bad),
        T(test_reset),
        T(test_unknown_command),
        T(test_version_after_negotiation),
        T(test_not_a_command),
        T(test_reserved_flags),
        T(test_msg_size_too_small),
        T(test_msg_too_big),
        T(test_pipelined),
        T(test_posted_failures_unanswered),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
