/*
 * VERSION negotiation: reading a peer's capabilities JSON (with type and
 * range checks) and writing ours. Used by the server library for the
 * client's proposal and by the client library for the server's reply.
 */
#ifndef VFU_NEGOTIATE_H
#define VFU_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a peer may announce. */
#define VFU_CAPS_MAX_MSG_FDS        1024
#define VFU_CAPS_MAX_DMA_MAPS       (1u << 24)
#define VFU_CAPS_MAX_JSON           65536

struct vfu_caps {
    uint32_t max_msg_fds;
    uint64_t max_data_xfer_size;
    uint64_t max_dma_maps;
    uint64_t pgsizes;
    bool write_multiple;
    bool migration;             /* a "migration" object was present */
    uint64_t mig_pgsize;
    uint64_t mig_max_bitmap_size;
    bool twin_socket;           /* twin_socket.supported */
    int twin_socket_fd_index;   /* -1 when absent */
};

/* The values the spec assumes for capabilities a peer leaves out. */
void vfu_caps_defaults(struct vfu_caps *caps);

/*
 * Parses a VERSION payload (major, minor, optional JSON). Returns 0, or
 * -EINVAL (short payload, bad JSON, wrong type or out-of-range value),
 * -ENOTSUP (major other than ours), -E2BIG (JSON over VFU_CAPS_MAX_JSON).
 * @why, if not NULL, receives a static description of the fault.
 */
int vfu_version_parse(const void *payload, size_t len, uint16_t *major,
                      uint16_t *minor, struct vfu_caps *caps, const char **why);

/*
 * Writes @caps as the NUL-terminated JSON object of a VERSION message
 * (what vfu_version_parse() reads back as @caps; a zero mig_max_bitmap_size
 * is left out, as a peer that did not announce one).
 * Returns a malloc'd string (length in *len, NUL included) or NULL.
 */
char *vfu_caps_format(const struct vfu_caps *caps, size_t *len);

#endif /* VFU_NEGOTIATE_H */
