import { formatPlatform, imageForPlatform } from '../model/complete.js';
import { imagePlatform, type Image, type Index } from '../model/image.js';
import { diffImages, type ImageDiff } from './diff.js';
import { checkBlobs, describeBlobCheck } from './check-blobs.js';
import { countDifferences, formatDiff, type FormatOptions } from './format-diff.js';

/** Two multi-platform images compared platform by platform. */
export interface IndexDiff {
  kind: 'index';
  /** `digest`: the index's. */
  a: { source: string; digest: string };
  b: { source: string; digest: string };
  identical: boolean;
  platforms: { platform: string; diff?: ImageDiff; onlyIn?: 'a' | 'b' }[];
  /** When identical: how each side's blobs were checked. */
  notes?: string[];
}

export type ArtifactDiff = ImageDiff | IndexDiff;

/**
 * How two images differ, whatever each is: two images field by field and file by file; two
 * indexes platform by platform (a platform one lacks is a difference); an index and an image by
 * the index's image for the other's platform.
 */
export async function diffArtifacts(a: Image | Index, b: Image | Index): Promise<ArtifactDiff> {
  if (a.kind === 'image' && b.kind === 'image') return diffImages(a, b);
  if (a.kind === 'image' || b.kind === 'image') {
    const image = (a.kind === 'image' ? a : b) as Image;
    const platform = imagePlatform(image);
    return a.kind === 'image' ? diffImages(a, await imageForPlatform(b, platform)) : diffImages(await imageForPlatform(a, platform), b as Image);
  }
  const result: IndexDiff = {
    kind: 'index',
    a: { source: a.source, digest: a.descriptor.digest },
    b: { source: b.source, digest: b.descriptor.digest },
    identical: a.descriptor.digest === b.descriptor.digest,
    platforms: [],
  };
  if (result.identical) {
    result.notes = (await Promise.all([checkBlobs(a), checkBlobs(b)])).map(describeBlobCheck);
    return result;
  }
  const name = (e: Index['manifests'][number]) => formatPlatform(e.platform);
  const names = [...new Set([...a.manifests.map(name), ...b.manifests.map(name)])];
  for (const platform of names) {
    const ea = a.manifests.find((e) => name(e) === platform);
    const eb = b.manifests.find((e) => name(e) === platform);
    if (!ea || !eb) {
      result.platforms.push({ platform, onlyIn: ea ? 'a' : 'b' });
      continue;
    }
    const [ia, ib] = await Promise.all([ea.open(), eb.open()]);
    result.platforms.push({ platform, diff: await diffArtifacts(ia, ib) as ImageDiff });
  }
  return result;
}

export function countArtifactDifferences(d: ArtifactDiff): number {
  if (d.kind === 'image') return countDifferences(d);
  if (d.identical) return 0;
  return Math.max(1, d.platforms.reduce((n, p) => n + (p.onlyIn ? 1 : countDifferences(p.diff!)), 0));
}

export function formatArtifactDiff(d: ArtifactDiff, options: FormatOptions = {}): string {
  if (d.kind === 'image') return formatDiff(d, options);
  const out = [`a: ${d.a.source}  ${d.a.digest} (an index)`, `b: ${d.b.source}  ${d.b.digest} (an index)`];
  if (d.identical) return `${[...out, 'identical: same index digest', ...(d.notes ?? []).map((n) => `note: ${n}`)].join('\n')}\n`;
  for (const p of d.platforms) {
    if (p.onlyIn) out.push(`platform ${p.platform}: only in ${p.onlyIn}`);
    else if (countDifferences(p.diff!) === 0) out.push(`platform ${p.platform}: identical`);
    else out.push(`platform ${p.platform}:`, ...formatDiff(p.diff!, options).trimEnd().split('\n').map((l) => `  ${l}`));
  }
  return `${out.join('\n')}\n`;
}
