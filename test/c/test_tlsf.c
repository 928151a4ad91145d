/*
 * test_tlsf.c — heaplab's TLSF: edge cases, pools, a shadow-model random test,
 * the checker against deliberate corruption, and a 2-thread stress.
 * Prints nothing per passing check; the last line is the tally.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "../../native/allocator.h"
#include "driver.h"
#include "../../native/pages/pages.h"
#include "../../vendor/tlsf/tlsf.h"

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)

static int aligned_to(const void *p, size_t align) { return ((uintptr_t)p & (align - 1)) == 0; }

static size_t control_bytes(const hl_mmap_pages *src) {
    return (tlsf_size() + src->page_size - 1) / src->page_size * src->page_size;
}

static tlsf_t heap_new(hl_mmap_pages *src, size_t limit, int locked) {
    if (hl_mmap_pages_init(src, 0, limit) != 0) return NULL;
    hl_hooks hooks = hl_mmap_pages_hooks(src, locked);
    return tlsf_create_with_hooks(&hooks);
}

static void heap_end(tlsf_t t, hl_mmap_pages *src, const char *what) {
    CHECK(tlsf_check(t) == 0, "%s: heap broken before destroy", what);
    tlsf_destroy(t);
    CHECK(src->bytes_mapped == 0, "%s: %zu bytes still mapped after destroy", what, src->bytes_mapped);
    hl_mmap_pages_release_cache(src);
    CHECK(src->bytes_cached == 0 && src->run_count == 0, "%s: the cache is empty after release", what);
}

/* Pattern fill: word k of a block with id `id` holds id * K + k; a short tail
 * holds the leading bytes of the next word, so any prefix of a filled block
 * verifies against the same pattern. */
static uint64_t pattern_word(uint64_t id, size_t k) { return id * 0x9E3779B97F4A7C15ull + k; }
static void fill(void *p, size_t n, uint64_t id) {
    uint64_t *w = p;
    for (size_t k = 0; k < n / 8; k++) w[k] = pattern_word(id, k);
    uint64_t last = pattern_word(id, n / 8);
    memcpy((unsigned char *)p + n / 8 * 8, &last, n % 8);
}
static int verify(const void *p, size_t n, uint64_t id) {
    const uint64_t *w = p;
    for (size_t k = 0; k < n / 8; k++)
        if (w[k] != pattern_word(id, k)) return 0;
    uint64_t last = pattern_word(id, n / 8);
    return memcmp((const unsigned char *)p + n / 8 * 8, &last, n % 8) == 0;
}

/* ---- walkers ------------------------------------------------------------- */

typedef struct walk_sum { size_t blocks, used, bytes; } walk_sum;
static void sum_walker(void *ptr, size_t size, int used, void *user) {
    walk_sum *s = user;
    (void)ptr;
    s->blocks++;
    s->used += used != 0;
    s->bytes += size + tlsf_alloc_overhead();
}
static size_t pool_bytes(pool_t pool) {
    walk_sum s = { 0, 0, 0 };
    tlsf_walk_pool(pool, sum_walker, &s);
    return s.bytes + tlsf_pool_overhead();
}

/* ---- tests --------------------------------------------------------------- */

static void test_constants(void) {
    CHECK(tlsf_align_size() == 16, "align %zu", tlsf_align_size());
    CHECK(tlsf_block_size_max() >= ((size_t)1 << 62) - 16, "max %zu: capped", tlsf_block_size_max());
    CHECK(tlsf_block_size_min() >= 16, "min %zu", tlsf_block_size_min());
    CHECK(tlsf_alloc_overhead() == 16, "overhead %zu", tlsf_alloc_overhead());
    CHECK(tlsf_pool_overhead() == 80, "pool overhead %zu", tlsf_pool_overhead());
}

static void test_zero(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);
    CHECK(t != NULL, "create");
    void *a = tlsf_malloc(t, 0), *b = tlsf_malloc(t, 0);
    CHECK(a && b && a != b, "malloc(0) gave %p %p", a, b);
    CHECK(aligned_to(a, 16) && aligned_to(b, 16), "malloc(0) unaligned");
    CHECK(tlsf_usable_size(t, a) >= tlsf_block_size_min() && tlsf_usable_size(t, NULL) == 0, "usable_size");
    CHECK(tlsf_check(t) == 0, "check after malloc(0)");
    tlsf_free(t, a);
    tlsf_free(t, b);
    tlsf_free(t, NULL);
    heap_end(t, &src, "zero");
}

