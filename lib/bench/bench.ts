/**
 * The benchmark: every allocator on the same workloads, in one run, as ratios to
 * glibc's malloc. See docs/results.md for a run and how to read it.
 *
 * Each (allocator, workload) pair runs in a fresh child process (lib/bench/child.ts)
 * through the addon's `bench` (native/bench/bench.c: the whole trace in C, per-operation
 * latency, memory sampled over time). The TypeScript ports replay the same traces in
 * children of their own too (lib/replay/replay.ts replayPort; child.ts says why), and the
 * Node-API paths (alloc + free of native Buffers through createHeap) are timed here,
 * beside Buffer.allocUnsafe.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchJob, BenchRunResult, HistogramData, PortJob, PortRunResult } from './child.js';
import type { AllocatorRun, BenchReport, LatencySummary, NapiResult, PeerStatus, WorkloadResult, HeapMapSummary } from './report.js';
import { benchWorkloads, recordProgram, recordedPrograms, type Workload } from './workloads.js';
import { availableAllocators, createHeap } from '../heap/heap.js';
import { createUnsafeHeap } from '../heap/unsafe-heap.js';
import { buildHeapMap, renderHeapMapSection } from '../map/map.js';
import { type AllocatorKind, allocatorKinds, isAllocatorName } from '../kinds.js';
import { packageRoot } from '../util/package-root.js';
import { portFactories } from '../ports/index.js';
import { relaunchArgsForPorts, type PortJit } from '../ports/jit.js';
import { summarizeTrace, writeTrace } from '../trace/file.js';
import { churn } from '../trace/workloads.js';
import { binding } from '../addon/native.js';
import { statusError } from '../errors.js';
import { peerNames, peerPackages } from './peers.js';
import { median } from '../util/stats.js';

export { peerNames, peerPackages, type PeerName } from './peers.js';

export interface BenchOptions {
  /** The quick run: about 0.15 of the full operation counts, one throughput pass. */
  quick?: boolean;
  /** Multiplies operation counts (default 1, or 0.15 with quick). */
  scale?: number;
  /** Only these allocators (heaplab's, glibc, peers); default all that are available. */
  allocators?: string[];
  /**
   * More peers: malloc-compatible shared libraries, each loaded with
   * dlopen(RTLD_LOCAL) in its own child and driven through the malloc, free,
   * realloc, posix_memalign (and calloc, malloc_usable_size, malloc_trim where it
   * defines them) that it defines itself; memory from the resident set. A library
   * that cannot be loaded, lacks a symbol or crashes costs only its own row.
   */
  libraries?: Array<{ name: string; path: string }>;
  /** Only these workloads, by name. */
  workloads?: string[];
  /** Replaces the generated workloads (tests use tiny ones). */
  customWorkloads?: Workload[];
  /** Record python3, gcc and node at bench time (default true). */
  record?: boolean;
  /** Longest recorded trace replayed (default 2 000 000, quick 300 000). */
  recordMaxOps?: number;
  /** Throughput passes per run, best kept (default 3, quick 1). */
  throughputRuns?: number;
  /** Run the TypeScript ports (default true). */
  ports?: boolean;
  /** Time the Node-API paths (default true); `napiScale` multiplies their iterations. */
  napi?: boolean;
  /** Heap maps of the stable workload and a recorded program (default true; full runs only). */
  maps?: boolean;
  napiScale?: number;
  /**
   * glibc's footprint is read from mallinfo2, which also counts what Node itself
   * freed into glibc's arenas before the run: below this many live bytes (default
   * 2 MiB) the trace's blocks fit in that slack and glibc's figure (and every
   * memory ratio to it) is shown as unknown. heaplab's allocators and the peers are
   * used by nothing else in the run's process, so theirs are exact at any size.
   */
  memoryFloor?: number;
  /** Seconds before a child run is killed (default 300). */
  timeout?: number;
  /**
   * Called as each step finishes (the CLI's progress bar). Steps come in two
   * phases, each with its exact total: 'setup' (peer probes, recordings), then 'runs'.
   */
  onStep?: (what: string, phase: 'setup' | 'runs', total: number) => void;
}



function familyOf(name: string): AllocatorRun['family'] {
  return isAllocatorName(name) ? 'heaplab' : name === 'glibc' ? 'system' : 'peer';
}

/** The child script: next to this module when built, else in dist/ (vitest runs lib/ sources). */
function childScript(): string {
  const here = join(dirname(fileURLToPath(import.meta.url)), 'child.js');
  return existsSync(here) ? here : join(packageRoot, 'dist', 'bench', 'child.js');
}

