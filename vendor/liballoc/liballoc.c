/*
 * liballoc.c — heaplab's liballoc-style allocator.
 *
 * The design of liballoc 1.1 (Durand Miller, Spoon OS): memory comes from the
 * host in *major* blocks of whole pages; allocations are *minor* blocks inside
 * them, each behind a header that carries a magic word, its size, the size that
 * was asked for and links to its neighbours; a "best bet" hint names the major
 * with the most room; a major that empties is given back. Written here from that
 * design, with these differences:
 *
 *  - per instance: all state lives in the heap's control pages (obtained through
 *    hooks->alloc_page), so many heaps coexist; the upstream global API kmalloc/
 *    kfree/kcalloc/krealloc and its four hooks serve one default instance;
 *  - 64-bit clean: sizes and addresses are size_t / pointers; every payload is
 *    16-byte aligned; requests are bounded before any arithmetic;
 *  - no linear walk. Upstream found room by visiting every minor block of every
 *    major. Here a major is always tiled by minors, in use or *dead* (free);
 *    dead minors are coalesced with dead neighbours when they appear, and every
 *    dead minor (but one, see best bet) sits in a heap-wide index of segregated
 *    size classes with a two-level bitmap. malloc, free, realloc and memalign are
 *    O(1): a bitmap search, a constant number of list and link updates.
 *
 * A major block (pages * page_size bytes, page-aligned, from alloc_page):
 *
 *   maj                                                        maj + maj->size
 *   +---------+--------------+------------+-----------+-------+-------------+
 *   | la_major| minor (used) | minor dead | minor used|  ...  | minor (dead)|
 *   | 80 B    | hdr | data   | hdr |links |           |       | = tail      |
 *   +---------+--------------+------------+-----------+-------+-------------+
 *              ^ maj->first    prev/next links join the minors in address
 *                              order; m->next == m + m->size, or NULL for
 *                              maj->last. Two dead minors are never adjacent.
 *
 * The free index (in the heap's control pages):
 *
 *   class:  0 ... 15 | 16 ..23 | 24 ..31 | ...      (size of the whole dead minor)
 *           16 B steps| [256,512) in 8 | [512,1K) in 8 | ... up to 2^64
 *   bitmap[w] bit c%64 set <=> heads[c] != NULL;  summary bit w <=> bitmap[w] != 0
 *   heads[c] -> dead minor <-> dead minor <-> ...  (links in the dead payload)
 *
 * Finding room for a minor of t bytes (header included), in this order:
 *   1. the head of t's own class, if it is big enough (good fit, O(1));
 *   2. the head of the first non-empty class above t's (any of it fits);
 *   3. the best bet: the major with the largest untouched tail, whose last dead
 *      minor (the tail) is kept out of the index and carved from the front, as
 *      upstream appends minors after the last one in its best-bet major;
 *   4. a new major: at least LIBALLOC_MAJOR_PAGES pages, growing with the heap
 *      up to LIBALLOC_MAJOR_MAX_PAGES, or exactly what one huge request needs.
 * The chosen dead minor is split: the front is the allocation, a rest of at
 * least LA_MIN_MINOR bytes becomes a new dead minor (into the index, or the
 * tail). free marks the minor dead, merges it with dead neighbours and indexes
 * the result. A major whose last minor in use is freed is given back through
 * free_page, except one of standard size that the heap keeps as a spare.
 *
 * Every decision depends only on the sequence of requests and the addresses that
 * alloc_page returns (no randomness, no hashing), so a port replaying the same
 * trace over the same page source returns the same offsets.
 *
 * A free or realloc of a pointer that is not a live minor (bad magic, a dead
 * minor, not 16-aligned, a header that does not fit its major) is counted in
 * the heap's bad_frees and otherwise ignored: never followed.
 */
#include "liballoc.h"

#include <stdint.h>
#include "../libc.h"

/* ---- build options ------------------------------------------------------------ */

/* Minimum pages per major block (upstream's l_pageCount): 16. */
#ifndef LIBALLOC_MAJOR_PAGES
#define LIBALLOC_MAJOR_PAGES 16
#endif
/* Standard majors grow with the heap, by two rules, the larger wins: a quarter
 * of the pages the heap holds up to LIBALLOC_MAJOR_QUARTER_PAGES (256: 1 MiB
 * with 4 KiB pages), which suits small heaps (fewer major ends, where space is
 * lost); and 1/2^shift of them (default 6: a sixty-fourth, as dlmalloc's
 * segments), so a heap that grows to N bytes makes O(log N) alloc_page calls.
 * Measured with `heaplab bench` (peak overhead, fast/space/stable/realtime): the
 * quarter rule alone, capped, 1.57/1.16/1.04/1.28 but O(N) calls; a sixteenth
 * alone 1.75/1.18/1.04/1.16; both, with a sixty-fourth, 1.57/1.17/1.04/1.28. */
#ifndef LIBALLOC_MAJOR_QUARTER_PAGES
#define LIBALLOC_MAJOR_QUARTER_PAGES 256
#endif
#ifndef LIBALLOC_MAJOR_GROWTH_SHIFT
#define LIBALLOC_MAJOR_GROWTH_SHIFT 6
#endif
/* ... up to this many pages: 2^20 (4 GiB with 4 KiB pages). Set equal to
 * LIBALLOC_MAJOR_PAGES for upstream's fixed-size majors. */
#ifndef LIBALLOC_MAJOR_MAX_PAGES
#define LIBALLOC_MAJOR_MAX_PAGES ((size_t)1 << 20)
#endif
/* A major that empties is kept as the spare (one at most) only if it has at
 * most this many pages: 64 (256 KiB with 4 KiB pages); larger ones go back at
 * once, so a heap that frees everything holds little more than its control. */
