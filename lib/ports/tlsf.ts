/**
 * tlsf.ts — vendor/tlsf/tlsf.c in TypeScript, decision for decision.
 *
 * The same two-level segregated fit over the arena page source (./pages.ts): the
 * same constants, the same lists, the same splitting, pool sizing, spare-pool
 * release and calloc clearing, and the same bytes in memory. Read it beside the C:
 *
 *   tlsf.c                              here
 *   ---------------------------------   -----------------------------------------
 *   build options, enum, #defines       the constants below (same names)
 *   block_header (prev_phys, size,      B_PREV_PHYS, B_SIZE, B_NEXT_FREE,
 *     next_free, prev_free)               B_PREV_FREE: byte offsets in a block
 *   pool_record                         P_NEXT .. P_RESERVED, from the record
 *   control (fl_bitmap, sl_bitmap,      C_FL_BITMAP .. C_HOOKS, from the control
 *     blocks, pools_*, spare, ...)        structure at the heap's first pages
 *   block_*, pool_* accessors           module functions over `m` (the u32 view)
 *   mapping_insert / mapping_round /    the same; the (fl, sl) out-parameters come
 *     mapping_search                      back as one list index (list_of)
 *   search_suitable_block, list_*,      TlsfHeap methods (the `control *c` is
 *     block_insert/remove, merge,         `this`, its bytes at this.c)
 *     split, pool_*, heap_*, tlsf_*
 *   check_pool_blocks, pool_contains,   the same, counting the same invariants
 *     check_lists, tlsf_check
 *
 * Memory: every pointer is a 64-bit field holding an offset in the page space
 * (high word 0, 0 = NULL); size_t fields are 64-bit, little-endian, like x86-64.
 * The control structure is 14424 bytes (sizeof(control) in C): fl_bitmap at 0,
 * sl_bitmap[55] at 8, blocks[55][32] at 232, pools_first 14312, pools_last
 * 14320, spare 14328, pool_count 14336, control_pages 14344, owned_bytes
 * 14352, hooks 14360 (64 bytes: ctx, page_size, alloc_page, free_page, lock,
 * unlock, resize_page, prefault_page). The C's hooks hold host pointers; the
 * port writes only page_size there, and hostBytes() names the other seven fields. The arena page
 * source has no resize_page, so the C's block_owns_pool is never true over it
 * and the port leaves the pool_resize_for path out.
 *
 * Numbers: request sizes are JS numbers up to 2**53; every size computation that
 * may pass 2**32 uses division / Math.ceil (exact for powers of two), never `>>>`
 * or `&`. Blocks live in the page space (< 4 GiB), so a block header's size
 * always fits its low word: the hot paths read that word alone (the port writes
 * both words, as C does), and the checker reads all 64 bits.
 */
import * as memory from './memory.js';
import type { ArenaPages } from '../pages/arena.js';
import type { PortAllocator, PortFactory } from './types.js';
import { WalkState, type WalkBuilder } from '../walk.js';

/* Module constants, not imports or function declarations: V8 folds a const
 * binding into the code that calls it, but checks an import (the module's
 * cell, for the temporal dead zone) and a function declaration's binding (it
 * can be reassigned) at every inlined call. See ./memory.ts. */
const { exceeds, ffs32, fls32, flsSize, load64, loadPtr, reaches, store64, storePtr } = memory;

/* ---- build options (tlsf.c defaults) ------------------------------------ */

const TLSF_SL_INDEX_COUNT_LOG2 = 5;
const TLSF_FL_INDEX_MAX = 62;
const TLSF_POOL_MIN_BYTES = 64 * 1024;
const TLSF_POOL_GROWTH_SHIFT = 5;
const TLSF_SPARE_MAX_BYTES = 256 * 1024;
const TLSF_OWN_POOL_MIN_BYTES = 256 * 1024;

/* ---- constants a user must not tune ------------------------------------- */

const ALIGN_SIZE_LOG2 = 4;
const SL_INDEX_COUNT_LOG2 = TLSF_SL_INDEX_COUNT_LOG2;
const SL_INDEX_COUNT = 1 << SL_INDEX_COUNT_LOG2;
const FL_INDEX_MAX = TLSF_FL_INDEX_MAX;
const FL_INDEX_SHIFT = SL_INDEX_COUNT_LOG2 + ALIGN_SIZE_LOG2;
const FL_INDEX_COUNT = FL_INDEX_MAX - FL_INDEX_SHIFT + 2;

const ALIGN_SIZE = 2 ** ALIGN_SIZE_LOG2;
const SMALL_BLOCK_SIZE = 2 ** FL_INDEX_SHIFT;
const BLOCK_SIZE_MAX = 2 ** FL_INDEX_MAX;
const POOL_MIN_BYTES = TLSF_POOL_MIN_BYTES;
const SPARE_MAX_BYTES = TLSF_SPARE_MAX_BYTES;
const OWN_POOL_MIN_BYTES = TLSF_OWN_POOL_MIN_BYTES;
/** x >> TLSF_POOL_GROWTH_SHIFT, exact for any x below 2**53 */
const POOL_GROWTH_DIVISOR = 2 ** TLSF_POOL_GROWTH_SHIFT;
/** POOL_MAGIC 0x544c5346504f4f4c ("TLSFPOOL"), as its two 32-bit halves. */
const POOL_MAGIC_LO = 0x504f4f4c;
const POOL_MAGIC_HI = 0x544c5346;
/** SIZE_MAX + 1 (2**64): as a double, SIZE_MAX itself rounds to it. */
const SIZE_LIMIT = 2 ** 64;

