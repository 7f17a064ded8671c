/*
 * Live migration through a real socket: the VERSION capability, the
 * migration features of DEVICE_FEATURE, every arc and combination of the
 * state machine with the transition callbacks it makes, the refusals
 * (unknown and P2P states, STOP_COPY -> PRE_COPY, bad sizes and flags), a
 * callback's errno and the state it leaves, ERROR and the reset out of it,
 * quiesce before a state change, and MIG_DATA_READ / MIG_DATA_WRITE.
 * The server runs in a thread; the test speaks raw requests.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

enum {
    S_ERR = VFIO_DEVICE_STATE_ERROR, S_STOP = VFIO_DEVICE_STATE_STOP,
    S_RUN = VFIO_DEVICE_STATE_RUNNING, S_SC = VFIO_DEVICE_STATE_STOP_COPY,
    S_RES = VFIO_DEVICE_STATE_RESUMING, S_PC = VFIO_DEVICE_STATE_PRE_COPY,
};
#define SAVED_SIZE  (3u << 20)          /* the device state read_data gives */
#define PRECOPY_AVAIL (100u * 1024)     /* what PRE_COPY has ready */
#define MAX_STEPS   16

struct fx {
    char dir[32];
    char sock[64];
    vfu_ctx_t *ctx;
    vfu_client_t *c;
    pthread_t thread;
    bool joined;
    char version_json[512];
    bool migratable;
    /* What the device saw and how it answers. */
    vfu_migr_state_t steps[MAX_STEPS];
    int nr_steps;
    int fail_state;                 /* fail entering this (-1: never) */
    int fail_errno;
    int resets;
    volatile int quiesce_busy;      /* quiesce callback defers with EBUSY */
    volatile int release;           /* then the thread completes it */
    uint8_t *saved;                 /* what read_data streams */
    size_t read_pos;
    size_t read_limit;              /* read_data stops short here */
    int read_errno;
    uint8_t *loaded;                /* what write_data received */
    size_t loaded_len;
    size_t write_chunk;             /* most write_data takes per call */
    bool with_size;
    bool full_on_stopcopy;          /* all of saved is ready in STOP_COPY */
};

static int
transition(vfu_ctx_t *ctx, vfu_migr_state_t state)
{
    struct fx *f = vfu_get_private(ctx);

    if ((int)state == f->fail_state) {
        errno = f->fail_errno;
        return -1;
    }
    if (f->nr_steps < MAX_STEPS) {
        f->steps[f->nr_steps++] = state;
    }
    if (state == VFU_MIGR_STATE_STOP_AND_COPY && f->full_on_stopcopy) {
        f->read_limit = SAVED_SIZE;
    }
    return 0;
}

static ssize_t
read_data(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct fx *f = vfu_get_private(ctx);
    size_t n = f->read_limit - f->read_pos;

    if (f->read_errno != 0) {
        errno = f->read_errno;
        return -1;
    }
    n = n < count ? n : count;
    memcpy(buf, f->saved + f->read_pos, n);
    f->read_pos += n;
    return (ssize_t)n;
}

static ssize_t
write_data(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct fx *f = vfu_get_private(ctx);
    size_t n = count < f->write_chunk ? count : f->write_chunk;

    if (f->loaded_len + n > SAVED_SIZE) {
        errno = ENOSPC;
        return -1;
    }
    memcpy(f->loaded + f->loaded_len, buf, n);
    f->loaded_len += n;
    return (ssize_t)n;
}

static int
data_size(vfu_ctx_t *ctx, uint64_t *len)
{
    struct fx *f = vfu_get_private(ctx);
    *len = SAVED_SIZE - f->read_pos;
    return 0;
}

static int
quiesce_cb(vfu_ctx_t *ctx)
{
    struct fx *f = vfu_get_private(ctx);
    if (f->quiesce_busy) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct fx *f = vfu_get_private(ctx);
    (void)type;
    f->resets++;
    return 0;
}

static void *
serve(void *arg)
{
    struct fx *f = arg;

    if (vfu_attach_ctx(f->ctx) < 0) {
        return NULL;
    }
    for (;;) {
        if (vfu_run_ctx(f->ctx) >= 0) {
            continue;
        }
        if (errno != EBUSY) {
            break;
        }
        while (!f->release) {
            usleep(1000);
        }
        f->release = 0;
        f->quiesce_busy = 0;
        vfu_device_quiesced(f->ctx, 0);
    }
    return NULL;
}

/* fx_new() sets the migration callbacks after realize, as SPDK does. */
static bool callbacks_after_realize;

