/*
 * samples/nvme driven without QEMU: libvfio-user-client plays the host
 * (samples/nvme/host.c). Each test starts vfu-nvme as a process on a
 * backing file (or a memfd it inherits), brings the controller up and
 * checks: Identify, features, logs; reads and writes with PRP lists that
 * cross pages and DMA regions, and with SGLs, compared with the backing
 * file; completion order, phase tags, SQ heads, CQ flow control and
 * interrupts; Write Zeroes, deallocation, Flush; shutdown, controller
 * reset and FLR; the doorbells through shadow ioeventfds; and malformed
 * commands and doorbells answered with the NVMe status a controller
 * returns. Every test runs with guest memory mapped (DMA through the
 * device's mapping) and, where said, by message.
 *
 *   test_nvme_sample PATH-TO-vfu-nvme
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host.h"

#define NS_BYTES        (16u << 20)
#define MEM_BYTES       (8u << 20)
#define IOQ             1
#define QSIZE           64
#define WAIT_MS         10000   /* a guard against a hang, not a measurement */
#define SC(x)           ((x) & 0x7ff)   /* status without DNR */

static const char *server_path;

struct fx {
    char dir[40], sock[64], img[64];
    pid_t pid;
    int backing;            /* our view of the namespace */
    struct nvme_host h;
};

static void
start(struct fx *f, bool memfd_backing, bool mapped, const char *extra)
{
    char arg[80];

    strcpy(f->dir, "/tmp/vfu-nvme.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    snprintf(f->img, sizeof(f->img), "%s/ns.img", f->dir);
    if (memfd_backing) {
        f->backing = memfd_create("ns", 0);     /* inherited by the server */
        snprintf(arg, sizeof(arg), "fd:%d", f->backing);
    } else {
        f->backing = open(f->img, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        snprintf(arg, sizeof(arg), "%s", f->img);
    }
    assert_true(f->backing >= 0);
    assert_int_equal(ftruncate(f->backing, NS_BYTES), 0);
    f->pid = fork();
    if (f->pid == 0) {
        if (extra != NULL) {
            execl(server_path, server_path, extra, arg, f->sock, (char *)NULL);
        } else {
            execl(server_path, server_path, arg, f->sock, (char *)NULL);
        }
        _exit(127);
    }
    assert_int_equal(host_open(&f->h, f->sock, MEM_BYTES, mapped), 0);
    assert_int_equal(host_enable(&f->h, 32), 0);
}

static int
setup_mapped(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    start(f, false, true, NULL);
    *state = f;
    return 0;
}

static int
setup_message(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    start(f, true, false, getenv("NVME_V"));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    int status;

    host_close(&f->h);
    assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(f->backing);
    unlink(f->img);
    unlink(f->sock);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void
io_queues(struct fx *f)
{
    struct nvme_sqe nq = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07 };
    uint32_t dw0 = 0;

    nq.cdw11 = 0;                                   /* one SQ, one CQ */
    assert_int_equal(host_admin(&f->h, &nq, &dw0), 0);
    assert_int_equal(dw0, 0);
    assert_int_equal(host_create_io(&f->h, IOQ, QSIZE), 0);
}

/* One I/O command, waited for; its status. */
static int
io(struct fx *f, struct nvme_sqe *cmd)
{
    struct nvme_cqe e;
    uint16_t cid = host_submit(&f->h, IOQ, cmd, true);

    assert_int_equal(host_reap(&f->h, IOQ, &e, WAIT_MS, false), 0);
    assert_int_equal(e.cid, cid);
    assert_int_equal(e.sqid, IOQ);
    assert_int_equal(e.sqhd, f->h.sq[IOQ].tail);    /* everything fetched */
    return host_status(&e);
}

static struct nvme_sqe
rw(uint8_t opc, uint64_t slba, uint32_t blocks, uint64_t prp1, uint64_t prp2)
{
    struct nvme_sqe c = { .opc = opc, .nsid = 1 };
    c.cdw10 = (uint32_t)slba;
    c.cdw11 = (uint32_t)(slba >> 32);
    c.cdw12 = blocks - 1;
    c.dptr[0] = prp1;
    c.dptr[1] = prp2;
    return c;
}

/* PRPs for @len bytes at @iova: PRP2 the second page or a list. */
static void
prps(struct fx *f, uint64_t iova, size_t len, uint64_t *prp1, uint64_t *prp2)
{
    size_t first = NVME_PAGE - (iova % NVME_PAGE);
    uint64_t list, *e;

    *prp1 = iova;
    *prp2 = 0;
    if (len <= first) {
        return;
    }
    if (len - first <= NVME_PAGE) {
        *prp2 = iova + first;
        return;
    }
    list = host_alloc(&f->h, NVME_PAGE, NVME_PAGE);
    e = host_ptr(&f->h, list);
    for (uint64_t a = iova + first; a < iova + len; a += NVME_PAGE) {
        *e++ = a;
    }
    *prp2 = list;
}

static void
fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
    }
}

