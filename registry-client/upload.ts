import { createReadStream } from 'node:fs';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { ScopeSet } from './auth/scope.js';
import { pushScope, type RegistryClient, type RepositoryRef } from './client.js';
import { DigestMismatchError, RegistryAuthError, RegistryError, RegistryHttpError, RegistryNetworkError } from './errors.js';
import { backoffDelay, blobDeadlineMs, describeError, formatMs, isNetworkError, isRetriableStatus, isTimeout, parseRetryAfter, sleep, TIMEOUT_HINT, TimeoutError } from './retry.js';
import { ContentLengthMismatchError } from './http1-request.js';
import { header, hostOf, type HttpResponse } from './transport.js';
import { timerDelay } from './timer.js';
import type { Digest } from '../oci/digest.js';

/**
 * The bytes of a blob to upload: a file, or a function opening a fresh stream of it from the
 * start (with `read`, its bytes at once when they are at hand, see PushBlob.read).
 */
export type BlobSource = { path: string } | { open: () => Readable; read?: () => Uint8Array | undefined };

export function openSource(src: BlobSource): Readable {
  const stream = 'path' in src ? createReadStream(src.path) : src.open();
  // Registered first, so the mark is on the error before undici or a pipeline sees it.
  stream.on('error', (e: unknown) => {
    if (e && typeof e === 'object') (e as Record<symbol, boolean>)[FROM_SOURCE] = true;
  });
  return stream;
}

/** Marks an error of a blob's source (a file, a layer streamed from another registry): not the target registry's fault. */
const FROM_SOURCE = Symbol('imgbuild.blobSourceError');

/** The source's error somewhere in `e`'s cause chain (transport layers wrap it), if there is one. */
function sourceError(e: unknown): Error | undefined {
  for (let cur = e, depth = 0; cur && typeof cur === 'object' && depth < 6; cur = (cur as { cause?: unknown }).cause, depth++) {
    if ((cur as Record<symbol, unknown>)[FROM_SOURCE] && cur instanceof Error) return cur;
  }
  return undefined;
}

export interface UploadOptions {
  /** 0 = one monolithic PUT; otherwise PATCH chunks of this many bytes (see `defaultChunkSize`). */
  chunkSize: number;
  /** Another repository of the same registry that has the blob: try a cross-repo mount first. */
  mountFrom?: string;
  /** Called with bytes as they are acknowledged by the registry (after each PUT/PATCH). */
  onBytes?: (n: number) => void;
  /**
   * Progress: the bytes of the blob sent so far in this attempt, as the request bodies are read
   * (0 as an upload starts; again from 0 on a retry), at most every 100 ms and once at the end.
   * A mount sends nothing and reports nothing.
   */
  onProgress?: (sent: number) => void;
  /** Abort the upload (its requests, its waits): it then rejects with the signal's reason, after cancelling its session. */
  signal?: AbortSignal;
}

export type UploadResult = { how: 'uploaded'; bytesSent: number } | { how: 'mounted' } | { how: 'exists' };

/** GHCR refuses a request body over 4 MiB, so uploads there go in 4 MiB PATCH chunks. */
export const GHCR_CHUNK_SIZE = 4 * 1024 * 1024;

/**
 * Our default upload mode: one streamed PUT (the fewest round-trips, no buffering) everywhere
 * except registries known to cap a request body, where PATCH chunks stay under the cap.
 */
export function defaultChunkSize(registry: string): number {
  return registry === 'ghcr.io' ? GHCR_CHUNK_SIZE : 0;
}

/**
 * Upload one blob, surviving resets, timeouts and 5xx: a broken monolithic PUT restarts with a
 * new upload session; a broken chunk resumes from the offset the registry confirms (or restarts).
 * A blob is committed only by the final PUT with `?digest=`, which the registry checks, so a
 * broken upload never leaves a half blob under the digest. Before each retry we HEAD the blob
 * in case the commit happened and only its answer was lost.
 *
 * This loop is the upload's only retry layer: its requests are sent with `retry: false` (a
 * registry answering 503 to every POST gets `1 + retries` of them, not that squared). Each
 * attempt must finish within `blobDeadlineMs` (a base plus the size at a minimum speed).
 */
