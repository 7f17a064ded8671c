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

/* The per-byte arrays of struct vfu_pci, allocated as one block. */
#define NR_CFG_ARRAYS    7

int
pci_table_alloc(vfu_ctx_t *ctx)
{
    uint8_t *block = calloc(NR_CFG_ARRAYS, PCI_CFG_SPACE_EXP_SIZE);

    if (block == NULL) {
        return -ENOMEM;
    }
    memset(&ctx->pci, 0, sizeof(ctx->pci));
    ctx->pci.cfg = block;
    ctx->pci.wmask = block + 1 * PCI_CFG_SPACE_EXP_SIZE;
    ctx->pci.w1cmask = block + 2 * PCI_CFG_SPACE_EXP_SIZE;
    ctx->pci.rstval = block + 3 * PCI_CFG_SPACE_EXP_SIZE;
    ctx->pci.sticky = block + 4 * PCI_CFG_SPACE_EXP_SIZE;
    ctx->pci.flrkeep = block + 5 * PCI_CFG_SPACE_EXP_SIZE;
    ctx->pci.emul = block + 6 * PCI_CFG_SPACE_EXP_SIZE;
    return 0;
}

void
pci_table_free(vfu_ctx_t *ctx)
{
    free(ctx->pci.cfg);     /* the whole block */
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

    for (i = 0; i < p->cfg_size; i++) {
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
