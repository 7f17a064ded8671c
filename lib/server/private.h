/*
 * The server context and the interfaces between the library's files.
 * The files and what they own, from the top down; each calls only files
 * below it (and lib/common: tran.c framing, negotiate.c VERSION JSON),
 * never one above (docs/architecture.md draws the layers,
 * test/layout/check_graph.py checks them):
 *   ctx.c        context life cycle: create, realize, attach, destroy
 *   dma_msg.c    vfu_sgl_read/write by DMA_READ / DMA_WRITE messages,
 *                built on dispatch_await()
 *   dispatch.c   the request loop: checks each message, calls its handler,
 *                sends the reply; requests waiting for a quiesce;
 *                dispatch_await(), serving the client until a reply comes
 *   disconnect.c connection teardown, inside the lost-connection reset
 *   device.c     DEVICE_GET_INFO, DEVICE_RESET
 *   region.c     regions: set-up, GET_REGION_INFO, REGION_READ/WRITE(_MULTI)
 *   reset.c      the reset orchestrator: FLR and soft reset asked by a
 *                config write, DEVICE_RESET, lost connection
 *   pci_access.c the config space access path (emulated bytes vs the
 *                config region callback); a write returns the reset it
 *                asks for
 *   feature.c    DEVICE_FEATURE: parsing, and routing to the DMA logging
 *                (dma.c) and migration features
 *   irq.c        interrupts: counts, the client's eventfds, masks, pending
 *                interrupts and the INTx level; GET_IRQ_INFO, SET_IRQS,
 *                vfu_irq_trigger(); reads MSI/MSI-X state from caps.c
 *   dma_sgl.c    scatter/gather lists on the DMA map table
 *   migration.c  live migration: the vfio v2 state machine and its paths,
 *                the migration features of DEVICE_FEATURE, MIG_DATA_READ /
 *                MIG_DATA_WRITE
 *   dma.c        the DMA map table: DMA_MAP/UNMAP, mappings of client
 *                memory, what dirty logging covers (its layout: dma_table.h)
 *   pci.c        config space's header: ids, BAR sizing, INTx pin/status
 *   caps.c       PCI capabilities: the list and its two chains, placement,
 *                their register table entries, MSI/MSI-X enables and masks
 *   ioeventfd.c  the device's ioeventfds, GET_REGION_IO_FDS
 *   device_cb.c  the device's quiesce and reset callbacks, and the only
 *                calls into them
 *   cap_kinds.c  each kind of capability: size, registers, write behaviour
 *                (PM, MSI, MSI-X, PCI Express with FLR, DSN, vendor)
 *   pci_table.c  config space storage and the per-byte register table,
 *                typed register access in pci_regs.h
 *   dirty.c      the dirty-page log: page ranges with a bitmap each
 *   dma_index.c  the DMA table's index by address, a B+ tree (dma_index.h)
 *   log.c        logging through the device's function
 * Handlers return 0 or -errno.
 */
#ifndef VFU_PRIVATE_H
#define VFU_PRIVATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "libvfio-user.h"
#include "negotiate.h"
#include "pci_regs.h"
#include "tran.h"

/*
 * How many DMA-by-message waits may nest, and how many requests (and
 * payload bytes in all) may be set aside meanwhile: what one context can be
 * made to hold by a client that keeps sending while we wait.
 */
#define MAX_NEST_DEPTH          4
#define MAX_DEFERRED_MSGS       1024
#define MAX_DEFERRED_BYTES      (4u << 20)

/* Late DMA replies we recognise (to drop them): see vfu_ctx.abandoned. */
#define MAX_ABANDONED_DMA       8

/*
 * One of our requests to the client (DMA_READ / DMA_WRITE) awaiting its
 * reply, for dispatch_await(). Waits nest (a request served during one may
 * start another), and the client may answer them in any order, so each
 * reply is matched (msg_id and command) against all of them.
 */
