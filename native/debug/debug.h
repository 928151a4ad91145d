/*
 * debug.h — heaplab's debug mode: ONE layer that wraps any hl_allocator instance
 * and finds what its callers do wrong to the memory it hands out.
 *
 * Every block the layer hands out sits inside a larger block of the inner
 * allocator:
 *
 *     inner block                                                   inner block end
 *     |  (lead: padding for         64-byte header            user bytes    16-byte
 *     |   alignments > 64)    | "BLK:USED" size requester ... "BLK:USED" | ...size... | canary  | slack
 *     +-----------------------+-------------------------------------------+------------+---------+
 *                                                                         ^ pointer the caller gets
 *
 *  - the header begins and ends with a readable 8-byte magic word, "BLK:USED"
 *    while the block is live and "BLK:FREE" once it is freed, so that a hex dump
 *    reads, and a write just before the block (an underflow) is seen;
 *  - it records the size asked for and the requester: in C the caller's return
 *    address (the entry point passes __builtin_return_address(0) down), in Node
 *    an opaque label id that lib/heap/heap.ts turns back into "parse() at app.js:12";
 *  - fresh memory is filled with 0xAA (HL_DEBUG_FRESH_BYTE; calloc zeroes),
 *    freed memory with 0xDD (HL_DEBUG_FREED_BYTE); the 16 bytes after the block
 *    hold the canary "CANARY!!CANARY!!", verified on free and by check();
 *  - a freed block is held in a FIFO quarantine (default 256 blocks / 4 MiB)
 *    before it really goes back to the inner allocator; when it leaves, and on
 *    check(), it must still be all 0xDD: a write after free shows up;
 *  - realloc always moves the block (the old one goes to the quarantine), so a
 *    stale pointer after realloc is a use after free too;
 *  - usable_size is the size asked for: there is no slack a caller may use;
 *  - a full check() can run every N operations (options.check_every).
 *
 * What it finds goes into a list of findings (kind, block size, requester),
 * read with hl_debug_take_findings, and is optionally passed to a callback as
 * soon as it is found (the preload library prints it and aborts). The layer
 * never prints. What a finding does to the heap: an overflowed or written-after-
 * free block is still given back (only its own bytes were hit); a block whose
 * header is smashed, or a second free, is left alone (leaked): the inner heap is
 * never handed a pointer the layer cannot vouch for.
 *
 * Limits, by design: a second free is recognised while the block is in the
 * quarantine (after that its memory may belong to another block); free of a
 * pointer that was never a block reads the 64 bytes before it; writes that land
 * beyond the canary, or that put back the exact pattern, are not seen.
 *
 * Locking: the layer has its own lock, taken by every entry point and held
 * while it calls the inner allocator (which takes its hooks->lock): the order is
 * always debug lock, then heap lock. hl_debug_lock/unlock are for fork handlers.
 */
#ifndef HEAPLAB_DEBUG_H
#define HEAPLAB_DEBUG_H

#include <stddef.h>
#include <stdint.h>
#include "../allocator.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HL_DEBUG_MAGIC_USED "BLK:USED"
#define HL_DEBUG_MAGIC_FREE "BLK:FREE"
#define HL_DEBUG_CANARY "CANARY!!CANARY!!"
enum {
    HL_DEBUG_HEADER_BYTES = 64,
    HL_DEBUG_CANARY_BYTES = 16,
    HL_DEBUG_FRESH_BYTE = 0xAA,
    HL_DEBUG_FREED_BYTE = 0xDD,
    HL_DEBUG_MAX_FINDINGS = 64, /* kept until taken; later ones are only counted */
};

typedef enum hl_debug_kind {
    HL_DEBUG_OVERFLOW = 1,       /* the canary after the block was overwritten     */
    HL_DEBUG_USE_AFTER_FREE = 2, /* a quarantined block no longer holds 0xDD       */
    HL_DEBUG_BAD_MAGIC = 3,      /* the header is not a block's (underflow, wild)  */
    HL_DEBUG_DOUBLE_FREE = 4,    /* free of a block that is already in quarantine  */
} hl_debug_kind;

