import { InvalidReferenceError, userinfoEnd } from './errors.js';
import type { Digest } from '../oci/digest.js';

/** Docker Hub as references name it, and the host its API actually answers on. */
export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

// The grammar of docker/distribution's reference package, written out as regular expressions.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const COMPONENT_RE = new RegExp(`^${COMPONENT}$`);
const DOMAIN_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_LABEL}(?:\\.${DOMAIN_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const NAME_MAX = 255;

/**
 * A parsed, normalised image reference: `registry/repository[:tag][@digest]`.
 * `registry` is as the user names it (`docker.io`, `ghcr.io`, `localhost:5000`); `apiHost` is
 * where its API answers (`registry-1.docker.io` for Docker Hub).
 */
export class ImageReference {
  constructor(
    readonly registry: string,
    readonly repository: string,
    readonly tag?: string,
    readonly digest?: Digest,
  ) {}

  /** The host (and port) to send API requests to. */
  get apiHost(): string {
    return registryApiHost(this.registry);
  }

  /** What a manifest URL names: the digest when there is one (it pins content), else the tag. */
  get target(): string {
    return this.digest ?? this.tag ?? 'latest';
  }

  /** `registry/repository`, the name without tag or digest. */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  withTag(tag: string): ImageReference {
    if (!TAG_RE.test(tag)) throw new InvalidReferenceError(`${this.name}:${tag}`, `invalid tag ${JSON.stringify(tag)}`);
    return new ImageReference(this.registry, this.repository, tag, undefined);
  }

  withDigest(digest: Digest): ImageReference {
    return new ImageReference(this.registry, this.repository, this.tag, digest);
  }

  /** The fully qualified form: `docker.io/library/alpine:latest`, `ghcr.io/o/a:1@sha256:...`. */
  toString(): string {
    return `${this.name}${this.tag ? `:${this.tag}` : ''}${this.digest ? `@${this.digest}` : ''}`;
  }
}

/** The host that serves a registry's API (Docker Hub's differs from its name). */
export function registryApiHost(registry: string): string {
  const r = normaliseRegistry(registry);
  return r === DOCKER_HUB ? DOCKER_HUB_API_HOST : r;
}

/**
 * A registry as written by a user or in config.json (`https://index.docker.io/v1/`,
 * `GHCR.io`, `localhost:5000/`) in the form references use (`docker.io`, `ghcr.io`, `localhost:5000`).
 */
export function normaliseRegistry(registry: string): string {
  let r = registry.trim().replace(/^[a-z]+:\/\//i, '');
  const slash = r.indexOf('/');
  if (slash >= 0) r = r.slice(0, slash);
  r = r.toLowerCase();
  if (r === 'index.docker.io' || r === 'registry-1.docker.io' || r === 'registry.hub.docker.com') return DOCKER_HUB;
  return r;
}

/**
 * Parse a reference the way Docker does. `alpine` → `docker.io/library/alpine:latest`;
 * `localhost:5000/x` keeps its host; `name@sha256:...` has no tag; `name:tag@sha256:...` has both
 * (the digest wins when fetching). A missing tag and digest means `:latest` unless
 * `defaultTag` is `null`.
 */
export function parseReference(input: string, options: { defaultTag?: string | null } = {}): ImageReference {
  const s = input.trim();
  if (s === '') throw new InvalidReferenceError(input, 'empty reference');
  if (/\s/.test(s)) throw new InvalidReferenceError(input, 'contains white space');
  if (userinfoEnd(s) >= 0) {
    throw new InvalidReferenceError(input, 'user info (user:password@) does not go in a reference', 'name the image as [host[:port]/]name[:tag], and give the credentials apart (imgbuild login <registry>, or --creds user:password)');
  }

  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(d)) throw new InvalidReferenceError(input, `invalid digest ${JSON.stringify(d)}`);
    if (!d.startsWith('sha256:')) throw new InvalidReferenceError(input, `unsupported digest algorithm ${JSON.stringify(d.split(':')[0])} (only sha256)`);
    if (!/^sha256:[a-f0-9]{64}$/.test(d)) throw new InvalidReferenceError(input, `a sha256 digest has 64 lowercase hex digits, got ${JSON.stringify(d)}`);
    digest = d as Digest;
  }

  // A tag is after the last ':' that comes after the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new InvalidReferenceError(input, `invalid tag ${JSON.stringify(tag)} (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')`);
  }

  // The first component is a registry when it looks like a host: has '.', ':', is localhost, or has upper case.
  let registry = DOCKER_HUB;
  let path = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash);
    if (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN_RE.test(first)) throw new InvalidReferenceError(input, `invalid registry host ${JSON.stringify(first)}`);
      registry = normaliseRegistry(first);
      path = rest.slice(firstSlash + 1);
    }
  }
  if (path === '') throw new InvalidReferenceError(input, 'missing repository name');
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;

  for (const component of path.split('/')) {
    if (component !== component.toLowerCase()) throw new InvalidReferenceError(input, 'repository name must be lowercase');
    if (!COMPONENT_RE.test(component)) {
      throw new InvalidReferenceError(input, `invalid repository name component ${JSON.stringify(component)} (lowercase letters and digits, separated by '.', '_', '__' or '-')`);
    }
  }
  if (`${registry}/${path}`.length > NAME_MAX) throw new InvalidReferenceError(input, `repository name longer than ${NAME_MAX} characters`);

  if (tag === undefined && digest === undefined && options.defaultTag !== null) tag = options.defaultTag ?? 'latest';
  return new ImageReference(registry, path, tag, digest);
}

/** Whether `host` is a registry host as references write it: `ghcr.io`, `localhost:5000`, `[::1]:5000`. */
export function isValidRegistryHost(host: string): boolean {
  return DOMAIN_RE.test(host);
}

/** Validate a bare repository name inside a registry (e.g. a mount's `from`). */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= NAME_MAX && name.split('/').every((c) => COMPONENT_RE.test(c));
}
