import { rootCertificates } from 'node:tls';
import { Transform, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent, request } from './undici-lean.js';
import { RegistryContentError, RegistryNetworkError, RegistryTlsError } from './errors.js';
import { describeError, formatMs, isTlsError, resolveTimeouts, TimeoutError, type ResolvedTimeouts, type TimeoutOptions } from './retry.js';
import { isLoopbackRegistry } from './loopback.js';
import { normaliseRegistry } from './reference.js';

export type Headers = Record<string, string>;
export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A request body: bytes, or a factory giving a fresh stream for each attempt. */
export type Body = string | Uint8Array | (() => Readable);

export interface HttpResponse {
  status: number;
  headers: ResponseHeaders;
  body: Dispatcher.ResponseData['body'];
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
  /** Use this dispatcher for everything (tests pass undici's MockAgent). `ca`/insecure then do not apply. */
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
 * HTTP for the registry client: the right dispatcher per host (verified TLS with extra CAs, or
 * unverified for named insecure hosts), redirects followed by hand so that `Authorization` never
 * leaves the origin it was meant for, and TLS failures turned into RegistryTlsError.
 * No retries here: callers decide what may be repeated.
 */
export class Transport {
  readonly insecure: ReadonlySet<string>;
  private readonly secureAgent: Dispatcher;
  private insecureAgent: Dispatcher | undefined;
  private readonly owned: Dispatcher[] = [];

  readonly timeouts: ResolvedTimeouts;

  constructor(readonly options: TransportOptions = {}) {
    this.insecure = new Set((options.insecureRegistries ?? []).map((h) => normaliseRegistry(h)));
    this.timeouts = resolveTimeouts({
      ...(options.headersTimeoutMs !== undefined ? { responseMs: options.headersTimeoutMs } : {}),
      ...(options.bodyTimeoutMs !== undefined ? { idleMs: options.bodyTimeoutMs } : {}),
      ...options.timeouts,
    });
    if (options.dispatcher) {
      this.secureAgent = options.dispatcher;
    } else {
      const extra = options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca];
      const connect = extra.length ? { ca: [...rootCertificates, ...extra.map((c) => c.toString())] } : {};
      this.secureAgent = new Agent({ ...this.agentTimeouts(), connect: { ...connect, timeout: this.timeouts.connectMs } });
      this.owned.push(this.secureAgent);
    }
  }

  private agentTimeouts(): { headersTimeout: number; bodyTimeout: number } {
    return { headersTimeout: this.timeouts.responseMs, bodyTimeout: this.timeouts.idleMs };
  }

  isInsecure(host: string): boolean {
    return this.insecure.has(normaliseRegistry(host));
  }

  /** Whether `host` may be reached in clear text: named insecure, or on the loopback (`loopbackPlainHttp`). */
  mayUsePlainHttp(host: string): boolean {
    return this.isInsecure(host) || (this.options.loopbackPlainHttp !== false && isLoopbackRegistry(host));
  }

  private dispatcherFor(url: URL): Dispatcher {
    if (this.options.dispatcher) return this.options.dispatcher;
    if (url.protocol === 'https:' && this.isInsecure(hostOf(url))) {
      if (!this.insecureAgent) {
        // Nothing is verified here, so no CA is loaded: the system roots cost ~0.1 s of CPU.
        this.insecureAgent = new Agent({ ...this.agentTimeouts(), connect: { rejectUnauthorized: false, ca: [], timeout: this.timeouts.connectMs } });
        this.owned.push(this.insecureAgent);
      }
      return this.insecureAgent;
    }
    return this.secureAgent;
  }

