/*
 * test_debug.c — the debug layer (native/debug/debug.c) over every allocator: it must
 * pinpoint a deliberate overflow, use after free, double free and smashed
 * header by size and requester, fill fresh and freed memory with its patterns,
 * hold freed blocks in its quarantine, and otherwise behave as the allocator
 * contract (native/allocator.h) asks. Built with ASan + UBSan: the deliberate
 * bugs only ever touch bytes inside the inner allocator's blocks (canary,
 * header, quarantined bytes), which ASan cannot and need not see.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../native/allocator.h"
#include "../../native/debug/debug.h"
#include "driver.h"
#include "../../native/pages/pages.h"

typedef struct fixture {
    hl_mmap_pages pages;
    hl_hooks hooks;
    hl_debug_heap *d;
    size_t reports; /* calls of the report callback */
} fixture;

static void count_report(void *ctx, const hl_debug_finding *f) {
    (void)f;
    ((fixture *)ctx)->reports++;
}

static int open_debug(fixture *f, const hl_allocator *a, const hl_debug_options *o) {
    hl_mmap_pages_init(&f->pages, 0, 0);
    f->hooks = hl_mmap_pages_hooks(&f->pages, 1);
    f->reports = 0;
    hl_debug_options opt = o ? *o : hl_debug_default_options();
    opt.report = count_report;
    opt.report_ctx = f;
    f->d = hl_debug_create(a, &f->hooks, &opt);
    return f->d != NULL;
}

static void close_debug(fixture *f, const char *name) {
    hl_debug_destroy(f->d);
    CHECK(f->pages.bytes_mapped == 0, "%s: destroy left %zu bytes mapped", name, f->pages.bytes_mapped);
}

static size_t take(fixture *f, hl_debug_finding *out, size_t max) { return hl_debug_take_findings(f->d, out, max); }

static size_t count_byte(const unsigned char *p, size_t n, unsigned char b) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == b;
    return k;
}

enum { REQ_PARSE = 1001, REQ_FREER = 2002, REQ_OTHER = 3003 };

static void test_patterns_and_header(const hl_allocator *a) {
    fixture f;
    CHECK(open_debug(&f, a, NULL), "%s: create", a->name);
    unsigned char *p = hl_debug_malloc(f.d, 100, REQ_PARSE);
    CHECK(p && ((uintptr_t)p & 15) == 0, "%s: aligned block", a->name);
    CHECK(count_byte(p, 100, HL_DEBUG_FRESH_BYTE) == 100, "%s: fresh bytes are 0xAA", a->name);
    CHECK(memcmp(p - 64, HL_DEBUG_MAGIC_USED, 8) == 0 && memcmp(p - 8, HL_DEBUG_MAGIC_USED, 8) == 0,
          "%s: the header reads BLK:USED at both ends", a->name);
    CHECK(memcmp(p + 100, HL_DEBUG_CANARY, 16) == 0, "%s: the canary follows the block", a->name);
    CHECK(hl_debug_usable_size(f.d, p) == 100, "%s: usable size is the size asked", a->name);
    unsigned char *z = hl_debug_calloc(f.d, 10, 10, REQ_PARSE);
    CHECK(z && count_byte(z, 100, 0) == 100, "%s: calloc zeroes", a->name);
    memset(p, 1, 100);
    hl_debug_free(f.d, p, REQ_FREER);
    /* still in the quarantine: its bytes are ours to read */
    CHECK(count_byte(p, 100, HL_DEBUG_FREED_BYTE) == 100, "%s: freed bytes are 0xDD", a->name);
    CHECK(memcmp(p - 64, HL_DEBUG_MAGIC_FREE, 8) == 0, "%s: the header reads BLK:FREE", a->name);
    hl_debug_free(f.d, z, REQ_FREER);
    CHECK(hl_debug_check(f.d) == 0, "%s: clean heap checks clean", a->name);
    hl_debug_finding out[4];
    CHECK(take(&f, out, 4) == 0 && f.reports == 0, "%s: no findings on a clean run", a->name);
    close_debug(&f, a->name);
}

