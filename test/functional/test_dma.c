/*
 * Functional tests of DMA over a real socket (see harness.h for the test
 * device and its copy engine): DMA_MAP and DMA_UNMAP with every rule (each
 * bad input: the exact errno, the server still serves, no fd leaked), the
 * register / unregister callbacks, all maps dropped when the client leaves,
 * the server copying client memory in place, the client library serving
 * the server's DMA_READ / DMA_WRITE, the flags of vfu_sgl_read/write
 * (messages or the mapping, counted), dirty-page logging through
 * DEVICE_FEATURE, and malformed DEVICE_FEATURE requests.
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
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define PG          4096u
#define MEM_SIZE    (1u << 20)          /* the client's memfd */
#define IOVA        0x100000ull
#define R           VFIO_USER_F_DMA_REGION_READ
#define W           VFIO_USER_F_DMA_REGION_WRITE
#define RW          (R | W)
#define BAR0        VFU_PCI_DEV_BAR0_REGION_IDX
#define HDR         sizeof(struct vfio_user_header)

typedef struct vfio_user_device_feature feature_t;
typedef struct vfio_user_device_feature_dma_logging_range log_range_t;
typedef struct vfio_user_device_feature_dma_logging_control log_control_t;
typedef struct vfio_user_device_feature_dma_logging_report log_report_t;

struct fx {
    struct test_dev *dev;
    vfu_client_t *c;
    int memfd;
    uint8_t *mem;                       /* the client's view of memfd */
    int fds_before;                     /* open fds once set up */
};

static void
set_timeouts(vfu_client_t *c)
{
    /* A server that fails to answer fails the test instead of hanging it. */
    struct timeval tv = { .tv_sec = 20 };

    assert_int_equal(setsockopt(vfu_client_fd(c), SOL_SOCKET, SO_RCVTIMEO,
                                &tv, sizeof(tv)), 0);
    assert_int_equal(setsockopt(vfu_client_fd(c), SOL_SOCKET, SO_SNDTIMEO,
                                &tv, sizeof(tv)), 0);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dev = dev_start(1);
    f->dev->dma_engine = true;
    f->c = client_open(f->dev);
    set_timeouts(f->c);
    f->memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(f->memfd >= 0);
    assert_int_equal(ftruncate(f->memfd, MEM_SIZE), 0);
    f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  f->memfd, 0);
    assert_true(f->mem != MAP_FAILED);
    f->fds_before = count_open_fds();
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
    assert_int_equal(dev->nr_attaches, 1);
    assert_int_equal(dev->run_errno, ENOTCONN);
    /* Whatever was still mapped went, each with its callback. */
    assert_int_equal(dev->nr_dma_unregister, dev->nr_dma_register);
    munmap(f->mem, MEM_SIZE);
    close(f->memfd);
    dev_stop(dev);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Sends a raw request and returns its reply's errno (0: success, -1: bad). */
static int
req(struct fx *f, uint16_t cmd, const void *payload, size_t len,
    const int *fds, size_t nr_fds, void *reply, size_t cap, size_t *reply_len)
{
    return raw_request(f->c, cmd, 0, payload, len, fds, nr_fds, reply, cap,
                       reply_len);
}

/* The request fails with exactly @err, the server serves on, no fd leaks. */
#define EXPECT_ERR(f, cmd, payload, len, fds, nr, err) do {                  \
        assert_int_equal(req((f), (cmd), (payload), (len), (fds), (nr),       \
                             NULL, 0, NULL), (err));                          \
        assert_true(server_alive((f)->c));                                    \
        assert_int_equal(count_open_fds(), (f)->fds_before);                  \
    } while (0)

static struct vfio_user_dma_map
mk_map(uint64_t addr, uint64_t size, uint64_t offset, uint32_t flags)
{
    return (struct vfio_user_dma_map){
        .argsz = sizeof(struct vfio_user_dma_map), .flags = flags,
        .offset = offset, .addr = addr, .size = size,
    };
}

/* DMA_UNMAP's header (the structure ends in a flexible array). */
struct unmap_req {
    uint32_t argsz;
    uint32_t flags;
    uint64_t addr;
    uint64_t size;
} __attribute__((packed));
_Static_assert(sizeof(struct unmap_req) == sizeof(struct vfio_user_dma_unmap),
               "DMA_UNMAP is 24 bytes");

static struct unmap_req
mk_unmap(uint64_t addr, uint64_t size, uint32_t flags)
{
    return (struct unmap_req){
        .argsz = sizeof(struct unmap_req), .flags = flags,
        .addr = addr, .size = size,
    };
}

#define EXPECT_MAP_ERR(f, m, fds, nr, err) \
    EXPECT_ERR(f, VFIO_USER_DMA_MAP, &(m), sizeof(m), fds, nr, err)
#define EXPECT_UNMAP_ERR(f, u, err) \
    EXPECT_ERR(f, VFIO_USER_DMA_UNMAP, &(u), sizeof(u), NULL, 0, err)

static void
reg_write(struct fx *f, uint64_t off, uint64_t val, uint32_t size)
{
    assert_int_equal(vfu_client_region_write(f->c, BAR0, off, &val, size,
                                             false), 0);
}

/* Runs a DMA engine command (harness.h); returns its result (an errno). */
static uint32_t
engine(struct fx *f, uint32_t cmd, uint64_t src, uint64_t dst, uint64_t len)
{
    uint32_t result = 0xdead;

    reg_write(f, DMA_REG_SRC, src, 8);
    reg_write(f, DMA_REG_DST, dst, 8);
    reg_write(f, DMA_REG_LEN, len, 8);
    reg_write(f, DMA_REG_CMD, cmd, 4);
    assert_int_equal(vfu_client_region_read(f->c, BAR0, DMA_REG_RESULT,
                                            &result, 4), 0);
    return result;
}

/* Runs DMA_CMD_RW_FLAGS with @flags; returns its result (an errno). */
static uint32_t
engine_rw(struct fx *f, uint32_t flags, uint64_t src, uint64_t dst,
          uint64_t len)
{
    reg_write(f, DMA_REG_FLAGS, flags, 4);
    return engine(f, DMA_CMD_RW_FLAGS, src, dst, len);
}

/* DMA_READ / DMA_WRITE the client library has answered. */
static uint64_t
dma_served(vfu_client_t *c)
{
    struct vfu_client_stats st;
    vfu_client_get_stats(c, &st);
    return st.dma_served;
}

static void
fill(uint8_t *p, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed + i * 7);
    }
}

/* A DEVICE_FEATURE request: header then @dlen bytes of @data. */
static size_t
mk_feature(void *buf, uint32_t argsz, uint32_t flags, const void *data,
           size_t dlen)
{
    feature_t h = { .argsz = argsz, .flags = flags };

    memcpy(buf, &h, sizeof(h));
    if (dlen > 0) {
        memcpy((uint8_t *)buf + sizeof(h), data, dlen);
    }
    return sizeof(h) + dlen;
}

#define START   (VFIO_DEVICE_FEATURE_DMA_LOGGING_START | VFIO_DEVICE_FEATURE_SET)
#define STOP    (VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP | VFIO_DEVICE_FEATURE_SET)
#define REPORT  (VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT | VFIO_DEVICE_FEATURE_GET)

/* ------------------------------------------------------------------ */
/* DMA_MAP / DMA_UNMAP                                                 */
/* ------------------------------------------------------------------ */

static void
test_map_unmap(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct unmap_req u = mk_unmap(IOVA, PG, 0), echo;
    size_t len = 0;

    /* With an fd: the server maps it, and does not keep the fd. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 16 * PG, f->memfd, 4 * PG,
                                        f->mem + 4 * PG, RW), 0);
    assert_int_equal(dev->nr_dma_register, 1);
    assert_ptr_equal(dev->last_dma_register.iova.iov_base, (void *)IOVA);
    assert_int_equal(dev->last_dma_register.iova.iov_len, 16 * PG);
    assert_non_null(dev->last_dma_register.vaddr);
    assert_ptr_equal(dev->last_dma_register.mapping.iov_base,
                     dev->last_dma_register.vaddr);
    assert_int_equal(dev->last_dma_register.mapping.iov_len, 16 * PG);
    assert_int_equal(dev->last_dma_register.page_size, PG);
    assert_int_equal(dev->last_dma_register.prot, PROT_READ | PROT_WRITE);
    assert_int_equal(count_open_fds(), f->fds_before);

    /* The unregister callback still sees the memory. */
    f->mem[4 * PG] = 0x5c;
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA, 16 * PG, 0), 0);
    assert_int_equal(dev->nr_dma_unregister, 1);
    assert_int_equal(dev->dma_unregister_peek, 0x5c);
    assert_int_equal(dev->last_dma_unregister.iova.iov_len, 16 * PG);

    /* Without an fd: known to the server, not mapped there. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 16 * PG, -1, 0, f->mem,
                                        R), 0);
    assert_int_equal(dev->nr_dma_register, 2);
    assert_null(dev->last_dma_register.vaddr);
    assert_null(dev->last_dma_register.mapping.iov_base);
    /* No mapping: the system page, as the original reports. */
    assert_int_equal(dev->last_dma_register.page_size, sysconf(_SC_PAGESIZE));
    assert_int_equal(dev->last_dma_register.prot, PROT_READ);
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA, 16 * PG, 0), 0);
    assert_int_equal(dev->nr_dma_unregister, 2);
    assert_int_equal(dev->dma_unregister_peek, -1);

    /* A bigger argsz is accepted, as the kernel does. */
    struct vfio_user_dma_map m = mk_map(IOVA, PG, 0, R);
    m.argsz = 64;
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &m, sizeof(m), NULL, 0, NULL, 0,
                         NULL), 0);
    /* The reply to DMA_UNMAP echoes the request. */
    assert_int_equal(req(f, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0,
                         &echo, sizeof(echo), &len), 0);
    assert_int_equal(len, sizeof(u));
    assert_memory_equal(&echo, &u, sizeof(u));
    assert_int_equal(dev->nr_dma_unregister, 3);
    assert_int_equal(count_open_fds(), f->fds_before);
}

