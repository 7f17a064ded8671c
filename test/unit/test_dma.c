/*
 * Unit tests of the DMA map table (lib/server/dma.c) and the dirty-page log
 * (lib/server/dirty.c), without a socket: adding regions (every refusal and its
 * errno), overlap, lookup across regions, the count-needed return of
 * vfu_addr_to_sgl(), protection, mapping a memfd, stale entries after an
 * unmap, the flags of vfu_sgl_read/write, regions for file I/O, the
 * rounding of mappings to the file's block size (the arithmetic, and a
 * real hugetlbfs file when huge pages can be had), 65535 regions, 10^6
 * regions mapped top-down and at random (the limit, max_regions), the
 * callbacks, and the log's page arithmetic (replicated and aggregated
 * report bits, read-and-clear, merging).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "private.h"

#define PG      4096u
#define RW      (PROT_READ | PROT_WRITE)

static struct {
    int nr_register, nr_unregister;
    vfu_dma_info_t last_register, last_unregister;
    uint8_t peek;               /* first byte, read by the unregister callback */
} st;

static void
register_cb(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    (void)ctx;
    st.nr_register++;
    st.last_register = *info;
}

static void
unregister_cb(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    (void)ctx;
    st.nr_unregister++;
    st.last_unregister = *info;
    if (info->vaddr != NULL) {
        st.peek = *(volatile uint8_t *)info->vaddr;
    }
}

static int
setup(void **state)
{
    vfu_ctx_t *ctx = calloc(1, sizeof(*ctx));

    assert_non_null(ctx);
    memset(&st, 0, sizeof(st));
    *state = ctx;
    return 0;
}

static int
teardown(void **state)
{
    vfu_ctx_t *ctx = *state;

    dma_free(ctx);
    free(ctx);
    return 0;
}

static dma_sg_t *
sgl_new(size_t n)
{
    dma_sg_t *sgl = calloc(n, dma_sg_size());
    assert_non_null(sgl);
    return sgl;
}

static dma_sg_t *
sg_at(dma_sg_t *sgl, size_t i)
{
    return (dma_sg_t *)((char *)sgl + i * dma_sg_size());
}

static int
memfd(size_t size)
{
    int fd = memfd_create("dma", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

/* dma_sg_lookup(), its answer taken apart. */
static int
sg_lookup(vfu_ctx_t *ctx, const dma_sg_t *sg, uint64_t *iova, size_t *len,
          void **vaddr, bool is_write)
{
    struct dma_sg_where w;
    int ret = dma_sg_lookup(ctx, sg, is_write, &w);

    if (ret == 0) {
        *iova = w.iova;
        *len = w.len;
        *vaddr = w.vaddr;
    }
    return ret;
}

static int
to_sgl(vfu_ctx_t *ctx, uint64_t addr, size_t len, dma_sg_t *sgl, size_t max,
       int prot)
{
    return vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)addr, len, sgl, max,
                           prot);
}

/* ------------------------------------------------------------------ */

static void
test_sg_size(void **state)
{
    (void)state;
    assert_int_equal(dma_sg_size(), 40);
}

static void
test_map_refusals(void **state)
{
    vfu_ctx_t *ctx = *state;
    int fd = memfd(4 * PG);

    /* Size, alignment, overflow, protection, offset. */
    assert_int_equal(dma_map(ctx, 0x10000, 0, -1, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10001, PG, -1, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG + 1, -1, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG / 2, -1, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, UINT64_MAX - PG + 1, PG, -1, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 1ull << 63, 1ull << 63, -1, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, -1, 0, 0), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, -1, 0, PROT_EXEC), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, -1, 0, RW | PROT_EXEC), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, -1, PG, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, fd, 1, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, fd, UINT64_MAX - PG + 1, RW),
                     -EINVAL);
    /* Past the end of the file. */
    assert_int_equal(dma_map(ctx, 0x10000, 5 * PG, fd, 0, RW), -EINVAL);
    assert_int_equal(dma_map(ctx, 0x10000, PG, fd, 4 * PG, RW), -EINVAL);
    assert_int_equal(dma_nr_maps(ctx), 0);

    /* A file opened read-only cannot be mapped shared for writing. */
    char path[] = "/tmp/vfu-dma-XXXXXX";
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    assert_int_equal(ftruncate(tmp, PG), 0);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    assert_int_equal(dma_map(ctx, 0x10000, PG, ro, 0, RW), -EACCES);
    assert_int_equal(dma_map(ctx, 0x10000, PG, ro, 0, PROT_READ), 0);
    assert_int_equal(dma_unmap(ctx, 0x10000, PG), 0);
    unlink(path);
    close(tmp);
    close(ro);

    /* Something that cannot be mapped at all. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dma_map(ctx, 0x10000, PG, p[0], 0, PROT_READ), -ENODEV);
    assert_int_equal(dma_map(ctx, 0x10000, PG, 1000, 0, PROT_READ), -EBADF);
    close(p[0]);
    close(p[1]);
    assert_int_equal(dma_nr_maps(ctx), 0);
    close(fd);
}

static void
test_overlap(void **state)
{
    vfu_ctx_t *ctx = *state;

    assert_int_equal(dma_map(ctx, 0x10000, 4 * PG, -1, 0, RW), 0);
    assert_int_equal(dma_map(ctx, 0x10000, 4 * PG, -1, 0, RW), -EEXIST);
    assert_int_equal(dma_map(ctx, 0x10000 - PG, 2 * PG, -1, 0, RW), -EEXIST);
    assert_int_equal(dma_map(ctx, 0x10000 + 3 * PG, 2 * PG, -1, 0, RW), -EEXIST);
    assert_int_equal(dma_map(ctx, 0x10000 + PG, PG, -1, 0, RW), -EEXIST);
    assert_int_equal(dma_map(ctx, 0x0, 0x100000, -1, 0, RW), -EEXIST);
    /* Neighbours on both sides are fine. */
    assert_int_equal(dma_map(ctx, 0x10000 - PG, PG, -1, 0, RW), 0);
    assert_int_equal(dma_map(ctx, 0x10000 + 4 * PG, PG, -1, 0, RW), 0);
    assert_int_equal(dma_nr_maps(ctx), 3);
    /* The very top of the address space. */
    assert_int_equal(dma_map(ctx, UINT64_MAX - 2 * PG + 1, PG, -1, 0, RW), 0);
    assert_int_equal(dma_map(ctx, 0, PG, -1, 0, RW), 0);
    assert_int_equal(dma_nr_maps(ctx), 5);
}

