/*
 * pages/arena.c — the deterministic page source.
 *
 * One region of address space is reserved once (mmap, MAP_NORESERVE) with its
 * base aligned to HL_ARENA_BASE_ALIGN. Pages are handed out by this rule, which
 * lib/pages/arena.ts implements identically:
 *
 *   - the region is a row of pages numbered 0 .. N-1; page 0 is never handed out,
 *     so offset 0 can stand for NULL in the ports;
 *   - free page runs are kept sorted by their first page, and adjacent runs are
 *     always merged (no two runs touch);
 *   - alloc_page(n) takes the first n pages of the lowest-addressed run that has
 *     at least n pages (first fit by address); if none has, or the limit would be
 *     passed, it returns NULL;
 *   - free_page(p, n) returns the run, merging it with the runs just below and
 *     just above. Pages read as zero when handed out again: alloc_page clears
 *     the part of a run below the high water (above it nothing was ever
 *     written, and the reservation's fresh pages read as zero), unless the
 *     host asked for stale pages (keep_stale, pages.h). That is what
 *     the TypeScript twin does too, so a C-vs-port timing compares allocators,
 *     not page sources (madvise on every free and a fault on every reuse made
 *     the C side pay the kernel where the port paid nothing).
 *
 * Nothing depends on where the kernel put the region: the same requests give the
 * same offsets on every run and in the TypeScript port.
 */
#define _DEFAULT_SOURCE
#include "pages.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static size_t round_up(size_t x, size_t to) { return (x + to - 1) & ~(to - 1); }

size_t hl_arena_pages_reservation(size_t page_size, size_t reserve) {
    /* offsets must fit in 32 bits (the ports store pointers as offsets) */
    if (reserve > HL_ARENA_BASE_ALIGN - page_size) reserve = HL_ARENA_BASE_ALIGN - page_size;
    return round_up(reserve, page_size);
}

