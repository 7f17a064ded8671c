/*
 * Quiesce through a real socket: requests that need the device quiet
 * (DEVICE_RESET, Initiate FLR) wait while the quiesce callback defers with
 * EBUSY, vfu_run_ctx() reports EBUSY, nothing else is served, and
 * vfu_device_quiesced() completes (or refuses) the waiting request.
 * Single-threaded: the server is non-blocking and run by the test itself.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

struct fx {
    char dir[32];
    char sock[64];
    vfu_ctx_t *ctx;
    vfu_client_t *c;
    int quiesce_calls;
    int quiesce_answer;         /* 0, or the errno the callback fails with */
    int resets[3];
    bool quiet_at_reset;        /* the device was quiet when reset ran */
    bool quiet;
    int quiesce_return;         /* what a successful callback returns */
    char events[64];            /* Q quiesce, L reset(LOST_CONN), U unmap */
    size_t nr_events;
};

static void
event(struct fx *f, char e)
{
    if (f->nr_events < sizeof(f->events) - 1) {
        f->events[f->nr_events++] = e;
    }
}

static int
quiesce_cb(vfu_ctx_t *ctx)
{
    struct fx *f = vfu_get_private(ctx);
    f->quiesce_calls++;
    event(f, 'Q');
    if (f->quiesce_answer != 0) {
        errno = f->quiesce_answer;
        return -1;
    }
    f->quiet = true;
    return f->quiesce_return;
}

static void
dma_unregister_cb(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    (void)info;
    event(vfu_get_private(ctx), 'U');
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct fx *f = vfu_get_private(ctx);
    f->resets[type]++;
    f->quiet_at_reset = f->quiet;
    if (type == VFU_RESET_LOST_CONN) {
        event(f, 'L');
    }
    return 0;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct pxcap px = { .hdr.id = PCI_CAP_ID_EXP };
    uint8_t ver[4] = { 0 };
    uint16_t id;

    strcpy(f->dir, "/tmp/vfu-q.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    f->ctx = vfu_create_ctx(VFU_TRANS_SOCK, f->sock,
                            LIBVFIO_USER_FLAG_ATTACH_NB, f, VFU_DEV_TYPE_PCI);
    assert_non_null(f->ctx);
    assert_int_equal(vfu_pci_init(f->ctx, VFU_PCI_TYPE_EXPRESS, 0, 0), 0);
    px.pxcaps.ver = 2;
    px.pxdcap.flrc = 1;
    assert_true(vfu_pci_add_capability(f->ctx, 0, 0, &px) > 0);
    vfu_setup_device_quiesce_cb(f->ctx, quiesce_cb);
    assert_int_equal(vfu_setup_device_reset_cb(f->ctx, reset_cb), 0);
    assert_int_equal(vfu_setup_device_dma(f->ctx, 16, NULL, dma_unregister_cb),
                     0);
    assert_int_equal(vfu_realize_ctx(f->ctx), 0);

    f->c = vfu_client_connect(f->sock);
    assert_non_null(f->c);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_VERSION, 0, ver, 4, NULL,
                                     0, &id), 0);
    while (vfu_attach_ctx(f->ctx) < 0) {
        assert_int_equal(errno, EAGAIN);
    }
    struct vfio_user_header hdr;
    assert_true(vfu_client_recv(f->c, &hdr, NULL, 0, NULL, NULL) >= 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    vfu_client_close(f->c);
    vfu_destroy_ctx(f->ctx);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs the server until it has served what is queued (or reports EBUSY). */
static int
run(struct fx *f)
{
    int ret;
    usleep(5000);
    do {
        ret = vfu_run_ctx(f->ctx);
    } while (ret > 0);
    return ret;
}

static bool
reply_waiting(struct fx *f)
{
    struct pollfd p = { .fd = vfu_client_fd(f->c), .events = POLLIN };
    return poll(&p, 1, 50) == 1;
}

static void
send_reset(struct fx *f, uint16_t *id)
{
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_RESET, 0, NULL, 0,
                                     NULL, 0, id), 0);
}

static void
expect_reply(struct fx *f, uint16_t id, uint32_t error_no)
{
    struct vfio_user_header hdr;
    assert_true(vfu_client_recv(f->c, &hdr, NULL, 0, NULL, NULL) >= 0);
    assert_int_equal(hdr.msg_id, id);
    assert_int_equal(!!(hdr.flags & VFIO_USER_F_ERROR) ? hdr.error_no : 0, error_no);
}

