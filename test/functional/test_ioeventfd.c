/*
 * Functional tests of the server side of ioeventfds: every rule of
 * vfu_create_ioeventfd() with its errno, and VFIO_USER_DEVICE_GET_REGION_IO_FDS
 * over a real socket: the reply's layout, fds and fd indexes, the argsz
 * rule, every malformed request refused with its errno while the server
 * keeps serving, the client's max_msg_fds, regions without ioeventfds, and
 * ioeventfds kept across clients and released on destroy, with open fds
 * counted before and after. The device of its own (ioeventfds are created
 * before its thread serves):
 *
 *   BAR0  4 KiB, read/write by message, callback
 *   BAR1  4 KiB, read-only, callback
 *   BAR2  64 KiB, a memfd the client may map at [0, 4 KiB); callback
 *   BAR4  4 KiB, read/write by message, never given ioeventfds
 */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define REGION_SIZE 4096
#define BAR2_MEM    (64 * 1024)
#define ENTRY       sizeof(struct vfio_user_sub_region_ioeventfd)
#define HEAD        sizeof(struct vfio_user_region_io_fds_reply)
#define DM          KVM_IOEVENTFD_FLAG_DATAMATCH

struct dev {
    char dir[64];
    char sock[96];
    vfu_ctx_t *ctx;
    pthread_t thread;
    bool serving;
    int max_clients;
    int bar2_fd;
    uint8_t mem[REGION_SIZE];
};

struct fx {
    struct dev *d;
    vfu_client_t *c;
    int efd[4];
    int shadow;                     /* a memfd of one page */
    int fds_before;
};

static ssize_t
mem_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct dev *d = vfu_get_private(ctx);

    if (off >= REGION_SIZE) {
        return (ssize_t)count;      /* BAR2 beyond the first page */
    }
    if (is_write) {
        memcpy(d->mem + off, buf, count);
    } else {
        memcpy(buf, d->mem + off, count);
    }
    return (ssize_t)count;
}

static void *
serve(void *arg)
{
    struct dev *d = arg;

    for (int i = 0; i < d->max_clients; i++) {
        if (vfu_attach_ctx(d->ctx) < 0) {
            continue;
        }
        while (vfu_run_ctx(d->ctx) >= 0) {
            ;
        }
    }
    return NULL;
}

static struct dev *
dev_new(void)
{
    struct dev *d = calloc(1, sizeof(*d));
    struct iovec area = { (void *)0, 4096 };

    assert_non_null(d);
    strcpy(d->dir, "/tmp/vfu-ioefd.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->sock, sizeof(d->sock), "%s/sock", d->dir);
    d->bar2_fd = memfd_create("bar2", MFD_CLOEXEC);
    assert_true(d->bar2_fd >= 0);
    assert_int_equal(ftruncate(d->bar2_fd, BAR2_MEM), 0);
    d->ctx = vfu_create_ctx(VFU_TRANS_SOCK, d->sock, 0, d, VFU_DEV_TYPE_PCI);
    assert_non_null(d->ctx);
    assert_int_equal(vfu_pci_init(d->ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), 0);
    vfu_pci_set_id(d->ctx, DEV_VID, DEV_DID, DEV_VID, 0x1100);
    assert_int_equal(vfu_setup_region(d->ctx, 0, REGION_SIZE, mem_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 1, REGION_SIZE, mem_cb,
                                      VFU_REGION_FLAG_READ | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 2, BAR2_MEM, mem_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      &area, 1, d->bar2_fd, 0), 0);
    assert_int_equal(vfu_setup_region(d->ctx, 4, REGION_SIZE, mem_cb,
                                      VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                                      NULL, 0, -1, 0), 0);
    assert_int_equal(vfu_realize_ctx(d->ctx), 0);
    return d;
}

/* Serves @clients clients, one after the other, from a thread. */
static void
dev_serve(struct dev *d, int clients)
{
    d->max_clients = clients;
    assert_int_equal(pthread_create(&d->thread, NULL, serve, d), 0);
    d->serving = true;
}

static void
dev_free(struct dev *d)
{
    if (d->serving) {
        pthread_join(d->thread, NULL);
    }
    vfu_destroy_ctx(d->ctx);
    close(d->bar2_fd);
    rmdir(d->dir);
    free(d);
}

static vfu_client_t *
connect_with(struct dev *d, const char *caps)
{
    vfu_client_t *c = vfu_client_connect(d->sock);

    assert_non_null(c);
    assert_int_equal(vfu_client_negotiate(c, caps), 0);
    return c;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    f->fds_before = count_open_fds();
    for (int i = 0; i < 4; i++) {
        f->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(f->efd[i] >= 0);
    }
    f->shadow = memfd_create("shadow", MFD_CLOEXEC);
    assert_int_equal(ftruncate(f->shadow, 4096), 0);
    f->d = dev_new();
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    if (f->c != NULL) {
        vfu_client_close(f->c);
    }
    dev_free(f->d);
    for (int i = 0; i < 4; i++) {
        close(f->efd[i]);
    }
    close(f->shadow);
    /* Nothing the library duplicated or received is left open. */
    assert_int_equal(count_open_fds(), f->fds_before);
    free(f);
    return 0;
}

#define CREATE_FAILS(f, err, ...) do {                                       \
        errno = 0;                                                          \
        assert_int_equal(vfu_create_ioeventfd((f)->d->ctx, __VA_ARGS__), -1);\
        assert_int_equal(errno, (err));                                     \
    } while (0)