/* ---- blocks (see the diagram in tlsf.c) ----------------------------------- */

const B_PREV_PHYS = 0;
const B_SIZE = 8;
const B_NEXT_FREE = 16;
const B_PREV_FREE = 24;

const BLOCK_FREE = 1;
const BLOCK_PREV_FREE = 2;
const BLOCK_FLAG_MASK = ALIGN_SIZE - 1;
const BLOCK_HEADER_SIZE = B_NEXT_FREE;
const BLOCK_SIZE_MIN = 32; /* sizeof(block_header) */

/* ---- pools ------------------------------------------------------------------ */

/* pool_record, at pool start + BLOCK_HEADER_SIZE (the head sentinel's payload) */
const P_NEXT = 0;
const P_PREV = 8;
const P_BYTES = 16;
const P_OWNED = 24;
const P_MAGIC = 32;
const P_RESERVED = 40;
/** pool_record.owned: a pool blocks are carved from, or one made for a single large block (0, the
 * caller's memory, is C's tlsf_add_pool alone: the port's pools all come from its page source). */
const POOL_SHARED = 1;
const POOL_OWN = 2;
const POOL_RECORD_SIZE = 48;

const HEAD_SENTINEL_SIZE = BLOCK_HEADER_SIZE + POOL_RECORD_SIZE;
const TAIL_SENTINEL_SIZE = BLOCK_HEADER_SIZE;
const POOL_OVERHEAD = HEAD_SENTINEL_SIZE + TAIL_SENTINEL_SIZE;

/* ---- the control structure ------------------------------------------------ */

const C_FL_BITMAP = 0;
const C_SL_BITMAP = 8;
const C_BLOCKS = C_SL_BITMAP + ((FL_INDEX_COUNT * 4 + 7) & ~7);
const C_POOLS_FIRST = C_BLOCKS + FL_INDEX_COUNT * SL_INDEX_COUNT * 8;
const C_POOLS_LAST = C_POOLS_FIRST + 8;
const C_SPARE = C_POOLS_LAST + 8;
const C_POOL_COUNT = C_SPARE + 8;
const C_CONTROL_PAGES = C_POOL_COUNT + 8;
const C_OWNED_BYTES = C_CONTROL_PAGES + 8;
const C_HOOKS = C_OWNED_BYTES + 8;
const HOOKS_PAGE_SIZE = 8;
const HOOKS_SIZE = 64;
const CONTROL_SIZE = C_HOOKS + HOOKS_SIZE; /* sizeof(control) */

/** Word (u32) indices within the control structure. */
const W_SL_BITMAP = C_SL_BITMAP >>> 2;
const W_BLOCKS = C_BLOCKS >>> 2;

if (CONTROL_SIZE !== 14424 || C_BLOCKS !== 232 || HEAD_SENTINEL_SIZE !== 64 || FL_INDEX_COUNT <= 32 || FL_INDEX_COUNT >= 64) {
  throw new Error('tlsf port: the layout no longer matches tlsf.c');
}
if (BLOCK_SIZE_MAX / 2 < 0x7fffffff) throw new Error('tlsf port: exceeds/reaches need limits of 2**31 - 1 or more'); /* ./memory.ts */

/* ---- bit scans and rounding ------------------------------------------------- */

/** size_fls for any size below 2**64 (C's name for ./memory.ts's flsSize). */
const size_fls = flsSize;

/** align_up for a power-of-two `align`, exact for every number below 2**53 (and for multiples of align above). */
const align_up = function align_up(x: number, align: number): number {
  /* x + align <= 2**31, against Smi constants only (2**31 is a heap number) */
  if (x <= 0x7fffffff - (align - 1)) return (x + (align - 1)) & -align;
  return Math.ceil(x / align) * align;
};

const is_pow2 = function is_pow2(x: number): boolean {
  /* 32-bit for the usual alignment: 2 ** n at run time is a double */
  if (x > 0 && x <= 0x7fffffff) return (x & (x - 1)) === 0;
  return x > 0 && Number.isInteger(x) && 2 ** size_fls(x) === x;
};

/* ---- block accessors (m: the u32 view; b: a block's byte offset) ------------ */

