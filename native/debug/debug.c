/*
 * debug.c — the debug layer over any hl_allocator (debug.h says what it finds).
 *
 * A block, as the inner allocator sees it:
 *
 *   raw (inner block)
 *   |<------ lead ------>|
 *   | padding (align>64) | header (64 bytes)                          | user bytes  | canary   | slack
 *   +--------------------+---------------------------------------------+-------------+----------+
 *                        | "BLK:USED" | size | requester | lead |      | 0xAA fresh, | "CANARY!!|
 *                        | align_log2,reported | slot | serial |       | 0xDD freed  |  CANARY!!"
 *                        | "BLK:USED"                                  |             |
 *                                                                      ^ user pointer (aligned)
 *
 * The layer trusts nothing it reads from a header until its own records agree:
 * live blocks are listed in an array (`live`), and a header's `slot` must point
 * at an entry holding that very block; quarantined blocks sit in a ring of
 * pointers. Neither list is threaded through the headers, so a smashed header
 * can make a block unreadable but never sends the layer through a wild pointer.
 * Both arrays, and the layer's own state, are blocks of the inner heap.
 */
#include "debug.h"
#include "../layer.h"

#include <string.h>

#include "../pages/spinlock.h"

/* ---- the block header ------------------------------------------------------ */

typedef struct block {
    char magic[8];         /* HL_DEBUG_MAGIC_USED or _FREE                         */
    uint64_t size;         /* bytes asked for                                      */
    uint64_t requester;    /* return address or label id                           */
    uint64_t lead;         /* bytes from the inner block's start to the user bytes */
    uint32_t align_log2;   /* alignment asked for (>= 4)                           */
    uint32_t reported;     /* one bit per hl_debug_kind already reported           */
    uint64_t slot;         /* index in d->live while live                          */
    uint64_t serial;       /* 1 for the heap's first block, 2 for the next...      */
    char magic_end[8];     /* the same magic again, right before the user bytes    */
} block;

_Static_assert(sizeof(block) == HL_DEBUG_HEADER_BYTES, "the header is 64 bytes");
_Static_assert(HL_DEBUG_HEADER_BYTES % 16 == 0, "user bytes keep the inner block's 16-byte alignment");
_Static_assert(sizeof HL_DEBUG_MAGIC_USED - 1 == 8 && sizeof HL_DEBUG_MAGIC_FREE - 1 == 8, "magics are 8 bytes");
_Static_assert(sizeof HL_DEBUG_CANARY - 1 == HL_DEBUG_CANARY_BYTES, "the canary string fills the canary");

enum {
    MIN_ALIGN = 16,
    LIVE_INITIAL = 64,
    DEFAULT_QUARANTINE_BLOCKS = 256,
};
#define DEFAULT_QUARANTINE_BYTES ((size_t)4 << 20)

struct hl_debug_heap {
    const hl_allocator *inner;
    void *heap;
    hl_debug_options opt;
    hl_spinlock lock;
    block **live;          /* live blocks, in no order                      */
    size_t live_count, live_cap;
    block **quarantine;    /* ring of opt.quarantine_blocks entries          */
    size_t q_first, q_count, q_bytes;
    size_t ops;            /* operations since the last periodic check       */
    uint64_t serial;
    _Atomic uintptr_t next_requester; /* hl_debug_set_requester; read without the lock */
    hl_debug_finding findings[HL_DEBUG_MAX_FINDINGS];
    size_t finding_count, findings_total;
};

static unsigned char *block_user(block *b) { return (unsigned char *)b + HL_DEBUG_HEADER_BYTES; }
static block *block_of(const void *user) { return (block *)((uintptr_t)user - HL_DEBUG_HEADER_BYTES); }
static void *block_raw(block *b) { return block_user(b) - b->lead; }
static unsigned char *block_canary(block *b) { return block_user(b) + b->size; }

static int magic_is(const char m[8], const char *word) { return memcmp(m, word, 8) == 0; }
static int block_is_used(const block *b) {
    return magic_is(b->magic, HL_DEBUG_MAGIC_USED) && magic_is(b->magic_end, HL_DEBUG_MAGIC_USED);
}
static int block_is_freed(const block *b) {
    return magic_is(b->magic, HL_DEBUG_MAGIC_FREE) && magic_is(b->magic_end, HL_DEBUG_MAGIC_FREE);
}
/* The lead follows from the alignment; a header whose fields disagree was
 * written over, and its block must not be handed back to the inner heap. */
