/* bench.c — the benchmark's replay in C. See bench.h for what is measured and how. */
#define _GNU_SOURCE
#include "bench.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../cache/cache.h"
#include "../pages/pages.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define HL_HAVE_TSC 1
#else
#define HL_HAVE_TSC 0
#endif

/* ---- the clock ----------------------------------------------------------- */

static int use_tsc;
static hl_bench_clock_info clock_info;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;


static inline uint64_t ticks(void) {
#if HL_HAVE_TSC
    if (use_tsc) {
        _mm_lfence();
        uint64_t t = __rdtsc();
        _mm_lfence();
        return t;
    }
#endif
    return hl_now_ns();
}

/* The TSC is a usable clock only if it runs at a constant rate through power
 * states (Linux lists constant_tsc and nonstop_tsc for such CPUs). */
static int tsc_is_invariant(void) {
#if HL_HAVE_TSC
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[4096];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            ok = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
            break;
        }
    }
    fclose(f);
    return ok;
#else
    return 0;
#endif
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void clock_init(void) {
    use_tsc = getenv("HEAPLAB_BENCH_CLOCK") && strcmp(getenv("HEAPLAB_BENCH_CLOCK"), "monotonic") == 0 ? 0 : tsc_is_invariant();
    clock_info.ns_per_tick = 1.0;
    clock_info.name = "clock_gettime(CLOCK_MONOTONIC)";
    if (use_tsc) {
        /* calibrate over ~30 ms of CLOCK_MONOTONIC */
        uint64_t n0 = hl_now_ns(), c0 = ticks(), n1, c1;
        do {
            n1 = hl_now_ns();
            c1 = ticks();
        } while (n1 - n0 < 30000000u);
        clock_info.ns_per_tick = (double)(n1 - n0) / (double)(c1 - c0);
        clock_info.name = "rdtsc (lfence-fenced, calibrated against CLOCK_MONOTONIC)";
    }
    enum { N = 20001 };
    static uint64_t d[N];
    for (int i = 0; i < N; i++) {
        uint64_t a = ticks();
        uint64_t b = ticks();
        d[i] = b - a;
    }
    qsort(d, N, sizeof d[0], cmp_u64);
    clock_info.overhead_ns = (double)d[N / 2] * clock_info.ns_per_tick;
    clock_info.min_overhead_ns = (double)d[0] * clock_info.ns_per_tick;
}

const hl_bench_clock_info *hl_bench_clock(void) {
    pthread_once(&clock_once, clock_init);
    return &clock_info;
}

/* ---- the latency histogram ------------------------------------------------ */

static inline size_t bucket_of(uint64_t v) {
    if (v < 128) return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
    size_t sub = (size_t)(v >> (e - HL_BENCH_SUB_BITS)) & 63u;
    size_t i = 128 + (size_t)(e - 7) * 64 + sub;
    return i < HL_BENCH_BUCKETS ? i : HL_BENCH_BUCKETS - 1;
}

double hl_bench_bucket_ns(size_t i) {
    if (i < 128) return (double)i;
    size_t e = 7 + (i - 128) / 64, sub = (i - 128) % 64;
    return (double)(64 + sub) * (double)((uint64_t)1 << (e - HL_BENCH_SUB_BITS));
}

static inline void hist_add(hl_bench_histogram *h, double ns) {
    if (ns < 0) ns = 0;
    h->count[bucket_of((uint64_t)ns)]++;
    h->total++;
    if (ns > h->max_ns) h->max_ns = ns;
}

static void hist_merge(hl_bench_histogram *into, const hl_bench_histogram *from) {
    for (size_t i = 0; i < HL_BENCH_BUCKETS; i++) into->count[i] += from->count[i];
    into->total += from->total;
    if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
}

/* ---- targets -------------------------------------------------------------- */

enum target_kind { T_HEAPLAB, T_GLIBC, T_JEMALLOC, T_MIMALLOC, T_TCMALLOC, T_LIBRARY };

/* A library the user names (NAME=PATH): the malloc family it defines itself.
 * The table is the `heap` its wrappers receive, so many can be loaded at once. */
typedef struct library_fns {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);       /* may be NULL: malloc + memset */
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    size_t (*usable_size)(void *);         /* may be NULL */
    int (*trim)(size_t);                   /* malloc_trim, may be NULL */
} library_fns;