static void test_overflow(const hl_allocator *a) {
    fixture f;
    open_debug(&f, a, NULL);
    hl_debug_finding out[4];
    /* found by free */
    unsigned char *p = hl_debug_malloc(f.d, 48, REQ_PARSE);
    p[48] = 'x'; /* one byte past the end, inside the canary */
    hl_debug_free(f.d, p, REQ_FREER);
    size_t n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_OVERFLOW && out[0].size == 48 && out[0].requester == REQ_PARSE &&
              out[0].culprit == REQ_FREER && out[0].offset == 0 && out[0].ptr == p,
          "%s: free reports a 48-byte overflow by its requester (n=%zu kind=%d size=%zu req=%zu)", a->name, n,
          n ? (int)out[0].kind : -1, n ? out[0].size : 0, n ? (size_t)out[0].requester : 0);
    /* found by check, reported once, and not again by free */
    unsigned char *q = hl_debug_memalign(f.d, 256, 33, REQ_OTHER);
    CHECK(((uintptr_t)q & 255) == 0, "%s: memalign(256)", a->name);
    q[33 + 5] = 0;
    CHECK(hl_debug_check(f.d) >= 1, "%s: check counts the overflow", a->name);
    n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_OVERFLOW && out[0].size == 33 && out[0].requester == REQ_OTHER &&
              out[0].offset == 5 && out[0].culprit == 0,
          "%s: check reports the overflow at canary byte 5", a->name);
    hl_debug_check(f.d);
    CHECK(take(&f, out, 4) == 0, "%s: a finding is reported once", a->name);
    hl_debug_free(f.d, q, REQ_FREER);
    CHECK(take(&f, out, 4) == 0, "%s: ...not again when the block is freed", a->name);
    CHECK(f.reports == 2, "%s: the callback saw both findings (%zu)", a->name, f.reports);
    CHECK(hl_debug_check(f.d) == 0, "%s: heap sound after overflow blocks went back", a->name);
    close_debug(&f, a->name);
}

static void test_use_after_free(const hl_allocator *a) {
    fixture f;
    hl_debug_options o = hl_debug_default_options();
    o.quarantine_blocks = 4;
    open_debug(&f, a, &o);
    hl_debug_finding out[4];
    unsigned char *p = hl_debug_malloc(f.d, 200, REQ_PARSE);
    hl_debug_free(f.d, p, REQ_FREER);
    p[17] = 42; /* the bug: a write after free */
    /* found when the block leaves the quarantine (4 more frees push it out) */
    for (int i = 0; i < 4; i++) hl_debug_free(f.d, hl_debug_malloc(f.d, 8, REQ_OTHER), REQ_OTHER);
    size_t n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_USE_AFTER_FREE && out[0].size == 200 && out[0].requester == REQ_PARSE &&
              out[0].offset == 17,
          "%s: leaving the quarantine reports a use after free of the 200-byte block at byte 17 (n=%zu)", a->name, n);
    /* found by check while still quarantined */
    unsigned char *q = hl_debug_malloc(f.d, 64, REQ_PARSE);
    hl_debug_free(f.d, q, REQ_FREER);
    q[63] = 0;
    CHECK(hl_debug_check(f.d) == 1, "%s: check counts the write after free", a->name);
    n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_USE_AFTER_FREE && out[0].size == 64 && out[0].offset == 63,
          "%s: check reports it by size and offset", a->name);
    for (int i = 0; i < 8; i++) hl_debug_free(f.d, hl_debug_malloc(f.d, 8, REQ_OTHER), REQ_OTHER);
    CHECK(take(&f, out, 4) == 0, "%s: not reported twice", a->name);
    CHECK(hl_debug_check(f.d) == 0, "%s: heap sound", a->name);
    close_debug(&f, a->name);
}

