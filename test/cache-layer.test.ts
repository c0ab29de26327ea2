// The layer cache: a layer is a function of its store paths and the writer options, so a rebuild
// takes unchanged layers from the cache without reading a single store file, and an edit in a
// directory store rebuilds exactly the layer that holds the edited path.
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import type { BuildEvent } from '../builder/build/context.js';
import { layerReason } from '../builder/build/assemble.js';
import { writeOciLayout } from '../builder/transports/oci-layout.js';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { entriesKey, keyedStorePaths, LAYER_FORMAT_VERSION, storeLayerKey, type KeyedPath } from '../builder/cache/layer-key.js';
import type { LayerWriteOptions } from '../builder/layer/types.js';
import { loadSpec } from '../builder/spec/load.js';
import { ClosureFileStoreSource } from '../builder/store/closure-file-source.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { narHashOf } from '../builder/store/nar.js';
import type { StoreSource } from '../builder/store/types.js';
import { opensUnder } from './helpers/opens.js';
import { tempDir } from './helpers/tmp.js';
import { writeKeepingTimes } from './helpers/store-changes.js';

const SD = '/nix/store';
const APP = `${'a'.repeat(32)}-app-1.0`;
const LIB = `${'b'.repeat(32)}-lib-2.1`;
const DATA = `${'c'.repeat(32)}-data`;

interface Fixture {
  root: string;
  storeDir: string;
  specFile: string;
  cacheRoot: string;
}

/** A directory store of three paths (app → lib, data alone) and a spec naming app and data. */
async function fixture(): Promise<Fixture> {
  const root = await tempDir('imgbuild-cache-');
  const storeDir = join(root, 'store');
  const put = async (rel: string, content: string | Buffer) => {
    await mkdir(join(storeDir, rel, '..'), { recursive: true });
    await writeFile(join(storeDir, rel), content);
  };
  await put(`${APP}/bin/app`, `#!/bin/sh\nexec ${SD}/${LIB}/lib/run\n`);
  await put(`${LIB}/lib/run`, 'library code\n'.repeat(2000));
  await put(`${DATA}/share/table`, Buffer.alloc(300_000, 'x'));
  const specFile = join(root, 'image.json');
  await writeFile(
    specFile,
    JSON.stringify({ name: 'cache-test/app', architecture: 'amd64', tag: 'v1', store: { dir: storeDir, storeDir: SD }, contents: [`${SD}/${APP}`, `${SD}/${DATA}`], config: { Cmd: [`${SD}/${APP}/bin/app`] } }),
  );
  return { root, storeDir, specFile, cacheRoot: join(root, 'cache') };
}

interface Built {
  manifest: string;
  /** Per layer: its first store path's name (or 'customisation') → whether its blob came from the cache. */
  cached: Map<string, boolean>;
  /** Per layer: written, cached or deferred (a record without its blob). */
  origins: Map<string, string>;
  digests: Map<string, string>;
  image: import('../builder/model/image.js').Image;
}

async function build(f: Fixture, cacheRoot = f.cacheRoot, source?: StoreSource): Promise<Built> {
  const spec = await loadSpec(f.specFile, {});
  // A fresh source each time, as a new process would have: nothing remembered in memory.
  const store = source ?? new DirectoryStoreSource(f.storeDir, SD, { cacheDir: join(cacheRoot, 'scan') });
  const events: BuildEvent[] = [];
  const { image } = await buildImage(spec, { store, cacheDir: cacheRoot, onEvent: (e) => events.push(e) });
  const name = (i: number) => {
    const { storePaths } = layerReason(image.layers[i]!);
    return storePaths.length > 0 ? storePaths.map((p) => p.slice(SD.length + 1)).join('+') : 'customisation';
  };
  const cached = new Map<string, boolean>();
  const origins = new Map<string, string>();
  const digests = new Map<string, string>();
  for (const e of events) {
    if (e.phase !== 'layer-done') continue;
    cached.set(name(e.index), e.origin === 'cached');
    origins.set(name(e.index), e.origin);
    digests.set(name(e.index), e.digest);
  }
  return { manifest: image.descriptor.digest, cached, origins, digests, image };
}

const all = (b: Built, v: boolean) => [...b.cached.values()].every((c) => c === v);

