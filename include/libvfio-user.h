/*
 * libvfio-user: the server side of the vfio-user protocol. A process creates
 * a context, describes its device (PCI identity, regions, callbacks), and
 * serves a vfio-user client (a VMM such as QEMU) that connects over a UNIX
 * socket. Wire structures are in vfio-user.h, PCI layout in pci_defs.h.
 *
 * Conventions: calls return 0 (or a count) on success and -1 with errno set
 * on failure. A context is not thread-safe; callbacks run on the thread that
 * called vfu_run_ctx().
 */
#ifndef LIB_VFIO_USER_H
#define LIB_VFIO_USER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "pci_caps/dsn.h"
#include "pci_caps/msi.h"
#include "pci_caps/msix.h"
#include "pci_caps/pm.h"
#include "pci_caps/px.h"
#include "pci_defs.h"
#include "vfio-user.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LIB_VFIO_USER_MAJOR 0
#define LIB_VFIO_USER_MINOR 2

typedef struct vfu_ctx vfu_ctx_t;

/* ------------------------------------------------------------------ */
/* Context                                                             */
/* ------------------------------------------------------------------ */

typedef enum {
    VFU_TRANS_SOCK,     /* a UNIX stream socket at a path */
    VFU_TRANS_PIPE,     /* standard input and output (path unused) */
    VFU_TRANS_MAX
} vfu_trans_t;

typedef enum {
    VFU_DEV_TYPE_PCI
} vfu_dev_type_t;

/* vfu_attach_ctx() and vfu_run_ctx() return instead of blocking. */
#define LIBVFIO_USER_FLAG_ATTACH_NB  (1 << 0)

/*
 * Creates a device context whose socket is bound and listening at @path on
 * return, so a client may connect (and send VERSION) before the server
 * attaches. @pvt is returned by vfu_get_private(). Returns NULL with errno
 * set on failure (EINVAL for a bad argument, EADDRINUSE when @path exists).
 */
vfu_ctx_t *
vfu_create_ctx(vfu_trans_t trans, const char *path, int flags, void *pvt,
               vfu_dev_type_t dev_type);

/*
 * Completes set-up; required before vfu_attach_ctx(). It may be called again
 * after further set-up calls. Fails with EINVAL when an MSI-X capability's
 * table or pending bit array does not lie inside an implemented BAR.
 */
int
vfu_realize_ctx(vfu_ctx_t *vfu_ctx);

/*
 * Accepts one client and negotiates the protocol version with it. Blocks
 * unless the context was created with LIBVFIO_USER_FLAG_ATTACH_NB, in which
 * case it fails with EAGAIN until a client has connected and its VERSION
 * message has arrived. A client that fails negotiation is disconnected and
 * the call fails with the reason (EINVAL); the socket keeps
 * listening and the call may be repeated.
 */
int
vfu_attach_ctx(vfu_ctx_t *vfu_ctx);

/*
 * The file descriptor to poll for input: the listening socket before a
 * client is attached, the connection afterwards. Ask again after every
 * attach and after vfu_run_ctx() fails with ENOTCONN.
 */
int
vfu_get_poll_fd(vfu_ctx_t *vfu_ctx);

/*
 * Serves client requests in order. Blocking contexts serve until the client
 * disconnects and then fail with ENOTCONN. Non-blocking contexts serve what
 * has arrived and return the number of requests handled (0 when none).
 * After ENOTCONN the reset callback has seen VFU_RESET_LOST_CONN, every fd
 * the client passed is closed, and vfu_attach_ctx() accepts a new client.
 */
int
vfu_run_ctx(vfu_ctx_t *vfu_ctx);

/*
 * Disconnects any client (calling the reset callback with
 * VFU_RESET_LOST_CONN), frees the context and removes the socket file.
 */
void
vfu_destroy_ctx(vfu_ctx_t *vfu_ctx);

/* The @pvt pointer given to vfu_create_ctx(). */
void *
vfu_get_private(vfu_ctx_t *vfu_ctx);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

/* Receives one formatted message, without a trailing newline. */
typedef void (vfu_log_fn_t)(vfu_ctx_t *vfu_ctx, int level, const char *msg);

/*
 * Sends messages of syslog(3) priority @level or more urgent (LOG_ERR ...
 * LOG_DEBUG) to @log; NULL turns logging off.
 */
