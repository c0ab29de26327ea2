// What answers on a registry's address is not always a registry: a server that does not speak
// HTTP at all (an SSH banner), one that breaks HTTP/1.1 framing, a web server that answers 404 or
// an HTML page to everything, and a registry whose answers break off in the middle of the body.
// Each is a typed error naming the host and what was done (never "internal error" and a stack),
// and an answer that broke off is asked for again. Fake servers on 127.0.0.1; the CLI run as a
// CI job would run it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { makeImage, makeLayer, type TestImage } from './helpers/registry.js';
import { startHostileRegistry, writeLayout, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';
import { NotARegistryError, RegistryClient, RegistryNetworkError, RegistryProtocolError, ResponseCutShortError, type RetryNotice } from '../registry-client/index.js';
import { PLAIN_HTTP_CONNECT_HINT, resolveRetry, withRetries } from '../registry-client/retry.js';
import { readRegistryImage } from '../builder/transports/registry.js';

const fast = { retries: 2, baseDelayMs: 5, maxDelayMs: 10 };

let work: string;
let layout: string;
let img: TestImage;
let env: NodeJS.ProcessEnv;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  work = await tempDir('imgbuild-faults-protocol-');
  img = await makeImage([await makeLayer({ 'etc/protocol': 'pushed to something that is not a registry\n' })]);
  layout = await writeLayout(join(work, 'image.oci'), img);
  // Credentials are looked up (and login would store them) here, never in the user's home.
  env = { ...process.env, HOME: work, DOCKER_CONFIG: join(work, 'docker') };
});
after(() => Promise.all(stops.map((s) => s())));

