/*
 * Live migration, vfio migration v2 over vfio-user: the device's state in
 * Linux's migration state machine, the path a requested state is reached
 * by (one transition callback per arc), the migration features of
 * DEVICE_FEATURE (MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE) and the data
 * stream commands MIG_DATA_READ / MIG_DATA_WRITE. See docs/migration.md.
 */
#include <stdlib.h>
#include <string.h>

#include "private.h"

#define FEATURE_HDR     sizeof(struct vfio_user_device_feature)
#define MIG_DATA_HDR    sizeof(struct vfio_user_mig_data)
#define NR_STATES       8       /* enum vfio_device_mig_state: 0 to 7 */
#define MAX_PATH        4       /* longest combination: RESUMING->PRE_COPY */

struct vfu_migration {
    vfu_migration_callbacks_t cb;
    vfu_migr_data_size_cb_t *data_size;
    uint32_t state;             /* enum vfio_device_mig_state */
    uint64_t flags;             /* VFIO_MIGRATION_* we offer */
};

#define BIT(s)          (1u << (s))

/*
 * The arcs of the state machine without the P2P states, which vfio-user
 * does not use: where each state may go in one step. PRE_COPY -> STOP_COPY
 * is the PRE_COPY -> PRE_COPY_P2P -> STOP_COPY pair with the P2P state
 * absent, as Linux treats unsupported states. STOP_COPY -> PRE_COPY is not
 * an arc, and is not allowed by combination either (see is_forbidden()).
 */
static const uint8_t arcs[NR_STATES] = {
    [VFIO_DEVICE_STATE_RUNNING]   = BIT(VFIO_DEVICE_STATE_STOP) |
                                    BIT(VFIO_DEVICE_STATE_PRE_COPY),
    [VFIO_DEVICE_STATE_STOP]      = BIT(VFIO_DEVICE_STATE_RUNNING) |
                                    BIT(VFIO_DEVICE_STATE_STOP_COPY) |
                                    BIT(VFIO_DEVICE_STATE_RESUMING),
    [VFIO_DEVICE_STATE_PRE_COPY]  = BIT(VFIO_DEVICE_STATE_RUNNING) |
                                    BIT(VFIO_DEVICE_STATE_STOP_COPY),
    [VFIO_DEVICE_STATE_STOP_COPY] = BIT(VFIO_DEVICE_STATE_STOP),
    [VFIO_DEVICE_STATE_RESUMING]  = BIT(VFIO_DEVICE_STATE_STOP),
};

/* PRE_COPY and STOP_COPY share a data session: never inside a path. */
static bool
is_saving(uint32_t s)
{
    return s == VFIO_DEVICE_STATE_PRE_COPY || s == VFIO_DEVICE_STATE_STOP_COPY;
}

/* States a client may ask for: those with arcs, if this device offers them. */
static bool
is_offered(const struct vfu_migration *m, uint32_t s)
{
    if (s >= NR_STATES || arcs[s] == 0) {
        return false;
    }
    return s != VFIO_DEVICE_STATE_PRE_COPY ||
           (m->flags & VFIO_MIGRATION_PRE_COPY);
}

static bool
is_forbidden(uint32_t from, uint32_t to)
{
    return from == VFIO_DEVICE_STATE_STOP_COPY &&
           to == VFIO_DEVICE_STATE_PRE_COPY;
}

static const char *
state_name(uint32_t s)
{
    static const char *const names[NR_STATES] = {
        "ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P",
        "PRE_COPY", "PRE_COPY_P2P",
    };
    return s < NR_STATES ? names[s] : "?";
}

static vfu_migr_state_t
to_vfu(uint32_t s)
{
    switch (s) {
    case VFIO_DEVICE_STATE_STOP:        return VFU_MIGR_STATE_STOP;
    case VFIO_DEVICE_STATE_STOP_COPY:   return VFU_MIGR_STATE_STOP_AND_COPY;
    case VFIO_DEVICE_STATE_PRE_COPY:    return VFU_MIGR_STATE_PRE_COPY;
    case VFIO_DEVICE_STATE_RESUMING:    return VFU_MIGR_STATE_RESUME;
    default:                            return VFU_MIGR_STATE_RUNNING;
    }
}

/*
 * The shortest path of arcs from @from to @to (both offered, different)
 * whose interior avoids the saving group: its states after @from in
 * @path, how many returned; 0 when there is none. Breadth first over at
 * most five states; arcs are tried in state order, so the path is fixed.
 */
