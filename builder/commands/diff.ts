import { Annotation } from '../../oci/media-types.js';
import { ImgbuildError } from '../errors.js';
import { countArtifactDifferences, diffArtifacts, formatArtifactDiff } from '../repro/diff-artifacts.js';
import { openArtifact } from '../transports/open.js';
import { checkImageArgument } from './arguments.js';
import { printJson } from './print.js';
import type { DiffDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';
import { registryOfImageArg } from './image-verbs.js';
import { diffPackages, formatSbomDiff, packagesOfImage, packagesOfSpdx, SBOM_MEDIA_TYPES, type SbomDiff, type SbomPackage } from '../sbom/index.js';
import { imageReferrers } from '../transports/referrers.js';
import type { Image } from '../model/image.js';
import type { RegistryClient } from '../../registry-client/index.js';

async function sbomDiff(argA: string, a: Image, argB: string, b: Image, registry: () => Promise<RegistryClient>): Promise<SbomDiff> {
  const [pa, pb] = await Promise.all([packages(argA, a, registry), packages(argB, b, registry)]);
  // A side with no SBOM attached and no imgbuild layer annotations (a docker-archive holds none)
  // has no packages to compare: saying every package of the other side was added or removed would be false.
  const none = ([[a, pa], [b, pb]] as const).filter(([img, p]) => p.from === 'image' && !hasImgbuildAnnotations(img)).map(([img]) => img);
  if (none.length > 0) {
    const why = none.map((img) => `${img.source} has no SBOM attached and no store-path annotations${img.source.startsWith('docker-archive:') ? ' (a docker-archive holds no layer annotations)' : ''}`);
    return { from: { a: none.includes(a) ? 'none' : pa.from, b: none.includes(b) ? 'none' : pb.from }, added: [], removed: [], changed: [], note: `packages not compared: ${why.join('; ')}` };
  }
  return diffPackages(pa.packages, pb.packages, { a: pa.from, b: pb.from });
}

/** Whether any layer carries imgbuild's annotations (store paths, layer reason): an image imgbuild built, read with its manifest. */
function hasImgbuildAnnotations(image: Image): boolean {
  return image.layers.some((l) => l.annotations?.[Annotation.storePaths] !== undefined || l.annotations?.[Annotation.layerReason] !== undefined);
}

/** An image's packages: from its attached SPDX SBOM when it has one, else from its layers' annotations. */
async function packages(arg: string, image: Image, registry: () => Promise<RegistryClient>): Promise<{ packages: SbomPackage[]; from: 'attached' | 'image' }> {
  const referrers = await imageReferrers(arg, image.descriptor.digest, { registry }).catch(() => undefined);
  const spdx = referrers?.manifests.filter((m) => m.artifactType === SBOM_MEDIA_TYPES.spdx).pop();
  if (referrers && spdx) return { packages: packagesOfSpdx((await referrers.content(spdx)).bytes), from: 'attached' };
  return { packages: packagesOfImage(image), from: 'image' };
}

/** `--max-files <n>`: a count of files, 0 or more. */
function parseMaxFiles(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new ImgbuildError('usage', `--max-files ${JSON.stringify(value)} is not a number of files (a whole number, 0 or more)`, 'give a count, e.g. --max-files 20 (0 lists none, only how many there are)');
  }
  return Number(value);
}

export interface DiffFlags extends RegistryFlags {
  json?: boolean;
  maxFiles?: string;
}

/**
 * `imgbuild diff <a> <b>`: exit 0 when the images are the same, 1 when they differ (an error: 2,
 * see cli.ts). Two multi-platform images are compared platform by platform.
 */
export async function runDiff(a: string, b: string, flags: DiffFlags): Promise<void> {
  const maxFiles = flags.maxFiles === undefined ? undefined : parseMaxFiles(flags.maxFiles);
  checkImageArgument(a);
  checkImageArgument(b);
  // --creds for the registry of either image that is on one.
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, [registryOfImageArg(a), registryOfImageArg(b)], interrupt.signal);
  try {
    const open = { registry: client.get };
    const [ia, ib] = await Promise.all([openArtifact(a, open), openArtifact(b, open)]);
    const diff = await diffArtifacts(ia, ib);
    // Two images: their SBOMs' packages too (attached SPDX when there is one, else the layers' store paths).
    const sbom = ia.kind === 'image' && ib.kind === 'image' && !diff.identical ? await sbomDiff(a, ia, b, ib, client.get) : undefined;
    if (flags.json) {
      const doc: DiffDocument = { schemaVersion: SCHEMA_VERSION, ...diff, ...(sbom ? { sbom } : {}) } as DiffDocument;
      printJson(doc);
    }
    else process.stdout.write(formatArtifactDiff(diff, maxFiles !== undefined ? { maxFiles } : {}) + (sbom ? formatSbomDiff(sbom) : ''));
    process.exitCode = countArtifactDifferences(diff) === 0 ? 0 : 1;
  } finally {
    await client.close();
    interrupt.stop();
  }
}
