// What an export reads: a base model (Hugging Face folder, bitsandbytes-4bit folder or llama GGUF
// file) as HF-named f32 tensors read one at a time, plus its tokenizer files, and optionally a PEFT
// adapter checked against it, merged into the tensors on the fly (W + scale·B·A). Also resolves
// the command's SRC: a model, an adapter folder (needs the base) or a fine-tuning run folder.
// Not here: writing any format (hf-export.ts, gguf-model.ts, gguf-adapter.ts).

import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError, FormatError, IoError, ShapeError } from '../errors.js';
import { GgufTensorSource } from '../formats/gguf/llama.js';
import { ggufTokenizerObjects } from '../formats/gguf/tokenizer.js';
import type { GgufFile } from '../formats/gguf/types.js';
import type { ModelConfig } from '../formats/hf-config.js';
import { openHfFolder } from '../formats/hf-folder.js';
import { isJsonObject, parseJsonStrict } from '../formats/json-strict.js';
import { ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, readPeftAdapter, type LinearShape, type PeftAdapter } from '../formats/peft.js';
import type { TensorSource } from '../formats/safetensors.js';
import { CHAT_TEMPLATE_FILE, TOKENIZER_CONFIG_JSON, TOKENIZER_JSON } from '../formats/tokenizer.js';
import { dequantizeRangeRef } from '../quant/blockwise.js';
import { safetensorsWeightSource } from '../model/load.js';
import type { WeightSource } from '../model/build.js';

export type BaseKind = 'hf' | 'bnb4' | 'gguf';

/** tokenizer.json, tokenizer_config.json and the chat template of the base, as objects. */
export interface TokenizerFiles {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly chatTemplate: string | null;
}

export interface ExportBase {
  readonly path: string;
  readonly kind: BaseKind;
  readonly config: ModelConfig;
  /** Model name for metadata (folder or file name). */
  readonly name: string;
  /** HF tensor names in sorted order (bnb-4bit companions hidden, weights dequantized). */
  readonly names: readonly string[];
  shape(name: string): readonly number[];
  /** f32 copy of a tensor (dequantized; GGUF Q/K rows in HF order). */
  readF32(name: string): Float32Array;
  readonly tokenizer: TokenizerFiles | null;
  /** The HF folder (for files copied as they are), null for GGUF. */
  readonly folder: string | null;
  /** The GGUF file, null for folders. */
  readonly gguf: GgufFile | null;
  close(): void;
}

const GGUF_EXTENSION = '.gguf';
/** The fine-tuning run layout: `<run>/run.json` {"model": base} and `<run>/adapter/`. */
export const RUN_JSON = 'run.json';
export const RUN_ADAPTER_DIR = 'adapter';

function readJsonObject(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IoError(`cannot read ${what}`, { file, cause });
  }
  const v = parseJsonStrict(text, file, what);
  if (!isJsonObject(v)) throw new FormatError(`${what} is not a JSON object`, { file });
  return v;
}

function folderTokenizer(dir: string, chatTemplate: string | null): TokenizerFiles | null {
  const tj = join(dir, TOKENIZER_JSON);
  if (!existsSync(tj)) return null;
  const tc = join(dir, TOKENIZER_CONFIG_JSON);
  return {
    tokenizerJson: readJsonObject(tj, TOKENIZER_JSON),
    tokenizerConfig: existsSync(tc) ? readJsonObject(tc, TOKENIZER_CONFIG_JSON) : {},
    chatTemplate,
  };
}

function weightSourceBase(ws: WeightSource, src: TensorSource): Pick<ExportBase, 'names' | 'shape' | 'readF32'> {
  const pre = ws.prequantized ?? new Map();
  const cache = new Map<string, readonly number[]>();
  const shape = (name: string): readonly number[] => {
    const q = pre.get(name);
    if (q === undefined) return src.entry(name).shape;
    let s = cache.get(name);
    if (s === undefined) {
      const w = q();
      s = [w.rows, w.cols];
      cache.set(name, s);
    }
    return s;
  };
  return {
    // A bnb-4bit folder's packed weights are hidden from the plain names: listed here as weights.
    names: [...new Set([...ws.names(), ...pre.keys()])].sort(),
    shape,
    readF32: (name) => {
      const q = pre.get(name);
      if (q === undefined) return ws.readF32(name);
      const w = q();
      const out = new Float32Array(w.rows * w.cols);
      dequantizeRangeRef(out, w, 0, out.length);
      return out;
    },
  };
}

/** Opens a model folder or GGUF file as an export base. */
export function openExportBase(path: string): ExportBase {
  const full = resolve(path);
  let isDir: boolean;
  try {
    isDir = statSync(full).isDirectory();
  } catch (cause) {
    throw new IoError('no such model file or folder', { file: full, cause });
  }
  if (!isDir) {
    if (!full.toLowerCase().endsWith(GGUF_EXTENSION)) throw new IoError('not a model folder or GGUF file', { file: full });
    const src = GgufTensorSource.open(full);
    let tokenizer: TokenizerFiles | null = null;
    if (src.file.metadata.has('tokenizer.ggml.model')) {
      const objs = ggufTokenizerObjects(src.file);
      const tmpl = src.file.metadata.get('tokenizer.chat_template');
      tokenizer = { tokenizerJson: objs.tokenizerJson, tokenizerConfig: objs.tokenizerConfig, chatTemplate: tmpl?.type === 8 ? (tmpl.value as string) : null };
    }
    return {
      path: full, kind: 'gguf', config: src.config, name: basename(full).replace(/\.gguf$/i, ''),
      ...weightSourceBase(safetensorsWeightSource(src, full), src),
      tokenizer, folder: null, gguf: src.file, close: () => src.close(),
    };
  }
  const folder = openHfFolder(full);
  try {
    const template = existsSync(join(full, CHAT_TEMPLATE_FILE)) ? readFileSync(join(full, CHAT_TEMPLATE_FILE), 'utf8') : (folder.tokenizer?.chatTemplate ?? null);
    return {
      path: full, kind: folder.isBnb4bit ? 'bnb4' : 'hf', config: folder.config, name: basename(full),
      ...weightSourceBase(safetensorsWeightSource(folder.weights, full), folder.weights),
      tokenizer: folderTokenizer(full, template), folder: full, gguf: null, close: () => folder.weights.close(),
    };
  } catch (err) {
    folder.weights.close();
    throw err;
  }
}

