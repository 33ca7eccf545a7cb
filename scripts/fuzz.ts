// `npm run fuzz`: the parser fuzzer, >= 10,000 seeded cases per format (not part of `npm test`,
// which runs a short subset from test/fuzz/fuzz-subset.test.ts). Prints per format: cases,
// successes, typed errors (by class), failures (untyped errors, allocations over the bound,
// slow cases), hangs, the slowest case and the largest allocation relative to the input size.
// Exits 1 when any case failed. Harness and targets: test/fuzz/.
// Run: npm run fuzz -- [--cases N] [--seed S] [--format NAME,...] [--scratch DIR]

import { FUZZ_TARGETS } from '../test/fuzz/targets.js';
import { runFuzz } from '../test/fuzz/runner.js';
import { ALLOC_SINGLE_FACTOR, ALLOC_SLACK_BYTES, CASE_TIME_BOUND_MS } from '../test/fuzz/harness.js';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const cases = Number(option('cases') ?? 10_000);
const seed = Number(option('seed') ?? 20261206);
const formats = option('format')?.split(',') ?? FUZZ_TARGETS.map((t) => t.format);
const scratch = option('scratch') ?? (process.platform === 'linux' ? '/dev/shm' : undefined);

console.log(`fuzz: ${cases} cases per format, seed ${seed}; bounds: ${CASE_TIME_BOUND_MS} ms per case, one allocation <= ${ALLOC_SINGLE_FACTOR} x input + ${ALLOC_SLACK_BYTES >> 20} MiB`);
let lastPrint = 0;
const reports = await runFuzz({
  formats,
  cases,
  seed,
  scratch,
  onProgress: (format, done, total) => {
    if (Date.now() - lastPrint > 10_000) {
      lastPrint = Date.now();
      console.error(`  ${format}: ${done}/${total}`);
    }
  },
});

const rows = reports.map((r) => ({
  format: r.format,
  cases: r.cases,
  success: r.success,
  typed: r.typed,
  failures: r.failures,
  hangs: r.hangs,
  'slowest ms': Math.round(r.slowestMs),
  'max alloc/input': Number(r.worstAllocationRatio.toFixed(2)),
  's': Number(r.seconds.toFixed(1)),
  'peak rss MB': Math.round(r.peakRssMb),
}));
console.table(rows);
for (const r of reports) {
  console.log(`${r.format} typed errors: ${Object.entries(r.typedByClass).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  for (const e of r.examples) console.log(`  FAILURE ${r.format} case ${e.index} (${e.error}): ${e.message.split('\n').slice(0, 6).join('\n    ')}\n    case: ${e.spec}`);
}
const failed = reports.reduce((a, r) => a + r.failures, 0);
console.log(failed === 0 ? 'fuzz: no crashes, hangs or unbounded allocations' : `fuzz: ${failed} failing cases`);
process.exitCode = failed === 0 ? 0 : 1;
