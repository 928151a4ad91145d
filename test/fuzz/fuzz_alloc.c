/*
 * fuzz_alloc.c — one fuzz driver over every allocator in the build, and over
 * each of them wrapped by the debug layer (native/debug/debug.c) and behind the
 * thread cache (native/cache/cache.c, "NAME+cache"): bytes in, a
 * sequence of malloc / memalign / calloc / realloc / free / usable_size /
 * check out, with sizes and alignments at the edges, every block's contents
 * verified, and the heap checked.
 *
 * Built two ways from this one file:
 *  - with libFuzzer (clang -fsanitize=fuzzer,address,undefined), by
 *    scripts/fuzz.sh (`npm run fuzz`): LLVMFuzzerTestOneInput below;
 *  - as a plain program (gcc, ASan + UBSan) by test/c/test_fuzz_smoke.c, which
 *    includes this file and feeds it seeded random inputs for a few seconds in
 *    `npm test`, or replays files named on its command line (a crash input).
 *
 * Which allocator: HEAPLAB_FUZZ_ALLOCATOR=NAME (e.g. "tlsf", "dlmalloc+debug", "liballoc+cache")
 * runs every input against that one; unset, the first byte of the input picks.
 *
 * The input, after that, is a list of operations; each starts with one byte
 * (op = byte % OP_COUNT) followed by its arguments (a slot byte, a size, an
 * alignment). When the input runs out, reads return 0. What counts as a
 * finding (the driver prints it and aborts, which both builds report):
 *  - a block's bytes changed while it was live (overlap, or a stray write by
 *    the allocator); a result not aligned as asked; usable_size < size;
 *  - an impossible request (> PTRDIFF_MAX, or rounding that overflows) that
 *    did not return NULL; a failed realloc that lost the old block;
 *  - check() != 0; a debug-layer finding (the driver itself never misuses a
 *    block, so any is a bug); pages still mapped after destroy;
 *  - a request of at most 4 KiB refused while the live blocks use less than
 *    1/8 of the page source's limit (memory lost inside the heap).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../native/allocator.h"
#include "../../native/cache/cache.h"
#include "../../native/debug/debug.h"
#include "../../native/pages/pages.h"

enum {
    FUZZ_SLOTS = 32,
    FUZZ_MAX_TARGETS = 16,
    FUZZ_CHECK_EVERY = 64,       /* a check() at least this often, besides the op */
};
#define FUZZ_LIMIT ((size_t)64 << 20) /* the page source's byte limit: OOM is reachable */

typedef struct fuzz_target {
    const hl_allocator *a;
    int debug; /* a->... is a debug-layer table; its heap is an hl_debug_heap */
    unsigned long long inputs, ops, failures;
} fuzz_target;

static fuzz_target fuzz_targets[FUZZ_MAX_TARGETS];
static size_t fuzz_target_count;
static int fuzz_fixed = -1; /* HEAPLAB_FUZZ_ALLOCATOR's target, or -1 */

static void fuzz_fail(const fuzz_target *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz_alloc: FINDING in %s: ", t->a->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void fuzz_report_stats(void) {
    for (size_t i = 0; i < fuzz_target_count; i++) {
        const fuzz_target *t = &fuzz_targets[i];
        if (t->inputs)
            fprintf(stderr, "fuzz_alloc: %s: %llu inputs, %llu operations, %llu refused requests\n", t->a->name,
                    t->inputs, t->ops, t->failures);
    }
}

static void fuzz_setup(void) {
    if (fuzz_target_count) return;
    for (const hl_allocator *const *a = hl_allocators; *a && fuzz_target_count + 3 <= FUZZ_MAX_TARGETS; a++) {
        fuzz_targets[fuzz_target_count++] = (fuzz_target){*a, 0, 0, 0, 0};
        fuzz_targets[fuzz_target_count++] = (fuzz_target){hl_debug_wrap(*a), 1, 0, 0, 0};
        fuzz_targets[fuzz_target_count++] = (fuzz_target){hl_cache_wrap(*a), 0, 0, 0, 0};
    }
    const char *want = getenv("HEAPLAB_FUZZ_ALLOCATOR");
    if (want && *want) {
        for (size_t i = 0; i < fuzz_target_count; i++)
            if (strcmp(fuzz_targets[i].a->name, want) == 0) fuzz_fixed = (int)i;
        if (fuzz_fixed < 0) {
            fprintf(stderr, "fuzz_alloc: HEAPLAB_FUZZ_ALLOCATOR=%s is not in this build; known:", want);
            for (size_t i = 0; i < fuzz_target_count; i++) fprintf(stderr, " %s", fuzz_targets[i].a->name);
            fputc('\n', stderr);
            exit(2);
        }
    }
    atexit(fuzz_report_stats);
}

