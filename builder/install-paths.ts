import { readFileSync } from 'node:fs';

/**
 * The compiled builder's folder (dist/builder/), for files found at run time: the worker
 * script, the verify child, package.json. This module sits directly in builder/ on purpose:
 * the bundled CLI (scripts/bundle-cli.mjs) writes its entry and chunks flat into dist/builder/
 * too, so `import.meta.url` names the same folder whether this code runs from tsc's output or
 * from the bundle. A `new URL('../x.js', import.meta.url)` in a subfolder would not.
 */
export const BUILDER_DIR = new URL('./', import.meta.url);

/** A file of the compiled builder, by its path under dist/builder/ (e.g. `workers/worker.js`). */
export function builderFile(path: string): URL {
  return new URL(path, BUILDER_DIR);
}

let version: string | undefined;

/** imgbuild's version, from its package.json (read once, when first asked). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', BUILDER_DIR), 'utf8')) as { version: string }).version;
  return version;
}
