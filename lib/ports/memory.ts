/**
 * Reading and writing the C layouts in a port's memory. Fields are little-endian
 * like x86-64. A 64-bit field (size_t, a pointer) is two 32-bit words; the ports
 * keep sizes below 2**53 and addresses below 4 GiB, so a number holds either.
 * A pointer is stored as its offset in the address space (0 is NULL).
 *
 * The ports' hot paths are made of small functions that V8 inlines, and how
 * they are bound decides what each inlined call costs: a function declaration
 * is a binding that can be reassigned, and an import is read from the
 * exporting module's cell with a dead-zone check, so at every inlined call
 * V8 loaded the binding and compared it with the function it inlined. A const
 * binding it folds away. So these are consts, every port's own module
 * functions are consts, and a port binds what it imports from here to consts
 * of its own (`const { loadPtr } = memory`). In `heaplab compare`, declaring
 * them so (with tlsf's out-parameters returned, not kept in module variables)
 * took tlsf's TS/C geometric mean from 2.09x to 1.90x (medians of 3 runs).
 *
 * A port's fields that its constructor sets (the heap's views, its offsets,
 * ArenaPages's) are `declare`d: an ES2022 class field is defined as
 * undefined before the constructor runs, and the constructor's store then
 * generalized every such field (`--trace-generalization`: iSmallmap
 * h{Any;const} -> t{Any;mutable}), so that each load was a tagged value of
 * no known kind or map. Declared, the constructor's store is the first, and
 * the field keeps its kind (dlmalloc's realloc-aligned loop alone: 1-3% faster).
 */

const TWO_32 = 4294967296;

/** The 64-bit field at byte offset `at` (8-aligned) as a number. */
export const load64 = function load64(u32: Uint32Array, at: number): number {
  const i = at >>> 2;
  return u32[i]! + u32[i + 1]! * TWO_32;
};

export const store64 = function store64(u32: Uint32Array, at: number, value: number): void {
  const i = at >>> 2;
  u32[i] = value >>> 0;
  /* no division for the usual value: it made the caller's arithmetic doubles;
   * and a Smi constant first: `value > 0xffffffff` alone (a heap number) made
   * V8 convert every value to a double to compare (tlsf's block_split) */
  u32[i + 1] = value <= 0x7fffffff ? 0 : value > 0xffffffff ? Math.floor(value / TWO_32) : 0;
};

/**
 * x > limit and x >= limit, for the limits a request is checked against on
 * every call (2**31 - 1 or more: MAX_REQUEST, BLOCK_SIZE_MAX …). Against such
 * a limit, a heap number, V8 converted every size to a double to compare;
 * the Smi test first keeps the usual size in int32 and the answer the same.
 */
export const exceeds = function exceeds(x: number, limit: number): boolean {
  return x > 0x7fffffff && x > limit;
};
export const reaches = function reaches(x: number, limit: number): boolean {
  return x > 0x7fffffff && x >= limit;
};

/** A pointer field: the high half is always 0 in port memory. */
export const loadPtr = function loadPtr(u32: Uint32Array, at: number): number {
  return u32[at >>> 2]!;
};

export const storePtr = function storePtr(u32: Uint32Array, at: number, offset: number): void {
  const i = at >>> 2;
  u32[i] = offset;
  u32[i + 1] = 0;
};

/**
 * Index of the lowest set bit of a 32-bit word, -1 for 0 (ffs - 1). word ^
 * (word - 1) sets the bits up to the lowest: 32-bit operations all through,
 * where -word of a word above 2**31 is no int32 and V8 negated it in doubles.
 */
export const ffs32 = function ffs32(word: number): number {
  return word === 0 ? -1 : 31 - Math.clz32(word ^ (word - 1));
};

/** Index of the highest set bit of a 32-bit word, -1 for 0 (fls - 1). */
export const fls32 = function fls32(word: number): number {
  return 31 - Math.clz32(word);
};

/** Index of the highest set bit of a non-negative integer below 2**53, -1 for 0. */
export const flsSize = function flsSize(size: number): number {
  if (size <= 0x7fffffff || size < TWO_32) return fls32(size); /* a Smi first: see exceeds */
  return 32 + fls32(Math.floor(size / TWO_32));
};