/* Writes @len bytes from a buffer at @iova to @slba, reads them back
 * into another, and checks both against the backing file. */
static void
write_read_check(struct fx *f, uint64_t iova, size_t len, uint64_t slba,
                 unsigned seed)
{
    uint64_t back = host_alloc(&f->h, len + NVME_PAGE, NVME_PAGE) + (iova % NVME_PAGE);
    uint8_t *file = malloc(len);
    uint64_t p1, p2;
    struct nvme_sqe c;

    fill(host_ptr(&f->h, iova), len, seed);
    prps(f, iova, len, &p1, &p2);
    c = rw(NVME_IO_WRITE, slba, (uint32_t)(len / 512), p1, p2);
    assert_int_equal(io(f, &c), 0);
    assert_int_equal(pread(f->backing, file, len, (off_t)slba * 512), (ssize_t)len);
    assert_memory_equal(file, host_ptr(&f->h, iova), len);
    memset(host_ptr(&f->h, back), 0, len);
    prps(f, back, len, &p1, &p2);
    c = rw(NVME_IO_READ, slba, (uint32_t)(len / 512), p1, p2);
    assert_int_equal(io(f, &c), 0);
    assert_memory_equal(host_ptr(&f->h, back), file, len);
    free(file);
}

static void
test_identify(void **state)
{
    struct fx *f = *state;
    uint64_t buf = host_alloc(&f->h, NVME_PAGE, NVME_PAGE);
    uint8_t *id = host_ptr(&f->h, buf);
    struct nvme_sqe c = { .opc = NVME_ADM_IDENTIFY, .cdw10 = 1 };
    uint64_t nsze;

    c.dptr[0] = buf;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    assert_int_equal(id[0] | id[1] << 8, NVME_PCI_VID);
    assert_memory_equal(id + 24, "libvfio-user NVMe sample", 24);
    assert_int_equal(id[77], NVME_MDTS);
    assert_int_equal(get32(id + 80), 0x00010400);
    assert_int_equal(get32(id + 516), 1);           /* one namespace */
    assert_int_equal(id[512], 0x66);
    assert_int_equal(id[513], 0x44);
    assert_int_equal(get32(id + 536) & 3, 1);       /* SGLs */

    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .nsid = 1, .cdw10 = 0 };
    c.dptr[0] = buf;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    memcpy(&nsze, id, 8);
    assert_int_equal(nsze, NS_BYTES / 512);
    assert_int_equal(get32(id + 128), 9u << 16);    /* 512-byte blocks */

    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .cdw10 = 2 };
    c.dptr[0] = buf;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    assert_int_equal(get32(id), 1);
    assert_int_equal(get32(id + 4), 0);

    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .nsid = 1, .cdw10 = 3 };
    c.dptr[0] = buf;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    assert_int_equal(id[0], 1);                     /* EUI64 */
    assert_int_equal(id[1], 8);
    assert_int_equal(id[12], 2);                    /* NGUID */

    /* namespace 2 does not exist; CNS 0x10 is not offered */
    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .nsid = 2, .cdw10 = 0 };
    c.dptr[0] = buf;
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_INVALID_NS);
    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .cdw10 = 0x10 };
    c.dptr[0] = buf;
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_INVALID_FIELD);
    /* an identify buffer outside guest memory */
    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .cdw10 = 1 };
    c.dptr[0] = 0xdead0000;
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_DATA_XFER_ERROR);
}

