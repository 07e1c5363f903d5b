/**
 * Self-contained SVG line plots of training curves (loss / accuracy vs. update), no dependencies.
 *
 * Axis extents are the data range widened to "nice" tick steps (1, 2 or 5 × 10^k, about 5 ticks);
 * they are also written as `data-x-min`, `data-x-max`, `data-y-min`, `data-y-max` attributes on the
 * root `<svg>` so tools and tests can read them back. One `<path class="series">` per series;
 * non-finite points break a line into separate segments.
 */

/** One curve. */
export interface PlotSeries {
  /** Legend text. */
  name: string;
  /** `[x, y]` points, drawn in the given order. */
  points: [number, number][];
}

/** Plot options. */
export interface PlotOptions {
  /** Title above the plot. */
  title: string;
  /** X axis label. */
  xLabel: string;
  /** Y axis label. */
  yLabel: string;
  /** Image width in px (default 720). */
  width?: number;
  /** Image height in px (default 420). */
  height?: number;
}

/** Nice axis: extent and tick positions. */
export interface NiceAxis {
  /** Axis minimum (a multiple of `step`). */
  min: number;
  /** Axis maximum (a multiple of `step`). */
  max: number;
  /** Tick spacing. */
  step: number;
  /** Tick positions from `min` to `max`. */
  ticks: number[];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

function clean(x: number): number {
  return Number(x.toPrecision(12));
}

/**
 * Round a data range outward to a nice tick step (1/2/5 × 10^k) giving about `target` intervals.
 * An empty or degenerate range is widened first (`[0, 1]` for no data, `v ± max(|v|·0.1, 1e-12)`
 * — or `±1` at 0 — for a single value).
 */
export function niceAxis(lo: number, hi: number, target = 5): NiceAxis {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  } else if (lo === hi) {
    const d = lo === 0 ? 1 : Math.max(Math.abs(lo) * 0.1, 1e-12);
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = clean((f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag);
  const min = clean(Math.floor(clean(lo / step)) * step);
  const max = clean(Math.ceil(clean(hi / step)) * step);
  const n = Math.round((max - min) / step);
  const ticks = Array.from({ length: n + 1 }, (_, i) => clean(min + i * step));
  return { min, max, step, ticks };
}

/** Tick label text: plain for moderate magnitudes, exponent form otherwise. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (v !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function f2(x: number): string {
  return String(Math.round(x * 100) / 100);
}

/**
 * Render line curves as a standalone SVG document (axes, ticks, grid, axis labels, title, legend).
 * @returns the SVG text (UTF-8, starts with `<svg`)
 */
export function renderCurvesSvg(series: readonly PlotSeries[], opts: PlotOptions): string {
  const W = opts.width ?? 720;
  const H = opts.height ?? 420;
  const m = { l: 72, r: 150, t: 40, b: 52 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
  }
  const ax = niceAxis(x0, x1);
  const ay = niceAxis(y0, y1);
  const px = (x: number): number => m.l + ((x - ax.min) / (ax.max - ax.min)) * pw;
  const py = (y: number): number => m.t + ph - ((y - ay.min) / (ay.max - ay.min)) * ph;
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      `font-family="sans-serif" font-size="12" data-x-min="${ax.min}" data-x-max="${ax.max}" ` +
      `data-y-min="${ay.min}" data-y-max="${ay.max}">`,
  );
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="${f2(m.l + pw / 2)}" y="24" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
  // grid + ticks
  o.push('<g class="x-axis">');
  for (const t of ax.ticks) {
    const x = f2(px(t));
    o.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + ph}" stroke="#e5e5e5"/>`);
    o.push(`<line x1="${x}" y1="${m.t + ph}" x2="${x}" y2="${m.t + ph + 5}" stroke="#000"/>`);
    o.push(`<text x="${x}" y="${m.t + ph + 18}" text-anchor="middle">${esc(formatTick(t))}</text>`);
  }
  o.push(`<text x="${f2(m.l + pw / 2)}" y="${H - 10}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  o.push('</g>');
  o.push('<g class="y-axis">');
  for (const t of ay.ticks) {
    const y = f2(py(t));
    o.push(`<line x1="${m.l}" y1="${y}" x2="${m.l + pw}" y2="${y}" stroke="#e5e5e5"/>`);
    o.push(`<line x1="${m.l - 5}" y1="${y}" x2="${m.l}" y2="${y}" stroke="#000"/>`);
    o.push(`<text x="${m.l - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(formatTick(t))}</text>`);
  }
  const cy = f2(m.t + ph / 2);
  o.push(`<text x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">${esc(opts.yLabel)}</text>`);
  o.push('</g>');
  o.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#000"/>`);
  // curves
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        pen = false;
        continue;
      }
      d += `${d ? ' ' : ''}${pen ? 'L' : 'M'}${f2(px(x))} ${f2(py(y))}`;
      pen = true;
    }
    o.push(`<path class="series" data-name="${esc(s.name)}" d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
  });
  // legend
  o.push('<g class="legend">');
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const y = m.t + 10 + i * 18;
    const x = m.l + pw + 12;
    o.push(`<line x1="${x}" y1="${y}" x2="${x + 20}" y2="${y}" stroke="${color}" stroke-width="2"/>`);
    o.push(`<text x="${x + 26}" y="${y}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  o.push('</g>');
  o.push('</svg>');
  return o.join('\n') + '\n';
}
