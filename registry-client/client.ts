import { Authenticator } from './auth/authenticator.js';
import type { CredentialProvider } from './auth/credentials.js';

/** The default credentials: none (nothing ambient is read). */
const noCredentials: CredentialProvider = async () => undefined;
import { ScopeSet } from './auth/scope.js';
import {
  DigestMismatchError, NotARegistryError, RegistryContentError, RegistryError, RegistryHttpError, RegistryNetworkError, RegistryTlsError,
} from './errors.js';
import { isLoopbackRegistry } from './loopback.js';
import { normaliseRegistry, registryApiHost } from './reference.js';
import { abortable, isCertificateError, isRetriableStatus, resolveRetry, retryCutShort, withRetries, type ResolvedRetry, type RetryContext, type RetryNotice, type RetryOptions } from './retry.js';
import { header, hostOf, readCapped, readRegistryErrors, redact, Transport, type Body, type Headers, type HttpResponse, type TransportOptions } from './transport.js';
import { manifestMediaTypes } from '../oci/media-types.js';
import { sha256Digest, type Digest } from '../oci/digest.js';

// Kept here too: it was first published from this module.
export { readCapped } from './transport.js';

/** A repository in a registry; an ImageReference is one. */
export interface RepositoryRef {
  registry: string;
  repository: string;
}

export interface RegistryClientOptions extends TransportOptions {
  /**
   * Where credentials come from. Default: none (anonymous; a registry's token service may still
   * hand out an anonymous token): the client reads no Docker config, no environment and runs no
   * credential helper unless asked. `defaultCredentialProvider()` is Docker's lookup (config.json
   * in $DOCKER_CONFIG or ~/.docker with its credential helpers, then $GITHUB_TOKEN for ghcr.io),
   * as the imgbuild CLI uses it.
   */
  credentials?: CredentialProvider;
  retry?: RetryOptions;
  /**
   * Told before each wait for another attempt (a 503, a reset, a timeout, a `Retry-After`): what,
   * why, which attempt, how long. The CLI prints it on stderr; the library prints nothing.
   */
  onRetry?: (notice: RetryNotice) => void;
  /**
   * The hint of an error for a registry that refused an anonymous request: how to give a
   * credential (default: `log in first (imgbuild login <registry>)`). The CLI adds `--creds` for
   * the registries its `--creds` applies to, so the hint is true.
   */
  loginHint?: (registry: string) => string;
  /**
   * Aborts everything this client does (every request, its connection, its backoff waits, the
   * `/v2/` ping, token requests), on top of each request's own signal: a command gives its
   * interrupt here. What was aborted rejects with the signal's reason, and is never retried.
   */
  signal?: AbortSignal;
}

/** Registries must accept manifests up to 4 MiB; we never send or read more. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The Accept header of a manifest GET: every manifest type we read (Debian's registry 404s an OCI manifest otherwise). */
export const MANIFEST_ACCEPT = manifestMediaTypes.join(', ');

interface RegistryState {
  origin: Promise<string> | undefined;
  /** The signal the ping in `origin` runs under (its first caller's). */
  originSignal: AbortSignal | undefined;
  auth: Authenticator;
}

export interface RequestSpec {
  method: string;
  /** A path under the registry (`/v2/...`) or an absolute URL the registry gave us (an upload Location). */
  path?: string;
  url?: URL;
  query?: Record<string, string>;
  headers?: Headers;
  body?: Body;
  scopes: ScopeSet;
  /** Said in errors: "push sha256:ab.. to 127.0.0.1:5000/app". */
  what: string;
  /** Retry resets, 429 and 5xx here (default true). Uploads say false and restart their session instead. */
  retry?: boolean;
  /** Abort the request (and its waits, its retries): it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A clean-up sent after an abort (cancelling an upload session): it runs under `signal` only,
   * not the client's own (`RegistryClientOptions.signal`), which has aborted by then.
   */
  afterAbort?: boolean;
}

/**
 * A client for the OCI distribution API of any number of registries. It holds one
 * Authenticator per registry (so tokens are shared by every request of a push) and one
 * Transport (connection pools). Higher-level operations are `pushImage` and `pullImage`.
 */