test('a rebuild with nothing changed takes every layer from the cache, opens no store file, and gives the same image', async () => {
  const f = await fixture();
  const cold = await build(f);
  assert.equal(cold.cached.size, 4, 'app, lib, data and the customisation layer');
  assert.ok(all(cold, false), 'the first build writes every layer');

  // The spy must see opens at all: a build with an empty cache opens every store file.
  const control = await opensUnder(f.storeDir, () => build(f, join(f.root, 'other-cache')));
  assert.ok(control.opened.some((o) => o.endsWith('/lib/run')), control.opened.join('\n'));

  const { result: warm, opened } = await opensUnder(f.storeDir, () => build(f));
  assert.deepEqual(opened, []);
  assert.ok(all(warm, true), JSON.stringify([...warm.cached]));
  assert.equal(warm.manifest, cold.manifest);
  assert.deepEqual([...warm.origins.values()], ['cached', 'cached', 'cached', 'cached']);
});

test('editing a file in place (same size, mtime put back) misses for that path only, and the new layer has the new bytes', async () => {
  const f = await fixture();
  const cold = await build(f);
  writeKeepingTimes(join(f.storeDir, LIB, 'lib/run'), 'LIBRARY CODE\n'.repeat(2000));

  const warm = await build(f);
  assert.deepEqual(
    Object.fromEntries(warm.cached),
    { [APP]: true, [LIB]: false, [DATA]: true, customisation: true },
  );
  assert.notEqual(warm.digests.get(LIB), cold.digests.get(LIB));
  assert.equal(warm.digests.get(APP), cold.digests.get(APP));
  // The same edit written from scratch (no cache) gives that very layer.
  const fresh = await build(f, join(f.root, 'fresh-cache'));
  assert.equal(fresh.digests.get(LIB), warm.digests.get(LIB));
  assert.ok(all(fresh, false));
});

test('a record whose blob was removed gives a layer made from the store only when an output reads it, with the recorded bytes', async () => {
  const f = await fixture();
  const cold = await build(f);
  const digest = cold.digests.get(DATA) as `sha256:${string}`;
  const blobs = new BlobStore(join(f.cacheRoot, 'blobs'));
  await rm(blobs.path(digest));
  const warm = await build(f);
  assert.equal(warm.origins.get(DATA), 'deferred');
  assert.equal(warm.origins.get(APP), 'cached');
  assert.equal(warm.manifest, cold.manifest);
  assert.equal(await blobs.has(digest), false, 'the build itself wrote nothing');
  const out = join(f.root, 'out.oci');
  await writeOciLayout(warm.image, out);
  const written = await readFile(join(out, 'blobs/sha256', digest.slice(7)));
  assert.equal(`sha256:${createHash('sha256').update(written).digest('hex')}`, digest);
});

test('a torn or foreign record is a miss, never an error', async () => {
  const f = await fixture();
  const cold = await build(f);
  const layersDir = join(f.cacheRoot, 'layers');
  const records: string[] = [];
  for (const sub of await readdir(layersDir)) for (const n of await readdir(join(layersDir, sub))) records.push(join(layersDir, sub, n));
  assert.equal(records.length, 4);
  await writeFile(records[0]!, '{"v":1,"key":"');
  const other = JSON.parse(await readFile(records[1]!, 'utf8')) as { key: string };
  await writeFile(records[1]!, JSON.stringify({ ...other, key: '0'.repeat(64) }));
  const warm = await build(f);
  assert.equal([...warm.cached.values()].filter((c) => !c).length, 2);
  assert.equal(warm.manifest, cold.manifest);
});

test('a record without its checksum (an older format) is not used, even with its blob here: the layer is made again and the record rewritten with one', async () => {
  const f = await fixture();
  const cold = await build(f);
  const layersDir = join(f.cacheRoot, 'layers');
  const records: string[] = [];
  for (const sub of (await readdir(layersDir)).sort()) for (const n of (await readdir(join(layersDir, sub))).sort()) records.push(join(layersDir, sub, n));
  const good = await readFile(records[0]!, 'utf8');
  const { sum: _, ...old } = JSON.parse(good) as { sum?: string; blob: { diffId: string } };
  // A wrong diff_id that nothing vouches for: used, it would be built into the config.
  await writeFile(records[0]!, JSON.stringify({ ...old, blob: { ...old.blob, diffId: `sha256:${'0'.repeat(64)}` } }));
  const warm = await build(f);
  assert.equal(warm.manifest, cold.manifest);
  assert.equal([...warm.origins.values()].filter((o) => o === 'written').length, 1);
  assert.equal(await readFile(records[0]!, 'utf8'), good);
});

