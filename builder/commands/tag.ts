import { ImgbuildError } from '../errors.js';
import { parseImageRef } from '../transports/image-ref.js';
import { referenceArgument } from './arguments.js';
import { shellWord } from './shell-word.js';
import { printJson } from './print.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';

export interface TagFlags extends RegistryFlags {
  json?: boolean;
}

const TAG_RE = /^[\w][\w.-]{0,127}$/;

/**
 * `imgbuild tag <image> <tag>...`: give a registry image more tags in its repository. No blob
 * moves and nothing is parsed or rebuilt: the manifest (or index) is fetched once and the same
 * bytes are PUT under each tag, with the media type it was served with, so every tag names the
 * digest the image already had.
 */
export async function runTag(imageArg: string, tags: string[], flags: TagFlags): Promise<void> {
  for (const tag of tags) {
    if (!TAG_RE.test(tag)) {
      const hint = /[/:@]/.test(tag)
        ? 'tag names a tag in the image\'s own repository; to copy to another repository: imgbuild push <image> <reference>'
        : 'a tag is letters, digits, _ . - (at most 128), not starting with . or -';
      throw new ImgbuildError('usage', `${JSON.stringify(tag)} is not a tag`, hint);
    }
  }
  const parsed = parseImageRef(imageArg);
  if (parsed.transport !== 'docker') {
    throw new ImgbuildError('usage', `tag works on a registry image; ${imageArg} is a local image`, `push it with its tags instead: imgbuild push ${shellWord(imageArg)} <registry>/<repo>:<tag> --tag <another>`);
  }
  const ref = referenceArgument(parsed.reference);
  const repo = { registry: ref.registry, repository: ref.repository };
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, ref.registry, interrupt.signal);
  try {
    const c = await client.get();
    const { bytes, mediaType, digest } = await c.getManifest(repo, ref.target);
    const references: string[] = [];
    for (const tag of tags) {
      await c.putManifest(repo, tag, bytes, mediaType);
      references.push(`${ref.name}:${tag}@${digest}`);
    }
    if (flags.json) {
      printJson({ schemaVersion: 1, source: `docker://${ref.toString()}`, repository: ref.name, digest, mediaType, tags, references });
      return;
    }
    process.stdout.write(references.map((r) => `${r}\n`).join(''));
  } finally {
    await client.close();
    interrupt.stop();
  }
}
