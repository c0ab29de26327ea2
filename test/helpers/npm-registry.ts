import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { freePort } from './registry.js';

/**
 * An npm registry on 127.0.0.1 serving exactly the packages of a package-lock.json, read from
 * npm's own cache (the suite's `npm ci` put every one of them there), plus packed tarballs the
 * test adds (imgbuild itself). With it, `npm i -g <tarball>`, `npm i -g git+file://...` and
 * `npx imgbuild@<version>`, which resolve version ranges and so need packuments that `npm ci`
 * never fetched, run as they would against registry.npmjs.org, and offline: `npmEnv` sends
 * npm's other traffic to a closed port.
 */
export interface NpmRegistry {
  url: string;
  /** Every request it answered, as `METHOD /path status`. */
  requests(): string[];
  /**
   * An environment for npm that uses this registry, the given npm cache (a temp dir: the
   * user's cache is never written) and nothing past 127.0.0.1. Every npm_config_* of `base` is
   * dropped first, so only these settings count.
   */
  npmEnv(base: NodeJS.ProcessEnv, cacheDir: string): Promise<NodeJS.ProcessEnv>;
  stop(): Promise<void>;
}

interface Version {
  manifest: Record<string, unknown>;
  tarball: Buffer;
  integrity: string;
}

/** npm's cache directory (`npm config get cache`). */
export function npmCacheDir(): string {
  return execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
}

/** Where cacache keeps the content with this integrity (`sha512-<base64>`). */
function contentPath(cache: string, integrity: string): string {
  const [algorithm, b64] = integrity.split('-', 2) as [string, string];
  const hex = Buffer.from(b64, 'base64').toString('hex');
  return join(cache, '_cacache', 'content-v2', algorithm, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
}

interface LockEntry {
  version?: string;
  integrity?: string;
  link?: boolean;
  optional?: boolean;
  os?: string[];
  cpu?: string[];
}

/**
 * Whether npm installs this locked package here: an optional one made for another OS or CPU
 * (esbuild's @esbuild/<platform> binaries) is skipped by npm, so it is never in npm's cache.
 */
function installedHere(e: LockEntry): boolean {
  if (!e.optional) return true;
  const fits = (list: string[] | undefined, value: string) => !list || list.some((x) => (x.startsWith('!') ? x.slice(1) !== value : x === value));
  return fits(e.os, process.platform) && fits(e.cpu, process.arch);
}

/** The lock file's packages (name, version, integrity) that are not in npm's cache. */
export async function lockedPackagesMissingFromCache(lockFile: string, cache = npmCacheDir()): Promise<string[]> {
  const lock = JSON.parse(await readFile(lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  return Object.entries(lock.packages)
    .filter(([path, e]) => path !== '' && !e.link && installedHere(e) && (!e.integrity || !existsSync(contentPath(cache, e.integrity))))
    .map(([path, e]) => `${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${e.version}`);
}

/** The package.json inside a package tarball (its first top-level directory's). */
async function manifestOf(tgz: Buffer): Promise<Record<string, unknown>> {
  const extract = tar.extract();
  let found: Record<string, unknown> | undefined;
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => void chunks.push(c as Buffer));
      stream.on('end', () => {
        if (!found && /^[^/]+\/package\.json$/.test(header.name)) found = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(gunzipSync(tgz));
  await done;
  if (!found) throw new Error('no package.json in the tarball');
  return found;
}

export async function startNpmRegistry(opts: { lockFile: string; tarballs?: string[]; cache?: string }): Promise<NpmRegistry> {
  const cache = opts.cache ?? npmCacheDir();
  const packages = new Map<string, Map<string, Version>>();
  const add = async (tarball: Buffer, integrity: string) => {
    const manifest = await manifestOf(tarball);
    const name = String(manifest.name);
    if (!packages.has(name)) packages.set(name, new Map());
    packages.get(name)!.set(String(manifest.version), { manifest, tarball, integrity });
  };
  const lock = JSON.parse(await readFile(opts.lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.link || !entry.integrity || !installedHere(entry)) continue;
    await add(await readFile(contentPath(cache, entry.integrity)), entry.integrity);
  }
  for (const file of opts.tarballs ?? []) {
    const bytes = await readFile(file);
    await add(bytes, `sha512-${createHash('sha512').update(bytes).digest('base64')}`);
  }

  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!).slice(1);
    const send = (status: number, body: string | Buffer, type: string) => {
      log.push(`${req.method} /${path} ${status}`);
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const tgz = /^(.+)\/-\/[^/]+-(\d[^/]*)\.tgz$/.exec(path);
    if (tgz) {
      const v = packages.get(tgz[1]!)?.get(tgz[2]!);
      if (v) send(200, v.tarball, 'application/octet-stream');
      else send(404, '{"error":"not found"}', 'application/json');
      return;
    }
    const versions = packages.get(path);
    if (!versions) {
      send(404, '{"error":"not found"}', 'application/json');
      return;
    }
    const base = `http://${req.headers.host}`;
    const doc: Record<string, unknown> = {};
    let latest = '';
    for (const [version, v] of versions) {
      const file = `${path.split('/').pop()}-${version}.tgz`;
      doc[version] = { ...v.manifest, _hasShrinkwrap: false, dist: { tarball: `${base}/${path}/-/${file}`, integrity: v.integrity } };
      latest = version;
    }
    send(200, JSON.stringify({ name: path, 'dist-tags': { latest }, versions: doc }), 'application/json');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  return {
    url,
    requests: () => log.slice(),
    async npmEnv(base, cacheDir) {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(base)) if (!/^npm_config_/i.test(k)) env[k] = v;
      const closed = `http://127.0.0.1:${await freePort()}`;
      return {
        ...env,
        npm_config_registry: url,
        npm_config_cache: cacheDir,
        npm_config_userconfig: join(cacheDir, 'no-npmrc'),
        npm_config_globalconfig: join(cacheDir, 'no-global-npmrc'),
        // Anything npm would fetch from elsewhere goes to a closed port and fails.
        npm_config_proxy: closed,
        npm_config_https_proxy: closed,
        npm_config_noproxy: '127.0.0.1',
        npm_config_fetch_retries: '0',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        npm_config_update_notifier: 'false',
        npm_config_loglevel: 'warn',
      };
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
