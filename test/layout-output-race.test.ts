// Two writers of one directory output (two builds to one `-o x.oci` at once): the one that
// renames second finds the first's output in place. It replaces it when it is one of ours, as it
// would have had it been there from the start; anything else is still refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDirAtomically } from '../builder/transports/atomic.js';
import { tempDir } from './helpers/tmp.js';

const ours = async (dir: string): Promise<boolean> => (await readdir(dir)).includes('oci-layout');

test('a layout another writer put in place meanwhile is replaced by the one written last', async () => {
  const dir = await tempDir('imgbuild-layout-race-');
  const out = join(dir, 'x.oci');
  await writeDirAtomically(out, ours, async (temp) => {
    // The other build renames its layout into place while this one fills its own.
    await mkdir(out);
    await writeFile(join(out, 'oci-layout'), 'theirs');
    await writeFile(join(temp, 'oci-layout'), 'mine');
  });
  assert.equal(await readFile(join(out, 'oci-layout'), 'utf8'), 'mine');
  assert.deepEqual((await readdir(dir)).sort(), ['x.oci']);
});

test('a directory that is not ours, put in place meanwhile, is left as it is and the write fails', async () => {
  const dir = await tempDir('imgbuild-layout-race-');
  const out = join(dir, 'x.oci');
  await assert.rejects(
    writeDirAtomically(out, ours, async (temp) => {
      await mkdir(out);
      await writeFile(join(out, 'notes.txt'), 'someone else');
      await writeFile(join(temp, 'oci-layout'), 'mine');
    }),
  );
  assert.deepEqual(await readdir(out), ['notes.txt']);
  assert.deepEqual((await readdir(dir)).sort(), ['x.oci']);
});
