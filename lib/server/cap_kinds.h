/*
 * What the library knows about each kind of capability (cap_kinds.c): its
 * size from its contents, its registers and how their bits behave, and
 * what a write to it does. The list of capabilities a device added, and
 * where they sit, are caps.c's.
 */
#ifndef VFU_CAP_KINDS_H
#define VFU_CAP_KINDS_H

#include "private.h"

/* PCI Express capability sizes: all registers of version 1, version 2. */
#define PX_SIZEOF_V1    0x24
#define PX_SIZEOF_V2    0x3c

/* Largest capability with behaviour (PCI Express v2). */
#define MAX_HOOKED_SIZE PX_SIZEOF_V2

/* One register of a capability and how its bits behave. */
struct reg_rule {
    uint8_t off;        /* from the start of the capability */
    uint8_t len;        /* 1, 2 or 4 bytes */
    uint32_t rw;        /* bits the client writes */
    uint32_t w1c;       /* bits the client clears by writing 1 */
    uint32_t sticky;    /* bits no reset changes */
    uint32_t flrkeep;   /* bits a function-level reset keeps */
};

#define MAX_RULES 8

/* What the library knows about one kind of capability. */
struct cap_kind {
    uint16_t id;
    bool ext;
    bool unique;            /* at most one per function */
    /* Size in config space worked out from @data; 0 when @data is invalid. */
    size_t (*size)(const uint8_t *data);
    size_t copy_max;        /* bytes taken from @data (0: the size) */
    /* The capability's registers, from its contents; returns how many. */
    size_t (*rules)(const uint8_t *cap, struct reg_rule *rules);
    size_t rw_from;         /* device data writable from here to the end */
    /*
     * Adjusts the new values @val of the capability's registers after a
     * write (@old holds the current ones) and records side effects.
     */
    void (*write)(const uint8_t *old, uint8_t *val,
                  struct caps_pending *pending);
};


/* The kind of capability @id in the standard (or @ext: extended) chain. */
const struct cap_kind *cap_kind_of(uint16_t id, bool ext);

#endif /* VFU_CAP_KINDS_H */