static void
test_map_refused(void **state)
{
    struct fx *f = *state;
    struct vfio_user_dma_map m;
    uint8_t buf[64] = { 0 };
    int two[2] = { f->memfd, f->memfd };
    int efd = eventfd(0, EFD_CLOEXEC);
    char path[] = "/tmp/vfu-dma-XXXXXX";
    int tmp = mkstemp(path), ro;

    assert_true(efd >= 0 && tmp >= 0);
    assert_int_equal(ftruncate(tmp, PG), 0);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    unlink(path);
    f->fds_before = count_open_fds();

    /* Payload sizes and argsz. */
    m = mk_map(IOVA, PG, 0, RW);
    memcpy(buf, &m, sizeof(m));
    EXPECT_ERR(f, VFIO_USER_DMA_MAP, NULL, 0, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DMA_MAP, buf, sizeof(m) - 1, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DMA_MAP, buf, sizeof(m) + 1, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DMA_MAP, buf, sizeof(m) + 1, &f->memfd, 1, EINVAL);
    m.argsz = sizeof(m) - 1;
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m.argsz = 0;
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);

    /* Flags: none, unknown. */
    m = mk_map(IOVA, PG, 0, 0);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m.flags = RW | (1u << 4);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m.flags = 1u << 31;
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);

    /* Size and alignment (4 KiB pages), wrap-around. */
    m = mk_map(IOVA, 0, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m = mk_map(IOVA + 512, PG, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m = mk_map(IOVA, PG + 512, 0, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(UINT64_MAX - PG + 1, 2 * PG, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m = mk_map(UINT64_MAX - PG + 1, PG, 0, RW);     /* ends at 2^64 */
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);

    /* The offset: 0 without an fd; aligned, inside the file with one. */
    m = mk_map(IOVA, PG, PG, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m = mk_map(IOVA, PG, 100, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(IOVA, 2 * PG, MEM_SIZE - PG, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(IOVA, PG, UINT64_MAX - PG + 1, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);

    /* Fds: two; one that cannot be mapped; one without write access. */
    m = mk_map(IOVA, PG, 0, RW);
    EXPECT_MAP_ERR(f, m, two, 2, EINVAL);
    EXPECT_MAP_ERR(f, m, &efd, 1, ENODEV);
    EXPECT_MAP_ERR(f, m, &ro, 1, EACCES);
    m.flags = R;
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &m, sizeof(m), &ro, 1, NULL, 0,
                         NULL), 0);
    assert_int_equal(f->dev->nr_dma_register, 1);

    /* Overlaps: exact, either side, inside, around. */
    m = mk_map(IOVA, PG, 0, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EEXIST);
    m = mk_map(IOVA - PG, 2 * PG, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EEXIST);
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &(struct vfio_user_dma_map){
                             .argsz = 32, .flags = RW, .addr = IOVA + PG,
                             .size = 4 * PG }, 32, NULL, 0, NULL, 0, NULL), 0);
    m = mk_map(IOVA + 2 * PG, PG, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EEXIST);
    m = mk_map(0, 1ull << 30, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EEXIST);
    m = mk_map(IOVA + 3 * PG, PG, 0, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EEXIST);
    m = mk_map(IOVA + 4 * PG, 2 * PG, 0, RW);
    EXPECT_MAP_ERR(f, m, NULL, 0, EEXIST);
    assert_int_equal(f->dev->nr_dma_register, 2);

    /* Nothing changed: the two maps are there, and go. */
    struct unmap_req u = mk_unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL);
    assert_int_equal(req(f, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL,
                         0, NULL), 0);
    assert_int_equal(f->dev->nr_dma_unregister, 2);
    close(efd);
    close(tmp);
    close(ro);
}

#define MMAP    VFIO_USER_F_DMA_REGION_MMAP
#define FILE_IO VFIO_USER_F_DMA_REGION_FILE_IO

/*
 * DMA_MAP's MMAP and FILE_IO flags: MMAP maps the fd (as without it);
 * FILE_IO keeps a duplicate of the fd (one more open fd until the region
 * goes), maps nothing, and the device's copies go through pread/pwrite or,
 * with flags 0, by message. Each bad combination refused with its errno.
 */
static void
test_map_flags(void **state)
{
    struct fx *f = *state;
    struct test_dev *dev = f->dev;
    struct vfio_user_dma_map m;
    struct vfu_client_stats before, after;
    int efd = eventfd(0, EFD_CLOEXEC);
    char path[] = "/tmp/vfu-dma-XXXXXX";
    int tmp = mkstemp(path), ro;
    uint64_t served;

    assert_true(efd >= 0 && tmp >= 0);
    assert_int_equal(ftruncate(tmp, PG), 0);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    unlink(path);
    f->fds_before = count_open_fds();

    /* Refused: unknown bits, MMAP or FILE_IO without an fd, or both. */
    m = mk_map(IOVA, PG, 0, RW | (1u << 4));
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(IOVA, PG, 0, RW | (1u << 31));
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(IOVA, PG, 0, RW | MMAP);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m = mk_map(IOVA, PG, 0, RW | FILE_IO);
    EXPECT_MAP_ERR(f, m, NULL, 0, EINVAL);
    m = mk_map(IOVA, PG, 0, RW | MMAP | FILE_IO);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(IOVA, PG, 0, MMAP | FILE_IO);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    /* FILE_IO: not a stream; an access the file allows; inside the file. */
    m = mk_map(IOVA, PG, 0, RW | FILE_IO);
    EXPECT_MAP_ERR(f, m, &efd, 1, EINVAL);
    EXPECT_MAP_ERR(f, m, &ro, 1, EACCES);
    m = mk_map(IOVA, 2 * PG, MEM_SIZE - PG, RW | FILE_IO);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);
    m = mk_map(IOVA, PG, 0, R | FILE_IO);
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &m, sizeof(m), &ro, 1, NULL, 0,
                         NULL), 0);
    assert_int_equal(count_open_fds(), f->fds_before + 1);
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA, PG, 0), 0);
    assert_int_equal(count_open_fds(), f->fds_before);
    assert_int_equal(dev->nr_dma_register, 1);

    /* The client library checks the same before sending anything. */
    vfu_client_get_stats(f->c, &before);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, -1, 0, f->mem,
                                        RW | FILE_IO), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, -1, 0, f->mem,
                                        RW | MMAP), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, f->memfd, 0, f->mem,
                                        RW | MMAP | FILE_IO), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, f->memfd, 0, f->mem,
                                        RW | (1u << 4)), -1);
    assert_int_equal(errno, EINVAL);
    vfu_client_get_stats(f->c, &after);
    assert_int_equal(after.requests, before.requests);

    /* MMAP: mapped; the fd is not kept. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 64 * PG, f->memfd, 0,
                                        f->mem, RW | MMAP), 0);
    assert_non_null(dev->last_dma_register.vaddr);
    assert_int_equal(dev->last_dma_register.mapping.iov_len, 64 * PG);
    assert_int_equal(count_open_fds(), f->fds_before);

    /* FILE_IO: not mapped, the fd kept; the client can serve messages. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 64 * PG, 64 * PG,
                                        f->memfd, 64 * PG, f->mem + 64 * PG,
                                        RW | FILE_IO), 0);
    assert_null(dev->last_dma_register.vaddr);
    assert_int_equal(dev->last_dma_register.mapping.iov_len, 0);
    assert_int_equal(dev->last_dma_register.iova.iov_len, 64 * PG);
    assert_int_equal(count_open_fds(), f->fds_before + 1);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 64 * PG, IOVA, PG), EFAULT);

    /* Direct: pread/pwrite at the fd's offset, no message. */
    fill(f->mem, 3 * PG, 4);
    served = dma_served(f->c);
    assert_int_equal(engine(f, DMA_CMD_RW, IOVA + 5, IOVA + 70 * PG + 1,
                            3 * PG), 0);
    assert_memory_equal(f->mem + 70 * PG + 1, f->mem + 5, 3 * PG);
    assert_int_equal(engine(f, DMA_CMD_RW, IOVA + 70 * PG, IOVA + 10 * PG,
                            3 * PG), 0);
    assert_memory_equal(f->mem + 10 * PG, f->mem + 70 * PG, 3 * PG);
    assert_int_equal(dma_served(f->c), served);
    /* Flags 0: by message (one read, one write). */
    memset(f->mem + 100 * PG, 0, PG);
    assert_int_equal(engine_rw(f, 0, IOVA, IOVA + 100 * PG, PG), 0);
    assert_memory_equal(f->mem + 100 * PG, f->mem, PG);
    assert_int_equal(dma_served(f->c), served + 2);

    /* Unmapped: the duplicate is closed; gone for the device too. */
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA + 64 * PG, 64 * PG, 0), 0);
    assert_int_equal(count_open_fds(), f->fds_before);
    assert_int_equal(engine(f, DMA_CMD_RW, IOVA, IOVA + 64 * PG, 8), ENOENT);
    close(efd);
    close(tmp);
    close(ro);
}

