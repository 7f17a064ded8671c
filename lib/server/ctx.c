/*
 * Context life cycle: creating the listening socket, realizing the device,
 * accepting and negotiating with a client (vfu_attach_ctx), and destroying
 * the context. Dropping a client is disconnect.c's.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "private.h"

/* The big receive buffers every context's connection borrows from. */
static struct tran_pool rx_pool = TRAN_POOL_INIT(SERVER_RX_BUF_SIZE);

/*
 * One fd the process keeps in reserve while any context listens: when
 * accept() fails for want of an fd (EMFILE, ENFILE), it is given up for a
 * moment to accept the client and close it at once. The client learns
 * that it was turned away instead of waiting in the backlog, and the
 * listening socket stops being readable (a poll loop would spin on it).
 */
static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static int reserve_fd = -1;
static unsigned reserve_users;

static void
reserve_take(void)
{
    pthread_mutex_lock(&reserve_lock);
    reserve_users++;
    if (reserve_fd < 0) {
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    pthread_mutex_unlock(&reserve_lock);
}

static void
reserve_drop(void)
{
    pthread_mutex_lock(&reserve_lock);
    if (--reserve_users == 0 && reserve_fd >= 0) {
        close(reserve_fd);
        reserve_fd = -1;
    }
    pthread_mutex_unlock(&reserve_lock);
}

/* No fd for the client waiting on @listen_fd: turn it away. */
static void
turn_away(int listen_fd)
{
    int fd;

    pthread_mutex_lock(&reserve_lock);
    if (reserve_fd >= 0) {
        close(reserve_fd);
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            close(fd);
        }
    }
    /* Another thread may have taken the fd meanwhile: then next time. */
    reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pthread_mutex_unlock(&reserve_lock);
}

/* A socket bound to @path and listening; -errno. */
static int
bind_listen(const char *path, bool nonblock)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
                (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        return -errno;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, 8) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/*
 * The socket file appears at bind(), before listen(): a client that waits
 * for the file (a script starting the VMM) could connect in between and be
 * refused. So the socket is bound under a temporary name beside @path and
 * linked into place once it listens (link() keeps EADDRINUSE for a path
 * that exists). Where links are not possible, @path is bound directly.
 */
static int
listen_unix(const char *path, bool nonblock)
{
    static unsigned seq;
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd, n;

    if (strlen(path) >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    n = snprintf(tmp, sizeof(tmp), "%s.%d.%u~", path, (int)getpid(),
                 __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        return bind_listen(path, nonblock);
    }
    fd = bind_listen(tmp, nonblock);
    if (fd < 0) {
        return fd == -EADDRINUSE ? fd : bind_listen(path, nonblock);
    }
    if (link(tmp, path) < 0) {
        int err = errno;
        unlink(tmp);
        close(fd);
        if (err == EEXIST) {
            return -EADDRINUSE;
        }
        return bind_listen(path, nonblock);
    }
    unlink(tmp);
    return fd;
}

VFU_EXPORT vfu_ctx_t *
vfu_create_ctx(vfu_trans_t trans, const char *path, int flags, void *pvt,
               vfu_dev_type_t dev_type)
{
    vfu_ctx_t *ctx;
    int err;

    if ((trans != VFU_TRANS_SOCK && trans != VFU_TRANS_PIPE) ||
        (trans == VFU_TRANS_SOCK && path == NULL) ||
        (flags & ~LIBVFIO_USER_FLAG_ATTACH_NB)) {
        errno = EINVAL;
        return NULL;
    }
    if (dev_type != VFU_DEV_TYPE_PCI) {
        errno = ENOTSUP;            /* as the original: PCI only */
        return NULL;
    }
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return NULL;
    }
    ctx->flags = flags;
    ctx->pvt = pvt;
    ctx->dev_type = dev_type;
    ctx->trans = trans;
    ctx->conn_fd = -1;
    ctx->out_fd = -1;
    ctx->listen_fd = -1;
    ctx->twin_fd = -1;
    ctx->irqs.intx_unmask_fd = -1;  /* the failure path below closes it */
    ctx->deferred_tail = &ctx->deferred;
    ctx->log_level = LOG_ERR;
    for (int i = 0; i < VFU_PCI_DEV_NUM_REGIONS; i++) {
        ctx->regions[i].fd = -1;
    }
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].flags = VFU_REGION_FLAG_RW;
    ctx->sock_path = strdup(path != NULL ? path : "");
    if (ctx->sock_path == NULL) {
        err = ENOMEM;
        goto fail;
    }
    if ((err = -tran_rx_init_pooled(&ctx->rx, SERVER_RX_SMALL_SIZE,
                                    &rx_pool)) != 0 ||
        (err = -pci_alloc(ctx)) != 0 || (err = -irq_init(ctx)) != 0) {
        goto fail;
    }
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].size = ctx->pci.cfg_size;

    /*
     * An empty path: a device that only builds its config space (no client
     * will come). A pipe has nothing to listen on: vfu_attach_ctx() takes
     * standard input and output.
     */
    if (trans == VFU_TRANS_SOCK && *path != '\0') {
        ctx->listen_fd = listen_unix(path, flags & LIBVFIO_USER_FLAG_ATTACH_NB);
        if (ctx->listen_fd < 0) {
            err = -ctx->listen_fd;
            ctx->listen_fd = -1;
            goto fail;
        }
        reserve_take();
    }
    return ctx;

