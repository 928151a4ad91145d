/*
 * tlsf.c — heaplab's TLSF allocator, written from the paper:
 *   M. Masmano, I. Ripoll, A. Crespo, J. Real, "TLSF: a new dynamic memory
 *   allocator for real-time systems", ECRTS 2004.
 *
 * Free blocks sit in segregated lists indexed by two levels: the first level
 * (fl) is the power of two of the size, the second (sl) splits each power of
 * two into SL_INDEX_COUNT equal ranges. Two bitmaps say which lists are
 * non-empty, so finding a fitting list is a find-first-set on each level:
 * malloc and free are O(1), with no loop over blocks anywhere. Boundary tags
 * (every block knows its physical predecessor) give immediate coalescing with
 * both neighbours on free.
 *
 * heaplab's additions to the paper: memory comes from hooks->alloc_page as
 * pools sized to fit the request; a pool that becomes wholly free is given
 * back through free_page, keeping one; the control structure lives in the
 * first pages obtained; a checker counts every broken invariant.
 *
 * Plain code on purpose: a TypeScript port mirrors these functions one for
 * one and must make the same decisions from the same page addresses.
 */
#include "tlsf.h"

#include <stdint.h>
#include "../libc.h"

/* ---- build options ------------------------------------------------------ */

/* log2 of the number of second-level lists per power of two (default 5: 32
 * lists, so a rounded request wastes at most 1/32 of itself). 1..5: the
 * second-level bitmap is 32 bits. */
#ifndef TLSF_SL_INDEX_COUNT_LOG2
#define TLSF_SL_INDEX_COUNT_LOG2 5
#endif

/* The highest bit a block size may have (default 62 on 64-bit: every block up
 * to 2^62 bytes, i.e. the whole address space, is indexed; no 4 GiB cap).
 * Lowering it shrinks the control structure by 256 bytes per level and caps
 * the largest block at 2^TLSF_FL_INDEX_MAX bytes. */
#ifndef TLSF_FL_INDEX_MAX
#define TLSF_FL_INDEX_MAX 62
#endif

/* The smallest pool taken from alloc_page (default 64 KiB): a request that
 * needs more gets a pool sized to fit it, rounded up to whole pages. */
#ifndef TLSF_POOL_MIN_BYTES
#define TLSF_POOL_MIN_BYTES (64 * 1024)
#endif

/* Pools grow with the heap: a new pool holds at least 1/2^shift of the bytes
 * already in the heap's shared pools (default 5: a thirty-second; a large
 * block's own pool does not count, or one 5 GiB block would make the next
 * pool for small blocks 160 MiB), so a heap that grows to N bytes makes
 * O(log N) alloc_page calls, while at most about 1/32 of what it maps is a
 * pool's untouched end. With a sixteenth, the peak's last pool made `heaplab
 * bench`'s space workload behind the thread cache 1.07 or 1.14 times glibc's
 * memory depending on where an unrelated 8 bytes moved the first blocks (a
 * pool more or less at the peak); a thirty-second gives 1.07-1.08 and the
 * same churn throughput (1.126 vs 1.125 x glibc, 7 runs). A sixty-fourth
 * (dlmalloc's share) made pools small enough to cycle through the page
 * cache, whose clearing cost the churn harness ~4% of its throughput. */
#ifndef TLSF_POOL_GROWTH_SHIFT
#define TLSF_POOL_GROWTH_SHIFT 5
#endif

/* A request of at least this many bytes (default 256 KiB) that no free block
 * fits, and that needs more than the pool the heap would grow by, gets a pool
 * of its own sized to it, taken whole: nothing else is carved from it, so
 * realloc resizes its pages (resize_page) and free gives them back at once.
 * A pool sized to the request's list (mapping_round: up to 1/32 more, 128 MiB
 * for 5 GiB) left a free tail that the next small malloc took, after which the
 * big block could only grow by copying: 13 s for 5 GiB to 6 GiB under the
 * preload library, against 0.4 ms by mremap. */
#ifndef TLSF_OWN_POOL_MIN_BYTES
#define TLSF_OWN_POOL_MIN_BYTES (256 * 1024)
#endif

/* A pool from alloc_page that becomes wholly free is kept as the spare (so
 * that alloc/free across a pool boundary does not map and unmap each time)
 * only if it is at most this big (default 256 KiB); larger ones go back at
 * once. A heap that frees everything then holds its control pages and at
 * most this much. */
#ifndef TLSF_SPARE_MAX_BYTES
#define TLSF_SPARE_MAX_BYTES (256 * 1024)
#endif

/* ---- constants a user must not tune ------------------------------------- */

enum {
    ALIGN_SIZE_LOG2 = 4,                                     /* 16-byte results */
    SL_INDEX_COUNT_LOG2 = TLSF_SL_INDEX_COUNT_LOG2,
    SL_INDEX_COUNT = 1 << SL_INDEX_COUNT_LOG2,
    FL_INDEX_MAX = TLSF_FL_INDEX_MAX,
    /* sizes below 1 << FL_INDEX_SHIFT are "small": one list per 16 bytes */
    FL_INDEX_SHIFT = SL_INDEX_COUNT_LOG2 + ALIGN_SIZE_LOG2,
    /* fl 0 holds the small sizes; fl 1 .. holds fls(size) = FL_INDEX_SHIFT .. FL_INDEX_MAX */
    FL_INDEX_COUNT = FL_INDEX_MAX - FL_INDEX_SHIFT + 2,
};

#define ALIGN_SIZE        ((size_t)1 << ALIGN_SIZE_LOG2)
#define SMALL_BLOCK_SIZE  ((size_t)1 << FL_INDEX_SHIFT)
#define BLOCK_SIZE_MAX    ((size_t)1 << FL_INDEX_MAX)
#define POOL_MIN_BYTES    ((size_t)TLSF_POOL_MIN_BYTES)
#define SPARE_MAX_BYTES   ((size_t)TLSF_SPARE_MAX_BYTES)
#define OWN_POOL_MIN_BYTES ((size_t)TLSF_OWN_POOL_MIN_BYTES)
#define POOL_GROWTH_SHIFT TLSF_POOL_GROWTH_SHIFT
#define POOL_MAGIC        ((size_t)0x544c5346504f4f4cull)   /* "TLSFPOOL" */

