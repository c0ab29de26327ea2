import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../oci/canonical-json.js';
import { sha256Digest } from '../oci/digest.js';

test('canonicalJson sorts keys at every depth and drops undefined values', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[{"y":2,"z":1}]},"b":1}');
});

test('sha256Digest of the empty string is the well-known empty digest', () => {
  assert.equal(sha256Digest(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