static void
test_quiesce_now(void **state)
{
    struct fx *f = *state;
    uint16_t id;

    send_reset(f, &id);
    assert_int_equal(run(f), 0);
    expect_reply(f, id, 0);
    assert_int_equal(f->quiesce_calls, 1);
    assert_int_equal(f->resets[VFU_RESET_DEVICE], 1);
    assert_true(f->quiet_at_reset);
}

static void
test_quiesce_deferred(void **state)
{
    struct fx *f = *state;
    uint16_t id, id2;
    uint32_t ids = 0;

    f->quiesce_answer = EBUSY;
    send_reset(f, &id);
    /* A read queued behind the reset must not overtake it. */
    struct vfio_user_region_access rd = {
        .offset = 0, .region = VFU_PCI_DEV_CFG_REGION_IDX, .count = 4 };
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_READ, 0, &rd,
                                     sizeof(rd), NULL, 0, &id2), 0);
    assert_int_equal(run(f), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(vfu_run_ctx(f->ctx), -1);
    assert_int_equal(errno, EBUSY);
    assert_false(reply_waiting(f));
    assert_int_equal(f->resets[VFU_RESET_DEVICE], 0);

    /* The device finishes quiescing: the reset happens and is answered. */
    f->quiet = true;
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), 0);
    assert_int_equal(f->resets[VFU_RESET_DEVICE], 1);
    assert_true(f->quiet_at_reset);
    expect_reply(f, id, 0);
    assert_int_equal(f->quiesce_calls, 1);
    /* Then the read is served. */
    assert_int_equal(run(f), 0);
    struct vfio_user_header hdr;
    uint8_t buf[32];
    assert_true(vfu_client_recv(f->c, &hdr, buf, sizeof(buf), NULL, NULL) > 0);
    assert_int_equal(hdr.msg_id, id2);
    memcpy(&ids, buf + sizeof(rd), 4);
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), -1);
    assert_int_equal(errno, EINVAL);            /* nothing pending now */
}

static void
test_quiesce_fails(void **state)
{
    struct fx *f = *state;
    uint16_t id;

    /* Deferred, then the device reports it could not quiesce. */
    f->quiesce_answer = EBUSY;
    send_reset(f, &id);
    assert_int_equal(run(f), -1);
    assert_int_equal(vfu_device_quiesced(f->ctx, EIO), 0);
    expect_reply(f, id, EIO);
    assert_int_equal(f->resets[VFU_RESET_DEVICE], 0);

    /* Refused at once. */
    f->quiesce_answer = ENODEV;
    send_reset(f, &id);
    assert_int_equal(run(f), 0);
    expect_reply(f, id, ENODEV);
    assert_int_equal(f->resets[VFU_RESET_DEVICE], 0);
}

/* Initiate FLR waits for the quiesce like DEVICE_RESET does. */
static void
test_flr_waits(void **state)
{
    struct fx *f = *state;
    size_t px = vfu_pci_find_capability(f->ctx, false, PCI_CAP_ID_EXP);
    uint16_t ctl = PCI_EXP_DEVCTL_BCR_FLR, id;
    uint8_t req[16 + 2];
    struct vfio_user_region_access *wr = (void *)req;

    assert_true(px > 0);
    wr->offset = px + PCI_EXP_DEVCTL;
    wr->region = VFU_PCI_DEV_CFG_REGION_IDX;
    wr->count = 2;
    memcpy(req + 16, &ctl, 2);
    f->quiesce_answer = EBUSY;
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_REGION_WRITE, 0, req,
                                     sizeof(req), NULL, 0, &id), 0);
    assert_int_equal(run(f), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(f->resets[VFU_RESET_PCI_FLR], 0);
    f->quiet = true;
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), 0);
    assert_int_equal(f->resets[VFU_RESET_PCI_FLR], 1);
    assert_true(f->quiet_at_reset);
    expect_reply(f, id, 0);
}

/* A client that leaves while a request waits: nothing is left behind. */
static void
test_disconnect_while_pending(void **state)
{
    struct fx *f = *state;
    uint16_t id;

    f->quiesce_answer = EBUSY;
    send_reset(f, &id);
    assert_int_equal(run(f), -1);
    vfu_client_close(f->c);
    f->c = NULL;
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), 0);   /* reply fails */
    assert_int_equal(vfu_run_ctx(f->ctx), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), -1);
    f->c = vfu_client_connect(f->sock);                     /* for teardown */
}