struct hl_bench_target {
    enum target_kind kind;
    char name[32];
    const hl_allocator *ops; /* heaplab: the allocator; others: wrappers below */
    const char *memory_source;
    char path[512];
    void *handle;
    library_fns lib;         /* T_LIBRARY */
};

/* glibc: the process's own malloc family. */
static void *g_malloc(void *h, size_t n) { (void)h; return malloc(n); }
static void *g_calloc(void *h, size_t c, size_t n) { (void)h; return calloc(c, n); }
static void *g_memalign(void *h, size_t a, size_t n) {
    (void)h;
    void *p = NULL;
    return posix_memalign(&p, a < sizeof(void *) ? sizeof(void *) : a, n) == 0 ? p : NULL;
}
/* The table's realloc(p, 0) is a minimum block (allocator.h); the malloc
 * family's may free and return NULL (glibc does). Every non-heaplab target asks
 * for 1 byte instead, so a trace means the same on every target. */
static size_t table_size(size_t n) { return n ? n : 1; }
static void *g_realloc(void *h, void *p, size_t n) { (void)h; return realloc(p, table_size(n)); }
static void g_free(void *h, void *p) { (void)h; free(p); }
static const hl_allocator glibc_ops = {.name = "glibc", .malloc = g_malloc, .memalign = g_memalign, .realloc = g_realloc, .calloc = g_calloc, .free = g_free};

/* Peers: their entry points, found with dlsym on their own handle. One of each
 * per process (a peer is loaded once and kept). */
static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    int (*mallctl)(const char *, void *, size_t *, void *, size_t);
} je;
static void *je_malloc_w(void *h, size_t n) { (void)h; return je.malloc(n); }
static void *je_calloc_w(void *h, size_t c, size_t n) { (void)h; return je.calloc(c, n); }
static void *je_memalign_w(void *h, size_t a, size_t n) {
    (void)h;
    void *p = NULL;
    return je.posix_memalign(&p, a < sizeof(void *) ? sizeof(void *) : a, n) == 0 ? p : NULL;
}
static void *je_realloc_w(void *h, void *p, size_t n) { (void)h; return je.realloc(p, table_size(n)); }
static void je_free_w(void *h, void *p) { (void)h; je.free(p); }
static const hl_allocator je_ops = {.name = "jemalloc", .malloc = je_malloc_w, .memalign = je_memalign_w, .realloc = je_realloc_w, .calloc = je_calloc_w, .free = je_free_w};

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*malloc_aligned)(size_t size, size_t align);
    void (*collect)(_Bool force);
    void (*process_info)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *, size_t *, size_t *);
} mi;
static void *mi_malloc_w(void *h, size_t n) { (void)h; return mi.malloc(n); }
static void *mi_calloc_w(void *h, size_t c, size_t n) { (void)h; return mi.calloc(c, n); }
static void *mi_memalign_w(void *h, size_t a, size_t n) { (void)h; return mi.malloc_aligned(n, a); }
static void *mi_realloc_w(void *h, void *p, size_t n) { (void)h; return mi.realloc(p, table_size(n)); }
static void mi_free_w(void *h, void *p) { (void)h; mi.free(p); }
static const hl_allocator mi_ops = {.name = "mimalloc", .malloc = mi_malloc_w, .memalign = mi_memalign_w, .realloc = mi_realloc_w, .calloc = mi_calloc_w, .free = mi_free_w};

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*memalign)(size_t align, size_t size);
    int (*get_numeric)(const char *, size_t *);
    void (*release)(void);
} tc;
static void *tc_malloc_w(void *h, size_t n) { (void)h; return tc.malloc(n); }
static void *tc_calloc_w(void *h, size_t c, size_t n) { (void)h; return tc.calloc(c, n); }
static void *tc_memalign_w(void *h, size_t a, size_t n) { (void)h; return tc.memalign(a, n); }
static void *tc_realloc_w(void *h, void *p, size_t n) { (void)h; return tc.realloc(p, table_size(n)); }
static void tc_free_w(void *h, void *p) { (void)h; tc.free(p); }
static const hl_allocator tc_ops = {.name = "tcmalloc", .malloc = tc_malloc_w, .memalign = tc_memalign_w, .realloc = tc_realloc_w, .calloc = tc_calloc_w, .free = tc_free_w};

