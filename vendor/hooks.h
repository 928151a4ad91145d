/*
 * hooks.h — the only door between an allocator and the world outside.
 *
 * Every allocator in vendor/ gets all its memory through alloc_page and gives it
 * back through free_page; none calls mmap, sbrk or libc malloc itself. This is the
 * OSDev/liballoc hook interface, made per instance so one process can hold many
 * heaps. A page source in native/ fills one of these in.
 */
#ifndef HEAPLAB_HOOKS_H
#define HEAPLAB_HOOKS_H

#include <stddef.h>

typedef struct hl_hooks {
    void  *ctx;        /* the page source's state, passed back to every hook        */
    size_t page_size;  /* a power of two, at least 4096; fixed for the heap's life  */
    /* Returns page-aligned memory of pages * page_size bytes, or NULL when the
     * source is exhausted (or pages == 0). The memory reads as zero. */
    void *(*alloc_page)(void *ctx, size_t pages);
    /* Gives back exactly a run obtained by one alloc_page call, or a page-aligned
     * sub-run of it (start..start + pages * page_size); never touched again. */
    void  (*free_page)(void *ctx, void *start, size_t pages);
    /* Mutual exclusion around every public entry point; not recursive. */
    void  (*lock)(void *ctx);
    void  (*unlock)(void *ctx);
    /* Optional (NULL: the source cannot; the allocator allocates, copies and
     * frees instead). Resizes a run obtained by alloc_page (or resize_page) from
     * old_pages to new_pages (both > 0), in place or by moving it: the first
     * min(old, new) pages keep their bytes, pages beyond old_pages read as zero.
     * Returns the run's start (the old one if it did not move), or NULL when it
     * cannot be done; the old run is then untouched and still the caller's. */
    void *(*resize_page)(void *ctx, void *start, size_t old_pages, size_t new_pages);
    /* Optional (NULL: nothing to do), a hint. The allocator has just taken the
     * run [start, start + pages) from alloc_page to carve into many blocks (a
     * pool, a segment, a major: not a run sized for one block). A source whose
     * fresh pages fault in on first touch may fault (some of) them in now, in
     * one call, rather than take a trap inside each later malloc that writes a
     * header there. The run's bytes and ownership do not change. */
    void  (*prefault_page)(void *ctx, void *start, size_t pages);
} hl_hooks;

#endif
