import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  RegistryAuthError, RegistryClient, RegistryTlsError, defaultCredentialProvider, login, parseReference, pullImage, pushImage,
} from '../registry-client/index.js';
import { toolFixture } from './helpers/tools.js';
import { makeImage, makeLayer, makeTestCa, startRegistry, type RunningRegistry, type TestCa } from './helpers/registry.js';
import { startTokenServer, type TokenServer } from './helpers/token-server.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';

const fast = { retries: 3, baseDelayMs: 10, maxDelayMs: 50 };
const PASSWORD = 'correct-horse-battery';

describe('htpasswd (bcrypt) over TLS with a self-signed CA', () => {
  let tmp: string;
  let ca: TestCa;
  let reg: RunningRegistry;
  const clients: RegistryClient[] = [];
  const client = (o: ConstructorParameters<typeof RegistryClient>[0]) => {
    const c = new RegistryClient({ retry: fast, ...o });
    clients.push(c);
    return c;
  };

  const registry = toolFixture(['docker-registry', 'openssl', 'htpasswd'], async () => {
    tmp = await mkdtemp(join(tmpdir(), 'imgbuild-auth-tls-'));
    ca = makeTestCa(tmp);
    reg = await startRegistry({ tls: ca, htpasswd: { alice: PASSWORD } });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('push with user:password and the CA; skopeo (trusting the same CA) sees the same digest', async (t) => {
    if (!(await registry.need(t, 'skopeo'))) return;
    const c = client({ ca: ca.caCert, credentials: defaultCredentialProvider({ explicit: { [reg.host]: `alice:${PASSWORD}` }, useDockerConfig: false }) });
    const img = await makeImage([await makeLayer({ 'etc/tls': 'over tls\n' })]);
    const result = await pushImage(c, parseReference(`${reg.host}/tls/app:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);
    const certDir = join(tmp, 'skopeo-certs');
    await mkdir(certDir, { recursive: true });
    await copyFile(ca.caCertPath, join(certDir, 'ca.crt'));
    const out = JSON.parse(execFileSync('skopeo', ['inspect', '--cert-dir', certDir, '--creds', `alice:${PASSWORD}`, `docker://${reg.host}/tls/app:1`]).toString()) as { Digest: string };
    assert.equal(out.Digest, img.manifestDigest);
  });

  test('a wrong password is refused with an error naming the user, where the credential came from and the scope, never the password', async (t) => {
    if (!(await registry.need(t))) return;
    const c = client({ ca: ca.caCert, credentials: defaultCredentialProvider({ explicit: { [reg.host]: 'alice:not-the-password' }, useDockerConfig: false }) });
    const img = await makeImage([await makeLayer({ 'x': 'x' })]);
    const err = await pushImage(c, parseReference(`${reg.host}/tls/denied:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof RegistryAuthError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.credentialSource, `given explicitly for ${reg.host}`);
    assert.deepEqual(err.scopes, ['repository:tls/denied:pull,push']);
    assert.match(err.message, new RegExp(`${reg.host} refused repository:tls/denied:pull,push .*user "alice" given explicitly for ${reg.host}`));
    assert.doesNotMatch(`${err.message} ${err.hint ?? ''}`, /not-the-password/);
  });

  test('credentials from DOCKER_CONFIG/config.json work, and a refusal names that file', async (t) => {
    if (!(await registry.need(t))) return;
    const dir = join(tmp, 'docker-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } } }));
    const good = client({ ca: ca.caCert, credentials: defaultCredentialProvider({ env: { DOCKER_CONFIG: dir } }) });
    const img = await makeImage([await makeLayer({ 'etc/cfg': 'from config.json\n' })]);
    const result = await pushImage(good, parseReference(`${reg.host}/tls/config:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);

    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}`]: { auth: Buffer.from('alice:stale').toString('base64') } } }));
    const bad = client({ ca: ca.caCert, credentials: defaultCredentialProvider({ env: { DOCKER_CONFIG: dir } }) });
    await assert.rejects(bad.getManifest({ registry: reg.host, repository: 'tls/config' }, '1'), (e: unknown) =>
      e instanceof RegistryAuthError && e.message.includes(`from ${join(dir, 'config.json')} for ${reg.host}`) && e.message.includes('repository:tls/config:pull') && !e.message.includes('stale'));
  });

  test('without the CA the TLS failure is reported as a TLS error, not retried', async (t) => {
    if (!(await registry.need(t))) return;
    const c = client({ credentials: async () => undefined });
    await assert.rejects(c.getManifest({ registry: reg.host, repository: 'tls/app' }, '1'), (e: unknown) =>
      e instanceof RegistryTlsError && e.code === 'tls' && e.message.startsWith(`TLS error talking to ${reg.host}:`) && /insecureRegistries/.test(e.hint ?? ''));
  });

  test('naming the host as insecure skips verification for that host only', async (t) => {
    if (!(await registry.need(t))) return;
    const c = client({ insecureRegistries: [reg.host], credentials: defaultCredentialProvider({ explicit: { [reg.host]: `alice:${PASSWORD}` }, useDockerConfig: false }) });
    const m = await c.getManifest({ registry: reg.host, repository: 'tls/app' }, '1');
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    // The scheme stayed HTTPS (the registry speaks only TLS): no plain-HTTP fallback was needed.
    assert.equal(await c.origin(reg.host), `https://${reg.host}`);
  });

  test('login checks the password, then writes config.json (0600) that later pushes use', async (t) => {
    if (!(await registry.need(t))) return;
    const dir = join(tmp, 'login-config');
    await assert.rejects(login(reg.host, { username: 'alice', password: 'wrong' }, { ca: ca.caCert, dockerConfigDir: dir, retry: fast }), RegistryAuthError);
    await assert.rejects(stat(join(dir, 'config.json')), { code: 'ENOENT' });

    const saved = await login(reg.host, { username: 'alice', password: PASSWORD }, { ca: ca.caCert, dockerConfigDir: dir, retry: fast });
    assert.equal(saved.path, join(dir, 'config.json'));
    assert.equal((await stat(saved.path)).mode & 0o777, 0o600);
    const config = JSON.parse(await readFile(saved.path, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.deepEqual(config.auths, { [reg.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } });
    const c = client({ ca: ca.caCert, credentials: defaultCredentialProvider({ dockerConfigDir: dir }) });
    assert.equal((await c.getManifest({ registry: reg.host, repository: 'tls/app' }, '1')).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });
});

describe('token auth (RS256 JWT with x5c from a token server started by the test)', () => {
  let tmp: string;
  let tokens: TokenServer;
  let reg: RunningRegistry;
  const clients: RegistryClient[] = [];
  const client = (creds: string | undefined) => {
    const c = new RegistryClient({
      retry: fast, insecureRegistries: [reg.host, tokens.host],
      credentials: creds ? defaultCredentialProvider({ explicit: { [reg.host]: creds }, useDockerConfig: false }) : async () => undefined,
    });
    clients.push(c);
    return c;
  };

  const registry = toolFixture(['docker-registry', 'openssl'], async () => {
    tmp = await mkdtemp(join(tmpdir(), 'imgbuild-auth-token-'));
    tokens = await startTokenServer(tmp, { alice: PASSWORD });
    reg = await startRegistry({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certPath } });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
    await tokens?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('authenticated push with one token for the whole push, then anonymous pull of the same digests', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'etc/token': 'token auth\n' }), await makeLayer({ 'etc/two': 'second layer\n' })]);
    const before = tokens.requests().length;
    const pushed = await pushImage(client(`alice:${PASSWORD}`), parseReference(`${reg.host}/tok/app:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(pushed.digest, img.manifestDigest);
    const pushTokens = tokens.requests().slice(before);
    assert.deepEqual(pushTokens.map((r) => [r.user, r.scopes, r.service]), [['alice', ['repository:tok/app:pull,push'], tokens.service]]);

    const blobDir = join(tmp, 'pulled');
    const pulled = await pullImage(client(undefined), parseReference(`${reg.host}/tok/app:1`), { blobDir });
    assert.equal(pulled.digest, img.manifestDigest);
    assert.deepEqual(pulled.layers.map((l) => l.digest), img.layers.map((l) => l.digest));
    assert.deepEqual(await readFile(join(blobDir, 'sha256', img.layers[0]!.digest.slice(7))), img.layers[0]!.bytes);
    const anon = tokens.requests().filter((r) => r.user === undefined);
    assert.deepEqual(anon.map((r) => r.granted), [['repository:tok/app:pull']]);
  });

  test('an anonymous push is refused with the scope that was denied', async (t) => {
    if (!(await registry.need(t))) return;
    const img = await makeImage([await makeLayer({ 'x': 'anon' })]);
    const err = await pushImage(client(undefined), parseReference(`${reg.host}/tok/anon:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof RegistryAuthError, String(err));
    assert.equal(err.credentialSource, 'anonymous');
    assert.deepEqual(err.scopes, ['repository:tok/anon:pull,push']);
    assert.match(err.message, /refused repository:tok\/anon:pull,push .*anonymous/);
    assert.match(err.hint ?? '', /imgbuild login/);
  });

  test('a wrong password fails at the token service with a clear error', async (t) => {
    if (!(await registry.need(t))) return;
    const err = await client('alice:guess').getManifest({ registry: reg.host, repository: 'tok/app' }, '1').then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof RegistryAuthError, String(err));
    assert.equal(err.status, 401);
    assert.match(err.message, new RegExp(`token request to http://${tokens.host}/token for repository:tok/app:pull failed: HTTP 401 Unauthorized: invalid username or password; using user "alice" given explicitly`));
    assert.doesNotMatch(err.message, /guess/);
  });

  test('login against a token registry checks the password at the token service before saving it', async (t) => {
    if (!(await registry.need(t))) return;
    const dir = join(tmp, 'token-login');
    const opts = { insecureRegistries: [reg.host, tokens.host], dockerConfigDir: dir, retry: fast };
    await assert.rejects(login(reg.host, { username: 'alice', password: 'nope' }, opts), (e: unknown) => e instanceof RegistryAuthError && e.status === 401);
    await assert.rejects(stat(join(dir, 'config.json')), { code: 'ENOENT' });
    const before = tokens.requests().length;
    await login(reg.host, { username: 'alice', password: PASSWORD }, opts);
    assert.deepEqual(tokens.requests().slice(before).map((r) => [r.user, r.scopes, r.status]), [['alice', [], 200]]);
    const saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.equal(saved.auths[reg.host]?.auth, Buffer.from(`alice:${PASSWORD}`).toString('base64'));
  });

  test('a cross-repository mount asks one token for push on the target and pull on the source', async (t) => {
    if (!(await registry.need(t))) return;
    const shared = await makeLayer({ 'lib/common': 'shared between repos\n' });
    const base = await makeImage([shared]);
    const alice = client(`alice:${PASSWORD}`);
    await pushImage(alice, parseReference(`${reg.host}/tok/base:1`), { manifest: { bytes: base.manifest, mediaType: base.mediaType }, blobs: base.blobs });
    const app = await makeImage([shared, await makeLayer({ 'app': 'app' })]);
    const before = tokens.requests().length;
    const result = await pushImage(alice, parseReference(`${reg.host}/tok/derived:1`), {
      manifest: { bytes: app.manifest, mediaType: app.mediaType },
      blobs: app.blobs.map((b) => (b.digest === shared.digest ? { ...b, mountFrom: ['tok/base'] } : b)),
    });
    assert.equal(result.mounted, 1);
    assert.equal(result.uploaded, 2);
    assert.deepEqual(tokens.requests().slice(before).map((r) => r.scopes), [['repository:tok/base:pull', 'repository:tok/derived:pull,push']]);
  });
});

describe('a blob redirect to another host never carries Authorization', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let storage: { port: number; seen: IncomingHttpHeaders[]; close(): Promise<void> };
  let tmp: string;
  let client: RegistryClient;

  const registry = toolFixture(['docker-registry', 'htpasswd'], async () => {
    tmp = await mkdtemp(join(tmpdir(), 'imgbuild-redirect-'));
    reg = await startRegistry({ htpasswd: { alice: PASSWORD } });
    proxy = await startFaultProxy(reg.port);
    const blobs = new Map<string, Buffer>();
    const seen: IncomingHttpHeaders[] = [];
    const srv = createServer((req, res) => {
      seen.push(req.headers);
      const bytes = blobs.get((req.url ?? '').replace('/storage/', ''));
      res.writeHead(bytes ? 200 : 404, { 'content-length': String(bytes?.length ?? 0) });
      res.end(bytes);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    storage = { port: (srv.address() as AddressInfo).port, seen, close: () => new Promise((r) => srv.close(() => r())) };
    (storage as unknown as { blobs: Map<string, Buffer> }).blobs = blobs;
    client = new RegistryClient({ retry: fast, insecureRegistries: [proxy.host], credentials: defaultCredentialProvider({ explicit: { [proxy.host]: `alice:${PASSWORD}` }, useDockerConfig: false }) });
  });
  after(async () => {
    await client?.close();
    await proxy?.stop();
    await storage?.close();
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('pull follows the 307 to the storage host without the registry credential and verifies the bytes', async (t) => {
    if (!(await registry.need(t))) return;
    const layer = await makeLayer({ 'etc/redirected': 'served by the storage host\n' });
    const img = await makeImage([layer]);
    await pushImage(client, parseReference(`${proxy.host}/redir/app:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    (storage as unknown as { blobs: Map<string, Buffer> }).blobs.set(layer.digest, layer.bytes);
    proxy.clearLog();
    proxy.inject({
      match: (r) => r.method === 'GET' && r.path === `/v2/redir/app/blobs/${layer.digest}`, times: 1,
      fault: { kind: 'redirect', location: () => `http://127.0.0.1:${storage.port}/storage/${layer.digest}` },
    });
    const pulled = await pullImage(client, parseReference(`${proxy.host}/redir/app:1`), { blobDir: join(tmp, 'blobs') });
    assert.deepEqual(pulled.layers.map((l) => l.digest), [layer.digest]);
    assert.equal(storage.seen.length, 1);
    assert.equal(storage.seen[0]?.authorization, undefined);
    const layerGet = proxy.requests().find((r) => r.path === `/v2/redir/app/blobs/${layer.digest}`);
    assert.deepEqual([layerGet?.status, layerGet?.authorized], [307, true], 'the registry itself did get the credential');
    assert.deepEqual(await readFile(join(tmp, 'blobs/sha256', layer.digest.slice(7))), layer.bytes);
  });
});
