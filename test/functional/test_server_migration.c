/*
 * samples/server moved between two processes: registers and the MSI-X
 * table programmed on the first, vfu_client_migrate() to the second (a
 * pre-copy round, stop-and-copy, resume), then the second must read back
 * the same and behave the same (a doorbell with the same outcome).
 *
 *   test_server_migration PATH-TO-vfu-server
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
#include <sys/wait.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user-client.h"

#define BAR0    VFIO_PCI_BAR0_REGION_INDEX
#define BAR1    VFIO_PCI_BAR1_REGION_INDEX

static const char *server_path;

struct proc {
    char sock[96];
    pid_t pid;
    vfu_client_t *c;
};

static void
start(struct proc *p, const char *dir, const char *name)
{
    snprintf(p->sock, sizeof(p->sock), "%s/%s", dir, name);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        execl(server_path, server_path, p->sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000 && p->c == NULL; i++) {
        if (access(p->sock, F_OK) == 0) {
            p->c = vfu_client_connect(p->sock);
        }
        if (p->c == NULL) {
            usleep(5000);
        }
    }
    assert_non_null(p->c);
    assert_int_equal(vfu_client_negotiate(p->c, NULL), 0);
}

static void
stop(struct proc *p)
{
    int status;

    vfu_client_close(p->c);
    assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static uint32_t
rd32(struct proc *p, uint32_t region, uint64_t off)
{
    uint32_t v;
    assert_int_equal(vfu_client_region_read(p->c, region, off, &v, 4), 0);
    return v;
}

static void
wr(struct proc *p, uint32_t region, uint64_t off, const void *buf, size_t n)
{
    assert_int_equal(vfu_client_region_write(p->c, region, off, buf,
                                             (uint32_t)n, false), 0);
}

static void
test_move(void **state)
{
    char dir[] = "/tmp/vfu-smig.XXXXXX";
    struct proc a = { 0 }, b = { 0 };
    struct vfu_client_migrate_opts opts = { .max_precopy_rounds = 2 };
    struct vfu_client_migrate_stats st;
    uint8_t regs_a[0x24], regs_b[0x24], tab_a[32], tab_b[32];
    uint64_t src = 0x10000, dst = 0x20000, size;
    uint32_t len = 4096, one = 1, s;
    (void)state;

    assert_non_null(mkdtemp(dir));
    start(&a, dir, "a");
    start(&b, dir, "b");

    /* Program A: a copy with no memory mapped fails with ENOENT. */
    wr(&a, BAR0, 0x00, &src, 8);
    wr(&a, BAR0, 0x08, &dst, 8);
    wr(&a, BAR0, 0x10, &len, 4);
    wr(&a, BAR0, 0x14, &one, 4);
    uint32_t status = rd32(&a, BAR0, 0x18);
    assert_true(status & 2);
    for (uint32_t i = 0; i < 8; i++) {     /* MSI-X table: 2 vectors */
        uint32_t v = 0xfee00000u + i * 0x10 + (i % 4 == 3 ? 0 : i);
        wr(&a, BAR1, i * 4, &v, 4);
    }
    assert_int_equal(vfu_client_region_read(a.c, BAR0, 0, regs_a, sizeof(regs_a)), 0);
    assert_int_equal(vfu_client_region_read(a.c, BAR1, 0, tab_a, sizeof(tab_a)), 0);
    assert_int_equal(vfu_client_mig_data_size(a.c, &size), 0);
    assert_true(size > 4096);

    assert_int_equal(vfu_client_migrate(a.c, b.c, &opts, &st), 0);
    assert_true(st.precopy_rounds >= 1);
    assert_int_equal(st.precopy_bytes + st.stopcopy_bytes, 2 * size);
    assert_int_equal(vfu_client_mig_state_get(b.c, &s), 0);
    assert_int_equal(s, VFIO_DEVICE_STATE_RUNNING);

    /* B reads back what A had, and behaves the same. */
    assert_int_equal(vfu_client_region_read(b.c, BAR0, 0, regs_b, sizeof(regs_b)), 0);
    assert_int_equal(vfu_client_region_read(b.c, BAR1, 0, tab_b, sizeof(tab_b)), 0);
    assert_memory_equal(regs_a, regs_b, sizeof(regs_a));
    assert_memory_equal(tab_a, tab_b, sizeof(tab_a));
    assert_int_equal(rd32(&b, BAR0, 0x20), 0x53554656u);
    wr(&b, BAR0, 0x18, &status, 4);             /* clear */
    assert_int_equal(rd32(&b, BAR0, 0x18), 0);
    wr(&b, BAR0, 0x14, &one, 4);
    assert_int_equal(rd32(&b, BAR0, 0x18), status);

    /* A garbage stream: B refuses it and is left in ERROR until reset. */
    assert_int_equal(vfu_client_mig_state_set(b.c,
                                              VFIO_DEVICE_STATE_RESUMING), 0);
    assert_int_equal(vfu_client_mig_write(b.c, "garbage", 7), 0);
    assert_int_equal(vfu_client_mig_state_set(b.c, VFIO_DEVICE_STATE_RUNNING),
                     -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_mig_state_get(b.c, &s), 0);
    assert_int_equal(s, VFIO_DEVICE_STATE_ERROR);
    assert_int_equal(vfu_client_reset(b.c), 0);
    assert_int_equal(vfu_client_mig_state_get(b.c, &s), 0);
    assert_int_equal(s, VFIO_DEVICE_STATE_RUNNING);

    stop(&a);
    stop(&b);
    rmdir(dir);
}

