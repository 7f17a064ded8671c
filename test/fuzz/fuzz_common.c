/*
 * The fuzzers' shared part (see fuzz.h): input reading, fds for the peer
 * to attach, fd and mapping counts, and the --wrap'ed libc calls.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#ifdef FZ_ASAN
#include <sanitizer/asan_interface.h>
/* ASan's (gcc ships no allocator_interface.h): the size of a block. */
size_t __sanitizer_get_allocated_size(const volatile void *p);
#define POISON(p, n)    ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n)  ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)    ((void)(p), (void)(n))
#define UNPOISON(p, n)  ((void)(p), (void)(n))
#endif

/* --- Input --- */

bool
fz_empty(const struct fz *in)
{
    return in->n == 0;
}

static uint64_t
fz_le(struct fz *in, size_t bytes)
{
    uint64_t v = 0;

    for (size_t i = 0; i < bytes; i++) {
        if (in->n > 0) {
            v |= (uint64_t)in->p[0] << (8 * i);
            in->p++;
            in->n--;
        }
    }
    return v;
}

uint8_t fz_u8(struct fz *in) { return (uint8_t)fz_le(in, 1); }
uint16_t fz_u16(struct fz *in) { return (uint16_t)fz_le(in, 2); }
uint32_t fz_u32(struct fz *in) { return (uint32_t)fz_le(in, 4); }
uint64_t fz_u64(struct fz *in) { return fz_le(in, 8); }

const uint8_t *
fz_take(struct fz *in, size_t max, size_t *len)
{
    const uint8_t *p = in->p;

    *len = max < in->n ? max : in->n;
    in->p += *len;
    in->n -= *len;
    return p;
}

/* --- File descriptors --- */

static int
memfd_of(size_t size)
{
    int fd = memfd_create(FZ_MAP_NAME, MFD_CLOEXEC);

    if (fd >= 0 && size > 0 && ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
fz_make_fd(uint8_t kind)
{
    int p[2], fd;

    switch (kind & 7) {
    case FZ_FD_MEMFD:
        return memfd_of(((size_t)(kind >> 3) + 1) * 4096);
    case FZ_FD_EVENTFD:
        return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    case FZ_FD_PIPE_READ:
    case FZ_FD_PIPE_WRITE:
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
            return -1;
        }
        fd = (kind & 7) == FZ_FD_PIPE_READ ? p[0] : p[1];
        close((kind & 7) == FZ_FD_PIPE_READ ? p[1] : p[0]);
        return fd;
    case FZ_FD_DEVNULL:
        return open("/dev/null", O_RDWR | O_CLOEXEC);
    case FZ_FD_EMPTY_MEMFD:
        return memfd_of(0);
    case FZ_FD_SOCKET:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                       0, p) < 0) {
            return -1;
        }
        close(p[1]);
        return p[0];
    default:
        return open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
}

size_t
fz_make_fds(struct fz *in, int *fds)
{
    size_t want = fz_u8(in) & 7, nr = 0;

    for (size_t i = 0; i < want; i++) {
        int fd = fz_make_fd(fz_u8(in));
        if (fd >= 0) {
            fds[nr++] = fd;
        }
    }
    return nr;
}

void
fz_close_fds(int *fds, size_t nr)
{
    for (size_t i = 0; i < nr; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
        fds[i] = -1;
    }
}

/* --- Leak counts --- */

int
fz_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n - 1;       /* the directory's own fd */
}

