/* Functional-test harness (see harness.h). */
#include <errno.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

static ssize_t
buf_access(uint8_t *mem, char *buf, size_t count, loff_t off, bool is_write)
{
    if (is_write) {
        memcpy(mem + off, buf, count);
    } else {
        memcpy(buf, mem + off, count);
    }
    return (ssize_t)count;
}

/* The DMA engine's command; 0 or an errno. */
static int
dma_engine_run(vfu_ctx_t *ctx, struct test_dev *dev, uint32_t cmd)
{
    uint64_t src, dst, len;
    uint8_t sgl[2][8 * 64];         /* room for 8 entries each */
    struct iovec in[8], out[8];
    int nin = 0, nout;

    memcpy(&src, dev->bar0 + DMA_REG_SRC, 8);
    memcpy(&dst, dev->bar0 + DMA_REG_DST, 8);
    memcpy(&len, dev->bar0 + DMA_REG_LEN, 8);
    if (dma_sg_size() > 64) {
        return EOVERFLOW;
    }
    nout = vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)dst, len,
                           (dma_sg_t *)sgl[1], 8, PROT_WRITE);
    if (nout < 0) {
        return nout == -1 ? errno : ENOSPC;
    }
    if (cmd == DMA_CMD_MARK) {
        vfu_sgl_mark_dirty(ctx, (dma_sg_t *)sgl[1], (size_t)nout);
        return 0;
    }
    if (cmd != DMA_CMD_COPY && cmd != DMA_CMD_RW && cmd != DMA_CMD_RW_FLAGS) {
        return EINVAL;
    }
    nin = vfu_addr_to_sgl(ctx, (vfu_dma_addr_t)(uintptr_t)src, len,
                          (dma_sg_t *)sgl[0], 8, PROT_READ);
    if (nin < 0) {
        return nin == -1 ? errno : ENOSPC;
    }
    if (cmd == DMA_CMD_RW || cmd == DMA_CMD_RW_FLAGS) {
        uint8_t *buf = len <= DMA_RW_MAX ? malloc(len) : NULL;
        int flags = VFU_SGL_DIRECT_ACCESS;
        int err = 0;

        if (cmd == DMA_CMD_RW_FLAGS) {
            memcpy(&flags, dev->bar0 + DMA_REG_FLAGS, 4);
        }
        if (buf == NULL) {
            return ENOMEM;
        }
        if (vfu_sgl_read(ctx, (dma_sg_t *)sgl[0], (size_t)nin, buf,
                         flags) < 0 ||
            vfu_sgl_write(ctx, (dma_sg_t *)sgl[1], (size_t)nout, buf,
                          flags) < 0) {
            err = errno;
        }
        free(buf);
        return err;
    }
    if (vfu_sgl_get(ctx, (dma_sg_t *)sgl[0], in, (size_t)nin, 0) < 0 ||
        vfu_sgl_get(ctx, (dma_sg_t *)sgl[1], out, (size_t)nout, 0) < 0) {
        return errno;
    }
    /* Gather from the source pieces into the destination pieces. */
    for (int i = 0, j = 0; len > 0;) {
        size_t n = in[i].iov_len < out[j].iov_len ? in[i].iov_len
                                                  : out[j].iov_len;
        memmove(out[j].iov_base, in[i].iov_base, n);
        in[i].iov_base = (uint8_t *)in[i].iov_base + n;
        in[i].iov_len -= n;
        out[j].iov_base = (uint8_t *)out[j].iov_base + n;
        out[j].iov_len -= n;
        i += in[i].iov_len == 0;
        j += out[j].iov_len == 0;
        len -= n;
    }
    vfu_sgl_put(ctx, (dma_sg_t *)sgl[0], in, (size_t)nin);
    vfu_sgl_put(ctx, (dma_sg_t *)sgl[1], out, (size_t)nout);
    return 0;
}

