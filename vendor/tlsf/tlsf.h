/*
 * tlsf.h — heaplab's TLSF (two-level segregated fit) allocator.
 *
 * Written from the paper (Masmano, Ripoll, Crespo, Real, ECRTS 2004); keeps the
 * public names of the widely used tlsf.h so code moves over unchanged. O(1)
 * malloc/free/memalign, immediate coalescing, 16-byte aligned results.
 *
 * Two ways to make a heap:
 *  - tlsf_create(mem) / tlsf_create_with_pool(mem, bytes): over caller memory,
 *    which is never grown and never given back; pools are added by the caller.
 *  - tlsf_create_with_hooks(hooks): control structure and pools from
 *    hooks->alloc_page, grown on demand by pools that grow with the heap
 *    (O(log N) page calls), wholly free pools given back (one small one is
 *    kept); a block alone in its pool is resized by hooks->resize_page when
 *    the host has it; tlsf_destroy returns every page.
 * Every function taking a tlsf_t takes hooks->lock around its work (a no-op for
 * heaps over caller memory). Functions taking only a pointer or a pool_t
 * (tlsf_block_size, tlsf_walk_pool, tlsf_check_pool) cannot lock: call them
 * only when no other thread uses the heap, or use tlsf_usable_size / tlsf_check.
 */
#ifndef HEAPLAB_TLSF_H
#define HEAPLAB_TLSF_H

#include <stddef.h>
#include "../hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *tlsf_t;   /* a heap: its control structure */
typedef void *pool_t;   /* a pool: the start of its memory */

/* Heaps over caller memory (16-byte aligned; NULL if misaligned or too small). */
tlsf_t tlsf_create(void *mem);                        /* mem holds tlsf_size() bytes */
tlsf_t tlsf_create_with_pool(void *mem, size_t bytes);
/* A heap over page hooks (copied); NULL if the first pages cannot be had. */
tlsf_t tlsf_create_with_hooks(const hl_hooks *hooks);
/* Gives back every page that came from alloc_page; caller pools are left alone. */
void tlsf_destroy(tlsf_t tlsf);
pool_t tlsf_get_pool(tlsf_t tlsf);                    /* the oldest pool, or NULL */

/* Caller pools: never given back by the heap. add returns NULL if mem is not
 * 16-byte aligned or bytes is too small or too large; remove needs a wholly free
 * pool (a pool still in use is left as it is). */
pool_t tlsf_add_pool(tlsf_t tlsf, void *mem, size_t bytes);
void tlsf_remove_pool(tlsf_t tlsf, pool_t pool);

void *tlsf_malloc(tlsf_t tlsf, size_t bytes);
void *tlsf_memalign(tlsf_t tlsf, size_t align, size_t bytes);   /* align: power of two */
void *tlsf_realloc(tlsf_t tlsf, void *ptr, size_t size);
void *tlsf_calloc(tlsf_t tlsf, size_t count, size_t size);
void tlsf_free(tlsf_t tlsf, void *ptr);

size_t tlsf_block_size(void *ptr);                    /* usable bytes; 0 for NULL; unlocked */
/* heaplab: tlsf_block_size, and in *prev_free whether the block's physical
 * predecessor is free (freeing it would merge them); unlocked, ptr not NULL.
 * 0 for a block the header marks free (a second free of it is tlsf_free's to
 * ignore, not a layer's to keep). */
size_t tlsf_block_peek(const void *ptr, int *prev_free);
/* heaplab: the word tlsf_block_peek reads is the size_t at ptr - 8. When
 * (word & TLSF_WORD_PLAIN_MASK) == TLSF_WORD_PLAIN_VALUE (in use, its predecessor in use), it says
 * (word & TLSF_WORD_SIZE_MASK) - TLSF_WORD_USABLE_LESS and prev_free 0, so a
 * layer may read the word itself. */
#define TLSF_WORD_SIZE_MASK (~(size_t)15)
#define TLSF_WORD_USABLE_LESS ((size_t)16)
#define TLSF_WORD_PLAIN_MASK ((size_t)3)
#define TLSF_WORD_PLAIN_VALUE ((size_t)0)
size_t tlsf_usable_size(tlsf_t tlsf, const void *ptr); /* the same, under the lock */

/* Overheads and limits. */
size_t tlsf_size(void);            /* bytes of the control structure */
size_t tlsf_align_size(void);      /* alignment of every result: 16 */
size_t tlsf_block_size_min(void);
size_t tlsf_block_size_max(void);
size_t tlsf_pool_overhead(void);   /* bytes of a pool not available to blocks */
size_t tlsf_alloc_overhead(void);  /* bytes of header per block */

/* Debugging: the walker sees every block of a pool (ptr = payload, size =
 * usable bytes); it must not call into the heap. The checks return the number
 * of broken invariants (0 = healthy); they never print. */
typedef void (*tlsf_walker)(void *ptr, size_t size, int used, void *user);
void tlsf_walk_pool(pool_t pool, tlsf_walker walker, void *user);

/* heaplab's walk of a whole heap, for pictures of it: every piece of memory the
 * heap holds, in order: the control structure (region 0), then each pool,
 * oldest first (region 1, 2, ...): its head sentinel with the pool record, each
 * block in address order, its tail sentinel. start/size: the piece; payload/
 * usable: where a block's user bytes start and how many it holds (the rest is
 * the block's header); state: TLSF_WALK_FREE, _USED, or _META (the heap's own
 * bytes). Takes the lock; the walker must not call into the heap. */
enum { TLSF_WALK_FREE = 0, TLSF_WALK_USED = 1, TLSF_WALK_META = 2 };
typedef void (*tlsf_heap_walker)(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user);
void tlsf_walk_heap(tlsf_t tlsf, tlsf_heap_walker walker, void *user);
int tlsf_check(tlsf_t tlsf);
int tlsf_check_pool(pool_t pool);

#ifdef __cplusplus
}
#endif
#endif
