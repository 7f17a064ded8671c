/*
 * Admin commands of vfu-nvme: Identify (controller, namespace, active
 * namespace list, namespace descriptors), Get/Set Features, Create and
 * Delete I/O queues, Get Log Page (error, SMART / health, firmware slot),
 * Abort and Asynchronous Event Request. Each returns the status the
 * completion carries (NVME_NO_COMPLETION for a held AER) and fills DW0.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "nvme.h"

#define NVME_MODEL      "libvfio-user NVMe sample"
#define NVME_FIRMWARE   "1.0"
#define IDENTIFY_SIZE   4096

/* Bytes of @s at @p, padded with spaces to @n (the spec's ASCII fields). */
static void
ascii(uint8_t *p, const char *s, size_t n)
{
    size_t l = strlen(s);
    memset(p, ' ', n);
    memcpy(p, s, l < n ? l : n);
}

static void
put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

static void
put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* 16 bytes that name this namespace, from the serial (NGUID; EUI64 = 8). */
static void
ns_guid(const struct nvme_ctrl *c, uint8_t out[16])
{
    uint64_t h = 0xcbf29ce484222325ull;     /* FNV-1a */
    for (const char *p = c->serial; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    put64(out, h);
    put64(out + 8, h * 0x9e3779b97f4a7c15ull + 1);
}

static void
identify_ctrl(const struct nvme_ctrl *c, uint8_t *id)
{
    char nqn[256];

    put16(id + 0, NVME_PCI_VID);
    put16(id + 2, NVME_PCI_VID);
    ascii(id + 4, c->serial, 20);
    ascii(id + 24, NVME_MODEL, 40);
    ascii(id + 64, NVME_FIRMWARE, 8);
    id[72] = 6;                         /* recommended arbitration burst */
    id[77] = NVME_MDTS;
    put16(id + 78, 1);                  /* controller ID */
    put32(id + 80, 0x00010400);         /* version 1.4 */
    id[111] = 1;                        /* an I/O controller */
    id[258] = NVME_ACL;
    id[259] = NVME_AERL;
    id[260] = 0x03;                     /* one firmware slot, read-only */
    id[261] = 0x04;                     /* log pages with offsets */
    id[262] = NVME_ERR_LOG_ENTRIES - 1;
    put16(id + 266, 343);               /* warning temperature, kelvin */
    put16(id + 268, 353);               /* critical temperature */
    put64(id + 280, c->nsze * 512);     /* total NVM capacity (low half) */
    id[512] = 0x66;                     /* SQ entries: 64 bytes */
    id[513] = 0x44;                     /* CQ entries: 16 bytes */
    put32(id + 516, NVME_NN);
    put16(id + 520, 0x0c);              /* Write Zeroes, Dataset Management */
    id[525] = 0x07;                     /* volatile write cache; flush all */
    id[530] = 1;
    put32(id + 536, 0x1);               /* SGLs, no alignment required */
    snprintf(nqn, sizeof(nqn), "nqn.2024-01.io.libvfio-user:nvme:%s",
             c->serial);
    memcpy(id + 768, nqn, strlen(nqn));
    put16(id + 2048, 900);              /* power state 0: 9 W */
}

static void
identify_ns(const struct nvme_ctrl *c, uint8_t *id)
{
    uint8_t guid[16];

    put64(id + 0, c->nsze);             /* size, capacity, utilisation */
    put64(id + 8, c->nsze);
    put64(id + 16, c->nsze);
    id[33] = 0x09;      /* deallocated blocks read 0; Write Zeroes may deallocate */
    put64(id + 48, c->nsze * 512);      /* NVM capacity (low half) */
    ns_guid(c, guid);
    memcpy(id + 104, guid, 16);         /* NGUID */
    memcpy(id + 120, guid, 8);          /* EUI64 */
    put32(id + 128, 9u << 16);          /* LBA format 0: 512 bytes, no metadata */
}

static uint16_t
identify(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    static uint8_t id[IDENTIFY_SIZE];
    struct nvme_data d;
    uint8_t guid[16];
    uint16_t st;

    memset(id, 0, sizeof(id));
    switch (cmd->cdw10 & 0xff) {
    case 0x00:                          /* namespace */
        if (cmd->nsid != 1) {
            return NVME_SC_INVALID_NS | NVME_STATUS_DNR;
        }
        identify_ns(c, id);
        break;
    case 0x01:                          /* controller */
        identify_ctrl(c, id);
        break;
    case 0x02:                          /* active namespaces above NSID */
        if (cmd->nsid >= 0xfffffffe) {
            return NVME_SC_INVALID_NS | NVME_STATUS_DNR;
        }
        if (cmd->nsid < 1) {
            put32(id, 1);
        }
        break;
    case 0x03:                          /* namespace identification */
        if (cmd->nsid != 1) {
            return NVME_SC_INVALID_NS | NVME_STATUS_DNR;
        }
        ns_guid(c, guid);
        id[0] = 1;                      /* EUI64 */
        id[1] = 8;
        memcpy(id + 4, guid, 8);
        id[12] = 2;                     /* NGUID */
        id[13] = 16;
        memcpy(id + 16, guid, 16);
        break;
    default:
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    if ((st = nvme_map_data(c, cmd, sizeof(id), &d)) != NVME_SC_SUCCESS) {
        return st;
    }
    return nvme_data_to_guest(c, &d, id);
}

static uint64_t
units_1000(uint64_t blocks)     /* SMART counts thousands of 512-byte units */
{
    return (blocks + 999) / 1000;
}

static size_t
smart_log(const struct nvme_ctrl *c, uint8_t *p)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    put16(p + 1, 308);                  /* composite temperature: 35 C */
    p[3] = 100;                         /* available spare */
    p[4] = 10;                          /* its threshold */
    put64(p + 32, units_1000(c->smart.units_read));
    put64(p + 48, units_1000(c->smart.units_written));
    put64(p + 64, c->smart.read_cmds);
    put64(p + 80, c->smart.write_cmds);
    put64(p + 112, c->smart.power_cycles);
    put64(p + 128, ((uint64_t)ts.tv_sec - c->started) / 3600);
    put64(p + 144, c->smart.unsafe_shutdowns);
    put64(p + 160, c->smart.media_errors);
    put64(p + 176, c->err_count);
    put16(p + 200, 308);                /* temperature sensor 1 */
    return 512;
}

static uint16_t
get_log_page(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    static uint8_t log[4096];
    uint8_t lid = cmd->cdw10 & 0xff;
    bool rae = cmd->cdw10 & (1u << 15);
    uint64_t numd = ((uint64_t)(cmd->cdw11 & 0xffff) << 16 | cmd->cdw10 >> 16) + 1;
    uint64_t off = cmd->cdw12 | (uint64_t)cmd->cdw13 << 32;
    size_t size, len = (size_t)numd * 4;
    struct nvme_data d;
    uint16_t st;

    memset(log, 0, sizeof(log));
    switch (lid) {
    case 0x01:                          /* error information */
        size = sizeof(c->err_log);
        memcpy(log, c->err_log, size);
        break;
    case 0x02:                          /* SMART / health information */
        size = smart_log(c, log);
        break;
    case 0x03:                          /* firmware slot information */
        size = 512;
        log[0] = 1;                     /* slot 1 active */
        ascii(log + 8, NVME_FIRMWARE, 8);
        break;
    default:
        return NVME_SC_INVALID_LOG_PAGE | NVME_STATUS_DNR;
    }
    if (off % 4 != 0 || off > size || len > NVME_MAX_XFER) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    if ((st = nvme_map_data(c, cmd, len, &d)) != NVME_SC_SUCCESS) {
        return st;
    }
    if (len > sizeof(log) - off) {
        /* past the page: zeros (the host asked for more than it holds) */
        uint8_t *big = c->bounce;
        memset(big, 0, len);
        memcpy(big, log + off, size - off);
        st = nvme_data_to_guest(c, &d, big);
    } else {
        st = nvme_data_to_guest(c, &d, log + off);
    }
    if (st == NVME_SC_SUCCESS && !rae) {
        c->aen_masked = false;          /* the host has read the event's log */
    }
    return st;
}

/* Get Features; SEL 0 current, 1 default, 2 saved (= default), 3 caps. */
static uint16_t
get_features(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0)
{
    uint8_t fid = cmd->cdw10 & 0xff;
    unsigned sel = (cmd->cdw10 >> 8) & 7;
    struct nvme_ctrl defaults;
    const struct nvme_ctrl *f = c;

    if (sel > 3) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    if (sel == 1 || sel == 2) {
        memset(&defaults, 0, sizeof(defaults));
        defaults.nr_io_sqs = defaults.nr_io_cqs = NVME_MAX_IO_QUEUES;
        defaults.wce = true;
        for (int s = 0; s < 9; s++) {
            defaults.temp_thresh[s][0] = 343;
        }
        for (unsigned v = 0; v < NVME_NR_VECTORS; v++) {
            defaults.vector_config[v] = v;
        }
        f = &defaults;
    }
    switch (fid) {
    case 0x01: *dw0 = f->arbitration; break;
    case 0x02: *dw0 = f->power_mgmt; break;
    case 0x04: {
        unsigned sensor = (cmd->cdw11 >> 16) & 0xf, type = (cmd->cdw11 >> 20) & 3;
        if (sensor > 8 || type > 1) {
            return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
        }
        *dw0 = f->temp_thresh[sensor][type];
        break;
    }
    case 0x05: *dw0 = f->err_recovery; break;
    case 0x06: *dw0 = f->wce; break;
    case 0x07:
        *dw0 = (uint32_t)(f->nr_io_cqs - 1) << 16 | (uint32_t)(f->nr_io_sqs - 1);
        break;
    case 0x08: *dw0 = f->irq_coalescing; break;
    case 0x09: {
        uint16_t iv = cmd->cdw11 & 0xffff;
        if (iv >= NVME_NR_VECTORS) {
            return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
        }
        *dw0 = f->vector_config[iv];
        break;
    }
    case 0x0a: *dw0 = f->write_atomicity; break;
    case 0x0b: *dw0 = f->async_config; break;
    default:
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    if (sel == 3) {
        *dw0 = 0x4;                     /* changeable, not saveable, not per NS */
    }
    return NVME_SC_SUCCESS;
}

static uint16_t
set_features(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0)
{
    uint8_t fid = cmd->cdw10 & 0xff;
    uint32_t v = cmd->cdw11;

    if (cmd->cdw10 & (1u << 31)) {
        return NVME_SC_FEATURE_NOT_SAVEABLE | NVME_STATUS_DNR;
    }
    switch (fid) {
    case 0x01: c->arbitration = v; break;
    case 0x02:
        if ((v & 0x1f) != 0) {          /* power state 0 is the only one */
            return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
        }
        c->power_mgmt = v & 0xff;
        break;
    case 0x04: {
        unsigned sensor = (v >> 16) & 0xf, type = (v >> 20) & 3;
        if (type > 1 || (sensor > 8 && sensor != 0xf)) {
            return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
        }
        for (unsigned s = 0; s < 9; s++) {
            if (s == sensor || sensor == 0xf) {
                c->temp_thresh[s][type] = v & 0xffff;
            }
        }
        break;
    }
    case 0x05: c->err_recovery = v & 0x1ffff; break;
    case 0x06: c->wce = v & 1; break;
    case 0x07: {
        uint32_t nsq = (v & 0xffff) + 1, ncq = (v >> 16) + 1;
        for (unsigned q = 1; q < NVME_NR_QUEUES; q++) {
            if (c->sq[q].live || c->cq[q].live) {
                return NVME_SC_CMD_SEQ_ERROR | NVME_STATUS_DNR;
            }
        }
        if (nsq > 0xffff || ncq > 0xffff) {
            return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
        }
        c->nr_io_sqs = (uint16_t)(nsq < NVME_MAX_IO_QUEUES ? nsq : NVME_MAX_IO_QUEUES);
        c->nr_io_cqs = (uint16_t)(ncq < NVME_MAX_IO_QUEUES ? ncq : NVME_MAX_IO_QUEUES);
        c->queues_granted = true;
        *dw0 = (uint32_t)(c->nr_io_cqs - 1) << 16 | (uint32_t)(c->nr_io_sqs - 1);
        break;
    }
    case 0x08: c->irq_coalescing = v & 0xffff; break;   /* accepted, unused */
    case 0x09: {
        uint16_t iv = v & 0xffff;
        if (iv >= NVME_NR_VECTORS) {
            return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
        }
        c->vector_config[iv] = v & 0x1ffff;
        break;
    }
    case 0x0a: c->write_atomicity = v & 1; break;
    case 0x0b: c->async_config = v; break;
    default:
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    return NVME_SC_SUCCESS;
}

/* Whether MSI-X is on: with INTx only vector 0 exists. */
static bool
msix_enabled(struct nvme_ctrl *c)
{
    uint16_t msgctl;
    memcpy(&msgctl, vfu_pci_get_config_space(c->ctx)->raw + c->msix_cap +
           PCI_MSIX_FLAGS, 2);
    return msgctl & PCI_MSIX_FLAGS_ENABLE;
}

static uint16_t
create_cq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff, iv = cmd->cdw11 >> 16;
    uint32_t size = (cmd->cdw10 >> 16) + 1;
    uint64_t base = cmd->dptr[0];

    if (qid == 0 || qid > c->nr_io_cqs || c->cq[qid].live) {
        return NVME_SC_QID_INVALID | NVME_STATUS_DNR;
    }
    if (size < 2 || size > NVME_MQES + 1) {
        return NVME_SC_QUEUE_SIZE | NVME_STATUS_DNR;
    }
    if (iv >= NVME_NR_VECTORS || (iv != 0 && !msix_enabled(c))) {
        return NVME_SC_INVALID_VECTOR | NVME_STATUS_DNR;
    }
    if (!(cmd->cdw11 & 1) || (base & (NVME_PAGE - 1)) ||
        NVME_CC_IOCQES(c->cc) != 4 ||
        !nvme_guest_range_ok(c, base, (size_t)size * 16, PROT_WRITE)) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    c->cq[qid] = (struct nvme_cq) {
        .live = true, .ien = cmd->cdw11 & 2, .vector = iv, .base = base,
        .size = size, .phase = 1,
    };
    nvme_queue_created(c, qid);
    vfu_log(c->ctx, LOG_DEBUG, "CQ %u: %u entries at %#llx, vector %u", qid,
            size, (unsigned long long)base, iv);
    return NVME_SC_SUCCESS;
}

static uint16_t
create_sq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff, cqid = cmd->cdw11 >> 16;
    uint32_t size = (cmd->cdw10 >> 16) + 1;
    uint64_t base = cmd->dptr[0];

    if (qid == 0 || qid > c->nr_io_sqs || c->sq[qid].live) {
        return NVME_SC_QID_INVALID | NVME_STATUS_DNR;
    }
    if (cqid == 0 || cqid >= NVME_NR_QUEUES || !c->cq[cqid].live) {
        return NVME_SC_CQ_INVALID | NVME_STATUS_DNR;
    }
    if (size < 2 || size > NVME_MQES + 1) {
        return NVME_SC_QUEUE_SIZE | NVME_STATUS_DNR;
    }
    if (!(cmd->cdw11 & 1) || (base & (NVME_PAGE - 1)) ||
        NVME_CC_IOSQES(c->cc) != 6 ||
        !nvme_guest_range_ok(c, base, (size_t)size * 64, PROT_READ)) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    c->sq[qid] = (struct nvme_sq) {
        .live = true, .base = base, .size = size, .cqid = cqid,
    };
    c->cq[cqid].nr_sqs++;
    nvme_queue_created(c, qid);
    vfu_log(c->ctx, LOG_DEBUG, "SQ %u: %u entries at %#llx, CQ %u", qid,
            size, (unsigned long long)base, cqid);
    return NVME_SC_SUCCESS;
}

static uint16_t
delete_sq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff;

    if (qid == 0 || qid >= NVME_NR_QUEUES || !c->sq[qid].live) {
        return NVME_SC_QID_INVALID | NVME_STATUS_DNR;
    }
    /* Commands run to completion as they are fetched: none is pending. */
    c->cq[c->sq[qid].cqid].nr_sqs--;
    memset(&c->sq[qid], 0, sizeof(c->sq[qid]));
    return NVME_SC_SUCCESS;
}

