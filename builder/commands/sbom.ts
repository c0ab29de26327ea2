import { stat, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { buildImage } from '../build/build-image.js';
import { ImgbuildError } from '../errors.js';
import { formatPlatform, imageForPlatform, requireImage } from '../model/complete.js';
import type { Image, Index } from '../model/image.js';
import { buildSboms, imageSbom, SBOM_FORMATS, SBOM_MEDIA_TYPES, type SbomFormat } from '../sbom/index.js';
import { SPEC_EXTENSIONS } from '../spec/parse-file.js';
import type { Descriptor } from '../../oci/schemas.js';
import { checkFileTarget, firstBytes, writeFileAtomically, type OutputFileKind } from '../transports/atomic.js';
import { openArtifact } from '../transports/open.js';
import { imageReferrers } from '../transports/referrers.js';
import { loadCliSpec, specFilePath, specForPlatform, type StoreFlags } from './common.js';
import { cliBuildContext } from './context.js';
import { pickPlatform, registryOfImageArg } from './image-verbs.js';
import { withCliMetadata, type MetadataFlags } from './metadata.js';
import { checkImageArgument } from './arguments.js';
import { printJson } from './print.js';
import { lazyClient, storeFetchOptions, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';
import { SCHEMA_VERSION } from './schema-version.js';
import type { ReferrersDocument } from './documents.js';

interface SbomFlags extends StoreFlags, RegistryFlags, MetadataFlags {
  format: string;
  platform?: string;
  output?: string;
}

/**
 * `imgbuild sbom <spec|image>`: a spec's SBOM, made from its build (the same bytes `build --sbom`
 * attaches); an image's attached SBOM, exactly as attached; else one read back from the image
 * (what it cannot know, it says, on stderr and in the document).
 */
export async function runSbom(arg: string, flags: SbomFlags): Promise<void> {
  const format = sbomFormatOption(flags.format);
  // A file in the way (the spec itself, a device) is refused before the build, and again when written.
  if (flags.output) await checkFileTarget(flags.output, SBOM_FILE);
  const bytes = (await isSpecArgument(arg)) ? await specSbom(arg, flags, format) : await imageArgSbom(arg, flags, format);
  if (flags.output) await writeFileAtomically(flags.output, SBOM_FILE, (temp) => writeFile(temp, bytes, { flag: 'wx' }));
  else process.stdout.write(bytes);
}

/**
 * `--format`: one format (the SBOM goes to stdout). Checked here, not by commander's choices, so
 * a bad one is said as every usage error is (`error[usage]`, a hint), as build's --sbom and -f are.
 */
function sbomFormatOption(text: string): SbomFormat {
  const format = SBOM_FORMATS.find((f) => f === text);
  if (format !== undefined) return format;
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length > 1 && parts.every((p) => (SBOM_FORMATS as readonly string[]).includes(p))) throw new ImgbuildError('usage', '--format names one format here: the SBOM goes to stdout', 'run imgbuild sbom once per format, or build --sbom spdx,cyclonedx to attach both');
  throw new ImgbuildError('usage', `--format ${JSON.stringify(text)} is not an SBOM format`, `use ${SBOM_FORMATS.map((f) => `--format ${f}`).join(' or ')}`);
}

/**
 * An SBOM file `-o` may replace: a JSON object whose first 64 KiB name an SPDX or CycloneDX
 * document's own key (ours and other tools' put them first).
 */
const SBOM_FILE: OutputFileKind = {
  what: 'an SBOM (an SPDX or CycloneDX JSON document)',
  recognise: async (file) => {
    const head = (await firstBytes(file, 64 * 1024)).toString('utf8');
    return /^\uFEFF?\s*\{/.test(head) && /"(spdxVersion|bomFormat)"\s*:/.test(head);
  },
};

/** A spec file, or a directory holding one; anything else is an image argument. */
async function isSpecArgument(arg: string): Promise<boolean> {
  if (/^(oci|oci-archive|docker-archive|docker):/.test(arg)) return false;
  const st = await stat(arg).catch(() => undefined);
  if (!st) return false;
  if (st.isFile()) return (SPEC_EXTENSIONS as readonly string[]).includes(extname(arg));
  return specFilePath(arg).then(() => true, () => false);
}

async function specSbom(specArg: string, flags: SbomFlags, format: SbomFormat): Promise<Buffer> {
  const spec = withCliMetadata(await loadCliSpec(specArg, flags), flags, process.env);
  const platform = specForPlatform(spec, flags.platform, 'an SBOM describes one image');
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, undefined, interrupt.signal);
  try {
    const build = await buildImage(platform, cliBuildContext({ registry: client.get, signal: interrupt.signal, storeFetch: storeFetchOptions(flags) }));
    return (await buildSboms(build, [format]))[0]!.bytes;
  } finally {
    await client.close();
    interrupt.stop();
  }
}

async function imageArgSbom(imageArg: string, flags: SbomFlags, format: SbomFormat): Promise<Buffer> {
  checkImageArgument(imageArg);
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, registryOfImageArg(imageArg), interrupt.signal);
  try {
    const image = requireImage(await oneImage(await openArtifact(imageArg, { registry: client.get }), flags.platform), 'an SBOM');
    const referrers = await imageReferrers(imageArg, image.descriptor.digest, { registry: client.get });
    const attached = referrers.manifests.filter((m) => m.artifactType === SBOM_MEDIA_TYPES[format]);
    if (attached.length > 0) {
      // Several attached (rebuilt with another imgbuild, say): the last listed, as a referrers list appends.
      const { bytes } = await referrers.content(attached[attached.length - 1]!);
      return bytes;
    }
    const { bytes, input } = await imageSbom(image, format);
    process.stderr.write(`${image.source}: no ${format} SBOM attached; made one from the image itself\n`);
    for (const u of input.unknown) process.stderr.write(`note: ${u}\n`);
    return bytes;
  } finally {
    await client.close();
    interrupt.stop();
  }
}

