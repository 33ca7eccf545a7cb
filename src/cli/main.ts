#!/usr/bin/env node
// The `qlora` command line. The only module that reads argv/env or exits: every command calls the
// library, and library errors (QloraError) become a one-line message and exit code 2 here.
import { Command } from 'commander';
import { QloraError } from '../errors.js';
import { registerCommands } from './commands.js';
import { setVerbosity, verbosity } from './verbosity.js';

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program
    .name('qlora')
    .description('QLoRA for TypeScript: quantize, fine-tune, generate and export Llama-family models on CPU')
    .version('0.1.0')
    .option('--verbose', 'diagnostics on stderr: the kernels chosen for this runtime, error stacks')
    .option('--quiet', 'no progress bars or informational lines')
    .showHelpAfterError()
    // Usage errors (unknown option, bad choice, missing argument) exit 2 like a typed error;
    // --help and --version exit 0.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE))
    .addHelpText('after', `
Exit codes: 0 done; 1 internal failure (a bug: please report it with --verbose output);
2 bad usage or bad input (unknown flag, bad value, unreadable or invalid file: one line naming the
file, field and what was expected; add --verbose for the stack); 130 interrupted (train saves a
checkpoint first).`)
    .hook('preAction', (_program, action) => {
      const o = action.optsWithGlobals<{ verbose?: boolean; quiet?: boolean }>();
      setVerbosity(o.verbose === true ? 'verbose' : o.quiet === true ? 'quiet' : 'normal');
    });
  registerCommands(program);
  await program.parseAsync(argv);
}

main(process.argv).catch((err: unknown) => {
  if (err instanceof QloraError) {
    process.stderr.write(`qlora: ${err.name}: ${err.message}\n`);
    if (verbosity() === 'verbose' && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
    process.exitCode = EXIT_USAGE;
  } else {
    process.stderr.write(`qlora: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT_FAILURE;
  }
});