static void test_huge(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 1 * GiB, 0);
    const size_t sizes[] = { SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX,
                             tlsf_block_size_max() + 1, 5 * GiB };
    char *keep = tlsf_malloc(t, 100);
    memset(keep, 0x5a, 100);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        CHECK(tlsf_malloc(t, n) == NULL, "malloc(%zu) not NULL", n);
        CHECK(tlsf_memalign(t, 64, n) == NULL, "memalign(64, %zu) not NULL", n);
        CHECK(tlsf_memalign(t, 1 * MiB, n) == NULL, "memalign(1M, %zu) not NULL", n);
        CHECK(tlsf_calloc(t, 1, n) == NULL, "calloc(1, %zu) not NULL", n);
        CHECK(tlsf_realloc(t, keep, n) == NULL, "realloc(p, %zu) not NULL", n);
        CHECK(tlsf_realloc(t, NULL, n) == NULL, "realloc(NULL, %zu) not NULL", n);
    }
    CHECK(tlsf_memalign(t, (size_t)1 << 62, 16) == NULL, "absurd alignment served");
    CHECK(tlsf_memalign(t, 48, 16) == NULL, "non power-of-two alignment served");
    int intact = 1;
    for (int i = 0; i < 100; i++) intact &= keep[i] == 0x5a;
    CHECK(intact, "failed realloc touched the block");
    CHECK(src.bytes_mapped <= 1 * GiB, "mapped %zu over the limit", src.bytes_mapped);
    CHECK(tlsf_check(t) == 0, "check after huge requests");
    void *p = tlsf_malloc(t, 1 * MiB);
    CHECK(p != NULL, "heap unusable after a refused 5 GiB request");
    tlsf_free(t, p);
    tlsf_free(t, keep);
    heap_end(t, &src, "huge");
}

/* A block over 4 GiB on the real mmap source: only virtual memory, touch two pages. */
static void test_beyond_4g(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);
    size_t n = 5 * GiB;
    unsigned char *p = tlsf_malloc(t, n);
    CHECK(p != NULL, "5 GiB block refused: a 4 GiB cap?");
    if (p) {
        p[0] = 1;
        p[n - 1] = 2;
        CHECK(p[0] == 1 && p[n - 1] == 2, "first/last byte");
        CHECK(tlsf_usable_size(t, p) >= n, "usable %zu < %zu", tlsf_usable_size(t, p), n);
        CHECK(tlsf_check(t) == 0, "check with a 5 GiB block");
        void *q = tlsf_realloc(t, p, n - 4 * GiB);   /* shrink in place */
        CHECK(q == p, "shrinking 5 GiB moved the block");
        tlsf_free(t, q);
    }
    void *a = tlsf_memalign(t, 1 * GiB, 4 * GiB + 1);
    CHECK(a && aligned_to(a, 1 * GiB), "4 GiB block at 1 GiB alignment: %p", a);
    tlsf_free(t, a);
    heap_end(t, &src, "beyond 4G");
}

static void test_align(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);
    const size_t sizes[] = { 0, 1, 24, 100, 4000, 70000 };
    enum { NS = sizeof sizes / sizeof sizes[0] };
    void *live[24 * NS];
    size_t nlive = 0;
    uint64_t id = 1;
    for (size_t align = 1; align <= 8 * MiB; align <<= 1) {
        for (size_t i = 0; i < NS; i++) {
            void *p = tlsf_memalign(t, align, sizes[i]);
            CHECK(p != NULL, "memalign(%zu, %zu) NULL", align, sizes[i]);
            if (!p) continue;
            CHECK(aligned_to(p, align < 16 ? 16 : align), "memalign(%zu, %zu) = %p", align, sizes[i], p);
            CHECK(tlsf_usable_size(t, p) >= sizes[i], "usable %zu < %zu", tlsf_usable_size(t, p), sizes[i]);
            fill(p, sizes[i], id++);
            live[nlive++] = p;
        }
        CHECK(tlsf_check(t) == 0, "check after alignment %zu", align);
    }
    id = 1;
    for (size_t k = 0; k < nlive; k++) {
        CHECK(verify(live[k], sizes[k % NS], id), "block %zu clobbered", k);
        id++;
        tlsf_free(t, live[k]);
    }
    CHECK(tlsf_check(t) == 0, "check after freeing aligned blocks");
    heap_end(t, &src, "align");
}

