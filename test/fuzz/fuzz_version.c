/*
 * Fuzzer of VERSION negotiation's parser (lib/common/negotiate.h): the input is a
 * VERSION payload (major, minor, capabilities JSON) as a peer sends it.
 * What is accepted must be within the documented bounds, and our own
 * rendering of what was accepted must parse back to the same values.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "negotiate.h"
#include "vfio-user.h"

static bool
caps_equal(const struct vfu_caps *a, const struct vfu_caps *b)
{
    return a->max_msg_fds == b->max_msg_fds &&
           a->max_data_xfer_size == b->max_data_xfer_size &&
           a->max_dma_maps == b->max_dma_maps && a->pgsizes == b->pgsizes &&
           a->write_multiple == b->write_multiple &&
           a->migration == b->migration &&
           (!a->migration || (a->mig_pgsize == b->mig_pgsize &&
                              a->mig_max_bitmap_size == b->mig_max_bitmap_size)) &&
           a->twin_socket == b->twin_socket &&
           (!a->twin_socket ||
            a->twin_socket_fd_index == b->twin_socket_fd_index);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vfu_caps caps, again;
    struct vfio_user_version ver = { .major = VFIO_USER_MAJOR_VER };
    const char *why = "unset";
    uint16_t major, minor;
    uint8_t *copy, *payload;
    size_t len;
    char *json;
    int ret;

    /* A heap copy of exactly @size bytes: ASan sees any over-read. */
    copy = malloc(size > 0 ? size : 1);
    FZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    ret = vfu_version_parse(copy, size, &major, &minor, &caps, &why);
    free(copy);
    if (ret < 0) {
        FZ_CHECK(ret == -EINVAL || ret == -ENOTSUP || ret == -E2BIG,
                 "parse failed with %d", ret);
        FZ_CHECK(why != NULL, "a refusal without a reason (%d)", ret);
        return 0;
    }
    FZ_CHECK(why == NULL, "accepted with a reason: %s", why);
    FZ_CHECK(major == VFIO_USER_MAJOR_VER, "major %u accepted", major);
    FZ_CHECK(caps.max_msg_fds <= VFU_CAPS_MAX_MSG_FDS &&
             caps.max_data_xfer_size >= 1 &&
             caps.max_data_xfer_size <= INT64_MAX &&
             caps.max_dma_maps >= 1 &&
             caps.max_dma_maps <= VFU_CAPS_MAX_DMA_MAPS &&
             caps.pgsizes != 0 && caps.pgsizes % 4096 == 0,
             "capabilities out of range accepted");
    FZ_CHECK(!caps.migration ||
             (caps.mig_pgsize >= 4096 &&
              (caps.mig_pgsize & (caps.mig_pgsize - 1)) == 0),
             "migration pgsize %llu accepted",
             (unsigned long long)caps.mig_pgsize);
    FZ_CHECK(caps.twin_socket_fd_index >= -1 &&
             caps.twin_socket_fd_index <= VFU_CAPS_MAX_MSG_FDS,
             "twin fd_index %d", caps.twin_socket_fd_index);

    /* What we would send of these capabilities reads back the same. */
    json = vfu_caps_format(&caps, &len);
    FZ_CHECK(json != NULL && len == strlen(json) + 1, "format failed");
    payload = malloc(sizeof(ver) + len);
    FZ_CHECK(payload != NULL, "out of memory");
    ver.minor = minor;
    memcpy(payload, &ver, sizeof(ver));
    memcpy(payload + sizeof(ver), json, len);
    ret = vfu_version_parse(payload, sizeof(ver) + len, &major, &minor,
                            &again, &why);
    FZ_CHECK(ret == 0, "our own capabilities refused: %s (%s)", why, json);
    FZ_CHECK(caps_equal(&caps, &again), "round trip changed %s", json);
    free(payload);
    free(json);
    return 0;
}