/* ---- reading the input ------------------------------------------------------ */

typedef struct reader { const uint8_t *p; size_t n; } reader;

static uint8_t read_u8(reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}
static size_t read_bytes(reader *r, int count) {
    size_t v = 0;
    for (int i = 0; i < count; i++) v = (v << 8) | read_u8(r);
    return v;
}

static const size_t edge_sizes[] = {
    0, 1, 7, 8, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49, 63, 64, 65, 127, 128, 129, 255, 256, 257,
    511, 512, 513, 1023, 1024, 1025, 2047, 2048, 2049, 4031, 4032, 4095, 4096, 4097, 8191, 8192, 8193,
    16383, 16384, 16385, 32767, 32768, 32769, 65535, 65536, 65537, 131071, 131072, 131073, 262143, 262144,
    262145, 524288, (1u << 20) - 1, 1u << 20, (1u << 20) + 1, (2u << 20) + 4096, (4u << 20) - 16,
};
#define EDGE_SIZES (sizeof edge_sizes / sizeof *edge_sizes)

/* Requests no allocator can serve: each must return NULL. */
static const size_t impossible_sizes[] = {
    (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096, SIZE_MAX / 2,
    (size_t)1 << 62, (size_t)PTRDIFF_MAX - 64,
};
#define IMPOSSIBLE_SIZES (sizeof impossible_sizes / sizeof *impossible_sizes)

/* A size and whether it is impossible. Mostly small; edges; rarely up to 16 MiB. */
static size_t read_size(reader *r, int *impossible) {
    uint8_t k = read_u8(r);
    *impossible = 0;
    switch (k % 32) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: return read_u8(r);
        case 8: case 9: case 10: case 11: case 12: case 13: case 14: case 15: return edge_sizes[read_u8(r) % EDGE_SIZES];
        case 16: case 17: case 18: case 19: return read_bytes(r, 2);
        case 20: case 21: { /* near an edge: within 16 bytes either side */
            size_t e = edge_sizes[read_u8(r) % EDGE_SIZES], d = read_u8(r) % 33;
            return e + d >= 16 ? e + d - 16 : e + d;
        }
        case 22: return read_bytes(r, 3) & ((4u << 20) - 1);
        case 23: return (k & 0x80) ? read_bytes(r, 3) : read_bytes(r, 2); /* up to 16 MiB, rarely */
        case 24: case 25:
            if (k & 0x80) {
                *impossible = 1;
                return impossible_sizes[read_u8(r) % IMPOSSIBLE_SIZES];
            }
            return read_u8(r) % 64;
        default: return (size_t)read_u8(r) * 16;
    }
}

/* A power of two; alignments past what any heap could map make the request impossible. */
static size_t read_align(reader *r, int *impossible) {
    uint8_t k = read_u8(r);
    *impossible = 0;
    if (k >= 250) {
        *impossible = 1;
        return (size_t)1 << (40 + (k - 250) * 4); /* 2^40 .. 2^60 */
    }
    return (size_t)1 << (k % 22); /* 1 .. 2 MiB */
}

/* ---- the blocks and their contents ----------------------------------------- */

typedef struct slot {
    unsigned char *p;
    size_t size, align;
    uint32_t seed;
} slot;

/* The loops that write and verify contents are kept out of line and not
 * coverage-instrumented: they have no branch worth guiding on, and traced
 * compares there cost more than everything else in the driver together. */
#if defined(__clang__)
#define NO_COVERAGE __attribute__((noinline, no_sanitize("coverage")))
#else
#define NO_COVERAGE __attribute__((noinline))
#endif

/* A block's contents: 8-byte words, word j of a block with seed s being
 * pattern_word(s, j), so that two blocks (or two places in one) never match. */
static inline __attribute__((always_inline)) uint64_t pattern_word(uint32_t seed, size_t j) {
    return ((uint64_t)seed + 1) * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)j + 1) * 0xD1B54A32D192ED03ULL;
}