static void test_realloc(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);

    char *a = tlsf_malloc(t, 1000);
    fill(a, 1000, 7);
    char *s = tlsf_realloc(t, a, 100);
    CHECK(s == a, "shrink moved");
    CHECK(verify(s, 100, 7), "shrink lost contents");
    CHECK(tlsf_check(t) == 0, "check after shrink");

    /* grow in place into a free next block */
    char *x = tlsf_malloc(t, 100), *y = tlsf_malloc(t, 2000), *z = tlsf_malloc(t, 100);
    fill(x, 100, 8);
    tlsf_free(t, y);
    char *g = tlsf_realloc(t, x, 1500);
    CHECK(g == x, "grow into free next block moved %p -> %p", (void *)x, (void *)g);
    CHECK(verify(g, 100, 8), "grow lost contents");
    CHECK(tlsf_usable_size(t, g) >= 1500, "grown usable %zu", tlsf_usable_size(t, g));
    CHECK(tlsf_check(t) == 0, "check after grow in place");
    /* and again: the split-off tail of y is still free */
    char *g2 = tlsf_realloc(t, g, 2000);
    CHECK(g2 == g, "second grow in place moved");
    CHECK(verify(g2, 100, 8), "second grow lost contents");

    /* grow with a used neighbour: moves, keeps contents */
    fill(z, 100, 9);
    char *w = tlsf_malloc(t, 64);   /* z's neighbour is now used */
    char *m = tlsf_realloc(t, z, 50000);
    CHECK(m != NULL && verify(m, 100, 9), "moving grow lost contents");
    CHECK(tlsf_check(t) == 0, "check after moving grow");

    /* realloc(NULL, n) and realloc(p, 0) */
    void *r = tlsf_realloc(t, NULL, 48);
    CHECK(r != NULL, "realloc(NULL, 48)");
    void *r0 = tlsf_realloc(t, r, 0);
    CHECK(r0 == r && tlsf_usable_size(t, r0) >= tlsf_block_size_min(), "realloc(p, 0) = %p", r0);

    /* aligned blocks keep their alignment when resized in place */
    void *al = tlsf_memalign(t, 4096, 3000);
    void *al2 = tlsf_realloc(t, al, 100);
    CHECK(al2 == al && aligned_to(al2, 4096), "aligned shrink");
    void *al3 = tlsf_realloc(t, al2, 2000);
    CHECK(al3 == al && aligned_to(al3, 4096), "aligned regrow in place");

    /* a realloc or free of a block that is free already (a program's stale
     * pointer) is refused: the heap is untouched, nothing is handed out twice */
    char *left = tlsf_malloc(t, 200), *gone = tlsf_malloc(t, 200), *right = tlsf_malloc(t, 200);
    tlsf_free(t, gone);
    CHECK(tlsf_realloc(t, gone, 100) == NULL && tlsf_realloc(t, gone, 5000) == NULL, "realloc of a freed block succeeded");
    tlsf_free(t, gone);
    CHECK(tlsf_check(t) == 0, "check after a stale realloc and free");
    char *again = tlsf_malloc(t, 200), *other = tlsf_malloc(t, 200);
    CHECK(again == gone && other != gone, "the freed block came back %s", other == gone ? "twice" : "not first");
    tlsf_free(t, left);
    tlsf_free(t, right);
    tlsf_free(t, again);
    tlsf_free(t, other);

    /* realloc failing under a limit leaves the block alone */
    tlsf_free(t, s);
    tlsf_free(t, g2);
    tlsf_free(t, w);
    tlsf_free(t, m);
    tlsf_free(t, r0);
    tlsf_free(t, al3);
    heap_end(t, &src, "realloc");

    tlsf_t u = heap_new(&src, 256 * KiB, 0);
    char *p = tlsf_malloc(u, 1000);
    fill(p, 1000, 10);
    CHECK(tlsf_realloc(u, p, 1 * MiB) == NULL, "realloc beyond the limit succeeded");
    CHECK(verify(p, 1000, 10) && tlsf_usable_size(u, p) >= 1000, "failed realloc changed the block");
    tlsf_free(u, p);
    heap_end(u, &src, "realloc limit");
}

static void test_calloc(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);
    CHECK(tlsf_calloc(t, SIZE_MAX / 2 + 1, 2) == NULL, "calloc overflow");
    CHECK(tlsf_calloc(t, (size_t)1 << 32, (size_t)1 << 32) == NULL, "calloc 2^64");
    CHECK(tlsf_calloc(t, SIZE_MAX, SIZE_MAX) == NULL, "calloc max*max");
    void *z = tlsf_calloc(t, 0, 0);
    CHECK(z != NULL, "calloc(0, 0)");
    tlsf_free(t, z);

    /* a reused block is cleared */
    unsigned char *p = tlsf_malloc(t, 1000);
    memset(p, 0xAB, 1000);
    tlsf_free(t, p);
    unsigned char *q = tlsf_calloc(t, 10, 100);
    CHECK(q == p, "calloc did not reuse the freed block (test is weaker)");
    int zero = 1;
    for (int i = 0; i < 1000; i++) zero &= q[i] == 0;
    CHECK(zero, "calloc returned dirty reused memory");

    /* fresh pool: zero everywhere, including where free-list links were */
    size_t n = 3 * MiB;
    unsigned char *f = tlsf_calloc(t, n, 1);
    CHECK(f != NULL, "calloc 3 MiB");
    size_t nonzero = 0;
    for (size_t i = 0; f && i < n; i++) nonzero += f[i] != 0;
    CHECK(nonzero == 0, "fresh calloc has %zu non-zero bytes", nonzero);
    if (f) memset(f, 0xCD, n);
    tlsf_free(t, f);
    /* the same 3 MiB again, now reused (the pool is kept as the spare) */
    f = tlsf_calloc(t, 1, n);
    nonzero = 0;
    for (size_t i = 0; f && i < n; i++) nonzero += f[i] != 0;
    CHECK(f && nonzero == 0, "reused calloc has %zu non-zero bytes", nonzero);
    tlsf_free(t, f);
    tlsf_free(t, q);
    heap_end(t, &src, "calloc");
}

