/*
 * vfu-client SOCKET: looks at a vfio-user device the way a VMM does when it
 * first meets one. It connects, negotiates, lists the device's regions,
 * decodes the PCI configuration header, sizes the BARs as a guest's PCI
 * code would, reads a word of BAR0 and resets the device.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvfio-user.h"       /* region indexes only */
#include "pci_defs.h"
#include "vfio-user-client.h"

static const char *const region_names[] = {
    "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "config", "VGA",
};

static void
die(const char *what)
{
    fprintf(stderr, "vfu-client: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A size as people read it: "4 KiB", "1 MiB", or bytes when not round. */
static const char *
human(uint64_t v, char *buf, size_t len)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    unsigned u = 0;

    while (u < 4 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%" PRIu64 " %s", v, units[u]);
    return buf;
}

/* Walks a region's capability chain, printing the sparse mmap areas. */
static void
print_region_caps(const struct vfio_region_info *info)
{
    const uint8_t *base = (const uint8_t *)info;
    uint32_t off = info->cap_offset;

    /* Each capability must lie inside argsz and come after the last. */
    while (off >= sizeof(*info) &&
           off + sizeof(struct vfio_info_cap_header) <= info->argsz) {
        const struct vfio_info_cap_header *cap = (const void *)(base + off);

        if (cap->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
            const struct vfio_region_info_cap_sparse_mmap *sp =
                (const void *)cap;
            if (off + sizeof(*sp) > info->argsz ||
                sp->nr_areas > (info->argsz - off - sizeof(*sp)) /
                               sizeof(sp->areas[0])) {
                printf("      sparse mmap capability truncated\n");
                return;
            }
            printf("      sparse mmap: %u area(s)\n", sp->nr_areas);
            for (uint32_t i = 0; i < sp->nr_areas; i++) {
                if (i == 8) {       /* enough to get the picture */
                    printf("        ... %u more\n", sp->nr_areas - i);
                    break;
                }
                printf("        [%#" PRIx64 ", +%#" PRIx64 ")\n",
                       (uint64_t)sp->areas[i].offset,
                       (uint64_t)sp->areas[i].size);
            }
        } else {
            printf("      capability id %u version %u\n", cap->id,
                   cap->version);
        }
        if (cap->next <= off) {
            return;         /* 0 ends the chain; going back would loop */
        }
        off = cap->next;
    }
}

/* Prints every region; remembers the size and flags of each BAR. */
static void
print_regions(vfu_client_t *c, uint32_t nr, uint64_t *sizes, uint32_t *flags)
{
    char buf[32];

    printf("Regions:\n");
    for (uint32_t i = 0; i < nr; i++) {
        struct vfio_region_info *info;
        int fd;

        if (vfu_client_region_info(c, i, &info, &fd) < 0) {
            die("region info");
        }
        if (i < VFU_PCI_DEV_NUM_REGIONS) {
            printf("  %2u %-7s", i, region_names[i]);
        } else {
            printf("  %2u %-7s", i, "(other)");
        }
        if (info->size == 0) {
            printf("absent\n");
        } else {
            printf("%-8s %s%s%s%s  offset %#llx  fd %s\n",
                   human(info->size, buf, sizeof(buf)),
                   info->flags & VFIO_REGION_INFO_FLAG_READ ? "R" : "-",
                   info->flags & VFIO_REGION_INFO_FLAG_WRITE ? "W" : "-",
                   info->flags & VFIO_REGION_INFO_FLAG_MMAP ? " mmap" : "",
                   info->flags & VFIO_REGION_INFO_FLAG_CAPS ? " caps" : "",
                   (unsigned long long)info->offset, fd >= 0 ? "yes" : "no");
        }
        if (info->flags & VFIO_REGION_INFO_FLAG_CAPS) {
            print_region_caps(info);
        }
        if (i < PCI_BARS_NR) {
            sizes[i] = info->size;
            flags[i] = info->flags;
        }
        if (fd >= 0) {
            close(fd);      /* a VMM would mmap() it; we only looked */
        }
        free(info);
    }
}

static void
print_config(const vfu_pci_hdr_t *h)
{
    static const char *const pins[] = { "none", "INTA#", "INTB#", "INTC#",
                                        "INTD#" };

    printf("Config header:\n");
    printf("  vendor %04x device %04x  revision %02x\n", h->id.vid, h->id.did,
           h->rid);
    printf("  class %02x subclass %02x prog-if %02x\n", h->cc.bcc, h->cc.scc,
           h->cc.pi);
    printf("  command %04x%s%s%s%s  status %04x%s\n", h->cmd.raw,
           h->cmd.iose ? " I/O" : "", h->cmd.mse ? " memory" : "",
           h->cmd.bme ? " bus-master" : "", h->cmd.id ? " INTx-off" : "",
           h->sts.raw, h->sts.cl ? " (capabilities list)" : "");
    printf("  header type %02x (type %u%s)\n", h->htype.raw,
           h->htype.raw & 0x7f, h->htype.raw & 0x80 ? ", multi-function" : "");
    for (int i = 0; i < PCI_BARS_NR; i++) {
        printf("  BAR%d %08x\n", i, h->bars[i].raw);
    }
    printf("  subsystem vendor %04x id %04x\n", h->ss.vid, h->ss.sid);
    printf("  interrupt pin %s line %u\n",
           h->intr.ipin <= 4 ? pins[h->intr.ipin] : "invalid",
           h->intr.iline);
}

static uint32_t
cfg_read32(vfu_client_t *c, uint32_t off)
{
    uint32_t v;

    if (vfu_client_region_read(c, VFU_PCI_DEV_CFG_REGION_IDX, off, &v,
                               sizeof(v)) < 0) {
        die("config read");
    }
    return v;
}

static void
cfg_write(vfu_client_t *c, uint32_t off, uint32_t v, uint32_t len)
{
    if (vfu_client_region_write(c, VFU_PCI_DEV_CFG_REGION_IDX, off, &v, len,
                                false) < 0) {
        die("config write");
    }
}

/*
 * Sizes the BARs as a guest does: with decoding off, write all ones, read
 * back which address bits stuck at zero, restore. The lowest writable
 * address bit is the size; a 64-bit BAR takes the next slot as its upper
 * half.
 */
static void
size_bars(vfu_client_t *c, const vfu_pci_hdr_t *h)
{
    char buf[32];

    printf("BARs as a guest sizes them:\n");
    cfg_write(c, PCI_COMMAND,
              h->cmd.raw & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 2);
    for (int i = 0; i < PCI_BARS_NR; i++) {
        uint32_t off = PCI_BASE_ADDRESS_0 + 4 * i;
        uint32_t orig = h->bars[i].raw;
        bool io = orig & PCI_BASE_ADDRESS_SPACE_IO;
        bool is64 = !io && (orig & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
                           PCI_BASE_ADDRESS_MEM_TYPE_64;
        uint64_t mask;

        if (is64 && i == PCI_BARS_NR - 1) {
            printf("  BAR%d: 64-bit BAR in the last slot (invalid)\n", i);
            break;
        }
        cfg_write(c, off, 0xffffffff, 4);
        mask = cfg_read32(c, off);
        cfg_write(c, off, orig, 4);
        mask &= io ? PCI_BASE_ADDRESS_IO_MASK : PCI_BASE_ADDRESS_MEM_MASK;
        if (is64) {
            uint32_t orig_hi = h->bars[i + 1].raw;

            cfg_write(c, off + 4, 0xffffffff, 4);
            mask |= (uint64_t)cfg_read32(c, off + 4) << 32;
            cfg_write(c, off + 4, orig_hi, 4);
        }
        if (mask == 0) {
            printf("  BAR%d: not implemented\n", i);
            continue;
        }
        if (is64) {
            printf("  BAR%d/BAR%d: ", i, i + 1);
        } else {
            printf("  BAR%d: ", i);
        }
        printf("%s%s, size %s\n",
               io ? "I/O" : is64 ? "memory 64-bit" : "memory 32-bit",
               !io && (orig & PCI_BASE_ADDRESS_MEM_PREFETCH) ?
               " prefetchable" : "",
               human(mask & ~(mask - 1), buf, sizeof(buf)));
        i += is64;          /* the upper half is not a BAR of its own */
    }
    cfg_write(c, PCI_COMMAND, h->cmd.raw, 2);
}

int
main(int argc, char *argv[])
{
    const struct vfu_client_server_info *si;
    struct vfio_user_device_info dev;
    uint64_t bar_sizes[PCI_BARS_NR] = { 0 };
    uint32_t bar_flags[PCI_BARS_NR] = { 0 };
    vfu_pci_hdr_t hdr;
    vfu_client_t *c;
    char buf[32];

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    c = vfu_client_connect(argv[1]);
    if (c == NULL) {
        die(argv[1]);
    }
    if (vfu_client_negotiate(c, NULL) < 0) {
        die("negotiation");
    }
    si = vfu_client_server_info(c);
    printf("Server speaks vfio-user %u.%u\n", si->major, si->minor);
    printf("  max_msg_fds %u, max_data_xfer_size %s, pgsizes %#" PRIx64
           ", max_dma_maps %" PRIu64 ", write_multiple %s\n",
           si->max_msg_fds, human(si->max_data_xfer_size, buf, sizeof(buf)),
           si->pgsizes, si->max_dma_maps, si->write_multiple ? "yes" : "no");

    if (vfu_client_device_info(c, &dev) < 0) {
        die("device info");
    }
    printf("Device: %u regions, %u IRQ types, flags %#x%s%s%s\n",
           dev.num_regions, dev.num_irqs, dev.flags,
           dev.flags & VFIO_DEVICE_FLAGS_PCI ? " PCI" : "",
           dev.flags & VFIO_DEVICE_FLAGS_RESET ? " reset" : "",
           dev.flags & VFIO_DEVICE_FLAGS_CAPS ? " caps" : "");
    print_regions(c, dev.num_regions, bar_sizes, bar_flags);

    if (dev.num_regions > VFU_PCI_DEV_CFG_REGION_IDX) {
        if (vfu_client_region_read(c, VFU_PCI_DEV_CFG_REGION_IDX, 0, &hdr,
                                   sizeof(hdr)) < 0) {
            die("config header read");
        }
        print_config(&hdr);
        size_bars(c, &hdr);
    }

    if (bar_sizes[0] >= 4 && (bar_flags[0] & VFIO_REGION_INFO_FLAG_READ)) {
        uint32_t v;

        if (vfu_client_region_read(c, VFU_PCI_DEV_BAR0_REGION_IDX, 0, &v,
                                   sizeof(v)) < 0) {
            die("BAR0 read");
        }
        printf("BAR0 offset 0: %08x\n", v);
    }

    if (vfu_client_reset(c) < 0) {
        die("reset");
    }
    printf("Device reset: done\n");
    vfu_client_close(c);
    return 0;
}
