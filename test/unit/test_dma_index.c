/*
 * Unit tests of the DMA map table's index (lib/server/dma_index.c), a B+ tree:
 * against a model, with regions added and removed upwards, downwards and
 * at random (every split, borrow and merge, at every level), lookups of
 * every page and gap, overlap checks, walks, and the top of the address
 * space. Meson builds this twice: with the library's fanout and with a
 * fanout of 4, where the same regions make a tree eight levels deep.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dma_index.h"

#define PG          4096u
#define MODEL_PAGES 20000u

struct model {
    struct dma_index ix;
    uint64_t base;                      /* address of page 0 */
    int32_t owner[MODEL_PAGES];         /* page -> first page of its region */
    struct dma_ent ent[MODEL_PAGES];    /* the region starting at a page */
    size_t nr;
    uint64_t next_gen;
};

static uint64_t
xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
assert_ent_equal(const struct dma_ent *a, const struct dma_ent *b)
{
    assert_int_equal(a->iova, b->iova);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->gen, b->gen);
    assert_int_equal(a->slot, b->slot);
    assert_int_equal(a->prot, b->prot);
}

struct walk_state {
    struct model *m;
    uint64_t next;                      /* lowest address the next may have */
    size_t seen;
};

static void
walk_check(const struct dma_ent *e, void *arg)
{
    struct walk_state *w = arg;
    uint32_t page = (uint32_t)((e->iova - w->m->base) / PG);

    assert_true(w->seen == 0 || e->iova >= w->next);
    assert_int_equal(w->m->owner[page], (int32_t)page);
    assert_ent_equal(e, &w->m->ent[page]);
    w->next = e->iova + e->size;
    w->seen++;
}

/* Every page (first and last byte) found as the model says; the walk. */
static void
model_check(struct model *m)
{
    struct walk_state w = { .m = m };
    struct dma_ent e;

    assert_int_equal(m->ix.nr, m->nr);
    for (uint32_t p = 0; p < MODEL_PAGES; p++) {
        uint64_t a = m->base + (uint64_t)p * PG;
        bool mapped = m->owner[p] >= 0;

        assert_int_equal(dma_index_find(&m->ix, a, &e), mapped);
        if (mapped) {
            assert_ent_equal(&e, &m->ent[m->owner[p]]);
        }
        assert_int_equal(dma_index_find(&m->ix, a + PG - 1, &e), mapped);
        assert_int_equal(dma_index_overlap(&m->ix, a + 100, 1), mapped);
    }
    dma_index_walk(&m->ix, walk_check, &w);
    assert_int_equal(w.seen, m->nr);
    assert_int_equal(dma_index_last(&m->ix, &e), m->nr > 0);
}

static void
model_add(struct model *m, uint32_t p, uint32_t len, uint64_t *x)
{
    struct dma_ent e = {
        .iova = m->base + (uint64_t)p * PG, .size = (uint64_t)len * PG,
        .gen = m->next_gen++, .slot = p, .prot = (uint32_t)(*x % 4),
    };
    bool free = true;

    for (uint32_t q = p; q < p + len; q++) {
        free = free && m->owner[q] < 0;
    }
    assert_int_equal(dma_index_overlap(&m->ix, e.iova, e.size), !free);
    assert_int_equal(dma_index_add(&m->ix, &e), free ? 0 : -EEXIST);
    if (free) {
        m->ent[p] = e;
        for (uint32_t q = p; q < p + len; q++) {
            m->owner[q] = (int32_t)p;
        }
        m->nr++;
        assert_true(dma_index_overlap(&m->ix, e.iova + e.size - 1, 1));
    }
}

static void
model_remove(struct model *m, uint32_t p)
{
    int32_t first = m->owner[p];

    if (first < 0) {
        assert_int_equal(dma_index_remove(&m->ix, m->base + (uint64_t)p * PG),
                         -ENOENT);
        return;
    }
    if ((uint32_t)first != p) {
        /* Only a region's start removes it. */
        assert_int_equal(dma_index_remove(&m->ix, m->base + (uint64_t)p * PG),
                         -ENOENT);
    }
    assert_int_equal(dma_index_remove(&m->ix, m->ent[first].iova), 0);
    assert_false(dma_index_overlap(&m->ix, m->ent[first].iova,
                                   m->ent[first].size));
    for (uint32_t q = (uint32_t)first;
         q < (uint32_t)first + m->ent[first].size / PG; q++) {
        m->owner[q] = -1;
    }
    m->nr--;
}

