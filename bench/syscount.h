/*
 * Counting the socket system calls of a process without tracing it: the
 * benchmark executable defines recvmsg() and sendmsg() itself, so the calls
 * that libvfio-user.so, libvfio-user-client.so and the raw baseline make go
 * through these wrappers (the executable comes first in symbol lookup) and
 * on to the C library's functions. The cost is an indirect call and a few
 * stores per system call, far below the noise of a socket round trip.
 *
 * A send is counted when it starts and a receive when it returns, so that
 * another process reading the counters right after it got a reply sees
 * exactly the calls that served the request, not the next blocking receive.
 *
 * The wrappers also note where the scheduler ran the two ends: each send
 * records the sender's CPU, and each receive that returns data counts
 * whether it runs on the CPU the peer last sent from.
 */
#ifndef VFU_BENCH_SYSCOUNT_H
#define VFU_BENCH_SYSCOUNT_H

#include <stdint.h>

struct sc_counts {
    uint64_t recvmsg;
    uint64_t sendmsg;
    uint64_t recv_same_cpu;     /* receives on the CPU the peer sent from */
    int64_t last_send_cpu;      /* -1 before the first send */
};

/*
 * Where this process counts, and (may be NULL) the counters of its peer,
 * whose last_send_cpu it compares with. Both may be shared memory.
 */
void sc_count_into(struct sc_counts *where, const struct sc_counts *peer);

/* A consistent-enough copy of counters another process may be updating. */
void sc_read(const struct sc_counts *from, struct sc_counts *to);

#endif /* VFU_BENCH_SYSCOUNT_H */
