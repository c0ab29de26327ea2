import { LayerEntryError } from './errors.js';

const SLASH = 0x2f;

/**
 * The order of entries in a layer: depth-first, parents before children, siblings sorted by the
 * bytes of their names (what GNU tar --sort=name produces). Comparing two paths byte by byte with
 * `/` ranked below every other byte gives exactly that order, without splitting into components:
 * `a` < `a/x` < `a.txt` < `ab`.
 */
export function compareTreePaths(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/** Throws LayerEntryError unless `path` is a clean relative path (no leading/trailing `/`, no `.`/`..`/empty parts, no NUL). */
export function checkEntryPath(path: string): void {
  const bad = (why: string): never => {
    throw new LayerEntryError(`invalid layer entry path ${JSON.stringify(path)}: ${why}`, path);
  };
  if (path.length === 0) bad('empty');
  if (path.includes('\0')) bad('contains a NUL byte');
  if (path.startsWith('/')) bad('must be relative (no leading "/")');
  if (path.endsWith('/')) bad('must not end with "/"');
  for (const part of path.split('/')) {
    if (part === '') bad('contains an empty component ("//")');
    if (part === '.' || part === '..') bad(`contains a "${part}" component`);
  }
  if (!isWellFormedUtf16(path)) bad('contains a lone surrogate (not encodable as UTF-8)');
}

/**
 * `compareTreePaths` for two strings of ASCII only (whose UTF-16 units are their UTF-8 bytes),
 * without encoding them: the writer compares every entry with the one before.
 */
export function compareAsciiTreePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Whether `path` is a clean relative path (what `checkEntryPath` accepts) of ASCII characters
 * only, in one pass over it without allocating. False is not a verdict: `checkEntryPath` then
 * says whether and why the path is wrong (it accepts clean non-ASCII paths).
 */
export function isCleanAsciiPath(path: string): boolean {
  const n = path.length;
  if (n === 0) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      const len = i - start;
      if (len === 0) return false; // leading, trailing or doubled slash
      if (len <= 2 && path.charCodeAt(start) === 0x2e && (len === 1 || path.charCodeAt(start + 1) === 0x2e)) return false;
      start = i + 1;
    } else if (c === 0 || c >= 0x80) {
      return false;
    }
  }
  return true;
}

/** Rejects entries that are not in strictly increasing tree order (this also rejects duplicates). */
export class EntryOrderChecker {
  /** The previous entry's UTF-8 bytes, when it was not checked as ASCII. */
  private previous: Buffer | undefined;
  private previousPath: string | undefined;
  private previousAscii = false;

  check(path: string, pathBytes: Buffer): void {
    if (this.previousPath !== undefined) {
      const previous = this.previousAscii ? Buffer.from(this.previousPath, 'latin1') : this.previous!;
      this.judge(compareTreePaths(previous, pathBytes), path);
    }
    this.previous = pathBytes;
    this.previousPath = path;
    this.previousAscii = false;
  }

  /** `check` for a path of ASCII characters only (the common case), without encoding it. */
  checkAscii(path: string): void {
    if (this.previousPath !== undefined) {
      this.judge(this.previousAscii ? compareAsciiTreePaths(this.previousPath, path) : compareTreePaths(this.previous!, Buffer.from(path, 'latin1')), path);
    }
    this.previous = undefined;
    this.previousPath = path;
    this.previousAscii = true;
  }

  private judge(order: number, path: string): void {
    if (order < 0) return;
    const what = order === 0 ? 'a duplicate of the previous entry' : `out of order after ${JSON.stringify(this.previousPath)}`;
    throw new LayerEntryError(
      `layer entry ${JSON.stringify(path)} is ${what}`,
      path,
      'entries must be sorted depth-first with siblings by name bytes (parents before children), each path once',
    );
  }
}

function isWellFormedUtf16(s: string): boolean {
  // String.prototype.isWellFormed exists from Node 20; keep a fallback for older typings.
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return f ? f.call(s) : !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}
