/*
 * samples/doorbell end to end, run as a process: the client enables MSI,
 * installs the device's ioeventfds, and feeds the ring as QEMU would
 * (items and PRODUCED by posted writes, then the doorbell), checking after
 * each completion interrupt that the device took exactly what was sent
 * before the ring: through the eventfd, through REGION_WRITE once the
 * ioeventfds are removed, and a burst of rings counted whole however the
 * device's wake-ups coalesced them. The datamatch command goes by eventfd
 * for its value and by message for any other.
 *
 *   test_doorbell_sample PATH-TO-vfu-doorbell
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vfio-user-client.h"

#define REG_DOORBELL    0x000
#define REG_CMD         0x004
#define REG_PRODUCED    0x008
#define REG_CONSUMED    0x00c
#define REG_SUM         0x010
#define REG_RINGS       0x018
#define REG_BY_MSG      0x01c
#define REG_ITEMS       0x100
#define NR_ITEMS        64
#define MSI_CAP         0x40
#define CFG             VFIO_PCI_CONFIG_REGION_INDEX
#define BAR0            0
/* A guard against a hang, not a measurement. */
#define IRQ_WAIT_MS     10000

static const char *server_path;

struct fx {
    char dir[32];
    char sock[64];
    pid_t pid;
    vfu_client_t *c;
    int irq;
    uint32_t produced;
    uint64_t sum;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    uint16_t flags = 0;

    strcpy(f->dir, "/tmp/vfu-db.XXXXXX");
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
    /* MSI: enabled in config space, one eventfd for vector 0. */
    assert_int_equal(vfu_client_region_read(f->c, CFG, MSI_CAP + 2, &flags, 2),
                     0);
    flags |= 1;
    assert_int_equal(vfu_client_region_write(f->c, CFG, MSI_CAP + 2, &flags, 2,
                                             false), 0);
    f->irq = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(vfu_client_set_irqs(f->c, VFIO_PCI_MSI_IRQ_INDEX,
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

static uint32_t
rd32(struct fx *f, uint64_t off)
{
    uint32_t v = 0;
    assert_int_equal(vfu_client_region_read(f->c, BAR0, off, &v, 4), 0);
    return v;
}

static uint64_t
rd64(struct fx *f, uint64_t off)
{
    uint64_t v = 0;
    assert_int_equal(vfu_client_region_read(f->c, BAR0, off, &v, 8), 0);
    return v;
}

/* Puts @n items in the ring and PRODUCED, posted, as a driver would. */
static void
produce(struct fx *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t item = (uint64_t)f->produced * 1000003u + 17;
        assert_int_equal(vfu_client_region_write(f->c, BAR0, REG_ITEMS + 8 *
                                                 (f->produced % NR_ITEMS),
                                                 &item, 8, true), 0);
        f->sum += item;
        f->produced++;
    }
    assert_int_equal(vfu_client_region_write(f->c, BAR0, REG_PRODUCED,
                                             &f->produced, 4, true), 0);
}

/* Rings the doorbell, posted; 1: by eventfd, 0: by message. */
static int
ring(struct fx *f)
{
    uint32_t any = 0xdb;
    return vfu_client_doorbell(f->c, BAR0, REG_DOORBELL, &any, 4, true);
}

static void
wait_irq(struct fx *f)
{
    assert_true(vfu_client_wait_irq(f->irq, IRQ_WAIT_MS) > 0);
}

static void
test_through_eventfd(void **state)
{
    struct fx *f = *state;

    assert_int_equal(vfu_client_ioeventfds_install(f->c, BAR0), 2);
    for (unsigned batch = 1; batch <= 200; batch++) {
        produce(f, batch % NR_ITEMS);
        assert_int_equal(ring(f), 1);
        wait_irq(f);
        /* Everything sent before the ring was taken, nothing else. */
        assert_int_equal(rd32(f, REG_CONSUMED), f->produced);
        assert_int_equal(rd64(f, REG_SUM), f->sum);
        assert_int_equal(rd32(f, REG_RINGS), batch);
    }
    assert_int_equal(rd32(f, REG_BY_MSG), 0);
}

static void
test_by_message(void **state)
{
    struct fx *f = *state;

    /* Without the io fds (QEMU today), the same rings come by message. */
    for (unsigned batch = 1; batch <= 20; batch++) {
        produce(f, 3);
        assert_int_equal(ring(f), 0);
        wait_irq(f);
        assert_int_equal(rd32(f, REG_CONSUMED), f->produced);
        assert_int_equal(rd64(f, REG_SUM), f->sum);
    }
    assert_int_equal(rd32(f, REG_BY_MSG), 20);
    /* Installed, then removed: messages again. */
    assert_int_equal(vfu_client_ioeventfds_install(f->c, BAR0), 2);
    produce(f, 1);
    assert_int_equal(ring(f), 1);
    wait_irq(f);
    vfu_client_ioeventfds_remove(f->c, BAR0);
    produce(f, 1);
    assert_int_equal(ring(f), 0);
    wait_irq(f);
    assert_int_equal(rd64(f, REG_SUM), f->sum);
    assert_int_equal(rd32(f, REG_RINGS), 22);
    assert_int_equal(rd32(f, REG_BY_MSG), 21);
}

static void
test_burst(void **state)
{
    struct fx *f = *state;
    const unsigned rings = 50;

    /* Ring after ring without waiting: the signals add up. */
    assert_int_equal(vfu_client_ioeventfds_install(f->c, BAR0), 2);
    for (unsigned i = 0; i < rings; i++) {
        produce(f, 1);
        assert_int_equal(ring(f), 1);
    }
    while (rd32(f, REG_CONSUMED) != f->produced) {
        wait_irq(f);
    }
    assert_int_equal(rd64(f, REG_SUM), f->sum);
    assert_int_equal(rd32(f, REG_RINGS), rings);
}

static void
test_command(void **state)
{
    struct fx *f = *state;
    uint32_t cmd;

    assert_int_equal(vfu_client_ioeventfds_install(f->c, BAR0), 2);
    produce(f, 5);
    assert_int_equal(ring(f), 1);
    wait_irq(f);
    assert_int_not_equal(rd64(f, REG_SUM), 0);
    /* Another value: not the ioeventfd's, so a message, ignored. */
    cmd = 7;
    assert_int_equal(vfu_client_doorbell(f->c, BAR0, REG_CMD, &cmd, 4, false),
                     0);
    assert_int_equal(rd64(f, REG_SUM), f->sum);
    /* The value it matches: the eventfd, and the device clears. */
    cmd = 1;
    assert_int_equal(vfu_client_doorbell(f->c, BAR0, REG_CMD, &cmd, 4, true),
                     1);
    wait_irq(f);
    assert_int_equal(rd64(f, REG_SUM), 0);
    assert_int_equal(rd32(f, REG_RINGS), 0);
    assert_int_equal(rd32(f, REG_CONSUMED), f->produced);
}

int
main(int argc, char *argv[])
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_through_eventfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_by_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command, setup, teardown),
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-vfu-doorbell\n", argv[0]);
        return 2;
    }
    server_path = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
