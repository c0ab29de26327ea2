// `imgbuild diff` finds each difference planted in an otherwise equal copy of one image, and says
// exactly what it is: the file and the field inside a layer, the config field, the extra layer,
// or that only the compression differs. And it finds none after a round trip through skopeo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { needTool } from './helpers/tools.js';
import { tempDir } from './helpers/tmp.js';
import { startRegistry } from './helpers/registry.js';
import { FIELD, findEntry, insertPax, rawEntries, Layout, setHeaderBytes, setOctalField, singleFileTar, swapAdjacent } from './fixtures/repro/plant.js';
import type { ImageDiff, LayerInfo } from '../builder/repro/diff.js';

const fixture = join(repoRoot, 'test/fixtures/repro');
const toolPath = 'nix/store/0c6kzph7l0dcbyr5hj2vvj7yhgzgz1zr-tool-1.0';
const readmePath = `${toolPath}/share/doc/tool/README`;
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

// Made at the top level: tempDir() removes its dir after the file's tests, not after one test.
const work = await tempDir('imgbuild-repro-diff-');
const scratch = (name: string) => mkdtemp(join(work, `${name}-`));

let basePromise: Promise<string> | undefined;
/** The fixture image, built once with the CLI into an OCI layout. */
function base(): Promise<string> {
  basePromise ??= (async () => {
    const dir = await scratch('base');
    const out = join(dir, 'base.oci');
    const r = await runCli(['build', join(fixture, 'base'), '-o', out], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
    assert.equal(r.code, 0, r.stderr);
    return out;
  })();
  return basePromise;
}

/** A copy of the base image with a change planted by `plant`. */
async function planted(plant: (l: Layout) => Promise<void>): Promise<{ base: Layout; copy: Layout }> {
  const src = await base();
  const dir = await scratch('plant');
  const baseLayout = await Layout.copy(src, join(dir, 'untouched.oci'));
  const copy = await Layout.copy(src, join(dir, 'planted.oci'));
  await plant(copy);
  await copy.save();
  return { base: baseLayout, copy };
}

async function diffJson(a: string, b: string): Promise<{ code: number | null; diff: ImageDiff }> {
  const r = await runCli(['diff', a, b, '--json']);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, diff: JSON.parse(r.stdout.toString()) as ImageDiff };
}

function layerInfo(l: Layout, i: number): LayerInfo {
  const d = l.manifest.layers[i];
  return { index: i, digest: d.digest, diffId: l.config.rootfs.diff_ids[i], size: d.size, mediaType: d.mediaType };
}

/** Entries in layer `i` of each image, counted from the raw tar. */
async function entryCounts(a: Layout, b: Layout, i: number): Promise<{ a: number; b: number }> {
  return { a: rawEntries(await a.layerTar(i)).length, b: rawEntries(await b.layerTar(i)).length };
}

/** The parts of a diff every planted test checks: nothing reported but the planted change. */
function assertOnly(diff: ImageDiff, expect: { manifest?: unknown[]; config?: unknown[]; layers?: unknown[] }): void {
  assert.equal(diff.identical, false);
  assert.deepEqual(diff.manifest, expect.manifest ?? []);
  assert.deepEqual(diff.config, expect.config ?? []);
  assert.deepEqual(diff.layers, expect.layers ?? []);
  assert.deepEqual(diff.notes, []);
}