/* max_dma_maps regions, then ENOSPC; all dropped with one request. */
static void
test_map_limit(void **state)
{
    struct fx *f = *state;
    const struct vfu_client_server_info *info = vfu_client_server_info(f->c);
    struct vfio_user_dma_map m;
    struct unmap_req u = mk_unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL);

    assert_int_equal(info->max_dma_maps, 65535);
    assert_int_equal(info->pgsizes, PG);
    /* Posted (NO_REPLY) so that they stream; then one with a reply. */
    for (uint64_t i = 0; i < info->max_dma_maps; i++) {
        m = mk_map(i * 2 * PG, PG, 0, i % 2 ? R : RW);
        assert_int_equal(vfu_client_send(f->c, VFIO_USER_DMA_MAP,
                                         VFIO_USER_F_NO_REPLY, &m, sizeof(m),
                                         NULL, 0, NULL), 0);
    }
    assert_true(server_alive(f->c));
    assert_int_equal(f->dev->nr_dma_register, 65535);
    m = mk_map(info->max_dma_maps * 2 * PG, PG, 0, RW);
    EXPECT_MAP_ERR(f, m, &f->memfd, 1, EINVAL);    /* beyond max_regions */
    assert_int_equal(req(f, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL,
                         0, NULL), 0);
    assert_int_equal(f->dev->nr_dma_unregister, 65535);
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &m, sizeof(m), NULL, 0, NULL, 0,
                         NULL), 0);
}

/*
 * A device's max_regions (vfu_setup_device_dma()), set before the client
 * comes: announced in VERSION (as far as the client's proposal goes), and
 * the next DMA_MAP beyond it refused with EINVAL, with or without an fd;
 * the older three-argument call means LIBVFIO_USER_MAX_DMA_REGIONS.
 */
static void
test_max_regions(void **state)
{
    struct test_dev *dev = dev_start(3);
    int base = count_open_fds(), memfd = memfd_create("guest", MFD_CLOEXEC);
    struct vfio_user_dma_map m;
    int fds;
    vfu_client_t *c;

    (void)state;
    assert_true(memfd >= 0);
    assert_int_equal(ftruncate(memfd, MEM_SIZE), 0);
    assert_int_equal(vfu_setup_device_dma(dev->ctx, 0, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_setup_device_dma(dev->ctx,
                                          LIBVFIO_USER_MAX_DMA_REGIONS + 1,
                                          NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    /* The server reads it when a client negotiates, after we connect. */
    assert_int_equal(vfu_setup_device_dma(dev->ctx, 3, NULL, NULL), 0);
    c = client_open(dev);
    set_timeouts(c);
    fds = count_open_fds();
    assert_int_equal(vfu_client_server_info(c)->max_dma_maps, 3);
    assert_int_equal(vfu_client_dma_map(c, IOVA, PG, memfd, 0, NULL, RW), 0);
    assert_int_equal(vfu_client_dma_map(c, IOVA + 2 * PG, PG, -1, 0, &fds, R),
                     0);
    assert_int_equal(vfu_client_dma_map(c, IOVA + 4 * PG, PG, memfd, PG, NULL,
                                        R), 0);
    m = mk_map(IOVA + 6 * PG, PG, 0, RW);
    assert_int_equal(raw_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), NULL,
                                 0, NULL, 0, NULL), EINVAL);
    assert_int_equal(raw_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m),
                                 &memfd, 1, NULL, 0, NULL), EINVAL);
    assert_true(server_alive(c));
    assert_int_equal(count_open_fds(), fds);
    /* One goes, one more fits. */
    assert_int_equal(vfu_client_dma_unmap(c, IOVA + 2 * PG, PG, 0), 0);
    assert_int_equal(raw_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m),
                                 &memfd, 1, NULL, 0, NULL), 0);
    vfu_client_close(c);

    /*
     * The older form, as SPDK and QEMU call it: 10^6. VERSION only lowers
     * what the client proposed, so a client proposing 10^6 is told so...
     */
    assert_int_equal(vfu_setup_device_dma(dev->ctx, NULL, NULL), 0);
    c = vfu_client_connect(dev->sock);
    assert_non_null(c);
    set_timeouts(c);
    assert_int_equal(vfu_client_negotiate(c, "{\"capabilities\":"
                                             "{\"max_dma_maps\":1000000}}"),
                     0);
    assert_int_equal(vfu_client_server_info(c)->max_dma_maps,
                     LIBVFIO_USER_MAX_DMA_REGIONS);
    vfu_client_close(c);
    /* ...and one proposing the default (65535) may still map more. */
    c = client_open(dev);
    set_timeouts(c);
    assert_int_equal(vfu_client_server_info(c)->max_dma_maps, 65535);
    for (uint64_t i = 0; i < 65535; i++) {
        m = mk_map(i * 2 * PG, PG, 0, R);
        assert_int_equal(vfu_client_send(c, VFIO_USER_DMA_MAP,
                                         VFIO_USER_F_NO_REPLY, &m, sizeof(m),
                                         NULL, 0, NULL), 0);
    }
    m = mk_map(65535 * 2 * PG, PG, 0, R);
    assert_int_equal(raw_request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), NULL,
                                 0, NULL, 0, NULL), 0);
    vfu_client_close(c);
    dev_join(dev);
    close(memfd);
    /* Every fd the server received is closed: the mappings keep the file. */
    assert_int_equal(count_open_fds(), base);
    dev_stop(dev);
}

static void
test_unmap_refused(void **state)
{
    struct fx *f = *state;
    struct unmap_req u;
    uint8_t buf[64] = { 0 };

    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 4 * PG, f->memfd, 0,
                                        f->mem, RW), 0);

    /* Payload sizes, argsz; the old bitmap (GET_DIRTY_BITMAP) is gone. */
    u = mk_unmap(IOVA, 4 * PG, 0);
    memcpy(buf, &u, sizeof(u));
    EXPECT_ERR(f, VFIO_USER_DMA_UNMAP, NULL, 0, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DMA_UNMAP, buf, sizeof(u) - 1, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DMA_UNMAP, buf, sizeof(u) + 1, NULL, 0, EINVAL);
    u.argsz = sizeof(u) - 1;
    EXPECT_UNMAP_ERR(f, u, EINVAL);
    u.argsz = (1u << 20) + 8;       /* room for a bitmap nobody asked for */
    EXPECT_UNMAP_ERR(f, u, EINVAL);
    u = mk_unmap(IOVA, 4 * PG, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
    EXPECT_UNMAP_ERR(f, u, EINVAL);
    u.argsz = sizeof(u) + sizeof(struct vfio_user_bitmap) + 8;
    memcpy(buf, &u, sizeof(u));
    memcpy(buf + sizeof(u), &(struct vfio_user_bitmap){ .pgsize = PG,
                                                         .size = 8 }, 16);
    EXPECT_ERR(f, VFIO_USER_DMA_UNMAP, buf, sizeof(u) + 16, NULL, 0, EINVAL);
    u = mk_unmap(IOVA, 4 * PG, 1u << 2);
    EXPECT_UNMAP_ERR(f, u, EINVAL);

    /* UNMAP_ALL takes address and size 0. */
    u = mk_unmap(IOVA, 0, VFIO_DMA_UNMAP_FLAG_ALL);
    EXPECT_UNMAP_ERR(f, u, EINVAL);
    u = mk_unmap(0, 4 * PG, VFIO_DMA_UNMAP_FLAG_ALL);
    EXPECT_UNMAP_ERR(f, u, EINVAL);
    u = mk_unmap(IOVA, 4 * PG, VFIO_DMA_UNMAP_FLAG_ALL);
    EXPECT_UNMAP_ERR(f, u, EINVAL);

    /* Only an exact match goes. */
    u = mk_unmap(IOVA, 0, 0);
    EXPECT_UNMAP_ERR(f, u, EINVAL);
    u = mk_unmap(IOVA, 2 * PG, 0);
    EXPECT_UNMAP_ERR(f, u, ENOENT);
    u = mk_unmap(IOVA, 8 * PG, 0);
    EXPECT_UNMAP_ERR(f, u, ENOENT);
    u = mk_unmap(IOVA + PG, 3 * PG, 0);
    EXPECT_UNMAP_ERR(f, u, ENOENT);
    u = mk_unmap(IOVA + 64 * PG, PG, 0);
    EXPECT_UNMAP_ERR(f, u, ENOENT);
    u = mk_unmap(UINT64_MAX - PG + 1, 2 * PG, 0);
    EXPECT_UNMAP_ERR(f, u, ENOENT);
    assert_int_equal(f->dev->nr_dma_unregister, 0);

    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA, 4 * PG, 0), 0);
    assert_int_equal(f->dev->nr_dma_unregister, 1);
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA, 4 * PG, 0), -1);
    assert_int_equal(errno, ENOENT);
    /* UNMAP_ALL with nothing mapped. */
    assert_int_equal(vfu_client_dma_unmap(f->c, 0, 0,
                                          VFIO_DMA_UNMAP_FLAG_ALL), 0);
    assert_int_equal(count_open_fds(), f->fds_before);
}

