// Each TypeScript port against its C original on the arena page source: the
// same offset for every operation, the same failures, the same final statistics
// and the same arena bytes (allocator metadata included), on every default trace.
import { describe, expect, it } from 'vitest';
import { allocatorKinds } from '../lib/index.js';
import { compareTrace } from '../lib/replay.js';
import { defaultTraces } from '../lib/workloads.js';

const traces = defaultTraces(1);

describe.each(allocatorKinds)('%s: TypeScript port vs C original', (kind) => {
  it('has at least 20 traces of different shapes to replay', () => {
    expect(traces.length).toBeGreaterThanOrEqual(20);
    expect(traces.some((t) => t.limit > 0)).toBe(true);
  });

  it.each(traces.map((t) => [t.name, t] as const))('%s: same decisions, same end state', (_name, trace) => {
    const r = compareTrace(kind, trace, { timingRuns: 0 });
    const d = r.divergence;
    expect(d, d ? `${kind}/${trace.name}: first difference at ${d.what}: C ${d.c}, TS ${d.ts}` : '').toBeNull();
    expect(r.equal).toBe(true);
  });
});
