/*
 * pages.h — page sources: what backs vendor/hooks.h for a host.
 *
 * mmap: anonymous mappings, counted (now and at peak), with an optional byte
 * limit above which alloc_page fails cleanly, which is how tests reach
 * out-of-memory; a page cache in front of mmap (below); resize_page by mremap.
 * The source is plain data so it can live in static storage (the preload
 * library) or inside a Node heap object.
 */
#ifndef HEAPLAB_PAGES_H
#define HEAPLAB_PAGES_H

#include <stddef.h>
#include <stdint.h>
#include "../../vendor/hooks.h"
#ifdef __cplusplus
/* C++ (the addon) only carries the lock around; C11 <stdatomic.h> is C-only in
 * g++ 12. Same layout as spinlock.h's, pinned by a static assert in pages/mmap.c. */
typedef struct hl_spinlock { int held; int solo; } hl_spinlock;
#else
#include "spinlock.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The page cache: the user-space stand-in for a kernel's page-frame free list.
 * Runs given back through free_page are kept and handed out again by
 * alloc_page without a system call (cleared first: alloc_page's memory reads
 * as zero, and clearing a warm run costs less than the kernel's fault and
 * clear of a fresh one). What it keeps is bounded by the heap: at most
 * `floor` bytes plus `percent` of the bytes the heap holds now, so a heap
 * that frees everything gives nearly everything back at once; a run left
 * unused for `decay_ms` goes back too (checked on each page call), so an idle
 * heap shrinks to the floor. Runs longer than `run_max` are never kept:
 * clearing them could cost more than the pages the program then touches.
 *
 * Prefault (the prefault_page hook): of a run the allocator will carve into
 * many blocks, the first `prefault` bytes are faulted in by one call
 * (MADV_POPULATE_WRITE), as a kernel's page-frame allocator hands out frames
 * already mapped. The cost per page is the kernel's either way (about 1.2 µs
 * here); what changes is where it lands: in the one call that grows the heap,
 * not in every later malloc that writes a header into a new page, which was
 * the p99.9 of a growing heap. A run for one block is never prefaulted (the
 * program may touch little of it), and the bound caps the one slow call.
 * Kernels before 5.14 ignore it.
 */
typedef struct hl_page_cache_config {
    int enabled;          /* 0: every free_page unmaps at once                      */
    size_t floor;         /* bytes that may stay cached however small the heap       */
    unsigned percent;     /* plus this share (0-100) of the bytes the heap holds     */
    unsigned decay_ms;    /* a run cached this long goes back (above the floor); 0: never */
    size_t run_max;       /* longer runs go straight back to the system              */
    size_t prefault;      /* bytes of a carved run faulted in at once; 0: none       */
} hl_page_cache_config;

/* floor 256 KiB, 2% of the heap, 1 s decay, runs up to 1 MiB, prefault 1 MiB */
hl_page_cache_config hl_page_cache_defaults(void);
/* Parses "off", "on" or a comma list of floor=BYTES, percent=N, decay=MS,
 * run_max=BYTES, prefault=BYTES (BYTES may end in K, M or G) over *config; -1 on a bad word
 * (config is then unchanged). The preload libraries read HEAPLAB_PAGE_CACHE. */
int hl_page_cache_parse(const char *text, hl_page_cache_config *config);

enum { HL_PAGE_CACHE_SLOTS = 64 };   /* runs kept at most; the oldest goes first */
enum { HL_PAGE_DEFERRED_SLOTS = 8 }; /* system calls put off at most (more run at once) */

typedef struct hl_cached_run {
    void *start;
    size_t pages;
    uint64_t since_ms;    /* when it was cached (CLOCK_MONOTONIC_COARSE)            */
} hl_cached_run;

typedef struct hl_mmap_pages {
    size_t page_size;
    size_t limit;          /* bytes the heap may hold; 0 = no limit                   */
    size_t bytes_mapped;   /* bytes the heap holds now (handed out, not given back)   */
    size_t peak_bytes_mapped;
    size_t bytes_cached;   /* bytes in the cache: held from the system, not the heap's */
    size_t peak_bytes_held;/* peak of bytes_mapped + bytes_cached                      */
    size_t map_calls;      /* mmap calls (cache misses and their retries)            */
    size_t bytes_prefaulted; /* bytes faulted in by prefault_page, in total           */
    size_t unmap_calls;    /* munmap calls                                            */
    size_t remap_calls;    /* mremap calls (resize_page)                              */
    size_t cache_hits, cache_misses;
    size_t bytes_released; /* bytes given back to the system, in total                */
    size_t page_calls;     /* alloc_page + free_page + resize_page calls (the bench
                              tells the operations that crossed the page source)   */
    hl_page_cache_config cache;
    hl_cached_run runs[HL_PAGE_CACHE_SLOTS];
    size_t run_count;
    void *warm_run;        /* the last run handed out from the cache (resident)    */
    /* System calls the heap's lock need not cover, put off until it is released
     * (mmap.c, spin_unlock): the munmap of a run given back, the prefault of a
     * run handed out. Under the lock: the heap's lock guards them. */
    struct hl_deferred_call { void *start; size_t bytes; int populate; } deferred[HL_PAGE_DEFERRED_SLOTS];
    size_t deferred_count;
    int defer;             /* hooks made with the lock: calls may wait for its release */
    hl_spinlock lock;      /* the heap's lock, taken by hooks.lock (lock.solo: skipped) */
} hl_mmap_pages;