static void test_pools_given_back(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);
    enum { N = 200 };
    void *blocks[N];
    for (int i = 0; i < N; i++) blocks[i] = tlsf_malloc(t, 20 * KiB + (size_t)i * 64);
    size_t grown = src.bytes_mapped;
    CHECK(src.map_calls > 10, "expected many pools, got %zu maps", src.map_calls);
    for (int i = 0; i < N; i += 2) tlsf_free(t, blocks[i]);
    CHECK(tlsf_check(t) == 0, "check after freeing half");
    for (int i = N - 1; i > 0; i -= 2) tlsf_free(t, blocks[i]);
    CHECK(tlsf_check(t) == 0, "check after freeing all");
    pool_t kept = tlsf_get_pool(t);
    CHECK(kept != NULL, "no pool kept");
    size_t expect = control_bytes(&src) + (kept ? pool_bytes(kept) : 0);
    CHECK(src.bytes_mapped == expect, "mapped %zu, expected control + one pool = %zu (peak %zu)",
          src.bytes_mapped, expect, grown);
    /* every alloc_page but the control's and the kept pool's was given back
     * (to the cache or the system) */
    size_t handed = src.map_calls + src.cache_hits, returned = src.unmap_calls + src.run_count;
    CHECK(src.bytes_cached + src.bytes_released >= grown - expect, "pages given back: %zu cached + %zu released",
          src.bytes_cached, src.bytes_released);
    CHECK(handed >= 2 && returned <= handed - 2, "alloc_page %zu, back %zu", handed, returned);
    heap_end(t, &src, "pools");

    /* alloc/free across a pool boundary does not map and unmap each time */
    t = heap_new(&src, 0, 0);
    void *fill_first = tlsf_malloc(t, 60 * KiB);
    size_t maps = src.map_calls;
    for (int i = 0; i < 100; i++) {
        void *p = tlsf_malloc(t, 100 * KiB);
        CHECK(p != NULL, "boundary malloc %d", i);
        tlsf_free(t, p);
    }
    CHECK(src.map_calls - maps <= 1, "boundary thrash: %zu maps", src.map_calls - maps);
    tlsf_free(t, fill_first);
    CHECK(tlsf_check(t) == 0, "check after boundary loop");
    heap_end(t, &src, "boundary");
}

/* A request that needs a new pool gets one pool that fits it, in one map call:
 * the pool covers the request rounded up to its size class (the search's view). */
static void test_pool_sizing(void) {
    static const long deltas[] = { -17, -16, -1, 0, 1, 15, 16, 17 };
    size_t bad_fail = 0, bad_maps = 0;
    for (int k = 5; k <= 26; k++) {
        for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
            size_t n = (size_t)((long)((size_t)1 << k) + deltas[d]);
            for (int aligned = 0; aligned < 2; aligned++) {
                hl_mmap_pages src;
                tlsf_t t = heap_new(&src, 0, 0);
                size_t maps = src.map_calls;
                void *p = aligned ? tlsf_memalign(t, 8192, n) : tlsf_malloc(t, n);
                if (!p || tlsf_usable_size(t, p) < n || (aligned && !aligned_to(p, 8192))) bad_fail++;
                if (src.map_calls - maps != 1) bad_maps++;
                tlsf_free(t, p);
                if (tlsf_check(t) != 0) bad_fail++;
                tlsf_destroy(t);
            }
        }
    }
    CHECK(bad_fail == 0, "%zu requests failed or came back short on a fresh heap", bad_fail);
    CHECK(bad_maps == 0, "%zu requests needed more than one new pool", bad_maps);

    /* a page size above the system's (64 KiB pages) */
    hl_mmap_pages src;
    CHECK(hl_mmap_pages_init(&src, 65536, 0) == 0, "64 KiB page source");
    hl_hooks hooks = hl_mmap_pages_hooks(&src, 0);
    tlsf_t t = tlsf_create_with_hooks(&hooks);
    CHECK(t != NULL && src.bytes_mapped == 65536, "control in one 64 KiB page");
    void *ps[100];
    for (int i = 0; i < 100; i++) ps[i] = tlsf_malloc(t, (size_t)i * 997);
    CHECK(tlsf_check(t) == 0, "check with 64 KiB pages");
    for (int i = 0; i < 100; i++) tlsf_free(t, ps[i]);
    CHECK(src.bytes_mapped % 65536 == 0, "mapped %zu", src.bytes_mapped);
    heap_end(t, &src, "64K pages");
}

/* caller pools: never given back, removable once free */
static _Alignas(64) unsigned char caller_mem[1 * MiB];
static _Alignas(64) unsigned char caller_mem2[256 * KiB];

