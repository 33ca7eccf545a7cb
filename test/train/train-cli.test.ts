// `qlora train` as a user runs it: options from --config plus flags, the --json report, plain
// progress lines when stderr is not a terminal, and a real Ctrl-C (SIGINT): the run checkpoints,
// exits 130 and says how to continue; `--resume` then ends byte-identical to an uninterrupted run.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DATA, fixture, REPO_ROOT } from '../helpers/shared.js';

const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

describe('qlora train (CLI)', () => {
  let dir: string;
  let config: string;
  const common = (): string[] => ['--config', config, '--threads', '1', '--seq-len', '64', '--max-steps', '40', '--save-every', '10'];
  const adapter = (run: string): Buffer => readFileSync(join(dir, run, 'adapter', 'adapter_model.safetensors'));

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qlora-train-cli-'));
    const data = join(dir, 'text.txt');
    writeFileSync(data, readFileSync(join(DATA, 'tinyshakespeare.txt'), 'utf8').slice(0, 40000));
    config = join(dir, 'train.json');
    writeFileSync(config, JSON.stringify({ model: fixture('models', 'stories260K'), data, 'lora-r': 8, loraDropout: 0.1, 'eval-split': 4, seed: 5 }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs from --config and flags, prints a JSON report', () => {
    const r = spawnSync(process.execPath, [CLI, 'train', ...common(), '--out', join(dir, 'whole'), '--json'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { steps: number; output: string; finalEval: { loss: number } };
    assert.equal(report.steps, 40);
    assert.equal(report.output, join(dir, 'whole', 'adapter'));
    assert.match(r.stderr, /step 40\/40 loss \d/);
    const cfg = JSON.parse(readFileSync(join(dir, 'whole', 'adapter', 'adapter_config.json'), 'utf8')) as { r: number; lora_dropout: number };
    assert.equal(cfg.r, 8);
    assert.equal(cfg.lora_dropout, 0.1);
  });

  it('Ctrl-C checkpoints and exits 130; --resume ends byte-identical', async () => {
    const child = spawn(process.execPath, [CLI, 'train', ...common(), '--out', join(dir, 'cut')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (!sent && /step 3\/40/.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    assert.equal(code, 130, stderr);
    assert.match(stdout, /interrupted at step \d+\/40/);
    assert.match(stdout, /qlora train --resume/);
    const r = spawnSync(process.execPath, [CLI, 'train', '--resume', join(dir, 'cut'), '--threads', '1', '--no-progress'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /done at step 40\/40/);
    assert.ok(adapter('cut').equals(adapter('whole')));
  });

  it('--activations: int16 by default (named by --verbose), f32 on request, anything else refused', () => {
    const run = (name: string, ...extra: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [CLI, '--verbose', 'train', '--config', config, '--threads', '1', '--seq-len', '64', '--max-steps', '3', '--out', join(dir, name), ...extra], { encoding: 'utf8', timeout: 120_000 });
    const int16 = run('act-int16');
    assert.equal(int16.status, 0, String(int16.stderr));
    assert.match(String(int16.stderr), /kernels: .*int16 activations/);
    const f32 = run('act-f32', '--activations', 'f32');
    assert.equal(f32.status, 0, String(f32.stderr));
    assert.match(String(f32.stderr), /kernels: .*f32 activations/);
    assert.notDeepEqual(adapter('act-int16'), adapter('act-f32'));
    const bad = run('act-bad', '--activations', 'int8');
    assert.equal(bad.status, 2);
    assert.match(String(bad.stderr), /--activations/);
  });

  it('refuses to replace a run without --overwrite (exit 2, typed message)', () => {
    const r = spawnSync(process.execPath, [CLI, 'train', ...common(), '--out', join(dir, 'whole')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /ConfigError: .*the run folder already holds a run/);
  });
});
