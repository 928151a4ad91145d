/*
 * preload.c — the whole malloc family over one heaplab allocator, for LD_PRELOAD.
 *
 * Compiled once per allocator (native/preload/preload.cmake) with
 * -DHL_PRELOAD_ALLOCATOR=hl_allocator_NAME into libheaplab-NAME.so, together with
 * vendor/NAME/NAME.c, native/ops_NAME.c, native/pages/mmap.c and
 * native/trace/writer.c. Everything is hidden except the functions marked
 * HL_EXPORT below.
 *
 * One process-wide heap:
 *
 *     malloc/free/...  ->  hl_allocator (vendor)  ->  g_hooks  ->  mmap page source
 *                                                      |
 *                                                      +-> page registry (which pages are ours)
 *
 * Rules (glibc 2.36 is the reference where the C standard leaves a choice):
 *  - every result is 16-byte aligned; a failed allocation sets errno = ENOMEM;
 *  - calloc/reallocarray check count * size for overflow (ENOMEM, NULL);
 *  - realloc(NULL, n) is malloc(n); realloc(p, 0) frees p and returns NULL;
 *    on failure the old block is untouched;
 *  - posix_memalign: EINVAL unless align is a power of two multiple of
 *    sizeof(void *), ENOMEM when out of memory; *out is written only on success;
 *  - aligned_alloc: EINVAL (NULL) unless align is a power of two (glibc >= 2.38
 *    and C17); memalign rounds a non-power-of-two alignment up and fails with
 *    EINVAL above SIZE_MAX / 2 + 1, as glibc does; valloc/pvalloc align to a page;
 *  - free(NULL) does nothing. A pointer this library did not hand out (ld.so's
 *    early allocations, or glibc's before the preload took effect) is found by the
 *    page registry: free ignores it, malloc_usable_size says 0, realloc copies it
 *    into a new block (see foreign_copy_size);
 *  - the first call initialises the heap with nothing that allocates (static
 *    state, mmap only); fork holds every lock across the fork (pthread_atfork,
 *    registered by the constructor), so the child gets a consistent heap.
 * HEAPLAB_TRACE=FILE records every call (docs/trace-format.md). HEAPLAB_DEBUG=1 puts
 * the debug layer over the heap (native/preload/preload_debug.h, docs/hardening.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../allocator.h"
#include "../cache/cache.h"
#include "../pages/page_map.h"
#include "../pages/pages.h"
#include "../pages/spinlock.h"
#include "../trace/writer.h"

#ifndef HL_PRELOAD_ALLOCATOR
#error "compile with -DHL_PRELOAD_ALLOCATOR=hl_allocator_NAME"
#endif

extern const hl_allocator HL_PRELOAD_ALLOCATOR;
#ifdef HL_PRELOAD_CACHE
/* libheaplab-NAME+cache.so: the design behind the thread cache (cache/cache.h),
 * set once by heap_init_slow before the heap exists. */
static const hl_allocator *g_allocator = &HL_PRELOAD_ALLOCATOR;
#define ALLOCATOR g_allocator
/* Outside debug mode g_allocator is the cache's table: its malloc by name, a
 * direct call where the table's is an indirect one; its free of any non-NULL p
 * (PLAIN_FREE) asks the registry only for a pointer the cache's block map does
 * not know. */
#define DESIGN_MALLOC(n) hl_cache_malloc(g_heap, (n))
#define PLAIN_FREE(p) hl_cache_free_owned(g_heap, (p), reg_owns_fn)
#else
#define ALLOCATOR (&HL_PRELOAD_ALLOCATOR)
#define DESIGN_MALLOC(n) ALLOCATOR->malloc(g_heap, (n))
#define PLAIN_FREE(p)                                       \
    do {                                                    \
        if (reg_owns(p)) ALLOCATOR->free(g_heap, (p));      \
    } while (0)
#endif

#define HL_EXPORT __attribute__((visibility("default")))
/* An exported second name for a function of this file, with its attributes. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9
#define HL_ALIAS(target) __attribute__((alias(#target), copy(target)))
#else
#define HL_ALIAS(target) __attribute__((alias(#target)))
#endif
#define HL_LIKELY(x) __builtin_expect(!!(x), 1)
#define HL_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* The layers between an exported name and the heap fold into it: one call,
 * not three, on every malloc and free. */
