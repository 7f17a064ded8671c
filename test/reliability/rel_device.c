/*
 * The reliability tests' device and session (rel.h): the device's set-up
 * and callbacks, the server thread, and a whole client session with each
 * step's result kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "failpoint.h"
#include "rel.h"

#define MIG_STATE   6000
#define MSIX_VECS   4

/* --- The device --- */

static struct rel_server *
server_of(vfu_ctx_t *ctx)
{
    return vfu_get_private(ctx);
}

static int
copy(vfu_ctx_t *ctx)
{
    static uint8_t buf[4096];
    uint8_t sg[2][64];
    int n;

    n = vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)REL_MSG_IOVA,
                        sizeof(buf), (dma_sg_t *)sg, 2, PROT_READ);
    if (n < 0 || vfu_sgl_read(ctx, (dma_sg_t *)sg, (size_t)n, buf, 0) < 0) {
        return n < -1 ? ENOSPC : errno;
    }
    n = vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)REL_FD_IOVA,
                        sizeof(buf), (dma_sg_t *)sg, 2, PROT_WRITE);
    if (n < 0 || vfu_sgl_write(ctx, (dma_sg_t *)sg, (size_t)n, buf,
                               VFU_SGL_DIRECT_ACCESS) < 0) {
        return n < -1 ? ENOSPC : errno;
    }
    return 0;
}

static int
touch(vfu_ctx_t *ctx)
{
    uint8_t sg[64];
    struct iovec iov;

    if (vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)REL_FD_IOVA, 4096,
                        (dma_sg_t *)sg, 1, PROT_READ | PROT_WRITE) != 1 ||
        vfu_sgl_get(ctx, (dma_sg_t *)sg, &iov, 1, 0) < 0) {
        return errno != 0 ? errno : EINVAL;
    }
    ((uint8_t *)iov.iov_base)[0] ^= 0x5a;
    vfu_sgl_put(ctx, (dma_sg_t *)sg, &iov, 1);
    return 0;
}

static ssize_t
bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
            bool is_write)
{
    struct rel_server *s = server_of(ctx);
    uint32_t result;

    if (fp_callback("bar0_access")) {
        errno = EIO;
        return -1;
    }
    if (is_write && off == REL_REG_OP && count == 4) {
        uint32_t op;

        memcpy(&op, buf, 4);
        result = op == REL_OP_COPY ? (uint32_t)copy(ctx) :
                 op == REL_OP_TOUCH ? (uint32_t)touch(ctx) :
                 op == REL_OP_IRQ ?
                     (vfu_irq_trigger(ctx, 0) < 0 ? (uint32_t)errno : 0) :
                 EINVAL;
        memcpy(s->bar0 + REL_REG_RESULT, &result, 4);
        return (ssize_t)count;
    }
    if (is_write) {
        memcpy(s->bar0 + off, buf, count);
    } else {
        memcpy(buf, s->bar0 + off, count);
    }
    return (ssize_t)count;
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    (void)ctx;
    (void)type;
    if (fp_callback("reset_cb")) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static int
quiesce_cb(vfu_ctx_t *ctx)
{
    (void)ctx;
    if (fp_callback("quiesce_cb")) {
        errno = EIO;
        return -1;
    }
    return 0;
}

static void
dma_register(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    server_of(ctx)->dma_maps++;
    if (info->vaddr != NULL) {
        (void)*(volatile uint8_t *)info->vaddr;
    }
}

static void
dma_unregister(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    server_of(ctx)->dma_maps--;
    if (info->vaddr != NULL) {
        (void)*(volatile uint8_t *)info->vaddr;     /* still mapped */
    }
}

static int
mig_transition(vfu_ctx_t *ctx, vfu_migr_state_t state)
{
    struct rel_server *s = server_of(ctx);

    if (fp_callback("mig_transition")) {
        errno = EIO;
        return -1;
    }
    if (state == VFU_MIGR_STATE_PRE_COPY) {
        s->mig_out = 0;
    }
    if (state == VFU_MIGR_STATE_RESUME) {
        s->mig_in_len = 0;
    }
    return 0;
}

static ssize_t
mig_read(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct rel_server *s = server_of(ctx);
    size_t n = MIG_STATE - s->mig_out;

    if (fp_callback("mig_read")) {
        errno = EIO;
        return -1;
    }
    n = n < count ? n : (size_t)count;
    for (size_t i = 0; i < n; i++) {
        ((uint8_t *)buf)[i] = (uint8_t)(s->mig_out + i);
    }
    s->mig_out += n;
    return (ssize_t)n;
}

static ssize_t
mig_write(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct rel_server *s = server_of(ctx);
    size_t room = sizeof(s->mig_in) - s->mig_in_len;

    if (fp_callback("mig_write")) {
        errno = EIO;
        return -1;
    }
    count = count < room ? count : room;
    memcpy(s->mig_in + s->mig_in_len, buf, (size_t)count);
    s->mig_in_len += (size_t)count;
    return count > 0 ? (ssize_t)count : -1;
}

static int
mig_data_size(vfu_ctx_t *ctx, uint64_t *len)
{
    if (fp_callback("mig_data_size")) {
        errno = EIO;
        return -1;
    }
    *len = MIG_STATE - server_of(ctx)->mig_out;
    return 0;
}

/* REL_LOG=1: the server's log on stderr, for a look at one point. */
static void
log_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "server[%d]: %s\n", level, msg);
}