test('two copies of one image: no difference, exit 0', async () => {
  const { base: a, copy: b } = await planted(async () => {});
  const r = await runCli(['diff', a.dir, b.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /^identical: same manifest digest$/m);
  const { diff } = await diffJson(a.dir, b.dir);
  assert.equal(diff.identical, true);
  assert.deepEqual([diff.manifest, diff.config, diff.layers], [[], [], []]);
  // Identical only once every blob was read: the notes say so.
  const n = a.manifest.layers.length;
  assert.deepEqual(diff.notes, [`oci:${a.dir}: every layer blob read and hashed (${n} layer(s))`, `oci:${b.dir}: every layer blob read and hashed (${n} layer(s))`]);
});

test('one changed byte in one file: that file, field content, with both sha256s', async () => {
  const original = await readFile(join(fixture, 'store/0c6kzph7l0dcbyr5hj2vvj7yhgzgz1zr-tool-1.0/share/doc/tool/README'));
  const changed = Buffer.from(original);
  changed[5] = changed[5]! ^ 0x20; // "tool: prints" → "tool: Prints"
  const { base: a, copy: b } = await planted(async (l) => {
    const tar = await l.layerTar(0);
    const e = findEntry(tar, readmePath);
    tar[e.data + 5] = tar[e.data + 5]! ^ 0x20;
    await l.setLayer(0, tar);
  });
  const { code, diff } = await diffJson(a.dir, b.dir);
  assert.equal(code, 1);
  assertOnly(diff, {
    layers: [
      {
        change: 'content',
        a: layerInfo(a, 0),
        b: layerInfo(b, 0),
        descriptor: [],
        entries: await entryCounts(a, b, 0),
        files: [{ path: readmePath, change: 'changed', fields: [{ path: 'content', a: sha(original), b: sha(changed) }] }],
        fieldCounts: { content: 1 },
        notes: [],
      },
    ],
  });
  const human = (await runCli(['diff', a.dir, b.dir])).stdout.toString();
  assert.match(human, /^ {2}~ layer 1: content differs: diff_id sha256:\w{12}… → sha256:\w{12}…$/m);
  assert.ok(human.includes(`      ~ ${readmePath}: content: sha256:${sha(original).slice(0, 12)}… → sha256:${sha(changed).slice(0, 12)}…\n`), human);
});

test('a mode change: that file, field mode, old and new bits', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    const tar = await l.layerTar(0);
    setOctalField(tar, findEntry(tar, `${toolPath}/bin/tool`), ...FIELD.mode, 0o755);
    await l.setLayer(0, tar);
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assertOnly(diff, {
    layers: [
      {
        change: 'content',
        a: layerInfo(a, 0),
        b: layerInfo(b, 0),
        descriptor: [],
        entries: await entryCounts(a, b, 0),
        files: [{ path: `${toolPath}/bin/tool`, change: 'changed', fields: [{ path: 'mode', a: 0o555, b: 0o755 }] }],
        fieldCounts: { mode: 1 },
        notes: [],
      },
    ],
  });
  assert.match((await runCli(['diff', a.dir, b.dir])).stdout.toString(), /~ nix\/store\/\S+-tool-1\.0\/bin\/tool: mode: 0555 → 0755$/m);
});

test('an mtime change: that file, field mtime, in seconds', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    const tar = await l.layerTar(1);
    setOctalField(tar, findEntry(tar, 'etc/motd'), ...FIELD.mtime, 1_700_000_000);
    await l.setLayer(1, tar);
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assertOnly(diff, {
    layers: [
      {
        change: 'content',
        a: layerInfo(a, 1),
        b: layerInfo(b, 1),
        descriptor: [],
        entries: await entryCounts(a, b, 1),
        files: [{ path: 'etc/motd', change: 'changed', fields: [{ path: 'mtime', a: 1, b: 1_700_000_000 }] }],
        fieldCounts: { mtime: 1 },
        notes: [],
      },
    ],
  });
  assert.match((await runCli(['diff', a.dir, b.dir])).stdout.toString(), /~ etc\/motd: mtime: 1 \(1970-01-01T00:00:01Z\) → 1700000000 \(2023-11-14T22:13:20Z\)$/m);
});

test('a reordered tar entry: no file differs, the order does, from the first displaced entry', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    const tar = await l.layerTar(1);
    await l.setLayer(1, swapAdjacent(tar, findEntry(tar, 'etc/motd'), findEntry(tar, 'share')));
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assertOnly(diff, {
    layers: [
      {
        change: 'content',
        a: layerInfo(a, 1),
        b: layerInfo(b, 1),
        descriptor: [],
        entries: await entryCounts(a, b, 1),
        files: [],
        fieldCounts: {},
        // bin, bin/tool, etc, then etc/motd in a where b has share.
        order: { position: 3, a: 'etc/motd', b: 'share', displaced: 2 },
        notes: [],
      },
    ],
  });
  assert.match((await runCli(['diff', a.dir, b.dir])).stdout.toString(), /order: the same entries in another order; first at entry 4: a has etc\/motd, b has share \(2 entries displaced\)/);
});

