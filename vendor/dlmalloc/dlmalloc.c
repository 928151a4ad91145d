/*
 * dlmalloc.c — heaplab's dlmalloc-style allocator.
 *
 * Written here from Doug Lea's published design (the 2.8.x header comment and
 * "A Memory Allocator"); no upstream source is copied. The pieces:
 *
 *  - chunks with boundary tags: a size word whose low bits say whether this
 *    chunk (CINUSE) and the previous one (PINUSE) are in use; a free chunk
 *    keeps its size again in the next chunk's prev_foot, so free neighbours
 *    coalesce in O(1);
 *  - 64 small bins of exact sizes (16-byte steps below 1 KiB) with a bitmap;
 *  - 32 tree bins for larger free chunks, each a bitwise trie keyed by size,
 *    searched for the best fit;
 *  - the designated victim (dv): the remainder of the last split made for a
 *    small request, used first for the next small requests (locality);
 *  - the top chunk: the free space at the end of the newest segment;
 *  - segments: runs of pages from hooks->alloc_page, not contiguous in general
 *    (upstream's non-contiguous mode). Each ends in a 64-byte footer that is an
 *    in-use fencepost chunk holding the segment record; the records form a
 *    list in the mstate. A wholly free segment (other than the first, which
 *    holds the mstate) is given back at once; top is trimmed past the trim
 *    threshold;
 *  - requests of mmap_threshold and more get their own pages ("mmapped
 *    chunks", here "direct" chunks), kept on a list so destroy can free them.
 *
 * Determinism: every decision depends only on the request sequence and the
 * addresses alloc_page returns (lists are LIFO, ties go to the first found).
 * 64-bit only: headers are fixed 8-byte words (asserted below).
 */
#include "dlmalloc.h"

#include <stdint.h>
#include "../libc.h"

/* ---- build options --------------------------------------------------------- */

/* Segment granularity: new segments are a multiple of this many bytes (rounded
 * up to whole pages when the page is larger). Default 64 KiB. */
#ifndef HL_DL_GRANULARITY
#define HL_DL_GRANULARITY ((size_t)64 * 1024)
#endif
/* Chunks of this size or more (padded request) get their own pages from
 * alloc_page instead of a segment. Default 256 KiB. */
#ifndef HL_DL_MMAP_THRESHOLD
#define HL_DL_MMAP_THRESHOLD ((size_t)256 * 1024)
#endif
/* When a free leaves top larger than this, top is trimmed: its tail pages are
 * given back down to half the threshold (so that a heap whose top moves up
 * and down does not give back and take again each time), or its whole segment,
 * if another segment can supply a top. Default 512 KiB. */
#ifndef HL_DL_TRIM_THRESHOLD
#define HL_DL_TRIM_THRESHOLD ((size_t)512 * 1024)
#endif
/* Segments grow with the heap: a new one is at least 1/2^shift of the
 * footprint (default 6: a sixty-fourth), so a heap that grows to N bytes makes
 * O(log N) alloc_page calls. Smaller than TLSF's sixteenth: a segment goes back
 * only when wholly free, and with a sixteenth dlmalloc's peak overhead on
 * `heaplab bench`'s stable workload was 1.10 (a sixty-fourth: 1.05). */
#ifndef HL_DL_SEGMENT_GROWTH_SHIFT
#define HL_DL_SEGMENT_GROWTH_SHIFT 6
#endif

/* ---- fixed constants (not to be tuned) ------------------------------------- */

/*
 * An in-use chunk                          A free chunk (in a bin, or dv)
 *
 *  chunk-> +-------------------------+      chunk-> +-------------------------+
 *          | prev_foot: size of prev |              | prev_foot (prev is in   |
 *          |  chunk if it is free,   |              |  use: its user bytes)   |
 *          |  else prev's user bytes |              +-------------------------+
 *          +-------------------------+              | head: size |PINUSE     |
 *          | head: size|CINUSE|PINUSE|              +-------------------------+
 *    mem-> +-------------------------+              | fd  (next in bin)       |
 *          | user bytes ...          |              | bk  (prev in bin)       |
 *          |                         |              | tree chunks only:       |
 *          .                         .              |  child[0], child[1],    |
 *  next->  +-------------------------+              |  parent, index          |
 *          | prev_foot: still user   |              .  unused ...             .
 *          |  bytes of this chunk    |      next->  +-------------------------+
 *          +-------------------------+              | prev_foot = size        |
 *          | head: ...|PINUSE        |              | head: ... (PINUSE clear)|
 *          +-------------------------+              +-------------------------+
 *
 * Chunks start 16-aligned and their sizes are multiples of 16, so mem = chunk +
 * 16 is 16-aligned. An in-use chunk costs 8 bytes: its user area runs into the
 * next chunk's prev_foot. Bits 2 and 3 of head mark direct (mapped) chunks and
 * segment footers (fenceposts).
 */
typedef struct chunk {
    size_t prev_foot;
    size_t head;
    struct chunk *fd;
    struct chunk *bk;
} chunk;

typedef struct tchunk {
    size_t prev_foot;
    size_t head;
    struct tchunk *fd;        /* ring of chunks of the same size */
    struct tchunk *bk;
    struct tchunk *child[2];  /* trie children: next size bit 0 / 1 */
    struct tchunk *parent;    /* NULL for a root */
    size_t index;             /* tree bin, or NOT_IN_TREE for ring members */
} tchunk;

#define PINUSE ((size_t)1)
#define CINUSE ((size_t)2)
#define DIRECT ((size_t)4)
#define FENCE ((size_t)8)
#define FLAG_MASK ((size_t)15)

#define CHUNK_ALIGN ((size_t)16)
#define CHUNK_HEADER ((size_t)16)   /* mem - chunk */
#define CHUNK_OVERHEAD ((size_t)8)  /* in-use cost in a segment */
#define MIN_CHUNK ((size_t)32)
#define NSMALLBINS 64
#define SMALLBIN_SHIFT 4
/* 64 exact bins (smallmap is one 64-bit word) serve every chunk below 1 KiB in
 * O(1); a trie walk costs a dependent cache miss per level. Half of a log-uniform
 * 8 B-64 KiB load is below 1 KiB: the churn harness ran 9-20% faster than with
 * 32 bins below 512 (docs/results.md, 2026-12-03). */
#define MIN_LARGE ((size_t)NSMALLBINS << SMALLBIN_SHIFT) /* 1024 */
#define NTREEBINS 32
#define TREEBIN_SHIFT 10
#define NOT_IN_TREE (~(size_t)0)
#define DIRECT_NODE ((size_t)32)    /* list node before a direct chunk */
#define SEG_FOOT ((size_t)64)
/* Requests above this fail at once: no rounding below can wrap. */
#define MAX_REQUEST ((size_t)PTRDIFF_MAX - ((size_t)1 << 24))
#define MAX_ALIGN ((size_t)1 << 40)
#define MSTATE_MAGIC ((size_t)0x646c6d616c6c6f63ULL) /* "dlmalloc" */
#define SEG_MAGIC ((size_t)0x5345474d454e5421ULL)

