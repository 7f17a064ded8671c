/*
 * ioeventfds: owns the eventfds the device registers for writes to parts of
 * its regions (vfu_create_ioeventfd), the library's duplicates of them and
 * of their shadow memory files, and VFIO_USER_DEVICE_GET_REGION_IO_FDS,
 * which hands them to the client. They belong to the device, not to a
 * client: they stay across disconnections and resets and are closed by
 * vfu_destroy_ctx(). docs/ioeventfd.md has the model and the rules.
 */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdkind.h"
#include "private.h"

/* Most ioeventfds a device may create: bounds the table and a reply. */
#define MAX_IOEVENTFDS      1024

#define ENTRY_SIZE          sizeof(struct vfio_user_sub_region_ioeventfd)

_Static_assert(KVM_IOEVENTFD_FLAG_DATAMATCH == 1,
               "the spec's datamatch flag is KVM's bit 0");
_Static_assert(sizeof(struct vfio_user_region_io_fds_reply) == 16,
               "the reply's fixed part");

struct ioeventfd {
    uint32_t region;
    uint32_t size;
    uint64_t offset;
    uint32_t flags;             /* 0 or KVM_IOEVENTFD_FLAG_DATAMATCH */
    uint64_t datamatch;         /* 0 without the flag */
    int fd;                     /* our duplicate of the eventfd */
    int shadow_fd;              /* our duplicate of the shadow file, or -1 */
    uint64_t shadow_offset;
    /*
     * The first entry whose eventfd (shadow file) is the same open file.
     * Entries of one group share its duplicate, which it owns, and one fd
     * in a reply: 512 doorbells on one eventfd cost one descriptor.
     */
    uint32_t fd_group;
    uint32_t shadow_group;
};

struct ioeventfd_table {
    struct ioeventfd *v;
    size_t nr;
    size_t cap;
};

/* ------------------------------------------------------------------ */
/* vfu_create_ioeventfd()                                              */
/* ------------------------------------------------------------------ */

/* Whether [off, off + size) lies in an area the client may mmap. */
static bool
in_mmap_area(const struct vfu_region *r, uint64_t off, uint32_t size)
{
    if (r->fd < 0) {
        return false;
    }
    if (r->nr_mmap_areas == 0) {
        return true;            /* all of it */
    }
    for (uint32_t i = 0; i < r->nr_mmap_areas; i++) {
        uint64_t start = (uintptr_t)r->mmap_areas[i].iov_base;
        if (off < start + r->mmap_areas[i].iov_len && start < off + size) {
            return true;
        }
    }
    return false;
}

/* Whether ioeventfd @e would catch the same writes (KVM's collision rule). */
static bool
collides(const struct ioeventfd *e, uint32_t region, uint64_t off,
         uint32_t size, uint32_t flags, uint64_t datamatch)
{
    return e->region == region && e->offset == off && e->size == size &&
           (!(e->flags & KVM_IOEVENTFD_FLAG_DATAMATCH) ||
            !(flags & KVM_IOEVENTFD_FLAG_DATAMATCH) ||
            e->datamatch == datamatch);
}

/* The rules of vfu_create_ioeventfd(); 0 or -errno. */
static int
check_args(vfu_ctx_t *ctx, uint32_t idx, int fd, uint64_t off, uint32_t size,
           uint32_t flags, uint64_t datamatch, int shadow_fd,
           uint64_t shadow_off)
{
    const struct ioeventfd_table *t = ctx->ioeventfds;
    const struct vfu_region *r;
    int kind;

    if (idx >= VFU_PCI_DEV_NUM_REGIONS || idx == VFU_PCI_DEV_CFG_REGION_IDX) {
        return -EINVAL;     /* config space is emulated here, never bypassed */
    }
    r = &ctx->regions[idx];
    if (r->size == 0 || !(r->flags & VFU_REGION_FLAG_WRITE)) {
        return -EINVAL;
    }
    if ((size != 1 && size != 2 && size != 4 && size != 8) ||
        off > r->size || size > r->size - off) {
        return -EINVAL;
    }
    if (flags & ~(uint32_t)KVM_IOEVENTFD_FLAG_DATAMATCH) {
        return -EINVAL;
    }
    if ((flags & KVM_IOEVENTFD_FLAG_DATAMATCH) && size < 8 &&
        (datamatch >> (8 * size)) != 0) {
        return -EINVAL;     /* no write of @size bytes could match */
    }
    kind = fd_is_eventfd(fd);
    if (kind <= 0) {
        return kind < 0 ? -EBADF : -EINVAL;
    }
    if (shadow_fd >= 0) {
        struct stat st;

        if (fstat(shadow_fd, &st) < 0) {
            return -EBADF;
        }
        /* Memory the client maps and stores the value into, aligned. */
        if (!S_ISREG(st.st_mode) || shadow_off % size != 0 ||
            shadow_off > (uint64_t)st.st_size ||
            size > (uint64_t)st.st_size - shadow_off) {
            return -EINVAL;
        }
    }
    for (size_t i = 0; t != NULL && i < t->nr; i++) {
        if (collides(&t->v[i], idx, off, size, flags, datamatch)) {
            return -EEXIST;
        }
    }
    if (t != NULL && t->nr >= MAX_IOEVENTFDS) {
        return -ENOSPC;
    }
    return 0;
}

