import { Transform, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { request, type ResponseBody, type ResponseHeaders } from './http1-request.js';
import { Pool } from './http1-pool.js';
import { tlsHandshake } from './tls-probe.js';
import { undiciRequest } from './undici-lean.js';
import { RegistryContentError, RegistryError, RegistryNetworkError, RegistryTlsError, ResponseCutShortError } from './errors.js';
import { abortable, describeError, formatMs, isCertificateError, isTlsError, isTimeout, protocolError, resolveTimeouts, TIMEOUT_HINT, TimeoutError, type ResolvedTimeouts, type TimeoutOptions } from './retry.js';
import { caBundleProblem } from './ca.js';
import { isLoopbackRegistry } from './loopback.js';
import { normaliseRegistry } from './reference.js';
import { timerDelay } from './timer.js';

export type Headers = Record<string, string>;
export type { ResponseBody, ResponseHeaders };

/** A request body: bytes, or a factory giving a fresh stream for each attempt. */
export type Body = string | Uint8Array | (() => Readable);

export interface HttpResponse {
  status: number;
  /** The status line's reason phrase (`Not Found`), when the server sent one (not through a `dispatcher`). */
  statusText?: string;
  headers: ResponseHeaders;
  /** A Readable with undici's `dump()` and `bodyUsed`; bound to the request's signal and the idle timeout. */
  body: ResponseBody;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface TransportOptions {
  /**
   * Hosts (`host[:port]`, as in references) we may reach over plain HTTP or with unverified TLS.
   * Nothing else ever is: a TLS failure anywhere else is an error.
   */
  insecureRegistries?: readonly string[];
  /**
   * Registries on the loopback (`localhost`, `*.localhost`, 127.0.0.0/8, `[::1]`; see
   * `isLoopbackRegistry`) may answer over plain HTTP when they do not speak TLS, unnamed, as
   * docker and crane allow (default true). HTTPS is tried first, with its certificate verified:
   * unlike a named insecure registry, a loopback one's TLS is never left unverified.
   */
  loopbackPlainHttp?: boolean;
  /** Extra CA certificates (PEM) to trust, on top of Node's bundled roots (e.g. a private registry's CA). */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /**
   * Send everything through this undici dispatcher instead of our own HTTP/1.1 client (tests
   * pass undici's MockAgent). `ca`/insecure then do not apply.
   */
  dispatcher?: Dispatcher;
  userAgent?: string;
  /** Connect, response (first byte), idle and per-blob timeouts (retry.ts `DEFAULT_TIMEOUTS`). */
  timeouts?: TimeoutOptions;
  /** Older names of `timeouts.responseMs` and `timeouts.idleMs`; `timeouts` wins. */
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** Debug lines (method, URL without query, status). Never given a header or a body. */
  log?: (line: string) => void;
}

const MAX_REDIRECTS = 5;

/** `host[:port]` of a URL the way reference registries are written (default ports dropped). */
export function hostOf(url: URL): string {
  return url.host.toLowerCase();
}

/** A URL without its query and fragment: upload URLs carry state (sometimes signed) we do not print. */
export function redact(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * HTTP for the registry client: the right connection pool per host (verified TLS with extra CAs,
 * or unverified for named insecure hosts), redirects followed by hand so that `Authorization`
 * never leaves the origin it was meant for, and TLS failures turned into RegistryTlsError.
 * Requests go over our own HTTP/1.1 client (http1-request.ts, on node:net and node:tls sockets),
 * or through an undici dispatcher when one is given (`dispatcher`); both share everything here.
 * No retries here: callers decide what may be repeated.
 */
export class Transport {
  readonly insecure: ReadonlySet<string>;
  /** Connection pools: plain, verified TLS (with the extra CAs), unverified TLS; made when first used. */
  private plainPool: Pool | undefined;
  private securePool: Pool | undefined;
  private insecurePool: Pool | undefined;
  private readonly ca: string[] | undefined;
  /** Loopback hosts (`host:port`) seen completing a TLS handshake (see `exchange`). */
  private readonly speaksTls = new Map<string, { done: Promise<void>; signal: AbortSignal | undefined }>();

  readonly timeouts: ResolvedTimeouts;

  constructor(readonly options: TransportOptions = {}) {
    this.insecure = new Set((options.insecureRegistries ?? []).map((h) => normaliseRegistry(h)));
    this.timeouts = resolveTimeouts({
      ...(options.headersTimeoutMs !== undefined ? { responseMs: options.headersTimeoutMs } : {}),
      ...(options.bodyTimeoutMs !== undefined ? { idleMs: options.bodyTimeoutMs } : {}),
      ...options.timeouts,
    });
    const extra = options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca];
    extra.forEach((c: string | Buffer, i: number) => {
      const problem = caBundleProblem(c);
      if (problem) throw new RegistryError('ca', `the ca option${extra.length > 1 ? `'s entry ${i + 1}` : ''} ${problem}`, 'give CA certificates in PEM (-----BEGIN CERTIFICATE-----)');
    });
    // node:tls is loaded only when a CA is given (http1-pool.ts loads it when TLS is used).
    this.ca = extra.length ? [...process.getBuiltinModule('node:tls').rootCertificates, ...extra.map((c: string | Buffer) => c.toString())] : undefined;
  }

  isInsecure(host: string): boolean {
    return this.insecure.has(normaliseRegistry(host));
  }

  /** Whether `host` may be reached in clear text: named insecure, or on the loopback (`loopbackPlainHttp`). */
  mayUsePlainHttp(host: string): boolean {
    return this.isInsecure(host) || (this.options.loopbackPlainHttp !== false && isLoopbackRegistry(host));
  }

  private poolFor(url: URL): Pool {
    if (url.protocol !== 'https:') return (this.plainPool ??= new Pool());
    if (this.isInsecure(hostOf(url))) {
      // Nothing is verified here, so no CA is loaded: the system roots cost ~0.1 s of CPU.
      return (this.insecurePool ??= new Pool({ rejectUnauthorized: false, ca: [] }));
    }
    return (this.securePool ??= new Pool(this.ca ? { ca: this.ca } : {}));
  }

  /** One exchange, without redirects: over our HTTP/1.1 client, or the given undici dispatcher. */
  private exchange(method: string, url: URL, headers: Headers, body: string | Uint8Array | Readable | undefined, signal: AbortSignal | undefined): Promise<Exchanged> {
    const target = `${method} ${redact(url)}`;
    const t = this.timeouts;
    const connectTimeout = () => new TimeoutError('connect', t.connectMs, `no connection to ${hostOf(url)} within ${formatMs(t.connectMs)}`);
    const responseTimeout = () => new TimeoutError('response', t.responseMs, `no answer to ${target} within ${formatMs(t.responseMs)}`);
    if (this.options.dispatcher) {
      return undiciRequest(this.options.dispatcher, url, { method: method as Dispatcher.HttpMethod, headers, body, ...(signal ? { signal } : {}), headersTimeout: timerDelay(t.responseMs), bodyTimeout: timerDelay(t.idleMs) }).then(
        (res) => ({ status: res.statusCode, headers: res.headers, body: res.body }),
        (e: unknown) => {
          const code = (e as { code?: unknown }).code;
          if (code === 'UND_ERR_HEADERS_TIMEOUT') throw responseTimeout();
          if (code === 'UND_ERR_CONNECT_TIMEOUT') throw connectTimeout();
          throw e;
        },
      );
    }
    const host = hostOf(url);
    if (url.protocol === 'https:' && !this.isInsecure(host) && this.mayUsePlainHttp(host)) {
      // A loopback registry may speak plain HTTP (client.ts tries HTTPS first, then HTTP): see
      // whether it speaks TLS at all before the verified request, whose context loads Node's root
      // certificates (~60 ms of CPU) only to fail at the handshake. Nothing is sent unverified.
      // The handshake is shared by the requests to the host, under the signal of the first: one
      // whose own signal did not abort when that one did starts another.
      const handshake = async (): Promise<void> => {
        for (;;) {
          let seen = this.speaksTls.get(host);
          if (!seen) {
            const p = tlsHandshake(url, t.connectMs, connectTimeout, signal);
            seen = { done: p, signal };
            this.speaksTls.set(host, seen);
            p.catch(() => {
              if (this.speaksTls.get(host)?.done === p) this.speaksTls.delete(host);
            });
          }
          try {
            return await abortable(seen.done, signal);
          } catch (e) {
            if (signal?.aborted) throw signal.reason;
            if (seen.signal?.aborted && seen.signal !== signal) continue;
            throw e;
          }
        }
      };
      return handshake().then(() => this.ownExchange(method, url, headers, body, signal, connectTimeout, responseTimeout));
    }
    return this.ownExchange(method, url, headers, body, signal, connectTimeout, responseTimeout);
  }

  private ownExchange(method: string, url: URL, headers: Headers, body: string | Uint8Array | Readable | undefined, signal: AbortSignal | undefined, connectTimeout: () => Error, responseTimeout: () => Error): Promise<Exchanged> {
    const t = this.timeouts;
    return request({
      method, url, headers, ...(body !== undefined ? { body } : {}), ...(signal ? { signal } : {}), pool: this.poolFor(url),
      connectMs: t.connectMs, responseMs: t.responseMs, idleMs: t.idleMs, connectTimeout, responseTimeout,
      // The words describeError gives undici's body timeout, which callers print.
      idleTimeout: () => new TimeoutError('idle', t.idleMs, 'the answer stopped coming (no byte within the idle timeout)'),
    });
  }

  /**
   * One request. GET and HEAD follow redirects (up to 5); `authorization` is sent only while
   * the URL's origin is `authOrigin` (the registry's) — a blob redirect to a storage host gets
   * no credentials. Throws RegistryTlsError for TLS failures, TimeoutError when the connection,
   * the answer or the request body does not move in time, `signal`'s reason when it aborts, and
   * passes other errors through with their codes (so a caller can tell a reset from a bad answer
   * and retry). The response body stays bound to `signal` and to the idle timeout.
   */
  async send(req: {
    method: string;
    url: URL;
    headers?: Headers;
    authorization?: string;
    authOrigin?: string;
    body?: Body;
    followRedirects?: boolean;
    signal?: AbortSignal;
  }): Promise<HttpResponse> {
    req.signal?.throwIfAborted();
    let url = req.url;
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
    for (let hop = 0; ; hop++) {
      if (hop > 0 && req.url.protocol === 'https:' && url.protocol === 'http:' && !this.mayUsePlainHttp(hostOf(url))) {
        // A redirect from HTTPS down to plain HTTP would expose what we fetch; only named hosts may do that.
        throw new RegistryNetworkError(hostOf(url), `${req.method} ${redact(req.url)}`, `redirected to plain HTTP ${redact(url)}, which is not an insecure registry`);
      }
      const headers: Headers = { 'user-agent': this.options.userAgent ?? 'imgbuild-registry-client', ...req.headers };
      if (req.authorization && url.origin === (req.authOrigin ?? req.url.origin)) headers.authorization = req.authorization;
      // Only the first hop carries a body (redirects are followed for GET/HEAD only).
      const given = hop > 0 ? undefined : typeof req.body === 'function' ? req.body() : req.body;
      // A streamed request body that stops moving (the server no longer reads) aborts the request
      // after the idle timeout, saying so. (The response timeout covers a bytes body, written at
      // once: such a request needs no signal of its own, and most requests are such.)
      const bytes = given === undefined || typeof given === 'string' || given instanceof Uint8Array;
      const local = bytes ? undefined : new AbortController();
      const body = bytes ? given : watchIdle(given, this.timeouts.idleMs, local!);
      const signal = local ? (req.signal ? AbortSignal.any([req.signal, local.signal]) : local.signal) : req.signal;
      let res: Exchanged;
      try {
        res = await this.exchange(req.method, url, headers, body, signal);
      } catch (e) {
        if (body && typeof body === 'object' && 'destroy' in body) (body as Readable).destroy();
        if (req.signal?.aborted) throw req.signal.reason;
        if (local?.signal.aborted) throw local.signal.reason;
        if (isTlsError(e)) {
          // A certificate we cannot verify is a TLS error; any other failed handshake ("wrong
          // version number") is a server that does not speak TLS on that port.
          const notTls = !isCertificateError(e);
          throw new RegistryTlsError(hostOf(url), notTls ? tlsReason(e) : describeError(e), { cause: e, notTls });
        }
        throw e;
      }
      this.options.log?.(`${req.method} ${redact(url)} -> ${res.status}`);
      const location = res.headers.location;
      if (follow && [301, 302, 303, 307, 308].includes(res.status) && typeof location === 'string' && hop < MAX_REDIRECTS) {
        await res.body.dump();
        const next = new URL(location, url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw new RegistryNetworkError(hostOf(url), `${req.method} ${redact(req.url)}`, `redirected to ${JSON.stringify(next.protocol)} URL, which is not HTTP; not followed`, { connected: true });
        }
        url = next;
        continue;
      }
      return { status: res.status, ...(res.statusText ? { statusText: res.statusText } : {}), headers: res.headers, body: res.body, url };
    }
  }

  async close(): Promise<void> {
    // Only pools we made: a given dispatcher is its owner's to close.
    for (const p of [this.plainPool, this.securePool, this.insecurePool]) p?.destroy();
  }
}

/** One exchange's answer: our HTTP/1.1 client's, or undici's (no reason phrase). */
type Exchanged = { status: number; statusText?: string; headers: ResponseHeaders; body: ResponseBody };

/** The reason of a failed handshake, short: OpenSSL's reason (`wrong version number`), else the error as it is. */
function tlsReason(e: unknown): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(e instanceof Error ? e.message : String(e));
  return m ? m[1]!.trim() : describeError(e);
}

/** A response header as one string (the first when repeated). */
export function header(h: ResponseHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The request body as the HTTP client will read it, with a watchdog: when no chunk is taken for `idleMs`
 * (the server stopped reading), `controller` aborts with a TimeoutError.
 */
function watchIdle(source: Readable, idleMs: number, controller: AbortController): Readable {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      // Bytes waiting that the server does not take: it stopped reading. Nothing waiting: our
      // source is what is slow (a layer streamed from another registry, with its own timeouts).
      if (watched.readableLength > 0 || watched.writableLength > 0) controller.abort(new TimeoutError('idle', idleMs, `the registry took no byte of the request body for ${formatMs(idleMs)}`));
      else arm();
    }, timerDelay(idleMs));
    timer.unref?.();
  };
  const watched = new Transform({
    transform(chunk: Buffer, _enc, done) {
      arm();
      done(null, chunk);
    },
  });
  arm();
  // Cleared once the client has read the whole body, not when the source ends (its last chunks
  // may still wait in the buffer); from then on the response timeout runs.
  watched.on('end', () => clearTimeout(timer));
  source.on('error', (e) => watched.destroy(e));
  watched.on('close', () => {
    clearTimeout(timer);
    if (!source.destroyed) source.destroy();
  });
  return source.pipe(watched);
}