_Static_assert(sizeof(size_t) == 8 && sizeof(void *) == 8, "fixed 64-bit header layout");
_Static_assert(sizeof(chunk) == MIN_CHUNK, "a free small chunk is the minimum chunk");
_Static_assert(MIN_CHUNK >= 32, "chunks start 32 bytes apart or more (native/allocator.h: HL_BLOCK_SPACING_MIN)");
_Static_assert(NSMALLBINS <= 64 && NTREEBINS < 64, "smallmap and treemap are one size_t each (the checker shifts treemap by NTREEBINS)");
_Static_assert(sizeof(tchunk) == 64 && sizeof(tchunk) <= MIN_LARGE, "tree chunks fit in large chunks");
_Static_assert(CHUNK_HEADER % CHUNK_ALIGN == 0, "mem = chunk + 16 keeps 16-byte alignment");
_Static_assert(MIN_CHUNK % CHUNK_ALIGN == 0 && DIRECT_NODE % CHUNK_ALIGN == 0, "chunk sizes are 16-multiples");
_Static_assert((FLAG_MASK & ~(CHUNK_ALIGN - 1)) == 0, "flags live below the size granule");
_Static_assert(offsetof(chunk, head) + sizeof(size_t) == CHUNK_HEADER && DL_WORD_SIZE_MASK == ~FLAG_MASK &&
                   DL_WORD_USABLE_LESS == CHUNK_OVERHEAD && DL_WORD_PLAIN_MASK == (PINUSE | CINUSE | DIRECT | FENCE) &&
                   DL_WORD_PLAIN_VALUE == (PINUSE | CINUSE),
               "dlmalloc.h describes the head word at mem - 8 as it is");
_Static_assert(HL_DL_MMAP_THRESHOLD >= MIN_LARGE, "direct chunks are large");
_Static_assert(HL_DL_SEGMENT_GROWTH_SHIFT >= 1 && HL_DL_SEGMENT_GROWTH_SHIFT < 64, "a segment grows by a fraction");
_Static_assert((HL_DL_GRANULARITY & (HL_DL_GRANULARITY - 1)) == 0, "granularity is a power of two");
_Static_assert(MAX_ALIGN < MAX_REQUEST / 2, "alignment slack cannot wrap");

/* The segment record lives in the segment's last 64 bytes, which form an in-use
 * fencepost chunk (head = SEG_FOOT|FENCE|CINUSE, PINUSE as for any chunk, with
 * top counting as in use):
 *
 *   base                                                   base + size
 *   | [mstate] | chunk | chunk | ... | top / last chunk | footer(64) |
 *              ^first                                   ^segfoot
 */
typedef struct segfoot {
    size_t prev_foot;      /* foot of the last chunk when it is a binned free chunk */
    size_t head;
    size_t base;           /* the alloc_page run */
    size_t size;           /* bytes, a multiple of page_size */
    size_t first;          /* address of the segment's first chunk */
    struct segfoot *next;  /* segment list, newest first */
    struct segfoot *prev;
    size_t magic;
} segfoot;
_Static_assert(sizeof(segfoot) == SEG_FOOT, "segment footer layout");

/* A direct chunk:  base (page) ... | node(32) | chunk header | mem ... | end (page)
 * prev_foot holds chunk - base; size = end - chunk. */
typedef struct dnode {
    struct dnode *next;
    struct dnode *prev;
    size_t pages;
    size_t magic;
} dnode;
_Static_assert(sizeof(dnode) == DIRECT_NODE, "direct node layout");

typedef struct mstate {
    size_t magic;
    hl_hooks hooks;
    size_t smallmap;              /* bit i: smallbins[i] non-empty */
    size_t treemap;               /* bit i: treebins[i] non-empty  */
    size_t dvsize;
    size_t topsize;
    chunk *dv;
    chunk *top;
    size_t clean_from;            /* [clean_from, top + topsize) reads as zero */
    segfoot *seg;
    dnode *direct;
    size_t direct_count;
    size_t footprint;
    size_t max_footprint;
    size_t granularity;
    size_t mmap_threshold;
    size_t trim_threshold;
    chunk *smallbins[NSMALLBINS];
    tchunk *treebins[NTREEBINS];
} mstate;
_Static_assert(sizeof(mstate) == 960, "lib/ports/dlmalloc.ts lays mstate out (SIZEOF_MSTATE)");

/* ---- small accessors -------------------------------------------------------- */

static size_t addr_of(const void *p) { return (size_t)(uintptr_t)p; }
static chunk *chunk_at(size_t a) { return (chunk *)(uintptr_t)a; }
static chunk *chunk_plus(const chunk *p, size_t off) { return chunk_at(addr_of(p) + off); }
static chunk *chunk_minus(const chunk *p, size_t off) { return chunk_at(addr_of(p) - off); }
static void *chunk2mem(const chunk *p) { return (void *)(uintptr_t)(addr_of(p) + CHUNK_HEADER); }
static chunk *mem2chunk(const void *mem) { return chunk_at(addr_of(mem) - CHUNK_HEADER); }
static size_t chunksize(const chunk *p) { return p->head & ~FLAG_MASK; }
static int cinuse(const chunk *p) { return (p->head & CINUSE) != 0; }
static int pinuse(const chunk *p) { return (p->head & PINUSE) != 0; }
static int is_direct(const chunk *p) { return (p->head & DIRECT) != 0; }
static int is_fence(const chunk *p) { return (p->head & FENCE) != 0; }
static chunk *next_chunk(const chunk *p) { return chunk_plus(p, chunksize(p)); }
static tchunk *as_tree(chunk *p) { return (tchunk *)p; }
static chunk *as_chunk(tchunk *t) { return (chunk *)t; }
static size_t tsize(const tchunk *t) { return t->head & ~FLAG_MASK; }

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }
static size_t align_down(size_t x, size_t a) { return x & ~(a - 1); }
static int is_pow2(size_t x) { return x && !(x & (x - 1)); }
static size_t bit_of(size_t i) { return (size_t)1 << i; }

/* One instruction each (bsf, bsr), as tlsf.c's and liballoc.c's bit scans;
 * the port (lib/ports/dlmalloc.ts) uses Math.clz32 on its 32-bit maps. */
_Static_assert(sizeof(size_t) == sizeof(unsigned long long), "the bit scans take 64-bit words");
static size_t lowest_bit_index(size_t x) { return (size_t)__builtin_ctzll(x); }   /* x != 0 */
static size_t floor_log2(size_t x) { return (size_t)(63 - __builtin_clzll(x)); }  /* x != 0 */

/* Chunk size for a request: user bytes + 8, rounded to 16, at least 32. */
static size_t request2size(size_t bytes) {
    size_t s = align_up(bytes + CHUNK_OVERHEAD, CHUNK_ALIGN);
    return s < MIN_CHUNK ? MIN_CHUNK : s;
}

/* In use: the chunk's own bit, and the next chunk's PINUSE. */
static void set_inuse(chunk *p, size_t s) {
    p->head = s | (p->head & PINUSE) | CINUSE;
    next_chunk(p)->head |= PINUSE;
}
/* Free (binned or dv): PINUSE set (its predecessor is in use, by coalescing),
 * size repeated in the next chunk's prev_foot, next's PINUSE cleared. */
static void set_free_chunk(chunk *p, size_t s) {
    p->head = s | PINUSE;
    chunk *n = chunk_plus(p, s);
    n->prev_foot = s;
    n->head &= ~PINUSE;
}

static int seg_is_first(const mstate *m, const segfoot *s) { return s->base == addr_of(m); }
static segfoot *footer_of_top(const mstate *m) { return (segfoot *)(void *)chunk_plus(m->top, m->topsize); }
static size_t page_size(const mstate *m) { return m->hooks.page_size; }

static void footprint_add(mstate *m, size_t bytes) {
    m->footprint += bytes;
    if (m->footprint > m->max_footprint) m->max_footprint = m->footprint;
}

/* ---- small bins: LIFO rings of one exact size ------------------------------- */

static size_t small_index(size_t s) { return s >> SMALLBIN_SHIFT; }

static void insert_small(mstate *m, chunk *p, size_t s) {
    size_t i = small_index(s);
    chunk *h = m->smallbins[i];
    if (!h) {
        p->fd = p->bk = p;
        m->smallmap |= bit_of(i);
    } else {
        p->fd = h;
        p->bk = h->bk;
        h->bk->fd = p;
        h->bk = p;
    }
    m->smallbins[i] = p;
}