static void test_double_free_and_bad_pointers(const hl_allocator *a) {
    fixture f;
    open_debug(&f, a, NULL);
    hl_debug_finding out[4];
    unsigned char *p = hl_debug_malloc(f.d, 24, REQ_PARSE);
    hl_debug_free(f.d, p, REQ_FREER);
    hl_debug_free(f.d, p, REQ_OTHER);
    size_t n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_DOUBLE_FREE && out[0].size == 24 && out[0].requester == REQ_PARSE &&
              out[0].culprit == REQ_OTHER,
          "%s: a second free is reported with the block's size and requester", a->name);
    CHECK(hl_debug_realloc(f.d, p, 10, REQ_OTHER) == NULL, "%s: realloc of a freed block fails", a->name);
    CHECK(take(&f, out, 4) == 0, "%s: (the same double free is reported once)", a->name);
    /* a pointer into the middle of a block, and a misaligned one */
    unsigned char *q = hl_debug_malloc(f.d, 4096, REQ_PARSE);
    hl_debug_free(f.d, q + 1024, REQ_FREER);
    hl_debug_free(f.d, q + 3, REQ_FREER);
    n = take(&f, out, 4);
    CHECK(n == 2 && out[0].kind == HL_DEBUG_BAD_MAGIC && out[1].kind == HL_DEBUG_BAD_MAGIC && out[0].culprit == REQ_FREER,
          "%s: free of a pointer that is no block is bad-magic", a->name);
    CHECK(hl_debug_usable_size(f.d, q + 1024) == 0, "%s: usable_size of no block is 0", a->name);
    /* an underflow smashes the header's last magic: reported, and the block is kept out */
    unsigned char *u = hl_debug_malloc(f.d, 80, REQ_OTHER);
    u[-1] = 'Z';
    CHECK(hl_debug_check(f.d) >= 1, "%s: check sees the smashed header", a->name);
    n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_BAD_MAGIC && out[0].size == 80 && out[0].requester == REQ_OTHER,
          "%s: an underflow is bad-magic, with size and requester while the header's start is intact", a->name);
    hl_debug_free(f.d, u, REQ_FREER);
    CHECK(take(&f, out, 4) == 0, "%s: its free is not reported again", a->name);
    /* a write after free into the middle of a quarantined header (its lead): reported, block kept out */
    unsigned char *m = hl_debug_malloc(f.d, 40, REQ_PARSE);
    hl_debug_free(f.d, m, REQ_FREER);
    m[-40] ^= 0x40;
    CHECK(hl_debug_check(f.d) == 1, "%s: check sees the freed header written", a->name);
    n = take(&f, out, 4);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_USE_AFTER_FREE && out[0].requester == REQ_PARSE,
          "%s: a write into a freed header is a use after free", a->name);
    hl_debug_free(f.d, q, REQ_FREER);
    CHECK(hl_debug_check(f.d) == 0 && take(&f, out, 4) == 0, "%s: heap sound (the smashed blocks are leaked)", a->name);
    close_debug(&f, a->name);
}

static void test_realloc_moves_and_keeps(const hl_allocator *a) {
    fixture f;
    open_debug(&f, a, NULL);
    unsigned char *p = hl_debug_memalign(f.d, 4096, 100, REQ_PARSE);
    for (int i = 0; i < 100; i++) p[i] = (unsigned char)i;
    unsigned char *q = hl_debug_realloc(f.d, p, 5000, REQ_OTHER);
    CHECK(q && q != p && ((uintptr_t)q & 4095) == 0, "%s: realloc moves and keeps the alignment", a->name);
    int same = 1;
    for (int i = 0; q && i < 100; i++) same &= q[i] == (unsigned char)i;
    CHECK(same, "%s: realloc keeps the contents", a->name);
    CHECK(q && count_byte(q + 100, 4900, HL_DEBUG_FRESH_BYTE) == 4900, "%s: grown bytes are fresh", a->name);
    CHECK(count_byte(p, 100, HL_DEBUG_FREED_BYTE) == 100, "%s: the old block is quarantined", a->name);
    unsigned char *r = hl_debug_realloc(f.d, q, 0, REQ_OTHER);
    CHECK(r != NULL && hl_debug_usable_size(f.d, r) == 0, "%s: realloc(p, 0) gives a 0-byte block", a->name);
    hl_debug_free(f.d, r, REQ_OTHER);
    CHECK(hl_debug_malloc(f.d, (size_t)PTRDIFF_MAX, 1) == NULL, "%s: impossible size", a->name);
    CHECK(hl_debug_memalign(f.d, (size_t)1 << 62, 1, 1) == NULL, "%s: impossible alignment", a->name);
    CHECK(hl_debug_calloc(f.d, SIZE_MAX / 2, 3, 1) == NULL, "%s: calloc overflow", a->name);
    hl_debug_finding out[2];
    CHECK(hl_debug_check(f.d) == 0 && take(&f, out, 2) == 0, "%s: heap sound", a->name);
    close_debug(&f, a->name);
}