struct dispatch_wait {
    uint16_t id;
    uint16_t cmd;
    /*
     * Checks the reply @msg to this request and takes its data: 0 or
     * -errno, the wait's result. Not called for a reply too short or too
     * long to be one (EPROTO, EMSGSIZE).
     */
    int (*take)(vfu_ctx_t *ctx, struct dispatch_wait *w,
                const struct tran_msg *msg);
    void *arg;                      /* the requester's, for @take */
    bool done;
    int result;                     /* once done: 0 or -errno */
};

/* A client request set aside during a DMA wait, its payload copied. */
struct deferred_msg {
    struct deferred_msg *next;
    struct tran_msg msg;
    uint8_t data[];
};

/* What we announce in VERSION. */
#define SERVER_MAX_DATA_XFER    VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE
#define SERVER_MAX_MSG_FDS      TRAN_MAX_FDS
#define SERVER_MAX_DMA_MAPS     65535   /* max_dma_maps */
#define SERVER_DMA_PGSIZE       4096    /* pgsizes: DMA_MAP alignment */
/*
 * How long the client has to answer our DMA request, and to make room for
 * what we send it (a reply, a DMA request; tran_send()'s deadline): a
 * client that stops reading is disconnected then instead of holding the
 * thread, and every other device that thread serves, for good.
 */
#define SERVER_PEER_TIMEOUT_MS  20000
static inline int64_t
server_send_deadline(void)
{
    return vfu_now_ms() + SERVER_PEER_TIMEOUT_MS;
}

/* Largest request: REGION_WRITE of SERVER_MAX_DATA_XFER bytes. */
#define SERVER_MAX_MSG_SIZE     (sizeof(struct vfio_user_header) + \
                                 sizeof(struct vfio_user_region_access) + \
                                 SERVER_MAX_DATA_XFER)
/* Largest VERSION: major, minor and the JSON with its NUL. */
#define VERSION_MAX_MSG_SIZE    (sizeof(struct vfio_user_header) + \
                                 sizeof(struct vfio_user_version) + \
                                 VFU_CAPS_MAX_JSON + 1)
#define REPLY_BUF_OFFSET        (64 - sizeof(struct vfio_user_region_access))
/* Reply payload room: REGION_READ data up to the transfer limit. */
#define REPLY_BUF_SIZE          (SERVER_MAX_DATA_XFER + \
                                 sizeof(struct vfio_user_region_access))
/*
 * Receive buffers: each connection has a small one for ordinary messages;
 * a larger message borrows one of the process's big buffers (the largest
 * request and room for the posted writes behind it) until it is served.
 */
#define SERVER_RX_SMALL_SIZE    2048
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

/* A capability the device added (caps.c). */
struct vfu_cap {
    uint16_t id;                    /* PCI_CAP_ID_* or PCI_EXT_CAP_ID_* */
    bool ext;                       /* in the extended chain */
    int flags;                      /* VFU_CAP_FLAG_* */
    size_t off;
    size_t size;                    /* bytes it occupies in config space */
};

/*
 * The emulated config space: cfg has cfg_size bytes, each attribute array
 * (wmask to emul) attr_size, one entry per config space byte (one block
 * for all): together they are the register table every client write goes
 * through (see docs/pci.md). attr_size is 256 until an extended capability
 * is added; past it every attribute is 0.
 */
struct vfu_pci {
    bool initialized;
    vfu_pci_type_t type;
    size_t cfg_size;                /* 256 or 4096 */
    size_t attr_size;               /* 256, or cfg_size */
    uint8_t *cfg;                   /* what the client reads */
    uint8_t *wmask;                 /* bits the client may write */
    uint8_t *w1cmask;               /* bits the client clears by writing 1 */
    uint8_t *rstval;                /* value of writable bits after reset */
    uint8_t *sticky;                /* bits no reset changes */
    uint8_t *flrkeep;               /* bits a function-level reset keeps */
    uint8_t *emul;                  /* 1: emulated; 0: the device's (callback) */

    struct vfu_cap *caps;           /* in the order added = chain order */
    size_t nr_caps;
};

