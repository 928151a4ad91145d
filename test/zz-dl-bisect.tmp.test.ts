import { it } from 'vitest';
import { compareTrace } from '../lib/replay.js';
import { TraceBuilder, rng, logUniform, type Trace } from '../lib/workloads.js';

function edge(seed: number, limit: number) {
  const r = rng(seed);
  const b = new TraceBuilder();
  const live: number[] = [];
  const extremes = [0, 1, 2 ** 53 - 1, 2 ** 53 - 16, 2 ** 52, 2 ** 40, 2 ** 33, 2 ** 32, 2 ** 32 - 1, 2 ** 31, 2 ** 30, 2 ** 29, 2 ** 25, 2 ** 25 - 8, 1 << 24, 262144 - 8, 262144 - 24, 262144, 511, 512, 504, 496];
  for (let i = 0; i < 6000; i++) {
    const x = r();
    const size = r() < 0.08 ? extremes[Math.floor(r() * extremes.length)]! : logUniform(r, 1, r() < 0.1 ? 64 << 20 : 1 << 16);
    if (live.length && x < 0.4) {
      const k = Math.floor(r() * live.length);
      b.free(live[k]!); live.splice(k, 1);
    } else if (live.length && x < 0.6) {
      b.realloc(live[Math.floor(r() * live.length)]!, size);
    } else {
      const al = r() < 0.2 ? 4 + Math.floor(r() * 38) : 4;
      live.push(b.alloc(size, al, r() < 0.2));
    }
  }
  return b.build(`edge-${seed}-${limit}`, limit);
}
function prefix(t: Trace, n: number): Trace {
  return { ...t, op: t.op.slice(0, n), id: t.id.slice(0, n), size: t.size.slice(0, n), alignLog2: t.alignLog2.slice(0, n) };
}
it('bisect', () => {
  const t = edge(1, 0);
  let lo = 0, hi = t.op.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (compareTrace('dlmalloc', prefix(t, mid), { timingRuns: 0 }).divergence) hi = mid; else lo = mid;
  }
  const d = compareTrace('dlmalloc', prefix(t, hi), { timingRuns: 0 }).divergence;
  console.log('first bad prefix', hi, 'op', hi - 1, t.op[hi - 1], t.id[hi - 1], t.size[hi - 1], t.alignLog2[hi - 1], JSON.stringify(d));
  for (let i = Math.max(0, hi - 1); i >= 0; i--) if (t.id[i] === t.id[hi - 1]) console.log('  id history', i, t.op[i], t.size[i], t.alignLog2[i]);
});
