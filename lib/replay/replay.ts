/**
 * One trace, replayed in C (inside the addon: one call for the whole trace) and in
 * a TypeScript port, and the comparison of the two: same offsets for every
 * operation, same failures, same final statistics, same bytes in the arena.
 */
import { InvalidArgumentError, statusError } from '../errors.js';
import type { AllocatorKind } from '../kinds.js';
import { binding } from '../addon/native.js';
import { ArenaPages, DEFAULT_RESERVE } from '../pages/arena.js';
import { portFactories } from '../ports/index.js';
import { Op, type Trace } from '../trace/workloads.js';

export interface ReplayStats {
  bytesMapped: number;
  peakBytesMapped: number;
  pageMaps: number;
  pageUnmaps: number;
  highWater?: number;
}

export interface ReplayResult {
  engine: 'c' | 'ts';
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
  bytesMappedAfterDestroy: number;
}

export interface ReplayOptions {
  pageSize?: number;
  reserve?: number;
  offsets?: boolean;
  snapshot?: boolean;
  /** Write each new block's first and last byte (off for the differential run: it would put data in the arena). */
  touch?: boolean;
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
  });
  if (typeof result === 'number') throw statusError(result, `replay(${kind})`);
  return { engine: 'c', ...result };
}

/** Replays `trace` in the TypeScript port, the same way native/replay.c does. */
export function replayPort(kind: AllocatorKind, trace: Trace, options: ReplayOptions = {}): ReplayResult {
  const factory = portFactories[kind];
  if (!factory) throw new InvalidArgumentError(`no TypeScript port of ${kind}`);
  const pages = new ArenaPages(options.pageSize ?? 4096, options.reserve ?? DEFAULT_RESERVE, trace.limit);
  const heap = factory(pages);
  if (!heap) throw statusError(1, `replay(${kind}, ts)`);
  const n = trace.op.length;
  const offsets = options.offsets === false ? undefined : new Float64Array(n);
  const ptr = new Float64Array(trace.maxId + 1);
  const touch = options.touch ?? false;
  const { op, id, size, alignLog2 } = trace;
  const u8 = pages.u8;
  let failures = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const block = id[i]!;
    const bytes = size[i]!;
    let p = 0;
    switch (op[i]) {
      case Op.malloc: p = heap.malloc(bytes); break;
      case Op.calloc: p = heap.calloc(1, bytes); break;
      case Op.memalign: p = heap.memalign(2 ** alignLog2[i]!, bytes); break;
      case Op.realloc:
        p = heap.realloc(ptr[block]!, bytes);
        if (p === 0) {
          failures++;
          if (offsets) offsets[i] = -1;
          continue;
        }
        break;
      case Op.free:
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
  const elapsedNs = Number(process.hrtime.bigint() - start);
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

const opNames: Record<number, string> = { 1: 'malloc', 2: 'calloc', 3: 'memalign', 4: 'realloc', 5: 'free' };

/** Describes operation i of a trace, for divergence reports. */
export function describeOp(trace: Trace, i: number): string {
  const name = opNames[trace.op[i]!] ?? `op${trace.op[i]}`;
  const id = trace.id[i]!;
  switch (trace.op[i]) {
    case Op.free: return `free(#${id})`;
    case Op.realloc: return `realloc(#${id}, ${trace.size[i]})`;
    case Op.memalign: return `memalign(${2 ** trace.alignLog2[i]!}, ${trace.size[i]}) -> #${id}`;
    default: return `${name}(${trace.size[i]}) -> #${id}`;
  }
}

export interface Divergence {
  /** What differs: the first diverging operation, a statistic, or arena bytes. */
  what: string;
  /** Index of the first diverging operation, when it is one. */
  index?: number;
  c: string;
  ts: string;
}

/** The first difference between two replays of the same trace, or null if equal. */
export function firstDivergence(trace: Trace, c: ReplayResult, ts: ReplayResult, hostBytes: Array<[number, number]> = []): Divergence | null {
  if (c.offsets && ts.offsets) {
    for (let i = 0; i < c.offsets.length; i++) {
      if (c.offsets[i] !== ts.offsets[i]) {
        const show = (v: number): string => (v < 0 ? 'NULL' : `offset ${v}`);
        return { what: `operation ${i}: ${describeOp(trace, i)}`, index: i, c: show(c.offsets[i]!), ts: show(ts.offsets[i]!) };
      }
    }
  }
  const fields: Array<[string, number | undefined, number | undefined]> = [
    ['failures', c.failures, ts.failures],
    ['liveBlocks', c.liveBlocks, ts.liveBlocks],
    ['invariants', c.invariants, ts.invariants],
    ['bytesMapped', c.stats.bytesMapped, ts.stats.bytesMapped],
    ['peakBytesMapped', c.stats.peakBytesMapped, ts.stats.peakBytesMapped],
    ['pageMaps', c.stats.pageMaps, ts.stats.pageMaps],
    ['pageUnmaps', c.stats.pageUnmaps, ts.stats.pageUnmaps],
    ['highWater', c.stats.highWater, ts.stats.highWater],
    ['bytesMappedAfterDestroy', c.bytesMappedAfterDestroy, ts.bytesMappedAfterDestroy],
  ];
  for (const [name, a, b] of fields) if (a !== b) return { what: `final ${name}`, c: String(a), ts: String(b) };
  if (c.snapshot && ts.snapshot) {
    const a = c.snapshot;
    const b = ts.snapshot;
    if (a.length !== b.length) return { what: 'arena size', c: String(a.length), ts: String(b.length) };
    const skip = new Uint8Array(a.length);
    for (const [at, len] of hostBytes) skip.fill(1, at, Math.min(a.length, at + len));
    const baseHigh = c.baseHigh ?? 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i] && !skip[i] && !partlyOverwrittenPointer(a, b, i, baseHigh)) {
        const word = i & ~7;
        const hex = (u: Uint8Array): string => Buffer.from(u.subarray(word, word + 8)).toString('hex');
        return { what: `arena byte at offset ${i} (word ${word})`, c: hex(a), ts: hex(b) };
      }
    }
  }
  return null;
}

