/*
 * Config space storage and its per-byte register table, the bottom of
 * config space: owns the arrays of struct vfu_pci (the bytes the client
 * reads, and for each byte the write mask, write-1-to-clear mask, reset
 * value, sticky and FLR-kept bits, and whether it is emulated or the
 * device's), and the table-driven reset of config space. What the bytes
 * mean is the header's (pci.c) and the capabilities' (caps.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

/* The attribute arrays of struct vfu_pci (wmask to emul), one block. */
#define NR_ATTR_ARRAYS   6

/*
 * Config space of @cfg_size bytes (256 for conventional PCI, 4096 for PCI
 * Express) and the six attribute arrays over its first @attr_size bytes
 * (beyond, every attribute is 0: the device's bytes, nothing emulated).
 * Extended config space gets attributes only once an extended capability
 * is added, so a thousand devices pay for neither what they do not have
 * nor what they do not use. What the tables held is kept, new bytes are
 * 0. The attribute arrays move; config space itself moves only when its
 * size changes (vfu_pci_init()), as the device may keep a pointer to it
 * from then on (vfu_pci_get_config_space()). 0 or -ENOMEM (nothing
 * changed).
 */
int
pci_table_resize(vfu_ctx_t *ctx, size_t cfg_size, size_t attr_size)
{
    uint8_t **attrs[NR_ATTR_ARRAYS] = {
        &ctx->pci.wmask, &ctx->pci.w1cmask, &ctx->pci.rstval,
        &ctx->pci.sticky, &ctx->pci.flrkeep, &ctx->pci.emul,
    };
    uint8_t *old_attrs = ctx->pci.wmask;    /* the block starts with wmask */
    uint8_t *block = calloc(NR_ATTR_ARRAYS, attr_size);
    uint8_t *cfg = ctx->pci.cfg;
    size_t had = ctx->pci.attr_size < attr_size ? ctx->pci.attr_size :
                 attr_size;

    if (block == NULL) {
        return -ENOMEM;
    }
    if (cfg == NULL || cfg_size != ctx->pci.cfg_size) {
        cfg = calloc(1, cfg_size);
        if (cfg == NULL) {
            free(block);
            return -ENOMEM;
        }
        if (ctx->pci.cfg != NULL) {
            memcpy(cfg, ctx->pci.cfg, ctx->pci.cfg_size < cfg_size ?
                                      ctx->pci.cfg_size : cfg_size);
            free(ctx->pci.cfg);
        }
        ctx->pci.cfg = cfg;
    }
    for (size_t i = 0; i < NR_ATTR_ARRAYS; i++) {
        uint8_t *at = block + i * attr_size;

        if (*attrs[i] != NULL) {
            memcpy(at, *attrs[i], had);
        }
        *attrs[i] = at;
    }
    free(old_attrs);
    ctx->pci.cfg_size = cfg_size;
    ctx->pci.attr_size = attr_size;
    return 0;
}

int
pci_table_alloc(vfu_ctx_t *ctx)
{
    memset(&ctx->pci, 0, sizeof(ctx->pci));
    return pci_table_resize(ctx, PCI_CFG_SPACE_SIZE, PCI_CFG_SPACE_SIZE);
}

int
pci_attr_full(vfu_ctx_t *ctx)
{
    if (ctx->pci.attr_size == ctx->pci.cfg_size) {
        return 0;
    }
    return pci_table_resize(ctx, ctx->pci.cfg_size, ctx->pci.cfg_size);
}

void
pci_table_free(vfu_ctx_t *ctx)
{
    free(ctx->pci.cfg);
    free(ctx->pci.wmask);   /* the attributes' block */
    ctx->pci.cfg = NULL;
    ctx->pci.wmask = NULL;
    ctx->pci.w1cmask = NULL;
    ctx->pci.rstval = NULL;
    ctx->pci.sticky = NULL;
    ctx->pci.flrkeep = NULL;
    ctx->pci.emul = NULL;
}

void
pci_reset_config(vfu_ctx_t *ctx, enum pci_reset_kind kind)
{
    struct vfu_pci *p = &ctx->pci;
    size_t i;

    for (i = 0; i < p->attr_size; i++) {      /* beyond: nothing writable */
        uint8_t keep = p->sticky[i];
        uint8_t bits;

        if (kind != PCI_RESET_DEVICE) {
            keep |= p->flrkeep[i];
        }
        bits = (uint8_t)((p->wmask[i] | p->w1cmask[i]) & ~keep);
        p->cfg[i] = (uint8_t)((p->cfg[i] & ~bits) | (p->rstval[i] & bits));
    }
}

void
pci_reset(vfu_ctx_t *ctx)
{
    pci_reset_config(ctx, PCI_RESET_DEVICE);
}
