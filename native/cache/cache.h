/*
 * cache.h — heaplab's thread cache: ONE layer, generic over the allocator table
 * (as the debug layer is), that puts per-thread free lists of small blocks in
 * front of any design, so that most malloc/free calls of a threaded program
 * never take a lock.
 *
 *   thread A: bins[class] -> block -> block -> ...     (LIFO, through each
 *   thread B: bins[class] -> block -> ...               block's first word)
 *                    |  refill / flush, in batches, under the arena's lock
 *                    v
 *   arena 0: the design   arena 1: the design   ...    (HL_CACHE_ARENAS, each
 *                    |                                  with its own lock)
 *                    v
 *             the page source (hooks->alloc_page, under hooks->lock)
 *
 *  - each thread refills from one arena, an instance of the design of its
 *    own: the arena with the fewest live threads when the thread first calls
 *    (so one thread has one design, and two threads rarely meet at a lock);
 *    a page map, one byte per 4 KiB page, says which arena's pages a block
 *    lies on, and a block always goes back to the arena it came from;
 *  - sizes up to HL_CACHE_MAX_BYTES fall in HL_CACHE_CLASSES size classes
 *    (16-byte steps to 256, then eight per power of two: a request is rounded up
 *    by at most 1/8); a cached malloc asks the
 *    design for the class's size, so a block can serve any request of its class;
 *  - a block map, one byte per 32 bytes of address (cache.c), says for each
 *    block the cache handed out which class it can be cached in, and for
 *    each block a bin holds that a bin holds it: the hot free reads that byte,
 *    not the block's header, and puts the block in the calling thread's bin of
 *    that class, whichever thread allocated it (a block freed on another
 *    thread is simply that thread's now); a block the map does not know
 *    (memalign, large, resized by the design) asks the design's `peek`;
 *  - a block whose physical predecessor is free goes back to the design, in
 *    batches, so that the two can merge: at its free if the design's `peek`
 *    says so, else when a malloc would take it from a bin (the design's header
 *    word says so there, where the design describes it: hl_header_word);
 *    a block the design holds free (a second free) goes to the design's free,
 *    which ignores it;
 *  - realloc within the cached sizes moves the block through the bins (or
 *    keeps it when the new size fits it and is at least half of it);
 *  - a bin holds at most max(4, min(128, 128 KiB / size)) blocks and a thread at
 *    most its bound, which follows the heap (below); a full bin gives half back to the heap
 *    under one lock, a thread over its bytes gives back its largest classes
 *    down to half the bound; an empty bin is refilled with half its capacity;
 *  - a second free of a block a bin holds (any thread's) is caught by its
 *    byte in the block map, ignored and counted, never handed out twice;
 *  - a full bin whose top block is another arena's gives its top half, as one
 *    list, to that arena's depot, and a thread of that arena whose bin is empty
 *    takes a list from its depot before it asks the design: a block allocated
 *    on one thread and freed on another goes round without the design (two
 *    lists per class and 1 MiB per arena at most; a sparse or draining heap and
 *    malloc_trim empty the depots into the designs);
 *  - a thread's bins go back to the heap when the thread exits (a destructor of
 *    the heap's thread key); after fork the child keeps only its own thread's
 *    bins (the others' blocks stay allocated: a leak, never a shared block).
 * Everything else (memalign and large blocks: the calling thread's arena; a
 * block's realloc and usable_size: the block's arena) goes to a design under
 * its arena's lock; check and walk go through every arena in turn (the walk's
 * regions numbered on from one arena to the next).
 *
 * What it needs from the host, in one place, so that a kernel can run it per
 * CPU: a per-thread slot with a destructor (here POSIX thread keys, with a
 * _Thread_local fast path; a kernel would use per-CPU data with interrupts off),
 * a lock per arena (C11-atomic spinlocks, pages/spinlock.h), the page source's
 * lock (hooks->lock, taken only around the page hooks and the thread list), and
 * room for the page map and the block map (here leaves of 1 MiB and 128 MiB,
 * one per 4 GiB region in use, whose pages cost memory where written: a 4096th
 * and a 32nd of the heap's span; the block map's leaves for the 256 GiB of
 * address where the kernel places mappings lie side by side in one read-only
 * reservation of 8 GiB where the host allows it, so that the hot free finds a
 * block's byte without a load first: pages/page_map.h; a kernel would keep the
 * arena in its page descriptors and the block map beside its heap). Each
 * design is created with no-op lock hooks: this layer takes its arena's lock
 * around every call into it, and around a whole batch at once; a depot's lock
 * is held alone, for the move of one list.
 *
 * Not combined with the debug layer (the debug layer wants to see every free).
 */