_Static_assert(sizeof(void *) == 8 && sizeof(size_t) == 8, "the block layout is fixed for 64-bit");
_Static_assert(sizeof(size_t) == sizeof(unsigned long), "size_fls uses __builtin_clzl");
_Static_assert(SL_INDEX_COUNT_LOG2 >= 1 && SL_INDEX_COUNT_LOG2 <= 5, "sl bitmap is 32 bits");
_Static_assert(FL_INDEX_MAX > FL_INDEX_SHIFT && FL_INDEX_MAX <= 62, "BLOCK_SIZE_MAX must stay <= PTRDIFF_MAX");
_Static_assert(FL_INDEX_COUNT < 64, "fl bitmap is 64 bits, and fl + 1 is shifted");
_Static_assert(BLOCK_SIZE_MAX <= (size_t)PTRDIFF_MAX, "a block fits in ptrdiff_t");
_Static_assert(TLSF_POOL_GROWTH_SHIFT >= 1 && TLSF_POOL_GROWTH_SHIFT < 64, "a pool grows by a fraction of the heap");
_Static_assert(TLSF_POOL_MIN_BYTES >= 4096, "a pool holds at least its sentinels and a block");

/* ---- blocks ---------------------------------------------------------------
 *
 * Every block starts at a 16-byte aligned address with a 16-byte header, so
 * its payload is 16-byte aligned too. `size` is the whole block (header
 * included), a multiple of 16; its low 4 bits hold the flags. prev_phys is
 * kept valid for every block (not only after a free one): the checker can
 * verify it everywhere, at the price of 8 bytes per block.
 *
 *   used block                          free block
 *   +0  prev_phys -> physical prev      +0  prev_phys -> physical prev (used)
 *   +8  size | PREV_FREE? | 0           +8  size | PREV_FREE=0 | FREE
 *   +16 payload (user pointer) ...      +16 next_free -> next in its list
 *       ...                             +24 prev_free -> prev in its list
 *   +size: next block's header              ... unused ...
 *                                       +size: next block (used, PREV_FREE set)
 *
 * Invariants: no two free blocks are neighbours (coalescing is immediate), so
 * a free block's prev and next are used; a block's PREV_FREE bit equals its
 * physical predecessor's FREE bit; every free block is in exactly the list
 * mapping_insert(size) names.
 */
typedef struct block_header {
    struct block_header *prev_phys;
    size_t size;
    struct block_header *next_free;   /* overlays the payload: only while free */
    struct block_header *prev_free;
} block_header;

#define BLOCK_FREE       ((size_t)1)
#define BLOCK_PREV_FREE  ((size_t)2)
#define BLOCK_FLAG_MASK  (ALIGN_SIZE - 1)
#define BLOCK_HEADER_SIZE offsetof(block_header, next_free)
#define BLOCK_SIZE_MIN    sizeof(block_header)

_Static_assert(offsetof(block_header, next_free) == 16, "header is 16 bytes");
_Static_assert(BLOCK_HEADER_SIZE == ALIGN_SIZE, "an aligned block has an aligned payload");
_Static_assert(sizeof(block_header) % ALIGN_SIZE == 0, "the minimum block keeps alignment");
_Static_assert(BLOCK_SIZE_MIN >= 32, "blocks start 32 bytes apart or more (native/allocator.h: HL_BLOCK_SPACING_MIN)");
_Static_assert((BLOCK_FREE | BLOCK_PREV_FREE) <= BLOCK_FLAG_MASK, "flags fit below the alignment");
_Static_assert(offsetof(block_header, size) + sizeof(size_t) == BLOCK_HEADER_SIZE && TLSF_WORD_SIZE_MASK == ~BLOCK_FLAG_MASK &&
                   TLSF_WORD_USABLE_LESS == BLOCK_HEADER_SIZE && TLSF_WORD_PLAIN_MASK == (BLOCK_FREE | BLOCK_PREV_FREE) && TLSF_WORD_PLAIN_VALUE == 0,
               "tlsf.h describes the size word at ptr - 8 as it is");

/* ---- pools ------------------------------------------------------------------
 *
 * A pool is one run of memory (a run of pages, or caller memory). Its first
 * block is a used head sentinel whose payload holds the pool record; its last
 * 16 bytes are a used tail sentinel of size 0. Coalescing stops at both, so
 * it never crosses pools, and pools may sit anywhere in memory.
 *
 *   pool start                                                       pool end
 *   | head: hdr + pool_record | block | block | ... | block | tail: hdr, size 0 |
 *   |<------ 64 bytes ------->|                              |<--- 16 bytes -->|
 */
/* A pool's origin (pool_record.owned): the caller's memory (tlsf_add_pool), a
 * pool from alloc_page that blocks are carved from, or one made for a single
 * large block (pool_grow), which does not count in the heap's growth share. */
enum { POOL_CALLERS = 0, POOL_SHARED = 1, POOL_OWN = 2 };

typedef struct pool_record {
    struct pool_record *next;   /* the heap's pools, oldest first */
    struct pool_record *prev;
    size_t bytes;               /* the whole pool, sentinels included */
    size_t owned;               /* POOL_SHARED or POOL_OWN: from alloc_page, may be given back; 0: caller's */
    size_t magic;               /* POOL_MAGIC */
    size_t reserved;
} pool_record;

#define HEAD_SENTINEL_SIZE (BLOCK_HEADER_SIZE + sizeof(pool_record))
#define TAIL_SENTINEL_SIZE BLOCK_HEADER_SIZE
#define POOL_OVERHEAD      (HEAD_SENTINEL_SIZE + TAIL_SENTINEL_SIZE)

