import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { timerDelay } from '../../../registry-client/timer.js';
import { ImgbuildError } from '../../errors.js';

/** How requests to a binary cache are retried: attempts after the first, and the backoff between them. */
export interface CacheRetry {
  /** Attempts after the first (default 4). */
  retries: number;
  /** First wait (default 250 ms), doubled each time… */
  baseDelayMs: number;
  /** …up to this (default 4 s). */
  maxDelayMs: number;
}

export interface CacheFetchOptions {
  retry?: Partial<CacheRetry>;
  /** Longest wait for a response's headers, and between two reads of its body (default 30 s): a stalled cache is retried. */
  timeoutMs?: number;
  /** Longest wait for a response's headers (default: timeoutMs); the CLI's --response-timeout. */
  responseTimeoutMs?: number;
  /** Longest wait between two reads of a body (default: timeoutMs); the CLI's --idle-timeout. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_RETRY: CacheRetry = { retries: 4, baseDelayMs: 250, maxDelayMs: 4000 };

/** An answer that says the file is not there (404/410, or no such file): not retried. */
export class NotFound extends Error {}

/** A failure that another try may not have: a network error, a timeout, 5xx, 429. */
class Transient extends Error {}

function delayOf(retry: CacheRetry, attempt: number, retryAfter?: string): number {
  const seconds = retryAfter !== undefined && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
  return Math.min(retry.maxDelayMs, seconds ?? retry.baseDelayMs * 2 ** attempt);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, timerDelay(ms));
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface Opened {
  /** The body from `offset` on. */
  body: AsyncIterable<Uint8Array>;
  /** Bytes the body starts after (the range asked for, or 0 when the server sent the whole file). */
  from: number;
  close(): void;
}

/** Redirects followed for one request, as Nix (curl) follows them. */
export const MAX_REDIRECTS = 10;

/**
 * A URL as messages (errors, `--json` error documents, progress lines) show it: its user info
 * (`user:password@`, or a token alone) masked as `***@`, its query as `?…` (a presigned URL's
 * query is a credential), no fragment. Every cache or NAR URL printed goes through this.
 */
export function shownUrl(u: URL): string {
  const c = new URL(u.href);
  const userinfo = c.username !== '' || c.password !== '';
  c.username = '';
  c.password = '';
  const hidden = c.search !== '';
  c.search = '';
  c.hash = '';
  const text = userinfo ? c.href.replace('//', '//***@') : c.href;
  return hidden ? `${text}?…` : text;
}

/** A `--substituter` value that is no URL, as messages show it: what could be user info (between `://` and the last `@`) masked as `***`. */
export function shownUrlText(text: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)[\s\S]*@/i.exec(text);
  return m ? `${m[1]}***@${text.slice(m[0].length)}` : text;
}

function redirectChain(chain: readonly URL[]): string {
  return chain.map(shownUrl).join(' -> ');
}