/* ------------------------------------------------------------------ */
/* vfu_create_ioeventfd()                                              */
/* ------------------------------------------------------------------ */

static void
test_create_bad_args(void **state)
{
    struct fx *f = *state;
    int e = f->efd[0], pipefd[2], closed, before;

    assert_int_equal(pipe(pipefd), 0);
    closed = dup(e);
    close(closed);
    before = count_open_fds();

    errno = 0;
    assert_int_equal(vfu_create_ioeventfd(NULL, 0, e, 0, 4, 0, 0, -1, 0), -1);
    assert_int_equal(errno, EINVAL);
    /* Regions: unknown, config space, absent, read-only. */
    CREATE_FAILS(f, EINVAL, 9, e, 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, UINT32_MAX, e, 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, VFU_PCI_DEV_CFG_REGION_IDX, e, 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 3, e, 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 1, e, 0, 4, 0, 0, -1, 0);
    /* Sizes, and ranges outside the region (no wrap-around). */
    CREATE_FAILS(f, EINVAL, 0, e, 0, 0, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 3, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 16, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, REGION_SIZE - 2, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, REGION_SIZE, 1, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, SIZE_MAX - 1, 4, 0, 0, -1, 0);
    /* Flags: only datamatch; a datamatch wider than the write. */
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, KVM_IOEVENTFD_FLAG_PIO, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, KVM_IOEVENTFD_FLAG_DEASSIGN, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0x80000000u, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 1, DM, 0x100, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 2, DM, 0x10000, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, DM, 0x100000000ull, -1, 0);
    /* The fd: not open, or not an eventfd. */
    CREATE_FAILS(f, EBADF, 0, -1, 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EBADF, 0, closed, 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, pipefd[0], 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EINVAL, 0, f->shadow, 0, 4, 0, 0, -1, 0);
    /* The shadow file: not open, not memory, too short, misaligned. */
    CREATE_FAILS(f, EBADF, 0, e, 0, 4, 0, 0, closed, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0, 0, pipefd[1], 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0, 0, e, 0);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0, 0, f->shadow, 4096);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0, 0, f->shadow, 4094);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 8, 0, 0, f->shadow, 4092);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0, 0, f->shadow, 2);
    CREATE_FAILS(f, EINVAL, 0, e, 0, 4, 0, 0, f->shadow, SIZE_MAX - 3);

    /* Nothing was kept of any of them. */
    assert_int_equal(count_open_fds(), before);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void