/** The most of an error body we read: enough for any registry's JSON errors, never a flood. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** A registry error as we keep it: its code, message and `detail` (as compact JSON text), each cut short. */
export interface RegistryErrorEntry {
  code?: string;
  message?: string;
  detail?: string;
}

/**
 * The first MAX_ERROR_BODY_BYTES of an error answer's body, as text, the rest dropped with the
 * connection (a server sending gigabytes costs nothing); `failed` when the body broke off.
 * Undefined when the body was already read or dumped: reading it then makes undici throw from an
 * event handler.
 */
async function readErrorBody(res: HttpResponse): Promise<{ text: string; failed: boolean } | undefined> {
  const body = res.body;
  if (body.bodyUsed || body.destroyed || body.readableEnded) return undefined;
  const parts: Buffer[] = [];
  let total = 0;
  let failed = false;
  try {
    for await (const chunk of body) {
      parts.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= MAX_ERROR_BODY_BYTES) break; // leaving the loop destroys the body
    }
  } catch {
    failed = true;
  } finally {
    if (!body.destroyed) body.destroy();
  }
  return { text: Buffer.concat(parts).subarray(0, MAX_ERROR_BODY_BYTES).toString('utf8'), failed };
}

/**
 * Read a JSON error body of a registry (`{"errors":[{code,message,detail}]}`); empty when there
 * is none, it is not JSON, or the body was already consumed. At most MAX_ERROR_BODY_BYTES are
 * read: the rest is dropped with the connection (a registry sending gigabytes costs nothing).
 */