/** The Linear shapes of a base (every 2-D `<module>.weight` but the embeddings), for adapter checks. */
export function baseLinearShapes(base: ExportBase): Map<string, LinearShape> {
  const out = new Map<string, LinearShape>();
  for (const name of base.names) {
    if (!name.endsWith('.weight') || name.endsWith('embed_tokens.weight')) continue;
    const s = base.shape(name);
    if (s.length === 2) out.set(name.slice(0, -'.weight'.length), { inFeatures: s[1], outFeatures: s[0] });
  }
  return out;
}

/** Reads the adapter in `dir` and checks it against the base (names and shapes; typed errors). */
export function readAdapterFor(base: ExportBase, dir: string): PeftAdapter {
  return readPeftAdapter(dir, baseLinearShapes(base));
}

/** ΔW = scale·B·A ([out, in]) added into `w` in place; sums in f64, one rounding per element. */
export function addLoraDelta(w: Float32Array, m: { readonly r: number; readonly scale: number; readonly A: Float32Array; readonly B: Float32Array }, out: number, inF: number): void {
  if (w.length !== out * inF || m.A.length !== m.r * inF || m.B.length !== out * m.r) {
    throw new ShapeError('adapter and weight sizes disagree', { expected: `[${out}, ${inF}] weight, r = ${m.r}`, got: `${w.length}, ${m.A.length}, ${m.B.length} values` });
  }
  const row = new Float64Array(inF);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < m.r; k++) {
      const b = m.B[o * m.r + k];
      if (b === 0) continue;
      const a0 = k * inF;
      for (let i = 0; i < inF; i++) row[i] += b * m.A[a0 + i];
    }
    const w0 = o * inF;
    for (let i = 0; i < inF; i++) w[w0 + i] = w[w0 + i] + m.scale * row[i];
  }
}

/** readF32 of the base with the adapter merged into the weights it targets. */
export function mergedReader(base: ExportBase, adapter: PeftAdapter | null): (name: string) => Float32Array {
  const byWeight = new Map((adapter?.modules ?? []).map((m) => [`${m.module}.weight`, m]));
  return (name) => {
    const w = base.readF32(name);
    const m = byWeight.get(name);
    if (m !== undefined) {
      const [out, inF] = base.shape(name);
      addLoraDelta(w, m, out, inF);
    }
    return w;
  };
}

/** What SRC names, resolved: the base model path and the adapter folder, if any. */
export interface ResolvedSource {
  readonly kind: 'model' | 'adapter' | 'run';
  readonly modelPath: string;
  readonly adapterDir: string | null;
}

function isAdapterFolder(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_NAME));
}

/**
 * SRC of `qlora export`: a model folder or GGUF file; an adapter folder (base = `model`); or a
 * run folder (`adapter/` + `run.json`, whose "model" is the default base, relative paths taken
 * from the run folder).
 */
export function resolveExportSource(src: string, model: string | undefined): ResolvedSource {
  const full = resolve(src);
  if (!existsSync(full)) throw new IoError('no such file or folder', { file: full, hint: 'SRC is a model folder, a .gguf file, an adapter folder or a run folder' });
  const isDir = statSync(full).isDirectory();
  if (isDir && existsSync(join(full, RUN_JSON)) && isAdapterFolder(join(full, RUN_ADAPTER_DIR))) {
    const runFile = join(full, RUN_JSON);
    const run = readJsonObject(runFile, RUN_JSON);
    let base = model;
    if (base === undefined) {
      if (typeof run.model !== 'string' || run.model.length === 0) throw new FormatError('run.json does not name the base model', { file: runFile, field: 'model', expected: 'a path', hint: 'pass --model BASE' });
      base = isAbsolute(run.model) ? run.model : join(full, run.model);
    }
    return { kind: 'run', modelPath: resolve(base), adapterDir: join(full, RUN_ADAPTER_DIR) };
  }
  if (isDir && isAdapterFolder(full)) {
    if (model === undefined) {
      throw new ConfigError('SRC is an adapter folder: --model must name its base model', { file: full, field: '--model', hint: `${ADAPTER_WEIGHTS_NAME} holds only the low-rank weights` });
    }
    return { kind: 'adapter', modelPath: resolve(model), adapterDir: full };
  }
  if (model !== undefined && resolve(model) !== full) {
    throw new ConfigError('--model is only for adapter or run folders', { file: full, field: '--model', hint: 'SRC is already a model' });
  }
  return { kind: 'model', modelPath: full, adapterDir: null };
}

/** The folder a file output goes into, checked to exist (for temp files beside it). */
export function outputParent(out: string): string {
  const parent = dirname(resolve(out));
  if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new IoError('the output folder does not exist', { file: parent });
  return parent;
}