#ifndef LIBALLOC_SPARE_MAX_PAGES
#define LIBALLOC_SPARE_MAX_PAGES 64
#endif
/* Page size that the default instance's hooks claim for liballoc_alloc: 4096. */
#ifndef LIBALLOC_PAGE_SIZE
#define LIBALLOC_PAGE_SIZE 4096
#endif
/* 1: fill fresh payloads with 0xAA and freed ones with 0xDD (easy to spot in a
 * dump; costs time). 0 (default): no fill. kcalloc zeroes either way. */
#ifndef LIBALLOC_FILL
#define LIBALLOC_FILL 0
#endif
/* 1 (default): define weak no-op liballoc_lock/unlock/alloc/free, so the library
 * links in a program that never uses the global API; 0: the program must. */
#ifndef LIBALLOC_DEFAULT_HOOKS
#define LIBALLOC_DEFAULT_HOOKS 1
#endif

_Static_assert(LIBALLOC_MAJOR_PAGES >= 1, "a major is at least one page");
_Static_assert(LIBALLOC_MAJOR_MAX_PAGES >= LIBALLOC_MAJOR_PAGES, "growth cap below minimum");
_Static_assert(LIBALLOC_SPARE_MAX_PAGES >= LIBALLOC_MAJOR_PAGES, "a minimum major can be the spare");
_Static_assert(LIBALLOC_MAJOR_GROWTH_SHIFT >= 1 && LIBALLOC_MAJOR_GROWTH_SHIFT < 64, "a major grows by a fraction");
_Static_assert(LIBALLOC_PAGE_SIZE >= 4096 && (LIBALLOC_PAGE_SIZE & (LIBALLOC_PAGE_SIZE - 1)) == 0,
               "LIBALLOC_PAGE_SIZE: a power of two >= 4096");

/* ---- fixed constants (not to be tuned) -------------------------------------- */

enum { LA_ALIGN = 16 };                 /* every payload and minor size */

#define LA_MAGIC_USED  ((uint64_t)0x6C6962616C6C6F63u)   /* "liballoc": minor in use  */
#define LA_MAGIC_DEAD  ((uint64_t)0xDEADDEADDEADDEADu)   /* minor free (dead)        */
#define LA_MAGIC_MAJOR ((uint64_t)0x4D414A4F52424C4Bu)   /* "MAJORBLK"               */
#define LA_MAGIC_HEAP  ((uint64_t)0x4C4948454150484Cu)   /* "LIHEAPHL"               */
#define LA_MAGIC_GONE  ((uint64_t)0)                     /* header merged away       */

/* Largest request served: anything above (PTRDIFF_MAX + 1, SIZE_MAX ...) is NULL,
 * and every size computed from a bounded request fits a size_t with room. */
#define LA_MAX_REQUEST ((size_t)PTRDIFF_MAX / 2)
/* Largest page size accepted from hooks (keeps major arithmetic far from wrap). */
#define LA_MAX_PAGE_SIZE ((size_t)1 << 30)

/* Size classes: linear 16-byte steps below LA_LINEAR_LIMIT, then each power of
 * two [2^f, 2^(f+1)) split into LA_SL_COUNT equal classes. */
enum {
    LA_LINEAR_SHIFT = 8,
    LA_LINEAR_LIMIT = 1 << LA_LINEAR_SHIFT,
    LA_LINEAR_CLASSES = LA_LINEAR_LIMIT / LA_ALIGN,
    LA_SL_BITS = 3,
    LA_SL_COUNT = 1 << LA_SL_BITS,
    LA_FL_COUNT = 64 - LA_LINEAR_SHIFT,          /* log2 sizes 8..63 */
    LA_CLASSES = LA_LINEAR_CLASSES + LA_FL_COUNT * LA_SL_COUNT,
    LA_BITMAP_WORDS = (LA_CLASSES + 63) / 64,
};
_Static_assert((LA_LINEAR_LIMIT >> LA_SL_BITS) >= LA_ALIGN,
               "second-level classes must be at least LA_ALIGN wide");
_Static_assert(LA_BITMAP_WORDS <= 64, "the summary bitmap is one 64-bit word");
_Static_assert(sizeof(size_t) <= 8, "class mapping assumes size_t of at most 64 bits");

/* ---- headers ----------------------------------------------------------------- */

typedef struct la_major la_major;
typedef struct la_minor la_minor;

/*
 * A minor block, in use:                     A dead (free) minor:
 *   m ->  +--------------------+               +--------------------+
 *         | prev   (la_minor*) |               | prev               |
 *         | next   (la_minor*) |               | next               |
 *         | major  (la_major*) |               | major              |
 *         | magic  = USED      |               | magic  = DEAD      |
 *         | size   (whole minor)|              | size               |
 *         | req_size (asked)   |               | req_size = 0       |
 *   m+48  +--------------------+ <- payload    +--------------------+
 *         | user data ...      |   16-aligned  | free_next (index)  |
 *         |                    |               | free_prev (index)  |
 *         +--------------------+ m + size      | ...                |
 */
struct la_minor {
    _Alignas(16) la_minor *prev;   /* previous minor in this major, NULL if first */
    la_minor *next;                /* next minor (== this + size), NULL if last    */
    la_major *major;               /* the major holding it                         */
    uint64_t magic;                /* LA_MAGIC_USED or LA_MAGIC_DEAD               */
    size_t size;                   /* bytes of the whole minor, header included    */
    size_t req_size;               /* bytes asked for (0 when dead)                */
};

/* In the payload of a dead minor that is in the index. */
typedef struct la_links {
    la_minor *free_next;
    la_minor *free_prev;
} la_links;

/*
 * A major block's header, at the start of its first page:
 *   +-------------------------------------------------+
 *   | prev, next (major list) | magic | heap | pages |
 *   | size | usage | count | first | last              |
 *   +-------------------------------------------------+  maj + 80: first minor
 */
