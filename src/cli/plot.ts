// `qlora plot RUN_DIR [--out FILE] [--log-y] [--json]`: draws RUN_DIR/metrics.jsonl (train and
// eval loss) to RUN_DIR/loss.svg, or to --out (library: plotRun in src/train/plot.ts).
import type { Command } from 'commander';
import { plotRun } from '../train/plot.js';

export function register(program: Command): void {
  program
    .command('plot')
    .description('draw the loss curve of a run (metrics.jsonl) to an SVG file')
    .argument('<run-dir>', 'run folder holding metrics.jsonl')
    .option('--out <file>', 'SVG file to write (default RUN_DIR/loss.svg)')
    .option('--log-y', 'logarithmic loss axis')
    .option('--json', 'print one JSON record instead of text')
    .action((runDir: string, o: { out?: string; logY?: boolean; json?: boolean }) => {
      const r = plotRun(runDir, { out: o.out, logY: o.logY === true });
      process.stdout.write(o.json === true ? `${JSON.stringify(r)}\n` : `wrote ${r.file} (${r.train} train, ${r.eval} eval points)\n`);
    });
}
