import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, createDeflateRaw, type ZlibOptions } from 'node:zlib';
import pLimit from 'p-limit';

/**
 * Deterministic gzip (RFC 1952) around Node's bundled zlib's raw deflate. We write the 10-byte
 * header and the 8-byte trailer ourselves so that nothing in them depends on the host:
 *
 *   1f 8b 08 00 | 00 00 00 00 | 00 | ff
 *   magic  CM=deflate, FLG=0 (no name, no comment, no extra) | MTIME=0 | XFL=0 | OS=255 (unknown,
 *   as Go's compress/gzip writes it, so the byte is the same on every platform)
 *
 * The deflate parameters are pinned (level 6 — gzip's default — window 2^15, memLevel 8, default
 * strategy). The compressed bytes still depend on the zlib build Node bundles; the golden vector
 * test pins them so that a Node upgrade that changes them is noticed.
 *
 * Block mode (pigz's scheme): the tar stream is cut into blocks of DEFLATE_BLOCK_SIZE bytes, each
 * deflated on its own (on the libuv pool, so one big layer keeps every core busy) with the 32 KiB
 * before it as preset dictionary and a sync flush (the last block: finish). The concatenation is
 * one valid raw deflate stream, so the blob stays one ordinary gzip member. The cut points depend
 * only on the bytes, never on core count or chunking, so the output is deterministic.
 */
export const GZIP_LEVEL = 6;
export const GZIP_HEADER: Buffer = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);

/** Bytes of tar per independently deflated block. Changing it changes every gzip layer's bytes. */
export const DEFLATE_BLOCK_SIZE = 256 * 1024;
/** Deflate's window: what a block may reference from the block before. */
const DICTIONARY_SIZE = 32 * 1024;

/** The pinned deflate parameters (zlib-guard.ts checks them at run time). */
export const DEFLATE_OPTIONS: Readonly<ZlibOptions> = Object.freeze({
  level: GZIP_LEVEL,
  windowBits: 15,
  memLevel: 8,
  strategy: constants.Z_DEFAULT_STRATEGY,
});

/** zlib options of one block: `previous` is the block before (undefined for the first). */
export function blockDeflateOptions(previous: Uint8Array | undefined, last: boolean): ZlibOptions {
  const options: ZlibOptions = { ...DEFLATE_OPTIONS };
  if (previous && previous.length > 0) options.dictionary = previous.subarray(Math.max(0, previous.length - DICTIONARY_SIZE));
  if (!last) options.finishFlush = constants.Z_SYNC_FLUSH;
  return options;
}

/**
 * Block-mode raw deflate of a whole buffer, synchronously, with the given block compressor (the
 * zlib guard passes deflateRawSync, or a deliberately different one in its tests). Gives the
 * same bytes as the streaming `createPinnedDeflate()`.
 */
export function blockDeflateSync(
  input: Buffer,
  compress: (block: Buffer, options: ZlibOptions) => Buffer,
): Buffer {
  const blockSize = DEFLATE_BLOCK_SIZE;
  // As the stream does it: every full block is flushed (never the last); the rest, maybe empty, finishes.
  const out: Buffer[] = [];
  const full = Math.floor(input.length / blockSize);
  let previous: Buffer | undefined;
  for (let i = 0; i < full; i++) {
    const block = input.subarray(i * blockSize, (i + 1) * blockSize);
    out.push(compress(block, blockDeflateOptions(previous, false)));
    previous = block;
  }
  out.push(compress(input.subarray(full * blockSize), blockDeflateOptions(previous, true)));
  return Buffer.concat(out);
}

const cores = Math.max(1, availableParallelism());
/**
 * Blocks deflating at once across every layer of the process: two per core, so that a pool
 * thread finds the next block queued instead of idling while the main thread answers the last
 * one (measured on bench/build-speed.ts: 1 per core left about a fifth of the CPU idle).
 */
const deflateSlots = pLimit(2 * cores);
/** Blocks one stream holds at once (queued, deflating, or waiting to be pushed in order): bounds memory. */
const MAX_BLOCKS_PER_STREAM = 2 * cores + 2;