static int
find_path(const struct vfu_migration *m, uint32_t from, uint32_t to,
          uint32_t path[MAX_PATH])
{
    uint32_t queue[NR_STATES], prev[NR_STATES];
    bool seen[NR_STATES] = { false };
    size_t head = 0, tail = 0;
    int n = 0;

    queue[tail++] = from;
    seen[from] = true;
    while (head < tail) {
        uint32_t s = queue[head++];

        if (s == to) {
            break;
        }
        if (s != from && is_saving(s)) {
            continue;               /* may end a path, not go through */
        }
        for (uint32_t t = 0; t < NR_STATES; t++) {
            if ((arcs[s] & BIT(t)) && !seen[t] && is_offered(m, t)) {
                seen[t] = true;
                prev[t] = s;
                queue[tail++] = t;
            }
        }
    }
    if (!seen[to]) {
        return 0;
    }
    for (uint32_t s = to; s != from; s = prev[s]) {
        n++;
    }
    for (uint32_t s = to, i = n; s != from; s = prev[s]) {
        path[--i] = s;
    }
    return n;
}

VFU_EXPORT int
vfu_setup_device_migration_callbacks(vfu_ctx_t *ctx,
                                     const vfu_migration_callbacks_t *callbacks)
{
    struct vfu_migration *m;

    if (ctx == NULL || callbacks == NULL ||
        callbacks->version != VFU_MIGR_CALLBACKS_VERS ||
        callbacks->transition == NULL || callbacks->read_data == NULL ||
        callbacks->write_data == NULL) {
        if (ctx != NULL && callbacks != NULL) {
            vfu_log_err(ctx, "migration callbacks refused (version %d)",
                        callbacks->version);
        }
        errno = EINVAL;
        return -1;
    }
    /* Also after realize (SPDK sets them then); new callbacks keep the state. */
    m = ctx->migr;
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m == NULL) {
            errno = ENOMEM;
            return -1;
        }
        m->state = VFIO_DEVICE_STATE_RUNNING;
    }
    m->cb = *callbacks;
    /* read_data is required, so every migratable device can pre-copy. */
    m->flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
    ctx->migr = m;
    return 0;
}

VFU_EXPORT int
vfu_setup_device_migration_data_size(vfu_ctx_t *ctx,
                                     vfu_migr_data_size_cb_t *data_size)
{
    if (ctx == NULL || ctx->migr == NULL) {
        errno = EINVAL;
        return -1;
    }
    ctx->migr->data_size = data_size;
    return 0;
}

void
migration_free(vfu_ctx_t *ctx)
{
    free(ctx->migr);
    ctx->migr = NULL;
}

/* Calls the transition callback for one arc into @to; 0 or -errno. */
static int
call_transition(vfu_ctx_t *ctx, uint32_t to)
{
    struct vfu_migration *m = ctx->migr;
    int err;

    vfu_log_debug(ctx, "migration: %s -> %s", state_name(m->state),
                  state_name(to));
    errno = 0;
    if (m->cb.transition(ctx, to_vfu(to)) == 0) {
        return 0;
    }
    err = errno > 0 ? errno : EIO;
    vfu_log_err(ctx, "migration: device refused %s -> %s: %s",
                state_name(m->state), state_name(to), strerror(err));
    return -err;
}

/*
 * SET of MIG_DEVICE_STATE: checks the request, quiesces the device, then
 * walks the path. A refused arc leaves the device where it was before that
 * arc, but a refused exit from RESUMING (the state delivered is no good)
 * leaves it in ERROR.
 */
static int
set_state(vfu_ctx_t *ctx, uint32_t to)
{
    struct vfu_migration *m = ctx->migr;
    uint32_t path[MAX_PATH];
    int n, ret;

    if (m->state == VFIO_DEVICE_STATE_ERROR) {
        vfu_log_err(ctx, "migration: in ERROR until reset; %s refused",
                    state_name(to));
        return -EINVAL;
    }
    if (!is_offered(m, to)) {
        vfu_log_err(ctx, "migration: state %u (%s) not supported", to,
                    state_name(to));
        return -EINVAL;
    }
    if (to == m->state) {
        return 0;
    }
    n = is_forbidden(m->state, to) ? 0 : find_path(m, m->state, to, path);
    if (n == 0) {
        vfu_log_err(ctx, "migration: %s -> %s not allowed",
                    state_name(m->state), state_name(to));
        return -EINVAL;
    }
    ret = device_quiesce(ctx);
    if (ret != 0) {
        return ret;                 /* HANDLER_PENDING: nothing changed */
    }
    for (int i = 0; i < n; i++) {
        ret = call_transition(ctx, path[i]);
        if (ret < 0) {
            if (m->state == VFIO_DEVICE_STATE_RESUMING) {
                m->state = VFIO_DEVICE_STATE_ERROR;
            }
            return ret;
        }
        m->state = path[i];
    }
    return 0;
}

