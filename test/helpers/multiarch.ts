// examples/multiarch: two one-path stores (Debian's busybox-static for amd64 and for arm64) made
// by its make-store.sh, and what the tests need to know about them.
import type { TestContext } from 'node:test';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './cli.js';
import { repoRoot } from './paths.js';
import { EM_AARCH64, EM_X86_64 } from './elf.js';
import { needTool, unavailable } from './tools.js';

export const multiarchDir = join(repoRoot, 'examples/multiarch');

export type MultiarchArch = 'amd64' | 'arm64';
export const multiarchArchs: readonly MultiarchArch[] = ['amd64', 'arm64'];

/** Each platform's store path, its store dir and the ELF e_machine of its busybox. */
export const multiarch: Record<MultiarchArch, { storePath: string; storeDir: string; machine: number }> = {
  amd64: {
    storePath: '/nix/store/mwirpjx2b3hmddlqyizwbxkrpdlwgk9z-busybox-1.35.0',
    storeDir: join(multiarchDir, 'store-amd64'),
    machine: EM_X86_64,
  },
  arm64: {
    storePath: '/nix/store/kf0nqyw67q64xh69pa61ylmzm9dlkzrr-busybox-1.35.0',
    storeDir: join(multiarchDir, 'store-arm64'),
    machine: EM_AARCH64,
  },
};

/** A path with no machine code, the same in both stores: the layer the two images share. */
export const multiarchMotd = { storePath: '/nix/store/3x1kmyh9gq2w0dbv8r5nlfpc7za6sji4-motd-1.0', text: 'hello from busybox\n' };

/** The applets linked to busybox in each store path (as in examples/busybox). */
export const multiarchApplets = ['cat', 'echo', 'env', 'id', 'ls', 'sh'];

/** The example's Cmd, and what it prints on both platforms (under runc, and under qemu). */
export const multiarchCmd = ['/bin/sh', '-c', 'echo hello from busybox'];
export const multiarchOutput = 'hello from busybox\n';

/**
 * Runs examples/multiarch/make-store.sh (quick when the stores exist). False (test skipped) when
 * a tool it needs is missing, or when the arm64 package index is missing and this is not root;
 * under CI those fail instead, as with needTool.
 */
export async function makeMultiarchStores(t: TestContext): Promise<boolean> {
  // apt-get and dpkg-deb (Debian's essential packages) are make-store.sh's to look for.
  if (!needTool(t, 'busybox')) return false;
  const r = await runCommand('bash', [join(multiarchDir, 'make-store.sh')]);
  if (r.code === 0) return true;
  if (/package index is missing/.test(r.stderr)) return unavailable(t, `examples/multiarch/make-store.sh cannot download busybox-static:arm64:\n${r.stderr}`);
  throw new Error(`examples/multiarch/make-store.sh failed (${r.code}):\n${r.stderr}`);
}

/**
 * A single-platform spec (today's schema) for one of the example's stores, written to
 * `<dir>/image.json`: the example's platform part plus its shared fields, with `architecture`
 * named unless `architecture: null` (for the "architecture follows the content" tests).
 */
export async function writeSinglePlatformSpec(dir: string, arch: MultiarchArch, opts: { architecture?: string | null } = {}): Promise<string> {
  const { storePath, storeDir } = multiarch[arch];
  const architecture = opts.architecture === undefined ? arch : opts.architecture;
  const spec = {
    name: `imgbuild-examples/multiarch-${arch}`,
    tag: '1.35.0',
    ...(architecture === null ? {} : { architecture }),
    store: { dir: storeDir },
    contents: [storePath],
    copyToRoot: [storePath],
    directories: [{ path: '/tmp', mode: '1777' }],
    config: { Cmd: multiarchCmd, Env: ['PATH=/bin'] },
  };
  const file = join(dir, 'image.json');
  await writeFile(file, `${JSON.stringify(spec, null, 2)}\n`);
  return file;
}
