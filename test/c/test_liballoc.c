/* test_liballoc.c — the liballoc-style allocator: edge cases, bad frees, majors
 * given back, out of memory, a shadow-model random test, the checker, two
 * threads, the global k-API, and a throughput sanity run. Built with ASan+UBSan.
 * Prints nothing per passing check; the last line is the tally. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../native/allocator.h"
#include "driver.h"
#include "../../native/pages/pages.h"
#include "../../vendor/liballoc/liballoc.h"


/* The documented 64-bit minor header (liballoc.c), for the corruption tests. */
typedef struct test_minor {
    void *prev, *next, *major;
    uint64_t magic;
    size_t size, req_size;
} test_minor;
_Static_assert(sizeof(test_minor) == 48, "64-bit layout");
static test_minor *header_of(void *p) { return (test_minor *)((char *)p - sizeof(test_minor)); }

/* splitmix64: the seeded generator of the random tests */
static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

static void fill(void *p, size_t n, uint64_t tag) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(tag * 31 + i * 7);
}
static int verify(const void *p, size_t n, uint64_t tag) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(tag * 31 + i * 7)) return 0;
    return 1;
}

/* A heap over a fresh mmap page source. */
typedef struct fixture {
    hl_mmap_pages src;
    hl_hooks hooks;
    liballoc_heap *h;
} fixture;

static int fixture_init(fixture *f, size_t limit, int locked) {
    if (hl_mmap_pages_init(&f->src, 4096, limit) != 0) return -1;
    f->hooks = hl_mmap_pages_hooks(&f->src, locked);
    f->h = liballoc_create(&f->hooks);
    return f->h ? 0 : -1;
}

/* ---- edge cases ----------------------------------------------------------- */

static void test_edges(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;

    void *a = liballoc_malloc(h, 0), *b = liballoc_malloc(h, 0);
    CHECK(a && b && a != b, "malloc(0) unique: %p %p", a, b);
    CHECK(((uintptr_t)a & 15) == 0, "malloc(0) aligned");
    CHECK(liballoc_usable_size(h, a) >= 16, "usable(malloc(0)) = %zu", liballoc_usable_size(h, a));
    liballoc_free_block(h, a);
    liballoc_free_block(h, b);
    liballoc_free_block(h, NULL);
    CHECK(liballoc_usable_size(h, NULL) == 0, "usable(NULL)");

    size_t huge[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        CHECK(liballoc_malloc(h, huge[i]) == NULL, "malloc(%zu)", huge[i]);
        CHECK(liballoc_memalign(h, 4096, huge[i]) == NULL, "memalign(4096, %zu)", huge[i]);
        CHECK(liballoc_calloc(h, 1, huge[i]) == NULL, "calloc(1, %zu)", huge[i]);
    }
    CHECK(liballoc_memalign(h, (size_t)1 << 62, 16) == NULL, "memalign(2^62)");
    CHECK(liballoc_memalign(h, 48, 16) == NULL, "memalign(not a power of two)");
    CHECK(liballoc_calloc(h, SIZE_MAX / 2, 3) == NULL, "calloc overflow");
    CHECK(liballoc_calloc(h, (size_t)1 << 33, (size_t)1 << 33) == NULL, "calloc overflow 2^66");

    /* calloc zeroes reused memory */
    unsigned char *d = liballoc_malloc(h, 1000);
    memset(d, 0xEE, 1000);
    liballoc_free_block(h, d);
    unsigned char *z = liballoc_calloc(h, 10, 100);
    int zero = z != NULL;
    for (size_t i = 0; z && i < 1000; i++) zero &= z[i] == 0;
    CHECK(zero, "calloc zeroes");
    liballoc_free_block(h, z);

    /* realloc to a huge size fails, old block untouched */
    void *r = liballoc_malloc(h, 100);
    fill(r, 100, 5);
    CHECK(liballoc_realloc(h, r, SIZE_MAX) == NULL, "realloc huge");
    CHECK(verify(r, 100, 5) && liballoc_usable_size(h, r) >= 100, "realloc failure keeps block");
    liballoc_free_block(h, r);

    /* alignments 16 .. 1 MiB (and 4 MiB) */
    for (size_t al = 16; al <= ((size_t)4 << 20); al <<= 1) {
        size_t sizes[] = {1, 100, 5000};
        for (size_t k = 0; k < 3; k++) {
            void *p = liballoc_memalign(h, al, sizes[k]);
            CHECK(p && ((uintptr_t)p & (al - 1)) == 0, "memalign(%zu, %zu) = %p", al, sizes[k], p);
            if (!p) continue;
            CHECK(liballoc_usable_size(h, p) >= sizes[k], "usable %zu", liballoc_usable_size(h, p));
            fill(p, sizes[k], al);
            CHECK(liballoc_check(h) == 0, "check after memalign(%zu)", al);
            void *q = liballoc_malloc(h, 64);   /* a neighbour between aligned blocks */
            CHECK(verify(p, sizes[k], al), "aligned contents");
            liballoc_free_block(h, p);
            liballoc_free_block(h, q);
        }
    }
    CHECK(liballoc_check(h) == 0, "check after alignments");

    /* every result 16-aligned */
    int aligned = 1;
    void *ps[64];
    for (size_t i = 0; i < 64; i++) {
        ps[i] = liballoc_malloc(h, i * 13 + 1);
        aligned &= ps[i] && ((uintptr_t)ps[i] & 15) == 0;
    }
    for (size_t i = 0; i < 64; i++) liballoc_free_block(h, ps[i]);
    CHECK(aligned, "16-byte alignment");
    CHECK(liballoc_check(h) == 0 && liballoc_bad_frees(h) == 0, "clean");
    liballoc_destroy(h);
    CHECK(f.src.bytes_mapped == 0, "destroy gives every page back (%zu left)", f.src.bytes_mapped);
}

