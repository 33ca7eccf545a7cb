// `qlora inspect FILE|DIR... [--json]`: what a safetensors file (or sharded index), a Hugging Face model
// folder or a GGUF file holds: architecture and dimensions, tensor count, dtype histogram,
// parameter count, size, quantization. Reads headers and small JSON files only (plus the few-byte
// bitsandbytes quant_state tensors), never tensor data. Prints an aligned table, or one JSON record.

import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FormatError } from '../errors.js';
import { openCheckpoint, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, type TensorSource } from '../formats/safetensors.js';
import { findBnb4bitWeights, openHfFolder } from '../formats/hf-folder.js';
import type { ModelConfig } from '../formats/hf-config.js';
import { readGgufFile } from '../formats/gguf/reader.js';
import { ggmlTypeName } from '../formats/gguf/ggml-types.js';
import { GgufValueType, type GgufFile, type GgufValue } from '../formats/gguf/types.js';
import { parseQuantStateJson } from '../quant/quant-state.js';

export interface DtypeStats {
  tensors: number;
  parameters: number;
  bytes: number;
}

export interface InspectReport {
  path: string;
  format: 'safetensors' | 'hf-folder' | 'gguf';
  /** Bytes on disk of the weight files (all shards). */
  bytes: number;
  tensorCount: number;
  /** Logical parameters: a bnb 4-bit weight counts its original elements; its statistics do not count. */
  parameterCount: number;
  /** Storage types (safetensors dtypes or ggml types) of the stored tensors. */
  dtypes: Record<string, DtypeStats>;
  metadata?: Record<string, string>;
  model?: {
    architecture: string;
    layers: number | null;
    hiddenSize: number | null;
    intermediateSize: number | null;
    heads: number | null;
    kvHeads: number | null;
    headDim: number | null;
    vocabSize: number | null;
    contextLength: number | null;
    ropeTheta: number | null;
    ropeType?: string;
    tieWordEmbeddings?: boolean;
    torchDtype?: string | null;
  };
  quantization: null | {
    method: 'bitsandbytes-4bit' | 'gguf';
    quantType?: string;
    doubleQuant?: boolean;
    blockSize?: number;
    computeDtype?: string;
    quantizedLayers?: number;
    fileType?: string;
  };
  tokenizer?: { vocabSize: number; bosTokenId: number | null; eosTokenIds: number[]; chatTemplate: boolean } | null;
  gguf?: { version: number; alignment: number; metadataKeys: number; name: string | null; type: string | null };
  /** GGUF adapter files (general.type "adapter"). */
  adapter?: { architecture: string; type: string | null; loraAlpha: number | null };
}

/** `general.file_type` names (llama.cpp `llama_ftype`; FORMATS.md §7.7), for display only. */
const GGUF_FILE_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'ALL_F32', 1: 'MOSTLY_F16', 2: 'MOSTLY_Q4_0', 3: 'MOSTLY_Q4_1', 7: 'MOSTLY_Q8_0', 15: 'MOSTLY_Q4_K_M',
  18: 'MOSTLY_Q6_K', 25: 'MOSTLY_IQ4_NL', 32: 'MOSTLY_BF16',
};

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function addStats(hist: Record<string, DtypeStats>, key: string, parameters: number, bytes: number): void {
  const s = (hist[key] ??= { tensors: 0, parameters: 0, bytes: 0 });
  s.tensors += 1;
  s.parameters += parameters;
  s.bytes += bytes;
}

