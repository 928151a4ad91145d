/**
 * dlmalloc.ts — the TypeScript twin of vendor/dlmalloc/dlmalloc.c, over an ArenaPages
 * address space. Same constants, bins, trie walks, splitting, trimming and checker,
 * function for function, with the C names:
 *
 *   C (dlmalloc.c)                         here
 *   ---------------------------------      ---------------------------------------------
 *   build options, fixed constants         HL_DL_*, PINUSE … SEG_MAGIC (module constants)
 *   struct chunk / tchunk / segfoot /      byte offsets C_* / S_* / D_* / M_* below:
 *     dnode / mstate                         the C layouts, field for field
 *   small accessors (chunksize, cinuse…)   Dlmalloc#chunksize, #cinuse … (inline reads)
 *   request2size, set_inuse,               request2size, #set_inuse, #set_free_chunk
 *     set_free_chunk
 *   insert_small / unlink_small            #insert_small / #unlink_small
 *   smallmap >> idx, its lowest bit        #small_from (the 64-bit map as two words)
 *   tree_index, leftshift_for_tree_index   tree_index, leftshift_for_tree_index
 *   insert_large / unlink_large            #insert_large / #unlink_large
 *   subtree_smallest, tree_best_fit        #subtree_smallest, #tree_best_fit
 *   seg_link … grow_segment                #seg_link … #grow_segment
 *   direct_alloc / _free / _shrink         #direct_alloc / #direct_free / #direct_shrink
 *   heap_alloc, internal_malloc, …         #heap_alloc, #internal_malloc, …
 *   create_mspace_with_hooks               createDlmalloc
 *   destroy_mspace, mspace_*               destroy(), malloc(), free(), calloc(), …
 *   check_* (the checker)                  #check_segment … #check_all, check()
 *
 * Pointers are offsets in the address space (0 = NULL), stored as 64-bit fields with
 * a zero high word. Every chunk, header and link lives in pages.u8/u32 exactly where
 * the C keeps it. Chunk sizes and heads stay below 4 GiB (the space does), so they
 * are read from the low word; request sizes (nb, bytes) may reach 2**53 and are only
 * handled with arithmetic that stays exact there (no 32-bit operators on them).
 * The hooks copy in the mstate (ctx and the four function pointers) is host memory
 * in C: the port leaves it zero (hostBytes), but stores page_size as C does.
 */
import type { ArenaPages } from '../pages/arena.js';
import type { PortAllocator, PortFactory } from './types.js';
import { WalkState, type WalkBuilder } from '../walk.js';
import * as memory from './memory.js';

const { exceeds } = memory; /* a const of its own: see ./memory.ts */

// ---- build options (dlmalloc.c defaults) -------------------------------------------
const HL_DL_GRANULARITY = 64 * 1024;
const HL_DL_MMAP_THRESHOLD = 256 * 1024;
const HL_DL_TRIM_THRESHOLD = 512 * 1024;
const HL_DL_SEGMENT_GROWTH_SHIFT = 6;
/** x >> HL_DL_SEGMENT_GROWTH_SHIFT, exact for any x below 2**53 */
const SEGMENT_GROWTH_DIVISOR = 2 ** HL_DL_SEGMENT_GROWTH_SHIFT;

// ---- fixed constants ------------------------------------------------------------------
const PINUSE = 1;
const CINUSE = 2;
const DIRECT = 4;
const FENCE = 8;
const FLAG_MASK = 15;

const CHUNK_ALIGN = 16;
const CHUNK_HEADER = 16;
const CHUNK_OVERHEAD = 8;
const MIN_CHUNK = 32;
const NSMALLBINS = 64;
const SMALLBIN_SHIFT = 4;
const MIN_LARGE = NSMALLBINS << SMALLBIN_SHIFT; // 1024
const NTREEBINS = 32;
const TREEBIN_SHIFT = 10;
const DIRECT_NODE = 32;
const SEG_FOOT = 64;
/** PTRDIFF_MAX - 2**24: no JS number below 2**53 exceeds it (as a double it reads 2**63). */
const MAX_REQUEST = 2 ** 63 - 1 - 2 ** 24;
const MAX_ALIGN = 2 ** 40;
const MSTATE_MAGIC_LO = 0x6c6c6f63; // 0x646c6d616c6c6f63 "dlmalloc"
const MSTATE_MAGIC_HI = 0x646c6d61;
const SEG_MAGIC_LO = 0x454e5421; // 0x5345474d454e5421
const SEG_MAGIC_HI = 0x5345474d;
/** NOT_IN_TREE = ~(size_t)0: both words all ones; tree bin indexes are < 32. */
const NOT_IN_TREE_WORD = 0xffffffff;

const TWO_32 = 4294967296;

// ---- layouts (byte offsets; every field is 8 bytes) -----------------------------------
// struct chunk / tchunk
const C_PREV_FOOT = 0;
const C_HEAD = 8;
const C_FD = 16;
const C_BK = 24;
const C_CHILD0 = 32;
const C_CHILD1 = 40;
const C_PARENT = 48;
const C_INDEX = 56;
// struct segfoot
const S_PREV_FOOT = 0;
const S_HEAD = 8;
const S_BASE = 16;
const S_SIZE = 24;
const S_FIRST = 32;
const S_NEXT = 40;
const S_PREV = 48;
const S_MAGIC = 56;
// struct dnode
const D_NEXT = 0;
const D_PREV = 8;
const D_PAGES = 16;
const D_MAGIC = 24;
// struct mstate
const M_MAGIC = 0;
const M_HOOKS_CTX = 8; // host pointer
const M_HOOKS_PAGE_SIZE = 16;
const M_HOOKS_FNS = 24; // alloc_page, free_page, lock, unlock, resize_page, prefault_page: host pointers
const HOOKS_FNS_BYTES = 48;
const M_SMALLMAP = 72;
const M_TREEMAP = 80;
const M_DVSIZE = 88;
const M_TOPSIZE = 96;
const M_DV = 104;
const M_TOP = 112;
const M_CLEAN_FROM = 120;
const M_SEG = 128;
const M_DIRECT = 136;
const M_DIRECT_COUNT = 144;
const M_FOOTPRINT = 152;
const M_MAX_FOOTPRINT = 160;
const M_GRANULARITY = 168;
const M_MMAP_THRESHOLD = 176;
const M_TRIM_THRESHOLD = 184;
const M_SMALLBINS = 192;
const M_TREEBINS = M_SMALLBINS + NSMALLBINS * 8; // 704
const SIZEOF_MSTATE = M_TREEBINS + NTREEBINS * 8; // 960

/** Safety bound on any list or tree walk in the checker. */
const WALK_LIMIT = 2 ** 26;

// ---- arithmetic helpers (exact for every number below 2**53) ---------------------------

/** align_up for a power of two `a`. */
/* The 32-bit paths compare with Smi constants only: 2**31 and 2**32 are heap
 * numbers, and a compare with one made V8 convert the other side to a double. */
