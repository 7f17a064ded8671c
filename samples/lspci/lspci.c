/*
 * A PCI Express endpoint with every capability the library supports (power
 * management, MSI, MSI-X, PCI Express, vendor-specific, device serial
 * number, extended vendor-specific), for looking at with lspci.
 *
 *   vfu-lspci [-v] [-d DECL] [-x DUMP] SOCKET
 *
 *   -d DECL  writes what the device declared, one item a line:
 *              bar IDX SIZE io|mem32|mem64[,pref]
 *              rom SIZE
 *              cap std|ext OFFSET ID
 *   -x DUMP  writes config space as `lspci -xxxx` prints it, for
 *            `lspci -vv -F DUMP`
 *
 * Both files are written after set-up, before the device serves; then it
 * serves one client and exits when the client leaves.
 */
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvfio-user.h"

#define BAR0_SIZE   0x4000          /* MSI-X table at 0, PBA at 0x2000 */
#define BAR2_SIZE   (1u << 20)
#define ROM_SIZE    0x8000
#define MSIX_VECS   8
#define SERIAL      0x0123456789abcdefull

static ssize_t
bar_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t offset,
           bool is_write)
{
    (void)ctx;
    (void)offset;
    if (!is_write) {
        memset(buf, 0, count);
    }
    return (ssize_t)count;
}

static void
log_to_stderr(vfu_ctx_t *ctx, int level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "lspci[%d]: %s\n", level, msg);
}

static FILE *decl;

static void
declare_cap(const char *kind, ssize_t off, unsigned id)
{
    if (off < 0) {
        err(1, "vfu_pci_add_capability(%s %#x)", kind, id);
    }
    if (decl != NULL) {
        fprintf(decl, "cap %s %#zx %#x\n", kind, (size_t)off, id);
    }
}

static void
add_caps(vfu_ctx_t *ctx)
{
    struct pmcap pm = { .hdr.id = PCI_CAP_ID_PM };
    struct msicap msi = { .hdr.id = PCI_CAP_ID_MSI };
    struct msixcap msix = { .hdr.id = PCI_CAP_ID_MSIX };
    struct pxcap px = { .hdr.id = PCI_CAP_ID_EXP };
    struct dsncap dsn = { .hdr = { .id = PCI_EXT_CAP_ID_DSN, .version = 1 } };
    uint8_t vsc[8] = { PCI_CAP_ID_VNDR, 0, sizeof(vsc), 'v', 'f', 'u' };
    union {
        struct pcie_ext_cap_vsc_hdr h;
        uint8_t raw[16];
    } evsc = { .h = { .hdr = { .id = PCI_EXT_CAP_ID_VNDR, .version = 1 },
                      .id = 0x1234, .rev = 1, .len = 16 } };
    uint8_t *cfg;
    ssize_t off;

    pm.pc.vs = 3;
    pm.pc.d1s = 1;
    pm.pc.psup = 0x09;              /* PME from D0 and D3hot */
    pm.pmcs.nsfrst = 1;
    declare_cap("std", vfu_pci_add_capability(ctx, 0, 0, &pm), PCI_CAP_ID_PM);

    msi.mc.mmc = 2;                 /* 4 vectors */
    msi.mc.c64 = 1;
    msi.mc.pvm = 1;
    declare_cap("std", vfu_pci_add_capability(ctx, 0, 0, &msi),
                PCI_CAP_ID_MSI);

    msix.mxc.ts = MSIX_VECS - 1;
    msix.mtab.tbir = 0;
    msix.mtab.to = 0;
    msix.mpba.pbir = 0;
    msix.mpba.pbao = 0x2000 >> 3;
    declare_cap("std", vfu_pci_add_capability(ctx, 0, 0, &msix),
                PCI_CAP_ID_MSIX);

    px.pxcaps.ver = 2;
    px.pxcaps.dpt = PCI_EXP_TYPE_ENDPOINT;
    px.pxdcap.mps = 1;              /* 256 bytes */
    px.pxdcap.etfs = 1;
    px.pxdcap.flrc = 1;
    px.pxdcap2.ctrs = 0x2;          /* completion timeout range B */
    px.pxdcap2.ctds = 1;
    px.pxlcap.stuff = PCI_EXP_LNKCAP_SLS_2_5GB | 1 << 4;    /* x1 */
    px.pxls.stuff = PCI_EXP_LNKSTA_CLS_2_5GB | PCI_EXP_LNKSTA_NLW_X1;
    off = vfu_pci_add_capability(ctx, 0, 0, &px);
    declare_cap("std", off, PCI_CAP_ID_EXP);
    /* Registers past struct pxcap are the device's to fill in. */
    cfg = (uint8_t *)vfu_pci_get_config_space(ctx);
    cfg[off + PCI_EXP_LNKCAP2] = PCI_EXP_LNKCAP2_SLS_2_5GB;

    declare_cap("std", vfu_pci_add_capability(ctx, 0, 0, vsc),
                PCI_CAP_ID_VNDR);

    dsn.sn_lo = (uint32_t)SERIAL;
    dsn.sn_hi = (uint32_t)(SERIAL >> 32);
    declare_cap("ext", vfu_pci_add_capability(ctx, 0, VFU_CAP_FLAG_EXTENDED,
                                              &dsn), PCI_EXT_CAP_ID_DSN);
    declare_cap("ext", vfu_pci_add_capability(ctx, 0, VFU_CAP_FLAG_EXTENDED,
                                              &evsc), PCI_EXT_CAP_ID_VNDR);
}

