// Each TypeScript port against its C original on the arena page source: the
// same offset for every operation, the same failures, the same final statistics,
// the same arena bytes (allocator metadata included) and the same heap walk, at
// the end and half way through (lib/replay/compare.ts), on every default
// trace, on edge-case traces, and on a trace recorded from a real program.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocatorKinds } from '../lib/index.js';
import { preloadLibraryPath } from '../lib/preload/preload.js';
import { bestOfSettled, compareTrace, SETTLE_BUDGET_NS, SETTLE_MAX_RUNS, SETTLE_QUIET_NS, SETTLE_RUNS } from '../lib/replay/compare.js';
import { integerSizes } from '../lib/replay/replay.js';
import { readTrace, traceFiles, type RecordedTrace } from '../lib/trace/file.js';
import { defaultTraces, edgeTraces } from '../lib/trace/workloads.js';
import { type Trace } from '../lib/trace/trace.js';

const traces = [...defaultTraces(1), ...edgeTraces()];

function expectEqual(kind: (typeof allocatorKinds)[number], trace: Trace): void {
  const r = compareTrace(kind, trace, { timingRuns: 0 });
  const d = r.divergence;
  expect(d, d ? `${kind}/${trace.name}: first difference at ${d.what}: C ${d.c}, TS ${d.ts}` : '').toBeNull();
  expect(r.equal).toBe(true);
}

let recorded: RecordedTrace | undefined;
let scratch = '';

beforeAll(() => {
  // A real program's allocations: python3 building and sorting a dict, recorded
  // through the tlsf preload library (the trace does not depend on the allocator
  // that recorded it, only on the program).
  scratch = mkdtempSync(join(tmpdir(), 'heaplab-diff-'));
  const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim();
  const file = join(scratch, 'python.trace');
  const run = spawnSync(python, ['-c', 'd = {str(i) * 3: [i] * (i % 7) for i in range(20000)}; print(len(sorted(d)))'], {
    env: { ...process.env, PYTHONMALLOC: 'malloc', LD_PRELOAD: preloadLibraryPath('tlsf'), HEAPLAB_TRACE: file },
    encoding: 'utf8',
  });
  expect(run.status, run.stderr).toBe(0);
  const all = traceFiles(file).map((f) => readTrace(f));
  recorded = all.sort((a, b) => b.op.length - a.op.length)[0];
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe.each(allocatorKinds)('%s: TypeScript port vs C original', (kind) => {
  it('has at least 20 traces of different shapes to replay', () => {
    expect(traces.length).toBeGreaterThanOrEqual(20);
    expect(traces.some((t) => t.limit > 0)).toBe(true);
  });

  it.each(traces.map((t) => [t.name, t] as const))('%s: same decisions, same end state', (_name, trace) => {
    expectEqual(kind, trace);
  });

  it('a trace recorded from python3: same decisions, same end state', () => {
    expect(recorded).toBeDefined();
    expect(recorded!.op.length).toBeGreaterThan(10_000);
    expectEqual(kind, { ...recorded!, name: 'python3-recorded' });
  });
});

describe('the sizes the ports are called with', () => {
  it("are an Int32Array copy when every size fits, else the trace's own Float64Array (edge traces)", () => {
    const small = defaultTraces(1)[0]!;
    const sizes = integerSizes(small);
    expect(sizes).toBeInstanceOf(Int32Array);
    expect(Array.from(sizes)).toEqual(Array.from(small.size));
    expect(integerSizes(small)).toBe(sizes); // made once per trace
    const huge = edgeTraces().find((t) => t.size.some((s) => s > 0x7fffffff));
    expect(huge).toBeDefined();
    expect(integerSizes(huge!)).toBe(huge!.size);
  });
});

describe("compare's timing (a fake clock: each run takes 2 ms)", () => {
  const RUN_NS = 2e6; // so that the quiet period fits under SETTLE_MAX_RUNS
  /** Runs `times` in order (C, TS per run) on a clock that each run moves by RUN_NS; the best pair and the runs made. */
  function timed(times: Array<[number, number]>, runs: number, settle: boolean): { best: [number, number]; made: number } {
    let clock = 0;
    let made = 0;
    const best = bestOfSettled(() => {
      clock += RUN_NS;
      return times[Math.min(made++, times.length - 1)]!;
    }, runs, settle, () => clock);
    return { best, made };
  }

  it('a fixed count (timingRuns) is exactly that many runs', () => {
    expect(timed([[5, 9], [5, 1]], 1, false)).toEqual({ best: [5, 9], made: 1 });
  });

  it('keeps going past the minimum until the port has settled: a loop optimized late is still timed', () => {
    // the port runs at 60 for 40 runs (its optimized code not in yet), then at 20
    const slowThenFast: Array<[number, number]> = [...Array.from({ length: 40 }, (): [number, number] => [10, 60]), [10, 20]];
    const r = timed(slowThenFast, 10, true);
    expect(r.best).toEqual([10, 20]);
    // and then stops: the quiet period after the last gain, not the cap
    expect(r.made).toBeGreaterThanOrEqual(41 + SETTLE_RUNS);
    expect(r.made).toBeLessThan(41 + SETTLE_QUIET_NS / RUN_NS + 2);
  });

  it('a steady trace stops once the quiet period has passed', () => {
    const r = timed([[10, 20]], 3, true);
    expect(SETTLE_QUIET_NS / RUN_NS).toBeLessThan(SETTLE_MAX_RUNS);
    expect(r.made).toBeGreaterThan(SETTLE_QUIET_NS / RUN_NS);
    expect(r.made).toBeLessThanOrEqual(SETTLE_QUIET_NS / RUN_NS + 2);
  });

  it('a trace whose runs keep improving stops at the time budget', () => {
    let t = 1e9;
    let made = 0;
    let clock = 0;
    bestOfSettled(() => {
      made++;
      clock += 1e8; // 100 ms a run
      return [(t *= 0.9), t];
    }, 3, true, () => clock);
    expect(made).toBe(SETTLE_BUDGET_NS / 1e8 + 1);
  });
});
