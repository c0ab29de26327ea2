#!/usr/bin/env node
// The `imgbuild` executable (the bundle's entry, scripts/bundle-cli.mjs). Before the CLI loads:
//
// - `imgbuild --version` is answered here, from package.json, with no other module loaded:
//   loading the CLI (commander, every command's options) cost ~45 ms of CPU, more than Node's
//   own start.
// - Node's compile cache (Node ≥ 22.1) is turned on (startup.ts), so a later process skips most
//   parsing and compiling of the CLI's files.
// - A command with a bundle of its own (push, build: scripts/bundle-cli.mjs OWN_BUNDLES) loads
//   the CLI from that one file instead of from the shared chunks. Without it (a build without esbuild),
//   cli.js as usual.
import { existsSync, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // install-paths.ts's packageVersion, without its module: this file sits in dist/builder/ too.
  process.stdout.write(`${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`);
} else {
  (await import('./startup.js')).enableCompileCache(process.env);
  // Commands come first: the program itself has no option but --version and --help.
  // Literal names, one per command, so that test/architecture-boundaries can read them.
  if (args[0] === 'push' && existsSync(new URL('./imgbuild-cmd-push.js', import.meta.url))) await import(new URL('./imgbuild-cmd-push.js', import.meta.url).href);
  else if (args[0] === 'build' && existsSync(new URL('./imgbuild-cmd-build.js', import.meta.url))) await import(new URL('./imgbuild-cmd-build.js', import.meta.url).href);
  else await import('./cli.js');
}
