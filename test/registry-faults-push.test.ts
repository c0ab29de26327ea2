// Pushes through the fault proxy to Debian's docker-registry, with the registry answering in ways
// real ones do: HEAD refused, no upload Location, 503 forever, no Docker-Content-Digest, an OCI
// error with a detail. Each ends in the right digest or a typed error with no tag moved.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RegistryClient, RegistryError, RegistryHttpError, parseReference, pushImage,
} from '../registry-client/index.js';
import { makeImage, makeLayer, noise, proxiedRegistryFixture, type TestImage } from './helpers/registry.js';
import { uploadsByDigest } from './helpers/fault-proxy.js';

const fixture = proxiedRegistryFixture();
const fast = { retries: 4, baseDelayMs: 10, maxDelayMs: 50 };
const clients: RegistryClient[] = [];
after(() => Promise.all(clients.map((c) => c.close())));

function client(): RegistryClient {
  const c = new RegistryClient({ credentials: async () => undefined, retry: fast });
  clients.push(c);
  return c;
}

const input = (img: TestImage) => ({ manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });

/** The tag was never put: no manifest PUT reached the registry, and the tag is unknown. */
async function assertNoTag(c: RegistryClient, repository: string, tag: string): Promise<void> {
  const { proxy } = fixture;
  assert.deepEqual(proxy.requests().filter((r) => r.method === 'PUT' && r.path.includes('/manifests/')), []);
  await assert.rejects(c.getManifest({ registry: proxy.host, repository }, tag), (e: unknown) => e instanceof RegistryHttpError && e.status === 404);
}

for (const status of [400, 405]) {
  test(`a blob HEAD answered ${status} is taken as "not there": the blob is uploaded and the push ends with the right digest`, async (t) => {
    if (!(await fixture.need(t))) return;
    const { proxy } = fixture;
    const img = await makeImage([await makeLayer({ 'etc/head': `HEAD ${status}\n` })]);
    proxy.clearLog();
    proxy.inject({ match: (r) => r.method === 'HEAD' && r.path.includes('/blobs/'), times: 100, fault: { kind: 'status', status, body: '' } });
    const c = client();
    const result = await pushImage(c, parseReference(`${proxy.host}/faults/head${status}:1`), input(img));
    proxy.clearFaults();
    assert.equal(result.digest, img.manifestDigest);
    assert.equal(result.uploaded, 2);
    assert.deepEqual(uploadsByDigest(proxy.requests()), { [img.config.digest]: 1, [img.layers[0]!.digest]: 1 });
    assert.equal((await c.getManifest({ registry: proxy.host, repository: `faults/head${status}` }, '1')).digest, img.manifestDigest);
  });
}

test('a blob HEAD answering 500 after the retries is a typed error naming it, and no tag moves', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/head500': 'HEAD 500\n' })]);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'HEAD' && r.path.includes('/blobs/'), times: 100, fault: { kind: 'status', status: 500 } });
  const c = client();
  await assert.rejects(pushImage(c, parseReference(`${proxy.host}/faults/head500:1`), input(img)), (e: unknown) =>
    e instanceof RegistryHttpError && e.code === 'registry-http' && e.status === 500 && e.method === 'HEAD'
      && /^check blob sha256:[0-9a-f]{64} in 127\.0\.0\.1:\d+\/faults\/head500: HEAD 127\.0\.0\.1:\d+\/v2\/faults\/head500\/blobs\/sha256:[0-9a-f]{64} answered 500 \(Internal Server Error\)$/.test(e.message));
  proxy.clearFaults();
  await assertNoTag(c, 'faults/head500', '1');
});

test('an upload POST answered 202 without a Location is a typed error, and no tag moves', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/nolocation': 'where to?\n' })]);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'POST' && r.path.endsWith('/blobs/uploads/'), times: 100, fault: { kind: 'status', status: 202, body: '' } });
  const c = client();
  await assert.rejects(pushImage(c, parseReference(`${proxy.host}/faults/nolocation:1`), input(img)), (e: unknown) =>
    e instanceof RegistryHttpError && e.status === 202 && e.method === 'POST'
      && /^upload blob sha256:[0-9a-f]{64} \(\d+ bytes\) to 127\.0\.0\.1:\d+\/faults\/nolocation: the registry answered 202 with no upload Location: POST /.test(e.message)
      && /no Location header/.test(e.hint ?? ''));
  proxy.clearFaults();
  await assertNoTag(c, 'faults/nolocation', '1');
});