export class RegistryClient {
  readonly transport: Transport;
  readonly retry: ResolvedRetry;
  /** The retry policy with its listener, for the layers that retry whole operations (uploads, downloads, tokens). */
  readonly retryContext: RetryContext;
  /** The client's own signal (`RegistryClientOptions.signal`). */
  readonly signal: AbortSignal | undefined;
  private readonly credentials: CredentialProvider;
  private readonly registries = new Map<string, RegistryState>();

  constructor(readonly options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.retry = resolveRetry(options.retry);
    this.retryContext = { retry: this.retry, ...(options.onRetry ? { onRetry: options.onRetry } : {}) };
    this.signal = options.signal;
    this.credentials = options.credentials ?? noCredentials;
  }

  /** `signal` and the client's own signal, as one (either aborting aborts it); undefined when neither is given. */
  signalFor(signal?: AbortSignal): AbortSignal | undefined {
    if (!this.signal || signal === this.signal) return signal ?? this.signal;
    return signal ? AbortSignal.any([this.signal, signal]) : this.signal;
  }

  /** Tell the client's listener about a wait before another attempt. */
  notifyRetry(notice: RetryNotice): void {
    this.options.onRetry?.(notice);
  }

  private state(registry: string): RegistryState {
    const key = normaliseRegistry(registry);
    let s = this.registries.get(key);
    if (!s) {
      s = {
        origin: undefined, originSignal: undefined,
        auth: new Authenticator(key, this.transport, this.credentials, Date.now, {
          retry: this.retryContext, ...(this.options.loginHint ? { loginHint: this.options.loginHint } : {}), ...(this.signal ? { signal: this.signal } : {}),
        }),
      };
      this.registries.set(key, s);
    }
    return s;
  }

  /** The Authenticator of a registry (to inspect or pre-warm; rarely needed). */
  authenticator(registry: string): Authenticator {
    return this.state(registry).auth;
  }

  /**
   * `https://host`, or `http://host` for a registry that does not speak TLS and may be reached in
   * clear text (named insecure, or on the loopback: Transport.mayUsePlainHttp), found by pinging
   * `/v2/` once; the ping's 401 tells us the auth scheme before any real request. The ping,
   * shared by every request to the registry, runs under the signal of the request that started
   * it (and the client's): `signal` aborting ends the ping's connections and backoff waits at
   * once, and the wait of this caller; a caller whose own signal did not abort starts a new ping.
   */
  origin(registry: string, signal?: AbortSignal): Promise<string> {
    return this.originUnder(registry, this.signalFor(signal));
  }

  /** `origin`, waited for under `mine` alone (a clean-up after an abort waits without the client's signal). */
  private async originUnder(registry: string, mine: AbortSignal | undefined): Promise<string> {
    for (;;) {
      mine?.throwIfAborted();
      const s = this.state(registry);
      if (!s.origin) {
        const p = this.ping(registry, s.auth, mine);
        s.origin = p;
        s.originSignal = mine;
        // A failed (or aborted) ping is tried again next time.
        p.catch(() => {
          if (s.origin === p) s.origin = s.originSignal = undefined;
        });
      }
      const shared = s.origin;
      const under = s.originSignal;
      try {
        return await abortable(shared, mine);
      } catch (e) {
        if (mine?.aborted) throw mine.reason;
        // Another caller's signal aborted the ping this one waited on: this one pings anew.
        if (under?.aborted && under !== mine) continue;
        throw e;
      }
    }
  }

