// Checkpoints of a fine-tuning run: `RUN_DIR/checkpoints/step-NNNNNN/` holding the trained
// tensors (a PEFT `adapter/` folder, or `model.safetensors` in full-parameter mode),
// `optimizer.safetensors`, `trainer_state.json` (step, data cursor) and `manifest.json` (size and
// sha256 of every other file). Each checkpoint is written into a temporary sibling folder and
// renamed into place once complete, manifest last, so a kill at any moment leaves the earlier
// checkpoints intact and never a half checkpoint under a final name. Only the newest K are kept.
// Not here: what the tensors are (trainer.ts), the file formats (formats/).

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FormatError, IoError } from '../errors.js';
import { writeBytesAtomic } from '../formats/atomic.js';
import { isJsonObject, parseJsonStrict } from '../formats/json-strict.js';

export const CHECKPOINTS_DIR = 'checkpoints';
export const MANIFEST_FILE = 'manifest.json';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const STEP_DIR = /^step-(\d{6,})$/;

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else out.push(full);
  }
  return out;
}

/**
 * Writes checkpoint `step` of the run: `fill(tempDir)` writes every file, then the manifest is
 * added, the folder renamed to its final name and checkpoints beyond the newest `keep` removed.
 * Returns the checkpoint folder.
 */
export function writeCheckpoint(runDir: string, step: number, keep: number, fill: (dir: string) => void): string {
  const root = join(runDir, CHECKPOINTS_DIR);
  mkdirSync(root, { recursive: true });
  const name = checkpointName(step);
  const temp = join(root, `.${name}.${process.pid}.tmp`);
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(temp);
  try {
    fill(temp);
    const files = listFiles(temp).sort().map((f) => ({ path: relative(temp, f).split('\\').join('/'), bytes: statSync(f).size, sha256: sha256File(f) }));
    writeBytesAtomic(join(temp, MANIFEST_FILE), `${JSON.stringify({ step, files }, null, 1)}\n`);
    const final = join(root, name);
    // A resumed run may save a step that an earlier attempt also saved: the new one replaces it.
    if (existsSync(final)) {
      const old = join(root, `.${name}.${process.pid}.old`);
      renameSync(final, old);
      renameSync(temp, final);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(temp, final);
    }
    pruneCheckpoints(runDir, keep);
    return final;
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}

function checkpointSteps(runDir: string): number[] {
  const root = join(runDir, CHECKPOINTS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root).map((n) => STEP_DIR.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** Removes all but the newest `keep` checkpoints (and leftovers of interrupted writes). */
export function pruneCheckpoints(runDir: string, keep: number): void {
  const root = join(runDir, CHECKPOINTS_DIR);
  const steps = checkpointSteps(runDir);
  for (const step of steps.slice(0, Math.max(0, steps.length - keep))) rmSync(join(root, checkpointName(step)), { recursive: true, force: true });
  for (const n of readdirSync(root)) if (n.startsWith('.step-') && !n.includes(`.${process.pid}.`)) rmSync(join(root, n), { recursive: true, force: true });
}

/** Why checkpoint `dir` is not intact (a file missing, a size or hash mismatch), or null when it is. */
export function verifyCheckpoint(dir: string): string | null {
  const manifestFile = join(dir, MANIFEST_FILE);
  if (!existsSync(manifestFile)) return 'no manifest.json (the write did not finish)';
  let manifest: unknown;
  try {
    manifest = parseJsonStrict(readFileSync(manifestFile, 'utf8'), manifestFile);
  } catch (err) {
    return `manifest.json is not valid JSON (${(err as Error).message})`;
  }
  if (!isJsonObject(manifest) || !Array.isArray(manifest.files)) return 'manifest.json has no "files" list';
  for (const f of manifest.files) {
    if (!isJsonObject(f) || typeof f.path !== 'string' || typeof f.sha256 !== 'string' || typeof f.bytes !== 'number') return 'manifest.json has a malformed entry';
    const file = join(dir, f.path);
    if (!existsSync(file)) return `${f.path} is missing`;
    if (statSync(file).size !== f.bytes) return `${f.path} has ${statSync(file).size} bytes, the manifest says ${f.bytes}`;
    if (sha256File(file) !== f.sha256) return `${f.path} does not match its sha256`;
  }
  return null;
}

export interface FoundCheckpoint {
  readonly dir: string;
  readonly step: number;
  /** Newer checkpoints that were skipped, with the reason. */
  readonly skipped: readonly string[];
}

/** The newest intact checkpoint of the run, or null when there is none. */
export function latestCheckpoint(runDir: string): FoundCheckpoint | null {
  const skipped: string[] = [];
  for (const step of checkpointSteps(runDir).reverse()) {
    const dir = join(runDir, CHECKPOINTS_DIR, checkpointName(step));
    const problem = verifyCheckpoint(dir);
    if (problem === null) return { dir, step, skipped };
    skipped.push(`${checkpointName(step)}: ${problem}`);
  }
  if (skipped.length > 0) throw new IoError('no intact checkpoint in the run folder', { file: join(runDir, CHECKPOINTS_DIR), got: skipped.join('; ') });
  return null;
}

/** trainer_state.json of a checkpoint as an object. */
export function readTrainerState(dir: string): Record<string, unknown> {
  const file = join(dir, TRAINER_STATE_FILE);
  const obj = parseJsonStrict(readFileSync(file, 'utf8'), file);
  if (!isJsonObject(obj)) throw new FormatError('trainer state is not a JSON object', { file });
  return obj;
}
