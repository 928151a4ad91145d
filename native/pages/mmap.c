/*
 * pages/mmap.c — the default page source: anonymous mmap, counted and limited,
 * with a page cache in front (pages.h says its policy) and mremap behind
 * resize_page.
 *
 * The cache is a small array of runs, not a list threaded through the cached
 * memory: keeping a run costs no write into it, so a run that goes back to the
 * system later was never touched by the cache. alloc_page takes the best fit
 * (the shortest run that is long enough; the first of equals), splits off what
 * it does not need and keeps the rest; free_page merges a run with a cached
 * neighbour, which is sound for munmap (it takes any page range) and for the
 * next alloc_page. The bound is enforced on every free_page, oldest run first.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pages.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(atomic_int) == sizeof(int) && _Alignof(atomic_int) == _Alignof(int) && sizeof(hl_spinlock) == 2 * sizeof(int),
               "pages.h declares hl_spinlock for C++ as two plain ints");

size_t hl_system_page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static int is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* ---- the policy ------------------------------------------------------------ */

/* The defaults, each a build option (pages.h says what they mean). */
#ifndef HL_PAGE_CACHE_FLOOR
#define HL_PAGE_CACHE_FLOOR ((size_t)256 << 10)
#endif
#ifndef HL_PAGE_CACHE_PERCENT
#define HL_PAGE_CACHE_PERCENT 2
#endif
#ifndef HL_PAGE_CACHE_DECAY_MS
#define HL_PAGE_CACHE_DECAY_MS 1000
#endif
#ifndef HL_PAGE_CACHE_RUN_MAX
#define HL_PAGE_CACHE_RUN_MAX ((size_t)1 << 20)
#endif
#ifndef HL_PAGE_PREFAULT
#define HL_PAGE_PREFAULT ((size_t)1 << 20)
#endif
_Static_assert(HL_PAGE_CACHE_PERCENT >= 0 && HL_PAGE_CACHE_PERCENT <= 100, "a share of the heap");

hl_page_cache_config hl_page_cache_defaults(void) {
    hl_page_cache_config c = {
        .enabled = 1,
        .floor = HL_PAGE_CACHE_FLOOR,
        .percent = HL_PAGE_CACHE_PERCENT,
        .decay_ms = HL_PAGE_CACHE_DECAY_MS,
        .run_max = HL_PAGE_CACHE_RUN_MAX,
        .prefault = HL_PAGE_PREFAULT,
    };
    return c;
}

/* "123", "64K", "2M", "1G" -> bytes; -1 on anything else. */
static int parse_bytes(const char *s, size_t len, size_t *out) {
    size_t v = 0, i = 0;
    if (len == 0) return -1;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (SIZE_MAX - 9) / 10) return -1;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    if (i == 0) return -1;
    unsigned shift = 0;
    if (i < len) {
        char u = s[i++];
        shift = u == 'K' || u == 'k' ? 10 : u == 'M' || u == 'm' ? 20 : u == 'G' || u == 'g' ? 30 : 99;
        if (shift == 99 || i != len) return -1;
    }
    if (shift && v > (SIZE_MAX >> shift)) return -1;
    *out = v << shift;
    return 0;
}

static int word_is(const char *s, size_t len, const char *w) { return strlen(w) == len && memcmp(s, w, len) == 0; }

int hl_page_cache_parse(const char *text, hl_page_cache_config *config) {
    hl_page_cache_config c = *config;
    size_t n = strlen(text);
    if (word_is(text, n, "off") || word_is(text, n, "0")) {
        config->enabled = 0;
        return 0;
    }
    c.enabled = 1;
    if (word_is(text, n, "on") || word_is(text, n, "1")) {
        *config = c;
        return 0;
    }
    const char *p = text, *end = text + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(item_end - p));
        if (!eq) return -1;
        size_t klen = (size_t)(eq - p), vlen = (size_t)(item_end - eq - 1);
        size_t v;
        if (parse_bytes(eq + 1, vlen, &v)) return -1;
        if (word_is(p, klen, "floor")) c.floor = v;
        else if (word_is(p, klen, "run_max")) c.run_max = v;
        else if (word_is(p, klen, "prefault")) c.prefault = v;
        else if (word_is(p, klen, "percent") && v <= 100) c.percent = (unsigned)v;
        else if (word_is(p, klen, "decay") && v <= 86400000u) c.decay_ms = (unsigned)v;
        else return -1;
        if (comma && comma + 1 == end) return -1;   /* a trailing comma: an empty word */
        p = comma ? comma + 1 : end;
    }
    *config = c;
    return 0;
}

/* ---- counters ----------------------------------------------------------------
 * The hooks run under the heap's lock, but stats() may read the counters from
 * another thread: they are updated with relaxed atomics. */

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)
#define SUB(x, v) __atomic_sub_fetch(&(x), (v), __ATOMIC_RELAXED)

