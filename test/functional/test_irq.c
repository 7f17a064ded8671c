/*
 * Functional tests of interrupts through a real client on a real UNIX
 * socket: DEVICE_GET_IRQ_INFO, every rule of DEVICE_SET_IRQS (with the
 * exact errno of each refusal and the server still serving), delivery
 * observed on the client's eventfds, the INTx level model with the
 * command register and the status bit seen in config space, MSI and MSI-X
 * gating by their capabilities, the state callback, and fd accounting:
 * nothing leaks over 10,000 requests, and every eventfd is closed on
 * reset and on disconnect. The device of its own:
 *
 *   BAR0  4 KiB, callback; a dword written at DOORBELL raises interrupt
 *         <value> with vfu_irq_trigger() from the server's thread, its
 *         errno failing the write
 *   BAR2  16 KiB, MSI-X table at 0 and PBA at 0x2000
 *   caps  MSI (64-bit, per-vector masks, 4 vectors), MSI-X (32 vectors)
 *   irqs  INTx, 4 MSI, 32 MSI-X, ERR, REQ
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
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define CFG         VFU_PCI_DEV_CFG_REGION_IDX
#define VID         0x1af4
#define DID         0x10f7
#define BAR0_SIZE   0x1000
#define BAR2_SIZE   0x4000
#define DOORBELL    0x0
#define MSI_VECS    4
#define MSIX_VECS   32

#define NONE    VFIO_IRQ_SET_DATA_NONE
#define BOOL    VFIO_IRQ_SET_DATA_BOOL
#define EFD     VFIO_IRQ_SET_DATA_EVENTFD
#define MASK    VFIO_IRQ_SET_ACTION_MASK
#define UNMASK  VFIO_IRQ_SET_ACTION_UNMASK
#define TRIGGER VFIO_IRQ_SET_ACTION_TRIGGER

#define INTX    VFIO_PCI_INTX_IRQ_INDEX
#define MSI     VFIO_PCI_MSI_IRQ_INDEX
#define MSIX    VFIO_PCI_MSIX_IRQ_INDEX
#define ERR     VFIO_PCI_ERR_IRQ_INDEX
#define REQ     VFIO_PCI_REQ_IRQ_INDEX

/* How long to wait for an interrupt that must not come. */
#define QUIET_MS    30

struct cb_call {
    uint32_t type, start, count;
    bool mask;
};

struct dev {
    char dir[64];
    char sock[96];
    vfu_ctx_t *ctx;
    pthread_t thread;
    bool joined;
    size_t msi, msix;               /* capability offsets */
    int run_errno;
    pthread_mutex_t lock;           /* what follows, written by the server */
    struct cb_call calls[64];
    int nr_calls;
    int resets[3];
};

struct fx {
    struct dev *dev;
    vfu_client_t *c;
};

/* ------------------------------------------------------------------ */
/* The device                                                          */
/* ------------------------------------------------------------------ */

static ssize_t
bar0_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    uint32_t v;

    if (!is_write) {
        memset(buf, 0, count);
        return (ssize_t)count;
    }
    if (off == DOORBELL && count == 4) {
        memcpy(&v, buf, 4);
        if (vfu_irq_trigger(ctx, v) < 0) {
            return -1;      /* errno goes back to the client */
        }
    }
    return (ssize_t)count;
}

static ssize_t
bar2_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    (void)ctx;
    (void)off;
    if (!is_write) {
        memset(buf, 0, count);
    }
    return (ssize_t)count;
}

static void
record(vfu_ctx_t *ctx, uint32_t type, uint32_t start, uint32_t count,
       bool mask)
{
    struct dev *d = vfu_get_private(ctx);

    pthread_mutex_lock(&d->lock);
    if (d->nr_calls < 64) {
        d->calls[d->nr_calls] = (struct cb_call){ type, start, count, mask };
    }
    d->nr_calls++;
    pthread_mutex_unlock(&d->lock);
}

static void
intx_state(vfu_ctx_t *ctx, uint32_t start, uint32_t count, bool mask)
{
    record(ctx, INTX, start, count, mask);
}

