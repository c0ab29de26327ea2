import { after } from 'node:test';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { Pool } from '../../registry-client/http1-pool.js';
import { request, type Http1Request } from '../../registry-client/http1-request.js';

/** One exchange of the HTTP/1.1 client on `pool`, with generous timeouts whose errors say which one fired. */
export function exchange(pool: Pool, method: string, url: string, extra: Partial<Http1Request> = {}) {
  return request({
    method, url: new URL(url), headers: {}, pool, signal: new AbortController().signal,
    connectMs: 10_000, responseMs: 10_000, idleMs: 10_000,
    connectTimeout: () => new Error('connect timeout'), responseTimeout: () => new Error('response timeout'), idleTimeout: () => new Error('idle timeout'),
    ...extra,
  });
}

/** A response body read whole, as text. */
export async function text(body: AsyncIterable<unknown>): Promise<string> {
  let s = '';
  for await (const c of body) s += (c as Buffer).toString();
  return s;
}

/** One request as a raw server read it: the head's text (request line and headers) and the body. */
export interface RawRequest {
  head: string;
  body: Buffer;
  /** The connection's number (1 = the first accepted) and this request's on it (1 = the first). */
  connection: number;
  index: number;
}

export interface RawServer {
  origin: string;
  /** Connections accepted, and closed, so far. */
  accepted(): number;
  closed(): number;
  requests: RawRequest[];
  /** Resolves when `n` connections have closed. */
  closedCount(n: number): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 that reads HTTP/1.1 requests (bodies by Content-Length, or raw
 * until the connection ends for anything else) and lets `answer` write any bytes at all back.
 * Stopped after the test file.
 */
export async function rawServer(answer: (req: RawRequest, socket: Socket) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let closed = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const requests: RawRequest[] = [];
  const server = createServer((socket) => {
    const connection = ++accepted;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      closed++;
      for (const w of waiters.filter((x) => x.n <= closed)) w.resolve();
    });
    let buf = Buffer.alloc(0);
    let index = 0;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        const length = m ? Number(m[1]) : 0;
        if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          // Chunked request bodies are given raw, at the end of the connection's bytes so far.
          if (!buf.includes('\r\n0\r\n\r\n', end)) return;
          const stop = buf.indexOf('\r\n0\r\n\r\n', end) + 7;
          const req = { head, body: buf.subarray(end + 4, stop), connection, index: ++index };
          buf = buf.subarray(stop);
          requests.push(req);
          answer(req, socket);
          continue;
        }
        if (buf.length < end + 4 + length) return;
        const req = { head, body: buf.subarray(end + 4, end + 4 + length), connection, index: ++index };
        buf = buf.subarray(end + 4 + length);
        requests.push(req);
        answer(req, socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  after(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted: () => accepted,
    closed: () => closed,
    requests,
    closedCount: (n) => (closed >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}
