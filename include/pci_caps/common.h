/*
 * Pieces shared by all capability layouts: the two-byte header of a
 * capability in the first 256 bytes of config space, the four-byte header of
 * a PCI Express extended capability (from offset 0x100), and the two
 * vendor-specific capabilities, whose length is part of their header.
 *
 * Give vfu_pci_add_capability() one of these structures (or one from the
 * other pci_caps/ headers) with the ID filled in; the library writes the
 * "next" field itself.
 */
#ifndef LIB_VFIO_USER_PCI_CAPS_COMMON_H
#define LIB_VFIO_USER_PCI_CAPS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <linux/pci_regs.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Standard capability header: PCI_CAP_ID_* and the offset of the next one. */
struct cap_hdr {
    uint8_t id;
    uint8_t next;
} __attribute__((packed));

_Static_assert(sizeof(struct cap_hdr) == 2, "cap_hdr");
_Static_assert(offsetof(struct cap_hdr, id) == PCI_CAP_LIST_ID, "cap_hdr.id");
_Static_assert(offsetof(struct cap_hdr, next) == PCI_CAP_LIST_NEXT,
               "cap_hdr.next");

/*
 * Vendor-specific capability (PCI_CAP_ID_VNDR). @size counts every byte of
 * the capability, the header and @size itself included (at least 3).
 */
struct vsc {
    struct cap_hdr hdr;
    uint8_t size;
    uint8_t data[];
} __attribute__((packed));

/* Extended capability header: PCI_EXT_CAP_ID_*, version, next offset. */
struct pcie_ext_cap_hdr {
    unsigned int id:16;
    unsigned int version:4;
    unsigned int next:12;
} __attribute__((packed));

_Static_assert(sizeof(struct pcie_ext_cap_hdr) == 4, "pcie_ext_cap_hdr");

/*
 * Vendor-specific extended capability (PCI_EXT_CAP_ID_VNDR): after the
 * extended header comes the vendor's own ID, revision and @len, the length
 * in bytes of the whole capability including both headers (at least 8).
 */
struct pcie_ext_cap_vsc_hdr {
    struct pcie_ext_cap_hdr hdr;
    unsigned int id:16;
    unsigned int rev:4;
    unsigned int len:12;
    uint8_t data[];
} __attribute__((packed));

_Static_assert(sizeof(struct pcie_ext_cap_vsc_hdr) == 8,
               "pcie_ext_cap_vsc_hdr");

#ifdef __cplusplus
}
#endif

#endif /* LIB_VFIO_USER_PCI_CAPS_COMMON_H */
