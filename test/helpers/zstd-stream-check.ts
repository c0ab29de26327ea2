// Run under a given Node by test/layer-zstd-cross-node.test.ts: a zstd layer of several frames,
// made as a stream whose chunks are all kept until the end (as a consumer may), and the same
// layer measured. Prints the encoder, the measured digest and the sha256 of the kept chunks.
import { createHash } from 'node:crypto';
import { layerStream } from '../../builder/layer/layer-stream.js';
import type { LayerEntry, LayerWriteOptions } from '../../builder/layer/types.js';
import { measureLayer } from '../../builder/layer/write-layer.js';
import { zstdEncoder } from '../../builder/layer/zstd.js';
import { wordCorpus } from './payload.js';

const storePath = 'nix/store/6vg4gw1wnz3p5a8sjd6bbqf3kjv6mzq7-tool-1.0';
// 18 MB: five 4 MiB frames, the last one short; more frames than a stream holds at once.
const data = wordCorpus(18_000_000, 11);
const entries = (): LayerEntry[] => [
  { kind: 'directory', path: 'nix', mode: 0o755 },
  { kind: 'directory', path: 'nix/store', mode: 0o755 },
  { kind: 'directory', path: storePath, mode: 0o555 },
  { kind: 'file', path: `${storePath}/corpus`, mode: 0o444, content: { from: 'bytes', data } },
];
const options: LayerWriteOptions = { header: { mtime: 1, uid: 0, gid: 0, uname: 'root', gname: 'root' }, compressor: 'zstd' };

const measured = await measureLayer(entries(), options);
const kept: Buffer[] = [];
for await (const chunk of layerStream(entries, options, measured)) kept.push(chunk as Buffer);
const streamed = `sha256:${createHash('sha256').update(Buffer.concat(kept)).digest('hex')}`;
process.stdout.write(JSON.stringify({ encoder: (await zstdEncoder()).name, measured: measured.digest, streamed }));
