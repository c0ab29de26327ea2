import { getF64, HANDOVER_KIND, handoverNameAt, nameHash } from '../store/handover.js';
import { canonicalDirMode, canonicalFileMode } from './modes.js';
import type { LayerEntry } from './types.js';

/**
 * The layer entries of one store path from its scan's hand-over record (store/handover.ts): the
 * entries treeEntries gives by walking the same files (same order, names, modes, sizes, targets),
 * without a readdir or lstat; a small file's bytes as the scan read them (`from: 'bytes'`), a
 * larger one read from `fsPath` as the walk would. Undefined when the record is not the path
 * named `baseName`'s (then the caller walks).
 */
export function handoverEntries(record: Uint8Array, baseName: string, fsPath: string, imagePath: string): Generator<LayerEntry> | undefined {
  const buf = Buffer.isBuffer(record) ? record : Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  const at = handoverNameAt(buf);
  if (buf.readUInt32LE(at) !== nameHash(baseName)) return undefined;
  return entries(buf, at + 4, fsPath, imagePath);
}

/** Lazily, as the walk is: a path of 200,000 files is not made into 200,000 entries at once. */
function* entries(buf: Buffer, at: number, fsPath: string, imagePath: string): Generator<LayerEntry> {
  // Each open directory's image path and fs path.
  const images: string[] = [];
  const fss: string[] = [];
  for (;;) {
    const kind = buf[at]!;
    if (kind === HANDOVER_KIND.END) {
      images.pop();
      fss.pop();
      at += 1;
      if (images.length === 0) break;
      continue;
    }
    const n = (buf[at + 1]! | (buf[at + 2]! << 8));
    at += 3;
    let image: string;
    let fs: string;
    if (images.length === 0) {
      image = imagePath;
      fs = fsPath;
    } else {
      const name = (buf as unknown as Utf8Slicing).utf8Slice(at, at + n);
      image = `${images[images.length - 1]!}/${name}`;
      fs = `${fss[fss.length - 1]!}/${name}`;
    }
    at += n;
    if (kind === HANDOVER_KIND.DIR) {
      yield { kind: 'directory', path: image, mode: canonicalDirMode(buf[at]! | (buf[at + 1]! << 8)) };
      at += 2;
      images.push(image);
      fss.push(fs);
      continue;
    }
    if (kind === HANDOVER_KIND.SYMLINK) {
      const t = buf[at]! | (buf[at + 1]! << 8);
      yield { kind: 'symlink', path: image, target: (buf as unknown as Utf8Slicing).utf8Slice(at + 2, at + 2 + t) };
      at += 2 + t;
    } else {
      const mode = canonicalFileMode(buf[at]! | (buf[at + 1]! << 8));
      const size = getF64(buf, at + 2);
      at += 10;
      if (kind === HANDOVER_KIND.INLINE) {
        yield { kind: 'file', path: image, mode, content: { from: 'bytes', data: buf.subarray(at, at + size) } };
        at += size;
      } else yield { kind: 'file', path: image, mode, content: { from: 'disk', fsPath: fs, size } };
    }
    if (images.length === 0) break; // the root was a file or a symlink
  }
}

/** Buffer's own slice decoder (what `toString('utf8', start, end)` calls after checking its arguments). */
interface Utf8Slicing {
  utf8Slice(start: number, end: number): string;
}
