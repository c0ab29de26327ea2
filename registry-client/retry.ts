import { RegistryError, RegistryNetworkError, RegistryProtocolError, ResponseCutShortError } from './errors.js';
import { isLoopbackRegistry } from './loopback.js';
import { timerDelay } from './timer.js';
import type { HttpResponse } from './transport.js';

/** How often and how long to retry a request that failed in a way that may pass (resets, 429, 5xx). */
export interface RetryOptions {
  /** Retries after the first attempt (default 5). */
  retries?: number;
  /** First backoff delay; doubles each retry, with ±25% jitter (default 250 ms). */
  baseDelayMs?: number;
  /** Cap on one backoff delay (default 8 s). */
  maxDelayMs?: number;
  /** Cap on a server's `Retry-After` (default 60 s): a registry asking for an hour gets a minute, then an error. */
  maxRetryAfterMs?: number;
  /**
   * Retries after a request that got no answer in time (connect, response or idle timeout;
   * default 2). Fewer than `retries`: a reset or a 503 comes from a live server that may recover
   * in a moment, while one silent for a whole timeout is rarely cured by waiting again, and each
   * such attempt costs a full timeout.
   */
  timeoutRetries?: number;
}

export type ResolvedRetry = Required<RetryOptions>;

export function resolveRetry(o: RetryOptions = {}): ResolvedRetry {
  return {
    retries: o.retries ?? 5,
    baseDelayMs: o.baseDelayMs ?? 250,
    maxDelayMs: o.maxDelayMs ?? 8_000,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 60_000,
    timeoutRetries: Math.min(o.timeoutRetries ?? 2, o.retries ?? 5),
  };
}

/**
 * How long to wait for a registry before giving up on a request (all in ms). The defaults fit
 * CI: a registry that accepts connections and never answers fails a command within
 * `worstCaseSilenceMs` (under 2 minutes), saying what it waited for.
 */
export interface TimeoutOptions {
  /** To open a connection, TLS handshake included (default 10 s). */
  connectMs?: number;
  /** From the end of a request to the first byte of its answer (default 30 s). */
  responseMs?: number;
  /** Without a byte moving either way in the middle of a request or response body (default 30 s). */
  idleMs?: number;
  /**
   * Total time for one transfer of a blob (an upload attempt, a download): `blobBaseMs` plus
   * the blob's size at `blobMinBytesPerSecond` (defaults 60 s and 256 KiB/s: 1 GiB gets 72 min).
   */
  blobBaseMs?: number;
  blobMinBytesPerSecond?: number;
}

export type ResolvedTimeouts = Required<TimeoutOptions>;

/** The documented defaults (docs/reliability.md, `--help`). */
export const DEFAULT_TIMEOUTS: ResolvedTimeouts = Object.freeze({
  connectMs: 10_000,
  responseMs: 30_000,
  idleMs: 30_000,
  blobBaseMs: 60_000,
  blobMinBytesPerSecond: 256 * 1024,
});

export function resolveTimeouts(o: TimeoutOptions = {}): ResolvedTimeouts {
  const pick = (k: keyof TimeoutOptions) => {
    const v = o[k];
    return v !== undefined && Number.isFinite(v) && v > 0 ? v : DEFAULT_TIMEOUTS[k];
  };
  return { connectMs: pick('connectMs'), responseMs: pick('responseMs'), idleMs: pick('idleMs'), blobBaseMs: pick('blobBaseMs'), blobMinBytesPerSecond: pick('blobMinBytesPerSecond') };
}

/** The most time one transfer of a `size`-byte blob may take. */
export function blobDeadlineMs(t: ResolvedTimeouts, size: number): number {
  return Math.ceil(t.blobBaseMs + (Math.max(0, size) / t.blobMinBytesPerSecond) * 1000);
}

/**
 * The longest a command waits on a registry that accepts connections and never answers before
 * it fails: the first request (the `/v2/` ping) tried over HTTPS once (a TLS handshake that never
 * completes: the connect timeout; a loopback host then goes on to plain HTTP), then each attempt
 * of `1 + timeoutRetries` waiting out the response timeout, with the longest backoffs between.
 */
