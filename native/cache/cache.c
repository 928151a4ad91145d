/* cache.c — the thread cache layer. See cache.h for the design and its contract. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cache.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../layer.h"
#include "../pages/page_map.h"

#define HL_CACHE_LIKELY(x) __builtin_expect(!!(x), 1)
#define CACHE_MAGIC ((uint64_t)0x48435348454c4f43u) /* "COLEHSCH" */

enum { CLASS_SUB_BITS = 3, CLASS_SUB = 1 << CLASS_SUB_BITS }; /* classes per power of two above 256 */
_Static_assert(HL_CACHE_MAX_LOG2 >= 9 && HL_CACHE_MAX_LOG2 <= 30 &&
                   HL_CACHE_CLASSES == 16 + (HL_CACHE_MAX_LOG2 - 8) * CLASS_SUB,
               "16 classes of 16 bytes to 256, then CLASS_SUB per power of two up to HL_CACHE_MAX_BYTES");

/* ---- size classes ------------------------------------------------------------ */

static unsigned floor_log2(size_t x) { return 63u - (unsigned)__builtin_clzl(x); } /* x != 0 */

/* The class of a request of n bytes (n <= HL_CACHE_MAX_BYTES). */
static unsigned class_of_rule(size_t n) {
    if (n <= 256) return n ? (unsigned)((n - 1) >> 4) : 0;
    unsigned e = floor_log2(n - 1); /* 8 .. HL_CACHE_MAX_LOG2 - 1 */
    return 16 + (e - 8) * CLASS_SUB + (unsigned)(((n - 1) >> (e - CLASS_SUB_BITS)) & (CLASS_SUB - 1));
}

static size_t class_size_of(unsigned c) {
    if (c < 16) return ((size_t)c + 1) * 16;
    unsigned e = 8 + (c - 16) / CLASS_SUB, sub = (c - 16) % CLASS_SUB;
    return ((size_t)1 << e) + ((size_t)sub + 1) * ((size_t)1 << (e - CLASS_SUB_BITS));
}

/* Both per-class figures from tables filled once (class_tables_init): they are
 * read on every cached malloc and free, and the capacity is a division. The
 * entry past the last class is NO_CLASS's (below). */
static uint32_t class_bytes[HL_CACHE_CLASSES + 1];
static uint32_t class_cap[HL_CACHE_CLASSES + 1];
static size_t class_size(unsigned c) { return class_bytes[c]; }

/* The largest class whose blocks a block of `usable` bytes can be (16 <=
 * usable < HL_CACHE_MAX_BYTES): below 256, usable / 16 - 1; above, with e =
 * floor_log2(usable) and m the next three bits, class 16 + (e - 8) * 8 + m - 1,
 * whose size is 2^e + m * 2^(e-3) <= usable (m = 0 is the octave below's last). */
static unsigned class_floor_rule(size_t usable) {
    if (usable < 256) return (unsigned)(usable >> 4) - 1;
    unsigned e = floor_log2(usable);
    return 16 + (e - 8) * CLASS_SUB + (unsigned)((usable >> (e - CLASS_SUB_BITS)) & (CLASS_SUB - 1)) - 1;
}
/* Below CLASS_TABLE_BYTES, both rules from tables (class_tables_init): on the
 * hot paths a load in place of a bit scan and its arithmetic. Both rules are
 * functions of the size's bits from bit 4 up there (class_of of (n - 1) >> 4,
 * n >= 1; class_floor_of of usable >> 4), so one entry per 16 bytes. */
#define CLASS_TABLE_BYTES ((size_t)4096)
static uint8_t class_of_table[CLASS_TABLE_BYTES / 16];       /* by (n - 1) >> 4, 1 <= n <= CLASS_TABLE_BYTES */
static uint8_t class_floor_table[CLASS_TABLE_BYTES / 16];    /* by usable >> 4   */
_Static_assert(HL_CACHE_CLASSES < 255 && CLASS_TABLE_BYTES > 256 && CLASS_TABLE_BYTES <= (size_t)HL_CACHE_MAX_BYTES, "tables of byte classes");
static unsigned class_of(size_t n) {
    return n - 1 < CLASS_TABLE_BYTES ? class_of_table[(n - 1) >> 4] : class_of_rule(n);
}
static unsigned class_floor_of(size_t usable) {
    return usable < CLASS_TABLE_BYTES ? class_floor_table[usable >> 4] : class_floor_rule(usable);
}

/* A bin's capacity: small classes hold more blocks, a bin about
 * HL_CACHE_BIN_BYTES, but never fewer than HL_CACHE_BIN_MIN blocks (a bin that
 * holds few makes every other call a refill or a flush under the lock). */
#ifndef HL_CACHE_BIN_BYTES
#define HL_CACHE_BIN_BYTES ((size_t)128 << 10)
#endif
#ifndef HL_CACHE_BIN_MIN
#define HL_CACHE_BIN_MIN 4
#endif
static uint32_t class_capacity_of(unsigned c) {
    size_t n = HL_CACHE_BIN_BYTES / class_size_of(c);
    return (uint32_t)(n < HL_CACHE_BIN_MIN ? HL_CACHE_BIN_MIN : n > 128 ? 128 : n);
}
static uint32_t class_capacity(unsigned c) { return class_cap[c]; }

static pthread_once_t class_tables_once = PTHREAD_ONCE_INIT;
static void class_tables_init(void) {
    for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) {
        class_bytes[c] = (uint32_t)class_size_of(c);
        class_cap[c] = class_capacity_of(c);
    }
    class_bytes[HL_CACHE_CLASSES] = class_cap[HL_CACHE_CLASSES] = 0; /* NO_CLASS */
    for (unsigned k = 0; k < sizeof class_of_table; k++) class_of_table[k] = (uint8_t)class_of_rule(16 * k + 1);
    for (unsigned k = 1; k < sizeof class_floor_table; k++) class_floor_table[k] = (uint8_t)class_floor_rule(16 * k);
}

/* ---- the page map: which arena a page belongs to ------------------------------- */

/* The arena's index + 1 for each page an arena's design took from the page
 * source (0: no arena's), shared by every cache heap of the process: a page
 * belongs to one heap at a time. Written by the arena that takes or gives back
 * the run. */
_Static_assert(HL_CACHE_ARENAS >= 1 && HL_CACHE_ARENAS < 255, "an arena's index + 1 fits a byte of the page map");
static hl_page_map arena_pages;

static void page_map_set(const void *start, size_t bytes, uint8_t value) { hl_page_map_set(&arena_pages, start, bytes, value); }
static unsigned page_map_get(const void *p) { return hl_page_map_get(&arena_pages, p); }

/* ---- the block map: what this layer knows of a block, from its address ------------ */

/* One byte per 32-byte granule of the address space, for every block this layer
 * handed out or holds: the hot free reads it in place of the block's header,
 * a line that is rarely in the cache when a random block is freed (perf on
 * `heaplab bench` fast: half of the free's samples sat on that load). Every
 * design's blocks start at least HL_BLOCK_SPACING_MIN bytes apart, so two
 * blocks never share a byte; each pointer this layer returns has its byte
 * written first, so a byte left over from an earlier block at that place is
 * never read as this one's.
 *   0                     not a block the bins may take as it is: ask the design
 *   c + 1                 a live block the cache handed out, of class c or more
 *   BLOCK_HELD | ...      in a thread's bin or on its way back: freeing it again
 *                         is a second free, ignored and counted
 * Leaves of 128 MiB (one per 4 GiB region), made with the arena's first page
 * there; their pages cost memory where written, 1/32 of the heap's span. The
 * map is flat where the host allows (block_map_init): in the window where the
 * kernel places mappings, the hot free's byte is then a fixed base plus p >> 5,
 * with no load of a leaf in front of it (`heaplab bench` fast: 5-9% of the
 * time of every NAME+cache). */
