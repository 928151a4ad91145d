/**
 * `heaplab churn`: the churn harness under every allocator, as a program of its
 * own (LD_PRELOAD), in interleaved rounds; medians, and ratios to glibc paired
 * by round (lib/bench/churn.ts).
 */
import { writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { writeChurnReport } from '../bench/churn-html.js';
import { runChurn, defaultChurnConfig, type ChurnConfig, type ChurnRow, type ChurnTarget } from '../bench/churn.js';
import { findPeerLibrary, peerNames } from '../bench/peers.js';
import { formatNs } from '../bench/report.js';
import { allocatorNames } from '../kinds.js';
import { churnProgramPath, PreloadLibraryNotFoundError, preloadLibraryPath } from '../preload/preload.js';
import { Progress, table } from '../util/progress.js';
import { commaList, formatBytes, parseOptions, peerLibraries, type PeerLibrary, usageFailure, UsageError } from './common.js';
import { usageLines } from './usage.js';

const USAGE = usageLines.churn;
const d = defaultChurnConfig;

const HELP = `Usage: heaplab ${USAGE}

Runs the churn harness (native/bench/churn.c) as a program of its own under
each allocator's preload library (glibc: nothing preloaded), the way a real
program meets an allocator: LIVE blocks of log-uniform sizes in [MIN, MAX],
then PAIRS random replacements (free one, malloc a new one in its slot), every
block tagged in its first and last 8 bytes and checked before its free. A pass
for throughput, a second timing every malloc.

The rounds are interleaved (every allocator once, then again), and each figure
is the median over the rounds. A ratio to glibc is the median of each round's
ratio to glibc's run in the same round: on a shared machine a run's speed moves
by a third from one minute to the next, and pairing by round keeps a slower
minute out of the ratio.

Options:
  -a, --allocator LIST  comma-separated: glibc, ${allocatorNames.join(', ')},
                        ${peerNames.join(', ')} (default: all; a peer that is not installed is skipped)
  --peer NAME=PATH      also run the malloc-compatible library PATH (a .so) as NAME; repeatable
  --rounds N            rounds (default ${d.rounds})
  --pairs N             replacements per pass (default ${d.pairs})
  --live N              blocks live at once (default ${d.live})
  --min BYTES           smallest block (default ${d.min}, at least 8)
  --max BYTES           largest block (default ${d.max})
  --threads N           N threads, each with LIVE blocks and PAIRS replacements, on one
                        heap: the total throughput only (default 1)
  --seed N              the sizes' and replacements' seed (default ${d.seed})
  --fill                write every byte of each new block (resident memory is then
                        what the allocator hands out, not what it touches)
  -o, --out FILE        the HTML page: the table, bars of the ratios, every round
                        (default report/churn.html)
  --json FILE           also write the results as JSON
  -h, --help            this text

Exit status: 0; 1 if a run failed (a block's tags changed, a crash, a library the
dynamic linker would not preload: each costs its own row, with the reason); 2
for a usage error.
`;

/** An integer option in [lo, hi], or a usage error naming it. */
function integer(option: string, text: string | undefined, fallback: number, lo: number, hi: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < lo || n > hi) {
    throw new UsageError(`--${option} needs a whole number from ${lo} to ${hi}; received ${JSON.stringify(text)}`);
  }
  return n;
}

