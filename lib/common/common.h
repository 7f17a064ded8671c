/* Small helpers shared by the server and client libraries. */
#ifndef VFU_COMMON_H
#define VFU_COMMON_H

#include <stdint.h>
#include <time.h>

#define VFU_EXPORT __attribute__((visibility("default")))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds on the monotonic clock, for time limits on waits. */
static inline int64_t
vfu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* VFU_COMMON_H */
