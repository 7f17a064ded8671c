/*
 * Unit tests for lib/server/pci.c and pci_access.c: BAR and ROM sizing,
 * header write masks, the split between the emulated header and the config region callback, and
 * the public PCI set-up calls. Contexts are built by hand, without a socket.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "private.h"

#define GiB (UINT64_C(1) << 30)

/* What the config region callback saw, and what it should do. */
static struct {
    int calls;
    size_t count;
    loff_t offset;
    bool is_write;
    uint8_t data[64];
    ssize_t ret;        /* -1: fail with err; otherwise returned as is */
    int err;
    bool use_ret;       /* false: return count */
} cb_state;

static ssize_t
test_cfg_cb(vfu_ctx_t *ctx, char *buf, size_t count, loff_t offset,
            bool is_write)
{
    size_t i;

    (void)ctx;
    cb_state.calls++;
    cb_state.count = count;
    cb_state.offset = offset;
    cb_state.is_write = is_write;
    if (is_write) {
        memcpy(cb_state.data, buf, count < 64 ? count : 64);
    } else {
        for (i = 0; i < count; i++) {
            buf[i] = (char)(0xa0 + i);
        }
    }
    if (cb_state.use_ret) {
        if (cb_state.ret < 0) {
            errno = cb_state.err;
        }
        return cb_state.ret;
    }
    return (ssize_t)count;
}

static int
setup(void **state)
{
    vfu_ctx_t *ctx = calloc(1, sizeof(*ctx));
    int i;

    assert_non_null(ctx);
    assert_int_equal(pci_alloc(ctx), 0);
    for (i = 0; i < VFU_PCI_DEV_NUM_REGIONS; i++) {
        ctx->regions[i].fd = -1;
    }
    memset(&cb_state, 0, sizeof(cb_state));
    *state = ctx;
    return 0;
}

static int
teardown(void **state)
{
    vfu_ctx_t *ctx = *state;

    pci_free(ctx);
    free(ctx);
    return 0;
}

static void
set_region(vfu_ctx_t *ctx, int idx, size_t size, int flags)
{
    ctx->regions[idx].size = size;
    ctx->regions[idx].flags = flags;
    pci_region_changed(ctx, idx);
}

static ssize_t
wr32(vfu_ctx_t *ctx, uint64_t off, uint32_t val)
{
    char buf[4];

    memcpy(buf, &val, 4);   /* tests run on little-endian hosts */
    return region_config_access(ctx, buf, 4, off, true);
}

static ssize_t
wr16(vfu_ctx_t *ctx, uint64_t off, uint16_t val)
{
    char buf[2];

    memcpy(buf, &val, 2);
    return region_config_access(ctx, buf, 2, off, true);
}

static ssize_t
wr8(vfu_ctx_t *ctx, uint64_t off, uint8_t val)
{
    char buf[1] = { (char)val };

    return region_config_access(ctx, buf, 1, off, true);
}

static uint32_t
rd32(vfu_ctx_t *ctx, uint64_t off)
{
    char buf[4];
    uint32_t val;

    assert_int_equal(region_config_access(ctx, buf, 4, off, false), 4);
    memcpy(&val, buf, 4);
    return val;
}

static uint16_t
rd16(vfu_ctx_t *ctx, uint64_t off)
{
    char buf[2];
    uint16_t val;

    assert_int_equal(region_config_access(ctx, buf, 2, off, false), 2);
    memcpy(&val, buf, 2);
    return val;
}

static uint8_t
rd8(vfu_ctx_t *ctx, uint64_t off)
{
    char buf[1];

    assert_int_equal(region_config_access(ctx, buf, 1, off, false), 1);
    return (uint8_t)buf[0];
}

static void
test_bar_mem32_sizing(void **state)
{
    vfu_ctx_t *ctx = *state;

    set_region(ctx, 0, 0x1000, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_0, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfffff000);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_0, 0xfebf1234), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfebf1000);
    /* Recomputing keeps the address. */
    pci_region_changed(ctx, 0);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfebf1000);
    /* A byte with no address bits in an implemented BAR: ignored. */
    assert_int_equal(wr8(ctx, PCI_BASE_ADDRESS_0, 0x55), 1);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfebf1000);
    /* The absent BAR next to it takes the sizing write and stays zero. */
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_1, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_1), 0);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_1, 0), 4);
}

