import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
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

/** Records kept in memory before they are written as one pack (a few hundred KiB for tiny paths). */
const PACK_RECORDS = 1024;
/** Packs of one store directory read by a closure past which its last flush merges them into one. */
const MERGE_PACKS = 8;

type Found = { narSize: number; contentId: string; architectures: PathArchitectures; found: string[]; mentioned: string[] | null };

/**
 * Scan records of one cache directory. They are written in packs (`pack-<dir>-<unique>.jsonl`,
 * one record a line, `<dir>` naming the store directory of their paths): one file per ~1,000
 * records, where a file per record cost a file creation per store path (50–500 µs each here,
 * most of a cold build of 50,000 tiny paths), and a warm build reads one file per store
 * directory instead of one per path. A pack is written whole (temp file + rename), so concurrent
 * builds never read half of one; two builds may both hold a record for a path, and the one whose
 * fingerprint matches the files answers. A directory's packs are merged into one once a closure
 * has read more than a few. Records of the older layout (`<sha256 of fsPath>.json`) are still read.
 */
export class ScanCache {
  /** The cache directory's file names, listed at the first lookup. */
  private listed: Set<string> | undefined;
  /**
   * Per store directory (scope): the packs read, and where in them each fsPath's records are
   * (pack, offset, length, flat), read and parsed when the path is looked up: memory holds a
   * path's name and three numbers, not its record.
   */
  private readonly scopes = new Map<string, Scope>();
  /** Records saved and not yet written, by scope. */
  private pending = new Map<string, ScanRecord[]>();
  private pendingCount = 0;
  /** fsPaths whose records were found stale (fingerprint changed): not carried into a merged pack. */
  private readonly stale = new Set<string>();

  constructor(readonly dir: string) {}

  private legacyName(fsPath: string): string {
    return `${createHash('sha256').update(fsPath).digest('hex')}.json`;
  }

  /** Whether the listing holds any record of the older layout (else no path's name is hashed to look for one). */
  private hasLegacy: boolean | undefined;
  /** Scope keys by store directory: a sha256 per path looked up or saved was ~5% of a warm build. */
  private readonly keys = new Map<string, string>();

  private scopeKey(fsPath: string): string {
    const dir = dirname(fsPath);
    let key = this.keys.get(dir);
    if (key === undefined) this.keys.set(dir, (key = createHash('sha256').update(dir).digest('hex').slice(0, 16)));
    return key;
  }

  private scopeOf(fsPath: string): Scope {
    const key = this.scopeKey(fsPath);
    let scope = this.scopes.get(key);
    if (!scope) {
      scope = { key, records: new Map(), packs: [], fds: [] };
      this.listed ??= listFiles(this.dir);
      const prefix = `pack-${key}-`;
      for (const name of [...this.listed].sort()) {
        if (!name.startsWith(prefix) || !name.endsWith('.jsonl')) continue;
        const pack = scope.packs.length;
        let fd: number;
        try {
          fd = openSync(join(this.dir, name), 'r');
        } catch {
          continue; // merged away by another build since the listing: its records are in the merged pack
        }
        scope.packs.push(name);
        scope.fds.push(fd);
        eachLine(fd, (line, offset, length) => {
          const path = fsPathOf(line);
          if (path === undefined) return;
          const list = scope!.records.get(path);
          if (list) list.push(pack, offset, length);
          else scope!.records.set(path, [pack, offset, length]);
        });
      }
      this.scopes.set(key, scope);
    }
    return scope;
  }