_Static_assert(HEAD_SENTINEL_SIZE == 64, "head sentinel layout");
_Static_assert(HEAD_SENTINEL_SIZE % ALIGN_SIZE == 0, "the first block is aligned");

/* ---- the control structure ----------------------------------------------
 * Fixed layout (the port mirrors it; the tests flip fl_bitmap at offset 0). */
typedef struct control {
    uint64_t fl_bitmap;                                   /* bit fl: sl_bitmap[fl] != 0 */
    uint32_t sl_bitmap[FL_INDEX_COUNT];                   /* bit sl: blocks[fl][sl] != NULL */
    block_header *blocks[FL_INDEX_COUNT][SL_INDEX_COUNT]; /* free-list heads */
    pool_record *pools_first;
    pool_record *pools_last;
    pool_record *spare;          /* the one wholly free pool kept from alloc_page */
    size_t pool_count;
    size_t control_pages;        /* pages of this structure; 0 over caller memory */
    size_t owned_bytes;          /* bytes of the shared pools from alloc_page (POOL_SHARED) */
    hl_hooks hooks;              /* all NULL over caller memory */
} control;
_Static_assert(sizeof(control) == 14424, "lib/ports/tlsf.ts lays control out (CONTROL_SIZE)");

_Static_assert(offsetof(control, fl_bitmap) == 0, "tests and the port rely on it");

/* ---- bit scans ---------------------------------------------------------- */

static int bit_ffs64(uint64_t word) { return __builtin_ctzll(word); }   /* word != 0 */
static int bit_ffs32(uint32_t word) { return __builtin_ctz(word); }     /* word != 0 */
static int size_fls(size_t size) { return 63 - __builtin_clzl(size); }  /* size != 0 */

static size_t align_up(size_t x, size_t align) { return (x + (align - 1)) & ~(align - 1); }
static int is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* ---- block accessors ---------------------------------------------------- */

static size_t block_size(const block_header *b) { return b->size & ~BLOCK_FLAG_MASK; }
static void block_set_size(block_header *b, size_t size) { b->size = size | (b->size & BLOCK_FLAG_MASK); }
static int block_is_free(const block_header *b) { return (b->size & BLOCK_FREE) != 0; }
static int block_is_prev_free(const block_header *b) { return (b->size & BLOCK_PREV_FREE) != 0; }
static void block_set_free_bit(block_header *b) { b->size |= BLOCK_FREE; }
static void block_clear_free_bit(block_header *b) { b->size &= ~BLOCK_FREE; }
static void block_set_prev_free(block_header *b) { b->size |= BLOCK_PREV_FREE; }
static void block_set_prev_used(block_header *b) { b->size &= ~BLOCK_PREV_FREE; }
static int block_is_tail(const block_header *b) { return block_size(b) == 0; }

static block_header *block_next(const block_header *b) {
    return (block_header *)((uintptr_t)b + block_size(b));
}
static void *block_to_ptr(const block_header *b) { return (void *)((uintptr_t)b + BLOCK_HEADER_SIZE); }
static block_header *block_from_ptr(const void *ptr) {
    return (block_header *)((uintptr_t)ptr - BLOCK_HEADER_SIZE);
}
static size_t block_usable(const block_header *b) { return block_size(b) - BLOCK_HEADER_SIZE; }

/* Points the next block back at b and returns it. */
static block_header *block_link_next(block_header *b) {
    block_header *next = block_next(b);
    next->prev_phys = b;
    return next;
}
static void block_mark_free(block_header *b) {
    block_set_free_bit(b);
    block_set_prev_free(block_link_next(b));
}
static void block_mark_used(block_header *b) {
    block_clear_free_bit(b);
    block_set_prev_used(block_next(b));
}

/* ---- pool accessors ----------------------------------------------------- */

static block_header *pool_head(const pool_record *p) {
    return (block_header *)((uintptr_t)p - BLOCK_HEADER_SIZE);
}
static pool_record *pool_from_head(const void *head) {
    return (pool_record *)((uintptr_t)head + BLOCK_HEADER_SIZE);
}
static block_header *pool_first_block(const pool_record *p) {
    return (block_header *)((uintptr_t)pool_head(p) + HEAD_SENTINEL_SIZE);
}
static block_header *pool_tail(const pool_record *p) {
    return (block_header *)((uintptr_t)pool_head(p) + p->bytes - TAIL_SENTINEL_SIZE);
}
/* The head sentinel is the only block whose prev_phys is NULL. */
static int block_is_first(const block_header *b) { return b->prev_phys->prev_phys == NULL; }
/* A free block that fills its pool from head to tail: the pool is unused. */
static int block_fills_pool(const block_header *b) {
    return block_is_first(b) && block_is_tail(block_next(b));
}

/* ---- the two-level mapping (the paper's names) -------------------------- */

/* The list a block of `size` bytes belongs to. */
static void mapping_insert(size_t size, int *fli, int *sli) {
    if (size < SMALL_BLOCK_SIZE) {
        *fli = 0;
        *sli = (int)(size >> ALIGN_SIZE_LOG2);
    } else {
        int fl = size_fls(size);
        *sli = (int)(size >> (fl - SL_INDEX_COUNT_LOG2)) ^ SL_INDEX_COUNT;
        *fli = fl - (FL_INDEX_SHIFT - 1);
    }
}

/* `size` rounded up to the start of the next list's range, so that every
 * block in the list mapping_search picks is big enough. size <= BLOCK_SIZE_MAX
 * keeps the result <= BLOCK_SIZE_MAX (it is a power of two). */
static size_t mapping_round(size_t size) {
    if (size < SMALL_BLOCK_SIZE) return size;
    size_t step = (size_t)1 << (size_fls(size) - SL_INDEX_COUNT_LOG2);
    return align_up(size, step);
}