const opts: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'gzip' };

test('the key covers paths, store dir, compressor, mtime, owner and format version; not the order of paths', async () => {
  const paths = [{ path: `${SD}/${APP}` }, { path: `${SD}/${LIB}` }];
  const k = storeLayerKey(paths, SD, opts);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(storeLayerKey([...paths].reverse(), SD, opts), k);
  const variants = [
    storeLayerKey(paths.slice(1), SD, opts),
    storeLayerKey(paths, '/gnu/store', opts),
    storeLayerKey(paths, SD, { ...opts, compressor: 'none' }),
    storeLayerKey(paths, SD, { ...opts, header: { ...opts.header, mtime: 2 } }),
    storeLayerKey(paths, SD, { ...opts, header: { ...opts.header, uid: 1000 } }),
    storeLayerKey(paths, SD, { ...opts, header: { ...opts.header, gname: 'wheel' } }),
    storeLayerKey([{ ...paths[0]!, fingerprint: 'x' }, paths[1]!], SD, opts),
  ];
  assert.equal(new Set([k, ...variants]).size, variants.length + 1);
  assert.match(LAYER_FORMAT_VERSION, /gzip-blocks-262144/);
});

test('the key is the sha256 of its header and one JSON line per path sorted by path, whatever the paths hold', () => {
  // What the key was before it was written out by hand (issue 19): cached layers keep their keys.
  const reference = (paths: KeyedPath[], storeDir: string, o: LayerWriteOptions) => {
    const h = o.header;
    const head = `store-layer\0${JSON.stringify([LAYER_FORMAT_VERSION, o.compressor, h.mtime, h.uid, h.gid, h.uname, h.gname])}\0${storeDir}\0`;
    const lines = [...paths].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((p) => `${JSON.stringify([p.path, p.fsPath ?? null, p.fingerprint ?? null])}\n`);
    return createHash('sha256').update(head + lines.join('')).digest('hex');
  };
  const odd = ['"q"', 'back\\slash', 'tab\there', 'caf\u00e9', '\u{1F600}', 'nul\u0000', '\ud800'];
  const paths: KeyedPath[] = [];
  for (let i = 0; i < 3000; i++) {
    const path = `${SD}/${String(i * 7919 % 3000).padStart(5, '0')}-p${i % 97 === 0 ? odd[i % odd.length] : ''}`;
    paths.push(i % 3 === 0 ? { path } : i % 3 === 1 ? { path, fingerprint: `content:${i}` } : { path, fsPath: `/ci/store/${odd[i % odd.length]}${i}`, fingerprint: `${i}` });
  }
  assert.equal(storeLayerKey(paths, SD, opts), reference(paths, SD, opts));
  const sorted = [...paths].sort((a, b) => (a.path < b.path ? -1 : 1));
  assert.equal(storeLayerKey(sorted, '/gnu/"store"', opts), reference(paths, '/gnu/"store"', opts));
});

test('a directory store keys each path by its content: a copy elsewhere with new file times keeps the key; other bytes or a setuid bit change it', async () => {
  const f = await fixture();
  const keyIn = async (storeDir: string) => (await keyedStorePaths(new DirectoryStoreSource(storeDir, SD, { cacheDir: false }), [`${SD}/${APP}`]))[0]!;
  const a = await keyIn(f.storeDir);
  assert.deepEqual(Object.keys(a), ['path', 'fingerprint']);
  assert.match(a.fingerprint!, /^content:[0-9a-f]{64}$/);
  // A fresh checkout: another directory, every file with new times and inodes.
  const copy = join(await tempDir('imgbuild-cache-copy-'), 'store');
  await cp(f.storeDir, copy, { recursive: true });
  await utimes(join(copy, APP, 'bin/app'), 1000, 1000);
  assert.deepEqual(await keyIn(copy), a);
  await writeFile(join(copy, APP, 'bin/extra'), '');
  const added = await keyIn(copy);
  assert.notEqual(added.fingerprint, a.fingerprint);
  await rm(join(copy, APP, 'bin/extra'));
  assert.deepEqual(await keyIn(copy), a);
  await chmod(join(copy, APP, 'bin/app'), 0o4755);
  const setuid = await keyIn(copy);
  assert.notEqual(setuid.fingerprint, a.fingerprint);
  assert.equal(new Set([a.fingerprint, added.fingerprint, setuid.fingerprint]).size, 3);
});

