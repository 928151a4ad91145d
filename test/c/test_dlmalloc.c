/*
 * test_dlmalloc.c — vendor/dlmalloc on its own: edge cases, realloc in place,
 * upstream 2.8.6's realloc fault on aligned mapped chunks, the mapping
 * threshold, trimming, out-of-memory, a seeded random test against a shadow
 * model, the checker against deliberate corruption, and a 2-thread stress.
 * Built with ASan + UBSan. Prints one line per failure and a summary.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../native/allocator.h"
#include "../../vendor/dlmalloc/dlmalloc.h"
#include "driver.h"
#include "../../native/pages/pages.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

typedef struct fixture {
    hl_mmap_pages src;
    hl_hooks hooks;
    mspace ms;
} fixture;

static int open_heap(fixture *f, size_t limit, int locked) {
    hl_mmap_pages_init(&f->src, 0, limit);
    f->hooks = hl_mmap_pages_hooks(&f->src, locked);
    f->ms = create_mspace_with_hooks(&f->hooks);
    CHECK(f->ms != NULL, "create_mspace_with_hooks failed");
    return f->ms != NULL;
}

static void close_heap(fixture *f) {
    CHECK(mspace_check(f->ms) == 0, "check before destroy: %zu broken", mspace_check(f->ms));
    destroy_mspace(f->ms);
    CHECK(f->src.bytes_mapped == 0, "destroy left %zu bytes mapped", f->src.bytes_mapped);
}

static int aligned_to(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static unsigned char pat(uint64_t seed, size_t i) { return (unsigned char)(seed * 131 + i * 7 + (i >> 9)); }
static void fill(void *p, size_t n, uint64_t seed) {
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++) c[i] = pat(seed, i);
}
static int verify(const void *p, size_t n, uint64_t seed) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat(seed, i)) return 0;
    return 1;
}
static int all_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i]) return 0;
    return 1;
}

/* ---- edge cases ---------------------------------------------------------------- */

static void test_sizes(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    void *a = mspace_malloc(f.ms, 0), *b = mspace_malloc(f.ms, 0);
    CHECK(a && b && a != b, "malloc(0) gives unique blocks (%p, %p)", a, b);
    CHECK(aligned_to(a, 16) && aligned_to(b, 16), "malloc(0) is 16-aligned");
    CHECK(mspace_usable_size(a) >= 16, "malloc(0) usable %zu", mspace_usable_size(a));
    const size_t bad[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX};
    fill(a, 16, 5);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(mspace_malloc(f.ms, bad[i]) == NULL, "malloc(%zu) must fail", bad[i]);
        CHECK(mspace_memalign(f.ms, 64, bad[i]) == NULL, "memalign(64, %zu) must fail", bad[i]);
        CHECK(mspace_memalign(f.ms, MIB, bad[i]) == NULL, "memalign(1M, %zu) must fail", bad[i]);
        CHECK(mspace_realloc(f.ms, a, bad[i]) == NULL, "realloc(p, %zu) must fail", bad[i]);
        CHECK(mspace_calloc(f.ms, 1, bad[i]) == NULL, "calloc(1, %zu) must fail", bad[i]);
    }
    CHECK(verify(a, 16, 5), "failed realloc left the block untouched");
    CHECK(mspace_calloc(f.ms, SIZE_MAX / 2 + 2, 2) == NULL, "calloc overflow");
    CHECK(mspace_calloc(f.ms, (size_t)1 << 33, (size_t)1 << 33) == NULL, "calloc overflow 2^66");
    CHECK(mspace_memalign(f.ms, (size_t)1 << 62, 16) == NULL, "absurd alignment fails");
    void *out = &f;
    CHECK(mspace_posix_memalign(f.ms, &out, 24, 16) == EINVAL && out == &f, "posix_memalign EINVAL untouched");
    CHECK(mspace_posix_memalign(f.ms, &out, 4, 16) == EINVAL && out == &f, "posix_memalign align 4 EINVAL");
    CHECK(mspace_posix_memalign(f.ms, &out, 64, SIZE_MAX) == ENOMEM && out == &f, "posix_memalign ENOMEM untouched");
    CHECK(mspace_posix_memalign(f.ms, &out, 64, 100) == 0 && aligned_to(out, 64), "posix_memalign ok");
    mspace_free(f.ms, out);
    void *r = mspace_memalign(f.ms, 48, 10); /* rounded up to 64, as upstream */
    CHECK(r && aligned_to(r, 64), "memalign(48) rounds up to 64: %p", r);
    mspace_free(f.ms, r);
    CHECK(mspace_usable_size(NULL) == 0, "usable_size(NULL)");
    mspace_free(f.ms, NULL);
    mspace_free(f.ms, a);
    mspace_free(f.ms, b);
    CHECK(mspace_check(f.ms) == 0, "check after edge cases");
    close_heap(&f);
}