static struct fx *
fx_new(bool migratable, bool with_size)
{
    struct fx *f = calloc(1, sizeof(*f));
    const vfu_migration_callbacks_t cbs = {
        .version = VFU_MIGR_CALLBACKS_VERS, .transition = transition,
        .read_data = read_data, .write_data = write_data,
    };
    uint8_t ver[4] = { 0 };
    struct vfio_user_header hdr;
    uint16_t id;
    ssize_t n;

    f->migratable = migratable;
    f->with_size = with_size;
    f->fail_state = -1;
    f->write_chunk = SAVED_SIZE;
    f->saved = malloc(SAVED_SIZE);
    f->loaded = malloc(SAVED_SIZE);
    for (size_t i = 0; i < SAVED_SIZE; i++) {
        f->saved[i] = (uint8_t)(i * 7 + i / 4096);
    }
    f->read_limit = SAVED_SIZE;
    strcpy(f->dir, "/tmp/vfu-mig.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    f->ctx = vfu_create_ctx(VFU_TRANS_SOCK, f->sock, 0, f, VFU_DEV_TYPE_PCI);
    assert_non_null(f->ctx);
    assert_int_equal(vfu_pci_init(f->ctx, VFU_PCI_TYPE_CONVENTIONAL, 0, 0), 0);
    vfu_setup_device_quiesce_cb(f->ctx, quiesce_cb);
    assert_int_equal(vfu_setup_device_reset_cb(f->ctx, reset_cb), 0);
    if (callbacks_after_realize) {
        assert_int_equal(vfu_realize_ctx(f->ctx), 0);
    }
    if (migratable) {
        assert_int_equal(vfu_setup_device_migration_callbacks(f->ctx, &cbs), 0);
        if (with_size) {
            assert_int_equal(vfu_setup_device_migration_data_size(f->ctx,
                                                                  data_size), 0);
        }
    }
    if (!callbacks_after_realize) {
        assert_int_equal(vfu_realize_ctx(f->ctx), 0);
    }
    assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);

    for (int i = 0; i < 500 && f->c == NULL; i++) {
        f->c = vfu_client_connect(f->sock);
        if (f->c == NULL) {
            usleep(2000);
        }
    }
    assert_non_null(f->c);
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_VERSION, 0, ver, 4, NULL,
                                     0, &id), 0);
    n = vfu_client_recv(f->c, &hdr, f->version_json,
                        sizeof(f->version_json) - 1, NULL, NULL);
    assert_true(n > 4);
    memmove(f->version_json, f->version_json + 4, sizeof(f->version_json) - 4);
    return f;
}

static void
fx_free(struct fx *f)
{
    vfu_client_close(f->c);
    if (!f->joined) {
        pthread_join(f->thread, NULL);
    }
    vfu_destroy_ctx(f->ctx);
    rmdir(f->dir);
    free(f->saved);
    free(f->loaded);
    free(f);
}

static int
setup(void **state)
{
    *state = fx_new(true, true);
    return 0;
}

static int
teardown(void **state)
{
    fx_free(*state);
    return 0;
}

/* A DEVICE_FEATURE request; the errno of the reply (0: success). */
static int
feature(struct fx *f, uint32_t flags, const void *data, size_t len,
        uint32_t argsz, void *out, size_t cap, ssize_t *out_len)
{
    uint8_t buf[64];
    struct vfio_user_device_feature h = { .argsz = argsz, .flags = flags };
    ssize_t n;

    memcpy(buf, &h, sizeof(h));
    if (len > 0) {
        memcpy(buf + sizeof(h), data, len);
    }
    n = vfu_client_request(f->c, VFIO_USER_DEVICE_FEATURE, buf,
                           sizeof(h) + len, NULL, 0, out, cap, NULL, NULL);
    if (out_len != NULL) {
        *out_len = n;
    }
    return n < 0 ? errno : 0;
}

static int
set_state(struct fx *f, uint32_t s)
{
    struct vfio_user_device_feature_mig_state st = { .device_state = s };
    return feature(f, VFIO_DEVICE_FEATURE_SET |
                   VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &st, sizeof(st),
                   16, NULL, 0, NULL);
}

static uint32_t
get_state(struct fx *f)
{
    uint8_t out[16];
    ssize_t n;
    uint32_t s, argsz;

    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0,
                             16, out, sizeof(out), &n), 0);
    assert_int_equal(n, 16);
    memcpy(&argsz, out, 4);
    assert_int_equal(argsz, 16);
    memcpy(&s, out + 8, 4);
    return s;
}

static int
reset(struct fx *f)
{
    return vfu_client_reset(f->c) < 0 ? errno : 0;
}

