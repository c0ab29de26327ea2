// The architectures of a store path's ELF files, per source (issue 13, "the architecture follows
// the content", store level): the directory store sees the headers during its reference scan and
// keeps them in the scan record; closure-file (and Nix, see store-architectures-nix.test.ts) paths
// get a header-only walk, cached per path; a closure merges them; architectureOfClosure decides.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '../builder/errors.js';
import { architectureOfClosure, closureArchitectures } from '../builder/store/closure-architectures.js';
import { ClosureFileStoreSource } from '../builder/store/closure-file-source.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { EmptyStoreSource } from '../builder/store/empty-source.js';
import { dumpNar, NAR_CHUNK, narHashOf, readNarTree } from '../builder/store/nar.js';
import { openStoreSource } from '../builder/store/open.js';
import { walkArchitectures } from '../builder/store/path-architectures.js';
import { readScanRecords, replaceScanRecords } from '../builder/store/scan-cache.js';
import type { StoreSource } from '../builder/store/types.js';
import type { ClosureGraph } from '../layering/types.js';
import { AMD64, ARM64, elfFile, elfHeader } from './helpers/elf.js';
import { opensUnder } from './helpers/opens.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';

const SD = '/nix/store';
const AMD = `${'a'.repeat(32)}-busybox-amd64`;
const ARM = `${'b'.repeat(32)}-tool-arm64`;
const DOC = `${'c'.repeat(32)}-doc`;

/** Writes `files` (relative path → bytes, or `{ symlink }`) under `dir`. */
async function put(dir: string, files: Record<string, string | Buffer | { symlink: string }>): Promise<void> {
  for (const [rel, v] of Object.entries(files)) {
    const p = join(dir, rel);
    await mkdir(join(p, '..'), { recursive: true });
    if (typeof v === 'object' && 'symlink' in v) await symlink(v.symlink, p);
    else await writeFile(p, v);
  }
}

/** The amd64 binary: this machine's busybox-static when it is there (a real ELF file), else a header and padding. */
const amd64Binary = (): Buffer => (existsSync('/bin/busybox') && process.arch === 'x64' ? readFileSync('/bin/busybox') : elfFile(AMD64, 100_000));

/** A directory store: an amd64 path, an arm64 path (a fake header and padding), a path with no ELF file. */
async function store(): Promise<{ root: string; dir: string; cacheDir: string }> {
  const root = await tempDir('imgbuild-arch-');
  const dir = join(root, 'store');
  await put(join(dir, AMD), { 'bin/busybox': amd64Binary(), 'bin/sh': { symlink: 'busybox' } });
  await put(join(dir, ARM), { 'lib/tool': elfFile(ARM64, 10_000), 'share/readme': 'not ELF\n' });
  await put(join(dir, DOC), { 'share/doc/index.html': '<p>docs</p>\n'.repeat(10) });
  await pastRacyWindow();
  return { root, dir, cacheDir: join(root, 'cache', 'scan') };
}

const scanRecords = async (cacheDir: string) => readScanRecords(cacheDir) as unknown as Record<string, unknown>[];

// ---- the header walk (Nix store and closure-file sources)

test('the header walk names each architecture once, by its first file in NAR order (names sorted by bytes)', async () => {
  const dir = join(await tempDir(), 'p');
  await put(dir, { 'lib/x': elfFile(ARM64), 'bin/z': elfFile(AMD64), 'bin/Z': elfFile(AMD64), 'bin/a.txt': 'text' });
  assert.deepEqual(walkArchitectures(dir), { amd64: 'bin/Z', arm64: 'lib/x' });
});