static void *lib_malloc_w(void *h, size_t n) { return ((library_fns *)h)->malloc(n); }
static void *lib_calloc_w(void *h, size_t c, size_t n) {
    library_fns *f = h;
    if (f->calloc) return f->calloc(c, n);
    if (n && c > SIZE_MAX / n) return NULL;
    void *p = f->malloc(c * n);
    if (p) memset(p, 0, c * n);
    return p;
}
static void *lib_memalign_w(void *h, size_t a, size_t n) {
    void *p = NULL;
    return ((library_fns *)h)->posix_memalign(&p, a < sizeof(void *) ? sizeof(void *) : a, n) == 0 ? p : NULL;
}
static void *lib_realloc_w(void *h, void *p, size_t n) { return ((library_fns *)h)->realloc(p, table_size(n)); }
static void lib_free_w(void *h, void *p) { ((library_fns *)h)->free(p); }
static const hl_allocator lib_ops = {.name = "library", .malloc = lib_malloc_w, .memalign = lib_memalign_w, .realloc = lib_realloc_w, .calloc = lib_calloc_w, .free = lib_free_w};

static pthread_mutex_t targets_lock = PTHREAD_MUTEX_INITIALIZER;
static hl_bench_target *targets[16];
static size_t target_count;

/* dlsym on the handle, and only if the symbol is defined by that library itself
 * (dlsym also searches its dependencies, libc among them). */
static void *own_symbol(void *handle, const char *name) {
    void *sym = dlsym(handle, name);
    if (!sym) return NULL;
    struct link_map *map = NULL;
    Dl_info info;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || !map || !dladdr(sym, &info) || !info.dli_fname) return NULL;
    return strcmp(info.dli_fname, map->l_name) == 0 ? sym : NULL;
}

static void *own_symbol2(void *handle, const char *a, const char *b) {
    void *s = own_symbol(handle, a);
    return s ? s : own_symbol(handle, b);
}

static const char *const debian_dirs[] = {"/usr/lib/x86_64-linux-gnu/", "/usr/lib/aarch64-linux-gnu/", "/usr/lib64/",
                                          "/usr/lib/", "/usr/local/lib/", NULL};

static void *open_peer(hl_bench_target *t, const char *path, const char *env, const char *file, char *err, size_t errlen) {
    const char *from_env = getenv(env);
    if (!path || !*path) path = from_env && *from_env ? from_env : NULL;
    char tried[1024] = "";
    if (path) {
        snprintf(t->path, sizeof t->path, "%s", path);
    } else {
        for (const char *const *d = debian_dirs; *d; d++) {
            snprintf(t->path, sizeof t->path, "%s%s", *d, file);
            FILE *f = fopen(t->path, "r");
            if (f) {
                fclose(f);
                path = t->path;
                break;
            }
            size_t used = strlen(tried);
            snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", t->path);
        }
        if (!path) {
            snprintf(err, errlen, "not installed (tried %s; set %s=PATH)", tried, env);
            return NULL;
        }
    }
    void *h = dlopen(t->path, RTLD_LOCAL | RTLD_NOW);
    if (!h) snprintf(err, errlen, "dlopen failed: %s", dlerror());
    return h;
}