int
vfu_setup_log(vfu_ctx_t *vfu_ctx, vfu_log_fn_t *log, int level);

/* Logs through the context's log function; @fmt has no trailing newline. */
void
vfu_log(vfu_ctx_t *vfu_ctx, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Regions                                                             */
/* ------------------------------------------------------------------ */

enum {
    VFU_PCI_DEV_BAR0_REGION_IDX,
    VFU_PCI_DEV_BAR1_REGION_IDX,
    VFU_PCI_DEV_BAR2_REGION_IDX,
    VFU_PCI_DEV_BAR3_REGION_IDX,
    VFU_PCI_DEV_BAR4_REGION_IDX,
    VFU_PCI_DEV_BAR5_REGION_IDX,
    VFU_PCI_DEV_ROM_REGION_IDX,
    VFU_PCI_DEV_CFG_REGION_IDX,
    VFU_PCI_DEV_VGA_REGION_IDX,
    VFU_PCI_DEV_NUM_REGIONS,
};

/* Region indexes of the older generic (non-PCI) device type; for sources. */
enum {
    VFU_GENERIC_DEV_MIGR_REGION_IDX,
    VFU_GENERIC_DEV_NUM_REGIONS
};

/*
 * Serves a region access that arrived as a message: copy @count bytes at
 * @offset into @buf (read) or out of it (write). Returns @count, or -1 with
 * errno set; the client gets that errno in its error reply.
 */
typedef ssize_t (vfu_region_access_cb_t)(vfu_ctx_t *vfu_ctx, char *buf,
                                         size_t count, loff_t offset,
                                         bool is_write);

#define VFU_REGION_FLAG_READ      (1 << 0)
#define VFU_REGION_FLAG_WRITE     (1 << 1)
#define VFU_REGION_FLAG_RW        (VFU_REGION_FLAG_READ | VFU_REGION_FLAG_WRITE)
#define VFU_REGION_FLAG_MEM       (1 << 2)  /* memory BAR; I/O BAR if unset */
#define VFU_REGION_FLAG_ALWAYS_CB (1 << 3)  /* config space: every access to the callback */
#define VFU_REGION_FLAG_64_BITS   (1 << 4)  /* 64-bit BAR; takes the next BAR slot too */
#define VFU_REGION_FLAG_PREFETCH  (1 << 5)  /* prefetchable memory BAR */
#define VFU_REGION_FLAG_MASK      (VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM | \
                                   VFU_REGION_FLAG_ALWAYS_CB | \
                                   VFU_REGION_FLAG_64_BITS | \
                                   VFU_REGION_FLAG_PREFETCH)

/*
 * Describes region @region_idx of @size bytes. Accesses that arrive as
 * messages go to @region_access. With a file descriptor @fd the client may
 * instead mmap the region from @fd at @offset: all of it, or only the
 * @nr_mmap_areas areas listed in @mmap_areas (iov_base is the offset inside
 * the region, page aligned). The fd stays owned by the caller and must stay
 * open while the context exists.
 *
 * The config region (VFU_PCI_DEV_CFG_REGION_IDX) is always present; its size
 * follows the PCI type, the library emulates the standard header and the
 * capabilities added with vfu_pci_add_capability(), and the callback, if
 * any, serves the rest (everything with VFU_REGION_FLAG_ALWAYS_CB, which
 * needs one); see docs/pci.md. It cannot be mapped.
 *
 * @flags must include READ or WRITE; a BAR's (and the ROM's) size must be a
 * power of two. Size 0 clears the region (and its BAR). The fd must hold
 * what the client may map (the areas, or all of the region without them).
 * May be called again, also after vfu_realize_ctx(), to change a region.
 * Fails with -1 and EINVAL for a bad argument, EBADF for a closed fd.
 */
int
vfu_setup_region(vfu_ctx_t *vfu_ctx, int region_idx, size_t size,
                 vfu_region_access_cb_t *region_access, int flags,
                 struct iovec *mmap_areas, uint32_t nr_mmap_areas,
                 int fd, uint64_t offset);