test('the header walk ignores what is not a loadable ELF file for a Go architecture: short files with the magic, scripts, unknown machines, symlinks', async () => {
  const dir = join(await tempDir(), 'p');
  await put(dir, {
    short: elfHeader({ bits: 32, endian: 'little', machine: 3 }).subarray(0, 51),
    exact: elfHeader({ bits: 32, endian: 'little', machine: 3 }),
    script: '#!/bin/sh\necho hello, this is a shell script that is long enough\n',
    'bpf.o': elfFile({ bits: 64, endian: 'little', machine: 247, type: 1 }),
    'link-to-arm': { symlink: 'elsewhere/arm' },
    'empty': '',
  });
  await put(join(dir, '..'), { 'elsewhere/arm': elfFile(ARM64) });
  assert.deepEqual(walkArchitectures(dir), { 386: 'exact' });
});

test('a store path that is one ELF file has it at the empty relative path', async () => {
  const file = join(await tempDir(), 'f');
  await writeFile(file, elfFile(ARM64));
  assert.deepEqual(walkArchitectures(file), { arm64: '' });
});

test('the header walk of a missing path is a StoreError naming it', async () => {
  const missing = join(await tempDir(), 'gone');
  assert.throws(() => walkArchitectures(missing), (e: unknown) => e instanceof StoreError && e.message.startsWith(`cannot read ${missing}: `));
});

// ---- the directory store: seen by the reference scan

test('a directory store: each path\'s architectures come from its scan', async () => {
  const s = await store();
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  await src.closure([`${SD}/${AMD}`, `${SD}/${ARM}`, `${SD}/${DOC}`]);
  assert.deepEqual(await src.pathArchitectures(`${SD}/${AMD}`), { amd64: 'bin/busybox' });
  assert.deepEqual(await src.pathArchitectures(`${SD}/${ARM}`), { arm64: 'lib/tool' });
  assert.deepEqual(await src.pathArchitectures(`${SD}/${DOC}`), {});
  assert.deepEqual(src.stats, { scanned: 3, cached: 0 });
});

test('the NAR dump gives the sink the same chunks with a head sink as without', async () => {
  const s = await store();
  const path = join(s.dir, AMD);
  const tree = await readNarTree(path);
  const dump = async (withHeads: boolean) => {
    const chunks: string[] = [];
    const heads = { bytes: 64, minSize: 52, take: () => undefined };
    await dumpNar(path, tree, (c) => chunks.push(c.toString('hex')), withHeads ? heads : undefined);
    return chunks;
  };
  assert.deepEqual(await dump(true), await dump(false));
});

test('the scan reads a header split between two NAR chunks (the head is copied as it is read)', async () => {
  const dir = join(await tempDir(), 'store');
  const path = join(dir, ARM);
  // `a` (filler) comes before `b` (the ELF file) in the NAR; size `a` so that b's contents start 8 bytes before a chunk ends.
  const nar = async () => {
    const parts: Buffer[] = [];
    await dumpNar(path, await readNarTree(path), (c) => parts.push(Buffer.from(c)));
    return Buffer.concat(parts);
  };
  await put(path, { a: Buffer.alloc(8, 'x'), b: elfFile(ARM64) });
  const start = (await nar()).indexOf(elfHeader(ARM64).subarray(0, 20));
  await put(path, { a: Buffer.alloc(8 + ((((NAR_CHUNK - 8 - start) % NAR_CHUNK) + NAR_CHUNK) % NAR_CHUNK), 'x') });
  assert.equal((await nar()).indexOf(elfHeader(ARM64).subarray(0, 20)) % NAR_CHUNK, NAR_CHUNK - 8, 'the header straddles a chunk boundary');
  const src = new DirectoryStoreSource(dir, SD, { cacheDir: false });
  assert.deepEqual(await src.pathArchitectures(`${SD}/${ARM}`), { arm64: 'b' });
});