/* One interrupt of an index: INTx, an MSI or MSI-X vector, ERR, REQ. */
struct vfu_irq_vec {
    int efd;                        /* trigger eventfd; -1: none */
    bool masked;                    /* by the client (INTx: or automasked) */
    bool pending;                   /* raised, not yet signalled */
};

/* Interrupt state (irq.c); indexes are enum vfu_dev_irq_type. */
struct vfu_irqs {
    uint32_t count[VFU_DEV_NUM_IRQS];
    struct vfu_irq_vec *vecs[VFU_DEV_NUM_IRQS];     /* count[] entries */
    vfu_dev_irq_state_cb_t *state_cb[VFU_DEV_NUM_IRQS];
    int enabled;                    /* INTx, MSI or MSI-X in use, or -1 */
    int intx_unmask_fd;             /* signalled by the client to unmask */
    bool intx_level;                /* INTx asserted: the status bit */
    unsigned nr_pending;            /* vectors with .pending set */
};

struct vfu_ctx {
    char *sock_path;
    int flags;
    void *pvt;
    vfu_dev_type_t dev_type;
    bool realized;

    int listen_fd;
    int conn_fd;                    /* -1 when no client; read from */
    int out_fd;                     /* written to: conn_fd, or stdout (pipe) */
    vfu_trans_t trans;
    bool pipe_used;                 /* VFU_TRANS_PIPE: its one client came */
    bool negotiated;
    struct vfu_caps client_caps;
    struct tran_rx rx;

    /*
     * Reply payload room of the request being served (REPLY_BUF_SIZE
     * bytes), lent by dispatch_msg() from a process-wide pool for the time
     * of the request; NULL between requests. It starts REPLY_BUF_OFFSET
     * bytes into a page so read data begins 64 bytes into a page: copies
     * whose destination sits a few bytes past the source's page offset run
     * many times slower on some CPUs, and device memory is usually page
     * aligned.
     */
    uint8_t *reply_buf;

    vfu_log_fn_t *log_fn;
    int log_level;

    vfu_reset_cb_t *reset_cb;

    /*
     * Quiesce: a request that needs the device quiet waits, as
     * quiesce_pending, until the device calls vfu_device_quiesced().
     */
    vfu_device_quiesce_cb_t *quiesce_cb;
    bool quiesced;                  /* for the request being served */
    bool quiesce_pending;
    bool disconnecting;             /* the client left; the device quiesces */
    struct tran_msg pending_msg;    /* its payload copied to pending_data */
    uint8_t *pending_data;

    /* Server-to-client requests (dma_msg.c) and their waits (dispatch.c). */
    uint16_t next_msg_id;
    unsigned nest_depth;            /* DMA waits in progress */
    unsigned handler_depth;         /* request handlers running */
    bool exact_reads;               /* a DMA wait outside any request */
    struct dispatch_wait *waits[MAX_NEST_DEPTH]; /* outermost first */
    struct deferred_msg *deferred;  /* set aside during a DMA wait */
    struct deferred_msg **deferred_tail;
    size_t nr_deferred;
    size_t deferred_bytes;          /* their payloads, in all */
    int twin_fd;                    /* -1 unless twin-socket mode */
    struct tran_rx twin_rx;
    bool conn_broken;               /* the link failed inside a DMA wait */
    /*
     * Our DMA requests whose wait ended without their reply (a timeout, a
     * receive error): a reply that comes later is dropped quietly, not
     * answered as a message where a command belongs.
     */
    struct { uint16_t id, cmd; } abandoned[MAX_ABANDONED_DMA];
    unsigned nr_abandoned;

    struct vfu_region regions[VFU_PCI_DEV_NUM_REGIONS];
    struct vfu_pci pci;
    struct dma_table *dma;          /* dma.c; NULL until first needed */
    struct vfu_irqs irqs;
    struct vfu_migration *migr;     /* migration.c; NULL: not migratable */
    struct ioeventfd_table *ioeventfds; /* ioeventfd.c; NULL: none yet */