static void
msix_state(vfu_ctx_t *ctx, uint32_t start, uint32_t count, bool mask)
{
    record(ctx, MSIX, start, count, mask);
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct dev *d = vfu_get_private(ctx);

    pthread_mutex_lock(&d->lock);
    d->resets[type]++;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void *
serve(void *arg)
{
    struct dev *d = arg;

    if (vfu_attach_ctx(d->ctx) == 0) {
        while (vfu_run_ctx(d->ctx) >= 0) {
            ;
        }
        d->run_errno = errno;
    }
    return NULL;
}

static struct dev *
dev_create(void)
{
    struct dev *d = calloc(1, sizeof(*d));
    struct msicap msi = {
        .hdr.id = PCI_CAP_ID_MSI, .mc = { .mmc = 2, .c64 = 1, .pvm = 1 },
    };
    struct msixcap msix = {
        .hdr.id = PCI_CAP_ID_MSIX, .mxc.ts = MSIX_VECS - 1,
        .mtab = { .tbir = 2, .to = 0 }, .mpba = { .pbir = 2, .pbao = 0x2000 >> 3 },
    };
    ssize_t off;

    assert_non_null(d);
    pthread_mutex_init(&d->lock, NULL);
    strcpy(d->dir, "/tmp/vfu-irq.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
    d->ctx = vfu_create_ctx(VFU_TRANS_SOCK, d->sock, 0, d, VFU_DEV_TYPE_PCI);
    assert_non_null(d->ctx);
    assert_int_equal(vfu_pci_init(d->ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    vfu_pci_set_id(d->ctx, VID, DID, VID, 0x1100);
    assert_int_equal(vfu_setup_region(d->ctx, 0, BAR0_SIZE, bar0_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 2, BAR2_SIZE, bar2_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    off = vfu_pci_add_capability(d->ctx, 0, 0, &msi);
    assert_true(off > 0);
    d->msi = (size_t)off;
    off = vfu_pci_add_capability(d->ctx, 0, 0, &msix);
    assert_true(off > 0);
    d->msix = (size_t)off;
    assert_int_equal(vfu_setup_device_nr_irqs(d->ctx, VFU_DEV_INTX_IRQ, 1), 0);
    assert_int_equal(vfu_setup_device_nr_irqs(d->ctx, VFU_DEV_MSI_IRQ,
                                              MSI_VECS), 0);
    assert_int_equal(vfu_setup_device_nr_irqs(d->ctx, VFU_DEV_MSIX_IRQ,
                                              MSIX_VECS), 0);
    assert_int_equal(vfu_setup_irq_state_callback(d->ctx, VFU_DEV_INTX_IRQ,
                                                  intx_state), 0);
    assert_int_equal(vfu_setup_irq_state_callback(d->ctx, VFU_DEV_MSIX_IRQ,
                                                  msix_state), 0);
    assert_int_equal(vfu_setup_device_reset_cb(d->ctx, reset_cb), 0);
    assert_int_equal(vfu_realize_ctx(d->ctx), 0);
    assert_int_equal(pthread_create(&d->thread, NULL, serve, d), 0);
    return d;
}

static vfu_client_t *
connect_client(struct dev *d)
{
    struct timeval tv = { .tv_sec = 20 };
    vfu_client_t *c = vfu_client_connect(d->sock);

    assert_non_null(c);
    assert_int_equal(vfu_client_negotiate(c, NULL), 0);
    assert_int_equal(setsockopt(vfu_client_fd(c), SOL_SOCKET, SO_RCVTIMEO,
                                &tv, sizeof(tv)), 0);
    return c;
}

static void
dev_join(struct dev *d)
{
    if (!d->joined) {
        pthread_join(d->thread, NULL);
        d->joined = true;
    }
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->dev = dev_create();
    f->c = connect_client(f->dev);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    vfu_client_close(f->c);
    dev_join(f->dev);
    assert_int_equal(f->dev->run_errno, ENOTCONN);
    vfu_destroy_ctx(f->dev->ctx);
    rmdir(f->dev->dir);
    pthread_mutex_destroy(&f->dev->lock);
    free(f->dev);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static int
count_open_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 4096; fd++) {
        n += fcntl(fd, F_GETFD) >= 0;
    }
    return n;
}

static int
efd_new(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    assert_true(fd >= 0);
    return fd;
}

static uint32_t
cfg_rd(struct fx *f, uint64_t off, uint32_t len)
{
    uint32_t v = 0;

    assert_int_equal(vfu_client_region_read(f->c, CFG, off, &v, len), 0);
    return v;
}

static void
cfg_wr(struct fx *f, uint64_t off, uint32_t val, uint32_t len)
{
    assert_int_equal(vfu_client_region_write(f->c, CFG, off, &val, len,
                                             false), 0);
}

static bool
intx_status(struct fx *f)
{
    return (cfg_rd(f, PCI_STATUS, 2) & PCI_STATUS_INTERRUPT) != 0;
}

/* The device raises @subindex; 0 or the errno of vfu_irq_trigger(). */
static int
doorbell(struct fx *f, uint32_t subindex)
{
    errno = 0;
    if (vfu_client_region_write(f->c, 0, DOORBELL, &subindex, 4, false) < 0) {
        assert_int_not_equal(errno, 0);
        return errno;
    }
    return 0;
}

/* vfu_client_set_irqs(): 0 or the errno. */
static int
set_irqs(struct fx *f, uint32_t index, uint32_t flags, uint32_t start,
         uint32_t count, const int *fds, const uint8_t *bools)
{
    errno = 0;
    if (vfu_client_set_irqs(f->c, index, flags, start, count, fds, bools) < 0) {
        assert_int_not_equal(errno, 0);
        return errno;
    }
    return 0;
}

/* Signals on @efd: waits for one when @expect > 0, a moment otherwise. */
static int64_t
signals(int efd, int64_t expect)
{
    return vfu_client_wait_irq(efd, expect > 0 ? 5000 : QUIET_MS);
}

#define EXPECT_SIGNALS(efd, n) assert_int_equal(signals((efd), (n)), (n))

static bool
alive(struct fx *f)
{
    return cfg_rd(f, PCI_VENDOR_ID, 4) == (VID | DID << 16);
}

/*
 * A raw SET_IRQS: @data (@dlen bytes) after the header, @fds as they are.
 * Returns the errno of the reply (0: success), the server still serving.
 */
static int
raw_set(struct fx *f, uint32_t argsz, uint32_t flags, uint32_t index,
        uint32_t start, uint32_t count, const void *data, size_t dlen,
        const int *fds, size_t nr_fds)
{
    uint8_t buf[sizeof(struct vfio_irq_set) + 64];
    struct vfio_irq_set hdr = {
        .argsz = argsz, .flags = flags, .index = index, .start = start,
        .count = count,
    };
    ssize_t n;

    assert_true(dlen <= 64);
    memcpy(buf, &hdr, sizeof(hdr));
    if (dlen > 0) {
        memcpy(buf + sizeof(hdr), data, dlen);
    }
    errno = 0;
    n = vfu_client_request(f->c, VFIO_USER_DEVICE_SET_IRQS, buf,
                           sizeof(hdr) + dlen, fds, nr_fds, NULL, 0, NULL,
                           NULL);
    assert_true(alive(f));
    if (n < 0) {
        assert_int_not_equal(errno, 0);
        return errno;
    }
    assert_int_equal(n, 0);     /* no payload in the reply */
    return 0;
}

static int
resets(struct dev *d, vfu_reset_type_t type)
{
    int n;

    pthread_mutex_lock(&d->lock);
    n = d->resets[type];
    pthread_mutex_unlock(&d->lock);
    return n;
}

static int
nr_calls(struct dev *d)
{
    int n;

    pthread_mutex_lock(&d->lock);
    n = d->nr_calls;
    pthread_mutex_unlock(&d->lock);
    return n;
}

static struct cb_call
call(struct dev *d, int i)
{
    struct cb_call c;

    pthread_mutex_lock(&d->lock);
    c = d->calls[i];
    pthread_mutex_unlock(&d->lock);
    return c;
}

/* ------------------------------------------------------------------ */
/* DEVICE_GET_IRQ_INFO                                                 */
/* ------------------------------------------------------------------ */

static void
test_irq_info(void **state)
{
    struct fx *f = *state;
    const struct { uint32_t flags, count; } want[VFIO_PCI_NUM_IRQS] = {
        { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
          VFIO_IRQ_INFO_AUTOMASKED, 1 },
        { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
          VFIO_IRQ_INFO_NORESIZE, MSI_VECS },
        { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
          VFIO_IRQ_INFO_NORESIZE, MSIX_VECS },
        { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 },
        { VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE, 1 },
    };
    struct vfio_user_device_info dinfo;
    struct vfio_irq_info info, in;
    uint8_t buf[32] = { 0 };

    assert_int_equal(vfu_client_device_info(f->c, &dinfo), 0);
    assert_int_equal(dinfo.num_irqs, VFIO_PCI_NUM_IRQS);
    for (uint32_t i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        memset(&info, 0xff, sizeof(info));
        assert_int_equal(vfu_client_irq_info(f->c, i, &info), 0);
        assert_int_equal(info.argsz, sizeof(info));
        assert_int_equal(info.flags, want[i].flags);
        assert_int_equal(info.index, i);
        assert_int_equal(info.count, want[i].count);
    }
    /* INTx makes the interrupt pin INTA#. */
    assert_int_equal(cfg_rd(f, PCI_INTERRUPT_PIN, 1), 1);

    /* Bad index, short argsz, non-zero fields, wrong payload sizes. */
    const struct vfio_irq_info bad[] = {
        { .argsz = sizeof(in), .index = VFIO_PCI_NUM_IRQS },
        { .argsz = sizeof(in), .index = UINT32_MAX },
        { .argsz = sizeof(in) - 1 },
        { .argsz = 0 },
        { .argsz = sizeof(in), .flags = VFIO_IRQ_INFO_EVENTFD },
        { .argsz = sizeof(in), .count = 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_int_equal(vfu_client_request(f->c, VFIO_USER_DEVICE_GET_IRQ_INFO,
                                            &bad[i], sizeof(bad[i]), NULL, 0,
                                            NULL, 0, NULL, NULL), -1);
        assert_int_equal(errno, EINVAL);
        assert_true(alive(f));
    }
    in = (struct vfio_irq_info){ .argsz = sizeof(in) };
    memcpy(buf, &in, sizeof(in));
    const size_t lens[] = { 0, 4, 12, 15, 17, 20, 32 };
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        errno = 0;
        assert_int_equal(vfu_client_request(f->c, VFIO_USER_DEVICE_GET_IRQ_INFO,
                                            buf, lens[i], NULL, 0, NULL, 0,
                                            NULL, NULL), -1);
        assert_int_equal(errno, EINVAL);
        assert_true(alive(f));
    }
}

/* ------------------------------------------------------------------ */
/* INTx                                                                */
/* ------------------------------------------------------------------ */

static int
intx_on(struct fx *f)
{
    int e = efd_new();

    assert_int_equal(set_irqs(f, INTX, EFD | TRIGGER, 0, 1, &e, NULL), 0);
    return e;
}

/* Assert, signal once, stay asserted until the client unmasks (EOI). */
static void
test_intx_level(void **state)
{
    struct fx *f = *state;
    int e = intx_on(f);

    assert_false(intx_status(f));
    for (int round = 0; round < 3; round++) {
        assert_int_equal(doorbell(f, 0), 0);
        EXPECT_SIGNALS(e, 1);
        assert_true(intx_status(f));
        /* While asserted, more triggers change nothing. */
        assert_int_equal(doorbell(f, 0), 0);
        assert_int_equal(doorbell(f, 0), 0);
        EXPECT_SIGNALS(e, 0);
        assert_true(intx_status(f));
        /* QEMU's EOI path: DATA_NONE | ACTION_UNMASK. */
        assert_int_equal(set_irqs(f, INTX, NONE | UNMASK, 0, 1, NULL, NULL), 0);
        assert_false(intx_status(f));
        assert_int_equal(nr_calls(f->dev), round + 1);
        assert_int_equal(call(f->dev, round).type, INTX);
        assert_int_equal(call(f->dev, round).start, 0);
        assert_int_equal(call(f->dev, round).count, 1);
        assert_false(call(f->dev, round).mask);
    }
    EXPECT_SIGNALS(e, 0);
    /* INTx has subindex 0 only. */
    assert_int_equal(doorbell(f, 1), EINVAL);
    close(e);
}

/* The command register's Interrupt Disable bit. */
static void
test_intx_disable_bit(void **state)
{
    struct fx *f = *state;
    int e = intx_on(f);

    cfg_wr(f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_MEMORY, 2);
    assert_int_equal(doorbell(f, 0), 0);
    assert_true(intx_status(f));
    EXPECT_SIGNALS(e, 0);
    /* Cleared while the interrupt is pending: it is delivered now. */
    cfg_wr(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    EXPECT_SIGNALS(e, 1);
    assert_true(intx_status(f));
    assert_int_equal(set_irqs(f, INTX, NONE | UNMASK, 0, 1, NULL, NULL), 0);
    assert_false(intx_status(f));
    /* Set and cleared with nothing pending: no interrupt. */
    cfg_wr(f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    cfg_wr(f, PCI_COMMAND, 0, 2);
    EXPECT_SIGNALS(e, 0);
    /* A DEVICE_RESET clears the bit (and the eventfds). */
    cfg_wr(f, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 2);
    assert_int_equal(vfu_client_reset(f->c), 0);
    assert_int_equal(cfg_rd(f, PCI_COMMAND, 2), 0);
    assert_int_equal(doorbell(f, 0), ENOENT);
    close(e);
}

/* MASK / UNMASK by the client with DATA_NONE and DATA_BOOL. */
static void
test_intx_mask(void **state)
{
    struct fx *f = *state;
    int e = intx_on(f);
    uint8_t yes = 1, no = 0;

    assert_int_equal(set_irqs(f, INTX, BOOL | MASK, 0, 1, NULL, &yes), 0);
    assert_int_equal(nr_calls(f->dev), 1);
    assert_true(call(f->dev, 0).mask);
    assert_int_equal(doorbell(f, 0), 0);
    assert_true(intx_status(f));
    EXPECT_SIGNALS(e, 0);
    assert_int_equal(set_irqs(f, INTX, BOOL | UNMASK, 0, 1, NULL, &no), 0);
    EXPECT_SIGNALS(e, 0);
    assert_int_equal(nr_calls(f->dev), 1);
    /* Unmasked with the line up and not yet delivered: delivered now. */
    assert_int_equal(set_irqs(f, INTX, NONE | UNMASK, 0, 1, NULL, NULL), 0);
    EXPECT_SIGNALS(e, 1);
    assert_true(intx_status(f));
    assert_int_equal(set_irqs(f, INTX, BOOL | UNMASK, 0, 1, NULL, &yes), 0);
    assert_false(intx_status(f));
    assert_int_equal(nr_calls(f->dev), 3);
    close(e);
}

/*
 * QEMU with KVM: mask, an unmask eventfd (KVM's resample fd), unmask. The
 * guest's EOI signals that eventfd; the server takes it in before the
 * next request it serves.
 */
static void
test_intx_unmask_eventfd(void **state)
{
    struct fx *f = *state;
    int e = intx_on(f), u = efd_new();
    uint64_t one = 1;

    assert_int_equal(set_irqs(f, INTX, NONE | MASK, 0, 1, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, INTX, EFD | UNMASK, 0, 1, &u, NULL), 0);
    assert_int_equal(set_irqs(f, INTX, NONE | UNMASK, 0, 1, NULL, NULL), 0);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(doorbell(f, 0), 0);
        EXPECT_SIGNALS(e, 1);
        assert_true(intx_status(f));
        assert_int_equal(write(u, &one, sizeof(one)), (ssize_t)sizeof(one));
        assert_false(intx_status(f));
    }
    /* Without the EOI the line stays up. */
    assert_int_equal(doorbell(f, 0), 0);
    EXPECT_SIGNALS(e, 1);
    assert_int_equal(doorbell(f, 0), 0);
    EXPECT_SIGNALS(e, 0);
    assert_true(intx_status(f));
    /* The EOI and a new interrupt right after it: both seen. */
    assert_int_equal(write(u, &one, sizeof(one)), (ssize_t)sizeof(one));
    assert_int_equal(doorbell(f, 0), 0);
    EXPECT_SIGNALS(e, 1);
    close(e);
    close(u);
}

/* ------------------------------------------------------------------ */
/* MSI and MSI-X                                                       */
/* ------------------------------------------------------------------ */

/* Raises the vectors in @mask; returns the mask of those signalled. */
static unsigned
fire(struct fx *f, const int *e, unsigned n, unsigned mask, unsigned expect)
{
    unsigned got = 0;

    for (unsigned v = 0; v < n; v++) {
        if (mask & (1u << v)) {
            assert_int_equal(doorbell(f, v), 0);
        }
    }
    for (unsigned v = 0; v < n; v++) {
        int64_t c = signals(e[v], (expect >> v) & 1);
        assert_true(c == 0 || c == 1);
        got |= (unsigned)c << v;
    }
    return got;
}

#define FIRE(f, e, n, mask, expect) \
    assert_int_equal(fire((f), (e), (n), (mask), (expect)), (expect))

static void
test_msi(void **state)
{
    struct fx *f = *state;
    size_t msi = f->dev->msi;
    int e[MSI_VECS];

    for (int v = 0; v < MSI_VECS; v++) {
        e[v] = efd_new();
    }
    assert_int_equal(set_irqs(f, MSI, EFD | TRIGGER, 0, MSI_VECS, e, NULL), 0);
    /* MSI off in the capability: pending, in the capability's bits. */
    FIRE(f, e, MSI_VECS, 0x3, 0);
    assert_int_equal(cfg_rd(f, msi + PCI_MSI_PENDING_64, 4), 0x3);
    /* The guest enables 1 vector: vector 0 goes, 1 is not enabled. */
    cfg_wr(f, msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE, 2);
    FIRE(f, e, MSI_VECS, 0, 0x1);
    assert_int_equal(cfg_rd(f, msi + PCI_MSI_PENDING_64, 4), 0x2);
    /* 4 vectors, vector 2 masked. */
    cfg_wr(f, msi + PCI_MSI_MASK_64, 0x4, 4);
    cfg_wr(f, msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | (2 << 4), 2);
    FIRE(f, e, MSI_VECS, 0, 0x2);
    FIRE(f, e, MSI_VECS, 0xf, 0xb);
    assert_int_equal(cfg_rd(f, msi + PCI_MSI_PENDING_64, 4), 0x4);
    cfg_wr(f, msi + PCI_MSI_MASK_64, 0, 4);
    FIRE(f, e, MSI_VECS, 0, 0x4);
    assert_int_equal(cfg_rd(f, msi + PCI_MSI_PENDING_64, 4), 0);
    FIRE(f, e, MSI_VECS, 0xf, 0xf);
    /* Beyond the count; a vector without eventfd. */
    assert_int_equal(doorbell(f, MSI_VECS), EINVAL);
    assert_int_equal(set_irqs(f, MSI, EFD | TRIGGER, 3, 1, NULL, NULL), 0);
    assert_int_equal(doorbell(f, 3), ENOENT);
    for (int v = 0; v < MSI_VECS; v++) {
        close(e[v]);
    }
}

static void
test_msix(void **state)
{
    struct fx *f = *state;
    size_t msix = f->dev->msix;
    int e[MSIX_VECS];

    for (int v = 0; v < MSIX_VECS; v++) {
        e[v] = efd_new();
    }
    /* 32 eventfds: the client sends them 16 a message. */
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, MSIX_VECS, e, NULL),
                     0);
    FIRE(f, e, 8, 0x81, 0);
    cfg_wr(f, msix + PCI_MSIX_FLAGS,
           PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
    FIRE(f, e, 8, 0x02, 0);
    cfg_wr(f, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    FIRE(f, e, 8, 0, 0x83);
    for (uint32_t v = 0; v < MSIX_VECS; v++) {
        assert_int_equal(doorbell(f, v), 0);
        EXPECT_SIGNALS(e[v], 1);
    }
    assert_int_equal(doorbell(f, MSIX_VECS), EINVAL);
    assert_int_equal(doorbell(f, UINT32_MAX), EINVAL);
    /* MSI-X off again: held until it is back on. */
    cfg_wr(f, msix + PCI_MSIX_FLAGS, 0, 2);
    FIRE(f, e, 8, 0x10, 0);
    cfg_wr(f, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    FIRE(f, e, 8, 0, 0x10);
    for (int v = 0; v < MSIX_VECS; v++) {
        close(e[v]);
    }
}

/*
 * How QEMU sets MSI-X up: enabled without vectors (one -1), then the index
 * disabled and set again with the vectors in use, -1 for the others.
 */
static void
test_msix_qemu_flow(void **state)
{
    struct fx *f = *state;
    int no = -1, e[3] = { efd_new(), efd_new(), efd_new() };
    int fds[6] = { e[0], -1, -1, e[1], e[2], -1 };

    cfg_wr(f, f->dev->msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, 1, &no, NULL), 0);
    assert_int_equal(doorbell(f, 0), ENOENT);
    assert_int_equal(set_irqs(f, MSIX, NONE | TRIGGER, 0, 0, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, 6, fds, NULL), 0);
    assert_int_equal(doorbell(f, 0), 0);
    assert_int_equal(doorbell(f, 3), 0);
    assert_int_equal(doorbell(f, 4), 0);
    assert_int_equal(doorbell(f, 1), ENOENT);
    assert_int_equal(doorbell(f, 5), ENOENT);
    assert_int_equal(doorbell(f, 6), ENOENT);
    for (int i = 0; i < 3; i++) {
        EXPECT_SIGNALS(e[i], 1);
    }
    /* Vector 3 alone replaced, the others kept. */
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 3, 1, &e[2], NULL), 0);
    assert_int_equal(doorbell(f, 3), 0);
    EXPECT_SIGNALS(e[2], 1);
    EXPECT_SIGNALS(e[1], 0);
    for (int i = 0; i < 3; i++) {
        close(e[i]);
    }
}

/* Masking by the client, and what the state callback is told. */
static void
test_mask_callback(void **state)
{
    struct fx *f = *state;
    struct dev *d = f->dev;
    int e[8];
    uint8_t sel[8] = { 0, 1, 1, 0, 1, 1, 1, 0 };

    cfg_wr(f, d->msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    for (int v = 0; v < 8; v++) {
        e[v] = efd_new();
    }
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, 8, e, NULL), 0);
    assert_int_equal(nr_calls(d), 0);
    assert_int_equal(set_irqs(f, MSIX, BOOL | MASK, 0, 8, NULL, sel), 0);
    assert_int_equal(nr_calls(d), 2);
    assert_int_equal(call(d, 0).start, 1);
    assert_int_equal(call(d, 0).count, 2);
    assert_true(call(d, 0).mask);
    assert_int_equal(call(d, 1).start, 4);
    assert_int_equal(call(d, 1).count, 3);
    assert_true(call(d, 1).mask);
    FIRE(f, e, 8, 0xff, 0x89);
    assert_int_equal(set_irqs(f, MSIX, NONE | UNMASK, 2, 4, NULL, NULL), 0);
    assert_int_equal(nr_calls(d), 3);
    assert_int_equal(call(d, 2).type, MSIX);
    assert_int_equal(call(d, 2).start, 2);
    assert_int_equal(call(d, 2).count, 4);
    assert_false(call(d, 2).mask);
    FIRE(f, e, 8, 0, 0x34);
    assert_int_equal(set_irqs(f, MSIX, NONE | UNMASK, 0, 8, NULL, NULL), 0);
    FIRE(f, e, 8, 0, 0x42);
    assert_int_equal(set_irqs(f, MSIX, NONE | MASK, 0, MSIX_VECS, NULL, NULL),
                     0);
    assert_int_equal(nr_calls(d), 5);
    assert_int_equal(call(d, 4).start, 0);
    assert_int_equal(call(d, 4).count, MSIX_VECS);
    /* MSI has no callback registered: nothing is called. */
    assert_int_equal(set_irqs(f, MSIX, NONE | TRIGGER, 0, 0, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, MSI, EFD | TRIGGER, 0, 1, e, NULL), 0);
    assert_int_equal(set_irqs(f, MSI, NONE | MASK, 0, 1, NULL, NULL), 0);
    assert_int_equal(nr_calls(d), 5);
    for (int v = 0; v < 8; v++) {
        close(e[v]);
    }
}

/* ------------------------------------------------------------------ */
/* SET_IRQS rules                                                      */
/* ------------------------------------------------------------------ */

/* INTx, MSI and MSI-X are one at a time; count 0 disables an index. */
static void
test_exclusive_and_disable(void **state)
{
    struct fx *f = *state;
    int e = intx_on(f), m = efd_new();

    assert_int_equal(set_irqs(f, MSI, EFD | TRIGGER, 0, 1, &m, NULL), EINVAL);
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, 1, &m, NULL), EINVAL);
    assert_true(alive(f));
    /* ERR and REQ are independent. */
    assert_int_equal(set_irqs(f, ERR, EFD | TRIGGER, 0, 1, &m, NULL), 0);
    assert_int_equal(set_irqs(f, REQ, EFD | TRIGGER, 0, 1, &m, NULL), 0);
    /* Disabling the whole INTx index: the trigger has nowhere to go. */
    assert_int_equal(set_irqs(f, INTX, NONE | TRIGGER, 0, 0, NULL, NULL), 0);
    assert_int_equal(doorbell(f, 0), ENOENT);
    assert_int_equal(set_irqs(f, INTX, NONE | TRIGGER, 0, 0, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, MSI, EFD | TRIGGER, 0, 1, &m, NULL), 0);
    assert_int_equal(set_irqs(f, INTX, EFD | TRIGGER, 0, 1, &e, NULL), EINVAL);
    /* Without a capability enable in the way (MSI off): held; then on. */
    cfg_wr(f, f->dev->msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE, 2);
    assert_int_equal(doorbell(f, 0), 0);
    EXPECT_SIGNALS(m, 1);
    EXPECT_SIGNALS(e, 0);
    /* The loopback of ERR and REQ reaches their eventfd. */
    assert_int_equal(set_irqs(f, ERR, NONE | TRIGGER, 0, 1, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, REQ, NONE | TRIGGER, 0, 1, NULL, NULL), 0);
    EXPECT_SIGNALS(m, 2);
    close(e);
    close(m);
}

/* DATA_NONE / DATA_BOOL with ACTION_TRIGGER: the client fires them. */
static void
test_loopback(void **state)
{
    struct fx *f = *state;
    int e[4] = { efd_new(), efd_new(), efd_new(), efd_new() };
    uint8_t sel[4] = { 1, 0, 0, 1 };

    assert_int_equal(set_irqs(f, MSI, NONE | TRIGGER, 0, 1, NULL, NULL),
                     EINVAL);
    assert_int_equal(set_irqs(f, MSI, EFD | TRIGGER, 0, 4, e, NULL), 0);
    /* Not subject to the capability: MSI is off in config space. */
    assert_int_equal(set_irqs(f, MSI, NONE | TRIGGER, 1, 2, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, MSI, BOOL | TRIGGER, 0, 4, NULL, sel), 0);
    for (int v = 0; v < 4; v++) {
        EXPECT_SIGNALS(e[v], 1);
    }
    assert_int_equal(set_irqs(f, MSI, NONE | TRIGGER, 0, 0, NULL, NULL), 0);
    assert_int_equal(set_irqs(f, INTX, EFD | TRIGGER, 0, 1, e, NULL), 0);
    assert_int_equal(set_irqs(f, INTX, NONE | TRIGGER, 0, 1, NULL, NULL), 0);
    EXPECT_SIGNALS(e[0], 1);
    assert_false(intx_status(f));
    for (int v = 0; v < 4; v++) {
        close(e[v]);
    }
}

/* Every bad request: the exact errno, the server serving, no fd kept. */
static void
test_set_irqs_bad(void **state)
{
    struct fx *f = *state;
    const uint32_t hs = sizeof(struct vfio_irq_set);
    uint8_t bools[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    int e[3] = { efd_new(), efd_new(), efd_new() }, p[2], before;

    assert_int_equal(pipe(p), 0);
    before = count_open_fds();

    /* Short payloads (with an fd, which must not stay), argsz unlike it. */
    for (uint32_t len = 0; len < hs; len += 4) {
        uint8_t zero[sizeof(struct vfio_irq_set)] = { 0 };

        zero[0] = (uint8_t)len;     /* argsz = the length sent */
        errno = 0;
        assert_int_equal(vfu_client_request(f->c, VFIO_USER_DEVICE_SET_IRQS,
                                            zero, len, e, 1, NULL, 0, NULL,
                                            NULL), -1);
        assert_int_equal(errno, EINVAL);
        assert_true(alive(f));
    }
    assert_int_equal(raw_set(f, hs - 1, EFD | TRIGGER, MSI, 0, 1, NULL, 0, e,
                             1), EINVAL);
    assert_int_equal(raw_set(f, hs + 4, EFD | TRIGGER, MSI, 0, 1, NULL, 0, e,
                             1), EINVAL);
    assert_int_equal(raw_set(f, 0, NONE | TRIGGER, MSI, 0, 0, NULL, 0, NULL,
                             0), EINVAL);
    /* The kernel's layout: fd numbers inline. */
    assert_int_equal(raw_set(f, hs + 4, EFD | TRIGGER, MSI, 0, 1, e, 4, e, 1),
                     EINVAL);
    /* Flags. */
    const uint32_t flags[] = {
        0, TRIGGER, EFD, EFD | BOOL | TRIGGER, NONE | EFD | MASK,
        EFD | TRIGGER | UNMASK, NONE | MASK | UNMASK | TRIGGER,
        EFD | TRIGGER | (1u << 6), NONE | TRIGGER | 0x80000000u,
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        assert_int_equal(raw_set(f, hs, flags[i], MSI, 0, 1, NULL, 0, e, 1),
                         EINVAL);
    }
    /* Index, start and count. */
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, VFIO_PCI_NUM_IRQS, 0, 1,
                             NULL, 0, e, 1), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, UINT32_MAX, 0, 1, NULL, 0,
                             e, 1), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, MSI_VECS, 1, NULL, 0,
                             e, 1), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 3, 2, NULL, 0, e, 2),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 2, UINT32_MAX, NULL, 0,
                             NULL, 0), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSIX, UINT32_MAX, 2, NULL,
                             0, NULL, 0), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, INTX, 0, 2, NULL, 0, e, 2),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, ERR, 1, 1, NULL, 0, e, 1),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, NONE | TRIGGER, MSI, 1, 0, NULL, 0, NULL,
                             0), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 0, 0, NULL, 0, NULL,
                             0), EINVAL);
    assert_int_equal(raw_set(f, hs, NONE | UNMASK, INTX, 0, 0, NULL, 0, NULL,
                             0), EINVAL);
    /* Bools: one per interrupt; no data for NONE. */
    assert_int_equal(raw_set(f, hs + 1, BOOL | TRIGGER, MSI, 0, 2, bools, 1,
                             NULL, 0), EINVAL);
    assert_int_equal(raw_set(f, hs + 3, BOOL | TRIGGER, MSI, 0, 2, bools, 3,
                             NULL, 0), EINVAL);
    assert_int_equal(raw_set(f, hs + 2, NONE | TRIGGER, MSI, 0, 2, bools, 2,
                             NULL, 0), EINVAL);
    /* Fds: as many as interrupts or none, only eventfds, only for EVENTFD. */
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 0, 3, NULL, 0, e, 2),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 0, 1, NULL, 0, e, 3),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, NONE | MASK, INTX, 0, 1, NULL, 0, e, 1),
                     EINVAL);
    assert_int_equal(raw_set(f, hs + 1, BOOL | TRIGGER, INTX, 0, 1, bools, 1,
                             e, 1), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 0, 1, NULL, 0, p, 1),
                     EINVAL);
    {
        int mixed[3] = { e[0], e[1], p[1] };
        assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 0, 3, NULL, 0,
                                 mixed, 3), EINVAL);
    }
    /* Disabled indexes: no masking, no loopback. */
    assert_int_equal(raw_set(f, hs, NONE | MASK, INTX, 0, 1, NULL, 0, NULL, 0),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, NONE | UNMASK, MSIX, 0, 1, NULL, 0, NULL,
                             0), EINVAL);
    assert_int_equal(raw_set(f, hs, EFD | UNMASK, INTX, 0, 1, NULL, 0, e, 1),
                     EINVAL);
    assert_int_equal(raw_set(f, hs, NONE | TRIGGER, REQ, 0, 1, NULL, 0, NULL,
                             0), EINVAL);
    /* Actions an index does not have. */
    assert_int_equal(raw_set(f, hs, NONE | MASK, ERR, 0, 1, NULL, 0, NULL, 0),
                     ENOTTY);
    assert_int_equal(raw_set(f, hs + 1, BOOL | UNMASK, REQ, 0, 1, bools, 1,
                             NULL, 0), ENOTTY);
    assert_int_equal(raw_set(f, hs, EFD | MASK, INTX, 0, 1, NULL, 0, e, 1),
                     ENOTTY);
    assert_int_equal(raw_set(f, hs, EFD | MASK, MSIX, 0, 1, NULL, 0, e, 1),
                     ENOTTY);
    assert_int_equal(raw_set(f, hs, EFD | UNMASK, MSI, 0, 1, NULL, 0, e, 1),
                     ENOTTY);

    /* None of it changed anything, and every fd sent was closed. */
    assert_int_equal(doorbell(f, 0), ENOENT);
    assert_int_equal(count_open_fds(), before);
    /* The same request done right works. */
    assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSI, 0, 2, NULL, 0, e, 2),
                     0);
    assert_int_equal(count_open_fds(), before + 2);
    for (int i = 0; i < 3; i++) {
        close(e[i]);
    }
    close(p[0]);
    close(p[1]);
}