/* The client library's own checks, before anything is sent. */
static void
test_client_checks(void **state)
{
    struct fx *f = *state;
    struct vfu_client_stats before, after;

    vfu_client_get_stats(f->c, &before);
    assert_int_equal(vfu_client_dma_map(NULL, IOVA, PG, -1, 0, f->mem, R), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, -1, 0, NULL, R), -1);
    assert_int_equal(errno, EINVAL);        /* nothing to serve it from */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, -2, 0, f->mem, R), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, PG, -1, 0, f->mem, 4), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 0, -1, 0, f->mem, R), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_map(f->c, UINT64_MAX, 2, -1, 0, f->mem, R),
                     -1);
    assert_int_equal(errno, EINVAL);
    vfu_client_get_stats(f->c, &after);
    assert_int_equal(after.requests, before.requests);

    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 4 * PG, -1, 0, f->mem, R),
                     0);
    vfu_client_get_stats(f->c, &before);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + PG, PG, -1, 0, f->mem, R),
                     -1);
    assert_int_equal(errno, EEXIST);
    vfu_client_get_stats(f->c, &after);
    assert_int_equal(after.requests, before.requests);
    /* The server's refusal comes back as it is. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 8 * PG, 100, -1, 0,
                                        f->mem, R), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA, PG, 0), -1);
    assert_int_equal(errno, ENOENT);
}

/* ------------------------------------------------------------------ */
/* The device using client memory                                      */
/* ------------------------------------------------------------------ */

/* The server copies in client memory it mapped; the client sees it. */
static void
test_engine_copy(void **state)
{
    struct fx *f = *state;
    uint8_t want[3 * PG];

    /* Two adjacent regions of one memfd (the copy spans them), one RO. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 8 * PG, f->memfd, 0,
                                        f->mem, RW), 0);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 8 * PG, 8 * PG, f->memfd,
                                        8 * PG, f->mem + 8 * PG, RW), 0);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 32 * PG, 4 * PG, f->memfd,
                                        32 * PG, f->mem + 32 * PG, R), 0);
    fill(f->mem + 32 * PG, 3 * PG, 1);
    memcpy(want, f->mem + 32 * PG, sizeof(want));

    /* RO -> two regions, from the middle of one page across the boundary. */
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 32 * PG, IOVA + 6 * PG + 9,
                            3 * PG), 0);
    assert_memory_equal(f->mem + 6 * PG + 9, want, sizeof(want));

    /* Refusals: writing RO memory, unmapped memory, a hole. */
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA, IOVA + 32 * PG, PG), EACCES);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA, IOVA + 64 * PG, PG), ENOENT);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 14 * PG, IOVA, 2 * PG),
                     0);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 14 * PG, IOVA, 3 * PG),
                     ENOENT);
    assert_memory_equal(f->mem + 32 * PG, want, sizeof(want));

    /* Memory registered without an fd is not mapped: vfu_sgl_get refuses. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 64 * PG, 4 * PG, -1, 0,
                                        f->mem + 64 * PG, RW), 0);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 64 * PG, IOVA, PG), EFAULT);

    /* Once unmapped, the range is gone for the device too. */
    assert_int_equal(vfu_client_dma_unmap(f->c, IOVA + 8 * PG, 8 * PG, 0), 0);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA, IOVA + 9 * PG, 8), ENOENT);
}

/* A client that leaves takes its maps with it; the next starts afresh. */
static void
test_disconnect(void **state)
{
    struct test_dev *dev = dev_start(2);
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    int base;
    vfu_client_t *c;

    (void)state;
    assert_true(memfd >= 0);
    assert_int_equal(ftruncate(memfd, MEM_SIZE), 0);
    base = count_open_fds();
    c = client_open(dev);
    set_timeouts(c);
    assert_int_equal(vfu_client_dma_map(c, IOVA, 4 * PG, memfd, 0, NULL, RW),
                     0);
    assert_int_equal(vfu_client_dma_map(c, IOVA + 4 * PG, 4 * PG, memfd,
                                        4 * PG, NULL, R), 0);
    assert_int_equal(vfu_client_dma_map(c, 1ull << 40, PG, -1, 0, &base, RW),
                     0);
    /* For file I/O: the server holds a duplicate until the client goes. */
    assert_int_equal(vfu_client_dma_map(c, 1ull << 41, PG, memfd, 0, NULL,
                                        RW | VFIO_USER_F_DMA_REGION_FILE_IO),
                     0);
    assert_int_equal(dev->nr_dma_register, 4);
    assert_int_equal(pwrite(memfd, "\x77", 1, 4 * PG), 1);
    /* It leaves while logging. */
    assert_int_equal(vfu_client_dirty_start(c, PG, NULL, 0), 0);
    vfu_client_close(c);

    /*
     * The second client maps the same ranges and starts its own log:
     * nothing is left over (the first one's log used to make it EBUSY).
     */
    c = client_open(dev);
    set_timeouts(c);
    assert_int_equal(dev->nr_dma_unregister, 4);
    assert_int_equal(dev->nr_resets[VFU_RESET_LOST_CONN], 1);
    assert_int_equal(vfu_client_dma_map(c, IOVA, 8 * PG, memfd, 0, NULL, RW),
                     0);
    assert_int_equal(dev->nr_dma_register, 5);
    {
        uint64_t bm[1];
        assert_int_equal(vfu_client_dirty_report(c, IOVA, 8 * PG, PG, bm), -1);
        assert_int_equal(errno, EINVAL);        /* not logging */
        assert_int_equal(vfu_client_dirty_start(c, PG, NULL, 0), 0);
        assert_int_equal(vfu_client_dirty_stop(c), 0);
    }
    vfu_client_close(c);
    dev_join(dev);
    assert_int_equal(dev->nr_dma_unregister, 5);
    /* The last one unregistered saw its memory (the first byte, 0). */
    assert_int_equal(dev->dma_unregister_peek, 0);
    /* Every fd the server received is closed; its mappings are gone. */
    assert_int_equal(count_open_fds(), base);
    dev_stop(dev);
    close(memfd);
}

/* ------------------------------------------------------------------ */
/* DMA by message: the client library serves the server                */
/* ------------------------------------------------------------------ */

#define MSG_IOVA    0x40000000ull
#define MSG_SIZE    (4u << 20)

/*
 * Memory registered without an fd: the device's vfu_sgl_read/write become
 * DMA_READ / DMA_WRITE, which the library answers while it waits for the
 * reply to the BAR write that started them.
 */