static NO_COVERAGE void write_range(unsigned char *p, size_t from, size_t to, uint32_t seed) {
    for (size_t j = from / 8; j * 8 < to; j++) {
        uint64_t w = pattern_word(seed, j);
        size_t lo = j * 8 < from ? from - j * 8 : 0, hi = j * 8 + 8 > to ? to - j * 8 : 8;
        memcpy(p + j * 8 + lo, (unsigned char *)&w + lo, hi - lo);
    }
}

/* The first wrong byte in [from, to), or SIZE_MAX. Whole words are compared
 * at once; a word that differs, or one cut by the range, byte by byte. */
static NO_COVERAGE size_t check_range(const unsigned char *p, size_t from, size_t to, uint32_t seed) {
    for (size_t j = from / 8; j * 8 < to; j++) {
        uint64_t w = pattern_word(seed, j), got;
        size_t lo = j * 8 < from ? from - j * 8 : 0, hi = j * 8 + 8 > to ? to - j * 8 : 8;
        if (lo == 0 && hi == 8) {
            memcpy(&got, p + j * 8, 8);
            if (got == w) continue;
        }
        for (size_t b = lo; b < hi; b++)
            if (p[j * 8 + b] != ((const unsigned char *)&w)[b]) return j * 8 + b;
    }
    return SIZE_MAX;
}

/* Whole blocks up to 4 KiB are written; bigger ones are sampled: their first
 * and last KiB in full (where a neighbour's header would land), and 8 bytes of
 * every 512 between, or of every 64 KiB in blocks over 256 KiB (which would
 * otherwise fault in every page they span: most of the driver's time). */
enum { FILL_WHOLE = 4096, FILL_EDGE = 1024, FILL_BIG = 262144 };

static inline size_t fill_stride(size_t size) { return size <= FILL_BIG ? 512 : 65536; }

static NO_COVERAGE void fill_block(slot *s) {
    size_t n = s->size;
    if (n <= FILL_WHOLE) {
        write_range(s->p, 0, n, s->seed);
        return;
    }
    write_range(s->p, 0, FILL_EDGE, s->seed);
    for (size_t i = FILL_EDGE; i + 8 <= n - FILL_EDGE; i += fill_stride(n)) write_range(s->p, i, i + 8, s->seed);
    write_range(s->p, n - FILL_EDGE, n, s->seed);
}

/* The first of the first `n` bytes that is wrong, or SIZE_MAX: the bytes that
 * fill_block wrote for a block of s->size bytes. */
static NO_COVERAGE size_t verify_block(const slot *s, size_t n) {
    size_t size = s->size, at;
    if (n > size) n = size;
    if (size <= FILL_WHOLE) return check_range(s->p, 0, n, s->seed);
    if ((at = check_range(s->p, 0, n < FILL_EDGE ? n : FILL_EDGE, s->seed)) != SIZE_MAX) return at;
    for (size_t i = FILL_EDGE; i + 8 <= size - FILL_EDGE && i + 8 <= n; i += fill_stride(size))
        if ((at = check_range(s->p, i, i + 8, s->seed)) != SIZE_MAX) return at;
    if (n > size - FILL_EDGE) return check_range(s->p, size - FILL_EDGE, n, s->seed);
    return SIZE_MAX;
}

/* calloc's promise: every byte of the first 4 KiB, then 8 bytes per fill_stride, and the last. */
static NO_COVERAGE size_t first_nonzero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t end = i < 4096 ? (n < 4096 ? n : 4096) : (i + 8 < n ? i + 8 : n);
        for (; i + 8 <= end; i += 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w) break;
        }
        for (; i < end; i++)
            if (p[i]) return i;
        if (i >= 4096) i = (i + fill_stride(n) - 1) / fill_stride(n) * fill_stride(n);
    }
    return n && p[n - 1] ? n - 1 : SIZE_MAX;
}

typedef struct run {
    fuzz_target *t;
    void *heap;
    hl_mmap_pages *pages;
    slot slots[FUZZ_SLOTS];
    size_t live_bytes;
    uint32_t next_seed;
} run;

static void expect_intact(run *r, const slot *s, const char *when) {
    size_t at = verify_block(s, s->size);
    if (at != SIZE_MAX)
        fuzz_fail(r->t, "%s: a %zu-byte block (align %zu) at %p lost its contents at byte %zu", when, s->size, s->align,
                  (void *)s->p, at);
}