/*
 * Registers eventfd @fd for writes of @size bytes (1, 2, 4 or 8) at
 * @gpa_offset in region @region_idx: a client that asks for the region's
 * io fds (GET_REGION_IO_FDS; a VMM hands them to KVM as ioeventfds) then
 * signals @fd for such a write instead of sending REGION_WRITE, and the
 * device learns of it by polling @fd beside vfu_get_poll_fd(). With
 * @flags KVM_IOEVENTFD_FLAG_DATAMATCH (<linux/kvm.h>; the only flag taken)
 * only a write of the value @datamatch signals, and it must fit in @size
 * bytes; without it @datamatch is ignored. With @shadow_fd >= 0 it is a
 * shadow ioeventfd: the client stores the value written at @shadow_offset
 * (a multiple of @size) in that file (a memfd or regular file at least
 * that long) before it signals; a client that cannot treats it as a plain
 * ioeventfd.
 *
 * Writes the client does not turn into signals (it did not ask for the io
 * fds, another size or value, a client with fewer fds per message than
 * the region's ioeventfds need) still come as REGION_WRITE to the region's
 * callback: handle the register there too. An ioeventfd's signal is not
 * ordered with the client's messages: serve what the socket holds before
 * acting on it (docs/ioeventfd.md).
 *
 * Several may be registered per region; one that catches the same writes
 * as an existing one (same region, offset and size, and datamatch values
 * that do not tell them apart) is refused. The library keeps its own
 * duplicates of @fd and @shadow_fd (the caller's stay the caller's, to
 * poll and close) and closes them in vfu_destroy_ctx(); ioeventfds stay
 * registered across client connections and resets. Config space cannot
 * have ioeventfds.
 *
 * Returns 0, or -1 with errno: EINVAL (no such region or not writable,
 * the config region, range outside it, bad size, other flags, datamatch
 * wider than @size, @fd not an eventfd, shadow file not a regular file or
 * too short, shadow offset misaligned), EBADF (@fd or @shadow_fd not
 * open), EEXIST (the same writes already have one), ENOSPC (1024 already),
 * ENOMEM.
 */
int
vfu_create_ioeventfd(vfu_ctx_t *vfu_ctx, uint32_t region_idx, int fd,
                     size_t gpa_offset, uint32_t size, uint32_t flags,
                     uint64_t datamatch, int shadow_fd, size_t shadow_offset);

/* ------------------------------------------------------------------ */
/* Reset                                                               */
/* ------------------------------------------------------------------ */

typedef enum vfu_reset_type {
    /*
     * The client sent DEVICE_RESET, or moved the function from D3hot to D0
     * through a power management capability without No_Soft_Reset.
     */
    VFU_RESET_DEVICE,
    VFU_RESET_LOST_CONN,    /* the client went away */
    /* The client set Initiate FLR in the PCI Express capability. */
    VFU_RESET_PCI_FLR,
} vfu_reset_type_t;

/* Returns 0, or -1 with errno set (sent back to the client). */
typedef int (vfu_reset_cb_t)(vfu_ctx_t *vfu_ctx, vfu_reset_type_t type);

int
vfu_setup_device_reset_cb(vfu_ctx_t *vfu_ctx, vfu_reset_cb_t *reset);

/* ------------------------------------------------------------------ */
/* Interrupts                                                          */
/* ------------------------------------------------------------------ */

/* The interrupt types; the values are the VFIO_PCI_*_IRQ_INDEX indexes. */
enum vfu_dev_irq_type {
    VFU_DEV_INTX_IRQ,
    VFU_DEV_MSI_IRQ,
    VFU_DEV_MSIX_IRQ,
    VFU_DEV_ERR_IRQ,
    VFU_DEV_REQ_IRQ,
    VFU_DEV_NUM_IRQS
};

/*
 * Declares how many interrupts of @type the device has: INTx 0 or 1 (1
 * sets the interrupt pin to INTA#), MSI up to 32, MSI-X up to 2048, ERR
 * and REQ 0 or 1 (a new context has one of each and none of the others).
 * The client learns the counts from DEVICE_GET_IRQ_INFO and hands over one
 * eventfd per interrupt it uses with DEVICE_SET_IRQS. Fails with EINVAL
 * for a bad type or count, EBUSY while a client is attached, ENOMEM.
 */
int
vfu_setup_device_nr_irqs(vfu_ctx_t *vfu_ctx, enum vfu_dev_irq_type type,
                         uint32_t count);

