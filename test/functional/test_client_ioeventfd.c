/*
 * Functional tests of libvfio-user-client's io fds and doorbells.
 *
 * Against a fake server (a thread answering VERSION, GET_REGION_INFO and
 * GET_REGION_IO_FDS with replies the test writes byte by byte):
 * vfu_client_region_io_fds() takes every good reply (48-byte entries, the
 * spec's 40-byte ones, a retry with the argsz the server needs, ioregionfds
 * left out) and refuses every broken one with EPROTO, closing every fd that
 * came (open fds counted before and after).
 *
 * Against libvfio-user (a device in a thread): vfu_client_ioeventfds_install()
 * and vfu_client_doorbell(): a store that matches an ioeventfd signals it
 * (a shadow one's value lands in shadow memory) and sends nothing; one that
 * does not (size, datamatch, offset, removed) arrives as REGION_WRITE.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define DM          KVM_IOEVENTFD_FLAG_DATAMATCH
#define HEAD        sizeof(struct vfio_user_region_io_fds_reply)
#define ENTRY       sizeof(struct vfio_user_sub_region_ioeventfd)
#define RSIZE       4096u       /* the fake's regions */
#define EFD         VFIO_USER_IO_FD_TYPE_IOEVENTFD
#define SHADOW      VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW

/* ------------------------------------------------------------------ */
/* The fake server                                                     */
/* ------------------------------------------------------------------ */

/* A GET_REGION_IO_FDS reply as the test lays it out. */
struct canned {
    uint8_t payload[4096];
    size_t len;
    int fds[8];
    size_t nr_fds;
    uint32_t error;             /* non-zero: an error reply with it */
    bool grow;                  /* say argsz is 48 more than offered */
};

struct fake {
    char dir[64];
    char sock[96];
    int listen_fd;
    pthread_t thread;
    struct canned replies[2];   /* the first request gets [0], later [1] */
    int nr_io_fds_requests;
};

static int
recv_all(int fd, void *buf, size_t len)
{
    return len == 0 || recv(fd, buf, len, MSG_WAITALL) == (ssize_t)len ? 0 : -1;
}

static void
send_reply(int fd, const struct vfio_user_header *req, const void *payload,
           size_t len, const int *fds, size_t nr_fds, uint32_t error)
{
    struct vfio_user_header hdr = {
        .msg_id = req->msg_id, .cmd = req->cmd,
        .msg_size = (uint32_t)(sizeof(hdr) + (error ? 0 : len)),
        .flags = VFIO_USER_F_TYPE_REPLY | (error ? VFIO_USER_F_ERROR : 0),
        .error_no = error,
    };
    struct iovec iov[2] = { { &hdr, sizeof(hdr) },
                            { (void *)(uintptr_t)payload, error ? 0 : len } };
    union {
        char buf[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

    if (nr_fds > 0 && !error) {
        struct cmsghdr *cm;
        memset(ctl.buf, 0, sizeof(ctl.buf));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nr_fds);
    }
    assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL),
                     (ssize_t)(sizeof(hdr) + (error ? 0 : len)));
}

