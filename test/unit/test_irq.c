/*
 * Unit tests for lib/server/irq.c: interrupt counts, GET_IRQ_INFO, the
 * validation of SET_IRQS, the INTx level model (assert, automask, unmask, Interrupt
 * Disable, unmask eventfd), MSI and MSI-X gating by their capabilities,
 * client masks and the state callback, loopback, and what happens to the
 * eventfds on replacement, refusal and reset. Contexts are built by hand;
 * requests go straight to the handlers as dispatch.c would hand them over.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "private.h"

#define NONE    VFIO_IRQ_SET_DATA_NONE
#define BOOL    VFIO_IRQ_SET_DATA_BOOL
#define EFD     VFIO_IRQ_SET_DATA_EVENTFD
#define MASK    VFIO_IRQ_SET_ACTION_MASK
#define UNMASK  VFIO_IRQ_SET_ACTION_UNMASK
#define TRIGGER VFIO_IRQ_SET_ACTION_TRIGGER

#define INTX    VFU_DEV_INTX_IRQ
#define MSI     VFU_DEV_MSI_IRQ
#define MSIX    VFU_DEV_MSIX_IRQ
#define ERR     VFU_DEV_ERR_IRQ
#define REQ     VFU_DEV_REQ_IRQ

#define MSI_VECS    4
#define MSIX_VECS   16
#define MSI_OFF     0x40
#define MSIX_OFF    0x60

/* Calls of the state callback. */
static struct {
    int calls;
    uint32_t start[8], count[8];
    bool mask[8];
} cb;

static void
state_cb(vfu_ctx_t *ctx, uint32_t start, uint32_t count, bool mask)
{
    (void)ctx;
    if (cb.calls < 8) {
        cb.start[cb.calls] = start;
        cb.count[cb.calls] = count;
        cb.mask[cb.calls] = mask;
    }
    cb.calls++;
}

static int
count_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++) {
        n += fcntl(fd, F_GETFD) >= 0;
    }
    return n;
}

static int
setup(void **state)
{
    vfu_ctx_t *ctx = calloc(1, sizeof(*ctx));

    assert_non_null(ctx);
    for (int i = 0; i < VFU_PCI_DEV_NUM_REGIONS; i++) {
        ctx->regions[i].fd = -1;
    }
    ctx->reply_buf = malloc(4096);
    assert_non_null(ctx->reply_buf);
    assert_int_equal(pci_alloc(ctx), 0);
    assert_int_equal(irq_init(ctx), 0);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    memset(&cb, 0, sizeof(cb));
    *state = ctx;
    return 0;
}

static int
teardown(void **state)
{
    vfu_ctx_t *ctx = *state;

    irq_free(ctx);
    pci_free(ctx);
    free(ctx->reply_buf);
    free(ctx);
    return 0;
}

/* A device with INTx, 4 MSI and 16 MSI-X vectors. */
static void
three_types(vfu_ctx_t *ctx)
{
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, INTX, 1), 0);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, MSI, MSI_VECS), 0);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, MSIX, MSIX_VECS), 0);
}

static int
efd_new(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    assert_true(fd >= 0);
    return fd;
}

/* The count an eventfd held (0: not signalled), reset to 0. */
static uint64_t
efd_take(int fd)
{
    uint64_t n = 0;

    if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n)) {
        return 0;
    }
    return n;
}

/*
 * One SET_IRQS request as dispatch.c hands it over: @fds are dup()ed into
 * the message (the caller keeps its own), whatever the handler does not
 * take is closed afterwards. @argsz 0 means "the payload size".
 */
static int
set_irqs_raw(vfu_ctx_t *ctx, uint32_t argsz, uint32_t flags, uint32_t index,
             uint32_t start, uint32_t count, const void *data, size_t dlen,
             const int *fds, size_t nr_fds)
{
    uint8_t buf[sizeof(struct vfio_irq_set) + 64];
    struct vfio_irq_set hdr = {
        .flags = flags, .index = index, .start = start, .count = count,
    };
    struct tran_msg msg;
    struct vfu_reply reply = { 0 };
    int ret;

    assert_true(dlen <= 64);
    hdr.argsz = argsz != 0 ? argsz : (uint32_t)(sizeof(hdr) + dlen);
    memcpy(buf, &hdr, sizeof(hdr));
    if (dlen > 0) {
        memcpy(buf + sizeof(hdr), data, dlen);
    }
    memset(&msg, 0, sizeof(msg));
    msg.hdr.cmd = VFIO_USER_DEVICE_SET_IRQS;
    msg.payload = buf;
    msg.len = sizeof(hdr) + dlen;
    for (size_t i = 0; i < nr_fds; i++) {
        msg.fds[i] = dup(fds[i]);
        assert_true(msg.fds[i] >= 0);
    }
    msg.nr_fds = nr_fds;
    ret = handle_set_irqs(ctx, &msg, &reply);
    tran_msg_close_fds(&msg);
    assert_int_equal(reply.iovcnt, 0);
    return ret;
}