/** Tensor statistics of a safetensors checkpoint, bitsandbytes 4-bit layers counted logically. */
function tensorStats(source: TensorSource): Pick<InspectReport, 'tensorCount' | 'parameterCount' | 'dtypes' | 'quantization'> {
  const names = source.names();
  const bnb = findBnb4bitWeights(names);
  const auxiliary = new Set<string>();
  const logicalElements = new Map<string, number>();
  let blockSize: number | undefined;
  let doubleQuant = false;
  for (const ref of bnb) {
    const state = parseQuantStateJson(source.readBytes(ref.quantStateTensor), { file: source.entry(ref.quantStateTensor).file, field: ref.quantStateTensor });
    logicalElements.set(`${ref.module}.weight`, product(state.shape));
    blockSize = state.blockSize;
    doubleQuant ||= state.nested !== undefined;
    for (const suffix of ['absmax', 'quant_map', 'nested_absmax', 'nested_quant_map']) auxiliary.add(`${ref.module}.weight.${suffix}`);
    auxiliary.add(ref.quantStateTensor);
  }
  const dtypes: Record<string, DtypeStats> = {};
  let parameterCount = 0;
  for (const name of names) {
    const e = source.entry(name);
    const params = auxiliary.has(name) ? 0 : (logicalElements.get(name) ?? product(e.shape));
    parameterCount += params;
    addStats(dtypes, e.dtype, params, e.byteLength);
  }
  const quantization: InspectReport['quantization'] =
    bnb.length === 0 ? null : { method: 'bitsandbytes-4bit', quantType: bnb[0].quantType, doubleQuant, blockSize, quantizedLayers: bnb.length };
  return { tensorCount: names.length, parameterCount, dtypes, quantization };
}

function checkpointBytes(source: TensorSource): number {
  const files = new Set(source.names().map((n) => source.entry(n).file));
  let total = 0;
  for (const f of files) total += statSync(f).size;
  return total;
}

function modelSummary(c: ModelConfig): NonNullable<InspectReport['model']> {
  return {
    architecture: `${c.architecture} (${c.architectureClass})`,
    layers: c.numLayers,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
    vocabSize: c.vocabSize,
    contextLength: c.maxPositionEmbeddings,
    ropeTheta: c.rope.theta,
    ropeType: c.rope.type,
    tieWordEmbeddings: c.tieWordEmbeddings,
    torchDtype: c.torchDtype,
  };
}

function inspectSafetensors(path: string): InspectReport {
  const source = openCheckpoint(path);
  try {
    return { path, format: 'safetensors', bytes: checkpointBytes(source), ...tensorStats(source), metadata: { ...source.metadata } };
  } finally {
    source.close();
  }
}

function inspectFolder(dir: string): InspectReport {
  const folder = openHfFolder(dir);
  try {
    const stats = tensorStats(folder.weights);
    const q = folder.config.quantization;
    if (stats.quantization !== null && q !== null) stats.quantization.computeDtype = q.computeDtype;
    const t = folder.tokenizer;
    return {
      path: dir,
      format: 'hf-folder',
      bytes: checkpointBytes(folder.weights),
      ...stats,
      metadata: { ...folder.weights.metadata },
      model: modelSummary(folder.config),
      tokenizer: t === null ? null : { vocabSize: t.vocabSize, bosTokenId: t.bosTokenId, eosTokenIds: [...t.eosTokenIds], chatTemplate: t.chatTemplate !== null },
    };
  } finally {
    folder.weights.close();
  }
}

/** A scalar metadata value for display (64-bit integers as numbers), or null. */
function ggufScalar(file: GgufFile, key: string): number | string | boolean | null {
  const v: GgufValue | undefined = file.metadata.get(key);
  if (v === undefined || v.type === GgufValueType.ARRAY) return null;
  return typeof v.value === 'bigint' ? Number(v.value) : v.value;
}

function ggufNumber(file: GgufFile, key: string): number | null {
  const v = ggufScalar(file, key);
  return typeof v === 'number' ? v : null;
}

