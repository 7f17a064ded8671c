/*
 * Unit tests of the framing layer (lib/common/tran.c) over a socketpair: messages
 * split and joined in every way, fds attributed to the right message, and
 * the framing faults (too small, too big) handled without losing the stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "tran.h"

struct fixture {
    int sv[2];
    struct tran_rx rx;
};

static int
setup_cap(void **state, size_t cap)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
    assert_int_equal(tran_rx_init(&f->rx, cap), 0);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_cap(state, 1 << 20); }
static int setup_small(void **state) { return setup_cap(state, 256); }

/* Elastic: 128 bytes of its own, big buffers of 8 KiB from a pool. */
static struct tran_pool test_pool = TRAN_POOL_INIT(8192);

static int
setup_pooled(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv), 0);
    assert_int_equal(tran_rx_init_pooled(&f->rx, 128, &test_pool), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    tran_rx_fini(&f->rx);
    close(f->sv[0]);
    close(f->sv[1]);
    free(f);
    return 0;
}

/* Builds a command message of @len payload bytes filled with @fill. */
static size_t
make_msg(uint8_t *buf, uint16_t id, uint16_t cmd, size_t len, uint8_t fill)
{
    struct vfio_user_header hdr;
    tran_hdr_init(&hdr, id, cmd, VFIO_USER_F_TYPE_COMMAND, false);
    hdr.msg_size = (uint32_t)(sizeof(hdr) + len);
    memcpy(buf, &hdr, sizeof(hdr));
    memset(buf + sizeof(hdr), fill, len);
    return sizeof(hdr) + len;
}

static void
write_all(int fd, const void *buf, size_t len)
{
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

/* Receives until one message is complete. */
static void
next_msg(struct fixture *f, struct tran_msg *msg)
{
    while (tran_rx_next(&f->rx, msg) == 0) {
        assert_true(tran_rx_fill(&f->rx, f->sv[1], TRAN_RX_BLOCK) > 0);
    }
}

static void
test_two_messages_one_read(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[256];
    struct tran_msg msg;
    size_t n = make_msg(buf, 1, 9, 16, 0xaa);
    n += make_msg(buf + n, 2, 10, 20, 0xbb);

    write_all(f->sv[0], buf, n);
    assert_int_equal(tran_rx_fill(&f->rx, f->sv[1], TRAN_RX_BLOCK), (ssize_t)n);
    assert_int_equal(tran_rx_next(&f->rx, &msg), 1);
    assert_int_equal(msg.hdr.msg_id, 1);
    assert_int_equal(msg.len, 16);
    assert_int_equal(msg.payload[15], 0xaa);
    assert_int_equal(tran_rx_next(&f->rx, &msg), 1);
    assert_int_equal(msg.hdr.msg_id, 2);
    assert_int_equal(msg.len, 20);
    assert_int_equal(msg.payload[0], 0xbb);
    assert_int_equal(tran_rx_next(&f->rx, &msg), 0);
    assert_int_equal(f->rx.nr_recv, 1);
}

static void
test_message_split_bytewise(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[64];
    struct tran_msg msg;
    size_t n = make_msg(buf, 7, 13, 24, 0x5c);

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tran_rx_next(&f->rx, &msg), 0);
        write_all(f->sv[0], buf + i, 1);
        assert_int_equal(tran_rx_fill(&f->rx, f->sv[1], TRAN_RX_BLOCK), 1);
    }
    assert_int_equal(tran_rx_next(&f->rx, &msg), 1);
    assert_int_equal(msg.hdr.msg_id, 7);
    assert_int_equal(msg.len, 24);
    assert_int_equal(msg.payload[23], 0x5c);
}

static void
test_large_message(void **state)
{
    struct fixture *f = *state;
    size_t len = (1 << 20) - 64;
    uint8_t *buf = malloc(len + 16);
    struct tran_msg msg;
    size_t n = make_msg(buf, 3, 10, len, 0);

    for (size_t i = 0; i < len; i++) {
        buf[16 + i] = (uint8_t)(i * 7);
    }
    /* Send from a child so the socket buffer does not fill up. */
    if (fork() == 0) {
        write_all(f->sv[0], buf, n);
        _exit(0);
    }
    next_msg(f, &msg);
    assert_int_equal(msg.len, len);
    assert_memory_equal(msg.payload, buf + 16, len);
    free(buf);
}

