/*
 * Guest memory for vfu-nvme: turning a command's data pointer (PRP entries
 * and lists, or an SGL) into pieces of guest memory, and moving bytes
 * between those pieces and the backing file or a buffer. Memory the client
 * shared with an fd is used in place (vfu_addr_to_sgl + vfu_sgl_get, and
 * preadv/pwritev straight into it); memory without one goes by DMA_READ /
 * DMA_WRITE messages (vfu_sgl_read/write with flags 0) through a bounce
 * buffer. Nothing here keeps a pointer into guest memory past one call:
 * the client may unmap between two of them.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "nvme.h"

#define SG(c, i) ((dma_sg_t *)((c)->sgl_buf + (i) * dma_sg_size()))

/*
 * Describes [addr, addr + len) into the scratch entries from @first;
 * returns the number made, or -1 (not mapped, no access, too many pieces).
 */
static int
resolve(struct nvme_ctrl *c, size_t first, uint64_t addr, size_t len,
        int prot)
{
    int n;

    if (first >= c->sgl_cap || addr + len < addr) {
        return -1;
    }
    n = vfu_addr_to_sgl(c->ctx, (vfu_dma_addr_t)(uintptr_t)addr, len,
                        SG(c, first), c->sgl_cap - first, prot);
    return n < 0 ? -1 : n;
}

static bool
all_mapped(struct nvme_ctrl *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!vfu_sg_is_mappable(c->ctx, SG(c, i))) {
            return false;
        }
    }
    return true;
}

/* Copies between @buf and guest memory in the first @n scratch entries. */
static int
copy_sgl(struct nvme_ctrl *c, size_t n, void *buf, bool to_guest)
{
    struct iovec iov[NVME_MAX_SGS];
    uint8_t *p = buf;

    if (all_mapped(c, n)) {
        if (vfu_sgl_get(c->ctx, SG(c, 0), iov, n, 0) < 0) {
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (to_guest) {
                memcpy(iov[i].iov_base, p, iov[i].iov_len);
            } else {
                memcpy(p, iov[i].iov_base, iov[i].iov_len);
            }
            p += iov[i].iov_len;
        }
        vfu_sgl_put(c->ctx, SG(c, 0), iov, n);
        return 0;
    }
    c->msgs_dma++;
    return to_guest ? vfu_sgl_write(c->ctx, SG(c, 0), n, buf, 0)
                    : vfu_sgl_read(c->ctx, SG(c, 0), n, buf, 0);
}

int
nvme_guest_read(struct nvme_ctrl *c, uint64_t addr, void *buf, size_t len)
{
    int n = resolve(c, 0, addr, len, PROT_READ);
    return n < 0 ? -1 : copy_sgl(c, (size_t)n, buf, false);
}

int
nvme_guest_write(struct nvme_ctrl *c, uint64_t addr, const void *buf,
                 size_t len)
{
    int n = resolve(c, 0, addr, len, PROT_WRITE);
    return n < 0 ? -1 : copy_sgl(c, (size_t)n, (void *)buf, true);
}

/* Appends a piece, merging it with the previous one when they touch. */
static bool
add_seg(struct nvme_data *d, uint64_t addr, uint32_t len)
{
    if (len == 0) {
        return true;
    }
    if (d->nr > 0 && d->seg[d->nr - 1].addr + d->seg[d->nr - 1].len == addr &&
        d->seg[d->nr - 1].len <= UINT32_MAX - len) {
        d->seg[d->nr - 1].len += len;
    } else if (d->nr == NVME_MAX_SEGS) {
        return false;
    } else {
        d->seg[d->nr].addr = addr;
        d->seg[d->nr].len = len;
        d->nr++;
    }
    d->len += len;
    return true;
}

/*
 * PRP1 and PRP2 (NVMe 1.4 4.3): PRP1 may start anywhere dword aligned in a
 * page; every later entry starts a page. PRP2 is the second page, or when
 * more are needed a pointer to a list of entries whose last entry in a
 * page points on to the next list page.
 */
