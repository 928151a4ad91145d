/**
 * A heap's walk: every piece of memory it holds, as the design's walker reports
 * it (native/allocator.h's hl_walker; each port's `walk` mirrors its C). Kept in
 * columns, as C hands it over: piece i is start[i] .. start[i] + size[i]; a
 * block's user bytes are payload[i] .. payload[i] + usable[i], the rest of it is
 * the design's overhead; state[i] is WalkState; region[i] the design's own
 * notion (TLSF pool, dlmalloc segment, liballoc major; 0: control pages or
 * direct chunks). Offsets in the port's space or the C arena; addresses on mmap.
 */
import type { NativeWalk } from '../binding.js';

export const WalkState = { free: 0, used: 1, meta: 2 } as const;
export type WalkStateCode = (typeof WalkState)[keyof typeof WalkState];

/** The columns (binding.d.ts's NativeWalk: the addon hands them over in this shape). */
export type Walk = NativeWalk;

/** Collects a walk piece by piece (what a port's walk writes into). */
export class WalkBuilder {
  readonly #start: number[] = [];
  readonly #size: number[] = [];
  readonly #payload: number[] = [];
  readonly #usable: number[] = [];
  readonly #state: number[] = [];
  readonly #region: number[] = [];

  add(start: number, size: number, payload: number, usable: number, state: WalkStateCode, region: number): void {
    this.#start.push(start);
    this.#size.push(size);
    this.#payload.push(payload);
    this.#usable.push(usable);
    this.#state.push(state);
    this.#region.push(region);
  }

  build(): Walk {
    return {
      start: Float64Array.from(this.#start),
      size: Float64Array.from(this.#size),
      payload: Float64Array.from(this.#payload),
      usable: Float64Array.from(this.#usable),
      state: Uint8Array.from(this.#state),
      region: Uint32Array.from(this.#region),
    };
  }
}

/** What a walk says about a heap's use of its memory (bytes unless said). */
export interface WalkFigures {
  /** Bytes the walk covers: every piece. */
  heldBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** The design's own bytes outside blocks: control pages, pool sentinels, segment footers, major headers. */
  metaBytes: number;
  /** Overhead inside used blocks: size - usable (headers, footers). */
  headerBytes: number;
  /** Used blocks' usable bytes beyond what was asked, over the blocks whose request the heap knows. */
  slackBytes?: number;
  /** Bytes asked for by the blocks whose request the heap knows. */
  requestedBytes?: number;
  usedBlocks: number;
  freeBlocks: number;
  largestFree: number;
  /** 1 - largestFree ÷ freeBytes: 0 when all free memory is one block, near 1 when it is in crumbs. */
  fragmentation: number;
  /** Free bytes by block size: [upper bound of the class (a power of two), bytes]. */
  freeBySize: Array<[number, number]>;
  /** Whole pages that lie inside free blocks: held from the system, holding nothing. */
  freePages: number;
}

/** The figures of a walk; `requested` (per piece: bytes asked, NaN where not known) adds the slack. */
export function walkFigures(walk: Walk, pageSize: number, requested?: Float64Array): WalkFigures {
  let held = 0, used = 0, free = 0, meta = 0, header = 0, usedBlocks = 0, freeBlocks = 0, largest = 0, freePages = 0;
  let slack = 0;
  let asked = 0;
  const bySize = new Map<number, number>();
  for (let i = 0; i < walk.start.length; i++) {
    const size = walk.size[i]!;
    held += size;
    const state = walk.state[i];
    if (state === WalkState.used) {
      used += size;
      usedBlocks++;
      header += size - walk.usable[i]!;
      const r = requested?.[i];
      if (r !== undefined && !Number.isNaN(r)) {
        slack += walk.usable[i]! - r;
        asked += r;
      }
    } else if (state === WalkState.free) {
      free += size;
      freeBlocks++;
      if (size > largest) largest = size;
      const cls = 2 ** Math.ceil(Math.log2(Math.max(16, size)));
      bySize.set(cls, (bySize.get(cls) ?? 0) + size);
      const start = walk.start[i]!;
      const firstPage = Math.ceil(start / pageSize);
      const endPage = Math.floor((start + size) / pageSize);
      if (endPage > firstPage) freePages += endPage - firstPage;
    } else meta += size;
  }
  const figures: WalkFigures = {
    heldBytes: held,
    usedBytes: used,
    freeBytes: free,
    metaBytes: meta,
    headerBytes: header,
    usedBlocks,
    freeBlocks,
    largestFree: largest,
    fragmentation: free > 0 ? 1 - largest / free : 0,
    freeBySize: [...bySize].sort((a, b) => a[0] - b[0]),
    freePages,
  };
  if (requested) {
    figures.slackBytes = slack;
    figures.requestedBytes = asked;
  }
  return figures;
}

/** What heap.walk() returns: the walk, each used block's request where the heap knows it, and the figures. */
export interface HeapWalk extends Walk {
  /** Per piece: the bytes its block was asked for; NaN for free and meta pieces and blocks this heap did not hand out. */
  requested: Float64Array;
  /** What start and payload count from: 0 (addresses) on the mmap page source, else the offset 0 of the arena or port space. */
  base: number;
  pageSize: number;
  figures: WalkFigures;
}

/** A HeapWalk from its columns. */
export function heapWalk(walk: Walk, requested: Float64Array, base: number, pageSize: number): HeapWalk {
  return { ...walk, requested, base, pageSize, figures: walkFigures(walk, pageSize, requested) };
}