/* ---- realloc ---------------------------------------------------------------- */

static void test_realloc(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;

    void *n = liballoc_realloc(h, NULL, 40);
    CHECK(n && liballoc_usable_size(h, n) >= 40, "realloc(NULL)");

    char *a = liballoc_malloc(h, 1000);
    char *b = liballoc_malloc(h, 1000);
    fill(a, 1000, 1);
    /* shrink in place */
    char *s = liballoc_realloc(h, a, 200);
    CHECK(s == a && verify(a, 200, 1), "shrink in place");
    CHECK(liballoc_usable_size(h, a) >= 200 && liballoc_usable_size(h, a) < 1000, "shrunk usable %zu",
          liballoc_usable_size(h, a));
    CHECK(liballoc_check(h) == 0, "check after shrink");
    /* grow in place into the gap the shrink left */
    char *g = liballoc_realloc(h, a, 900);
    CHECK(g == a && verify(a, 200, 1), "grow in place");
    CHECK(liballoc_check(h) == 0, "check after grow");
    /* grow in place after the neighbour is freed */
    fill(a, 900, 2);
    liballoc_free_block(h, b);
    g = liballoc_realloc(h, a, 1900);
    CHECK(g == a && verify(a, 900, 2), "grow in place into freed neighbour");
    b = liballoc_malloc(h, 16);   /* block the way */
    fill(a, 1900, 3);
    /* a move: no room behind */
    char *m = liballoc_realloc(h, a, 100000);
    CHECK(m && m != a && verify(m, 1900, 3), "moving realloc keeps contents");
    CHECK(liballoc_usable_size(h, m) >= 100000, "moved usable");
    CHECK(liballoc_usable_size(h, a) == 0, "old block freed");
    /* realloc(p, 0): a minimum block, same place */
    char *zr = liballoc_realloc(h, m, 0);
    CHECK(zr == m && liballoc_usable_size(h, zr) >= 16 && liballoc_usable_size(h, zr) < 100, "realloc(p, 0)");
    CHECK(liballoc_check(h) == 0, "check after realloc");
    liballoc_free_block(h, zr);
    liballoc_free_block(h, b);
    liballoc_free_block(h, n);
    CHECK(liballoc_check(h) == 0 && liballoc_bad_frees(h) == 0, "clean after realloc");
    liballoc_destroy(h);
}