static void mapping_search(size_t size, int *fli, int *sli) {
    mapping_insert(mapping_round(size), fli, sli);
}

/* The first non-empty list at or above (fl, sl), or NULL; updates fl, sl. */
static block_header *search_suitable_block(const control *c, int *fli, int *sli) {
    int fl = *fli, sl = *sli;
    uint32_t sl_map = c->sl_bitmap[fl] & (~(uint32_t)0 << sl);
    if (!sl_map) {
        uint64_t fl_map = c->fl_bitmap & (~(uint64_t)0 << (fl + 1));
        if (!fl_map) return NULL;
        fl = bit_ffs64(fl_map);
        sl_map = c->sl_bitmap[fl];
    }
    sl = bit_ffs32(sl_map);
    *fli = fl;
    *sli = sl;
    return c->blocks[fl][sl];
}

/* ---- free lists ----------------------------------------------------------- */

static void list_remove(control *c, block_header *b, int fl, int sl) {
    block_header *prev = b->prev_free, *next = b->next_free;
    if (next) next->prev_free = prev;
    if (prev) {
        prev->next_free = next;
    } else {
        c->blocks[fl][sl] = next;
        if (!next) {
            c->sl_bitmap[fl] &= ~((uint32_t)1 << sl);
            if (!c->sl_bitmap[fl]) c->fl_bitmap &= ~((uint64_t)1 << fl);
        }
    }
}

static void list_insert(control *c, block_header *b, int fl, int sl) {
    block_header *head = c->blocks[fl][sl];
    b->next_free = head;
    b->prev_free = NULL;
    if (head) head->prev_free = b;
    c->blocks[fl][sl] = b;
    c->sl_bitmap[fl] |= (uint32_t)1 << sl;
    c->fl_bitmap |= (uint64_t)1 << fl;
}

static void block_remove(control *c, block_header *b) {
    int fl, sl;
    mapping_insert(block_size(b), &fl, &sl);
    list_remove(c, b, fl, sl);
}

static void block_insert(control *c, block_header *b) {
    int fl, sl;
    mapping_insert(block_size(b), &fl, &sl);
    list_insert(c, b, fl, sl);
}

/* ---- split and merge ------------------------------------------------------ */

/* prev takes in its physical successor b. */
static block_header *block_absorb(block_header *prev, block_header *b) {
    block_set_size(prev, block_size(prev) + block_size(b));
    block_link_next(prev);
    return prev;
}

static block_header *block_merge_prev(control *c, block_header *b) {
    if (block_is_prev_free(b)) {
        block_header *prev = b->prev_phys;
        block_remove(c, prev);
        b = block_absorb(prev, b);
    }
    return b;
}

static block_header *block_merge_next(control *c, block_header *b) {
    block_header *next = block_next(b);
    if (block_is_free(next)) {
        block_remove(c, next);
        block_absorb(b, next);
    }
    return b;
}

static int block_can_split(const block_header *b, size_t size) {
    return block_size(b) >= size + BLOCK_SIZE_MIN;
}

/* Cuts b to `size` bytes; the rest becomes a free block (in no list), returned. */
static block_header *block_split(block_header *b, size_t size) {
    block_header *rest = (block_header *)((uintptr_t)b + size);
    rest->size = (block_size(b) - size) | (block_is_free(b) ? BLOCK_PREV_FREE : 0);
    block_set_size(b, size);
    rest->prev_phys = b;
    block_mark_free(rest);
    return rest;
}

/* b is free and in no list: cut it to `size`, put the rest in its list, mark b
 * used. b's physical successor is used (invariant), so the rest needs no merge. */
static void *block_prepare_used(control *c, block_header *b, size_t size) {
    if (block_can_split(b, size)) block_insert(c, block_split(b, size));
    block_mark_used(b);
    return block_to_ptr(b);
}

/* b is used: give back its bytes beyond `size` (merged with a free successor). */
static void block_trim_used(control *c, block_header *b, size_t size) {
    if (!block_can_split(b, size)) return;
    block_header *rest = block_split(b, size);
    block_insert(c, block_merge_next(c, rest));
}

/* b is free and in no list: put its first `gap` bytes in a list, return the rest. */
static block_header *block_trim_free_leading(control *c, block_header *b, size_t gap) {
    block_header *rest = block_split(b, gap);
    block_insert(c, b);
    return rest;
}

/* ---- locking -------------------------------------------------------------- */

static void heap_lock(const control *c) { if (c->hooks.lock) c->hooks.lock(c->hooks.ctx); }
static void heap_unlock(const control *c) { if (c->hooks.unlock) c->hooks.unlock(c->hooks.ctx); }

/* ---- pools ------------------------------------------------------------------ */

/* Lays out sentinels and one free block over [mem, mem + bytes) and links the
 * pool in (bytes: multiple of 16, >= POOL_OVERHEAD + BLOCK_SIZE_MIN). */
static pool_record *pool_setup(control *c, void *mem, size_t bytes, size_t owned) {
    block_header *head = mem;
    head->prev_phys = NULL;
    head->size = HEAD_SENTINEL_SIZE;
    pool_record *p = pool_from_head(head);
    p->bytes = bytes;
    p->owned = owned;
    p->magic = POOL_MAGIC;
    p->reserved = 0;
    p->next = NULL;
    p->prev = c->pools_last;
    if (c->pools_last) c->pools_last->next = p; else c->pools_first = p;
    c->pools_last = p;
    c->pool_count++;

    block_header *b = pool_first_block(p);
    b->prev_phys = head;
    b->size = (bytes - POOL_OVERHEAD) | BLOCK_FREE;
    block_header *tail = block_link_next(b);
    tail->size = 0 | BLOCK_PREV_FREE;
    block_insert(c, b);
    return p;
}