/*
 * Called when the client masks (@mask true) or unmasks interrupts
 * @start .. @start + @count - 1 of the type it was registered for, with
 * DEVICE_SET_IRQS; once per run of consecutive interrupts named in the
 * request. Not called for the automatic masking of INTx after it fired.
 */
typedef void (vfu_dev_irq_state_cb_t)(vfu_ctx_t *vfu_ctx, uint32_t start,
                                      uint32_t count, bool mask);

/* Registers @cb for interrupts of @type; NULL removes it. EINVAL: bad type. */
int
vfu_setup_irq_state_callback(vfu_ctx_t *vfu_ctx, enum vfu_dev_irq_type type,
                             vfu_dev_irq_state_cb_t *cb);

/*
 * Raises interrupt @subindex of the type the client enabled (the one of
 * INTx, MSI and MSI-X it gave eventfds to) by signalling its eventfd.
 *
 * INTx is level-triggered: the interrupt status bit is set and the eventfd
 * signalled once; the line stays asserted (further triggers do nothing)
 * until the client unmasks INTx after the guest's end of interrupt. While
 * the command register's Interrupt Disable bit is set, or the client
 * masked INTx, the status bit is set but the eventfd is signalled only
 * once that changes. An MSI vector is held pending while MSI is disabled
 * or the vector is masked in the MSI capability or beyond the vectors
 * enabled, an MSI-X vector while MSI-X is disabled or function-masked, and
 * either while the client masked it; a pending interrupt is signalled
 * when that ends. The MSI-X table (and its per-vector mask bits) is the
 * device's: check a vector's mask before raising it, unless the client
 * never programmed that entry (QEMU keeps the table to itself and masks
 * for the device). See docs/irq.md.
 *
 * Returns 0 (signalled, or pending), or -1 with errno: EINVAL when
 * @subindex is not below the count of the enabled type (of any type when
 * none is enabled), ENOENT when the client gave no eventfd for it, or the
 * errno of the failed eventfd write.
 */
int
vfu_irq_trigger(vfu_ctx_t *vfu_ctx, uint32_t subindex);

/* ------------------------------------------------------------------ */
/* Quiesce                                                             */
/* ------------------------------------------------------------------ */

/*
 * Asks the device to stop touching guest memory (no new DMA, none in
 * flight) before the library changes DMA mappings, resets the device or
 * changes its migration state. Return 0 once quiet. Return -1 with errno
 * EBUSY to finish later: the request then waits, vfu_run_ctx() fails with
 * EBUSY until the device calls vfu_device_quiesced(), and the device may go
 * on working meanwhile. The device stays quiesced until the request is
 * done; the callbacks that run for it (DMA register/unregister, reset,
 * migration transition) may still use the DMA calls.
 */
typedef int (vfu_device_quiesce_cb_t)(vfu_ctx_t *vfu_ctx);

void
vfu_setup_device_quiesce_cb(vfu_ctx_t *vfu_ctx,
                            vfu_device_quiesce_cb_t *quiesce_cb);

/*
 * Completes a quiesce the callback deferred with EBUSY: with 0 the waiting
 * request is carried out and answered now; with an errno it is refused with
 * that errno. Fails with EINVAL when no quiesce is pending.
 */
int
vfu_device_quiesced(vfu_ctx_t *vfu_ctx, int quiesce_errno);

/* ------------------------------------------------------------------ */
/* DMA: client memory                                                  */
/* ------------------------------------------------------------------ */

/*
 * The client tells the device which of its memory (for QEMU: guest
 * physical memory) the device may access, with DMA_MAP and DMA_UNMAP.
 * Addresses in that space are DMA addresses (IOVAs); they are not pointers
 * in this process. The library always keeps the table of mapped regions,
 * whether or not vfu_setup_device_dma() was called. A region that came
 * with a file descriptor is mapped into this process and can be used in
 * place (vfu_sgl_get()); one without is reached by messages to the client.
 * See docs/dma.md.
 */
typedef void *vfu_dma_addr_t;

/*
 * A scatter/gather entry: a piece of a DMA range that lies in one region,
 * filled in by vfu_addr_to_sgl(). Opaque: allocate dma_sg_size() bytes
 * per entry. An entry made before its region was unmapped stays stale even
 * if the same addresses are mapped again; the calls below refuse it.
 */
