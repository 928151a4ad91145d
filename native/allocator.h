/*
 * allocator.h — one table of entry points per allocator, so that the Node binding,
 * the preload library and the C test drivers drive every design the same way.
 *
 * Each vendor/NAME gets an adapter native/ops_NAME.c defining `hl_allocator_NAME`.
 * Contract, common to all:
 *  - results are 16-byte aligned (at least), or NULL; nothing here sets errno;
 *  - malloc(0) returns a unique, freeable block; sizes that cannot be served
 *    (rounding would overflow, > PTRDIFF_MAX) return NULL, never a small block;
 *  - memalign: align is a power of two (the caller checks); align <= 16 is malloc;
 *  - realloc(NULL, n) is malloc(n); realloc(p, 0) returns a minimum-size block
 *    (the preload library layers glibc's free-and-NULL on top); on failure the
 *    old block is untouched; the contents up to min(old, new) are kept;
 *  - calloc checks n * size for overflow and returns zeroed memory;
 *  - free(NULL) does nothing; usable_size(NULL) is 0;
 *  - peek (may be NULL: then use usable_size, and assume no merge) is for a
 *    layer that holds freed blocks back (the thread cache): a live block's
 *    usable size read from its own header without taking the lock, and in
 *    *merges whether its physical predecessor is free (freeing it now would
 *    merge the two: such a block is better given back than held); it says 0
 *    for a block its header marks free (a second free: the design's to
 *    ignore), and a design that checks its pointers (liballoc) for anything
 *    that is not a live block of `heap`; the others read the header of
 *    whatever they are given;
 *  - prev_free (may be NULL: then ask peek) answers peek's *merges alone, for
 *    a pointer the caller knows is a live block of one of the design's heaps:
 *    not which heap's, and no lock, and so cheaper than peek where the design
 *    checks its pointers;
 *  - header (size_mask 0 if the design has none) says how to read peek's
 *    answer for the common block straight from its header word, without a
 *    call, as the thread cache's malloc does on every block it takes from a
 *    bin (see hl_header_word);
 *  - check walks the whole heap and returns how many invariants are broken;
 *  - walk reports every piece of memory the heap holds, in the design's order
 *    (its own bytes as HL_WALK_META), to a walker that must not call into it;
 *  - two blocks' addresses are at least HL_BLOCK_SPACING_MIN bytes apart (a
 *    layer may keep a byte per 32 bytes of address: the thread cache does);
 *  - every entry point but peek takes hooks->lock itself.
 */
#ifndef HEAPLAB_ALLOCATOR_H
#define HEAPLAB_ALLOCATOR_H

#include <stddef.h>
#include "../vendor/hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A walk's pieces (every design's walker has this shape: vendor/NAME/NAME.h):
 * start/size: the piece; payload/usable: a block's user bytes (what is left of
 * size is the design's overhead in it); region: the design's own notion (TLSF
 * pool, dlmalloc segment, liballoc major; 0: control pages or direct chunks). */
enum { HL_WALK_FREE = 0, HL_WALK_USED = 1, HL_WALK_META = 2 };
typedef void (*hl_walker)(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user);

/* The size_t just below a block's address, as the design keeps it: when (word
 * & plain_mask) == plain_value (a live block of the common kind, its
 * predecessor in use), peek would say usable (word & size_mask) - usable_less
 * and *merges 0. Any other word is peek's to read. */
typedef struct hl_header_word {
    size_t size_mask;    /* 0: no such word, always call peek */
    size_t usable_less;
    size_t plain_mask, plain_value;
} hl_header_word;

enum { HL_BLOCK_SPACING_MIN = 32 }; /* each design's vendor/NAME/NAME.c asserts it */

typedef struct hl_allocator {
    const char *name;
    void  *(*create)(const hl_hooks *hooks);   /* NULL if the first pages cannot be had */
    void   (*destroy)(void *heap);             /* every page goes back through free_page */
    void  *(*malloc)(void *heap, size_t size);
    void  *(*memalign)(void *heap, size_t align, size_t size);
    void  *(*realloc)(void *heap, void *ptr, size_t size);
    void  *(*calloc)(void *heap, size_t count, size_t size);
    void   (*free)(void *heap, void *ptr);
    size_t (*usable_size)(void *heap, const void *ptr);
    size_t (*peek)(void *heap, const void *ptr, int *merges);
    int    (*prev_free)(const void *ptr);
    hl_header_word header;
    size_t (*check)(void *heap);
    void   (*walk)(void *heap, hl_walker walker, void *user);
} hl_allocator;

/* The allocators that were built (see CMakeLists.txt), NULL-terminated. */
extern const hl_allocator *const hl_allocators[];
/* A design by name, or its cached variant "NAME+cache" (cache/cache.h); NULL if none. */
const hl_allocator *hl_allocator_find(const char *name);

#ifdef __cplusplus
}
#endif
#endif