test_create_collisions(void **state)
{
    struct fx *f = *state;
    vfu_ctx_t *ctx = f->d->ctx;
    int e = f->efd[0];

    /* Several per region, of all sizes, at the last bytes too. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, e, 0, 4, 0, 0, -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, e, 0, 2, 0, 0, -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, e, REGION_SIZE - 8, 8, 0, 0,
                                          -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, e, REGION_SIZE - 1, 1, 0, 0,
                                          -1, 0), 0);
    /* The same writes again, with or without datamatch: refused. */
    CREATE_FAILS(f, EEXIST, 0, f->efd[1], 0, 4, 0, 0, -1, 0);
    CREATE_FAILS(f, EEXIST, 0, f->efd[1], 0, 4, DM, 7, -1, 0);
    /* Datamatch values tell writes apart; the same value does not. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, e, 0x10, 4, DM, 1, -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, e, 0x10, 4, DM, 2, -1, 0), 0);
    CREATE_FAILS(f, EEXIST, 0, e, 0x10, 4, DM, 2, -1, 0);
    CREATE_FAILS(f, EEXIST, 0, e, 0x10, 4, 0, 0, -1, 0);
    /* Another region is another place. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 4, e, 0, 4, 0, 0, -1, 0), 0);
    /* A mappable region, in and outside its mmap area. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 2, e, 0, 4, 0, 0, -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 2, e, 8192, 4, 0, 0, -1, 0), 0);
}

/* One eventfd for many places: the library keeps one duplicate of it. */
static void
test_create_limit(void **state)
{
    struct fx *f = *state;
    struct rlimit rl;
    int before, i;

    /* Room for a duplicate each, should kcmp(2) be unavailable here. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2048 && rl.rlim_max >= 2048) {
        rl.rlim_cur = 2048;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    before = count_open_fds();
    for (i = 0; i < 1024; i++) {
        assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, f->efd[0], i, 1,
                                              0, 0, -1, 0), 0);
    }
    CREATE_FAILS(f, ENOSPC, 0, f->efd[0], 2048, 1, 0, 0, -1, 0);
    print_message("1024 ioeventfds on one eventfd hold %d fds\n",
                  count_open_fds() - before);
}

/* The caller's fds stay the caller's: closing them changes nothing. */
static void
test_create_dups(void **state)
{
    struct fx *f = *state;
    int mine = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int shadow = memfd_create("s", MFD_CLOEXEC);
    uint64_t v = 0;
    int fds[4];
    size_t nr = 4;
    struct vfio_user_region_io_fds_request req = {
        .argsz = 4096, .index = 0,
    };
    uint8_t reply[4096];

    assert_int_equal(ftruncate(shadow, 4096), 0);
    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, mine, 0, 4, 0, 0,
                                          shadow, 0), 0);
    int watch = dup(mine);
    close(mine);
    close(shadow);
    dev_serve(f->d, 1);
    f->c = connect_with(f->d, NULL);
    assert_int_equal(vfu_client_request(f->c, VFIO_USER_DEVICE_GET_REGION_IO_FDS,
                                        &req, sizeof(req), NULL, 0, reply,
                                        sizeof(reply), fds, &nr),
                     (ssize_t)(HEAD + ENTRY));
    assert_int_equal(nr, 2);
    /* The eventfd the client got is the one the device watches. */
    assert_int_equal(eventfd_write(fds[0], 3), 0);
    assert_int_equal(eventfd_read(watch, &v), 0);
    assert_int_equal(v, 3);
    close(fds[0]);
    close(fds[1]);
    close(watch);
}

/* ------------------------------------------------------------------ */
/* GET_REGION_IO_FDS                                                   */
/* ------------------------------------------------------------------ */

/*
 * Asks for region @index's io fds with @argsz; returns the reply's length
 * (the reply in @out, fds in @fds, *nr their count) or -errno.
 */
static ssize_t
io_fds(vfu_client_t *c, uint32_t index, uint32_t argsz, void *out, size_t cap,
       int *fds, size_t *nr)
{
    struct vfio_user_region_io_fds_request req = {
        .argsz = argsz, .index = index,
    };
    ssize_t n = vfu_client_request(c, VFIO_USER_DEVICE_GET_REGION_IO_FDS, &req,
                                   sizeof(req), NULL, 0, out, cap, fds, nr);
    return n < 0 ? -errno : n;
}

static void
close_all(int *fds, size_t nr)
{
    for (size_t i = 0; i < nr; i++) {
        close(fds[i]);
    }
}

