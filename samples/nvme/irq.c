/*
 * Interrupts of vfu-nvme: BAR4's MSI-X table and pending bits, INTx held
 * while the host masks it (INTMS), and raising a vector. The bottom of the
 * controller: it calls no other file of the sample.
 */
#include <errno.h>
#include <string.h>

#include "nvme.h"

static bool
pba_test_clear(struct nvme_ctrl *c, unsigned v)
{
    uint8_t *p = &c->msix[NVME_PBA_OFFSET + v / 8];
    bool set = *p & (1u << (v % 8));
    *p &= (uint8_t)~(1u << (v % 8));
    return set;
}

/*
 * Raises @vector: an MSI-X vector, or INTx when MSI-X is off. A vector
 * masked in our table (by a client that programs it; QEMU keeps the table
 * to itself) is held in the PBA until unmasked.
 */
void
nvme_raise(struct nvme_ctrl *c, uint16_t vector)
{
    vfu_pci_config_space_t *cfg = vfu_pci_get_config_space(c->ctx);
    uint16_t msgctl;

    memcpy(&msgctl, cfg->raw + c->msix_cap + PCI_MSIX_FLAGS, 2);
    if (msgctl & PCI_MSIX_FLAGS_ENABLE) {
        uint8_t *e = &c->msix[(size_t)vector * PCI_MSIX_ENTRY_SIZE];
        uint64_t addr;

        if (vector >= NVME_NR_VECTORS) {
            return;
        }
        memcpy(&addr, e + PCI_MSIX_ENTRY_LOWER_ADDR, 8);
        if (addr != 0 &&
            (get32(e + PCI_MSIX_ENTRY_VECTOR_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT)) {
            c->msix[NVME_PBA_OFFSET + vector / 8] |= (uint8_t)(1u << (vector % 8));
            return;
        }
    } else {
        if (c->intms & 1) {
            c->intx_held = true;        /* INTMC raises it */
            return;
        }
        vector = 0;
    }
    /* ENOENT: no eventfd for it; EINVAL: no interrupt type enabled. */
    if (vfu_irq_trigger(c->ctx, vector) < 0 && errno != ENOENT &&
        errno != EINVAL) {
        vfu_log(c->ctx, LOG_ERR, "interrupt %u: %m", vector);
    }
}

ssize_t
nvme_bar4_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t off,
                 bool is_write)
{
    struct nvme_ctrl *c = vfu_get_private(ctx);

    if (!is_write) {
        memcpy(buf, c->msix + off, count);
        return (ssize_t)count;
    }
    if ((size_t)off + count > NVME_NR_VECTORS * PCI_MSIX_ENTRY_SIZE) {
        return (ssize_t)count;          /* past the table; the PBA is RO */
    }
    memcpy(c->msix + off, buf, count);
    for (unsigned v = (unsigned)off / PCI_MSIX_ENTRY_SIZE;
         v <= (unsigned)(off + count - 1) / PCI_MSIX_ENTRY_SIZE; v++) {
        uint8_t *e = &c->msix[v * PCI_MSIX_ENTRY_SIZE];
        if (!(get32(e + PCI_MSIX_ENTRY_VECTOR_CTRL) &
              PCI_MSIX_ENTRY_CTRL_MASKBIT) && pba_test_clear(c, v)) {
            nvme_raise(c, (uint16_t)v);     /* unmasked: deliver the held one */
        }
    }
    return (ssize_t)count;
}