  /**
   * One request. GET and HEAD follow redirects (up to 5); `authorization` is sent only while
   * the URL's origin is `authOrigin` (the registry's) — a blob redirect to a storage host gets
   * no credentials. Throws RegistryTlsError for TLS failures, TimeoutError when the connection,
   * the answer or the request body does not move in time, `signal`'s reason when it aborts, and
   * passes other errors through (so a caller can tell a reset from a bad answer and retry).
   * The response body stays bound to `signal` and to the idle timeout.
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
      // after the idle timeout, saying so. (undici's response timer also runs while a body is
      // written, refreshed by each chunk: a bytes body, written at once, is covered by it.)
      const local = new AbortController();
      const body = given === undefined || typeof given === 'string' || given instanceof Uint8Array ? given : watchIdle(given, this.timeouts.idleMs, local);
      const signal = req.signal ? AbortSignal.any([req.signal, local.signal]) : local.signal;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(this.dispatcherFor(url), url, {
          method: req.method as Dispatcher.HttpMethod,
          headers,
          body,
          signal,
          headersTimeout: this.timeouts.responseMs,
          bodyTimeout: this.timeouts.idleMs,
        });
      } catch (e) {
        if (body && typeof body === 'object' && 'destroy' in body) (body as Readable).destroy();
        if (req.signal?.aborted) throw req.signal.reason;
        if (local.signal.aborted) throw local.signal.reason;
        if (isTlsError(e)) throw new RegistryTlsError(hostOf(url), describeError(e), { cause: e });
        const code = (e as { code?: unknown }).code;
        const target = `${req.method} ${redact(url)}`;
        if (code === 'UND_ERR_HEADERS_TIMEOUT') throw new TimeoutError('response', this.timeouts.responseMs, `no answer to ${target} within ${formatMs(this.timeouts.responseMs)}`);
        if (code === 'UND_ERR_CONNECT_TIMEOUT') throw new TimeoutError('connect', this.timeouts.connectMs, `no connection to ${hostOf(url)} within ${formatMs(this.timeouts.connectMs)}`);
        throw e;
      }
      this.options.log?.(`${req.method} ${redact(url)} -> ${res.statusCode}`);
      const location = res.headers.location;
      if (follow && [301, 302, 303, 307, 308].includes(res.statusCode) && typeof location === 'string' && hop < MAX_REDIRECTS) {
        await res.body.dump();
        url = new URL(location, url);
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.owned.map((d) => d.close()));
  }
}

/** A response header as one string (the first when repeated). */
export function header(h: ResponseHeaders, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The request body as undici will read it, with a watchdog: when no chunk is taken for `idleMs`
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
    }, idleMs);
    timer.unref?.();
  };
  const watched = new Transform({
    transform(chunk: Buffer, _enc, done) {
      arm();
      done(null, chunk);
    },
  });
  arm();
  // Cleared once undici has read the whole body, not when the source ends (its last chunks may
  // still wait in the buffer); from then on undici's response timeout runs.
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
 * Read a JSON error body of a registry (`{"errors":[{code,message,detail}]}`); empty when there
 * is none, it is not JSON, or the body was already consumed. At most MAX_ERROR_BODY_BYTES are
 * read: the rest is dropped with the connection (a registry sending gigabytes costs nothing).
 */
export async function readRegistryErrors(res: HttpResponse): Promise<RegistryErrorEntry[]> {
  const body = res.body as Dispatcher.ResponseData['body'] & { bodyUsed?: boolean };
  // Reading a body that was dumped or read makes undici throw from an event handler: never do.
  if (body.bodyUsed || body.destroyed || body.readableEnded) return [];
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      parts.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= MAX_ERROR_BODY_BYTES) break; // leaving the loop destroys the body
    }
  } catch {
    return [];
  } finally {
    if (!body.destroyed) body.destroy();
  }
  try {
    const text = Buffer.concat(parts).subarray(0, MAX_ERROR_BODY_BYTES).toString('utf8');
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

/** Read a response body into memory, refusing more than `cap` bytes (a manifest, a token). */
export async function readCapped(res: HttpResponse, cap: number, what: string): Promise<Buffer> {
  const declared = Number(header(res.headers, 'content-length'));
  if (Number.isFinite(declared) && declared > cap) {
    res.body.destroy();
    throw new RegistryContentError(`${what}: ${redact(res.url)} is ${declared} bytes, over the ${cap}-byte limit`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > cap) {
      res.body.destroy();
      throw new RegistryContentError(`${what}: ${redact(res.url)} is over the ${cap}-byte limit`);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}
