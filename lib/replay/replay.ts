/**
 * One trace, replayed in C (inside the addon: one call for the whole trace) or
 * in a TypeScript port, on the arena page source: every operation's offset, the
 * final statistics and, if asked, the arena's bytes. ./compare.ts holds the two
 * side by side.
 */
import { InvalidArgumentError, statusError } from '../errors.js';
import type { AllocatorKind } from '../kinds.js';
import { binding } from '../addon/native.js';
import { ArenaPages, DEFAULT_RESERVE } from '../pages/arena.js';
import { portFactories } from '../ports/index.js';
import type { PortAllocator } from '../ports/types.js';
import { Op, type Trace } from '../trace/trace.js';
import { WalkBuilder, type Walk } from '../walk.js';

export interface ReplayStats {
  bytesMapped: number;
  peakBytesMapped: number;
  pageMaps: number;
  pageUnmaps: number;
  highWater?: number;
}

export interface ReplayResult {
  engine: 'native' | 'ts';
  elapsedNs: number;
  failures: number;
  liveBlocks: number;
  /** Broken invariants counted by the heap's checker after the trace. */
  invariants: number;
  stats: ReplayStats;
  /** Per operation: the block's offset in the arena, -1 for a failed allocation, 0 for free. */
  offsets?: Float64Array;
  /** The arena's bytes after the trace (pointers as offsets). */
  snapshot?: Uint8Array;
  /** C only: the high 32 bits of the arena's base address (the low 32 are 0). */
  baseHigh?: number;
  /** The heap's walk after the trace, before its blocks were freed (lib/heap/walk.ts). */
  walk?: Walk;
  bytesMappedAfterDestroy: number;
}

export interface ReplayOptions {
  pageSize?: number;
  reserve?: number;
  offsets?: boolean;
  snapshot?: boolean;
  /** Write each new block's first and last byte (off for the differential run: it would put data in the arena). */
  touch?: boolean;
  /** Walk the heap after the trace (offsets in the arena). */
  walk?: boolean;
  /** Port only: called after every `every`-th operation (and the last) with the op's index and the heap, untimed work allowed. */
  sample?: { every: number; fn: (op: number, heap: PortAllocator, pages: ArenaPages) => void };
}

/** Replays `trace` in the C allocator over the arena page source. */
export function replayNative(kind: AllocatorKind, trace: Trace, options: ReplayOptions = {}): ReplayResult {
  const result = binding.replay(kind, trace, {
    pages: 'arena',
    limit: trace.limit,
    pageSize: options.pageSize ?? 4096,
    reserve: options.reserve ?? DEFAULT_RESERVE,
    offsets: options.offsets ?? true,
    snapshot: options.snapshot ?? false,
    touch: options.touch ?? false,
    walk: options.walk ?? false,
  });
  if (typeof result === 'number') throw statusError(result, `replay(${kind})`);
  return { engine: 'native', ...result };
}

/**
 * The port's side of the timed loop, on its own: a function V8 optimizes once and
 * keeps. Inline in replayPort, the loop ran on-stack-replaced code that the code
 * after it (first reached at the loop's end) deoptimized on every call, so each
 * run began in the interpreter again (`--trace-deopt`: 898 deopts of replayPort
 * in 300 runs of one trace), and the port was timed as partly unoptimized.
 * Returns the number of failed allocations. It reads nothing but its arguments
 * (the op codes too) and globals: replayOpsFor compiles copies of its text.
 */
function replayOps(heap: PortAllocator, pages: ArenaPages, trace: Trace, size: Int32Array | Float64Array, ptr: Uint32Array,
  offsets: Float64Array | undefined, touch: boolean, sample: ReplayOptions['sample'], codes: typeof Op): number {
  const n = trace.op.length;
  const { op, id, alignLog2 } = trace;
  const u8 = pages.u8;
  // the codes in locals: a case that reads codes.x is a load at every operation
  const { malloc: MALLOC, calloc: CALLOC, memalign: MEMALIGN, realloc: REALLOC, free: FREE } = codes;
  let failures = 0;
  const every = sample ? Math.max(1, Math.floor(sample.every)) : 0;
  for (let i = 0; i < n; i++) {
    // the heap as operations 0 .. i - 1 left it (the last sample follows the loop)
    if (sample && i > 0 && i % every === 0) sample.fn(i - 1, heap, pages);
    const block = id[i]!;
    const bytes = size[i]!;
    let p = 0;
    switch (op[i]) {
      case MALLOC: p = heap.malloc(bytes); break;
      case CALLOC: p = heap.calloc(1, bytes); break;
      case MEMALIGN: {
        const log2 = alignLog2[i]!;
        p = heap.memalign(log2 < 31 ? 1 << log2 : 2 ** log2, bytes);
        break;
      }
      case REALLOC:
        p = heap.realloc(ptr[block]!, bytes);
        if (p === 0) {
          failures++;
          if (offsets) offsets[i] = -1;
          continue;
        }
        break;
      case FREE:
        heap.free(ptr[block]!);
        ptr[block] = 0;
        if (offsets) offsets[i] = 0;
        continue;
      default:
        continue;
    }
    if (p === 0) failures++;
    else if (touch && bytes) {
      u8[p] = 1;
      u8[p + bytes - 1] = 1;
    }
    ptr[block] = p;
    if (offsets) offsets[i] = p === 0 ? -1 : p;
  }
  return failures;
}

