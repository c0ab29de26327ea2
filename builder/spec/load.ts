import { resolve } from 'node:path';
import { parseSpecFile } from './parse-file.js';
import { resolveSpec, type SpecOverrides } from './resolve.js';
import type { ResolvedSpec } from './types.js';

/**
 * Load a spec file (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`, `.json`, `.yaml`, `.yml`),
 * validate it and apply every default. Relative paths in the spec are relative to its directory.
 * Throws SpecError (a SpecValidationError listing every problem when the spec does not validate).
 *
 * A TS/JS spec is code: it is evaluated in a worker thread of its own, with `env` as its whole
 * `process.env`; its `process.exit()`, what it throws from a timer and the rejections it leaves
 * unhandled fail the load and stay in that thread (the caller's `process.exit`, listeners and
 * environment are never touched). Its value comes back as data (structured clone): a function, a
 * symbol or an unawaited promise in it is a SpecError naming the field.
 */
export async function loadSpec(file: string, options: LoadSpecOptions = {}): Promise<ResolvedSpec> {
  const absolute = resolve(file);
  const env = options.env ?? {};
  const parsed = await parseSpecFile(absolute, env, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  return resolveSpec(parsed.value, { file: absolute, env, overrides: options.overrides ?? {}, lineOf: parsed.lineOf, ...(options.now ? { now: options.now } : {}) });
}

export interface LoadSpecOptions {
  /**
   * The environment the spec sees: a TS/JS spec's whole `process.env` (and its function's
   * `ctx.env`), and SOURCE_DATE_EPOCH. Nothing else of the caller's environment reaches the spec
   * (the CLI passes its own `process.env`). Default: empty.
   */
  env?: Readonly<Record<string, string | undefined>>;
  /** Flags that override the spec's store fields. */
  overrides?: SpecOverrides;
  /** "Now", for `created: "now"`. Default: the system clock. */
  now?: () => Date;
  /**
   * A TS/JS spec must finish loading within this many milliseconds, or the load fails with a
   * SpecError (`SpecTimeoutError`): the spec's thread is terminated, one in an endless loop too;
   * the caller's process is not touched (spec/guard.ts). Default: no limit (the CLI sets one).
   */
  timeoutMs?: number;
}