/* Back to RUNNING: through the state machine, or by reset from ERROR. */
static void
to_running(struct fx *f)
{
    if (get_state(f) == S_ERR) {
        assert_int_equal(reset(f), 0);
    } else if (get_state(f) != S_RUN) {
        assert_int_equal(set_state(f, S_RUN), 0);
    }
}

/* MIG_DATA_READ of @size (argsz @argsz); bytes returned, or -errno. */
static ssize_t
mig_read(struct fx *f, uint32_t size, uint32_t argsz, uint8_t *buf)
{
    struct vfio_user_mig_data req = { .argsz = argsz, .size = size };
    struct vfio_user_mig_data rep;
    static uint8_t reply[(1u << 20) + 64];
    ssize_t n;

    n = vfu_client_request(f->c, VFIO_USER_MIG_DATA_READ, &req, sizeof(req),
                           NULL, 0, reply, sizeof(reply), NULL, NULL);
    if (n < 0) {
        return -errno;
    }
    assert_true(n >= 8);
    memcpy(&rep, reply, sizeof(rep));
    assert_int_equal(rep.argsz, n);
    assert_int_equal(rep.size, n - 8);
    if (buf != NULL) {
        memcpy(buf, reply + 8, rep.size);
    }
    return rep.size;
}

/* MIG_DATA_WRITE of @len bytes claiming @size; 0 or the errno. */
static int
mig_write(struct fx *f, const void *data, size_t len, uint32_t size)
{
    uint8_t *msg = malloc(8 + len);
    struct vfio_user_mig_data req = { .argsz = 8, .size = size };
    ssize_t n;

    memcpy(msg, &req, sizeof(req));
    memcpy(msg + 8, data, len);
    n = vfu_client_request(f->c, VFIO_USER_MIG_DATA_WRITE, msg, 8 + len,
                           NULL, 0, NULL, 0, NULL, NULL);
    free(msg);
    return n < 0 ? errno : 0;
}

static void
test_version_capability(void **state)
{
    struct fx *f = *state;
    struct fx *plain;

    assert_non_null(strstr(f->version_json, "\"migration\""));
    assert_non_null(strstr(f->version_json, "\"pgsize\""));
    assert_non_null(strstr(f->version_json, "\"max_bitmap_size\""));
    plain = fx_new(false, false);
    assert_null(strstr(plain->version_json, "\"migration\""));
    fx_free(plain);
}

static void
test_not_migratable(void **state)
{
    struct fx *f = fx_new(false, false);
    uint8_t out[32];
    (void)state;

    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0, 16,
                             out, sizeof(out), NULL), ENOTTY);
    assert_int_equal(set_state(f, S_STOP), ENOTTY);
    assert_int_equal(mig_read(f, 16, 24, NULL), -ENOSYS);
    assert_int_equal(mig_write(f, "x", 1, 1), ENOSYS);
    fx_free(f);
}

