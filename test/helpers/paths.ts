import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/** The repository root. Tests run compiled, from dist/test/helpers (or another out dir at the same depth). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The CLI entry point compiled next to this file: the package's bin (scripts/bundle-cli.mjs). */
export const cliPath = resolve(dirname(fileURLToPath(import.meta.url)), '../../builder/imgbuild.cjs');
