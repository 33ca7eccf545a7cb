// Export layer: one entry point, exportModel, over the writers (PEFT adapter, merged HF folder,
// bnb-4bit folder, GGUF model, GGUF adapter). Above train/, below cli/.
import { mkdirSync, existsSync, rmSync, mkdtempSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { writePeftAdapter } from '../formats/peft-write.js';
import { quantizeCheckpoint } from '../quant/quantize-checkpoint.js';
import { mergedReader, openExportBase, readAdapterFor, resolveExportSource } from './base.js';
import { writeGgufAdapter, type GgufAdapterType } from './gguf-adapter.js';
import { writeGgufModel, type GgufModelType, type TensorTypeChoice } from './gguf-model.js';
import { writeMergedFolder, type MergedDtype } from './hf-merged.js';
import { progressTracker, type WithProgressCallback } from '../progress.js';

export * from './base.js';
export { writeGgufModel, chooseTensorType, type GgufModelType, type TensorTypeChoice } from './gguf-model.js';
export { writeGgufAdapter, type GgufAdapterType } from './gguf-adapter.js';
export { writeMergedFolder, type MergedDtype, type MergedOptions } from './hf-merged.js';
export { ggufTokenizerMetadata } from './gguf-tokenizer.js';

export type ExportFormat = 'peft' | 'merged' | 'bnb4' | 'gguf' | 'gguf-adapter';

export interface ExportOptions extends WithProgressCallback {
  readonly format: ExportFormat;
  readonly out: string;
  readonly model?: string;
  readonly dtype?: GgufModelType;
  readonly overwrite?: boolean;
  readonly f16Overflow?: 'refuse' | 'clamp';
  /** merged and bnb4: split model.safetensors into shards (with an index) above this many bytes (default 5 GB). */
  readonly maxShardBytes?: number;
  readonly onProgress?: (p: { tensor: string; done: number; total: number }) => void;
}

export interface ExportReport {
  readonly out: string;
  readonly tensorTypes: readonly TensorTypeChoice[];
}

/** Exports SRC (model, adapter folder or run folder) as `opts.format` at `opts.out`. */
export function exportModel(src: string, opts: ExportOptions): ExportReport {
  const tracker = progressTracker(opts.progress_callback, 'export', resolve(opts.out), resolve(opts.out));
  const report = exportTo(src, { ...opts, onProgress: (p) => { opts.onProgress?.(p); tracker.update(p.done, p.total); } });
  tracker.finish();
  return report;
}

function exportTo(src: string, opts: ExportOptions): ExportReport {
  const out = resolve(opts.out);
  if (existsSync(out) && opts.overwrite !== true) throw new ConfigError('output exists', { file: out, hint: 'pass --overwrite to replace it' });
  const source = resolveExportSource(src, opts.model);
  const base = openExportBase(source.modelPath);
  try {
    const adapter = source.adapterDir === null ? null : readAdapterFor(base, source.adapterDir);
    const needAdapter = (): NonNullable<typeof adapter> => {
      if (adapter === null) throw new ConfigError(`--format ${opts.format} needs an adapter or run folder as SRC`, { file: src });
      return adapter;
    };
    const floatDtype = (): MergedDtype => {
      const d = opts.dtype ?? 'f32';
      if (d !== 'f32' && d !== 'f16' && d !== 'bf16') throw new ConfigError(`--dtype ${d} is not available for --format ${opts.format}`, { field: '--dtype', expected: 'f32, f16 or bf16' });
      return d;
    };
    switch (opts.format) {
      case 'gguf':
        return { out, tensorTypes: writeGgufModel(base, mergedReader(base, adapter), out, opts.dtype ?? 'f16', { onProgress: opts.onProgress }) };
      case 'gguf-adapter':
        writeGgufAdapter(needAdapter(), base.config, out, { type: floatDtype() as GgufAdapterType });
        return { out, tensorTypes: [] };
      case 'merged':
        writeMergedFolder(base, mergedReader(base, adapter), out, { dtype: floatDtype(), overwrite: opts.overwrite, f16Overflow: opts.f16Overflow, maxShardBytes: opts.maxShardBytes, onProgress: opts.onProgress });
        return { out, tensorTypes: [] };
      case 'bnb4': {
        const scratch = mkdtempSync(join(dirname(out), '.qlora-export-'));
        try {
          writeMergedFolder(base, mergedReader(base, adapter), join(scratch, 'merged'), { dtype: 'f32' });
          quantizeCheckpoint(join(scratch, 'merged'), out, { force: opts.overwrite, maxShardBytes: opts.maxShardBytes });
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
        return { out, tensorTypes: [] };
      }
      case 'peft': {
        const a = needAdapter();
        const shapes = new Map(a.modules.map((m) => [m.module, m]));
        const c = a.config;
        const targets = [...new Set(a.modules.map((m) => m.module.split('.').pop()!))];
        mkdirSync(out, { recursive: true });
        writePeftAdapter(out, { r: c.r, loraAlpha: c.loraAlpha, useRslora: c.useRslora, loraDropout: c.loraDropout, targetModules: targets, baseModelNameOrPath: c.baseModelNameOrPath, rankPattern: c.rankPattern, alphaPattern: c.alphaPattern },
          a.modules.map((m) => ({ module: m.module, r: m.r, A: m.A, B: m.B, inFeatures: m.A.length / m.r, outFeatures: shapes.get(m.module)!.B.length / m.r })), { dtype: floatDtype() });
        return { out, tensorTypes: [] };
      }
      default:
        throw new ConfigError('unknown export format', { field: '--format', got: String(opts.format), expected: 'peft, merged, bnb4, gguf or gguf-adapter' });
    }
  } finally {
    base.close();
  }
}