function inspectGguf(path: string): InspectReport {
  const file = readGgufFile(path);
  const dtypes: Record<string, DtypeStats> = {};
  let parameterCount = 0;
  for (const t of file.tensors) {
    const n = product(t.ne);
    parameterCount += n;
    addStats(dtypes, ggmlTypeName(t.type), n, t.nbytes);
  }
  const arch = ggufScalar(file, 'general.architecture');
  const a = typeof arch === 'string' ? arch : '';
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  const vocabFromTokens = tokens !== undefined && tokens.type === GgufValueType.ARRAY ? tokens.value.values.length : null;
  const heads = ggufNumber(file, `${a}.attention.head_count`);
  const embedding = ggufNumber(file, `${a}.embedding_length`);
  const fileType = ggufNumber(file, 'general.file_type');
  const name = ggufScalar(file, 'general.name');
  const type = ggufScalar(file, 'general.type');
  const gguf = {
    version: file.version,
    alignment: file.alignment,
    metadataKeys: file.metadata.size,
    name: typeof name === 'string' ? name : null,
    type: typeof type === 'string' ? type : null,
  };
  const quantization = {
    method: 'gguf' as const,
    fileType: fileType === null ? 'unspecified' : `${fileType}${GGUF_FILE_TYPE_NAMES[fileType] !== undefined ? ` (${GGUF_FILE_TYPE_NAMES[fileType]})` : ''}`,
  };
  const base = { path, format: 'gguf' as const, bytes: file.fileSize, tensorCount: file.tensors.length, parameterCount, dtypes, gguf, quantization };
  if (type === 'adapter') {
    const adapterType = ggufScalar(file, 'adapter.type');
    return {
      ...base,
      adapter: { architecture: a, type: typeof adapterType === 'string' ? adapterType : null, loraAlpha: ggufNumber(file, 'adapter.lora.alpha') },
    };
  }
  return {
    ...base,
    model: {
      architecture: a === '' ? 'unknown' : a,
      layers: ggufNumber(file, `${a}.block_count`),
      hiddenSize: embedding,
      intermediateSize: ggufNumber(file, `${a}.feed_forward_length`),
      heads,
      kvHeads: ggufNumber(file, `${a}.attention.head_count_kv`) ?? heads,
      headDim: ggufNumber(file, `${a}.attention.key_length`) ?? (heads !== null && embedding !== null ? embedding / heads : null),
      vocabSize: ggufNumber(file, `${a}.vocab_size`) ?? vocabFromTokens,
      contextLength: ggufNumber(file, `${a}.context_length`),
      ropeTheta: ggufNumber(file, `${a}.rope.freq_base`),
    },
  };
}

function startsWithGgufMagic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === 'GGUF';
  } finally {
    closeSync(fd);
  }
}

/** Inspects a path: model folder, folder of safetensors weights, GGUF file or safetensors file. */
export function inspectPath(input: string): InspectReport {
  const path = resolve(input);
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined) throw new FormatError('no such file or folder', { file: path });
  if (st.isDirectory()) {
    const files = readdirSync(path);
    if (files.includes('config.json')) return inspectFolder(path);
    // A folder of weights without config.json (e.g. a PEFT adapter): its one safetensors file.
    const safetensors = files.filter((f) => f.endsWith('.safetensors'));
    if (!files.includes(SAFE_WEIGHTS_NAME) && !files.includes(SAFE_WEIGHTS_INDEX_NAME) && safetensors.length === 1) {
      return inspectSafetensors(join(path, safetensors[0]));
    }
    return inspectSafetensors(path);
  }
  if (startsWithGgufMagic(path)) return inspectGguf(path);
  return inspectSafetensors(path);
}

// ------------------------------------------------------------------------------------------------
// Rendering

const int = (n: number): string => n.toLocaleString('en-US');