/* ---- bad frees ---------------------------------------------------------------- */

static void test_bad_frees(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    char *a = liballoc_malloc(h, 256), *b = liballoc_malloc(h, 256), *c = liballoc_malloc(h, 256);
    fill(a, 256, 7);
    fill(c, 256, 8);
    liballoc_free_block(h, b);
    liballoc_free_block(h, b);                  /* double free */
    CHECK(liballoc_bad_frees(h) == 1, "double free counted (%zu)", liballoc_bad_frees(h));
    liballoc_free_block(h, a + 32);             /* into the middle */
    CHECK(liballoc_bad_frees(h) == 2, "interior free counted");
    liballoc_free_block(h, a + 3);              /* misaligned */
    CHECK(liballoc_bad_frees(h) == 3, "misaligned free counted");
    CHECK(liballoc_realloc(h, b, 10) == NULL && liballoc_bad_frees(h) == 4, "realloc of freed counted");
    CHECK(liballoc_usable_size(h, b) == 0, "usable of freed");
    CHECK(liballoc_check(h) == 0, "heap unharmed: check %zu", liballoc_check(h));
    CHECK(verify(a, 256, 7) && verify(c, 256, 8), "neighbours unharmed");
    /* double free after coalescing (b merged into a's freed gap) */
    liballoc_free_block(h, a);
    liballoc_free_block(h, b);
    liballoc_free_block(h, a);
    CHECK(liballoc_bad_frees(h) == 6, "double frees after merge counted (%zu)", liballoc_bad_frees(h));
    CHECK(liballoc_check(h) == 0, "check after merged double frees");
    void *d = liballoc_malloc(h, 500);
    CHECK(d != NULL && liballoc_check(h) == 0, "heap works after bad frees");
    liballoc_free_block(h, d);
    liballoc_free_block(h, c);
    CHECK(liballoc_check(h) == 0, "final check");
    liballoc_destroy(h);
}

/* prev_dead without the check (the thread cache's question): for every live
 * block of a heap with free gaps, the same answer as block_peek's; 0 for a
 * pointer that is not a live minor's start. */
static void test_prev_dead(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    enum { N = 400 };
    void *p[N];
    rng_state = 99;
    for (int i = 0; i < N; i++) p[i] = liballoc_malloc(h, 16 + rng_below(600));
    for (int i = 0; i < N; i += 3) { liballoc_free_block(h, p[i]); p[i] = NULL; }
    size_t dead_before = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        if (!p[i]) continue;
        int prev_dead = -1;
        liballoc_block_peek(h, p[i], &prev_dead);
        wrong += liballoc_block_prev_dead(p[i]) != prev_dead;
        dead_before += prev_dead;
    }
    CHECK(wrong == 0, "%zu blocks where the unchecked answer differs from peek's", wrong);
    CHECK(dead_before > 0, "some live block follows a free one");
    char *live = p[1];
    CHECK(liballoc_block_prev_dead(live + 16) == 0 && liballoc_block_prev_dead(live + 3) == 0,
          "an interior or misaligned pointer: no answer but 0");
    for (int i = 0; i < N; i++) if (p[i]) liballoc_free_block(h, p[i]);
    CHECK(liballoc_check(h) == 0, "heap unharmed");
    liballoc_destroy(h);
}

/* ---- majors given back -------------------------------------------------------- */

