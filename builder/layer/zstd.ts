import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import pLimit from 'p-limit';
import { ImgbuildError } from '../errors.js';
import { goldenDeflateInput } from './golden-input.js';
import { SpareBuffers } from './spare-buffers.js';

/**
 * Deterministic zstd layers (`compressor: 'zstd'`, media type `…tar+zstd`).
 *
 * The tar is cut every ZSTD_FRAME_SIZE bytes (4 MiB; the last piece shorter) and each piece is
 * compressed on its own into one zstd frame; the blob is the frames concatenated, which RFC 8878
 * §3.1 makes one valid zstd stream (every decoder: zstd(1), Go's klauspost/compress in containerd
 * and podman, node:zlib, fzstd). Independent frames are what lets one big layer use every core,
 * as gzip's blocks do, and the cut points depend only on the bytes, never on timing or cores.
 *
 * One frame is exactly what libzstd 1.5.7's streaming API gives at level 3 (the zstd CLI's
 * default, and containerd's and podman's): a fresh context, the level the only parameter set, the
 * whole piece passed in one call with ZSTD_e_flush, then ZSTD_e_end with no input. So the frame
 * header has no content size and no checksum (window log 21, as for a stream of unknown size),
 * and the data ends with an empty last block. 4 MiB frames cost ~0.7% in size against one
 * frame for the whole tar (1 MiB frames: 2.6%) on a tar of /usr/lib.
 *
 * Two encoders give these bytes, and only these two are used:
 *  - node:zlib's zstd (Node ≥ 22.15 and 23.8, libzstd 1.5.7 in Node 22.23 and 24.22): native,
 *    frames compressed on the libuv pool, several at once;
 *  - @hpcc-js/wasm-zstd (libzstd 1.5.7 built to WebAssembly) everywhere else, Node 20 in
 *    particular: the same library, so the same bytes, on the calling thread and ~4–6× slower.
 * Whichever is used is first checked once per thread against a golden vector (the guard below):
 * an encoder giving other bytes (a Node bundling another libzstd) is passed over, and if neither
 * gives the reference bytes the build is refused. libzstd's one-shot API (ZSTD_compress, all
 * that @bokuweb/zstd-wasm offers) is not usable: in 1.5.7 it gives other (slightly smaller) bytes
 * than the streaming API for the same input and level (measured: 241,970 against 244,155 bytes
 * for 1 MiB of tar; likely its block splitting, which sees the whole input), and node:zlib has
 * only the streaming API.
 */
export const ZSTD_LEVEL = 3;

/** Bytes of tar per independent frame. Changing it changes every zstd layer's bytes. */
export const ZSTD_FRAME_SIZE = 4 * 1024 * 1024;

/**
 * sha256 of one frame of goldenDeflateInput() (320 KiB: three 128 KiB zstd blocks of literals,
 * text, runs, far matches and tar-like headers) as libzstd 1.5.7 gives it with the settings
 * above: node:zlib under Node 22.23.5 and 24.22.3, and @hpcc-js/wasm-zstd 1.12.5 under Node 20.
 */
export const REFERENCE_ZSTD_SHA256 = '29a321b69f57e11d9bf8aa6047ff412de3b3f813cc3766cce2eac57cf94a4444';

/** One frame's compressor: the bytes of one zstd frame for `piece`. */
export type FrameCompress = (piece: Buffer) => Promise<Buffer>;

export interface ZstdEncoder {
  /** `node:zlib` or `@hpcc-js/wasm-zstd`. */
  name: string;
  /** libzstd's version, e.g. 1.5.7. */
  libzstd: string;
  compress: FrameCompress;
  /** The same frame as `compress`, lent in the pieces the encoder made it in (no copy into one buffer); `compress` when absent. */
  lendParts?: (piece: Buffer) => Promise<LentFrame>;
}

/** A frame's bytes in parts that are the encoder's buffer: read them, then `release()` it for a later frame. */
export interface LentFrame {
  parts: readonly Buffer[];
  release(): void;
}

const cores = Math.max(1, availableParallelism());
/** Frames compressing at once on the thread pool (native encoder), across the layers of this thread. */
const frameSlots = pLimit(cores);
/**
 * Frames one stream holds at once (compressing, or waiting for output in order; one more is
 * filling): bounds memory. As many as the thread's frame slots, so that one layer alone keeps
 * them busy; a build writes a layer more than it has threads (build/layers.ts), and one more
 * frame per stream (cores + 1) put its peak RSS past 300 MiB on the 1 GB bench.
 */
const MAX_FRAMES_PER_STREAM = cores;
/**
 * node:zlib's output buffer size: room for a whole frame even of incompressible bytes (libzstd's
 * compress bound of 4 MiB is 4 MiB + 16 KiB), so that each frame is written into one buffer of
 * ours from its start (see lend below). The bytes do not depend on it.
 */
