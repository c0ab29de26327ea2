// A layer made as a stream (for a push of a layer held nowhere) has exactly the written layer's bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { ImgbuildError } from '../builder/errors.js';
import { layerStream } from '../builder/layer/layer-stream.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { writeLayer } from '../builder/layer/write-layer.js';
import { payload } from './helpers/payload.js';

const header = { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' };
const storePath = 'nix/store/6vg4gw1wnz3p5a8sjd6bbqf3kjv6mzq7-tool-1.0';

/** A layer of 1.3 MiB: several deflate blocks and several tar chunks. */
function entries(): LayerEntry[] {
  return [
    { kind: 'directory', path: 'nix', mode: 0o755 },
    { kind: 'directory', path: 'nix/store', mode: 0o755 },
    { kind: 'directory', path: storePath, mode: 0o555 },
    { kind: 'file', path: `${storePath}/big`, mode: 0o444, content: { from: 'bytes', data: payload(1_300_000, 7) } },
    { kind: 'symlink', path: `${storePath}/link`, target: 'big' },
    { kind: 'file', path: `${storePath}/small`, mode: 0o555, content: { from: 'bytes', data: Buffer.from('#!/bin/sh\n') } },
  ];
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

async function written(options: LayerWriteOptions, t: { after: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(join(tmpdir(), 'imgbuild-layer-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new BlobStore(join(dir, 'blobs'));
  const blob = await writeLayer(entries(), options, store);
  return { blob, bytes: await readFile(store.path(blob.digest)) };
}

for (const compressor of ['gzip', 'none'] as const) {
  test(`a ${compressor} layer streamed gives the bytes writeLayer writes`, async (t) => {
    const options: LayerWriteOptions = { header, compressor };
    const { blob, bytes } = await written(options, t);
    assert.ok(blob.uncompressedSize > 4 * 256 * 1024, 'several deflate blocks and tar chunks');
    const streamed = await collect(layerStream(entries, options, blob));
    assert.ok(streamed.equals(bytes), `streamed ${streamed.length} bytes, written ${bytes.length}`);
  });
}

test('each layer stream starts from the beginning (an upload retry opens it again)', async (t) => {
  const options: LayerWriteOptions = { header, compressor: 'gzip' };
  const { blob, bytes } = await written(options, t);
  const first = layerStream(entries, options, blob);
  // Read a part of the first one only, as a broken upload would, then start over.
  for await (const _ of first) break;
  assert.ok((await collect(layerStream(entries, options, blob))).equals(bytes));
});

test('a layer stream whose bytes are not the expected ones fails before its last bytes', async (t) => {
  const options: LayerWriteOptions = { header, compressor: 'gzip' };
  const { blob, bytes } = await written(options, t);
  const expected = { digest: `sha256:${'0'.repeat(64)}` as const, size: blob.size };
  const parts: Buffer[] = [];
  await assert.rejects(
    async () => {
      for await (const part of layerStream(entries, options, expected)) parts.push(part as Buffer);
    },
    (err: unknown) => {
      assert.ok(err instanceof ImgbuildError);
      assert.equal(err.code, 'layer-cache');
      assert.equal(
        err.message,
        `the layer's bytes are no longer the ones cached as ${expected.digest} (${blob.size} bytes): they give ${blob.digest} (${blob.size} bytes)`,
      );
      return true;
    },
  );
  const got = Buffer.concat(parts);
  assert.ok(got.length < bytes.length, `${got.length} of ${bytes.length} bytes went out`);
  assert.ok(got.equals(bytes.subarray(0, got.length)));
});
