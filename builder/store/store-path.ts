import { StoreError } from '../errors.js';
import { isHashPart } from './nix-base32.js';

/** A store path split into its parts: `<storeDir>/<hashPart>-<name>`. */
export interface StorePath {
  storeDir: string;
  hashPart: string;
  name: string;
  /** `<hashPart>-<name>`, the entry's name in the store dir. */
  baseName: string;
  /** The full path. */
  path: string;
}

/** Longest name Nix accepts (Nix's limit: 211 characters). */
export const MAX_NAME_LENGTH = 211;

const NAME_CHARS = /^[A-Za-z0-9+\-._?=]+$/;

/**
 * Why `name` is not a valid store path name, or undefined when it is. Nix's rules: 1..211
 * characters from `A-Za-z0-9+-._?=`; not `.` or `..`, and not starting with `.-` or `..-`
 * (Nix before 2.20 refused any leading period; we accept what newer Nix accepts).
 */
export function checkStorePathName(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.length > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} characters`;
  if (!NAME_CHARS.test(name)) {
    const bad = [...name].find((c) => !NAME_CHARS.test(c)) ?? '';
    return `the name contains the character ${JSON.stringify(bad)} (allowed: A-Z a-z 0-9 + - . _ ? =)`;
  }
  if (name === '.' || name === '..' || name.startsWith('.-') || name.startsWith('..-')) {
    return `the name ${JSON.stringify(name)} is reserved`;
  }
  return undefined;
}

/** Why `baseName` is not `<32-char hash>-<name>`, or undefined when it is. */
export function checkStorePathBaseName(baseName: string): string | undefined {
  if (baseName.length < 34 || baseName[32] !== '-') return 'it is not of the form <32-character hash>-<name>';
  if (!isHashPart(baseName.slice(0, 32))) {
    return 'its hash part is not 32 characters of nix-base32 (0-9 a-z without e o u t)';
  }
  return checkStorePathName(baseName.slice(33));
}

export function isStorePathBaseName(baseName: string): boolean {
  return checkStorePathBaseName(baseName) === undefined;
}

/** Removes trailing slashes (but keeps `/`). */
export function normaliseStoreDir(storeDir: string): string {
  const s = storeDir.replace(/\/+$/, '');
  return s === '' ? '/' : s;
}

/**
 * Parses a full store path. Throws a StoreError saying what is wrong when `path` is not
 * directly under `storeDir` or its last component is not a valid `<hash>-<name>`.
 */
export function parseStorePath(path: string, storeDir: string, what = 'store path'): StorePath {
  const dir = normaliseStoreDir(storeDir);
  const prefix = dir === '/' ? '/' : `${dir}/`;
  if (!path.startsWith(prefix)) {
    throw new StoreError(`${what} ${JSON.stringify(path)} is not under the store dir ${dir}`, [path]);
  }
  const baseName = path.slice(prefix.length);
  if (baseName.includes('/')) {
    throw new StoreError(
      `${what} ${JSON.stringify(path)} is a path inside a store path, not a store path`,
      [path],
      `use the store path itself: ${prefix}${baseName.slice(0, baseName.indexOf('/'))}`,
    );
  }
  const why = checkStorePathBaseName(baseName);
  if (why) throw new StoreError(`${what} ${JSON.stringify(path)} is not a valid store path: ${why}`, [path]);
  return { storeDir: dir, hashPart: baseName.slice(0, 32), name: baseName.slice(33), baseName, path };
}
