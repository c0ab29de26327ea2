import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

export interface CodeCacheOptions {
  /** Where cache files are kept; none, no cache. */
  cacheDir?: string;
  /** The start of the cache file's name (the key follows). */
  name: string;
  /** NODE_OPTIONS as the process was started with (Node's flags are part of the key). */
  nodeOptions?: string;
  /**
   * false: use a cache but write none in this run (e.g. `--help`: a cache made then would hold
   * little of the command, and being whole it would be kept).
   */
  write?: boolean;
}

/**
 * Runs a CommonJS file (a command's own bundle, scripts/bundle-cli.mjs) with a V8 code cache
 * kept in `cacheDir`: what V8 compiled in the run that made the cache, lazily compiled functions
 * included, so a later process neither parses the file nor compiles what it runs again. Node 20
 * has no compile cache of its own (module.enableCompileCache is Node ≥ 22.1), and Node's caches
 * are made right after a module is compiled, before any of its functions runs; this one is made
 * at the end of a successful run (`script.createCachedData()`), once, and then only read.
 *
 * A cache file is used only when it is whole and was made for these bytes by this Node:
 * - its name and header carry a key: sha256 of the file's bytes, Node's and V8's versions, the
 *   architecture and the flags Node was started with. V8's own check compares the source's
 *   length, not its bytes: a file of the same length with other code would be "accepted";
 * - its header carries the sha256 of the V8 data: a torn or damaged file is never handed to V8
 *   (which is not relied on to notice);
 * - V8 still checks its version and flags, and may reject the data (`cachedDataRejected`).
 * Anything else (no file, another key, a bad hash, a rejection, a file that cannot be read) only
 * means the script is compiled as usual, and a new cache is written when the run ends with exit
 * code 0. The write is atomic (a temp file renamed): processes running at once each write a
 * whole file, and the last rename wins. Nothing is written outside `cacheDir`, and a cacheDir
 * that cannot be written only means no cache.
 *
 * The file must not call import(): code run by vm.Script has none without an experimental loader
 * hook, and none at all when it comes from a code cache on Node 20 (scripts/bundle-cli.mjs turns
 * the bundle's import() calls into require()).
 *
 * Returns how the file was run: `cached` (V8 took the cache) or `compiled` (no usable cache; one
 * is written at a successful end); undefined, having run nothing, when the file cannot be read
 * (the caller loads the CLI another way).
 */
export function runWithCodeCache(file: string, options: CodeCacheOptions): 'cached' | 'compiled' | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  // Hashed as bytes: hashing the 0.4 MB string cost ~5 ms of CPU (it is encoded again first).
  const key = cacheKey(bytes, options.nodeOptions);
  let source = bytes.toString('utf8');
  // A hashbang line is left out, its line kept, so stack traces keep the file's line numbers.
  if (source.startsWith('#!')) source = source.slice(source.indexOf('\n'));
  // Node's own CommonJS wrapper, on the file's first line (line numbers unchanged).
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const cacheFile = options.cacheDir === undefined ? undefined : join(options.cacheDir, `${options.name}-${key.slice(0, 32)}.v8cache`);
  const cached = cacheFile === undefined ? undefined : readCache(cacheFile, key);
  const script = new Script(wrapped, { filename: file, ...(cached ? { cachedData: cached } : {}) });
  const used = cached !== undefined && script.cachedDataRejected !== true;
  if (cacheFile !== undefined && !used && options.write !== false) {
    process.once('exit', (code) => {
      if (code !== 0) return;
      writeCache(cacheFile, key, script);
      removeStale(dirname(cacheFile), options.name, cacheFile);
    });
  }
  const fn = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: { exports: unknown }, filename: string, dirname: string) => void;
  const module = { exports: {} };
  fn.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return used ? 'cached' : 'compiled';
}

const MAGIC = 'imgbuild-v8-cache 1\n';
/** Changed whenever the wrapper around the file's text changes (the key hashes the file's bytes, not the wrapped text). */
const WRAPPER_VERSION = 1;
/** The header: MAGIC, the key (64 hex), the sha256 of the data (64 hex), a newline; then V8's data. */
const HEADER_BYTES = MAGIC.length + 64 + 64 + 1;

/**
 * What a cache must have been made for: the file's bytes (run in WRAPPER_VERSION's wrapper),
 * this Node and V8, this machine's architecture, Node's start-up flags.
 */
function cacheKey(bytes: Buffer, nodeOptions: string | undefined): string {
  return createHash('sha256')
    .update(JSON.stringify([WRAPPER_VERSION, process.version, process.versions.v8, process.arch, process.execArgv, nodeOptions ?? '']))
    .update('\0')
    .update(bytes)
    .digest('hex');
}

/** The V8 data of a cache file made for `key`, whole; undefined for anything else. */
function readCache(cacheFile: string, key: string): Buffer | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(cacheFile);
  } catch {
    return undefined;
  }
  if (bytes.length <= HEADER_BYTES) return undefined;
  const header = bytes.toString('latin1', 0, HEADER_BYTES);
  if (!header.startsWith(MAGIC) || header.slice(MAGIC.length, MAGIC.length + 64) !== key || header[HEADER_BYTES - 1] !== '\n') return undefined;
  const data = bytes.subarray(HEADER_BYTES);
  if (createHash('sha256').update(data).digest('hex') !== header.slice(MAGIC.length + 64, MAGIC.length + 128)) return undefined;
  return data;
}

/** A cache file not written for this long is taken for one of an older imgbuild or Node. */
export const STALE_CACHE_MS = 30 * 24 * 3600 * 1000;
/** A temp file of a writer that died (killed between its write and its rename) after this long. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * Removes the other cache files of `name` written more than STALE_CACHE_MS ago (each upgrade of
 * imgbuild or Node makes a new one, ~400 KB, and nothing else ever removes the old; a cache still
 * in use that goes is only made again by its next run), and temp files of writers that died.
 * Runs only when a cache was just written: a process that uses its cache never lists the directory.
 */
function removeStale(dir: string, name: string, keep: string): void {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const cache = new RegExp(`^${escaped}-[0-9a-f]{32}\\.v8cache$`);
  const temp = new RegExp(`^${escaped}-[0-9a-f]{32}\\.v8cache\\.\\d+-[0-9a-f]{8}\\.tmp$`);
  try {
    const now = Date.now();
    for (const f of readdirSync(dir)) {
      const path = join(dir, f);
      const age = cache.test(f) ? STALE_CACHE_MS : temp.test(f) ? STALE_TEMP_MS : undefined;
      if (age === undefined || path === keep) continue;
      if (now - statSync(path).mtimeMs > age) rmSync(path, { force: true });
    }
  } catch {
    // A cache is an optimisation: leaving old files is no failure.
  }
}

/** Writes what V8 has compiled of `script` by now, atomically; any failure only means no cache. */
function writeCache(cacheFile: string, key: string, script: Script): void {
  const temp = `${cacheFile}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const data = script.createCachedData();
    if (data.length === 0) return;
    const hash = createHash('sha256').update(data).digest('hex');
    mkdirSync(dirname(cacheFile), { recursive: true });
    writeFileSync(temp, Buffer.concat([Buffer.from(`${MAGIC}${key}${hash}\n`, 'latin1'), data]), { mode: 0o644 });
    renameSync(temp, cacheFile);
  } catch {
    try {
      rmSync(temp, { force: true });
    } catch {
      // Nothing more to do: a cache is an optimisation.
    }
  }
}
