/*
 * Queues of vfu-nvme: fetching submission entries up to the tail the host
 * rang, running them (admin.c, io.c), posting their completions (cq.c),
 * holding back when a completion queue is full, raising one interrupt per
 * completion queue per pass (irq.c), and the controller's shutdown. The
 * top of the controller: the event loop (main.c) calls it.
 *
 * nvme_process() runs from the event loop, never from a region callback:
 * guest memory that comes by message is read while the library serves the
 * client's requests, so doorbells, register writes and resets can arrive
 * in the middle of a command. Those only record what changed (a nested
 * nvme_process() call just asks for another pass); the pass checks the
 * controller's reset generation after every step that may have let them
 * in, and drops the work of a controller that was reset meanwhile.
 */
#include <string.h>

#include "nvme.h"

#define FETCH_BATCH     16      /* entries read from guest memory at once */
#define PASS_BUDGET     64      /* entries per queue per pass: fairness */

/* Runs one command and posts its completion; false if a reset intervened. */
static bool
run_one(struct nvme_ctrl *c, uint16_t qid, const struct nvme_sqe *cmd)
{
    uint64_t gen = c->gen, lba = 0;
    uint32_t dw0 = 0;
    uint16_t st;

    st = qid == 0 ? nvme_admin(c, cmd, &dw0) : nvme_io(c, cmd, &dw0, &lba);
    if (gen != c->gen) {
        return false;       /* reset meanwhile: its queues are gone */
    }
    if (st == NVME_NO_COMPLETION) {
        return true;
    }
    if (st != NVME_SC_SUCCESS) {
        vfu_log(c->ctx, LOG_DEBUG, "q%u cid %u opc %#x: status %#x", qid,
                cmd->cid, cmd->opc, st);
        nvme_log_error(c, qid, cmd, st, lba);
    }
    if (c->sq[qid].live) {  /* an admin command may have deleted it */
        nvme_post(c, qid, cmd->cid, st, dw0);
    }
    return true;
}

/* Serves up to PASS_BUDGET entries of SQ @qid; true if more are waiting. */
static bool
serve_sq(struct nvme_ctrl *c, uint16_t qid)
{
    struct nvme_sq *sq = &c->sq[qid];
    struct nvme_sqe batch[FETCH_BATCH];
    unsigned budget = PASS_BUDGET;

    while (sq->live && sq->head != sq->tail && budget > 0) {
        struct nvme_cq *cq = &c->cq[sq->cqid];
        uint32_t n = sq->tail > sq->head ? sq->tail - sq->head
                                         : sq->size - sq->head;
        uint64_t gen = c->gen;

        if (!cq->live || nvme_cq_full(cq)) {
            return false;   /* the CQ head doorbell brings us back */
        }
        n = n < FETCH_BATCH ? n : FETCH_BATCH;
        n = n < budget ? n : budget;
        if (nvme_guest_read(c, sq->base + (uint64_t)sq->head * 64, batch,
                            n * sizeof(batch[0])) < 0) {
            if (gen == c->gen) {
                nvme_fatal(c, "submission queue not readable");
            }
            return false;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (gen != c->gen || !sq->live || nvme_cq_full(&c->cq[sq->cqid])) {
                return false;
            }
            sq->head = (sq->head + 1) % sq->size;
            if (!run_one(c, qid, &batch[i])) {
                return false;
            }
        }
        budget -= n;
    }
    return sq->live && sq->head != sq->tail;
}

static void
raise_due(struct nvme_ctrl *c)
{
    for (unsigned q = 0; q < NVME_NR_QUEUES; q++) {
        struct nvme_cq *cq = &c->cq[q];
        if (cq->live && cq->irq_due) {
            cq->irq_due = false;
            if (cq->ien) {
                nvme_raise(c, cq->vector);
            }
        }
    }
}

/* Shutdown (CC.SHN): held AERs complete, data reaches the backing file. */
static void
shut_down(struct nvme_ctrl *c)
{
    c->shutdown_pending = false;
    if (c->csts & NVME_CSTS_RDY) {
        nvme_complete_aers(c, NVME_SC_ABORT_REQ);
    }
    nvme_flush_backing(c);
    c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) | NVME_CSTS_SHST_DONE;
    vfu_log(c->ctx, LOG_INFO, "shutdown complete");
}

void
nvme_process(struct nvme_ctrl *c)
{
    if (c->in_process) {
        c->work = true;     /* the running pass goes round again */
        return;
    }
    c->in_process = true;
    do {
        bool more = false;

        c->work = false;
        if (c->shutdown_pending) {
            shut_down(c);
        }
        if (!(c->csts & NVME_CSTS_RDY) || (c->csts & NVME_CSTS_CFS) ||
            (c->csts & NVME_CSTS_SHST_MASK) != 0) {
            raise_due(c);
            continue;
        }
        for (uint16_t q = 0; q < NVME_NR_QUEUES; q++) {
            if (c->sq[q].live && serve_sq(c, q)) {
                more = true;
            }
        }
        nvme_deliver_pending_aen(c);
        raise_due(c);
        if (more) {
            c->work = true;
        }
    } while (c->work);
    c->in_process = false;
}