/* vfu_irq_trigger()'s errors, seen through the doorbell. */
static void
test_trigger_errors(void **state)
{
    struct fx *f = *state;
    int e = efd_new();

    /* Nothing enabled: ENOENT below some count, EINVAL beyond them all. */
    assert_int_equal(doorbell(f, 0), ENOENT);
    assert_int_equal(doorbell(f, MSIX_VECS - 1), ENOENT);
    assert_int_equal(doorbell(f, MSIX_VECS), EINVAL);
    /* INTx enabled: only subindex 0. */
    assert_int_equal(set_irqs(f, INTX, EFD | TRIGGER, 0, 1, &e, NULL), 0);
    assert_int_equal(doorbell(f, 1), EINVAL);
    assert_int_equal(doorbell(f, 0), 0);
    EXPECT_SIGNALS(e, 1);
    /* De-assigned (fd -1): INTx is off. */
    assert_int_equal(set_irqs(f, INTX, EFD | TRIGGER, 0, 1, NULL, NULL), 0);
    assert_int_equal(doorbell(f, 0), ENOENT);
    assert_false(intx_status(f));
    close(e);
}

/* ------------------------------------------------------------------ */
/* Fd accounting                                                       */
/* ------------------------------------------------------------------ */

/* 10,000 requests with replacement, refusal and de-assignment. */
static void
test_fd_accounting(void **state)
{
    struct fx *f = *state;
    int e[4], p[2], before;
    int bad[3];
    const uint32_t hs = sizeof(struct vfio_irq_set);

    for (int i = 0; i < 4; i++) {
        e[i] = efd_new();
    }
    assert_int_equal(pipe(p), 0);
    bad[0] = e[0];
    bad[1] = p[0];
    bad[2] = e[1];
    before = count_open_fds();
    for (int i = 0; i < 10000; i++) {
        uint32_t v = (uint32_t)(i * 7) % (MSIX_VECS - 3);

        switch (i % 5) {
        case 0:     /* assign or replace three vectors */
        case 1:
            assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSIX, v, 3, NULL, 0,
                                     e + (i % 2), 3), 0);
            break;
        case 2:     /* refused: a pipe among them */
            assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSIX, v, 3, NULL, 0,
                                     bad, 3), EINVAL);
            break;
        case 3:     /* refused: fds for the wrong count */
            assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSIX, v, 2, NULL, 0,
                                     e, 3), EINVAL);
            break;
        default:    /* de-assign two */
            assert_int_equal(raw_set(f, hs, EFD | TRIGGER, MSIX, v, 2, NULL, 0,
                                     NULL, 0), 0);
            break;
        }
    }
    /* Eventfds are still held; disabling the index drops them all. */
    assert_true(count_open_fds() > before);
    assert_int_equal(set_irqs(f, MSIX, NONE | TRIGGER, 0, 0, NULL, NULL), 0);
    assert_int_equal(count_open_fds(), before);
    for (int i = 0; i < 4; i++) {
        close(e[i]);
    }
    close(p[0]);
    close(p[1]);
}

