import { expect, it } from 'vitest';
import { firstDivergence, replayNative, replayPort } from '../lib/replay.js';
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

it.each([[1, 0], [2, 0], [3, 48 << 20], [4, 8 << 20], [5, 300 << 20], [6, 0], [7, 20 << 20]])('edge %i limit %i', (seed, limit) => {
  const t = edge(seed, limit);
  const c = replayNative('dlmalloc', t, { snapshot: true });
  const ts = replayPort('dlmalloc', t, { snapshot: true });
  const d = firstDivergence(t, { ...c, snapshot: undefined }, { ...ts, snapshot: undefined });
  expect(d, d ? `${d.what}: C ${d.c}, TS ${d.ts}` : '').toBeNull();
  const a = c.snapshot!, b = ts.snapshot!;
  expect(a.length).toBe(b.length);
  const a32 = new Uint32Array(a.buffer, a.byteOffset, a.length >> 2), b32 = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
  let partial = 0, bad = 0;
  for (let w = 0; w < a32.length; w += 2) {
    if (w * 4 >= 4104 && w * 4 < 4160) continue; // hooks
    if (a32[w] === b32[w] && a32[w + 1] === b32[w + 1]) continue;
    const lowOk = ((a32[w]! ^ b32[w]!) & 0x3fffffff) === 0 && b32[w + 1] === 0 && a32[w + 1]! < 0x10000;
    if (lowOk) partial++; else if (bad++ < 5) console.log('bad word', w * 4, a32[w]!.toString(16), a32[w + 1]!.toString(16), b32[w]!.toString(16), b32[w + 1]!.toString(16));
  }
  console.log(t.name, 'failures', c.failures, 'partial-pointer words', partial, 'bad', bad);
  expect(bad).toBe(0);
});
