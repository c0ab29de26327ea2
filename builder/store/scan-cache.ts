import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { jsonString } from '../../oci/canonical-json.js';
import { hasSealShape, isSealed, sealJson } from './sealed-json.js';
import type { PathArchitectures } from './path-architectures.js';
import { statListFingerprint } from './stat-list.js';
import { fingerprintTree } from './tree-fingerprint.js';

/**
 * What scanning one store path found, saved under `<cacheRoot>/scan/` so that a second build
 * does not read the store again. Valid while the path's files have the same fingerprint.
 */
export interface ScanRecord {
  /**
   * 7 since the values that check a record hold each file's inode number, and a record is made
   * only of a scan whose files' ctimes were safely older than it (racy.ts): a record of 6 could
   * be trusted for a path replaced by files of the same sizes and times;
   * 6 since a record line ends with its checksum (sealed-json.ts: `"sum"`, the sha256 of the line
   * before it; a line that does not match it is damaged, not used, and the path scanned again);
   * 5: records carry `names` (a small path is checked by an lstat per entry, stat-list.ts) and
   * leave out `found` when `windows` answers (4: `storeDir` and `mentioned`, 3: `architectures`,
   * 2: `contentId`); a record of another version is a miss (the path is scanned again once:
   * a record without a checksum is never trusted).
   */
  v: 7;
  fsPath: string;
  /**
   * The entries below fsPath, relative, in NAR order, when there are few (stat-list.ts): then
   * `fingerprint` is their stat-list fingerprint. null: it is fingerprintTree's.
   */
  names: string[] | null;
  fingerprint: string;
  narSize: number;
  /** content-id.ts: what the path's layer bytes depend on (the layer cache's key for it). */
  contentId: string;
  /** path-architectures.ts: the architectures of the path's ELF files, seen as the scan read them. */
  architectures: PathArchitectures;
  /**
   * Every distinct 32-character base32 window in the path's NAR (bounded), sorted, written one
   * after the other (one string to parse, not one per window). With it, the record answers for
   * any set of candidate hash parts; null when there were too many to keep.
   */
  windows: string | null;
  /** Only when `windows` is null: the digest of the hash parts looked for, and those found. */
  targetsDigest?: string;
  found?: string[];
  /** The logical store dir of `mentioned`: a lookup for another one is a miss. */
  storeDir: string;
  /**
   * Hash parts the files write as `<storeDir>/<hash>-` (ref-scanner.ts), sorted, one after the
   * other as `windows`; `true` when they are exactly the windows (a path whose every window is a
   * store path it names, the usual case); null when there were too many.
   */
  mentioned: string | true | null;
}

/** A record as its line in a pack: its JSON, built in ScanRecord's order, ending with its checksum (sealed-json.ts). */
export function scanRecordLine(rec: ScanRecord): string {
  return sealJson(JSON.stringify(rec));
}

/** The 32-character hash parts of a string of them written one after the other. */
export function splitHashes(joined: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 32 <= joined.length; i += 32) out.push(joined.slice(i, i + 32));
  return out;
}

export function targetsDigest(hashParts: Iterable<string>): string {
  return createHash('sha256').update([...hashParts].sort().join('\n')).digest('hex');
}

/** Bytes of record lines gathered before they are appended to the pack being written. */
const WRITE_CHUNK = 256 * 1024;
/** Packs of one store directory read by a closure past which its last flush merges them into one. */
const MERGE_PACKS = 8;

/** `check`: the record's names and fingerprint (what vouched for it; a closure record keeps them). */
export type Found = { narSize: number; contentId: string; architectures: PathArchitectures; found: string[]; mentioned: string[] | null; check: PathCheck };

/** How a path's scan is seen to still hold: its entries' names and their stat-list fingerprint, or (names null) its tree's stat fingerprint. */
export interface PathCheck {
  names: string[] | null;
  fingerprint: string;
}

