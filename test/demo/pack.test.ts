// What `npm pack` ships, tried as a user would: the tarball holds the built library, the
// WebAssembly kernels, the demo assets and the README (no sources, tests, benchmarks or scripts);
// installed offline (from npm's cache, which `npm ci` filled) into an empty project, its `qlora`
// binary runs the demo and `import 'qlora-ts'` gives the typed library entry.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/shared.js';

const run = promisify(execFile);
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * The lock file `npm install qlora-ts.tgz` would write in an empty project, made from this
 * repository's own lock (its runtime entries: the versions and integrities CI installed): with it
 * `npm ci --offline` installs from npm's cache alone (a bare offline install would need the
 * registry's package documents, which `npm ci` does not cache).
 */
function userLock(pkg: { name: string; version: string; dependencies: Record<string, string> }): unknown {
  const ours = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const self = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; bin: Record<string, string>; engines: Record<string, string> };
  const packages: Record<string, unknown> = {
    '': { name: pkg.name, version: pkg.version, dependencies: pkg.dependencies },
    'node_modules/qlora-ts': { version: self.version, resolved: 'file:qlora-ts.tgz', license: 'MIT', dependencies: self.dependencies, bin: self.bin, engines: self.engines },
  };
  for (const [path, entry] of Object.entries(ours.packages)) if (path.startsWith('node_modules/') && entry.dev !== true) packages[path] = entry;
  return { name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages };
}

describe('npm pack', () => {
  let dir: string;
  let tarball: string;
  let files: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qlora-pack-test-'));
    // --ignore-scripts: `prepare` would rebuild; the suite runs on a fresh build already.
    const { stdout } = await run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    tarball = join(dir, info!.filename);
    files = info!.files.map((f) => f.path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds what users need and nothing else', () => {
    for (const f of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'assets/demo/model/model.safetensors', 'assets/demo/model/tokenizer.json', 'assets/demo/data/pip-stories.jsonl']) {
      assert.ok(files.includes(f), `${f} is packed`);
    }
    assert.ok(files.some((f) => /^dist\/wasm\/.+\.wasm$/.test(f)), 'the WebAssembly kernels are packed');
    const stray = files.filter((f) => !/^(package\.json|README\.md|dist\/src\/|dist\/wasm\/|assets\/demo\/)/.test(f) || /^dist\/(test|bench|scripts|examples)\//.test(f));
    assert.deepEqual(stray, []);
  });

  it('installs offline into an empty project, whose qlora runs the demo and whose import gives the library', async () => {
    const project = join(dir, 'project');
    mkdirSync(project);
    copyFileSync(tarball, join(project, 'qlora-ts.tgz'));
    const pkg = { name: 'try-qlora', version: '1.0.0', private: true, type: 'module', dependencies: { 'qlora-ts': 'file:qlora-ts.tgz' } };
    writeFileSync(join(project, 'package.json'), `${JSON.stringify(pkg)}\n`);
    writeFileSync(join(project, 'package-lock.json'), `${JSON.stringify(userLock(pkg))}\n`);
    await run(NPM, ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: project, maxBuffer: 64 << 20 });
    assert.ok(existsSync(join(project, 'node_modules', 'qlora-ts', 'assets', 'demo', 'model', 'config.json')));
    const bin = join(project, 'node_modules', '.bin', 'qlora');
    const demo = await run(process.execPath, [bin, 'demo', '--out', 'demo-out', '--steps', '10', '--json'], { cwd: project, maxBuffer: 64 << 20 });
    const report = JSON.parse(demo.stdout) as { steps: number; files: { gguf: string } };
    assert.equal(report.steps, 10);
    assert.ok(existsSync(report.files.gguf));
    const lib = await run(process.execPath, ['--input-type=module', '-e', "import * as q from 'qlora-ts'; console.log(JSON.stringify([typeof q.loadModel, typeof q.train, typeof q.exportModel, q.demoModelPath()]))"], { cwd: project });
    const [load, trainFn, exportFn, modelPath] = JSON.parse(lib.stdout) as string[];
    assert.deepEqual([load, trainFn, exportFn], ['function', 'function', 'function']);
    assert.ok(modelPath!.startsWith(join(project, 'node_modules', 'qlora-ts')), modelPath);
  });
});
