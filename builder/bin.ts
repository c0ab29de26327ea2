#!/usr/bin/env node
// The `imgbuild` executable (the bundle's entry, scripts/bundle-cli.mjs). Before the CLI loads:
//
// - `imgbuild --version` is answered here, from package.json, with no other module loaded:
//   loading the CLI (commander, every command's options) cost ~45 ms of CPU, more than Node's
//   own start.
// - Node's compile cache (Node ≥ 22.1) is turned on (startup.ts), so a later process skips most
//   parsing and compiling of the CLI's files.
// - A command with a bundle of its own (push, build: scripts/bundle-cli.mjs OWN_BUNDLES) loads the CLI
//   from that one file instead of from the shared chunks. Without it (a build without esbuild),
//   cli.js as usual.
import { existsSync, readFileSync } from 'node:fs';

const OWN_BUNDLE = new Set(['push', 'build']);

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // install-paths.ts's packageVersion, without its module: this file sits in dist/builder/ too.
  process.stdout.write(`${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`);
} else {
  (await import('./startup.js')).enableCompileCache(process.env);
  // Commands come first: the program itself has no option but --version and --help.
  const own = args[0] !== undefined && OWN_BUNDLE.has(args[0]) ? new URL(`./imgbuild-cmd-${args[0]}.js`, import.meta.url) : undefined;
  if (own && existsSync(own)) await import(own.href);
  else await import('./cli.js');
}
