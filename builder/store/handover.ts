import { isUtf8 } from 'node:buffer';
import type { NarNode } from './nar.js';

/**
 * What a directory store's scan learned of one path, handed to the layer writer and the closure
 * record so that they need not walk and read the path again (a cold build read every tiny path
 * twice, and lstat-ed every entry a third time for its closure record).
 *
 * One record of bytes per path, made by the thread that scanned it; records of a worker's batch
 * share one SharedArrayBuffer, so the main thread keeps them and a layer worker reads them
 * without a copy or an object per path:
 *
 *   u32 record length, u24 count of stat-list values (0: none), u8 flags (1: every file's bytes
 *   are in the record), the values (float64s in this
 *   machine's byte order, as sizes below: what stat-list.ts hashes), u32 hash of the path's base name (a
 *   reader checks it is the path it asked for: nameHash), then the listing: the path's tree in NAR
 *   order (a node before its entries, entries sorted by name bytes), each node
 *
 *   u8 kind, u16 name length, the name (none for the root), then
 *     DIR:     u16 mode bits (the special bits), its entries, END;
 *     FILE:    u16 mode bits (special bits, 0o100 when executable), float64 size: read from disk;
 *     INLINE:  the same, then the file's bytes as the scan read them;
 *     SYMLINK: u16 target length, the target.
 *
 * Names and targets are UTF-8 (a path with any other name has no listing: the layer writer's walk
 * refuses it with its own message). Nothing in it changes a layer's bytes: a layer written from it
 * is the layer written by walking the same files (test/store-handover.test.ts).
 */
export const HANDOVER_KIND = { END: 0, DIR: 1, FILE: 2, INLINE: 3, SYMLINK: 4 } as const;

/** A path whose files are all at most this size is handed over with their bytes (while its record stays under its cap). */
export const INLINE_FILE_MAX = 16 * 1024;

/** A record's flag: every regular file's bytes are in it (a layer of such paths reads nothing from disk). */
export const FLAG_ALL_INLINE = 1;

/** Whether every regular file of the record's path (the one at `at` of `record`) has its bytes in the record. */
export function handoverAllInline(record: Uint8Array, at = 0): boolean {
  return (record[at + 7]! & FLAG_ALL_INLINE) !== 0;
}

/** Records of at least this many bytes are made in a SharedArrayBuffer of their own. */
export const SHARED_MIN = 256 * 1024;

/** Offsets in a record. */
export const HEAD = 8;

/** The bytes of one path's record, with where each regular file's bytes go (NAR order; -1: not inlined), for the dump to fill. */
export interface HandoverDraft {
  bytes: Buffer;
  slots: number[];
}

/**
 * The record of the tree `tree` of the path named `baseName`, with the stat-list values `values`
 * (or none), its small files' bytes left to fill (`slots`); undefined when the listing alone is
 * over `maxBytes` or a name is not UTF-8. Files are inlined when none is over INLINE_FILE_MAX and
 * the whole record stays within `maxBytes`.
 */
export function draftHandover(baseName: string, values: readonly number[] | null, tree: NarNode, maxBytes: number): HandoverDraft | undefined {
  const nValues = values?.length ?? 0;
  const sizes = { listing: 0, small: 0, big: 0 };
  if (!measure(tree, sizes)) return undefined;
  const fixed = HEAD + 8 * nValues + 4;
  if (fixed + sizes.listing > maxBytes) return undefined;
  // Only a path of small files has their bytes kept: one with a big file is read from disk
  // anyway (by a worker), and the small files of a real store's big paths added tens of MiB of
  // peak RSS to the 1 GB corpus build for little.
  const inline = sizes.big === 0 && fixed + sizes.listing + sizes.small <= maxBytes;
  const length = fixed + sizes.listing + (inline ? sizes.small : 0);
  // A big record (a path of many files) is made in shared memory at once: a worker hands it over as it is.
  const bytes = length >= SHARED_MIN ? Buffer.from(new SharedArrayBuffer(length)) : Buffer.allocUnsafe(length);
  bytes.writeUInt32LE(length, 0);
  if (nValues > 0xffffff) return undefined;
  bytes.writeUInt32LE(nValues, 4);
  bytes[7] = inline && sizes.big === 0 ? FLAG_ALL_INLINE : 0;
  let at = HEAD;
  // As a Float64Array's bytes are (this machine's order): what stat-list.ts hashes.
  if (values) for (let i = 0; i < nValues; i++, at += 8) putF64(bytes, at, values[i]!);
  bytes.writeUInt32LE(nameHash(baseName), at);
  at += 4;
  const slots: number[] = [];
  at = write(tree, bytes, at, inline, slots);
  if (at !== length) throw new Error(`handover: wrote ${at} bytes of ${length}`);
  return { bytes, slots };
}

const EMPTY = Buffer.alloc(0);

/**
 * Adds the listing bytes of `tree` (files' bytes apart) to `sizes`; false at a name or target that
 * is not UTF-8 or too long. A sum over the nodes, taken from a stack in any order: no call per
 * level (a path on disk may be ~2,000 directories deep).
 */
function measure(tree: NarNode, sizes: { listing: number; small: number; big: number }): boolean {
  const nodes: NarNode[] = [tree];
  const nameLengths: number[] = [0];
  while (nodes.length > 0) {
    const node = nodes.pop()!;
    const nameLength = nameLengths.pop()!;
    if (nameLength > 0xffff) return false;
    sizes.listing += 3 + nameLength;
    switch (node.type) {
      case 'regular':
        sizes.listing += 2 + 8;
        if (node.size <= INLINE_FILE_MAX) sizes.small += node.size;
        else sizes.big++;
        break;
      case 'symlink':
        if (node.target.length > 0xffff || !utf8(node.target)) return false;
        sizes.listing += 2 + node.target.length;
        break;
      case 'directory':
        sizes.listing += 2 + 1;
        for (const [name, child] of node.entries) {
          if (!utf8(name)) return false;
          nodes.push(child);
          nameLengths.push(name.length);
        }
        break;
    }
  }
  return true;
}

