// `qlora eval` end to end on stories260K, run as a child process through tsx: the JSON record
// (a window over the §14.2 sentence gives its NLL), text output, and typed errors for bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, fixture } from '../helpers/shared.js';

const STORIES = fixture('models', 'stories260K');
const SENTENCE = 'One day, a clever fox found a shiny key under the old oak tree.';
const FAST = ['--quant', 'none', '--kernels', 'ref', '--no-progress'];

function qlora(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('qlora eval', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qlora-eval-cli-'));
    writeFileSync(join(dir, 'sentence.txt'), SENTENCE);
    writeFileSync(join(dir, 'sentence.jsonl'), `${JSON.stringify({ text: SENTENCE })}\n`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--json: the sentence scores the §14.2 NLL (txt and jsonl alike)', () => {
    for (const file of ['sentence.txt', 'sentence.jsonl']) {
      const r = qlora('eval', STORIES, '--data', join(dir, file), '--json', ...FAST);
      assert.equal(r.status, 0, r.stderr);
      const rec = JSON.parse(r.stdout) as { nll: number; tokens: number; windows: number; perplexity: number; context: number };
      assert.equal(rec.tokens, 34);
      assert.equal(rec.windows, 1);
      assert.equal(rec.context, 512);
      assert.ok(Math.abs(rec.nll - 54.4041) < 1e-3, `nll ${rec.nll}`);
    }
  });

  it('text output names loss, perplexity and windows', () => {
    const r = qlora('eval', STORIES, '--data', join(dir, 'sentence.txt'), '--context', '16', '--stride', '8', ...FAST);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^loss \d+\.\d{4} {2}perplexity \d+\.\d{4}\n34 tokens scored in 4 windows \(context 16, stride 8\)/);
  });

  it('bad input: typed errors and exit code 2', () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": 1}\n');
    let r = qlora('eval', STORIES, '--data', bad, ...FAST);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /FormatError: .*bad\.jsonl.*line 1/);
    r = qlora('eval', STORIES, '--data', join(dir, 'sentence.txt'), '--context', '4096', ...FAST);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /ConfigError: .*context/);
  });
});
