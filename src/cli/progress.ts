// The progress display of the commands that load, quantize, evaluate and export: a live bar with
// rate and ETA when stderr is a terminal; otherwise about ten plain lines over the whole
// operation (a log stays readable whatever the model's size); nothing with --quiet or
// --no-progress. `qlora train` and `qlora demo` have their own (cli/train.ts: loss and lr too).
import cliProgress from 'cli-progress';
import { verbosity } from './verbosity.js';

export interface ProgressDisplay {
  /** `done` of `total` units; `detail` names the current item (a tensor). */
  update(done: number, total: number, detail?: string): void;
  stop(): void;
}

const PLAIN_LINES = 10;

/** `label` starts every line; values are divided by `scale` and shown in `unit` (e.g. 2^20, 'MiB'). */
export function progressDisplay(label: string, unit: string, enabled: boolean, scale = 1): ProgressDisplay {
  if (!enabled || verbosity() === 'quiet') return { update: () => {}, stop: () => {} };
  const t0 = performance.now();
  const digits = scale === 1 ? 0 : 1;
  const fmt = (x: number): string => (x / scale).toFixed(digits);
  const rate = (done: number): string => (done / scale / Math.max(1e-3, (performance.now() - t0) / 1000)).toFixed(1);
  if (process.stderr.isTTY === true) {
    const bar = new cliProgress.SingleBar({
      format: `${label} {bar} {percentage}% | {shown}/{all} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} | {detail}`,
      stream: process.stderr, hideCursor: true, etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    let started = false;
    return {
      update: (done, total, detail = '') => {
        const payload = { shown: fmt(done), all: fmt(total), rate: rate(done), detail };
        if (!started || bar.getTotal() !== total) {
          bar.start(total, done, payload);
          started = true;
        }
        bar.update(done, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let nextLine = 0;
  let printed = -1;
  return {
    update: (done, total, detail = '') => {
      if ((done < nextLine && done < total) || done === printed) return;
      nextLine = done + Math.max(1, total / PLAIN_LINES);
      printed = done;
      const seconds = (performance.now() - t0) / 1000;
      const eta = done > 0 ? (seconds * (total - done)) / done : Number.NaN;
      process.stderr.write(`${label} ${total > 0 ? Math.floor((100 * done) / total) : 100}% ${fmt(done)}/${fmt(total)} ${unit}, ${rate(done)} ${unit}/s, ETA ${Number.isFinite(eta) ? `${eta.toFixed(1)}s` : '?'}${detail ? ` ${detail}` : ''}\n`);
    },
    stop: () => {},
  };
}