static void
get_entry(const uint8_t *reply, size_t i,
          struct vfio_user_sub_region_ioeventfd *e)
{
    memcpy(e, reply + HEAD + i * ENTRY, ENTRY);
}

static void
test_reply(void **state)
{
    struct fx *f = *state;
    vfu_ctx_t *ctx = f->d->ctx;
    struct vfio_user_region_io_fds_reply head;
    struct vfio_user_sub_region_ioeventfd e;
    uint8_t reply[4096];
    int fds[16];
    size_t nr = 16;
    uint64_t v;
    uint32_t *shadow_mem;

    /* Two entries on one eventfd, two shadow ones sharing a memfd. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[0], 0x100, 4, 0, 0,
                                          -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[1], 0x200, 8, DM,
                                          0x1122334455667788ull, -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[0], 0x104, 2, 0, 0,
                                          -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[2], 0x300, 4, 0, 0,
                                          f->shadow, 0x40), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[3], 0x304, 4, 0, 0,
                                          f->shadow, 0x44), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 4, f->efd[3], 0, 4, 0, 0,
                                          -1, 0), 0);
    dev_serve(f->d, 1);
    f->c = connect_with(f->d, NULL);

    assert_int_equal(io_fds(f->c, 0, sizeof(reply), reply, sizeof(reply),
                            fds, &nr), (ssize_t)(HEAD + 5 * ENTRY));
    memcpy(&head, reply, HEAD);
    assert_int_equal(head.argsz, HEAD + 5 * ENTRY);
    assert_int_equal(head.flags, 0);
    assert_int_equal(head.index, 0);
    assert_int_equal(head.count, 5);
    /* efd0, efd1, efd2, the shadow memfd, efd3: each file once. */
    assert_int_equal(nr, 5);

    get_entry(reply, 0, &e);
    assert_int_equal(e.gpa_offset, 0x100);
    assert_int_equal(e.size, 4);
    assert_int_equal(e.type, VFIO_USER_IO_FD_TYPE_IOEVENTFD);
    assert_int_equal(e.flags, 0);
    assert_int_equal(e.datamatch, 0);
    assert_int_equal(e.shadow_mem_fd_index, 0);
    assert_int_equal(e.shadow_offset, 0);
    assert_int_equal(e.fd_index, 0);
    get_entry(reply, 1, &e);
    assert_int_equal(e.gpa_offset, 0x200);
    assert_int_equal(e.size, 8);
    assert_int_equal(e.flags, DM);
    assert_int_equal(e.datamatch, 0x1122334455667788ull);
    assert_int_equal(e.fd_index, 1);
    get_entry(reply, 2, &e);
    assert_int_equal(e.gpa_offset, 0x104);
    assert_int_equal(e.size, 2);
    assert_int_equal(e.fd_index, 0);            /* shares efd0's */
    get_entry(reply, 3, &e);
    assert_int_equal(e.type, VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW);
    assert_int_equal(e.fd_index, 2);
    assert_int_equal(e.shadow_mem_fd_index, 3);
    assert_int_equal(e.shadow_offset, 0x40);
    get_entry(reply, 4, &e);
    assert_int_equal(e.type, VFIO_USER_IO_FD_TYPE_IOEVENTFD_SHADOW);
    assert_int_equal(e.fd_index, 4);
    assert_int_equal(e.shadow_mem_fd_index, 3); /* the same memfd */
    assert_int_equal(e.shadow_offset, 0x44);

    /* The fds are the device's: eventfds it watches, its shadow memory. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(eventfd_write(fds[i], 1), 0);
    }
    assert_int_equal(eventfd_write(fds[4], 5), 0);
    assert_int_equal(eventfd_read(f->efd[0], &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(eventfd_read(f->efd[1], &v), 0);
    assert_int_equal(eventfd_read(f->efd[2], &v), 0);
    assert_int_equal(eventfd_read(f->efd[3], &v), 0);
    assert_int_equal(v, 5);
    shadow_mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[3], 0);
    assert_true(shadow_mem != MAP_FAILED);
    shadow_mem[0x44 / 4] = 0xabcd;
    assert_int_equal(pread(f->shadow, &v, 4, 0x44), 4);
    assert_int_equal((uint32_t)v, 0xabcd);
    munmap(shadow_mem, 4096);
    close_all(fds, nr);

    /* Region 4 has its own; the server goes on serving. */
    nr = 16;
    assert_int_equal(io_fds(f->c, 4, sizeof(reply), reply, sizeof(reply),
                            fds, &nr), (ssize_t)(HEAD + ENTRY));
    assert_int_equal(nr, 1);
    close_all(fds, nr);
    assert_true(server_alive(f->c));
}

