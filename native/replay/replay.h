/*
 * replay.h — runs a whole trace against one allocator inside C, with no
 * crossing into JavaScript per operation, so a timing is the allocator's own.
 * The trace is the in-memory form of docs/trace-format.md: parallel arrays.
 */
#ifndef HEAPLAB_REPLAY_H
#define HEAPLAB_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include "../allocator.h"
#include "../trace/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* op[] holds enum hl_trace_op (trace.h): the one definition of the operations. */

typedef struct hl_trace_view {
    size_t count;
    const uint8_t *op;
    const uint32_t *id;         /* block id; a block keeps its id through realloc */
    const double *size;         /* bytes (exact integers below 2**53)               */
    const uint8_t *align_log2;  /* MEMALIGN's alignment; ignored otherwise         */
    uint32_t max_id;            /* every id is <= max_id                           */
} hl_trace_view;

typedef struct hl_replay_options {
    const unsigned char *base; /* results are reported as ptr - base (arena) */
    double *offsets;           /* count entries or NULL: result of each op, -1 for NULL, 0 for free */
    int touch;                 /* write each new block's first and last byte, like a real program */
} hl_replay_options;

typedef struct hl_replay_result {
    uint64_t elapsed_ns;
    size_t failures;       /* allocations that returned NULL */
    size_t live_blocks;    /* blocks still allocated at the end (freed by hl_replay_release) */
} hl_replay_result;

/* The block table of one replay; keep it to inspect, then release it. */
typedef struct hl_replay_blocks { void **ptr; uint32_t count; } hl_replay_blocks;

/*
 * One operation of a trace on the block table ptr[]: the one definition of what
 * each op does, shared by hl_replay (compare), the bench (native/bench/bench.c)
 * and mirrored by lib/replay/replay.ts for the ports. Allocations put their
 * result in ptr[id] and return it (NULL on failure: *failed is set, and a failed
 * realloc leaves the old block in ptr[id]); a free clears ptr[id] and returns
 * NULL. `touch` writes each new block's first and last byte, as a program would.
 * A realloc to 0 bytes is the table's (allocator.h: a minimum block); the bench
 * gives its non-heaplab targets that contract too.
 */
static inline void *hl_replay_step(const hl_allocator *a, void *heap, const hl_trace_view *t, size_t i, void **ptr,
                                   int touch, int *failed) {
    uint32_t id = t->id[i];
    size_t size = (size_t)t->size[i];
    void *p;
    *failed = 0;
    switch (t->op[i]) {
        case HL_TRACE_MALLOC: p = a->malloc(heap, size); break;
        case HL_TRACE_CALLOC: p = a->calloc(heap, 1, size); break;
        case HL_TRACE_MEMALIGN: p = a->memalign(heap, (size_t)1 << t->align_log2[i], size); break;
        case HL_TRACE_REALLOC:
            p = a->realloc(heap, ptr[id], size);
            if (!p) {
                *failed = 1;
                return NULL; /* the old block stays */
            }
            break;
        case HL_TRACE_FREE:
            a->free(heap, ptr[id]);
            ptr[id] = NULL;
            return NULL;
        default: return NULL;
    }
    if (!p) *failed = 1;
    else if (touch && size) {
        ((volatile unsigned char *)p)[0] = 1;
        ((volatile unsigned char *)p)[size - 1] = 1;
    }
    ptr[id] = p;
    return p;
}

/* A zeroed table of `count` entries of `size` bytes, on its own pages, every page
 * already faulted in (MAP_POPULATE): a replay's timing must not include the
 * page faults of its own bookkeeping, nor may the table come from an allocator
 * under test (glibc's malloc is one). NULL if it cannot be had. A calloc and a
 * memset would not do: the compiler drops a memset of fresh calloc memory. */
void *hl_table_alloc(size_t count, size_t size);
void hl_table_free(void *table, size_t count, size_t size);

/* Returns 0, or -1 if the block table could not be allocated. */
int hl_replay(const hl_allocator *a, void *heap, const hl_trace_view *trace, const hl_replay_options *options,
              hl_replay_result *result, hl_replay_blocks *blocks);
/* Frees every block still live, then the table. */
void hl_replay_release(const hl_allocator *a, void *heap, hl_replay_blocks *blocks);

/* CLOCK_MONOTONIC in ns: the one monotonic clock (the bench calibrates its TSC against it). */
uint64_t hl_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif
