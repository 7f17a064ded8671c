/*
 * Functional-test harness: a real server (libvfio-user) serving a test
 * device on a real UNIX socket from a thread, and a real client
 * (libvfio-user-client) in the test's thread.
 *
 * The test device:
 *   BAR0  4 KiB memory, read/write through a callback into dev.bar0
 *   BAR1  256 B I/O, read/write through a callback into dev.bar1
 *   BAR2  64-bit prefetchable 1 MiB memory, backed by a memfd, with sparse
 *         mmap areas [0, 4K) and [8K, 12K); no callback (pread/pwrite on fd)
 *   BAR4  2 MiB memory, callback into dev.bar4 (big transfers)
 *   ROM   4 KiB, read-only, callback
 *   CFG   256 B conventional config space, ids 0x1af4:0x10f0
 *
 * DMA: the device sets DMA callbacks that count and keep what they saw
 * (the unregister callback also reads the first byte of a mapped region,
 * which must still be there). With dev.dma_engine set, BAR0's last bytes
 * are the registers of a copy engine (test_dma.c): write SRC, DST and LEN
 * (and FLAGS), then a DMA_CMD_* to CMD; RESULT reads 0 or the errno of
 * that command.
 */
#ifndef VFU_TEST_HARNESS_H
#define VFU_TEST_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define DEV_VID     0x1af4
#define DEV_DID     0x10f0
#define BAR0_SIZE   4096
#define BAR1_SIZE   256
#define BAR2_SIZE   (1 << 20)
#define BAR4_SIZE   (2 << 20)
#define ROM_SIZE    4096

#define DMA_REG_SRC     0xf00   /* u64 source DMA address */
#define DMA_REG_DST     0xf08   /* u64 destination DMA address */
#define DMA_REG_LEN     0xf10   /* u64 bytes */
#define DMA_REG_CMD     0xf18   /* u32: writing a DMA_CMD_* runs it */
#define DMA_REG_RESULT  0xf1c   /* u32: 0 or the errno of the last command */
#define DMA_REG_FLAGS   0xf20   /* u32: vfu_sgl_read/write flags of RW_FLAGS */
#define DMA_RW_MAX      (8u << 20)  /* most bytes DMA_CMD_RW moves */
enum {
    /* LEN bytes SRC -> DST in place: vfu_sgl_get() both, memcpy, put. */
    DMA_CMD_COPY = 1,
    /* Record [DST, DST + LEN) as written: vfu_sgl_mark_dirty(). */
    DMA_CMD_MARK = 2,
    /*
     * LEN bytes SRC -> DST through a buffer with vfu_sgl_read() and
     * vfu_sgl_write(): by message where the client gave no fd.
     */
    DMA_CMD_RW = 3,
    /*
     * DMA_CMD_RW with FLAGS as the flags of vfu_sgl_read() and
     * vfu_sgl_write() (RW passes VFU_SGL_DIRECT_ACCESS): 0 goes by message
     * even where the client gave an fd.
     */
    DMA_CMD_RW_FLAGS = 4,
};

struct test_dev {
    char dir[64];
    char sock[96];
    vfu_ctx_t *ctx;
    pthread_t thread;
    bool thread_running;
    int bar2_fd;
    uint8_t bar0[BAR0_SIZE];
    uint8_t bar1[BAR1_SIZE];
    uint8_t *bar4;
    uint8_t rom[ROM_SIZE];
    /* What the server saw. */
    int nr_resets[3];               /* per vfu_reset_type_t */
    int nr_bar0_writes;
    int run_errno;                  /* errno when vfu_run_ctx returned -1 */
    int attach_errno;               /* errno of the last failed attach */
    int nr_attaches;
    int max_clients;                /* serve this many clients, then stop */
    int fail_bar0_errno;            /* BAR0 callback fails with this if set */
    /* DMA, as the callbacks saw it. */
    int nr_dma_register;
    int nr_dma_unregister;
    vfu_dma_info_t last_dma_register;
    vfu_dma_info_t last_dma_unregister;
    int dma_unregister_peek;        /* first byte of the region, or -1 */
    bool dma_engine;                /* BAR0 DMA_REG_* drive the engine */
};

/* Creates the device and starts serving @max_clients clients in a thread. */
struct test_dev *dev_start(int max_clients);
/* Waits for the server thread to finish (after the client left). */
void dev_join(struct test_dev *dev);
void dev_stop(struct test_dev *dev);

/* A connected, negotiated client. */
vfu_client_t *client_open(struct test_dev *dev);

/* Number of open fds in this process, for leak checks. */
int count_open_fds(void);

/*
 * Sends a raw message and reads the reply; returns the reply's error_no (0 on
 * success), or -1 if no reply arrived. The reply payload goes to @reply.
 */
int raw_request(vfu_client_t *c, uint16_t cmd, uint32_t flags,
                const void *payload, size_t len, const int *fds, size_t nr_fds,
                void *reply, size_t cap, size_t *reply_len);

/* True if the server still answers a 4-byte config read correctly. */
bool server_alive(vfu_client_t *c);

#endif /* VFU_TEST_HARNESS_H */