static void check_heap(run *r, const char *when) {
    size_t broken = r->t->a->check(r->heap);
    if (broken) fuzz_fail(r->t, "%s: check() counted %zu broken invariants", when, broken);
    if (r->t->debug) {
        hl_debug_finding f;
        if (hl_debug_take_findings(r->heap, &f, 1))
            fuzz_fail(r->t, "%s: the debug layer reported %s on a %zu-byte block", when, hl_debug_kind_name(f.kind),
                      f.size);
    }
}

/* A new block in slot s: aligned, large enough, written. */
static void adopt(run *r, slot *s, unsigned char *p, size_t size, size_t align, const char *what) {
    size_t want = align < 16 ? 16 : align;
    if ((uintptr_t)p & (want - 1)) fuzz_fail(r->t, "%s(%zu, align %zu) returned %p, misaligned", what, size, align, (void *)p);
    size_t usable = r->t->a->usable_size(r->heap, p);
    if (usable < size) fuzz_fail(r->t, "%s(%zu): usable_size %zu is smaller", what, size, usable);
    s->p = p;
    s->size = size;
    s->align = want;
    s->seed = r->next_seed++;
    r->live_bytes += size;
    fill_block(s);
}

/* A refused request is a finding when the heap clearly had room. */
static void refused(run *r, size_t size, size_t align, const char *what) {
    r->t->failures++;
    if (size <= 4096 && align <= 4096 && r->live_bytes < FUZZ_LIMIT / 8)
        fuzz_fail(r->t, "%s(%zu, align %zu) refused with only %zu bytes live (%zu mapped)", what, size, align,
                  r->live_bytes, r->pages->bytes_mapped);
}

static void drop(run *r, slot *s) {
    r->live_bytes -= s->size;
    s->p = NULL;
}

enum { OP_MALLOC, OP_MEMALIGN, OP_CALLOC, OP_REALLOC, OP_FREE, OP_REWRITE, OP_USABLE, OP_CHECK, OP_COUNT };

static void step(run *r, reader *in) {
    const hl_allocator *a = r->t->a;
    uint8_t op = read_u8(in) % OP_COUNT;
    slot *s = &r->slots[read_u8(in) % FUZZ_SLOTS];
    int impossible = 0, bad_align = 0;
    switch (op) {
        case OP_MALLOC:
        case OP_MEMALIGN:
        case OP_CALLOC: {
            if (s->p) {
                expect_intact(r, s, "before free");
                a->free(r->heap, s->p);
                drop(r, s);
            }
            size_t size = read_size(in, &impossible), align = 16;
            unsigned char *p;
            if (op == OP_MALLOC) {
                p = a->malloc(r->heap, size);
            } else if (op == OP_MEMALIGN) {
                align = read_align(in, &bad_align);
                p = a->memalign(r->heap, align, size);
                impossible |= bad_align;
            } else {
                size_t count = (size_t)(read_u8(in) % 8) + 1;
                if (read_u8(in) == 0xFF && size >= 2) count = SIZE_MAX / size + 1; /* n * size overflows */
                size_t total;
                int overflow = __builtin_mul_overflow(count, size, &total);
                if (overflow) impossible = 1;
                p = a->calloc(r->heap, count, size);
                size_t at = p && !overflow ? first_nonzero(p, total) : SIZE_MAX;
                if (at != SIZE_MAX) fuzz_fail(r->t, "calloc(%zu, %zu): byte %zu is %d, not 0", count, size, at, p[at]);
                size = overflow ? size : total;
            }
            if (impossible && p) fuzz_fail(r->t, "an impossible request (size %zu, align %zu) returned %p", size, align, (void *)p);
            if (!p) {
                if (!impossible) refused(r, size, align, op == OP_MALLOC ? "malloc" : op == OP_MEMALIGN ? "memalign" : "calloc");
                return;
            }
            adopt(r, s, p, size, align, op == OP_MALLOC ? "malloc" : op == OP_MEMALIGN ? "memalign" : "calloc");
            return;
        }
        case OP_REALLOC: {
            size_t size = read_size(in, &impossible);
            if (!s->p) {
                unsigned char *p = a->realloc(r->heap, NULL, size);
                if (impossible && p) fuzz_fail(r->t, "realloc(NULL, %zu) returned %p", size, (void *)p);
                if (p) adopt(r, s, p, size, 16, "realloc(NULL)");
                else if (!impossible) refused(r, size, 16, "realloc(NULL)");
                return;
            }
            expect_intact(r, s, "before realloc");
            unsigned char *p = a->realloc(r->heap, s->p, size);
            if (impossible && p) fuzz_fail(r->t, "realloc(p, %zu) returned %p", size, (void *)p);
            if (!p) {
                if (!impossible) refused(r, size, 16, "realloc");
                expect_intact(r, s, "after a failed realloc");
                return;
            }
            slot moved = *s;
            moved.p = p;
            size_t at = verify_block(&moved, size < s->size ? size : s->size);
            if (at != SIZE_MAX)
                fuzz_fail(r->t, "realloc %zu -> %zu lost byte %zu", s->size, size, at);
            if ((uintptr_t)p & 15) fuzz_fail(r->t, "realloc(%zu) returned %p, misaligned", size, (void *)p);
            drop(r, s);
            adopt(r, s, p, size, 16, "realloc");
            return;
        }
        case OP_FREE:
            if (s->p) {
                expect_intact(r, s, "before free");
                a->free(r->heap, s->p);
                drop(r, s);
            }
            return;
        case OP_REWRITE:
            if (s->p) {
                expect_intact(r, s, "before rewrite");
                s->seed = r->next_seed++;
                fill_block(s);
            }
            return;
        case OP_USABLE:
            if (s->p && a->usable_size(r->heap, s->p) < s->size)
                fuzz_fail(r->t, "usable_size of a %zu-byte block is %zu", s->size, a->usable_size(r->heap, s->p));
            return;
        default:
            for (size_t i = 0; i < FUZZ_SLOTS; i++)
                if (r->slots[i].p) expect_intact(r, &r->slots[i], "at check");
            check_heap(r, "check op");
            return;
    }
}