struct la_major {
    _Alignas(16) la_major *prev;   /* major list (newest first)                      */
    la_major *next;
    uint64_t magic;                /* LA_MAGIC_MAJOR                                  */
    liballoc_heap *heap;           /* owner                                           */
    size_t pages;                  /* as passed to alloc_page                         */
    size_t size;                   /* pages * page_size                               */
    size_t usage;                  /* bytes of minors in use, headers included        */
    size_t count;                  /* minors in use                                   */
    la_minor *first;               /* == (la_minor *)(this + 1)                       */
    la_minor *last;                /* the minor that ends at this + size              */
};

_Static_assert(sizeof(la_minor) % LA_ALIGN == 0, "minor header keeps payloads aligned");
_Static_assert(sizeof(la_major) % LA_ALIGN == 0, "major header keeps minors aligned");
_Static_assert(sizeof(void *) != 8 || sizeof(la_minor) == 48, "64-bit minor header is 48 bytes");
_Static_assert(sizeof(void *) != 8 || sizeof(la_major) == 80, "64-bit major header is 80 bytes");

enum {
    LA_MIN_PAYLOAD = sizeof(la_links) > LA_ALIGN ? sizeof(la_links) : LA_ALIGN,
    LA_MIN_MINOR = (int)sizeof(la_minor) + LA_MIN_PAYLOAD,   /* 64 on 64-bit */
};
_Static_assert(LA_MIN_PAYLOAD % LA_ALIGN == 0, "minimum payload is aligned");
_Static_assert(LA_MIN_MINOR >= 32, "minors start 32 bytes apart or more (native/allocator.h: HL_BLOCK_SPACING_MIN)");

/* The heap's control structure, in its own pages from alloc_page. */
struct liballoc_heap {
    uint64_t magic;
    hl_hooks hooks;                /* a copy of the caller's hooks                   */
    size_t control_pages;
    la_major *majors;              /* list of all majors, newest first               */
    la_major *best_bet;            /* major whose dead last minor is the tail        */
    la_major *spare;               /* the one empty major kept, or NULL              */
    size_t major_count;
    size_t major_pages;            /* pages held in majors                           */
    size_t usage;                  /* bytes of minors in use                         */
    size_t live;                   /* minors in use                                  */
    size_t bad_frees;
    uint64_t summary;              /* bit w: bitmap[w] != 0                          */
    uint64_t bitmap[LA_BITMAP_WORDS];
    la_minor *heads[LA_CLASSES];
};
_Static_assert(sizeof(void *) != 8 || sizeof(struct liballoc_heap) == 3928,
               "lib/ports/liballoc.ts lays the heap out (SIZEOF_HEAP)");

/* ---- small accessors ---------------------------------------------------------- */

static size_t align_up(size_t x, size_t a) { return (x + (a - 1)) & ~(a - 1); }

static void *minor_payload(la_minor *m) { return (char *)m + sizeof(la_minor); }
static la_minor *minor_from_payload(const void *p) {
    return (la_minor *)(uintptr_t)((const char *)p - sizeof(la_minor));
}
static la_links *minor_links(la_minor *m) { return (la_links *)minor_payload(m); }
static int minor_is_used(const la_minor *m) { return m->magic == LA_MAGIC_USED; }
static int minor_is_dead(const la_minor *m) { return m->magic == LA_MAGIC_DEAD; }
static size_t minor_usable(const la_minor *m) { return m->size - sizeof(la_minor); }
static la_minor *major_first_minor(la_major *maj) { return (la_minor *)(maj + 1); }
static char *major_end(la_major *maj) { return (char *)maj + maj->size; }

/* Bytes of a minor that holds `size` requested bytes (size <= LA_MAX_REQUEST). */
static size_t minor_total(size_t size) {
    if (size < LA_MIN_PAYLOAD) size = LA_MIN_PAYLOAD;
    return align_up(size, LA_ALIGN) + sizeof(la_minor);
}

static unsigned bit_ctz(uint64_t x) {   /* x != 0 */
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#else
    unsigned n = 0;
    while (!(x & 1)) { x >>= 1; n++; }
    return n;
#endif
}

static unsigned bit_floor_log2(size_t x) {   /* x != 0 */
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)(63 - __builtin_clzll((unsigned long long)x));
#else
    unsigned n = 0;
    while (x >>= 1) n++;
    return n;
#endif
}

/* ---- the size-class index ------------------------------------------------------ */

/* The class of a dead minor of `size` bytes (a multiple of 16). */
static size_t class_of(size_t size) {
    if (size < LA_LINEAR_LIMIT) return size / LA_ALIGN;
    size_t fl = bit_floor_log2(size);
    size_t sl = (size >> (fl - LA_SL_BITS)) & (LA_SL_COUNT - 1);
    return LA_LINEAR_CLASSES + (fl - LA_LINEAR_SHIFT) * LA_SL_COUNT + sl;
}

static void class_mark(liballoc_heap *h, size_t c) {
    h->bitmap[c / 64] |= (uint64_t)1 << (c % 64);
    h->summary |= (uint64_t)1 << (c / 64);
}

static void class_clear(liballoc_heap *h, size_t c) {
    h->bitmap[c / 64] &= ~((uint64_t)1 << (c % 64));
    if (!h->bitmap[c / 64]) h->summary &= ~((uint64_t)1 << (c / 64));
}

/* The first non-empty class >= c, or LA_CLASSES. */
static size_t class_find_from(const liballoc_heap *h, size_t c) {
    if (c >= LA_CLASSES) return LA_CLASSES;
    size_t w = c / 64;
    uint64_t bits = h->bitmap[w] & (~(uint64_t)0 << (c % 64));
    if (bits) return w * 64 + bit_ctz(bits);
    if (w + 1 >= LA_BITMAP_WORDS) return LA_CLASSES;
    uint64_t words = h->summary & (~(uint64_t)0 << (w + 1));
    if (!words) return LA_CLASSES;
    w = bit_ctz(words);
    return w * 64 + bit_ctz(h->bitmap[w]);
}

static void index_insert(liballoc_heap *h, la_minor *m) {
    size_t c = class_of(m->size);
    la_links *l = minor_links(m);
    l->free_prev = NULL;
    l->free_next = h->heads[c];
    if (h->heads[c]) minor_links(h->heads[c])->free_prev = m;
    else class_mark(h, c);
    h->heads[c] = m;
}

static void index_remove(liballoc_heap *h, la_minor *m) {
    la_links *l = minor_links(m);
    if (l->free_next) minor_links(l->free_next)->free_prev = l->free_prev;
    if (l->free_prev) {
        minor_links(l->free_prev)->free_next = l->free_next;
    } else {
        size_t c = class_of(m->size);
        h->heads[c] = l->free_next;
        if (!l->free_next) class_clear(h, c);
    }
}

/* A dead minor of at least t bytes from the index, or NULL (good fit). */
static la_minor *index_find(const liballoc_heap *h, size_t t) {
    size_t c = class_of(t);
    la_minor *m = h->heads[c];
    if (m && m->size >= t) return m;
    c = class_find_from(h, c + 1);
    return c < LA_CLASSES ? h->heads[c] : NULL;
}

/* ---- gaps: dead minors, indexed or the best bet's tail ------------------------- */

/* The tail: the best-bet major's last minor, when dead. It is kept out of the
 * index and carved from the front. */
static int gap_is_tail(const liballoc_heap *h, const la_minor *m) {
    return m->next == NULL && m->major == h->best_bet;
}

static void gap_insert(liballoc_heap *h, la_minor *m) {
    if (!gap_is_tail(h, m)) index_insert(h, m);
}

static void gap_remove(liballoc_heap *h, la_minor *m) {
    if (!gap_is_tail(h, m)) index_remove(h, m);
}

/* The best bet's tail, or NULL. */
static la_minor *best_bet_tail(const liballoc_heap *h) {
    la_major *bb = h->best_bet;
    return bb && minor_is_dead(bb->last) ? bb->last : NULL;
}

/* ---- minor block surgery ------------------------------------------------------- */

/* b (the minor after a) becomes part of a. */
static void minor_absorb(la_minor *a, la_minor *b) {
    a->size += b->size;
    a->next = b->next;
    if (b->next) b->next->prev = a;
    else a->major->last = a;
    b->magic = LA_MAGIC_GONE;   /* a stale pointer to b now reads as a bad free */
}

/* Cut a new dead minor off m at offset t (m->size - t >= LA_MIN_MINOR); returns it
 * (not yet indexed). */
static la_minor *minor_cut(la_minor *m, size_t t) {
    la_minor *r = (la_minor *)((char *)m + t);
    r->prev = m;
    r->next = m->next;
    r->major = m->major;
    r->magic = LA_MAGIC_DEAD;
    r->size = m->size - t;
    r->req_size = 0;
    if (m->next) m->next->prev = r;
    else m->major->last = r;
    m->next = r;
    m->size = t;
    return r;
}

/* m (dead, out of the index, next neighbour in use or none) keeps t bytes; a rest
 * big enough for a minor becomes a gap. */
static void minor_split(liballoc_heap *h, la_minor *m, size_t t) {
    if (m->size - t < LA_MIN_MINOR) return;
    gap_insert(h, minor_cut(m, t));
}

static void minor_mark_used(liballoc_heap *h, la_minor *m, size_t req) {
    la_major *maj = m->major;
    m->magic = LA_MAGIC_USED;
    m->req_size = req;
    maj->usage += m->size;
    maj->count++;
    h->usage += m->size;
    h->live++;
    if (h->spare == maj) h->spare = NULL;
#if LIBALLOC_FILL
    memset(minor_payload(m), 0xAA, minor_usable(m));
#endif
}

/* m (just marked dead) merged with its dead neighbours; the result is out of the
 * index. */
static la_minor *minor_coalesce(liballoc_heap *h, la_minor *m) {
    la_minor *n = m->next;
    if (n && minor_is_dead(n)) {
        gap_remove(h, n);
        minor_absorb(m, n);
    }
    la_minor *p = m->prev;
    if (p && minor_is_dead(p)) {
        gap_remove(h, p);
        minor_absorb(p, m);
        m = p;
    }
    return m;
}

/* The live minor behind payload pointer p, or NULL if p is not one. Reads the
 * header words just below p; follows no pointer that the magic has not vouched for. */
static la_minor *minor_validate(const liballoc_heap *h, const void *p) {
    if (!p || ((uintptr_t)p & (LA_ALIGN - 1))) return NULL;
    la_minor *m = minor_from_payload(p);
    if (!minor_is_used(m)) return NULL;
    la_major *maj = m->major;
    if (!maj || ((uintptr_t)maj & (h->hooks.page_size - 1))) return NULL;
    if (maj->magic != LA_MAGIC_MAJOR || maj->heap != h) return NULL;
    char *lo = (char *)major_first_minor(maj), *hi = major_end(maj);
    if ((char *)m < lo || (char *)m >= hi) return NULL;
    if (m->size < LA_MIN_MINOR || (m->size & (LA_ALIGN - 1)) ||
        m->size > (size_t)(hi - (char *)m)) return NULL;
    return m;
}

/* ---- majors ---------------------------------------------------------------- */

