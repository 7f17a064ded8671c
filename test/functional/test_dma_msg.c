/*
 * DMA by message through a real socket: the server reads and writes client
 * memory registered without an fd (DMA_READ / DMA_WRITE), while the client
 * plays an awkward peer by hand: it sends its own requests before answering,
 * answers with errors or garbage, leaves mid-exchange, or uses a twin
 * socket. The server runs in a thread; the test is the client.
 *
 * The device: BAR0 registers, written with posted writes as QEMU does:
 *   0x00 DOORBELL  write n: vfu_sgl_read n bytes at BUF_IOVA into dev.data
 *   0x08 WRBELL    write n: vfu_sgl_write n bytes of dev.data to BUF_IOVA
 *   0x10 RESULT    read: 0, or the errno of the last transfer (RESULT_BUSY
 *                  while one is under way)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define BUF_IOVA    0x100000ull
#define BUF_SIZE    (256 * 1024)
#define OTHER_IOVA  0x800000ull
#define REG_DOORBELL 0x00
#define REG_WRBELL   0x08
#define REG_RESULT   0x10
#define REG_REPEAT   0x18           /* doorbell reads this many times */
#define RESULT_BUSY  0xbb           /* a transfer is under way */

struct fx {
    char dir[32];
    char sock[64];
    vfu_ctx_t *ctx;
    pthread_t thread;
    vfu_client_t *c;
    uint8_t data[BUF_SIZE];         /* the device's side of a transfer */
    uint8_t guest[BUF_SIZE];        /* the client's memory at BUF_IOVA */
    volatile int result;
    uint32_t repeat;
    volatile int transfers;
    int quiesce_answer;
    volatile int finish_quiesce;    /* the server thread completes it */
    int run_errno;
    int fd_base;
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

static void
transfer(vfu_ctx_t *ctx, size_t n, bool to_guest)
{
    struct fx *f = vfu_get_private(ctx);
    uint8_t sg[4 * 64];
    int ret;

    assert_true(dma_sg_size() * 4 <= sizeof(sg));
    f->result = RESULT_BUSY;
    ret = vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)BUF_IOVA, n,
                          (dma_sg_t *)sg, 4,
                          to_guest ? PROT_WRITE : PROT_READ);
    if (ret < 0) {
        f->result = errno != 0 ? errno : ENOSPC;
    } else if ((to_guest ? vfu_sgl_write(ctx, (dma_sg_t *)sg, ret, f->data)
                         : vfu_sgl_read(ctx, (dma_sg_t *)sg, ret, f->data)) < 0) {
        f->result = errno;
    } else {
        f->result = 0;
    }
    f->transfers++;
}

static ssize_t
bar0_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct fx *f = vfu_get_private(ctx);
    uint32_t v = 0;

    if (count != 4) {
        errno = EINVAL;
        return -1;
    }
    if (!is_write) {
        v = off == REG_RESULT ? (uint32_t)f->result : 0;
        memcpy(buf, &v, 4);
        return 4;
    }
    memcpy(&v, buf, 4);
    if (off == REG_REPEAT) {
        f->repeat = v;
    } else if (off == REG_DOORBELL || off == REG_WRBELL) {
        uint32_t times = f->repeat > 0 ? f->repeat : 1;
        for (uint32_t i = 0; i < times && f->result != (int)ENOBUFS; i++) {
            transfer(ctx, v, off == REG_WRBELL);
            if (f->result != 0) {
                break;
            }
        }
    }
    return 4;
}

static int
quiesce_cb(vfu_ctx_t *ctx)
{
    struct fx *f = vfu_get_private(ctx);
    if (f->quiesce_answer != 0) {
        errno = f->quiesce_answer;
        return -1;
    }
    return 0;
}

static void *
serve(void *arg)
{
    struct fx *f = arg;

    if (vfu_attach_ctx(f->ctx) < 0) {
        f->run_errno = errno;
        return NULL;
    }
    for (;;) {
        if (vfu_run_ctx(f->ctx) >= 0) {
            continue;
        }
        if (errno != EBUSY) {
            break;
        }
        /* A request waits for the quiesce: the test says when it is done. */
        while (!f->finish_quiesce) {
            usleep(1000);
        }
        f->finish_quiesce = 0;
        f->quiesce_answer = 0;
        assert_int_equal(vfu_device_quiesced(f->ctx, 0), 0);
    }
    f->run_errno = errno;
    return NULL;
}

static struct fx *
start(const char *caps)
{
    struct fx *f = calloc(1, sizeof(*f));

    f->fd_base = count_fds();
    strcpy(f->dir, "/tmp/vfu-dm.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    f->ctx = vfu_create_ctx(VFU_TRANS_SOCK, f->sock, 0, f, VFU_DEV_TYPE_PCI);
    assert_non_null(f->ctx);
    assert_int_equal(vfu_pci_init(f->ctx, VFU_PCI_TYPE_CONVENTIONAL, 0, 0), 0);
    vfu_pci_set_id(f->ctx, 0x1af4, 0x1234, 0, 0);
    assert_int_equal(vfu_setup_region(f->ctx, VFU_PCI_DEV_BAR0_REGION_IDX,
                                      4096, bar0_cb, VFU_REGION_FLAG_RW |
                                      VFU_REGION_FLAG_MEM, NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_device_dma(f->ctx, NULL, NULL), 0);
    vfu_setup_device_quiesce_cb(f->ctx, quiesce_cb);
    assert_int_equal(vfu_realize_ctx(f->ctx), 0);
    for (size_t i = 0; i < BUF_SIZE; i++) {
        f->guest[i] = (uint8_t)(i * 31 + 7);
    }
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
    f->c = vfu_client_connect(f->sock);
    assert_non_null(f->c);
    if (caps != (const char *)-1) {
        assert_int_equal(vfu_client_negotiate(f->c, caps), 0);
    }
    return f;
}

static void
stop(struct fx *f)
{
    if (f->c != NULL) {
        vfu_client_close(f->c);
    }
    pthread_join(f->thread, NULL);
    assert_int_equal(f->run_errno, ENOTCONN);
    vfu_destroy_ctx(f->ctx);
    rmdir(f->dir);
    assert_int_equal(count_fds(), f->fd_base);
    free(f);
}

/* Registers [iova, iova + size) without an fd, as QEMU does for plain RAM. */
static void
map_no_fd(struct fx *f, uint64_t iova, uint64_t size)
{
    struct vfio_user_dma_map map = {
        .argsz = sizeof(map), .addr = iova, .size = size,
        .flags = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE,
    };
    assert_int_equal(vfu_client_request(f->c, VFIO_USER_DMA_MAP, &map,
                                        sizeof(map), NULL, 0, NULL, 0, NULL,
                                        NULL), 0);
}

static void
ring(struct fx *f, uint32_t reg, uint32_t n)
{
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR0_REGION_IDX,
                                             reg, &n, 4, true), 0);
}