static void
test_features_and_logs(void **state)
{
    struct fx *f = *state;
    uint64_t buf = host_alloc(&f->h, NVME_PAGE, NVME_PAGE);
    uint8_t *log = host_ptr(&f->h, buf);
    struct nvme_sqe c = { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07 };
    uint32_t dw0 = 0;
    uint64_t v;

    c.cdw11 = 99u << 16 | 99;           /* 100 queues asked, 16 granted */
    assert_int_equal(host_admin(&f->h, &c, &dw0), 0);
    assert_int_equal(dw0, 15u << 16 | 15);
    c = (struct nvme_sqe) { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x08,
                            .cdw11 = 0x0a04 };  /* coalescing: accepted */
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    c = (struct nvme_sqe) { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x06 };
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);   /* cache off */
    c = (struct nvme_sqe) { .opc = NVME_ADM_GET_FEATURES, .cdw10 = 0x06 };
    assert_int_equal(host_admin(&f->h, &c, &dw0), 0);
    assert_int_equal(dw0, 0);
    c.cdw10 = 0x06 | 1u << 8;                           /* default */
    assert_int_equal(host_admin(&f->h, &c, &dw0), 0);
    assert_int_equal(dw0, 1);
    c = (struct nvme_sqe) { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x06 | 1u << 31 };
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_FEATURE_NOT_SAVEABLE);
    c = (struct nvme_sqe) { .opc = NVME_ADM_GET_FEATURES, .cdw10 = 0x7f };
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_INVALID_FIELD);

    assert_int_equal(host_create_io(&f->h, IOQ, QSIZE), 0);
    /* Number of queues once queues exist: a sequence error. */
    c = (struct nvme_sqe) { .opc = NVME_ADM_SET_FEATURES, .cdw10 = 0x07 };
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_CMD_SEQ_ERROR);
    write_read_check(f, host_alloc(&f->h, 8192, NVME_PAGE), 8192, 100, 1);

    /* SMART: one write and one read of 16 blocks, so far */
    c = (struct nvme_sqe) { .opc = NVME_ADM_GET_LOG, .nsid = 0xffffffff };
    c.cdw10 = 0x02 | (512 / 4 - 1) << 16;
    c.dptr[0] = buf;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    assert_int_equal(log[3], 100);                      /* spare */
    memcpy(&v, log + 64, 8);
    assert_int_equal(v, 1);                             /* reads */
    memcpy(&v, log + 80, 8);
    assert_int_equal(v, 1);                             /* writes */
    memcpy(&v, log + 48, 8);
    assert_int_equal(v, 1);                 /* 16 blocks: one unit, rounded up */
    /* firmware slot: slot 1 active, "1.0" */
    c.cdw10 = 0x03 | (512 / 4 - 1) << 16;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    assert_int_equal(log[0], 1);
    assert_memory_equal(log + 8, "1.0", 3);
    /* error log: the errors above, newest first */
    c.cdw10 = 0x01 | (64 / 4 - 1) << 16;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    memcpy(&v, log, 8);
    assert_int_equal(v, 3);                             /* third error */
    assert_int_equal(SC((log[12] | log[13] << 8) >> 1), NVME_SC_CMD_SEQ_ERROR);
    /* an offset in the page, a page we do not have, a bad offset */
    c.cdw10 = 0x02 | (8 / 4 - 1) << 16;
    c.cdw12 = 64;
    assert_int_equal(host_admin(&f->h, &c, NULL), 0);
    memcpy(&v, log, 8);
    assert_int_equal(v, 1);                             /* host reads */
    c.cdw12 = 2;
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_INVALID_FIELD);
    c.cdw12 = 0;
    c.cdw10 = 0x7f;
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_INVALID_LOG_PAGE);
}

static void
test_queue_admin_errors(void **state)
{
    struct fx *f = *state;
    uint64_t q = host_alloc(&f->h, NVME_PAGE, NVME_PAGE);
    struct nvme_sqe c;

#define ADMIN(opc_, c10, c11, base) \
    (c = (struct nvme_sqe) { .opc = (opc_), .cdw10 = (c10), .cdw11 = (c11), \
                             .dptr = { (base), 0 } }, \
     SC(host_admin(&f->h, &c, NULL)))
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 0, 3, q), NVME_SC_QID_INVALID);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 17, 3, q), NVME_SC_QID_INVALID);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 5000u << 16 | 1, 3, q), NVME_SC_QUEUE_SIZE);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 0u << 16 | 1, 3, q), NVME_SC_QUEUE_SIZE);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 1, 2, q), NVME_SC_INVALID_FIELD);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 1, 3, q + 8), NVME_SC_INVALID_FIELD);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 1, 3, 0xdead000), NVME_SC_INVALID_FIELD);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 1, 40u << 16 | 3, q), NVME_SC_INVALID_VECTOR);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_SQ, 15u << 16 | 1, 1u << 16 | 1, q), NVME_SC_CQ_INVALID);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_SQ, 15u << 16 | 1, 0u << 16 | 1, q), NVME_SC_CQ_INVALID);
    assert_int_equal(ADMIN(NVME_ADM_DELETE_SQ, 1, 0, 0), NVME_SC_QID_INVALID);
    assert_int_equal(ADMIN(NVME_ADM_DELETE_CQ, 0, 0, 0), NVME_SC_QID_INVALID);
    assert_int_equal(host_create_io(&f->h, IOQ, QSIZE), 0);
    assert_int_equal(ADMIN(NVME_ADM_CREATE_CQ, 15u << 16 | 1, 3, q), NVME_SC_QID_INVALID);
    assert_int_equal(ADMIN(NVME_ADM_DELETE_CQ, 1, 0, 0), NVME_SC_INVALID_QUEUE_DELETION);
    assert_int_equal(ADMIN(0x7e, 0, 0, 0), NVME_SC_INVALID_OPCODE);
    assert_int_equal(ADMIN(0x80, 0, 0, 0), NVME_SC_INVALID_OPCODE);    /* Format */
    /* admin commands take PRPs only */
    c = (struct nvme_sqe) { .opc = NVME_ADM_IDENTIFY, .flags = 1u << 6, .cdw10 = 1 };
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_INVALID_FIELD);
    /* delete and create again, then I/O works */
    assert_int_equal(ADMIN(NVME_ADM_DELETE_SQ, 1, 0, 0), 0);
    assert_int_equal(ADMIN(NVME_ADM_DELETE_CQ, 1, 0, 0), 0);
    assert_int_equal(host_create_io(&f->h, IOQ, QSIZE), 0);
    write_read_check(f, host_alloc(&f->h, 4096, NVME_PAGE), 4096, 0, 2);
