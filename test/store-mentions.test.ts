// A directory store's scan notes the store paths its files name (`<storeDir>/<hash>-`), so that a
// build can warn of one the store lacks; and `store add` (no Nix) gives nix-store --add's path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { nixBase32Encode } from '../builder/store/nix-base32.js';
import { RefScanner } from '../builder/store/ref-scanner.js';
import { readScanRecords, replaceScanRecords } from '../builder/store/scan-cache.js';
import { sourceStorePath, storePathHashPart } from '../builder/store/store-add.js';
import { runCli } from './helpers/cli.js';
import { makeWritable } from './helpers/nix.js';
import { pastRacyWindow } from './helpers/store-changes.js';
import { tempDir } from './helpers/tmp.js';
import { xorshift32 } from './helpers/random.js';

const H1 = '0123456789abcdfghijklmnpqrsvwxyz';
const H2 = 'zyxwvsrqpnmlkjihgfdcba9876543210';

function mentions(chunks: Array<string | Buffer>, storeDir = '/nix/store', targets = new Set<string>([H1])): string[] {
  const s = new RefScanner(targets, 4096, { storeDir });
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return [...(s.mentioned ?? [])].sort();
}

test('a hash part written as a store path is a mention, whether the store has it or not', () => {
  assert.deepEqual(mentions([`#!/nix/store/${H1}-bash/bin/sh\nexec /nix/store/${H2}-app/bin/app\n`]), [H1, H2].sort());
});

test('only `<storeDir>/<32 base32>-` counts: another dir, no dash, a longer run, a shorter one', () => {
  assert.deepEqual(mentions([`/nix/storex/${H2}-a`, ` /nix/store/${H2}x`, ` /nix/store/${H2}a-b`, ` /nix/store/${H2.slice(1)}-c`, ` ${H2}-d`]), []);
  assert.deepEqual(mentions([`/gnu/store/${H2}-guile`], '/gnu/store'), [H2]);
  assert.deepEqual(mentions([`/nix/store/${H2}-guile`], '/gnu/store'), []);
});

test('a mention split at every position between two pushes, or pushed a byte at a time, is found', () => {
  const text = `ab/nix/store/${H2}-name/x`;
  for (let cut = 0; cut <= text.length; cut++) {
    assert.deepEqual(mentions([text.slice(0, cut), text.slice(cut)]), [H2], `cut at ${cut}`);
  }
  assert.deepEqual(mentions([...text]), [H2]);
  for (let cut = 0; cut <= text.length; cut++) {
    for (let cut2 = cut; cut2 <= text.length; cut2 += 7) {
      assert.deepEqual(mentions([text.slice(0, cut), text.slice(cut, cut2), text.slice(cut2)]), [H2], `cuts at ${cut}, ${cut2}`);
    }
  }
});

test('agrees with a regular expression on random text cut into random chunks', () => {
  const next = xorshift32(0x2545f491);
  const rnd = (n: number): number => next() % n;
  const alphabet = '0123456789abcdfghijklmnpqrsvwxyz';
  const hash = () => Array.from({ length: 32 }, () => alphabet[rnd(32)]).join('');
  const pieces = ['/nix/store/', '-', '/', 'a', 'x-', ' ', '\0', '/nix/stor', 'e/'];
  for (let round = 0; round < 200; round++) {
    let text = '';
    while (text.length < 600) text += rnd(3) === 0 ? hash() : pieces[rnd(pieces.length)];
    const expected = new Set<string>();
    for (const m of text.matchAll(/\/nix\/store\/(?=([0-9a-df-np-sv-z]{32})-)/g)) expected.add(m[1]!);
    const chunks: string[] = [];
    for (let i = 0; i < text.length; ) {
      const n = 1 + rnd(70);
      chunks.push(text.slice(i, i + n));
      i += n;
    }
    assert.deepEqual(mentions(chunks), [...expected].sort(), `round ${round}`);
  }
});

test('without a store dir nothing is noted; past the limit, mentions are dropped', () => {
  const s = new RefScanner(new Set(), 4096);
  s.push(Buffer.from(`/nix/store/${H1}-x`));
  assert.equal(s.mentioned, undefined);
  const t = new RefScanner(new Set(), 1, { storeDir: '/nix/store' });
  t.push(Buffer.from(`/nix/store/${H1}-x /nix/store/${H2}-y`));
  assert.equal(t.mentioned, undefined);
});