static void
test_unmap(void **state)
{
    vfu_ctx_t *ctx = *state;

    assert_int_equal(dma_map(ctx, 0x10000, 4 * PG, -1, 0, RW), 0);
    /* Only an exact match goes. */
    assert_int_equal(dma_unmap(ctx, 0x10000, 3 * PG), -ENOENT);
    assert_int_equal(dma_unmap(ctx, 0x10000, 5 * PG), -ENOENT);
    assert_int_equal(dma_unmap(ctx, 0x10000 + PG, 3 * PG), -ENOENT);
    assert_int_equal(dma_unmap(ctx, 0x20000, 4 * PG), -ENOENT);
    assert_int_equal(dma_nr_maps(ctx), 1);
    assert_int_equal(dma_unmap(ctx, 0x10000, 4 * PG), 0);
    assert_int_equal(dma_unmap(ctx, 0x10000, 4 * PG), -ENOENT);
    assert_int_equal(dma_nr_maps(ctx), 0);
}

static void
test_lookup_one(void **state)
{
    vfu_ctx_t *ctx = *state;
    dma_sg_t *sgl = sgl_new(2);
    struct iovec iov;
    uint64_t iova;
    size_t len;
    void *vaddr = (void *)1;

    /* Nothing mapped, no table at all. */
    assert_int_equal(to_sgl(ctx, 0x10000, 8, sgl, 2, PROT_READ), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(dma_range_check(ctx, 0x10000, 8, false), -ENOENT);

    assert_int_equal(dma_map(ctx, 0x10000, 4 * PG, -1, 0, RW), 0);
    assert_int_equal(to_sgl(ctx, 0x10000 + 100, 200, sgl, 2, RW), 1);
    assert_int_equal(sg_lookup(ctx, sgl, &iova, &len, &vaddr, true), 0);
    assert_int_equal(iova, 0x10000 + 100);
    assert_int_equal(len, 200);
    assert_null(vaddr);
    assert_false(vfu_sg_is_mappable(ctx, sgl));
    /* Without a file descriptor only messages reach it. */
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 1, 0), -1);
    assert_int_equal(errno, EFAULT);
    /* An entry vfu_addr_to_sgl() never made: EINVAL, as the original. */
    dma_sg_t *zeroed = sgl_new(1);
    memset(zeroed, 0, dma_sg_size());
    assert_int_equal(vfu_sgl_get(ctx, zeroed, &iov, 1, 0), -1);
    assert_int_equal(errno, EINVAL);
    free(zeroed);

    /* The whole region, its last byte, one past it. */
    assert_int_equal(to_sgl(ctx, 0x10000, 4 * PG, sgl, 2, RW), 1);
    assert_int_equal(to_sgl(ctx, 0x10000 + 4 * PG - 1, 1, sgl, 2, RW), 1);
    assert_int_equal(to_sgl(ctx, 0x10000 + 4 * PG - 1, 2, sgl, 2, RW), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(to_sgl(ctx, 0x10000 - 1, 2, sgl, 2, RW), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(to_sgl(ctx, 0x10000 + 4 * PG, 1, sgl, 2, RW), -1);
    assert_int_equal(errno, ENOENT);
    /* A range that wraps. */
    assert_int_equal(to_sgl(ctx, 0x10000, SIZE_MAX, sgl, 2, RW), -1);
    assert_int_equal(errno, ENOENT);

    /* Bad arguments. */
    assert_int_equal(to_sgl(ctx, 0x10000, 0, sgl, 2, RW), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(to_sgl(ctx, 0x10000, 8, NULL, 2, RW), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(to_sgl(ctx, 0x10000, 8, sgl, 2, PROT_EXEC), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(to_sgl(NULL, 0x10000, 8, sgl, 2, RW), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 1, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_sgl_get(ctx, NULL, &iov, 1, 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_sgl_get(ctx, sgl, NULL, 1, 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 0, 0), 0);
    free(sgl);
}

/* Three adjacent regions, the middle one read-only, then a hole. */
static void
test_lookup_across(void **state)
{
    vfu_ctx_t *ctx = *state;
    dma_sg_t *sgl = sgl_new(4);
    uint64_t iova;
    size_t len;
    void *vaddr;

    assert_int_equal(dma_map(ctx, 0x10000, PG, -1, 0, RW), 0);
    assert_int_equal(dma_map(ctx, 0x11000, 2 * PG, -1, 0, PROT_READ), 0);
    assert_int_equal(dma_map(ctx, 0x13000, PG, -1, 0, RW), 0);
    assert_int_equal(dma_map(ctx, 0x15000, PG, -1, 0, RW), 0);

    assert_int_equal(to_sgl(ctx, 0x10800, 0x3000, sgl, 4, PROT_READ), 3);
    assert_int_equal(sg_lookup(ctx, sg_at(sgl, 0), &iova, &len, &vaddr,
                                   false), 0);
    assert_int_equal(iova, 0x10800);
    assert_int_equal(len, 0x800);
    assert_int_equal(sg_lookup(ctx, sg_at(sgl, 1), &iova, &len, &vaddr,
                                   false), 0);
    assert_int_equal(iova, 0x11000);
    assert_int_equal(len, 0x2000);
    assert_int_equal(sg_lookup(ctx, sg_at(sgl, 2), &iova, &len, &vaddr,
                                   false), 0);
    assert_int_equal(iova, 0x13000);
    assert_int_equal(len, 0x800);
    /* The read-only region refuses writes through its entry. */
    assert_int_equal(sg_lookup(ctx, sg_at(sgl, 1), &iova, &len, &vaddr,
                                   true), -EACCES);
    assert_int_equal(sg_lookup(ctx, sg_at(sgl, 0), &iova, &len, &vaddr,
                                   true), 0);

    /* Too few entries: -x - 1 with errno 0, and nothing past max written. */
    memset(sg_at(sgl, 1), 0xa5, dma_sg_size());
    errno = EBUSY;
    assert_int_equal(to_sgl(ctx, 0x10800, 0x3000, sgl, 1, PROT_READ), -4);
    assert_int_equal(errno, 0);
    assert_int_equal(*(uint8_t *)sg_at(sgl, 1), 0xa5);
    assert_int_equal(to_sgl(ctx, 0x10800, 0x3000, NULL, 0, PROT_READ), -4);
    assert_int_equal(errno, 0);
    assert_int_equal(to_sgl(ctx, 0x10000, 0x4000, NULL, 0, 0), -4);

    /* Write access stops at the read-only region. */
    assert_int_equal(to_sgl(ctx, 0x10800, 0x3000, sgl, 4, PROT_WRITE), -1);
    assert_int_equal(errno, EACCES);
    assert_int_equal(dma_range_check(ctx, 0x10800, 0x3000, true), -EACCES);
    assert_int_equal(dma_range_check(ctx, 0x10800, 0x3000, false), 0);
    assert_int_equal(dma_range_check(ctx, 0x13000, PG, true), 0);
    /* The hole between 0x14000 and 0x15000. */
    assert_int_equal(to_sgl(ctx, 0x13000, 2 * PG + 1, sgl, 4, PROT_READ), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(dma_range_check(ctx, 0x13000, 2 * PG + 1, false), -ENOENT);
    assert_int_equal(dma_range_check(ctx, 0x14000, 1, false), -ENOENT);
    free(sgl);
}

/* A memfd region: used in place, then stale once unmapped. */
static void
test_mapped_and_stale(void **state)
{
    vfu_ctx_t *ctx = *state;
    int fd = memfd(8 * PG);
    dma_sg_t *sgl = sgl_new(2);
    dma_sg_t *fresh = sgl_new(1);
    struct iovec iov[2];
    uint64_t iova;
    size_t len;
    void *vaddr;
    char buf[8];

    assert_int_equal(vfu_setup_device_dma(ctx, register_cb, unregister_cb), 0);
    /* Pages 2..5 of the file at iova 0x40000. */
    assert_int_equal(dma_map(ctx, 0x40000, 4 * PG, fd, 2 * PG, RW), 0);
    assert_int_equal(st.nr_register, 1);
    assert_ptr_equal(st.last_register.iova.iov_base, (void *)0x40000);
    assert_int_equal(st.last_register.iova.iov_len, 4 * PG);
    assert_non_null(st.last_register.vaddr);
    assert_ptr_equal(st.last_register.mapping.iov_base,
                     st.last_register.vaddr);
    assert_int_equal(st.last_register.mapping.iov_len, 4 * PG);
    assert_int_equal(st.last_register.page_size, PG);
    assert_int_equal(st.last_register.prot, RW);

    assert_int_equal(to_sgl(ctx, 0x40000 + PG + 3, 5, sgl, 2, RW), 1);
    assert_true(vfu_sg_is_mappable(ctx, sgl));
    assert_int_equal(vfu_sgl_get(ctx, sgl, iov, 1, 0), 0);
    assert_int_equal(iov[0].iov_len, 5);
    memcpy(iov[0].iov_base, "hello", 5);
    vfu_sgl_put(ctx, sgl, iov, 1);
    assert_int_equal(pread(fd, buf, 5, 3 * PG + 3), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(sg_lookup(ctx, sgl, &iova, &len, &vaddr, true), 0);
    assert_ptr_equal(vaddr, iov[0].iov_base);

    /* The unregister callback can still read the memory. */
    assert_int_equal(pwrite(fd, "Z", 1, 2 * PG), 1);
    assert_int_equal(dma_unmap(ctx, 0x40000, 4 * PG), 0);
    assert_int_equal(st.nr_unregister, 1);
    assert_int_equal(st.peek, 'Z');
    assert_int_equal(st.last_unregister.iova.iov_len, 4 * PG);

    /* The entry is stale, also once the same range is mapped again. */
    assert_int_equal(sg_lookup(ctx, sgl, &iova, &len, &vaddr, false),
                     -ENOENT);
    assert_false(vfu_sg_is_mappable(ctx, sgl));
    assert_int_equal(vfu_sgl_get(ctx, sgl, iov, 1, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(dma_map(ctx, 0x40000, 4 * PG, fd, 0, RW), 0);
    assert_int_equal(sg_lookup(ctx, sgl, &iova, &len, &vaddr, false),
                     -ENOENT);
    assert_int_equal(vfu_sgl_get(ctx, sgl, iov, 1, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(to_sgl(ctx, 0x40000 + PG + 3, 5, fresh, 1, RW), 1);
    assert_int_equal(vfu_sgl_get(ctx, fresh, iov, 1, 0), 0);
    /* ...and it sees the file from offset 0 now. */
    assert_int_equal(pread(fd, buf, 5, PG + 3), 5);
    assert_memory_equal(iov[0].iov_base, buf, 5);

    /* A stale entry anywhere in the list fails all of it. */
    memcpy(sg_at(sgl, 1), fresh, dma_sg_size());
    assert_int_equal(vfu_sgl_get(ctx, sg_at(sgl, 0), iov, 2, 0), -1);
    assert_int_equal(errno, ENOENT);

    /* Removing all: one more unregister. */
    dma_remove_all(ctx);
    assert_int_equal(st.nr_unregister, 2);
    assert_int_equal(dma_nr_maps(ctx), 0);
    assert_false(vfu_sg_is_mappable(ctx, fresh));
    free(sgl);
    free(fresh);
    close(fd);
}

/*
 * vfu_sgl_read/write on mapped memory: VFU_SGL_DIRECT_ACCESS copies through
 * the mapping; 0 goes by message even so (here, with no client, ENOTCONN);
 * other bits are EINVAL.
 */
static void
test_sgl_flags(void **state)
{
    vfu_ctx_t *ctx = *state;
    int fd = memfd(4 * PG);
    dma_sg_t *sgl = sgl_new(1);
    char buf[16] = "sixteen bytes...", back[16];

    assert_int_equal(dma_map(ctx, 0x40000, 4 * PG, fd, 0, RW), 0);
    assert_int_equal(to_sgl(ctx, 0x40000 + 10, 16, sgl, 1, RW), 1);
    assert_int_equal(vfu_sgl_write(ctx, sgl, 1, buf, VFU_SGL_DIRECT_ACCESS), 0);
    assert_int_equal(pread(fd, back, 16, 10), 16);
    assert_memory_equal(back, buf, 16);
    memset(back, 0, sizeof(back));
    assert_int_equal(vfu_sgl_read(ctx, sgl, 1, back, VFU_SGL_DIRECT_ACCESS), 0);
    assert_memory_equal(back, buf, 16);

    assert_int_equal(vfu_sgl_read(ctx, sgl, 1, back, 0), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(vfu_sgl_write(ctx, sgl, 1, "XXXXXXXXXXXXXXXX", 0), -1);
    assert_int_equal(errno, ENOTCONN);
    /* The older four-argument form means 0. */
    assert_int_equal(vfu_sgl_read(ctx, sgl, 1, back), -1);
    assert_int_equal(errno, ENOTCONN);
    for (int bit = 1; bit < 32; bit++) {
        assert_int_equal(vfu_sgl_write(ctx, sgl, 1, "XXXXXXXXXXXXXXXX",
                                       (int)(1u << bit)), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(vfu_sgl_read(ctx, sgl, 1, back,
                                      VFU_SGL_DIRECT_ACCESS | (int)(1u << bit)),
                         -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(pread(fd, back, 16, 10), 16);
    assert_memory_equal(back, buf, 16);
    free(sgl);
    close(fd);
}

static int
open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/*
 * A region for file I/O: refused without an fd, for a stream, for access
 * the file's open mode lacks; not mapped (no vaddr, vfu_sgl_get EFAULT);
 * reached with pread/pwrite on a duplicate of the fd at offset + position,
 * which goes with the region (unmap, remove all, free); a file cut short
 * later fails the access with EFAULT.
 */
static void
test_file_io(void **state)
{
    vfu_ctx_t *ctx = *state;
    int fd = memfd(16 * PG), base, p[2];
    dma_sg_t *sgl = sgl_new(2);
    char buf[3 * PG], back[3 * PG];
    struct iovec iov;

    assert_int_equal(vfu_setup_device_dma(ctx, 16, register_cb, unregister_cb),
                     0);
    base = open_fds();
    assert_int_equal(dma_map_file_io(ctx, 0x40000, 4 * PG, -1, 0, RW), -EINVAL);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dma_map_file_io(ctx, 0x40000, 4 * PG, p[0], 0, PROT_READ),
                     -EINVAL);
    close(p[0]);
    close(p[1]);
    char path[] = "/tmp/vfu-dma-XXXXXX";
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    assert_int_equal(ftruncate(tmp, 4 * PG), 0);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    unlink(path);
    base = open_fds();
    assert_int_equal(dma_map_file_io(ctx, 0x40000, 4 * PG, ro, 0, RW), -EACCES);
    assert_int_equal(dma_map_file_io(ctx, 0x40000, 4 * PG, ro, 0, PROT_READ),
                     0);
    assert_int_equal(open_fds(), base + 1);
    assert_int_equal(dma_unmap(ctx, 0x40000, 4 * PG), 0);
    assert_int_equal(open_fds(), base);
    close(tmp);
    close(ro);
    base = open_fds();

    /* Pages 3..10 of the file at 0x40000, the next 4 at 0x48000. */
    assert_int_equal(dma_map_file_io(ctx, 0x40000, 8 * PG, fd, 3 * PG, RW), 0);
    assert_int_equal(st.nr_register, 2);
    assert_null(st.last_register.vaddr);
    assert_null(st.last_register.mapping.iov_base);
    assert_int_equal(st.last_register.mapping.iov_len, 0);
    assert_int_equal(st.last_register.prot, RW);
    assert_int_equal(dma_map_file_io(ctx, 0x48000, 4 * PG, fd, 11 * PG, RW), 0);
    assert_int_equal(open_fds(), base + 2);

    /* Across both regions, from the middle of a page. */
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (char)(i * 13);
    }
    assert_int_equal(to_sgl(ctx, 0x40000 + 7 * PG + 100, sizeof(buf), sgl, 2,
                            RW), 2);
    assert_false(vfu_sg_is_mappable(ctx, sgl));
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 1, 0), -1);
    assert_int_equal(errno, EFAULT);
    assert_int_equal(vfu_sgl_write(ctx, sgl, 2, buf, VFU_SGL_DIRECT_ACCESS), 0);
    assert_int_equal(pread(fd, back, sizeof(back), 10 * PG + 100),
                     (ssize_t)sizeof(back));
    assert_memory_equal(back, buf, sizeof(buf));
    memset(back, 0, sizeof(back));
    assert_int_equal(pwrite(fd, "Q", 1, 12 * PG), 1);
    assert_int_equal(vfu_sgl_read(ctx, sgl, 2, back, VFU_SGL_DIRECT_ACCESS), 0);
    buf[2 * PG - 100] = 'Q';
    assert_memory_equal(back, buf, sizeof(buf));
    /* Flags 0: by message (no client here). */
    assert_int_equal(vfu_sgl_read(ctx, sgl, 2, back, 0), -1);
    assert_int_equal(errno, ENOTCONN);

    /* The client cuts its file short: the access fails, nothing crashes. */
    assert_int_equal(ftruncate(fd, 12 * PG), 0);
    assert_int_equal(vfu_sgl_read(ctx, sgl, 2, back, VFU_SGL_DIRECT_ACCESS), -1);
    assert_int_equal(errno, EFAULT);

    /* The duplicates go with their regions. */
    assert_int_equal(dma_unmap(ctx, 0x48000, 4 * PG), 0);
    assert_int_equal(open_fds(), base + 1);
    dma_remove_all(ctx);
    assert_int_equal(open_fds(), base);
    assert_int_equal(st.nr_unregister, 3);
    assert_int_equal(dma_map_file_io(ctx, 0x40000, 8 * PG, fd, 0, RW), 0);
    dma_free(ctx);
    assert_int_equal(open_fds(), base);
    free(sgl);
    close(fd);
}

/*
 * What is mapped of a file with a large block size (hugetlbfs): the
 * region rounded out to whole blocks, bounded by the end of a regular
 * file. The arithmetic alone, so that it is covered where there are no
 * huge pages.
 */
static void
test_map_span(void **state)
{
    const uint64_t MB2 = 2u << 20, GB = 1u << 30, top = 1ull << 63;
    const struct {
        uint64_t offset, size, blksize, file_size, start, len;
    } cases[] = {
        /* Inside one block, at its start, across a boundary, aligned. */
        { PG, 2 * PG, MB2, 2 * MB2, 0, MB2 },
        { 0, PG, MB2, 2 * MB2, 0, MB2 },
        { MB2 - PG, 2 * PG, MB2, UINT64_MAX, 0, 2 * MB2 },
        { MB2, MB2, MB2, 2 * MB2, MB2, MB2 },
        { PG, 3 * MB2, MB2, 4 * MB2, 0, 4 * MB2 },
        /* A file ending inside the last block: no further. */
        { MB2 + PG, PG, MB2, MB2 + MB2 / 2, MB2, MB2 / 2 },
        { MB2 + PG, PG, MB2, MB2 + 2 * PG, MB2, 2 * PG },
        /* ...but never short of the region itself. */
        { 0, 2 * PG, MB2, PG, 0, MB2 },
        /* System pages: nothing to round. */
        { 3 * PG, 5 * PG, PG, 8 * PG, 3 * PG, 5 * PG },
        /* 1 GiB pages; the top of what an off_t reaches. */
        { PG, PG, GB, UINT64_MAX, 0, GB },
        { top - 2 * MB2 + PG, PG, MB2, UINT64_MAX, top - 2 * MB2, MB2 },
        { top - MB2, MB2 - PG, MB2, top - PG, top - MB2, MB2 - PG },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t start = 1, len = 1;
        dma_map_span(cases[i].offset, cases[i].size, cases[i].blksize,
                     cases[i].file_size, &start, &len);
        assert_int_equal(start, cases[i].start);
        assert_int_equal(len, cases[i].len);
        /* The region lies inside what is mapped. */
        assert_true(start <= cases[i].offset);
        assert_true(cases[i].offset + cases[i].size <= start + len);
    }
}

/* The default huge page size in bytes, or 0; a count from /proc/meminfo. */
static long
meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long v = -1;

    if (f == NULL) {
        return -1;
    }
    while (v < 0 && fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(key);
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = atol(line + n + 1);
        }
    }
    fclose(f);
    return v;
}

static long
read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;

    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1) {
            v = -1;
        }
        fclose(f);
    }
    return v;
}

static bool
write_long(const char *path, long v)
{
    FILE *f = fopen(path, "w");
    bool ok = f != NULL && fprintf(f, "%ld\n", v) > 0;

    return f != NULL && fclose(f) == 0 && ok;
}

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
static long huge_pages_before = -1;     /* to restore, if we raised it */

/* @need free huge pages: there already, or reserved as root. */
static bool
huge_pages_get(long need)
{
    long free_pages = meminfo("HugePages_Free"), nr = read_long(NR_HUGEPAGES);

    if (free_pages >= need) {
        return true;
    }
    if (free_pages < 0 || nr < 0 || geteuid() != 0 ||
        !write_long(NR_HUGEPAGES, nr + need - free_pages)) {
        return false;
    }
    huge_pages_before = nr;
    return meminfo("HugePages_Free") >= need;
}

static int
teardown_huge(void **state)
{
    teardown(state);
    if (huge_pages_before >= 0) {
        (void)write_long(NR_HUGEPAGES, huge_pages_before);
        huge_pages_before = -1;
    }
    return 0;
}

/* Whether [p, p + len) is mapped at all (msync says ENOMEM where not). */
static bool
is_mapped(void *p, size_t len)
{
    return msync(p, len, MS_ASYNC) == 0;
}

/*
 * A real hugetlbfs memfd: regions at offsets and sizes that are not
 * multiples of the huge page map, rounded out to whole huge pages; the
 * device sees the client's bytes at vaddr; the whole rounded mapping goes
 * at unmap; the file does not grow. Skipped without huge pages.
 */
static void
test_hugetlbfs(void **state)
{
    vfu_ctx_t *ctx = *state;
    long hp = meminfo("Hugepagesize") * 1024;
    dma_sg_t *sgl;
    uint8_t *client;
    struct iovec iov;
    struct stat sb;
    void *base;
    int fd;

    if (hp <= 0 || !huge_pages_get(2)) {
        skip();
    }
    fd = memfd_create("dma-huge", MFD_CLOEXEC | MFD_HUGETLB);
    if (fd < 0) {
        skip();
    }
    assert_int_equal(ftruncate(fd, 2 * hp), 0);
    client = mmap(NULL, 2 * (size_t)hp, PROT_READ | PROT_WRITE, MAP_SHARED,
                  fd, 0);
    if (client == MAP_FAILED) {
        close(fd);              /* the pages went meanwhile (ENOMEM) */
        skip();
    }
    sgl = sgl_new(1);
    assert_int_equal(vfu_setup_device_dma(ctx, 8, register_cb, unregister_cb),
                     0);

    /* Two pages from 4 KiB into the first huge page. */
    assert_int_equal(dma_map(ctx, 0x10000000, 2 * PG, fd, PG, RW), 0);
    assert_int_equal(st.last_register.page_size, hp);
    assert_int_equal(st.last_register.mapping.iov_len, hp);
    base = st.last_register.mapping.iov_base;
    assert_int_equal((uintptr_t)base % (uintptr_t)hp, 0);
    assert_ptr_equal(st.last_register.vaddr, (uint8_t *)base + PG);
    assert_int_equal(st.last_register.iova.iov_len, 2 * PG);
    memcpy(client + PG + 10, "hello", 5);
    assert_int_equal(to_sgl(ctx, 0x10000000 + 10, 5, sgl, 1, RW), 1);
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 1, 0), 0);
    assert_ptr_equal(iov.iov_base, (uint8_t *)base + PG + 10);
    assert_memory_equal(iov.iov_base, "hello", 5);
    vfu_sgl_put(ctx, sgl, &iov, 1);

    /* Across the boundary of the two huge pages: both mapped. */
    assert_int_equal(dma_map(ctx, 0x20000000, 2 * PG, fd, hp - PG, RW), 0);
    assert_int_equal(st.last_register.mapping.iov_len, 2 * hp);
    assert_ptr_equal(st.last_register.vaddr,
                     (uint8_t *)st.last_register.mapping.iov_base + hp - PG);
    assert_int_equal(to_sgl(ctx, 0x20000000 + PG - 2, 4, sgl, 1, RW), 1);
    assert_int_equal(vfu_sgl_write(ctx, sgl, 1, "ABCD", VFU_SGL_DIRECT_ACCESS),
                     0);
    assert_memory_equal(client + hp - 2, "ABCD", 4);
    assert_int_equal(fstat(fd, &sb), 0);
    assert_int_equal(sb.st_size, 2 * hp);

    /* The rounded mapping goes whole. */
    assert_true(is_mapped(base, hp));
    assert_int_equal(dma_unmap(ctx, 0x10000000, 2 * PG), 0);
    assert_ptr_equal(st.last_unregister.mapping.iov_base, base);
    assert_false(is_mapped(base, hp));
    base = st.last_register.mapping.iov_base;
    dma_remove_all(ctx);
    assert_false(is_mapped(base, hp));
    assert_false(is_mapped((uint8_t *)base + hp, hp));
    free(sgl);
    munmap(client, 2 * (size_t)hp);
    close(fd);
}

/* The table holds max_dma_maps regions and finds each of them. */
static void
test_many_regions(void **state)
{
    vfu_ctx_t *ctx = *state;
    dma_sg_t *sgl = sgl_new(2);
    uint64_t iova;
    size_t len;
    void *vaddr;

    /*
     * Every other page: the first 1000 from the top down (each goes to the
     * front), the rest upwards as clients usually map.
     */
    for (uint64_t i = 1000; i-- > 0;) {
        assert_int_equal(dma_map(ctx, i * 2 * PG, PG, -1, 0, RW), 0);
    }
    for (uint64_t i = 1000; i < SERVER_MAX_DMA_MAPS; i++) {
        assert_int_equal(dma_map(ctx, i * 2 * PG, PG, -1, 0, RW), 0);
    }
    assert_int_equal(dma_nr_maps(ctx), SERVER_MAX_DMA_MAPS);
    assert_int_equal(dma_map(ctx, (uint64_t)SERVER_MAX_DMA_MAPS * 2 * PG, PG,
                             -1, 0, RW), -EINVAL);
    /* An overlap is still reported as such when full. */
    assert_int_equal(dma_map(ctx, 0, PG, -1, 0, RW), -EEXIST);
    for (uint64_t i = 0; i < SERVER_MAX_DMA_MAPS; i += 97) {
        assert_int_equal(to_sgl(ctx, i * 2 * PG + 5, 10, sgl, 2, PROT_READ), 1);
        assert_int_equal(sg_lookup(ctx, sgl, &iova, &len, &vaddr, false), 0);
        assert_int_equal(iova, i * 2 * PG + 5);
        assert_int_equal(to_sgl(ctx, i * 2 * PG + PG, 1, sgl, 2, 0), -1);
        assert_int_equal(errno, ENOENT);
    }
    /*
     * Unmap 500, map pages
     * between them: slots are reused, old entries stay stale, new distinct.
     */
    assert_int_equal(to_sgl(ctx, 2 * PG, 1, sgl, 2, 0), 1);
    for (uint64_t i = 1000; i > 0; i -= 2) {
        assert_int_equal(dma_unmap(ctx, i * 2 * PG, PG), 0);
    }
    assert_int_equal(dma_nr_maps(ctx), SERVER_MAX_DMA_MAPS - 500);
    for (uint64_t i = 0; i < 1000; i += 2) {
        assert_int_equal(dma_map(ctx, i * 2 * PG + PG, PG, -1, 0, RW), 0);
    }
    assert_int_equal(dma_nr_maps(ctx), SERVER_MAX_DMA_MAPS);
    assert_int_equal(sg_lookup(ctx, sgl, &iova, &len, &vaddr, false), 0);
    assert_int_equal(iova, 2 * PG);
    assert_int_equal(to_sgl(ctx, 4 * PG, 1, sgl, 2, 0), -1);
    assert_int_equal(errno, ENOENT);
    /* 0x1000..0x3000 is now two adjacent regions. */
    assert_int_equal(to_sgl(ctx, PG, 2 * PG, sgl, 2, 0), 2);
    dma_remove_all(ctx);
    assert_int_equal(dma_nr_maps(ctx), 0);
    free(sgl);
}

/*
 * 10^6 regions (LIBVFIO_USER_MAX_DMA_REGIONS), mapped top-down and in
 * random order: each map, lookup and unmap is O(log n), so this takes a
 * second or two where a sorted array took minutes.
 */
static uint64_t
xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
map_million(vfu_ctx_t *ctx, const uint32_t *order)
{
    const uint32_t n = LIBVFIO_USER_MAX_DMA_REGIONS;
    dma_sg_t *sgl = sgl_new(2);
    uint64_t x = 12345;

    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(dma_map(ctx, (uint64_t)order[i] * 2 * PG, PG, -1, 0,
                                 RW), 0);
    }
    assert_int_equal(dma_nr_maps(ctx), n);
    /* Full: the next is refused, an overlap still reported as one. */
    assert_int_equal(dma_map(ctx, (uint64_t)n * 2 * PG, PG, -1, 0, RW),
                     -EINVAL);
    assert_int_equal(dma_map(ctx, 2 * PG, PG, -1, 0, RW), -EEXIST);
    for (int k = 0; k < 100000; k++) {
        uint64_t i = xorshift(&x) % n;
        assert_int_equal(to_sgl(ctx, i * 2 * PG + 7, 9, sgl, 2, PROT_READ), 1);
        assert_int_equal(to_sgl(ctx, i * 2 * PG + PG, 1, sgl, 2, 0), -1);
        assert_int_equal(errno, ENOENT);
    }
    /* Every other region goes, in the same order; the rest stay found. */
    for (uint32_t i = 0; i < n; i++) {
        if (order[i] % 2 == 1) {
            assert_int_equal(dma_unmap(ctx, (uint64_t)order[i] * 2 * PG, PG),
                             0);
        }
    }
    assert_int_equal(dma_nr_maps(ctx), n / 2);
    for (int k = 0; k < 100000; k++) {
        uint64_t i = xorshift(&x) % n;
        assert_int_equal(to_sgl(ctx, i * 2 * PG, 1, sgl, 2, PROT_READ),
                         i % 2 ? -1 : 1);
    }
    dma_remove_all(ctx);
    assert_int_equal(dma_nr_maps(ctx), 0);
    free(sgl);
}

static void
test_million_descending(void **state)
{
    vfu_ctx_t *ctx = *state;
    uint32_t *order = malloc(LIBVFIO_USER_MAX_DMA_REGIONS * sizeof(*order));

    assert_non_null(order);
    for (uint32_t i = 0; i < LIBVFIO_USER_MAX_DMA_REGIONS; i++) {
        order[i] = LIBVFIO_USER_MAX_DMA_REGIONS - 1 - i;
    }
    assert_int_equal(vfu_setup_device_dma(ctx, LIBVFIO_USER_MAX_DMA_REGIONS,
                                          NULL, NULL), 0);
    map_million(ctx, order);
    free(order);
}

static void
test_million_random(void **state)
{
    vfu_ctx_t *ctx = *state;
    uint32_t *order = malloc(LIBVFIO_USER_MAX_DMA_REGIONS * sizeof(*order));
    uint64_t x = 99;

    assert_non_null(order);
    for (uint32_t i = 0; i < LIBVFIO_USER_MAX_DMA_REGIONS; i++) {
        order[i] = i;
    }
    for (uint32_t i = LIBVFIO_USER_MAX_DMA_REGIONS; i > 1; i--) {
        uint32_t j = (uint32_t)(xorshift(&x) % i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    assert_int_equal(vfu_setup_device_dma(ctx, LIBVFIO_USER_MAX_DMA_REGIONS,
                                          NULL, NULL), 0);
    map_million(ctx, order);
    free(order);
}

/* ------------------------------------------------------------------ */
/* Dirty log                                                           */
/* ------------------------------------------------------------------ */

static bool
bit(const uint64_t *bm, uint64_t n)
{
    return (bm[n / 64] >> (n % 64)) & 1;
}

static int
nr_bits(const uint64_t *bm, size_t words)
{
    int n = 0;
    for (size_t i = 0; i < words; i++) {
        n += __builtin_popcountll(bm[i]);
    }
    return n;
}

static void
test_dirty_log(void **state)
{
    struct dirty_log *log = dirty_new(PG);
    uint64_t bm[64];

    (void)state;
    assert_non_null(log);
    assert_int_equal(dirty_cover(log, 0x100000, 64 * PG), 0);
    /* Writes outside the covered range are not logged. */
    dirty_mark(log, 0, 0x100000);
    dirty_mark(log, 0x100000 + 64 * PG, PG);
    dirty_mark(log, 0x100000 + 3 * PG + 5, 1);          /* page 3 */
    dirty_mark(log, 0x100000 + 9 * PG - 1, 2);          /* pages 8, 9 */
    dirty_mark(log, 0x100000 + 70 * PG, 0);             /* nothing */

    /* Same page size: three bits, then read and cleared. */
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000, 64 * PG, PG, bm);
    assert_int_equal(nr_bits(bm, 1), 3);
    assert_true(bit(bm, 3) && bit(bm, 8) && bit(bm, 9));
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000, 64 * PG, PG, bm);
    assert_int_equal(nr_bits(bm, 1), 0);

    /* Larger report pages aggregate: pages 8, 9 share one 16 KiB bit. */
    dirty_mark(log, 0x100000 + 3 * PG, 1);
    dirty_mark(log, 0x100000 + 8 * PG, 2 * PG);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000, 64 * PG, 4 * PG, bm);
    assert_int_equal(nr_bits(bm, 1), 2);
    assert_true(bit(bm, 0) && bit(bm, 2));

    /* Smaller report pages replicate: 4 KiB dirty is 8 bits of 512. */
    dirty_mark(log, 0x100000 + PG, 1);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000, 4 * PG, 512, bm);
    assert_int_equal(bm[0], 0xff00ull);
    assert_int_equal(nr_bits(bm, 64), 8);

    /* A report that sees part of a page reports it and leaves it dirty. */
    dirty_mark(log, 0x100000 + 5 * PG, 1);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000 + 5 * PG + 2048, 4096, 2048, bm);
    assert_int_equal(bm[0], 1);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000 + 5 * PG, PG, PG, bm);
    assert_int_equal(bm[0], 1);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000 + 5 * PG, PG, PG, bm);
    assert_int_equal(bm[0], 0);

    /* An unaligned report start: bit n covers [iova + n*ps, ...). */
    dirty_mark(log, 0x100000 + 10 * PG, 1);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0x100000 + 9 * PG + 100, 2 * PG, PG, bm);
    assert_int_equal(bm[0], 3);     /* page 10 overlaps bits 0 and 1 */
    dirty_free(log);
}

