/*
 * test_threads.c — threads and fork over every allocator's table, with the
 * spinlock hooks of the mmap page source (as the Node addon and the preload
 * library use them), and over each allocator under the debug layer and behind
 * the thread cache (native/cache/), plus the cache's own promises.
 *
 *  - stress: THREADS threads x HEAPLAB_STRESS_OPS operations each (default
 *    1,000,000; 100,000 under the debug layer) of malloc / memalign / calloc /
 *    realloc / free on one shared heap. Every block carries its own size and
 *    seed in its first 16 bytes and a pattern after; every block is verified
 *    before it is resized or freed. One op in 16 trades a block with another
 *    thread through a shared exchange, so blocks are freed by a thread that did
 *    not allocate them. Behind the cache it runs again with CROWD threads, more
 *    than the cache has arenas, sharing the same number of operations.
 *  - fork: one thread allocates and frees without pause while the main thread
 *    forks FORKS times. pthread_atfork takes the heap's lock (and the debug
 *    layer's, first) in prepare and releases it in parent and child, as the
 *    preload library does: the fork happens while the other thread is between
 *    (or waiting for) malloc calls, never inside one. The child then allocates,
 *    verifies, frees and checks the heap; a child that hangs is killed by
 *    alarm() and counted as a failure.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../native/allocator.h"
#include "../../native/debug/debug.h"
#include "../../native/cache/cache.h"
#include "driver.h"
#include "../../native/pages/pages.h"

/* CROWD: threads on one cached heap, more than it has arenas (two threads per arena). */
enum { THREADS = 2, CROWD = HL_CACHE_ARENAS + 2, SLOTS = 512, EXCHANGE = 64, FORKS = 12, CHILD_BLOCKS = 2000 };

typedef struct heap_under_test {
    const hl_allocator *a;
    int debug, cache;
    hl_mmap_pages pages;
    hl_hooks hooks;
    void *heap;
} heap_under_test;

/* ---- self-describing blocks ---------------------------------------------- */

typedef struct block_head { uint64_t size, seed; } block_head;
enum { HEAD = sizeof(block_head) };

static unsigned char pat(uint64_t seed, size_t i) { return (unsigned char)(seed ^ (i * 0x9D) ^ (i >> 7)); }

static void block_write(unsigned char *p, size_t size, uint64_t seed) {
    block_head h = {size, seed};
    memcpy(p, &h, HEAD);
    for (size_t i = HEAD; i < size; i++) p[i] = pat(seed, i);
}

/* 1 if p still holds what block_write put there (size >= HEAD). */
static int block_ok(const unsigned char *p, size_t expect_size) {
    block_head h;
    memcpy(&h, p, HEAD);
    if (h.size != expect_size && expect_size != SIZE_MAX) return 0;
    for (size_t i = HEAD; i < h.size; i++)
        if (p[i] != pat(h.seed, i)) return 0;
    return 1;
}
static size_t block_size(const unsigned char *p) {
    block_head h;
    memcpy(&h, p, HEAD);
    return (size_t)h.size;
}

/* ---- stress ---------------------------------------------------------------- */

typedef struct stress_shared {
    heap_under_test *h;
    size_t ops;
    _Atomic(unsigned char *) exchange[EXCHANGE];
} stress_shared;

typedef struct stress_thread {
    stress_shared *s;
    uint64_t seed;
    size_t bad, failed, traded, ops_done;
} stress_thread;

static size_t stress_size(uint64_t *rng) {
    uint64_t r = driver_rand(rng);
    if ((r & 63) == 0) return HEAD + (size_t)(r >> 20) % 16384;
    return HEAD + (size_t)(r >> 20) % 240;
}