static void pool_unlink(control *c, pool_record *p) {
    if (p->prev) p->prev->next = p->next; else c->pools_first = p->next;
    if (p->next) p->next->prev = p->prev; else c->pools_last = p->prev;
    c->pool_count--;
    if (c->spare == p) c->spare = NULL;
}

/* p is wholly free: take its block out of the lists and drop the pool. */
static void pool_release(control *c, pool_record *p) {
    block_remove(c, pool_first_block(p));
    pool_unlink(c, p);
    if (p->owned) {
        if (p->owned == POOL_SHARED) c->owned_bytes -= p->bytes;
        c->hooks.free_page(c->hooks.ctx, pool_head(p), p->bytes / c->hooks.page_size);
    }
}

/* Keep one small wholly free pool from alloc_page (the latest to empty); an
 * older spare, or a pool too big to keep, is given back. Caller pools are
 * never given back here. */
static void pool_on_empty(control *c, pool_record *p) {
    if (!p->owned) return;
    if (p->bytes > SPARE_MAX_BYTES) {
        pool_release(c, p);
        return;
    }
    pool_record *old = c->spare;
    c->spare = p;
    if (old && old != p) pool_release(c, old);
}

/* Adds a pool from alloc_page for a request of `size` block bytes that no free
 * block fits, and returns its free block (in its list; the only one at or
 * above the request's, since the search failed), or NULL if the pages cannot
 * be had. The pool holds the request's list start (mapping_round), at least
 * POOL_MIN_BYTES and a growth share of the heap; or, for a large request that
 * needs more than that share, just the request (OWN_POOL_MIN_BYTES). */
static block_header *pool_grow(control *c, size_t size) {
    if (!c->hooks.alloc_page) return NULL;
    size_t page = c->hooks.page_size;
    size_t rounded = mapping_round(size);
    size_t need = rounded + POOL_OVERHEAD;          /* rounded <= BLOCK_SIZE_MAX: no wrap */
    size_t growth = c->owned_bytes >> POOL_GROWTH_SHIFT;
    size_t kind = POOL_SHARED;
    if (size >= OWN_POOL_MIN_BYTES && need > growth) {
        need = size + POOL_OVERHEAD;                /* a pool of its own */
        kind = POOL_OWN;
    } else {
        if (need < POOL_MIN_BYTES) need = POOL_MIN_BYTES;
        if (need < growth) need = growth;
    }
    if (need > SIZE_MAX - (page - 1)) return NULL;
    size_t bytes = align_up(need, page);
    if (bytes - POOL_OVERHEAD > BLOCK_SIZE_MAX) return NULL;
    void *mem = c->hooks.alloc_page(c->hooks.ctx, bytes / page);
    if (!mem) return NULL;
    /* grown past twice the request: a pool many blocks will be split from */
    if (c->hooks.prefault_page && bytes / 2 >= rounded + POOL_OVERHEAD) c->hooks.prefault_page(c->hooks.ctx, mem, bytes / page);
    pool_setup(c, mem, bytes, kind);
    if (kind == POOL_SHARED) c->owned_bytes += bytes;
    return pool_first_block(pool_from_head(mem));
}

/* Whether used block b is alone in a pool from alloc_page (nothing after it
 * but, at most, one free block): its pages are then its own, and realloc can
 * resize them through hooks.resize_page instead of copying. */
static int block_owns_pool(const control *c, const block_header *b) {
    if (!c->hooks.resize_page || !block_is_first(b)) return 0;
    const block_header *next = block_next(b);
    if (!block_is_tail(next) && !(block_is_free(next) && block_is_tail(block_next(next)))) return 0;
    return pool_from_head(b->prev_phys)->owned != 0;
}

/* Resizes the pool of b (block_owns_pool) so that b holds `size` bytes, moving
 * it if the page source must; b's bytes are kept. Returns b's new header, or
 * NULL (the heap unchanged) when the page source cannot. */
static block_header *pool_resize_for(control *c, block_header *b, size_t size) {
    size_t page = c->hooks.page_size;
    pool_record *p = pool_from_head(b->prev_phys);
    if (size > SIZE_MAX - POOL_OVERHEAD - (page - 1)) return NULL;
    size_t bytes = align_up(size + POOL_OVERHEAD, page);
    if (bytes < POOL_MIN_BYTES) bytes = POOL_MIN_BYTES;
    if (bytes - POOL_OVERHEAD > BLOCK_SIZE_MAX) return NULL;
    block_header *next = block_next(b);
    int had_free = block_is_free(next);
    if (had_free) block_remove(c, next);   /* its list links hold addresses */
    pool_record *prev = p->prev, *after = p->next;
    size_t old_bytes = p->bytes;
    void *mem = c->hooks.resize_page(c->hooks.ctx, pool_head(p), old_bytes / page, bytes / page);
    if (!mem) {
        if (had_free) block_insert(c, next);
        return NULL;
    }
    /* relink the pool record and rebuild the pool as one used block */
    block_header *head = mem;
    p = pool_from_head(head);
    p->bytes = bytes;
    if (prev) prev->next = p; else c->pools_first = p;
    if (after) after->prev = p; else c->pools_last = p;
    if (p->owned == POOL_SHARED) c->owned_bytes = c->owned_bytes - old_bytes + bytes;
    b = pool_first_block(p);
    b->prev_phys = head;
    b->size = (bytes - POOL_OVERHEAD) | (b->size & BLOCK_FLAG_MASK);
    block_header *tail = block_link_next(b);
    tail->size = 0;
    block_trim_used(c, b, size);
    return b;
}

/* ---- the allocator ------------------------------------------------------- */

/* Request bytes to block bytes, or 0 if it cannot be served. */
static size_t adjust_request(size_t bytes) {
    if (bytes > BLOCK_SIZE_MAX - BLOCK_HEADER_SIZE) return 0;   /* also > PTRDIFF_MAX */
    size_t size = align_up(bytes + BLOCK_HEADER_SIZE, ALIGN_SIZE);   /* <= BLOCK_SIZE_MAX */
    return size < BLOCK_SIZE_MIN ? BLOCK_SIZE_MIN : size;
}

