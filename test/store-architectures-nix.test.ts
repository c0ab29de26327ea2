// The Nix store source's pathArchitectures: a header-only walk of a real store path (Debian's
// nix 2.8, an isolated store, see helpers/nix.ts), cached under the path's name.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closureArchitectures } from '../builder/store/closure-architectures.js';
import { NixStoreSource } from '../builder/store/nix-source.js';
import { openStoreSource } from '../builder/store/open.js';
import { AMD64, ARM64, elfFile } from './helpers/elf.js';
import { makeTestNix, type TestNix } from './helpers/nix.js';
import { opensUnder } from './helpers/opens.js';
import { toolFixture } from './helpers/tools.js';
import { tempDir } from './helpers/tmp.js';

let nix: TestNix;
let amd: string;
let arm: string;
let none: string;

/** A Nix store with an amd64, an arm64 and a no-ELF path, made by the first test that needs it. */
const nixFixture = toolFixture(['nix-store', 'nix'], () => {
  nix = makeTestNix();
  const busybox = existsSync('/bin/busybox') && process.arch === 'x64' ? readFileSync('/bin/busybox') : elfFile(AMD64, 100_000);
  amd = nix.add('busybox', { 'bin/busybox': { content: busybox, executable: true }, 'share/readme': 'busybox\n' });
  arm = nix.add('tool-arm64', { 'lib/tool': { content: elfFile(ARM64, 8192), executable: true } });
  none = nix.add('docs', { 'share/doc/a.html': '<p>a</p>\n'.repeat(20) });
});

after(() => nix?.cleanup());

const open = (cacheDir?: string) => NixStoreSource.open({ env: nix.env, ...(cacheDir ? { cacheDir } : {}) });

test('the Nix source names the architecture of each path\'s ELF files', async (t) => {
  if (!(await nixFixture.need(t))) return;
  const src = await open();
  assert.deepEqual(await src.pathArchitectures(amd), { amd64: 'bin/busybox' });
  assert.deepEqual(await src.pathArchitectures(arm), { arm64: 'lib/tool' });
  assert.deepEqual(await src.pathArchitectures(none), {});
});

test('the Nix source\'s walks are cached under the path name: a second source reads no store file', async (t) => {
  if (!(await nixFixture.need(t))) return;
  const cacheDir = join(await tempDir('imgbuild-arch-nix-'), 'scan');
  const cold = await open(cacheDir);
  const closure = await cold.closure([amd, arm]);
  const expected = await closureArchitectures(cold, closure);
  assert.deepEqual(expected, { amd64: `${amd}/bin/busybox`, arm64: `${arm}/lib/tool` });
  assert.equal(readdirSync(cacheDir).filter((f) => /^elf-[0-9a-f]{64}\.json$/.test(f)).length, 2);

  const { result, opened } = await opensUnder(nix.storeDir, async () => {
    const warm = await openStoreSource({ kind: 'nix', env: nix.env, cacheDir });
    return closureArchitectures(warm, closure);
  });
  assert.deepEqual(opened, []);
  assert.deepEqual(result, expected);
});

test('without a cache dir the Nix source reads and writes no record, and walks again', async (t) => {
  if (!(await nixFixture.need(t))) return;
  await (await open()).pathArchitectures(amd);
  const again = await opensUnder('/', async () => (await open()).pathArchitectures(amd));
  assert.ok(again.opened.some((o) => o === `openSync ${amd}/bin/busybox`), again.opened.join('\n'));
  assert.deepEqual(again.opened.filter((o) => /elf-[0-9a-f]{64}\.json/.test(o)), []);
});
