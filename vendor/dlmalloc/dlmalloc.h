/*
 * dlmalloc.h — heaplab's dlmalloc-style allocator: boundary-tagged chunks, exact
 * small bins, bitwise-trie tree bins, a designated victim and a top chunk, over
 * segments obtained through hooks->alloc_page. Written here from Doug Lea's
 * published design (malloc.c 2.8.x header comment, "A Memory Allocator"); no
 * upstream source. Public names follow upstream's mspace API.
 *
 * Each mspace is one heap over one hl_hooks; its state lives in its first
 * segment. Every entry point takes hooks->lock/unlock itself (except
 * mspace_usable_size, which only reads the chunk's own header), so callers
 * must NOT hold that lock (it is not recursive).
 */
#ifndef HEAPLAB_DLMALLOC_H
#define HEAPLAB_DLMALLOC_H

#include <stddef.h>
#include "../hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *mspace;

/* upstream's struct mallinfo, size_t fields, named dl_mallinfo so that it can
 * coexist with <malloc.h>'s struct mallinfo in the same translation unit. */
struct dl_mallinfo {
    size_t arena;    /* bytes in segments (not counting directly mapped chunks) */
    size_t ordblks;  /* number of free chunks, top included                   */
    size_t smblks;   /* always 0 (no fastbins)                                 */
    size_t hblks;    /* number of directly mapped chunks                       */
    size_t hblkhd;   /* bytes in directly mapped chunks                        */
    size_t usmblks;  /* peak footprint (segments + mapped chunks)              */
    size_t fsmblks;  /* always 0                                               */
    size_t uordblks; /* bytes in in-use chunks, in segments and mapped         */
    size_t fordblks; /* bytes in free chunks, top included                     */
    size_t keepcost; /* size of top: what trimming could give back at most     */
};

/* heaplab's constructor: NULL if the first segment cannot be had. The hooks are
 * copied; hooks->ctx must outlive the mspace. */
mspace create_mspace_with_hooks(const hl_hooks *hooks);
/* Gives every page back through free_page (mapped chunks included); returns the
 * number of bytes given back. */
size_t destroy_mspace(mspace msp);

void  *mspace_malloc(mspace msp, size_t bytes);
void   mspace_free(mspace msp, void *mem);
void  *mspace_calloc(mspace msp, size_t n_elements, size_t elem_size);
/* realloc(msp, NULL, n) is malloc; realloc(msp, p, 0) shrinks p to a
 * minimum-size block (it does not free). NULL on failure, p untouched. */
void  *mspace_realloc(mspace msp, void *mem, size_t newsize);
/* alignment: rounded up to a power of two (upstream behaviour); <= 16 is malloc. */
void  *mspace_memalign(mspace msp, size_t alignment, size_t bytes);
/* 0, EINVAL (alignment not a power of two multiple of sizeof(void*)) or ENOMEM;
 * *pp is written only on success. */
int    mspace_posix_memalign(mspace msp, void **pp, size_t alignment, size_t bytes);
size_t mspace_usable_size(const void *mem);
/* heaplab: mspace_usable_size, and in *prev_free whether the chunk before it is
 * free (PINUSE clear: freeing it would merge them); mem not NULL. */
size_t mspace_chunk_peek(const void *mem, int *prev_free);
/* heaplab: the word mspace_chunk_peek reads is the chunk's head, the size_t at
 * mem - 8. When (word & DL_WORD_PLAIN_MASK) == DL_WORD_PLAIN_VALUE (in use, in
 * a segment, the chunk before it in use), it says (word & DL_WORD_SIZE_MASK) -
 * DL_WORD_USABLE_LESS and prev_free 0, so a layer may read the word itself. */
#define DL_WORD_SIZE_MASK (~(size_t)15)
#define DL_WORD_USABLE_LESS ((size_t)8)
#define DL_WORD_PLAIN_MASK ((size_t)15)
#define DL_WORD_PLAIN_VALUE ((size_t)3)
/* Gives back what it can (wholly free segments, top beyond pad); 1 if anything
 * was given back, else 0. */
int    mspace_trim(mspace msp, size_t pad);
size_t mspace_footprint(mspace msp);
size_t mspace_max_footprint(mspace msp);
struct dl_mallinfo mspace_mallinfo(mspace msp);
/* Walks every segment, bin, tree and mapped chunk; returns the number of broken
 * invariants (0 = healthy). Never prints. */
size_t mspace_check(mspace msp);

/* heaplab's walk of a whole mspace, for pictures of it: every piece of memory it
 * holds: per segment (newest first; region 1, 2, ...) the mstate (first segment
 * only), each chunk in address order (top included, as free) and the segment
 * footer; then each direct chunk (region 0): its node and chunk. start/size: the
 * piece; payload/usable: a chunk's user bytes (the rest is its overhead); state:
 * MSPACE_WALK_FREE, _USED or _META (the allocator's own bytes). Takes the lock;
 * the walker must not call into the mspace. */
enum { MSPACE_WALK_FREE = 0, MSPACE_WALK_USED = 1, MSPACE_WALK_META = 2 };
typedef void (*mspace_walker)(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user);
void mspace_walk(mspace msp, mspace_walker walker, void *user);

#ifdef __cplusplus
}
#endif
#endif
