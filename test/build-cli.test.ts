// CLI behaviours around the build: store overrides, --help, --version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

test('--store and --store-dir put a store copy into the image under another logical store dir', async () => {
  const dir = await tempDir();
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'cli/gnu', architecture: 'amd64', contents: ['/gnu/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'] }));
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  const r = await runCli(['build', spec, '--store', join(repoRoot, 'examples/hello/store'), '--store-dir', '/gnu/store', '-o', join(dir, 'out.oci'), '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  const layers = JSON.parse(r.stdout.toString()).layers as { storePaths: string[] }[];
  assert.deepEqual(layers.map((l) => l.storePaths), [['/gnu/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'], []]);
});

test('--version prints the package version', async () => {
  const r = await runCli(['--version']);
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal(r.code, 0);
  assert.equal(r.stdout.toString().trim(), pkg.version);
});

test('build --help lists every output format', async () => {
  const r = await runCli(['build', '--help']);
  assert.equal(r.code, 0);
  // Help text wraps to the terminal width: compare with white space folded.
  assert.match(r.stdout.toString().replace(/\s+/g, ' '), /-f, --format <format> output format: oci, oci-archive, docker-archive \(default: from -o/);
});

test('without a tag, the image is tagged with the first 32 hex digits of its manifest digest', async () => {
  const dir = await tempDir();
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'cli/untagged', architecture: 'amd64', store: { dir: join(repoRoot, 'examples/hello/store') }, contents: ['/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'] }));
  const r = await runCli(['build', spec, '-o', join(dir, 'out.oci'), '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.toString());
  assert.equal(out.tag, out.digest.slice('sha256:'.length, 'sha256:'.length + 32));
});

test('closure --json lists every store path of examples/hello with its references', async () => {
  const r = await runCli(['closure', join(repoRoot, 'examples/hello'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const graph = JSON.parse(r.stdout.toString()) as { paths: { path: string; references: string[] }[] };
  const s = '/nix/store/';
  assert.deepEqual(
    graph.paths.map((p) => [p.path.slice(s.length, s.length + 8), p.references.map((q) => q.slice(s.length, s.length + 8))]),
    [
      ['cc2pwmjq', []],
      ['dmaldhkd', []],
      ['mnkg3va5', []],
      ['yd3ba7lj', ['cc2pwmjq', 'dmaldhkd', 'mnkg3va5']],
    ],
  );
});

test('plan --json puts every closure path in exactly one store layer and names its reason', async () => {
  const r = await runCli(['plan', join(repoRoot, 'examples/hello'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout.toString()) as { strategy: string; layers: { paths: string[]; reason: string }[] };
  assert.equal(plan.strategy, 'auto');
  const paths = plan.layers.flatMap((l) => l.paths).sort();
  assert.equal(paths.length, 4);
  assert.equal(new Set(paths).size, 4);
  assert.deepEqual([...new Set(plan.layers.map((l) => l.reason))], ['auto']);
});

test('a second build says in its progress lines that every layer came from the cache', async () => {
  const dir = await tempDir();
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  const first = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(dir, 'a.oci')], { env });
  const second = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(dir, 'b.oci')], { env });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.code, 0, second.stderr);
  const done = (stderr: string) => stderr.split('\n').filter((l) => /^layer \d\/5 \([a-z]+\): sha256:/.test(l));
  assert.deepEqual(done(first.stderr).filter((l) => l.endsWith('(cached)')), []);
  assert.equal(done(second.stderr).filter((l) => l.endsWith('(cached)')).length, 5);
});

test('a bad --chunk-size is refused before anything is built or sent, as a usage error', async () => {
  const dir = await tempDir();
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--push', '127.0.0.1:9/cli/x:1', '--chunk-size', 'ten'], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error\[usage\]: --chunk-size "ten" is not a size$/m);
  assert.doesNotMatch(r.stderr, /layer \d/);
});

test('--digest-file without --push gets the digest build prints on stdout', async () => {
  const dir = await tempDir();
  const digestFile = join(dir, 'digest.txt');
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(dir, 'out.oci'), '--digest-file', digestFile], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(await readFile(digestFile, 'utf8'), r.stdout.toString());
});

test('--tag without --push is a usage error naming --push, before anything is built or written', async () => {
  const dir = await tempDir();
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '-o', join(dir, 'out.oci'), '--tag', 'latest', '--json'], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 2);
  assert.deepEqual(JSON.parse(r.stdout.toString()).error, {
    code: 'usage',
    message: '--tag tags the pushed image, and there is no --push',
    hint: 'add --push <registry>/<repository>:<tag>, or tag an image already pushed with imgbuild tag <reference> <tag>',
  });
  assert.doesNotMatch(r.stderr, /layer \d/);
  assert.deepEqual((await readdir(dir)).filter((n) => n !== 'cache'), []);
});

test('with --push, a bad --tag or a --digest-file that cannot be written is a usage error naming the flag and the path, before the build', async () => {
  const dir = await tempDir();
  await mkdir(join(dir, 'a-dir'));
  await writeFile(join(dir, 'a-file'), '');
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  // 127.0.0.1:9 answers nothing: an error reached after the build or at the registry would not be these.
  const cases: [string[], string][] = [
    [['--tag', 'bad tag'], 'error[usage]: --tag "bad tag" is not a tag'],
    [['--tag', 'ok', '--tag', '-x'], 'error[usage]: --tag "-x" is not a tag'],
    [['--digest-file', join(dir, 'nodir', 'd.txt')], `error[usage]: --digest-file ${join(dir, 'nodir', 'd.txt')}: the directory ${join(dir, 'nodir')} does not exist`],
    [['--digest-file', join(dir, 'a-file', 'd.txt')], `error[usage]: --digest-file ${join(dir, 'a-file', 'd.txt')}: ${join(dir, 'a-file')} is not a directory`],
    [['--digest-file', join(dir, 'a-dir')], `error[usage]: --digest-file ${join(dir, 'a-dir')} is a directory`],
  ];
  for (const [flags, line] of cases) {
    const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--push', '127.0.0.1:9/cli/x:1', ...flags], { env });
    assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.split('\n')[0], line);
    assert.match(r.stderr, /^hint: .*(--tag|--digest-file|mkdir)/m);
    assert.doesNotMatch(r.stderr, /layer \d|\.tmp-|internal error/);
    assert.equal(r.stdout.toString(), '');
  }
});

test('--store-dir that is not an absolute path is a usage error naming the flag (build, closure, plan, store add)', async () => {
  const dir = await tempDir();
  const env = { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  const hello = join(repoRoot, 'examples/hello');
  for (const args of [['build', hello, '-o', join(dir, 'out.oci')], ['closure', hello], ['plan', hello], ['store', 'add', hello, '--store', join(dir, 'store')]]) {
    const r = await runCli([...args, '--store-dir', 'gnu/store'], { env });
    assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stderr, 'error[usage]: --store-dir "gnu/store" is not an absolute path (it must start with "/")\nhint: name the store dir as the image sees it, an absolute path: e.g. --store-dir /nix/store\n', args[0]);
  }
  assert.deepEqual((await readdir(dir)).filter((n) => n !== 'cache'), [], 'no output, no store');
});
