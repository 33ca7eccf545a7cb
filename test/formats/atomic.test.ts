// Atomic outputs: writeFileAtomic leaves the old file when the producer throws; moveDirIntoPlace
// replaces a folder without a moment where neither the old nor the new one is at its path, and a
// failed move leaves the old folder where it was, with nothing hidden left beside it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { IoError } from '../../src/errors.js';
import { moveDirIntoPlace, writeFileAtomic } from '../../src/formats/atomic.js';

function folderWith(path: string, files: Record<string, string>): void {
  mkdirSync(path, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(path, name), text);
}

describe('atomic outputs', () => {
  it('writeFileAtomic keeps the old file when the producer throws', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-atomic-'));
    try {
      const file = join(dir, 'out.bin');
      writeFileSync(file, 'old');
      assert.throws(() => writeFileAtomic(file, (sink) => { sink.write(new Uint8Array([1, 2, 3])); throw new Error('producer failed'); }), /producer failed/);
      assert.equal(readFileSync(file, 'utf8'), 'old');
      assert.deepEqual(readdirSync(dir), ['out.bin']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('moveDirIntoPlace creates, replaces, and on failure keeps the old folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qlora-atomic-'));
    try {
      const out = join(dir, 'model');
      folderWith(join(dir, '.model.partial-1'), { 'a.txt': 'first' });
      moveDirIntoPlace(join(dir, '.model.partial-1'), out, 'model');
      assert.deepEqual(readdirSync(dir), ['model']);
      assert.equal(readFileSync(join(out, 'a.txt'), 'utf8'), 'first');

      folderWith(join(dir, '.model.partial-2'), { 'b.txt': 'second' });
      moveDirIntoPlace(join(dir, '.model.partial-2'), out, 'model');
      assert.deepEqual(readdirSync(dir), ['model']);
      assert.deepEqual(readdirSync(out), ['b.txt']);

      // The finished folder is missing: the move fails and the earlier output is back in place.
      assert.throws(() => moveDirIntoPlace(join(dir, '.model.partial-gone'), out, 'model'), (e: unknown) => e instanceof IoError && e.file === out && /unchanged/.test(String(e.hint)));
      assert.deepEqual(readdirSync(dir), ['model']);
      assert.equal(readFileSync(join(out, 'b.txt'), 'utf8'), 'second');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