#undef ADMIN
}

static void
test_prp_io(void **state)
{
    struct fx *f = *state;
    size_t half = MEM_BYTES / 2;
    uint64_t region2 = HOST_IOVA + half;

    io_queues(f);
    /* one block, page aligned; PRP1 dword aligned inside a page */
    write_read_check(f, host_alloc(&f->h, 4096, NVME_PAGE), 512, 0, 3);
    write_read_check(f, host_alloc(&f->h, 8192, NVME_PAGE) + 0x104, 512, 1, 4);
    /* two pages by PRP2, and a start inside a page spilling into a second */
    write_read_check(f, host_alloc(&f->h, 8192, NVME_PAGE), 8192, 8, 5);
    write_read_check(f, host_alloc(&f->h, 12288, NVME_PAGE) + 0xe00, 4096, 30, 6);
    /* the largest transfer (MDTS, 128 KiB) by PRP list */
    write_read_check(f, host_alloc(&f->h, NVME_MAX_XFER, NVME_PAGE),
                     NVME_MAX_XFER, 1000, 7);
    /* 64 KiB crossing from the first DMA region into the second */
    write_read_check(f, region2 - 0x8000 + 0x200, 0x10000, 5000, 8);
    /* the last blocks of the namespace */
    write_read_check(f, host_alloc(&f->h, 8192, NVME_PAGE), 8192,
                     NS_BYTES / 512 - 16, 9);
    /* a PRP list that goes on in a second list page: list entries start
     * at the end of a page, so its last slot points on */
    {
        size_t len = 8 * NVME_PAGE;
        uint64_t data = host_alloc(&f->h, len, NVME_PAGE);
        uint64_t lists = host_alloc(&f->h, 2 * NVME_PAGE, NVME_PAGE);
        uint64_t l1 = lists + NVME_PAGE - 3 * 8, *e = host_ptr(&f->h, l1);
        uint64_t *e2 = host_ptr(&f->h, lists + NVME_PAGE + 0x100);
        uint8_t *file = malloc(len);
        struct nvme_sqe c;

        fill(host_ptr(&f->h, data), len, 10);
        e[0] = data + NVME_PAGE;
        e[1] = data + 2 * NVME_PAGE;
        e[2] = lists + NVME_PAGE + 0x100;       /* next list */
        for (int i = 0; i < 5; i++) {
            e2[i] = data + (uint64_t)(3 + i) * NVME_PAGE;
        }
        c = rw(NVME_IO_WRITE, 2000, (uint32_t)(len / 512), data, l1);
        assert_int_equal(io(f, &c), 0);
        assert_int_equal(pread(f->backing, file, len, 2000 * 512), (ssize_t)len);
        assert_memory_equal(file, host_ptr(&f->h, data), len);
        free(file);
    }
    /* Flush */
    {
        struct nvme_sqe c = { .opc = NVME_IO_FLUSH, .nsid = 1 };
        assert_int_equal(io(f, &c), 0);
        c.nsid = 0xffffffff;
        assert_int_equal(io(f, &c), 0);
    }
    assert_true(f->h.irqs[IOQ] > 0);
}

/* SGL descriptor: address, length, type. */
static void
sgl(uint8_t *d, uint64_t addr, uint32_t len, uint8_t type)
{
    memset(d, 0, 16);
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    d[15] = (uint8_t)(type << 4);
}

