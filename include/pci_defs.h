/*
 * PCI configuration-space layout as device code sees it through
 * vfu_pci_get_config_space(): the 64-byte type-0 header with its registers
 * broken into fields, and the 256-byte (or 4096-byte, for PCI Express)
 * configuration space that starts with it. Register numbers and bit values
 * come from <linux/pci_regs.h>.
 */
#ifndef LIBVFIO_USER_PCI_DEFS_H
#define LIBVFIO_USER_PCI_DEFS_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/pci_regs.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The two-bit "locatable" field of a memory BAR, already shifted down. */
#define PCI_BASE_ADDRESS_MEM_TYPE_LOCATABLE_32 (PCI_BASE_ADDRESS_MEM_TYPE_32 >> 1)
#define PCI_BASE_ADDRESS_MEM_TYPE_LOCATABLE_1M (PCI_BASE_ADDRESS_MEM_TYPE_1M >> 1)
#define PCI_BASE_ADDRESS_MEM_TYPE_LOCATABLE_64 (PCI_BASE_ADDRESS_MEM_TYPE_64 >> 1)

#define PCI_BARS_NR 6

typedef union {
    uint32_t raw;
    struct {
        uint16_t vid;
        uint16_t did;
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_id_t;

/* Command register (offset 0x04). */
typedef union {
    uint16_t raw;
    struct {
        uint8_t iose:1;     /* I/O space enable */
        uint8_t mse:1;      /* memory space enable */
        uint8_t bme:1;      /* bus master enable */
        uint8_t sce:1;      /* special cycles */
        uint8_t mwie:1;     /* memory write and invalidate */
        uint8_t vga:1;      /* VGA palette snoop */
        uint8_t pee:1;      /* parity error response */
        uint8_t zero:1;
        uint8_t see:1;      /* SERR# enable */
        uint8_t fbe:1;      /* fast back-to-back */
        uint8_t id:1;       /* INTx disable */
        uint8_t res1:5;
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_cmd_t;

/* Status register (offset 0x06). */
typedef union {
    uint16_t raw;
    struct {
        unsigned int res1:3;
        unsigned int is:1;      /* interrupt status */
        unsigned int cl:1;      /* capabilities list */
        unsigned int c66:1;     /* 66 MHz capable */
        unsigned int res2:1;
        unsigned int fbc:1;     /* fast back-to-back capable */
        unsigned int dpd:1;     /* master data parity error */
        unsigned int devt:2;    /* DEVSEL timing */
        unsigned int sta:1;     /* signaled target abort */
        unsigned int rta:1;     /* received target abort */
        unsigned int rma:1;     /* received master abort */
        unsigned int sse:1;     /* signaled system error */
        unsigned int dpe:1;     /* detected parity error */
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_sts_t;

/* Class code (offsets 0x09-0x0b). */
typedef union {
    uint8_t raw[3];
    struct {
        uint8_t pi;     /* programming interface */
        uint8_t scc;    /* sub-class */
        uint8_t bcc;    /* base class */
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_cc_t;

typedef union {
    uint8_t raw;
} __attribute__((packed)) vfu_pci_hdr_htype_t;

typedef union {
    uint8_t raw;
} __attribute__((packed)) vfu_pci_hdr_bist_t;

/* A base address register, decoded as memory or as I/O. */
typedef union {
    uint32_t raw;
    union {
        struct {
            unsigned int region_type:1;     /* 0: memory */
            unsigned int locatable:2;       /* PCI_BASE_ADDRESS_MEM_TYPE_LOCATABLE_* */
            unsigned int prefetchable:1;
            unsigned int base_address:28;
        } __attribute__((packed)) mem;
        struct {
            unsigned int region_type:1;     /* 1: I/O */
            unsigned int reserved:1;
            unsigned int base_address:30;
        } __attribute__((packed)) io;
    } __attribute__((packed));
} __attribute__((packed)) vfu_bar_t;

/* Subsystem vendor and subsystem ID (offset 0x2c). */
typedef union {
    uint32_t raw;
    struct {
        uint16_t vid;
        uint16_t sid;
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_ss_t;

typedef union {
    uint16_t raw;
    struct {
        uint8_t iline;  /* interrupt line */
        uint8_t ipin;   /* interrupt pin: 0 none, 1 INTA# ... */
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_intr_t;

/* The type-0 configuration header. */
typedef union {
    uint8_t raw[PCI_STD_HEADER_SIZEOF];
    struct {
        vfu_pci_hdr_id_t id;            /* 0x00 */
        vfu_pci_hdr_cmd_t cmd;          /* 0x04 */
        vfu_pci_hdr_sts_t sts;          /* 0x06 */
        uint8_t rid;                    /* 0x08 revision */
        vfu_pci_hdr_cc_t cc;            /* 0x09 */
        uint8_t cls;                    /* 0x0c cache line size */
        uint8_t mlt;                    /* 0x0d latency timer */
        vfu_pci_hdr_htype_t htype;      /* 0x0e */
        vfu_pci_hdr_bist_t bist;        /* 0x0f */
        vfu_bar_t bars[PCI_BARS_NR];    /* 0x10 */
        uint32_t ccptr;                 /* 0x28 CardBus CIS pointer */
        vfu_pci_hdr_ss_t ss;            /* 0x2c */
        uint32_t erom;                  /* 0x30 expansion ROM base */
        uint8_t cap;                    /* 0x34 capabilities pointer */
        uint8_t res1[7];
        vfu_pci_hdr_intr_t intr;        /* 0x3c */
        uint8_t mgnt;                   /* 0x3e min grant */
        uint8_t mlat;                   /* 0x3f max latency */
    } __attribute__((packed));
} __attribute__((packed)) vfu_pci_hdr_t;

/*
 * Configuration space: PCI_CFG_SPACE_SIZE bytes, followed for PCI Express
 * (and PCI-X mode 2) devices by the extended space up to
 * PCI_CFG_SPACE_EXP_SIZE.
 */
typedef struct {
    union {
        uint8_t raw[PCI_CFG_SPACE_SIZE];
        vfu_pci_hdr_t hdr;
    } __attribute__((packed));
    uint8_t extended[];
} __attribute__((packed)) vfu_pci_config_space_t;

_Static_assert(sizeof(vfu_pci_hdr_cmd_t) == 2, "command register");
_Static_assert(sizeof(vfu_pci_hdr_sts_t) == 2, "status register");
_Static_assert(sizeof(vfu_bar_t) == 4, "BAR");
_Static_assert(sizeof(vfu_pci_hdr_t) == 0x40, "type-0 header");
_Static_assert(sizeof(vfu_pci_config_space_t) == 0x100, "config space");

#ifdef __cplusplus
}
#endif

#endif /* LIBVFIO_USER_PCI_DEFS_H */