enum { BLOCK_GRANULE_SHIFT = 5, BLOCK_HELD = 0x80, BLOCK_PENDING = 0xff };
_Static_assert(HL_CACHE_CLASSES + 1 < BLOCK_HELD, "a class + 1 fits below the held bit");
_Static_assert((BLOCK_PENDING & ~BLOCK_HELD) - 1 >= HL_CACHE_CLASSES, "a pending block's byte, held bit aside, names no class");
_Static_assert(((size_t)1 << BLOCK_GRANULE_SHIFT) <= HL_BLOCK_SPACING_MIN, "two blocks never share a byte of the block map");
static hl_byte_map block_map;
static pthread_once_t block_map_once = PTHREAD_ONCE_INIT;
static void block_map_init(void) { hl_byte_map_flat(&block_map, BLOCK_GRANULE_SHIFT); } /* where the host allows */

static inline uint8_t *block_byte(const void *p) { return hl_byte_map_at(&block_map, p, BLOCK_GRANULE_SHIFT); }
/* The byte of a block a bin holds (its leaf was mapped with the block's pages,
 * and bin_push wrote the byte). */
static inline uint8_t *held_block_byte(const void *p) { return hl_byte_map_at_mapped(&block_map, p, BLOCK_GRANULE_SHIFT); }
static unsigned block_state(const void *p) { /* 0 outside any leaf */
    const uint8_t *b = block_byte(p);
    return b ? *b : 0;
}
static void block_set(const void *p, unsigned state) {
    uint8_t *b = block_byte(p);
    if (b && *b != state) *b = (uint8_t)state; /* a byte no leaf covers is 0, and read-only (page_map.h) */
}
/* A block handed out that no bin may take as it is (memalign, large, the
 * design's realloc): its free asks the design. */
static void *handed_out_plain(void *p) {
    uint8_t *b = p ? block_byte(p) : NULL;
    if (b && *b) *b = 0; /* a byte that is 0 already is not written: its page of the map may be untouched */
    return p;
}

/* ---- heap, arena and thread state ----------------------------------------------- */

/* The class of a block no class fits (usable below 16, or above the largest). */
enum { NO_CLASS = HL_CACHE_CLASSES };

/* The class a block of `usable` bytes is cached in: the largest it can hold
 * (NO_CLASS: none, below 16 bytes or above HL_CACHE_MAX_BYTES). */
static unsigned class_to_cache(size_t usable) {
    return usable - 16 <= HL_CACHE_MAX_BYTES - 16 ? class_floor_of(usable) : NO_CLASS;
}

typedef struct cache_heap cache_heap;

/* An arena's depot: lists of blocks of one class (a full bin's top half, as it
 * was, its first block the arena's) that one thread gave up and a thread of the
 * arena takes when its bin of that class is empty. A block freed on one thread
 * and allocated on another (a producer and a consumer) then costs neither the
 * design's free nor its malloc, only the walk that cuts the bin's list; threads
 * of other arenas, each with blocks of its own, do not trade blocks (and then
 * locks) through it. HL_CACHE_DEPOT_LISTS lists per class, at most
 * HL_CACHE_DEPOT_BYTES in all; a list keeps its blocks' bytes in the block map
 * as a bin does (a second free is still caught). Used while the heap is dense
 * and not draining; emptied into the designs when it becomes either
 * (depot_drain). */
#ifndef HL_CACHE_DEPOT_LISTS
#define HL_CACHE_DEPOT_LISTS 2
#endif
#ifndef HL_CACHE_DEPOT_BYTES
#define HL_CACHE_DEPOT_BYTES ((size_t)1 << 20)
#endif
typedef struct depot_list { void *head; uint32_t count; } depot_list;
typedef struct cache_depot {
    hl_spinlock lock;       /* held for a list's move in or out, never with another lock */
    size_t bytes;           /* the lists' weight (written under the lock, read without: an estimate) */
    uint8_t lists[HL_CACHE_CLASSES];
    depot_list list[HL_CACHE_CLASSES][HL_CACHE_DEPOT_LISTS];
} cache_depot;
_Static_assert(HL_CACHE_DEPOT_LISTS < 256, "a class's count of lists fits a byte");

/* One instance of the design, with its own lock: threads are spread over the
 * arenas, so two threads that refill and flush at once rarely meet at a lock
 * (one heap behind the bins made the churn harness's 2T/1T 1.36-1.52). */
typedef struct cache_arena {
    hl_spinlock lock;
    void *inner_heap;        /* made when a thread is first given this arena */
    cache_heap *heap;
    uint8_t tag;             /* its index + 1, as the page map holds it */
    unsigned threads;        /* live threads given this arena (under hooks->lock) */
    hl_hooks hooks;          /* what the design sees: the arena's page hooks, no-op locks */
    cache_depot depot;
} cache_arena;

/* A thread's state. Its bins are two arrays, so that the hot paths index
 * each with the class alone: bin c is the list head[c] (LIFO through each
 * block's first word), with room[c] more blocks allowed (class_capacity(c) -
 * its count; NO_CLASS's is 0). The bytes its bins and pending blocks weigh
 * are limit - budget: a hot free that would take budget below 0 goes the slow
 * way (thread_bytes, thread_limit). */
typedef struct cache_thread {
    void *head[HL_CACHE_CLASSES];       /* first: indexed by the class alone */
    int32_t room[HL_CACHE_CLASSES + 1];
    ptrdiff_t budget;                   /* bytes the bins may still take */
    int sparse;                         /* the heap is mostly free: frees ask the header (heap_sparse) */
    size_t hits;
    cache_heap *heap;
    cache_arena *arena;                 /* where its refills come from */
    struct cache_thread *next, *prev;   /* the heap's threads, under hooks->lock */
    size_t limit;                       /* the most bytes its bins may weigh on a cached free (thread_limit) */
    size_t misses, flushes, double_frees, transfers;
    void *pending;                      /* blocks on their way back to the design (cache_free_slow) */
    uint32_t pending_count;
    size_t pending_bytes;               /* their weight, part of the thread's bytes */
} cache_thread;

static void bins_sweep(cache_heap *h, cache_thread *t);
static void depot_drain(cache_heap *h);

/* The bytes the thread's bins and pending blocks weigh. */
static size_t thread_bytes(const cache_thread *t) { return t->limit - (size_t)t->budget; }
static uint32_t bin_count(const cache_thread *t, unsigned c) { return class_capacity(c) - (uint32_t)t->room[c]; }

struct cache_heap {
    uint64_t id;                 /* unique per heap: the _Thread_local fast path's tag */
    uint64_t magic;
    const hl_allocator *inner;
    size_t (*peek)(void *heap, const void *ptr, int *merges); /* the inner's, or NULL */
    int (*prev_free)(const void *ptr); /* the inner's, or NULL */
    size_t plain_mask, plain_value; /* the inner's header word (hl_header_word; 0, 0: none) */
    hl_hooks hooks;              /* the caller's: its lock guards the page source and the thread list */
    size_t pages;
    pthread_key_t thread_key;
    cache_thread *threads;
    size_t exited_hits, exited_misses, exited_flushes, exited_double_frees, exited_transfers;
    cache_arena arenas[HL_CACHE_ARENAS];
    /* Usable bytes of the inner heaps' blocks that this layer took and has not
     * given back (the program's and every thread's bins; not the threads'
     * own states, so that a program holding nothing has a bound of 0): changed
     * atomically under the arenas' locks, read at a thread's slow paths
     * (thread_limit, thread_bound). Its own line: the fields above are read on
     * every hot call. */
    _Alignas(64) size_t inner_bytes;
    /* Bytes the arenas hold from the page source, counted atomically by their
     * page hooks; read with inner_bytes at the slow paths (heap_draining). */
    size_t mapped_bytes;
};

/* The bytes in every arena's depot (an estimate while threads run). */
static size_t depot_bytes(const cache_heap *h) {
    size_t bytes = 0;
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) bytes += __atomic_load_n(&h->arenas[i].depot.bytes, __ATOMIC_RELAXED);
    return bytes;
}

/* What the layer holds for the program: inner_bytes less the depots' lists
 * (the bins count in it, and are taken off where a bound is worked out). */
