/*
 * Both API generations, each in a device process of its own (device_older.c,
 * device_current.c), driven through a real socket by the client library:
 * the older calls mean what they meant (DMA by message, LIBVFIO_USER_MAX_
 * DMA_REGIONS), the current ones honour flags and max_regions.
 *
 *   test_generations DEVICE_OLDER DEVICE_CURRENT
 */
#include <errno.h>
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

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define REG_SRC     0x00
#define REG_DST     0x08
#define REG_LEN     0x10
#define REG_GO      0x18
#define REG_RESULT  0x20
#define REG_NR      0x28
#define REG_FLAGS   0x30

#define MEM_IOVA    0x100000ull     /* shared: a memfd */
#define MSG_IOVA    0x400000ull     /* not shared: by message */
#define MEM_SIZE    (128 * 1024)

static const char *device_path[2];

struct dev {
    char dir[32];
    char sock[64];
    pid_t pid;
    vfu_client_t *c;
    int memfd;
    uint8_t *mem;                   /* the memfd, as the client sees it */
    uint8_t *plain;                 /* client memory given without an fd */
};

static struct dev *
start(int which)
{
    struct dev *d = calloc(1, sizeof(*d));

    strcpy(d->dir, "/tmp/vfu-gen.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/s", d->dir);
    d->pid = fork();
    assert_true(d->pid >= 0);
    if (d->pid == 0) {
        execl(device_path[which], device_path[which], d->sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && d->c == NULL; i++) {
        d->c = vfu_client_connect(d->sock);
        if (d->c == NULL) {
            usleep(2000);
        }
    }
    assert_non_null(d->c);
    assert_int_equal(vfu_client_negotiate(d->c, NULL), 0);

    d->memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_int_equal(ftruncate(d->memfd, MEM_SIZE), 0);
    d->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  d->memfd, 0);
    assert_true(d->mem != MAP_FAILED);
    d->plain = calloc(1, MEM_SIZE);
    assert_int_equal(vfu_client_dma_map(d->c, MEM_IOVA, MEM_SIZE, d->memfd, 0,
                                        d->mem, PROT_READ | PROT_WRITE), 0);
    assert_int_equal(vfu_client_dma_map(d->c, MSG_IOVA, MEM_SIZE, -1, 0,
                                        d->plain, PROT_READ | PROT_WRITE), 0);
    return d;
}

static void
stop(struct dev *d)
{
    int status;

    vfu_client_close(d->c);
    assert_int_equal(waitpid(d->pid, &status, 0), d->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    munmap(d->mem, MEM_SIZE);
    close(d->memfd);
    free(d->plain);
    rmdir(d->dir);
    free(d);
}

static void
wr(struct dev *d, uint64_t reg, uint64_t v)
{
    /* Not posted: the client serves DMA messages while it waits. */
    assert_int_equal(vfu_client_region_write(d->c, VFU_PCI_DEV_BAR0_REGION_IDX,
                                             reg, &v, 8, false), 0);
}

static uint64_t
rd(struct dev *d, uint64_t reg)
{
    uint64_t v = 0;
    assert_int_equal(vfu_client_region_read(d->c, VFU_PCI_DEV_BAR0_REGION_IDX,
                                            reg, &v, 8), 0);
    return v;
}

static uint64_t
served(struct dev *d)
{
    struct vfu_client_stats st;
    vfu_client_get_stats(d->c, &st);
    return st.dma_served;
}

/*
 * Copies @len bytes @src -> @dst with the device; returns its result and
 * the DMA messages it took in *msgs.
 */
static uint64_t
copy(struct dev *d, uint64_t src, uint64_t dst, uint64_t len, uint64_t *msgs)
{
    uint64_t before = served(d);

    wr(d, REG_SRC, src);
    wr(d, REG_DST, dst);
    wr(d, REG_LEN, len);
    wr(d, REG_GO, 1);
    *msgs = served(d) - before;
    return rd(d, REG_RESULT);
}

static void
fill(uint8_t *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(i * 13 + seed);
    }
}

