// Suite `train`: one QLoRA training step on a Llama with SmolLM2-135M's shape (random weights,
// bench/model-files.ts): NF4 + double-quant base, LoRA r=16 alpha=32 on all seven projections,
// batch 4 x 256 tokens, AdamW, clip 1.0, 2 threads, in a fresh child process
// (bench/train-probe.ts) so that its peak RSS is the training's own. Results
// `train_tokens_per_s` (median of the timed steps after one warm-up step) and
// `train_peak_rss_mb` (whole process), with training's default int16 frozen matmuls, and the same
// with the exact f32 ones (`train_tokens_per_s:exact`, `train_peak_rss_mb:exact`). When QLORA_PEER_PYTHON names a Python with the peer packages
// (../shared/peers/setup.sh), the PyTorch + PEFT peer (../shared/peers/bench_train_peft.py, f32
// base, no checkpointing) runs the same shape, batch, rank and threads in the same run:
// `peer:pytorch-peft:train_tokens_per_s` and `peer:pytorch-peft:train_peak_rss_mb`.
// Targets (issue 10): >= 1.2x the peer's tokens/s and <= 0.5x its peak RSS.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timingOf, type BenchContext, type BenchSuite, type Timing } from '../harness.js';
import { SHARED } from '../../test/helpers/shared.js';
import { SMOLLM2_135M_SHAPE, writeBenchHfModel } from '../model-files.js';

const SHAPE = SMOLLM2_135M_SHAPE;
const THREADS = 2;
const B = 4;
const T = 256;
const WARMUP_STEPS = 1;
const TIMED_STEPS = 3;
const PEER = 'peer:pytorch-peft:';
const PEER_SCRIPT = join(SHARED, 'peers', 'bench_train_peft.py');

function runOurs(ctx: BenchContext, dir: string, activations: 'int16' | 'f32'): { timing: Timing; peakRssMb: number } {
  const here = fileURLToPath(import.meta.url);
  const probe = fileURLToPath(new URL(`../train-probe${extname(here)}`, import.meta.url));
  const r = spawnSync(process.execPath, [...process.execArgv, probe, dir, String(THREADS), String(B), String(T), String(WARMUP_STEPS + TIMED_STEPS), activations], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`train-probe failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { stepSeconds: number[]; peakRssMb: number; loss: number };
  ctx.log(`qlora-ts (${activations} frozen matmuls) steps: ${out.stepSeconds.map((s) => s.toFixed(2)).join(', ')} s; loss ${out.loss.toFixed(3)}; peak RSS ${out.peakRssMb.toFixed(0)} MiB`);
  return { timing: timingOf(out.stepSeconds.slice(WARMUP_STEPS)), peakRssMb: out.peakRssMb };
}

function runPeer(ctx: BenchContext, python: string): { timing: Timing; peakRssMb: number } | null {
  if (!existsSync(PEER_SCRIPT)) {
    ctx.log(`peer script not found at ${PEER_SCRIPT}: no peer results`);
    return null;
  }
  const r = spawnSync(python, [PEER_SCRIPT, '--batch', String(B), '--seq', String(T), '--threads', String(THREADS), '--steps', String(WARMUP_STEPS + TIMED_STEPS),
    '--warmup', String(WARMUP_STEPS), '--r', '16', '--alpha', '32'], { encoding: 'utf8' });
  if (r.status !== 0) {
    ctx.log(`peer failed (${r.status}): ${r.stderr.slice(-500)}`);
    return null;
  }
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const out = JSON.parse(line) as { step_s_median: number; step_s_min: number; step_s_max: number; peak_rss_mib: number };
  ctx.log(`PyTorch + PEFT: step ${out.step_s_median} s median; peak RSS ${out.peak_rss_mib} MiB`);
  return { timing: { median: out.step_s_median, min: out.step_s_min, max: out.step_s_max, runs: TIMED_STEPS }, peakRssMb: out.peak_rss_mib };
}

export const trainSuite: BenchSuite = {
  name: 'train',
  description: `${SHAPE.name} Llama (random weights), NF4+DQ base, LoRA r16 all projections, batch ${B}x${T}, AdamW, ${THREADS} threads: tokens/s and peak RSS vs PyTorch + PEFT`,
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-bench-train-'));
    try {
      writeBenchHfModel(dir, SHAPE, 1);
      const shape = `${SHAPE.name}/nf4-dq/lora-r16/${B}x${T}`;
      // Training's default arithmetic (int16 frozen matmuls), then the exact f32 one (':exact').
      const ours = runOurs(ctx, dir, 'int16');
      ctx.recordRate('train_tokens_per_s', shape, THREADS, 'tokens/s', B * T, ours.timing);
      ctx.record({ name: 'train_peak_rss_mb', shape, threads: THREADS, unit: 'MiB', median: ours.peakRssMb, min: ours.peakRssMb, max: ours.peakRssMb, runs: 1 });
      const exact = runOurs(ctx, dir, 'f32');
      ctx.recordRate('train_tokens_per_s:exact', shape, THREADS, 'tokens/s', B * T, exact.timing);
      ctx.record({ name: 'train_peak_rss_mb:exact', shape, threads: THREADS, unit: 'MiB', median: exact.peakRssMb, min: exact.peakRssMb, max: exact.peakRssMb, runs: 1 });
      const python = process.env.QLORA_PEER_PYTHON;
      if (python === undefined || python.length === 0) {
        ctx.log('QLORA_PEER_PYTHON is not set: no PyTorch + PEFT peer results (../shared/peers/README.md)');
        return;
      }
      const peer = runPeer(ctx, python);
      if (peer === null) return;
      const peerShape = `${SHAPE.name}/f32/lora-r16/${B}x${T}`;
      ctx.recordRate(`${PEER}train_tokens_per_s`, peerShape, THREADS, 'tokens/s', B * T, peer.timing);
      ctx.record({ name: `${PEER}train_peak_rss_mb`, shape: peerShape, threads: THREADS, unit: 'MiB', median: peer.peakRssMb, min: peer.peakRssMb, max: peer.peakRssMb, runs: 1 });
      ctx.log(`ratios: tokens/s ${(peer.timing.median / ours.timing.median).toFixed(2)}x the peer, peak RSS ${(ours.peakRssMb / peer.peakRssMb).toFixed(2)}x`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