static void test_calloc(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    void *guard1 = mspace_malloc(f.ms, 64);
    unsigned char *a = mspace_malloc(f.ms, 200);
    void *guard2 = mspace_malloc(f.ms, 64);
    memset(a, 0xAB, 200);
    mspace_free(f.ms, a);
    unsigned char *c = mspace_calloc(f.ms, 10, 20);
    CHECK(c == a, "calloc reuses the freed chunk (%p vs %p)", (void *)c, (void *)a);
    CHECK(c && all_zero(c, 200), "calloc zeroes a reused chunk");
    /* dirty top: a chunk freed into top, then calloc'd again from top */
    unsigned char *big = mspace_malloc(f.ms, 20000);
    memset(big, 0xCD, 20000);
    mspace_free(f.ms, big);
    unsigned char *z = mspace_calloc(f.ms, 1, 30000);
    CHECK(z && all_zero(z, 30000), "calloc zeroes memory that went back into top");
    /* tree-bin chunk reuse */
    unsigned char *t1 = mspace_malloc(f.ms, 5000);
    void *guard3 = mspace_malloc(f.ms, 64);
    memset(t1, 0xEF, 5000);
    mspace_free(f.ms, t1);
    unsigned char *t2 = mspace_calloc(f.ms, 5000, 1);
    CHECK(t2 && all_zero(t2, 5000), "calloc zeroes a reused tree chunk");
    /* fresh mapped chunk */
    unsigned char *m = mspace_calloc(f.ms, 1, 600 * KIB);
    CHECK(m && all_zero(m, 600 * KIB), "calloc of a mapped chunk is zero");
    memset(m, 1, 600 * KIB);
    mspace_free(f.ms, m);
    m = mspace_calloc(f.ms, 600, KIB);
    CHECK(m && all_zero(m, 600 * KIB), "calloc of a new mapped chunk is zero");
    CHECK(mspace_calloc(f.ms, 0, 100) != NULL, "calloc(0, n) is a block");
    CHECK(mspace_check(f.ms) == 0, "check after calloc");
    mspace_free(f.ms, m);
    mspace_free(f.ms, z);
    mspace_free(f.ms, t2);
    mspace_free(f.ms, guard1);
    mspace_free(f.ms, guard2);
    mspace_free(f.ms, guard3);
    close_heap(&f);
}

static void test_alignments(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    const size_t sizes[] = {0, 1, 100, 5000, 70000, 300000};
    for (size_t align = 16; align <= MIB; align <<= 1) {
        void *keep[sizeof sizes / sizeof *sizes];
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            void *p = mspace_memalign(f.ms, align, sizes[i]);
            keep[i] = p;
            CHECK(p && aligned_to(p, align), "memalign(%zu, %zu) = %p", align, sizes[i], p);
            if (!p) continue;
            CHECK(mspace_usable_size(p) >= sizes[i], "memalign(%zu, %zu) usable %zu", align, sizes[i],
                  mspace_usable_size(p));
            fill(p, sizes[i], align + i);
        }
        CHECK(mspace_check(f.ms) == 0, "check after memalign(%zu): %zu", align, mspace_check(f.ms));
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            if (!keep[i]) continue;
            CHECK(verify(keep[i], sizes[i], align + i), "memalign(%zu, %zu) contents", align, sizes[i]);
            mspace_free(f.ms, keep[i]);
        }
        CHECK(mspace_check(f.ms) == 0, "check after freeing memalign(%zu)", align);
    }
    close_heap(&f);
}

