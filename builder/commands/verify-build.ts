/**
 * One build of `imgbuild verify`, run as a process of its own so that its umask, time zone,
 * locale and working directory differ from the other build's (commands/verify.ts starts it).
 * Arguments: one JSON object `{ spec, output, flags, previous? }` (previous: the store layers to
 * carry over, as `build --previous` reads them); prints `{ "digest": … }`.
 */
import { buildImage } from '../build/build-image.js';
import { buildIndex } from '../build/build-index.js';
import { writeOciLayout } from '../transports/oci-layout.js';
import { cliBuildContext } from './context.js';
import { loadCliSpec, type StoreFlags } from './common.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';

const { spec: specFile, output, flags, previous } = JSON.parse(process.argv[2] ?? '{}') as { spec: string; output: string; flags: StoreFlags & RegistryFlags; previous?: string[][] };
const client = lazyClient(flags);
try {
  const spec = await loadCliSpec(specFile, flags);
  const ctx = cliBuildContext({ registry: client.get });
  // A multi-platform spec: every platform's image and the index over them.
  const artifact = spec.platforms ? (await buildIndex(spec, ctx)).index : (await buildImage(spec, ctx, previous ? { previous } : {})).image;
  await writeOciLayout(artifact, output);
  process.stdout.write(`${JSON.stringify({ digest: artifact.descriptor.digest })}\n`);
} catch (err) {
  const e = err as { code?: string; message?: string; hint?: string };
  process.stderr.write(`error[${e.code ?? 'internal'}]: ${e.message ?? String(err)}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
  process.exitCode = 1;
} finally {
  await client.close();
}
