// The global --verbose / --quiet flags of `qlora`, set once by main.ts before a command runs and
// read by the commands: --verbose adds diagnostics on stderr (which kernels the runtime probe
// chose, error stacks), --quiet drops progress and informational lines. Results on stdout are the
// same either way.

export type Verbosity = 'quiet' | 'normal' | 'verbose';

let level: Verbosity = 'normal';

export function setVerbosity(v: Verbosity): void {
  level = v;
}

export function verbosity(): Verbosity {
  return level;
}

/** A diagnostic line on stderr, shown only with --verbose. */
export function verboseLine(msg: string): void {
  if (level === 'verbose') process.stderr.write(`qlora: ${msg}\n`);
}
