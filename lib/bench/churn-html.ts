/**
 * `heaplab churn`'s page: one self-contained file (inline CSS and SVG, no
 * scripts) with the table, bars of the ratios to glibc and of the memory left
 * after freeing everything, every round's throughput, and how it was measured.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import { barChart, bytes, colorOf, esc, nsText, num, pageStyle, ratioText, type Bar } from '../util/charts.js';
import type { ChurnReport, ChurnRow } from './churn.js';

const ns = (x: number | undefined): string => nsText(x ?? Number.NaN);
const ratio = (x: number | undefined): string => ratioText(x ?? Number.NaN);
const fixed = (x: number | undefined, d: number): string => (x === undefined ? '–' : x.toFixed(d));

function bars(rows: readonly ChurnRow[], value: (r: ChurnRow) => number | undefined): Bar[] {
  return rows.map((r) => ({ label: r.name, value: (r.ok ? value(r) : undefined) ?? Number.NaN, color: colorOf(r.name) }));
}

export function renderChurnHtml(report: ChurnReport, command: string): string {
  const c = report.config;
  const threaded = c.threads > 1;
  const rows = report.rows;
  const head = threaded
    ? ['allocator', 'M pairs/s', '× glibc']
    : ['allocator', 'M pairs/s', '× glibc', 'p50', 'p99.9', '× glibc', 'p99.99', 'max', 'peak RSS (MiB)', 'after free (MiB)', 'faults / 1000 pairs'];
  const body = rows
    .map((r) => {
      const m = r.median;
      if (!r.ok || !m) return `<tr class="fail"><td>${esc(r.name)}</td><td colspan="${head.length - 1}">failed: ${esc(r.reason ?? '')}</td></tr>`;
      const cells = [fixed(m.mpairs, 2), ratio(r.vsGlibc?.mpairs)];
      if (!threaded) cells.push(ns(m.p50), ns(m.p999), ratio(r.vsGlibc?.p999), ns(m.p9999), ns(m.maxNs), fixed(m.peakRssMb, 1), fixed(m.afterRssMb, 2), fixed(m.faultsPerKpair, 2));
      return `<tr><td><span class="sw" style="background:${colorOf(r.name)}"></span>${esc(r.name)}</td>${cells.map((x) => `<td>${esc(x)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const charts = [
    barChart('throughput ÷ glibc (higher is better)', bars(rows, (r) => r.vsGlibc?.mpairs), '×'),
    threaded ? '' : barChart('malloc p99.9 ÷ glibc (lower is better)', bars(rows, (r) => r.vsGlibc?.p999), '×'),
    threaded ? '' : barChart('resident after freeing every block (lower is better)', bars(rows, (r) => r.median?.afterRssMb), 'MiB'),
  ].filter(Boolean);
  const rounds = Math.max(0, ...rows.map((r) => r.runs.length));
  const perRound = rows
    .map((r) => `<tr><td>${esc(r.name)}</td>${Array.from({ length: rounds }, (_, k) => `<td>${r.runs[k] ? num(r.runs[k]!.mpairs) : '–'}</td>`).join('')}</tr>`)
    .join('\n');
  const libraries = rows.map((r) => `<li><b>${esc(r.name)}</b>: ${r.library ? `<code>${esc(r.library)}</code>` : 'nothing preloaded (glibc\'s malloc)'}</li>`).join('');
  const cpu = cpus();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heaplab churn ${esc(report.date.slice(0, 10))}</title><style>${pageStyle}</style></head>
<body>
<h1>heaplab churn</h1>
<p>${esc(report.date)} · ${esc(cpu[0]?.model ?? 'unknown CPU')}, ${cpu.length} cores, ${bytes(totalmem())} · <code>${esc(command)}</code></p>
<p>${c.live.toLocaleString('en-US')} live blocks of ${bytes(c.min)}–${bytes(c.max)} (log-uniform), ${c.pairs.toLocaleString('en-US')} random replacements per pass, ${c.threads} thread${threaded ? 's' : ''}${c.fill ? ', every byte of each block written' : ''}; ${c.rounds} round${c.rounds > 1 ? 's' : ''}, interleaved. Each figure is the median over the rounds.</p>
<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${body}
</tbody></table>
<div class="row">${charts.join('')}</div>
<h2>Every round <small>M pairs/s: how much one run moves on this machine</small></h2>
<table><thead><tr><th>allocator</th>${Array.from({ length: rounds }, (_, k) => `<th>round ${k + 1}</th>`).join('')}</tr></thead><tbody>
${perRound}
</tbody></table>
<section><h2>How this was measured</h2>
<ul>
<li>The harness (<code>${esc(report.harness)}</code>, from native/bench/churn.c) is a process of its own per run, with the allocator's library in <code>LD_PRELOAD</code>: it meets the allocator as any program does. It allocates the live blocks, then makes the replacements twice: a pass timed as a whole (throughput), and a pass timing every malloc between two fenced TSC reads (the latencies, net of the reads' own cost).</li>
<li>Every block holds a tag in its first and last 8 bytes (one below 16 bytes), checked before its free: a block that overlaps another, or memory handed out twice, fails the run, and costs that allocator its row.</li>
<li>The harness reports which file its <code>malloc</code> came from; a run whose malloc is not the library's (the dynamic linker only warns when it cannot preload one) fails.</li>
<li>The rounds are interleaved, every allocator once and then again, and a ratio to glibc is the median of each round's ratio to glibc's run in that round: on a shared machine one run's speed moves by a third from one minute to the next, and pairing by round keeps a slower minute out of the ratio.</li>
<li>peak RSS: the harness's resident set at its peak (the latency table included); after free: once it has freed every block. Only each block's tags are written unless <code>--fill</code>, so a large block's untouched pages are not resident.</li>
<li>Libraries:<ul>${libraries}</ul></li>
</ul></section>
</body></html>
`;
}

/** Writes the page; returns its absolute path. */
export function writeChurnReport(report: ChurnReport, command: string, path: string): string {
  const abs = resolve(path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, renderChurnHtml(report, command));
  return abs;
}
