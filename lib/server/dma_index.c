/*
 * dma_index.c owns the index of the DMA map table (dma_index.h): a B+ tree
 * keyed by each region's start, its leaves holding what a lookup needs.
 *
 * Why not a binary tree (glibc's tsearch()): with 65535 regions and more,
 * lookups at random addresses are dominated by cache misses, two per
 * level of about 20 levels (the node, then the region it points to); they
 * measured 4 to 10 times slower than a binary search of a sorted array.
 * Here a node holds up to FANOUT keys side by side, searched without
 * branches, and a lookup in 10^6 regions visits four nodes, the upper ones
 * cached, and nothing else.
 *
 * Layout: every node holds nr entries (keys[i], vals[i]) in key order.
 * In a leaf, keys[i] is the start of region vals[i]. In an inner node,
 * vals[i] is a child and keys[i] (i >= 1) is the lowest key below it,
 * exactly (kept so as regions go), which makes the leaf a search ends in
 * hold the answer; keys[0] of an inner node is not used. A node but the
 * root holds at least MIN_FILL entries (the one being filled at either
 * end of the key space aside: see split_point()), so the height is
 * O(log n); an inner root holds at least two. No node is empty.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dma_index.h"

/* Tests build this file with a small FANOUT to reach deep trees. */
#ifndef FANOUT
#define FANOUT      64
#endif
#define MIN_FILL    (FANOUT / 2)
#define MAX_DEPTH   16          /* 32^15 entries at the least fill: ample */

/* A leaf's region (its start is the key), or an inner node's child. */
union ix_val {
    struct {
        uint64_t size;
        uint64_t gen;
        uint32_t slot;
        uint32_t prot;
    } region;
    struct dma_index_node *child;
};

struct dma_index_node {
    unsigned nr;
    bool leaf;
    uint64_t keys[FANOUT];      /* apart from vals: a search reads only these */
    union ix_val vals[FANOUT];
};

typedef struct dma_index_node node_t;

/* The last entry whose key is at most @key, or -1. */
static int
node_floor(const node_t *n, uint64_t key)
{
    unsigned lo = 0, len = n->nr;

    /*
     * The keys' cache lines all at once: in a big table a node is seldom
     * cached, and the halvings would otherwise wait for one line after
     * another.
     */
    for (unsigned i = 0; i < len; i += 64 / sizeof(n->keys[0])) {
        __builtin_prefetch(&n->keys[i]);
    }
    /*
     * Without branches (the compiler makes a conditional move of the
     * choice): a mispredicted branch per halving cost more than the
     * search. Keys below lo are at most @key, keys from lo + len above it.
     */
    while (len > 1) {
        unsigned half = len / 2;
        lo = n->keys[lo + half] <= key ? lo + half : lo;
        len -= half;
    }
    return (int)lo - (len == 0 || n->keys[lo] > key);
}

/* The child of inner node @n that @key belongs under. */
static unsigned
child_of(const node_t *n, uint64_t key)
{
    int i = node_floor(n, key);
    return i < 1 ? 0 : (unsigned)i;
}

/*
 * The leaf where @key belongs and in *i the last entry there whose key is
 * at most @key (-1: @key is below every key), or NULL when empty.
 */
static const node_t *
floor_leaf(const struct dma_index *ix, uint64_t key, int *i)
{
    const node_t *n = ix->root;

    if (n == NULL) {
        return NULL;
    }
    while (!n->leaf) {
        n = n->vals[child_of(n, key)].child;
    }
    *i = node_floor(n, key);
    return n;
}

static void
ent_of(const node_t *leaf, unsigned i, struct dma_ent *e)
{
    *e = (struct dma_ent){
        .iova = leaf->keys[i], .size = leaf->vals[i].region.size,
        .gen = leaf->vals[i].region.gen, .slot = leaf->vals[i].region.slot,
        .prot = leaf->vals[i].region.prot,
    };
}

/* Entry @i of @leaf ends at or above @addr. */
static bool
reaches(const node_t *leaf, int i, uint64_t addr)
{
    return i >= 0 &&
           leaf->keys[i] + (leaf->vals[i].region.size - 1) >= addr;
}

bool
dma_index_find(const struct dma_index *ix, uint64_t addr, struct dma_ent *e)
{
    int i;
    const node_t *leaf = floor_leaf(ix, addr, &i);

    if (leaf == NULL || !reaches(leaf, i, addr)) {
        return false;
    }
    ent_of(leaf, (unsigned)i, e);
    return true;
}

bool
dma_index_overlap(const struct dma_index *ix, uint64_t iova, uint64_t size)
{
    int i;
    /*
     * Only the region starting last at or before the end can overlap: one
     * starting before it ends before it starts.
     */
    const node_t *leaf = floor_leaf(ix, iova + (size - 1), &i);

    return leaf != NULL && reaches(leaf, i, iova);
}