/* Tree bins give the best fit; small bins the exact size. */
static void test_best_fit(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    const size_t sizes[] = {5000, 1500, 3000, 1200, 9000, 2000, 600, 100, 200};
    enum { N = sizeof sizes / sizeof *sizes };
    void *p[N], *g[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = mspace_malloc(f.ms, sizes[i]);
        g[i] = mspace_malloc(f.ms, 16); /* keeps the free chunks apart */
    }
    for (size_t i = 0; i < N; i++) mspace_free(f.ms, p[i]);
    CHECK(mspace_check(f.ms) == 0, "best fit: check with %d free chunks", (int)N);
    const size_t order[] = {3, 0, 6, 2, 8, 5, 1, 7, 4};
    for (size_t k = 0; k < N; k++) {
        size_t i = order[k];
        void *q = mspace_malloc(f.ms, sizes[i] - 4);
        CHECK(q == p[i], "best fit for %zu gives the %zu-byte chunk (%p vs %p)", sizes[i] - 4, sizes[i], q, p[i]);
        p[i] = q;
    }
    CHECK(mspace_check(f.ms) == 0, "best fit: check after reuse");
    for (size_t i = 0; i < N; i++) {
        mspace_free(f.ms, p[i]);
        mspace_free(f.ms, g[i]);
    }
    close_heap(&f);
}

/* ---- realloc ------------------------------------------------------------------------ */

static void test_realloc(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    /* shrink in place */
    void *p = mspace_malloc(f.ms, 1000);
    fill(p, 1000, 1);
    void *guard = mspace_malloc(f.ms, 32);
    void *r = mspace_realloc(f.ms, p, 100);
    CHECK(r == p && verify(r, 100, 1), "shrink in place");
    /* grow into a free next chunk */
    void *a = mspace_malloc(f.ms, 1000), *b = mspace_malloc(f.ms, 1000), *c = mspace_malloc(f.ms, 1000);
    fill(a, 1000, 2);
    mspace_free(f.ms, b);
    r = mspace_realloc(f.ms, a, 1900);
    CHECK(r == a && verify(r, 1000, 2), "grow into a free next chunk keeps the pointer (%p vs %p)", r, a);
    CHECK(mspace_usable_size(r) >= 1900, "grown usable");
    CHECK(mspace_check(f.ms) == 0, "check after grow into next");
    /* grow into top: the last chunk before top */
    void *t = mspace_malloc(f.ms, 1000);
    fill(t, 1000, 3);
    void *t2 = mspace_realloc(f.ms, t, 20000);
    CHECK(t2 == t && verify(t2, 1000, 3), "grow into top keeps the pointer");
    fill(t2, 20000, 4);
    /* moving: a chunk boxed in by in-use neighbours */
    void *m1 = mspace_malloc(f.ms, 100);
    void *m2 = mspace_malloc(f.ms, 100);
    fill(m1, 100, 5);
    void *m3 = mspace_realloc(f.ms, m1, 10000);
    CHECK(m3 && m3 != m1 && verify(m3, 100, 5), "moving realloc keeps contents");
    /* into and out of a mapped chunk */
    void *big = mspace_realloc(f.ms, m3, 400 * KIB);
    CHECK(big && verify(big, 100, 5), "realloc to a mapped chunk keeps contents");
    fill(big, 400 * KIB, 6);
    void *big2 = mspace_realloc(f.ms, big, 300 * KIB);
    CHECK(big2 == big && verify(big2, 300 * KIB, 6), "mapped shrink in place");
    void *small = mspace_realloc(f.ms, big2, 1000);
    CHECK(small && verify(small, 1000, 6), "mapped to small keeps contents");
    CHECK(mspace_realloc(f.ms, NULL, 10) != NULL, "realloc(NULL, n) is malloc");
    void *z = mspace_realloc(f.ms, small, 0);
    CHECK(z == small && mspace_usable_size(z) >= 16, "realloc(p, 0) is a minimum block");
    CHECK(mspace_check(f.ms) == 0, "check after realloc");
    mspace_free(f.ms, z);
    mspace_free(f.ms, guard);
    mspace_free(f.ms, c);
    mspace_free(f.ms, r);
    mspace_free(f.ms, t2);
    mspace_free(f.ms, m2);
    close_heap(&f);
}

