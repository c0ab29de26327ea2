// zstd layers: the tar cut into 4 MiB pieces, each one independent zstd frame (libzstd 1.5.7,
// level 3, streaming API), from node:zlib where Node has zstd and from the WebAssembly build of the
// same library elsewhere: the same bytes from both, pinned by golden vectors; read back by our
// readers (node:zlib or fzstd) on every Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { BlobStore } from '../builder/blobs/blob-store.js';
import { goldenDeflateInput } from '../builder/layer/golden-input.js';
import { layerStream } from '../builder/layer/layer-stream.js';
import { treeEntries } from '../builder/layer/tree-entries.js';
import type { LayerEntry, LayerWriteOptions } from '../builder/layer/types.js';
import { measureLayer, writeLayer } from '../builder/layer/write-layer.js';
import {
  FrameZstd,
  nativeZstdEncoder,
  pickZstdEncoder,
  REFERENCE_ZSTD_SHA256,
  wasmZstdEncoder,
  ZSTD_FRAME_SIZE,
  zstdGoldenSha256,
  ZstdDriftError,
  type ZstdEncoder,
} from '../builder/layer/zstd.js';
import { createFzstdDecompressStream, createZstdDecompressStream } from '../builder/layer/zstd-decompress.js';
import { summariseLayer } from '../builder/repro/layer-summary.js';
import { layerFiles } from '../builder/transports/layer-files.js';
import type { Layer } from '../builder/model/layer.js';
import { MediaType } from '../oci/media-types.js';
import { fileURLToPath } from 'node:url';
import { runCommand } from './helpers/cli.js';
import { nodeBinaries } from './helpers/nodes.js';
import { unavailable } from './helpers/tools.js';
import { tempDir } from './helpers/tmp.js';
import { corpusTree, wordCorpus } from './helpers/payload.js';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const zstdOptions: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'zstd' };
const hasNativeZstd = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function';

/** Every encoder this Node has: the WebAssembly one always, node:zlib's from Node 22.15. */
async function encoders(): Promise<ZstdEncoder[]> {
  const native = nativeZstdEncoder();
  return [...(native ? [native] : []), await wasmZstdEncoder()];
}

/** Frame-mode zstd of `input`, fed in uneven writes. */
async function frames(input: Buffer, encoder: ZstdEncoder, maxFrames: number, frameSize?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const z = new FrameZstd((b) => out.push(b), Promise.resolve(encoder), maxFrames, frameSize);
  for (let off = 0, n = 1; off < input.length; off += n, n = (n * 31 + 977) % 700_000) await z.write(input.subarray(off, off + n));
  await z.end();
  return Buffer.concat(out);
}

