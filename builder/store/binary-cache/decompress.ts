import { createRequire } from 'node:module';
import { Decompress as ZstdDecompress } from 'fzstd';
import { BinaryCacheError } from './errors.js';

/** Compressions a NAR may be stored in that imgbuild reads (`Compression:` of a narinfo). */
export const NAR_COMPRESSIONS = ['none', 'xz', 'zstd'] as const;

/**
 * Bytes handed to the zstd decoder at once. It emits every block it can complete from its
 * input at once, so a small input bounds what one step can make (a block is at most 128 KiB).
 */
const ZSTD_STEP = 16 * 1024;

/**
 * The decompressed bytes of `input`, a stream compressed as a narinfo's `Compression` says, as
 * they are read (memory: the decoder's window, not the file). zstd: fzstd (pure JavaScript; Node's
 * own zstd exists only from 22.15); xz: xz-decompress (xz-embedded compiled to WebAssembly, no
 * native build). A corrupt stream makes the iteration fail.
 */
export function decompress(compression: string, input: AsyncIterable<Uint8Array>, what: string): AsyncIterable<Uint8Array> {
  switch (compression) {
    case 'none':
    case '':
      return input;
    case 'zstd':
      return zstd(input);
    case 'xz':
      return xz(input);
    default:
      throw new BinaryCacheError(
        `${what} is stored with compression ${JSON.stringify(compression)}, which imgbuild cannot read (it reads ${NAR_COMPRESSIONS.join(', ')})`,
        [],
        'recompress the cache: nix copy --to "<cache>?compression=zstd" <paths>',
      );
  }
}

async function* zstd(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let out: Uint8Array[] = [];
  const d = new ZstdDecompress((chunk) => {
    if (chunk.length > 0) out.push(chunk);
  });
  for await (const chunk of input) {
    for (let off = 0; off < chunk.length; off += ZSTD_STEP) {
      d.push(chunk.subarray(off, off + ZSTD_STEP));
      if (out.length > 0) {
        const ready = out;
        out = [];
        for (const chunk of ready) yield chunk; // not yield*: see layer/layer-stream.ts
      }
    }
  }
  d.push(new Uint8Array(0), true);
  for (const chunk of out) yield chunk;
}

interface XzModule {
  XzReadableStream: new (input: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array>;
}

let xzModule: XzModule | undefined;

async function* xz(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  // A webpack bundle (CommonJS): loaded on first use, so a build that reads no xz pays nothing.
  xzModule ??= (createRequire(import.meta.url)('xz-decompress') as XzModule);
  const it = input[Symbol.asyncIterator]();
  const source = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await it.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await it.return?.();
      },
    },
    { highWaterMark: 0 },
  );
  const reader = new xzModule.XzReadableStream(source).getReader();
  let finished = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
  }
}
