import { basename } from 'node:path';
import { OutputError } from '../errors.js';
import { ImgbuildError } from '../errors.js';
import type { Image, Index } from '../model/image.js';
import type { ReferrerArtifact } from '../../oci/referrers.js';

export const outputFormats = ['oci', 'oci-archive', 'docker-archive'] as const;
export type OutputFormat = (typeof outputFormats)[number];

export function parseOutputFormat(s: string): OutputFormat {
  if ((outputFormats as readonly string[]).includes(s)) return s as OutputFormat;
  throw new OutputError(`unknown output format '${s}'`, undefined, `use one of: ${outputFormats.join(', ')}`);
}

/** Where an output goes when `--output` is not given: named after the image's last path component, in the cwd. */
export function defaultOutputPath(imageName: string, format: OutputFormat): string {
  const last = basename(imageName.replace(/@.*$/, '').replace(/:[^/]*$/, ''));
  return format === 'oci' ? `${last}.oci` : `${last}.${format === 'oci-archive' ? 'oci.tar' : 'docker.tar'}`;
}

/**
 * Write any image in one of the file formats. The writers (and the tar module behind the
 * archives) load when an output is written: a push-only build loads none of them.
 */
export async function writeImage(image: Image | Index, format: OutputFormat, path: string, naming: { ref?: string; referrers?: readonly ReferrerArtifact[] } = {}): Promise<void> {
  if (image.kind === 'index' && format === 'docker-archive') {
    throw new ImgbuildError('usage', `a docker-archive holds one platform, and ${image.source} has ${image.manifests.length}`, 'pick one with --platform, or write an OCI layout (-f oci) or OCI archive (-f oci-archive), which hold them all');
  }
  switch (format) {
    case 'oci':
      return (await import('./oci-layout.js')).writeOciLayout(image, path, naming);
    case 'oci-archive':
      return (await import('./oci-archive.js')).writeOciArchive(image, path, naming);
    case 'docker-archive':
      return (await import('./docker-archive.js')).writeDockerArchive(image as Image, path, naming);
  }
}
