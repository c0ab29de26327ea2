// Archives as the readers take them (builder/transports/tar-index.ts, gzip-tar-storage.ts,
// docker-archive.ts): one cut short is said to be truncated, wherever the cut is, never read as
// if whole; hard link and symlink members (GNU tar's, legacy `docker save`'s shared layer.tar)
// read as the members they lead to, as skopeo reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, readFile, rename, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runCli, runCommand } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const spec = join(repoRoot, 'test/fixtures/repro/base');
const work = await tempDir('imgbuild-archive-read-');
const env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
const scratch = (name: string) => mkdtemp(join(work, `${name}-`));

const ociArchive = join(work, 'base.oci.tar');
const dockerArchive = join(work, 'base.docker.tar');
for (const out of [ociArchive, dockerArchive]) {
  const r = await runCli(['build', spec, '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
}
const digestOf = async (image: string) => {
  const r = await runCli(['digest', image], { env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString().trim();
};
const ociDigest = await digestOf(ociArchive);
const dockerDigest = await digestOf(dockerArchive);

/** The first `n` bytes of `file`, as a file of its own. */
async function cut(file: string, n: number, name: string): Promise<string> {
  const out = join(await scratch('cut'), name);
  await writeFile(out, (await readFile(file)).subarray(0, n));
  return out;
}

/** Where each member's header and data start in a plain tar written by imgbuild (ustar, no pax). */
function members(tar: Buffer): { name: string; header: number; data: number; size: number }[] {
  const out = [];
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const name = tar.subarray(at, at + 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
    out.push({ name, header: at, data: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

test('an OCI archive cut inside a member\'s data: "is truncated", the member, the bytes it needs and where the file ends; exit 1', async () => {
  const m = members(await readFile(ociArchive)).find((x) => x.size > 100)!;
  const file = await cut(ociArchive, m.data + 50, 'cut.oci.tar');
  const r = await runCli(['inspect', file], { env });
  assert.equal(r.code, 1, r.stdout.toString());
  assert.equal(r.stdout.toString(), '');
  assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: ${escape(file)} is truncated: member ${escape(m.name)} needs ${m.data + m.size} bytes, the file ends after ${m.data + 50}$`, 'm'));
});

test('an OCI archive cut inside a header: "is truncated", not "index.json is missing"', async () => {
  const m = members(await readFile(ociArchive))[2]!;
  const file = await cut(ociArchive, m.header + 100, 'cut.oci.tar');
  const r = await runCli(['digest', `oci-archive:${file}`], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: oci-archive:${escape(file)} is truncated: the header at byte ${m.header} \\(after member [^)]+\\) needs ${m.header + 512} bytes, the file ends after ${m.header + 100}$`, 'm'));
});

test('a docker-archive cut between members (no end-of-archive blocks): "is truncated"', async () => {
  const all = members(await readFile(dockerArchive));
  const last = all[all.length - 1]!;
  const file = await cut(dockerArchive, last.header, 'cut.docker.tar');
  const r = await runCli(['digest', file], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: ${escape(file)} is truncated: it ends after ${last.header} bytes \\(after member ${escape(all[all.length - 2]!.name)}\\), without the end-of-archive blocks$`, 'm'));
});

test('a gzipped docker-archive whose gzip stream is cut: "is truncated"', async () => {
  const gz = gzipSync(await readFile(dockerArchive));
  const file = join(await scratch('gz'), 'cut.docker.tar.gz');
  await writeFile(file, gz.subarray(0, gz.length - 30));
  const r = await runCli(['digest', file], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: ${escape(file)} is truncated: `, 'm'));
});

test('verify --against a truncated OCI archive: an error (exit 2), never "reproducible"', async () => {
  const all = members(await readFile(ociArchive));
  const file = await cut(ociArchive, all[all.length - 1]!.data + 2, 'cut.oci.tar');
  const r = await runCli(['verify', spec, '--against', file], { env });
  assert.equal(r.code, 2, r.stdout.toString());
  assert.match(r.stderr, /is truncated: member oci-layout needs/);
});

/** The docker-archive unpacked into a fresh dir, with its manifest.json entry. */
async function unpacked(): Promise<{ dir: string; manifest: { Config: string; Layers: string[] }[] }> {
  // GNU tar: Debian's Essential, no needTool.
  const dir = join(await scratch('unpacked'), 'archive');
  await mkdir(dir);
  const r = await runCommand('tar', ['-xf', dockerArchive, '-C', dir]);
  assert.equal(r.code, 0, r.stderr);
  return { dir, manifest: JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) };
}

/** `names` of `dir` as a tar, in that order (GNU tar: a second name of one inode is a hard link member). */
async function tarOf(dir: string, names: string[], gzip = false): Promise<string> {
  const out = join(await scratch('packed'), gzip ? 'packed.docker.tar.gz' : 'packed.docker.tar');
  const r = await runCommand('tar', [gzip ? '-czf' : '-cf', out, '-C', dir, ...names]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

test('a docker-archive whose layer is a symlink member (legacy docker save\'s shared layer.tar): read through it, same digest', async () => {
  const u = await unpacked();
  const first = u.manifest[0]!.Layers[0]!;
  await mkdir(join(u.dir, 'shared'));
  await mkdir(join(u.dir, 'other'));
  await rename(join(u.dir, first), join(u.dir, 'shared/layer.tar'));
  await symlink('../shared/layer.tar', join(u.dir, 'other/layer.tar'));
  u.manifest[0]!.Layers[0] = 'other/layer.tar';
  await writeFile(join(u.dir, 'manifest.json'), JSON.stringify(u.manifest));
  const names = ['shared', 'other', ...u.manifest[0]!.Layers.slice(1), u.manifest[0]!.Config, 'manifest.json'];
  for (const file of [await tarOf(u.dir, names), await tarOf(u.dir, names, true)]) {
    assert.equal(await digestOf(file), dockerDigest, file);
  }
});

test('a docker-archive whose layer is a hard link member (GNU tar): read as its target, same digest', async () => {
  const u = await unpacked();
  const first = u.manifest[0]!.Layers[0]!;
  await link(join(u.dir, first), join(u.dir, 'again.tar'));
  u.manifest[0]!.Layers[0] = 'again.tar';
  await writeFile(join(u.dir, 'manifest.json'), JSON.stringify(u.manifest));
  // `first` before `again.tar`: GNU tar writes again.tar as a hard link to it.
  const names = [first, 'again.tar', ...u.manifest[0]!.Layers.slice(1), u.manifest[0]!.Config, 'manifest.json'];
  const file = await tarOf(u.dir, names);
  const listed = await runCommand('tar', ['-tvf', file]);
  assert.match(listed.stdout.toString(), /^h.* again\.tar link to /m);
  assert.equal(await digestOf(file), dockerDigest);
});

test('a symlink member that loops or leads out of the archive: the layer is missing, named', async () => {
  const u = await unpacked();
  await symlink('loop-b.tar', join(u.dir, 'loop-a.tar'));
  await symlink('loop-a.tar', join(u.dir, 'loop-b.tar'));
  await symlink('../outside.tar', join(u.dir, 'out.tar'));
  for (const name of ['loop-a.tar', 'out.tar']) {
    const manifest = structuredClone(u.manifest);
    manifest[0]!.Layers[0] = name;
    await writeFile(join(u.dir, 'manifest.json'), JSON.stringify(manifest));
    const file = await tarOf(u.dir, ['.']);
    const r = await runCli(['digest', file], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error\\[image-read\\]: docker-archive:${escape(file)}: layer ${name.replace('.', '\\.')} is missing$`, 'm'));
  }
});

test('an OCI archive read whole still gives its digest (the end-of-archive blocks are there)', async () => {
  assert.equal((await stat(ociArchive)).size % 512, 0);
  assert.equal(ociDigest, await digestOf(`oci-archive:${ociArchive}`));
});

test('an archive read from a pipe (cat x | imgbuild digest /dev/stdin): error[image-read] saying it must be a seekable file, exit 1', async () => {
  const r = await runCommand('sh', ['-c', 'cat "$1" | "$2" "$3" digest /dev/stdin', 'sh', ociArchive, process.execPath, cliPath], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.toString(), '');
  assert.equal(r.stderr, 'error[image-read]: /dev/stdin: is a pipe (FIFO), not a regular file: an archive is read by seeking in it, so it must be a seekable (regular) file\nhint: save it to a file first (cat … > image.tar, or build -o image.tar) and name that file\n');
});

test('a character device named as a docker-archive: said to be one, never read', async () => {
  const r = await runCli(['digest', 'docker-archive:/dev/zero'], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error\[image-read\]: docker-archive:\/dev\/zero: is a character device, not a regular file: /m);
});