  private async ping(registry: string, auth: Authenticator, signal: AbortSignal | undefined): Promise<string> {
    const host = registryApiHost(registry);
    const what = `connect to ${host}`;
    if (this.transport.mayUsePlainHttp(host) && isLoopbackRegistry(host)) {
      // A loopback registry is asked in plain HTTP first: a local test or CI registry nearly
      // always is one, and the HTTPS attempt before it (a TLS context and handshake, node:tls and
      // node:https loaded) was ~5 ms of an uploading push's ~115 ms of CPU. Only a registry's
      // answer to /v2/ (200, or 401 with its challenge) is taken; anything else (a TLS server's
      // 400 to clear text, a reset, no server) goes on to the HTTPS-first order below, so a TLS
      // registry on the loopback is still reached over verified TLS, and its unverifiable
      // certificate still reported. The ping carries no credentials. Not retried: the order
      // below retries.
      try {
        const url = new URL('/v2/', `http://${host}`);
        const res = await withRetries(this.retryContext, what, url, false, () => this.transport.send({ method: 'GET', url, ...(signal ? { signal } : {}) }), signal);
        await res.body.dump();
        if (notRegistryAnswer(res, url) === undefined) {
          auth.setChallengeFrom(res.headers['www-authenticate'], res.status);
          return `http://${host}`;
        }
      } catch {
        // Whatever failed is tried again, and reported, by the order below (an abort: at once, there).
        signal?.throwIfAborted();
      }
    }
    const insecure = this.transport.isInsecure(host);
    const schemes = insecure || this.transport.mayUsePlainHttp(host) ? ['https', 'http'] : ['https'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const origin = `${scheme}://${host}`;
      const last = scheme === schemes[schemes.length - 1];
      try {
        const url = new URL('/v2/', origin);
        const res = await withRetries(this.retryContext, what, url, last, () => this.transport.send({ method: 'GET', url, ...(signal ? { signal } : {}) }), signal);
        // Per the distribution spec /v2/ answers 200 or 401. A registry that refuses us (403)
        // or is failing (429, 5xx after the retries) says so; anything else (a web server's 404,
        // a redirect elsewhere, an HTML page) is not a registry, and nothing more is sent to it.
        if (res.status === 403 || isRetriableStatus(res.status)) throw await this.httpError(registry, 'GET', res, what);
        await res.body.dump();
        const notRegistry = notRegistryAnswer(res, url);
        if (notRegistry !== undefined) throw new NotARegistryError(host, what, notRegistry);
        auth.setChallengeFrom(res.headers['www-authenticate'], res.status);
        return origin;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        lastError = e;
        // HTTPS first, as go-containerregistry does: a host that may speak plain HTTP goes on to it
        // after a connection failure or a TLS failure. A loopback registry the user did not name
        // insecure goes on only when the server does not speak TLS at all: one that shows a
        // certificate we cannot verify is reported (with a hint), not talked to in clear text.
        const next = e instanceof RegistryNetworkError || (e instanceof RegistryTlsError && (insecure || !isCertificateError(e.cause)));
        if (!last && next) continue;
        throw e;
      }
    }
    throw lastError;
  }

  /**
   * One API request with auth and retries: the Authorization header for `scopes`, one re-try
   * after a 401 with the wider scope its challenge names, then RegistryAuthError naming the
   * credential's source and the scope. Returns any other response for the caller to judge.
   */
  async request(registry: string, spec: RequestSpec): Promise<HttpResponse> {
    const signal = spec.afterAbort ? spec.signal : this.signalFor(spec.signal);
    const origin = await this.originUnder(registry, signal);
    const auth = this.state(registry).auth;
    const url = spec.url ? new URL(spec.url) : new URL(spec.path ?? '/v2/', origin);
    for (const [k, v] of Object.entries(spec.query ?? {})) url.searchParams.set(k, v);
    let reauthed = false;
    for (;;) {
      const res = await withRetries(this.retryContext, spec.what, url, spec.retry ?? true, async () => {
        const authorization = await abortable(auth.authorization(spec.scopes), signal);
        return this.transport.send({
          method: spec.method, url, ...(spec.headers ? { headers: spec.headers } : {}),
          ...(spec.body !== undefined ? { body: spec.body } : {}),
          ...(authorization ? { authorization, authOrigin: origin } : {}),
          ...(signal ? { signal } : {}),
        });
      }, signal);
      if (res.status === 401 || res.status === 403) {
        // The registry's own errors (small, bounded): said when this is the final refusal.
        const errs = spec.method === 'HEAD' ? [] : await readRegistryErrors(res);
        if (spec.method === 'HEAD') await res.body.dump();
        if (res.status === 401 && !reauthed) {
          reauthed = true;
          if (await auth.onUnauthorized(res.headers['www-authenticate'])) continue;
        }
        throw await auth.refused(res.status, spec.scopes, spec.what, errs.map((e) => [e.code, e.message, e.detail].filter(Boolean).join(': ')).join('; '));
      }
      return res;
    }
  }

