import { existsSync, readFileSync } from 'node:fs';

/**
 * The compiled builder's folder (dist/builder/), for files found at run time: the worker
 * scripts (build workers, the scan helper, the spec thread), the verify child, package.json. This module sits directly in builder/ on purpose:
 * the bundled CLI (scripts/bundle-cli.mjs) writes its entry and chunks flat into dist/builder/
 * too, so `import.meta.url` names the same folder whether this code runs from tsc's output or
 * from the bundle. A `new URL('../x.js', import.meta.url)` in a subfolder would not.
 */
export const BUILDER_DIR = new URL('./', import.meta.url);

/** A file of the compiled builder, by its path under dist/builder/ (e.g. `workers/worker.js`). */
export function builderFile(path: string): URL {
  return new URL(path, BUILDER_DIR);
}

/** The build worker's bundle (workers/worker.js and what it imports); scripts/bundle-cli.mjs THREAD_BUNDLES names it. */
export const WORKER_BUNDLE = 'imgbuild-worker.js';
/** The split scan's helper thread's bundle (store/split-scan-thread.js); named there too. */
export const SCAN_HELPER_BUNDLE = 'imgbuild-scan-helper.js';
/** The thread a TS/JS spec is evaluated in (spec/spec-thread.js, with the library a spec imports); named there too. */
export const SPEC_THREAD_BUNDLE = 'imgbuild-spec-thread.js';

const scripts = new Map<string, URL>();

/**
 * A thread's script: its bundle, one file written by scripts/bundle-cli.mjs next to this module,
 * when the build made one, else tsc's file of it (a build without esbuild). A build worker
 * loaded as 54 ES modules took ~0.1–0.2 s (resolve, read, compile, link each) before its first job.
 */
export function threadScript(bundle: string, file: string): URL {
  let url = scripts.get(bundle);
  if (!url) {
    const bundled = builderFile(bundle);
    url = existsSync(bundled) ? bundled : builderFile(file);
    scripts.set(bundle, url);
  }
  return url;
}

let version: string | undefined;

/** imgbuild's version, from its package.json (read once, when first asked). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(builderFile('../../package.json'), 'utf8')) as { version: string }).version;
  return version;
}
