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
}

export type ResolvedRetry = Required<RetryOptions>;

export function resolveRetry(o: RetryOptions = {}): ResolvedRetry {
  return {
    retries: o.retries ?? 5,
    baseDelayMs: o.baseDelayMs ?? 250,
    maxDelayMs: o.maxDelayMs ?? 8_000,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 60_000,
  };
}

/** Statuses worth another try: rate limiting and the server-side failures a proxy or a restart produce. */
export function isRetriableStatus(status: number): boolean {
  return status === 429 || status === 408 || status === 500 || status === 502 || status === 503 || status === 504;
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
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
  const codes = errorCodes(e);
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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
