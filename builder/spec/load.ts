import { resolve } from 'node:path';
import { parseSpecFile } from './parse-file.js';
import { resolveSpec, type SpecOverrides } from './resolve.js';
import type { ResolvedSpec } from './types.js';

/**
 * Load a spec file (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`, `.json`, `.yaml`, `.yml`),
 * validate it and apply every default. Relative paths in the spec are relative to its directory.
 * Throws SpecError (a SpecValidationError listing every problem when the spec does not validate).
 */
export async function loadSpec(file: string, options: LoadSpecOptions = {}): Promise<ResolvedSpec> {
  const absolute = resolve(file);
  const env = options.env ?? {};
  const parsed = await parseSpecFile(absolute, env, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  return resolveSpec(parsed.value, { file: absolute, env, overrides: options.overrides ?? {}, lineOf: parsed.lineOf, ...(options.now ? { now: options.now } : {}) });
}

export interface LoadSpecOptions {
  /** The environment the spec sees: a TS/JS spec's `process.env`, and SOURCE_DATE_EPOCH. Default: empty. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Flags that override the spec's store fields. */
  overrides?: SpecOverrides;
  /** "Now", for `created: "now"`. Default: the system clock. */
  now?: () => Date;
  /**
   * A TS/JS spec must finish loading within this many milliseconds, or the load fails (one that
   * never yields stops the process: spec/guard.ts). Default: no limit (the CLI sets one).
   */
  timeoutMs?: number;
}