const OUTPUT_BUFFER = ZSTD_FRAME_SIZE + ZSTD_FRAME_SIZE / 128;
/** How long a native zstd stream is kept once idle (its libzstd context holds ~3 MB). */
const IDLE_CONTEXT_MS = 1000;

type NativeZstdStream = zlib.Zlib & NodeJS.ReadWriteStream & { flush(kind: number, cb: () => void): void; destroy(): void };

interface NodeZstd {
  createZstdCompress(options: { params: Record<number, number>; chunkSize: number }): NativeZstdStream;
  constants: { ZSTD_c_compressionLevel: number; ZSTD_e_flush: number; ZSTD_e_end: number };
}

/** node:zlib's zstd API, or undefined on a Node without it (before 22.15). */
function nodeZstd(): NodeZstd | undefined {
  const z = zlib as unknown as Partial<NodeZstd>;
  return typeof z.createZstdCompress === 'function' && z.constants?.ZSTD_c_compressionLevel !== undefined ? (z as NodeZstd) : undefined;
}

/** Whether this Node has node:zlib's zstd (the encoder whose frames compress on the thread pool), whether or not it gives the reference bytes. */
export function hasNativeZstd(): boolean {
  return nodeZstd() !== undefined;
}

/** node:zlib's zstd, or undefined on a Node without it (before 22.15). */
export function nativeZstdEncoder(): ZstdEncoder | undefined {
  const z = nodeZstd();
  if (!z) return undefined;
  const { ZSTD_c_compressionLevel, ZSTD_e_flush, ZSTD_e_end } = z.constants;
  const create = z.createZstdCompress.bind(zlib);
  /**
   * Streams between frames, each with its libzstd context: a frame ended with ZSTD_e_end leaves
   * the context ready for the next frame with the same parameters, and the next frame's bytes are
   * those of a fresh context (the test and the bench digests compare them). A fresh context per
   * frame cost ~15% more CPU than the compression itself: its allocation and the first touch of
   * its window and tables (system time), 270 times for a GB.
   */
  const idle: Frame[] = [];
  let closer: NodeJS.Timeout | undefined;
  const closeIdle = () => {
    closer = undefined;
    for (const f of idle.splice(0)) f.stream.destroy();
  };
  interface Frame {
    stream: NativeZstdStream;
    out: Buffer[];
    failed?: (err: unknown) => void;
  }
  const open = (): Frame => {
    const stream = create({ params: { [ZSTD_c_compressionLevel]: ZSTD_LEVEL }, chunkSize: OUTPUT_BUFFER });
    const frame: Frame = { stream, out: [] };
    stream.on('data', (d: Buffer) => frame.out.push(d));
    stream.on('error', (err) => frame.failed?.(err));
    return frame;
  };
  const lendParts = (piece: Buffer): Promise<LentFrame> =>
    frameSlots(async () => {
      const frame = idle.pop() ?? open();
      // The frame is written into a buffer of ours from its start, given back once its bytes are
      // read: node:zlib's own output buffers were new each time (~380 MB of external memory for a
      // GB of tar), and they set off most of a zstd build's mark-compacts.
      const buffer = spareOutputs.take();
      const lent = lendOutputBuffer(frame.stream, buffer);
      try {
        const parts = await new Promise<Buffer[]>((resolve, reject) => {
          frame.out = [];
          frame.failed = reject;
          // write, ZSTD_e_flush, then ZSTD_e_end with nothing: the piece with ZSTD_e_continue then
          // ZSTD_e_flush, an empty last block (end(piece) would be one ZSTD_e_end call: a
          // single-pass frame, other bytes). The stream stays open for the next frame.
          frame.stream.write(piece);
          frame.stream.flush(ZSTD_e_flush, () => frame.stream.flush(ZSTD_e_end, () => resolve(frame.out)));
        });
        frame.failed = undefined;
        frame.out = [];
        idle.push(frame);
        if (closer) closer.refresh();
        else closer = setTimeout(closeIdle, IDLE_CONTEXT_MS).unref();
        let given = !lent;
        const release = () => {
          // Once only: a buffer in the pool twice would be two frames' output at once.
          if (given) return;
          given = true;
          spareOutputs.give([buffer]);
        };
        return { parts, release };
      } catch (err) {
        frame.stream.destroy(); // in an unknown state: not reused
        throw err;
      }
    });
  const compress: FrameCompress = async (piece) => {
    const { parts, release } = await lendParts(piece);
    const frame = Buffer.concat(parts);
    release();
    return frame;
  };
  return { name: 'node:zlib', libzstd: (process.versions as Record<string, string | undefined>).zstd ?? 'unknown', compress, lendParts };
}

/**
 * Output buffers for node:zlib's zstd streams, one per frame in flight: as many as the frames
 * that can be compressing or waiting to be read at once, kept while layers follow each other.
 */
