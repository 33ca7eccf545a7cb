// The README cannot drift: every `npx qlora ...` and `npx tsx examples/...` line of its shell
// blocks is run, in order, as written, in one fresh folder, with only these exact equivalents:
// `npx qlora` is the built CLI (node dist/src/cli/main.js), `npx tsx examples/X.ts` the built
// example (node dist/examples/X.js), `../shared/` the fixtures beside the checkout, `assets/` the
// checkout's own and `/tmp/` a folder of this test's own. Each must exit 0; then what the README promises of the main job and
// the examples is checked in their output (a lower loss, the story before and after, the files,
// the fine-tuned answer) and llama.cpp (node-llama-cpp) loads the GGUF the export example wrote.
// The TypeScript snippet of the library section runs as a user's module importing 'qlora-ts'.
// The set-up commands (`npm install`, `npm test`) are checked to be the ones CI runs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { RefKernels } from '../../src/kernels/ref/index.js';
import { loadModel } from '../../src/model/load.js';
import { llamaCppProbabilityDiff } from '../helpers/llama-peer.js';
import { REPO_ROOT, SHARED } from '../helpers/shared.js';
import { softmaxRowsF64 } from '../kernels/spec-oracle.js';

const run = promisify(execFile);
const README = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

/** The lines of the README's ```sh blocks, comments and blank lines dropped. */
function shellLines(): string[] {
  const lines: string[] = [];
  for (const m of README.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const raw of m[1]!.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line.length > 0 && !line.startsWith('#')) lines.push(line);
    }
  }
  return lines;
}

/** Splits a shell line into words (double quotes group; no other shell syntax is used). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|(\S+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

interface Ran {
  readonly line: string;
  readonly stdout: string;
  readonly stderr: string;
}

describe('the README, run as written', () => {
  let cwd: string;
  const ran: Ran[] = [];
  const lines = shellLines();

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'qlora-readme-'));
    const tmp = join(cwd, 'tmp');
    mkdirSync(tmp);
    for (const line of lines) {
      const w = words(line).map((x) => x.replace(/^\.\.\/shared\//, `${SHARED}/`).replace(/^\/tmp\//, `${tmp}/`).replace(/^assets\//, `${REPO_ROOT}/assets/`));
      let argv: string[];
      if (w[0] === 'npx' && w[1] === 'qlora') argv = [join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'), ...w.slice(2)];
      else if (w[0] === 'npx' && w[1] === 'tsx' && /^examples\/[\w-]+\.ts$/.test(w[2] ?? '')) argv = [join(REPO_ROOT, 'dist', w[2]!.replace(/\.ts$/, '.js')), ...w.slice(3)];
      else continue;
      try {
        const r = await run(process.execPath, argv, { cwd, maxBuffer: 64 << 20 });
        ran.push({ line, stdout: r.stdout, stderr: r.stderr });
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        assert.fail(`README command failed (exit ${e.code}): ${line}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
      }
    }
    // The library snippet, as a user's module in a project that has qlora-ts installed (a link to this checkout).
    mkdirSync(join(cwd, 'node_modules'));
    symlinkSync(REPO_ROOT, join(cwd, 'node_modules', 'qlora-ts'), 'dir');
    writeFileSync(join(cwd, 'snippet.mjs'), /```ts\n([\s\S]*?)```/.exec(README)![1]!);
    const r = await run(process.execPath, ['snippet.mjs'], { cwd, maxBuffer: 64 << 20 });
    ran.push({ line: 'README library snippet', stdout: r.stdout, stderr: r.stderr });
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it('sets a fresh machine up with npm install, the main job and npm test (what .ci/run runs)', () => {
    assert.ok(lines.includes('npm install'));
    assert.ok(lines.includes('npx qlora demo'));
    assert.ok(lines.includes('npm test'));
    assert.match(readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8'), /^npm test$/m);
  });

  it('runs every qlora command and example it shows', () => {
    for (const cmd of ['demo', 'generate', 'train', 'export', 'inspect', 'quantize', 'eval', 'plot']) {
      assert.ok(ran.some((r) => r.line.startsWith(`npx qlora ${cmd}`)), `the README shows qlora ${cmd}`);
    }
    for (const ex of ['quantize-and-generate', 'fine-tune-on-your-own-data', 'export-to-llama-cpp']) assert.ok(ran.some((r) => r.line.includes(`examples/${ex}.ts`)), ex);
  });

  it('the main job: loss down, the story before and after, the picture and the exported files', () => {
    const demo = ran.find((r) => r.line === 'npx qlora demo')!;
    const loss = /training loss ([\d.]+) -> ([\d.]+)/.exec(demo.stdout);
    assert.ok(loss !== null && Number(loss[2]) < Number(loss[1]), demo.stdout);
    assert.match(demo.stdout, /Before fine-tuning[^\n]*\n\s+Once upon a time/);
    assert.match(demo.stdout, /After fine-tuning[^\n]*\n\s+Once upon a time[^\n]*Pip/);
    for (const f of ['qlora-demo/run/loss.svg', 'qlora-demo/demo-pip-f16.gguf', 'qlora-demo/demo-pip-adapter.gguf', 'qlora-demo/run/adapter', 'qlora-demo/model-nf4']) {
      assert.ok(existsSync(join(cwd, f)), f);
      assert.ok(demo.stdout.includes(f), `the demo names ${f}`);
    }
    assert.ok(existsSync(join(cwd, 'qlora-demo/run/adapter/adapter_model.safetensors')));
    assert.match(demo.stderr, /step \d+\/120/, 'progress lines off a terminal');
  });

  it('the library snippet trains, generates the fine-tuned story and exports', () => {
    const snippet = ran.find((r) => r.line === 'README library snippet')!;
    assert.match(snippet.stdout, /100%/);
    assert.match(snippet.stdout, /dragon named Pip/);
    for (const f of ['nf4/model.safetensors', 'run/adapter/adapter_model.safetensors', 'pip-q8_0.gguf']) assert.ok(existsSync(join(cwd, f)), f);
  });

  it('the examples do what they say; llama.cpp loads the GGUF the export example wrote', async () => {
    const quantize = ran.find((r) => r.line.includes('examples/quantize-and-generate.ts'))!;
    assert.match(quantize.stdout, /bits per weight\nOnce upon a time, there was a [\s\S]*tokens\/s/);
    const fineTune = ran.find((r) => r.line.includes('examples/fine-tune-on-your-own-data.ts'))!;
    assert.match(fineTune.stdout, /answer: The kite is blue\./);
    const exported = ran.find((r) => r.line.includes('examples/export-to-llama-cpp.ts'))!;
    const file = /base model: (\S+)/.exec(exported.stdout)![1]!;
    const model = await loadModel(resolve(cwd, file), { kernels: new RefKernels(), quant: 'gguf' });
    const ids = model.tokenizer!.encode('Once upon a time');
    const logits = model.forward(Int32Array.from(ids), 1, ids.length, { logits: 'last' });
    model.dispose();
    const diff = await llamaCppProbabilityDiff(resolve(cwd, file), ids, softmaxRowsF64(logits, 1, logits.length));
    assert.ok(diff <= 5e-2, `max probability difference ${diff} (Q8_0)`);
  });
});
