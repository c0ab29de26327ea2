import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ResolvedSpec } from '../spec/types.js';
import { parseImageRef } from '../transports/image-ref.js';
import type { RegistryClient, TimeoutOptions } from '../../registry-client/index.js';
import { ImgbuildError } from '../errors.js';
import { parseSize, sumOfUnits } from '../unit-sum.js';

/** CLI flags shared by every command that talks to a registry. */
export interface RegistryFlags {
  insecureRegistry?: string[];
  caFile?: string[];
  /** `user:password` for the registry the command targets. */
  creds?: string;
  chunkSize?: string;
  connectTimeout?: string;
  responseTimeout?: string;
  idleTimeout?: string;
  blobTimeout?: string;
  minSpeed?: string;
}

/**
 * The timeout flags, their environment variables (read here, by the CLI: the library reads
 * none) and what each sets. Defaults: registry-client's DEFAULT_TIMEOUTS (docs/reliability.md).
 */
export const TIMEOUT_SETTINGS = [
  { flag: '--connect-timeout', key: 'connectTimeout', env: 'IMGBUILD_CONNECT_TIMEOUT', option: 'connectMs', kind: 'duration' },
  { flag: '--response-timeout', key: 'responseTimeout', env: 'IMGBUILD_RESPONSE_TIMEOUT', option: 'responseMs', kind: 'duration' },
  { flag: '--idle-timeout', key: 'idleTimeout', env: 'IMGBUILD_IDLE_TIMEOUT', option: 'idleMs', kind: 'duration' },
  { flag: '--blob-timeout', key: 'blobTimeout', env: 'IMGBUILD_BLOB_TIMEOUT', option: 'blobBaseMs', kind: 'duration' },
  { flag: '--min-speed', key: 'minSpeed', env: 'IMGBUILD_MIN_SPEED', option: 'blobMinBytesPerSecond', kind: 'size' },
] as const;

const DURATION_MS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3 };