#define NEED(sym)                                                           \
    do {                                                                    \
        if (!(sym)) {                                                       \
            snprintf(err, errlen, "%s does not export " #sym, t->path);     \
            return -1;                                                      \
        }                                                                   \
    } while (0)

static int bind_jemalloc(hl_bench_target *t, char *err, size_t errlen) {
    void *h = t->handle;
    *(void **)&je.malloc = own_symbol2(h, "malloc", "je_malloc");
    *(void **)&je.calloc = own_symbol2(h, "calloc", "je_calloc");
    *(void **)&je.realloc = own_symbol2(h, "realloc", "je_realloc");
    *(void **)&je.free = own_symbol2(h, "free", "je_free");
    *(void **)&je.posix_memalign = own_symbol2(h, "posix_memalign", "je_posix_memalign");
    *(void **)&je.mallctl = own_symbol2(h, "mallctl", "je_mallctl");
    NEED(je.malloc); NEED(je.calloc); NEED(je.realloc); NEED(je.free); NEED(je.posix_memalign); NEED(je.mallctl);
    t->ops = &je_ops;
    t->memory_source = "jemalloc stats.resident";
    return 0;
}

static int bind_mimalloc(hl_bench_target *t, char *err, size_t errlen) {
    void *h = t->handle;
    *(void **)&mi.malloc = own_symbol(h, "mi_malloc");
    *(void **)&mi.calloc = own_symbol(h, "mi_calloc");
    *(void **)&mi.realloc = own_symbol(h, "mi_realloc");
    *(void **)&mi.free = own_symbol(h, "mi_free");
    *(void **)&mi.malloc_aligned = own_symbol(h, "mi_malloc_aligned");
    *(void **)&mi.collect = own_symbol(h, "mi_collect");
    *(void **)&mi.process_info = own_symbol(h, "mi_process_info");
    NEED(mi.malloc); NEED(mi.calloc); NEED(mi.realloc); NEED(mi.free); NEED(mi.malloc_aligned); NEED(mi.collect);
    NEED(mi.process_info);
    t->ops = &mi_ops;
    t->memory_source = "mimalloc committed bytes (mi_process_info)";
    return 0;
}

static int bind_tcmalloc(hl_bench_target *t, char *err, size_t errlen) {
    void *h = t->handle;
    *(void **)&tc.malloc = own_symbol(h, "tc_malloc");
    *(void **)&tc.calloc = own_symbol(h, "tc_calloc");
    *(void **)&tc.realloc = own_symbol(h, "tc_realloc");
    *(void **)&tc.free = own_symbol(h, "tc_free");
    *(void **)&tc.memalign = own_symbol(h, "tc_memalign");
    *(void **)&tc.get_numeric = own_symbol(h, "MallocExtension_GetNumericProperty");
    *(void **)&tc.release = own_symbol(h, "MallocExtension_ReleaseFreeMemory");
    NEED(tc.malloc); NEED(tc.calloc); NEED(tc.realloc); NEED(tc.free); NEED(tc.memalign); NEED(tc.get_numeric);
    NEED(tc.release);
    t->ops = &tc_ops;
    t->memory_source = "tcmalloc generic.heap_size - pageheap_unmapped_bytes";
    return 0;
}

static int bind_library(hl_bench_target *t, char *err, size_t errlen) {
    void *h = t->handle;
    library_fns *f = &t->lib;
    *(void **)&f->malloc = own_symbol(h, "malloc");
    *(void **)&f->calloc = own_symbol(h, "calloc");
    *(void **)&f->realloc = own_symbol(h, "realloc");
    *(void **)&f->free = own_symbol(h, "free");
    *(void **)&f->posix_memalign = own_symbol(h, "posix_memalign");
    *(void **)&f->usable_size = own_symbol(h, "malloc_usable_size");
    *(void **)&f->trim = own_symbol(h, "malloc_trim");
    const struct { const void *fn; const char *name; } need[] = {
        {(const void *)f->malloc, "malloc"}, {(const void *)f->realloc, "realloc"},
        {(const void *)f->free, "free"}, {(const void *)f->posix_memalign, "posix_memalign"}};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (!need[i].fn) {
            snprintf(err, errlen, "%s does not define %s", t->path, need[i].name);
            return -1;
        }
    }
    t->ops = &lib_ops;
    t->memory_source = "the process's resident set (the library has no statistics heaplab reads)";
    return 0;
}

