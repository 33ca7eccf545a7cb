// quantizeCheckpoint: a Hugging Face safetensors folder (f32/f16/bf16, single or sharded) ->
// a bitsandbytes-4bit folder that transformers + bitsandbytes load (model.safetensors or shards,
// config.json with `quantization_config`, tokenizer and generation files copied).
// Streams tensor by tensor; the whole model is never in memory. Output is built in a hidden temp
// folder beside --out and renamed into place at the end, so an interrupted run leaves nothing that
// looks like a finished checkpoint.
// Not here: argv and the progress bar (src/cli/quantize.ts), the arithmetic (quantized-tensor.ts).
//
// Why two passes: the safetensors writer must order data by dtype then name (the reference
// layout, byte-identical with transformers' files), so every weight's small F32 statistics
// (quant_map, nested_absmax, or plain absmax) are written before any U8 packed codes. Pass 1
// quantizes each weight once and keeps its statistics (n/64 bytes with DQ) in memory and its
// packed codes in memory within a budget, beyond it in a scratch file inside the temp folder
// (removed before the rename); pass 2 is the writer pulling each tensor's bytes in its order.

import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, FormatError, IoError, ShapeError, UnsupportedError } from '../errors.js';
import { DTYPE_BYTES, f32ToBf16Bits, f32ToF16Bits, type DType } from '../formats/dtype.js';
import { openCheckpoint, writeSafetensors, writeShardedSafetensors, type TensorSource, type TensorToWrite } from '../formats/safetensors.js';
import { moveDirIntoPlace } from '../formats/atomic.js';
import { bnbQuantizationConfig, bnbTensorsFor, type QuantStorage } from './bnb-checkpoint.js';
import { compilePattern, DEFAULT_SKIP_MODULES, planModuleQuantization, resolveQuantizationConfig, type FloatKind, type ModulePlan, type QuantizationConfig } from './config.js';
import { dumpPythonJson, JsonNumberText, parsePreservingNumbers, PyFloat, type PyJson } from '../formats/py-json.js';
import type { TorchFloatDtype } from './quant-state.js';
import { quantizeTensor, type Blockwise4Quantizer } from './quantized-tensor.js';
import { progressTracker, type WithProgressCallback } from '../progress.js';

/** transformers' default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
/** Packed codes kept in memory between the passes (beyond this they go to a scratch file). */
export const DEFAULT_PACKED_CACHE_BYTES = 256 * 1024 * 1024;
/** Files besides weights and config.json copied from the source folder. */
const COPIED_FILE = /^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|generation_config\.json|vocab\.(json|txt)|merges\.txt|chat_template\.(jinja|json)|.*\.model)$/;

const TORCH_DTYPE_OF: Partial<Record<DType, TorchFloatDtype>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
const DTYPE_OF_KIND: Readonly<Record<FloatKind, DType>> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export interface QuantizeProgress {
  readonly phase: 'quantize' | 'write';
  readonly tensor: string;
  /** Source bytes processed so far over both phases, of totalBytes. */
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export interface QuantizeCheckpointOptions extends WithProgressCallback {
  /** Default: resolveQuantizationConfig() (nf4, block 64, double quant). */
  config?: QuantizationConfig;
  /** Replace a non-empty output folder. */
  force?: boolean;
  quantStorage?: QuantStorage;
  maxShardBytes?: number;
  packedCacheBytes?: number;
  onProgress?: (p: QuantizeProgress) => void;
  /** Fast blockwise quantizer (Kernels.quantizeBlockwise4); default: the reference. */
  blockwise4?: Blockwise4Quantizer;
}

export interface QuantizeCheckpointReport {
  readonly outDir: string;
  readonly files: string[];
  /** Tensor data bytes of the source and of the written checkpoint (headers excluded). */
  readonly sourceBytes: number;
  readonly outputBytes: number;
  readonly quantizedTensors: number;
  readonly keptTensors: number;
  readonly quantizedParams: number;
  readonly totalParams: number;
  /** 8 * Σ QuantizedTensor.sizeBytes() / quantized params (codes + scales, no shared tables). */
  readonly bitsPerParameter: number;
}

/** Everything bnb files cannot hold is refused before any output is written. */
function assertExportable(config: QuantizationConfig): void {
  const bad = (what: string, field: string): never => {
    throw new UnsupportedError(`${what} cannot be stored in a bitsandbytes 4-bit checkpoint`, {
      field, hint: 'bnb-4bit files hold only blockwise symmetric NF4/FP4 or unquantized tensors',
    });
  };
  if (config.strategy !== 'blockwise') bad('strategy perChannel', 'strategy');
  if (config.zeroPoint) bad('the zero-point variant', 'zeroPoint');
  config.overrides.forEach((ov, i) => {
    if (ov.action.kind === 'int8') bad(`int8 override ${ov.pattern}`, `overrides[${i}]`);
    if (ov.action.kind === 'quant4' && (ov.action.settings.strategy !== 'blockwise' || ov.action.settings.zeroPoint)) {
      bad(`override ${ov.pattern} (perChannel/zeroPoint)`, `overrides[${i}]`);
    }
  });
}

function isNonEmptyDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory() && readdirSync(path).length > 0;
}