/* The next message from the server on @fd (or the client's socket): a request. */
static void
next_request(struct fx *f, int fd, struct vfio_user_header *hdr,
             struct vfio_user_dma_rw *rw, uint8_t *data, size_t cap)
{
    static uint8_t buf[BUF_SIZE + 64];
    ssize_t n;

    if (fd < 0) {
        n = vfu_client_recv(f->c, hdr, buf, sizeof(buf), NULL, NULL);
    } else {
        /* Twin socket: plain reads, the header first. */
        size_t got = 0;
        assert_int_equal(read(fd, hdr, sizeof(*hdr)), sizeof(*hdr));
        n = (ssize_t)(hdr->msg_size - sizeof(*hdr));
        while (got < (size_t)n) {
            ssize_t r = read(fd, buf + got, (size_t)n - got);
            assert_true(r > 0);
            got += (size_t)r;
        }
    }
    assert_true(n >= (ssize_t)sizeof(*rw));
    assert_int_equal((hdr->flags & VFIO_USER_F_TYPE_MASK), VFIO_USER_F_TYPE_COMMAND);
    assert_true(hdr->cmd == VFIO_USER_DMA_READ ||
                hdr->cmd == VFIO_USER_DMA_WRITE);
    /* The spec's layout (QEMU 11.1's): 16 bytes, data: 32 + count in all. */
    memcpy(rw, buf, sizeof(*rw));
    assert_int_equal(hdr->msg_size, VFIO_USER_DMA_RW_MSG_SIZE(
        hdr->cmd == VFIO_USER_DMA_WRITE ? rw->count : 0));
    if (data != NULL && hdr->cmd == VFIO_USER_DMA_WRITE) {
        assert_true(rw->count <= cap);
        memcpy(data, buf + sizeof(*rw), rw->count);
    }
}

static void
send_raw(int fd, const struct vfio_user_header *hdr, const void *p1, size_t l1,
         const void *p2, size_t l2)
{
    struct iovec iov[3] = { { (void *)hdr, sizeof(*hdr) }, { (void *)p1, l1 },
                            { (void *)p2, l2 } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 3 };
    assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL),
                     (ssize_t)(sizeof(*hdr) + l1 + l2));
}

/* Answers a DMA_READ from our memory, or with @error. */
static void
answer(struct fx *f, int fd, const struct vfio_user_header *req,
       const struct vfio_user_dma_rw *rw, uint32_t error)
{
    struct vfio_user_header hdr = *req;
    static uint8_t out[BUF_SIZE + 16];
    size_t len = 0;

    if (fd < 0) {
        fd = vfu_client_fd(f->c);
    }
    hdr.flags = (hdr.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    hdr.flags |= error != 0 ? VFIO_USER_F_ERROR : 0;
    hdr.error_no = error;
    if (error == 0 && req->cmd == VFIO_USER_DMA_READ) {
        uint64_t off = rw->addr - BUF_IOVA;
        memcpy(out, rw, sizeof(*rw));
        memcpy(out + sizeof(*rw), f->guest + off, rw->count);
        len = sizeof(*rw) + rw->count;
    }
    hdr.msg_size = (uint32_t)(sizeof(hdr) + len);
    send_raw(fd, &hdr, out, len, NULL, 0);
}

/* The last transfer's result, once it is over. */
static uint32_t
result(struct fx *f)
{
    uint32_t v = RESULT_BUSY;
    for (int i = 0; i < 2000 && v == RESULT_BUSY; i++) {
        if (i > 0) {
            usleep(1000);
        }
        assert_int_equal(vfu_client_region_read(f->c,
                                                VFU_PCI_DEV_BAR0_REGION_IDX,
                                                REG_RESULT, &v, 4), 0);
    }
    return v;
}

/* The server reads guest memory by message, split at the client's limit. */
static void
test_read_split(void **state)
{
    struct fx *f = start("{\"capabilities\":{\"max_data_xfer_size\":16384}}");
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 65536);
    for (uint64_t off = 0; off < 65536; off += 16384) {
        next_request(f, -1, &hdr, &rw, NULL, 0);
        assert_int_equal(hdr.cmd, VFIO_USER_DMA_READ);
        assert_int_equal(rw.addr, BUF_IOVA + off);
        assert_int_equal(rw.count, 16384);
        answer(f, -1, &hdr, &rw, 0);
    }
    assert_int_equal(result(f), 0);
    assert_memory_equal(f->data, f->guest, 65536);
    assert_int_equal(f->transfers, 1);
    stop(f);
}

/*
 * However much the client takes in one message, a DMA_READ asks for at
 * most 64 KiB: QEMU writes its reply with one non-blocking write and loses
 * what the socket does not take at once (about 104 KiB by default).
 */
static void
test_read_pieces(void **state)
{
    struct fx *f = start("{\"capabilities\":{\"max_data_xfer_size\":1048576}}");
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, BUF_SIZE);
    for (uint64_t off = 0; off < BUF_SIZE; off += 65536) {
        next_request(f, -1, &hdr, &rw, NULL, 0);
        assert_int_equal(hdr.cmd, VFIO_USER_DMA_READ);
        assert_int_equal(rw.addr, BUF_IOVA + off);
        assert_int_equal(rw.count, 65536);
        answer(f, -1, &hdr, &rw, 0);
    }
    assert_int_equal(result(f), 0);
    assert_memory_equal(f->data, f->guest, BUF_SIZE);
    assert_int_equal(f->transfers, 1);
    stop(f);
}