/* Two regions of client memory (no fds), for unregister callbacks. */
static void
map_two(struct fx *f)
{
    for (uint64_t i = 0; i < 2; i++) {
        struct vfio_user_dma_map m = {
            .argsz = sizeof(m), .addr = (i + 1) << 20, .size = 4096,
            .flags = VFIO_USER_F_DMA_REGION_READ };
        uint16_t id;
        assert_int_equal(vfu_client_send(f->c, VFIO_USER_DMA_MAP, 0, &m,
                                         sizeof(m), NULL, 0, &id), 0);
        assert_int_equal(run(f), 0);
        expect_reply(f, id, 0);
    }
    f->nr_events = 0;
    f->quiesce_calls = 0;
    f->quiet = false;
    memset(f->events, 0, sizeof(f->events));
}

/* The client leaves: quiesce, then reset(LOST_CONN), then unmap. */
static void
test_lost_conn_order(void **state)
{
    struct fx *f = *state;

    map_two(f);
    vfu_client_close(f->c);
    f->c = NULL;
    assert_int_equal(run(f), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_string_equal(f->events, "QLUU");
    assert_true(f->quiet_at_reset);
    f->c = vfu_client_connect(f->sock);                     /* for teardown */
}

/* ...and when the device quiesces later, nothing happens until it has. */
static void
test_lost_conn_async_quiesce(void **state)
{
    struct fx *f = *state;

    map_two(f);
    f->quiesce_answer = EBUSY;
    vfu_client_close(f->c);
    f->c = NULL;
    assert_int_equal(run(f), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(vfu_run_ctx(f->ctx), -1);
    assert_int_equal(errno, EBUSY);
    assert_string_equal(f->events, "Q");
    f->quiet = true;
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), 0);
    assert_string_equal(f->events, "QLUU");
    assert_true(f->quiet_at_reset);
    assert_int_equal(vfu_run_ctx(f->ctx), -1);
    assert_int_equal(errno, ENOTCONN);
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), -1);
    assert_int_equal(errno, EINVAL);
    f->c = vfu_client_connect(f->sock);
}

/*
 * A request waits for the quiesce; the client leaves; the request's reply
 * fails inside vfu_device_quiesced(): the teardown happens there, with the
 * device still quiet (no second quiesce).
 */
static void
test_reply_fails_while_quiesced(void **state)
{
    struct fx *f = *state;
    struct vfio_user_dma_unmap u = {
        .argsz = sizeof(u), .addr = 1 << 20, .size = 4096 };
    uint16_t id;

    map_two(f);
    f->quiesce_answer = EBUSY;
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DMA_UNMAP, 0, &u,
                                     sizeof(u), NULL, 0, &id), 0);
    assert_int_equal(run(f), -1);
    assert_int_equal(errno, EBUSY);
    vfu_client_close(f->c);
    f->c = NULL;
    f->quiet = true;
    assert_int_equal(vfu_device_quiesced(f->ctx, 0), 0);
    assert_string_equal(f->events, "QULU");     /* the unmap, then leaving */
    assert_int_equal(f->quiesce_calls, 1);
    assert_true(f->quiet_at_reset);
    assert_int_equal(vfu_run_ctx(f->ctx), -1);
    assert_int_equal(errno, ENOTCONN);
    f->c = vfu_client_connect(f->sock);
}

/*
 * Destroying the context with a client attached: reset(LOST_CONN) and the
 * unmapping, but no quiesce callback (as the original documents).
 */
static void
test_destroy_does_not_quiesce(void **state)
{
    struct fx *f = *state;

    map_two(f);
    vfu_destroy_ctx(f->ctx);
    assert_string_equal(f->events, "LUU");
    assert_int_equal(f->quiesce_calls, 0);
    /* For teardown: a context of the same shape, never attached. */
    f->ctx = vfu_create_ctx(VFU_TRANS_SOCK, f->sock, 0, f, VFU_DEV_TYPE_PCI);
    assert_non_null(f->ctx);
}

/* A quiesce callback that returns a positive value has quiesced. */
static void
test_quiesce_positive(void **state)
{
    struct fx *f = *state;
    uint16_t id;

    f->quiesce_return = 1;
    send_reset(f, &id);
    assert_int_equal(run(f), 0);
    expect_reply(f, id, 0);
    assert_int_equal(f->resets[VFU_RESET_DEVICE], 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quiesce_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiesce_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiesce_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flr_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_while_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_conn_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_conn_async_quiesce, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reply_fails_while_quiesced,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiesce_positive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_destroy_does_not_quiesce, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
