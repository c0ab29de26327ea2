import { RegistryAuthError, RegistryContentError, RegistryError, RegistryNetworkError } from '../errors.js';
import { hostOf, readCapped, readErrorText, redact, type Transport } from '../transport.js';
import { resolveRetry, retryCutShort, withRetries, type RetryContext } from '../retry.js';
import { parseChallenges, type Challenge } from './challenge.js';
import { describeCredential, type Credential, type CredentialProvider } from './credentials.js';
import { ScopeSet } from './scope.js';

interface CachedToken {
  token: string;
  scopes: ScopeSet;
  expiresAt: number;
  lifetimeMs: number;
}

/**
 * A token is replaced this long before it expires, so a request never carries one that dies in
 * flight: a tenth of its lifetime, at most 10 s (a 5-minute token is used for 4 min 50 s, a
 * 10-second one for 9 s; a fixed 10 s margin made every token of 10 s or less useless at once).
 */
export function expiryMarginMs(lifetimeMs: number): number {
  return Math.min(10_000, lifetimeMs / 10);
}

export interface AuthenticatorOptions {
  /** How token requests are retried (and whom a wait is told): the client's own policy. */
  retry?: RetryContext;
  /** The hint for a registry that refused an anonymous request (see RegistryClientOptions.loginHint). */
  loginHint?: (registry: string) => string;
  /** Aborts token requests (their connections, their backoff waits): the client's own signal. */
  signal?: AbortSignal;
}

/**
 * Authorization for one registry. It learns the registry's scheme from a challenge (`/v2/`
 * ping or any 401), then:
 * - Basic: sends the credential on every request to the registry's origin;
 * - Bearer: asks the token endpoint (`realm`) for a token for the request's scopes (a push
 *   passes the same scopes — push+pull, plus pull on mount sources — to all its requests, so
 *   one token serves it), caches it until `expires_in` and reuses it for any request whose
 *   scopes it covers; on a 401 it asks again, adding the scope the registry's challenge names.
 * The credential is looked up once, lazily, and named only by its source in errors.
 */
export class Authenticator {
  private challenge: Challenge | null | undefined;
  private credential: Promise<Credential | undefined> | undefined;
  /** Scopes the registry named in 401 challenges: added to every later token request. */
  private readonly demanded = new ScopeSet();
  private tokens: CachedToken[] = [];
  private inflight = new Map<string, Promise<CachedToken>>();

  constructor(
    /** The registry as references name it (`docker.io`), for credentials and messages. */
    readonly registry: string,
    private readonly transport: Transport,
    private readonly credentials: CredentialProvider,
    private readonly now: () => number = Date.now,
    private readonly options: AuthenticatorOptions = {},
  ) {}

  /** Record what the registry answered to an unauthenticated `/v2/` (undefined header = open registry). */
  setChallengeFrom(wwwAuthenticate: string | string[] | undefined, status: number): void {
    if (status !== 401) {
      this.challenge = null;
      return;
    }
    this.challenge = pickChallenge(parseChallenges(wwwAuthenticate));
  }

  get knowsChallenge(): boolean {
    return this.challenge !== undefined;
  }

  getCredential(): Promise<Credential | undefined> {
    this.credential ??= this.credentials(this.registry);
    return this.credential;
  }

