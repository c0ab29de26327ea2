import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ClosureGraph } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import type { LayerEntry } from '../layer/types.js';
import { nixDbRegistration } from '../store/registration.js';
import { NixCommandError, runNix } from '../store/nix-cli.js';

export interface WriteNixDbOptions {
  /** The image's logical store dir (what the paths in the registration start with). */
  storeDir: string;
  /** Seconds since the epoch written as every path's registrationTime (the spec's mtime / SOURCE_DATE_EPOCH). */
  registrationTime: number;
  /** Paths that get a GC root under `nix/var/nix/gcroots/docker/`, as dockerTools does. */
  roots?: string[];
  /** Environment for nix-store and sqlite3 (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/**
 * dockerTools' `includeNixDB`: a Nix database registering the closure, written under `destRoot`
 * (the root of a layer's file tree) as `nix/var/nix/db/{db.sqlite,schema}` plus GC roots.
 * Like dockerTools it runs the real `nix-store --load-db` (so the schema is whatever this Nix
 * writes) and resets `registrationTime` with `sqlite3`; the file's bytes then depend only on the
 * registration, the time and the Nix/SQLite versions. Returns the created paths, relative to destRoot.
 */
export async function writeNixDb(registration: string, destRoot: string, opts: WriteNixDbOptions): Promise<string[]> {
  if (!Number.isSafeInteger(opts.registrationTime) || opts.registrationTime < 0) {
    throw new StoreError(`registrationTime must be a non-negative integer number of seconds, got ${opts.registrationTime}`, []);
  }
  const work = await mkdtemp(join(tmpdir(), 'imgbuild-nixdb-'));
  try {
    const env: NodeJS.ProcessEnv = { ...(opts.env ?? {}), USER: 'nobody' };
    // The store URL says where the database goes; these would override it.
    delete env.NIX_STORE_DIR;
    delete env.NIX_STATE_DIR;
    delete env.NIX_REMOTE;
    const store = `local?root=${encodeURIComponent(work)}&store=${encodeURIComponent(opts.storeDir)}`;
    await runNix('nix-store', ['--store', store, '--load-db'], { env, input: registration }).catch((e: unknown) => {
      throw dbError(e, 'nix-store --load-db');
    });
    const db = join(work, 'nix/var/nix/db');
    await runNix('sqlite3', [join(db, 'db.sqlite'), `UPDATE ValidPaths SET registrationTime = ${opts.registrationTime}`], { env }).catch(
      (e: unknown) => {
        throw dbError(e, 'sqlite3');
      },
    );
    const outDb = join(destRoot, 'nix/var/nix/db');
    await mkdir(outDb, { recursive: true });
    const created = ['nix/var/nix/db/db.sqlite', 'nix/var/nix/db/schema'];
    for (const f of ['db.sqlite', 'schema']) {
      const tmp = join(outDb, `.${f}.${process.pid}.tmp`);
      await copyFile(join(db, f), tmp);
      await rename(tmp, join(outDb, f));
    }
    if (opts.roots && opts.roots.length > 0) {
      const gc = join(destRoot, 'nix/var/nix/gcroots/docker');
      await mkdir(gc, { recursive: true });
      for (const r of [...opts.roots].sort()) {
        await rm(join(gc, basename(r)), { force: true });
        await symlink(r, join(gc, basename(r)));
        created.push(`nix/var/nix/gcroots/docker/${basename(r)}`);
      }
    }
    return created;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function dbError(e: unknown, what: string): unknown {
  if (!(e instanceof NixCommandError)) return e;
  if (e.notFound) {
    return new StoreError(
      `includeNixDB needs ${what.split(' ')[0]}, which is not installed`,
      [],
      what === 'sqlite3' ? 'apt-get install sqlite3' : 'install Nix (apt-get install nix-bin)',
    );
  }
  return new StoreError(`includeNixDB: ${e.message}`, [], undefined, { cause: e });
}

export interface NixDbEntriesOptions {
  /** Seconds since the epoch for every registrationTime (use the spec's mtime). */
  registrationTime: number;
  /** Paths given GC roots (default: the graph's roots). */
  roots?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * includeNixDB as layer entries, ready to merge into the customisation layer: the directories
 * `nix/var/nix/{db,gcroots/docker}` (0755), `db.sqlite` and `schema` (0644, as bytes: a few KB
 * per path) and one GC-root symlink per root, in tar order. Paths whose source gave no narHash
 * (a scanned directory) are hashed from their files first.
 */
export async function nixDbEntries(
  graph: ClosureGraph,
  fsPathOf: (storePath: string) => string,
  opts: NixDbEntriesOptions,
): Promise<LayerEntry[]> {
  const registration = await nixDbRegistration(graph, fsPathOf);
  const work = await mkdtemp(join(tmpdir(), 'imgbuild-nixdb-out-'));
  try {
    const roots = [...new Set(opts.roots ?? graph.roots)].sort((a, b) => Buffer.compare(Buffer.from(basename(a)), Buffer.from(basename(b))));
    await writeNixDb(registration, work, {
      storeDir: graph.storeDir,
      registrationTime: opts.registrationTime,
      roots,
      ...(opts.env ? { env: opts.env } : {}),
    });
    const dir = (path: string): LayerEntry => ({ kind: 'directory', path, mode: 0o755 });
    const file = async (path: string): Promise<LayerEntry> => ({
      kind: 'file',
      path,
      mode: 0o644,
      content: { from: 'bytes', data: await readFile(join(work, path)) },
    });
    const entries: LayerEntry[] = [
      dir('nix'),
      dir('nix/var'),
      dir('nix/var/nix'),
      dir('nix/var/nix/db'),
      await file('nix/var/nix/db/db.sqlite'),
      await file('nix/var/nix/db/schema'),
    ];
    if (roots.length > 0) {
      entries.push(dir('nix/var/nix/gcroots'), dir('nix/var/nix/gcroots/docker'));
      for (const r of roots) entries.push({ kind: 'symlink', path: `nix/var/nix/gcroots/docker/${basename(r)}`, target: r });
    }
    return entries;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
