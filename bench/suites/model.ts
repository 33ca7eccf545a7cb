// Suite `model`: a Llama with SmolLM2-135M's shape and random weights (bench/model-files.ts),
// loaded NF4 + double quant on the wasm kernels with 2 threads: prompt processing tokens/s at 512
// tokens and decoding tokens/s over 64 greedy tokens (after a 1-token BOS prompt, as llama-bench's
// tg does from an empty context). Beside it, in the same process, llama.cpp through node-llama-cpp
// (prebuilt CPU binary, 2 threads) on the same weights as a Q4_0 GGUF written by the project's
// GGUF writer and Q4_0 quantizer. Our two arithmetics and the peer run in turn, run after run, so
// that load changes on a shared machine hit all three; the ratios are logged. The load's peak RSS
// is measured in a fresh child process (bench/model-load-probe.ts).
//
// Result names: prompt_tokens_per_s and decode_tokens_per_s measure what `qlora generate` runs by
// default, int8 activations in the 4-bit matmuls (kernels/ref/matmul-int8.ts; llama.cpp's Q4_0
// path likewise quantizes activations to 8 bits); the same names suffixed `:exact` measure the
// exact f32 arithmetic (`--activations f32`); the peer's prefixed `peer:llama.cpp-q4_0:`; and
// load_peak_rss_mb. Targets (issue 5): decode >= 0.75x and prompt >= 0.6x llama.cpp's Q4_0.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, type Token } from 'node-llama-cpp';
import { createKernels, type Kernels } from '../../src/kernels/index.js';
import type { KvCache } from '../../src/model/kv-cache.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { Rng, argmax } from '../../src/model/sampling.js';
import { resolveQuantizationConfig } from '../../src/quant/config.js';
import { timingOf, type BenchContext, type BenchSuite, type Timing } from '../harness.js';
import { SMOLLM2_135M_SHAPE, writeBenchHfModel, writeBenchQ4_0Gguf } from '../model-files.js';

const SHAPE = SMOLLM2_135M_SHAPE;
const THREADS = 2;
const PROMPT_TOKENS = 512;
const DECODE_TOKENS = 64;
const WEIGHT_SEED = 1;
const PROMPT_SEED = 2;
const BOS = 1;
/** Timed runs per measurement (after one untimed warm-up run of each side). */
const RUNS = 5;
const PEER = 'peer:llama.cpp-q4_0:';

/** One warm-up each, then RUNS rounds running every side in turn; each function returns its own seconds. */
async function rotate(sides: readonly (() => Promise<number>)[]): Promise<Timing[]> {
  for (const side of sides) await side();
  const times = sides.map((): number[] => []);
  for (let r = 0; r < RUNS; r++) {
    for (let i = 0; i < sides.length; i++) times[i].push(await sides[i]());
  }
  return times.map(timingOf);
}

function seconds(t0: number): number {
  return (performance.now() - t0) / 1000;
}