static void
test_bar_mem64_prefetch_sizing(void **state)
{
    vfu_ctx_t *ctx = *state;
    int flags = VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                VFU_REGION_FLAG_64_BITS | VFU_REGION_FLAG_PREFETCH;

    /* 1 MiB: the upper dword is fully writable. */
    set_region(ctx, 2, 1 << 20, flags);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_2), 0xc);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_3), 0);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_2, 0xffffffff), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_3, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_2), 0xfff0000c);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_3), 0xffffffff);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_2, 0x80000000), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_3, 0x00000012), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_2), 0x8000000c);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_3), 0x12);

    /* The upper slot's own (absent) region does not wipe it. */
    pci_region_changed(ctx, 3);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_3), 0x12);

    /* 8 GiB: no lower address bits, lowest upper bit is 2^33. */
    set_region(ctx, 4, 8 * GiB, flags);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_4, 0xffffffff), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_5, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_4), 0x0000000c);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_5), 0xfffffffe);

    /* Turning BAR2 into a 32-bit BAR frees its upper slot. */
    set_region(ctx, 2, 1 << 20, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_2), 0x80000000);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_3), 0);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_3, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_3), 0);
}

static void
test_bar_size_rounding(void **state)
{
    vfu_ctx_t *ctx = *state;

    set_region(ctx, 0, 0x3000, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM);
    set_region(ctx, 1, 5, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_0, 0xffffffff), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_1, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xffffc000);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_1), 0xfffffff0);
}

static void
test_bar_io_sizing(void **state)
{
    vfu_ctx_t *ctx = *state;

    set_region(ctx, 1, 0x20, VFU_REGION_FLAG_RW);
    set_region(ctx, 2, 2, VFU_REGION_FLAG_RW);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_1), 0x1);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_1, 0xffffffff), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_2, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_1), 0xffffffe1);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_2), 0xfffffffd);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_1, 0xc040), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_1), 0xc041);
}

static void
test_rom_sizing(void **state)
{
    vfu_ctx_t *ctx = *state;

    /* Absent: takes the sizing write and reads back zero. */
    pci_region_changed(ctx, VFU_PCI_DEV_ROM_REGION_IDX);
    assert_int_equal(wr32(ctx, PCI_ROM_ADDRESS, 0xfffff800), 4);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0);

    set_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, 0x10000, VFU_REGION_FLAG_READ);
    assert_int_equal(wr32(ctx, PCI_ROM_ADDRESS, 0xfffff800), 4);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0xffff0000);
    assert_int_equal(wr32(ctx, PCI_ROM_ADDRESS, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0xffff0001);
    assert_int_equal(wr32(ctx, PCI_ROM_ADDRESS, 0xfe0207ff), 4);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0xfe020001);

    /* Small ROMs still decode 2 KiB. */
    set_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, 100, VFU_REGION_FLAG_READ);
    assert_int_equal(wr32(ctx, PCI_ROM_ADDRESS, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0xfffff801);

    set_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, 0, 0);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0);
}

static void
test_command_writable_bits(void **state)
{
    vfu_ctx_t *ctx = *state;

    assert_int_equal(wr16(ctx, PCI_COMMAND, 0xffff), 2);
    assert_int_equal(rd16(ctx, PCI_COMMAND), 0x0547);
    assert_int_equal(wr16(ctx, PCI_COMMAND, PCI_COMMAND_MEMORY), 2);
    assert_int_equal(rd16(ctx, PCI_COMMAND), PCI_COMMAND_MEMORY);
    /* A reserved bit alone is ignored, not refused: the byte is writable. */
    assert_int_equal(wr16(ctx, PCI_COMMAND, 0x0800 | PCI_COMMAND_MEMORY), 2);
    assert_int_equal(rd16(ctx, PCI_COMMAND), PCI_COMMAND_MEMORY);
}

static void
test_status_w1c(void **state)
{
    vfu_ctx_t *ctx = *state;
    uint16_t sts = 0xf918;      /* all error bits, CAP_LIST, INTERRUPT */

    memcpy(ctx->pci.cfg + PCI_STATUS, &sts, 2);
    /* Writing 0 changes nothing. */
    assert_int_equal(wr16(ctx, PCI_STATUS, 0), 2);
    assert_int_equal(rd16(ctx, PCI_STATUS), 0xf918);
    assert_int_equal(wr16(ctx, PCI_STATUS, PCI_STATUS_PARITY |
                                           PCI_STATUS_SIG_TARGET_ABORT), 2);
    assert_int_equal(rd16(ctx, PCI_STATUS), 0xf018);
    assert_int_equal(wr16(ctx, PCI_STATUS, 0xffff), 2);
    assert_int_equal(rd16(ctx, PCI_STATUS), 0x0018);
}