int
fz_count_maps(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int n = 0;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

void
fz_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "FUZZ FINDING: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/*
 * --- Large blocks ---
 *
 * The library allocates a few buffers of a megabyte or more per context
 * (receive buffer, reply buffers). ASan maps and unmaps each such block
 * afresh, which made that most of a run's time; here they come from a pool
 * of mappings kept from run to run instead, still checked: the bytes around
 * and after a block are poisoned (an overflow is reported as by ASan), a
 * freed block is poisoned until it is handed out again, and a block still
 * out after a run is a leak (fz_large_in_use()).
 */
#define LARGE_MIN   (128u * 1024)
/* Bigger ones (a dirty log's bitmap can be 256 MiB) are ASan's again. */
#define LARGE_MAX   (4u << 20)
#define GUARD       4096u
#define MAX_LARGE   64

struct large {
    uint8_t *map;               /* GUARD, the block rounded up, GUARD */
    size_t cap;                 /* of the block, rounded up */
    size_t size;                /* asked for; 0: free */
};

static struct large large[MAX_LARGE];

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
int __real_posix_memalign(void **p, size_t align, size_t size);

static struct large *
large_of(const void *p)
{
    for (int i = 0; i < MAX_LARGE; i++) {
        if (large[i].size > 0 && large[i].map + GUARD == p) {
            return &large[i];
        }
    }
    return NULL;
}

static void *
large_alloc(size_t size)
{
    size_t cap = (size + 4095) & ~(size_t)4095;
    struct large *free_slot = NULL;

    for (int i = 0; i < MAX_LARGE; i++) {
        struct large *l = &large[i];
        if (l->size == 0 && l->map != NULL && l->cap == cap) {
            free_slot = l;
            break;
        }
        if (l->map == NULL && free_slot == NULL) {
            free_slot = l;
        }
    }
    if (free_slot == NULL) {
        return NULL;
    }
    if (free_slot->map == NULL) {
        void *m = mmap(NULL, cap + 2 * GUARD, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            return NULL;
        }
        free_slot->map = m;
        free_slot->cap = cap;
        POISON(free_slot->map, cap + 2 * GUARD);
    }
    free_slot->size = size;
    UNPOISON(free_slot->map + GUARD, size);
    return free_slot->map + GUARD;
}

static void
large_free(struct large *l)
{
    POISON(l->map + GUARD, l->cap);
    l->size = 0;
}

int
fz_large_in_use(void)
{
    int n = 0;

    for (int i = 0; i < MAX_LARGE; i++) {
        n += large[i].size > 0;
    }
    return n;
}

void *
__wrap_malloc(size_t size)
{
    void *p = size >= LARGE_MIN && size <= LARGE_MAX ? large_alloc(size)
                                                     : NULL;

    return p != NULL ? p : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    p = n * size >= LARGE_MIN && n * size <= LARGE_MAX ? large_alloc(n * size)
                                                       : NULL;
    if (p != NULL) {
        memset(p, 0, n * size);
        return p;
    }
    return __real_calloc(n, size);
}

int
__wrap_posix_memalign(void **out, size_t align, size_t size)
{
    void *p = size >= LARGE_MIN && size <= LARGE_MAX && align <= 4096 ?
              large_alloc(size) : NULL;

    if (p != NULL) {
        *out = p;
        return 0;
    }
    return __real_posix_memalign(out, align, size);
}

void
__wrap_free(void *p)
{
    struct large *l = p != NULL ? large_of(p) : NULL;

    if (l != NULL) {
        large_free(l);
    } else {
        __real_free(p);
    }
}

/* The size of a block the real allocator gave. */
static size_t
small_size(void *p)
{
#ifdef FZ_ASAN
    return __sanitizer_get_allocated_size(p);
#else
    return malloc_usable_size(p);
#endif
}

void *
__wrap_realloc(void *p, size_t size)
{
    struct large *l = p != NULL ? large_of(p) : NULL;
    void *q;

    if (l == NULL && size < LARGE_MIN) {
        return __real_realloc(p, size);
    }
    if (l == NULL && p == NULL) {
        return __wrap_malloc(size);
    }
    if (l == NULL) {
        /* A small block grows large: its old size is ASan's to know. */
        q = __wrap_malloc(size);
        if (q != NULL) {
            size_t old = small_size(p);
            memcpy(q, p, old < size ? old : size);
            __real_free(p);
        }
        return q;
    }
    q = __wrap_malloc(size);
    if (q != NULL) {
        memcpy(q, p, l->size < size ? l->size : size);
        large_free(l);
    }
    return q;
}

/* --- The wrapped libc calls --- */

int __real_poll(struct pollfd *fds, nfds_t nfds, int timeout);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
int __real_clock_gettime(clockid_t clk, struct timespec *ts);

static const struct fz_hooks *hooks;
static int64_t clock_ahead_ms;
/* A hook runs the peer, which uses the real calls: no hook inside a hook. */
static bool in_hook;

void
fz_set_hooks(const struct fz_hooks *h)
{
    hooks = h;
}

void
fz_clock_advance(int64_t ms)
{
    clock_ahead_ms += ms;
}

int fz_real_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    return __real_poll(fds, nfds, timeout);
}

ssize_t fz_real_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return __real_sendmsg(fd, msg, flags);
}

ssize_t fz_real_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return __real_recvmsg(fd, msg, flags);
}

int
__wrap_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    int ret;

    if (hooks == NULL || hooks->poll == NULL || in_hook || timeout == 0) {
        return __real_poll(fds, nfds, timeout);
    }
    in_hook = true;
    ret = hooks->poll(fds, nfds, timeout);
    in_hook = false;
    return ret;
}

ssize_t
__wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct msghdr m = *msg;
    int tries = 0;

    /* The libraries' sends, blocking or not, find a peer that reads. */
    if (hooks == NULL || hooks->drain == NULL || in_hook) {
        return __real_sendmsg(fd, msg, flags);
    }
    for (;;) {
        ssize_t n = __real_sendmsg(fd, &m, flags | MSG_DONTWAIT);

        if (n >= 0 || errno != EAGAIN || ++tries > 1000) {
            return n;
        }
        in_hook = true;
        hooks->drain();
        in_hook = false;
    }
}

ssize_t
__wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
    ssize_t ret;

    if (hooks == NULL || hooks->recvmsg == NULL || in_hook) {
        return __real_recvmsg(fd, msg, flags);
    }
    in_hook = true;
    ret = hooks->recvmsg(fd, msg, flags);
    in_hook = false;
    return ret;
}

int
__wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
    int ret = __real_clock_gettime(clk, ts);

    if (ret == 0 && clk == CLOCK_MONOTONIC && clock_ahead_ms > 0) {
        ts->tv_sec += clock_ahead_ms / 1000;
        ts->tv_nsec += (clock_ahead_ms % 1000) * 1000000;
        if (ts->tv_nsec >= 1000000000) {
            ts->tv_sec++;
            ts->tv_nsec -= 1000000000;
        }
    }
    return ret;
}

size_t
fz_send_all(int sock, const void *buf, size_t len, const int *fds, size_t nr,
            void (*pump)(void))
{
    union {
        char buf[CMSG_SPACE(FZ_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    size_t done = 0;
    int idle = 0;

    if (nr > FZ_MAX_FDS) {
        nr = FZ_MAX_FDS;
    }
    while (done < len) {
        struct iovec iov = { (char *)buf + done, len - done };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (nr > 0) {
            struct cmsghdr *c;

            memset(ctl.buf, 0, sizeof(ctl.buf));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = CMSG_SPACE(nr * sizeof(int));
            c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(nr * sizeof(int));
            memcpy(CMSG_DATA(c), fds, nr * sizeof(int));
        }
        n = __real_sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            nr = 0;             /* they went with the first part */
            idle = 0;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN && pump != NULL && ++idle < 4) {
            pump();
            continue;
        }
        break;
    }
    return done;
}