/* Room for one more entry; 0 or -ENOMEM. */
static int
table_grow(vfu_ctx_t *ctx)
{
    struct ioeventfd_table *t = ctx->ioeventfds;

    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
            return -ENOMEM;
        }
        ctx->ioeventfds = t;
    }
    if (t->nr == t->cap) {
        size_t cap = t->cap == 0 ? 8 : t->cap * 2;
        struct ioeventfd *v = realloc(t->v, cap * sizeof(*v));
        if (v == NULL) {
            return -ENOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    return 0;
}

/*
 * The group of the caller's @fd among the entries' eventfds (@shadow:
 * shadow files): the first entry with the same open file, or t->nr.
 */
static uint32_t
group_of(const struct ioeventfd_table *t, int fd, bool shadow)
{
    for (size_t i = 0; i < t->nr; i++) {
        int other = shadow ? t->v[i].shadow_fd : t->v[i].fd;
        if (other >= 0 && fd_same_file(fd, other)) {
            return shadow ? t->v[i].shadow_group : t->v[i].fd_group;
        }
    }
    return (uint32_t)t->nr;     /* a group of its own: the new entry */
}

VFU_EXPORT int
vfu_create_ioeventfd(vfu_ctx_t *ctx, uint32_t region_idx, int fd,
                     size_t gpa_offset, uint32_t size, uint32_t flags,
                     uint64_t datamatch, int shadow_fd, size_t shadow_offset)
{
    struct ioeventfd e = { .shadow_fd = -1 };
    struct ioeventfd_table *t;
    int ret;

    if (ctx == NULL) {
        errno = EINVAL;
        return -1;
    }
    ret = check_args(ctx, region_idx, fd, gpa_offset, size, flags, datamatch,
                     shadow_fd, shadow_offset);
    if (ret == 0) {
        ret = table_grow(ctx);
    }
    if (ret < 0) {
        vfu_log_err(ctx, "ioeventfd in region %u at %#zx+%u: %s", region_idx,
                    gpa_offset, size, strerror(-ret));
        errno = -ret;
        return -1;
    }
    t = ctx->ioeventfds;

    /* Our own duplicates (one per file): the device keeps its fds. */
    e.fd_group = group_of(t, fd, false);
    e.fd = e.fd_group < t->nr ? t->v[e.fd_group].fd :
           fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (e.fd < 0) {
        return -1;
    }
    if (shadow_fd >= 0) {
        e.shadow_group = group_of(t, shadow_fd, true);
        e.shadow_fd = e.shadow_group < t->nr ? t->v[e.shadow_group].shadow_fd :
                      fcntl(shadow_fd, F_DUPFD_CLOEXEC, 3);
        if (e.shadow_fd < 0) {
            ret = errno;
            if (e.fd_group == t->nr) {
                close(e.fd);
            }
            errno = ret;
            return -1;
        }
        e.shadow_offset = shadow_offset;
    }
    e.region = region_idx;
    e.offset = gpa_offset;
    e.size = size;
    e.flags = flags;
    e.datamatch = (flags & KVM_IOEVENTFD_FLAG_DATAMATCH) ? datamatch : 0;
    t->v[t->nr++] = e;

    if (in_mmap_area(&ctx->regions[region_idx], gpa_offset, size)) {
        vfu_log_warn(ctx, "ioeventfd in region %u at %#zx: a client that "
                     "maps this area writes memory, not the eventfd",
                     region_idx, gpa_offset);
    }
    vfu_log_debug(ctx, "ioeventfd %zu: region %u, %#zx+%u%s", t->nr - 1,
                  region_idx, gpa_offset, size,
                  shadow_fd >= 0 ? ", shadow" : "");
    return 0;
}

void
ioeventfd_free(vfu_ctx_t *ctx)
{
    struct ioeventfd_table *t = ctx->ioeventfds;

    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nr; i++) {
        if (t->v[i].fd_group == i) {
            close(t->v[i].fd);
        }
        if (t->v[i].shadow_fd >= 0 && t->v[i].shadow_group == i) {
            close(t->v[i].shadow_fd);
        }
    }
    free(t->v);
    free(t);
    ctx->ioeventfds = NULL;
}

/* ------------------------------------------------------------------ */
/* VFIO_USER_DEVICE_GET_REGION_IO_FDS                                  */
/* ------------------------------------------------------------------ */

/* The fds of one reply: each open file once, at most @max of them. */
struct fd_slots {
    int fds[TRAN_MAX_FDS];
    uint32_t keys[TRAN_MAX_FDS];    /* group * 2, + 1 for shadow files */
    size_t nr;
    size_t max;
};