static void *stress_run(void *arg) {
    stress_thread *t = arg;
    const hl_allocator *a = t->s->h->a;
    void *heap = t->s->h->heap;
    unsigned char *mine[SLOTS];
    memset(mine, 0, sizeof mine);
    uint64_t rng = t->seed;
    for (size_t op = 0; op < t->s->ops; op++) {
        uint64_t r = driver_rand(&rng);
        unsigned char **b = &mine[(r >> 8) % SLOTS];
        unsigned kind = (unsigned)(r & 15);
        if (!*b) {
            size_t size = stress_size(&rng);
            unsigned char *p = kind < 2 ? a->memalign(heap, (size_t)32 << (r >> 40) % 8, size)
                             : kind < 4 ? a->calloc(heap, 1, size)
                                        : a->malloc(heap, size);
            if (!p) { t->failed++; continue; }
            if (kind >= 2 && kind < 4)
                for (size_t i = 0; i < size; i++) t->bad += p[i] != 0;
            block_write(p, size, rng);
            *b = p;
        } else if (kind < 6) {
            t->bad += !block_ok(*b, SIZE_MAX);
            a->free(heap, *b);
            *b = NULL;
        } else if (kind < 11) {
            size_t old = block_size(*b), size = stress_size(&rng);
            t->bad += !block_ok(*b, old);
            unsigned char *p = a->realloc(heap, *b, size);
            if (!p) { t->failed++; continue; }
            /* the head and what fits of the pattern survived */
            block_head hd;
            memcpy(&hd, p, HEAD);
            for (size_t i = HEAD; i < (old < size ? old : size); i++) t->bad += p[i] != pat(hd.seed, i);
            block_write(p, size, rng);
            *b = p;
        } else if (kind == 11) {
            /* trade with whoever comes next: they verify and free ours */
            t->bad += !block_ok(*b, SIZE_MAX);
            unsigned char *theirs = atomic_exchange(&t->s->exchange[(r >> 32) % EXCHANGE], *b);
            *b = theirs;
            if (theirs) {
                t->bad += !block_ok(theirs, SIZE_MAX);
                t->traded++;
            }
        } else {
            t->bad += !block_ok(*b, SIZE_MAX);
        }
        t->ops_done++;
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (mine[i]) {
            t->bad += !block_ok(mine[i], SIZE_MAX);
            a->free(heap, mine[i]);
        }
    return NULL;
}

static size_t env_size(const char *name, size_t fallback) {
    const char *v = getenv(name);
    return v && *v ? (size_t)strtoull(v, NULL, 10) : fallback;
}

/* The layers a design is tested under: alone, the debug layer, the thread cache. */
enum { LAYER_NONE = 0, LAYER_DEBUG = 1, LAYER_CACHE = 2 };

static int open_heap(heap_under_test *h, const hl_allocator *a, int layer) {
    memset(h, 0, sizeof *h);
    h->debug = layer == LAYER_DEBUG;
    h->cache = layer == LAYER_CACHE;
    h->a = layer == LAYER_DEBUG ? hl_debug_wrap(a) : layer == LAYER_CACHE ? hl_cache_wrap(a) : a;
    hl_mmap_pages_init(&h->pages, 0, 0);
    h->hooks = hl_mmap_pages_hooks(&h->pages, 1);
    h->heap = h->a->create(&h->hooks);
    return h->heap != NULL;
}

static void close_heap(heap_under_test *h) {
    h->a->destroy(h->heap);
    CHECK(h->pages.bytes_mapped == 0, "%s: destroy left %zu bytes mapped", h->a->name, h->pages.bytes_mapped);
}

static void test_stress(const hl_allocator *a, int layer, int threads) {
    int debug = layer == LAYER_DEBUG;
    heap_under_test h;
    CHECK(open_heap(&h, a, layer), "%s: create", a->name);
    stress_shared s;
    memset(&s, 0, sizeof s);
    s.h = &h;
    s.ops = debug ? env_size("HEAPLAB_STRESS_DEBUG_OPS", 100000) : env_size("HEAPLAB_STRESS_OPS", 1000000);
    if (threads > THREADS) s.ops /= (size_t)threads; /* the crowd shares the 2-thread run's work */
    pthread_t th[CROWD];
    stress_thread args[CROWD];
    for (int i = 0; i < threads; i++) {
        args[i] = (stress_thread){&s, 0xC0FFEEULL * (uint64_t)(i + 1) + (uint64_t)layer, 0, 0, 0, 0};
        pthread_create(&th[i], NULL, stress_run, &args[i]);
    }
    size_t bad = 0, failed = 0, traded = 0, done = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        bad += args[i].bad;
        failed += args[i].failed;
        traded += args[i].traded;
        done += args[i].ops_done;
    }
    for (size_t i = 0; i < EXCHANGE; i++) {
        unsigned char *p = atomic_load(&s.exchange[i]);
        if (p) {
            bad += !block_ok(p, SIZE_MAX);
            h.a->free(h.heap, p);
        }
    }
    CHECK(bad == 0, "%s: %zu corrupted bytes or blocks under %d threads", h.a->name, bad, threads);
    CHECK(failed == 0, "%s: %zu allocations failed without a limit", h.a->name, failed);
    CHECK(traded > 0, "%s: no block crossed threads", h.a->name);
    CHECK(done >= s.ops * (size_t)threads, "%s: only %zu operations ran", h.a->name, done);
    CHECK(h.a->check(h.heap) == 0, "%s: heap sound after the stress", h.a->name);
    if (debug) {
        hl_debug_finding f;
        CHECK(hl_debug_take_findings(h.heap, &f, 1) == 0, "%s: the debug layer found %s", h.a->name,
              hl_debug_kind_name(f.kind));
    }
    close_heap(&h);
}

