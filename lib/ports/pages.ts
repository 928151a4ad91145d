/**
 * The TypeScript twin of native/pages_arena.c: the same rule, so a port and its C
 * original see the same page offsets for the same requests.
 *
 *   - the address space is a row of pages 0 .. N-1; page 0 is never handed out,
 *     so offset 0 stands for NULL;
 *   - free page runs are kept sorted by first page, adjacent runs always merged;
 *   - allocPage(n) takes the first n pages of the lowest-addressed run with at
 *     least n pages, or returns 0 if none has or the limit would be passed;
 *   - freePage(p, n) returns the run (merging with its neighbours) and clears it,
 *     so pages read as zero when handed out again.
 *
 * The bytes live in one resizable ArrayBuffer that grows (doubling, up to the
 * reservation) to cover the highest page handed out; typed-array views over it
 * track its length, so they never need to be re-made.
 */

export interface PageRun {
  first: number;
  count: number;
}

/** Default reservation: 1 GiB of address space, the most a port heap can span. */
export const DEFAULT_RESERVE = 1 << 30;
/** Pointers in port memory are 64-bit fields whose high half stays 0: the space must stay below 4 GiB. */
export const MAX_RESERVE = 2 ** 32 - 65536;

export class ArenaPages {
  readonly pageSize: number;
  readonly reserved: number;
  readonly limit: number;
  bytesMapped = 0;
  peakBytesMapped = 0;
  mapCalls = 0;
  unmapCalls = 0;
  /** End offset of the highest page ever handed out. */
  highWater = 0;
  readonly buffer: ArrayBuffer;
  /** Views over the whole space; they grow with it. */
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly runs: PageRun[];

  constructor(pageSize = 4096, reserve = DEFAULT_RESERVE, limit = 0) {
    if (!Number.isInteger(pageSize) || pageSize < 4096 || (pageSize & (pageSize - 1)) !== 0) {
      throw new RangeError(`pageSize must be a power of two >= 4096, got ${pageSize}`);
    }
    const reserved = Math.ceil(reserve / pageSize) * pageSize;
    if (reserved <= pageSize || reserved > MAX_RESERVE) throw new RangeError(`reserve must be within (pageSize, 4 GiB), got ${reserve}`);
    this.pageSize = pageSize;
    this.reserved = reserved;
    this.limit = limit;
    this.buffer = new ArrayBuffer(pageSize, { maxByteLength: reserved });
    this.u8 = new Uint8Array(this.buffer);
    this.u32 = new Uint32Array(this.buffer);
    this.runs = [{ first: 1, count: reserved / pageSize - 1 }];
  }

  /** Offset of `pages` fresh zeroed pages, or 0. */
  allocPage(pages: number): number {
    const bytes = pages * this.pageSize;
    if (pages <= 0 || bytes > this.reserved) return 0;
    if (this.limit && (bytes > this.limit || this.bytesMapped > this.limit - bytes)) return 0;
    const runs = this.runs;
    for (let i = 0; i < runs.length; i++) {
      const run = runs[i]!;
      if (run.count < pages) continue;
      const first = run.first;
      run.first += pages;
      run.count -= pages;
      if (run.count === 0) runs.splice(i, 1);
      this.bytesMapped += bytes;
      if (this.bytesMapped > this.peakBytesMapped) this.peakBytesMapped = this.bytesMapped;
      const end = (first + pages) * this.pageSize;
      if (end > this.highWater) this.highWater = end;
      this.#cover(end);
      this.mapCalls++;
      return first * this.pageSize;
    }
    return 0;
  }

  freePage(start: number, pages: number): void {
    if (!start || !pages) return;
    const first = start / this.pageSize;
    this.u8.fill(0, start, start + pages * this.pageSize);
    const runs = this.runs;
    let i = 0;
    while (i < runs.length && runs[i]!.first < first) i++;
    const below = i > 0 ? runs[i - 1]! : undefined;
    const above = i < runs.length ? runs[i]! : undefined;
    const mergeBelow = below !== undefined && below.first + below.count === first;
    const mergeAbove = above !== undefined && first + pages === above.first;
    if (mergeBelow && mergeAbove) {
      below.count += pages + above.count;
      runs.splice(i, 1);
    } else if (mergeBelow) {
      below.count += pages;
    } else if (mergeAbove) {
      above.first = first;
      above.count += pages;
    } else {
      runs.splice(i, 0, { first, count: pages });
    }
    this.bytesMapped -= pages * this.pageSize;
    this.unmapCalls++;
  }

  /** Grows the buffer (doubling) so bytes below `end` exist. */
  #cover(end: number): void {
    const have = this.buffer.byteLength;
    if (end <= have) return;
    let want = have;
    while (want < end) want *= 2;
    this.buffer.resize(Math.min(want, this.reserved));
  }
}