/**
 * The trace's sizes as the port's calls should get them: small integers. V8's
 * interpreter reads a Float64Array's element as a heap number (even 16), so
 * every port function that took a size or a pointer from one recorded
 * "Number" and was optimized into double arithmetic, with a conversion back
 * to an integer at each typed-array index. Traces whose sizes all fit an
 * Int32Array get that copy (made once per trace); the block table is a
 * Uint32Array (offsets in the port's space are below 4 GiB). @thi.ng/malloc's
 * replay (./thing.ts) gets both too.
 */
const intSizes = new WeakMap<Trace, Int32Array | Float64Array>();
export function integerSizes(trace: Trace): Int32Array | Float64Array {
  let sizes = intSizes.get(trace);
  if (!sizes) {
    sizes = trace.size.every((bytes) => bytes <= 0x7fffffff) ? Int32Array.from(trace.size) : trace.size;
    intSizes.set(trace, sizes);
  }
  return sizes;
}

/**
 * One copy of replayOps per port, compiled from its text. V8 keeps type
 * feedback per function: one loop for the three ports saw three heap classes
 * at every heap call (polymorphic, so less was inlined), and the ports timed
 * after the first ran in code shaped by the others' feedback (`heaplab
 * compare`, medians of 3 runs: dlmalloc's geometric mean 2.04x -> 1.94x,
 * liballoc's 1.96x -> 1.81x). The loop keeps its one definition above.
 */
const replayOpsCopies = new Map<AllocatorKind, typeof replayOps>();
function replayOpsFor(kind: AllocatorKind): typeof replayOps {
  let copy = replayOpsCopies.get(kind);
  if (!copy) {
    try {
      copy = new Function(`return ${replayOps.toString()}`)() as typeof replayOps;
    } catch {
      copy = replayOps; // node --disallow-code-generation-from-strings: the one loop, shared
    }
    replayOpsCopies.set(kind, copy);
  }
  return copy;
}

/** Replays `trace` in the TypeScript port, op by op as native/replay/replay.h's hl_replay_step does. */
export function replayPort(kind: AllocatorKind, trace: Trace, options: ReplayOptions = {}): ReplayResult {
  const factory = portFactories[kind];
  if (!factory) throw new InvalidArgumentError(`no TypeScript port of ${kind}`);
  const pages = new ArenaPages(options.pageSize ?? 4096, options.reserve ?? DEFAULT_RESERVE, trace.limit);
  const heap = factory(pages);
  if (!heap) throw statusError(1, `replay(${kind}, ts)`);
  const n = trace.op.length;
  const offsets = options.offsets === false ? undefined : new Float64Array(n);
  // touched now, as the C replay's table is (MAP_POPULATE): a table's first-touch
  // page faults are not the allocator's time
  const ptr = new Uint32Array(trace.maxId + 1).fill(0);
  const sizes = integerSizes(trace);
  const start = process.hrtime.bigint();
  const failures = replayOpsFor(kind)(heap, pages, trace, sizes, ptr, offsets, options.touch ?? false, options.sample, Op);
  const elapsedNs = Number(process.hrtime.bigint() - start);
  if (options.sample && n > 0) options.sample.fn(n - 1, heap, pages);
  let liveBlocks = 0;
  for (let b = 0; b <= trace.maxId; b++) if (ptr[b]) liveBlocks++;
  const result: ReplayResult = {
    engine: 'ts',
    elapsedNs,
    failures,
    liveBlocks,
    invariants: heap.check(),
    stats: {
      bytesMapped: pages.bytesMapped,
      peakBytesMapped: pages.peakBytesMapped,
      pageMaps: pages.mapCalls,
      pageUnmaps: pages.unmapCalls,
      highWater: pages.highWater,
    },
    bytesMappedAfterDestroy: 0,
  };
  if (offsets) result.offsets = offsets;
  if (options.walk) {
    const walk = new WalkBuilder();
    heap.walk(walk);
    result.walk = walk.build();
  }
  if (options.snapshot) {
    const snap = pages.u8.slice(0, pages.highWater);
    pages.clearFreeRuns(snap);
    for (const [at, len] of heap.hostBytes()) snap.fill(0, at, at + len);
    result.snapshot = snap;
  }
  for (let b = 0; b <= trace.maxId; b++) if (ptr[b]) heap.free(ptr[b]!);
  heap.destroy();
  result.bytesMappedAfterDestroy = pages.bytesMapped;
  pages.release();
  return result;
}