static void
test_dirty_merge(void **state)
{
    struct dirty_log *log = dirty_new(2 * PG);
    uint64_t bm[4];

    (void)state;
    assert_non_null(log);
    assert_int_equal(dirty_cover(log, 0, 4 * PG), 0);
    assert_int_equal(dirty_cover(log, 16 * PG, 4 * PG), 0);
    dirty_mark(log, PG, 1);                     /* log page 0 */
    dirty_mark(log, 17 * PG, 1);                /* log page 8 */
    /* Covering what is covered changes nothing; bridging merges, bits kept. */
    assert_int_equal(dirty_cover(log, PG, PG), 0);
    assert_int_equal(dirty_cover(log, 3 * PG, 14 * PG), 0);
    dirty_mark(log, 10 * PG, 1);                /* log page 5, new cover */
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 0, 20 * PG, 2 * PG, bm);
    assert_int_equal(bm[0], (1u << 0) | (1u << 5) | (1u << 8));
    /* Unaligned ranges are rounded out to pages. */
    assert_int_equal(dirty_cover(log, 100 * PG + 1, 1), 0);
    dirty_mark(log, 101 * PG, 1);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, 100 * PG, 2 * PG, 2 * PG, bm);
    assert_int_equal(bm[0], 1);
    /* The top of the address space. */
    assert_int_equal(dirty_cover(log, UINT64_MAX - 10, 11), 0);
    dirty_mark(log, UINT64_MAX, 100);
    memset(bm, 0, sizeof(bm));
    dirty_report(log, UINT64_MAX - 2 * PG + 1, 2 * PG, 2 * PG, bm);
    assert_int_equal(bm[0], 1);
    /* The size limit. */
    assert_int_equal(dirty_cover(log, 1ull << 40, 2 * PG * DIRTY_MAX_PAGES),
                     -E2BIG);
    dirty_free(log);
}

