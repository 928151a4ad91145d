/**
 * report.ts — what \`heaplab bench\` reports: the shape of its results (the JSON
 * of --json, read by ./html.ts) and the text tables the CLI prints.
 */
import type { PortJit } from '../ports/jit.js';
import type { Goal } from './workloads.js';

export interface LatencySummary {
  p50: number;
  p99: number;
  p999: number;
  p9999: number;
  max: number;
  /** [percentile (0..1, 1 = max), ns] for the distribution chart. */
  spectrum: Array<[number, number]>;
  /**
   * Of the operations at or above each figure, the share (0..1) during which the
   * allocator called its page source (a cache hit, mmap, munmap or mremap): the
   * part of the tail that is the operating system's, not the design's. heaplab's
   * allocators only (undefined for the others, whose page calls cannot be seen).
   */
  pageShare?: { p99: number; p999: number; p9999: number; max: number };
}

export interface AllocatorRun {
  /** tlsf, dlmalloc, liballoc, glibc, jemalloc, mimalloc, tcmalloc. */
  allocator: string;
  family: 'heaplab' | 'system' | 'peer';
  engine: 'native' | 'ts';
  ok: boolean;
  error?: string;
  ops: number;
  elapsedNs: number;
  nsPerOp: number;
  mopsPerSec: number;
  /** Per-operation latency (C runs only). */
  latency?: LatencySummary;
  peakMapped: number;
  peakLive: number;
  /** peak mapped ÷ peak live. */
  overhead: number;
  /** Growth of the (fresh child) process's resident set at peak ÷ peak live (C runs). */
  rssOverhead: number;
  memorySource: string;
  /** Memory overhead over time: [fraction of the run done, mapped ÷ live]. */
  timeline?: Array<[number, number]>;
  /** Ratios to glibc on the same workload (lower is better for all four). */
  ratio: { time: number; p999: number; max: number; memory: number };
  /** TS port: its time ÷ its C original's. */
  portVsC?: number;
  /** Scalable workload: 2-thread throughput ÷ 1-thread throughput. */
  scaling?: number;
}

export interface WorkloadResult {
  name: string;
  goal: Goal;
  description: string;
  threads: number;
  ops: number;
  peakLive: number;
  runs: AllocatorRun[];
}

export interface NapiResult {
  size: number;
  /** 'Buffer.allocUnsafe', 'external Buffer (floor)' (Node's part of the safe path) or a heaplab path. */
  path: string;
  iterations: number;
  nsPerPair: number;
  /** ÷ Buffer.allocUnsafe's ns per pair. */
  ratio: number;
}

export interface PeerStatus {
  name: string;
  /** The Debian package of a known peer, or '' for a library named with --peer. */
  package: string;
  ok: boolean;
  reason?: string;
  path?: string;
}

export interface BenchReport {
  date: string;
  quick: boolean;
  scale: number;
  durationMs: number;
  machine: { cpu: string; cores: number; memory: number; kernel: string; node: string; platform: string };
  clock: { name: string; overheadNs: number; minOverheadNs: number };
  allocators: string[];
  peers: PeerStatus[];
  ports: string[];
  /** V8's inlining budget the ports ran with (lib/ports/jit.ts); absent when no port ran. */
  portJit?: PortJit;
  memorySources: Record<string, string>;
  recordings: Array<{ name: string; ok: boolean; reason?: string; recordedOps?: number }>;
  workloads: WorkloadResult[];
  napi: NapiResult[];
  /** Heap maps (lib/map/map.ts) of the stable workload and a recorded program: full runs only. */
  maps: HeapMapSummary[];
}

export interface HeapMapSummary {
  workload: string;
  /** The section as rendered by renderHeapMapSection (SVG in HTML). */
  html: string;
  /** Per design: fragmentation and overhead at the peak of live bytes. */
  designs: Array<{ kind: string; fragmentation: number; heldBytes: number; requestedBytes: number; headerBytes: number; slackBytes: number }>;
}

const fx = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const ratioText = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '-');
export const formatNs = (ns: number): string =>
  !Number.isFinite(ns) ? '-' : ns < 1000 ? `${Math.round(ns)}` : ns < 1e6 ? `${(ns / 1e3).toFixed(1)}k` : `${(ns / 1e6).toFixed(2)}M`;

