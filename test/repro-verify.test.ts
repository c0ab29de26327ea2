// `imgbuild verify`: two builds in isolated child processes (other cwd, umask, TZ, locale; the
// second with an empty cache) agree on every example, and a spec that writes its build time
// into the image is caught with the exact file named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImageDiff } from '../builder/repro/diff.js';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { needTool } from './helpers/tools.js';
import { startRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { makeMultiarchStores, multiarchDir } from './helpers/multiarch.js';
import { Layout } from './fixtures/repro/plant.js';
import type { VerifyResult } from '../builder/repro/verify.js';

const fixture = join(repoRoot, 'test/fixtures/repro');
const work = await tempDir('imgbuild-repro-verify-');
const scratch = (name: string) => mkdtemp(join(work, `${name}-`));
// The first build of a verify uses "your cache": runCli gives each CLI run a fresh one of its own.
const env = { ...process.env };

async function verifyJson(args: string[]): Promise<{ code: number | null; result: VerifyResult; stderr: string }> {
  const r = await runCli(['verify', ...args, '--json'], { env });
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, result: JSON.parse(r.stdout.toString()) as VerifyResult, stderr: r.stderr };
}

function assertIsolated(result: VerifyResult): void {
  const [a, b] = result.builds;
  assert.ok(a && b);
  assert.notEqual(a.umask, b.umask);
  assert.notEqual(a.tz, b.tz);
  assert.notEqual(a.locale, b.locale);
  assert.notEqual(a.cwd, b.cwd);
  assert.equal(a.cacheDir, undefined);
  assert.match(b.cacheDir ?? '', /build-2\/cache$/);
}

test('verify examples/hello: two isolated builds, one digest, exit 0', async () => {
  const r = await runCli(['verify', join(repoRoot, 'examples/hello')], { env });
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.toString();
  const digest = /^reproducible: (sha256:[0-9a-f]{64})$/m.exec(out)?.[1];
  assert.ok(digest, out);
  assert.match(out, new RegExp(`^build 1: ${digest}  \\(umask 022, TZ UTC, LANG C, your cache\\)$`, 'm'));
  assert.match(out, new RegExp(`^build 2: ${digest}  \\(umask 077, TZ Pacific/Chatham, LANG de_DE\\.UTF-8, empty cache\\)$`, 'm'));
  assert.match(r.stderr, /^build 2\/2: sha256:[0-9a-f]{64}$/m);
});

test('verify examples/busybox (store made by its script): one digest', async (t) => {
  if (!needTool(t, 'busybox')) return;
  // A copy, so that make-store.sh does not rewrite the store another test file may be reading.
  const dir = join(await scratch('busybox'), 'busybox');
  await cp(join(repoRoot, 'examples/busybox'), dir, { recursive: true, filter: (src) => !src.endsWith('/store') });
  const made = await runCommand('bash', [join(dir, 'make-store.sh')]);
  assert.equal(made.code, 0, made.stderr);
  const { code, result } = await verifyJson([dir]);
  assert.equal(code, 0);
  assert.equal(result.reproducible, true);
  assertIsolated(result);
  assert.equal(result.builds[0]!.digest, result.builds[1]!.digest);
  assert.equal(result.diff, undefined);
});

test('verify examples/multiarch (stores made by its script): two isolated builds, one index digest', async (t) => {
  if (!(await makeMultiarchStores(t))) return;
  // make-store.sh keeps a good store and swaps a stale one in by rename: the example is used in place.
  const { code, result } = await verifyJson([multiarchDir]);
  assert.equal(code, 0);
  assert.equal(result.reproducible, true);
  assertIsolated(result);
  assert.equal(result.builds[0]!.digest, result.builds[1]!.digest);
});

