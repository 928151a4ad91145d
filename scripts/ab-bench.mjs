#!/usr/bin/env node
// ab-bench.mjs — one of `heaplab bench`'s workloads, run in ONE process on this
// checkout's addon and on another build of it (a worktree of an older commit,
// built with `npx cmake-js compile --out build`), in interleaved rounds:
// A B C A B C ... On this shared VM a run's speed moves by a third from one
// minute to the next, and `heaplab bench` times each allocator in its own child,
// at its own minute; here every round meets all of them in the same few
// seconds, and each figure is the median over the rounds.
//
//   node scripts/ab-bench.mjs [--rounds N] [--workload W] [--other PATH/heaplab.node] TARGET...
//
// A TARGET is an allocator the bench knows (tlsf+cache, mimalloc, glibc, ...),
// NAME@other for the other build's, or NAME=PATH.so for a malloc-compatible
// library (a peer). With two-thread workloads (scalable) each round also runs
// the first thread's trace alone and prints 2T/1T, as the bench does. The
// first TARGET is the baseline of the ratios. Run `npm run build:ts` first;
// jemalloc loads only with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384
// set before node starts (its TLS model; `heaplab bench` sets it for its children).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let rounds = 11;
let workload = 'fast';
let otherPath;
let help = false;
const targets = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--rounds') rounds = Number(args[++i]);
  else if (a === '--workload') workload = args[++i];
  else if (a === '--other') otherPath = args[++i];
  else if (a === '-h' || a === '--help') help = true;
  else targets.push(a);
}
if (help || !targets.length || !(rounds >= 1)) {
  console.error('usage: node scripts/ab-bench.mjs [--rounds N] [--workload fast|space|stable|scalable|realtime] [--other PATH/heaplab.node] TARGET...');
  process.exit(help ? 0 : 2);
}
if (!existsSync(join(root, 'dist', 'addon', 'native.js'))) {
  console.error('ab-bench: dist/ is missing: npm run build:ts');
  process.exit(2);
}
const { binding } = await import(join(root, 'dist', 'addon', 'native.js'));
const { benchWorkloads } = await import(join(root, 'dist', 'bench', 'workloads.js'));
const { median } = await import(join(root, 'dist', 'util', 'stats.js'));
let other;
if (targets.some((t) => t.includes('@other'))) {
  if (!otherPath) {
    console.error('ab-bench: a NAME@other target needs --other PATH/heaplab.node');
    process.exit(2);
  }
  const mod = { exports: {} };
  process.dlopen(mod, otherPath); // its own copy of every symbol: dlopen is RTLD_LOCAL
  other = mod.exports;
}
const w = benchWorkloads(1, [workload])[0];
if (!w) {
  console.error(`ab-bench: no workload ${workload}`);
  process.exit(2);
}
const traces = typeof w.traces === 'function' ? w.traces() : w.traces;

/** Operations per ns of one throughput pass (best of one: the rounds are the repeats). */
function rate(target, subset) {
  const [spec, path] = target.split('=');
  const [name, where] = spec.split('@');
  const addon = where === 'other' ? other : binding;
  const r = addon.bench(name, subset, { touch: true, latency: false, throughputRuns: 1, maxSamples: 0, ...(path ? { path } : {}) });
  if (r.error) throw new Error(`${target}: ${r.error}`);
  return r.ops / r.elapsedNs;
}

const two = traces.length > 1;
const ns = new Map(targets.map((t) => [t, []]));
const scaling = new Map(targets.map((t) => [t, []]));
for (let round = 0; round < rounds; round++) {
  for (const t of targets) {
    const all = rate(t, traces);
    ns.get(t).push(1 / all);
    if (two) scaling.get(t).push(all / rate(t, [traces[0]]));
  }
  if (process.stderr.isTTY) process.stderr.write(`\rab-bench: round ${round + 1}/${rounds}`);
}
if (process.stderr.isTTY) process.stderr.write("\n");
const base = median(ns.get(targets[0]));
console.log(`${workload}, ${rounds} interleaved rounds, medians (ratio to ${targets[0]}):`);
for (const t of targets) {
  const m = median(ns.get(t));
  const row = [`${t.split('=')[0].padEnd(24)}`, `${m.toFixed(2)} ns/op`, `${(m / base).toFixed(2)}x`];
  if (two) row.push(`2T/1T ${median(scaling.get(t)).toFixed(2)}`);
  console.log(row.join('  '));
}