function castF32(x: Float32Array, dtype: DType): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const out = new Uint16Array(x.length);
  const cast = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < x.length; i++) out[i] = cast(x[i]);
  return new Uint8Array(out.buffer);
}

const SPILL_FILE = '.packed-codes.scratch';

/** Packed codes parked on disk between the two passes, in a scratch file of the temp folder. */
class PackedSpill {
  private fd: number | null = null;
  private size = 0;

  constructor(private readonly path: string) {}

  /** Append bytes; returns their offset. */
  put(bytes: Uint8Array): number {
    try {
      this.fd ??= openSync(this.path, 'w+');
      let done = 0;
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, this.size + done);
    } catch (cause) {
      throw new IoError('cannot write the scratch file of packed codes', { file: this.path, cause, hint: 'is the disk full?' });
    }
    const at = this.size;
    this.size += bytes.length;
    return at;
  }

  get(at: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd!, out, done, length - done, at + done);
      if (n === 0) throw new IoError('scratch file of packed codes ended early', { file: this.path, offset: at + done });
      done += n;
    }
    return out;
  }

  remove(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    rmSync(this.path, { force: true });
  }
}

/** Quantize the checkpoint in `modelDir` into a bnb-4bit folder `outDir`. */
export function quantizeCheckpoint(modelDir: string, outDir: string, opts: QuantizeCheckpointOptions = {}): QuantizeCheckpointReport {
  const tracker = progressTracker(opts.progress_callback, 'quantize', resolve(outDir), resolve(modelDir));
  const report = quantizeCheckpointInto(modelDir, outDir, { ...opts, onProgress: (p) => { opts.onProgress?.(p); tracker.update(p.doneBytes, p.totalBytes); } });
  tracker.finish();
  return report;
}

function quantizeCheckpointInto(modelDir: string, outDir: string, opts: QuantizeCheckpointOptions): QuantizeCheckpointReport {
  const config = opts.config ?? resolveQuantizationConfig();
  assertExportable(config);
  const srcDir = resolve(modelDir);
  const out = resolve(outDir);
  if (out === srcDir) throw new ConfigError('output folder is the model folder', { file: out, hint: 'choose another --out' });
  if (existsSync(out) && !statSync(out).isDirectory()) throw new ConfigError('output exists and is not a folder', { file: out });
  if (isNonEmptyDir(out) && opts.force !== true) {
    throw new ConfigError('output folder is not empty', { file: out, hint: 'choose an empty or new folder, or pass --overwrite to replace it' });
  }
  const configFile = join(srcDir, 'config.json');
  if (!existsSync(configFile)) throw new FormatError('model folder has no config.json', { file: srcDir, expected: 'a Hugging Face model folder' });
  const configJson = parsePreservingNumbers(readFileSync(configFile, 'utf8'), configFile);
  if (typeof configJson !== 'object' || configJson === null || Array.isArray(configJson) || configJson instanceof JsonNumberText || configJson instanceof PyFloat) {
    throw new FormatError('config.json is not an object', { file: configFile });
  }
  const cfg = configJson as { [key: string]: PyJson };
  if (cfg.quantization_config !== undefined && cfg.quantization_config !== null) {
    throw new UnsupportedError('the model is already quantized', { file: configFile, field: 'quantization_config', hint: 'quantize an f32/f16/bf16 checkpoint' });
  }

  const source = openCheckpoint(srcDir);
  const temp = join(dirname(out), `.${basename(out)}.partial-${randomBytes(4).toString('hex')}`);
  try {
    const report = convert(source, srcDir, temp, out, cfg, config, opts);
    // Swap into place: an old folder (empty, or replaced with --overwrite) goes aside first.
    moveDirIntoPlace(temp, out, 'checkpoint');
    return report;
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    throw err;
  } finally {
    source.close();
  }
}

interface Planned {
  name: string;
  plan: ModulePlan;
  dtype: DType;
  shape: readonly number[];
  bytes: number;
}