/**
 * Output buffer per zlib call: room for a whole block's output (deflate never grows data by more
 * than ~0.03% + a few bytes), so a block is one job on the pool instead of one per 16 KiB of
 * output with a main-thread round trip between each. The bytes do not depend on it.
 */
const OUTPUT_CHUNK = DEFLATE_BLOCK_SIZE + 64 * 1024;

/**
 * The output buffer for a block whose stream's last blocks gave about `expected` bytes each: a
 * little more than that, so that a block of the same kind is still one job on the pool, but not
 * a whole block's room for a block that compresses to a third of it. The 320 KiB buffer of every
 * block was 1.2 GB of allocations for a GB of tar, and the main thread's mark-compacts they set
 * off (54 in a build of the 1 GB corpus; 22 with output buffers of 128 KiB).
 */
function outputChunk(length: number, expected: number | undefined): number {
  // A short last block (a small layer) gets an output buffer to its size, not a whole block's:
  // a build of a hundred small layers allocated 320 KiB for each.
  const room = Math.min(OUTPUT_CHUNK, length + (length >>> 3) + 1024);
  const guess = expected === undefined ? room : Math.min(room, expected + (expected >>> 2) + 8 * 1024);
  return Math.max(MIN_OUTPUT_CHUNK, guess);
}

function deflateBlock(block: Buffer, options: ZlibOptions, expected: number | undefined): Promise<Buffer[]> {
  const chunkSize = outputChunk(block.length, expected);
  // What zlib.deflateRaw(block, options, cb) does, less its Buffer.concat of the output: a
  // block's output comes in two or more slices of one output buffer (the data, then the flush),
  // and copying them into one was ~0.4 GB of allocations and copies for a GB of tar.
  return deflateSlots(
    () =>
      new Promise<Buffer[]>((resolve, reject) => {
        const stream = createDeflateRaw({ ...options, chunkSize });
        const out: Buffer[] = [];
        stream.on('data', (d: Buffer) => out.push(d));
        stream.on('error', reject);
        stream.on('end', () => {
          stream.close();
          resolve(out);
        });
        stream.end(block);
      }),
  );
}

/** zlib's own default output chunk: the smallest asked for. */
const MIN_OUTPUT_CHUNK = 16 * 1024;
/** What a stream's block buffer starts at; it doubles up to DEFLATE_BLOCK_SIZE as the tar comes. */
const FIRST_BLOCK_BUFFER = 16 * 1024;

/**
 * The layer writer's raw deflate: block mode (see above) as a stream. Output order is input
 * order; at most `maxBlocks` blocks (of 256 KiB in, about as much out) are held at once
 * (default 2 × cores + 2). The bytes do not depend on `maxBlocks`.
 */
export function createPinnedDeflate(options: { maxBlocks?: number } = {}): Transform {
  return new BlockDeflate(Math.max(1, options.maxBlocks ?? MAX_BLOCKS_PER_STREAM));
}

class BlockDeflate extends Transform {
  private readonly deflater: BlockDeflater;

  constructor(maxBlocks: number) {
    super();
    this.deflater = new BlockDeflater((out) => {
      if (!this.destroyed) this.push(out);
    }, maxBlocks);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.deflater.write(chunk).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.deflater.end().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.deflater.abandon();
    cb(err);
  }
}

/**
 * Block-mode raw deflate (see above) without a stream: `write` copies the bytes it is given (the
 * caller may reuse its buffer once the promise resolves), and each finished block's output goes
 * to `onOutput` (in one or more buffers), in input order. At most `maxBlocks` blocks (of 256 KiB in, about as much out)
 * are held at once (default 2 × cores + 2); `write` waits when that many are pending. The bytes
 * do not depend on `maxBlocks` or on how the input is cut into writes.
 */
export class BlockDeflater {
  /** The block being filled: grown as it fills (a small layer never needs a whole block's buffer). */
  private block: Buffer = Buffer.allocUnsafe(FIRST_BLOCK_BUFFER);
  private filled = 0;
  private previous: Buffer | undefined;
  private readonly pending: { block: Buffer; out: Promise<Buffer[]> }[] = [];
  /**
   * Full block buffers whose deflate is done, for the next blocks: a fresh 256 KiB buffer per
   * block was ~0.25 MB of external memory a block, and the main thread's mark-compacts it set off.
   */
  private readonly spare: Buffer[] = [];
  /** Output bytes of the last full block output (sizes the next blocks' output buffers). */
  private outputSize: number | undefined;
  /** The last block output: its buffer is the dictionary of the block after it until that one's deflate is done. */
  private output: Buffer | undefined;
  private abandoned = false;

