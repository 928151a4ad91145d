/*
 * page_map.h — one byte per granule of the 48-bit address space, for a layer
 * that must tell from a pointer alone what it lies on. Two granules are used:
 *   a 4 KiB page (hl_page_map): the preload library (is this page one the page
 *     source gave the allocator?) and the thread cache (which arena's design
 *     holds this page?);
 *   32 bytes (the thread cache's block map, cache/cache.c: what it knows of
 *     the block that starts there).
 *
 *   leaf[addr >> 32] -> 2^(32 - shift) bytes, one per granule of that 4 GiB region
 *                       (pages: 1 MiB)
 *
 * A static top level (512 KiB of pointers, untouched until used) and a leaf per
 * region, mapped the first time the region holds a marked granule; a leaf's
 * pages cost memory only where they are written. get() is two loads. Marks are
 * written by whoever takes or gives back the run (under the lock that guards
 * it) and read without a lock: a block being freed is live, so the bytes of its
 * pages cannot change under the reader, and writers of other pages touch other
 * bytes. A kernel would keep the same byte in its page descriptors.
 *
 * A map made flat (hl_byte_map_flat, before its first use) has the leaves of a
 * window of the address space (HL_BYTE_MAP_WINDOW, where the kernel places
 * the process's mappings) side by side in one read-only reservation (no memory
 * until written), each leaf made writable when it is first needed: a byte's
 * address there is the reservation plus (addr - the window's start) >> shift,
 * computed without a load that waits for addr, and an address no leaf covers
 * reads 0 from the kernel's zero page. Outside the window, leaves as above.
 * (The thread cache's free reads its block map on every call: the leaf's load
 * in front of the byte's cost `heaplab bench` fast 5-9% of its time on every
 * NAME+cache.) A reservation the host refuses (a limit on address space, a
 * sanitizer's layout, valgrind) leaves the map as leaves.
 */
#ifndef HEAPLAB_PAGE_MAP_H
#define HEAPLAB_PAGE_MAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

enum {
    HL_PAGE_MAP_ADDR_BITS = 48,
    HL_PAGE_MAP_PAGE_SHIFT = 12,
    HL_PAGE_MAP_REGION_SHIFT = 32,
    HL_PAGE_MAP_REGIONS = 1 << (HL_PAGE_MAP_ADDR_BITS - HL_PAGE_MAP_REGION_SHIFT),     /* 65536 */
    HL_PAGE_MAP_LEAF_BYTES = 1 << (HL_PAGE_MAP_REGION_SHIFT - HL_PAGE_MAP_PAGE_SHIFT), /* 1 MiB */
};

/* A map of any granule: the caller passes the same shift to every call. */
typedef struct hl_byte_map {
    /* The window (hl_byte_map_flat): the byte of an address a with
     * flat_lo <= a < flat_lo + flat_span is flat_base[(a - flat_lo) >> shift],
     * found as flat_biased + (a >> shift) (flat_base - (flat_lo >> shift): the
     * subtraction out of the chain of loads, beside it in the range test);
     * flat_span 0: no window, leaves only. */
    uint8_t *flat_base;
    uintptr_t flat_biased;
    uintptr_t flat_lo;
    _Atomic uintptr_t flat_span;
    _Atomic(uint8_t *) leaf[HL_PAGE_MAP_REGIONS];  /* in the window: the writable ones, in place */
} hl_byte_map;
typedef hl_byte_map hl_page_map;

/* The address span a flat map covers (default 256 GiB, a multiple of 4 GiB):
 * its reservation is span >> shift bytes (8 GiB for the block map's 32-byte
 * granule). Not the whole 48 bits: the page tables of a reservation that
 * large cost what a program that calls mlockall(MCL_CURRENT) as root makes
 * the kernel fill in (8 TiB: minutes and 16 GiB). */
