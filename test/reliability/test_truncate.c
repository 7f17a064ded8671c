/*
 * A client that leaves after every byte of a session. A whole session's
 * client bytes are recorded (with where each fd went: the memfd of a DMA
 * map, the eventfds of SET_IRQS), then replayed to one server again and
 * again, cut after byte 0, 1, 2, ... and the connection closed. After
 * each cut the server must have let go of everything the cut client gave
 * it (every fd it received closed, every DMA region unregistered and
 * unmapped) and must serve the next client: a short session (VERSION and
 * a config space read) that has to succeed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "failpoint.h"
#include "rel.h"

/* One recorded sendmsg(): its bytes in rec[], and its fds' kinds. */
struct chunk {
    size_t off, len;
    int nr_fds;
    off_t memfd_size[8];        /* -1: an eventfd */
};

static uint8_t rec[1 << 20];
static size_t rec_len;
static struct chunk chunks[4096];
static size_t nr_chunks;

static void
record(const void *bytes, size_t len, const int *fds, size_t nr)
{
    struct chunk *c;

    if (rec_len + len > sizeof(rec) || nr_chunks == 4096) {
        abort();
    }
    c = &chunks[nr_chunks++];
    c->off = rec_len;
    c->len = len;
    c->nr_fds = 0;
    for (size_t i = 0; i < nr && i < 8; i++) {
        struct stat st;
        c->memfd_size[c->nr_fds++] = fstat(fds[i], &st) == 0 &&
                                     S_ISREG(st.st_mode) ? st.st_size : -1;
    }
    memcpy(rec + rec_len, bytes, len);
    rec_len += len;
}

/* Sends the first @cut bytes of the session, fresh fds where they went. */
static void
replay(const char *path, size_t cut)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    strcpy(addr.sun_path, path);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr,
                            sizeof(addr)) < 0) {
        abort();
    }
    for (size_t i = 0; i < nr_chunks && chunks[i].off < cut; i++) {
        const struct chunk *c = &chunks[i];
        union {
            char buf[CMSG_SPACE(8 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        size_t len = c->off + c->len <= cut ? c->len : cut - c->off;
        struct iovec iov = { rec + c->off, len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        int fds[8];

        for (int f = 0; f < c->nr_fds; f++) {
            if (c->memfd_size[f] >= 0) {
                fds[f] = memfd_create("vfu-rel-replay", MFD_CLOEXEC);
                if (ftruncate(fds[f], c->memfd_size[f]) < 0) {
                    abort();
                }
            } else {
                fds[f] = eventfd(0, EFD_CLOEXEC);
            }
        }
        if (c->nr_fds > 0) {
            struct cmsghdr *cm;

            memset(ctl.buf, 0, sizeof(ctl.buf));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = CMSG_SPACE(c->nr_fds * sizeof(int));
            cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(c->nr_fds * sizeof(int));
            memcpy(CMSG_DATA(cm), fds, c->nr_fds * sizeof(int));
        }
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
            abort();
        }
        for (int f = 0; f < c->nr_fds; f++) {
            close(fds[f]);
        }
    }
    close(sock);
}

/* The next client: VERSION and a read of the vendor ID. */
static int
next_client(const char *path)
{
    vfu_client_t *c = vfu_client_connect(path);
    uint16_t vid = 0;
    int ret = -1;

    if (c != NULL && vfu_client_negotiate(c, NULL) == 0 &&
        vfu_client_region_read(c, VFU_PCI_DEV_CFG_REGION_IDX, 0, &vid,
                               2) == 0 && vid == 0x1af4) {
        ret = 0;
    }
    vfu_client_close(c);
    return ret;
}

int
main(void)
{
    struct rel_server s;
    struct rel_session session;
    int fds0, maps0, problems = 0, clients = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    rel_server_start(&s, false);
    if (s.setup_errno != 0) {
        printf("device set-up failed\n");
        return 1;
    }
    /* The session, recorded (without DMA by message: nobody answers it). */
    fp_record_thread(record);
    rel_session_run(s.path, false, &session);
    fp_record_thread(NULL);
    rel_server_wait_clients(&s, ++clients);
    if (rel_session_failed(&session) >= 0) {
        printf("the recorded session failed\n");
        return 1;
    }
    printf("a session is %zu bytes in %zu sends\n", rec_len, nr_chunks);

    fds0 = rel_count_fds();
    maps0 = rel_count_maps();
    for (size_t cut = 0; cut <= rec_len; cut++) {
        replay(s.path, cut);
        if (next_client(s.path) < 0) {
            printf("  cut at %zu: the next client was not served\n", cut);
            problems++;
        }
        clients += 2;
        rel_server_wait_clients(&s, clients);
        if (rel_count_fds() != fds0 || rel_count_maps() != maps0 ||
            s.dma_maps != 0 || s.run_errno != 0) {
            printf("  cut at %zu: %d fds, %d mappings, %d DMA regions left"
                   "%s\n", cut, rel_count_fds() - fds0,
                   rel_count_maps() - maps0, s.dma_maps,
                   s.run_errno != 0 ? ", vfu_run_ctx() failed" : "");
            problems++;
            fds0 = rel_count_fds();
            maps0 = rel_count_maps();
        }
    }
    rel_server_stop(&s);
    (void)next_client(s.path);
    rel_server_join(&s);
    printf("%zu cuts, %d problems\n", rec_len + 1, problems);
    return problems != 0;
}