  /**
   * The error for an unexpected status (reads at most a small part of the registry's error body;
   * none for a HEAD or a body already read). It names the host that answered: an upload
   * Location may send a request to another host than the registry's.
   */
  async httpError(registry: string, method: string, res: HttpResponse, what: string, hint?: string): Promise<RegistryHttpError> {
    const errors = method === 'HEAD' ? [] : await readRegistryErrors(res);
    if (method === 'HEAD') await res.body.dump().catch(() => undefined);
    const answered = hostOf(res.url);
    const shown = answered === registryApiHost(normaliseRegistry(registry)).toLowerCase() ? normaliseRegistry(registry) : answered;
    return new RegistryHttpError(shown, method, res.url.pathname, res.status, errors, what, hint, res.statusText);
  }

  /**
   * Whether a blob exists in a repository (HEAD); its size when it does. Only a 200 whose
   * Docker-Content-Digest is the digest asked for says yes: a server answering 200 to anything
   * (a catch-all proxy, a web server) holds nothing we can count on. A registry that does not
   * do HEAD here (400, 405, 501, ...) says no too, and the blob is sent (an upload is checked by
   * the registry against its digest). A status that stays retriable after the retries (5xx, 429)
   * is an error.
   */
  async blobExists(repo: RepositoryRef, digest: Digest, scopes = pullScope(repo), options: { retry?: boolean; signal?: AbortSignal } = {}): Promise<{ exists: boolean; size?: number }> {
    const what = `check blob ${digest} in ${repo.registry}/${repo.repository}`;
    const res = await this.request(repo.registry, {
      method: 'HEAD', path: `/v2/${repo.repository}/blobs/${digest}`, scopes, what,
      ...(options.retry === false ? { retry: false } : {}), ...(options.signal ? { signal: options.signal } : {}),
    });
    await res.body.dump();
    if (res.status === 200) {
      if (header(res.headers, 'docker-content-digest') !== digest) return { exists: false };
      const len = Number(header(res.headers, 'content-length'));
      return Number.isFinite(len) ? { exists: true, size: len } : { exists: true };
    }
    if (res.status === 429 || (res.status >= 500 && res.status !== 501)) throw await this.httpError(repo.registry, 'HEAD', res, what);
    return { exists: false };
  }

  /**
   * Whether a repository holds the manifest (or index) with this digest: a HEAD with every
   * manifest type in Accept. Only a 200 whose Docker-Content-Digest is that digest says yes;
   * any other answer (404, a 200 without the header, a registry that refuses HEAD here) says no.
   */
  async hasManifest(repo: RepositoryRef, digest: Digest, scopes = pullScope(repo), signal?: AbortSignal): Promise<boolean> {
    const what = `check manifest ${digest} in ${repo.registry}/${repo.repository}`;
    const res = await this.request(repo.registry, {
      method: 'HEAD', path: `/v2/${repo.repository}/manifests/${digest}`, headers: { accept: MANIFEST_ACCEPT }, scopes, what, ...(signal ? { signal } : {}),
    });
    await res.body.dump();
    const claimed = header(res.headers, 'docker-content-digest');
    return res.status === 200 && claimed === digest;
  }