/* ---- fork ------------------------------------------------------------------ */

static heap_under_test *_Atomic fork_heap; /* the heap the atfork handlers guard */

static void fork_prepare(void) {
    heap_under_test *h = atomic_load(&fork_heap);
    if (!h) return;
    if (h->debug) hl_debug_lock(h->heap);
    if (h->cache) hl_cache_fork_prepare(h->heap);
    h->hooks.lock(h->hooks.ctx);
}
static void fork_release(void) {
    heap_under_test *h = atomic_load(&fork_heap);
    if (!h) return;
    h->hooks.unlock(h->hooks.ctx);
    if (h->cache) hl_cache_fork_release(h->heap);
    if (h->debug) hl_debug_unlock(h->heap);
}

typedef struct churn { heap_under_test *h; atomic_int stop; atomic_size_t rounds; size_t bad; } churn;

static void *churn_run(void *arg) {
    churn *c = arg;
    unsigned char *keep[64] = {0};
    uint64_t rng = 42;
    while (!atomic_load(&c->stop)) {
        size_t i = (size_t)(driver_rand(&rng) % 64);
        if (keep[i]) {
            c->bad += !block_ok(keep[i], SIZE_MAX);
            c->h->a->free(c->h->heap, keep[i]);
            keep[i] = NULL;
        } else {
            size_t size = HEAD + (size_t)(driver_rand(&rng) % 3000);
            keep[i] = c->h->a->malloc(c->h->heap, size);
            if (keep[i]) block_write(keep[i], size, rng);
        }
        atomic_fetch_add_explicit(&c->rounds, 1, memory_order_relaxed);
    }
    for (size_t i = 0; i < 64; i++)
        if (keep[i]) c->h->a->free(c->h->heap, keep[i]);
    return NULL;
}

/* In the child: allocate, verify, free, check. Exit status 0 when sound. */
static int child_work(heap_under_test *h) {
    alarm(20);
    static unsigned char *blocks[CHILD_BLOCKS];
    uint64_t rng = 7;
    int bad = 0;
    for (size_t i = 0; i < CHILD_BLOCKS; i++) {
        size_t size = HEAD + (size_t)(driver_rand(&rng) % 5000);
        blocks[i] = h->a->malloc(h->heap, size);
        if (!blocks[i]) return 2;
        block_write(blocks[i], size, i);
    }
    for (size_t i = 0; i < CHILD_BLOCKS; i++) {
        bad |= !block_ok(blocks[i], SIZE_MAX);
        h->a->free(h->heap, blocks[i]);
    }
    if (h->a->check(h->heap) != 0) return 3;
    return bad ? 4 : 0;
}

