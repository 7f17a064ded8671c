/*
 * Power Management capability (PCI_CAP_ID_PM), PCI_PM_SIZEOF bytes. The
 * library emulates the power state field, PME enable and the write-1-to-
 * clear PME status; see docs/pci.md.
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_PM_H
#define LIB_VFIO_USER_PCI_CAPS_PM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Power Management Capabilities (PMC, offset 2): read-only. */
struct pc {
    unsigned int vs:3;      /* version (3 for PCI PM 1.2) */
    unsigned int pmec:1;    /* PME clock */
    unsigned int res:1;
    unsigned int dsi:1;     /* device-specific initialisation */
    unsigned int auxc:3;    /* aux current */
    unsigned int d1s:1;     /* D1 supported */
    unsigned int d2s:1;     /* D2 supported */
    unsigned int psup:5;    /* PME supported from D0, D1, D2, D3hot, D3cold */
} __attribute__((packed));

_Static_assert(sizeof(struct pc) == 2, "pc");

/* Power Management Control/Status (PMCSR, offset 4). */
struct pmcs {
    union {
        uint16_t raw;
        struct {
            unsigned short ps:2;        /* power state: 0 D0 ... 3 D3hot */
            unsigned short res1:1;
            unsigned short nsfrst:1;    /* No_Soft_Reset */
            unsigned short res2:4;
            unsigned short pmee:1;      /* PME enable */
            unsigned short dse:4;       /* data select */
            unsigned short dsc:2;       /* data scale */
            unsigned short pmes:1;      /* PME status */
        };
    };
} __attribute__((packed));

_Static_assert(sizeof(struct pmcs) == 2, "pmcs");

struct pmcap {
    struct cap_hdr hdr;
    struct pc pc;
    struct pmcs pmcs;
    uint8_t pmcsr_bse;      /* bridge support extensions */
    uint8_t data;
} __attribute__((packed));

_Static_assert(sizeof(struct pmcap) == PCI_PM_SIZEOF, "pmcap");
_Static_assert(offsetof(struct pmcap, pmcs) == PCI_PM_CTRL, "pmcap.pmcs");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_PM_H */
