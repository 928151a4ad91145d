import { expect, it } from 'vitest';
import { compareTrace } from '../lib/replay.js';
import { TraceBuilder, rng, logUniform } from '../lib/workloads.js';

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

it.each([[1, 0], [2, 0], [3, 48 << 20], [4, 8 << 20], [5, 300 << 20]])('edge %i limit %i', (seed, limit) => {
  const res = compareTrace('dlmalloc', edge(seed, limit), { timingRuns: 0 });
  const d = res.divergence;
  expect(d, d ? `${d.what}: C ${d.c}, TS ${d.ts}` : '').toBeNull();
});