static void test_majors_returned(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    liballoc_stats st;
    enum { N = 6000 };
    static void *p[N];
    for (size_t i = 0; i < N; i++) p[i] = liballoc_malloc(h, 1000);
    liballoc_get_stats(h, &st);
    size_t peak_majors = st.majors;
    CHECK(st.majors > 3, "several majors (%zu)", st.majors);
    CHECK(f.src.bytes_mapped == st.major_bytes + st.control_bytes, "mapped = majors + control");
    CHECK(liballoc_check(h) == 0, "check with many majors");
    /* a huge block gets its own major, given back at once on free */
    void *big = liballoc_malloc(h, (size_t)8 << 20);
    CHECK(big != NULL, "8 MiB");
    size_t before = f.src.bytes_mapped;
    liballoc_free_block(h, big);
    CHECK(f.src.bytes_mapped < before - ((size_t)8 << 20) + 4096, "huge major given back");
    for (size_t i = 0; i < N; i += 2) liballoc_free_block(h, p[i]);
    CHECK(liballoc_check(h) == 0, "check after half freed");
    for (size_t i = 1; i < N; i += 2) liballoc_free_block(h, p[i]);
    liballoc_get_stats(h, &st);
    CHECK(st.majors == 1, "one major kept (%zu of %zu)", st.majors, peak_majors);
    CHECK(st.live_blocks == 0 && st.used_bytes == 0, "nothing live");
    CHECK(f.src.bytes_mapped == st.major_bytes + st.control_bytes,
          "mapped falls back to the kept one: %zu vs %zu", f.src.bytes_mapped,
          st.major_bytes + st.control_bytes);
    CHECK(st.major_bytes <= 256 * 4096, "kept major is standard size (%zu)", st.major_bytes);
    CHECK(liballoc_check(h) == 0, "check when empty");
    /* and it is used again */
    size_t maps = f.src.map_calls;
    void *q = liballoc_malloc(h, 1000);
    CHECK(q && f.src.map_calls == maps, "kept major reused without mapping");
    liballoc_free_block(h, q);
    liballoc_destroy(h);
    CHECK(f.src.bytes_mapped == 0, "destroy");
}

/* ---- out of memory ------------------------------------------------------------ */

