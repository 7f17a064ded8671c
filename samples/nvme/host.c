/*
 * The minimal NVMe host driver of host.h: guest memory, controller
 * bring-up, queues, submission and completion by interrupt.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

#define CFG     VFIO_PCI_CONFIG_REGION_INDEX
#define BAR0    VFIO_PCI_BAR0_REGION_INDEX

static uint8_t
cfg8(struct nvme_host *h, uint32_t off)
{
    uint8_t v = 0;
    (void)vfu_client_region_read(h->c, CFG, off, &v, 1);
    return v;
}

/* Offset of standard capability @id, or 0. */
static size_t
find_cap(struct nvme_host *h, uint8_t id)
{
    uint8_t p = cfg8(h, PCI_CAPABILITY_LIST);
    for (int n = 0; p != 0 && n < 48; n++) {
        if (cfg8(h, p) == id) {
            return p;
        }
        p = cfg8(h, p + 1);
    }
    return 0;
}

int
host_open(struct nvme_host *h, const char *sock, size_t mem_size, bool mapped)
{
    uint32_t flags = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE;
    size_t half = mem_size / 2;
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, msgctl = 0;

    memset(h, 0, sizeof(*h));
    h->memfd = -1;
    for (int i = 0; i < HOST_MAX_QUEUES; i++) {
        h->irq[i] = -1;
    }
    h->mem_size = mem_size;
    h->next_free = HOST_IOVA;
    for (int i = 0; i < 500 && h->c == NULL; i++) {
        if ((h->c = vfu_client_connect(sock)) == NULL) {
            usleep(10000);      /* the server is between bind and listen */
        }
    }
    if (h->c == NULL || vfu_client_negotiate(h->c, NULL) < 0) {
        return -1;
    }
    h->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
    if (h->memfd < 0 || ftruncate(h->memfd, (off_t)mem_size) < 0) {
        return -1;
    }
    h->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                  h->memfd, 0);
    if (h->mem == MAP_FAILED) {
        h->mem = NULL;
        return -1;
    }
    /* Two adjacent regions: transfers may cross from one to the other. */
    if (vfu_client_dma_map(h->c, HOST_IOVA, half, mapped ? h->memfd : -1,
                           0, h->mem, flags) < 0 ||
        vfu_client_dma_map(h->c, HOST_IOVA + half, mem_size - half,
                           mapped ? h->memfd : -1, mapped ? half : 0,
                           h->mem + half, flags) < 0) {
        return -1;
    }
    if (vfu_client_region_write(h->c, CFG, PCI_COMMAND, &cmd, 2, false) < 0 ||
        (h->msix_cap = find_cap(h, PCI_CAP_ID_MSIX)) == 0 ||
        vfu_client_region_read(h->c, CFG, h->msix_cap + PCI_MSIX_FLAGS,
                               &msgctl, 2) < 0) {
        return -1;
    }
    msgctl |= PCI_MSIX_FLAGS_ENABLE;
    if (vfu_client_region_write(h->c, CFG, h->msix_cap + PCI_MSIX_FLAGS,
                                &msgctl, 2, false) < 0) {
        return -1;
    }
    for (int i = 0; i < HOST_MAX_QUEUES; i++) {
        if ((h->irq[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
            return -1;
        }
    }
    return vfu_client_set_irqs(h->c, VFIO_PCI_MSIX_IRQ_INDEX,
                               VFIO_IRQ_SET_DATA_EVENTFD |
                               VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                               HOST_MAX_QUEUES, h->irq, NULL);
}

void
host_close(struct nvme_host *h)
{
    if (h->c != NULL) {
        vfu_client_close(h->c);
    }
    for (int i = 0; i < HOST_MAX_QUEUES; i++) {
        if (h->irq[i] >= 0) {
            close(h->irq[i]);
        }
    }
    if (h->mem != NULL) {
        munmap(h->mem, h->mem_size);
    }
    if (h->memfd >= 0) {
        close(h->memfd);
    }
    memset(h, 0, sizeof(*h));
}

uint64_t
host_alloc(struct nvme_host *h, size_t len, size_t align)
{
    uint64_t a = (h->next_free + align - 1) & ~(uint64_t)(align - 1);
    h->next_free = a + len;
    return a;
}

void *
host_ptr(struct nvme_host *h, uint64_t iova)
{
    return h->mem + (iova - HOST_IOVA);
}

uint32_t
host_reg32(struct nvme_host *h, uint32_t off)
{
    uint32_t v = 0xffffffff;
    (void)vfu_client_region_read(h->c, BAR0, off, &v, 4);
    return v;
}

void
host_wreg32(struct nvme_host *h, uint32_t off, uint32_t v)
{
    (void)vfu_client_region_write(h->c, BAR0, off, &v, 4, true);
}

int
host_enable(struct nvme_host *h, uint32_t entries)
{
    struct host_queue *sq = &h->sq[0], *cq = &h->cq[0];

    sq->size = cq->size = entries;
    sq->iova = host_alloc(h, entries * 64, NVME_PAGE);
    cq->iova = host_alloc(h, entries * 16, NVME_PAGE);
    sq->tail = cq->head = 0;
    cq->phase = 1;
    memset(host_ptr(h, cq->iova), 0, entries * 16);
    host_wreg32(h, NVME_REG_AQA, (entries - 1) << 16 | (entries - 1));
    host_wreg32(h, NVME_REG_ASQ, (uint32_t)sq->iova);
    host_wreg32(h, NVME_REG_ASQ + 4, (uint32_t)(sq->iova >> 32));
    host_wreg32(h, NVME_REG_ACQ, (uint32_t)cq->iova);
    host_wreg32(h, NVME_REG_ACQ + 4, (uint32_t)(cq->iova >> 32));
    host_wreg32(h, NVME_REG_CC, NVME_CC_EN | 6u << 16 | 4u << 20);
    for (int i = 0; i < 1000; i++) {
        uint32_t csts = host_reg32(h, NVME_REG_CSTS);
        if (csts & NVME_CSTS_CFS) {
            return -1;
        }
        if (csts & NVME_CSTS_RDY) {
            return 0;
        }
        usleep(1000);
    }
    return -1;
}

void
host_ring_sq(struct nvme_host *h, uint16_t qid)
{
    uint32_t v = h->sq[qid].tail;
    (void)vfu_client_doorbell(h->c, BAR0, NVME_REG_DBS + 8 * qid, &v, 4, true);
}

uint16_t
host_submit(struct nvme_host *h, uint16_t qid, struct nvme_sqe *cmd, bool ring)
{
    struct host_queue *sq = &h->sq[qid];

    cmd->cid = h->cid++;
    memcpy(host_ptr(h, sq->iova + (uint64_t)sq->tail * 64), cmd, 64);
    sq->tail = (sq->tail + 1) % sq->size;
    if (ring) {
        host_ring_sq(h, qid);
    }
    return cmd->cid;
}

static bool
take(struct nvme_host *h, uint16_t qid, struct nvme_cqe *cqe, bool no_ring)
{
    struct host_queue *cq = &h->cq[qid];
    struct nvme_cqe *e = host_ptr(h, cq->iova + (uint64_t)cq->head * 16);
    /* the status word, with the phase tag, is the entry's last store */
    uint16_t st = __atomic_load_n((uint16_t *)((uint8_t *)e + 14),
                                  __ATOMIC_ACQUIRE);

    if ((st & 1) != cq->phase) {
        return false;
    }
    memcpy(cqe, e, sizeof(*cqe));
    if (++cq->head == cq->size) {
        cq->head = 0;
        cq->phase ^= 1;
    }
    if (!no_ring) {
        uint32_t v = cq->head;
        (void)vfu_client_doorbell(h->c, BAR0, NVME_REG_DBS + 8 * qid + 4,
                                  &v, 4, true);
    }
    return true;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
host_reap(struct nvme_host *h, uint16_t qid, struct nvme_cqe *cqe, int ms,
          bool no_ring)
{
    int64_t end = now_ms() + ms;

    while (!take(h, qid, cqe, no_ring)) {
        struct pollfd pfd[2] = {
            { .fd = h->irq[qid], .events = POLLIN },
            { .fd = vfu_client_fd(h->c), .events = POLLIN },
        };
        int64_t left = end - now_ms();
        eventfd_t n;

        if (left <= 0) {
            return -1;
        }
        /*
         * The device's DMA requests (guest memory without an fd), those
         * the library already holds included: they may have come in
         * while it waited for a reply of ours.
         */
        if (vfu_client_serve(h->c, 0) < 0) {
            return -1;
        }
        if (take(h, qid, cqe, no_ring)) {
            break;
        }
        if (poll(pfd, 2, (int)left) < 0 && errno != EINTR) {
            return -1;
        }
        if (eventfd_read(h->irq[qid], &n) == 0) {
            h->irqs[qid] += n;
        }
    }
    return 0;
}

int
host_admin(struct nvme_host *h, struct nvme_sqe *cmd, uint32_t *dw0)
{
    struct nvme_cqe e;
    uint16_t cid = host_submit(h, 0, cmd, true);

    if (host_reap(h, 0, &e, 10000, false) < 0 || e.cid != cid) {
        return -1;
    }
    if (dw0 != NULL) {
        *dw0 = e.dw0;
    }
    return host_status(&e);
}

int
host_create_io(struct nvme_host *h, uint16_t qid, uint32_t entries)
{
    struct host_queue *sq = &h->sq[qid], *cq = &h->cq[qid];
    struct nvme_sqe cmd = { .opc = NVME_ADM_CREATE_CQ };
    int st;

    cq->size = sq->size = entries;
    cq->iova = host_alloc(h, entries * 16, NVME_PAGE);
    sq->iova = host_alloc(h, entries * 64, NVME_PAGE);
    cq->head = sq->tail = 0;
    cq->phase = 1;
    memset(host_ptr(h, cq->iova), 0, entries * 16);
    cmd.dptr[0] = cq->iova;
    cmd.cdw10 = (entries - 1) << 16 | qid;
    cmd.cdw11 = (uint32_t)qid << 16 | 3;        /* vector qid, IEN, PC */
    if ((st = host_admin(h, &cmd, NULL)) != 0) {
        return st;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.opc = NVME_ADM_CREATE_SQ;
    cmd.dptr[0] = sq->iova;
    cmd.cdw10 = (entries - 1) << 16 | qid;
    cmd.cdw11 = (uint32_t)qid << 16 | 1;        /* CQ qid, PC */
    return host_admin(h, &cmd, NULL);
}