/* Upstream 2.8.6 loses the alignment offset when it reallocates an aligned
 * mapped chunk (597,984 usable for 600,000 asked). */
static void test_realloc_aligned_mapped(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    for (size_t align = 8 * KIB; align <= MIB; align <<= 1) {
        unsigned char *p = mspace_memalign(f.ms, align, 300000);
        CHECK(p && aligned_to(p, align), "memalign(%zu, 300000)", align);
        if (!p) continue;
        fill(p, 300000, align);
        unsigned char *r = mspace_realloc(f.ms, p, 600000);
        CHECK(r != NULL, "realloc aligned mapped to 600000 (align %zu)", align);
        if (!r) continue;
        CHECK(mspace_usable_size(r) >= 600000, "align %zu: usable %zu < 600000", align, mspace_usable_size(r));
        CHECK(verify(r, 300000, align), "align %zu: contents kept", align);
        memset(r + 300000, 0x5A, 300000); /* ASan would see an overflow here */
        CHECK(verify(r, 300000, align) && r[599999] == 0x5A, "align %zu: writes stay in the block", align);
        mspace_free(f.ms, r);
    }
    CHECK(mspace_check(f.ms) == 0, "check after aligned mapped realloc");
    close_heap(&f);
}

/* ---- mapped chunks, trimming, out of memory ------------------------------------------ */

static void test_mmap_threshold(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    size_t calls = f.src.map_calls;
    void *below = mspace_malloc(f.ms, 200 * KIB);
    struct dl_mallinfo mi = mspace_mallinfo(f.ms);
    CHECK(below && mi.hblks == 0, "200 KiB comes from a segment (hblks %zu)", mi.hblks);
    void *above = mspace_malloc(f.ms, 256 * KIB);
    mi = mspace_mallinfo(f.ms);
    CHECK(above && mi.hblks == 1 && mi.hblkhd >= 256 * KIB, "256 KiB gets its own pages (hblks %zu)", mi.hblks);
    CHECK(f.src.map_calls == calls + 2, "one mapping per request (%zu)", f.src.map_calls - calls);
    size_t mapped = f.src.bytes_mapped;
    mspace_free(f.ms, above);
    CHECK(f.src.bytes_mapped == mapped - mi.hblkhd, "freeing a mapped chunk unmaps it");
    mi = mspace_mallinfo(f.ms);
    CHECK(mi.hblks == 0 && mi.hblkhd == 0, "no mapped chunks left");
    CHECK(mspace_footprint(f.ms) == f.src.bytes_mapped, "footprint %zu == mapped %zu", mspace_footprint(f.ms),
          f.src.bytes_mapped);
    CHECK(mspace_max_footprint(f.ms) >= mapped, "max footprint");
    mspace_free(f.ms, below);
    CHECK(mspace_check(f.ms) == 0, "check after threshold test");
    close_heap(&f);
}

static void test_trim(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    size_t start = f.src.bytes_mapped;
    enum { N = 3000 };
    static void *p[N];
    uint64_t rng = 77;
    for (size_t i = 0; i < N; i++) {
        size_t sz = 16 + driver_rand(&rng) % (i % 10 == 0 ? 60000 : 2000);
        p[i] = mspace_malloc(f.ms, sz);
        CHECK(p[i] != NULL, "trim: malloc %zu", sz);
    }
    size_t full = f.src.bytes_mapped;
    CHECK(full > start + 8 * MIB, "trim: heap grew (%zu)", full);
    for (size_t i = 0; i < N; i += 2) mspace_free(f.ms, p[i]);
    for (size_t i = 1; i < N; i += 2) mspace_free(f.ms, p[i]);
    size_t after = f.src.bytes_mapped;
    CHECK(after <= start + 512 * KIB + 128 * KIB, "trim: after freeing all, %zu bytes mapped (start %zu)", after,
          start);
    CHECK(mspace_check(f.ms) == 0, "trim: check after free");
    mspace_trim(f.ms, 0);
    CHECK(f.src.bytes_mapped <= start, "trim(0): %zu bytes mapped (start %zu)", f.src.bytes_mapped, start);
    CHECK(mspace_footprint(f.ms) == f.src.bytes_mapped, "trim: footprint");
    struct dl_mallinfo mi = mspace_mallinfo(f.ms);
    CHECK(mi.uordblks == 0 && mi.ordblks == 1, "trim: one free chunk, nothing in use (%zu, %zu)", mi.uordblks,
          mi.ordblks);
    CHECK(mspace_check(f.ms) == 0, "trim: check after trim");
    void *q = mspace_malloc(f.ms, 100000);
    CHECK(q != NULL, "malloc after trim");
    mspace_free(f.ms, q);
    close_heap(&f);
}