struct dma_sg;
typedef struct dma_sg dma_sg_t;

/* The size of one dma_sg_t, for arrays of them. */
size_t
dma_sg_size(void);

/*
 * A region as the callbacks see it. @iova: its DMA range. @vaddr: where it
 * is mapped in this process, or NULL when it came without a file
 * descriptor (or for file I/O). @mapping: the whole mapping, which holds
 * @vaddr's range rounded out to whole pages of the file (huge pages on
 * hugetlbfs), zero without one. @page_size: of the mapping (e.g. 2 MiB for
 * huge pages), the system page size without one. @prot: PROT_READ and/or PROT_WRITE, the
 * access the client granted (and, with a mapping, its protection).
 */
typedef struct vfu_dma_info {
    struct iovec iova;
    void *vaddr;
    struct iovec mapping;
    size_t page_size;
    uint32_t prot;
} vfu_dma_info_t;

/* A region was mapped; it can be used from inside the callback. */
typedef void (vfu_dma_register_cb_t)(vfu_ctx_t *vfu_ctx, vfu_dma_info_t *info);

/*
 * A region is about to go (DMA_UNMAP, or the client left). It is still
 * mapped during the call; the device must stop using it, and drop any
 * pointer into it, before returning.
 */
typedef void (vfu_dma_unregister_cb_t)(vfu_ctx_t *vfu_ctx,
                                       vfu_dma_info_t *info);

/* Most regions a client may map; the default of the older API. */
#define LIBVFIO_USER_MAX_DMA_REGIONS 1000000

/*
 * Sets the most regions the client may have mapped at once (up to
 * LIBVFIO_USER_MAX_DMA_REGIONS; the next DMA_MAP fails with EINVAL) and
 * the callbacks for regions being mapped and unmapped; either may be NULL.
 * A device that keeps pointers into client memory (from vfu_sgl_get())
 * across requests needs @dma_unregister to learn when to drop them. The
 * device is quiesced (see vfu_setup_device_quiesce_cb()) before the table
 * changes. Fails with EINVAL (no context, @max_regions 0 or too large) or
 * ENOMEM.
 *
 * Device code written for the older three-argument form,
 * vfu_setup_device_dma(ctx, register, unregister), compiles unchanged and
 * means LIBVFIO_USER_MAX_DMA_REGIONS.
 */
int
vfu_setup_device_dma(vfu_ctx_t *vfu_ctx, size_t max_regions,
                     vfu_dma_register_cb_t *dma_register,
                     vfu_dma_unregister_cb_t *dma_unregister);

/*
 * Describes the DMA range [@dma_addr, @dma_addr + @len) as scatter/gather
 * entries, one per region it crosses (the regions must follow each other
 * without a gap), each checked for the access in @prot (PROT_READ and/or
 * PROT_WRITE). Returns the number of entries written to @sgl, or:
 *   -1 with errno ENOENT: part of the range is not mapped;
 *   -1 with errno EACCES: the client did not grant the access;
 *   -1 with errno EINVAL: @len is 0, @prot has other bits, @sgl is NULL;
 *   -x - 1 with errno 0: @max_nr_sgs is too small, x entries are needed.
 */
int
vfu_addr_to_sgl(vfu_ctx_t *vfu_ctx, vfu_dma_addr_t dma_addr, size_t len,
                dma_sg_t *sgl, size_t max_nr_sgs, int prot);

/*
 * Fills @iov[i] with the address in this process and the length of entry
 * i, for @cnt entries, so the device can access client memory in place.
 * All or nothing: fails with EFAULT if an entry's region came without a
 * file descriptor (use vfu_sgl_read/write), ENOENT if it was unmapped
 * since the entry was made, EINVAL for bad arguments (@flags must be 0).
 * Release with vfu_sgl_put() when done; the memory stays valid until the
 * region's unregister callback at the latest.
 */
int
vfu_sgl_get(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, struct iovec *iov, size_t cnt,
            int flags);

/*
 * Releases entries taken with vfu_sgl_get(); entries made with PROT_WRITE
 * are recorded as written when the client logs dirty pages.
 */
void
vfu_sgl_put(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, struct iovec *iov, size_t cnt);

/*
 * Records the memory of @cnt entries as written, for dirty logging, for a
 * device that writes through vfu_sgl_get() without calling vfu_sgl_put()
 * (e.g. keeps the mapping for long). Nothing happens unless logging.
 */