export async function uploadBlob(client: RegistryClient, repo: RepositoryRef, desc: { digest: Digest; size: number }, src: BlobSource, opts: UploadOptions): Promise<UploadResult> {
  const scopes = pushScope(repo, opts.mountFrom ? [opts.mountFrom] : []);
  const where = `${repo.registry}/${repo.repository}`;
  const what = `upload blob ${desc.digest} (${desc.size} bytes) to ${where}`;
  const outer = client.signalFor(opts.signal);
  const limitMs = blobDeadlineMs(client.transport.timeouts, desc.size);

  let mountTried = false;
  let location: URL | undefined;
  let timeouts = 0;
  for (let attempt = 0; ; attempt++) {
    outer?.throwIfAborted();
    location = undefined;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new TimeoutError('blob', limitMs, `the upload did not finish within ${formatMs(limitMs)} (the blob timeout plus its size at the minimum speed)`)), timerDelay(limitMs));
    const signal = outer ? AbortSignal.any([outer, deadline.signal]) : deadline.signal;
    try {
      // Start a session — or mount, whose 202 answer is a session to upload into.
      const mounting = opts.mountFrom && !mountTried ? opts.mountFrom : undefined;
      mountTried = true;
      const mount = mounting === undefined ? undefined : await client.request(repo.registry, {
        method: 'POST', path: `/v2/${repo.repository}/blobs/uploads/`, query: { mount: desc.digest, from: mounting }, scopes,
        headers: { 'content-length': '0' }, what: `mount blob ${desc.digest} from ${mounting} into ${where}`, retry: false, signal,
      }).catch((e: unknown) => {
        // A source the credential may not read (a repository remembered from a push with other
        // credentials, or of another owner) refuses the mount, not the push: upload instead.
        if (e instanceof RegistryAuthError) return undefined;
        throw e;
      });
      if (mount?.status === 201) {
        await mount.body.dump();
        return { how: 'mounted' };
      }
      if (mount) {
        location = await sessionLocation(client, repo, mount, what);
      } else {
        const res = await client.request(repo.registry, {
          method: 'POST', path: `/v2/${repo.repository}/blobs/uploads/`, scopes, headers: { 'content-length': '0' }, what, retry: false, signal,
        });
        location = await sessionLocation(client, repo, res, what);
      }
      const progress = opts.onProgress ? throttled(opts.onProgress) : undefined;
      progress?.(0);
      const sent = opts.chunkSize > 0 && desc.size > opts.chunkSize
        ? await chunked(client, repo, desc, src, location, opts, scopes, what, signal, progress)
        : await monolithic(client, repo, desc, src, location, opts, scopes, what, signal, progress);
      progress?.flush();
      return { how: 'uploaded', bytesSent: sent };
    } catch (e) {
      if (location) await cancelSession(client, repo, location, scopes, what);
      if (outer?.aborted) throw outer.reason;
      // The blob's source failed (a file, another registry's stream): its own error, with its
      // own code and host, not a fault of the registry we push to; not retried here.
      const fromSource = deadline.signal.aborted ? undefined : sourceError(e);
      if (fromSource) {
        if (typeof (fromSource as { code?: unknown }).code === 'string' && 'hint' in fromSource) throw fromSource;
        throw new RegistryError('push-input', `${what}: cannot read the blob: ${describeError(fromSource)}`, undefined, { cause: fromSource });
      }
      const err = deadline.signal.aborted ? deadline.signal.reason : e;
      const timedOut = isTimeout(err) && !(err instanceof TimeoutError && err.kind === 'blob');
      if (timedOut) timeouts++;
      const retryable = (err instanceof RetryableUploadError || (!(err instanceof RegistryError) && isNetworkError(err)) || err instanceof RegistryNetworkError)
        && !(err instanceof TimeoutError && err.kind === 'blob');
      if (!retryable || attempt >= client.retry.retries || timeouts > client.retry.timeoutRetries) {
        const tries = attempt + 1;
        if (err instanceof RetryableUploadError && err.status === 0) throw new RegistryError('registry-http', `${what}: gave up after ${tries} attempts: ${err.message}`);
        if (err instanceof RetryableUploadError) {
          throw new RegistryHttpError(err.host, err.method, err.path, err.status, err.errors, `${what}: gave up after ${tries} attempt${tries === 1 ? '' : 's'}`);
        }
        if (err instanceof RegistryError) throw err;
        if (isNetworkError(err) || err instanceof TimeoutError) {
          const host = location ? hostOf(location) : repo.registry;
          throw new RegistryNetworkError(host, what, `${describeError(err)}${tries > 1 ? ` (${tries} attempts)` : ''}`, { cause: err, ...(isTimeout(err) ? { hint: TIMEOUT_HINT } : {}) });
        }
        // Anything else comes from the blob's source (a missing file, a failing stream).
        throw new RegistryError('push-input', `${what}: cannot read the blob: ${describeError(err)}`, undefined, { cause: err });
      }
      const asked = err instanceof RetryableUploadError ? err.retryAfterMs : undefined;
      const delay = asked ?? backoffDelay(client.retry, attempt + 1);
      client.notifyRetry({
        what, reason: err instanceof RetryableUploadError ? err.message : describeError(err instanceof RegistryNetworkError && err.cause ? err.cause : err),
        attempt: attempt + 2, attempts: (timedOut ? client.retry.timeoutRetries : client.retry.retries) + 1, delayMs: delay, retryAfter: asked !== undefined,
      });
      await sleep(delay, outer);
      // Without a session nothing was committed; with one, the commit may have happened with only
      // its answer lost. One HEAD, not retried: a registry that cannot answer it gets the blob
      // again, which is always right.
      if (!location) continue;
      const there = await client.blobExists(repo, desc.digest, scopes, { retry: false, ...(outer ? { signal: outer } : {}) }).catch(() => {
        if (outer?.aborted) throw outer.reason;
        return { exists: false };
      });
      if (there.exists) return { how: 'exists' };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A status worth another upload attempt (429, 5xx), with what the registry said. */
class RetryableUploadError extends Error {
  constructor(
    message: string,
    readonly host: string,
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly errors: readonly { code?: string; message?: string; detail?: string }[],
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Best effort: drop a broken upload session so the registry does not keep its partial bytes around (5 s at most, even after an abort). */
async function cancelSession(client: RegistryClient, repo: RepositoryRef, location: URL, scopes: ScopeSet, what: string): Promise<void> {
  try {
    const res = await client.request(repo.registry, { method: 'DELETE', url: location, scopes, what: `${what}: cancel broken session`, retry: false, signal: AbortSignal.timeout(5_000), afterAbort: true });
    await res.body.dump();
  } catch {
    // The session may be gone already; the registry purges stale ones anyway.
  }
}

async function sessionLocation(client: RegistryClient, repo: RepositoryRef, res: HttpResponse, what: string): Promise<URL> {
  if (res.status !== 202) {
    if (isRetriableStatus(res.status)) throw await retryable(client, repo, res, 'POST');
    throw await client.httpError(repo.registry, 'POST', res, what);
  }
  const loc = header(res.headers, 'location');
  if (!loc) {
    const err = await client.httpError(repo.registry, 'POST', res, what, 'the registry opened an upload without saying where to send it (no Location header): it does not follow the distribution API here');
    throw new RegistryHttpError(err.registry, 'POST', err.path, res.status, err.errors, `${what}: the registry answered 202 with no upload Location`, err.hint);
  }
  await res.body.dump();
  try {
    return new URL(loc, res.url);
  } catch {
    throw new RegistryHttpError(hostOf(res.url), 'POST', res.url.pathname, res.status, [], `${what}: the upload Location ${JSON.stringify(loc.slice(0, 200))} is not a URL`);
  }
}

/** The error for a retriable status of an upload request (the registry's own error read, capped). */
async function retryable(client: RegistryClient, repo: RepositoryRef, res: HttpResponse, method: string): Promise<RetryableUploadError> {
  const wait = parseRetryAfter(res.headers['retry-after'], client.retry.maxRetryAfterMs);
  const err = await client.httpError(repo.registry, method, res, '');
  const detail = err.errors.map((x) => [x.code, x.message].filter(Boolean).join(': ')).join('; ');
  return new RetryableUploadError(`${method} answered ${res.status}${detail ? ` (${detail})` : ''}`, err.registry, method, err.path, res.status, err.errors as RetryableUploadError['errors'], wait);
}

/**
 * The upload URL with `digest=<digest>` set in its query, as `url.searchParams.set` writes it.
 * When the query is already as URLSearchParams would write it back (name=value pairs of
 * characters it leaves alone, or escapes it would write the same) and has no `digest`, that is
 * the query with `&digest=…` appended: done so, without URLSearchParams (its parsing and
 * writing back, and their first compiles, were ~0.3 ms of CPU of a small push); anything else
 * goes through URLSearchParams.
 */
export function withDigest(location: URL, digest: Digest): URL {
  const u = new URL(location);
  const query = u.search.slice(1);
  if (query === '' || (CANONICAL_QUERY.test(query) && !/(?:^|&)digest=/.test(query))) {
    u.search = `${query === '' ? '' : `${query}&`}digest=${formEncode(digest)}`;
    return u;
  }
  u.searchParams.set('digest', digest);
  return u;
}

/**
 * A query URLSearchParams writes back unchanged: `name=value` pairs joined by `&`, of ASCII it
 * leaves as it is (alphanumerics, `*-._`) or `%XX` escapes (upper-case hex) of ASCII it escapes
 * (not those, not a space, which it writes `+`), a name never empty.
 */
const CANONICAL_PART = '(?:[A-Za-z0-9*._-]|%(?:[01][0-9A-F]|2[1-9BCF]|3[A-F]|40|5[BCDE]|60|7[BCDEF]))';
const CANONICAL_QUERY = new RegExp(`^${CANONICAL_PART}+=${CANONICAL_PART}*(?:&${CANONICAL_PART}+=${CANONICAL_PART}*)*$`);

/** An ASCII string as URLSearchParams writes a name or value (a digest is ASCII). */
function formEncode(s: string): string {
  return s.replace(/[^A-Za-z0-9*._-]/g, (c) => (c === ' ' ? '+' : `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`));
}

async function judge(client: RegistryClient, repo: RepositoryRef, res: HttpResponse, method: string, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) return;
  if (isRetriableStatus(res.status)) throw await retryable(client, repo, res, method);
  throw await client.httpError(repo.registry, method, res, what);
}

function checkCommitted(res: HttpResponse, desc: { digest: Digest }, what: string): void {
  const claimed = header(res.headers, 'docker-content-digest');
  if (claimed?.startsWith('sha256:') && claimed !== desc.digest) throw new DigestMismatchError(`${what}: registry stored`, desc.digest, claimed);
}

/** A progress callback passing on at most one value per 100 ms (the first at once); `flush()` passes on one held back. */
interface Throttled {
  (sent: number): void;
  flush(): void;
}

function throttled(fn: (sent: number) => void, intervalMs = 100): Throttled {
  let last = -Infinity;
  let held: number | undefined;
  const report = ((sent: number) => {
    // Not performance.now(): the `performance` global loads node:perf_hooks (~1.5 ms of CPU) on first use.
    const now = process.uptime() * 1000;
    if (now - last >= intervalMs) {
      last = now;
      held = undefined;
      fn(sent);
    } else held = sent;
  }) as Throttled;
  report.flush = () => {
    if (held === undefined) return;
    const sent = held;
    held = undefined;
    fn(sent);
  };
  return report;
}

/** The blob's bytes, counted into `progress` as the request body reads them (each stream counts from 0). */
function countedSource(src: BlobSource, progress: Throttled): Readable {
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      progress(sent);
      done(null, chunk);
    },
  });
  // Errors travel both ways: a failing source fails the body, a destroyed body stops the source.
  return pipeline(openSource(src), counter, () => undefined);
}

