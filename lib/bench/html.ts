/**
 * The benchmark's HTML report: one self-contained file (inline CSS and SVG, no
 * scripts, no external assets) with, per workload, the ratio table, throughput
 * bars and the latency distribution of every allocator; memory overhead over
 * time for the stable workload; the Node-API paths; and how it was measured.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { barChart, bytes, colorOf, esc, lineChart, nsText, num, pageStyle, ratioText, type Bar, type Series } from '../util/charts.js';
import { leaders, runCells, type AllocatorRun, type BenchReport, type CellFormat, type NapiResult, type WorkloadResult } from './report.js';

const label = (r: AllocatorRun): string => (r.engine === 'ts' ? `${r.allocator} (TS)` : r.allocator);
const htmlFormat: CellFormat = { ms: (x) => `${num(x, 1)} ms`, num, ns: nsText, ratio: ratioText, none: '–' };

/** x position of a percentile on the latency chart: -log10(1 - p); the max sits one step past p99.999. */
const pctX = (p: number): number => (p >= 1 ? 5.6 : -Math.log10(1 - p));

function latencyChart(w: WorkloadResult): string {
  const runs = w.runs.filter((r) => r.ok && r.latency);
  if (!runs.length) return '';
  const values = runs.flatMap((r) => r.latency!.spectrum.map(([, v]) => v)).filter((v) => v > 0);
  const lo = Math.max(1, Math.min(...values));
  const hi = Math.max(...values);
  const yMin = 10 ** Math.floor(Math.log10(lo));
  const yMax = 10 ** Math.ceil(Math.log10(hi));
  const yTicks: Array<[number, string]> = [];
  for (let v = yMin; v <= yMax; v *= 10) yTicks.push([v, nsText(v)]);
  const xTicks: Array<[number, string]> = [
    [pctX(0.5), 'p50'],
    [pctX(0.9), 'p90'],
    [pctX(0.99), 'p99'],
    [pctX(0.999), 'p99.9'],
    [pctX(0.9999), 'p99.99'],
    [pctX(0.99999), 'p99.999'],
    [pctX(1), 'max'],
  ];
  const series: Series[] = runs.map((r) => ({ label: label(r), color: colorOf(r.allocator), points: r.latency!.spectrum.map(([p, v]) => [pctX(p), Math.max(v, yMin)]) }));
  return lineChart(`${w.name}: latency per operation by percentile (log scale)`, series, { min: pctX(0.5), max: pctX(1), ticks: xTicks, title: 'percentile of operations' }, { min: yMin, max: yMax, log: true, ticks: yTicks, title: 'latency' });
}

function throughputChart(w: WorkloadResult): string {
  const bars: Bar[] = w.runs.map((r) => ({
    label: label(r),
    value: r.ok ? r.nsPerOp : NaN,
    color: colorOf(r.allocator),
    faded: r.engine === 'ts',
    ...(r.ok ? { text: `${num(r.nsPerOp)} ns · ${ratioText(r.ratio.time)} glibc's time` } : {}),
  }));
  return barChart(`${w.name}: time per operation (ns, lower is better)`, bars, 'ns/op', 660);
}

function memoryChart(w: WorkloadResult): string {
  const bars: Bar[] = w.runs.map((r) => ({
    label: label(r),
    value: r.ok ? r.overhead : NaN,
    color: colorOf(r.allocator),
    faded: r.engine === 'ts',
    ...(r.ok ? { text: `${num(r.overhead, 3)} (${ratioText(r.ratio.memory)} glibc)` } : {}),
  }));
  return barChart(`${w.name}: memory overhead, peak mapped ÷ peak live (lower is better)`, bars, '', 660);
}

function timelineChart(w: WorkloadResult): string {
  const runs = w.runs.filter((r) => r.ok && r.timeline && r.timeline.length);
  if (!runs.length) return '';
  const ys = runs.flatMap((r) => r.timeline!.map(([, v]) => v));
  const yMax = Math.min(6, Math.max(1.5, Math.ceil(Math.max(...ys) * 2) / 2));
  const yTicks: Array<[number, string]> = [];
  for (let v = 0; v <= yMax + 1e-9; v += yMax > 3 ? 1 : 0.5) yTicks.push([v, v.toFixed(1)]);
  const xTicks: Array<[number, string]> = [0, 0.25, 0.5, 0.75, 1].map((v) => [v, `${Math.round(v * 100)}%`]);
  const series: Series[] = runs.map((r) => ({ label: label(r), color: colorOf(r.allocator), points: r.timeline! }));
  return lineChart(`${w.name}: memory overhead over the run (mapped ÷ live; 1.0 = no overhead; clipped at ${yMax})`, series, { min: 0, max: 1, ticks: xTicks, title: 'progress through the trace' }, { min: 0, max: yMax, ticks: yTicks, title: 'mapped ÷ live' });
}