export async function readRegistryErrors(res: HttpResponse): Promise<RegistryErrorEntry[]> {
  const read = await readErrorBody(res);
  if (!read || read.failed) return [];
  try {
    const text = read.text;
    if (!text) return [];
    const parsed = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(parsed.errors)) return [];
    return parsed.errors.filter((e): e is { code?: unknown; message?: unknown; detail?: unknown } => !!e && typeof e === 'object').slice(0, 10).map((e) => {
      const detail = e.detail === undefined || e.detail === null || e.detail === '' ? undefined : typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail);
      return {
        ...(typeof e.code === 'string' ? { code: e.code.slice(0, 100) } : {}),
        ...(typeof e.message === 'string' ? { message: e.message.slice(0, 500) } : {}),
        ...(detail ? { detail: detail.length > 300 ? `${detail.slice(0, 300)}…` : detail } : {}),
      };
    });
  } catch {
    return [];
  }
}

/**
 * What a server said in the body of a refusal, short and safe to print: the JSON error messages of
 * a registry or token service (`errors[].message`/`detail`, `details`, `error_description`,
 * `error`, `message`), else the start of a plain-text body; nothing from an HTML page. At most
 * MAX_ERROR_BODY_BYTES are read and 300 characters kept; control characters are dropped, and each
 * of `secrets` (and its base64, as a Basic header carries it) is replaced by `<redacted>`, so a
 * server echoing what it was sent never puts a credential in a message.
 */