static void
test_write(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    static uint8_t got[8192];
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    for (size_t i = 0; i < sizeof(got); i++) {
        f->data[i] = (uint8_t)(i ^ 0x77);
    }
    ring(f, REG_WRBELL, sizeof(got));
    next_request(f, -1, &hdr, &rw, got, sizeof(got));
    assert_int_equal(hdr.cmd, VFIO_USER_DMA_WRITE);
    assert_int_equal(rw.addr, BUF_IOVA);
    assert_int_equal(rw.count, sizeof(got));
    assert_memory_equal(got, f->data, sizeof(got));
    answer(f, -1, &hdr, &rw, 0);            /* a bare header, like QEMU */
    assert_int_equal(result(f), 0);
    stop(f);
}

/*
 * The bytes on the wire, as QEMU 11.1 sends and expects them (and the spec
 * lays them out): address at payload offset 0, a 64-bit count at 8, the
 * data at 16; 32 + count bytes in all. A DMA_WRITE is answered with the
 * address and count echoed (QEMU: 16 bytes; the spec: 12) or a bare header.
 */
static void
test_wire_layout(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr, rh;
    static uint8_t buf[64 + 4096];
    uint64_t u64;
    (void)state;

    assert_int_equal(sizeof(struct vfio_user_dma_rw), 16);
    assert_int_equal(VFIO_USER_DMA_RW_MSG_SIZE(100), 32 + 100);
    map_no_fd(f, BUF_IOVA, BUF_SIZE);

    /* DMA_READ: the request is 32 bytes; the data comes back at 16. */
    ring(f, REG_DOORBELL, 4096);
    assert_int_equal(vfu_client_recv(f->c, &hdr, buf, sizeof(buf), NULL,
                                     NULL), 16);
    assert_int_equal(hdr.cmd, VFIO_USER_DMA_READ);
    assert_int_equal(hdr.msg_size, 32);
    memcpy(&u64, buf, 8);
    assert_int_equal(u64, BUF_IOVA);
    memcpy(&u64, buf + 8, 8);
    assert_int_equal(u64, 4096);
    rh = hdr;
    rh.flags = (rh.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    rh.msg_size = 32 + 4096;
    memcpy(buf + 16, f->guest, 4096);
    send_raw(vfu_client_fd(f->c), &rh, buf, 16 + 4096, NULL, 0);
    assert_int_equal(result(f), 0);
    assert_memory_equal(f->data, f->guest, 4096);

    /* DMA_WRITE: the data goes at 16; each form of reply is taken. */
    for (int form = 0; form < 3; form++) {
        static const size_t echo[] = { 16, 12, 0 };

        for (size_t i = 0; i < 4096; i++) {
            f->data[i] = (uint8_t)(i * 3 + form);
        }
        ring(f, REG_WRBELL, 4096);
        assert_int_equal(vfu_client_recv(f->c, &hdr, buf, sizeof(buf), NULL,
                                         NULL), 16 + 4096);
        assert_int_equal(hdr.cmd, VFIO_USER_DMA_WRITE);
        assert_int_equal(hdr.msg_size, 32 + 4096);
        memcpy(&u64, buf + 8, 8);
        assert_int_equal(u64, 4096);
        assert_memory_equal(buf + 16, f->data, 4096);
        rh = hdr;
        rh.flags = (rh.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
        rh.msg_size = (uint32_t)(sizeof(rh) + echo[form]);
        send_raw(vfu_client_fd(f->c), &rh, buf, echo[form], NULL, 0);
        assert_int_equal(result(f), 0);
    }
    stop(f);
}

/*
 * The client sends requests of its own before answering: they are served
 * at once, in order, while the server waits; then the transfer completes.
 */
static void
test_requests_while_waiting(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    struct vfio_user_device_info info;
    uint32_t ids = 0;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    map_no_fd(f, OTHER_IOVA, 4096);
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    assert_int_equal(f->transfers, 0);

    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_CFG_REGION_IDX,
                                            0, &ids, 4), 0);
    assert_int_equal(ids, 0x1af4 | (0x1234u << 16));
    assert_int_equal(vfu_client_device_info(f->c, &info), 0);
    /* An unmap of other memory, as QEMU sends when it changes its map. */
    struct vfio_user_dma_unmap unmap = {
        .argsz = sizeof(unmap), .addr = OTHER_IOVA, .size = 4096 };
    assert_true(vfu_client_request(f->c, VFIO_USER_DMA_UNMAP, &unmap,
                                   sizeof(unmap), NULL, 0, NULL, 0, NULL,
                                   NULL) >= 0);
    assert_int_equal(f->transfers, 0);      /* still waiting for us */

    answer(f, -1, &hdr, &rw, 0);
    assert_int_equal(result(f), 0);
    assert_memory_equal(f->data, f->guest, 4096);
    stop(f);
}

/* A doorbell served while the server waits starts a nested transfer. */
static void
test_nested_transfer(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header h1, h2;
    struct vfio_user_dma_rw r1, r2;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 1024);
    next_request(f, -1, &h1, &r1, NULL, 0);
    ring(f, REG_DOORBELL, 2048);
    next_request(f, -1, &h2, &r2, NULL, 0);
    assert_int_not_equal(h1.msg_id, h2.msg_id);
    assert_int_equal(r2.count, 2048);
    answer(f, -1, &h2, &r2, 0);             /* the inner one first */
    answer(f, -1, &h1, &r1, 0);
    assert_int_equal(result(f), 0);
    assert_int_equal(f->transfers, 2);
    stop(f);
}

/*
 * A request that needs the device quiet, served while waiting, waits for
 * the quiesce; what comes after it is set aside, so the transfer completes
 * and everything is answered in order once the device is quiet.
 */
