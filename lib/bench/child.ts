/**
 * One benchmark run in a fresh process: `node dist/bench/child.js JOB.json`.
 *
 * lib/bench/bench.ts runs every (allocator, workload) pair here rather than in its own
 * process, so that each allocator starts from the same clean process (glibc and
 * the peers keep freed memory cached, which would hide the next run's footprint),
 * a peer that crashes takes only its own run down, and jemalloc (whose TLS model
 * needs a static TLS reserve) can be given GLIBC_TUNABLES at process start.
 *
 * Traces travel as trace files (docs/trace-format.md, written by writeTrace and
 * read by readTrace in lib/trace/file.ts); the result is one line
 * of JSON on stdout.
 *
 * A TypeScript port is timed here too (a PortJob), for the reason `heaplab
 * compare` times each trace in a node of its own: V8 shapes a port's compiled
 * code by everything it has run, and in the bench's own process the port of one
 * workload ran in code compiled for the workloads before it. It is timed once
 * its best time settles (lib/replay/compare.ts bestOfSettled): the fast workload's
 * dlmalloc port took 150 ms in its first runs and 73-77 ms from the fourth on; on
 * space 1.75 s, 0.63, 0.71, then 0.21-0.23 s (its loop compiled while it ran), so
 * a bench trace may take longer to settle than compare's 4 s (PORT_SETTLE_BUDGET_NS).
 */
import { readFileSync } from 'node:fs';
import type { NativeBenchHistogram, NativeBenchResult } from '../../binding.js';
import type { AllocatorKind } from '../kinds.js';
import type { PortJit } from '../ports/jit.js';
import { readTrace } from '../trace/file.js';
import { isMainModule } from '../util/entry.js';

/** A histogram as JSON: plain arrays instead of the addon's Float64Arrays. */
export type HistogramData = Omit<NativeBenchHistogram, 'lowerNs' | 'count'> & { lowerNs: number[]; count: number[] };

/** What one run measured (the JSON the child prints): the addon's result, as plain JSON. */
export type BenchRunResult = Omit<NativeBenchResult, 'alloc' | 'free' | 'allocCrossed' | 'freeCrossed' | 'samples'> & {
  alloc: HistogramData;
  free: HistogramData;
  allocCrossed: HistogramData;
  freeCrossed: HistogramData;
  /** [op, mapped, live, rss] quadruples over time. */
  samples: number[];
};

export interface BenchJob {
  target: string;
  traceFiles: string[];
  touch: boolean;
  latency: boolean;
  throughputRuns: number;
  maxSamples: number;
  path?: string;
}

/** One TypeScript port on one trace: the best of `runs` runs, then until it settles (within settleBudgetNs) if `settle`. */
export interface PortJob {
  port: AllocatorKind;
  traceFile: string;
  runs: number;
  settle: boolean;
  settleBudgetNs: number;
}

/** What a PortJob measured. */
export interface PortRunResult {
  elapsedNs: number;
  peakMapped: number;
  jit: PortJit;
}

async function runPort(job: PortJob): Promise<PortRunResult> {
  const { tuneJitForPorts } = await import('../ports/jit.js');
  const jit = tuneJitForPorts(); // before any port function is optimized
  const { replayPort } = await import('../replay/replay.js');
  const { bestOfSettled } = await import('../replay/compare.js');
  const trace = readTrace(job.traceFile);
  let peakMapped = 0;
  const [, best] = bestOfSettled(() => {
    const r = replayPort(job.port, trace, { offsets: false, touch: true });
    peakMapped = r.stats.peakBytesMapped;
    return [0, r.elapsedNs];
  }, job.runs, job.settle, undefined, job.settleBudgetNs);
  return { elapsedNs: best, peakMapped, jit };
}

async function main(): Promise<number> {
  const jobPath = process.argv[2];
  if (!jobPath) throw new Error('usage: bench/child.js JOB.json | --clock');
  const { binding } = await import('../addon/native.js');
  const native = binding;
  if (jobPath === '--clock') {
    process.stdout.write(`${JSON.stringify(native.benchClock())}\n`);
    return 0;
  }
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as BenchJob | PortJob;
  if ('port' in job) {
    process.stdout.write(`${JSON.stringify(await runPort(job))}\n`);
    return 0;
  }
  const traces = job.traceFiles.map(readTrace);
  const { target, traceFiles: _files, ...options } = job;
  const r = native.bench(target, traces, options);
  if ('error' in r) {
    process.stdout.write(`${JSON.stringify({ error: r.error })}\n`);
    return 3;
  }
  const hist = (h: NativeBenchHistogram): HistogramData => ({
    lowerNs: Array.from(h.lowerNs),
    count: Array.from(h.count),
    total: h.total,
    maxNs: h.maxNs,
  });
  const out: BenchRunResult = {
    ...r,
    alloc: hist(r.alloc),
    free: hist(r.free),
    allocCrossed: hist(r.allocCrossed),
    freeCrossed: hist(r.freeCrossed),
    samples: Array.from(r.samples),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  return 0;
}

if (isMainModule(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