/** Opens `url` from byte `offset` (http(s): a Range request; a server may ignore it and send all). */
async function openAt(url: URL, offset: number, opts: CacheFetchOptions): Promise<Opened> {
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    try {
      const fh = await open(path, 'r');
      await fh.close();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFound(path);
      throw e;
    }
    const s = createReadStream(path, { start: offset, highWaterMark: 256 * 1024 });
    return { body: s, from: offset, close: () => s.destroy() };
  }
  const timeout = opts.timeoutMs ?? 30_000;
  // undici is loaded on the first HTTP fetch: every build imports this module (store sources),
  // and loading undici cost each build and each layer worker ~85 ms of CPU it mostly never used.
  const { request } = await import('undici');
  // Redirects are followed as Nix follows them (Attic sends NAR downloads to presigned object-store
  // URLs): 301/302/303/307/308, to http(s) URLs, at most MAX_REDIRECTS, a loop refused. No
  // credentials are sent to a cache, so none can reach another origin.
  let at = url;
  const chain: URL[] = [url];
  let res;
  for (;;) {
    try {
      res = await request(at, {
        method: 'GET',
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        headersTimeout: timerDelay(opts.responseTimeoutMs ?? timeout),
        bodyTimeout: timerDelay(opts.idleTimeoutMs ?? timeout),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      throw new Transient((e as Error).message, { cause: e });
    }
    if (![301, 302, 303, 307, 308].includes(res.statusCode)) break;
    await res.body.dump().catch(() => undefined);
    const location = res.headers.location;
    const text = Array.isArray(location) ? location[0] : location;
    let next: URL | undefined;
    try {
      next = text ? new URL(text, at) : undefined;
    } catch {
      next = undefined;
    }
    if (!next) throw new ImgbuildError('binary-cache', `GET ${shownUrl(at)} answered HTTP ${res.statusCode} with no usable Location (${redirectChain(chain)})`, 'check the binary cache\'s redirect configuration (--substituter)');
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new ImgbuildError('binary-cache', `GET ${shownUrl(at)} redirects to a ${next.protocol}// URL; imgbuild follows redirects to http(s):// only (${redirectChain([...chain, next])})`, 'check the binary cache\'s redirect configuration (--substituter)');
    }
    if (chain.some((u) => u.href === next.href)) {
      throw new ImgbuildError('binary-cache', `GET ${shownUrl(url)}: redirect loop (${redirectChain([...chain, next])})`, 'check the binary cache\'s redirect configuration (--substituter)');
    }
    chain.push(next);
    if (chain.length > MAX_REDIRECTS + 1) {
      throw new ImgbuildError('binary-cache', `GET ${shownUrl(url)}: more than ${MAX_REDIRECTS} redirects (${redirectChain(chain)})`, 'check the binary cache\'s redirect configuration (--substituter)');
    }
    at = next;
  }
  const { statusCode } = res;
  if (statusCode === 200 || (statusCode === 206 && offset > 0)) {
    let from = 0;
    if (statusCode === 206) {
      const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      from = range ? Number(range[1]) : -1;
      if (from !== offset) {
        res.body.destroy();
        throw new Transient(`asked for bytes ${offset}- and got ${String(res.headers['content-range'])}`);
      }
    }
    return { body: res.body, from, close: () => res.body.destroy() };
  }
  await res.body.dump().catch(() => undefined);
  if (statusCode === 404 || statusCode === 410) throw new NotFound(`HTTP ${statusCode}`);
  if (statusCode >= 500 || statusCode === 429 || statusCode === 408) {
    const t = new Transient(`HTTP ${statusCode}`);
    (t as Transient & { retryAfter?: string }).retryAfter = String(res.headers['retry-after'] ?? '');
    throw t;
  }
  throw new ImgbuildError('binary-cache', `GET ${shownUrl(url)}${at === url ? '' : ` (redirected to ${shownUrl(at)})`} answered HTTP ${statusCode}`, statusCode === 401 || statusCode === 403 ? 'the binary cache refuses access: imgbuild sends no credentials to it; use a cache that allows anonymous reads' : undefined);
}

/**
 * The bytes of `url` as a stream, read once, with the network's failures hidden: a failed
 * request, a timeout, a 5xx or 429, or a connection cut in the middle of the body is retried with
 * backoff, resuming where it stopped (a Range request; from the start, skipping what was read,
 * when the server ignores ranges). `NotFound` when there is no such file. `maxBytes` bounds the
 * read: a longer body is an error.
 */
export async function* fetchStream(url: URL, maxBytes: number, opts: CacheFetchOptions = {}): AsyncGenerator<Uint8Array> {
  const retry = { ...DEFAULT_RETRY, ...opts.retry };
  let got = 0;
  let attempt = 0;
  for (;;) {
    let opened: Opened | undefined;
    try {
      opened = await openAt(url, got, opts);
      let skip = got - opened.from;
      for await (const raw of opened.body) {
        let chunk = raw;
        if (skip > 0) {
          const k = Math.min(skip, chunk.length);
          skip -= k;
          chunk = chunk.subarray(k);
          if (chunk.length === 0) continue;
        }
        got += chunk.length;
        if (got > maxBytes) throw new ImgbuildError('binary-cache', `${shownUrl(url)} is longer than the ${maxBytes} bytes expected`);
        yield chunk;
        attempt = 0; // progress was made: a later failure gets the whole budget again
      }
      return;
    } catch (e) {
      if (e instanceof NotFound || e instanceof ImgbuildError || opts.signal?.aborted) throw e;
      if (attempt >= retry.retries) {
        const why = e instanceof Error ? e.message : String(e);
        throw new ImgbuildError('network', `GET ${shownUrl(url)} failed ${retry.retries + 1} times (last: ${why})`, 'check that the binary cache is reachable (--substituter)', { cause: e });
      }
      await sleep(delayOf(retry, attempt, (e as { retryAfter?: string }).retryAfter), opts.signal);
      attempt++;
    } finally {
      opened?.close();
    }
  }
}

/** All of `url` (a small file: narinfo, nix-cache-info), at most `maxBytes`. */
export async function fetchBytes(url: URL, maxBytes: number, opts: CacheFetchOptions = {}): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of fetchStream(url, maxBytes, opts)) parts.push(c);
  return Buffer.concat(parts);
}
