import { endianness } from 'node:os';

/** GOARCH values (what OCI image configs use for `architecture`). */
export const GO_ARCHITECTURES = [
  '386', 'amd64', 'arm', 'arm64', 'loong64', 'mips', 'mips64', 'mips64le', 'mipsle',
  'ppc64', 'ppc64le', 'riscv64', 's390x', 'wasm',
] as const;

/** GOOS values (what OCI image configs use for `os`). */
export const GO_OSES = [
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'illumos', 'ios', 'js', 'linux',
  'netbsd', 'openbsd', 'plan9', 'solaris', 'wasip1', 'windows',
] as const;

/** Names people write for an architecture, mapped to the Go name (`uname -m`, Nix systems, Node). */
export const ARCHITECTURE_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  x64: 'amd64',
  aarch64: 'arm64',
  i386: '386',
  i686: '386',
  ia32: '386',
  armv7l: 'arm',
  armv6l: 'arm',
  ppc64el: 'ppc64le',
  riscv: 'riscv64',
};

/** The Go architecture name of this machine (Node's `process.arch` uses different names). */
export function hostArchitecture(arch: string = process.arch, endian: 'BE' | 'LE' = endianness()): string {
  switch (arch) {
    case 'x64': return 'amd64';
    case 'ia32': return '386';
    case 'ppc64': return endian === 'LE' ? 'ppc64le' : 'ppc64';
    case 'mips': return endian === 'LE' ? 'mipsle' : 'mips';
    case 'mipsel': return 'mipsle';
    default: return arch;
  }
}