static void test_oom(void) {
    fixture f;
    if (!open_heap(&f, 4 * MIB, 0)) return;
    enum { N = 200 };
    void *p[N];
    size_t n = 0;
    while (n < N && (p[n] = mspace_malloc(f.ms, 48 * KIB)) != NULL) fill(p[n], 48 * KIB, n), n++;
    CHECK(n > 40 && n < N, "oom: %zu blocks of 48 KiB under 4 MiB", n);
    CHECK(f.src.bytes_mapped <= 4 * MIB, "oom: under the limit");
    CHECK(mspace_malloc(f.ms, 400 * KIB) == NULL, "oom: mapped chunk fails too");
    CHECK(mspace_memalign(f.ms, MIB, 100) == NULL, "oom: aligned chunk fails too");
    CHECK(mspace_check(f.ms) == 0, "oom: check at the limit");
    for (size_t i = 0; i < n; i++) CHECK(verify(p[i], 48 * KIB, i), "oom: block %zu intact", i);
    for (size_t i = 0; i < n; i += 2) mspace_free(f.ms, p[i]);
    void *q = mspace_malloc(f.ms, 40 * KIB);
    CHECK(q != NULL, "oom: recovery after frees");
    for (size_t i = 1; i < n; i += 2) mspace_free(f.ms, p[i]);
    void *big = mspace_malloc(f.ms, 2 * MIB);
    CHECK(big != NULL, "oom: a 2 MiB block after freeing everything");
    mspace_free(f.ms, big);
    mspace_free(f.ms, q);
    close_heap(&f);
}

/* ---- random test against a shadow model ------------------------------------------------ */

typedef struct slot {
    unsigned char *p;
    size_t size;
    uint64_t seed;
} slot;

static int cmp_slot(const void *a, const void *b) {
    const slot *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p;
}

static size_t random_size(uint64_t *rng) {
    uint64_t r = driver_rand(rng) % 1000;
    if (r < 700) return (size_t)(driver_rand(rng) % 512);
    if (r < 950) return (size_t)(driver_rand(rng) % 8192);
    if (r < 995) return (size_t)(driver_rand(rng) % 131072);
    return (size_t)(driver_rand(rng) % (600 * KIB));
}

