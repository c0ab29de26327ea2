// Token services that fail once or hand out short-lived tokens, and a private base image: a
// token registry (docker-registry with our token server, a fault proxy in front of the token
// server) and an htpasswd registry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient, defaultCredentialProvider, parseReference, pushImage } from '../registry-client/index.js';
import { runCli } from './helpers/cli.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { makeImage, makeLayer, startRegistry, type RunningRegistry } from './helpers/registry.js';
import { startTokenServer, type TokenServer } from './helpers/token-server.js';
import { toolFixture } from './helpers/tools.js';
import { tempDir } from './helpers/tmp.js';

const PASSWORD = 'fault-pass';
const fast = { retries: 4, baseDelayMs: 10, maxDelayMs: 50 };
const clients: RegistryClient[] = [];
after(() => Promise.all(clients.map((c) => c.close())));

function client(registry: string, creds: string | undefined, insecure: string[]): RegistryClient {
  const c = new RegistryClient({
    retry: fast, insecureRegistries: insecure,
    credentials: creds ? defaultCredentialProvider({ explicit: { [registry]: creds }, useDockerConfig: false }) : async () => undefined,
  });
  clients.push(c);
  return c;
}

describe('a token service behind the fault proxy, handing out 10-second tokens', () => {
  let tokens: TokenServer;
  let tokenProxy: FaultProxy;
  let reg: RunningRegistry;
  const fixture = toolFixture(['docker-registry', 'openssl'], async () => {
    const tmp = await tempDir('imgbuild-faults-token-');
    tokens = await startTokenServer(tmp, { alice: PASSWORD }, { expiresIn: 10 });
    tokenProxy = await startFaultProxy(Number(tokens.host.split(':')[1]));
    reg = await startRegistry({ token: { realm: `http://${tokenProxy.host}/token`, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.certPath } });
  });
  after(async () => {
    await reg?.stop();
    await tokenProxy?.stop();
    await tokens?.stop();
  });

  test('a 503 from the token service is retried like any other request: the push ends with the right digest', async (t) => {
    if (!(await fixture.need(t))) return;
    const img = await makeImage([await makeLayer({ 'etc/token503': 'token 503\n' })]);
    tokenProxy.clearLog();
    tokenProxy.inject({ match: (r) => r.path === '/token', times: 1, fault: { kind: 'status', status: 503 } });
    const c = client(reg.host, `alice:${PASSWORD}`, [reg.host, tokenProxy.host]);
    const result = await pushImage(c, parseReference(`${reg.host}/tok/retried:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);
    assert.deepEqual(tokenProxy.requests().map((r) => r.status), [503, 200]);
  });

  test('a 10-second token serves a whole push: one token request, not one per request', async (t) => {
    if (!(await fixture.need(t))) return;
    const img = await makeImage([await makeLayer({ 'etc/a': 'a\n' }), await makeLayer({ 'etc/b': 'b\n' }), await makeLayer({ 'etc/c': 'c\n' })]);
    tokenProxy.clearLog();
    const c = client(reg.host, `alice:${PASSWORD}`, [reg.host, tokenProxy.host]);
    const result = await pushImage(c, parseReference(`${reg.host}/tok/short:1`), { manifest: { bytes: img.manifest, mediaType: img.mediaType }, blobs: img.blobs });
    assert.equal(result.digest, img.manifestDigest);
    assert.equal(tokenProxy.requests().length, 1);
  });
});

describe('a private base image on an htpasswd registry', () => {
  let reg: RunningRegistry;
  let work: string;
  let spec: string;
  const fixture = toolFixture(['docker-registry', 'htpasswd'], async () => {
    reg = await startRegistry({ htpasswd: { alice: PASSWORD } });
  });
  before(async () => {
    work = await tempDir('imgbuild-faults-creds-');
    await mkdir(join(work, 'docker'));
  });
  after(() => reg?.stop());

  async function pushBase(): Promise<string> {
    const base = await makeImage([await makeLayer({ 'etc/base-release': 'private base\n' })]);
    const ref = `${reg.host}/private/base:1`;
    await pushImage(client(reg.host, `alice:${PASSWORD}`, []), parseReference(ref), { manifest: { bytes: base.manifest, mediaType: base.mediaType }, blobs: base.blobs });
    spec = join(work, 'image.json');
    await writeFile(spec, JSON.stringify({ name: 'faults/on-private-base', tag: '1', fromImage: ref, files: [{ path: '/etc/app', content: 'on a private base\n' }] }));
    return ref;
  }

  test('--creds applies to the fromImage registry: the build reads the private base', async (t) => {
    if (!(await fixture.need(t))) return;
    await pushBase();
    const r = await runCli(['build', spec, '-o', join(work, 'out.oci'), '--creds', `alice:${PASSWORD}`], { env: { ...process.env, DOCKER_CONFIG: join(work, 'docker') } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^sha256:[0-9a-f]{64}\n$/);
  });

  test('without credentials the refusal names the registry, and its hint names --creds, which applies there', async (t) => {
    if (!(await fixture.need(t))) return;
    await pushBase();
    const r = await runCli(['build', spec, '-o', join(work, 'refused.oci')], { env: { ...process.env, DOCKER_CONFIG: join(work, 'docker') } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error\\[auth\\]: get manifest ${reg.host}/private/base:1: ${reg.host} refused repository:private/base:pull \\(HTTP 401.*\\) using anonymous`, 'm'));
    assert.match(r.stderr, new RegExp(`^hint: log in first \\(imgbuild login ${reg.host}\\) or pass --creds user:password$`, 'm'));
  });

  test('a registry --creds does not apply to gets a hint without it', async (t) => {
    if (!(await fixture.need(t))) return;
    await pushBase();
    // `--previous` reads a registry image, and --creds is not for it (only for fromImage and the push target).
    const own = join(work, 'own.json');
    await writeFile(own, JSON.stringify({ name: 'faults/own', tag: '1', architecture: 'amd64', files: [{ path: '/etc/app', content: 'no base\n' }] }));
    const r = await runCli(['build', own, '-o', join(work, 'own.oci'), '--previous', `docker://${reg.host}/private/base:1`, '--creds', `alice:${PASSWORD}`], { env: { ...process.env, DOCKER_CONFIG: join(work, 'docker') } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^error\\[auth\\]: .* using anonymous`, 'm'));
    assert.match(r.stderr, new RegExp(`^hint: log in first \\(imgbuild login ${reg.host}\\)$`, 'm'));
  });
});