/** Every record line starts so (records are written by JSON.stringify of an object built in this order). */
const RECORD_START = Buffer.from('{"v":7,"fsPath":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const SLASH = 0x2f;
/** A location in a scope's packs: pack index × 2^32 + byte offset of the line. */
const PACK_UNIT = 2 ** 32;

/**
 * Scan records of one cache directory. They are written in packs (`pack-<dir>-<unique>.jsonl`,
 * one record a line, `<dir>` naming the store directory of their paths), one per build and store
 * directory, appended to under a temp name as the scan goes and renamed when the closure ends
 * (a file per record cost a file creation per store path; packs of 1,000 in memory made a first
 * warm build merge 50 of them). A build whose every path had a record writes nothing. Concurrent
 * builds never read half a pack; two may both hold a record for a path, and the newest whose
 * fingerprint matches the files answers. A directory's packs are merged into one once a closure
 * has read more than a few.
 *
 * A lookup costs a Map get, one read of the record's line and its JSON.parse: the packs are
 * indexed once (each line's fsPath sliced out, nothing parsed), and memory holds a path's name
 * and one number, not its record.
 */
export class ScanCache {
  /** The cache directory's file names, listed at the first lookup. */
  private listed: string[] | undefined;
  private readonly scopes = new Map<string, Scope>();
  /** Records saved and not yet written, by scope: lines gathered, and the pack they go to. */
  private readonly writing = new Map<string, Writing>();
  /** fsPaths whose records were found stale (fingerprint changed): not carried into a merged pack. */
  private readonly stale = new Set<string>();
  /** One buffer for reading record lines (a line is parsed before the next is read). */
  private lineBuf = Buffer.allocUnsafe(4096);

  /**
   * `onDamaged`: told of a record line whose checksum does not match (damaged on disk), with a
   * line for stderr; the record is not used and the path is scanned again.
   */
  constructor(
    readonly dir: string,
    private readonly onDamaged?: (message: string) => void,
  ) {}

  /** Record lines found damaged (pack and offset), each said once. */
  private readonly damagedSaid = new Set<number>();

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
      scope = { key, index: new Map(), older: new Map(), packs: [], fds: [] };
      this.listed ??= listFiles(this.dir).sort();
      const prefix = `pack-${key}-`;
      for (const name of this.listed) {
        if (!name.startsWith(prefix) || !name.endsWith('.jsonl')) continue;
        let fd: number;
        try {
          fd = openSync(join(this.dir, name), 'r');
        } catch {
          continue; // merged away by another build since the listing: its records are in the merged pack
        }
        scope.packs.push(name);
        scope.fds.push(fd);
        indexPack(fd, scope.packs.length - 1, scope);
      }
      this.scopes.set(key, scope);
    }
    return scope;
  }

  /** The record line at `where` (PACK_UNIT encoding), or undefined when its pack is gone or short. */
  private lineAt(scope: Scope, where: number): string | undefined {
    const pack = Math.floor(where / PACK_UNIT);
    let pos = where - pack * PACK_UNIT;
    try {
      const fd = (scope.fds[pack] ??= openSync(join(this.dir, scope.packs[pack]!), 'r'));
      let len = 0;
      for (;;) {
        if (len === this.lineBuf.length) {
          const bigger = Buffer.allocUnsafe(this.lineBuf.length * 2);
          this.lineBuf.copy(bigger);
          this.lineBuf = bigger;
        }
        const n = readSync(fd, this.lineBuf, len, this.lineBuf.length - len, pos);
        if (n === 0) return undefined;
        const nl = this.lineBuf.indexOf(NEWLINE, len);
        if (nl >= 0 && nl < len + n) return this.lineBuf.toString('utf8', 0, nl);
        len += n;
        pos += n;
      }
    } catch {
      return undefined; // merged away by another build: as if absent
    }
  }

  /** Locations of fsPath's records in the scope's packs, newest first. */
  private where(scope: Scope, fsPath: string): number[] | undefined {
    const key = jsonKey(fsPath.slice(fsPath.lastIndexOf('/') + 1));
    const newest = scope.index.get(key);
    if (newest === undefined) return undefined;
    const older = scope.older.get(key);
    return older ? [newest, ...[...older].reverse()] : [newest];
  }

  /**
   * What an earlier scan of `fsPath` found, if a record's fingerprint still matches the files
   * (stat-list.ts for a small path, fingerprintTree for another: no file is read), else
   * undefined. `targets`: the hash parts looked for (the store's entries).
   */
  lookup(fsPath: string, targets: { has(hashPart: string): boolean }, digestOfTargets: () => string, storeDir: string): Found | undefined {
    const scope = this.scopeOf(fsPath);
    const where = this.where(scope, fsPath);
    if (where === undefined) return undefined;
    for (const at of where) {
      const line = this.lineAt(scope, at);
      if (line === undefined) continue;
      if (!isSealed(line)) {
        // Damaged on disk (or not a record of this version): never trusted.
        if (!this.damagedSaid.has(at)) {
          this.damagedSaid.add(at);
          this.onDamaged?.(`cache: ${join(this.dir, scope.packs[Math.floor(at / PACK_UNIT)]!)} holds a damaged scan record of ${fsPath} (its checksum does not match); scanned the path again`);
        }
        continue;
      }
      let rec: ScanRecord;
      try {
        rec = JSON.parse(line) as ScanRecord;
      } catch {
        continue; // not a record: as if absent
      }
      if (!validRecord(rec, fsPath, storeDir)) continue;
      if (!fingerprintMatches(rec, fsPath)) continue;
      const { narSize, contentId, architectures, windows } = rec;
      const check = { names: rec.names, fingerprint: rec.fingerprint };
      const mentioned = rec.mentioned === true ? (windows === null ? null : splitHashes(windows)) : rec.mentioned === null ? null : splitHashes(rec.mentioned);
      if (windows !== null) {
        const found: string[] = [];
        for (let i = 0; i + 32 <= windows.length; i += 32) {
          const w = windows.slice(i, i + 32);
          if (targets.has(w)) found.push(w);
        }
        return { narSize, contentId, architectures, mentioned, found, check };
      }
      if (rec.targetsDigest === digestOfTargets() && Array.isArray(rec.found)) return { narSize, contentId, architectures, mentioned, found: rec.found, check };
    }
    // The path is scanned again and saved anew: a merge drops these records.
    this.stale.add(fsPath);
    return undefined;
  }

  /** Keeps a record to write: appended to this build's pack for the store directory (renamed into place by `flush`). */
  save(rec: ScanRecord): void {
    this.saveLine(rec.fsPath, scanRecordLine(rec));
  }

  /** `save` of a record already made a line (scanRecordLine: a worker's scan sends its record so). */
  saveLine(fsPath: string, json: string): void {
    const key = this.scopeKey(fsPath);
    let w = this.writing.get(key);
    if (!w) this.writing.set(key, (w = { lines: [], bytes: 0, fd: undefined, file: undefined, failed: false }));
    w.lines.push(json, '\n');
    w.bytes += json.length + 1;
    if (w.bytes >= WRITE_CHUNK) this.append(key, w);
  }

  /** Appends the lines gathered to the scope's temp pack (opened at the first); a failure drops the pack (a rescan next time, nothing worse). */
  private append(key: string, w: Writing): void {
    const text = w.lines.join('');
    w.lines = [];
    w.bytes = 0;
    if (w.failed || text.length === 0) return;
    try {
      if (w.fd === undefined) {
        mkdirSync(this.dir, { recursive: true });
        w.file = join(this.dir, `pack-${key}-${Date.now().toString(36)}-${process.pid}-${threadId}-${Math.random().toString(36).slice(2)}.jsonl`);
        w.fd = openSync(`${w.file}.tmp`, 'wx');
      }
      writeSync(w.fd, text);
    } catch {
      w.failed = true;
    }
  }

  /**
   * Writes the records saved so far (each store directory's pack renamed into place). At the
   * end of a closure, a store directory whose packs read were more than MERGE_PACKS gets them
   * merged into one (stale records dropped).
   */
  flush(options: { release?: boolean } = {}): void {
    const keys = new Set(this.writing.keys());
    for (const [key, scope] of this.scopes) if (scope.packs.length > MERGE_PACKS) keys.add(key);
    for (const key of keys) {
      const w = this.writing.get(key) ?? { lines: [], bytes: 0, fd: undefined, file: undefined, failed: false };
      this.writing.delete(key);
      const scope = this.scopes.get(key);
      const merge = scope !== undefined && scope.packs.length > MERGE_PACKS;
      if (merge) {
        // Every record still worth keeping: the new ones, and the old ones of paths whose files
        // were not seen changed (paths of other images of the same store too). A path whose
        // record did not answer was scanned again: its new record is among the new ones.
        const dir = dirOfScope(this.keys, key);
        for (const [jsonName, newest] of scope.index) {
          if (this.stale.has(`${dir === '/' ? '' : dir}/${unJsonKey(jsonName)}`)) continue;
          const seen = new Set<string>(); // the same record saved twice (two builds at once) kept once
          for (const at of [newest, ...(scope.older.get(jsonName) ?? [])]) {
            const line = this.lineAt(scope, at);
            // A damaged line is not carried into the merged pack.
            if (line === undefined || seen.has(line) || !isSealed(line)) continue;
            seen.add(line);
            w.lines.push(line, '\n');
            w.bytes += line.length + 1;
            if (w.bytes >= WRITE_CHUNK) this.append(key, w);
          }
        }
      }
      this.append(key, w);
      if (w.fd === undefined) continue;
      let written = false;
      try {
        closeSync(w.fd);
        if (!w.failed) {
          renameSync(`${w.file!}.tmp`, w.file!);
          written = true;
        }
      } catch {
        // not written: a rescan next time
      }
      if (!written) {
        try {
          unlinkSync(`${w.file!}.tmp`);
        } catch {
          // never made
        }
      }
      const name = w.file!.slice(this.dir.length + 1);
      if (merge && written) {
        for (const fd of scope.fds) if (fd !== undefined) closeSync(fd);
        for (const old of scope.packs) {
          try {
            unlinkSync(join(this.dir, old));
          } catch {
            // merged by another build already
          }
        }
        // Indexed again from the merged pack if a later closure looks a path up.
        const gone = new Set(scope.packs);
        this.listed = this.listed?.filter((n) => !gone.has(n));
        this.scopes.delete(key);
      }
      // A scope indexed already does not see its new pack: its paths were just scanned, and a
      // source asks for a path once.
      if (written) this.listed?.push(name);
    }
    // Packs are opened again if a later lookup needs them; none is held open between closures.
    for (const scope of this.scopes.values()) {
      for (const fd of scope.fds) if (fd !== undefined) closeSync(fd);
      scope.fds = scope.fds.map(() => undefined);
    }
    // At a closure's end its paths are known to the source: the index (a name and a number per
    // path) is let go, and made again if another closure looks a path up.
    if (options.release) this.scopes.clear();
  }
}