const hl_bench_target *hl_bench_target_open(const char *name, const char *path, char *err, size_t errlen) {
    pthread_mutex_lock(&targets_lock);
    for (size_t i = 0; i < target_count; i++) {
        if (strcmp(targets[i]->name, name) == 0) {
            pthread_mutex_unlock(&targets_lock);
            return targets[i];
        }
    }
    hl_bench_target *t = calloc(1, sizeof *t);
    if (!t || target_count == sizeof targets / sizeof targets[0]) {
        snprintf(err, errlen, "out of memory");
        free(t);
        pthread_mutex_unlock(&targets_lock);
        return NULL;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    int rc = -1;
    if ((t->ops = hl_allocator_find(name)) != NULL) {
        t->kind = T_HEAPLAB;
        t->memory_source = hl_cache_inner(t->ops) ? "bytes mapped by heaplab's mmap page source, and the thread cache's block map (a 32nd of them)"
                                                  : "bytes mapped by heaplab's mmap page source";
        rc = 0;
    } else if (strcmp(name, "glibc") == 0) {
        t->kind = T_GLIBC;
        t->ops = &glibc_ops;
        t->memory_source = "mallinfo2() arena + hblkhd";
        rc = 0;
    } else if (strcmp(name, "jemalloc") == 0) {
        t->kind = T_JEMALLOC;
        if ((t->handle = open_peer(t, path, "HEAPLAB_JEMALLOC", "libjemalloc.so.2", err, errlen))) rc = bind_jemalloc(t, err, errlen);
    } else if (strcmp(name, "mimalloc") == 0) {
        t->kind = T_MIMALLOC;
        if ((t->handle = open_peer(t, path, "HEAPLAB_MIMALLOC", "libmimalloc.so.2", err, errlen))) rc = bind_mimalloc(t, err, errlen);
    } else if (strcmp(name, "tcmalloc") == 0) {
        t->kind = T_TCMALLOC;
        if ((t->handle = open_peer(t, path, "HEAPLAB_TCMALLOC", "libtcmalloc_minimal.so.4", err, errlen))) rc = bind_tcmalloc(t, err, errlen);
    } else if (path && *path) {
        t->kind = T_LIBRARY;
        snprintf(t->path, sizeof t->path, "%s", path);
        if (strlen(name) >= sizeof t->name) snprintf(err, errlen, "name %s is longer than %zu characters", name, sizeof t->name - 1);
        else if (!(t->handle = dlopen(t->path, RTLD_LOCAL | RTLD_NOW))) snprintf(err, errlen, "dlopen failed: %s", dlerror());
        else rc = bind_library(t, err, errlen);
    } else {
        snprintf(err, errlen, "unknown allocator %s", name);
    }
    if (rc != 0) {
        /* a library that loaded but lacks an entry point stays loaded: unloading an
         * allocator that may have run constructors is not safe */
        free(t);
        pthread_mutex_unlock(&targets_lock);
        return NULL;
    }
    if (t->kind == T_HEAPLAB || t->kind == T_GLIBC) t->path[0] = 0;
    targets[target_count++] = t;
    pthread_mutex_unlock(&targets_lock);
    return t;
}

const char *hl_bench_target_memory_source(const hl_bench_target *t) { return t->memory_source; }
const char *hl_bench_target_path(const hl_bench_target *t) { return t->path; }

/* ---- memory: what the target holds from the system ------------------------- */

/* The process's resident bytes (/proc/self/statm), or 0 if unreadable. */
static double resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)hl_system_page_size() : 0;
}

typedef struct run_state {
    double baseline_rss;
    const hl_bench_target *t;
    hl_mmap_pages pages; /* heaplab: this run's page source */
    hl_hooks hooks;
    void *heap;
} run_state;

/* A cached design's block map, beside its heap (cache/cache.h). */
static size_t target_map_bytes(const hl_bench_target *t, size_t heap_bytes) {
    return hl_cache_inner(t->ops) ? hl_cache_map_bytes(heap_bytes) : 0;
}

static double target_mapped(const run_state *r) {
    switch (r->t->kind) {
        case T_HEAPLAB: { /* the heap's pages and the page cache's: all held from the system */
            size_t mapped = __atomic_load_n(&r->pages.bytes_mapped, __ATOMIC_RELAXED);
            return (double)(mapped + __atomic_load_n(&r->pages.bytes_cached, __ATOMIC_RELAXED) + target_map_bytes(r->t, mapped));
        }
        case T_GLIBC: {
            struct mallinfo2 m = mallinfo2();
            return (double)(m.arena + m.hblkhd);
        }
        case T_JEMALLOC: {
            uint64_t epoch = 1;
            size_t sz = sizeof epoch, resident = 0;
            je.mallctl("epoch", &epoch, &sz, &epoch, sz);
            sz = sizeof resident;
            if (je.mallctl("stats.resident", &resident, &sz, NULL, 0) != 0) return 0;
            return (double)resident;
        }
        case T_MIMALLOC: {
            size_t a = 0, b = 0, c = 0, rss = 0, peak_rss = 0, commit = 0, peak_commit = 0, faults = 0;
            mi.process_info(&a, &b, &c, &rss, &peak_rss, &commit, &peak_commit, &faults);
            return (double)commit;
        }
        case T_TCMALLOC: {
            size_t heap = 0, unmapped = 0;
            tc.get_numeric("generic.heap_size", &heap);
            tc.get_numeric("tcmalloc.pageheap_unmapped_bytes", &unmapped);
            return (double)(heap - unmapped);
        }
        case T_LIBRARY: return resident_bytes();
    }
    return 0;
}

