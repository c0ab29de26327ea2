// upload.ts withDigest: the upload URL with `digest=` set, exactly as url.searchParams.set writes
// it, whether it takes the short way (appending to a query already in URLSearchParams's form) or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withDigest } from '../registry-client/upload.js';
import type { Digest } from '../oci/digest.js';

const digest = `sha256:${'0a'.repeat(32)}` as Digest;
const bySearchParams = (location: URL, d: string) => {
  const u = new URL(location);
  u.searchParams.set('digest', d);
  return u.href;
};

test('withDigest writes the URL url.searchParams.set writes, for docker-registry\'s Location and odd queries alike', () => {
  const queries = [
    '', '?', '?_state=hr4XzB9ztu0nYpkQxUfM-8U_kbRJw9S8xXtFyZ8oVbZ7Ik5hbWUiOiJhL2ltZzEiLCJVVUlEIjoiOTFj%3D%3D', '?a=1&b=2', '?a=', '?a', '?=x', '?a=1&&b=2',
    '?a=b=c', '?a=%3d', '?a=%41', '?a=%2A', '?a=%5F', '?a=%7E', '?a=~', '?a=%20', '?a=+', '?a=%2B', '?a=%C3%A9', '?a=%FF', '?a=é', '?a=%', '?a=%zz',
    '?digest=sha256:x', '?a=1&digest=old&b=2', '?x=1&digest', '?a=%00%1F%21%2C%2F%3A%40%5B%60%7B%7F', '?a=%2a', '?a=*-._', "?a='", '?a=<>', '?a=%3C',
  ];
  const bases = ['http://127.0.0.1:5000/v2/r/blobs/uploads/session-1', 'https://ghcr.io/v2/o/r/blobs/upload/1#frag'];
  for (const base of bases) {
    for (const q of queries) {
      const u = new URL(base);
      u.search = q;
      for (const d of [digest, 'sha512:AB_c-d=', 'a+b.c_d-e:x']) {
        assert.equal(withDigest(u, d as Digest).href, bySearchParams(u, d), `${u.href} ${d}`);
      }
    }
  }
});

test('withDigest leaves the URL it is given as it was', () => {
  const u = new URL('http://127.0.0.1:5000/v2/r/blobs/uploads/s?_state=x');
  withDigest(u, digest);
  assert.equal(u.href, 'http://127.0.0.1:5000/v2/r/blobs/uploads/s?_state=x');
});

test('withDigest agrees with url.searchParams.set for every escape %00-%FF and every ASCII character in a value', () => {
  const values: string[] = [];
  for (let b = 0; b < 256; b++) {
    const hex = b.toString(16).padStart(2, '0');
    values.push(`%${hex.toUpperCase()}`, `%${hex}`);
  }
  for (let c = 0x20; c < 0x7f; c++) values.push(String.fromCharCode(c));
  for (const v of values) {
    const u = new URL('http://127.0.0.1:5000/v2/r/blobs/uploads/s');
    u.search = `?_state=a${v}b&n${v}=1`;
    assert.equal(withDigest(u, digest).href, bySearchParams(u, digest), u.search);
  }
});