test('a PAX record added to one entry: that file, field pax.<key>', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    const tar = await l.layerTar(1);
    await l.setLayer(1, insertPax(tar, findEntry(tar, 'etc/motd'), { 'SCHILY.xattr.user.note': 'planted' }));
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assertOnly(diff, {
    layers: [
      {
        change: 'content',
        a: layerInfo(a, 1),
        b: layerInfo(b, 1),
        descriptor: [],
        entries: await entryCounts(a, b, 1),
        files: [{ path: 'etc/motd', change: 'changed', fields: [{ path: 'pax.SCHILY.xattr.user.note', b: 'planted' }] }],
        fieldCounts: { pax: 1 },
        notes: [],
      },
    ],
  });
});

test('header bytes that no reader shows: GNU magic is the tar format, other number padding is the header bytes', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    const tar = await l.layerTar(1);
    setHeaderBytes(tar, findEntry(tar, 'etc'), 257, 'ustar  \0');
    // Mode 0755 written as "000755 \0" instead of "0000755\0": the same value to any reader.
    setHeaderBytes(tar, findEntry(tar, 'share'), 100, '000755 \0');
    await l.setLayer(1, tar);
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assert.equal(diff.layers.length, 1);
  const layer = diff.layers[0]!;
  assert.ok(layer.change === 'content');
  assert.deepEqual(layer.fieldCounts, { 'tar format': 1, 'header bytes': 1 });
  assert.deepEqual(layer.files.map((f) => [f.path, f.change === 'changed' ? f.fields.map((x) => [x.path, x.path === 'tar format' ? [x.a, x.b] : typeof x.a]) : f.change]), [
    ['etc', [['tar format', ['ustar', 'gnu']]]],
    ['share', [['header bytes', 'string']]],
  ]);
  assert.deepEqual(layer.notes, []);
});

test('the same tar compressed at another level: only the compression differs, same diff_id, gzip header fields named', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    await l.setLayer(0, await l.layerTar(0), 9);
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assert.equal(layerInfo(a, 0).diffId, layerInfo(b, 0).diffId);
  assertOnly(diff, {
    layers: [
      {
        change: 'compression',
        a: layerInfo(a, 0),
        b: layerInfo(b, 0),
        descriptor: [],
        // imgbuild writes OS 255 and XFL 0; zlib's gzip at level 9 writes OS 3 (Unix) and XFL 2 (slowest).
        gzipHeader: [
          { path: 'gzip.os', a: 255, b: 3 },
          { path: 'gzip.xfl', a: 0, b: 2 },
        ],
      },
    ],
  });
  assert.match((await runCli(['diff', a.dir, b.dir])).stdout.toString(), /~ layer 1: only the compression differs: same tar \(diff_id sha256:\w{12}…\)/);
});

test('a changed Env entry: that variable, old and new value, no layer', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    l.config.config.Env = ['PATH=/bin', 'LANG=en_US.UTF-8'];
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assertOnly(diff, { config: [{ path: 'config.Env[LANG]', a: 'C.UTF-8', b: 'en_US.UTF-8' }] });
  assert.match((await runCli(['diff', a.dir, b.dir])).stdout.toString(), /^ {2}config\.Env\[LANG\]: "C\.UTF-8" → "en_US\.UTF-8"$/m);
});

test('an extra layer: added on top, with its history entry, the others untouched', async () => {
  const { base: a, copy: b } = await planted(async (l) => {
    await l.appendLayer(singleFileTar('extra.txt', 'one more layer\n'));
  });
  const { diff } = await diffJson(a.dir, b.dir);
  assertOnly(diff, {
    config: [{ path: 'history[2]', b: { created: '1970-01-01T00:00:01Z', created_by: 'test: extra layer' } }],
    layers: [{ change: 'added', b: layerInfo(b, 2) }],
  });
  assert.match((await runCli(['diff', a.dir, b.dir])).stdout.toString(), /^ {2}\+ layer 3 added: sha256:[0-9a-f]{64} \(\d+ B, diff_id sha256:\w{12}…\)$/m);
});

