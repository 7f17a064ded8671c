/*
 * The DMA map table's index (dma_index.c): the mapped regions ordered by
 * DMA address, so that adding, removing and finding one cost O(log n)
 * whatever the order the client maps in. It keeps a copy of what a lookup
 * needs of each region, so that a lookup touches nothing else.
 */
#ifndef VFU_DMA_INDEX_H
#define VFU_DMA_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A region as the index keeps it. */
struct dma_ent {
    uint64_t iova;
    uint64_t size;              /* > 0; iova + size - 1 does not wrap */
    uint64_t gen;               /* of the region's mapping */
    uint32_t slot;              /* where the region lives (dma_table.h) */
    uint32_t prot;              /* PROT_READ / PROT_WRITE granted */
};

struct dma_index_node;

struct dma_index {
    struct dma_index_node *root;    /* NULL when empty */
    size_t nr;
};

/* Adds a copy of @e. 0, -EEXIST when it overlaps a region, or -ENOMEM. */
int dma_index_add(struct dma_index *ix, const struct dma_ent *e);

/* Removes the region starting at @iova; 0, or -ENOENT when there is none. */
int dma_index_remove(struct dma_index *ix, uint64_t iova);

/* Whether a region holds @addr; if so it is copied to @e. */
bool dma_index_find(const struct dma_index *ix, uint64_t addr,
                    struct dma_ent *e);

/* Whether a region overlaps [@iova, @iova + @size) (@size > 0). */
bool dma_index_overlap(const struct dma_index *ix, uint64_t iova,
                       uint64_t size);

/* The region at the highest address, copied to @e; false when empty. */
bool dma_index_last(const struct dma_index *ix, struct dma_ent *e);

/*
 * Calls @fn for every region in ascending address order; @fn must not
 * change the index.
 */
void dma_index_walk(const struct dma_index *ix,
                    void (*fn)(const struct dma_ent *e, void *arg), void *arg);

/* Forgets every region. */
void dma_index_clear(struct dma_index *ix);

#endif /* VFU_DMA_INDEX_H */