export async function readErrorText(res: HttpResponse, secrets: readonly string[] = []): Promise<string> {
  const read = await readErrorBody(res);
  if (!read) return '';
  // A body cut short is still worth saying, as far as it came.
  const text = read.text;
  let said = '';
  try {
    const doc = JSON.parse(text) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));
    if (Array.isArray(doc.errors)) {
      said = doc.errors.filter((e): e is Record<string, unknown> => !!e && typeof e === 'object')
        .map((e) => [str(e.code), str(e.message), str(e.detail)].filter(Boolean).join(': ')).filter(Boolean).join('; ');
    }
    said ||= [str(doc.details), str(doc.error_description) || str(doc.error), str(doc.message)].filter(Boolean).join(': ');
  } catch {
    const type = header(res.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
    if (!type.includes('html') && !/^\s*</.test(text)) said = text;
  }
  // Longest first: a secret inside another (a password in user:password) must not leave the rest of the longer one.
  const forms = secrets.filter(Boolean).flatMap((s) => [s, Buffer.from(s, 'utf8').toString('base64')]).sort((a, b) => b.length - a.length);
  const scrub = (t: string) => {
    for (const form of forms) t = t.split(form).join('<redacted>');
    return t;
  };
  // Scrubbed before and after the spaces are tidied (a secret holding a newline), and before the cut.
  // eslint-disable-next-line no-control-regex
  said = scrub(scrub(said).replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim());
  return said.length > 300 ? `${said.slice(0, 300)}…` : said;
}