/** Peak RSS of loading the model in a fresh process (MiB), from bench/model-load-probe. */
function loadPeakRssMb(ctx: BenchContext, dir: string): number {
  const here = fileURLToPath(import.meta.url);
  const probe = fileURLToPath(new URL(`../model-load-probe${extname(here)}`, import.meta.url));
  const r = spawnSync(process.execPath, [...process.execArgv, probe, dir, String(THREADS)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`model-load-probe failed (${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { peakRssMb: number; baselineRssMb: number; loadMs: number };
  ctx.log(`load in a fresh process: peak RSS ${out.peakRssMb.toFixed(1)} MiB (${out.baselineRssMb.toFixed(1)} MiB before loading), ${(out.loadMs / 1000).toFixed(1)} s`);
  return out.peakRssMb;
}

export const modelSuite: BenchSuite = {
  name: 'model',
  description: `${SHAPE.name} Llama (random weights), NF4+DQ: prompt ${PROMPT_TOKENS} / decode ${DECODE_TOKENS} tokens/s vs llama.cpp Q4_0, ${THREADS} threads`,
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-bench-model-'));
    const ggufPath = join(dir, 'model-q4_0.gguf');
    try {
      let t0 = performance.now();
      writeBenchHfModel(dir, SHAPE, WEIGHT_SEED);
      ctx.log(`wrote the HF folder (F16) in ${seconds(t0).toFixed(1)} s`);
      t0 = performance.now();
      writeBenchQ4_0Gguf(dir, ggufPath, SHAPE);
      ctx.log(`wrote the Q4_0 GGUF in ${seconds(t0).toFixed(1)} s`);

      const peakRss = loadPeakRssMb(ctx, dir);
      ctx.record({ name: 'load_peak_rss_mb', shape: `${SHAPE.name}/nf4-dq`, threads: THREADS, unit: 'MiB', median: peakRss, min: peakRss, max: peakRss, runs: 1 });

      const rng = Rng.fromSeed(PROMPT_SEED);
      const prompt = Int32Array.from({ length: PROMPT_TOKENS }, () => 3 + Math.floor(rng.nextFloat() * (SHAPE.vocabSize - 3)));

      // Ours twice: `qlora generate`'s default (int8 activations) and the exact f32 arithmetic.
      const ours: { name: string; kernels: Kernels; model: LlamaModel; cache: KvCache }[] = [];
      const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false });
      const peerModel = await llama.loadModel({ modelPath: ggufPath });
      const peerContext = await peerModel.createContext({ contextSize: 1024, batchSize: PROMPT_TOKENS, threads: THREADS, sequences: 1 });
      try {
        for (const [suffix, int8Activations] of [['', true], [':exact', false]] as const) {
          const kernels = await createKernels({ backend: 'wasm', threads: THREADS, int8Activations });
          const model = await loadModel(dir, { kernels, quant: resolveQuantizationConfig() });
          ours.push({ name: suffix, kernels, model, cache: model.createKvCache(1, PROMPT_TOKENS + DECODE_TOKENS + 1) });
        }
        const sequence = peerContext.getSequence();
        const peerPrompt = Array.from(prompt) as Token[];
        ctx.log(`kernels ${ours[0].kernels.name} x${ours[0].kernels.threads}; llama.cpp ${llama.buildType} build, ${peerContext.currentThreads} threads`);

        const oursPrompt = (m: LlamaModel, cache: KvCache) => async (): Promise<number> => {
          const start = performance.now();
          m.forward(prompt, 1, PROMPT_TOKENS, { cache, startPos: 0, logits: 'last' });
          return seconds(start);
        };
        const peerPromptRun = async (): Promise<number> => {
          await sequence.clearHistory();
          const start = performance.now();
          await sequence.evaluateWithoutGeneratingNewTokens(peerPrompt);
          return seconds(start);
        };
        // Decoding: BOS, then 64 greedy steps; only the 64 steps are timed on both sides.
        const oursDecode = (m: LlamaModel, cache: KvCache) => async (): Promise<number> => {
          let next = argmax(m.forward(Int32Array.of(BOS), 1, 1, { cache, startPos: 0, logits: 'last' }));
          const start = performance.now();
          for (let i = 0; i < DECODE_TOKENS; i++) next = argmax(m.forward(Int32Array.of(next), 1, 1, { cache, startPos: i + 1, logits: 'last' }));
          return seconds(start);
        };
        const peerDecode = async (): Promise<number> => {
          await sequence.clearHistory();
          let produced = 0;
          let start = 0;
          // evaluate() yields the token chosen after BOS, then one per further evaluation.
          for await (const token of sequence.evaluate([BOS as Token], { temperature: 0 })) {
            void token;
            produced++;
            if (produced === 1) start = performance.now();
            if (produced === DECODE_TOKENS + 1) break;
          }
          return seconds(start);
        };

        // Medians, and the fastest run of each side (less disturbed by other load on the machine).
        const report = (what: string, n: number, mine: Timing, peer: Timing, target: number): void => {
          const rate = (t: number): string => (n / t).toFixed(1);
          ctx.log(`${what}: ${rate(mine.median)} vs llama.cpp ${rate(peer.median)} tokens/s = ${(peer.median / mine.median).toFixed(2)}x ` +
            `(best runs ${rate(mine.min)} vs ${rate(peer.min)} = ${(peer.min / mine.min).toFixed(2)}x; target >= ${target}x)`);
        };
        const measure = async (kind: 'prompt' | 'decode', n: number, shape: string, target: number): Promise<void> => {
          const mine = kind === 'prompt' ? oursPrompt : oursDecode;
          const [peer, ...t] = await rotate([kind === 'prompt' ? peerPromptRun : peerDecode, ...ours.map((o) => mine(o.model, o.cache))]);
          ours.forEach((o, i) => {
            ctx.recordRate(`${kind}_tokens_per_s${o.name}`, shape, THREADS, 'tokens/s', n, t[i]);
            report(`${kind} ${n}${o.name === '' ? ' (int8 activations, the default)' : ' (exact f32)'}`, n, t[i], peer, target);
          });
          ctx.recordRate(`${PEER}${kind}_tokens_per_s`, shape, THREADS, 'tokens/s', n, peer);
        };
        await measure('prompt', PROMPT_TOKENS, `${SHAPE.name}/${PROMPT_TOKENS}`, 0.6);
        await measure('decode', DECODE_TOKENS, `${SHAPE.name}/${DECODE_TOKENS}`, 0.75);
      } finally {
        for (const o of ours) {
          o.cache.dispose();
          o.model.dispose();
          await o.kernels.dispose();
        }
        await peerContext.dispose();
        await peerModel.dispose();
        await llama.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
