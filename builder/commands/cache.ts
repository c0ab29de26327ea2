import { pruneCache, type PruneResult, type Tally } from '../cache/prune.js';
import type { DamagedFile } from '../cache/verify.js';
import { EXIT } from './failure.js';
import { cacheRoot } from './cache-dir.js';
import { ImgbuildError } from '../errors.js';
import { printJson } from './print.js';
import type { CachePruneDocument, CacheVerifyDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { formatBytes } from '../store/format.js';
import { parseSize, sumOfUnits } from '../unit-sum.js';

interface PruneFlags {
  maxSize?: string;
  olderThan?: string;
  json?: boolean;
}

/** A `cache prune` argument that does not parse. */
export class CacheOptionError extends ImgbuildError {
  override name = 'CacheOptionError';
  constructor(option: string, value: string, expected: string) {
    super('usage', `${option} ${JSON.stringify(value)} is not ${expected}`, `e.g. ${option === '--max-size' ? '--max-size 10G' : '--older-than 30d'}`);
  }
}

const DURATION_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

/** `30d`, `12h`, `1w2d`, `90m`, `45s` (no unit: seconds would surprise; refused). */
export function parseAge(text: string): number | undefined {
  return sumOfUnits(text.trim(), DURATION_MS);
}

export async function runCachePrune(flags: PruneFlags): Promise<void> {
  const maxSize = flags.maxSize === undefined ? undefined : parseSize(flags.maxSize);
  if (flags.maxSize !== undefined && maxSize === undefined) throw new CacheOptionError('--max-size', flags.maxSize, 'a size like 500M or 10G');
  const olderThanMs = flags.olderThan === undefined ? undefined : parseAge(flags.olderThan);
  if (flags.olderThan !== undefined && olderThanMs === undefined) throw new CacheOptionError('--older-than', flags.olderThan, 'an age like 30d, 12h or 1w');
  const root = cacheRoot();
  const result = await pruneCache(root, { maxSize, olderThanMs });
  if (flags.json) {
    const doc: CachePruneDocument = { schemaVersion: SCHEMA_VERSION, cacheDir: root, maxSize: maxSize ?? null, olderThanMs: olderThanMs ?? null, ...result };
    printJson(doc);
  }
  else process.stdout.write(pruneReport(root, result, flags));
}

/** The human report: one line per kind of file removed (count, bytes, why), then what was kept and why. */
function pruneReport(root: string, r: PruneResult, flags: PruneFlags): string {
  const age = flags.olderThan;
  const size = flags.maxSize;
  const lines: string[] = [];
  const line = (verb: string, t: Tally, noun: string, why: string) => lines.push(`  ${verb} ${t.count} ${noun}${t.count === 1 ? '' : 's'} (${formatBytes(t.bytes)}): ${why}`);
  const removed = (t: Tally, noun: string, why: string) => t.count > 0 && line('removed', t, noun, why);
  removed(r.removed.blobs.olderThan, 'blob', `not used for ${age}`);
  removed(r.removed.blobs.maxSize, 'blob', `least recently used beyond --max-size ${size}`);
  removed(r.removed.layerRecords.unreadable, 'layer record', 'unreadable (not JSON, not a layer record, or without the checksum of its fields)');
  removed(r.removed.layerRecords.olderThan, 'layer record', `not used for ${age}`);
  removed(r.removed.scanRecords.olderThan, 'scan record', `written more than ${age} ago (a build scans the path again)`);
  removed(r.removed.tempFiles.stale, 'temp file', 'left by a build that stopped (its process is gone, or older than a day)');
  if (lines.length === 0) lines.push('  removed nothing');
  const blobBounds = [age && `used within ${age}`, size && `within --max-size ${size}`].filter(Boolean).join(', ');
  line('kept', r.kept.blobs, 'blob', blobBounds || 'blobs go only with --max-size <size> (least recently used first) or --older-than <age>');
  line('kept', r.kept.layerRecords, 'layer record', age ? `used within ${age}` : 'records are kept unless --older-than; CI keeps them');
  line('kept', r.kept.scanRecords, 'scan record', age ? `written within ${age}` : 'kept unless --older-than');
  return `${root}:\n${lines.join('\n')}\n`;
}

const DAMAGED_NOUN: Record<DamagedFile['kind'], string> = { blob: 'blob', 'layer-record': 'layer record', 'scan-record': 'scan record in', 'closure-record': 'closure record', directory: 'directory' };

/**
 * `cache verify [--repair]`: hash every blob, check every layer record against its blob, every
 * scan and closure record against its checksum, and the cache's directories. Damage left (no
 * --repair, or damage it cannot remove) is an error (exit 1, `error[cache]` on stderr) after the
 * report, so a CI step can run it; with --json the report is the verify document all the same
 * (its `damaged` list), not the error document.
 */
export async function runCacheVerify(flags: { repair?: boolean; json?: boolean }): Promise<void> {
  const { verifyCache } = await import('../cache/verify.js');
  const root = cacheRoot();
  const result = await verifyCache(root, { repair: flags.repair === true });
  const unrepaired = result.damaged.length > 0 && !result.repaired;
  if (flags.json) {
    const doc: CacheVerifyDocument = { schemaVersion: SCHEMA_VERSION, cacheDir: root, repair: flags.repair === true, ...result };
    printJson(doc);
  } else {
    const { checked, damaged } = result;
    const n = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;
    const lines = [`${root}:`, `  checked ${n(checked.blobs, 'blob')} (${formatBytes(checked.blobBytes)}), ${n(checked.layerRecords, 'layer record')}, ${n(checked.scanRecords, 'scan record')} and ${n(checked.closureRecords, 'closure record')}`];
    for (const d of damaged) lines.push(`  damaged ${DAMAGED_NOUN[d.kind]} ${d.path}: ${d.problem}`);
    if (result.repaired) lines.push(`  removed ${damaged.length} damaged file${damaged.length === 1 ? '' : 's'}${damaged.some((d) => d.kind === 'scan-record') ? ' (a scan record pack written again without its damaged lines)' : ''}: the next build makes ${damaged.length === 1 ? 'it' : 'them'} again from the store`);
    if (damaged.length === 0) lines.push('  no damage found');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (unrepaired) {
    const n = result.damaged.length;
    const err = new ImgbuildError('cache', `${n} damaged file${n === 1 ? '' : 's'} in the cache ${root}: ${[...new Set(result.damaged.map((d) => d.path))].join(', ')}`, flags.repair ? 'set IMGBUILD_CACHE_DIR to a directory (or remove that file yourself)' : 'remove them with `imgbuild cache verify --repair` (the next build makes them again from the store)');
    if (!flags.json) throw err;
    // One document on stdout: the report above, which lists the damage; the error on stderr, exit 1.
    process.stderr.write(`error[${err.code}]: ${err.message}\nhint: ${err.hint}\n`);
    process.exitCode = EXIT.error;
  }
}
