/*
 * PCI Express capability (PCI_CAP_ID_EXP), for VFU_PCI_TYPE_EXPRESS devices.
 *
 * struct pxcap covers the registers up to Device Control 2 (0x2a bytes); the
 * library copies that much from the device. In config space the capability
 * takes 0x24 bytes for version 1 and 0x3c for version 2; registers after
 * Device Control 2 (Link Capabilities/Control/Status 2, Slot 2) start as
 * zero and the device may fill the read-only ones through
 * vfu_pci_get_config_space().
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_PX_H
#define LIB_VFIO_USER_PCI_CAPS_PX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PCI Express Capabilities register (offset 2). */
struct pxcaps {
    unsigned int ver:4;     /* capability version: 1 or 2 */
    unsigned int dpt:4;     /* device/port type (PCI_EXP_TYPE_*) */
    unsigned int si:1;      /* slot implemented */
    unsigned int imn:5;     /* interrupt message number */
    unsigned int res1:2;
} __attribute__((packed));

_Static_assert(sizeof(struct pxcaps) == 2, "pxcaps");

/*
 * Device Capabilities (offset 4), bit positions as in the PCI Express
 * specification and <linux/pci_regs.h> (FLR capable is bit 28).
 */
struct pxdcap {
    unsigned int mps:3;     /* max payload size supported */
    unsigned int pfs:2;     /* phantom functions */
    unsigned int etfs:1;    /* extended tag field */
    unsigned int l0sl:3;    /* L0s acceptable latency */
    unsigned int l1l:3;     /* L1 acceptable latency */
    unsigned int res0:3;    /* once attention button/indicator, power ind. */
    unsigned int per:1;     /* role-based error reporting */
    unsigned int res1:2;
    unsigned int csplv:8;   /* captured slot power limit value */
    unsigned int cspls:2;   /* ... and scale */
    unsigned int flrc:1;    /* function-level reset capable */
    unsigned int res2:3;
} __attribute__((packed));

_Static_assert(sizeof(struct pxdcap) == 4, "pxdcap");

/* Device Control (offset 8). */
union pxdc {
    uint16_t raw;
    struct {
        unsigned int cere:1;    /* correctable error reporting */
        unsigned int nfere:1;   /* non-fatal error reporting */
        unsigned int fere:1;    /* fatal error reporting */
        unsigned int urre:1;    /* unsupported request reporting */
        unsigned int ero:1;     /* relaxed ordering */
        unsigned int mps:3;     /* max payload size */
        unsigned int ete:1;     /* extended tag */
        unsigned int pfe:1;     /* phantom functions */
        unsigned int appme:1;   /* aux power PM */
        unsigned int ens:1;     /* no snoop */
        unsigned int mrrs:3;    /* max read request size */
        unsigned int iflr:1;    /* initiate function-level reset */
    } __attribute__((packed));
} __attribute__((packed));

_Static_assert(sizeof(union pxdc) == 2, "pxdc");

/* Device Status (offset 0xa); see PCI_EXP_DEVSTA_*. */
struct pxds {
    unsigned int stuff:16;
} __attribute__((packed));

_Static_assert(sizeof(struct pxds) == 2, "pxds");

/* Link Capabilities (offset 0xc); see PCI_EXP_LNKCAP_*. */
struct pxlcap {
    unsigned int stuff:32;
} __attribute__((packed));

_Static_assert(sizeof(struct pxlcap) == 4, "pxlcap");

/* Link Control (offset 0x10); see PCI_EXP_LNKCTL_*. */
struct pxlc {
    unsigned int stuff:16;
} __attribute__((packed));

_Static_assert(sizeof(struct pxlc) == 2, "pxlc");

/* Link Status (offset 0x12); see PCI_EXP_LNKSTA_*. */
struct pxls {
    unsigned int stuff:16;
} __attribute__((packed));

_Static_assert(sizeof(struct pxls) == 2, "pxls");

/* Device Capabilities 2 (offset 0x24), positions as in the specification. */
struct pxdcap2 {
    unsigned int ctrs:4;    /* completion timeout ranges */
    unsigned int ctds:1;    /* completion timeout disable */
    unsigned int arifs:1;   /* ARI forwarding */
    unsigned int aors:1;    /* AtomicOp routing */
    unsigned int aocs32:1;  /* 32-bit AtomicOp completer */
    unsigned int aocs64:1;  /* 64-bit AtomicOp completer */
    unsigned int ccs128:1;  /* 128-bit CAS completer */
    unsigned int nprpr:1;   /* no RO-enabled PR-PR passing */
    unsigned int ltrs:1;    /* LTR mechanism */
    unsigned int tphcs:2;   /* TPH completer */
    unsigned int res0:4;    /* LN system CLS, 10-bit tag completer/requester */
    unsigned int obffs:2;   /* OBFF */
    unsigned int effs:1;    /* extended fmt field */
    unsigned int eetps:1;   /* end-end TLP prefix */
    unsigned int meetp:2;   /* max end-end TLP prefixes */
    unsigned int res1:8;
} __attribute__((packed));

_Static_assert(sizeof(struct pxdcap2) == 4, "pxdcap2");

/* Device Control 2 (offset 0x28); see PCI_EXP_DEVCTL2_*. */
struct pxdc2 {
    unsigned int stuff:16;
} __attribute__((packed));

_Static_assert(sizeof(struct pxdc2) == 2, "pxdc2");

struct pxcap {
    struct cap_hdr hdr;
    struct pxcaps pxcaps;
    struct pxdcap pxdcap;
    union pxdc pxdc;
    struct pxds pxds;
    struct pxlcap pxlcap;
    struct pxlc pxlc;
    struct pxls pxls;
    uint8_t pad[0x10];      /* slot and root registers: not for endpoints */
    struct pxdcap2 pxdcap2;
    struct pxdc2 pxdc2;
} __attribute__((packed));

_Static_assert(sizeof(struct pxcap) == 0x2a, "pxcap");
_Static_assert(offsetof(struct pxcap, pxdc) == PCI_EXP_DEVCTL, "pxcap.pxdc");
_Static_assert(offsetof(struct pxcap, pxlc) == PCI_EXP_LNKCTL, "pxcap.pxlc");
_Static_assert(offsetof(struct pxcap, pxdcap2) == PCI_EXP_DEVCAP2,
               "pxcap.pxdcap2");
_Static_assert(offsetof(struct pxcap, pxdc2) == PCI_EXP_DEVCTL2,
               "pxcap.pxdc2");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_PX_H */