export function worstCaseSilenceMs(t: ResolvedTimeouts, r: ResolvedRetry): number {
  let backoff = 0;
  for (let n = 1; n <= r.timeoutRetries; n++) backoff += Math.min(r.maxDelayMs, r.baseDelayMs * 2 ** (n - 1)) * 1.25;
  return t.connectMs + (1 + r.timeoutRetries) * Math.max(t.responseMs, t.connectMs) + backoff;
}

/** What a client tells while it waits before another attempt (the CLI prints it on stderr). */
export interface RetryNotice {
  /** What was being done, e.g. "push sha256:ab… to ghcr.io/org/app". */
  what: string;
  /** Why: "503 Service Unavailable", "no answer within 30 s", "ECONNRESET: …". */
  reason: string;
  /** The attempt about to be made (2 = the first retry) and the most there will be. */
  attempt: number;
  attempts: number;
  /** How long until then; `retryAfter`: the registry asked for that wait. */
  delayMs: number;
  retryAfter: boolean;
}

/** One line for a RetryNotice: `push …: the registry answered 503; retrying in 2 s (attempt 2 of 6)`. */
export function formatRetryNotice(n: RetryNotice): string {
  const wait = formatMs(n.delayMs);
  const why = n.retryAfter ? `the registry asked to wait ${wait} (Retry-After)` : `retrying in ${wait}`;
  return `${n.what}: ${n.reason}; ${why} (attempt ${n.attempt} of ${n.attempts})`;
}

/** A request timed out (connect, response, idle or a blob's total): which one, and after how long. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
  readonly code = 'IMGBUILD_TIMEOUT';
  constructor(readonly kind: 'connect' | 'response' | 'idle' | 'blob', readonly ms: number, message: string) {
    super(message);
  }
}

/** Whether a failure is a timeout (ours or undici's). */
export function isTimeout(e: unknown): boolean {
  return errorCodes(e).some((c) => c === 'IMGBUILD_TIMEOUT' || c === 'UND_ERR_CONNECT_TIMEOUT' || c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT' || c === 'ETIMEDOUT');
}

/** `30 s`, `1.5 s`, `200 ms`. */
export function formatMs(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** Statuses worth another try: rate limiting and the server-side failures a proxy or a restart produce. */
export function isRetriableStatus(status: number): boolean {
  return status === 429 || status === 408 || status === 500 || status === 502 || status === 503 || status === 504;
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'IMGBUILD_TIMEOUT',
]);

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE', 'HOSTNAME_MISMATCH', 'EPROTO',
]);