static void unlink_small(mstate *m, chunk *p, size_t s) {
    size_t i = small_index(s);
    if (p->fd == p) {
        m->smallbins[i] = NULL;
        m->smallmap &= ~bit_of(i);
        return;
    }
    p->bk->fd = p->fd;
    p->fd->bk = p->bk;
    if (m->smallbins[i] == p) m->smallbins[i] = p->fd;
}

/* ---- tree bins: bitwise tries by size ---------------------------------------- */

/* Bin i covers half of a power-of-two range above 1024: bins 2k and 2k+1 split
 * [1024 << k, 1024 << (k+1)); bin 31 also takes everything larger. */
static size_t tree_index(size_t s) {
    size_t x = s >> TREEBIN_SHIFT;
    if (x == 0) return 0;
    if (x > 0xFFFF) return NTREEBINS - 1;
    size_t k = floor_log2(x);
    return (k << 1) + ((s >> (k + TREEBIN_SHIFT - 1)) & 1);
}
/* Shift that brings the first size bit that varies inside bin i to bit 63: the
 * trie branches on that bit at the root, the next one below at depth 1, ... */
static size_t leftshift_for_tree_index(size_t i) {
    if (i == NTREEBINS - 1) return 0;
    return 63 - ((i >> 1) + TREEBIN_SHIFT - 2);
}

static void insert_large(mstate *m, tchunk *x, size_t s) {
    size_t i = tree_index(s);
    x->index = i;
    x->child[0] = x->child[1] = NULL;
    tchunk *t = m->treebins[i];
    if (!t) {
        m->treemap |= bit_of(i);
        m->treebins[i] = x;
        x->parent = NULL;
        x->fd = x->bk = x;
        return;
    }
    size_t bits = s << leftshift_for_tree_index(i);
    for (;;) {
        if (tsize(t) == s) { /* join t's ring, behind t */
            tchunk *f = t->fd;
            t->fd = x;
            f->bk = x;
            x->fd = f;
            x->bk = t;
            x->parent = NULL;
            x->index = NOT_IN_TREE;
            return;
        }
        size_t dir = (bits >> 63) & 1;
        bits <<= 1;
        if (t->child[dir]) {
            t = t->child[dir];
        } else {
            t->child[dir] = x;
            x->parent = t;
            x->fd = x->bk = x;
            return;
        }
    }
}

static void unlink_large(mstate *m, tchunk *x) {
    if (x->index == NOT_IN_TREE) { /* a ring member outside the trie */
        x->bk->fd = x->fd;
        x->fd->bk = x->bk;
        return;
    }
    tchunk *r = NULL;
    if (x->fd != x) { /* a same-size sibling takes x's place */
        r = x->fd;
        x->bk->fd = x->fd;
        x->fd->bk = x->bk;
    } else { /* a leaf of x's subtree takes x's place */
        tchunk **rp = x->child[1] ? &x->child[1] : x->child[0] ? &x->child[0] : NULL;
        if (rp) {
            r = *rp;
            while (r->child[1] || r->child[0]) {
                rp = r->child[1] ? &r->child[1] : &r->child[0];
                r = *rp;
            }
            *rp = NULL;
        }
    }
    tchunk *xp = x->parent;
    if (r) {
        r->parent = xp;
        r->index = x->index;
        r->child[0] = x->child[0];
        r->child[1] = x->child[1];
        if (r->child[0]) r->child[0]->parent = r;
        if (r->child[1]) r->child[1]->parent = r;
    }
    if (!xp) {
        m->treebins[x->index] = r;
        if (!r) m->treemap &= ~bit_of(x->index);
    } else if (xp->child[0] == x) {
        xp->child[0] = r;
    } else {
        xp->child[1] = r;
    }
}

static void insert_chunk(mstate *m, chunk *p, size_t s) {
    if (s < MIN_LARGE) insert_small(m, p, s);
    else insert_large(m, as_tree(p), s);
}
static void unlink_chunk(mstate *m, chunk *p, size_t s) {
    if (s < MIN_LARGE) unlink_small(m, p, s);
    else unlink_large(m, as_tree(p));
}

/* Fit search keeps the best chunk's remainder, rsize = size - nb, starting at
 * -nb (mod 2^64): then "s - nb < rsize" holds exactly when s >= nb and s leaves
 * less than the best so far (a smaller s wraps to more than -nb), one compare
 * instead of two branches per node visited. The first of equal fits stays. */
static size_t no_fit_yet(size_t nb) { return (size_t)0 - nb; }   /* nb > 0 */

/* Smallest fit for nb in the subtree of t (t included), or best if none beats
 * its remainder rsize: the minimum is t or lies in the leftmost non-empty
 * child's subtree, all of whose sizes are below the other. */
static tchunk *subtree_smallest(tchunk *t, tchunk *best, size_t rsize, size_t nb) {
    while (t) {
        size_t r = tsize(t) - nb;
        if (r < rsize) {
            rsize = r;
            best = t;
        }
        t = t->child[0] ? t->child[0] : t->child[1];
    }
    return best;
}

/* Best fit for a large request nb: walk nb's path in its bin, remembering the
 * deepest right subtree left behind (its sizes all exceed nb's path); then the
 * smallest of that subtree; else the smallest of the next non-empty bin. */
static tchunk *tree_best_fit(mstate *m, size_t nb) {
    size_t i = tree_index(nb);
    size_t rsize = no_fit_yet(nb);
    tchunk *best = NULL;
    tchunk *t = m->treebins[i];
    tchunk *rest = NULL;
    if (t) {
        size_t bits = nb << leftshift_for_tree_index(i);
        for (;;) {
            size_t r = tsize(t) - nb;
            if (r < rsize) {
                rsize = r;
                best = t;
                if (r == 0) return best;
            }
            size_t dir = (bits >> 63) & 1;
            tchunk *right = t->child[1];
            tchunk *next = t->child[dir];
            if (right && right != next) rest = right;
            if (!next) break;
            t = next;
            bits <<= 1;
        }
    }
    if (!rest && !best) {
        size_t above = m->treemap & ~(bit_of(i + 1) - 1);
        if (i + 1 < NTREEBINS && above) rest = m->treebins[lowest_bit_index(above)];
    }
    return subtree_smallest(rest, best, rsize, nb);
}

/* ---- segments ---------------------------------------------------------------- */

static void seg_link(mstate *m, segfoot *s) {
    s->prev = NULL;
    s->next = m->seg;
    if (m->seg) m->seg->prev = s;
    m->seg = s;
}

static void seg_unlink(mstate *m, segfoot *s) {
    if (s->prev) s->prev->next = s->next;
    else m->seg = s->next;
    if (s->next) s->next->prev = s->prev;
}

/* Writes the footer of a segment [base, base+size) whose chunks start at first. */
static segfoot *seg_init(size_t base, size_t size, size_t first) {
    segfoot *s = (segfoot *)(void *)chunk_at(base + size - SEG_FOOT);
    s->prev_foot = 0;
    s->head = SEG_FOOT | FENCE | CINUSE | PINUSE;
    s->base = base;
    s->size = size;
    s->first = first;
    s->next = s->prev = NULL;
    s->magic = SEG_MAGIC;
    return s;
}

static void seg_release(mstate *m, segfoot *s) {
    size_t base = s->base, size = s->size;
    seg_unlink(m, s);
    m->footprint -= size;
    m->hooks.free_page(m->hooks.ctx, (void *)(uintptr_t)base, size / page_size(m));
}