static uint16_t
walk_prps(struct nvme_ctrl *c, const struct nvme_sqe *cmd, size_t len,
          struct nvme_data *d)
{
    uint64_t prp1 = cmd->dptr[0], prp2 = cmd->dptr[1], list;
    size_t first, rem, entries;
    uint64_t buf[NVME_PAGE / 8];

    if (prp1 & 3) {
        return NVME_SC_PRP_INVALID_OFFSET;
    }
    first = NVME_PAGE - (prp1 & (NVME_PAGE - 1));
    first = first < len ? first : len;
    add_seg(d, prp1, (uint32_t)first);
    rem = len - first;
    if (rem == 0) {
        return NVME_SC_SUCCESS;
    }
    if (rem <= NVME_PAGE) {
        if (prp2 & (NVME_PAGE - 1)) {
            return NVME_SC_PRP_INVALID_OFFSET;
        }
        add_seg(d, prp2, (uint32_t)rem);
        return NVME_SC_SUCCESS;
    }
    if (prp2 & 7) {
        return NVME_SC_PRP_INVALID_OFFSET;
    }
    list = prp2;
    entries = (rem + NVME_PAGE - 1) / NVME_PAGE;
    while (entries > 0) {
        size_t in_page = (NVME_PAGE - (list & (NVME_PAGE - 1))) / 8;
        size_t take = entries <= in_page ? entries : in_page;
        size_t data = entries <= in_page ? take : take - 1;

        if (nvme_guest_read(c, list, buf, take * 8) < 0) {
            return NVME_SC_DATA_XFER_ERROR;
        }
        for (size_t i = 0; i < data; i++) {
            uint32_t piece = rem < NVME_PAGE ? (uint32_t)rem : NVME_PAGE;
            if (buf[i] & (NVME_PAGE - 1)) {
                return NVME_SC_PRP_INVALID_OFFSET;
            }
            if (!add_seg(d, buf[i], piece)) {
                return NVME_SC_INVALID_FIELD;
            }
            rem -= piece;
        }
        entries -= data;
        if (entries > 0) {
            list = buf[take - 1];       /* the next list page */
            if (list & 7) {
                return NVME_SC_PRP_INVALID_OFFSET;
            }
        }
    }
    return NVME_SC_SUCCESS;
}

/* An SGL descriptor (NVMe 1.4 4.4). */
struct sgl_desc {
    uint64_t addr;
    uint32_t len;
    uint8_t rsvd[3];
    uint8_t id;             /* type [7:4], subtype [3:0] */
} __attribute__((packed));
_Static_assert(sizeof(struct sgl_desc) == 16, "SGL descriptor");

enum { SGL_DATA = 0, SGL_BIT_BUCKET = 1, SGL_SEGMENT = 2, SGL_LAST = 3 };
#define SGL_MAX_SEGMENT_DESCS   256     /* one 4 KiB page of descriptors */
#define SGL_MAX_CHAIN           16

static uint16_t
sgl_data(struct nvme_data *d, const struct sgl_desc *s, size_t *rem)
{
    if ((s->id & 0xf) != 0) {
        return NVME_SC_SGL_INVALID_TYPE;    /* only address subtypes */
    }
    if (s->len > *rem) {
        return NVME_SC_SGL_INVALID_DATA;    /* describes more than asked */
    }
    if (!add_seg(d, s->addr, s->len)) {
        return NVME_SC_SGL_INVALID_COUNT;
    }
    *rem -= s->len;
    return NVME_SC_SUCCESS;
}

/*
 * SGL1 in the command: a data block, or a (last) segment descriptor
 * pointing to a list of data blocks whose last entry may chain on.
 */
static uint16_t
walk_sgl(struct nvme_ctrl *c, const struct nvme_sqe *cmd, size_t len,
         struct nvme_data *d)
{
    struct sgl_desc desc, list[SGL_MAX_SEGMENT_DESCS];
    size_t rem = len;
    uint16_t st;