static void test_random(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    enum { NSLOT = 2048, OPS = 200000 };
    static slot s[NSLOT], sorted[NSLOT];
    memset(s, 0, sizeof s);
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    size_t live = 0, peak_live = 0, fails = 0, checks_bad = 0, seed = 1;
    for (size_t op = 1; op <= OPS; op++) {
        slot *x = &s[driver_rand(&rng) % NSLOT];
        uint64_t kind = driver_rand(&rng) % 100;
        if (!x->p) {
            size_t size = random_size(&rng), align = 16;
            unsigned char *p;
            if (kind < 70) p = mspace_malloc(f.ms, size);
            else if (kind < 85) {
                p = mspace_calloc(f.ms, 1, size);
                if (p && !all_zero(p, size)) fails++;
            } else {
                align = (size_t)16 << (driver_rand(&rng) % 13); /* 16 .. 64 KiB */
                p = mspace_memalign(f.ms, align, size);
            }
            if (!p || !aligned_to(p, align) || mspace_usable_size(p) < size) { fails++; continue; }
            x->p = p;
            x->size = size;
            x->seed = seed++;
            fill(p, size, x->seed);
            live += size;
        } else if (kind < 70) {
            if (!verify(x->p, x->size, x->seed)) fails++;
            mspace_free(f.ms, x->p);
            live -= x->size;
            x->p = NULL;
        } else {
            size_t size = random_size(&rng);
            unsigned char *p = mspace_realloc(f.ms, x->p, size);
            if (!p || !aligned_to(p, 16) || mspace_usable_size(p) < size) { fails++; continue; }
            if (!verify(p, size < x->size ? size : x->size, x->seed)) fails++;
            live = live - x->size + size;
            x->p = p;
            x->size = size;
            x->seed = seed++;
            fill(p, size, x->seed);
        }
        if (live > peak_live) peak_live = live;
        if (op % 1000 == 0) {
            size_t bad = mspace_check(f.ms);
            if (bad) {
                checks_bad++;
                if (checks_bad < 3) fprintf(stderr, "random: check = %zu at op %zu\n", bad, op);
            }
            size_t n = 0;
            for (size_t i = 0; i < NSLOT; i++)
                if (s[i].p) sorted[n++] = s[i];
            qsort(sorted, n, sizeof *sorted, cmp_slot);
            for (size_t i = 1; i < n; i++)
                if (sorted[i - 1].p + mspace_usable_size(sorted[i - 1].p) > sorted[i].p) fails++;
        }
    }
    CHECK(fails == 0, "random: %zu failures (content, alignment, overlap or NULL)", fails);
    CHECK(checks_bad == 0, "random: %zu checks found broken invariants", checks_bad);
    printf("random: %d ops, peak live %zu bytes, peak mapped %zu bytes, ratio %.3f\n", OPS, peak_live,
           f.src.peak_bytes_mapped, (double)f.src.peak_bytes_mapped / (double)peak_live);
    for (size_t i = 0; i < NSLOT; i++)
        if (s[i].p) {
            if (!verify(s[i].p, s[i].size, s[i].seed)) fails++;
            mspace_free(f.ms, s[i].p);
        }
    CHECK(fails == 0, "random: final contents");
    close_heap(&f);
}

/* ---- the checker finds corruption ------------------------------------------------------- */

static void test_checker(void) {
    fixture f;
    if (!open_heap(&f, 0, 0)) return;
    unsigned char *a = mspace_malloc(f.ms, 100), *b = mspace_malloc(f.ms, 100), *c = mspace_malloc(f.ms, 100);
    unsigned char *d = mspace_malloc(f.ms, 100), *e = mspace_malloc(f.ms, 2000), *g = mspace_malloc(f.ms, 100);
    CHECK(mspace_check(f.ms) == 0, "checker: healthy heap");
    /* a chunk's size word (8 bytes before the user pointer) */
    size_t *head = (size_t *)(void *)(b - 8), saved = *head;
    *head = saved + 32;
    CHECK(mspace_check(f.ms) > 0, "checker: a corrupted size is found");
    *head = saved;
    CHECK(mspace_check(f.ms) == 0, "checker: healthy again");
    /* a free chunk's link (its first user word is fd) */
    mspace_free(f.ms, c);
    CHECK(mspace_check(f.ms) == 0, "checker: after free");
    size_t *fd = (size_t *)(void *)c, saved_fd = *fd;
    *fd = (size_t)(uintptr_t)(a - 16);
    CHECK(mspace_check(f.ms) > 0, "checker: a corrupted small-bin link is found");
    *fd = saved_fd;
    mspace_free(f.ms, e); /* a tree chunk */
    CHECK(mspace_check(f.ms) == 0, "checker: after tree free");
    size_t *tl = (size_t *)(void *)e, saved_t = tl[3]; /* child[1] */
    tl[3] = (size_t)(uintptr_t)(d - 16);
    CHECK(mspace_check(f.ms) > 0, "checker: a corrupted tree link is found");
    tl[3] = saved_t;
    size_t *eh = (size_t *)(void *)(e - 8), saved_eh = *eh;
    *eh = saved_eh - 16; /* free chunk whose foot no longer matches */
    CHECK(mspace_check(f.ms) > 0, "checker: a corrupted free size is found");
    *eh = saved_eh;
    CHECK(mspace_check(f.ms) == 0, "checker: healthy at the end");
    mspace_free(f.ms, a);
    mspace_free(f.ms, b);
    mspace_free(f.ms, d);
    mspace_free(f.ms, g);
    close_heap(&f);
}