test('a build from a fresh copy of the store (other place, new file times) scans it, then takes every store layer from the cache', async () => {
  const f = await fixture();
  const cold = await build(f);
  assert.ok(all(cold, false));
  const copy: Fixture = { ...f, storeDir: join(await tempDir('imgbuild-cache-checkout-'), 'store') };
  await cp(f.storeDir, copy.storeDir, { recursive: true });
  const spec = JSON.parse(await readFile(f.specFile, 'utf8')) as { store: { dir: string } };
  copy.specFile = join(copy.storeDir, '..', 'image.json');
  await writeFile(copy.specFile, JSON.stringify({ ...spec, store: { ...spec.store, dir: copy.storeDir } }));
  const { result: fresh, opened } = await opensUnder(copy.storeDir, () => build(copy, f.cacheRoot));
  // The copy is read once, by the reference scan (its stat fingerprints are new) ...
  assert.ok(opened.length > 0);
  // ... and no layer is written: the same bytes have the same keys.
  assert.deepEqual([...fresh.cached.entries()].filter(([name, c]) => name !== 'customisation' && !c), []);
  assert.equal(fresh.manifest, cold.manifest);
});

test('a closure file\'s store checked with --verify-store is keyed by content: a fresh copy reuses every layer; unchecked, a copy misses', async () => {
  const f = await fixture();
  // As `nix path-info --json --recursive` prints it, with the files' NAR hashes.
  const entry = async (name: string, references: string[]) => ({ path: `${SD}/${name}`, ...(await narHashOf(join(f.storeDir, name))), references });
  const closureFile = join(f.root, 'closure.json');
  await writeFile(closureFile, JSON.stringify([await entry(APP, [`${SD}/${LIB}`]), await entry(LIB, []), await entry(DATA, [])]));
  const from = (dir: string, verify: boolean) => ClosureFileStoreSource.open({ closureFile, dir, storeDir: SD, verify });
  const copyOfStore = async () => {
    const dir = join(await tempDir('imgbuild-cache-closure-copy-'), 'store');
    await cp(f.storeDir, dir, { recursive: true });
    return dir;
  };
  const storeLayersCached = (b: Built) => [...b.cached.entries()].filter(([name]) => name !== 'customisation').map(([, c]) => c);

  const cold = await build(f, f.cacheRoot, await from(f.storeDir, true));
  assert.ok(all(cold, false));
  const fresh = await build(f, f.cacheRoot, await from(await copyOfStore(), true));
  assert.deepEqual(storeLayersCached(fresh), [true, true, true]);
  assert.equal(fresh.manifest, cold.manifest);
  const unchecked = await build(f, f.cacheRoot, await from(await copyOfStore(), false));
  assert.deepEqual(storeLayersCached(unchecked), [false, false, false]);
  assert.equal(unchecked.manifest, cold.manifest);
});

test('an entry-list key changes with in-memory bytes and with a disk file rewritten in place', async () => {
  const dir = await tempDir('imgbuild-cache-entries-');
  const file = join(dir, 'motd');
  await writeFile(file, 'hello');
  const entries = (text: string) => [
    { kind: 'directory' as const, path: 'etc', mode: 0o755 },
    { kind: 'file' as const, path: 'etc/issue', mode: 0o644, content: { from: 'bytes' as const, data: Buffer.from(text) } },
    { kind: 'file' as const, path: 'etc/motd', mode: 0o644, content: { from: 'disk' as const, fsPath: file, size: 5 } },
  ];
  const k = await entriesKey(entries('a'), opts);
  assert.equal(await entriesKey(entries('a'), opts), k);
  assert.notEqual(await entriesKey(entries('b'), opts), k);
  writeKeepingTimes(file, 'HELLO');
  assert.notEqual(await entriesKey(entries('a'), opts), k);
});
