/*
 * ops_tlsf.c — vendor/tlsf behind native/allocator.h's table.
 *
 * Locking lives in one place: tlsf.c. Every tlsf_* function that takes a
 * tlsf_t takes hooks->lock around its work and never calls another public
 * tlsf_* function while holding it (the spinlock is not recursive). So this
 * adapter calls exactly one locking tlsf_* function per entry point and never
 * locks itself; usable_size goes through tlsf_usable_size (locked) rather than
 * upstream's tlsf_block_size(ptr), which has no heap to lock (peek reads the
 * same header without the lock: tlsf_block_peek).
 */
#include "allocator.h"
#include "../vendor/tlsf/tlsf.h"

static void *op_create(const hl_hooks *hooks) { return tlsf_create_with_hooks(hooks); }
static void op_destroy(void *heap) { tlsf_destroy(heap); }
static void *op_malloc(void *heap, size_t size) { return tlsf_malloc(heap, size); }
/* tlsf_memalign treats align <= 16 as malloc, as the contract asks */
static void *op_memalign(void *heap, size_t align, size_t size) { return tlsf_memalign(heap, align, size); }
/* realloc(NULL, n) is malloc; realloc(p, 0) shrinks p to a minimum block in place */
static void *op_realloc(void *heap, void *ptr, size_t size) { return tlsf_realloc(heap, ptr, size); }
static void *op_calloc(void *heap, size_t count, size_t size) { return tlsf_calloc(heap, count, size); }
static void op_free(void *heap, void *ptr) { tlsf_free(heap, ptr); }
static size_t op_usable_size(void *heap, const void *ptr) { return tlsf_usable_size(heap, ptr); }
static size_t op_peek(void *heap, const void *ptr, int *merges) {
    (void)heap;
    return tlsf_block_peek(ptr, merges);
}
static size_t op_check(void *heap) { return (size_t)tlsf_check(heap); }

_Static_assert((int)TLSF_WALK_FREE == (int)HL_WALK_FREE && (int)TLSF_WALK_USED == (int)HL_WALK_USED && (int)TLSF_WALK_META == (int)HL_WALK_META,
               "the design's walk states are the table's");
static void op_walk(void *heap, hl_walker walker, void *user) { tlsf_walk_heap(heap, walker, user); }

const hl_allocator hl_allocator_tlsf = {
    .name = "tlsf",
    .create = op_create,
    .destroy = op_destroy,
    .malloc = op_malloc,
    .memalign = op_memalign,
    .realloc = op_realloc,
    .calloc = op_calloc,
    .free = op_free,
    .usable_size = op_usable_size,
    .peek = op_peek,
    .header = {TLSF_WORD_SIZE_MASK, TLSF_WORD_USABLE_LESS, TLSF_WORD_PLAIN_MASK, TLSF_WORD_PLAIN_VALUE},
    .check = op_check,
    .walk = op_walk,
};
