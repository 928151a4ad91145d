/**
 * The TypeScript twin of native/pages/arena.c: the same rule, so a port and its C
 * original see the same page offsets for the same requests.
 *
 *   - the address space is a row of pages 0 .. N-1; page 0 is never handed out,
 *     so offset 0 stands for NULL;
 *   - free page runs are kept sorted by first page, adjacent runs always merged;
 *   - allocPage(n) takes the first n pages of the lowest-addressed run with at
 *     least n pages, or returns 0 if none has or the limit would be passed;
 *   - freePage(p, n) returns the run (merging with its neighbours); pages read
 *     as zero when handed out again: as in C, a run is cleared when it is
 *     handed out again, and only the part below the old high water (above it,
 *     nothing was ever written). So a freed run that is never reused costs
 *     nothing; `clearFreeRuns` zeroes free runs in a copy, for comparing bytes
 *     with C (a free run's bytes are stale until handed out).
 *
 * The bytes live in one ArrayBuffer of the whole reservation, made once, like
 * the C arena's mmap: V8 takes large buffers from calloc, i.e. from lazily
 * zeroed mmap pages, so untouched address space costs no memory (8 × 1 GiB
 * buffers: 27 ms, 42 MB RSS on this machine). Measured against a resizable
 * ArrayBuffer that doubles: typed-array access through its length-tracking
 * views made small-object churn 1.6× slower (111 vs 70 ns/op in the liballoc
 * port), and a fixed buffer's views never need re-making.
 */

/** Default reservation: 1 GiB of address space (virtual: untouched pages cost nothing). */
export const DEFAULT_RESERVE = 1 << 30;
/** Pointers in port memory are 64-bit fields whose high half stays 0: the space must stay below 4 GiB. */
export const MAX_RESERVE = 2 ** 32 - 65536;

/** Room for this many free runs at first (C's first runs array holds a page of them). */
const INITIAL_RUNS = 64;

/** Released address spaces, by size, ready for reuse (see ArenaPages#release). */
const spares = new Map<number, ArrayBuffer[]>();

export class ArenaPages {
  declare readonly pageSize: number;
  declare readonly reserved: number;
  declare readonly limit: number;
  bytesMapped = 0;
  peakBytesMapped = 0;
  mapCalls = 0;
  unmapCalls = 0;
  /** End offset of the highest page ever handed out. */
  highWater = 0;
  declare readonly buffer: ArrayBuffer;
  /** Views over the whole space; they grow with it. */
  declare readonly u8: Uint8Array;
  declare readonly u32: Uint32Array;
  /**
   * The free runs, sorted by first page, adjacent runs merged: run i is
   * runFirst[i] .. runFirst[i] + runPages[i] - 1, for i < runCount. Two typed
   * arrays shifted by hand, as C's array is by memmove: an array of run objects
   * took a new object and Array#splice for each run, and a free that split the
   * free space cost 37 ns (25 now, measured alone).
   */
  declare private runFirst: Int32Array;
  declare private runPages: Int32Array;
  private runCount = 1;

  constructor(pageSize = 4096, reserve = DEFAULT_RESERVE, limit = 0) {
    if (!Number.isInteger(pageSize) || pageSize < 4096 || (pageSize & (pageSize - 1)) !== 0) {
      throw new RangeError(`pageSize must be a power of two >= 4096, got ${pageSize}`);
    }
    const reserved = Math.ceil(reserve / pageSize) * pageSize;
    if (reserved <= pageSize || reserved > MAX_RESERVE) throw new RangeError(`reserve must be within (pageSize, 4 GiB), got ${reserve}`);
    this.pageSize = pageSize;
    this.reserved = reserved;
    this.limit = limit;
    this.buffer = spares.get(reserved)?.pop() ?? new ArrayBuffer(reserved);
    this.u8 = new Uint8Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.runFirst = new Int32Array(INITIAL_RUNS);
    this.runPages = new Int32Array(INITIAL_RUNS);
    this.runFirst[0] = 1;
    this.runPages[0] = reserved / pageSize - 1;
  }