static void
test_sgl_io(void **state)
{
    struct fx *f = *state;
    uint64_t a = host_alloc(&f->h, 3 * NVME_PAGE, NVME_PAGE);
    uint64_t segs = host_alloc(&f->h, 2 * NVME_PAGE, NVME_PAGE);
    uint64_t back = host_alloc(&f->h, 4096, NVME_PAGE);
    uint8_t *s1 = host_ptr(&f->h, segs), *s2 = host_ptr(&f->h, segs + 0x800);
    uint8_t expect[4096], file[4096];
    struct nvme_sqe c;

    io_queues(f);
    /* 4 KiB from three odd pieces: a chained Segment, then a Last Segment */
    fill(host_ptr(&f->h, a), 3 * NVME_PAGE, 11);
    memcpy(expect, host_ptr(&f->h, a + 3), 1000);
    memcpy(expect + 1000, host_ptr(&f->h, a + 5001), 2000);
    memcpy(expect + 3000, host_ptr(&f->h, a + 9000), 1096);
    sgl(s1, a + 3, 1000, 0);
    sgl(s1 + 16, segs + 0x800, 32, 3);      /* Last Segment: two more */
    sgl(s2, a + 5001, 2000, 0);
    sgl(s2 + 16, a + 9000, 1096, 0);
    c = rw(NVME_IO_WRITE, 300, 8, 0, 0);
    c.flags = 1u << 6;                      /* PSDT: SGL */
    sgl((uint8_t *)c.dptr, segs, 32, 2);    /* Segment */
    assert_int_equal(io(f, &c), 0);
    assert_int_equal(pread(f->backing, file, 4096, 300 * 512), 4096);
    assert_memory_equal(file, expect, 4096);
    /* read back through a single data block descriptor in the command */
    c = rw(NVME_IO_READ, 300, 8, 0, 0);
    c.flags = 1u << 6;
    sgl((uint8_t *)c.dptr, back, 4096, 0);
    assert_int_equal(io(f, &c), 0);
    assert_memory_equal(host_ptr(&f->h, back), expect, 4096);

    /* malformed SGLs */
    c = rw(NVME_IO_READ, 300, 8, 0, 0);
    c.flags = 1u << 6;
    sgl((uint8_t *)c.dptr, back, 2048, 0);          /* describes too little */
    assert_int_equal(SC(io(f, &c)), NVME_SC_SGL_INVALID_DATA);
    sgl((uint8_t *)c.dptr, back, 8192, 0);          /* too much */
    assert_int_equal(SC(io(f, &c)), NVME_SC_SGL_INVALID_DATA);
    sgl((uint8_t *)c.dptr, back, 4096, 5);          /* transport data block */
    assert_int_equal(SC(io(f, &c)), NVME_SC_SGL_INVALID_TYPE);
    sgl((uint8_t *)c.dptr, segs, 24, 3);            /* not whole descriptors */
    assert_int_equal(SC(io(f, &c)), NVME_SC_SGL_INVALID_SEG);
    sgl(s1 + 16, segs, 32, 3);                      /* Last Segment leading on */
    sgl((uint8_t *)c.dptr, segs, 32, 3);
    assert_int_equal(SC(io(f, &c)), NVME_SC_SGL_INVALID_SEG);
    sgl((uint8_t *)c.dptr, segs, 32, 2);            /* Segment chain looping */
    sgl(s1, a, 0, 0);                               /* (an empty data block) */
    sgl(s1 + 16, segs, 32, 2);
    assert_int_equal(SC(io(f, &c)), NVME_SC_SGL_INVALID_COUNT);
    sgl((uint8_t *)c.dptr, 0xdead0000, 32, 3);      /* list not in memory */
    assert_int_equal(SC(io(f, &c)), NVME_SC_DATA_XFER_ERROR);
    c.flags = 3u << 6;                              /* PSDT reserved */
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_FIELD);
}

