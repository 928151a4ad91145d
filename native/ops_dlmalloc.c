/*
 * ops_dlmalloc.c — vendor/dlmalloc behind native/allocator.h's table.
 *
 * Locking: every mspace_* entry point takes hooks->lock/unlock itself, so this
 * adapter never locks (the spinlock is not recursive). mspace_usable_size reads
 * only the chunk's own header and takes no lock, as upstream.
 *
 * Contract mapping: malloc(0) is a minimum chunk; realloc(p, 0) shrinks p to a
 * minimum chunk (mspace_realloc does not free); memalign with align <= 16 is
 * malloc inside mspace_memalign; calloc checks n * size for overflow.
 */
#include "allocator.h"
#include "../vendor/dlmalloc/dlmalloc.h"

static void *dl_create(const hl_hooks *hooks) { return create_mspace_with_hooks(hooks); }
static void dl_destroy(void *heap) { destroy_mspace(heap); }
static void *dl_malloc(void *heap, size_t size) { return mspace_malloc(heap, size); }
static void *dl_memalign(void *heap, size_t align, size_t size) { return mspace_memalign(heap, align, size); }
static void *dl_realloc(void *heap, void *ptr, size_t size) { return mspace_realloc(heap, ptr, size); }
static void *dl_calloc(void *heap, size_t count, size_t size) { return mspace_calloc(heap, count, size); }
static void dl_free(void *heap, void *ptr) { mspace_free(heap, ptr); }
static size_t dl_usable_size(void *heap, const void *ptr) {
    (void)heap;
    return mspace_usable_size(ptr);
}
static size_t dl_peek(void *heap, const void *ptr, int *merges) {
    (void)heap;
    return mspace_chunk_peek(ptr, merges);
}
static size_t dl_check(void *heap) { return mspace_check(heap); }

_Static_assert((int)MSPACE_WALK_FREE == (int)HL_WALK_FREE && (int)MSPACE_WALK_USED == (int)HL_WALK_USED && (int)MSPACE_WALK_META == (int)HL_WALK_META,
               "the design's walk states are the table's");
static void op_walk(void *heap, hl_walker walker, void *user) { mspace_walk(heap, walker, user); }

const hl_allocator hl_allocator_dlmalloc = {
    .name = "dlmalloc",
    .create = dl_create,
    .destroy = dl_destroy,
    .malloc = dl_malloc,
    .memalign = dl_memalign,
    .realloc = dl_realloc,
    .calloc = dl_calloc,
    .free = dl_free,
    .usable_size = dl_usable_size,
    .peek = dl_peek,
    .header = {DL_WORD_SIZE_MASK, DL_WORD_USABLE_LESS, DL_WORD_PLAIN_MASK, DL_WORD_PLAIN_VALUE},
    .check = dl_check,
    .walk = op_walk,
};
