/**
 * `heaplab bench [--quick]`: every allocator on the same workloads, one run,
 * ratios to glibc; prints a table per workload and writes an HTML report.
 */
import { describePortJit } from '../ports/jit.js';
import { writeFileSync } from 'node:fs';
import { peerNames, runBench, type BenchOptions } from '../bench/bench.js';
import { writeReport } from '../bench/html.js';
import { formatNs, leaders, workloadTable } from '../bench/report.js';
import { allocatorNames } from '../kinds.js';
import { benchWorkloadNames, recordedPrograms } from '../bench/workloads.js';
import { Progress, table } from '../util/progress.js';
import { commaList, parseOptions, peerLibraries, type PeerLibrary, usageFailure, UsageError } from './common.js';
import { usageLines } from './usage.js';

const USAGE = usageLines.bench;

const HELP = `Usage: heaplab ${USAGE}

Runs every allocator on the same workloads and prints, per workload, each one
as a ratio to glibc's malloc (time, p99.9 latency, max latency, memory
overhead), then writes an HTML report with charts.

Allocators: heaplab's tlsf, dlmalloc and liballoc (C, on the mmap page source,
and their TypeScript ports beside them), glibc's malloc, and the peers jemalloc,
mimalloc and tcmalloc when their Debian packages are installed (npm run
bench:peers installs them; HEAPLAB_JEMALLOC / HEAPLAB_MIMALLOC / HEAPLAB_TCMALLOC
name another library). Workloads: fast, space, stable, scalable (2 threads),
realtime, and traces recorded now from python3, gcc and node.

Options:
  --quick            about 0.15 of the operations, one timing pass (1-1.5 min)
  -o, --out FILE     the HTML report (default report/bench.html)
  --json FILE        also write the results as JSON
  --allocator LIST   only these (comma-separated: tlsf,glibc,jemalloc,...)
  --workload LIST    only these workloads (fast,space,stable,scalable,realtime,python3,gcc,node)
  --peer NAME=PATH   also run the malloc-compatible library PATH (a .so) as NAME,
                     through its own malloc/free/realloc/posix_memalign, memory from
                     the resident set; repeatable. A library that fails costs its row.
  --scale N          multiply operation counts (default 1, quick 0.15)
  --no-record        skip the recorded programs
  --no-ports         skip the TypeScript ports
  --no-napi          skip the Node-API paths
  -h, --help         this text
`;