static void
test_io_errors(void **state)
{
    struct fx *f = *state;
    uint64_t buf = host_alloc(&f->h, 3 * NVME_PAGE, NVME_PAGE);
    uint64_t list = host_alloc(&f->h, NVME_PAGE, NVME_PAGE);
    uint64_t *e = host_ptr(&f->h, list);
    uint32_t last = NS_BYTES / 512;
    struct nvme_sqe c;

    io_queues(f);
    c = rw(NVME_IO_READ, 0, 1, buf, 0);
    c.nsid = 2;
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_NS);
    c.nsid = 0;
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_NS);
    c = rw(NVME_IO_READ, last - 1, 2, buf, buf + NVME_PAGE);
    assert_int_equal(SC(io(f, &c)), NVME_SC_LBA_RANGE);
    c = rw(NVME_IO_READ, UINT64_MAX, 1, buf, 0);
    assert_int_equal(SC(io(f, &c)), NVME_SC_LBA_RANGE);
    c = rw(NVME_IO_READ, 0, 257, buf, list);                /* over MDTS */
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_FIELD);
    c = rw(NVME_IO_READ, 0, 1, buf + 2, 0);                 /* not dword aligned */
    assert_int_equal(SC(io(f, &c)), NVME_SC_PRP_INVALID_OFFSET);
    c = rw(NVME_IO_READ, 0, 16, buf, buf + NVME_PAGE + 8);  /* PRP2 inside a page */
    assert_int_equal(SC(io(f, &c)), NVME_SC_PRP_INVALID_OFFSET);
    e[0] = buf + NVME_PAGE;
    e[1] = buf + 2 * NVME_PAGE + 512;                       /* list entry offset */
    c = rw(NVME_IO_READ, 0, 24, buf, list);
    assert_int_equal(SC(io(f, &c)), NVME_SC_PRP_INVALID_OFFSET);
    e[1] = 0xdead0000;                                      /* not guest memory */
    c = rw(NVME_IO_READ, 0, 24, buf, list);
    assert_int_equal(SC(io(f, &c)), NVME_SC_DATA_XFER_ERROR);
    c = rw(NVME_IO_WRITE, 0, 1, 0xffffffffff000ull, 0);
    assert_int_equal(SC(io(f, &c)), NVME_SC_DATA_XFER_ERROR);
    c = rw(NVME_IO_READ, 0, 24, buf, 0xfffffffffffff000ull); /* list nowhere */
    assert_int_equal(SC(io(f, &c)), NVME_SC_DATA_XFER_ERROR);
    c = rw(0x7f, 0, 1, buf, 0);
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_OPCODE);
    c = rw(0x05, 0, 1, buf, 0);                             /* Compare: not offered */
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_OPCODE);
    c = rw(NVME_IO_READ, 0, 1, buf, 0);
    c.flags = 1;                                            /* fused */
    assert_int_equal(SC(io(f, &c)), NVME_SC_INVALID_FIELD);
    /* still a working controller */
    write_read_check(f, buf, 4096, 7, 12);
    assert_int_equal(host_reg32(&f->h, NVME_REG_CSTS) & NVME_CSTS_CFS, 0);
}

/* Many commands rung at once: completions in order, phases flipping as
 * the CQ wraps, SQ heads moving, and the CQ full holding the device back. */
static void
test_order_phase_flow(void **state)
{
    struct fx *f = *state;
    uint64_t buf = host_alloc(&f->h, 32 * NVME_PAGE, NVME_PAGE);
    uint16_t cids[QSIZE];
    struct nvme_cqe e;
    unsigned done = 0;

    io_queues(f);
    for (unsigned round = 0; round < 5; round++) {
        unsigned n = 40;            /* 200 in all: the 64-entry CQ wraps */
        for (unsigned i = 0; i < n; i++) {
            struct nvme_sqe c = rw(i % 2 ? NVME_IO_READ : NVME_IO_WRITE,
                                   i * 8, 8, buf + (i % 32) * NVME_PAGE, 0);
            cids[i] = host_submit(&f->h, IOQ, &c, false);
        }
        host_ring_sq(&f->h, IOQ);
        for (unsigned i = 0; i < n; i++) {
            uint8_t phase = f->h.cq[IOQ].phase;
            assert_int_equal(host_reap(&f->h, IOQ, &e, WAIT_MS, false), 0);
            assert_int_equal(e.cid, cids[i]);
            assert_int_equal(e.status & 1, phase);
            assert_int_equal(host_status(&e), 0);
            /* the head after this entry, or further on */
            assert_true((e.sqhd + QSIZE - (done + i + 1) % QSIZE) % QSIZE <= n - i - 1);
        }
        done += n;
    }
    /* The CQ full: 70 commands into a 64-entry CQ whose head we do not
     * ring. The device stops at 63 and goes on when the head moves. */
    for (unsigned i = 0; i < 60; i++) {
        struct nvme_sqe c = rw(NVME_IO_READ, i, 1, buf, 0);
        host_submit(&f->h, IOQ, &c, false);
    }
    host_ring_sq(&f->h, IOQ);
    for (unsigned i = 0; i < 60; i++) {
        assert_int_equal(host_reap(&f->h, IOQ, &e, WAIT_MS, true), 0);
    }
    for (unsigned i = 0; i < 10; i++) {
        struct nvme_sqe c = rw(NVME_IO_READ, i, 1, buf, 0);
        host_submit(&f->h, IOQ, &c, false);
    }
    host_ring_sq(&f->h, IOQ);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(host_reap(&f->h, IOQ, &e, WAIT_MS, true), 0);
    }
    /* 63 posted: no 64th while the head stays */
    assert_int_equal(host_reap(&f->h, IOQ, &e, 200, true), -1);
    host_wreg32(&f->h, NVME_REG_DBS + 8 * IOQ + 4, f->h.cq[IOQ].head);
    for (unsigned i = 0; i < 7; i++) {
        assert_int_equal(host_reap(&f->h, IOQ, &e, WAIT_MS, false), 0);
        assert_int_equal(host_status(&e), 0);
    }
    assert_true(f->h.irqs[IOQ] > 0);
}

