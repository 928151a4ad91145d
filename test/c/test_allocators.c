/*
 * test_allocators.c — the edge cases every allocator must get right, run over
 * every allocator in the build (hl_allocators), through the same table the Node
 * binding and the preload library use. Built with ASan + UBSan.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../native/allocator.h"
#include "../../native/cache/cache.h"
#include "driver.h"
#include "../../native/pages/pages.h"

typedef struct fixture {
    hl_mmap_pages pages;
    hl_hooks hooks;
    const hl_allocator *a;
    void *heap;
} fixture;

/* resize 0: hooks without resize_page, as a host (a kernel) that cannot remap */
static int fixture_open(fixture *f, const hl_allocator *a, size_t limit, int resize) {
    hl_mmap_pages_init(&f->pages, 0, limit);
    f->hooks = hl_mmap_pages_hooks(&f->pages, 1);
    if (!resize) f->hooks.resize_page = NULL;
    f->a = a;
    f->heap = a->create(&f->hooks);
    return f->heap != NULL;
}

static void fixture_close(fixture *f) {
    f->a->destroy(f->heap);
    CHECK(f->pages.bytes_mapped == 0, "%s: destroy left %zu bytes mapped", f->a->name, f->pages.bytes_mapped);
}

static int aligned_to(const void *p, size_t align) { return ((uintptr_t)p & (align - 1)) == 0; }

static void fill(unsigned char *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 8));
}
static int verify(const unsigned char *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i * 7 + (i >> 8))) return 0;
    return 1;
}

static void test_zero_and_impossible_sizes(const hl_allocator *a) {
    fixture f;
    CHECK(fixture_open(&f, a, 0, 1), "%s: create", a->name);
    void *z1 = a->malloc(f.heap, 0), *z2 = a->malloc(f.heap, 0);
    CHECK(z1 && z2 && z1 != z2, "%s: malloc(0) gives unique blocks (%p, %p)", a->name, z1, z2);
    CHECK(aligned_to(z1, 16) && aligned_to(z2, 16), "%s: malloc(0) aligned", a->name);
    const size_t impossible[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2, (size_t)PTRDIFF_MAX};
    for (size_t i = 0; i < sizeof impossible / sizeof *impossible; i++) {
        CHECK(a->malloc(f.heap, impossible[i]) == NULL, "%s: malloc(%zu) must fail", a->name, impossible[i]);
        CHECK(a->memalign(f.heap, 4096, impossible[i]) == NULL, "%s: memalign(4096, %zu) must fail", a->name, impossible[i]);
        void *r = a->realloc(f.heap, z1, impossible[i]);
        CHECK(r == NULL, "%s: realloc(p, %zu) must fail", a->name, impossible[i]);
    }
    CHECK(a->calloc(f.heap, SIZE_MAX / 2 + 2, 2) == NULL, "%s: calloc overflow", a->name);
    CHECK(a->calloc(f.heap, (size_t)1 << 33, (size_t)1 << 33) == NULL, "%s: calloc overflow 2^66", a->name);
    CHECK(a->usable_size(f.heap, NULL) == 0, "%s: usable_size(NULL)", a->name);
    a->free(f.heap, NULL);
    CHECK(a->check(f.heap) == 0, "%s: heap sound after impossible requests", a->name);
    a->free(f.heap, z1);
    a->free(f.heap, z2);
    CHECK(a->check(f.heap) == 0, "%s: heap sound", a->name);
    fixture_close(&f);
}

static void test_calloc_clears_reused_memory(const hl_allocator *a) {
    fixture f;
    fixture_open(&f, a, 0, 1);
    for (size_t size = 16; size <= (1u << 20); size *= 4) {
        unsigned char *dirty = a->malloc(f.heap, size);
        memset(dirty, 0xA5, size);
        a->free(f.heap, dirty);
        unsigned char *c = a->calloc(f.heap, 1, size);
        CHECK(c != NULL, "%s: calloc(%zu)", a->name, size);
        size_t nonzero = 0;
        for (size_t i = 0; c && i < size; i++) nonzero += c[i] != 0;
        CHECK(nonzero == 0, "%s: calloc(%zu) has %zu non-zero bytes", a->name, size, nonzero);
        a->free(f.heap, c);
    }
    CHECK(a->check(f.heap) == 0, "%s: heap sound", a->name);
    fixture_close(&f);
}

