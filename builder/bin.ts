#!/usr/bin/env node
// The `imgbuild` executable (scripts/bundle-cli.mjs bundles it twice: dist/builder/imgbuild.cjs,
// the package's `bin`, and dist/builder/imgbuild.js, the same as an ES module for callers that
// name that file). Before the CLI loads:
//
// - `imgbuild --version` is answered here, from package.json, with no other module loaded:
//   loading the CLI (commander, every command's options) cost ~45 ms of CPU, more than Node's
//   own start.
// - Node's compile cache (Node ≥ 22.1) is turned on (startup.ts), so a later process skips most
//   parsing and compiling of the CLI's files.
// - `push` runs from a bundle of its own, dist/builder/imgbuild-cmd-push.cjs: the CLI and all
//   the command can load, in one CommonJS file, run with a V8 code cache in the cache dir
//   (code-cache.ts; Node 20 has no compile cache, and Node's are made before any function has
//   run). `build` has a bundle of its own too, an ES module (imgbuild-cmd-build.js). Without
//   them (a build without esbuild), cli.js as usual.
//
// No top-level await, so that this file bundles as CommonJS too: an ES module entry costs Node
// its ES module loader (~10 ms of CPU) before the first line runs.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runWithCodeCache } from './code-cache.js';
import { compileCacheDir, enableCompileCache, growYoungGenerationAtOnce, limitHeapGrowth, limitWasmTiering } from './startup.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // install-paths.ts's packageVersion, without its module: this file sits in dist/builder/ too.
  process.stdout.write(`${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`);
} else {
  enableCompileCache(process.env);
  // Before anything of the command is compiled (a flag set later would change V8's flag hash, by
  // which a code cache is accepted, partway through loading).
  if (args[0] === 'build') limitHeapGrowth();
  // Commands come first: the program itself has no option but --version and --help.
  // Literal names, one per command, so that test/architecture-boundaries can read them.
  if (args[0] === 'push' && runPushBundle()) {
    // Running: the bundle is the CLI.
  } else if (args[0] === 'build' && existsSync(new URL('./imgbuild-cmd-build.js', import.meta.url))) void import(new URL('./imgbuild-cmd-build.js', import.meta.url).href);
  else void import('./cli.js');
}

/**
 * Runs imgbuild-cmd-push.cjs with its code cache in <cache dir>/compile (none with Node's
 * NODE_DISABLE_COMPILE_CACHE set); false when there is no such bundle.
 */
function runPushBundle(): boolean {
  // The CLI sets these for push before the command runs; set before the bundle is compiled, the
  // cache is made and read under the same V8 flags (startup.ts).
  limitWasmTiering();
  growYoungGenerationAtOnce();
  const env = process.env;
  const cacheDir = env.NODE_DISABLE_COMPILE_CACHE ? undefined : compileCacheDir(env);
  const ran = runWithCodeCache(fileURLToPath(new URL('./imgbuild-cmd-push.cjs', import.meta.url)), {
    name: 'imgbuild-cmd-push',
    ...(cacheDir ? { cacheDir } : {}),
    ...(env.NODE_OPTIONS ? { nodeOptions: env.NODE_OPTIONS } : {}),
    // The cache is made at the end of the first successful run; a --help run compiles little of push.
    write: !args.includes('--help') && !args.includes('-h'),
  });
  return ran !== undefined;
}