/* Each set-up call, named for the report when it fails. */
#define SETUP(s, call) \
    do { if ((call) < 0) { (s)->setup_call = #call; goto fail; } } while (0)

static int
device_create(struct rel_server *s)
{
    static const vfu_migration_callbacks_t mig = {
        .version = VFU_MIGR_CALLBACKS_VERS, .transition = mig_transition,
        .read_data = mig_read, .write_data = mig_write,
    };
    struct iovec areas[2] = {
        { (void *)0, 4096 }, { (void *)8192, 4096 },
    };
    struct pmcap pm = { .hdr.id = PCI_CAP_ID_PM };
    struct msixcap msix = { .hdr.id = PCI_CAP_ID_MSIX };
    struct pxcap px = { .hdr.id = PCI_CAP_ID_EXP };
    vfu_ctx_t *ctx;
    int err;

    memset(s->bar0, 0, sizeof(s->bar0));
    s->mig_out = s->mig_in_len = 0;
    s->bar2_fd = memfd_create("vfu-rel-bar2", MFD_CLOEXEC);
    s->ioefd = eventfd(0, EFD_CLOEXEC);
    if (s->bar2_fd < 0 || s->ioefd < 0 ||
        ftruncate(s->bar2_fd, REL_BAR2_SIZE) < 0) {
        s->setup_call = "device fds";
        goto fail;
    }
    ctx = vfu_create_ctx(VFU_TRANS_SOCK, s->path, 0, s, VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        s->setup_call = "vfu_create_ctx";
        goto fail;
    }
    s->ctx = ctx;
    if (getenv("REL_LOG") != NULL) {
        SETUP(s, vfu_setup_log(ctx, log_stderr, LOG_DEBUG));
    }
    pm.pc.vs = 3;
    msix.mxc.ts = MSIX_VECS - 1;
    msix.mtab.to = 0x800 >> 3;
    msix.mpba.pbao = 0xa00 >> 3;
    px.pxcaps.ver = 2;
    px.pxdcap.flrc = 1;
    SETUP(s, vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, PCI_HEADER_TYPE_NORMAL,
                          0));
    vfu_pci_set_id(ctx, 0x1af4, 0x1100, 0x1af4, 0x1100);
    SETUP(s, vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX,
                              REL_BAR0_SIZE, bar0_access,
                              VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM, NULL,
                              0, -1, 0));
    SETUP(s, vfu_setup_region(ctx, VFU_PCI_DEV_BAR2_REGION_IDX,
                              REL_BAR2_SIZE, NULL,
                              VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                              areas, 2, s->bar2_fd, 0));
    SETUP(s, vfu_pci_add_capability(ctx, REL_CAP_PM, 0, &pm));
    SETUP(s, vfu_pci_add_capability(ctx, REL_CAP_MSIX, 0, &msix));
    SETUP(s, vfu_pci_add_capability(ctx, REL_CAP_EXP, 0, &px));
    SETUP(s, vfu_setup_device_nr_irqs(ctx, VFU_DEV_INTX_IRQ, 1));
    SETUP(s, vfu_setup_device_nr_irqs(ctx, VFU_DEV_MSIX_IRQ, MSIX_VECS));
    SETUP(s, vfu_setup_device_dma(ctx, 16, dma_register, dma_unregister));
    SETUP(s, vfu_setup_device_reset_cb(ctx, reset_cb));
    vfu_setup_device_quiesce_cb(ctx, quiesce_cb);
    SETUP(s, vfu_setup_device_migration_callbacks(ctx, &mig));
    SETUP(s, vfu_setup_device_migration_data_size(ctx, mig_data_size));
    SETUP(s, vfu_create_ioeventfd(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, s->ioefd,
                                  REL_IOEVENTFD, 4, 0, 0, -1, 0));
    SETUP(s, vfu_realize_ctx(ctx));
    return 0;

fail:
    err = errno != 0 ? errno : EIO;
    vfu_destroy_ctx(s->ctx);
    s->ctx = NULL;
    if (s->bar2_fd >= 0) {
        close(s->bar2_fd);
    }
    if (s->ioefd >= 0) {
        close(s->ioefd);
    }
    s->bar2_fd = s->ioefd = -1;
    return err;
}

