/**
 * The seeded generators of traces (./trace.ts): the same seed gives the same trace.
 */
import { type Trace, TraceBuilder } from './trace.js';

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A size between lo and hi, uniform in log scale (how real programs' sizes spread). */
export function logUniform(r: () => number, lo: number, hi: number): number {
  return Math.floor(Math.exp(Math.log(lo) + r() * (Math.log(hi + 1) - Math.log(lo))));
}

export interface ChurnShape {
  /** Operations to emit. */
  ops: number;
  /** Live blocks the churn hovers around. */
  live: number;
  size: (r: () => number, step: number) => number;
  /** Chance that a replacement is a realloc of the victim instead of free + alloc. */
  realloc?: number;
  /** Chance that an allocation asks for an alignment above 16 (2**5 .. 2**maxAlignLog2). */
  aligned?: number;
  maxAlignLog2?: number;
  /** Chance of calloc for a plain allocation. */
  zero?: number;
  /** Free the oldest block instead of a random one (FIFO lifetimes). */
  fifo?: boolean;
  /** Free everything at the end (default true). */
  drain?: boolean;
}

/** The general generator: fill to `live` blocks, then replace a victim per step. */
export function churn(name: string, seed: number, shape: ChurnShape, limit = 0): Trace {
  const r = rng(seed);
  const b = new TraceBuilder();
  const live: number[] = [];
  const allocate = (step: number): void => {
    const size = shape.size(r, step);
    if (shape.aligned && r() < shape.aligned) {
      live.push(b.alloc(size, 5 + Math.floor(r() * ((shape.maxAlignLog2 ?? 12) - 4))));
    } else {
      live.push(b.alloc(size, 4, shape.zero !== undefined && r() < shape.zero));
    }
  };
  let step = 0;
  while (b.length < shape.ops) {
    step++;
    if (live.length < shape.live) {
      allocate(step);
      continue;
    }
    const at = shape.fifo ? 0 : Math.floor(r() * live.length);
    const victim = live[at]!;
    if (shape.realloc && r() < shape.realloc) {
      b.realloc(victim, shape.size(r, step));
      continue;
    }
    b.free(victim);
    if (shape.fifo) live.shift();
    else {
      live[at] = live[live.length - 1]!;
      live.pop();
    }
    allocate(step);
  }
  if (shape.drain !== false) for (const id of live) b.free(id);
  return b.build(name, limit);
}

/** Phases of growth then partial release: builds fragmentation on purpose. */
export function ramps(name: string, seed: number, rounds: number, perRound: number, lo: number, hi: number): Trace {
  const r = rng(seed);
  const b = new TraceBuilder();
  const live: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < perRound; i++) live.push(b.alloc(logUniform(r, lo, hi)));
    // free every other block of the newest ones: holes between survivors
    for (let i = live.length - perRound; i < live.length; i += 2) {
      const id = live[i]!;
      if (id >= 0) {
        b.free(id);
        live[i] = -1;
      }
    }
  }
  for (const id of live) if (id >= 0) b.free(id);
  return b.build(name);
}

/** A stack discipline: allocate a burst, free it in reverse (parsers, recursion). */
export function stack(name: string, seed: number, bursts: number, depth: number, lo: number, hi: number): Trace {
  const r = rng(seed);
  const b = new TraceBuilder();
  for (let k = 0; k < bursts; k++) {
    const ids: number[] = [];
    const d = 1 + Math.floor(r() * depth);
    for (let i = 0; i < d; i++) ids.push(b.alloc(logUniform(r, lo, hi)));
    for (let i = ids.length - 1; i >= 0; i--) b.free(ids[i]!);
  }
  return b.build(name);
}

/** Grows a few buffers by realloc, like vectors and string builders. */
export function growing(name: string, seed: number, buffers: number, steps: number): Trace {
  const r = rng(seed);
  const b = new TraceBuilder();
  const ids = Array.from({ length: buffers }, () => b.alloc(16));
  const sizes = ids.map(() => 16);
  for (let s = 0; s < steps; s++) {
    const k = Math.floor(r() * buffers);
    sizes[k] = Math.min(Math.ceil(sizes[k]! * (1.2 + r())), 4 << 20);
    b.realloc(ids[k]!, sizes[k]!);
    if (r() < 0.05) b.free(b.alloc(logUniform(r, 8, 512)));
    if (sizes[k]! >= 4 << 20) {
      b.realloc(ids[k]!, 16);
      sizes[k] = 16;
    }
  }
  for (const id of ids) b.free(id);
  return b.build(name);
}

/** Allocates past a byte limit (so allocations fail), frees half, allocates again. */
export function outOfMemory(name: string, seed: number, limit: number, lo: number, hi: number): Trace {
  const r = rng(seed);
  const b = new TraceBuilder();
  const ids: number[] = [];
  let planned = 0;
  while (planned < limit * 1.5) {
    const size = logUniform(r, lo, hi);
    planned += size;
    ids.push(b.alloc(size));
  }
  for (let i = 0; i < ids.length; i += 2) b.free(ids[i]!);
  for (let i = 0; i < ids.length / 2; i++) ids.push(b.alloc(logUniform(r, lo, hi)));
  for (let i = 1; i < ids.length; i += 2) b.free(ids[i]!);
  return b.build(name, limit);
}