void
vfu_sgl_mark_dirty(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, size_t cnt);

/* Whether @sg is live and its region is mapped here (vfu_sgl_get() works). */
bool
vfu_sg_is_mappable(vfu_ctx_t *vfu_ctx, dma_sg_t *sg);

/* vfu_sgl_read/write() @flags: copy through the mapping, not by message. */
#define VFU_SGL_DIRECT_ACCESS   (1 << 0)

/*
 * Copies guest memory described by @sgl (@cnt entries from
 * vfu_addr_to_sgl()) into @data, or @data into guest memory. With @flags 0
 * by DMA_READ / DMA_WRITE messages to the client, split at its
 * max_data_xfer_size, whether or not the memory is mapped here. With
 * VFU_SGL_DIRECT_ACCESS through the mapping (or pread/pwrite on the fd of
 * a region the client gave for file I/O), and by message for a region
 * that came without a file descriptor. While waiting for the client's
 * reply the library serves the client's requests, so device callbacks may
 * run inside these calls (docs/dma.md). Written pages are logged when
 * dirty logging is on. Returns 0, or -1 with errno: EINVAL (other @flags
 * bits, bad arguments), ENOENT / EACCES (memory no longer mapped, or not
 * with that access), the errno the client answered with, EPROTO (a
 * malformed reply), ETIMEDOUT, ENOTCONN (the client left).
 *
 * Device code written for the older four-argument form (no @flags)
 * compiles unchanged and means @flags 0.
 */
int
vfu_sgl_read(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, size_t cnt, void *data,
             int flags);

int
vfu_sgl_write(vfu_ctx_t *vfu_ctx, dma_sg_t *sgl, size_t cnt, void *data,
              int flags);

/*
 * Both API generations through one name: a call with the older argument
 * count expands to the current function with the older meaning. The name
 * without arguments (a function pointer) is the current function.
 */
#define VFU_ARG6_(a1, a2, a3, a4, a5, a6, ...) a6
#define vfu_setup_device_dma(...) \
    VFU_ARG6_(__VA_ARGS__, vfu_setup_device_dma_bad_args_, \
                  vfu_setup_device_dma, vfu_setup_device_dma_older_, \
                  vfu_setup_device_dma_bad_args_, \
                  vfu_setup_device_dma_bad_args_)(__VA_ARGS__)
#define vfu_setup_device_dma_older_(ctx, reg, unreg) \
    vfu_setup_device_dma(ctx, LIBVFIO_USER_MAX_DMA_REGIONS, reg, unreg)
#define vfu_sgl_read(...) \
    VFU_ARG6_(__VA_ARGS__, vfu_sgl_read, vfu_sgl_read_older_, \
                  vfu_sgl_read_bad_args_, vfu_sgl_read_bad_args_, \
                  vfu_sgl_read_bad_args_)(__VA_ARGS__)
#define vfu_sgl_read_older_(ctx, sgl, cnt, data) \
    vfu_sgl_read(ctx, sgl, cnt, data, 0)
#define vfu_sgl_write(...) \
    VFU_ARG6_(__VA_ARGS__, vfu_sgl_write, vfu_sgl_write_older_, \
                  vfu_sgl_write_bad_args_, vfu_sgl_write_bad_args_, \
                  vfu_sgl_write_bad_args_)(__VA_ARGS__)
#define vfu_sgl_write_older_(ctx, sgl, cnt, data) \
    vfu_sgl_write(ctx, sgl, cnt, data, 0)

/* ------------------------------------------------------------------ */
/* PCI                                                                 */
/* ------------------------------------------------------------------ */

typedef enum {
    VFU_PCI_TYPE_CONVENTIONAL,
    VFU_PCI_TYPE_PCI_X_1,
    VFU_PCI_TYPE_PCI_X_2,
    VFU_PCI_TYPE_EXPRESS
} vfu_pci_type_t;

/*
 * Makes the device a PCI function of @pci_type with header type @hdr_type
 * (only PCI_HEADER_TYPE_NORMAL) and revision ID @revision. Config space is
 * 256 bytes, or 4096 for PCI-X mode 2 and PCI Express. Call once, before
 * setting ids; a second call fails with EEXIST.
 */