/*
 * 300000 operations in phases of 20000: mapping upwards (each next to the
 * last, as clients do), downwards, scattered, then draining at random.
 */
static void
model_run(uint64_t base)
{
    struct model *m = calloc(1, sizeof(*m));
    uint64_t x = base | 1;
    uint32_t cursor = 0;
    struct dma_ent e;

    assert_non_null(m);
    m->base = base;
    memset(m->owner, 0xff, sizeof(m->owner));
    for (int op = 0; op < 300000; op++) {
        int phase = (op / 20000) % 4;
        uint32_t len = 1 + (uint32_t)(xorshift(&x) % 8), p;
        bool add = phase < 3 ? xorshift(&x) % 4 != 0 : xorshift(&x) % 4 == 0;

        if (phase == 0) {
            cursor = (cursor + len + (uint32_t)(xorshift(&x) % 3)) %
                     MODEL_PAGES;
        } else if (phase == 1) {
            cursor = (cursor + MODEL_PAGES - len - 1) % MODEL_PAGES;
        } else {
            cursor = (uint32_t)(xorshift(&x) % MODEL_PAGES);
        }
        p = cursor;
        if (add && p + len <= MODEL_PAGES) {
            model_add(m, p, len, &x);
        } else if (!add) {
            model_remove(m, p);
        }
        if (op % 10000 == 9999) {
            model_check(m);
        }
    }
    model_check(m);
    /* Empty it from the top, as the table does when the client leaves. */
    while (dma_index_last(&m->ix, &e)) {
        uint32_t p = (uint32_t)((e.iova - base) / PG);
        assert_int_equal(m->owner[p], (int32_t)p);
        model_remove(m, p);
    }
    assert_int_equal(m->nr, 0);
    assert_int_equal(m->ix.nr, 0);
    assert_null(m->ix.root);
    dma_index_clear(&m->ix);
    free(m);
}

static void
test_model(void **state)
{
    (void)state;
    model_run(0x100000);
}

/* The last region may end at 2^64 - 1. */
static void
test_model_top(void **state)
{
    (void)state;
    model_run(UINT64_MAX - (uint64_t)MODEL_PAGES * PG + 1);
}

static void
test_empty_and_edges(void **state)
{
    struct dma_index ix = { 0 };
    struct dma_ent e, top = { .iova = UINT64_MAX - PG + 1, .size = PG };
    struct dma_ent one = { .iova = 0, .size = 1, .gen = 7 };

    (void)state;
    assert_false(dma_index_find(&ix, 0, &e));
    assert_false(dma_index_overlap(&ix, 0, UINT64_MAX));
    assert_false(dma_index_last(&ix, &e));
    assert_int_equal(dma_index_remove(&ix, 0), -ENOENT);
    dma_index_clear(&ix);

    assert_int_equal(dma_index_add(&ix, &top), 0);
    assert_int_equal(dma_index_add(&ix, &one), 0);
    assert_true(dma_index_find(&ix, UINT64_MAX, &e));
    assert_int_equal(e.iova, top.iova);
    assert_true(dma_index_find(&ix, 0, &e));
    assert_int_equal(e.gen, 7);
    assert_false(dma_index_find(&ix, 1, &e));
    assert_false(dma_index_find(&ix, UINT64_MAX - PG, &e));
    assert_true(dma_index_overlap(&ix, 0, UINT64_MAX));
    assert_true(dma_index_overlap(&ix, UINT64_MAX, 1));
    assert_false(dma_index_overlap(&ix, 1, UINT64_MAX - PG));
    /* Everything between fills the gap exactly; nothing more fits. */
    struct dma_ent gap = { .iova = 1, .size = UINT64_MAX - PG };
    struct dma_ent inside = { .iova = 5, .size = 1 };
    assert_int_equal(dma_index_add(&ix, &gap), 0);
    assert_int_equal(dma_index_add(&ix, &inside), -EEXIST);
    assert_true(dma_index_last(&ix, &e));
    assert_int_equal(e.iova, top.iova);
    assert_int_equal(ix.nr, 3);
    dma_index_clear(&ix);
    assert_null(ix.root);
    assert_int_equal(ix.nr, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_edges),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_model_top),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