static void test_alignment(const hl_allocator *a) {
    fixture f;
    fixture_open(&f, a, 0, 1);
    void *plain[64];
    for (size_t i = 0; i < 64; i++) {
        plain[i] = a->malloc(f.heap, i * 13 + 1);
        CHECK(aligned_to(plain[i], 16), "%s: malloc(%zu) 16-aligned: %p", a->name, i * 13 + 1, plain[i]);
    }
    for (size_t align = 1; align <= ((size_t)1 << 21); align <<= 1) {
        const size_t sizes[] = {0, 1, 24, align, align + 1, 3 * align + 5, 100000};
        void *got[7];
        for (size_t s = 0; s < 7; s++) {
            got[s] = a->memalign(f.heap, align, sizes[s]);
            CHECK(got[s] && aligned_to(got[s], align < 16 ? 16 : align), "%s: memalign(%zu, %zu) = %p", a->name, align,
                  sizes[s], got[s]);
            if (got[s]) {
                CHECK(a->usable_size(f.heap, got[s]) >= sizes[s], "%s: usable >= %zu", a->name, sizes[s]);
                memset(got[s], 0x5A, sizes[s]);
            }
        }
        CHECK(a->check(f.heap) == 0, "%s: heap sound after memalign(%zu)", a->name, align);
        for (size_t s = 0; s < 7; s++) a->free(f.heap, got[s]);
    }
    for (size_t i = 0; i < 64; i++) a->free(f.heap, plain[i]);
    CHECK(a->check(f.heap) == 0, "%s: heap sound", a->name);
    fixture_close(&f);
}

static void test_realloc(const hl_allocator *a) {
    fixture f;
    fixture_open(&f, a, 0, 1);
    unsigned char *p = a->realloc(f.heap, NULL, 100);
    CHECK(p != NULL, "%s: realloc(NULL, 100) is malloc", a->name);
    fill(p, 100, 1);
    size_t sizes[] = {200, 50, 4000, 70000, 10, 300000, 1 << 21, 33, 0, 5000};
    size_t have = 100;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *q = a->realloc(f.heap, p, sizes[i]);
        CHECK(q != NULL && aligned_to(q, 16), "%s: realloc to %zu", a->name, sizes[i]);
        if (!q) break;
        size_t keep = have < sizes[i] ? have : sizes[i];
        CHECK(verify(q, keep, 1), "%s: realloc to %zu kept %zu bytes", a->name, sizes[i], keep);
        CHECK(a->usable_size(f.heap, q) >= sizes[i], "%s: usable after realloc", a->name);
        fill(q, sizes[i], 1);
        have = sizes[i];
        p = q;
        CHECK(a->check(f.heap) == 0, "%s: heap sound after realloc to %zu", a->name, sizes[i]);
    }
    a->free(f.heap, p);
    /* a memaligned block keeps its alignment when resized in place */
    unsigned char *al = a->memalign(f.heap, 4096, 1000);
    fill(al, 1000, 3);
    unsigned char *al2 = a->realloc(f.heap, al, 500);
    CHECK(al2 && verify(al2, 500, 3), "%s: realloc of an aligned block", a->name);
    a->free(f.heap, al2);
    CHECK(a->check(f.heap) == 0, "%s: heap sound", a->name);
    fixture_close(&f);
}

/* A block on its own pages grows and shrinks through resize_page (mremap),
 * never by copy, while small blocks come and go beside it (as a program's
 * stdio buffer does: a small block in the big block's pool would pin it there):
 * the page source's peak stays near the block, the bytes survive, and with
 * resize_page absent (a kernel without it) the copy path still gives the same
 * contents. */
static void check_big_realloc(const hl_allocator *a, int with_resize) {
    fixture f;
    CHECK(fixture_open(&f, a, 0, with_resize), "%s: create", a->name);
    const size_t big = (size_t)256 << 20, step = big / 16;   /* past any rounding slack */
    unsigned char *p = a->malloc(f.heap, big);
    CHECK(p != NULL, "%s: malloc(256 MiB)", a->name);
    if (!p) { fixture_close(&f); return; }
    fill(p, 4096, 1);
    fill(p + big - 4096, 4096, 2);
    size_t remaps = f.pages.remap_calls, n = big;
    void *small[8];
    for (int i = 0; i < 8; i++) {
        small[i] = a->malloc(f.heap, 4096 + (size_t)i * 100);
        CHECK(small[i] != NULL, "%s: a small malloc beside the big block", a->name);
        unsigned char *q = a->realloc(f.heap, p, n + step);
        CHECK(q != NULL, "%s: realloc to %zu", a->name, n + step);
        if (!q) break;
        p = q;
        n += step;
        p[n - 1] = 0x5A;
    }
    CHECK(verify(p, 4096, 1) && verify(p + big - 4096, 4096, 2), "%s: bytes kept over growth (resize %d)", a->name,
          with_resize);
    CHECK(a->check(f.heap) == 0, "%s: check after growth", a->name);
    for (int i = 0; i < 8; i++) a->free(f.heap, small[i]);
    if (with_resize) {
        CHECK(f.pages.remap_calls > remaps, "%s: growth used resize_page", a->name);
        CHECK(f.pages.peak_bytes_mapped < n + n / 8, "%s: no copy: peak %zu for a %zu block", a->name,
              f.pages.peak_bytes_mapped, n);
    }
    unsigned char *s = a->realloc(f.heap, p, 1 << 20);   /* shrink: the pages go back */
    CHECK(s != NULL && verify(s, 4096, 1), "%s: shrink keeps the bytes", a->name);
    if (s) p = s;
    if (with_resize)
        CHECK(f.pages.bytes_mapped < (size_t)16 << 20, "%s: shrink gave pages back (%zu mapped)", a->name,
              f.pages.bytes_mapped);
    CHECK(a->check(f.heap) == 0, "%s: check after shrink", a->name);
    a->free(f.heap, p);
    fixture_close(&f);
}

