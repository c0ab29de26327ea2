import type { Descriptor } from '../oci/schemas.js';

/** The platform an image is wanted for; `variant` only matters for arm. */
export interface PlatformWanted {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's `process.arch` in Go's GOARCH names, which OCI platforms use. */
export function hostPlatform(arch: string = process.arch): PlatformWanted {
  const map: Record<string, PlatformWanted> = {
    x64: { os: 'linux', architecture: 'amd64' },
    arm64: { os: 'linux', architecture: 'arm64' },
    arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
    ia32: { os: 'linux', architecture: '386' },
    ppc64: { os: 'linux', architecture: 'ppc64le' },
    s390x: { os: 'linux', architecture: 's390x' },
    riscv64: { os: 'linux', architecture: 'riscv64' },
  };
  return map[arch] ?? { os: 'linux', architecture: arch };
}

/** `linux/arm64/v8` style text. */
export function formatPlatform(p: { os?: string; architecture?: string; variant?: string | undefined } | undefined): string {
  if (!p) return 'unknown';
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

/** The variant an architecture means when none is written (containerd's normalisation). */
function defaultVariant(arch: string): string | undefined {
  return arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : undefined;
}

/**
 * The index entry for a platform: same os and architecture; the variant must match when one is
 * wanted (an absent variant counts as the architecture's default: arm64 → v8, arm → v7).
 * Attestation manifests (`unknown/unknown`) never match.
 */
export function choosePlatform(manifests: readonly Descriptor[], wanted: PlatformWanted): Descriptor | undefined {
  const wantVariant = wanted.variant ?? defaultVariant(wanted.architecture);
  const candidates = manifests.filter((m) => m.platform && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture);
  const exact = candidates.find((m) => (m.platform!.variant ?? defaultVariant(m.platform!.architecture)) === wantVariant);
  if (exact) return exact;
  // No variant asked for and none matches the default: any variant of the architecture will do.
  return wanted.variant === undefined ? candidates[0] : undefined;
}