static void test_caller_memory(void) {
    CHECK(tlsf_create(caller_mem + 8) == NULL, "misaligned create accepted");
    CHECK(tlsf_create_with_pool(caller_mem, 100) == NULL, "tiny create accepted");
    tlsf_t t = tlsf_create_with_pool(caller_mem, sizeof caller_mem);
    CHECK(t == caller_mem, "create_with_pool");
    pool_t pool = tlsf_get_pool(t);
    CHECK(pool != NULL && (unsigned char *)pool > caller_mem, "get_pool %p", pool);
    CHECK(pool_bytes(pool) + tlsf_size() <= sizeof caller_mem, "pool bigger than the memory");
    void *blocks[200];
    int n = 0;
    while (n < 200 && (blocks[n] = tlsf_malloc(t, 8 * KiB)) != NULL) n++;
    CHECK(n > 100 && n < 128, "%d blocks of 8 KiB in 1 MiB without growth", n);
    CHECK(tlsf_check(t) == 0 && tlsf_check_pool(pool) == 0, "check full caller heap");
    walk_sum s = { 0, 0, 0 };
    tlsf_walk_pool(pool, sum_walker, &s);
    CHECK(s.used == (size_t)n, "walker saw %zu used blocks of %d", s.used, n);
    for (int i = 0; i < n; i++) tlsf_free(t, blocks[i]);
    s = (walk_sum){ 0, 0, 0 };
    tlsf_walk_pool(pool, sum_walker, &s);
    CHECK(s.blocks == 1 && s.used == 0, "free caller pool: %zu blocks, %zu used", s.blocks, s.used);
    CHECK(tlsf_check(t) == 0, "check empty caller heap");

    /* a caller pool in a hooked heap is never given back */
    hl_mmap_pages src;
    tlsf_t h = heap_new(&src, 0, 0);
    pool_t cp = tlsf_add_pool(h, caller_mem2, sizeof caller_mem2);
    CHECK(cp == caller_mem2, "add_pool");
    CHECK(tlsf_add_pool(h, caller_mem2 + 1, 4096) == NULL, "misaligned pool accepted");
    void *a = tlsf_malloc(h, 1000);
    CHECK(a >= (void *)caller_mem2 && a < (void *)(caller_mem2 + sizeof caller_mem2), "served from caller pool");
    size_t unmaps = src.unmap_calls;
    tlsf_free(h, a);
    CHECK(src.unmap_calls == unmaps && src.bytes_mapped == control_bytes(&src), "caller pool given back");
    CHECK(tlsf_check(h) == 0, "check with caller pool");
    tlsf_remove_pool(h, cp);
    CHECK(tlsf_get_pool(h) == NULL, "caller pool not removed");
    void *b = tlsf_malloc(h, 1000);
    CHECK(b && (b < (void *)caller_mem2 || b >= (void *)(caller_mem2 + sizeof caller_mem2)), "removed pool used");
    CHECK(tlsf_check(h) == 0, "check after remove_pool");
    tlsf_free(h, b);
    heap_end(h, &src, "caller pool");
}

static void test_oom_recovery(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 1 * MiB, 0);
    void *blocks[64];
    int n = 0;
    while (n < 64 && (blocks[n] = tlsf_malloc(t, 32 * KiB)) != NULL) n++;
    CHECK(n > 10 && n < 64, "%d blocks of 32 KiB under 1 MiB", n);
    CHECK(src.bytes_mapped <= 1 * MiB, "mapped %zu over limit", src.bytes_mapped);
    CHECK(tlsf_check(t) == 0, "check at out-of-memory");
    CHECK(tlsf_malloc(t, 32 * KiB) == NULL, "still out of memory");
    for (int i = 0; i < n; i += 2) tlsf_free(t, blocks[i]);
    void *again = tlsf_malloc(t, 32 * KiB);
    CHECK(again != NULL, "no recovery after frees");
    tlsf_free(t, again);
    for (int i = 1; i < n; i += 2) tlsf_free(t, blocks[i]);
    void *big = tlsf_malloc(t, 600 * KiB);
    CHECK(big != NULL, "pools not given back: 600 KiB refused after freeing all");
    tlsf_free(t, big);
    heap_end(t, &src, "oom");
}

/* ---- random test against a shadow model ------------------------------------ */

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

typedef struct shadow { unsigned char *p; size_t size; uint64_t id; } shadow;

static int cmp_shadow(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)((const shadow *)a)->p, y = (uintptr_t)((const shadow *)b)->p;
    return x < y ? -1 : x > y;
}

static size_t random_size(void) {
    uint64_t r = rnd() % 1000;
    if (r < 600) return (size_t)(rnd() % 129);
    if (r < 900) return 129 + (size_t)(rnd() % 4000);
    if (r < 995) return 4096 + (size_t)(rnd() % 60000);
    return 65536 + (size_t)(rnd() % (1 * MiB));
}

/* On the mmap source (arena 0) or the arena source (arena 1): the same requests;
 * memalign beyond the page size makes the mmap run depend on where the kernel
 * put each pool, the arena run is the same every time. */
