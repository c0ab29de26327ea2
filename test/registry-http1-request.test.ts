// One exchange of the registry client's HTTP/1.1 client (registry-client/http1-request.ts), against
// raw TCP servers: the bytes it sends, the framings it reads, and failures as typed errors.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Pool } from '../registry-client/http1-pool.js';
import { HttpParseError, type Http1Request } from '../registry-client/http1-request.js';
import { exchange, rawServer, text } from './helpers/raw-http.js';

const pools: Pool[] = [];
after(() => pools.forEach((p) => p.destroy()));

/** One exchange on a pool of its own. */
function send(method: string, url: string, extra: Partial<Http1Request> = {}) {
  const p = new Pool();
  pools.push(p);
  return exchange(p, method, url, extra);
}

const empty = 'HTTP/1.1 204 No Content\r\n\r\n';

test('the request as sent: request line with the query, the given headers, host, keep-alive; no body, no length for a GET', async () => {
  const s = await rawServer((_req, socket) => socket.write(empty));
  await send('GET', `${s.origin}/v2/x/tags/list?n=10`, { headers: { 'user-agent': 'imgbuild-test', accept: 'application/json' } });
  assert.equal(s.requests[0]?.head, `GET /v2/x/tags/list?n=10 HTTP/1.1\r\nuser-agent: imgbuild-test\r\naccept: application/json\r\nhost: ${s.origin.slice(7)}\r\nconnection: keep-alive`);
});

test('an IPv6 origin: connected to the address without its brackets, named with them in Host', async (t) => {
  const server = createServer((socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(head)}\r\n\r\n${head}`);
    });
  });
  const listening = await new Promise<boolean>((r) => server.once('error', () => r(false)).listen(0, '::1', () => r(true)));
  if (!listening) return t.skip('no IPv6 loopback here');
  after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const res = await send('GET', `http://[::1]:${port}/v2/`);
  assert.match(await text(res.body), new RegExp(`\\r\\nhost: \\[::1\\]:${port}\\r\\n`));
});

test('a bytes body goes with its Content-Length; a POST without one says content-length: 0', async () => {
  const s = await rawServer((_req, socket) => socket.write(empty));
  await send('PUT', `${s.origin}/m`, { body: new TextEncoder().encode('{"a":1}') });
  await send('POST', `${s.origin}/u`);
  assert.deepEqual(s.requests.map((r) => [r.head.split('\r\n').filter((l) => l.startsWith('content-length')), r.body.toString()]), [[['content-length: 7'], '{"a":1}'], [['content-length: 0'], '']]);
});

test('a stream body with a Content-Length is sent as it is; without one, chunked', async () => {
  const s = await rawServer((_req, socket) => socket.write(empty));
  await send('PUT', `${s.origin}/a`, { headers: { 'content-length': '6' }, body: Readable.from([Buffer.from('abc'), Buffer.from('def')]) });
  await send('PUT', `${s.origin}/b`, { body: Readable.from([Buffer.from('abc'), Buffer.from('defghijklmnopq')]) });
  assert.equal(s.requests[0]?.body.toString(), 'abcdef');
  assert.match(s.requests[1]!.head, /\r\ntransfer-encoding: chunked\r\n/);
  assert.equal(s.requests[1]?.body.toString(), '3\r\nabc\r\ne\r\ndefghijklmnopq\r\n0\r\n\r\n');
});

test('a header value with a line break is refused before anything is sent (no header injection)', async () => {
  const s = await rawServer((_req, socket) => socket.write(empty));
  await assert.rejects(send('GET', `${s.origin}/`, { headers: { 'x-a': 'b\r\nx-injected: 1' } }), (e: unknown) => (e as { code?: unknown }).code === 'ERR_INVALID_CHAR');
  assert.equal(s.accepted(), 0);
});

test('a chunked answer is read whole', async () => {
  const s = await rawServer((_req, socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n'));
  const res = await send('GET', `${s.origin}/`);
  assert.deepEqual([res.status, await text(res.body)], [200, '{"a":1}']);
});

test('an answer given one byte at a time is read whole', async () => {
  const wire = 'HTTP/1.1 201 Created\r\nLocation: /v2/x/blobs/sha256:00\r\nContent-Length: 5\r\n\r\nhello';
  const s = await rawServer((_req, socket) => {
    let i = 0;
    const next = () => {
      if (i < wire.length) socket.write(wire[i++]!, () => setImmediate(next));
    };
    next();
  });
  const res = await send('PUT', `${s.origin}/`);
  assert.deepEqual([res.status, res.headers.location, await text(res.body)], [201, '/v2/x/blobs/sha256:00', 'hello']);
});

test('an answer head over 16 KiB is an HttpParseError HPE_HEADER_OVERFLOW, not a wait', async () => {
  const s = await rawServer((_req, socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}`));
  await assert.rejects(send('GET', `${s.origin}/`), (e: unknown) => e instanceof HttpParseError && e.code === 'HPE_HEADER_OVERFLOW');
});

test('an answer that is not HTTP is an HttpParseError, and the connection is closed', async () => {
  const s = await rawServer((_req, socket) => socket.write('SSH-2.0-OpenSSH_9.6\r\n'));
  await assert.rejects(send('GET', `${s.origin}/`), (e: unknown) => e instanceof HttpParseError && e.code === 'HPE_INVALID_CONSTANT');
  await s.closedCount(1);
});

test('a connection cut in the middle of a chunked body fails its reader with ECONNRESET', async () => {
  const s = await rawServer((_req, socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'));
  const res = await send('GET', `${s.origin}/`);
  await assert.rejects(text(res.body), (e: unknown) => e instanceof Error && e.message === 'aborted' && (e as { code?: unknown }).code === 'ECONNRESET');
});

test('an answer before the request body is all sent is given; the source is stopped and the connection closed', async () => {
  // The server answers as soon as it has the head, without reading the body.
  const early = await (async () => {
    const server = createServer((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n'));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    after(() => new Promise<void>((r) => server.close(() => r())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  })();
  let read = 0;
  const source = new Readable({
    read() {
      read++;
      this.push(Buffer.alloc(64 * 1024));
    },
  });
  const res = await send('PUT', `${early}/`, { headers: { 'content-length': String(1024 * 1024 * 1024) }, body: source });
  assert.equal(res.status, 413);
  await res.body.dump();
  assert.equal(source.destroyed, true);
  assert.ok(read < 1000, `read ${read} chunks`);
});

test('a refused connection is ECONNREFUSED', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  await assert.rejects(send('GET', `http://127.0.0.1:${port}/`), (e: unknown) => (e as { code?: unknown }).code === 'ECONNREFUSED');
});

test('an abort before the answer rejects with the signal\'s reason and closes the connection', async () => {
  const s = await rawServer(() => undefined);
  const ac = new AbortController();
  const pending = send('GET', `${s.origin}/`, { signal: ac.signal });
  await new Promise<void>((r) => {
    const poll = () => (s.requests.length ? r() : setTimeout(poll, 5));
    poll();
  });
  const reason = new Error('stop');
  ac.abort(reason);
  await assert.rejects(pending, (e: unknown) => e === reason);
  await s.closedCount(1);
});