static void *
fake_serve(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    struct vfio_user_header hdr;
    uint8_t in[4096];

    while (fd >= 0 && recv_all(fd, &hdr, sizeof(hdr)) == 0 &&
           hdr.msg_size >= sizeof(hdr) && hdr.msg_size - sizeof(hdr) <= sizeof(in) &&
           recv_all(fd, in, hdr.msg_size - sizeof(hdr)) == 0) {
        if (hdr.cmd == VFIO_USER_VERSION) {
            static const char json[] = "{\"capabilities\":{\"max_msg_fds\":8}}";
            uint8_t v[4 + sizeof(json)] = { 0 };
            memcpy(v + 4, json, sizeof(json));
            send_reply(fd, &hdr, v, sizeof(v), NULL, 0, 0);
        } else if (hdr.cmd == VFIO_USER_DEVICE_GET_REGION_INFO) {
            struct vfio_region_info ri = {
                .argsz = sizeof(ri), .size = RSIZE,
                .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
            };
            memcpy(&ri.index, in + 8, 4);
            send_reply(fd, &hdr, &ri, sizeof(ri), NULL, 0, 0);
        } else if (hdr.cmd == VFIO_USER_DEVICE_GET_REGION_IO_FDS) {
            struct canned *r = &f->replies[f->nr_io_fds_requests++ ? 1 : 0];
            if (r->grow) {
                struct vfio_user_region_io_fds_reply head = { 0 };
                memcpy(&head.argsz, in, 4);
                head.argsz += ENTRY;
                send_reply(fd, &hdr, &head, sizeof(head), NULL, 0, 0);
            } else {
                send_reply(fd, &hdr, r->payload, r->len, r->fds, r->nr_fds,
                           r->error);
            }
        } else {
            send_reply(fd, &hdr, NULL, 0, NULL, 0, ENOSYS);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

static struct fake *
fake_start(void)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    strcpy(f->dir, "/tmp/vfu-fake.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof(f->sock), "%s/s", f->dir);
    strcpy(addr.sun_path, f->sock);
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr,
                          sizeof(addr)), 0);
    assert_int_equal(listen(f->listen_fd, 1), 0);
    return f;
}

static void
fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    unlink(f->sock);
    rmdir(f->dir);
    free(f);
}

/* ------------------------------------------------------------------ */
/* Replies, good and bad                                               */
/* ------------------------------------------------------------------ */

/* The fixed part of a reply (the header's struct ends in a flexible array). */
struct reply_head {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
};

/* The good reply: a plain ioeventfd and a shadow one, three fds. */
struct layout {
    struct reply_head head;
    struct vfio_user_sub_region_ioeventfd e[4];
    int efd[2];
    int shadow;
    size_t nr_entries;
};

static void
layout_good(struct layout *l)
{
    memset(l, 0, sizeof(*l));
    l->nr_entries = 2;
    l->head = (struct reply_head){
        .argsz = HEAD + 2 * ENTRY, .index = 0, .count = 2,
    };
    l->e[0] = (struct vfio_user_sub_region_ioeventfd){
        .gpa_offset = 0x10, .size = 4, .fd_index = 0, .type = EFD,
        .flags = DM, .datamatch = 0xfeed,
    };
    l->e[1] = (struct vfio_user_sub_region_ioeventfd){
        .gpa_offset = RSIZE - 8, .size = 8, .fd_index = 1, .type = SHADOW,
        .shadow_mem_fd_index = 2, .shadow_offset = 0x40,
    };
}

/* Writes @l as a reply, with fds: [efd0, efd1, shadow]. */
static void
layout_put(const struct layout *l, struct canned *r, const int *fds,
           size_t nr_fds)
{
    memcpy(r->payload, &l->head, HEAD);
    memcpy(r->payload + HEAD, l->e, l->nr_entries * ENTRY);
    r->len = HEAD + l->nr_entries * ENTRY;
    memcpy(r->fds, fds, nr_fds * sizeof(int));
    r->nr_fds = nr_fds;
}

enum {
    B_SHORT, B_FLAGS, B_INDEX, B_ARGSZ_LOW, B_ARGSZ_ODD, B_LEN, B_COUNT,
    B_COUNT0_FDS, B_NO_FDS, B_FD_INDEX, B_SHADOW_INDEX, B_UNUSED_FD,
    B_PIPE, B_SHADOW_EVENTFD, B_SHADOW_SHORT, B_SHADOW_ALIGN, B_TYPE,
    B_PIO, B_SIZE3, B_DM_WIDE, B_DM_SIZE0, B_OUTSIDE, B_AT_END,
    B_SMALL_FDS, B_SMALL_HUGE, B_GROW, B_SPEC_SHADOW, NR_BAD
};

static const char *const bad_names[NR_BAD] = {
    "payload shorter than the head", "flags set", "index not echoed",
    "argsz below the head", "argsz not a whole number of entries",
    "payload length not argsz", "count against argsz",
    "no entries but fds", "entries but no fds", "fd_index out of range",
    "shadow fd index out of range", "an fd no entry uses",
    "a pipe for an eventfd", "an eventfd for shadow memory",
    "shadow value past the file", "shadow offset misaligned",
    "unknown type", "PIO flag", "size 3", "datamatch wider than size",
    "datamatch with size 0", "range past the region",
    "offset at the region's end", "too-small reply with fds",
    "argsz needed past any limit", "always more argsz needed",
    "shadow entry in 40-byte layout",
};

