import { pruneCache, type PruneResult } from '../cache/prune.js';
import { cacheRoot } from './cache-dir.js';
import { ImgbuildError } from '../errors.js';
import { printJson } from './common.js';
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
    super('cache-option', `${option} ${JSON.stringify(value)} is not ${expected}`, `e.g. ${option === '--max-size' ? '--max-size 10G' : '--older-than 30d'}`);
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
  if (flags.json) printJson({ cacheDir: root, ...result });
  else process.stdout.write(summary(root, result));
}

function summary(root: string, r: PruneResult): string {
  return (
    `${root}: removed ${r.removedBlobs} blob(s) (${mib(r.freedBytes)}), ${r.removedRecords} record(s), ${r.removedTemps} stale temp file(s); ` +
    `kept ${r.keptBlobs} blob(s) (${mib(r.keptBytes)})\n`
  );
}

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MiB`;
}