static void
test_msg_dma(void **state)
{
    struct fx *f = *state;
    uint8_t *guest = malloc(MSG_SIZE);
    uint64_t served;

    assert_non_null(guest);
    fill(guest, MSG_SIZE, 3);
    assert_int_equal(vfu_client_dma_map(f->c, MSG_IOVA, MSG_SIZE, -1, 0, guest,
                                        RW), 0);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, MEM_SIZE, f->memfd, 0,
                                        f->mem, RW), 0);

    /*
     * 1 MiB by message into memfd: DMA_READs of 64 KiB at most (what QEMU
     * can answer in one write; see lib/server/dma_msg.c).
     */
    served = dma_served(f->c);
    assert_int_equal(engine(f, DMA_CMD_RW, MSG_IOVA, IOVA, MEM_SIZE), 0);
    assert_memory_equal(f->mem, guest, MEM_SIZE);
    assert_int_equal(dma_served(f->c), served + 16);

    /* 1.5 MiB both ways: 24 reads, 2 writes (split at the 1 MiB limit). */
    assert_int_equal(engine(f, DMA_CMD_RW, MSG_IOVA + 5, MSG_IOVA + (2 << 20) + 3,
                            (3u << 20) / 2), 0);
    assert_int_equal(dma_served(f->c), served + 42);
    for (size_t i = 0; i < (3u << 20) / 2; i += 4093) {
        assert_int_equal(guest[(2 << 20) + 3 + i], (uint8_t)(3 + (5 + i) * 7));
    }
    /* From memfd (in place) to the guest (by message). */
    memset(f->mem, 0x6b, 100);
    assert_int_equal(engine(f, DMA_CMD_RW, IOVA, MSG_IOVA + 1, 100), 0);
    assert_int_equal(guest[1], 0x6b);
    assert_int_equal(guest[100], 0x6b);
    assert_int_equal(guest[101], (uint8_t)(3 + 101 * 7));
    assert_int_equal(dma_served(f->c), served + 43);

    /* A posted start: the client serves from vfu_client_serve(). */
    uint32_t cmd = DMA_CMD_RW, result = 1;
    uint64_t total = 0;
    reg_write(f, DMA_REG_SRC, MSG_IOVA, 8);
    reg_write(f, DMA_REG_DST, MSG_IOVA + (5u << 19), 8);
    reg_write(f, DMA_REG_LEN, (1u << 20) + 8, 8);
    assert_int_equal(vfu_client_region_write(f->c, BAR0, DMA_REG_CMD, &cmd, 4,
                                             true), 0);
    while (total < 19) {           /* 17 reads, 2 writes */
        int n = vfu_client_serve(f->c, 5000);
        assert_true(n > 0);
        total += (uint64_t)n;
    }
    assert_int_equal(total, 19);
    assert_int_equal(vfu_client_serve(f->c, 0), 0);     /* nothing left */
    assert_int_equal(vfu_client_region_read(f->c, BAR0, DMA_REG_RESULT,
                                            &result, 4), 0);
    assert_int_equal(result, 0);
    assert_memory_equal(guest + (5u << 19), guest, (1u << 20) + 8);

    /* The server checks the map before asking: no message for these. */
    served = dma_served(f->c);
    assert_int_equal(engine(f, DMA_CMD_RW, MSG_IOVA + MSG_SIZE - 8, IOVA, 16),
                     ENOENT);
    assert_int_equal(vfu_client_dma_unmap(f->c, MSG_IOVA, MSG_SIZE, 0), 0);
    assert_int_equal(vfu_client_dma_map(f->c, MSG_IOVA, MSG_SIZE, -1, 0, guest,
                                        R), 0);
    assert_int_equal(engine(f, DMA_CMD_RW, IOVA, MSG_IOVA, 16), EACCES);
    assert_int_equal(dma_served(f->c), served);

    /* What the server maps but the client does not: refused by the client. */
    struct vfio_user_dma_map m = mk_map(MSG_IOVA + MSG_SIZE, PG, 0, RW);
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &m, sizeof(m), NULL, 0, NULL, 0,
                         NULL), 0);
    assert_int_equal(engine(f, DMA_CMD_RW, MSG_IOVA + MSG_SIZE, IOVA, 16),
                     ENODEV);
    /* The client registered less access than the server holds: EPERM. */
    struct unmap_req u = mk_unmap(MSG_IOVA, MSG_SIZE, 0);
    assert_int_equal(req(f, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0, NULL,
                         0, NULL), 0);
    m = mk_map(MSG_IOVA, MSG_SIZE, 0, RW);
    assert_int_equal(req(f, VFIO_USER_DMA_MAP, &m, sizeof(m), NULL, 0, NULL, 0,
                         NULL), 0);
    assert_int_equal(engine(f, DMA_CMD_RW, IOVA, MSG_IOVA, 16), EPERM);
    assert_int_equal(dma_served(f->c), served + 2);
    assert_true(server_alive(f->c));
    free(guest);
}

/*
 * vfu_sgl_read/write's flags on memory the server has mapped (a memfd):
 * 0 means DMA_READ / DMA_WRITE messages all the same, counted as the
 * client serves them; VFU_SGL_DIRECT_ACCESS means through the mapping, no
 * message; any other bit is refused with EINVAL before anything moves.
 */
static void
test_sgl_flags(void **state)
{
    struct fx *f = *state;
    const uint64_t len = 100 * 1024;
    uint64_t served;

    /* The client can answer messages for it: it gives its own mapping. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA, MEM_SIZE, f->memfd, 0,
                                        f->mem, RW), 0);
    fill(f->mem, len, 9);
    memset(f->mem + (512u << 10), 0, len);

    /* 0: reads of at most 64 KiB (2 here) and one write, all by message. */
    served = dma_served(f->c);
    assert_int_equal(engine_rw(f, 0, IOVA + 3, IOVA + (512u << 10), len), 0);
    assert_int_equal(dma_served(f->c), served + 3);
    assert_memory_equal(f->mem + (512u << 10), f->mem + 3, len);

    /* Direct: the same copy, no message. */
    memset(f->mem + (512u << 10), 0, len);
    served = dma_served(f->c);
    assert_int_equal(engine_rw(f, VFU_SGL_DIRECT_ACCESS, IOVA + 5,
                               IOVA + (512u << 10), len), 0);
    assert_int_equal(dma_served(f->c), served);
    assert_memory_equal(f->mem + (512u << 10), f->mem + 5, len);

    /* Any other bit: EINVAL, nothing sent, nothing written. */
    memset(f->mem + (512u << 10), 0, len);
    assert_int_equal(engine_rw(f, 2, IOVA, IOVA + (512u << 10), len), EINVAL);
    assert_int_equal(engine_rw(f, VFU_SGL_DIRECT_ACCESS | (1u << 31), IOVA,
                               IOVA + (512u << 10), len), EINVAL);
    assert_int_equal(engine_rw(f, 0xff, IOVA, IOVA + (512u << 10), len),
                     EINVAL);
    assert_int_equal(dma_served(f->c), served);
    assert_int_equal(f->mem[(512u << 10) + 1], 0);

    /* Memory without an fd goes by message whatever the flags. */
    assert_int_equal(vfu_client_dma_map(f->c, MSG_IOVA, PG, -1, 0, f->mem,
                                        RW), 0);
    assert_int_equal(engine_rw(f, VFU_SGL_DIRECT_ACCESS, MSG_IOVA, IOVA + PG,
                               64), 0);
    assert_int_equal(dma_served(f->c), served + 1);
    assert_true(server_alive(f->c));
}

/*
 * The client library's side, against a fake server (this thread plays it
 * on the other end of the socket): every check on the server's DMA_READ /
 * DMA_WRITE requests, and the exact replies (as QEMU 11.1 sends them).
 */
struct fake {
    char dir[64];
    char path[96];
    int lfd, sfd;
    vfu_client_t *c;
    uint16_t next_id;               /* the client's next request id */
    uint8_t mem[16 * PG];           /* the client's memory */
    int memfd;
};

#define FAKE_BASE   0x10000ull

