/*
 * Functional tests of the sample servers, run as processes and driven by a
 * real client over their socket:
 *
 *   vfu-gpio-pci-idio-16  identity and BARs as Linux's driver expects them;
 *                         outputs written show on the inputs; interrupt
 *                         control and status
 *   vfu-lspci             a client sizes every BAR and walks both chains
 *                         and sees what the sample declared (-d); config
 *                         space read by the client equals the sample's own
 *                         dump (-x); `lspci -vv -F` decodes the client's
 *                         dump into the same capability list
 *
 *   test_samples GPIO_SAMPLE LSPCI_SAMPLE LSPCI_PROGRAM
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "libvfio-user.h"
#include "vfio-user-client.h"

#define CFG         VFU_PCI_DEV_CFG_REGION_IDX
#define MAX_DECL    32

static const char *gpio_sample, *lspci_sample, *lspci_prog;

struct server {
    char dir[64];
    char sock[96];
    pid_t pid;
    vfu_client_t *c;
};

/* Starts @argv (its last argument the socket) and connects to it. */
static void
server_start(struct server *s, char *const argv[])
{
    struct timeval tv = { .tv_sec = 20 };
    struct stat sb;
    int i;

    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDERR_FILENO);      /* the samples log there */
        execv(argv[0], argv);
        _exit(127);
    }
    for (i = 0; i < 500 && stat(s->sock, &sb) != 0; i++) {
        usleep(10000);
    }
    assert_int_equal(stat(s->sock, &sb), 0);
    /* The file appears at bind(); connecting fails until listen(). */
    for (i = 0; i < 500; i++) {
        s->c = vfu_client_connect(s->sock);
        if (s->c != NULL || errno != ECONNREFUSED) {
            break;
        }
        usleep(10000);
    }
    assert_non_null(s->c);
    assert_int_equal(vfu_client_negotiate(s->c, NULL), 0);
    assert_int_equal(setsockopt(vfu_client_fd(s->c), SOL_SOCKET, SO_RCVTIMEO,
                                &tv, sizeof(tv)), 0);
}