int
migration_leave_error(vfu_ctx_t *ctx)
{
    if (ctx->migr == NULL || ctx->migr->state != VFIO_DEVICE_STATE_ERROR) {
        return 0;
    }
    return migration_reset(ctx);
}

int
migration_reset(vfu_ctx_t *ctx)
{
    struct vfu_migration *m = ctx->migr;
    int ret;

    if (m == NULL || m->state == VFIO_DEVICE_STATE_RUNNING) {
        return 0;
    }
    ret = call_transition(ctx, VFIO_DEVICE_STATE_RUNNING);
    m->state = ret < 0 ? VFIO_DEVICE_STATE_ERROR : VFIO_DEVICE_STATE_RUNNING;
    return ret;
}

uint32_t
migration_feature_ops(vfu_ctx_t *ctx, uint32_t feature)
{
    if (ctx->migr == NULL) {
        return 0;
    }
    switch (feature) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        return VFIO_DEVICE_FEATURE_GET;
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET;
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        return ctx->migr->data_size != NULL ? VFIO_DEVICE_FEATURE_GET : 0;
    default:
        return 0;
    }
}

/*
 * A GET's reply: the request's head with argsz the reply's size, then
 * @len bytes of @data. The request carries the head alone or with room
 * for the data; argsz must cover the reply.
 */
static int
feature_get_reply(vfu_ctx_t *ctx, struct tran_msg *msg,
                  struct vfio_user_device_feature *req, const void *data,
                  size_t len, struct vfu_reply *reply)
{
    if ((msg->len != FEATURE_HDR && msg->len != FEATURE_HDR + len) ||
        req->argsz < FEATURE_HDR + len) {
        vfu_log_err(ctx, "DEVICE_FEATURE %u GET: payload of %zu bytes, "
                    "argsz %u", req->flags & VFIO_DEVICE_FEATURE_MASK,
                    msg->len, req->argsz);
        return -EINVAL;
    }
    req->argsz = (uint32_t)(FEATURE_HDR + len);
    memcpy(ctx->reply_buf, req, FEATURE_HDR);
    memcpy(ctx->reply_buf + FEATURE_HDR, data, len);
    reply_add(reply, ctx->reply_buf, FEATURE_HDR + len);
    return 0;
}

int
migration_feature(vfu_ctx_t *ctx, struct tran_msg *msg,
                  struct vfio_user_device_feature *req,
                  struct vfu_reply *reply)
{
    struct vfu_migration *m = ctx->migr;
    struct vfio_user_device_feature_migration mig;
    struct vfio_user_device_feature_mig_state st;
    struct vfio_device_feature_mig_data_size ds;
    int ret;

    switch (req->flags & VFIO_DEVICE_FEATURE_MASK) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        mig.flags = m->flags;
        return feature_get_reply(ctx, msg, req, &mig, sizeof(mig), reply);

    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        if (req->flags & VFIO_DEVICE_FEATURE_GET) {
            st.device_state = m->state;
            st.data_fd = UINT32_MAX;        /* -1: vfio-user has no fd */
            return feature_get_reply(ctx, msg, req, &st, sizeof(st), reply);
        }
        if (msg->len != FEATURE_HDR + sizeof(st) ||
            req->argsz < FEATURE_HDR + sizeof(st)) {
            vfu_log_err(ctx, "MIG_DEVICE_STATE SET: payload of %zu bytes, "
                        "argsz %u", msg->len, req->argsz);
            return -EINVAL;
        }
        memcpy(&st, msg->payload + FEATURE_HDR, sizeof(st));
        ret = set_state(ctx, st.device_state);
        if (ret == 0) {
            reply_add(reply, msg->payload, msg->len);
        }
        return ret;

    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        errno = 0;
        if (m->data_size(ctx, &ds.stop_copy_length) < 0) {
            ret = errno > 0 ? errno : EIO;
            vfu_log_err(ctx, "MIG_DATA_SIZE: device failed: %s",
                        strerror(ret));
            return -ret;
        }
        return feature_get_reply(ctx, msg, req, &ds, sizeof(ds), reply);

    default:
        return -ENOTTY;
    }
}

/* The most migration data one message may carry either way. */
static uint64_t
data_limit(vfu_ctx_t *ctx)
{
    uint64_t limit = ctx->client_caps.max_data_xfer_size;

    if (limit > SERVER_MAX_DATA_XFER) {
        limit = SERVER_MAX_DATA_XFER;
    }
    return limit;
}