/* A free block of at least `size` bytes, taken out of its list, or NULL.
 * Grows the heap by one pool when no list fits; *fresh tells whether the
 * block is that new pool's (its payload then reads as zero past the links). */
static block_header *block_locate_free(control *c, size_t size, int *fresh) {
    int fl, sl;
    *fresh = 0;
    mapping_search(size, &fl, &sl);
    block_header *b = search_suitable_block(c, &fl, &sl);
    if (b) {
        list_remove(c, b, fl, sl);
    } else {
        b = pool_grow(c, size);
        if (!b) return NULL;
        block_remove(c, b);   /* the new pool's block, which the search would now find (or its own pool's) */
        *fresh = 1;
    }
    if (c->spare && b == pool_first_block(c->spare)) c->spare = NULL;
    return b;
}

static void *heap_malloc(control *c, size_t bytes, int *fresh) {
    size_t size = adjust_request(bytes);
    if (!size) return NULL;
    block_header *b = block_locate_free(c, size, fresh);
    return b ? block_prepare_used(c, b, size) : NULL;
}

static void *heap_memalign(control *c, size_t align, size_t bytes) {
    int fresh;
    if (!is_pow2(align)) return NULL;
    if (align <= ALIGN_SIZE) return heap_malloc(c, bytes, &fresh);
    size_t size = adjust_request(bytes);
    if (!size || align > BLOCK_SIZE_MAX / 2) return NULL;
    /* room for the block plus the worst leading gap (under align + BLOCK_SIZE_MIN) */
    size_t search = size + align + BLOCK_SIZE_MIN;
    if (search > BLOCK_SIZE_MAX) return NULL;
    block_header *b = block_locate_free(c, search, &fresh);
    if (!b) return NULL;

    uintptr_t payload = (uintptr_t)block_to_ptr(b);
    size_t gap = align_up(payload, align) - payload;
    /* a gap must be able to stand as a free block of its own */
    if (gap && gap < BLOCK_SIZE_MIN) gap = align_up(payload + BLOCK_SIZE_MIN, align) - payload;
    if (gap) b = block_trim_free_leading(c, b, gap);
    return block_prepare_used(c, b, size);
}

static void heap_free(control *c, void *ptr) {
    block_header *b = block_from_ptr(ptr);
    if (block_is_free(b)) return;   /* a double free is ignored, never merged twice */
    block_mark_free(b);
    b = block_merge_prev(c, b);
    b = block_merge_next(c, b);
    block_insert(c, b);
    if (block_fills_pool(b)) pool_on_empty(c, pool_from_head(b->prev_phys));
}

static void *heap_realloc(control *c, void *ptr, size_t bytes) {
    int fresh;
    if (!ptr) return heap_malloc(c, bytes, &fresh);
    size_t size = adjust_request(bytes);
    if (!size) return NULL;
    block_header *b = block_from_ptr(ptr);
    if (block_is_free(b)) return NULL;       /* a freed block's realloc is refused, as its second free is ignored */
    size_t cur = block_size(b);

    if (size <= cur) {                       /* shrink in place */
        /* a lone block in a big pool gives the pages it no longer needs back */
        if (cur - size >= POOL_MIN_BYTES && block_owns_pool(c, b)) {
            block_header *r = pool_resize_for(c, b, size);
            if (r) return block_to_ptr(r);
        }
        block_trim_used(c, b, size);
        return ptr;
    }
    block_header *next = block_next(b);
    if (block_is_free(next) && cur + block_size(next) >= size) {   /* grow in place */
        block_remove(c, next);
        block_absorb(b, next);
        block_set_prev_used(block_next(b));
        block_trim_used(c, b, size);
        return ptr;
    }
    if (block_owns_pool(c, b)) {             /* its own pages: resize them, no copy */
        block_header *r = pool_resize_for(c, b, size);
        if (r) return block_to_ptr(r);
    }
    void *moved = heap_malloc(c, bytes, &fresh);
    if (!moved) return NULL;                 /* the old block is untouched */
    memcpy(moved, ptr, cur - BLOCK_HEADER_SIZE);   /* cur < size: all old bytes fit */
    heap_free(c, ptr);
    return moved;
}

static void control_init(control *c) {
    memset(c, 0, sizeof *c);
}

/* ---- public API ------------------------------------------------------------- */

size_t tlsf_size(void) { return sizeof(control); }
size_t tlsf_align_size(void) { return ALIGN_SIZE; }
size_t tlsf_block_size_min(void) { return BLOCK_SIZE_MIN - BLOCK_HEADER_SIZE; }
size_t tlsf_block_size_max(void) { return BLOCK_SIZE_MAX - BLOCK_HEADER_SIZE; }
size_t tlsf_pool_overhead(void) { return POOL_OVERHEAD; }
size_t tlsf_alloc_overhead(void) { return BLOCK_HEADER_SIZE; }

tlsf_t tlsf_create(void *mem) {
    if (!mem || ((uintptr_t)mem & (ALIGN_SIZE - 1))) return NULL;
    control_init(mem);
    return mem;
}

tlsf_t tlsf_create_with_pool(void *mem, size_t bytes) {
    size_t control_bytes = align_up(sizeof(control), ALIGN_SIZE);
    if (bytes < control_bytes) return NULL;
    tlsf_t t = tlsf_create(mem);
    if (!t) return NULL;
    if (!tlsf_add_pool(t, (char *)mem + control_bytes, bytes - control_bytes)) return NULL;
    return t;
}

