import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/**
 * Every system tool the tests drive, with the Debian package that provides it. This is the one
 * place a test decides "needs tool X" (`needTool`, `toolFixture`), and every package named here is
 * one that scripts/install-test-deps.sh installs (test/test-tiers.test.ts checks).
 *
 * Commands from Debian's Essential packages (coreutils, tar, gzip, bash, dash, findutils, grep,
 * sed, ...) are not system tools: they are always there, like `node` and `npm`, and tests use them
 * freely. Anything else is one and must be listed here. A test file that calls needTool (or uses
 * a toolFixture) is in the "tools" tier; every other file is in the unit tier, which
 * `npm run test:unit` and the first half of `npm test` run with only Node, npm and the Essential
 * commands on PATH (scripts/test-tiers.mjs), so a unit test that runs a tool without asking fails
 * there.
 */
export const toolPackages: Readonly<Record<string, string>> = {
  skopeo: 'skopeo',
  umoci: 'umoci',
  'oci-image-tool': 'oci-image-tool',
  runc: 'runc',
  'docker-registry': 'docker-registry',
  nix: 'nix-bin',
  'nix-store': 'nix-bin',
  'nix-build': 'nix-bin',
  'nix-instantiate': 'nix-bin',
  'nix-hash': 'nix-bin',
  busybox: 'busybox-static',
  pigz: 'pigz',
  htpasswd: 'apache2-utils',
  openssl: 'openssl',
  podman: 'podman',
  zstd: 'zstd',
  python3: 'python3',
  sqlite3: 'sqlite3',
  'qemu-aarch64-static': 'qemu-user-static',
  git: 'git',
  mount: 'mount',
};

const found = new Map<string, string | undefined>();

/** Where `cmd` is on PATH, or undefined (looked up once per process). */
function lookup(cmd: string): string | undefined {
  if (!found.has(cmd)) {
    let path: string | undefined;
    try {
      path = execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
    } catch {
      path = undefined;
    }
    found.set(cmd, path);
  }
  return found.get(cmd);
}

function known(cmd: string): string {
  const pkg = toolPackages[cmd];
  if (!pkg) {
    throw new Error(
      `${cmd} is not in toolPackages (test/helpers/tools.ts): add it with its Debian package, and the package to scripts/install-test-deps.sh` +
        ' (commands from Debian\'s Essential packages need no needTool)',
    );
  }
  return pkg;
}

/**
 * Whether a test can use the system tools `cmds`. A missing tool fails the test under CI (CI
 * must have every tool) and skips it elsewhere, the reason naming what to install. Call it
 * before the test runs any of them (directly, through a helper, or through the CLI).
 */
export function needTool(t: TestContext, ...cmds: string[]): boolean {
  for (const cmd of cmds) known(cmd);
  if (process.env.IMGBUILD_TEST_TIER === 'unit') {
    throw new Error(
      `a test in the unit tier asked for ${cmds.join(', ')}: scripts/test-tiers.mjs puts a file in the tools tier when it calls` +
        ' needTool( or toolFixture( itself, so call it in the test file, not only in a helper',
    );
  }
  const missing = cmds.filter((cmd) => lookup(cmd) === undefined);
  if (missing.length === 0) return true;
  const pkgs = [...new Set(missing.map((cmd) => toolPackages[cmd]!))];
  return unavailable(t, `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not installed (apt-get install ${pkgs.join(' ')}, or run scripts/install-test-deps.sh as root)`);
}

/**
 * What a test does when something it needs from outside is not there (a tool, the npm
 * registry): under CI it fails with `reason` (CI must have everything), elsewhere it is skipped
 * with it. Returns false, for `if (...) return`.
 */
export function unavailable(t: TestContext, reason: string): false {
  if (process.env.CI) throw new Error(reason);
  t.skip(reason);
  return false;
}

/** The path of a tool the test has asked for with needTool (say, to copy busybox into an image). */
export function toolPath(cmd: string): string {
  known(cmd);
  const path = lookup(cmd);
  if (!path) throw new Error(`${cmd} is not installed: ask for it with needTool first`);
  return path;
}

export interface ToolFixture {
  /**
   * needTool for the fixture's tools and `more`; when they are there, the fixture is started
   * (once: the first test that asks starts it, the others wait for it). False: the test was
   * skipped, return from it.
   */
  need(t: TestContext, ...more: string[]): Promise<boolean>;
}

/**
 * Something several tests of a file share that needs system tools (a registry, a CA, a Nix
 * store): started by the first test that needs it, never by a hook, so that a missing tool is
 * decided by needTool in each test and not silently by a hook. `start` usually assigns the
 * file's variables; the file's `after` hook stops what was started (it may be nothing).
 */
export function toolFixture(tools: readonly string[], start: () => Promise<void> | void): ToolFixture {
  let started: Promise<void> | undefined;
  return {
    async need(t, ...more) {
      if (!needTool(t, ...tools, ...more)) return false;
      started ??= Promise.resolve().then(start);
      await started;
      return true;
    },
  };
}