    /* Counters, for tests and benchmarks. */
    uint64_t nr_requests;
};

/*
 * A handler's answer when the request must wait for the device to quiesce
 * (device_quiesce()): not an errno, so it passes through code that hands
 * negative results up. The handler has changed nothing; the dispatcher
 * keeps the message and runs the handler again once the device is quiet.
 */
#define HANDLER_PENDING (-4096)

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

/* disconnect.c */
/*
 * The client is gone: the lost-connection reset (reset_lost_conn(): the
 * device quiesces, @quiesce_first: not when it is already quiet, nor when
 * the context is destroyed), with the connection's state dropped in it.
 * 0 when done, or -EBUSY when the device quiesces later and
 * vfu_device_quiesced() is to finish it.
 */
int ctx_disconnect(vfu_ctx_t *ctx, bool quiesce_first);
/* Closes the connection's fds; standard input and output stay open. */
void ctx_close_conn(vfu_ctx_t *ctx);

/* dispatch.c */
/*
 * Serves one message; returns 0, -EBUSY when it now waits for the device to
 * quiesce (nothing more may be served until then), or -ENOTCONN when the
 * socket failed.
 */
int dispatch_msg(vfu_ctx_t *ctx, struct tran_msg *msg);
/*
 * Serves the client until the reply to our request @w (sent) arrives, or
 * @timeout_ms passes: 0 or -errno as @w->take said, -ETIMEDOUT, or
 * -ENOTCONN. A wait that ends without its reply has the reply dropped
 * when it comes.
 */
int dispatch_await(vfu_ctx_t *ctx, struct dispatch_wait *w, int timeout_ms);

/* dma_sgl.c */
/* Where the memory of a scatter/gather entry is, for copying it. */
struct dma_sg_where {
    uint64_t iova;
    size_t len;
    void *vaddr;                    /* our mapping of its first byte, or NULL */
    int fd;                         /* or, for file I/O, the file (else -1) */
    uint64_t file_offset;           /* of its first byte in that file */
};
/*
 * The region behind a scatter/gather entry: 0 with *where filled in (a
 * region reachable only by message has neither vaddr nor fd); -ENOENT
 * when the region was unmapped since the entry was made; -EACCES when the
 * client did not grant read (write) access.
 */
int dma_sg_lookup(vfu_ctx_t *ctx, const dma_sg_t *sg, bool is_write,
                  struct dma_sg_where *where);
/* Whether [iova, iova + len) is mapped (0), not all (-ENOENT), or -EACCES. */
int dma_range_check(vfu_ctx_t *ctx, uint64_t iova, size_t len, bool is_write);

/* dma.c */
/* Records a device write for dirty logging; nothing unless logging. */
void dma_mark_dirty(vfu_ctx_t *ctx, uint64_t iova, size_t len);
/*
 * Adds a region (the checks of DMA_MAP; @fd is mapped, not kept) and calls
 * the register callback; removes one that matches exactly (-ENOENT
 * otherwise) after the unregister callback. 0 or -errno.
 */
int dma_map(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd,
            uint64_t offset, uint32_t prot);
/*
 * dma_map() of a region the client gave for file I/O
 * (VFIO_USER_F_DMA_REGION_FILE_IO): not mapped; a duplicate of @fd (a
 * regular file or block device, opened for the access @prot grants) is
 * kept for pread/pwrite until the region goes.
 */
int dma_map_file_io(vfu_ctx_t *ctx, uint64_t iova, uint64_t size, int fd,
                    uint64_t offset, uint32_t prot);
int dma_unmap(vfu_ctx_t *ctx, uint64_t iova, uint64_t size);
/*
 * The part of a file mapped for a region at @offset of @size bytes
 * (@offset + @size <= INT64_MAX): from @offset rounded down to @blksize (a
 * power of two, at most 1 GiB) to the end rounded up, but not past
 * @file_size unless the region itself goes there (UINT64_MAX: no bound).
 */
