import { Readable } from 'node:stream';
import { BAD_VALUE, HttpParseError, ResponseParser, TOKEN, type ResponseHead, type ResponseHeaders } from './http1-parser.js';
import { socketHangUp, type Connection, type ConnectionUser, type Pool } from './http1-pool.js';
import { timerDelay } from './timer.js';

/**
 * One HTTP/1.1 exchange over a kept-alive connection of a Pool (http1-pool.ts), parsed by
 * http1-parser.ts: the registry client's own HTTP (transport.ts's default). A push makes ~20
 * small requests; node:http spent ~0.6 ms of CPU on each (~7 ms on the first) and its modules
 * cost every process their loading, for features (agents' scheduling, events per header, a
 * general parser binding) these requests do not need. Kept from it and from undici before it:
 * connect, response and idle timeouts as errors, a body with `dump()` that keeps the connection
 * when little is left, repeated response headers kept apart, a request body checked against its
 * Content-Length, errors with Node's codes (ECONNRESET, EPIPE, ECONNREFUSED, ENOTFOUND, TLS
 * codes) so retry.ts knows what may be retried.
 */

export type { ResponseHeaders };
export { HttpParseError };

/** A response body: a Readable, with undici's `dump()` and `bodyUsed` (callers use either client's). */
export interface ResponseBody extends Readable {
  /** Discard the rest: read it when at most `limit` bytes (default 128 KiB) remain, so the connection is kept; else cut it. */
  dump(opts?: { limit?: number }): Promise<void>;
  readonly bodyUsed: boolean;
}

export interface Http1Response {
  status: number;
  /** The status line's reason phrase, sanitised ('' when none). */
  statusText: string;
  headers: ResponseHeaders;
  body: ResponseBody;
}

export interface Http1Request {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** Bytes, or a stream read once (the caller makes a fresh one per attempt). */
  body?: string | Uint8Array | Readable;
  /** The pool for the URL's scheme and trust (transport.ts picks it). */
  pool: Pool;
  /** Aborts the request, and the response body after it, with the signal's reason. */
  signal?: AbortSignal;
  connectMs: number;
  responseMs: number;
  idleMs: number;
  /** The errors for each timeout (transport.ts words them): thrown, or the body destroyed with it. */
  connectTimeout: () => Error;
  responseTimeout: () => Error;
  idleTimeout: () => Error;
}

/** The error of a request body whose length is not its Content-Length (upload.ts tells the user). */
export class ContentLengthMismatchError extends Error {
  readonly code = 'ERR_HTTP_CONTENT_LENGTH_MISMATCH';
  constructor(sent: number, declared: number) {
    super(`the request body is ${sent > declared ? 'longer' : 'shorter'} than its Content-Length (${declared})`);
  }
}

/**
 * One HTTP exchange: resolves with the response once its headers are in, or rejects with a
 * node error (its code kept), an HttpParseError (a malformed answer), a timeout error, the body's
 * own error (a failing source), or the signal's reason.
 */
export function request(o: Http1Request): Promise<Http1Response> {
  return new Promise<Http1Response>((resolve, reject) => new Exchange(o, resolve, reject).start());
}

