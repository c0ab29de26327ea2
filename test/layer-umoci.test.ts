import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, open, readdir, readlink, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { assembleImage } from '../builder/build/assemble.js';
import { fileLayer } from '../builder/cache/layer-source.js';
import { storeLayerEntries } from '../builder/layer/tree-entries.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import { writeOciLayout } from '../builder/transports/oci-layout.js';
import { needTool } from './helpers/tools.js';

// End to end: layers with every awkward kind of content go through a real consumer (umoci, which
// also checks every blob digest and diff_id) and come out as the same files.

const HASH = 'f8h7kzb5ns2mc6ys4q4dxv9xlx0q7r3b';
const options: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' };
const BIG = 65 * 1024 * 1024 + 123; // larger than 64 MiB, not a multiple of any chunk size

interface Node {
  kind: 'file' | 'directory' | 'symlink';
  mode?: string;
  target?: string;
  sha256?: string;
  size?: number;
}

/** Every path under `top` with its kind, permission bits, symlink target and content hash (streamed). */
async function describe(top: string): Promise<Map<string, Node>> {
  const out = new Map<string, Node>();
  async function visit(rel: string): Promise<void> {
    const p = join(top, rel);
    const st = await lstat(p);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    if (st.isSymbolicLink()) out.set(rel, { kind: 'symlink', target: await readlink(p) });
    else if (st.isFile()) {
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
      out.set(rel, { kind: 'file', mode, size: st.size, sha256: hash.digest('hex') });
    } else if (st.isDirectory()) {
      out.set(rel, { kind: 'directory', mode });
      for (const name of (await readdir(p)).sort()) await visit(rel === '' ? name : `${rel}/${name}`);
    } else throw new Error(`unexpected file type at ${p}`);
  }
  await visit('');
  return out;
}

/** What the layer writer promises for a file from the store: Nix's canonical modes. */
function canonical(n: Node): Node {
  if (n.kind === 'symlink') return n;
  const m = parseInt(n.mode!, 8);
  const special = m & 0o7000;
  const perm = n.kind === 'directory' || m & 0o100 ? 0o555 : 0o444;
  return { ...n, mode: (special | perm).toString(8).padStart(4, '0') };
}

