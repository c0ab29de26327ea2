// `imgbuild store add` (no Nix) refuses what no build of the path could put in a layer: a name
// or a symlink target that is not UTF-8 is the layer writer's own error, before anything is
// added. It copies, and a build walks, a tree as deep as a path on disk can be.
// (store-add-nix.test.ts compares what it adds with `nix-store --add`.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, runCommand } from './helpers/cli.js';
import { cliPath } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

/** `store add <src> --store <store>`: exit code, stdout, stderr, and what the store directory holds after. */
async function storeAdd(src: string, store: string) {
  const r = await runCli(['store', 'add', src, '--store', store]);
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString(), store: readdirSync(store) };
}

test('store add refuses a file whose name is not UTF-8, naming it and its bytes, and adds nothing', async () => {
  const dir = await tempDir('imgbuild-store-add-');
  const src = join(dir, 'src');
  mkdirSync(join(src, 'share'), { recursive: true });
  writeFileSync(join(src, 'share', 'fine'), 'a file of a good name\n');
  writeFileSync(Buffer.from(`${src}/share/lat\xe9`, 'latin1'), 'its name is latin-1\n');
  const store = join(dir, 'store');
  assert.deepEqual(await storeAdd(src, store), {
    code: 1,
    stdout: '',
    stderr: `error[layer-content]: ${src}/share/lat\xe9 has a name that is not valid UTF-8 (bytes 6c6174e9); layer paths must be UTF-8\nhint: rename the file\n`,
    store: [],
  });
});

test('store add refuses a symlink whose target is not UTF-8, and adds nothing', async () => {
  const dir = await tempDir('imgbuild-store-add-');
  const src = join(dir, 'src');
  mkdirSync(join(src, 'bin'), { recursive: true });
  symlinkSync(Buffer.from('tool-\xff', 'latin1'), join(src, 'bin', 'link'));
  const store = join(dir, 'store');
  assert.deepEqual(await storeAdd(src, store), {
    code: 1,
    stdout: '',
    stderr: `error[layer-content]: symlink ${src}/bin/link has a target that is not valid UTF-8 (bytes 746f6f6c2dff)\n`,
    store: [],
  });
});

test('a store path as deep as a path on disk can be (PATH_MAX) is added, and built cold and warm on a fifth of the main thread\'s default stack', async () => {
  const dir = await tempDir('imgbuild-store-add-');
  const src = join(dir, 'deep');
  const store = join(dir, 'store');
  // The store path's files must fit in PATH_MAX (4,096 bytes with the NUL), as its temp copy's: as deep as that allows.
  const longest = Math.max(`${store}/${'h'.repeat(32)}-deep`.length, `${store}/.imgbuild-add-${process.pid}-000000000000`.length);
  const depth = Math.floor((4095 - longest - '/f000'.length) / 2);
  const bottom = join(src, ...Array<string>(depth).fill('d'));
  execFileSync('mkdir', ['-p', bottom]);
  // More entries than a stat list holds: the path's record is checked by a walk of its tree.
  for (let i = 0; i < 70; i++) writeFileSync(join(bottom, `f${String(i).padStart(3, '0')}`), `file ${i} at the bottom\n`);
  const added = await runCli(['store', 'add', src, '--store', store]);
  assert.equal(added.code, 0, added.stderr.toString());
  const path = added.stdout.toString().trim();
  const spec = join(dir, 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'store-add/deep', tag: '1', architecture: 'amd64', store: { dir: store }, contents: [path] }));
  // Every walk of the path on the main thread (no workers), with 200 KiB of stack (984 KiB by default).
  const env = { ...process.env, IMGBUILD_WORKERS: '0', IMGBUILD_CACHE_DIR: join(dir, 'cache') };
  const digests: string[] = [];
  for (const run of ['cold', 'warm']) {
    const built = await runCommand(process.execPath, ['--stack-size=200', cliPath, 'build', spec, '-o', join(dir, `${run}.oci`)], { env });
    assert.equal(built.code, 0, `${run}: ${built.stderr.toString()}`);
    digests.push(built.stdout.toString());
  }
  assert.match(digests[0]!, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(digests[1], digests[0]);
  // Node's recursive rm runs out of stack at this depth.
  execFileSync('chmod', ['-R', 'u+w', dir]);
  execFileSync('rm', ['-rf', src, store]);
});