/* Config space in the text form `lspci -xxxx` prints and `lspci -F` reads. */
static void
write_dump(vfu_ctx_t *ctx, const char *path)
{
    const uint8_t *cfg = (const uint8_t *)vfu_pci_get_config_space(ctx);
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        err(1, "%s", path);
    }
    fprintf(f, "00:00.0 Non-VGA unclassified device: vfio-user device\n");
    for (size_t off = 0; off < PCI_CFG_SPACE_EXP_SIZE; off += 16) {
        fprintf(f, off < 0x100 ? "%02zx:" : "%03zx:", off);
        for (size_t i = 0; i < 16; i++) {
            fprintf(f, " %02x", cfg[off + i]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
    if (fclose(f) != 0) {
        err(1, "%s", path);
    }
}

int
main(int argc, char *argv[])
{
    const char *decl_path = NULL, *dump_path = NULL;
    int level = LOG_INFO;
    vfu_ctx_t *ctx;
    int opt;

    while ((opt = getopt(argc, argv, "vd:x:")) != -1) {
        switch (opt) {
        case 'v':
            level = LOG_DEBUG;
            break;
        case 'd':
            decl_path = optarg;
            break;
        case 'x':
            dump_path = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc - 1) {
usage:
        fprintf(stderr, "usage: %s [-v] [-d DECL] [-x DUMP] SOCKET\n",
                argv[0]);
        return 2;
    }
    if (decl_path != NULL && (decl = fopen(decl_path, "w")) == NULL) {
        err(1, "%s", decl_path);
    }

    ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[argc - 1], 0, NULL,
                         VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        err(1, "vfu_create_ctx");
    }
    vfu_setup_log(ctx, log_to_stderr, level);
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS, PCI_HEADER_TYPE_NORMAL, 1) < 0) {
        err(1, "vfu_pci_init");
    }
    vfu_pci_set_id(ctx, 0x1234, 0x0002, 0x1234, 0x0002);
    vfu_pci_set_class(ctx, 0xff, 0x00, 0x00);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE,
                         bar_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM,
                         NULL, 0, -1, 0) < 0 ||
        vfu_setup_region(ctx, VFU_PCI_DEV_BAR2_REGION_IDX, BAR2_SIZE,
                         bar_access, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                         VFU_REGION_FLAG_64_BITS | VFU_REGION_FLAG_PREFETCH,
                         NULL, 0, -1, 0) < 0 ||
        vfu_setup_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, ROM_SIZE,
                         bar_access, VFU_REGION_FLAG_READ, NULL, 0, -1, 0) < 0) {
        err(1, "vfu_setup_region");
    }
    if (decl != NULL) {
        fprintf(decl, "bar 0 %#x mem32\n", BAR0_SIZE);
        fprintf(decl, "bar 2 %#x mem64,pref\n", BAR2_SIZE);
        fprintf(decl, "rom %#x\n", ROM_SIZE);
    }
    add_caps(ctx);
    if (vfu_realize_ctx(ctx) < 0) {
        err(1, "vfu_realize_ctx");
    }
    if (decl != NULL && fclose(decl) != 0) {
        err(1, "%s", decl_path);
    }
    if (dump_path != NULL) {
        write_dump(ctx, dump_path);
    }

    if (vfu_attach_ctx(ctx) < 0) {
        err(1, "vfu_attach_ctx");
    }
    while (vfu_run_ctx(ctx) >= 0) {
        ;
    }
    if (errno != ENOTCONN) {
        warn("vfu_run_ctx");
        vfu_destroy_ctx(ctx);
        return 1;
    }
    vfu_destroy_ctx(ctx);
    return 0;
}