/* DEVICE_RESET closes every eventfd, and the client sets them up again. */
static void
test_fds_closed_on_reset(void **state)
{
    struct fx *f = *state;
    int e[MSIX_VECS], u = efd_new(), before;

    for (int v = 0; v < MSIX_VECS; v++) {
        e[v] = efd_new();
    }
    before = count_open_fds();
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, MSIX_VECS, e, NULL),
                     0);
    assert_int_equal(set_irqs(f, ERR, EFD | TRIGGER, 0, 1, &u, NULL), 0);
    assert_int_equal(set_irqs(f, REQ, EFD | TRIGGER, 0, 1, &u, NULL), 0);
    assert_int_equal(count_open_fds(), before + MSIX_VECS + 2);
    assert_int_equal(vfu_client_reset(f->c), 0);
    assert_int_equal(resets(f->dev, VFU_RESET_DEVICE), 1);
    assert_int_equal(count_open_fds(), before);
    assert_int_equal(doorbell(f, 0), ENOENT);
    assert_int_equal(set_irqs(f, REQ, NONE | TRIGGER, 0, 1, NULL, NULL),
                     EINVAL);
    /* INTx after reset: asserted state is gone too. */
    assert_int_equal(set_irqs(f, INTX, EFD | TRIGGER, 0, 1, &u, NULL), 0);
    assert_int_equal(doorbell(f, 0), 0);
    EXPECT_SIGNALS(u, 1);
    assert_true(intx_status(f));
    assert_int_equal(vfu_client_reset(f->c), 0);
    assert_false(intx_status(f));
    assert_int_equal(count_open_fds(), before);
    for (int v = 0; v < MSIX_VECS; v++) {
        close(e[v]);
    }
    close(u);
}