static int
set_irqs(vfu_ctx_t *ctx, uint32_t flags, uint32_t index, uint32_t start,
         uint32_t count, const uint8_t *bools, const int *fds, size_t nr_fds)
{
    return set_irqs_raw(ctx, 0, flags, index, start, count, bools,
                        bools != NULL ? count : 0, fds, nr_fds);
}

static int
trigger(vfu_ctx_t *ctx, uint32_t subindex)
{
    errno = 0;
    return vfu_irq_trigger(ctx, subindex) == 0 ? 0 : errno;
}

static uint16_t
cfg16(vfu_ctx_t *ctx, size_t off)
{
    return pci_get16(ctx->pci.cfg, off);
}

static void
cfg_write16(vfu_ctx_t *ctx, size_t off, uint16_t val)
{
    assert_int_equal(region_config_access(ctx, (char *)&val, 2, off, true), 2);
}

static void
cfg_write32(vfu_ctx_t *ctx, size_t off, uint32_t val)
{
    assert_int_equal(region_config_access(ctx, (char *)&val, 4, off, true), 4);
}

static bool
intx_status(vfu_ctx_t *ctx)
{
    return (cfg16(ctx, PCI_STATUS) & PCI_STATUS_INTERRUPT) != 0;
}

/* ------------------------------------------------------------------ */
/* Set-up and GET_IRQ_INFO                                             */
/* ------------------------------------------------------------------ */

static void
test_setup_counts(void **state)
{
    vfu_ctx_t *ctx = *state;

    assert_int_equal(ctx->irqs.count[INTX], 0);
    assert_int_equal(ctx->irqs.count[MSI], 0);
    assert_int_equal(ctx->irqs.count[MSIX], 0);
    assert_int_equal(ctx->irqs.count[ERR], 1);
    assert_int_equal(ctx->irqs.count[REQ], 1);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_PIN], 0);

    assert_int_equal(vfu_setup_device_nr_irqs(ctx, INTX, 1), 0);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_PIN], 1);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, INTX, 0), 0);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_PIN], 0);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, MSI, 32), 0);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, MSIX, 2048), 0);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, ERR, 0), 0);
    assert_int_equal(ctx->irqs.count[MSIX], 2048);
    assert_int_equal(ctx->irqs.count[ERR], 0);

    /* Counts beyond what the type allows, bad types, no context. */
    const struct { int type; uint32_t count; } bad[] = {
        { INTX, 2 }, { MSI, 33 }, { MSIX, 2049 }, { ERR, 2 }, { REQ, 2 },
        { MSI, UINT32_MAX }, { -1, 1 }, { VFU_DEV_NUM_IRQS, 1 }, { 99, 0 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_int_equal(vfu_setup_device_nr_irqs(ctx,
                         (enum vfu_dev_irq_type)bad[i].type, bad[i].count), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(vfu_setup_device_nr_irqs(NULL, INTX, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ctx->irqs.count[MSI], 32);

    /* Not while a client is attached. */
    ctx->negotiated = true;
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, MSI, 1), -1);
    assert_int_equal(errno, EBUSY);
    ctx->negotiated = false;

    assert_int_equal(vfu_setup_irq_state_callback(ctx, MSIX, state_cb), 0);
    assert_int_equal(vfu_setup_irq_state_callback(ctx, MSIX, NULL), 0);
    assert_int_equal(vfu_setup_irq_state_callback(ctx,
                     (enum vfu_dev_irq_type)VFU_DEV_NUM_IRQS, state_cb), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_setup_irq_state_callback(NULL, MSIX, state_cb), -1);
    assert_int_equal(errno, EINVAL);
}

static int
irq_info(vfu_ctx_t *ctx, const struct vfio_irq_info *in, size_t len,
         struct vfio_irq_info *out)
{
    struct tran_msg msg;
    struct vfu_reply reply = { 0 };
    int ret;

    memset(&msg, 0, sizeof(msg));
    msg.payload = (uint8_t *)in;
    msg.len = len;
    ret = handle_irq_info(ctx, &msg, &reply);
    if (ret == 0) {
        assert_int_equal(reply.iovcnt, 1);
        assert_int_equal(reply.iov[0].iov_len, sizeof(*out));
        memcpy(out, reply.iov[0].iov_base, sizeof(*out));
    } else {
        assert_int_equal(reply.iovcnt, 0);
    }
    return ret;
}

static void
test_irq_info(void **state)
{
    vfu_ctx_t *ctx = *state;
    const uint32_t flags[VFU_DEV_NUM_IRQS] = {
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
            VFIO_IRQ_INFO_AUTOMASKED,
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
            VFIO_IRQ_INFO_NORESIZE,
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
            VFIO_IRQ_INFO_NORESIZE,
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
        VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
    };
    const uint32_t counts[VFU_DEV_NUM_IRQS] = { 1, MSI_VECS, MSIX_VECS, 1, 1 };
    struct vfio_irq_info in = { .argsz = sizeof(in) }, out;

    three_types(ctx);
    for (uint32_t i = 0; i < VFU_DEV_NUM_IRQS; i++) {
        in.index = i;
        memset(&out, 0xff, sizeof(out));
        assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), 0);
        assert_int_equal(out.argsz, sizeof(out));
        assert_int_equal(out.flags, flags[i]);
        assert_int_equal(out.index, i);
        assert_int_equal(out.count, counts[i]);
    }
    /* A larger argsz gets the same 16 bytes. */
    in.argsz = 4096;
    in.index = MSIX;
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), 0);
    assert_int_equal(out.argsz, sizeof(out));

    /* Bad index, short argsz, fields that must be 0, wrong sizes. */
    in = (struct vfio_irq_info){ .argsz = sizeof(in), .index = 5 };
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), -EINVAL);
    in.index = UINT32_MAX;
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), -EINVAL);
    in = (struct vfio_irq_info){ .argsz = sizeof(in) - 1 };
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), -EINVAL);
    in = (struct vfio_irq_info){ .argsz = 0 };
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), -EINVAL);
    in = (struct vfio_irq_info){ .argsz = sizeof(in), .flags = 1 };
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), -EINVAL);
    in = (struct vfio_irq_info){ .argsz = sizeof(in), .count = 1 };
    assert_int_equal(irq_info(ctx, &in, sizeof(in), &out), -EINVAL);
    in = (struct vfio_irq_info){ .argsz = sizeof(in) };
    assert_int_equal(irq_info(ctx, &in, 12, &out), -EINVAL);
    assert_int_equal(irq_info(ctx, &in, 0, &out), -EINVAL);
}

