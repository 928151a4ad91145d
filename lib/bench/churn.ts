/**
 * The churn harness under each allocator, as a real program meets it: the
 * harness (native/bench/churn.c, built as heaplab-churn) runs as a process of
 * its own with the allocator's library preloaded (nothing for glibc): `live`
 * blocks of log-uniform sizes, then random replacements, every block tagged and
 * checked before its free. `heaplab churn` prints what this returns.
 *
 * On a shared machine one run's throughput moves by a third from one minute to
 * the next, so the rounds are interleaved (every allocator once, then again)
 * and each figure is the median over the rounds; a ratio to glibc is the median
 * of each round's ratio to glibc's run in the same round, so that a machine that
 * slows down between rounds moves both sides of a ratio together.
 */
import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { basename } from 'node:path';
import { preloadEnv } from '../preload/preload.js';
import { median } from '../util/stats.js';

export interface ChurnConfig {
  /** Random replacements (free one block, malloc another in its slot) per pass. */
  pairs: number;
  /** Blocks live at once (per thread). */
  live: number;
  /** Block sizes, log-uniform in [min, max] bytes (min at least 8: a tag). */
  min: number;
  max: number;
  seed: number;
  /** 1: throughput, latencies and memory; more: the threads' total throughput only. */
  threads: number;
  /** Write every byte of each new block, so that resident memory is what the allocator hands out. */
  fill: boolean;
  rounds: number;
}

export const defaultChurnConfig: ChurnConfig = { pairs: 1_000_000, live: 10_000, min: 8, max: 65_536, seed: 42, threads: 1, fill: false, rounds: 3 };

export interface ChurnTarget {
  name: string;
  kind: 'heaplab' | 'system' | 'peer';
  /** The library preloaded (absolute); null for glibc's malloc. */
  library: string | null;
}

/** One run of the harness. Only throughput when threads > 1. */
export interface ChurnRun {
  /** Million malloc+free pairs per second, over the untimed pass. */
  mpairs: number;
  /** Malloc latency percentiles of the timed pass, ns. */
  p50?: number;
  p999?: number;
  p9999?: number;
  maxNs?: number;
  /** The process's resident set at its peak, and after it freed every block, MiB. */
  peakRssMb?: number;
  afterRssMb?: number;
  /** Minor page faults per 1000 pairs of the timed pass (first touches: the kernel's part). */
  faultsPerKpair?: number;
}

export interface ChurnRow extends ChurnTarget {
  ok: boolean;
  /** Why a run failed (the row's later rounds are not run). */
  reason?: string;
  runs: ChurnRun[];
  /** Each field's median over the runs. */
  median?: ChurnRun;
  /** Medians of the rounds' ratios to glibc's run in the same round. */
  vsGlibc?: { mpairs: number; p999?: number };
}

export interface ChurnReport {
  date: string;
  config: ChurnConfig;
  harness: string;
  rows: ChurnRow[];
}

