/**
 * liballoc.ts — the TypeScript port of vendor/liballoc/liballoc.c (heaplab's
 * liballoc-style allocator: majors of whole pages tiled by minor blocks with magic
 * words, a size-class index of dead minors under a two-level bitmap, a best-bet
 * major whose tail is carved from the front, one spare empty major kept).
 *
 * Same decisions as the C, over an ArenaPages address space: every header lives in
 * pages.u32 at the same byte offset and with the same 64-bit little-endian layout as
 * on x86-64; a pointer is its offset (0 is NULL). Read it beside the C:
 *
 *   C (liballoc.c)                         here
 *   ------------------------------------   -------------------------------------------
 *   struct la_minor (48 B) / la_links      M_* word indices; payload at m + 48
 *   struct la_major (80 B)                 J_* word indices; first minor at maj + 80
 *   struct liballoc_heap (3920 B)          H_* word indices, in the control page
 *   minor_total, class_of, class_mark,     same names, module functions / methods
 *   class_clear, class_find_from,
 *   index_insert/remove/find,
 *   gap_is_tail/insert/remove,
 *   best_bet_tail, minor_absorb/cut/split/
 *   mark_used/coalesce/validate/shrink,
 *   major_standard_pages/new/release,
 *   gap_acquire, heap_malloc/memalign/
 *   free/realloc/calloc
 *   check_major, check_index, heap_check   same names (the same counts)
 *   liballoc_create / liballoc_destroy     createLiballoc / destroy()
 *
 * Only the per-instance allocator is ported, not the global kmalloc API and its
 * default instance. The hooks copy in the heap (ctx and the four function
 * pointers) holds host pointers in C; the port leaves those words zero and reports
 * them through hostBytes(); page_size is stored as in C. LIBALLOC_FILL is 0 in the
 * C build, so no payload is filled; calloc zeroes count * size bytes; realloc that
 * moves copies min(usable, size) bytes, stale bytes included, as memcpy does.
 *
 * Every value the allocator stores (sizes, counters, offsets) stays below 2**32
 * in an address space below 4 GiB, so a 64-bit field is read from its low word.
 * A header is written whole (low word, zero high word: set()) where C creates it:
 * a minor in minor_cut / major_new, a major in major_new, the links of a minor as
 * it enters the index, the control structure in create. Later updates of a live
 * header write the low word only: its high word is already 0, and nothing else
 * writes there (user bytes and realloc's copy stay in payloads of minors in use).
 * Fields that may hold garbage (the words behind a bad free) are checked on both
 * words, as the C compares all 64 bits.
 */
import type { ArenaPages } from '../pages/arena.js';
import * as memory from './memory.js';
import type { PortAllocator, PortFactory } from './types.js';
import { WalkState, type WalkBuilder } from '../walk.js';

/* Module constants, not imports: V8 folds a const binding into its callers but
 * checks an import's cell at every call (./memory.ts). */
const { exceeds, ffs32, flsSize, load64 } = memory;

// ---- build options (as compiled: the C defaults) -----------------------------------
const LIBALLOC_MAJOR_PAGES = 16;
const LIBALLOC_MAJOR_MAX_PAGES = 2 ** 20;
const LIBALLOC_SPARE_MAX_PAGES = 64;
const LIBALLOC_MAJOR_QUARTER_PAGES = 256;
const LIBALLOC_MAJOR_GROWTH_SHIFT = 6;

// ---- fixed constants -----------------------------------------------------------------
const LA_ALIGN = 16;
/* Magic words as (low, high) 32-bit halves. */
const LA_MAGIC_USED_LO = 0x6c6c6f63, LA_MAGIC_USED_HI = 0x6c696261; // "liballoc"
const LA_MAGIC_DEAD_LO = 0xdeaddead, LA_MAGIC_DEAD_HI = 0xdeaddead;
const LA_MAGIC_MAJOR_LO = 0x52424c4b, LA_MAGIC_MAJOR_HI = 0x4d414a4f; // "MAJORBLK"
const LA_MAGIC_HEAP_LO = 0x4150484c, LA_MAGIC_HEAP_HI = 0x4c494845; // "LIHEAPHL"
/* LA_MAGIC_GONE is 0. */

/** (size_t)PTRDIFF_MAX / 2 = 2**62 - 1; as a double it rounds to 2**62 (no request near it can be served). */
const LA_MAX_REQUEST = 2 ** 62 - 1;
const LA_MAX_PAGE_SIZE = 2 ** 30;
const SIZE_MAX = 2 ** 64;

const LA_LINEAR_SHIFT = 8;
const LA_LINEAR_LIMIT = 1 << LA_LINEAR_SHIFT;
const LA_LINEAR_CLASSES = LA_LINEAR_LIMIT / LA_ALIGN; // 16
const LA_SL_BITS = 3;
const LA_SL_COUNT = 1 << LA_SL_BITS;
const LA_FL_COUNT = 64 - LA_LINEAR_SHIFT;
const LA_CLASSES = LA_LINEAR_CLASSES + LA_FL_COUNT * LA_SL_COUNT; // 464
const LA_BITMAP_WORDS = Math.floor((LA_CLASSES + 63) / 64); // 8 (64-bit words)

