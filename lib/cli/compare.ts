/**
 * `heaplab compare`: heaplab's main job. Replays the default traces through each
 * C allocator (inside the addon, one call per trace) and its TypeScript port,
 * proves they made the same decisions, and prints the speed of each.
 */
import { availableAllocators } from '../heap/heap.js';
import { HeaplabError } from '../errors.js';
import { allocatorKinds, type AllocatorKind } from '../kinds.js';
import { allocatorArgument, parseOptions, usageFailure } from './common.js';
import { usageLines } from './usage.js';
import { portFactories } from '../ports/index.js';
import { spawnSync } from 'node:child_process';
import { describePortJit, relaunchArgsForPorts, tuneJitForPorts } from '../ports/jit.js';
import { Progress, table } from '../util/progress.js';
import { median } from '../util/stats.js';
import { compareTrace, type Comparison } from '../replay/compare.js';
import { defaultTraces } from '../trace/workloads.js';
import { replayThing, THING, thingAvailable, type ThingResult } from '../replay/thing.js';

const usage = `Usage: heaplab ${usageLines.compare}

Replays the default traces (seeded: small-object churn, mixed sizes, large blocks,
aligned, realloc-heavy, fragmenting ramps, out-of-memory …) through each C
allocator on the deterministic arena page source and through its TypeScript port.
For every allocator and trace it prints whether both returned the same offset for
every operation and ended with the same statistics and arena bytes (equal), the
time per operation of each, and the ratio TS ÷ C. Exits 1 if any trace differs.

  --allocator NAME  only this allocator (tlsf, dlmalloc, liballoc); repeatable
  --trace NAME      only this trace; repeatable (--list shows them)
  --scale N         multiply each trace's length (default 1)
  --list            list the default traces and exit
  --shared          time every trace in this one node process (see below)
  --no-thing        leave out @thi.ng/malloc (the JavaScript allocator, when installed)
  --json            print the results as JSON on stdout

Each trace of each allocator is timed in a node process of its own, as a
program that runs one workload would run the port: V8 shapes a port's compiled
code by what it has run, and in one process the traces where allocations fail
slow down the ones timed after them. --shared times them all in this process,
after one untimed pass over them.

@thi.ng/malloc, when installed, replays the same traces over its own ArrayBuffer
beside the ports: its time per operation and memory (highest address used ÷
peak live bytes). It makes its own decisions, so it has no "equal" column.`;

interface Args {
  allocators: AllocatorKind[];
  traces: string[];
  scale: number;
  json: boolean;
  list: boolean;
  thing: boolean;
  shared: boolean;
}