static size_t lead_for(size_t align) { return align > HL_DEBUG_HEADER_BYTES ? align : HL_DEBUG_HEADER_BYTES; }
static int header_consistent(const block *b) {
    return b->align_log2 >= 4 && b->align_log2 < 63 && b->lead == lead_for((size_t)1 << b->align_log2) &&
           b->size <= (uint64_t)PTRDIFF_MAX;
}

static void block_set_magic(block *b, const char *word) {
    memcpy(b->magic, word, 8);
    memcpy(b->magic_end, word, 8);
}

/* Offset of the first byte of the canary that is wrong, or SIZE_MAX. */
static size_t canary_damage(block *b) {
    const unsigned char *c = block_canary(b);
    for (size_t i = 0; i < HL_DEBUG_CANARY_BYTES; i++)
        if (c[i] != (unsigned char)HL_DEBUG_CANARY[i]) return i;
    return SIZE_MAX;
}

/* Offset of the first byte of p[0, n) that is not `byte`, or SIZE_MAX. */
static size_t pattern_damage(const unsigned char *p, size_t n, unsigned char byte) {
    uint64_t word;
    memset(&word, byte, sizeof word);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != word) break;
    }
    for (; i < n; i++)
        if (p[i] != byte) return i;
    return SIZE_MAX;
}

/* ---- findings ------------------------------------------------------------- */

static void record(hl_debug_heap *d, hl_debug_kind kind, size_t size, uintptr_t requester, uintptr_t culprit,
                   const void *ptr, size_t offset) {
    hl_debug_finding f = {kind, size, requester, culprit, ptr, offset};
    d->findings_total++;
    if (d->finding_count < HL_DEBUG_MAX_FINDINGS) d->findings[d->finding_count++] = f;
    if (d->opt.report) d->opt.report(d->opt.report_ctx, &f);
}

/* Records `kind` for a block whose header is readable, once per block and kind. */
static void record_block(hl_debug_heap *d, block *b, hl_debug_kind kind, uintptr_t culprit, size_t offset) {
    uint32_t bit = 1u << kind;
    if (b->reported & bit) return;
    b->reported |= bit;
    record(d, kind, (size_t)b->size, (uintptr_t)b->requester, culprit, block_user(b), offset);
}

/* ---- the live list -------------------------------------------------------- */

static int live_add(hl_debug_heap *d, block *b) {
    if (d->live_count == d->live_cap) {
        size_t cap = d->live_cap * 2;
        block **grown = d->inner->realloc(d->heap, d->live, cap * sizeof *grown);
        if (!grown) return -1;
        d->live = grown;
        d->live_cap = cap;
    }
    b->slot = d->live_count;
    d->live[d->live_count++] = b;
    return 0;
}

static void live_remove(hl_debug_heap *d, size_t slot) {
    block *last = d->live[--d->live_count];
    if (slot != d->live_count) {
        d->live[slot] = last;
        last->slot = slot;
    }
}

/* The live slot of the block whose user pointer is p, or SIZE_MAX. The header's
 * slot is tried first and believed only if the list agrees; else the list is
 * searched (only on the way to reporting something, so its cost is no matter). */
static size_t live_slot_of(hl_debug_heap *d, const void *p) {
    if (((uintptr_t)p & (MIN_ALIGN - 1)) || (uintptr_t)p < HL_DEBUG_HEADER_BYTES) return SIZE_MAX;
    block *b = block_of(p);
    uint64_t slot;
    memcpy(&slot, &b->slot, sizeof slot);
    if (slot < d->live_count && d->live[slot] == b) return (size_t)slot;
    for (size_t i = 0; i < d->live_count; i++)
        if (d->live[i] == b) return i;
    return SIZE_MAX;
}

/* ---- the quarantine ------------------------------------------------------- */

static int in_quarantine(hl_debug_heap *d, const block *b) {
    size_t cap = d->opt.quarantine_blocks;
    for (size_t i = 0; i < d->q_count; i++)
        if (d->quarantine[(d->q_first + i) % cap] == b) return 1;
    return 0;
}