#define HL_INLINE static inline __attribute__((always_inline))

/* The alignment every result has. */
enum { HL_MIN_ALIGN = 16 };

/* ---- the page registry ------------------------------------------------------
 * Every page that the page source handed to the allocator is marked 1 in a
 * page map (pages/page_map.h): owns() is two loads. Marks are set and cleared
 * under the heap lock (alloc_page/free_page run inside the allocator's locked
 * entry points) and read without it: a pointer being freed is live, so its
 * page's mark cannot change under the reader. Marking a multi-GiB block is a
 * memset of a byte per page (5 GiB: 1.3 MB). */
static hl_page_map g_registry;

static inline int reg_owns(const void *p) { return hl_page_map_get(&g_registry, p) != 0; }
#ifdef HL_PRELOAD_CACHE
static int reg_owns_fn(const void *p) { return reg_owns(p); }
#endif

/* ---- the heap ------------------------------------------------------------- */

static hl_mmap_pages g_src;      /* the mmap page source; its lock is the heap lock */
static hl_hooks g_src_hooks;     /* the source's own hooks                         */
static hl_hooks g_hooks;         /* what the allocator sees: source + registry     */
static void *g_heap;
static atomic_int g_state;       /* 0: not yet, 1: ready, -1: could not be created */
/* 1 once the heap is ready with no debug layer over it: then the exported
 * malloc and free test this word and the trace flag alone (plain_path), where
 * the layered path tests the debug layer twice, the trace flag and g_state
 * (cachegrind, around tlsf+cache's own: 39 instructions per malloc-free pair
 * against 52; 24 with PLAIN_FREE's block-map proof of ownership). */
static atomic_int g_plain;
static hl_spinlock g_init_lock = HL_SPINLOCK_INIT;

/* HEAPLAB_DEBUG=1: the debug layer over the heap (HEAP_* macros, HL_NOTE_CALLER). */
#include "preload_debug.h"

static void *registry_alloc_page(void *ctx, size_t pages) {
    (void)ctx;
    void *p = g_src_hooks.alloc_page(g_src_hooks.ctx, pages);
    if (p && hl_page_map_mark_run(&g_registry, p, pages * g_src.page_size, 1)) {
        g_src_hooks.free_page(g_src_hooks.ctx, p, pages);
        return NULL;
    }
    return p;
}

static void registry_free_page(void *ctx, void *start, size_t pages) {
    (void)ctx;
    hl_page_map_set(&g_registry, start, pages * g_src.page_size, 0);
    g_src_hooks.free_page(g_src_hooks.ctx, start, pages);
}

/* A run that moved or was resized: hl_page_map_resized. A run the map cannot
 * mark stays unknown to free, which ignores its block: a leak, never a lost or
 * shared block. */
static void *registry_resize_page(void *ctx, void *start, size_t old_pages, size_t new_pages) {
    (void)ctx;
    size_t page = g_src.page_size;
    void *p = g_src_hooks.resize_page(g_src_hooks.ctx, start, old_pages, new_pages);
    if (p) hl_page_map_resized(&g_registry, start, old_pages * page, p, new_pages * page, 1);
    return p;
}

/* While the process has one thread, nobody can contend for the heap: the lock's
 * atomic exchange is skipped, as glibc's malloc skips its own (SINGLE_THREAD_P).
 * The flag turns false before a second thread exists, and the heap is never
 * entered by the thread that creates it while it does so. unlock always stores,
 * so a lock taken while threads existed (fork's prepare) is always released. */
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define HL_SINGLE_THREADED() (__libc_single_threaded != 0)
#endif
#endif
#ifndef HL_SINGLE_THREADED
#define HL_SINGLE_THREADED() 0
#endif

static void registry_lock(void *ctx) {
    (void)ctx;
    if (!HL_SINGLE_THREADED()) g_src_hooks.lock(g_src_hooks.ctx);
}
static void registry_unlock(void *ctx) { (void)ctx; g_src_hooks.unlock(g_src_hooks.ctx); }