    c->sgl_cmds++;
    memcpy(&desc, cmd->dptr, sizeof(desc));
    for (unsigned chain = 0;; chain++) {
        unsigned type = desc.id >> 4;
        size_t n;

        if (type == SGL_DATA) {
            if ((st = sgl_data(d, &desc, &rem)) != NVME_SC_SUCCESS) {
                return st;
            }
            break;
        }
        if (type != SGL_SEGMENT && type != SGL_LAST) {
            return NVME_SC_SGL_INVALID_TYPE;
        }
        if ((desc.id & 0xf) != 0 || desc.len == 0 || desc.len % 16 != 0) {
            return NVME_SC_SGL_INVALID_SEG;
        }
        n = desc.len / 16;
        if (n > SGL_MAX_SEGMENT_DESCS || chain >= SGL_MAX_CHAIN) {
            return NVME_SC_SGL_INVALID_COUNT;
        }
        if (nvme_guest_read(c, desc.addr, list, desc.len) < 0) {
            return NVME_SC_DATA_XFER_ERROR;
        }
        for (size_t i = 0; i + 1 < n; i++) {
            if ((list[i].id >> 4) != SGL_DATA) {
                /* only a segment's last descriptor may lead on */
                return (list[i].id >> 4) == SGL_SEGMENT ||
                       (list[i].id >> 4) == SGL_LAST ?
                       NVME_SC_SGL_INVALID_SEG : NVME_SC_SGL_INVALID_TYPE;
            }
            if ((st = sgl_data(d, &list[i], &rem)) != NVME_SC_SUCCESS) {
                return st;
            }
        }
        if (type == SGL_LAST && (list[n - 1].id >> 4) != SGL_DATA) {
            return (list[n - 1].id >> 4) == SGL_SEGMENT ||
                   (list[n - 1].id >> 4) == SGL_LAST ?
                   NVME_SC_SGL_INVALID_SEG : NVME_SC_SGL_INVALID_TYPE;
        }
        desc = list[n - 1];
        if ((desc.id >> 4) == SGL_DATA) {
            if ((st = sgl_data(d, &desc, &rem)) != NVME_SC_SUCCESS) {
                return st;
            }
            break;
        }
    }
    return rem == 0 ? NVME_SC_SUCCESS : NVME_SC_SGL_INVALID_DATA;
}

uint16_t
nvme_map_data(struct nvme_ctrl *c, const struct nvme_sqe *cmd, size_t len,
              struct nvme_data *d)
{
    d->nr = 0;
    d->len = 0;
    switch (NVME_PSDT(cmd)) {
    case 0:
        return walk_prps(c, cmd, len, d);
    case 1:
    case 2:
        return walk_sgl(c, cmd, len, d);
    default:
        return NVME_SC_INVALID_FIELD;
    }
}

/* Describes all of @d into the scratch entries; their count or -1. */
static int
resolve_data(struct nvme_ctrl *c, const struct nvme_data *d, int prot)
{
    size_t n = 0;

    for (size_t i = 0; i < d->nr; i++) {
        int k = resolve(c, n, d->seg[i].addr, d->seg[i].len, prot);
        if (k < 0) {
            return -1;
        }
        n += (size_t)k;
    }
    return (int)n;
}

uint16_t
nvme_data_to_guest(struct nvme_ctrl *c, const struct nvme_data *d,
                   const void *buf)
{
    int n = resolve_data(c, d, PROT_WRITE);
    if (n < 0 || copy_sgl(c, (size_t)n, (void *)buf, true) < 0) {
        return NVME_SC_DATA_XFER_ERROR;
    }
    return NVME_SC_SUCCESS;
}

uint16_t
nvme_data_from_guest(struct nvme_ctrl *c, const struct nvme_data *d,
                     void *buf)
{
    int n = resolve_data(c, d, PROT_READ);
    if (n < 0 || copy_sgl(c, (size_t)n, buf, false) < 0) {
        return NVME_SC_DATA_XFER_ERROR;
    }
    return NVME_SC_SUCCESS;
}

