import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidReferenceError, parseReference, registryApiHost, normaliseRegistry } from '../registry-client/index.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('image references, normalised as Docker does', () => {
  const cases: [string, string, { registry: string; repository: string; tag?: string; digest?: string }][] = [
    ['alpine', 'docker.io/library/alpine:latest', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.20', 'docker.io/library/alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['user/app', 'docker.io/user/app:latest', { registry: 'docker.io', repository: 'user/app', tag: 'latest' }],
    ['docker.io/alpine', 'docker.io/library/alpine:latest', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['index.docker.io/library/alpine:edge', 'docker.io/library/alpine:edge', { registry: 'docker.io', repository: 'library/alpine', tag: 'edge' }],
    ['registry-1.docker.io/nginx', 'docker.io/library/nginx:latest', { registry: 'docker.io', repository: 'library/nginx', tag: 'latest' }],
    ['ghcr.io/org/team/app:v1.2.3', 'ghcr.io/org/team/app:v1.2.3', { registry: 'ghcr.io', repository: 'org/team/app', tag: 'v1.2.3' }],
    ['localhost:5000/x', 'localhost:5000/x:latest', { registry: 'localhost:5000', repository: 'x', tag: 'latest' }],
    ['localhost/x', 'localhost/x:latest', { registry: 'localhost', repository: 'x', tag: 'latest' }],
    ['127.0.0.1:5000/a/b:t', '127.0.0.1:5000/a/b:t', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 't' }],
    ['Registry.Example.com/app', 'registry.example.com/app:latest', { registry: 'registry.example.com', repository: 'app', tag: 'latest' }],
    [`alpine@${D}`, `docker.io/library/alpine@${D}`, { registry: 'docker.io', repository: 'library/alpine', digest: D }],
    [`ghcr.io/o/a:1@${D}`, `ghcr.io/o/a:1@${D}`, { registry: 'ghcr.io', repository: 'o/a', tag: '1', digest: D }],
    [`localhost:5000/x@${D}`, `localhost:5000/x@${D}`, { registry: 'localhost:5000', repository: 'x', digest: D }],
    ['my_app/name-with--dashes__x.v2', 'docker.io/my_app/name-with--dashes__x.v2:latest', { registry: 'docker.io', repository: 'my_app/name-with--dashes__x.v2', tag: 'latest' }],
  ];
  for (const [input, full, parts] of cases) {
    test(`${input} → ${full}`, () => {
      const r = parseReference(input);
      assert.equal(r.toString(), full);
      assert.deepEqual({ registry: r.registry, repository: r.repository, ...(r.tag ? { tag: r.tag } : {}), ...(r.digest ? { digest: r.digest } : {}) }, parts);
    });
  }

  test('Docker Hub answers its API on registry-1.docker.io; other registries on their own host', () => {
    assert.equal(parseReference('alpine').apiHost, 'registry-1.docker.io');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
    assert.equal(registryApiHost('localhost:5000'), 'localhost:5000');
  });

  test('a digest is what a manifest URL names when there is one; otherwise the tag', () => {
    assert.equal(parseReference(`ghcr.io/o/a:1@${D}`).target, D);
    assert.equal(parseReference('ghcr.io/o/a:1').target, '1');
  });

  test('defaultTag: null leaves a bare name without tag', () => {
    assert.equal(parseReference('ghcr.io/o/a', { defaultTag: null }).tag, undefined);
  });

  test('registry spellings from config.json keys normalise to reference form', () => {
    assert.equal(normaliseRegistry('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normaliseRegistry('https://GHCR.io/'), 'ghcr.io');
    assert.equal(normaliseRegistry('localhost:5000/'), 'localhost:5000');
  });

  const invalid: [string, RegExp][] = [
    ['', /empty reference/],
    ['Alpine', /repository name must be lowercase/],
    ['ghcr.io/Org/app', /repository name must be lowercase/],
    ['alpine:', /invalid tag ""/],
    ['alpine:-bad', /invalid tag "-bad"/],
    [`alpine:${'t'.repeat(129)}`, /invalid tag/],
    ['alpine@sha256:abc', /64 lowercase hex digits/],
    [`alpine@sha512:${'a'.repeat(128)}`, /unsupported digest algorithm "sha512"/],
    ['alpine@latest', /invalid digest "latest"/],
    ['ghcr.io/', /missing repository name/],
    ['ghcr.io/a//b', /invalid repository name component ""/],
    ['a/-b', /invalid repository name component "-b"/],
    ['my image', /contains white space/],
    ['-bad.host:5000/x', /invalid registry host "-bad.host:5000"/],
    ['my_app.v2/x', /invalid registry host "my_app.v2"/],
    [`x.io/${'a'.repeat(260)}`, /longer than 255/],
  ];
  for (const [input, message] of invalid) {
    test(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, () => {
      assert.throws(() => parseReference(input), (e: unknown) => e instanceof InvalidReferenceError && e.code === 'reference' && message.test(e.message));
    });
  }

  for (const [input, shown] of [
    ['alice:S3cretPW!x@127.0.0.1:5000/x:1', '***@127.0.0.1:5000/x:1'],
    ['tok3nS3cret@ghcr.io/org/app', '***@ghcr.io/org/app'],
    ['alice:p@ss/w@rd@ghcr.io/org/app:1', '***@ghcr.io/org/app:1'],
    ['https://alice:S3cret@ghcr.io/org/app', 'https://***@ghcr.io/org/app'],
    ['alice:S3cret with space@ghcr.io/org/app', '***@ghcr.io/org/app'],
  ] as const) {
    test(`rejects user info in ${JSON.stringify(shown)}, masked in the message`, () => {
      assert.throws(() => parseReference(input), (e: unknown) => {
        assert.ok(e instanceof InvalidReferenceError && e.code === 'reference');
        assert.ok(e.message.startsWith(`invalid image reference ${JSON.stringify(shown)}: `), e.message);
        assert.ok(!/S3cret|tok3n|alice|p@ss/.test(e.message + e.hint), e.message);
        return true;
      });
    });
  }

  test('an @ before a digest is not user info: the reference keeps it', () => {
    assert.equal(parseReference(`ghcr.io/org/app@${D}`).digest, D);
  });
});