/* The heap's bytes grow by `bytes` (from the system or the cache). */
static void note_handed_out(hl_mmap_pages *src, size_t bytes) {
    size_t after = ADD(src->bytes_mapped, bytes);
    if (after > LOAD(src->peak_bytes_mapped)) __atomic_store_n(&src->peak_bytes_mapped, after, __ATOMIC_RELAXED);
    size_t held = after + LOAD(src->bytes_cached);
    if (held > LOAD(src->peak_bytes_held)) __atomic_store_n(&src->peak_bytes_held, held, __ATOMIC_RELAXED);
}

static void os_unmap(hl_mmap_pages *src, void *start, size_t bytes) {
    munmap(start, bytes);
    ADD(src->bytes_released, bytes);
    ADD(src->unmap_calls, 1);
}

static void os_populate(hl_mmap_pages *src, void *start, size_t bytes) {
    if (madvise(start, bytes, MADV_POPULATE_WRITE) == 0) ADD(src->bytes_prefaulted, bytes);
}

/* A munmap or a prefault while the heap's lock is held waits for its release
 * (spin_unlock), so that another thread is not kept spinning through a system
 * call that needs no lock: on the churn harness with two threads behind the
 * thread cache, madvise and munmap of pools took a fifth of the run, all of it
 * under the lock. Nothing else touches the run meanwhile: the heap gave it
 * back, or has just taken it and hands out its blocks only after the release. */
static int defer_call(hl_mmap_pages *src, void *start, size_t bytes, int populate) {
    if (!src->defer || src->lock.solo || !atomic_load_explicit(&src->lock.held, memory_order_relaxed) ||
        src->deferred_count == HL_PAGE_DEFERRED_SLOTS)
        return 0;
    src->deferred[src->deferred_count++] = (struct hl_deferred_call){start, bytes, populate};
    return 1;
}

static void run_deferred(hl_mmap_pages *src, const struct hl_deferred_call *calls, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (calls[i].populate) os_populate(src, calls[i].start, calls[i].bytes);
        else os_unmap(src, calls[i].start, calls[i].bytes);
    }
}

static void os_unmap_later(hl_mmap_pages *src, void *start, size_t bytes) {
    if (!defer_call(src, start, bytes, 0)) os_unmap(src, start, bytes);
}

static size_t heap_bytes(const hl_mmap_pages *src) { return LOAD(src->bytes_mapped); }

static uint64_t coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the cache ---------------------------------------------------------------- */

static void cache_drop(hl_mmap_pages *src, size_t i) {
    SUB(src->bytes_cached, src->runs[i].pages * src->page_size);
    src->runs[i] = src->runs[--src->run_count];
}

static void cache_release(hl_mmap_pages *src, size_t i) {
    void *start = src->runs[i].start;
    size_t bytes = src->runs[i].pages * src->page_size;
    cache_drop(src, i);
    os_unmap_later(src, start, bytes);
}

static size_t cache_bound(const hl_mmap_pages *src) {
    return src->cache.floor + heap_bytes(src) / 100 * src->cache.percent;
}

static size_t oldest_run(const hl_mmap_pages *src) {
    size_t best = 0;
    for (size_t i = 1; i < src->run_count; i++)
        if (src->runs[i].since_ms < src->runs[best].since_ms) best = i;
    return best;
}

/* Oldest first: runs past the decay age (above the floor), then runs past
 * the bound. */
static void cache_enforce(hl_mmap_pages *src, uint64_t now) {
    if (src->cache.decay_ms) {
        for (size_t i = 0; i < src->run_count && LOAD(src->bytes_cached) > src->cache.floor;) {
            if (now - src->runs[i].since_ms >= src->cache.decay_ms) cache_release(src, i);
            else i++;
        }
    }
    while (src->run_count && LOAD(src->bytes_cached) > cache_bound(src)) cache_release(src, oldest_run(src));
}

/* A cached run of at least `pages`, cut to size and cleared; NULL on a miss. */
static void *cache_take(hl_mmap_pages *src, size_t pages) {
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < src->run_count; i++) {
        size_t n = src->runs[i].pages;
        if (n >= pages && (best == SIZE_MAX || n < src->runs[best].pages)) {
            best = i;
            if (n == pages) break;
        }
    }
    if (best == SIZE_MAX) return NULL;
    hl_cached_run *r = &src->runs[best];
    char *start = r->start;
    size_t bytes = pages * src->page_size;
    if (r->pages == pages) {
        cache_drop(src, best);
    } else {   /* keep the tail */
        r->start = start + bytes;
        r->pages -= pages;
        SUB(src->bytes_cached, bytes);
    }
    note_handed_out(src, bytes);
    memset(start, 0, bytes);
    return start;
}