static ssize_t
bar0_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct test_dev *dev = vfu_get_private(ctx);
    if (dev->fail_bar0_errno != 0) {
        errno = dev->fail_bar0_errno;
        return -1;
    }
    dev->nr_bar0_writes += is_write;
    buf_access(dev->bar0, buf, count, off, is_write);
    if (dev->dma_engine && is_write && off == DMA_REG_CMD && count == 4) {
        uint32_t cmd, result;
        memcpy(&cmd, buf, 4);
        result = (uint32_t)dma_engine_run(ctx, dev, cmd);
        memcpy(dev->bar0 + DMA_REG_RESULT, &result, 4);
    }
    return (ssize_t)count;
}

static ssize_t
bar1_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct test_dev *dev = vfu_get_private(ctx);
    return buf_access(dev->bar1, buf, count, off, is_write);
}

static ssize_t
bar4_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct test_dev *dev = vfu_get_private(ctx);
    return buf_access(dev->bar4, buf, count, off, is_write);
}

static ssize_t
rom_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off, bool is_write)
{
    struct test_dev *dev = vfu_get_private(ctx);
    return buf_access(dev->rom, buf, count, off, is_write);
}

static void
dma_register_cb(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    struct test_dev *dev = vfu_get_private(ctx);
    dev->nr_dma_register++;
    dev->last_dma_register = *info;
}

static void
dma_unregister_cb(vfu_ctx_t *ctx, vfu_dma_info_t *info)
{
    struct test_dev *dev = vfu_get_private(ctx);
    dev->nr_dma_unregister++;
    dev->last_dma_unregister = *info;
    /* The mapping must still be there. */
    dev->dma_unregister_peek = info->vaddr != NULL ?
                               *(volatile uint8_t *)info->vaddr : -1;
}

static int
reset_cb(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct test_dev *dev = vfu_get_private(ctx);
    dev->nr_resets[type]++;
    return 0;
}

static void *
serve(void *arg)
{
    struct test_dev *dev = arg;

    while (dev->nr_attaches < dev->max_clients) {
        if (vfu_attach_ctx(dev->ctx) < 0) {
            dev->attach_errno = errno;
            continue;       /* a client failed negotiation: next one */
        }
        dev->nr_attaches++;
        while (vfu_run_ctx(dev->ctx) >= 0) {
            ;
        }
        dev->run_errno = errno;
    }
    return NULL;
}

static void
must(bool ok, const char *what)
{
    if (!ok) {
        perror(what);
        abort();
    }
}