/** The harness's keys beside mpairs, and the fields they fill. */
const FIELDS: Record<string, Exclude<keyof ChurnRun, 'mpairs'>> = {
  p50: 'p50',
  p999: 'p999',
  p9999: 'p9999',
  max: 'maxNs',
  peak_rss_mb: 'peakRssMb',
  after_rss_mb: 'afterRssMb',
  faults_per_kpair: 'faultsPerKpair',
};

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** The harness's one line of key=value, or why the run does not count. */
export function parseChurnOutput(target: ChurnTarget, status: number | null, signal: string | null, stdout: string, stderr: string): ChurnRun | string {
  const line = stdout.trim().split('\n').pop() ?? '';
  const kv = new Map(line.split(/\s+/).filter((w) => w.includes('=')).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)] as const));
  const said = stderr.trim().split('\n')[0] ?? '';
  if (signal) return `killed by ${signal}${said ? ` (${said})` : ''}`;
  if (kv.get('error')) {
    return `the harness found a block whose tags changed, or a NULL (error=${kv.get('error')}): the allocator handed out memory that overlaps another block or was not there`;
  }
  if (status !== 0) return `exit status ${status}${said ? `: ${said}` : ''}`;
  const from = kv.get('malloc_from');
  if (!kv.has('mpairs') || from === undefined) return `no result line from the harness (${JSON.stringify(line.slice(0, 120))})`;
  const preloaded = target.library === null ? /(^|\/)libc\.so/.test(from) : sameFile(from, target.library);
  if (!preloaded) {
    return target.library === null
      ? `malloc came from ${from}, not glibc (is LD_PRELOAD set in this environment?)`
      : `the dynamic linker did not preload ${basename(target.library)}: malloc came from ${from}${said ? ` (${said})` : ''}`;
  }
  const run: ChurnRun = { mpairs: Number(kv.get('mpairs')) };
  for (const [key, field] of Object.entries(FIELDS)) {
    const v = kv.get(key);
    if (v !== undefined) run[field] = Number(v);
  }
  if (!(run.mpairs > 0)) return `throughput ${kv.get('mpairs')} is not a positive number`;
  return run;
}

function harnessArgs(c: ChurnConfig): string[] {
  const args = [c.pairs, c.live, c.min, c.max, c.seed, c.fill ? 1 : 0].map(String);
  return c.threads > 1 ? [...args, String(c.threads)] : args;
}

/** Each target's runs, `config.rounds` interleaved rounds; onStep after every run. */
export function runChurn(harness: string, targets: readonly ChurnTarget[], config: ChurnConfig, onStep?: (what: string) => void): ChurnReport {
  const rows: ChurnRow[] = targets.map((t) => ({ ...t, ok: true, runs: [] }));
  const glibcByRound: Array<ChurnRun | undefined> = [];
  // two passes of `pairs` each: a minute per 5 M pairs is far more than any allocator here needs
  const timeout = Math.max(60_000, Math.ceil((config.pairs * config.threads) / 5e6) * 60_000);
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base['LD_PRELOAD'];
  for (let round = 0; round < config.rounds; round++) {
    for (const row of rows) {
      if (!row.ok) continue;
      const env = row.library === null ? base : preloadEnv(row.library, base);
      const r = spawnSync(harness, harnessArgs(config), { env, encoding: 'utf8', timeout, maxBuffer: 1 << 20 });
      const outcome = r.error
        ? (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `no result within ${timeout / 1000} s` : r.error.message
        : parseChurnOutput(row, r.status, r.signal, r.stdout, r.stderr);
      if (typeof outcome === 'string') {
        row.ok = false;
        row.reason = `round ${round + 1}: ${outcome}`;
      } else {
        row.runs.push(outcome);
        if (row.kind === 'system') glibcByRound[round] = outcome;
      }
      onStep?.(`round ${round + 1}: ${row.name}`);
    }
  }
  for (const row of rows) {
    if (!row.ok || !row.runs.length) continue;
    const med: ChurnRun = { mpairs: median(row.runs.map((r) => r.mpairs)) };
    for (const field of Object.values(FIELDS)) {
      const values = row.runs.map((r) => r[field]).filter((v): v is number => v !== undefined);
      if (values.length === row.runs.length) med[field] = median(values);
    }
    row.median = med;
    // paired: round k of this row against round k of glibc's (when both ran)
    const pairs = row.runs.map((r, k) => [r, glibcByRound[k]] as const).filter((p): p is readonly [ChurnRun, ChurnRun] => p[1] !== undefined);
    if (pairs.length) {
      row.vsGlibc = { mpairs: median(pairs.map(([r, g]) => r.mpairs / g.mpairs)) };
      if (pairs.every(([r, g]) => r.p999 !== undefined && g.p999)) row.vsGlibc.p999 = median(pairs.map(([r, g]) => r.p999! / g.p999!));
    }
  }
  return { date: new Date().toISOString(), config, harness, rows };
}