export async function main(argv: string[]): Promise<number> {
  let config: ChurnConfig;
  let names: string[] | undefined;
  let libraries: PeerLibrary[];
  let json: string | undefined;
  let html = 'report/churn.html';
  try {
    const { values } = parseOptions({
      args: argv,
      allowPositionals: false,
      options: {
        allocator: { type: 'string', short: 'a' },
        peer: { type: 'string', multiple: true },
        rounds: { type: 'string' },
        pairs: { type: 'string' },
        live: { type: 'string' },
        min: { type: 'string' },
        max: { type: 'string' },
        threads: { type: 'string' },
        seed: { type: 'string' },
        fill: { type: 'boolean' },
        json: { type: 'string' },
        out: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const min = integer('min', values.min, d.min, 8, 2 ** 30);
    config = {
      rounds: integer('rounds', values.rounds, d.rounds, 1, 99),
      pairs: integer('pairs', values.pairs, d.pairs, 1, 1e9),
      live: integer('live', values.live, d.live, 1, 1e7),
      min,
      max: integer('max', values.max, Math.max(d.max, min), min, 2 ** 30),
      threads: integer('threads', values.threads, d.threads, 1, 64),
      seed: integer('seed', values.seed, d.seed, 0, Number.MAX_SAFE_INTEGER),
      fill: values.fill ?? false,
    };
    // with --fill every live byte is resident: refuse what would not fit in half the machine
    const liveBytes = config.live * config.threads * meanSize(config.min, config.max);
    if (config.fill && liveBytes > totalmem() / 2) {
      throw new UsageError(`--fill with ${config.live} live blocks of ${formatBytes(config.min)}–${formatBytes(config.max)}${config.threads > 1 ? ` on each of ${config.threads} threads` : ''} would keep about ${formatBytes(liveBytes)} resident; this machine has ${formatBytes(totalmem())}`);
    }
    libraries = peerLibraries(values.peer ?? [], ['glibc', ...allocatorNames, ...peerNames]);
    names = commaList(values.allocator);
    const known = ['glibc', ...allocatorNames, ...peerNames, ...libraries.map((l) => l.name)];
    const bad = names?.find((n) => !known.includes(n));
    if (bad !== undefined) throw new UsageError(`unknown allocator ${JSON.stringify(bad)} (expected some of ${known.join(', ')})`);
    if (names?.length === 0) throw new UsageError('--allocator needs at least one name');
    json = values.json;
    if (values.out !== undefined) html = values.out;
  } catch (error) {
    if (error instanceof UsageError) return usageFailure('churn', USAGE, error.message);
    throw error;
  }

  let harness: string;
  try {
    harness = churnProgramPath();
  } catch (error) {
    if (error instanceof PreloadLibraryNotFoundError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    throw error;
  }
  // glibc first: the reference of every ratio
  const wanted = (n: string): boolean => !names || names.includes(n);
  const targets: ChurnTarget[] = [];
  const notes: string[] = [];
  if (wanted('glibc')) targets.push({ name: 'glibc', kind: 'system', library: null });
  for (const name of allocatorNames.filter(wanted)) {
    try {
      targets.push({ name, kind: 'heaplab', library: preloadLibraryPath(name) });
    } catch (error) {
      if (!(error instanceof PreloadLibraryNotFoundError)) throw error;
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
  }
  for (const name of peerNames.filter(wanted)) {
    const found = findPeerLibrary(name);
    if ('path' in found) targets.push({ name, kind: 'peer', library: found.path });
    else notes.push(`peer ${name}: skipped, ${found.reason}`);
  }
  for (const l of libraries) targets.push({ name: l.name, kind: 'peer', library: l.path }); // asked for by name: always
  if (!targets.length) {
    process.stderr.write(`heaplab churn: nothing to run\n${notes.join('\n')}\n`);
    return 1;
  }

  const progress = new Progress('churn', targets.length * config.rounds);
  const report = runChurn(harness, targets, config, (what) => progress.tick(what));
  progress.end();

  const c = config;
  const out: string[] = [];
  out.push(
    `heaplab churn — ${c.live.toLocaleString('en-US')} live blocks of ${formatBytes(c.min)}–${formatBytes(c.max)} (log-uniform), ` +
      `${c.pairs.toLocaleString('en-US')} random replacements, ${c.threads} thread${c.threads > 1 ? 's' : ''}${c.fill ? ', every byte written' : ''}; ` +
      `${c.rounds} round${c.rounds > 1 ? 's' : ''}, interleaved`,
  );
  out.push(`harness: ${harness} (${report.date})`);
  for (const t of targets) if (t.library) out.push(`${t.name}: ${t.library}`);
  out.push(...notes, '');
  out.push(churnTable(report.rows, c.threads > 1), '');
  out.push(
    'Medians over the rounds. ×glibc: the median of each round\'s ratio to glibc\'s run in that round (throughput: higher is better;',
    'latency: lower). Latencies: every malloc of the second pass, in ns (k = µs). peak RSS, after free: the harness\'s resident',
    'set at its peak and once it has freed every block, MiB. faults/kpair: minor page faults per 1000 pairs (first touches).',
  );
  for (const r of report.rows) if (!r.ok) out.push(`${r.name} failed: ${r.reason}`);
  out.push('', `report: ${writeChurnReport(report, ['heaplab', 'churn', ...argv].join(' '), html)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  if (json) writeFileSync(json, JSON.stringify({ ...report, notes }, null, 1));
  return report.rows.every((r) => r.ok) ? 0 : 1;
}

/** The mean of a log-uniform size in [min, max]. */
function meanSize(min: number, max: number): number {
  return max === min ? min : (max - min) / Math.log(max / min);
}

const ns = (v: number | undefined): string => formatNs(v ?? Number.NaN);
const fixed = (v: number | undefined, digits: number, suffix = ''): string => (v === undefined ? '-' : `${v.toFixed(digits)}${suffix}`);

function churnTable(rows: readonly ChurnRow[], throughputOnly: boolean): string {
  const header = throughputOnly
    ? ['allocator', 'M pairs/s', '×glibc', 'runs (M pairs/s)']
    : ['allocator', 'M pairs/s', '×glibc', 'p50', 'p99.9', '×glibc', 'p99.99', 'max', 'peak RSS', 'after free', 'faults/kpair'];
  return table(
    header,
    rows.map((r) => {
      const m = r.median;
      if (!r.ok || !m) return [`${r.name} (failed)`, ...header.slice(1).map(() => '-')];
      const head = [r.name, m.mpairs.toFixed(2), fixed(r.vsGlibc?.mpairs, 2, '×')];
      if (throughputOnly) return [...head, r.runs.map((x) => x.mpairs.toFixed(2)).join(' ')];
      return [...head, ns(m.p50), ns(m.p999), fixed(r.vsGlibc?.p999, 2, '×'), ns(m.p9999), ns(m.maxNs), fixed(m.peakRssMb, 1), fixed(m.afterRssMb, 2), fixed(m.faultsPerKpair, 2)];
    }),
  );
}