async function decompressWith(stream: Transform, input: Buffer, chunk = 65_536): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let off = 0; off < input.length; off += chunk) pieces.push(input.subarray(off, off + chunk));
  await pipeline(
    Readable.from(pieces),
    stream,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

test('every encoder here gives the reference bytes for the golden input (node:zlib where Node has zstd, and the WebAssembly build)', async (t) => {
  const all = await encoders();
  assert.equal(all.length, hasNativeZstd ? 2 : 1);
  for (const e of all) {
    t.diagnostic(`${e.name}: libzstd ${e.libzstd}`);
    assert.equal(e.libzstd, '1.5.7', e.name);
    assert.equal(await zstdGoldenSha256(e.compress), REFERENCE_ZSTD_SHA256, e.name);
  }
});

test('node:zlib keeps its zstd contexts between frames: each frame is the bytes of a fresh context, one after another and several at once', async (t) => {
  const native = nativeZstdEncoder();
  if (!native) {
    // This Node (20) has no zstd in node:zlib: this very test, under the Node 24 that
    // scripts/install-nodes.sh installs (as the cross-Node tests do).
    let nodes: Map<string, string>;
    try {
      nodes = await nodeBinaries();
    } catch (e) {
      return void unavailable(t, (e as Error).message);
    }
    // Without NODE_TEST_CONTEXT, which would make the child report to this runner, not to stdout.
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const r = await runCommand(nodes.get('24')!, ['--test', '--test-reporter=tap', '--test-name-pattern', '^node:zlib keeps its zstd contexts', fileURLToPath(import.meta.url)], { env });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout.toString(), /^ok \d+ - node:zlib keeps its zstd contexts/m);
    assert.match(r.stdout.toString(), /^# pass 1$/m);
    return;
  }
  const golden = goldenDeflateInput();
  const words = wordCorpus(1_500_000);
  // Different sizes and contents, so that a context reused after a bigger or more repetitive frame is seen.
  const pieces = [golden, words, golden.subarray(0, 1000), Buffer.alloc(0), Buffer.alloc(2_000_000, 7), words.subarray(123), golden.subarray(5)];
  /** One frame from a context made for it and dropped (as the encoder did before it kept them). */
  const fresh = (piece: Buffer) =>
    new Promise<Buffer>((resolve, reject) => {
      const { ZSTD_c_compressionLevel, ZSTD_e_flush } = (zlib as unknown as { constants: Record<string, number> }).constants;
      const s = (zlib as unknown as { createZstdCompress(o: object): Transform & { flush(k: number, cb: () => void): void } }).createZstdCompress({ params: { [ZSTD_c_compressionLevel!]: 3 } });
      const out: Buffer[] = [];
      s.on('data', (d: Buffer) => out.push(d));
      s.on('error', reject);
      s.on('end', () => resolve(Buffer.concat(out)));
      s.write(piece);
      s.flush(ZSTD_e_flush!, () => s.end());
    });
  const expected = await Promise.all(pieces.map(fresh));
  for (const [i, piece] of pieces.entries()) assert.deepEqual(await native.compress(piece), expected[i], `piece ${i}, alone`);
  for (let round = 0; round < 2; round++) assert.deepEqual(await Promise.all(pieces.map((p) => native.compress(p))), expected, `round ${round}, at once`);
  assert.equal(await zstdGoldenSha256(native.compress), REFERENCE_ZSTD_SHA256);
});

test('a frame is what the streaming API gives: no content size, no checksum, window 2 MiB, an empty last block; zstd decoders read it', async () => {
  const input = goldenDeflateInput();
  const frame = await (await wasmZstdEncoder()).compress(input);
  // magic, frame header descriptor 0 (no FCS, not single segment, no checksum), window descriptor 0x58 (2^21)
  assert.deepEqual([...frame.subarray(0, 6)], [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58]);
  // the last block header: last = 1, raw, size 0
  assert.deepEqual([...frame.subarray(-3)], [0x01, 0x00, 0x00]);
  assert.deepEqual(await decompressWith(createFzstdDecompressStream(), frame), input);
  assert.deepEqual(await decompressWith(createZstdDecompressStream(), frame), input);
});

test('frame mode gives the same bytes whatever the encoder, the frames in flight and the write sizes; the frames are cut every 4 MiB of input', async () => {
  const input = wordCorpus(2 * ZSTD_FRAME_SIZE + 123_457, 11);
  const results = new Set<string>();
  for (const e of await encoders()) {
    for (const maxFrames of [1, 4]) {
      const out = await frames(input, e, maxFrames);
      results.add(sha256(out));
      // Each piece compressed on its own, concatenated: the same bytes.
      const parts = [0, 1, 2].map((i) => input.subarray(i * ZSTD_FRAME_SIZE, (i + 1) * ZSTD_FRAME_SIZE));
      const separately = Buffer.concat(await Promise.all(parts.map((p) => e.compress(p))));
      assert.deepEqual(out, separately, `${e.name}, ${maxFrames} in flight`);
    }
  }
  assert.equal(results.size, 1, [...results].join(' '));
});

test('concatenated frames decompress to the input with node:zlib (where present) and with fzstd, in any chunking', async () => {
  const input = wordCorpus(ZSTD_FRAME_SIZE + 999_999, 12);
  const out = await frames(input, await wasmZstdEncoder(), 3);
  assert.deepEqual(await decompressWith(createFzstdDecompressStream(), out, 4097), input);
  assert.deepEqual(await decompressWith(createZstdDecompressStream(), out, 1 << 20), input);
});

test('an empty input is one valid frame; an input of whole frames has no empty frame after them', async () => {
  const e = await wasmZstdEncoder();
  const empty = await frames(Buffer.alloc(0), e, 2);
  assert.deepEqual(empty, await e.compress(Buffer.alloc(0)));
  assert.deepEqual(await decompressWith(createFzstdDecompressStream(), empty), Buffer.alloc(0));
  const whole = wordCorpus(2 * 65_536, 13);
  const cut = await frames(whole, e, 2, 65_536);
  assert.deepEqual(cut, Buffer.concat([await e.compress(whole.subarray(0, 65_536)), await e.compress(whole.subarray(65_536))]));
});

test('an encoder that gives other bytes is passed over for the next; when none gives the reference, ZstdDriftError (zstd-drift) names each', async () => {
  const wasm = await wasmZstdEncoder();
  const drifting: ZstdEncoder = { name: 'drifting', libzstd: '1.5.6', compress: async (p) => Buffer.concat([await wasm.compress(p), Buffer.from([0])]) };
  assert.equal(await pickZstdEncoder([async () => undefined, async () => drifting, async () => wasm]), wasm);
  await assert.rejects(
    pickZstdEncoder([async () => drifting]),
    (err: unknown) =>
      err instanceof ZstdDriftError &&
      err.code === 'zstd-drift' &&
      /no zstd encoder here gives the reference bytes/.test(err.message) &&
      /from drifting \(libzstd 1\.5\.6\)/.test(err.message) &&
      /"compressor": "gzip"/.test(err.hint ?? ''),
  );
});

// Golden vector of a zstd layer spanning three frames (obtained on Node 20.20.2 with the
// WebAssembly encoder and on Node 22.23.5 and 24.22.3 with node:zlib: the same bytes).
const MULTI_FRAME_GOLDEN = {
  diffId: 'sha256:b30cc6283166368f85f8244f90f7383e44a716abf11f59c1ac368be405b51783',
  digest: 'sha256:d755bb5e8c7f9307965dbff98c5cb14b50193dffe55bd51a90c81fa46567c410',
  size: 2852881,
};

function bigTree(): Promise<string> {
  return corpusTree('imgbuild-zstd-', [5_000_000, 3_000_000, 200_000]);
}

test('golden vector: a three-frame layer has the pinned bytes, media type tar+zstd; digest and diff_id are the blob and its tar', async (t) => {
  const dir = await bigTree();
  const store = new BlobStore(join(dir, '..', 'blobs'));
  const blob = await writeLayer(treeEntries(dir, 'app'), zstdOptions, store);
  t.diagnostic(JSON.stringify(blob));
  assert.deepEqual({ diffId: blob.diffId, digest: blob.digest, size: blob.size }, MULTI_FRAME_GOLDEN);
  assert.equal(blob.mediaType, MediaType.ociLayerZstd);
  const bytes = await readFile(store.path(blob.digest));
  assert.equal(sha256(bytes), blob.digest);
  assert.equal(sha256(await decompressWith(createFzstdDecompressStream(), bytes)), blob.diffId);
  // Without a file, and as a stream checked against the record: the same bytes.
  const measured = await measureLayer(treeEntries(dir, 'app'), zstdOptions);
  assert.deepEqual(measured, blob);
  const streamed: Buffer[] = [];
  for await (const c of layerStream(() => treeEntries(dir, 'app'), zstdOptions, { digest: blob.digest, size: blob.size })) streamed.push(c as Buffer);
  assert.deepEqual(Buffer.concat(streamed), bytes);
});

const smallEntries: LayerEntry[] = [
  { kind: 'directory', path: 'etc', mode: 0o755 },
  { kind: 'symlink', path: 'etc/link', target: 'motd' },
  { kind: 'file', path: 'etc/motd', mode: 0o644, content: { from: 'bytes', data: Buffer.from('hello zstd\n') } },
];

test('readers take zstd layers: the layer summary (diff, verify) and the file listing (inspect) on this Node', async (t) => {
  const store = new BlobStore(join(await tempDir('imgbuild-zstd-read-'), 'blobs'));
  const blob = await writeLayer(smallEntries, zstdOptions, store);
  const summary = await summariseLayer(Readable.from([await readFile(store.path(blob.digest))]), 'the layer');
  assert.equal(summary.compression, 'zstd');
  assert.equal(summary.diffId, blob.diffId);
  assert.deepEqual(
    summary.entries.map((e) => e.path),
    ['etc', 'etc/link', 'etc/motd'],
  );
  const layer: Layer = { ...blob, open: () => createReadStream(store.path(blob.digest)) };
  const files = await layerFiles(layer);
  t.diagnostic(JSON.stringify(files));
  assert.deepEqual(
    files.map((f) => [f.path, f.type]),
    [
      ['etc', 'directory'],
      ['etc/link', 'symlink'],
      ['etc/motd', 'file'],
    ],
  );
});