static uint16_t
delete_cq(struct nvme_ctrl *c, const struct nvme_sqe *cmd)
{
    uint16_t qid = cmd->cdw10 & 0xffff;

    if (qid == 0 || qid >= NVME_NR_QUEUES || !c->cq[qid].live) {
        return NVME_SC_QID_INVALID | NVME_STATUS_DNR;
    }
    if (c->cq[qid].nr_sqs > 0) {
        return NVME_SC_INVALID_QUEUE_DELETION | NVME_STATUS_DNR;
    }
    memset(&c->cq[qid], 0, sizeof(c->cq[qid]));
    return NVME_SC_SUCCESS;
}

/* Only held AERs can still be aborted: everything else has completed. */
static uint16_t
abort_cmd(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0)
{
    uint16_t sqid = cmd->cdw10 & 0xffff, cid = cmd->cdw10 >> 16;

    *dw0 = 1;                           /* not aborted */
    if (sqid != 0) {
        return NVME_SC_SUCCESS;
    }
    for (unsigned i = 0; i < c->nr_aers; i++) {
        if (c->aer_cids[i] == cid) {
            memmove(&c->aer_cids[i], &c->aer_cids[i + 1],
                    (--c->nr_aers - i) * sizeof(c->aer_cids[0]));
            nvme_post(c, 0, cid, NVME_SC_ABORT_REQ, 0);
            *dw0 = 0;
            break;
        }
    }
    return NVME_SC_SUCCESS;
}

