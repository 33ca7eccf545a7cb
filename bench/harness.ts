// Benchmark harness: suites measure, the runner prints a table and optionally writes JSON.
// Results follow the project convention {"suite","name","shape","threads","unit","median","min",
// "max","runs"}; a peer measured in the same run is a result whose name starts with "peer:".
// Benchmarks are not tests: they never assert targets, they report numbers (medians of runs).

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
}

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
  record(result: Omit<BenchResult, 'suite'>): void;
  /** Record a rate from a timing: value = work / seconds (median of rates = work / median time). */
  recordRate(name: string, shape: string, threads: number, unit: string, work: number, t: Timing): void;
  /** Progress/diagnostic line on stderr. */
  log(msg: string): void;
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
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

export function createContext(suite: string, sink: BenchResult[]): BenchContext {
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
    record(result) {
      sink.push({ suite, ...result });
    },
    recordRate(name, shape, threads, unit, work, t) {
      // Rates invert the ordering of times: the fastest run gives the max rate.
      sink.push({ suite, name, shape, threads, unit, median: work / t.median, min: work / t.max, max: work / t.min, runs: t.runs });
    },
    log(msg) {
      process.stderr.write(`[${suite}] ${msg}\n`);
    },
  };
}

export function formatTable(results: BenchResult[]): string {
  const header = ['suite', 'name', 'shape', 'threads', 'median', 'min', 'max', 'unit', 'runs'];
  const fmt = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(4));
  const rows = results.map((r) => [r.suite, r.name, r.shape, String(r.threads), fmt(r.median), fmt(r.min), fmt(r.max), r.unit, String(r.runs)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 3 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