/* Makes the canned replies of bad case @b from the good layout. */
static void
make_bad(int b, struct fake *f, int *fds)
{
    struct layout l;
    struct canned *r = &f->replies[0];
    int pipefd[2];
    size_t nr = 3;

    layout_good(&l);
    switch (b) {
    case B_FLAGS:           l.head.flags = 1; break;
    case B_INDEX:           l.head.index = 1; break;
    case B_ARGSZ_LOW:       l.head.argsz = 8; break;
    case B_COUNT:           l.head.count = 3; break;
    case B_FD_INDEX:        l.e[0].fd_index = 3; break;
    case B_SHADOW_INDEX:    l.e[1].shadow_mem_fd_index = 5; break;
    case B_TYPE:            l.e[0].type = 7; break;
    case B_PIO:             l.e[0].flags |= KVM_IOEVENTFD_FLAG_PIO; break;
    case B_SIZE3:           l.e[0].size = 3; break;
    case B_DM_WIDE:         l.e[0].datamatch = 1ull << 32; break;
    case B_DM_SIZE0:        l.e[0].size = 0; break;
    case B_OUTSIDE:         l.e[0].gpa_offset = RSIZE - 2; break;
    case B_AT_END:          l.e[0].gpa_offset = RSIZE;
                            l.e[0].size = 0; l.e[0].flags = 0; break;
    case B_SHADOW_SHORT:    l.e[1].shadow_offset = 4096; break;
    case B_SHADOW_ALIGN:    l.e[1].shadow_offset = 4; break;
    case B_SHADOW_EVENTFD:  l.e[1].shadow_mem_fd_index = 0; nr = 2; break;
    case B_NO_FDS:          nr = 0; break;
    case B_UNUSED_FD:       nr = 4; break;
    case B_COUNT0_FDS:
        l.head.count = 0;
        l.head.argsz = HEAD;
        l.nr_entries = 0;
        break;
    case B_SMALL_FDS:
    case B_SMALL_HUGE:
        l.head.argsz = b == B_SMALL_HUGE ? 2u << 20 : HEAD + 100 * ENTRY;
        l.head.count = 0;
        l.nr_entries = 0;
        nr = b == B_SMALL_FDS ? 1 : 0;
        break;
    }
    if (b == B_PIPE) {
        assert_int_equal(pipe(pipefd), 0);
        close(pipefd[1]);
        close(fds[0]);
        fds[0] = pipefd[0];
    }
    layout_put(&l, r, fds, nr);
    switch (b) {
    case B_SHORT:
        r->len = HEAD - 4;
        break;
    case B_ARGSZ_ODD:
        l.head.argsz = HEAD + 2 * ENTRY + 1;
        memcpy(r->payload, &l.head, HEAD);
        r->len = l.head.argsz;
        break;
    case B_LEN:
        r->len -= ENTRY;
        break;
    case B_GROW:
        r->grow = true;
        break;
    case B_SPEC_SHADOW: {
        /* The spec's 40-byte entries cannot carry a shadow ioeventfd. */
        uint8_t *p = r->payload + HEAD;
        l.head.argsz = HEAD + 2 * 40;
        memcpy(r->payload, &l.head, HEAD);
        for (int i = 0; i < 2; i++) {
            memcpy(p + 40 * i, &l.e[i], 28);
            memset(p + 40 * i + 28, 0, 4);
            memcpy(p + 40 * i + 32, &l.e[i].datamatch, 8);
        }
        r->len = l.head.argsz;
        break;
    }
    }
    f->replies[1] = f->replies[0];
}

/* The fds a reply may carry: eventfd, eventfd, memfd, eventfd. */
static void
make_fds(int *fds)
{
    fds[0] = eventfd(0, EFD_CLOEXEC);
    fds[1] = eventfd(0, EFD_CLOEXEC);
    fds[2] = memfd_create("shadow", MFD_CLOEXEC);
    fds[3] = eventfd(0, EFD_CLOEXEC);
    assert_int_equal(ftruncate(fds[2], 4096), 0);
}