test('verify a spec that writes its build time into a file: exit 1, that file and its content named, nothing else', async () => {
  const { code, result } = await verifyJson([join(fixture, 'unreproducible')]);
  assert.equal(code, 1);
  assert.equal(result.reproducible, false);
  assertIsolated(result);
  assert.notEqual(result.builds[0]!.digest, result.builds[1]!.digest);
  const diff = result.diff as ImageDiff;
  assert.deepEqual([diff.manifest, diff.config, diff.notes], [[], [], []]);
  // Layer 1 (the store path) is the same in both; layer 2 (customisation) holds the stamp.
  assert.equal(diff.layers.length, 1);
  const layer = diff.layers[0]!;
  assert.equal(layer.change, 'content');
  if (layer.change !== 'content') return;
  assert.deepEqual([layer.a.index, layer.b.index], [1, 1]);
  assert.deepEqual(layer.fieldCounts, { content: 1 });
  assert.equal(layer.files.length, 1);
  const file = layer.files[0]!;
  assert.equal(file.path, 'etc/build-time');
  assert.equal(file.change, 'changed');
  if (file.change !== 'changed') return;
  assert.deepEqual(file.fields.map((f) => f.path), ['content']);
  assert.notEqual(file.fields[0]!.a, file.fields[0]!.b);

  const human = await runCli(['verify', join(fixture, 'unreproducible')], { env });
  assert.equal(human.code, 1);
  const out = human.stdout.toString();
  assert.match(out, /^NOT reproducible: 1 difference\(s\)$/m);
  assert.match(out, /^ {6}~ etc\/build-time: content: sha256:[0-9a-f]{12}… → sha256:[0-9a-f]{12}…$/m);
  assert.match(out, /^hint: rerun with --keep/m);
});

test('verify --keep leaves both builds for a closer look', async () => {
  const { result } = await verifyJson([join(fixture, 'base'), '--keep']);
  assert.equal(result.reproducible, true);
  assert.ok(result.workDir);
  for (const b of result.builds) assert.ok((await stat(join(b.output, 'index.json'))).isFile());
  await runCommand('rm', ['-rf', result.workDir]);
});

test('verify --against the image an earlier build wrote: exit 0; against a changed copy: exit 1 with the diff', async () => {
  const dir = await scratch('against');
  const built = join(dir, 'base.oci');
  const b = await runCli(['build', join(fixture, 'base'), '-o', built], { env });
  assert.equal(b.code, 0, b.stderr);

  const same = await verifyJson([join(fixture, 'base'), '--against', built]);
  assert.equal(same.code, 0);
  assert.equal(same.result.builds.length, 1);
  assert.deepEqual(same.result.against, { source: `oci:${built}`, digest: same.result.builds[0]!.digest });

  const copy = await Layout.copy(built, join(dir, 'changed.oci'));
  copy.config.config.Env = ['PATH=/bin', 'LANG=en_US.UTF-8'];
  await copy.save();
  const other = await verifyJson([join(fixture, 'base'), '--against', `oci:${copy.dir}`]);
  assert.equal(other.code, 1);
  assert.equal(other.result.reproducible, false);
  // a = the image compared against, b = this build.
  const diff = other.result.diff as ImageDiff;
  assert.deepEqual(diff.config, [{ path: 'config.Env[LANG]', a: 'en_US.UTF-8', b: 'C.UTF-8' }]);
  assert.deepEqual(diff.layers, []);
});

test('verify --against an image that does not exist: a clear error before any build, exit 2', async () => {
  const r = await runCli(['verify', join(fixture, 'base'), '--against', '/nonexistent/image.oci'], { env });
  assert.equal(r.code, 2, 'an error, not "differs"');
  assert.match(r.stderr, /^error\[image-ref\]: \/nonexistent\/image\.oci: no such file or directory$/m);
  assert.doesNotMatch(r.stderr, /^build 1/m);
});

test('verify a spec whose build fails: the build error is shown, exit 2', async () => {
  // A spec that is not there is found missing before any build (the builds need its file).
  const missing = await runCli(['verify', join(fixture, 'no-such-spec')], { env });
  assert.equal(missing.code, 2, 'an error, not "differs"');
  assert.match(missing.stderr, /^error\[spec\]: .*no-such-spec: no such file or directory$/m);
  assert.doesNotMatch(missing.stderr, /^build 1/m);
  // A spec that is there but fails to build: the build's own error, under verify's.
  const bad = join(await scratch('bad-spec'), 'image.json');
  await writeFile(bad, JSON.stringify({ name: 'repro/bad', maxLayers: 'many' }));
  const r = await runCli(['verify', bad], { env });
  assert.equal(r.code, 2, 'an error, not "differs"');
  assert.match(r.stderr, /^error\[verify\]: the build \(umask 022, TZ UTC\) failed with exit code 1:\nerror\[spec\]: .*bad-spec-\w+\/image\.json: maxLayers: expected a number/m);
});