static size_t program_held(const cache_heap *h) {
    size_t held = __atomic_load_n(&h->inner_bytes, __ATOMIC_RELAXED), depot = depot_bytes(h);
    return held > depot ? held - depot : 0;
}

static void heap_lock(cache_heap *h) { h->hooks.lock(h->hooks.ctx); }
static void heap_unlock(cache_heap *h) { h->hooks.unlock(h->hooks.ctx); }
static void arena_lock(cache_arena *a) { hl_spin_lock(&a->lock); }
static void arena_unlock(cache_arena *a) { hl_spin_unlock(&a->lock); }
static void no_lock(void *ctx) { (void)ctx; }

/* The arena a block of this heap belongs to (the first one for a pointer the
 * map does not know: its design is the one to refuse it). */
static cache_arena *arena_of(cache_heap *h, const void *p) {
    unsigned tag = page_map_get(p);
    cache_arena *a = &h->arenas[tag - 1 < HL_CACHE_ARENAS ? tag - 1 : 0];
    return __atomic_load_n(&a->inner_heap, __ATOMIC_ACQUIRE) ? a : &h->arenas[0];
}

/* The arena's page hooks: the caller's, under the caller's lock (the page
 * source is shared by every arena), marking the page map with the arena's tag
 * (what a lost mark costs: pages/page_map.h, hl_page_map_resized). */
static void *arena_alloc_page(void *ctx, size_t pages) {
    cache_arena *a = ctx;
    cache_heap *h = a->heap;
    heap_lock(h);
    void *p = h->hooks.alloc_page(h->hooks.ctx, pages);
    heap_unlock(h);
    if (p && (hl_byte_map_reserve(&block_map, p, pages * h->hooks.page_size, BLOCK_GRANULE_SHIFT) ||
              hl_page_map_mark_run(&arena_pages, p, pages * h->hooks.page_size, a->tag))) {
        heap_lock(h);
        h->hooks.free_page(h->hooks.ctx, p, pages);
        heap_unlock(h);
        return NULL;
    }
    if (p) __atomic_fetch_add(&h->mapped_bytes, pages * h->hooks.page_size, __ATOMIC_RELAXED);
    return p;
}
static void arena_free_page(void *ctx, void *start, size_t pages) {
    cache_arena *a = ctx;
    cache_heap *h = a->heap;
    page_map_set(start, pages * h->hooks.page_size, 0);
    hl_byte_map_clear(&block_map, start, pages * h->hooks.page_size, BLOCK_GRANULE_SHIFT); /* every block there is free */
    __atomic_fetch_sub(&h->mapped_bytes, pages * h->hooks.page_size, __ATOMIC_RELAXED);
    heap_lock(h);
    h->hooks.free_page(h->hooks.ctx, start, pages);
    heap_unlock(h);
}
static void *arena_resize_page(void *ctx, void *start, size_t old_pages, size_t new_pages) {
    cache_arena *a = ctx;
    cache_heap *h = a->heap;
    size_t ps = h->hooks.page_size;
    heap_lock(h);
    void *p = h->hooks.resize_page(h->hooks.ctx, start, old_pages, new_pages);
    heap_unlock(h);
    if (p) {
        hl_page_map_resized(&arena_pages, start, old_pages * ps, p, new_pages * ps, a->tag);
        hl_byte_map_reserve(&block_map, p, new_pages * ps, BLOCK_GRANULE_SHIFT); /* one large block: never a bin's */
        __atomic_fetch_add(&h->mapped_bytes, (new_pages - old_pages) * ps, __ATOMIC_RELAXED); /* wraps down when it shrinks */
    }
    return p;
}

static void arena_prefault_page(void *ctx, void *start, size_t pages) {
    cache_arena *a = ctx;
    cache_heap *h = a->heap;
    heap_lock(h);
    h->hooks.prefault_page(h->hooks.ctx, start, pages);
    heap_unlock(h);
}

/* Makes arena a's design (under its lock); 0 if it cannot be made. */
static int arena_open_locked(cache_arena *a) {
    if (!a->inner_heap) __atomic_store_n(&a->inner_heap, a->heap->inner->create(&a->hooks), __ATOMIC_RELEASE);
    return a->inner_heap != NULL;
}

/* A live block's usable size from its own header, and whether the design would
 * merge it with a free predecessor if it were freed now (the inner's peek; a
 * design without one is asked for the size only, under its no-op lock). */
static size_t block_peek(const cache_heap *h, const cache_arena *a, const void *p, int *merges) {
    if (h->peek) return h->peek(a->inner_heap, p, merges);
    *merges = 0;
    return h->inner->usable_size(a->inner_heap, p);
}

/* A live block's header word, read without its arena's lock: its size bits
 * cannot change while it lives; its predecessor's bit can, and a stale bit
 * only sends the block to a bin or to the design, both correct (the same
 * deliberate race as peek's: scripts/tsan.supp names this function). */
static inline size_t live_header_word(const void *p) { return ((const size_t *)p)[-1]; }

/* Whether a live block's predecessor is in use, from the design's header word
 * (plain_mask != 0: the design describes one). A block whose predecessor is
 * free goes back to the design rather than to a bin, so that the two merge:
 * held in a bin, it would keep the free piece before it apart, and a few such
 * blocks in the bins of a program that has freed nearly everything kept most
 * of its pages (heap.test.ts: 4.7 MB where the design alone keeps 0.2). */
static inline int block_plain(const cache_heap *h, const void *p) {
    return (live_header_word(p) & h->plain_mask) == h->plain_value;
}

/* A block's weight in inner_bytes: its class's size if it can be cached (what
 * a bin counts it as, so that bins of a program that holds nothing weigh all
 * of inner_bytes), else its usable size. Fixed while the block lives. */
static size_t weight_of(size_t usable) {
    unsigned c = class_to_cache(usable);
    return c != NO_CLASS ? class_size(c) : usable;
}

/* An arena's design, under the arena's lock, counting inner_bytes. A block's
 * size comes from its header (peek: no call through the no-op lock). */
static size_t inner_usable(const cache_heap *h, const cache_arena *a, const void *p) {
    int merges;
    return block_peek(h, a, p, &merges);
}
static size_t inner_weight(const cache_heap *h, const cache_arena *a, const void *p) {
    return weight_of(inner_usable(h, a, p));
}
static void *inner_counted(cache_heap *h, cache_arena *a, void *p) {
    if (p) __atomic_fetch_add(&h->inner_bytes, inner_weight(h, a, p), __ATOMIC_RELAXED);
    return p;
}
static void *inner_malloc(cache_heap *h, cache_arena *a, size_t n) {
    return inner_counted(h, a, h->inner->malloc(a->inner_heap, n));
}
static void inner_free(cache_heap *h, cache_arena *a, void *p) {
    block_set(p, 0);
    __atomic_fetch_sub(&h->inner_bytes, inner_weight(h, a, p), __ATOMIC_RELAXED);
    h->inner->free(a->inner_heap, p);
}

/* Gives blocks back to the arenas they came from, holding one arena's lock
 * across a run of blocks from it (a thread's blocks are mostly its own arena's),
 * and taking their weight off inner_bytes once, at the end: an atomic on that
 * shared line per block made the two threads of a producer-consumer pair
 * (xmalloc-test's pattern) fight over it, 27% of their samples. */
typedef struct giver { cache_heap *h; cache_arena *held; size_t weight; } giver;
static void give_back(giver *g, void *p) {
    cache_arena *a = arena_of(g->h, p);
    if (a != g->held) {
        if (g->held) arena_unlock(g->held);
        arena_lock(a);
        g->held = a;
    }
    /* a bin's or a depot list's block has its class in the map (the held
     * bit aside): the weight without the design's header; a pending block's
     * byte (BLOCK_PENDING) has none, and the design is asked */
    uint8_t *b = held_block_byte(p);
    unsigned own = (*b & (uint8_t)~BLOCK_HELD) - 1u;
    g->weight += own < HL_CACHE_CLASSES ? class_size(own) : inner_weight(g->h, a, p);
    *b = 0;
    g->h->inner->free(a->inner_heap, p);
}
static void give_done(giver *g) {
    if (g->held) arena_unlock(g->held);
    g->held = NULL;
    if (g->weight) __atomic_fetch_sub(&g->h->inner_bytes, g->weight, __ATOMIC_RELAXED);
    g->weight = 0;
}