test('tricky content round-trips through umoci unpack unchanged', async (t) => {
  if (!needTool(t, 'umoci')) return;
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-umoci-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // --- a store path with awkward content ---
  const pkg = join(dir, 'store', `${HASH}-tricky-1.0`);
  const deep = join('share', 'a'.repeat(40), 'b'.repeat(40)); // with the store prefix: a 150-byte path, split by ustar
  await mkdir(join(pkg, deep), { recursive: true });
  const splitPath = join(deep, 'c'.repeat(150 - `nix/store/${HASH}-tricky-1.0/${deep}/`.length));
  assert.equal(Buffer.byteLength(`nix/store/${HASH}-tricky-1.0/${splitPath}`), 150);
  await writeFile(join(pkg, splitPath), 'split into prefix and name\n');
  await writeFile(join(pkg, 'share', 'x'.repeat(120)), 'one 120-byte component: needs pax\n');
  await mkdir(join(pkg, 'lib'));
  const targetDir = `/nix/store/${HASH}-tricky-1.0/`;
  await symlink(`${targetDir}${'t'.repeat(200 - targetDir.length)}`, join(pkg, 'lib', 'far')); // 200-byte target
  await mkdir(join(pkg, 'share', 'données', '日本語'), { recursive: true });
  await writeFile(join(pkg, 'share', 'données', '日本語', '🐳.txt'), 'baleine\n');
  await mkdir(join(pkg, 'empty'));
  await mkdir(join(pkg, 'bin'));
  await writeFile(join(pkg, 'bin', 'suid'), '#!/bin/sh\nid\n');
  await chmod(join(pkg, 'bin', 'suid'), 0o4755);
  await writeFile(join(pkg, 'bin', 'one'), 'linked twice\n');
  await link(join(pkg, 'bin', 'one'), join(pkg, 'bin', 'two'));
  const big = join(pkg, 'big.img');
  await truncate(big, 0).catch(() => writeFile(big, ''));
  await truncate(big, BIG); // sparse: fast to make, 65 MiB to read and compress
  const fh = await open(big, 'r+');
  for (const at of [0, 32 * 1024 * 1024 + 5, BIG - 16]) await fh.write(Buffer.from(`mark@${at}`), 0, undefined, at);
  await fh.close();
  assert.equal((await lstat(join(pkg, 'bin', 'suid'))).mode & 0o7777, 0o4755);

  // --- a customisation-like layer: explicit entries, modes taken verbatim ---
  const custom: LayerEntry[] = [
    { kind: 'directory', path: 'etc', mode: 0o755 },
    { kind: 'file', path: 'etc/passwd', mode: 0o644, content: { from: 'bytes', data: Buffer.from('root:x:0:0::/root:/bin/sh\n') } },
    { kind: 'directory', path: 'tmp', mode: 0o1777 },
    { kind: 'directory', path: 'usr', mode: 0o755 },
    { kind: 'directory', path: 'usr/bin', mode: 0o755 },
    { kind: 'file', path: 'usr/bin/helper', mode: 0o4755, content: { from: 'bytes', data: Buffer.from('#!/bin/sh\n') } },
  ];

  const store = new BlobStore(join(dir, 'blobs'));
  const storePath = `/nix/store/${HASH}-tricky-1.0`;
  const rss0 = process.resourceUsage().maxRSS;
  const storeLayer = await writeLayer(storeLayerEntries([storePath], () => pkg, '/nix/store'), options, store);
  const rss1 = process.resourceUsage().maxRSS;
  t.diagnostic(`store layer: ${(storeLayer.uncompressedSize / 2 ** 20).toFixed(1)} MiB tar, ${storeLayer.size} bytes gzip; peak RSS ${(rss0 / 1024).toFixed(0)} MiB before, ${(rss1 / 1024).toFixed(0)} MiB after`);
  const customLayer = await writeLayer(custom, options, store);
  const image = assembleImage({
    source: 'layer-umoci test',
    layers: [
      { layer: fileLayer(storeLayer, store.path(storeLayer.digest)), storePaths: [storePath], reason: 'popularity' },
      { layer: fileLayer(customLayer, store.path(customLayer.digest)), storePaths: [], reason: 'customisation' },
    ],
    config: { architecture: 'amd64', os: 'linux', created: '1970-01-01T00:00:01Z' },
    name: 'tricky',
    tag: 'v1',
  });
  await writeOciLayout(image, join(dir, 'oci'));

  const rootless = process.getuid?.() !== 0;
  execFileSync('umoci', ['unpack', ...(rootless ? ['--rootless'] : []), '--image', `${join(dir, 'oci')}:v1`, join(dir, 'bundle')], { stdio: 'pipe' });
  const rootfs = join(dir, 'bundle', 'rootfs');

  // The store path: same tree, same bytes, same targets, Nix-canonical modes (setuid kept).
  const want = new Map([...(await describe(pkg))].map(([k, v]) => [k, canonical(v)]));
  const got = await describe(join(rootfs, 'nix', 'store', `${HASH}-tricky-1.0`));
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [k, v] of want) assert.deepEqual(got.get(k), v, k === '' ? '(store path root)' : k);
  assert.equal(got.get('bin/suid')?.mode, '4555');
  assert.equal(got.get('big.img')?.size, BIG);
  assert.equal(got.get('lib/far')?.target?.length, 200);

  // The parents and the explicit entries: modes exactly as given.
  const top = await describe(rootfs);
  const modes = Object.fromEntries(['nix', 'nix/store', 'etc', 'etc/passwd', 'tmp', 'usr/bin/helper'].map((p) => [p, top.get(p)?.mode]));
  assert.deepEqual(modes, { nix: '0755', 'nix/store': '0755', etc: '0755', 'etc/passwd': '0644', tmp: '1777', 'usr/bin/helper': '4755' });
});
