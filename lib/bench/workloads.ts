/**
 * The benchmark's workloads: one seeded generator per allocator goal, and the
 * traces recorded at bench time from real programs with the preload recorder.
 *
 *   fast      small-object churn: 8–512 B, 2 000 live, random replacement
 *   space     mixed sizes 8 B–64 KiB (log-uniform), 10 000 live, some realloc,
 *             calloc and aligned blocks: memory overhead is the figure to read
 *   stable    a long run in phases whose size band and live count shift, with a
 *             few blocks pinned for the whole run: overhead sampled over time
 *   scalable  2 threads, each its own trace (16 B–2 KiB churn), one shared heap
 *   realtime  a steady mix (16 B–4 KiB, 8 000 live): only the latency tail matters
 *   python3, gcc, node   recorded (lib/trace/file.ts reads them)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preloadEnv, preloadLibraryPath } from '../preload/preload.js';
import { readTrace, traceFiles } from '../trace/file.js';
import { churn, logUniform, rng } from '../trace/workloads.js';
import { TraceBuilder, truncateTrace, type Trace } from '../trace/trace.js';

export type Goal = 'fast' | 'space' | 'stable' | 'scalable' | 'realtime' | 'recorded';

export interface Workload {
  name: string;
  goal: Goal;
  /** One line: what it is. */
  description: string;
  /** One trace per thread (scalable has two). */
  traces: Trace[];
}

/** Small sizes, weighted towards the smallest, like most programs' objects. */
const smallSize = (r: () => number): number => logUniform(r, 8, 512);

/** A stable-run trace: phases with shifting size bands and live counts, some blocks pinned. */
export function stableTrace(name: string, seed: number, ops: number): Trace {
  const r = rng(seed);
  const b = new TraceBuilder();
  // [lo, hi, live] per phase: small objects, then buffers, then a mix, then back
  const phases: Array<[number, number, number]> = [
    [16, 128, 8000],
    [1024, 16384, 2500],
    [64, 512, 6000],
    [8192, 65536, 600],
    [16, 64, 12000],
    [256, 4096, 4000],
    [32, 256, 10000],
    [2048, 32768, 1500],
  ];
  const perPhase = Math.ceil(ops / phases.length);
  const live: number[] = [];
  const pinned: number[] = [];
  for (let p = 0; b.length < ops; p++) {
    const [lo, hi, target] = phases[p % phases.length]!;
    const end = Math.min(ops, (p + 1) * perPhase);
    while (b.length < end) {
      if (live.length < target || r() < 0.5 - (live.length - target) / (2 * target)) {
        const id = b.alloc(logUniform(r, lo, hi));
        // 2% of blocks live for the whole run: they pin pages across phases
        if (r() < 0.02) pinned.push(id);
        else live.push(id);
      } else if (live.length) {
        const at = Math.floor(r() * live.length);
        b.free(live[at]!);
        live[at] = live[live.length - 1]!;
        live.pop();
      }
    }
  }
  for (const id of live) b.free(id);
  for (const id of pinned) b.free(id);
  return b.build(name);
}

/** The generated workloads' names, in their order (no trace is made). */
export const benchWorkloadNames = ['fast', 'space', 'stable', 'scalable', 'realtime'] as const;

/**
 * The five generated workloads. `scale` 1 is the full run; the quick run uses about
 * 0.15. `only`: just these (by name), so that no other workload's traces are made.
 */
export function benchWorkloads(scale = 1, only?: readonly string[]): Workload[] {
  const n = (ops: number): number => Math.max(2000, Math.round(ops * scale));
  const mixed = (r: () => number): number => logUniform(r, 8, 64 * 1024);
  const specs: Array<Omit<Workload, 'traces'> & { traces: () => Trace[] }> = [
    {
      name: 'fast',
      goal: 'fast',
      description: 'small-object churn: 8–512 B, 2 000 live, random replacement',
      traces: () => [churn('fast', 101, { ops: n(4_000_000), live: 2000, size: smallSize })],
    },
    {
      name: 'space',
      goal: 'space',
      description: 'mixed sizes 8 B–64 KiB log-uniform, 10 000 live; 5% realloc, 5% calloc, 2% aligned',
      traces: () => [churn('space', 102, { ops: n(2_000_000), live: 10000, size: mixed, realloc: 0.05, zero: 0.05, aligned: 0.02, maxAlignLog2: 12 })],
    },
    {
      name: 'stable',
      goal: 'stable',
      description: '8 phases of shifting size bands (16 B–64 KiB) and live counts (600–12 000), 2% of blocks pinned for the run',
      traces: () => [stableTrace('stable', 103, n(3_000_000))],
    },
    {
      name: 'scalable',
      goal: 'scalable',
      description: '2 threads, each its own trace (16 B–2 KiB churn, 2 000 live), one shared heap',
      traces: () => [
        churn('scalable-a', 104, { ops: n(2_000_000), live: 2000, size: (r) => logUniform(r, 16, 2048) }),
        churn('scalable-b', 105, { ops: n(2_000_000), live: 2000, size: (r) => logUniform(r, 16, 2048) }),
      ],
    },
    {
      name: 'realtime',
      goal: 'realtime',
      description: 'a steady mix, 16 B–4 KiB, 8 000 live: read the tail (p99.9, p99.99, max)',
      traces: () => [churn('realtime', 106, { ops: n(2_000_000), live: 8000, size: (r) => logUniform(r, 16, 4096) })],
    },
  ];
  return specs.filter((w) => !only || only.includes(w.name)).map((w) => ({ ...w, traces: w.traces() }));
}