/* A free chunk p of size s that is a whole segment (not the first) goes back. */
static int release_if_whole_segment(mstate *m, chunk *p, size_t s) {
    chunk *n = chunk_plus(p, s);
    if (!is_fence(n)) return 0;
    segfoot *sf = (segfoot *)(void *)n;
    if (sf->first != addr_of(p) || seg_is_first(m, sf)) return 0;
    seg_release(m, sf);
    return 1;
}

/* Makes the free chunk p (size s, which ends at a segment footer) the top. */
static void set_top(mstate *m, chunk *p, size_t s) {
    m->top = p;
    m->topsize = s;
    p->head = s | PINUSE;
    chunk_plus(p, s)->head |= PINUSE; /* top counts as in use for its footer */
}

static int trim_top(mstate *m, size_t pad);

/* Places a chunk that is not in use (p, size s; header possibly stale):
 * coalesces with free neighbours, then becomes top, dv, a released segment or
 * a binned chunk. */
static void dispose_chunk(mstate *m, chunk *p, size_t s) {
    int to_dv = 0;
    if (!pinuse(p)) {
        size_t ps = p->prev_foot;
        chunk *prev = chunk_minus(p, ps);
        if (prev == m->dv) to_dv = 1;
        else unlink_chunk(m, prev, ps);
        p = prev;
        s += ps;
    }
    chunk *next = chunk_plus(p, s);
    if (!cinuse(next)) {
        if (next == m->top) {
            if (to_dv) { m->dv = NULL; m->dvsize = 0; }
            set_top(m, p, s + m->topsize);
            if (m->topsize > m->trim_threshold) trim_top(m, m->trim_threshold / 2);
            return;
        }
        size_t ns = chunksize(next);
        if (next == m->dv) to_dv = 1;
        else unlink_chunk(m, next, ns);
        s += ns;
    }
    if (to_dv) { m->dv = NULL; m->dvsize = 0; }
    set_free_chunk(p, s);
    if (release_if_whole_segment(m, p, s)) return;
    if (to_dv) { m->dv = p; m->dvsize = s; }
    else insert_chunk(m, p, s);
}

/* Trim: if top is a whole segment (not the first) and another segment ends in
 * a free chunk of at least pad + MIN_CHUNK, that chunk becomes top and top's
 * segment goes back. Else the tail pages of top's segment go back, keeping top
 * at least pad + MIN_CHUNK. Returns 1 if anything was given back. */
static int trim_top(mstate *m, size_t pad) {
    segfoot *ts = footer_of_top(m);
    if (addr_of(m->top) == ts->first && !seg_is_first(m, ts)) {
        chunk *best = NULL;
        for (segfoot *s = m->seg; s; s = s->next) {
            if (s == ts || (s->head & PINUSE)) continue;
            chunk *q = chunk_minus((chunk *)(void *)s, s->prev_foot);
            if (chunksize(q) >= pad + MIN_CHUNK && (!best || chunksize(q) > chunksize(best))) best = q;
        }
        if (best) {
            size_t bs = chunksize(best);
            if (best == m->dv) { m->dv = NULL; m->dvsize = 0; }
            else unlink_chunk(m, best, bs);
            seg_release(m, ts);
            set_top(m, best, bs);
            m->clean_from = addr_of(best) + bs; /* nothing known zero */
            return 1;
        }
    }
    size_t end = ts->base + ts->size;
    size_t keep = align_up(addr_of(m->top) + pad + MIN_CHUNK + SEG_FOOT, page_size(m));
    if (keep >= end) return 0;
    segfoot rec = *ts;
    segfoot *nf = (segfoot *)(void *)chunk_at(keep - SEG_FOOT);
    *nf = rec;
    nf->size = keep - rec.base;
    nf->prev_foot = 0;
    nf->head = SEG_FOOT | FENCE | CINUSE | PINUSE;
    if (nf->prev) nf->prev->next = nf;
    else m->seg = nf;
    if (nf->next) nf->next->prev = nf;
    m->hooks.free_page(m->hooks.ctx, (void *)(uintptr_t)keep, (end - keep) / page_size(m));
    m->footprint -= end - keep;
    m->topsize = addr_of(nf) - addr_of(m->top);
    m->top->head = m->topsize | PINUSE;
    if (m->clean_from > addr_of(nf)) m->clean_from = addr_of(nf);
    return 1;
}

/* A new segment big enough for a chunk of nb from its top; the old top becomes
 * a free chunk (or goes back, if it was a whole segment). 0 if no pages. */
static int grow_segment(mstate *m, size_t nb) {
    size_t ps = page_size(m);
    size_t want = nb + MIN_CHUNK + SEG_FOOT;   /* nb <= MAX_REQUEST + 16: no wrap */
    if (want < m->footprint >> HL_DL_SEGMENT_GROWTH_SHIFT) want = m->footprint >> HL_DL_SEGMENT_GROWTH_SHIFT;
    size_t size = align_up(align_up(want, m->granularity), ps);
    void *mem = m->hooks.alloc_page(m->hooks.ctx, size / ps);
    if (!mem) return 0;
    /* grown past twice the request: a segment many chunks will be cut from */
    if (m->hooks.prefault_page && size / 2 >= nb + MIN_CHUNK + SEG_FOOT) m->hooks.prefault_page(m->hooks.ctx, mem, size / ps);
    size_t base = addr_of(mem);
    footprint_add(m, size);
    segfoot *sf = seg_init(base, size, base);
    seg_link(m, sf);
    chunk *old = m->top;
    size_t olds = m->topsize;
    if (!release_if_whole_segment(m, old, olds)) {
        set_free_chunk(old, olds);
        insert_chunk(m, old, olds);
    }
    set_top(m, chunk_at(base), size - SEG_FOOT);
    m->clean_from = base + CHUNK_HEADER;
    return 1;
}

/* ---- direct (mapped) chunks --------------------------------------------------- */

static dnode *node_of(const chunk *p) { return (dnode *)(void *)chunk_minus(p, DIRECT_NODE); }
static size_t direct_base(const chunk *p) { return addr_of(p) - p->prev_foot; }

/* Own pages for `bytes` user bytes at alignment `align` (>= 16): map with slack,
 * then give back the whole pages before the node and after the user bytes. */
static void *direct_alloc(mstate *m, size_t bytes, size_t align) {
    size_t ps = page_size(m);
    size_t want = bytes < MIN_CHUNK ? MIN_CHUNK : bytes;
    size_t slack = align > CHUNK_ALIGN ? align : 0;
    size_t map = align_up(DIRECT_NODE + CHUNK_HEADER + want + slack, ps);
    void *raw = m->hooks.alloc_page(m->hooks.ctx, map / ps);
    if (!raw) return NULL;
    size_t base = addr_of(raw), end = base + map;
    size_t mem = align_up(base + DIRECT_NODE + CHUNK_HEADER, align);
    chunk *p = chunk_at(mem - CHUNK_HEADER);
    size_t keep_base = align_down(addr_of(p) - DIRECT_NODE, ps);
    size_t keep_end = align_up(mem + want, ps);
    if (keep_base > base) m->hooks.free_page(m->hooks.ctx, raw, (keep_base - base) / ps);
    if (keep_end < end) m->hooks.free_page(m->hooks.ctx, (void *)(uintptr_t)keep_end, (end - keep_end) / ps);
    p->prev_foot = addr_of(p) - keep_base;
    p->head = (keep_end - addr_of(p)) | DIRECT | CINUSE | PINUSE;
    dnode *n = node_of(p);
    n->pages = (keep_end - keep_base) / ps;
    n->magic = SEG_MAGIC;
    n->prev = NULL;
    n->next = m->direct;
    if (m->direct) m->direct->prev = n;
    m->direct = n;
    m->direct_count++;
    footprint_add(m, keep_end - keep_base);
    return (void *)(uintptr_t)mem;
}