/* dma.c's side of logging: what it covers, and the checks. */
static void
test_logging(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct vfio_user_device_feature_dma_logging_range r[3] = {
        { 0x100000, 16 * PG }, { 0x200000, 16 * PG }, { 0x300000, PG },
    };
    uint64_t ps, bm[4];
    dma_sg_t *sgl = sgl_new(1);
    int fd = memfd(16 * PG);
    struct iovec iov;

    assert_false(dma_logging(ctx));
    assert_int_equal(dma_log_report(ctx, 0, PG, PG, bm), -EINVAL);
    dma_log_stop(ctx);          /* harmless when not logging */

    /* Bad page sizes and ranges. */
    ps = 0;
    assert_int_equal(dma_log_start(ctx, &ps, r, 2), -EINVAL);
    ps = 3 * PG;
    assert_int_equal(dma_log_start(ctx, &ps, r, 2), -EINVAL);
    ps = PG;
    r[2] = (struct vfio_user_device_feature_dma_logging_range){ 0x10f000, PG };
    assert_int_equal(dma_log_start(ctx, &ps, r, 3), -EINVAL);    /* overlap */
    r[2] = (struct vfio_user_device_feature_dma_logging_range){ 0x400000, 0 };
    assert_int_equal(dma_log_start(ctx, &ps, r, 3), -EINVAL);    /* empty */
    r[2] = (struct vfio_user_device_feature_dma_logging_range){ UINT64_MAX, 2 };
    assert_int_equal(dma_log_start(ctx, &ps, r, 3), -EINVAL);    /* wraps */
    assert_false(dma_logging(ctx));

    /*
     * A hint below 4 KiB becomes 4 KiB; a second start at the same page
     * size changes nothing (as the original), at another it is refused.
     */
    ps = 512;
    assert_int_equal(dma_log_start(ctx, &ps, r, 2), 0);
    assert_int_equal(ps, PG);
    assert_true(dma_logging(ctx));
    ps = PG;
    assert_int_equal(dma_log_start(ctx, &ps, r, 2), 0);
    ps = 2 * PG;
    assert_int_equal(dma_log_start(ctx, &ps, r, 2), -EINVAL);
    assert_true(dma_logging(ctx));

    /* Writes through put (PROT_WRITE entries only) and mark_dirty. */
    assert_int_equal(dma_map(ctx, 0x100000, 16 * PG, fd, 0, RW), 0);
    assert_int_equal(to_sgl(ctx, 0x100000 + 2 * PG, 8, sgl, 1, PROT_READ), 1);
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 1, 0), 0);
    vfu_sgl_put(ctx, sgl, &iov, 1);                 /* read only: clean */
    assert_int_equal(to_sgl(ctx, 0x100000 + 3 * PG, 8, sgl, 1, RW), 1);
    assert_int_equal(vfu_sgl_get(ctx, sgl, &iov, 1, 0), 0);
    vfu_sgl_put(ctx, sgl, &iov, 1);                 /* page 3 */
    assert_int_equal(to_sgl(ctx, 0x100000 + 7 * PG, 8, sgl, 1, PROT_READ), 1);
    vfu_sgl_mark_dirty(ctx, sgl, 1);                /* page 7 */
    dma_mark_dirty(ctx, 0x200000 + PG, 1);          /* second range, page 1 */
    memset(bm, 0, sizeof(bm));
    assert_int_equal(dma_log_report(ctx, 0x100000, 16 * PG, PG, bm), 0);
    assert_int_equal(bm[0], (1u << 3) | (1u << 7));
    memset(bm, 0, sizeof(bm));
    assert_int_equal(dma_log_report(ctx, 0x200000, 16 * PG, PG, bm), 0);
    assert_int_equal(bm[0], 2);
    assert_int_equal(dma_log_report(ctx, 0, 0, PG, bm), -EINVAL);
    assert_int_equal(dma_log_report(ctx, 0, PG, 0, bm), -EINVAL);
    assert_int_equal(dma_log_report(ctx, 0, PG, 3000, bm), -EINVAL);
    assert_int_equal(dma_log_report(ctx, UINT64_MAX, 2, PG, bm), -EINVAL);
    /* A stale entry marks nothing. */
    assert_int_equal(dma_unmap(ctx, 0x100000, 16 * PG), 0);
    vfu_sgl_mark_dirty(ctx, sgl, 1);
    memset(bm, 0, sizeof(bm));
    assert_int_equal(dma_log_report(ctx, 0x100000, 16 * PG, PG, bm), 0);
    assert_int_equal(bm[0], 0);
    dma_log_stop(ctx);
    assert_false(dma_logging(ctx));

    /* No ranges: every mapping, also those mapped while logging. */
    assert_int_equal(dma_map(ctx, 0x100000, 4 * PG, -1, 0, RW), 0);
    ps = 2 * PG;
    assert_int_equal(dma_log_start(ctx, &ps, NULL, 0), 0);
    assert_int_equal(ps, 2 * PG);
    assert_int_equal(dma_map(ctx, 0x900000, 4 * PG, -1, 0, RW), 0);
    dma_mark_dirty(ctx, 0x100000 + 3 * PG, 1);
    dma_mark_dirty(ctx, 0x900000, 1);
    dma_mark_dirty(ctx, 0x500000, 1);               /* not mapped */
    memset(bm, 0, sizeof(bm));
    assert_int_equal(dma_log_report(ctx, 0x100000, 0x800000 + 4 * PG, 0x100000,
                                    bm), 0);
    assert_int_equal(bm[0], (1u << 0) | (1u << 8));
    free(sgl);
    close(fd);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_sg_size),
        T(test_map_refusals),
        T(test_overlap),
        T(test_unmap),
        T(test_lookup_one),
        T(test_lookup_across),
        T(test_mapped_and_stale),
        T(test_sgl_flags),
        T(test_file_io),
        T(test_map_span),
        cmocka_unit_test_setup_teardown(test_hugetlbfs, setup, teardown_huge),
        T(test_many_regions),
        T(test_million_descending),
        T(test_million_random),
        T(test_dirty_log),
        T(test_dirty_merge),
        T(test_logging),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
