// Crash safety (issue 14): processes killed with SIGKILL (no handler runs, no cleanup) at
// pseudo-random moments.
// - `qlora train`: killed again and again, resumed each time; after every kill each checkpoint
//   folder the run holds is either intact (its manifest, written last, matches every file) or
//   not one the trainer would take (latestCheckpoint skips it), the newest intact one loads as a
//   PEFT adapter, and the run finished by the last --resume writes the same adapter bytes as an
//   uninterrupted run.
// - `qlora quantize` and `qlora export` (GGUF file, merged folder): killed at moments spread over
//   their run; the output afterwards either does not exist or is complete, byte for byte the
//   uninterrupted output.
// The kill times come from a seeded generator; where they land depends on the machine's speed,
// which is the point: the moments are arbitrary.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RefKernels } from '../../src/kernels/ref/index.js';
import type { LlamaModel } from '../../src/model/llama.js';
import { loadModel } from '../../src/model/load.js';
import { loadPeftAdapter } from '../../src/model/peft-adapter.js';
import { latestCheckpoint, verifyCheckpoint } from '../../src/train/checkpoint.js';
import { rng } from '../helpers/random.js';
import { DATA, fixture, REPO_ROOT } from '../helpers/shared.js';

const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const STORIES = fixture('models', 'stories260K');
const KILLS = 4;
/** A resumed attempt may die before it reaches a new checkpoint; give up after this many attempts. */
const MAX_ATTEMPTS = 12;

/** Starts the CLI, kills it with SIGKILL `delayMs` after `trigger` first appears on stderr (or at exit). */
async function runAndKill(args: string[], trigger: RegExp, delayMs: number): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let timer: NodeJS.Timeout | null = null;
  let killed = false;
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
    if (timer === null && trigger.test(stderr)) {
      timer = setTimeout(() => { killed = child.kill('SIGKILL'); }, delayMs);
    }
  });
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  if (timer !== null) clearTimeout(timer);
  return { killed: killed && code === null, code, stderr };
}

describe('crash safety: SIGKILL at random moments', () => {
  let dir: string;
  let model: LlamaModel;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qlora-crash-'));
    model = await loadModel(STORIES, { kernels: new RefKernels(), quant: 'none' });
  });
  after(() => {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('qlora train: every kept checkpoint is intact or skipped, and the resumed run ends with the uninterrupted adapter', async () => {
    const data = join(dir, 'text.txt');
    writeFileSync(data, readFileSync(join(DATA, 'tinyshakespeare.txt'), 'utf8').slice(0, 30000));
    const args = ['--model', STORIES, '--data', data, '--threads', '1', '--seq-len', '64', '--max-steps', '30', '--save-every', '3', '--keep-checkpoints', '3', '--lora-r', '4', '--seed', '3'];
    const whole = join(dir, 'whole');
    const ref = spawnSync(process.execPath, [CLI, 'train', ...args, '--out', whole], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(ref.status, 0, ref.stderr);

    const run = join(dir, 'killed');
    const next = rng(20261206);
    let kills = 0;
    let finished = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && !finished; attempt++) {
      const first = attempt === 0;
      const cmd = first ? ['train', ...args, '--out', run] : ['train', '--resume', run, '--threads', '1'];
      const wantKill = kills < KILLS;
      const r = await runAndKill(cmd, wantKill ? /step \d+\/30/ : /(?!)/, Math.floor(next() * 1500));
      if (r.killed) {
        kills++;
        const root = join(run, 'checkpoints');
        for (const name of existsSync(root) ? readdirSync(root) : []) {
          const problem = verifyCheckpoint(join(root, name));
          // A folder the trainer might take is one named step-N; only those must be intact or skipped.
          if (problem !== null) assert.ok(!/^step-\d+$/.test(name) || latestCheckpoint(run)?.dir !== join(root, name), `${name}: ${problem}`);
        }
        const found = latestCheckpoint(run);
        if (found !== null) {
          assert.equal(verifyCheckpoint(found.dir), null);
          const adapter = loadPeftAdapter(model, join(found.dir, 'adapter'));
          assert.ok(adapter.modules.length > 0, `${found.dir} loads as an adapter`);
        }
      } else {
        assert.equal(r.code, 0, r.stderr);
        finished = true;
      }
    }
    assert.ok(finished, `the run did not finish within ${MAX_ATTEMPTS} attempts`);
    assert.ok(kills >= 1, 'at least one kill landed');
    const a = readFileSync(join(run, 'adapter', 'adapter_model.safetensors'));
    const b = readFileSync(join(whole, 'adapter', 'adapter_model.safetensors'));
    assert.ok(a.equals(b), `after ${kills} kills the adapter differs from the uninterrupted run's`);
  });

  /** Kills `args(out)` KILLS times at seeded moments after `trigger`; each output is absent or equals the uninterrupted one. */
  async function killedOutputs(label: string, args: (out: string) => string[], trigger: RegExp, maxDelayMs: number, seed: number): Promise<void> {
    const whole = join(dir, `${label}-whole`);
    const ref = spawnSync(process.execPath, [CLI, ...args(whole)], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(ref.status, 0, ref.stderr);
    const filesOf = (p: string): string[] => (statSync(p).isDirectory() ? readdirSync(p).sort().map((f) => join(p, f)) : [p]);
    const refFiles = filesOf(whole).map((f) => f.slice(whole.length));
    const next = rng(seed);
    let kills = 0;
    for (let i = 0; i < KILLS; i++) {
      const out = join(dir, `${label}-${i}`);
      const r = await runAndKill(args(out), trigger, i === 0 ? 0 : Math.floor(next() * maxDelayMs));
      if (r.killed) kills++;
      else assert.equal(r.code, 0, r.stderr);
      if (!existsSync(out)) continue;
      assert.deepEqual(filesOf(out).map((f) => f.slice(out.length)), refFiles, `${out} after ${r.killed ? 'a kill' : 'exit'}`);
      for (const f of refFiles) assert.ok(readFileSync(out + f).equals(readFileSync(whole + f)), `${label}${f} equals the uninterrupted output`);
    }
    assert.ok(kills >= 1, `at least one kill landed before ${label} finished`);
  }

  // The trigger is the kernels' start (stderr is quiet otherwise): spawned with --verbose.
  it('qlora quantize: a killed run leaves no output folder or a complete one', async () => {
    await killedOutputs('quantize', (out) => ['--verbose', 'quantize', STORIES, '--out', out], /kernels:/, 60, 7);
  });

  it('qlora export (GGUF file, merged folder): a killed run leaves no output or a complete one', async () => {
    await killedOutputs('gguf', (out) => ['export', STORIES, '--format', 'gguf', '--dtype', 'q8_0', '--out', out], /(?:)/, 40, 8);
    await killedOutputs('merged', (out) => ['export', STORIES, '--format', 'merged', '--dtype', 'f16', '--out', out], /(?:)/, 40, 9);
  });
});