/* Gives cached free memory back, so each run starts from the same footing. */
static void target_purge(const hl_bench_target *t) {
    switch (t->kind) {
        case T_HEAPLAB: break;
        case T_GLIBC: malloc_trim(0); break;
        case T_JEMALLOC:
            je.mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
            je.mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* MALLCTL_ARENAS_ALL */
            break;
        case T_MIMALLOC: mi.collect(1); break;
        case T_TCMALLOC: tc.release(); break;
        case T_LIBRARY: if (t->lib.trim) t->lib.trim(0); break;
    }
}

static int run_begin(run_state *r, const hl_bench_target *t, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->t = t;
    if (t->kind != T_HEAPLAB) {
        target_purge(t);
        if (t->kind == T_LIBRARY) r->heap = (void *)&t->lib;   /* what lib_ops' wrappers receive */
        return 0;
    }
    if (hl_mmap_pages_init(&r->pages, 0, 0) != 0) {
        snprintf(err, errlen, "page source init failed");
        return -1;
    }
    r->hooks = hl_mmap_pages_hooks(&r->pages, 1);
    r->heap = t->ops->create(&r->hooks);
    if (!r->heap) {
        snprintf(err, errlen, "%s: create failed", t->name);
        return -1;
    }
    return 0;
}

static void run_end(run_state *r) {
    if (r->t->kind == T_HEAPLAB && r->heap) r->t->ops->destroy(r->heap);
    if (r->t->kind == T_HEAPLAB) hl_mmap_pages_release_cache(&r->pages);
    r->heap = NULL;
}

static const size_t no_page_calls = 0;   /* what the counter reads for non-heaplab targets */

/* ---- the replay ------------------------------------------------------------- */

typedef struct worker {
    run_state *run;
    const hl_trace_view *trace;
    int touch;
    void **ptr;
    size_t *bsize;
    int64_t live;        /* written by the owner, read (relaxed) by the sampler */
    int64_t peak_live;
    size_t failures;
    double elapsed_ns;
    hl_bench_histogram *ah, *fh;
    hl_bench_histogram *ach, *fch;   /* the same, operations that crossed the page source */
    const size_t *page_calls;
    pthread_barrier_t *barrier;
    /* sampling: worker 0 only */
    struct worker *all;
    size_t nworkers;
    size_t sample_every;
    hl_bench_result *result;
    int timed;
} __attribute__((aligned(128))) worker; /* one cache line pair each: `live` is written every operation */

static void take_sample(worker *w, size_t done) {
    hl_bench_result *res = w->result;
    double live = 0;
    for (size_t k = 0; k < w->nworkers; k++) live += (double)__atomic_load_n(&w->all[k].live, __ATOMIC_RELAXED);
    double mapped = target_mapped(w->run) - res->baseline_mapped;
    if (mapped > res->peak_mapped) res->peak_mapped = mapped;
    if (live > res->peak_live) res->peak_live = live;
    double rss = resident_bytes() - w->run->baseline_rss;
    if (rss > res->peak_rss) res->peak_rss = rss;
    if (res->sample_count < sizeof res->samples / sizeof res->samples[0]) {
        hl_bench_sample *s = &res->samples[res->sample_count++];
        s->op = (double)(done * w->nworkers);
        s->mapped = mapped;
        s->live = live;
        s->rss = rss;
    }
}

/* One timed operation: into h, and into crossed too if the page source was
 * called meanwhile (the counter read before the clock, so a crossing is never
 * missed; a concurrent thread's page call can count, which errs towards blaming
 * the operating system). */
static inline void timed_add(const worker *w, hl_bench_histogram *h, hl_bench_histogram *crossed, double ns, size_t pc0) {
    hist_add(h, ns);
    if (__atomic_load_n(w->page_calls, __ATOMIC_RELAXED) != pc0) hist_add(crossed, ns);
}

