import pLimit from 'p-limit';
import type { ClosureGraph, StorePathInfo } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import { closureOf } from './closure-graph.js';
import { parseClosureFile } from './closure-file.js';
import { NixCommandError, runNix, type NixRunOptions } from './nix-cli.js';
import { ArchitectureWalks, type PathArchitectures } from './path-architectures.js';
import { normaliseStoreDir, parseStorePath } from './store-path.js';
import type { StoreSource } from './types.js';
import { verifyClosure } from './verify.js';

/** How the closure is read: `nix path-info --json`, `nix-store --dump-db`, or per-path `nix-store --query`. */
export type NixQueryMethod = 'auto' | 'path-info' | 'dump-db' | 'query';

export interface NixStoreSourceOptions {
  /** The store dir Nix must be using; default: whatever `builtins.storeDir` says (NIX_STORE_DIR, nix.conf). */
  storeDir?: string;
  /** Environment for the nix commands (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Directory relative installables (`.#app`) resolve against. */
  cwd?: string;
  /** Check every path's NAR hash against its files (`--verify-store`). */
  verify?: boolean;
  /**
   * Default `auto`: path-info; when the `nix` command is missing or lacks nix-command, `nix-store
   * --dump-db` of the requisites (sizes, hashes and references in one call); when that fails, per-path
   * `nix-store --query --references/--size/--hash`.
   */
  method?: NixQueryMethod;
  /** Where header walks (pathArchitectures) are memoised, e.g. the scan cache dir; absent or `false`: not memoised. */
  cacheDir?: string | false;
}

/**
 * The local Nix store, read through Nix's own commands. `closure()` accepts store paths and
 * installables (`nixpkgs#hello`, `.#app`, `/nix/store/…drv`), which it realises first.
 */
export class NixStoreSource implements StoreSource {
  private constructor(
    readonly storeDir: string,
    private readonly run: NixRunOptions,
    private readonly verify: boolean,
    private readonly method: NixQueryMethod,
    private readonly walks: ArchitectureWalks,
  ) {}

  get description(): string {
    return `Nix store ${this.storeDir}`;
  }

  static async open(opts: NixStoreSourceOptions = {}): Promise<NixStoreSource> {
    // Without an env the commands inherit the process's environment (the OS does, not this library).
    const run: NixRunOptions = { env: opts.env, cwd: opts.cwd };
    const detected = normaliseStoreDir(await detectStoreDir(run));
    if (opts.storeDir !== undefined && normaliseStoreDir(opts.storeDir) !== detected) {
      throw new StoreError(
        `the spec expects the store dir ${normaliseStoreDir(opts.storeDir)}, but Nix uses ${detected}`,
        [],
        'set NIX_STORE_DIR (or store in nix.conf), or change the spec',
      );
    }
    return new NixStoreSource(detected, run, opts.verify ?? false, opts.method ?? 'auto', new ArchitectureWalks(opts.cacheDir || undefined));
  }

  /** Files of a Nix store path are at the path itself. */
  fsPath(storePath: string): string {
    return parseStorePath(storePath, this.storeDir).path;
  }

  /**
   * The architectures of the path's ELF files (see StoreSource), from the first 64 bytes of each
   * file. A Nix store path never changes, so its name is the cache key: a warm build reads no file.
   */
  pathArchitectures(storePath: string): Promise<PathArchitectures> {
    const { path } = parseStorePath(storePath, this.storeDir);
    return this.walks.of(path, path, () => `nix:${path}`);
  }

  /**
   * Store paths for `contents`: store paths pass through (checked valid later), `.drv` files are
   * built with `nix-store --realise` (every output), other installables with `nix build`.
   */
  async realise(contents: string[]): Promise<string[]> {
    const out: string[] = [];
    const prefix = `${this.storeDir}/`;
    for (const c of contents) {
      if (c.startsWith(prefix) && c.endsWith('.drv')) {
        parseStorePath(c, this.storeDir, 'derivation');
        // nix-store --realise means "build every output" in every Nix version (`nix build x.drv` changed meaning).
        const stdout = await runNix('nix-store', ['--realise', c], this.run).catch((e: unknown) => {
          throw wrap(e, `cannot build the derivation ${c}`);
        });
        out.push(...lines(stdout));
      } else if (c.startsWith('/')) {
        out.push(parseStorePath(c, this.storeDir, 'content path').path);
      } else {
        // --json works from Nix 2.4 on; --print-out-paths only from 2.11.
        const stdout = await runNix('nix', ['build', '--no-link', '--json', c], this.run).catch((e: unknown) => {
          throw wrap(e, `cannot build the installable ${c}`);
        });
        const built = JSON.parse(stdout) as Array<{ outputs?: Record<string, string> }>;
        const paths = built.flatMap((b) => Object.values(b.outputs ?? {}));
        if (paths.length === 0) throw new StoreError(`nix build ${c} produced no output paths`, []);
        out.push(...paths.sort());
      }
    }
    return out;
  }