static void
test_readonly_write_refused(void **state)
{
    vfu_ctx_t *ctx = *state;

    vfu_pci_set_id(ctx, 0x1234, 0x5678, 0x9abc, 0xdef0);
    ctx->pci.cfg[PCI_INTERRUPT_PIN] = 1;
    assert_int_equal(wr16(ctx, PCI_VENDOR_ID, 0xabcd), -EPERM);
    assert_int_equal(rd16(ctx, PCI_VENDOR_ID), 0x1234);
    assert_int_equal(wr32(ctx, PCI_VENDOR_ID, 0), -EPERM);
    assert_int_equal(rd32(ctx, PCI_VENDOR_ID), 0x56781234);
    assert_int_equal(wr8(ctx, PCI_INTERRUPT_PIN, 2), -EPERM);
    assert_int_equal(rd8(ctx, PCI_INTERRUPT_PIN), 1);
    assert_int_equal(wr8(ctx, PCI_CAPABILITY_LIST, 0x40), -EPERM);
    assert_int_equal(rd8(ctx, PCI_CAPABILITY_LIST), 0);
}

static void
test_readonly_same_value_accepted(void **state)
{
    vfu_ctx_t *ctx = *state;

    vfu_pci_set_id(ctx, 0x1234, 0x5678, 0x9abc, 0xdef0);
    assert_int_equal(wr32(ctx, PCI_VENDOR_ID, 0x56781234), 4);
    assert_int_equal(rd32(ctx, PCI_VENDOR_ID), 0x56781234);
    assert_int_equal(wr32(ctx, PCI_SUBSYSTEM_VENDOR_ID, 0xdef09abc), 4);
    assert_int_equal(rd32(ctx, PCI_SUBSYSTEM_VENDOR_ID), 0xdef09abc);
}

static void
test_dword_write_cls_not_htype(void **state)
{
    vfu_ctx_t *ctx = *state;

    ctx->pci.cfg[PCI_HEADER_TYPE] = 0x80;
    /* BIST 0x00, header type 0x7f, latency 0x20, cache line 0x10. */
    assert_int_equal(wr32(ctx, PCI_CACHE_LINE_SIZE, 0x007f2010), 4);
    assert_int_equal(rd8(ctx, PCI_CACHE_LINE_SIZE), 0x10);
    assert_int_equal(rd8(ctx, PCI_LATENCY_TIMER), 0x20);
    assert_int_equal(rd8(ctx, PCI_HEADER_TYPE), 0x80);
    assert_int_equal(rd8(ctx, PCI_BIST), 0);
}

static void
test_cross_header_no_cb(void **state)
{
    vfu_ctx_t *ctx = *state;
    char buf[8];
    const char want[8] = { 0x0b, 0x01, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44 };

    ctx->pci.cfg[PCI_INTERRUPT_LINE] = 0x0b;
    ctx->pci.cfg[PCI_INTERRUPT_PIN] = 0x01;
    memcpy(ctx->pci.cfg + 0x40, "\x11\x22\x33\x44", 4);

    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, false), 8);
    assert_memory_equal(buf, want, 8);

    /* Writes past the header need a callback; the header stays as it was. */
    memcpy(buf, "\x05\x01\x00\x00\x55\x66\x77\x88", 8);
    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, true), -EINVAL);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_LINE], 0x0b);
    assert_int_equal(ctx->pci.cfg[0x40], 0x11);

    /* Entirely past the header. */
    assert_int_equal(region_config_access(ctx, buf, 2, 0x41, false), 2);
    assert_memory_equal(buf, "\x22\x33", 2);
    assert_int_equal(region_config_access(ctx, buf, 2, 0x41, true), -EINVAL);
}