/* A client that goes away takes its eventfds with it. */
static void
test_fds_closed_on_disconnect(void **state)
{
    struct fx *f = *state;
    int e[MSIX_VECS], u = efd_new(), before;

    for (int v = 0; v < MSIX_VECS; v++) {
        e[v] = efd_new();
    }
    /* Our client and the server's end of it count in @before. */
    before = count_open_fds();
    assert_int_equal(set_irqs(f, MSIX, EFD | TRIGGER, 0, MSIX_VECS, e, NULL),
                     0);
    assert_int_equal(set_irqs(f, ERR, EFD | TRIGGER, 0, 1, &u, NULL), 0);
    assert_int_equal(count_open_fds(), before + MSIX_VECS + 1);
    vfu_client_close(f->c);
    dev_join(f->dev);
    assert_int_equal(resets(f->dev, VFU_RESET_LOST_CONN), 1);
    assert_int_equal(count_open_fds(), before - 2);
    /* teardown closes the client: give it one that is already gone. */
    f->c = vfu_client_connect(f->dev->sock);
    assert_non_null(f->c);
    for (int v = 0; v < MSIX_VECS; v++) {
        close(e[v]);
    }
    close(u);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_irq_info),
        T(test_intx_level),
        T(test_intx_disable_bit),
        T(test_intx_mask),
        T(test_intx_unmask_eventfd),
        T(test_msi),
        T(test_msix),
        T(test_msix_qemu_flow),
        T(test_mask_callback),
        T(test_exclusive_and_disable),
        T(test_loopback),
        T(test_set_irqs_bad),
        T(test_trigger_errors),
        T(test_fd_accounting),
        T(test_fds_closed_on_reset),
        T(test_fds_closed_on_disconnect),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
