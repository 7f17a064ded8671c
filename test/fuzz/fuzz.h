/*
 * What the fuzzers of test/fuzz share (fuzz_common.c): reading a fuzzer's
 * input as a stream of little-endian fields, making the file descriptors a
 * peer attaches to its messages, counting open fds and mappings for the
 * leak check after each input, and the libc calls the fuzzers link with
 * -Wl,--wrap (poll, sendmsg, recvmsg, clock_gettime): through them the
 * fuzzer plays the library's peer in the same thread, inside the library's
 * own waits, so that a run is deterministic and nothing blocks.
 *
 * The same sources build with libFuzzer (clang, -Dfuzz=true) and, with
 * replay.c as main(), into the replay runners `make test` uses to replay
 * test/fuzz/corpus and test/fuzz/regressions with gcc.
 */
#ifndef VFU_FUZZ_H
#define VFU_FUZZ_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, consumed from the front; reads past its end give zeroes. */
struct fz {
    const uint8_t *p;
    size_t n;
};

bool fz_empty(const struct fz *in);
uint8_t fz_u8(struct fz *in);
uint16_t fz_u16(struct fz *in);
uint32_t fz_u32(struct fz *in);
uint64_t fz_u64(struct fz *in);
/* Up to @max bytes (fewer when the input ends): their start, *len set. */
const uint8_t *fz_take(struct fz *in, size_t max, size_t *len);

/*
 * An fd of kind @kind (FZ_FD_*), for a peer to attach to a message, or -1.
 * Memory files are named "vfu-fuzz" so that their mappings can be counted;
 * @kind's upper bits give a memfd's size in pages (1 to 32).
 */
enum {
    FZ_FD_MEMFD,        /* sized memfd */
    FZ_FD_EVENTFD,
    FZ_FD_PIPE_READ,
    FZ_FD_PIPE_WRITE,
    FZ_FD_DEVNULL,
    FZ_FD_EMPTY_MEMFD,  /* a memfd of size 0 */
    FZ_FD_SOCKET,       /* one end of a socketpair */
    FZ_FD_DIRECTORY,
};
int fz_make_fd(uint8_t kind);
#define FZ_MAX_FDS 8
/* A set of fds (count in the low 3 bits of one byte, a kind byte each). */
size_t fz_make_fds(struct fz *in, int *fds);
void fz_close_fds(int *fds, size_t nr);

/* Open fds of this process; mappings whose name contains @needle. */
int fz_count_fds(void);
int fz_count_maps(const char *needle);
#define FZ_MAP_NAME "vfu-fuzz"

/*
 * Blocks of 128 KiB and more that the library (or the fuzzer) holds: the
 * fuzzers wrap the allocation calls and serve those from a pool, since
 * ASan maps each one afresh (slow). Out of ASan's leak check, hence this.
 */
int fz_large_in_use(void);

/* Prints a finding and aborts, so that libFuzzer records the input. */
void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                  noreturn));
#define FZ_CHECK(cond, ...) \
    do { if (!(cond)) { fz_fail(__VA_ARGS__); } } while (0)

/*
 * The hooks a fuzzer installs. Each is called from the wrapper of the
 * libc call of the same name, for calls made by the library (and by the
 * fuzzer, which uses the fz_real_* calls for its own side):
 *   poll     the library waits: play the peer, then poll (or return 0 as
 *            if the timeout passed, after fz_clock_advance());
 *   sendmsg  the library sends on a blocking socket: the wrapper sends
 *            without blocking and, while the peer's socket is full, calls
 *            drain() to read it;
 *   recvmsg  the library receives: play the peer first if nothing is
 *            there, then receive (fz_real_recvmsg()), or return -1 with
 *            errno EAGAIN as a socket's SO_RCVTIMEO would.
 * Unset hooks pass the call through.
 */
struct fz_hooks {
    int (*poll)(struct pollfd *fds, nfds_t nfds, int timeout);
    void (*drain)(void);
    ssize_t (*recvmsg)(int fd, struct msghdr *msg, int flags);
};
void fz_set_hooks(const struct fz_hooks *hooks);

/* The libc calls themselves, for the fuzzer's own side. */
int fz_real_poll(struct pollfd *fds, nfds_t nfds, int timeout);
ssize_t fz_real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t fz_real_recvmsg(int fd, struct msghdr *msg, int flags);

/*
 * CLOCK_MONOTONIC as the library sees it runs ahead of the real one by
 * what the fuzzer added: a wait that the peer never ends costs no time.
 */
void fz_clock_advance(int64_t ms);

/*
 * Sends @len bytes with @nr fds (on the first part) without blocking; while
 * the socket is full, @pump (if set) lets the other side read. Returns the
 * bytes sent: fewer when pumping made no room.
 */
size_t fz_send_all(int sock, const void *buf, size_t len, const int *fds,
                   size_t nr, void (*pump)(void));

#endif /* VFU_FUZZ_H */
