// Fuzz target for training datasets (src/train/data.ts loadDataset): JSONL and JSON-array files in
// the Alpaca, chat `messages` and `text` shapes, generated row by row with hostile values mixed in
// (wrong types, huge strings, unknown roles, nesting), mutations of the real Alpaca seed file
// (../shared/data, its first rows: JSON-level edits, then text and byte edits such as truncation
// and bit flips), and plain text with binary noise. Each case tokenizes with the stories260K
// tokenizer plus a small chat template written into the case folder, in three settings (auto
// format, packing, completion-only off with drop).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { TextTokenizer } from '../../src/formats/tokenizer.js';
import { loadDataset } from '../../src/train/data.js';
import { DATA } from '../helpers/shared.js';
import type { CaseFiles, FuzzTarget } from './harness.js';
import { applyByteOps, applyJsonMutation, byteOps, hostileJsonValue, jsonMutation, type ByteOp, type JsonMutation } from './mutate.js';
import { fixtureBytes, stages } from './targets-binary.js';

const encoder = new TextEncoder();
const SEED_ROWS = 12;
const CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

let seedRows: unknown[] | null = null;
/** The first rows of the Alpaca seed tasks, parsed once. */
function alpacaSeedRows(): unknown[] {
  if (seedRows === null) seedRows = readFileSync(join(DATA, 'alpaca-seed-tasks.jsonl'), 'utf8').split('\n').filter((l) => l !== '').slice(0, SEED_ROWS).map((l) => JSON.parse(l) as unknown);
  return seedRows;
}

const maybeHostile = <T>(plausible: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: hostileJsonValue });
const text = fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('', 'Once upon a time', '<s></s><unk>', '\u0000\uffff\ud800', 'x'.repeat(3000)));
const alpacaRow = fc.record({ instruction: maybeHostile(text), input: maybeHostile(text), output: maybeHostile(text) }, { requiredKeys: [] });
const message = fc.record({ role: maybeHostile(fc.constantFrom('system', 'user', 'assistant', 'tool', '')), content: maybeHostile(text) }, { requiredKeys: [] });
const chatRow = fc.record({ messages: maybeHostile(fc.array(message, { maxLength: 5 })) }, { requiredKeys: [] });
const textRow = fc.record({ text: maybeHostile(text) }, { requiredKeys: [] });
const row = fc.oneof(alpacaRow, chatRow, textRow, hostileJsonValue);

type DataSpec =
  | { kind: 'rows'; rows: unknown[]; layout: 'jsonl' | 'array'; blankLines: boolean }
  | { kind: 'seed'; m: JsonMutation; layout: 'jsonl' | 'array' }
  | { kind: 'text'; body: string; ops: readonly ByteOp[] };

function tokenizerFiles(): CaseFiles {
  const files: CaseFiles = {};
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) files[f] = fixtureBytes('models', 'stories260K', f);
  files['chat_template.jinja'] = encoder.encode(CHAT_TEMPLATE);
  return files;
}

function layoutRows(rows: readonly unknown[], layout: 'jsonl' | 'array', blankLines = false): string {
  return layout === 'array' ? JSON.stringify(rows) : rows.map((r) => JSON.stringify(r) ?? 'undefined').join(blankLines ? '\n\n' : '\n');
}

export const datasetTarget: FuzzTarget<DataSpec> = {
  format: 'dataset',
  cases: fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('rows' as const), rows: fc.array(row, { maxLength: 8 }), layout: fc.constantFrom('jsonl' as const, 'array' as const), blankLines: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('seed' as const), m: jsonMutation, layout: fc.constantFrom('jsonl' as const, 'array' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('text' as const), body: text, ops: byteOps }) },
  ),
  materialize(spec) {
    const files = tokenizerFiles();
    if (spec.kind === 'rows') {
      files[spec.layout === 'array' ? 'data.json' : 'data.jsonl'] = encoder.encode(layoutRows(spec.rows, spec.layout, spec.blankLines));
    } else if (spec.kind === 'seed') {
      const rows = alpacaSeedRows();
      if (spec.layout === 'array') {
        files['data.json'] = applyJsonMutation(rows, spec.m);
      } else {
        // Line-level JSONL: the mutation edits one row's JSON, then the whole file's bytes.
        const edited = new TextDecoder().decode(applyJsonMutation(rows[0], { ...spec.m, bytes: [] }));
        files['data.jsonl'] = applyByteOps(encoder.encode([edited, ...rows.slice(1).map((r) => JSON.stringify(r))].join('\n')), spec.m.bytes);
      }
    } else {
      files['data.txt'] = applyByteOps(encoder.encode(`${spec.body}\n${spec.body}`), spec.ops);
    }
    return files;
  },
  run(dir) {
    const tok = TextTokenizer.fromFolder(dir);
    const file = ['data.jsonl', 'data.json', 'data.txt'].map((f) => join(dir, f)).find((f) => {
      try {
        readFileSync(f);
        return true;
      } catch {
        return false;
      }
    }) as string;
    stages(
      () => void loadDataset(file, tok, { seqLen: 64 }),
      () => void loadDataset(file, tok, { seqLen: 32, packing: true }),
      () => void loadDataset(file, tok, { seqLen: 16, completionOnly: false, overlong: 'drop' }),
    );
  },
};