  /** Offset of `pages` fresh zeroed pages, or 0. */
  allocPage(pages: number): number {
    const bytes = pages * this.pageSize;
    if (pages <= 0 || bytes > this.reserved) return 0;
    if (this.limit && (bytes > this.limit || this.bytesMapped > this.limit - bytes)) return 0;
    const runFirst = this.runFirst;
    const runPages = this.runPages;
    for (let i = 0; i < this.runCount; i++) {
      if (runPages[i]! < pages) continue;
      const first = runFirst[i]!;
      runFirst[i] = first + pages;
      runPages[i] = runPages[i]! - pages;
      if (runPages[i] === 0) this.removeRun(i);
      this.bytesMapped += bytes;
      if (this.bytesMapped > this.peakBytesMapped) this.peakBytesMapped = this.bytesMapped;
      const start = first * this.pageSize;
      const end = start + bytes;
      if (start < this.highWater) this.u8.fill(0, start, Math.min(end, this.highWater));
      if (end > this.highWater) this.highWater = end;
      this.mapCalls++;
      return start;
    }
    return 0;
  }

  freePage(start: number, pages: number): void {
    if (!start || !pages) return;
    const first = start / this.pageSize;
    const runFirst = this.runFirst;
    const runPages = this.runPages;
    const n = this.runCount;
    /* i: the first run above the freed one */
    let i = 0;
    while (i < n && runFirst[i]! < first) i++;
    const mergeBelow = i > 0 && runFirst[i - 1]! + runPages[i - 1]! === first;
    const mergeAbove = i < n && first + pages === runFirst[i]!;
    if (mergeBelow && mergeAbove) {
      runPages[i - 1] = runPages[i - 1]! + pages + runPages[i]!;
      this.removeRun(i);
    } else if (mergeBelow) {
      runPages[i - 1] = runPages[i - 1]! + pages;
    } else if (mergeAbove) {
      runFirst[i] = first;
      runPages[i] = runPages[i]! + pages;
    } else {
      this.insertRun(i, first, pages);
    }
    this.bytesMapped -= pages * this.pageSize;
    this.unmapCalls++;
  }

  /** Closes the gap at run i (C: memmove down). */
  private removeRun(i: number): void {
    const n = --this.runCount;
    for (let k = i; k < n; k++) {
      this.runFirst[k] = this.runFirst[k + 1]!;
      this.runPages[k] = this.runPages[k + 1]!;
    }
  }

  /** Opens a gap at run i for [first, first + pages) (C: memmove up; the arrays double when full). */
  private insertRun(i: number, first: number, pages: number): void {
    if (this.runCount === this.runFirst.length) {
      const runFirst = new Int32Array(this.runCount * 2);
      const runPages = new Int32Array(this.runCount * 2);
      runFirst.set(this.runFirst);
      runPages.set(this.runPages);
      this.runFirst = runFirst;
      this.runPages = runPages;
    }
    for (let k = this.runCount; k > i; k--) {
      this.runFirst[k] = this.runFirst[k - 1]!;
      this.runPages[k] = this.runPages[k - 1]!;
    }
    this.runFirst[i] = first;
    this.runPages[i] = pages;
    this.runCount++;
  }

  /**
   * Hands the address space to the next ArenaPages of the same size, cleared
   * (only up to the high water: nothing above was written). Replays make many
   * short-lived heaps; a fresh 1 GiB ArrayBuffer each time makes V8 count a GiB
   * of external memory per heap and run full collections in the middle of the
   * timed loops. After release this object and every view over it are dead.
   */
  release(): void {
    this.u8.fill(0, 0, this.highWater);
    const pool = spares.get(this.reserved) ?? [];
    if (pool.length < 2) pool.push(this.buffer);
    spares.set(this.reserved, pool);
    this.runCount = 0;
  }

  /** Zeroes, in `bytes` (a copy of the space from offset 0), every page that is free now (stale until handed out, on both sides). */
  clearFreeRuns(bytes: Uint8Array): void {
    for (let i = 0; i < this.runCount; i++) {
      const start = this.runFirst[i]! * this.pageSize;
      if (start >= bytes.length) break;
      bytes.fill(0, start, Math.min(bytes.length, start + this.runPages[i]! * this.pageSize));
    }
  }

}
