/*
 * Moves a running samples/server device from one server process to another,
 * the way a VMM migrates it: each side has its own guest RAM, dirty pages
 * are copied from the source's RAM to the destination's in every pre-copy
 * round and once more after the device stopped, and the device state
 * follows with vfu_client_migrate(). Afterwards the destination device,
 * rung with the registers it inherited, copies in the destination's RAM.
 *
 *   vfu-migrate SOURCE-SOCKET DESTINATION-SOCKET
 *
 * Exits 0 when the destination's RAM and device match the source's.
 */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vfio-user-client.h"

#define RAM_IOVA    0x100000ull
#define RAM_SIZE    (1u << 20)
#define PAGE        4096u
#define BAR0        0
#define REG_SRC     0x00
#define REG_DST     0x08
#define REG_LEN     0x10
#define REG_DOORBELL 0x14
#define REG_STATUS  0x18
#define REG_COUNT   0x1c

struct side {
    vfu_client_t *c;
    uint8_t *ram;
};

struct move {
    struct side src, dst;
    uint64_t pages_copied;
};

static void
open_side(struct side *s, const char *sock)
{
    int memfd = memfd_create("guest-ram", MFD_CLOEXEC);

    if (memfd < 0 || ftruncate(memfd, RAM_SIZE) < 0) {
        err(1, "guest RAM");
    }
    s->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    s->c = vfu_client_connect(sock);
    if (s->ram == MAP_FAILED || s->c == NULL ||
        vfu_client_negotiate(s->c, NULL) < 0 ||
        vfu_client_dma_map(s->c, RAM_IOVA, RAM_SIZE, memfd, 0, s->ram,
                           VFIO_USER_F_DMA_REGION_READ |
                           VFIO_USER_F_DMA_REGION_WRITE) < 0) {
        err(1, "%s", sock);
    }
    close(memfd);                   /* the mapping and the server keep it */
}

static uint32_t
rd32(struct side *s, uint64_t off)
{
    uint32_t v = 0;
    if (vfu_client_region_read(s->c, BAR0, off, &v, 4) < 0) {
        err(1, "BAR0 read");
    }
    return v;
}

static void
wr(struct side *s, uint64_t off, uint64_t v, uint32_t size)
{
    if (vfu_client_region_write(s->c, BAR0, off, &v, size, false) < 0) {
        err(1, "BAR0 write");
    }
}

/* Copies the pages the source's device wrote since the last report. */
static int
copy_dirty(void *arg, unsigned round, uint64_t bytes, bool final)
{
    struct move *m = arg;
    uint64_t bitmap[RAM_SIZE / PAGE / 64] = { 0 };
    unsigned n = 0;

    if (vfu_client_dirty_report(m->src.c, RAM_IOVA, RAM_SIZE, PAGE,
                                bitmap) < 0) {
        return -1;
    }
    for (unsigned p = 0; p < RAM_SIZE / PAGE; p++) {
        if (bitmap[p / 64] & (1ull << (p % 64))) {
            memcpy(m->dst.ram + p * PAGE, m->src.ram + p * PAGE, PAGE);
            n++;
        }
    }
    m->pages_copied += n;
    printf("  %s round %u: %llu bytes of device state, %u dirty pages copied\n",
           final ? "stop-copy" : "pre-copy", round, (unsigned long long)bytes,
           n);
    return 0;
}

int
main(int argc, char *argv[])
{
    struct move m = { 0 };
    struct vfu_client_migrate_opts opts = {
        .max_precopy_rounds = 3, .round = copy_dirty, .arg = &m,
    };
    struct vfu_client_migrate_stats st;
    const uint32_t len = 3 * PAGE + 100;
    const uint64_t from = RAM_IOVA, to = RAM_IOVA + RAM_SIZE / 2;

    if (argc != 3) {
        fprintf(stderr, "usage: %s SOURCE-SOCKET DESTINATION-SOCKET\n", argv[0]);
        return 2;
    }
    open_side(&m.src, argv[1]);
    open_side(&m.dst, argv[2]);

    /* The guest runs on the source: its RAM, then a copy by the device. */
    for (uint32_t i = 0; i < RAM_SIZE / 2; i++) {
        m.src.ram[i] = (uint8_t)(i * 7 + 3);
    }
    memcpy(m.dst.ram, m.src.ram, RAM_SIZE);         /* RAM's first pass */
    if (vfu_client_dirty_start(m.src.c, PAGE, NULL, 0) < 0) {
        err(1, "dirty logging");
    }
    wr(&m.src, REG_SRC, from, 8);
    wr(&m.src, REG_DST, to, 8);
    wr(&m.src, REG_LEN, len, 4);
    wr(&m.src, REG_DOORBELL, 1, 4);
    printf("source: copy done, STATUS %#x COUNT %u\n", rd32(&m.src, REG_STATUS),
           rd32(&m.src, REG_COUNT));

    printf("moving the device:\n");
    if (vfu_client_migrate(m.src.c, m.dst.c, &opts, &st) < 0) {
        err(1, "migration");
    }
    printf("moved: %u pre-copy rounds, %llu + %llu bytes of device state, "
           "%llu dirty pages\n", st.precopy_rounds,
           (unsigned long long)st.precopy_bytes,
           (unsigned long long)st.stopcopy_bytes,
           (unsigned long long)m.pages_copied);

    int bad = memcmp(m.dst.ram, m.src.ram, RAM_SIZE) != 0;
    printf("destination RAM %s the source's\n", bad ? "DIFFERS from" : "matches");

    /* The guest goes on at the destination: new bytes, the same doorbell. */
    for (uint32_t i = 0; i < len; i++) {
        m.dst.ram[i] = (uint8_t)(i * 13 + 1);
    }
    wr(&m.dst, REG_STATUS, 1, 4);
    wr(&m.dst, REG_DOORBELL, 1, 4);
    uint32_t count = rd32(&m.dst, REG_COUNT);
    bool same = memcmp(m.dst.ram + RAM_SIZE / 2, m.dst.ram, len) == 0;
    printf("destination: copy done, STATUS %#x COUNT %u, data %s\n",
           rd32(&m.dst, REG_STATUS), count, same ? "copied" : "WRONG");
    bad |= !same || count != 2;

    vfu_client_close(m.src.c);
    vfu_client_close(m.dst.c);
    printf("%s\n", bad ? "FAIL" : "OK");
    return bad;
}
