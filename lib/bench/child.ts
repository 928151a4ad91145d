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
 */
import { readFileSync } from 'node:fs';
import type { NativeBenchHistogram, NativeBenchResult } from '../../binding.js';
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

async function main(): Promise<number> {
  const jobPath = process.argv[2];
  const { binding } = await import('../addon/native.js');
  const native = binding;
  if (jobPath === '--clock') {
    process.stdout.write(`${JSON.stringify(native.benchClock())}\n`);
    return 0;
  }
  if (!jobPath) throw new Error('usage: bench/child.js JOB.json | --clock');
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as BenchJob;
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