static void direct_free(mstate *m, chunk *p) {
    dnode *n = node_of(p);
    if (n->prev) n->prev->next = n->next;
    else m->direct = n->next;
    if (n->next) n->next->prev = n->prev;
    m->direct_count--;
    size_t pages = n->pages;
    m->footprint -= pages * page_size(m);
    m->hooks.free_page(m->hooks.ctx, (void *)(uintptr_t)direct_base(p), pages);
}

/* Resizes a direct chunk's own pages through hooks.resize_page so that it
 * holds `bytes` user bytes, moving them if the page source must (the bytes
 * are kept; a node's list links are fixed up). NULL, the chunk untouched, if
 * the source cannot. */
static void *direct_resize(mstate *m, chunk *p, size_t bytes) {
    if (!m->hooks.resize_page) return NULL;
    size_t ps = page_size(m);
    size_t lead = p->prev_foot, base = direct_base(p);
    size_t want = bytes < MIN_CHUNK ? MIN_CHUNK : bytes;
    if (want > MAX_REQUEST - lead - CHUNK_HEADER) return NULL;
    size_t pages = align_up(lead + CHUNK_HEADER + want, ps) / ps;
    dnode *n = node_of(p);
    size_t old_pages = n->pages;
    dnode *prev = n->prev, *next = n->next;
    void *mem = m->hooks.resize_page(m->hooks.ctx, (void *)(uintptr_t)base, old_pages, pages);
    if (!mem) return NULL;
    size_t nb = addr_of(mem);
    p = chunk_at(nb + lead);
    n = node_of(p);
    n->pages = pages;
    if (prev) prev->next = n; else m->direct = n;
    if (next) next->prev = n;
    p->head = (pages * ps - lead) | DIRECT | CINUSE | PINUSE;
    m->footprint = m->footprint - old_pages * ps;
    footprint_add(m, pages * ps);
    return chunk2mem(p);
}

/* Shrink in place to `bytes` user bytes, giving back whole tail pages. */
static void direct_shrink(mstate *m, chunk *p, size_t bytes) {
    size_t ps = page_size(m);
    size_t want = bytes < MIN_CHUNK ? MIN_CHUNK : bytes;
    size_t end = addr_of(p) + chunksize(p);
    size_t keep_end = align_up(addr_of(chunk2mem(p)) + want, ps);
    if (keep_end >= end) return;
    dnode *n = node_of(p);
    size_t give = (end - keep_end) / ps;
    m->hooks.free_page(m->hooks.ctx, (void *)(uintptr_t)keep_end, give);
    n->pages -= give;
    m->footprint -= give * ps;
    p->head = (keep_end - addr_of(p)) | DIRECT | CINUSE | PINUSE;
}

/* ---- allocation ----------------------------------------------------------------- */

static size_t usable_of(const chunk *p) {
    return chunksize(p) - (is_direct(p) ? CHUNK_HEADER : CHUNK_OVERHEAD);
}

/* The remainder of a split made for a small request becomes the dv; the old
 * dv goes to its bin. */
static void replace_dv(mstate *m, chunk *r, size_t rs) {
    if (m->dvsize) insert_chunk(m, m->dv, m->dvsize);
    m->dv = r;
    m->dvsize = rs;
}

/* Takes free chunk p (already unlinked) of size s for nb; the remainder, if
 * it can be a chunk, goes to the dv (small requests) or a bin. */
static void *use_free_chunk(mstate *m, chunk *p, size_t s, size_t nb, int rem_to_dv) {
    if (s - nb < MIN_CHUNK) {
        set_inuse(p, s);
    } else {
        p->head = nb | PINUSE | CINUSE;
        chunk *r = chunk_plus(p, nb);
        set_free_chunk(r, s - nb);
        if (rem_to_dv) replace_dv(m, r, s - nb);
        else insert_chunk(m, r, s - nb);
    }
    return chunk2mem(p);
}

/* The chunk for nb from bins, dv or top, without new pages; NULL if none fits.
 * *zero_from: from this address on, the user bytes are known to read zero. */
static void *heap_alloc(mstate *m, size_t nb, size_t *zero_from) {
    void *mem;
    if (nb < MIN_LARGE) {
        size_t idx = small_index(nb);
        size_t bits = m->smallmap >> idx;
        if (bits & 3) { /* exact fit, or 16 more (no remainder possible) */
            idx += ~bits & 1;
            chunk *p = m->smallbins[idx];
            size_t s = idx << SMALLBIN_SHIFT;
            unlink_small(m, p, s);
            set_inuse(p, s);
            mem = chunk2mem(p);
            *zero_from = addr_of(p) + s + CHUNK_OVERHEAD;
            return mem;
        }
        if (nb > m->dvsize) {
            if (bits) { /* the next non-empty small bin; the rest becomes dv */
                size_t j = idx + lowest_bit_index(bits);
                chunk *p = m->smallbins[j];
                size_t s = j << SMALLBIN_SHIFT;
                unlink_small(m, p, s);
                mem = use_free_chunk(m, p, s, nb, 1);
                *zero_from = addr_of(p) + chunksize(p) + CHUNK_OVERHEAD;
                return mem;
            }
            if (m->treemap) { /* the smallest tree chunk; the rest becomes dv */
                tchunk *t = m->treebins[lowest_bit_index(m->treemap)];
                t = subtree_smallest(t, NULL, no_fit_yet(nb), nb);
                size_t s = tsize(t);
                unlink_large(m, t);
                mem = use_free_chunk(m, as_chunk(t), s, nb, 1);
                *zero_from = addr_of(t) + chunksize(as_chunk(t)) + CHUNK_OVERHEAD;
                return mem;
            }
        }
    } else if (m->treemap) {
        tchunk *t = tree_best_fit(m, nb);
        if (t && (nb > m->dvsize || tsize(t) - nb < m->dvsize - nb)) {
            size_t s = tsize(t);
            unlink_large(m, t);
            mem = use_free_chunk(m, as_chunk(t), s, nb, 0);
            *zero_from = addr_of(t) + chunksize(as_chunk(t)) + CHUNK_OVERHEAD;
            return mem;
        }
    }
    if (nb <= m->dvsize) {
        chunk *p = m->dv;
        size_t s = m->dvsize, rs = s - nb;
        if (rs >= MIN_CHUNK) {
            m->dv = chunk_plus(p, nb);
            m->dvsize = rs;
            set_free_chunk(m->dv, rs);
            p->head = nb | PINUSE | CINUSE;
        } else {
            m->dv = NULL;
            m->dvsize = 0;
            set_inuse(p, s);
        }
        *zero_from = addr_of(p) + chunksize(p) + CHUNK_OVERHEAD;
        return chunk2mem(p);
    }
    if (nb + MIN_CHUNK <= m->topsize) { /* carve from top */
        chunk *p = m->top;
        size_t mem_a = addr_of(chunk2mem(p));
        *zero_from = m->clean_from > mem_a ? m->clean_from : mem_a;
        m->top = chunk_plus(p, nb);
        m->topsize -= nb;
        m->top->head = m->topsize | PINUSE;
        p->head = nb | PINUSE | CINUSE;
        size_t low = addr_of(m->top) + CHUNK_HEADER;
        if (m->clean_from < low) m->clean_from = low;
        return chunk2mem(p);
    }
    return NULL;
}

