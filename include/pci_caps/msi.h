/*
 * MSI capability (PCI_CAP_ID_MSI). struct msicap is laid out for the largest
 * form, 64-bit addresses with per-vector masking; the library reads the
 * message control flags to learn which form the device offers and takes
 * only that many bytes (10, 14, 20 or 24).
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_MSI_H
#define LIB_VFIO_USER_PCI_CAPS_MSI_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message Control (offset 2). */
struct mc {
    unsigned int msie:1;    /* MSI enable (client writes) */
    unsigned int mmc:3;     /* log2 of the vectors the device offers */
    unsigned int mme:3;     /* log2 of the vectors the client enabled */
    unsigned int c64:1;     /* 64-bit message address */
    unsigned int pvm:1;     /* per-vector masking */
    unsigned int res1:7;
} __attribute__((packed));

_Static_assert(sizeof(struct mc) == 2, "mc");

/* Message Address, low dword (offset 4); bits 1:0 read 0. */
struct ma {
    unsigned int res1:2;
    unsigned int addr:30;
} __attribute__((packed));

_Static_assert(sizeof(struct ma) == 4, "ma");

#define VFIO_USER_PCI_CAP_MSI_SIZEOF (0x18)

/* The 64-bit, maskable layout. */
struct msicap {
    struct cap_hdr hdr;
    struct mc mc;
    struct ma ma;
    uint32_t mua;           /* upper address */
    uint16_t md;            /* data */
    uint16_t padding;       /* extended message data: not emulated */
    uint32_t mmask;         /* mask bits */
    uint32_t mpend;         /* pending bits */
} __attribute__((packed));

_Static_assert(sizeof(struct msicap) == VFIO_USER_PCI_CAP_MSI_SIZEOF,
               "msicap");
_Static_assert(offsetof(struct msicap, mmask) == PCI_MSI_MASK_64,
               "msicap.mmask");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_MSI_H */