static void
test_cross_header_with_cb(void **state)
{
    vfu_ctx_t *ctx = *state;
    char buf[8];
    const char want[8] = { 0x0b, 0x01, 0x00, 0x00,
                           (char)0xa0, (char)0xa1, (char)0xa2, (char)0xa3 };

    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].cb = test_cfg_cb;
    ctx->pci.cfg[PCI_INTERRUPT_LINE] = 0x0b;
    ctx->pci.cfg[PCI_INTERRUPT_PIN] = 0x01;

    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, false), 8);
    assert_memory_equal(buf, want, 8);
    assert_int_equal(cb_state.calls, 1);
    assert_int_equal(cb_state.offset, 0x40);
    assert_int_equal(cb_state.count, 4);
    assert_false(cb_state.is_write);

    memcpy(buf, "\x05\x01\x00\x00\x55\x66\x77\x88", 8);
    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, true), 8);
    assert_int_equal(cb_state.calls, 2);
    assert_int_equal(cb_state.offset, 0x40);
    assert_int_equal(cb_state.count, 4);
    assert_true(cb_state.is_write);
    assert_memory_equal(cb_state.data, "\x55\x66\x77\x88", 4);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_LINE], 0x05);

    /* A failing callback fails the whole write, header included. */
    cb_state.use_ret = true;
    cb_state.ret = -1;
    cb_state.err = EBUSY;
    memcpy(buf, "\x09\x01\x00\x00\x55\x66\x77\x88", 8);
    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, true), -EBUSY);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_LINE], 0x05);
    cb_state.err = 0;
    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, true), -EIO);
    cb_state.ret = 3;
    assert_int_equal(region_config_access(ctx, buf, 8, 0x3c, true), -EIO);
    assert_int_equal(ctx->pci.cfg[PCI_INTERRUPT_LINE], 0x05);

    /* Header-only accesses never reach the callback. */
    cb_state.calls = 0;
    assert_int_equal(rd32(ctx, PCI_VENDOR_ID), 0);
    assert_int_equal(cb_state.calls, 0);
}

static void
test_always_cb(void **state)
{
    vfu_ctx_t *ctx = *state;
    char buf[4];

    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].cb = test_cfg_cb;
    ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX].flags =
        VFU_REGION_FLAG_RW | VFU_REGION_FLAG_ALWAYS_CB;
    vfu_pci_set_id(ctx, 0x1234, 0x5678, 0, 0);

    assert_int_equal(region_config_access(ctx, buf, 4, PCI_VENDOR_ID, false),
                     4);
    assert_memory_equal(buf, "\xa0\xa1\xa2\xa3", 4);
    assert_int_equal(cb_state.calls, 1);
    assert_int_equal(cb_state.offset, 0);
    assert_int_equal(cb_state.count, 4);

    /* Even a write to the command register bypasses the emulation. */
    memcpy(buf, "\x07\x00", 2);
    assert_int_equal(region_config_access(ctx, buf, 2, PCI_COMMAND, true), 2);
    assert_int_equal(cb_state.calls, 2);
    assert_int_equal(cb_state.offset, PCI_COMMAND);
    assert_true(cb_state.is_write);
    assert_int_equal(ctx->pci.cfg[PCI_COMMAND], 0);

    cb_state.use_ret = true;
    cb_state.ret = -1;
    cb_state.err = ENOTSUP;
    assert_int_equal(region_config_access(ctx, buf, 4, 0x80, false), -ENOTSUP);
}

static void
test_pci_init_errors(void **state)
{
    vfu_ctx_t *ctx = *state;

    errno = 0;
    assert_int_equal(vfu_pci_init(NULL, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_init(ctx, (vfu_pci_type_t)4,
                                  PCI_HEADER_TYPE_NORMAL, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_init(ctx, (vfu_pci_type_t)-1,
                                  PCI_HEADER_TYPE_NORMAL, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_BRIDGE, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 256), -1);
    assert_int_equal(errno, EINVAL);
    assert_false(ctx->pci.initialized);

    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL,
                                  PCI_HEADER_TYPE_NORMAL, 0x42), 0);
    assert_int_equal(ctx->pci.cfg_size, PCI_CFG_SPACE_SIZE);
    assert_int_equal(ctx->pci.cfg[PCI_REVISION_ID], 0x42);
    assert_int_equal(ctx->pci.cfg[PCI_HEADER_TYPE], PCI_HEADER_TYPE_NORMAL);

    errno = 0;
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS,
                                  PCI_HEADER_TYPE_NORMAL, 0), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(ctx->pci.cfg_size, PCI_CFG_SPACE_SIZE);
    assert_int_equal(ctx->pci.cfg[PCI_REVISION_ID], 0x42);
}

static void
test_pci_init_express(void **state)
{
    vfu_ctx_t *ctx = *state;

    assert_int_equal(ctx->pci.cfg_size, PCI_CFG_SPACE_SIZE);
    /* A BAR set up before init survives it. */
    set_region(ctx, 0, 0x1000, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                               VFU_REGION_FLAG_PREFETCH);
    assert_int_equal(vfu_pci_init(ctx, VFU_PCI_TYPE_EXPRESS,
                                  PCI_HEADER_TYPE_NORMAL, 1), 0);
    assert_int_equal(ctx->pci.cfg_size, PCI_CFG_SPACE_EXP_SIZE);
    assert_int_equal(ctx->pci.type, VFU_PCI_TYPE_EXPRESS);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_0, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfffff008);
    /* The extended space is readable up to 4 KiB. */
    ctx->pci.cfg[0xffc] = 0x5a;
    assert_int_equal(rd32(ctx, 0xffc), 0x5a);
}

