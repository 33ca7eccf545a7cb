// The qlora-ts library entry point: the public API, layer by layer (formats → quant → kernels →
// model). Everything here is also what the `qlora` CLI uses; the CLI adds only argv parsing,
// progress bars and exit codes. Deeper modules stay importable by path for advanced use.

export * from './errors.js';
export { progressTracker, type ProgressInfo, type ProgressCallback, type ProgressTask, type ProgressTracker, type WithProgressCallback } from './progress.js';

// formats: files read and written
export { DTYPE_BYTES, type DType, f32ToF16Bits, f16BitsToF32, f32ToBf16Bits, bf16BitsToF32 } from './formats/dtype.js';
export {
  SafetensorsReader,
  ShardedSafetensors,
  openCheckpoint,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorEntry,
  type TensorSource,
  type TensorToWrite,
} from './formats/safetensors.js';
export { writeFileAtomic, writeBytesAtomic } from './formats/atomic.js';
export {
  loadModelConfig,
  parseConfigJson,
  resolveModelConfig,
  type Architecture,
  type ModelConfig,
  type RopeConfig,
  type BnbQuantizationConfig,
} from './formats/hf-config.js';
export { openHfFolder, type HfFolder, type GenerationConfig } from './formats/hf-folder.js';
export { TextTokenizer, type ChatMessage, type ChatTemplateOptions, type StreamDecoder } from './formats/tokenizer.js';
export { readPeftAdapter, readAdapterConfig, type PeftAdapter, type LoraAdapterConfig } from './formats/peft.js';
export {
  readGgufFile,
  readTensorBytes,
  writeGguf,
  tensorToF32,
  GgufTensorSource,
  ggufToModelConfig,
  ggufTextTokenizer,
  GgmlType,
  GgufValueType,
  type GgufFile,
  type GgufTensorInfo,
  type GgufValue,
} from './formats/gguf/index.js';

// quant: 4-bit NF4/FP4 (bitsandbytes-exact), double quantization, ggml block types
export type { Quant4Weight, Quant4Type, DoubleQuantScales } from './quant/types.js';
export {
  parseQuantizationOptions,
  resolveQuantizationConfig,
  planModuleQuantization,
  type QuantizationConfig,
  type QuantizationOptions,
  type ModulePlan,
} from './quant/config.js';
export { QuantizedTensor, quantizeTensor } from './quant/quantized-tensor.js';
export { readBnbWeights, listBnbWeights, bnbTensorsFor, bnbQuantizationConfig } from './quant/bnb-checkpoint.js';
export { quantizeCheckpoint, type QuantizeCheckpointOptions, type QuantizeCheckpointReport } from './quant/quantize-checkpoint.js';
export { quantizeGgml, dequantizeGgml } from './quant/ggml/index.js';

// kernels: the compute backend, chosen once and passed down
export { createKernels, type CreateKernelsOptions } from './kernels/index.js';
export type { Kernels, KernelBackendName } from './kernels/kernels.js';

// model: Llama-family models, generation, evaluation, adapters
export { loadModel, type LoadModelOptions } from './model/load.js';
export { LlamaModel, SUPPORTED_ARCHITECTURES, type ForwardOptions } from './model/llama.js';
export { generate, generateBatch, type GenerateOptions, type GenerationResult } from './model/generate.js';
export { Sampler, Rng, type SamplingOptions } from './model/sampling.js';
export { evaluatePerplexity, type PerplexityOptions, type PerplexityResult } from './model/perplexity.js';
export { loadPeftAdapter } from './model/peft-adapter.js';
export { writePeftAdapter, peftAdapterConfigJson, type PeftModuleToWrite, type PeftConfigToWrite, type PeftWriteDtype } from './formats/peft-write.js';

// train: the trainer, LoRA setup, checkpoints, datasets, batches, loss curves, optimiser, LR schedules
export {
  loadDataset,
  withExamples,
  IGNORE_LABEL,
  ALPACA_PROMPT_NO_INPUT,
  ALPACA_PROMPT_WITH_INPUT,
  BatchIterator,
  evalBatches,
  splitDataset,
  type Batch,
  type BatchCursor,
  type DatasetFormat,
  type DatasetOptions,
  type TrainExample,
  type DatasetStats,
  type TokenizedDataset,
} from './train/data.js';
export { renderLossCurveSvg, readMetrics, plotRun, type Metric, type TrainMetric, type EvalMetric } from './train/plot.js';
export {
  AdamW,
  gradNorm,
  clipGradNorm,
  stateTensorsToWrite,
  OPTIM_BLOCK_SIZE,
  MIN_8BIT_SIZE,
  type TrainableParam,
  type AdamWOptions,
  type StateBits,
  type StateTensor,
} from './train/optim.js';
export { learningRate, validateSchedule, type ScheduleOptions, type ScheduleKind } from './train/schedule.js';
export { train, evaluate, type TrainOptions, type TrainActivations, type TrainResult, type TrainEvent } from './train/trainer.js';
export { resolveRunConfig, type RunConfig, type RunConfigInput, type Schedule } from './train/train-options.js';
export { attachNewLora, attachExistingLora, loraParams, loraModules, writeLoraAdapter, selectTargets, targetsModule, loraScale, ALL_LINEAR, type LoraSpec } from './train/lora.js';
export { latestCheckpoint, verifyCheckpoint, type FoundCheckpoint } from './train/checkpoint.js';

// export: PEFT adapters, merged folders, bnb-4bit, GGUF models and adapters
export * from './export/index.js';

// the embedded demo: its model and data, and the whole round trip (`qlora demo`)
export { demoModelPath, demoDataPath, runDemo, demoTrainConfig, DEMO_PROMPT, type DemoOptions, type DemoReport, type DemoPhase } from './demo.js';
