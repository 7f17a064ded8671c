/*
 * Buffer pools (pool.h): big page-aligned buffers lent for the time of a
 * large message or a request and given back, so that many connections
 * share a few instead of each keeping its own. The elastic receivers of
 * tran.c borrow theirs from one (the server's connections), and the
 * server lends its reply buffers from another.
 */
#include <errno.h>
#include <sys/mman.h>

#include "pool.h"

/*
 * A pool's buffer holds what its last user left (another request's data,
 * another device's): under valgrind it is handed out as undefined, so
 * that sending a byte of it nobody wrote is reported (make test-valgrind).
 * Without the header, or outside valgrind, this costs nothing.
 */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define MARK_UNDEFINED(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#endif
#endif
#ifndef MARK_UNDEFINED
#define MARK_UNDEFINED(p, n) ((void)(p), (void)(n))
#endif

void *
tran_pool_get(struct tran_pool *pool)
{
    void *buf = NULL;

    pthread_mutex_lock(&pool->lock);
    if (pool->nr_free > 0) {
        buf = pool->free[--pool->nr_free];
    }
    pool->nr_out++;
    pthread_mutex_unlock(&pool->lock);
    if (buf == NULL) {
        /* Mapped, not malloc()ed: given back, its memory really goes. */
        buf = mmap(NULL, pool->size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED) {
            pthread_mutex_lock(&pool->lock);
            pool->nr_out--;
            pthread_mutex_unlock(&pool->lock);
            errno = ENOMEM;
            return NULL;
        }
    }
    MARK_UNDEFINED(buf, pool->size);
    return buf;
}

void
tran_pool_put(struct tran_pool *pool, void *buf)
{
    if (buf == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->lock);
    pool->nr_out--;
    if (pool->nr_free < TRAN_POOL_KEEP) {
        pool->free[pool->nr_free++] = buf;
        buf = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    if (buf != NULL) {
        munmap(buf, pool->size);
    }
}
