import { LayerEntryError } from './errors.js';

/**
 * Encoding of one tar header (POSIX ustar, pax extended header only when a value does not fit).
 * We write the bytes ourselves rather than through a library so that a layer's digest depends on
 * this file only: every field, padding byte and terminator below is part of the reproducibility
 * contract (see the golden vectors in test/layer-write.test.ts).
 *
 * Field conventions (the same as GNU tar's posix format): numbers are zero-padded octal followed
 * by one NUL; the checksum is six octal digits, NUL, space; magic `ustar\0`, version `00`.
 */

export const BLOCK = 512;

/** Read only: the empty link name and prefix of most headers, shared instead of allocated per entry. */
const EMPTY = Buffer.alloc(0);

export type TarEntryType = 'file' | 'directory' | 'symlink';

export interface TarHeaderFields {
  /** Path inside the archive, relative, without a trailing slash (added here for directories). */
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch. */
  mtime: number;
  /** Content size in bytes (0 for directories and symlinks). */
  size: number;
  /** Symlink target, verbatim. */
  linkname?: string;
}

const TYPEFLAG: Record<TarEntryType, number> = { file: 0x30, symlink: 0x32, directory: 0x35 };
const TYPEFLAG_PAX = 0x78; // 'x': extended header for the next entry

/** Largest value of an octal field of `width` bytes (width-1 digits + NUL). */
const maxOctal = (width: number): number => 8 ** (width - 1) - 1;
export const MAX_USTAR_SIZE = maxOctal(12); // 8 GiB - 1
export const MAX_ID = maxOctal(8); // 2097151
export const MAX_MTIME = maxOctal(12); // year 2242

/**
 * The header block(s) of an entry: one ustar block, preceded by a pax extended header (its own
 * block plus its records, padded) when the path or link target is not ASCII or too long, or the
 * size is 8 GiB or more. Nothing else ever goes into pax records (no atime/ctime, no mtime).
 */
export function encodeHeader(h: TarHeaderFields): Buffer {
  checkFields(h);
  const name = Buffer.from(h.type === 'directory' ? `${h.path}/` : h.path, 'utf8');
  const link = h.linkname === undefined ? undefined : Buffer.from(h.linkname, 'utf8');

  const records: [string, Buffer][] = [];
  const split = isAscii(name) ? splitUstarName(name) : undefined;
  if (!split) records.push(['path', name]);
  const linkFits = link === undefined || (isAscii(link) && link.length <= 100);
  if (!linkFits) records.push(['linkpath', link!]);
  const sizeFits = h.size <= MAX_USTAR_SIZE;
  if (!sizeFits) records.push(['size', Buffer.from(String(h.size))]);
  records.sort((a, b) => (a[0] < b[0] ? -1 : 1));

  const main = ustarBlock({
    name: split ?? fallbackName(name),
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    // A size held in a pax record is written as 0 in the ustar field (as Go's archive/tar does).
    size: sizeFits ? h.size : 0,
    mtime: h.mtime,
    typeflag: TYPEFLAG[h.type],
    linkname: link === undefined ? EMPTY : linkFits ? link : asciiFallback(link, 100),
    uname: h.uname,
    gname: h.gname,
  });
  if (records.length === 0) return main;

  const body = encodePaxRecords(records);
  const paxHeader = ustarBlock({
    name: { name: paxHeaderName(name), prefix: Buffer.alloc(0) },
    mode: 0o644,
    uid: h.uid,
    gid: h.gid,
    size: body.length,
    mtime: h.mtime,
    typeflag: TYPEFLAG_PAX,
    linkname: Buffer.alloc(0),
    uname: h.uname,
    gname: h.gname,
  });
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main]);
}

/** Zero bytes needed after `size` bytes of content to reach a block boundary. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

/** pax records: `<len> <key>=<value>\n`, where <len> counts the whole record including itself. */
export function encodePaxRecords(records: [string, Buffer][]): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const rest = Buffer.byteLength(` ${key}=\n`) + value.length;
      let digits = 1;
      while (String(rest + digits).length !== digits) digits++;
      const len = rest + digits;
      return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
    }),
  );
}

interface UstarName {
  name: Buffer;
  prefix: Buffer;
}

/**
 * ustar stores up to 255 bytes as `prefix` (≤155) + `/` + `name` (≤100), split at a slash. Like
 * GNU tar and Go's archive/tar we split at the last slash that leaves the prefix short enough
 * (never a directory's trailing slash), so our headers are byte-identical to theirs. That split
 * gives the shortest possible name part, so if it does not fit, no split does.
 */