/* ------------------------------------------------------------------ */
/* SET_IRQS validation                                                 */
/* ------------------------------------------------------------------ */

static void
test_set_irqs_bad(void **state)
{
    vfu_ctx_t *ctx = *state;
    int before, e[4], pipefd[2];
    uint8_t bools[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };

    three_types(ctx);
    for (int i = 0; i < 4; i++) {
        e[i] = efd_new();
    }
    assert_int_equal(pipe(pipefd), 0);
    before = count_fds();

    /* Sizes: short payload, argsz unlike the payload. */
    assert_int_equal(set_irqs_raw(ctx, 0, NONE | TRIGGER, MSI, 0, 1, NULL, 0,
                                  NULL, 0), -EINVAL);      /* not enabled */
    {
        struct tran_msg msg;
        struct vfu_reply reply = { 0 };
        uint8_t buf[16] = { 16 };

        memset(&msg, 0, sizeof(msg));
        msg.payload = buf;
        for (size_t len = 0; len < sizeof(struct vfio_irq_set); len += 4) {
            msg.len = len;
            assert_int_equal(handle_set_irqs(ctx, &msg, &reply), -EINVAL);
        }
    }
    assert_int_equal(set_irqs_raw(ctx, 19, EFD | TRIGGER, MSI, 0, 1, NULL, 0,
                                  e, 1), -EINVAL);
    assert_int_equal(set_irqs_raw(ctx, 24, EFD | TRIGGER, MSI, 0, 1, NULL, 0,
                                  e, 1), -EINVAL);
    assert_int_equal(set_irqs_raw(ctx, 20 + 4, EFD | TRIGGER, MSI, 0, 1, e, 4,
                                  e, 1), -EINVAL);  /* inline fd data */

    /* Flags: unknown bits, no or two data types, no or two actions. */
    const uint32_t bad_flags[] = {
        0, TRIGGER, EFD, EFD | NONE | TRIGGER, BOOL | NONE | TRIGGER,
        EFD | MASK | TRIGGER, NONE | MASK | UNMASK, 1u << 6 | EFD | TRIGGER,
        0x80000000u | NONE | TRIGGER,
    };
    for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++) {
        assert_int_equal(set_irqs(ctx, bad_flags[i], MSI, 0, 1, NULL, e, 1),
                         -EINVAL);
    }
    /* Index and range. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, 5, 0, 1, NULL, e, 1), -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, UINT32_MAX, 0, 1, NULL, e, 1),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, MSI_VECS, 1, NULL, e, 1),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 3, 2, NULL, e, 2),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 1, UINT32_MAX, NULL,
                              NULL, 0), -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, UINT32_MAX, 2, NULL,
                              NULL, 0), -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 2, NULL, e, 2),
                     -EINVAL);
    assert_int_equal(vfu_setup_device_nr_irqs(ctx, ERR, 0), 0);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, ERR, 0, 0, NULL, NULL, 0),
                     -EINVAL);      /* nothing there, not even to disable */
    /* Count 0 is only DATA_NONE | ACTION_TRIGGER, from 0. */
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, MSI, 1, 0, NULL, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, BOOL | TRIGGER, MSI, 0, 0, bools, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 0, NULL, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, NONE | MASK, MSI, 0, 0, NULL, NULL, 0),
                     -EINVAL);
    /* Data: bools must match the count; none for NONE or EVENTFD. */
    assert_int_equal(set_irqs_raw(ctx, 0, BOOL | TRIGGER, MSI, 0, 2, bools, 1,
                                  NULL, 0), -EINVAL);
    assert_int_equal(set_irqs_raw(ctx, 0, BOOL | TRIGGER, MSI, 0, 2, bools, 3,
                                  NULL, 0), -EINVAL);
    assert_int_equal(set_irqs_raw(ctx, 0, NONE | TRIGGER, MSI, 0, 2, bools, 2,
                                  NULL, 0), -EINVAL);
    /* Fds: count of them, or none; only with EVENTFD; only eventfds. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 3, NULL, e, 2),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 1, NULL, e, 2),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, MSI, 0, 1, NULL, e, 1),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, BOOL | MASK, MSI, 0, 1, bools, e, 1),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 1, NULL, pipefd, 1),
                     -EINVAL);
    {
        int mixed[2] = { e[0], pipefd[1] };
        assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 2, NULL, mixed,
                                  2), -EINVAL);
    }

    /* Nothing was taken or changed: every fd the messages carried is gone. */
    assert_int_equal(ctx->irqs.enabled, -1);
    for (uint32_t v = 0; v < MSI_VECS; v++) {
        assert_int_equal(ctx->irqs.vecs[MSI][v].efd, -1);
    }
    assert_int_equal(count_fds(), before);
    for (int i = 0; i < 4; i++) {
        close(e[i]);
    }
    close(pipefd[0]);
    close(pipefd[1]);
}