  /** The record lines of `where` (flat pack, offset, length triples); a pack gone since is skipped. */
  private linesAt(scope: Scope, where: readonly number[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < where.length; i += 3) {
      const pack = where[i]!;
      try {
        scope.fds[pack] ??= openSync(join(this.dir, scope.packs[pack]!), 'r');
        const buf = Buffer.allocUnsafe(where[i + 2]!);
        if (readSync(scope.fds[pack]!, buf, 0, buf.length, where[i + 1]!) === buf.length) out.push(buf.toString('utf8'));
      } catch {
        // merged away by another build: as if absent
      }
    }
    return out;
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
  ): Promise<Found | undefined> {
    const scope = this.scopeOf(fsPath);
    const candidates: ScanRecord[] = [];
    for (const line of this.linesAt(scope, scope.records.get(fsPath) ?? [])) {
      try {
        candidates.push(JSON.parse(line) as ScanRecord);
      } catch {
        // not a record: as if absent
      }
    }
    // A path is looked up once per closure: its records are let go, unless a merge will want them.
    if (scope.packs.length <= MERGE_PACKS) scope.records.delete(fsPath);
    this.hasLegacy ??= [...this.listed!].some((name) => name.endsWith('.json'));
    const legacy = this.hasLegacy ? this.legacyName(fsPath) : undefined;
    if (legacy !== undefined && this.listed!.has(legacy)) {
      try {
        candidates.push(JSON.parse(readFileSync(join(this.dir, legacy), 'utf8')) as ScanRecord);
      } catch {
        // unreadable: as if absent
      }
    }
    if (candidates.length === 0) return undefined;
    let print: string | undefined;
    for (const rec of candidates.reverse()) {
      if (rec.v !== 4 || rec.fsPath !== fsPath || typeof rec.contentId !== 'string' || typeof rec.architectures !== 'object' || rec.architectures === null) continue;
      if (rec.storeDir !== storeDir || (rec.mentioned !== null && !Array.isArray(rec.mentioned))) continue;
      if (rec.fingerprint !== (print ??= fingerprint())) continue;
      const { narSize, contentId, architectures, mentioned } = rec;
      if (rec.windows) return { narSize, contentId, architectures, mentioned, found: rec.windows.filter((w) => targets.has(w)) };
      if (rec.targetsDigest === digestOfTargets()) return { narSize, contentId, architectures, mentioned, found: rec.found };
    }
    if (print !== undefined) this.stale.add(fsPath);
    return undefined;
  }

  /** Keeps a record to write with the next pack (`flush`; written at once past PACK_RECORDS). */
  save(rec: ScanRecord): void {
    const key = this.scopeKey(rec.fsPath);
    const list = this.pending.get(key);
    if (list) list.push(rec);
    else this.pending.set(key, [rec]);
    if (++this.pendingCount >= PACK_RECORDS) this.writePending(false);
  }

  /**
   * Writes the records kept so far. At the end of a closure (`merge`), a store directory whose
   * packs read were more than MERGE_PACKS gets them merged into one (stale records dropped).
   */
  flush(): void {
    this.writePending(true);
  }

  private writePending(merge: boolean): void {
    const pending = this.pending;
    this.pending = new Map();
    this.pendingCount = 0;
    const keys = new Set(pending.keys());
    if (merge) for (const [key, scope] of this.scopes) if (scope.packs.length > MERGE_PACKS) keys.add(key);
    for (const key of keys) {
      const scope = merge ? this.scopes.get(key) : undefined;
      const fresh = pending.get(key) ?? [];
      if (scope && scope.packs.length > MERGE_PACKS) {
        // Every record still worth keeping: the new ones, and the old ones of paths whose files
        // were not seen changed (paths of other images of the same store too).
        const kept = fresh.map((r) => JSON.stringify(r));
        const renewed = new Set(fresh.map((r) => r.fsPath));
        for (const [fsPath, where] of scope.records) {
          if (renewed.has(fsPath) || this.stale.has(fsPath)) continue;
          kept.push(...new Set(this.linesAt(scope, where))); // the same record saved twice (two builds at once) kept once
        }
        if (this.writePack(key, kept)) {
          for (const name of scope.packs) {
            try {
              unlinkSync(join(this.dir, name));
            } catch {
              // merged by another build already
            }
          }
          scope.packs = [];
          scope.records.clear();
        }
      } else if (fresh.length > 0) this.writePack(key, fresh.map((r) => JSON.stringify(r)));
    }
    // Packs are opened again if a later lookup needs them; none is held open between closures.
    if (merge) {
      for (const scope of this.scopes.values()) {
        for (const fd of scope.fds) if (fd !== undefined) closeSync(fd);
        scope.fds = [];
      }
    }
  }