/** Read a response body into memory, refusing more than `cap` bytes (a manifest, a token). */
export async function readCapped(res: HttpResponse, cap: number, what: string): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    res.body.destroy();
    throw new RegistryContentError(`${what}: ${redact(res.url)} is ${declared} bytes, over the ${cap}-byte limit`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res.body) {
      total += (chunk as Buffer).length;
      if (total > cap) {
        res.body.destroy();
        throw new RegistryContentError(`${what}: ${redact(res.url)} is over the ${cap}-byte limit`);
      }
      parts.push(chunk as Buffer);
    }
  } catch (e) {
    throw bodyError(res, what, e, total, Number.isFinite(declared) ? declared : undefined);
  }
  return Buffer.concat(parts);
}

/**
 * The error for a response body that failed as it was read, saying what and where: a
 * ResponseCutShortError for one that broke off (retried by `retryCutShort` where the request may
 * be repeated), a RegistryProtocolError for malformed framing. A RegistryError, or an abort
 * (the caller's signal's reason), is itself.
 */
export function bodyError(res: HttpResponse, what: string, e: unknown, received: number, declared?: number): unknown {
  if (e instanceof RegistryError || (e instanceof Error && e.name === 'AbortError')) return e;
  const host = hostOf(res.url);
  const parse = protocolError(host, what, e);
  if (parse) return parse;
  const got = `after ${received}${declared !== undefined ? ` of ${declared}` : ''} bytes`;
  return new ResponseCutShortError(host, what, `the answer from ${redact(res.url)} broke off ${got} (${describeError(e)})`, {
    cause: e, ...(isTimeout(e) ? { hint: TIMEOUT_HINT } : {}),
  });
}