/* Actions an index does not support, and actions on a disabled index. */
static void
test_set_irqs_unsupported(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = efd_new();
    uint8_t one = 1;

    three_types(ctx);
    /* Masking needs the index enabled. */
    assert_int_equal(set_irqs(ctx, NONE | MASK, INTX, 0, 1, NULL, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, MSI, 0, 1, NULL, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | UNMASK, INTX, 0, 1, NULL, &e, 1),
                     -EINVAL);
    /* Loopback needs eventfds. */
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, INTX, 0, 1, NULL, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, BOOL | TRIGGER, MSIX, 0, 1, &one, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, ERR, 0, 1, NULL, NULL, 0),
                     -EINVAL);
    /* ERR and REQ cannot be masked; mask eventfds exist only for INTx unmask. */
    assert_int_equal(set_irqs(ctx, NONE | MASK, ERR, 0, 1, NULL, NULL, 0),
                     -ENOTTY);
    assert_int_equal(set_irqs(ctx, BOOL | UNMASK, REQ, 0, 1, &one, NULL, 0),
                     -ENOTTY);
    assert_int_equal(set_irqs(ctx, EFD | MASK, INTX, 0, 1, NULL, &e, 1),
                     -ENOTTY);
    assert_int_equal(set_irqs(ctx, EFD | MASK, MSI, 0, 1, NULL, &e, 1),
                     -ENOTTY);
    assert_int_equal(set_irqs(ctx, EFD | UNMASK, MSIX, 0, 1, NULL, &e, 1),
                     -ENOTTY);
    close(e);
}

/* INTx, MSI and MSI-X exclude each other; ERR and REQ do not. */
static void
test_exclusive(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e[2] = { efd_new(), efd_new() };

    three_types(ctx);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 1, NULL, e, 1), 0);
    assert_int_equal(ctx->irqs.enabled, INTX);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 1, NULL, e, 1),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, 0, 1, NULL, NULL, 0),
                     -EINVAL);
    /* A disabled index stays disabled; ERR and REQ go alongside. */
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, MSI, 0, 0, NULL, NULL, 0), 0);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, ERR, 0, 1, NULL, e + 1, 1), 0);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, REQ, 0, 1, NULL, e + 1, 1), 0);
    assert_int_equal(ctx->irqs.enabled, INTX);

    /* INTx off (de-assigning its one eventfd): MSI-X may come. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(ctx->irqs.enabled, -1);
    /* MSI-X enabled without any eventfd, as QEMU does on MSI-X enable. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(ctx->irqs.enabled, MSIX);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 1, NULL, e, 1),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 1, NULL, NULL, 0),
                     -EINVAL);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, MSIX, 0, 0, NULL, NULL, 0), 0);
    assert_int_equal(ctx->irqs.enabled, -1);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 2, NULL, e, 2), 0);
    assert_int_equal(ctx->irqs.enabled, MSI);
    /* ERR and REQ survive all of it. */
    assert_true(ctx->irqs.vecs[ERR][0].efd >= 0);
    assert_true(ctx->irqs.vecs[REQ][0].efd >= 0);
    close(e[0]);
    close(e[1]);
}

/* ------------------------------------------------------------------ */
/* INTx                                                                */
/* ------------------------------------------------------------------ */

static int
intx_on(vfu_ctx_t *ctx)
{
    int e = efd_new();

    three_types(ctx);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 1, NULL, &e, 1), 0);
    assert_false(intx_status(ctx));
    return e;
}