const align_up = function align_up(x: number, a: number): number {
  if (x <= 0x7fffffff - (a - 1)) return (x + a - 1) & -a;
  return Math.ceil(x / a) * a;
};
const align_down = function align_down(x: number, a: number): number {
  if (x <= 0x7fffffff && a <= 0x40000000) return x & -a;
  return Math.floor(x / a) * a;
};
const is_pow2 = function is_pow2(x: number): boolean {
  /* 32-bit for the usual alignment (Math.log2 is a double) */
  if (x > 0 && x <= 0x7fffffff) return (x & (x - 1)) === 0;
  return x > 0 && Number.isInteger(Math.log2(x));
};
/** Bit b of s (s < 2**54), 0 for b < 0 (what C's repeated `bits <<= 1` leaves). */
const bit_at = function bit_at(s: number, b: number): number {
  if (b < 0) return 0;
  if (s <= 0x7fffffff) return b < 32 ? (s >>> b) & 1 : 0; /* a Smi constant (2**32 made V8 compare in doubles) */
  return Math.floor(s / 2 ** b) % 2;
};
/** lowest_bit_index of a non-zero 32-bit map (as ./memory.ts's ffs32: no negation). */
const lowest_bit_index = function lowest_bit_index(x: number): number {
  return 31 - Math.clz32(x ^ (x - 1));
};

/** Chunk size for a request: user bytes + 8, rounded to 16, at least 32. */
const request2size = function request2size(bytes: number): number {
  const s = align_up(bytes + CHUNK_OVERHEAD, CHUNK_ALIGN);
  return s < MIN_CHUNK ? MIN_CHUNK : s;
};

const small_index = function small_index(s: number): number {
  return s >>> SMALLBIN_SHIFT;
};

/** Bin i covers half of a power-of-two range above 1024; bin 31 takes everything larger. */
const tree_index = function tree_index(s: number): number {
  if (s >= 2 ** 26) return NTREEBINS - 1; // s >> 10 > 0xFFFF
  const x = s >>> TREEBIN_SHIFT;
  if (x === 0) return 0;
  const k = 31 - Math.clz32(x);
  return (k << 1) + ((s >>> (k + TREEBIN_SHIFT - 1)) & 1);
};
const leftshift_for_tree_index = function leftshift_for_tree_index(i: number): number {
  if (i === NTREEBINS - 1) return 0;
  return 63 - ((i >>> 1) + TREEBIN_SHIFT - 2);
};

class Dlmalloc implements PortAllocator {
  readonly name = 'dlmalloc';
  declare readonly pages: ArenaPages;
  declare readonly u8: Uint8Array;
  declare readonly u32: Uint32Array;
  /** The mstate: the base of the first segment. */
  declare readonly m: number;
  declare readonly ps: number;
  /** The `size_t *zero_from` out-parameter of heap_alloc / internal_malloc. */
  zf = 0;

  constructor(pages: ArenaPages, m: number) {
    this.pages = pages;
    this.u8 = pages.u8;
    this.u32 = pages.u32;
    this.m = m;
    this.ps = pages.pageSize;
    this.iSmallmap = (m + M_SMALLMAP) >>> 2;
    this.iTreemap = (m + M_TREEMAP) >>> 2;
    this.iDvsize = (m + M_DVSIZE) >>> 2;
    this.iTopsize = (m + M_TOPSIZE) >>> 2;
    this.iDv = (m + M_DV) >>> 2;
    this.iTop = (m + M_TOP) >>> 2;
    this.iClean = (m + M_CLEAN_FROM) >>> 2;
    this.iSmallbins = (m + M_SMALLBINS) >>> 2;
    this.iTreebins = (m + M_TREEBINS) >>> 2;
    this.mmapThreshold = HL_DL_MMAP_THRESHOLD;
    this.trimThreshold = HL_DL_TRIM_THRESHOLD;
  }

  // ---- raw fields -------------------------------------------------------------------
  /** A pointer or a sub-4-GiB size field (low word). */
  rd(at: number): number {
    return this.u32[at >>> 2]!;
  }
  wr(at: number, v: number): void {
    const i = at >>> 2;
    this.u32[i] = v;
    this.u32[i + 1] = 0;
  }
  rd64(at: number): number {
    const i = at >>> 2;
    return this.u32[i]! + this.u32[i + 1]! * TWO_32;
  }
  wr64(at: number, v: number): void {
    const i = at >>> 2;
    this.u32[i] = v >>> 0;
    this.u32[i + 1] = Math.floor(v / TWO_32);
  }

  // mstate fields. Their word indexes are fixed; only this port writes the mstate and
  // every value stored there is below 2**32, so the high words stay 0 from creation.
  declare readonly iSmallmap: number;
  declare readonly iTreemap: number;
  declare readonly iDvsize: number;
  declare readonly iTopsize: number;
  declare readonly iDv: number;
  declare readonly iTop: number;
  declare readonly iClean: number;
  declare readonly iSmallbins: number;
  declare readonly iTreebins: number;
  declare readonly mmapThreshold: number;
  declare readonly trimThreshold: number;
  /** Bit i of the 64-bit smallmap (word iSmallmap + (i >> 5)). */
  smallmap_bit(i: number): number {
    return (this.u32[this.iSmallmap + (i >>> 5)]! >>> (i & 31)) & 1;
  }
  /**
   * The lowest non-empty small bin at or above idx, or -1: C's `smallmap >> idx`
   * and its lowest bit, over the map's two 32-bit words (JS bit operators are 32-bit).
   */
  small_from(idx: number): number {
    const u32 = this.u32;
    if (idx < 32) {
      const lo = u32[this.iSmallmap]! >>> idx;
      if (lo) return idx + lowest_bit_index(lo);
      const hi = u32[this.iSmallmap + 1]!;
      return hi ? 32 + lowest_bit_index(hi) : -1;
    }
    const hi = u32[this.iSmallmap + 1]! >>> (idx - 32);
    return hi ? idx + lowest_bit_index(hi) : -1;
  }
  get treemap(): number { return this.u32[this.iTreemap]!; }
  set treemap(v: number) { this.u32[this.iTreemap] = v; }
  get dvsize(): number { return this.u32[this.iDvsize]!; }
  set dvsize(v: number) { this.u32[this.iDvsize] = v; }
  get topsize(): number { return this.u32[this.iTopsize]!; }
  set topsize(v: number) { this.u32[this.iTopsize] = v; }
  get dv(): number { return this.u32[this.iDv]!; }
  set dv(v: number) { this.u32[this.iDv] = v; }
  get top(): number { return this.u32[this.iTop]!; }
  set top(v: number) { this.u32[this.iTop] = v; }
  get clean_from(): number { return this.u32[this.iClean]!; }
  set clean_from(v: number) { this.u32[this.iClean] = v; }
  get seg(): number { return this.u32[(this.m + M_SEG) >>> 2]!; }
  set seg(v: number) { this.wr(this.m + M_SEG, v); }
  get direct(): number { return this.u32[(this.m + M_DIRECT) >>> 2]!; }
  set direct(v: number) { this.wr(this.m + M_DIRECT, v); }
  get direct_count(): number { return this.rd64(this.m + M_DIRECT_COUNT); }
  set direct_count(v: number) { this.wr64(this.m + M_DIRECT_COUNT, v); }
  get footprint(): number { return this.rd64(this.m + M_FOOTPRINT); }
  set footprint(v: number) { this.wr64(this.m + M_FOOTPRINT, v); }
  get max_footprint(): number { return this.rd64(this.m + M_MAX_FOOTPRINT); }
  set max_footprint(v: number) { this.wr64(this.m + M_MAX_FOOTPRINT, v); }
  /** m->mmap_threshold and m->trim_threshold: set at creation, never changed (as in C). */
  get mmap_threshold(): number { return this.mmapThreshold; }
  get trim_threshold(): number { return this.trimThreshold; }
  get granularity(): number { return this.rd64(this.m + M_GRANULARITY); }
  smallbin(i: number): number { return this.u32[this.iSmallbins + 2 * i]!; }
  set_smallbin(i: number, p: number): void { this.u32[this.iSmallbins + 2 * i] = p; }
  treebin(i: number): number { return this.u32[this.iTreebins + 2 * i]!; }
  set_treebin(i: number, p: number): void { this.u32[this.iTreebins + 2 * i] = p; }