void dma_map_span(uint64_t offset, uint64_t size, uint64_t blksize,
                  uint64_t file_size, uint64_t *start, uint64_t *len);
size_t dma_nr_maps(vfu_ctx_t *ctx);
/* The most regions the device takes: its max_regions, announced in VERSION. */
size_t dma_max_regions(vfu_ctx_t *ctx);
/* Unregisters and unmaps every region (client gone); logging stays. */
void dma_remove_all(vfu_ctx_t *ctx);
/* dma_remove_all() without callbacks, stops logging, frees the table. */
void dma_free(vfu_ctx_t *ctx);
/*
 * Dirty logging. Start: *page_size in is the client's hint (a power of
 * two), out the page size chosen; no ranges logs every mapping; -EBUSY
 * when already logging, -EINVAL for bad ranges, -E2BIG past
 * DIRTY_MAX_PAGES.
 * Report: ORs into @bitmap (zeroed by the caller, one bit per @page_size
 * from @iova) the pages written in [iova, iova + length) and clears those
 * the range covers whole; -EINVAL when not logging or arguments are bad.
 */
int dma_log_start(vfu_ctx_t *ctx, uint64_t *page_size,
                  const struct vfio_user_device_feature_dma_logging_range *ranges,
                  uint32_t nr);
void dma_log_stop(vfu_ctx_t *ctx);
bool dma_logging(vfu_ctx_t *ctx);
int dma_log_report(vfu_ctx_t *ctx, uint64_t iova, uint64_t length,
                   uint64_t page_size, uint64_t *bitmap);

/* dirty.c: page ranges with a bit per page written, at one page size. */
#define DIRTY_MAX_PAGES (1ull << 31)    /* a 256 MiB bitmap in all */
struct dirty_log;
struct dirty_log *dirty_new(uint64_t pgsize);
uint64_t dirty_page_size(const struct dirty_log *log);
void dirty_free(struct dirty_log *log);
/* Logs [iova, iova + len) too (len > 0, no wrap); -ENOMEM or -E2BIG. */
int dirty_cover(struct dirty_log *log, uint64_t iova, uint64_t len);
/* Records writes to [iova, iova + len); what is not covered is ignored. */
void dirty_mark(struct dirty_log *log, uint64_t iova, uint64_t len);
/* dma_log_report() on checked arguments. */
void dirty_report(struct dirty_log *log, uint64_t iova, uint64_t len,
                  uint64_t page_size, uint64_t *bitmap);

int handle_dma_map(vfu_ctx_t *ctx, struct tran_msg *msg,
                   struct vfu_reply *reply);
int handle_dma_unmap(vfu_ctx_t *ctx, struct tran_msg *msg,
                     struct vfu_reply *reply);

/* feature.c */
int handle_device_feature(vfu_ctx_t *ctx, struct tran_msg *msg,
                          struct vfu_reply *reply);

/* device_cb.c */
/*
 * Asks the device to quiesce before a request that needs it (DMA map
 * changes, resets, migration state changes). 0 when it is quiet (or has no
 * quiesce callback), HANDLER_PENDING when it will call vfu_device_quiesced()
 * later, -errno when it failed.
 */
int device_quiesce(vfu_ctx_t *ctx);
/* Calls the device's reset callback (if any); 0, or -errno it failed with. */
int device_call_reset(vfu_ctx_t *ctx, vfu_reset_type_t type);

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
/*
 * A config space access as REGION_READ / REGION_WRITE make it: the access
 * path (pci_config_access()), then the reset the write asks for, if any
 * (reset_function()). Returns @count or -errno.
 */
ssize_t region_config_access(vfu_ctx_t *ctx, char *buf, size_t count,
                             uint64_t offset, bool is_write);

/* pci_table.c */
/* Allocates the storage and register table (256 bytes), all zero; 0 or
 * -ENOMEM. */
