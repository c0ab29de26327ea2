import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MockAgent } from 'undici';
import {
  PlatformNotFoundError, RegistryClient, defaultCredentialProvider, parseReference, pullImage, pushImage, resolveImage, GHCR_CHUNK_SIZE,
} from '../registry-client/index.js';
import { nextPage } from '../registry-client/client.js';
import { noise } from './helpers/registry.js';

// GHCR and Docker Hub behaviours a local registry cannot produce, played by undici's MockAgent.
// No request leaves the process: net connect is disabled.

interface Seen { origin: string; method: string; path: string; headers: Record<string, string>; bodyLength: number }

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}` as const;
const fast = { retries: 2, baseDelayMs: 1, maxDelayMs: 5 };

function lowerHeaders(h: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(h)) for (let i = 0; i + 1 < h.length; i += 2) out[String(h[i]).toLowerCase()] = String(h[i + 1]);
  else if (h && typeof h === 'object') for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = String(v);
  return out;
}

describe('registry behaviours played by MockAgent', () => {
  let agent: MockAgent;
  let seen: Seen[];
  let client: RegistryClient;
  let tmp: string;

  /** Answer `method origin+path` (path: exact, or a predicate) with a reply function, recording the request. */
  const on = (origin: string, method: string, path: string | ((p: string) => boolean), reply: (s: Seen) => { status: number; body?: string | Buffer; headers?: Record<string, string> }, times = 1) => {
    agent.get(origin).intercept({ method, path }).reply((opts) => {
      const body = opts.body;
      const s: Seen = { origin, method, path: opts.path, headers: lowerHeaders(opts.headers), bodyLength: Buffer.isBuffer(body) || body instanceof Uint8Array ? body.byteLength : typeof body === 'string' ? body.length : 0 };
      seen.push(s);
      const r = reply(s);
      return { statusCode: r.status, data: r.body ?? '', responseOptions: { headers: r.headers ?? {} } };
    }).times(times);
  };

  beforeEach(async () => {
    agent = new MockAgent();
    agent.disableNetConnect();
    seen = [];
    tmp = await mkdtemp(join(tmpdir(), 'imgbuild-mock-'));
  });
  afterEach(async () => {
    await client?.close();
    await agent.close();
    await rm(tmp, { recursive: true, force: true });
  });

  test('tags listed over the pages a registry sends unasked (Link rel="next"), with one token', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    on('https://ghcr.io', 'GET', '/v2/', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://ghcr.io/token",service="ghcr.io"' } }));
    on('https://ghcr.io', 'GET', (p) => p.startsWith('/token?'), () => ({ status: 200, body: JSON.stringify({ token: 'dG9rZW4=' }) }));
    on('https://ghcr.io', 'GET', '/v2/org/app/tags/list', () => ({ status: 200, body: JSON.stringify({ tags: ['1.0', '1.1'] }), headers: { link: '</v2/org/app/tags/list?last=1.1&n=2>; rel="next"' } }));
    on('https://ghcr.io', 'GET', '/v2/org/app/tags/list?last=1.1&n=2', () => ({ status: 200, body: JSON.stringify({ tags: ['2.0'] }) }));
    assert.deepEqual(await client.listTags({ registry: 'ghcr.io', repository: 'org/app' }), ['1.0', '1.1', '2.0']);
    assert.deepEqual(seen.filter((s) => s.path.includes('/tags/list')).map((s) => s.headers.authorization), ['Bearer dG9rZW4=', 'Bearer dG9rZW4=']);
  });

  test('pages asked for with pageSize are followed with the last tag each page names; a page sent twice ends the list with an error', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    on('https://registry.example', 'GET', '/v2/', () => ({ status: 200, body: '{}' }));
    on('https://registry.example', 'GET', '/v2/org/app/tags/list?n=2', () => ({ status: 200, body: JSON.stringify({ tags: ['a', 'b'] }), headers: { link: '</v2/org/app/tags/list?n=2&last=b>; rel="next"' } }));
    on('https://registry.example', 'GET', '/v2/org/app/tags/list?n=2&last=b', () => ({ status: 200, body: JSON.stringify({ tags: ['c'] }) }));
    assert.deepEqual(await client.listTags({ registry: 'registry.example', repository: 'org/app' }, { pageSize: 2 }), ['a', 'b', 'c']);
    // A registry whose next page points back at itself.
    on('https://registry.example', 'GET', '/v2/org/loop/tags/list', () => ({ status: 200, body: JSON.stringify({ tags: ['a'] }), headers: { link: '</v2/org/loop/tags/list?last=a>; rel="next"' } }));
    on('https://registry.example', 'GET', '/v2/org/loop/tags/list?last=a', () => ({ status: 200, body: JSON.stringify({ tags: ['b'] }), headers: { link: '</v2/org/loop/tags/list?last=a>; rel="next"' } }), 2);
    await assert.rejects(client.listTags({ registry: 'registry.example', repository: 'org/loop' }), {
      name: 'RegistryError',
      message: 'list tags of registry.example/org/loop: the registry sent the page /v2/org/loop/tags/list?last=a twice; the list does not end',
    });
  });

  test('a next page on another host is not followed: the credential stays with the registry', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => ({ kind: 'basic', username: 'u', password: 'secret-pw', source: 'test' }) });
    on('https://ghcr.io', 'GET', '/v2/', () => ({ status: 200, body: '{}' }));
    on('https://ghcr.io', 'GET', '/v2/org/app/tags/list', () => ({ status: 200, body: JSON.stringify({ tags: ['1.0'] }), headers: { link: '<https://elsewhere.example/v2/org/app/tags/list?last=1.0>; rel="next"' } }));
    await assert.rejects(client.listTags({ registry: 'ghcr.io', repository: 'org/app' }), {
      name: 'RegistryError',
      message: 'list tags of ghcr.io/org/app: the next page is on another host (https://elsewhere.example); not followed',
    });
    assert.deepEqual(seen.map((s) => s.origin), ['https://ghcr.io', 'https://ghcr.io']);
  });

  test("GHCR's anonymous token dance: 401 from /v2/, an anonymous token from ghcr.io/token, then the manifest with that token", async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('{}'), size: 2 }, layers: [] });
    on('https://ghcr.io', 'GET', '/v2/', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"' } }));
    on('https://ghcr.io', 'GET', (p) => p.startsWith('/token?'), () => ({ status: 200, body: JSON.stringify({ token: 'djE6b3JnL2FwcDox' }) }));
    on('https://ghcr.io', 'GET', '/v2/org/app/manifests/1.0', () => ({ status: 200, body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha(manifest) } }));

    const m = await client.getManifest(parseReference('ghcr.io/org/app:1.0'), '1.0');
    assert.equal(m.digest, sha(manifest));
    const token = seen.find((s) => s.path.startsWith('/token'))!;
    const q = new URL(token.path, 'https://ghcr.io').searchParams;
    assert.deepEqual([q.get('service'), q.getAll('scope'), q.get('account'), token.headers.authorization], ['ghcr.io', ['repository:org/app:pull'], null, undefined]);
    assert.equal(seen.at(-1)!.headers.authorization, 'Bearer djE6b3JnL2FwcDox');
    assert.match(seen.at(-1)!.headers.accept ?? '', /application\/vnd\.oci\.image\.index\.v1\+json/);
  });

  test('GHCR push uses GITHUB_TOKEN and PATCH chunks of at most 4 MiB with Content-Range', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: defaultCredentialProvider({ env: { GITHUB_TOKEN: 'ghs_secretvalue', GITHUB_ACTOR: 'octocat' }, useDockerConfig: false }) });
    const blob = noise(9 * 1024 * 1024 + 123, 'ghcr');
    const digest = sha(blob);
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: blob.length }] }));
    on('https://ghcr.io', 'GET', '/v2/', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://ghcr.io/token",service="ghcr.io"' } }));
    on('https://ghcr.io', 'GET', (p) => p.startsWith('/token?'), () => ({ status: 200, body: '{"token":"pushtoken"}' }));
    on('https://ghcr.io', 'HEAD', `/v2/org/app/manifests/${sha(manifest)}`, () => ({ status: 404 }));
    on('https://ghcr.io', 'HEAD', (p) => p.startsWith('/v2/org/app/blobs/'), () => ({ status: 404 }), 2);
    let session = 0;
    on('https://ghcr.io', 'POST', '/v2/org/app/blobs/uploads/', () => ({ status: 202, headers: { location: `/v2/org/app/blobs/uploads/s${++session}` } }), 2);
    let received = 0;
    on('https://ghcr.io', 'PATCH', (p) => p.startsWith('/v2/org/app/blobs/uploads/'), (s) => {
      received += s.bodyLength;
      return { status: 202, headers: { location: s.path, range: `0-${received - 1}` } };
    }, 3);
    on('https://ghcr.io', 'PUT', (p) => p.startsWith('/v2/org/app/blobs/uploads/'), (s) => ({ status: 201, headers: { 'docker-content-digest': new URL(s.path, 'https://x').searchParams.get('digest')! } }), 2);
    on('https://ghcr.io', 'PUT', '/v2/org/app/manifests/v1', () => ({ status: 201, headers: { 'docker-content-digest': sha(manifest) } }));

    const result = await pushImage(client, parseReference('ghcr.io/org/app:v1'), {
      manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      blobs: [{ digest: sha(config), size: config.length, open: () => Readable.from([config]) }, { digest, size: blob.length, open: () => Readable.from([blob]) }],
    });
    assert.equal(result.digest, sha(manifest));
    assert.equal(result.bytesSent, blob.length + config.length);
    const token = seen.find((s) => s.path.startsWith('/token'))!;
    assert.equal(token.headers.authorization, `Basic ${Buffer.from('octocat:ghs_secretvalue').toString('base64')}`);
    const patches = seen.filter((s) => s.method === 'PATCH');
    assert.deepEqual(patches.map((p) => p.headers['content-range']), [`0-${GHCR_CHUNK_SIZE - 1}`, `${GHCR_CHUNK_SIZE}-${2 * GHCR_CHUNK_SIZE - 1}`, `${2 * GHCR_CHUNK_SIZE}-${blob.length - 1}`]);
    assert.ok(patches.every((p) => p.bodyLength <= GHCR_CHUNK_SIZE));
    const manifestPut = seen.find((s) => s.path === '/v2/org/app/manifests/v1')!;
    assert.equal(manifestPut.headers['content-type'], 'application/vnd.oci.image.manifest.v1+json');
  });

  describe('Docker Hub', () => {
    const amd64 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: sha('cfg-amd64'), size: 9 }, layers: [] }));
    const configArm = Buffer.from(JSON.stringify({ architecture: 'arm64', variant: 'v8', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('layer-tar')] }, config: { Env: ['PATH=/bin'] } }));
    const layerArm = Buffer.from('pretend this is a gzip layer');
    const arm64 = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(configArm), size: configArm.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layerArm), size: layerArm.length }] }));
    const entry = (m: Buffer, platform: object, annotations?: object) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(m), size: m.length, platform, ...(annotations ? { annotations } : {}) });
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [
        entry(amd64, { architecture: 'amd64', os: 'linux' }),
        entry(Buffer.from('v6'), { architecture: 'arm', os: 'linux', variant: 'v6' }),
        entry(arm64, { architecture: 'arm64', os: 'linux', variant: 'v8' }),
        entry(Buffer.from('att'), { architecture: 'unknown', os: 'unknown' }, { 'vnd.docker.reference.type': 'attestation-manifest' }),
      ],
    }));
    const hub = 'https://registry-1.docker.io';
    const challenge = () => on(hub, 'GET', '/v2/', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"' } }));
    const tokenService = (times = 1) => on('https://auth.docker.io', 'GET', (p) => p.startsWith('/token?'), () => ({ status: 200, body: JSON.stringify({ token: 'hubtoken', access_token: 'hubtoken', expires_in: 300, issued_at: '2026-01-01T00:00:00Z' }) }), times);
    const serve = (path: string, body: Buffer, type: string) => on(hub, 'GET', path, () => ({ status: 200, body, headers: { 'content-type': type, 'docker-content-digest': sha(body) } }));

    test('"alpine" is library/alpine:latest on registry-1.docker.io, with a token from auth.docker.io', async () => {
      client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
      challenge();
      tokenService();
      serve('/v2/library/alpine/manifests/latest', amd64, 'application/vnd.docker.distribution.manifest.v2+json');
      const ref = parseReference('alpine');
      assert.equal(ref.toString(), 'docker.io/library/alpine:latest');
      const resolved = await resolveImage(client, ref, { os: 'linux', architecture: 'amd64' });
      assert.equal(resolved.digest, sha(amd64));
      const token = new URL(seen.find((s) => s.origin === 'https://auth.docker.io')!.path, 'https://auth.docker.io').searchParams;
      assert.deepEqual([token.get('service'), token.getAll('scope')], ['registry.docker.io', ['repository:library/alpine:pull']]);
    });

    test('an index resolves to the arm64/v8 manifest; the layer download follows a redirect to the CDN without Authorization', async () => {
      client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
      challenge();
      tokenService();
      serve('/v2/library/busybox/manifests/1.36', index, 'application/vnd.oci.image.index.v1+json');
      serve(`/v2/library/busybox/manifests/${sha(arm64)}`, arm64, 'application/vnd.oci.image.manifest.v1+json');
      serve(`/v2/library/busybox/blobs/${sha(configArm)}`, configArm, 'application/octet-stream');
      on(hub, 'GET', `/v2/library/busybox/blobs/${sha(layerArm)}`, () => ({ status: 307, headers: { location: `https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/${sha(layerArm).slice(7, 9)}/${sha(layerArm).slice(7)}/data?verify=sig` } }));
      on('https://production.cloudflare.docker.com', 'GET', (p) => p.startsWith('/registry-v2/'), () => ({ status: 200, body: layerArm }));

      const blobDir = join(tmp, 'blobs');
      const pulled = await pullImage(client, parseReference('busybox:1.36'), { blobDir, platform: { os: 'linux', architecture: 'arm64' } });
      assert.equal(pulled.digest, sha(arm64));
      assert.equal(pulled.index?.digest, sha(index));
      assert.deepEqual(pulled.config.config?.Env, ['PATH=/bin']);
      assert.deepEqual(await readFile(join(blobDir, 'sha256', sha(layerArm).slice(7))), layerArm);
      const cdn = seen.find((s) => s.origin === 'https://production.cloudflare.docker.com')!;
      assert.equal(cdn.headers.authorization, undefined);
      assert.equal(seen.find((s) => s.path === `/v2/library/busybox/blobs/${sha(layerArm)}`)!.headers.authorization, 'Bearer hubtoken');
      assert.equal(seen.filter((s) => s.origin === 'https://auth.docker.io').length, 1, 'one token served every request');
    });

    test('an index without the wanted platform names the platforms it has', async () => {
      client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
      challenge();
      tokenService();
      serve('/v2/library/busybox/manifests/1.36', index, 'application/vnd.oci.image.index.v1+json');
      await assert.rejects(resolveImage(client, parseReference('busybox:1.36'), { os: 'linux', architecture: 's390x' }), (e: unknown) =>
        e instanceof PlatformNotFoundError && e.message === 'docker.io/library/busybox:1.36 has no image for linux/s390x; it has linux/amd64, linux/arm/v6, linux/arm64/v8, unknown/unknown');
    });

    test('credentials saved under https://index.docker.io/v1/ in config.json are sent to the token service', async () => {
      const dir = join(tmp, 'docker');
      await mkdir(dir);
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') } } }));
      client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: defaultCredentialProvider({ env: { DOCKER_CONFIG: dir } }) });
      challenge();
      tokenService();
      serve('/v2/hubuser/private/manifests/latest', amd64, 'application/vnd.docker.distribution.manifest.v2+json');
      await client.getManifest(parseReference('hubuser/private'), 'latest');
      const token = seen.find((s) => s.origin === 'https://auth.docker.io')!;
      assert.equal(token.headers.authorization, `Basic ${Buffer.from('hubuser:hubpass').toString('base64')}`);
      assert.equal(new URL(token.path, 'https://x').searchParams.get('account'), 'hubuser');
    });

    test('a token the registry rejects as expired is fetched again and the request retried once', async () => {
      client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
      challenge();
      tokenService(2);
      serve('/v2/library/alpine/manifests/latest', amd64, 'application/vnd.docker.distribution.manifest.v2+json');
      on(hub, 'GET', '/v2/library/alpine/manifests/3', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull",error="invalid_token"' } }));
      serve('/v2/library/alpine/manifests/3', amd64, 'application/vnd.docker.distribution.manifest.v2+json');
      const ref = parseReference('alpine');
      await client.getManifest(ref, 'latest');
      await client.getManifest(ref, '3');
      assert.equal(seen.filter((s) => s.origin === 'https://auth.docker.io').length, 2);
      assert.deepEqual(seen.filter((s) => s.path === '/v2/library/alpine/manifests/3').map((s) => s.headers.authorization), ['Bearer hubtoken', 'Bearer hubtoken']);
    });

    test('a 429 from Docker Hub with Retry-After is retried', async () => {
      client = new RegistryClient({ dispatcher: agent, retry: { ...fast, maxRetryAfterMs: 10 }, credentials: async () => undefined });
      challenge();
      tokenService();
      on(hub, 'GET', '/v2/library/alpine/manifests/latest', () => ({ status: 429, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}', headers: { 'retry-after': '3600' } }));
      serve('/v2/library/alpine/manifests/latest', amd64, 'application/vnd.docker.distribution.manifest.v2+json');
      const m = await client.getManifest(parseReference('alpine'), 'latest');
      assert.equal(m.digest, sha(amd64));
    });
  });

  test('an identity token from config.json is exchanged as an OAuth2 refresh token (POST grant_type=refresh_token)', async () => {
    const dir = join(tmp, 'acr');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'myreg.azurecr.io': { auth: Buffer.from('00000000-0000-0000-0000-000000000000:').toString('base64'), identitytoken: 'refresh-xyz' } } }));
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: defaultCredentialProvider({ env: { DOCKER_CONFIG: dir } }) });
    let form: URLSearchParams | undefined;
    on('https://myreg.azurecr.io', 'GET', '/v2/', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io"' } }));
    agent.get('https://myreg.azurecr.io').intercept({ method: 'POST', path: '/oauth2/token', body: (b) => ((form = new URLSearchParams(b)), true) }).reply(200, { access_token: 'acr-access' });
    on('https://myreg.azurecr.io', 'HEAD', `/v2/team/app/blobs/${sha('x')}`, () => ({ status: 200, headers: { 'content-length': '1', 'docker-content-digest': sha('x') } }));
    assert.deepEqual(await client.blobExists({ registry: 'myreg.azurecr.io', repository: 'team/app' }, sha('x')), { exists: true, size: 1 });
    assert.deepEqual(Object.fromEntries(form!), { grant_type: 'refresh_token', refresh_token: 'refresh-xyz', client_id: 'imgbuild', service: 'myreg.azurecr.io', scope: 'repository:team/app:pull' });
    assert.equal(seen.at(-1)!.headers.authorization, 'Bearer acr-access');
  });

  test('a chunk that fails with 503 is resumed from the offset the upload session reports', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    const blob = noise(3 * 1024 * 1024, 'resume');
    const digest = sha(blob);
    const reg = 'https://registry.example.com';
    on(reg, 'GET', '/v2/', () => ({ status: 200 }));
    on(reg, 'POST', '/v2/r/blobs/uploads/', () => ({ status: 202, headers: { location: '/v2/r/blobs/uploads/u1' } }));
    let held = 0;
    let failed = false;
    on(reg, 'PATCH', '/v2/r/blobs/uploads/u1', (s) => {
      const [start] = s.headers['content-range']!.split('-').map(Number);
      assert.equal(start, held, 'each PATCH starts where the session stands');
      if (held === 1024 * 1024 && !failed) {
        failed = true;
        return { status: 503 };
      }
      held += s.bodyLength;
      return { status: 202, headers: { location: '/v2/r/blobs/uploads/u1', range: `0-${held - 1}` } };
    }, 4);
    on(reg, 'GET', '/v2/r/blobs/uploads/u1', () => ({ status: 204, headers: { location: '/v2/r/blobs/uploads/u1', range: `0-${held - 1}` } }));
    on(reg, 'PUT', (p) => p.startsWith('/v2/r/blobs/uploads/u1?'), () => ({ status: 201, headers: { 'docker-content-digest': digest } }));
    const { uploadBlob } = await import('../registry-client/index.js');
    const r = await uploadBlob(client, { registry: 'registry.example.com', repository: 'r' }, { digest, size: blob.length }, { open: () => Readable.from([blob]) }, { chunkSize: 1024 * 1024 });
    assert.deepEqual(r, { how: 'uploaded', bytesSent: blob.length });
    assert.deepEqual(seen.filter((s) => s.method === 'PATCH').map((s) => s.headers['content-range']), ['0-1048575', '1048576-2097151', '1048576-2097151', '2097152-3145727']);
    assert.equal(seen.filter((s) => s.method === 'POST').length, 1, 'the session was resumed, not restarted');
  });

  test('a blob whose bytes do not match its digest is refused and leaves no file behind', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    const good = Buffer.from('the real layer');
    on('https://registry.example.com', 'GET', '/v2/', () => ({ status: 200 }));
    on('https://registry.example.com', 'GET', `/v2/r/blobs/${sha(good)}`, () => ({ status: 200, body: Buffer.from('a tampered one') }));
    const { downloadBlob, DigestMismatchError } = await import('../registry-client/index.js');
    const blobDir = join(tmp, 'cache');
    await assert.rejects(downloadBlob(client, { registry: 'registry.example.com', repository: 'r' }, { mediaType: 'x', digest: sha(good), size: good.length }, blobDir),
      (e: unknown) => e instanceof DigestMismatchError && e.expected === sha(good) && e.actual === sha('a tampered one'));
    assert.deepEqual(await readdir(join(blobDir, 'sha256')), []);
  });

  test('a token is reused until expires_in less a margin of a tenth of its lifetime (at most 10 s), then fetched again', async () => {
    const { Authenticator, ScopeSet } = await import('../registry-client/index.js');
    const { Transport } = await import('../registry-client/transport.js');
    let now = 1_000_000;
    let issued = 0;
    on('https://auth.example.com', 'GET', (p) => p.startsWith('/token?'), () => ({ status: 200, body: JSON.stringify({ token: `t${++issued}`, expires_in: 60 }) }), 2);
    const auth = new Authenticator('registry.example.com', new Transport({ dispatcher: agent }), async () => undefined, () => now);
    auth.setChallengeFrom('Bearer realm="https://auth.example.com/token",service="svc"', 401);
    const pull = new ScopeSet(['repository:r:pull']);
    assert.equal(await auth.authorization(pull), 'Bearer t1');
    now += 53_000;
    assert.equal(await auth.authorization(pull), 'Bearer t1');
    now += 1_000; // 54 s: inside the 6 s margin (a tenth of 60 s) before the expiry
    assert.equal(await auth.authorization(pull), 'Bearer t2');
    assert.equal(issued, 2);
  });

  test('a manifest HEAD answered 200 with another Docker-Content-Digest is not taken as held: every blob is checked', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    const reg = 'https://registry.example.com';
    const config = Buffer.from('{}');
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: [] }));
    on(reg, 'GET', '/v2/', () => ({ status: 200 }));
    on(reg, 'HEAD', `/v2/r/manifests/${sha(manifest)}`, () => ({ status: 200, headers: { 'docker-content-digest': sha('something else') } }));
    on(reg, 'HEAD', `/v2/r/blobs/${sha(config)}`, () => ({ status: 200, headers: { 'content-length': String(config.length), 'docker-content-digest': sha(config) } }));
    on(reg, 'PUT', '/v2/r/manifests/1', () => ({ status: 201, headers: { 'docker-content-digest': sha(manifest) } }));
    const result = await pushImage(client, parseReference('registry.example.com/r:1'), {
      manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      blobs: [{ digest: sha(config), size: config.length, open: () => Readable.from([config]) }],
    });
    assert.deepEqual({ skipped: result.skipped, alreadyThere: result.alreadyThere }, { skipped: 1, alreadyThere: false });
    assert.deepEqual(seen.map((s) => `${s.method} ${s.path}`), ['GET /v2/', `HEAD /v2/r/manifests/${sha(manifest)}`, `HEAD /v2/r/blobs/${sha(config)}`, 'PUT /v2/r/manifests/1']);
    assert.match(seen[1]!.headers.accept ?? '', /application\/vnd\.oci\.image\.manifest\.v1\+json/);
  });

  test('a 401 whose challenge names a scope we did not ask for gets a new token with that scope added', async () => {
    client = new RegistryClient({ dispatcher: agent, retry: fast, credentials: async () => undefined });
    const reg = 'https://registry.example.com';
    on(reg, 'GET', '/v2/', () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://registry.example.com/token",service="svc"' } }));
    on(reg, 'GET', (p) => p.startsWith('/token?'), (s) => ({ status: 200, body: JSON.stringify({ token: `scopes=${new URL(s.path, reg).searchParams.getAll('scope').join('+')}` }) }), 2);
    on(reg, 'HEAD', `/v2/r/blobs/${sha('b')}`, () => ({ status: 401, headers: { 'www-authenticate': 'Bearer realm="https://registry.example.com/token",service="svc",scope="repository:r:pull repository:shared/base:pull",error="insufficient_scope"' } }));
    on(reg, 'HEAD', `/v2/r/blobs/${sha('b')}`, () => ({ status: 404 }));
    assert.deepEqual(await client.blobExists({ registry: 'registry.example.com', repository: 'r' }, sha('b')), { exists: false });
    assert.deepEqual(seen.filter((s) => s.method === 'HEAD').map((s) => s.headers.authorization), ['Bearer scopes=repository:r:pull', 'Bearer scopes=repository:r:pull+repository:shared/base:pull']);
  });
});

test('the next page of a Link header: rel="next" among other links, resolved against the page', () => {
  const base = new URL('https://registry.example/v2/org/app/tags/list?n=2');
  assert.equal(nextPage('</v2/org/app/tags/list?n=2&last=b>; rel="next"', base)?.href, 'https://registry.example/v2/org/app/tags/list?n=2&last=b');
  assert.equal(nextPage('<https://registry.example/first>; rel="prev", <?last=z>; title="x"; rel=next', base)?.href, 'https://registry.example/v2/org/app/tags/list?last=z');
  assert.equal(nextPage('</v2/x>; rel="prev"', base), undefined);
  assert.equal(nextPage(undefined, base), undefined);
});
