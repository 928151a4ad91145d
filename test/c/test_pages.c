/*
 * test_pages.c — the mmap page source on its own: the page cache's policy
 * (hits, clearing, the bound, the decay, run_max, off, prefault), the system calls that
 * wait for the lock's release, its parser, the limit,
 * and resize_page (mremap); and the byte maps (page_map.h), as leaves and
 * flat. Built with ASan + UBSan.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "driver.h"
#include "../../native/pages/pages.h"
#include "../../native/pages/page_map.h"

static size_t page;

static hl_hooks open_source(hl_mmap_pages *src, size_t limit) {
    hl_mmap_pages_init(src, 0, limit);
    return hl_mmap_pages_hooks(src, 0);
}

static int reads_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void test_hit_is_cleared_and_counted(void) {
    hl_mmap_pages src;
    hl_hooks h = open_source(&src, 0);
    unsigned char *a = h.alloc_page(h.ctx, 4);
    CHECK(a != NULL && src.cache_misses == 1 && src.map_calls == 1, "first run from the system");
    memset(a, 0xAB, 4 * page);
    h.free_page(h.ctx, a, 4);
    CHECK(src.bytes_mapped == 0 && src.bytes_cached == 4 * page && src.unmap_calls == 0, "kept, not unmapped");
    unsigned char *b = h.alloc_page(h.ctx, 4);
    CHECK(b == a && src.cache_hits == 1 && src.map_calls == 1, "handed out again without a system call");
    CHECK(b && reads_zero(b, 4 * page), "a reused run reads as zero");
    /* a shorter request splits a cached run; the rest stays cached */
    h.free_page(h.ctx, b, 4);
    unsigned char *c = h.alloc_page(h.ctx, 1);
    CHECK(c == a && src.bytes_cached == 3 * page, "split: %zu cached", src.bytes_cached);
    h.free_page(h.ctx, c, 1);
    CHECK(src.run_count == 1 && src.bytes_cached == 4 * page, "neighbours merge back into one run");
    hl_mmap_pages_release_cache(&src);
    CHECK(src.bytes_cached == 0 && src.run_count == 0 && src.bytes_released == 4 * page, "release gives all back");
}

static void test_bound_follows_the_heap(void) {
    hl_mmap_pages src;
    hl_hooks h = open_source(&src, 0);
    src.cache.floor = 8 * page;
    src.cache.percent = 50;
    src.cache.decay_ms = 0;
    enum { N = 64 };
    void *runs[N];
    for (int i = 0; i < N; i++) runs[i] = h.alloc_page(h.ctx, 2);
    /* free half: the heap holds 64 pages, so the cache may keep 8 + 32 */
    for (int i = 0; i < N; i += 2) h.free_page(h.ctx, runs[i], 2);
    CHECK(src.bytes_cached <= 8 * page + src.bytes_mapped / 2, "bound: %zu cached for %zu held", src.bytes_cached,
          src.bytes_mapped);
    CHECK(src.bytes_cached > 0, "something is kept");
    for (int i = 1; i < N; i += 2) h.free_page(h.ctx, runs[i], 2);
    CHECK(src.bytes_mapped == 0 && src.bytes_cached <= 8 * page, "a heap that freed all keeps the floor: %zu",
          src.bytes_cached);
    CHECK(src.peak_bytes_held >= src.peak_bytes_mapped, "held peak counts the cache too");
    hl_mmap_pages_release_cache(&src);
}

static void test_decay_and_off_and_run_max(void) {
    hl_mmap_pages src;
    hl_hooks h = open_source(&src, 0);
    src.cache.floor = 0;
    src.cache.percent = 100;
    src.cache.decay_ms = 20;
    void *keep = h.alloc_page(h.ctx, 1);   /* so the bound is not zero */
    void *a = h.alloc_page(h.ctx, 3);
    h.free_page(h.ctx, a, 3);
    CHECK(src.bytes_cached == 0 || src.bytes_cached == 3 * page, "kept or not, by the bound");
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    void *b = h.alloc_page(h.ctx, 1);      /* a page call after the decay age */
    h.free_page(h.ctx, b, 1);              /* enforcement runs on free_page */
    CHECK(src.bytes_cached <= page, "an idle cache decays: %zu cached", src.bytes_cached);
    h.free_page(h.ctx, keep, 1);
    hl_mmap_pages_release_cache(&src);

    h = open_source(&src, 0);
    src.cache.enabled = 0;
    a = h.alloc_page(h.ctx, 2);
    h.free_page(h.ctx, a, 2);
    CHECK(src.bytes_cached == 0 && src.unmap_calls == 1, "off: straight back to the system");

    h = open_source(&src, 0);
    size_t big = src.cache.run_max / page + 1;
    a = h.alloc_page(h.ctx, big);
    h.free_page(h.ctx, a, big);
    CHECK(src.bytes_cached == 0 && src.unmap_calls == 1, "a run over run_max is never kept");
}

