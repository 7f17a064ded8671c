/*
 * The late reply to a DMA request the server gave up on: dropped, not
 * answered. The device reads client memory by message from a callback;
 * the client does not answer until the server's wait has timed out (the
 * failure points' poll() makes that a second instead of 20 s); then the
 * reply comes. It used to be answered with an error reply (a reply where
 * a command belongs), which the client took for a reply to its next
 * request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "failpoint.h"
#include "rel.h"

#define CHECK(cond) \
    do { if (!(cond)) { printf("FAILED: %s (line %d)\n", #cond, __LINE__); \
                        return 1; } } while (0)

int
main(void)
{
    static uint8_t guest[REL_DMA_SIZE];
    struct rel_server s;
    struct vfio_user_header hdr;
    struct vfio_user_region_access wr = {
        .offset = REL_REG_OP, .region = 0, .count = 4,
    };
    uint8_t msg[sizeof(wr) + 4], reply[64];
    uint32_t op = REL_OP_COPY, result = 0;
    uint16_t id;
    vfu_client_t *c;
    int memfd;

    fp_short_waits(true);       /* the server's DMA wait: a second */
    rel_server_start(&s, false);
    CHECK(s.setup_errno == 0);
    c = vfu_client_connect(s.path);
    CHECK(c != NULL && vfu_client_negotiate(c, NULL) == 0);
    memfd = memfd_create("vfu-rel-late", MFD_CLOEXEC);
    CHECK(memfd >= 0 && ftruncate(memfd, REL_DMA_SIZE) == 0);
    CHECK(vfu_client_dma_map(c, REL_FD_IOVA, REL_DMA_SIZE, memfd, 0, NULL,
                             VFIO_USER_F_DMA_REGION_READ |
                             VFIO_USER_F_DMA_REGION_WRITE) == 0);
    close(memfd);
    CHECK(vfu_client_dma_map(c, REL_MSG_IOVA, REL_DMA_SIZE, -1, 0, guest,
                             VFIO_USER_F_DMA_REGION_READ) == 0);

    /* The device copies by message; we leave its DMA_READ unanswered. */
    memcpy(msg, &wr, sizeof(wr));
    memcpy(msg + sizeof(wr), &op, 4);
    CHECK(vfu_client_send(c, VFIO_USER_REGION_WRITE, 0, msg, sizeof(msg),
                          NULL, 0, &id) == 0);
    CHECK(vfu_client_recv(c, &hdr, reply, sizeof(reply), NULL, NULL) == 16);
    CHECK(hdr.cmd == VFIO_USER_DMA_READ);
    struct vfio_user_header late = hdr;
    /* The server gives up; then its reply to our write comes. */
    CHECK(vfu_client_recv(c, &hdr, reply, sizeof(reply), NULL, NULL) >= 0);
    CHECK(hdr.msg_id == id && !(hdr.flags & VFIO_USER_F_ERROR));

    /* Now the late answer, then a request: only its reply comes back. */
    {
        uint8_t data[sizeof(struct vfio_user_dma_rw) + 4096];
        struct vfio_user_dma_rw rw;

        late.flags = VFIO_USER_F_TYPE_REPLY;
        late.msg_size = (uint32_t)(sizeof(late) + sizeof(data));
        rw.addr = REL_MSG_IOVA;
        rw.count = 4096;
        memcpy(data, &rw, sizeof(rw));
        memset(data + sizeof(rw), 0x42, 4096);
        CHECK(write(vfu_client_fd(c), &late, sizeof(late)) ==
              (ssize_t)sizeof(late));
        CHECK(write(vfu_client_fd(c), data, sizeof(data)) ==
              (ssize_t)sizeof(data));
    }
    CHECK(vfu_client_region_read(c, 0, REL_REG_RESULT, &result, 4) == 0);
    CHECK(result == ETIMEDOUT);
    vfu_client_close(c);
    rel_server_wait_first(&s);
    rel_server_stop(&s);
    c = vfu_client_connect(s.path);
    vfu_client_close(c);
    rel_server_join(&s);
    printf("the late reply was dropped\n");
    return 0;
}