/* Too small an argsz: the size needed, no entries, no fds. */
static void
test_argsz(void **state)
{
    struct fx *f = *state;
    struct vfio_user_region_io_fds_reply head;
    uint8_t reply[4096];
    const uint32_t need = HEAD + 2 * ENTRY;
    const uint32_t small[] = { HEAD, HEAD + ENTRY, need - 1 };
    int fds[16];
    size_t nr;

    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, f->efd[0], 0, 4, 0, 0,
                                          -1, 0), 0);
    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, f->efd[1], 4, 4, 0, 0,
                                          -1, 0), 0);
    dev_serve(f->d, 1);
    f->c = connect_with(f->d, NULL);

    for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
        nr = 16;
        assert_int_equal(io_fds(f->c, 0, small[i], reply, sizeof(reply), fds,
                                &nr), (ssize_t)HEAD);
        assert_int_equal(nr, 0);
        memcpy(&head, reply, HEAD);
        assert_int_equal(head.argsz, need);
        assert_int_equal(head.count, 0);
        assert_int_equal(head.index, 0);
        assert_int_equal(head.flags, 0);
    }
    /* Below the fixed part: refused. */
    nr = 16;
    assert_int_equal(io_fds(f->c, 0, HEAD - 1, reply, sizeof(reply), fds, &nr),
                     -EINVAL);
    assert_int_equal(io_fds(f->c, 0, 0, reply, sizeof(reply), fds, &nr),
                     -EINVAL);
    /* Exactly enough, or more. */
    nr = 16;
    assert_int_equal(io_fds(f->c, 0, need, reply, sizeof(reply), fds, &nr),
                     (ssize_t)need);
    assert_int_equal(nr, 2);
    close_all(fds, nr);
    nr = 16;
    assert_int_equal(io_fds(f->c, 0, UINT32_MAX, reply, sizeof(reply), fds,
                            &nr), (ssize_t)need);
    close_all(fds, nr);
}

/* Every malformed request: its errno, nothing leaked, still serving. */
static void
test_bad_requests(void **state)
{
    struct fx *f = *state;
    const struct vfio_user_region_io_fds_request ok = {
        .argsz = 4096, .index = 0,
    };
    struct vfio_user_region_io_fds_request req;
    uint8_t big[64] = { 0 }, reply[256];
    size_t len;
    int before;

    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, f->efd[0], 0, 4, 0, 0,
                                          -1, 0), 0);
    dev_serve(f->d, 1);
    f->c = connect_with(f->d, NULL);
    before = count_open_fds();

#define BAD(payload, size, fds, nr_fds, err) do {                            \
        assert_int_equal(raw_request(f->c,                                  \
                                     VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0, \
                                     (payload), (size), (fds), (nr_fds),    \
                                     reply, sizeof(reply), &len), (err));   \
        assert_int_equal(len, 0);                                           \
        assert_true(server_alive(f->c));                                    \
    } while (0)

    /* Payload sizes other than 16. */
    BAD(NULL, 0, NULL, 0, EINVAL);
    BAD(&ok, sizeof(ok) - 1, NULL, 0, EINVAL);
    memcpy(big, &ok, sizeof(ok));
    BAD(big, sizeof(ok) + 1, NULL, 0, EINVAL);
    BAD(big, sizeof(big), NULL, 0, EINVAL);
    /* Fields the spec says must be zero. */
    req = ok;
    req.flags = 1;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    req = ok;
    req.flags = 0x80000000u;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    req = ok;
    req.count = 1;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    req = ok;
    req.count = UINT32_MAX;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    /* Regions that do not exist. */
    req = ok;
    req.index = VFU_PCI_DEV_NUM_REGIONS;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    req.index = UINT32_MAX;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    /* argsz below the reply's fixed part. */
    req = ok;
    req.argsz = HEAD - 1;
    BAD(&req, sizeof(req), NULL, 0, EINVAL);
    /* fds where none belong: refused, and closed by the server. */
    BAD(&ok, sizeof(ok), f->efd, 2, EINVAL);
