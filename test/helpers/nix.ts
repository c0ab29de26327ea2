import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync, readdirSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * An isolated Nix for tests: its own store dir, state dir and nix.conf under a temp dir, so tests
 * never touch /nix and each run gets unique store paths. Works as root without a daemon with
 * Debian's nix-bin 2.8 (sandbox off, no build users, no substituters).
 */
export interface TestNix {
  /** The temp dir holding everything. */
  root: string;
  /** The logical store dir (also where the files are). */
  storeDir: string;
  /** Environment for running nix commands against this store. */
  env: NodeJS.ProcessEnv;
  /** Runs a nix command, returns stdout; throws with stderr on failure. */
  run(cmd: string, args: string[], input?: string): string;
  /** `nix-store --add` of a file or directory tree described by `files` (path → content; trailing `/` = dir; `->target` = symlink). */
  add(name: string, files: TreeSpec | string): string;
  /** Builds attribute `attr` of a Nix expression (a file's text) with nix-build; returns the output path. */
  build(expr: string, attr: string): string;
  /** Removes the temp dir (store files are read-only, so it makes them writable first). */
  cleanup(): void;
}

/** A file tree: relative path → file content, `{ symlink }`, `{ content, executable }`, or `{ dir: true }`. */
export type TreeSpec = Record<string, string | { symlink: string } | { content: string | Buffer; executable?: boolean } | { dir: true }>;

/** Writes a TreeSpec under `dir`. */
export function writeTree(dir: string, tree: TreeSpec): void {
  mkdirSync(dir, { recursive: true });
  for (const [rel, v] of Object.entries(tree)) {
    const p = join(dir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    if (typeof v === 'string') writeFileSync(p, v);
    else if ('symlink' in v) execFileSync('ln', ['-s', v.symlink, p]);
    else if ('dir' in v) mkdirSync(p, { recursive: true });
    else {
      writeFileSync(p, v.content);
      if (v.executable) chmodSync(p, 0o755);
    }
  }
}

/** Makes every directory under `p` writable so that it can be deleted. */
export function makeWritable(p: string): void {
  let st;
  try {
    st = lstatSync(p);
  } catch {
    return;
  }
  if (!st.isDirectory()) return;
  chmodSync(p, 0o755);
  for (const name of readdirSync(p)) makeWritable(join(p, name));
}

export function makeTestNix(): TestNix {
  const root = mkdtempSync(join(tmpdir(), 'imgbuild-nix-'));
  const storeDir = join(root, 'store');
  mkdirSync(join(root, 'conf'));
  writeFileSync(
    join(root, 'conf', 'nix.conf'),
    ['sandbox = false', 'build-users-group =', 'substituters =', 'experimental-features = nix-command flakes', ''].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: root,
    NIX_STORE_DIR: storeDir,
    NIX_STATE_DIR: join(root, 'state'),
    NIX_LOG_DIR: join(root, 'log'),
    NIX_CONF_DIR: join(root, 'conf'),
    NIX_REMOTE: '',
  };
  const run = (cmd: string, args: string[], input?: string): string => {
    try {
      return execFileSync(cmd, args, { env, cwd: root, encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
    }
  };
  let n = 0;
  return {
    root,
    storeDir,
    env,
    run,
    add(name, files) {
      const src = join(root, 'src', String(n++), name);
      if (typeof files === 'string') {
        mkdirSync(join(src, '..'), { recursive: true });
        writeFileSync(src, files);
      } else writeTree(src, files);
      return run('nix-store', ['--add', src]).trim();
    },
    build(expr, attr) {
      const file = join(root, `expr${n++}.nix`);
      writeFileSync(file, expr);
      return run('nix-build', ['--no-out-link', file, '-A', attr]).trim();
    },
    cleanup() {
      makeWritable(root);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * A derivation built by `/bin/sh` (there is no nixpkgs): `script` runs with coreutils on PATH and
 * `$out` set. Interpolate other derivations with `${name}` in the surrounding Nix expression.
 *
 * The script always ends with the builtin `true`. Nix (2.8 at least) SIGKILLs the builder as soon
 * as its log pipe reaches EOF; a shell that execs a coreutils program as its last command lets that
 * program close stdout before it exits, and the build then fails "due to signal 9" at random.
 */
export function shDrv(name: string, script: string): string {
  return `derivation { name = ${JSON.stringify(name)}; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" ${nixString(`${script}; true`)} ]; }`;
}

/** A Nix string literal whose `${...}` antiquotations are kept (only `"` and `\\` are escaped). */
function nixString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