function splitUstarName(path: Buffer): UstarName | undefined {
  if (path.length <= 100) return { name: path, prefix: EMPTY };
  let end = path.length;
  if (end > 156) end = 156;
  else if (path[end - 1] === 0x2f) end--;
  const i = path.subarray(0, end).lastIndexOf(0x2f);
  const nameLength = path.length - i - 1;
  if (i <= 0 || nameLength === 0 || nameLength > 100) return undefined;
  return { prefix: path.subarray(0, i), name: path.subarray(i + 1) };
}

/** What a reader without pax support sees when the real path is in a pax record: ASCII, truncated. */
function fallbackName(path: Buffer): UstarName {
  return { name: asciiFallback(path, 100), prefix: Buffer.alloc(0) };
}

function paxHeaderName(path: Buffer): Buffer {
  const trimmed = path[path.length - 1] === 0x2f ? path.subarray(0, -1) : path;
  const base = trimmed.subarray(trimmed.lastIndexOf(0x2f) + 1);
  return asciiFallback(Buffer.concat([Buffer.from('PaxHeaders/'), base]), 100);
}

function asciiFallback(bytes: Buffer, max: number): Buffer {
  const out = Buffer.from(bytes.subarray(0, max));
  for (let i = 0; i < out.length; i++) if (out[i]! >= 0x80) out[i] = 0x5f; // '_'
  return out;
}

function isAscii(bytes: Buffer): boolean {
  for (const b of bytes) if (b >= 0x80) return false;
  return true;
}

interface BlockFields {
  name: UstarName;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: number;
  linkname: Buffer;
  uname: string;
  gname: string;
}