/** Whether `bytes` are UTF-8: a plain loop over an ASCII name (nearly every name) costs less than the native call. */
export function utf8(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return isUtf8(bytes);
  return true;
}

// Fields are written by hand, not with Buffer's write methods or copy: a path of 200,000 files
// has 200,000 nodes, and their checks and calls were most of the record's cost.

export function u16(out: Buffer, at: number, value: number): void {
  out[at] = value & 0xff;
  out[at + 1] = value >>> 8;
}

export function bytesAt(out: Buffer, at: number, bytes: Uint8Array): void {
  if (bytes.length > 32) out.set(bytes, at);
  else for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i]!;
}

const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);

/** A float64 in this machine's byte order (as a Float64Array holds it). */
export function putF64(out: Uint8Array, at: number, value: number): void {
  F64[0] = value;
  for (let i = 0; i < 8; i++) out[at + i] = F64_BYTES[i]!;
}

/** The float64 putF64 wrote. */
export function getF64(buf: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) F64_BYTES[i] = buf[at + i]!;
  return F64[0]!;
}

/** The listing of `tree` from `at` on, in NAR order (a directory's entries, then its END), with a stack of its own; where it ends. */
function write(tree: NarNode, out: Buffer, at: number, inline: boolean, slots: number[]): number {
  at = writeNode(tree, EMPTY, out, at, inline, slots);
  if (tree.type !== 'directory') return at;
  const stack: Array<{ entries: Array<[Buffer, NarNode]>; i: number }> = [{ entries: tree.entries, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i === top.entries.length) {
      stack.pop();
      out[at++] = HANDOVER_KIND.END;
      continue;
    }
    const [name, child] = top.entries[top.i++]!;
    at = writeNode(child, name, out, at, inline, slots);
    if (child.type === 'directory') stack.push({ entries: child.entries, i: 0 });
  }
  return at;
}

/** One node's fields (a directory's up to its entries); where they end. */
function writeNode(node: NarNode, name: Buffer, out: Buffer, at: number, inline: boolean, slots: number[]): number {
  const kind = node.type === 'directory' ? HANDOVER_KIND.DIR : node.type === 'symlink' ? HANDOVER_KIND.SYMLINK : inline && node.size <= INLINE_FILE_MAX ? HANDOVER_KIND.INLINE : HANDOVER_KIND.FILE;
  out[at] = kind;
  u16(out, at + 1, name.length);
  bytesAt(out, at + 3, name);
  at += 3 + name.length;
  switch (node.type) {
    case 'regular':
      u16(out, at, (node.special ?? 0) | (node.executable ? 0o100 : 0));
      putF64(out, at + 2, node.size);
      at += 10;
      if (kind === HANDOVER_KIND.INLINE) {
        slots.push(at);
        at += node.size;
      } else slots.push(-1);
      return at;
    case 'symlink':
      u16(out, at, node.target.length);
      bytesAt(out, at + 2, node.target);
      return at + 2 + node.target.length;
    case 'directory':
      u16(out, at, node.special ?? 0);
      return at + 2;
  }
}

/** A record's length (its first field). */
export function handoverLength(buf: Uint8Array, at: number): number {
  return (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16)) + buf[at + 3]! * 0x1000000;
}

/** The bytes of a record's stat-list values (PER_NODE float64s a node), empty when it has none. */
export function handoverValues(record: Uint8Array): Uint8Array {
  const n = record[4]! | (record[5]! << 8) | (record[6]! << 16);
  return record.subarray(HEAD, HEAD + 8 * n);
}

/** Where a record's base name hash is; its listing follows it. */
export function handoverNameAt(record: Uint8Array): number {
  const n = record[4]! | (record[5]! << 8) | (record[6]! << 16);
  return HEAD + 8 * n;
}

/** FNV-1a of a base name's UTF-16 units: names the path a record is of (a record given for another path is not used). */
export function nameHash(baseName: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < baseName.length; i++) h = Math.imul(h ^ baseName.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * The entries below the path, relative and `/`-separated, in NAR order: the names of its
 * stat-list check (stat-list.ts), which a record with values stands for.
 */
export function handoverNames(buf: Buffer): string[] {
  let at = handoverNameAt(buf) + 4;
  const names: string[] = [];
  const dirs: string[] = [];
  for (;;) {
    const kind = buf[at]!;
    if (kind === HANDOVER_KIND.END) {
      at += 1;
      dirs.pop();
      if (dirs.length === 0) return names;
      continue;
    }
    const n = buf.readUInt16LE(at + 1);
    let rel = '';
    if (dirs.length > 0) {
      const name = buf.toString('latin1', at + 3, at + 3 + n);
      const parent = dirs[dirs.length - 1]!;
      rel = parent === '' ? name : `${parent}/${name}`;
      names.push(rel);
    }
    at += 3 + n;
    if (kind === HANDOVER_KIND.DIR) {
      at += 2;
      dirs.push(rel);
    } else if (kind === HANDOVER_KIND.SYMLINK) at += 2 + buf.readUInt16LE(at);
    else at += 10 + (kind === HANDOVER_KIND.INLINE ? getF64(buf, at + 2) : 0);
    if (dirs.length === 0) return names;
  }
}