  // ---- small accessors ------------------------------------------------------------------
  head(p: number): number { return this.u32[(p + C_HEAD) >>> 2]!; }
  set_head(p: number, v: number): void {
    const i = (p + C_HEAD) >>> 2;
    this.u32[i] = v;
    this.u32[i + 1] = 0;
  }
  prev_foot(p: number): number { return this.u32[p >>> 2]!; }
  set_prev_foot(p: number, v: number): void {
    const i = p >>> 2;
    this.u32[i] = v;
    this.u32[i + 1] = 0;
  }
  fd(p: number): number { return this.u32[(p + C_FD) >>> 2]!; }
  bk(p: number): number { return this.u32[(p + C_BK) >>> 2]!; }
  set_fd(p: number, v: number): void { this.wr(p + C_FD, v); }
  set_bk(p: number, v: number): void { this.wr(p + C_BK, v); }
  child(t: number, d: number): number { return this.u32[(t + C_CHILD0 + d * 8) >>> 2]!; }
  set_child(t: number, d: number, v: number): void { this.wr(t + C_CHILD0 + d * 8, v); }
  parent(t: number): number { return this.u32[(t + C_PARENT) >>> 2]!; }
  set_parent(t: number, v: number): void { this.wr(t + C_PARENT, v); }
  /** The index field's low word (NOT_IN_TREE reads 0xffffffff). */
  index(t: number): number { return this.u32[(t + C_INDEX) >>> 2]!; }
  set_index(t: number, i: number): void { this.wr(t + C_INDEX, i); }
  set_not_in_tree(t: number): void {
    const i = (t + C_INDEX) >>> 2;
    this.u32[i] = NOT_IN_TREE_WORD;
    this.u32[i + 1] = NOT_IN_TREE_WORD;
  }
  is_not_in_tree(t: number): boolean {
    const i = (t + C_INDEX) >>> 2;
    return this.u32[i] === NOT_IN_TREE_WORD && this.u32[i + 1] === NOT_IN_TREE_WORD;
  }

  chunksize(p: number): number { return (this.u32[(p + C_HEAD) >>> 2]! & ~FLAG_MASK) >>> 0; }
  cinuse(p: number): boolean { return (this.u32[(p + C_HEAD) >>> 2]! & CINUSE) !== 0; }
  pinuse(p: number): boolean { return (this.u32[(p + C_HEAD) >>> 2]! & PINUSE) !== 0; }
  is_direct(p: number): boolean { return (this.u32[(p + C_HEAD) >>> 2]! & DIRECT) !== 0; }
  is_fence(p: number): boolean { return (this.u32[(p + C_HEAD) >>> 2]! & FENCE) !== 0; }
  next_chunk(p: number): number { return p + this.chunksize(p); }

  /** In use: the chunk's own bit, and the next chunk's PINUSE. */
  set_inuse(p: number, s: number): void {
    this.set_head(p, s | (this.head(p) & PINUSE) | CINUSE);
    const n = (p + s + C_HEAD) >>> 2;
    this.u32[n] = this.u32[n]! | PINUSE;
  }
  /** Free: PINUSE set, size repeated in the next chunk's prev_foot, next's PINUSE cleared. */
  set_free_chunk(p: number, s: number): void {
    this.set_head(p, s | PINUSE);
    const n = p + s;
    this.set_prev_foot(n, s);
    const h = (n + C_HEAD) >>> 2;
    this.u32[h] = this.u32[h]! & ~PINUSE;
  }

  seg_is_first(s: number): boolean { return this.rd64(s + S_BASE) === this.m; }
  footer_of_top(): number { return this.top + this.topsize; }

  footprint_add(bytes: number): void {
    const f = this.footprint + bytes;
    this.footprint = f;
    if (f > this.max_footprint) this.max_footprint = f;
  }

  // ---- small bins: LIFO rings of one exact size --------------------------------------
  insert_small(p: number, s: number): void {
    const u32 = this.u32;
    const i = small_index(s);
    const hi = this.iSmallbins + 2 * i;
    const h = u32[hi]!;
    const pfd = (p + C_FD) >>> 2; // p->fd, p->bk: words pfd, pfd + 2 (high words pfd + 1, pfd + 3)
    if (!h) {
      u32[pfd] = p; u32[pfd + 1] = 0;
      u32[pfd + 2] = p; u32[pfd + 3] = 0;
      const w = this.iSmallmap + (i >>> 5);
      u32[w] = u32[w]! | (1 << (i & 31));
    } else {
      const hbk = (h + C_BK) >>> 2;
      const hb = u32[hbk]!;
      u32[pfd] = h; u32[pfd + 1] = 0;
      u32[pfd + 2] = hb; u32[pfd + 3] = 0;
      u32[(hb + C_FD) >>> 2] = p; // hb->fd = p (high word already 0: hb is a binned chunk)
      u32[hbk] = p;
    }
    u32[hi] = p;
  }

  unlink_small(p: number, s: number): void {
    const u32 = this.u32;
    const i = small_index(s);
    const pfd = (p + C_FD) >>> 2;
    const f = u32[pfd]!;
    const hi = this.iSmallbins + 2 * i;
    if (f === p) {
      u32[hi] = 0;
      const w = this.iSmallmap + (i >>> 5);
      u32[w] = u32[w]! & ~(1 << (i & 31));
      return;
    }
    const b = u32[pfd + 2]!;
    u32[(b + C_FD) >>> 2] = f; // links of binned chunks: high words are 0 already
    u32[(f + C_BK) >>> 2] = b;
    if (u32[hi] === p) u32[hi] = f;
  }

  // ---- tree bins: bitwise tries by size -------------------------------------------------
  insert_large(x: number, s: number): void {
    const i = tree_index(s);
    this.set_index(x, i);
    this.set_child(x, 0, 0);
    this.set_child(x, 1, 0);
    let t = this.treebin(i);
    if (!t) {
      this.treemap = (this.treemap | (1 << i)) >>> 0;
      this.set_treebin(i, x);
      this.set_parent(x, 0);
      this.set_fd(x, x);
      this.set_bk(x, x);
      return;
    }
    // bits = s << leftshift: the branch bit at depth d is bit (63 - leftshift - d) of s
    let b = 63 - leftshift_for_tree_index(i);
    for (;;) {
      if (this.chunksize(t) === s) { // join t's ring, behind t
        const f = this.fd(t);
        this.set_fd(t, x);
        this.set_bk(f, x);
        this.set_fd(x, f);
        this.set_bk(x, t);
        this.set_parent(x, 0);
        this.set_not_in_tree(x);
        return;
      }
      const dir = bit_at(s, b);
      b--;
      const c = this.child(t, dir);
      if (c) {
        t = c;
      } else {
        this.set_child(t, dir, x);
        this.set_parent(x, t);
        this.set_fd(x, x);
        this.set_bk(x, x);
        return;
      }
    }
  }