/* The older calls: vfu_sgl_read/write by message, even for shared memory. */
static void
test_older_device(void **state)
{
    struct dev *d = start(0);
    uint64_t msgs;
    (void)state;

    fill(d->mem, 4096, 1);
    assert_int_equal(copy(d, MEM_IOVA, MEM_IOVA + 65536, 4096, &msgs), 0);
    assert_memory_equal(d->mem + 65536, d->mem, 4096);
    assert_int_equal(msgs, 2);                  /* one DMA_READ, one WRITE */

    fill(d->plain, 4096, 2);
    assert_int_equal(copy(d, MSG_IOVA, MSG_IOVA + 65536, 4096, &msgs), 0);
    assert_memory_equal(d->plain + 65536, d->plain, 4096);
    assert_int_equal(msgs, 2);

    /* Three arguments meant LIBVFIO_USER_MAX_DMA_REGIONS: more maps fit. */
    for (uint64_t i = 0; i < 8; i++) {
        assert_int_equal(vfu_client_dma_map(d->c, 0x10000000 + i * 4096, 4096,
                                            -1, 0, d->plain,
                                            PROT_READ | PROT_WRITE), 0);
    }
    assert_int_equal(rd(d, REG_NR), 10);
    /* A reply only lowers what the client proposed (the default, 65535). */
    assert_int_equal(vfu_client_server_info(d->c)->max_dma_maps, 65535);
    stop(d);
}

/* The current calls: flags choose the path; max_regions is the limit. */
static void
test_current_device(void **state)
{
    struct dev *d = start(1);
    uint64_t msgs;
    (void)state;

    fill(d->mem, 4096, 3);
    wr(d, REG_FLAGS, VFU_SGL_DIRECT_ACCESS);
    assert_int_equal(copy(d, MEM_IOVA, MEM_IOVA + 65536, 4096, &msgs), 0);
    assert_memory_equal(d->mem + 65536, d->mem, 4096);
    assert_int_equal(msgs, 0);                  /* through the mapping */

    /* Direct access to memory given without an fd: by message. */
    fill(d->plain, 4096, 4);
    assert_int_equal(copy(d, MSG_IOVA, MSG_IOVA + 65536, 4096, &msgs), 0);
    assert_memory_equal(d->plain + 65536, d->plain, 4096);
    assert_int_equal(msgs, 2);

    /* Flags 0: by message even where the memory is shared. */
    fill(d->mem, 4096, 5);
    wr(d, REG_FLAGS, 0);
    assert_int_equal(copy(d, MEM_IOVA, MEM_IOVA + 65536, 4096, &msgs), 0);
    assert_memory_equal(d->mem + 65536, d->mem, 4096);
    assert_int_equal(msgs, 2);

    /* Any other flag bit is refused. */
    wr(d, REG_FLAGS, 2);
    assert_int_equal(copy(d, MEM_IOVA, MEM_IOVA + 65536, 4096, &msgs), EINVAL);
    assert_int_equal(msgs, 0);

    /* max_regions 3: announced, and the fourth map is refused. */
    assert_int_equal(vfu_client_server_info(d->c)->max_dma_maps, 3);
    assert_int_equal(vfu_client_dma_map(d->c, 0x10000000, 4096, -1, 0,
                                        d->plain, PROT_READ), 0);
    assert_int_equal(vfu_client_dma_map(d->c, 0x10001000, 4096, -1, 0,
                                        d->plain, PROT_READ), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(rd(d, REG_NR), 3);
    stop(d);
}

int
main(int argc, char *argv[])
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_older_device),
        cmocka_unit_test(test_current_device),
    };

    if (argc != 3) {
        fprintf(stderr, "usage: %s DEVICE_OLDER DEVICE_CURRENT\n", argv[0]);
        return 2;
    }
    device_path[0] = argv[1];
    device_path[1] = argv[2];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