static void
fake_send(struct fake *k, uint16_t id, uint16_t cmd, unsigned type,
          uint32_t extra_flags, const void *p, size_t len, const int *fds,
          size_t nr_fds)
{
    union {
        char buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct vfio_user_header h = { .msg_id = id, .cmd = cmd,
                                  .msg_size = (uint32_t)(HDR + len) };
    struct iovec iov[2] = { { &h, HDR }, { (void *)(uintptr_t)p, len } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
    uint32_t fl;

    memcpy(&fl, &h.flags, 4);
    fl |= type | extra_flags;
    memcpy(&h.flags, &fl, 4);
    if (nr_fds > 0) {
        struct cmsghdr *cm;
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(nr_fds * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nr_fds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nr_fds * sizeof(int));
    }
    for (size_t left = HDR + len; left > 0;) {
        ssize_t n = sendmsg(k->sfd, &mh, MSG_NOSIGNAL);
        assert_true(n > 0);
        left -= (size_t)n;
        mh.msg_control = NULL;          /* the fds went with the first part */
        mh.msg_controllen = 0;
        while (n > 0) {
            size_t take = (size_t)n < mh.msg_iov->iov_len ? (size_t)n
                                                          : mh.msg_iov->iov_len;
            mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + take;
            mh.msg_iov->iov_len -= take;
            n -= (ssize_t)take;
            if (mh.msg_iov->iov_len == 0) {
                mh.msg_iov++;
                mh.msg_iovlen--;
            }
        }
    }
}

/* Receives one message from the client: its header and up to @cap bytes. */
static size_t
fake_recv(struct fake *k, struct vfio_user_header *h, void *p, size_t cap)
{
    static uint8_t sink[2 << 20];
    size_t len;

    assert_int_equal(recv(k->sfd, h, HDR, MSG_WAITALL), HDR);
    assert_true(h->msg_size >= HDR && h->msg_size - HDR <= sizeof(sink));
    len = h->msg_size - HDR;
    if (len > 0) {
        assert_int_equal(recv(k->sfd, sink, len, MSG_WAITALL), (ssize_t)len);
        if (cap > 0) {
            memcpy(p, sink, len < cap ? len : cap);
        }
    }
    return len;
}

/* A request the client answers before its own request returns. */
static void
fake_map(struct fake *k, uint64_t iova, uint64_t size, int fd, void *vaddr,
         uint32_t flags)
{
    struct vfio_user_header h;
    struct vfio_user_dma_map m;

    fake_send(k, k->next_id, VFIO_USER_DMA_MAP, VFIO_USER_F_TYPE_REPLY, 0,
              NULL, 0, NULL, 0);
    assert_int_equal(vfu_client_dma_map(k->c, iova, size, fd, 0, vaddr,
                                        flags), 0);
    assert_int_equal(fake_recv(k, &h, &m, sizeof(m)), sizeof(m));
    assert_int_equal(h.msg_id, k->next_id);
    assert_int_equal(m.addr, iova);
    k->next_id++;
}

static int
fake_setup(void **state)
{
    struct fake *k = calloc(1, sizeof(*k));
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    const char json[] = "{\"capabilities\":{\"max_msg_fds\":16}}";
    uint8_t ver[4 + sizeof(json)] = { 0 };
    struct timeval tv = { .tv_sec = 10 };
    struct vfio_user_header h;
    uint8_t buf[512];

    assert_non_null(k);
    strcpy(k->dir, "/tmp/vfu-fake.XXXXXX");
    assert_non_null(mkdtemp(k->dir));
    snprintf(k->path, sizeof(k->path), "%s/sock", k->dir);
    strcpy(addr.sun_path, k->path);
    k->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(k->lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(k->lfd, 1), 0);
    k->c = vfu_client_connect(k->path);
    assert_non_null(k->c);
    set_timeouts(k->c);
    k->sfd = accept4(k->lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(k->sfd >= 0);
    assert_int_equal(setsockopt(k->sfd, SOL_SOCKET, SO_RCVTIMEO, &tv,
                                sizeof(tv)), 0);
    /* The VERSION reply goes first; the client finds it when it asks. */
    memcpy(ver + 4, json, sizeof(json));
    fake_send(k, 0, VFIO_USER_VERSION, VFIO_USER_F_TYPE_REPLY, 0, ver,
              sizeof(ver), NULL, 0);
    assert_int_equal(vfu_client_negotiate(k->c, NULL), 0);
    fake_recv(k, &h, buf, sizeof(buf));
    assert_int_equal(h.cmd, VFIO_USER_VERSION);
    k->next_id = 1;
    k->memfd = memfd_create("fake", MFD_CLOEXEC);
    assert_true(k->memfd >= 0);
    assert_int_equal(ftruncate(k->memfd, PG), 0);
    fill(k->mem, sizeof(k->mem), 9);
    /* 0x10000: 4 pages RW, then 1 page R, 1 page W, a gap, 1 page via fd. */
    fake_map(k, FAKE_BASE, 4 * PG, -1, k->mem, RW);
    fake_map(k, FAKE_BASE + 4 * PG, PG, -1, k->mem + 4 * PG, R);
    fake_map(k, FAKE_BASE + 5 * PG, PG, -1, k->mem + 5 * PG, W);
    fake_map(k, FAKE_BASE + 8 * PG, PG, k->memfd, NULL, RW);
    *state = k;
    return 0;
}

static int
fake_teardown(void **state)
{
    struct fake *k = *state;

    vfu_client_close(k->c);
    close(k->sfd);
    close(k->lfd);
    close(k->memfd);
    unlink(k->path);
    rmdir(k->dir);
    free(k);
    return 0;
}

/* A DMA_READ / DMA_WRITE payload: address, count, data. */
static size_t
mk_rw(uint8_t *buf, uint64_t addr, uint64_t count, const void *data,
      size_t dlen)
{
    struct vfio_user_dma_rw rw = { .addr = addr, .count = count };

    memcpy(buf, &rw, sizeof(rw));
    if (dlen > 0) {
        memcpy(buf + sizeof(rw), data, dlen);
    }
    return sizeof(rw) + dlen;
}

/* A send from a thread: bigger than the socket holds, it waits for reads. */
struct fake_sender {
    struct fake *k;
    uint16_t id, cmd;
    uint32_t flags;
    const void *p;
    size_t len;
    const int *fds;
    size_t nr_fds;
};

static void *
fake_sender_main(void *arg)
{
    struct fake_sender *a = arg;
    fake_send(a->k, a->id, a->cmd, VFIO_USER_F_TYPE_COMMAND, a->flags, a->p,
              a->len, a->fds, a->nr_fds);
    return NULL;
}

/*
 * Sends a server request, has the client serve it, and returns the reply's
 * errno (0: success; -1 when no reply is expected). Its payload goes to @rep.
 */
static int
fake_request(struct fake *k, uint16_t cmd, uint32_t flags, const void *p,
             size_t len, const int *fds, size_t nr_fds, void *rep, size_t cap,
             size_t *rlen)
{
    static uint16_t id = 0x7000;
    struct fake_sender a = { k, ++id, cmd, flags, p, len, fds, nr_fds };
    struct vfio_user_header h;
    pthread_t th;
    size_t n;

    assert_int_equal(pthread_create(&th, NULL, fake_sender_main, &a), 0);
    assert_int_equal(vfu_client_serve(k->c, 5000), 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (flags & VFIO_USER_F_NO_REPLY) {
        return -1;
    }
    n = fake_recv(k, &h, rep, cap);
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
    assert_int_equal((h.flags & VFIO_USER_F_TYPE_MASK), VFIO_USER_F_TYPE_REPLY);
    if (rlen != NULL) {
        *rlen = n;
    }
    if (h.flags & VFIO_USER_F_ERROR) {
        assert_int_equal(n, 0);
        return (int)h.error_no;
    }
    return 0;
}

#define EXPECT_DMA_ERR(k, cmd, p, len, err) \
    assert_int_equal(fake_request((k), (cmd), 0, (p), (len), NULL, 0, NULL, \
                                  0, NULL), (err))

static void
test_client_serves(void **state)
{
    struct fake *k = *state;
    static uint8_t msg[(1 << 20) + 64], rep[(1 << 20) + 64];
    uint8_t data[8 * PG];
    size_t len, rlen;

    /* DMA_READ: address and count back, the data at 16. */
    len = mk_rw(msg, FAKE_BASE + 10, 100, NULL, 0);
    assert_int_equal(len, 16);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_int_equal(rlen, 16 + 100);
    assert_memory_equal(rep, msg, 16);
    assert_memory_equal(rep + 16, k->mem + 10, 100);

    /* DMA_WRITE: the data lands; address and count answer. */
    fill(data, sizeof(data), 200);
    len = mk_rw(msg, FAKE_BASE + 20, 50, data, 50);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_WRITE, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_int_equal(rlen, 16);
    assert_memory_equal(rep, msg, 16);
    assert_memory_equal(k->mem + 20, data, 50);

    /* Across adjacent regions (RW then R): reading works, writing does not. */
    len = mk_rw(msg, FAKE_BASE + 4 * PG - 8, 16, NULL, 0);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_memory_equal(rep + 16, k->mem + 4 * PG - 8, 16);
    len = mk_rw(msg, FAKE_BASE + 4 * PG - 8, 16, data, 16);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, EPERM);
    assert_memory_equal(k->mem + 4 * PG - 8, rep + 16, 16);   /* unchanged */
    len = mk_rw(msg, FAKE_BASE + 5 * PG, 8, NULL, 0);           /* W only */
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, EPERM);
    len = mk_rw(msg, FAKE_BASE + 5 * PG, 8, data, 8);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, 0);

    /* Not registered (before, after, a gap); registered without vaddr. */
    len = mk_rw(msg, FAKE_BASE - 8, 8, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, ENODEV);
    len = mk_rw(msg, FAKE_BASE + 6 * PG + 100, 8, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, ENODEV);
    len = mk_rw(msg, FAKE_BASE + 6 * PG - 4, 8, data, 8);    /* past the end */
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, ENODEV);
    len = mk_rw(msg, FAKE_BASE + 7 * PG, 8, data, 8);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, ENODEV);
    len = mk_rw(msg, UINT64_MAX - 3, 8, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, ENODEV);
    len = mk_rw(msg, FAKE_BASE + 8 * PG, 8, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, EFAULT);

    /* Sizes that do not add up. */
    len = mk_rw(msg, FAKE_BASE, 0, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, EINVAL);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, EINVAL);
    len = mk_rw(msg, FAKE_BASE, 8, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, 12, EINVAL);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, 20, EINVAL);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, 0, EINVAL);
    len = mk_rw(msg, FAKE_BASE, 50, data, 40);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, EINVAL);
    len = mk_rw(msg, FAKE_BASE, 40, data, 50);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, EINVAL);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len - 11, EINVAL);
    /* Above our max_data_xfer_size (1 MiB), both ways; a 33-bit count. */
    len = mk_rw(msg, FAKE_BASE, (1 << 20) + 1, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, E2BIG);
    len = mk_rw(msg, FAKE_BASE, (1ull << 32) + 8, NULL, 0);
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_READ, msg, len, E2BIG);
    len = mk_rw(msg, FAKE_BASE, (1 << 20) + 1, NULL, 0);
    len += (1 << 20) + 1;       /* the data, whatever it is */
    EXPECT_DMA_ERR(k, VFIO_USER_DMA_WRITE, msg, len, E2BIG);

    /* Fds have no place here: refused, and closed. */
    int before = count_open_fds();
    len = mk_rw(msg, FAKE_BASE, 8, NULL, 0);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len,
                                  &k->memfd, 1, NULL, 0, NULL), EINVAL);
    assert_int_equal(count_open_fds(), before);

    /* NO_REPLY: done, not answered (the next reply is the next one's). */
    len = mk_rw(msg, FAKE_BASE + 100, 4, "abcd", 4);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_WRITE, VFIO_USER_F_NO_REPLY,
                                  msg, len, NULL, 0, NULL, 0, NULL), -1);
    assert_memory_equal(k->mem + 100, "abcd", 4);
    len = mk_rw(msg, FAKE_BASE - 8, 8, data, 8);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_WRITE, VFIO_USER_F_NO_REPLY,
                                  msg, len, NULL, 0, NULL, 0, NULL), -1);
    len = mk_rw(msg, FAKE_BASE + 100, 4, NULL, 0);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_memory_equal(rep + 16, "abcd", 4);
    struct vfu_client_stats st;
    vfu_client_get_stats(k->c, &st);
    assert_int_equal(st.dma_served, 27);
}