static void *internal_malloc(mstate *m, size_t bytes, size_t *zero_from) {
    if (bytes > MAX_REQUEST) return NULL;
    size_t nb = request2size(bytes);
    if (nb >= m->mmap_threshold) {
        void *mem = direct_alloc(m, bytes, CHUNK_ALIGN);
        if (mem) { *zero_from = addr_of(mem); return mem; }
    }
    void *mem = heap_alloc(m, nb, zero_from);
    if (mem) return mem;
    if (!grow_segment(m, nb)) return NULL;
    return heap_alloc(m, nb, zero_from);
}

static void internal_free(mstate *m, void *mem) {
    chunk *p = mem2chunk(mem);
    if (is_direct(p)) { direct_free(m, p); return; }
    if (!cinuse(p) || is_fence(p)) return; /* not an in-use chunk: ignore */
    dispose_chunk(m, p, chunksize(p));
}

/* Cuts an in-use heap chunk down to nb, disposing of the tail. */
static void shrink_chunk(mstate *m, chunk *p, size_t nb) {
    size_t s = chunksize(p);
    if (s - nb < MIN_CHUNK) return;
    p->head = nb | (p->head & PINUSE) | CINUSE;
    chunk *r = chunk_plus(p, nb);
    r->head = (s - nb) | PINUSE;
    dispose_chunk(m, r, s - nb);
}

static void *internal_memalign(mstate *m, size_t align, size_t bytes) {
    size_t zf;
    if (align <= CHUNK_ALIGN) return internal_malloc(m, bytes, &zf);
    if (align > MAX_ALIGN) return NULL;
    if (!is_pow2(align)) {
        size_t a = CHUNK_ALIGN;
        while (a < align) a <<= 1;
        align = a;
    }
    if (bytes > MAX_REQUEST - align) return NULL;
    size_t nb = request2size(bytes);
    if (nb + align >= m->mmap_threshold) {
        void *mem = direct_alloc(m, bytes, align);
        if (mem) return mem;
    }
    /* over-allocate, then free the misaligned lead and the tail */
    size_t big = nb + align + MIN_CHUNK;
    void *mem = heap_alloc(m, big, &zf);
    if (!mem) {
        if (!grow_segment(m, big)) return NULL;
        mem = heap_alloc(m, big, &zf);
    }
    chunk *p = mem2chunk(mem);
    if (addr_of(mem) & (align - 1)) {
        size_t lead = align_up(addr_of(mem), align) - addr_of(mem);
        if (lead < MIN_CHUNK) lead += align;
        chunk *q = chunk_plus(p, lead);
        size_t qs = chunksize(p) - lead;
        q->head = qs | CINUSE; /* its predecessor, the lead, is about to be free */
        p->head = lead | PINUSE;
        dispose_chunk(m, p, lead);
        p = q;
    }
    shrink_chunk(m, p, nb);
    return chunk2mem(p);
}

static void *internal_realloc(mstate *m, void *mem, size_t bytes) {
    if (bytes > MAX_REQUEST) return NULL;
    chunk *p = mem2chunk(mem);
    size_t nb = request2size(bytes), zf;
    if (is_direct(p)) {
        size_t usable = usable_of(p);
        if (bytes <= usable) {
            if (nb < m->mmap_threshold) { /* small now: move into a segment */
                void *n = internal_malloc(m, bytes, &zf);
                if (n) {
                    memcpy(n, mem, bytes);
                    direct_free(m, p);
                    return n;
                }
            }
            direct_shrink(m, p, bytes);
            return mem;
        }
        /* grow: its own pages resized (no copy), else fresh mapping + copy.
         * The new size is the request itself, not reckoned from the old
         * chunk, so an aligned block's offset cannot shorten it (upstream
         * 2.8.6's fault). */
        void *r = direct_resize(m, p, bytes);
        if (r) return r;
        void *n = internal_malloc(m, bytes, &zf);
        if (!n) return NULL;
        memcpy(n, mem, usable);
        direct_free(m, p);
        return n;
    }
    if (!cinuse(p) || is_fence(p)) return NULL;
    size_t s = chunksize(p);
    if (s >= nb) {
        shrink_chunk(m, p, nb);
        return mem;
    }
    chunk *next = chunk_plus(p, s);
    if (next == m->top && s + m->topsize >= nb + MIN_CHUNK) {
        size_t rest = s + m->topsize - nb;
        p->head = nb | (p->head & PINUSE) | CINUSE;
        m->top = chunk_plus(p, nb);
        m->topsize = rest;
        m->top->head = rest | PINUSE;
        size_t low = addr_of(m->top) + CHUNK_HEADER;
        if (m->clean_from < low) m->clean_from = low;
        return mem;
    }
    if (!cinuse(next) && next != m->top && s + chunksize(next) >= nb) {
        size_t ns = chunksize(next);
        if (next == m->dv) { m->dv = NULL; m->dvsize = 0; }
        else unlink_chunk(m, next, ns);
        set_inuse(p, s + ns);
        shrink_chunk(m, p, nb);
        return mem;
    }
    void *n = internal_malloc(m, bytes, &zf);
    if (!n) return NULL;
    memcpy(n, mem, usable_of(p));
    internal_free(m, mem);
    return n;
}

/* ---- public entry points ----------------------------------------------------------- */

static mstate *lock_ms(mspace msp) {
    mstate *m = msp;
    if (!m || m->magic != MSTATE_MAGIC) return NULL;
    m->hooks.lock(m->hooks.ctx);
    return m;
}
static void unlock_ms(mstate *m) { m->hooks.unlock(m->hooks.ctx); }

mspace create_mspace_with_hooks(const hl_hooks *hooks) {
    if (!hooks || !is_pow2(hooks->page_size) || hooks->page_size < 4096 || !hooks->alloc_page ||
        !hooks->free_page || !hooks->lock || !hooks->unlock)
        return NULL;
    size_t ps = hooks->page_size;
    size_t gran = HL_DL_GRANULARITY > ps ? HL_DL_GRANULARITY : ps;
    size_t first = align_up(sizeof(mstate), CHUNK_ALIGN);
    size_t size = align_up(first + MIN_CHUNK + SEG_FOOT, gran);
    hooks->lock(hooks->ctx);
    void *mem = hooks->alloc_page(hooks->ctx, size / ps);
    hooks->unlock(hooks->ctx);
    if (!mem) return NULL;
    size_t base = addr_of(mem);
    mstate *m = mem;
    memset(m, 0, sizeof *m);
    m->hooks = *hooks;
    m->granularity = gran;
    m->mmap_threshold = HL_DL_MMAP_THRESHOLD;
    m->trim_threshold = HL_DL_TRIM_THRESHOLD;
    seg_link(m, seg_init(base, size, base + first));
    set_top(m, chunk_at(base + first), size - first - SEG_FOOT);
    m->clean_from = base + first + CHUNK_HEADER;
    footprint_add(m, size);
    m->magic = MSTATE_MAGIC;
    return m;
}

size_t destroy_mspace(mspace msp) {
    mstate *m = lock_ms(msp);
    if (!m) return 0;
    hl_hooks h = m->hooks;
    size_t freed = m->footprint;
    m->magic = 0;
    while (m->direct) direct_free(m, chunk_plus((chunk *)(void *)m->direct, DIRECT_NODE));
    segfoot *first = NULL;
    for (segfoot *s = m->seg, *next; s; s = next) {
        next = s->next;
        if (seg_is_first(m, s)) first = s;
        else h.free_page(h.ctx, (void *)(uintptr_t)s->base, s->size / h.page_size);
    }
    if (first) h.free_page(h.ctx, (void *)(uintptr_t)first->base, first->size / h.page_size);
    h.unlock(h.ctx);
    return freed;
}

void *mspace_malloc(mspace msp, size_t bytes) {
    mstate *m = lock_ms(msp);
    if (!m) return NULL;
    size_t zf;
    void *mem = internal_malloc(m, bytes, &zf);
    unlock_ms(m);
    return mem;
}