static void
test_quiesce_while_waiting(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr, rh;
    struct vfio_user_dma_rw rw;
    uint16_t id_unmap, id_read;
    uint8_t buf[64];
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    map_no_fd(f, OTHER_IOVA, 4096);
    f->quiesce_answer = EBUSY;
    ring(f, REG_DOORBELL, 512);
    next_request(f, -1, &hdr, &rw, NULL, 0);

    struct vfio_user_dma_unmap unmap = {
        .argsz = sizeof(unmap), .addr = OTHER_IOVA, .size = 4096 };
    struct vfio_user_region_access rd = {
        .offset = 0, .region = VFU_PCI_DEV_CFG_REGION_IDX, .count = 4 };
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DMA_UNMAP, 0, &unmap,
                                     sizeof(unmap), NULL, 0, &id_unmap), 0);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_READ, 0, &rd,
                                     sizeof(rd), NULL, 0, &id_read), 0);
    answer(f, -1, &hdr, &rw, 0);
    usleep(50000);
    assert_int_equal(f->transfers, 1);      /* the transfer completed */
    assert_int_equal(f->result, 0);
    struct pollfd p = { .fd = vfu_client_fd(f->c), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 50), 0);   /* nothing answered yet */

    f->finish_quiesce = 1;
    assert_true(vfu_client_recv(f->c, &rh, buf, sizeof(buf), NULL, NULL) >= 0);
    assert_int_equal(rh.msg_id, id_unmap);
    assert_false(!!(rh.flags & VFIO_USER_F_ERROR));
    assert_true(vfu_client_recv(f->c, &rh, buf, sizeof(buf), NULL, NULL) >= 0);
    assert_int_equal(rh.msg_id, id_read);
    assert_false(!!(rh.flags & VFIO_USER_F_ERROR));
    stop(f);
}

/* The client refuses, or answers with nonsense: the transfer fails cleanly. */
static void
test_bad_answers(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    answer(f, -1, &hdr, &rw, EFAULT);
    assert_int_equal(result(f), EFAULT);

    /* An errno no errno is (one that negated would overflow): EIO. */
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    answer(f, -1, &hdr, &rw, 0x80000000u);
    assert_int_equal(result(f), EIO);
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    answer(f, -1, &hdr, &rw, 4096);
    assert_int_equal(result(f), EIO);

    /* A stray reply first is dropped; a short one fails with EPROTO. */
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    struct vfio_user_header stray = hdr;
    stray.msg_id ^= 0x5555;
    answer(f, -1, &stray, &rw, 0);
    struct vfio_user_header shrt = hdr;
    shrt.flags = (shrt.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    shrt.msg_size = sizeof(shrt) + 4;
    send_raw(vfu_client_fd(f->c), &shrt, "abcd", 4, NULL, 0);
    assert_int_equal(result(f), EPROTO);

    /* Memory that was never mapped is refused before any message. */
    struct vfio_user_dma_unmap unmap = {
        .argsz = sizeof(unmap), .addr = BUF_IOVA, .size = BUF_SIZE };
    assert_true(vfu_client_request(f->c, VFIO_USER_DMA_UNMAP, &unmap,
                                   sizeof(unmap), NULL, 0, NULL, 0, NULL,
                                   NULL) >= 0);
    ring(f, REG_DOORBELL, 4096);
    assert_int_equal(result(f), ENOENT);
    stop(f);
}

/* The client leaves in the middle of the exchange: nothing is left behind. */
static void
test_disconnect_mid_exchange(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 65536);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    vfu_client_close(f->c);
    f->c = NULL;
    pthread_join(f->thread, NULL);
    f->thread = pthread_self();
    assert_int_equal(f->result, ENOTCONN);
    assert_int_equal(f->run_errno, ENOTCONN);
    vfu_destroy_ctx(f->ctx);
    rmdir(f->dir);
    assert_int_equal(count_fds(), f->fd_base);
    free(f);
}

/* In twin-socket mode the server's requests come on a socket of their own. */
static void
test_twin_socket(void **state)
{
    struct fx *f = start((const char *)-1);
    const char caps[] = "{\"capabilities\":{\"twin_socket\":{\"supported\":true}}}";
    uint8_t ver[4 + sizeof(caps)] = { 0 };
    char reply[512];
    int fds[2];
    size_t nr_fds = 2;
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    uint16_t id;
    (void)state;

    memcpy(ver + 4, caps, sizeof(caps));
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_VERSION, 0, ver,
                                     sizeof(ver), NULL, 0, &id), 0);
    assert_true(vfu_client_recv(f->c, &hdr, reply, sizeof(reply), fds,
                                &nr_fds) > 4);
    assert_false(!!(hdr.flags & VFIO_USER_F_ERROR));
    assert_int_equal(nr_fds, 1);
    assert_non_null(strstr(reply + 4, "\"fd_index\":0"));
    int twin = fds[0];

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 4096);
    /* Nothing on the main socket; the request is on the twin. */
    next_request(f, twin, &hdr, &rw, NULL, 0);
    assert_int_equal(rw.count, 4096);
    /* The main socket is served meanwhile, as usual. */
    uint32_t ids = 0;
    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_CFG_REGION_IDX,
                                            0, &ids, 4), 0);
    answer(f, twin, &hdr, &rw, 0);
    assert_int_equal(result(f), 0);
    assert_memory_equal(f->data, f->guest, 4096);
    close(twin);
    stop(f);
}

/*
 * One request whose callback reads far more by message than the receive
 * buffer holds (a device working through a long queue on one doorbell):
 * every reply is taken, none is lost to a full buffer.
 */
