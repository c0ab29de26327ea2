// A TS/JS spec is code, loaded with limits: a promise that never settles, process.exit(), a spec
// that hangs and one that never yields each end in error[spec] naming the spec (not a silent
// exit 13, not exit 0 having built nothing, not a build that waits forever). The library side of
// it (nothing of the caller's process touched) is spec-isolation.test.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SpecError } from '../builder/errors.js';
import { SpecTimeoutError } from '../builder/spec/guard.js';
import { loadSpec } from '../builder/spec/load.js';
import { runCli } from './helpers/cli.js';
import { cliPath } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

let work: string;

before(async () => {
  work = await tempDir('imgbuild-spec-limits-');
});

async function specFile(name: string, body: string): Promise<string> {
  const file = join(work, name);
  await writeFile(file, body);
  return file;
}

test('a spec whose promise never settles: error[spec] saying so, exit 1, no output', async () => {
  const file = await specFile('never.ts', 'export default async () => { await new Promise(() => {}); };\n');
  const out = join(work, 'never.oci');
  const r = await runCli(['build', file, '-o', out]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[spec]: ${file}: never finished loading: it waits on a promise that nothing will settle\nhint: check that every promise the spec awaits is resolved (a missing resolve() call, an event that never comes)\n`);
  assert.ok(!(await readdir(work)).some((n) => n.includes('never.oci')));
});

test('a spec calling process.exit(0) as it loads: error[spec], exit 1, not exit 0 having built nothing', async () => {
  const file = await specFile('exit0.ts', "process.exit(0);\nexport default { name: 'x' };\n");
  const r = await runCli(['build', file, '-o', join(work, 'exit0.oci'), '--json']);
  assert.equal(r.code, 1, r.stderr);
  const error = JSON.parse(r.stdout.toString()).error;
  assert.equal(error.code, 'spec');
  assert.equal(error.message, `${file}: called process.exit(0) while it was loaded: a spec returns its image, it does not end the process`);
});

test('a spec function calling process.exit() from a timer: error[spec], exit 1', async () => {
  const file = await specFile('exit-later.mjs', 'export default () => new Promise(() => { setTimeout(() => process.exit(3), 10); });\n');
  const r = await runCli(['build', file, '-o', join(work, 'exit-later.oci')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^error\\[spec\\]: ${file}: called process.exit\\(3\\) while it was loaded`, 'm'));
});

test('a spec still waiting after IMGBUILD_SPEC_TIMEOUT: error[spec] naming the limit and how to raise it', async () => {
  const file = await specFile('slow.ts', 'export default async () => { await new Promise((r) => setTimeout(r, 600_000)); };\n');
  const r = await runCli(['build', file, '-o', join(work, 'slow.oci')], { env: { ...process.env, IMGBUILD_SPEC_TIMEOUT: '1' } });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error[spec]: ${file}: did not finish loading within 1 s\nhint: a spec must finish loading within 1 s; if it really needs longer, set IMGBUILD_SPEC_TIMEOUT=<seconds>\n`);
});

test('a spec that never yields (an endless loop) is ended after IMGBUILD_SPEC_TIMEOUT: error[spec], exit 1, no signal', async () => {
  const file = await specFile('busy.ts', 'export default () => { for (;;) {} };\n');
  const child = spawn(process.execPath, [cliPath, 'build', file, '-o', join(work, 'busy.oci')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, IMGBUILD_SPEC_TIMEOUT: '1', IMGBUILD_CACHE_DIR: await tempDir('imgbuild-spec-limits-cache-') } });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  // The spec's thread is terminated; the CLI reports it like any spec error.
  assert.equal(signal, null);
  assert.equal(code, 1, stderr);
  assert.equal(stderr, `error[spec]: ${file}: did not finish loading within 1 s\nhint: a spec must finish loading within 1 s; if it really needs longer, set IMGBUILD_SPEC_TIMEOUT=<seconds>\n`);
});

test('an IMGBUILD_SPEC_TIMEOUT past what a timer holds (2147484 s, over 24.8 days) is no limit, not one that ends the load at once', async () => {
  const file = await specFile('patient.ts', "export default async () => { await new Promise((r) => setTimeout(r, 50)); return { name: 'x/patient', architecture: 'amd64', files: [{ path: '/a', content: 'a' }] }; };\n");
  const r = await runCli(['plan', file, '--json'], { env: { ...process.env, IMGBUILD_SPEC_TIMEOUT: '2147484' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(JSON.parse(r.stdout.toString()).schemaVersion, 1);
});

test('IMGBUILD_SPEC_TIMEOUT that is not a number of seconds is a usage error', async () => {
  const file = await specFile('fine.json', JSON.stringify({ name: 'x/y', architecture: 'amd64', files: [{ path: '/a', content: 'a' }] }));
  const r = await runCli(['plan', file], { env: { ...process.env, IMGBUILD_SPEC_TIMEOUT: 'soon' } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error\[usage\]: IMGBUILD_SPEC_TIMEOUT="soon" is not a number of seconds above 0$/m);
});

test('loadSpec (the library) refuses a never-settling spec with a SpecError at once, and leaves process.exit as it was', async () => {
  const file = await specFile('never-lib.mjs', 'export default () => new Promise(() => {});\n');
  const exit = process.exit;
  // The spec's thread ends when its event loop empties: no time limit is needed to notice.
  const started = Date.now();
  await assert.rejects(loadSpec(file, { timeoutMs: 30_000 }), (e: unknown) => e instanceof SpecError && e.message === `${file}: never finished loading: it waits on a promise that nothing will settle`);
  assert.ok(Date.now() - started < 20_000);
  assert.equal(process.exit, exit);
});

test('loadSpec (the library) with timeoutMs: a spec waiting on a timer fails with a SpecTimeoutError', async () => {
  const file = await specFile('slow-lib.mjs', 'export default async () => { await new Promise((r) => setTimeout(r, 600_000)); };\n');
  await assert.rejects(loadSpec(file, { timeoutMs: 300 }), (e: unknown) => e instanceof SpecTimeoutError && e.message === `${file}: did not finish loading within 300 ms`);
});