/**
 * The image an SBOM or a referrers list is about: of a multi-platform image, --platform's
 * (required when it has several); a single image only when --platform (if given) is its own, as
 * for digest, manifest and config (pickPlatform).
 */
async function oneImage(artifact: Image | Index, platform: string | undefined): Promise<Image> {
  if (platform) return pickPlatform(artifact, platform);
  if (artifact.kind === 'index' && artifact.manifests.length !== 1) {
    const platforms = artifact.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : m.descriptor.digest.slice(0, 19)));
    throw new ImgbuildError('usage', `${artifact.source} is a multi-platform image (${platforms.join(', ')}): which platform's?`, `name one: --platform ${platforms[0]}`);
  }
  return imageForPlatform(artifact, undefined);
}

interface ReferrersFlags extends RegistryFlags {
  platform?: string;
  json?: boolean;
}

/**
 * `imgbuild referrers <image>`: the artifacts whose subject is the image (an index: the index's,
 * unless --platform picks one of its images), one a line: digest, artifactType, size.
 */
export async function runReferrers(imageArg: string, flags: ReferrersFlags): Promise<void> {
  checkImageArgument(imageArg);
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, registryOfImageArg(imageArg), interrupt.signal);
  try {
    const artifact = await openArtifact(imageArg, { registry: client.get });
    const subject = flags.platform ? await oneImage(artifact, flags.platform) : artifact;
    const list = await imageReferrers(imageArg, subject.descriptor.digest, { registry: client.get });
    if (flags.json) {
      const doc: ReferrersDocument = {
        schemaVersion: SCHEMA_VERSION,
        source: subject.source,
        subject: subject.descriptor.digest,
        via: list.via,
        referrers: list.manifests.map((m: Descriptor) => ({
          digest: m.digest,
          mediaType: m.mediaType,
          size: m.size,
          ...(m.artifactType ? { artifactType: m.artifactType } : {}),
          ...(m.annotations ? { annotations: m.annotations } : {}),
        })),
      };
      printJson(doc);
      return;
    }
    for (const m of list.manifests) process.stdout.write(`${m.digest} ${m.artifactType ?? m.mediaType} ${m.size}\n`);
    process.stderr.write(`${list.manifests.length} referrer${list.manifests.length === 1 ? '' : 's'} of ${subject.descriptor.digest}${list.via === 'none' ? ' (this format holds none)' : ` (${list.via === 'api' ? 'referrers API' : list.via === 'tag' ? 'referrers tag schema' : 'OCI layout'})`}\n`);
  } finally {
    await client.close();
    interrupt.stop();
  }
}
