import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PathArchitectures } from './path-architectures.js';

/**
 * What scanning one store path found, saved under `<cacheRoot>/scan/` so that a second build
 * does not read the store again. Valid while the path's files have the same fingerprint.
 */
export interface ScanRecord {
  /**
   * 4 since records carry `storeDir` and `mentioned` (3: `architectures`, 2: `contentId`); a
   * record of another version is a miss (the path is scanned again once).
   */
  v: 4;
  fsPath: string;
  fingerprint: string;
  narSize: number;
  /** content-id.ts: what the path's layer bytes depend on (the layer cache's key for it). */
  contentId: string;
  /** path-architectures.ts: the architectures of the path's ELF files, seen as the scan read them. */
  architectures: PathArchitectures;
  /**
   * Every distinct 32-character base32 window in the path's NAR (bounded). With it, the record
   * answers for any set of candidate hash parts; null when there were too many to keep.
   */
  windows: string[] | null;
  /** Digest of the hash parts looked for, and those found: used when `windows` is null. */
  targetsDigest: string;
  found: string[];
  /** The logical store dir of `mentioned`: a lookup for another one is a miss. */
  storeDir: string;
  /** Hash parts the files write as `<storeDir>/<hash>-` (ref-scanner.ts), sorted; null when there were too many. */
  mentioned: string[] | null;
}

export function targetsDigest(hashParts: Iterable<string>): string {
  return createHash('sha256').update([...hashParts].sort().join('\n')).digest('hex');
}

export class ScanCache {
  constructor(readonly dir: string) {}

  /** One instance per directory in this thread. */
  static at(dir: string): ScanCache {
    let c = instances.get(dir);
    if (!c) instances.set(dir, (c = new ScanCache(dir)));
    return c;
  }

  private fileFor(fsPath: string): string {
    return join(this.dir, `${createHash('sha256').update(fsPath).digest('hex')}.json`);
  }

  /**
   * The hash parts of `targets` found in `fsPath` by an earlier scan, or undefined. `fingerprint`
   * (tree-fingerprint.ts) is called only when there is a record to check: a path never scanned
   * is not walked twice.
   */
  async lookup(
    fsPath: string,
    fingerprint: () => string,
    targets: { has(hashPart: string): boolean },
    digestOfTargets: () => string,
    storeDir: string,
  ): Promise<{ narSize: number; contentId: string; architectures: PathArchitectures; found: string[]; mentioned: string[] | null } | undefined> {
    let rec: ScanRecord;
    try {
      // A synchronous read: a warm build reads one small record per store path, and a thread-pool
      // round trip per call (open, stat, read, close) cost several times the reads themselves.
      rec = JSON.parse(readFileSync(this.fileFor(fsPath), 'utf8')) as ScanRecord;
    } catch {
      return undefined; // absent or unreadable: scan again
    }
    if (rec.v !== 4 || rec.fsPath !== fsPath || typeof rec.contentId !== 'string' || typeof rec.architectures !== 'object' || rec.architectures === null) return undefined;
    if (rec.storeDir !== storeDir || (rec.mentioned !== null && !Array.isArray(rec.mentioned))) return undefined;
    if (rec.fingerprint !== fingerprint()) return undefined;
    const { narSize, contentId, architectures, mentioned } = rec;
    if (rec.windows) return { narSize, contentId, architectures, mentioned, found: rec.windows.filter((w) => targets.has(w)) };
    if (rec.targetsDigest === digestOfTargets()) return { narSize, contentId, architectures, mentioned, found: rec.found };
    return undefined;
  }

  /** Saves a record atomically (temp file + rename), so concurrent builds never read half a file. */
  async save(rec: ScanRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = this.fileFor(rec.fsPath);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(rec));
      await rename(tmp, file);
    } catch {
      // A cache that cannot be written only costs a rescan next time.
      await unlink(tmp).catch(() => undefined);
    }
  }
}

const instances = new Map<string, ScanCache>();