static void test_limit(void) {
    hl_mmap_pages src;
    hl_hooks h = open_source(&src, 8 * page);
    void *a = h.alloc_page(h.ctx, 6);
    CHECK(a && h.alloc_page(h.ctx, 3) == NULL, "past the limit: NULL");
    h.free_page(h.ctx, a, 6);
    a = h.alloc_page(h.ctx, 8);
    CHECK(a != NULL, "cached bytes do not count against the limit");
    void *r = h.resize_page ? h.resize_page(h.ctx, a, 8, 9) : NULL;
    CHECK(r == NULL && src.bytes_mapped == 8 * page, "resize past the limit fails, the run untouched");
    h.free_page(h.ctx, a, 8);
    hl_mmap_pages_release_cache(&src);
}

static void test_resize(void) {
    hl_mmap_pages src;
    hl_hooks h = open_source(&src, 0);
    CHECK(h.resize_page != NULL, "the mmap source can resize");
    if (!h.resize_page) return;
    const size_t n = 64;
    unsigned char *a = h.alloc_page(h.ctx, n);
    for (size_t i = 0; i < n * page; i++) a[i] = (unsigned char)(i * 13);
    unsigned char *b = h.resize_page(h.ctx, a, n, 4 * n);
    CHECK(b != NULL && src.bytes_mapped == 4 * n * page && src.remap_calls >= 1, "grown");
    int same = 1;
    for (size_t i = 0; b && i < n * page; i++) same &= b[i] == (unsigned char)(i * 13);
    CHECK(same, "bytes kept over the move");
    CHECK(b && reads_zero(b + n * page, 3 * n * page), "grown pages read as zero");
    unsigned char *c = h.resize_page(h.ctx, b, 4 * n, 2);
    CHECK(c == b && src.bytes_mapped == 2 * page, "shrunk in place");
    CHECK(c && c[page + 5] == (unsigned char)((page + 5) * 13), "shrink keeps the front");
    h.free_page(h.ctx, c, 2);
    CHECK(src.bytes_mapped == 0, "all back");
    hl_mmap_pages_release_cache(&src);
}

/* Resident pages of [p, p + n), by mincore. */
static size_t resident_pages(void *p, size_t n) {
    unsigned char vec[64];
    size_t pages = n / page, count = 0;
    if (pages > sizeof vec || mincore(p, n, vec) != 0) return (size_t)-1;
    for (size_t i = 0; i < pages; i++) count += vec[i] & 1;
    return count;
}

static void test_prefault(void) {
    hl_mmap_pages src;
    hl_hooks h = open_source(&src, 0);
    CHECK(h.prefault_page != NULL, "the mmap source offers prefault_page");
    src.cache.prefault = 8 * page;
    void *a = h.alloc_page(h.ctx, 4);
    void *b = h.alloc_page(h.ctx, 32);
    CHECK(resident_pages(a, 4 * page) == 0 && src.bytes_prefaulted == 0, "alloc_page alone faults nothing in");
    h.prefault_page(h.ctx, a, 4);
    h.prefault_page(h.ctx, b, 32);
    /* kernels before 5.14 have no MADV_POPULATE_WRITE: then nothing is prefaulted */
    if (src.bytes_prefaulted == 0) {
        CHECK(resident_pages(a, 4 * page) == 0, "nothing prefaulted, nothing resident");
    } else {
        CHECK(src.bytes_prefaulted == 12 * page, "a short run whole, a long one up to the bound: %zu", src.bytes_prefaulted);
        CHECK(resident_pages(a, 4 * page) == 4, "the short run is resident before it is touched");
        CHECK(resident_pages(b, 32 * page) == 8, "the long one only its first 8 pages");
    }
    CHECK(reads_zero(a, 4 * page) && reads_zero(b, 32 * page), "prefaulted pages still read as zero");
    h.free_page(h.ctx, a, 4);
    h.free_page(h.ctx, b, 32);
    hl_mmap_pages_release_cache(&src);
    size_t before = src.bytes_prefaulted;
    src.cache.prefault = 0;
    void *c = h.alloc_page(h.ctx, 4);
    h.prefault_page(h.ctx, c, 4);
    CHECK(src.bytes_prefaulted == before && resident_pages(c, 4 * page) == 0, "prefault 0: pages fault in on touch");
    h.free_page(h.ctx, c, 4);
    src.cache.enabled = 0;
    src.cache.prefault = 8 * page;
    c = h.alloc_page(h.ctx, 4);
    h.prefault_page(h.ctx, c, 4);
    CHECK(src.bytes_prefaulted == before, "no cache, no prefault: the plain mmap source");
    h.free_page(h.ctx, c, 4);
}

