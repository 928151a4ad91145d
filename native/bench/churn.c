/*
 * churn.c — a malloc benchmark of the usual kind, run under LD_PRELOAD (or not,
 * for the process's own malloc): `live` blocks of log-uniform sizes in
 * [min, max], then `pairs` random replacements (free one block, malloc a new
 * one in its slot). Every block carries a tag in its first and last 8 bytes
 * (a block under 16 bytes: in its first 8), checked before it is freed, so an allocator that hands out overlapping or
 * stale memory fails the run.
 *
 * `heaplab churn` runs it under each allocator, in interleaved rounds, and
 * prints the medians (lib/bench/churn.ts); cmake builds it as
 * build/Release/heaplab-churn. By hand:
 *
 *   LD_PRELOAD=$(npx heaplab which tlsf) build/Release/heaplab-churn 2000000   (no LD_PRELOAD: glibc)
 *
 *   churn [pairs] [live] [min] [max] [seed] [fill] [threads]
 *
 * threads (given: even 1) runs that many threads, each with its own `live` blocks and its
 * own `pairs` replacements (seeded seed + thread), all on the one process heap,
 * and prints only the total throughput (mpairs, all threads, over the wall
 * time from the common start): divide by the 1-thread figure for 2T/1T.
 *
 * fill 1 writes every byte of each new block (the tag words included), so
 * that resident memory is what the allocator hands out, not what it touches.
 *
 * Prints one line of key=value: throughput (M pairs/s, an untimed pass),
 * malloc latency percentiles (a second, timed pass: every malloc between two
 * fenced TSC reads, net of the reads' own cost), peak RSS, RSS after freeing
 * every block, the peak live bytes, and the minor page faults per 1000 pairs of
 * the timed pass; last, malloc_from= the file that defines the malloc this
 * process calls (so that a library the dynamic linker refused to preload, which
 * it only warns about, cannot pass for the allocator under test). Exit 1 on a
 * tag mismatch or NULL.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <x86intrin.h>

static _Thread_local uint64_t rng_state;   /* per thread: each runs its own sequence */
static uint64_t rng(void) {   /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double lg_min, lg_span;
static size_t pick_size(void) {
    double u = (double)(rng() >> 11) / 9007199254740992.0;
    return (size_t)__builtin_exp(lg_min + u * lg_span);
}

typedef struct slot { unsigned char *p; size_t n; uint64_t tag; } slot;

static int fill_blocks;
static void tag_block(slot *s) {
    s->tag = rng() | 1;
    if (fill_blocks) memset(s->p, (int)(s->tag & 0xff), s->n);
    memcpy(s->p, &s->tag, 8);
    if (s->n >= 16) memcpy(s->p + s->n - 8, &s->tag, 8);
}
static int tag_ok(const slot *s) {
    uint64_t a, b;
    memcpy(&a, s->p, 8);
    if (s->n < 16) return a == s->tag;
    memcpy(&b, s->p + s->n - 8, 8);
    return a == s->tag && b == s->tag;
}

static size_t rss_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t v = 0, len = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0) v = strtoull(line + len, NULL, 10);
    if (f) fclose(f);
    return v;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t tsc(void) { _mm_lfence(); uint64_t t = __rdtsc(); _mm_lfence(); return t; }