const block_size = function block_size(m: Uint32Array, b: number): number {
  const s = m[(b + B_SIZE) >>> 2]!;
  return s - (s & BLOCK_FLAG_MASK);
};
const block_set_size = function block_set_size(m: Uint32Array, b: number, size: number): void {
  const i = (b + B_SIZE) >>> 2;
  m[i] = size + (m[i]! & BLOCK_FLAG_MASK);
  m[i + 1] = 0;
};
const block_is_free = function block_is_free(m: Uint32Array, b: number): boolean {
  return (m[(b + B_SIZE) >>> 2]! & BLOCK_FREE) !== 0;
};
const block_is_prev_free = function block_is_prev_free(m: Uint32Array, b: number): boolean {
  return (m[(b + B_SIZE) >>> 2]! & BLOCK_PREV_FREE) !== 0;
};
const block_set_free_bit = function block_set_free_bit(m: Uint32Array, b: number): void {
  const i = (b + B_SIZE) >>> 2;
  m[i] = m[i]! | BLOCK_FREE;
};
const block_clear_free_bit = function block_clear_free_bit(m: Uint32Array, b: number): void {
  const i = (b + B_SIZE) >>> 2;
  m[i] = m[i]! & ~BLOCK_FREE;
};
const block_set_prev_free = function block_set_prev_free(m: Uint32Array, b: number): void {
  const i = (b + B_SIZE) >>> 2;
  m[i] = m[i]! | BLOCK_PREV_FREE;
};
const block_set_prev_used = function block_set_prev_used(m: Uint32Array, b: number): void {
  const i = (b + B_SIZE) >>> 2;
  m[i] = m[i]! & ~BLOCK_PREV_FREE;
};
const block_is_tail = function block_is_tail(m: Uint32Array, b: number): boolean {
  return block_size(m, b) === 0;
};
const prev_phys = function prev_phys(m: Uint32Array, b: number): number {
  return m[b >>> 2]!;
};
const next_free = function next_free(m: Uint32Array, b: number): number {
  return m[(b + B_NEXT_FREE) >>> 2]!;
};
const prev_free = function prev_free(m: Uint32Array, b: number): number {
  return m[(b + B_PREV_FREE) >>> 2]!;
};

const block_next = function block_next(m: Uint32Array, b: number): number {
  return b + block_size(m, b);
};
const block_to_ptr = function block_to_ptr(b: number): number {
  return b + BLOCK_HEADER_SIZE;
};
const block_from_ptr = function block_from_ptr(ptr: number): number {
  return ptr - BLOCK_HEADER_SIZE;
};
const block_usable = function block_usable(m: Uint32Array, b: number): number {
  return block_size(m, b) - BLOCK_HEADER_SIZE;
};

/** Points the next block back at b and returns it. */
const block_link_next = function block_link_next(m: Uint32Array, b: number): number {
  const next = block_next(m, b);
  storePtr(m, next + B_PREV_PHYS, b);
  return next;
};
const block_mark_free = function block_mark_free(m: Uint32Array, b: number): void {
  block_set_free_bit(m, b);
  block_set_prev_free(m, block_link_next(m, b));
};
const block_mark_used = function block_mark_used(m: Uint32Array, b: number): void {
  block_clear_free_bit(m, b);
  block_set_prev_used(m, block_next(m, b));
};

/* ---- pool accessors (p: a pool_record's byte offset) --------------------------- */

const pool_head = function pool_head(p: number): number {
  return p - BLOCK_HEADER_SIZE;
};
const pool_from_head = function pool_from_head(head: number): number {
  return head + BLOCK_HEADER_SIZE;
};
const pool_first_block = function pool_first_block(p: number): number {
  return pool_head(p) + HEAD_SENTINEL_SIZE;
};
const pool_bytes = function pool_bytes(m: Uint32Array, p: number): number {
  return load64(m, p + P_BYTES);
};
const pool_tail = function pool_tail(m: Uint32Array, p: number): number {
  return pool_head(p) + pool_bytes(m, p) - TAIL_SENTINEL_SIZE;
};
/** The head sentinel is the only block whose prev_phys is NULL. */
const block_is_first = function block_is_first(m: Uint32Array, b: number): boolean {
  return prev_phys(m, prev_phys(m, b)) === 0;
};
/** A free block that fills its pool from head to tail: the pool is unused. */
const block_fills_pool = function block_fills_pool(m: Uint32Array, b: number): boolean {
  return block_is_first(m, b) && block_is_tail(m, block_next(m, b));
};

/* ---- the two-level mapping (the paper's names) --------------------------------- */

/**
 * The C's (fl, sl) out-parameters come back as one list index, fl <<
 * SL_INDEX_COUNT_LOG2 | sl (the index of blocks[fl][sl]): a returned integer
 * stays in a register, where a pair of module variables was stored to the
 * module and loaded back, with a dead-zone check at each load.
 */
const list_fl = (list: number): number => list >>> SL_INDEX_COUNT_LOG2;
const list_sl = (list: number): number => list & (SL_INDEX_COUNT - 1);
const list_of = (fl: number, sl: number): number => (fl << SL_INDEX_COUNT_LOG2) | sl;

/** The list a block of `size` bytes belongs to. */
const mapping_insert = function mapping_insert(size: number): number {
  if (size < SMALL_BLOCK_SIZE) return list_of(0, size >>> ALIGN_SIZE_LOG2);
  if (size <= 0x7fffffff) { /* a Smi constant: against 2**32 (a heap number) V8 compared in doubles */
    const fl = fls32(size);
    return list_of(fl - (FL_INDEX_SHIFT - 1), (size >>> (fl - SL_INDEX_COUNT_LOG2)) ^ SL_INDEX_COUNT);
  }
  const fl = flsSize(size);
  return list_of(fl - (FL_INDEX_SHIFT - 1), Math.floor(size / 2 ** (fl - SL_INDEX_COUNT_LOG2)) ^ SL_INDEX_COUNT);
};