/* Many small regions: more pieces than one sendmsg takes, via a buffer. */
static void
test_client_serves_many(void **state)
{
    struct fake *k = *state;
    static uint8_t msg[64 * PG], rep[64 * PG];
    uint8_t *mem = malloc(10 * PG);
    size_t len, rlen;

    assert_non_null(mem);
    fill(mem, 10 * PG, 77);
    for (int i = 0; i < 10; i++) {
        fake_map(k, 0x100000 + i * PG, PG, -1, mem + i * PG, RW);
    }
    len = mk_rw(msg, 0x100000 + 5, 9 * PG, NULL, 0);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_int_equal(rlen, 16 + 9 * PG);
    assert_memory_equal(rep + 16, mem + 5, 9 * PG);
    fill(rep, 9 * PG, 1);
    len = mk_rw(msg, 0x100000 + 7, 9 * PG, rep, 9 * PG);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_WRITE, 0, msg, len, NULL, 0,
                                  NULL, 0, NULL), 0);
    assert_memory_equal(mem + 7, rep, 9 * PG);
    /* Exactly as many pieces as go without a buffer (7), and one more. */
    len = mk_rw(msg, 0x100000 + 1, 6 * PG, NULL, 0);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_memory_equal(rep + 16, mem + 1, 6 * PG);
    len = mk_rw(msg, 0x100000 + 1, 7 * PG, NULL, 0);
    assert_int_equal(fake_request(k, VFIO_USER_DMA_READ, 0, msg, len, NULL, 0,
                                  rep, sizeof(rep), &rlen), 0);
    assert_memory_equal(rep + 16, mem + 1, 7 * PG);
    free(mem);
}

/* Requests met while waiting; other messages; timeout; a closed server. */
static void
test_client_serve_faults(void **state)
{
    struct fake *k = *state;
    struct vfio_user_device_info info = { .argsz = sizeof(info),
                                          .num_regions = 9 };
    struct vfio_user_header h;
    uint8_t msg[64], rep[256];
    size_t len;

    /* A DMA_READ before the reply the client waits for: served on the way. */
    len = mk_rw(msg, FAKE_BASE, 8, NULL, 0);
    fake_send(k, 0x55, VFIO_USER_DMA_READ, VFIO_USER_F_TYPE_COMMAND, 0, msg,
              len, NULL, 0);
    fake_send(k, k->next_id, VFIO_USER_DEVICE_GET_INFO, VFIO_USER_F_TYPE_REPLY,
              0, &info, sizeof(info), NULL, 0);
    memset(&info, 0, sizeof(info));
    assert_int_equal(vfu_client_device_info(k->c, &info), 0);
    assert_int_equal(info.num_regions, 9);
    fake_recv(k, &h, rep, sizeof(rep));
    assert_int_equal(h.cmd, VFIO_USER_DEVICE_GET_INFO);
    assert_int_equal((h.flags & VFIO_USER_F_TYPE_MASK), VFIO_USER_F_TYPE_COMMAND);
    fake_recv(k, &h, rep, sizeof(rep));
    assert_int_equal(h.cmd, VFIO_USER_DMA_READ);
    assert_int_equal(h.msg_id, 0x55);
    assert_int_equal(!!(h.flags & VFIO_USER_F_ERROR), 0);
    k->next_id++;

    /* Nothing comes: 0 after the timeout. */
    assert_int_equal(vfu_client_serve(k->c, 50), 0);
    /* Another command: refused with EOPNOTSUPP, and a fault. */
    fake_send(k, 0x56, VFIO_USER_DEVICE_RESET, VFIO_USER_F_TYPE_COMMAND, 0,
              NULL, 0, NULL, 0);
    assert_int_equal(vfu_client_serve(k->c, 5000), -1);
    assert_int_equal(errno, EPROTO);
    fake_recv(k, &h, rep, sizeof(rep));
    assert_int_equal(h.msg_id, 0x56);
    assert_int_equal(!!(h.flags & VFIO_USER_F_ERROR), 1);
    assert_int_equal(h.error_no, EOPNOTSUPP);
    /* A reply nobody asked for. */
    fake_send(k, 0x57, VFIO_USER_DMA_READ, VFIO_USER_F_TYPE_REPLY, 0, NULL, 0,
              NULL, 0);
    assert_int_equal(vfu_client_serve(k->c, 5000), -1);
    assert_int_equal(errno, EPROTO);
    /* The server leaves. */
    shutdown(k->sfd, SHUT_WR);
    assert_int_equal(vfu_client_serve(k->c, 5000), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(vfu_client_serve(NULL, 0), -1);
    assert_int_equal(errno, EINVAL);
}

/* ------------------------------------------------------------------ */
/* Dirty logging                                                       */
/* ------------------------------------------------------------------ */

static void
test_dirty_logging(void **state)
{
    struct fx *f = *state;
    log_range_t ranges[2] = { { IOVA, 32 * PG }, { IOVA + 64 * PG, 16 * PG } };
    uint64_t bm[4];

    assert_int_equal(vfu_client_dma_map(f->c, IOVA, 32 * PG, f->memfd, 0,
                                        f->mem, RW), 0);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 64 * PG, 16 * PG,
                                        f->memfd, 64 * PG, f->mem + 64 * PG,
                                        RW), 0);
    /* Not logging yet: no report; a stop is harmless. */
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA, 32 * PG, PG, bm), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_dirty_stop(f->c), 0);

    assert_int_equal(vfu_client_dirty_start(f->c, PG, ranges, 2), 0);
    /* Again at the same page size: no change; at another: EINVAL. */
    assert_int_equal(vfu_client_dirty_start(f->c, PG, ranges, 2), 0);
    assert_int_equal(vfu_client_dirty_start(f->c, 2 * PG, ranges, 2), -1);
    assert_int_equal(errno, EINVAL);

    /* Copies write pages 3-4 (in place: vfu_sgl_put); the source is clean. */
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 20 * PG, IOVA + 3 * PG,
                            2 * PG), 0);
    /* MARK: pages 1 and 2 of the second range. */
    assert_int_equal(engine(f, DMA_CMD_MARK, 0, IOVA + 65 * PG + 10, PG), 0);
    memset(bm, 0xff, sizeof(bm));
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA, 32 * PG, PG, bm), 0);
    assert_int_equal(bm[0], 0x18);
    memset(bm, 0xff, sizeof(bm));
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA + 64 * PG, 16 * PG, PG,
                                             bm), 0);
    assert_int_equal(bm[0], 0x6);
    /* Read and cleared. */
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA, 32 * PG, PG, bm), 0);
    assert_int_equal(bm[0], 0);

    /* Another page size than logging's: bits aggregated, replicated. */
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 20 * PG, IOVA + 5 * PG, 8),
                     0);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 20 * PG, IOVA + 9 * PG, 8),
                     0);
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA, 32 * PG, 4 * PG, bm),
                     0);
    assert_int_equal(bm[0], 0x6);               /* pages 5 and 9 */
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA + 20 * PG, IOVA + PG, 8), 0);
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA, 2 * PG, 1024, bm), 0);
    assert_int_equal(bm[0], 0xf0);              /* page 1 in 1 KiB bits */

    /* Outside the logged ranges nothing is recorded. */
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 128 * PG, 4 * PG,
                                        f->memfd, 128 * PG, f->mem + 128 * PG,
                                        RW), 0);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA, IOVA + 128 * PG, PG), 0);
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA + 128 * PG, 4 * PG, PG,
                                             bm), 0);
    assert_int_equal(bm[0], 0);

    assert_int_equal(vfu_client_dirty_stop(f->c), 0);
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA, 32 * PG, PG, bm), -1);
    assert_int_equal(errno, EINVAL);

    /* No ranges: every mapping, those mapped later too; the hint rounded up. */
    uint8_t msg[64], rep[64];
    log_control_t ctl = { .page_size = 512 };
    size_t len = mk_feature(msg, 64, START, &ctl, sizeof(ctl)), rlen = 0;
    assert_int_equal(req(f, VFIO_USER_DEVICE_FEATURE, msg, len, NULL, 0, rep,
                         sizeof(rep), &rlen), 0);
    assert_int_equal(rlen, len);
    memcpy(&ctl, rep + sizeof(feature_t), sizeof(ctl));
    assert_int_equal(ctl.page_size, PG);
    assert_int_equal(ctl.num_ranges, 0);
    assert_int_equal(vfu_client_dma_map(f->c, IOVA + 256 * PG, 4 * PG,
                                        f->memfd, 0, f->mem, RW), 0);
    assert_int_equal(engine(f, DMA_CMD_COPY, IOVA, IOVA + 129 * PG, 8), 0);
    assert_int_equal(engine(f, DMA_CMD_MARK, 0, IOVA + 259 * PG, 1), 0);
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA + 128 * PG, 128 * PG,
                                             4 * PG, bm), 0);
    assert_int_equal(bm[0], 1);
    assert_int_equal(vfu_client_dirty_report(f->c, IOVA + 256 * PG, 4 * PG, PG,
                                             bm), 0);
    assert_int_equal(bm[0], 8);
    assert_int_equal(vfu_client_dirty_stop(f->c), 0);
}