static void
test_long_run_in_one_request(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    uint32_t times = 200;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    assert_int_equal(vfu_client_region_write(f->c, VFU_PCI_DEV_BAR0_REGION_IDX,
                                             REG_REPEAT, &times, 4, true), 0);
    ring(f, REG_DOORBELL, 65536);
    for (uint32_t i = 0; i < times; i++) {      /* 12.5 MiB of replies */
        next_request(f, -1, &hdr, &rw, NULL, 0);
        answer(f, -1, &hdr, &rw, 0);
    }
    assert_int_equal(result(f), 0);
    assert_int_equal(f->transfers, times);
    assert_memory_equal(f->data, f->guest, 65536);
    stop(f);
}

/*
 * --- Requests that fail framing while a DMA reply is awaited ---
 *
 * A short request (msg_size below a header), an oversized one (more than
 * the server's receive buffer, body sent), one announcing gigabytes with
 * nothing behind it, and a normal one arrive on the main socket while the
 * server waits for its DMA reply, along each path a request can take then:
 * served nested, set aside after a quiesce park, set aside behind another,
 * set aside at the nesting limit. Each is answered with its error, in
 * order, and the DMA still completes. Before the fix a set-aside oversized
 * request was copied from a NULL payload with its announced length.
 */
enum req_kind { REQ_NORMAL, REQ_SHORT, REQ_OVERSIZED, REQ_HUGE, REQ_BIG_WRITE };

#define OVERSIZED_LEN   (2u << 20)      /* beyond any receive buffer */
#define BIG_WRITE_LEN   (1u << 20)      /* the largest valid REGION_WRITE */
#define ERR_ANY         (-1)            /* an error reply, any errno */
#define NO_DATA         (-2)            /* a success with no payload checked */

struct sent { uint16_t id; int err; };

/* Sends a request of @kind raw on the main socket; what its reply must be. */
static struct sent
send_kind(struct fx *f, enum req_kind kind)
{
    static uint16_t next_id = 0x7000;
    static uint8_t body[OVERSIZED_LEN];
    struct vfio_user_region_access rd = {
        .offset = 0, .region = VFU_PCI_DEV_CFG_REGION_IDX, .count = 4 };
    struct vfio_user_header h = { .msg_id = next_id++,
                                  .cmd = VFIO_USER_REGION_READ };
    struct sent s = { .id = h.msg_id, .err = 0 };
    size_t len = 0;
    int fd = vfu_client_fd(f->c);

    switch (kind) {
    case REQ_NORMAL:
        h.msg_size = sizeof(h) + sizeof(rd);
        send_raw(fd, &h, &rd, sizeof(rd), NULL, 0);
        return s;
    case REQ_SHORT:
        h.msg_size = 8;
        s.err = EINVAL;
        break;
    case REQ_OVERSIZED:
        h.msg_size = sizeof(h) + OVERSIZED_LEN;
        s.err = EINVAL;
        len = OVERSIZED_LEN;
        break;
    case REQ_HUGE:
        h.msg_size = 0xcb000000u;       /* 3.4 GB, never sent */
        s.err = EINVAL;
        break;
    case REQ_BIG_WRITE:
        /* Valid framing; BAR0 is too small for it, so served it fails. */
        h.cmd = VFIO_USER_REGION_WRITE;
        rd = (struct vfio_user_region_access){
            .offset = 0, .region = VFU_PCI_DEV_BAR0_REGION_IDX,
            .count = BIG_WRITE_LEN };
        h.msg_size = sizeof(h) + sizeof(rd) + BIG_WRITE_LEN;
        s.err = ERR_ANY;
        send_raw(fd, &h, &rd, sizeof(rd), NULL, 0);
        len = BIG_WRITE_LEN;
        goto body;
    }
    send_raw(fd, &h, NULL, 0, NULL, 0);
body:
    /* The body in pieces, as the server drains the socket. */
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, body + off, len - off, MSG_NOSIGNAL);
        assert_true(n > 0);
        off += (size_t)n;
    }
    return s;
}

/* The next reply on the main socket must be @s's. */
static void
expect_reply(struct fx *f, struct sent s)
{
    struct vfio_user_header rh;
    uint8_t buf[sizeof(struct vfio_user_region_access) + 4] = { 0 };
    uint32_t ids;
    ssize_t n = vfu_client_recv(f->c, &rh, buf, sizeof(buf), NULL, NULL);

    memcpy(&ids, buf + sizeof(struct vfio_user_region_access), sizeof(ids));

    assert_true(n >= 0);
    assert_int_equal(rh.msg_id, s.id);
    assert_int_equal((rh.flags & VFIO_USER_F_TYPE_MASK), VFIO_USER_F_TYPE_REPLY);
    if (s.err == ERR_ANY) {
        assert_true(!!(rh.flags & VFIO_USER_F_ERROR));
        assert_int_not_equal(rh.error_no, ENOBUFS);
    } else if (s.err != 0 && s.err != NO_DATA) {
        assert_true(!!(rh.flags & VFIO_USER_F_ERROR));
        assert_int_equal(rh.error_no, s.err);
    } else {
        assert_false(!!(rh.flags & VFIO_USER_F_ERROR));
        if (s.err == 0) {
            assert_int_equal(ids, 0x1af4 | (0x1234u << 16));
        }
    }
}

/* Nothing is waiting on the main socket. */
static void
expect_silence(struct fx *f)
{
    struct pollfd p = { .fd = vfu_client_fd(f->c), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 50), 0);
}

static void
wait_transfers(struct fx *f, int n)
{
    for (int i = 0; i < 5000 && f->transfers < n; i++) {
        usleep(1000);
    }
    assert_int_equal(f->transfers, n);
    assert_int_equal(f->result, 0);
}

/* Negotiates a twin socket; returns its fd. */
static int
open_twin(struct fx *f)
{
    const char caps[] = "{\"capabilities\":{\"twin_socket\":{\"supported\":true}}}";
    uint8_t ver[4 + sizeof(caps)] = { 0 };
    char reply[512];
    int fds[2];
    size_t nr_fds = 2;
    struct vfio_user_header hdr;
    uint16_t id;

    memcpy(ver + 4, caps, sizeof(caps));
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_VERSION, 0, ver,
                                     sizeof(ver), NULL, 0, &id), 0);
    assert_true(vfu_client_recv(f->c, &hdr, reply, sizeof(reply), fds,
                                &nr_fds) > 4);
    assert_false(!!(hdr.flags & VFIO_USER_F_ERROR));
    assert_int_equal(nr_fds, 1);
    return fds[0];
}