const spareOutputs = new SpareBuffers(OUTPUT_BUFFER, 2 * (MAX_FRAMES_PER_STREAM + 1) + cores, IDLE_CONTEXT_MS);

/**
 * Points an idle node:zlib stream's output at `buffer`, from its start, for its next write. This
 * sets ZlibBase's `_outBuffer` and `_outOffset` (there since Node 0.x, the same in Node 22 and 24,
 * read by each write): node:zlib has no public way to give a stream its output buffer. False,
 * and the stream left as it is (its own buffers), when they are not there as expected.
 */
export function lendOutputBuffer(stream: zlib.Zlib, buffer: Buffer): boolean {
  const s = stream as unknown as { _outBuffer?: unknown; _outOffset?: unknown; _chunkSize?: unknown };
  if (!Buffer.isBuffer(s._outBuffer) || typeof s._outOffset !== 'number' || s._chunkSize !== buffer.length) return false;
  s._outBuffer = buffer;
  s._outOffset = 0;
  return true;
}

interface HpccZstd {
  version(): string;
  reset(): void;
  setCompressionLevel(level: number): void;
  compressChunk(data: Uint8Array): Uint8Array;
  compressEnd(): Uint8Array;
}

/** @hpcc-js/wasm-zstd (loaded on first use: ~0.7 MB of WebAssembly a gzip build never needs). */
export async function wasmZstdEncoder(): Promise<ZstdEncoder> {
  const { Zstd } = (await import('@hpcc-js/wasm-zstd')) as unknown as { Zstd: { load(): Promise<HpccZstd> } };
  const z = await Zstd.load();
  const compress: FrameCompress = async (piece) => {
    // compressChunk is ZSTD_compressStream2(…, ZSTD_e_flush), compressEnd ZSTD_e_end: the same
    // calls as the native encoder above. Synchronous: the instance is this thread's alone.
    z.reset();
    z.setCompressionLevel(ZSTD_LEVEL);
    const body = z.compressChunk(piece);
    const end = z.compressEnd();
    return Buffer.concat([body, end]);
  };
  return { name: '@hpcc-js/wasm-zstd', libzstd: z.version(), compress };
}

export class ZstdDriftError extends ImgbuildError {
  override name = 'ZstdDriftError';
  constructor(tried: readonly { encoder: string; sha256: string }[]) {
    super(
      'zstd-drift',
      `no zstd encoder here gives the reference bytes (Node ${process.version}): zstd layers built here would get digests that other machines do not reproduce ` +
        `(golden vector sha256 ${tried.map((t) => `${t.sha256} from ${t.encoder}`).join(', ')}; expected ${REFERENCE_ZSTD_SHA256})`,
      `set "compressor": "gzip" in the spec, or reinstall imgbuild so that its @hpcc-js/wasm-zstd dependency is the version it names`,
    );
  }
}

/** sha256 hex of what `compress` gives for the golden input. */
export async function zstdGoldenSha256(compress: FrameCompress): Promise<string> {
  return createHash('sha256').update(await compress(goldenDeflateInput())).digest('hex');
}

let chosen: Promise<ZstdEncoder> | undefined;

/**
 * This thread's zstd encoder: node:zlib's when it gives the reference bytes, else the
 * WebAssembly build when it does, else a ZstdDriftError. Chosen once per thread (about 5 ms
 * native, 50–100 ms for the WebAssembly build's load and check).
 */
export function zstdEncoder(): Promise<ZstdEncoder> {
  chosen ??= pickZstdEncoder([async () => nativeZstdEncoder(), wasmZstdEncoder]);
  return chosen;
}

/**
 * The first of `candidates` (each loads an encoder, or gives undefined where there is none) that
 * gives the reference bytes for the golden input; a ZstdDriftError naming what each gave when none does.
 */
export async function pickZstdEncoder(candidates: readonly (() => Promise<ZstdEncoder | undefined>)[]): Promise<ZstdEncoder> {
  const tried: { encoder: string; sha256: string }[] = [];
  for (const load of candidates) {
    const encoder = await load();
    if (!encoder) continue;
    const sha256 = await zstdGoldenSha256(encoder.compress);
    if (sha256 === REFERENCE_ZSTD_SHA256) return encoder;
    tried.push({ encoder: `${encoder.name} (libzstd ${encoder.libzstd})`, sha256 });
  }
  throw new ZstdDriftError(tried);
}

/**
 * Whole-frame input buffers kept between the layers of this thread: each layer took a fresh
 * 4 MiB buffer for its first piece, even a layer of a few KiB (~0.4 GB of external memory for the
 * 99 layers of the bench, and the mark-compacts it set off on the main thread). At most two
 * layers' worth is kept, and only while layers follow each other (dropped after a second idle):
 * a stream holds MAX_FRAMES_PER_STREAM pieces and one filling, and a thread may write two layers
 * at once (build/layers.ts), so all of their pieces are kept, or the second layer's were new each time.
 */
