/*
 * trace/writer.h — the recording half of native/trace/trace.h, used by preload.c only.
 *
 * Nothing here calls malloc: records are stored straight into a shared mapping
 * of the trace file, and the pointer -> block id table lives in mmap'd memory. preload.c holds the
 * trace lock around each traced call (the allocation and its record together),
 * so that the records are in the order the calls took effect: a block freed by
 * one thread and handed out again to another is always seen freed first.
 */
#ifndef HEAPLAB_TRACE_WRITER_H
#define HEAPLAB_TRACE_WRITER_H

#include <stdatomic.h>
#include <stddef.h>
#include "trace.h"

/* Non-zero while recording; read on every call, so a plain relaxed load. */
extern atomic_int hl_trace_on;

static inline int hl_trace_active(void) {
    return __builtin_expect(atomic_load_explicit(&hl_trace_on, memory_order_relaxed), 0);
}

/* Starts recording into `path` (created or truncated). `descendant` sets
 * HL_TRACE_FLAG_DESCENDANT. Returns 0, or an errno value (nothing recorded). */
int hl_trace_start(const char *path, int descendant, const char *allocator, const char *program);
/* Stops recording and cuts the file to the records written (at exit). */
void hl_trace_finish(void);

void hl_trace_lock(void);
void hl_trace_unlock(void);

/* The following are called with the trace lock held, after the call succeeded. */
/* A new block at p: op is HL_TRACE_MALLOC, _CALLOC or _MEMALIGN. */
void hl_trace_alloc(int op, const void *p, size_t size, size_t align);
/* p is freed: records FREE if p is a recorded block (blocks from before the
 * recording started, or not from this heap, are not recorded). */
void hl_trace_free(const void *p);
/* Block old is now at q with size bytes: REALLOC keeping old's id, or MALLOC of
 * a new id when old was not a recorded block. */
void hl_trace_realloc(const void *old, const void *q, size_t size);

/* pthread_atfork: prepare takes the trace lock (if recording), parent releases
 * it, child releases it and stops recording, leaving the parent's file alone (a
 * forked child's records would refer to ids whose allocation is in the parent's
 * file; a child that execs starts a file of its own). */
void hl_trace_fork_prepare(void);
void hl_trace_fork_parent(void);
void hl_trace_fork_child(void);

#endif