/* Pages of a standard major (the two growth rules above), within bounds. */
static size_t major_standard_pages(const liballoc_heap *h) {
    size_t p = h->major_pages / 4;
    if (p > LIBALLOC_MAJOR_QUARTER_PAGES) p = LIBALLOC_MAJOR_QUARTER_PAGES;
    size_t growth = h->major_pages >> LIBALLOC_MAJOR_GROWTH_SHIFT;
    if (p < growth) p = growth;
    if (p < LIBALLOC_MAJOR_PAGES) p = LIBALLOC_MAJOR_PAGES;
    if (p > LIBALLOC_MAJOR_MAX_PAGES) p = LIBALLOC_MAJOR_MAX_PAGES;
    return p;
}

/* A new major with room for a minor of t bytes; returns its one dead minor, out
 * of the index (the caller carves it), or NULL when the page source is out. */
static la_minor *major_new(liballoc_heap *h, size_t t) {
    size_t ps = h->hooks.page_size;
    size_t need = (sizeof(la_major) + t + ps - 1) / ps;
    size_t pages = major_standard_pages(h);
    if (need > pages) pages = need;
    la_major *maj = h->hooks.alloc_page(h->hooks.ctx, pages);
    if (!maj) return NULL;
    /* a standard major at least twice the request: many minors will be carved */
    if (h->hooks.prefault_page && pages / 2 >= need) h->hooks.prefault_page(h->hooks.ctx, maj, pages);
    maj->prev = NULL;
    maj->next = h->majors;
    if (h->majors) h->majors->prev = maj;
    h->majors = maj;
    maj->magic = LA_MAGIC_MAJOR;
    maj->heap = h;
    maj->pages = pages;
    maj->size = pages * ps;
    maj->usage = 0;
    maj->count = 0;
    la_minor *m = major_first_minor(maj);
    m->prev = m->next = NULL;
    m->major = maj;
    m->magic = LA_MAGIC_DEAD;
    m->size = maj->size - sizeof(la_major);
    m->req_size = 0;
    maj->first = maj->last = m;
    h->major_count++;
    h->major_pages += pages;
    /* Best bet: the major with the largest tail. The new one wins if what is left
     * after t beats the current tail; the old tail then joins the index. */
    la_minor *old = best_bet_tail(h);
    size_t rest = m->size - t;
    if (!h->best_bet || !old || rest > old->size) {
        h->best_bet = maj;
        if (old) index_insert(h, old);
    }
    return m;
}

/* Give an empty major back (its one dead minor is out of the index). */
static void major_release(liballoc_heap *h, la_major *maj) {
    if (maj->prev) maj->prev->next = maj->next;
    else h->majors = maj->next;
    if (maj->next) maj->next->prev = maj->prev;
    if (h->best_bet == maj) h->best_bet = NULL;
    if (h->spare == maj) h->spare = NULL;
    h->major_count--;
    h->major_pages -= maj->pages;
    maj->magic = LA_MAGIC_GONE;
    h->hooks.free_page(h->hooks.ctx, maj, maj->pages);
}

/* ---- the operations, under the lock ------------------------------------------ */

/* A dead minor of at least t bytes, out of the index, or NULL. */
static la_minor *gap_acquire(liballoc_heap *h, size_t t) {
    la_minor *m = index_find(h, t);
    if (m) {
        index_remove(h, m);
        return m;
    }
    m = best_bet_tail(h);
    if (m && m->size >= t) return m;
    return major_new(h, t);
}

static void *heap_malloc(liballoc_heap *h, size_t size) {
    if (size > LA_MAX_REQUEST) return NULL;
    size_t t = minor_total(size);
    la_minor *m = gap_acquire(h, t);
    if (!m) return NULL;
    minor_split(h, m, t);
    minor_mark_used(h, m, size);
    return minor_payload(m);
}

static void *heap_memalign(liballoc_heap *h, size_t align, size_t size) {
    if (align <= LA_ALIGN) return heap_malloc(h, size);
    if (align & (align - 1)) return NULL;
    if (align > LA_MAX_REQUEST || size > LA_MAX_REQUEST - align) return NULL;
    size_t t = minor_total(size);
    /* room for the aligned minor plus a leading dead minor of LA_MIN_MINOR or more */
    la_minor *m = gap_acquire(h, t + align + LA_MIN_MINOR);
    if (!m) return NULL;
    uintptr_t pay = (uintptr_t)minor_payload(m);
    size_t lead = (size_t)(((pay + (align - 1)) & ~(uintptr_t)(align - 1)) - pay);
    while (lead != 0 && lead < LA_MIN_MINOR) lead += align;
    if (lead) {
        la_minor *a = minor_cut(m, lead);   /* m: the leading gap, a: aligned */
        gap_insert(h, m);                   /* m->next == a: never the tail  */
        m = a;
    }
    minor_split(h, m, t);
    minor_mark_used(h, m, size);
    return minor_payload(m);
}

static void heap_free(liballoc_heap *h, void *ptr) {
    if (!ptr) return;
    la_minor *m = minor_validate(h, ptr);
    if (!m) {
        h->bad_frees++;
        return;
    }
    la_major *maj = m->major;
    maj->usage -= m->size;
    maj->count--;
    h->usage -= m->size;
    h->live--;
    m->magic = LA_MAGIC_DEAD;
    m->req_size = 0;
#if LIBALLOC_FILL
    memset(minor_payload(m), 0xDD, minor_usable(m));
#endif
    m = minor_coalesce(h, m);
    if (maj->count == 0) {
        /* m spans the whole major: keep one small one, give back the rest */
        if (h->spare || maj->pages > LIBALLOC_SPARE_MAX_PAGES) {
            major_release(h, maj);
            return;
        }
        h->spare = maj;
    }
    gap_insert(h, m);
}

