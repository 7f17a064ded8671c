/*
 * PCI Express capability (PCI_CAP_ID_EXP): struct pxcap is the whole 0x3c
 * bytes of a version 2 capability (endpoint, slot and root registers, and
 * the "2" registers). The library takes 0x24 bytes from the device for
 * version 1 and all of it for version 2 (or 0, read as 2). Bit positions are
 * those of the PCI Express specification and <linux/pci_regs.h>; registers
 * an endpoint has no use for are left as plain 16/32-bit words ("stuff").
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_PX_H
#define LIB_VFIO_USER_PCI_CAPS_PX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VFIO_USER_PCI_CAP_EXP_SIZEOF (0x3c)

/* PCI Express Capabilities register (offset 2). */
struct pxcaps {
    unsigned int ver:4;     /* capability version: 1 or 2 */
    unsigned int dpt:4;     /* device/port type (PCI_EXP_TYPE_*) */
    unsigned int si:1;      /* slot implemented */
    unsigned int imn:5;     /* interrupt message number */
    unsigned int res1:2;
} __attribute__((packed));

_Static_assert(sizeof(struct pxcaps) == 2, "pxcaps");

/* Device Capabilities (offset 4). */
struct pxdcap {
    unsigned int mps:3;     /* max payload size supported */
    unsigned int pfs:2;     /* phantom functions */
    unsigned int etfs:1;    /* extended tag field */
    unsigned int l0sl:3;    /* L0s acceptable latency */
    unsigned int l1l:3;     /* L1 acceptable latency */
    unsigned int res1:3;    /* once attention button/indicator, power ind. */
    unsigned int rer:1;     /* role-based error reporting */
    unsigned int res2:2;
    unsigned int csplv:8;   /* captured slot power limit value */
    unsigned int cspls:2;   /* ... and scale */
    unsigned int flrc:1;    /* function-level reset capable (bit 28) */
    unsigned int res3:3;
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

/* Link Capabilities (offset 0xc); see PCI_EXP_LNKCAP_*. */
struct pxlcap {
    unsigned int stuff:32;
} __attribute__((packed));

/* Link Control (offset 0x10). */
union pxlc {
    uint16_t raw;
    struct {
        unsigned int aspmc:2;       /* ASPM control */
        unsigned int rsvdp1:1;
        unsigned int rcb:1;         /* read completion boundary */
        unsigned int ld:1;          /* link disable */
        unsigned int rl:1;          /* retrain link */
        unsigned int ccc:1;         /* common clock configuration */
        unsigned int es:1;          /* extended synch */
        unsigned int clkreq_en:1;   /* clock power management */
        unsigned int hawd:1;        /* hardware autonomous width disable */
        unsigned int lbmie:1;       /* bandwidth management interrupt */
        unsigned int labie:1;       /* autonomous bandwidth interrupt */
        unsigned int rsvdp2:4;
    } __attribute__((packed));
} __attribute__((packed));

_Static_assert(sizeof(union pxlc) == 2, "pxlc");

/* Link Status (offset 0x12); see PCI_EXP_LNKSTA_*. */
struct pxls {
    unsigned int stuff:16;
} __attribute__((packed));

/* Slot Capabilities, Control, Status (0x14, 0x18, 0x1a): ports only. */
struct pxscap {
    unsigned int stuff:32;
} __attribute__((packed));

struct pxsc {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxss {
    unsigned int stuff:16;
} __attribute__((packed));

/* Root Control, Capabilities, Status (0x1c, 0x1e, 0x20): root ports only. */
struct pxrc {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxrcap {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxrs {
    unsigned int stuff:32;
} __attribute__((packed));

/* Device Capabilities 2 (offset 0x24). */
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
    unsigned int ln:2;      /* LN system CLS */
    unsigned int tcs:1;     /* 10-bit tag completer */
    unsigned int trs:1;     /* 10-bit tag requester */
    unsigned int obffs:2;   /* OBFF */
    unsigned int effs:1;    /* extended fmt field */
    unsigned int eetps:1;   /* end-end TLP prefix */
    unsigned int meetp:2;   /* max end-end TLP prefixes */
    unsigned int eprs:2;    /* emergency power reduction */
    unsigned int eprir:1;   /* ... initialization required */
    unsigned int res1:1;
    unsigned int dmwcs:1;   /* DMWr completer */
    unsigned int dmwls:2;   /* DMWr lengths */
    unsigned int frss:1;    /* FRS */
} __attribute__((packed));

_Static_assert(sizeof(struct pxdcap2) == 4, "pxdcap2");

/* Device Control 2 (offset 0x28). */
union pxdc2 {
    uint16_t raw;
    struct {
        unsigned int comp_timeout:4;        /* completion timeout value */
        unsigned int comp_timout_dis:1;     /* ... disable */
        unsigned int ari:1;                 /* ARI forwarding */
        unsigned int atomic_req:1;          /* AtomicOp requester */
        unsigned int atomic_egress_block:1;
        unsigned int ido_req_en:1;          /* IDO request */
        unsigned int ido_cmp_en:1;          /* IDO completion */
        unsigned int ltr_en:1;              /* LTR mechanism */
        unsigned int obff_en:2;             /* OBFF */
        unsigned int end_end_tlp_prefix_block:1;
        unsigned int rsvdp:2;
    } __attribute__((packed));
} __attribute__((packed));

_Static_assert(sizeof(union pxdc2) == 2, "pxdc2");

/* Device Status 2 and the Link and Slot "2" registers (0x2a-0x3b). */
struct pxds2 {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxlcap2 {
    unsigned int stuff:32;
} __attribute__((packed));

struct pxlc2 {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxls2 {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxscap2 {
    unsigned int stuff:32;
} __attribute__((packed));

struct pxsc2 {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxss2 {
    unsigned int stuff:16;
} __attribute__((packed));

struct pxcap {
    struct cap_hdr hdr;
    struct pxcaps pxcaps;
    struct pxdcap pxdcap;
    union pxdc pxdc;
    struct pxds pxds;
    struct pxlcap pxlcap;
    union pxlc pxlc;
    struct pxls pxls;
    struct pxscap pxscap;
    struct pxsc pxsc;
    struct pxss pxss;
    struct pxrc pxrc;
    struct pxrcap pxrcap;
    struct pxrs pxrs;
    struct pxdcap2 pxdcap2;
    union pxdc2 pxdc2;
    struct pxds2 pxds2;
    struct pxlcap2 pxlcap2;
    struct pxlc2 pxlc2;
    struct pxls2 pxls2;
    struct pxscap2 pxscap2;
    struct pxsc2 pxsc2;
    struct pxss2 pxss2;
} __attribute__((packed));

_Static_assert(sizeof(struct pxcap) == VFIO_USER_PCI_CAP_EXP_SIZEOF, "pxcap");
_Static_assert(offsetof(struct pxcap, pxdc) == PCI_EXP_DEVCTL, "pxcap.pxdc");
_Static_assert(offsetof(struct pxcap, pxlc) == PCI_EXP_LNKCTL, "pxcap.pxlc");
_Static_assert(offsetof(struct pxcap, pxdcap2) == PCI_EXP_DEVCAP2,
               "pxcap.pxdcap2");
_Static_assert(offsetof(struct pxcap, pxdc2) == PCI_EXP_DEVCTL2,
               "pxcap.pxdc2");
_Static_assert(offsetof(struct pxcap, pxss2) == PCI_EXP_SLTSTA2,
               "pxcap.pxss2");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_PX_H */