function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function alignRows(rows: readonly (readonly string[])[], rightAligned: readonly boolean[]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (rightAligned[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

/** The human-readable table. */
export function renderReport(r: InspectReport): string {
  const kv: [string, string][] = [
    ['path', r.path],
    ['format', r.format],
    ['size', `${int(r.bytes)} bytes (${humanBytes(r.bytes)})`],
    ['tensors', int(r.tensorCount)],
    ['parameters', `${int(r.parameterCount)} (${humanCount(r.parameterCount)})`],
  ];
  if (r.gguf !== undefined) {
    kv.push(['gguf', `version ${r.gguf.version}, alignment ${r.gguf.alignment}, ${r.gguf.metadataKeys} metadata keys`]);
    if (r.gguf.name !== null) kv.push(['name', r.gguf.name]);
    if (r.gguf.type !== null) kv.push(['type', r.gguf.type]);
  }
  if (r.adapter !== undefined) {
    kv.push(['adapter', `${r.adapter.type ?? 'unknown'} for ${r.adapter.architecture || 'unknown'}, alpha ${r.adapter.loraAlpha ?? '?'}`]);
  }
  if (r.model !== undefined) {
    const m = r.model;
    const dim = (v: number | null): string => (v === null ? '?' : String(v));
    kv.push(['architecture', m.architecture]);
    kv.push(['layers', dim(m.layers)]);
    kv.push(['hidden / ffn', `${dim(m.hiddenSize)} / ${dim(m.intermediateSize)}`]);
    kv.push(['heads / kv / dim', `${dim(m.heads)} / ${dim(m.kvHeads)} / ${dim(m.headDim)}`]);
    kv.push(['vocab', dim(m.vocabSize)]);
    kv.push(['context', dim(m.contextLength)]);
    kv.push(['rope', `theta ${m.ropeTheta ?? 'unspecified'}${m.ropeType !== undefined ? `, ${m.ropeType}` : ''}`]);
    if (m.tieWordEmbeddings !== undefined) kv.push(['tied embeddings', String(m.tieWordEmbeddings)]);
    if (m.torchDtype !== undefined) kv.push(['torch dtype', m.torchDtype ?? 'unspecified']);
  }
  const q = r.quantization;
  if (q === null) kv.push(['quantization', 'none']);
  else if (q.method === 'gguf') kv.push(['quantization', `gguf file_type ${q.fileType}`]);
  else {
    kv.push([
      'quantization',
      `bitsandbytes 4-bit ${q.quantType}, block ${q.blockSize}, double quant ${q.doubleQuant ? 'yes' : 'no'}, ` +
        `${q.quantizedLayers} layers${q.computeDtype !== undefined ? `, compute ${q.computeDtype}` : ''}`,
    ]);
  }
  if (r.tokenizer !== undefined) {
    const t = r.tokenizer;
    kv.push(['tokenizer', t === null ? 'none' : `${t.vocabSize} tokens, bos ${t.bosTokenId ?? '-'}, eos ${t.eosTokenIds.join(',') || '-'}, chat template ${t.chatTemplate ? 'yes' : 'no'}`]);
  }
  if (r.metadata !== undefined && Object.keys(r.metadata).length > 0) {
    kv.push(['metadata', Object.entries(r.metadata).map(([k, v]) => `${k}=${v}`).join(', ')]);
  }
  const head = alignRows(kv.map(([k, v]) => [k, v]), [false, false]);
  const dtypeRows: string[][] = [['dtype', 'tensors', 'parameters', 'bytes']];
  for (const [d, s] of Object.entries(r.dtypes).sort((a, b) => b[1].bytes - a[1].bytes)) {
    dtypeRows.push([d, int(s.tensors), int(s.parameters), int(s.bytes)]);
  }
  return [...head, '', ...alignRows(dtypeRows, [false, true, true, true])].join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show what a safetensors file, GGUF file or Hugging Face model folder holds')
    .argument('<paths...>', '.safetensors files, .gguf files, sharded index .json files or model folders')
    .option('--json', 'print a JSON record instead of a table (an array of records for several paths)')
    .action((paths: string[], opts: { json?: boolean }) => {
      const reports = paths.map(inspectPath);
      if (opts.json === true) {
        process.stdout.write(`${JSON.stringify(reports.length === 1 ? reports[0] : reports, null, 2)}\n`);
      } else {
        process.stdout.write(reports.map(renderReport).join('\n'));
      }
    });
}
