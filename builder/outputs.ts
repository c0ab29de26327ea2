import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import type { BlobStore } from './blobs/blob-store.js';
import { OutputError } from './errors.js';
import type { BuiltImage } from './image/types.js';

export const outputFormats = ['oci', 'oci-archive', 'docker-archive'] as const;
export type OutputFormat = (typeof outputFormats)[number];

export function parseOutputFormat(s: string): OutputFormat {
  if ((outputFormats as readonly string[]).includes(s)) return s as OutputFormat;
  throw new OutputError(`unknown output format '${s}'`, undefined, `use one of: ${outputFormats.join(', ')}`);
}

/** Where an output goes when `--output` is not given: named after the image, in the cwd. */
export function defaultOutputPath(imageName: string, format: OutputFormat): string {
  const last = basename(imageName.replace(/[:@].*$/, ''));
  return format === 'oci' ? `${last}.oci` : `${last}.${format === 'oci-archive' ? 'oci.tar' : 'docker.tar'}`;
}

// The writers (and the tar module behind the archives) load when an output is written: the CLI
// imports this module for the format names, and a push-only build writes no file.
export async function writeOutput(image: BuiltImage, blobs: BlobStore, format: OutputFormat, path: string): Promise<void> {
  switch (format) {
    case 'oci':
      return (await import('./output/oci-layout.js')).writeOciLayout(image, blobs, path);
    case 'oci-archive':
      return (await import('./output/archives.js')).writeOciArchive(image, blobs, path);
    case 'docker-archive':
      return (await import('./output/archives.js')).writeDockerArchive(image, blobs, path);
  }
}

/** `--stream`: the docker-archive bytes to a stream (stdout), for `| docker load`. */
export async function streamOutput(image: BuiltImage, blobs: BlobStore, out: Writable): Promise<void> {
  return (await import('./output/archives.js')).streamDockerArchive(image, blobs, out);
}