static inline __attribute__((always_inline)) void replay_ops(worker *w, const int timed) {
    const hl_trace_view *t = w->trace;
    const hl_allocator *a = w->run->t->ops;
    void *heap = w->run->heap;
    void **ptr = w->ptr;
    size_t *bsize = w->bsize;
    const int touch = w->touch;
    const double tick_ns = clock_info.ns_per_tick, overhead = clock_info.overhead_ns;
    const size_t *page_calls = w->page_calls;
    int64_t live = 0, peak = 0;
    size_t failures = 0;
    size_t countdown = w->sample_every ? 1 : (size_t)-1;
    uint64_t elapsed = 0;
    uint64_t seg = ticks();
    for (size_t i = 0; i < t->count; i++) {
        if (--countdown == 0) {
            elapsed += ticks() - seg;
            __atomic_store_n(&w->live, live, __ATOMIC_RELAXED);
            take_sample(w, i);
            countdown = w->sample_every;
            seg = ticks();
        }
        uint32_t id = t->id[i];
        size_t size = (size_t)t->size[i];
        int failed;
        size_t pc0 = timed ? __atomic_load_n(page_calls, __ATOMIC_RELAXED) : 0;
        uint64_t t0 = timed ? ticks() : 0;
        void *p = hl_replay_step(a, heap, t, i, ptr, touch, &failed);
        if (timed)
            timed_add(w, t->op[i] == HL_TRACE_FREE ? w->fh : w->ah, t->op[i] == HL_TRACE_FREE ? w->fch : w->ach,
                      (double)(ticks() - t0) * tick_ns - overhead, pc0);
        failures += (size_t)failed;
        if (t->op[i] == HL_TRACE_FREE) {
            live -= (int64_t)bsize[id];
            bsize[id] = 0;
        } else if (p) {
            live += (int64_t)size - (int64_t)bsize[id];
            bsize[id] = size;
            if (live > peak) peak = live;
        }
        __atomic_store_n(&w->live, live, __ATOMIC_RELAXED);
    }
    elapsed += ticks() - seg;
    __atomic_store_n(&w->live, live, __ATOMIC_RELAXED);
    w->peak_live = peak;
    w->failures = failures;
    w->elapsed_ns = (double)elapsed * tick_ns;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    if (w->barrier) pthread_barrier_wait(w->barrier);
    if (w->timed) replay_ops(w, 1);
    else replay_ops(w, 0);
    return NULL;
}

static void worker_release(worker *w) {
    if (w->ptr) {
        const hl_allocator *a = w->run->t->ops;
        for (uint32_t id = 0; id <= w->trace->max_id; id++)
            if (w->ptr[id]) a->free(w->run->heap, w->ptr[id]);
    }
    hl_table_free(w->ptr, (size_t)w->trace->max_id + 1, sizeof *w->ptr);
    hl_table_free(w->bsize, (size_t)w->trace->max_id + 1, sizeof *w->bsize);
    w->ptr = NULL;
    w->bsize = NULL;
}