/** `size` rounded up to the start of the next list's range. */
const mapping_round = function mapping_round(size: number): number {
  if (size < SMALL_BLOCK_SIZE) return size;
  if (size < 0x40000000) {
    /* the common case in int32 arithmetic: size + step stays below 2**31 */
    const step = 1 << (fls32(size) - SL_INDEX_COUNT_LOG2);
    return (size + (step - 1)) & -step;
  }
  const step = 2 ** (size_fls(size) - SL_INDEX_COUNT_LOG2);
  return align_up(size, step);
};

const mapping_search = function mapping_search(size: number): number {
  return mapping_insert(mapping_round(size));
};

/* ---- the allocator ------------------------------------------------------------ */

/** Request bytes to block bytes, or 0 if it cannot be served. */
const adjust_request = function adjust_request(bytes: number): number {
  /* bytes > BLOCK_SIZE_MAX - BLOCK_HEADER_SIZE: no double lies strictly between the two */
  if (reaches(bytes, BLOCK_SIZE_MAX)) return 0;
  /* align_up(bytes + 16, 16) == align_up(bytes, 16) + 16, without rounding bytes + 16 above 2**53 */
  const size = align_up(bytes, ALIGN_SIZE) + BLOCK_HEADER_SIZE;
  return size < BLOCK_SIZE_MIN ? BLOCK_SIZE_MIN : size;
};

class TlsfHeap implements PortAllocator {
  readonly name = 'tlsf';
  declare readonly pages: ArenaPages;
  declare readonly m: Uint32Array;
  declare readonly u8: Uint8Array;
  /** The control structure's byte offset (the heap handle, like C's tlsf_t). */
  declare readonly c: number;
  declare readonly pageSize: number;
  /** block_locate_free's *fresh. */
  fresh = false;
  /** search_suitable_block's *fli, *sli, as one list index (list_of). */
  found = 0;
  /** check_pool_blocks' *free_blocks. */
  freeBlocks = 0;

  constructor(pages: ArenaPages, c: number) {
    this.pages = pages;
    this.m = pages.u32;
    this.u8 = pages.u8;
    this.c = c;
    this.pageSize = pages.pageSize;
  }

  /* ---- control fields ---- */

  list_head_at(fl: number, sl: number): number {
    return this.c + C_BLOCKS + list_of(fl, sl) * 8;
  }
  spare(): number {
    return loadPtr(this.m, this.c + C_SPARE);
  }

  /** The first non-empty list at or above (fl, sl), or 0; sets this.found to its list. */
  search_suitable_block(fl: number, sl: number): number {
    const m = this.m;
    const cw = this.c >>> 2;
    /* the bitmaps as int32 (| 0): a variable that holds both a Uint32Array
     * element and a bitwise result is no int32 or uint32, so V8 kept it in doubles */
    let sl_map = m[cw + W_SL_BITMAP + fl]! & (~0 << sl);
    if (sl_map === 0) {
      /* fl_bitmap & (~0 << (fl + 1)), as two 32-bit halves */
      const shift = fl + 1;
      let lo = m[cw]! | 0;
      let hi = m[cw + 1]! | 0;
      if (shift < 32) lo &= ~0 << shift;
      else {
        lo = 0;
        hi &= ~0 << (shift - 32);
      }
      if (lo !== 0) fl = ffs32(lo);
      else if (hi !== 0) fl = 32 + ffs32(hi);
      else return 0;
      sl_map = m[cw + W_SL_BITMAP + fl]! | 0;
    }
    sl = ffs32(sl_map);
    this.found = list_of(fl, sl);
    return m[cw + W_BLOCKS + this.found * 2]!;
  }

  /* ---- free lists ---- */

  list_remove(b: number, fl: number, sl: number): void {
    const m = this.m;
    const prev = prev_free(m, b);
    const next = next_free(m, b);
    if (next) storePtr(m, next + B_PREV_FREE, prev);
    if (prev) {
      storePtr(m, prev + B_NEXT_FREE, next);
    } else {
      storePtr(m, this.list_head_at(fl, sl), next);
      if (!next) {
        const cw = this.c >>> 2;
        const slw = cw + W_SL_BITMAP + fl;
        m[slw] = m[slw]! & ~(1 << sl);
        if (!m[slw]) {
          if (fl < 32) m[cw] = m[cw]! & ~(1 << fl);
          else m[cw + 1] = m[cw + 1]! & ~(1 << (fl - 32));
        }
      }
    }
  }

  list_insert(b: number, fl: number, sl: number): void {
    const m = this.m;
    const at = this.list_head_at(fl, sl);
    const head = loadPtr(m, at);
    storePtr(m, b + B_NEXT_FREE, head);
    storePtr(m, b + B_PREV_FREE, 0);
    if (head) storePtr(m, head + B_PREV_FREE, b);
    storePtr(m, at, b);
    const cw = this.c >>> 2;
    const slw = cw + W_SL_BITMAP + fl;
    m[slw] = m[slw]! | (1 << sl);
    if (fl < 32) m[cw] = m[cw]! | (1 << fl);
    else m[cw + 1] = m[cw + 1]! | (1 << (fl - 32));
  }

  block_remove(b: number): void {
    const list = mapping_insert(block_size(this.m, b));
    this.list_remove(b, list_fl(list), list_sl(list));
  }