test('upload POSTs answered 503 forever get 1 + retries attempts per blob, not that squared; the error names the status', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/a': 'a\n' }), await makeLayer({ 'etc/b': 'b\n' }), await makeLayer({ 'etc/c': 'c\n' })]);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'POST' && r.path.endsWith('/blobs/uploads/'), times: 1000, fault: { kind: 'status', status: 503 } });
  const c = client();
  await assert.rejects(pushImage(c, parseReference(`${proxy.host}/faults/post503:1`), input(img)), (e: unknown) =>
    e instanceof RegistryHttpError && e.status === 503 && e.method === 'POST'
      && / gave up after 5 attempts: POST 127\.0\.0\.1:\d+\/v2\/faults\/post503\/blobs\/uploads\/ answered 503 \(UNAVAILABLE: injected by the fault proxy\)$/.test(e.message));
  proxy.clearFaults();
  const posts = proxy.requests().filter((r) => r.method === 'POST').length;
  // Four blobs, at most 5 POSTs each (the first to fail for good cancels the others).
  assert.ok(posts <= 4 * (fast.retries + 1), `${posts} POSTs`);
  assert.ok(posts >= fast.retries + 1, `${posts} POSTs`);
  await assertNoTag(c, 'faults/post503', '1');
});

test('the first blob that fails for good cancels an upload still in flight, and its error is the one shown', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const small = await makeLayer({ 'etc/refused': 'refused\n' });
  const big = await makeLayer({ 'data/in-flight': noise(512 * 1024, 'in-flight') });
  const img = await makeImage([small, big]);
  proxy.clearLog();
  // The big blob's PUT hangs (the client would wait a minute for it); the small one's is refused
  // for good a moment later, while the big one is in flight.
  proxy.inject({ match: (r) => r.method === 'PUT' && r.query.includes(big.digest), times: 1, fault: { kind: 'hang' } });
  proxy.inject({
    match: (r) => r.method === 'PUT' && r.query.includes(small.digest), times: 1,
    fault: { kind: 'status', status: 400, delayMs: 300, body: '{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"refused by the test"}]}' },
  });
  const c = new RegistryClient({ credentials: async () => undefined, retry: fast, timeouts: { responseMs: 60_000 } });
  clients.push(c);
  await assert.rejects(pushImage(c, parseReference(`${proxy.host}/faults/cancel:1`), input(img)), (e: unknown) =>
    e instanceof RegistryHttpError && e.status === 400 && /BLOB_UPLOAD_INVALID: refused by the test/.test(e.message));
  proxy.clearFaults();
  const hung = proxy.requests().filter((r) => r.status === 'hang');
  assert.equal(hung.length, 1);
  assert.equal(hung[0]!.clientClosed, true, 'the upload in flight was cancelled');
  await assertNoTag(c, 'faults/cancel', '1');
});

test('a manifest PUT answered without Docker-Content-Digest is confirmed by reading it back: right digest', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/confirm': 'read me back\n' })]);
  proxy.clearLog();
  proxy.inject({ match: (r) => r.method === 'PUT' && r.path.includes('/manifests/'), times: 1, fault: { kind: 'headers', edit: (h) => ({ ...h, 'docker-content-digest': undefined }) } });
  const result = await pushImage(client(), parseReference(`${proxy.host}/faults/confirm:1`), input(img));
  assert.equal(result.digest, img.manifestDigest);
  const after = proxy.requests().map((r) => `${r.method} ${r.path}`);
  const put = after.indexOf('PUT /v2/faults/confirm/manifests/1');
  assert.ok(put >= 0 && after[put + 1] === 'GET /v2/faults/confirm/manifests/1', after.join('\n'));
});

test('a blob HEAD answered 200 without Docker-Content-Digest is not taken as held: the blob is sent again', async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/unconfirmed': 'is it there?\n' })]);
  const ref = parseReference(`${proxy.host}/faults/unconfirmed:1`);
  const c = client();
  await pushImage(c, ref, input(img));
  proxy.clearLog();
  // The registry holds every blob; its HEADs (and the manifest's) now say 200 without the digest.
  proxy.inject({ match: (r) => r.method === 'HEAD', times: 100, fault: { kind: 'headers', edit: (h) => ({ ...h, 'docker-content-digest': undefined }) } });
  const again = await pushImage(c, ref, input(img));
  proxy.clearFaults();
  assert.equal(again.digest, img.manifestDigest);
  assert.equal(again.alreadyThere, false);
  assert.deepEqual(uploadsByDigest(proxy.requests()), { [img.config.digest]: 1, [img.layers[0]!.digest]: 1 });
});

test("the registry's OCI error detail is in the message", async (t) => {
  if (!(await fixture.need(t))) return;
  const { proxy } = fixture;
  const img = await makeImage([await makeLayer({ 'etc/detail': 'detail\n' })]);
  proxy.inject({
    match: (r) => r.method === 'PUT' && r.path === '/v2/faults/detail/manifests/1', times: 1,
    fault: { kind: 'status', status: 400, body: '{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"reason":"layer 0 is not gzip"}}]}' },
  });
  await assert.rejects(pushImage(client(), parseReference(`${proxy.host}/faults/detail:1`), input(img)), (e: unknown) =>
    e instanceof RegistryError && e.message.endsWith('answered 400 (MANIFEST_INVALID: manifest invalid: {"reason":"layer 0 is not gzip"})'));
});
