// build's -o and -f: -o may name the format as skopeo writes it (oci-archive:<file>), and without
// -f the file name says it (*.oci.tar, *.docker.tar); a bare *.tar is refused, not written as a
// directory of that name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';
import { outputTarget } from '../builder/transports/write.js';

test('outputTarget: a transport prefix, then -f, then the file name decide the format', () => {
  assert.deepEqual(outputTarget('oci-archive:app.tar', undefined), { format: 'oci-archive', path: 'app.tar' });
  assert.deepEqual(outputTarget('docker-archive:/x/app.tar', 'docker-archive'), { format: 'docker-archive', path: '/x/app.tar' });
  assert.deepEqual(outputTarget('oci:out', undefined), { format: 'oci', path: 'out' });
  assert.deepEqual(outputTarget('app.tar', 'oci-archive'), { format: 'oci-archive', path: 'app.tar' });
  assert.deepEqual(outputTarget('app.oci.tar', undefined), { format: 'oci-archive', path: 'app.oci.tar' });
  assert.deepEqual(outputTarget('app.docker.tar', undefined), { format: 'docker-archive', path: 'app.docker.tar' });
  assert.deepEqual(outputTarget('app.oci', undefined), { format: 'oci', path: 'app.oci' });
  assert.deepEqual(outputTarget(undefined, undefined), { format: 'oci' });
  assert.deepEqual(outputTarget(undefined, 'docker-archive'), { format: 'docker-archive' });
});

test('outputTarget: a bare .tar without -f, a prefix without a path, and a prefix that -f contradicts are usage errors', () => {
  assert.throws(() => outputTarget('app.tar', undefined), {
    code: 'usage',
    message: '-o app.tar: which archive, an OCI archive or a docker-archive?',
    hint: 'add -f oci-archive or -f docker-archive (or name it app.oci.tar or .docker.tar)',
  });
  assert.throws(() => outputTarget('oci-archive:', undefined), { code: 'usage', message: '-o oci-archive: names a format but no path', hint: 'write -o oci-archive:<path>' });
  assert.throws(() => outputTarget('oci:out', 'docker-archive'), { code: 'usage', message: '-o oci:out names the format oci, and -f says docker-archive', hint: 'drop -f, or write -o out' });
});

async function hello(): Promise<{ dir: string; spec: string; env: NodeJS.ProcessEnv }> {
  const dir = await tempDir();
  const spec = join(dir, 'image.json');
  await writeFile(spec, JSON.stringify({ name: 'cli/out', tag: '1', architecture: 'amd64', store: { dir: join(repoRoot, 'examples/hello/store') }, contents: ['/nix/store/mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0'] }));
  return { dir, spec, env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } };
}

test('-o <name>.docker.tar writes a docker-archive file', async () => {
  const { dir, spec, env } = await hello();
  const out = join(dir, 'app.docker.tar');
  const r = await runCli(['build', spec, '-o', out, '--json'], { env });
  assert.equal(r.code, 0, r.stderr.toString());
  assert.equal(JSON.parse(r.stdout.toString()).format, 'docker-archive');
  assert.ok(statSync(out).isFile());
  assert.ok(execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n').includes('manifest.json'));
});

test('-o oci-archive:<file> writes an OCI archive file, whatever its name', async () => {
  const { dir, spec, env } = await hello();
  const out = join(dir, 'image.tar');
  const r = await runCli(['build', spec, '-o', `oci-archive:${out}`, '--json'], { env });
  assert.equal(r.code, 0, r.stderr.toString());
  assert.equal(JSON.parse(r.stdout.toString()).output, out);
  const names = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
  assert.ok(names.includes('oci-layout') && names.includes('index.json'), names.join(' '));
});

test('-o <name>.tar without -f exits 2 before building, and writes nothing', async () => {
  const { dir, spec, env } = await hello();
  const out = join(dir, 'image.tar');
  const r = await runCli(['build', spec, '-o', out], { env });
  assert.equal(r.code, 2);
  assert.match(r.stderr.toString(), /^error\[usage\]: -o .*image\.tar: which archive, an OCI archive or a docker-archive\?$/m);
  assert.equal(existsSync(out), false);
});

test('--stream beside -o, or beside -f naming another format, exits 2 before building', async () => {
  const { dir, spec, env } = await hello();
  const withOutput = await runCli(['build', spec, '--stream', '-o', join(dir, 'x.docker.tar')], { env });
  assert.equal(withOutput.code, 2);
  assert.match(withOutput.stderr.toString(), /^error\[usage\]: --stream writes the image to stdout, and -o names a file too$/m);
  assert.equal(withOutput.stdout.length, 0);
  const withFormat = await runCli(['build', spec, '--stream', '-f', 'oci'], { env });
  assert.equal(withFormat.code, 2);
  assert.match(withFormat.stderr.toString(), /^error\[usage\]: --stream writes a docker-archive, and -f says oci$/m);
  assert.equal(existsSync(join(dir, 'x.docker.tar')), false);
});
