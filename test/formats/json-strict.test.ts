// Duplicate-key detection that JSON.parse lacks (used for safetensors headers and config files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findDuplicateJsonKey, parseJsonStrict } from '../../src/formats/json-strict.js';
import { FormatError } from '../../src/errors.js';

test('finds duplicates at any depth, with the path of the object', () => {
  assert.deepEqual(findDuplicateJsonKey('{"list":[{"k":1,"k":2}]}'), { key: 'k', object: 'list.[]' });
  assert.deepEqual(findDuplicateJsonKey('{"a":{"b":[1,{"c":1}],"b":2}}'), { key: 'b', object: 'a' });
  assert.deepEqual(findDuplicateJsonKey('{"a\\"b":1,"a\\"b":2}'), { key: 'a"b', object: '' });
  // Escapes are decoded before comparing: "\u0061" is "a".
  assert.deepEqual(findDuplicateJsonKey('{"a":1,"\\u0061":2}'), { key: 'a', object: '' });
});

test('same key in different objects, keys equal to values, strings with braces: no duplicate', () => {
  assert.equal(findDuplicateJsonKey('{"x":{"a":1},"a":2}'), null);
  assert.equal(findDuplicateJsonKey('[{"a":1},{"a":2}]'), null);
  assert.equal(findDuplicateJsonKey('{"a":"a","b":["a","a"],"c":"{\\"c\\":1,"}'), null);
  assert.equal(findDuplicateJsonKey(' { } '), null);
});

test('parseJsonStrict: syntax errors and duplicates are FormatErrors naming file and field', () => {
  assert.deepEqual(parseJsonStrict('{"a":[1,2]}', 'f.json'), { a: [1, 2] });
  assert.throws(() => parseJsonStrict('{"a":', 'f.json'), (e: unknown) => e instanceof FormatError && e.file === 'f.json');
  assert.throws(() => parseJsonStrict('{"m":{"k":1,"k":1}}', 'f.json'), (e: unknown) => e instanceof FormatError && e.field === 'm.k');
});
