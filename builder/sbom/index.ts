import { Annotation } from '../../oci/media-types.js';
import { referrerArtifact, type ReferrerArtifact } from '../../oci/referrers.js';
import type { Build } from '../build/build-image.js';
import { ImgbuildError } from '../errors.js';
import type { Image } from '../model/image.js';
import { cyclonedxDocument } from './cyclonedx.js';
import { sbomInputFromBuild, sbomInputFromImage, type SbomInput } from './input.js';
import { spdxDocument } from './spdx.js';
import { packageVersion } from '../install-paths.js';

export { parseDrvName } from './drv-name.js';
export { storePathPurl, imagePurl } from './purl.js';
export { spdxDocument } from './spdx.js';
export { cyclonedxDocument } from './cyclonedx.js';
export { sbomInputFromBuild, sbomInputFromImage, customisationFiles } from './input.js';
export type { SbomInput, SbomStorePath, SbomFile } from './input.js';

export const SBOM_FORMATS = ['spdx', 'cyclonedx'] as const;
export type SbomFormat = (typeof SBOM_FORMATS)[number];

/** The media type of each format's JSON, also the artifactType of its referrer manifest. */
export const SBOM_MEDIA_TYPES: Readonly<Record<SbomFormat, string>> = {
  spdx: 'application/spdx+json',
  cyclonedx: 'application/vnd.cyclonedx+json',
};

export function sbomFormatOfMediaType(mediaType: string): SbomFormat | undefined {
  return SBOM_FORMATS.find((f) => SBOM_MEDIA_TYPES[f] === mediaType);
}

/** `spdx,cyclonedx` (a flag's text) as formats, each once, in the order given. */
export function parseSbomFormats(text: string, flag = '--sbom'): SbomFormat[] {
  const out: SbomFormat[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(SBOM_FORMATS as readonly string[]).includes(part)) throw new ImgbuildError('usage', `${flag} ${JSON.stringify(part)} is not an SBOM format`, `use ${SBOM_FORMATS.join(', ')} (comma-separated for both)`);
    if (!out.includes(part as SbomFormat)) out.push(part as SbomFormat);
  }
  if (out.length === 0) throw new ImgbuildError('usage', `${flag} names no format`, `use ${SBOM_FORMATS.join(', ')} (comma-separated for both)`);
  return out;
}

/** imgbuild's name and version, as an SBOM's creator tool. */
export const SBOM_TOOL: SbomInput['tool'] = {
  name: 'imgbuild',
  version: packageVersion(),
};

export function sbomDocument(input: SbomInput, format: SbomFormat): Buffer {
  return format === 'spdx' ? spdxDocument(input) : cyclonedxDocument(input);
}

/** An SBOM of an image and the referrer artifact that attaches it to the image. */
export interface ImageSbom {
  format: SbomFormat;
  mediaType: string;
  bytes: Buffer;
  artifact: ReferrerArtifact;
}

/** The referrer artifact carrying an SBOM of `image`, its manifest annotated with the SBOM's creation date. */
export function sbomArtifact(image: Image, format: SbomFormat, bytes: Buffer, created: string): ReferrerArtifact {
  return referrerArtifact({
    subject: image.descriptor,
    artifactType: SBOM_MEDIA_TYPES[format],
    blob: { mediaType: SBOM_MEDIA_TYPES[format], bytes },
    annotations: { [Annotation.created]: created },
  });
}

/** The SBOMs of a build, in the formats asked, each with its referrer artifact. */
export async function buildSboms(build: Build, formats: readonly SbomFormat[]): Promise<ImageSbom[]> {
  const input = await sbomInputFromBuild(build, SBOM_TOOL);
  return formats.map((format) => {
    const bytes = sbomDocument(input, format);
    return { format, mediaType: SBOM_MEDIA_TYPES[format], bytes, artifact: sbomArtifact(build.image, format, bytes, input.created) };
  });
}

/** The SBOM of an image read back (see sbomInputFromImage: what it cannot tell, it says). */
export async function imageSbom(image: Image, format: SbomFormat): Promise<{ bytes: Buffer; input: SbomInput }> {
  const input = await sbomInputFromImage(image, SBOM_TOOL);
  return { bytes: sbomDocument(input, format), input };
}
export { diffPackages, packagesOfImage, packagesOfSpdx, countSbomDifferences, formatSbomDiff } from './diff.js';
export type { SbomDiff, SbomPackage } from './diff.js';
