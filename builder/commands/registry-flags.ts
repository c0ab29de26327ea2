import { readFile } from 'node:fs/promises';
import type { RegistryClient } from '../../registry-client/index.js';
import { ImgbuildError } from '../errors.js';
import { parseSize } from '../unit-sum.js';

/** CLI flags shared by every command that talks to a registry. */
export interface RegistryFlags {
  insecureRegistry?: string[];
  caFile?: string[];
  /** `user:password` for the registry the command targets. */
  creds?: string;
  chunkSize?: string;
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

/**
 * A client configured from the flags; `credsRegistry` is the registry `--creds` applies to.
 * Loaded (with undici) only when a command reaches a registry.
 */
export async function registryClient(flags: RegistryFlags, credsRegistry?: string): Promise<RegistryClient> {
  const { RegistryClient, defaultCredentialProvider } = await import('../../registry-client/index.js');
  const ca = await Promise.all((flags.caFile ?? []).map((f) => readFile(f)));
  return new RegistryClient({
    insecureRegistries: insecureRegistries(flags),
    ca: ca.length > 0 ? ca : undefined,
    credentials: defaultCredentialProvider({ explicit: flags.creds && credsRegistry ? { [credsRegistry]: flags.creds } : undefined }),
  });
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
 * the HTTP client) and closed at the end.
 */
export function lazyClient(flags: RegistryFlags, credsRegistry?: string): { get: () => Promise<RegistryClient>; close: () => Promise<void> } {
  let client: Promise<RegistryClient> | undefined;
  return {
    get: () => (client ??= registryClient(flags, credsRegistry)),
    close: async () => {
      if (client) await (await client).close();
    },
  };
}
