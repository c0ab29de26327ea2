// A small layer of an OCI layout gives its bytes at once (Layer.read, blob-source.ts readBlob),
// which a push uploads without a stream: the same bytes as its stream, and, for a damaged file,
// the same error its stream fails with. A layer over SYNC_READ_MAX, or a file gone, is streamed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readOci } from '../builder/transports/oci-read.js';
import { directoryStorage, SYNC_READ_MAX } from '../builder/transports/member-storage.js';
import { openBlob, readBlob } from '../builder/transports/blob-source.js';
import type { Image } from '../builder/model/image.js';
import { blobOf, makeImage, makeLayer, noise } from './helpers/registry.js';
import { writeLayout } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

async function layout(): Promise<{ dir: string; image: Image }> {
  const small = await makeLayer({ 'bin/hello': '#!/bin/sh\necho hi\n' });
  const big = { ...blobOf(noise(SYNC_READ_MAX + 1)), diffId: `sha256:${createHash('sha256').update('not a tar').digest('hex')}` };
  const dir = await writeLayout(await tempDir('imgbuild-layout-read-'), await makeImage([small, big]), 'v1');
  const image = await readOci(directoryStorage(dir), `oci:${dir}`, 'v1');
  assert.equal(image.kind, 'image');
  return { dir, image: image as Image };
}

async function streamed(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The error a stream fails with, or the one a call throws. */
async function streamError(s: Readable): Promise<Error> {
  return streamed(s).then(() => assert.fail('the stream ended'), (e: Error) => e);
}
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  return assert.fail('nothing was thrown');
}

test('a small layer of a layout gives at once the bytes its stream gives', async () => {
  const { image } = await layout();
  const small = image.layers[0]!;
  const bytes = readBlob(small);
  assert.ok(bytes);
  assert.deepEqual(bytes, await streamed(openBlob(small)));
  assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, small.digest);
});

test('a layer over SYNC_READ_MAX gives nothing at once: it is streamed', async () => {
  const { image } = await layout();
  assert.equal(readBlob(image.layers[1]!), undefined);
});

test('a damaged small layer file throws the error its stream fails with, naming the file', async () => {
  const { dir, image } = await layout();
  const small = image.layers[0]!;
  const file = join(dir, 'blobs/sha256', small.digest.slice('sha256:'.length));
  const good = await streamed(openBlob(small));
  for (const damaged of [Buffer.concat([good, Buffer.from('x')]), good.subarray(1), Buffer.from(good).fill(0, 10, 11)]) {
    writeFileSync(file, damaged);
    const fromStream = await streamError(openBlob(small));
    const atOnce = thrown(() => readBlob(small));
    assert.equal((atOnce as { code?: string }).code, 'blob-mismatch');
    assert.equal(atOnce.message, fromStream.message);
    assert.equal((atOnce as { hint?: string }).hint, (fromStream as { hint?: string }).hint);
    assert.ok(atOnce.message.startsWith(`${file} is damaged: oci:${dir}: blob ${small.digest}`), atOnce.message);
  }
});

test('a small layer whose file is gone gives nothing at once: its stream reports it', async () => {
  const { dir, image } = await layout();
  const small = image.layers[0]!;
  rmSync(join(dir, 'blobs/sha256', small.digest.slice('sha256:'.length)));
  assert.equal(readBlob(small), undefined);
  assert.equal((await streamError(openBlob(small)) as { code?: string }).code, 'ENOENT');
});