/* Malformed DEVICE_FEATURE requests, each refused with its errno. */
static void
test_feature_refused(void **state)
{
    struct fx *f = *state;
    uint8_t msg[256] = { 0 }, rep[256];
    log_control_t ctl = { .page_size = PG, .num_ranges = 1 };
    log_range_t range = { IOVA, 16 * PG };
    log_report_t report = { .iova = IOVA, .length = 16 * PG, .page_size = PG };
    uint8_t data[64] = { 0 };
    size_t len, rlen;

#define FEAT_ERR(argsz, flags, d, dlen, err) do {                            \
        size_t l_ = mk_feature(msg, (argsz), (flags), (d), (dlen));           \
        EXPECT_ERR(f, VFIO_USER_DEVICE_FEATURE, msg, l_, NULL, 0, err);       \
    } while (0)

    memcpy(data, &ctl, sizeof(ctl));
    memcpy(data + sizeof(ctl), &range, sizeof(range));
    const size_t start_len = sizeof(ctl) + sizeof(range);

    /* The common part. */
    EXPECT_ERR(f, VFIO_USER_DEVICE_FEATURE, NULL, 0, NULL, 0, EINVAL);
    EXPECT_ERR(f, VFIO_USER_DEVICE_FEATURE, msg, 7, NULL, 0, EINVAL);
    FEAT_ERR(7, START, data, start_len, EINVAL);                 /* argsz */
    FEAT_ERR(0, VFIO_DEVICE_FEATURE_PROBE | START, NULL, 0, EINVAL);
    FEAT_ERR(64, START | (1u << 19), data, start_len, EINVAL);   /* flag */
    FEAT_ERR(64, START | VFIO_DEVICE_FEATURE_GET, data, start_len, EINVAL);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_DMA_LOGGING_START, data, start_len,
             EINVAL);                                            /* no op */
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_GET | 99, NULL, 0, ENOTTY);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_PROBE | 99, NULL, 0, ENOTTY);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_PROBE, NULL, 0, ENOTTY);   /* index 0 */
    /* Migration: not yet. */
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
             NULL, 0, ENOTTY);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_MIGRATION,
             NULL, 0, ENOTTY);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_SET |
             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, data, 8, ENOTTY);
    /* An operation the feature does not have. */
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_DMA_LOGGING_START |
             VFIO_DEVICE_FEATURE_GET, data, start_len, EINVAL);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT |
             VFIO_DEVICE_FEATURE_SET, &report, sizeof(report), EINVAL);
    FEAT_ERR(64, VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET |
             VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0, EINVAL);

    /* Probing answers with the request. */
    len = mk_feature(msg, 8, VFIO_DEVICE_FEATURE_PROBE | START, NULL, 0);
    assert_int_equal(req(f, VFIO_USER_DEVICE_FEATURE, msg, len, NULL, 0, rep,
                         sizeof(rep), &rlen), 0);
    assert_int_equal(rlen, len);
    assert_memory_equal(rep, msg, len);
    len = mk_feature(msg, 8, VFIO_DEVICE_FEATURE_PROBE |
                     VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, NULL, 0);
    assert_int_equal(req(f, VFIO_USER_DEVICE_FEATURE, msg, len, NULL, 0, rep,
                         sizeof(rep), &rlen), 0);
    assert_memory_equal(rep, msg, len);
    FEAT_ERR(8, VFIO_DEVICE_FEATURE_PROBE | START, data, start_len, EINVAL);

    /* START: sizes, reserved, page size, ranges, the limit. */
    FEAT_ERR(64, START, data, sizeof(ctl) - 1, EINVAL);
    FEAT_ERR(64, START, data, start_len - 1, EINVAL);
    FEAT_ERR(64, START, data, start_len + 16, EINVAL);
    FEAT_ERR(start_len + 7, START, data, start_len, EINVAL);     /* argsz */
    ctl.reserved = 1;
    memcpy(data, &ctl, sizeof(ctl));
    FEAT_ERR(64, START, data, start_len, EINVAL);
    ctl.reserved = 0;
    const uint64_t bad_ps[] = { 0, 3000, PG + 1 };
    for (size_t i = 0; i < 3; i++) {
        ctl.page_size = bad_ps[i];
        memcpy(data, &ctl, sizeof(ctl));
        FEAT_ERR(64, START, data, start_len, EINVAL);
    }
    ctl.page_size = PG;
    ctl.num_ranges = 2;
    memcpy(data, &ctl, sizeof(ctl));
    memcpy(data + start_len, &(log_range_t){ IOVA + 15 * PG, PG }, 16);
    FEAT_ERR(64, START, data, start_len + 16, EINVAL);           /* overlap */
    memcpy(data + start_len, &(log_range_t){ IOVA + 16 * PG, 0 }, 16);
    FEAT_ERR(64, START, data, start_len + 16, EINVAL);           /* empty */
    memcpy(data + start_len, &(log_range_t){ UINT64_MAX, 2 }, 16);
    FEAT_ERR(64, START, data, start_len + 16, EINVAL);           /* wraps */
    ctl.num_ranges = 65536;
    memcpy(data, &ctl, sizeof(ctl));
    FEAT_ERR(64, START, data, start_len, E2BIG);

    /* STOP needs nothing, and takes what follows the header (START's data). */
    FEAT_ERR(64, STOP, data, 8, 0);
    FEAT_ERR(64, STOP, data, start_len, 0);

    /* REPORT: only while logging; then sizes, page size, argsz, limit. */
    FEAT_ERR(64, REPORT, &report, sizeof(report), EINVAL);
    assert_int_equal(vfu_client_dirty_start(f->c, PG, &range, 1), 0);
    len = mk_feature(msg, sizeof(feature_t) + sizeof(report) + 8, REPORT,
                     &report, sizeof(report));
    assert_int_equal(req(f, VFIO_USER_DEVICE_FEATURE, msg, len, NULL, 0, rep,
                         sizeof(rep), &rlen), 0);
    assert_int_equal(rlen, len + 8);
    assert_int_equal(((feature_t *)(void *)rep)->argsz, len + 8);
    FEAT_ERR(len + 7, REPORT, &report, sizeof(report), EINVAL);  /* argsz */
    memcpy(data, &report, sizeof(report));
    FEAT_ERR(64, REPORT, data, sizeof(report) - 1, EINVAL);
    FEAT_ERR(64, REPORT, data, sizeof(report) + 8, EINVAL);
    log_report_t bad = report;
    bad.length = 0;
    FEAT_ERR(64, REPORT, &bad, sizeof(bad), EINVAL);
    bad = report;
    bad.page_size = 0;
    FEAT_ERR(64, REPORT, &bad, sizeof(bad), EINVAL);
    bad.page_size = 6000;
    FEAT_ERR(64, REPORT, &bad, sizeof(bad), EINVAL);
    bad = report;
    bad.iova = UINT64_MAX - PG;
    bad.length = 2 * PG;
    FEAT_ERR(64, REPORT, &bad, sizeof(bad), EINVAL);
    /* 2^33 bits: a 1 GiB bitmap is beyond the transfer limit. */
    bad = report;
    bad.length = 1ull << 45;
    FEAT_ERR(UINT32_MAX, REPORT, &bad, sizeof(bad), EINVAL);
    /* The largest that fits: 1 MiB of bitmap. */
    bad.length = (1ull << 23) * PG;
    uint64_t *big = malloc(1 << 20);
    assert_non_null(big);
    assert_int_equal(vfu_client_dirty_report(f->c, bad.iova, bad.length, PG,
                                             big), 0);
    assert_int_equal(vfu_client_dirty_report(f->c, bad.iova, bad.length + 1,
                                             PG, big), -1);
    assert_int_equal(errno, E2BIG);
    free(big);
    assert_int_equal(vfu_client_dirty_stop(f->c), 0);
#undef FEAT_ERR
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_map_unmap),
        T(test_map_refused),
        T(test_map_flags),
        T(test_map_limit),
        cmocka_unit_test(test_max_regions),
        T(test_unmap_refused),
        T(test_client_checks),
        T(test_engine_copy),
        cmocka_unit_test(test_disconnect),
        T(test_msg_dma),
        T(test_sgl_flags),
        cmocka_unit_test_setup_teardown(test_client_serves, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_client_serves_many, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_client_serve_faults, fake_setup,
                                        fake_teardown),
        T(test_dirty_logging),
        T(test_feature_refused),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