  unlink_large(x: number): void {
    if (this.is_not_in_tree(x)) { // a ring member outside the trie
      const f = this.fd(x);
      const bk = this.bk(x);
      this.set_fd(bk, f);
      this.set_bk(f, bk);
      return;
    }
    let r = 0;
    if (this.fd(x) !== x) { // a same-size sibling takes x's place
      r = this.fd(x);
      const bk = this.bk(x);
      this.set_fd(bk, r);
      this.set_bk(r, bk);
    } else { // a leaf of x's subtree takes x's place
      // rp: the field (byte offset) holding r
      let rp = this.child(x, 1) ? x + C_CHILD1 : this.child(x, 0) ? x + C_CHILD0 : 0;
      if (rp) {
        r = this.rd(rp);
        while (this.child(r, 1) || this.child(r, 0)) {
          rp = this.child(r, 1) ? r + C_CHILD1 : r + C_CHILD0;
          r = this.rd(rp);
        }
        this.wr(rp, 0);
      }
    }
    const xp = this.parent(x);
    const xi = this.index(x);
    if (r) {
      this.set_parent(r, xp);
      this.set_index(r, xi);
      const c0 = this.child(x, 0);
      const c1 = this.child(x, 1);
      this.set_child(r, 0, c0);
      this.set_child(r, 1, c1);
      if (c0) this.set_parent(c0, r);
      if (c1) this.set_parent(c1, r);
    }
    if (!xp) {
      this.set_treebin(xi, r);
      if (!r) this.treemap = (this.treemap & ~(1 << xi)) >>> 0;
    } else if (this.child(xp, 0) === x) {
      this.set_child(xp, 0, r);
    } else {
      this.set_child(xp, 1, r);
    }
  }

  insert_chunk(p: number, s: number): void {
    if (s < MIN_LARGE) this.insert_small(p, s);
    else this.insert_large(p, s);
  }
  unlink_chunk(p: number, s: number): void {
    if (s < MIN_LARGE) this.unlink_small(p, s);
    else this.unlink_large(p);
  }

  /** Smallest chunk in the subtree of t (t included) that fits nb. */
  subtree_smallest(t: number, best: number, nb: number): number {
    while (t) {
      const s = this.chunksize(t);
      if (s >= nb && (!best || s - nb < this.chunksize(best) - nb)) best = t;
      const c0 = this.child(t, 0);
      t = c0 ? c0 : this.child(t, 1);
    }
    return best;
  }

  /** Best fit for a large request nb (nb may be any size below 2**53). */
  tree_best_fit(nb: number): number {
    const i = tree_index(nb);
    let best = 0;
    let t = this.treebin(i);
    let rest = 0;
    if (t) {
      let b = 63 - leftshift_for_tree_index(i);
      for (;;) {
        const s = this.chunksize(t);
        if (s >= nb && (!best || s - nb < this.chunksize(best) - nb)) {
          best = t;
          if (s === nb) return best;
        }
        const dir = bit_at(nb, b);
        const right = this.child(t, 1);
        const next = this.child(t, dir);
        if (right && right !== next) rest = right;
        if (!next) break;
        t = next;
        b--;
      }
    }
    if (!rest && !best) {
      if (i + 1 < NTREEBINS) {
        const above = (this.treemap & ~((1 << (i + 1)) - 1)) >>> 0;
        if (above) rest = this.treebin(lowest_bit_index(above));
      }
    }
    return this.subtree_smallest(rest, best, nb);
  }

  // ---- segments -----------------------------------------------------------------------
  seg_link(s: number): void {
    const head = this.seg;
    this.wr(s + S_PREV, 0);
    this.wr(s + S_NEXT, head);
    if (head) this.wr(head + S_PREV, s);
    this.seg = s;
  }

  seg_unlink(s: number): void {
    const prev = this.rd(s + S_PREV);
    const next = this.rd(s + S_NEXT);
    if (prev) this.wr(prev + S_NEXT, next);
    else this.seg = next;
    if (next) this.wr(next + S_PREV, prev);
  }

  /** Writes the footer of a segment [base, base+size) whose chunks start at first. */
  seg_init(base: number, size: number, first: number): number {
    const s = base + size - SEG_FOOT;
    this.wr(s + S_PREV_FOOT, 0);
    this.wr(s + S_HEAD, SEG_FOOT | FENCE | CINUSE | PINUSE);
    this.wr(s + S_BASE, base);
    this.wr64(s + S_SIZE, size);
    this.wr(s + S_FIRST, first);
    this.wr(s + S_NEXT, 0);
    this.wr(s + S_PREV, 0);
    this.u32[(s + S_MAGIC) >>> 2] = SEG_MAGIC_LO;
    this.u32[(s + S_MAGIC + 4) >>> 2] = SEG_MAGIC_HI;
    return s;
  }

  seg_release(s: number): void {
    const base = this.rd(s + S_BASE);
    const size = this.rd64(s + S_SIZE);
    this.seg_unlink(s);
    this.footprint = this.footprint - size;
    this.pages.freePage(base, size / this.ps);
  }

  /** A free chunk p of size s that is a whole segment (not the first) goes back. */
  release_if_whole_segment(p: number, s: number): boolean {
    const n = p + s;
    if (!this.is_fence(n)) return false;
    if (this.rd(n + S_FIRST) !== p || this.seg_is_first(n)) return false;
    this.seg_release(n);
    return true;
  }

  /** Makes the free chunk p (size s, which ends at a segment footer) the top. */
  set_top(p: number, s: number): void {
    this.top = p;
    this.topsize = s;
    this.set_head(p, s | PINUSE);
    const n = (p + s + C_HEAD) >>> 2;
    this.u32[n] = this.u32[n]! | PINUSE;
  }

  /** Places a chunk that is not in use: coalesces, then top, dv, released segment or bin. */
  dispose_chunk(p: number, s: number): void {
    let to_dv = false;
    if (!this.pinuse(p)) {
      const ps = this.prev_foot(p);
      const prev = p - ps;
      if (prev === this.dv) to_dv = true;
      else this.unlink_chunk(prev, ps);
      p = prev;
      s += ps;
    }
    const next = p + s;
    if (!this.cinuse(next)) {
      if (next === this.top) {
        if (to_dv) { this.dv = 0; this.dvsize = 0; }
        this.set_top(p, s + this.topsize);
        if (this.topsize > this.trim_threshold) this.trim_top(this.trim_threshold / 2);
        return;
      }
      const ns = this.chunksize(next);
      if (next === this.dv) to_dv = true;
      else this.unlink_chunk(next, ns);
      s += ns;
    }
    if (to_dv) { this.dv = 0; this.dvsize = 0; }
    this.set_free_chunk(p, s);
    if (this.release_if_whole_segment(p, s)) return;
    if (to_dv) { this.dv = p; this.dvsize = s; }
    else this.insert_chunk(p, s);
  }