test('a head sink with a magic is given the heads that start with it, as without one, also when a header straddles two chunks', async () => {
  const dir = join(await tempDir(), 'store');
  const path = join(dir, ARM);
  const notElf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x58]), Buffer.alloc(60, 1)]);
  const heads = async (magic?: Uint8Array) => {
    const seen: string[] = [];
    const sink = { bytes: 64, minSize: 52, ...(magic ? { magic } : {}), take: (p: Buffer, head: Buffer) => void seen.push(`${p.toString()}:${head.toString('hex')}`) };
    await dumpNar(path, await readNarTree(path), () => undefined, sink);
    return seen;
  };
  const elfOnly = (seen: string[]) => seen.filter((s) => s.split(':')[1]!.startsWith('7f454c46'));
  const check = async () => {
    const all = await heads();
    const some = await heads(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46));
    assert.deepEqual(some, elfOnly(all));
    assert.deepEqual(some.map((s) => s.split(':')[0]), [join(path, 'b')]);
    assert.equal(all.length, 3);
  };
  await put(path, { a: Buffer.alloc(104, 'x'), b: elfFile(ARM64), c: notElf });
  await check();
  // b's contents now start 8 bytes before a chunk ends (contents start 8-aligned): the magic is judged on that first piece.
  const nar = async () => {
    const parts: Buffer[] = [];
    await dumpNar(path, await readNarTree(path), (c) => parts.push(Buffer.from(c)));
    return Buffer.concat(parts);
  };
  const start = (await nar()).indexOf(elfHeader(ARM64).subarray(0, 20));
  await put(path, { a: Buffer.alloc(104 + ((((NAR_CHUNK - 8 - start) % NAR_CHUNK) + NAR_CHUNK) % NAR_CHUNK), 'x') });
  assert.equal((await nar()).indexOf(elfHeader(ARM64).subarray(0, 20)) % NAR_CHUNK, NAR_CHUNK - 8, 'the header straddles a chunk boundary');
  await check();
});

test('the scan and the header walk agree on a path', async () => {
  const s = await store();
  const dir = join(s.dir, `${'d'.repeat(32)}-mixed`);
  await put(dir, { 'a/z': elfFile(ARM64), 'a/Y': elfFile(AMD64), 'b/x': elfFile({ bits: 64, endian: 'big', machine: 22 }), tiny: elfHeader(ARM64).subarray(0, 60), 'c/d': elfFile(AMD64) });
  const src = new DirectoryStoreSource(s.dir, SD, { cacheDir: false });
  const scanned = await src.pathArchitectures(`${SD}/${'d'.repeat(32)}-mixed`);
  assert.deepEqual(scanned, { arm64: 'a/z', amd64: 'a/Y', s390x: 'b/x' });
  assert.deepEqual(walkArchitectures(dir), scanned);
});

test('the scan record carries the architectures (scan record version 3 on; 7 now)', async () => {
  const s = await store();
  await new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cacheDir }).closure([`${SD}/${AMD}`, `${SD}/${ARM}`]);
  const records = await scanRecords(s.cacheDir);
  assert.deepEqual(
    records.map((r) => [r.v, String(r.fsPath).slice(s.dir.length + 1), r.architectures]).sort(),
    [
      [7, AMD, { amd64: 'bin/busybox' }],
      [7, ARM, { arm64: 'lib/tool' }],
    ],
  );
});

test('a warm run takes the architectures from the scan records and opens no store file', async () => {
  const s = await store();
  const paths = [`${SD}/${AMD}`, `${SD}/${ARM}`, `${SD}/${DOC}`];
  const cold = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cacheDir });
  const closure = await cold.closure(paths);
  const expected = await closureArchitectures(cold, closure);
  // The spy sees the scan's opens when there is no record.
  const control = await opensUnder(s.dir, async () => new DirectoryStoreSource(s.dir, SD, { cacheDir: false }).pathArchitectures(paths[0]!));
  assert.ok(control.opened.some((o) => o.endsWith('/bin/busybox')), control.opened.join('\n'));

  const { result, opened } = await opensUnder(s.dir, async () => {
    const warm = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cacheDir });
    const found = await closureArchitectures(warm, await warm.closure(paths));
    return { found, stats: warm.stats };
  });
  assert.deepEqual(opened, []);
  assert.deepEqual(result.stats, { scanned: 0, cached: 3 });
  assert.deepEqual(result.found, expected);
  assert.deepEqual(expected, { amd64: `${SD}/${AMD}/bin/busybox`, arm64: `${SD}/${ARM}/lib/tool` });
});