uint16_t
nvme_admin(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0)
{
    /* Over PCIe admin commands use PRPs, and none is fused. */
    if (NVME_PSDT(cmd) != 0 || NVME_FUSE(cmd) != 0) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;
    }
    switch (cmd->opc) {
    case NVME_ADM_IDENTIFY:     return identify(c, cmd);
    case NVME_ADM_GET_LOG:      return get_log_page(c, cmd);
    case NVME_ADM_GET_FEATURES: return get_features(c, cmd, dw0);
    case NVME_ADM_SET_FEATURES: return set_features(c, cmd, dw0);
    case NVME_ADM_CREATE_CQ:    return create_cq(c, cmd);
    case NVME_ADM_CREATE_SQ:    return create_sq(c, cmd);
    case NVME_ADM_DELETE_SQ:    return delete_sq(c, cmd);
    case NVME_ADM_DELETE_CQ:    return delete_cq(c, cmd);
    case NVME_ADM_ABORT:        return abort_cmd(c, cmd, dw0);
    case NVME_ADM_AER:
        if (c->nr_aers > NVME_AERL) {
            return NVME_SC_AER_LIMIT | NVME_STATUS_DNR;
        }
        c->aer_cids[c->nr_aers++] = cmd->cid;
        return NVME_NO_COMPLETION;
    default:
        return NVME_SC_INVALID_OPCODE | NVME_STATUS_DNR;
    }
}
