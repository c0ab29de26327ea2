import { resolve } from 'node:path';
import { parseSpecFile } from './parse-file.js';
import { resolveSpec, type SpecOverrides } from './resolve.js';
import type { ResolvedSpec } from './types.js';

/**
 * Load a spec file (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`, `.json`, `.yaml`, `.yml`),
 * validate it and apply every default. Relative paths in the spec are relative to its directory.
 * Throws SpecError (a SpecValidationError listing every problem when the spec does not validate).
 */
export async function loadSpec(file: string, env: NodeJS.ProcessEnv = process.env, overrides: SpecOverrides = {}): Promise<ResolvedSpec> {
  const absolute = resolve(file);
  const parsed = await parseSpecFile(absolute, env);
  return resolveSpec(parsed.value, { file: absolute, env, overrides, lineOf: parsed.lineOf });
}