#undef BAD

    /* A posted request gets no reply, even a good one. */
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_GET_REGION_IO_FDS,
                                     VFIO_USER_F_NO_REPLY, &ok, sizeof(ok),
                                     NULL, 0, NULL), 0);
    req = ok;
    req.flags = 1;
    assert_int_equal(vfu_client_send(f->c, VFIO_USER_DEVICE_GET_REGION_IO_FDS,
                                     VFIO_USER_F_NO_REPLY, &req, sizeof(req),
                                     NULL, 0, NULL), 0);
    assert_true(server_alive(f->c));
    /* The next reply the client sees is that of its next request. */
    int fds[4];
    size_t nr = 4;
    assert_int_equal(io_fds(f->c, 0, 4096, reply, sizeof(reply), fds, &nr),
                     (ssize_t)(HEAD + ENTRY));
    close_all(fds, nr);
    assert_int_equal(count_open_fds(), before);
}

/* Regions without ioeventfds: an empty list, no fds. */
static void
test_no_ioeventfds(void **state)
{
    struct fx *f = *state;
    struct vfio_user_region_io_fds_reply head;
    uint8_t reply[256];
    const uint32_t regions[] = { 0, 1, 2, 3, 4, 5, 6, VFU_PCI_DEV_CFG_REGION_IDX,
                                 VFU_PCI_DEV_VGA_REGION_IDX };
    int fds[4];
    size_t nr;

    /* Region 2 is mappable: its list is the one it has. */
    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 2, f->efd[0], 8192, 4, 0,
                                          0, -1, 0), 0);
    /* Region 4's one is left out once the region no longer holds it. */
    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 4, f->efd[1], 0xff0, 4,
                                          0, 0, -1, 0), 0);
    assert_int_equal(vfu_setup_region(f->d->ctx, 4, 0x800, mem_cb,
                                      VFU_REGION_FLAG_RW, NULL, 0, -1, 0), 0);
    dev_serve(f->d, 1);
    f->c = connect_with(f->d, NULL);
    for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
        uint32_t expect = regions[i] == 2;
        nr = 4;
        assert_int_equal(io_fds(f->c, regions[i], 4096, reply, sizeof(reply),
                                fds, &nr), (ssize_t)(HEAD + expect * ENTRY));
        memcpy(&head, reply, HEAD);
        assert_int_equal(head.count, expect);
        assert_int_equal(head.argsz, HEAD + expect * ENTRY);
        assert_int_equal(head.index, regions[i]);
        assert_int_equal(nr, expect);
        close_all(fds, nr);
    }
}

/*
 * A client that takes fewer fds per message than the region needs gets
 * the first ioeventfds whose fds fit, in the order created; the others
 * are not offered (their writes go by message).
 */
