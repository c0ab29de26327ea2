import type { RegistryFlags } from '../registry.js';
import type { RegistryOpener } from './remote-source.js';

/**
 * A registry opener for `diff` and `verify` whose modules (the registry client, undici) load only
 * when an image is on a registry: comparing two local images does not pay for the HTTP client.
 * `credsFor` says whether `--creds` applies to the registry being opened.
 */
export function lazyRegistryOpener(flags: RegistryFlags, credsFor = false): RegistryOpener {
  let opener: Promise<RegistryOpener> | undefined;
  const load = () =>
    (opener ??= Promise.all([import('../registry.js'), import('./remote-source.js')]).then(([registry, remote]) =>
      remote.registryImageOpener((host) => registry.registryClient(flags, credsFor ? host : undefined)),
    ));
  return {
    open: async (reference) => (await load()).open(reference),
    close: async () => {
      if (opener) await (await opener).close();
    },
  };
}
