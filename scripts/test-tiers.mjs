#!/usr/bin/env node
// The two tiers of the test suite, decided by a rule rather than a list:
//
//   tools — a test file that calls needTool(...) or toolFixture(...) (test/helpers/tools.ts), or
//           proxiedRegistryFixture(...) (test/helpers/registry.ts, a toolFixture of docker-registry):
//           it drives system tools (skopeo, docker-registry, nix, umoci, ...);
//   unit  — every other test file: it needs nothing but Node (with npm) and the commands of
//           Debian's Essential packages (coreutils, tar, gzip, bash, findutils, ...).
//
// A new test file lands in its tier by what it calls. A file misfiled by that rule fails loudly:
// the unit tier runs with IMGBUILD_TEST_TIER=unit (needTool then throws instead of skipping) and
// with a PATH holding only Node, npm and the Essential commands (`unit-path`), so a unit test that runs
// a system tool without asking for it fails with ENOENT. test/test-tiers.test.ts checks the rule.
//
//   node scripts/test-tiers.mjs list unit|tools|all   compiled test files (dist/test/...), one a line
//   node scripts/test-tiers.mjs unit-path <dir>       fills <dir> with links to Node, npm and the
//                                                      Essential commands; prints the PATH to use
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** What marks a test file as needing system tools. */
export const TOOLS_MARK = /\b(needTool|toolFixture|proxiedRegistryFixture)\s*\(/;

/** Every test source file (test/**\/*.test.ts, fixtures and helpers aside), sorted. */
export function testSources(dir = join(root, 'test')) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'fixtures' && entry.name !== 'helpers') out.push(...testSources(p));
    } else if (entry.name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

/** `unit` or `tools`, by the rule above. */
export function tierOf(sourceFile) {
  return TOOLS_MARK.test(readFileSync(sourceFile, 'utf8')) ? 'tools' : 'unit';
}

/** The compiled file node --test runs for a test source. */
export function compiledOf(sourceFile) {
  return join(root, 'dist', relative(root, sourceFile).replace(/\.ts$/, '.js'));
}

/** The executables of Debian's Essential packages, or undefined when dpkg cannot tell. */
function essentialCommands() {
  let packages;
  try {
    packages = execFileSync('dpkg-query', ['-W', '-f=${Package} ${Essential}\\n'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter((l) => l.endsWith(' yes'))
      .map((l) => l.split(' ')[0]);
  } catch {
    return undefined;
  }
  const files = execFileSync('dpkg', ['-L', ...packages], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 }).split('\n');
  return files.filter((f) => /^\/(usr\/)?s?bin\/[^/]+$/.test(f));
}

function unitPath(dir) {
  const commands = essentialCommands();
  if (!commands) {
    process.stderr.write('test-tiers: no dpkg here, so the unit tier runs with the full PATH (a unit test running a system tool unasked goes unnoticed)\n');
    return process.env.PATH ?? '';
  }
  mkdirSync(dir, { recursive: true });
  const link = (target, name) => {
    if (!existsSync(join(dir, name))) symlinkSync(target, join(dir, name));
  };
  // Node and what comes with it (npm, npx: a test may pack or install the package).
  link(process.execPath, 'node');
  for (const name of ['npm', 'npx']) {
    const found = (process.env.PATH ?? '').split(':').map((d) => join(d, name)).find((f) => existsSync(f));
    if (found) link(found, name);
  }
  for (const f of commands) {
    try {
      if (statSync(f).isFile() && (statSync(f).mode & 0o111) !== 0) link(f, basename(f));
    } catch {
      // listed by dpkg but not there (diverted, or removed by hand)
    }
  }
  return dir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === 'list' && ['unit', 'tools', 'all'].includes(arg)) {
    for (const src of testSources()) {
      if (arg !== 'all' && tierOf(src) !== arg) continue;
      const compiled = compiledOf(src);
      if (!existsSync(compiled)) {
        process.stderr.write(`test-tiers: ${relative(root, compiled)} is missing: run npm run build\n`);
        process.exit(1);
      }
      process.stdout.write(`${relative(root, compiled)}\n`);
    }
  } else if (cmd === 'unit-path' && arg) {
    process.stdout.write(`${unitPath(arg)}\n`);
  } else {
    process.stderr.write('usage: node scripts/test-tiers.mjs list unit|tools|all | unit-path <dir>\n');
    process.exit(2);
  }
}