  /**
   * GET a manifest or index by tag or digest, with every manifest type in Accept. Verifies the
   * bytes against the digest asked for (or the registry's Docker-Content-Digest for a tag).
   */
  async getManifest(repo: RepositoryRef, target: string, signal?: AbortSignal): Promise<{ bytes: Buffer; mediaType: string; digest: Digest }> {
    const what = `get manifest ${repo.registry}/${repo.repository}${target.includes(':') ? '@' : ':'}${target}`;
    // An answer that breaks off is asked for again (a GET may be repeated).
    const { res, bytes } = await retryCutShort(this.retryContext, what, async () => {
      const res = await this.request(repo.registry, {
        method: 'GET', path: `/v2/${repo.repository}/manifests/${target}`, headers: { accept: MANIFEST_ACCEPT }, scopes: pullScope(repo), what, ...(signal ? { signal } : {}),
      });
      if (res.status !== 200) {
        throw await this.httpError(repo.registry, 'GET', res, what, res.status === 404 ? 'check the repository name and tag; the registry has no such manifest' : undefined);
      }
      return { res, bytes: await readCapped(res, MAX_MANIFEST_BYTES, what) };
    }, this.signalFor(signal));
    const digest = sha256Digest(bytes);
    if (target.startsWith('sha256:') && digest !== target) throw new DigestMismatchError(`${what}: content`, target, digest);
    const claimed = header(res.headers, 'docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) throw new DigestMismatchError(`${what}: Docker-Content-Digest vs content`, claimed, digest);
    let mediaType = header(res.headers, 'content-type')?.split(';')[0]?.trim() ?? '';
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
      // The document's own mediaType is authoritative; some registries answer application/json.
      if (typeof doc.mediaType === 'string' && doc.mediaType) mediaType = doc.mediaType;
    } catch {
      throw new RegistryContentError(`${what}: the manifest is not JSON`);
    }
    return { bytes, mediaType, digest };
  }