tlsf_t tlsf_create_with_hooks(const hl_hooks *hooks) {
    if (!hooks || !hooks->alloc_page || !hooks->free_page || !is_pow2(hooks->page_size) ||
        hooks->page_size < ALIGN_SIZE)
        return NULL;
    size_t pages = (sizeof(control) + hooks->page_size - 1) / hooks->page_size;
    control *c = hooks->alloc_page(hooks->ctx, pages);
    if (!c) return NULL;
    control_init(c);
    c->hooks = *hooks;
    c->control_pages = pages;
    return c;
}

void tlsf_destroy(tlsf_t tlsf) {
    control *c = tlsf;
    if (!c) return;
    hl_hooks hooks = c->hooks;   /* the control structure goes away below */
    heap_lock(c);
    pool_record *p = c->pools_first;
    while (p) {
        pool_record *next = p->next;
        if (p->owned) hooks.free_page(hooks.ctx, pool_head(p), p->bytes / hooks.page_size);
        p = next;
    }
    c->pools_first = c->pools_last = c->spare = NULL;
    c->pool_count = 0;
    if (c->control_pages) hooks.free_page(hooks.ctx, c, c->control_pages);
    if (hooks.unlock) hooks.unlock(hooks.ctx);
}

pool_t tlsf_get_pool(tlsf_t tlsf) {
    control *c = tlsf;
    heap_lock(c);
    pool_t pool = c->pools_first ? (pool_t)pool_head(c->pools_first) : NULL;
    heap_unlock(c);
    return pool;
}

pool_t tlsf_add_pool(tlsf_t tlsf, void *mem, size_t bytes) {
    control *c = tlsf;
    if (!mem || ((uintptr_t)mem & (ALIGN_SIZE - 1))) return NULL;
    bytes &= ~(ALIGN_SIZE - 1);
    if (bytes < POOL_OVERHEAD + BLOCK_SIZE_MIN || bytes - POOL_OVERHEAD > BLOCK_SIZE_MAX) return NULL;
    heap_lock(c);
    pool_setup(c, mem, bytes, POOL_CALLERS);
    heap_unlock(c);
    return mem;
}

void tlsf_remove_pool(tlsf_t tlsf, pool_t pool) {
    control *c = tlsf;
    if (!pool) return;
    heap_lock(c);
    pool_record *p = c->pools_first;
    while (p && pool_head(p) != (block_header *)pool) p = p->next;
    if (p) {
        block_header *b = pool_first_block(p);
        if (block_is_free(b) && block_is_tail(block_next(b))) pool_release(c, p);
    }
    heap_unlock(c);
}

void *tlsf_malloc(tlsf_t tlsf, size_t bytes) {
    control *c = tlsf;
    int fresh;
    heap_lock(c);
    void *p = heap_malloc(c, bytes, &fresh);
    heap_unlock(c);
    return p;
}

void *tlsf_memalign(tlsf_t tlsf, size_t align, size_t bytes) {
    control *c = tlsf;
    heap_lock(c);
    void *p = heap_memalign(c, align, bytes);
    heap_unlock(c);
    return p;
}

void *tlsf_realloc(tlsf_t tlsf, void *ptr, size_t size) {
    control *c = tlsf;
    heap_lock(c);
    void *p = heap_realloc(c, ptr, size);
    heap_unlock(c);
    return p;
}

void *tlsf_calloc(tlsf_t tlsf, size_t count, size_t size) {
    control *c = tlsf;
    if (size && count > SIZE_MAX / size) return NULL;
    size_t bytes = count * size;
    int fresh;
    heap_lock(c);
    void *p = heap_malloc(c, bytes, &fresh);
    /* fresh pages read as zero except where the free-list links were written; a
     * reused block is cleared whole (not only `bytes`: a request under 16 bytes
     * would leave half a stale free-list link in the usable bytes) */
    if (p) memset(p, 0, fresh ? BLOCK_SIZE_MIN - BLOCK_HEADER_SIZE : block_usable(block_from_ptr(p)));
    heap_unlock(c);
    return p;
}

void tlsf_free(tlsf_t tlsf, void *ptr) {
    control *c = tlsf;
    if (!ptr) return;
    heap_lock(c);
    heap_free(c, ptr);
    heap_unlock(c);
}

size_t tlsf_block_size(void *ptr) {
    return ptr ? block_usable(block_from_ptr(ptr)) : 0;
}

size_t tlsf_block_peek(const void *ptr, int *prev_free) {
    const block_header *b = block_from_ptr(ptr);
    *prev_free = block_is_prev_free(b);
    return block_is_free(b) ? 0 : block_usable(b);
}

size_t tlsf_usable_size(tlsf_t tlsf, const void *ptr) {
    control *c = tlsf;
    if (!ptr) return 0;
    heap_lock(c);
    size_t n = block_usable(block_from_ptr(ptr));
    heap_unlock(c);
    return n;
}

void tlsf_walk_pool(pool_t pool, tlsf_walker walker, void *user) {
    if (!pool) return;
    const pool_record *p = pool_from_head(pool);
    const block_header *tail = pool_tail(p);
    const block_header *b = pool_first_block(p);
    while (b != tail) {
        size_t size = block_size(b);
        if (size < BLOCK_SIZE_MIN || size > (size_t)((uintptr_t)tail - (uintptr_t)b)) return;
        if (walker) walker(block_to_ptr(b), block_usable(b), !block_is_free(b), user);
        b = block_next(b);
    }
}

void tlsf_walk_heap(tlsf_t tlsf, tlsf_heap_walker walker, void *user) {
    control *c = tlsf;
    if (!c || !walker) return;
    heap_lock(c);
    if (c->control_pages) walker(c, c->control_pages * c->hooks.page_size, c, 0, TLSF_WALK_META, 0, user);
    unsigned region = 1;
    size_t n = 0;
    for (pool_record *p = c->pools_first; p && n < c->pool_count; p = p->next, n++, region++) {
        block_header *head = pool_head(p), *tail = pool_tail(p), *b = pool_first_block(p);
        walker(head, HEAD_SENTINEL_SIZE, head, 0, TLSF_WALK_META, region, user);
        while (b != tail) {
            size_t size = block_size(b);
            if (size < BLOCK_SIZE_MIN || size > (size_t)((uintptr_t)tail - (uintptr_t)b)) break; /* broken: check() says so */
            walker(b, size, block_to_ptr(b), block_usable(b), block_is_free(b) ? TLSF_WALK_FREE : TLSF_WALK_USED, region, user);
            b = block_next(b);
        }
        walker(tail, TAIL_SENTINEL_SIZE, tail, 0, TLSF_WALK_META, region, user);
    }
    heap_unlock(c);
}

