// Loss curve of a run as a standalone SVG (axes, "nice" ticks, labels, title, legend), and the
// metrics JSONL reader it draws from. Series are drawn as polylines with point markers; NaN/Inf
// points are skipped. Not here: writing metrics during training (the trainer appends the lines).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, IoError } from '../errors.js';
import { writeBytesAtomic } from '../formats/atomic.js';
import { isJsonObject } from '../formats/json-strict.js';

export interface PlotPoint { readonly step: number; readonly value: number }
export interface PlotSeries { readonly name: string; readonly points: readonly PlotPoint[] }
export interface PlotOptions { readonly title?: string; readonly yLabel?: string; readonly xLabel?: string; readonly logY?: boolean }

const WIDTH = 800;
const HEIGHT = 480;
const MARGIN = { left: 80, right: 30, top: 50, bottom: 60 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** Ticks at 1, 2 or 5 times a power of ten covering [lo, hi] (about `count` of them). */
function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function range(values: number[]): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) { const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1; lo -= pad; hi += pad; }
  return [lo, hi];
}

export function renderLossCurveSvg(series: readonly PlotSeries[], opts: PlotOptions = {}): string {
  const logY = opts.logY === true;
  const clean = series.map((s) => ({
    name: s.name,
    points: s.points.filter((p) => Number.isFinite(p.step) && Number.isFinite(p.value) && (!logY || p.value > 0)),
  }));
  const all = clean.flatMap((s) => s.points);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="13">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${escapeXml(opts.title ?? 'Loss')}</text>`,
  ];
  if (all.length === 0) {
    out.push(`<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle">no finite points</text></svg>`);
    return out.join('\n');
  }
  const [x0, x1] = range(all.map((p) => p.step));
  const yv = all.map((p) => (logY ? Math.log10(p.value) : p.value));
  let [y0, y1] = range(yv);
  const yPad = (y1 - y0) * 0.05;
  y0 -= yPad; y1 += yPad;
  const sx = (x: number): number => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number): number => MARGIN.top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const f = (n: number): string => n.toFixed(1);
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  for (const t of niceTicks(x0, x1, 8)) {
    out.push(`<line x1="${f(sx(t))}" y1="${MARGIN.top}" x2="${f(sx(t))}" y2="${MARGIN.top + plotH}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${f(sx(t))}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${formatTick(t)}</text>`);
  }
  // Log axis: decades when the range spans at least two, else nice values placed at their logs.
  const decades = niceTicks(Math.ceil(y0), Math.floor(y1), 6).filter(Number.isInteger);
  const yTicks: { at: number; label: number }[] = !logY
    ? niceTicks(y0, y1, 6).map((t) => ({ at: t, label: t }))
    : decades.length >= 2
      ? decades.map((t) => ({ at: t, label: 10 ** t }))
      : niceTicks(10 ** y0, 10 ** y1, 6).filter((v) => v > 0).map((v) => ({ at: Math.log10(v), label: v }));
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" y1="${f(sy(t.at))}" x2="${MARGIN.left + plotW}" y2="${f(sy(t.at))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${f(sy(t.at) + 4)}" text-anchor="end">${formatTick(t.label)}</text>`);
  }
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 15}" text-anchor="middle">${escapeXml(opts.xLabel ?? 'step')}</text>`);
  out.push(`<text transform="translate(20 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel ?? (logY ? 'loss (log scale)' : 'loss'))}</text>`);
  clean.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const pts = s.points.map((p) => `${f(sx(p.step))},${f(sy(logY ? Math.log10(p.value) : p.value))}`);
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"${i > 0 ? ' stroke-dasharray="6 3"' : ''} points="${pts.join(' ')}"/>`);
    if (pts.length <= 60 || i > 0) {
      for (const p of pts) {
        const [cx, cy] = p.split(',');
        out.push(i === 0 ? `<circle cx="${cx}" cy="${cy}" r="3" fill="${colour}"/>` : `<rect x="${Number(cx) - 4}" y="${Number(cy) - 4}" width="8" height="8" fill="${colour}"/>`);
      }
    }
    const ly = MARGIN.top + 18 + i * 20;
    const lx = MARGIN.left + plotW - 130;
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="${colour}" stroke-width="2"${i > 0 ? ' stroke-dasharray="6 3"' : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export interface TrainMetric { type: 'train'; step: number; loss: number; lr?: number; grad_norm?: number; tokens_per_s?: number; epoch?: number; time_s?: number }
export interface EvalMetric { type: 'eval'; step: number; loss: number; perplexity?: number }
export type Metric = TrainMetric | EvalMetric;

/** Reads a metrics JSONL file; a malformed line is a FormatError naming it. */
export function readMetrics(file: string): Metric[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (cause) { throw new IoError('cannot read metrics', { file, cause }); }
  const out: Metric[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim().length === 0) return;
    let v: unknown;
    try { v = JSON.parse(line); } catch (cause) { throw new FormatError('metrics line is not JSON', { file, field: `line ${i + 1}`, cause }); }
    if (!isJsonObject(v) || (v.type !== 'train' && v.type !== 'eval') || typeof v.step !== 'number' || (typeof v.loss !== 'number' && v.loss !== null)) {
      throw new FormatError('malformed metrics line', { file, field: `line ${i + 1}`, expected: '{"type":"train"|"eval","step":N,"loss":x}', got: line.slice(0, 80) });
    }
    out.push({ ...v, loss: v.loss === null ? Number.NaN : v.loss } as unknown as Metric);
  });
  return out;
}

/** Reads `<runDir>/metrics.jsonl` and writes the loss curve to `out` (default `<runDir>/loss.svg`) atomically. */
export function plotRun(runDir: string, opts: { out?: string; logY?: boolean } = {}): { file: string; train: number; eval: number } {
  const metrics = readMetrics(join(runDir, 'metrics.jsonl'));
  const pick = (type: Metric['type']): PlotPoint[] => metrics.filter((m) => m.type === type).map((m) => ({ step: m.step, value: m.loss }));
  const train = pick('train');
  const held = pick('eval');
  const series: PlotSeries[] = [{ name: 'train loss', points: train }];
  if (held.length > 0) series.push({ name: 'eval loss', points: held });
  const file = opts.out ?? join(runDir, 'loss.svg');
  writeBytesAtomic(file, renderLossCurveSvg(series, { title: `Loss: ${runDir}`, logY: opts.logY }));
  return { file, train: train.length, eval: held.length };
}
