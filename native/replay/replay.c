/* replay.c — a trace, run in C. See replay.h. */
#define _GNU_SOURCE
#include "replay.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

void *hl_table_alloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    size_t bytes = count * size;
    if (!bytes) bytes = 1;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

void hl_table_free(void *table, size_t count, size_t size) {
    size_t bytes = count * size;
    if (table) munmap(table, bytes ? bytes : 1);
}

uint64_t hl_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double offset_of(const void *p, const unsigned char *base) {
    if (!p) return -1;
    return (double)((const unsigned char *)p - base);
}

int hl_replay(const hl_allocator *a, void *heap, const hl_trace_view *t, const hl_replay_options *o,
              hl_replay_result *r, hl_replay_blocks *blocks) {
    void **ptr = hl_table_alloc((size_t)t->max_id + 1, sizeof *ptr);
    if (!ptr) return -1;
    size_t failures = 0;
    uint64_t start = hl_now_ns();
    for (size_t i = 0; i < t->count; i++) {
        int failed;
        void *p = hl_replay_step(a, heap, t, i, ptr, o->touch, &failed);
        failures += (size_t)failed;
        if (o->offsets) o->offsets[i] = t->op[i] == HL_TRACE_FREE ? 0 : failed ? -1 : offset_of(p, o->base);
    }
    r->elapsed_ns = hl_now_ns() - start;
    r->failures = failures;
    size_t live = 0;
    for (uint32_t id = 0; id <= t->max_id; id++) live += ptr[id] != NULL;
    r->live_blocks = live;
    blocks->ptr = ptr;
    blocks->count = t->max_id + 1;
    return 0;
}

void hl_replay_release(const hl_allocator *a, void *heap, hl_replay_blocks *blocks) {
    for (uint32_t id = 0; id < blocks->count; id++)
        if (blocks->ptr[id]) a->free(heap, blocks->ptr[id]);
    hl_table_free(blocks->ptr, blocks->count, sizeof *blocks->ptr);
    blocks->ptr = NULL;
    blocks->count = 0;
}