static void
test_setup_refusals(void **state)
{
    vfu_ctx_t *ctx = vfu_create_ctx(VFU_TRANS_SOCK, "/tmp/vfu-mig-unused.sock",
                                    0, NULL, VFU_DEV_TYPE_PCI);
    vfu_migration_callbacks_t cbs = {
        .version = 1, .transition = transition, .read_data = read_data,
        .write_data = write_data,
    };
    (void)state;

    assert_non_null(ctx);
    assert_int_equal(vfu_setup_device_migration_data_size(ctx, data_size), -1);
    assert_int_equal(errno, EINVAL);                /* not migratable yet */
    assert_int_equal(vfu_setup_device_migration_callbacks(ctx, &cbs), -1);
    assert_int_equal(errno, EINVAL);                /* version 1 */
    cbs.version = VFU_MIGR_CALLBACKS_VERS;
    cbs.write_data = NULL;
    assert_int_equal(vfu_setup_device_migration_callbacks(ctx, &cbs), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_setup_device_migration_callbacks(ctx, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_setup_device_migration_callbacks(NULL, &cbs), -1);
    vfu_destroy_ctx(ctx);
}

/* Callbacks set after realize: the device is migratable all the same. */
static void
test_callbacks_after_realize(void **state)
{
    struct fx *f;
    uint64_t flags;
    (void)state;

    callbacks_after_realize = true;
    f = fx_new(true, true);
    callbacks_after_realize = false;
    assert_non_null(strstr(f->version_json, "\"migration\""));
    assert_int_equal(vfu_client_mig_flags(f->c, &flags), 0);
    assert_int_equal(flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY);
    assert_int_equal(set_state(f, S_STOP), 0);
    assert_int_equal(get_state(f), S_STOP);
    assert_int_equal(set_state(f, S_RUN), 0);
    fx_free(f);
}

/*
 * A server that pads a short MIG_DATA_READ reply to the size asked (its
 * size field says how much is data): a stand-in written raw, since ours
 * does not.
 */
struct padding_server {
    int listen_fd;
    uint32_t data_len;              /* what the device has left */
};

static void *
padding_serve(void *arg)
{
    struct padding_server *p = arg;
    int fd = accept(p->listen_fd, NULL, NULL);
    uint8_t buf[8192];

    for (;;) {
        struct vfio_user_header h;
        struct vfio_user_mig_data req, rep;
        ssize_t n = recv(fd, &h, sizeof(h), MSG_WAITALL);
        if (n != sizeof(h)) {
            break;
        }
        assert_true(h.msg_size - sizeof(h) <= sizeof(buf));
        if (h.msg_size > sizeof(h)) {
            recv(fd, buf, h.msg_size - sizeof(h), MSG_WAITALL);
        }
        h.flags = VFIO_USER_F_TYPE_REPLY;
        if (h.cmd == VFIO_USER_VERSION) {
            const char json[] = "{\"capabilities\":{}}";
            memset(buf, 0, 4);
            memcpy(buf + 4, json, sizeof(json));
            h.msg_size = sizeof(h) + 4 + sizeof(json);
        } else {
            memcpy(&req, buf, sizeof(req));
            assert_true(req.size <= sizeof(buf) - sizeof(rep));
            rep.size = req.size < p->data_len ? req.size : p->data_len;
            rep.argsz = sizeof(rep) + req.size;
            p->data_len -= rep.size;
            memcpy(buf, &rep, sizeof(rep));
            memset(buf + sizeof(rep), 0x5a, rep.size);
            memset(buf + sizeof(rep) + rep.size, 0xee, req.size - rep.size);
            h.msg_size = (uint32_t)(sizeof(h) + sizeof(rep) + req.size);
        }
        send(fd, &h, sizeof(h), MSG_NOSIGNAL);
        send(fd, buf, h.msg_size - sizeof(h), MSG_NOSIGNAL);
    }
    close(fd);
    return NULL;
}

static void
test_client_takes_padded_reply(void **state)
{
    char dir[] = "/tmp/vfu-pad.XXXXXX";
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct padding_server p = { .data_len = 100 };
    pthread_t thread;
    uint8_t buf[4096];
    vfu_client_t *c;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/s", dir);
    p.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(p.listen_fd, (struct sockaddr *)&addr,
                          sizeof(addr)), 0);
    assert_int_equal(listen(p.listen_fd, 1), 0);
    assert_int_equal(pthread_create(&thread, NULL, padding_serve, &p), 0);
    c = vfu_client_connect(addr.sun_path);
    assert_non_null(c);
    assert_int_equal(vfu_client_negotiate(c, NULL), 0);
    /* 100 bytes of data in a reply padded to 4096: the call returns 100. */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(vfu_client_mig_read(c, buf, sizeof(buf)), 100);
    assert_int_equal(buf[0], 0x5a);
    assert_int_equal(buf[99], 0x5a);
    assert_int_equal(vfu_client_mig_read(c, buf, 16), 0);
    vfu_client_close(c);
    pthread_join(thread, NULL);
    close(p.listen_fd);
    unlink(addr.sun_path);
    rmdir(dir);
}

static void
test_features(void **state)
{
    struct fx *f = *state;
    uint8_t out[32];
    uint64_t flags, size;
    uint32_t argsz;
    ssize_t n;

    /* MIGRATION: GET only, STOP_COPY and PRE_COPY. */
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0, 16,
                             out, sizeof(out), &n), 0);
    assert_int_equal(n, 16);
    memcpy(&argsz, out, 4);
    memcpy(&flags, out + 8, 8);
    assert_int_equal(argsz, 16);
    assert_int_equal(flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY);
    /* The request may carry room for the data too. */
    memset(out + 16, 0, 8);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIGRATION, out + 16, 8, 16,
                             out, sizeof(out), &n), 0);
    assert_int_equal(n, 16);
    /* argsz without room for the reply; a stray payload size. */
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0, 8,
                             out, sizeof(out), NULL), EINVAL);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIGRATION, out, 4, 16,
                             out, sizeof(out), NULL), EINVAL);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIGRATION, out, 8, 16,
                             NULL, 0, NULL), EINVAL);
    /* PROBE: what each feature has. */
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_PROBE |
                             VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0, 8,
                             out, sizeof(out), &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_PROBE |
                             VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0, 8,
                             out, sizeof(out), NULL), EINVAL);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_PROBE |
                             VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, NULL, 0, 8,
                             out, sizeof(out), NULL), 0);
    /* GET and SET together, neither: refused. */
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0, 16,
                             out, sizeof(out), NULL), EINVAL);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, NULL, 0,
                             16, out, sizeof(out), NULL), EINVAL);
    /* MIG_DATA_SIZE: the device's estimate. */
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, NULL, 0, 16,
                             out, sizeof(out), &n), 0);
    assert_int_equal(n, 16);
    memcpy(&size, out + 8, 8);
    assert_int_equal(size, SAVED_SIZE);
    assert_int_equal(get_state(f), S_RUN);
}