int pci_table_alloc(vfu_ctx_t *ctx);
void pci_table_free(vfu_ctx_t *ctx);
/* Resizes the tables, keeping their contents (the arrays move); -ENOMEM. */
int pci_table_resize(vfu_ctx_t *ctx, size_t cfg_size, size_t attr_size);
/* Attribute arrays for all of config space (extended capabilities); -ENOMEM. */
int pci_attr_full(vfu_ctx_t *ctx);
/* Whether config space byte @off is emulated (0 past the attributes). */
static inline bool
pci_byte_emulated(const vfu_ctx_t *ctx, size_t off)
{
    return off < ctx->pci.attr_size && ctx->pci.emul[off] != 0;
}
/* What a reset of config space keeps (see pci_reset_config()). */
enum pci_reset_kind {
    PCI_RESET_DEVICE,   /* DEVICE_RESET: everything but sticky bits */
    PCI_RESET_FLR,      /* function-level reset: also keeps link settings */
    PCI_RESET_SOFT,     /* D3hot to D0 without No_Soft_Reset */
};
/* Returns every writable bit to its reset value, keeping what @kind keeps. */
void pci_reset_config(vfu_ctx_t *ctx, enum pci_reset_kind kind);
/* pci_reset_config(ctx, PCI_RESET_DEVICE). */
void pci_reset(vfu_ctx_t *ctx);

/* pci.c */
/* Config space with its header (no capabilities yet); 0 or -ENOMEM. */
int pci_alloc(vfu_ctx_t *ctx);
/* Frees config space and its capabilities. */
void pci_free(vfu_ctx_t *ctx);
/* Recomputes the BAR (or ROM BAR) register for region @idx. */
void pci_region_changed(vfu_ctx_t *ctx, int idx);
/* INTx, for the interrupt code: pin A or none; the status bit. */
void pci_set_intx_pin(vfu_ctx_t *ctx, bool has_intx);
void pci_set_intx_status(vfu_ctx_t *ctx, bool asserted);

/* pci_access.c */
struct caps_pending;
/*
 * Config space access of @count bytes at @offset; returns count or -errno.
 * A write that asks for a reset (*@asks, zeroed first) has quiesced the
 * device and is written; the caller hands @asks to reset_function().
 */
ssize_t pci_config_access(vfu_ctx_t *ctx, char *buf, size_t count,
                          uint64_t offset, bool is_write,
                          struct caps_pending *asks);
/*
 * Whether a config space write would be refused by the emulation (-EPERM,
 * -EINVAL), without doing it; callback-owned bytes are not checked.
 */
int pci_config_check_write(vfu_ctx_t *ctx, const char *buf, size_t count,
                           uint64_t offset);

/* irq.c */
/* Default counts (one ERR, one REQ) and no eventfds; 0 or -ENOMEM. */
int irq_init(vfu_ctx_t *ctx);
/* Closes every eventfd and forgets masks, pending interrupts, INTx level. */
void irq_reset(vfu_ctx_t *ctx);
void irq_free(vfu_ctx_t *ctx);
int handle_irq_info(vfu_ctx_t *ctx, struct tran_msg *msg,
                    struct vfu_reply *reply);
int handle_set_irqs(vfu_ctx_t *ctx, struct tran_msg *msg,
                    struct vfu_reply *reply);
/* After a config space write: delivers what enables and masks held back. */
void irq_config_written(vfu_ctx_t *ctx);
/*
 * Takes in an INTx unmask the client signalled on its unmask eventfd;
 * nothing without one (a hot path looks at irqs.intx_unmask_fd first).
 */
void irq_poll(vfu_ctx_t *ctx);

/* migration.c */
/*
 * DEVICE_FEATURE for the migration features, called by feature.c once the
 * common rules are checked (@req is the request's head, copied out): which
 * operations the feature has here (0: not offered), and the GET / SET.
 */
uint32_t migration_feature_ops(vfu_ctx_t *ctx, uint32_t feature);
int migration_feature(vfu_ctx_t *ctx, struct tran_msg *msg,
                      struct vfio_user_device_feature *req,
                      struct vfu_reply *reply);
int handle_mig_data_read(vfu_ctx_t *ctx, struct tran_msg *msg,
                         struct vfu_reply *reply);
