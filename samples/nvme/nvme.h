/*
 * vfu-nvme: an NVMe 1.4 controller on libvfio-user. This header owns what
 * the files share: the spec's numbers (registers, opcodes, status codes,
 * entry layouts) and the controller's state. Who does what:
 *   regs.c   BAR0 (controller registers and doorbells), enable, shutdown,
 *            reset, the MSI-X table and its pending bits
 *   queue.c  submission/completion queues: fetching, posting, phase tags,
 *            interrupts, and the loop that serves every queue
 *   prp.c    guest memory: PRP and SGL walking, and moving data between
 *            guest memory and the backing file or a buffer
 *   admin.c  admin commands; io.c the NVM command set
 *   main.c   the PCI function, the command line and the event loop
 * Everything the guest writes is validated where it is used; a bad value
 * gets the status a controller returns, never a crash.
 */
#ifndef VFU_NVME_H
#define VFU_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libvfio-user.h"

/* ---- Controller registers (BAR0), NVMe 1.4 section 3.1 ---- */
#define NVME_REG_CAP        0x00    /* u64 */
#define NVME_REG_VS         0x08
#define NVME_REG_INTMS      0x0c
#define NVME_REG_INTMC      0x10
#define NVME_REG_CC         0x14
#define NVME_REG_CSTS       0x1c
#define NVME_REG_NSSR       0x20
#define NVME_REG_AQA        0x24
#define NVME_REG_ASQ        0x28    /* u64 */
#define NVME_REG_ACQ        0x30    /* u64 */
#define NVME_REG_DBS        0x1000  /* doorbells, stride 4 bytes (DSTRD 0) */

#define NVME_CC_EN          (1u << 0)
#define NVME_CC_CSS(cc)     (((cc) >> 4) & 7)
#define NVME_CC_MPS(cc)     (((cc) >> 7) & 15)
#define NVME_CC_AMS(cc)     (((cc) >> 11) & 7)
#define NVME_CC_SHN(cc)     (((cc) >> 14) & 3)
#define NVME_CC_IOSQES(cc)  (((cc) >> 16) & 15)
#define NVME_CC_IOCQES(cc)  (((cc) >> 20) & 15)

#define NVME_CSTS_RDY       (1u << 0)
#define NVME_CSTS_CFS       (1u << 1)
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_OCCURRING (1u << 2)
#define NVME_CSTS_SHST_DONE (2u << 2)

/* ---- What this controller offers ---- */
#define NVME_PCI_VID        0x1234      /* the ids of QEMU's own samples' */
#define NVME_PCI_DID        0x4e56      /* vendor; "NV" */
#define NVME_PCI_SSID       0x0001
#define NVME_MAX_IO_QUEUES  16          /* I/O SQs and as many CQs */
#define NVME_NR_QUEUES      (NVME_MAX_IO_QUEUES + 1)
#define NVME_NR_VECTORS     NVME_NR_QUEUES  /* MSI-X: one per queue */
#define NVME_MQES           1023        /* largest queue, 0's based */
#define NVME_PAGE           4096u       /* CC.MPS must choose 4 KiB */
#define NVME_MDTS           5           /* 2^5 pages: 128 KiB a command */
#define NVME_MAX_XFER       (NVME_PAGE << NVME_MDTS)
#define NVME_NN             1           /* one namespace, ID 1 */
#define NVME_AERL           3           /* four AERs held, 0's based */
#define NVME_ACL            3
#define NVME_ERR_LOG_ENTRIES 16
#define NVME_BAR0_SIZE      0x4000
#define NVME_BAR4_SIZE      0x4000      /* MSI-X table at 0, PBA at 0x2000 */
#define NVME_PBA_OFFSET     0x2000