  block_insert(b: number): void {
    const list = mapping_insert(block_size(this.m, b));
    this.list_insert(b, list_fl(list), list_sl(list));
  }

  /* ---- split and merge ---- */

  /** prev takes in its physical successor b. */
  block_absorb(prev: number, b: number): number {
    const m = this.m;
    block_set_size(m, prev, block_size(m, prev) + block_size(m, b));
    block_link_next(m, prev);
    return prev;
  }

  block_merge_prev(b: number): number {
    const m = this.m;
    if (block_is_prev_free(m, b)) {
      const prev = prev_phys(m, b);
      this.block_remove(prev);
      b = this.block_absorb(prev, b);
    }
    return b;
  }

  block_merge_next(b: number): number {
    const m = this.m;
    const next = block_next(m, b);
    if (block_is_free(m, next)) {
      this.block_remove(next);
      this.block_absorb(b, next);
    }
    return b;
  }

  block_can_split(b: number, size: number): boolean {
    return block_size(this.m, b) >= size + BLOCK_SIZE_MIN;
  }

  /** Cuts b to `size` bytes; the rest becomes a free block (in no list), returned. */
  block_split(b: number, size: number): number {
    const m = this.m;
    const rest = b + size;
    store64(m, rest + B_SIZE, (block_size(m, b) - size) + (block_is_free(m, b) ? BLOCK_PREV_FREE : 0));
    block_set_size(m, b, size);
    storePtr(m, rest + B_PREV_PHYS, b);
    block_mark_free(m, rest);
    return rest;
  }

  /** b is free and in no list: cut it to `size`, put the rest in its list, mark b used. */
  block_prepare_used(b: number, size: number): number {
    if (this.block_can_split(b, size)) this.block_insert(this.block_split(b, size));
    block_mark_used(this.m, b);
    return block_to_ptr(b);
  }

  /** b is used: give back its bytes beyond `size` (merged with a free successor). */
  block_trim_used(b: number, size: number): void {
    if (!this.block_can_split(b, size)) return;
    const rest = this.block_split(b, size);
    this.block_insert(this.block_merge_next(rest));
  }

  /** b is free and in no list: put its first `gap` bytes in a list, return the rest. */
  block_trim_free_leading(b: number, gap: number): number {
    const rest = this.block_split(b, gap);
    this.block_insert(b);
    return rest;
  }

  /* ---- pools ---- */

  /** Lays out sentinels and one free block over [mem, mem + bytes) and links the pool in. */
  pool_setup(mem: number, bytes: number, owned: number): number {
    const m = this.m;
    const c = this.c;
    const head = mem;
    storePtr(m, head + B_PREV_PHYS, 0);
    store64(m, head + B_SIZE, HEAD_SENTINEL_SIZE);
    const p = pool_from_head(head);
    store64(m, p + P_BYTES, bytes);
    store64(m, p + P_OWNED, owned);
    m[(p + P_MAGIC) >>> 2] = POOL_MAGIC_LO;
    m[(p + P_MAGIC + 4) >>> 2] = POOL_MAGIC_HI;
    store64(m, p + P_RESERVED, 0);
    storePtr(m, p + P_NEXT, 0);
    const last = loadPtr(m, c + C_POOLS_LAST);
    storePtr(m, p + P_PREV, last);
    if (last) storePtr(m, last + P_NEXT, p);
    else storePtr(m, c + C_POOLS_FIRST, p);
    storePtr(m, c + C_POOLS_LAST, p);
    store64(m, c + C_POOL_COUNT, load64(m, c + C_POOL_COUNT) + 1);

    const b = pool_first_block(p);
    storePtr(m, b + B_PREV_PHYS, head);
    store64(m, b + B_SIZE, (bytes - POOL_OVERHEAD) + BLOCK_FREE);
    const tail = block_link_next(m, b);
    store64(m, tail + B_SIZE, 0 | BLOCK_PREV_FREE);
    this.block_insert(b);
    return p;
  }

  pool_unlink(p: number): void {
    const m = this.m;
    const c = this.c;
    const prev = loadPtr(m, p + P_PREV);
    const next = loadPtr(m, p + P_NEXT);
    if (prev) storePtr(m, prev + P_NEXT, next);
    else storePtr(m, c + C_POOLS_FIRST, next);
    if (next) storePtr(m, next + P_PREV, prev);
    else storePtr(m, c + C_POOLS_LAST, prev);
    store64(m, c + C_POOL_COUNT, load64(m, c + C_POOL_COUNT) - 1);
    if (this.spare() === p) storePtr(m, c + C_SPARE, 0);
  }

  /** p is wholly free: take its block out of the lists and drop the pool. */
  pool_release(p: number): void {
    const m = this.m;
    this.block_remove(pool_first_block(p));
    this.pool_unlink(p);
    const owned = load64(m, p + P_OWNED);
    if (owned) {
      const c = this.c;
      if (owned === POOL_SHARED) store64(m, c + C_OWNED_BYTES, load64(m, c + C_OWNED_BYTES) - pool_bytes(m, p));
      this.pages.freePage(pool_head(p), pool_bytes(m, p) / this.pageSize);
    }
  }