int
vfu_pci_init(vfu_ctx_t *vfu_ctx, vfu_pci_type_t pci_type, int hdr_type,
             int revision);

/* Vendor, device, subsystem vendor and subsystem ids. */
void
vfu_pci_set_id(vfu_ctx_t *vfu_ctx, uint16_t vid, uint16_t did,
               uint16_t ssvid, uint16_t ssid);

/* Base class, sub-class and programming interface. */
void
vfu_pci_set_class(vfu_ctx_t *vfu_ctx, uint8_t base, uint8_t sub, uint8_t pi);

/*
 * The device's config space, for the device to read (e.g. BAR addresses,
 * the command register) and to initialise areas the library does not
 * emulate: 256 bytes, or 4096 for PCI Express and PCI-X 2.0. Valid while
 * the context exists, once vfu_pci_init() has set its size.
 */
vfu_pci_config_space_t *
vfu_pci_get_config_space(vfu_ctx_t *vfu_ctx);

/* ------------------------------------------------------------------ */
/* PCI capabilities                                                    */
/* ------------------------------------------------------------------ */

/* An extended capability (from offset 0x100; 4096-byte config space only). */
#define VFU_CAP_FLAG_EXTENDED (1 << 0)
/*
 * The config region's callback serves the capability's registers; the
 * library keeps only its header (ID and next), which reads from the config
 * space buffer and cannot be written.
 */
#define VFU_CAP_FLAG_CALLBACK (1 << 1)
/* The client may not change any of the capability's bits. */
#define VFU_CAP_FLAG_READONLY (1 << 2)

/*
 * Adds a capability to config space and links it at the end of its chain
 * (standard or extended). @data starts with a struct cap_hdr (standard) or
 * struct pcie_ext_cap_hdr (VFU_CAP_FLAG_EXTENDED) whose ID is set; the next
 * field is ignored. The library copies the capability and emulates its
 * registers as docs/pci.md describes; the values given are also the values
 * a reset restores.
 *
 * Known capabilities, whose size the library works out from @data:
 *   standard: PCI_CAP_ID_PM (struct pmcap), PCI_CAP_ID_MSI (struct msicap,
 *             size from its flags), PCI_CAP_ID_MSIX (struct msixcap),
 *             PCI_CAP_ID_EXP (struct pxcap; version 1, or 2 and 0 as
 *             all 0x3c bytes; on any PCI type),
 *             PCI_CAP_ID_VNDR (struct vsc, size from its size byte)
 *   extended: PCI_EXT_CAP_ID_DSN (struct dsncap), PCI_EXT_CAP_ID_VNDR
 *             (struct pcie_ext_cap_vsc_hdr, size from its len field)
 *
 * With @pos 0 the capability goes to the lowest dword-aligned free place
 * (the first extended capability always goes to 0x100); otherwise at @pos,
 * which must be dword aligned, inside 0x40-0xff (standard) or 0x100 up to
 * the end of config space (extended; the first must be at 0x100), and
 * clear of every other capability. Capabilities may be added after
 * vfu_realize_ctx(). @flags is a set of VFU_CAP_FLAG_*; CALLBACK and
 * READONLY do not go together, and CALLBACK needs the config region's
 * callback (vfu_setup_region() first). An MSI-X table or PBA must fit its
 * BAR if that BAR is set up (checked again at vfu_realize_ctx()).
 *
 * Returns the capability's offset, or -1 with errno: EINVAL (bad argument
 * or contents, position out of bounds or misaligned, extended capability on
 * a 256-byte config space, vfu_pci_init() not called), ENOTSUP (an ID whose
 * size the library cannot determine), EEXIST (overlaps a capability, or a
 * second PM, MSI, MSI-X, PCI Express or DSN capability), ENOSPC (no room
 * left), ENOMEM.
 */
ssize_t
vfu_pci_add_capability(vfu_ctx_t *vfu_ctx, size_t pos, int flags, void *data);

/*
 * Offset of the first capability with ID @cap_id (PCI_CAP_ID_* or, with
 * @extended, PCI_EXT_CAP_ID_*) in chain order. Returns 0 with errno ENOENT
 * when there is none, EINVAL for a bad argument.
 */
size_t
vfu_pci_find_capability(vfu_ctx_t *vfu_ctx, bool extended, int cap_id);