/** The store directory whose scope key is `key` (the scope was looked up, so it is there). */
function dirOfScope(keys: ReadonlyMap<string, string>, key: string): string {
  for (const [dir, k] of keys) if (k === key) return dir;
  return '';
}

interface Scope {
  key: string;
  /**
   * The last component of fsPath, as written in the record (JSON-escaped) → the location of its
   * newest record (PACK_UNIT encoding). A pack holds the records of one directory's entries.
   */
  index: Map<string, number>;
  /** The locations of older records of the same path (two builds at once, a path rescanned), oldest first. */
  older: Map<string, number[]>;
  packs: string[];
  /** An open descriptor per pack while a closure reads it (undefined: open it again when needed). */
  fds: (number | undefined)[];
}

interface Writing {
  lines: string[];
  bytes: number;
  fd: number | undefined;
  file: string | undefined;
  failed: boolean;
}

function validRecord(rec: ScanRecord, fsPath: string, storeDir: string): boolean {
  return (
    typeof rec === 'object' &&
    rec !== null &&
    rec.v === 7 &&
    rec.fsPath === fsPath &&
    typeof rec.fingerprint === 'string' &&
    typeof rec.narSize === 'number' &&
    typeof rec.contentId === 'string' &&
    typeof rec.architectures === 'object' &&
    rec.architectures !== null &&
    rec.storeDir === storeDir &&
    (rec.mentioned === null || rec.mentioned === true || typeof rec.mentioned === 'string') &&
    (rec.windows === null || typeof rec.windows === 'string') &&
    (rec.names === null || Array.isArray(rec.names))
  );
}

