/*
 * The config space access path: splits an access of any size and
 * alignment into runs of emulated bytes (through the register table and
 * the capabilities' write behaviour) and device-owned bytes (the config
 * region's callback), applies the refusal rule, and after a write lets the
 * interrupt code deliver what enables and masks held back. A write that
 * asks for a reset returns what it asks for; the reset orchestrator
 * (reset.c) does it.
 */
#include <errno.h>
#include <string.h>

#include "private.h"

/* Calls the config region callback, turning its result into count/-errno. */
static ssize_t
call_cfg_cb(vfu_ctx_t *ctx, vfu_region_access_cb_t *cb, char *buf,
            size_t count, uint64_t offset, bool is_write)
{
    ssize_t ret;

    errno = 0;
    ret = cb(ctx, buf, count, (loff_t)offset, is_write);
    if (ret < 0) {
        return errno > 0 ? -errno : -EIO;
    }
    if ((size_t)ret != count) {
        return -EIO;
    }
    return ret;
}

/*
 * Whether a write to emulated byte @off may be accepted, its read-only bits
 * ignored. Bytes with writable or W1C bits may, and so may every byte of
 * the six BAR registers and the ROM BAR, implemented or not: a guest sizes
 * every one of them by writing all-ones and reading back (0 for an absent
 * BAR), and the lower dword of a 64-bit BAR of 4 GiB or more has no
 * writable bit at all.
 */
static bool
byte_accepts_write(vfu_ctx_t *ctx, size_t off)
{
    return (off < ctx->pci.attr_size &&
            (ctx->pci.wmask[off] | ctx->pci.w1cmask[off]) != 0) ||
           (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_5 + 4) ||
           (off >= PCI_ROM_ADDRESS && off < PCI_ROM_ADDRESS + 4);
}

/* Length of the run of bytes from @off (at most @max) with one owner. */
static size_t
owner_run(vfu_ctx_t *ctx, size_t off, size_t max)
{
    size_t n = 1;

    while (n < max &&
           pci_byte_emulated(ctx, off + n) == pci_byte_emulated(ctx, off)) {
        n++;
    }
    return n;
}