#ifndef HL_BYTE_MAP_WINDOW
#define HL_BYTE_MAP_WINDOW ((uintptr_t)256 << 30)
#endif
_Static_assert(HL_BYTE_MAP_WINDOW % ((uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT) == 0, "the window is whole regions");

/* Whether addr's region lies in the window; *off: its offset there. */
static inline int hl_byte_map_in_window(const hl_byte_map *map, uintptr_t addr, uintptr_t *off) {
    uintptr_t span = atomic_load_explicit(&((hl_byte_map *)map)->flat_span, memory_order_acquire); /* first: then lo and base are set */
    *off = addr - map->flat_lo;
    return __builtin_expect(*off < span, 1);
}

/* Makes a map flat before its first leaf is made; 0 if it is (the host may
 * refuse: then it stays as it was, and works the same). The window is the
 * span below the reservation and a little above it, where the kernel places a
 * process's next mappings: a run outside it has a leaf of its own, as without
 * the window. Call it once (under pthread_once or an init lock): a reader that
 * has not seen it yet finds the window's leaves in place, at the same
 * addresses. */
static inline int hl_byte_map_flat(hl_byte_map *map, unsigned shift) {
    size_t bytes = HL_BYTE_MAP_WINDOW >> shift;
    void *m = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -1;
#ifdef MADV_DONTDUMP
    madvise(m, bytes, MADV_DONTDUMP); /* a core file would otherwise be the whole reservation's size */
#endif
#ifdef MADV_HUGEPAGE
    madvise(m, bytes, MADV_HUGEPAGE); /* a read where no leaf is maps the huge zero page: a 512th of the page tables */
#endif
    uintptr_t region = (uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT, limit = (uintptr_t)1 << HL_PAGE_MAP_ADDR_BITS;
    uintptr_t top = (((uintptr_t)m + bytes + region - 1) & ~(region - 1)) + HL_BYTE_MAP_WINDOW / 8;
    if (top > limit) top = limit;
    if (top < HL_BYTE_MAP_WINDOW) top = HL_BYTE_MAP_WINDOW;
    map->flat_base = m;
    map->flat_lo = top - HL_BYTE_MAP_WINDOW;
    map->flat_biased = (uintptr_t)m - (map->flat_lo >> shift);
    atomic_store_explicit(&map->flat_span, HL_BYTE_MAP_WINDOW, memory_order_release);
    return 0;
}

/* The leaf of addr's region (mapped now if `create`), NULL if it has none. */
static inline uint8_t *hl_byte_map_leaf(hl_byte_map *map, uintptr_t addr, unsigned shift, int create) {
    _Atomic(uint8_t *) *slot = &map->leaf[addr >> HL_PAGE_MAP_REGION_SHIFT];
    uint8_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
    if (leaf || !create) return leaf;
    size_t bytes = (size_t)1 << (HL_PAGE_MAP_REGION_SHIFT - shift);
    uintptr_t off;
    int in_window = hl_byte_map_in_window(map, addr & ~(((uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT) - 1), &off);
    void *m;
    if (in_window) { /* its place in the reservation, made writable (two threads may both: the same result) */
        m = map->flat_base + (off >> shift);
        if (mprotect(m, bytes, PROT_READ | PROT_WRITE) != 0) return NULL;
    } else {
        m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return NULL;
    }
#ifdef MADV_NOHUGEPAGE
    madvise(m, bytes, MADV_NOHUGEPAGE); /* written a byte per block: 4 KiB pages, not 2 MiB ones */
#endif
    uint8_t *expected = NULL;
    if (!atomic_compare_exchange_strong(slot, &expected, (uint8_t *)m)) { /* another thread was first */
        if (!in_window) munmap(m, bytes);
        return expected;
    }
    return m;
}
static inline uint8_t *hl_page_map_leaf(hl_page_map *map, uintptr_t addr, int create) {
    return hl_byte_map_leaf(map, addr, HL_PAGE_MAP_PAGE_SHIFT, create);
}

/* The byte of p's granule, NULL outside 48 bits and, outside a flat map's
 * window, where no leaf is; in the window a byte where no leaf is reads 0 and
 * must not be written (a caller writes only a byte it marked, or one that is
 * not 0). */
static inline uint8_t *hl_byte_map_at(hl_byte_map *map, const void *p, unsigned shift) {
    uintptr_t a = (uintptr_t)p, off;
    if (hl_byte_map_in_window(map, a, &off)) return (uint8_t *)(map->flat_biased + (a >> shift));
    if (a >> HL_PAGE_MAP_ADDR_BITS) return NULL;
    uint8_t *leaf = atomic_load_explicit(&map->leaf[a >> HL_PAGE_MAP_REGION_SHIFT], memory_order_acquire);
    return leaf ? leaf + ((a & (((uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT) - 1)) >> shift) : NULL;
}

/* hl_byte_map_at for an address whose leaf is known to be mapped (a block whose
 * byte the caller wrote before): no test for a missing leaf. */
static inline uint8_t *hl_byte_map_at_mapped(hl_byte_map *map, const void *p, unsigned shift) {
    uintptr_t a = (uintptr_t)p, off;
    if (hl_byte_map_in_window(map, a, &off)) return (uint8_t *)(map->flat_biased + (a >> shift));
    uint8_t *leaf = atomic_load_explicit(&map->leaf[a >> HL_PAGE_MAP_REGION_SHIFT], memory_order_acquire);
    return leaf + ((a & (((uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT) - 1)) >> shift);
}

/* Maps the leaves that [start, start + bytes) needs; -1 if one could not be. */
static inline int hl_byte_map_reserve(hl_byte_map *map, const void *start, size_t bytes, unsigned shift) {
    uintptr_t a = (uintptr_t)start, end = a + bytes;
    if (end < a || (end - 1) >> HL_PAGE_MAP_ADDR_BITS) return -1;
    for (uintptr_t r = a >> HL_PAGE_MAP_REGION_SHIFT; r <= (end - 1) >> HL_PAGE_MAP_REGION_SHIFT; r++)
        if (!hl_byte_map_leaf(map, r << HL_PAGE_MAP_REGION_SHIFT, shift, 1)) return -1;
    return 0;
}

/* Zeroes the bytes of [start, start + bytes) (a run given back): whole pages of
 * the map by madvise, so that they cost no memory once their run is gone. */
static inline void hl_byte_map_clear(hl_byte_map *map, const void *start, size_t bytes, unsigned shift) {
    uint8_t *first = hl_byte_map_at(map, start, shift);
    uintptr_t region = (uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT;
    if (!first || !bytes || !hl_byte_map_leaf(map, (uintptr_t)start, shift, 0) /* in the window: read-only */ ||
        ((uintptr_t)start & (region - 1)) + bytes > region)
        return; /* runs never cross a region's end */
    size_t n = (bytes + ((size_t)1 << shift) - 1) >> shift;
    uintptr_t lo = ((uintptr_t)first + 4095) & ~(uintptr_t)4095, hi = ((uintptr_t)first + n) & ~(uintptr_t)4095;
    if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0) {
        memset(first, 0, lo - (uintptr_t)first);
        memset((void *)hi, 0, (uintptr_t)first + n - hi);
    } else {
        memset(first, 0, n);
    }
}

/* Marks the pages of [start, start + bytes) with `value` (0: unmarked); -1 if
 * a leaf could not be mapped (only when marking: unmarking needs none). */
static inline int hl_page_map_set(hl_page_map *map, const void *start, size_t bytes, uint8_t value) {
    uintptr_t a = (uintptr_t)start, end = a + bytes;
    if (end < a || (end - 1) >> HL_PAGE_MAP_ADDR_BITS) return -1;
    uintptr_t page = a >> HL_PAGE_MAP_PAGE_SHIFT;
    uintptr_t last = (end + ((uintptr_t)1 << HL_PAGE_MAP_PAGE_SHIFT) - 1) >> HL_PAGE_MAP_PAGE_SHIFT;
    while (page < last) {
        uintptr_t region_end = ((page >> (HL_PAGE_MAP_REGION_SHIFT - HL_PAGE_MAP_PAGE_SHIFT)) + 1)
                               << (HL_PAGE_MAP_REGION_SHIFT - HL_PAGE_MAP_PAGE_SHIFT);
        uintptr_t stop = last < region_end ? last : region_end;
        uint8_t *leaf = hl_page_map_leaf(map, page << HL_PAGE_MAP_PAGE_SHIFT, value != 0);
        if (leaf) memset(leaf + (page & (HL_PAGE_MAP_LEAF_BYTES - 1)), value, stop - page);
        else if (value) return -1;
        page = stop;
    }
    return 0;
}

/* Marks a run just taken from alloc_page; if the map cannot (a leaf refused),
 * leaves it unmarked and returns -1: the caller gives the run back. */
static inline int hl_page_map_mark_run(hl_page_map *map, const void *run, size_t bytes, uint8_t value) {
    if (hl_page_map_set(map, run, bytes, value) == 0) return 0;
    hl_page_map_set(map, run, bytes, 0);
    return -1;
}

/* After resize_page took the run [old, old + old_bytes) to [now, now +
 * new_bytes): a run resized in place changes only its tail (marked after the
 * resize: before it, those pages may be another run's); one that moved is
 * unmarked where it was and marked where it is. A tail the map cannot mark (a
 * leaf for a new region refused) stays unmarked; the run's block, found by its
 * first page, is unaffected. A moved run left unmarked takes a refused 1 MiB
 * mapping just after the remap succeeded: its block is then unknown to the map. */
static inline void hl_page_map_resized(hl_page_map *map, const void *old, size_t old_bytes, const void *now,
                                       size_t new_bytes, uint8_t value) {
    const char *o = old, *n = now;
    if (n == o) {
        if (new_bytes < old_bytes) hl_page_map_set(map, o + new_bytes, old_bytes - new_bytes, 0);
        else if (new_bytes > old_bytes) hl_page_map_set(map, o + old_bytes, new_bytes - old_bytes, value);
        return;
    }
    hl_page_map_set(map, old, old_bytes, 0);
    hl_page_map_set(map, now, new_bytes, value);
}

/* The mark of p's page (0 for a page never marked, or outside 48 bits). */
static inline unsigned hl_page_map_get(const hl_page_map *map, const void *p) {
    const uint8_t *b = hl_byte_map_at((hl_byte_map *)map, p, HL_PAGE_MAP_PAGE_SHIFT);
    return b ? *b : 0;
}

#endif
