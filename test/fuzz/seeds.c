/*
 * Writes the seed corpora of test/fuzz/corpus: a few inputs per fuzzer in
 * each fuzzer's input format (described at the top of fuzz_<name>.c), one
 * for each kind of exchange, so that fuzzing starts from valid sessions.
 * Run by hand when an input format changes:
 *
 *   build/test/fuzz/fuzz-seeds test/fuzz/corpus
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "libvfio-user.h"

#define HDR sizeof(struct vfio_user_header)

struct seed {
    uint8_t b[16384];
    size_t n;
};

static const char *out_dir;

static void
put(struct seed *s, const void *p, size_t n)
{
    if (s->n + n > sizeof(s->b)) {
        fprintf(stderr, "seed too big\n");
        exit(1);
    }
    memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void u8(struct seed *s, uint8_t v) { put(s, &v, 1); }
static void u16(struct seed *s, uint16_t v) { put(s, &v, 2); }
static void u32(struct seed *s, uint32_t v) { put(s, &v, 4); }

static void
save(const char *fuzzer, const char *name, const struct seed *s)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", out_dir, fuzzer);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, fuzzer, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* --- fuzz_server: [caps][behaviour] then operations --- */

/* fds: a count, then a kind byte each (fuzz.h FZ_FD_*). */
enum { FD_MEMFD = 0, FD_EVENTFD = 1 };

static void
srv_msg(struct seed *s, uint16_t cmd, uint8_t hf, const void *p, size_t len,
        int nr_fds, uint8_t fd_kind)
{
    u8(s, 0);
    u8(s, (uint8_t)cmd);
    u8(s, hf);
    u16(s, (uint16_t)len);
    put(s, p, len);
    u8(s, (uint8_t)nr_fds);
    for (int i = 0; i < nr_fds; i++) {
        u8(s, fd_kind);
    }
}

static void
srv_read(struct seed *s, uint32_t region, uint64_t off, uint32_t count)
{
    struct vfio_user_region_access a = { .offset = off, .region = region,
                                         .count = count };
    srv_msg(s, VFIO_USER_REGION_READ, 0, &a, sizeof(a), 0, 0);
}

static void
srv_write(struct seed *s, uint32_t region, uint64_t off, const void *data,
          uint32_t count, bool posted)
{
    uint8_t buf[64];
    struct vfio_user_region_access a = { .offset = off, .region = region,
                                         .count = count };
    memcpy(buf, &a, sizeof(a));
    memcpy(buf + sizeof(a), data, count);
    srv_msg(s, VFIO_USER_REGION_WRITE, posted ? 1 : 0, buf, sizeof(a) + count,
            0, 0);
}

static void
srv_map(struct seed *s, uint64_t iova, uint64_t size, bool with_fd)
{
    struct vfio_user_dma_map m = {
        .argsz = sizeof(m), .addr = iova, .size = size,
        .flags = VFIO_USER_F_DMA_REGION_READ | VFIO_USER_F_DMA_REGION_WRITE,
    };
    /* memfd kind: (pages - 1) << 3 */
    srv_msg(s, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), with_fd ? 1 : 0,
            (uint8_t)(FD_MEMFD | (((size / 4096) - 1) << 3)));
}

/* A 16-byte write to BAR0's DOORBELL: a device operation (fuzz_server.c). */
static void
srv_doorbell(struct seed *s, uint8_t op, uint8_t flags, uint32_t len,
             uint64_t addr, bool posted)
{
    uint8_t d[16];
    uint16_t max_sgs = 8;

    d[0] = op;
    d[1] = flags;
    memcpy(d + 2, &max_sgs, 2);
    memcpy(d + 4, &len, 4);
    memcpy(d + 8, &addr, 8);
    srv_write(s, VFU_PCI_DEV_BAR0_REGION_IDX, 0xf00, d, 16, posted);
}

static void
srv_feature(struct seed *s, uint32_t flags, const void *data, size_t len)
{
    uint8_t buf[256];
    struct vfio_user_device_feature f = { .argsz = (uint32_t)(8 + len + 256),
                                          .flags = flags };
    memcpy(buf, &f, 8);
    memcpy(buf + 8, data, len);
    srv_msg(s, VFIO_USER_DEVICE_FEATURE, 0, buf, 8 + len, 0, 0);
}

