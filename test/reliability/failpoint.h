/*
 * Failure points for test/reliability: the libc calls the libraries make
 * (allocation, mmap, sendmsg/recvmsg, read/write/readv/writev), linked with
 * -Wl,--wrap, and the test device's callbacks, numbered in the order a
 * thread makes them, so that a test can make the N-th one fail. Only the
 * calls of threads that asked (fp_count_thread()) are numbered, so a
 * server thread and a client thread each have a deterministic sequence.
 *
 * Also, for the server's waits for a DMA reply that a failure made the
 * client never send: once the failure happened (or with fp_short_waits()),
 * poll() waits at most a second and then moves the library's clock
 * (CLOCK_MONOTONIC) past the timeout instead of waiting 20 s. And a
 * recorder of what a thread sends, for replaying a session.
 */
#ifndef VFU_FAILPOINT_H
#define VFU_FAILPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum fp_kind {
    FP_MALLOC, FP_CALLOC, FP_REALLOC, FP_MEMALIGN, FP_STRDUP, FP_MMAP,
    FP_SENDMSG, FP_RECVMSG, FP_READ, FP_WRITE, FP_READV, FP_WRITEV,
    FP_CALLBACK, FP_NR_KINDS
};

/* The name of a kind, for reports. */
const char *fp_kind_name(enum fp_kind kind);

/* Numbers this thread's calls from now (true) or stops (false). */
void fp_count_thread(bool on);

/*
 * Starts a run: the counted calls are numbered from 1 again and call
 * @fail_at (0: none) fails, with ENOMEM for allocations and mmap, EIO for
 * I/O, and as the device decides for its callbacks.
 */
void fp_arm(unsigned long fail_at);

/* Counted calls so far in this run. */
unsigned long fp_calls(void);

/* Whether the failure happened; its kind and the caller's address. */
bool fp_hit(enum fp_kind *kind, void **site);

/* Long waits are cut to a second even without a failure. */
void fp_short_waits(bool on);

/* Device callback @name is called: true when it is to fail. */
bool fp_callback(const char *name);

/*
 * Where the failure happened, for reports: the callback's name, or the
 * function that made the call (exported ones: -rdynamic; a static one is
 * named by the kind of call, e.g. recvmsg from tran.c's recv_some).
 */
const char *fp_hit_where(void);

/*
 * Recording: while set, every byte this thread sends with sendmsg() (and
 * the fds, at the offset of the first byte that carried them) goes to
 * @fn.
 */
typedef void (fp_record_fn)(const void *bytes, size_t len, const int *fds,
                            size_t nr_fds);
void fp_record_thread(fp_record_fn *fn);

#endif /* VFU_FAILPOINT_H */