/* A heap that holds far more pages than blocks is draining: the program has
 * freed most of what it had. Its bins then hold nothing, so that the design can
 * give its pools, segments and majors back: a few cached blocks, one in each,
 * would keep them all (the churn harness after freeing all, at 200 000 pairs:
 * tlsf+cache and liballoc+cache kept up to 74 MB resident, with 1 KiB in the
 * bins). A small heap (under HL_CACHE_DRAIN_FLOOR) never drains. */
#ifndef HL_CACHE_DRAIN_RATIO
#define HL_CACHE_DRAIN_RATIO 8
#endif
#ifndef HL_CACHE_DRAIN_FLOOR
#define HL_CACHE_DRAIN_FLOOR ((size_t)8 << 20)
#endif
static int heap_draining(size_t held, size_t mapped) {
    return mapped > HL_CACHE_DRAIN_FLOOR && (mapped - HL_CACHE_DRAIN_FLOOR) / HL_CACHE_DRAIN_RATIO > held;
}

/* A heap with more than an eighth of its pages free (beyond 1 MiB): there, a
 * block whose predecessor is free is one that keeps the heap fragmented, and
 * the hot free asks the design's header before it takes a block; a dense
 * heap's free does not (the hot malloc asks, when it takes the block out of its
 * bin). Without the rule, a program that frees nearly all it has kept 4.7 MB
 * where the design alone keeps 0.2 (heap.test.ts), and `heaplab bench` space's
 * mapped bytes grew from 1.07 to 1.11 times glibc's; a dense heap that fits in
 * 1 MiB and more (fast: 2 000 blocks of 8-512 B) keeps the faster free. */
static int heap_sparse(size_t held, size_t mapped) { return mapped - mapped / 8 > held + ((size_t)1 << 20); }

/* What one thread may keep in its bins: HL_CACHE_THREAD_BYTES, but never more
 * than HL_CACHE_LIVE_TIMES times what the heap holds for the program
 * (inner_bytes less this thread's bins). A program that frees everything thus
 * empties its bins as it goes (down to eight times what it keeps; a draining
 * heap, above, holds none), and the design can give its pages back: bins
 * that kept a fixed 4 MiB pinned a block in nearly every pool, segment or
 * major (the churn harness's resident set after freeing all: 93-97 MB, against
 * 2 MB for the designs alone). Refills stay within the bound too. A bound of a
 * sixteenth of the heap (at least 256 KiB), or of the program's bytes once,
 * made the bins of a small heap thrash: `heaplab bench` fast 3.5x slower. */
static size_t bound_with(const cache_heap *h, size_t bins_bytes) { /* the bound if the bins held bins_bytes */
    size_t held = program_held(h);
    if (heap_draining(held, __atomic_load_n(&h->mapped_bytes, __ATOMIC_RELAXED))) return 0;
    size_t live = held > bins_bytes ? held - bins_bytes : 0;
    if (live >= HL_CACHE_THREAD_BYTES / HL_CACHE_LIVE_TIMES) return HL_CACHE_THREAD_BYTES;
    return live * HL_CACHE_LIVE_TIMES;
}
static size_t thread_bound(const cache_heap *h, const cache_thread *t) { return bound_with(h, thread_bytes(t)); }

/* The most bytes the bins may hold and still be within the bound, for the hot
 * free's one compare: B <= bound_with(h, B) holds exactly for B <= 8I/9 (I =
 * inner_bytes; the bins count in I), or B <= the cap once I >= 9/8 of it. Set
 * again after each of the thread's own calls that change I (its slow paths),
 * so that the hot free reads neither inner_bytes, a line other threads write,
 * nor the arithmetic; another thread's change is seen at this one's next slow
 * path. */
static void thread_limit(cache_heap *h, cache_thread *t) {
    size_t held = program_held(h);
    size_t cap = HL_CACHE_THREAD_BYTES, limit;
    if (heap_draining(held, __atomic_load_n(&h->mapped_bytes, __ATOMIC_RELAXED))) limit = 0;
    else limit = held >= cap + cap / HL_CACHE_LIVE_TIMES ? cap : held / (HL_CACHE_LIVE_TIMES + 1) * HL_CACHE_LIVE_TIMES;
    t->budget += (ptrdiff_t)(limit - t->limit); /* the bytes held stay what they were */
    t->limit = limit;
    /* sparse: free pages in the designs, where the depot's blocks are as live as the program's */
    int sparse = heap_sparse(__atomic_load_n(&h->inner_bytes, __ATOMIC_RELAXED), __atomic_load_n(&h->mapped_bytes, __ATOMIC_RELAXED));
    if (sparse && !t->sparse) bins_sweep(h, t);
    t->sparse = sparse;
    if ((sparse || !limit) && depot_bytes(h)) depot_drain(h);
}

static uint64_t next_heap_id = 1;

/* The calling thread's state for the last heap it used: one compare on the hot
 * path, in one thread-local record (one TLS address). */
typedef struct cache_tls {
    uint64_t heap_id;       /* the heap `thread` belongs to; 0: none */
    cache_thread *thread;
    int busy;               /* setting up a thread's state: no cache meanwhile */
} cache_tls;
/* Initial-exec: the record sits at a fixed offset from the thread pointer, one
 * %fs-relative load. The default for code built -fPIC (the addon, the preload
 * libraries) asks a TLS descriptor for its address: an indirect call, and so a
 * stack frame, on every cached malloc and free. The record is 24 bytes of the
 * static TLS block's room that glibc keeps for libraries loaded later
 * (dlopen, as node loads the addon). */
#if defined(__GNUC__) && defined(__ELF__)
#define HL_CACHE_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define HL_CACHE_TLS_MODEL
#endif
static _Thread_local cache_tls tls HL_CACHE_TLS_MODEL;

/* Bin c takes p, a block of class `own` (c or more: what its usable size can
 * hold), which the block map keeps: when it is freed again, it goes to the bin
 * of that class, at that class's weight, as inner_bytes counts it. */
static void bin_push(cache_thread *t, unsigned c, void *p, unsigned own) {
    ((void **)p)[0] = t->head[c];
    block_set(p, BLOCK_HELD | (own + 1));
    t->head[c] = p;
    t->room[c]--;
    t->budget -= (ptrdiff_t)class_size(c);
}

static void *bin_pop(cache_thread *t, unsigned c) {
    void *p = t->head[c];
    t->head[c] = ((void **)p)[0];
    *held_block_byte(p) &= (uint8_t)~BLOCK_HELD;
    t->room[c]++;
    t->budget += (ptrdiff_t)class_size(c);
    return p;
}

/* Gives `n` blocks of bin c back to their arenas. */
static void bin_flush(giver *g, cache_thread *t, unsigned c, uint32_t n) {
    while (n-- && t->head[c]) give_back(g, bin_pop(t, c));
}

/* The pending blocks go to their designs. */
/* Every block of a list (linked through their first words) back to its arena. */
static void give_list(giver *g, void *head) {
    for (void *p = head, *next; p; p = next) {
        next = ((void **)p)[0];
        give_back(g, p);
    }
}

static void pending_flush(giver *g, cache_thread *t) {
    give_list(g, t->pending);
    t->pending = NULL;
    t->pending_count = 0;
    t->budget += (ptrdiff_t)t->pending_bytes;
    t->pending_bytes = 0;
}

/* Blocks on their way back to the design go in batches of this many. */
#ifndef HL_CACHE_PENDING
#define HL_CACHE_PENDING 32
#endif

