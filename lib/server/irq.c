/*
 * Interrupts: owns the interrupt counts the device declares, the eventfds
 * the client hands over with DEVICE_SET_IRQS and the state kept with them
 * (which of INTx, MSI and MSI-X is enabled, per-interrupt masks, interrupts
 * raised but not yet signalled, the INTx line level), DEVICE_GET_IRQ_INFO,
 * DEVICE_SET_IRQS with the validation rules of Linux's VFIO_DEVICE_SET_IRQS,
 * and vfu_irq_trigger(). The config space bits read here are the command
 * register (read from the register table) and the MSI and MSI-X enables
 * and masks (from the capability layer, caps.c); those written here are
 * the interrupt pin and INTx status (the header, pci.c) and MSI pending
 * bits. docs/irq.md has the model.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private.h"

_Static_assert((int)VFU_DEV_INTX_IRQ == (int)VFIO_PCI_INTX_IRQ_INDEX &&
               (int)VFU_DEV_MSI_IRQ == (int)VFIO_PCI_MSI_IRQ_INDEX &&
               (int)VFU_DEV_MSIX_IRQ == (int)VFIO_PCI_MSIX_IRQ_INDEX &&
               (int)VFU_DEV_ERR_IRQ == (int)VFIO_PCI_ERR_IRQ_INDEX &&
               (int)VFU_DEV_REQ_IRQ == (int)VFIO_PCI_REQ_IRQ_INDEX &&
               (int)VFU_DEV_NUM_IRQS == (int)VFIO_PCI_NUM_IRQS,
               "interrupt types are the VFIO PCI indexes");

#define DATA_MASK   VFIO_IRQ_SET_DATA_TYPE_MASK
#define ACTION_MASK VFIO_IRQ_SET_ACTION_TYPE_MASK

/* Most interrupts of each type: PCI's limits, one INTx pin, one ERR/REQ. */
static const uint32_t max_count[VFU_DEV_NUM_IRQS] = {
    [VFU_DEV_INTX_IRQ] = 1,
    [VFU_DEV_MSI_IRQ] = 32,
    [VFU_DEV_MSIX_IRQ] = 2048,
    [VFU_DEV_ERR_IRQ] = 1,
    [VFU_DEV_REQ_IRQ] = 1,
};

static const char *const type_name[VFU_DEV_NUM_IRQS] = {
    "INTx", "MSI", "MSI-X", "ERR", "REQ",
};

/* INTx, MSI and MSI-X exclude each other; ERR and REQ stand alone. */
static bool
is_exclusive(uint32_t idx)
{
    return idx <= VFU_DEV_MSIX_IRQ;
}