/* Keeps [start, start + pages) if the policy allows; 0 if it did not. */
static int cache_put(hl_mmap_pages *src, void *start, size_t pages, uint64_t now) {
    size_t bytes = pages * src->page_size;
    if (!src->cache.enabled || bytes > src->cache.run_max) return 0;
    char *lo = start, *hi = lo + bytes;
    for (size_t i = 0; i < src->run_count; i++) {   /* merge with a neighbour */
        hl_cached_run *r = &src->runs[i];
        char *rlo = r->start, *rhi = rlo + r->pages * src->page_size;
        if (rhi != lo && rlo != hi) continue;
        if ((r->pages + pages) * src->page_size > src->cache.run_max) break;
        if (rlo == hi) r->start = lo;
        r->pages += pages;
        r->since_ms = now;
        ADD(src->bytes_cached, bytes);
        return 1;
    }
    if (src->run_count == HL_PAGE_CACHE_SLOTS) cache_release(src, oldest_run(src));
    src->runs[src->run_count++] = (hl_cached_run){start, pages, now};
    ADD(src->bytes_cached, bytes);
    return 1;
}

void hl_mmap_pages_release_cache(hl_mmap_pages *src) {
    while (src->run_count) cache_release(src, src->run_count - 1);
    size_t n = src->deferred_count;   /* and now, what waited for the lock */
    src->deferred_count = 0;
    run_deferred(src, src->deferred, n);
}

/* ---- the hooks ----------------------------------------------------------------- */

int hl_mmap_pages_init(hl_mmap_pages *src, size_t page_size, size_t limit) {
    size_t sys = hl_system_page_size();
    if (page_size == 0) page_size = sys;
    if (!is_pow2(page_size) || page_size < 4096 || page_size % sys) return -1;
    memset(src, 0, sizeof *src);
    src->page_size = page_size;
    src->limit = limit;
    src->cache = hl_page_cache_defaults();
    atomic_init(&src->lock.held, 0);
    return 0;
}

/* Whether the heap may grow by `bytes` under the limit. */
static int within_limit(const hl_mmap_pages *src, size_t bytes) {
    size_t now = heap_bytes(src);
    return !src->limit || (bytes <= src->limit && now <= src->limit - bytes);
}

/* Runs this long are backed by transparent huge pages where the system allows
 * it (madvise mode) and aligned to a huge page: a big block faults in 2 MiB at
 * a time, and mremap moves it by page-table entries of 2 MiB, which is what
 * keeps realloc of a multi-GiB block in milliseconds. */
#define HL_HUGE_RUN_MIN ((size_t)32 << 20)
#define HL_HUGE_PAGE ((size_t)2 << 20)

/* `bytes` of fresh address space aligned to `align` (a multiple of the page
 * size), or NULL. */
