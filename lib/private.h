/*
 * The server context and the interfaces between the library's modules.
 * Modules and what they own:
 *   log.c       logging
 *   tran.c      message framing on the socket (shared with the client)
 *   negotiate.c VERSION capabilities JSON (shared with the client)
 *   ctx.c       context life cycle: create, realize, attach, disconnect
 *   dispatch.c  the request loop: checks each message, calls its handler,
 *               sends the reply
 *   device.c    DEVICE_GET_INFO, DEVICE_RESET
 *   region.c    regions: set-up, GET_REGION_INFO, REGION_READ/WRITE(_MULTI)
 *   pci.c       PCI config space emulation
 * Handlers return 0 or -errno and never call back into dispatch.c.
 */
#ifndef VFU_PRIVATE_H
#define VFU_PRIVATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "libvfio-user.h"
#include "negotiate.h"
#include "tran.h"

/* What we announce in VERSION. */
#define SERVER_MAX_DATA_XFER    VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE
#define SERVER_MAX_MSG_FDS      TRAN_MAX_FDS
/* Largest request: REGION_WRITE of SERVER_MAX_DATA_XFER bytes. */
#define SERVER_MAX_MSG_SIZE     (sizeof(struct vfio_user_header) + \
                                 sizeof(struct vfio_user_region_access) + \
                                 SERVER_MAX_DATA_XFER)
#define SERVER_RX_BUF_SIZE      (SERVER_MAX_MSG_SIZE + 64 * 1024)

struct vfu_region {
    size_t size;                    /* 0: region absent */
    int flags;                      /* VFU_REGION_FLAG_* */
    vfu_region_access_cb_t *cb;
    int fd;                         /* -1: not mappable */
    uint64_t fd_offset;
    struct iovec *mmap_areas;       /* sparse areas; NULL with fd: all of it */
    uint32_t nr_mmap_areas;
};

/* The emulated config space and its per-byte write behaviour. */
struct vfu_pci {
    bool initialized;
    vfu_pci_type_t type;
    size_t cfg_size;                /* 256 or 4096 */
    uint8_t *cfg;                   /* PCI_CFG_SPACE_EXP_SIZE bytes */
    uint8_t *wmask;                 /* bits the client may write */
    uint8_t *w1cmask;               /* bits the client clears by writing 1 */
};

struct vfu_ctx {
    char *sock_path;
    int flags;
    void *pvt;
    vfu_dev_type_t dev_type;
    bool realized;

    int listen_fd;
    int conn_fd;                    /* -1 when no client */
    bool negotiated;
    struct vfu_caps client_caps;
    struct tran_rx rx;

    /* Reply payload scratch: REGION_READ data up to the transfer limit. */
    uint8_t *reply_buf;
    size_t reply_buf_size;

    vfu_log_fn_t *log_fn;
    int log_level;

    vfu_reset_cb_t *reset_cb;

    struct vfu_region regions[VFU_PCI_DEV_NUM_REGIONS];
    struct vfu_pci pci;

    /* Counters, for tests and benchmarks. */
    uint64_t nr_requests;
};

/* A reply under construction by a handler. */
#define REPLY_MAX_IOV 4
struct vfu_reply {
    struct iovec iov[REPLY_MAX_IOV];
    size_t iovcnt;
    int fds[TRAN_MAX_FDS];          /* sent, not owned */
    size_t nr_fds;
};

static inline void
reply_add(struct vfu_reply *reply, void *base, size_t len)
{
    reply->iov[reply->iovcnt].iov_base = base;
    reply->iov[reply->iovcnt].iov_len = len;
    reply->iovcnt++;
}

/* log.c */
#define vfu_log_err(ctx, ...)   vfu_log((ctx), LOG_ERR, __VA_ARGS__)
#define vfu_log_warn(ctx, ...)  vfu_log((ctx), LOG_WARNING, __VA_ARGS__)
#define vfu_log_info(ctx, ...)  vfu_log((ctx), LOG_INFO, __VA_ARGS__)
#define vfu_log_debug(ctx, ...) vfu_log((ctx), LOG_DEBUG, __VA_ARGS__)

/* ctx.c */
/* Ends the client connection: reset(LOST_CONN), close fds, listen again. */
void ctx_disconnect(vfu_ctx_t *ctx);

/* dispatch.c */
/* Serves one message; returns 0, or -ENOTCONN when the socket failed. */
int dispatch_msg(vfu_ctx_t *ctx, struct tran_msg *msg);

/* device.c */
int handle_device_get_info(vfu_ctx_t *ctx, struct tran_msg *msg,
                           struct vfu_reply *reply);
int handle_device_reset(vfu_ctx_t *ctx, struct tran_msg *msg,
                        struct vfu_reply *reply);

/* region.c */
int handle_region_info(vfu_ctx_t *ctx, struct tran_msg *msg,
                       struct vfu_reply *reply);
int handle_region_read(vfu_ctx_t *ctx, struct tran_msg *msg,
                       struct vfu_reply *reply);
int handle_region_write(vfu_ctx_t *ctx, struct tran_msg *msg,
                        struct vfu_reply *reply);
int handle_region_write_multi(vfu_ctx_t *ctx, struct tran_msg *msg,
                              struct vfu_reply *reply);
void regions_free(vfu_ctx_t *ctx);

/* pci.c */
int pci_alloc(vfu_ctx_t *ctx);
void pci_free(vfu_ctx_t *ctx);
/* Recomputes the BAR (or ROM BAR) register for region @idx. */
void pci_region_changed(vfu_ctx_t *ctx, int idx);
/* Config space access of @count bytes at @offset; returns count or -errno. */
ssize_t pci_config_access(vfu_ctx_t *ctx, char *buf, size_t count,
                          uint64_t offset, bool is_write);
/*
 * Whether a config space write would be refused by the emulation (-EPERM,
 * -EINVAL), without doing it; callback-owned bytes are not checked.
 */
int pci_config_check_write(vfu_ctx_t *ctx, const char *buf, size_t count,
                           uint64_t offset);
/* Restores the registers a reset clears (command, status, BARs). */
void pci_reset(vfu_ctx_t *ctx);

#endif /* VFU_PRIVATE_H */