/* The client leaves; the sample must exit 0. */
static void
server_stop(struct server *s)
{
    int status;

    vfu_client_close(s->c);
    assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
mk_dir(struct server *s)
{
    strcpy(s->dir, "/tmp/vfu-sample.XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
}

static uint32_t
cfg_rd(struct server *s, uint64_t off, uint32_t len)
{
    uint32_t v = 0;

    assert_int_equal(vfu_client_region_read(s->c, CFG, off, &v, len), 0);
    return v;
}

static void
cfg_wr(struct server *s, uint64_t off, uint32_t val, uint32_t len)
{
    assert_int_equal(vfu_client_region_write(s->c, CFG, off, &val, len,
                                             false), 0);
}

/* Sizes a BAR as a guest does and restores it. */
static uint32_t
size_bar(struct server *s, uint64_t off)
{
    uint32_t old = cfg_rd(s, off, 4), v;

    cfg_wr(s, off, 0xffffffff, 4);
    v = cfg_rd(s, off, 4);
    cfg_wr(s, off, old, 4);
    return v;
}

/* ------------------------------------------------------------------ */
/* gpio-pci-idio-16                                                    */
/* ------------------------------------------------------------------ */

static uint8_t
io_rd(struct server *s, uint64_t off)
{
    uint8_t v = 0xee;

    assert_int_equal(vfu_client_region_read(s->c, 2, off, &v, 1), 0);
    return v;
}

static void
io_wr(struct server *s, uint64_t off, uint8_t v)
{
    assert_int_equal(vfu_client_region_write(s->c, 2, off, &v, 1, false), 0);
}

static void
test_gpio(void **state)
{
    struct server s;
    struct vfio_region_info *info;
    char *argv[] = { (char *)gpio_sample, s.sock, NULL };
    uint8_t four[4];
    int fd;

    (void)state;
    mk_dir(&s);
    server_start(&s, argv);

    assert_int_equal(cfg_rd(&s, PCI_VENDOR_ID, 4), 0x0dc8494f);
    assert_int_equal(cfg_rd(&s, PCI_HEADER_TYPE, 1), PCI_HEADER_TYPE_NORMAL);
    /* BAR2 is 256 bytes of I/O; the others are absent. */
    assert_int_equal(size_bar(&s, PCI_BASE_ADDRESS_2), 0xffffff01);
    for (int i = 0; i < 6; i++) {
        if (i != 2) {
            assert_int_equal(size_bar(&s, PCI_BASE_ADDRESS_0 + 4 * i), 0);
        }
    }
    assert_int_equal(vfu_client_region_info(s.c, 2, &info, &fd), 0);
    assert_int_equal(info->size, 256);
    assert_int_equal(info->flags, VFIO_REGION_INFO_FLAG_READ |
                                  VFIO_REGION_INFO_FLAG_WRITE);
    assert_int_equal(fd, -1);
    free(info);
    assert_int_equal(vfu_client_region_info(s.c, 0, &info, &fd), 0);
    assert_int_equal(info->size, 0);
    free(info);
    /* What pcim_enable_device() does. */
    cfg_wr(&s, PCI_COMMAND, PCI_COMMAND_IO, 2);
    assert_int_equal(cfg_rd(&s, PCI_COMMAND, 2), PCI_COMMAND_IO);

    /* Outputs are read back and show on the inputs. */
    assert_int_equal(io_rd(&s, 0x1), 0);
    io_wr(&s, 0x0, 0xa5);
    io_wr(&s, 0x4, 0x3c);
    assert_int_equal(io_rd(&s, 0x0), 0xa5);
    assert_int_equal(io_rd(&s, 0x4), 0x3c);
    assert_int_equal(io_rd(&s, 0x1), 0xa5);
    assert_int_equal(io_rd(&s, 0x5), 0x3c);
    /* Inputs are not writable; a write there clears interrupts. */
    io_wr(&s, 0x5, 0xff);
    assert_int_equal(io_rd(&s, 0x5), 0x3c);

    /* No status while interrupts are off. */
    io_wr(&s, 0x0, 0x01);
    assert_int_equal(io_rd(&s, 0x6), 0);
    /* Reading 0x2 enables them: changes latch the status. */
    (void)io_rd(&s, 0x2);
    io_wr(&s, 0x4, 0x80);
    assert_int_equal(io_rd(&s, 0x6), 0x06);
    io_wr(&s, 0x0, 0x01);                   /* unchanged: nothing new */
    assert_int_equal(io_rd(&s, 0x6), 0x06);
    io_wr(&s, 0x1, 0x00);                   /* clear interrupt */
    assert_int_equal(io_rd(&s, 0x6), 0);
    io_wr(&s, 0x2, 0x00);                   /* disable */
    io_wr(&s, 0x0, 0x02);
    assert_int_equal(io_rd(&s, 0x6), 0);

    /* A wider access is a run of byte accesses. */
    assert_int_equal(vfu_client_region_read(s.c, 2, 0, four, 4), 0);
    assert_memory_equal(four, "\x02\x02\x00\x00", 4);
    assert_int_equal(io_rd(&s, 0x7), 0);
    assert_int_equal(io_rd(&s, 0xff), 0);
    /* A device reset clears the outputs. */
    assert_int_equal(vfu_client_reset(s.c), 0);
    assert_int_equal(io_rd(&s, 0x4), 0);
    assert_int_equal(io_rd(&s, 0x1), 0);

    server_stop(&s);
    unlink(s.sock);
    rmdir(s.dir);
}

/* ------------------------------------------------------------------ */
/* lspci                                                               */
/* ------------------------------------------------------------------ */

struct decl {
    struct { bool present; uint64_t size; char type[32]; } bars[6];
    uint64_t rom;
    struct { bool ext; unsigned off, id; } caps[MAX_DECL];
    size_t nr_caps;
};

static void
read_decl(const char *path, struct decl *d)
{
    FILE *f = fopen(path, "r");
    char line[128], kind[8], type[32];
    unsigned idx, off, id;
    unsigned long long size;

    assert_non_null(f);
    memset(d, 0, sizeof(*d));
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "bar %u %llx %31s", &idx, &size, type) == 3) {
            assert_true(idx < 6);
            d->bars[idx].present = true;
            d->bars[idx].size = size;
            strcpy(d->bars[idx].type, type);
        } else if (sscanf(line, "rom %llx", &size) == 1) {
            d->rom = size;
        } else if (sscanf(line, "cap %7s %x %x", kind, &off, &id) == 3) {
            assert_true(d->nr_caps < MAX_DECL);
            d->caps[d->nr_caps].ext = strcmp(kind, "ext") == 0;
            d->caps[d->nr_caps].off = off;
            d->caps[d->nr_caps].id = id;
            d->nr_caps++;
        } else {
            fail_msg("bad declaration line: %s", line);
        }
    }
    fclose(f);
}

