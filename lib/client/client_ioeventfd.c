/*
 * The client library's io fds: GET_REGION_IO_FDS with every rule of the
 * reply checked (the server is not trusted), and doorbells as a VMM with
 * KVM's ioeventfds has them: the ioeventfds installed in the client, a
 * store that signals a matching one (after a shadow ioeventfd's value is
 * put in shadow memory) and goes as REGION_WRITE otherwise.
 */
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private.h"
#include "fdkind.h"

#define DM                  KVM_IOEVENTFD_FLAG_DATAMATCH
#define HEAD_SIZE           sizeof(struct vfio_user_region_io_fds_reply)
/* libvfio-user 0.2's entry, and the spec's (no shadow fields). */
#define ENTRY_SIZE          sizeof(struct vfio_user_sub_region_ioeventfd)
#define SPEC_ENTRY_SIZE     40u
/* What we offer first (16 entries), how often and how far we re-ask. */
#define IO_FDS_FIRST        (HEAD_SIZE + 16 * ENTRY_SIZE)
#define IO_FDS_TRIES        3
#define IO_FDS_MAX          (1024u * 1024)

/* The size of region @index, from GET_REGION_INFO; 0 or -errno. */
static int
region_size(struct vfu_client *c, uint32_t index, uint64_t *size)
{
    struct vfio_region_info *info;
    int fd;

    if (vfu_client_region_info(c, index, &info, &fd) < 0) {
        return -errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    *size = info->size;
    free(info);
    return 0;
}

/* Entry @i of a reply whose entries are @esz bytes (48, or the spec's 40). */
static void
read_entry(const uint8_t *payload, uint32_t i, uint32_t esz,
           struct vfio_user_sub_region_ioeventfd *e)
{
    const uint8_t *p = payload + HEAD_SIZE + (size_t)i * esz;

    memset(e, 0, sizeof(*e));
    if (esz == ENTRY_SIZE) {
        memcpy(e, p, sizeof(*e));
        return;
    }
    /* offset, size, fd_index, type, flags; padding; datamatch at 32 */
    memcpy(e, p, offsetof(struct vfio_user_sub_region_ioeventfd,
                          shadow_mem_fd_index));
    memcpy(&e->datamatch, p + 32, sizeof(e->datamatch));
}

static bool
size_ok(uint64_t size)
{
    return size == 0 || size == 1 || size == 2 || size == 4 || size == 8;
}

/*
 * One entry's rules, with the reply's @nr_fds fds; marks the fds it uses
 * in @used. 1: an ioeventfd to keep; 0: an ioregionfd (checked, not
 * kept); -EPROTO.
 */
static int
check_entry(const struct vfio_user_sub_region_ioeventfd *e, uint32_t esz,
            const int *fds, size_t nr_fds, uint64_t region_size, bool *used)
{
    struct stat st;

    if (e->fd_index >= nr_fds) {
        return -EPROTO;
    }
    used[e->fd_index] = true;
    if (e->type == VFIO_USER_IO_FD_TYPE_IOREGIONFD) {
        return 0;
    }
    if ((e->type != VFIO_USER_IO_FD_TYPE_IOEVENTFD &&
         e->type != VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW) ||
        (e->flags & ~(uint32_t)DM) || !size_ok(e->size)) {
        return -EPROTO;
    }
    if ((e->flags & DM) &&
        (e->size == 0 || (e->size < 8 && (e->datamatch >> (8 * e->size))))) {
        return -EPROTO;     /* no write could match */
    }
    if (e->gpa_offset >= region_size || e->size > region_size - e->gpa_offset ||
        fd_is_eventfd(fds[e->fd_index]) != 1) {
        return -EPROTO;
    }
    if (e->type == VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW) {
        if (esz != ENTRY_SIZE || e->shadow_mem_fd_index >= nr_fds ||
            e->size == 0 || e->shadow_offset % e->size != 0) {
            return -EPROTO;
        }
        used[e->shadow_mem_fd_index] = true;
        if (fstat(fds[e->shadow_mem_fd_index], &st) < 0 ||
            !S_ISREG(st.st_mode) || e->shadow_offset > (uint64_t)st.st_size ||
            e->size > (uint64_t)st.st_size - e->shadow_offset) {
            return -EPROTO;
        }
    }
    return 1;
}

/* Closes the fds of the first @nr entries of @v. */
static void
close_entries(struct vfu_client_ioeventfd *v, size_t nr)
{
    for (size_t i = 0; i < nr; i++) {
        close(v[i].fd);
        if (v[i].shadow_fd >= 0) {
            close(v[i].shadow_fd);
        }
    }
}

/*
 * Checks a full reply (@m, to our @offer of argsz) and makes its entries,
 * each with duplicates of its fds. 0 with *out and *nr set; 1 when the
 * server asks for a bigger argsz (*need); -EPROTO; -errno of dup or malloc.
 * The message's fds stay the caller's to close.
 */
static int
decode(const struct tran_msg *m, uint32_t index, uint32_t offer,
       uint64_t region_size, struct vfu_client_ioeventfd **out, size_t *nr,
       uint32_t *need)
{
    struct vfio_user_region_io_fds_reply head;
    struct vfu_client_ioeventfd *v;
    bool used[TRAN_MAX_FDS] = { false };
    uint32_t esz;
    size_t n = 0;
    int ret = 0;

    if (m->len < HEAD_SIZE) {
        return -EPROTO;
    }
    memcpy(&head, m->payload, HEAD_SIZE);
    if (head.flags != 0 || head.index != index || head.argsz < HEAD_SIZE) {
        return -EPROTO;
    }
    if (head.argsz > offer) {
        /* Too small: the size needed, and no fds. */
        if (m->nr_fds > 0 || head.argsz > IO_FDS_MAX) {
            return -EPROTO;
        }
        *need = head.argsz;
        return 1;
    }
    if (m->len != head.argsz || (head.count == 0) != (m->nr_fds == 0)) {
        return -EPROTO;
    }
    *out = NULL;
    *nr = 0;
    if (head.count == 0) {
        return head.argsz == HEAD_SIZE ? 0 : -EPROTO;
    }
    esz = (head.argsz - HEAD_SIZE) / head.count;
    if ((head.argsz - HEAD_SIZE) % head.count != 0 ||
        (esz != ENTRY_SIZE && esz != SPEC_ENTRY_SIZE)) {
        return -EPROTO;
    }
    v = calloc(head.count, sizeof(*v));
    if (v == NULL) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < head.count && ret == 0; i++) {
        struct vfio_user_sub_region_ioeventfd e;
        int keep;

        read_entry(m->payload, i, esz, &e);
        keep = check_entry(&e, esz, m->fds, m->nr_fds, region_size, used);
        if (keep < 0) {
            ret = keep;
        } else if (keep) {
            v[n++] = (struct vfu_client_ioeventfd){
                .region = index, .type = e.type, .offset = e.gpa_offset,
                .size = e.size, .flags = e.flags, .datamatch = e.datamatch,
                .fd = -1, .shadow_fd = -1,
                .shadow_offset = e.type == VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW ?
                                 e.shadow_offset : 0,
            };
            /* Which fds: kept in the fd fields until duplicated below. */
            v[n - 1].fd = (int)e.fd_index;
            if (e.type == VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW) {
                v[n - 1].shadow_fd = (int)e.shadow_mem_fd_index;
            }
        }
    }
    for (size_t i = 0; ret == 0 && i < m->nr_fds; i++) {
        if (!used[i]) {
            ret = -EPROTO;      /* an fd no entry names */
        }
    }
    for (size_t i = 0; ret == 0 && i < n; i++) {
        int fd = fcntl(m->fds[v[i].fd], F_DUPFD_CLOEXEC, 3);
        int sfd = v[i].shadow_fd < 0 ? -1 :
                  fcntl(m->fds[v[i].shadow_fd], F_DUPFD_CLOEXEC, 3);

        if (fd < 0 || (v[i].shadow_fd >= 0 && sfd < 0)) {
            ret = -errno;
            if (fd >= 0) {
                close(fd);
            }
            if (sfd >= 0) {
                close(sfd);
            }
            close_entries(v, i);
            break;
        }
        v[i].fd = fd;
        v[i].shadow_fd = sfd;
    }
    if (ret < 0) {
        free(v);
        return ret;
    }
    if (n == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *nr = n;
    return 0;
}

VFU_EXPORT int
vfu_client_region_io_fds(vfu_client_t *c, uint32_t index,
                         struct vfu_client_ioeventfd **ioeventfds, size_t *nr)
{
    uint32_t offer = IO_FDS_FIRST;
    uint64_t size = 0;
    int ret;

    if (c == NULL || ioeventfds == NULL || nr == NULL) {
        return fail(-EINVAL);
    }
    *ioeventfds = NULL;
    *nr = 0;
    /* The spec leaves checking the ranges against the region to us. */
    ret = region_size(c, index, &size);
    if (ret < 0) {
        return fail(ret);
    }
    for (int tries = 0; tries < IO_FDS_TRIES; tries++) {
        struct vfio_user_region_io_fds_request req = {
            .argsz = offer, .index = index,
        };
        struct iovec iov = iov_of(&req, sizeof(req));
        struct tran_msg reply;
        uint32_t need = 0;

        ret = do_request(c, VFIO_USER_DEVICE_GET_REGION_IO_FDS, &iov, 1, NULL,
                         0, &reply);
        if (ret < 0) {
            return fail(ret);
        }
        ret = decode(&reply, index, offer, size, ioeventfds, nr, &need);
        tran_msg_close_fds(&reply);
        if (ret <= 0) {
            return ret < 0 ? fail(ret) : 0;
        }
        offer = need;
    }
    return fail(-EPROTO);   /* the server kept asking for more */
}

VFU_EXPORT void
vfu_client_ioeventfds_free(struct vfu_client_ioeventfd *ioeventfds, size_t nr)
{
    if (ioeventfds != NULL) {
        close_entries(ioeventfds, nr);
        free(ioeventfds);
    }
}

/* Maps a shadow ioeventfd's memory: the page(s) holding its value. */
static int
map_shadow(struct client_ioeventfd *x)
{
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = x->e.shadow_offset & ~(pg - 1);
    uint64_t end = x->e.shadow_offset + x->e.size;

    x->map_len = (size_t)((end - start + pg - 1) & ~(pg - 1));
    x->map = mmap(NULL, x->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                  x->e.shadow_fd, (off_t)start);
    if (x->map == MAP_FAILED) {
        x->map = NULL;
        return -errno;
    }
    x->shadow = (uint8_t *)x->map + (x->e.shadow_offset - start);
    return 0;
}

VFU_EXPORT int
vfu_client_ioeventfds_install(vfu_client_t *c, uint32_t index)
{
    struct vfu_client_ioeventfd *v;
    struct client_ioeventfd *x, *all;
    size_t n;
    int ret = 0;

    if (c == NULL || index == UINT32_MAX) {
        return fail(-EINVAL);
    }
    if (vfu_client_region_io_fds(c, index, &v, &n) < 0) {
        return -1;
    }
    x = calloc(n > 0 ? n : 1, sizeof(*x));
    all = realloc(c->ioefds, (c->nr_ioefds + n + 1) * sizeof(*all));
    if (all != NULL) {
        c->ioefds = all;
    }
    if (x == NULL || all == NULL) {
        ret = -ENOMEM;
    }
    for (size_t i = 0; i < n && ret == 0; i++) {
        x[i].e = v[i];
        if (v[i].type == VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW) {
            ret = map_shadow(&x[i]);
        }
    }
    if (ret < 0) {
        for (size_t i = 0; x != NULL && i < n; i++) {
            if (x[i].map != NULL) {
                munmap(x[i].map, x[i].map_len);
            }
        }
        free(x);
        vfu_client_ioeventfds_free(v, n);
        return fail(ret);
    }
    /* From here nothing fails: the new set replaces the old one. */
    client_ioeventfds_clear(c, index);
    memcpy(c->ioefds + c->nr_ioefds, x, n * sizeof(*x));
    c->nr_ioefds += n;
    free(x);
    free(v);                /* the fds went to c->ioefds */
    return (int)n;
}

VFU_EXPORT void
vfu_client_ioeventfds_remove(vfu_client_t *c, uint32_t index)
{
    if (c != NULL) {
        client_ioeventfds_clear(c, index);
    }
}

static bool
matches(const struct vfu_client_ioeventfd *e, uint32_t index, uint64_t offset,
        uint32_t count, uint64_t value)
{
    return e->region == index && e->offset == offset &&
           (e->size == 0 || e->size == count) &&
           (!(e->flags & DM) || e->datamatch == value);
}

/* What KVM does for a matching store: shadow value first, then the signal. */
static int
signal_ioeventfd(const struct client_ioeventfd *x, uint64_t value,
                 uint32_t count)
{
    const uint64_t one = 1;
    ssize_t n;

    if (x->shadow != NULL) {
        switch (count) {
        case 1:
            __atomic_store_n(x->shadow, (uint8_t)value, __ATOMIC_RELEASE);
            break;
        case 2:
            __atomic_store_n((uint16_t *)(void *)x->shadow, (uint16_t)value,
                             __ATOMIC_RELEASE);
            break;
        case 4:
            __atomic_store_n((uint32_t *)(void *)x->shadow, (uint32_t)value,
                             __ATOMIC_RELEASE);
            break;
        default:
            __atomic_store_n((uint64_t *)(void *)x->shadow, value,
                             __ATOMIC_RELEASE);
            break;
        }
    }
    do {
        n = write(x->e.fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    return n == sizeof(one) ? 1 : fail(n < 0 ? -errno : -EIO);
}

VFU_EXPORT int
vfu_client_doorbell(vfu_client_t *c, uint32_t index, uint64_t offset,
                    const void *data, uint32_t count, bool posted)
{
    if (c == NULL || data == NULL || count == 0) {
        return fail(-EINVAL);
    }
    if (count <= 8 && (count & (count - 1)) == 0) {
        uint64_t value = 0;

        memcpy(&value, data, count);        /* little-endian, as the wire */
        for (size_t i = 0; i < c->nr_ioefds; i++) {
            if (matches(&c->ioefds[i].e, index, offset, count, value)) {
                return signal_ioeventfd(&c->ioefds[i], value, count);
            }
        }
    }
    return vfu_client_region_write(c, index, offset, data, count, posted) < 0 ?
           -1 : 0;
}
