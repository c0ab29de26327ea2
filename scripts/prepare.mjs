#!/usr/bin/env node
// `npm run prepare`: compile what the package ships (tsconfig.build.json: builder/, layering/,
// registry-client/, oci/) into dist/, and bundle the CLI. npm runs it on `npm ci` and `npm
// install` in a checkout, on `npm pack` and `npm publish`, and when it installs imgbuild from git
// — which is why this is a script and not a bare `tsc`:
//
// npm's documented rule for a git dependency with a prepare script is "install its
// devDependencies, run prepare, pack". Under `npm install -g` it does not hold: the nested
// `npm install` npm runs in the clone inherits `--global` and installs no devDependencies, so
// `tsc` is not there (npm/cli#8440). When TypeScript cannot be found here, this script installs
// the devDependencies itself, into this directory, from package-lock.json (`npm install` with the lock file, so the
// versions are the locked ones and an --offline install takes them from npm's cache), then
// compiles. In a checkout where `npm ci` already ran, it only compiles.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

function findTsc() {
  try {
    return require.resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

let tsc = findTsc();
if (!tsc) {
  process.stderr.write('imgbuild prepare: TypeScript is not installed here (npm installs no devDependencies for a global install from git, npm/cli#8440); installing the locked devDependencies into this directory\n');
  // This directory's own install, whatever the enclosing npm command was (-g, --prefix, --omit=dev,
  // --allow-scripts: npm ≥ 11.19 refuses that flag in a project-scoped install, EALLOWSCRIPTS, and
  // this install runs no scripts anyway).
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (/^npm_config_(global|location|prefix|omit|include|only|production|allow_scripts\w*)$/i.test(key)) delete env[key];
  }
  // `install`, not `ci`: ci first deletes node_modules, which the npm that runs this prepare may
  // still be writing into (seen as ENOTEMPTY races in git installs); install adds what is missing,
  // at the versions package-lock.json pins.
  const npmArgs = existsSync(join(root, 'package-lock.json')) ? ['install', '--no-save'] : ['install', '--no-save', '--no-package-lock'];
  npmArgs.push('--include=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--global=false', '--location=project', `--prefix=${root}`);
  // The npm running this script (npm_execpath), else the one on PATH.
  const npmCli = process.env.npm_execpath;
  if (npmCli && /[\\/]npm-cli\.[cm]?js$/.test(npmCli)) execFileSync(process.execPath, [npmCli, ...npmArgs], { cwd: root, env, stdio: ['ignore', 2, 2] });
  else execFileSync('npm', npmArgs, { cwd: root, env, stdio: ['ignore', 2, 2] });
  tsc = findTsc();
  if (!tsc) {
    process.stderr.write('imgbuild prepare: TypeScript is still not installed; run `npm ci` here, then `npm run prepare`\n');
    process.exit(1);
  }
}
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 2, 2] });
// The CLI's bundle (dist/builder/imgbuild.js, the package's bin): scripts/bundle-cli.mjs.
execFileSync(process.execPath, [join(root, 'scripts', 'bundle-cli.mjs')], { cwd: root, stdio: ['ignore', 2, 2] });