static void test_random(int arena) {
    enum { SLOTS = 2048, OPS = 200000 };
    hl_mmap_pages src;
    hl_arena_pages asrc;
    tlsf_t t;
    size_t *mapped, *peak, *maps, *unmaps, page;
    if (arena) {
        CHECK(hl_arena_pages_init(&asrc, 0, 4 * GiB, 0) == 0, "arena source");
        hl_hooks hooks = hl_arena_pages_hooks(&asrc, 0);
        t = tlsf_create_with_hooks(&hooks);
        mapped = &asrc.bytes_mapped, peak = &asrc.peak_bytes_mapped, page = asrc.page_size;
        maps = &asrc.map_calls, unmaps = &asrc.unmap_calls;
    } else {
        t = heap_new(&src, 0, 0);
        mapped = &src.bytes_mapped, peak = &src.peak_bytes_mapped, page = src.page_size;
        maps = &src.map_calls, unmaps = &src.unmap_calls;
    }
    size_t control = (tlsf_size() + page - 1) / page * page;
    static shadow slot[SLOTS];
    static shadow sorted[SLOTS];
    memset(slot, 0, sizeof slot);
    rng_state = 0x2545F4914F6CDD1Dull;
    uint64_t next_id = 1;
    size_t live = 0, peak_live = 0, bad_content = 0, bad_align = 0, bad_null = 0, bad_overlap = 0;
    size_t bad_check = 0;
    for (int op = 1; op <= OPS; op++) {
        shadow *s = &slot[rnd() % SLOTS];
        if (!s->p) {
            size_t size = random_size(), align = 16;
            uint64_t kind = rnd() % 10;
            void *p;
            if (kind < 7) {
                p = tlsf_malloc(t, size);
            } else if (kind == 7) {
                align = (size_t)1 << (5 + rnd() % 12);   /* 32 .. 64 KiB */
                p = tlsf_memalign(t, align, size);
            } else if (kind == 8) {
                p = tlsf_calloc(t, size, 1);
                if (p) {
                    const unsigned char *b = p;
                    for (size_t i = 0; i < size; i++)
                        if (b[i]) { bad_content++; break; }
                }
            } else {
                p = tlsf_realloc(t, NULL, size);
            }
            if (!p) { bad_null++; continue; }
            if (!aligned_to(p, align) || tlsf_usable_size(t, p) < size) bad_align++;
            s->p = p;
            s->size = size;
            s->id = next_id++;
            fill(p, size, s->id);
            live += size;
            if (live > peak_live) peak_live = live;
        } else if (rnd() % 10 < 6) {
            if (!verify(s->p, s->size, s->id)) bad_content++;
            tlsf_free(t, s->p);
            live -= s->size;
            s->p = NULL;
        } else {
            size_t size = random_size();
            unsigned char *p = tlsf_realloc(t, s->p, size);
            if (!p) { bad_null++; continue; }
            size_t keep = size < s->size ? size : s->size;
            if (!verify(p, keep, s->id)) bad_content++;
            if (!aligned_to(p, 16) || tlsf_usable_size(t, p) < size) bad_align++;
            live = live - s->size + size;
            if (live > peak_live) peak_live = live;
            s->p = p;
            s->size = size;
            s->id = next_id++;
            fill(p, size, s->id);
        }
        if (op % 1000 == 0) {
            if (tlsf_check(t) != 0) bad_check++;
            size_t n = 0;
            for (int i = 0; i < SLOTS; i++)
                if (slot[i].p) sorted[n++] = slot[i];
            qsort(sorted, n, sizeof sorted[0], cmp_shadow);
            for (size_t i = 1; i < n; i++)
                if (sorted[i - 1].p + tlsf_usable_size(t, sorted[i - 1].p) > sorted[i].p) bad_overlap++;
        }
    }
    CHECK(bad_null == 0, "%zu requests failed with no limit", bad_null);
    CHECK(bad_content == 0, "%zu blocks with wrong contents", bad_content);
    CHECK(bad_align == 0, "%zu blocks misaligned or short", bad_align);
    CHECK(bad_overlap == 0, "%zu overlapping blocks", bad_overlap);
    CHECK(bad_check == 0, "tlsf_check failed %zu times", bad_check);
    size_t peak_mapped = *peak;
    for (int i = 0; i < SLOTS; i++)
        if (slot[i].p) {
            if (!verify(slot[i].p, slot[i].size, slot[i].id)) bad_content++;
            tlsf_free(t, slot[i].p);
        }
    CHECK(bad_content == 0, "contents wrong at the final free");
    pool_t kept = tlsf_get_pool(t);
    CHECK(*mapped == control + (kept ? pool_bytes(kept) : 0), "after freeing everything %zu mapped", *mapped);
    printf("info: random %d ops on %s pages: peak mapped %zu / peak live %zu = %.3f (%zu maps, %zu unmaps)\n",
           OPS, arena ? "arena" : "mmap", peak_mapped, peak_live, (double)peak_mapped / (double)peak_live,
           *maps, *unmaps);
    CHECK(tlsf_check(t) == 0, "random: heap broken at the end");
    tlsf_destroy(t);
    CHECK(*mapped == 0, "random: %zu bytes left after destroy", *mapped);
    if (arena) hl_arena_pages_fini(&asrc);
}

/* ---- the checker finds deliberate corruption --------------------------------- */

static void test_checker(void) {
    hl_mmap_pages src;
    tlsf_t t = heap_new(&src, 0, 0);
    char *a = tlsf_malloc(t, 200), *b = tlsf_malloc(t, 300), *c = tlsf_malloc(t, 400);
    tlsf_free(t, b);
    CHECK(tlsf_check(t) == 0, "healthy heap flagged");

    size_t *size_word = (size_t *)(a - 8);   /* header: prev_phys, size; payload at +16 */
    size_t saved = *size_word;
    *size_word = saved + 16;
    CHECK(tlsf_check(t) > 0, "size +16 not detected");
    *size_word = saved + 8;
    CHECK(tlsf_check(t) > 0, "unaligned size not detected");
    *size_word = saved + ((size_t)1 << 40);
    CHECK(tlsf_check(t) > 0, "size past the pool end not detected");
    *size_word = (saved & 15) | 16;
    CHECK(tlsf_check(t) > 0, "too small size not detected");
    *size_word = saved;
    CHECK(tlsf_check(t) == 0, "restored size still flagged");

    uint64_t *fl_bitmap = (uint64_t *)t;   /* offset 0 of the control structure */
    uint64_t saved_map = *fl_bitmap;
    *fl_bitmap |= (uint64_t)1 << 40;
    CHECK(tlsf_check(t) > 0, "set bitmap bit over an empty list not detected");
    *fl_bitmap = 0;
    CHECK(tlsf_check(t) > 0, "clear bitmap bits over non-empty lists not detected");
    *fl_bitmap = saved_map;
    CHECK(tlsf_check(t) == 0, "restored bitmap still flagged");

    /* a free block's link pointing outside every pool */
    void **next_free = (void **)b;
    void *saved_link = *next_free;
    static _Alignas(16) char elsewhere[64];
    *next_free = elsewhere;
    CHECK(tlsf_check(t) > 0, "free-list block outside any pool not detected");
    *next_free = saved_link;

    /* the prev-free bit of c (whose neighbour b is free) */
    size_t *c_size = (size_t *)(c - 8);
    *c_size ^= 2;
    CHECK(tlsf_check(t) > 0, "wrong prev-free bit not detected");
    *c_size ^= 2;
    /* prev_phys of c */
    void **c_prev = (void **)(c - 16);
    void *saved_prev = *c_prev;
    *c_prev = a - 16;
    CHECK(tlsf_check(t) > 0, "wrong prev_phys not detected");
    *c_prev = saved_prev;
    /* the head sentinel of the pool */
    size_t *head_size = (size_t *)((char *)tlsf_get_pool(t) + 8);
    *head_size += 16;
    CHECK(tlsf_check(t) > 0 && tlsf_check_pool(tlsf_get_pool(t)) > 0, "broken sentinel not detected");
    *head_size -= 16;
    CHECK(tlsf_check(t) == 0, "restored heap still flagged");

    tlsf_free(t, a);
    tlsf_free(t, c);
    heap_end(t, &src, "checker");
}

