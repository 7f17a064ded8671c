/*
 * A minimal NVMe host driver on libvfio-user-client, for the vfu-nvme
 * tests and benchmark: it plays the VMM and the guest at once. Guest
 * memory is a memfd in this process, registered as two adjacent DMA
 * regions (so a buffer can cross from one to the other), with its fd
 * (the device maps it) or without (the device asks by DMA message and
 * this library answers while it waits). It brings the controller up,
 * creates queues, submits entries, rings doorbells (through ioeventfds
 * when installed) and reaps completions by interrupt.
 */
#ifndef VFU_NVME_HOST_H
#define VFU_NVME_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vfio-user-client.h"
#include "nvme.h"

#define HOST_IOVA       0x10000000ull   /* guest memory starts here */
#define HOST_MAX_QUEUES 4               /* admin + 3 I/O pairs */

struct host_queue {
    uint64_t iova;          /* entry 0 */
    uint32_t size;
    uint32_t tail;          /* SQ: next slot; CQ: unused */
    uint32_t head;          /* CQ: next entry to reap */
    uint8_t phase;          /* CQ: the tag a new entry has */
};

struct nvme_host {
    vfu_client_t *c;
    uint8_t *mem;
    size_t mem_size;
    int memfd;
    uint64_t next_free;     /* bump allocator over guest memory */
    size_t msix_cap;
    int irq[HOST_MAX_QUEUES];           /* MSI-X vector q's eventfd */
    uint64_t irqs[HOST_MAX_QUEUES];     /* interrupts counted */
    struct host_queue sq[HOST_MAX_QUEUES], cq[HOST_MAX_QUEUES];
    uint16_t cid;
};

/*
 * Connects to @sock, registers @mem_size bytes of guest memory (mapped:
 * with its fd), enables MSI-X with an eventfd per queue. 0 or -1.
 */
int host_open(struct nvme_host *h, const char *sock, size_t mem_size,
              bool mapped);
void host_close(struct nvme_host *h);

/* Guest memory: an IOVA and where it is here. */
uint64_t host_alloc(struct nvme_host *h, size_t len, size_t align);
void *host_ptr(struct nvme_host *h, uint64_t iova);

uint32_t host_reg32(struct nvme_host *h, uint32_t off);
void host_wreg32(struct nvme_host *h, uint32_t off, uint32_t v);

/* Admin queues of @entries, CC.EN = 1, waits for CSTS.RDY. 0 or -1. */
int host_enable(struct nvme_host *h, uint32_t entries);

/* Puts @cmd (its cid set here, returned) in SQ @qid; rings when @ring. */
uint16_t host_submit(struct nvme_host *h, uint16_t qid, struct nvme_sqe *cmd,
                     bool ring);
void host_ring_sq(struct nvme_host *h, uint16_t qid);

/*
 * The next completion of CQ @qid, waiting up to @ms (interrupts and DMA
 * requests served meanwhile); advances and rings the head unless
 * @no_ring. 0, or -1 on timeout.
 */
int host_reap(struct nvme_host *h, uint16_t qid, struct nvme_cqe *cqe,
              int ms, bool no_ring);

/* Submit and reap on the admin queue; the status (SCT << 8 | SC). */
int host_admin(struct nvme_host *h, struct nvme_sqe *cmd, uint32_t *dw0);

/* Creates I/O CQ and SQ @qid of @entries, vector @qid. The status. */
int host_create_io(struct nvme_host *h, uint16_t qid, uint32_t entries);

/* (SCT << 8) | SC of a completion. */
static inline int
host_status(const struct nvme_cqe *e)
{
    return (e->status >> 1) & 0x7ff;
}

#endif /* VFU_NVME_HOST_H */
