// Strict JSON parsing for file headers and config files: syntax errors and duplicate object keys
// become a FormatError naming the file. JSON.parse keeps the last of duplicated keys silently, but
// the safetensors reference reader refuses them (serde "duplicate field"), and a duplicated tensor
// name in a header is ambiguous, so every object in the document is checked. This is not a
// general JSON library: it only adds that check to JSON.parse.

import { FormatError } from '../errors.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The first key that appears twice in one object of `text` (which must already be valid JSON), as
 * `{ key, object }` where `object` is the dotted path of keys leading to that object, or null.
 */
export function findDuplicateJsonKey(text: string): { key: string; object: string } | null {
  // One frame per open container: the keys seen so far (objects) or null (arrays), and the key
  // under which the container sits in its parent.
  const stack: { keys: Set<string> | null; name: string }[] = [];
  let expectKey = false;
  let lastKey = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let j = i + 1;
      while (text.charCodeAt(j) !== QUOTE) j += text.charCodeAt(j) === BACKSLASH ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const frame = stack[stack.length - 1];
        if (frame.keys!.has(key)) return { key, object: stack.map((f) => f.name).filter((n) => n !== '').join('.') };
        frame.keys!.add(key);
        lastKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const inArray = stack.length > 0 && stack[stack.length - 1].keys === null;
      stack.push({ keys: c === 0x7b ? new Set() : null, name: inArray ? '[]' : lastKey });
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack.length > 0 && stack[stack.length - 1].keys !== null;
    }
  }
  return null;
}

/** JSON.parse that refuses syntax errors and duplicate keys with a FormatError naming `file`. */
export function parseJsonStrict(text: string, file: string, what = 'JSON'): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new FormatError(`${what} is not valid JSON`, {
      file,
      got: cause instanceof Error ? cause.message : String(cause),
      cause,
    });
  }
  const dup = findDuplicateJsonKey(text);
  if (dup !== null) {
    throw new FormatError(`${what} has a duplicate key`, {
      file,
      field: dup.object === '' ? dup.key : `${dup.object}.${dup.key}`,
      expected: 'each key once per object',
      got: `${JSON.stringify(dup.key)} twice`,
    });
  }
  return value;
}

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