static void
srv_mig_state(struct seed *s, uint32_t state)
{
    struct vfio_user_device_feature_mig_state st = { .device_state = state };
    srv_feature(s, VFIO_DEVICE_FEATURE_SET |
                VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &st, sizeof(st));
}

static void
server_seeds(void)
{
    struct seed s;
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    struct vfio_region_info ri = { .argsz = 256 };
    struct vfio_irq_info ii = { .argsz = sizeof(ii) };
    uint32_t v32;

    /* Discovery: device, every region, every interrupt, io fds. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), 0, 0);
    for (uint32_t i = 0; i < VFU_PCI_DEV_NUM_REGIONS; i++) {
        ri.index = i;
        srv_msg(&s, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &ri, sizeof(ri), 0, 0);
    }
    for (uint32_t i = 0; i < 5; i++) {
        ii.index = i;
        srv_msg(&s, VFIO_USER_DEVICE_GET_IRQ_INFO, 0, &ii, sizeof(ii), 0, 0);
    }
    {
        struct vfio_user_region_io_fds_request r = { .argsz = 4096 };
        srv_msg(&s, VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0, &r, sizeof(r), 0, 0);
        r.index = VFU_PCI_DEV_BAR2_REGION_IDX;
        srv_msg(&s, VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0, &r, sizeof(r), 0, 0);
    }
    save("server", "discovery", &s);

    /* Region accesses, config space, capabilities, multi writes, reset. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    for (uint32_t off = 0; off < 0x100; off += 4) {
        srv_read(&s, VFU_PCI_DEV_CFG_REGION_IDX, off, 4);
    }
    srv_read(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x100, 16);
    v32 = 0xffffffff;
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x10, &v32, 4, false);
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x18, &v32, 4, false);
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x30, &v32, 4, false);
    v32 = 0x0407;
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x04, &v32, 2, false);
    v32 = 0x8000;               /* FLR in the PCI Express device control */
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x6c + 8, &v32, 2, false);
    v32 = 3;                    /* D3hot, then D0 */
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x44, &v32, 2, false);
    v32 = 0;
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x44, &v32, 2, false);
    v32 = 0xc000;               /* MSI-X enable + function mask */
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x62, &v32, 2, false);
    v32 = 0x0081;               /* MSI enable */
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x4a, &v32, 2, false);
    srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0xb2, &v32, 4, false);
    srv_read(&s, VFU_PCI_DEV_BAR0_REGION_IDX, 0, 64);
    srv_write(&s, VFU_PCI_DEV_BAR0_REGION_IDX, 8, "abcdefgh", 8, true);
    srv_read(&s, VFU_PCI_DEV_BAR1_REGION_IDX, 0, 4);
    srv_write(&s, VFU_PCI_DEV_BAR1_REGION_IDX, 4, "abcd", 4, false);
    srv_read(&s, VFU_PCI_DEV_BAR2_REGION_IDX, 8192, 32);
    srv_write(&s, VFU_PCI_DEV_BAR2_REGION_IDX, 0, "abcdefgh", 8, false);
    srv_read(&s, VFU_PCI_DEV_BAR4_REGION_IDX, 0, 4096);
    srv_read(&s, VFU_PCI_DEV_ROM_REGION_IDX, 0, 16);
    {
        uint8_t buf[8 + 2 * 24];
        uint64_t cnt = 2;
        struct vfio_user_write_multi_data w[2] = {
            { .offset = 0, .region = 0, .count = 4, .data = "wxyz" },
            { .offset = 4, .region = VFU_PCI_DEV_CFG_REGION_IDX, .count = 2 },
        };
        memcpy(buf, &cnt, 8);
        memcpy(buf + 8, w, sizeof(w));
        srv_msg(&s, VFIO_USER_REGION_WRITE_MULTI, 0, buf, sizeof(buf), 0, 0);
    }
    srv_msg(&s, VFIO_USER_DEVICE_RESET, 0, NULL, 0, 0, 0);
    save("server", "regions", &s);

    /* Interrupts: eventfds for MSI-X, masks, loopback, INTx, triggers. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    {
        struct vfio_irq_set is = {
            .argsz = sizeof(is), .index = VFIO_PCI_INTX_IRQ_INDEX,
            .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            .count = 1,
        };
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), 1,
                FD_EVENTFD);
        u8(&s, 3);              /* trigger INTx */
        u16(&s, 0);
        is.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK;
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), 1,
                FD_EVENTFD);
        is.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK;
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), 0, 0);
        is.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
        is.count = 0;
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), 0, 0);
        is.index = VFIO_PCI_MSIX_IRQ_INDEX;
        is.flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
        is.count = 4;
        is.argsz = sizeof(is);
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), 4,
                FD_EVENTFD);
        v32 = 0x8000;
        srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x62, &v32, 2, false);
        u8(&s, 3);
        u16(&s, 2);
        uint8_t buf[sizeof(is) + 4] = { 0 };
        is.flags = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_MASK;
        is.argsz = sizeof(buf);
        memcpy(buf, &is, sizeof(is));
        buf[sizeof(is)] = 1;
        buf[sizeof(is) + 2] = 1;
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, buf, sizeof(buf), 0, 0);
        is.flags = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_TRIGGER;
        memcpy(buf, &is, sizeof(is));
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, buf, sizeof(buf), 0, 0);
        srv_doorbell(&s, 5 /* OP_IRQ */, 0, 0, 1, true);
    }
    save("server", "irqs", &s);

    /* MSI: eventfds, enabled with 4 vectors, a masked one held pending. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    {
        struct vfio_irq_set is = {
            .argsz = sizeof(is), .index = VFIO_PCI_MSI_IRQ_INDEX,
            .flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            .count = 4,
        };
        srv_msg(&s, VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), 4,
                FD_EVENTFD);
        v32 = 2;                /* mask vector 1 */
        srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x48 + 0x10, &v32, 4, false);
        v32 = 0x0021;           /* enable, 4 vectors */
        srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x4a, &v32, 2, false);
        for (uint16_t v = 0; v < 4; v++) {
            u8(&s, 3);
            u16(&s, v);
        }
        v32 = 0;
        srv_write(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x48 + 0x10, &v32, 4, false);
        srv_read(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0x48 + 0x14, 4);
    }
    save("server", "msi", &s);

    /* DMA with an fd: map, device accesses in place, dirty log, unmap. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    srv_map(&s, 0x100000, 0x4000, true);
    srv_map(&s, 0x104000, 0x2000, true);
    {
        uint8_t buf[8 + 16 + 32];
        struct vfio_user_device_feature_dma_logging_control c = {
            .page_size = 4096, .num_ranges = 2,
        };
        struct vfio_user_device_feature_dma_logging_range r[2] = {
            { .iova = 0x104000, .length = 0x2000 },
            { .iova = 0x100000, .length = 0x4000 },
        };
        struct vfio_user_device_feature f = {
            .argsz = sizeof(buf),
            .flags = VFIO_DEVICE_FEATURE_SET |
                     VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
        };
        memcpy(buf, &f, 8);
        memcpy(buf + 8, &c, 16);
        memcpy(buf + 24, r, 32);
        srv_msg(&s, VFIO_USER_DEVICE_FEATURE, 0, buf, sizeof(buf), 0, 0);
    }
    srv_doorbell(&s, 2 /* OP_GET */, 0, 0x5000, 0x100800, false);
    srv_doorbell(&s, 1 /* OP_WRITE */, 1, 0x1000, 0x103000, false);
    srv_doorbell(&s, 3 /* OP_HOLD */, 0, 0x100, 0x100000, false);
    srv_doorbell(&s, 4 /* OP_DIRTY */, 0, 0x2000, 0x104000, false);
    {
        struct vfio_user_device_feature_dma_logging_report r = {
            .iova = 0x100000, .length = 0x6000, .page_size = 4096,
        };
        srv_feature(&s, VFIO_DEVICE_FEATURE_GET |
                    VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &r, sizeof(r));
        srv_feature(&s, VFIO_DEVICE_FEATURE_SET |
                    VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);
    }
    {
        struct vfio_user_dma_unmap u = { .argsz = sizeof(u), .addr = 0x100000,
                                         .size = 0x4000 };
        srv_msg(&s, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), 0, 0);
        srv_doorbell(&s, 7 /* OP_TOUCH */, 0, 0, 0, false);
        u.addr = u.size = 0;
        u.flags = VFIO_DMA_UNMAP_FLAG_ALL;
        srv_msg(&s, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), 0, 0);
    }
    save("server", "dma-fd", &s);

    /*
     * DMA by message: memory without an fd; the doorbell's read and write
     * wait for replies, which come from the input (0: answer correctly).
     */
    for (int twin = 0; twin < 2; twin++) {
        memset(&s, 0, sizeof(s));
        u8(&s, twin ? 0x10 : 0x00);
        u8(&s, 0x00);
        srv_map(&s, 0x200000, 0x20000, false);
        srv_doorbell(&s, 0 /* OP_READ */, 0, 0x100, 0x200000, true);
        u8(&s, 0x00);           /* the peer answers */
        srv_doorbell(&s, 1 /* OP_WRITE */, 0, 0x100, 0x200100, false);
        u8(&s, 0x00);
        u8(&s, 0x00);
        srv_doorbell(&s, 6 /* OP_RW */, 0, 0x18000, 0x200000, true);
        for (int i = 0; i < 4; i++) {
            u8(&s, 0x00);
        }
        /* A nested request before answering, then out of order. */
        srv_doorbell(&s, 0, 0, 0x80, 0x200000, true);
        u8(&s, 0x05);           /* send a request first: ... */
        u8(&s, VFIO_USER_REGION_WRITE);
        u8(&s, 1);              /* posted */
        {
            struct vfio_user_region_access a = {
                .offset = 0xf00, .region = 0, .count = 16,
            };
            uint8_t d[32] = { 0 };
            memcpy(d, &a, sizeof(a));
            d[16] = 1;          /* OP_WRITE */
            d[18] = 8;
            d[20] = 0x40;
            d[24 + 2] = 0x20;   /* addr 0x200000 */
            u16(&s, sizeof(d));
            put(&s, d, sizeof(d));
            u8(&s, 0);          /* no fds */
        }
        u8(&s, 0x00 | (0 << 3));    /* answer the first outstanding */
        u8(&s, 0x00);
        u8(&s, 0x00);
        /* An error reply, a malformed one, a stray one, a timeout. */
        srv_doorbell(&s, 0, 0, 0x40, 0x200000, true);
        u8(&s, 0x01);
        u8(&s, EFAULT);
        srv_doorbell(&s, 0, 0, 0x40, 0x200000, true);
        u8(&s, 0x02);
        u8(&s, 0xfc);
        srv_doorbell(&s, 0, 0, 0x40, 0x200000, true);
        u8(&s, 0x06);
        u16(&s, 77);
        u8(&s, VFIO_USER_DMA_READ);
        u8(&s, 0);
        u8(&s, 0x00);
        srv_doorbell(&s, 0, 0, 0x40, 0x200000, true);
        u8(&s, 0x07);
        save("server", twin ? "dma-msg-twin" : "dma-msg", &s);
    }

    /* Migration: states, data out, data in, data size, errors. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    {
        struct vfio_user_mig_data rd = { .argsz = 8 + 4096, .size = 4096 };
        uint64_t z = 0;
        srv_feature(&s, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION,
                    &z, 8);
        srv_feature(&s, VFIO_DEVICE_FEATURE_GET |
                    VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &z, 8);
        srv_mig_state(&s, VFIO_DEVICE_STATE_PRE_COPY);
        srv_msg(&s, VFIO_USER_MIG_DATA_READ, 0, &rd, sizeof(rd), 0, 0);
        srv_feature(&s, VFIO_DEVICE_FEATURE_GET |
                    VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &z, 8);
        srv_mig_state(&s, VFIO_DEVICE_STATE_STOP_COPY);
        srv_msg(&s, VFIO_USER_MIG_DATA_READ, 0, &rd, sizeof(rd), 0, 0);
        srv_msg(&s, VFIO_USER_MIG_DATA_READ, 0, &rd, sizeof(rd), 0, 0);
        srv_mig_state(&s, VFIO_DEVICE_STATE_STOP);
        srv_mig_state(&s, VFIO_DEVICE_STATE_RESUMING);
        uint8_t wr[8 + 64] = { 0 };
        struct vfio_user_mig_data w = { .argsz = sizeof(wr), .size = 64 };
        memcpy(wr, &w, 8);
        srv_msg(&s, VFIO_USER_MIG_DATA_WRITE, 0, wr, sizeof(wr), 0, 0);
        srv_mig_state(&s, VFIO_DEVICE_STATE_RUNNING);
        u8(&s, 5);              /* the device starts refusing transitions */
        u8(&s, 1u << 3);
        srv_mig_state(&s, VFIO_DEVICE_STATE_RESUMING);
        srv_msg(&s, VFIO_USER_DEVICE_RESET, 0, NULL, 0, 0, 0);
    }
    save("server", "migration", &s);

    /* Quiesce deferred (EBUSY) and completed by the device later. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x01);               /* QUIESCE_LATER */
    srv_map(&s, 0x100000, 0x2000, true);
    srv_read(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0, 4);
    u8(&s, 2);                  /* vfu_device_quiesced(0) */
    u8(&s, 0);
    srv_msg(&s, VFIO_USER_DEVICE_RESET, 0, NULL, 0, 0, 0);
    u8(&s, 2);
    u8(&s, 1);                  /* ... with EIO */
    srv_mig_state(&s, VFIO_DEVICE_STATE_STOP);
    u8(&s, 6);                  /* a new client while it waits */
    u8(&s, 0x04);
    srv_read(&s, VFU_PCI_DEV_CFG_REGION_IDX, 0, 4);
    save("server", "quiesce", &s);

    /* Framing faults: short header, oversized, reply, bad flags, fds. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x00);
    u8(&s, 0x00);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0x10, &di, sizeof(di), 0, 0);
    u32(&s, 8);                 /* msg_size 8 */
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0x10, &di, sizeof(di), 0, 0);
    u32(&s, 0x7fffffff);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0x04, &di, sizeof(di), 0, 0);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0x08, &di, sizeof(di), 0, 0);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0x02, &di, sizeof(di), 2, 2);
    srv_msg(&s, VFIO_USER_VERSION, 0, "\0\0\0\0", 4, 0, 0);
    srv_msg(&s, 99, 0, NULL, 0, 0, 0);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0x40, "\x10\x00\x00\x00", 4, 0, 0);
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), 0, 0);
    u8(&s, 7);                  /* half-close */
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), 0, 0);
    save("server", "framing", &s);

    /* A fuzzed VERSION (caps bit 7) instead of ours. */
    memset(&s, 0, sizeof(s));
    u8(&s, 0x80);
    u8(&s, 0x00);
    {
        const char *json = "{\"capabilities\":{\"max_msg_fds\":8,"
                           "\"twin_socket\":{\"supported\":true}}}";
        uint8_t buf[128] = { 0 };
        memcpy(buf + 4, json, strlen(json) + 1);
        u8(&s, VFIO_USER_VERSION);
        u8(&s, 0);
        u16(&s, (uint16_t)(4 + strlen(json) + 1));
        put(&s, buf, 4 + strlen(json) + 1);
        u8(&s, 0);
    }
    srv_msg(&s, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), 0, 0);
    save("server", "version", &s);
}

