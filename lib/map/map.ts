/**
 * The heap map: a picture of each design's heap on one trace (`heaplab map`).
 *
 *   - the heap after operation N (default: where live bytes peak) from the C
 *     allocator's own walk (replayNative on the arena page source): the memory it
 *     holds as rows of bytes, each column coloured by what most of its bytes are
 *     (asked for, rounding slack, the design's header, free, the design's own);
 *     every design at the same bytes per row, side by side;
 *   - over the whole trace, from the TypeScript port's walk (the same decisions:
 *     `heaplab compare` checks them), mapped bytes, live bytes and the largest
 *     free block, and fragmentation (1 - largest free ÷ free).
 */
import { allocatorKinds, type AllocatorKind } from '../kinds.js';
import { replayNative, replayPort } from '../replay/replay.js';
import { Op, opNames, truncateTrace, type Trace } from '../trace/trace.js';
import { WalkBuilder, walkFigures, WalkState, type Walk, type WalkFigures } from '../walk.js';
import { bytes, esc, lineChart, num, type Series } from '../util/charts.js';

/** What one column of the picture is: the class most of its bytes belong to. */
export const MapClass = { asked: 0, slack: 1, header: 2, free: 3, meta: 4 } as const;
const classNames = ['asked for', 'rounding slack', 'design header', 'free', "design's own (control, sentinels, footers)"];
const classColors = ['#1f77b4', '#9ecae1', '#ff7f0e', '#ececec', '#555555'];

export interface TimelinePoint {
  op: number;
  mapped: number;
  live: number;
  largestFree: number;
  fragmentation: number;
}

export interface DesignMap {
  kind: AllocatorKind;
  /** The C heap's walk after operation `at`. */
  walk: Walk;
  /** Per piece: the bytes asked for (NaN where it is not a live block). */
  requested: Float64Array;
  figures: WalkFigures;
  timeline: TimelinePoint[];
}

export interface HeapMap {
  trace: string;
  ops: number;
  /** The heap is shown after this operation (0-based). */
  at: number;
  atOp: string;
  pageSize: number;
  designs: DesignMap[];
}

/** Live bytes after each operation of a trace, and the index where they peak. */
function liveCurve(trace: Trace): { peakAt: number; liveAt: (i: number) => number } {
  const size = new Float64Array(trace.maxId + 1);
  const after = new Float64Array(trace.op.length);
  let live = 0;
  let peak = -1;
  let peakAt = 0;
  for (let i = 0; i < trace.op.length; i++) {
    const id = trace.id[i]!;
    if (trace.op[i] === Op.free) {
      live -= size[id]!;
      size[id] = 0;
    } else {
      live += trace.size[i]! - size[id]!;
      size[id] = trace.size[i]!;
    }
    after[i] = live;
    if (live > peak) {
      peak = live;
      peakAt = i;
    }
  }
  return { peakAt, liveAt: (i) => after[i] ?? 0 };
}

