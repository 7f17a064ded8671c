/*
 * Typed access to config space registers: little-endian 16- and 32-bit
 * values at any byte offset of a config space array (or of a copy of a
 * capability). Inline, so that every layer of config space, and the
 * interrupt code, reads and writes registers without calling another file.
 */
#ifndef VFU_PCI_REGS_H
#define VFU_PCI_REGS_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t
pci_get32(const uint8_t *p, size_t off)
{
    uint32_t v;

    memcpy(&v, p + off, sizeof(v));
    return le32toh(v);
}

static inline void
pci_put32(uint8_t *p, size_t off, uint32_t val)
{
    uint32_t v = htole32(val);

    memcpy(p + off, &v, sizeof(v));
}

static inline uint16_t
pci_get16(const uint8_t *p, size_t off)
{
    uint16_t v;

    memcpy(&v, p + off, sizeof(v));
    return le16toh(v);
}

static inline void
pci_put16(uint8_t *p, size_t off, uint16_t val)
{
    uint16_t v = htole16(val);

    memcpy(p + off, &v, sizeof(v));
}

#endif /* VFU_PCI_REGS_H */
