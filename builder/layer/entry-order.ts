import { LayerEntryError } from './errors.js';

const SLASH = 0x2f;

/**
 * The order of entries in a layer: depth-first, parents before children, siblings sorted by the
 * bytes of their names (what GNU tar --sort=name produces). Comparing two paths byte by byte with
 * `/` ranked below every other byte gives exactly that order, without splitting into components:
 * `a` < `a/x` < `a.txt` < `ab`.
 */
export function compareTreePaths(a: Uint8Array, b: Uint8Array): number {
  return compareTreeBytes(a, a.length, b, b.length);
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

/** `compareTreePaths` of `a[0..aLength)` and `b[0..bLength)`. */
export function compareTreeBytes(a: Uint8Array, aLength: number, b: Uint8Array, bLength: number): number {
  const n = Math.min(aLength, bLength);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return aLength - bLength;
}

/**
 * Whether `path[0..n)` (UTF-8) is a clean relative path, what `checkEntryPath` accepts for an
 * ASCII path, in one pass over the bytes. False is not a verdict: `checkEntryPath` then says
 * whether and why the path is wrong.
 */
export function isCleanPathBytes(path: Uint8Array, n: number): boolean {
  if (n === 0) return false;
  let start = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? path[i]! : SLASH;
    if (c === SLASH) {
      const len = i - start;
      if (len === 0) return false; // leading, trailing or doubled slash
      if (len <= 2 && path[start] === 0x2e && (len === 1 || path[start + 1] === 0x2e)) return false;
      start = i + 1;
    } else if (c === 0 || c >= 0x80) {
      return false;
    }
  }
  return true;
}

/** Paths longer than this (in UTF-16 units) are never staged: no one-block header holds them. */
const STAGE_MAX = 256;

/**
 * Rejects entries that are not in strictly increasing tree order (this also rejects duplicates).
 * Besides `check`, the writer's fast path stages a path (its bytes encoded into a scratch buffer
 * the checker owns, nothing allocated) and commits it once its header is written.
 */
export class EntryOrderChecker {
  private previous: Uint8Array | undefined;
  private previousLength = 0;
  private previousPath = '';
  /** Two scratch buffers: the staged path's bytes go in the one the previous path is not in. */
  private readonly scratch = [Buffer.allocUnsafe(3 * STAGE_MAX), Buffer.allocUnsafe(3 * STAGE_MAX)];
  private staging = 0;

  check(path: string, pathBytes: Buffer): void {
    if (this.previous !== undefined) this.judge(compareTreeBytes(this.previous, this.previousLength, pathBytes, pathBytes.length), path);
    this.previous = pathBytes;
    this.previousLength = pathBytes.length;
    this.previousPath = path;
  }

  /**
   * The UTF-8 bytes of `path` in a scratch buffer (valid until the next stage or check), with
   * their count; undefined when the path is longer than 256 units or not ASCII. Checks nothing.
   */
  stage(path: string): { bytes: Buffer; length: number } | undefined {
    if (path.length > STAGE_MAX) return undefined;
    const bytes = this.scratch[this.staging]!;
    const length = bytes.write(path, 0, 'utf8');
    if (length !== path.length) return undefined;
    this.staged.bytes = bytes;
    this.staged.length = length;
    return this.staged;
  }

  /** `check` for the path just staged. */
  commitStaged(path: string): void {
    const { bytes, length } = this.staged;
    if (this.previous !== undefined) this.judge(compareTreeBytes(this.previous, this.previousLength, bytes, length), path);
    this.previous = bytes;
    this.previousLength = length;
    this.previousPath = path;
    this.staging ^= 1;
  }

  private readonly staged = { bytes: this.scratch[0]!, length: 0 };

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
