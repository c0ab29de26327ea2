import { createHash } from 'node:crypto';
import { contentId } from './content-id.js';
import { ELF_HEAD_BYTES, ELF_MIN_SIZE } from './elf.js';
import { dumpNar, narSize, readNarTree } from './nar.js';
import { ArchitectureCollector, relativeBelow, type PathArchitectures } from './path-architectures.js';
import { RefScanner } from './ref-scanner.js';
import { targetsDigest, type ScanCache, type ScanRecord } from './scan-cache.js';
import { sharedValueOf, type Shareable } from './shared-value.js';
import { fingerprintTree, treeFingerprint } from './tree-fingerprint.js';

/** What one store path of a directory store holds, as far as the closure needs it. */
export interface StorePathScan {
  narSize: number;
  /** content-id.ts: the NAR's sha256 and special mode bits; the layer cache's key for the path. */
  contentId: string;
  /** path-architectures.ts: the architectures of the path's ELF files, one file each. */
  architectures: PathArchitectures;
  /** Hash parts of the targets found in the path's NAR serialisation, sorted. */
  found: string[];
  /**
   * Hash parts the path's files write as store paths (`<storeDir>/<hash>-`), targets or not,
   * sorted (ref-scanner.ts); null when there were too many to keep.
   */
  mentioned: string[] | null;
  /** Whether a scan record answered (no file content was read). */
  fromCache: boolean;
  /** The record to save of a scan asked to keep one (saved by the thread owning the cache). */
  record?: ScanRecord;
}

/** The hash parts a directory store's scans look for: every entry of the store directory. */
export interface ScanTargets {
  hashParts: string[];
}

/**
 * One store path to scan, as it crosses to a worker thread: the hash parts to look for (a
 * SharedValue: sent to each worker once, not with every job) and where the scan cache is, if
 * anywhere.
 */
export interface StorePathScanJob {
  fsPath: string;
  targets: Shareable<ScanTargets>;
  /** Whether the result carries the scan record to save. */
  keepRecord: boolean;
  /** The logical store dir, whose paths the scan notes when the files name them. */
  storeDir: string;
}

/**
 * What an earlier scan of `fsPath` found, if its record's fingerprint still matches the files
 * (a walk of the tree's metadata; no file is read), else undefined.
 */
export async function cachedScan(
  fsPath: string,
  targets: { has(hashPart: string): boolean },
  digestOfTargets: () => string,
  cache: ScanCache | undefined,
  storeDir: string,
): Promise<StorePathScan | undefined> {
  // The stat fingerprint vouches for the record: walked straight off the disk (no NAR tree built:
  // the warm build's main cost), and only when there is a record to check.
  const cached = await cache?.lookup(fsPath, () => fingerprintTree(fsPath), targets, digestOfTargets, storeDir);
  if (!cached) return undefined;
  return { narSize: cached.narSize, contentId: cached.contentId, architectures: cached.architectures, found: [...cached.found].sort(), mentioned: cached.mentioned, fromCache: true };
}

/**
 * Finds which of `targets` the path at `fsPath` references, the way Nix does (their hash parts
 * in its NAR serialisation), its NAR size, its content id and the architectures of its ELF files,
 * by reading the whole path once; with `keepRecord`, the result carries the scan record to save.
 */
export async function scanStorePath(
  fsPath: string,
  targets: { has(hashPart: string): boolean },
  digestOfTargets: () => string,
  keepRecord: boolean,
  storeDir: string,
): Promise<StorePathScan> {
  const tree = await readNarTree(fsPath);
  // The stat fingerprint of the very tree scanned, which vouches for the record next time.
  const fingerprint = treeFingerprint(tree);
  // Store paths the files name are noted as the scan goes (a look at the first window of each
  // base32 run, nothing more): the build warns of those the store lacks.
  const scanner = new RefScanner(targets, undefined, { storeDir });
  const nar = createHash('sha256');
  // ELF headers are looked at as the dump reads each file, so a scan costs no extra read for them.
  const elf = new ArchitectureCollector();
  const root = Buffer.from(fsPath);
  const heads = { bytes: ELF_HEAD_BYTES, minSize: ELF_MIN_SIZE, take: (path: Buffer, head: Buffer) => elf.add(head, () => relativeBelow(root, path)) };
  await dumpNar(
    root,
    tree,
    (chunk) => {
      scanner.push(chunk);
      nar.update(chunk);
    },
    heads,
  );
  const found = [...scanner.found].sort();
  const mentioned = scanner.mentioned ? [...scanner.mentioned].sort() : null;
  const size = narSize(tree);
  const id = contentId(nar.digest('hex'), tree);
  const record: ScanRecord | undefined = keepRecord
    ? {
        v: 4,
        fsPath,
        fingerprint,
        narSize: size,
        contentId: id,
        architectures: elf.found,
        windows: scanner.windows ? [...scanner.windows].sort() : null,
        targetsDigest: digestOfTargets(),
        found,
        storeDir,
        mentioned,
      }
    : undefined;
  return { narSize: size, contentId: id, architectures: elf.found, found, mentioned, fromCache: false, ...(record ? { record } : {}) };
}

/** The set and digest of a job's targets, made once per targets object (once per worker). */
const lookups = new WeakMap<ScanTargets, { set: Set<string>; digest: () => string }>();

/** `scanStorePath` for a job that came from another thread. */
export function runStorePathScanJob(job: StorePathScanJob): Promise<StorePathScan> {
  const targets = sharedValueOf(job.targets);
  let lookup = lookups.get(targets);
  if (!lookup) {
    let digest: string | undefined;
    lookup = { set: new Set(targets.hashParts), digest: () => (digest ??= targetsDigest(targets.hashParts)) };
    lookups.set(targets, lookup);
  }
  return scanStorePath(job.fsPath, lookup.set, lookup.digest, job.keepRecord, job.storeDir);
}