/** Methods a request may be sent again for on a new connection when a kept-alive one was found closed (as Go's transport: those RFC 9110 calls safe). */
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Methods whose request has no body unless given one (node:http's rule: others get `content-length: 0`). */
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
/** Bytes bodies up to this size go out in the same write as the head (one segment, one syscall). */
const JOIN_BYTES = 64 * 1024;

const cutShort = () => Object.assign(new Error('aborted'), { code: 'ECONNRESET' });

/** One request and its response on one connection (or two: see `retryFresh`). */
class Exchange implements ConnectionUser {
  private conn: Connection | undefined;
  private parser: ResponseParser;
  private timer: NodeJS.Timeout | undefined;
  /** The promise is resolved or rejected. */
  private settled = false;
  /** The exchange is over: the connection released or cut, nothing more to do. */
  private finished = false;
  private body: Body | undefined;
  private head!: Buffer;
  private bytes: Buffer | undefined;
  private readonly stream: Readable | undefined;
  private declared: number | undefined;
  private sent = 0;
  private streamEnded = false;
  /** The whole request is handed to the socket. */
  private sentAll = false;
  private gotByte = false;
  private retried = false;
  private responseHead: ResponseHead | undefined;
  private responseDone = false;
  private readonly onFlushed = () => {
    if (!this.settled && !this.finished && this.conn?.connected) this.arm(this.o.responseMs, this.o.responseTimeout);
  };

  constructor(private readonly o: Http1Request, private readonly resolve: (r: Http1Response) => void, private readonly reject: (e: unknown) => void) {
    const b = o.body;
    this.stream = b !== undefined && typeof b !== 'string' && !(b instanceof Uint8Array) ? b : undefined;
    this.parser = this.newParser();
  }

  private newParser(): ResponseParser {
    return new ResponseParser(this, { head: this.o.method === 'HEAD' });
  }

  start(): void {
    const o = this.o;
    try {
      this.writeHead();
    } catch (e) {
      // Invalid header values and the like, as node:http throws them.
      this.stream?.destroy();
      this.reject(e);
      return;
    }
    if (o.signal) {
      if (o.signal.aborted) return this.fail(o.signal.reason as Error);
      onAbort(o.signal, this);
    }
    this.send(false);
  }

  /** The signal aborted. */
  aborted(reason: Error): void {
    this.fail(reason);
  }

  /** Stop listening to the signal (the exchange and its body are over). */
  unlisten(): void {
    if (this.o.signal) offAbort(this.o.signal, this);
  }

  private writeHead(): void {
    const o = this.o;
    if (!TOKEN.test(o.method)) throw Object.assign(new TypeError(`Method must be a valid HTTP token ["${o.method}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' });
    let head = `${o.method} ${o.url.pathname}${o.url.search} HTTP/1.1\r\n`;
    let hasHost = false;
    let length: string | undefined;
    for (const name in o.headers) {
      const value = String(o.headers[name]);
      if (!TOKEN.test(name)) throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' });
      if (BAD_VALUE.test(value)) throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: 'ERR_INVALID_CHAR' });
      const lower = name.toLowerCase();
      if (lower === 'host') hasHost = true;
      else if (lower === 'content-length') {
        length = value;
        continue; // written below, once
      } else if (lower === 'connection' || lower === 'transfer-encoding') continue; // framing is ours
      head += `${name}: ${value}\r\n`;
    }
    if (!hasHost) head = `${head}host: ${o.url.host}\r\n`;
    const b = o.body as string | Uint8Array | undefined;
    if (b !== undefined && !this.stream) {
      this.bytes = typeof b === 'string' ? Buffer.from(b) : Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      length ??= String(this.bytes.length);
    }
    if (this.stream) {
      if (length !== undefined) this.declared = Number(length);
    } else if (length === undefined && !NO_BODY_METHODS.has(o.method)) length = '0';
    if (length !== undefined) head += `content-length: ${length}\r\n`;
    else if (this.stream) head += 'transfer-encoding: chunked\r\n';
    this.head = Buffer.from(`${head}connection: keep-alive\r\n\r\n`, 'latin1');
  }

  /** Take a connection and write the request (the stream's bytes follow as it gives them). */
  private send(fresh: boolean): void {
    let conn: Connection;
    try {
      conn = this.conn = this.o.pool.take(this.o.url, this, fresh);
    } catch (e) {
      return this.fail(e as Error);
    }
    const socket = conn.socket;
    // The connect timeout covers DNS, TCP and the TLS handshake (none for a kept connection);
    // then the response timeout runs until the answer's headers: from the start for a bytes body
    // (written at once), from the end of a streamed one (which has its own watchdog, transport.ts
    // watchIdle), restarted when the whole request is flushed.
    if (conn.connected) this.onConnect();
    else this.arm(this.o.connectMs, this.o.connectTimeout);
    if (this.stream) {
      socket.write(this.head);
      if (!fresh) this.pipeStream();
      return;
    }
    const bytes = this.bytes;
    if (bytes && bytes.length > JOIN_BYTES) {
      socket.cork();
      socket.write(this.head);
      socket.write(bytes, this.onFlushed);
      socket.uncork();
    } else socket.write(bytes?.length ? Buffer.concat([this.head, bytes]) : this.head, this.onFlushed);
    this.sentAll = true;
  }

  /**
   * A stream body, counted against its Content-Length (a source longer or shorter than it says
   * fails the request, as undici's does); its errors fail the request with themselves.
   */
  private pipeStream(): void {
    const stream = this.stream!;
    const chunked = this.declared === undefined;
    stream.on('error', (e) => this.fail(e));
    stream.on('data', (chunk: Buffer) => {
      if (this.finished || !this.conn) return;
      this.sent += chunk.length;
      if (this.declared !== undefined && this.sent > this.declared) return this.fail(new ContentLengthMismatchError(this.sent, this.declared));
      const socket = this.conn.socket;
      const ok = chunked ? socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write('\r\n') : socket.write(chunk);
      if (!ok) stream.pause();
    });
    stream.on('end', () => {
      if (this.finished || !this.conn) return;
      if (this.declared !== undefined && this.sent !== this.declared) return this.fail(new ContentLengthMismatchError(this.sent, this.declared));
      // What is still buffered waits on the server: the response timeout runs from here (once
      // connected: until then the connect timeout does), and again once it is flushed.
      this.streamEnded = true;
      this.sentAll = true;
      if (this.conn.connected && !this.settled) this.arm(this.o.responseMs, this.o.responseTimeout);
      this.conn.socket.write(chunked ? '0\r\n\r\n' : '', this.onFlushed);
    });
  }

  private arm(ms: number, error: () => Error): void {
    clearTimeout(this.timer);
    // Unreferenced, like every timer here: a request in flight holds the process by its socket.
    this.timer = setTimeout(() => this.fail(error()), timerDelay(ms)).unref();
  }

  // ConnectionUser

  onConnect(): void {
    if (this.settled) return;
    if (this.stream && !this.streamEnded) clearTimeout(this.timer);
    else this.arm(this.o.responseMs, this.o.responseTimeout);
  }

  onDrain(): void {
    if (this.stream && !this.streamEnded) this.stream.resume();
  }

  onData(chunk: Buffer): void {
    if (this.finished) return;
    this.gotByte = true;
    let used: number;
    try {
      used = this.parser.execute(chunk);
    } catch (e) {
      return this.fail(e as Error);
    }
    if (!this.responseDone) {
      // Waiting for more of the body: the idle timeout runs (unless the reader is behind).
      if (this.body && this.conn && !this.conn.socket.isPaused()) this.body.watch();
      return;
    }
    // Bytes after the response's end: not an answer to anything we sent; never reuse this connection.
    if (used < chunk.length && this.responseHead) this.responseHead.keepAlive = false;
    this.release();
  }

  onEnd(): void {
    this.onClose();
  }

  onError(e: Error): void {
    if (!this.finished) this.broken(e);
  }

  onClose(): void {
    if (this.finished) return;
    if (this.parser.finish()) return this.release();
    this.broken(this.settled ? cutShort() : socketHangUp());
  }

  // ParserEvents

  onHead(head: ResponseHead): void {
    if (this.settled) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.settled = true;
    this.responseHead = head;
    // The parser's checked length: a Content-Length repeated with the same value is one length, not NaN.
    this.body = new Body(this, this.o.method === 'HEAD', head.contentLength ?? NaN, this.o.idleMs, this.o.idleTimeout);
    this.body.once('close', () => this.unlisten());
    this.resolve({ status: head.status, statusText: head.statusText, headers: head.headers, body: this.body });
  }

  onBody(chunk: Buffer): void {
    this.body?.deliver(chunk);
  }

  onComplete(): void {
    this.responseDone = true;
    this.body?.endOfBody();
  }

  /** The connection failed or closed before the response's end. */
  private broken(e: Error): void {
    // A kept-alive connection the server closed before our request reached it (no byte of an
    // answer came): a safe request goes again on a new connection, once.
    if (this.conn?.reused && !this.gotByte && !this.stream && !this.retried && REPLAYABLE.has(this.o.method)) {
      this.retried = true;
      this.dropConnection();
      this.parser = this.newParser();
      return this.send(true);
    }
    this.fail(e);
  }

  /** The response was read to its end: keep the connection when it may carry another request, else close it. */
  private release(): void {
    const conn = this.conn;
    if (!conn || this.finished) return;
    // The server answered before taking the whole body: the connection is out of step; close it and stop the source.
    if (this.stream && !this.streamEnded) return this.cut();
    this.finished = true;
    if (!this.body) this.unlisten();
    clearTimeout(this.timer);
    const head = this.responseHead;
    if (head?.keepAlive && this.sentAll && conn.usable) {
      this.conn = undefined;
      this.o.pool.release(conn, keepAliveMs(head.headers['keep-alive']));
    } else {
      this.dropConnection();
      if (this.stream && !this.stream.destroyed && !this.stream.readableEnded) this.stream.destroy();
    }
  }

  /** End the exchange now: the connection closed (never reused), the source stopped. */
  cut(): void {
    this.finished = true;
    if (!this.body) this.unlisten();
    clearTimeout(this.timer);
    this.dropConnection();
    if (this.stream && !this.stream.destroyed) this.stream.destroy();
  }

  /** Close the connection held, if any: never handed back to the pool. */
  private dropConnection(): void {
    const conn = this.conn;
    if (!conn) return;
    conn.user = undefined;
    conn.socket.destroy();
    this.conn = undefined;
  }

  private fail(e: Error): void {
    clearTimeout(this.timer);
    if (!this.settled) {
      this.settled = true;
      this.reject(e);
    }
    this.body?.destroy(e);
    this.cut();
  }

  /** The body's reader fell behind: stop reading the socket (the server waits). */
  pause(): void {
    this.conn?.socket.pause();
  }

  resume(): boolean {
    const s = this.conn?.socket;
    if (!s || !s.isPaused()) return false;
    s.resume();
    return true;
  }
}

/**
 * Exchanges listening to each signal, behind one listener per signal: the requests of a push
 * share its signal (its HEADs at once, an index's children), and more than 10 listeners on one
 * signal would print Node's MaxListenersExceededWarning.
 */
const listening = new WeakMap<AbortSignal, Set<Exchange>>();

function onAbort(signal: AbortSignal, exchange: Exchange): void {
  let set = listening.get(signal);
  if (!set) {
    const all = (set = new Set());
    listening.set(signal, all);
    signal.addEventListener('abort', () => {
      for (const x of [...all]) x.aborted(signal.reason as Error);
      all.clear();
    }, { once: true });
  }
  set.add(exchange);
}

function offAbort(signal: AbortSignal, exchange: Exchange): void {
  listening.get(signal)?.delete(exchange);
}

/** `Keep-Alive: timeout=N` (seconds): how long we keep the connection idle, a second under the server's (as node:http's agent). */
function keepAliveMs(v: string | string[] | undefined): number | undefined {
  const m = /timeout=(\d+)/i.exec(Array.isArray(v) ? v[0]! : v ?? '');
  if (!m) return undefined;
  return Math.max(1, Number(m[1]) * 1000 - 1000);
}

/**
 * A response body: the parser pushes into it up to its buffer, then the socket waits for the
 * reader (backpressure). While it waits for bytes it wants, the idle timer runs; while the reader
 * is behind, it does not (as undici's body timeout). Destroyed before its end, it closes the
 * connection (never reused half-read).
 */
class Body extends Readable implements ResponseBody {
  private timer: NodeJS.Timeout | undefined;
  private dumped = false;
  private received = 0;
  private complete = false;

  constructor(private readonly exchange: Exchange, private readonly head: boolean, private readonly length: number, private readonly idleMs: number, private readonly idleTimeout: () => Error) {
    super({ highWaterMark: 64 * 1024 });
  }

  deliver(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.destroyed) return;
    // The idle timer is restarted once per read from the socket (Exchange.onData), not per piece.
    if (!this.push(chunk)) {
      clearTimeout(this.timer);
      this.exchange.pause();
    }
  }

  endOfBody(): void {
    this.complete = true;
    clearTimeout(this.timer);
    if (!this.destroyed) this.push(null);
  }

  get bodyUsed(): boolean {
    return this.dumped || this.readableDidRead;
  }

  /** (Re)start the idle timer: bytes are wanted. */
  watch(): void {
    clearTimeout(this.timer);
    if (this.complete) return;
    // Unreferenced: a body nobody reads must not hold the process for the idle timeout.
    this.timer = setTimeout(() => this.destroy(this.idleTimeout()), timerDelay(this.idleMs)).unref();
  }

  override _read(): void {
    if (this.complete) return;
    this.watch();
    this.exchange.resume();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    if (!this.complete) this.exchange.cut();
    cb(err);
  }

  dump(opts: { limit?: number } = {}): Promise<void> {
    let limit = opts.limit ?? 128 * 1024;
    if (this.destroyed) return Promise.resolve();
    this.dumped = true;
    return new Promise<void>((resolve) => {
      this.on('close', () => resolve());
      this.on('error', () => undefined);
      // A HEAD's Content-Length is the size of what it did not send.
      const left = this.head || this.complete ? 0 : this.length - this.received;
      if (Number.isFinite(left) && left > limit) {
        this.destroy();
        return;
      }
      this.on('data', (chunk: Buffer) => {
        limit -= chunk.length;
        if (limit <= 0) this.destroy();
      });
      this.resume();
    });
  }
}