static void
test_no_data_size(void **state)
{
    struct fx *f = fx_new(true, false);
    uint8_t out[32];
    (void)state;

    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_GET |
                             VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, NULL, 0, 16,
                             out, sizeof(out), NULL), ENOTTY);
    fx_free(f);
}

/* Every (from, to) pair and the arcs the device is told of, in order. */
static const struct {
    uint32_t from, to;
    int n;
    vfu_migr_state_t steps[3];
} paths[] = {
    { S_RUN, S_STOP, 1, { VFU_MIGR_STATE_STOP } },
    { S_RUN, S_SC, 2, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_STOP_AND_COPY } },
    { S_RUN, S_RES, 2, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_RESUME } },
    { S_RUN, S_PC, 1, { VFU_MIGR_STATE_PRE_COPY } },
    { S_STOP, S_RUN, 1, { VFU_MIGR_STATE_RUNNING } },
    { S_STOP, S_SC, 1, { VFU_MIGR_STATE_STOP_AND_COPY } },
    { S_STOP, S_RES, 1, { VFU_MIGR_STATE_RESUME } },
    { S_STOP, S_PC, 2, { VFU_MIGR_STATE_RUNNING, VFU_MIGR_STATE_PRE_COPY } },
    { S_SC, S_STOP, 1, { VFU_MIGR_STATE_STOP } },
    { S_SC, S_RUN, 2, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_RUNNING } },
    { S_SC, S_RES, 2, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_RESUME } },
    { S_SC, S_PC, -1, { 0 } },                      /* forbidden */
    { S_RES, S_STOP, 1, { VFU_MIGR_STATE_STOP } },
    { S_RES, S_RUN, 2, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_RUNNING } },
    { S_RES, S_SC, 2, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_STOP_AND_COPY } },
    { S_RES, S_PC, 3, { VFU_MIGR_STATE_STOP, VFU_MIGR_STATE_RUNNING,
                        VFU_MIGR_STATE_PRE_COPY } },
    { S_PC, S_RUN, 1, { VFU_MIGR_STATE_RUNNING } },
    { S_PC, S_STOP, 2, { VFU_MIGR_STATE_RUNNING, VFU_MIGR_STATE_STOP } },
    { S_PC, S_SC, 1, { VFU_MIGR_STATE_STOP_AND_COPY } },
    { S_PC, S_RES, 3, { VFU_MIGR_STATE_RUNNING, VFU_MIGR_STATE_STOP,
                        VFU_MIGR_STATE_RESUME } },
};

static void
test_every_arc_and_combination(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        to_running(f);
        assert_int_equal(get_state(f), S_RUN);
        if (paths[i].from != S_RUN) {
            assert_int_equal(set_state(f, paths[i].from), 0);
        }
        assert_int_equal(get_state(f), paths[i].from);
        f->nr_steps = 0;
        if (paths[i].n < 0) {
            assert_int_equal(set_state(f, paths[i].to), EINVAL);
            assert_int_equal(f->nr_steps, 0);
            assert_int_equal(get_state(f), paths[i].from);
            continue;
        }
        assert_int_equal(set_state(f, paths[i].to), 0);
        assert_int_equal(get_state(f), paths[i].to);
        assert_int_equal(f->nr_steps, paths[i].n);
        for (int s = 0; s < paths[i].n; s++) {
            assert_int_equal(f->steps[s], paths[i].steps[s]);
        }
        /* The same state again: nothing to do. */
        f->nr_steps = 0;
        assert_int_equal(set_state(f, paths[i].to), 0);
        assert_int_equal(f->nr_steps, 0);
    }
}