typedef struct hl_debug_finding {
    hl_debug_kind kind;
    size_t size;         /* bytes the block was asked for (0 if its header is unreadable) */
    uintptr_t requester; /* who asked for the block (return address or label id), 0 unknown */
    uintptr_t culprit;   /* the call that found it: the freeing caller, or 0 (check)       */
    const void *ptr;     /* the block as the caller saw it                                 */
    size_t offset;       /* first wrong byte, from ptr (overflow: from ptr + size)         */
} hl_debug_finding;

typedef void (*hl_debug_report_fn)(void *ctx, const hl_debug_finding *finding);

typedef struct hl_debug_options {
    size_t quarantine_blocks; /* default 256; 0 = freed blocks go back at once     */
    size_t quarantine_bytes;  /* default 4 MiB of user bytes held at most          */
    size_t check_every;       /* run a full check every N operations; 0 = never    */
    hl_debug_report_fn report; /* called (under the layer's lock) per finding      */
    void *report_ctx;
} hl_debug_options;

typedef struct hl_debug_heap hl_debug_heap;

hl_debug_options hl_debug_default_options(void);

/* A debug heap over a fresh instance of `inner` created on `hooks`; NULL when
 * the inner heap cannot be created. options NULL means the defaults. */
hl_debug_heap *hl_debug_create(const hl_allocator *inner, const hl_hooks *hooks, const hl_debug_options *options);
/* Destroys the inner heap: every page goes back. */
void hl_debug_destroy(hl_debug_heap *d);

void *hl_debug_malloc(hl_debug_heap *d, size_t size, uintptr_t requester);
void *hl_debug_memalign(hl_debug_heap *d, size_t align, size_t size, uintptr_t requester);
void *hl_debug_calloc(hl_debug_heap *d, size_t count, size_t size, uintptr_t requester);
void *hl_debug_realloc(hl_debug_heap *d, void *ptr, size_t size, uintptr_t requester);
void hl_debug_free(hl_debug_heap *d, void *ptr, uintptr_t requester);
size_t hl_debug_usable_size(hl_debug_heap *d, const void *ptr);
/* Verifies every live block's magics and canary, every quarantined block's
 * pattern, and runs the inner check. Returns new findings + inner invariants. */
size_t hl_debug_check(hl_debug_heap *d);

/* Moves up to `max` findings into `out` (oldest first); returns how many. */
size_t hl_debug_take_findings(hl_debug_heap *d, hl_debug_finding *out, size_t max);
/* Findings found since creation, including those dropped past HL_DEBUG_MAX_FINDINGS. */
size_t hl_debug_findings_total(hl_debug_heap *d);
/* Whether [addr, addr + 1) lies inside a block the layer knows (live or
 * quarantined, header and canary included): lets tests scribble on purpose. */
int hl_debug_owns(hl_debug_heap *d, uintptr_t addr);

/* The requester the table entry points below record for their next call (one
 * call only; then the caller's return address is used again). For a host with
 * one thread per heap, such as Node. */
void hl_debug_set_requester(hl_debug_heap *d, uintptr_t requester);

/* The debug layer over `inner` as an hl_allocator table, so that any code that
 * drives the table (test drivers, fuzzers, the addon) runs it unchanged; its
 * heap pointers are hl_debug_heap *. Up to 8 distinct inner tables; NULL past that. */
const hl_allocator *hl_debug_wrap(const hl_allocator *inner);

/* For fork handlers: the layer's lock (take it before the heap lock). */
void hl_debug_lock(hl_debug_heap *d);
void hl_debug_unlock(hl_debug_heap *d);

/* "overflow", "use-after-free", "bad-magic", "double-free". */
const char *hl_debug_kind_name(hl_debug_kind kind);
/* What the block suffered, as the end of a sentence: "was written past its end". */
const char *hl_debug_kind_verb(hl_debug_kind kind);

#ifdef __cplusplus
}
#endif
#endif
