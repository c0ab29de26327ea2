import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isValidRepositoryName } from '../../registry-client/reference.js';
import { touch } from './touch.js';

/** How many repositories a blob's record keeps: the newest are the likeliest to still hold it. */
export const MAX_LOCATIONS = 4;

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** Temp names `.<hex>.tmp-<pid>-<n>` as fs/atomic-write.ts's (so `cache prune` knows a dead writer's), unique per process by a counter: no random bytes to draw. */
let tempCount = 0;

/**
 * Where imgbuild pushed each blob before (as containers/image's blob-info cache): a later push of
 * the same blob to another repository of that registry mounts it from there instead of uploading
 * it again. One small file per registry and digest,
 * `<cacheDir>/blob-locations/<hash of registry>/<digest hex>`, holding the registry's name on its
 * first line (so a file is never read for another registry) and then the repositories, newest
 * first, one a line. Everything here is a hint: a record may be stale (the registry then answers
 * the mount with an upload session), lost (then the blob is uploaded), or garbage from a crash
 * or a race (then it is ignored). So nothing here throws, and writes are atomic (a temp file
 * renamed into place: 20 pushes at once may race, and the last one wins whole) but not fsynced.
 * Sync, as the reads: a push writes ~6 files of ~50 bytes, and loading node:fs/promises (and
 * fs/atomic-write.ts) for them would cost every push more than the writes.
 */
export class BlobLocationStore {
  constructor(readonly dir: string) {}

  /** The store under an imgbuild cache root. */
  static inCache(cacheDir: string): BlobLocationStore {
    return new BlobLocationStore(join(cacheDir, 'blob-locations'));
  }

  /** The repositories of `registry` known to hold `digest`, newest first (at most MAX_LOCATIONS); [] when none or unreadable. Sync and cheap: a push asks once per blob. */
  lookup(registry: string, digest: string): string[] {
    const file = this.file(registry, digest);
    if (!file) return [];
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    return parseRecord(text, registry) ?? [];
  }

  /** Note that `repository` of `registry` now holds each of `digests`; failures are ignored (a lost record only costs an upload). */
  record(registry: string, repository: string, digests: readonly string[]): void {
    if (!isValidRepositoryName(repository)) return;
    let made = false;
    for (const digest of new Set(digests)) {
      const file = this.file(registry, digest);
      if (!file) continue;
      const known = this.lookup(registry, digest);
      if (known[0] === repository) {
        // A re-push to the newest repository changes nothing but the record's mtime: `cache prune
        // --older-than` goes by it, and a record pushes keep using must not age out.
        touch(file);
        continue;
      }
      const repos = [repository, ...known.filter((r) => r !== repository)].slice(0, MAX_LOCATIONS);
      const temp = `${dirname(file)}/.${basename(file)}.tmp-${process.pid}-${(tempCount++).toString(36)}`;
      try {
        if (!made) mkdirSync(dirname(file), { recursive: true });
        made = true;
        writeFileSync(temp, formatRecord(registry, repos), { flag: 'wx' });
        renameSync(temp, file);
      } catch {
        try {
          rmSync(temp, { force: true });
        } catch {
          // The directory is not there to hold it either.
        }
      }
    }
  }

  /** Each registry's directory, hashed once (a push asks for ~12 files of one registry). */
  private readonly registryDirs = new Map<string, string>();

  private file(registry: string, digest: string): string | undefined {
    const hex = DIGEST_RE.exec(digest)?.[1];
    if (!hex || registry.length === 0 || /[\r\n]/.test(registry)) return undefined;
    let dir = this.registryDirs.get(registry);
    if (dir === undefined) {
      dir = join(this.dir, createHash('sha256').update(registry).digest('hex').slice(0, 16));
      this.registryDirs.set(registry, dir);
    }
    return `${dir}/${hex}`;
  }
}

/** A record's text: the registry, then the repositories, each on its own line. */
export function formatRecord(registry: string, repositories: readonly string[]): string {
  return `${[registry, ...repositories].join('\n')}\n`;
}

/**
 * The repositories of a record for `registry`, or undefined when the text is not a whole record
 * of that registry (another registry's, cut short, or not a record at all): such a file is
 * ignored, never trusted in part.
 */
export function parseRecord(text: string, registry: string): string[] | undefined {
  if (!text.endsWith('\n')) return undefined;
  const [first, ...repos] = text.slice(0, -1).split('\n');
  if (first !== registry || repos.length === 0 || repos.length > MAX_LOCATIONS) return undefined;
  if (!repos.every(isValidRepositoryName) || new Set(repos).size !== repos.length) return undefined;
  return repos;
}