  /** Writes one pack of JSON lines atomically; false when it could not be written (a rescan next time, nothing worse). */
  private writePack(key: string, lines: string[]): boolean {
    const name = `pack-${key}-${Date.now().toString(36)}-${process.pid}-${threadId}-${Math.random().toString(36).slice(2)}.jsonl`;
    const file = join(this.dir, name);
    const tmp = `${file}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(tmp, lines.map((l) => `${l}\n`).join(''));
      renameSync(tmp, file);
      return true;
    } catch {
      try {
        unlinkSync(tmp);
      } catch {
        // never written
      }
      return false;
    }
  }
}

interface Scope {
  key: string;
  records: Map<string, number[]>;
  packs: string[];
  /** An open descriptor per pack while a closure reads it (undefined: open it again when needed). */
  fds: (number | undefined)[];
}

/** Calls `take` with each non-empty line of the file and its byte offset and length, reading 1 MiB at a time. */
function eachLine(fd: number, take: (line: string, offset: number, length: number) => void): void {
  const chunk = Buffer.allocUnsafe(1 << 20);
  let carry: Buffer = Buffer.alloc(0);
  let carryAt = 0;
  for (let pos = 0; ; ) {
    const n = readSync(fd, chunk, 0, chunk.length, pos);
    if (n === 0) break;
    const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
    const base = carry.length > 0 ? carryAt : pos;
    let start = 0;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
      if (nl > start) take(data.toString('utf8', start, Math.min(nl, start + 4096)), base + start, nl - start);
      start = nl + 1;
    }
    carry = Buffer.from(data.subarray(start));
    carryAt = base + start;
    pos += n;
  }
}

const RECORD_START = '{"v":4,"fsPath":';

/**
 * The fsPath of a record line without parsing it all (records are written `{"v":4,"fsPath":…,
 * "fingerprint":…`); any other line is parsed. A wrong answer costs nothing: lookup checks the
 * parsed record's fsPath.
 */
function fsPathOf(line: string): string | undefined {
  if (line.startsWith(RECORD_START)) {
    const end = line.indexOf('","fingerprint":', RECORD_START.length);
    if (end > 0) {
      try {
        return JSON.parse(line.slice(RECORD_START.length, end + 1)) as string;
      } catch {
        // fall through to a full parse
      }
    }
  }
  try {
    const rec = JSON.parse(line) as { fsPath?: unknown };
    return typeof rec?.fsPath === 'string' ? rec.fsPath : undefined;
  } catch {
    return undefined;
  }
}

function listFiles(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir));
  } catch {
    return new Set(); // no scan dir yet: every lookup misses
  }
}

/** Every scan record under `dir`, packs and single files alike, in file-name order (for tests and inspection). */
export function readScanRecords(dir: string): ScanRecord[] {
  const out: ScanRecord[] = [];
  for (const name of [...listFiles(dir)].sort()) {
    if (name.endsWith('.jsonl')) {
      for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) if (line) out.push(JSON.parse(line) as ScanRecord);
    } else if (name.endsWith('.json')) out.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as ScanRecord);
  }
  return out;
}

/** Replaces every scan record under `dir` with `records` (any shape: tests write old versions), as packs. */
export function replaceScanRecords(dir: string, records: readonly object[]): void {
  for (const name of listFiles(dir)) if (name.endsWith('.json') || name.endsWith('.jsonl')) unlinkSync(join(dir, name));
  const cache = new ScanCache(dir);
  for (const r of records) cache.save(r as ScanRecord);
  cache.flush();
}