/* ---- Opcodes ---- */
enum {
    NVME_ADM_DELETE_SQ = 0x00, NVME_ADM_CREATE_SQ = 0x01,
    NVME_ADM_GET_LOG = 0x02, NVME_ADM_DELETE_CQ = 0x04,
    NVME_ADM_CREATE_CQ = 0x05, NVME_ADM_IDENTIFY = 0x06,
    NVME_ADM_ABORT = 0x08, NVME_ADM_SET_FEATURES = 0x09,
    NVME_ADM_GET_FEATURES = 0x0a, NVME_ADM_AER = 0x0c,
};
enum {
    NVME_IO_FLUSH = 0x00, NVME_IO_WRITE = 0x01, NVME_IO_READ = 0x02,
    NVME_IO_WRITE_ZEROES = 0x08, NVME_IO_DSM = 0x09,
};

/* ---- Status: (SCT << 8) | SC, as in the completion's status field ---- */
#define NVME_SCT_GENERIC    0x000
#define NVME_SCT_SPECIFIC   0x100
#define NVME_SCT_MEDIA      0x200
enum {
    NVME_SC_SUCCESS = 0x00, NVME_SC_INVALID_OPCODE = 0x01,
    NVME_SC_INVALID_FIELD = 0x02, NVME_SC_DATA_XFER_ERROR = 0x04,
    NVME_SC_INTERNAL = 0x06, NVME_SC_ABORT_REQ = 0x07,
    NVME_SC_INVALID_NS = 0x0b, NVME_SC_CMD_SEQ_ERROR = 0x0c,
    NVME_SC_SGL_INVALID_SEG = 0x0d, NVME_SC_SGL_INVALID_COUNT = 0x0e,
    NVME_SC_SGL_INVALID_DATA = 0x0f, NVME_SC_SGL_INVALID_TYPE = 0x11,
    NVME_SC_PRP_INVALID_OFFSET = 0x13,
    NVME_SC_LBA_RANGE = 0x80,
    /* command specific */
    NVME_SC_CQ_INVALID = NVME_SCT_SPECIFIC | 0x00,
    NVME_SC_QID_INVALID = NVME_SCT_SPECIFIC | 0x01,
    NVME_SC_QUEUE_SIZE = NVME_SCT_SPECIFIC | 0x02,
    NVME_SC_AER_LIMIT = NVME_SCT_SPECIFIC | 0x05,
    NVME_SC_INVALID_VECTOR = NVME_SCT_SPECIFIC | 0x08,
    NVME_SC_INVALID_LOG_PAGE = NVME_SCT_SPECIFIC | 0x09,
    NVME_SC_INVALID_QUEUE_DELETION = NVME_SCT_SPECIFIC | 0x0c,
    NVME_SC_FEATURE_NOT_SAVEABLE = NVME_SCT_SPECIFIC | 0x0d,
    /* media and data integrity */
    NVME_SC_WRITE_FAULT = NVME_SCT_MEDIA | 0x80,
    NVME_SC_READ_ERROR = NVME_SCT_MEDIA | 0x81,
};
#define NVME_STATUS_DNR     0x4000      /* Do Not Retry, in the field */
/* Internal: the command is held (an AER) and completes later. */
#define NVME_NO_COMPLETION  0xffff

/* ---- Entries ---- */
struct nvme_sqe {
    uint8_t opc;
    uint8_t flags;          /* FUSE [1:0], PSDT [7:6] */
    uint16_t cid;
    uint32_t nsid;
    uint32_t cdw2, cdw3;
    uint64_t mptr;
    uint64_t dptr[2];       /* PRP1, PRP2; or SGL1 */
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_sqe) == 64, "SQE");