static void
send_with_fd(int sock, const void *buf, size_t len, int fd)
{
    struct vfio_user_header hdr;
    struct iovec iov = { (void *)((const uint8_t *)buf + sizeof(hdr)),
                         len - sizeof(hdr) };
    memcpy(&hdr, buf, sizeof(hdr));
    assert_int_equal(tran_send(sock, 0, &hdr, &iov, 1, &fd, 1), 0);
}

static void
test_fds_follow_their_message(void **state)
{
    struct fixture *f = *state;
    uint8_t a[64], b[64];
    struct tran_msg msg;
    int pipefd[2];
    size_t na = make_msg(a, 1, 9, 16, 1);
    size_t nb = make_msg(b, 2, 2, 32, 2);

    assert_int_equal(pipe(pipefd), 0);
    /* An fd-less message, then one with an fd: one read can hold both. */
    write_all(f->sv[0], a, na);
    send_with_fd(f->sv[0], b, nb, pipefd[0]);
    close(pipefd[0]);

    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 1);
    assert_int_equal(msg.nr_fds, 0);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 2);
    assert_int_equal(msg.nr_fds, 1);
    /* It is the pipe: what we write at one end comes out of the other. */
    write_all(pipefd[1], "x", 1);
    char c;
    assert_int_equal(read(msg.fds[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    tran_msg_close_fds(&msg);
    assert_int_equal(msg.nr_fds, 0);
    close(pipefd[1]);
}

static void
test_malformed_size_keeps_stream(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[128];
    struct tran_msg msg;
    size_t n = make_msg(buf, 1, 9, 0, 0);
    struct vfio_user_header *hdr = (void *)buf;

    hdr->msg_size = 8;      /* smaller than a header */
    n += make_msg(buf + n, 2, 9, 16, 0x11);
    write_all(f->sv[0], buf, n);

    next_msg(f, &msg);
    assert_true(msg.malformed);
    assert_int_equal(msg.hdr.msg_id, 1);
    assert_null(msg.payload);
    assert_int_equal(msg.len, 0);
    next_msg(f, &msg);
    assert_false(msg.malformed);
    assert_int_equal(msg.hdr.msg_id, 2);
    assert_int_equal(msg.len, 16);
}

static void
test_oversized_is_skipped(void **state)
{
    struct fixture *f = *state;         /* 256-byte buffer */
    uint8_t big[1024], ok[64];
    struct tran_msg msg;
    size_t nbig = make_msg(big, 1, 10, 1000, 0xee);
    size_t nok = make_msg(ok, 2, 9, 16, 0x22);

    write_all(f->sv[0], big, nbig);
    write_all(f->sv[0], ok, nok);
    next_msg(f, &msg);
    assert_true(msg.oversized);
    assert_int_equal(msg.hdr.msg_id, 1);
    /* Only the header tells its size: there is no payload to trust. */
    assert_int_equal(msg.hdr.msg_size, 16 + 1000);
    assert_null(msg.payload);
    assert_int_equal(msg.len, 0);
    next_msg(f, &msg);
    assert_false(msg.oversized);
    assert_int_equal(msg.hdr.msg_id, 2);
    assert_int_equal(msg.payload[0], 0x22);
}

static void
test_eof_and_nonblocking(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tran_rx_fill(&f->rx, f->sv[1], 0), -EAGAIN);
    close(f->sv[0]);
    f->sv[0] = open("/dev/null", O_RDONLY);
    assert_int_equal(tran_rx_fill(&f->rx, f->sv[1], TRAN_RX_BLOCK), -ENOTCONN);
}

static void
test_send_sets_size(void **state)
{
    struct fixture *f = *state;
    struct vfio_user_header hdr;
    uint32_t payload[3] = { 1, 2, 3 };
    struct iovec iov[2] = { { payload, 4 }, { payload + 1, 8 } };
    struct tran_msg msg;

    tran_hdr_init(&hdr, 42, 9, VFIO_USER_F_TYPE_REPLY, false);
    assert_int_equal(tran_send(f->sv[0], 0, &hdr, iov, 2, NULL, 0), 0);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_size, 16 + 12);
    assert_int_equal((msg.hdr.flags & VFIO_USER_F_TYPE_MASK), VFIO_USER_F_TYPE_REPLY);
    assert_memory_equal(msg.payload, payload, 12);
}