/* ---- the checker -------------------------------------------------------------
 * Counts broken invariants; reads only inside the pools' recorded bounds. */

/* Walks one pool's blocks in address order; counts its free blocks. */
static size_t check_pool_blocks(const pool_record *p, size_t *free_blocks) {
    size_t bad = 0;
    const block_header *head = pool_head(p);
    if (p->magic != POOL_MAGIC) bad++;
    if (head->prev_phys != NULL || head->size != HEAD_SENTINEL_SIZE) bad++;
    if ((p->bytes & (ALIGN_SIZE - 1)) || p->bytes < POOL_OVERHEAD + BLOCK_SIZE_MIN) return bad + 1;
    const block_header *tail = pool_tail(p);
    if (block_size(tail) != 0 || block_is_free(tail) || (tail->size & ~BLOCK_PREV_FREE)) bad++;

    const block_header *prev = head;
    const block_header *b = pool_first_block(p);
    while (b != tail) {
        size_t size = block_size(b);
        if (b->size & BLOCK_FLAG_MASK & ~(BLOCK_FREE | BLOCK_PREV_FREE)) bad++;   /* unaligned size */
        if (b->prev_phys != prev) bad++;
        if (block_is_prev_free(b) != block_is_free(prev)) bad++;
        if (block_is_free(b) && block_is_free(prev)) bad++;                      /* not coalesced */
        if (size < BLOCK_SIZE_MIN || size > (size_t)((uintptr_t)tail - (uintptr_t)b))
            return bad + 1;                                /* too small or past the pool end */
        if (block_is_free(b)) (*free_blocks)++;
        prev = b;
        b = block_next(b);
    }
    if (tail->prev_phys != prev) bad++;
    if (block_is_prev_free(tail) != block_is_free(prev)) bad++;
    return bad;
}

/* Whether a free block's header and links lie inside some pool's block area. */
static int pool_contains(const control *c, const block_header *b) {
    if ((uintptr_t)b & (ALIGN_SIZE - 1)) return 0;
    size_t n = 0;
    for (const pool_record *p = c->pools_first; p && n < c->pool_count; p = p->next, n++) {
        uintptr_t lo = (uintptr_t)pool_first_block(p), hi = (uintptr_t)pool_tail(p);
        if ((uintptr_t)b >= lo && (uintptr_t)b + BLOCK_SIZE_MIN <= hi) return 1;
    }
    return 0;
}

static size_t check_lists(const control *c, size_t free_blocks) {
    size_t bad = 0, listed = 0;
    if (FL_INDEX_COUNT < 64 && (c->fl_bitmap >> FL_INDEX_COUNT)) bad++;
    for (int fl = 0; fl < FL_INDEX_COUNT; fl++) {
        uint32_t sl_map = c->sl_bitmap[fl];
        if ((int)((c->fl_bitmap >> fl) & 1) != (sl_map != 0)) bad++;
        if (SL_INDEX_COUNT < 32 && (sl_map >> (SL_INDEX_COUNT & 31))) bad++;
        for (int sl = 0; sl < SL_INDEX_COUNT; sl++) {
            const block_header *b = c->blocks[fl][sl];
            if ((int)((sl_map >> sl) & 1) != (b != NULL)) bad++;
            const block_header *prev = NULL;
            for (; b; prev = b, b = b->next_free) {
                if (listed > free_blocks || !pool_contains(c, b)) { bad++; break; }
                listed++;
                if (!block_is_free(b)) bad++;
                if (b->prev_free != prev) bad++;
                size_t size = block_size(b);
                int bfl = -1, bsl = -1;
                if (size >= BLOCK_SIZE_MIN && size <= BLOCK_SIZE_MAX) mapping_insert(size, &bfl, &bsl);
                if (bfl != fl || bsl != sl) bad++;
            }
        }
    }
    if (listed != free_blocks) bad++;
    return bad;
}

#define TLSF_INT_MAX ((int)(~0u >> 1))
static int count_to_int(size_t n) { return n > (size_t)TLSF_INT_MAX ? TLSF_INT_MAX : (int)n; }

int tlsf_check_pool(pool_t pool) {
    size_t free_blocks = 0;
    return pool ? count_to_int(check_pool_blocks(pool_from_head(pool), &free_blocks)) : 0;
}

int tlsf_check(tlsf_t tlsf) {
    control *c = tlsf;
    size_t bad = 0, free_blocks = 0, n = 0;
    heap_lock(c);
    const pool_record *p = c->pools_first, *prev = NULL;
    int spare_seen = c->spare == NULL;
    size_t owned = 0;
    for (; p && n < c->pool_count; prev = p, p = p->next, n++) {
        if (p->prev != prev) bad++;
        if (p->owned > POOL_OWN) bad++;
        if (p->owned == POOL_SHARED) owned += p->bytes;
        bad += check_pool_blocks(p, &free_blocks);
        if (p == c->spare) {
            spare_seen = 1;
            const block_header *b = pool_first_block(p);
            if (!p->owned || !block_is_free(b) || !block_is_tail(block_next(b))) bad++;
        }
    }
    if (p || n != c->pool_count || c->pools_last != prev) bad++;
    if (!spare_seen) bad++;
    if (!p && owned != c->owned_bytes) bad++;
    bad += check_lists(c, free_blocks);
    heap_unlock(c);
    return count_to_int(bad);
}
