import { Authenticator } from './auth/authenticator.js';
import { defaultCredentialProvider, type CredentialProvider } from './auth/credentials.js';
import { ScopeSet } from './auth/scope.js';
import {
  DigestMismatchError, RegistryContentError, RegistryError, RegistryHttpError, RegistryNetworkError, RegistryTlsError,
} from './errors.js';
import { normaliseRegistry, registryApiHost } from './reference.js';
import { backoffDelay, describeError, isCertificateError, isDnsError, isNetworkError, isRetriableStatus, parseRetryAfter, resolveRetry, sleep, type ResolvedRetry, type RetryOptions } from './retry.js';
import { header, readCapped, readRegistryErrors, Transport, type Body, type Headers, type HttpResponse, type TransportOptions } from './transport.js';
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
  /** Where credentials come from (default: `defaultCredentialProvider()` — Docker config, GITHUB_TOKEN). */
  credentials?: CredentialProvider;
  retry?: RetryOptions;
}

/** Registries must accept manifests up to 4 MiB; we never send or read more. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The Accept header of a manifest GET: every manifest type we read (Debian's registry 404s an OCI manifest otherwise). */
export const MANIFEST_ACCEPT = manifestMediaTypes.join(', ');

interface RegistryState {
  origin: Promise<string> | undefined;
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
}

/**
 * A client for the OCI distribution API of any number of registries. It holds one
 * Authenticator per registry (so tokens are shared by every request of a push) and one
 * Transport (connection pools). Higher-level operations are `pushImage` and `pullImage`.
 */
export class RegistryClient {
  readonly transport: Transport;
  readonly retry: ResolvedRetry;
  private readonly credentials: CredentialProvider;
  private readonly registries = new Map<string, RegistryState>();

  constructor(readonly options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.retry = resolveRetry(options.retry);
    this.credentials = options.credentials ?? defaultCredentialProvider();
  }