/* A send of @len payload bytes on @sock with @deadline. */
static int
send_big(int sock, size_t len, int64_t deadline)
{
    struct vfio_user_header hdr;
    struct iovec iov = { calloc(1, len), len };
    int ret;

    assert_non_null(iov.iov_base);
    tran_hdr_init(&hdr, 1, 2, VFIO_USER_F_TYPE_REPLY, false);
    ret = tran_send(sock, deadline, &hdr, &iov, 1, NULL, 0);
    free(iov.iov_base);
    return ret;
}

/* A peer that reads nothing: the send ends at the deadline. */
static void
test_send_timeout_no_reader(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(send_big(f->sv[0], 4 << 20, vfu_now_ms() + 100),
                     -ETIMEDOUT);
}

/* Reads a little at a time until the other end closes. */
static void *
trickle_reader(void *arg)
{
    int fd = *(int *)arg;
    char buf[4096];
    struct timespec pause = { 0, 5 * 1000 * 1000 };

    while (read(fd, buf, sizeof(buf)) > 0) {
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/*
 * A peer that keeps reading, too slowly (4 MiB would take it seconds):
 * the send makes progress all along, and still ends at the deadline.
 */
static void
test_send_deadline_trickle(void **state)
{
    struct fixture *f = *state;
    pthread_t reader;
    int ret;

    assert_int_equal(pthread_create(&reader, NULL, trickle_reader,
                                    &f->sv[1]), 0);
    ret = send_big(f->sv[0], 4 << 20, vfu_now_ms() + 100);
    shutdown(f->sv[0], SHUT_WR);
    assert_int_equal(pthread_join(reader, NULL), 0);
    assert_int_equal(ret, -ETIMEDOUT);
}

/* A reply of the expected size lands in the caller's buffer directly. */
static void
test_direct_expected(void **state)
{
    struct fixture *f = *state;
    size_t len = 200000;
    uint8_t *buf = malloc(16 + 16 + len);
    uint8_t *dst = malloc(len);
    struct vfio_user_header expect = { .msg_id = 5, .cmd = 9 };
    struct tran_msg msg;
    size_t n = make_msg(buf, 5, 9, 16 + len, 0);
    struct vfio_user_header *hdr = (void *)buf;

    hdr->flags = (hdr->flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    for (size_t i = 0; i < 16 + len; i++) {
        buf[16 + i] = (uint8_t)(i * 13);
    }
    expect.msg_size = (uint32_t)n;
    if (fork() == 0) {
        write_all(f->sv[0], buf, n);
        _exit(0);
    }
    assert_int_equal(tran_rx_direct(&f->rx, f->sv[1], &expect, 16, dst, &msg), 1);
    assert_int_equal(msg.len, 16 + len);
    assert_memory_equal(msg.payload, buf + 16, 16);
    assert_memory_equal(dst, buf + 32, len);
    assert_false(tran_rx_pending(&f->rx));
    free(buf);
    free(dst);
}

/* Anything else (an error reply, then another message) is framed as usual. */
static void
test_direct_fallback(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[256];
    uint8_t dst[4096];
    struct vfio_user_header expect = { .msg_id = 5, .cmd = 9,
                                       .msg_size = 16 + 16 + 4096 };
    struct tran_msg msg;
    size_t n = make_msg(buf, 5, 9, 0, 0);
    struct vfio_user_header *hdr = (void *)buf;

    hdr->flags = (hdr->flags & ~VFIO_USER_F_TYPE_MASK) | (VFIO_USER_F_TYPE_REPLY);
    hdr->flags |= VFIO_USER_F_ERROR;
    hdr->error_no = EIO;
    /* A server command behind it, whose bytes spill into dst. */
    n += make_msg(buf + n, 77, 11, 100, 0x3c);
    write_all(f->sv[0], buf, n);
    usleep(10000);

    assert_int_equal(tran_rx_direct(&f->rx, f->sv[1], &expect, 16, dst, &msg), 0);
    assert_int_equal(tran_rx_next(&f->rx, &msg), 1);
    assert_true(!!(msg.hdr.flags & VFIO_USER_F_ERROR));
    assert_int_equal(msg.hdr.error_no, EIO);
    assert_int_equal(tran_rx_next(&f->rx, &msg), 1);
    assert_int_equal(msg.hdr.msg_id, 77);
    assert_int_equal(msg.len, 100);
    assert_int_equal(msg.payload[99], 0x3c);
    assert_int_equal(tran_rx_next(&f->rx, &msg), 0);
}

/* Held messages keep their bytes while later receives need room. */
static void
test_hold_keeps_messages(void **state)
{
    struct fixture *f = *state;         /* 256-byte buffer */
    uint8_t buf[128];
    struct tran_msg held, msg;
    size_t n = make_msg(buf, 1, 10, 64, 0xa1);

    write_all(f->sv[0], buf, n);
    next_msg(f, &held);
    assert_int_equal(tran_rx_hold(&f->rx), 0);
    /* Messages of 96 bytes: the third no longer fits behind the first. */
    for (uint16_t id = 2; id < 8; id++) {
        n = make_msg(buf, id, 10, 80, (uint8_t)id);
        write_all(f->sv[0], buf, n);
        next_msg(f, &msg);
        assert_int_equal(msg.hdr.msg_id, id);
        assert_int_equal(msg.payload[79], id);
        /* The held message did not move or change. */
        assert_int_equal(held.payload[0], 0xa1);
        assert_int_equal(held.payload[63], 0xa1);
    }
    assert_true(f->rx.nr_retired > 0);
    tran_rx_release(&f->rx);
    assert_int_equal(f->rx.nr_retired, 0);
}

/*
 * Under a hold, receiving far more than the buffer holds (a long run of
 * DMA replies inside one request) retires only the pinned buffer: the rest
 * is compacted in place, and the held message stays intact.
 */
static void
test_hold_long_run(void **state)
{
    struct fixture *f = *state;         /* 256-byte buffer */
    uint8_t buf[128];
    struct tran_msg held, msg;
    size_t n = make_msg(buf, 1, 10, 64, 0xa1);

    write_all(f->sv[0], buf, n);
    next_msg(f, &held);
    assert_int_equal(tran_rx_hold(&f->rx), 0);
    for (unsigned i = 0; i < 1000; i++) {
        uint16_t id = (uint16_t)(i + 2);
        n = make_msg(buf, id, 10, 80, (uint8_t)id);
        write_all(f->sv[0], buf, n);
        next_msg(f, &msg);
        assert_int_equal(msg.hdr.msg_id, id);
        assert_int_equal(msg.payload[79], (uint8_t)id);
    }
    assert_int_equal(held.payload[0], 0xa1);
    assert_int_equal(held.payload[63], 0xa1);
    assert_int_equal(f->rx.nr_retired, 1);
    tran_rx_release(&f->rx);
    assert_int_equal(f->rx.nr_retired, 0);
}

/*
 * A direct receive while a message is held would land on the held bytes:
 * it declines (0) and reads nothing; the message is framed as usual.
 * (Found by fuzz-tran: regressions/tran/direct-under-hold.)
 */
static void
test_direct_declines_under_hold(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[128], dst[64];
    struct vfio_user_header expect = { .msg_id = 2, .cmd = 9 };
    struct tran_msg held, msg;
    size_t n = make_msg(buf, 1, 10, 64, 0xa1);
    struct vfio_user_header *hdr;

    write_all(f->sv[0], buf, n);
    next_msg(f, &held);
    assert_int_equal(tran_rx_hold(&f->rx), 0);
    n = make_msg(buf, 2, 9, 16 + sizeof(dst), 0x5b);
    hdr = (void *)buf;
    hdr->flags = VFIO_USER_F_TYPE_REPLY;
    expect.msg_size = (uint32_t)n;
    write_all(f->sv[0], buf, n);

    assert_int_equal(tran_rx_direct(&f->rx, f->sv[1], &expect, 16, dst,
                                    &msg), 0);
    assert_int_equal(held.payload[0], 0xa1);
    assert_int_equal(held.payload[63], 0xa1);
    assert_true(f->rx.start <= f->rx.end);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 2);
    assert_int_equal(msg.payload[16 + sizeof(dst) - 1], 0x5b);
    assert_int_equal(held.payload[0], 0xa1);
    tran_rx_release(&f->rx);
}

/*
 * An elastic receiver takes a message larger than its own buffer into one
 * of the pool's and gives that back once the message is served and no
 * hold pins it; small messages around it are framed as usual.
 */
static void
test_pooled_big_message(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[8192 + 64];
    struct tran_msg msg;
    size_t len = make_msg(buf, 1, 2, 16, 0x11);

    len += make_msg(buf + len, 2, 3, 5000, 0x22);
    len += make_msg(buf + len, 3, 4, 8, 0x33);
    write_all(f->sv[0], buf, len);

    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 1);
    assert_false(f->rx.big);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 2);
    assert_int_equal(msg.len, 5000);
    assert_int_equal(msg.payload[0], 0x22);
    assert_int_equal(msg.payload[4999], 0x22);
    assert_true(f->rx.big);
    assert_int_equal(test_pool.nr_out, 1);

    /* Served under a hold: the big buffer stays while pinned. */
    assert_int_equal(tran_rx_hold(&f->rx), 0);
    tran_rx_trim(&f->rx);
    assert_true(f->rx.big);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 3);
    assert_int_equal(msg.payload[7], 0x33);
    tran_rx_release(&f->rx);
    tran_rx_trim(&f->rx);
    assert_false(f->rx.big);
    assert_int_equal(f->rx.cap, 128);
    assert_int_equal(test_pool.nr_out, 0);

    /* A message too large for the pool's buffers is refused as oversized. */
    len = make_msg(buf, 4, 2, 8192, 0x44);
    write_all(f->sv[0], buf, len);
    len = make_msg(buf, 5, 2, 4, 0x55);
    write_all(f->sv[0], buf, len);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 4);
    assert_true(msg.oversized);
    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 5);
    assert_false(f->rx.big);
    assert_int_equal(test_pool.nr_out, 0);
}