/* Runs one input against target t. */
static void fuzz_one(fuzz_target *t, const uint8_t *data, size_t size) {
    static hl_mmap_pages pages;
    hl_mmap_pages_init(&pages, 0, FUZZ_LIMIT);
    hl_hooks hooks = hl_mmap_pages_hooks(&pages, 1);
    run r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.pages = &pages;
    r.heap = t->a->create(&hooks);
    if (!r.heap) fuzz_fail(t, "create failed");
    t->inputs++;
    reader in = {data, size};
    for (size_t n = 0; in.n; n++) {
        step(&r, &in);
        t->ops++;
        if (n % FUZZ_CHECK_EVERY == FUZZ_CHECK_EVERY - 1) check_heap(&r, "periodic check");
    }
    for (size_t i = 0; i < FUZZ_SLOTS; i++)
        if (r.slots[i].p) {
            expect_intact(&r, &r.slots[i], "at the end");
            if (i & 1) t->a->free(r.heap, r.slots[i].p); /* the rest goes with destroy */
        }
    check_heap(&r, "at the end");
    t->a->destroy(r.heap);
    if (pages.bytes_mapped) fuzz_fail(t, "destroy left %zu bytes mapped", pages.bytes_mapped);
}

/* HEAPLAB_FUZZ_MAX_OPS=N ends the run (exit 0, stats printed) once the target
 * has run N operations: how `npm run fuzz` gives each allocator a fixed budget. */
static void fuzz_stop_after(const fuzz_target *t) {
    static unsigned long long max_ops = (unsigned long long)-1;
    static int read_env;
    if (!read_env) {
        const char *e = getenv("HEAPLAB_FUZZ_MAX_OPS");
        if (e && *e) max_ops = strtoull(e, NULL, 10);
        read_env = 1;
    }
    if (t->ops >= max_ops) { /* _exit: libFuzzer reports exit() from the target as a crash */
        fuzz_report_stats();
        fflush(stderr);
        _exit(0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_setup();
    if (!fuzz_target_count) return 0;
    if (fuzz_fixed >= 0) {
        fuzz_one(&fuzz_targets[fuzz_fixed], data, size);
        fuzz_stop_after(&fuzz_targets[fuzz_fixed]);
        return 0;
    }
    if (!size) return 0;
    fuzz_one(&fuzz_targets[data[0] % fuzz_target_count], data + 1, size - 1);
    return 0;
}