/* Assert, signal once, stay asserted (automasked) until unmasked. */
static void
test_intx_level(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = intx_on(ctx);

    assert_int_equal(vfu_setup_irq_state_callback(ctx, INTX, state_cb), 0);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(trigger(ctx, 0), 0);
        assert_true(intx_status(ctx));
        assert_int_equal(efd_take(e), 1);
        /* Asserted: further triggers change nothing. */
        assert_int_equal(trigger(ctx, 0), 0);
        assert_int_equal(trigger(ctx, 0), 0);
        assert_int_equal(efd_take(e), 0);
        assert_true(intx_status(ctx));
        /* The guest's EOI: the client unmasks, the line goes down. */
        assert_int_equal(set_irqs(ctx, NONE | UNMASK, INTX, 0, 1, NULL, NULL,
                                  0), 0);
        assert_false(intx_status(ctx));
        assert_int_equal(efd_take(e), 0);
        assert_int_equal(cb.calls, round + 1);
        assert_int_equal(cb.start[round], 0);
        assert_int_equal(cb.count[round], 1);
        assert_false(cb.mask[round]);
    }
    /* Unmasking an idle line is harmless. */
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_false(intx_status(ctx));
    /* Trigger only knows subindex 0. */
    assert_int_equal(trigger(ctx, 1), EINVAL);
    assert_int_equal(trigger(ctx, UINT32_MAX), EINVAL);
    close(e);
}

