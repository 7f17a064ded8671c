/*
 * libvfio-user-client: the client side of the vfio-user protocol, for tests,
 * tools and VMM authors. One vfu_client_t is one connection to one device
 * server. Calls return 0 (or a count) on success; on failure -1 with errno
 * set, where a server's error reply sets errno to the errno it carried.
 * Not thread-safe.
 *
 * The server is not trusted: every reply is checked (its id, command,
 * flags, size, the fields it echoes, fds only where the command has them)
 * and one that breaks a rule fails the call with EPROTO, its fds closed.
 * Each request waits for its reply at most the timeout (30 s unless
 * vfu_client_set_timeout() says otherwise), serving the server's DMA
 * requests meanwhile; then the call fails with ETIMEDOUT and the reply,
 * should it come later, is dropped. docs/reliability.md has the rules.
 */
#ifndef VFIO_USER_CLIENT_H
#define VFIO_USER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vfio-user.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vfu_client vfu_client_t;

/* What the server announced in its VERSION reply. */
struct vfu_client_server_info {
    uint16_t major;
    uint16_t minor;
    uint32_t max_msg_fds;
    uint64_t max_data_xfer_size;
    uint64_t max_dma_maps;
    uint64_t pgsizes;
    bool write_multiple;
};

/* Connects to the server socket at @path; no message is sent yet. */
vfu_client_t *
vfu_client_connect(const char *path);

/*
 * Sends VERSION with @caps_json as the version data (a JSON object; NULL
 * sends this library's capabilities) and checks the reply.
 */
int
vfu_client_negotiate(vfu_client_t *client, const char *caps_json);

/*
 * How long each request waits for its reply (and each send for room on
 * the socket), in milliseconds; -1: no limit. Also sets the socket's
 * SO_RCVTIMEO (a quarter of it: a blocked receive wakes to look at the
 * time) and SO_SNDTIMEO. A send that times out after part of a message
 * went leaves the connection unusable: close it.
 */
int
vfu_client_set_timeout(vfu_client_t *client, int timeout_ms);

/* Closes the connection and frees the client. */
void
vfu_client_close(vfu_client_t *client);

/* The connected socket, for tests that write raw bytes. */
int
vfu_client_fd(vfu_client_t *client);

const struct vfu_client_server_info *
vfu_client_server_info(vfu_client_t *client);

int
vfu_client_device_info(vfu_client_t *client, struct vfio_user_device_info *info);

/*
 * Region info including its capability chain. On success *info is a malloc'd
 * buffer of info->argsz bytes (free() it), and *fd is the region's fd when
 * the server attached one, else -1. Re-asks with a bigger buffer when the
 * capabilities did not fit, as the protocol prescribes.
 */
int
vfu_client_region_info(vfu_client_t *client, uint32_t index,
                       struct vfio_region_info **info, int *fd);

int
vfu_client_region_read(vfu_client_t *client, uint32_t region, uint64_t offset,
                       void *data, uint32_t count);

/* With @posted the write carries NO_REPLY and the call does not wait. */
int
vfu_client_region_write(vfu_client_t *client, uint32_t region, uint64_t offset,
                        const void *data, uint32_t count, bool posted);

/*
 * Up to VFIO_USER_MULTI_MAX writes of at most 8 bytes in one message.
 * Returns the number of writes the server completed (@nr when @posted).
 */
int
vfu_client_region_write_multi(vfu_client_t *client,
                              const struct vfio_user_write_multi_data *wrs,
                              size_t nr, bool posted);

int
vfu_client_reset(vfu_client_t *client);

/*
 * Live migration (vfio migration v2; docs/migration.md). States are enum
 * vfio_device_mig_state values (VFIO_DEVICE_STATE_*). All return 0 (or a
 * byte count) or -1 with errno, the server's errno for a refusal.
 *
 * The VFIO_MIGRATION_* flags the device offers (feature MIGRATION).
 */
int
vfu_client_mig_flags(vfu_client_t *client, uint64_t *flags);