  /** The Authorization header for a request needing `scopes`, or undefined when the registry wants none. */
  async authorization(scopes: ScopeSet): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.basicHeader(scopes);
    if (ch.scheme === 'bearer') {
      const t = await this.token(ch, scopes);
      return `Bearer ${t.token}`;
    }
    return undefined;
  }

  /**
   * A request came back 401. Learn from its challenge (a Bearer challenge may name the scope it
   * wants, e.g. a mount's `from` repository) and drop cached tokens so the next `authorization`
   * fetches a fresh, wider one. Returns false when another try cannot help (Basic: the
   * credential was refused).
   */
  async onUnauthorized(wwwAuthenticate: string | string[] | undefined): Promise<boolean> {
    const ch = pickChallenge(parseChallenges(wwwAuthenticate));
    const first = this.challenge === undefined || this.challenge === null;
    if (ch) this.challenge = ch;
    if (!this.challenge) return false;
    if (this.challenge.scheme === 'basic') {
      // Worth one more try only if we had not sent anything yet.
      return first && !!(await this.getCredential());
    }
    if (ch?.params.scope) this.demanded.add(ch.params.scope);
    this.tokens = [];
    return true;
  }

  /** The error for a final 401/403: which credential, which scopes. */
  async refused(status: number, scopes: ScopeSet, what: string, registryErrors: string): Promise<RegistryAuthError> {
    const cred = await this.getCredential().catch(() => undefined);
    const scopeText = scopes.size ? scopes.toString() : 'registry access';
    const who = describeCredential(cred);
    const verb = status === 403 ? 'denied' : 'refused';
    return new RegistryAuthError(
      `${what}: ${this.registry} ${verb} ${scopeText} (HTTP ${status}${registryErrors ? `: ${registryErrors}` : ''}) using ${who}`,
      this.registry, status, cred?.source ?? 'anonymous', scopes.toArray(),
      cred ? `check that this credential may ${scopes.size ? 'do that' : 'log in'}, or log in again (imgbuild login ${this.registry})`
        : this.options.loginHint?.(this.registry) ?? `log in first (imgbuild login ${this.registry})`,
    );
  }

  private async basicHeader(scopes: ScopeSet): Promise<string | undefined> {
    const cred = await this.getCredential();
    if (!cred) return undefined;
    if (cred.kind !== 'basic') {
      throw new RegistryAuthError(`${this.registry} asks for Basic auth but the credential is an identity token (${cred.source})`,
        this.registry, undefined, cred.source, scopes.toArray());
    }
    return `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
  }

  private async token(ch: Challenge, scopes: ScopeSet): Promise<CachedToken> {
    const now = this.now();
    this.tokens = this.tokens.filter((t) => t.expiresAt - expiryMarginMs(t.lifetimeMs) > now);
    const hit = this.tokens.find((t) => t.scopes.covers(scopes));
    if (hit) return hit;
    const ask = new ScopeSet(scopes.toArray()).addAll(this.demanded);
    const key = ask.toString();
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(ch, ask).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const t = await p;
    if (!this.tokens.includes(t)) this.tokens.push(t);
    return t;
  }

  /**
   * The token request of the distribution token spec: GET `realm?service=..&scope=..` with Basic
   * credentials (or none, for anonymous pulls); an identity token is an OAuth2 refresh token,
   * exchanged by POST. Accepts `token` or `access_token`; `expires_in` defaults to 60 s.
   */
  private async fetchToken(ch: Challenge, scopes: ScopeSet): Promise<CachedToken> {
    const realm = ch.params.realm;
    const cred = await this.getCredential();
    const fail = (status: number | undefined, detail: string) =>
      new RegistryAuthError(
        `token request to ${realmText} for ${scopes.toString() || 'registry access'} failed: ${detail}; using ${describeCredential(cred)}`,
        this.registry, status, cred?.source ?? 'anonymous', scopes.toArray(),
        status === 401 || status === 403 ? `check the credential, or log in again (imgbuild login ${this.registry})` : undefined,
      );
    let realmUrl: URL;
    let realmText = JSON.stringify(realm ?? '');
    try {
      realmUrl = new URL(realm ?? '');
    } catch {
      throw fail(undefined, `the registry's Bearer challenge has no usable realm (${realmText})`);
    }
    realmText = redact(realmUrl);
    if (realmUrl.protocol !== 'https:' && !(realmUrl.protocol === 'http:' && this.transport.mayUsePlainHttp(hostOf(realmUrl)))) {
      // Credentials would travel in clear text to a host the user did not mark insecure (the loopback never leaves the machine).
      throw fail(undefined, `the token endpoint is not HTTPS and ${hostOf(realmUrl)} is neither an insecure registry nor on the loopback`);
    }
    const service = ch.params.service;
    const signal = this.options.signal;
    const send = () => {
      if (cred?.kind === 'identity-token') {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.token, client_id: 'imgbuild' });
        if (service) form.set('service', service);
        if (scopes.size) form.set('scope', scopes.toString());
        return this.transport.send({ method: 'POST', url: realmUrl, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(), ...(signal ? { signal } : {}) });
      }
      const url = new URL(realmUrl);
      if (service) url.searchParams.set('service', service);
      for (const s of scopes.toArray()) url.searchParams.append('scope', s);
      if (cred?.kind === 'basic') url.searchParams.set('account', cred.username);
      const authorization = cred?.kind === 'basic' ? `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}` : undefined;
      return this.transport.send({ method: 'GET', url, ...(authorization ? { authorization, authOrigin: url.origin } : {}), ...(signal ? { signal } : {}) });
    };
    // Retried like every other request (resets, timeouts, 429, 5xx): one 503 of a token service
    // must not fail a push that the registry itself would take. A token GET whose answer breaks
    // off is asked again (the POST of an identity token is not repeated).
    const retry = this.options.retry ?? { retry: resolveRetry() };
    const what = `token request to ${realmText}`;
    // What a server echoing its request could put in a message: never printed.
    const secrets = cred?.kind === 'basic' ? [cred.password, `${cred.username}:${cred.password}`] : cred ? [cred.token] : [];
    const fetchJson = async () => {
      let res;
      try {
        res = await withRetries(retry, what, realmUrl, true, send, signal);
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (e instanceof RegistryError) throw e;
        throw new RegistryNetworkError(hostOf(realmUrl), what, (e as Error).message, { cause: e });
      }
      if (res.status !== 200) {
        // The token service's own words (Docker Hub: {"details":"incorrect username or password"}), short, credentials scrubbed.
        const said = await readErrorText(res, secrets);
        const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
        throw fail(res.status, `${status}${said ? `: ${said}` : ''}${res.status >= 500 || res.status === 429 ? ` (after ${retry.retry.retries + 1} attempts)` : ''}`);
      }
      try {
        // Tokens are small; a token service sending megabytes is broken, and we do not buffer it.
        return JSON.parse((await readCapped(res, 1024 * 1024, what)).toString('utf8')) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (e instanceof RegistryContentError) throw fail(200, e.message);
        if (e instanceof RegistryError) throw e;
        throw fail(200, 'the answer is not JSON');
      }
    };
    const json = cred?.kind === 'identity-token' ? await fetchJson() : await retryCutShort(retry, what, fetchJson, signal);
    const token = typeof json.token === 'string' && json.token ? json.token : typeof json.access_token === 'string' ? json.access_token : '';
    if (!token) throw fail(200, 'the answer has neither "token" nor "access_token"');
    // It goes into an Authorization header: a token no header can carry is the service's fault, said as such.
    if (/[^\x21-\x7e]/.test(token)) throw fail(200, 'the token holds characters an HTTP header cannot carry (spaces, controls or non-ASCII)');
    const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    // Count from our own clock, not `issued_at`: the token server's clock may be off.
    return { token, scopes, expiresAt: this.now() + expiresIn * 1000, lifetimeMs: expiresIn * 1000 };
  }
}

/** Prefer Bearer over Basic when a registry offers both. */
function pickChallenge(cs: Challenge[]): Challenge | null {
  return cs.find((c) => c.scheme === 'bearer') ?? cs.find((c) => c.scheme === 'basic') ?? null;
}