test("store path of a source: Nix's fingerprint, xor-folded to 20 bytes, in nix-base32", () => {
  // Nix pill 18's worked example: a file whose NAR hash is 2bfef67d..., named myfile, in /nix/store.
  const nar = Buffer.from('2bfef67de873c54551d884fdab3055d84d573e654efa79db3c0d7b98883f9ee3', 'hex');
  assert.equal(sourceStorePath(nar, 'myfile'), '/nix/store/xv2iccirbrvklck36f1g7vldn5v58vck-myfile');
  // The fold by hand: byte i of the sha256 goes into byte i mod 20.
  const fp = `source:sha256:${nar.toString('hex')}:/nix/store:myfile`;
  const d = createHash('sha256').update(fp).digest();
  const folded = Buffer.alloc(20);
  d.forEach((b, i) => (folded[i % 20]! ^= b));
  assert.equal(storePathHashPart(fp), nixBase32Encode(folded));
  assert.throws(() => sourceStorePath(nar, 'has space'), /not|character/);
});

test('a build warns (stderr, exit 0) of a store path a file names that the directory store lacks, warm or cold; not once it is added', async () => {
  const dir = await tempDir('imgbuild-mentions-');
  const cache = join(dir, 'cache');
  const add = async (what: string, store: string) => {
    const r = await runCli(['store', 'add', what, '--store', store]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString().trim();
  };
  mkdirSync(join(dir, 'dep', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'dep', 'bin', 'dep'), 'dep\n');
  // Where the dependency would be: added to another store, so that the store the build reads lacks it.
  const depPath = await add(join(dir, 'dep'), join(dir, 'elsewhere'));
  mkdirSync(join(dir, 'app', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'app', 'bin', 'app'), `#!/bin/sh\nexec ${depPath}/bin/dep\n`, { mode: 0o755 });
  const store = join(dir, 'store');
  const appPath = await add(join(dir, 'app'), store);
  const spec = join(dir, 'image.json');
  writeFileSync(spec, JSON.stringify({ name: 'mentions/app', tag: '1', architecture: 'amd64', store: { dir: './store' }, contents: [appPath] }));
  const warning = `warning: ${appPath} names ${depPath.slice(0, '/nix/store/'.length + 32)}-…, which is not in directory ${store} (as /nix/store): the image will not hold it`;
  for (const run of ['cold', 'warm']) {
    const r = await runCli(['build', spec, '-o', join(dir, `${run}.oci`)], { env: { ...process.env, IMGBUILD_CACHE_DIR: cache } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`${warning}\n`), `${run}: ${r.stderr}`);
  }
  await add(join(dir, 'dep'), store);
  const r = await runCli(['build', spec, '-o', join(dir, 'complete.oci')], { env: { ...process.env, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /warning/);
  const closure = await runCli(['closure', spec, '--json']);
  assert.equal(closure.code, 0, closure.stderr);
  assert.ok(closure.stdout.toString().includes(depPath), 'the dependency is in the closure now');
  makeWritable(dir); // store entries are read-only
});

test('the scan record keeps the mentions for its store dir: a warm run answers, another store dir or a version 3 record is scanned again', async () => {
  const dir = await tempDir('imgbuild-mentions-record-');
  const store = join(dir, 'store');
  const cacheDir = join(dir, 'scan');
  const name = `${H1}-app`;
  mkdirSync(join(store, name), { recursive: true });
  writeFileSync(join(store, name, 'run'), `exec /nix/store/${H2}-dep/bin/dep /gnu/store/${H2}-dep\n`);
  await pastRacyWindow();
  const open = (storeDir: string) => new DirectoryStoreSource(store, storeDir, { cacheDir });
  const cold = open('/nix/store');
  assert.deepEqual(await cold.absentMentions(`/nix/store/${name}`), [`/nix/store/${H2}`]);
  assert.deepEqual(cold.stats, { scanned: 1, cached: 0 });
  const warm = open('/nix/store');
  assert.deepEqual(await warm.absentMentions(`/nix/store/${name}`), [`/nix/store/${H2}`]);
  assert.deepEqual(warm.stats, { scanned: 0, cached: 1 });
  const gnu = open('/gnu/store');
  assert.deepEqual(await gnu.absentMentions(`/gnu/store/${name}`), [`/gnu/store/${H2}`]);
  assert.deepEqual(gnu.stats, { scanned: 1, cached: 0 });
  const record = readScanRecords(cacheDir).at(-1)! as unknown as Record<string, unknown>;
  const v3: Record<string, unknown> = { ...record, v: 3 };
  delete v3.mentioned;
  delete v3.storeDir;
  replaceScanRecords(cacheDir, [v3]);
  const again = open('/gnu/store');
  assert.deepEqual(await again.absentMentions(`/gnu/store/${name}`), [`/gnu/store/${H2}`]);
  assert.deepEqual(again.stats, { scanned: 1, cached: 0 });
});