static void test_oom(void) {
    fixture f;
    if (fixture_init(&f, (size_t)1 << 20, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    CHECK(liballoc_malloc(h, (size_t)2 << 20) == NULL, "over the limit");
    enum { MAXB = 4096 };
    static void *p[MAXB];
    size_t n = 0;
    while (n < MAXB && (p[n] = liballoc_malloc(h, 3000)) != NULL) {
        fill(p[n], 3000, n);
        n++;
    }
    CHECK(n > 100 && n < MAXB, "reached out of memory after %zu blocks", n);
    CHECK(f.src.bytes_mapped <= ((size_t)1 << 20), "within limit");
    CHECK(liballoc_check(h) == 0, "check at OOM");
    CHECK(liballoc_memalign(h, 65536, 100) == NULL || 1, "memalign at OOM does not crash");
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        ok &= verify(p[i], 3000, i);
        liballoc_free_block(h, p[i]);
    }
    CHECK(ok, "contents intact at OOM");
    CHECK(liballoc_check(h) == 0, "check after freeing");
    /* recovery: the memory serves again */
    size_t m = 0;
    while (m < n && (p[m] = liballoc_malloc(h, 3000)) != NULL) m++;
    CHECK(m == n, "recovered %zu of %zu", m, n);
    for (size_t i = 0; i < m; i++) liballoc_free_block(h, p[i]);
    void *big = liballoc_malloc(h, 600000);
    CHECK(big != NULL, "a large block after recovery");
    liballoc_free_block(h, big);
    CHECK(liballoc_check(h) == 0, "final check");
    liballoc_destroy(h);
}

/* ---- random test against a shadow model -------------------------------------- */

typedef struct shadow { char *p; size_t size; size_t align; uint64_t tag; } shadow;

static int cmp_ptr(const void *x, const void *y) {
    uintptr_t a = (uintptr_t)((const shadow *)x)->p, b = (uintptr_t)((const shadow *)y)->p;
    return a < b ? -1 : a > b;
}

static size_t random_size(void) {
    size_t r = rng_below(100);
    if (r < 70) return rng_below(256);
    if (r < 95) return rng_below(8192);
    if (r < 99) return rng_below(65536);
    return rng_below(1 << 20);
}

static void test_random(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    enum { SLOTS = 2000, OPS = 200000 };
    static shadow live[SLOTS];
    static shadow sorted[SLOTS];
    memset(live, 0, sizeof live);
    rng_state = 12345;
    size_t live_bytes = 0, peak_live = 0, checks_bad = 0, content_bad = 0, align_bad = 0, overlap = 0;
    uint64_t tag = 1;
    for (size_t op = 1; op <= OPS; op++) {
        shadow *s = &live[rng_below(SLOTS)];
        if (s->p) {
            if (!verify(s->p, s->size, s->tag)) content_bad++;
            if (rng_below(4) == 0) {   /* realloc */
                size_t n = random_size();
                char *q = liballoc_realloc(h, s->p, n);
                if (q) {
                    size_t keep = n < s->size ? n : s->size;
                    if (!verify(q, keep, s->tag)) content_bad++;
                    if (((uintptr_t)q & 15) != 0) align_bad++;
                    live_bytes = live_bytes - s->size + n;
                    s->p = q;
                    s->size = n;
                    s->align = 16;
                    s->tag = tag++;
                    fill(q, n, s->tag);
                }
            } else {
                liballoc_free_block(h, s->p);
                live_bytes -= s->size;
                s->p = NULL;
            }
        } else {
            size_t n = random_size();
            size_t al = 16;
            char *q;
            if (rng_below(10) == 0) {
                al = (size_t)16 << rng_below(13);   /* up to 64 KiB */
                q = liballoc_memalign(h, al, n);
            } else if (rng_below(10) == 0) {
                q = liballoc_calloc(h, 1, n);
                for (size_t i = 0; q && i < n; i++) if (q[i]) { content_bad++; break; }
            } else {
                q = liballoc_malloc(h, n);
            }
            if (!q) { CHECK(0, "alloc %zu failed", n); continue; }
            if (((uintptr_t)q & (al - 1)) != 0) align_bad++;
            if (liballoc_usable_size(h, q) < n) align_bad++;
            s->p = q;
            s->size = n;
            s->align = al;
            s->tag = tag++;
            fill(q, n, s->tag);
            live_bytes += n;
            if (live_bytes > peak_live) peak_live = live_bytes;
        }
        if (op % 1000 == 0 && liballoc_check(h) != 0) checks_bad++;
        if (op % 20000 == 0) {   /* no two live blocks overlap */
            size_t k = 0;
            for (size_t i = 0; i < SLOTS; i++)
                if (live[i].p) sorted[k++] = live[i];
            qsort(sorted, k, sizeof sorted[0], cmp_ptr);
            for (size_t i = 1; i < k; i++)
                if (sorted[i - 1].p + liballoc_usable_size(h, sorted[i - 1].p) > sorted[i].p) overlap++;
        }
    }
    CHECK(checks_bad == 0, "check() != 0 at %zu checkpoints", checks_bad);
    CHECK(content_bad == 0, "%zu content mismatches", content_bad);
    CHECK(align_bad == 0, "%zu alignment/usable faults", align_bad);
    CHECK(overlap == 0, "%zu overlaps", overlap);
    CHECK(liballoc_bad_frees(h) == 0, "no bad frees");
    printf("random: %d ops, peak mapped / peak live = %zu / %zu = %.2f\n", OPS,
           f.src.peak_bytes_mapped, peak_live, (double)f.src.peak_bytes_mapped / (double)peak_live);
    for (size_t i = 0; i < SLOTS; i++)
        if (live[i].p) liballoc_free_block(h, live[i].p);
    liballoc_stats st;
    liballoc_get_stats(h, &st);
    CHECK(st.live_blocks == 0 && st.majors == 1 && liballoc_check(h) == 0, "empty at the end (%zu majors)",
          st.majors);
    liballoc_destroy(h);
    CHECK(f.src.bytes_mapped == 0, "destroy");
}

/* ---- the checker ----------------------------------------------------------- */

static void test_checker(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    void *p[8];
    for (size_t i = 0; i < 8; i++) p[i] = liballoc_malloc(h, 100 + i * 40);
    liballoc_free_block(h, p[2]);
    liballoc_free_block(h, p[5]);
    CHECK(liballoc_check(h) == 0, "clean");

    test_minor *m = header_of(p[3]);
    uint64_t magic = m->magic;
    m->magic = 0x1234;
    CHECK(liballoc_check(h) > 0, "bad magic found");
    liballoc_free_block(h, p[3]);   /* refused: it no longer looks live */
    CHECK(liballoc_bad_frees(h) == 1, "free of corrupted block refused");
    m->magic = magic;
    CHECK(liballoc_check(h) == 0, "magic restored");

    size_t size = m->size;
    m->size = size + 64;            /* overlaps the next minor */
    CHECK(liballoc_check(h) > 0, "size overlapping the next minor found");
    m->size = (size_t)1 << 40;      /* runs past the major's end */
    CHECK(liballoc_check(h) > 0, "size past the end found");
    m->size = size - 16;
    CHECK(liballoc_check(h) > 0, "short size found");
    m->size = size;
    CHECK(liballoc_check(h) == 0, "size restored");

    test_minor *d = header_of(p[5]);   /* a dead minor in the index */
    size_t dsize = d->size;
    d->size = dsize + 1;
    CHECK(liballoc_check(h) > 0, "dead minor size found");
    d->size = dsize;
    void *link = d->prev;
    d->prev = NULL;
    CHECK(liballoc_check(h) > 0, "broken prev link found");
    d->prev = link;
    CHECK(liballoc_check(h) == 0, "restored");
    for (size_t i = 0; i < 8; i++)
        if (i != 2 && i != 5) liballoc_free_block(h, p[i]);
    CHECK(liballoc_check(h) == 0, "final check");
    liballoc_destroy(h);
}

/* ---- two threads through the spinlock hooks ------------------------------- */

typedef struct thread_arg { liballoc_heap *h; uint64_t seed; size_t bad; } thread_arg;

static void *thread_main(void *argp) {
    thread_arg *arg = argp;
    enum { SLOTS = 500, OPS = 60000 };
    shadow *live = calloc(SLOTS, sizeof *live);
    uint64_t st = arg->seed;
    uint64_t tag = arg->seed * 1000003;
    for (size_t op = 0; op < OPS; op++) {
        st = st * 6364136223846793005u + 1442695040888963407u;
        shadow *s = &live[(st >> 33) % SLOTS];
        if (s->p) {
            if (!verify(s->p, s->size, s->tag)) arg->bad++;
            if ((st >> 20) % 5 == 0) {
                size_t n = (size_t)((st >> 40) % 3000);
                char *q = liballoc_realloc(arg->h, s->p, n);
                if (!q) { arg->bad++; continue; }
                size_t keep = n < s->size ? n : s->size;
                if (!verify(q, keep, s->tag)) arg->bad++;
                s->p = q;
                s->size = n;
                s->tag = tag++;
                fill(q, n, s->tag);
            } else {
                liballoc_free_block(arg->h, s->p);
                s->p = NULL;
            }
        } else {
            size_t n = (size_t)((st >> 40) % 2000);
            char *q = (st >> 20) % 7 == 0 ? liballoc_memalign(arg->h, 256, n) : liballoc_malloc(arg->h, n);
            if (!q) { arg->bad++; continue; }
            s->p = q;
            s->size = n;
            s->tag = tag++;
            fill(q, n, s->tag);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (live[i].p) {
            if (!verify(live[i].p, live[i].size, live[i].tag)) arg->bad++;
            liballoc_free_block(arg->h, live[i].p);
        }
    free(live);
    return NULL;
}

static void test_threads(void) {
    fixture f;
    if (fixture_init(&f, 0, 1)) { CHECK(0, "create"); return; }
    thread_arg a[2] = {{f.h, 1, 0}, {f.h, 2, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, thread_main, &a[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(a[0].bad == 0 && a[1].bad == 0, "thread content faults %zu %zu", a[0].bad, a[1].bad);
    CHECK(liballoc_check(f.h) == 0, "check after threads");
    CHECK(liballoc_bad_frees(f.h) == 0, "no bad frees");
    liballoc_stats st;
    liballoc_get_stats(f.h, &st);
    CHECK(st.live_blocks == 0, "all freed");
    liballoc_destroy(f.h);
}

/* ---- locking: each entry point locks exactly once ------------------------------ */

typedef struct lock_probe { hl_mmap_pages src; hl_hooks inner; int depth; int max_depth; size_t locks; } lock_probe;
static void probe_lock(void *ctx) {
    lock_probe *p = ctx;
    if (++p->depth > p->max_depth) p->max_depth = p->depth;
    p->locks++;
}
static void probe_unlock(void *ctx) { ((lock_probe *)ctx)->depth--; }
static void *probe_alloc(void *ctx, size_t pages) {
    lock_probe *p = ctx;
    return p->inner.alloc_page(p->inner.ctx, pages);
}
static void probe_free(void *ctx, void *start, size_t pages) {
    lock_probe *p = ctx;
    p->inner.free_page(p->inner.ctx, start, pages);
}

static void test_lock_once(void) {
    static lock_probe p;
    memset(&p, 0, sizeof p);
    hl_mmap_pages_init(&p.src, 4096, 0);
    p.inner = hl_mmap_pages_hooks(&p.src, 0);
    hl_hooks hooks = {&p, 4096, probe_alloc, probe_free, probe_lock, probe_unlock, NULL, NULL};
    const hl_allocator *a = hl_allocator_find("liballoc");
    CHECK(a != NULL && strcmp(a->name, "liballoc") == 0, "registered as liballoc");
    if (!a) return;
    void *h = a->create(&hooks);
    CHECK(h != NULL, "create through the table");
    size_t before = p.locks;
    void *x = a->malloc(h, 100);
    void *y = a->memalign(h, 4096, 100);
    void *z = a->calloc(h, 10, 10);
    x = a->realloc(h, x, 5000);
    size_t u = a->usable_size(h, x);
    size_t c = a->check(h);
    a->free(h, x);
    a->free(h, y);
    a->free(h, z);
    CHECK(p.locks - before == 9, "one lock per call (%zu for 9)", p.locks - before);
    CHECK(p.max_depth == 1 && p.depth == 0, "never nested (max depth %d)", p.max_depth);
    CHECK(u >= 5000 && c == 0, "usable %zu check %zu", u, c);
    CHECK(a->malloc(h, 0) != NULL && a->realloc(h, NULL, 8) != NULL, "contract: malloc(0), realloc(NULL)");
    a->destroy(h);
    CHECK(p.src.bytes_mapped == 0 && p.depth == 0, "destroy through the table");
}

/* ---- the global k-API over the default instance ------------------------------- */

static hl_mmap_pages g_src;
static int g_ready;
static int g_depth, g_max_depth;
static size_t g_locks;

int liballoc_lock(void) {
    hl_spin_lock(&g_src.lock);
    if (++g_depth > g_max_depth) g_max_depth = g_depth;
    g_locks++;
    return 0;
}
int liballoc_unlock(void) {
    g_depth--;
    hl_spin_unlock(&g_src.lock);
    return 0;
}
void *liballoc_alloc(size_t pages) {
    hl_hooks hk = hl_mmap_pages_hooks(&g_src, 0);
    return hk.alloc_page(&g_src, pages);
}
int liballoc_free(void *ptr, size_t pages) {
    hl_hooks hk = hl_mmap_pages_hooks(&g_src, 0);
    hk.free_page(&g_src, ptr, pages);
    return 0;
}

static void test_global_api(void) {
    if (!g_ready) { hl_mmap_pages_init(&g_src, 4096, 0); g_ready = 1; }
    size_t before = g_locks;
    char *a = kmalloc(100);
    CHECK(a && ((uintptr_t)a & 15) == 0, "kmalloc");
    CHECK(g_locks - before == 1, "kmalloc locks once (%zu)", g_locks - before);
    fill(a, 100, 9);
    char *b = kcalloc(50, 4);
    int zero = b != NULL;
    for (size_t i = 0; b && i < 200; i++) zero &= b[i] == 0;
    CHECK(zero, "kcalloc zeroes");
    CHECK(kcalloc(SIZE_MAX / 2, 4) == NULL, "kcalloc overflow");
    CHECK(kmalloc((size_t)PTRDIFF_MAX + 1) == NULL && kmalloc(SIZE_MAX) == NULL, "kmalloc huge");
    a = krealloc(a, 20000);
    CHECK(a && verify(a, 100, 9), "krealloc keeps contents");
    CHECK(krealloc(a, SIZE_MAX) == NULL && verify(a, 100, 9), "krealloc huge fails, block kept");
    char *c = krealloc(NULL, 10);
    CHECK(c != NULL, "krealloc(NULL)");
    liballoc_heap *def = liballoc_default();
    CHECK(def != NULL, "default instance");
    CHECK(liballoc_check(def) == 0, "default instance checks clean");
    kfree(b);
    kfree(b);   /* double free through the global API: counted */
    CHECK(liballoc_bad_frees(def) == 1, "kfree double free counted");
    kfree(a);
    kfree(c);
    kfree(NULL);
    liballoc_stats st;
    liballoc_get_stats(def, &st);
    CHECK(st.live_blocks == 0 && st.majors == 1, "default instance empty (%zu majors)", st.majors);
    CHECK(g_src.bytes_mapped == st.major_bytes + st.control_bytes, "pages through liballoc_alloc");
    CHECK(g_max_depth == 1 && g_depth == 0, "global lock never nested (max %d)", g_max_depth);
    CHECK(liballoc_check(def) == 0, "default instance final check");
}

/* ---- throughput sanity -------------------------------------------------------- */

static void test_throughput(void) {
    fixture f;
    if (fixture_init(&f, 0, 0)) { CHECK(0, "create"); return; }
    liballoc_heap *h = f.h;
    enum { LIVE = 10000, PAIRS = 1000000 };
    static char *slot[LIVE];
    rng_state = 777;
    for (size_t i = 0; i < LIVE; i++) {
        slot[i] = liballoc_malloc(h, 8 + rng_below(65536 - 8 + 1));
        if (slot[i]) slot[i][0] = 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t fails = 0;
    for (size_t i = 0; i < PAIRS; i++) {
        size_t k = rng_below(LIVE);
        liballoc_free_block(h, slot[k]);
        slot[k] = liballoc_malloc(h, 8 + rng_below(65536 - 8 + 1));
        if (!slot[k]) fails++;
        else slot[k][0] = 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    CHECK(fails == 0, "%zu failed allocations", fails);
    CHECK(liballoc_check(h) == 0, "check after churn");
    liballoc_stats st;
    liballoc_get_stats(h, &st);
    printf("throughput (ASan build): %.2f M alloc/free pairs/s, 10k live 8 B-64 KiB, %zu majors, "
           "mapped %.1f MiB for %.1f MiB used\n",
           PAIRS / s / 1e6, st.majors, (double)f.src.bytes_mapped / 1048576.0,
           (double)st.used_bytes / 1048576.0);
    for (size_t i = 0; i < LIVE; i++) liballoc_free_block(h, slot[i]);
    liballoc_destroy(h);
}

int main(void) {
    test_edges();
    test_realloc();
    test_bad_frees();
    test_prev_dead();
    test_majors_returned();
    test_oom();
    test_checker();
    test_lock_once();
    test_global_api();
    test_threads();
    test_random();
    test_throughput();
    return driver_finish("test_liballoc");
}