static void page_cache_from_environment(void) {
    const char *text = getenv("HEAPLAB_PAGE_CACHE");
    if (text && *text && hl_page_cache_parse(text, &g_src.cache)) {
        static const char msg[] = "heaplab: HEAPLAB_PAGE_CACHE not understood (want off, on, or "
                                  "floor=BYTES,percent=N,decay=MS,run_max=BYTES,prefault=BYTES); using the defaults\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
    }
}

static __attribute__((noinline)) int heap_init_slow(void) {
    hl_spin_lock(&g_init_lock);
    if (atomic_load_explicit(&g_state, memory_order_relaxed) == 0) {
        void *heap = NULL;
        if (hl_mmap_pages_init(&g_src, 0, 0) == 0) {
            g_src_hooks = hl_mmap_pages_hooks(&g_src, 1);
            g_hooks = g_src_hooks;
            g_hooks.ctx = &g_src;
            g_hooks.alloc_page = registry_alloc_page;
            g_hooks.free_page = registry_free_page;
            g_hooks.lock = registry_lock;
            g_hooks.unlock = registry_unlock;
            g_hooks.resize_page = g_src_hooks.resize_page ? registry_resize_page : NULL;
            page_cache_from_environment();
#ifdef HL_PRELOAD_CACHE
            /* debug mode wants to see every free: it wraps the design alone */
            if (!preload_debug_wanted()) g_allocator = hl_cache_wrap(&HL_PRELOAD_ALLOCATOR);
#endif
            heap = preload_debug_wanted() ? preload_debug_create(&HL_PRELOAD_ALLOCATOR, &g_hooks) : ALLOCATOR->create(&g_hooks);
        }
        g_heap = heap;
        atomic_store_explicit(&g_state, heap ? 1 : -1, memory_order_release);
        if (heap && !g_debug) atomic_store_explicit(&g_plain, 1, memory_order_release);
    }
    hl_spin_unlock(&g_init_lock);
    return atomic_load_explicit(&g_state, memory_order_acquire) == 1;
}

static inline int heap_ready(void) {
    return HL_LIKELY(atomic_load_explicit(&g_state, memory_order_acquire) == 1) || heap_init_slow();
}

/* ---- the core operations (no tracing; never call the exported names) ------- */