bool
dma_index_last(const struct dma_index *ix, struct dma_ent *e)
{
    const node_t *n = ix->root;

    if (n == NULL) {
        return false;
    }
    while (!n->leaf) {
        n = n->vals[n->nr - 1].child;
    }
    ent_of(n, n->nr - 1, e);
    return true;
}

/* Opens a gap at @i in @n (which has room) for (@key, @val). */
static void
node_insert(node_t *n, unsigned i, uint64_t key, union ix_val val)
{
    memmove(&n->keys[i + 1], &n->keys[i], (n->nr - i) * sizeof(n->keys[0]));
    memmove(&n->vals[i + 1], &n->vals[i], (n->nr - i) * sizeof(n->vals[0]));
    n->keys[i] = key;
    n->vals[i] = val;
    n->nr++;
}

static void
node_delete(node_t *n, unsigned i)
{
    memmove(&n->keys[i], &n->keys[i + 1], (n->nr - i - 1) * sizeof(n->keys[0]));
    memmove(&n->vals[i], &n->vals[i + 1], (n->nr - i - 1) * sizeof(n->vals[0]));
    n->nr--;
}

/* Appends @count entries of @src from @from to @dst. */
static void
node_append(node_t *dst, const node_t *src, unsigned from, unsigned count)
{
    memcpy(&dst->keys[dst->nr], &src->keys[from], count * sizeof(src->keys[0]));
    memcpy(&dst->vals[dst->nr], &src->vals[from], count * sizeof(src->vals[0]));
    dst->nr += count;
}

/*
 * Inserts (@key, @val) at @i in the full node @n, moving entries from @at
 * on to the empty node @right; returns the lowest key below @right.
 */
static uint64_t
node_split(node_t *n, node_t *right, unsigned at, unsigned i, uint64_t key,
           union ix_val val)
{
    right->leaf = n->leaf;
    node_append(right, n, at, FANOUT - at);
    n->nr = at;
    if (i < at || (i == at && at < FANOUT)) {
        node_insert(n, i, key, val);
    } else {
        node_insert(right, i - at, key, val);
    }
    /* A leaf's first key is exact; an inner one's was a separator in @n. */
    return right->keys[0];
}

/*
 * Where a full node on the insertion path splits. In the middle, as a
 * B-tree does; but a client mapping upwards (or downwards) inserts at the
 * very end (start) of the key space each time, and a middle split would
 * leave every node half empty behind it: there the full node stays full
 * and the new entry starts the next node. Only the node at the edge can be
 * left short that way.
 */
static unsigned
split_point(const node_t *n, unsigned i, bool right_edge, bool left_edge)
{
    if (right_edge && i == FANOUT) {
        return FANOUT;
    }
    /* An inner node keeps its first child: its keys[0] says nothing. */
    if (left_edge && i == (n->leaf ? 0u : 1u)) {
        return i;
    }
    return FANOUT / 2;
}

int
dma_index_add(struct dma_index *ix, const struct dma_ent *e)
{
    node_t *path[MAX_DEPTH], *spare[MAX_DEPTH + 1], *n;
    unsigned pos[MAX_DEPTH], depth = 0, need = 0, i;
    uint64_t last = e->iova + (e->size - 1), key = e->iova;
    bool right_edge = true, left_edge = true;
    union ix_val val = { .region = { .size = e->size, .gen = e->gen,
                                     .slot = e->slot, .prot = e->prot } };
    int j;

    if (ix->root == NULL) {
        ix->root = calloc(1, sizeof(node_t));
        if (ix->root == NULL) {
            return -ENOMEM;
        }
        ix->root->leaf = true;
    }
    /*
     * One descent by the new region's last byte: the region starting last
     * at or below it is the only one that can overlap; if none does, no
     * key lies between the new start and it, and the start goes right
     * after it.
     */
    for (n = ix->root; !n->leaf; n = n->vals[pos[depth++]].child) {
        path[depth] = n;
        pos[depth] = child_of(n, last);
        right_edge = right_edge && pos[depth] == n->nr - 1;
        left_edge = left_edge && pos[depth] == 0;
    }
    j = node_floor(n, last);
    if (reaches(n, j, key)) {
        return -EEXIST;
    }
    /* Every node that will split, and a new root: allocated up front. */
    for (i = depth + 1; i-- > 0;) {
        const node_t *m = i == depth ? n : path[i];
        if (m->nr < FANOUT) {
            break;
        }
        need += 1 + (i == 0);
    }
    for (i = 0; i < need; i++) {
        spare[i] = calloc(1, sizeof(node_t));
        if (spare[i] == NULL) {
            while (i-- > 0) {
                free(spare[i]);
            }
            return -ENOMEM;
        }
    }
    i = (unsigned)(j + 1);
    for (;;) {
        node_t *right;

        if (n->nr < FANOUT) {
            node_insert(n, i, key, val);
            break;
        }
        right = spare[--need];
        key = node_split(n, right, split_point(n, i, right_edge, left_edge),
                         i, key, val);
        val.child = right;
        if (depth == 0) {
            node_t *root = spare[--need];
            root->leaf = false;
            root->nr = 2;
            root->keys[0] = 0;
            root->vals[0].child = n;
            root->keys[1] = key;
            root->vals[1].child = right;
            ix->root = root;
            break;
        }
        depth--;
        n = path[depth];
        i = pos[depth] + 1;
    }
    ix->nr++;
    return 0;
}