// ---- headers: word (32-bit) indices from the header's start ----------------------
/* struct la_minor: prev, next, major, magic, size, req_size (48 bytes); la_links in the payload. */
const M_PREV = 0, M_NEXT = 2, M_MAJOR = 4, M_MAGIC = 6, M_SIZE = 8, M_REQ = 10;
const M_FREE_NEXT = 12, M_FREE_PREV = 14;
const SIZEOF_MINOR = 48;
/* struct la_major: prev, next, magic, heap, pages, size, usage, count, first, last (80 bytes). */
const J_PREV = 0, J_NEXT = 2, J_MAGIC = 4, J_HEAP = 6, J_PAGES = 8, J_SIZE = 10, J_USAGE = 12, J_COUNT = 14;
const J_FIRST = 16, J_LAST = 18;
const SIZEOF_MAJOR = 80;
/* struct liballoc_heap: magic, hooks {ctx, page_size, alloc_page, free_page, lock, unlock, resize_page,
 * prefault_page}, control_pages, majors, best_bet, spare, major_count, major_pages, usage, live,
 * bad_frees, summary, bitmap[8], heads[464] (3928 bytes). */
const H_MAGIC = 0, H_HOOKS_CTX = 2, H_PAGE_SIZE = 4, H_HOOKS_ALLOC = 6;
const HOOKS_FNS_BYTES = 48; // alloc_page, free_page, lock, unlock, resize_page, prefault_page
const H_CONTROL_PAGES = 18, H_MAJORS = 20, H_BEST_BET = 22, H_SPARE = 24, H_MAJOR_COUNT = 26;
const H_MAJOR_PAGES = 28, H_USAGE = 30, H_LIVE = 32, H_BAD_FREES = 34, H_SUMMARY = 36;
const H_BITMAP = 38, H_HEADS = H_BITMAP + 2 * LA_BITMAP_WORDS; // 54
const SIZEOF_HEAP = 4 * H_HEADS + 8 * LA_CLASSES; // 3928

const LA_MIN_PAYLOAD = 16; // sizeof(la_links) (16) > LA_ALIGN ? ... : LA_ALIGN
const LA_MIN_MINOR = SIZEOF_MINOR + LA_MIN_PAYLOAD; // 64

// ---- small accessors ------------------------------------------------------------------

const align_up = function align_up(x: number, a: number): number {
  return Math.ceil(x / a) * a; // exact for integers below 2**53 and a power of two a
};

/** Bytes of a minor that holds `size` requested bytes (size <= LA_MAX_REQUEST). */
const minor_total = function minor_total(size: number): number {
  if (size < LA_MIN_PAYLOAD) size = LA_MIN_PAYLOAD;
  if (size <= 0x7fffffe0) return ((size + 15) & ~15) + SIZEOF_MINOR;
  return align_up(size, LA_ALIGN) + SIZEOF_MINOR;
};

/** The class of a dead minor of `size` bytes (a multiple of 16). */
const class_of = function class_of(size: number): number {
  if (size < LA_LINEAR_LIMIT) return size >>> 4;
  let fl: number, sl: number;
  if (size <= 0x7fffffff) { /* a Smi constant: against 2**32 - 1 V8 compared in doubles */
    fl = 31 - Math.clz32(size);
    sl = (size >>> (fl - LA_SL_BITS)) & (LA_SL_COUNT - 1);
  } else {
    fl = flsSize(size);
    sl = Math.floor(size / 2 ** (fl - LA_SL_BITS)) & (LA_SL_COUNT - 1);
  }
  return LA_LINEAR_CLASSES + (fl - LA_LINEAR_SHIFT) * LA_SL_COUNT + sl;
};

const is_power_of_two = function is_power_of_two(x: number): boolean {
  if (x <= 0x7fffffff) return (x & (x - 1)) === 0;
  return 2 ** Math.round(Math.log2(x)) === x;
};

class LiballocHeap implements PortAllocator {
  readonly name = 'liballoc';
  declare readonly pages: ArenaPages;
  declare readonly u8: Uint8Array;
  declare readonly u32: Uint32Array;
  /** The heap's control structure: offset and word index. */
  declare readonly h: number;
  declare readonly hw: number;
  declare readonly ps: number;
  destroyed = false;

  constructor(pages: ArenaPages, h: number) {
    this.pages = pages;
    this.u8 = pages.u8;
    this.u32 = pages.u32;
    this.h = h;
    this.hw = h >>> 2;
    this.ps = pages.pageSize;
  }

  // ---- field helpers (a 64-bit field: low word, high word 0) ----------------------

  private set(w: number, v: number): void {
    const u32 = this.u32;
    u32[w] = v;
    u32[w + 1] = 0;
  }

  private minor_is_used(m: number): boolean {
    const w = (m >>> 2) + M_MAGIC;
    return this.u32[w] === LA_MAGIC_USED_LO && this.u32[w + 1] === LA_MAGIC_USED_HI;
  }