static struct vfu_irq_vec *
vec_of(vfu_ctx_t *ctx, uint32_t idx, uint32_t v)
{
    return &ctx->irqs.vecs[idx][v];
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */
/* ------------------------------------------------------------------ */

/* Replaces the interrupts of @idx by @count fresh ones; 0 or -ENOMEM. */
static int
set_count(vfu_ctx_t *ctx, uint32_t idx, uint32_t count)
{
    struct vfu_irq_vec *vecs = NULL;

    if (count > 0) {
        vecs = calloc(count, sizeof(*vecs));
        if (vecs == NULL) {
            return -ENOMEM;
        }
        for (uint32_t v = 0; v < count; v++) {
            vecs[v].efd = -1;
        }
    }
    free(ctx->irqs.vecs[idx]);
    ctx->irqs.vecs[idx] = vecs;
    ctx->irqs.count[idx] = count;
    return 0;
}

int
irq_init(vfu_ctx_t *ctx)
{
    memset(&ctx->irqs, 0, sizeof(ctx->irqs));
    ctx->irqs.enabled = -1;
    ctx->irqs.intx_unmask_fd = -1;
    if (set_count(ctx, VFU_DEV_ERR_IRQ, 1) < 0 ||
        set_count(ctx, VFU_DEV_REQ_IRQ, 1) < 0) {
        irq_free(ctx);
        return -ENOMEM;
    }
    return 0;
}

void
irq_free(vfu_ctx_t *ctx)
{
    irq_reset(ctx);
    for (uint32_t idx = 0; idx < VFU_DEV_NUM_IRQS; idx++) {
        free(ctx->irqs.vecs[idx]);
        ctx->irqs.vecs[idx] = NULL;
        ctx->irqs.count[idx] = 0;
    }
}

static bool
bad_type(vfu_ctx_t *ctx, enum vfu_dev_irq_type type)
{
    /* Compare as int: the enum may be unsigned. */
    return ctx == NULL || (int)type < 0 || (int)type >= VFU_DEV_NUM_IRQS;
}

VFU_EXPORT int
vfu_setup_device_nr_irqs(vfu_ctx_t *ctx, enum vfu_dev_irq_type type,
                         uint32_t count)
{
    int ret;

    if (bad_type(ctx, type) || count > max_count[type]) {
        errno = EINVAL;
        return -1;
    }
    if (ctx->negotiated) {
        errno = EBUSY;
        return -1;
    }
    irq_reset(ctx);     /* no client: nothing open, but be sure */
    ret = set_count(ctx, type, count);
    if (ret < 0) {
        errno = -ret;
        return -1;
    }
    if (type == VFU_DEV_INTX_IRQ) {
        pci_set_intx_pin(ctx, count > 0);
    }
    return 0;
}

VFU_EXPORT int
vfu_setup_irq_state_callback(vfu_ctx_t *ctx, enum vfu_dev_irq_type type,
                             vfu_dev_irq_state_cb_t *cb)
{
    if (bad_type(ctx, type)) {
        errno = EINVAL;
        return -1;
    }
    ctx->irqs.state_cb[type] = cb;
    return 0;
}

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

/* A capability whose registers the library emulates (and can read). */
static const struct vfu_cap *
emulated_cap(vfu_ctx_t *ctx, uint16_t id)
{
    const struct vfu_cap *c = caps_find(ctx, false, id);

    return c != NULL && !(c->flags & VFU_CAP_FLAG_CALLBACK) ? c : NULL;
}

/*
 * Mirrors pending MSI vector @v in the capability's pending bits, when the
 * capability has them.
 */
static void
msi_show_pending(vfu_ctx_t *ctx, uint32_t v, bool pending)
{
    const struct vfu_cap *c = emulated_cap(ctx, PCI_CAP_ID_MSI);
    uint16_t flags;
    size_t off;
    uint32_t bits;

    if (c == NULL) {
        return;
    }
    flags = pci_get16(ctx->pci.cfg, c->off + PCI_MSI_FLAGS);
    if (!(flags & PCI_MSI_FLAGS_MASKBIT)) {
        return;
    }
    off = c->off + ((flags & PCI_MSI_FLAGS_64BIT) ? PCI_MSI_PENDING_64
                                                  : PCI_MSI_PENDING_32);
    bits = pci_get32(ctx->pci.cfg, off);
    bits = pending ? (bits | (1u << v)) : (bits & ~(1u << v));
    pci_put32(ctx->pci.cfg, off, bits);
}

static void
set_pending(vfu_ctx_t *ctx, uint32_t idx, uint32_t v, bool pending)
{
    struct vfu_irq_vec *vec = vec_of(ctx, idx, v);

    if (vec->pending == pending) {
        return;
    }
    vec->pending = pending;
    if (pending) {
        ctx->irqs.nr_pending++;
    } else {
        ctx->irqs.nr_pending--;
    }
    if (idx == VFU_DEV_MSI_IRQ) {
        msi_show_pending(ctx, v, pending);
    }
}

static void
set_intx_level(vfu_ctx_t *ctx, bool level)
{
    ctx->irqs.intx_level = level;
    pci_set_intx_status(ctx, level);
}

/*
 * Whether config space lets interrupt @v of @idx through: INTx unless
 * Interrupt Disable is set; MSI while enabled and the vector is enabled and
 * unmasked; MSI-X while enabled and not function-masked. Without the
 * capability (or with a callback one, whose registers the device keeps)
 * nothing holds the interrupt back.
 */
static bool
gate_open(vfu_ctx_t *ctx, uint32_t idx, uint32_t v)
{
    switch (idx) {
    case VFU_DEV_INTX_IRQ:
        return !(pci_get16(ctx->pci.cfg, PCI_COMMAND) &
                 PCI_COMMAND_INTX_DISABLE);
    case VFU_DEV_MSI_IRQ:
        return emulated_cap(ctx, PCI_CAP_ID_MSI) == NULL ||
               !caps_msi_vector_masked(ctx, v);
    case VFU_DEV_MSIX_IRQ:
        return emulated_cap(ctx, PCI_CAP_ID_MSIX) == NULL ||
               (caps_msix_enabled(ctx) && !caps_msix_masked(ctx));
    default:
        return true;
    }
}

/* Signals @efd once; 0 or -errno. */
static int
signal_efd(int efd)
{
    uint64_t one = 1;
    ssize_t n;

    do {
        n = write(efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(one)) {
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}

/*
 * Signals every pending interrupt of the enabled type that nothing holds
 * back any more. INTx masks itself when signalled (automask). Returns 0, or
 * the first failed write's -errno (that interrupt stays pending).
 */
static int
deliver_pending(vfu_ctx_t *ctx)
{
    struct vfu_irqs *irqs = &ctx->irqs;
    int idx = irqs->enabled;
    int err = 0;

    if (irqs->nr_pending == 0 || idx < 0) {
        return 0;
    }
    for (uint32_t v = 0; v < irqs->count[idx] && irqs->nr_pending > 0; v++) {
        struct vfu_irq_vec *vec = vec_of(ctx, (uint32_t)idx, v);
        int ret;

        if (!vec->pending || vec->efd < 0 || vec->masked ||
            !gate_open(ctx, (uint32_t)idx, v)) {
            continue;
        }
        ret = signal_efd(vec->efd);
        if (ret < 0) {
            vfu_log_err(ctx, "%s %u: eventfd write failed: %s",
                        type_name[idx], v, strerror(-ret));
            err = err != 0 ? err : ret;
            continue;
        }
        set_pending(ctx, (uint32_t)idx, v, false);
        if (idx == VFU_DEV_INTX_IRQ) {
            vec->masked = true;
        }
    }
    return err;
}

/* Sets eventfd @efd (-1: none) for interrupt @v, closing the old one. */
static void
assign(vfu_ctx_t *ctx, uint32_t idx, uint32_t v, int efd)
{
    struct vfu_irq_vec *vec = vec_of(ctx, idx, v);

    if (vec->efd >= 0) {
        close(vec->efd);
    }
    vec->efd = efd;
    if (efd < 0) {
        vec->masked = false;
        set_pending(ctx, idx, v, false);
    }
}

static void
set_unmask_fd(vfu_ctx_t *ctx, int efd)
{
    if (ctx->irqs.intx_unmask_fd >= 0) {
        close(ctx->irqs.intx_unmask_fd);
    }
    ctx->irqs.intx_unmask_fd = efd;
}

/* Closes every eventfd of @idx and forgets its state. */
static void
disable_index(vfu_ctx_t *ctx, uint32_t idx)
{
    for (uint32_t v = 0; v < ctx->irqs.count[idx]; v++) {
        assign(ctx, idx, v, -1);
    }
    if (idx == VFU_DEV_INTX_IRQ) {
        set_unmask_fd(ctx, -1);
        if (ctx->irqs.intx_level) {
            set_intx_level(ctx, false);
        }
    }
    if (ctx->irqs.enabled == (int)idx) {
        ctx->irqs.enabled = -1;
    }
}

void
irq_reset(vfu_ctx_t *ctx)
{
    for (uint32_t idx = 0; idx < VFU_DEV_NUM_IRQS; idx++) {
        if (ctx->irqs.vecs[idx] != NULL) {
            disable_index(ctx, idx);
        }
    }
    set_unmask_fd(ctx, -1);
    ctx->irqs.enabled = -1;
}

/*
 * The client unmasked INTx. If the line was asserted and signalled, this
 * is the end of that interrupt: the line goes down. If it was asserted but
 * held back, it is signalled now.
 */
static void
intx_unmask(vfu_ctx_t *ctx)
{
    struct vfu_irq_vec *vec = vec_of(ctx, VFU_DEV_INTX_IRQ, 0);

    vec->masked = false;
    if (ctx->irqs.intx_level && !vec->pending) {
        set_intx_level(ctx, false);
    }
}

static void
notify_state(vfu_ctx_t *ctx, uint32_t idx, uint32_t start, uint32_t count,
             bool mask)
{
    if (ctx->irqs.state_cb[idx] != NULL) {
        ctx->irqs.state_cb[idx](ctx, start, count, mask);
    }
}

void
irq_poll(vfu_ctx_t *ctx)
{
    struct pollfd pfd = { .fd = ctx->irqs.intx_unmask_fd, .events = POLLIN };
    uint64_t n;

    if (ctx->irqs.enabled != VFU_DEV_INTX_IRQ || pfd.fd < 0 ||
        !vec_of(ctx, VFU_DEV_INTX_IRQ, 0)->masked) {
        return;
    }
    /* The fd may be blocking: read only what poll says is there. */
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN) ||
        read(pfd.fd, &n, sizeof(n)) != (ssize_t)sizeof(n)) {
        return;
    }
    intx_unmask(ctx);
    notify_state(ctx, VFU_DEV_INTX_IRQ, 0, 1, false);
    (void)deliver_pending(ctx);
}

void
irq_config_written(vfu_ctx_t *ctx)
{
    (void)deliver_pending(ctx);
}

/* ------------------------------------------------------------------ */
/* Raising interrupts                                                  */
/* ------------------------------------------------------------------ */

VFU_EXPORT int
vfu_irq_trigger(vfu_ctx_t *ctx, uint32_t subindex)
{
    struct vfu_irqs *irqs;
    struct vfu_irq_vec *vec;
    uint32_t idx;
    int ret;

    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    irqs = &ctx->irqs;
    if (irqs->intx_unmask_fd >= 0) {
        irq_poll(ctx);
    }
    if (irqs->enabled < 0) {
        uint32_t max = 0;
        for (idx = 0; is_exclusive(idx); idx++) {
            max = irqs->count[idx] > max ? irqs->count[idx] : max;
        }
        errno = subindex < max ? ENOENT : EINVAL;
        return -1;
    }
    idx = (uint32_t)irqs->enabled;
    if (subindex >= irqs->count[idx]) {
        errno = EINVAL;
        return -1;
    }
    vec = vec_of(ctx, idx, subindex);
    if (vec->efd < 0) {
        errno = ENOENT;
        return -1;
    }
    if (idx == VFU_DEV_INTX_IRQ) {
        /* Asserting an asserted line changes nothing. */
        if (!irqs->intx_level) {
            set_intx_level(ctx, true);
            set_pending(ctx, idx, 0, true);
        }
    } else {
        set_pending(ctx, idx, subindex, true);
    }
    ret = deliver_pending(ctx);
    if (ret < 0) {
        errno = -ret;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* DEVICE_GET_IRQ_INFO                                                 */
/* ------------------------------------------------------------------ */

/* Flags as Linux's vfio-pci reports them, MSI and MSI-X also maskable. */
static uint32_t
info_flags(uint32_t idx)
{
    switch (idx) {
    case VFU_DEV_INTX_IRQ:
        return VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
               VFIO_IRQ_INFO_AUTOMASKED;
    case VFU_DEV_MSI_IRQ:
    case VFU_DEV_MSIX_IRQ:
        return VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
               VFIO_IRQ_INFO_NORESIZE;
    default:
        return VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE;
    }
}

int
handle_irq_info(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    struct vfio_irq_info in;
    struct vfio_irq_info *out = (void *)ctx->reply_buf;

    if (msg->len != sizeof(in)) {
        vfu_log_err(ctx, "GET_IRQ_INFO: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&in, msg->payload, sizeof(in));
    if (in.argsz < sizeof(in) || in.flags != 0 || in.count != 0 ||
        in.index >= VFU_DEV_NUM_IRQS) {
        vfu_log_err(ctx, "GET_IRQ_INFO: argsz %u, flags %#x, index %u, "
                    "count %u", in.argsz, in.flags, in.index, in.count);
        return -EINVAL;
    }
    out->argsz = sizeof(*out);
    out->flags = info_flags(in.index);
    out->index = in.index;
    out->count = ctx->irqs.count[in.index];
    reply_add(reply, out, sizeof(*out));
    return 0;
}

/* ------------------------------------------------------------------ */
/* DEVICE_SET_IRQS                                                     */
/* ------------------------------------------------------------------ */

/* A checked request: the header, its data and the fds that came with it. */
struct irq_set {
    uint32_t index, start, count;
    uint32_t data;                  /* VFIO_IRQ_SET_DATA_* */
    uint32_t action;                /* VFIO_IRQ_SET_ACTION_* */
    const uint8_t *bools;           /* DATA_BOOL: count bytes */
    struct tran_msg *msg;           /* DATA_EVENTFD: 0 or count fds */
};

/* Whether interrupt @i of the range is selected (DATA_BOOL filters). */
static bool
selected(const struct irq_set *s, uint32_t i)
{
    return s->bools == NULL || s->bools[i] != 0;
}

static bool
one_bit(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

/* Only eventfds may become interrupt signals (as Linux's eventfd_ctx_fdget). */
static bool
is_eventfd(int fd)
{
    char path[64], target[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return fcntl(fd, F_GETFD) >= 0;    /* no /proc: cannot tell */
    }
    target[n] = '\0';
    return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* Header, sizes, ranges and fds; 0 or -EINVAL, nothing changed. */
static int
check_set(vfu_ctx_t *ctx, struct tran_msg *msg, struct irq_set *s)
{
    struct vfio_irq_set hdr;
    uint32_t n;

    if (msg->len < sizeof(hdr)) {
        vfu_log_err(ctx, "SET_IRQS: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&hdr, msg->payload, sizeof(hdr));
    if (hdr.argsz != msg->len) {
        vfu_log_err(ctx, "SET_IRQS: argsz %u, payload %zu bytes", hdr.argsz,
                    msg->len);
        return -EINVAL;
    }
    s->data = hdr.flags & DATA_MASK;
    s->action = hdr.flags & ACTION_MASK;
    if ((hdr.flags & ~(DATA_MASK | ACTION_MASK)) || !one_bit(s->data) ||
        !one_bit(s->action)) {
        vfu_log_err(ctx, "SET_IRQS: bad flags %#x", hdr.flags);
        return -EINVAL;
    }
    if (hdr.index >= VFU_DEV_NUM_IRQS) {
        vfu_log_err(ctx, "SET_IRQS: bad index %u", hdr.index);
        return -EINVAL;
    }
    n = ctx->irqs.count[hdr.index];
    if (hdr.start >= n || hdr.count > n - hdr.start ||
        (hdr.count == 0 && (hdr.start != 0 || s->data != VFIO_IRQ_SET_DATA_NONE ||
                            s->action != VFIO_IRQ_SET_ACTION_TRIGGER))) {
        vfu_log_err(ctx, "SET_IRQS: %s %u-%u of %u", type_name[hdr.index],
                    hdr.start, hdr.start + hdr.count, n);
        return -EINVAL;
    }
    if (msg->len != sizeof(hdr) +
        (s->data == VFIO_IRQ_SET_DATA_BOOL ? hdr.count : 0)) {
        vfu_log_err(ctx, "SET_IRQS: %zu bytes of data for %u interrupts",
                    msg->len - sizeof(hdr), hdr.count);
        return -EINVAL;
    }
    if (s->data == VFIO_IRQ_SET_DATA_EVENTFD ?
        (msg->nr_fds != 0 && msg->nr_fds != hdr.count) : msg->nr_fds != 0) {
        vfu_log_err(ctx, "SET_IRQS: %zu fds for %u interrupts", msg->nr_fds,
                    hdr.count);
        return -EINVAL;
    }
    for (size_t i = 0; i < msg->nr_fds; i++) {
        if (!is_eventfd(msg->fds[i])) {
            vfu_log_err(ctx, "SET_IRQS: fd %zu is not an eventfd", i);
            return -EINVAL;
        }
    }
    s->index = hdr.index;
    s->start = hdr.start;
    s->count = hdr.count;
    s->bools = s->data == VFIO_IRQ_SET_DATA_BOOL ?
               msg->payload + sizeof(hdr) : NULL;
    s->msg = msg;
    return 0;
}

/* Whether the client gave @idx eventfds (ERR/REQ: its one interrupt's). */
static bool
index_enabled(vfu_ctx_t *ctx, uint32_t idx)
{
    if (is_exclusive(idx)) {
        return ctx->irqs.enabled == (int)idx;
    }
    return vec_of(ctx, idx, 0)->efd >= 0;
}

/* DATA_EVENTFD + ACTION_TRIGGER: takes the message's fds or de-assigns. */
static int
set_trigger_fds(vfu_ctx_t *ctx, const struct irq_set *s)
{
    struct tran_msg *msg = s->msg;
    bool assigning = msg->nr_fds > 0;

    if (is_exclusive(s->index) && ctx->irqs.enabled >= 0 &&
        ctx->irqs.enabled != (int)s->index) {
        vfu_log_err(ctx, "SET_IRQS: %s is enabled, not %s",
                    type_name[ctx->irqs.enabled], type_name[s->index]);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < s->count; i++) {
        int efd = assigning ? msg->fds[i] : -1;

        if (assigning) {
            msg->fds[i] = -1;       /* ours now */
        }
        assign(ctx, s->index, s->start + i, efd);
    }
    if (s->index == VFU_DEV_INTX_IRQ && !assigning) {
        disable_index(ctx, s->index);   /* INTx has one: it is gone */
    } else if (is_exclusive(s->index)) {
        ctx->irqs.enabled = (int)s->index;
    }
    (void)deliver_pending(ctx);     /* a failed write is logged */
    return 0;
}

static int
set_trigger(vfu_ctx_t *ctx, const struct irq_set *s)
{
    if (s->count == 0) {
        /* Disables the whole index; a disabled one stays so. */
        if (index_enabled(ctx, s->index) || !is_exclusive(s->index)) {
            disable_index(ctx, s->index);
        }
        return 0;
    }
    if (s->data == VFIO_IRQ_SET_DATA_EVENTFD) {
        return set_trigger_fds(ctx, s);
    }
    /* DATA_NONE / DATA_BOOL: loopback, as if the device raised them. */
    if (!index_enabled(ctx, s->index)) {
        vfu_log_err(ctx, "SET_IRQS: loopback on %s, which has no eventfds",
                    type_name[s->index]);
        return -EINVAL;
    }
    for (uint32_t i = 0; i < s->count; i++) {
        struct vfu_irq_vec *vec = vec_of(ctx, s->index, s->start + i);
        int ret;

        if (!selected(s, i) || vec->efd < 0) {
            continue;
        }
        ret = signal_efd(vec->efd);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* ACTION_MASK / ACTION_UNMASK. */
static int
set_mask(vfu_ctx_t *ctx, const struct irq_set *s)
{
    bool mask = s->action == VFIO_IRQ_SET_ACTION_MASK;
    uint32_t i, run;

    if (!is_exclusive(s->index) ||
        (s->data == VFIO_IRQ_SET_DATA_EVENTFD &&
         (mask || s->index != VFU_DEV_INTX_IRQ))) {
        vfu_log_err(ctx, "SET_IRQS: %s %s%s not supported",
                    type_name[s->index], mask ? "MASK" : "UNMASK",
                    s->data == VFIO_IRQ_SET_DATA_EVENTFD ? " with eventfd" : "");
        return -ENOTTY;
    }
    if (!index_enabled(ctx, s->index)) {
        vfu_log_err(ctx, "SET_IRQS: %s %s, but it has no eventfds",
                    mask ? "MASK" : "UNMASK", type_name[s->index]);
        return -EINVAL;
    }
    if (s->data == VFIO_IRQ_SET_DATA_EVENTFD) {
        /* INTx: an eventfd the client signals to unmask (KVM resample). */
        int efd = -1;

        if (s->msg->nr_fds > 0) {
            efd = s->msg->fds[0];
            s->msg->fds[0] = -1;    /* ours now */
        }
        set_unmask_fd(ctx, efd);
        return 0;
    }
    for (i = 0; i < s->count; i += run) {
        run = 0;
        while (i + run < s->count && selected(s, i + run)) {
            uint32_t v = s->start + i + run;

            if (s->index == VFU_DEV_INTX_IRQ && !mask) {
                intx_unmask(ctx);
            } else {
                vec_of(ctx, s->index, v)->masked = mask;
            }
            run++;
        }
        if (run > 0) {
            notify_state(ctx, s->index, s->start + i, run, mask);
        } else {
            run = 1;        /* an unselected one */
        }
    }
    (void)deliver_pending(ctx);
    return 0;
}

int
handle_set_irqs(vfu_ctx_t *ctx, struct tran_msg *msg, struct vfu_reply *reply)
{
    struct irq_set s;
    int ret;

    (void)reply;
    ret = check_set(ctx, msg, &s);
    if (ret < 0) {
        return ret;
    }
    if (s.action == VFIO_IRQ_SET_ACTION_TRIGGER) {
        return set_trigger(ctx, &s);
    }
    return set_mask(ctx, &s);
}
