/* See syscount.h. */
#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "syscount.h"

static struct sc_counts local_counts = { .last_send_cpu = -1 };
static struct sc_counts *counts = &local_counts;
static const struct sc_counts *peer;

typedef ssize_t (recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (sendmsg_fn)(int, const struct msghdr *, int);

static recvmsg_fn *real_recvmsg;
static sendmsg_fn *real_sendmsg;

static void *
next_symbol(const char *name)
{
    void *sym = dlsym(RTLD_NEXT, name);

    if (sym == NULL) {
        static const char msg[] = "vfu-bench: cannot find the C library's "
                                  "socket calls\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        abort();
    }
    return sym;
}

void
sc_count_into(struct sc_counts *where, const struct sc_counts *peer_counts)
{
    counts = where;
    peer = peer_counts;
}

void
sc_read(const struct sc_counts *from, struct sc_counts *to)
{
    to->recvmsg = __atomic_load_n(&from->recvmsg, __ATOMIC_ACQUIRE);
    to->sendmsg = __atomic_load_n(&from->sendmsg, __ATOMIC_ACQUIRE);
    to->recv_same_cpu = __atomic_load_n(&from->recv_same_cpu, __ATOMIC_ACQUIRE);
    to->last_send_cpu = __atomic_load_n(&from->last_send_cpu, __ATOMIC_ACQUIRE);
}

/* One writer per counter: plain increments, published for readers. */
#define BUMP(field) \
    __atomic_store_n(&counts->field, counts->field + 1, __ATOMIC_RELEASE)

ssize_t
recvmsg(int fd, struct msghdr *mh, int flags)
{
    ssize_t n;

    if (real_recvmsg == NULL) {
        *(void **)&real_recvmsg = next_symbol("recvmsg");
    }
    n = real_recvmsg(fd, mh, flags);
    if (n > 0 && peer != NULL &&
        __atomic_load_n(&peer->last_send_cpu, __ATOMIC_RELAXED) ==
        sched_getcpu()) {
        BUMP(recv_same_cpu);
    }
    BUMP(recvmsg);
    return n;
}

ssize_t
sendmsg(int fd, const struct msghdr *mh, int flags)
{
    if (real_sendmsg == NULL) {
        *(void **)&real_sendmsg = next_symbol("sendmsg");
    }
    __atomic_store_n(&counts->last_send_cpu, (int64_t)sched_getcpu(),
                     __ATOMIC_RELAXED);
    BUMP(sendmsg);
    return real_sendmsg(fd, mh, flags);
}