  private minor_is_dead(m: number): boolean {
    const w = (m >>> 2) + M_MAGIC;
    return this.u32[w] === LA_MAGIC_DEAD_LO && this.u32[w + 1] === LA_MAGIC_DEAD_HI;
  }

  private set_magic(w: number, lo: number, hi: number): void {
    this.u32[w] = lo;
    this.u32[w + 1] = hi;
  }

  // ---- the size-class index --------------------------------------------------------

  private class_mark(c: number): void {
    const u32 = this.u32;
    const bw = this.hw + H_BITMAP + (c >>> 5);
    u32[bw] = u32[bw]! | (1 << (c & 31));
    const sw = this.hw + H_SUMMARY;
    u32[sw] = u32[sw]! | (1 << (c >>> 6));
  }

  private class_clear(c: number): void {
    const u32 = this.u32;
    const bw = this.hw + H_BITMAP + (c >>> 5);
    u32[bw] = u32[bw]! & ~(1 << (c & 31));
    const w64 = this.hw + H_BITMAP + ((c >>> 6) << 1);
    if (u32[w64] === 0 && u32[w64 + 1] === 0) {
      const sw = this.hw + H_SUMMARY;
      u32[sw] = u32[sw]! & ~(1 << (c >>> 6));
    }
  }

  /** The first non-empty class >= c, or LA_CLASSES. */
  private class_find_from(c: number): number {
    if (c >= LA_CLASSES) return LA_CLASSES;
    const u32 = this.u32;
    const bm = this.hw + H_BITMAP;
    // the 64-bit word w = c / 64, from bit c % 64: its two halves
    const half = c >>> 5;
    let bits = u32[bm + half]! & (-1 << (c & 31));
    if (bits) return half * 32 + ffs32(bits);
    if ((half & 1) === 0) {
      bits = u32[bm + half + 1]!;
      if (bits) return (half + 1) * 32 + ffs32(bits);
    }
    let w = c >>> 6;
    if (w + 1 >= LA_BITMAP_WORDS) return LA_CLASSES;
    const words = u32[this.hw + H_SUMMARY]! & (-1 << (w + 1));
    if (!words) return LA_CLASSES;
    w = ffs32(words);
    const lo = u32[bm + 2 * w]!;
    if (lo) return w * 64 + ffs32(lo);
    return w * 64 + 32 + ffs32(u32[bm + 2 * w + 1]!);
  }

  private index_insert(m: number): void {
    const u32 = this.u32;
    const mw = m >>> 2;
    const c = class_of(u32[mw + M_SIZE]!);
    const hw = this.hw + H_HEADS + 2 * c;
    const head = u32[hw]!;
    this.set(mw + M_FREE_PREV, 0);
    this.set(mw + M_FREE_NEXT, head);
    if (head) u32[(head >>> 2) + M_FREE_PREV] = m;
    else this.class_mark(c);
    u32[hw] = m;
  }

  private index_remove(m: number): void {
    const u32 = this.u32;
    const mw = m >>> 2;
    const next = u32[mw + M_FREE_NEXT]!;
    const prev = u32[mw + M_FREE_PREV]!;
    if (next) u32[(next >>> 2) + M_FREE_PREV] = prev;
    if (prev) {
      u32[(prev >>> 2) + M_FREE_NEXT] = next;
    } else {
      const c = class_of(u32[mw + M_SIZE]!);
      u32[this.hw + H_HEADS + 2 * c] = next;
      if (!next) this.class_clear(c);
    }
  }

  /** A dead minor of at least t bytes from the index, or 0 (good fit). */
  private index_find(t: number): number {
    const u32 = this.u32;
    let c = class_of(t);
    const m = u32[this.hw + H_HEADS + 2 * c]!;
    if (m && u32[(m >>> 2) + M_SIZE]! >= t) return m;
    c = this.class_find_from(c + 1);
    return c < LA_CLASSES ? u32[this.hw + H_HEADS + 2 * c]! : 0;
  }

  // ---- gaps: dead minors, indexed or the best bet's tail ------------------------------

  private gap_is_tail(m: number): boolean {
    const u32 = this.u32;
    const mw = m >>> 2;
    return u32[mw + M_NEXT] === 0 && u32[mw + M_MAJOR] === u32[this.hw + H_BEST_BET];
  }

  private gap_insert(m: number): void {
    if (!this.gap_is_tail(m)) this.index_insert(m);
  }

  private gap_remove(m: number): void {
    if (!this.gap_is_tail(m)) this.index_remove(m);
  }

  /** The best bet's tail, or 0. */
  private best_bet_tail(): number {
    const bb = this.u32[this.hw + H_BEST_BET]!;
    if (!bb) return 0;
    const last = this.u32[(bb >>> 2) + J_LAST]!;
    return this.minor_is_dead(last) ? last : 0;
  }

  // ---- minor block surgery -------------------------------------------------------------

