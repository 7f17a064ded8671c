/*
 * Registers of vfu-nvme: BAR0's controller registers (CAP, VS, INTMS/INTMC,
 * CC, CSTS, AQA, ASQ, ACQ) and doorbells, the controller's enable, disable
 * and shutdown, and its resets (CC.EN = 0, and the whole function on FLR,
 * DEVICE_RESET or a lost client). Register writes only change state and ask
 * the event loop for a pass (nvme_process()); they never touch guest
 * memory, so they are safe to run in the middle of a command.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "nvme.h"

#define CAP_MQES        ((uint64_t)NVME_MQES)
#define CAP_CQR         (1ull << 16)        /* queues must be contiguous */
#define CAP_TO(halfsec) ((uint64_t)(halfsec) << 24)
#define CAP_CSS_NVM     (1ull << 37)
#define NVME_VERSION    0x00010400u         /* 1.4.0 */

static void
default_features(struct nvme_ctrl *c)
{
    c->nr_io_sqs = c->nr_io_cqs = NVME_MAX_IO_QUEUES;
    c->queues_granted = false;
    c->wce = true;
    c->arbitration = c->power_mgmt = c->err_recovery = 0;
    c->irq_coalescing = c->write_atomicity = c->async_config = 0;
    for (int s = 0; s < 9; s++) {
        c->temp_thresh[s][0] = 343;     /* over: 70 degrees C, in kelvin */
        c->temp_thresh[s][1] = 0;       /* under: none */
    }
    for (unsigned v = 0; v < NVME_NR_VECTORS; v++) {
        c->vector_config[v] = v;
    }
}

void
nvme_ctrl_init(struct nvme_ctrl *c)
{
    struct timespec ts;

    c->cap = CAP_MQES | CAP_CQR | CAP_TO(20) | CAP_CSS_NVM;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    c->started = (uint64_t)ts.tv_sec;
    nvme_ctrl_reset(c, true);
}

/* Forgets doorbell values seen in shadow memory for queue pair @qid. */
static void
rearm_shadow(struct nvme_ctrl *c, unsigned qid)
{
    for (unsigned i = 2 * qid; i < 2 * qid + 2; i++) {
        if (c->db_shadow != NULL) {
            c->db_shadow[i] = 0;
        }
        c->db_shadow_seen[i] = 0;
    }
}

/*
 * Controller reset (CC.EN 1 -> 0): queues, held commands and events go,
 * CSTS clears, features return to their defaults. @whole: the function
 * reset as well (FLR, DEVICE_RESET, client gone): every register.
 */
void
nvme_ctrl_reset(struct nvme_ctrl *c, bool whole)
{
    c->gen++;
    memset(c->sq, 0, sizeof(c->sq));
    memset(c->cq, 0, sizeof(c->cq));
    for (unsigned q = 0; q < NVME_NR_QUEUES; q++) {
        rearm_shadow(c, q);
    }
    c->nr_aers = 0;
    c->aen_pending = 0;
    c->aen_masked = false;
    c->shutdown_pending = false;
    c->csts = 0;
    default_features(c);
    if (whole) {
    c->cc = c->aqa = c->intms = 0;
        c->intx_held = false;
        c->asq = c->acq = 0;
        memset(c->msix, 0, sizeof(c->msix));
        for (unsigned v = 0; v < NVME_NR_VECTORS; v++) {
            c->msix[v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL] =
                PCI_MSIX_ENTRY_CTRL_MASKBIT;
        }
    }
}

/* CC.EN 0 -> 1: checks the settings and brings the admin queues up. */
static void
enable(struct nvme_ctrl *c)
{
    uint32_t sqs = (c->aqa & 0xfff) + 1, cqs = ((c->aqa >> 16) & 0xfff) + 1;

    c->csts &= ~NVME_CSTS_SHST_MASK;
    if (NVME_CC_MPS(c->cc) != 0 || NVME_CC_CSS(c->cc) != 0 ||
        NVME_CC_AMS(c->cc) != 0 || sqs < 2 || cqs < 2) {
        nvme_fatal(c, "enabled with settings it does not support");
        return;
    }
    c->sq[0] = (struct nvme_sq) {
        .live = true, .base = c->asq & ~0xfffull, .size = sqs, .cqid = 0,
    };
    c->cq[0] = (struct nvme_cq) {
        .live = true, .ien = true, .vector = 0, .base = c->acq & ~0xfffull,
        .size = cqs, .phase = 1, .nr_sqs = 1,
    };
    c->csts |= NVME_CSTS_RDY;
    vfu_log(c->ctx, LOG_INFO, "enabled: admin SQ %u entries at %#llx, CQ %u "
            "at %#llx", sqs, (unsigned long long)c->sq[0].base, cqs,
            (unsigned long long)c->cq[0].base);
}

static void
write_cc(struct nvme_ctrl *c, uint32_t v)
{
    uint32_t old = c->cc;

    c->cc = v;
    if ((old & NVME_CC_EN) && !(v & NVME_CC_EN)) {
        vfu_log(c->ctx, LOG_INFO, "reset (CC.EN cleared)");
        nvme_ctrl_reset(c, false);
    } else if (!(old & NVME_CC_EN) && (v & NVME_CC_EN)) {
        enable(c);
    }
    if (NVME_CC_SHN(v) != 0 && NVME_CC_SHN(old) == 0 &&
        (c->csts & NVME_CSTS_SHST_MASK) == 0) {
        c->csts |= NVME_CSTS_SHST_OCCURRING;
        c->shutdown_pending = true;
        c->work = true;
    }
}

