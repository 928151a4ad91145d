/**
 * One benchmark run in a fresh process: `node dist/bench/child.js JOB.json`.
 *
 * lib/bench/bench.ts runs every (allocator, workload) pair here rather than in its own
 * process, so that each allocator starts from the same clean process (glibc and
 * the peers keep freed memory cached, which would hide the next run's footprint),
 * a peer that crashes takes only its own run down, and jemalloc (whose TLS model
 * needs a static TLS reserve) can be given GLIBC_TUNABLES at process start.
 *
 * Traces travel as files (writeTraceFile/readTraceFile); the result is one line
 * of JSON on stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { NativeBenchHistogram, NativeBenchResult } from '../../binding.js';
import type { Trace } from '../trace/trace.js';
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

/*
 * Trace file: a 16-byte header (u32 magic 'HLBT', u32 count, u32 maxId, u32 0),
 * then size f64[count], id u32[count], op u8[count], alignLog2 u8[count].
 * Little-endian; the f64 array first keeps every array aligned.
 */
const MAGIC = 0x54424c48;

export function writeTraceFile(path: string, trace: Trace): void {
  const n = trace.op.length;
  const head = Buffer.alloc(16);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(n, 4);
  head.writeUInt32LE(trace.maxId, 8);
  const view = (a: ArrayBufferView): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  writeFileSync(path, Buffer.concat([head, view(trace.size), view(trace.id), view(trace.op), view(trace.alignLog2)]));
}

export function readTraceFile(path: string): Trace {
  const buf = readFileSync(path);
  if (buf.readUInt32LE(0) !== MAGIC) throw new Error(`${path}: not a bench trace file`);
  const n = buf.readUInt32LE(4);
  const maxId = buf.readUInt32LE(8);
  // copy into fresh, aligned arrays
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = 16;
  const size = new Float64Array(n);
  new Uint8Array(size.buffer).set(bytes.subarray(at, at + 8 * n));
  at += 8 * n;
  const id = new Uint32Array(n);
  new Uint8Array(id.buffer).set(bytes.subarray(at, at + 4 * n));
  at += 4 * n;
  const op = bytes.slice(at, at + n);
  at += n;
  const alignLog2 = bytes.slice(at, at + n);
  return { name: path, op, id, size, alignLog2, maxId, limit: 0 };
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
  const traces = job.traceFiles.map(readTraceFile);
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