  async closure(contents: string[]): Promise<ClosureGraph> {
    const roots = await this.realise(contents);
    const infos = await this.queryInfos(roots);
    const graph = closureOf(this.storeDir, roots, infos, 'the Nix store');
    if (this.verify) await verifyClosure(graph, (p) => this.fsPath(p));
    return graph;
  }

  private async queryInfos(roots: string[]): Promise<Map<string, StorePathInfo>> {
    if (roots.length === 0) return new Map();
    if (this.method === 'path-info' || this.method === 'auto') {
      try {
        return await this.viaPathInfo(roots);
      } catch (e) {
        // Only a missing `nix` command (or one without nix-command) justifies the fallback.
        if (this.method === 'path-info' || !(e instanceof NixCommandError) || !nixCommandUnavailable(e)) throw e;
      }
    }
    if (this.method === 'query') return this.viaQuery(roots);
    if (this.method === 'dump-db') return this.viaDumpDb(roots);
    try {
      return await this.viaDumpDb(roots);
    } catch (e) {
      // A Nix whose --dump-db takes no paths or fails: one query per path always works.
      if (!(e instanceof NixCommandError) || e.notFound) throw e;
      return this.viaQuery(roots);
    }
  }

  private async viaPathInfo(roots: string[]): Promise<Map<string, StorePathInfo>> {
    const stdout = await runNix('nix', ['path-info', '--json', '--recursive', ...roots], this.run).catch((e: unknown) => {
      throw invalidPath(e, roots);
    });
    return toInfos(parseClosureFile(stdout, 'from nix path-info --json').entries);
  }

  private async requisites(roots: string[]): Promise<string[]> {
    const stdout = await runNix('nix-store', ['--query', '--requisites', ...roots], this.run).catch((e: unknown) => {
      throw invalidPath(e, roots);
    });
    return lines(stdout);
  }

  private async viaDumpDb(roots: string[]): Promise<Map<string, StorePathInfo>> {
    const paths = await this.requisites(roots);
    const stdout = await runNix('nix-store', ['--dump-db', ...paths], this.run);
    return toInfos(parseClosureFile(stdout, 'from nix-store --dump-db').entries);
  }

  private async viaQuery(roots: string[]): Promise<Map<string, StorePathInfo>> {
    const paths = await this.requisites(roots);
    const limit = pLimit(4);
    const q = (op: string, p: string): Promise<string> => runNix('nix-store', ['--query', op, p], this.run);
    const infos = await Promise.all(
      paths.map((p) =>
        limit(async (): Promise<StorePathInfo> => {
          const [refs, size, hash] = await Promise.all([q('--references', p), q('--size', p), q('--hash', p)]);
          return { path: p, narSize: Number(size.trim()), references: lines(refs), narHash: hash.trim() };
        }),
      ),
    );
    return new Map(infos.map((i) => [i.path, i]));
  }
}

async function detectStoreDir(run: NixRunOptions): Promise<string> {
  const stdout = await runNix('nix-instantiate', ['--eval', '--expr', 'builtins.storeDir'], run);
  const dir = JSON.parse(stdout.trim()) as unknown;
  if (typeof dir !== 'string' || !dir.startsWith('/')) throw new StoreError(`Nix reported an odd store dir: ${stdout.trim()}`, []);
  return dir;
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

function toInfos(entries: ReturnType<typeof parseClosureFile>['entries']): Map<string, StorePathInfo> {
  const m = new Map<string, StorePathInfo>();
  for (const e of entries) {
    const info: StorePathInfo = { path: e.path, narSize: e.narSize ?? 0, references: e.references };
    if (e.narHash !== undefined) info.narHash = e.narHash;
    m.set(e.path, info);
  }
  return m;
}

function nixCommandUnavailable(e: NixCommandError): boolean {
  return e.notFound || /experimental|unrecognised|unrecognized|unknown command|is not a recognised command/i.test(e.stderr);
}

/** A path Nix does not know becomes a StoreError naming it. */
function invalidPath(e: unknown, roots: string[]): unknown {
  if (!(e instanceof NixCommandError)) return e;
  for (const r of roots) {
    if (e.stderr.includes(`'${r}' is not valid`) || e.stderr.includes(`path '${r}' does not exist`) || e.stderr.includes(`'${r}' does not exist`)) {
      return new StoreError(`${r} is not a valid path in the Nix store (not built, or garbage-collected)`, [r], 'build it first, or name an installable instead');
    }
  }
  return e;
}

function wrap(e: unknown, what: string): unknown {
  if (!(e instanceof NixCommandError)) return e;
  return new StoreError(`${what}: ${e.message}`, [], e.hint, { cause: e });
}
