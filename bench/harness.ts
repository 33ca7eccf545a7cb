// Benchmark harness: suites measure, the runner prints a table and optionally writes JSON.
// Results follow the project convention {"suite","name","shape","threads","unit","median","min",
// "max","runs"}; a peer measured in the same run is a result whose name starts with "peer:".
// Every result also names the runtime it was measured on ("node": process.version) and the
// kernels ("kernels": the wasm build the start-up probe chose, "ref", or "peer"), because the
// same code runs at different speeds on different V8 versions (issue 12).
// Benchmarks are not tests: they never assert targets, they report numbers (medians of runs).

import { loadKernelModule, variantSummary } from '../src/kernels/wasm/module.js';

export interface BenchResult {
  suite: string;
  name: string;
  shape: string;
  threads: number;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number;
  node: string;
  kernels: string;
}

/** What a suite passes: node is filled in; kernels defaults from the name (ref:, peer:) or the probe. */
export type BenchRecord = Omit<BenchResult, 'suite' | 'node' | 'kernels'> & { kernels?: string };

export interface Timing {
  /** Seconds per run. */
  median: number;
  min: number;
  max: number;
  runs: number;
}

export interface MeasureOptions {
  /** Untimed calls before measuring (JIT tiers, caches). Default 2. */
  warmup?: number;
  /** Timed runs. Default 7. */
  runs?: number;
  /** Stop early once this many seconds were spent on timed runs (at least 3 runs). Default 20. */
  maxSeconds?: number;
}

export interface BenchContext {
  /** Time fn (sync or async) and return per-run seconds. */
  measure(fn: () => unknown, opts?: MeasureOptions): Promise<Timing>;
  /** Record a result of the current suite. */
  record(result: BenchRecord): void;
  /** Record a rate from a timing: value = work / seconds (median of rates = work / median time). */
  recordRate(name: string, shape: string, threads: number, unit: string, work: number, t: Timing, kernels?: string): void;
  /** Progress/diagnostic line on stderr. */
  log(msg: string): void;
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  /** Runs only when named (long or disk-hungry suites), not in a bare `npm run bench`. */
  readonly optIn?: boolean;
  run(ctx: BenchContext): Promise<void>;
}

/** Median, min and max of per-run seconds. */
export function timingOf(seconds: readonly number[]): Timing {
  const s = [...seconds].sort((a, b) => a - b);
  const m = s.length >> 1;
  return { median: s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0], max: s[s.length - 1], runs: s.length };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The wasm build this process runs by default, as the kernels label of a result. */
export function defaultKernelsLabel(): string {
  const mod = loadKernelModule();
  return 'variant' in mod ? `wasm ${mod.variant}` : 'ref';
}

/** The kernels label of a backend: "wasm relaxed-fused", "wasm simd", "ref". */
export function kernelsLabel(k: { readonly description: string }): string {
  return k.description.split(' (')[0] as string;
}

function kernelsOf(name: string, explicit: string | undefined): string {
  if (explicit !== undefined) return explicit;
  if (name.startsWith('peer:')) return 'peer';
  if (name.startsWith('ref:')) return 'ref';
  return defaultKernelsLabel();
}

export function createContext(suite: string, sink: BenchResult[]): BenchContext {
  const push = (r: BenchRecord): void => {
    const { kernels, ...rest } = r;
    sink.push({ suite, ...rest, node: process.version, kernels: kernelsOf(r.name, kernels) });
  };
  return {
    async measure(fn, opts = {}) {
      const warmup = opts.warmup ?? 2;
      const runs = opts.runs ?? 7;
      const maxSeconds = opts.maxSeconds ?? 20;
      for (let i = 0; i < warmup; i++) await fn();
      const times: number[] = [];
      let spent = 0;
      while (times.length < runs && (times.length < 3 || spent < maxSeconds)) {
        const t0 = process.hrtime.bigint();
        await fn();
        const dt = Number(process.hrtime.bigint() - t0) / 1e9;
        times.push(dt);
        spent += dt;
      }
      return { median: median(times), min: Math.min(...times), max: Math.max(...times), runs: times.length };
    },
    record: push,
    recordRate(name, shape, threads, unit, work, t, kernels) {
      // Rates invert the ordering of times: the fastest run gives the max rate.
      push({ name, shape, threads, unit, median: work / t.median, min: work / t.max, max: work / t.min, runs: t.runs, kernels });
    },
    log(msg) {
      process.stderr.write(`[${suite}] ${msg}\n`);
    },
  };
}

/** The runtime line above the table: node version and the kernels the probe chose. */
export function runtimeLine(): string {
  const mod = loadKernelModule();
  return `node ${process.version}, kernels ${'variant' in mod ? `wasm ${mod.variant} (${variantSummary(mod.variant)})` : `ref (${mod.reason})`}`;
}

export function formatTable(results: BenchResult[]): string {
  const header = ['suite', 'name', 'shape', 'threads', 'median', 'min', 'max', 'unit', 'runs', 'kernels'];
  const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(4));
  const rows = results.map((r) => [r.suite, r.name, r.shape, String(r.threads), fmt(r.median), fmt(r.min), fmt(r.max), r.unit, String(r.runs), r.kernels]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 3 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