static void *
server_thread(void *arg)
{
    struct rel_server *s = arg;
    int clients = 0;
    bool stop;

    fp_count_thread(s->count_first);
    errno = 0;
    s->setup_errno = device_create(s);
    pthread_mutex_lock(&s->lock);
    s->ready = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->setup_errno != 0) {
        fp_count_thread(false);
        return NULL;
    }
    do {
        if (vfu_attach_ctx(s->ctx) == 0) {
            while (vfu_run_ctx(s->ctx) >= 0) {
            }
            if (errno != ENOTCONN && s->run_errno == 0) {
                s->run_errno = errno;
            }
        }
        if (++clients == 1) {
            fp_count_thread(false);
        }
        pthread_mutex_lock(&s->lock);
        s->first_done = true;
        s->clients_done++;
        stop = s->stop;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    } while (!stop);
    vfu_destroy_ctx(s->ctx);
    s->ctx = NULL;
    close(s->bar2_fd);
    close(s->ioefd);
    return NULL;
}

static void
wait_for(struct rel_server *s, bool *flag)
{
    pthread_mutex_lock(&s->lock);
    while (!*flag) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

void
rel_server_start(struct rel_server *s, bool count_first)
{
    memset(s, 0, sizeof(*s));
    s->bar2_fd = s->ioefd = -1;
    s->count_first = count_first;
    strcpy(s->dir, "/tmp/vfu-rel-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        abort();
    }
    snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, server_thread, s) != 0) {
        abort();
    }
    wait_for(s, &s->ready);
}

void
rel_server_wait_first(struct rel_server *s)
{
    wait_for(s, &s->first_done);
}

