// `npm run bench -- [SUITE...] [--json FILE]`: runs the named suites (all when none is named),
// prints a table of medians and, with --json, writes the results array to FILE.
import { writeFileSync } from 'node:fs';
import { createContext, formatTable, runtimeLine, type BenchResult } from './harness.js';
import { SUITES } from './suites/index.js';

async function main(argv: string[]): Promise<void> {
  let jsonPath: string | null = null;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') {
      jsonPath = argv[++i] ?? null;
      if (jsonPath === null) throw new Error('--json needs a file name');
    } else if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(`usage: npm run bench -- [SUITE...] [--json FILE]\nsuites: ${SUITES.map((s) => `${s.name} (${s.description})`).join('; ')}`);
      return;
    } else names.push(argv[i]);
  }
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown suite(s) ${unknown.join(', ')}; known: ${SUITES.map((s) => s.name).join(', ')}`);
  const selected = names.length === 0 ? SUITES.filter((s) => s.optIn !== true) : SUITES.filter((s) => names.includes(s.name));
  const results: BenchResult[] = [];
  for (const suite of selected) {
    process.stderr.write(`running suite ${suite.name}...\n`);
    await suite.run(createContext(suite.name, results));
  }
  console.log(runtimeLine());
  console.log(formatTable(results));
  if (jsonPath !== null) {
    writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${results.length} results to ${jsonPath}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