/* A block goes on its way back to the design (its predecessor is free: the
 * two should merge), HL_CACHE_PENDING at a time under one lock (one lock per
 * such free cost two threads a quarter of their throughput), or sooner once
 * they weigh a quarter of the thread's limit: in a small heap a few waiting
 * blocks would keep its pages (liballoc+cache after freeing all but 6 KiB:
 * 16 KiB pending held 1.3 MB mapped); meanwhile they weigh in the thread's
 * bytes, so the bound sees them. */
static void pending_add(cache_heap *h, cache_thread *t, void *p, size_t usable) {
    ((void **)p)[0] = t->pending;
    block_set(p, BLOCK_PENDING);
    t->pending = p;
    t->pending_bytes += weight_of(usable);
    t->budget -= (ptrdiff_t)weight_of(usable);
    if (++t->pending_count >= HL_CACHE_PENDING || t->pending_bytes > t->limit / 4) {
        giver g = {h, NULL, 0};
        pending_flush(&g, t);
        give_done(&g);
        t->flushes++;
    }
}

/* Every block in the thread's bins whose predecessor is free goes on its way
 * back (the heap has just become sparse: heap_sparse). */
static void bins_sweep(cache_heap *h, cache_thread *t) {
    if (!h->plain_mask && !h->peek) return;
    for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) {
        void *keep = NULL, *p = t->head[c];
        while (p) {
            void *next = ((void **)p)[0];
            int merges = 0;
            size_t usable = block_peek(h, arena_of(h, p), p, &merges);
            if (merges) {
                t->room[c]++;
                t->budget += (ptrdiff_t)class_size(c);
                pending_add(h, t, p, usable);
            } else {
                ((void **)p)[0] = keep;
                keep = p;
            }
            p = next;
        }
        t->head[c] = keep; /* the kept ones, in the reverse order */
    }
}

/* The top half of bin c (full) goes to the depot of its first block's arena as
 * one list, if that is another thread's arena (the thread's own blocks go back
 * to its design as before: parked and taken back by the same thread, they cost
 * `heaplab bench` scalable 2-10%); 0 if the depot takes none (that, a sparse or
 * draining heap, no room): the caller gives it to the design. The list is cut
 * before the depot's lock (its last block's link set first: a thread may take
 * it the moment it is in), and mended if refused. */
static int depot_put(cache_heap *h, cache_thread *t, unsigned c) {
    cache_arena *owner = arena_of(h, t->head[c]);
    cache_depot *d = &owner->depot;
    uint32_t k = bin_count(t, c) / 2;
    size_t bytes = (size_t)k * class_size(c);
    if (owner == t->arena || t->sparse || !t->limit || !k || __atomic_load_n(&d->lists[c], __ATOMIC_RELAXED) >= HL_CACHE_DEPOT_LISTS ||
        __atomic_load_n(&d->bytes, __ATOMIC_RELAXED) + bytes > HL_CACHE_DEPOT_BYTES)
        return 0;
    void *head = t->head[c], *last = head;
    for (uint32_t i = 1; i < k; i++) last = ((void **)last)[0];
    void *rest = ((void **)last)[0];
    ((void **)last)[0] = NULL;
    hl_spin_lock(&d->lock);
    int in = d->lists[c] < HL_CACHE_DEPOT_LISTS && d->bytes + bytes <= HL_CACHE_DEPOT_BYTES;
    if (in) {
        d->list[c][d->lists[c]] = (depot_list){head, k};
        __atomic_store_n(&d->lists[c], (uint8_t)(d->lists[c] + 1), __ATOMIC_RELAXED);
        __atomic_store_n(&d->bytes, d->bytes + bytes, __ATOMIC_RELAXED);
    }
    hl_spin_unlock(&d->lock);
    if (!in) {
        ((void **)last)[0] = rest;
        return 0;
    }
    t->head[c] = rest;
    t->room[c] += (int32_t)k;
    t->budget += (ptrdiff_t)bytes;
    return 1;
}

/* A list of class c from the depot of the thread's arena into bin c (empty),
 * if one is there and the thread's budget has room for it; 0 if not. */
static int depot_take(cache_thread *t, unsigned c) {
    cache_depot *d = &t->arena->depot;
    if (!__atomic_load_n(&d->lists[c], __ATOMIC_RELAXED)) return 0;
    depot_list l = {NULL, 0};
    hl_spin_lock(&d->lock);
    unsigned n = d->lists[c];
    if (n && (ptrdiff_t)((size_t)d->list[c][n - 1].count * class_size(c)) <= t->budget) {
        l = d->list[c][n - 1];
        __atomic_store_n(&d->lists[c], (uint8_t)(n - 1), __ATOMIC_RELAXED);
        __atomic_store_n(&d->bytes, d->bytes - (size_t)l.count * class_size(c), __ATOMIC_RELAXED);
    }
    hl_spin_unlock(&d->lock);
    if (!l.head) return 0;
    t->head[c] = l.head;
    t->room[c] -= (int32_t)l.count;
    t->budget -= (ptrdiff_t)((size_t)l.count * class_size(c));
    return 1;
}

/* Every list in the depots goes back to the designs (a heap that turned sparse
 * or is draining, malloc_trim), a class's lists at a time. */
static void depot_drain(cache_heap *h) {
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) {
        cache_depot *d = &h->arenas[i].depot;
        for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) {
            if (!__atomic_load_n(&d->lists[c], __ATOMIC_RELAXED)) continue;
            depot_list l[HL_CACHE_DEPOT_LISTS];
            hl_spin_lock(&d->lock);
            unsigned n = d->lists[c];
            size_t blocks = 0;
            for (unsigned k = 0; k < n; k++) blocks += (l[k] = d->list[c][k]).count;
            __atomic_store_n(&d->lists[c], (uint8_t)0, __ATOMIC_RELAXED);
            __atomic_store_n(&d->bytes, d->bytes - blocks * class_size(c), __ATOMIC_RELAXED);
            hl_spin_unlock(&d->lock);
            giver g = {h, NULL, 0};
            for (unsigned k = 0; k < n; k++) give_list(&g, l[k].head);
            give_done(&g);
        }
    }
}

static void thread_flush_all(cache_heap *h, cache_thread *t) {
    giver g = {h, NULL, 0};
    pending_flush(&g, t);
    for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) bin_flush(&g, t, c, UINT32_MAX);
    give_done(&g);
    thread_limit(h, t);
}

/* The thread key's destructor: the exiting thread's bins go back to the heap. */
static void thread_exit(void *arg) {
    cache_thread *t = arg;
    cache_heap *h = t->heap;
    thread_flush_all(h, t);
    heap_lock(h);
    if (t->prev) t->prev->next = t->next;
    else h->threads = t->next;
    if (t->next) t->next->prev = t->prev;
    h->exited_hits += t->hits;
    h->exited_misses += t->misses;
    h->exited_flushes += t->flushes;
    h->exited_double_frees += t->double_frees;
    h->exited_transfers += t->transfers;
    t->arena->threads--;
    heap_unlock(h);
    cache_arena *a = arena_of(h, t);
    arena_lock(a);
    h->inner->free(a->inner_heap, t);
    arena_unlock(a);
    if (tls.thread == t) {
        tls.thread = NULL;
        tls.heap_id = 0;
    }
}

/* The arena a new thread is given: the one with the fewest live threads (the
 * first, for the first thread: a program with one thread has one design). */
static cache_arena *arena_for_new_thread(cache_heap *h) {
    heap_lock(h);
    cache_arena *best = &h->arenas[0];
    for (unsigned i = 1; i < HL_CACHE_ARENAS; i++)
        if (h->arenas[i].threads < best->threads) best = &h->arenas[i];
    best->threads++;
    heap_unlock(h);
    return best;
}

