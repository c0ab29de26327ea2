/**
 * Errors of the registry client. Every one has a stable `code` (for scripts and the CLI's
 * `error[<code>]:` line), a message naming the registry, repository, request or file at fault,
 * and sometimes a `hint` saying what to do. No message ever contains a secret: credentials are
 * named by their source ("from /root/.docker/config.json for ghcr.io"), never by their value.
 */
export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A reference string that is not a valid image reference. */
export class InvalidReferenceError extends RegistryError {
  override name = 'InvalidReferenceError';
  /** `reference` is kept as given; the message shows it with any user info masked (shownReference). */
  constructor(readonly reference: string, reason: string, hint = 'a reference looks like [host[:port]/]name[:tag][@sha256:<64 hex>], e.g. ghcr.io/org/app:1.0') {
    super('reference', `invalid image reference ${JSON.stringify(shownReference(reference))}: ${reason}`, hint);
  }
}

/**
 * Where the user info of a URL-like reference ends (the `@` of `user:password@host/repo`), or -1.
 * A reference's own `@` comes before its digest, which holds no `/`: an `@` with a `/` after it
 * is user info's (the last such one: a password may hold an `@`).
 */
export function userinfoEnd(text: string): number {
  const slash = text.lastIndexOf('/');
  return slash < 0 ? -1 : text.lastIndexOf('@', slash);
}

/** A reference as messages show it: user info put in it (`user:password@`, a token) masked as `***@`; anything else as it is. */
export function shownReference(text: string): string {
  const end = userinfoEnd(text);
  if (end < 0) return text;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? '';
  return `${scheme}***${text.slice(end)}`;
}

/** Credentials that cannot be read: a broken config.json, a failing credential helper. */
export class CredentialError extends RegistryError {
  override name = 'CredentialError';
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super('credentials', message, hint, options);
  }
}

/** The registry (or its token service) refused us: 401/403, or a token request that failed. */
export class RegistryAuthError extends RegistryError {
  override name = 'RegistryAuthError';
  constructor(
    message: string,
    readonly registry: string,
    readonly status: number | undefined,
    /** Where the credential came from ("anonymous" when there was none). */
    readonly credentialSource: string,
    /** The scopes asked for, e.g. `repository:org/app:pull,push`. */
    readonly scopes: readonly string[],
    hint?: string,
  ) {
    super('auth', message, hint);
  }
}