static void *map_aligned(hl_mmap_pages *src, size_t bytes, size_t align) {
    if (bytes > SIZE_MAX - align) return NULL;
    size_t slack = bytes + align;
    char *raw = mmap(NULL, slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ADD(src->map_calls, 1);
    if (raw == MAP_FAILED) return NULL;
    char *aligned = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
    size_t tail = (size_t)(raw + slack - (aligned + bytes));
    if (tail) munmap(aligned + bytes, tail);
    return aligned;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23   /* Linux 5.14; older kernels say EINVAL */
#endif

static void *os_map(hl_mmap_pages *src, size_t bytes) {
    void *p;
    if (bytes >= HL_HUGE_RUN_MIN) {
        size_t align = src->page_size > HL_HUGE_PAGE ? src->page_size : HL_HUGE_PAGE;
        p = map_aligned(src, bytes, align);
        if (p) madvise(p, bytes, MADV_HUGEPAGE);
    } else {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ADD(src->map_calls, 1);
        if (p == MAP_FAILED) p = NULL;
        else if ((uintptr_t)p & (src->page_size - 1)) {
            /* page_size above the system's: map again with slack and trim to alignment */
            munmap(p, bytes);
            p = map_aligned(src, bytes, src->page_size);
        }
    }
    if (p) note_handed_out(src, bytes);
    return p;
}

static void *mmap_alloc_page(void *ctx, size_t pages) {
    hl_mmap_pages *src = ctx;
    ADD(src->page_calls, 1);
    if (pages == 0 || pages > SIZE_MAX / src->page_size) return NULL;
    size_t bytes = pages * src->page_size;
    if (!within_limit(src, bytes)) return NULL;
    void *p = src->run_count ? cache_take(src, pages) : NULL;
    if (p) {
        ADD(src->cache_hits, 1);
        src->warm_run = p;
        return p;
    }
    ADD(src->cache_misses, 1);
    src->warm_run = NULL;   /* a fresh mapping may reuse that address */
    p = os_map(src, bytes);
    if (!p && (src->run_count || src->deferred_count)) {   /* the system is short: what the cache holds goes back first */
        hl_mmap_pages_release_cache(src);
        p = os_map(src, bytes);
    }
    return p;
}

static void mmap_free_page(void *ctx, void *start, size_t pages) {
    hl_mmap_pages *src = ctx;
    ADD(src->page_calls, 1);
    if (!start || !pages) return;
    uint64_t now = src->cache.enabled ? coarse_ms() : 0;
    SUB(src->bytes_mapped, pages * src->page_size);
    if (!cache_put(src, start, pages, now)) os_unmap_later(src, start, pages * src->page_size);
    if (src->run_count) cache_enforce(src, now);
}

static void *mmap_resize_page(void *ctx, void *start, size_t old_pages, size_t new_pages) {
    hl_mmap_pages *src = ctx;
    ADD(src->page_calls, 1);
    if (!start || !old_pages || !new_pages || new_pages > SIZE_MAX / src->page_size) return NULL;
    size_t old_bytes = old_pages * src->page_size, new_bytes = new_pages * src->page_size;
    if (new_bytes > old_bytes && !within_limit(src, new_bytes - old_bytes)) return NULL;
    void *p = mremap(start, old_bytes, new_bytes, 0);   /* in place, if the space above is free */
    ADD(src->remap_calls, 1);
    if (p == MAP_FAILED && new_bytes >= HL_HUGE_RUN_MIN) {
        /* move to a huge-page-aligned place, so the move shifts 2 MiB entries */
        void *dest = map_aligned(src, new_bytes, HL_HUGE_PAGE);
        if (dest) {
            p = mremap(start, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
            if (p == MAP_FAILED) munmap(dest, new_bytes);
            else madvise(p, new_bytes, MADV_HUGEPAGE);
        }
    } else if (p == MAP_FAILED) {
        p = mremap(start, old_bytes, new_bytes, MREMAP_MAYMOVE);
    }
    if (p == MAP_FAILED) return NULL;
    if (new_bytes > old_bytes) note_handed_out(src, new_bytes - old_bytes);
    else if (old_bytes > new_bytes) {
        SUB(src->bytes_mapped, old_bytes - new_bytes);
        ADD(src->bytes_released, old_bytes - new_bytes);
    }
    return p;
}

/* The first cache.prefault bytes of a run the allocator will carve, faulted
 * in by one call; nothing for the run the cache just handed out (clearing it
 * made it resident, and walking its pages again costs microseconds). */
static void mmap_prefault_page(void *ctx, void *start, size_t pages) {
    hl_mmap_pages *src = ctx;
    ADD(src->page_calls, 1);
    if (!src->cache.enabled || !start || start == src->warm_run || pages > SIZE_MAX / src->page_size) return;
    size_t n = pages * src->page_size;
    if (n > src->cache.prefault) n = src->cache.prefault & ~(src->page_size - 1);
    if (n && !defer_call(src, start, n, 1)) os_populate(src, start, n);
}

static void spin_lock(void *ctx) { hl_spin_lock(&((hl_mmap_pages *)ctx)->lock); }
/* Out of line: inlined, its copy of the calls made every unlock set up a
 * 200-byte frame and save three registers (13 instructions on the common
 * path, now 6). */
static __attribute__((noinline)) void unlock_and_run_deferred(hl_mmap_pages *src, size_t n) {
    struct hl_deferred_call calls[HL_PAGE_DEFERRED_SLOTS];
    memcpy(calls, src->deferred, n * sizeof calls[0]);
    src->deferred_count = 0;
    hl_spin_unlock(&src->lock);
    run_deferred(src, calls, n);
}
static void spin_unlock(void *ctx) {
    hl_mmap_pages *src = ctx;
    size_t n = src->deferred_count;
    if (__builtin_expect(n != 0, 0)) {
        unlock_and_run_deferred(src, n);
        return;
    }
    hl_spin_unlock(&src->lock);
}
static void no_lock(void *ctx) { (void)ctx; }

hl_hooks hl_mmap_pages_hooks(hl_mmap_pages *src, int locked) {
    hl_hooks h = {
        .ctx = src,
        .page_size = src->page_size,
        .alloc_page = mmap_alloc_page,
        .free_page = mmap_free_page,
        .lock = locked ? spin_lock : no_lock,
        .unlock = locked ? spin_unlock : no_lock,
        .resize_page = src->page_size == hl_system_page_size() ? mmap_resize_page : NULL,
        .prefault_page = mmap_prefault_page,
    };
    src->defer = locked;
    return h;
}