  /** b (the minor after a) becomes part of a. */
  private minor_absorb(a: number, b: number): void {
    const u32 = this.u32;
    const aw = a >>> 2, bw = b >>> 2;
    u32[aw + M_SIZE] = u32[aw + M_SIZE]! + u32[bw + M_SIZE]!;
    const bnext = u32[bw + M_NEXT]!;
    u32[aw + M_NEXT] = bnext;
    if (bnext) u32[(bnext >>> 2) + M_PREV] = a;
    else u32[(u32[aw + M_MAJOR]! >>> 2) + J_LAST] = a;
    this.set_magic(bw + M_MAGIC, 0, 0); // LA_MAGIC_GONE
  }

  /** Cuts a new dead minor off m at offset t; returns it (not yet indexed). */
  private minor_cut(m: number, t: number): number {
    const u32 = this.u32;
    const mw = m >>> 2;
    const r = m + t;
    const rw = r >>> 2;
    const mnext = u32[mw + M_NEXT]!;
    const maj = u32[mw + M_MAJOR]!;
    this.set(rw + M_PREV, m);
    this.set(rw + M_NEXT, mnext);
    this.set(rw + M_MAJOR, maj);
    this.set_magic(rw + M_MAGIC, LA_MAGIC_DEAD_LO, LA_MAGIC_DEAD_HI);
    this.set(rw + M_SIZE, u32[mw + M_SIZE]! - t);
    this.set(rw + M_REQ, 0);
    if (mnext) u32[(mnext >>> 2) + M_PREV] = r;
    else u32[(maj >>> 2) + J_LAST] = r;
    u32[mw + M_NEXT] = r;
    u32[mw + M_SIZE] = t;
    return r;
  }

  /** m keeps t bytes; a rest big enough for a minor becomes a gap. */
  private minor_split(m: number, t: number): void {
    if (this.u32[(m >>> 2) + M_SIZE]! - t < LA_MIN_MINOR) return;
    this.gap_insert(this.minor_cut(m, t));
  }

  private minor_mark_used(m: number, req: number): void {
    const u32 = this.u32;
    const mw = m >>> 2;
    const maj = u32[mw + M_MAJOR]!;
    const jw = maj >>> 2;
    const size = u32[mw + M_SIZE]!;
    const hw = this.hw;
    this.set_magic(mw + M_MAGIC, LA_MAGIC_USED_LO, LA_MAGIC_USED_HI);
    u32[mw + M_REQ] = req;
    u32[jw + J_USAGE] = u32[jw + J_USAGE]! + size;
    u32[jw + J_COUNT] = u32[jw + J_COUNT]! + 1;
    u32[hw + H_USAGE] = u32[hw + H_USAGE]! + size;
    u32[hw + H_LIVE] = u32[hw + H_LIVE]! + 1;
    if (u32[hw + H_SPARE] === maj) u32[hw + H_SPARE] = 0;
  }

  /** m (just marked dead) merged with its dead neighbours; the result is out of the index. */
  private minor_coalesce(m: number): number {
    const u32 = this.u32;
    const n = u32[(m >>> 2) + M_NEXT]!;
    if (n && this.minor_is_dead(n)) {
      this.gap_remove(n);
      this.minor_absorb(m, n);
    }
    const p = u32[(m >>> 2) + M_PREV]!;
    if (p && this.minor_is_dead(p)) {
      this.gap_remove(p);
      this.minor_absorb(p, m);
      m = p;
    }
    return m;
  }

  /** The live minor behind payload offset p, or 0 if p is not one. */
  private minor_validate(p: number): number {
    if (!p || (p & (LA_ALIGN - 1))) return 0; // low bits of any integer offset
    const u32 = this.u32;
    const m = p - SIZEOF_MINOR;
    if (m < 0 || !this.minor_is_used(m)) return 0;
    const mw = m >>> 2;
    const maj = u32[mw + M_MAJOR]!;
    if (u32[mw + M_MAJOR + 1] !== 0) return 0; // not an address in the space
    if (!maj || (maj & (this.ps - 1))) return 0;
    const jw = maj >>> 2;
    if (u32[jw + J_MAGIC] !== LA_MAGIC_MAJOR_LO || u32[jw + J_MAGIC + 1] !== LA_MAGIC_MAJOR_HI) return 0;
    if (u32[jw + J_HEAP] !== this.h || u32[jw + J_HEAP + 1] !== 0) return 0;
    const lo = maj + SIZEOF_MAJOR, hi = maj + u32[jw + J_SIZE]!;
    if (m < lo || m >= hi) return 0;
    const size = u32[mw + M_SIZE]!;
    if (u32[mw + M_SIZE + 1] !== 0) return 0; // > hi - m
    if (size < LA_MIN_MINOR || (size & (LA_ALIGN - 1)) || size > hi - m) return 0;
    return m;
  }

  // ---- majors --------------------------------------------------------------------------