static void test_quarantine_bounds_and_periodic_check(const hl_allocator *a) {
    fixture f;
    hl_debug_options o = hl_debug_default_options();
    o.quarantine_bytes = 64 * 1024;
    o.check_every = 10;
    open_debug(&f, a, &o);
    unsigned char *keep = hl_debug_malloc(f.d, 16, REQ_PARSE);
    /* 1000 blocks of 4 KiB: the quarantine holds 16 of them, then lets go */
    for (int i = 0; i < 1000; i++) hl_debug_free(f.d, hl_debug_malloc(f.d, 4096, REQ_OTHER), REQ_OTHER);
    CHECK(f.pages.bytes_mapped < (2u << 20), "%s: the quarantine is bounded by bytes (%zu mapped)", a->name,
          f.pages.bytes_mapped);
    keep[16] = 1; /* overflow: found by the periodic check within 10 operations */
    for (int i = 0; i < 10; i++) hl_debug_free(f.d, hl_debug_malloc(f.d, 8, REQ_OTHER), REQ_OTHER);
    hl_debug_finding out[2];
    size_t n = take(&f, out, 2);
    CHECK(n == 1 && out[0].kind == HL_DEBUG_OVERFLOW && out[0].culprit == 0,
          "%s: check_every found the overflow without an explicit check", a->name);
    keep[16] = 'C';
    hl_debug_free(f.d, keep, REQ_PARSE);
    close_debug(&f, a->name);
}

/* The wrapped table drives like any allocator, with the caller's return address as requester. */
static void test_wrapped_table(const hl_allocator *a) {
    const hl_allocator *w = hl_debug_wrap(a);
    CHECK(w != NULL && w == hl_debug_wrap(a), "%s: one table per allocator", a->name);
    if (!w) return;
    CHECK(strstr(w->name, "+debug") != NULL, "%s: table name %s", a->name, w->name);
    hl_mmap_pages pages;
    hl_mmap_pages_init(&pages, 0, 0);
    hl_hooks hooks = hl_mmap_pages_hooks(&pages, 1);
    void *heap = w->create(&hooks);
    CHECK(heap != NULL, "%s: wrapped create", a->name);
    void *z1 = w->malloc(heap, 0), *z2 = w->malloc(heap, 0);
    CHECK(z1 && z2 && z1 != z2, "%s: malloc(0) unique", a->name);
    unsigned char *p = w->malloc(heap, 10);
    p[10] = 0;
    w->free(heap, p);
    hl_debug_finding out[1];
    CHECK(hl_debug_take_findings(heap, out, 1) == 1 && out[0].requester != 0 && out[0].requester != 1,
          "%s: the table records a return address", a->name);
    hl_debug_set_requester(heap, 77);
    void *l = w->calloc(heap, 2, 8);
    ((unsigned char *)l)[16] = 0;
    CHECK(w->check(heap) >= 1 && hl_debug_take_findings(heap, out, 1) == 1 && out[0].requester == 77,
          "%s: set_requester names the next block", a->name);
    w->free(heap, l);
    w->free(heap, z1);
    w->free(heap, z2);
    w->destroy(heap);
    CHECK(pages.bytes_mapped == 0, "%s: wrapped destroy unmaps", a->name);
}

int main(void) {
    size_t count = 0;
    for (const hl_allocator *const *a = hl_allocators; *a; a++, count++) {
        test_patterns_and_header(*a);
        test_overflow(*a);
        test_use_after_free(*a);
        test_double_free_and_bad_pointers(*a);
        test_realloc_moves_and_keeps(*a);
        test_quarantine_bounds_and_periodic_check(*a);
        test_wrapped_table(*a);
    }
    CHECK(count > 0, "no allocator in this build");
    return driver_finish("test_debug");
}