static void test_fork(const hl_allocator *a, int layer) {
    heap_under_test h;
    CHECK(open_heap(&h, a, layer), "%s: create", a->name);
    atomic_store(&fork_heap, &h);
    churn c;
    memset(&c, 0, sizeof c);
    c.h = &h;
    pthread_t th;
    pthread_create(&th, NULL, churn_run, &c);
    size_t ok = 0;
    for (int i = 0; i < FORKS; i++) {
        while (atomic_load_explicit(&c.rounds, memory_order_relaxed) < (size_t)(i + 1) * 200) sched_yield(); /* the churn thread is busy in the heap */
        pid_t pid = fork();
        if (pid == 0) _exit(child_work(&h));
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
        else
            CHECK(0, "%s: child %d %s %d", h.a->name, i, WIFEXITED(status) ? "exited with" : "killed by signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    }
    atomic_store(&c.stop, 1);
    pthread_join(th, NULL);
    atomic_store(&fork_heap, NULL);
    CHECK(ok == FORKS, "%s: %zu of %d forked children allocated soundly", h.a->name, ok, FORKS);
    CHECK(c.bad == 0, "%s: the churn thread saw %zu corrupted blocks", h.a->name, c.bad);
    CHECK(h.a->check(h.heap) == 0, "%s: parent heap sound after forks", h.a->name);
    close_heap(&h);
}

/* ---- the thread cache's own promises ------------------------------------------ */

static void *fill_and_exit(void *arg) {
    heap_under_test *h = arg;
    void *p[64];
    for (int i = 0; i < 64; i++) p[i] = h->a->malloc(h->heap, 100);
    for (int i = 0; i < 64; i++) h->a->free(h->heap, p[i]); /* into this thread's bins */
    return NULL;
}

/* Frees the middle one of three blocks and exits: its bins go back, and the
 * block is free in the design between two live neighbours. */
typedef struct freed_by_exit { heap_under_test *h; void *left, *block, *right; } freed_by_exit;
static void *free_middle_and_exit(void *arg) {
    freed_by_exit *f = arg;
    f->left = f->h->a->malloc(f->h->heap, 100);
    f->block = f->h->a->malloc(f->h->heap, 100);
    f->right = f->h->a->malloc(f->h->heap, 100);
    f->h->a->free(f->h->heap, f->block);
    return NULL;
}
/* Frees a block a second time, from a thread of its own, and exits (its bins go back). */
typedef struct second_free { heap_under_test *h; void *block; } second_free;
static void *free_again_and_exit(void *arg) {
    second_free *f = arg;
    f->h->a->free(f->h->heap, f->block);
    return NULL;
}
enum { TAKES = 300 };
typedef struct taker { heap_under_test *h; void *block; size_t times; void *taken[TAKES]; } taker;
static void *take_blocks(void *arg) {
    taker *t = arg;
    for (int i = 0; i < TAKES; i++) {
        t->taken[i] = t->h->a->malloc(t->h->heap, 100);
        t->times += t->taken[i] == t->block;
    }
    return NULL;
}

typedef struct in_used_pieces { void *const *blocks; size_t count, found; } in_used_pieces;
static void count_in_used(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user) {
    (void)payload, (void)usable, (void)region;
    in_used_pieces *w = user;
    if (state != HL_WALK_USED) return;
    for (size_t i = 0; i < w->count; i++)
        if ((char *)w->blocks[i] >= (char *)start && (char *)w->blocks[i] < (char *)start + size) w->found++;
}

/* A cached realloc moves through the bins, and a block the design would merge
 * goes back to the design rather than to a bin. */
static void test_cache_gives_back(heap_under_test *h) {
    const char *name = h->a->name;
    hl_cache_stats st;
    /* the program holds a lot: the thread's bound is at its most, nothing is flushed for it */
    void *hold = h->a->malloc(h->heap, (size_t)1 << 20);
    unsigned char *r = h->a->malloc(h->heap, 100);
    for (int i = 0; i < 100; i++) r[i] = (unsigned char)i;
    unsigned char *r2 = h->a->realloc(h->heap, r, 90);
    CHECK(r2 == r, "%s: a realloc to a size the block still fits stays in place", name);
    unsigned char *r3 = h->a->realloc(h->heap, r2, 3000);
    size_t wrong = 0;
    for (int i = 0; r3 && i < 90; i++) wrong += r3[i] != (unsigned char)i;
    CHECK(r3 && r3 != r && wrong == 0, "%s: a cached realloc that grows moves and keeps the bytes (%zu wrong)", name, wrong);
    unsigned char *again = h->a->malloc(h->heap, 100);
    CHECK(again == r, "%s: the block a realloc moved from waits in its bin", name);
    if (strcmp(name, "liballoc+cache") == 0) { /* the one design that checks a pointer */
        memset(again, 0x3C, 100);
        CHECK(h->a->realloc(h->heap, again + 16, 50) == NULL, "%s: a realloc of a pointer inside a block is refused", name);
        CHECK(again[0] == 0x3C && again[99] == 0x3C, "%s: and the block is untouched", name);
    }
    h->a->free(h->heap, again);
    h->a->free(h->heap, r3);

    /* memalign leaves a free gap before its block: freed, the block merges with it */
    enum { ALIGNED = 40 };
    void *al[ALIGNED];
    for (int i = 0; i < ALIGNED; i++) al[i] = h->a->memalign(h->heap, 4096, 200);
    for (int i = 0; i < ALIGNED; i++) h->a->free(h->heap, al[i]);
    in_used_pieces w = {al, ALIGNED, 0};
    h->a->walk(h->heap, count_in_used, &w);
    /* on their way back 32 (HL_CACHE_PENDING) at a time: the first 32 are the
     * design's again (free, or given back with their pool), the rest wait */
    CHECK(w.found == ALIGNED - 32, "%s: %zu of %d freed blocks with a free predecessor are still used in the design", name, w.found, ALIGNED);
    hl_cache_get_stats(h->heap, &st);
    size_t doubles = st.double_frees;
    h->a->free(h->heap, al[ALIGNED - 1]); /* still on its way back: a second free is caught */
    hl_cache_get_stats(h->heap, &st);
    CHECK(st.double_frees == doubles + 1, "%s: a second free of a block on its way back was counted", name);
    CHECK(h->a->check(h->heap) == 0, "%s: check after giving back", name);
    h->a->free(h->heap, hold);
    hl_cache_get_stats(h->heap, &st);
    CHECK(st.cached_bytes == 0, "%s: the last free empties the bins and the blocks on their way back (%zu left)", name, st.cached_bytes);
}

static void test_cache_promises(const hl_allocator *a) {
    heap_under_test h;
    CHECK(open_heap(&h, a, LAYER_CACHE), "%s+cache: create", a->name);
    /* a thread that exits with full bins gives them back */
    pthread_t th;
    pthread_create(&th, NULL, fill_and_exit, &h);
    pthread_join(th, NULL);
    hl_cache_stats st;
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.cached_bytes == 0, "%s+cache: %zu bytes still cached after the thread exited", a->name, st.cached_bytes);
    CHECK(st.hits + st.misses >= 64, "%s+cache: the exited thread's counts are kept", a->name);
    /* a program that holds nothing keeps nothing in its bins (they follow the heap) */
    unsigned char *lone = h.a->malloc(h.heap, 48);
    h.a->free(h.heap, lone);
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.cached_bytes == 0, "%s+cache: %zu bytes cached while the program holds none", a->name, st.cached_bytes);
    /* while it holds something, a freed block stays cached; a second free of
     * it is ignored, and the block is handed out once */
    void *keep = h.a->malloc(h.heap, 4096);
    unsigned char *p = h.a->malloc(h.heap, 48);
    h.a->free(h.heap, p);
    h.a->free(h.heap, p);
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.double_frees == 1, "%s+cache: the second free was counted (%zu)", a->name, st.double_frees);
    unsigned char *x = h.a->malloc(h.heap, 48), *y = h.a->malloc(h.heap, 48);
    CHECK(x != y, "%s+cache: one block handed out twice after a double free", a->name);
    /* a second free on another thread, while the block waits in this thread's
     * bin: that thread's bin would take it too, and its exit would give it to
     * the design, so that the bin here and the design both hand it out */
    unsigned char *w = h.a->malloc(h.heap, 100);
    h.a->free(h.heap, w);
    second_free sf = {&h, w};
    pthread_create(&th, NULL, free_again_and_exit, &sf);
    pthread_join(th, NULL);
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.double_frees == 2, "%s+cache: the second free on another thread was counted (%zu)", a->name, st.double_frees);
    static taker twice;
    twice = (taker){&h, w, 0, {0}};
    take_blocks(&twice);
    CHECK(twice.times == 1, "%s+cache: a block freed twice on two threads was handed out %zu times", a->name, twice.times);
    for (int i = 0; i < TAKES; i++) h.a->free(h.heap, twice.taken[i]);
    /* a cached block is dirty; calloc clears it */
    memset(x, 0x5A, 48);
    h.a->free(h.heap, x);
    unsigned char *z = h.a->calloc(h.heap, 1, 48);
    size_t dirty = 0;
    for (int i = 0; z && i < 48; i++) dirty += z[i] != 0;
    CHECK(z && dirty == 0, "%s+cache: calloc of a cached block has %zu non-zero bytes", a->name, dirty);
    /* a second free of a block the design already holds (an exited thread's
     * bins gave it back) is the design's to ignore: cached, it would be handed
     * out by the bin and by the design */
    freed_by_exit fx = {&h, NULL, NULL, NULL};
    pthread_create(&th, NULL, free_middle_and_exit, &fx);
    pthread_join(th, NULL);
    h.a->free(h.heap, fx.block);
    static taker here, there;
    here = (taker){&h, fx.block, 0, {0}};
    there = here;
    take_blocks(&here);
    pthread_create(&th, NULL, take_blocks, &there);
    pthread_join(th, NULL);
    CHECK(here.times + there.times <= 1, "%s+cache: a block freed twice was handed out %zu times", a->name, here.times + there.times);
    for (int i = 0; i < TAKES; i++) {
        h.a->free(h.heap, here.taken[i]);
        h.a->free(h.heap, there.taken[i]);
    }
    h.a->free(h.heap, fx.left);
    h.a->free(h.heap, fx.right);
    h.a->free(h.heap, y);
    h.a->free(h.heap, z);
    h.a->free(h.heap, keep);
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.cached_bytes == 0, "%s+cache: the last free empties the bins (%zu left)", a->name, st.cached_bytes);
    CHECK(h.a->check(h.heap) == 0, "%s+cache: check after the promises", a->name);
    test_cache_gives_back(&h);
    close_heap(&h);
}