  /** Trim: swap top for another segment's free tail, or give back top's tail pages. */
  trim_top(pad: number): boolean {
    const ts = this.footer_of_top();
    const top = this.top;
    if (top === this.rd(ts + S_FIRST) && !this.seg_is_first(ts)) {
      let best = 0;
      for (let s = this.seg; s; s = this.rd(s + S_NEXT)) {
        if (s === ts || (this.rd(s + S_HEAD) & PINUSE)) continue;
        const q = s - this.prev_foot(s);
        if (this.chunksize(q) >= pad + MIN_CHUNK && (!best || this.chunksize(q) > this.chunksize(best))) best = q;
      }
      if (best) {
        const bs = this.chunksize(best);
        if (best === this.dv) { this.dv = 0; this.dvsize = 0; }
        else this.unlink_chunk(best, bs);
        this.seg_release(ts);
        this.set_top(best, bs);
        this.clean_from = best + bs; // nothing known zero
        return true;
      }
    }
    const base = this.rd(ts + S_BASE);
    const end = base + this.rd64(ts + S_SIZE);
    const keep = align_up(top + pad + MIN_CHUNK + SEG_FOOT, this.ps);
    if (keep >= end) return false;
    const nf = keep - SEG_FOOT;
    this.u8.copyWithin(nf, ts, ts + SEG_FOOT); // *nf = *ts
    this.wr64(nf + S_SIZE, keep - base);
    this.wr(nf + S_PREV_FOOT, 0);
    this.wr(nf + S_HEAD, SEG_FOOT | FENCE | CINUSE | PINUSE);
    const prev = this.rd(nf + S_PREV);
    const next = this.rd(nf + S_NEXT);
    if (prev) this.wr(prev + S_NEXT, nf);
    else this.seg = nf;
    if (next) this.wr(next + S_PREV, nf);
    this.pages.freePage(keep, (end - keep) / this.ps);
    this.footprint = this.footprint - (end - keep);
    const topsize = nf - top;
    this.topsize = topsize;
    this.set_head(top, topsize | PINUSE);
    if (this.clean_from > nf) this.clean_from = nf;
    return true;
  }

  /** A new segment big enough for a chunk of nb from its top; false if no pages. */
  grow_segment(nb: number): boolean {
    const ps = this.ps;
    let want = nb + MIN_CHUNK + SEG_FOOT;
    const growth = Math.floor(this.footprint / SEGMENT_GROWTH_DIVISOR);
    if (want < growth) want = growth;
    const size = align_up(align_up(want, this.granularity), ps);
    const base = this.pages.allocPage(size / ps);
    if (!base) return false;
    this.footprint_add(size);
    const sf = this.seg_init(base, size, base);
    this.seg_link(sf);
    const old = this.top;
    const olds = this.topsize;
    if (!this.release_if_whole_segment(old, olds)) {
      this.set_free_chunk(old, olds);
      this.insert_chunk(old, olds);
    }
    this.set_top(base, size - SEG_FOOT);
    this.clean_from = base + CHUNK_HEADER;
    return true;
  }

  // ---- direct (mapped) chunks ---------------------------------------------------------
  direct_alloc(bytes: number, align: number): number {
    const ps = this.ps;
    const want = bytes < MIN_CHUNK ? MIN_CHUNK : bytes;
    const slack = align > CHUNK_ALIGN ? align : 0;
    const map = align_up(DIRECT_NODE + CHUNK_HEADER + want + slack, ps);
    const raw = this.pages.allocPage(map / ps);
    if (!raw) return 0;
    const base = raw;
    const end = base + map;
    const mem = align_up(base + DIRECT_NODE + CHUNK_HEADER, align);
    const p = mem - CHUNK_HEADER;
    const keep_base = align_down(p - DIRECT_NODE, ps);
    const keep_end = align_up(mem + want, ps);
    if (keep_base > base) this.pages.freePage(raw, (keep_base - base) / ps);
    if (keep_end < end) this.pages.freePage(keep_end, (end - keep_end) / ps);
    this.set_prev_foot(p, p - keep_base);
    this.set_head(p, (keep_end - p) | DIRECT | CINUSE | PINUSE);
    const n = p - DIRECT_NODE;
    this.wr64(n + D_PAGES, (keep_end - keep_base) / ps);
    this.u32[(n + D_MAGIC) >>> 2] = SEG_MAGIC_LO;
    this.u32[(n + D_MAGIC + 4) >>> 2] = SEG_MAGIC_HI;
    this.wr(n + D_PREV, 0);
    const head = this.direct;
    this.wr(n + D_NEXT, head);
    if (head) this.wr(head + D_PREV, n);
    this.direct = n;
    this.direct_count = this.direct_count + 1;
    this.footprint_add(keep_end - keep_base);
    return mem;
  }

  direct_free(p: number): void {
    const n = p - DIRECT_NODE;
    const prev = this.rd(n + D_PREV);
    const next = this.rd(n + D_NEXT);
    if (prev) this.wr(prev + D_NEXT, next);
    else this.direct = next;
    if (next) this.wr(next + D_PREV, prev);
    this.direct_count = this.direct_count - 1;
    const pages = this.rd64(n + D_PAGES);
    this.footprint = this.footprint - pages * this.ps;
    this.pages.freePage(p - this.prev_foot(p), pages);
  }

  /** Shrink in place to `bytes` user bytes, giving back whole tail pages. */
  direct_shrink(p: number, bytes: number): void {
    const ps = this.ps;
    const want = bytes < MIN_CHUNK ? MIN_CHUNK : bytes;
    const end = p + this.chunksize(p);
    const keep_end = align_up(p + CHUNK_HEADER + want, ps);
    if (keep_end >= end) return;
    const n = p - DIRECT_NODE;
    const give = (end - keep_end) / ps;
    this.pages.freePage(keep_end, give);
    this.wr64(n + D_PAGES, this.rd64(n + D_PAGES) - give);
    this.footprint = this.footprint - give * ps;
    this.set_head(p, (keep_end - p) | DIRECT | CINUSE | PINUSE);
  }

  // ---- allocation ---------------------------------------------------------------------
  usable_of(p: number): number {
    return this.chunksize(p) - (this.is_direct(p) ? CHUNK_HEADER : CHUNK_OVERHEAD);
  }

  /** The remainder of a split for a small request becomes the dv; the old dv goes to its bin. */
  replace_dv(r: number, rs: number): void {
    const dvs = this.dvsize;
    if (dvs) this.insert_chunk(this.dv, dvs);
    this.dv = r;
    this.dvsize = rs;
  }

  /** Takes free chunk p (unlinked) of size s for nb; the remainder goes to the dv or a bin. */
  use_free_chunk(p: number, s: number, nb: number, rem_to_dv: boolean): number {
    if (s - nb < MIN_CHUNK) {
      this.set_inuse(p, s);
    } else {
      this.set_head(p, nb | PINUSE | CINUSE);
      const r = p + nb;
      this.set_free_chunk(r, s - nb);
      if (rem_to_dv) this.replace_dv(r, s - nb);
      else this.insert_chunk(r, s - nb);
    }
    return p + CHUNK_HEADER;
  }

