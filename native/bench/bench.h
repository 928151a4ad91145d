/*
 * bench.h — the benchmark's replay: a trace (or one trace per thread, all on one
 * shared heap) run in C against one target allocator, with per-operation latency
 * and memory sampled over time. The Node binding (addon.cc `bench`) calls it once
 * per run; nothing crosses into JavaScript per operation.
 *
 * Targets:
 *   tlsf, dlmalloc, liballoc  heaplab's allocators, a fresh heap per run on the
 *                             mmap page source (locked hooks, default page cache);
 *                             memory = bytes the heap and the page cache hold
 *                             (exact, peak included)
 *   glibc                     the process's own malloc family; memory = mallinfo2()
 *                             arena + hblkhd (bytes glibc holds from the system,
 *                             every arena), after malloc_trim(0), sampled
 *   jemalloc, mimalloc,       peers, loaded with dlopen(RTLD_LOCAL | RTLD_NOW) and
 *   tcmalloc                  called only through their dlsym'd entry points, so
 *                             they never replace the process's malloc; memory =
 *                             their own statistics (jemalloc stats.resident,
 *                             mimalloc committed bytes, tcmalloc heap_size minus
 *                             unmapped bytes), after purging, sampled
 *   any other NAME, with a    a library the user names (heaplab bench --peer
 *   path                      NAME=PATH): its own malloc, free, realloc,
 *                             posix_memalign (calloc, malloc_usable_size,
 *                             malloc_trim if defined), dlopen'ed the same way;
 *                             memory = the process's resident set
 *
 * Clock: the timestamp counter (rdtsc behind lfence) when the CPU says it is
 * invariant (constant_tsc + nonstop_tsc), calibrated against CLOCK_MONOTONIC;
 * otherwise clock_gettime(CLOCK_MONOTONIC). hl_bench_clock_info says which and
 * what one reading costs; latencies are reported net of that cost.
 */
#ifndef HEAPLAB_BENCH_H
#define HEAPLAB_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include "../replay/replay.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Latency histogram: log-linear buckets (64 per power of two, ~1.6% wide) over
 * nanoseconds; values below 128 ns are exact. */
enum { HL_BENCH_SUB_BITS = 6, HL_BENCH_BUCKETS = 64 * 2 + 64 * 40 };

typedef struct hl_bench_histogram {
    uint64_t count[HL_BENCH_BUCKETS];
    uint64_t total;
    double max_ns;
} hl_bench_histogram;

/* Lower bound in ns of bucket i. */
double hl_bench_bucket_ns(size_t i);

typedef struct hl_bench_clock_info {
    const char *name;        /* "rdtsc" or "clock_gettime(CLOCK_MONOTONIC)" */
    double ns_per_tick;
    double overhead_ns;      /* median of back-to-back readings, subtracted from each latency */
    double min_overhead_ns;
} hl_bench_clock_info;

const hl_bench_clock_info *hl_bench_clock(void);

/* A target allocator. Opened once per process and kept: peers are never dlclose'd. */
typedef struct hl_bench_target hl_bench_target;

/* Finds/loads a target by name ("tlsf", "glibc", "jemalloc", ...). For a peer,
 * `path` overrides the Debian path (NULL: env HEAPLAB_JEMALLOC etc., then the
 * Debian path); any other name with a path is a library of the user's. Returns
 * NULL and writes why into err. */
const hl_bench_target *hl_bench_target_open(const char *name, const char *path, char *err, size_t errlen);
/* What the target's memory figure is, in a few words. */
const char *hl_bench_target_memory_source(const hl_bench_target *t);
/* The library actually loaded (peers), or "". */
const char *hl_bench_target_path(const hl_bench_target *t);

typedef struct hl_bench_sample {
    double op;            /* operations done (all threads) when sampled        */
    double mapped;        /* bytes held from the system, minus the baseline    */
    double live;          /* bytes requested by live blocks                    */
    double rss;           /* the process's resident bytes, minus the baseline  */
} hl_bench_sample;

typedef struct hl_bench_config {
    const hl_trace_view *traces;  /* one per thread                              */
    size_t threads;               /* 1..8                                        */
    int touch;                    /* write each new block's first and last byte  */
    int latency;                  /* run a second pass timing every operation    */
    size_t throughput_runs;       /* passes for the total time (best is kept), >= 1 */
    size_t max_samples;           /* memory samples kept for the timeline (<= 4096) */
} hl_bench_config;

typedef struct hl_bench_result {
    double elapsed_ns;            /* best throughput pass; memory sampling excluded */
    double latency_elapsed_ns;    /* the latency pass (includes the clock reads)    */
    uint64_t ops;
    size_t failures;
    double peak_live;             /* bytes requested by live blocks at peak: exact for one thread; for
                                     several, the largest sum the sampler saw */
    double peak_mapped;           /* bytes held from the system at peak, minus the baseline */
    double baseline_mapped;
    double peak_rss;              /* resident set growth at peak (process-wide, sampled) */
    hl_bench_histogram alloc_hist; /* malloc, calloc, memalign, realloc */
    hl_bench_histogram free_hist;
    /* Of those, the operations during which the allocator called its page source
     * (alloc_page, free_page, resize_page: a cache hit or a system call): so a
     * reader can tell the design's tail from the operating system's. heaplab's
     * allocators only; empty for the others. */
    hl_bench_histogram alloc_crossed_hist;
    hl_bench_histogram free_crossed_hist;
    hl_bench_sample samples[4096];
    size_t sample_count;
} hl_bench_result;

/* Runs the trace(s) against the target. Returns 0, or -1 with err filled in. */
int hl_bench_run(const hl_bench_target *t, const hl_bench_config *config, hl_bench_result *result, char *err,
                 size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