function fingerprintMatches(rec: ScanRecord, fsPath: string): boolean {
  try {
    return rec.fingerprint === (rec.names ? statListFingerprint(fsPath, rec.names) : fingerprintTree(fsPath));
  } catch {
    return false; // unreadable now: the scan says why
  }
}

/** How a name appears between the quotes of a record line. */
function jsonKey(name: string): string {
  return jsonString(name).slice(1, -1);
}

function unJsonKey(key: string): string {
  return key.includes('\\') ? (JSON.parse(`"${key}"`) as string) : key;
}

/**
 * Indexes one pack: for each line that is a record of this version, its fsPath (as written,
 * JSON-escaped) → where the line starts. Read 1 MiB at a time; no line is parsed.
 */
function indexPack(fd: number, pack: number, scope: Scope): void {
  const chunk = Buffer.allocUnsafe(1 << 20);
  let carry: Buffer = Buffer.alloc(0);
  let carryAt = 0;
  for (let pos = 0; ; ) {
    const n = readSync(fd, chunk, 0, chunk.length, pos);
    if (n === 0) break;
    const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
    const base = carry.length > 0 ? carryAt : pos;
    let start = 0;
    for (let nl = data.indexOf(NEWLINE); nl >= 0; nl = data.indexOf(NEWLINE, start)) {
      const from = start + RECORD_START.length;
      if (nl > from && data.compare(RECORD_START, 0, RECORD_START.length, start, from) === 0) {
        // The closing quote: the first one not escaped (a backslash escapes the next byte).
        let q = data.indexOf(QUOTE, from);
        if (q > from && data[q - 1] === BACKSLASH) {
          q = from;
          while (q < nl && data[q] !== QUOTE) q += data[q] === BACKSLASH ? 2 : 1;
        }
        if (q >= from && q < nl) {
          // The last component: a pack holds one directory's entries.
          const slash = data.lastIndexOf(SLASH, q);
          const key = data.toString('utf8', slash >= from ? slash + 1 : from, q);
          const at = pack * PACK_UNIT + base + start;
          const newest = scope.index.get(key);
          if (newest !== undefined) {
            const older = scope.older.get(key);
            if (older) older.push(newest);
            else scope.older.set(key, [newest]);
          }
          scope.index.set(key, at);
        }
      }
      start = nl + 1;
    }
    carry = Buffer.from(data.subarray(start));
    carryAt = base + start;
    pos += n;
  }
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return []; // no scan dir yet: every lookup misses
  }
}