/** The TLS handshake failed (unknown CA, wrong host name, expired, not TLS at all). */
export class RegistryTlsError extends RegistryError {
  override name = 'RegistryTlsError';
  constructor(readonly host: string, detail: string, options?: { cause?: unknown; notTls?: boolean }) {
    super('tls', options?.notTls ? `${host} did not answer in TLS (is this a registry's port, or one serving plain HTTP?): ${detail}` : `TLS error talking to ${host}: ${detail}`,
      options?.notTls
        ? `check the port in the reference; a registry serving plain HTTP must be named in insecureRegistries (imgbuild --insecure-registry ${host})`
        : `if ${host} uses a private CA, pass its certificate (the ca option; imgbuild --ca-file <pem>); ` +
          `to skip verification for this host only, name it in insecureRegistries (imgbuild --insecure-registry ${host})`,
      options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * The connection failed (refused, reset, timed out) after the retries we allow, or the host name
 * does not resolve (`ENOTFOUND` at once; `EAI_AGAIN` after the retries). `connected`: the host
 * answered, and the answer broke off (ResponseCutShortError); the message then does not say
 * "cannot reach".
 */
export class RegistryNetworkError extends RegistryError {
  override name = 'RegistryNetworkError';
  constructor(readonly host: string, what: string, detail: string, options?: { cause?: unknown; hint?: string; connected?: boolean }) {
    super('network', options?.connected ? `${what}: ${detail}` : `${what}: cannot reach ${host}: ${detail}`, options?.hint, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * The body of an answer broke off (the connection closed or reset before its end, or stopped
 * moving for the idle timeout). A request that may be repeated (GET, HEAD) is tried again.
 */
export class ResponseCutShortError extends RegistryNetworkError {
  override name = 'ResponseCutShortError';
  constructor(host: string, readonly what: string, readonly detail: string, readonly options?: { cause?: unknown; hint?: string }) {
    super(host, what, detail, {
      ...options, connected: true,
      hint: options?.hint ?? 'the registry (or a proxy before it) cut the answer short; try again, and if it keeps happening, check the registry\'s logs',
    });
  }

  /** The same error, saying how many attempts were made. */
  afterAttempts(n: number): ResponseCutShortError {
    return new ResponseCutShortError(this.host, this.what, `${this.detail} (${n} attempts)`, this.options);
  }
}

/**
 * The server at a registry's address does not speak HTTP/1.1 (an SSH or SMTP banner, HTTP/2
 * only, binary), or broke its framing (a bad header, a bad chunk size). Never retried.
 */
export class RegistryProtocolError extends RegistryError {
  override name = 'RegistryProtocolError';
  constructor(readonly host: string, what: string, detail: string, options?: { cause?: unknown; notHttp?: boolean }) {
    super('protocol',
      options?.notHttp ? `${what}: ${host} did not answer in HTTP (is this a registry's port?)${detail ? `: ${detail}` : ''}` : `${what}: ${host} sent a malformed HTTP answer: ${detail}`,
      options?.notHttp ? 'check the host and port you named: what answers there is not an HTTP server' : 'the registry or a proxy before it broke HTTP/1.1; check what answers on that address',
      options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** Something answers HTTP at a registry's address, but `/v2/` does not answer as an OCI registry's does (200 or 401). */
export class NotARegistryError extends RegistryError {
  override name = 'NotARegistryError';
  constructor(readonly host: string, what: string, detail: string) {
    super('not-registry', `${what}: not an OCI registry: ${detail}`,
      'check the host and port: an OCI registry answers GET /v2/ with 200 or 401 (distribution spec)');
  }
}

/** A registry answered with an unexpected HTTP status. `errors` holds the registry's own error codes. */
export class RegistryHttpError extends RegistryError {
  override name = 'RegistryHttpError';
  constructor(
    readonly registry: string,
    readonly method: string,
    /** The request path, without its query (upload URLs may carry signed state). */
    readonly path: string,
    readonly status: number,
    readonly errors: readonly { code?: string; message?: string; detail?: unknown }[],
    what: string,
    hint?: string,
    /** The reason phrase of the status line (`Request Entity Too Large`), said when the registry gave no error of its own. */
    readonly statusText?: string,
  ) {
    // The OCI `detail` often says what is wrong (which blob is unknown, which limit was hit).
    const detail = errors.length
      ? errors.map((e) => [e.code, e.message, e.detail === undefined ? undefined : typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)].filter(Boolean).join(': ')).join('; ')
      : statusText || 'no error detail';
    super('registry-http', `${what}: ${method} ${registry}${path} answered ${status} (${detail})`, hint);
  }
}

/** Content whose digest or size is not the one announced. */
export class DigestMismatchError extends RegistryError {
  override name = 'DigestMismatchError';
  constructor(what: string, readonly expected: string, readonly actual: string) {
    super('digest', `${what}: expected ${expected}, got ${actual}`);
  }
}

/** A manifest over the 4 MiB that registries are required to accept. */
export class ManifestTooLargeError extends RegistryError {
  override name = 'ManifestTooLargeError';
  constructor(readonly size: number, readonly limit: number) {
    super('manifest-too-large', `manifest is ${size} bytes, over the ${limit}-byte limit registries must accept; not sent`,
      'split the image into fewer layers or move annotations out of the manifest');
  }
}

/** An index with no manifest for the wanted platform. */
export class PlatformNotFoundError extends RegistryError {
  override name = 'PlatformNotFoundError';
  constructor(reference: string, wanted: string, available: readonly string[]) {
    super('platform', `${reference} has no image for ${wanted}; it has ${available.join(', ') || 'none'}`);
  }
}

/** A document that is not what the registry said it was (bad JSON, wrong schema). */
export class RegistryContentError extends RegistryError {
  override name = 'RegistryContentError';
  constructor(message: string) {
    super('registry-content', message);
  }
}
