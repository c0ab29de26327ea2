import { checkEntryPath, EntryOrderChecker } from './entry-order.js';
import { readFileExactly } from './file-content.js';
import { SYMLINK_MODE } from './modes.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeaderFields } from './tar-header.js';
import type { LayerEntry, TarHeaderDefaults } from './types.js';

/** Small pieces (headers, small files, padding) are gathered into chunks of about this size. */
const BATCH = 64 * 1024;
const ZEROS = Buffer.alloc(512);

/**
 * The bytes of a tar archive of `entries`, as a stream of chunks. Entries must already be in tree
 * order (checked: an entry out of order or repeated is a LayerEntryError). Every header takes its
 * mtime and, unless the entry overrides them, its owner from `defaults`; nothing comes from the host.
 * File contents are streamed, so memory stays bounded by the chunk sizes whatever the file sizes.
 */
export async function* tarChunks(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  defaults: TarHeaderDefaults,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const order = new EntryOrderChecker();
  const batch = new Batch();
  for await (const entry of entries) {
    signal?.throwIfAborted();
    checkEntryPath(entry.path);
    order.check(entry.path, Buffer.from(entry.path, 'utf8'));
    const fields: TarHeaderFields = {
      path: entry.path,
      type: entry.kind,
      mode: entry.kind === 'symlink' ? SYMLINK_MODE : entry.mode,
      uid: entry.uid ?? defaults.uid,
      gid: entry.gid ?? defaults.gid,
      uname: entry.uname ?? defaults.uname,
      gname: entry.gname ?? defaults.gname,
      mtime: defaults.mtime,
      size: 0,
    };
    if (entry.kind === 'symlink') fields.linkname = entry.target;
    if (entry.kind !== 'file') {
      yield* batch.add(encodeHeader(fields));
      continue;
    }
    const content = entry.content;
    fields.size = content.from === 'disk' ? content.size : content.data.byteLength;
    yield* batch.add(encodeHeader(fields));
    if (content.from === 'bytes') {
      yield* batch.add(Buffer.from(content.data.buffer, content.data.byteOffset, content.data.byteLength));
    } else {
      for await (const chunk of readFileExactly(content.fsPath, content.size, signal)) yield* batch.add(chunk);
    }
    const pad = padding(fields.size);
    if (pad > 0) yield* batch.add(ZEROS.subarray(0, pad));
  }
  yield* batch.add(END_OF_ARCHIVE);
  yield* batch.flush();
}

/** Gathers small buffers so that downstream hashing and deflate see few, reasonably large chunks. */
class Batch {
  private parts: Buffer[] = [];
  private length = 0;

  *add(buf: Buffer): Generator<Buffer> {
    if (buf.length >= BATCH) {
      yield* this.flush();
      yield buf;
      return;
    }
    this.parts.push(buf);
    this.length += buf.length;
    if (this.length >= BATCH) yield* this.flush();
  }

  *flush(): Generator<Buffer> {
    if (this.length === 0) return;
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    yield out;
  }
}
