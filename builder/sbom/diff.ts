import { layerReason } from '../build/assemble.js';
import type { Image } from '../model/image.js';
import { parseDrvName, splitStorePath } from './drv-name.js';

/** A package (store path) as an SBOM diff compares it. */
export interface SbomPackage {
  path: string;
  name: string;
  version: string;
  /** NAR hash (hex), when the SBOM gives it. */
  narHash?: string;
}

export interface SbomDiff {
  /**
   * Where each side's packages came from: an SBOM attached to the image, the image's layer
   * annotations, or none (no SBOM and no imgbuild layer annotations: a docker-archive, another
   * tool's image), in which case nothing is compared and `note` says why.
   */
  from: { a: 'attached' | 'image' | 'none'; b: 'attached' | 'image' | 'none' };
  note?: string;
  /** Packages only in b (no package of the same name in a). */
  added: SbomPackage[];
  /** Packages only in a. */
  removed: SbomPackage[];
  /** One name on both sides at other store paths: a new version, or the same version built from other inputs. */
  changed: { name: string; a: SbomPackage; b: SbomPackage }[];
}

function pkg(path: string, narHash?: string): SbomPackage {
  const { name, version } = parseDrvName(splitStorePath(path).name);
  return { path, name, version, ...(narHash ? { narHash } : {}) };
}

/** The store-path packages of an SPDX document imgbuild wrote (packageFileName = the store path). */
export function packagesOfSpdx(bytes: Buffer): SbomPackage[] {
  const doc = JSON.parse(bytes.toString('utf8')) as { packages?: { packageFileName?: string; checksums?: { algorithm: string; checksumValue: string }[] }[] };
  return (doc.packages ?? [])
    .filter((p) => p.packageFileName?.startsWith('/'))
    .map((p) => pkg(p.packageFileName!, p.checksums?.find((c) => c.algorithm === 'SHA256')?.checksumValue));
}

/** The store paths an image's layers say they hold (dev.imgbuild.store-paths). */
export function packagesOfImage(image: Image): SbomPackage[] {
  return [...new Set(image.layers.flatMap((l) => layerReason(l).storePaths))].sort().map((p) => pkg(p));
}

/**
 * Package-level differences of two SBOMs: store paths on one side only, paired by package name
 * (so `openssl-3.0.13` → `openssl-3.0.14` is one change, not an addition and a removal).
 */
export function diffPackages(a: SbomPackage[], b: SbomPackage[], from: SbomDiff['from']): SbomDiff {
  const inA = new Set(a.map((p) => p.path));
  const inB = new Set(b.map((p) => p.path));
  const onlyA = a.filter((p) => !inB.has(p.path));
  const onlyB = b.filter((p) => !inA.has(p.path));
  const changed: SbomDiff['changed'] = [];
  const removed: SbomPackage[] = [];
  const added = [...onlyB];
  for (const p of onlyA) {
    const i = added.findIndex((q) => q.name === p.name);
    if (i >= 0) changed.push({ name: p.name, a: p, b: added.splice(i, 1)[0]! });
    else removed.push(p);
  }
  return { from, added, removed, changed };
}

export function countSbomDifferences(d: SbomDiff): number {
  return d.added.length + d.removed.length + d.changed.length;
}

export function formatSbomDiff(d: SbomDiff): string {
  if (d.note) return `sbom: ${d.note}\n`;
  if (countSbomDifferences(d) === 0) return '';
  const v = (p: SbomPackage) => `${p.name}${p.version ? ` ${p.version}` : ''}`;
  const from = (f: SbomDiff['from']['a']) => (f === 'attached' ? 'attached SBOM' : f === 'image' ? 'layer annotations' : 'none');
  const lines = [`sbom (packages; a: ${from(d.from.a)}, b: ${from(d.from.b)}):`];
  for (const c of d.changed) lines.push(`  ~ ${c.name}: ${c.a.version || '(no version)'} → ${c.b.version || '(no version)'}${c.a.version === c.b.version ? ` (${c.a.path} → ${c.b.path})` : ''}`);
  for (const p of d.added) lines.push(`  + ${v(p)}  ${p.path}`);
  for (const p of d.removed) lines.push(`  - ${v(p)}  ${p.path}`);
  return `${lines.join('\n')}\n`;
}