/* Field by field: the struct has padding, which memcmp would read. */
static int same_config(const hl_page_cache_config *a, const hl_page_cache_config *b) {
    return a->enabled == b->enabled && a->floor == b->floor && a->percent == b->percent && a->decay_ms == b->decay_ms &&
           a->run_max == b->run_max && a->prefault == b->prefault;
}

static void test_parse(void) {
    hl_page_cache_config c = hl_page_cache_defaults();
    CHECK(hl_page_cache_parse("off", &c) == 0 && !c.enabled, "off");
    CHECK(hl_page_cache_parse("on", &c) == 0 && c.enabled, "on");
    CHECK(hl_page_cache_parse("floor=1M,percent=25,decay=0,run_max=64K,prefault=2M", &c) == 0, "a full list");
    CHECK(c.floor == (1u << 20) && c.percent == 25 && c.decay_ms == 0 && c.run_max == (64u << 10) && c.prefault == (2u << 20),
          "its values");
    hl_page_cache_config before = c;
    const char *bad[] = {"percent=101", "floor=", "floor=1X", "size=4", "floor=12,", "decay=-1", "floor=99999999999999999999G"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(hl_page_cache_parse(bad[i], &c) == -1, "rejects %s", bad[i]);
        CHECK(same_config(&c, &before), "and leaves the config alone (%s)", bad[i]);
    }
}

/* Whether [p, p + page) is mapped: a mapping may be put there only if not
 * (msync would tell as well, but valgrind flags a syscall on unmapped bytes). */
static int is_mapped(void *p) {
    void *q = mmap(p, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == MAP_FAILED) return 1;
    munmap(q, page);
    return q != p; /* a kernel without NOREPLACE puts it elsewhere: say mapped */
}

/* With the lock held, a munmap and a prefault wait for its release; without it
 * (or with the lock off) they run at once. */
static void test_calls_wait_for_the_lock(void) {
    hl_mmap_pages src;
    hl_mmap_pages_init(&src, 0, 0);
    hl_hooks h = hl_mmap_pages_hooks(&src, 1);
    src.cache.enabled = 0; /* every run given back goes to the system */
    unsigned char *a = h.alloc_page(h.ctx, 4);
    unsigned char *b = h.alloc_page(h.ctx, 64);
    CHECK(a && b, "two runs");
    h.lock(h.ctx);
    h.free_page(h.ctx, a, 4);
    CHECK(src.unmap_calls == 0 && src.deferred_count == 1 && src.bytes_mapped == 64 * page,
          "under the lock, the run is given back but not yet unmapped");
    CHECK(is_mapped(a), "still mapped while the lock is held");
    src.cache.enabled = 1;
    src.warm_run = NULL;
    h.prefault_page(h.ctx, b, 64);
    CHECK(src.bytes_prefaulted == 0 && src.deferred_count == 2, "the prefault waits too");
    h.unlock(h.ctx);
    CHECK(src.unmap_calls == 1 && src.deferred_count == 0, "the release ran the munmap");
    CHECK(!is_mapped(a), "and the run is gone");
    CHECK(src.bytes_prefaulted > 0, "and the prefault");
    src.cache.enabled = 0;
    h.free_page(h.ctx, b, 64); /* not under the lock: at once */
    CHECK(src.unmap_calls == 2 && src.deferred_count == 0, "without the lock the munmap runs at once");
    /* more calls than the slots: the rest run at once, none is lost */
    unsigned char *runs[HL_PAGE_DEFERRED_SLOTS + 3];
    for (size_t i = 0; i < HL_PAGE_DEFERRED_SLOTS + 3; i++) runs[i] = h.alloc_page(h.ctx, 1);
    h.lock(h.ctx);
    for (size_t i = 0; i < HL_PAGE_DEFERRED_SLOTS + 3; i++) h.free_page(h.ctx, runs[i], 1);
    CHECK(src.deferred_count == HL_PAGE_DEFERRED_SLOTS && src.unmap_calls == 2 + 3, "the slots fill, the rest run at once");
    h.unlock(h.ctx);
    CHECK(src.unmap_calls == 2 + HL_PAGE_DEFERRED_SLOTS + 3 && src.bytes_mapped == 0, "every run unmapped");
    hl_mmap_pages_release_cache(&src);
}