/*
 * A doorbell: @index counts 4-byte registers from 0x1000 (even: SQ tail,
 * odd: CQ head). A write to a queue that does not exist, or of a value
 * outside the queue, is ignored and reported as an asynchronous event.
 */
void
nvme_doorbell(struct nvme_ctrl *c, uint32_t index, uint32_t value)
{
    uint32_t qid = index / 2;

    if (!(c->csts & NVME_CSTS_RDY)) {
        return;
    }
    if (qid >= NVME_NR_QUEUES ||
        !(index % 2 == 0 ? c->sq[qid].live : c->cq[qid].live)) {
        vfu_log(c->ctx, LOG_WARNING, "doorbell %u of no queue", index);
        nvme_aen(c, 0, 0x00, 0x01);     /* invalid doorbell register */
        c->work = true;
        return;
    }
    if (index % 2 == 0) {
        struct nvme_sq *sq = &c->sq[qid];
        if (value >= sq->size) {
            goto bad_value;
        }
        sq->tail = value;
    } else {
        struct nvme_cq *cq = &c->cq[qid];
        uint32_t posted = (cq->tail + cq->size - cq->head) % cq->size;
        uint32_t advance = (value + cq->size - cq->head) % cq->size;
        if (value >= cq->size || advance > posted) {
            goto bad_value;
        }
        cq->head = value;
    }
    c->work = true;
    return;
bad_value:
    vfu_log(c->ctx, LOG_WARNING, "doorbell %u: bad value %u", index, value);
    nvme_aen(c, 0, 0x01, 0x01);         /* invalid doorbell write value */
    c->work = true;
}

/* Doorbells the client stored in shadow memory and signalled. */
void
nvme_shadow_doorbells(struct nvme_ctrl *c)
{
    if (c->db_shadow == NULL) {
        return;
    }
    for (uint32_t i = 0; i < 2 * NVME_NR_QUEUES; i++) {
        uint32_t v = __atomic_load_n(&c->db_shadow[i], __ATOMIC_ACQUIRE);
        if (v != c->db_shadow_seen[i]) {
            c->db_shadow_seen[i] = v;
            nvme_doorbell(c, i, v);
        }
    }
}

void
nvme_queue_created(struct nvme_ctrl *c, unsigned qid)
{
    rearm_shadow(c, qid);
}

static void
write_dword(struct nvme_ctrl *c, loff_t off, uint32_t v)
{
    switch (off) {
    case NVME_REG_INTMS:
        c->intms |= v;
        break;
    case NVME_REG_INTMC:
        c->intms &= ~v;
        if (!(c->intms & 1) && c->intx_held) {
            c->intx_held = false;
            nvme_raise(c, 0);
        }
        break;
    case NVME_REG_CC:
        write_cc(c, v);
        break;
    case NVME_REG_AQA:
        c->aqa = v & 0x0fff0fff;
        break;
    case NVME_REG_ASQ:
        c->asq = (c->asq & ~0xffffffffull) | v;
        break;
    case NVME_REG_ASQ + 4:
        c->asq = (c->asq & 0xffffffffull) | (uint64_t)v << 32;
        break;
    case NVME_REG_ACQ:
        c->acq = (c->acq & ~0xffffffffull) | v;
        break;
    case NVME_REG_ACQ + 4:
        c->acq = (c->acq & 0xffffffffull) | (uint64_t)v << 32;
        break;
    default:
        if (off >= NVME_REG_DBS) {
            nvme_doorbell(c, (uint32_t)(off - NVME_REG_DBS) / 4, v);
        }
        /* CAP, VS, CSTS, NSSR (not offered) and reserved: read-only */
        break;
    }
}

ssize_t
nvme_bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
                 bool is_write)
{
    struct nvme_ctrl *c = vfu_get_private(ctx);
    uint8_t regs[0x40] = { 0 };

    if (is_write) {
        /* Dword and qword writes, aligned; anything else is dropped. */
        if ((count == 4 || count == 8) && off % 4 == 0) {
            for (size_t i = 0; i < count; i += 4) {
                write_dword(c, off + (loff_t)i, get32(buf + i));
            }
        } else {
            vfu_log(ctx, LOG_DEBUG, "BAR0 write of %zu bytes at %#llx dropped",
                    count, (unsigned long long)off);
        }
        return (ssize_t)count;
    }
    memcpy(regs + NVME_REG_CAP, &c->cap, 8);
    put32(regs + NVME_REG_VS, NVME_VERSION);
    put32(regs + NVME_REG_INTMS, c->intms);
    put32(regs + NVME_REG_INTMC, c->intms);
    put32(regs + NVME_REG_CC, c->cc);
    put32(regs + NVME_REG_CSTS, c->csts);
    put32(regs + NVME_REG_AQA, c->aqa);
    memcpy(regs + NVME_REG_ASQ, &c->asq, 8);
    memcpy(regs + NVME_REG_ACQ, &c->acq, 8);
    for (size_t i = 0; i < count; i++) {
        /* doorbells and reserved space read as 0 */
        buf[i] = (char)((size_t)off + i < sizeof(regs) ? regs[off + i] : 0);
    }
    return (ssize_t)count;
}