/** A TCP server on 127.0.0.1 that answers every connection with `reply` (then reads and ignores what comes). */
async function rawServer(reply: (socket: Socket) => void): Promise<{ host: string }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    reply(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stops.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function hostile(handle: Parameters<typeof startHostileRegistry>[0]): Promise<HostileServer> {
  const s = await startHostileRegistry(handle);
  stops.push(() => s.stop());
  return s;
}

test('an SSH server on the registry port: push, build --push, ls, login, inspect, referrers and diff each say error[protocol] "<host> did not answer in HTTP", no stack', async () => {
  const ssh = await rawServer((s) => {
    s.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n');
    s.on('data', () => undefined);
  });
  const h = ssh.host;
  const line = `${h} did not answer in HTTP (is this a registry's port?): it sent "SSH-2.0-OpenSSH_9.2p1 Debian-2"`;
  const commands: [string[], number][] = [
    [['push', `oci:${layout}`, `${h}/app:1`], 1],
    [['build', join(repoRoot, 'examples/hello'), '--push', `${h}/hello:1`], 1],
    [['ls', `${h}/app`], 1],
    [['login', h, '--creds', 'alice:pw'], 1],
    [['inspect', `docker://${h}/app:1`], 1],
    [['referrers', `docker://${h}/app:1`], 1],
    [['diff', `docker://${h}/app:1`, `oci:${layout}`], 2],
  ];
  for (const [args, code] of commands) {
    const r = await runCli(args, { env });
    assert.equal(r.code, code, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stdout.toString(), '', args[0]);
    assert.equal(r.stderr, `error[protocol]: connect to ${h}: ${line}\nhint: check the host and port you named: what answers there is not an HTTP server\n`, args[0]);
  }
});

test('a server that breaks HTTP framing (a control character in a header) is error[protocol] "sent a malformed HTTP answer", not retried', async () => {
  let connections = 0;
  const bad = await rawServer((s) => {
    connections++;
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Bad: a\x01b\r\n\r\n{}'));
  });
  const r = await runCli(['ls', `${bad.host}/app`], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[protocol]: connect to ${bad.host}: ${bad.host} sent a malformed HTTP answer: Invalid header value char (HPE_INVALID_HEADER_TOKEN)\n`
    + 'hint: the registry or a proxy before it broke HTTP/1.1; check what answers on that address\n');
  // The plain-HTTP ask, then the HTTPS one (not TLS), then plain HTTP once more: no retries.
  assert.equal(connections, 3);
});

test('bytes that cannot start an HTTP answer are a parse error at once, without waiting for a newline or a timeout', async () => {
  const binary = await rawServer((s) => s.write(Buffer.from([0x00, 0x00, 0x12, 0x04, 0x00])));
  const client = new RegistryClient({ retry: fast, credentials: async () => undefined, timeouts: { responseMs: 60_000 } });
  const started = Date.now();
  try {
    await assert.rejects(client.listTags({ registry: binary.host, repository: 'app' }), (e: unknown) => e instanceof RegistryProtocolError
      && e.message === `connect to ${binary.host}: ${binary.host} did not answer in HTTP (is this a registry's port?): it sent "?????"`);
  } finally {
    await client.close();
  }
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
});

test('a web server answering 404 to everything is not a registry: push fails at /v2/ before any blob, naming the status', async () => {
  const web = await hostile((req, res) => {
    req.resume();
    res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>');
  });
  const r = await runCli(['push', `oci:${layout}`, `${web.host}/app:1`], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.toString(), '');
  assert.equal(r.stderr, `error[not-registry]: connect to ${web.host}: not an OCI registry: GET http://${web.host}/v2/ answered 404 Not Found\n`
    + 'hint: check the host and port: an OCI registry answers GET /v2/ with 200 or 401 (distribution spec)\n');
  assert.deepEqual(web.requests().map((q) => `${q.method} ${q.url}`), ['GET /v2/', 'GET /v2/']);
});

test('a web server answering /v2/ with a 200 HTML page, or redirecting it to another host, is not a registry', async () => {
  const page = await hostile((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Welcome</title>');
  });
  const away = await hostile((req, res) => {
    req.resume();
    res.writeHead(302, { location: `http://${page.host}/login` }).end();
  });
  const client = new RegistryClient({ retry: fast, credentials: async () => undefined });
  try {
    await assert.rejects(client.origin(page.host), (e: unknown) => e instanceof NotARegistryError
      && e.message === `connect to ${page.host}: not an OCI registry: GET http://${page.host}/v2/ answered 200 OK with an HTML page`);
    await assert.rejects(client.origin(away.host), (e: unknown) => e instanceof NotARegistryError
      && e.message === `connect to ${away.host}: not an OCI registry: GET http://${away.host}/v2/ was redirected to http://${page.host}/login, which answered 200`);
  } finally {
    await client.close();
  }
});

/** A registry serving `img` as app:1 whose manifest answers break off after 19 bytes, the first `cuts` times. */
async function cuttingRegistry(cuts: number): Promise<HostileServer & { manifestGets: () => number }> {
  let gets = 0;
  const s = await hostile((req, res) => {
    req.resume();
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (req.method === 'GET' && url === '/v2/app/manifests/1') {
      gets++;
      res.writeHead(200, { 'content-type': img.mediaType, 'content-length': String(img.manifest.length), 'docker-content-digest': img.manifestDigest });
      if (gets <= cuts) {
        res.write(img.manifest.subarray(0, 19));
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      return void res.end(img.manifest);
    }
    const blob = [img.config, ...img.layers].find((b) => url === `/v2/app/blobs/${b.digest}`);
    if (req.method === 'GET' && blob) return void res.writeHead(200, { 'content-length': String(blob.size), 'docker-content-digest': blob.digest }).end(blob.bytes);
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
  });
  return Object.assign(s, { manifestGets: () => gets });
}

test('a manifest whose answer breaks off once is asked for again: inspect succeeds, the wait said on stderr', async () => {
  const reg = await cuttingRegistry(1);
  const r = await runCli(['inspect', `docker://${reg.host}/app:1`, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.toString()).digest, img.manifestDigest);
  assert.match(r.stderr, new RegExp(`^waiting: get manifest ${reg.host}/app:1: the answer broke off \\(ECONNRESET: aborted\\); retrying in \\d+ ms \\(attempt 2 of 6\\)$`, 'm'));
  assert.equal(reg.manifestGets(), 2);
});

test('a manifest whose answer always breaks off: error[network] naming the operation, the URL and how far it got, after the retries; no --insecure-registry hint', async () => {
  const reg = await cuttingRegistry(Infinity);
  const client = new RegistryClient({ retry: fast, credentials: async () => undefined });
  try {
    await assert.rejects(client.getManifest({ registry: reg.host, repository: 'app' }, '1'), (e: unknown) => {
      assert.ok(e instanceof ResponseCutShortError, String(e));
      assert.equal(e.code, 'network');
      assert.equal(e.message, `get manifest ${reg.host}/app:1: the answer from http://${reg.host}/v2/app/manifests/1 broke off after 19 of ${img.manifest.length} bytes (ECONNRESET: aborted) (3 attempts)`);
      assert.equal(e.hint, "the registry (or a proxy before it) cut the answer short; try again, and if it keeps happening, check the registry's logs");
      return true;
    });
  } finally {
    await client.close();
  }
  assert.equal(reg.manifestGets(), 3);
});

test('a layer streamed from a registry whose answer breaks off is asked for again and given on from where it stopped: the whole layer, checked', async () => {
  const layer = img.layers[0]!;
  let gets = 0;
  const reg = await hostile((req, res) => {
    req.resume();
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (url === '/v2/app/manifests/1') return void res.writeHead(200, { 'content-type': img.mediaType, 'docker-content-digest': img.manifestDigest }).end(img.manifest);
    if (url === `/v2/app/blobs/${img.config.digest}`) return void res.writeHead(200, { 'content-length': String(img.config.size) }).end(img.config.bytes);
    if (url === `/v2/app/blobs/${layer.digest}`) {
      gets++;
      res.writeHead(200, { 'content-length': String(layer.size) });
      if (gets === 1) {
        res.write(layer.bytes.subarray(0, 50));
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      return void res.end(layer.bytes);
    }
    res.writeHead(404).end();
  });
  const notices: RetryNotice[] = [];
  const client = new RegistryClient({ retry: fast, credentials: async () => undefined, onRetry: (n) => notices.push(n) });
  try {
    const image = await readRegistryImage(client, `${reg.host}/app:1`);
    if (image.kind !== 'image') throw new Error('an image');
    const chunks: Buffer[] = [];
    for await (const c of image.layers[0]!.open()) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), layer.bytes);
  } finally {
    await client.close();
  }
  assert.equal(gets, 2);
  assert.deepEqual(notices.map((n) => [n.what, n.reason, n.attempt]), [[`get blob ${layer.digest} from ${reg.host}/app`, 'the download broke off after 50 bytes (ECONNRESET: aborted)', 2]]);
});

test('a connection that fails to a registry asked in plain HTTP gets a hint that does not ask for --insecure-registry; over HTTPS, none of its own', async () => {
  const refused = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  const ctx = { retry: resolveRetry({ retries: 0 }) };
  // No connection is made: the attempt fails by itself.
  await assert.rejects(withRetries(ctx, 'connect to registry.example:5000', new URL('http://registry.example:5000/v2/'), false, refused),
    (e: unknown) => e instanceof RegistryNetworkError && e.hint === PLAIN_HTTP_CONNECT_HINT && !/--insecure-registry <host/.test(e.hint));
  await assert.rejects(withRetries(ctx, 'connect to registry.example:5000', new URL('https://registry.example:5000/v2/'), false, refused),
    (e: unknown) => e instanceof RegistryNetworkError && e.hint === undefined);
});