  /** Pages of a standard major (the two growth rules of liballoc.c), within bounds. */
  private major_standard_pages(): number {
    const held = this.u32[this.hw + H_MAJOR_PAGES]!;
    let p = Math.floor(held / 4);
    if (p > LIBALLOC_MAJOR_QUARTER_PAGES) p = LIBALLOC_MAJOR_QUARTER_PAGES;
    const growth = Math.floor(held / 2 ** LIBALLOC_MAJOR_GROWTH_SHIFT);
    if (p < growth) p = growth;
    if (p < LIBALLOC_MAJOR_PAGES) p = LIBALLOC_MAJOR_PAGES;
    if (p > LIBALLOC_MAJOR_MAX_PAGES) p = LIBALLOC_MAJOR_MAX_PAGES;
    return p;
  }

  /** A new major with room for a minor of t bytes; its one dead minor, out of the index, or 0. */
  private major_new(t: number): number {
    const ps = this.ps;
    const u32 = this.u32;
    const hw = this.hw;
    const need = Math.floor((SIZEOF_MAJOR + t + ps - 1) / ps);
    let pages = this.major_standard_pages();
    if (need > pages) pages = need;
    const maj = this.pages.allocPage(pages);
    if (!maj) return 0;
    const jw = maj >>> 2;
    const majors = u32[hw + H_MAJORS]!;
    this.set(jw + J_PREV, 0);
    this.set(jw + J_NEXT, majors);
    if (majors) this.set((majors >>> 2) + J_PREV, maj);
    this.set(hw + H_MAJORS, maj);
    this.set_magic(jw + J_MAGIC, LA_MAGIC_MAJOR_LO, LA_MAGIC_MAJOR_HI);
    this.set(jw + J_HEAP, this.h);
    this.set(jw + J_PAGES, pages);
    const size = pages * ps;
    this.set(jw + J_SIZE, size);
    this.set(jw + J_USAGE, 0);
    this.set(jw + J_COUNT, 0);
    const m = maj + SIZEOF_MAJOR;
    const mw = m >>> 2;
    this.set(mw + M_PREV, 0);
    this.set(mw + M_NEXT, 0);
    this.set(mw + M_MAJOR, maj);
    this.set_magic(mw + M_MAGIC, LA_MAGIC_DEAD_LO, LA_MAGIC_DEAD_HI);
    const msize = size - SIZEOF_MAJOR;
    this.set(mw + M_SIZE, msize);
    this.set(mw + M_REQ, 0);
    this.set(jw + J_FIRST, m);
    this.set(jw + J_LAST, m);
    this.set(hw + H_MAJOR_COUNT, u32[hw + H_MAJOR_COUNT]! + 1);
    this.set(hw + H_MAJOR_PAGES, u32[hw + H_MAJOR_PAGES]! + pages);
    /* Best bet: the major with the largest tail. */
    const old = this.best_bet_tail();
    const rest = msize - t;
    if (!u32[hw + H_BEST_BET] || !old || rest > u32[(old >>> 2) + M_SIZE]!) {
      this.set(hw + H_BEST_BET, maj);
      if (old) this.index_insert(old);
    }
    return m;
  }

  /** Gives an empty major back (its one dead minor is out of the index). */
  private major_release(maj: number): void {
    const u32 = this.u32;
    const hw = this.hw;
    const jw = maj >>> 2;
    const prev = u32[jw + J_PREV]!, next = u32[jw + J_NEXT]!;
    if (prev) u32[(prev >>> 2) + J_NEXT] = next;
    else u32[hw + H_MAJORS] = next;
    if (next) u32[(next >>> 2) + J_PREV] = prev;
    if (u32[hw + H_BEST_BET] === maj) u32[hw + H_BEST_BET] = 0;
    if (u32[hw + H_SPARE] === maj) u32[hw + H_SPARE] = 0;
    const pages = u32[jw + J_PAGES]!;
    u32[hw + H_MAJOR_COUNT] = u32[hw + H_MAJOR_COUNT]! - 1;
    u32[hw + H_MAJOR_PAGES] = u32[hw + H_MAJOR_PAGES]! - pages;
    this.set_magic(jw + J_MAGIC, 0, 0);
    this.pages.freePage(maj, pages);
  }

  // ---- the operations ------------------------------------------------------------------

  /** A dead minor of at least t bytes, out of the index, or 0. */
  private gap_acquire(t: number): number {
    let m = this.index_find(t);
    if (m) {
      this.index_remove(m);
      return m;
    }
    m = this.best_bet_tail();
    if (m && this.u32[(m >>> 2) + M_SIZE]! >= t) return m;
    return this.major_new(t);
  }

  private heap_malloc(size: number): number {
    if (exceeds(size, LA_MAX_REQUEST)) return 0;
    const t = minor_total(size);
    const m = this.gap_acquire(t);
    if (!m) return 0;
    this.minor_split(m, t);
    this.minor_mark_used(m, size);
    return m + SIZEOF_MINOR;
  }