function table(w: WorkloadResult): string {
  const scal = w.threads > 1;
  const head = ['allocator', 'time', 'time ×glibc', 'p50', 'p99.9', 'p99.9 ×glibc', 'page calls ≥ p99.9', 'p99.99', 'max', 'mapped ÷ live', 'memory ×glibc', 'RSS ÷ live', ...(scal ? ['2 threads ÷ 1 (throughput; 2 is perfect)'] : [])];
  const rows = w.runs.map((r) => {
    if (!r.ok) return `<tr class="fail"><td>${esc(label(r))}</td><td colspan="${head.length - 1}">failed: ${esc(r.error ?? '')}</td></tr>`;
    const cells = runCells(r, w.threads, htmlFormat);
    const swatch = `<span class="sw" style="background:${colorOf(r.allocator)}${r.engine === 'ts' ? ';opacity:.45' : ''}"></span>`;
    const note = r.portVsC !== undefined ? ` <small>(${ratioText(r.portVsC)} its C)</small>` : '';
    return `<tr class="${r.family}${r.engine === 'ts' ? ' ts' : ''}"><td>${swatch}${esc(label(r))}${note}</td>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  });
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function napiSection(napi: NapiResult[]): string {
  if (!napi.length) return '';
  const sizes = [...new Set(napi.map((n) => n.size))];
  const charts = sizes
    .map((size) => {
      const bars: Bar[] = napi
        .filter((n) => n.size === size)
        .map((n) => ({ label: n.path, value: n.nsPerPair, color: colorOf(n.path), text: `${num(n.nsPerPair, 0)} ns · ${ratioText(n.ratio)}` }));
      return barChart(`${bytes(size)}: ns per alloc + free (lower is better)`, bars, 'ns', 520);
    })
    .join('');
  return `<section><h2>Node-API paths</h2><p>Allocating and freeing from JS (both bytes touched, medians of 3 interleaved rounds): <code>KIND</code> is the safe path, <code>createHeap(kind)</code> (a detachable native <code>Buffer</code> per block); <code>KIND unsafe</code> the fast one, <code>createUnsafeHeap(kind)</code> (views over one region, not detached on free); <code>KIND ts</code> the TypeScript port behind <code>createHeap(kind, { engine: 'ts' })</code>; beside <code>Buffer.allocUnsafe(size)</code> (freed by the garbage collector, whose time is included as it runs) and <code>external Buffer (floor)</code>, an external <code>Buffer</code> over static bytes made and detached with no allocator or bookkeeping behind it: Node's own part of the safe path, which no allocator can go below. Ratios are to <code>Buffer.allocUnsafe</code>.</p><div class="row">${charts}</div></section>`;
}

function overview(report: BenchReport): string {
  // time ÷ glibc's time and memory ÷ glibc's, per C allocator and workload: lower is better, as everywhere in the report
  const names = report.allocators;
  const lead = new Map(leaders(report).map((l) => [l.workload, l]));
  const rows = report.workloads
    .map((w) => {
      const cells = names.map((a) => {
        const r = w.runs.find((x) => x.allocator === a && x.engine === 'native');
        if (!r || !r.ok) return '<td>–</td>';
        const t = r.ratio.time;
        const shade = Number.isFinite(t) ? Math.max(-1, Math.min(1, -Math.log2(t) / 2)) : 0;
        const bg = shade >= 0 ? `rgba(44,160,44,${(shade * 0.5).toFixed(2)})` : `rgba(214,39,40,${(-shade * 0.5).toFixed(2)})`;
        const memory = Number.isFinite(r.ratio.memory) ? `<br><small>mem ${ratioText(r.ratio.memory)}</small>` : '';
        return `<td style="background:${bg}">${ratioText(t)}${memory}</td>`;
      });
      const l = lead.get(w.name);
      const who = l ? `<b>${esc(l.leader)}</b> <small>(${esc(l.metric)}${l.heaplab ? `; heaplab: ${esc(l.heaplab.allocator)}` : ''})</small>` : '–';
      return `<tr><th><a href="#w-${esc(w.name)}">${esc(w.name)}</a></th>${cells.join('')}<td>${who}</td></tr>`;
    })
    .join('');
  return `<table class="overview"><thead><tr><th>workload</th>${names.map((n) => `<th><span class="sw" style="background:${colorOf(n)}"></span>${esc(n)}</th>`).join('')}<th>leader</th></tr></thead><tbody>${rows}</tbody></table>
<p class="note">Lower is better everywhere in this report. Each cell: its time ÷ glibc's time (below 1 is faster: green; above, red) and, below, its memory overhead ÷ glibc's (below 1 is leaner). Leader: the best of every allocator on the figure the workload is about (time; memory overhead for space and stable; p99.99 latency for realtime), with heaplab's best design beside it.</p>`;
}

export function renderHtml(report: BenchReport): string {
  const skipped = report.peers.filter((p) => !p.ok && p.package && p.reason !== 'not selected'); // known peers a package installs, not left out by --allocator
  const peerNote = report.peers
    .map((p) => (p.ok ? `<li><b>${esc(p.name)}</b>: loaded from <code>${esc(p.path ?? '')}</code></li>` : `<li><b>${esc(p.name)}</b>: skipped — ${esc(p.reason ?? '')}</li>`))
    .join('');
  const recNote = report.recordings
    .map((r) => (r.ok ? `<li><b>${esc(r.name)}</b>: recorded (${(r.recordedOps ?? 0).toLocaleString('en-US')} operations)</li>` : `<li><b>${esc(r.name)}</b>: not recorded — ${esc(r.reason ?? '')}</li>`))
    .join('');
  const mem = Object.entries(report.memorySources)
    .map(([a, s]) => `<li><b>${esc(a)}</b>: ${esc(s)}</li>`)
    .join('');
  const sections = report.workloads
    .map((w) => {
      const charts = [throughputChart(w), w.goal === 'space' || w.goal === 'stable' ? memoryChart(w) : '', latencyChart(w), w.goal === 'stable' ? timelineChart(w) : ''].filter(Boolean);
      const map = (report.maps ?? []).find((m) => m.workload === w.name);
      const mapHtml = map ? `<h3>Heap map</h3>${map.html}` : '';
      return `<section id="w-${esc(w.name)}"><h2>${esc(w.name)} <small>${esc(w.goal === 'recorded' ? 'recorded program' : `goal: ${w.goal}`)}</small></h2>
<p>${esc(w.description)}. ${w.ops.toLocaleString('en-US')} operations${w.threads > 1 ? ` on ${w.threads} threads` : ''}; peak live ${bytes(w.peakLive)}.</p>
${table(w)}<div class="row">${charts.join('')}</div>${mapHtml}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heaplab bench ${esc(report.date.slice(0, 10))}</title><style>${pageStyle}</style></head>
<body>
<h1>heaplab bench</h1>
<p>${esc(report.date)} · ${report.quick ? 'quick run' : 'full run'} (scale ${report.scale}) · ${esc(report.machine.cpu)}, ${report.machine.cores} cores, ${bytes(report.machine.memory)} · Linux ${esc(report.machine.kernel)} · Node ${esc(report.machine.node)} · ${(report.durationMs / 1000).toFixed(0)} s</p>
${skipped.length ? `<p class="note"><b>Peers skipped:</b> ${skipped.map((p) => esc(p.name)).join(', ')} (install with <code>npm run bench:peers</code>, or <code>apt-get install ${skipped.map((p) => esc(p.package)).join(' ')}</code>).</p>` : ''}
<h2>Overview</h2>
${overview(report)}
${sections}
${napiSection(report.napi)}
<section><h2>How this was measured</h2>
<ul>
<li>Every run replays a trace inside the addon in C (native/bench/bench.c): one call per run, no crossing into JavaScript per operation, each new block's first and last byte written. Each (allocator, workload) runs in a fresh child process, so no run inherits another's cached memory.</li>
<li>Total time: the best of ${report.quick ? 'one pass' : 'several passes'} without per-operation timing; memory sampling is excluded. Latency: a separate pass timing every operation with ${esc(report.clock.name)}; one reading costs ${num(report.clock.overheadNs, 1)} ns (median; ${num(report.clock.minOverheadNs, 1)} ns at best), which is subtracted from each latency. Percentiles come from a log-linear histogram (buckets about 1.6% wide, exact below 128 ns); the max is exact.</li>
<li>On this shared virtual machine a maximum above a few tens of microseconds is usually the machine (a preempted vCPU, a page fault served slowly), not the allocator: read p99.99 beside the max.</li>
<li>Memory overhead: peak bytes held from the system ÷ peak bytes requested by live blocks. Sources:<ul>${mem}</ul>For several threads, peak live is the largest sum the sampler saw. glibc's figure also counts what Node itself freed into glibc's arenas before the run, so below 2 MiB live it is shown as unknown (–), and so are the memory ratios of that workload; the other allocators' figures are exact at any size (nothing else in the run's process uses them). <b>RSS ÷ live</b> beside it is the growth of the run's (fresh) process resident set at peak, the same for every allocator but blind to pages never touched (only each block's first and last byte are written), so it reads low for large blocks; it shows what mapped-but-untouched memory (mimalloc commits whole segments eagerly) really costs.</li>
<li>The TypeScript ports (${report.ports.length ? esc(report.ports.join(', ')) : 'none available'}) replay the same traces over their arena page source, each in a node of its own, timed once its best time settles; they have no per-operation latency. A C run and its port run minutes apart: for the port against its C side by side, see <code>heaplab compare</code>. The scalable workload is not run on them (they are single-threaded).</li>
<li>Peers are loaded with <code>dlopen(RTLD_LOCAL | RTLD_NOW)</code> and called only through their own entry points (they never replace the process's malloc):<ul>${peerNote}</ul></li>
<li>Recorded programs (run on heaplab's tlsf preload library with <code>HEAPLAB_TRACE</code>; gcc's largest trace, cc1, is used):<ul>${recNote || '<li>none</li>'}</ul></li>
</ul></section>
</body></html>
`;
}

/** Writes the HTML report; returns its absolute path. */
export function writeReport(report: BenchReport, path: string): string {
  const abs = resolve(path);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileSync(abs, renderHtml(report));
  return abs;
}