/* ---- two threads through the spinlock hooks ------------------------------- */

enum { THREAD_OPS = 60000, THREAD_SLOTS = 256, SHARED_SLOTS = 64 };
static tlsf_t shared_heap;
static _Atomic(uintptr_t) handoff[SHARED_SLOTS];
static atomic_size_t thread_errors;

/* Blocks in the stress test carry their own size and id in the first 16 bytes,
 * so the other thread can verify what it frees. */
static void *stress_alloc(uint64_t *state, uint64_t id) {
    uint64_t r = (*state = *state * 6364136223846793005ull + 1442695040888963407ull) >> 33;
    size_t size = 16 + (size_t)(r % 3000);
    unsigned char *p = (r & 7) == 0 ? tlsf_memalign(shared_heap, 256, size) : tlsf_malloc(shared_heap, size);
    if (!p) return NULL;
    ((uint64_t *)p)[0] = size;
    ((uint64_t *)p)[1] = id;
    fill(p + 16, size - 16, id);
    return p;
}
static void stress_free(void *ptr) {
    uint64_t *h = ptr;
    if (!verify((unsigned char *)ptr + 16, (size_t)h[0] - 16, h[1])) atomic_fetch_add(&thread_errors, 1);
    tlsf_free(shared_heap, ptr);
}

static void *stress_thread(void *arg) {
    uint64_t state = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
    uint64_t id = (uint64_t)(uintptr_t)arg << 40;
    void *mine[THREAD_SLOTS] = { 0 };
    for (int op = 0; op < THREAD_OPS; op++) {
        uint64_t r = (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33;
        size_t i = r % THREAD_SLOTS;
        if (!mine[i]) {
            mine[i] = stress_alloc(&state, ++id);
            if (!mine[i]) atomic_fetch_add(&thread_errors, 1);
        } else if ((r >> 12) % 4 == 0) {   /* hand the block to whichever thread comes next */
            uintptr_t old = atomic_exchange(&handoff[(r >> 16) % SHARED_SLOTS], (uintptr_t)mine[i]);
            mine[i] = NULL;
            if (old) stress_free((void *)old);
        } else if ((r >> 12) % 4 == 1) {   /* realloc, keeping the self-description */
            uint64_t *h = mine[i];
            size_t size = (size_t)h[0], nsize = 16 + (size_t)((r >> 20) % 5000);
            unsigned char *p = tlsf_realloc(shared_heap, mine[i], nsize);
            if (!p) { atomic_fetch_add(&thread_errors, 1); continue; }
            size_t keep = (size < nsize ? size : nsize) - 16;
            if (!verify(p + 16, keep, ((uint64_t *)p)[1])) atomic_fetch_add(&thread_errors, 1);
            ((uint64_t *)p)[0] = nsize;
            ((uint64_t *)p)[1] = ++id;
            fill(p + 16, nsize - 16, id);
            mine[i] = p;
        } else {
            stress_free(mine[i]);
            mine[i] = NULL;
        }
    }
    for (int i = 0; i < THREAD_SLOTS; i++)
        if (mine[i]) stress_free(mine[i]);
    return NULL;
}

static void test_threads(void) {
    hl_mmap_pages src;
    shared_heap = heap_new(&src, 0, 1);
    CHECK(shared_heap != NULL, "create locked heap");
    atomic_store(&thread_errors, 0);
    for (int i = 0; i < SHARED_SLOTS; i++) atomic_store(&handoff[i], 0);
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++) pthread_create(&th[i], NULL, stress_thread, (void *)(i + 1));
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(atomic_load(&thread_errors) == 0, "%zu errors in the 2-thread stress", atomic_load(&thread_errors));
    CHECK(tlsf_check(shared_heap) == 0, "check after threads");
    for (int i = 0; i < SHARED_SLOTS; i++) {
        uintptr_t p = atomic_exchange(&handoff[i], 0);
        if (p) stress_free((void *)p);
    }
    CHECK(atomic_load(&thread_errors) == 0, "handed-off blocks clobbered");
    pool_t kept = tlsf_get_pool(shared_heap);
    CHECK(src.bytes_mapped == control_bytes(&src) + (kept ? pool_bytes(kept) : 0), "threads: pools kept");
    heap_end(shared_heap, &src, "threads");
}

