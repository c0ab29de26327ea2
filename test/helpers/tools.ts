import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** The Debian package that provides each system tool the tests use. */
export const toolPackages: Record<string, string> = {
  skopeo: 'skopeo',
  umoci: 'umoci',
  'oci-image-tool': 'oci-image-tool',
  runc: 'runc',
  'docker-registry': 'docker-registry',
  'nix-store': 'nix-bin',
  nix: 'nix-bin',
  busybox: 'busybox-static',
  pigz: 'pigz',
  htpasswd: 'apache2-utils',
  openssl: 'openssl',
  podman: 'podman',
  zstd: 'zstd',
  python3: 'python3',
  sqlite3: 'sqlite3',
  'qemu-aarch64-static': 'qemu-user-static',
  'apt-get': 'apt',
  'dpkg-deb': 'dpkg',
};

export function hasTool(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a test can use a system tool. Missing tool: under CI the test fails (CI must have
 * every tool), elsewhere it is skipped with the install command.
 */
export function needTool(t: TestContext, cmd: string): boolean {
  if (hasTool(cmd)) return true;
  const pkg = toolPackages[cmd] ?? cmd;
  const msg = `${cmd} is not installed (apt-get install ${pkg}, or run scripts/install-test-deps.sh as root)`;
  if (process.env.CI) throw new Error(msg);
  t.skip(msg);
  return false;
}
