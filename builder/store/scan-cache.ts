import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NarNode } from './nar.js';

/**
 * What scanning one store path found, saved under `<cacheRoot>/scan/` so that a second build
 * does not read the store again. Valid while the path's files have the same fingerprint.
 */
export interface ScanRecord {
  v: 1;
  fsPath: string;
  fingerprint: string;
  narSize: number;
  /**
   * Every distinct 32-character base32 window in the path's NAR (bounded). With it, the record
   * answers for any set of candidate hash parts; null when there were too many to keep.
   */
  windows: string[] | null;
  /** Digest of the hash parts looked for, and those found: used when `windows` is null. */
  targetsDigest: string;
  found: string[];
}

/**
 * A digest of everything about a file tree that could change its scan: names, types, sizes,
 * modes, mtimes, ctimes and symlink targets. Store paths never change, so any difference
 * means the directory is not a real store and the path must be scanned again.
 */
export function treeFingerprint(node: NarNode): string {
  const h = createHash('sha256');
  const walk = (n: NarNode): void => {
    switch (n.type) {
      case 'regular':
        h.update(`r${n.executable ? 'x' : '-'}${n.size}:${n.mtimeMs}:${n.ctimeMs};`);
        return;
      case 'symlink':
        h.update(`l${n.target.length}:`).update(n.target);
        return;
      case 'directory':
        h.update(`d${n.entries.length}(`);
        for (const [name, child] of n.entries) {
          h.update(`${name.length}:`).update(name);
          walk(child);
        }
        h.update(')');
        return;
    }
  };
  walk(node);
  return h.digest('hex');
}

export function targetsDigest(hashParts: Iterable<string>): string {
  return createHash('sha256').update([...hashParts].sort().join('\n')).digest('hex');
}

export class ScanCache {
  constructor(private readonly dir: string) {}

  private fileFor(fsPath: string): string {
    return join(this.dir, `${createHash('sha256').update(fsPath).digest('hex')}.json`);
  }

  /** The hash parts of `targets` found in `fsPath` by an earlier scan, or undefined. */
  async lookup(
    fsPath: string,
    fingerprint: string,
    targets: { has(hashPart: string): boolean },
    digestOfTargets: () => string,
  ): Promise<{ narSize: number; found: string[] } | undefined> {
    let rec: ScanRecord;
    try {
      rec = JSON.parse(await readFile(this.fileFor(fsPath), 'utf8')) as ScanRecord;
    } catch {
      return undefined; // absent or unreadable: scan again
    }
    if (rec.v !== 1 || rec.fsPath !== fsPath || rec.fingerprint !== fingerprint) return undefined;
    if (rec.windows) return { narSize: rec.narSize, found: rec.windows.filter((w) => targets.has(w)) };
    if (rec.targetsDigest === digestOfTargets()) return { narSize: rec.narSize, found: rec.found };
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