/** jemalloc's library uses the initial-exec TLS model: a dlopen needs static TLS room reserved at start. */
function childEnv(): NodeJS.ProcessEnv {
  const tunable = 'glibc.rtld.optional_static_tls=16384';
  const existing = process.env['GLIBC_TUNABLES'];
  return { ...process.env, GLIBC_TUNABLES: existing ? `${existing}:${tunable}` : tunable };
}

type ChildOutcome<T = BenchRunResult> = { ok: true; result: T } | { ok: false; error: string };

/** Runs one job (a BenchJob or a PortJob, by `name` in dir) in child.ts, in a node started with `nodeArgs`. */
function runChild<T = BenchRunResult>(dir: string, name: string, job: BenchJob | PortJob, timeoutMs: number, nodeArgs: string[] = []): ChildOutcome<T> {
  const jobFile = join(dir, `job-${name}.json`);
  writeFileSync(jobFile, JSON.stringify(job));
  const child = spawnSync(process.execPath, [...nodeArgs, childScript(), jobFile], {
    env: childEnv(),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.error) return { ok: false, error: child.error.message };
  const line = (child.stdout ?? '').trim().split('\n').pop() ?? '';
  let parsed: (T & { error?: undefined }) | { error: string } | undefined;
  try {
    parsed = line ? (JSON.parse(line) as typeof parsed) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed && 'error' in parsed && parsed.error !== undefined) return { ok: false, error: parsed.error };
  if (child.status !== 0 || !parsed) {
    const why = child.signal ? `killed by ${child.signal}` : `exit code ${child.status}`;
    const stderr = (child.stderr ?? '').trim().split('\n').slice(-2).join(' / ');
    return { ok: false, error: `the run crashed (${why})${stderr ? `: ${stderr}` : ''}` };
  }
  return { ok: true, result: parsed as T };
}

/** Adds two histograms (alloc and free) into one. */
function mergeHistograms(a: HistogramData, b: HistogramData): HistogramData {
  const m = new Map<number, number>();
  for (const h of [a, b]) h.lowerNs.forEach((lo, i) => m.set(lo, (m.get(lo) ?? 0) + h.count[i]!));
  const keys = [...m.keys()].sort((x, y) => x - y);
  return { lowerNs: keys, count: keys.map((k) => m.get(k)!), total: a.total + b.total, maxNs: Math.max(a.maxNs, b.maxNs) };
}

/** The latency at percentile p (0..1): the lower bound of the bucket holding it (exact below 128 ns). */
export function percentile(h: HistogramData, p: number): number {
  if (h.total === 0) return 0;
  if (p >= 1) return h.maxNs;
  const want = p * h.total;
  let seen = 0;
  for (let i = 0; i < h.lowerNs.length; i++) {
    seen += h.count[i]!;
    if (seen > want) return Math.min(h.lowerNs[i]!, h.maxNs);
  }
  return h.maxNs;
}

const spectrumPoints = [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995, 0.99999, 1];

/** Operations in buckets whose lower bound is at least `floor`. */
function countFrom(h: HistogramData, floor: number): number {
  let n = 0;
  h.lowerNs.forEach((lo, i) => {
    if (lo >= floor) n += h.count[i]!;
  });
  return n;
}

/** The lower bound of the bucket of `h` that holds `ns`. */
function bucketFloor(h: HistogramData, ns: number): number {
  let floor = 0;
  for (const lo of h.lowerNs) if (lo <= ns) floor = lo;
  return floor;
}

function latencyOf(r: BenchRunResult, heaplab: boolean): LatencySummary {
  const h = mergeHistograms(r.alloc, r.free);
  const crossed = mergeHistograms(r.allocCrossed, r.freeCrossed);
  const share = (ns: number): number => {
    const floor = bucketFloor(h, ns);
    const all = countFrom(h, floor);
    return all ? countFrom(crossed, floor) / all : 0;
  };
  const p99 = percentile(h, 0.99), p999 = percentile(h, 0.999), p9999 = percentile(h, 0.9999);
  return {
    ...(heaplab ? { pageShare: { p99: share(p99), p999: share(p999), p9999: share(p9999), max: share(h.maxNs) } } : {}),
    p50: percentile(h, 0.5),
    p99: percentile(h, 0.99),
    p999: percentile(h, 0.999),
    p9999: percentile(h, 0.9999),
    max: h.maxNs,
    spectrum: spectrumPoints.filter((p) => p === 1 || p * h.total <= h.total - 1).map((p) => [p, percentile(h, p)]),
  };
}

function timelineOf(samples: number[], ops: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const n = samples.length / 4;
  const step = Math.max(1, Math.floor(n / 300));
  for (let i = 0; i < n; i += step) {
    const live = samples[4 * i + 2]!;
    // a near-empty heap has no meaningful ratio
    if (live < 64 * 1024) continue;
    out.push([samples[4 * i]! / ops, samples[4 * i + 1]! / live]);
  }
  return out;
}

function emptyRun(allocator: string, engine: 'native' | 'ts', error: string): AllocatorRun {
  return {
    allocator,
    family: familyOf(allocator),
    engine,
    ok: false,
    error,
    ops: 0,
    elapsedNs: NaN,
    nsPerOp: NaN,
    mopsPerSec: NaN,
    peakMapped: NaN,
    peakLive: NaN,
    overhead: NaN,
    rssOverhead: NaN,
    memorySource: '',
    ratio: { time: NaN, p999: NaN, max: NaN, memory: NaN },
  };
}

function runOf(allocator: string, r: BenchRunResult, latency: boolean, memoryFloor: number): AllocatorRun {
  const measurable = allocator !== 'glibc' || r.peakLive >= memoryFloor;
  const run: AllocatorRun = {
    allocator,
    family: familyOf(allocator),
    engine: 'native',
    ok: true,
    ops: r.ops,
    elapsedNs: r.elapsedNs,
    nsPerOp: r.elapsedNs / r.ops,
    mopsPerSec: r.ops / (r.elapsedNs / 1e3),
    peakMapped: r.peakMapped,
    peakLive: r.peakLive,
    overhead: r.peakLive > 0 && measurable ? r.peakMapped / r.peakLive : NaN,
    // below 8 MiB live, the process's own resident-set noise (V8's threads) swamps the ratio
    rssOverhead: r.peakLive >= 8 << 20 ? r.peakRss / r.peakLive : NaN,
    memorySource: r.memorySource,
    timeline: timelineOf(r.samples, r.ops),
    ratio: { time: NaN, p999: NaN, max: NaN, memory: NaN },
  };
  if (latency) run.latency = latencyOf(r, familyOf(allocator) === 'heaplab');
  return run;
}

function fillRatios(w: WorkloadResult): void {
  const glibc = w.runs.find((r) => r.allocator === 'glibc' && r.engine === 'native' && r.ok);
  for (const r of w.runs) {
    if (!r.ok || !glibc) continue;
    r.ratio = {
      time: r.elapsedNs / glibc.elapsedNs,
      p999: r.latency && glibc.latency ? r.latency.p999 / glibc.latency.p999 : NaN,
      max: r.latency && glibc.latency ? r.latency.max / glibc.latency.max : NaN,
      memory: r.overhead / glibc.overhead,
    };
    if (r.engine === 'ts') {
      const c = w.runs.find((x) => x.allocator === r.allocator && x.engine === 'native' && x.ok);
      if (c) r.portVsC = r.elapsedNs / c.elapsedNs;
    }
  }
}

/**
 * Times alloc + free from JS beside Buffer.allocUnsafe, both bytes touched: the
 * safe path (`createHeap(kind)`: a detachable Buffer per block), the fast one
 * (`createUnsafeHeap(kind)`: views over one region) and the ts engine. Every path
 * runs once per round, three rounds interleaved; each figure is its median.
 */
export function benchNapi(kinds: readonly AllocatorKind[], scale = 1): NapiResult[] {
  const out: NapiResult[] = [];
  const sizes: Array<[number, number]> = [
    [64, 100_000],
    [4096, 50_000],
    [1 << 20, 3_000],
  ];
  for (const [size, baseIterations] of sizes) {
    const iterations = Math.max(100, Math.round(baseIterations * scale));
    let sink = 0;
    const time = (fn: () => void): number => {
      for (let i = 0; i < Math.min(20_000, iterations); i++) fn(); // warm up: past the optimizing compiler
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) fn();
      return Number(process.hrtime.bigint() - start) / iterations;
    };
    const touch = (b: Uint8Array): void => {
      b[0] = 1;
      b[size - 1] = 1;
      sink ^= b[0]!;
    };
    const paths: Array<{ path: string; open: () => { pair: () => void; close: () => void } }> = [
      { path: 'Buffer.allocUnsafe', open: () => ({ pair: () => touch(Buffer.allocUnsafe(size)), close: () => {} }) },
      {
        // Node's own part of the safe path: an external Buffer made and detached, nothing else
        path: 'external Buffer (floor)',
        open: () => ({
          pair: () => {
            const b = binding.externalBufferFloor(size);
            if (typeof b === 'number') throw statusError(b, 'externalBufferFloor');
            touch(b);
            binding.detachArrayBuffer(b.buffer as ArrayBuffer);
          },
          close: () => {},
        }),
      },
    ];
    for (const kind of kinds) {
      paths.push({
        path: kind,
        open: () => {
          const heap = createHeap(kind);
          return { pair: () => { const b = heap.alloc(size); touch(b); heap.free(b); }, close: () => heap.destroy() };
        },
      });
      paths.push({
        path: `${kind} unsafe`,
        open: () => {
          const heap = createUnsafeHeap(kind);
          return { pair: () => { const b = heap.alloc(size); touch(b); heap.free(b); }, close: () => heap.destroy() };
        },
      });
      paths.push({
        path: `${kind} ts`,
        open: () => {
          const heap = createHeap(kind, { engine: 'ts' });
          return { pair: () => { const b = heap.alloc(size); touch(b); heap.free(b); }, close: () => heap.destroy() };
        },
      });
    }
    const rounds: number[][] = paths.map(() => []);
    for (let round = 0; round < 3; round++) {
      paths.forEach((p, i) => {
        const run = p.open();
        try {
          rounds[i]!.push(time(run.pair));
        } finally {
          run.close();
        }
      });
    }
    const base = median(rounds[0]!);
    paths.forEach((p, i) => {
      const ns = median(rounds[i]!);
      out.push({ size, path: p.path, iterations, nsPerPair: ns, ratio: ns / base });
    });
    if (sink === 42) console.log(''); // keep the loop's work observable
  }
  return out;
}