/* Arenas: a thread's blocks come from its own instance of the design, and a
 * block freed on another thread goes back to the arena it came from. */
enum { ARENA_BLOCKS = 64 };
typedef struct arena_job {
    heap_under_test *h;
    void *blocks[ARENA_BLOCKS + 1];
    pthread_barrier_t *made, *done;
} arena_job;

static void *allocate_and_wait(void *arg) {
    arena_job *j = arg;
    for (int i = 0; i < ARENA_BLOCKS; i++) {
        j->blocks[i] = j->h->a->malloc(j->h->heap, 100);
        if (j->blocks[i]) block_write(j->blocks[i], 100, (uint64_t)i);
    }
    j->blocks[ARENA_BLOCKS] = j->h->a->malloc(j->h->heap, (size_t)1 << 20); /* beyond the bins */
    pthread_barrier_wait(j->made);
    pthread_barrier_wait(j->done); /* alive while the other thread is made: it gets an arena of its own */
    return NULL;
}

typedef struct region_of_blocks { void *const *blocks; size_t count, used; unsigned lowest, highest; } region_of_blocks;
static void find_blocks(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user) {
    (void)payload, (void)usable;
    region_of_blocks *w = user;
    if (state != HL_WALK_USED) return;
    for (size_t i = 0; i < w->count; i++) {
        if ((char *)w->blocks[i] < (char *)start || (char *)w->blocks[i] >= (char *)start + size) continue;
        w->used++;
        if (region < w->lowest) w->lowest = region;
        if (region > w->highest) w->highest = region;
    }
}