test('a version 2 scan record (before architectures) is a miss: the path is read once more and its record becomes the current version', async () => {
  const s = await store();
  const path = `${SD}/${AMD}`;
  await new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cacheDir }).closure([path]);
  const [record] = readScanRecords(s.cacheDir);
  const { architectures: _, ...v2 } = { ...record!, v: 2 };
  replaceScanRecords(s.cacheDir, [v2]);

  const again = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cacheDir });
  assert.deepEqual(await again.pathArchitectures(path), { amd64: 'bin/busybox' });
  assert.deepEqual(again.stats, { scanned: 1, cached: 0 });
  // The new record is version 7 (the version 2 one stays beside it, never answering, until packs are merged).
  assert.deepEqual(readScanRecords(s.cacheDir).map((r) => r.v), [2, 7]);
  const third = new DirectoryStoreSource(s.dir, SD, { cacheDir: s.cacheDir });
  await third.pathArchitectures(path);
  assert.deepEqual(third.stats, { scanned: 0, cached: 1 });
});

// ---- closure files: a header walk, cached by narHash or stat fingerprint

/** A `nix path-info --json` closure file for the store's paths (no references), with NAR hashes when `hashes`. */
async function closureFile(s: { root: string; dir: string }, hashes: boolean): Promise<string> {
  const file = join(s.root, hashes ? 'closure.json' : 'closure.graph');
  const names = [AMD, ARM, DOC];
  if (hashes) {
    await writeFile(file, JSON.stringify(await Promise.all(names.map(async (n) => ({ path: `${SD}/${n}`, ...(await narHashOf(join(s.dir, n))), references: [] })))));
  } else {
    // exportReferencesGraph text: path, deriver, count, references; no hash, no size.
    await writeFile(file, names.map((n) => `${SD}/${n}\n\n0\n`).join(''));
  }
  return file;
}

test('a closure file\'s paths are walked for ELF headers', async () => {
  const s = await store();
  const src = await ClosureFileStoreSource.open({ closureFile: await closureFile(s, true), dir: s.dir });
  const closure = await src.closure([]);
  assert.deepEqual(await closureArchitectures(src, closure), { amd64: `${SD}/${AMD}/bin/busybox`, arm64: `${SD}/${ARM}/lib/tool` });
});

test('with the narHash a closure file gives, checked by --verify-store, a path is walked once: a copy of the store elsewhere opens no file for it', async () => {
  const s = await store();
  const closure = await closureFile(s, true);
  const first = await openStoreSource({ kind: 'closure-file', closureFile: closure, dir: s.dir, cacheDir: s.cacheDir, verify: true });
  await first.closure([`${SD}/${AMD}`]);
  assert.deepEqual(await first.pathArchitectures!(`${SD}/${AMD}`), { amd64: 'bin/busybox' });
  assert.equal((await readdir(s.cacheDir)).filter((f) => /^elf-[0-9a-f]{64}\.json$/.test(f)).length, 1);

  const copy = join(s.root, 'copy');
  await cp(s.dir, copy, { recursive: true, verbatimSymlinks: true });
  const second = await openStoreSource({ kind: 'closure-file', closureFile: closure, dir: copy, cacheDir: s.cacheDir, verify: true });
  await second.closure([`${SD}/${AMD}`]);
  const { result, opened } = await opensUnder(copy, () => second.pathArchitectures!(`${SD}/${AMD}`));
  assert.deepEqual(opened, []);
  assert.deepEqual(result, { amd64: 'bin/busybox' });
});