static void
test_zeroes_deallocate(void **state)
{
    struct fx *f = *state;
    uint64_t buf = host_alloc(&f->h, 16 * NVME_PAGE, NVME_PAGE);
    uint64_t ranges = host_alloc(&f->h, NVME_PAGE, NVME_PAGE);
    uint8_t *r = host_ptr(&f->h, ranges), file[8192], zero[8192] = { 0 };
    struct nvme_sqe c;
    uint32_t nlb;
    uint64_t slba;

    io_queues(f);
    write_read_check(f, buf, 16 * NVME_PAGE, 0, 13);       /* blocks 0-127 */
    c = (struct nvme_sqe) { .opc = NVME_IO_WRITE_ZEROES, .nsid = 1,
                            .cdw10 = 16, .cdw12 = 15 };    /* blocks 16-31 */
    assert_int_equal(io(f, &c), 0);
    assert_int_equal(pread(f->backing, file, 8192, 16 * 512), 8192);
    assert_memory_equal(file, zero, 8192);
    c.cdw10 = NS_BYTES / 512;                               /* past the end */
    assert_int_equal(SC(io(f, &c)), NVME_SC_LBA_RANGE);
    /* deallocate blocks 64-79 and 100-101 */
    memset(r, 0, 32);
    nlb = 16, slba = 64;
    memcpy(r + 4, &nlb, 4);
    memcpy(r + 8, &slba, 8);
    nlb = 2, slba = 100;
    memcpy(r + 20, &nlb, 4);
    memcpy(r + 24, &slba, 8);
    c = (struct nvme_sqe) { .opc = NVME_IO_DSM, .nsid = 1, .cdw10 = 1,
                            .cdw11 = 1u << 2, .dptr = { ranges, 0 } };
    assert_int_equal(io(f, &c), 0);
    assert_int_equal(pread(f->backing, file, 8192, 64 * 512), 8192);
    assert_memory_equal(file, zero, 8192);
    assert_int_equal(pread(f->backing, file, 1024, 100 * 512), 1024);
    assert_memory_equal(file, zero, 1024);
    assert_int_equal(pread(f->backing, file, 512, 102 * 512), 512);
    assert_memory_not_equal(file, zero, 512);               /* untouched */
    /* a range past the end: nothing deallocated */
    slba = NS_BYTES / 512 - 1;
    memcpy(r + 24, &slba, 8);
    assert_int_equal(pwrite(f->backing, "x", 1, 64 * 512), 1);
    assert_int_equal(SC(io(f, &c)), NVME_SC_LBA_RANGE);
    assert_int_equal(pread(f->backing, file, 1, 64 * 512), 1);
    assert_int_equal(file[0], 'x');
}

