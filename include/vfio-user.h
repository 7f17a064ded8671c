/*
 * vfio-user protocol: command numbers and the wire layout of every message
 * this library sends or accepts. All fields are little-endian, as on the only
 * hosts the protocol runs on. Structures that the protocol borrows unchanged
 * from Linux VFIO (region info, IRQ info, SET_IRQS, device features) are taken
 * from <linux/vfio.h>.
 */
#ifndef VFIO_USER_H
#define VFIO_USER_H

#include <inttypes.h>
#include <linux/vfio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol version this library speaks. */
#define VFIO_USER_MAJOR_VER                 0
#define VFIO_USER_MINOR_VER                 0

/* Defaults the spec assumes when a peer omits a capability. */
#define VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE (1024 * 1024)
#define VFIO_USER_DEFAULT_MAX_DMA_MAPS      65535
#define VFIO_USER_DEFAULT_PGSIZES           4096
#define VFIO_USER_DEFAULT_MAX_MSG_FDS       1

enum vfio_user_command {
    VFIO_USER_VERSION                   = 1,
    VFIO_USER_DMA_MAP                   = 2,
    VFIO_USER_DMA_UNMAP                 = 3,
    VFIO_USER_DEVICE_GET_INFO           = 4,
    VFIO_USER_DEVICE_GET_REGION_INFO    = 5,
    VFIO_USER_DEVICE_GET_REGION_IO_FDS  = 6,
    VFIO_USER_DEVICE_GET_IRQ_INFO       = 7,
    VFIO_USER_DEVICE_SET_IRQS           = 8,
    VFIO_USER_REGION_READ               = 9,
    VFIO_USER_REGION_WRITE              = 10,
    VFIO_USER_DMA_READ                  = 11,
    VFIO_USER_DMA_WRITE                 = 12,
    VFIO_USER_DEVICE_RESET              = 13,
    VFIO_USER_DIRTY_PAGES               = 14,   /* retired; never valid */
    VFIO_USER_REGION_WRITE_MULTI        = 15,
    VFIO_USER_DEVICE_FEATURE            = 16,
    VFIO_USER_MIG_DATA_READ             = 17,
    VFIO_USER_MIG_DATA_WRITE            = 18,
    VFIO_USER_MAX,
};

enum vfio_user_message_type {
    VFIO_USER_MESSAGE_COMMAND   = 0,
    VFIO_USER_MESSAGE_REPLY     = 1,
};

/* The header's flags word: the message type and two flag bits. */
#define VFIO_USER_F_TYPE_MASK       0xfu
#define VFIO_USER_F_TYPE_COMMAND    0
#define VFIO_USER_F_TYPE_REPLY      1
#define VFIO_USER_F_NO_REPLY        0x10u
#define VFIO_USER_F_ERROR           0x20u

/* Older spelling of the no-reply flag, as a flag number; kept for sources. */
#define VFIO_USER_FLAGS_NO_REPLY    (0x1)

struct vfio_user_header {
    uint16_t    msg_id;
    uint16_t    cmd;
    uint32_t    msg_size;       /* header included */
    uint32_t    flags;          /* VFIO_USER_F_* */
    uint32_t    error_no;       /* errno of a failed command, in replies */
} __attribute__((packed));

struct vfio_user_version {
    uint16_t    major;
    uint16_t    minor;
    uint8_t     data[];         /* optional NUL-terminated JSON */
} __attribute__((packed));

struct vfio_user_device_info {
    uint32_t    argsz;
    uint32_t    flags;          /* VFIO_DEVICE_FLAGS_* */
    uint32_t    num_regions;
    uint32_t    num_irqs;
} __attribute__((packed));

struct vfio_user_bitmap {
    uint64_t    pgsize;
    uint64_t    size;
    char        data[];
} __attribute__((packed));

#define VFIO_USER_F_DMA_REGION_READ     (1 << 0)
#define VFIO_USER_F_DMA_REGION_WRITE    (1 << 1)
/* The fd may be mapped (the default for a region with an fd). */
#define VFIO_USER_F_DMA_REGION_MMAP     (1 << 2)
/* Reach the region with pread/pwrite on its fd, without mapping it. */
#define VFIO_USER_F_DMA_REGION_FILE_IO  (1 << 3)