/** `10s`, `1m30s`, `500ms`, `2h`: milliseconds (a unit is required: a bare number would surprise). */
export function parseDurationMs(text: string): number | undefined {
  const ms = sumOfUnits(text.trim(), DURATION_MS);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/** The timeouts the flags, then the environment, set (the rest: the library's defaults). */
export function timeoutOptions(flags: RegistryFlags, env: Readonly<Record<string, string | undefined>> = process.env): TimeoutOptions {
  const out: TimeoutOptions = {};
  for (const s of TIMEOUT_SETTINGS) {
    const fromFlag = flags[s.key];
    const text = fromFlag ?? env[s.env];
    if (text === undefined || text.trim() === '') continue;
    const value = s.kind === 'duration' ? parseDurationMs(text) : parseSize(text.replace(/\/s$/, ''));
    const where = fromFlag !== undefined ? s.flag : s.env;
    if (value === undefined || value <= 0) {
      throw new ImgbuildError('usage', `${where} ${JSON.stringify(text)} is not ${s.kind === 'duration' ? 'a duration' : 'a speed'}`,
        s.kind === 'duration' ? `e.g. ${s.flag} 30s (units: ms, s, m, h)` : `e.g. ${s.flag} 256KiB (bytes per second)`);
    }
    out[s.option] = value;
  }
  return out;
}

/**
 * What a binary cache (`--substituter`) takes of the timeout flags and variables: the response
 * and idle timeouts (a cache request is one GET, retried; the blob budget does not apply).
 * Unset: the binary cache's own defaults.
 */
export function storeFetchOptions(flags: RegistryFlags, env: Readonly<Record<string, string | undefined>> = process.env): { responseTimeoutMs?: number; idleTimeoutMs?: number } {
  // Only these two are read (and checked) here: a bad --min-speed stays the registry's to refuse.
  const t = timeoutOptions(
    { ...(flags.responseTimeout !== undefined ? { responseTimeout: flags.responseTimeout } : {}), ...(flags.idleTimeout !== undefined ? { idleTimeout: flags.idleTimeout } : {}) },
    { IMGBUILD_RESPONSE_TIMEOUT: env.IMGBUILD_RESPONSE_TIMEOUT, IMGBUILD_IDLE_TIMEOUT: env.IMGBUILD_IDLE_TIMEOUT },
  );
  return { ...(t.responseMs !== undefined ? { responseTimeoutMs: t.responseMs } : {}), ...(t.idleMs !== undefined ? { idleTimeoutMs: t.idleMs } : {}) };
}

/** The environment variable naming insecure registries for every command (comma-separated `host[:port]`). */
export const INSECURE_REGISTRIES_ENV = 'IMGBUILD_INSECURE_REGISTRIES';

/**
 * The registries a command may reach over plain HTTP or unverified TLS: `--insecure-registry`
 * (repeatable) and `IMGBUILD_INSECURE_REGISTRIES` (comma-separated; blanks ignored), both.
 * Registries on the loopback need neither (registry-client's `loopbackPlainHttp`).
 */
export function insecureRegistries(flags: Pick<RegistryFlags, 'insecureRegistry'>, env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  const fromEnv = (env[INSECURE_REGISTRIES_ENV] ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  return [...new Set([...(flags.insecureRegistry ?? []), ...fromEnv])];
}

/** A registry (`host[:port]`), or the reference of an image on it. */
export type CredsTarget = string | { reference: string } | undefined;

/** The registries `--creds` applies to: one, several, or (for build) found once the spec is read. */
export type CredsRegistries = string | readonly CredsTarget[] | (() => readonly CredsTarget[]) | undefined;

/**
 * A client configured from the flags and the environment (timeouts; retry notices on stderr);
 * `credsRegistry` names the registries `--creds` applies to (a function is asked when the
 * client is made). The hint of an anonymous refusal mentions `--creds` only for those.
 * The registry client is loaded only when a command reaches a registry.
 */
export async function registryClient(flags: RegistryFlags, credsRegistry?: CredsRegistries, signal?: AbortSignal): Promise<RegistryClient> {
  const timeouts = timeoutOptions(flags);
  const { RegistryClient, defaultCredentialProvider, normaliseRegistry, parseReference, formatRetryNotice } = await import('../../registry-client/index.js');
  const ca = await readCaFiles(flags.caFile);
  const named = typeof credsRegistry === 'function' ? credsRegistry() : typeof credsRegistry === 'string' ? [credsRegistry] : credsRegistry ?? [];
  const registryOf = (t: CredsTarget): string | undefined => {
    if (typeof t === 'string') return normaliseRegistry(t);
    if (!t) return undefined;
    try {
      return parseReference(t.reference).registry;
    } catch {
      return undefined;
    }
  };
  const applies = [...new Set(named.map(registryOf).filter((r): r is string => !!r))];
  const credsFor = flags.creds ? applies : [];
  return new RegistryClient({
    insecureRegistries: insecureRegistries(flags),
    ca: ca.length > 0 ? ca : undefined,
    credentials: defaultCredentialProvider({ explicit: credsFor.length ? Object.fromEntries(credsFor.map((r) => [r, flags.creds!])) : undefined }),
    timeouts,
    // Said while it waits, so a slow or failing registry is never silent (stderr: stdout is the result).
    onRetry: (n) => void process.stderr.write(`waiting: ${formatRetryNotice(n)}\n`),
    loginHint: (registry) => `log in first (imgbuild login ${registry})${applies.includes(normaliseRegistry(registry)) ? ' or pass --creds user:password' : ''}`,
    // The command's interrupt: every connection, answer and backoff of the client ends with it.
    ...(signal ? { signal } : {}),
  });
}

/**
 * The `--ca-file`s' bytes, each refused (a usage error) unless it holds PEM certificates: a file
 * of plain text or a private key was ignored by TLS, and showed later as a certificate error
 * whose hint asked for --ca-file.
 */
export async function readCaFiles(files: readonly string[] = []): Promise<Buffer[]> {
  const { caBundleProblem } = await import('../../registry-client/ca.js');
  return Promise.all(files.map(async (f) => {
    const bytes = await readFile(f);
    const problem = caBundleProblem(bytes);
    if (problem) throw new ImgbuildError('usage', `--ca-file ${f} ${problem}`, "give the registry's CA certificate in PEM (-----BEGIN CERTIFICATE-----)");
    return bytes;
  }));
}

/** `--chunk-size` in bytes (0: one PUT), or undefined for the registry's default. */
export function chunkSizeOf(flags: RegistryFlags): number | undefined {
  if (flags.chunkSize === undefined) return undefined;
  const size = parseSize(flags.chunkSize);
  if (size === undefined) throw new ImgbuildError('usage', `--chunk-size ${JSON.stringify(flags.chunkSize)} is not a size`, 'e.g. --chunk-size 4MiB, or 0 for one PUT per blob');
  return size;
}

/**
 * One registry client for a command, made on first use (a command on local images never loads
 * the HTTP client) and closed at the end. `signal`: the command's interrupt (interrupt.ts), given
 * to the client: every request, connection and backoff wait of it ends when it aborts.
 */
export function lazyClient(flags: RegistryFlags, credsRegistry?: CredsRegistries, signal?: AbortSignal): { get: () => Promise<RegistryClient>; close: () => Promise<void> } {
  let client: Promise<RegistryClient> | undefined;
  return {
    get: () => (client ??= registryClient(flags, credsRegistry, signal)),
    close: async () => {
      if (client) await (await client).close();
    },
  };
}

/** The registry image a spec's `fromImage` names (`docker://…`, or a bare `host/repo:tag`), for `--creds`; else undefined. */
export function fromImageReference(spec: Pick<ResolvedSpec, 'fromImage' | 'file'>): { reference: string } | undefined {
  if (!spec.fromImage) return undefined;
  try {
    const ref = parseImageRef(spec.fromImage, { cwd: dirname(spec.file) });
    return ref.transport === 'docker' ? { reference: ref.reference } : undefined;
  } catch {
    return undefined;
  }
}
