// `qlora export` run as a real CLI process: a GGUF adapter with --json (the report names the
// file), an existing output refused without --overwrite (exit 2, file unchanged) and replaced
// with it, a merged folder replaced by another dtype with nothing left beside it, one split by
// --max-shard-size (loads to the same logits), and usage errors (bad choice, a dtype the format
// cannot take, a missing SRC) as exit 2 with one line naming the problem and no output written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufFile } from '../../src/formats/gguf/reader.js';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { qlora } from '../helpers/cli.js';
import { fixture } from '../helpers/shared.js';


const GOLDEN = fixture('golden', 'stories260K-lora');
const MODEL = fixture('models', 'stories260K');

test('qlora export: --json report, --overwrite, merged replacement, usage errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-export-cli-'));
  try {
    const gguf = join(dir, 'adapter.gguf');
    const first = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'gguf-adapter', '--out', gguf, '--json');
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as { out: string; tensorTypes: unknown[] };
    assert.equal(report.out, gguf);
    assert.ok(Array.isArray(report.tensorTypes));
    assert.equal(readGgufFile(gguf).tensors.length, 70);
    const bytes = readFileSync(gguf);

    const again = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'gguf-adapter', '--out', gguf);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /^qlora: ConfigError: .*output exists.*--overwrite/m);
    assert.ok(readFileSync(gguf).equals(bytes));
    const replaced = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'gguf-adapter', '--out', gguf, '--overwrite');
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.match(replaced.stdout, /^wrote /);

    const merged = join(dir, 'merged');
    assert.equal((await qlora('export', GOLDEN, '--model', MODEL, '--format', 'merged', '--dtype', 'f16', '--out', merged)).code, 0);
    const f16Size = readFileSync(join(merged, 'model.safetensors')).byteLength;
    const f32 = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'merged', '--dtype', 'f32', '--out', merged, '--overwrite');
    assert.equal(f32.code, 0, f32.stderr);
    assert.ok(readFileSync(join(merged, 'model.safetensors')).byteLength > 1.9 * f16Size);
    assert.match(readFileSync(join(merged, 'config.json'), 'utf8'), /"torch_dtype": "float32"/);
    const sharded = join(dir, 'sharded');
    const shards = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'merged', '--max-shard-size', '300000', '--out', sharded);
    assert.equal(shards.code, 0, shards.stderr);
    const index = JSON.parse(readFileSync(join(sharded, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const files = [...new Set(Object.values(index.weight_map))].sort();
    assert.ok(files.length >= 3, `${files.length} shards`);
    assert.deepEqual(readdirSync(sharded).filter((f) => f.endsWith('.safetensors')).sort(), files);
    const logitsOf = async (folder: string): Promise<Float32Array> => {
      const m = await loadModel(folder, { kernels: new RefKernels(), quant: 'none' });
      try {
        return Float32Array.from(m.forward(Int32Array.from([1, 385, 260]), 1, 3, { logits: 'last' }));
      } finally {
        m.dispose();
      }
    };
    assert.deepEqual(await logitsOf(sharded), await logitsOf(merged));
    const badShard = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'merged', '--max-shard-size', '0', '--out', join(dir, 'w'));
    assert.equal(badShard.code, 2);
    assert.match(badShard.stderr, /--max-shard-size/);

    const badChoice = await qlora('export', GOLDEN, '--format', 'onnx', '--out', join(dir, 'x'));
    assert.equal(badChoice.code, 2);
    assert.match(badChoice.stderr, /argument 'onnx' is invalid/);
    const badDtype = await qlora('export', GOLDEN, '--model', MODEL, '--format', 'merged', '--dtype', 'q4_0', '--out', join(dir, 'y'));
    assert.equal(badDtype.code, 2);
    assert.match(badDtype.stderr, /--dtype q4_0 is not available for --format merged/);
    const missing = await qlora('export', join(dir, 'nothing-here'), '--format', 'gguf', '--out', join(dir, 'z.gguf'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nothing-here/);
    assert.equal(missing.stderr.trim().split('\n').length, 1, 'one line without --verbose');
    assert.deepEqual(readdirSync(dir).sort(), ['adapter.gguf', 'merged', 'sharded']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
