// Progress off a terminal (the tests' stderr is a pipe): about ten plain lines with percentage,
// rate and ETA, ending at 100 %, whatever the number of updates; none with --quiet or --no-progress.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { demoModelPath } from '../../src/demo.js';
import { qlora } from '../helpers/cli.js';

test('quantize and export report progress as at most ~ten plain lines off a terminal, none when quiet', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qlora-progress-'));
  try {
    const q = await qlora('quantize', demoModelPath(), '--out', join(dir, 'nf4'));
    assert.equal(q.code, 0, q.stderr);
    const lines = q.stderr.split('\n').filter((l) => l.startsWith('quantize '));
    assert.ok(lines.length >= 2 && lines.length <= 11, lines.join('\n'));
    for (const l of lines) assert.match(l, /^quantize \d+% [\d.]+\/[\d.]+ MiB, [\d.]+ MiB\/s, ETA ([\d.]+s|\?)/);
    assert.match(lines.at(-1)!, /^quantize 100% /);
    const e = await qlora('export', join(dir, 'nf4'), '--format', 'gguf', '--out', join(dir, 'm.gguf'));
    assert.equal(e.code, 0, e.stderr);
    const exportLines = e.stderr.split('\n').filter((l) => l.startsWith('export '));
    assert.ok(exportLines.length <= 11 && exportLines.at(-1)!.startsWith('export 100% 38/38 tensors'), e.stderr);
    const quiet = await qlora('--quiet', 'export', join(dir, 'nf4'), '--format', 'gguf', '--out', join(dir, 'm.gguf'), '--overwrite');
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(quiet.stderr, '');
    const none = await qlora('quantize', demoModelPath(), '--out', join(dir, 'nf4'), '--overwrite', '--no-progress');
    assert.equal(none.stderr, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