HL_INLINE void *core_malloc(size_t n) {
    void *p = NULL;
    if (HL_LIKELY(n <= PTRDIFF_MAX) && heap_ready()) p = HEAP_MALLOC(n);
    if (HL_UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

static void *core_calloc(size_t count, size_t size) {
    size_t total;
    void *p = NULL;
    if (!__builtin_mul_overflow(count, size, &total) && total <= PTRDIFF_MAX && heap_ready())
        p = HEAP_CALLOC(count, size);
    if (HL_UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

/* align: a power of two. */
static void *core_memalign(size_t align, size_t n) {
    if (align <= HL_MIN_ALIGN) return core_malloc(n);
    void *p = NULL;
    if (align <= PTRDIFF_MAX && n <= PTRDIFF_MAX - align && heap_ready())
        p = HEAP_MEMALIGN(align, n);
    if (HL_UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

/* A pointer no allocator returned: not 16-aligned, or (realloc) on no mapped
 * page. Said once on stderr, then refused: free ignores it, realloc returns
 * NULL (ENOMEM), malloc_usable_size 0 (in debug mode, the debug layer says
 * which call made it). glibc aborts on the first; a design
 * would read a header that is not there (tlsf: a fault, or a heap corrupted
 * in silence), and a cached free would take the granule's block twice. */
static __attribute__((noinline, cold)) void invalid_pointer(const char *call, const void *p) {
    static atomic_int said;
    if (atomic_exchange_explicit(&said, 1, memory_order_relaxed)) return;
    char line[128];
    size_t len = 0;
    static const char head[] = "heaplab: ", tail[] = "): not a block any allocator returned; ignored (said once)\n";
    for (const char *c = head; *c; c++) line[len++] = *c;
    for (const char *c = call; *c && len < 40; c++) line[len++] = *c;
    line[len++] = '(';
    line[len++] = '0';
    line[len++] = 'x';
    uintptr_t a = (uintptr_t)p;
    int digits = 1;
    while (digits < 16 && (a >> (4 * digits))) digits++;
    for (int d = digits - 1; d >= 0; d--) line[len++] = "0123456789abcdef"[(a >> (4 * d)) & 15];
    for (const char *c = tail; *c && len < sizeof line; c++) line[len++] = *c;
    ssize_t ignored = write(2, line, len);
    (void)ignored;
}
static inline int misaligned(const void *p) { return HL_UNLIKELY(((uintptr_t)p & (HL_MIN_ALIGN - 1)) != 0); }

/* Any pointer: one of another malloc's (a block from before this library was
 * loaded) is ignored, and one no allocator returned is refused; the free of
 * the plain path and, outside debug mode, of core_free. */
HL_INLINE void plain_free(void *p) {
    if (misaligned(p)) invalid_pointer("free", p);
    else if (p) PLAIN_FREE(p);
}
HL_INLINE void core_free(void *p) {
    if (!g_debug) plain_free(p);
    else if (p) DEBUG_FREE(p); /* the debug layer reports a misaligned pointer with its caller */
}

/* How many bytes of a foreign block p to carry into a new block of `want`
 * bytes. Its size is unknown; if p looks like a glibc chunk (16-aligned, the
 * size word before it plausible) that size is used, else what is left of p's
 * page. Bytes past p's page are copied only if mapped (msync says ENOMEM for
 * an unmapped range), so the copy itself cannot fault. */
static size_t foreign_copy_size(const void *p, size_t want) {
    uintptr_t a = (uintptr_t)p;
    size_t page = g_src.page_size ? g_src.page_size : 4096;
    size_t in_page = page - (a & (page - 1));
    size_t guess = in_page;
    if ((a & 15) == 0 && (a & (page - 1)) != 0) {
        size_t field = ((const size_t *)p)[-1];
        size_t chunk = field & ~(size_t)7;
        size_t header = (field & 2) ? 16 : 8;  /* IS_MMAPPED chunks have no footer reuse */
        if (chunk >= 32 && (chunk & 15) == 0 && chunk < ((size_t)1 << 40)) guess = chunk - header;
    }
    size_t copy = guess < want ? guess : want;
    if (copy > in_page) {
        int saved = errno;
        uintptr_t next = a + in_page;
        size_t len = (copy - in_page + page - 1) & ~(page - 1);
        if (msync((void *)next, len, MS_ASYNC) != 0) copy = in_page < want ? in_page : want;
        errno = saved;
    }
    return copy;
}

static void *foreign_realloc(void *p, size_t n) {
    size_t page = g_src.page_size ? g_src.page_size : 4096;
    int saved = errno;
    if (msync((void *)((uintptr_t)p & ~(uintptr_t)(page - 1)), page, MS_ASYNC) != 0) { /* its page is not mapped */
        invalid_pointer("realloc", p);
        errno = ENOMEM;
        return NULL;
    }
    errno = saved;
    void *q = core_malloc(n);
    if (q) memcpy(q, p, foreign_copy_size(p, n));
    return q;
}

static void *core_realloc(void *p, size_t n) {
    if (!p) return core_malloc(n);
    if (misaligned(p) && !g_debug) {
        invalid_pointer("realloc", p);
        errno = ENOMEM;
        return NULL;
    }
    if (n == 0) {
        core_free(p);
        return NULL;
    }
    if (!reg_owns(p)) return foreign_realloc(p, n);
    void *q = n <= PTRDIFF_MAX ? HEAP_REALLOC(p, n) : NULL;
    if (HL_UNLIKELY(!q)) errno = ENOMEM;
    return q;
}

/* ---- traced wrappers: the call and its record under one lock ---------------- */

/* Out of line: a traced call is rare, and its locks and record would make
 * every untraced malloc save registers it does not use. */
static __attribute__((noinline)) void *traced_alloc(int op, size_t align, size_t count, size_t n) {
    hl_trace_lock();
    void *p;
    if (op == HL_TRACE_MALLOC) p = core_malloc(n);
    else if (op == HL_TRACE_CALLOC) p = core_calloc(count, n);
    else p = core_memalign(align, n);
    if (p) {
        int saved = errno;
        /* an alignment malloc gives anyway is recorded as malloc */
        if (op == HL_TRACE_MEMALIGN && align <= HL_MIN_ALIGN) op = HL_TRACE_MALLOC;
        hl_trace_alloc(op, p, op == HL_TRACE_CALLOC ? count * n : n, align < HL_MIN_ALIGN ? HL_MIN_ALIGN : align);
        errno = saved;
    }
    hl_trace_unlock();
    return p;
}

static __attribute__((noinline)) void traced_free(void *p) {
    hl_trace_lock();
    core_free(p);
    hl_trace_free(p);
    hl_trace_unlock();
}

HL_INLINE void *api_alloc(int op, size_t align, size_t count, size_t n) {
    if (HL_UNLIKELY(hl_trace_active())) return traced_alloc(op, align, count, n);
    if (op == HL_TRACE_MALLOC) return core_malloc(n);
    if (op == HL_TRACE_CALLOC) return core_calloc(count, n);
    return core_memalign(align, n);
}

HL_INLINE void api_free(void *p) {
    if (!p) return;
    if (HL_UNLIKELY(hl_trace_active())) traced_free(p);
    else core_free(p);
}

static void *api_realloc(void *p, size_t n) {
    if (HL_LIKELY(!hl_trace_active())) return core_realloc(p, n);
    hl_trace_lock();
    void *q = core_realloc(p, n);
    int saved = errno;
    if (!p) {
        if (q) hl_trace_alloc(HL_TRACE_MALLOC, q, n, HL_MIN_ALIGN);
    } else if (n == 0) {
        hl_trace_free(p);
    } else if (q) {
        hl_trace_realloc(p, q, n);
    }
    errno = saved;
    hl_trace_unlock();
    return q;
}

/* ---- the exported malloc family ------------------------------------------- */

/* A ready heap, no debug layer, no trace: malloc and free go straight to the
 * design (or the cache), the calls core_malloc and core_free make without the debug layer. */
static inline int plain_path(void) {
    return HL_LIKELY(atomic_load_explicit(&g_plain, memory_order_acquire)) && !hl_trace_active();
}

HL_EXPORT void *malloc(size_t n) {
    if (plain_path()) {
        void *p = HL_LIKELY(n <= PTRDIFF_MAX) ? DESIGN_MALLOC(n) : NULL;
        if (HL_UNLIKELY(!p)) errno = ENOMEM;
        return p;
    }
    HL_NOTE_CALLER();
    return api_alloc(HL_TRACE_MALLOC, HL_MIN_ALIGN, 1, n);
}

HL_EXPORT void free(void *p) {
    if (plain_path()) {
        plain_free(p);
        return;
    }
    HL_NOTE_CALLER();
    api_free(p);
}

HL_EXPORT void *calloc(size_t count, size_t size) {
    HL_NOTE_CALLER();
    return api_alloc(HL_TRACE_CALLOC, HL_MIN_ALIGN, count, size);
}

HL_EXPORT void *realloc(void *p, size_t n) { HL_NOTE_CALLER(); return api_realloc(p, n); }

HL_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    HL_NOTE_CALLER();
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return api_realloc(p, total);
}

static int is_pow2(size_t x) { return x && !(x & (x - 1)); }

HL_EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    HL_NOTE_CALLER();
    if (!is_pow2(align) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = api_alloc(HL_TRACE_MEMALIGN, align, 1, n);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

HL_EXPORT void *aligned_alloc(size_t align, size_t n) {
    HL_NOTE_CALLER();
    if (!is_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return api_alloc(HL_TRACE_MEMALIGN, align, 1, n);
}

HL_EXPORT void *memalign(size_t align, size_t n) {
    HL_NOTE_CALLER();
    if (align <= HL_MIN_ALIGN) return api_alloc(HL_TRACE_MALLOC, HL_MIN_ALIGN, 1, n);
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!is_pow2(align)) {
        size_t a = HL_MIN_ALIGN;
        while (a < align) a <<= 1;
        align = a;
    }
    return api_alloc(HL_TRACE_MEMALIGN, align, 1, n);
}

static size_t system_page(void) {
    static size_t page;
    if (!page) page = hl_system_page_size();
    return page;
}

HL_EXPORT void *valloc(size_t n) { HL_NOTE_CALLER(); return api_alloc(HL_TRACE_MEMALIGN, system_page(), 1, n); }

HL_EXPORT void *pvalloc(size_t n) {
    HL_NOTE_CALLER();
    size_t page = system_page();
    if (n > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = n ? (n + page - 1) & ~(page - 1) : page;
    return api_alloc(HL_TRACE_MEMALIGN, page, 1, rounded);
}

HL_EXPORT size_t malloc_usable_size(void *p) {
    if (!p || misaligned(p) || !reg_owns(p)) return 0;
    return HEAP_USABLE(p);
}

/* cfree: gone from glibc's API, still a compat symbol old binaries reach. */
HL_EXPORT void cfree(void *p) HL_ALIAS(free);

/* glibc's own names for the same functions, which some programs call directly. */
HL_EXPORT void *__libc_malloc(size_t n) HL_ALIAS(malloc);
HL_EXPORT void __libc_free(void *p) HL_ALIAS(free);
HL_EXPORT void *__libc_calloc(size_t count, size_t size) HL_ALIAS(calloc);
HL_EXPORT void *__libc_realloc(void *p, size_t n) HL_ALIAS(realloc);
HL_EXPORT void *__libc_memalign(size_t align, size_t n) HL_ALIAS(memalign);
HL_EXPORT void *__libc_valloc(size_t n) HL_ALIAS(valloc);
HL_EXPORT void *__libc_pvalloc(size_t n) HL_ALIAS(pvalloc);
HL_EXPORT int __posix_memalign(void **out, size_t align, size_t n) HL_ALIAS(posix_memalign);

/* ---- tuning and statistics: accepted, harmless ---------------------------- */

/* The page cache goes back to the system; the allocator itself gives pages
 * back by its own rules. 1 if anything was released, as glibc says. */
HL_EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    if (atomic_load_explicit(&g_state, memory_order_acquire) != 1) return 0;
#ifdef HL_PRELOAD_CACHE
    if (!g_debug) hl_cache_flush_thread(g_heap); /* the caller's bins first: they pin pools */
#endif
    g_src_hooks.lock(g_src_hooks.ctx);
    int released = g_src.run_count != 0;
    hl_mmap_pages_release_cache(&g_src);
    g_src_hooks.unlock(g_src_hooks.ctx);
    return released;
}

/* No glibc tunable applies here; 0 is mallopt's "not done". */
HL_EXPORT int mallopt(int param, int value) {
    (void)param;
    (void)value;
    return 0;
}
HL_EXPORT int __libc_mallopt(int param, int value) HL_ALIAS(mallopt);

static size_t mapped_bytes(void) { return __atomic_load_n(&g_src.bytes_mapped, __ATOMIC_RELAXED); }

/* What is known without walking the heap: the bytes mapped, as the arena. */
HL_EXPORT struct mallinfo2 mallinfo2(void) {
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = mapped_bytes();
    mi.usmblks = __atomic_load_n(&g_src.peak_bytes_mapped, __ATOMIC_RELAXED);
    return mi;
}

/* mallinfo is deprecated (int fields), still called by old programs. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
HL_EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    size_t arena = mapped_bytes();
    mi.arena = arena > INT_MAX ? INT_MAX : (int)arena;
    return mi;
}
HL_EXPORT struct mallinfo __libc_mallinfo(void) HL_ALIAS(mallinfo);
#pragma GCC diagnostic pop

static size_t format_size(char *out, size_t n) {
    char tmp[24];
    size_t len = 0;
    do { tmp[len++] = (char)('0' + n % 10); n /= 10; } while (n);
    for (size_t i = 0; i < len; i++) out[i] = tmp[len - 1 - i];
    return len;
}

/* malloc_stats prints to stderr, as glibc's does; write(2), no stdio. */
HL_EXPORT void malloc_stats(void) {
    char line[128];
    size_t len = 0;
    const char *parts[] = { "heaplab ", ALLOCATOR->name, ": bytes mapped " };
    for (size_t i = 0; i < 3; i++) {
        size_t l = strlen(parts[i]);
        memcpy(line + len, parts[i], l);
        len += l;
    }
    len += format_size(line + len, mapped_bytes());
    memcpy(line + len, ", peak ", 7);
    len += 7;
    len += format_size(line + len, __atomic_load_n(&g_src.peak_bytes_mapped, __ATOMIC_RELAXED));
    line[len++] = '\n';
    ssize_t ignored = write(2, line, len);
    (void)ignored;
}

HL_EXPORT int malloc_info(int options, FILE *fp) {
    if (options) {
        errno = EINVAL;
        return -1;
    }
    fprintf(fp, "<malloc version=\"heaplab-%s\"><system type=\"current\" size=\"%zu\"/></malloc>\n",
            ALLOCATOR->name, mapped_bytes());
    return 0;
}

/* ---- fork ----------------------------------------------------------------- */
/* prepare takes every lock in the order the calls take them (trace, init, heap);
 * parent and child release them. Registered from the constructor, which runs
 * before the program's: prepare handlers run in reverse order of registration,
 * so ours runs after every handler the program registers (which may allocate). */

static int g_fork_heap_locked;

/* The thread cache's arenas have their own locks, taken before the heap lock. */
static void cache_fork_prepare(void) {
#ifdef HL_PRELOAD_CACHE
    if (g_allocator != &HL_PRELOAD_ALLOCATOR) hl_cache_fork_prepare(g_heap);
#endif
}
static void cache_fork_release(void) {
#ifdef HL_PRELOAD_CACHE
    if (g_allocator != &HL_PRELOAD_ALLOCATOR) hl_cache_fork_release(g_heap);
#endif
}

static void fork_prepare(void) {
    hl_trace_fork_prepare();
    hl_spin_lock(&g_init_lock);
    g_fork_heap_locked = atomic_load_explicit(&g_state, memory_order_acquire) == 1;
    if (g_fork_heap_locked && g_debug) hl_debug_lock(g_debug);
    if (g_fork_heap_locked) cache_fork_prepare();
    if (g_fork_heap_locked) g_src_hooks.lock(g_src_hooks.ctx);
}

static void fork_parent(void) {
    if (g_fork_heap_locked) g_src_hooks.unlock(g_src_hooks.ctx);
    if (g_fork_heap_locked) cache_fork_release();
    if (g_fork_heap_locked && g_debug) hl_debug_unlock(g_debug);
    hl_spin_unlock(&g_init_lock);
    hl_trace_fork_parent();
}

static void fork_child(void) {
    if (g_fork_heap_locked) g_src_hooks.unlock(g_src_hooks.ctx);
    if (g_fork_heap_locked) cache_fork_release();
    if (g_fork_heap_locked && g_debug) hl_debug_unlock(g_debug);
    hl_spin_unlock(&g_init_lock);
    hl_trace_fork_child();
}

/* ---- start and end -------------------------------------------------------- */

/* HEAPLAB_TRACE=FILE: this process records into FILE, and passes
 * HEAPLAB_TRACE_CHILD=FILE (absolute) to the programs it runs, which record
 * into FILE.<pid> (a forked child that does not exec records nothing). */
static char g_trace_path[4096 + 32];

static int trace_path_for(const char *file, int descendant) {
    size_t len = 0;
    if (file[0] != '/') {
        if (!getcwd(g_trace_path, 4096)) return -1;
        len = strlen(g_trace_path);
        g_trace_path[len++] = '/';
    }
    size_t flen = strlen(file);
    if (len + flen >= 4096) return -1;
    memcpy(g_trace_path + len, file, flen);
    len += flen;
    if (descendant) {
        g_trace_path[len++] = '.';
        len += format_size(g_trace_path + len, (size_t)getpid());
    }
    g_trace_path[len] = '\0';
    return 0;
}

static void trace_from_environment(void) {
    const char *root = getenv("HEAPLAB_TRACE");
    const char *child = getenv("HEAPLAB_TRACE_CHILD");
    int descendant = !(root && *root);
    const char *file = descendant ? child : root;
    if (!file || !*file || trace_path_for(file, descendant)) return;
    if (!descendant) {
        /* children get the absolute path under the other name */
        setenv("HEAPLAB_TRACE_CHILD", g_trace_path, 1);
        unsetenv("HEAPLAB_TRACE");
    }
    int err = hl_trace_start(g_trace_path, descendant, ALLOCATOR->name, program_invocation_short_name);
    if (err) {
        static const char msg[] = "heaplab: cannot write the trace file named by HEAPLAB_TRACE\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
    }
}

__attribute__((constructor)) static void preload_start(void) {
    heap_ready();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    trace_from_environment();
}

__attribute__((destructor)) static void preload_end(void) {
    hl_trace_finish();
}