/* Makes the calling thread's state, in its arena (NULL if it cannot be made). */
static cache_thread *thread_state_make(cache_heap *h) {
    cache_arena *a = arena_for_new_thread(h);
    arena_lock(a);
    cache_thread *t = arena_open_locked(a) ? h->inner->malloc(a->inner_heap, sizeof *t) : NULL; /* not in inner_bytes: not the program's */
    arena_unlock(a);
    if (!t) {
        heap_lock(h);
        a->threads--;
        heap_unlock(h);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) t->room[c] = (int32_t)class_capacity(c);
    t->heap = h;
    t->arena = a;
    thread_limit(h, t);
    heap_lock(h);
    t->next = h->threads;
    if (h->threads) h->threads->prev = t;
    h->threads = t;
    heap_unlock(h);
    if (pthread_setspecific(h->thread_key, t) != 0) {
        heap_lock(h);
        if (t->next) t->next->prev = t->prev;
        if (t->prev) t->prev->next = t->next;
        else h->threads = t->next;
        a->threads--;
        heap_unlock(h);
        arena_lock(a);
        h->inner->free(a->inner_heap, t);
        arena_unlock(a);
        return NULL;
    }
    return t;
}

/* The calling thread's state, made on first use; NULL while it is being made
 * (a free or malloc from inside pthread_setspecific goes to the heap directly). */
static cache_thread *thread_state(cache_heap *h) {
    if (__builtin_expect(tls.heap_id == h->id, 1)) return tls.thread;
    cache_thread *t = pthread_getspecific(h->thread_key);
    if (!t) {
        if (tls.busy) return NULL;
        tls.busy = 1;
        t = thread_state_make(h);
        tls.busy = 0;
        if (!t) return NULL;
    }
    tls.heap_id = h->id;
    tls.thread = t;
    return t;
}

/* The arena for a call that is not a refill: the thread's, or the first. */
static cache_arena *arena_here(cache_heap *h) {
    cache_thread *t = thread_state(h);
    return t ? t->arena : &h->arenas[0];
}

/* After a call that changed inner_bytes outside the bins' paths. */
static void limit_here(cache_heap *h) {
    if (tls.heap_id == h->id) thread_limit(h, tls.thread);
}

/* ---- the operations ---------------------------------------------------------------- */

static void *cache_create(const hl_allocator *inner, const hl_hooks *hooks) {
    pthread_once(&class_tables_once, class_tables_init);
    pthread_once(&block_map_once, block_map_init);
    if (!inner || !hooks || !hooks->alloc_page || !hooks->free_page || !hooks->lock || !hooks->unlock) return NULL;
    size_t ps = hooks->page_size;
    size_t pages = (sizeof(cache_heap) + ps - 1) / ps;
    cache_heap *h = hooks->alloc_page(hooks->ctx, pages);
    if (!h) return NULL;
    memset(h, 0, sizeof *h);
    h->hooks = *hooks;
    h->pages = pages;
    h->inner = inner;
    h->peek = inner->peek;
    h->prev_free = inner->prev_free;
    if (inner->peek && inner->header.size_mask) {
        h->plain_mask = inner->header.plain_mask;
        h->plain_value = inner->header.plain_value;
    }
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) {
        cache_arena *a = &h->arenas[i];
        a->heap = h;
        a->tag = (uint8_t)(i + 1);
        a->hooks = *hooks;
        a->hooks.ctx = a;
        a->hooks.alloc_page = arena_alloc_page;
        a->hooks.free_page = arena_free_page;
        a->hooks.resize_page = hooks->resize_page ? arena_resize_page : NULL;
        a->hooks.prefault_page = hooks->prefault_page ? arena_prefault_page : NULL;
        a->hooks.lock = no_lock; /* this layer holds the arena's lock around every call */
        a->hooks.unlock = no_lock;
    }
    /* the first arena now: a thread without state (or whose arena cannot be made) uses it */
    if (!arena_open_locked(&h->arenas[0]) || pthread_key_create(&h->thread_key, thread_exit) != 0) {
        if (h->arenas[0].inner_heap) inner->destroy(h->arenas[0].inner_heap);
        hooks->free_page(hooks->ctx, h, pages);
        return NULL;
    }
    h->id = __atomic_fetch_add(&next_heap_id, 1, __ATOMIC_RELAXED);
    h->magic = CACHE_MAGIC;
    return h;
}

static void cache_destroy(void *heap) {
    cache_heap *h = heap;
    hl_hooks hooks = h->hooks;
    size_t pages = h->pages;
    pthread_key_delete(h->thread_key); /* no destructor runs after this */
    if (tls.heap_id == h->id) {
        tls.heap_id = 0;
        tls.thread = NULL;
    }
    h->magic = 0;
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) { /* the thread states were their blocks */
        cache_arena *a = &h->arenas[i];
        if (!a->inner_heap) continue;
        arena_lock(a);
        h->inner->destroy(a->inner_heap);
        a->inner_heap = NULL;
        arena_unlock(a);
    }
    hooks.free_page(hooks.ctx, h, pages);
}

static void *locked_malloc(cache_heap *h, cache_arena *a, size_t n) {
    arena_lock(a);
    void *p = inner_malloc(h, a, n);
    arena_unlock(a);
    return handed_out_plain(p);
}

/* A malloc the hot path could not serve: a large request, a thread without
 * state for this heap yet, or an empty bin. */
static __attribute__((noinline)) void *cache_malloc_slow(cache_heap *h, size_t n) {
    cache_thread *t = thread_state(h);
    if (!t) return locked_malloc(h, &h->arenas[0], n);
    if (n > HL_CACHE_MAX_BYTES) {
        void *p = locked_malloc(h, t->arena, n);
        thread_limit(h, t);
        return p;
    }
    unsigned c = class_of(n);
    if (t->head[c] && !block_plain(h, t->head[c])) { /* its predecessor is free now: back to the design */
        while (t->head[c] && !block_plain(h, t->head[c])) {
            void *p = bin_pop(t, c);
            int merges;
            pending_add(h, t, p, block_peek(h, arena_of(h, p), p, &merges));
        }
        thread_limit(h, t);
    }
    if (t->head[c]) {
        t->hits++;
        return bin_pop(t, c);
    }
    if (depot_take(t, c)) { /* a list a thread gave up */
        t->misses++;
        t->transfers++;
        return bin_pop(t, c);
    }
    /* the bin is empty: refill half of it in one lock, but not past the thread's bound (a
     * refill the next free must flush again would make both take the lock) */
    size_t size = class_size(c), bytes = thread_bytes(t);
    uint32_t want = class_capacity(c) / 2;
    size_t bound = thread_bound(h, t);
    size_t room = bound > bytes ? (bound - bytes) / size : 0;
    if (room < want) want = room ? (uint32_t)room : 1;
    cache_arena *a = t->arena;
    size_t weight = 0; /* added to inner_bytes once (give_done says why) */
    arena_lock(a);
    for (uint32_t i = 0; i < want; i++) {
        void *p = h->inner->malloc(a->inner_heap, size);
        if (!p) break;
        size_t usable = inner_usable(h, a, p);
        weight += weight_of(usable);
        bin_push(t, c, p, class_to_cache(usable));
    }
    arena_unlock(a);
    if (weight) __atomic_fetch_add(&h->inner_bytes, weight, __ATOMIC_RELAXED);
    thread_limit(h, t);
    t->misses++;
    return t->head[c] ? bin_pop(t, c) : NULL;
}

/* The hot path: this thread's state for this heap, a request below
 * CLASS_TABLE_BYTES, a bin with a block. It saves no registers and calls
 * nothing (the slow path is a tail call). */
static void *cache_malloc(void *heap, size_t n) {
    cache_heap *h = heap;
    if (HL_CACHE_LIKELY(n - 1 < CLASS_TABLE_BYTES && tls.heap_id == h->id)) {
        cache_thread *t = tls.thread;
        unsigned c = class_of_table[(n - 1) >> 4];
        void *p = t->head[c];
        if (HL_CACHE_LIKELY(p != NULL && block_plain(h, p))) {
            t->hits++;
            return bin_pop(t, c);
        }
    }
    return cache_malloc_slow(h, n);
}