/* A freed block must still read "BLK:FREE", all 0xDD, then the canary. */
static void verify_freed(hl_debug_heap *d, block *b, uintptr_t culprit) {
    if (!block_is_freed(b) || !header_consistent(b)) {
        record_block(d, b, HL_DEBUG_USE_AFTER_FREE, culprit, 0);
        return;
    }
    size_t at = pattern_damage(block_user(b), (size_t)b->size, HL_DEBUG_FREED_BYTE);
    if (at != SIZE_MAX) {
        record_block(d, b, HL_DEBUG_USE_AFTER_FREE, culprit, at);
        return;
    }
    at = canary_damage(b);
    if (at != SIZE_MAX) record_block(d, b, HL_DEBUG_USE_AFTER_FREE, culprit, (size_t)b->size + at);
}

static void release(hl_debug_heap *d, block *b) { d->inner->free(d->heap, block_raw(b)); }

static void quarantine_pop(hl_debug_heap *d) {
    block *b = d->quarantine[d->q_first];
    d->q_first = (d->q_first + 1) % d->opt.quarantine_blocks;
    d->q_count--;
    size_t size = (size_t)b->size; /* as read at push, unless a write after free hit it */
    d->q_bytes = size < d->q_bytes ? d->q_bytes - size : 0;
    verify_freed(d, b, 0);
    if (header_consistent(b)) release(d, b); /* else leaked: its lead cannot be trusted */
}

static void quarantine_push(hl_debug_heap *d, block *b) {
    size_t cap = d->opt.quarantine_blocks;
    if (cap == 0) {
        release(d, b);
        return;
    }
    if (d->q_count == cap) quarantine_pop(d);
    d->quarantine[(d->q_first + d->q_count) % cap] = b;
    d->q_count++;
    d->q_bytes += (size_t)b->size;
    while (d->q_count && d->q_bytes > d->opt.quarantine_bytes) quarantine_pop(d);
}

/* ---- checks --------------------------------------------------------------- */

static void verify_live(hl_debug_heap *d, block *b, uintptr_t culprit) {
    if (!block_is_used(b) || !header_consistent(b)) {
        record_block(d, b, HL_DEBUG_BAD_MAGIC, culprit, 0);
        return;
    }
    size_t at = canary_damage(b);
    if (at != SIZE_MAX) record_block(d, b, HL_DEBUG_OVERFLOW, culprit, at);
}

static size_t check_locked(hl_debug_heap *d) {
    size_t before = d->findings_total;
    for (size_t i = 0; i < d->live_count; i++) verify_live(d, d->live[i], 0);
    size_t cap = d->opt.quarantine_blocks;
    for (size_t i = 0; i < d->q_count; i++) verify_freed(d, d->quarantine[(d->q_first + i) % cap], 0);
    return (d->findings_total - before) + d->inner->check(d->heap);
}

/* Every entry point counts itself; every opt.check_every operations, a full check. */
static void tick(hl_debug_heap *d) {
    if (d->opt.check_every && ++d->ops >= d->opt.check_every) {
        d->ops = 0;
        check_locked(d);
    }
}

/* ---- allocation and free -------------------------------------------------- */

static uint32_t log2_of(size_t pow2) {
    uint32_t n = 0;
    while (((size_t)1 << n) < pow2) n++;
    return n;
}

/* align: a power of two. fill: the byte the user bytes start as. */
static void *alloc_block(hl_debug_heap *d, size_t align, size_t size, uintptr_t requester, unsigned char fill) {
    if (align < MIN_ALIGN) align = MIN_ALIGN;
    size_t lead = lead_for(align);
    if (lead > PTRDIFF_MAX / 2 || size > PTRDIFF_MAX - lead - HL_DEBUG_CANARY_BYTES) return NULL;
    size_t total = lead + size + HL_DEBUG_CANARY_BYTES;
    unsigned char *raw = align <= MIN_ALIGN ? d->inner->malloc(d->heap, total)
                                            : d->inner->memalign(d->heap, align, total);
    if (!raw) return NULL;
    block *b = (block *)(raw + lead - HL_DEBUG_HEADER_BYTES);
    if (live_add(d, b) != 0) {
        d->inner->free(d->heap, raw);
        return NULL;
    }
    block_set_magic(b, HL_DEBUG_MAGIC_USED);
    b->size = size;
    b->requester = requester;
    b->lead = lead;
    b->align_log2 = log2_of(align);
    b->reported = 0;
    b->serial = ++d->serial;
    memset(block_user(b), fill, size);
    memcpy(block_canary(b), HL_DEBUG_CANARY, HL_DEBUG_CANARY_BYTES);
    return block_user(b);
}