static void test_cache_arenas(const hl_allocator *a) {
    heap_under_test h;
    CHECK(open_heap(&h, a, LAYER_CACHE), "%s+cache: create", a->name);
    void *mine = h.a->malloc(h.heap, 100);
    hl_cache_stats st;
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.arenas == 1, "%s+cache: one thread, %zu arenas", a->name, st.arenas);
    pthread_barrier_t made, done;
    pthread_barrier_init(&made, NULL, 3);
    pthread_barrier_init(&done, NULL, 3);
    arena_job job[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        job[k] = (arena_job){.h = &h, .made = &made, .done = &done};
        pthread_create(&th[k], NULL, allocate_and_wait, &job[k]);
    }
    pthread_barrier_wait(&made);
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.arenas == 3, "%s+cache: three live threads, %zu arenas", a->name, st.arenas);
    /* the two threads' blocks lie in different regions of the walk (each arena's own) */
    region_of_blocks w[2];
    for (int k = 0; k < 2; k++) {
        w[k] = (region_of_blocks){job[k].blocks, ARENA_BLOCKS + 1, 0, UINT32_MAX, 0};
        h.a->walk(h.heap, find_blocks, &w[k]);
        CHECK(w[k].used == ARENA_BLOCKS + 1, "%s+cache: %zu of thread %d's blocks are used in the walk", a->name, w[k].used, k);
    }
    CHECK(w[0].highest < w[1].lowest || w[1].highest < w[0].lowest,
          "%s+cache: the threads' blocks share regions (%u-%u, %u-%u)", a->name, w[0].lowest, w[0].highest, w[1].lowest, w[1].highest);
    pthread_barrier_wait(&done);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    /* this thread frees them: into its bins, and back to their own arenas */
    size_t bad = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i <= ARENA_BLOCKS; i++) {
            if (i < ARENA_BLOCKS) bad += !block_ok(job[k].blocks[i], 100);
            h.a->free(h.heap, job[k].blocks[i]);
        }
    CHECK(bad == 0, "%s+cache: %zu blocks of other threads changed", a->name, bad);
    CHECK(h.a->check(h.heap) == 0, "%s+cache: check with other arenas' blocks in this thread's bins", a->name);
    hl_cache_flush_thread(h.heap);
    for (int k = 0; k < 2; k++) {
        w[k] = (region_of_blocks){job[k].blocks, ARENA_BLOCKS + 1, 0, UINT32_MAX, 0};
        h.a->walk(h.heap, find_blocks, &w[k]);
        CHECK(w[k].used == 0, "%s+cache: %zu of thread %d's blocks still used after the flush", a->name, w[k].used, k);
    }
    CHECK(h.a->check(h.heap) == 0, "%s+cache: check after the other arenas' blocks went back", a->name);
    h.a->free(h.heap, mine);
    pthread_barrier_destroy(&made);
    pthread_barrier_destroy(&done);
    close_heap(&h);
}