  /**
   * PUT a manifest under a tag or digest with Content-Type = its media type; returns its digest.
   * The push is confirmed: the registry's Docker-Content-Digest must be ours, and when it sends
   * none, a GET of what it now serves under `target` must give our bytes back (a server that
   * answers 2xx to anything stored nothing, and says so here instead of in production).
   */
  async putManifest(repo: RepositoryRef, target: string, bytes: Uint8Array, mediaType: string, scopes = pushScope(repo), signal?: AbortSignal): Promise<Digest> {
    const digest = sha256Digest(bytes);
    const what = `put manifest ${digest} as ${repo.registry}/${repo.repository}${target.startsWith('sha256:') ? '@' : ':'}${target}`;
    const res = await this.request(repo.registry, {
      method: 'PUT', path: `/v2/${repo.repository}/manifests/${target}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) }, body: bytes, scopes, what, ...(signal ? { signal } : {}),
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      throw await this.httpError(repo.registry, 'PUT', res, what);
    }
    await res.body.dump();
    const claimed = header(res.headers, 'docker-content-digest');
    if (claimed?.startsWith('sha256:')) {
      if (claimed !== digest) throw new DigestMismatchError(`${what}: registry stored`, digest, claimed);
      return digest;
    }
    let served: Digest;
    try {
      served = (await this.getManifest(repo, target, signal)).digest;
    } catch (e) {
      if (signal?.aborted) throw e;
      const why = e instanceof DigestMismatchError ? 'gives other bytes than its digest' : e instanceof RegistryError ? e.message : String(e);
      throw new RegistryContentError(`${what}: the registry answered ${res.status} without Docker-Content-Digest, and reading the manifest back failed (${why}): it did not store it`);
    }
    if (served !== digest) {
      throw new RegistryContentError(`${what}: the registry answered ${res.status} without Docker-Content-Digest, and now serves ${served} under ${target}: it did not store our manifest`);
    }
    return digest;
  }

  /**
   * GET a blob as a stream (following a redirect to a storage host without our Authorization).
   * `signal` aborts the request and its body.
   */
  async getBlob(repo: RepositoryRef, digest: Digest, signal?: AbortSignal): Promise<HttpResponse> {
    const what = `get blob ${digest} from ${repo.registry}/${repo.repository}`;
    const res = await this.request(repo.registry, { method: 'GET', path: `/v2/${repo.repository}/blobs/${digest}`, scopes: pullScope(repo), what, ...(signal ? { signal } : {}) });
    if (res.status !== 200) throw await this.httpError(repo.registry, 'GET', res, what);
    return res;
  }

  /**
   * Every tag of a repository. Registries page long lists (the distribution spec's `n`/`last`,
   * Docker Hub and GHCR do it unasked): each page's `Link: <...>; rel="next"` is followed, on the
   * registry's own origin only, so a credential never goes elsewhere. `pageSize` asks for pages
   * of that many tags; without it the registry chooses.
   */
  async listTags(repo: RepositoryRef, options: { pageSize?: number } = {}): Promise<string[]> {
    const what = `list tags of ${repo.registry}/${repo.repository}`;
    const tags: string[] = [];
    const seen = new Set<string>();
    let next: URL | undefined;
    for (;;) {
      const page = next;
      const { res, body } = await retryCutShort(this.retryContext, what, async () => {
        const res = await this.request(repo.registry, {
          method: 'GET',
          ...(page ? { url: page } : { path: `/v2/${repo.repository}/tags/list`, query: options.pageSize ? { n: String(options.pageSize) } : undefined }),
          scopes: pullScope(repo),
          what,
        });
        if (res.status !== 200) throw await this.httpError(repo.registry, 'GET', res, what);
        return { res, body: await readCapped(res, MAX_TAG_PAGE_BYTES, what) };
      }, this.signal);
      let json: { tags?: unknown };
      try {
        json = JSON.parse(body.toString('utf8')) as { tags?: unknown };
      } catch {
        throw new RegistryContentError(`${what}: the tag list is not JSON`);
      }
      if (Array.isArray(json.tags)) tags.push(...json.tags.filter((t): t is string => typeof t === 'string'));
      const here = new URL(res.url);
      next = nextPage(header(res.headers, 'link'), here);
      if (!next) return tags;
      if (next.origin !== here.origin) throw new RegistryError('registry-http', `${what}: the next page is on another host (${next.origin}); not followed`);
      if (seen.has(next.href)) throw new RegistryError('registry-http', `${what}: the registry sent the page ${next.pathname}${next.search} twice; the list does not end`);
      seen.add(next.href);
    }
  }

  /**
   * Check that the registry accepts our credential (what `docker login` does): a GET of `/v2/`
   * with authorization; for a Bearer registry this fetches a token with no scope.
   */
  async checkLogin(registry: string): Promise<void> {
    const what = `log in to ${normaliseRegistry(registry)}`;
    const res = await this.request(registry, { method: 'GET', path: '/v2/', scopes: new ScopeSet(), what });
    await res.body.dump();
    if (res.status !== 200) throw await this.httpError(registry, 'GET', res, what);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/**
 * Why an answer to `GET /v2/` is not a registry's, or undefined when it is one: 200 (not an HTML
 * page) or 401, from the origin asked (a redirect elsewhere is a web server's, not a registry's).
 */
function notRegistryAnswer(res: HttpResponse, asked: URL): string | undefined {
  const said = `GET ${redact(asked)} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (res.url.origin !== asked.origin) return `GET ${redact(asked)} was redirected to ${redact(res.url)}, which answered ${res.status}`;
  if (res.status === 401) return undefined;
  if (res.status !== 200) return said;
  const type = header(res.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  return type === 'text/html' ? `${said} with an HTML page` : undefined;
}

/** A page of a tag list: 32 MiB holds hundreds of thousands of tags; a body past it is not a tag list. */
const MAX_TAG_PAGE_BYTES = 32 * 1024 * 1024;

/** The `rel="next"` target of a `Link` header (RFC 8288), resolved against the page's URL. */
export function nextPage(link: string | undefined, base: URL): URL | undefined {
  for (const part of link?.split(',') ?? []) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(^|;)\s*rel\s*=\s*"?next"?\s*(;|$)/i.test(m[2]!)) return new URL(m[1]!, base);
  }
  return undefined;
}

export function pullScope(repo: RepositoryRef): ScopeSet {
  return new ScopeSet([ScopeSet.repository(repo.repository, 'pull')]);
}

export function pushScope(repo: RepositoryRef, mountFrom: Iterable<string> = []): ScopeSet {
  const s = new ScopeSet([ScopeSet.repository(repo.repository, 'pull', 'push')]);
  for (const from of mountFrom) s.add(ScopeSet.repository(from, 'pull'));
  return s;
}
