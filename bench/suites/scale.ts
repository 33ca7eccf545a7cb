// Suite `scale` (`npm run bench:scale`; not run by a bare `npm run bench`): QLoRA on a model of
// Llama-2-7B's exact shapes. A synthetic f16 checkpoint (scripts/scale-checkpoint.ts: random
// values, sharded as the real one, ~13.5 GB) is generated into a temp folder, then, each in a
// fresh child process (bench/scale-probe.ts) so that peak RSS is that step's own:
//   quantize_s, quantize_peak_rss_mb     streaming it into a bnb-4bit NF4 + double-quant folder
//                                        (target: peak RSS <= 2 GiB whatever the model size)
//   train_step_s, train_step_peak_rss_mb one QLoRA step: LoRA r=16 on all linear layers, batch 1 x 256,
//                                        gradient checkpointing, AdamW (target: peak RSS <= 6 GiB)
//   decode_step_s                        one decoding step after it
// Shape `llama2-7b`; QLORA_SCALE_SHAPES=llama2-7b,llama2-13b adds the 13B shape. QLORA_SCALE_DIR
// picks the scratch folder's parent (default the OS temp folder; it needs ~1.3x the f16 size free).
// Everything generated is deleted at the end.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, BenchSuite } from '../harness.js';
import { generateScaleCheckpoint, SCALE_CONFIGS, type ScaleShape } from '../../scripts/scale-checkpoint.js';

const THREADS = 2;
const T = 256;

function probe<R>(ctx: BenchContext, args: string[]): R {
  const here = fileURLToPath(import.meta.url);
  const script = fileURLToPath(new URL(`../scale-probe${extname(here)}`, import.meta.url));
  const r = spawnSync(process.execPath, [...process.execArgv, script, ...args], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`scale-probe ${args[0]} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as R;
  ctx.log(`${args[0]}: ${JSON.stringify(out)}`);
  return out;
}

function one(ctx: BenchContext, shape: ScaleShape, parent: string): void {
  const dir = mkdtempSync(join(parent, `qlora-scale-${shape}-`));
  const record = (name: string, unit: string, value: number): void => ctx.record({ name, shape, threads: THREADS, unit, median: value, min: value, max: value, runs: 1 });
  try {
    const f16 = join(dir, 'f16');
    const g = generateScaleCheckpoint(f16, shape);
    ctx.log(`${shape}: ${(g.params / 1e9).toFixed(2)}B params, ${(g.bytes / 1e9).toFixed(2)} GB f16 written in ${g.seconds.toFixed(0)} s`);
    const nf4 = join(dir, 'nf4');
    const q = probe<{ seconds: number; peakRssMb: number; sourceBytes: number }>(ctx, ['quantize', f16, nf4, String(THREADS)]);
    record('quantize_s', 's', q.seconds);
    record('quantize_peak_rss_mb', 'MiB', q.peakRssMb);
    record('quantize_read_mb_per_s', 'MB/s', q.sourceBytes / 1e6 / q.seconds);
    rmSync(f16, { recursive: true, force: true });
    const t = probe<{ loadSeconds: number; stepSeconds: number; decodeSeconds: number; peakRssMb: number }>(ctx, ['train', nf4, String(T), String(THREADS)]);
    record('load_s', 's', t.loadSeconds);
    record('train_step_s', 's', t.stepSeconds);
    record('train_step_peak_rss_mb', 'MiB', t.peakRssMb);
    record('decode_step_s', 's', t.decodeSeconds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const scaleSuite: BenchSuite = {
  name: 'scale',
  description: 'Llama-2-7B shapes (synthetic f16, ~13.5 GB): streaming NF4 quantization, one QLoRA step (r16, 1x256) and one decode step: time and peak RSS',
  optIn: true,
  async run(ctx) {
    const shapes = (process.env.QLORA_SCALE_SHAPES ?? 'llama2-7b').split(',').filter((s) => s !== '');
    for (const s of shapes) if (!(s in SCALE_CONFIGS)) throw new Error(`QLORA_SCALE_SHAPES: unknown shape ${s}; known: ${Object.keys(SCALE_CONFIGS).join(', ')}`);
    const parent = process.env.QLORA_SCALE_DIR ?? tmpdir();
    for (const s of shapes) one(ctx, s as ScaleShape, parent);
  },
};
