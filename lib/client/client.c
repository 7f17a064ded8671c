/*
 * The client library's top (include/vfio-user-client.h): connecting to a
 * device server, where the DMA side (client_dma.c) is plugged into the
 * connection layer (client_conn.c) as the handler of the server's requests,
 * VERSION negotiation, and closing. Below: client_conn.c (messages,
 * requests, raw calls), client_region.c (device and regions),
 * client_dma.c (DMA, dirty logging), client_irq.c (interrupts),
 * client_migration.c (migration), client_ioeventfd.c (io fds, doorbells).
 * Framing comes from tran.c, capability JSON from negotiate.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

/* --- Connection --- */

VFU_EXPORT vfu_client_t *
vfu_client_connect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct vfu_client *c;
    struct vfu_caps caps;
    int err;

    if (path == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    strcpy(addr.sun_path, path);

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->max_xfer = VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE;
    /* The server's DMA_READ / DMA_WRITE go to the DMA side. */
    client_on_request(c, client_dma_request);
    err = tran_rx_init(&c->rx, CLIENT_RX_INITIAL);
    if (err < 0) {
        free(c);
        errno = -err;
        return NULL;
    }
    c->timeout_ms = CLIENT_DEFAULT_TIMEOUT_MS;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 ||
        connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        (err = client_apply_timeouts(c)) < 0) {
        err = errno;
        vfu_client_close(c);
        errno = err;
        return NULL;
    }

    /* Until negotiation, what the spec assumes of a silent server. */
    vfu_caps_defaults(&caps);
    client_set_info(c, 0, 0, &caps);
    return c;
}

/*
 * What our capabilities @json (of @len bytes) announce: the
 * max_data_xfer_size, and whether they ask for a twin socket. 0, or
 * -ENOMEM.
 */
static int
announced(const char *json, size_t len, uint64_t *xfer, bool *twin)
{
    struct vfio_user_version ver = { .major = VFIO_USER_MAJOR_VER };
    uint8_t *payload = malloc(sizeof(ver) + len);
    struct vfu_caps caps;
    uint16_t major, minor;

    *xfer = VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE;
    *twin = false;
    if (payload == NULL) {
        return -ENOMEM;
    }
    memcpy(payload, &ver, sizeof(ver));
    memcpy(payload + sizeof(ver), json, len);
    if (vfu_version_parse(payload, sizeof(ver) + len, &major, &minor,
                          &caps, NULL) == 0) {
        *xfer = caps.max_data_xfer_size;
        *twin = caps.twin_socket;
    }
    free(payload);
    return 0;
}

VFU_EXPORT int
vfu_client_negotiate(vfu_client_t *c, const char *caps_json)
{
    struct vfio_user_version ver = {
        .major = VFIO_USER_MAJOR_VER,
        .minor = VFIO_USER_MINOR_VER,
    };
    struct vfu_caps caps;
    struct tran_msg reply;
    struct iovec iov[2];
    uint64_t our_xfer;
    char *ours = NULL;
    size_t len;
    uint16_t major, minor;
    bool twin;
    int ret;

    if (c == NULL) {
        return fail(-EINVAL);
    }
    if (caps_json == NULL) {
        /* What we can take: a full set of fds, default transfers. */
        vfu_caps_defaults(&caps);
        caps.max_msg_fds = TRAN_MAX_FDS;
        caps.write_multiple = true;
        ours = vfu_caps_format(&caps, &len);
        if (ours == NULL) {
            return fail(-ENOMEM);
        }
        caps_json = ours;
    } else {
        len = strlen(caps_json) + 1;
    }
    ret = announced(caps_json, len, &our_xfer, &twin);
    if (ret < 0 || twin) {
        /* A twin socket is for the raw calls: this library has none. */
        free(ours);
        return fail(ret < 0 ? ret : -EINVAL);
    }
    iov[0] = iov_of(&ver, sizeof(ver));
    iov[1] = iov_of(caps_json, len);
    ret = do_request(c, VFIO_USER_VERSION, iov, 2, NULL, 0, &reply);
    free(ours);
    if (ret < 0) {
        return fail(ret);
    }
    if (reply.nr_fds > 0) {
        tran_msg_close_fds(&reply);
        return fail(-EPROTO);       /* we asked for no twin socket */
    }

    ret = vfu_version_parse(reply.payload, reply.len, &major, &minor, &caps,
                            NULL);
    if (ret < 0) {
        /* A major we do not speak is ENOTSUP; any other fault is theirs. */
        return fail(ret == -ENOTSUP ? ret : -EPROTO);
    }
    if (minor > VFIO_USER_MINOR_VER || caps.twin_socket) {
        /* The server must not go above our minor, nor offer a twin. */
        return fail(-EPROTO);
    }
    client_set_info(c, major, minor, &caps);
    c->max_xfer = our_xfer < CLIENT_MAX_DATA_XFER ? our_xfer
                                                  : CLIENT_MAX_DATA_XFER;
    return 0;
}

VFU_EXPORT void
vfu_client_close(vfu_client_t *c)
{
    if (c == NULL) {
        return;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    tran_rx_fini(&c->rx);
    free(c->dma);
    client_ioeventfds_clear(c, UINT32_MAX);
    free(c->ioefds);
    free(c);
}