static void test_big_realloc(const hl_allocator *a) {
    check_big_realloc(a, 1);
    check_big_realloc(a, 0);
}

static void test_out_of_memory_and_recovery(const hl_allocator *a) {
    fixture f;
    const size_t limit = 8u << 20;
    CHECK(fixture_open(&f, a, limit, 1), "%s: create under a limit", a->name);
    void *blocks[4096];
    size_t n = 0;
    while (n < 4096) {
        void *p = a->malloc(f.heap, 64 * 1024);
        if (!p) break;
        memset(p, 1, 64 * 1024);
        blocks[n++] = p;
    }
    CHECK(n > 0 && n < 4096, "%s: the limit was reached after %zu blocks", a->name, n);
    CHECK(f.pages.bytes_mapped <= limit, "%s: mapped %zu over the limit", a->name, f.pages.bytes_mapped);
    CHECK(a->malloc(f.heap, 5u << 20) == NULL, "%s: big request fails at the limit", a->name);
    CHECK(a->check(f.heap) == 0, "%s: heap sound at OOM", a->name);
    for (size_t i = 0; i < n; i += 2) a->free(f.heap, blocks[i]);
    void *again = a->malloc(f.heap, 64 * 1024);
    CHECK(again != NULL, "%s: allocation works again after frees", a->name);
    a->free(f.heap, again);
    for (size_t i = 1; i < n; i += 2) a->free(f.heap, blocks[i]);
    CHECK(f.pages.bytes_mapped <= (3u << 20), "%s: pages given back after freeing all (%zu still mapped)", a->name,
          f.pages.bytes_mapped);
    void *big = a->malloc(f.heap, 6u << 20);
    CHECK(big != NULL, "%s: a 6 MiB block fits once everything is free", a->name);
    a->free(f.heap, big);
    CHECK(a->check(f.heap) == 0, "%s: heap sound", a->name);
    fixture_close(&f);
}

enum { SHADOW_SLOTS = 2048 };
typedef struct shadow_block { unsigned char *p; size_t size; uint64_t seed; } shadow_block;

static int overlaps(const shadow_block *blocks, size_t n, const unsigned char *p, size_t size, size_t skip) {
    for (size_t i = 0; i < n; i++) {
        if (i == skip || !blocks[i].p) continue;
        const unsigned char *q = blocks[i].p;
        size_t qs = blocks[i].size ? blocks[i].size : 1, ps = size ? size : 1;
        if (p < q + qs && q < p + ps) return 1;
    }
    return 0;
}

static size_t random_size(uint64_t *rng) {
    uint64_t r = driver_rand(rng);
    switch (r % 16) {
        case 0: return (size_t)(r >> 8) % (512 * 1024);  /* large */
        case 1: case 2: return (size_t)(r >> 8) % 16384;
        default: return (size_t)(r >> 8) % 256;
    }
}