struct nvme_cqe {
    uint32_t dw0;
    uint32_t dw1;
    uint16_t sqhd;
    uint16_t sqid;
    uint16_t cid;
    uint16_t status;        /* phase tag in bit 0 */
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQE");

#define NVME_PSDT(sqe)      (((sqe)->flags >> 6) & 3)
#define NVME_FUSE(sqe)      ((sqe)->flags & 3)

/* ---- State ---- */
struct nvme_sq {
    bool live;
    uint64_t base;          /* guest address of entry 0 */
    uint32_t size;          /* entries */
    uint32_t head;          /* next entry to fetch */
    uint32_t tail;          /* the doorbell's last valid value */
    uint16_t cqid;
};

struct nvme_cq {
    bool live;
    bool ien;               /* interrupts enabled */
    bool irq_due;           /* entries posted since the last interrupt */
    uint16_t vector;
    uint64_t base;
    uint32_t size;
    uint32_t tail;          /* next entry to post */
    uint32_t head;          /* the doorbell's last valid value */
    uint8_t phase;          /* the phase tag entries get now */
    uint16_t nr_sqs;        /* SQs that complete here */
};

struct nvme_err_entry {
    uint64_t count;
    uint16_t sqid, cid, status, param;
    uint64_t lba;
    uint32_t nsid;
    uint8_t vs, trtype, rsvd[2];
    uint64_t csi;
    uint16_t trtype_info;
    uint8_t rsvd2[22];
} __attribute__((packed));
_Static_assert(sizeof(struct nvme_err_entry) == 64, "error log entry");

struct nvme_smart_counters {
    uint64_t units_read, units_written;     /* 512-byte units */
    uint64_t read_cmds, write_cmds;
    uint64_t power_cycles, unsafe_shutdowns;
    uint64_t media_errors;
};

struct nvme_ctrl {
    vfu_ctx_t *ctx;
    int backing;            /* the namespace's file (or memfd) */
    uint64_t nsze;          /* namespace size in 512-byte blocks */
    char serial[21];

    /* registers */
    uint64_t cap;
    uint32_t intms, cc, csts, aqa;
    bool intx_held;         /* raised while INTMS masked it */
    uint64_t asq, acq;

    /* queues; index = queue ID, 0 the admin pair */
    struct nvme_sq sq[NVME_NR_QUEUES];
    struct nvme_cq cq[NVME_NR_QUEUES];
    uint16_t nr_io_sqs, nr_io_cqs;      /* granted by Set Features */
    bool queues_granted;

    /* features */
    bool wce;               /* volatile write cache enabled */
    uint32_t arbitration, power_mgmt, err_recovery, irq_coalescing;
    uint32_t write_atomicity, async_config;
    uint16_t temp_thresh[9][2];         /* [sensor][over, under] */
    uint32_t vector_config[NVME_NR_VECTORS];

    /* asynchronous events */
    uint16_t aer_cids[NVME_AERL + 1];
    unsigned nr_aers;
    uint32_t aen_pending;   /* an event waiting for an AER (0: none) */
    bool aen_masked;        /* error events wait for the log to be read */

    /* logs */
    struct nvme_err_entry err_log[NVME_ERR_LOG_ENTRIES];   /* newest first */
    uint64_t err_count;
    struct nvme_smart_counters smart;
    uint64_t started;       /* CLOCK_MONOTONIC seconds at start */

    /* MSI-X table and PBA (BAR4) */
    uint8_t msix[NVME_BAR4_SIZE];
    size_t msix_cap;        /* the capability's offset in config space */

    /* ioeventfd doorbells: value of each doorbell last seen in shadow */
    int db_eventfd;         /* -1: doorbells come by message only */
    volatile uint32_t *db_shadow;       /* mapped shadow of 0x1000.. */
    uint32_t db_shadow_seen[2 * NVME_NR_QUEUES];

