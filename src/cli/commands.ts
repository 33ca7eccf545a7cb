// Registers every `qlora` sub-command on the commander program. Each command lives in its own
// file under cli/ and exports a `register(program)` function; add new ones to the list below.
import type { Command } from 'commander';
import { register as registerGenerate } from './generate.js';
import { register as registerEval } from './eval.js';
import { register as registerExport } from './export.js';
import { register as registerInspect } from './inspect.js';
import { register as registerPlot } from './plot.js';
import { register as registerQuantize } from './quantize.js';
import { register as registerTrain } from './train.js';

type Register = (program: Command) => void;

const registrations: Register[] = [
  registerEval,
  registerExport,
  registerGenerate,
  registerInspect,
  registerPlot,
  registerQuantize,
  registerTrain,
];

export function registerCommands(program: Command): void {
  for (const register of registrations) register(program);
}
