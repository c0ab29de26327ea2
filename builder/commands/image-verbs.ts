import { parseReference } from '../../registry-client/reference.js';
import { parsePlatform, platformMatches } from '../build/build-index.js';
import { ImgbuildError } from '../errors.js';
import { formatPlatform, imageForPlatform } from '../model/complete.js';
import type { Image, Index } from '../model/image.js';
import { parseImageRef } from '../transports/image-ref.js';
import { openArtifact } from '../transports/open.js';
import { checkImageArgument } from './arguments.js';
import { printJson } from './print.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';

/**
 * crane's `digest`, `manifest` and `config`, on any image argument (an OCI layout or archive, a
 * docker-archive, a registry image): each prints a document exactly as stored, so that
 * `imgbuild manifest x | sha256sum` is the digest `imgbuild digest x` prints.
 */
export interface ImageVerbFlags extends RegistryFlags {
  platform?: string;
  json?: boolean;
}

/** `imgbuild digest <image>`: the manifest's (or index's) digest alone; with --platform, that platform's manifest's. */
export async function runDigest(imageArg: string, flags: ImageVerbFlags): Promise<void> {
  await withArtifact(imageArg, flags, async (artifact) => {
    const target = flags.platform ? await pickPlatform(artifact, flags.platform) : artifact;
    const d = target.descriptor;
    if (flags.json) {
      printJson({ schemaVersion: 1, source: target.source, digest: d.digest, mediaType: d.mediaType, size: d.size, ...platformOf(target) });
      return;
    }
    process.stdout.write(`${d.digest}\n`);
  });
}

/** `imgbuild manifest <image>`: the manifest or index bytes as stored; with --platform, that platform's manifest. */
export async function runManifest(imageArg: string, flags: ImageVerbFlags): Promise<void> {
  await withArtifact(imageArg, flags, async (artifact) => {
    const target = flags.platform ? await pickPlatform(artifact, flags.platform) : artifact;
    const bytes = target.kind === 'index' ? target.bytes : target.manifestBytes;
    const d = target.descriptor;
    if (flags.json) {
      printJson({ schemaVersion: 1, source: target.source, digest: d.digest, mediaType: d.mediaType, size: d.size, ...platformOf(target), manifest: target.kind === 'index' ? target.index : target.manifest });
      return;
    }
    writeDocument(bytes);
  });
}

/** `imgbuild config <image>`: the image config's bytes as stored; of a multi-platform image, --platform's. */
export async function runConfig(imageArg: string, flags: ImageVerbFlags): Promise<void> {
  await withArtifact(imageArg, flags, async (artifact) => {
    let image: Image;
    if (flags.platform) image = await pickPlatform(artifact, flags.platform);
    else if (artifact.kind === 'index' && artifact.manifests.length !== 1) {
      const platforms = artifact.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : m.descriptor.digest.slice(0, 19)));
      const example = artifact.manifests.find((m) => m.platform)?.platform;
      throw new ImgbuildError(
        'usage',
        `${artifact.source} is a multi-platform image (${platforms.join(', ')}): which platform's config?`,
        `name one: --platform ${example ? formatPlatform(example) : 'linux/amd64'}`,
      );
    } else image = await imageForPlatform(artifact, undefined);
    const d = image.configDescriptor;
    if (flags.json) {
      printJson({ schemaVersion: 1, source: image.source, digest: image.descriptor.digest, configDigest: d.digest, mediaType: d.mediaType, size: d.size, ...platformOf(image), config: JSON.parse(image.configBytes.toString('utf8')) as unknown });
      return;
    }
    writeDocument(image.configBytes);
  });
}

/**
 * The bytes as they are (no newline added: a pipe gets exactly the document its digest names);
 * on a terminal a newline follows, so that the prompt starts on a line of its own.
 */
function writeDocument(bytes: Buffer): void {
  process.stdout.write(bytes);
  if (process.stdout.isTTY && bytes[bytes.length - 1] !== 0x0a) process.stdout.write('\n');
}

/** Open an image argument with a registry client for the command (`--creds` for its registry), closed after `f`. */
async function withArtifact(imageArg: string, flags: RegistryFlags, f: (artifact: Image | Index) => Promise<void>): Promise<void> {
  checkImageArgument(imageArg);
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, registryOfImageArg(imageArg), interrupt.signal);
  try {
    await f(await openArtifact(imageArg, { registry: client.get }));
  } finally {
    await client.close();
    interrupt.stop();
  }
}

/** The registry an image argument names, when it is a registry image (what `--creds` is for). */
export function registryOfImageArg(imageArg: string): string | undefined {
  try {
    const ref = parseImageRef(imageArg);
    return ref.transport === 'docker' ? parseReference(ref.reference).registry : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The image for `--platform`: of an index, the matching entry (index.ts's rules); a single image
 * must be for that platform (a docker-archive holds one image and says which in its config), and
 * an artifact (an SBOM, a signature) has none: either is `error[platform]`. Every command that
 * reads an image argument with `--platform` picks with this (digest, manifest, config, inspect,
 * sbom, referrers), so they answer one platform the same way.
 */
export async function pickPlatform(artifact: Image | Index, platform: string): Promise<Image> {
  const wanted = parsePlatform(platform);
  const image = await imageForPlatform(artifact, wanted);
  if (artifact.kind === 'image' && image.artifactType !== undefined) {
    throw new ImgbuildError('platform', `${artifact.source} is an artifact (${image.artifactType}): it has no platform`, 'leave out --platform');
  }
  const c = image.config;
  const found = { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
  if (artifact.kind === 'image' && !platformMatches(found, wanted)) {
    throw new ImgbuildError('platform', `${artifact.source} is an image for ${formatPlatform(found)}, not ${formatPlatform(wanted)}`, 'leave out --platform for a single-platform image');
  }
  return image;
}

function platformOf(target: Image | Index): { platform?: string } {
  // An index, or an artifact (an SBOM, a signature): no platform of its own.
  if (target.kind === 'index' || target.artifactType !== undefined) return {};
  return { platform: formatPlatform(target.config) };
}