/* The device's migration state; moves it to @state (any path of arcs). */
int
vfu_client_mig_state_get(vfu_client_t *client, uint32_t *state);
int
vfu_client_mig_state_set(vfu_client_t *client, uint32_t state);

/*
 * Reads up to @count bytes of the device state (PRE_COPY, STOP_COPY) in
 * requests of at most the server's max_data_xfer_size; returns how many.
 * Fewer than @count: the stream ends (in PRE_COPY, for now).
 */
ssize_t
vfu_client_mig_read(vfu_client_t *client, void *buf, size_t count);

/* Writes @count bytes of a saved device state (RESUMING), in pieces. */
int
vfu_client_mig_write(vfu_client_t *client, const void *buf, size_t count);

/* The server's estimate of the bytes STOP_COPY would send (MIG_DATA_SIZE). */
int
vfu_client_mig_data_size(vfu_client_t *client, uint64_t *stop_copy_length);

/*
 * Moves a device from the server behind @src to the one behind @dst (the
 * same device, fresh, in RUNNING): @dst goes to RESUMING; @src to PRE_COPY
 * and then, round after round, what it has ready is read and written to
 * @dst, @round (if set) called after each round (the place to fetch dirty
 * pages with vfu_client_dirty_report() and copy guest memory), until a
 * round moves at most @precopy_stop_bytes or @max_precopy_rounds rounds
 * ran (0: no pre-copy); then @src goes to STOP_COPY and the rest is
 * copied, @round called once more with @final true (the device is stopped,
 * its last dirty pages can be fetched), @dst goes to STOP and then RUNNING,
 * and @src to STOP. A failure (or a non-zero return from @round) stops
 * there with -1 and errno; both devices are left as they are, e.g. for a
 * reset. @opts may be NULL (no pre-copy); @stats, if set, gets what moved.
 */
struct vfu_client_migrate_opts {
    unsigned max_precopy_rounds;
    uint64_t precopy_stop_bytes;
    int (*round)(void *arg, unsigned round, uint64_t bytes, bool final);
    void *arg;
};
struct vfu_client_migrate_stats {
    unsigned precopy_rounds;
    uint64_t precopy_bytes;
    uint64_t stopcopy_bytes;
};
int
vfu_client_migrate(vfu_client_t *src, vfu_client_t *dst,
                   const struct vfu_client_migrate_opts *opts,
                   struct vfu_client_migrate_stats *stats);

/* Interrupt type @index (VFIO_PCI_*_IRQ_INDEX): its flags and count. */
int
vfu_client_irq_info(vfu_client_t *client, uint32_t index,
                    struct vfio_irq_info *info);

/*
 * DEVICE_SET_IRQS on interrupts @start .. @start + @count - 1 of @index.
 * @flags is one VFIO_IRQ_SET_DATA_* and one VFIO_IRQ_SET_ACTION_*.
 * DATA_EVENTFD: @fds holds @count eventfds, -1 de-assigning that
 * interrupt (NULL: de-assign all); they go over the socket as SCM_RIGHTS,
 * a run of -1 as a message without fds, so a mixed array (or more fds
 * than the server takes in one message) becomes several messages, sent in
 * order until one fails. DATA_BOOL: @bools holds @count bytes. DATA_NONE
 * with ACTION_TRIGGER and @count 0 disables the whole index. The fds stay
 * the caller's.
 */
int
vfu_client_set_irqs(vfu_client_t *client, uint32_t index, uint32_t flags,
                    uint32_t start, uint32_t count, const int *fds,
                    const uint8_t *bools);

/*
 * Waits up to @timeout_ms (-1: for ever) for @eventfd to be signalled and
 * reads it: returns the count it held (the signals since the last read),
 * 0 on timeout, or -1 with errno.
 */
int64_t
vfu_client_wait_irq(int eventfd, int timeout_ms);

/*
 * I/O fds (GET_REGION_IO_FDS; docs/ioeventfd.md): eventfds the server gave
 * for writes to registers, which a VMM hands to KVM so that a guest's store
 * signals the device without a message. This library can play KVM's part
 * (vfu_client_ioeventfds_install() and vfu_client_doorbell()).
 *
 * One ioeventfd as the server described it, with fds of its own.
 */