struct test_dev *
dev_start(int max_clients)
{
    struct test_dev *dev = calloc(1, sizeof(*dev));
    struct iovec sparse[2] = { { (void *)0, 4096 }, { (void *)8192, 4096 } };

    must(dev != NULL, "calloc");
    strcpy(dev->dir, "/tmp/vfu-test.XXXXXX");
    must(mkdtemp(dev->dir) != NULL, "mkdtemp");
    snprintf(dev->sock, sizeof(dev->sock), "%s/sock", dev->dir);
    dev->max_clients = max_clients;
    dev->bar4 = calloc(1, BAR4_SIZE);
    dev->bar2_fd = memfd_create("bar2", MFD_CLOEXEC);
    must(dev->bar4 != NULL && dev->bar2_fd >= 0, "alloc");
    must(ftruncate(dev->bar2_fd, BAR2_SIZE) == 0, "ftruncate");
    for (size_t i = 0; i < ROM_SIZE; i++) {
        dev->rom[i] = (uint8_t)(i ^ 0x5a);
    }

    dev->ctx = vfu_create_ctx(VFU_TRANS_SOCK, dev->sock, 0, dev,
                              VFU_DEV_TYPE_PCI);
    must(dev->ctx != NULL, "vfu_create_ctx");
    must(vfu_pci_init(dev->ctx, VFU_PCI_TYPE_CONVENTIONAL,
                      PCI_HEADER_TYPE_NORMAL, 1) == 0, "vfu_pci_init");
    vfu_pci_set_id(dev->ctx, DEV_VID, DEV_DID, DEV_VID, 0x1100);
    vfu_pci_set_class(dev->ctx, 0x05, 0x80, 0x00);
    must(vfu_setup_region(dev->ctx, VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE,
                          bar0_cb, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                          NULL, 0, -1, 0) == 0, "BAR0");
    must(vfu_setup_region(dev->ctx, VFU_PCI_DEV_BAR1_REGION_IDX, BAR1_SIZE,
                          bar1_cb, VFU_REGION_FLAG_RW, NULL, 0, -1, 0) == 0,
         "BAR1");
    must(vfu_setup_region(dev->ctx, VFU_PCI_DEV_BAR2_REGION_IDX, BAR2_SIZE,
                          NULL, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                          VFU_REGION_FLAG_64_BITS | VFU_REGION_FLAG_PREFETCH,
                          sparse, 2, dev->bar2_fd, 0) == 0, "BAR2");
    must(vfu_setup_region(dev->ctx, VFU_PCI_DEV_BAR4_REGION_IDX, BAR4_SIZE,
                          bar4_cb, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                          NULL, 0, -1, 0) == 0, "BAR4");
    must(vfu_setup_region(dev->ctx, VFU_PCI_DEV_ROM_REGION_IDX, ROM_SIZE,
                          rom_cb, VFU_REGION_FLAG_READ, NULL, 0, -1, 0) == 0,
         "ROM");
    must(vfu_setup_device_reset_cb(dev->ctx, reset_cb) == 0, "reset cb");
    must(vfu_setup_device_dma(dev->ctx, 65535, dma_register_cb,
                                dma_unregister_cb) == 0,
         "DMA callbacks");
    must(vfu_realize_ctx(dev->ctx) == 0, "vfu_realize_ctx");
    must(pthread_create(&dev->thread, NULL, serve, dev) == 0, "pthread");
    dev->thread_running = true;
    return dev;
}

void
dev_join(struct test_dev *dev)
{
    if (dev->thread_running) {
        pthread_join(dev->thread, NULL);
        dev->thread_running = false;
    }
}

void
dev_stop(struct test_dev *dev)
{
    if (dev->thread_running) {
        /* Unblock a server still waiting for clients. */
        while (dev->nr_attaches < dev->max_clients) {
            vfu_client_t *c = vfu_client_connect(dev->sock);
            if (c == NULL) {
                break;
            }
            vfu_client_negotiate(c, NULL);
            vfu_client_close(c);
            usleep(1000);
        }
        dev_join(dev);
    }
    vfu_destroy_ctx(dev->ctx);
    close(dev->bar2_fd);
    rmdir(dev->dir);
    free(dev->bar4);
    free(dev);
}

vfu_client_t *
client_open(struct test_dev *dev)
{
    vfu_client_t *c = vfu_client_connect(dev->sock);
    must(c != NULL, "vfu_client_connect");
    must(vfu_client_negotiate(c, NULL) == 0, "vfu_client_negotiate");
    return c;
}

int
count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    must(d != NULL, "opendir");
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

int
raw_request(vfu_client_t *c, uint16_t cmd, uint32_t flags, const void *payload,
            size_t len, const int *fds, size_t nr_fds, void *reply, size_t cap,
            size_t *reply_len)
{
    struct vfio_user_header hdr;
    uint16_t id;
    ssize_t n;

    if (vfu_client_send(c, cmd, flags, payload, len, fds, nr_fds, &id) < 0) {
        return -1;
    }
    n = vfu_client_recv(c, &hdr, reply, cap, NULL, NULL);
    if (n < 0 || hdr.msg_id != id || (hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY) {
        return -1;
    }
    if (reply_len != NULL) {
        *reply_len = (size_t)n;
    }
    return !!(hdr.flags & VFIO_USER_F_ERROR) ? (int)hdr.error_no : 0;
}

bool
server_alive(vfu_client_t *c)
{
    uint32_t ids = 0;
    return vfu_client_region_read(c, VFU_PCI_DEV_CFG_REGION_IDX, 0, &ids, 4) == 0 &&
           ids == (DEV_VID | (DEV_DID << 16));
}
