// llama.cpp (through node-llama-cpp's prebuilt binaries) as the reader of our GGUF files: the
// next-token probabilities it gives after a prompt, compared with ours. The bindings are loaded
// once per test process.
import { getLlama, LlamaLogLevel, type Llama, type Token } from 'node-llama-cpp';

let llamaOnce: Promise<Llama> | undefined;

/**
 * Largest |p_llama.cpp(v) - expected(v)| over the vocabulary for the token after `ids`, with
 * llama.cpp loading `modelFile` (and `loraFile` applied on the fly): one thread, f32 K/V cache,
 * no flash attention, so that only the weights' own dot types round.
 */
export async function llamaCppProbabilityDiff(modelFile: string, ids: readonly number[], expected: ArrayLike<number>, loraFile?: string): Promise<number> {
  llamaOnce ??= getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
  const llama = await llamaOnce;
  const peer = await llama.loadModel({ modelPath: modelFile });
  const ctx = await peer.createContext({
    contextSize: 64, batchSize: 64, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
    ...(loraFile === undefined ? {} : { lora: { adapters: [{ filePath: loraFile }] } }),
  });
  try {
    const res = await ctx.getSequence().controlledEvaluate(ids.map((t, i) => (i === ids.length - 1 ? [t as Token, { generateNext: { probabilities: true } }] : (t as Token))));
    const probs = res[ids.length - 1]!.next.probabilities!;
    let diff = 0;
    for (let v = 0; v < expected.length; v++) diff = Math.max(diff, Math.abs((probs.get(v as Token) ?? 0) - expected[v]));
    return diff;
  } finally {
    await ctx.dispose();
    await peer.dispose();
  }
}