static void
test_set_id_class(void **state)
{
    vfu_ctx_t *ctx = *state;
    vfu_pci_config_space_t *cs;

    vfu_pci_set_id(ctx, 0x1af4, 0x1000, 0x1234, 0x0001);
    vfu_pci_set_class(ctx, 0x02, 0x00, 0x01);
    vfu_pci_set_id(NULL, 1, 2, 3, 4);
    vfu_pci_set_class(NULL, 1, 2, 3);

    cs = vfu_pci_get_config_space(ctx);
    assert_ptr_equal(cs, ctx->pci.cfg);
    assert_int_equal(cs->hdr.id.vid, 0x1af4);
    assert_int_equal(cs->hdr.id.did, 0x1000);
    assert_int_equal(cs->hdr.ss.vid, 0x1234);
    assert_int_equal(cs->hdr.ss.sid, 0x0001);
    assert_int_equal(cs->hdr.cc.bcc, 0x02);
    assert_int_equal(cs->hdr.cc.scc, 0x00);
    assert_int_equal(cs->hdr.cc.pi, 0x01);
    assert_int_equal(rd32(ctx, PCI_CLASS_REVISION), 0x02000100);

    errno = 0;
    assert_null(vfu_pci_get_config_space(NULL));
    assert_int_equal(errno, EINVAL);
}

static void
test_pci_reset(void **state)
{
    vfu_ctx_t *ctx = *state;
    uint16_t sts = 0xf918;

    set_region(ctx, 0, 0x1000, VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM |
                               VFU_REGION_FLAG_64_BITS |
                               VFU_REGION_FLAG_PREFETCH);
    set_region(ctx, 2, 0x100, VFU_REGION_FLAG_RW);
    set_region(ctx, VFU_PCI_DEV_ROM_REGION_IDX, 0x1000, VFU_REGION_FLAG_READ);
    vfu_pci_set_id(ctx, 0x1234, 0x5678, 0, 0);
    ctx->pci.cfg[PCI_INTERRUPT_PIN] = 1;
    memcpy(ctx->pci.cfg + PCI_STATUS, &sts, 2);

    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_0, 0xfe000000), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_1, 0x1), 4);
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_2, 0xc000), 4);
    assert_int_equal(wr32(ctx, PCI_ROM_ADDRESS, 0xfd000001), 4);
    assert_int_equal(wr16(ctx, PCI_COMMAND, 0x0407), 2);
    assert_int_equal(wr8(ctx, PCI_INTERRUPT_LINE, 11), 1);
    assert_int_equal(wr8(ctx, PCI_CACHE_LINE_SIZE, 0x10), 1);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfe00000c);

    pci_reset(ctx);

    assert_int_equal(rd16(ctx, PCI_COMMAND), 0);
    assert_int_equal(rd16(ctx, PCI_STATUS), 0x0018);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xc);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_1), 0);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_2), 0x1);
    assert_int_equal(rd32(ctx, PCI_ROM_ADDRESS), 0);
    assert_int_equal(rd8(ctx, PCI_INTERRUPT_LINE), 0);
    assert_int_equal(rd8(ctx, PCI_CACHE_LINE_SIZE), 0);
    assert_int_equal(rd8(ctx, PCI_INTERRUPT_PIN), 1);
    assert_int_equal(rd32(ctx, PCI_VENDOR_ID), 0x56781234);
    /* Sizing still works after a reset. */
    assert_int_equal(wr32(ctx, PCI_BASE_ADDRESS_0, 0xffffffff), 4);
    assert_int_equal(rd32(ctx, PCI_BASE_ADDRESS_0), 0xfffff00c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bar_mem32_sizing),
        T(test_bar_mem64_prefetch_sizing),
        T(test_bar_size_rounding),
        T(test_bar_io_sizing),
        T(test_rom_sizing),
        T(test_command_writable_bits),
        T(test_status_w1c),
        T(test_readonly_write_refused),
        T(test_readonly_same_value_accepted),
        T(test_dword_write_cls_not_htype),
        T(test_cross_header_no_cb),
        T(test_cross_header_with_cb),
        T(test_always_cb),
        T(test_pci_init_errors),
        T(test_pci_init_express),
        T(test_set_id_class),
        T(test_pci_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