/* --- fuzz_tran: [cfg] then operations --- */

static void
tran_seeds(void)
{
    struct seed s;
    struct vfio_user_header h = { .msg_id = 1, .cmd = 4, .msg_size = 32 };

    memset(&s, 0, sizeof(s));
    u8(&s, 0x02);               /* 4 KiB buffer, no limit */
    for (int i = 0; i < 3; i++) {
        u8(&s, 1);              /* a well-formed message of 16 bytes */
        u16(&s, (uint16_t)i);
        u8(&s, 4);
        u8(&s, 0);
        u16(&s, 16);
        put(&s, "0123456789abcdef", 16);
        u8(&s, i == 1 ? 2 : 0);
        if (i == 1) {
            u8(&s, 1);
            u8(&s, 0);
        }
    }
    u8(&s, 2);                  /* fill */
    u8(&s, 4);                  /* hold */
    u8(&s, 3);                  /* next */
    u8(&s, 0);                  /* raw: a message split in two */
    u16(&s, 10);
    put(&s, &h, 10);
    u8(&s, 0);
    u8(&s, 2);
    u8(&s, 3);
    u8(&s, 0);
    u16(&s, 22);
    put(&s, (uint8_t *)&h + 10, 6);
    put(&s, "0123456789abcdef", 16);
    u8(&s, 0);
    u8(&s, 2);
    u8(&s, 3);
    u8(&s, 5);                  /* release */
    save("tran", "basic", &s);

    memset(&s, 0, sizeof(s));
    u8(&s, 0x01 | (3 << 2));    /* 256-byte buffer, 4096 limit */
    h.msg_size = 8;             /* malformed */
    u8(&s, 0);
    u16(&s, 16);
    put(&s, &h, 16);
    u8(&s, 0);
    h.msg_size = 1000;          /* oversized, skipped */
    u8(&s, 0);
    u16(&s, 16);
    put(&s, &h, 16);
    u8(&s, 0);
    u8(&s, 2);
    u8(&s, 3);
    u8(&s, 7);                  /* limit 32 */
    u8(&s, 1);
    u8(&s, 6);                  /* direct, expecting the next message */
    u8(&s, 8);
    u8(&s, 1);
    u8(&s, 8);                  /* shut down */
    save("tran", "faults", &s);
}