export { truncateTrace } from '../trace/trace.js';

export interface RecordedProgram {
  name: 'python3' | 'gcc' | 'node';
  command: string[];
  /** Files the command needs, written into the working directory. */
  files?: Record<string, string>;
}

const pythonScript = `
import json, re, collections
words = [("w%d" % (i * 7919 % 10007)) * (1 + i % 5) for i in range(60000)]
counts = collections.Counter(words)
doc = {k: [v, k.upper(), list(range(v % 7))] for k, v in counts.items()}
text = json.dumps(doc)
back = json.loads(text)
parts = sorted(re.findall(r"W[0-9]+", text))
s = set()
for i in range(40000):
    s.add(str(i) * (i % 4 + 1))
    if i % 3 == 0: s.discard(str(i - 3) * ((i - 3) % 4 + 1))
print(len(back), len(parts), len(s))
`;

const nodeScript = `
const m = new Map();
for (let i = 0; i < 60000; i++) m.set('k' + i, { i, s: 'v'.repeat(i % 50), a: [i, i + 1] });
const text = JSON.stringify([...m.entries()]);
const back = JSON.parse(text);
let n = 0;
for (const [k] of back) if (/k[0-9]*7$/.test(k)) n++;
const bufs = [];
for (let i = 0; i < 3000; i++) bufs.push(Buffer.alloc(64 + (i % 200) * 64));
console.log(back.length, n, bufs.length);
`;

function cSource(): string {
  const lines = ['#include <stdio.h>', '#include <string.h>', 'struct P { int x, y; char name[32]; };'];
  for (let i = 0; i < 400; i++) {
    lines.push(
      `static int f${i}(struct P *p, int n) { int s = ${i}; for (int k = 0; k < n; k++) { s += p[k].x * ${(i % 13) + 1} - p[k].y; if (strlen(p[k].name) > ${i % 17}) s ^= k; } return s; }`,
    );
  }
  lines.push('int main(void) { struct P p[4] = {{1,2,"a"},{3,4,"bb"},{5,6,"ccc"},{7,8,"dddd"}}; int s = 0;');
  for (let i = 0; i < 400; i++) lines.push(`  s += f${i}(p, 4);`);
  lines.push('  printf("%d\\n", s); return 0; }');
  return lines.join('\n');
}

export const recordedPrograms: RecordedProgram[] = [
  { name: 'python3', command: ['python3', '-c', pythonScript] },
  { name: 'gcc', command: ['gcc', '-O2', '-c', 'prog.c', '-o', 'prog.o'], files: { 'prog.c': cSource() } },
  { name: 'node', command: [process.execPath, '-e', nodeScript] },
];

export interface RecordingOutcome {
  workload?: Workload;
  /** Why there is no workload. */
  skipped?: string;
  /** Operations recorded before truncation. */
  recordedOps?: number;
}

/**
 * Runs a program on heaplab's preload library with HEAPLAB_TRACE and reads the
 * trace back. For a program that runs others (gcc runs cc1 and as) the largest
 * of its traces is kept. Traces longer than `maxOps` are cut.
 */
export function recordProgram(program: RecordedProgram, maxOps: number, allocator = 'tlsf'): RecordingOutcome {
  let library: string;
  try {
    library = preloadLibraryPath(allocator);
  } catch (e) {
    return { skipped: `the preload library is not built (${(e as Error).message.split('\n')[0]})` };
  }
  const dir = mkdtempSync(join(tmpdir(), `heaplab-rec-${program.name}-`));
  try {
    for (const [file, text] of Object.entries(program.files ?? {})) writeFileSync(join(dir, file), text);
    const file = join(dir, 'trace');
    const env = preloadEnv(library);
    delete env['HEAPLAB_TRACE_CHILD'];
    env['HEAPLAB_TRACE'] = file;
    const run = spawnSync(program.command[0]!, program.command.slice(1), { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    if (run.error) return { skipped: `${program.command[0]} could not run: ${run.error.message}` };
    if (run.status !== 0) return { skipped: `${program.name} exited with ${run.status ?? run.signal}: ${String(run.stderr).trim().split('\n').slice(-1)[0] ?? ''}` };
    let best = '';
    let bestSize = -1;
    for (const path of traceFiles(file)) {
      try {
        const size = statSync(path).size;
        if (size > bestSize) {
          bestSize = size;
          best = path;
        }
      } catch {
        /* not written */
      }
    }
    if (!best) return { skipped: `${program.name} wrote no trace` };
    const trace = readTrace(best);
    const recordedOps = trace.op.length;
    if (recordedOps < 100) return { skipped: `${program.name}: only ${recordedOps} operations recorded` };
    const cut = truncateTrace(trace, maxOps);
    const who = trace.header.program || program.name;
    const threads = new Set(trace.thread).size;
    return {
      recordedOps,
      workload: {
        name: program.name,
        goal: 'recorded',
        description:
          `recorded from ${program.name} (${who}${threads > 1 ? `, ${threads} threads replayed in order` : ''}), ` +
          `${recordedOps.toLocaleString('en-US')} operations${recordedOps > maxOps ? `, the first ${maxOps.toLocaleString('en-US')} replayed` : ''}`,
        traces: [{ name: program.name, op: cut.op, id: cut.id, size: cut.size, alignLog2: cut.alignLog2, maxId: cut.maxId, limit: 0 }],
      },
    };
  } catch (e) {
    return { skipped: `${program.name}: ${(e as Error).message}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