/* Every BAR sizes as declared; undeclared ones (not upper halves) read 0. */
static void
check_bars(struct server *s, const struct decl *d)
{
    for (int i = 0; i < 6; i++) {
        uint64_t off = PCI_BASE_ADDRESS_0 + 4 * (uint64_t)i;
        uint32_t v = size_bar(s, off);
        uint64_t mask;

        if (!d->bars[i].present) {
            if (i > 0 && d->bars[i - 1].present &&
                strncmp(d->bars[i - 1].type, "mem64", 5) == 0) {
                continue;
            }
            assert_int_equal(v, 0);
            continue;
        }
        mask = ~(d->bars[i].size - 1);
        if (strcmp(d->bars[i].type, "io") == 0) {
            assert_int_equal(v, ((uint32_t)mask & ~3u) | 1);
        } else if (strncmp(d->bars[i].type, "mem64", 5) == 0) {
            uint32_t hi = size_bar(s, off + 4);
            uint32_t type = PCI_BASE_ADDRESS_MEM_TYPE_64 |
                            (strstr(d->bars[i].type, "pref") ?
                             PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
            assert_int_equal(v, ((uint32_t)mask & ~0xfu) | type);
            assert_int_equal(hi, (uint32_t)(mask >> 32));
        } else {
            uint32_t type = strstr(d->bars[i].type, "pref") ?
                            PCI_BASE_ADDRESS_MEM_PREFETCH : 0;
            assert_int_equal(v, ((uint32_t)mask & ~0xfu) | type);
        }
    }
    assert_int_equal(size_bar(s, PCI_ROM_ADDRESS),
                     d->rom ? (uint32_t)~(d->rom - 1) | 1 : 0);
}

/* Both chains hold exactly the declared capabilities, in order. */
static void
check_chains(struct server *s, const struct decl *d)
{
    size_t n = 0, guard;
    unsigned pos;

    pos = cfg_rd(s, PCI_CAPABILITY_LIST, 1);
    for (guard = 0; pos != 0 && guard < 48; guard++, n++) {
        uint32_t hdr = cfg_rd(s, pos, 2);
        while (n < d->nr_caps && d->caps[n].ext) {
            n++;
        }
        assert_true(n < d->nr_caps);
        assert_int_equal(pos, d->caps[n].off);
        assert_int_equal(hdr & 0xff, d->caps[n].id);
        pos = hdr >> 8;
    }
    for (; n < d->nr_caps; n++) {
        assert_true(d->caps[n].ext);
    }
    n = 0;
    pos = 0x100;
    for (guard = 0; pos != 0 && guard < 64; guard++, n++) {
        uint32_t hdr = cfg_rd(s, pos, 4);
        while (n < d->nr_caps && !d->caps[n].ext) {
            n++;
        }
        assert_true(n < d->nr_caps);
        assert_int_equal(pos, d->caps[n].off);
        assert_int_equal(PCI_EXT_CAP_ID(hdr), d->caps[n].id);
        pos = PCI_EXT_CAP_NEXT(hdr);
    }
    for (; n < d->nr_caps; n++) {
        assert_false(d->caps[n].ext);
    }
}

/* Parses an `lspci -xxxx` dump back into bytes. */
static void
read_dump(const char *path, uint8_t *cfg)
{
    FILE *f = fopen(path, "r");
    char line[128];
    unsigned off;
    int n;

    assert_non_null(f);
    memset(cfg, 0xee, 4096);
    assert_non_null(fgets(line, sizeof(line), f));     /* device line */
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p;
        if (line[0] == '\n') {
            break;
        }
        assert_int_equal(sscanf(line, "%x:%n", &off, &n), 1);
        assert_true(off % 16 == 0 && off < 4096);
        p = line + n;
        for (int i = 0; i < 16; i++) {
            unsigned b;
            int m;
            assert_int_equal(sscanf(p, " %2x%n", &b, &m), 1);
            cfg[off + (unsigned)i] = (uint8_t)b;
            p += m;
        }
    }
    fclose(f);
}