int hl_arena_pages_init(hl_arena_pages *src, size_t page_size, size_t reserve, size_t limit) {
    memset(src, 0, sizeof *src);
    size_t sys = hl_system_page_size();
    if (page_size == 0) page_size = sys;
    if ((page_size & (page_size - 1)) || page_size < 4096 || page_size % sys) return -1;
    if (reserve == 0) return -1;
    reserve = hl_arena_pages_reservation(page_size, reserve);
    size_t bytes = reserve + HL_ARENA_BASE_ALIGN;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -1;
    src->page_size = page_size;
    src->limit = limit;
    src->mapping = m;
    src->mapping_bytes = bytes;
    src->base = (unsigned char *)round_up((uintptr_t)m, HL_ARENA_BASE_ALIGN);
    src->reserved = reserve;
    src->run_capacity = 1024;
    void *runs = mmap(NULL, src->run_capacity * sizeof(hl_arena_run), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (runs == MAP_FAILED) {
        munmap(m, bytes);
        return -1;
    }
    src->runs = runs;
    src->runs[0].first = 1;
    src->runs[0].count = reserve / page_size - 1;
    src->run_count = 1;
    atomic_init(&src->lock.held, 0);
    return 0;
}

void hl_arena_pages_fini(hl_arena_pages *src) {
    if (src->mapping) munmap(src->mapping, src->mapping_bytes);
    if (src->runs) munmap(src->runs, src->run_capacity * sizeof(hl_arena_run));
    memset(src, 0, sizeof *src);
}

static int grow_runs(hl_arena_pages *src) {
    size_t cap = src->run_capacity * 2;
    hl_arena_run *runs = mmap(NULL, cap * sizeof *runs, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (runs == MAP_FAILED) return -1;
    memcpy(runs, src->runs, src->run_count * sizeof *runs);
    munmap(src->runs, src->run_capacity * sizeof *runs);
    src->runs = runs;
    src->run_capacity = cap;
    return 0;
}

static void *arena_alloc_page(void *ctx, size_t pages) {
    hl_arena_pages *src = ctx;
    if (pages == 0 || pages > src->reserved / src->page_size) return NULL;
    size_t bytes = pages * src->page_size;
    if (src->limit && (bytes > src->limit || src->bytes_mapped > src->limit - bytes)) return NULL;
    for (size_t i = 0; i < src->run_count; i++) {
        hl_arena_run *run = &src->runs[i];
        if (run->count < pages) continue;
        size_t first = run->first;
        run->first += pages;
        run->count -= pages;
        if (run->count == 0) {
            memmove(run, run + 1, (src->run_count - i - 1) * sizeof *run);
            src->run_count--;
        }
        src->bytes_mapped += bytes;
        if (src->bytes_mapped > src->peak_bytes_mapped) src->peak_bytes_mapped = src->bytes_mapped;
        size_t start = first * src->page_size, end = start + bytes;
        if (start < src->high_water && !src->keep_stale)
            memset(src->base + start, 0, (end < src->high_water ? end : src->high_water) - start);
        if (end > src->high_water) src->high_water = end;
        src->map_calls++;
        return src->base + first * src->page_size;
    }
    return NULL;
}

static void arena_free_page(void *ctx, void *start, size_t pages) {
    hl_arena_pages *src = ctx;
    if (!start || !pages) return;
    size_t first = (size_t)((unsigned char *)start - src->base) / src->page_size;
    /* i: the first run above the freed one */
    size_t i = 0;
    while (i < src->run_count && src->runs[i].first < first) i++;
    int merge_below = i > 0 && src->runs[i - 1].first + src->runs[i - 1].count == first;
    int merge_above = i < src->run_count && first + pages == src->runs[i].first;
    if (merge_below && merge_above) {
        src->runs[i - 1].count += pages + src->runs[i].count;
        memmove(&src->runs[i], &src->runs[i + 1], (src->run_count - i - 1) * sizeof *src->runs);
        src->run_count--;
    } else if (merge_below) {
        src->runs[i - 1].count += pages;
    } else if (merge_above) {
        src->runs[i].first = first;
        src->runs[i].count += pages;
    } else {
        if (src->run_count == src->run_capacity && grow_runs(src) != 0) return; /* pages leak, never corrupt */
        memmove(&src->runs[i + 1], &src->runs[i], (src->run_count - i) * sizeof *src->runs);
        src->runs[i].first = first;
        src->runs[i].count = pages;
        src->run_count++;
    }
    src->bytes_mapped -= pages * src->page_size;
    src->unmap_calls++;
}

void hl_arena_pages_reset(hl_arena_pages *src, size_t limit) {
    memset(src->base, 0, src->high_water);
    src->limit = limit;
    src->bytes_mapped = src->peak_bytes_mapped = 0;
    src->map_calls = src->unmap_calls = 0;
    src->high_water = 0;
    src->runs[0].first = 1;
    src->runs[0].count = src->reserved / src->page_size - 1;
    src->run_count = 1;
}

void hl_arena_pages_clear_free(const hl_arena_pages *src, unsigned char *copy, size_t n) {
    for (size_t i = 0; i < src->run_count; i++) {
        size_t start = src->runs[i].first * src->page_size;
        if (start >= n) break;
        size_t end = start + src->runs[i].count * src->page_size;
        memset(copy + start, 0, (end < n ? end : n) - start);
    }
}

static void arena_lock(void *ctx) { hl_spin_lock(&((hl_arena_pages *)ctx)->lock); }
static void arena_unlock(void *ctx) { hl_spin_unlock(&((hl_arena_pages *)ctx)->lock); }
static void arena_no_lock(void *ctx) { (void)ctx; }

hl_hooks hl_arena_pages_hooks(hl_arena_pages *src, int locked) {
    hl_hooks h = {
        .ctx = src,
        .page_size = src->page_size,
        .alloc_page = arena_alloc_page,
        .free_page = arena_free_page,
        .lock = locked ? arena_lock : arena_no_lock,
        .unlock = locked ? arena_unlock : arena_no_lock,
    };
    return h;
}
