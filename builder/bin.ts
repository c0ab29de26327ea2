#!/usr/bin/env node
// The `imgbuild` executable (scripts/bundle-cli.mjs bundles it twice: dist/builder/imgbuild.cjs,
// the package's `bin`, and dist/builder/imgbuild.js, the same as an ES module for callers that
// name that file). Before the CLI loads:
//
// - `imgbuild --version` is answered here, from package.json, with no other module loaded:
//   loading the CLI (commander, every command's options) cost ~45 ms of CPU, more than Node's
//   own start. In imgbuild.cjs not even the built-ins the modules below import are loaded
//   (scripts/bundle-cli.mjs lazyBuiltins: each is loaded at its first use).
// - for `build`, the build's first worker thread is started (commands/early-worker.ts): its
//   start-up overlaps the loading of the command on the other core.
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
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runWithCodeCache } from './code-cache.js';
import { startEarlyBuildWorker } from './commands/early-worker.js';
import { compileCacheDir, enableCompileCache } from './startup.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // install-paths.ts's packageVersion, without its module: this file sits in dist/builder/ too.
  const line = `${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`;
  // Written to fd 1 directly: process.stdout, a file's or a pipe's, loads node:stream (~20
  // modules, ~2 ms of CPU). A pipe that is full and non-blocking is left to process.stdout.
  try {
    writeSync(1, line);
  } catch (err) {
    // A reader that went away (`| true`): exit as the CLI does (commands/stdout-errors.ts), quietly.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(141);
    process.stdout.on('error', () => process.exit(141)).write(line);
  }
} else {
  // First: its start-up then runs on another core while this thread loads the command.
  startEarlyBuildWorker(args, process.env);
  enableCompileCache(process.env);
  // build's V8 flag (startup.ts limitHeapGrowth) is set by the CLI's preAction hook, once the
  // command is loaded: set here, it made the early worker and every built-in loaded after it
  // compile from source (the flag changes V8's flag hash, by which Node's code caches are taken).
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
  // No V8 flag is set for push (only build sets one, startup.ts): one set at run time would cost every
  // built-in loaded after it Node's embedded code cache, and this bundle's cache its flag hash.
  const env = process.env;
  const cacheDir = env.NODE_DISABLE_COMPILE_CACHE ? undefined : compileCacheDir(env);
  const ran = runWithCodeCache(fileURLToPath(new URL('./imgbuild-cmd-push.cjs', import.meta.url)), {
    name: 'imgbuild-cmd-push',
    ...(cacheDir ? { cacheDir } : {}),
    ...(env.NODE_OPTIONS ? { nodeOptions: env.NODE_OPTIONS } : {}),
    // The cache is made at the end of the first successful run; a --help or --version run compiles
    // little of push (such a cache, once written, was used by every later push).
    write: !args.some((a) => a === '--help' || a === '-h' || a === '--version' || a === '-V'),
  });
  return ran !== undefined;
}