/* --- fuzz_version: a VERSION payload --- */

static void
version_seed(const char *name, const char *json)
{
    struct seed s;

    memset(&s, 0, sizeof(s));
    u16(&s, 0);
    u16(&s, 0);
    put(&s, json, strlen(json) + 1);
    save("version", name, &s);
}

static void
version_seeds(void)
{
    version_seed("empty", "");
    version_seed("defaults", "{}");
    version_seed("full",
        "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576,"
        "\"max_dma_maps\":65535,\"pgsizes\":4096,\"write_multiple\":true,"
        "\"migration\":{\"pgsize\":4096,\"max_bitmap_size\":1048576},"
        "\"twin_socket\":{\"supported\":true,\"fd_index\":0}}}");
    version_seed("qemu",
        "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":1048576,"
        "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":"
        "4096,\"max_bitmap_size\":1048576}}}");
}

/*
 * --- fuzz_client: [connect: bit 0 negotiates] then client operations, the
 * server's actions following each operation that waits (fuzz_client.c).
 */
enum { GOOD = 7, BROKEN = 0, DMA_REQ = 3, SILENT = 5, ALL = 6 };

static void
cli_good(struct seed *s, int n)
{
    for (int i = 0; i < n; i++) {
        u8(s, GOOD);
    }
}