/* One byte map over one run: what the run marks reads back, the byte past it
 * is not the run's, a cleared run reads 0. */
static void check_run(hl_byte_map *map, unsigned char *run, size_t bytes, const char *how) {
    enum { SHIFT = 5 };
    CHECK(hl_byte_map_reserve(map, run, bytes, SHIFT) == 0, "%s: the run's leaf", how);
    for (size_t off = 0; off < bytes; off += 32) *hl_byte_map_at(map, run + off, SHIFT) = (uint8_t)(1 + off / 32 % 200);
    size_t wrong = 0;
    for (size_t off = 0; off < bytes; off += 32) {
        wrong += *hl_byte_map_at(map, run + off + 31, SHIFT) != (uint8_t)(1 + off / 32 % 200);
        wrong += hl_byte_map_at_mapped(map, run + off, SHIFT) != hl_byte_map_at(map, run + off, SHIFT);
    }
    CHECK(wrong == 0, "%s: %zu granules read back wrong", how, wrong);
    uint8_t *past = hl_byte_map_at(map, run + bytes, SHIFT);
    CHECK(past == NULL || *past == 0, "%s: the byte past the run is not the run's", how);
    hl_byte_map_clear(map, run, bytes, SHIFT);
    wrong = 0;
    for (size_t off = 0; off < bytes; off += 32) wrong += *hl_byte_map_at(map, run + off, SHIFT) != 0;
    CHECK(wrong == 0, "%s: %zu granules not cleared", how, wrong);
}

/* A byte map as leaves, or flat (where the host allows it): a run where the
 * kernel puts it, and for a flat map one outside its window (a leaf of its
 * own) and an address in the window that no leaf covers (reads 0, without a
 * fault); past 48 bits, no byte. */
static void check_byte_map(hl_byte_map *map, const char *how) {
    size_t bytes = 64 * page;
    unsigned char *run = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(run != MAP_FAILED, "%s: a run to mark", how);
    if (run == MAP_FAILED) return;
    uintptr_t off, span = atomic_load(&map->flat_span);
    CHECK(span == 0 || hl_byte_map_in_window(map, (uintptr_t)run, &off), "%s: the kernel's next run is in the window", how);
    check_run(map, run, bytes, how);
    munmap(run, bytes);
    if (span) {
        uintptr_t region = (uintptr_t)1 << HL_PAGE_MAP_REGION_SHIFT;
        uintptr_t empty = map->flat_lo + region; /* the window's second region: the kernel puts nothing there soon */
        uint8_t *b = hl_byte_map_at(map, (void *)empty, 5);
        CHECK(b != NULL && *b == 0 && hl_byte_map_leaf(map, empty, 5, 0) == NULL, "%s: no leaf in the window: reads 0", how);
        CHECK(!hl_byte_map_in_window(map, map->flat_lo - 1, &off) && !hl_byte_map_in_window(map, map->flat_lo + span, &off),
              "%s: the window ends where it says", how);
        void *hint = (void *)(map->flat_lo > 64 * region ? map->flat_lo - 32 * region : map->flat_lo + span + 32 * region);
#ifdef MAP_FIXED_NOREPLACE
        unsigned char *outside = mmap(hint, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (outside != MAP_FAILED) {
            CHECK(!hl_byte_map_in_window(map, (uintptr_t)outside, &off), "%s: a run outside the window", how);
            check_run(map, outside, bytes, "outside the window");
            munmap(outside, bytes);
        }
#endif
    } else {
        uintptr_t far = ((uintptr_t)run ^ ((uintptr_t)1 << 46)) & ~(uintptr_t)4095; /* another 4 GiB region, no leaf */
        CHECK(hl_byte_map_at(map, (void *)far, 5) == NULL, "%s: no leaf: no byte", how);
    }
    CHECK(hl_byte_map_at(map, (void *)((uintptr_t)1 << 48), 5) == NULL, "%s: past 48 bits: no byte", how);
}

static hl_byte_map leaves_map, flat_map;
static void test_byte_maps(void) {
    check_byte_map(&leaves_map, "leaves");
    if (hl_byte_map_flat(&flat_map, 5) == 0) check_byte_map(&flat_map, "flat");
    else printf("test_pages: this host refuses the flat reservation: leaves only\n");
}

int main(void) {
    page = hl_system_page_size();
    test_hit_is_cleared_and_counted();
    test_calls_wait_for_the_lock();
    test_bound_follows_the_heap();
    test_decay_and_off_and_run_max();
    test_limit();
    test_resize();
    test_prefault();
    test_parse();
    test_byte_maps();
    return driver_finish("test_pages");
}
