/*
 * pages.h — page sources: what backs vendor/hooks.h for a host.
 *
 * mmap: anonymous mappings, counted (now and at peak), with an optional byte
 * limit above which alloc_page fails cleanly, which is how tests reach
 * out-of-memory. The source is plain data so it can live in static storage
 * (the preload library) or inside a Node heap object.
 */
#ifndef HEAPLAB_PAGES_H
#define HEAPLAB_PAGES_H

#include <stddef.h>
#include "../vendor/hooks.h"
#ifdef __cplusplus
/* C++ (the addon) only carries the lock around; C11 <stdatomic.h> is C-only in
 * g++ 12. Same layout as spinlock.h's, pinned by a static assert in pages_mmap.c. */
typedef struct hl_spinlock { int held; } hl_spinlock;
#else
#include "spinlock.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hl_mmap_pages {
    size_t page_size;
    size_t limit;          /* bytes; 0 = no limit */
    size_t bytes_mapped;
    size_t peak_bytes_mapped;
    size_t map_calls;
    size_t unmap_calls;
    hl_spinlock lock;      /* the heap's lock, taken by hooks.lock */
} hl_mmap_pages;

/* page_size 0 means the system's page size; returns 0, or -1 if page_size is not
 * a power of two >= 4096 and a multiple of the system's page size. */
int hl_mmap_pages_init(hl_mmap_pages *src, size_t page_size, size_t limit);
/* Hooks over the source; `locked` 0 makes lock/unlock no-ops. */
hl_hooks hl_mmap_pages_hooks(hl_mmap_pages *src, int locked);
size_t hl_system_page_size(void);

#ifdef __cplusplus
}
#endif
#endif
