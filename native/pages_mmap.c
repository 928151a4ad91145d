/* pages_mmap.c — the default page source: anonymous mmap, counted and limited. */
#include "pages.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

_Static_assert(sizeof(atomic_int) == sizeof(int) && _Alignof(atomic_int) == _Alignof(int),
               "pages.h declares hl_spinlock for C++ as a plain int");

size_t hl_system_page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static int is_pow2(size_t x) { return x && !(x & (x - 1)); }

int hl_mmap_pages_init(hl_mmap_pages *src, size_t page_size, size_t limit) {
    size_t sys = hl_system_page_size();
    if (page_size == 0) page_size = sys;
    if (!is_pow2(page_size) || page_size < 4096 || page_size % sys) return -1;
    src->page_size = page_size;
    src->limit = limit;
    src->bytes_mapped = src->peak_bytes_mapped = 0;
    src->map_calls = src->unmap_calls = 0;
    atomic_init(&src->lock.held, 0);
    return 0;
}

/* Counters are updated with atomics: the hooks are called under the heap's lock,
 * but stats() may read them from another thread. */
static void *mmap_alloc_page(void *ctx, size_t pages) {
    hl_mmap_pages *src = ctx;
    if (pages == 0 || pages > SIZE_MAX / src->page_size) return NULL;
    size_t bytes = pages * src->page_size;
    size_t now = __atomic_load_n(&src->bytes_mapped, __ATOMIC_RELAXED);
    if (src->limit && (bytes > src->limit || now > src->limit - bytes)) return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if ((uintptr_t)p & (src->page_size - 1)) {
        /* page_size above the system's: map again with slack and trim to alignment */
        munmap(p, bytes);
        size_t slack = bytes + src->page_size;
        char *raw = mmap(NULL, slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) return NULL;
        char *aligned = (char *)(((uintptr_t)raw + src->page_size - 1) & ~(uintptr_t)(src->page_size - 1));
        if (aligned > raw) munmap(raw, (size_t)(aligned - raw));
        size_t tail = (size_t)(raw + slack - (aligned + bytes));
        if (tail) munmap(aligned + bytes, tail);
        p = aligned;
    }
    size_t after = __atomic_add_fetch(&src->bytes_mapped, bytes, __ATOMIC_RELAXED);
    if (after > src->peak_bytes_mapped) src->peak_bytes_mapped = after;
    src->map_calls++;
    return p;
}

static void mmap_free_page(void *ctx, void *start, size_t pages) {
    hl_mmap_pages *src = ctx;
    if (!start || !pages) return;
    size_t bytes = pages * src->page_size;
    munmap(start, bytes);
    __atomic_sub_fetch(&src->bytes_mapped, bytes, __ATOMIC_RELAXED);
    src->unmap_calls++;
}

static void spin_lock(void *ctx) { hl_spin_lock(&((hl_mmap_pages *)ctx)->lock); }
static void spin_unlock(void *ctx) { hl_spin_unlock(&((hl_mmap_pages *)ctx)->lock); }
static void no_lock(void *ctx) { (void)ctx; }

hl_hooks hl_mmap_pages_hooks(hl_mmap_pages *src, int locked) {
    hl_hooks h = {
        .ctx = src,
        .page_size = src->page_size,
        .alloc_page = mmap_alloc_page,
        .free_page = mmap_free_page,
        .lock = locked ? spin_lock : no_lock,
        .unlock = locked ? spin_unlock : no_lock,
    };
    return h;
}