test('a narHash not checked does not key the ELF walk: files changed beside an unchanged closure file give their new architecture, warm as cold', async () => {
  const s = await store();
  const closure = await closureFile(s, true);
  const open = (cacheDir: string | false) => ClosureFileStoreSource.open({ closureFile: closure, dir: s.dir, cacheDir });
  assert.deepEqual(await (await open(s.cacheDir)).pathArchitectures(`${SD}/${AMD}`), { amd64: 'bin/busybox' });
  // The header's machine rewritten in place (same size): the closure file's narHash no longer holds, and is not checked.
  const busybox = join(s.dir, AMD, 'bin/busybox');
  const bytes = readFileSync(busybox);
  elfHeader(ARM64).copy(bytes, 0);
  await writeFile(busybox, bytes);
  const warm = await (await open(s.cacheDir)).pathArchitectures(`${SD}/${AMD}`);
  assert.deepEqual(warm, { arm64: 'bin/busybox' });
  assert.deepEqual(warm, await (await open(false)).pathArchitectures(`${SD}/${AMD}`), 'a cold walk');
});

test('an ELF record damaged on disk (another architecture named, still JSON) is not used: the path is walked again', async () => {
  const s = await store();
  const closure = await closureFile(s, true);
  const open = () => openStoreSource({ kind: 'closure-file', closureFile: closure, dir: s.dir, cacheDir: s.cacheDir });
  assert.deepEqual(await (await open()).pathArchitectures!(`${SD}/${AMD}`), { amd64: 'bin/busybox' });
  const [name] = (await readdir(s.cacheDir)).filter((f) => /^elf-[0-9a-f]{64}\.json$/.test(f));
  const file = join(s.cacheDir, name!);
  const text = await readFile(file, 'utf8');
  assert.ok(text.includes('"amd64"'));
  await writeFile(file, text.replace('"amd64"', '"arm64"'));
  const { result, opened } = await opensUnder(s.dir, async () => (await open()).pathArchitectures!(`${SD}/${AMD}`));
  assert.deepEqual(result, { amd64: 'bin/busybox' });
  assert.ok(opened.some((o) => o.endsWith('/bin/busybox')), opened.join('\n'));
});

test('without a narHash, a closure file\'s path is keyed on its location and stat fingerprint: unchanged, no file is opened; touched, it is walked again', async () => {
  const s = await store();
  const closure = await closureFile(s, false);
  const open = () => ClosureFileStoreSource.open({ closureFile: closure, dir: s.dir, cacheDir: s.cacheDir });
  await (await open()).pathArchitectures(`${SD}/${ARM}`);
  const unchanged = await opensUnder(s.dir, async () => (await open()).pathArchitectures(`${SD}/${ARM}`));
  assert.deepEqual(unchanged.opened, []);
  assert.deepEqual(unchanged.result, { arm64: 'lib/tool' });

  await utimes(join(s.dir, ARM, 'lib/tool'), new Date(2001, 1, 1), new Date(2001, 1, 1));
  const touched = await opensUnder(s.dir, async () => (await open()).pathArchitectures(`${SD}/${ARM}`));
  assert.ok(touched.opened.some((o) => o.endsWith('/lib/tool')), touched.opened.join('\n'));
});

test('without a cache dir a closure-file source reads and writes no record, and walks again', async () => {
  const s = await store();
  const closure = await closureFile(s, true);
  const open = () => ClosureFileStoreSource.open({ closureFile: closure, dir: s.dir });
  await (await open()).pathArchitectures(`${SD}/${AMD}`);
  const again = await opensUnder('/', async () => (await open()).pathArchitectures(`${SD}/${AMD}`));
  assert.ok(again.opened.includes(`openSync ${s.dir}/${AMD}/bin/busybox`), again.opened.join('\n'));
  assert.deepEqual(again.opened.filter((o) => /elf-[0-9a-f]{64}\.json/.test(o)), []);
});

test('the empty store has no architecture', async () => {
  assert.deepEqual(await new EmptyStoreSource().pathArchitectures(), {});
});

// ---- a closure's architectures

