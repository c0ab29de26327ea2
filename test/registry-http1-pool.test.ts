// Kept-alive connections of the registry client's HTTP/1.1 client (registry-client/http1-pool.ts
// through http1-request.ts), against raw TCP servers: when a connection is reused, and when never.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from '../registry-client/http1-pool.js';
import { exchange, rawServer, text } from './helpers/raw-http.js';

const pools: Pool[] = [];
after(() => pools.forEach((p) => p.destroy()));

function pool(): Pool {
  const p = new Pool();
  pools.push(p);
  return p;
}


const ok = (body = 'ok', extra = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

test('requests one after another share one connection, each read to its end', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok()));
  const p = pool();
  for (let i = 0; i < 3; i++) assert.equal(await text((await exchange(p, 'GET', `${s.origin}/${i}`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => [r.connection, r.index]), [[1, 1], [1, 2], [1, 3]]);
  assert.equal(p.size, 1);
});

test('requests at the same time each get a connection; afterwards both are kept', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok()));
  const p = pool();
  const [a, b] = await Promise.all([exchange(p, 'GET', `${s.origin}/a`), exchange(p, 'GET', `${s.origin}/b`)]);
  assert.deepEqual([await text(a.body), await text(b.body)], ['ok', 'ok']);
  assert.deepEqual([s.accepted(), p.size], [2, 2]);
});

test('a connection the server closes while it is idle is dropped: the next request opens a new one', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok(), () => socket.end()));
  const p = pool();
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/1`)).body), 'ok');
  await s.closedCount(1);
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/2`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 2]);
});

test('a body cut by its reader before its end closes the connection: never reused half-read', async () => {
  const s = await rawServer((req, socket) => socket.write(req.head.includes('/big') ? `HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(1000)}` : ok()));
  const p = pool();
  const big = await exchange(p, 'GET', `${s.origin}/big`);
  big.body.destroy();
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/small`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 2]);
  await s.closedCount(1);
});

test('a body that ends while its reader is behind leaves its connection fit for the next request', async () => {
  // Past the body's 64 KiB buffer in the second read from the socket: the end comes while it is paused.
  const big = 'x'.repeat(100 * 1024);
  const s = await rawServer((req, socket) => socket.write(req.head.includes('/big') ? ok(big) : ok()));
  const p = pool();
  const res = await exchange(p, 'GET', `${s.origin}/big`);
  // Not read until the whole answer has arrived: the socket was paused for the reader.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await text(res.body)).length, big.length);
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/small`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 1]);
});

test('dump() of a small remainder reads it, and the connection is kept', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok('{"errors":[]}')));
  const p = pool();
  for (let i = 0; i < 2; i++) await (await exchange(p, 'GET', `${s.origin}/`)).body.dump();
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 1]);
});

test('dump() of a big remainder closes the connection at once, a Content-Length given twice too', { timeout: 5000 }, async () => {
  // Nothing more is sent: a dump that read on would wait for it, here until the test's timeout.
  const head = (lengths: string) => `HTTP/1.1 500 Internal Server Error\r\n${lengths}\r\n${'x'.repeat(1000)}`;
  const s = await rawServer((req, socket) => socket.write(head(req.head.includes('/twice') ? 'Content-Length: 1000000\r\nContent-Length: 1000000\r\n' : 'Content-Length: 1000000\r\n')));
  const p = pool();
  await (await exchange(p, 'GET', `${s.origin}/once`, { idleMs: 60_000 })).body.dump();
  await (await exchange(p, 'GET', `${s.origin}/twice`, { idleMs: 60_000 })).body.dump();
  await s.closedCount(2);
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 2]);
});

test('an answer with Connection: close, or a body running to the close, is not followed by another request on its connection', async () => {
  const s = await rawServer((req, socket) => {
    if (req.head.includes('/close')) socket.write(ok('ok', 'Connection: close\r\n'));
    else if (req.head.includes('/eof')) socket.end('HTTP/1.1 200 OK\r\n\r\nto the end');
    else socket.write(ok());
  });
  const p = pool();
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/close`)).body), 'ok');
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/eof`)).body), 'to the end');
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/next`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 2, 3]);
});

test('bytes after the end of an answer (not asked for) make its connection unfit: it is closed', async () => {
  const s = await rawServer((req, socket) => socket.write(req.index === 1 && req.connection === 1 ? `${ok()}HTTP/1.1 200 OK\r\n` : ok()));
  const p = pool();
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/1`)).body), 'ok');
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/2`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => r.connection), [1, 2]);
});

test('a kept connection reset before any byte of an answer: a GET goes again on a new connection, once', async () => {
  // The second request on the first connection meets a reset, as when the server closed it idle just as we sent.
  const s = await rawServer((req, socket) => {
    if (req.connection === 1 && req.index === 2) socket.resetAndDestroy();
    else socket.write(ok());
  });
  const p = pool();
  await text((await exchange(p, 'GET', `${s.origin}/1`)).body);
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/2`)).body), 'ok');
  assert.deepEqual(s.requests.map((r) => [r.connection, r.head.split('\r\n')[0]]), [[1, 'GET /1 HTTP/1.1'], [1, 'GET /2 HTTP/1.1'], [2, 'GET /2 HTTP/1.1']]);
});

test('a kept connection reset before any answer to a POST: not sent again, the reset is the error', async () => {
  const s = await rawServer((req, socket) => {
    if (req.connection === 1 && req.index === 2) socket.resetAndDestroy();
    else socket.write(ok());
  });
  const p = pool();
  await text((await exchange(p, 'GET', `${s.origin}/1`)).body);
  await assert.rejects(exchange(p, 'POST', `${s.origin}/2`, { body: 'x' }), (e: unknown) => (e as { code?: unknown }).code === 'ECONNRESET');
  assert.equal(s.requests.length, 2);
});

test('a new connection closed before any answer is a "socket hang up" ECONNRESET, not retried', async () => {
  const s = await rawServer((_req, socket) => socket.destroy());
  await assert.rejects(exchange(pool(), 'GET', `${s.origin}/`), (e: unknown) => e instanceof Error && e.message === 'socket hang up' && (e as { code?: unknown }).code === 'ECONNRESET');
  assert.equal(s.requests.length, 1);
});

test('a server\'s Keep-Alive timeout is honoured: the idle connection is closed a second before it', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok('ok', 'Keep-Alive: timeout=1\r\n')));
  const p = pool();
  assert.equal(await text((await exchange(p, 'GET', `${s.origin}/`)).body), 'ok');
  await s.closedCount(1);
  assert.equal(p.size, 0);
});

test('destroy() closes idle connections', async () => {
  const s = await rawServer((_req, socket) => socket.write(ok()));
  const p = pool();
  await text((await exchange(p, 'GET', `${s.origin}/`)).body);
  p.destroy();
  await s.closedCount(1);
});