/**
 * Blobs up to this size are read whole before their PUT and sent as bytes: a config, a small
 * layer. Streamed, each cost the request a counting stream, an idle watchdog and an abort
 * controller of its own on top of the source, ~0.5 ms of CPU apiece: a small image's push is
 * mostly such blobs. At most `concurrency` of them are held at once.
 */
export const SMALL_BLOB_BYTES = 1024 * 1024;

/**
 * The source's bytes, read whole (counted into `progress` as they are read); a source longer or
 * shorter than `size` is a ContentLengthMismatchError, as a streamed body's is.
 */
function readWhole(src: BlobSource, size: number, signal: AbortSignal, progress?: Throttled): Promise<Buffer> {
  const whole = 'read' in src && src.read ? readAtOnce(src.read, size, signal, progress) : undefined;
  if (whole) return whole;
  return new Promise<Buffer>((resolve, reject) => {
    const stream = openSource(src);
    const parts: Buffer[] = [];
    let read = 0;
    let settled = false;
    const done = (e: unknown, bytes?: Buffer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (e === undefined) return resolve(bytes!);
      if (!stream.destroyed) stream.destroy();
      reject(e);
    };
    const onAbort = () => done(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > size) return done(new ContentLengthMismatchError(read, size));
      parts.push(chunk);
      progress?.(read);
    });
    stream.on('error', (e) => done(e));
    stream.on('end', () => (read === size ? done(undefined, Buffer.concat(parts, read)) : done(new ContentLengthMismatchError(read, size))));
    // Closed with neither its end nor an error (destroyed by another hand): never a whole blob.
    stream.on('close', () => done(Object.assign(new Error('the source closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })));
  });
}

/**
 * readWhole for a source whose bytes are at hand (`read`): the same outcomes as its stream, the
 * same errors (a failure of the source marked as the source's), without a stream, its async
 * iteration and its ticks; undefined when `read` has none (the stream is read then).
 */
function readAtOnce(read: () => Uint8Array | undefined, size: number, signal: AbortSignal, progress?: Throttled): Promise<Buffer> | undefined {
  if (signal.aborted) return Promise.reject(signal.reason);
  let bytes: Uint8Array | undefined;
  try {
    bytes = read();
  } catch (e) {
    if (e && typeof e === 'object') (e as Record<symbol, boolean>)[FROM_SOURCE] = true;
    return Promise.reject(e);
  }
  if (bytes === undefined) return undefined;
  if (bytes.length !== size) return Promise.reject(new ContentLengthMismatchError(bytes.length, size));
  // As the stream's one chunk: counted when there is one.
  if (bytes.length > 0) progress?.(bytes.length);
  return Promise.resolve(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** One PUT with the whole blob as its body (Content-Length known): streamed, or bytes for a small blob. */
async function monolithic(client: RegistryClient, repo: RepositoryRef, desc: { digest: Digest; size: number }, src: BlobSource, location: URL, opts: UploadOptions, scopes: ScopeSet, what: string, signal: AbortSignal, progress?: Throttled): Promise<number> {
  const small = desc.size <= SMALL_BLOB_BYTES ? await readWhole(src, desc.size, signal, progress).catch((e: unknown) => {
    throw sizeMismatch(e, desc, what);
  }) : undefined;
  const res = await client.request(repo.registry, {
    method: 'PUT', url: withDigest(location, desc.digest), scopes, what, retry: false, signal,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
    body: small ?? (() => (progress ? countedSource(src, progress) : openSource(src))),
  }).catch((e: unknown) => {
    throw sizeMismatch(e, desc, what);
  });
  await judge(client, repo, res, 'PUT', [201, 204], what);
  checkCommitted(res, desc, what);
  await res.body.dump();
  opts.onBytes?.(desc.size);
  return desc.size;
}

function sizeMismatch(e: unknown, desc: { digest: Digest; size: number }, what: string): unknown {
  const code = (e as { code?: string })?.code;
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'ERR_HTTP_CONTENT_LENGTH_MISMATCH') {
    return new DigestMismatchError(`${what}: the source's length differs from the descriptor's size`, String(desc.size), 'a different length');
  }
  return e;
}

/**
 * PATCH chunks with `Content-Range`, then a PUT with the digest. One chunk is held in memory at a
 * time (so memory is bounded by chunkSize). A chunk that fails is resumed from the offset the
 * registry reports for the session (GET on the upload URL); if the session is gone, the caller
 * restarts with a new one.
 */
async function chunked(client: RegistryClient, repo: RepositoryRef, desc: { digest: Digest; size: number }, src: BlobSource, start: URL, opts: UploadOptions, scopes: ScopeSet, what: string, signal: AbortSignal, progress?: Throttled): Promise<number> {
  let location = start;
  let offset = 0;
  let sent = 0;
  const stream = openSource(src);
  const reader = chunkReader(stream, opts.chunkSize);
  try {
    let chunk: Buffer | undefined;
    let chunkStart = 0;
    let failures = 0;
    while (offset < desc.size) {
      if (!chunk || offset >= chunkStart + chunk.length) {
        chunkStart += chunk?.length ?? 0;
        chunk = await reader.next();
        if (!chunk || chunk.length === 0) throw new DigestMismatchError(`${what}: the source ended early`, String(desc.size), String(chunkStart));
      }
      // After a resume the registry may hold part of this chunk already.
      const part = chunk.subarray(offset - chunkStart);
      try {
        const res = await client.request(repo.registry, {
          method: 'PATCH', url: location, scopes, what, retry: false, signal,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(part.length), 'content-range': `${offset}-${offset + part.length - 1}` },
          body: part,
        });
        await judge(client, repo, res, 'PATCH', [202, 204], what);
        await res.body.dump();
        const loc = header(res.headers, 'location');
        if (loc) location = new URL(loc, res.url);
        offset = confirmedEnd(res, offset + part.length);
        sent += part.length;
        opts.onBytes?.(part.length);
        progress?.(offset);
        failures = 0;
      } catch (e) {
        if (signal.aborted) throw e;
        const transient = e instanceof RetryableUploadError || e instanceof RegistryNetworkError || (!(e instanceof RegistryError) && isNetworkError(e));
        if (!transient || ++failures > client.retry.retries) throw e;
        const delay = e instanceof RetryableUploadError && e.retryAfterMs !== undefined ? e.retryAfterMs : backoffDelay(client.retry, failures);
        client.notifyRetry({ what: `${what}: chunk at ${offset}`, reason: e instanceof Error ? describeError(e) : String(e), attempt: failures + 1, attempts: client.retry.retries + 1, delayMs: delay, retryAfter: e instanceof RetryableUploadError && e.retryAfterMs !== undefined });
        await sleep(delay, signal);
        const status = await uploadStatus(client, repo, location, scopes, what, signal);
        const gone = (why: string) => new RetryableUploadError(why, hostOf(location), 'PATCH', location.pathname, 0, []);
        if (!status) throw gone('the upload session is gone');
        location = status.location;
        if (status.offset < chunkStart) throw gone('the registry lost bytes of an earlier chunk');
        offset = status.offset;
      }
    }
    const res = await client.request(repo.registry, {
      method: 'PUT', url: withDigest(location, desc.digest), scopes, what, retry: false, headers: { 'content-length': '0' }, signal,
    });
    await judge(client, repo, res, 'PUT', [201, 204], what);
    checkCommitted(res, desc, what);
    await res.body.dump();
    return sent;
  } finally {
    stream.destroy();
  }
}

/** The end of what the registry holds, from a `Range: 0-<last>` header; `fallback` when absent. */
function confirmedEnd(res: HttpResponse, fallback: number): number {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(header(res.headers, 'range') ?? '');
  return m ? Number(m[1]) + 1 : fallback;
}

/** GET on an upload URL: where the session stands (204 + Range), or undefined if it is gone. */
async function uploadStatus(client: RegistryClient, repo: RepositoryRef, location: URL, scopes: ScopeSet, what: string, signal: AbortSignal): Promise<{ offset: number; location: URL } | undefined> {
  const res = await client.request(repo.registry, { method: 'GET', url: location, scopes, what: `${what}: upload status`, retry: false, signal });
  await res.body.dump();
  if (res.status !== 204 && res.status !== 200) return undefined;
  const loc = header(res.headers, 'location');
  return { offset: confirmedEnd(res, 0), location: loc ? new URL(loc, res.url) : location };
}

/** Read a stream in pieces of exactly `size` bytes (the last may be shorter). */
function chunkReader(stream: Readable, size: number): { next(): Promise<Buffer | undefined> } {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let done = false;
  return {
    async next() {
      while (pendingLen < size && !done) {
        const r = await it.next();
        if (r.done) done = true;
        else {
          pending.push(r.value);
          pendingLen += r.value.length;
        }
      }
      if (pendingLen === 0) return undefined;
      const all = Buffer.concat(pending, pendingLen);
      const out = all.subarray(0, Math.min(size, all.length));
      const rest = all.subarray(out.length);
      pending = rest.length ? [Buffer.from(rest)] : [];
      pendingLen = rest.length;
      return out;
    },
  };
}