/**
 * A stale pointer that the heap later overwrote in part (calloc clearing, or
 * realloc copying, a length that is not a multiple of 8) cannot be turned into
 * an offset by the C snapshot: its high half still holds the high half of the
 * arena's address. The arena base is 4 GiB-aligned and the region below 4 GiB,
 * so a pointer is baseHigh:offset. Byte i of such a word is equal in the low
 * half, and in the high half C has either 0 or the base's byte where the port
 * has 0. Anything else is a real difference.
 */
function partlyOverwrittenPointer(c: Uint8Array, ts: Uint8Array, i: number, baseHigh: number): boolean {
  const k = i & 7;
  if (k < 4 || ts[i] !== 0) return false;
  return c[i] === ((baseHigh >>> ((k - 4) * 8)) & 0xff);
}

export interface Comparison {
  kind: AllocatorKind;
  trace: string;
  ops: number;
  equal: boolean;
  divergence: Divergence | null;
  cNsPerOp: number;
  tsNsPerOp: number;
  /** TS time ÷ C time. */
  ratio: number;
}

/** Replays a trace in C and in the port, checks they agree, and times both. */
export function compareTrace(kind: AllocatorKind, trace: Trace, options: { snapshot?: boolean; timingRuns?: number } = {}): Comparison {
  const snapshot = options.snapshot ?? true;
  const c = replayNative(kind, trace, { snapshot });
  const ts = replayPort(kind, trace, { snapshot });
  const hostBytes = hostBytesOf(kind);
  const divergence = firstDivergence(trace, c, ts, hostBytes);
  // Timing: the best of a few runs without offsets or snapshots, C and TS alternating.
  let cBest = Infinity;
  let tsBest = Infinity;
  for (let run = 0; run < (options.timingRuns ?? 3); run++) {
    cBest = Math.min(cBest, replayNative(kind, trace, { offsets: false }).elapsedNs);
    tsBest = Math.min(tsBest, replayPort(kind, trace, { offsets: false }).elapsedNs);
  }
  const ops = trace.op.length;
  return {
    kind,
    trace: trace.name,
    ops,
    equal: divergence === null,
    divergence,
    cNsPerOp: cBest / ops,
    tsNsPerOp: tsBest / ops,
    ratio: tsBest / cBest,
  };
}

/** The host-pointer byte ranges of a port's heap (they live at fixed offsets in its control pages). */
function hostBytesOf(kind: AllocatorKind): Array<[number, number]> {
  const factory = portFactories[kind];
  if (!factory) return [];
  const pages = new ArenaPages(4096, 1 << 24, 0);
  const heap = factory(pages);
  if (!heap) return [];
  const ranges = heap.hostBytes();
  heap.destroy();
  pages.release();
  return ranges;
}