static void
test_bad_requests(void **state)
{
    struct fx *f = *state;
    uint32_t bad[] = { S_ERR, VFIO_DEVICE_STATE_RUNNING_P2P,
                       VFIO_DEVICE_STATE_PRE_COPY_P2P, 8, 1000, UINT32_MAX };
    struct vfio_user_device_feature_mig_state st = { .device_state = S_STOP };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set_state(f, bad[i]), EINVAL);
    }
    /* SET with argsz short of the data, a short or long payload. */
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &st,
                             sizeof(st), 12, NULL, 0, NULL), EINVAL);
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &st, 4, 16,
                             NULL, 0, NULL), EINVAL);
    uint8_t big[12] = { S_STOP };
    assert_int_equal(feature(f, VFIO_DEVICE_FEATURE_SET |
                             VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, big,
                             sizeof(big), 20, NULL, 0, NULL), EINVAL);
    assert_int_equal(f->nr_steps, 0);
    assert_int_equal(get_state(f), S_RUN);
    /* The server still serves. */
    assert_int_equal(set_state(f, S_STOP), 0);
    assert_int_equal(get_state(f), S_STOP);
}

static void
test_callback_failure(void **state)
{
    struct fx *f = *state;

    /* Second arc of RUNNING -> STOP -> STOP_COPY refused: left in STOP. */
    f->fail_state = VFU_MIGR_STATE_STOP_AND_COPY;
    f->fail_errno = EPERM;
    assert_int_equal(set_state(f, S_SC), EPERM);
    assert_int_equal(f->nr_steps, 1);
    assert_int_equal(get_state(f), S_STOP);
    /* First arc refused: nothing changes. errno 0 from the device: EIO. */
    f->fail_state = VFU_MIGR_STATE_RUNNING;
    f->fail_errno = 0;
    assert_int_equal(set_state(f, S_PC), EIO);
    assert_int_equal(get_state(f), S_STOP);
    /* A refused exit from RESUMING: ERROR, left only by reset. */
    f->fail_state = -1;
    assert_int_equal(set_state(f, S_RES), 0);
    f->fail_state = VFU_MIGR_STATE_STOP;
    f->fail_errno = EBADMSG;
    assert_int_equal(set_state(f, S_RUN), EBADMSG);
    assert_int_equal(get_state(f), S_ERR);
    f->fail_state = -1;
    assert_int_equal(set_state(f, S_RUN), EINVAL);
    assert_int_equal(set_state(f, S_STOP), EINVAL);
    assert_int_equal(mig_read(f, 16, 24, NULL), -EINVAL);
    f->nr_steps = 0;
    int resets = f->resets;
    assert_int_equal(reset(f), 0);
    assert_int_equal(f->resets, resets + 1);
    assert_int_equal(get_state(f), S_RUN);
    assert_int_equal(f->nr_steps, 1);                  /* told: RUNNING */
    assert_int_equal(f->steps[0], VFU_MIGR_STATE_RUNNING);
    /* A reset while RUNNING says nothing to the migration callback. */
    f->nr_steps = 0;
    assert_int_equal(reset(f), 0);
    assert_int_equal(f->nr_steps, 0);
    /*
     * Nor elsewhere: a reset keeps the migration state (a VMM resets its
     * devices while one is RESUMING, before loading its state).
     */
    assert_int_equal(set_state(f, S_STOP), 0);
    f->nr_steps = 0;
    assert_int_equal(reset(f), 0);
    assert_int_equal(get_state(f), S_STOP);
    assert_int_equal(set_state(f, S_RES), 0);
    f->nr_steps = 0;
    assert_int_equal(reset(f), 0);
    assert_int_equal(get_state(f), S_RES);
    assert_int_equal(f->nr_steps, 0);
    assert_int_equal(set_state(f, S_RUN), 0);
    /* Reset from ERROR where the device will not run: still ERROR. */
    assert_int_equal(set_state(f, S_RES), 0);
    f->fail_state = VFU_MIGR_STATE_STOP;
    assert_int_equal(set_state(f, S_STOP), EBADMSG);
    f->fail_state = VFU_MIGR_STATE_RUNNING;
    f->fail_errno = EIO;
    assert_int_equal(reset(f), EIO);
    assert_int_equal(get_state(f), S_ERR);
    f->fail_state = -1;
    assert_int_equal(reset(f), 0);
    assert_int_equal(get_state(f), S_RUN);
}

static void
test_quiesce_first(void **state)
{
    struct fx *f = *state;
    struct vfio_user_device_feature_mig_state st = { .device_state = S_STOP };
    uint8_t msg[16];
    struct vfio_user_device_feature h = {
        .argsz = 16,
        .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    };
    struct vfio_user_header hdr;
    struct pollfd p = { .fd = vfu_client_fd(f->c), .events = POLLIN };
    uint16_t id;

    memcpy(msg, &h, 8);
    memcpy(msg + 8, &st, 8);
    f->quiesce_busy = 1;
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_FEATURE, 0, msg,
                                     sizeof(msg), NULL, 0, &id), 0);
    assert_int_equal(poll(&p, 1, 100), 0);      /* waits for quiesce */
    assert_int_equal(f->nr_steps, 0);
    f->release = 1;
    assert_true(vfu_client_recv(f->c, &hdr, NULL, 0, NULL, NULL) >= 0);
    assert_int_equal(hdr.msg_id, id);
    assert_int_equal(!!(hdr.flags & VFIO_USER_F_ERROR), 0);
    assert_int_equal(f->nr_steps, 1);
    assert_int_equal(get_state(f), S_STOP);
}

