/*
 * MSI-X capability (PCI_CAP_ID_MSIX), PCI_CAP_MSIX_SIZEOF bytes. The vector
 * table and the pending bit array live in BARs the device sets up; the
 * capability names the BAR (BIR) and the offset of each.
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_MSIX_H
#define LIB_VFIO_USER_PCI_CAPS_MSIX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message Control (offset 2). */
struct mxc {
    unsigned int ts:11;         /* table size minus one */
    unsigned int reserved:3;
    unsigned int fm:1;          /* function mask (client writes) */
    unsigned int mxe:1;         /* MSI-X enable (client writes) */
} __attribute__((packed));

_Static_assert(sizeof(struct mxc) == 2, "mxc");

/* Table BIR and offset (offset 4): the offset is to << 3 bytes into the BAR. */
struct mtab {
    unsigned int tbir:3;
    unsigned int to:29;
} __attribute__((packed));

_Static_assert(sizeof(struct mtab) == 4, "mtab");

/* Pending bit array BIR and offset (offset 8). */
struct mpba {
    unsigned int pbir:3;
    unsigned int pbao:29;
} __attribute__((packed));

_Static_assert(sizeof(struct mpba) == 4, "mpba");

struct msixcap {
    struct cap_hdr hdr;
    struct mxc mxc;
    struct mtab mtab;
    struct mpba mpba;
} __attribute__((packed)) __attribute__((aligned(4)));

_Static_assert(sizeof(struct msixcap) == PCI_CAP_MSIX_SIZEOF, "msixcap");
_Static_assert(offsetof(struct msixcap, mtab) == PCI_MSIX_TABLE,
               "msixcap.mtab");
_Static_assert(offsetof(struct msixcap, mpba) == PCI_MSIX_PBA,
               "msixcap.mpba");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_MSIX_H */