/*
 * Child @i of @parent has fallen below MIN_FILL: takes an entry from a
 * sibling that can spare one, or merges it with a sibling (removing an
 * entry from @parent). Every lowest key stays exact: the entries moved
 * carry theirs, and @parent's separators follow.
 */
static void
rebalance(node_t *parent, unsigned i)
{
    node_t *n = parent->vals[i].child;
    node_t *left = i > 0 ? parent->vals[i - 1].child : NULL;
    node_t *right = i + 1 < parent->nr ? parent->vals[i + 1].child : NULL;

    if (left == NULL && right == NULL) {
        return;     /* an only child, at an edge: left short (split_point) */
    }
    if (left != NULL && left->nr > MIN_FILL) {
        /* Left's last entry becomes n's first. */
        uint64_t k = left->keys[left->nr - 1];
        union ix_val v = left->vals[left->nr - 1];
        left->nr--;
        if (!n->leaf) {
            n->keys[0] = parent->keys[i];   /* now separates n's old first */
        }
        node_insert(n, 0, k, v);
        parent->keys[i] = k;
    } else if (right != NULL && right->nr > MIN_FILL) {
        /* Right's first entry becomes n's last. */
        uint64_t k = n->leaf ? right->keys[0] : parent->keys[i + 1];
        node_insert(n, n->nr, k, right->vals[0]);
        parent->keys[i + 1] = right->keys[1];
        node_delete(right, 0);
    } else {
        /* Merge the pair (fewer than FANOUT entries) into the left one. */
        node_t *l = left != NULL ? left : n, *r = left != NULL ? n : right;
        unsigned ri = left != NULL ? i : i + 1;
        unsigned base = l->nr;

        node_append(l, r, 0, r->nr);
        if (!l->leaf) {
            l->keys[base] = parent->keys[ri];
        }
        free(r);
        node_delete(parent, ri);
    }
}

int
dma_index_remove(struct dma_index *ix, uint64_t iova)
{
    node_t *path[MAX_DEPTH], *n = ix->root;
    unsigned pos[MAX_DEPTH], depth = 0, i;
    int j;

    if (n == NULL) {
        return -ENOENT;
    }
    for (; !n->leaf; n = n->vals[pos[depth++]].child) {
        path[depth] = n;
        pos[depth] = child_of(n, iova);
    }
    j = node_floor(n, iova);
    if (j < 0 || n->keys[j] != iova) {
        return -ENOENT;
    }
    ix->nr--;
    /*
     * An emptied node (a short one at an edge) goes from its parent at
     * once, so that no node is ever empty.
     */
    for (i = (unsigned)j;; i = pos[--depth]) {
        node_delete(n, i);
        if (n->nr > 0 || depth == 0) {
            break;
        }
        free(n);
        n = path[depth - 1];
    }
    if (i == 0 && n->nr > 0) {
        /*
         * n's lowest key is now its first: for a leaf its first key, for an
         * inner node the separator of its new first child, which moved to
         * keys[0]. It bounds the subtrees above it up to the first that is
         * not its parent's first child; there it is a separator.
         */
        for (unsigned d = depth; d-- > 0;) {
            if (pos[d] > 0) {
                path[d]->keys[pos[d]] = n->keys[0];
                break;
            }
        }
    }
    while (depth > 0 && n->nr < MIN_FILL) {
        depth--;
        rebalance(path[depth], pos[depth]);
        n = path[depth];
    }
    n = ix->root;
    if (n->nr == 0) {
        ix->root = NULL;                /* the last entry went */
        free(n);
    } else if (!n->leaf && n->nr == 1) {
        ix->root = n->vals[0].child;    /* one level less */
        free(n);
    }
    return 0;
}

static void
walk_node(const node_t *n, void (*fn)(const struct dma_ent *e, void *arg),
          void *arg)
{
    for (unsigned i = 0; i < n->nr; i++) {
        if (n->leaf) {
            struct dma_ent e;
            ent_of(n, i, &e);
            fn(&e, arg);
        } else {
            walk_node(n->vals[i].child, fn, arg);
        }
    }
}

void
dma_index_walk(const struct dma_index *ix,
               void (*fn)(const struct dma_ent *e, void *arg), void *arg)
{
    if (ix->root != NULL) {
        walk_node(ix->root, fn, arg);
    }
}

static void
free_node(node_t *n)
{
    for (unsigned i = 0; !n->leaf && i < n->nr; i++) {
        free_node(n->vals[i].child);
    }
    free(n);
}

void
dma_index_clear(struct dma_index *ix)
{
    if (ix->root != NULL) {
        free_node(ix->root);
    }
    ix->root = NULL;
    ix->nr = 0;
}