/** Every scan record under `dir`, packs and single files alike, in file-name order (for tests and inspection). */
export function readScanRecords(dir: string): ScanRecord[] {
  const out: ScanRecord[] = [];
  for (const name of listFiles(dir).sort()) {
    if (name.endsWith('.jsonl')) {
      for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) if (line) out.push(JSON.parse(line) as ScanRecord);
    } else if (name.endsWith('.json')) out.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as ScanRecord);
  }
  return out;
}

/**
 * Replaces every scan record under `dir` with `records` (any shape: tests write old versions), as
 * one pack; each line sealed with its checksum (`sealed`: false writes them bare, as versions
 * before 6 were).
 */
export function replaceScanRecords(dir: string, records: readonly object[], options: { sealed?: boolean } = {}): void {
  for (const name of listFiles(dir)) if (name.endsWith('.json') || name.endsWith('.jsonl')) unlinkSync(join(dir, name));
  const cache = new ScanCache(dir);
  for (const r of records) cache.saveLine((r as ScanRecord).fsPath, options.sealed === false ? JSON.stringify(r) : scanRecordLine(r as ScanRecord));
  cache.flush();
}

/** A damaged line of a scan record pack (`cache verify`): its number (1-based) and what is wrong. */
export interface DamagedScanLine {
  line: number;
  problem: string;
}

/**
 * The lines of a pack's text a build can trust or ignores harmlessly (`kept`: sealed records, and
 * records of older versions, which a build never uses), and those that are damaged: a line that
 * is not JSON (torn), or a record of this version whose checksum does not match.
 */
export function checkScanPack(text: string): { lines: number; kept: string[]; damaged: DamagedScanLine[] } {
  const kept: string[] = [];
  const damaged: DamagedScanLine[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    if (isSealed(line)) {
      kept.push(line);
      return;
    }
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      damaged.push({ line: i + 1, problem: `line ${i + 1} is not JSON (torn or damaged)` });
      return;
    }
    const r = rec as Partial<ScanRecord> | null;
    if (hasSealShape(line) || (typeof r === 'object' && r !== null && r.v === 7)) {
      damaged.push({ line: i + 1, problem: `line ${i + 1}, the scan record of ${String(r?.fsPath)}, does not match its checksum (a field was damaged)` });
      return;
    }
    kept.push(line); // another version: never used, goes with --older-than
  });
  return { lines: lines.length, kept, damaged };
}
