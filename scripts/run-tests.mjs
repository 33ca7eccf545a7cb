// Runs the compiled test suite: lists dist/test/**/*.test.js itself (sorted, so the order is the
// same everywhere) and hands the files to `node --test --test-concurrency=1`. Node 20 reads a
// folder argument as "every test file under it", Node 22 and later read arguments as files or
// globs only, so passing explicit files is the one form every supported Node accepts.
// Worker and helper modules under dist/test (e.g. test/fuzz workers) are not *.test.js and are
// not listed. Extra arguments go to `node --test` before the files (e.g. --test-only).
// Not here: building (npm test builds and lints first).

import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = join(root, 'dist', 'test');

function listTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listTests(path));
    else if (name.endsWith('.test.js')) found.push(path);
  }
  return found;
}

let files;
try {
  files = listTests(testRoot);
} catch (err) {
  console.error(`run-tests: cannot list ${testRoot} (${err.message}); run \`npm run build\` first`);
  process.exit(1);
}
if (files.length === 0) {
  console.error(`run-tests: no *.test.js files under ${testRoot}; run \`npm run build\` first`);
  process.exit(1);
}

const args = ['--test', '--test-concurrency=1', ...process.argv.slice(2), ...files.map((f) => relative(root, f))];
const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (run.error) {
  console.error(`run-tests: cannot start ${process.execPath}: ${run.error.message}`);
  process.exit(1);
}
process.exit(run.status ?? 1);
