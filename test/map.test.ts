// heaplab map: the picture's data (buildHeapMap) and the command.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildHeapMap, renderHeapMap } from '../lib/map/map.js';
import { defaultTraces } from '../lib/trace/workloads.js';
import { WalkState } from '../lib/walk.js';
import { repoRoot } from './util.js';

const cli = join(repoRoot, 'dist', 'cli.js');

describe('the heap map', () => {
  const trace = defaultTraces(1).find((t) => t.name === 'fragmenting-ramps')!;

  it('shows each design after operation N, with every live block asked for, and a timeline to the end', () => {
    const at = Math.floor(trace.op.length / 2);
    const map = buildHeapMap(trace, undefined, { at, samples: 50 });
    expect(map.at).toBe(at);
    expect(map.designs.map((d) => d.kind)).toEqual(['tlsf', 'dlmalloc', 'liballoc']);
    // the live blocks after `at` from the trace itself
    const size = new Map<number, number>();
    for (let i = 0; i <= at; i++) {
      if (trace.op[i] === 5) size.delete(trace.id[i]!);
      else size.set(trace.id[i]!, trace.size[i]!);
    }
    const live = [...size.values()].reduce((a, b) => a + b, 0);
    for (const d of map.designs) {
      expect(d.figures.requestedBytes).toBe(live);
      let known = 0;
      for (let i = 0; i < d.walk.start.length; i++) if (!Number.isNaN(d.requested[i]!)) known++;
      expect(known).toBe(size.size);
      expect(d.walk.state.filter((s) => s === WalkState.used).length).toBe(size.size);
      // samples every `every` operations, the last after the last operation
      expect(d.timeline.length).toBeGreaterThanOrEqual(50);
      expect(d.timeline.at(-1)!.op).toBe(trace.op.length - 1);
      for (const p of d.timeline) expect(p.mapped).toBeGreaterThanOrEqual(p.live);
    }
    const html = renderHeapMap(map);
    expect(html).toContain('<svg');
    for (const k of ['tlsf', 'dlmalloc', 'liballoc']) expect(html).toContain(`${k}: `);
    expect(html).toContain('asked for');
  });

  it('defaults to the peak of live bytes', () => {
    const map = buildHeapMap(trace, ['tlsf'], { samples: 10 });
    const d = map.designs[0]!;
    const peak = Math.max(...d.timeline.map((p) => p.live));
    expect(d.figures.requestedBytes).toBeGreaterThanOrEqual(peak);
  });

  it('heaplab map writes the page; its usage errors are one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-map-'));
    const out = join(dir, 'map.html');
    const ok = spawnSync(process.execPath, [cli, 'map', '--trace', 'small-churn', '--at', '100', '--out', out, '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const json = JSON.parse(ok.stdout) as { at: number; designs: Array<{ kind: string }> };
    expect(json.at).toBe(100);
    expect(json.designs).toHaveLength(3);
    expect(readFileSync(out, 'utf8')).toContain('heaplab map: small-churn');
    for (const [args, says] of [
      [['--trace', 'nope'], '--trace nope: no such file'],
      [['--trace', 'small-churn', '--at', '0'], '--at needs an operation from 1 to'],
      [['--allocator', 'glibc'], 'unknown allocator "glibc"'],
    ] as const) {
      const r = spawnSync(process.execPath, [cli, 'map', ...args], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(says);
    }
  });
});