void mspace_free(mspace msp, void *mem) {
    if (!mem) return;
    mstate *m = lock_ms(msp);
    if (!m) return;
    internal_free(m, mem);
    unlock_ms(m);
}

void *mspace_calloc(mspace msp, size_t n_elements, size_t elem_size) {
    if (elem_size && n_elements > MAX_REQUEST / elem_size) return NULL;
    size_t bytes = n_elements * elem_size;
    mstate *m = lock_ms(msp);
    if (!m) return NULL;
    size_t zf = 0;
    void *mem = internal_malloc(m, bytes, &zf);
    unlock_ms(m);
    if (mem) { /* clear only what is not known to read zero already */
        size_t a = addr_of(mem);
        size_t dirty = zf > a ? zf - a : 0;
        memset(mem, 0, dirty < bytes ? dirty : bytes);
    }
    return mem;
}

void *mspace_realloc(mspace msp, void *mem, size_t newsize) {
    if (!mem) return mspace_malloc(msp, newsize);
    mstate *m = lock_ms(msp);
    if (!m) return NULL;
    void *r = internal_realloc(m, mem, newsize);
    unlock_ms(m);
    return r;
}

void *mspace_memalign(mspace msp, size_t alignment, size_t bytes) {
    mstate *m = lock_ms(msp);
    if (!m) return NULL;
    void *r = internal_memalign(m, alignment, bytes);
    unlock_ms(m);
    return r;
}

int mspace_posix_memalign(mspace msp, void **pp, size_t alignment, size_t bytes) {
    if (!is_pow2(alignment) || alignment % sizeof(void *)) return HL_EINVAL;
    void *r = mspace_memalign(msp, alignment, bytes);
    if (!r) return HL_ENOMEM;
    *pp = r;
    return 0;
}

size_t mspace_usable_size(const void *mem) {
    if (!mem) return 0;
    const chunk *p = mem2chunk(mem);
    if (!cinuse(p)) return 0;
    return usable_of(p);
}

size_t mspace_chunk_peek(const void *mem, int *prev_free) {
    const chunk *p = mem2chunk(mem);
    *prev_free = !pinuse(p);
    return cinuse(p) ? usable_of(p) : 0;
}

int mspace_trim(mspace msp, size_t pad) {
    mstate *m = lock_ms(msp);
    if (!m) return 0;
    if (pad > MAX_REQUEST) pad = MAX_REQUEST;
    int r = 0;
    while (trim_top(m, pad)) r = 1; /* a top swap can be followed by a tail trim */
    unlock_ms(m);
    return r;
}

size_t mspace_footprint(mspace msp) {
    mstate *m = lock_ms(msp);
    if (!m) return 0;
    size_t f = m->footprint;
    unlock_ms(m);
    return f;
}

size_t mspace_max_footprint(mspace msp) {
    mstate *m = lock_ms(msp);
    if (!m) return 0;
    size_t f = m->max_footprint;
    unlock_ms(m);
    return f;
}

struct dl_mallinfo mspace_mallinfo(mspace msp) {
    struct dl_mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mstate *m = lock_ms(msp);
    if (!m) return mi;
    for (segfoot *s = m->seg; s; s = s->next) {
        mi.arena += s->size;
        for (chunk *p = chunk_at(s->first); addr_of(p) < addr_of(s); p = next_chunk(p)) {
            if (cinuse(p)) mi.uordblks += chunksize(p);
            else { mi.ordblks++; mi.fordblks += chunksize(p); }
        }
    }
    for (dnode *n = m->direct; n; n = n->next) {
        chunk *p = chunk_plus((chunk *)(void *)n, DIRECT_NODE);
        mi.hblks++;
        mi.hblkhd += n->pages * page_size(m);
        mi.uordblks += chunksize(p);
    }
    mi.usmblks = m->max_footprint;
    mi.keepcost = m->topsize;
    unlock_ms(m);
    return mi;
}

/* ---- the checker ---------------------------------------------------------------------- */

/* Safety bound on any list or tree walk, so that a corrupted link cannot loop. */
#define WALK_LIMIT ((size_t)1 << 26)

/* Is [a, a + len) inside some segment's chunk area (its footer included when
 * with_footer)? */
static int in_segments(const mstate *m, size_t a, size_t len, int with_footer) {
    size_t n = 0;
    for (const segfoot *s = m->seg; s && n < WALK_LIMIT; s = s->next, n++) {
        size_t end = addr_of(s) + (with_footer ? SEG_FOOT : 0);
        if (a >= s->first && a + len >= a && a + len <= end) return 1;
    }
    return 0;
}
static int plausible_free(const mstate *m, const chunk *p) {
    return !(addr_of(p) & (CHUNK_ALIGN - 1)) && in_segments(m, addr_of(p), MIN_CHUNK, 0);
}

typedef struct walk_counts {
    size_t binned_free; /* free chunks seen walking segments (not top, not dv) */
    size_t top_seen, dv_seen;
    size_t seg_bytes;
} walk_counts;

static size_t check_segment(const mstate *m, const segfoot *s, walk_counts *w) {
    size_t bad = 0, ps = page_size(m);
    if (s->magic != SEG_MAGIC) return 1; /* cannot trust anything else */
    if (s->base & (ps - 1)) bad++;
    if (!s->size || s->size % ps) bad++;
    if (addr_of(s) != s->base + s->size - SEG_FOOT) return bad + 1;
    if (s->first < s->base || s->first >= addr_of(s) || (s->first & (CHUNK_ALIGN - 1))) return bad + 1;
    if (seg_is_first(m, s) != (s->first != s->base)) bad++;
    if ((s->head & ~PINUSE) != (SEG_FOOT | FENCE | CINUSE)) bad++;
    w->seg_bytes += s->size;
    int prev_inuse = 1;      /* as PINUSE of the next chunk should read */
    size_t prev_free_size = 0;
    const chunk *p = chunk_at(s->first);
    size_t limit = addr_of(s);
    while (addr_of(p) < limit) {
        size_t sz = chunksize(p);
        if ((p->head & (DIRECT | FENCE)) || sz < MIN_CHUNK || addr_of(p) + sz > limit) {
            bad++; /* the walk cannot go on in this segment */
            return bad;
        }
        if (pinuse(p) != prev_inuse) bad++;
        if (!prev_inuse && p->prev_foot != prev_free_size) bad++;
        if (p == m->top) {
            w->top_seen++;
            if (sz != m->topsize || addr_of(p) + sz != limit) bad++;
            if (!pinuse(p)) bad++;
            prev_inuse = 1;
        } else if (!cinuse(p)) {
            if (!prev_inuse) bad++; /* two free chunks side by side */
            if (!pinuse(p)) bad++;
            if (p == m->dv) {
                w->dv_seen++;
                if (sz != m->dvsize) bad++;
            } else {
                w->binned_free++;
            }
            prev_inuse = 0;
            prev_free_size = sz;
        } else {
            prev_inuse = 1;
        }
        p = chunk_plus(p, sz);
    }
    if (addr_of(p) != limit) bad++;
    if (pinuse((const chunk *)(const void *)s) != prev_inuse) bad++;
    if (!prev_inuse && s->prev_foot != prev_free_size) bad++;
    return bad;
}

static size_t check_free_member(const mstate *m, const chunk *p) {
    size_t bad = 0;
    if (cinuse(p) || !pinuse(p) || (p->head & (DIRECT | FENCE))) bad++;
    if (p == m->top || p == m->dv) bad++;
    const chunk *n = chunk_plus(p, chunksize(p));
    if (in_segments(m, addr_of(n), CHUNK_HEADER, 1)) {
        if (n->prev_foot != chunksize(p) || pinuse(n)) bad++;
    } else {
        bad++;
    }
    return bad;
}

