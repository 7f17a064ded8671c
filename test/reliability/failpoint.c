/*
 * The failure points of failpoint.h: wrappers of the libc calls the
 * libraries make (linked with -Wl,--wrap=...), counting and failing the
 * calls of the threads that count, the device callbacks' point, the
 * shortened DMA wait, and the send recorder.
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"

static __thread bool counting;
static __thread fp_record_fn *recorder;
static unsigned long calls, fail_at;
static bool hit;
static enum fp_kind hit_kind;
static void *hit_site;
static const char *hit_name;
static int64_t clock_ahead_ms;
static bool short_waits;

static const char *const kind_names[FP_NR_KINDS] = {
    "malloc", "calloc", "realloc", "posix_memalign", "strdup", "mmap",
    "sendmsg", "recvmsg", "read", "write", "readv", "writev", "callback",
};

const char *
fp_kind_name(enum fp_kind kind)
{
    return kind < FP_NR_KINDS ? kind_names[kind] : "?";
}

void
fp_count_thread(bool on)
{
    counting = on;
}

void
fp_arm(unsigned long n)
{
    __atomic_store_n(&calls, 0, __ATOMIC_SEQ_CST);
    fail_at = n;
    hit = false;
    hit_site = NULL;
    hit_name = NULL;
}

unsigned long
fp_calls(void)
{
    return __atomic_load_n(&calls, __ATOMIC_SEQ_CST);
}

bool
fp_hit(enum fp_kind *kind, void **site)
{
    if (hit) {
        *kind = hit_kind;
        *site = hit_site;
    }
    return hit;
}

/* Counts a call of this thread; true when it is the one to fail. */
static bool
fails(enum fp_kind kind, void *site)
{
    unsigned long n;

    if (!counting) {
        return false;
    }
    n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (n != fail_at) {
        return false;
    }
    hit_kind = kind;
    hit_site = site;
    __atomic_store_n(&hit, true, __ATOMIC_SEQ_CST);
    return true;
}

bool
fp_callback(const char *name)
{
    if (!fails(FP_CALLBACK, __builtin_return_address(0))) {
        return false;
    }
    hit_name = name;
    return true;
}

const char *
fp_hit_where(void)
{
    Dl_info info;

    if (!hit) {
        return "-";
    }
    if (hit_name != NULL) {
        return hit_name;
    }
    if (hit_site != NULL && dladdr(hit_site, &info) != 0 &&
        info.dli_sname != NULL) {
        return info.dli_sname;
    }
    return "(a static function)";
}

void
fp_short_waits(bool on)
{
    short_waits = on;
}

void
fp_record_thread(fp_record_fn *fn)
{
    recorder = fn;
}

#define SITE __builtin_return_address(0)

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
char *__real_strdup(const char *s);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __real_readv(int fd, const struct iovec *iov, int cnt);
ssize_t __real_writev(int fd, const struct iovec *iov, int cnt);
ssize_t __real_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int __real_clock_gettime(clockid_t clk, struct timespec *ts);

void *
__wrap_malloc(size_t size)
{
    if (fails(FP_MALLOC, SITE)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
    if (fails(FP_CALLOC, SITE)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
    if (fails(FP_REALLOC, SITE)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realloc(p, size);
}

int
__wrap_posix_memalign(void **p, size_t align, size_t size)
{
    if (fails(FP_MEMALIGN, SITE)) {
        return ENOMEM;
    }
    return __real_posix_memalign(p, align, size);
}

char *
__wrap_strdup(const char *s)
{
    if (fails(FP_STRDUP, SITE)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_strdup(s);
}

void *
__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (fails(FP_MMAP, SITE)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return __real_mmap64(addr, len, prot, flags, fd, off);
}

ssize_t
__wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    ssize_t n;

    if (fails(FP_SENDMSG, SITE)) {
        errno = EIO;
        return -1;
    }
    n = __real_sendmsg(fd, msg, flags);
    if (n > 0 && recorder != NULL) {
        size_t left = (size_t)n;
        const int *fds = NULL;
        size_t nr = 0;
        struct cmsghdr *c = CMSG_FIRSTHDR(msg);

        if (c != NULL && c->cmsg_level == SOL_SOCKET &&
            c->cmsg_type == SCM_RIGHTS) {
            fds = (const int *)(void *)CMSG_DATA(c);
            nr = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        }
        for (size_t i = 0; i < msg->msg_iovlen && left > 0; i++) {
            size_t k = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len
                                                       : left;
            recorder(msg->msg_iov[i].iov_base, k, fds, nr);
            fds = NULL;
            nr = 0;
            left -= k;
        }
    }
    return n;
}

ssize_t
__wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (fails(FP_RECVMSG, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_recvmsg(fd, msg, flags);
}

ssize_t
__wrap_read(int fd, void *buf, size_t len)
{
    if (fails(FP_READ, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_read(fd, buf, len);
}

ssize_t
__wrap_write(int fd, const void *buf, size_t len)
{
    if (fails(FP_WRITE, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_write(fd, buf, len);
}

ssize_t
__wrap_readv(int fd, const struct iovec *iov, int cnt)
{
    if (fails(FP_READV, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_readv(fd, iov, cnt);
}

ssize_t
__wrap_writev(int fd, const struct iovec *iov, int cnt)
{
    if (fails(FP_WRITEV, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_writev(fd, iov, cnt);
}

ssize_t
__wrap_pread64(int fd, void *buf, size_t len, off_t off)
{
    if (fails(FP_READ, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_pread64(fd, buf, len, off);
}

ssize_t
__wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    if (fails(FP_WRITE, SITE)) {
        errno = EIO;
        return -1;
    }
    return __real_pwrite64(fd, buf, len, off);
}

/*
 * After a failure, a wait with a long timeout (the server's for a DMA
 * reply the failure may have cost) gives up after a second, as if the
 * timeout had passed: the library's clock jumps. Before it, waits are as
 * long as the library says, so that a slow machine changes nothing.
 */
int
__wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    int ret;

    if (timeout <= 1000 ||
        !(__atomic_load_n(&hit, __ATOMIC_SEQ_CST) || short_waits)) {
        return __real_poll(fds, nfds, timeout);
    }
    ret = __real_poll(fds, nfds, 1000);
    if (ret == 0) {
        __atomic_add_fetch(&clock_ahead_ms, timeout, __ATOMIC_SEQ_CST);
    }
    return ret;
}

int
__wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
    int ret = __real_clock_gettime(clk, ts);
    int64_t ahead = __atomic_load_n(&clock_ahead_ms, __ATOMIC_SEQ_CST);

    if (ret == 0 && clk == CLOCK_MONOTONIC && ahead > 0) {
        ts->tv_sec += ahead / 1000;
        ts->tv_nsec += (ahead % 1000) * 1000000;
        if (ts->tv_nsec >= 1000000000) {
            ts->tv_sec++;
            ts->tv_nsec -= 1000000000;
        }
    }
    return ret;
}
