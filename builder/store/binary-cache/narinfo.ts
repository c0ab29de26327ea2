import { BinaryCacheError } from './errors.js';

/** One `<hash>.narinfo`: what a binary cache says of a store path. */
export interface NarInfo {
  /** Full store path (`StorePath`). */
  storePath: string;
  /** Where the (compressed) NAR is, relative to the cache (`URL`). */
  url: string;
  /** `none`, `xz`, `zstd`, `bzip2`, … (`Compression`; absent means bzip2, as in Nix). */
  compression: string;
  /** `sha256:…` of the file as stored (`FileHash`), when given. */
  fileHash?: string;
  /** Bytes of the file as stored (`FileSize`), when given. */
  fileSize?: number;
  /** `sha256:…` of the NAR (`NarHash`). */
  narHash: string;
  /** Bytes of the NAR (`NarSize`). */
  narSize: number;
  /** Base names (`<hash>-<name>`) of the paths it references (`References`). */
  references: string[];
  /** Base name of the derivation that built it (`Deriver`), when given. */
  deriver?: string;
  /** `name:base64` signatures (`Sig`, one line each). */
  sigs: string[];
  /** Content address (`CA`), when given. */
  ca?: string;
}

/** Longest narinfo read: real ones are well under 4 KiB, even with thousands of references. */
export const MAX_NARINFO_BYTES = 1024 * 1024;

/**
 * Parses a narinfo (`Key: value` lines) as Nix does: unknown keys are ignored, StorePath, URL,
 * NarHash and NarSize are required. `where` names the file in messages.
 */
export function parseNarInfo(text: string, where: string): NarInfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new BinaryCacheError(`${where} is not a narinfo: the line ${JSON.stringify(line.slice(0, 80))} is not "Key: value"`, []);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'Sig') sigs.push(value);
    else fields.set(key, value);
  }
  const need = (key: string): string => {
    const v = fields.get(key);
    if (v === undefined || v === '') throw new BinaryCacheError(`${where} has no ${key}`, []);
    return v;
  };
  const size = (key: string): number | undefined => {
    const v = fields.get(key);
    if (v === undefined) return undefined;
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new BinaryCacheError(`${where}: ${key} ${JSON.stringify(v)} is not a size`, []);
    return Number(v);
  };
  const refs = fields.get('References') ?? '';
  const info: NarInfo = {
    storePath: need('StorePath'),
    url: need('URL'),
    compression: fields.get('Compression') || 'bzip2',
    narHash: need('NarHash'),
    narSize: size('NarSize') ?? missing(need, 'NarSize'),
    references: refs === '' ? [] : refs.split(/\s+/),
    sigs,
  };
  const fileHash = fields.get('FileHash');
  if (fileHash) info.fileHash = fileHash;
  const fileSize = size('FileSize');
  if (fileSize !== undefined) info.fileSize = fileSize;
  const deriver = fields.get('Deriver');
  if (deriver && deriver !== 'unknown-deriver') info.deriver = deriver;
  const ca = fields.get('CA');
  if (ca) info.ca = ca;
  return info;
}

/** What `nix-cache-info` says: the store dir the cache's paths belong to (`/nix/store` when it names none), and its priority. */
export interface CacheInfo {
  storeDir: string;
  wantMassQuery?: boolean;
  priority?: number;
}

export function parseCacheInfo(text: string, where: string): CacheInfo {
  let storeDir: string | undefined;
  const out: Partial<CacheInfo> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+):\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    if (m[1] === 'StoreDir') storeDir = m[2];
    else if (m[1] === 'WantMassQuery') out.wantMassQuery = m[2] === '1';
    else if (m[1] === 'Priority' && /^\d+$/.test(m[2]!)) out.priority = Number(m[2]);
  }
  // Nix reads a nix-cache-info without StoreDir as one of the default store dir.
  if (storeDir === undefined) storeDir = '/nix/store';
  if (!/^(\/[^/\0]+)+$/.test(storeDir)) throw new BinaryCacheError(`${where}: StoreDir ${JSON.stringify(storeDir)} is not an absolute path`, []);
  return { ...out, storeDir };
}

/** `need` throws for an absent key: this only names the type. */
function missing(need: (key: string) => string, key: string): never {
  need(key);
  throw new BinaryCacheError(`no ${key}`);
}