/* Asynchronous events for bad doorbells, Abort, shutdown, reset and FLR. */
static void
test_events_shutdown_reset(void **state)
{
    struct fx *f = *state;
    struct nvme_sqe c;
    struct nvme_cqe e;
    uint16_t aer1, aer2, flags;
    uint32_t dw0;
    size_t px;

    io_queues(f);
    c = (struct nvme_sqe) { .opc = NVME_ADM_AER };
    aer1 = host_submit(&f->h, 0, &c, true);
    c = (struct nvme_sqe) { .opc = NVME_ADM_AER };
    aer2 = host_submit(&f->h, 0, &c, true);
    /* a doorbell of no queue: the first AER completes with the event */
    host_wreg32(&f->h, NVME_REG_DBS + 8 * 9, 1);
    assert_int_equal(host_reap(&f->h, 0, &e, WAIT_MS, false), 0);
    assert_int_equal(e.cid, aer1);
    assert_int_equal(e.dw0, 0x00010000);    /* error, invalid doorbell, log 1 */
    /* a tail past the queue: ignored (the event stays masked until the
     * error log is read), and the queue still works */
    host_wreg32(&f->h, NVME_REG_DBS + 8 * IOQ, QSIZE + 5);
    host_wreg32(&f->h, NVME_REG_DBS + 8 * IOQ + 4, 7);     /* head past tail */
    write_read_check(f, host_alloc(&f->h, 4096, NVME_PAGE), 4096, 0, 14);
    /* Abort the second AER */
    c = (struct nvme_sqe) { .opc = NVME_ADM_ABORT, .cdw10 = (uint32_t)aer2 << 16 };
    host_submit(&f->h, 0, &c, true);
    assert_int_equal(host_reap(&f->h, 0, &e, WAIT_MS, false), 0);
    assert_int_equal(e.cid, aer2);
    assert_int_equal(host_status(&e), NVME_SC_ABORT_REQ);
    assert_int_equal(host_reap(&f->h, 0, &e, WAIT_MS, false), 0);
    assert_int_equal(e.dw0, 0);                             /* aborted */
    /* Abort of something no longer there: not aborted */
    c = (struct nvme_sqe) { .opc = NVME_ADM_ABORT, .cdw10 = 999u << 16 | 1 };
    assert_int_equal(host_admin(&f->h, &c, &dw0), 0);
    assert_int_equal(dw0, 1);
    /* five AERs: the fifth is over the limit */
    for (int i = 0; i < 4; i++) {
        c = (struct nvme_sqe) { .opc = NVME_ADM_AER };
        host_submit(&f->h, 0, &c, true);
    }
    c = (struct nvme_sqe) { .opc = NVME_ADM_AER };
    assert_int_equal(SC(host_admin(&f->h, &c, NULL)), NVME_SC_AER_LIMIT);
    /* shutdown: the held AERs complete, SHST says done */
    host_wreg32(&f->h, NVME_REG_CC, NVME_CC_EN | 6u << 16 | 4u << 20 | 1u << 14);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(host_reap(&f->h, 0, &e, WAIT_MS, false), 0);
        assert_int_equal(host_status(&e), NVME_SC_ABORT_REQ);
    }
    for (int i = 0; i < 1000 && (host_reg32(&f->h, NVME_REG_CSTS) &
                                 NVME_CSTS_SHST_MASK) != NVME_CSTS_SHST_DONE; i++) {
        usleep(1000);
    }
    assert_int_equal(host_reg32(&f->h, NVME_REG_CSTS) & NVME_CSTS_SHST_MASK,
                     NVME_CSTS_SHST_DONE);
    /* reset by CC.EN = 0, then up again with fresh queues */
    host_wreg32(&f->h, NVME_REG_CC, 0);
    assert_int_equal(host_reg32(&f->h, NVME_REG_CSTS) & NVME_CSTS_RDY, 0);
    assert_int_equal(host_enable(&f->h, 16), 0);
    io_queues(f);
    write_read_check(f, host_alloc(&f->h, 4096, NVME_PAGE), 4096, 1, 15);
    /* FLR: every register back to its reset value */
    px = 0;
    for (uint8_t p = 0x40; p != 0; ) {
        uint8_t hdr[2];
        assert_int_equal(vfu_client_region_read(f->h.c, VFIO_PCI_CONFIG_REGION_INDEX,
                                                p, hdr, 2), 0);
        if (hdr[0] == PCI_CAP_ID_EXP) {
            px = p;
            break;
        }
        p = hdr[1];
    }
    assert_true(px != 0);
    flags = PCI_EXP_DEVCTL_BCR_FLR;
    assert_int_equal(vfu_client_region_write(f->h.c, VFIO_PCI_CONFIG_REGION_INDEX,
                                             px + PCI_EXP_DEVCTL, &flags, 2,
                                             false), 0);
    assert_int_equal(host_reg32(&f->h, NVME_REG_CC), 0);
    assert_int_equal(host_reg32(&f->h, NVME_REG_CSTS), 0);
    assert_int_equal(host_reg32(&f->h, NVME_REG_AQA), 0);
}

/* Doorbells through the device's shadow ioeventfds, no REGION_WRITE. */
static void
test_ioeventfd_doorbells(void **state)
{
    struct fx *f = *state;
    uint32_t v = 0;

    assert_int_equal(vfu_client_ioeventfds_install(f->h.c, VFIO_PCI_BAR0_REGION_INDEX),
                     2 * NVME_NR_QUEUES);
    assert_int_equal(vfu_client_doorbell(f->h.c, VFIO_PCI_BAR0_REGION_INDEX,
                                         NVME_REG_DBS + 4, &v, 4, true), 1);
    io_queues(f);
    for (unsigned i = 0; i < 100; i++) {        /* wraps the 64-entry queues */
        write_read_check(f, host_alloc(&f->h, 8192, NVME_PAGE) + (i % 8) * 512,
                         4096, i * 8, 16 + i);
        f->h.next_free = HOST_IOVA + 0x100000;  /* reuse the buffers */
    }
}

int
main(int argc, char *argv[])
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identify, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_features_and_logs, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_queue_admin_errors, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_prp_io, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_prp_io, setup_message, teardown),
        cmocka_unit_test_setup_teardown(test_sgl_io, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_sgl_io, setup_message, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup_message, teardown),
        cmocka_unit_test_setup_teardown(test_order_phase_flow, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_order_phase_flow, setup_message, teardown),
        cmocka_unit_test_setup_teardown(test_zeroes_deallocate, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_events_shutdown_reset, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_ioeventfd_doorbells, setup_mapped, teardown),
        cmocka_unit_test_setup_teardown(test_ioeventfd_doorbells, setup_message, teardown),
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-vfu-nvme\n", argv[0]);
        return 2;
    }
    server_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
