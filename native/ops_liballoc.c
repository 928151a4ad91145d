/* ops_liballoc.c — the liballoc-style allocator behind native/allocator.h.
 *
 * Each liballoc_* per-instance entry point takes hooks->lock exactly once itself,
 * so these wrappers add no locking (the spinlock is not recursive). memalign with
 * align <= 16 is malloc inside liballoc_memalign; realloc(p, 0) shrinks p to the
 * minimum block in place. */
#include "allocator.h"
#include "../vendor/liballoc/liballoc.h"

static void *la_create(const hl_hooks *hooks) { return liballoc_create(hooks); }
static void la_destroy(void *heap) { liballoc_destroy(heap); }
static void *la_malloc(void *heap, size_t size) { return liballoc_malloc(heap, size); }
static void *la_memalign(void *heap, size_t align, size_t size) {
    return liballoc_memalign(heap, align, size);
}
static void *la_realloc(void *heap, void *ptr, size_t size) {
    return liballoc_realloc(heap, ptr, size);
}
static void *la_calloc(void *heap, size_t count, size_t size) {
    return liballoc_calloc(heap, count, size);
}
static void la_free(void *heap, void *ptr) { liballoc_free_block(heap, ptr); }
static size_t la_usable_size(void *heap, const void *ptr) { return liballoc_usable_size(heap, ptr); }
static size_t la_peek(void *heap, const void *ptr, int *merges) { return liballoc_block_peek(heap, ptr, merges); }
static int la_prev_free(const void *ptr) { return liballoc_block_prev_dead(ptr); }
static size_t la_check(void *heap) { return liballoc_check(heap); }

_Static_assert((int)LIBALLOC_WALK_FREE == (int)HL_WALK_FREE && (int)LIBALLOC_WALK_USED == (int)HL_WALK_USED && (int)LIBALLOC_WALK_META == (int)HL_WALK_META,
               "the design's walk states are the table's");
static void op_walk(void *heap, hl_walker walker, void *user) { liballoc_walk(heap, walker, user); }

const hl_allocator hl_allocator_liballoc = {
    .name = "liballoc",
    .create = la_create,
    .destroy = la_destroy,
    .malloc = la_malloc,
    .memalign = la_memalign,
    .realloc = la_realloc,
    .calloc = la_calloc,
    .free = la_free,
    .usable_size = la_usable_size,
    .peek = la_peek,
    .prev_free = la_prev_free,
    .check = la_check,
    .walk = op_walk,
};
