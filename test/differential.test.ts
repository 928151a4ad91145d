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
import { compareTrace } from '../lib/replay/compare.js';
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