/** Builds the map of `trace` for each design (the C snapshot at `at`, the port's timeline). */
export function buildHeapMap(trace: Trace, kinds: readonly AllocatorKind[] = allocatorKinds, options: { at?: number; samples?: number } = {}): HeapMap {
  const n = trace.op.length;
  const curve = liveCurve(trace);
  const at = Math.min(n - 1, Math.max(0, options.at ?? curve.peakAt));
  const prefix = truncateTrace(trace, at + 1);
  const every = Math.max(1, Math.floor(n / (options.samples ?? 300)));
  const pageSize = 4096;
  const designs = kinds.map((kind): DesignMap => {
    // the C heap after operation `at`, and which of its blocks hold what was asked
    const c = replayNative(kind, prefix, { walk: true, offsets: true });
    const asked = new Map<number, number>();
    const offsetOf = new Float64Array(prefix.maxId + 1).fill(-1);
    for (let i = 0; i < prefix.op.length; i++) {
      const id = prefix.id[i]!;
      if (prefix.op[i] === Op.free) {
        asked.delete(offsetOf[id]!);
        offsetOf[id] = -1;
      } else if (c.offsets![i]! > 0) {
        if (offsetOf[id]! >= 0) asked.delete(offsetOf[id]!);
        offsetOf[id] = c.offsets![i]!;
        asked.set(c.offsets![i]!, prefix.size[i]!);
      }
    }
    const walk = c.walk!;
    const requested = new Float64Array(walk.start.length).fill(Number.NaN);
    for (let i = 0; i < walk.start.length; i++) {
      const r = walk.state[i] === WalkState.used ? asked.get(walk.payload[i]!) : undefined;
      if (r !== undefined) requested[i] = r;
    }
    // the whole run, walked in the port every `every` operations
    const timeline: TimelinePoint[] = [];
    replayPort(kind, trace, {
      offsets: false,
      sample: {
        every,
        fn: (op, heap, pages) => {
          const b = new WalkBuilder();
          heap.walk(b);
          const f = walkFigures(b.build(), pages.pageSize);
          timeline.push({ op, mapped: pages.bytesMapped, live: curve.liveAt(op), largestFree: f.largestFree, fragmentation: f.fragmentation });
        },
      },
    });
    return { kind, walk, requested, figures: walkFigures(walk, pageSize, requested), timeline };
  });
  const name = opNames[trace.op[at]!] ?? 'op';
  return { trace: trace.name, ops: n, at, atOp: `${name}(${trace.op[at] === Op.free ? `#${trace.id[at]}` : trace.size[at]})`, pageSize, designs };
}

/* ---- the picture -------------------------------------------------------------------- */

/** A power of two: a row of bytesPerRow (a power of two, at least a page) splits into whole-byte columns. */
const COLUMNS = 512;
const ROW_PX = 4;
const MAX_ROWS = 200;

/** The smallest power-of-two bytes per row (at least a page) at which every design fits MAX_ROWS rows. */
export function commonScale(walks: Walk[], pageSize: number): number {
  const held = Math.max(1, ...walks.map((w) => w.size.reduce((x, y) => x + y, 0)));
  let bytesPerRow = pageSize;
  while (Math.ceil(held / bytesPerRow) > MAX_ROWS) bytesPerRow *= 2;
  return bytesPerRow;
}

/**
 * One design's panel: the pieces of its walk one after another (the gaps between
 * its page runs are other memory, left out), in rows of `bytesPerRow`; each
 * column takes the colour of its dominant class; a dark tick marks where a new
 * pool, segment or major begins.
 */
function panel(d: DesignMap, bytesPerRow: number): string {
  const colBytes = bytesPerRow / COLUMNS;
  const w = d.walk;
  const total = w.size.reduce((x, y) => x + y, 0);
  const nrows = Math.max(1, Math.ceil(total / bytesPerRow));
  const cells = Array.from({ length: 5 }, () => new Float64Array(nrows * COLUMNS)); // bytes per class per cell
  const add = (from: number, len: number, cls: number): void => {
    let at = from;
    const to = from + len;
    while (at < to) {
      const cell = Math.floor(at / colBytes);
      const end = Math.min(to, (cell + 1) * colBytes); // > at: colBytes is a whole number of bytes
      cells[cls]![cell] = cells[cls]![cell]! + (end - at);
      at = end;
    }
  };
  const ticks: number[] = [];
  let offset = 0;
  for (let i = 0; i < w.start.length; i++) {
    const size = w.size[i]!;
    const newRun = i > 0 && (w.region[i] !== w.region[i - 1] || w.start[i] !== w.start[i - 1]! + w.size[i - 1]!);
    if (newRun) ticks.push(offset);
    if (w.state[i] === WalkState.meta) add(offset, size, MapClass.meta);
    else if (w.state[i] === WalkState.free) add(offset, size, MapClass.free);
    else {
      const usable = Math.min(w.usable[i]!, size);
      const req = Number.isNaN(d.requested[i]!) ? usable : Math.min(d.requested[i]!, usable);
      add(offset, size - usable, MapClass.header);
      add(offset + size - usable, req, MapClass.asked);
      add(offset + size - usable + req, usable - req, MapClass.slack);
    }
    offset += size;
  }
  const rects: string[] = [];
  for (let y = 0; y < nrows; y++) {
    let runStart = 0;
    let runCls = -1;
    const flush = (end: number): void => {
      if (runCls >= 0) rects.push(`<rect x="${runStart}" y="${y * ROW_PX}" width="${end - runStart}" height="${ROW_PX - 0.5}" fill="${classColors[runCls]}"/>`);
    };
    for (let c = 0; c < COLUMNS; c++) {
      const cell = y * COLUMNS + c;
      let best = -1;
      let most = 0;
      for (let k = 0; k < 5; k++) {
        if (cells[k]![cell]! > most) {
          most = cells[k]![cell]!;
          best = k;
        }
      }
      if (best !== runCls) {
        flush(c);
        runStart = c;
        runCls = best;
      }
    }
    flush(COLUMNS);
  }
  const marks = ticks
    .map((t) => {
      const x = (t % bytesPerRow) / colBytes;
      const y = Math.floor(t / bytesPerRow) * ROW_PX;
      return `<rect x="${x.toFixed(1)}" y="${y - 1}" width="1.5" height="${ROW_PX + 1}" fill="#000"/>`;
    })
    .join('');
  const height = nrows * ROW_PX;
  const f = d.figures;
  const regions = d.kind === 'tlsf' ? 'pools' : d.kind === 'dlmalloc' ? 'segments and direct chunks' : 'majors';
  const title = `${d.kind}: ${bytes(f.heldBytes)} held, ${bytes(f.requestedBytes ?? 0)} asked for`;
  return `<figure class="panel"><figcaption><b>${esc(title)}</b> <small>(${ticks.length + 1} runs of pages: ${regions})</small><br><small>header ${bytes(f.headerBytes)} · slack ${bytes(f.slackBytes ?? 0)} · free ${bytes(f.freeBytes)} in ${f.freeBlocks.toLocaleString('en-US')} blocks (largest ${bytes(f.largestFree)}; fragmentation ${num(f.fragmentation)}) · the design's own ${bytes(f.metaBytes)} · ${f.freePages.toLocaleString('en-US')} whole pages free</small></figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="${COLUMNS}" height="${height}" viewBox="0 0 ${COLUMNS} ${height}" role="img"><title>${esc(title)}</title><rect width="${COLUMNS}" height="${height}" fill="#fff" stroke="#ccc"/>${rects.join('')}${marks}</svg></figure>`;
}

function timelineChart(m: HeapMap, d: DesignMap, yMax: number): string {
  const x = (p: TimelinePoint): number => p.op + 1;
  const series: Series[] = [
    { label: 'mapped', color: '#555555', points: d.timeline.map((p) => [x(p), p.mapped]) },
    { label: 'live (asked for)', color: '#1f77b4', points: d.timeline.map((p) => [x(p), p.live]) },
    { label: 'largest free block', color: '#ff7f0e', dashed: true, points: d.timeline.map((p) => [x(p), p.largestFree]) },
  ];
  const yTicks: Array<[number, string]> = [0, 0.25, 0.5, 0.75, 1].map((f) => [f * yMax, bytes(Math.round(f * yMax))]);
  const xTicks: Array<[number, string]> = [0, 0.25, 0.5, 0.75, 1].map((f) => [Math.round(f * m.ops), Math.round(f * m.ops).toLocaleString('en-US')]);
  return lineChart(`${d.kind}: bytes over the trace`, series, { min: 0, max: m.ops, ticks: xTicks, title: 'operations' }, { min: 0, max: yMax, ticks: yTicks, title: 'bytes' }, 560, 260);
}

function fragmentationChart(m: HeapMap): string {
  const colors: Record<string, string> = { tlsf: '#1f77b4', dlmalloc: '#ff7f0e', liballoc: '#2ca02c' };
  const series: Series[] = m.designs.map((d) => ({ label: d.kind, color: colors[d.kind] ?? '#777', points: d.timeline.map((p) => [p.op + 1, p.fragmentation]) }));
  const yTicks: Array<[number, string]> = [0, 0.25, 0.5, 0.75, 1].map((v) => [v, v.toFixed(2)]);
  const xTicks: Array<[number, string]> = [0, 0.25, 0.5, 0.75, 1].map((f) => [Math.round(f * m.ops), Math.round(f * m.ops).toLocaleString('en-US')]);
  return lineChart('fragmentation over the trace (1 − largest free block ÷ free bytes; 0 = one free block)', series, { min: 0, max: m.ops, ticks: xTicks, title: 'operations' }, { min: 0, max: 1, ticks: yTicks, title: 'fragmentation' }, 760, 280);
}

/** The map's body (legend, panels, timelines), for a page of its own or the bench report (which styles .key .sw). */
export function renderHeapMapSection(m: HeapMap): string {
  const bytesPerRow = commonScale(m.designs.map((d) => d.walk), m.pageSize);
  const yMax = Math.max(1, ...m.designs.flatMap((d) => d.timeline.map((p) => p.mapped)));
  const legend = classNames
    .map((name, i) => `<span class="key"><span class="sw" style="background:${classColors[i]}"></span>${esc(name)}</span>`)
    .join('');
  const ranked = [...m.designs].sort((a, b) => b.figures.fragmentation - a.figures.fragmentation);
  return `<p>${m.ops.toLocaleString('en-US')} operations. The heaps after operation ${(m.at + 1).toLocaleString('en-US')} (${esc(m.atOp)}), as each C allocator's own walker sees them on the arena page source: one row is ${bytes(bytesPerRow)}, the same for every design; each of its ${COLUMNS} columns (${bytes(bytesPerRow / COLUMNS)}) takes the colour of what most of its bytes are. A design's runs of pages (pools, segments, majors) follow each other; a black tick marks where the next begins. Most fragmented here: <b>${esc(ranked[0]?.kind ?? '–')}</b> (${num(ranked[0]?.figures.fragmentation ?? NaN)}).</p>
<p>${legend}</p>
<div class="row">${m.designs.map((d) => panel(d, bytesPerRow)).join('')}</div>
<p class="note">Over the whole trace, walked every ${Math.max(1, Math.floor(m.ops / Math.max(1, m.designs[0]?.timeline.length ?? 1))).toLocaleString('en-US')} operations or so in each design's TypeScript port, which makes the C heap's decisions (<code>heaplab compare</code> checks it): bytes mapped from the page source, bytes live (asked for and not freed), and the largest free block, on one scale for all designs.</p>
<div class="row">${m.designs.map((d) => timelineChart(m, d, yMax)).join('')}</div>
<div class="row">${fragmentationChart(m)}</div>`;
}

/** The map as one self-contained HTML page. */
export function renderHeapMap(m: HeapMap): string {
  const css = `body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1900px;color:#222;padding:0 16px}
h1{margin:0 0 4px}.row{display:flex;flex-wrap:wrap;gap:16px 28px;align-items:flex-start}figure{margin:0}figcaption{margin-bottom:4px;max-width:600px}
.key{margin-right:16px;white-space:nowrap}.sw{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px;border:1px solid #aaa}
.note{color:#666;max-width:1200px}svg.chart{background:#fff;border:1px solid #e3e3e3;border-radius:4px}svg .ttl{font-weight:600;font-size:13px}
svg .lbl{font-size:12px}svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#333}svg .grid{stroke:#eee}svg .frame{stroke:#bbb}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heaplab map: ${esc(m.trace)}</title><style>${css}</style></head>
<body>
<h1>heaplab map: ${esc(m.trace)}</h1>
${renderHeapMapSection(m)}
</body></html>
`;
}
