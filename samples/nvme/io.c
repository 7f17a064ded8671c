/*
 * The NVM command set of vfu-nvme on namespace 1, the backing file in
 * 512-byte blocks: Read, Write, Flush, Write Zeroes and Dataset Management
 * (deallocate). Reads and writes move data between guest memory and the
 * file (prp.c); Flush, and writes with FUA or with the write cache off,
 * reach the file's storage with fdatasync(); deallocated and zeroed blocks
 * become holes (read back as zeros, as Identify Namespace's DLFEAT says).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "nvme.h"

#define BLOCK           512u
#define DSM_MAX_RANGES  256

void
nvme_flush_backing(struct nvme_ctrl *c)
{
    if (fdatasync(c->backing) < 0 && errno != EINVAL) {
        vfu_log(c->ctx, LOG_ERR, "fdatasync of the backing file: %m");
    }
}

static bool
in_range(const struct nvme_ctrl *c, uint64_t slba, uint64_t nlb)
{
    return slba <= c->nsze && nlb <= c->nsze - slba;
}

/* Blocks [slba, slba + nlb) read as zeros: a hole, or zeros written. */
static uint16_t
zero_blocks(struct nvme_ctrl *c, uint64_t slba, uint64_t nlb)
{
    off_t off = (off_t)(slba * BLOCK), len = (off_t)(nlb * BLOCK);

    if (nlb == 0) {
        return NVME_SC_SUCCESS;
    }
    if (fallocate(c->backing, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  off, len) == 0) {
        return NVME_SC_SUCCESS;
    }
    memset(c->bounce, 0, NVME_MAX_XFER);
    while (len > 0) {
        size_t n = len < (off_t)NVME_MAX_XFER ? (size_t)len : NVME_MAX_XFER;
        ssize_t w = pwrite(c->backing, c->bounce, n, off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return NVME_SC_WRITE_FAULT;
        }
        off += w;
        len -= w;
    }
    return NVME_SC_SUCCESS;
}

static uint16_t
read_write(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint64_t slba,
           bool write)
{
    uint64_t nlb = (cmd->cdw12 & 0xffff) + 1;
    bool fua = cmd->cdw12 & (1u << 30);
    size_t len = (size_t)nlb * BLOCK;
    struct nvme_data d;
    uint16_t st;

    if (!in_range(c, slba, nlb)) {
        return NVME_SC_LBA_RANGE | NVME_STATUS_DNR;
    }
    if (len > NVME_MAX_XFER) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;   /* over MDTS */
    }
    if ((st = nvme_map_data(c, cmd, len, &d)) != NVME_SC_SUCCESS) {
        return st | NVME_STATUS_DNR;
    }
    if (write) {
        st = nvme_guest_to_file(c, &d, (off_t)(slba * BLOCK));
        if (st == NVME_SC_SUCCESS && (fua || !c->wce) &&
            fdatasync(c->backing) < 0 && errno != EINVAL) {
            st = NVME_SC_WRITE_FAULT;
        }
    } else {
        st = nvme_file_to_guest(c, &d, (off_t)(slba * BLOCK));
    }
    if (st == NVME_SC_SUCCESS) {
        if (write) {
            c->smart.write_cmds++;
            c->smart.units_written += nlb;
        } else {
            c->smart.read_cmds++;
            c->smart.units_read += nlb;
        }
    } else if ((st & 0x700) == NVME_SCT_MEDIA) {
        c->smart.media_errors++;
    }
    return st;
}

/* One range of Dataset Management's list. */
struct dsm_range {
    uint32_t attributes;
    uint32_t nlb;
    uint64_t slba;
} __attribute__((packed));

static uint16_t
dataset_mgmt(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint64_t *lba)
{
    struct dsm_range r[DSM_MAX_RANGES];
    size_t nr = (cmd->cdw10 & 0xff) + 1;
    struct nvme_data d;
    uint16_t st;

    if (!(cmd->cdw11 & (1u << 2))) {
        return NVME_SC_SUCCESS;     /* only hints: nothing to do */
    }
    if ((st = nvme_map_data(c, cmd, nr * sizeof(r[0]), &d)) != NVME_SC_SUCCESS ||
        (st = nvme_data_from_guest(c, &d, r)) != NVME_SC_SUCCESS) {
        return st | NVME_STATUS_DNR;
    }
    for (size_t i = 0; i < nr; i++) {   /* all valid, or none done */
        if (!in_range(c, r[i].slba, r[i].nlb)) {
            *lba = r[i].slba;
            return NVME_SC_LBA_RANGE | NVME_STATUS_DNR;
        }
    }
    for (size_t i = 0; i < nr; i++) {
        if ((st = zero_blocks(c, r[i].slba, r[i].nlb)) != NVME_SC_SUCCESS) {
            return st;
        }
    }
    return NVME_SC_SUCCESS;
}

uint16_t
nvme_io(struct nvme_ctrl *c, const struct nvme_sqe *cmd, uint32_t *dw0,
        uint64_t *lba)
{
    uint64_t slba = cmd->cdw10 | (uint64_t)cmd->cdw11 << 32;
    uint16_t st;

    (void)dw0;
    if (NVME_FUSE(cmd) != 0) {
        return NVME_SC_INVALID_FIELD | NVME_STATUS_DNR;   /* no fused pairs */
    }
    if (cmd->nsid != 1 &&
        !(cmd->opc == NVME_IO_FLUSH && cmd->nsid == 0xffffffff)) {
        return NVME_SC_INVALID_NS | NVME_STATUS_DNR;
    }
    switch (cmd->opc) {
    case NVME_IO_FLUSH:
        return fdatasync(c->backing) < 0 && errno != EINVAL ?
               NVME_SC_WRITE_FAULT : NVME_SC_SUCCESS;
    case NVME_IO_READ:
    case NVME_IO_WRITE:
        *lba = slba;
        return read_write(c, cmd, slba, cmd->opc == NVME_IO_WRITE);
    case NVME_IO_WRITE_ZEROES: {
        uint64_t nlb = (cmd->cdw12 & 0xffff) + 1;
        *lba = slba;
        if (!in_range(c, slba, nlb)) {
            return NVME_SC_LBA_RANGE | NVME_STATUS_DNR;
        }
        st = zero_blocks(c, slba, nlb);
        if (st == NVME_SC_SUCCESS && (cmd->cdw12 & (1u << 30)) &&
            fdatasync(c->backing) < 0 && errno != EINVAL) {
            st = NVME_SC_WRITE_FAULT;
        }
        return st;
    }
    case NVME_IO_DSM:
        return dataset_mgmt(c, cmd, lba);
    default:
        return NVME_SC_INVALID_OPCODE | NVME_STATUS_DNR;
    }
}