test('skopeo copy oci → oci: no difference', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const src = await base();
  const dir = await scratch('skopeo');
  await tool('skopeo', ['copy', '--quiet', `oci:${src}:1`, `oci:${join(dir, 'copy.oci')}:1`]);
  const r = await runCli(['diff', src, `oci:${join(dir, 'copy.oci')}:1`]);
  assert.equal(r.code, 0, r.stdout.toString() + r.stderr);
  assert.match(r.stdout.toString(), /^identical: same manifest digest$/m);
});

test('skopeo copy oci → registry → oci: no difference; and none between the layout and the registry image itself', async (t) => {
  if (!needTool(t, 'skopeo', 'docker-registry')) return;
  const src = await base();
  const dir = await scratch('roundtrip');
  const registry = await startRegistry();
  try {
    const ref = `docker://${registry.host}/repro/base:1`;
    await tool('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${src}:1`, ref]);
    await tool('skopeo', ['copy', '--quiet', '--src-tls-verify=false', ref, `oci:${join(dir, 'back.oci')}:1`]);
    const r = await runCli(['diff', src, join(dir, 'back.oci')]);
    assert.equal(r.code, 0, r.stdout.toString() + r.stderr);
    assert.match(r.stdout.toString(), /^identical: same manifest digest$/m);

    // Straight from the registry (our registry client), by tag: still nothing.
    const remote = await runCli(['diff', src, ref, '--insecure-registry', registry.host]);
    assert.equal(remote.code, 0, remote.stdout.toString() + remote.stderr);
    assert.match(remote.stdout.toString(), new RegExp(`^b: docker://${registry.host}/repro/base:1  sha256:`, 'm'));

    // A changed image pushed next to it: diff streams the registry's layers and finds the byte.
    const changed = await Layout.copy(src, join(dir, 'changed.oci'));
    const tar = await changed.layerTar(0);
    const e = findEntry(tar, readmePath);
    tar[e.data] = tar[e.data]! ^ 1;
    await changed.setLayer(0, tar);
    await changed.save();
    await tool('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${changed.dir}:1`, `docker://${registry.host}/repro/base:changed`]);
    const d = await runCli(['diff', src, `${registry.host}/repro/base:changed`, '--insecure-registry', registry.host, '--json']);
    assert.equal(d.code, 1, d.stderr);
    const diff = JSON.parse(d.stdout.toString()) as ImageDiff;
    assert.deepEqual(
      diff.layers.map((l) => (l.change === 'content' ? l.files.map((f) => [f.path, f.change === 'changed' ? f.fields.map((x) => x.path) : f.change]) : l.change)),
      [[[readmePath, ['content']]]],
    );
  } finally {
    await registry.stop();
  }
});

test('diff with one image and verify with an unknown option are usage errors: exit 2, not "they differ"', async () => {
  const diff = await runCli(['diff', '/nonexistent/a.oci']);
  assert.equal(diff.code, 2);
  assert.equal(diff.stderr, "error[usage]: missing required argument 'b'\nhint: see imgbuild diff --help\n");
  const verify = await runCli(['verify', '--no-such-option', 'x']);
  assert.equal(verify.code, 2);
  assert.equal(verify.stderr, "error[usage]: unknown option '--no-such-option'\nhint: see imgbuild verify --help\n");
  assert.equal((await runCli(['diff', '--help'])).code, 0);
});

test('an image that does not exist: a clear error naming it, exit 2', async () => {
  const r = await runCli(['diff', '/nonexistent/a.oci', '/nonexistent/b.oci']);
  assert.equal(r.code, 2, 'an error, not "differs"');
  assert.match(r.stderr, /^error\[image-ref\]: \/nonexistent\/a\.oci: no such file or directory$/m);
});