function ustarBlock(f: BlockFields): Buffer {
  // From Node's pool and zeroed here: a header per entry, and Buffer.alloc's own allocation of
  // 512 zeroed bytes cost more than the fill (a layer of 200,000 tiny files has 200,000).
  const b = Buffer.allocUnsafe(BLOCK).fill(0);
  f.name.name.copy(b, 0);
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  b[156] = f.typeflag;
  f.linkname.copy(b, 157);
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.write(f.uname, 265, 'latin1');
  b.write(f.gname, 297, 'latin1');
  octal(b, 329, 8, 0); // devmajor
  octal(b, 337, 8, 0); // devminor
  f.name.prefix.copy(b, 345);
  // Indexed loops, not string formatting or iterators: a store layer has tens of thousands of
  // headers, and this function was a visible share of an uncompressed build's CPU.
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  octal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/** `value` as `width - 1` zero-padded octal digits and a NUL (arithmetic, not bit operations: values pass 2^32). */
function octal(b: Buffer, offset: number, width: number, value: number): void {
  let v = value;
  for (let i = offset + width - 2; i >= offset; i--) {
    b[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  b[offset + width - 1] = 0;
}

function checkFields(h: TarHeaderFields): void {
  const fail = (msg: string): never => {
    throw new LayerEntryError(`layer entry ${JSON.stringify(h.path)}: ${msg}`, h.path);
  };
  const int = (v: number, max: number, what: string): void => {
    if (!Number.isSafeInteger(v) || v < 0 || v > max) fail(`${what} ${v} is not an integer in 0..${max}`);
  };
  int(h.mode, 0o7777, 'mode');
  int(h.uid, MAX_ID, 'uid');
  int(h.gid, MAX_ID, 'gid');
  int(h.mtime, MAX_MTIME, 'mtime');
  int(h.size, Number.MAX_SAFE_INTEGER, 'size');
  for (const [what, v] of [['uname', h.uname], ['gname', h.gname]] as const) {
    // 31 bytes leave room for the field's terminating NUL; non-ASCII would need a pax record.
    if (!/^[\x01-\x7f]{0,31}$/.test(v)) fail(`${what} ${JSON.stringify(v)} must be at most 31 ASCII characters`);
  }
  if (h.linkname !== undefined && (h.linkname.length === 0 || h.linkname.includes('\0'))) {
    fail('symlink target must be non-empty and contain no NUL byte');
  }
}

/**
 * The one-block header of the common entry, written straight into the tar's buffer: the fields
 * every header shares (owner, mtime, magic, device numbers) are laid out once in a template, and
 * each entry copies it and fills in only its name, mode, size, type and link name. The bytes are
 * exactly `encodeHeader`'s (test/layer-tar-header.test.ts compares the two on many entries);
 * it only covers the entries that need no pax record and carry the defaults' owner, and says so
 * by returning false (having written nothing), so the caller falls back to `encodeHeader`.
 *
 * Why: a store of many small files spends more time on headers than on their content; the
 * general encoder's allocations (a Buffer per name, per header, per record list) and its octal
 * formatting of every field were a tenth of a cold build of 200,000 files.
 */
export class SimpleHeaderWriter {
  private readonly template = Buffer.alloc(BLOCK);
  /** Sum of the template's bytes, the checksum field counted as spaces. */
  private readonly templateSum: number;

  constructor(h: { uid: number; gid: number; uname: string; gname: string; mtime: number }) {
    const t = this.template;
    octal(t, 108, 8, h.uid);
    octal(t, 116, 8, h.gid);
    octal(t, 136, 12, h.mtime);
    t.fill(0x20, 148, 156);
    t.write('ustar\0', 257, 'latin1');
    t.write('00', 263, 'latin1');
    t.write(h.uname, 265, 'latin1');
    t.write(h.gname, 297, 'latin1');
    octal(t, 329, 8, 0);
    octal(t, 337, 8, 0);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += t[i]!;
    this.templateSum = sum;
  }

  /**
   * Writes the header of the entry whose path is the ASCII bytes `name[0..n)` (clean: the caller
   * has checked it) at `b[off..off+512)` and returns true, or returns false having written
   * nothing when this entry needs the general encoder (a name that needs pax, a link name that is
   * not short ASCII, a size past 8 GiB). `mode` and `size` must be valid (checked by the caller,
   * as checkFields would).
   */
  write(b: Buffer, off: number, name: Uint8Array, n: number, type: TarEntryType, mode: number, size: number, linkname: string | undefined): boolean {
    const dir = type === 'directory';
    const nameLength = dir ? n + 1 : n;
    // The ustar split (as splitUstarName, on the path's bytes without a directory's slash).
    let split = -1;
    if (nameLength > 100) {
      let end = nameLength > 156 ? 156 : dir ? nameLength - 1 : nameLength;
      if (end > n) end = n;
      for (let i = end - 1; i >= 0; i--) {
        if (name[i] === 0x2f) {
          split = i;
          break;
        }
      }
      if (split <= 0 || nameLength - split - 1 > 100) return false;
    }
    if (linkname !== undefined && (linkname.length === 0 || linkname.length > 100 || !isAsciiString(linkname) || linkname.includes('\0'))) return false;
    if (size > MAX_USTAR_SIZE) return false;

    this.template.copy(b, off);
    let sum = this.templateSum;
    if (split < 0) {
      sum += copyBytes(b, off, name, 0, n);
      if (dir) {
        b[off + n] = 0x2f;
        sum += 0x2f;
      }
    } else {
      sum += copyBytes(b, off + 345, name, 0, split);
      sum += copyBytes(b, off, name, split + 1, n);
      if (dir) {
        b[off + n - split - 1] = 0x2f;
        sum += 0x2f;
      }
    }
    sum += octalSum(b, off + 100, 8, mode);
    sum += octalSum(b, off + 124, 12, size);
    const flag = TYPEFLAG[type];
    b[off + 156] = flag;
    sum += flag;
    if (linkname !== undefined) sum += writeAscii(b, off + 157, linkname);
    octalSum(b, off + 148, 7, sum);
    b[off + 155] = 0x20;
    return true;
  }
}

/** Copies `src[from..to)` to `b[off..)`; returns the sum of the bytes. */
function copyBytes(b: Buffer, off: number, src: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) {
    const c = src[i]!;
    b[off + i - from] = c;
    sum += c;
  }
  return sum;
}

/** Whether every UTF-16 unit of `s` is ASCII (then its UTF-8 bytes are its units). */
export function isAsciiString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Writes the ASCII string `s` at `b[off..)`; returns the sum of its bytes. */
function writeAscii(b: Buffer, off: number, s: string): number {
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    b[off + i] = c;
    sum += c;
  }
  return sum;
}

/** `octal`, returning the sum of the digits written (small values by integer arithmetic, the rest as `octal` does). */
function octalSum(b: Buffer, offset: number, width: number, value: number): number {
  let sum = 0;
  if (value <= 0x7fffffff) {
    let v = value | 0;
    for (let i = offset + width - 2; i >= offset; i--) {
      const digit = 0x30 + (v & 7);
      b[i] = digit;
      sum += digit;
      v >>>= 3;
    }
  } else {
    let v = value;
    for (let i = offset + width - 2; i >= offset; i--) {
      const digit = 0x30 + (v % 8);
      b[i] = digit;
      sum += digit;
      v = Math.floor(v / 8);
    }
  }
  b[offset + width - 1] = 0;
  return sum;
}