/* Parks an unmap for the quiesce (the device says EBUSY); its reply. */
static struct sent
park_unmap(struct fx *f)
{
    struct vfio_user_dma_unmap unmap = {
        .argsz = sizeof(unmap), .addr = OTHER_IOVA, .size = 4096 };
    struct sent s = { .err = NO_DATA };

    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DMA_UNMAP, 0, &unmap,
                                     sizeof(unmap), NULL, 0, &s.id), 0);
    return s;
}

/*
 * Rings @depth doorbells, each served inside the previous one's DMA wait:
 * the server ends up @depth waits deep. Their requests go to @hdr/@rw.
 */
static void
nest(struct fx *f, int twin, int depth, struct vfio_user_header *hdr,
     struct vfio_user_dma_rw *rw)
{
    for (int i = 0; i < depth; i++) {
        ring(f, REG_DOORBELL, 1024u * (unsigned)(i + 1));
        next_request(f, twin, &hdr[i], &rw[i], NULL, 0);
    }
}

/* Answers the waits @nest made, innermost first. */
static void
unnest(struct fx *f, int twin, int depth, struct vfio_user_header *hdr,
       struct vfio_user_dma_rw *rw)
{
    for (int i = depth - 1; i >= 0; i--) {
        answer(f, twin, &hdr[i], &rw[i], 0);
    }
}

static void
check_alive(struct fx *f)
{
    uint32_t ids = 0;
    assert_int_equal(vfu_client_region_read(f->c, VFU_PCI_DEV_CFG_REGION_IDX,
                                            0, &ids, 4), 0);
    assert_int_equal(ids, 0x1af4 | (0x1234u << 16));
}

/* Served nested: each is answered at once, in order; the DMA completes. */
static void
test_faulty_served_nested(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    for (enum req_kind k = REQ_NORMAL; k <= REQ_OVERSIZED; k++) {
        expect_reply(f, send_kind(f, k));
        expect_reply(f, send_kind(f, REQ_NORMAL));
    }
    assert_int_equal(f->transfers, 0);          /* still waiting */
    answer(f, -1, &hdr, &rw, 0);
    assert_int_equal(result(f), 0);
    assert_memory_equal(f->data, f->guest, 4096);
    check_alive(f);
    stop(f);
}

/*
 * Set aside after a quiesce park (the first) and behind another (the rest):
 * nothing is answered until the device is quiet, then all, in order.
 */
static void
test_faulty_set_aside_after_park(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    struct sent sent[7];
    size_t n = 0;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    map_no_fd(f, OTHER_IOVA, 4096);
    f->quiesce_answer = EBUSY;
    ring(f, REG_DOORBELL, 512);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    sent[n++] = park_unmap(f);
    sent[n++] = send_kind(f, REQ_SHORT);
    sent[n++] = send_kind(f, REQ_OVERSIZED);
    sent[n++] = send_kind(f, REQ_NORMAL);
    sent[n++] = send_kind(f, REQ_OVERSIZED);
    sent[n++] = send_kind(f, REQ_SHORT);
    sent[n++] = send_kind(f, REQ_NORMAL);
    answer(f, -1, &hdr, &rw, 0);
    wait_transfers(f, 1);
    expect_silence(f);

    f->finish_quiesce = 1;
    for (size_t i = 0; i < n; i++) {
        expect_reply(f, sent[i]);
    }
    check_alive(f);
    stop(f);
}

/*
 * At the nesting limit (four waits deep) the first is set aside because of
 * the depth, the rest behind it; one wait later, still behind them.
 */
static void
test_faulty_set_aside_at_depth_limit(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr[4];
    struct vfio_user_dma_rw rw[4];
    struct sent sent[6];
    size_t n = 0;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    nest(f, -1, 4, hdr, rw);
    sent[n++] = send_kind(f, REQ_SHORT);
    sent[n++] = send_kind(f, REQ_OVERSIZED);
    sent[n++] = send_kind(f, REQ_NORMAL);
    expect_silence(f);
    answer(f, -1, &hdr[3], &rw[3], 0);          /* three deep now */
    wait_transfers(f, 1);
    sent[n++] = send_kind(f, REQ_OVERSIZED);
    sent[n++] = send_kind(f, REQ_SHORT);
    sent[n++] = send_kind(f, REQ_NORMAL);
    expect_silence(f);
    unnest(f, -1, 3, hdr, rw);
    wait_transfers(f, 4);
    for (size_t i = 0; i < n; i++) {
        expect_reply(f, sent[i]);
    }
    check_alive(f);
    stop(f);
}

/*
 * A request announcing 3.4 GB with nothing behind it, on each path, the
 * DMA replies coming on the twin socket: answered EINVAL in its turn, no
 * allocation of its size, and the DMA completes. The main socket then
 * belongs to that request's body, so it comes last.
 */
static void
test_huge_request_each_path(void **state)
{
    (void)state;
    for (int path = 0; path < 3; path++) {
        struct fx *f = start((const char *)-1);
        int twin = open_twin(f);
        struct vfio_user_header hdr[4];
        struct vfio_user_dma_rw rw[4];
        struct sent sent[4];
        size_t n = 0;
        int depth = path == 2 ? 4 : 1;

        map_no_fd(f, BUF_IOVA, BUF_SIZE);
        map_no_fd(f, OTHER_IOVA, 4096);
        if (path == 1) {
            f->quiesce_answer = EBUSY;
        }
        nest(f, twin, depth, hdr, rw);
        if (path == 0) {                        /* served nested */
            expect_reply(f, send_kind(f, REQ_SHORT));
            expect_reply(f, send_kind(f, REQ_HUGE));
        } else {
            if (path == 1) {                    /* after a park */
                sent[n++] = park_unmap(f);
            }
            sent[n++] = send_kind(f, REQ_SHORT);    /* at the limit */
            sent[n++] = send_kind(f, REQ_NORMAL);   /* behind another */
            sent[n++] = send_kind(f, REQ_HUGE);
            expect_silence(f);
        }
        unnest(f, twin, depth, hdr, rw);
        wait_transfers(f, depth);
        if (path == 1) {
            expect_silence(f);
            f->finish_quiesce = 1;
        }
        for (size_t i = 0; i < n; i++) {
            expect_reply(f, sent[i]);
        }
        close(twin);
        stop(f);
    }
}

