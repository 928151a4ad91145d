/**
 * The comparison of a C allocator with its TypeScript port on one trace: same
 * offsets for every operation, same failures, same final statistics, same
 * bytes in the arena; and where they first part when they do not.
 */
import type { AllocatorKind } from '../kinds.js';
import { ArenaPages } from '../pages/arena.js';
import { portFactories } from '../ports/index.js';
import { Op, opNames, truncateTrace, type Trace } from '../trace/trace.js';
import { replayNative, replayPort, type ReplayResult } from './replay.js';
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
  if (c.walk && ts.walk) {
    const a = c.walk;
    const b = ts.walk;
    const n = Math.max(a.start.length, b.start.length);
    const show = (w: typeof a, i: number): string =>
      i < w.start.length ? `${['free', 'used', 'meta'][w.state[i]!]} ${w.size[i]} bytes at ${w.start[i]} (region ${w.region[i]})` : 'nothing';
    for (let i = 0; i < n; i++) {
      if (a.start[i] !== b.start[i] || a.size[i] !== b.size[i] || a.payload[i] !== b.payload[i] || a.usable[i] !== b.usable[i] || a.state[i] !== b.state[i] || a.region[i] !== b.region[i]) {
        return { what: `walk piece ${i}`, c: show(a, i), ts: show(b, i) };
      }
    }
  }
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

/** Timing has settled when neither best improved by SETTLE_GAIN for SETTLE_RUNS runs and SETTLE_QUIET_NS. */
export const SETTLE_RUNS = 8;
const SETTLE_GAIN = 0.03;
export const SETTLE_QUIET_NS = 600e6;
/** ... and stops adding runs after SETTLE_MAX_RUNS runs or SETTLE_BUDGET_NS of a trace's runs. */
export const SETTLE_MAX_RUNS = 400;
export const SETTLE_BUDGET_NS = 4e9;

/**
 * The best C and TS times of `run` (one timed run of each), over `runs` runs;
 * then, if `settle`, more runs until neither best has dropped by more than
 * SETTLE_GAIN for SETTLE_RUNS runs and SETTLE_QUIET_NS (within the caps). V8
 * compiles a port's loop again on another thread when a trace takes a path its
 * code had not seen, in 30-50 ms on this machine, and a trace's first dozen runs
 * could all end before that code was in: a port's first trace in `heaplab
 * compare`, 1 run in 3, read 4.6x where it settles at 1.6x. With the larger
 * inlining budget (lib/ports/jit.ts) a compile takes longer and the best code
 * comes later: with 150 ms of quiet and 2 s at most, dlmalloc's realloc-aligned
 * read 3.03x and 2.40x in two runs, with 600 ms and 4 s 2.25x and 2.23x.
 * `budgetNs` replaces the 4 s for traces whose runs are long (the bench's).
 */
export function bestOfSettled(run: () => [number, number], runs: number, settle: boolean,
  now: () => number = () => Number(process.hrtime.bigint()), budgetNs = SETTLE_BUDGET_NS): [number, number] {
  let cBest = Infinity;
  let tsBest = Infinity;
  const started = now();
  let gainedAt = started;
  let quiet = 0;
  for (let i = 0; ; i++) {
    if (i >= runs) {
      const t = now();
      if (!settle || i >= SETTLE_MAX_RUNS || t - started > budgetNs) break;
      if (quiet >= SETTLE_RUNS && t - gainedAt > SETTLE_QUIET_NS) break;
    }
    const [c, ts] = run();
    if (c < cBest * (1 - SETTLE_GAIN) || ts < tsBest * (1 - SETTLE_GAIN)) {
      quiet = 0;
      gainedAt = now();
    } else quiet++;
    cBest = Math.min(cBest, c);
    tsBest = Math.min(tsBest, ts);
  }
  return [cBest, tsBest];
}

/** Replays a trace in C and in the port, checks they agree, and times both. */
export function compareTrace(kind: AllocatorKind, trace: Trace, options: { snapshot?: boolean; timingRuns?: number } = {}): Comparison {
  const snapshot = options.snapshot ?? true;
  const c = replayNative(kind, trace, { snapshot, walk: true });
  const ts = replayPort(kind, trace, { snapshot, walk: true });
  const hostBytes = hostBytesOf(kind);
  let divergence = firstDivergence(trace, c, ts, hostBytes);
  if (!divergence) {
    // the heaps' walks half way through, while blocks are live (at the end most traces have freed them)
    const half = truncateTrace(trace, Math.floor(trace.op.length / 2));
    const d = firstDivergence(half, replayNative(kind, half, { walk: true }), replayPort(kind, half, { walk: true }));
    if (d) divergence = { ...d, what: `half way (operation ${half.op.length}): ${d.what}` };
  }
  // Timing: the best of several runs without offsets or snapshots, C and TS
  // alternating; a short trace runs more often (about 200 000 operations in all,
  // 3 to 50 runs), so that the port is timed once V8 has optimized it, as C is.
  const runs = options.timingRuns ?? Math.min(50, Math.max(3, Math.ceil(200_000 / Math.max(1, trace.op.length))));
  const [cBest, tsBest] = bestOfSettled(
    () => [replayNative(kind, trace, { offsets: false }).elapsedNs, replayPort(kind, trace, { offsets: false }).elapsedNs],
    runs,
    options.timingRuns === undefined,
  );
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