/* ---- two threads through the spinlock hooks ---------------------------------------------- */

typedef struct thread_arg {
    mspace ms;
    uint64_t seed;
    size_t fails;
} thread_arg;

static void *stress_thread(void *v) {
    thread_arg *t = v;
    enum { NS = 256, OPS = 60000 };
    slot s[NS];
    memset(s, 0, sizeof s);
    uint64_t rng = t->seed, seed = t->seed * 1000;
    for (size_t op = 0; op < OPS; op++) {
        slot *x = &s[driver_rand(&rng) % NS];
        if (x->p) {
            if (!verify(x->p, x->size, x->seed)) t->fails++;
            if (driver_rand(&rng) % 4 == 0) {
                size_t size = (size_t)(driver_rand(&rng) % 3000);
                unsigned char *p = mspace_realloc(t->ms, x->p, size);
                if (!p) { t->fails++; continue; }
                if (!verify(p, size < x->size ? size : x->size, x->seed)) t->fails++;
                x->p = p;
                x->size = size;
                x->seed = ++seed;
                fill(p, size, x->seed);
            } else {
                mspace_free(t->ms, x->p);
                x->p = NULL;
            }
        } else {
            size_t size = (size_t)(driver_rand(&rng) % (driver_rand(&rng) % 50 ? 1000 : 300000));
            x->p = mspace_malloc(t->ms, size);
            if (!x->p) { t->fails++; continue; }
            x->size = size;
            x->seed = ++seed;
            fill(x->p, size, x->seed);
        }
    }
    for (size_t i = 0; i < NS; i++)
        if (s[i].p) {
            if (!verify(s[i].p, s[i].size, s[i].seed)) t->fails++;
            mspace_free(t->ms, s[i].p);
        }
    return NULL;
}

