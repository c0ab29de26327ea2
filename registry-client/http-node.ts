import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { isIP, type Socket } from 'node:net';

// node:https and node:tls are loaded when first used: a push to a plain-HTTP registry (a local
// or CI one) never uses them, and loading them was ~4 ms of its CPU.
const https = () => process.getBuiltinModule('node:https');

/**
 * The registry client's HTTP over node:http and node:https (transport.ts's default). Node's own
 * client is already in every process: undici's (its Agent, request API, llhttp WebAssembly and
 * node:http2) cost a push ~50–70 ms of CPU to load before the first byte, a quarter of a no-op
 * push. What undici gave that node:http does not is here: connect, response and idle timeouts
 * as errors, a body with `dump()` that keeps the connection when little is left, response headers
 * with repeated ones kept apart, and a request body checked against its Content-Length.
 */

/** A response body: a Readable, with undici's `dump()` and `bodyUsed` (callers use either client's). */
export interface ResponseBody extends Readable {
  /** Discard the rest: read it when at most `limit` bytes (default 128 KiB) remain, so the connection is kept; else cut it. */
  dump(opts?: { limit?: number }): Promise<void>;
  readonly bodyUsed: boolean;
}

export type ResponseHeaders = Record<string, string | string[] | undefined>;

export interface NodeResponse {
  status: number;
  headers: ResponseHeaders;
  body: ResponseBody;
}

export interface NodeRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  /** Bytes, or a stream read once (the caller makes a fresh one per attempt). */
  body?: string | Uint8Array | Readable;
  agent: HttpAgent;
  /** Aborts the request, and the response body after it, with the signal's reason. */
  signal: AbortSignal;
  connectMs: number;
  responseMs: number;
  idleMs: number;
  /** The errors for each timeout (transport.ts words them): thrown, or the body destroyed with it. */
  connectTimeout: () => Error;
  responseTimeout: () => Error;
  idleTimeout: () => Error;
}

/** Keep-alive agents: plain, or TLS with these options (`ca`, `rejectUnauthorized`). */
export function nodeAgent(secure: boolean, tls: { ca?: string[]; rejectUnauthorized?: boolean } = {}): HttpAgent {
  return secure ? new (https().Agent)({ keepAlive: true, ...tls }) : new HttpAgent({ keepAlive: true });
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
 * node error (its code kept: ECONNRESET, EPIPE, ECONNREFUSED, ENOTFOUND, TLS codes), a timeout
 * error, the body's own error (a failing source), or the signal's reason.
 */
export function nodeRequest(o: NodeRequest): Promise<NodeResponse> {
  return new Promise<NodeResponse>((resolve, reject) => {
    const secure = o.url.protocol === 'https:';
    const headers = { ...o.headers };
    const bytes = o.body === undefined || typeof o.body === 'string' || o.body instanceof Uint8Array ? o.body : undefined;
    const stream = o.body !== undefined && bytes === undefined ? (o.body as Readable) : undefined;
    if (bytes !== undefined && !('content-length' in headers)) headers['content-length'] = String(Buffer.byteLength(bytes));
    let req: ClientRequest;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let body: NodeBody | undefined;
    const fail = (e: Error) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(e);
      }
      body?.destroy(e);
      if (!req.destroyed) req.destroy(e);
      if (stream && !stream.destroyed) stream.destroy();
    };
    const arm = (ms: number, error: () => Error) => {
      clearTimeout(timer);
      // Unreferenced, like every timer here: a request in flight holds the process by its socket.
      timer = setTimeout(() => fail(error()), ms).unref();
    };
    try {
      req = (secure ? https().request : httpRequest)(o.url, { method: o.method, headers, agent: o.agent });
    } catch (e) {
      // Invalid header values and the like are thrown at once.
      stream?.destroy();
      reject(e);
      return;
    }
    const onAbort = () => fail(o.signal.reason as Error);
    if (o.signal.aborted) return onAbort();
    o.signal.addEventListener('abort', onAbort, { once: true });
    req.on('close', () => {
      o.signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      if (!settled) fail(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      // The exchange is over (answered early, or its body cut by the reader): stop the source.
      if (stream && !stream.destroyed && !stream.readableEnded) stream.destroy();
    });
    // Errors after the answer came (a reset while its body is read) reach the body through Node.
    req.on('error', (e) => fail(e));

    // The connect timeout covers DNS, TCP and the TLS handshake; then the response timeout runs
    // until the answer's headers: from the start for a bytes body (written at once), from the
    // end of a streamed one (which has its own watchdog, transport.ts watchIdle), restarted when
    // the whole request is sent.
    arm(o.connectMs, o.connectTimeout);
    let isConnected = false;
    let streamEnded = false;
    const connected = () => {
      isConnected = true;
      if (stream && !streamEnded) clearTimeout(timer);
      else arm(o.responseMs, o.responseTimeout);
    };
    req.on('socket', (socket: Socket) => {
      // A kept-alive connection is there already; a new one is connected (and its TLS done) later.
      if (req.reusedSocket) connected();
      else socket.once(secure ? 'secureConnect' : 'connect', connected);
    });
    req.on('finish', () => {
      if (!settled) arm(o.responseMs, o.responseTimeout);
    });
    req.on('response', (res: IncomingMessage) => {
      clearTimeout(timer);
      timer = undefined;
      settled = true;
      body = new NodeBody(res, req, o.method === 'HEAD', o.idleMs, o.idleTimeout);
      body.on('close', () => o.signal.removeEventListener('abort', onAbort));
      resolve({ status: res.statusCode ?? 0, headers: distinct(res), body });
    });

    if (!stream) {
      req.end(bytes);
      return;
    }
    // A stream body, counted against its Content-Length (a source longer or shorter than it
    // says fails the request, as undici's does); its errors fail the request with themselves.
    const declared = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
    let sent = 0;
    stream.on('error', (e) => fail(e));
    stream.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (declared !== undefined && sent > declared) return fail(new ContentLengthMismatchError(sent, declared));
      if (!req.write(chunk)) stream.pause();
    });
    req.on('drain', () => stream.resume());
    stream.on('end', () => {
      if (declared !== undefined && sent !== declared) return fail(new ContentLengthMismatchError(sent, declared));
      // What is still buffered waits on the server: the response timeout runs from here (once
      // connected: until then the connect timeout does).
      streamEnded = true;
      if (isConnected) arm(o.responseMs, o.responseTimeout);
      req.end();
    });
  });
}