  /** The chunk for nb from bins, dv or top, without new pages; 0 if none fits. Sets zf. */
  heap_alloc(nb: number): number {
    let mem: number;
    if (nb < MIN_LARGE) {
      const idx = small_index(nb);
      const j = this.small_from(idx); // C: bits = smallmap >> idx
      if (j >= 0 && j <= idx + 1) { // exact fit, or 16 more (C: bits & 3)
        const p = this.smallbin(j);
        const s = j << SMALLBIN_SHIFT;
        this.unlink_small(p, s);
        this.set_inuse(p, s);
        mem = p + CHUNK_HEADER;
        this.zf = p + s + CHUNK_OVERHEAD;
        return mem;
      }
      if (nb > this.dvsize) {
        if (j >= 0) { // the next non-empty small bin; the rest becomes dv
          const p = this.smallbin(j);
          const s = j << SMALLBIN_SHIFT;
          this.unlink_small(p, s);
          mem = this.use_free_chunk(p, s, nb, true);
          this.zf = p + this.chunksize(p) + CHUNK_OVERHEAD;
          return mem;
        }
        const tm = this.treemap;
        if (tm) { // the smallest tree chunk; the rest becomes dv
          let t = this.treebin(lowest_bit_index(tm));
          t = this.subtree_smallest(t, 0, 0);
          const s = this.chunksize(t);
          this.unlink_large(t);
          mem = this.use_free_chunk(t, s, nb, true);
          this.zf = t + this.chunksize(t) + CHUNK_OVERHEAD;
          return mem;
        }
      }
    } else if (this.treemap) {
      const t = this.tree_best_fit(nb);
      if (t) {
        const dvs = this.dvsize;
        const s = this.chunksize(t);
        if (nb > dvs || s - nb < dvs - nb) {
          this.unlink_large(t);
          mem = this.use_free_chunk(t, s, nb, false);
          this.zf = t + this.chunksize(t) + CHUNK_OVERHEAD;
          return mem;
        }
      }
    }
    const dvsize = this.dvsize;
    if (nb <= dvsize) {
      const p = this.dv;
      const rs = dvsize - nb;
      if (rs >= MIN_CHUNK) {
        const r = p + nb;
        this.dv = r;
        this.dvsize = rs;
        this.set_free_chunk(r, rs);
        this.set_head(p, nb | PINUSE | CINUSE);
      } else {
        this.dv = 0;
        this.dvsize = 0;
        this.set_inuse(p, dvsize);
      }
      this.zf = p + this.chunksize(p) + CHUNK_OVERHEAD;
      return p + CHUNK_HEADER;
    }
    const topsize = this.topsize;
    if (nb + MIN_CHUNK <= topsize) { // carve from top
      const p = this.top;
      const mem_a = p + CHUNK_HEADER;
      const clean = this.clean_from;
      this.zf = clean > mem_a ? clean : mem_a;
      const t = p + nb;
      const ts = topsize - nb;
      this.top = t;
      this.topsize = ts;
      this.set_head(t, ts | PINUSE);
      this.set_head(p, nb | PINUSE | CINUSE);
      const low = t + CHUNK_HEADER;
      if (clean < low) this.clean_from = low;
      return mem_a;
    }
    return 0;
  }

  internal_malloc(bytes: number): number {
    if (exceeds(bytes, MAX_REQUEST)) return 0;
    const nb = request2size(bytes);
    if (nb >= this.mmap_threshold) {
      const mem = this.direct_alloc(bytes, CHUNK_ALIGN);
      if (mem) { this.zf = mem; return mem; }
    }
    const mem = this.heap_alloc(nb);
    if (mem) return mem;
    if (!this.grow_segment(nb)) return 0;
    return this.heap_alloc(nb);
  }

  internal_free(mem: number): void {
    const p = mem - CHUNK_HEADER;
    if (this.is_direct(p)) { this.direct_free(p); return; }
    if (!this.cinuse(p) || this.is_fence(p)) return; // not an in-use chunk: ignore
    this.dispose_chunk(p, this.chunksize(p));
  }

  /** Cuts an in-use heap chunk down to nb, disposing of the tail. */
  shrink_chunk(p: number, nb: number): void {
    const s = this.chunksize(p);
    if (s - nb < MIN_CHUNK) return;
    this.set_head(p, nb | (this.head(p) & PINUSE) | CINUSE);
    const r = p + nb;
    this.set_head(r, (s - nb) | PINUSE);
    this.dispose_chunk(r, s - nb);
  }

  internal_memalign(align: number, bytes: number): number {
    if (align <= CHUNK_ALIGN) return this.internal_malloc(bytes);
    if (exceeds(align, MAX_ALIGN)) return 0;
    if (!is_pow2(align)) {
      let a = CHUNK_ALIGN;
      while (a < align) a *= 2;
      align = a;
    }
    if (exceeds(bytes, MAX_REQUEST - align)) return 0; /* align <= 2**40: the limit stays above 2**62 */
    const nb = request2size(bytes);
    if (nb + align >= this.mmap_threshold) {
      const mem = this.direct_alloc(bytes, align);
      if (mem) return mem;
    }
    // over-allocate, then free the misaligned lead and the tail
    const big = nb + align + MIN_CHUNK;
    let mem = this.heap_alloc(big);
    if (!mem) {
      if (!this.grow_segment(big)) return 0;
      mem = this.heap_alloc(big);
    }
    let p = mem - CHUNK_HEADER;
    if (mem % align !== 0) {
      let lead = align_up(mem, align) - mem;
      if (lead < MIN_CHUNK) lead += align;
      const q = p + lead;
      const qs = this.chunksize(p) - lead;
      this.set_head(q, qs | CINUSE); // its predecessor, the lead, is about to be free
      this.set_head(p, lead | PINUSE);
      this.dispose_chunk(p, lead);
      p = q;
    }
    this.shrink_chunk(p, nb);
    return p + CHUNK_HEADER;
  }

  internal_realloc(mem: number, bytes: number): number {
    if (exceeds(bytes, MAX_REQUEST)) return 0;
    const p = mem - CHUNK_HEADER;
    const nb = request2size(bytes);
    const u8 = this.u8;
    if (this.is_direct(p)) {
      const usable = this.usable_of(p);
      if (bytes <= usable) {
        if (nb < this.mmap_threshold) { // small now: move into a segment
          const n = this.internal_malloc(bytes);
          if (n) {
            u8.copyWithin(n, mem, mem + bytes);
            this.direct_free(p);
            return n;
          }
        }
        this.direct_shrink(p, bytes);
        return mem;
      }
      // grow: fresh mapping + copy
      const n = this.internal_malloc(bytes);
      if (!n) return 0;
      u8.copyWithin(n, mem, mem + usable);
      this.direct_free(p);
      return n;
    }
    if (!this.cinuse(p) || this.is_fence(p)) return 0;
    const s = this.chunksize(p);
    if (s >= nb) {
      this.shrink_chunk(p, nb);
      return mem;
    }
    const next = p + s;
    const top = this.top;
    if (next === top && s + this.topsize >= nb + MIN_CHUNK) {
      const rest = s + this.topsize - nb;
      this.set_head(p, nb | (this.head(p) & PINUSE) | CINUSE);
      const t = p + nb;
      this.top = t;
      this.topsize = rest;
      this.set_head(t, rest | PINUSE);
      const low = t + CHUNK_HEADER;
      if (this.clean_from < low) this.clean_from = low;
      return mem;
    }
    if (!this.cinuse(next) && next !== top && s + this.chunksize(next) >= nb) {
      const ns = this.chunksize(next);
      if (next === this.dv) { this.dv = 0; this.dvsize = 0; }
      else this.unlink_chunk(next, ns);
      this.set_inuse(p, s + ns);
      this.shrink_chunk(p, nb);
      return mem;
    }
    const n = this.internal_malloc(bytes);
    if (!n) return 0;
    u8.copyWithin(n, mem, mem + this.usable_of(p));
    this.internal_free(mem);
    return n;
  }

  // ---- public entry points (mspace_*) -----------------------------------------------
  /** lock_ms: the mstate's magic must be intact. */
  live(): boolean {
    const i = (this.m + M_MAGIC) >>> 2;
    return this.u32[i] === MSTATE_MAGIC_LO && this.u32[i + 1] === MSTATE_MAGIC_HI;
  }

  malloc(size: number): number {
    if (!this.live()) return 0;
    return this.internal_malloc(size);
  }

  free(ptr: number): void {
    if (!ptr) return;
    if (!this.live()) return;
    this.internal_free(ptr);
  }