/* A free the hot path left: a block the block map does not know (memalign,
 * large, resized by the design, or no block of this layer's), no state yet, a
 * block a bin holds (a second free), one with a free predecessor in a sparse
 * heap, a full bin, or a thread at its bound. A block the design would merge goes back to it: held in a bin, it
 * would keep the free piece before it apart for as long as it circulates
 * through the bins (a memalign leaves such a piece, the gap before the aligned
 * block; on `space`, 2% aligned, the designs' mapped bytes crept from 1.2 to
 * 1.55 times the live bytes over the run; given back, they stay at 1.17). */
static __attribute__((noinline)) void cache_free_slow(cache_heap *h, void *p) {
    if (!p) return;
    cache_thread *t = thread_state(h); /* for a large block too: its free can bring the bound down */
    if (block_state(p) & BLOCK_HELD) { /* in a bin, or on its way back: a second free */
        if (t) t->double_frees++;
        else __atomic_fetch_add(&h->exited_double_frees, 1, __ATOMIC_RELAXED);
        return;
    }
    int merges;
    cache_arena *owner = arena_of(h, p);
    size_t usable = block_peek(h, owner, p, &merges);
    unsigned c = class_to_cache(usable);
    giver g = {h, NULL, 0};
    if (!t || c == NO_CLASS) {
        arena_lock(owner);
        inner_free(h, owner, p);
        arena_unlock(owner);
        if (!t) return;
    } else if (merges) {
        pending_add(h, t, p, usable);
    } else {
        bin_push(t, c, p, c);
        if (t->room[c] < 0) { /* this bin is full: half goes to the depot, or back to the design */
            if (!depot_put(h, t, c)) {
                bin_flush(&g, t, c, bin_count(t, c) / 2);
                give_done(&g);
            }
            t->flushes++;
        }
    }
    if (thread_bytes(t) > thread_bound(h, t)) {
        /* the thread holds too much: the largest classes go back first, down to
         * half the bound, so the next flush is half a bound of frees away */
        size_t keep = thread_bound(h, t) / 2;
        if (t->sparse) bins_sweep(h, t); /* what stays should not keep the free pieces apart */
        pending_flush(&g, t);
        for (unsigned k = HL_CACHE_CLASSES; k-- > 0 && thread_bytes(t) > keep;) bin_flush(&g, t, k, bin_count(t, k));
        give_done(&g);
        t->flushes++;
    }
    thread_limit(h, t);
}

/* The hot free's test and push of a block of class c (b: its byte in the block
 * map): the bin has room, and the thread's bytes stay within its limit
 * (looked at on every free, so that the last free of a program empties its
 * bins). */
static inline __attribute__((always_inline)) int bin_take(cache_thread *t, void *p, uint8_t *b, unsigned c) {
    ptrdiff_t budget = t->budget - (ptrdiff_t)class_size(c);
    if (!HL_CACHE_LIKELY(t->room[c] > 0 && budget >= 0)) return 0;
    ((void **)p)[0] = t->head[c];
    t->head[c] = p;
    t->room[c]--;
    t->budget = budget;
    *b = (uint8_t)(BLOCK_HELD | (c + 1));
    return 1;
}

/* A hot free of a design without a header word (liballoc): its prev_free says
 * whether the block's predecessor is free (the block map says the block is a
 * live one of some arena's design: no check of it; on `larson`-like thread
 * handoffs, in a sparse heap, peek's check took a quarter of the time), else
 * its peek, through the thread's own arena without looking up the block's (a
 * design that checks its pointers says no for another arena's block, whose
 * bin is then chosen by the map alone). Out of line, so that the hot path
 * below makes no call but tail calls. */
static __attribute__((noinline)) void cache_free_peeked(cache_heap *h, cache_thread *t, void *p, uint8_t *b, unsigned c) {
    int merges = 0;
    if (h->prev_free) merges = h->prev_free(p);
    else h->peek(t->arena->inner_heap, p, &merges);
    if (merges || !bin_take(t, p, b, c)) cache_free_slow(h, p);
}

/* The hot path (cache_free_known: 1 if it took the free, which it does for
 * every block whose byte says the cache handed it out; 0 sends the rest to
 * cache_free_slow): the block map gives the class of a live block the cache
 * handed out, and bin_take puts it in this thread's bin. It does not read the
 * block's header: that load is the one a random free misses in the cache
 * (perf on `heaplab bench` fast: half of the free's samples), and even as a
 * branch only, the predecessor's bit read there cost what the map saved. So
 * the hot malloc asks whether the block's predecessor is free, on the line it
 * is about to hand out; only in a sparse heap (heap_sparse) does the free ask
 * too, so that no such block waits in a bin. */
static inline __attribute__((always_inline)) int cache_free_known(cache_heap *h, void *p) {
    uint8_t *b = block_byte(p);
    if (HL_CACHE_LIKELY(b != NULL && tls.heap_id == h->id)) {
        unsigned c = *b - 1u;
        cache_thread *t = tls.thread;
        if (HL_CACHE_LIKELY(c < HL_CACHE_CLASSES)) {
            if (!HL_CACHE_LIKELY(t->sparse == 0)) {
                if (!h->plain_mask && h->peek) {
                    cache_free_peeked(h, t, p, b, c);
                    return 1;
                }
                if (!block_plain(h, p)) {
                    cache_free_slow(h, p);
                    return 1;
                }
            }
            if (!HL_CACHE_LIKELY(bin_take(t, p, b, c))) cache_free_slow(h, p);
            return 1;
        }
    }
    return 0;
}

static void cache_free(void *heap, void *p) {
    if (!cache_free_known(heap, p)) cache_free_slow(heap, p);
}

static void *cache_calloc(void *heap, size_t count, size_t size) {
    cache_heap *h = heap;
    if (size && count > SIZE_MAX / size) return NULL;
    size_t n = count * size;
    if (n > HL_CACHE_MAX_BYTES) {
        cache_arena *a = arena_here(h);
        arena_lock(a);
        void *p = inner_counted(h, a, h->inner->calloc(a->inner_heap, count, size));
        arena_unlock(a);
        limit_here(h);
        return handed_out_plain(p);
    }
    void *p = cache_malloc(heap, n);
    if (p) memset(p, 0, n); /* a cached block holds what its last owner wrote */
    return p;
}

static void *cache_memalign(void *heap, size_t align, size_t n) {
    cache_heap *h = heap;
    cache_arena *a = arena_here(h);
    arena_lock(a);
    void *p = inner_counted(h, a, h->inner->memalign(a->inner_heap, align, n));
    arena_unlock(a);
    limit_here(h);
    return handed_out_plain(p);
}

/* A block the cache can hold, resized to a size it can hold, moves through
 * the cache (its class's bin, a copy, the old block to a bin) unless it already
 * fits (at most its usable size, at least half of it). The design's realloc
 * would resize it in place and leave the piece it cut or took beside a block
 * that then circulates through the bins and never reaches the design again, so
 * that piece never merges: on the `space` workload (5% realloc) the designs'
 * free bytes grew from 15 to 42 MB over the run, their mapped bytes from 1.2 to
 * 1.7 times the live bytes. Larger blocks go to their arena's design, which can
 * remap. */
static void *cache_realloc(void *heap, void *p, size_t n) {
    cache_heap *h = heap;
    if (!p) return cache_malloc(heap, n);
    int merges;
    cache_arena *a = arena_of(h, p);
    size_t have = block_peek(h, a, p, &merges);
    if (have && have <= HL_CACHE_MAX_BYTES && n <= HL_CACHE_MAX_BYTES) { /* 0: not a live block (liballoc checks): the design says so */
        if (n <= have && n >= have / 2) return p;
        void *q = cache_malloc(heap, n);
        if (!q) return NULL; /* the old block stays */
        memcpy(q, p, n < have ? n : have);
        cache_free(heap, p);
        return q;
    }
    arena_lock(a);
    block_set(p, 0); /* the design may move, shrink or grow it: its free asks the design from now on */
    void *q = h->inner->realloc(a->inner_heap, p, n);   /* never frees: realloc(p, 0) shrinks */
    if (q) {
        __atomic_fetch_sub(&h->inner_bytes, weight_of(have), __ATOMIC_RELAXED);
        __atomic_fetch_add(&h->inner_bytes, weight_of(inner_usable(h, a, q)), __ATOMIC_RELAXED);
    }
    arena_unlock(a);
    limit_here(h);
    return handed_out_plain(q);
}