/* ---- determinism over the arena page source ----------------------------------
 * Same requests, same page addresses (as offsets) => same results: what the
 * TypeScript port will be held to. */
enum { DET_OPS = 30000, DET_SLOTS = 512 };

static void det_run(size_t *offsets, size_t *peak) {
    hl_arena_pages arena;
    if (hl_arena_pages_init(&arena, 0, 512 * MiB, 0) != 0) { offsets[0] = SIZE_MAX; return; }
    hl_hooks hooks = hl_arena_pages_hooks(&arena, 0);
    tlsf_t t = tlsf_create_with_hooks(&hooks);
    void *slot[DET_SLOTS] = { 0 };
    uint64_t state = 42;
    for (int op = 0; op < DET_OPS; op++) {
        uint64_t r = driver_rand(&state);
        size_t i = r % DET_SLOTS, size = (size_t)(r >> 20) % ((r >> 60) < 2 ? 200000 : 2000);
        void *p = NULL;
        if (!slot[i]) p = (r >> 16) % 8 == 0 ? tlsf_memalign(t, (size_t)1 << (5 + (r >> 50) % 14), size)
                                             : tlsf_malloc(t, size);
        else if ((r >> 16) % 3 == 0) p = tlsf_realloc(t, slot[i], size);
        else tlsf_free(t, slot[i]);
        slot[i] = p;
        offsets[op] = p ? (size_t)((unsigned char *)p - arena.base) : 0;
    }
    offsets[DET_OPS] = (size_t)tlsf_check(t);
    *peak = arena.peak_bytes_mapped;
    tlsf_destroy(t);
    offsets[DET_OPS + 1] = arena.bytes_mapped;
    hl_arena_pages_fini(&arena);
}

static void test_deterministic(void) {
    static size_t first[DET_OPS + 2], second[DET_OPS + 2];
    size_t peak1 = 0, peak2 = 0;
    det_run(first, &peak1);
    det_run(second, &peak2);
    CHECK(first[0] != SIZE_MAX, "arena page source unavailable");
    CHECK(first[DET_OPS] == 0 && first[DET_OPS + 1] == 0, "arena run: check %zu, left %zu bytes",
          first[DET_OPS], first[DET_OPS + 1]);
    size_t differ = 0;
    for (int i = 0; i < DET_OPS; i++) differ += first[i] != second[i];
    CHECK(differ == 0 && peak1 == peak2, "%zu of %d results differ between identical runs", differ, DET_OPS);
}

/* ---- the adapter ---------------------------------------------------------- */

static void test_adapter(void) {
    const hl_allocator *a = hl_allocator_find("tlsf");
    CHECK(a != NULL && strcmp(a->name, "tlsf") == 0, "hl_allocator_find(\"tlsf\")");
    if (!a) return;
    hl_mmap_pages src;
    hl_mmap_pages_init(&src, 0, 0);
    hl_hooks hooks = hl_mmap_pages_hooks(&src, 1);
    void *h = a->create(&hooks);
    CHECK(h != NULL, "adapter create");
    void *z = a->malloc(h, 0);
    CHECK(z && aligned_to(z, 16), "adapter malloc(0)");
    CHECK(a->usable_size(h, NULL) == 0, "usable_size(NULL)");
    void *m = a->memalign(h, 8, 24);
    CHECK(m && aligned_to(m, 16), "memalign(8) is malloc");
    void *m2 = a->memalign(h, 65536, 24);
    CHECK(m2 && aligned_to(m2, 65536), "memalign(64K)");
    void *r = a->realloc(h, NULL, 100);
    CHECK(r != NULL, "realloc(NULL)");
    r = a->realloc(h, r, 0);
    CHECK(r != NULL, "realloc(p, 0) gives a minimum block");
    CHECK(a->calloc(h, SIZE_MAX, 2) == NULL, "adapter calloc overflow");
    unsigned char *c = a->calloc(h, 7, 9);
    int zero = c != NULL;
    for (int i = 0; c && i < 63; i++) zero &= c[i] == 0;
    CHECK(zero, "adapter calloc zeroed");
    CHECK(a->malloc(h, (size_t)PTRDIFF_MAX + 1) == NULL, "adapter PTRDIFF_MAX+1");
    a->free(h, NULL);
    a->free(h, z);
    a->free(h, m);
    a->free(h, m2);
    a->free(h, r);
    a->free(h, c);
    CHECK(a->check(h) == 0, "adapter check");
    a->destroy(h);
    CHECK(src.bytes_mapped == 0, "adapter destroy left %zu bytes", src.bytes_mapped);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_constants();
    test_zero();
    test_huge();
    test_beyond_4g();
    test_align();
    test_realloc();
    test_calloc();
    test_pools_given_back();
    test_pool_sizing();
    test_caller_memory();
    test_oom_recovery();
    test_random(0);
    test_random(1);
    test_checker();
    test_threads();
    test_deterministic();
    test_adapter();
    return driver_finish("test_tlsf");
}