static void
test_data_read(void **state)
{
    struct fx *f = *state;
    uint8_t *buf = calloc(1, SAVED_SIZE);
    size_t got = 0;
    ssize_t n;

    /* Not in a saving state. */
    assert_int_equal(mig_read(f, 4096, 4104, buf), -EINVAL);
    f->read_limit = PRECOPY_AVAIL;
    assert_int_equal(set_state(f, S_PC), 0);
    /* Short message, argsz short of the data, over the transfer limit. */
    assert_int_equal(vfu_client_request(f->c, VFIO_USER_MIG_DATA_READ, buf, 4,
                                        NULL, 0, NULL, 0, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(mig_read(f, 4096, 4096, buf), -EINVAL);
    assert_int_equal(mig_read(f, (1u << 20) + 1, UINT32_MAX, buf), -EINVAL);
    /* PRE_COPY: what is ready, then a short read. */
    while ((n = mig_read(f, 64 * 1024, 64 * 1024 + 8, buf + got)) == 65536) {
        got += (size_t)n;
    }
    assert_true(n >= 0);
    got += (size_t)n;
    assert_int_equal(got, PRECOPY_AVAIL);
    assert_int_equal(mig_read(f, 4096, 4104, buf + got), 0);
    assert_int_equal(mig_read(f, 0, 8, NULL), 0);
    /* STOP_COPY: the rest, in 1 MiB reads, ending short. */
    f->read_limit = SAVED_SIZE;
    assert_int_equal(set_state(f, S_SC), 0);
    while ((n = mig_read(f, 1u << 20, (1u << 20) + 8, buf + got)) ==
           (1 << 20)) {
        got += (size_t)n;
    }
    assert_true(n >= 0);
    got += (size_t)n;
    assert_int_equal(got, SAVED_SIZE);
    assert_memory_equal(buf, f->saved, SAVED_SIZE);
    /* The device's errno comes back. */
    f->read_errno = ENOMEM;
    assert_int_equal(mig_read(f, 16, 24, buf), -ENOMEM);
    f->read_errno = 0;
    /* Not while RESUMING or STOP. */
    assert_int_equal(set_state(f, S_STOP), 0);
    assert_int_equal(mig_read(f, 16, 24, buf), -EINVAL);
    assert_int_equal(set_state(f, S_RES), 0);
    assert_int_equal(mig_read(f, 16, 24, buf), -EINVAL);
    free(buf);
}

static void
test_data_write(void **state)
{
    struct fx *f = *state;
    uint8_t *big = calloc(1, (1u << 20) + 1);

    assert_int_equal(mig_write(f, f->saved, 100, 100), EINVAL);  /* RUNNING */
    assert_int_equal(set_state(f, S_SC), 0);
    assert_int_equal(mig_write(f, f->saved, 100, 100), EINVAL);
    assert_int_equal(set_state(f, S_RES), 0);
    /* Short message, size not the data's, oversize. */
    assert_int_equal(vfu_client_request(f->c, VFIO_USER_MIG_DATA_WRITE, big, 6,
                                        NULL, 0, NULL, 0, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(mig_write(f, f->saved, 100, 99), EINVAL);
    assert_int_equal(mig_write(f, f->saved, 100, 101), EINVAL);
    assert_int_equal(mig_write(f, big, (1u << 20) + 1, (1u << 20) + 1), EINVAL);
    assert_int_equal(f->loaded_len, 0);
    /* The device takes 1000 bytes a call: the library offers the rest. */
    f->write_chunk = 1000;
    size_t off = 0;
    while (off < SAVED_SIZE) {
        size_t n = SAVED_SIZE - off < 300000 ? SAVED_SIZE - off : 300000;
        assert_int_equal(mig_write(f, f->saved + off, n, (uint32_t)n), 0);
        off += n;
    }
    assert_int_equal(mig_write(f, f->saved, 0, 0), 0);
    assert_int_equal(f->loaded_len, SAVED_SIZE);
    assert_memory_equal(f->loaded, f->saved, SAVED_SIZE);
    /* Full: the device's errno. */
    assert_int_equal(mig_write(f, f->saved, 10, 10), ENOSPC);
    assert_int_equal(set_state(f, S_RUN), 0);
    free(big);
}

static void
test_disconnect_returns_to_running(void **state)
{
    struct fx *f = *state;

    assert_int_equal(set_state(f, S_SC), 0);
    f->nr_steps = 0;
    vfu_client_close(f->c);
    f->c = NULL;
    pthread_join(f->thread, NULL);
    f->joined = true;
    assert_int_equal(f->nr_steps, 1);
    assert_int_equal(f->steps[0], VFU_MIGR_STATE_RUNNING);
}

/* vfu_client_migrate(): pre-copy rounds, then stop-and-copy, resume. */
struct rounds {
    struct fx *src;
    unsigned calls;
    bool final_seen;
    uint64_t bytes[8];
};

static int
on_round(void *arg, unsigned round, uint64_t bytes, bool final)
{
    struct rounds *r = arg;

    if (r->calls < 8) {
        r->bytes[r->calls] = bytes;
    }
    r->calls++;
    r->final_seen = final;
    if (round == 1 && !final) {
        r->src->read_limit = 2u << 20;      /* more became ready meanwhile */
    }
    return 0;
}

static void
test_client_migrate(void **state)
{
    struct fx *src = *state;
    struct fx *dst = fx_new(true, false);
    struct rounds r = { .src = src };
    struct vfu_client_migrate_opts opts = {
        .max_precopy_rounds = 5, .precopy_stop_bytes = 0,
        .round = on_round, .arg = &r,
    };
    struct vfu_client_migrate_stats st;
    uint64_t flags, size;
    uint32_t s;

    assert_int_equal(vfu_client_mig_flags(src->c, &flags), 0);
    assert_int_equal(flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY);
    assert_int_equal(vfu_client_mig_data_size(src->c, &size), 0);
    assert_int_equal(size, SAVED_SIZE);
    assert_int_equal(vfu_client_mig_data_size(dst->c, &size), -1);
    assert_int_equal(errno, ENOTTY);
    assert_int_equal(vfu_client_mig_state_set(src->c, S_SC), 0);
    assert_int_equal(vfu_client_mig_state_get(src->c, &s), 0);
    assert_int_equal(s, S_SC);
    assert_int_equal(vfu_client_mig_state_set(src->c, S_PC), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_mig_write(src->c, "x", 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_mig_state_set(src->c, S_RUN), 0);
    src->nr_steps = 0;

    src->read_limit = PRECOPY_AVAIL;
    src->full_on_stopcopy = true;
    dst->write_chunk = 4096;
    assert_int_equal(vfu_client_migrate(src->c, dst->c, &opts, &st), 0);
    assert_int_equal(st.precopy_rounds, 3);
    assert_int_equal(st.precopy_bytes, 2u << 20);
    assert_int_equal(st.stopcopy_bytes, SAVED_SIZE - (2u << 20));
    assert_int_equal(r.calls, 4);
    assert_true(r.final_seen);
    assert_int_equal(r.bytes[0], PRECOPY_AVAIL);
    assert_int_equal(r.bytes[2], 0);
    assert_int_equal(dst->loaded_len, SAVED_SIZE);
    assert_memory_equal(dst->loaded, src->saved, SAVED_SIZE);
    assert_int_equal(vfu_client_mig_state_get(src->c, &s), 0);
    assert_int_equal(s, S_STOP);
    assert_int_equal(vfu_client_mig_state_get(dst->c, &s), 0);
    assert_int_equal(s, S_RUN);
    assert_int_equal(src->nr_steps, 3);
    assert_int_equal(src->steps[0], VFU_MIGR_STATE_PRE_COPY);
    assert_int_equal(src->steps[1], VFU_MIGR_STATE_STOP_AND_COPY);
    assert_int_equal(src->steps[2], VFU_MIGR_STATE_STOP);
    assert_int_equal(dst->nr_steps, 4);
    assert_int_equal(dst->steps[1], VFU_MIGR_STATE_RESUME);
    assert_int_equal(dst->steps[3], VFU_MIGR_STATE_RUNNING);
    /* The same server on both ends. */
    assert_int_equal(vfu_client_migrate(src->c, src->c, NULL, NULL), -1);
    assert_int_equal(errno, EINVAL);
    fx_free(dst);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_version_capability, setup,
                                        teardown),
        cmocka_unit_test(test_not_migratable),
        cmocka_unit_test(test_setup_refusals),
        cmocka_unit_test(test_callbacks_after_realize),
        cmocka_unit_test(test_client_takes_padded_reply),
        cmocka_unit_test(test_no_data_size),
        cmocka_unit_test_setup_teardown(test_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_arc_and_combination, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quiesce_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_returns_to_running,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_migrate, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