/* Interrupt Disable: the status bit follows, the signal waits. */
static void
test_intx_disable_bit(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = intx_on(ctx);

    cfg_write16(ctx, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    assert_int_equal(trigger(ctx, 0), 0);
    assert_true(intx_status(ctx));
    assert_int_equal(efd_take(e), 0);
    /* An unrelated command write leaves it held back. */
    cfg_write16(ctx, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE |
                PCI_COMMAND_MEMORY);
    assert_int_equal(efd_take(e), 0);
    /* Re-enabled while pending: delivered now, as on a real bus. */
    cfg_write16(ctx, PCI_COMMAND, PCI_COMMAND_MEMORY);
    assert_int_equal(efd_take(e), 1);
    assert_true(intx_status(ctx));
    /* The EOI. */
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_false(intx_status(ctx));

    /* Disabled after signalling: nothing new, EOI as usual. */
    assert_int_equal(trigger(ctx, 0), 0);
    assert_int_equal(efd_take(e), 1);
    cfg_write16(ctx, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    cfg_write16(ctx, PCI_COMMAND, 0);
    assert_int_equal(efd_take(e), 0);
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_false(intx_status(ctx));
    close(e);
}

/* MASK/UNMASK by the client, with DATA_NONE and DATA_BOOL. */
static void
test_intx_mask(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = intx_on(ctx);
    uint8_t no = 0, yes = 1;

    assert_int_equal(vfu_setup_irq_state_callback(ctx, INTX, state_cb), 0);
    assert_int_equal(set_irqs(ctx, NONE | MASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(cb.calls, 1);
    assert_true(cb.mask[0]);
    assert_int_equal(trigger(ctx, 0), 0);
    assert_true(intx_status(ctx));
    assert_int_equal(efd_take(e), 0);
    /* A false bool does nothing, not even a callback. */
    assert_int_equal(set_irqs(ctx, BOOL | UNMASK, INTX, 0, 1, &no, NULL, 0), 0);
    assert_int_equal(efd_take(e), 0);
    assert_int_equal(cb.calls, 1);
    /* Unmasked with the line up and not yet signalled: signalled now. */
    assert_int_equal(set_irqs(ctx, BOOL | UNMASK, INTX, 0, 1, &yes, NULL, 0), 0);
    assert_int_equal(efd_take(e), 1);
    assert_true(intx_status(ctx));
    assert_int_equal(cb.calls, 2);
    assert_false(cb.mask[1]);
    /* Now the EOI. */
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_false(intx_status(ctx));
    /* Masking a signalled line, then unmasking: that is the EOI too. */
    assert_int_equal(trigger(ctx, 0), 0);
    assert_int_equal(efd_take(e), 1);
    assert_int_equal(set_irqs(ctx, BOOL | MASK, INTX, 0, 1, &yes, NULL, 0), 0);
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_false(intx_status(ctx));
    assert_int_equal(efd_take(e), 0);
    close(e);
}

/* An unmask eventfd (KVM's resample fd): signalled by the client's side. */
static void
test_intx_unmask_eventfd(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = intx_on(ctx), u = efd_new();
    uint64_t one = 1;

    assert_int_equal(vfu_setup_irq_state_callback(ctx, INTX, state_cb), 0);
    assert_int_equal(set_irqs(ctx, EFD | UNMASK, INTX, 0, 1, NULL, &u, 1), 0);
    assert_true(ctx->irqs.intx_unmask_fd >= 0);
    assert_int_equal(trigger(ctx, 0), 0);
    assert_int_equal(efd_take(e), 1);
    /* Not signalled yet: still asserted. */
    irq_poll(ctx);
    assert_true(intx_status(ctx));
    /* The EOI arrives on the unmask eventfd; the next look takes it in. */
    assert_int_equal(write(u, &one, sizeof(one)), (ssize_t)sizeof(one));
    irq_poll(ctx);
    assert_false(intx_status(ctx));
    assert_int_equal(cb.calls, 1);
    assert_false(cb.mask[0]);
    assert_int_equal(efd_take(u), 0);      /* consumed */
    /* A trigger also looks first, so it is never lost. */
    assert_int_equal(trigger(ctx, 0), 0);
    assert_int_equal(efd_take(e), 1);
    assert_int_equal(write(u, &one, sizeof(one)), (ssize_t)sizeof(one));
    assert_int_equal(trigger(ctx, 0), 0);
    assert_int_equal(efd_take(e), 1);
    assert_true(intx_status(ctx));
    /* De-assigned: no more polling. */
    assert_int_equal(set_irqs(ctx, EFD | UNMASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(ctx->irqs.intx_unmask_fd, -1);
    close(e);
    close(u);
}

/* Loopback: the client fires the interrupt itself. */
static void
test_loopback(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = intx_on(ctx), m[3] = { efd_new(), efd_new(), efd_new() };
    uint8_t sel[3] = { 1, 0, 1 }, no = 0;

    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(efd_take(e), 1);
    assert_int_equal(set_irqs(ctx, BOOL | TRIGGER, INTX, 0, 1, &no, NULL, 0), 0);
    assert_int_equal(efd_take(e), 0);
    /* Loopback does not assert the line. */
    assert_false(intx_status(ctx));

    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, INTX, 0, 0, NULL, NULL, 0), 0);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, 4, 3, NULL, m, 3), 0);
    assert_int_equal(set_irqs(ctx, BOOL | TRIGGER, MSIX, 4, 3, sel, NULL, 0), 0);
    assert_int_equal(efd_take(m[0]), 1);
    assert_int_equal(efd_take(m[1]), 0);
    assert_int_equal(efd_take(m[2]), 1);
    /* Vectors without an eventfd are skipped. */
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, MSIX, 0, MSIX_VECS, NULL,
                              NULL, 0), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(efd_take(m[i]), 1);
    }
    /* ERR and REQ. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, REQ, 0, 1, NULL, &e, 1), 0);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, REQ, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(efd_take(e), 1);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, REQ, 0, 0, NULL, NULL, 0), 0);
    assert_int_equal(ctx->irqs.vecs[REQ][0].efd, -1);
    close(e);
    for (int i = 0; i < 3; i++) {
        close(m[i]);
    }
}

/* ------------------------------------------------------------------ */
/* MSI and MSI-X                                                       */
/* ------------------------------------------------------------------ */

static void
add_msi(vfu_ctx_t *ctx)
{
    struct msicap msi = {
        .hdr.id = PCI_CAP_ID_MSI,
        .mc = { .mmc = 2, .c64 = 1, .pvm = 1 },
    };

    assert_int_equal(vfu_pci_add_capability(ctx, MSI_OFF, 0, &msi), MSI_OFF);
}

static uint32_t
msi_pending_bits(vfu_ctx_t *ctx)
{
    return pci_get32(ctx->pci.cfg, MSI_OFF + PCI_MSI_PENDING_64);
}

/* Triggers the vectors of @idx in @mask, returns the mask of signalled ones. */
static unsigned
fire(vfu_ctx_t *ctx, const int *e, unsigned n, unsigned mask)
{
    unsigned got = 0;

    for (unsigned v = 0; v < n; v++) {
        if (mask & (1u << v)) {
            assert_int_equal(trigger(ctx, v), 0);
        }
    }
    for (unsigned v = 0; v < n; v++) {
        uint64_t c = efd_take(e[v]);
        assert_true(c <= 1);
        got |= (unsigned)c << v;
    }
    return got;
}

static unsigned
taken(const int *e, unsigned n)
{
    return fire(NULL, e, n, 0);
}

static void
test_msi_gating(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e[MSI_VECS];

    add_msi(ctx);
    three_types(ctx);
    for (int v = 0; v < MSI_VECS; v++) {
        e[v] = efd_new();
    }
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, MSI_VECS, NULL, e,
                              MSI_VECS), 0);
    /* MSI disabled in the capability: held pending, shown in the bits. */
    assert_int_equal(fire(ctx, e, MSI_VECS, 0x5), 0);
    assert_int_equal(msi_pending_bits(ctx), 0x5);
    /* Enabled with 2 vectors: vector 0 goes; 2 is beyond those enabled. */
    cfg_write16(ctx, MSI_OFF + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | (1 << 4));
    assert_int_equal(taken(e, MSI_VECS), 0x1);
    assert_int_equal(msi_pending_bits(ctx), 0x4);
    /* Per-vector mask bits hold vectors back. */
    cfg_write32(ctx, MSI_OFF + PCI_MSI_MASK_64, 0x2);
    assert_int_equal(fire(ctx, e, MSI_VECS, 0x3), 0x1);
    assert_int_equal(msi_pending_bits(ctx), 0x6);
    /* All 4 enabled, vector 1 unmasked: both pending go out, once. */
    cfg_write16(ctx, MSI_OFF + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | (2 << 4));
    assert_int_equal(taken(e, MSI_VECS), 0x4);
    cfg_write32(ctx, MSI_OFF + PCI_MSI_MASK_64, 0);
    assert_int_equal(taken(e, MSI_VECS), 0x2);
    assert_int_equal(msi_pending_bits(ctx), 0);
    assert_int_equal(taken(e, MSI_VECS), 0);
    /* Raising a pending vector again does not queue a second message. */
    cfg_write32(ctx, MSI_OFF + PCI_MSI_MASK_64, 0x8);
    assert_int_equal(fire(ctx, e, MSI_VECS, 0x8), 0);
    assert_int_equal(fire(ctx, e, MSI_VECS, 0x8), 0);
    cfg_write32(ctx, MSI_OFF + PCI_MSI_MASK_64, 0);
    assert_int_equal(taken(e, MSI_VECS), 0x8);
    /* Everything open: straight through. */
    assert_int_equal(fire(ctx, e, MSI_VECS, 0xf), 0xf);
    /* De-assigning a pending vector drops it and its pending bit. */
    cfg_write32(ctx, MSI_OFF + PCI_MSI_MASK_64, 0x1);
    assert_int_equal(fire(ctx, e, MSI_VECS, 0x1), 0);
    assert_int_equal(msi_pending_bits(ctx), 0x1);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(msi_pending_bits(ctx), 0);
    assert_int_equal(ctx->irqs.nr_pending, 0);
    assert_int_equal(trigger(ctx, 0), ENOENT);
    for (int v = 0; v < MSI_VECS; v++) {
        close(e[v]);
    }
}