  /** Keep one small wholly free pool from alloc_page; an older spare, or a pool too big to keep, is given back. */
  pool_on_empty(p: number): void {
    const m = this.m;
    if (!load64(m, p + P_OWNED)) return;
    if (pool_bytes(m, p) > SPARE_MAX_BYTES) {
      this.pool_release(p);
      return;
    }
    const old = this.spare();
    storePtr(m, this.c + C_SPARE, p);
    if (old && old !== p) this.pool_release(old);
  }

  /** A new pool's free block for a request of `size` block bytes, or 0 (C's pool_grow: a pool of its own for a large request). */
  pool_grow(size: number): number {
    const page = this.pageSize;
    const rounded = mapping_round(size);
    let need = rounded + POOL_OVERHEAD;
    const owned = load64(this.m, this.c + C_OWNED_BYTES);
    const growth = Math.floor(owned / POOL_GROWTH_DIVISOR);
    let kind = POOL_SHARED;
    if (size >= OWN_POOL_MIN_BYTES && need > growth) {
      need = size + POOL_OVERHEAD; /* a pool of its own */
      kind = POOL_OWN;
    } else {
      if (need < POOL_MIN_BYTES) need = POOL_MIN_BYTES;
      if (need < growth) need = growth;
    }
    if (need > SIZE_LIMIT - page) return 0; /* need > SIZE_MAX - (page - 1) */
    const bytes = align_up(need, page);
    if (bytes - POOL_OVERHEAD > BLOCK_SIZE_MAX) return 0;
    const mem = this.pages.allocPage(bytes / page);
    if (!mem) return 0;
    this.pool_setup(mem, bytes, kind);
    if (kind === POOL_SHARED) store64(this.m, this.c + C_OWNED_BYTES, owned + bytes);
    return pool_first_block(pool_from_head(mem));
  }

  /* ---- the allocator ---- */

  /** A free block of at least `size` bytes, taken out of its list, or 0; sets this.fresh. */
  block_locate_free(size: number): number {
    this.fresh = false;
    const list = mapping_search(size);
    let b = this.search_suitable_block(list_fl(list), list_sl(list));
    if (b) {
      this.list_remove(b, list_fl(this.found), list_sl(this.found));
    } else {
      b = this.pool_grow(size);
      if (!b) return 0;
      this.block_remove(b); /* the new pool's block, which the search would now find (or its own pool's) */
      this.fresh = true;
    }
    const spare = this.spare();
    if (spare && b === pool_first_block(spare)) storePtr(this.m, this.c + C_SPARE, 0);
    return b;
  }

  heap_malloc(bytes: number): number {
    const size = adjust_request(bytes);
    if (!size) return 0;
    const b = this.block_locate_free(size);
    return b ? this.block_prepare_used(b, size) : 0;
  }

  heap_memalign(align: number, bytes: number): number {
    if (!is_pow2(align)) return 0;
    if (align <= ALIGN_SIZE) return this.heap_malloc(bytes);
    const size = adjust_request(bytes);
    if (!size || exceeds(align, BLOCK_SIZE_MAX / 2)) return 0;
    /* room for the block plus the worst leading gap (under align + BLOCK_SIZE_MIN) */
    const search = size + align + BLOCK_SIZE_MIN;
    if (exceeds(search, BLOCK_SIZE_MAX)) return 0;
    let b = this.block_locate_free(search);
    if (!b) return 0;

    /* offsets stand for addresses: the C arena base is aligned to 1 GiB, more than any align that can be served */
    const payload = block_to_ptr(b);
    let gap = align_up(payload, align) - payload;
    /* a gap must be able to stand as a free block of its own */
    if (gap && gap < BLOCK_SIZE_MIN) gap = align_up(payload + BLOCK_SIZE_MIN, align) - payload;
    if (gap) b = this.block_trim_free_leading(b, gap);
    return this.block_prepare_used(b, size);
  }

  heap_free(ptr: number): void {
    const m = this.m;
    let b = block_from_ptr(ptr);
    if (block_is_free(m, b)) return; /* a double free is ignored, never merged twice */
    block_mark_free(m, b);
    b = this.block_merge_prev(b);
    b = this.block_merge_next(b);
    this.block_insert(b);
    if (block_fills_pool(m, b)) this.pool_on_empty(pool_from_head(prev_phys(m, b)));
  }

  heap_realloc(ptr: number, bytes: number): number {
    const m = this.m;
    if (!ptr) return this.heap_malloc(bytes);
    const size = adjust_request(bytes);
    if (!size) return 0;
    const b = block_from_ptr(ptr);
    if (block_is_free(m, b)) return 0; /* a freed block's realloc is refused, as its second free is ignored */
    const cur = block_size(m, b);

    if (size <= cur) {
      /* shrink in place */
      this.block_trim_used(b, size);
      return ptr;
    }
    const next = block_next(m, b);
    if (block_is_free(m, next) && cur + block_size(m, next) >= size) {
      /* grow in place */
      this.block_remove(next);
      this.block_absorb(b, next);
      block_set_prev_used(m, block_next(m, b));
      this.block_trim_used(b, size);
      return ptr;
    }
    const moved = this.heap_malloc(bytes);
    if (!moved) return 0; /* the old block is untouched */
    this.u8.copyWithin(moved, ptr, ptr + cur - BLOCK_HEADER_SIZE); /* cur < size: all old bytes fit */
    this.heap_free(ptr);
    return moved;
  }