/*
 * Offset of the next capability with ID @cap_id after the one at @pos,
 * which must be the offset of a capability of that chain (any ID). Returns
 * 0 with errno ENOENT when there is none, EINVAL when @pos is not a
 * capability or an argument is bad.
 */
size_t
vfu_pci_find_next_capability(vfu_ctx_t *vfu_ctx, bool extended, size_t pos,
                             int cap_id);

/* ------------------------------------------------------------------ */
/* Live migration (vfio migration v2)                                  */
/* ------------------------------------------------------------------ */

/*
 * The device's migration states. The client drives Linux's vfio migration
 * state machine (DEVICE_FEATURE MIG_DEVICE_STATE, docs/migration.md); the
 * library walks each requested change one arc at a time and tells the
 * device of every state it enters:
 *   STOP           do not change device state, raise no interrupts, no DMA
 *   RUNNING        work normally
 *   STOP_AND_COPY  stopped; the device state is read out by read_data
 *   PRE_COPY       working normally while read_data streams state that may
 *                  still change (the first part of a live migration)
 *   RESUME         stopped; a saved device state arrives by write_data
 */
typedef enum {
    VFU_MIGR_STATE_STOP,
    VFU_MIGR_STATE_RUNNING,
    VFU_MIGR_STATE_STOP_AND_COPY,
    VFU_MIGR_STATE_PRE_COPY,
    VFU_MIGR_STATE_RESUME
} vfu_migr_state_t;

/* The callbacks version this library takes (vfio migration v2). */
#define VFU_MIGR_CALLBACKS_VERS 2

typedef struct {
    /* VFU_MIGR_CALLBACKS_VERS. */
    int version;

    /*
     * The device enters @state (one arc of the state machine). Return 0,
     * or -1 with errno to refuse: the client's request fails with that
     * errno and the device stays in the state it was in before this arc
     * (except when leaving RESUME: a refused state puts the device in
     * the ERROR state until the client resets it). Called with the device
     * quiesced (see vfu_setup_device_quiesce_cb()).
     */
    int (*transition)(vfu_ctx_t *vfu_ctx, vfu_migr_state_t state);

    /*
     * In PRE_COPY and STOP_AND_COPY: copy up to @count bytes of the
     * device's saved state to @buf and return how many. Fewer than @count
     * (0 included) ends the stream for now: in PRE_COPY the client may read
     * again later, in STOP_AND_COPY the state is complete. -1 with errno on
     * failure.
     */
    ssize_t (*read_data)(vfu_ctx_t *vfu_ctx, void *buf, uint64_t count);

    /*
     * In RESUME: take the next @count bytes of a saved state (a stream cut
     * anywhere, in the order read_data produced it). Return @count, fewer
     * (the library offers the rest again), or -1 with errno. The state is
     * complete when the device leaves RESUME.
     */
    ssize_t (*write_data)(vfu_ctx_t *vfu_ctx, void *buf, uint64_t count);
} vfu_migration_callbacks_t;

/*
 * Makes the device migratable: the client sees the migration features
 * (STOP_COPY and PRE_COPY) and the "migration" capability in VERSION. All
 * three callbacks are required. Call before vfu_realize_ctx(); the
 * callbacks are copied. Returns 0, or -1 with errno EINVAL (a version
 * other than VFU_MIGR_CALLBACKS_VERS, a callback missing, already
 * realized).
 */
int
vfu_setup_device_migration_callbacks(vfu_ctx_t *vfu_ctx,
                                     const vfu_migration_callbacks_t *callbacks);

/*
 * Extension of this library: how many bytes the device would still send in
 * STOP_AND_COPY, for the client's VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (an
 * estimate; any state). Store it in *@stop_copy_length and return 0, or -1
 * with errno. Without this callback the feature is not offered.
 */
typedef int (vfu_migr_data_size_cb_t)(vfu_ctx_t *vfu_ctx,
                                      uint64_t *stop_copy_length);

/*
 * Sets (or with NULL removes) the data size callback; after
 * vfu_setup_device_migration_callbacks(). Returns 0, or -1 with errno
 * EINVAL when the device is not migratable.
 */
int
vfu_setup_device_migration_data_size(vfu_ctx_t *vfu_ctx,
                                     vfu_migr_data_size_cb_t *data_size);

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_H */