/** A source that answers from a table, and a closure of its paths in the given order. */
function fakeStore(table: Record<string, Record<string, string>>): { store: StoreSource; closure: ClosureGraph } {
  const store: StoreSource = {
    storeDir: SD,
    description: 'fake',
    fsPath: (p) => p,
    closure: () => Promise.reject(new Error('unused')),
    pathArchitectures: async (p) => table[p]!,
  };
  const paths = Object.keys(table).map((path) => ({ path, narSize: 0, references: [] }));
  return { store, closure: { storeDir: SD, roots: paths.map((p) => p.path), paths } };
}

test('closureArchitectures names, for each architecture, its file in the first path in closure order that has one', async () => {
  const { store, closure } = fakeStore({
    [`${SD}/${AMD}`]: { amd64: 'bin/x' },
    [`${SD}/${ARM}`]: { amd64: 'bin/y', arm64: 'lib/z' },
    [`${SD}/${DOC}`]: { arm64: '' },
  });
  assert.deepEqual(await closureArchitectures(store, closure), { amd64: `${SD}/${AMD}/bin/x`, arm64: `${SD}/${ARM}/lib/z` });
});

test('closureArchitectures of a source that cannot tell is undefined (not "no ELF file")', async () => {
  const { store, closure } = fakeStore({ [`${SD}/${AMD}`]: { amd64: 'bin/x' } });
  delete store.pathArchitectures;
  assert.equal(await closureArchitectures(store, closure), undefined);
});

// ---- which architecture the image has

const refused = (fn: () => unknown, message: string, hint: string, paths: string[]) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof StoreError);
    assert.deepEqual([e.code, e.message, e.hint, e.paths], ['store', message, hint, paths]);
    return true;
  });

const FIXTURES = 'Go and Node packages sometimes ship ELF test fixtures for other machines; leave such files out of the closure';
const amdFile = `${SD}/${AMD}/bin/busybox`;
const armFile = `${SD}/${ARM}/lib/tool`;

test('architectureOfClosure: files of two architectures are refused, naming one file of each, whatever the spec names', () => {
  for (const named of [undefined, 'amd64']) {
    refused(
      () => architectureOfClosure({ arm64: armFile, amd64: amdFile }, named),
      `the closure holds ELF files for 2 architectures, and an image has one: amd64 (${amdFile}), arm64 (${armFile})`,
      `build one image per architecture, each from its own store paths; ${FIXTURES}`,
      [amdFile, armFile],
    );
  }
});

test('architectureOfClosure: no ELF file and no architecture in the spec is refused, saying the spec must name it', () => {
  refused(
    () => architectureOfClosure({}),
    'no ELF file was found in the closure to tell the image\'s architecture, so the spec must name it',
    'set `architecture` in the spec, e.g. `architecture: amd64`',
    [],
  );
});

test('architectureOfClosure: a source that cannot tell and no architecture in the spec is refused', () => {
  refused(
    () => architectureOfClosure(undefined),
    'the store source cannot read the closure\'s ELF headers, so the spec must name the image\'s architecture',
    'set `architecture` in the spec, e.g. `architecture: amd64`',
    [],
  );
});

test('architectureOfClosure: a named architecture the ELF files contradict is refused, naming the file and both architectures', () => {
  refused(
    () => architectureOfClosure({ arm64: armFile }, 'amd64'),
    `the spec names architecture amd64, but ${armFile} is an ELF file for arm64`,
    `set \`architecture: arm64\` in the spec (or leave it out: the ELF files decide), or build from store paths for amd64; ${FIXTURES}`,
    [armFile],
  );
});

test('architectureOfClosure: otherwise the files\' architecture, or the named one', () => {
  assert.deepEqual(
    [
      architectureOfClosure({ arm64: armFile }),
      architectureOfClosure({ arm64: armFile }, 'arm64'),
      architectureOfClosure({}, 'riscv64'),
      architectureOfClosure(undefined, 's390x'),
    ],
    ['arm64', 'arm64', 'riscv64', 's390x'],
  );
});