/*
 * arena: deterministic pages from one reserved region, so that C and the
 * TypeScript ports (lib/pages/arena.ts) see the same addresses as offsets from
 * the region's base. The rule (pages/arena.c says it in full): lowest-address
 * first fit over a sorted list of free page runs, adjacent runs merged on free,
 * page 0 never handed out (offset 0 is NULL), pages read as zero when handed
 * out (a reused run is cleared then; see pages/arena.c).
 */
typedef struct hl_arena_run { size_t first, count; } hl_arena_run;

typedef struct hl_arena_pages {
    size_t page_size;
    size_t limit;            /* bytes handed out at most; 0 = the whole region  */
    size_t bytes_mapped;     /* pages handed out now, in bytes                    */
    size_t peak_bytes_mapped;
    size_t map_calls, unmap_calls;
    size_t high_water;       /* end offset of the highest page ever handed out    */
    unsigned char *base;     /* aligned to HL_ARENA_BASE_ALIGN                    */
    size_t reserved;         /* bytes of the region                               */
    void *mapping;           /* what mmap returned (with slack for the alignment) */
    size_t mapping_bytes;
    hl_arena_run *runs;      /* free runs sorted by first page; outside the region */
    size_t run_count, run_capacity;
    /* 1: a reused run is handed out as it is, not cleared. Then alloc_page's
     * memory does NOT read as zero (vendor/hooks.h), so only a host that never
     * calls the design's calloc may set it: region mode (native/node/heap.cc),
     * whose blocks promise no contents, as Buffer.allocUnsafe's do. */
    int keep_stale;
    hl_spinlock lock;
} hl_arena_pages;

/* The base is aligned to 4 GiB: an offset has the alignment of its address for
 * every alignment a trace may ask, and a pointer's low 32 bits are its offset
 * (the region is below 4 GiB), so a pointer that the heap later overwrites in
 * part still compares with the port's bytes (lib/replay/compare.ts, firstDivergence). */
#define HL_ARENA_BASE_ALIGN ((size_t)1 << 32)

/* Makes a used region new again without unmapping it: bytes cleared up to the
 * high water, one free run, counters at zero, a new limit. Replays reuse one
 * region this way (as lib/pages/arena.ts reuses its ArrayBuffer), so that no
 * timing includes the first-touch faults of a fresh mapping. */
void hl_arena_pages_reset(hl_arena_pages *src, size_t limit);
/* Zeroes, in a copy of the region's first `n` bytes, every page that is free
 * now (their bytes are stale until handed out again). */
void hl_arena_pages_clear_free(const hl_arena_pages *src, unsigned char *copy, size_t n);
/* The bytes an arena asked for `reserve` reserves: rounded up to pages, at most
 * 4 GiB less a page, so offsets fit in 32 bits (the one home of that rule in C;
 * lib/pages/arena.ts's MAX_RESERVE is its twin). */
size_t hl_arena_pages_reservation(size_t page_size, size_t reserve);
/* Reserves hl_arena_pages_reservation(page_size, reserve) bytes of address
 * space; 0 or -1. */
int hl_arena_pages_init(hl_arena_pages *src, size_t page_size, size_t reserve, size_t limit);
void hl_arena_pages_fini(hl_arena_pages *src);
hl_hooks hl_arena_pages_hooks(hl_arena_pages *src, int locked);

/* page_size 0 means the system's page size; returns 0, or -1 if page_size is not
 * a power of two >= 4096 and a multiple of the system's page size. The cache
 * starts with hl_page_cache_defaults(); set src->cache before the first call
 * to change it. */
int hl_mmap_pages_init(hl_mmap_pages *src, size_t page_size, size_t limit);
/* Hooks over the source; `locked` 0 makes lock/unlock no-ops. resize_page is
 * set when page_size is the system's (mremap keeps only that alignment). */
hl_hooks hl_mmap_pages_hooks(hl_mmap_pages *src, int locked);
/* Gives every cached run back to the system (malloc_trim, a heap's destroy).
 * The caller holds the heap's lock or is its only user. */
void hl_mmap_pages_release_cache(hl_mmap_pages *src);
size_t hl_system_page_size(void);

#ifdef __cplusplus
}
#endif
#endif
