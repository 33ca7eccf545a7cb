// Progress callbacks of the library's long operations (loadModel, quantizeCheckpoint, train,
// exportModel), in the shape Node users know from transformers.js's `progress_callback`: an
// 'initiate', then 'progress' records with a percentage and loaded/total, a 'done' per file, and
// one 'ready' when the result is usable. `loaded` and `total` count the operation's own units:
// tensors (load, export), source bytes (quantize) or optimizer steps (train).
// Not here: the command line's bars (cli/), which use the operations' detailed events.

export type ProgressInfo =
  | { readonly status: 'initiate'; readonly name: string; readonly file: string }
  | { readonly status: 'progress'; readonly name: string; readonly file: string; readonly progress: number; readonly loaded: number; readonly total: number }
  | { readonly status: 'done'; readonly name: string; readonly file: string }
  | { readonly status: 'ready'; readonly task: ProgressTask; readonly model: string };

export type ProgressTask = 'load' | 'quantize' | 'train' | 'export';
export type ProgressCallback = (info: ProgressInfo) => void;

/** The option every long operation takes. */
export interface WithProgressCallback {
  /** Called with 'initiate', 'progress', 'done' and 'ready' records (transformers.js's shape). */
  readonly progress_callback?: ProgressCallback;
}

export interface ProgressTracker {
  /** `loaded` of `total` units done (the first call also sends 'initiate'). */
  update(loaded: number, total: number): void;
  /** 'done' for the file, then 'ready' for the task. */
  finish(): void;
}

/** Sends one operation's records to `callback` (a no-op without one). */
export function progressTracker(callback: ProgressCallback | undefined, task: ProgressTask, name: string, file: string): ProgressTracker {
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    callback?.({ status: 'initiate', name, file });
  };
  return {
    update: (loaded, total) => {
      if (callback === undefined) return;
      start();
      callback({ status: 'progress', name, file, progress: total > 0 ? (100 * loaded) / total : 100, loaded, total });
    },
    finish: () => {
      if (callback === undefined) return;
      start();
      callback({ status: 'done', name, file });
      callback({ status: 'ready', task, model: name });
    },
  };
}