struct vfu_client_ioeventfd {
    uint32_t region;
    uint32_t type;              /* VFIO_USER_IO_FD_TYPE_IOEVENTFD or _SHADOW */
    uint64_t offset;            /* in the region */
    uint64_t size;              /* 1, 2, 4 or 8; 0: a write of any size */
    uint32_t flags;             /* 0 or KVM_IOEVENTFD_FLAG_DATAMATCH */
    uint64_t datamatch;         /* with the flag: the value that matches */
    int fd;                     /* the eventfd */
    int shadow_fd;              /* _SHADOW: the shadow memory file, else -1 */
    uint64_t shadow_offset;     /* _SHADOW: where the value goes in it */
};

/*
 * Asks for region @index's io fds (re-asking with the size the server
 * says it needs) and checks the reply whole. On success *ioeventfds is a
 * malloc'd array of *nr entries (NULL when none) whose fds are each its
 * entry's own (duplicated where the server shared one): release it with
 * vfu_client_ioeventfds_free(). Ioregionfd entries are checked and left
 * out. Fails with the server's errno when it refuses, and with EPROTO,
 * closing every fd that came, when the reply breaks a rule: sizes (argsz,
 * the entry size of 48 bytes or the spec's 40, the payload length), flags
 * or index not echoed, fds missing, unused or of the wrong kind (an
 * eventfd; a regular file holding the shadow value), an fd index out of
 * range, an unknown type or flag, a size other than 0, 1, 2, 4, 8, a
 * datamatch wider than the size, a range outside the region (asked with
 * GET_REGION_INFO first).
 */
int
vfu_client_region_io_fds(vfu_client_t *client, uint32_t index,
                         struct vfu_client_ioeventfd **ioeventfds, size_t *nr);

/* Closes the entries' fds and frees the array. */
void
vfu_client_ioeventfds_free(struct vfu_client_ioeventfd *ioeventfds, size_t nr);

/*
 * Installs region @index's ioeventfds in this client (asked for as above;
 * shadow memory is mapped), in place of those installed for the region
 * before, as a VMM registers them with KVM. Returns how many, or -1 with
 * errno (those of vfu_client_region_io_fds(), or of mmap()); on failure
 * the region's previous ones stay. vfu_client_close() removes them all.
 */
int
vfu_client_ioeventfds_install(vfu_client_t *client, uint32_t index);

/* Removes region @index's installed ioeventfds (UINT32_MAX: every region's). */
void
vfu_client_ioeventfds_remove(vfu_client_t *client, uint32_t index);

/*
 * A guest's store of @count bytes at @offset in region @index, as KVM
 * treats it: when an installed ioeventfd matches (the same offset, its
 * size or size 0, its datamatch value if it has the flag), its eventfd is
 * signalled, a shadow ioeventfd's value stored in shadow memory first;
 * otherwise the bytes go as REGION_WRITE, without waiting for the reply
 * when @posted. Returns 1 when an eventfd took the write, 0 when it went
 * as a message, -1 with errno (those of vfu_client_region_write(), or of
 * the eventfd write).
 */
int
vfu_client_doorbell(vfu_client_t *client, uint32_t index, uint64_t offset,
                    const void *data, uint32_t count, bool posted);

/*
 * Raw access, for tests and tools: sends any message (the header is built
 * from @cmd and @flags; msg_id is chosen and returned in *msg_id).
 */
int
vfu_client_send(vfu_client_t *client, uint16_t cmd, uint32_t flags,
                const void *payload, size_t len, const int *fds, size_t nr_fds,
                uint16_t *msg_id);

/*
 * Receives the next message whole. Copies at most @cap payload bytes to
 * @payload and returns the payload length; fds (if @fds) are stored, up to
 * *nr_fds, and the rest closed. Returns -1/ENOTCONN when the server closed.
 */
ssize_t
vfu_client_recv(vfu_client_t *client, struct vfio_user_header *hdr,
                void *payload, size_t cap, int *fds, size_t *nr_fds);

