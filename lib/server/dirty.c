/*
 * dirty.c owns the dirty-page log, the data structure behind the client's
 * DMA logging (dma.c decides what is logged and when): a sorted list of
 * disjoint page ranges at one page size, each with a bitmap of the pages
 * written. Covering a range that overlaps others merges them, bits kept.
 * Page numbers, not byte addresses, so nothing overflows near 2^64.
 */
#include <stdlib.h>
#include <string.h>

#include "private.h"

/* Pages [first, first + npages) */
struct log_range {
    uint64_t first;
    uint64_t npages;
    uint64_t *bits;
};

struct dirty_log {
    uint64_t pgsize;
    struct log_range *r;        /* sorted by first page, disjoint */
    size_t nr;
    uint64_t pages;             /* total, at most DIRTY_MAX_PAGES */
};

struct dirty_log *
dirty_new(uint64_t pgsize)
{
    struct dirty_log *log = calloc(1, sizeof(*log));

    if (log != NULL) {
        log->pgsize = pgsize;
    }
    return log;
}

uint64_t
dirty_page_size(const struct dirty_log *log)
{
    return log->pgsize;
}

void
dirty_free(struct dirty_log *log)
{
    if (log == NULL) {
        return;
    }
    for (size_t i = 0; i < log->nr; i++) {
        free(log->r[i].bits);
    }
    free(log->r);
    free(log);
}

static void
bits_set(uint64_t *bits, uint64_t from, uint64_t to)     /* [from, to] */
{
    for (;;) {
        uint64_t b = from % 64, n = 64 - b;
        if (to - from < n) {
            n = to - from + 1;
        }
        bits[from / 64] |= (n == 64 ? ~0ull : ((1ull << n) - 1) << b);
        if (to - from < 64 - b) {
            return;
        }
        from += n;
    }
}

/* Index of the first range whose last page is at or above @page. */
static size_t
lower(const struct dirty_log *log, uint64_t page)
{
    size_t lo = 0, hi = log->nr;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->r[mid].first + log->r[mid].npages - 1 < page) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The pages of [iova, iova + len - 1]; len > 0 and the end does not wrap. */
static void
page_span(const struct dirty_log *log, uint64_t iova, uint64_t len,
          uint64_t *first, uint64_t *last)
{
    *first = iova / log->pgsize;
    *last = (iova + (len - 1)) / log->pgsize;
}

int
dirty_cover(struct dirty_log *log, uint64_t iova, uint64_t len)
{
    uint64_t first, last, old = 0;
    size_t lo, hi;
    struct log_range m;

    page_span(log, iova, len, &first, &last);
    lo = hi = lower(log, first);
    while (hi < log->nr && log->r[hi].first <= last) {
        old += log->r[hi].npages;
        hi++;
    }
    if (hi > lo) {
        const struct log_range *end = &log->r[hi - 1];
        first = first < log->r[lo].first ? first : log->r[lo].first;
        if (end->first + end->npages - 1 > last) {
            last = end->first + end->npages - 1;
        }
        if (hi == lo + 1 && log->r[lo].first == first &&
            log->r[lo].npages == last - first + 1) {
            return 0;           /* already covered */
        }
    }
    m.first = first;
    m.npages = last - first + 1;
    if (m.npages > DIRTY_MAX_PAGES ||
        log->pages - old + m.npages > DIRTY_MAX_PAGES) {
        return -E2BIG;
    }
    m.bits = calloc((m.npages + 63) / 64, sizeof(uint64_t));
    if (m.bits == NULL) {
        return -ENOMEM;
    }
    if (hi == lo) {
        struct log_range *r = realloc(log->r, (log->nr + 1) * sizeof(*r));
        if (r == NULL) {
            free(m.bits);
            return -ENOMEM;
        }
        log->r = r;
    }
    for (size_t i = lo; i < hi; i++) {
        const struct log_range *o = &log->r[i];
        for (uint64_t w = 0; w < (o->npages + 63) / 64; w++) {
            for (uint64_t word = o->bits[w]; word != 0; word &= word - 1) {
                uint64_t p = o->first - first + w * 64 +
                             (uint64_t)__builtin_ctzll(word);
                bits_set(m.bits, p, p);
            }
        }
        free(o->bits);
    }
    memmove(&log->r[lo + 1], &log->r[hi], (log->nr - hi) * sizeof(*log->r));
    log->r[lo] = m;
    log->nr = log->nr - (hi - lo) + 1;
    log->pages = log->pages - old + m.npages;
    return 0;
}

void
dirty_mark(struct dirty_log *log, uint64_t iova, uint64_t len)
{
    uint64_t first, last;

    if (len == 0) {
        return;
    }
    if (len - 1 > UINT64_MAX - iova) {
        len = UINT64_MAX - iova + 1;    /* no further than the end */
    }
    page_span(log, iova, len, &first, &last);
    for (size_t i = lower(log, first); i < log->nr && log->r[i].first <= last;
         i++) {
        const struct log_range *r = &log->r[i];
        uint64_t a = first > r->first ? first : r->first;
        uint64_t b = r->first + r->npages - 1;
        bits_set(r->bits, a - r->first, (last < b ? last : b) - r->first);
    }
}

void
dirty_report(struct dirty_log *log, uint64_t iova, uint64_t len,
             uint64_t page_size, uint64_t *bitmap)
{
    const uint64_t L = log->pgsize, last = iova + (len - 1);
    uint64_t first_pg, last_pg;

    page_span(log, iova, len, &first_pg, &last_pg);
    for (size_t i = lower(log, first_pg);
         i < log->nr && log->r[i].first <= last_pg; i++) {
        struct log_range *r = &log->r[i];
        uint64_t a = (first_pg > r->first ? first_pg : r->first) - r->first;
        uint64_t b = r->first + r->npages - 1;
        b = (last_pg < b ? last_pg : b) - r->first;

        for (uint64_t w = a / 64; w <= b / 64; w++) {
            uint64_t word = r->bits[w];
            if (w == a / 64) {
                word &= ~0ull << (a % 64);
            }
            if (w == b / 64 && b % 64 != 63) {
                word &= (1ull << (b % 64 + 1)) - 1;
            }
            for (; word != 0; word &= word - 1) {
                uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(word);
                uint64_t start = (r->first + p) * L, end = start + (L - 1);
                /* The report's bits for what this page shares with it... */
                uint64_t s = start > iova ? start : iova;
                uint64_t e = end < last ? end : last;
                bits_set(bitmap, (s - iova) / page_size, (e - iova) / page_size);
                /* ...read and cleared when the report saw all of the page. */
                if (start >= iova && end <= last) {
                    r->bits[w] &= ~(1ull << (p % 64));
                }
            }
        }
    }
}