/* The object whose malloc this process calls: under LD_PRELOAD, the library. */
static const char *malloc_from(void) {
    Dl_info info;
    void *(*volatile fn)(size_t) = malloc; /* the address as the program resolves it */
    return dladdr((void *)fn, &info) && info.dli_fname ? info.dli_fname : "?";
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* One pass of `pairs` replacements; lat != NULL times every malloc (ticks). */
static int run_pass(slot *s, size_t live, size_t pairs, uint32_t *lat) {
    for (size_t i = 0; i < pairs; i++) {
        slot *v = &s[rng() % live];
        if (!tag_ok(v)) return -1;
        free(v->p);
        v->n = pick_size();
        uint64_t t0 = lat ? tsc() : 0;
        v->p = malloc(v->n);
        if (lat) { uint64_t d = tsc() - t0; lat[i] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d; }
        if (!v->p) return -1;
        tag_block(v);
    }
    return 0;
}

typedef struct threaded_job {
    size_t pairs, live;
    uint64_t seed;
    pthread_barrier_t *start;
    int failed;
} threaded_job;

static void *threaded_main(void *arg) {
    threaded_job *j = arg;
    rng_state = j->seed;
    slot *s = mmap(NULL, j->live * sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) { j->failed = 1; return NULL; }
    for (size_t i = 0; i < j->live; i++) {
        s[i].n = pick_size();
        s[i].p = malloc(s[i].n);
        if (!s[i].p) { j->failed = 1; return NULL; }
        tag_block(&s[i]);
    }
    pthread_barrier_wait(j->start);
    if (run_pass(s, j->live, j->pairs, NULL)) j->failed = 1;
    for (size_t i = 0; i < j->live; i++) {
        if (!tag_ok(&s[i])) j->failed = 1;
        free(s[i].p);
    }
    munmap(s, j->live * sizeof *s);
    return NULL;
}

/* threads > 1: the throughput of all of them together. */
static int run_threaded(size_t threads, size_t pairs, size_t live, uint64_t seed) {
    pthread_t tid[64];
    threaded_job job[64];
    pthread_barrier_t start;
    if (threads > 64) threads = 64;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (size_t k = 0; k < threads; k++) {
        job[k] = (threaded_job){pairs, live, seed + k, &start, 0};
        pthread_create(&tid[k], NULL, threaded_main, &job[k]);
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    int failed = 0;
    for (size_t k = 0; k < threads; k++) {
        pthread_join(tid[k], NULL);
        failed |= job[k].failed;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    if (failed) { puts("error=tag-or-null"); return 1; }
    printf("threads=%zu mpairs=%.3f malloc_from=%s\n", threads, (double)(pairs * threads) / secs / 1e6, malloc_from());
    return 0;
}

int main(int argc, char **argv) {
    size_t pairs = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    size_t live = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000;
    size_t min = argc > 3 ? strtoull(argv[3], NULL, 10) : 8;
    size_t max = argc > 4 ? strtoull(argv[4], NULL, 10) : 65536;
    rng_state = argc > 5 ? strtoull(argv[5], NULL, 10) : 42;
    fill_blocks = argc > 6 ? atoi(argv[6]) : 0;
    size_t threads = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
    if (min < 8) min = 8;     /* room for a tag */
    if (max < min) max = min;
    lg_min = __builtin_log((double)min);
    lg_span = __builtin_log((double)max + 1) - lg_min;
    if (argc > 7) return run_threaded(threads, pairs, live, rng_state);

    /* calibrate the TSC and the cost of a timed empty interval */
    uint64_t n0 = now_ns(), c0 = tsc();
    while (now_ns() - n0 < 20000000u) {}
    double ns_per_tick = (double)(now_ns() - n0) / (double)(tsc() - c0);
    uint64_t empty = UINT64_MAX;
    for (int i = 0; i < 10000; i++) { uint64_t a = tsc(), d = tsc() - a; if (d < empty) empty = d; }

    /* the harness's own arrays come from mmap, not the allocator under test */
    slot *s = mmap(NULL, live * sizeof *s, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *lat = mmap(NULL, pairs * sizeof *lat, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED || lat == MAP_FAILED) return 1;
    memset(lat, 0, pairs * sizeof *lat);
    size_t live_bytes = 0;
    for (size_t i = 0; i < live; i++) {
        s[i].n = pick_size();
        s[i].p = malloc(s[i].n);
        if (!s[i].p) return 1;
        live_bytes += s[i].n;
        tag_block(&s[i]);
    }
    /* untimed-per-call pass: throughput */
    uint64_t t0 = now_ns();
    if (run_pass(s, live, pairs, NULL)) { puts("error=tag-or-null"); return 1; }
    double secs = (double)(now_ns() - t0) / 1e9;
    /* timed pass; minor faults counted over it (first touches of pages: the
     * kernel's part of the tail, which no allocator counter sees) */
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    if (run_pass(s, live, pairs, lat)) { puts("error=tag-or-null"); return 1; }
    getrusage(RUSAGE_SELF, &ru1);
    long faults = ru1.ru_minflt - ru0.ru_minflt;
    for (size_t i = 0; i < pairs; i++) lat[i] = lat[i] > empty ? lat[i] - (uint32_t)empty : 0;
    size_t peak_kib = rss_kib("VmHWM:");
    qsort(lat, pairs, sizeof *lat, cmp_u32);
    double q[6];
    const double at[6] = {0.5, 0.99, 0.999, 0.9999, 1.0};
    for (int k = 0; k < 5; k++) q[k] = (double)lat[(size_t)((double)(pairs - 1) * at[k])] * ns_per_tick;
    munmap(lat, pairs * sizeof *lat);
    for (size_t i = 0; i < live; i++) {
        if (!tag_ok(&s[i])) { puts("error=tag"); return 1; }
        free(s[i].p);
    }
    munmap(s, live * sizeof *s);
    size_t after_kib = rss_kib("VmRSS:");
    printf("mpairs=%.3f p50=%.0f p99=%.0f p999=%.0f p9999=%.0f max=%.0f peak_rss_mb=%.1f after_rss_mb=%.2f "
           "live_mb=%.1f faults_per_kpair=%.2f malloc_from=%s\n",
           (double)pairs / secs / 1e6, q[0], q[1], q[2], q[3], q[4], (double)peak_kib / 1024,
           (double)after_kib / 1024, (double)live_bytes / 1048576, (double)faults * 1000 / (double)pairs, malloc_from());
    return 0;
}
