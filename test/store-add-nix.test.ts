// `imgbuild store add` (no Nix) against Nix 2.8's `nix-store --add`: the same store path (the same
// hash rule), the same canonical files (modes 0444/0555, dirs 0555, mtime 1), and an image built
// from the directory store that unpacks (umoci) to the source's files byte for byte — the very
// image a build from Nix's own store gives.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { makeTestNix, makeWritable, type TestNix } from './helpers/nix.js';
import { noise } from './helpers/registry.js';
import { toolFixture } from './helpers/tools.js';

let nix: TestNix;
let src: string;
let file: string;
/** The directory store `store add` fills. */
let store: string;

const nixFixture = toolFixture(['nix-store', 'nix-hash'], () => {
  nix = makeTestNix();
  src = join(nix.root, 'src', 'app-1.0');
  mkdirSync(join(src, 'bin'), { recursive: true });
  mkdirSync(join(src, 'share', 'doc'), { recursive: true });
  mkdirSync(join(src, 'share', 'empty'), { recursive: true });
  writeFileSync(join(src, 'bin', 'app'), '#!/bin/sh\necho app\n');
  chmodSync(join(src, 'bin', 'app'), 0o4755); // setuid: no store path keeps it
  writeFileSync(join(src, 'bin', 'private'), 'owner only\n');
  chmodSync(join(src, 'bin', 'private'), 0o700);
  writeFileSync(join(src, 'share', 'doc', 'README'), 'read me\n');
  chmodSync(join(src, 'share', 'doc', 'README'), 0o664);
  writeFileSync(join(src, 'share', 'data.bin'), noise(200_000));
  writeFileSync(join(src, 'share', 'empty-file'), '');
  writeFileSync(join(src, 'share', 'naïve ünïcode name'), 'bytes\n');
  symlinkSync('../share/doc/README', join(src, 'bin', 'readme'));
  symlinkSync('/etc/hostname', join(src, 'share', 'absolute'));
  symlinkSync('nowhere', join(src, 'share', 'dangling'));
  chmodSync(join(src, 'share'), 0o750);
  file = join(nix.root, 'src', 'config.txt');
  writeFileSync(file, 'key = value\n');
  store = join(nix.root, 'dir-store');
});

after(() => nix?.cleanup());

async function storeAdd(args: string[]): Promise<{ path: string; json: { path: string; fsPath: string; narHash: string; added: boolean } }> {
  const r = await runCli(['store', 'add', ...args, '--store', store, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout.toString());
  assert.equal(json.schemaVersion, 1);
  return { path: json.path, json };
}

/** Every entry under `root`: type, mode, mtime, and content or target. */
function describeTree(root: string, withMeta: boolean): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const p = join(root, rel);
    const st = lstatSync(p);
    const meta = withMeta && !st.isSymbolicLink() ? ` mode=${(st.mode & 0o7777).toString(8)} mtime=${Math.floor(st.mtimeMs / 1000)}` : '';
    if (st.isSymbolicLink()) out.set(rel, `symlink ${readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, `dir${meta}`);
      for (const n of readdirSync(p).sort()) walk(join(rel, n));
    } else out.set(rel, `file x=${(st.mode & 0o100) !== 0}${meta} ${readFileSync(p).toString('base64')}`);
  };
  walk('.');
  return out;
}

test('store add of a directory and of a file gives the path nix-store --add gives, with the same canonical files', async (t) => {
  if (!(await nixFixture.need(t))) return;
  for (const what of [src, file]) {
    const fromNix = nix.run('nix-store', ['--add', what]).trim();
    const { path, json } = await storeAdd([what, '--store-dir', nix.storeDir]);
    assert.equal(path, fromNix, what);
    assert.equal(json.fsPath, join(store, basename(fromNix)));
    assert.equal(json.narHash, nix.run('nix-store', ['--query', '--hash', fromNix]).trim());
    // Modes (0444 / 0555, dirs 0555, no setuid) and mtimes (1) as Nix made them.
    assert.deepEqual(describeTree(json.fsPath, true), describeTree(fromNix, true), what);
  }
  const modes = describeTree(join(store, basename(nix.run('nix-store', ['--add', src]).trim())), true);
  assert.match(modes.get('bin/app')!, /x=true mode=555 mtime=1 /);
  assert.match(modes.get('bin/private')!, /x=true mode=555 /);
  assert.match(modes.get('share/doc/README')!, /x=false mode=444 /);
  assert.equal(modes.get('share/empty'), 'dir mode=555 mtime=1');
});

test('the default store dir and --name: the paths Nix computes for them (nix-store --print-fixed-path)', async (t) => {
  if (!(await nixFixture.need(t))) return;
  const narHash = nix.run('nix-hash', ['--type', 'sha256', '--base32', src]).trim();
  const fixed = (storeDir: string, name: string) =>
    nix.run('env', [`NIX_STORE_DIR=${storeDir}`, 'nix-store', '--print-fixed-path', '--recursive', 'sha256', narHash, name]).trim();
  assert.equal((await storeAdd([src])).path, fixed('/nix/store', 'app-1.0'));
  assert.equal((await storeAdd([src, '--name', 'renamed-2.0'])).path, fixed('/nix/store', 'renamed-2.0'));
  assert.equal((await storeAdd([src, '--name', 'renamed-2.0', '--store-dir', nix.storeDir])).path, fixed(nix.storeDir, 'renamed-2.0'));
  // A second add finds the path there, with its contents: nothing is written.
  const again = await storeAdd([src]);
  assert.equal(again.json.added, false);
  // A name Nix refuses is a usage error, saying how to name it.
  const bad = await runCli(['store', 'add', join(nix.root, 'src'), '--name', 'has space', '--store', store]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error\[usage\]: --name "has space" is not a store path name: the name contains the character " "/);
});

test('an image built from the directory store unpacks (umoci) to the source files byte for byte, and is the image Nix\'s store gives', async (t) => {
  if (!(await nixFixture.need(t, 'nix', 'umoci'))) return;
  const { path } = await storeAdd([src, '--store-dir', nix.storeDir]);
  const spec = join(nix.root, 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'store-add/app', tag: 'v1', architecture: 'amd64', store: { dir: store, storeDir: nix.storeDir }, contents: [path] }));
  const out = join(nix.root, 'app.oci');
  const built = await runCli(['build', spec, '-o', out, '--json']);
  assert.equal(built.code, 0, built.stderr);
  assert.doesNotMatch(built.stderr, /warning/);
  const bundle = join(nix.root, 'bundle');
  await tool('umoci', ['unpack', '--image', `${out}:v1`, bundle]);
  // The files as the source has them: bytes, symlink targets, the executable bit.
  assert.deepEqual(describeTree(join(bundle, 'rootfs', path), false), describeTree(src, false));
  assert.deepEqual(readdirSync(join(bundle, 'rootfs', nix.storeDir)), [basename(path)]);
  // The same store path in Nix's own store gives the same image, digest for digest.
  assert.equal(nix.run('nix-store', ['--add', src]).trim(), path);
  const fromNix = await runCli(['build', spec, '--nix', '-o', join(nix.root, 'nix.oci'), '--json'], { env: { ...process.env, ...nix.env } });
  assert.equal(fromNix.code, 0, fromNix.stderr);
  assert.equal(JSON.parse(fromNix.stdout.toString()).digest, JSON.parse(built.stdout.toString()).digest);
  makeWritable(bundle);
});