  calloc(count: number, size: number): number {
    if (size && count > MAX_REQUEST / size) return 0;
    const bytes = count * size;
    if (!this.live()) return 0;
    this.zf = 0;
    const mem = this.internal_malloc(bytes);
    if (mem) { // clear only what is not known to read zero already
      const zf = this.zf;
      const dirty = zf > mem ? zf - mem : 0;
      this.u8.fill(0, mem, mem + (dirty < bytes ? dirty : bytes));
    }
    return mem;
  }

  realloc(ptr: number, size: number): number {
    if (!ptr) return this.malloc(size);
    if (!this.live()) return 0;
    return this.internal_realloc(ptr, size);
  }

  memalign(align: number, size: number): number {
    if (!this.live()) return 0;
    return this.internal_memalign(align, size);
  }

  usableSize(ptr: number): number {
    if (!ptr) return 0;
    const p = ptr - CHUNK_HEADER;
    if (!this.cinuse(p)) return 0;
    return this.usable_of(p);
  }

  /** destroy_mspace: direct chunks, then every segment but the first, then the first. */
  destroy(): void {
    if (!this.live()) return;
    const m = this.m;
    this.u32[(m + M_MAGIC) >>> 2] = 0;
    this.u32[(m + M_MAGIC + 4) >>> 2] = 0;
    while (this.direct) this.direct_free(this.direct + DIRECT_NODE);
    let first = 0;
    let firstBase = 0;
    let firstSize = 0;
    for (let s = this.seg, next = 0; s; s = next) {
      next = this.rd(s + S_NEXT);
      const base = this.rd(s + S_BASE);
      const size = this.rd64(s + S_SIZE);
      if (base === m) {
        first = s;
        firstBase = base;
        firstSize = size;
      } else {
        this.pages.freePage(base, size / this.ps);
      }
    }
    if (first) this.pages.freePage(firstBase, firstSize / this.ps);
  }

  hostBytes(): Array<[number, number]> {
    return [
      [this.m + M_HOOKS_CTX, 8],
      [this.m + M_HOOKS_FNS, HOOKS_FNS_BYTES],
    ];
  }

  /** mspace_walk: per segment (newest first) the mstate (first one only), its chunks (top as free) and footer; then each direct chunk. */
  walk(out: WalkBuilder): void {
    if (!this.live()) return;
    let region = 1;
    for (let s = this.seg; s; s = this.rd(s + S_NEXT), region++) {
      const base = this.rd(s + S_BASE);
      const first = this.rd(s + S_FIRST);
      if (first > base) out.add(base, first - base, base, 0, WalkState.meta, region);
      for (let p = first; p < s; ) {
        const size = this.chunksize(p);
        if (size < MIN_CHUNK || size > s - p) break; /* broken: check() says so */
        const used = this.cinuse(p) && p !== this.top;
        out.add(p, size, p + CHUNK_HEADER, used ? this.usable_of(p) : size - CHUNK_HEADER, used ? WalkState.used : WalkState.free, region);
        p += size;
      }
      out.add(s, SEG_FOOT, s, 0, WalkState.meta, region);
    }
    for (let n = this.direct; n; n = this.rd(n + D_NEXT)) {
      const p = n + DIRECT_NODE;
      const base = p - this.prev_foot(p);
      if (n > base) out.add(base, n - base, base, 0, WalkState.meta, 0);
      out.add(n, DIRECT_NODE, n, 0, WalkState.meta, 0);
      out.add(p, this.chunksize(p), p + CHUNK_HEADER, this.usable_of(p), WalkState.used, 0);
    }
  }

  // ---- the checker (check_all and its helpers) -----------------------------------------
  check(): number {
    if (!this.live()) return 1;
    return this.check_all();
  }

  /** Is [a, a + len) inside some segment's chunk area (its footer included when with_footer)? */
  in_segments(a: number, len: number, with_footer: boolean): boolean {
    let n = 0;
    for (let s = this.seg; s && n < WALK_LIMIT; s = this.rd(s + S_NEXT), n++) {
      const end = s + (with_footer ? SEG_FOOT : 0);
      if (a >= this.rd(s + S_FIRST) && a + len <= end) return true;
    }
    return false;
  }
  plausible_free(p: number): boolean {
    return (p & (CHUNK_ALIGN - 1)) === 0 && this.in_segments(p, MIN_CHUNK, false);
  }

  check_segment(s: number, w: WalkCounts): number {
    let bad = 0;
    const ps = this.ps;
    if (this.u32[(s + S_MAGIC) >>> 2] !== SEG_MAGIC_LO || this.u32[(s + S_MAGIC + 4) >>> 2] !== SEG_MAGIC_HI) return 1;
    const base = this.rd64(s + S_BASE);
    const size = this.rd64(s + S_SIZE);
    const first = this.rd64(s + S_FIRST);
    if (base % ps) bad++;
    if (!size || size % ps) bad++;
    if (s !== base + size - SEG_FOOT) return bad + 1;
    if (first < base || first >= s || first % CHUNK_ALIGN) return bad + 1;
    if (this.seg_is_first(s) !== (first !== base)) bad++;
    if (this.rd64(s + S_HEAD) - (this.rd(s + S_HEAD) & PINUSE) !== (SEG_FOOT | FENCE | CINUSE)) bad++;
    w.seg_bytes += size;
    let prev_inuse = true;
    let prev_free_size = 0;
    let p = first;
    const limit = s;
    const top = this.top;
    const dv = this.dv;
    while (p < limit) {
      const sz = this.chunksize(p);
      if ((this.head(p) & (DIRECT | FENCE)) || this.u32[(p + C_HEAD + 4) >>> 2] || sz < MIN_CHUNK || p + sz > limit) {
        bad++; // the walk cannot go on in this segment
        return bad;
      }
      if (this.pinuse(p) !== prev_inuse) bad++;
      if (!prev_inuse && this.rd64(p + C_PREV_FOOT) !== prev_free_size) bad++;
      if (p === top) {
        w.top_seen++;
        if (sz !== this.topsize || p + sz !== limit) bad++;
        if (!this.pinuse(p)) bad++;
        prev_inuse = true;
      } else if (!this.cinuse(p)) {
        if (!prev_inuse) bad++; // two free chunks side by side
        if (!this.pinuse(p)) bad++;
        if (p === dv) {
          w.dv_seen++;
          if (sz !== this.dvsize) bad++;
        } else {
          w.binned_free++;
        }
        prev_inuse = false;
        prev_free_size = sz;
      } else {
        prev_inuse = true;
      }
      p += sz;
    }
    if (p !== limit) bad++;
    if (this.pinuse(s) !== prev_inuse) bad++;
    if (!prev_inuse && this.rd64(s + S_PREV_FOOT) !== prev_free_size) bad++;
    return bad;
  }

  check_free_member(p: number): number {
    let bad = 0;
    if (this.cinuse(p) || !this.pinuse(p) || (this.head(p) & (DIRECT | FENCE))) bad++;
    if (p === this.top || p === this.dv) bad++;
    const n = p + this.chunksize(p);
    if (this.in_segments(n, CHUNK_HEADER, true)) {
      if (this.rd64(n + C_PREV_FOOT) !== this.chunksize(p) || this.pinuse(n)) bad++;
    } else {
      bad++;
    }
    return bad;
  }