  private heap_memalign(align: number, size: number): number {
    if (align <= LA_ALIGN) return this.heap_malloc(size);
    if (!is_power_of_two(align)) return 0;
    if (exceeds(align, LA_MAX_REQUEST) || size > LA_MAX_REQUEST - align) return 0;
    const t = minor_total(size);
    let m = this.gap_acquire(t + align + LA_MIN_MINOR);
    if (!m) return 0;
    const pay = m + SIZEOF_MINOR;
    let lead = Math.ceil(pay / align) * align - pay;
    while (lead !== 0 && lead < LA_MIN_MINOR) lead += align;
    if (lead) {
      const a = this.minor_cut(m, lead); // m: the leading gap, a: aligned
      this.gap_insert(m);
      m = a;
    }
    this.minor_split(m, t);
    this.minor_mark_used(m, size);
    return m + SIZEOF_MINOR;
  }

  private heap_free(ptr: number): void {
    if (!ptr) return;
    const u32 = this.u32;
    const hw = this.hw;
    let m = this.minor_validate(ptr);
    if (!m) {
      u32[hw + H_BAD_FREES] = u32[hw + H_BAD_FREES]! + 1;
      return;
    }
    const mw = m >>> 2;
    const maj = u32[mw + M_MAJOR]!;
    const jw = maj >>> 2;
    const size = u32[mw + M_SIZE]!;
    u32[jw + J_USAGE] = u32[jw + J_USAGE]! - size;
    const count = u32[jw + J_COUNT]! - 1;
    u32[jw + J_COUNT] = count;
    u32[hw + H_USAGE] = u32[hw + H_USAGE]! - size;
    u32[hw + H_LIVE] = u32[hw + H_LIVE]! - 1;
    this.set_magic(mw + M_MAGIC, LA_MAGIC_DEAD_LO, LA_MAGIC_DEAD_HI);
    u32[mw + M_REQ] = 0;
    m = this.minor_coalesce(m);
    if (count === 0) {
      /* m spans the whole major: keep one of standard size, give back the rest */
      if (u32[hw + H_SPARE] || u32[jw + J_PAGES]! > LIBALLOC_SPARE_MAX_PAGES) {
        this.major_release(maj);
        return;
      }
      u32[hw + H_SPARE] = maj;
    }
    this.gap_insert(m);
  }

  /** m in use shrinks to t bytes (t <= m->size). */
  private minor_shrink(m: number, t: number): void {
    const u32 = this.u32;
    const mw = m >>> 2;
    const cut = u32[mw + M_SIZE]! - t;
    if (cut < LA_MIN_MINOR) return;
    const jw = u32[mw + M_MAJOR]! >>> 2;
    u32[jw + J_USAGE] = u32[jw + J_USAGE]! - cut;
    u32[this.hw + H_USAGE] = u32[this.hw + H_USAGE]! - cut;
    const r = this.minor_cut(m, t);
    const n = u32[(r >>> 2) + M_NEXT]!;
    if (n && this.minor_is_dead(n)) {
      this.gap_remove(n);
      this.minor_absorb(r, n);
    }
    this.gap_insert(r);
  }

  private heap_realloc(ptr: number, size: number): number {
    if (!ptr) return this.heap_malloc(size);
    const u32 = this.u32;
    const hw = this.hw;
    const m = this.minor_validate(ptr);
    if (!m) {
      u32[hw + H_BAD_FREES] = u32[hw + H_BAD_FREES]! + 1;
      return 0;
    }
    if (exceeds(size, LA_MAX_REQUEST)) return 0;
    const mw = m >>> 2;
    const t = minor_total(size);
    const msize = u32[mw + M_SIZE]!;
    if (t <= msize) {
      this.minor_shrink(m, t);
      u32[mw + M_REQ] = size;
      return ptr;
    }
    const n = u32[mw + M_NEXT]!;
    if (n && this.minor_is_dead(n) && msize + u32[(n >>> 2) + M_SIZE]! >= t) {
      /* grow into the dead neighbour */
      this.gap_remove(n);
      this.minor_absorb(m, n);
      this.minor_split(m, t);
      const grown = u32[mw + M_SIZE]! - msize;
      const jw = u32[mw + M_MAJOR]! >>> 2;
      u32[jw + J_USAGE] = u32[jw + J_USAGE]! + grown;
      u32[hw + H_USAGE] = u32[hw + H_USAGE]! + grown;
      u32[mw + M_REQ] = size;
      return ptr;
    }
    const q = this.heap_malloc(size);
    if (!q) return 0;
    const keep = msize - SIZEOF_MINOR;
    this.u8.copyWithin(q, ptr, ptr + (keep < size ? keep : size));
    this.heap_free(ptr);
    return q;
  }

  private heap_calloc(count: number, size: number): number {
    if (size && count > Math.floor(SIZE_MAX / size)) return 0;
    const bytes = count * size;
    const p = this.heap_malloc(bytes);
    if (p) this.u8.fill(0, p, p + bytes);
    return p;
  }

  // ---- the checker ---------------------------------------------------------------------

