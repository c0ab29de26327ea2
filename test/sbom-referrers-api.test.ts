// Against a registry that has the OCI 1.1 referrers API (a small mock on 127.0.0.1): the API is
// used to list and read the SBOM, and no referrers tag (sha256-<hex>) is written.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';

const HELLO = join(repoRoot, 'examples/hello');
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A registry holding blobs and manifests in memory, with the referrers API; every request logged. */
function mockRegistry() {
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { bytes: Buffer; type: string }>();
  const uploads = new Map<string, Buffer[]>();
  const log: { method: string; path: string }[] = [];
  let n = 0;
  const body = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    log.push({ method: req.method!, path: url.pathname });
    const send = (status: number, headers: Record<string, string> = {}, data?: Buffer) => {
      res.writeHead(status, { ...headers, ...(data ? { 'content-length': String(data.length) } : {}) });
      res.end(data);
    };
    let m: RegExpMatchArray | null;
    if (url.pathname === '/v2/') return send(200, {}, Buffer.from('{}'));
    if ((m = url.pathname.match(/^\/v2\/(.+)\/blobs\/uploads\/$/)) && req.method === 'POST') {
      const id = String(++n);
      uploads.set(id, []);
      return send(202, { location: `/upload/${id}` });
    }
    if ((m = url.pathname.match(/^\/upload\/(\d+)$/))) {
      const parts = uploads.get(m[1]!)!;
      parts.push(await body(req));
      if (req.method === 'PATCH') return send(202, { location: url.pathname });
      const data = Buffer.concat(parts);
      const digest = url.searchParams.get('digest')!;
      if (sha256(data) !== digest) return send(400);
      blobs.set(digest, data);
      return send(201, { 'docker-content-digest': digest });
    }
    if ((m = url.pathname.match(/^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/))) {
      const data = blobs.get(m[2]!);
      if (!data) return send(404);
      if (req.method === 'HEAD') return send(200, { 'content-length': String(data.length) });
      return send(200, { 'content-type': 'application/octet-stream' }, data);
    }
    if ((m = url.pathname.match(/^\/v2\/(.+)\/manifests\/(.+)$/))) {
      const key = `${m[1]}/${m[2]}`;
      if (req.method === 'PUT') {
        const data = await body(req);
        const digest = sha256(data);
        const doc = JSON.parse(data.toString());
        manifests.set(key, { bytes: data, type: req.headers['content-type']! });
        manifests.set(`${m[1]}/${digest}`, { bytes: data, type: req.headers['content-type']! });
        return send(201, { 'docker-content-digest': digest, ...(doc.subject ? { 'oci-subject': doc.subject.digest } : {}) });
      }
      const got = manifests.get(key);
      if (!got) return send(404);
      const headers = { 'content-type': got.type, 'docker-content-digest': sha256(got.bytes) };
      return req.method === 'HEAD' ? send(200, { ...headers, 'content-length': String(got.bytes.length) }) : send(200, headers, got.bytes);
    }
    if ((m = url.pathname.match(/^\/v2\/(.+)\/referrers\/(sha256:[0-9a-f]{64})$/)) && req.method === 'GET') {
      const list = [...manifests.entries()]
        .filter(([k]) => k.startsWith(`${m![1]}/sha256:`))
        .map(([, v]) => ({ v, doc: JSON.parse(v.bytes.toString()) }))
        .filter(({ doc }) => doc.subject?.digest === m![2])
        .map(({ v, doc }) => ({ mediaType: v.type, digest: sha256(v.bytes), size: v.bytes.length, artifactType: doc.artifactType, ...(doc.annotations ? { annotations: doc.annotations } : {}) }));
      return send(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: list })));
    }
    return send(404);
  });
  return { server, log, manifests };
}

let mock: ReturnType<typeof mockRegistry>;
let host: string;

before(async () => {
  mock = mockRegistry();
  await new Promise<void>((resolve) => mock.server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(mock.server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => mock.server.close(() => resolve())));

test('a registry with the referrers API: the SBOM is pushed, listed and read through it, and no referrers tag is written', async () => {
  const push = await runCli(['build', HELLO, '--sbom', 'spdx', '--push', `${host}/mock/hello:1`, '--json']);
  assert.equal(push.code, 0, push.stderr);
  const built = JSON.parse(push.stdout.toString());
  const subject = built.digest as string;
  assert.ok(mock.log.some((r) => r.method === 'GET' && r.path === `/v2/mock/hello/referrers/${subject}`), 'the API was asked');
  assert.deepEqual(mock.log.filter((r) => r.path.includes('/manifests/sha256-')), [], 'no referrers tag read or written');
  assert.ok(mock.manifests.has(`mock/hello/${built.sboms[0].digest}`), 'the artifact manifest was put by digest');

  const listed = await runCli(['referrers', `docker://${host}/mock/hello:1`, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const doc = JSON.parse(listed.stdout.toString());
  assert.equal(doc.via, 'api');
  assert.deepEqual(doc.referrers.map((r: { digest: string; artifactType: string }) => [r.digest, r.artifactType]), [[built.sboms[0].digest, 'application/spdx+json']]);

  const fetched = await runCli(['sbom', `docker://${host}/mock/hello:1`, '--format', 'spdx']);
  assert.equal(fetched.code, 0, fetched.stderr);
  const made = await runCli(['sbom', HELLO, '--format', 'spdx']);
  assert.ok(fetched.stdout.equals(made.stdout));
  assert.deepEqual(mock.log.filter((r) => r.path.includes('/manifests/sha256-')), []);
});
