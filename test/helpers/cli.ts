// Runs the `qlora` CLI as a real child process of this Node: the compiled CLI when the test itself
// is compiled (npm test), the TypeScript source through tsx in development.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from './shared.js';

const run = promisify(execFile);
const CLI = fileURLToPath(import.meta.url).endsWith('.js')
  ? [join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')]
  : ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts')];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `qlora ...args` in the repository root; resolves with the exit code instead of throwing. */
export async function qlora(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
