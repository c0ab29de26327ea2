// The registry client's own HTTP (registry-client/http1-request.ts, our HTTP/1.1 client on node:net), against real
// servers on 127.0.0.1: what undici used to give and callers count on — repeated headers kept
// apart, dump() that keeps a connection only when little is left, a body cut short as a retryable
// reset, each timeout as a TimeoutError, a request body held to its Content-Length, aborts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { Transport } from '../registry-client/transport.js';
import { isNetworkError, isTimeout, TimeoutError } from '../registry-client/retry.js';

const stops: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(stops.map((s) => s()));
});

interface Served {
  origin: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Requests seen: method, url, authorization header, body length. */
  seen: { method: string; url: string; authorization?: string; bodyBytes: number }[];
}

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const seen: Served['seen'] = [];
  const server = createServer((req, res) => {
    const entry: Served['seen'][number] = { method: req.method ?? '', url: req.url ?? '', bodyBytes: 0, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
    seen.push(entry);
    req.on('data', (c: Buffer) => (entry.bodyBytes += c.length));
    res.on('error', () => undefined);
    handle(req, res);
  });
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections, seen };
}

/** A TCP server that accepts and never sends a byte. */
async function silent(): Promise<string> {
  const sockets = new Set<Socket>();
  const server: Server = createNetServer((s) => {
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function transport(timeouts: { connectMs?: number; responseMs?: number; idleMs?: number } = {}): Transport {
  const t = new Transport({ timeouts });
  stops.push(() => t.close());
  return t;
}

async function readAll(body: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('a repeated response header comes as an array of its values, never joined; a single one as a string', async () => {
  const s = await serve((_req, res) => {
    res.setHeader('www-authenticate', ['Bearer realm="https://a.example/token",service="a"', 'Basic realm="b, c"']);
    res.setHeader('docker-content-digest', 'sha256:00');
    res.end();
  });
  const res = await transport().send({ method: 'GET', url: new URL('/v2/', s.origin) });
  await res.body.dump();
  assert.deepEqual(res.headers['www-authenticate'], ['Bearer realm="https://a.example/token",service="a"', 'Basic realm="b, c"']);
  assert.equal(res.headers['docker-content-digest'], 'sha256:00');
});

test('dump() of a small remainder reads it and keeps the connection for the next request', async () => {
  const s = await serve((_req, res) => res.end('{"errors":[]}'));
  const t = transport();
  for (let i = 0; i < 3; i++) {
    const res = await t.send({ method: 'GET', url: new URL('/v2/', s.origin) });
    await res.body.dump();
    assert.equal(res.body.bodyUsed, true);
  }
  assert.equal(s.seen.length, 3);
  assert.equal(s.connections(), 1);
});

test('dump() of a large body does not read it: the connection is closed, and the next request opens another', async () => {
  const total = 256 * 1024 * 1024;
  let written = 0;
  const s = await serve((req, res) => {
    if (req.url === '/small') return res.end('ok');
    res.writeHead(200, { 'content-length': String(total) });
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (written < total && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return res.once('drain', pump);
      }
      if (written >= total) res.end();
    };
    res.on('close', () => undefined);
    pump();
  });
  const t = transport();
  const res = await t.send({ method: 'GET', url: new URL('/big', s.origin) });
  await res.body.dump();
  assert.equal(res.body.destroyed, true);
  assert.ok(written < total / 4, `the server wrote ${written} of ${total} bytes`);
  const next = await t.send({ method: 'GET', url: new URL('/small', s.origin) });
  assert.equal((await readAll(next.body)).toString(), 'ok');
  assert.equal(s.connections(), 2);
});

test('a HEAD answer is dumped without closing the connection, however large its Content-Length', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) });
    res.end();
  });
  const t = transport();
  for (let i = 0; i < 2; i++) {
    const res = await t.send({ method: 'HEAD', url: new URL('/v2/x/blobs/sha256:00', s.origin) });
    assert.equal(res.headers['content-length'], String(1024 * 1024 * 1024));
    await res.body.dump();
  }
  assert.equal(s.connections(), 1);
});

test('a body that stops in the middle (the connection cut) fails its reader with a reset retry.ts retries', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(Buffer.alloc(30_000, 1), () => setTimeout(() => res.socket?.destroy(), 20));
  });
  const res = await transport().send({ method: 'GET', url: new URL('/v2/x/blobs/sha256:00', s.origin) });
  const err = await readAll(res.body).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error, String(err));
  assert.equal((err as { code?: unknown }).code, 'ECONNRESET');
  assert.equal(isNetworkError(err), true);
});

