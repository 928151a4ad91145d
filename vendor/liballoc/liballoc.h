/*
 * liballoc.h — heaplab's liballoc-style allocator (major blocks of pages, minor
 * blocks inside them, magic words), after the design of Durand Miller's liballoc
 * 1.1, written anew: per instance, 64-bit clean, and without the linear walk.
 *
 * Two faces:
 *  - per instance: liballoc_create(hooks) ... liballoc_destroy(heap); each entry
 *    point takes hooks->lock exactly once.
 *  - upstream's global API: PREFIX(malloc)/PREFIX(free)/PREFIX(calloc)/
 *    PREFIX(realloc) (kmalloc... by default) over one default instance whose
 *    pages and lock come from the four hooks liballoc_lock/unlock/alloc/free,
 *    which the embedding program (a kernel) defines. See README.md.
 */
#ifndef HEAPLAB_LIBALLOC_H
#define HEAPLAB_LIBALLOC_H

#include <stddef.h>
#include "../hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Name prefix of the global API, as upstream: PREFIX(malloc) is kmalloc unless
 * the build defines PREFIX otherwise (the same way for liballoc.c and its users). */
#ifndef PREFIX
#define PREFIX(func) k##func
#endif

typedef struct liballoc_heap liballoc_heap;

typedef struct liballoc_stats {
    size_t majors;         /* major blocks held now                              */
    size_t major_bytes;    /* bytes in them (pages * page_size)                  */
    size_t control_bytes;  /* bytes of the heap's control pages                  */
    size_t used_bytes;     /* bytes of minor blocks in use, headers included     */
    size_t live_blocks;    /* minor blocks in use                                */
    size_t bad_frees;      /* frees/reallocs of pointers that were not live blocks */
} liballoc_stats;

/* ---- per instance ----------------------------------------------------------- */
/* NULL if the hooks are unusable or the control pages cannot be had. */
liballoc_heap *liballoc_create(const hl_hooks *hooks);
/* Every page goes back through hooks->free_page. */
void   liballoc_destroy(liballoc_heap *heap);
void  *liballoc_malloc(liballoc_heap *heap, size_t size);
/* align: a power of two (else NULL); align <= 16 is liballoc_malloc. */
void  *liballoc_memalign(liballoc_heap *heap, size_t align, size_t size);
void  *liballoc_calloc(liballoc_heap *heap, size_t count, size_t size);
/* realloc(NULL, n) is malloc(n); on failure the old block is untouched. */
void  *liballoc_realloc(liballoc_heap *heap, void *ptr, size_t size);
/* free(NULL) does nothing; a pointer that is not a live block is counted, not followed. */
void   liballoc_free_block(liballoc_heap *heap, void *ptr);
size_t liballoc_usable_size(liballoc_heap *heap, const void *ptr);
/* liballoc_usable_size without the lock, for a caller that owns the live block
 * (the minor and its major are checked, not changed), and in *prev_dead whether
 * the minor before it is dead (freeing it would coalesce them). */
size_t liballoc_block_peek(liballoc_heap *heap, const void *ptr, int *prev_dead);
/* liballoc_block_peek's *prev_dead alone, for a caller that knows ptr is a
 * live block of some heap (the thread cache's block map says so): the minor's
 * own magic is checked, not its major (three loads on two lines, where the
 * full check reads the minor, its major and their magics). */
int liballoc_block_prev_dead(const void *ptr);
/* Walks every major and minor block; returns the number of broken invariants. */
size_t liballoc_check(liballoc_heap *heap);
size_t liballoc_bad_frees(liballoc_heap *heap);
/* heaplab's walk of a whole heap, for pictures of it: the control pages
 * (region 0), then each major, newest first (region 1, 2, ...): its header and
 * each minor in address order. start/size: the piece; payload/usable: a minor's
 * user bytes (the rest is its header); state: LIBALLOC_WALK_FREE (a dead
 * minor), _USED or _META (the heap's own bytes). Takes the lock; the walker must
 * not call into the heap. */
enum { LIBALLOC_WALK_FREE = 0, LIBALLOC_WALK_USED = 1, LIBALLOC_WALK_META = 2 };
typedef void (*liballoc_walker)(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user);
void   liballoc_walk(liballoc_heap *heap, liballoc_walker walker, void *user);
void   liballoc_get_stats(liballoc_heap *heap, liballoc_stats *out);

/* ---- upstream's global API over the default instance ----------------------- */
void *PREFIX(malloc)(size_t size);
void *PREFIX(realloc)(void *ptr, size_t size);
void *PREFIX(calloc)(size_t count, size_t size);
void  PREFIX(free)(void *ptr);
/* The default instance (created on first use; NULL if liballoc_alloc fails),
 * for liballoc_check / liballoc_get_stats on it. */
liballoc_heap *liballoc_default(void);

/* The four hooks, defined by the embedding program. liballoc.c carries weak
 * defaults (no lock, no memory) so that it links without them. Return 0 on
 * success, as upstream. */
int   liballoc_lock(void);
int   liballoc_unlock(void);
void *liballoc_alloc(size_t pages);          /* pages of LIBALLOC_PAGE_SIZE, or NULL */
int   liballoc_free(void *ptr, size_t pages);

#ifdef __cplusplus
}
#endif
#endif
