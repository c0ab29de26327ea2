#!/usr/bin/env node
// The `imgbuild` executable (the bundle's entry, scripts/bundle-cli.mjs). Before the CLI loads:
//
// - `imgbuild --version` is answered here, from package.json, with no other module loaded:
//   loading the CLI (commander, every command's options) cost ~45 ms of CPU, more than Node's
//   own start.
// - Node's compile cache (Node ≥ 22.1) is turned on (startup.ts), so a later process skips most
//   parsing and compiling of the CLI's files.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // install-paths.ts's packageVersion, without its module: this file sits in dist/builder/ too.
  process.stdout.write(`${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}\n`);
} else {
  (await import('./startup.js')).enableCompileCache(process.env);
  await import('./cli.js');
}
