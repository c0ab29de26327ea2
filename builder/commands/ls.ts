import { ImgbuildError } from '../errors.js';
import { referenceArgument } from './arguments.js';
import { printJson } from './print.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';

export interface LsFlags extends RegistryFlags {
  json?: boolean;
}

/**
 * `imgbuild ls <repo>`: every tag of a registry repository, one a line, in the registry's order
 * (every page: registry-client's listTags follows `Link: rel="next"`).
 */
export async function runLs(repoArg: string, flags: LsFlags): Promise<void> {
  const ref = referenceArgument(repoArg, undefined, { defaultTag: null });
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new ImgbuildError('usage', `ls takes a repository, not an image: ${repoArg}`, `list the tags of ${ref.name}: imgbuild ls ${ref.name}`);
  }
  const repo = { registry: ref.registry, repository: ref.repository };
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, ref.registry, interrupt.signal);
  try {
    const tags = await (await client.get()).listTags(repo);
    if (flags.json) {
      printJson({ schemaVersion: 1, repository: ref.name, tags });
      return;
    }
    process.stdout.write(tags.map((t) => `${t}\n`).join(''));
  } finally {
    await client.close();
    interrupt.stop();
  }
}
