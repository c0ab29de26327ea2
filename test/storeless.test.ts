// Specs with no store paths: a `files`-only image, and a base image plus files and config (the
// first thing a crane user tries) build without any `store`.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { runImage } from './helpers/runc.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';

let work: string;

before(async () => {
  work = await tempDir('imgbuild-storeless-');
});

async function spec(name: string, value: object): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'image.json');
  await writeFile(file, JSON.stringify(value));
  return file;
}

test('a files-only spec with no store builds into an image holding just those files', async () => {
  const file = await spec('files-only', { name: 'storeless/files', tag: '1', architecture: 'amd64', files: [{ path: '/etc/motd', content: 'hello\n' }] });
  const out = join(work, 'files.oci');
  const r = await runCli(['build', file, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const inspected = JSON.parse((await runCli(['inspect', out, '--json'])).stdout.toString());
  assert.equal(inspected.layers.length, 1);
  assert.equal(inspected.layers[0].reason, 'customisation');
});

test('a files-only spec naming no architecture is refused, saying the spec must name it', async () => {
  const file = await spec('files-no-arch', { name: 'storeless/files', files: [{ path: '/etc/motd', content: 'hello\n' }] });
  const r = await runCli(['build', file, '-o', join(work, 'x.oci')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[store\]: no ELF file was found in the closure/);
});

test('fromImage plus files and config, with no store and no architecture, builds on the base and runs under runc', async (t) => {
  if (!needTool(t, 'busybox', 'umoci', 'runc')) return;
  await tool('bash', [join(repoRoot, 'examples/busybox/make-store.sh')]);
  const base = join(work, 'busybox.oci');
  const b = await runCli(['build', join(repoRoot, 'examples/busybox'), '-o', base]);
  assert.equal(b.code, 0, b.stderr);
  // The architecture comes from the base (one image): no store, no ELF file of our own.
  const file = await spec('on-base', {
    name: '127.0.0.1:5000/ux/greeter',
    tag: '1',
    fromImage: `oci:${base}`,
    files: [{ path: '/etc/greeting', content: 'hello from a file\n' }],
    config: { Cmd: ['/bin/cat', '/etc/greeting'] },
  });
  const r = await runCli(['build', file], { cwd: work });
  assert.equal(r.code, 0, r.stderr);
  // The default output name drops the registry host and port.
  assert.equal(await runImage(join(work, 'greeter.oci'), '1', work), 'hello from a file\n');
});
