/**
 * SVG charts for heaplab's HTML pages (the bench report, the heap map): inline,
 * self-contained, no scripts. Classes (.ttl .lbl .val .tick .axis .grid .frame)
 * are styled by the page.
 */
export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
export const num = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
/** Nanoseconds with their unit, and a ratio, as the pages print them ('–' for none). */
export const nsText = (x: number): string =>
  !Number.isFinite(x) ? '–' : x < 1000 ? `${Math.round(x)} ns` : x < 1e6 ? `${(x / 1e3).toFixed(1)} µs` : `${(x / 1e6).toFixed(2)} ms`;
export const ratioText = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');
export const bytes = (n: number): string =>
  !Number.isFinite(n) ? '–' : n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : n < 1 << 30 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / (1 << 30)).toFixed(2)} GiB`;

/** Each allocator's colour, the same on every page. */
const palette: Record<string, string> = {
  tlsf: '#1f77b4',
  dlmalloc: '#ff7f0e',
  liballoc: '#2ca02c',
  glibc: '#444444',
  jemalloc: '#d62728',
  mimalloc: '#9467bd',
  tcmalloc: '#8c564b',
  'Buffer.allocUnsafe': '#17becf',
  'external Buffer (floor)': '#bcbd22',
};
/** An allocator's colour; NAME+cache is its design's, lighter. */
export const colorOf = (name: string): string => {
  const base = name.endsWith('+cache') ? palette[name.slice(0, -'+cache'.length)] : undefined;
  if (base) {
    const mix = (i: number): string => Math.round(parseInt(base.slice(i, i + 2), 16) * 0.55 + 255 * 0.45).toString(16).padStart(2, '0');
    return `#${mix(1)}${mix(3)}${mix(5)}`;
  }
  return palette[name] ?? '#7f7f7f';
};

/** The pages' stylesheet (bench report, churn report): the classes the charts above use, tables, notes. */
export const pageStyle = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1360px;color:#222;padding:0 16px}
h1{margin:0 0 4px}h2{margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}h2 small{font-weight:normal;color:#777;font-size:14px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}th,td{padding:3px 6px;font-size:12.5px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}tr.ts td{color:#555;font-style:italic}tr.fail td{color:#b00}
.overview td{text-align:center}.sw{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}
.row{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start}.note{color:#666}
figure{margin:0}figcaption{margin-bottom:4px;max-width:600px}.key{margin-right:16px;white-space:nowrap}.key .sw{width:12px;height:12px;border:1px solid #aaa;vertical-align:-1px}
svg.chart{background:#fff;border:1px solid #e3e3e3;border-radius:4px}svg .ttl{font-weight:600;font-size:13px}svg .lbl{font-size:12px}svg .val{font-size:11px;fill:#333}
svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#333}svg .grid{stroke:#eee}svg .frame{stroke:#bbb}code{background:#f4f4f4;padding:0 3px;border-radius:3px}`;

export interface Bar {
  label: string;
  value: number;
  color: string;
  faded?: boolean;
  text?: string;
}

/** Horizontal bars, one per item, value labels at the end. */
export function barChart(title: string, bars: Bar[], unit: string, width = 560): string {
  const rowH = 22;
  const left = 150;
  const right = 190;
  const top = 28;
  const h = top + bars.length * rowH + 10;
  const max = Math.max(1e-9, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const plot = width - left - right;
  const rows = bars
    .map((b, i) => {
      const y = top + i * rowH;
      const w = Number.isFinite(b.value) ? (b.value / max) * plot : 0;
      return (
        `<text x="${left - 6}" y="${y + 15}" text-anchor="end" class="lbl">${esc(b.label)}</text>` +
        `<rect x="${left}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.color}"${b.faded ? ' fill-opacity="0.45" stroke="' + b.color + '" stroke-dasharray="3 2"' : ''}/>` +
        `<text x="${(left + w + 5).toFixed(1)}" y="${y + 15}" class="val">${esc(b.text ?? (Number.isFinite(b.value) ? `${num(b.value)} ${unit}` : 'failed'))}</text>`
      );
    })
    .join('');
  return `<svg class="chart bars" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 ${width} ${h}" role="img"><title>${esc(title)}</title><text x="4" y="16" class="ttl">${esc(title)}</text>${rows}</svg>`;
}

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
}

export interface Axis {
  min: number;
  max: number;
  log?: boolean;
  ticks: Array<[number, string]>;
  title: string;
}

/** Lines over two axes (either may be log10), legend on the right. */
export function lineChart(title: string, series: Series[], x: Axis, y: Axis, width = 760, height = 340): string {
  const left = 78;
  const right = 150;
  const top = 30;
  const bottom = 44;
  const pw = width - left - right;
  const ph = height - top - bottom;
  const tx = (v: number): number => {
    const a = x.log ? Math.log10(Math.max(v, 1e-12)) : v;
    const lo = x.log ? Math.log10(x.min) : x.min;
    const hi = x.log ? Math.log10(x.max) : x.max;
    return left + ((a - lo) / (hi - lo || 1)) * pw;
  };
  const ty = (v: number): number => {
    const c = Math.min(Math.max(v, y.min), y.max);
    const a = y.log ? Math.log10(Math.max(c, 1e-12)) : c;
    const lo = y.log ? Math.log10(y.min) : y.min;
    const hi = y.log ? Math.log10(y.max) : y.max;
    return top + ph - ((a - lo) / (hi - lo || 1)) * ph;
  };
  const grid = [
    ...y.ticks.map(([v, t]) => `<line x1="${left}" x2="${left + pw}" y1="${ty(v).toFixed(1)}" y2="${ty(v).toFixed(1)}" class="grid"/><text x="${left - 6}" y="${(ty(v) + 4).toFixed(1)}" text-anchor="end" class="tick">${esc(t)}</text>`),
    ...x.ticks.map(([v, t]) => `<line y1="${top}" y2="${top + ph}" x1="${tx(v).toFixed(1)}" x2="${tx(v).toFixed(1)}" class="grid"/><text y="${top + ph + 16}" x="${tx(v).toFixed(1)}" text-anchor="middle" class="tick">${esc(t)}</text>`),
  ].join('');
  const lines = series
    .filter((s) => s.points.length)
    .map((s) => {
      const d = s.points.map(([a, b], i) => `${i ? 'L' : 'M'}${tx(a).toFixed(1)},${ty(b).toFixed(1)}`).join('');
      const dots = s.points.length <= 20 ? s.points.map(([a, b]) => `<circle cx="${tx(a).toFixed(1)}" cy="${ty(b).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join('') : '';
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>${dots}`;
    })
    .join('');
  const legend = series
    .map(
      (s, i) =>
        `<line x1="${left + pw + 14}" x2="${left + pw + 38}" y1="${top + 8 + i * 18}" y2="${top + 8 + i * 18}" stroke="${s.color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${left + pw + 44}" y="${top + 12 + i * 18}" class="lbl">${esc(s.label)}</text>`,
    )
    .join('');
  return (
    `<svg class="chart lines" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"><title>${esc(title)}</title>` +
    `<text x="4" y="16" class="ttl">${esc(title)}</text>${grid}` +
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" class="frame"/>${lines}${legend}` +
    `<text x="${left + pw / 2}" y="${height - 6}" text-anchor="middle" class="axis">${esc(x.title)}</text>` +
    `<text x="12" y="${top + ph / 2}" text-anchor="middle" class="axis" transform="rotate(-90 12 ${top + ph / 2})">${esc(y.title)}</text></svg>`
  );
}