int handle_mig_data_write(vfu_ctx_t *ctx, struct tran_msg *msg,
                          struct vfu_reply *reply);
/*
 * Back to RUNNING when the client goes (the transition callback tells the
 * device when it was elsewhere); 0, or the callback's -errno with the
 * state ERROR.
 */
int migration_reset(vfu_ctx_t *ctx);
/*
 * A device reset: the migration state stays (a VMM resets devices while
 * one is RESUMING), except ERROR, which only a reset leaves (for RUNNING).
 */
int migration_leave_error(vfu_ctx_t *ctx);
void migration_free(vfu_ctx_t *ctx);

/* caps.c */
/*
 * What a config write asks for, carried out once it is committed (by the
 * reset orchestrator, reset_function()).
 */
struct caps_pending {
    bool flr;                       /* Initiate FLR was written */
    bool soft_reset;                /* D3hot -> D0 without No_Soft_Reset */
};
/*
 * Adjusts the new values @val of an emulated write of @count bytes at
 * @offset to capability behaviour (e.g. MSI's enabled vectors bounded by
 * those offered, unsupported power states discarded, Initiate FLR reading
 * 0) and records what the write asks for in @pending. Changes nothing else.
 */
void caps_write_prepare(vfu_ctx_t *ctx, uint8_t *val, size_t count,
                        size_t offset, struct caps_pending *pending);
/* After a soft reset: the power state stays D0, which the write asked for. */
void caps_after_soft_reset(vfu_ctx_t *ctx);
/* The first capability with @id in its chain, or NULL. */
const struct vfu_cap *caps_find(vfu_ctx_t *ctx, bool ext, uint16_t id);
/* Checks what only a complete device can be checked for (MSI-X BARs). */
int caps_realize(vfu_ctx_t *ctx);
void caps_free(vfu_ctx_t *ctx);
/* MSI/MSI-X state for the interrupt code; false/0 without the capability. */
bool caps_msi_enabled(vfu_ctx_t *ctx);
/* Vectors the client enabled (1 << MME) while MSI is enabled, else 0. */
unsigned caps_msi_vectors(vfu_ctx_t *ctx);
/* Per-vector mask bit; vectors past those enabled count as masked. */
bool caps_msi_vector_masked(vfu_ctx_t *ctx, unsigned vector);
bool caps_msix_enabled(vfu_ctx_t *ctx);
bool caps_msix_masked(vfu_ctx_t *ctx);     /* the function mask */

/* reset.c: every reset of the device and of the library's state. */
/*
 * The reset a config write asked for (@asks from pci_config_access()):
 * FLR or soft reset, the device's callback first; then interrupts held
 * back by the write are delivered. 0, or -errno of the reset callback.
 */
int reset_function(vfu_ctx_t *ctx, const struct caps_pending *asks);
/*
 * DEVICE_RESET: quiesce (HANDLER_PENDING when later), the reset callback,
 * config space, interrupts, the migration ERROR state. 0 or -errno.
 */
int reset_device(vfu_ctx_t *ctx);
/*
 * The client is gone: the device quiesces (@quiesce_first: not when it is
 * already quiet, nor when the context is destroyed), then gets
 * reset(LOST_CONN), then loses its DMA regions and dirty log; then
 * @drop_conn drops the connection's state; then interrupts and migration
 * return to their reset state. 0, or -EBUSY when the device quiesces later
 * and vfu_device_quiesced() is to finish it.
 */
int reset_lost_conn(vfu_ctx_t *ctx, bool quiesce_first,
                    void (*drop_conn)(vfu_ctx_t *ctx));

/* ioeventfd.c */
int handle_region_io_fds(vfu_ctx_t *ctx, struct tran_msg *msg,
                         struct vfu_reply *reply);
/* Closes the library's duplicates of every ioeventfd and shadow file. */
void ioeventfd_free(vfu_ctx_t *ctx);

#endif /* VFU_PRIVATE_H */