/* What free and realloc do with a pointer that is not a live block: say why. */
static void report_not_live(hl_debug_heap *d, void *ptr, uintptr_t culprit) {
    if (((uintptr_t)ptr & (MIN_ALIGN - 1)) || (uintptr_t)ptr < HL_DEBUG_HEADER_BYTES) {
        record(d, HL_DEBUG_BAD_MAGIC, 0, 0, culprit, ptr, 0);
        return;
    }
    block *b = block_of(ptr);
    if (block_is_freed(b)) {
        /* in the quarantine: the header is ours for sure; after it, best effort */
        if (in_quarantine(d, b)) record_block(d, b, HL_DEBUG_DOUBLE_FREE, culprit, 0);
        else record(d, HL_DEBUG_DOUBLE_FREE, (size_t)b->size, (uintptr_t)b->requester, culprit, ptr, 0);
        return;
    }
    record(d, HL_DEBUG_BAD_MAGIC, 0, 0, culprit, ptr, 0);
}

/* Retires the live block in `slot`: its canary is checked, its bytes become
 * 0xDD, and it waits in the quarantine. A smashed header is reported and the
 * block kept out of both lists: it cannot be trusted to go back. */
static void free_slot(hl_debug_heap *d, size_t slot, uintptr_t culprit) {
    block *b = d->live[slot];
    live_remove(d, slot);
    if (!block_is_used(b) || !header_consistent(b)) {
        uint32_t bit = 1u << HL_DEBUG_BAD_MAGIC;
        int start_intact = magic_is(b->magic, HL_DEBUG_MAGIC_USED);
        if (!(start_intact && (b->reported & bit)))
            record(d, HL_DEBUG_BAD_MAGIC, start_intact ? (size_t)b->size : 0, start_intact ? (uintptr_t)b->requester : 0,
                   culprit, block_user(b), 0);
        return;
    }
    size_t at = canary_damage(b);
    if (at != SIZE_MAX) record_block(d, b, HL_DEBUG_OVERFLOW, culprit, at);
    block_set_magic(b, HL_DEBUG_MAGIC_FREE);
    b->reported &= ~(1u << HL_DEBUG_USE_AFTER_FREE);
    memset(block_user(b), HL_DEBUG_FREED_BYTE, (size_t)b->size);
    memcpy(block_canary(b), HL_DEBUG_CANARY, HL_DEBUG_CANARY_BYTES);
    quarantine_push(d, b);
}

/* ---- the public entry points ----------------------------------------------- */

hl_debug_options hl_debug_default_options(void) {
    hl_debug_options o = {DEFAULT_QUARANTINE_BLOCKS, DEFAULT_QUARANTINE_BYTES, 0, NULL, NULL};
    return o;
}

hl_debug_heap *hl_debug_create(const hl_allocator *inner, const hl_hooks *hooks, const hl_debug_options *options) {
    void *heap = inner->create(hooks);
    if (!heap) return NULL;
    hl_debug_heap *d = inner->malloc(heap, sizeof *d);
    if (!d) goto fail;
    memset(d, 0, sizeof *d);
    d->inner = inner;
    d->heap = heap;
    d->opt = options ? *options : hl_debug_default_options();
    atomic_init(&d->lock.held, 0);
    atomic_init(&d->next_requester, 0);
    d->live_cap = LIVE_INITIAL;
    d->live = inner->malloc(heap, d->live_cap * sizeof *d->live);
    if (!d->live) goto fail;
    if (d->opt.quarantine_blocks) {
        if (d->opt.quarantine_blocks > SIZE_MAX / sizeof *d->quarantine) goto fail;
        d->quarantine = inner->malloc(heap, d->opt.quarantine_blocks * sizeof *d->quarantine);
        if (!d->quarantine) goto fail;
    }
    return d;
fail:
    inner->destroy(heap);
    return NULL;
}

void hl_debug_destroy(hl_debug_heap *d) {
    if (!d) return;
    const hl_allocator *inner = d->inner;
    inner->destroy(d->heap); /* d itself lives in that heap */
}