/* A producer and a consumer: the consumer's bins fill with the producer's
 * blocks, whose halves go to the producer's arena's depot as they are, and the
 * producer's next mallocs take them from there. */
enum { PRODUCED = 1000, PRODUCER_ROUNDS = 6 };
typedef struct producer_job {
    heap_under_test *h;
    pthread_barrier_t *made, *freed;
    void *block[PRODUCED];
} producer_job;
static void *produce(void *arg) {
    producer_job *j = arg;
    for (int r = 0; r < PRODUCER_ROUNDS; r++) {
        for (int i = 0; i < PRODUCED; i++) {
            j->block[i] = j->h->a->malloc(j->h->heap, 100);
            if (j->block[i]) memset(j->block[i], (r * 31 + i) & 0xff, 100);
        }
        pthread_barrier_wait(j->made);
        pthread_barrier_wait(j->freed);
    }
    return NULL;
}
static void test_cache_depot(const hl_allocator *a) {
    heap_under_test h;
    CHECK(open_heap(&h, a, LAYER_CACHE), "%s+cache: create", a->name);
    void *held = h.a->malloc(h.heap, 1 << 20); /* a dense heap that is not draining: the depot is open */
    pthread_barrier_t made, freed;
    pthread_barrier_init(&made, NULL, 2);
    pthread_barrier_init(&freed, NULL, 2);
    static producer_job job;
    job = (producer_job){&h, &made, &freed, {0}};
    pthread_t th;
    pthread_create(&th, NULL, produce, &job);
    size_t wrong = 0, caught = 0;
    hl_cache_stats st;
    for (int r = 0; r < PRODUCER_ROUNDS; r++) {
        pthread_barrier_wait(&made);
        for (int i = 0; i < PRODUCED; i++) {
            const unsigned char *b = job.block[i];
            for (int k = 0; b && k < 100; k++) wrong += b[k] != ((r * 31 + i) & 0xff);
            if (!b) wrong++;
            h.a->free(h.heap, job.block[i]);
        }
        if (r == 0) { /* the last block freed is in a bin or the depot: freeing it again is caught */
            hl_cache_get_stats(h.heap, &st);
            size_t before = st.double_frees;
            h.a->free(h.heap, job.block[PRODUCED - 1]);
            hl_cache_get_stats(h.heap, &st);
            caught = st.double_frees - before;
        }
        CHECK(h.a->check(h.heap) == 0, "%s+cache: check with lists in the depot (round %d)", a->name, r);
        pthread_barrier_wait(&freed);
    }
    pthread_join(th, NULL);
    CHECK(wrong == 0, "%s+cache: %zu bytes wrong in blocks that went through the depot", a->name, wrong);
    CHECK(caught == 1, "%s+cache: a second free of a block the consumer held was caught (%zu)", a->name, caught);
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.transfers > 0, "%s+cache: the producer took its blocks back from the depot (%zu lists)", a->name, st.transfers);
    h.a->free(h.heap, held);
    hl_cache_flush_thread(h.heap); /* malloc_trim: this thread's bins and every depot */
    hl_cache_get_stats(h.heap, &st);
    CHECK(st.cached_bytes == 0, "%s+cache: %zu bytes cached after the trim", a->name, st.cached_bytes);
    CHECK(h.a->check(h.heap) == 0, "%s+cache: check after the trim", a->name);
    pthread_barrier_destroy(&made);
    pthread_barrier_destroy(&freed);
    close_heap(&h);
}

int main(void) {
    pthread_atfork(fork_prepare, fork_release, fork_release);
    for (const hl_allocator *const *a = hl_allocators; *a; a++) test_cache_promises(*a);
    for (const hl_allocator *const *a = hl_allocators; *a; a++) test_cache_arenas(*a);
    for (const hl_allocator *const *a = hl_allocators; *a; a++) test_cache_depot(*a);
    size_t count = 0;
    for (const hl_allocator *const *a = hl_allocators; *a; a++, count++) {
        for (int layer = LAYER_NONE; layer <= LAYER_CACHE; layer++) {
            test_stress(*a, layer, THREADS); /* with the cache: threads exit with full bins */
            test_fork(*a, layer);
        }
        test_stress(*a, LAYER_CACHE, CROWD); /* more threads than arenas: two share each of some */
    }
    CHECK(count > 0, "no allocator in this build");
    return driver_finish("test_threads");
}
