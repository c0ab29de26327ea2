import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { userinfoEnd } from '../../registry-client/errors.js';
import { ImgbuildError } from '../errors.js';

/**
 * Where an image is, as a user names it (skopeo's transports, and the bare forms):
 *
 * - `oci:<dir>[:<tag>]` — an OCI layout directory, the image tagged `<tag>` when it holds several;
 * - `oci-archive:<file>[:<tag>]` — the same as a tar;
 * - `docker-archive:<file>[:<name>:<tag>]` — `docker save` / dockerTools output, gzipped or not,
 *   the image named `<name>:<tag>` when it holds several;
 * - `docker://<reference>` — a registry image (`docker://alpine` is Docker Hub's);
 * - a bare path — an existing file or directory, its kind told apart by its content;
 * - a bare reference with a registry host — `ghcr.io/acme/app:1`, `localhost:5000/app@sha256:…`.
 */
export type ImageRef =
  | { transport: 'oci'; path: string; tag?: string }
  | { transport: 'oci-archive'; path: string; tag?: string }
  | { transport: 'docker-archive'; path: string; name?: string }
  | { transport: 'local'; path: string }
  | { transport: 'docker'; reference: string };

export type LocalTransport = 'oci' | 'oci-archive' | 'docker-archive';

export interface ParseImageRefOptions {
  /** Relative paths are relative to this directory (a spec's directory for `fromImage`). Default: the process's cwd. */
  cwd?: string;
  /** What the argument is, for messages: `fromImage`, `--previous`. */
  what?: string;
}

const PREFIXES = ['oci:', 'oci-archive:', 'docker-archive:'] as const;

export const IMAGE_REF_HINT =
  'name an image as oci:<dir>[:tag], oci-archive:<file>[:tag], docker-archive:<file>[:name:tag], docker://<registry>/<repo>[:tag|@digest], or an existing path';

/** Parse an image argument. A local path must exist (so a typo says "no such file", not "invalid registry host"). */
export function parseImageRef(arg: string, options: ParseImageRefOptions = {}): ImageRef {
  const shown = options.what ? `${options.what} ${arg}` : arg;
  if (arg.startsWith('docker://')) {
    const reference = arg.slice('docker://'.length);
    if (!reference) throw new ImgbuildError('image-ref', `${shown}: no reference after docker://`, IMAGE_REF_HINT);
    return { transport: 'docker', reference };
  }
  const at = (p: string) => (isAbsolute(p) ? p : resolve(options.cwd ?? '.', p));
  for (const prefix of PREFIXES) {
    if (!arg.startsWith(prefix)) continue;
    const transport = prefix.slice(0, -1) as LocalTransport;
    const rest = arg.slice(prefix.length);
    const split = splitExisting(rest, at);
    if (!split) throw new ImgbuildError('image-ref', `${shown}: no such file or directory`, IMAGE_REF_HINT);
    const { path, suffix } = split;
    if (transport === 'docker-archive') return suffix ? { transport, path, name: suffix } : { transport, path };
    if (suffix && !/^[\w][\w.-]{0,127}$/.test(suffix)) throw new ImgbuildError('image-ref', `${shown}: ${JSON.stringify(suffix)} is not a tag`, IMAGE_REF_HINT);
    return suffix ? { transport, path, tag: suffix } : { transport, path };
  }
  if (exists(at(arg))) return { transport: 'local', path: at(arg) };
  if (looksLikeRegistryReference(arg)) return { transport: 'docker', reference: arg };
  // `user:password@host/repo:tag`: a registry reference with credentials in front. Read as one,
  // it is refused as one (user info has no place in it, and is masked in the message) rather
  // than as a missing file, whose message and hint would print the password.
  const userinfo = userinfoEnd(arg);
  if (userinfo > 0 && looksLikeRegistryReference(arg.slice(userinfo + 1))) return { transport: 'docker', reference: arg };
  const pathLike = /^[./~]/.test(arg);
  throw new ImgbuildError('image-ref', `${shown}: no such file or directory`, pathLike ? IMAGE_REF_HINT : `for a registry image write docker://${arg}; ${IMAGE_REF_HINT}`);
}

/** The image argument as the user would write it again (`oci:/abs/dir:tag`). */
export function formatImageRef(ref: ImageRef): string {
  switch (ref.transport) {
    case 'docker':
      return `docker://${ref.reference}`;
    case 'local':
      return ref.path;
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.name ? `:${ref.name}` : ''}`;
    default:
      return `${ref.transport}:${ref.path}${ref.tag ? `:${ref.tag}` : ''}`;
  }
}

/** `rest` as an existing path, or an existing path followed by `:<suffix>` (the shortest such path). */
function splitExisting(rest: string, at: (p: string) => string): { path: string; suffix?: string } | undefined {
  if (rest && exists(at(rest))) return { path: at(rest) };
  for (let i = rest.indexOf(':'); i > 0; i = rest.indexOf(':', i + 1)) {
    const head = rest.slice(0, i);
    if (exists(at(head))) return { path: at(head), suffix: rest.slice(i + 1) };
  }
  return undefined;
}

function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

/** `host[:port]/repo[:tag][@sha256:…]` whose first component is a host (has a dot or a port, or is localhost). */
export function looksLikeRegistryReference(name: string): boolean {
  const label = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
  const re = new RegExp(`^${label}(?:\\.${label})*(?::\\d+)?/[a-z0-9]+(?:[._/-][a-z0-9]+|__[a-z0-9]+)*(?::[\\w][\\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`);
  if (!re.test(name)) return false;
  const host = name.split('/')[0]!;
  return host.includes('.') || host.includes(':') || host === 'localhost';
}