static size_t cache_usable_size(void *heap, const void *p) {
    cache_heap *h = heap;
    if (!p) return 0;
    cache_arena *a = arena_of(h, p);
    arena_lock(a);
    size_t n = h->inner->usable_size(a->inner_heap, p);
    arena_unlock(a);
    return n;
}

/* Broken entries of the class tables: each must be what its rule says. */
static size_t class_tables_check(void) {
    size_t bad = 0;
    for (size_t n = 1; n <= CLASS_TABLE_BYTES; n++) bad += class_of(n) != class_of_rule(n);
    for (size_t u = 16; u < CLASS_TABLE_BYTES; u++) bad += class_floor_of(u) != class_floor_rule(u);
    return bad;
}

/* The depot's lists: each block held (its byte says so) of its list's class or
 * more, each list as long as it says, their weight what the depot counts. */
static size_t depot_check(cache_depot *d) {
    size_t bad = 0, bytes = 0;
    hl_spin_lock(&d->lock);
    for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) {
        if (d->lists[c] > HL_CACHE_DEPOT_LISTS) { bad++; continue; }
        for (unsigned i = 0; i < d->lists[c]; i++) {
            uint32_t n = 0;
            for (void *q = d->list[c][i].head; q && n <= d->list[c][i].count; q = ((void **)q)[0], n++) {
                unsigned state = block_state(q);
                if (page_map_get(q) == 0 || !(state & BLOCK_HELD) || (state & ~BLOCK_HELD) < c + 1) bad++;
            }
            if (n != d->list[c][i].count) bad++;
            bytes += (size_t)n * class_size(c);
        }
    }
    if (bytes != d->bytes) bad++;
    hl_spin_unlock(&d->lock);
    return bad;
}

/* Every arena's checker, the class tables, the depots, and this layer's own
 * invariants over the calling thread's bins (other threads change theirs without a lock):
 * each cached block is one its arena's design holds as live, of its class,
 * with the key in place, on pages the map gives to an arena. */
static size_t cache_check(void *heap) {
    cache_heap *h = heap;
    size_t bad = class_tables_check();
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) {
        cache_arena *a = &h->arenas[i];
        arena_lock(a);
        if (a->inner_heap) bad += h->inner->check(a->inner_heap);
        arena_unlock(a);
    }
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) bad += depot_check(&h->arenas[i].depot);
    cache_thread *t = tls.heap_id == h->id ? tls.thread : pthread_getspecific(h->thread_key);
    if (!t) return bad;
    size_t bytes = 0;
    for (unsigned c = 0; c < HL_CACHE_CLASSES; c++) {
        uint32_t n = 0;
        for (void *q = t->head[c]; q && n <= bin_count(t, c); q = ((void **)q)[0], n++) {
            if (page_map_get(q) == 0) bad++;
            cache_arena *a = arena_of(h, q);
            arena_lock(a);
            if (h->inner->usable_size(a->inner_heap, q) < class_size(c)) bad++;
            arena_unlock(a);
            unsigned state = block_state(q);
            if (!(state & BLOCK_HELD) || (state & ~BLOCK_HELD) < c + 1) bad++;
        }
        if (n != bin_count(t, c) || t->room[c] < 0) bad++;
        bytes += (size_t)n * class_size(c);
    }
    if (bytes + t->pending_bytes != thread_bytes(t) || t->room[NO_CLASS] != 0) bad++;
    uint32_t n = 0;
    for (void *q = t->pending; q && n <= t->pending_count; q = ((void **)q)[0], n++)
        if (block_state(q) != BLOCK_PENDING || page_map_get(q) == 0) bad++;
    if (n != t->pending_count) bad++;
    return bad;
}

/* Every arena's walk in turn, under its lock, with region numbers that go on
 * from one arena to the next (each design numbers its own from 0). A block in a
 * thread's bin is used to the design. */
typedef struct arena_walk { hl_walker walker; void *user; unsigned base, next; } arena_walk;
static void arena_walk_piece(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user) {
    arena_walk *w = user;
    if (w->base + region + 1 > w->next) w->next = w->base + region + 1;
    w->walker(start, size, payload, usable, state, w->base + region, w->user);
}
static void cache_walk(void *heap, hl_walker walker, void *user) {
    cache_heap *h = heap;
    if (!h->inner->walk) return;
    arena_walk w = {walker, user, 0, 0};
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) {
        cache_arena *a = &h->arenas[i];
        arena_lock(a);
        if (a->inner_heap) h->inner->walk(a->inner_heap, arena_walk_piece, &w);
        arena_unlock(a);
        w.base = w.next;
    }
}

size_t hl_cache_map_bytes(size_t heap_bytes) { return heap_bytes >> BLOCK_GRANULE_SHIFT; }

void hl_cache_flush_thread(void *heap) {
    cache_heap *h = heap;
    cache_thread *t = tls.heap_id == h->id ? tls.thread : pthread_getspecific(h->thread_key);
    if (t) thread_flush_all(h, t);
    depot_drain(h);
}

void hl_cache_get_stats(void *heap, hl_cache_stats *out) {
    cache_heap *h = heap;
    memset(out, 0, sizeof *out);
    heap_lock(h);
    out->hits = h->exited_hits;
    out->misses = h->exited_misses;
    out->flushes = h->exited_flushes;
    out->double_frees = h->exited_double_frees;
    out->transfers = h->exited_transfers;
    for (cache_thread *t = h->threads; t; t = t->next) {
        out->hits += t->hits;
        out->misses += t->misses;
        out->flushes += t->flushes;
        out->double_frees += t->double_frees;
        out->transfers += t->transfers;
        out->cached_bytes += thread_bytes(t);
    }
    out->cached_bytes += depot_bytes(h);
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) out->arenas += h->arenas[i].inner_heap != NULL;
    heap_unlock(h);
}

/* Fork: every arena's lock, in index order (a thread never holds two), before
 * the caller takes hooks->lock, which the arenas take inside theirs. */
void hl_cache_fork_prepare(void *heap) {
    cache_heap *h = heap;
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) arena_lock(&h->arenas[i]);
    for (unsigned i = 0; i < HL_CACHE_ARENAS; i++) hl_spin_lock(&h->arenas[i].depot.lock);
}
void hl_cache_fork_release(void *heap) {
    cache_heap *h = heap;
    for (unsigned i = HL_CACHE_ARENAS; i-- > 0;) hl_spin_unlock(&h->arenas[i].depot.lock);
    for (unsigned i = HL_CACHE_ARENAS; i-- > 0;) arena_unlock(&h->arenas[i]);
}

/* ---- one table per wrapped design ---------------------------------------------------- */

HL_LAYER_SLOTS(cache_slots, cache_create);

static const hl_allocator cache_ops = {
    .destroy = cache_destroy,
    .malloc = cache_malloc,
    .memalign = cache_memalign,
    .realloc = cache_realloc,
    .calloc = cache_calloc,
    .free = cache_free,
    .usable_size = cache_usable_size,
    .check = cache_check,
    .walk = cache_walk,
};

void *hl_cache_malloc(void *heap, size_t n) { return cache_malloc(heap, n); }
void hl_cache_free_owned(void *heap, void *p, int (*owns)(const void *p)) {
    if (!cache_free_known(heap, p) && p && owns(p)) cache_free_slow(heap, p);
}

const hl_allocator *hl_cache_wrap(const hl_allocator *inner) { return hl_layer_table(&cache_slots, &cache_ops, "+cache", inner); }

const hl_allocator *hl_cache_inner(const hl_allocator *table) { return hl_layer_inner(&cache_slots, table); }
