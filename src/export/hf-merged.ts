// Merged Hugging Face folder: every tensor of the base (dequantized) with the adapter merged
// (W + scale·B·A), as f32, f16 or bf16 safetensors (sharded with an index above maxShardBytes),
// config.json without quantization_config and with the new torch_dtype, tokenizer and generation
// files copied. Written into a hidden temp folder renamed into place at the end. Tensors are read
// and converted one at a time when the safetensors writer reaches them.
// Not here: merging (base.ts), bnb-4bit re-quantization (quant/quantize-checkpoint.ts).

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, NumericError, UnsupportedError } from '../errors.js';
import { f32ToBf16Bits, f32ToF16Bits, type DType } from '../formats/dtype.js';
import { dumpPythonJson, parsePreservingNumbers, type PyJson } from '../formats/py-json.js';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../formats/safetensors-write.js';
import { moveDirIntoPlace } from '../formats/atomic.js';
import type { ExportBase } from './base.js';

export type MergedDtype = 'f32' | 'f16' | 'bf16';
const DTYPES: Readonly<Record<MergedDtype, { st: DType; torch: string }>> = {
  f32: { st: 'F32', torch: 'float32' }, f16: { st: 'F16', torch: 'float16' }, bf16: { st: 'BF16', torch: 'bfloat16' },
};
const COPIED_FILE = /^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|generation_config\.json|chat_template\.(jinja|json)|.*\.model)$/;
const F16_MAX = 65504;

export interface MergedOptions {
  readonly dtype?: MergedDtype;
  /** What to do with values beyond f16's range: refuse (default) or clamp to ±65504. */
  readonly f16Overflow?: 'refuse' | 'clamp';
  readonly maxShardBytes?: number;
  readonly overwrite?: boolean;
  readonly onProgress?: (p: { tensor: string; done: number; total: number }) => void;
}

function encode(x: Float32Array, dtype: MergedDtype, name: string, overflow: 'refuse' | 'clamp'): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let v = x[i];
    if (dtype === 'f16' && Math.abs(v) > F16_MAX) {
      if (overflow === 'refuse') throw new NumericError('value overflows f16', { field: name, got: `${v} at element ${i}`, hint: 'use --dtype bf16 or f32, or clamp' });
      v = Math.sign(v) * F16_MAX;
    }
    out[i] = dtype === 'f16' ? f32ToF16Bits(v) : f32ToBf16Bits(v);
  }
  return new Uint8Array(out.buffer);
}

/** Writes the merged model as an HF folder at `outDir`. */
export function writeMergedFolder(base: ExportBase, read: (name: string) => Float32Array, outDir: string, opts: MergedOptions = {}): string[] {
  if (base.folder === null) throw new UnsupportedError('a merged Hugging Face folder needs a folder base (config.json)', { file: base.path, hint: 'export a GGUF base with --format gguf' });
  const out = resolve(outDir);
  if (existsSync(out) && opts.overwrite !== true) throw new ConfigError('output exists', { file: out, hint: 'pass --overwrite to replace it' });
  const dtype = opts.dtype ?? 'f32';
  const temp = join(dirname(out), `.${basename(out)}.partial-${randomBytes(4).toString('hex')}`);
  mkdirSync(temp);
  try {
    let done = 0;
    const tensors: TensorToWrite[] = base.names.map((name) => ({
      name, dtype: DTYPES[dtype].st, shape: base.shape(name),
      data: () => {
        const bytes = encode(read(name), dtype, name, opts.f16Overflow ?? 'refuse');
        opts.onProgress?.({ tensor: name, done: ++done, total: base.names.length });
        return bytes;
      },
    }));
    const total = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * (dtype === 'f32' ? 4 : 2), 0);
    const maxShard = opts.maxShardBytes ?? 5_000_000_000;
    if (total > maxShard) writeShardedSafetensors(temp, tensors, { maxShardBytes: maxShard, metadata: { format: 'pt' } });
    else writeSafetensors(join(temp, 'model.safetensors'), tensors, { format: 'pt' });
    const cfgFile = join(base.folder, 'config.json');
    const cfg = parsePreservingNumbers(readFileSync(cfgFile, 'utf8'), cfgFile) as { [k: string]: PyJson };
    delete cfg.quantization_config;
    cfg.torch_dtype = DTYPES[dtype].torch;
    writeFileSync(join(temp, 'config.json'), `${dumpPythonJson(cfg)}\n`);
    for (const f of readdirSync(base.folder)) {
      if (COPIED_FILE.test(f) && statSync(join(base.folder, f)).isFile()) copyFileSync(join(base.folder, f), join(temp, f));
    }
    moveDirIntoPlace(temp, out, 'merged model folder');
    return readdirSync(out).sort();
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}
