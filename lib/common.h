/* Small helpers shared by the server and client libraries. */
#ifndef VFU_COMMON_H
#define VFU_COMMON_H

#define VFU_EXPORT __attribute__((visibility("default")))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif /* VFU_COMMON_H */