static void test_threads(void) {
    fixture f;
    if (!open_heap(&f, 0, 1)) return;
    thread_arg args[2] = {{f.ms, 11, 0}, {f.ms, 22, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, stress_thread, &args[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(args[0].fails == 0 && args[1].fails == 0, "threads: %zu + %zu failures", args[0].fails, args[1].fails);
    CHECK(mspace_check(f.ms) == 0, "threads: check after stress");
    close_heap(&f);
}

/* 64 KiB pages: granularity, direct chunks and trimming all round to the page. */
static void test_big_pages(void) {
    fixture f;
    hl_mmap_pages_init(&f.src, 64 * KIB, 0);
    f.hooks = hl_mmap_pages_hooks(&f.src, 0);
    f.ms = create_mspace_with_hooks(&f.hooks);
    CHECK(f.ms != NULL, "64 KiB pages: create");
    if (!f.ms) return;
    enum { N = 64 };
    unsigned char *p[N];
    uint64_t rng = 5;
    for (size_t i = 0; i < N; i++) {
        size_t size = random_size(&rng), align = (size_t)16 << (i % 17);
        p[i] = i % 3 ? mspace_malloc(f.ms, size) : mspace_memalign(f.ms, align, size);
        CHECK(p[i] && aligned_to(p[i], i % 3 ? 16 : align) && mspace_usable_size(p[i]) >= size,
              "64 KiB pages: block %zu", i);
        if (p[i]) fill(p[i], size, i);
        if (p[i]) p[i][0] = (unsigned char)i;
    }
    CHECK(mspace_check(f.ms) == 0, "64 KiB pages: check");
    for (size_t i = 0; i < N; i++) mspace_free(f.ms, p[i]);
    mspace_trim(f.ms, 0);
    CHECK(mspace_footprint(f.ms) == 64 * KIB, "64 KiB pages: one page left (%zu)", mspace_footprint(f.ms));
    close_heap(&f);
}

/* ---- determinism over the arena page source ------------------------------------------------ */

/* Runs a seeded trace and folds every result (as an offset from the arena base)
 * into a hash; the same trace on a fresh arena must give the same hash. */
static uint64_t arena_trace(uint64_t seed, size_t *offsets_out, size_t *bad) {
    hl_arena_pages src;
    if (hl_arena_pages_init(&src, 0, (size_t)1 << 32, 0) != 0) { (*bad)++; return 0; }
    hl_hooks h = hl_arena_pages_hooks(&src, 0);
    mspace ms = create_mspace_with_hooks(&h);
    if (!ms) { (*bad)++; hl_arena_pages_fini(&src); return 0; }
    enum { NS = 512, OPS = 20000 };
    static unsigned char *p[NS];
    memset(p, 0, sizeof p);
    uint64_t rng = seed, hash = 1469598103934665603ULL;
    size_t n = 0;
    for (size_t op = 0; op < OPS; op++) {
        size_t i = driver_rand(&rng) % NS, k = driver_rand(&rng) % 10;
        if (p[i] && k < 6) { mspace_free(ms, p[i]); p[i] = NULL; continue; }
        size_t size = random_size(&rng);
        if (p[i]) {
            unsigned char *r = mspace_realloc(ms, p[i], size);
            if (r) p[i] = r;
        }
        else if (k < 8) p[i] = mspace_malloc(ms, size);
        else p[i] = mspace_memalign(ms, (size_t)32 << (driver_rand(&rng) % 16), size);
        size_t off = p[i] ? (size_t)(p[i] - src.base) : 0;
        hash = (hash ^ off) * 1099511628211ULL;
        n++;
    }
    if (mspace_check(ms)) (*bad)++;
    *offsets_out = n;
    hash = (hash ^ mspace_footprint(ms)) * 1099511628211ULL;
    destroy_mspace(ms);
    if (src.bytes_mapped) (*bad)++;
    hl_arena_pages_fini(&src);
    return hash;
}

static void test_deterministic(void) {
    size_t n1 = 0, n2 = 0, bad = 0;
    uint64_t h1 = arena_trace(1234, &n1, &bad), h2 = arena_trace(1234, &n2, &bad);
    CHECK(bad == 0, "arena trace: %zu problems", bad);
    CHECK(n1 == n2 && n1 > 0 && h1 == h2, "same trace, same offsets (%zu/%zu results, %llx vs %llx)", n1, n2,
          (unsigned long long)h1, (unsigned long long)h2);
}

/* ---- the adapter ---------------------------------------------------------------------------- */

static void test_adapter(void) {
    const hl_allocator *a = hl_allocator_find("dlmalloc");
    CHECK(a != NULL && strcmp(a->name, "dlmalloc") == 0, "registry has dlmalloc");
    if (!a) return;
    hl_mmap_pages src;
    hl_mmap_pages_init(&src, 0, 0);
    hl_hooks h = hl_mmap_pages_hooks(&src, 1);
    void *heap = a->create(&h);
    CHECK(heap != NULL, "adapter create");
    void *p = a->malloc(heap, 10), *q = a->memalign(heap, 4096, 10), *r = a->calloc(heap, 3, 5);
    CHECK(p && q && r && aligned_to(q, 4096) && all_zero(r, 15), "adapter malloc/memalign/calloc");
    p = a->realloc(heap, p, 5000);
    CHECK(p && a->usable_size(heap, p) >= 5000 && a->usable_size(heap, NULL) == 0, "adapter realloc/usable");
    CHECK(a->check(heap) == 0, "adapter check");
    a->free(heap, p);
    a->free(heap, q);
    a->free(heap, r);
    a->free(heap, NULL);
    a->destroy(heap);
    CHECK(src.bytes_mapped == 0, "adapter destroy unmaps everything");
}

int main(void) {
    test_sizes();
    test_calloc();
    test_alignments();
    test_best_fit();
    test_realloc();
    test_realloc_aligned_mapped();
    test_mmap_threshold();
    test_trim();
    test_oom();
    test_random();
    test_checker();
    test_threads();
    test_big_pages();
    test_deterministic();
    test_adapter();
    return driver_finish("test_dlmalloc");
}
