/*
 * samples/server end to end, run as a process: the client shares guest
 * memory (a memfd, or plain memory reached by message), programs a copy,
 * rings the doorbell with a posted write as QEMU does, and checks the bytes
 * and the completion interrupt.
 *
 *   test_server_sample PATH-TO-vfu-server
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
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user-client.h"

#define MEM_IOVA    0x100000ull
#define MEM_SIZE    (1u << 20)
#define SRC         MEM_IOVA
#define DST         (MEM_IOVA + MEM_SIZE / 2)
#define REG_SRC     0x00
#define REG_DST     0x08
#define REG_LEN     0x10
#define REG_DOORBELL 0x14
#define REG_STATUS  0x18
#define REG_COUNT   0x1c
#define REG_MAGIC   0x20

static const char *server_path;

struct fx {
    char dir[32];
    char sock[64];
    pid_t pid;
    vfu_client_t *c;
    int irq;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    strcpy(f->dir, "/tmp/vfu-srv.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    f->pid = fork();
    if (f->pid == 0) {
        execl(server_path, server_path, f->sock, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && f->c == NULL; i++) {
        usleep(10000);
        f->c = vfu_client_connect(f->sock);
    }
    assert_non_null(f->c);
    assert_int_equal(vfu_client_negotiate(f->c, NULL), 0);
    /* The completion interrupt, as INTx. */
    f->irq = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(vfu_client_set_irqs(f->c, VFIO_PCI_INTX_IRQ_INDEX,
                                         VFIO_IRQ_SET_DATA_EVENTFD |
                                         VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1,
                                         &f->irq, NULL), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    int status;

    vfu_client_close(f->c);
    assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);    /* it left when we did */
    close(f->irq);
    unlink(f->sock);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void
wr32(struct fx *f, uint64_t off, uint32_t v, bool posted)
{
    assert_int_equal(vfu_client_region_write(f->c, 0, off, &v, 4, posted), 0);
}

static uint32_t
rd32(struct fx *f, uint64_t off)
{
    uint32_t v = 0;
    assert_int_equal(vfu_client_region_read(f->c, 0, off, &v, 4), 0);
    return v;
}

/* Programs a copy of @len bytes and rings the doorbell (posted). */
static void
start_copy(struct fx *f, uint32_t len)
{
    uint64_t src = SRC, dst = DST;
    assert_int_equal(vfu_client_region_write(f->c, 0, REG_SRC, &src, 8, true), 0);
    assert_int_equal(vfu_client_region_write(f->c, 0, REG_DST, &dst, 8, true), 0);
    wr32(f, REG_LEN, len, true);
    wr32(f, REG_DOORBELL, 1, true);
}

/* Waits for the copy to finish; reading STATUS also serves DMA messages. */
static uint32_t
wait_done(struct fx *f)
{
    uint32_t st = 0;
    for (int i = 0; i < 1000 && st == 0; i++) {
        st = rd32(f, REG_STATUS);
        if (st == 0) {
            usleep(1000);
        }
    }
    return st;
}

static void
fill(uint8_t *mem)
{
    for (size_t i = 0; i < MEM_SIZE / 2; i++) {
        mem[i] = (uint8_t)(i * 131 + 17);
    }
    memset(mem + MEM_SIZE / 2, 0, MEM_SIZE / 2);
}

static void
test_copy_mapped(void **state)
{
    struct fx *f = *state;
    int memfd = memfd_create("guest", MFD_CLOEXEC);
    uint8_t *mem;

    assert_int_equal(rd32(f, REG_MAGIC), 0x53554656);
    assert_int_equal(ftruncate(memfd, MEM_SIZE), 0);
    mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    assert_true(mem != MAP_FAILED);
    fill(mem);
    assert_int_equal(vfu_client_dma_map(f->c, MEM_IOVA, MEM_SIZE, memfd, 0, mem,
                                        VFIO_USER_F_DMA_REGION_READ |
                                        VFIO_USER_F_DMA_REGION_WRITE), 0);
    start_copy(f, 300000);
    assert_int_equal(wait_done(f), 1);
    assert_memory_equal(mem + MEM_SIZE / 2, mem, 300000);
    assert_int_equal(mem[MEM_SIZE / 2 + 300000], 0);
    assert_int_equal(rd32(f, REG_COUNT), 1);
    assert_true(vfu_client_wait_irq(f->irq, 2000) > 0);
    munmap(mem, MEM_SIZE);
    close(memfd);
}

static void
test_copy_by_message(void **state)
{
    struct fx *f = *state;
    uint8_t *mem = malloc(MEM_SIZE);

    fill(mem);
    assert_int_equal(vfu_client_dma_map(f->c, MEM_IOVA, MEM_SIZE, -1, 0, mem,
                                        VFIO_USER_F_DMA_REGION_READ |
                                        VFIO_USER_F_DMA_REGION_WRITE), 0);
    start_copy(f, 200000);
    assert_int_equal(wait_done(f), 1);
    assert_memory_equal(mem + MEM_SIZE / 2, mem, 200000);
    assert_int_equal(mem[MEM_SIZE / 2 + 200000], 0);
    assert_true(vfu_client_wait_irq(f->irq, 2000) > 0);

    /* A bad copy fails cleanly and says why: nothing mapped there. */
    wr32(f, REG_STATUS, 3, false);
    uint64_t nowhere = 0x40000000;
    assert_int_equal(vfu_client_region_write(f->c, 0, REG_SRC, &nowhere, 8,
                                             true), 0);
    wr32(f, REG_DOORBELL, 1, true);
    assert_int_equal(wait_done(f), 2u | (ENOENT << 16));
    assert_int_equal(rd32(f, REG_COUNT), 1);
    free(mem);
}

int
main(int argc, char *argv[])
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy_mapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_by_message, setup, teardown),
    };
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-vfu-server\n", argv[0]);
        return 2;
    }
    server_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
