/**
 * The benchmark, run tiny: every available allocator on two small workloads (one
 * single-threaded with a memory timeline, one on two threads), the TS ports and
 * the Node-API paths. Structure and sanity only — never timing thresholds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { percentile, runBench } from '../lib/bench/bench.js';
import { writeReport } from '../lib/bench/html.js';
import { workloadTable, type BenchReport } from '../lib/bench/report.js';
import { benchWorkloadNames, benchWorkloads, stableTrace, truncateTrace, type Workload } from '../lib/bench/workloads.js';
import { preloadLibraryPath } from '../lib/preload/preload.js';
import { churn } from '../lib/trace/workloads.js';
import { repoRoot } from './util.js';

const tiny: Workload[] = [
  { name: 'stable', goal: 'stable', description: 'tiny stable', traces: [stableTrace('stable', 1, 4000)] },
  {
    name: 'scalable',
    goal: 'scalable',
    description: 'tiny scalable',
    traces: [
      churn('a', 2, { ops: 2000, live: 100, size: (r) => 16 + Math.floor(r() * 1000) }),
      churn('b', 3, { ops: 2000, live: 100, size: (r) => 16 + Math.floor(r() * 1000) }),
    ],
  },
];

let report: BenchReport;
let dir: string;
let html: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'heaplab-bench-test-'));
  report = runBench({ customWorkloads: tiny, throughputRuns: 1, napiScale: 0.01, memoryFloor: 0 });
  html = readFileSync(writeReport(report, join(dir, 'bench.html')), 'utf8');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('heaplab bench (tiny)', () => {
  it('runs every available allocator on every workload', () => {
    expect(report.allocators).toEqual(expect.arrayContaining(['glibc']));
    expect(report.allocators.length).toBeGreaterThanOrEqual(2);
    for (const p of report.peers) expect(report.allocators.includes(p.name)).toBe(p.ok);
    for (const w of report.workloads) {
      const c = w.runs.filter((r) => r.engine === 'native');
      expect(c.map((r) => r.allocator)).toEqual(report.allocators);
      for (const r of c) {
        expect(r.error ?? '').toBe('');
        expect(r.ok).toBe(true);
        expect(r.ops).toBe(w.ops);
      }
    }
  });

  it('gives finite ratios to glibc, percentiles in order, and glibc at 1×', () => {
    for (const w of report.workloads) {
      for (const r of w.runs) {
        expect(Number.isFinite(r.ratio.time)).toBe(true);
        expect(Number.isFinite(r.ratio.memory)).toBe(true);
        expect(r.peakMapped).toBeGreaterThan(0);
        expect(r.peakLive).toBeGreaterThan(0);
        if (r.engine === 'native') {
          const l = r.latency!;
          expect(Number.isFinite(r.ratio.p999) && Number.isFinite(r.ratio.max)).toBe(true);
          expect(l.p50).toBeLessThanOrEqual(l.p99);
          expect(l.p99).toBeLessThanOrEqual(l.p999);
          expect(l.p999).toBeLessThanOrEqual(l.p9999);
          expect(l.p9999).toBeLessThanOrEqual(l.max);
        }
      }
      const glibc = w.runs.find((r) => r.allocator === 'glibc')!;
      expect(glibc.ratio.time).toBe(1);
      expect(glibc.ratio.memory).toBe(1);
    }
    const scalable = report.workloads.find((w) => w.name === 'scalable')!;
    expect(scalable.threads).toBe(2);
    for (const r of scalable.runs) expect(Number.isFinite(r.scaling)).toBe(true);
  });

  it('runs the TS ports beside their C originals (single-threaded workloads only)', () => {
    const stable = report.workloads.find((w) => w.name === 'stable')!;
    const ports = stable.runs.filter((r) => r.engine === 'ts');
    expect(ports.map((r) => r.allocator)).toEqual(report.ports);
    for (const p of ports) {
      expect(p.ok).toBe(true);
      expect(Number.isFinite(p.portVsC)).toBe(true);
    }
    expect(report.workloads.find((w) => w.name === 'scalable')!.runs.some((r) => r.engine === 'ts')).toBe(false);
    // each port ran in a node of its own, optimizing on its main thread, with the ports' budget
    expect(report.portJit?.compilesOnMainThread).toBe(process.env.HEAPLAB_V8_DEFAULTS !== '1');
    expect(report.portJit?.source).toBe(process.env.HEAPLAB_V8_DEFAULTS === '1' ? 'v8-default' : 'heaplab');
    const table = workloadTable(stable);
    expect(table.rows.length).toBe(stable.runs.length);
  });

  it('samples memory over time for the stable workload', () => {
    const stable = report.workloads.find((w) => w.name === 'stable')!;
    for (const r of stable.runs.filter((x) => x.engine === 'native')) expect(r.timeline!.length).toBeGreaterThan(5);
  });

  it('times the Node-API paths beside Buffer.allocUnsafe', () => {
    const sizes = [...new Set(report.napi.map((n) => n.size))];
    expect(sizes).toEqual([64, 4096, 1 << 20]);
    for (const n of report.napi) expect(n.nsPerPair > 0 && Number.isFinite(n.ratio)).toBe(true);
    expect(report.napi.filter((n) => n.path === 'Buffer.allocUnsafe').length).toBe(3);
    // Node's own floor under the safe path is on the table at every size (timed, not compared: no timing thresholds)
    for (const size of sizes) {
      const floor = report.napi.filter((n) => n.size === size && n.path === 'external Buffer (floor)');
      expect(floor.length).toBe(1);
      expect(floor[0]!.nsPerPair).toBeGreaterThan(0);
    }
  });

  it('writes an HTML report with the charts and says which peers were skipped', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect((html.match(/<svg class="chart lines"/g) ?? []).length).toBeGreaterThanOrEqual(3); // 2 latency + 1 timeline
    expect((html.match(/<svg class="chart bars"/g) ?? []).length).toBeGreaterThanOrEqual(5); // throughput ×2, memory, Node-API ×3
    expect(html).toContain('memory overhead over the run');
    expect(html).toContain('latency per operation by percentile');
    for (const p of report.peers.filter((x) => !x.ok)) expect(html).toContain(`<b>${p.name}</b>: skipped`);
  });
});

describe('bench helpers', () => {
  it('reads percentiles from a histogram', () => {
    const h = { lowerNs: [10, 20, 40], count: [50, 40, 10], total: 100, maxNs: 45 };
    expect(percentile(h, 0.5)).toBe(20);
    expect(percentile(h, 0.49)).toBe(10);
    expect(percentile(h, 0.95)).toBe(40);
    expect(percentile(h, 1)).toBe(45);
  });

  it('generates the same workloads from the same seeds', () => {
    const a = benchWorkloads(0.001);
    const b = benchWorkloads(0.001);
    expect(a.map((w) => w.name)).toEqual(['fast', 'space', 'stable', 'scalable', 'realtime']);
    expect(a.map((w) => w.name)).toEqual([...benchWorkloadNames]);
    // only: the named workloads, the same traces
    const only = benchWorkloads(0.001, ['stable']);
    expect(only.map((w) => w.name)).toEqual(['stable']);
    expect(Buffer.from(only[0]!.traces[0]!.op).equals(Buffer.from(a[2]!.traces[0]!.op))).toBe(true);
    for (let i = 0; i < a.length; i++) {
      for (let k = 0; k < a[i]!.traces.length; k++) {
        expect(Buffer.from(a[i]!.traces[k]!.size.buffer).equals(Buffer.from(b[i]!.traces[k]!.size.buffer))).toBe(true);
        expect(Buffer.from(a[i]!.traces[k]!.op).equals(Buffer.from(b[i]!.traces[k]!.op))).toBe(true);
      }
    }
    const t = truncateTrace(a[0]!.traces[0]!, 100);
    expect(t.op.length).toBe(100);
    expect(t.maxId).toBeLessThanOrEqual(100);
  });
});

describe('heaplab bench --peer (libraries the user names)', () => {
  let peerReport: BenchReport;
  let peerDir: string;
  beforeAll(() => {
    peerDir = mkdtempSync(join(tmpdir(), 'heaplab-peer-test-'));
    const fixture = join(repoRoot, 'test', 'fixtures', 'peer_library.c');
    const crashy = join(peerDir, 'crashy.so');
    const empty = join(peerDir, 'empty.so');
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-DPEER_CRASHES', '-o', crashy, fixture]);
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-DPEER_NO_MALLOC', '-o', empty, fixture]);
    peerReport = runBench({
      customWorkloads: [tiny[0]!],
      allocators: ['tlsf', 'glibc', 'mine', 'crashy', 'empty'],
      // heaplab's own preload library is a malloc-compatible library like any other
      libraries: [
        { name: 'mine', path: preloadLibraryPath('tlsf') },
        { name: 'crashy', path: crashy },
        { name: 'empty', path: empty },
      ],
      record: false,
      ports: false,
      napi: false,
      throughputRuns: 1,
      memoryFloor: 0,
    });
  });
  afterAll(() => rmSync(peerDir, { recursive: true, force: true }));

  it('runs a working library beside the others, with its memory from the resident set', () => {
    const w = peerReport.workloads[0]!;
    const mine = w.runs.find((r) => r.allocator === 'mine')!;
    expect(mine.ok).toBe(true);
    expect(mine.family).toBe('peer');
    expect(mine.ops).toBe(w.ops);
    expect(peerReport.memorySources['mine']).toMatch(/resident/);
    expect(peerReport.peers.find((p) => p.name === 'mine')).toMatchObject({ ok: true, path: preloadLibraryPath('tlsf') });
  });

  it('costs a library that lacks malloc, or crashes, only its own row, with the reason', () => {
    const empty = peerReport.peers.find((p) => p.name === 'empty')!;
    expect(empty.ok).toBe(false);
    expect(empty.reason).toMatch(/does not define malloc/);
    const crashy = peerReport.peers.find((p) => p.name === 'crashy')!;
    expect(crashy.ok).toBe(false);
    expect(crashy.reason).toMatch(/crashed|SIGABRT/);
    const w = peerReport.workloads[0]!;
    expect(w.runs.map((r) => r.allocator)).toEqual(['tlsf', 'glibc', 'mine']);
    expect(w.runs.every((r) => r.ok)).toBe(true);
  });

  it("tells, for heaplab's allocators only, how much of the tail crossed the page source", () => {
    const w = peerReport.workloads[0]!;
    const tlsf = w.runs.find((r) => r.allocator === 'tlsf')!;
    const share = tlsf.latency!.pageShare!;
    for (const v of [share.p99, share.p999, share.p9999, share.max]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(w.runs.find((r) => r.allocator === 'glibc')!.latency!.pageShare).toBeUndefined();
    expect(w.runs.find((r) => r.allocator === 'mine')!.latency!.pageShare).toBeUndefined();
  });
});
