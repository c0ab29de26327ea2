// `imgbuild store add` (no Nix) refuses what no build of the path could put in a layer: a name
// or a symlink target that is not UTF-8 is the layer writer's own error, before anything is
// added. (store-add-nix.test.ts compares what it adds with `nix-store --add`.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
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
