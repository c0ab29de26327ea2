import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync, type Dirent } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { join } from 'node:path';
import { StoreError } from '../errors.js';
import { ELF_HEAD_BYTES, ELF_MIN_SIZE, elfArchitecture } from './elf.js';
import { isSealed, sealJson } from './sealed-json.js';

/**
 * Which architectures a store path's ELF files are for: Go/OCI architecture name → one file of
 * it, relative to the store path (`''` when the store path is itself the file). The file is the
 * first of that architecture in NAR order (entries sorted by name bytes), so it is the same on
 * every machine. ELF files for machines with no Go name (BPF objects, firmware) are not counted:
 * an image cannot have their architecture, and they do not run on its host anyway.
 */
export type PathArchitectures = Record<string, string>;

/** Keeps, for each architecture, the first file seen; fed files in NAR order. */
export class ArchitectureCollector {
  readonly found: PathArchitectures = {};

  /** `relPath` is called only for the first file of an architecture (decoding every path would cost). */
  add(head: Uint8Array, relPath: () => string): void {
    const elf = elfArchitecture(head);
    if (elf?.kind === 'known' && !Object.hasOwn(this.found, elf.architecture)) this.found[elf.architecture] = relPath();
  }
}

/**
 * The path of `path` below `root` (both raw bytes, `path` under `root`), as a string for messages
 * (a name that is not UTF-8 shows replacement characters).
 */
export function relativeBelow(root: Buffer, path: Buffer): string {
  return path.length === root.length ? '' : path.subarray(root.length + 1).toString();
}

const SLASH = Buffer.from('/');

/**
 * The architectures of `fsPath` found by reading at most the first 64 bytes of each regular file,
 * for sources that never read a path's contents (a Nix store, a closure file's files). Symlinks are
 * not followed (the file they name is counted where it is). Synchronous calls, as in readNarTree:
 * with many small files a thread-pool round trip per call costs more than the call. Files are not
 * stat-ed first to skip short ones: most store files are longer than a header, so an lstat each
 * would cost more than opening the few short ones.
 */
export function walkArchitectures(fsPath: string): PathArchitectures {
  const root = Buffer.from(fsPath);
  const collector = new ArchitectureCollector();
  const head = Buffer.allocUnsafe(ELF_HEAD_BYTES);
  const readHead = (path: Buffer): void => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw cannotRead(path, e);
    }
    let n: number;
    try {
      n = readSync(fd, head, 0, ELF_HEAD_BYTES, 0);
    } catch (e) {
      throw cannotRead(path, e);
    } finally {
      closeSync(fd);
    }
    if (n >= ELF_MIN_SIZE) collector.add(head.subarray(0, n), () => relativeBelow(root, path));
  };
  // In NAR order, with a stack of the directories open (a path may be ~2,000 directories deep).
  const walkDir = (rootDir: Buffer): void => {
    const list = (path: Buffer): { path: Buffer; entries: Dirent<Buffer>[]; i: number } => {
      let entries: Dirent<Buffer>[];
      try {
        entries = readdirSync(path, { withFileTypes: true, encoding: 'buffer' });
      } catch (e) {
        throw cannotRead(path, e);
      }
      entries.sort((a, b) => Buffer.compare(a.name, b.name));
      return { path, entries, i: 0 };
    };
    const stack = [list(rootDir)];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (top.i === top.entries.length) {
        stack.pop();
        continue;
      }
      const e = top.entries[top.i++]!;
      const child = Buffer.concat([top.path, SLASH, e.name]);
      if (e.isDirectory()) stack.push(list(child));
      else if (e.isFile()) readHead(child);
    }
  };
  let st;
  try {
    st = lstatSync(root);
  } catch (e) {
    throw cannotRead(root, e);
  }
  if (st.isDirectory()) walkDir(root);
  else if (st.isFile()) readHead(root);
  return collector.found;
}

function cannotRead(path: Buffer, e: unknown): StoreError {
  return new StoreError(`cannot read ${path.toString()}: ${(e as Error).message}`, [path.toString()], undefined, { cause: e });
}

/**
 * A memoised header walk, saved as `<dir>/elf-<sha256(key)>.json`, sealed with its checksum
 * (sealed-json.ts): a record damaged on disk could name another architecture, and with it put
 * another platform into an image config; it is walked again instead.
 */
interface ArchitecturesRecord {
  v: 2;
  key: string;
  architectures: PathArchitectures;
}

/**
 * Header walks of store paths, memoised in memory and, with a cache dir, on disk, under a key that
 * says the files are the same: a real Nix store path's name (immutable), a closure file's narHash
 * once `--verify-store` found the files match it, else the location and stat fingerprint. Records
 * sit beside the scan records (the scan cache dir, `elf-` prefix), so `cache prune` ages them out
 * with those. No cache dir: nothing is written.
 */
export class ArchitectureWalks {
  private readonly memo = new Map<string, Promise<PathArchitectures>>();
  /** How many walks read files, and how many a record answered. */
  readonly stats = { walked: 0, cached: 0 };

  constructor(readonly cacheDir: string | undefined) {}

  /**
   * `key` is called once, and only with a cache dir (a fingerprint key walks the tree's metadata);
   * undefined: the files cannot be told by a key now (changed within a clock tick: racy.ts), and
   * the walk is neither looked up nor saved.
   */
  of(storePath: string, fsPath: string, key: () => string | undefined): Promise<PathArchitectures> {
    let p = this.memo.get(storePath);
    if (!p) {
      p = this.compute(fsPath, key);
      this.memo.set(storePath, p);
    }
    return p;
  }

  private async compute(fsPath: string, key: () => string | undefined): Promise<PathArchitectures> {
    const k = this.cacheDir ? key() : undefined;
    if (!this.cacheDir || k === undefined) {
      this.stats.walked++;
      return walkArchitectures(fsPath);
    }
    const file = join(this.cacheDir, `elf-${createHash('sha256').update(k).digest('hex')}.json`);
    const cached = readRecord(file, k);
    if (cached) {
      this.stats.cached++;
      return cached;
    }
    const architectures = walkArchitectures(fsPath);
    this.stats.walked++;
    await saveRecord(this.cacheDir, file, { v: 2, key: k, architectures });
    return architectures;
  }
}

function readRecord(file: string, key: string): PathArchitectures | undefined {
  try {
    // Synchronous, as the scan cache's: one small read per store path.
    const text = readFileSync(file, 'utf8');
    if (!isSealed(text)) return undefined;
    const rec = JSON.parse(text) as Partial<ArchitecturesRecord>;
    if (rec.v !== 2 || rec.key !== key || typeof rec.architectures !== 'object' || rec.architectures === null) return undefined;
    return rec.architectures;
  } catch {
    return undefined; // absent or unreadable: walk again
  }
}

/** Written to a temp name and renamed (fs/atomic-write.ts), so a concurrent build never reads half a record; not fsynced, as scan records (scan-cache.ts). */
async function saveRecord(dir: string, file: string, rec: ArchitecturesRecord): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(file, sealJson(JSON.stringify(rec)), { sync: false });
  } catch {
    // A cache that cannot be written only costs a walk next time.
  }
}
