/*
 * Completions of vfu-nvme: posting an entry with the phase tag and the SQ
 * head, the held Asynchronous Event Requests and the events that complete
 * them, the error log, and the controller's fatal status (CSTS.CFS). Below
 * the queues, the admin commands and the registers, which all post or
 * report through it; it calls only guest memory access (prp.c).
 */
#include <string.h>

#include "nvme.h"

void
nvme_fatal(struct nvme_ctrl *c, const char *why)
{
    if (!(c->csts & NVME_CSTS_CFS)) {
        vfu_log(c->ctx, LOG_ERR, "controller fatal status: %s", why);
    }
    c->csts |= NVME_CSTS_CFS;
}

void
nvme_post(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status,
          uint32_t dw0)
{
    struct nvme_sq *sq = &c->sq[sqid];
    struct nvme_cq *cq = &c->cq[sq->cqid];
    struct nvme_cqe e = {
        .dw0 = dw0, .sqhd = (uint16_t)sq->head, .sqid = sqid, .cid = cid,
    };

    if (!cq->live || nvme_cq_full(cq)) {
        /* Only an AER or Abort can get here with the queue full. */
        vfu_log(c->ctx, LOG_WARNING, "CQ %u full: completion of cid %u lost",
                sq->cqid, cid);
        return;
    }
    e.status = (uint16_t)((status << 1) | cq->phase);
    if (nvme_guest_write_cqe(c, cq->base + (uint64_t)cq->tail * 16, &e) < 0) {
        nvme_fatal(c, "completion queue not writable");
        return;
    }
    if (++cq->tail == cq->size) {
        cq->tail = 0;
        cq->phase ^= 1;
    }
    cq->irq_due = true;
}

void
nvme_log_error(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *cmd,
               uint16_t status, uint64_t lba)
{
    struct nvme_err_entry *e = &c->err_log[0];

    memmove(&c->err_log[1], &c->err_log[0],
            sizeof(c->err_log) - sizeof(c->err_log[0]));
    memset(e, 0, sizeof(*e));
    e->count = ++c->err_count;
    e->sqid = sqid;
    e->cid = cmd->cid;
    e->status = (uint16_t)(status << 1);
    e->param = 0xffff;          /* no parameter singled out */
    e->lba = lba;
    e->nsid = cmd->nsid;
}

/* The oldest held AER's command ID, taken off the list. */
static uint16_t
pop_aer(struct nvme_ctrl *c)
{
    uint16_t cid = c->aer_cids[0];
    memmove(&c->aer_cids[0], &c->aer_cids[1],
            --c->nr_aers * sizeof(c->aer_cids[0]));
    return cid;
}

void
nvme_complete_aers(struct nvme_ctrl *c, uint16_t status)
{
    while (c->nr_aers > 0) {
        nvme_post(c, 0, pop_aer(c), status, 0);
    }
}

/*
 * An asynchronous event: completes a held AER with it, or waits for the
 * next AER. Events of the same type then stay masked until the host reads
 * the log page named (NVMe 1.4 5.2).
 */
void
nvme_aen(struct nvme_ctrl *c, uint8_t type, uint8_t info, uint8_t log)
{
    uint32_t dw0 = type | (uint32_t)info << 8 | (uint32_t)log << 16;

    if (c->aen_masked || c->aen_pending != 0) {
        return;
    }
    c->aen_pending = dw0;           /* never 0: the log page is named */
    nvme_deliver_pending_aen(c);
}

void
nvme_deliver_pending_aen(struct nvme_ctrl *c)
{
    if (c->aen_pending != 0 && c->nr_aers > 0) {
        nvme_post(c, 0, pop_aer(c), NVME_SC_SUCCESS, c->aen_pending);
        c->aen_pending = 0;
        c->aen_masked = true;
    }
}