  /* ---- public API (tlsf_*) ---- */

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
    /* C: size && count > SIZE_MAX / size. Any product that the double rounds up
     * to 2**64 is above BLOCK_SIZE_MAX anyway, so C returns NULL for it too. */
    const bytes = count * size;
    if (size && reaches(bytes, SIZE_LIMIT)) return 0;
    const p = this.heap_malloc(bytes);
    /* fresh pages read as zero except where the free-list links were written; a reused block is cleared whole */
    if (p) this.u8.fill(0, p, p + (this.fresh ? BLOCK_SIZE_MIN - BLOCK_HEADER_SIZE : block_usable(this.m, block_from_ptr(p))));
    return p;
  }

  free(ptr: number): void {
    if (!ptr) return;
    this.heap_free(ptr);
  }

  usableSize(ptr: number): number {
    return ptr ? block_usable(this.m, block_from_ptr(ptr)) : 0;
  }

  destroy(): void {
    const m = this.m;
    const c = this.c;
    const pageSize = this.pageSize;
    let p = loadPtr(m, c + C_POOLS_FIRST);
    while (p) {
      const next = loadPtr(m, p + P_NEXT);
      if (load64(m, p + P_OWNED)) this.pages.freePage(pool_head(p), pool_bytes(m, p) / pageSize);
      p = next;
    }
    storePtr(m, c + C_POOLS_FIRST, 0);
    storePtr(m, c + C_POOLS_LAST, 0);
    storePtr(m, c + C_SPARE, 0);
    store64(m, c + C_POOL_COUNT, 0);
    const controlPages = load64(m, c + C_CONTROL_PAGES);
    if (controlPages) this.pages.freePage(c, controlPages);
  }

  hostBytes(): Array<[number, number]> {
    /* hooks.ctx, then alloc_page, free_page, lock, unlock; page_size between them is written */
    const hooks = this.c + C_HOOKS;
    return [
      [hooks, HOOKS_PAGE_SIZE],
      [hooks + HOOKS_PAGE_SIZE + 8, HOOKS_SIZE - HOOKS_PAGE_SIZE - 8],
    ];
  }

  /* ---- the checker: counts broken invariants; reads only inside the pools' recorded bounds ---- */

  /** Walks one pool's blocks in address order; adds its free blocks to this.freeBlocks. */
  check_pool_blocks(p: number): number {
    const m = this.m;
    let bad = 0;
    const head = pool_head(p);
    if (m[(p + P_MAGIC) >>> 2] !== POOL_MAGIC_LO || m[(p + P_MAGIC + 4) >>> 2] !== POOL_MAGIC_HI) bad++;
    if (load64(m, head + B_PREV_PHYS) !== 0 || load64(m, head + B_SIZE) !== HEAD_SENTINEL_SIZE) bad++;
    const bytes = pool_bytes(m, p);
    if (m[(p + P_BYTES) >>> 2]! & (ALIGN_SIZE - 1) || bytes < POOL_OVERHEAD + BLOCK_SIZE_MIN) return bad + 1;
    const tail = pool_tail(m, p);
    /* block_size(tail) != 0 || block_is_free(tail) || (tail->size & ~BLOCK_PREV_FREE) */
    const tailSize = load64(m, tail + B_SIZE);
    if (tailSize !== 0 && tailSize !== BLOCK_PREV_FREE) bad++;

    let prev = head;
    let b = pool_first_block(p);
    while (b !== tail) {
      const raw = load64(m, b + B_SIZE);
      const flags = m[(b + B_SIZE) >>> 2]! & BLOCK_FLAG_MASK;
      const size = raw - flags;
      if (flags & ~(BLOCK_FREE | BLOCK_PREV_FREE)) bad++; /* unaligned size */
      if (load64(m, b + B_PREV_PHYS) !== prev) bad++;
      if (block_is_prev_free(m, b) !== block_is_free(m, prev)) bad++;
      if (block_is_free(m, b) && block_is_free(m, prev)) bad++; /* not coalesced */
      if (size < BLOCK_SIZE_MIN || size > tail - b) return bad + 1; /* too small or past the pool end */
      if (block_is_free(m, b)) this.freeBlocks++;
      prev = b;
      b = b + size;
    }
    if (load64(m, tail + B_PREV_PHYS) !== prev) bad++;
    if (block_is_prev_free(m, tail) !== block_is_free(m, prev)) bad++;
    return bad;
  }

  /** Whether a free block's header and links lie inside some pool's block area. */
  pool_contains(b: number): boolean {
    const m = this.m;
    if (b % ALIGN_SIZE) return false;
    const count = load64(m, this.c + C_POOL_COUNT);
    let n = 0;
    for (let p = loadPtr(m, this.c + C_POOLS_FIRST); p && n < count; p = loadPtr(m, p + P_NEXT), n++) {
      const lo = pool_first_block(p);
      const hi = pool_tail(m, p);
      if (b >= lo && b + BLOCK_SIZE_MIN <= hi) return true;
    }
    return false;
  }

  check_lists(free_blocks: number): number {
    const m = this.m;
    const cw = this.c >>> 2;
    let bad = 0;
    let listed = 0;
    /* FL_INDEX_COUNT < 64 && (fl_bitmap >> FL_INDEX_COUNT): bits 55.. live in the high word */
    if (m[cw + 1]! >>> (FL_INDEX_COUNT - 32)) bad++;
    for (let fl = 0; fl < FL_INDEX_COUNT; fl++) {
      const sl_map = m[cw + W_SL_BITMAP + fl]!;
      const flBit = fl < 32 ? (m[cw]! >>> fl) & 1 : (m[cw + 1]! >>> (fl - 32)) & 1;
      if ((flBit !== 0) !== (sl_map !== 0)) bad++;
      /* SL_INDEX_COUNT < 32 && (sl_map >> SL_INDEX_COUNT): false with 32 lists */
      if (SL_INDEX_COUNT < 32 && sl_map >>> (SL_INDEX_COUNT & 31)) bad++;
      for (let sl = 0; sl < SL_INDEX_COUNT; sl++) {
        let b = loadPtr(m, this.list_head_at(fl, sl));
        if (((sl_map >>> sl) & 1) !== (b !== 0 ? 1 : 0)) bad++;
        let prev = 0;
        for (; b; prev = b, b = next_free(m, b)) {
          if (listed > free_blocks || !this.pool_contains(b)) {
            bad++;
            break;
          }
          listed++;
          if (!block_is_free(m, b)) bad++;
          if (load64(m, b + B_PREV_FREE) !== prev) bad++;
          const raw = load64(m, b + B_SIZE);
          const size = raw - (m[(b + B_SIZE) >>> 2]! & BLOCK_FLAG_MASK);
          let bfl = -1;
          let bsl = -1;
          if (size >= BLOCK_SIZE_MIN && size <= BLOCK_SIZE_MAX) {
            const list = mapping_insert(size);
            bfl = list_fl(list);
            bsl = list_sl(list);
          }
          if (bfl !== fl || bsl !== sl) bad++;
        }
      }
    }
    if (listed !== free_blocks) bad++;
    return bad;
  }

  /** tlsf_walk_heap: the control structure, then each pool (oldest first): head sentinel, blocks, tail sentinel. */
  walk(out: WalkBuilder): void {
    const m = this.m;
    const c = this.c;
    const controlPages = load64(m, c + C_CONTROL_PAGES);
    if (controlPages) out.add(c, controlPages * this.pageSize, c, 0, WalkState.meta, 0);
    const count = load64(m, c + C_POOL_COUNT);
    let region = 1;
    let n = 0;
    for (let p = loadPtr(m, c + C_POOLS_FIRST); p && n < count; p = loadPtr(m, p + P_NEXT), n++, region++) {
      const head = pool_head(p);
      const tail = pool_tail(m, p);
      out.add(head, HEAD_SENTINEL_SIZE, head, 0, WalkState.meta, region);
      for (let b = pool_first_block(p); b !== tail; ) {
        const size = block_size(m, b);
        if (size < BLOCK_SIZE_MIN || size > tail - b) break; /* broken: check() says so */
        out.add(b, size, block_to_ptr(b), block_usable(m, b), block_is_free(m, b) ? WalkState.free : WalkState.used, region);
        b += size;
      }
      out.add(tail, TAIL_SENTINEL_SIZE, tail, 0, WalkState.meta, region);
    }
  }

  check(): number {
    const m = this.m;
    const c = this.c;
    let bad = 0;
    let n = 0;
    this.freeBlocks = 0;
    const count = load64(m, c + C_POOL_COUNT);
    const spare = this.spare();
    let p = loadPtr(m, c + C_POOLS_FIRST);
    let prev = 0;
    let spare_seen = spare === 0;
    let owned = 0;
    for (; p && n < count; prev = p, p = loadPtr(m, p + P_NEXT), n++) {
      if (loadPtr(m, p + P_PREV) !== prev) bad++;
      if (load64(m, p + P_OWNED) > POOL_OWN) bad++;
      if (load64(m, p + P_OWNED) === POOL_SHARED) owned += pool_bytes(m, p);
      bad += this.check_pool_blocks(p);
      if (p === spare) {
        spare_seen = true;
        const b = pool_first_block(p);
        if (!load64(m, p + P_OWNED) || !block_is_free(m, b) || !block_is_tail(m, block_next(m, b))) bad++;
      }
    }
    if (p || n !== count || loadPtr(m, c + C_POOLS_LAST) !== prev) bad++;
    if (!spare_seen) bad++;
    if (!p && owned !== load64(m, c + C_OWNED_BYTES)) bad++;
    bad += this.check_lists(this.freeBlocks);
    return Math.min(bad, 0x7fffffff); /* count_to_int */
  }
}

/** tlsf_create_with_hooks: the control structure in the first pages, no pool yet. */
export const createTlsf: PortFactory = (pages) => {
  const pageSize = pages.pageSize;
  const controlPages = Math.ceil(CONTROL_SIZE / pageSize);
  const c = pages.allocPage(controlPages);
  if (!c) return null;
  pages.u8.fill(0, c, c + CONTROL_SIZE); /* control_init */
  store64(pages.u32, c + C_HOOKS + HOOKS_PAGE_SIZE, pageSize); /* c->hooks = *hooks: the one non-host field */
  store64(pages.u32, c + C_CONTROL_PAGES, controlPages);
  return new TlsfHeap(pages, c);
};