/** Names a --peer library may not take: the allocators bench already knows. */
const reservedNames: readonly string[] = [...allocatorNames, 'glibc', ...peerNames];

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseOptions({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
      quick: { type: 'boolean' },
      out: { type: 'string', short: 'o' },
      json: { type: 'string' },
      allocator: { type: 'string' },
      workload: { type: 'string' },
      scale: { type: 'string' },
      peer: { type: 'string', multiple: true },
      'no-record': { type: 'boolean' },
      'no-ports': { type: 'boolean' },
      'no-napi': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    return usageFailure('bench', USAGE, (error as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.scale !== undefined && !(Number(values.scale) > 0)) return usageFailure('bench', USAGE, '--scale needs a positive number');
  let libraries: PeerLibrary[];
  try {
    libraries = peerLibraries(values.peer ?? [], reservedNames);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('bench', USAGE, error.message);
    throw error;
  }
  let progress: Progress | undefined;
  let phase = '';
  const options: BenchOptions = {
    quick: values.quick ?? false,
    record: !values['no-record'],
    ports: !values['no-ports'],
    napi: !values['no-napi'],
    onStep: (what, stepPhase, total) => {
      if (!progress || stepPhase !== phase) {
        progress?.end();
        progress = new Progress(stepPhase === 'setup' ? 'bench setup' : 'bench', total);
        phase = stepPhase;
      }
      progress.tick(what);
    },
  };
  const allocators = commaList(values.allocator);
  const workloads = commaList(values.workload);
  // every name is checked before anything runs: a typo must not overwrite the last report
  const knownAllocators = [...allocatorNames, 'glibc', ...peerNames, ...libraries.map((l) => l.name)];
  const badAllocator = allocators?.find((a) => !knownAllocators.includes(a));
  if (badAllocator !== undefined) {
    return usageFailure('bench', USAGE, `unknown allocator ${JSON.stringify(badAllocator)} (expected some of ${knownAllocators.join(', ')})`);
  }
  const knownWorkloads: string[] = [...benchWorkloadNames, ...recordedPrograms.map((p) => p.name)];
  const badWorkload = workloads?.find((w) => !knownWorkloads.includes(w));
  if (badWorkload !== undefined) {
    return usageFailure('bench', USAGE, `unknown workload ${JSON.stringify(badWorkload)} (expected some of ${knownWorkloads.join(', ')})`);
  }
  if (allocators?.length === 0 || workloads?.length === 0) return usageFailure('bench', USAGE, '--allocator and --workload need at least one name');
  if (allocators) options.allocators = [...allocators, ...libraries.map((l) => l.name)];
  if (libraries.length) options.libraries = libraries;
  if (workloads) options.workloads = workloads;
  if (values.scale !== undefined) options.scale = Number(values.scale);
  const report = runBench(options);
  progress?.end();

  const out: string[] = [];
  out.push(`heaplab bench — ${report.date} — ${report.quick ? 'quick' : 'full'} run, ${(report.durationMs / 1000).toFixed(0)} s`);
  out.push(`${report.machine.cpu}, ${report.machine.cores} cores, Node ${report.machine.node}; clock ${report.clock.name}, ${report.clock.overheadNs.toFixed(1)} ns per reading (subtracted)`);
  if (report.portJit) out.push(describePortJit(report.portJit));
  for (const p of report.peers) if (p.reason !== 'not selected') out.push(p.ok ? `peer ${p.name}: ${p.path}` : `peer ${p.name}: skipped (${p.reason})`);
  for (const r of report.recordings) if (!r.ok) out.push(`recording ${r.name}: skipped (${r.reason})`);
  out.push('Lower is better in every column. time×, p99.9×, mem×: ratio to glibc. Latencies in ns (k = µs, M = ms).');
  out.push('mem: peak mapped ÷ peak live. rss: peak resident set ÷ peak live (shown when the live set reaches 8 MiB).');
  out.push('2T/1T (threaded workloads): throughput on 2 threads ÷ on 1; 2.0 is perfect scaling (here, higher is better).');
  out.push('pg: of the operations at or above p99.9, the share that called the page source (cache, mmap, munmap, mremap): the operating system\'s part of the tail.');
  for (const w of report.workloads) {
    const t = workloadTable(w);
    out.push('', `${w.name} — ${w.description} (${w.ops.toLocaleString('en-US')} ops${w.threads > 1 ? `, ${w.threads} threads` : ''})`, '', table(t.header, t.rows));
  }
  if (report.napi.length) {
    out.push('', 'Node-API paths: ns per alloc + free (ratio to Buffer.allocUnsafe)', '');
    const paths = [...new Set(report.napi.map((n) => n.path))];
    const sizes = [...new Set(report.napi.map((n) => n.size))];
    out.push(
      table(
        ['path', ...sizes.map((s) => `${s} B`)],
        paths.map((p) => [p, ...sizes.map((s) => {
          const n = report.napi.find((x) => x.path === p && x.size === s);
          return n ? `${n.nsPerPair.toFixed(0)} (${n.ratio.toFixed(2)}×)` : '-';
        })]),
      ),
    );
  }
  const lead = leaders(report);
  if (lead.length) {
    out.push('', 'Leader per workload, on the figure the workload is about (lower is better), and heaplab\'s best beside it:');
    const show = (metric: string, v: number): string =>
      metric === 'memory overhead' ? v.toFixed(3) : metric === 'time' ? `${(v / 1e6).toFixed(1)} ms` : `${formatNs(v)} ns`;
    const vs = (r: number): string => (Number.isFinite(r) ? ` (${r.toFixed(2)}× glibc)` : '');
    for (const l of lead) {
      const mine = l.heaplab ? `; heaplab's best ${l.heaplab.allocator} ${show(l.metric, l.heaplab.value)}${vs(l.heaplab.ratioToGlibc)}` : ' (heaplab)';
      out.push(`  ${l.workload.padEnd(9)} ${l.metric.padEnd(15)} ${l.leader} ${show(l.metric, l.value)}${vs(l.ratioToGlibc)}${mine}`);
    }
  }

  const html = writeReport(report, values.out ?? 'report/bench.html');
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 1));
  out.push('', `report: ${html}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return report.workloads.some((w) => w.runs.some((r) => !r.ok)) ? 1 : 0;
}
