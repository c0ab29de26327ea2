import { createHash, type Hash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { jsonString } from '../../oci/canonical-json.js';
import type { LayerEntry, LayerWriteOptions } from '../layer/types.js';
import type { PermRule } from '../layer/perms.js';
import { DEFLATE_BLOCK_SIZE } from '../layer/gzip.js';
import { NixStoreSource } from '../store/nix-source.js';
import { fingerprintTree } from '../store/tree-fingerprint.js';
import type { StoreSource } from '../store/types.js';
import { LayerContentError } from '../errors.js';

/**
 * The version of the bytes imgbuild writes for given inputs: tar encoding, entry order, mode
 * rule, gzip framing and block size. Bump it whenever any of them changes, so that cached layers
 * written by an older imgbuild are not reused.
 */
export const LAYER_FORMAT_VERSION = `imgbuild-layer-2/gzip-blocks-${DEFLATE_BLOCK_SIZE}`;

/** The writer options that shape a layer's bytes (never the abort signal). */
function optionsPart(options: LayerWriteOptions): string {
  const h = options.header;
  const part = [LAYER_FORMAT_VERSION, options.compressor, h.mtime, h.uid, h.gid, h.uname, h.gname];
  // Only a drifting build's keys carry its deflate's mark: every other key is what it always was.
  if (options.zlibDrift !== undefined) part.push(`zlib-drift:${options.zlibDrift}`);
  return JSON.stringify(part);
}

/**
 * One store path as the key sees it: its name, and, where the name does not fix the bytes, what
 * does: its content id (from a source that read its bytes), or where its files are and a stat
 * fingerprint of their tree.
 */
export interface KeyedPath {
  path: string;
  /** Absent for an immutable store (a real Nix store: the name says it all) and with a content id. */
  fsPath?: string;
  /** `content:<hex>` (store/content-id.ts), or a tree's stat fingerprint (store/tree-fingerprint.ts). */
  fingerprint?: string;
}

/**
 * How each path of a store layer enters the cache key. A real Nix store's paths are immutable,
 * so the name is enough. A source that read the path's bytes gives its content id (a directory
 * store's scan, a closure file's `--verify-store`): the same bytes anywhere, with any file times,
 * give the same key. Otherwise the key has where the path is and a stat fingerprint of its tree,
 * computed here. Either way no file content is read here.
 */
export async function keyedStorePaths(source: StoreSource, given: readonly string[]): Promise<KeyedPath[]> {
  // In path order when it is known (storeLayerKey then need not sort them).
  const paths = inPathOrder.get(given) ?? given;
  const immutable = source instanceof NixStoreSource || source.immutable === true;
  if (immutable) return paths.map((path) => ({ path }));
  // Every content id at once where the source can (a directory store knows them all after its
  // closure): a promise per path of a 50,000-path layer was a tenth of its key's cost.
  const ids = source.pathContentIds ? await source.pathContentIds(paths) : undefined;
  if (ids) {
    return paths.map((path, i) => {
      const content = ids[i];
      if (content) return { path, fingerprint: content };
      const fsPath = source.fsPath(path);
      return { path, fsPath, fingerprint: fingerprintTree(fsPath) };
    });
  }
  return Promise.all(
    paths.map(async (path): Promise<KeyedPath> => {
      const content = await source.pathContentId?.(path);
      if (content) return { path, fingerprint: content };
      const fsPath = source.fsPath(path);
      return { path, fsPath, fingerprint: fingerprintTree(fsPath) };
    }),
  );
}

/** A layer's paths → the same paths sorted (rememberPathOrder). */
const inPathOrder = new WeakMap<readonly string[], readonly string[]>();

/**
 * Notes that `sorted` is `paths` in sorted order (a plan read back knows it from the closure's
 * order), so that a key of `paths` need not sort them: at 50,000 paths, a sort with a comparator
 * was a third of the key. Only a permutation of `paths` may be given (a list not sorted after
 * all is still sorted by storeLayerKey).
 */
export function rememberPathOrder(paths: readonly string[], sorted: readonly string[]): void {
  inPathOrder.set(paths, sorted);
}

/** Cache key (sha256 hex) of a store layer: its paths (sorted), the logical store dir, the writer options. */
export function storeLayerKey(paths: readonly KeyedPath[], storeDir: string, options: LayerWriteOptions, perms: readonly PermRule[] = []): string {
  const h = createHash('sha256').update('store-layer\0').update(optionsPart(options)).update('\0').update(storeDir).update('\0');
  // perms rules change the layer's headers; without any, the key is what it always was.
  if (perms.length > 0) h.update(JSON.stringify(['perms', perms.map((r) => [r.path, r.regex, r.mode ?? null, r.uid ?? null, r.gid ?? null, r.uname ?? null, r.gname ?? null])])).update('\0');
  const byPath = (a: KeyedPath, b: KeyedPath) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  let sorted = true;
  for (let i = 1; i < paths.length && sorted; i++) sorted = byPath(paths[i - 1]!, paths[i]!) <= 0;
  // Per path the line `JSON.stringify([path, fsPath ?? null, fingerprint ?? null])`, written out
  // without an array and a stringify per path (a tenth of a warm build's key at 50,000 paths),
  // hashed in pieces (the same bytes as one update).
  let lines = '';
  for (const p of sorted ? paths : [...paths].sort(byPath)) {
    lines += `[${jsonString(p.path)},${p.fsPath == null ? 'null' : jsonString(p.fsPath)},${p.fingerprint == null ? 'null' : jsonString(p.fingerprint)}]\n`;
    if (lines.length >= 1 << 16) {
      h.update(lines);
      lines = '';
    }
  }
  return h.update(lines).digest('hex');
}

/**
 * Cache key of a layer given as an entry list (the customisation layer). In-memory contents are
 * hashed; a file on disk enters by path and stat (size, mtime, ctime, inode), not by reading it.
 */
export async function entriesKey(entries: readonly LayerEntry[], options: LayerWriteOptions): Promise<string> {
  const h = createHash('sha256').update('entries\0').update(optionsPart(options)).update('\0');
  for (const e of entries) await hashEntry(h, e);
  return h.digest('hex');
}

async function hashEntry(h: Hash, e: LayerEntry): Promise<void> {
  const owner = [e.uid ?? null, e.gid ?? null, e.uname ?? null, e.gname ?? null];
  switch (e.kind) {
    case 'directory':
      h.update(JSON.stringify(['d', e.path, e.mode, owner]));
      break;
    case 'symlink':
      h.update(JSON.stringify(['l', e.path, e.target, owner]));
      break;
    case 'file': {
      let content: unknown;
      if (e.content.from === 'bytes') content = ['bytes', createHash('sha256').update(e.content.data).digest('hex')];
      else if (e.content.from === 'stream') throw new TypeError('a streamed entry has no key of its own (only store layers stream, keyed by their paths)');
      else {
        const fsPath = e.content.fsPath;
        const st = await stat(fsPath).catch((err: unknown) => {
          throw new LayerContentError(`cannot stat ${fsPath}: ${(err as Error).message}`, fsPath);
        });
        content = ['disk', fsPath, e.content.size, st.size, st.mtimeMs, st.ctimeMs, st.ino, st.dev];
      }
      h.update(JSON.stringify(['f', e.path, e.mode, owner, content]));
      break;
    }
  }
  h.update('\n');
}
