// JSON specs refuse a key given twice in one object, as YAML specs do (JSON.parse would keep the
// last one silently), naming the key and its line.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpecError } from '../builder/errors.js';
import { findJsonDuplicateKeys } from '../builder/spec/json-syntax.js';
import { loadSpec } from '../builder/spec/load.js';
import { tempDir } from './helpers/tmp.js';

let work: string;
let n = 0;

before(async () => {
  work = await tempDir('imgbuild-spec-json-dup-');
});

async function jsonSpec(text: string): Promise<string> {
  const file = join(work, `image-${++n}.json`);
  await writeFile(file, text);
  return file;
}

test('a top-level key given twice: invalid JSON at its line and column, naming the key and the first line', async () => {
  const file = await jsonSpec('{\n  "name": "a",\n  "tag": "1",\n  "name": "b"\n}\n');
  await assert.rejects(loadSpec(file, {}), (e: unknown) => {
    assert.ok(e instanceof SpecError);
    assert.equal(e.message, `${file}: invalid JSON at line 4, column 3: duplicate key "name" (first at line 2)`);
    return true;
  });
});

test('several duplicates, nested ones too: every one listed at once', async () => {
  const file = await jsonSpec('{\n  "name": "a",\n  "config": { "Cmd": ["x"],\n    "Cmd": ["y"] },\n  "name": "b"\n}\n');
  await assert.rejects(loadSpec(file, {}), {
    message: `${file}: invalid JSON (2 problems):\n  line 4, column 5: duplicate key "Cmd" (first at line 3)\n  line 5, column 3: duplicate key "name" (first at line 2)`,
  });
});

test('keys are compared as JSON.parse reads them: "\\u0061" and "a" are one key', () => {
  assert.deepEqual(findJsonDuplicateKeys('{"a": 1, "\\u0061": 2}'), [{ key: 'a', line: 1, column: 10, firstLine: 1 }]);
});

test('the same key in different objects, in arrays, or inside strings is no duplicate', () => {
  assert.deepEqual(findJsonDuplicateKeys('{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}], "c": "\\"a\\": {\\"a\\"", "d": {"k": "a", "k\\\\": 1}}'), []);
});

test('a duplicate inside an object in an array is found', () => {
  assert.deepEqual(findJsonDuplicateKeys('[{"path": "/a", "path": "/b"}]'), [{ key: 'path', line: 1, column: 17, firstLine: 1 }]);
});

test('a deeply nested JSON text is checked without overflowing the stack', () => {
  const depth = 100_000;
  assert.deepEqual(findJsonDuplicateKeys(`${'['.repeat(depth)}{"a":1,"a":2}${']'.repeat(depth)}`), [{ key: 'a', line: 1, column: depth + 8, firstLine: 1 }]);
});

test('a JSON spec without duplicates loads as before', async () => {
  const file = await jsonSpec('{ "name": "a", "files": [{ "path": "/x", "content": "" }, { "path": "/y", "content": "" }] }');
  assert.deepEqual((await loadSpec(file, {})).files.map((f) => f.path), ['/x', '/y']);
});