/** Response headers as undici gives them: a string, or an array for a repeated header (never joined with ", "). */
function distinct(res: IncomingMessage): ResponseHeaders {
  const out: ResponseHeaders = {};
  for (const [k, v] of Object.entries(res.headersDistinct)) if (v) out[k] = v.length === 1 ? v[0] : v;
  return out;
}

/**
 * A response body over Node's IncomingMessage: it flows into this stream up to its buffer, then
 * waits for the reader (backpressure). While it waits for bytes it wants, the idle timer runs;
 * while the reader is behind, it does not (as undici's body timeout). Destroyed before its end,
 * it closes the connection (never reused half-read).
 */
class NodeBody extends Readable implements ResponseBody {
  private timer: NodeJS.Timeout | undefined;
  private dumped = false;
  private received = 0;

  constructor(private readonly res: IncomingMessage, private readonly req: ClientRequest, private readonly head: boolean, private readonly idleMs: number, private readonly idleTimeout: () => Error) {
    super({ highWaterMark: 64 * 1024 });
    res.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.destroyed) return;
      if (this.push(chunk)) this.arm();
      else {
        clearTimeout(this.timer);
        res.pause();
      }
    });
    res.on('end', () => {
      clearTimeout(this.timer);
      if (!this.destroyed) this.push(null);
    });
    // A connection cut mid-body: Node's ECONNRESET "aborted" (retry.ts retries it).
    res.on('error', (e) => this.destroy(e));
    this.arm();
  }

  get bodyUsed(): boolean {
    return this.dumped || this.readableDidRead;
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.res.complete) return;
    // Unreferenced: a body nobody reads must not hold the process for the idle timeout.
    this.timer = setTimeout(() => this.destroy(this.idleTimeout()), this.idleMs).unref();
  }

  override _read(): void {
    if (this.res.isPaused()) {
      this.arm();
      this.res.resume();
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    if (!this.res.complete) {
      this.res.destroy();
      this.req.destroy();
    }
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
      const left = this.head || this.res.complete ? 0 : Number(this.res.headers['content-length']) - this.received;
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

/**
 * Whether the server at `url` completes a TLS handshake: resolves when it does, else rejects with
 * the connection's error (a server that does not speak TLS: ERR_SSL_WRONG_VERSION_NUMBER or a
 * reset). Nothing is verified and nothing is sent after the handshake: this only tells whether
 * the verified request is worth making, whose context loads Node's ~140 root certificates
 * (~60 ms of CPU on Node 20) — a cost a loopback registry speaking plain HTTP need not pay.
 */
export function tlsHandshake(url: URL, connectMs: number, connectTimeout: () => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let finished = false;
    const socket = process.getBuiltinModule('node:tls').connect({ host, port: Number(url.port || 443), ca: [], rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }) });
    const done = (e?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (e === undefined) resolve();
      else reject(e);
    };
    const timer = setTimeout(() => done(connectTimeout()), connectMs).unref();
    socket.once('secureConnect', () => done());
    socket.once('error', (e) => done(e));
    socket.once('close', () => done(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
  });
}