function parse(argv: string[]): Args | string {
  let values;
  try {
    ({ values } = parseOptions({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        allocator: { type: 'string', short: 'a', multiple: true },
        trace: { type: 'string', short: 't', multiple: true },
        scale: { type: 'string' },
        json: { type: 'boolean' },
        list: { type: 'boolean' },
        'no-thing': { type: 'boolean' },
        shared: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    return (e as Error).message;
  }
  if (values.help) return 'help';
  const allocators: AllocatorKind[] = [];
  try {
    for (const v of values.allocator ?? []) allocators.push(allocatorArgument(v));
  } catch (e) {
    return (e as Error).message;
  }
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  if (!(scale > 0)) return '--scale needs a positive number';
  return {
    allocators,
    traces: values.trace ?? [],
    scale,
    json: values.json ?? false,
    list: values.list ?? false,
    thing: !values['no-thing'],
    shared: values.shared ?? false,
  };
}

const ns = (x: number): string => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));

export async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args === 'help') {
    console.log(usage);
    return 0;
  }
  if (typeof args === 'string') {
    return usageFailure('compare', usage, args);
  }
  let traces = defaultTraces(args.scale);
  if (args.list) {
    for (const t of traces) console.log(`${t.name.padEnd(22)} ${t.op.length} ops${t.limit ? `, limit ${t.limit} bytes` : ''}`);
    return 0;
  }
  if (args.traces.length) {
    const unknown = args.traces.filter((n) => !traces.some((t) => t.name === n));
    if (unknown.length) {
      return usageFailure('compare', usage, `unknown trace${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; --list shows the traces`);
    }
    traces = traces.filter((t) => args.traces.includes(t.name));
  }
  const relaunch = relaunchArgsForPorts();
  if (relaunch) { // the same command in a node that optimizes on its main thread (lib/ports/jit.ts)
    const child = spawnSync(process.execPath, [...relaunch, ...process.argv.slice(1)], { stdio: 'inherit' });
    if (child.error) throw child.error;
    return child.status ?? 1;
  }
  const built = availableAllocators();
  const kinds = (args.allocators.length ? args.allocators : [...allocatorKinds]).filter((k) => {
    if (!built.includes(k)) console.error(`heaplab compare: ${k} is not in this build; skipped`);
    else if (!portFactories[k]) console.error(`heaplab compare: ${k} has no TypeScript port yet; skipped`);
    else return true;
    return false;
  });
  const jit = tuneJitForPorts(); // before any port function is optimized
  const progress = new Progress('compare', kinds.length * traces.length);
  const results: Comparison[] = [];
  if (args.shared) {
    // V8 compiles a port's hot functions only after thousands of calls: one
    // untimed pass over the traces first (at half length), so that the table
    // measures the port, not the JIT warming up.
    const warmUp = defaultTraces(0.5).filter((w) => traces.some((t) => t.name === w.name));
    for (const kind of kinds) {
      for (const trace of warmUp) compareTrace(kind, trace, { snapshot: false, timingRuns: 1 });
      for (const trace of traces) {
        results.push(compareTrace(kind, trace));
        progress.tick(`${kind} ${trace.name}`);
      }
    }
  } else {
    for (const kind of kinds) {
      for (const trace of traces) {
        results.push(compareInOwnProcess(kind, trace.name, args.scale));
        progress.tick(`${kind} ${trace.name}`);
      }
    }
  }
  // @thi.ng/malloc on the same traces (its own decisions: time and memory only)
  const thingNote = args.thing ? thingAvailable() : 'left out (--no-thing)';
  const thing: ThingResult[] = [];
  if (thingNote === true) {
    const warm = new Progress('compare', traces.length);
    for (const trace of traces) {
      thing.push(replayThing(trace));
      warm.tick(`${THING} ${trace.name}`);
    }
    warm.end();
  }
  progress.end();
  if (args.json) {
    console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, jit, timing: args.shared ? 'shared' : 'own-process', results, thing, thingNote }, null, 2));
  } else {
    console.log(`\n${describePortJit(jit)}`);
    console.log(args.shared
      ? 'Every trace timed in this one process, after an untimed pass over them all: each port\'s code is shaped by every trace.'
      : 'Each trace timed in a node process of its own (as a program running one workload); --shared times them all in one.');
    for (const kind of kinds) {
      const mine = results.filter((r) => r.kind === kind);
      console.log(`\n${kind}: C original vs TypeScript port (arena page source)\n`);
      console.log(
        table(
          ['trace', 'ops', 'equal', 'C ns/op', 'TS ns/op', 'TS/C'],
          mine.map((r) => [r.trace, String(r.ops), r.equal ? 'yes' : 'NO', ns(r.cNsPerOp), ns(r.tsNsPerOp), `${r.ratio.toFixed(2)}×`]),
        ),
      );
      // The geometric mean weighs every trace alike: a few traces far from the
      // rest would otherwise decide the summary alone.
      const ratios = mine.map((r) => r.ratio).filter((x) => Number.isFinite(x) && x > 0);
      const geomean = Math.exp(ratios.reduce((s, x) => s + Math.log(x), 0) / Math.max(1, ratios.length));
      const sorted = [...ratios].sort((a, b) => a - b);
      const mid = median(ratios);
      const over = `over ${ratios.length} trace${ratios.length === 1 ? '' : 's'}`;
      const summary = ratios.length === 1 ? `${geomean.toFixed(2)}×` : `geometric mean ${geomean.toFixed(2)}×, median ${mid.toFixed(2)}×, worst ${sorted[sorted.length - 1]!.toFixed(2)}×`;
      console.log(`\nequal: ${mine.every((r) => r.equal) ? 'yes' : 'no'} · TS/C ${over}: ${summary}`);
      for (const r of mine.filter((x) => x.divergence)) {
        const d = r.divergence!;
        console.log(`  ${r.trace}: first difference at ${d.what}: C ${d.c}, TS ${d.ts}`);
      }
    }
  }
  if (!args.json && args.thing) printThing(traces.map((t) => t.name), kinds, results, thing, thingNote);
  if (kinds.length === 0) {
    console.error('heaplab compare: nothing to compare');
    return 1;
  }
  return results.every((r) => r.equal) ? 0 : 1;
}

/**
 * One trace of one allocator compared in a node process of its own: this
 * command again, with the same node flags, --shared on that trace alone.
 */
function compareInOwnProcess(kind: AllocatorKind, trace: string, scale: number): Comparison {
  const argv = [...process.execArgv, process.argv[1]!, 'compare', '--shared', '--json', '--no-thing', '--allocator', kind, '--trace', trace, '--scale', String(scale)];
  const child = spawnSync(process.execPath, argv, { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.error) throw child.error;
  let parsed: { results?: Comparison[] } | undefined;
  try {
    parsed = JSON.parse(child.stdout) as { results?: Comparison[] };
  } catch {
    parsed = undefined;
  }
  const result = parsed?.results?.[0];
  if (!result) {
    const why = child.signal ? `signal ${child.signal}` : `exit status ${child.status}`;
    throw new HeaplabError('ERR_HEAPLAB_CHILD_PROCESS', `compare of ${kind} on ${trace} in its own process ended with ${why}: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return result;
}

/** The ports beside @thi.ng/malloc, per trace: where TypeScript stands. */
function printThing(traces: string[], kinds: AllocatorKind[], results: Comparison[], thing: ThingResult[], note: true | string): void {
  console.log(`\n${THING}: the JavaScript allocator beside the ports (ns/op; mem: highest address used ÷ peak live bytes)`);
  if (note !== true) {
    console.log(`  skipped: ${note}`);
    return;
  }
  console.log('It makes its own decisions (first fit, one free list, no page source): compare speed and memory, not offsets.\n');
  const rows = traces.map((name) => {
    const t = thing.find((x) => x.trace === name);
    const ports = kinds.map((k) => results.find((r) => r.kind === k && r.trace === name));
    const fastest = Math.min(...ports.map((p) => (p ? p.tsNsPerOp : Infinity)));
    if (!t || t.skipped) return [name, ...ports.map((p) => (p ? ns(p.tsNsPerOp) : '-')), '-', '-', '-', t?.skipped ?? ''];
    return [
      name,
      ...ports.map((p) => (p ? ns(p.tsNsPerOp) : '-')),
      ns(t.nsPerOp!),
      Number.isFinite(t.memory!) ? t.memory!.toFixed(2) : '-',
      Number.isFinite(fastest) ? `${(t.nsPerOp! / fastest).toFixed(1)}×` : '-',
      t.failures ? `${t.failures} failed` : '',
    ];
  });
  console.log(table(['trace', ...kinds.map((k) => `${k} TS`), THING, 'mem', '÷ fastest port', 'note'], rows));
}