/*
 * A client that keeps sending large requests while the server waits: at
 * most MAX_DEFERRED_BYTES (4 MiB) of them are held; beyond that each is
 * refused at once with ENOBUFS, and the held ones are served in turn.
 */
static void
test_set_aside_is_bounded(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    struct sent held[4], refused[3];
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    map_no_fd(f, OTHER_IOVA, 4096);
    f->quiesce_answer = EBUSY;
    ring(f, REG_DOORBELL, 512);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    held[0] = park_unmap(f);
    for (int i = 1; i < 4; i++) {               /* 3 x 1 MiB fit in 4 MiB */
        held[i] = send_kind(f, REQ_BIG_WRITE);
    }
    for (int i = 0; i < 3; i++) {
        refused[i] = send_kind(f, REQ_BIG_WRITE);
        refused[i].err = ENOBUFS;
        expect_reply(f, refused[i]);            /* at once, out of turn */
    }
    answer(f, -1, &hdr, &rw, 0);
    wait_transfers(f, 1);
    expect_silence(f);
    f->finish_quiesce = 1;
    for (int i = 0; i < 4; i++) {
        expect_reply(f, held[i]);
    }
    check_alive(f);
    stop(f);
}

/*
 * Replies matched at every depth: a doorbell's DMA_READ is out, a second
 * doorbell served meanwhile sends a DMA_WRITE, and the client answers them
 * in the order they came. The inner wait must not drop the outer's reply
 * (it used to: the outer transfer then failed after 20 s).
 */
static void
test_outer_reply_first(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header h1, h2;
    struct vfio_user_dma_rw r1, r2;
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    for (size_t i = 0; i < 512; i++) {
        f->data[i] = (uint8_t)(i ^ 0x5a);
    }
    ring(f, REG_DOORBELL, 1024);
    next_request(f, -1, &h1, &r1, NULL, 0);
    assert_int_equal(h1.cmd, VFIO_USER_DMA_READ);
    ring(f, REG_WRBELL, 512);
    next_request(f, -1, &h2, &r2, f->guest, BUF_SIZE);
    assert_int_equal(h2.cmd, VFIO_USER_DMA_WRITE);
    answer(f, -1, &h1, &r1, 0);             /* the outer one first */
    answer(f, -1, &h2, &r2, 0);
    wait_transfers(f, 2);
    assert_int_equal(result(f), 0);
    stop(f);
}

/*
 * Four waits deep, reads and writes alternating, answered in several
 * orders, on the one socket and on the twin socket: every transfer
 * completes with the right data, whatever the order.
 */
static void
test_nested_replies_any_order(void **state)
{
    static const int orders[][4] = {
        { 0, 1, 2, 3 }, { 3, 2, 1, 0 }, { 1, 3, 0, 2 }, { 2, 0, 3, 1 },
    };
    (void)state;
    for (int twin_mode = 0; twin_mode < 2; twin_mode++) {
        for (size_t o = 0; o < sizeof(orders) / sizeof(orders[0]); o++) {
            struct fx *f = start(twin_mode ? (const char *)-1 : NULL);
            int twin = twin_mode ? open_twin(f) : -1;
            struct vfio_user_header hdr[4];
            struct vfio_user_dma_rw rw[4];
            static uint8_t written[4][BUF_SIZE];

            map_no_fd(f, BUF_IOVA, BUF_SIZE);
            for (int i = 0; i < 4; i++) {
                bool wr = i % 2 == 1;
                ring(f, wr ? REG_WRBELL : REG_DOORBELL, 256u * (unsigned)(i + 1));
                next_request(f, twin, &hdr[i], &rw[i], written[i], BUF_SIZE);
                assert_int_equal(hdr[i].cmd, wr ? VFIO_USER_DMA_WRITE
                                                 : VFIO_USER_DMA_READ);
                assert_int_equal(rw[i].count, 256u * (unsigned)(i + 1));
            }
            for (int k = 0; k < 4; k++) {
                int i = orders[o][k];
                answer(f, twin, &hdr[i], &rw[i], 0);
            }
            wait_transfers(f, 4);
            if (twin >= 0) {
                close(twin);
            }
            stop(f);
        }
    }
}

/* The client side of test_dma_from_main_loop, in a thread. */
struct loop_client {
    struct fx *f;
    int wrote;
};

static void *
answer_and_post(void *arg)
{
    struct loop_client *lc = arg;
    struct fx *f = lc->f;
    struct vfio_user_header hdr, reply, post;
    struct vfio_user_dma_rw rw;
    struct vfio_user_region_access acc = {
        .offset = REG_REPEAT, .region = VFU_PCI_DEV_BAR0_REGION_IDX,
        .count = 4 };
    uint32_t v = 7;
    static uint8_t out[4096 + 16];

    next_request(f, -1, &hdr, &rw, NULL, 0);
    reply = hdr;
    reply.flags = VFIO_USER_F_TYPE_REPLY;
    reply.msg_size = (uint32_t)(sizeof(reply) + sizeof(rw) + rw.count);
    memcpy(out, &rw, sizeof(rw));
    memcpy(out + sizeof(rw), f->guest, rw.count);
    /* The reply and a posted write in one send: they arrive together. */
    post = (struct vfio_user_header){ .msg_id = 0x6666,
        .cmd = VFIO_USER_REGION_WRITE, .flags = VFIO_USER_F_NO_REPLY,
        .msg_size = sizeof(post) + sizeof(acc) + 4 };
    struct iovec iov[5] = {
        { &reply, sizeof(reply) }, { out, sizeof(rw) + rw.count },
        { &post, sizeof(post) }, { &acc, sizeof(acc) }, { &v, 4 },
    };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 5 };
    lc->wrote = (int)sendmsg(vfu_client_fd(f->c), &mh, MSG_NOSIGNAL);
    return NULL;
}