void hl_debug_lock(hl_debug_heap *d) { hl_spin_lock(&d->lock); }
void hl_debug_unlock(hl_debug_heap *d) { hl_spin_unlock(&d->lock); }

void *hl_debug_malloc(hl_debug_heap *d, size_t size, uintptr_t requester) {
    hl_spin_lock(&d->lock);
    tick(d);
    void *p = alloc_block(d, MIN_ALIGN, size, requester, HL_DEBUG_FRESH_BYTE);
    hl_spin_unlock(&d->lock);
    return p;
}

void *hl_debug_memalign(hl_debug_heap *d, size_t align, size_t size, uintptr_t requester) {
    hl_spin_lock(&d->lock);
    tick(d);
    void *p = alloc_block(d, align, size, requester, HL_DEBUG_FRESH_BYTE);
    hl_spin_unlock(&d->lock);
    return p;
}

void *hl_debug_calloc(hl_debug_heap *d, size_t count, size_t size, uintptr_t requester) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) return NULL;
    hl_spin_lock(&d->lock);
    tick(d);
    void *p = alloc_block(d, MIN_ALIGN, total, requester, 0);
    hl_spin_unlock(&d->lock);
    return p;
}

/* Always moves: the old block goes to the quarantine, so a stale pointer after
 * realloc is caught like any use after free. The block keeps its alignment. */
void *hl_debug_realloc(hl_debug_heap *d, void *ptr, size_t size, uintptr_t requester) {
    if (!ptr) return hl_debug_malloc(d, size, requester);
    hl_spin_lock(&d->lock);
    tick(d);
    void *q = NULL;
    size_t slot = live_slot_of(d, ptr);
    if (slot == SIZE_MAX) {
        report_not_live(d, ptr, requester);
    } else {
        block *b = d->live[slot];
        if (!block_is_used(b)) {
            free_slot(d, slot, requester); /* reports the header and keeps it out */
        } else {
            q = alloc_block(d, (size_t)1 << b->align_log2, size, requester, HL_DEBUG_FRESH_BYTE);
            if (q) {
                memcpy(q, ptr, size < b->size ? size : (size_t)b->size);
                free_slot(d, live_slot_of(d, ptr), requester); /* alloc_block may have grown the list */
            }
        }
    }
    hl_spin_unlock(&d->lock);
    return q;
}

void hl_debug_free(hl_debug_heap *d, void *ptr, uintptr_t requester) {
    if (!ptr) return;
    hl_spin_lock(&d->lock);
    tick(d);
    size_t slot = live_slot_of(d, ptr);
    if (slot == SIZE_MAX) report_not_live(d, ptr, requester);
    else free_slot(d, slot, requester);
    hl_spin_unlock(&d->lock);
}

size_t hl_debug_usable_size(hl_debug_heap *d, const void *ptr) {
    if (!ptr) return 0;
    hl_spin_lock(&d->lock);
    size_t slot = live_slot_of(d, ptr), n = 0;
    if (slot != SIZE_MAX) n = (size_t)d->live[slot]->size;
    hl_spin_unlock(&d->lock);
    return n;
}

size_t hl_debug_check(hl_debug_heap *d) {
    hl_spin_lock(&d->lock);
    size_t n = check_locked(d);
    hl_spin_unlock(&d->lock);
    return n;
}

size_t hl_debug_take_findings(hl_debug_heap *d, hl_debug_finding *out, size_t max) {
    hl_spin_lock(&d->lock);
    size_t n = d->finding_count < max ? d->finding_count : max;
    memcpy(out, d->findings, n * sizeof *out);
    memmove(d->findings, d->findings + n, (d->finding_count - n) * sizeof *out);
    d->finding_count -= n;
    hl_spin_unlock(&d->lock);
    return n;
}

size_t hl_debug_findings_total(hl_debug_heap *d) {
    hl_spin_lock(&d->lock);
    size_t n = d->findings_total;
    hl_spin_unlock(&d->lock);
    return n;
}

static int block_spans(block *b, uintptr_t addr) {
    uintptr_t lo = (uintptr_t)b, hi = (uintptr_t)block_canary(b) + HL_DEBUG_CANARY_BYTES;
    return addr >= lo && addr < hi;
}