test('a server that takes the connection and never answers is a response TimeoutError naming the request', async () => {
  const host = await silent();
  const url = new URL(`http://${host}/v2/`);
  await assert.rejects(transport({ responseMs: 300 }).send({ method: 'GET', url }), (e: unknown) =>
    e instanceof TimeoutError && e.kind === 'response' && e.message === `no answer to GET http://${host}/v2/ within 300 ms` && isTimeout(e));
});

test('a TLS handshake that never completes is a connect TimeoutError', async () => {
  const host = await silent();
  await assert.rejects(transport({ connectMs: 300, responseMs: 60_000 }).send({ method: 'GET', url: new URL(`https://${host}/v2/`) }), (e: unknown) =>
    e instanceof TimeoutError && e.kind === 'connect' && e.message === `no connection to ${host} within 300 ms`);
});

test('a body that stops coming without the connection closing is an idle TimeoutError for its reader', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(Buffer.alloc(10_000, 2));
  });
  const res = await transport({ idleMs: 300 }).send({ method: 'GET', url: new URL('/v2/x/blobs/sha256:00', s.origin) });
  await assert.rejects(readAll(res.body), (e: unknown) =>
    e instanceof TimeoutError && e.kind === 'idle' && e.message === 'the answer stopped coming (no byte within the idle timeout)' && isNetworkError(e));
});

test('a reader that falls behind is not timed out: the idle timer runs only while bytes are wanted', async () => {
  const s = await serve((_req, res) => res.end(Buffer.alloc(4 * 1024 * 1024, 3)));
  const res = await transport({ idleMs: 200 }).send({ method: 'GET', url: new URL('/blob', s.origin) });
  await new Promise((r) => setTimeout(r, 600));
  assert.equal((await readAll(res.body)).length, 4 * 1024 * 1024);
});

test('a streamed request body longer or shorter than its Content-Length fails the request and sends no more', async () => {
  const s = await serve((req, res) => req.on('end', () => res.end()).resume());
  const t = transport();
  for (const [declared, bytes] of [[1000, 1500], [1000, 600]] as const) {
    await assert.rejects(
      t.send({ method: 'PUT', url: new URL('/upload', s.origin), headers: { 'content-length': String(declared) }, body: () => Readable.from([Buffer.alloc(bytes)]) }),
      (e: unknown) => (e as { code?: unknown }).code === 'ERR_HTTP_CONTENT_LENGTH_MISMATCH',
    );
  }
  assert.ok(s.seen.every((r) => r.bodyBytes <= 1000), JSON.stringify(s.seen));
});

test('a bytes request body is sent with its Content-Length', async () => {
  let length: string | undefined;
  let got = '';
  const s = await serve((req, res) => {
    length = req.headers['content-length'];
    req.on('data', (c: Buffer) => (got += c.toString())).on('end', () => res.writeHead(201).end());
  });
  const res = await transport().send({ method: 'PUT', url: new URL('/v2/x/manifests/1', s.origin), body: new TextEncoder().encode('{"a":1}') });
  await res.body.dump();
  assert.deepEqual([res.status, length, got], [201, '7', '{"a":1}']);
});

test('a signal aborting after the answer destroys its body with the signal\'s reason', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-length': '100000' });
    res.write(Buffer.alloc(1000));
  });
  const ac = new AbortController();
  const res = await transport().send({ method: 'GET', url: new URL('/blob', s.origin), signal: ac.signal });
  const reason = new Error('stop here');
  ac.abort(reason);
  await assert.rejects(readAll(res.body), (e: unknown) => e === reason);
});

test('a redirect to another origin is followed without the Authorization meant for the first', async () => {
  const storage = await serve((_req, res) => res.end('blob bytes'));
  const registry = await serve((_req, res) => res.writeHead(307, { location: `${storage.origin}/store/blob?sig=1` }).end());
  const res = await transport().send({ method: 'GET', url: new URL('/v2/x/blobs/sha256:00', registry.origin), authorization: 'Bearer secret-token', authOrigin: registry.origin });
  assert.equal((await readAll(res.body)).toString(), 'blob bytes');
  assert.equal(res.url.href, `${storage.origin}/store/blob?sig=1`);
  assert.deepEqual([registry.seen[0]?.authorization, storage.seen[0]?.authorization], ['Bearer secret-token', undefined]);
});