static size_t check_small_bins(const mstate *m, size_t *count) {
    size_t bad = 0;
    for (size_t i = 0; i < NSMALLBINS; i++) {
        const chunk *h = m->smallbins[i];
        size_t bit = (m->smallmap >> i) & 1;
        if ((size_t)(h != NULL) != bit) bad++;
        if (!h) continue;
        if (i < small_index(MIN_CHUNK)) { bad++; continue; }
        const chunk *q = h;
        size_t steps = 0;
        do {
            if (!plausible_free(m, q) || !plausible_free(m, q->fd)) { bad++; break; }
            if (chunksize(q) != (i << SMALLBIN_SHIFT)) bad++;
            bad += check_free_member(m, q);
            if (q->fd->bk != q) bad++;
            (*count)++;
            q = q->fd;
        } while (q != h && ++steps < WALK_LIMIT);
    }
    return bad;
}

/* One trie node: its bin, parent link, the size bits along its path, its ring. */
static size_t check_tree_node(const mstate *m, tchunk *t, size_t i, size_t depth, size_t path,
                              const tchunk *parent, size_t *count) {
    size_t bad = 0;
    if (depth > 63 || !plausible_free(m, as_chunk(t))) return 1;
    size_t s = tsize(t);
    if (t->index != i || tree_index(s) != i) bad++;
    if (t->parent != parent) bad++;
    size_t key = s << leftshift_for_tree_index(i);
    if (depth && (key >> (64 - depth)) != (path >> (64 - depth))) bad++;
    bad += check_free_member(m, as_chunk(t));
    (*count)++;
    /* the ring of same-size chunks */
    tchunk *r = t;
    size_t steps = 0;
    for (;;) {
        if (!plausible_free(m, as_chunk(r->fd))) { bad++; break; }
        if (r->fd->bk != r) bad++;
        r = r->fd;
        if (r == t || ++steps >= WALK_LIMIT) break;
        if (tsize(r) != s || r->index != NOT_IN_TREE) bad++;
        bad += check_free_member(m, as_chunk(r));
        (*count)++;
    }
    for (size_t d = 0; d < 2; d++)
        if (t->child[d])
            bad += check_tree_node(m, t->child[d], i, depth + 1, path | (d << (63 - depth)), t, count);
    return bad;
}

static size_t check_tree_bins(const mstate *m, size_t *count) {
    size_t bad = 0;
    if (m->treemap >> NTREEBINS) bad++;
    for (size_t i = 0; i < NTREEBINS; i++) {
        tchunk *t = m->treebins[i];
        if ((size_t)(t != NULL) != ((m->treemap >> i) & 1)) bad++;
        if (t) bad += check_tree_node(m, t, i, 0, 0, NULL, count);
    }
    return bad;
}

static size_t check_direct(const mstate *m, size_t *bytes) {
    size_t bad = 0, n = 0, ps = page_size(m);
    const dnode *prev = NULL;
    for (const dnode *d = m->direct; d && n < WALK_LIMIT; prev = d, d = d->next, n++) {
        if (d->magic != SEG_MAGIC || d->prev != prev) { bad++; break; }
        const chunk *p = chunk_plus((const chunk *)(const void *)d, DIRECT_NODE);
        size_t lead = p->prev_foot, base = addr_of(p) - lead;
        if ((p->head & FLAG_MASK) != (DIRECT | CINUSE | PINUSE)) bad++;
        if (lead < DIRECT_NODE || lead >= DIRECT_NODE + ps || (base & (ps - 1))) bad++;
        if (chunksize(p) + lead != d->pages * ps) bad++;
        *bytes += d->pages * ps;
    }
    if (n != m->direct_count) bad++;
    return bad;
}

static size_t check_all(const mstate *m) {
    size_t bad = 0;
    walk_counts w = {0, 0, 0, 0};
    size_t nseg = 0, first_seen = 0;
    const segfoot *prev = NULL;
    for (const segfoot *s = m->seg; s && nseg < WALK_LIMIT; prev = s, s = s->next, nseg++) {
        if (s->prev != prev) bad++;
        bad += check_segment(m, s, &w);
        if (s->magic == SEG_MAGIC && seg_is_first(m, s)) first_seen++;
    }
    if (first_seen != 1) bad++;
    /* top, dv */
    if (w.top_seen != 1) bad++;
    if (m->topsize < MIN_CHUNK || (m->topsize & (CHUNK_ALIGN - 1))) bad++;
    if (m->dv) {
        if (w.dv_seen != 1 || m->dvsize < MIN_CHUNK) bad++;
    } else if (m->dvsize || w.dv_seen) {
        bad++;
    }
    /* top's clean tail reads zero */
    size_t top_end = addr_of(m->top) + m->topsize;
    if (m->clean_from < addr_of(m->top) + CHUNK_HEADER || m->clean_from > top_end) {
        bad++;
    } else if (w.top_seen == 1) {
        const unsigned char *z = (const unsigned char *)(uintptr_t)m->clean_from;
        for (size_t i = 0; i < top_end - m->clean_from; i++)
            if (z[i]) { bad++; break; }
    }
    /* bins hold exactly the free chunks found in the segments */
    size_t binned = 0;
    bad += check_small_bins(m, &binned);
    bad += check_tree_bins(m, &binned);
    if (binned != w.binned_free) bad++;
    /* accounting */
    size_t direct_bytes = 0;
    bad += check_direct(m, &direct_bytes);
    if (m->footprint != w.seg_bytes + direct_bytes) bad++;
    if (m->max_footprint < m->footprint) bad++;
    return bad;
}

void mspace_walk(mspace msp, mspace_walker walker, void *user) {
    mstate *m = lock_ms(msp);
    if (!m) return;
    if (!walker) {
        unlock_ms(m);
        return;
    }
    unsigned region = 1;
    for (segfoot *s = m->seg; s; s = s->next, region++) {
        if (s->first > s->base) walker((void *)(uintptr_t)s->base, s->first - s->base, (void *)(uintptr_t)s->base, 0, MSPACE_WALK_META, region, user);
        chunk *p = chunk_at(s->first), *fence = (chunk *)(void *)s;
        while (p < fence) {
            size_t size = chunksize(p);
            if (size < MIN_CHUNK || size > (size_t)((uintptr_t)fence - (uintptr_t)p)) break; /* broken: check() says so */
            int used = cinuse(p) && p != m->top;
            size_t usable = used ? usable_of(p) : size - CHUNK_HEADER;
            walker(p, size, chunk2mem(p), usable, used ? MSPACE_WALK_USED : MSPACE_WALK_FREE, region, user);
            p = chunk_plus(p, size);
        }
        walker(s, SEG_FOOT, s, 0, MSPACE_WALK_META, region, user);
    }
    for (dnode *n = m->direct; n; n = n->next) {
        chunk *p = chunk_plus((chunk *)(void *)n, DIRECT_NODE);
        size_t base = direct_base(p);
        if (addr_of(n) > base) walker((void *)(uintptr_t)base, addr_of(n) - base, (void *)(uintptr_t)base, 0, MSPACE_WALK_META, 0, user);
        walker(n, DIRECT_NODE, n, 0, MSPACE_WALK_META, 0, user);
        walker(p, chunksize(p), chunk2mem(p), usable_of(p), MSPACE_WALK_USED, 0, user);
    }
    unlock_ms(m);
}

size_t mspace_check(mspace msp) {
    mstate *m = lock_ms(msp);
    if (!m) return 1;
    size_t bad = check_all(m);
    unlock_ms(m);
    return bad;
}