static vfu_client_t *
fake_client(struct fake *f)
{
    vfu_client_t *c;

    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
    c = vfu_client_connect(f->sock);
    assert_non_null(c);
    assert_int_equal(vfu_client_negotiate(c, NULL), 0);
    return c;
}

static void
test_bad_replies(void **state)
{
    (void)state;
    for (int b = 0; b < NR_BAD; b++) {
        int before = count_open_fds();
        struct fake *f = fake_start();
        struct vfu_client_ioeventfd *v = (void *)1;
        size_t nr = 99;
        int fds[4];

        print_message("%s\n", bad_names[b]);
        make_fds(fds);
        make_bad(b, f, fds);
        vfu_client_t *c = fake_client(f);
        errno = 0;
        assert_int_equal(vfu_client_region_io_fds(c, 0, &v, &nr), -1);
        assert_int_equal(errno, EPROTO);
        assert_null(v);
        assert_int_equal(nr, 0);
        vfu_client_close(c);
        fake_stop(f);
        for (int i = 0; i < 4; i++) {
            close(fds[i]);
        }
        /* Whatever came with the reply was closed. */
        assert_int_equal(count_open_fds(), before);
    }
}

static void
test_good_replies(void **state)
{
    struct layout l;
    struct vfu_client_ioeventfd *v;
    size_t nr;
    int fds[4], before;
    uint64_t cnt;
    (void)state;

    /* 0.2's layout, after being told the size needed (no fds then). */
    before = count_open_fds();
    struct fake *f = fake_start();
    make_fds(fds);
    layout_good(&l);
    layout_put(&l, &f->replies[1], fds, 3);
    f->replies[0].grow = true;
    vfu_client_t *c = fake_client(f);
    assert_int_equal(vfu_client_region_io_fds(c, 0, &v, &nr), 0);
    assert_int_equal(f->nr_io_fds_requests, 2);
    assert_int_equal(nr, 2);
    assert_int_equal(v[0].region, 0);
    assert_int_equal(v[0].type, EFD);
    assert_int_equal(v[0].offset, 0x10);
    assert_int_equal(v[0].size, 4);
    assert_int_equal(v[0].flags, DM);
    assert_int_equal(v[0].datamatch, 0xfeed);
    assert_int_equal(v[0].shadow_fd, -1);
    assert_int_equal(v[1].type, SHADOW);
    assert_int_equal(v[1].offset, RSIZE - 8);
    assert_int_equal(v[1].shadow_offset, 0x40);
    assert_true(v[1].shadow_fd >= 0);
    /* Each entry's fds are its own, and reach the server's files. */
    assert_int_equal(eventfd_write(v[1].fd, 2), 0);
    assert_int_equal(eventfd_read(fds[1], &cnt), 0);
    assert_int_equal(cnt, 2);
    vfu_client_ioeventfds_free(v, nr);
    vfu_client_close(c);
    fake_stop(f);

    /* The spec's 40-byte entries; an ioregionfd, checked and left out. */
    f = fake_start();
    l.e[1] = (struct vfio_user_sub_region_ioeventfd){
        .gpa_offset = 0x20, .size = 8, .fd_index = 1,
        .type = VFIO_USER_IO_FD_TYPE_IOREGIONFD,
    };
    l.head.argsz = HEAD + 2 * 40;
    memcpy(f->replies[0].payload, &l.head, HEAD);
    for (int i = 0; i < 2; i++) {
        uint8_t *p = f->replies[0].payload + HEAD + 40 * i;
        memcpy(p, &l.e[i], 28);
        memset(p + 28, 0, 4);
        memcpy(p + 32, &l.e[i].datamatch, 8);
    }
    f->replies[0].len = l.head.argsz;
    memcpy(f->replies[0].fds, fds, 2 * sizeof(int));
    f->replies[0].nr_fds = 2;
    c = fake_client(f);
    assert_int_equal(vfu_client_region_io_fds(c, 0, &v, &nr), 0);
    assert_int_equal(nr, 1);
    assert_int_equal(v[0].datamatch, 0xfeed);
    assert_int_equal(v[0].offset, 0x10);
    vfu_client_ioeventfds_free(v, nr);
    vfu_client_close(c);
    fake_stop(f);

    /* An empty list; and the server's refusal with its errno. */
    f = fake_start();
    l.head = (struct reply_head){ .argsz = HEAD, .index = 3 };
    memcpy(f->replies[0].payload, &l.head, HEAD);
    f->replies[0].len = HEAD;
    f->replies[1].error = EINVAL;
    c = fake_client(f);
    v = (void *)1;
    assert_int_equal(vfu_client_region_io_fds(c, 3, &v, &nr), 0);
    assert_int_equal(nr, 0);
    assert_null(v);
    errno = 0;
    assert_int_equal(vfu_client_region_io_fds(c, 3, &v, &nr), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_ioeventfds_install(c, 3), -1);
    assert_int_equal(errno, EINVAL);
    vfu_client_close(c);
    fake_stop(f);
    for (int i = 0; i < 4; i++) {
        close(fds[i]);
    }
    assert_int_equal(count_open_fds(), before);
}