function convert(
  source: TensorSource, srcDir: string, temp: string, out: string, cfg: { [key: string]: PyJson },
  config: QuantizationConfig, opts: QuantizeCheckpointOptions,
): QuantizeCheckpointReport {
  // Plan everything (and refuse what cannot be done) before reading any tensor data.
  const planned: Planned[] = source.names().map((name) => {
    const e = source.entry(name);
    if (name.includes('.quant_state.bitsandbytes__')) {
      throw new UnsupportedError('the checkpoint is already bnb-quantized', { file: e.file, field: name });
    }
    const plan = planModuleQuantization(config, name, e.shape);
    if ((plan.action === 'quant4' || (plan.action === 'keep' && plan.dtype !== null)) && TORCH_DTYPE_OF[e.dtype] === undefined) {
      throw new UnsupportedError('cannot quantize or convert this dtype', { file: e.file, field: name, expected: 'F32, F16 or BF16', got: e.dtype });
    }
    if (plan.action === 'quant4' && e.byteLength === 0) {
      throw new ShapeError('cannot quantize an empty tensor', { file: e.file, field: name, got: `[${e.shape.join(', ')}]` });
    }
    return { name, plan, dtype: e.dtype, shape: e.shape, bytes: e.byteLength };
  });
  const quantBytes = planned.filter((p) => p.plan.action === 'quant4').reduce((s, p) => s + p.bytes, 0);
  const sourceBytes = planned.reduce((s, p) => s + p.bytes, 0);
  const totalBytes = sourceBytes + quantBytes; // quantized weights count in both passes
  let doneBytes = 0;
  const progress = (phase: QuantizeProgress['phase'], tensor: string, bytes: number): void => {
    doneBytes += bytes;
    opts.onProgress?.({ phase, tensor, doneBytes, totalBytes });
  };

  // Pass 1: quantize every weight once; keep its statistics in memory and its packed codes in
  // memory (within the budget) or in a scratch file inside the temp folder.
  mkdirSync(temp, { recursive: true });
  const spill = new PackedSpill(join(temp, SPILL_FILE));
  const tensors: TensorToWrite[] = [];
  let cacheLeft = opts.packedCacheBytes ?? DEFAULT_PACKED_CACHE_BYTES;
  let quantizedParams = 0;
  let quantizedSize = 0;
  const keptLinear: string[] = [];
  for (const p of planned) {
    const { plan } = p;
    if (plan.action === 'keep') {
      const target = plan.dtype === null ? p.dtype : DTYPE_OF_KIND[plan.dtype];
      const data = target === p.dtype ? () => source.readBytes(p.name) : () => castF32(source.readF32(p.name), target);
      tensors.push({ name: p.name, dtype: target, shape: p.shape, data: () => { const d = data(); progress('write', p.name, p.bytes); return d; } });
      if (p.shape.length === 2 && p.name.endsWith('.weight') && !DEFAULT_SKIP_MODULES.some((s) => compilePattern(s)(plan.module))) keptLinear.push(plan.module);
      continue;
    }
    if (plan.action === 'int8') throw new Error('unreachable: refused by assertExportable');
    const q = quantizeTensor(source.readF32(p.name), p.shape, plan.settings, {
      name: p.name, sourceDtype: TORCH_DTYPE_OF[p.dtype], allowNonFinite: config.allowNonFinite, blockwise4: opts.blockwise4,
    });
    quantizedParams += q.numel;
    quantizedSize += q.sizeBytes();
    const parts = bnbTensorsFor(p.name, q, opts.quantStorage ?? 'uint8');
    let packed: () => Uint8Array;
    if (q.packed.length <= cacheLeft) {
      cacheLeft -= q.packed.length;
      const kept = q.packed;
      packed = () => kept;
    } else {
      // Only the offset and length are captured: a closure over `q` would keep every spilled
      // tensor's codes alive until pass 2 (7B shapes: peak RSS 3.8 GiB instead of < 2).
      const at = spill.put(q.packed);
      const length = q.packed.length;
      packed = () => spill.get(at, length);
    }
    // parts[0] is the packed weight; its data is produced when the writer reaches it (pass 2).
    parts[0] = { ...parts[0], data: () => { const d = packed(); progress('write', p.name, p.bytes); return d; } };
    tensors.push(...parts);
    progress('quantize', p.name, p.bytes);
  }

  // Pass 2: the writer streams every tensor in its own order.
  const maxShard = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const outputBytes = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype], 0);
  if (outputBytes > maxShard) writeShardedSafetensors(temp, tensors, { maxShardBytes: maxShard, metadata: { format: 'pt' } });
  else writeSafetensors(join(temp, 'model.safetensors'), tensors, { format: 'pt' });
  spill.remove();

  const skipModules = keptLinear.length > 0 ? ['lm_head', ...new Set(keptLinear)].sort() : null;
  cfg.quantization_config = bnbQuantizationConfig({
    quantType: config.quantType, doubleQuant: config.doubleQuant, computeDtype: config.computeDtype,
    quantStorage: opts.quantStorage ?? 'uint8', skipModules,
  });
  writeFileSync(join(temp, 'config.json'), `${dumpPythonJson(cfg)}\n`);
  for (const f of readdirSync(srcDir)) {
    if (COPIED_FILE.test(f) && statSync(join(srcDir, f)).isFile()) copyFileSync(join(srcDir, f), join(temp, f));
  }
  return {
    outDir: out,
    files: readdirSync(temp).sort(),
    sourceBytes,
    outputBytes,
    quantizedTensors: planned.filter((p) => p.plan.action === 'quant4').length,
    keptTensors: planned.filter((p) => p.plan.action === 'keep').length,
    quantizedParams,
    totalParams: planned.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0),
    bitsPerParameter: quantizedParams > 0 ? (8 * quantizedSize) / quantizedParams : 0,
  };
}