/* m in use shrinks to t bytes (t <= m->size). */
static void minor_shrink(liballoc_heap *h, la_minor *m, size_t t) {
    size_t cut = m->size - t;
    if (cut < LA_MIN_MINOR) return;
    m->major->usage -= cut;
    h->usage -= cut;
    la_minor *r = minor_cut(m, t);
    la_minor *n = r->next;
    if (n && minor_is_dead(n)) {
        gap_remove(h, n);
        minor_absorb(r, n);
    }
    gap_insert(h, r);
}

/* Whether used minor m is alone in its major (nothing after it but, at most,
 * one dead minor): the major's pages are then its own, and realloc can resize
 * them through hooks.resize_page instead of copying. */
static int minor_owns_major(const liballoc_heap *h, const la_minor *m) {
    const la_major *maj = m->major;
    return h->hooks.resize_page && maj->count == 1 && maj->first == m &&
           (!m->next || !m->next->next);
}

/* Resizes m's major (minor_owns_major) so that m is t bytes, moving it if the
 * page source must; m's bytes are kept. Returns m's new header, or NULL (the
 * heap unchanged) when the page source cannot. */
static la_minor *major_resize_for(liballoc_heap *h, la_minor *m, size_t t) {
    size_t ps = h->hooks.page_size;
    if (t > SIZE_MAX - sizeof(la_major) - ps) return NULL;
    size_t pages = (sizeof(la_major) + t + ps - 1) / ps;
    la_major *maj = m->major;
    la_minor *tail = m->next;
    int was_best = h->best_bet == maj;
    if (tail) gap_remove(h, tail);            /* its index links hold addresses */
    la_major *prev = maj->prev, *next = maj->next;
    size_t old_pages = maj->pages, old_size = m->size;
    la_major *moved = h->hooks.resize_page(h->hooks.ctx, maj, old_pages, pages);
    if (!moved) {
        if (tail) gap_insert(h, tail);
        return NULL;
    }
    maj = moved;
    if (was_best) h->best_bet = maj;
    if (prev) prev->next = maj; else h->majors = maj;
    if (next) next->prev = maj;
    maj->pages = pages;
    maj->size = pages * ps;
    h->major_pages = h->major_pages - old_pages + pages;
    m = major_first_minor(maj);
    m->prev = m->next = NULL;
    m->major = maj;
    m->size = maj->size - sizeof(la_major);
    maj->first = maj->last = m;
    if (m->size - t >= LA_MIN_MINOR) gap_insert(h, minor_cut(m, t));
    maj->usage = m->size;
    h->usage = h->usage - old_size + m->size;
    return m;
}

static void *heap_realloc(liballoc_heap *h, void *ptr, size_t size) {
    if (!ptr) return heap_malloc(h, size);
    la_minor *m = minor_validate(h, ptr);
    if (!m) {
        h->bad_frees++;
        return NULL;
    }
    if (size > LA_MAX_REQUEST) return NULL;
    size_t t = minor_total(size);
    if (t <= m->size) {
        /* a lone minor in a big major gives the pages it no longer needs back */
        size_t ps = h->hooks.page_size;
        if (m->size - t >= LIBALLOC_SPARE_MAX_PAGES * ps && minor_owns_major(h, m)) {
            la_minor *r = major_resize_for(h, m, t);
            if (r) {
                r->req_size = size;
                return minor_payload(r);
            }
        }
        minor_shrink(h, m, t);
        m->req_size = size;
        return ptr;
    }
    la_minor *n = m->next;
    if (n && minor_is_dead(n) && m->size + n->size >= t) {
        /* grow into the dead neighbour */
        size_t old = m->size;
        gap_remove(h, n);
        minor_absorb(m, n);
        minor_split(h, m, t);
        m->major->usage += m->size - old;
        h->usage += m->size - old;
        m->req_size = size;
        return ptr;
    }
    if (minor_owns_major(h, m)) {            /* its own pages: resize them, no copy */
        la_minor *r = major_resize_for(h, m, t);
        if (r) {
            r->req_size = size;
            return minor_payload(r);
        }
    }
    void *q = heap_malloc(h, size);
    if (!q) return NULL;
    size_t keep = minor_usable(m);
    memcpy(q, ptr, keep < size ? keep : size);
    heap_free(h, ptr);
    return q;
}