static void
write_dump(const char *path, const uint8_t *cfg)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f, "00:00.0 Non-VGA unclassified device: vfio-user device\n");
    for (unsigned off = 0; off < 4096; off += 16) {
        fprintf(f, off < 0x100 ? "%02x:" : "%03x:", off);
        for (unsigned i = 0; i < 16; i++) {
            fprintf(f, " %02x", cfg[off + i]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
    assert_int_equal(fclose(f), 0);
}

/* The name lspci gives a capability, as its -vv line begins. */
static const char *
lspci_name(bool ext, unsigned id)
{
    if (ext) {
        switch (id) {
        case PCI_EXT_CAP_ID_DSN:  return "Device Serial Number";
        case PCI_EXT_CAP_ID_VNDR: return "Vendor Specific Information";
        }
    } else {
        switch (id) {
        case PCI_CAP_ID_PM:   return "Power Management version";
        case PCI_CAP_ID_MSI:  return "MSI:";
        case PCI_CAP_ID_MSIX: return "MSI-X:";
        case PCI_CAP_ID_EXP:  return "Express (v2) Endpoint";
        case PCI_CAP_ID_VNDR: return "Vendor Specific Information";
        }
    }
    fail_msg("no lspci name for capability %#x", id);
    return NULL;
}

/*
 * Runs `lspci -vv -F @dump`, checks its capability lines against @d and
 * returns its whole output (malloc'd).
 */
static char *
lspci_decode(const char *dump, const struct decl *d)
{
    char cmd[512], line[512];
    char *out = calloc(1, 1 << 16);
    size_t used = 0, n = 0;
    FILE *p;

    assert_non_null(out);
    snprintf(cmd, sizeof(cmd), "'%s' -vv -F '%s' 2>/dev/null", lspci_prog,
             dump);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL) {
        unsigned off;
        int len = 0;
        char *end;

        if (used + strlen(line) < (1 << 16) - 1) {
            strcpy(out + used, line);
            used += strlen(line);
        }
        if (sscanf(line, " Capabilities: [%x%n", &off, &len) != 1) {
            continue;
        }
        end = strstr(line, "] ");
        assert_non_null(end);
        assert_true(n < d->nr_caps);
        assert_int_equal(off, d->caps[n].off);
        /* Extended ones are shown as "[100 v1]". */
        assert_int_equal(line[len] == ' ', d->caps[n].ext);
        if (strncmp(end + 2, lspci_name(d->caps[n].ext, d->caps[n].id),
                    strlen(lspci_name(d->caps[n].ext, d->caps[n].id))) != 0) {
            fail_msg("lspci: %s, expected %s", line,
                     lspci_name(d->caps[n].ext, d->caps[n].id));
        }
        n++;
    }
    if (pclose(p) != 0) {
        fail_msg("'%s' failed: is pciutils installed?", lspci_prog);
    }
    assert_int_equal(n, d->nr_caps);
    return out;
}

static void
test_lspci(void **state)
{
    struct server s;
    char decl_path[128], sdump[128], cdump[128];
    char *argv[] = { (char *)lspci_sample, "-d", decl_path, "-x", sdump,
                     s.sock, NULL };
    static uint8_t server_cfg[4096], client_cfg[4096];
    struct decl d;
    char *out;
    size_t msi = 0;

    (void)state;
    mk_dir(&s);
    snprintf(decl_path, sizeof(decl_path), "%s/decl", s.dir);
    snprintf(sdump, sizeof(sdump), "%s/server.dump", s.dir);
    snprintf(cdump, sizeof(cdump), "%s/client.dump", s.dir);
    server_start(&s, argv);
    read_decl(decl_path, &d);
    assert_true(d.nr_caps >= 7);

    check_bars(&s, &d);
    check_chains(&s, &d);

    /* The client sees the sample's config space byte for byte. */
    read_dump(sdump, server_cfg);
    assert_int_equal(vfu_client_region_read(s.c, CFG, 0, client_cfg, 4096), 0);
    assert_memory_equal(client_cfg, server_cfg, 4096);

    write_dump(cdump, client_cfg);
    out = lspci_decode(cdump, &d);
    assert_non_null(strstr(out, "MSI: Enable- Count=1/4 Maskable+ 64bit+"));
    assert_non_null(strstr(out, "MSI-X: Enable- Count=8 Masked-"));
    assert_non_null(strstr(out, "FLReset+"));
    assert_non_null(strstr(out, "Device Serial Number 01-23-45-67-89-ab-cd-ef"));
    assert_non_null(strstr(out, "ID=1234 Rev=1 Len=010"));
    free(out);

    /* The guest enables MSI with 4 vectors: lspci sees it. */
    for (size_t i = 0; i < d.nr_caps; i++) {
        if (!d.caps[i].ext && d.caps[i].id == PCI_CAP_ID_MSI) {
            msi = d.caps[i].off;
        }
    }
    assert_int_not_equal(msi, 0);
    cfg_wr(&s, msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | 2 << 4, 2);
    assert_int_equal(vfu_client_region_read(s.c, CFG, 0, client_cfg, 4096), 0);
    write_dump(cdump, client_cfg);
    out = lspci_decode(cdump, &d);
    assert_non_null(strstr(out, "MSI: Enable+ Count=4/4 Maskable+ 64bit+"));
    free(out);

    server_stop(&s);
    unlink(decl_path);
    unlink(sdump);
    unlink(cdump);
    unlink(s.sock);
    rmdir(s.dir);
}

int
main(int argc, char *argv[])
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpio),
        cmocka_unit_test(test_lspci),
    };

    if (argc != 4) {
        fprintf(stderr, "usage: %s GPIO_SAMPLE LSPCI_SAMPLE LSPCI\n", argv[0]);
        return 2;
    }
    gpio_sample = argv[1];
    lspci_sample = argv[2];
    lspci_prog = argv[3];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