static ssize_t
config_read(vfu_ctx_t *ctx, vfu_region_access_cb_t *cb, char *buf,
            size_t count, size_t offset)
{
    size_t i, n;
    ssize_t ret;

    for (i = 0; i < count; i += n) {
        n = owner_run(ctx, offset + i, count - i);
        if (pci_byte_emulated(ctx, offset + i) || cb == NULL) {
            memcpy(buf + i, ctx->pci.cfg + offset + i, n);
        } else {
            ret = call_cfg_cb(ctx, cb, buf + i, n, offset + i, false);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return (ssize_t)count;
}

/*
 * A write: every emulated byte takes the client's value through the masks,
 * device-owned bytes go to the callback. The refusal rule: when no byte
 * written accepts writes (no writable or W1C bit, not a BAR, not the
 * device's) yet some byte would differ, the client is trying to change
 * read-only state and gets EPERM; writing back the current value is
 * accepted because clients write whole dwords that mix read-only and
 * writable bytes. Device-owned bytes without a callback: EINVAL. Nothing
 * changes when the write fails. With @dry_run only the checks are made.
 * A write that asks for a reset (Initiate FLR, D3hot->D0 without
 * No_Soft_Reset) quiesces the device before it changes anything, and
 * returns what it asks for in *@asks: the reset itself is the caller's.
 */
static ssize_t
config_write(vfu_ctx_t *ctx, vfu_region_access_cb_t *cb, const char *buf,
             size_t count, size_t offset, bool dry_run,
             struct caps_pending *asks)
{
    const uint8_t *in = (const uint8_t *)buf;
    uint8_t val[PCI_CFG_SPACE_EXP_SIZE];
    struct caps_pending pending = { 0 };
    bool accepts = false, differs = false, has_dev = false;
    size_t i, n;
    ssize_t ret;

    for (i = 0; i < count; i++) {
        size_t off = offset + i;
        uint8_t old = ctx->pci.cfg[off];
        uint8_t wm, cm;

        if (!pci_byte_emulated(ctx, off)) {
            has_dev = true;
            continue;
        }
        wm = ctx->pci.wmask[off];
        cm = ctx->pci.w1cmask[off];
        val[i] = (uint8_t)(((old & ~wm) | (in[i] & wm)) & ~(in[i] & cm));
        accepts |= byte_accepts_write(ctx, off);
        differs |= in[i] != old;
    }
    if (!accepts && !has_dev && differs) {
        vfu_log_debug(ctx, "refused write of %zu bytes to read-only config "
                      "space at %#zx", count, offset);
        return -EPERM;
    }
    if (has_dev && cb == NULL) {
        vfu_log_debug(ctx, "write of %zu bytes at %#zx reaches config space "
                      "with no callback", count, offset);
        return -EINVAL;
    }
    caps_write_prepare(ctx, val, count, offset, &pending);
    if (dry_run) {
        return (ssize_t)count;
    }
    if (pending.flr || pending.soft_reset) {
        /* Quiet the device before anything changes: the write may wait. */
        ret = device_quiesce(ctx);
        if (ret != 0) {
            return ret;
        }
    }

    /*
     * The device's bytes go first, so that a failing callback leaves the
     * emulated registers as they were.
     */
    for (i = 0; i < count; i += n) {
        n = owner_run(ctx, offset + i, count - i);
        if (!pci_byte_emulated(ctx, offset + i)) {
            ret = call_cfg_cb(ctx, cb, (char *)buf + i, n, offset + i, true);
            if (ret < 0) {
                return ret;
            }
        }
    }
    for (i = 0; i < count; i++) {
        if (pci_byte_emulated(ctx, offset + i)) {
            ctx->pci.cfg[offset + i] = val[i];
        }
    }
    if (pending.flr || pending.soft_reset) {
        /* The reset orchestrator's, which then delivers (reset.c). */
        *asks = pending;
    } else {
        /* Enables and masks may have changed: deliver what they held back. */
        irq_config_written(ctx);
    }
    return (ssize_t)count;
}

/*
 * Config space access of @count bytes at @offset, already checked to lie
 * inside config space; with @dry_run a write is only checked.
 */
static ssize_t
config_access(vfu_ctx_t *ctx, char *buf, size_t count, uint64_t offset,
              bool is_write, bool dry_run, struct caps_pending *asks)
{
    const struct vfu_region *cr = &ctx->regions[VFU_PCI_DEV_CFG_REGION_IDX];

    if (count == 0 || offset > ctx->pci.cfg_size ||
        count > ctx->pci.cfg_size - offset) {
        return -EINVAL;
    }
    if ((cr->flags & VFU_REGION_FLAG_ALWAYS_CB) && cr->cb != NULL) {
        return dry_run ? (ssize_t)count :
               call_cfg_cb(ctx, cr->cb, buf, count, offset, is_write);
    }
    if (is_write) {
        return config_write(ctx, cr->cb, buf, count, (size_t)offset, dry_run,
                            asks);
    }
    return config_read(ctx, cr->cb, buf, count, (size_t)offset);
}

ssize_t
pci_config_access(vfu_ctx_t *ctx, char *buf, size_t count, uint64_t offset,
                  bool is_write, struct caps_pending *asks)
{
    *asks = (struct caps_pending){ 0 };
    return config_access(ctx, buf, count, offset, is_write, false, asks);
}

int
pci_config_check_write(vfu_ctx_t *ctx, const char *buf, size_t count,
                       uint64_t offset)
{
    /* A dry run reads @buf only. */
    struct caps_pending asks = { 0 };
    ssize_t ret = config_access(ctx, (char *)buf, count, offset, true, true,
                                &asks);
    return ret < 0 ? (int)ret : 0;
}