static void
test_max_msg_fds(void **state)
{
    struct fx *f = *state;
    vfu_ctx_t *ctx = f->d->ctx;
    struct vfio_user_region_io_fds_reply head;
    struct vfio_user_sub_region_ioeventfd e;
    uint8_t reply[1024];
    int fds[16];
    size_t nr;
    const struct { const char *caps; uint32_t count, fds; } cases[] = {
        { "{\"capabilities\":{\"max_msg_fds\":0}}", 0, 0 },
        { "{\"capabilities\":{}}", 2, 1 },      /* the spec's default: 1 */
        { "{\"capabilities\":{\"max_msg_fds\":1}}", 2, 1 },
        { "{\"capabilities\":{\"max_msg_fds\":2}}", 3, 2 },
        { "{\"capabilities\":{\"max_msg_fds\":3}}", 3, 2 },
        { "{\"capabilities\":{\"max_msg_fds\":4}}", 4, 4 },
        { "{\"capabilities\":{\"max_msg_fds\":1024}}", 4, 4 },
    };

    /* efd0 twice, efd1, then a shadow one that needs two fds at once. */
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[0], 0, 4, 0, 0, -1,
                                          0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[0], 4, 4, 0, 0, -1,
                                          0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[1], 8, 4, 0, 0, -1,
                                          0), 0);
    assert_int_equal(vfu_create_ioeventfd(ctx, 0, f->efd[2], 12, 4, 0, 0,
                                          f->shadow, 0), 0);
    dev_serve(f->d, sizeof(cases) / sizeof(cases[0]));

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("%s\n", cases[i].caps);
        f->c = connect_with(f->d, cases[i].caps);
        /* The size needed already counts only what will be offered. */
        nr = 16;
        assert_int_equal(io_fds(f->c, 0, HEAD, reply, sizeof(reply), fds,
                                &nr), (ssize_t)HEAD);
        memcpy(&head, reply, HEAD);
        assert_int_equal(head.argsz, HEAD + cases[i].count * ENTRY);
        nr = 16;
        assert_int_equal(io_fds(f->c, 0, sizeof(reply), reply, sizeof(reply),
                                fds, &nr),
                         (ssize_t)(HEAD + cases[i].count * ENTRY));
        memcpy(&head, reply, HEAD);
        assert_int_equal(head.count, cases[i].count);
        assert_int_equal(nr, cases[i].fds);
        for (uint32_t j = 0; j < head.count; j++) {
            get_entry(reply, j, &e);
            assert_int_equal(e.gpa_offset, 4 * j);
            assert_true(e.fd_index < nr);
        }
        close_all(fds, nr);
        vfu_client_close(f->c);
        f->c = NULL;
    }
}

/* The device's ioeventfds outlive clients and resets. */
static void
test_kept_across_clients(void **state)
{
    struct fx *f = *state;
    uint8_t first[256], again[256];
    int fds[4];
    size_t nr;
    uint64_t v;

    assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, f->efd[0], 0x20, 4,
                                          DM, 9, -1, 0), 0);
    dev_serve(f->d, 2);
    f->c = connect_with(f->d, NULL);
    nr = 4;
    assert_int_equal(io_fds(f->c, 0, 256, first, sizeof(first), fds, &nr),
                     (ssize_t)(HEAD + ENTRY));
    close_all(fds, nr);
    assert_int_equal(vfu_client_reset(f->c), 0);
    nr = 4;
    assert_int_equal(io_fds(f->c, 0, 256, again, sizeof(again), fds, &nr),
                     (ssize_t)(HEAD + ENTRY));
    close_all(fds, nr);
    assert_memory_equal(first, again, HEAD + ENTRY);
    vfu_client_close(f->c);

    /* The next client gets the same, and its fd still reaches the device. */
    f->c = connect_with(f->d, NULL);
    nr = 4;
    memset(again, 0, sizeof(again));
    assert_int_equal(io_fds(f->c, 0, 256, again, sizeof(again), fds, &nr),
                     (ssize_t)(HEAD + ENTRY));
    assert_memory_equal(first, again, HEAD + ENTRY);
    assert_int_equal(nr, 1);
    assert_int_equal(eventfd_write(fds[0], 1), 0);
    assert_int_equal(eventfd_read(f->efd[0], &v), 0);
    close_all(fds, nr);
}

/* vfu_destroy_ctx() closes every duplicate: counted in teardown too. */
static void
test_released_on_destroy(void **state)
{
    struct fx *f = *state;
    int before = count_open_fds();

    for (int i = 0; i < 4; i++) {
        assert_int_equal(vfu_create_ioeventfd(f->d->ctx, 0, f->efd[i], 8 * i,
                                              4, 0, 0, i % 2 ? f->shadow : -1,
                                              4 * i), 0);
    }
    assert_true(count_open_fds() > before);
    dev_free(f->d);
    f->d = dev_new();
    /* The new device holds what the old one did before any ioeventfd. */
    assert_int_equal(count_open_fds(), before);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_create_bad_args),
        T(test_create_collisions),
        T(test_create_limit),
        T(test_create_dups),
        T(test_reply),
        T(test_argsz),
        T(test_bad_requests),
        T(test_no_ioeventfds),
        T(test_max_msg_fds),
        T(test_kept_across_clients),
        T(test_released_on_destroy),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