/**
 * The default traces: the differential suite and `heaplab compare` replay these.
 * `scale` multiplies operation counts (1 = the test size).
 */
export function defaultTraces(scale = 1): Trace[] {
  const n = (ops: number): number => Math.max(100, Math.round(ops * scale));
  const small = (r: () => number): number => 8 + Math.floor(r() * 120);
  const mixed = (r: () => number): number => logUniform(r, 8, 64 * 1024);
  return [
    churn('small-churn', 1, { ops: n(20000), live: 1000, size: small }),
    churn('small-churn-fifo', 2, { ops: n(20000), live: 500, size: small, fifo: true }),
    churn('tiny-exact', 3, { ops: n(10000), live: 300, size: (r) => [8, 16, 24, 32, 48, 64][Math.floor(r() * 6)]! }),
    churn('mixed-sizes', 4, { ops: n(20000), live: 2000, size: mixed }),
    churn('mixed-calloc', 5, { ops: n(10000), live: 800, size: mixed, zero: 0.3 }),
    churn('medium-blocks', 6, { ops: n(10000), live: 300, size: (r) => logUniform(r, 1024, 128 * 1024) }),
    churn('large-blocks', 7, { ops: n(3000), live: 40, size: (r) => logUniform(r, 128 * 1024, 4 << 20) }),
    churn('huge-few', 8, { ops: n(400), live: 4, size: (r) => logUniform(r, 1 << 20, 32 << 20) }),
    churn('aligned-small', 9, { ops: n(10000), live: 500, size: small, aligned: 0.5, maxAlignLog2: 12 }),
    churn('aligned-large', 10, { ops: n(4000), live: 100, size: mixed, aligned: 0.6, maxAlignLog2: 20 }),
    churn('realloc-heavy', 11, { ops: n(15000), live: 500, size: mixed, realloc: 0.6 }),
    churn('realloc-small', 12, { ops: n(15000), live: 800, size: small, realloc: 0.5 }),
    churn('realloc-aligned', 13, { ops: n(6000), live: 200, size: mixed, realloc: 0.4, aligned: 0.3, maxAlignLog2: 14 }),
    churn('shifting', 14, { ops: n(20000), live: 1000, size: (r, s) => logUniform(r, 8 + (s % 5000), 256 + (s % 5000) * 8) }),
    churn('zero-and-one', 15, { ops: n(5000), live: 200, size: (r) => Math.floor(r() * 2) }),
    ramps('fragmenting-ramps', 16, n(20) > 100 ? Math.round(20 * scale) : 20, 400, 16, 4096),
    ramps('fragmenting-large', 17, 12, 120, 4096, 256 * 1024),
    stack('stack-bursts', 18, n(1500), 40, 16, 2048),
    growing('growing-vectors', 19, 16, n(4000)),
    churn('page-sized', 20, { ops: n(8000), live: 300, size: (r) => 4096 * (1 + Math.floor(r() * 4)) - 16 * Math.floor(r() * 3) }),
    outOfMemory('out-of-memory', 21, 8 << 20, 1024, 256 * 1024),
    outOfMemory('out-of-memory-small', 22, 2 << 20, 16, 4096),
    churn('keep-live', 23, { ops: n(8000), live: 600, size: mixed, drain: false }),
  ];
}

/**
 * Traces at the edges: sizes up to 2**53 - 1, around 2**32 and the allocators'
 * thresholds, alignments up to 2**41, calloc and realloc of huge sizes, under a
 * limit so impossible requests fail fast. The differential suite replays these
 * beside the default traces: C and port must fail, and succeed, alike.
 */
export function edgeTraces(): Trace[] {
  const make = (seed: number, limit: number): Trace => {
    const r = rng(seed);
    const b = new TraceBuilder();
    const live: number[] = [];
    const extremes = [
      0, 1, 2 ** 53 - 1, 2 ** 53 - 16, 2 ** 52, 2 ** 40, 2 ** 33, 2 ** 32, 2 ** 32 - 1, 2 ** 31, 2 ** 30, 2 ** 29,
      2 ** 25, 2 ** 25 - 8, 1 << 24, 262144 - 8, 262144 - 24, 262144, 65536 - 16, 511, 512, 504, 496,
    ];
    for (let i = 0; i < 5000; i++) {
      const x = r();
      const size = r() < 0.08 ? extremes[Math.floor(r() * extremes.length)]! : logUniform(r, 1, r() < 0.1 ? 16 << 20 : 1 << 16);
      if (live.length && x < 0.4) {
        const k = Math.floor(r() * live.length);
        b.free(live[k]!);
        live.splice(k, 1);
      } else if (live.length && x < 0.6) {
        b.realloc(live[Math.floor(r() * live.length)]!, size);
      } else {
        live.push(b.alloc(size, r() < 0.2 ? 4 + Math.floor(r() * 38) : 4, r() < 0.2));
      }
    }
    return b.build(`edge-${seed}`, limit);
  };
  return [make(3, 48 << 20), make(4, 8 << 20), make(7, 20 << 20)];
}