struct vfio_user_dma_map {
    uint32_t    argsz;
    uint32_t    flags;
    uint64_t    offset;         /* into the passed fd; 0 without one */
    uint64_t    addr;
    uint64_t    size;
} __attribute__((packed));

#ifndef VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP
#define VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1 << 0)
#endif
#ifndef VFIO_DMA_UNMAP_FLAG_ALL
#define VFIO_DMA_UNMAP_FLAG_ALL (1 << 1)
#endif

struct vfio_user_dma_unmap {
    uint32_t    argsz;
    uint32_t    flags;
    uint64_t    addr;
    uint64_t    size;
    struct vfio_user_bitmap bitmap[];
} __attribute__((packed));

/* REGION_READ / REGION_WRITE request and reply. */
struct vfio_user_region_access {
    uint64_t    offset;
    uint32_t    region;
    uint32_t    count;
    uint8_t     data[];
} __attribute__((packed));

/* DMA_READ / DMA_WRITE, sent by the server. */
struct vfio_user_dma_region_access {
    uint64_t    addr;
    uint64_t    count;
    uint8_t     data[];
} __attribute__((packed));

/*
 * DMA_READ / DMA_WRITE, laid out as the spec says and as QEMU's client
 * (11.1, checked on the wire) reads and writes them: a 64-bit address, a
 * 64-bit count, the data at payload offset 16; the message is
 * VFIO_USER_DMA_RW_MSG_SIZE(count) bytes. A DMA_READ request carries no
 * data, its reply the data. The reply to a DMA_WRITE carries address and
 * count (12 bytes in the spec, 16 from QEMU 11.1) or nothing.
 */
struct vfio_user_dma_rw {
    uint64_t    addr;
    uint64_t    count;
    uint8_t     data[];
} __attribute__((packed));

#define VFIO_USER_DMA_RW_MSG_SIZE(count) \
    (sizeof(struct vfio_user_header) + sizeof(struct vfio_user_dma_rw) + \
     (count))

struct vfio_user_irq_info {
    uint32_t    subindex;
} __attribute__((packed));

/* REGION_WRITE_MULTI: up to VFIO_USER_MULTI_MAX writes of at most 8 bytes. */
#define VFIO_USER_MULTI_DATA    8
#define VFIO_USER_MULTI_MAX     200

struct vfio_user_write_multi_data {
    uint64_t    offset;
    uint32_t    region;
    uint32_t    count;
    uint8_t     data[VFIO_USER_MULTI_DATA];
} __attribute__((packed));

struct vfio_user_write_multi {
    uint64_t    wr_cnt;
    struct vfio_user_write_multi_data wrs[];
} __attribute__((packed));

/* GET_REGION_IO_FDS */
typedef struct vfio_user_region_io_fds_request {
    uint32_t    argsz;
    uint32_t    flags;
    uint32_t    index;
    uint32_t    count;
} __attribute__((packed)) vfio_user_region_io_fds_request_t;

#define VFIO_USER_IO_FD_TYPE_IOEVENTFD          0
#define VFIO_USER_IO_FD_TYPE_IOREGIONFD         1
#define VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW   2

/*
 * One ioeventfd of a region: a write of @size bytes at @gpa_offset signals
 * the eventfd at @fd_index (in the reply's fds) instead of a REGION_WRITE.
 * @flags are KVM_IOEVENTFD_FLAG_* bits of <linux/kvm.h>, as the spec says:
 * with KVM_IOEVENTFD_FLAG_DATAMATCH (bit 0) only a write of the value
 * @datamatch matches. A shadow ioeventfd (VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW)
 * also has the written value stored at @shadow_offset in the memory file at
 * @shadow_mem_fd_index before the signal. This is libvfio-user 0.2's
 * 48-byte entry; the spec's has 4 bytes of padding where the shadow fields
 * are (40 bytes), and tells clients to take the entry size from argsz.
 */
typedef struct vfio_user_sub_region_ioeventfd {
    uint64_t    gpa_offset;
    uint64_t    size;
    uint32_t    fd_index;
    uint32_t    type;
    uint32_t    flags;
    uint32_t    shadow_mem_fd_index;
    uint64_t    shadow_offset;
    uint64_t    datamatch;
} __attribute__((packed)) vfio_user_sub_region_ioeventfd_t;