function errorCodes(e: unknown): string[] {
  const codes: string[] = [];
  for (let cur = e, depth = 0; cur && typeof cur === 'object' && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

/** A failed TLS handshake (certificate or protocol): never retried, reported as TLS. */
export function isTlsError(e: unknown): boolean {
  return errorCodes(e).some((c) => TLS_CODES.has(c) || c.startsWith('ERR_TLS_') || c.startsWith('ERR_SSL_'));
}

const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_SIGNATURE_FAILURE', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A TLS failure over the server's certificate (unknown CA, wrong name, expired): the server
 * speaks TLS. Any other TLS failure (`wrong version number`) may be a server that does not.
 */
export function isCertificateError(e: unknown): boolean {
  return errorCodes(e).some((c) => CERTIFICATE_CODES.has(c));
}

/** A host name that does not resolve: `ENOTFOUND` (no such name), `EAI_AGAIN` (no answer now: retried). */
export function isDnsError(e: unknown): boolean {
  return errorCodes(e).some((c) => c === 'ENOTFOUND' || c === 'EAI_AGAIN');
}

/** A broken or refused connection that another attempt may not meet. */
export function isNetworkError(e: unknown): boolean {
  if (isTlsError(e)) return false;
  return errorCodes(e).some((c) => NETWORK_CODES.has(c));
}

/** Short text for a low-level error, e.g. `ECONNRESET: other side closed`. */
export function describeError(e: unknown): string {
  if (e instanceof TimeoutError) return e.message;
  const codes = errorCodes(e);
  if (codes.includes('UND_ERR_BODY_TIMEOUT')) return 'the answer stopped coming (no byte within the idle timeout)';
  const msg = e instanceof Error ? e.message : String(e);
  return codes.length && !msg.startsWith(codes[0]!) ? `${codes[0]}: ${msg}` : msg;
}

/** Milliseconds a `Retry-After` header asks for (delta-seconds or an HTTP date), capped; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, capMs: number, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  let ms: number;
  if (/^\s*\d+\s*$/.test(v)) ms = Number(v) * 1000;
  else {
    const t = Date.parse(v);
    if (Number.isNaN(t)) return undefined;
    ms = Math.max(0, t - now);
  }
  return Math.min(ms, capMs);
}

/** The backoff before retry number `attempt` (1-based). */
export function backoffDelay(r: ResolvedRetry, attempt: number): number {
  const base = Math.min(r.maxDelayMs, r.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** Wait `ms`; rejects with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, timerDelay(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** How a client retries and whom it tells: shared by every request of a client, token requests included. */
export interface RetryContext {
  retry: ResolvedRetry;
  onRetry?: (notice: RetryNotice) => void;
}

export const TIMEOUT_HINT = 'the registry did not answer in time; if it is slow rather than down, allow it longer (the timeouts option; imgbuild --connect-timeout, --response-timeout, --idle-timeout, --blob-timeout)';

/**
 * Run `attempt` with retries on resets, timeouts, 429 (Retry-After) and 5xx; network failures
 * become RegistryNetworkError. The only retry layer of a request: callers that restart whole
 * operations (uploads) pass `retry: false` and count attempts themselves. Each wait is told to
 * `onRetry` first, and ends at once when `signal` aborts (rejecting with its reason).
 */
export async function withRetries(ctx: RetryContext, what: string, where: string | URL, retry: boolean, attempt: () => Promise<HttpResponse>, signal?: AbortSignal): Promise<HttpResponse> {
  const r = ctx.retry;
  const host = typeof where === 'string' ? where : where.host.toLowerCase();
  // Asked in plain HTTP (an insecure registry, or a loopback one found speaking it): a failed
  // connection is not for want of --insecure-registry.
  const plainHint = typeof where !== 'string' && where.protocol === 'http:' && !isLoopbackRegistry(host) ? PLAIN_HTTP_CONNECT_HINT : undefined;
  let timeouts = 0;
  for (let n = 0; ; n++) {
    signal?.throwIfAborted();
    let res: HttpResponse;
    try {
      res = await attempt();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (e instanceof RegistryError) throw e;
      // Not HTTP, or HTTP with broken framing: another attempt gets the same answer.
      const parse = protocolError(host, what, e);
      if (parse) throw parse;
      const dns = isDnsError(e);
      // No such name (ENOTFOUND): another attempt gets the same answer. A name server that did
      // not answer (EAI_AGAIN) is retried like a reset.
      if (dns && (!isNetworkError(e) || !retry || n >= r.retries)) {
        const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
        const detail = `the name ${name} does not resolve (${describeError(e)})`;
        throw new RegistryNetworkError(host, what, detail, { cause: e, hint: 'check the registry name in the reference, and this machine\'s DNS' });
      }
      if (!isNetworkError(e)) throw e;
      const timedOut = isTimeout(e);
      if (timedOut) timeouts++;
      if (!retry || n >= r.retries || timeouts > r.timeoutRetries) {
        const tries = n + 1;
        const hint = timedOut ? TIMEOUT_HINT : plainHint;
        throw new RegistryNetworkError(host, what, `${describeError(e)}${tries > 1 ? ` (${tries} attempts)` : ''}`, { cause: e, ...(hint ? { hint } : {}) });
      }
      const delay = backoffDelay(r, n + 1);
      ctx.onRetry?.({ what, reason: describeError(e), attempt: n + 2, attempts: (timedOut ? r.timeoutRetries : r.retries) + 1, delayMs: delay, retryAfter: false });
      await sleep(delay, signal);
      continue;
    }
    if (retry && isRetriableStatus(res.status) && n < r.retries) {
      const asked = parseRetryAfter(res.headers['retry-after'], r.maxRetryAfterMs);
      const delay = asked ?? backoffDelay(r, n + 1);
      await res.body.dump();
      ctx.onRetry?.({ what, reason: `the registry answered ${res.status}`, attempt: n + 2, attempts: r.retries + 1, delayMs: delay, retryAfter: asked !== undefined });
      await sleep(delay, signal);
      continue;
    }
    return res;
  }
}

/** The hint of a connection that failed to a registry asked in plain HTTP (not on the loopback). */
export const PLAIN_HTTP_CONNECT_HINT = 'check that the registry is up and reachable from here (it was asked in plain HTTP, as an insecure registry: no flag is missing)';

/** Whether `e` (or what caused it) is a malformed HTTP answer: our parser's HttpParseError or llhttp's (undici), `HPE_*`. */
export function isHttpParseError(e: unknown): boolean {
  return errorCodes(e).some((c) => c.startsWith('HPE_'));
}

/**
 * The typed error for an answer that is not HTTP (a banner, binary) or breaks its framing, or
 * undefined when `e` is not one: "<host> did not answer in HTTP (is this a registry's port?)".
 */
export function protocolError(host: string, what: string, e: unknown): RegistryProtocolError | undefined {
  if (e instanceof RegistryProtocolError) return e;
  if (!isHttpParseError(e)) return undefined;
  let parse: unknown = e;
  for (let depth = 0; depth < 5 && !String((parse as { code?: unknown }).code).startsWith('HPE_'); depth++) parse = (parse as { cause?: unknown }).cause;
  const p = parse as { code: string; reason?: unknown; got?: unknown; notHttp?: unknown; message?: unknown };
  const notHttp = typeof p.notHttp === 'boolean' ? p.notHttp : p.code === 'HPE_INVALID_CONSTANT' || p.code === 'HPE_INVALID_VERSION';
  const reason = typeof p.reason === 'string' ? p.reason : String(p.message ?? p.code).replace(/^Parse Error: /, '');
  const detail = notHttp ? (typeof p.got === 'string' && p.got ? `it sent ${JSON.stringify(p.got)}` : '') : `${reason} (${p.code})`;
  return new RegistryProtocolError(host, what, detail, { cause: e, notHttp });
}

/**
 * Run `read` — a request that may be repeated (GET, HEAD) and the reading of its answer — again
 * when the answer broke off (ResponseCutShortError: a reset or close in the middle of the body,
 * or the idle timeout), with the backoff and the attempts of `withRetries`; each wait is told to
 * `onRetry`. Any other error is thrown as it is.
 */
export async function retryCutShort<T>(ctx: RetryContext, what: string, read: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const r = ctx.retry;
  let timeouts = 0;
  for (let n = 0; ; n++) {
    try {
      return await read();
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (!(e instanceof ResponseCutShortError)) throw e;
      const timedOut = isTimeout(e.cause);
      if (timedOut) timeouts++;
      if (n >= r.retries || timeouts > r.timeoutRetries) throw n > 0 ? e.afterAttempts(n + 1) : e;
      const delay = backoffDelay(r, n + 1);
      ctx.onRetry?.({ what, reason: `the answer broke off (${describeError(e.cause)})`, attempt: n + 2, attempts: (timedOut ? r.timeoutRetries : r.retries) + 1, delayMs: delay, retryAfter: false });
      await sleep(delay, signal);
    }
  }
}

/** `p`, or `signal`'s reason as soon as it aborts (what `p` does then is left to it). */
export function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