fail:
    tran_rx_fini(&ctx->rx);
    irq_free(ctx);
    pci_free(ctx);
    free(ctx->sock_path);
    free(ctx);
    errno = err;
    return NULL;
}

VFU_EXPORT int
vfu_realize_ctx(vfu_ctx_t *ctx)
{
    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].size = ctx->pci.cfg_size;
    for (int i = 0; i <= VFU_PCI_DEV_ROM_REGION_IDX; i++) {
        pci_region_changed(ctx, i);
    }
    if (caps_realize(ctx) < 0) {
        errno = EINVAL;
        return -1;
    }
    ctx->realized = true;
    return 0;
}

VFU_EXPORT void *
vfu_get_private(vfu_ctx_t *ctx)
{
    if (ctx == NULL) {
        errno = EINVAL;
        return NULL;
    }
    return ctx->pvt;
}

VFU_EXPORT int
vfu_get_poll_fd(vfu_ctx_t *ctx)
{
    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (ctx->conn_fd < 0 && ctx->listen_fd < 0) {
        errno = ENOTCONN;           /* no client yet (pipe) or none to come */
        return -1;
    }
    return ctx->conn_fd >= 0 ? ctx->conn_fd : ctx->listen_fd;
}

static uint16_t
min_u16(uint16_t a, uint16_t b)
{
    return a < b ? a : b;
}

/*
 * Answers the client's VERSION with ours: the same major, the lower minor,
 * and the capabilities this server supports.
 */
static int
negotiate(vfu_ctx_t *ctx, struct tran_msg *msg)
{
    struct vfio_user_version ver = { .major = VFIO_USER_MAJOR_VER };
    struct vfio_user_header hdr;
    struct vfu_caps ours;
    struct iovec iov[2];
    const char *why = NULL;
    uint16_t major, minor;
    int twin[2] = { -1, -1 };
    size_t json_len;
    char *json;
    int ret = 0;

    if (msg->oversized) {
        vfu_log_err(ctx, "VERSION of %u bytes refused", msg->hdr.msg_size);
        ret = -EINVAL;
        goto fail;
    }
    if (msg->malformed || msg->fds_lost ||
        msg->hdr.cmd != VFIO_USER_VERSION ||
        tran_hdr_type(&msg->hdr) != VFIO_USER_F_TYPE_COMMAND ||
        tran_hdr_no_reply(&msg->hdr)) {
        vfu_log_err(ctx, "first message is not a VERSION command (cmd %u)",
                    msg->hdr.cmd);
        ret = -EINVAL;
        goto fail;
    }
    if (msg->nr_fds > 0) {
        vfu_log_err(ctx, "VERSION carried %zu fds", msg->nr_fds);
        ret = -EINVAL;
        goto fail;
    }
    ret = vfu_version_parse(msg->payload, msg->len, &major, &minor,
                            &ctx->client_caps, &why);
    if (ret < 0) {
        /* Whatever is wrong with it (a major we lack too): EINVAL. */
        vfu_log_err(ctx, "bad VERSION: %s", why);
        ret = -EINVAL;
        goto fail;
    }

    vfu_caps_defaults(&ours);
    ours.max_msg_fds = SERVER_MAX_MSG_FDS;
    /*
     * A reply may only lower what the client proposed (QEMU refuses the
     * device otherwise); the device's max_regions is enforced either way.
     */
    ours.max_dma_maps = dma_max_regions(ctx);
    if (ours.max_dma_maps > ctx->client_caps.max_dma_maps) {
        ours.max_dma_maps = ctx->client_caps.max_dma_maps;
    }
    ours.pgsizes = SERVER_DMA_PGSIZE;
    ours.max_data_xfer_size = SERVER_MAX_DATA_XFER;
    ours.write_multiple = true;
    if (ctx->migr != NULL) {
        /* Dirty pages in 4 KiB units, a REPORT bitmap up to a transfer. */
        ours.migration = true;
        ours.mig_pgsize = SERVER_DMA_PGSIZE;
        ours.mig_max_bitmap_size = SERVER_MAX_DATA_XFER;
    }
    if (ctx->client_caps.twin_socket) {
        /* Our DMA requests get a socket of their own: see dma_msg.c. */
        if ((ctx->twin_rx.buf == NULL &&
             (ret = tran_rx_init_pooled(&ctx->twin_rx, SERVER_RX_SMALL_SIZE,
                                        &rx_pool)) < 0) ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, twin) < 0) {
            ret = ret < 0 ? ret : -errno;
            goto fail;
        }
        ours.twin_socket = true;
        ours.twin_socket_fd_index = 0;
    }
    json = vfu_caps_format(&ours, &json_len);
    if (json == NULL) {
        ret = -ENOMEM;
        goto fail;
    }
    ver.minor = min_u16(minor, VFIO_USER_MINOR_VER);
    tran_hdr_init(&hdr, msg->hdr.msg_id, VFIO_USER_VERSION,
                  VFIO_USER_F_TYPE_REPLY, false);
    iov[0] = (struct iovec){ &ver, sizeof(ver) };
    iov[1] = (struct iovec){ json, json_len };
    ret = tran_send(ctx->out_fd, server_send_deadline(), &hdr, iov, 2, &twin[1], twin[1] >= 0);
    free(json);
    if (twin[1] >= 0) {
        close(twin[1]);             /* the client's end is on its way */
        ctx->twin_fd = twin[0];
    }
    if (ret < 0) {
        return ret;
    }
    vfu_log_info(ctx, "client negotiated version %u.%u, max_data_xfer_size %"
                 PRIu64, major, ver.minor, ctx->client_caps.max_data_xfer_size);
    return 0;