export function runLabel(r: AllocatorRun): string {
  return r.engine === 'ts' ? `${r.allocator} (TS port)` : r.allocator;
}

/** How one presentation (the CLI's text, the HTML report) writes numbers. */
export interface CellFormat {
  ms(x: number): string;
  num(x: number, digits?: number): string;
  ns(x: number): string;
  ratio(x: number): string;
  /** A figure that does not exist for this run. */
  none: string;
}

/** The columns of a run's row, in order: every presentation shows the same figures. */
export const runColumns = ['time', 'time×', 'p50', 'p99.9', 'p99.9×', 'pg', 'p99.99', 'max', 'mem', 'mem×', 'rss'] as const;

/** A successful run's cells under runColumns (and 2T/1T for a threaded workload). */
export function runCells(r: AllocatorRun, threads: number, f: CellFormat): string[] {
  const l = r.latency;
  const lat = (x: number | undefined): string => (l && x !== undefined ? f.ns(x) : f.none);
  const cells = [
    f.ms(r.elapsedNs / 1e6),
    f.ratio(r.ratio.time),
    lat(l?.p50),
    lat(l?.p999),
    f.ratio(r.ratio.p999),
    l?.pageShare ? `${Math.round(l.pageShare.p999 * 100)}%` : f.none,
    lat(l?.p9999),
    lat(l?.max),
    f.num(r.overhead, 3),
    f.ratio(r.ratio.memory),
    f.num(r.rssOverhead, 2),
  ];
  if (threads > 1) cells.push(r.scaling !== undefined ? f.ratio(r.scaling) : f.none);
  return cells;
}

const textFormat: CellFormat = { ms: (x) => fx(x, 1), num: fx, ns: formatNs, ratio: ratioText, none: '-' };

/** The table of one workload: every allocator as a ratio to glibc. */
export function workloadTable(w: WorkloadResult): { header: string[]; rows: string[][] } {
  const header = ['allocator', 'ms', ...runColumns.slice(1)];
  if (w.threads > 1) header.push('2T/1T');
  const rows = w.runs.map((r) => (r.ok ? [runLabel(r), ...runCells(r, w.threads, textFormat)] : [runLabel(r), `failed: ${r.error ?? ''}`.slice(0, 60)]));
  return { header, rows };
}

/** One workload's winner on the figure its goal is about (lower is better on each). */
export interface Leader {
  workload: string;
  metric: 'time' | 'memory overhead' | 'p99.99 latency';
  /** The best of every allocator run (native code: C, glibc, peers). */
  leader: string;
  value: number;
  /** leader ÷ glibc on that figure; NaN when glibc was not run. */
  ratioToGlibc: number;
  /** heaplab's best design (plain or +cache), when heaplab is not the leader itself. */
  heaplab?: { allocator: string; value: number; ratioToGlibc: number };
}

/** Per workload: who won among all allocators, and heaplab's best beside it. */
export function leaders(report: BenchReport): Leader[] {
  const out: Leader[] = [];
  for (const w of report.workloads) {
    const [metric, value]: [Leader['metric'], (r: AllocatorRun) => number] =
      w.goal === 'space' || w.goal === 'stable'
        ? ['memory overhead', (r) => r.overhead]
        : w.goal === 'realtime'
          ? ['p99.99 latency', (r) => r.latency?.p9999 ?? NaN]
          : ['time', (r) => r.elapsedNs];
    const runs = w.runs.filter((r) => r.ok && r.engine === 'native' && Number.isFinite(value(r)));
    if (!runs.length) continue;
    const glibc = runs.find((r) => r.allocator === 'glibc');
    const vsGlibc = (r: AllocatorRun): number => (glibc ? value(r) / value(glibc) : NaN);
    const ranked = [...runs].sort((a, b) => value(a) - value(b));
    const best = ranked[0]!;
    const leader: Leader = { workload: w.name, metric, leader: best.allocator, value: value(best), ratioToGlibc: vsGlibc(best) };
    const mine = ranked.find((r) => r.family === 'heaplab');
    if (mine && mine !== best) leader.heaplab = { allocator: mine.allocator, value: value(mine), ratioToGlibc: vsGlibc(mine) };
    out.push(leader);
  }
  return out;
}