/*
 * The move with guest memory: A and B share one memfd as guest RAM. A
 * copies with dirty logging on (the report marks exactly the pages it
 * wrote); after the move B, with the registers A had, writes the same
 * place in guest memory when rung.
 */
static void
test_move_with_guest_memory(void **state)
{
    char dir[] = "/tmp/vfu-smig.XXXXXX";
    struct proc a = { 0 }, b = { 0 };
    struct vfu_client_migrate_opts opts = { .max_precopy_rounds = 1 };
    struct vfu_client_migrate_stats st;
    const uint64_t iova = 0x100000, size = 1 << 20;
    uint64_t src = iova, dst = iova + size / 2, bitmap[4] = { 0 };
    uint32_t len = 3 * 4096 + 100, one = 1;
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    uint8_t *mem;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(ftruncate(memfd, (off_t)size), 0);
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    assert_true(mem != MAP_FAILED);
    for (uint32_t i = 0; i < len; i++) {
        mem[i] = (uint8_t)(i * 7 + 1);
    }
    start(&a, dir, "a");
    start(&b, dir, "b");
    const uint32_t rw = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE;
    assert_int_equal(vfu_client_dma_map(a.c, iova, size, memfd, 0, mem, rw), 0);
    assert_int_equal(vfu_client_dma_map(b.c, iova, size, memfd, 0, mem, rw), 0);

    /* A copies, logged. */
    struct vfio_user_device_feature_dma_logging_range range = {
        .iova = iova, .length = size };
    assert_int_equal(vfu_client_dirty_start(a.c, 4096, &range, 1), 0);
    wr(&a, BAR0, 0x00, &src, 8);
    wr(&a, BAR0, 0x08, &dst, 8);
    wr(&a, BAR0, 0x10, &len, 4);
    wr(&a, BAR0, 0x14, &one, 4);
    assert_int_equal(rd32(&a, BAR0, 0x18), 1);
    assert_memory_equal(mem + size / 2, mem, len);
    assert_int_equal(vfu_client_dirty_report(a.c, iova, size, 16 * 4096,
                                             bitmap), 0);
    /* 64-KiB report pages: only the one holding dst (page 8) is dirty. */
    assert_int_equal(bitmap[0], 1ull << 8);
    assert_int_equal(vfu_client_dirty_stop(a.c), 0);

    /* New source bytes, a clean destination, then the move. */
    for (uint32_t i = 0; i < len; i++) {
        mem[i] = (uint8_t)(i * 13 + 5);
    }
    memset(mem + size / 2, 0, len);
    assert_int_equal(vfu_client_migrate(a.c, b.c, &opts, &st), 0);

    /* B rings with A's registers: the same copy into guest memory. */
    wr(&b, BAR0, 0x18, &one, 4);
    wr(&b, BAR0, 0x14, &one, 4);
    assert_int_equal(rd32(&b, BAR0, 0x18), 1);
    assert_int_equal(rd32(&b, BAR0, 0x1c), 2);  /* A's copy, then B's */
    assert_memory_equal(mem + size / 2, mem, len);
    assert_int_equal(mem[size / 2 + len], 0);

    stop(&a);
    stop(&b);
    munmap(mem, size);
    close(memfd);
    rmdir(dir);
}

int
main(int argc, char *argv[])
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_move_with_guest_memory),
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-vfu-server\n", argv[0]);
        return 2;
    }
    server_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
