// Atomic file replacement: write to a temporary file in the destination's folder, fsync, then
// rename over the destination. A reader of the destination sees either the old file or the whole
// new one, never a half-written file; a failure (thrown error, full disk) leaves the old file
// untouched and removes the temporary. Rename is atomic only within one filesystem, hence the temp
// file sits beside the destination. Folders are replaced the same way (moveDirIntoPlace). This
// module is synchronous and knows no file format.

import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IoError } from '../errors.js';

/** Sequential writer handed to the producer of an atomic file. */
export interface ByteSink {
  /** Appends all of `bytes` (loops over short writes). */
  write(bytes: Uint8Array): void;
  /** Bytes written so far. */
  readonly position: number;
}

/** Largest single writeSync; larger buffers are written in pieces (Node caps one call at 2 GiB). */
const MAX_WRITE_CHUNK = 1 << 30;

class FdSink implements ByteSink {
  position = 0;
  constructor(private readonly fd: number, private readonly file: string) {}

  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.byteLength) {
      const len = Math.min(bytes.byteLength - done, MAX_WRITE_CHUNK);
      let n: number;
      try {
        n = writeSync(this.fd, bytes, done, len, this.position);
      } catch (cause) {
        throw new IoError('write failed', { file: this.file, offset: this.position, cause });
      }
      done += n;
      this.position += n;
    }
  }
}

/**
 * Creates `path` atomically: `produce` streams the content into a sink backed by a temporary file
 * beside `path`; on success the temporary is fsynced and renamed over `path`. Errors thrown by
 * `produce` propagate unchanged (after the temporary is removed); system errors become IoError.
 */
export function writeFileAtomic(path: string, produce: (sink: ByteSink) => void): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(temp, 'wx');
  } catch (cause) {
    throw new IoError('cannot create temporary file', { file: temp, cause, hint: 'is the folder writable?' });
  }
  let committed = false;
  try {
    produce(new FdSink(fd, path));
    try {
      fsyncSync(fd);
    } catch (cause) {
      throw new IoError('fsync failed', { file: temp, cause });
    }
    try {
      closeSync(fd);
    } catch (cause) {
      throw new IoError('close failed', { file: temp, cause });
    } finally {
      fd = -1;
    }
    try {
      renameSync(temp, path);
    } catch (cause) {
      throw new IoError('cannot rename temporary file over the destination', { file: path, cause });
    }
    committed = true;
  } finally {
    if (fd !== -1) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the original error is the one to report
      }
    }
    if (!committed) {
      try {
        unlinkSync(temp);
      } catch {
        // temp may not exist any more; nothing else to clean
      }
    }
  }
}

/** Writes `bytes` (or text, as UTF-8) to `path` atomically. */
export function writeBytesAtomic(path: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes;
  writeFileAtomic(path, (sink) => sink.write(data));
}

/**
 * Moves the finished folder `temp` (beside `out`, same filesystem) to `out`, replacing a folder
 * already there without ever deleting it first: the old folder is renamed aside, the new one
 * renamed in, and only then is the old one removed. If the second rename fails, the old folder is
 * renamed back, so `out` holds the old content or the whole new one. `what` names the output in
 * errors ("checkpoint", "merged model").
 */
export function moveDirIntoPlace(temp: string, out: string, what: string): void {
  const old = existsSync(out) ? join(dirname(out), `.${basename(out)}.old-${randomBytes(4).toString('hex')}`) : null;
  if (old !== null) {
    try {
      renameSync(out, old);
    } catch (cause) {
      throw new IoError(`cannot move the existing ${what} aside to replace it`, { file: out, cause });
    }
  }
  try {
    renameSync(temp, out);
  } catch (cause) {
    let hint: string | undefined;
    if (old !== null) {
      try {
        renameSync(old, out);
        hint = 'the earlier output is unchanged';
      } catch {
        hint = `the earlier output is kept at ${old}`;
      }
    }
    throw new IoError(`cannot move the finished ${what} into place`, { file: out, cause, hint });
  }
  if (old !== null) rmSync(old, { recursive: true, force: true });
}