static void
test_msix_gating(void **state)
{
    vfu_ctx_t *ctx = *state;
    struct msixcap msix = {
        .hdr.id = PCI_CAP_ID_MSIX, .mxc.ts = MSIX_VECS - 1,
        .mpba.pbao = 0x800 >> 3,
    };
    int e[4];

    assert_int_equal(vfu_pci_add_capability(ctx, MSIX_OFF, 0, &msix),
                     MSIX_OFF);
    three_types(ctx);
    for (int v = 0; v < 4; v++) {
        e[v] = efd_new();
    }
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, 0, 4, NULL, e, 4), 0);
    assert_int_equal(fire(ctx, e, 4, 0x3), 0);
    cfg_write16(ctx, MSIX_OFF + PCI_MSIX_FLAGS,
                PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    assert_int_equal(taken(e, 4), 0);
    assert_int_equal(fire(ctx, e, 4, 0x4), 0);
    cfg_write16(ctx, MSIX_OFF + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE);
    assert_int_equal(taken(e, 4), 0x7);
    assert_int_equal(fire(ctx, e, 4, 0xf), 0xf);
    /* Beyond the count, or without an eventfd. */
    assert_int_equal(trigger(ctx, MSIX_VECS), EINVAL);
    assert_int_equal(trigger(ctx, 4), ENOENT);
    for (int v = 0; v < 4; v++) {
        close(e[v]);
    }
}

/* Without the capability nothing holds MSI back. */
static void
test_msi_without_cap(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e[2] = { efd_new(), efd_new() };

    three_types(ctx);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 2, 2, NULL, e, 2), 0);
    assert_int_equal(trigger(ctx, 2), 0);
    assert_int_equal(trigger(ctx, 3), 0);
    assert_int_equal(efd_take(e[0]), 1);
    assert_int_equal(efd_take(e[1]), 1);
    assert_int_equal(trigger(ctx, 0), ENOENT);
    assert_int_equal(trigger(ctx, MSI_VECS), EINVAL);
    close(e[0]);
    close(e[1]);
}