int hl_debug_owns(hl_debug_heap *d, uintptr_t addr) {
    int found = 0;
    hl_spin_lock(&d->lock);
    for (size_t i = 0; i < d->live_count && !found; i++) found = block_spans(d->live[i], addr);
    size_t cap = d->opt.quarantine_blocks;
    for (size_t i = 0; i < d->q_count && !found; i++) found = block_spans(d->quarantine[(d->q_first + i) % cap], addr);
    hl_spin_unlock(&d->lock);
    return found;
}

void hl_debug_set_requester(hl_debug_heap *d, uintptr_t requester) {
    atomic_store_explicit(&d->next_requester, requester, memory_order_relaxed);
}

const char *hl_debug_kind_name(hl_debug_kind kind) {
    switch (kind) {
        case HL_DEBUG_OVERFLOW: return "overflow";
        case HL_DEBUG_USE_AFTER_FREE: return "use-after-free";
        case HL_DEBUG_BAD_MAGIC: return "bad-magic";
        case HL_DEBUG_DOUBLE_FREE: return "double-free";
    }
    return "unknown";
}

const char *hl_debug_kind_verb(hl_debug_kind kind) {
    switch (kind) {
        case HL_DEBUG_OVERFLOW: return "was written past its end";
        case HL_DEBUG_USE_AFTER_FREE: return "was written after it was freed";
        case HL_DEBUG_BAD_MAGIC: return "had its header overwritten (a write before its start), or was never a block";
        case HL_DEBUG_DOUBLE_FREE: return "was freed twice";
    }
    return "went wrong";
}

/* ---- the layer as an hl_allocator table (hl_debug_wrap) -------------------- */

/* The requester set by hl_debug_set_requester for this one call, else `caller`. */
static uintptr_t take_requester(hl_debug_heap *d, void *caller) {
    uintptr_t r = atomic_load_explicit(&d->next_requester, memory_order_relaxed);
    if (r) r = atomic_exchange_explicit(&d->next_requester, 0, memory_order_relaxed);
    return r ? r : (uintptr_t)caller;
}

#define CALLER() __builtin_return_address(0)
static void op_destroy(void *heap) { hl_debug_destroy(heap); }
static __attribute__((noinline)) void *op_malloc(void *heap, size_t size) {
    return hl_debug_malloc(heap, size, take_requester(heap, CALLER()));
}
static __attribute__((noinline)) void *op_memalign(void *heap, size_t align, size_t size) {
    return hl_debug_memalign(heap, align, size, take_requester(heap, CALLER()));
}
static __attribute__((noinline)) void *op_realloc(void *heap, void *ptr, size_t size) {
    return hl_debug_realloc(heap, ptr, size, take_requester(heap, CALLER()));
}
static __attribute__((noinline)) void *op_calloc(void *heap, size_t count, size_t size) {
    return hl_debug_calloc(heap, count, size, take_requester(heap, CALLER()));
}
static __attribute__((noinline)) void op_free(void *heap, void *ptr) { hl_debug_free(heap, ptr, (uintptr_t)CALLER()); }
static size_t op_usable_size(void *heap, const void *ptr) { return hl_debug_usable_size(heap, ptr); }
static size_t op_check(void *heap) { return hl_debug_check(heap); }
/* The design's walk: a debug block is the design's block, with the layer's header and canary inside its payload. */
static void op_walk(void *heap, hl_walker walker, void *user) {
    hl_debug_heap *d = heap;
    hl_spin_lock(&d->lock);
    if (d->inner->walk) d->inner->walk(d->heap, walker, user);
    hl_spin_unlock(&d->lock);
}

/* One table per wrapped design (layer.h). */
static void *debug_create_default(const hl_allocator *inner, const hl_hooks *hooks) {
    return hl_debug_create(inner, hooks, NULL);
}
HL_LAYER_SLOTS(debug_slots, debug_create_default);

static const hl_allocator debug_ops = {
    .destroy = op_destroy,
    .malloc = op_malloc,
    .memalign = op_memalign,
    .realloc = op_realloc,
    .calloc = op_calloc,
    .free = op_free,
    .usable_size = op_usable_size,
    .check = op_check,
    .walk = op_walk,
};

const hl_allocator *hl_debug_wrap(const hl_allocator *inner) { return hl_layer_table(&debug_slots, &debug_ops, "+debug", inner); }
