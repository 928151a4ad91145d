/**
 * @thi.ng/malloc on heaplab's traces: the JavaScript allocator a user would pick
 * instead of heaplab (npm; a port of tinyalloc over one ArrayBuffer), replayed op
 * by op as lib/replay/replay.ts replays a port, so that it stands on the same
 * table. It makes its own decisions (first fit over one address-ordered free
 * list, no page source), so there is no `equal` column for it: only its time
 * per operation, its failures and its memory (highest address used ÷ peak live
 * bytes). It is an optional dependency: absent, `available()` says why.
 */
import { createRequire } from 'node:module';
import { Op, type Trace } from '../trace/trace.js';
import { integerSizes } from './replay.js';

interface Pool {
  malloc(bytes: number): number;
  calloc(bytes: number, fill?: number): number;
  realloc(ptr: number, bytes: number): number;
  free(ptr: number): boolean;
  stats(): { top: number };
}
type PoolConstructor = new (opts: { size: number; align: number }) => Pool;

export const THING = '@thi.ng/malloc';

let loaded: PoolConstructor | string | undefined;

/** The MemPool class, or why it cannot be had. */
function memPool(): PoolConstructor | string {
  if (loaded === undefined) {
    try {
      const require = createRequire(import.meta.url);
      loaded = (require('@thi.ng/malloc') as { MemPool: PoolConstructor }).MemPool;
    } catch {
      loaded = `${THING} is not installed (npm install ${THING} to add it to the table)`;
    }
  }
  return loaded;
}

/** Whether the package is installed: true, or the note to print instead. */
export function thingAvailable(): true | string {
  const m = memPool();
  return typeof m === 'string' ? m : true;
}

export interface ThingResult {
  trace: string;
  ops: number;
  /** Why it cannot run this trace (then nothing else is set). */
  skipped?: string;
  nsPerOp?: number;
  failures?: number;
  /** Highest address the pool used ÷ peak live bytes requested. */
  memory?: number;
}

/** The pool's size: the trace's limit, else 1 GiB (addresses are 32-bit). */
function poolSize(trace: Trace): number {
  return trace.limit ? trace.limit : 1 << 30;
}

/** One pass; `sample` (untimed) tracks the pool's top and the live bytes. */
function pass(Pool: PoolConstructor, trace: Trace, sample: boolean): { ns: number; failures: number; memory: number } {
  const pool = new Pool({ size: poolSize(trace), align: 16 });
  const n = trace.op.length;
  const { op, id } = trace;
  const size = integerSizes(trace); // integers, as the ports get them (./replay.ts)
  const ptr = new Uint32Array(trace.maxId + 1).fill(0); // touched now: its page faults are not timed
  const bytesOf = sample ? new Float64Array(trace.maxId + 1) : undefined;
  const top = pool as unknown as { top: number };
  let live = 0;
  let peakLive = 0;
  let peakTop = 0;
  let failures = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const block = id[i]!;
    const bytes = size[i]!;
    let p = 0;
    switch (op[i]) {
      case Op.malloc: p = pool.malloc(bytes); break;
      case Op.calloc: p = pool.calloc(bytes); break;
      case Op.realloc:
        p = pool.realloc(ptr[block]!, bytes);
        if (p === 0) {
          failures++;
          continue;
        }
        break;
      case Op.free:
        pool.free(ptr[block]!);
        ptr[block] = 0;
        if (bytesOf) {
          live -= bytesOf[block]!;
          bytesOf[block] = 0;
        }
        continue;
      default:
        continue;
    }
    if (p === 0) failures++;
    ptr[block] = p;
    if (bytesOf && p) {
      live += bytes - bytesOf[block]!;
      bytesOf[block] = bytes;
      if (live > peakLive) peakLive = live;
      if (top.top > peakTop) peakTop = top.top;
    }
  }
  const ns = Number(process.hrtime.bigint() - start);
  return { ns, failures, memory: peakLive > 0 ? peakTop / peakLive : NaN };
}

/** Replays `trace` on a fresh MemPool: the best of `runs` timed passes, and one sampled pass for memory. */
export function replayThing(trace: Trace, runs = 3): ThingResult {
  const Pool = memPool();
  const ops = trace.op.length;
  if (typeof Pool === 'string') return { trace: trace.name, ops, skipped: Pool };
  if (trace.op.some((o) => o === Op.memalign)) return { trace: trace.name, ops, skipped: 'has memalign, which it does not offer' };
  if (trace.size.some((s) => s >= 2 ** 32)) return { trace: trace.name, ops, skipped: 'asks for 4 GiB or more (32-bit addresses)' };
  let best = Infinity;
  let failures = 0;
  for (let r = 0; r < runs; r++) {
    const p = pass(Pool, trace, false);
    best = Math.min(best, p.ns);
    failures = p.failures;
  }
  const sampled = pass(Pool, trace, true);
  return { trace: trace.name, ops, nsPerOp: best / ops, failures, memory: sampled.memory };
}
