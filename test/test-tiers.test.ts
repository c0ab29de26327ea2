// The suite's own rules about system tools (test/helpers/tools.ts, scripts/test-tiers.mjs): one
// helper decides "needs tool X", every tool it knows is one the install script installs, and the
// unit tier really runs without system tools. (This file names the helper's functions only
// through aliases: scripts/test-tiers.mjs would file it in the tools tier otherwise.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './helpers/paths.js';
import { needTool as askFor, toolPackages } from './helpers/tools.js';

interface Tiers {
  TOOLS_MARK: RegExp;
  testSources(): string[];
  tierOf(file: string): 'unit' | 'tools';
}
const tiers = (await import(pathToFileURL(join(repoRoot, 'scripts/test-tiers.mjs')).href)) as Tiers;

const read = (f: string) => readFileSync(f, 'utf8');
const rel = (f: string) => relative(repoRoot, f);
const helpers = readdirSync(join(repoRoot, 'test/helpers')).filter((f) => f.endsWith('.ts')).map((f) => join(repoRoot, 'test/helpers', f));

test('every package toolPackages names is one scripts/install-test-deps.sh installs', () => {
  const script = read(join(repoRoot, 'scripts/install-test-deps.sh'));
  const installed = /^packages=\(([^)]*)\)/m.exec(script)?.[1]?.trim().split(/\s+/);
  assert.ok(installed && installed.length > 0, 'the packages=(...) line of install-test-deps.sh');
  const missing = [...new Set(Object.values(toolPackages))].filter((p) => !installed.includes(p));
  assert.deepEqual(missing, [], 'add them to scripts/install-test-deps.sh');
});

test('only test/helpers/tools.ts looks for tools: no test or helper checks PATH itself', () => {
  const offenders: string[] = [];
  for (const f of [...tiers.testSources(), ...helpers]) {
    if (rel(f) === 'test/helpers/tools.ts' || rel(f) === 'test/test-tiers.test.ts') continue;
    read(f).split('\n').forEach((line, i) => {
      if (/\bhasTool\b|command -v|["'`]which\b|process\.env\.CI\b/.test(line)) offenders.push(`${rel(f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, [], 'use needTool, toolFixture, toolPath or unavailable (test/helpers/tools.ts) instead');
});

test('a test file that starts a tool through a helper is in the tools tier', () => {
  // The helpers that run system tools; a file using one must ask for the tools itself.
  const starters = /\b(startRegistry|startProxiedRegistry|makeTestCa|startTokenServer|makeTestNix|runImage)\b/;
  const misfiled = tiers.testSources().filter((f) => rel(f) !== 'test/test-tiers.test.ts' && starters.test(read(f)) && tiers.tierOf(f) !== 'tools').map(rel);
  assert.deepEqual(misfiled, [], 'call needTool or toolFixture in these files');
});

test('the tier rule: a file is in the tools tier exactly when it calls the tools helper', () => {
  const self = join(repoRoot, 'test/test-tiers.test.ts');
  assert.equal(tiers.tierOf(self), 'unit');
  const all = tiers.testSources().map(rel);
  assert.ok(all.includes('test/test-tiers.test.ts') && all.includes('test/build-push.test.ts'));
  assert.ok(!all.some((f) => f.startsWith('test/helpers/') || f.startsWith('test/fixtures/')));
  assert.equal(tiers.tierOf(join(repoRoot, 'test/build-push.test.ts')), 'tools');
  assert.equal(tiers.tierOf(join(repoRoot, 'test/layering-plan.test.ts')), 'unit');
  const call = ['need', 'Tool (t, "x")'].join('');
  assert.ok(tiers.TOOLS_MARK.test(`if (!${call}) return;`) && !tiers.TOOLS_MARK.test('import { needTool } from'));
});

test('asking for a tool the table does not know is an error naming the table and the install script', (t) => {
  assert.throws(() => askFor(t, 'no-such-tool-imgbuild'), /no-such-tool-imgbuild is not in toolPackages \(test\/helpers\/tools\.ts\).*scripts\/install-test-deps\.sh/);
});

test('in the unit tier no system tool is on PATH, and asking for one is an error', { skip: process.env.IMGBUILD_TEST_TIER !== 'unit' && 'runs in the unit tier (scripts/run-tests.sh)' }, (t) => {
  const found = Object.keys(toolPackages).filter((cmd) => {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  assert.deepEqual(found, []);
  assert.throws(() => askFor(t, 'skopeo'), /a test in the unit tier asked for skopeo/);
});
