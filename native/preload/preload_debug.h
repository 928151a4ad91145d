/*
 * preload_debug.h — HEAPLAB_DEBUG=1 for the preload libraries; included by
 * native/preload/preload.c only (it uses that file's ALLOCATOR, g_heap and HL_UNLIKELY).
 *
 * With HEAPLAB_DEBUG=1 in the environment, the library's heap is the debug layer
 * (native/debug/debug.h) over its allocator: magic words, canaries, fill patterns and a
 * quarantine. The exported entry points note their caller's return address
 * (HL_NOTE_CALLER) and pass it down as the requester. The first finding is
 * printed to stderr, its requester resolved with dladdr where it can be
 *
 *   heaplab: a 48-byte block requested by parse+0x1c (/usr/bin/app) was written
 *   past its end (at byte 48); found by free called from main+0x5e (/usr/bin/app)
 *
 * and the process aborts. Printing uses write(2) on a stack buffer: nothing
 * here allocates, as it runs inside malloc with the debug layer's lock held.
 * HEAPLAB_DEBUG_CHECK_EVERY=N runs a full check every N calls (default 0: none).
 */
#ifndef HEAPLAB_PRELOAD_DEBUG_H
#define HEAPLAB_PRELOAD_DEBUG_H

#include <dlfcn.h>
#include <signal.h>

#include "../debug/debug.h"

static hl_debug_heap *g_debug;           /* set once, before the heap is ready */
static __thread uintptr_t t_caller;      /* the exported entry point's caller   */

#define HL_NOTE_CALLER()                                                             \
    do {                                                                             \
        if (HL_UNLIKELY(g_debug != NULL)) t_caller = (uintptr_t)__builtin_return_address(0); \
    } while (0)

/* The heap calls, through the debug layer when it is on. */
#define HEAP_MALLOC(n) (g_debug ? hl_debug_malloc(g_debug, (n), t_caller) : DESIGN_MALLOC(n))
#define HEAP_CALLOC(c, n) (g_debug ? hl_debug_calloc(g_debug, (c), (n), t_caller) : ALLOCATOR->calloc(g_heap, (c), (n)))
#define HEAP_MEMALIGN(a, n) \
    (g_debug ? hl_debug_memalign(g_debug, (a), (n), t_caller) : ALLOCATOR->memalign(g_heap, (a), (n)))
#define HEAP_REALLOC(p, n) (g_debug ? hl_debug_realloc(g_debug, (p), (n), t_caller) : ALLOCATOR->realloc(g_heap, (p), (n)))
/* free in debug mode (outside it, preload.c's plain_free): a pointer of another
 * malloc's is ignored, any other goes to the layer, which reports a bad one. */
#define DEBUG_FREE(p)                                                  \
    do {                                                               \
        if (reg_owns(p)) hl_debug_free(g_debug, (p), t_caller);        \
    } while (0)
#define HEAP_USABLE(p) (g_debug ? hl_debug_usable_size(g_debug, (p)) : ALLOCATOR->usable_size(g_heap, (p)))

typedef struct line_buf { char s[768]; size_t n; } line_buf;

static void line_add(line_buf *b, const char *s) {
    while (*s && b->n < sizeof b->s - 1) b->s[b->n++] = *s++;
}
static void line_num(line_buf *b, uintptr_t v, int hex) {
    char tmp[24];
    size_t len = 0;
    unsigned base = hex ? 16 : 10;
    do { tmp[len++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    if (hex) line_add(b, "0x");
    while (len && b->n < sizeof b->s - 1) b->s[b->n++] = tmp[--len];
}

/* "parse+0x1c (/usr/bin/app)", or "/usr/bin/app+0x11c9", or "0x55d0c3a1b1c9". */
static void line_addr(line_buf *b, uintptr_t addr) {
    Dl_info info;
    if (addr && dladdr((void *)addr, &info) && info.dli_fname) {
        if (info.dli_sname && info.dli_saddr) {
            line_add(b, info.dli_sname);
            line_add(b, "+");
            line_num(b, addr - (uintptr_t)info.dli_saddr, 1);
            line_add(b, " (");
            line_add(b, info.dli_fname);
            line_add(b, ")");
        } else {
            line_add(b, info.dli_fname);
            line_add(b, "+");
            line_num(b, addr - (uintptr_t)info.dli_fbase, 1);
        }
        return;
    }
    if (addr) line_num(b, addr, 1);
    else line_add(b, "an unknown caller");
}

static void preload_debug_report(void *ctx, const hl_debug_finding *f) {
    (void)ctx;
    line_buf b = {{0}, 0};
    line_add(&b, "heaplab: ");
    if (f->size || f->kind != HL_DEBUG_BAD_MAGIC) {
        line_add(&b, "a ");
        line_num(&b, f->size, 0);
        line_add(&b, "-byte block requested by ");
        line_addr(&b, f->requester);
    } else {
        line_add(&b, "the block at ");
        line_num(&b, (uintptr_t)f->ptr, 1);
    }
    line_add(&b, " ");
    line_add(&b, hl_debug_kind_verb(f->kind));
    if (f->kind == HL_DEBUG_OVERFLOW || f->kind == HL_DEBUG_USE_AFTER_FREE) {
        line_add(&b, " (at byte ");
        line_num(&b, f->kind == HL_DEBUG_OVERFLOW ? f->size + f->offset : f->offset, 0);
        line_add(&b, ")");
    }
    if (f->culprit) {
        line_add(&b, "; found by a call from ");
        line_addr(&b, f->culprit);
    }
    line_add(&b, " [HEAPLAB_DEBUG]\n");
    ssize_t ignored = write(2, b.s, b.n);
    (void)ignored;
    abort();
}

static int preload_debug_wanted(void) {
    const char *v = getenv("HEAPLAB_DEBUG");
    return v && v[0] == '1' && v[1] == '\0';
}

/* The debug layer over a fresh heap of `a`, or NULL. */
static void *preload_debug_create(const hl_allocator *a, const hl_hooks *hooks) {
    hl_debug_options o = hl_debug_default_options();
    const char *every = getenv("HEAPLAB_DEBUG_CHECK_EVERY");
    if (every) {
        size_t n = 0;
        for (; *every >= '0' && *every <= '9'; every++) n = n * 10 + (size_t)(*every - '0');
        o.check_every = n;
    }
    o.report = preload_debug_report;
    g_debug = hl_debug_create(a, hooks, &o);
    return g_debug;
}

#endif
