import { assembleIndex } from '../build/build-index.js';
import { ImgbuildError } from '../errors.js';
import { formatPlatform, requireImage } from '../model/complete.js';
import { imagePlatform, type Image } from '../model/image.js';
import { openArtifact } from '../transports/open.js';
import { indexPlatforms, reportPush } from './push.js';
import { pushSummary, referrersField } from './push-summary.js';
import type { IndexCreateDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';
import { cliBlobLocations } from './cache-dir.js';
import { chunkSizeOf, lazyClient, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';
import { checkImageArgument, checkTags, referenceArgument } from './arguments.js';
import { checkDigestFile } from './digest-file.js';

interface IndexCreateFlags extends RegistryFlags {
  tag?: string[];
  digestFile?: string;
  json?: boolean;
}

/**
 * `imgbuild index create <ref> <image>...` (buildx `imagetools create`, `crane index append`):
 * an OCI image index over images already built — on a registry (by tag or digest) or on disk —
 * each under the platform its config names, in the order given (an index among them adds all of
 * its images). Pushed to `<ref>`: a blob the target repository holds already is not moved, so
 * per-platform jobs that pushed their own images are joined without a download.
 */
export async function runIndexCreate(reference: string, images: string[], flags: IndexCreateFlags): Promise<void> {
  // Every argument and flag is checked before anything is read or pushed (as push does).
  const ref = referenceArgument(reference);
  for (const arg of images) checkImageArgument(arg);
  checkTags(ref, flags.tag);
  chunkSizeOf(flags);
  if (flags.digestFile !== undefined) await checkDigestFile(flags.digestFile);
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, ref.registry, interrupt.signal);
  try {
    const members: Image[] = [];
    /** Which argument each member came from (an index argument: each of its images, by digest). */
    const from: string[] = [];
    for (const arg of images) {
      const artifact = await openArtifact(arg, { registry: client.get });
      if (artifact.kind === 'image') {
        members.push(requireImage(artifact, 'an index entry'));
        from.push(arg);
      } else {
        for (const entry of artifact.manifests) {
          const child = await entry.open();
          if (child.kind !== 'image') throw new ImgbuildError('index', `${arg}: nested indexes cannot be joined`, 'name its images instead');
          members.push(requireImage(child, 'an index entry'));
          from.push(`${arg} (its image ${entry.descriptor.digest.slice(0, 19)}…)`);
        }
      }
    }
    const platforms = members.map(imagePlatform);
    const names = platforms.map((p) => formatPlatform(p));
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) {
      const which = from.filter((_, i) => names[i] === twice);
      throw new ImgbuildError('index', `${which.length === 2 ? 'two' : which.length} of the images are for ${twice}: ${which.join(', ')}`, 'an index holds one image per platform: leave out all but one of them');
    }
    const index = assembleIndex(
      members.map((image, i) => ({ image, platform: platforms[i]! })),
      { name: ref.name, tag: ref.tag ?? 'latest', source: `index of ${images.join(', ')}` },
    );
    const { pushImage } = await import('../transports/registry.js');
    const result = await pushImage(await client.get(), ref, index, { tags: flags.tag ?? [], chunkSize: chunkSizeOf(flags), blobLocations: await cliBlobLocations() });
    const summary = pushSummary(result, ref, flags.tag ?? []);
    const doc: IndexCreateDocument = {
      schemaVersion: SCHEMA_VERSION,
      digest: summary.digest,
      mediaType: index.descriptor.mediaType!,
      reference: summary.reference,
      tags: summary.tags,
      pushed: summary.pushed,
      platforms: indexPlatforms(index),
      ...referrersField(summary),
    };
    await reportPush(summary, doc, flags);
  } finally {
    await client.close();
    interrupt.stop();
  }
}