/*
 * No big buffer to be had (a pool whose buffers are larger than any
 * address space, so mmap() fails whatever the overcommit policy): the
 * receive that needs one fails with ENOBUFS (the server then lets that
 * client go), what came before it was served, and nothing is held.
 */
static struct tran_pool unmappable_pool = TRAN_POOL_INIT((size_t)1 << 47);

static void
test_pooled_no_big_buffer(void **state)
{
    struct fixture *f = *state;
    uint8_t buf[5000 + 64];
    struct tran_msg msg;
    size_t len = make_msg(buf, 1, 2, 16, 0x11);
    ssize_t n;

    tran_rx_fini(&f->rx);
    assert_int_equal(tran_rx_init_pooled(&f->rx, 128, &unmappable_pool), 0);
    len += make_msg(buf + len, 2, 3, 5000, 0x22);
    write_all(f->sv[0], buf, len);

    next_msg(f, &msg);
    assert_int_equal(msg.hdr.msg_id, 1);
    assert_int_equal(msg.payload[15], 0x11);
    do {
        n = tran_rx_fill(&f->rx, f->sv[1], 0);
    } while (n > 0 && tran_rx_next(&f->rx, &msg) == 0);
    assert_int_equal(n, -ENOBUFS);
    assert_false(f->rx.big);
    assert_int_equal(unmappable_pool.nr_out, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_messages_one_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_split_bytewise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fds_follow_their_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_size_keeps_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_is_skipped, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_eof_and_nonblocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_sets_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_expected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_keeps_messages, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_hold_long_run, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_pooled_big_message, setup_pooled,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_direct_declines_under_hold, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pooled_no_big_buffer, setup_pooled,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_send_timeout_no_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_send_deadline_trickle, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
