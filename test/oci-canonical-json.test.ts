import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, jsonString } from '../oci/canonical-json.js';
import { sha256Digest } from '../oci/digest.js';

test('canonicalJson sorts keys at every depth and drops undefined values', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}');
});

test('sha256Digest of the empty string is the well-known empty digest', () => {
  assert.equal(sha256Digest(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('jsonString writes a string as JSON.stringify does, plain ASCII and otherwise', () => {
  const samples = ['', '/nix/store/0123abcd-hello-2.12', 'sha256:ab', 'a "quoted" name', 'back\\slash', 'tab\there', 'new\nline', 'naïve', '\u2028', '\x7f', '😀', '\ud800'];
  for (const s of samples) assert.equal(jsonString(s), JSON.stringify(s), JSON.stringify(s));
});