/*
 * MIG_DATA_READ: {argsz, size} in, {argsz, size, data} back; a reply with
 * less than size bytes tells the client the stream ends (for now, in
 * PRE_COPY).
 */
int
handle_mig_data_read(vfu_ctx_t *ctx, struct tran_msg *msg,
                     struct vfu_reply *reply)
{
    struct vfu_migration *m = ctx->migr;
    struct vfio_user_mig_data req;
    ssize_t n = 0;

    if (m == NULL) {
        vfu_log_err(ctx, "MIG_DATA_READ: device is not migratable");
        return -ENOSYS;
    }
    if (msg->len != MIG_DATA_HDR) {
        vfu_log_err(ctx, "MIG_DATA_READ: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&req, msg->payload, sizeof(req));
    if (m->state != VFIO_DEVICE_STATE_PRE_COPY &&
        m->state != VFIO_DEVICE_STATE_STOP_COPY) {
        vfu_log_err(ctx, "MIG_DATA_READ in state %s", state_name(m->state));
        return -EINVAL;
    }
    if (req.size > data_limit(ctx)) {
        vfu_log_err(ctx, "MIG_DATA_READ: %u bytes exceed the transfer limit",
                    req.size);
        return -EINVAL;
    }
    if (req.argsz < MIG_DATA_HDR + (uint64_t)req.size) {
        vfu_log_err(ctx, "MIG_DATA_READ: argsz %u for %u bytes", req.argsz,
                    req.size);
        return -EINVAL;
    }
    if (req.size > 0) {
        errno = 0;
        n = m->cb.read_data(ctx, ctx->reply_buf, req.size);
        if (n < 0) {
            int err = errno > 0 ? errno : EIO;
            vfu_log_err(ctx, "MIG_DATA_READ: device failed: %s",
                        strerror(err));
            return -err;
        }
        if ((uint64_t)n > req.size) {
            vfu_log_err(ctx, "MIG_DATA_READ: device returned %zd of %u bytes",
                        n, req.size);
            return -EIO;
        }
    }
    req.argsz = (uint32_t)(MIG_DATA_HDR + n);
    req.size = (uint32_t)n;
    memcpy(msg->payload, &req, sizeof(req));
    reply_add(reply, msg->payload, MIG_DATA_HDR);
    if (n > 0) {
        reply_add(reply, ctx->reply_buf, (size_t)n);
    }
    return 0;
}

/* MIG_DATA_WRITE: {argsz, size, data} in, nothing back. */
int
handle_mig_data_write(vfu_ctx_t *ctx, struct tran_msg *msg,
                      struct vfu_reply *reply)
{
    struct vfu_migration *m = ctx->migr;
    struct vfio_user_mig_data req;
    uint64_t done = 0;

    (void)reply;
    if (m == NULL) {
        vfu_log_err(ctx, "MIG_DATA_WRITE: device is not migratable");
        return -ENOSYS;
    }
    if (msg->len < MIG_DATA_HDR) {
        vfu_log_err(ctx, "MIG_DATA_WRITE: payload of %zu bytes", msg->len);
        return -EINVAL;
    }
    memcpy(&req, msg->payload, sizeof(req));
    if (m->state != VFIO_DEVICE_STATE_RESUMING) {
        vfu_log_err(ctx, "MIG_DATA_WRITE in state %s", state_name(m->state));
        return -EINVAL;
    }
    if (req.size > data_limit(ctx)) {
        vfu_log_err(ctx, "MIG_DATA_WRITE: %u bytes exceed the transfer limit",
                    req.size);
        return -EINVAL;
    }
    if (msg->len != MIG_DATA_HDR + (size_t)req.size ||
        req.argsz < MIG_DATA_HDR) {
        vfu_log_err(ctx, "MIG_DATA_WRITE: %u bytes in a %zu-byte payload, "
                    "argsz %u", req.size, msg->len, req.argsz);
        return -EINVAL;
    }
    while (done < req.size) {
        ssize_t n;

        errno = 0;
        n = m->cb.write_data(ctx, msg->payload + MIG_DATA_HDR + done,
                             req.size - done);
        if (n <= 0 || (uint64_t)n > req.size - done) {
            int err = n < 0 && errno > 0 ? errno : EIO;
            vfu_log_err(ctx, "MIG_DATA_WRITE: device took %zd of %" PRIu64
                        " bytes: %s", n, req.size - done, strerror(err));
            return -err;
        }
        done += (uint64_t)n;
    }
    return 0;
}