  private state(registry: string): RegistryState {
    const key = normaliseRegistry(registry);
    let s = this.registries.get(key);
    if (!s) {
      s = { origin: undefined, auth: new Authenticator(key, this.transport, this.credentials) };
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
   * `/v2/` once; the ping's 401 tells us the auth scheme before any real request.
   */
  origin(registry: string): Promise<string> {
    const s = this.state(registry);
    if (!s.origin) {
      s.origin = this.ping(registry, s.auth);
      s.origin.catch(() => (s.origin = undefined)); // a failed ping is tried again next time
    }
    return s.origin;
  }

  private async ping(registry: string, auth: Authenticator): Promise<string> {
    const host = registryApiHost(registry);
    const insecure = this.transport.isInsecure(host);
    const schemes = insecure || this.transport.mayUsePlainHttp(host) ? ['https', 'http'] : ['https'];
    let lastError: unknown;
    for (const scheme of schemes) {
      const origin = `${scheme}://${host}`;
      const last = scheme === schemes[schemes.length - 1];
      try {
        const res = await this.withRetries(`connect to ${host}`, host, last, () =>
          this.transport.send({ method: 'GET', url: new URL('/v2/', origin) }));
        await res.body.dump();
        auth.setChallengeFrom(res.headers['www-authenticate'], res.status);
        return origin;
      } catch (e) {
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

  /** Run `attempt` with retries on resets, 429 (Retry-After) and 5xx; network failures become RegistryNetworkError. */
  private async withRetries(what: string, host: string, retry: boolean, attempt: () => Promise<HttpResponse>): Promise<HttpResponse> {
    for (let n = 0; ; n++) {
      let res: HttpResponse;
      try {
        res = await attempt();
      } catch (e) {
        if (e instanceof RegistryError) throw e;
        const dns = isDnsError(e);
        // No such name (ENOTFOUND): another attempt gets the same answer. A name server that did
        // not answer (EAI_AGAIN) is retried like a reset.
        if (dns && (!isNetworkError(e) || !retry || n >= this.retry.retries)) {
          const detail = `the name ${hostName(host)} does not resolve (${describeError(e)})`;
          throw new RegistryNetworkError(host, what, detail, { cause: e, hint: `check the registry name in the reference, and this machine's DNS` });
        }
        if (!isNetworkError(e)) throw e;
        if (!retry || n >= this.retry.retries) throw new RegistryNetworkError(host, what, describeError(e), { cause: e });
        await sleep(backoffDelay(this.retry, n + 1));
        continue;
      }
      if (retry && isRetriableStatus(res.status) && n < this.retry.retries) {
        const wait = parseRetryAfter(res.headers['retry-after'], this.retry.maxRetryAfterMs) ?? backoffDelay(this.retry, n + 1);
        await res.body.dump();
        await sleep(wait);
        continue;
      }
      return res;
    }
  }

  /**
   * One API request with auth and retries: the Authorization header for `scopes`, one re-try
   * after a 401 with the wider scope its challenge names, then RegistryAuthError naming the
   * credential's source and the scope. Returns any other response for the caller to judge.
   */
  async request(registry: string, spec: RequestSpec): Promise<HttpResponse> {
    const origin = await this.origin(registry);
    const auth = this.state(registry).auth;
    const url = spec.url ? new URL(spec.url) : new URL(spec.path ?? '/v2/', origin);
    for (const [k, v] of Object.entries(spec.query ?? {})) url.searchParams.set(k, v);
    let reauthed = false;
    for (;;) {
      const res = await this.withRetries(spec.what, url.host, spec.retry ?? true, async () => {
        const authorization = await auth.authorization(spec.scopes);
        return this.transport.send({
          method: spec.method, url, ...(spec.headers ? { headers: spec.headers } : {}),
          ...(spec.body !== undefined ? { body: spec.body } : {}),
          ...(authorization ? { authorization, authOrigin: origin } : {}),
        });
      });
      if (res.status === 401 && !reauthed) {
        reauthed = true;
        await res.body.dump();
        if (await auth.onUnauthorized(res.headers['www-authenticate'])) continue;
        throw await auth.refused(401, spec.scopes, spec.what, '');
      }
      if (res.status === 401 || res.status === 403) {
        const errs = await readRegistryErrors(res);
        throw await auth.refused(res.status, spec.scopes, spec.what, errs.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; '));
      }
      return res;
    }
  }

  /** The error for an unexpected status (reads the registry's error body). */
  async httpError(registry: string, method: string, res: HttpResponse, what: string, hint?: string): Promise<RegistryHttpError> {
    const errors = await readRegistryErrors(res);
    return new RegistryHttpError(normaliseRegistry(registry), method, res.url.pathname, res.status, errors, what, hint);
  }

  /** Whether a blob exists in a repository (HEAD); its size when it does. */
  async blobExists(repo: RepositoryRef, digest: Digest, scopes = pullScope(repo)): Promise<{ exists: boolean; size?: number }> {
    const what = `check blob ${digest} in ${repo.registry}/${repo.repository}`;
    const res = await this.request(repo.registry, { method: 'HEAD', path: `/v2/${repo.repository}/blobs/${digest}`, scopes, what });
    await res.body.dump();
    if (res.status === 200) {
      const len = Number(header(res.headers, 'content-length'));
      return Number.isFinite(len) ? { exists: true, size: len } : { exists: true };
    }
    if (res.status === 404) return { exists: false };
    throw await this.httpError(repo.registry, 'HEAD', res, what);
  }

  /**
   * Whether a repository holds the manifest (or index) with this digest: a HEAD with every
   * manifest type in Accept. Only a 200 whose Docker-Content-Digest, when given, is that digest
   * says yes; any other answer (404, a registry that refuses HEAD here) says no.
   */
  async hasManifest(repo: RepositoryRef, digest: Digest, scopes = pullScope(repo)): Promise<boolean> {
    const what = `check manifest ${digest} in ${repo.registry}/${repo.repository}`;
    const res = await this.request(repo.registry, {
      method: 'HEAD', path: `/v2/${repo.repository}/manifests/${digest}`, headers: { accept: MANIFEST_ACCEPT }, scopes, what,
    });
    await res.body.dump();
    const claimed = header(res.headers, 'docker-content-digest');
    return res.status === 200 && (claimed === undefined || claimed === digest);
  }

  /**
   * GET a manifest or index by tag or digest, with every manifest type in Accept. Verifies the
   * bytes against the digest asked for (or the registry's Docker-Content-Digest for a tag).
   */
  async getManifest(repo: RepositoryRef, target: string): Promise<{ bytes: Buffer; mediaType: string; digest: Digest }> {
    const what = `get manifest ${repo.registry}/${repo.repository}${target.includes(':') ? '@' : ':'}${target}`;
    const res = await this.request(repo.registry, {
      method: 'GET', path: `/v2/${repo.repository}/manifests/${target}`, headers: { accept: MANIFEST_ACCEPT }, scopes: pullScope(repo), what,
    });
    if (res.status !== 200) {
      throw await this.httpError(repo.registry, 'GET', res, what, res.status === 404 ? 'check the repository name and tag; the registry has no such manifest' : undefined);
    }
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, what);
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

  /** PUT a manifest under a tag or digest with Content-Type = its media type; returns its digest. */
  async putManifest(repo: RepositoryRef, target: string, bytes: Uint8Array, mediaType: string, scopes = pushScope(repo)): Promise<Digest> {
    const digest = sha256Digest(bytes);
    const what = `put manifest ${digest} as ${repo.registry}/${repo.repository}${target.startsWith('sha256:') ? '@' : ':'}${target}`;
    const res = await this.request(repo.registry, {
      method: 'PUT', path: `/v2/${repo.repository}/manifests/${target}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.byteLength) }, body: bytes, scopes, what,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) {
      throw await this.httpError(repo.registry, 'PUT', res, what);
    }
    await res.body.dump();
    const claimed = header(res.headers, 'docker-content-digest');
    if (claimed?.startsWith('sha256:') && claimed !== digest) throw new DigestMismatchError(`${what}: registry stored`, digest, claimed);
    return digest;
  }

  /** GET a blob as a stream (following a redirect to a storage host without our Authorization). */
  async getBlob(repo: RepositoryRef, digest: Digest): Promise<HttpResponse> {
    const what = `get blob ${digest} from ${repo.registry}/${repo.repository}`;
    const res = await this.request(repo.registry, { method: 'GET', path: `/v2/${repo.repository}/blobs/${digest}`, scopes: pullScope(repo), what });
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
      const res = await this.request(repo.registry, {
        method: 'GET',
        ...(next ? { url: next } : { path: `/v2/${repo.repository}/tags/list`, query: options.pageSize ? { n: String(options.pageSize) } : undefined }),
        scopes: pullScope(repo),
        what,
      });
      if (res.status !== 200) throw await this.httpError(repo.registry, 'GET', res, what);
      const json = (await res.body.json()) as { tags?: unknown };
      if (Array.isArray(json.tags)) tags.push(...json.tags.filter((t): t is string => typeof t === 'string'));
      const page = new URL(res.url);
      next = nextPage(header(res.headers, 'link'), page);
      if (!next) return tags;
      if (next.origin !== page.origin) throw new RegistryError('registry-http', `${what}: the next page is on another host (${next.origin}); not followed`);
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

/** `host` of `host[:port]`, for messages. */
function hostName(host: string): string {
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
}

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
