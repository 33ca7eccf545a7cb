// JSON as Python's json.dumps(obj, indent=2, sort_keys=True) writes it, which is how transformers
// saves config.json (PretrainedConfig.to_json_string) — including the number spellings JavaScript
// loses (`6.0`, `1e-05`, `10000.0`). A config read with parsePreservingNumbers keeps each number's
// original text, so a rewritten config.json changes only what was edited.
// Used for config.json, adapter_config.json and bitsandbytes' quant_state JSON.
// Not here: what a config means (src/formats/hf-config.ts).

import { FormatError } from '../errors.js';

/** A number kept as the exact text of its literal. */
export class JsonNumberText {
  constructor(readonly text: string) {}
}

/** A value Python holds as a float: always printed with its repr (`6.0`, not `6`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJson = null | boolean | string | number | JsonNumberText | PyFloat | PyJson[] | { [key: string]: PyJson };

/** JSON.parse, but numbers become JsonNumberText (validated by JSON.parse first). */
export function parsePreservingNumbers(text: string, file: string): PyJson {
  try {
    JSON.parse(text);
  } catch (cause) {
    throw new FormatError('invalid JSON', { file, cause });
  }
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = (): PyJson => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      const obj: { [key: string]: PyJson } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const key = str();
        ws();
        i++; // ':'
        obj[key] = value();
        ws();
        if (text[i++] === '}') return obj;
      }
    }
    if (ch === '[') {
      i++;
      const arr: PyJson[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i++] === ']') return arr;
      }
    }
    if (ch === '"') return str();
    if (text.startsWith('true', i)) return (i += 4), true;
    if (text.startsWith('false', i)) return (i += 5), false;
    if (text.startsWith('null', i)) return (i += 4), null;
    const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64))!;
    i += m[0].length;
    return new JsonNumberText(m[0]);
  };
  const str = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  return value();
}

/** Python's json.dumps string escaping with ensure_ascii=True. */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Python json.dumps(value, indent=2, sort_keys=True). Plain JS numbers print as integers when
 * integral, else with Python's float repr; wrap a value in PyFloat to force float spelling.
 */
export function dumpPythonJson(value: PyJson, indent = 2, level = 0): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return pyString(value);
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 1e16 ? String(value) : pythonFloatRepr(value);
  if (value instanceof JsonNumberText) return value.text;
  if (value instanceof PyFloat) return pythonFloatRepr(value.value);
  const pad = ' '.repeat(indent * (level + 1));
  const end = ' '.repeat(indent * level);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => pad + dumpPythonJson(v, indent, level + 1)).join(',\n')}\n${end}]`;
  }
  // Python sorts keys by code point; JS sort on UTF-16 agrees below U+10000.
  const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${pad}${pyString(k)}: ${dumpPythonJson(value[k], indent, level + 1)}`).join(',\n')}\n${end}}`;
}

/**
 * Python's repr() of a double: the shortest round-trip digits (as JavaScript's), but scientific
 * notation when the decimal exponent is < -4 or >= 16, a two-digit minimum exponent with sign
 * (`1e-05`, `6.998875927883846e+37`), and `.0` on integral values (`2.0`).
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity'; // json.dumps spelling
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = x.toExponential().split('e'); // shortest digits, e.g. "2.759014368057251e+0"
  const exp = Number(expStr);
  const sign = mant.startsWith('-') ? '-' : '';
  const digits = mant.replace('-', '').replace('.', '');
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intLen = exp + 1;
  if (digits.length <= intLen) return `${sign}${digits}${'0'.repeat(intLen - digits.length)}.0`;
  return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}
