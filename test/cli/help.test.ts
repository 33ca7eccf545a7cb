// `qlora COMMAND --help`: every command ends with examples, and every flag an example uses is one
// that command (or the program) defines, so the help cannot drift from the options. Usage errors
// and typed errors both exit 2 (checked as processes in export-cli.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { registerCommands } from '../../src/cli/commands.js';
import { qlora } from '../helpers/cli.js';

test('every command has examples whose flags exist', () => {
  const program = new Command().option('--verbose').option('--quiet');
  registerCommands(program);
  assert.ok(program.commands.length >= 7);
  const global = new Set(program.options.map((o) => o.long));
  for (const cmd of program.commands) {
    let help = '';
    cmd.configureOutput({ writeOut: (s) => { help += s; } });
    cmd.outputHelp();
    const at = help.indexOf('\nExamples:\n');
    assert.ok(at >= 0, `${cmd.name()} --help has examples`);
    const flags = new Set([...cmd.options.map((o) => o.long), '--help']);
    for (const line of help.slice(at).split('\n').slice(2).filter((l) => l.trim().length > 0)) {
      assert.ok(`${line.trim()} `.startsWith(`qlora ${cmd.name()} `), line);
      for (const flag of line.match(/(?<=\s)--[a-z0-9-]+/g) ?? []) assert.ok(flags.has(flag) || global.has(flag), `${cmd.name()}: ${flag} in "${line.trim()}"`);
    }
  }
});

test('qlora --help names the exit codes', async () => {
  const r = await qlora('--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Exit codes: 0 done; 1 internal failure/);
  const bad = await qlora('train', '--no-such-flag');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option '--no-such-flag'/);
});