static void *heap_calloc(liballoc_heap *h, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = heap_malloc(h, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

/* ---- the checker --------------------------------------------------------------- */

/* Walks one major's minors by their sizes; counts broken invariants and the dead
 * minors that must be in the index. */
static size_t check_major(const liballoc_heap *h, la_major *maj, size_t *indexed_gaps) {
    size_t bad = 0, usage = 0, count = 0;
    char *pos = (char *)major_first_minor(maj), *end = major_end(maj);
    la_minor *prev = NULL;
    int broken = 0;
    while (pos < end) {
        la_minor *m = (la_minor *)pos;
        if ((size_t)(end - pos) < LA_MIN_MINOR) { bad++; broken = 1; break; }
        int used = minor_is_used(m), dead = minor_is_dead(m);
        if (!used && !dead) bad++;                          /* bad magic        */
        if (m->major != maj) bad++;
        if (m->prev != prev) bad++;
        size_t sz = m->size;
        if (sz < LA_MIN_MINOR || (sz & (LA_ALIGN - 1)) || sz > (size_t)(end - pos)) {
            bad++;                                          /* runs past the end */
            broken = 1;
            break;
        }
        la_minor *expect = pos + sz < end ? (la_minor *)(pos + sz) : NULL;
        if (m->next != expect) bad++;                       /* overlap / link    */
        if (used) {
            usage += sz;
            count++;
            if (m->req_size > sz - sizeof(la_minor)) bad++;
        }
        if (dead) {
            if (m->req_size != 0) bad++;
            if (prev && minor_is_dead(prev)) bad++;         /* not coalesced     */
            if (!gap_is_tail(h, m)) (*indexed_gaps)++;
        }
        prev = m;
        pos += sz;
    }
    if (!broken) {
        if (maj->last != prev) bad++;
        if (maj->usage != usage) bad++;
        if (maj->count != count) bad++;
    }
    return bad;
}

/* Walks the index: every listed minor dead, out of the tail, in its class, links
 * consistent, bitmaps matching; the number listed equals the gaps found. */
static size_t check_index(const liballoc_heap *h, size_t gaps) {
    size_t bad = 0, listed = 0;
    uint64_t summary = 0;
    for (size_t w = 0; w < LA_BITMAP_WORDS; w++)
        if (h->bitmap[w]) summary |= (uint64_t)1 << w;
    if (summary != h->summary) bad++;
    for (size_t c = 0; c < LA_CLASSES; c++) {
        int marked = (h->bitmap[c / 64] >> (c % 64)) & 1;
        if (marked != (h->heads[c] != NULL)) bad++;
        la_minor *prev = NULL;
        for (la_minor *m = h->heads[c]; m; m = minor_links(m)->free_next) {
            if (++listed > gaps + 1) return bad + 1;        /* cycle or stray    */
            if ((uintptr_t)m & (LA_ALIGN - 1)) return bad + 1;
            if (!minor_is_dead(m)) { bad++; break; }
            if (m->size < LA_MIN_MINOR || (m->size & (LA_ALIGN - 1)) || class_of(m->size) != c) bad++;
            if (minor_links(m)->free_prev != prev) bad++;
            if (gap_is_tail(h, m)) bad++;
            if (!m->major || m->major->magic != LA_MAGIC_MAJOR) bad++;
            prev = m;
        }
    }
    if (listed != gaps) bad++;
    return bad;
}

static size_t heap_check(const liballoc_heap *h) {
    size_t bad = 0, majors = 0, gaps = 0, usage = 0, live = 0, pages = 0;
    size_t ps = h->hooks.page_size;
    int saw_best = 0, saw_spare = 0;
    la_major *prev = NULL;
    for (la_major *maj = h->majors; maj; prev = maj, maj = maj->next) {
        if (++majors > h->major_count) { bad++; break; }   /* extra or a cycle */
        if (((uintptr_t)maj & (ps - 1)) || maj->magic != LA_MAGIC_MAJOR) { bad++; break; }
        if (maj->prev != prev) bad++;
        if (maj->heap != h) bad++;
        if (maj->first != major_first_minor(maj)) bad++;
        usage += maj->usage;
        live += maj->count;
        pages += maj->pages;
        if (maj == h->best_bet) saw_best = 1;
        if (maj == h->spare) saw_spare = 1;
        if (maj->pages == 0 || maj->size != maj->pages * ps) { bad++; continue; }
        bad += check_major(h, maj, &gaps);
    }
    if (majors != h->major_count) bad++;
    if (h->best_bet && !saw_best) bad++;
    if (h->spare && (!saw_spare || h->spare->count != 0)) bad++;
    if (usage != h->usage || live != h->live || pages != h->major_pages) bad++;
    return bad + check_index(h, gaps);
}

/* ---- per-instance API: each takes the lock exactly once ---------------------- */

static void heap_lock(liballoc_heap *h) { if (h->hooks.lock) h->hooks.lock(h->hooks.ctx); }
static void heap_unlock(liballoc_heap *h) { if (h->hooks.unlock) h->hooks.unlock(h->hooks.ctx); }

static liballoc_heap *heap_create(const hl_hooks *hooks) {
    if (!hooks || !hooks->alloc_page || !hooks->free_page) return NULL;
    size_t ps = hooks->page_size;
    if (ps < 4096 || ps > LA_MAX_PAGE_SIZE || (ps & (ps - 1))) return NULL;
    size_t pages = (sizeof(liballoc_heap) + ps - 1) / ps;
    liballoc_heap *h = hooks->alloc_page(hooks->ctx, pages);
    if (!h) return NULL;
    memset(h, 0, sizeof *h);
    h->magic = LA_MAGIC_HEAP;
    h->hooks = *hooks;
    h->control_pages = pages;
    return h;
}

liballoc_heap *liballoc_create(const hl_hooks *hooks) {
    if (!hooks) return NULL;
    if (hooks->lock) hooks->lock(hooks->ctx);
    liballoc_heap *h = heap_create(hooks);
    if (hooks->unlock) hooks->unlock(hooks->ctx);
    return h;
}

void liballoc_destroy(liballoc_heap *h) {
    if (!h) return;
    hl_hooks hooks = h->hooks;
    if (hooks.lock) hooks.lock(hooks.ctx);
    la_major *maj = h->majors;
    while (maj) {
        la_major *next = maj->next;
        maj->magic = LA_MAGIC_GONE;
        hooks.free_page(hooks.ctx, maj, maj->pages);
        maj = next;
    }
    h->magic = LA_MAGIC_GONE;
    hooks.free_page(hooks.ctx, h, h->control_pages);
    if (hooks.unlock) hooks.unlock(hooks.ctx);
}

void *liballoc_malloc(liballoc_heap *h, size_t size) {
    heap_lock(h);
    void *p = heap_malloc(h, size);
    heap_unlock(h);
    return p;
}

void *liballoc_memalign(liballoc_heap *h, size_t align, size_t size) {
    heap_lock(h);
    void *p = heap_memalign(h, align, size);
    heap_unlock(h);
    return p;
}

void *liballoc_calloc(liballoc_heap *h, size_t count, size_t size) {
    heap_lock(h);
    void *p = heap_calloc(h, count, size);
    heap_unlock(h);
    return p;
}

void *liballoc_realloc(liballoc_heap *h, void *ptr, size_t size) {
    heap_lock(h);
    void *p = heap_realloc(h, ptr, size);
    heap_unlock(h);
    return p;
}

void liballoc_free_block(liballoc_heap *h, void *ptr) {
    heap_lock(h);
    heap_free(h, ptr);
    heap_unlock(h);
}

size_t liballoc_block_peek(liballoc_heap *h, const void *ptr, int *prev_dead) {
    la_minor *m = minor_validate(h, ptr);
    *prev_dead = m && m->prev && minor_is_dead(m->prev);
    return m ? minor_usable(m) : 0;
}

int liballoc_block_prev_dead(const void *ptr) {
    if ((uintptr_t)ptr & (LA_ALIGN - 1)) return 0;
    const la_minor *m = minor_from_payload(ptr);
    if (!minor_is_used(m)) return 0; /* on the line of m->prev: not a live minor's start, no link to follow */
    const la_minor *prev = m->prev;
    return prev && minor_is_dead(prev);
}

size_t liballoc_usable_size(liballoc_heap *h, const void *ptr) {
    if (!ptr) return 0;
    int prev_dead;
    heap_lock(h);
    size_t n = liballoc_block_peek(h, ptr, &prev_dead);
    heap_unlock(h);
    return n;
}

void liballoc_walk(liballoc_heap *h, liballoc_walker walker, void *user) {
    if (!h || !walker) return;
    heap_lock(h);
    walker(h, h->control_pages * h->hooks.page_size, h, 0, LIBALLOC_WALK_META, 0, user);
    unsigned region = 1;
    for (la_major *maj = h->majors; maj; maj = maj->next, region++) {
        walker(maj, sizeof(la_major), maj, 0, LIBALLOC_WALK_META, region, user);
        char *pos = (char *)major_first_minor(maj), *end = major_end(maj);
        while (pos < end) {
            la_minor *m = (la_minor *)pos;
            if ((size_t)(end - pos) < LA_MIN_MINOR || m->size < LA_MIN_MINOR || m->size > (size_t)(end - pos)) break; /* broken: check() says so */
            int used = minor_is_used(m);
            walker(m, m->size, minor_payload(m), minor_usable(m), used ? LIBALLOC_WALK_USED : LIBALLOC_WALK_FREE, region, user);
            pos += m->size;
        }
    }
    heap_unlock(h);
}

size_t liballoc_check(liballoc_heap *h) {
    if (!h) return 1;
    heap_lock(h);
    size_t n = h->magic == LA_MAGIC_HEAP ? heap_check(h) : 1;
    heap_unlock(h);
    return n;
}

size_t liballoc_bad_frees(liballoc_heap *h) {
    heap_lock(h);
    size_t n = h->bad_frees;
    heap_unlock(h);
    return n;
}

void liballoc_get_stats(liballoc_heap *h, liballoc_stats *out) {
    heap_lock(h);
    out->majors = h->major_count;
    out->major_bytes = h->major_pages * h->hooks.page_size;
    out->control_bytes = h->control_pages * h->hooks.page_size;
    out->used_bytes = h->usage;
    out->live_blocks = h->live;
    out->bad_frees = h->bad_frees;
    heap_unlock(h);
}

/* ---- upstream's global API: the default instance over the four hooks ---------- */

#if LIBALLOC_DEFAULT_HOOKS
#if defined(__GNUC__) || defined(__clang__)
#define LA_WEAK __attribute__((weak))
#else
#define LA_WEAK
#endif
LA_WEAK int liballoc_lock(void) { return 0; }
LA_WEAK int liballoc_unlock(void) { return 0; }
LA_WEAK void *liballoc_alloc(size_t pages) { (void)pages; return NULL; }
LA_WEAK int liballoc_free(void *ptr, size_t pages) { (void)ptr; (void)pages; return 0; }
#endif

static void *default_alloc_page(void *ctx, size_t pages) { (void)ctx; return liballoc_alloc(pages); }
static void default_free_page(void *ctx, void *start, size_t pages) {
    (void)ctx;
    (void)liballoc_free(start, pages);
}
static void default_lock(void *ctx) { (void)ctx; (void)liballoc_lock(); }
static void default_unlock(void *ctx) { (void)ctx; (void)liballoc_unlock(); }

/* The one global of the library: the default instance, created on first use
 * (under liballoc_lock). */
static liballoc_heap *la_default_heap;

static liballoc_heap *default_heap_locked(void) {
    if (!la_default_heap) {
        hl_hooks hooks = {
            .ctx = NULL,
            .page_size = LIBALLOC_PAGE_SIZE,
            .alloc_page = default_alloc_page,
            .free_page = default_free_page,
            .lock = default_lock,
            .unlock = default_unlock,
        };
        la_default_heap = heap_create(&hooks);
    }
    return la_default_heap;
}

liballoc_heap *liballoc_default(void) {
    liballoc_lock();
    liballoc_heap *h = default_heap_locked();
    liballoc_unlock();
    return h;
}

void *PREFIX(malloc)(size_t size) {
    liballoc_lock();
    liballoc_heap *h = default_heap_locked();
    void *p = h ? heap_malloc(h, size) : NULL;
    liballoc_unlock();
    return p;
}

void *PREFIX(realloc)(void *ptr, size_t size) {
    liballoc_lock();
    liballoc_heap *h = default_heap_locked();
    void *p = h ? heap_realloc(h, ptr, size) : NULL;
    liballoc_unlock();
    return p;
}

void *PREFIX(calloc)(size_t count, size_t size) {
    liballoc_lock();
    liballoc_heap *h = default_heap_locked();
    void *p = h ? heap_calloc(h, count, size) : NULL;
    liballoc_unlock();
    return p;
}

void PREFIX(free)(void *ptr) {
    liballoc_lock();
    liballoc_heap *h = ptr ? default_heap_locked() : NULL;
    if (h) heap_free(h, ptr);
    liballoc_unlock();
}