static void test_random_against_shadow(const hl_allocator *a) {
    fixture f;
    fixture_open(&f, a, 0, 1);
    static shadow_block blocks[SHADOW_SLOTS];
    memset(blocks, 0, sizeof blocks);
    uint64_t rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)a->name[0];
    size_t bad_content = 0, bad_align = 0, bad_overlap = 0, failures = 0, checks_failed = 0;
    for (size_t op = 0; op < 60000; op++) {
        size_t slot = (size_t)(driver_rand(&rng) % SHADOW_SLOTS);
        shadow_block *b = &blocks[slot];
        uint64_t kind = driver_rand(&rng) % 10;
        if (b->p && kind < 4) {
            bad_content += !verify(b->p, b->size, b->seed);
            a->free(f.heap, b->p);
            b->p = NULL;
        } else if (b->p && kind < 7) {
            size_t size = random_size(&rng);
            unsigned char *q = a->realloc(f.heap, b->p, size);
            if (!q) { failures++; continue; }
            size_t keep = b->size < size ? b->size : size;
            bad_content += !verify(q, keep, b->seed);
            b->p = q; b->size = size; b->seed = op;
            fill(q, size, op);
            bad_align += !aligned_to(q, 16);
            if (op % 64 == 0) bad_overlap += overlaps(blocks, SHADOW_SLOTS, q, size, slot);
        } else if (!b->p) {
            size_t size = random_size(&rng);
            size_t align = (kind == 9) ? (size_t)1 << (4 + driver_rand(&rng) % 10) : 16;
            unsigned char *q = align > 16 ? a->memalign(f.heap, align, size) : a->malloc(f.heap, size);
            if (!q) { failures++; continue; }
            bad_align += !aligned_to(q, align);
            if (op % 64 == 0) bad_overlap += overlaps(blocks, SHADOW_SLOTS, q, size, slot);
            b->p = q; b->size = size; b->seed = op;
            fill(q, size, op);
        }
        if (op % 1000 == 0) checks_failed += a->check(f.heap) != 0;
    }
    CHECK(bad_content == 0, "%s: %zu blocks lost their contents", a->name, bad_content);
    CHECK(bad_align == 0, "%s: %zu misaligned results", a->name, bad_align);
    CHECK(bad_overlap == 0, "%s: %zu overlapping blocks", a->name, bad_overlap);
    CHECK(failures == 0, "%s: %zu allocations failed without a limit", a->name, failures);
    CHECK(checks_failed == 0, "%s: check() failed %zu times", a->name, checks_failed);
    for (size_t i = 0; i < SHADOW_SLOTS; i++)
        if (blocks[i].p) a->free(f.heap, blocks[i].p);
    CHECK(a->check(f.heap) == 0, "%s: heap sound at the end", a->name);
    fixture_close(&f);
}

typedef struct thread_arg { fixture *f; uint64_t seed; size_t errors; } thread_arg;

static void *stress_thread(void *arg) {
    thread_arg *t = arg;
    const hl_allocator *a = t->f->a;
    enum { SLOTS = 256 };
    shadow_block mine[SLOTS];
    memset(mine, 0, sizeof mine);
    uint64_t rng = t->seed;
    for (size_t op = 0; op < 100000; op++) {
        shadow_block *b = &mine[driver_rand(&rng) % SLOTS];
        if (b->p) {
            t->errors += !verify(b->p, b->size, b->seed);
            if (op & 1) {
                a->free(t->f->heap, b->p);
                b->p = NULL;
                continue;
            }
            size_t size = (size_t)(driver_rand(&rng) % 3000);
            unsigned char *q = a->realloc(t->f->heap, b->p, size);
            if (!q) { t->errors++; continue; }
            b->p = q; b->size = size; b->seed = t->seed + op;
            fill(q, size, b->seed);
        } else {
            size_t size = (size_t)(driver_rand(&rng) % 3000);
            unsigned char *q = a->malloc(t->f->heap, size);
            if (!q) { t->errors++; continue; }
            b->p = q; b->size = size; b->seed = t->seed + op;
            fill(q, size, b->seed);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (mine[i].p) {
            t->errors += !verify(mine[i].p, mine[i].size, mine[i].seed);
            a->free(t->f->heap, mine[i].p);
        }
    return NULL;
}

static void test_two_threads(const hl_allocator *a) {
    fixture f;
    fixture_open(&f, a, 0, 1);
    pthread_t threads[2];
    thread_arg args[2] = {{&f, 0x1234567ULL, 0}, {&f, 0x7654321ULL, 0}};
    for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, stress_thread, &args[i]);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    CHECK(args[0].errors == 0 && args[1].errors == 0, "%s: thread stress errors %zu, %zu", a->name, args[0].errors,
          args[1].errors);
    CHECK(a->check(f.heap) == 0, "%s: heap sound after threads", a->name);
    fixture_close(&f);
}

static void run_all(const hl_allocator *a);

int main(void) {
    size_t count = 0;
    for (const hl_allocator *const *a = hl_allocators; *a; a++, count++) {
        run_all(*a);
        run_all(hl_cache_wrap(*a)); /* the same edge cases behind the thread cache */
    }
    CHECK(count > 0, "no allocator in this build");
    return driver_finish("test_allocators");
}

static void run_all(const hl_allocator *a_) {
    const hl_allocator *const *a = &a_;
    {
        test_zero_and_impossible_sizes(*a);
        test_calloc_clears_reused_memory(*a);
        test_alignment(*a);
        test_realloc(*a);
        test_big_realloc(*a);
        test_out_of_memory_and_recovery(*a);
        test_random_against_shadow(*a);
        test_two_threads(*a);
    }
}