test('the CI flow: build --push to a registry, then verify --against the pushed digest: exit 0', async (t) => {
  if (!needTool(t, 'docker-registry')) return;
  const registry = await startRegistry();
  try {
    const image = `${registry.host}/repro/base`;
    const b = await runCli(['build', join(fixture, 'base'), '--push', `${image}:1`, '--insecure-registry', registry.host, '--json'], { env });
    assert.equal(b.code, 0, b.stderr);
    const digest = JSON.parse(b.stdout.toString()).digest as string;
    const ref = `docker://${image}@${digest}`;
    const { code, result } = await verifyJson([join(fixture, 'base'), '--against', ref, '--insecure-registry', registry.host]);
    assert.equal(code, 0);
    assert.deepEqual(result.against, { source: ref, digest: digest });
    assert.equal(result.builds[0]!.digest, digest);
  } finally {
    await registry.stop();
  }
});

test('Ctrl-C during a build: exit 130, the build stopped and every temp dir removed', async () => {
  const tmp = await scratch('tmpdir');
  const started = join(await scratch('started'), 'build-pid');
  // The slow spec writes its pid to IMGBUILD_TEST_SLOW_STARTED and then never finishes by itself.
  const childEnv = { ...env, TMPDIR: tmp, IMGBUILD_CACHE_DIR: await scratch('cache'), IMGBUILD_TEST_SLOW_STARTED: started };
  const child = spawn(process.execPath, [cliPath, 'verify', join(fixture, 'slow')], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // The event: the first build is evaluating the spec (it said so), and cannot finish without us.
  let buildPid: number | undefined;
  while (buildPid === undefined) {
    if (child.exitCode !== null) assert.fail(`verify exited (${child.exitCode}) before its build started:\n${stderr}`);
    buildPid = await readFile(started, 'utf8').then(Number, () => undefined);
    if (buildPid === undefined) await sleep(5);
  }
  assert.equal((await readdir(tmp)).filter((n) => n.startsWith('imgbuild-verify-')).length, 1, 'the build runs in its own temp dir');
  child.kill('SIGINT');
  assert.equal(await exited, 130);
  assert.match(stderr, /^interrupted: nothing was written$/m);
  assert.throws(() => process.kill(buildPid, 0), { code: 'ESRCH' }, 'the build process is gone');
  assert.deepEqual((await readdir(tmp)).filter((n) => n.startsWith('imgbuild-verify-')), []);
});

test('every example with a spec is one the tests above verify', async () => {
  const covered = ['busybox', 'hello', 'multiarch'];
  const examples: string[] = [];
  for (const d of await readdir(join(repoRoot, 'examples'), { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const files = await readdir(join(repoRoot, 'examples', d.name));
    if (files.some((f) => /^image\.(ts|mts|js|mjs|json|ya?ml)$/.test(f))) examples.push(d.name);
  }
  assert.deepEqual(examples.sort(), covered, 'a new example needs a verify test in test/repro-verify.test.ts');
});

test('verify --store with a relative path: the builds, run elsewhere, get it made absolute', async () => {
  const dir = await scratch('store-flag');
  await cp(join(fixture, 'store'), join(dir, 'elsewhere'), { recursive: true });
  // The spec's own store does not exist: only a forwarded, absolute --store makes the builds work.
  const spec = JSON.parse(await readFile(join(fixture, 'base/image.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, 'image.json'), JSON.stringify({ ...spec, store: { dir: './no-such-store' } }));
  const r = await runCli(['verify', 'image.json', '--store', 'elsewhere', '--json'], { env, cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout.toString()) as VerifyResult).reproducible, true);
});