/* The index of @key's fd in the reply, or -1 when not there yet. */
static int
slot_find(const struct fd_slots *s, uint32_t key)
{
    for (size_t i = 0; i < s->nr; i++) {
        if (s->keys[i] == key) {
            return (int)i;
        }
    }
    return -1;
}

static uint32_t
slot_add(struct fd_slots *s, uint32_t key, int fd)
{
    int i = slot_find(s, key);

    if (i >= 0) {
        return (uint32_t)i;
    }
    s->keys[s->nr] = key;
    s->fds[s->nr] = fd;
    return (uint32_t)s->nr++;
}

/*
 * The ioeventfds of region @idx that one reply can carry: those that still
 * lie inside the region (it may have been set up again since), in the order
 * created, as long as their fds fit in @s. Fills @out (unless NULL) and
 * @s; returns how many. An entry that would need more fds than the client
 * takes ends the list, so every client gets the same first ones.
 */
static uint32_t
offer(vfu_ctx_t *ctx, uint32_t idx, struct fd_slots *s,
      struct vfio_user_sub_region_ioeventfd *out)
{
    const struct ioeventfd_table *t = ctx->ioeventfds;
    const struct vfu_region *r = &ctx->regions[idx];
    uint32_t n = 0;

    for (size_t i = 0; t != NULL && i < t->nr; i++) {
        const struct ioeventfd *e = &t->v[i];
        uint32_t fd_key = e->fd_group * 2, shadow_key = e->shadow_group * 2 + 1;
        size_t need;

        if (e->region != idx) {
            continue;
        }
        if (e->offset > r->size || e->size > r->size - e->offset) {
            if (out == NULL) {
                vfu_log_warn(ctx, "ioeventfd %zu no longer inside region %u",
                             i, idx);
            }
            continue;
        }
        need = (slot_find(s, fd_key) < 0) +
               (e->shadow_fd >= 0 && slot_find(s, shadow_key) < 0);
        if (s->nr + need > s->max) {
            if (out == NULL) {
                vfu_log_warn(ctx, "region %u: ioeventfds from %zu on need "
                             "more than the client's %zu fds per message; "
                             "not offered",
                             idx, i, s->max);
            }
            break;
        }
        struct vfio_user_sub_region_ioeventfd sub = {
            .gpa_offset = e->offset,
            .size = e->size,
            .fd_index = slot_add(s, fd_key, e->fd),
            .type = VFIO_USER_IO_FD_TYPE_IOEVENTFD,
            .flags = e->flags,
            .datamatch = e->datamatch,
        };
        if (e->shadow_fd >= 0) {
            sub.type = VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW;
            sub.shadow_mem_fd_index = slot_add(s, shadow_key, e->shadow_fd);
            sub.shadow_offset = e->shadow_offset;
        }
        if (out != NULL) {
            memcpy(&out[n], &sub, sizeof(sub));
        }
        n++;
    }
    return n;
}

int
handle_region_io_fds(vfu_ctx_t *ctx, struct tran_msg *msg,
                     struct vfu_reply *reply)
{
    struct vfio_user_region_io_fds_request req;
    struct vfio_user_region_io_fds_reply *out = (void *)ctx->reply_buf;
    struct fd_slots slots = { .nr = 0 };
    uint32_t count;

    if (msg->len != sizeof(req) || msg->nr_fds > 0) {
        vfu_log_err(ctx, "GET_REGION_IO_FDS: payload of %zu bytes, %zu fds",
                    msg->len, msg->nr_fds);
        return -EINVAL;
    }
    memcpy(&req, msg->payload, sizeof(req));
    if (req.flags != 0 || req.count != 0 ||
        req.index >= VFU_PCI_DEV_NUM_REGIONS || req.argsz < sizeof(*out)) {
        vfu_log_err(ctx, "GET_REGION_IO_FDS: argsz %u, flags %#x, index %u, "
                    "count %u", req.argsz, req.flags, req.index, req.count);
        return -EINVAL;
    }
    /* Never more fds than the client said it takes in one message. */
    slots.max = ctx->client_caps.max_msg_fds < TRAN_MAX_FDS ?
                ctx->client_caps.max_msg_fds : TRAN_MAX_FDS;
    count = offer(ctx, req.index, &slots, NULL);

    memset(out, 0, sizeof(*out));
    out->argsz = (uint32_t)(sizeof(*out) + count * ENTRY_SIZE);
    out->index = req.index;
    if (req.argsz < out->argsz) {
        /* The size needed, no entries and no fds: the client asks again. */
        reply_add(reply, out, sizeof(*out));
        return 0;
    }
    slots.nr = 0;
    out->count = offer(ctx, req.index, &slots,
                       (struct vfio_user_sub_region_ioeventfd *)(out + 1));
    memcpy(reply->fds, slots.fds, slots.nr * sizeof(slots.fds[0]));
    reply->nr_fds = slots.nr;
    reply_add(reply, out, out->argsz);
    return 0;
}