  /** Walks one major's minors by their sizes; counts broken invariants and the gaps to be indexed. */
  private check_major(maj: number, gaps: { n: number }): number {
    const u32 = this.u32;
    let bad = 0, usage = 0, count = 0;
    let pos = maj + SIZEOF_MAJOR;
    const end = maj + load64(u32, maj + 4 * J_SIZE);
    let prev = 0;
    let broken = false;
    while (pos < end) {
      const m = pos;
      if (end - pos < LA_MIN_MINOR) { bad++; broken = true; break; }
      const used = this.minor_is_used(m), dead = this.minor_is_dead(m);
      if (!used && !dead) bad++;
      if (load64(u32, m + 4 * M_MAJOR) !== maj) bad++;
      if (load64(u32, m + 4 * M_PREV) !== prev) bad++;
      const sz = load64(u32, m + 4 * M_SIZE);
      if (sz < LA_MIN_MINOR || sz % LA_ALIGN !== 0 || sz > end - pos) {
        bad++;
        broken = true;
        break;
      }
      const expect = pos + sz < end ? pos + sz : 0;
      if (load64(u32, m + 4 * M_NEXT) !== expect) bad++;
      if (used) {
        usage += sz;
        count++;
        if (load64(u32, m + 4 * M_REQ) > sz - SIZEOF_MINOR) bad++;
      }
      if (dead) {
        if (load64(u32, m + 4 * M_REQ) !== 0) bad++;
        if (prev && this.minor_is_dead(prev)) bad++;
        if (!this.gap_is_tail(m)) gaps.n++;
      }
      prev = m;
      pos += sz;
    }
    if (!broken) {
      if (load64(u32, maj + 4 * J_LAST) !== prev) bad++;
      if (load64(u32, maj + 4 * J_USAGE) !== usage) bad++;
      if (load64(u32, maj + 4 * J_COUNT) !== count) bad++;
    }
    return bad;
  }

  /** Walks the index: every listed minor dead, out of the tail, in its class, links and bitmaps consistent. */
  private check_index(gaps: number): number {
    const u32 = this.u32;
    const hw = this.hw;
    let bad = 0, listed = 0;
    let summary = 0;
    for (let w = 0; w < LA_BITMAP_WORDS; w++) {
      if (u32[hw + H_BITMAP + 2 * w] || u32[hw + H_BITMAP + 2 * w + 1]) summary |= 1 << w;
    }
    if (summary !== u32[hw + H_SUMMARY] || u32[hw + H_SUMMARY + 1] !== 0) bad++;
    for (let c = 0; c < LA_CLASSES; c++) {
      const marked = (u32[hw + H_BITMAP + (c >>> 5)]! >>> (c & 31)) & 1;
      const head = load64(u32, this.h + 4 * (H_HEADS + 2 * c));
      if (marked !== (head !== 0 ? 1 : 0)) bad++;
      let prev = 0;
      for (let m = head; m; m = load64(u32, m + 4 * M_FREE_NEXT)) {
        if (++listed > gaps + 1) return bad + 1;
        if (m % LA_ALIGN !== 0) return bad + 1;
        if (!this.minor_is_dead(m)) { bad++; break; }
        const size = load64(u32, m + 4 * M_SIZE);
        if (size < LA_MIN_MINOR || size % LA_ALIGN !== 0 || class_of(size) !== c) bad++;
        if (load64(u32, m + 4 * M_FREE_PREV) !== prev) bad++;
        if (this.gap_is_tail(m)) bad++;
        const maj = load64(u32, m + 4 * M_MAJOR);
        if (!maj || u32[(maj >>> 2) + J_MAGIC] !== LA_MAGIC_MAJOR_LO || u32[(maj >>> 2) + J_MAGIC + 1] !== LA_MAGIC_MAJOR_HI) bad++;
        prev = m;
      }
    }
    if (listed !== gaps) bad++;
    return bad;
  }

  private heap_check(): number {
    const u32 = this.u32;
    const hw = this.hw;
    const ps = this.ps;
    let bad = 0, majors = 0, usage = 0, live = 0, pages = 0;
    const gaps = { n: 0 };
    const majorCount = load64(u32, this.h + 4 * H_MAJOR_COUNT);
    const bestBet = u32[hw + H_BEST_BET]!, spare = u32[hw + H_SPARE]!;
    let sawBest = false, sawSpare = false;
    let prev = 0;
    for (let maj = u32[hw + H_MAJORS]!; maj; prev = maj, maj = load64(u32, maj + 4 * J_NEXT)) {
      if (++majors > majorCount) { bad++; break; }
      const jw = maj >>> 2;
      if (maj % ps !== 0 || u32[jw + J_MAGIC] !== LA_MAGIC_MAJOR_LO || u32[jw + J_MAGIC + 1] !== LA_MAGIC_MAJOR_HI) { bad++; break; }
      if (load64(u32, maj + 4 * J_PREV) !== prev) bad++;
      if (load64(u32, maj + 4 * J_HEAP) !== this.h) bad++;
      if (load64(u32, maj + 4 * J_FIRST) !== maj + SIZEOF_MAJOR) bad++;
      usage += load64(u32, maj + 4 * J_USAGE);
      live += load64(u32, maj + 4 * J_COUNT);
      const mpages = load64(u32, maj + 4 * J_PAGES);
      pages += mpages;
      if (maj === bestBet) sawBest = true;
      if (maj === spare) sawSpare = true;
      if (mpages === 0 || load64(u32, maj + 4 * J_SIZE) !== mpages * ps) { bad++; continue; }
      bad += this.check_major(maj, gaps);
    }
    if (majors !== majorCount) bad++;
    if (bestBet && !sawBest) bad++;
    if (spare && (!sawSpare || load64(u32, spare + 4 * J_COUNT) !== 0)) bad++;
    if (usage !== load64(u32, this.h + 4 * H_USAGE) || live !== load64(u32, this.h + 4 * H_LIVE) ||
        pages !== load64(u32, this.h + 4 * H_MAJOR_PAGES)) bad++;
    return bad + this.check_index(gaps.n);
  }