typedef struct vfio_user_sub_region_ioregionfd {
    uint64_t    offset;
    uint64_t    size;
    uint32_t    fd_index;
    uint32_t    type;
    uint32_t    flags;
    uint32_t    padding;
    uint64_t    user_data;
} __attribute__((packed)) vfio_user_sub_region_ioregionfd_t;

typedef struct vfio_user_region_io_fds_reply {
    uint32_t    argsz;
    uint32_t    flags;
    uint32_t    index;
    uint32_t    count;
    union sub_region {
        struct vfio_user_sub_region_ioeventfd ioeventfd;
        struct vfio_user_sub_region_ioregionfd ioregionfd;
    } sub_regions[];
} __attribute__((packed)) vfio_user_region_io_fds_reply_t;

/* DEVICE_FEATURE: struct vfio_device_feature without the 64-bit alignment. */
struct vfio_user_device_feature {
    uint32_t    argsz;
    uint32_t    flags;          /* feature index | VFIO_DEVICE_FEATURE_GET/SET/PROBE */
    uint8_t     data[];
} __attribute__((packed));

struct vfio_user_device_feature_migration {
    uint64_t    flags;          /* VFIO_MIGRATION_STOP_COPY / _P2P / _PRE_COPY */
} __attribute__((packed));

struct vfio_user_device_feature_mig_state {
    uint32_t    device_state;   /* enum vfio_device_mig_state */
    uint32_t    data_fd;        /* unused by vfio-user */
} __attribute__((packed));

struct vfio_user_device_feature_dma_logging_range {
    uint64_t    iova;
    uint64_t    length;
} __attribute__((packed));

/* Unlike the kernel's, the ranges follow in the message, not by pointer. */
struct vfio_user_device_feature_dma_logging_control {
    uint64_t    page_size;
    uint32_t    num_ranges;     /* 0: log every write */
    uint32_t    reserved;
    struct vfio_user_device_feature_dma_logging_range ranges[];
} __attribute__((packed));

struct vfio_user_device_feature_dma_logging_report {
    uint64_t    iova;
    uint64_t    length;
    uint64_t    page_size;
    uint8_t     bitmap[];       /* follows in the reply */
} __attribute__((packed));

/* Device states in MIG_DATA and DEVICE_FEATURE, as Linux's vfio v2 numbers them. */
enum vfio_user_device_mig_state {
    VFIO_USER_DEVICE_STATE_ERROR        = 0,
    VFIO_USER_DEVICE_STATE_STOP         = 1,
    VFIO_USER_DEVICE_STATE_RUNNING      = 2,
    VFIO_USER_DEVICE_STATE_STOP_COPY    = 3,
    VFIO_USER_DEVICE_STATE_RESUMING     = 4,
    VFIO_USER_DEVICE_STATE_RUNNING_P2P  = 5,
    VFIO_USER_DEVICE_STATE_PRE_COPY     = 6,
    VFIO_USER_DEVICE_STATE_PRE_COPY_P2P = 7,
    VFIO_USER_DEVICE_NUM_STATES         = 8,
};

/*
 * Migration definitions that <linux/vfio.h> before Linux 6.2 lacks: the
 * PRE_COPY flag and states (enum values, added with the flag), and the
 * stop-copy size feature.
 */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY             (1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY          6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P      7
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE   9
struct vfio_device_feature_mig_data_size {
    uint64_t    stop_copy_length;
};
#endif

/* MIG_DATA_READ / MIG_DATA_WRITE */
struct vfio_user_mig_data {
    uint32_t    argsz;
    uint32_t    size;
    uint8_t     data[];
} __attribute__((packed));

/* Wire sizes fixed by the spec; checked at compile time. */
_Static_assert(sizeof(struct vfio_user_header) == 16, "header is 16 bytes");
_Static_assert(sizeof(struct vfio_user_dma_map) == 32, "DMA_MAP is 32 bytes");
_Static_assert(sizeof(struct vfio_user_region_access) == 16, "region access");
_Static_assert(sizeof(struct vfio_user_write_multi_data) == 24, "write multi");
_Static_assert(sizeof(struct vfio_region_info) == 32, "region info");
_Static_assert(sizeof(struct vfio_user_sub_region_ioeventfd) == 48,
               "ioeventfd entry");

#ifdef __cplusplus
}
#endif

#endif /* VFIO_USER_H */