#ifndef HEAPLAB_CACHE_H
#define HEAPLAB_CACHE_H

#include <stddef.h>
#include "../allocator.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MiB one thread may hold in its bins (default 4), with bins of about 128 KiB
 * (HL_CACHE_BIN_BYTES in cache.c). Measured with the churn harness
 * (native/bench/churn.c, 10k live blocks of 8 B-64 KiB per thread, 1 M pairs):
 * 4 MiB / 128 KiB gave 9.7 M pairs/s on one thread and 14.7 M on two (tlsf);
 * 8 MiB / 256 KiB 11.1 and 17.7, at twice the memory; a bound below what the
 * bins settle at (1 MiB / 256 KiB) made every free a flush: 1.2 M pairs/s. */
/* log2 of the largest request cached (default 16: 64 KiB; at least 9). */
#ifndef HL_CACHE_MAX_LOG2
#define HL_CACHE_MAX_LOG2 16
#endif
#ifndef HL_CACHE_THREAD_MIB
#define HL_CACHE_THREAD_MIB 4
#endif
/* The bound follows the heap (cache.c, thread_bound): a thread keeps at most
 * HL_CACHE_LIVE_TIMES (default 8) times the bytes the program holds, so bins
 * empty as a program frees everything. */
#ifndef HL_CACHE_LIVE_TIMES
#define HL_CACHE_LIVE_TIMES 8
#endif
/* Instances of the design behind the bins (arenas, default 4): a new thread is
 * given the one with the fewest live threads, so a program with one thread has
 * one design and two threads rarely meet at a lock. */
#ifndef HL_CACHE_ARENAS
#define HL_CACHE_ARENAS 4
#endif
enum {
    HL_CACHE_MAX_BYTES = 1 << HL_CACHE_MAX_LOG2,         /* larger requests are not cached */
    HL_CACHE_CLASSES = 16 + 8 * (HL_CACHE_MAX_LOG2 - 8), /* 16..256 by 16, then 8 per power of two */
    HL_CACHE_THREAD_BYTES = HL_CACHE_THREAD_MIB << 20, /* bytes one thread may hold in its bins */
};

/* The cached variant of `inner`, named "NAME+cache"; NULL if `inner` is NULL or
 * more designs than the layer has slots for were wrapped. */
const hl_allocator *hl_cache_wrap(const hl_allocator *inner);
/* The table's malloc by name, for a caller that knows its heap is one of this
 * layer's (the NAME+cache preload libraries): a direct call, where the table's
 * is an indirect one. */
void *hl_cache_malloc(void *heap, size_t n);
/* The table's free for such a caller, which may be handed pointers of another
 * allocator (blocks malloc'd before the preload library was loaded): a block
 * the layer's block map knows is freed without asking, any other only if
 * `owns` says it is the heap's, so the hot free makes one lookup, not two. */
void hl_cache_free_owned(void *heap, void *p, int (*owns)(const void *p));
/* Whether `table` is one of this layer's (then its inner design is returned). */
const hl_allocator *hl_cache_inner(const hl_allocator *table);

/* Counters of one cached heap, summed over its threads (read without the lock:
 * an estimate while threads run). */
typedef struct hl_cache_stats {
    size_t hits, misses;     /* cached mallocs served from a bin, or by a refill */
    size_t flushes;          /* batches given back to the heap                   */
    size_t cached_bytes;     /* bytes held now: in bins, or on their way back    */
    size_t double_frees;     /* second frees of a cached block, ignored          */
    size_t arenas;           /* instances of the design made so far              */
    size_t transfers;        /* lists a thread took from its arena's depot        */
} hl_cache_stats;
void hl_cache_get_stats(void *heap, hl_cache_stats *out);

/* The most bytes of the block map (cache.c: a byte per 32 bytes) that a cached
 * heap holding `heap_bytes` from its page source keeps resident; what a
 * report of the heap's memory adds for it. */
size_t hl_cache_map_bytes(size_t heap_bytes);

/* Gives the calling thread's bins back to the heap (malloc_trim): a cached block
 * keeps its pool or segment from going back to the page source. */
void hl_cache_flush_thread(void *heap);

/* Fork: hl_cache_fork_prepare takes every arena's lock, and must run before the
 * caller takes hooks->lock (the arenas take it inside theirs); release, in the
 * parent and in the child, after the caller releases hooks->lock. */
void hl_cache_fork_prepare(void *heap);
void hl_cache_fork_release(void *heap);

#ifdef __cplusplus
}
#endif
#endif