void
rel_server_wait_clients(struct rel_server *s, int n)
{
    pthread_mutex_lock(&s->lock);
    while (s->clients_done < n) {
        pthread_cond_wait(&s->cond, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
}

void
rel_server_stop(struct rel_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_mutex_unlock(&s->lock);
}

void
rel_server_join(struct rel_server *s)
{
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    unlink(s->path);
    rmdir(s->dir);
}

/* --- The session --- */

static uint8_t guest[REL_DMA_SIZE];

static void
step(struct rel_session *out, const char *name, long ret, uint64_t data)
{
    struct rel_step *st = &out->steps[out->n++];

    st->name = name;
    st->ret = ret;
    st->err = ret < 0 ? errno : 0;
    st->data = ret < 0 ? 0 : data;
}

static uint64_t
sum(const void *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
    }
    return h;
}

/* A config space write of @len bytes, as a guest's driver does. */
static int
cfg_write(vfu_client_t *c, uint64_t off, uint32_t v, uint32_t len)
{
    return vfu_client_region_write(c, VFU_PCI_DEV_CFG_REGION_IDX, off, &v,
                                   len, false);
}

/* The device's own error channel: its result register, as an errno. */
static void
device_result(vfu_client_t *c, struct rel_session *out, const char *name)
{
    uint32_t v = 0xffffffff;
    long ret = vfu_client_region_read(c, 0, REL_REG_RESULT, &v, 4);

    if (ret == 0 && v != 0) {
        errno = (int)v;
        ret = -1;
    }
    step(out, name, ret, v);
}

static int
set_state(vfu_client_t *c, uint32_t state)
{
    return vfu_client_mig_state_set(c, state);
}

void
rel_session_run(const char *path, bool dma_msg, struct rel_session *out)
{
    static uint8_t state[16384];
    struct vfio_user_device_info di;
    struct vfio_region_info *info;
    struct vfio_irq_info ii;
    vfu_client_t *c;
    uint64_t bitmap[2], v64 = 0;
    uint32_t v32 = 0;
    int efd[2], memfd, fd;
    ssize_t n;
    long ret;

    memset(out, 0, sizeof(*out));
    memset(guest, 0x11, sizeof(guest));
    c = vfu_client_connect(path);
    step(out, "connect", c != NULL ? 0 : -1, 0);
    if (c == NULL) {
        return;
    }
    /* Generous: a failure may make the server wait (a second, here). */
    (void)vfu_client_set_timeout(c, 120000);
    step(out, "negotiate", vfu_client_negotiate(c, NULL), 0);
    ret = vfu_client_device_info(c, &di);
    step(out, "device info", ret, di.num_regions);
    for (uint32_t r = 0; r < 3; r++) {
        static const uint32_t index[3] = { 0, 2, VFU_PCI_DEV_CFG_REGION_IDX };
        ret = vfu_client_region_info(c, index[r], &info, &fd);
        step(out, "region info", ret, ret < 0 ? 0 : sum(info, info->argsz));
        if (ret == 0) {
            free(info);
            if (fd >= 0) {
                close(fd);
            }
        }
    }
    ret = vfu_client_irq_info(c, VFIO_PCI_MSIX_IRQ_INDEX, &ii);
    step(out, "irq info", ret, ii.count);

    memfd = memfd_create("vfu-rel-dma", MFD_CLOEXEC);
    if (memfd >= 0 && ftruncate(memfd, REL_DMA_SIZE) < 0) {
        close(memfd);
        memfd = -1;
    }
    step(out, "DMA map (fd)",
         vfu_client_dma_map(c, REL_FD_IOVA, REL_DMA_SIZE, memfd, 0, NULL,
                            VFIO_USER_F_DMA_REGION_READ |
                            VFIO_USER_F_DMA_REGION_WRITE), 0);
    if (memfd >= 0) {
        close(memfd);
    }
    if (dma_msg) {
        step(out, "DMA map (no fd)",
             vfu_client_dma_map(c, REL_MSG_IOVA, REL_DMA_SIZE, -1, 0, guest,
                                VFIO_USER_F_DMA_REGION_READ |
                                VFIO_USER_F_DMA_REGION_WRITE), 0);
    }
    efd[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    efd[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    step(out, "SET_IRQS",
         vfu_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX,
                             VFIO_IRQ_SET_DATA_EVENTFD |
                             VFIO_IRQ_SET_ACTION_TRIGGER, 0, 2, efd, NULL), 0);
    step(out, "MSI-X enable",
         cfg_write(c, REL_CAP_MSIX + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2),
         0);
    step(out, "command register", cfg_write(c, PCI_COMMAND, 0x6, 2), 0);

    v64 = 0x1122334455667788ull;
    step(out, "BAR0 write",
         vfu_client_region_write(c, 0, 0, &v64, 8, false), 0);
    v64 = 0;
    ret = vfu_client_region_read(c, 0, 0, &v64, 8);
    step(out, "BAR0 read", ret, v64);
    v32 = dma_msg ? REL_OP_COPY : REL_OP_TOUCH;
    step(out, "device DMA", vfu_client_region_write(c, 0, REL_REG_OP, &v32, 4,
                                                    false), 0);
    device_result(c, out, "device DMA result");
    v32 = REL_OP_IRQ;
    step(out, "device interrupt",
         vfu_client_region_write(c, 0, REL_REG_OP, &v32, 4, false), 0);
    device_result(c, out, "device interrupt result");
    step(out, "interrupt arrived", vfu_client_wait_irq(efd[0], 1000), 0);
    {
        struct vfio_user_write_multi_data w[2] = {
            { .offset = 16, .region = 0, .count = 4, .data = "abcd" },
            { .offset = 20, .region = 0, .count = 4, .data = "efgh" },
        };
        step(out, "write multi", vfu_client_region_write_multi(c, w, 2, false),
             0);
    }

    step(out, "dirty start", vfu_client_dirty_start(c, 4096, NULL, 0), 0);
    v32 = REL_OP_TOUCH;
    step(out, "device writes", vfu_client_region_write(c, 0, REL_REG_OP, &v32,
                                                       4, false), 0);
    memset(bitmap, 0, sizeof(bitmap));
    ret = vfu_client_dirty_report(c, REL_FD_IOVA, REL_DMA_SIZE, 4096, bitmap);
    step(out, "dirty report", ret, bitmap[0]);
    step(out, "dirty stop", vfu_client_dirty_stop(c), 0);

    ret = vfu_client_mig_flags(c, &v64);
    step(out, "migration flags", ret, v64);
    step(out, "PRE_COPY", set_state(c, VFIO_DEVICE_STATE_PRE_COPY), 0);
    n = vfu_client_mig_read(c, state, 4096);
    step(out, "pre-copy data", n, n > 0 ? sum(state, (size_t)n) : 0);
    ret = vfu_client_mig_data_size(c, &v64);
    step(out, "data size", ret, v64);
    step(out, "STOP_COPY", set_state(c, VFIO_DEVICE_STATE_STOP_COPY), 0);
    n = vfu_client_mig_read(c, state, sizeof(state));
    step(out, "stop-copy data", n, n > 0 ? sum(state, (size_t)n) : 0);
    step(out, "STOP", set_state(c, VFIO_DEVICE_STATE_STOP), 0);
    step(out, "RESUMING", set_state(c, VFIO_DEVICE_STATE_RESUMING), 0);
    step(out, "resume data", vfu_client_mig_write(c, state, 3000), 0);
    step(out, "STOP (resumed)", set_state(c, VFIO_DEVICE_STATE_STOP), 0);
    step(out, "RUNNING", set_state(c, VFIO_DEVICE_STATE_RUNNING), 0);

    step(out, "reset", vfu_client_reset(c), 0);
    ret = vfu_client_ioeventfds_install(c, VFU_PCI_DEV_BAR0_REGION_IDX);
    step(out, "ioeventfds", ret, 0);
    v32 = 1;
    step(out, "doorbell", vfu_client_doorbell(c, 0, REL_IOEVENTFD, &v32, 4,
                                              false), 0);
    step(out, "DMA unmap (fd)",
         vfu_client_dma_unmap(c, REL_FD_IOVA, REL_DMA_SIZE, 0), 0);
    if (dma_msg) {
        step(out, "DMA unmap (no fd)",
             vfu_client_dma_unmap(c, REL_MSG_IOVA, REL_DMA_SIZE, 0), 0);
    }
    vfu_client_close(c);
    close(efd[0]);
    close(efd[1]);
}

int
rel_session_diff(const struct rel_session *a, const struct rel_session *b)
{
    int n = a->n > b->n ? a->n : b->n;

    for (int i = 0; i < n; i++) {
        if (i >= a->n || i >= b->n || a->steps[i].ret != b->steps[i].ret ||
            a->steps[i].err != b->steps[i].err ||
            a->steps[i].data != b->steps[i].data) {
            return i;
        }
    }
    return -1;
}

int
rel_session_failed(const struct rel_session *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->steps[i].ret < 0) {
            return i;
        }
    }
    return -1;
}

int
rel_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n - 1;
}

int
rel_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, "vfu-rel") != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}