fail:
    if (twin[0] >= 0) {
        close(twin[0]);
        close(twin[1]);
    }
    (void)tran_send_error(ctx->out_fd, server_send_deadline(), &msg->hdr,
                          -ret);
    return ret;
}

/* Waits for the client's VERSION and answers it; -EAGAIN if not there yet. */
static int
attach_negotiate(vfu_ctx_t *ctx)
{
    bool block = !(ctx->flags & LIBVFIO_USER_FLAG_ATTACH_NB);
    struct tran_msg msg;
    int ret;

    while (tran_rx_next(&ctx->rx, &msg) == 0) {
        ssize_t n = tran_rx_fill(&ctx->rx, ctx->conn_fd,
                                 block ? TRAN_RX_BLOCK : 0);
        if (n < 0) {
            return (int)n;
        }
    }
    ret = negotiate(ctx, &msg);
    tran_msg_close_fds(&msg);
    return ret;
}

/*
 * The next client: accepted on the listening socket, or standard input and
 * output for a pipe (once: a pipe has one peer). 0 or -errno.
 */
static int
accept_client(vfu_ctx_t *ctx)
{
    if (ctx->trans == VFU_TRANS_PIPE) {
        if (ctx->pipe_used) {
            return -ENOTCONN;
        }
        ctx->pipe_used = true;
        ctx->conn_fd = STDIN_FILENO;
        ctx->out_fd = STDOUT_FILENO;
    } else if (ctx->listen_fd < 0) {
        return -ENOTCONN;           /* made without a path: no clients */
    } else {
        ctx->conn_fd = accept4(ctx->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (ctx->conn_fd < 0) {
            int err = errno;
            if (err == EMFILE || err == ENFILE) {
                vfu_log_err(ctx, "no fd for a client (%s): turned away",
                            strerror(err));
                turn_away(ctx->listen_fd);
            }
            return -err;
        }
        ctx->out_fd = ctx->conn_fd;
    }
    tran_rx_reset(&ctx->rx);
    /* Until negotiated, a VERSION is all that may come. */
    ctx->rx.max_msg = VERSION_MAX_MSG_SIZE;
    return 0;
}

VFU_EXPORT int
vfu_attach_ctx(vfu_ctx_t *ctx)
{
    int ret;

    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (!ctx->realized) {
        vfu_log_err(ctx, "vfu_attach_ctx before vfu_realize_ctx");
        errno = EINVAL;
        return -1;
    }
    if (ctx->negotiated) {
        errno = EISCONN;
        return -1;
    }
    if (ctx->conn_fd < 0) {
        ret = accept_client(ctx);
        if (ret < 0) {
            errno = -ret;   /* EAGAIN when non-blocking and nobody there */
            return -1;
        }
    }
    ret = attach_negotiate(ctx);
    if (ret == -EAGAIN) {
        errno = EAGAIN;
        return -1;
    }
    if (ret < 0) {
        /* This client is gone; the listener stays for the next one. */
        ctx_close_conn(ctx);
        if (ctx->twin_fd >= 0) {
            close(ctx->twin_fd);
            ctx->twin_fd = -1;
        }
        tran_rx_reset(&ctx->rx);
        errno = ret == -ENOTCONN ? ENOTCONN : -ret;
        return -1;
    }
    ctx->negotiated = true;
    ctx->rx.max_msg = SERVER_MAX_MSG_SIZE;
    tran_rx_trim(&ctx->rx);     /* a big VERSION's buffer goes back */
    return 0;
}

VFU_EXPORT void
vfu_destroy_ctx(vfu_ctx_t *ctx)
{
    if (ctx == NULL) {
        return;
    }
    /* Its owner ends it: no quiesce callback (as the original documents). */
    (void)ctx_disconnect(ctx, false);
    if (ctx->listen_fd >= 0) {
        close(ctx->listen_fd);
        unlink(ctx->sock_path);
        reserve_drop();
    }
    tran_rx_fini(&ctx->rx);
    tran_rx_fini(&ctx->twin_rx);
    dma_free(ctx);
    migration_free(ctx);
    regions_free(ctx);
    ioeventfd_free(ctx);
    irq_free(ctx);
    pci_free(ctx);
    free(ctx->sock_path);
    free(ctx);
}