/* ------------------------------------------------------------------ */
/* Doorbells against libvfio-user                                      */
/* ------------------------------------------------------------------ */

struct db_dev {
    char dir[64];
    char sock[96];
    vfu_ctx_t *ctx;
    pthread_t thread;
    bool joined;
    int efd[4];
    int shadow;
    /* REGION_WRITEs the callback saw: how many, the last offset and value. */
    int writes;
    uint64_t last_off;
    uint64_t last_val;
};

static ssize_t
db_bar0(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct db_dev *d = vfu_get_private(ctx);

    if (is_write) {
        d->writes++;
        d->last_off = (uint64_t)off;
        d->last_val = 0;
        memcpy(&d->last_val, buf, count < 8 ? count : 8);
    } else {
        memset(buf, 0, count);
    }
    return (ssize_t)count;
}

static void *
db_serve(void *arg)
{
    struct db_dev *d = arg;

    if (vfu_attach_ctx(d->ctx) == 0) {
        while (vfu_run_ctx(d->ctx) >= 0) {
            ;
        }
    }
    return NULL;
}

static int
db_setup(void **state)
{
    struct db_dev *d = calloc(1, sizeof(*d));
    vfu_ctx_t *ctx;

    strcpy(d->dir, "/tmp/vfu-db.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/s", d->dir);
    for (int i = 0; i < 4; i++) {
        d->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    d->shadow = memfd_create("shadow", MFD_CLOEXEC);
    assert_int_equal(ftruncate(d->shadow, 4096), 0);
    ctx = d->ctx = vfu_create_ctx(VFU_TRANS_SOCK, d->sock, 0, d,
                                  VFU_DEV_TYPE_PCI);
    assert_non_null(ctx);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    vfu_pci_set_id(ctx, DEV_VID, DEV_DID, DEV_VID, 0x1100);
    assert_int_equal(vfu_setup_region(ctx, 0, 4096, db_bar0,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(ctx, 1, 4096, db_bar0,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    /* 0x0: any 4-byte write; 0x8: values 1 and 2; 0x10: shadow, 8 bytes. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, d->efd[0], 0, 4, 0, 0, -1,
                                          0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, d->efd[1], 8, 4, DM, 1, -1,
                                          0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, d->efd[2], 8, 4, DM, 2, -1,
                                          0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, d->efd[3], 0x10, 8, 0, 0,
                                          d->shadow, 0x18), 0);
    assert_int_equal(vfu_realize_ctx(ctx), 0);
    assert_int_equal(pthread_create(&d->thread, NULL, db_serve, d), 0);
    *state = d;
    return 0;
}

static int
db_teardown(void **state)
{
    struct db_dev *d = *state;

    if (!d->joined) {
        pthread_join(d->thread, NULL);
    }
    vfu_destroy_ctx(d->ctx);
    for (int i = 0; i < 4; i++) {
        close(d->efd[i]);
    }
    close(d->shadow);
    rmdir(d->dir);
    free(d);
    return 0;
}

/* The eventfd's count since the last look (0: not signalled). */
static uint64_t
signals(int efd)
{
    uint64_t v = 0;
    return eventfd_read(efd, &v) == 0 ? v : 0;
}

static int
ring(vfu_client_t *c, uint64_t off, uint64_t val, uint32_t count)
{
    return vfu_client_doorbell(c, 0, off, &val, count, false);
}

static void
test_doorbell(void **state)
{
    struct db_dev *d = *state;
    vfu_client_t *c = vfu_client_connect(d->sock);
    uint64_t shadow_val = 0;
    int before, installed;

    assert_non_null(c);
    assert_int_equal(vfu_client_negotiate(c, NULL), 0);
    before = count_open_fds();
    /* Before installing, every store is a message. */
    assert_int_equal(ring(c, 0, 5, 4), 0);
    assert_int_equal(d->writes, 1);
    assert_int_equal(signals(d->efd[0]), 0);

    assert_int_equal(vfu_client_ioeventfds_install(c, 0), 4);
    assert_int_equal(vfu_client_ioeventfds_install(c, 1), 0);
    installed = count_open_fds();
    /* Installing again replaces: the same fds held. */
    assert_int_equal(vfu_client_ioeventfds_install(c, 0), 4);
    assert_int_equal(count_open_fds(), installed);

    /* Matches: signalled, nothing sent. */
    assert_int_equal(ring(c, 0, 5, 4), 1);
    assert_int_equal(ring(c, 0, 6, 4), 1);
    assert_int_equal(signals(d->efd[0]), 2);
    assert_int_equal(ring(c, 8, 1, 4), 1);
    assert_int_equal(signals(d->efd[1]), 1);
    assert_int_equal(ring(c, 8, 2, 4), 1);
    assert_int_equal(signals(d->efd[2]), 1);
    assert_int_equal(signals(d->efd[1]), 0);
    assert_int_equal(ring(c, 0x10, 0x1122334455667788ull, 8), 1);
    assert_int_equal(signals(d->efd[3]), 1);
    assert_int_equal(pread(d->shadow, &shadow_val, 8, 0x18), 8);
    assert_int_equal(shadow_val, 0x1122334455667788ull);
    assert_int_equal(d->writes, 1);

    /* No match: another size, value, offset or region goes as a message. */
    assert_int_equal(ring(c, 0, 7, 2), 0);
    assert_int_equal(d->last_off, 0);
    assert_int_equal(d->last_val, 7);
    assert_int_equal(ring(c, 8, 3, 4), 0);
    assert_int_equal(d->last_val, 3);
    assert_int_equal(ring(c, 4, 9, 4), 0);
    assert_int_equal(d->last_off, 4);
    assert_int_equal(vfu_client_doorbell(c, 1, 0, &shadow_val, 4, false), 0);
    assert_int_equal(ring(c, 0x10, 1, 4), 0);
    assert_int_equal(d->writes, 6);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(signals(d->efd[i]), 0);
    }
    /* Posted: the message goes without waiting; a read orders it. */
    assert_int_equal(vfu_client_doorbell(c, 0, 8, &shadow_val, 4, true), 0);
    assert_true(server_alive(c));
    assert_int_equal(d->writes, 7);

    /* Removed: messages again, and the fds are closed. */
    vfu_client_ioeventfds_remove(c, 0);
    assert_int_equal(count_open_fds(), before);
    assert_int_equal(ring(c, 0, 5, 4), 0);
    assert_int_equal(d->writes, 8);
    assert_int_equal(signals(d->efd[0]), 0);

    /* Bad arguments, and a region that does not exist. */
    errno = 0;
    assert_int_equal(vfu_client_doorbell(c, 0, 0, NULL, 4, false), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_doorbell(c, 0, 0, &shadow_val, 0, false), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_ioeventfds_install(c, UINT32_MAX), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_ioeventfds_install(c, 9), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vfu_client_ioeventfds_install(NULL, 0), -1);
    assert_int_equal(errno, EINVAL);

    /* Closing the client releases what is installed. */
    assert_int_equal(vfu_client_ioeventfds_install(c, 0), 4);
    vfu_client_close(c);
    pthread_join(d->thread, NULL);      /* the server saw it go */
    d->joined = true;
    assert_int_equal(count_open_fds(), before - 2);     /* both its ends */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_good_replies),
        cmocka_unit_test_setup_teardown(test_doorbell, db_setup, db_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
