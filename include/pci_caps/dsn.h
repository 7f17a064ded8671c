/*
 * Device Serial Number extended capability (PCI_EXT_CAP_ID_DSN): a 64-bit
 * serial number, read-only, PCI_EXT_CAP_DSN_SIZEOF bytes.
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_DSN_H
#define LIB_VFIO_USER_PCI_CAPS_DSN_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct dsncap {
    struct pcie_ext_cap_hdr hdr;
    uint32_t sn_lo;
    uint32_t sn_hi;
} __attribute__((packed));

_Static_assert(sizeof(struct dsncap) == PCI_EXT_CAP_DSN_SIZEOF, "dsncap");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_DSN_H */