function machine(): BenchReport['machine'] {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memory: totalmem(),
    kernel: release(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Runs the whole benchmark. Throws only for a broken installation (no child script, no addon). */
export function runBench(options: BenchOptions = {}): BenchReport {
  const started = Date.now();
  const quick = options.quick ?? false;
  const scale = options.scale ?? (quick ? 0.15 : 1);
  const runs = options.throughputRuns ?? (quick ? 1 : 3);
  const timeoutMs = (options.timeout ?? 300) * 1000;
  if (!existsSync(childScript())) throw new Error(`heaplab bench: ${childScript()} is missing; run \`npm run build\``);
  const dir = mkdtempSync(join(tmpdir(), 'heaplab-bench-'));
  try {
    const wanted = (name: string): boolean => !options.allocators || options.allocators.includes(name);
    const built = availableAllocators();
    const heaplab = built.filter((k) => wanted(k));
    // each design, then the same design behind the thread cache (NAME+cache)
    const allocators: string[] = built.flatMap((k) => [k, `${k}+cache`]).filter((name) => wanted(name));
    if (wanted('glibc')) allocators.push('glibc');

    // workloads (generated now; recorded ones below)
    let workloads = options.customWorkloads ?? benchWorkloads(scale, options.workloads);
    if (options.workloads) workloads = workloads.filter((w) => options.workloads!.includes(w.name));
    const recordWanted = (options.record ?? true) && !options.customWorkloads;
    const programs = recordedPrograms.filter((p) => !options.workloads || options.workloads.includes(p.name));
    const portKinds = (options.ports ?? true) ? heaplab.filter((k) => portFactories[k as AllocatorKind]) : [];
    let portJit: PortJit | undefined; // set before the first port runs, after the Node-API paths
    const napiOn = options.napi ?? true;

    // a rough step count for the progress bar: probes, recordings, runs, ports, napi
    const perWorkload = (w: Workload): number => (w.traces.length > 1 ? 2 : 1);
    let phase: 'setup' | 'runs' = 'setup';
    let total = peerNames.length + (recordWanted ? programs.length : 0);
    const step = (what: string): void => {
      options.onStep?.(what, phase, total);
    };

    const libraries = options.libraries ?? [];
    const libraryPath = new Map(libraries.map((l) => [l.name, l.path]));
    total += libraries.length;
    // peers: a small two-thread probe in a child; a crash or a refused dlopen skips the peer
    const probe = churn('probe', 7, { ops: 20000, live: 500, size: (r) => 16 + Math.floor(r() * 2000) });
    const probeFile = join(dir, 'probe.trace');
    writeTrace(probeFile, probe);
    const peers: PeerStatus[] = [];
    for (const name of peerNames) {
      step(`probe ${name}`);
      if (!wanted(name)) {
        peers.push({ name, package: peerPackages[name], ok: false, reason: 'not selected' });
        continue;
      }
      const out = runChild(dir, name, { target: name, traceFiles: [probeFile, probeFile], touch: true, latency: true, throughputRuns: 1, maxSamples: 10 }, 60_000);
      if (out.ok) {
        peers.push({ name, package: peerPackages[name], ok: true, path: out.result.path });
        allocators.push(name);
      } else peers.push({ name, package: peerPackages[name], ok: false, reason: out.error });
    }
    for (const { name, path } of libraries) {
      step(`probe ${name}`);
      const out = runChild(dir, name, { target: name, path, traceFiles: [probeFile, probeFile], touch: true, latency: true, throughputRuns: 1, maxSamples: 10 }, 60_000);
      if (out.ok) {
        peers.push({ name, package: '', ok: true, path: out.result.path });
        allocators.push(name);
      } else peers.push({ name, package: '', ok: false, reason: out.error });
    }

    const recordings: BenchReport['recordings'] = [];
    if (recordWanted) {
      for (const program of programs) {
        step(`record ${program.name}`);
        const outcome = recordProgram(program, options.recordMaxOps ?? (quick ? 300_000 : 2_000_000));
        if (outcome.workload) {
          workloads.push(outcome.workload);
          recordings.push({ name: program.name, ok: true, ...(outcome.recordedOps !== undefined ? { recordedOps: outcome.recordedOps } : {}) });
        } else recordings.push({ name: program.name, ok: false, reason: outcome.skipped ?? 'unknown' });
      }
    }
    phase = 'runs';
    const mapSteps = !quick && (options.maps ?? true) ? Math.min(2, workloads.filter((w) => w.name === 'stable' || w.goal === 'recorded').length) : 0;
    total = workloads.reduce((s, w) => s + allocators.length * perWorkload(w) + (w.traces.length > 1 ? 0 : portKinds.length), 0) + (napiOn ? 1 : 0) + mapSteps;

    // The Node-API paths here, under V8's own flags, as a program that uses
    // heaplab from Node runs them (the ports' inlining budget is set only in
    // their own children: portRun).
    let napi: NapiResult[] = [];
    if (napiOn) {
      step('Node-API paths');
      napi = benchNapi(heaplab as AllocatorKind[], (options.napiScale ?? 1) * (quick ? 0.3 : 1));
    }

    const memorySources: Record<string, string> = {};
    const results: WorkloadResult[] = [];
    for (const w of workloads) {
      const files = w.traces.map((t, i) => {
        const f = join(dir, `${w.name}-${i}.trace`);
        writeTrace(f, t);
        return f;
      });
      const ops = w.traces.reduce((s, t) => s + t.op.length, 0);
      const result: WorkloadResult = { name: w.name, goal: w.goal, description: w.description, threads: w.traces.length, ops, peakLive: 0, runs: [] };
      const maxSamples = w.goal === 'stable' ? 2000 : 1000;
      for (const allocator of allocators) {
        step(`${w.name}: ${allocator}`);
        const path = libraryPath.get(allocator);
        const job = { target: allocator, ...(path ? { path } : {}) };
        const out = runChild(dir, allocator, { ...job, traceFiles: files, touch: true, latency: true, throughputRuns: runs, maxSamples }, timeoutMs);
        if (!out.ok) {
          result.runs.push(emptyRun(allocator, 'native', out.error));
          continue;
        }
        memorySources[allocator] = out.result.memorySource;
        const run = runOf(allocator, out.result, true, options.memoryFloor ?? 2 << 20);
        if (w.traces.length > 1) {
          step(`${w.name}: ${allocator}, 1 thread`);
          const one = runChild(dir, allocator, { ...job, traceFiles: [files[0]!], touch: true, latency: false, throughputRuns: runs, maxSamples: 10 }, timeoutMs);
          if (one.ok) run.scaling = run.ops / run.elapsedNs / (one.result.ops / one.result.elapsedNs);
        }
        result.runs.push(run);
        if (run.peakLive > result.peakLive) result.peakLive = run.peakLive;
      }
      // the TypeScript ports, beside their C originals (one thread: they are single-threaded)
      if (w.traces.length === 1) {
        const trace = w.traces[0]!;
        const peakLive = summarizeTrace(trace).peakLiveBytes;
        for (const kind of portKinds) {
          step(`${w.name}: ${kind} (TS port)`);
          const port = portRun(dir, kind as AllocatorKind, files[0]!, trace.op.length, peakLive, runs, options.throughputRuns === undefined, quick, timeoutMs);
          portJit ??= port.jit;
          result.runs.push(port.run);
        }
      }
      fillRatios(result);
      results.push(result);
    }

    // heap maps of the stable workload and the first recorded program, at their peaks (full runs: a map walks the heap hundreds of times)
    const maps: HeapMapSummary[] = [];
    const mapped = workloads.filter((w) => w.traces.length === 1 && (w.name === 'stable' || w.goal === 'recorded'));
    const mapKinds = allocatorKinds.filter((k) => availableAllocators().includes(k) && (allocators.includes(k) || allocators.includes(`${k}+cache`)));
    if (!quick && (options.maps ?? true) && mapKinds.length) {
      for (const w of [mapped.find((x) => x.name === 'stable'), mapped.find((x) => x.goal === 'recorded')]) {
        if (!w) continue;
        step(`heap map: ${w.name}`);
        const m = buildHeapMap(w.traces[0]!, mapKinds, { samples: 150 });
        maps.push({
          workload: w.name,
          html: renderHeapMapSection(m),
          designs: m.designs.map((d) => ({
            kind: d.kind,
            fragmentation: d.figures.fragmentation,
            heldBytes: d.figures.heldBytes,
            requestedBytes: d.figures.requestedBytes ?? 0,
            headerBytes: d.figures.headerBytes,
            slackBytes: d.figures.slackBytes ?? 0,
          })),
        });
      }
    }

    const clockOut = spawnSync(process.execPath, [childScript(), '--clock'], { env: childEnv(), encoding: 'utf8' });
    const clock = JSON.parse((clockOut.stdout ?? '').trim() || '{"name":"unknown","overheadNs":0,"minOverheadNs":0}') as BenchReport['clock'];

    return {
      date: new Date().toISOString(),
      quick,
      scale,
      durationMs: Date.now() - started,
      machine: machine(),
      clock: { name: clock.name, overheadNs: clock.overheadNs, minOverheadNs: clock.minOverheadNs },
      allocators,
      peers,
      ports: portKinds,
      ...(portJit ? { portJit } : {}),
      memorySources,
      recordings,
      workloads: results,
      napi,
      maps,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How long a port's runs on one workload may go on before its time counts as settled (--quick: the second). */
const PORT_SETTLE_BUDGET_NS = 20e9;
const PORT_SETTLE_BUDGET_QUICK_NS = 6e9;

/**
 * A TypeScript port on one workload's trace, in a node of its own (lib/bench/child.ts
 * says why), started as `heaplab compare` starts its own: optimizing on its main
 * thread (lib/ports/jit.ts, relaunchArgsForPorts). `settle`: timed until its best
 * settles, as compare does (within 6 s a port for --quick); else the best of `runs`.
 */
function portRun(dir: string, kind: AllocatorKind, traceFile: string, ops: number, peakLive: number, runs: number, settle: boolean,
  quick: boolean, timeoutMs: number): { run: AllocatorRun; jit?: PortJit } {
  const job: PortJob = { port: kind, traceFile, runs, settle, settleBudgetNs: quick ? PORT_SETTLE_BUDGET_QUICK_NS : PORT_SETTLE_BUDGET_NS };
  const nodeArgs = relaunchArgsForPorts() ?? process.execArgv.filter((a) => !/^--(inspect|debug)/.test(a));
  const out = runChild<PortRunResult>(dir, `${kind}-ts`, job, timeoutMs, nodeArgs);
  if (!out.ok) return { run: emptyRun(kind, 'ts', out.error) };
  const r = out.result;
  return {
    jit: r.jit,
    run: {
      allocator: kind,
      family: 'heaplab',
      engine: 'ts',
      ok: true,
      ops,
      elapsedNs: r.elapsedNs,
      nsPerOp: r.elapsedNs / ops,
      mopsPerSec: ops / (r.elapsedNs / 1e3),
      peakMapped: r.peakMapped,
      peakLive,
      overhead: peakLive > 0 ? r.peakMapped / peakLive : NaN,
      rssOverhead: NaN,
      memorySource: 'bytes mapped by the port\'s arena page source',
      ratio: { time: NaN, p999: NaN, max: NaN, memory: NaN },
    },
  };
}