  // ---- the per-instance API ----------------------------------------------------------

  malloc(size: number): number {
    return this.heap_malloc(size);
  }

  memalign(align: number, size: number): number {
    return this.heap_memalign(align, size);
  }

  realloc(ptr: number, size: number): number {
    return this.heap_realloc(ptr, size);
  }

  calloc(count: number, size: number): number {
    return this.heap_calloc(count, size);
  }

  free(ptr: number): void {
    this.heap_free(ptr);
  }

  usableSize(ptr: number): number {
    if (!ptr) return 0;
    const m = this.minor_validate(ptr);
    return m ? this.u32[(m >>> 2) + M_SIZE]! - SIZEOF_MINOR : 0;
  }

  /** liballoc_walk: the control pages, then each major (newest first): its header and each minor. */
  walk(out: WalkBuilder): void {
    if (this.destroyed) return;
    const u32 = this.u32;
    out.add(this.h, u32[this.hw + H_CONTROL_PAGES]! * this.ps, this.h, 0, WalkState.meta, 0);
    let region = 1;
    for (let maj = u32[this.hw + H_MAJORS]!; maj; maj = load64(u32, maj + 4 * J_NEXT), region++) {
      out.add(maj, SIZEOF_MAJOR, maj, 0, WalkState.meta, region);
      const end = maj + u32[(maj >>> 2) + J_SIZE]!;
      for (let m = maj + SIZEOF_MAJOR; m < end; ) {
        const size = u32[(m >>> 2) + M_SIZE]!;
        if (end - m < LA_MIN_MINOR || size < LA_MIN_MINOR || size > end - m) break; /* broken: check() says so */
        out.add(m, size, m + SIZEOF_MINOR, size - SIZEOF_MINOR, this.minor_is_used(m) ? WalkState.used : WalkState.free, region);
        m += size;
      }
    }
  }

  /** liballoc_check: the heap's checker, 1 if the control structure is gone. */
  check(): number {
    if (this.destroyed) return 1;
    const u32 = this.u32;
    if (u32[this.hw + H_MAGIC] !== LA_MAGIC_HEAP_LO || u32[this.hw + H_MAGIC + 1] !== LA_MAGIC_HEAP_HI) return 1;
    return this.heap_check();
  }

  /** liballoc_bad_frees. */
  badFrees(): number {
    return load64(this.u32, this.h + 4 * H_BAD_FREES);
  }

  /** liballoc_destroy: every major (newest first), then the control pages. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const u32 = this.u32;
    let maj = u32[this.hw + H_MAJORS]!;
    while (maj) {
      const jw = maj >>> 2;
      const next = u32[jw + J_NEXT]!;
      this.set_magic(jw + J_MAGIC, 0, 0);
      this.pages.freePage(maj, u32[jw + J_PAGES]!);
      maj = next;
    }
    const controlPages = u32[this.hw + H_CONTROL_PAGES]!;
    this.set_magic(this.hw + H_MAGIC, 0, 0);
    this.pages.freePage(this.h, controlPages);
  }

  /** hooks.ctx and the four hook function pointers (page_size is stored as in C). */
  hostBytes(): Array<[number, number]> {
    return [
      [this.h + 4 * H_HOOKS_CTX, 8],
      [this.h + 4 * H_HOOKS_ALLOC, HOOKS_FNS_BYTES],
    ];
  }
}

/** liballoc_create over an ArenaPages space: the control pages first, or null. */
export const createLiballoc: PortFactory = (pages) => {
  const ps = pages.pageSize;
  if (ps < 4096 || ps > LA_MAX_PAGE_SIZE || (ps & (ps - 1))) return null;
  const controlPages = Math.floor((SIZEOF_HEAP + ps - 1) / ps);
  const h = pages.allocPage(controlPages);
  if (!h) return null;
  pages.u8.fill(0, h, h + SIZEOF_HEAP);
  const u32 = pages.u32;
  const hw = h >>> 2;
  u32[hw + H_MAGIC] = LA_MAGIC_HEAP_LO;
  u32[hw + H_MAGIC + 1] = LA_MAGIC_HEAP_HI;
  u32[hw + H_PAGE_SIZE] = ps;
  u32[hw + H_PAGE_SIZE + 1] = 0;
  u32[hw + H_CONTROL_PAGES] = controlPages;
  u32[hw + H_CONTROL_PAGES + 1] = 0;
  return new LiballocHeap(pages, h);
};
