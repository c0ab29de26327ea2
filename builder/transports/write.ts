import { basename } from 'node:path';
import { OutputError } from '../errors.js';
import { ImgbuildError } from '../errors.js';
import { checkImage, checkWriteArguments, describeValue } from '../arguments.js';
import type { Image, Index } from '../model/image.js';
import type { ReferrerArtifact } from '../../oci/referrers.js';

export const outputFormats = ['oci', 'oci-archive', 'docker-archive'] as const;
export type OutputFormat = (typeof outputFormats)[number];

export function parseOutputFormat(s: string): OutputFormat {
  if ((outputFormats as readonly string[]).includes(s)) return s as OutputFormat;
  throw new OutputError(`unknown output format '${s}'`, undefined, `use one of: ${outputFormats.join(', ')}`);
}

/** How an archive's file name ends: the default output's, and what `-o` without `-f` is read by. */
const ARCHIVE_EXTENSION = { 'oci-archive': '.oci.tar', 'docker-archive': '.docker.tar' } as const;

/**
 * The format and path of `-o`/`-f`, as skopeo and docker users write them: `-o` may name the
 * format as a transport (`oci-archive:app.tar`), and without `-f` the name says it (`*.oci.tar`
 * an OCI archive, `*.docker.tar` a docker-archive, anything else an OCI layout directory). A
 * bare `*.tar` is refused: a directory named like a tar file is never what was meant, and which
 * archive was is not known. `path` is undefined when `-o` was not given.
 */
export function outputTarget(output: string | undefined, format: OutputFormat | undefined): { format: OutputFormat; path?: string } {
  const colon = output?.indexOf(':') ?? -1;
  const named = colon > 0 ? outputFormats.find((f) => f === output!.slice(0, colon)) : undefined;
  if (named !== undefined) {
    const path = output!.slice(colon + 1);
    if (path === '') throw new ImgbuildError('usage', `-o ${output} names a format but no path`, `write -o ${named}:<path>`);
    if (format !== undefined && format !== named) throw new ImgbuildError('usage', `-o ${output} names the format ${named}, and -f says ${format}`, `drop -f, or write -o ${path}`);
    return { format: named, path };
  }
  if (format !== undefined) return { format, ...(output !== undefined ? { path: output } : {}) };
  if (output === undefined) return { format: 'oci' };
  for (const archive of ['oci-archive', 'docker-archive'] as const) if (output.endsWith(ARCHIVE_EXTENSION[archive])) return { format: archive, path: output };
  if (output.endsWith('.tar')) throw new ImgbuildError('usage', `-o ${output}: which archive, an OCI archive or a docker-archive?`, `add -f oci-archive or -f docker-archive (or name it ${output.slice(0, -4)}${ARCHIVE_EXTENSION['oci-archive']} or ${ARCHIVE_EXTENSION['docker-archive']})`);
  return { format: 'oci', path: output };
}

/** Where an output goes when `--output` is not given: named after the image's last path component, in the cwd. */
export function defaultOutputPath(imageName: string, format: OutputFormat): string {
  const last = basename(imageName.replace(/@.*$/, '').replace(/:[^/]*$/, ''));
  return format === 'oci' ? `${last}.oci` : `${last}${ARCHIVE_EXTENSION[format]}`;
}

/**
 * Refuse an output path before anything is built: a parent directory that is missing, or
 * something there that the output must not replace (transports/atomic.ts). The writer checks again.
 */
export async function checkOutputTarget(format: OutputFormat, path: string): Promise<void> {
  const { checkDirTarget, checkFileTarget, IMAGE_ARCHIVE } = await import('./atomic.js');
  if (format === 'oci') await checkDirTarget(path, (await import('./oci-layout.js')).isOciLayout);
  else await checkFileTarget(path, IMAGE_ARCHIVE);
}

/**
 * Write any image in one of the file formats. The writers (and the tar module behind the
 * archives) load when an output is written: a push-only build loads none of them.
 */
export async function writeImage(image: Image | Index, format: OutputFormat, path: string, naming: { ref?: string; referrers?: readonly ReferrerArtifact[] } = {}, options: { signal?: AbortSignal } = {}): Promise<void> {
  checkImage('writeImage', 'the image', image);
  if (typeof format !== 'string' || !(outputFormats as readonly string[]).includes(format)) {
    throw new OutputError(`writeImage(): unknown output format ${typeof format === 'string' ? `'${format}'` : describeValue(format)}: the formats are ${outputFormats.join(', ')}`, typeof path === 'string' ? path : undefined,
      `pass one of ${outputFormats.map((f) => `'${f}'`).join(', ')} (outputFormats lists them)`);
  }
  checkWriteArguments('writeImage', image, 'image-or-index', { path }, naming, options);
  if (image.kind === 'index' && format === 'docker-archive') {
    throw new ImgbuildError('usage', `a docker-archive holds one platform, and ${image.source} has ${image.manifests.length}`, 'pick one with --platform, or write an OCI layout (-f oci) or OCI archive (-f oci-archive), which hold them all');
  }
  switch (format) {
    case 'oci':
      return (await import('./oci-layout.js')).writeOciLayout(image, path, naming, options);
    case 'oci-archive':
      return (await import('./oci-archive.js')).writeOciArchive(image, path, naming, options);
    case 'docker-archive':
      return (await import('./docker-archive.js')).writeDockerArchive(image as Image, path, naming, options);
  }
}