/*
 * A device that starts DMA by message from its own loop (not inside a
 * request) and then poll()s its socket: what the client sent after the
 * reply must still be in the socket when vfu_sgl_read() returns, so that
 * poll() reports it (found by the NVMe sample, whose loop stalled when
 * the library had read it along with the reply).
 */
static void
test_dma_from_main_loop(void **state)
{
    char dir[] = "/tmp/vfu-ml.XXXXXX";
    struct fx *f = calloc(1, sizeof(*f));
    struct loop_client lc = { .f = f };
    uint8_t ver[4] = { 0 };
    struct vfio_user_header hdr;
    uint8_t sg[64];
    pthread_t t;
    uint16_t id;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", dir);
    f->ctx = vfu_create_ctx(VFU_TRANS_SOCK, f->sock,
                            LIBVFIO_USER_FLAG_ATTACH_NB, f, VFU_DEV_TYPE_PCI);
    assert_non_null(f->ctx);
    assert_int_equal(vfu_pci_init(f->ctx, VFU_PCI_TYPE_CONVENTIONAL, 0, 0), 0);
    assert_int_equal(vfu_setup_region(f->ctx, VFU_PCI_DEV_BAR0_REGION_IDX,
                                      4096, bar0_cb, VFU_REGION_FLAG_RW |
                                      VFU_REGION_FLAG_MEM, NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_realize_ctx(f->ctx), 0);
    for (size_t i = 0; i < BUF_SIZE; i++) {
        f->guest[i] = (uint8_t)(i * 3 + 1);
    }
    f->c = vfu_client_connect(f->sock);
    assert_non_null(f->c);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_VERSION, 0, ver, 4, NULL,
                                     0, &id), 0);
    while (vfu_attach_ctx(f->ctx) < 0) {
        assert_int_equal(errno, EAGAIN);
    }
    assert_true(vfu_client_recv(f->c, &hdr, NULL, 0, NULL, NULL) >= 0);
    struct vfio_user_dma_map map = {
        .argsz = sizeof(map), .addr = BUF_IOVA, .size = BUF_SIZE,
        .flags = VFIO_USER_F_DMA_REGION_READ };
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DMA_MAP, 0, &map,
                                     sizeof(map), NULL, 0, &id), 0);
    while (vfu_run_ctx(f->ctx) == 0) {
    }
    assert_true(vfu_client_recv(f->c, &hdr, NULL, 0, NULL, NULL) >= 0);
    assert_false(hdr.flags & VFIO_USER_F_ERROR);

    /* The device's loop: a read by message, not inside any request. */
    assert_int_equal(pthread_create(&t, NULL, answer_and_post, &lc), 0);
    assert_int_equal(vfu_addr_to_sgl(f->ctx, (vfu_dma_addr_t)BUF_IOVA, 4096,
                                     (dma_sg_t *)sg, 1, PROT_READ), 1);
    assert_int_equal(vfu_sgl_read(f->ctx, (dma_sg_t *)sg, 1, f->data, 0), 0);
    pthread_join(t, NULL);
    assert_true(lc.wrote > 0);
    assert_memory_equal(f->data, f->guest, 4096);
    assert_int_equal(f->repeat, 0);         /* not served behind our back */
    struct pollfd p = { .fd = vfu_get_poll_fd(f->ctx), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 1000), 1);
    assert_int_equal(vfu_run_ctx(f->ctx), 1);
    assert_int_equal(f->repeat, 7);

    vfu_client_close(f->c);
    vfu_destroy_ctx(f->ctx);
    rmdir(dir);
    free(f);
}

/* Our own DMA reply, oversized or short: the transfer fails at once. */
static void
test_faulty_dma_reply(void **state)
{
    struct fx *f = start(NULL);
    struct vfio_user_header hdr;
    struct vfio_user_dma_rw rw;
    static uint8_t body[OVERSIZED_LEN];
    (void)state;

    map_no_fd(f, BUF_IOVA, BUF_SIZE);
    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    struct vfio_user_header big = hdr;
    big.flags = (big.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    big.msg_size = sizeof(big) + OVERSIZED_LEN;
    send_raw(vfu_client_fd(f->c), &big, body, OVERSIZED_LEN / 2,
             body, OVERSIZED_LEN / 2);
    assert_int_equal(result(f), EMSGSIZE);

    ring(f, REG_DOORBELL, 4096);
    next_request(f, -1, &hdr, &rw, NULL, 0);
    struct vfio_user_header shrt = hdr;
    shrt.flags = (shrt.flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    shrt.msg_size = 4;
    send_raw(vfu_client_fd(f->c), &shrt, NULL, 0, NULL, 0);
    assert_int_equal(result(f), EPROTO);
    check_alive(f);
    stop(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_split),
        cmocka_unit_test(test_read_pieces),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_wire_layout),
        cmocka_unit_test(test_requests_while_waiting),
        cmocka_unit_test(test_nested_transfer),
        cmocka_unit_test(test_quiesce_while_waiting),
        cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_disconnect_mid_exchange),
        cmocka_unit_test(test_twin_socket),
        cmocka_unit_test(test_long_run_in_one_request),
        cmocka_unit_test(test_faulty_served_nested),
        cmocka_unit_test(test_faulty_set_aside_after_park),
        cmocka_unit_test(test_faulty_set_aside_at_depth_limit),
        cmocka_unit_test(test_huge_request_each_path),
        cmocka_unit_test(test_set_aside_is_bounded),
        cmocka_unit_test(test_faulty_dma_reply),
        cmocka_unit_test(test_outer_reply_first),
        cmocka_unit_test(test_dma_from_main_loop),
        cmocka_unit_test(test_nested_replies_any_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
