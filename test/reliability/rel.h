/*
 * What the reliability tests share (rel_device.c): a device served by
 * libvfio-user in a thread of its own, and a whole session against it with
 * libvfio-user-client, each step's result recorded so that two runs can be
 * compared.
 *
 * The device: BAR0 4 KiB through a callback, with registers at 0xf00
 * (REL_REG_OP: a 32-bit write runs an operation, REL_REG_RESULT reads 0 or
 * its errno) and an ioeventfd at 0x100; BAR2 64 KiB in a memfd with two
 * sparse mmap areas; config space with PM, MSI-X (table in BAR0) and PCI
 * Express at fixed places; INTx and 4 MSI-X vectors; DMA callbacks;
 * migration; reset and quiesce callbacks. Every callback that can fail is
 * a failure point (fp_callback()).
 */
#ifndef VFU_REL_H
#define VFU_REL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define REL_BAR0_SIZE   4096
#define REL_BAR2_SIZE   (64 * 1024)
#define REL_REG_OP      0xf00
#define REL_REG_RESULT  0xf04
#define REL_IOEVENTFD   0x100
#define REL_CAP_PM      0x40
#define REL_CAP_MSIX    0x50
#define REL_CAP_EXP     0x60
#define REL_FD_IOVA     0x100000ull     /* client memory with an fd */
#define REL_MSG_IOVA    0x200000ull     /* client memory without one */
#define REL_DMA_SIZE    (64 * 1024)

/* REL_REG_OP operations. */
enum {
    REL_OP_COPY = 1,    /* 4 KiB from REL_MSG_IOVA (by message) to REL_FD_IOVA */
    REL_OP_IRQ = 2,     /* raise MSI-X vector 0 */
    REL_OP_TOUCH = 3,   /* read and write 4 KiB at REL_FD_IOVA in place */
};

struct rel_server {
    char dir[64];
    char path[96];
    vfu_ctx_t *ctx;
    int bar2_fd;
    int ioefd;
    pthread_t thread;
    bool count_first;           /* count calls until the first client left */
    int setup_errno;            /* a set-up call failed with this */
    const char *setup_call;     /* which */
    int run_errno;              /* vfu_run_ctx() ended otherwise than ENOTCONN */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready, first_done, stop, done;
    int clients_done;           /* clients the server is through with */
    int dma_maps;               /* registered minus unregistered */
    /* The device's state. */
    uint8_t bar0[REL_BAR0_SIZE];
    uint8_t mig_in[8192];
    size_t mig_out, mig_in_len;
};

/*
 * Creates the device and serves clients in a thread until told to stop
 * (rel_server_stop(), then the next client leaves). Returns when it
 * listens, or when its set-up failed (setup_errno set; nothing held).
 */
void rel_server_start(struct rel_server *s, bool count_first);
/* Waits until the server is done with its first client. */
void rel_server_wait_first(struct rel_server *s);
/* Waits until the server is through with @n clients in all. */
void rel_server_wait_clients(struct rel_server *s, int n);
/* The client served now is the last; rel_server_join() after it left. */
void rel_server_stop(struct rel_server *s);
void rel_server_join(struct rel_server *s);

/* One step of a session: what the call returned, and what it got. */
struct rel_step {
    const char *name;
    long ret;
    int err;
    uint64_t data;
};

#define REL_MAX_STEPS 64
struct rel_session {
    struct rel_step steps[REL_MAX_STEPS];
    int n;
};

/*
 * A whole session against the server at @path: connect, negotiate,
 * discover, map DMA (with an fd, and with @dma_msg also without one, which
 * the device then reads by message), set interrupts, access regions and
 * config space, run device operations, dirty logging, migrate out and in,
 * reset, io fds, unmap, close. Each step is recorded, failed or not; a
 * step that cannot run without an earlier one is recorded as failed too.
 */
void rel_session_run(const char *path, bool dma_msg, struct rel_session *out);

/* The first step whose result differs, or -1. */
int rel_session_diff(const struct rel_session *a, const struct rel_session *b);
/* The first step that failed, or -1. */
int rel_session_failed(const struct rel_session *s);

/* Open fds of this process; mappings whose name contains "vfu-rel". */
int rel_count_fds(void);
int rel_count_maps(void);

#endif /* VFU_REL_H */
