/*
 * Process-wide pools of big buffers (receive buffers, reply buffers): see
 * pool.c.
 */
#ifndef VFU_POOL_H
#define VFU_POOL_H

#include <pthread.h>
#include <stddef.h>

/*
 * A process-wide pool of big buffers of one size (page aligned), lent to
 * whoever needs one for the time of a large message and given back after:
 * many connections share a few, so an idle one holds none. Thread-safe.
 * At most TRAN_POOL_KEEP free buffers are kept; more are unmapped.
 */
#define TRAN_POOL_KEEP          4
struct tran_pool {
    pthread_mutex_t lock;
    size_t size;                /* bytes of each buffer */
    unsigned nr_free;
    void *free[TRAN_POOL_KEEP];
    size_t nr_out;              /* lent and not given back (stats) */
};
#define TRAN_POOL_INIT(sz) { .lock = PTHREAD_MUTEX_INITIALIZER, .size = (sz) }

/* A buffer of pool->size bytes, page aligned; NULL (errno ENOMEM) if none. */
void *tran_pool_get(struct tran_pool *pool);
void tran_pool_put(struct tran_pool *pool, void *buf);

#endif /* VFU_POOL_H */
