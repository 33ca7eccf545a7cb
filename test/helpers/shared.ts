// Paths to the shared fixtures and data that sit beside the checkout at ../shared (CI has them
// there too). Tests read them in place; nothing is copied into the repository.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${start}`);
    dir = up;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
export const SHARED = resolve(REPO_ROOT, '..', 'shared');
export const FIXTURES = join(SHARED, 'fixtures');
export const DATA = join(SHARED, 'data');

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}
