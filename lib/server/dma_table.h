/*
 * The DMA map table's layout, shared by dma.c, which owns and changes it
 * (DMA_MAP, DMA_UNMAP, logging), and dma_sgl.c, which only reads it (the
 * scatter/gather calls). See docs/dma.md.
 *
 * Regions live in slots that keep their index (and their address) for
 * their lifetime; the index (dma_index.h) orders them by DMA address and
 * keeps a copy of what lookups need (range, generation, slot, access). Each
 * mapping gets a new generation number; a dma_sg_t records slot and
 * generation, so an entry made before an unmap is recognised as stale even
 * if a later map reuses the slot.
 */
#ifndef VFU_DMA_TABLE_H
#define VFU_DMA_TABLE_H

#include "dma_index.h"
#include "private.h"

struct dma_region {
    uint64_t iova;
    uint64_t size;
    uint64_t gen;               /* 0: the slot is free */
    uint8_t *vaddr;             /* our mapping of iova, or NULL */
    void *map_base;             /* the mapping, rounded out to page_size */
    size_t map_len;
    size_t page_size;           /* of the mapping; 0 without one */
    int fd;                     /* FILE_IO: our duplicate of the fd; or -1 */
    uint64_t offset;            /* of iova in the client's fd */
    uint32_t prot;              /* PROT_READ / PROT_WRITE the client granted */
    uint32_t slot;              /* its own index; while free, the next free */
};

/*
 * Slots come in chunks that never move: chunk k holds SLOT_CHUNK0 << k
 * slots, so the table grows without copying and wastes at most half.
 */
#define SLOT_CHUNK0     16u
#define MAX_SLOT_CHUNKS 20      /* 16 * (2^20 - 1) slots: 16 times the most */
#define NO_SLOT         UINT32_MAX

struct dma_table {
    vfu_dma_register_cb_t *register_cb;
    vfu_dma_unregister_cb_t *unregister_cb;

    struct dma_index index;     /* the live regions by address */
    struct dma_region *chunks[MAX_SLOT_CHUNKS];
    uint32_t nr_slots;          /* slots ever used (free ones included) */
    uint32_t free_head;         /* NO_SLOT: none free */
    uint64_t next_gen;
    uint32_t max_regions;       /* vfu_setup_device_dma() */

    struct dirty_log *log;      /* dirty.c; NULL: not logging */
    bool log_all;               /* no ranges given: log every mapping */
};

/* Slot @slot (< t->nr_slots). */
static inline struct dma_region *
dma_slot(const struct dma_table *t, uint32_t slot)
{
    uint32_t n = slot / SLOT_CHUNK0 + 1;        /* in [2^k, 2^(k+1)) */
    unsigned k = 31u - (unsigned)__builtin_clz(n);

    return &t->chunks[k][slot - SLOT_CHUNK0 * ((1u << k) - 1)];
}

/* Whether a live region holds @addr (never without a table); in @e. */
static inline bool
dma_find(const struct dma_table *t, uint64_t addr, struct dma_ent *e)
{
    return t != NULL && dma_index_find(&t->index, addr, e);
}

#endif /* VFU_DMA_TABLE_H */