/* One pass over every thread's trace on one fresh heap. */
static int one_pass(const hl_bench_target *t, const hl_bench_config *c, hl_bench_result *res, int timed, int sample,
                    double *elapsed, char *err, size_t errlen) {
    run_state run;
    if (run_begin(&run, t, err, errlen) != 0) return -1;
    size_t n = c->threads;
    worker w[8];
    memset(w, 0, sizeof w);
    hl_bench_histogram *hists = timed ? calloc(4 * n, sizeof *hists) : NULL;
    pthread_barrier_t barrier;
    int rc = 0;
    if (timed && !hists) {
        snprintf(err, errlen, "out of memory");
        run_end(&run);
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        w[k].run = &run;
        w[k].trace = &c->traces[k];
        w[k].touch = c->touch;
        w[k].timed = timed;
        w[k].ptr = hl_table_alloc((size_t)c->traces[k].max_id + 1, sizeof(void *));
        w[k].bsize = hl_table_alloc((size_t)c->traces[k].max_id + 1, sizeof(size_t));
        w[k].all = w;
        w[k].nworkers = n;
        w[k].result = res;
        w[k].page_calls = t->kind == T_HEAPLAB ? &run.pages.page_calls : &no_page_calls;
        if (timed) {
            w[k].ah = &hists[4 * k];
            w[k].fh = &hists[4 * k + 1];
            w[k].ach = &hists[4 * k + 2];
            w[k].fch = &hists[4 * k + 3];
        }
        if (!w[k].ptr || !w[k].bsize) rc = -1; /* faulted in already: the baseline holds them */
    }
    if (sample) {
        res->baseline_mapped = t->kind == T_HEAPLAB ? 0 : target_mapped(&run);
        run.baseline_rss = resident_bytes();
        res->peak_mapped = 0;
        res->peak_live = 0;
        res->peak_rss = 0;
        res->sample_count = 0;
    }
    if (sample) {
        size_t want = c->max_samples ? c->max_samples : 1000;
        if (want > sizeof res->samples / sizeof res->samples[0]) want = sizeof res->samples / sizeof res->samples[0];
        size_t every = c->traces[0].count / want;
        w[0].sample_every = every ? every : 1;
    }
    if (rc == 0) {
        pthread_t tid[8];
        size_t started = 0;
        if (n > 1) pthread_barrier_init(&barrier, NULL, (unsigned)n);
        for (size_t k = 1; k < n; k++) {
            w[k].barrier = &barrier;
            if (pthread_create(&tid[k], NULL, worker_main, &w[k]) != 0) break;
            started++;
        }
        if (started + 1 != n) {
            /* cannot happen in practice; the barrier would hang, so fail loudly */
            snprintf(err, errlen, "pthread_create failed");
            abort();
        }
        w[0].barrier = n > 1 ? &barrier : NULL;
        worker_main(&w[0]);
        for (size_t k = 1; k < n; k++) pthread_join(tid[k], NULL);
        if (n > 1) pthread_barrier_destroy(&barrier);
    } else {
        snprintf(err, errlen, "out of memory for the block table");
    }
    double wall = 0;
    double peak_live = 0;
    size_t failures = 0;
    for (size_t k = 0; k < n; k++) {
        if (w[k].elapsed_ns > wall) wall = w[k].elapsed_ns;
        peak_live += (double)w[k].peak_live;
        failures += w[k].failures;
    }
    if (rc == 0 && sample) {
        /* the last point: after the trace, before its leftovers are freed */
        size_t done = c->traces[0].count;
        w[0].sample_every = 0;
        take_sample(&w[0], done);
        /* one thread: its exact peak; several: the largest sum seen by the sampler */
        if (n == 1) res->peak_live = peak_live;
        res->failures = failures;
        if (t->kind == T_HEAPLAB) res->peak_mapped = (double)(run.pages.peak_bytes_held + target_map_bytes(t, run.pages.peak_bytes_held));
    }
    if (rc == 0 && timed) {
        for (size_t k = 0; k < n; k++) {
            hist_merge(&res->alloc_hist, &hists[4 * k]);
            hist_merge(&res->free_hist, &hists[4 * k + 1]);
            hist_merge(&res->alloc_crossed_hist, &hists[4 * k + 2]);
            hist_merge(&res->free_crossed_hist, &hists[4 * k + 3]);
        }
    }
    for (size_t k = 0; k < n; k++) worker_release(&w[k]);
    free(hists);
    run_end(&run);
    *elapsed = wall;
    return rc;
}

int hl_bench_run(const hl_bench_target *t, const hl_bench_config *c, hl_bench_result *res, char *err, size_t errlen) {
    hl_bench_clock();
    if (c->threads < 1 || c->threads > 8) {
        snprintf(err, errlen, "threads must be 1..8");
        return -1;
    }
    memset(res, 0, sizeof *res);
    for (size_t k = 0; k < c->threads; k++) res->ops += c->traces[k].count;
    size_t runs = c->throughput_runs ? c->throughput_runs : 1;
    double best = 0;
    for (size_t r = 0; r < runs; r++) {
        double e = 0;
        if (one_pass(t, c, res, 0, r == 0, &e, err, errlen) != 0) return -1;
        if (r == 0 || e < best) best = e;
    }
    res->elapsed_ns = best;
    if (c->latency) {
        double e = 0;
        if (one_pass(t, c, res, 1, 0, &e, err, errlen) != 0) return -1;
        res->latency_elapsed_ns = e;
    }
    return 0;
}
