/**
 * Generated directory stores of tiny things, for the per-path and per-file costs
 * (bench/tiny-shapes.ts):
 *
 * - `tinyPathsStore(n)`: n store paths `<hash>-tiny-<i>` of one small file each (`bin/t<i>`,
 *   ~200 bytes), path i referencing 2i+1 and 2i+2 (a binary tree from the root, path 0) and one
 *   of the 64 last paths (popular libraries), written as store paths into its file, where the
 *   directory source's scan finds them. Acyclic (references go to higher numbers); one root.
 * - `tinyFilesStore(n)`: one store path holding n files of ~60 bytes, 1,000 per directory.
 *
 * Cached in /var/tmp/imgbuild-bench-tiny/<shape>-<n> (delete it to regenerate); the hashes are
 * derived from the index, so a store is the same every time it is made.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nixBase32Encode } from '../builder/store/nix-base32.js';

export const TINY_ROOT = '/var/tmp/imgbuild-bench-tiny';
const STORE_DIR = '/nix/store';

export interface TinyStore {
  /** The directory holding the store paths. */
  dir: string;
  storeDir: string;
  /** Store paths of the roots (what a spec's `contents` names). */
  roots: string[];
  /** Base names of every path, sorted (a `tar -T` list). */
  names: string[];
  /** Files in the store. */
  files: number;
}

function hashPart(seed: string): string {
  return nixBase32Encode(createHash('sha256').update(seed).digest().subarray(0, 20));
}

function made(dir: string, build: (tmp: string) => void): void {
  if (existsSync(join(dir, '.done'))) return;
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  build(tmp);
  writeFileSync(join(tmp, '.done'), '');
  renameSync(tmp, dir);
}

export function tinyPathsStore(n: number): TinyStore {
  const dir = join(TINY_ROOT, `paths-${n}`);
  const names = Array.from({ length: n }, (_, i) => `${hashPart(`tiny-${i}`)}-tiny-${i}`);
  made(dir, (tmp) => {
    for (let i = 0; i < n; i++) {
      const refs = new Set<number>();
      for (const j of [2 * i + 1, 2 * i + 2, n - 1 - (i % 64)]) if (j > i && j < n) refs.add(j);
      const lines = [`#!/bin/sh`, `# tiny path ${i}`, ...[...refs].map((j) => `# uses ${STORE_DIR}/${names[j]}/bin/t${j}`), `exit 0`, ''];
      mkdirSync(join(tmp, names[i]!, 'bin'), { recursive: true });
      writeFileSync(join(tmp, names[i]!, 'bin', `t${i}`), lines.join('\n'), { mode: 0o755 });
    }
  });
  return { dir, storeDir: STORE_DIR, roots: [`${STORE_DIR}/${names[0]}`], names: [...names].sort(), files: n };
}

export function tinyFilesStore(n: number): TinyStore {
  const dir = join(TINY_ROOT, `files-${n}`);
  const name = `${hashPart(`tiny-files-${n}`)}-tiny-files`;
  made(dir, (tmp) => {
    for (let i = 0; i < n; i++) {
      const sub = join(tmp, name, 'share', `d${Math.floor(i / 1000)}`);
      if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `f${i}.txt`), `tiny file ${i} of ${n}, a line of text to tar and compress\n`);
    }
  });
  return { dir, storeDir: STORE_DIR, roots: [`${STORE_DIR}/${name}`], names: [name], files: n };
}