/* preadv/pwritev of all of @iov, however the kernel splits it. */
static int
file_iov(int fd, struct iovec *iov, int cnt, off_t off, bool write)
{
    while (cnt > 0) {
        ssize_t r = write ? pwritev(fd, iov, cnt, off) : preadv(fd, iov, cnt, off);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;      /* 0: the file shrank under us */
        }
        off += r;
        while (cnt > 0 && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

/* Backing file <-> guest: in place when mapped, else via the bounce buffer. */
static uint16_t
file_xfer(struct nvme_ctrl *c, const struct nvme_data *d, off_t off,
          bool to_guest)
{
    struct iovec iov[NVME_MAX_SGS], work[NVME_MAX_SGS];
    struct iovec one = { c->bounce, d->len };
    uint16_t media = to_guest ? NVME_SC_READ_ERROR : NVME_SC_WRITE_FAULT;
    int n = resolve_data(c, d, to_guest ? PROT_WRITE : PROT_READ);
    int rc;

    if (n < 0) {
        return NVME_SC_DATA_XFER_ERROR;
    }
    if (all_mapped(c, (size_t)n)) {
        if (vfu_sgl_get(c->ctx, SG(c, 0), iov, (size_t)n, 0) < 0) {
            return NVME_SC_DATA_XFER_ERROR;
        }
        memcpy(work, iov, (size_t)n * sizeof(iov[0]));  /* file_iov moves it */
        rc = file_iov(c->backing, work, n, off, !to_guest);
        vfu_sgl_put(c->ctx, SG(c, 0), iov, (size_t)n);
        return rc < 0 ? media : NVME_SC_SUCCESS;
    }
    if (d->len > NVME_MAX_XFER) {
        return NVME_SC_INVALID_FIELD;
    }
    c->msgs_dma++;
    if (to_guest) {
        if (file_iov(c->backing, &one, 1, off, false) < 0) {
            return media;
        }
        return vfu_sgl_write(c->ctx, SG(c, 0), (size_t)n, c->bounce, 0) < 0 ?
               NVME_SC_DATA_XFER_ERROR : NVME_SC_SUCCESS;
    }
    if (vfu_sgl_read(c->ctx, SG(c, 0), (size_t)n, c->bounce, 0) < 0) {
        return NVME_SC_DATA_XFER_ERROR;
    }
    return file_iov(c->backing, &one, 1, off, true) < 0 ? media
                                                        : NVME_SC_SUCCESS;
}

uint16_t
nvme_file_to_guest(struct nvme_ctrl *c, const struct nvme_data *d, off_t off)
{
    return file_xfer(c, d, off, true);
}

uint16_t
nvme_guest_to_file(struct nvme_ctrl *c, const struct nvme_data *d, off_t off)
{
    return file_xfer(c, d, off, false);
}

/*
 * Writes a completion entry so that its last dword, which holds the phase
 * tag, lands after the rest: a host polling the phase must never see a
 * new tag beside old contents. By message the entry goes whole in one
 * DMA_WRITE.
 */
int
nvme_guest_write_cqe(struct nvme_ctrl *c, uint64_t addr, const void *cqe)
{
    struct iovec iov;
    int n = resolve(c, 0, addr, 16, PROT_WRITE);

    if (n < 0) {
        return -1;
    }
    if (n != 1 || !vfu_sg_is_mappable(c->ctx, SG(c, 0))) {
        return copy_sgl(c, (size_t)n, (void *)cqe, true);
    }
    if (vfu_sgl_get(c->ctx, SG(c, 0), &iov, 1, 0) < 0) {
        return -1;
    }
    memcpy(iov.iov_base, cqe, 12);
    __atomic_store_n((uint32_t *)((uint8_t *)iov.iov_base + 12),
                     get32((const uint8_t *)cqe + 12), __ATOMIC_RELEASE);
    vfu_sgl_put(c->ctx, SG(c, 0), &iov, 1);
    return 0;
}

/* Whether [addr, addr + len) is all mapped with @prot now. */
bool
nvme_guest_range_ok(struct nvme_ctrl *c, uint64_t addr, size_t len, int prot)
{
    return resolve(c, 0, addr, len, prot) >= 0;
}