    /* the serving loop */
    bool in_process;        /* process() running; a nested call defers */
    bool work;              /* something changed: process() again */
    bool shutdown_pending;  /* CC.SHN written, not yet carried out */
    uint64_t gen;           /* bumped by every reset: stale work stops */
    uint8_t *bounce;        /* NVME_MAX_XFER, for data by message */
    uint8_t *sgl_buf;       /* scratch of dma_sg_t entries */
    size_t sgl_cap;
    uint64_t msgs_dma;      /* DMA transfers done by message (stats) */
    uint64_t sgl_cmds;      /* commands whose data came as an SGL */
};

/* regs.c */
void nvme_ctrl_init(struct nvme_ctrl *c);
void nvme_ctrl_reset(struct nvme_ctrl *c, bool whole);
ssize_t nvme_bar0_access(vfu_ctx_t *ctx, char *buf, size_t count,
                         loff_t off, bool is_write);
void nvme_doorbell(struct nvme_ctrl *c, uint32_t index, uint32_t value);
void nvme_shadow_doorbells(struct nvme_ctrl *c);
void nvme_queue_created(struct nvme_ctrl *c, unsigned qid);

/* queue.c */
void nvme_process(struct nvme_ctrl *c);

/* cq.c */
static inline bool
nvme_cq_full(const struct nvme_cq *cq)
{
    return (cq->tail + 1) % cq->size == cq->head;
}
void nvme_post(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid,
               uint16_t status, uint32_t dw0);
void nvme_aen(struct nvme_ctrl *c, uint8_t type, uint8_t info, uint8_t log);
/* A held event, once an AER is there to carry it. */
void nvme_deliver_pending_aen(struct nvme_ctrl *c);
void nvme_complete_aers(struct nvme_ctrl *c, uint16_t status);
void nvme_log_error(struct nvme_ctrl *c, uint16_t sqid,
                    const struct nvme_sqe *cmd, uint16_t status, uint64_t lba);
void nvme_fatal(struct nvme_ctrl *c, const char *why);

/* irq.c */
void nvme_raise(struct nvme_ctrl *c, uint16_t vector);
ssize_t nvme_bar4_access(vfu_ctx_t *ctx, char *buf, size_t count,
                         loff_t off, bool is_write);

/* prp.c: a command's data, described once and then moved */
#define NVME_MAX_SEGS   128         /* pieces of one command's data */
#define NVME_MAX_SGS    512         /* their dma_sg_t entries */
struct nvme_data {
    size_t nr;
    struct { uint64_t addr; uint32_t len; } seg[NVME_MAX_SEGS];
    size_t len;
};
uint16_t nvme_map_data(struct nvme_ctrl *c, const struct nvme_sqe *cmd,
                       size_t len, struct nvme_data *d);
bool nvme_guest_range_ok(struct nvme_ctrl *c, uint64_t addr, size_t len,
                         int prot);
int nvme_guest_read(struct nvme_ctrl *c, uint64_t addr, void *buf,
                    size_t len);
int nvme_guest_write(struct nvme_ctrl *c, uint64_t addr, const void *buf,
                     size_t len);
uint16_t nvme_data_to_guest(struct nvme_ctrl *c, const struct nvme_data *d,
                            const void *buf);
uint16_t nvme_data_from_guest(struct nvme_ctrl *c, const struct nvme_data *d,
                              void *buf);
int nvme_guest_write_cqe(struct nvme_ctrl *c, uint64_t addr, const void *cqe);
uint16_t nvme_file_to_guest(struct nvme_ctrl *c, const struct nvme_data *d,
                            off_t off);
uint16_t nvme_guest_to_file(struct nvme_ctrl *c, const struct nvme_data *d,
                            off_t off);

/* admin.c and io.c: the status, and DW0 of the completion in *dw0 */
uint16_t nvme_admin(struct nvme_ctrl *c, const struct nvme_sqe *cmd,
                    uint32_t *dw0);
uint16_t nvme_io(struct nvme_ctrl *c, const struct nvme_sqe *cmd,
                 uint32_t *dw0, uint64_t *lba);
void nvme_flush_backing(struct nvme_ctrl *c);

static inline uint32_t
get32(const void *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

static inline void
put32(void *p, uint32_t v)
{
    __builtin_memcpy(p, &v, 4);
}

#endif /* VFU_NVME_H */
