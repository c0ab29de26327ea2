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

/** Rejects entries that are not in strictly increasing tree order (this also rejects duplicates). */
export class EntryOrderChecker {
  private previous: Buffer | undefined;
  private previousPath = '';

  check(path: string, pathBytes: Buffer): void {
    if (this.previous !== undefined && compareTreePaths(this.previous, pathBytes) >= 0) {
      const what = this.previous.equals(pathBytes) ? 'a duplicate of the previous entry' : `out of order after ${JSON.stringify(this.previousPath)}`;
      throw new LayerEntryError(
        `layer entry ${JSON.stringify(path)} is ${what}`,
        path,
        'entries must be sorted depth-first with siblings by name bytes (parents before children), each path once',
      );
    }
    this.previous = pathBytes;
    this.previousPath = path;
  }
}

function isWellFormedUtf16(s: string): boolean {
  // String.prototype.isWellFormed exists from Node 20; keep a fallback for older typings.
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return f ? f.call(s) : !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}