  constructor(
    private readonly onOutput: (out: Buffer) => void,
    private readonly maxBlocks: number = MAX_BLOCKS_PER_STREAM,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    if (this.filled === 0 && chunk.buffer === this.block.buffer && chunk.byteOffset === this.block.byteOffset && chunk.length <= this.block.length) {
      // Built in the block itself (blockBuffer): the bytes are where they go.
      this.filled = off = Math.min(chunk.length, DEFLATE_BLOCK_SIZE);
      if (this.filled === DEFLATE_BLOCK_SIZE) {
        this.dispatch(this.block, false);
        this.block = this.spare.pop() ?? Buffer.allocUnsafe(DEFLATE_BLOCK_SIZE);
        this.filled = 0;
        await this.drain(this.maxBlocks - 1);
      }
    }
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, DEFLATE_BLOCK_SIZE - this.filled);
      if (this.filled + n > this.block.length) this.grow(this.filled + n);
      this.block.set(chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === DEFLATE_BLOCK_SIZE) {
        this.dispatch(this.block, false);
        this.block = this.spare.pop() ?? Buffer.allocUnsafe(DEFLATE_BLOCK_SIZE);
        this.filled = 0;
        await this.drain(this.maxBlocks - 1);
      }
    }
  }

  /**
   * The buffer of the block being filled, whole-block sized, for a caller to build its next
   * chunk in (nothing may be filled yet): a `write` of a chunk that starts it takes the bytes
   * where they are instead of copying them. After a whole block is written the block is another
   * buffer; ask again.
   */
  blockBuffer(): Buffer {
    if (this.filled !== 0) throw new RangeError('the block buffer is lent between blocks only');
    if (this.block.length < DEFLATE_BLOCK_SIZE) this.block = this.spare.pop() ?? Buffer.allocUnsafe(DEFLATE_BLOCK_SIZE);
    return this.block;
  }

  /** A bigger block buffer (at most DEFLATE_BLOCK_SIZE, so a full block is the whole buffer), the bytes so far copied. */
  private grow(needed: number): void {
    let size = this.block.length;
    while (size < needed) size *= 2;
    const bigger = Buffer.allocUnsafe(Math.min(DEFLATE_BLOCK_SIZE, size));
    this.block.copy(bigger, 0, 0, this.filled);
    this.block = bigger;
  }

  /** The rest (possibly empty) is the last block, finished with BFINAL; resolves once all is output. */
  async end(): Promise<void> {
    this.dispatch(this.block.subarray(0, this.filled), true);
    await this.drain(0);
  }

  /** Stops output: blocks still deflating finish on the pool; their results (or errors) are dropped. */
  abandon(): void {
    this.abandoned = true;
    for (const p of this.pending.splice(0)) p.out.catch(() => undefined);
  }

  private dispatch(block: Buffer, last: boolean): void {
    const out = deflateBlock(block, blockDeflateOptions(this.previous, last), this.outputSize);
    // Rejections are read by drain (in order) or dropped by abandon; never unhandled.
    out.catch(() => undefined);
    this.pending.push({ block, out });
    this.previous = block;
  }

  /** Outputs finished blocks, in order, until at most `keep` are pending. */
  private async drain(keep: number): Promise<void> {
    while (this.pending.length > keep) {
      const out = await this.pending[0]!.out;
      const { block } = this.pending.shift()!;
      // The block before this one has been read by its deflate, and by this one's as its
      // dictionary (zlib copies a dictionary when a stream is made, which is when the block's
      // turn on the pool comes, not when it is dispatched): its buffer is free.
      if (this.output?.length === DEFLATE_BLOCK_SIZE) this.spare.push(this.output);
      this.output = block;
      if (this.abandoned) return;
      if (block.length === DEFLATE_BLOCK_SIZE) this.outputSize = out.reduce((n, part) => n + part.length, 0);
      for (const part of out) this.onOutput(part);
    }
  }
}