const sparePieces = new SpareBuffers(ZSTD_FRAME_SIZE, 2 * (MAX_FRAMES_PER_STREAM + 1), IDLE_CONTEXT_MS);

/**
 * Frame-mode zstd (see above) without a stream: `write` copies the bytes it is given (the caller
 * may reuse its buffer once the promise resolves), and each frame's bytes go to `onOutput` in
 * input order (a frame maybe in several buffers), lent: they are reused for a later frame once
 * it returns. At most `maxFrames` frames (of 4 MiB in, about a third of that out) are held at
 * once; `write` waits when that many are pending. The bytes do not depend on `maxFrames`, on the
 * encoder, or on how the input is cut into writes.
 */
export class FrameZstd {
  private piece: Buffer;
  private filled = 0;
  private frames = 0;
  private readonly pending: { piece: Buffer; out: Promise<LentFrame> }[] = [];
  /** Input buffers whose frame is done, for the next pieces: fresh 4 MiB buffers cost page faults and GC. */
  private readonly spare: Buffer[] = [];
  private abandoned = false;

  constructor(
    private readonly onOutput: (out: Buffer) => void,
    private readonly encoder: Promise<ZstdEncoder> = zstdEncoder(),
    private readonly maxFrames: number = MAX_FRAMES_PER_STREAM,
    private readonly frameSize: number = ZSTD_FRAME_SIZE,
  ) {
    this.piece = sparePieces.take(frameSize);
    // A failed choice is read by the first drain; never unhandled.
    encoder.catch(() => undefined);
  }

  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    if (this.filled === 0 && chunk.buffer === this.piece.buffer && chunk.byteOffset === this.piece.byteOffset && chunk.length <= this.piece.length) {
      // Built in the piece itself (pieceBuffer): the bytes are where they go.
      this.filled = off = Math.min(chunk.length, this.frameSize);
      if (this.filled === this.frameSize) {
        this.dispatch(this.piece);
        this.piece = this.spare.pop() ?? sparePieces.take(this.frameSize);
        this.filled = 0;
        await this.drain(Math.max(0, Math.max(1, this.maxFrames) - 1));
      }
    }
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, this.frameSize - this.filled);
      this.piece.set(chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === this.frameSize) {
        this.dispatch(this.piece);
        this.piece = this.spare.pop() ?? sparePieces.take(this.frameSize);
        this.filled = 0;
        await this.drain(Math.max(0, Math.max(1, this.maxFrames) - 1));
      }
    }
  }

  /**
   * The piece being filled, for a caller to build its next chunk in (nothing may be filled yet):
   * a `write` of a chunk that starts it takes the bytes where they are instead of copying them
   * (a copy of every byte of the tar was ~2% of a zstd build's CPU). After a whole piece is
   * written the piece is another buffer; ask again.
   */
  pieceBuffer(): Buffer {
    if (this.filled !== 0) throw new RangeError('the piece is lent between frames only');
    return this.piece;
  }

  /** The rest is the last frame (none if it is empty, unless no frame was made at all); resolves once all is output. */
  async end(): Promise<void> {
    if (this.filled > 0 || this.frames === 0) this.dispatch(this.piece.subarray(0, this.filled));
    await this.drain(0);
    // Every frame is done: the buffers are free for the next layer (end is called once, last).
    if (!this.abandoned) sparePieces.give([this.piece, ...this.spare.splice(0)]);
  }

  /** Stops output: frames still compressing finish; their results (or errors) are dropped. */
  abandon(): void {
    this.abandoned = true;
    for (const p of this.pending.splice(0)) p.out.catch(() => undefined);
  }

  private dispatch(piece: Buffer): void {
    this.frames++;
    const out = this.encoder.then(async (e): Promise<LentFrame> => (e.lendParts ? e.lendParts(piece) : { parts: [await e.compress(piece)], release: () => {} }));
    // Rejections are read by drain (in order) or dropped by abandon; never unhandled.
    out.catch(() => undefined);
    this.pending.push({ piece, out });
  }

  /** Outputs finished frames, in order, until at most `keep` are pending. */
  private async drain(keep: number): Promise<void> {
    while (this.pending.length > keep) {
      const { parts, release } = await this.pending[0]!.out;
      // The encoder is done with the piece (node:zlib and the WebAssembly copy have consumed it).
      const { piece } = this.pending.shift()!;
      if (piece.length === this.frameSize) this.spare.push(piece);
      if (this.abandoned) return;
      for (const part of parts) this.onOutput(part);
      // onOutput is done with them (BlobOutput's contract): the buffer is free for another frame.
      release();
    }
  }
}
