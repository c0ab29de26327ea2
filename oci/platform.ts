/** A platform as image configs and index entries name it (`linux/arm64/v8`). */
export interface PlatformName {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

/** Architecture names older tools and `uname -m` write, as the Go name (containerd's platforms.Normalize). */
const ARCHITECTURE_NAMES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
};

/**
 * A platform as container runtimes compare them (containerd's platforms.Normalize): Go names
 * for the architecture, and the variant an architecture has when none is named made explicit
 * or dropped, so that `arm64` is `arm64/v8`, `amd64` is `amd64/v1` and `arm` is `arm/v7`.
 */
export function normalizePlatform(p: PlatformName): { os: string; architecture: string; variant: string } {
  const os = p.os.toLowerCase();
  const alias = ARCHITECTURE_NAMES[p.architecture.toLowerCase()];
  const architecture = alias?.architecture ?? p.architecture.toLowerCase();
  let variant = (p.variant ?? alias?.variant ?? '').toLowerCase();
  if (architecture === 'arm64' && (variant === '8' || variant === 'v8' || variant === 'v8.0')) variant = '';
  else if (architecture === 'amd64' && variant === 'v1') variant = '';
  else if (architecture === 'arm') {
    if (variant === '') variant = 'v7';
    else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
  }
  return { os, architecture, variant };
}

/**
 * Whether an image for `found` is one for `wanted`: the same os and architecture (by their
 * normalized names), and, when `wanted` names a variant, the same variant, an architecture's
 * default variant being the same as none (arm64 is arm64/v8). `wanted` without a variant takes
 * any variant of its architecture. `unknown` when `found` names no os or architecture (a config
 * written with empty ones): nothing can be said.
 */
export function comparePlatforms(found: Partial<PlatformName>, wanted: PlatformName): 'same' | 'different' | 'unknown' {
  if (!found.os || !found.architecture) return 'unknown';
  const f = normalizePlatform(found as PlatformName);
  const w = normalizePlatform(wanted);
  if (f.os !== w.os || f.architecture !== w.architecture) return 'different';
  if (wanted.variant === undefined || wanted.variant === '') return 'same';
  return f.variant === w.variant ? 'same' : 'different';
}