/* MASK/UNMASK of vectors by the client, and the state callback. */
static void
test_client_mask_vectors(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e[MSI_VECS];
    uint8_t sel[MSI_VECS] = { 1, 0, 1, 1 };

    three_types(ctx);
    assert_int_equal(vfu_setup_irq_state_callback(ctx, MSI, state_cb), 0);
    for (int v = 0; v < MSI_VECS; v++) {
        e[v] = efd_new();
    }
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, MSI_VECS, NULL, e,
                              MSI_VECS), 0);
    assert_int_equal(set_irqs(ctx, BOOL | MASK, MSI, 0, MSI_VECS, sel, NULL,
                              0), 0);
    /* One call per run of consecutive vectors. */
    assert_int_equal(cb.calls, 2);
    assert_int_equal(cb.start[0], 0);
    assert_int_equal(cb.count[0], 1);
    assert_true(cb.mask[0]);
    assert_int_equal(cb.start[1], 2);
    assert_int_equal(cb.count[1], 2);
    assert_true(cb.mask[1]);
    assert_int_equal(fire(ctx, e, MSI_VECS, 0xf), 0x2);
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, MSI, 2, 2, NULL, NULL, 0), 0);
    assert_int_equal(cb.calls, 3);
    assert_int_equal(cb.start[2], 2);
    assert_int_equal(cb.count[2], 2);
    assert_false(cb.mask[2]);
    assert_int_equal(taken(e, MSI_VECS), 0xc);
    /* Vector 0 is still pending; a new eventfd keeps mask and pending. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 0, 1, NULL, e, 1), 0);
    assert_int_equal(fire(ctx, e, MSI_VECS, 0x1), 0);
    assert_int_equal(cb.calls, 3);
    assert_int_equal(ctx->irqs.nr_pending, 1);
    /* The unmask delivers it, once. */
    assert_int_equal(set_irqs(ctx, NONE | UNMASK, MSI, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(taken(e, MSI_VECS), 0x1);
    assert_int_equal(ctx->irqs.nr_pending, 0);
    for (int v = 0; v < MSI_VECS; v++) {
        close(e[v]);
    }
}

/* ------------------------------------------------------------------ */
/* Trigger errors, fds                                                 */
/* ------------------------------------------------------------------ */

static void
test_trigger_errors(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e = efd_new();

    assert_int_equal(vfu_irq_trigger(NULL, 0), -1);
    assert_int_equal(errno, EINVAL);
    /* No interrupts at all. */
    assert_int_equal(trigger(ctx, 0), EINVAL);
    three_types(ctx);
    /* Nothing enabled: below some count ENOENT, beyond all EINVAL. */
    assert_int_equal(trigger(ctx, 0), ENOENT);
    assert_int_equal(trigger(ctx, MSIX_VECS - 1), ENOENT);
    assert_int_equal(trigger(ctx, MSIX_VECS), EINVAL);
    /* ERR and REQ eventfds do not make trigger work. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, ERR, 0, 1, NULL, &e, 1), 0);
    assert_int_equal(trigger(ctx, 0), ENOENT);
    /* MSI enabled with vector 1 only. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSI, 1, 1, NULL, &e, 1), 0);
    assert_int_equal(trigger(ctx, 0), ENOENT);
    assert_int_equal(trigger(ctx, 1), 0);
    assert_int_equal(trigger(ctx, MSI_VECS), EINVAL);
    assert_int_equal(trigger(ctx, MSIX_VECS - 1), EINVAL);
    assert_int_equal(efd_take(e), 1);
    /* A write that fails (here: not an eventfd any more) is reported. */
    close(ctx->irqs.vecs[MSI][1].efd);
    ctx->irqs.vecs[MSI][1].efd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(trigger(ctx, 1), EBADF);
    close(e);
}

/* Replacing, de-assigning, disabling and resetting close the eventfds. */
static void
test_fds_closed(void **state)
{
    vfu_ctx_t *ctx = *state;
    int e[MSIX_VECS], before;

    three_types(ctx);
    for (int v = 0; v < MSIX_VECS; v++) {
        e[v] = efd_new();
    }
    before = count_fds();
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, 0, MSIX_VECS, NULL, e,
                              MSIX_VECS), 0);
    assert_int_equal(count_fds(), before + MSIX_VECS);
    /* Replacement: the old ones go. */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, (uint32_t)i % 8, 8,
                                  NULL, e, 8), 0);
        assert_int_equal(count_fds(), before + MSIX_VECS);
    }
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, MSIX, 0, 4, NULL, NULL, 0), 0);
    assert_int_equal(count_fds(), before + MSIX_VECS - 4);
    assert_int_equal(set_irqs(ctx, NONE | TRIGGER, MSIX, 0, 0, NULL, NULL, 0), 0);
    assert_int_equal(count_fds(), before);
    assert_int_equal(ctx->irqs.enabled, -1);

    /* Reset: every eventfd, unmask fd, level and pending state. */
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, INTX, 0, 1, NULL, e, 1), 0);
    assert_int_equal(set_irqs(ctx, EFD | UNMASK, INTX, 0, 1, NULL, e + 1, 1), 0);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, ERR, 0, 1, NULL, e + 2, 1), 0);
    assert_int_equal(set_irqs(ctx, EFD | TRIGGER, REQ, 0, 1, NULL, e + 3, 1), 0);
    assert_int_equal(set_irqs(ctx, NONE | MASK, INTX, 0, 1, NULL, NULL, 0), 0);
    assert_int_equal(trigger(ctx, 0), 0);
    assert_true(intx_status(ctx));
    assert_int_equal(count_fds(), before + 4);
    irq_reset(ctx);
    assert_int_equal(count_fds(), before);
    assert_false(intx_status(ctx));
    assert_int_equal(ctx->irqs.enabled, -1);
    assert_int_equal(ctx->irqs.nr_pending, 0);
    assert_false(ctx->irqs.vecs[INTX][0].masked);
    assert_int_equal(ctx->irqs.intx_unmask_fd, -1);
    assert_int_equal(trigger(ctx, 0), ENOENT);
    /* Counts stay. */
    assert_int_equal(ctx->irqs.count[MSIX], MSIX_VECS);
    for (int v = 0; v < MSIX_VECS; v++) {
        close(e[v]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_setup_counts),
        T(test_irq_info),
        T(test_set_irqs_bad),
        T(test_set_irqs_unsupported),
        T(test_exclusive),
        T(test_intx_level),
        T(test_intx_disable_bit),
        T(test_intx_mask),
        T(test_intx_unmask_eventfd),
        T(test_loopback),
        T(test_msi_gating),
        T(test_msix_gating),
        T(test_msi_without_cap),
        T(test_client_mask_vectors),
        T(test_trigger_errors),
        T(test_fds_closed),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