/*
 * One request and its reply: sends @req and waits for the reply with the
 * same msg_id. Returns the reply's payload length (copied up to
 * @reply_cap), or -1 with errno from the error reply. Reply fds are stored
 * as in vfu_client_recv().
 */
ssize_t
vfu_client_request(vfu_client_t *client, uint16_t cmd, const void *req,
                   size_t req_len, const int *fds, size_t nr_fds,
                   void *reply, size_t reply_cap, int *reply_fds,
                   size_t *nr_reply_fds);

/*
 * Messages sent, recvmsg() calls that returned data, and DMA_READ /
 * DMA_WRITE requests of the server answered, for tests and benchmarks.
 */
struct vfu_client_stats {
    uint64_t requests;
    uint64_t recv_calls;
    uint64_t dma_served;
};
void
vfu_client_get_stats(vfu_client_t *client, struct vfu_client_stats *stats);

/*
 * DMA: memory the server may access.
 *
 * Registers [@iova, @iova + @size) with the server (DMA_MAP). With @fd >= 0
 * the server maps @fd at @offset and uses the memory in place; with -1 it
 * asks us by DMA_READ / DMA_WRITE messages, which this library answers
 * from @vaddr, our own mapping of the memory (required without an fd,
 * optional with one). @flags: VFIO_USER_F_DMA_REGION_READ and/or _WRITE,
 * what the server may do; with an fd also VFIO_USER_F_DMA_REGION_MMAP (map
 * it, as without the flag) or VFIO_USER_F_DMA_REGION_FILE_IO (do not map
 * it: reach it with pread/pwrite; a regular file or block device). @vaddr
 * must stay valid until the region is unmapped. Fails with EINVAL, without
 * asking the server, for other bits, MMAP or FILE_IO without an fd, or
 * both; with EEXIST when the range overlaps one we registered; with the
 * server's errno when it refuses.
 */
int
vfu_client_dma_map(vfu_client_t *client, uint64_t iova, uint64_t size, int fd,
                   uint64_t offset, void *vaddr, uint32_t flags);

/*
 * Withdraws a region (DMA_UNMAP): @iova and @size must match one mapping
 * exactly, or be 0 with VFIO_DMA_UNMAP_FLAG_ALL in @flags for all of them.
 */
int
vfu_client_dma_unmap(vfu_client_t *client, uint64_t iova, uint64_t size,
                     uint32_t flags);

/*
 * Server requests (DMA_READ / DMA_WRITE) are answered whenever this library
 * receives, e.g. while waiting for a reply. A client with nothing to send
 * calls this to serve them: it waits up to @timeout_ms (-1: no limit) for
 * the first, serves it and whatever else has arrived, and returns how many
 * it served (0 on timeout). Requests for memory we did not register, or
 * without the access, or malformed, get an error reply: ENODEV (not
 * registered), EPERM (no access), EFAULT (registered without @vaddr),
 * E2BIG (more than our max_data_xfer_size), EINVAL (sizes do not add up,
 * fds attached). Fails with EPROTO after serving when the server sent a
 * reply or a command other than these, ENOTCONN when it closed.
 */
int
vfu_client_serve(vfu_client_t *client, int timeout_ms);

/*
 * Dirty page logging (DEVICE_FEATURE DMA_LOGGING_*): start logging the
 * server's writes to the @nr @ranges (none: everything mapped) at
 * @page_size granularity (a hint; the server may choose larger pages);
 * stop; and fetch-and-clear the pages written in [@iova, @iova + @length)
 * as a bitmap with one bit per @page_size (any power of two) from @iova:
 * ceil(length / page_size) bits, in 64-bit words, bits past the end 0.
 */
int
vfu_client_dirty_start(vfu_client_t *client, uint64_t page_size,
                       const struct vfio_user_device_feature_dma_logging_range *ranges,
                       uint32_t nr);

int
vfu_client_dirty_stop(vfu_client_t *client);

int
vfu_client_dirty_report(vfu_client_t *client, uint64_t iova, uint64_t length,
                        uint64_t page_size, uint64_t *bitmap);

#ifdef __cplusplus
}
#endif

#endif /* VFIO_USER_CLIENT_H */