  check_small_bins(count: { n: number }): number {
    let bad = 0;
    for (let i = 0; i < NSMALLBINS; i++) {
      const h = this.smallbin(i);
      const bit = this.smallmap_bit(i);
      if ((h !== 0 ? 1 : 0) !== bit) bad++;
      if (!h) continue;
      if (i < small_index(MIN_CHUNK)) { bad++; continue; }
      let q = h;
      let steps = 0;
      do {
        if (!this.plausible_free(q) || !this.plausible_free(this.fd(q))) { bad++; break; }
        if (this.chunksize(q) !== i << SMALLBIN_SHIFT) bad++;
        bad += this.check_free_member(q);
        if (this.bk(this.fd(q)) !== q) bad++;
        count.n++;
        q = this.fd(q);
      } while (q !== h && ++steps < WALK_LIMIT);
    }
    return bad;
  }

  /** One trie node; `path` holds the branch directions taken from the root. */
  check_tree_node(t: number, i: number, depth: number, path: number[], parent: number, count: { n: number }): number {
    let bad = 0;
    if (depth > 63 || !this.plausible_free(t)) return 1;
    const s = this.chunksize(t);
    if (this.is_not_in_tree(t) || this.index(t) !== i || this.u32[(t + C_INDEX + 4) >>> 2] || tree_index(s) !== i) bad++;
    if (this.parent(t) !== parent) bad++;
    // the top `depth` bits of s << leftshift must be the path
    const top = 63 - leftshift_for_tree_index(i);
    for (let d = 0; d < depth; d++) {
      if (bit_at(s, top - d) !== path[d]) { bad++; break; }
    }
    bad += this.check_free_member(t);
    count.n++;
    // the ring of same-size chunks
    let r = t;
    let steps = 0;
    for (;;) {
      const f = this.fd(r);
      if (!this.plausible_free(f)) { bad++; break; }
      if (this.bk(f) !== r) bad++;
      r = f;
      if (r === t || ++steps >= WALK_LIMIT) break;
      if (this.chunksize(r) !== s || !this.is_not_in_tree(r)) bad++;
      bad += this.check_free_member(r);
      count.n++;
    }
    for (let d = 0; d < 2; d++) {
      const c = this.child(t, d);
      if (c) {
        path[depth] = d;
        bad += this.check_tree_node(c, i, depth + 1, path, t, count);
      }
    }
    return bad;
  }

  check_tree_bins(count: { n: number }): number {
    let bad = 0;
    if (this.u32[(this.m + M_TREEMAP + 4) >>> 2]) bad++; // treemap >> NTREEBINS
    const treemap = this.treemap;
    for (let i = 0; i < NTREEBINS; i++) {
      const t = this.treebin(i);
      if ((t !== 0 ? 1 : 0) !== ((treemap >>> i) & 1)) bad++;
      if (t) bad += this.check_tree_node(t, i, 0, [], 0, count);
    }
    return bad;
  }

  check_direct(bytes: { n: number }): number {
    let bad = 0;
    let n = 0;
    const ps = this.ps;
    let prev = 0;
    for (let d = this.direct; d && n < WALK_LIMIT; prev = d, d = this.rd(d + D_NEXT), n++) {
      if (this.u32[(d + D_MAGIC) >>> 2] !== SEG_MAGIC_LO || this.u32[(d + D_MAGIC + 4) >>> 2] !== SEG_MAGIC_HI ||
        this.rd64(d + D_PREV) !== prev) { bad++; break; }
      const p = d + DIRECT_NODE;
      const lead = this.rd64(p + C_PREV_FOOT);
      const base = p - lead;
      if ((this.head(p) & FLAG_MASK) !== (DIRECT | CINUSE | PINUSE)) bad++;
      if (lead < DIRECT_NODE || lead >= DIRECT_NODE + ps || base % ps) bad++;
      const pages = this.rd64(d + D_PAGES);
      if (this.chunksize(p) + lead !== pages * ps) bad++;
      bytes.n += pages * ps;
    }
    if (n !== this.direct_count) bad++;
    return bad;
  }

  check_all(): number {
    let bad = 0;
    const w: WalkCounts = { binned_free: 0, top_seen: 0, dv_seen: 0, seg_bytes: 0 };
    let nseg = 0;
    let first_seen = 0;
    let prev = 0;
    for (let s = this.seg; s && nseg < WALK_LIMIT; prev = s, s = this.rd(s + S_NEXT), nseg++) {
      if (this.rd64(s + S_PREV) !== prev) bad++;
      bad += this.check_segment(s, w);
      if (this.u32[(s + S_MAGIC) >>> 2] === SEG_MAGIC_LO && this.u32[(s + S_MAGIC + 4) >>> 2] === SEG_MAGIC_HI &&
        this.seg_is_first(s)) first_seen++;
    }
    if (first_seen !== 1) bad++;
    // top, dv
    const topsize = this.topsize;
    if (w.top_seen !== 1) bad++;
    if (topsize < MIN_CHUNK || topsize % CHUNK_ALIGN) bad++;
    if (this.dv) {
      if (w.dv_seen !== 1 || this.dvsize < MIN_CHUNK) bad++;
    } else if (this.dvsize || w.dv_seen) {
      bad++;
    }
    // top's clean tail reads zero
    const top = this.top;
    const top_end = top + topsize;
    const clean = this.clean_from;
    if (clean < top + CHUNK_HEADER || clean > top_end) {
      bad++;
    } else if (w.top_seen === 1) {
      const u8 = this.u8;
      for (let i = clean; i < top_end; i++) {
        if (u8[i]) { bad++; break; }
      }
    }
    // bins hold exactly the free chunks found in the segments
    const binned = { n: 0 };
    bad += this.check_small_bins(binned);
    bad += this.check_tree_bins(binned);
    if (binned.n !== w.binned_free) bad++;
    // accounting
    const direct_bytes = { n: 0 };
    bad += this.check_direct(direct_bytes);
    if (this.footprint !== w.seg_bytes + direct_bytes.n) bad++;
    if (this.max_footprint < this.footprint) bad++;
    return bad;
  }
}

interface WalkCounts {
  binned_free: number; // free chunks seen walking segments (not top, not dv)
  top_seen: number;
  dv_seen: number;
  seg_bytes: number;
}

/** create_mspace_with_hooks over `pages`: null if the first segment cannot be had. */
export const createDlmalloc: PortFactory = (pages) => {
  const ps = pages.pageSize;
  const gran = HL_DL_GRANULARITY > ps ? HL_DL_GRANULARITY : ps;
  const first = align_up(SIZEOF_MSTATE, CHUNK_ALIGN);
  const size = align_up(first + MIN_CHUNK + SEG_FOOT, gran);
  const base = pages.allocPage(size / ps);
  if (!base) return null;
  const d = new Dlmalloc(pages, base);
  const m = base;
  pages.u8.fill(0, m, m + SIZEOF_MSTATE);
  d.wr64(m + M_HOOKS_PAGE_SIZE, ps);
  d.wr64(m + M_GRANULARITY, gran);
  d.wr64(m + M_MMAP_THRESHOLD, HL_DL_MMAP_THRESHOLD);
  d.wr64(m + M_TRIM_THRESHOLD, HL_DL_TRIM_THRESHOLD);
  d.seg_link(d.seg_init(base, size, base + first));
  d.set_top(base + first, size - first - SEG_FOOT);
  d.clean_from = base + first + CHUNK_HEADER;
  d.footprint_add(size);
  pages.u32[(m + M_MAGIC) >>> 2] = MSTATE_MAGIC_LO;
  pages.u32[(m + M_MAGIC + 4) >>> 2] = MSTATE_MAGIC_HI;
  return d;
};