static void
client_session(struct seed *s, bool broken)
{
    u8(s, 1);                   /* connect and negotiate */
    cli_good(s, 1);
    u8(s, 1);                   /* device info */
    if (broken) {
        u8(s, BROKEN);
        u8(s, 0x02);            /* cut by one byte */
        u8(s, 0xff);
        u8(s, 1);
    }
    cli_good(s, 1);
    u8(s, 2);                   /* region info 2 */
    u8(s, 2);
    if (broken) {
        u8(s, BROKEN);
        u8(s, 0x04);            /* a byte changed: the capability offset */
        u16(s, 12);
        u8(s, 0x40);
        u8(s, 2);
        u8(s, 2);
    }
    cli_good(s, 1);
    u8(s, 3);                   /* region read, 64 bytes */
    u8(s, 0);
    u16(s, 0);
    u16(s, 64);
    u8(s, 0);
    cli_good(s, 1);
    u8(s, 3);                   /* a big one, straight into the buffer */
    u8(s, 4);
    u16(s, 0);
    u16(s, 4096);
    u8(s, 1);
    cli_good(s, 1);
    u8(s, 4);                   /* region write */
    u8(s, 0);
    u8(s, 0);
    u16(s, 8);
    u16(s, 8);
    if (broken) {
        u8(s, BROKEN);
        u8(s, 0x01);            /* an error with an errno out of range */
        u8(s, 0xff);
        u32(s, 0x80000000u);
        u8(s, 4);
        u8(s, 0);
        u8(s, 0);
        u16(s, 8);
        u16(s, 8);
    }
    cli_good(s, 1);
    u8(s, 5);                   /* multi write, 3 */
    u8(s, 3);
    u8(s, 0);
    cli_good(s, 1);
    u8(s, 6);                   /* reset */
    if (broken) {
        u8(s, BROKEN);
        u8(s, 0x08);            /* an fd where none belongs */
        u8(s, 1);
        u8(s, 1);
        u8(s, 6);
    }
    cli_good(s, 1);
    u8(s, 7);                   /* irq info */
    u8(s, 2);
    cli_good(s, 1);
    u8(s, 8);                   /* SET_IRQS: eventfds, 3 */
    u8(s, 2);
    u8(s, 3);
    u8(s, 0x07);
    cli_good(s, 1);
    u8(s, 9);                   /* DMA map of our memory, without an fd */
    u8(s, 1);
    u8(s, 0);
    u8(s, 3);
    u8(s, 3);
    cli_good(s, 1);
    u8(s, 9);                   /* ... and a memfd */
    u8(s, 2);
    u8(s, 0);
    u8(s, 0);
    u8(s, 7);
    cli_good(s, 1);
    u8(s, 11);                  /* serve: the server reads our memory */
    u8(s, 1);
    u8(s, DMA_REQ);
    u32(s, 0x100000);
    u32(s, 256);
    u8(s, 11);
    u8(s, 1);
    u8(s, DMA_REQ | 8);         /* and writes it */
    u32(s, 0x100100);
    u32(s, 16);
    u8(s, 12);                  /* dirty logging start, report, stop */
    u8(s, 0x42);
    cli_good(s, 1);
    u8(s, 12);
    u8(s, 2);
    u16(s, 15);
    cli_good(s, 1);
    u8(s, 12);
    u8(s, 1);
    cli_good(s, 1);
    for (uint8_t f = 0; f < 4; f++) {   /* migration features */
        u8(s, 13);
        u8(s, (uint8_t)(f | (f == 2 ? VFIO_DEVICE_STATE_STOP << 2 : 0)));
        cli_good(s, 1);
    }
    u8(s, 14);                  /* migration data: read 4097, write 4096 */
    u32(s, 4097);
    cli_good(s, 1);
    u8(s, 14);
    u32(s, 4096);
    cli_good(s, 1);
    u8(s, 10);                  /* unmap */
    u8(s, 1);
    u8(s, 0);
    u8(s, 0);
    u8(s, 0);
    cli_good(s, 1);
    u8(s, 15);                  /* io fds: region info, then the fds */
    u8(s, 0);
    u8(s, 0);
    cli_good(s, 2);
    u8(s, 15);                  /* installed, a doorbell rung */
    u8(s, 1);
    u8(s, 0);
    cli_good(s, 2);
    u8(s, 15);
    u8(s, 3);
    u8(s, 0);
    u32(s, 1);
    u16(s, 0x100);
    u8(s, 16);                  /* a raw request */
    u8(s, 1);
    u8(s, 16);
    put(s, "\x10\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    u8(s, VFIO_USER_DEVICE_GET_INFO);
    cli_good(s, 1);
    u8(s, 17);                  /* timeout 100 ms, then silence */
    u8(s, 2);
    u8(s, 1);
    u8(s, SILENT);
    u8(s, SILENT);
    u8(s, SILENT);
    u8(s, SILENT);
    u8(s, SILENT);
    u8(s, 1);                   /* the late reply is dropped */
    u8(s, ALL);
}

static void
client_seeds(void)
{
    struct seed s;

    memset(&s, 0, sizeof(s));
    client_session(&s, false);
    save("client", "session", &s);
    memset(&s, 0, sizeof(s));
    client_session(&s, true);
    save("client", "session-broken", &s);

    /* The server sends requests and commands, raw bytes, then hangs up. */
    memset(&s, 0, sizeof(s));
    u8(&s, 1);
    cli_good(&s, 1);
    u8(&s, 1);
    u8(&s, 4);                  /* a command the client does not take */
    u8(&s, VFIO_USER_VERSION);
    u8(&s, 0);
    u8(&s, 2);                  /* raw bytes: half a header */
    u16(&s, 8);
    put(&s, "\0\0\x04\0\x40\0\0\0", 8);
    u8(&s, 0);
    u8(&s, 1);                  /* a raw reply with fds */
    u16(&s, 16);
    put(&s, "\x10\0\0\0\0\0\0\0\x09\0\0\0\x05\0\0\0", 16);
    u8(&s, 2);
    u8(&s, 1);
    u8(&s, 0);
    u8(&s, 1);
    u8(&s, SILENT | 0x80);      /* hang up */
    save("client", "hostile", &s);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    server_seeds();
    tran_seeds();
    version_seeds();
    client_seeds();
    return 0;
}
