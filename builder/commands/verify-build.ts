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
import { lazyClient, storeFetchOptions, type RegistryFlags } from './registry-flags.js';
import { withCliMetadata, type MetadataFlags } from './metadata.js';
import type { SbomFormat } from '../sbom/index.js';

const { spec: specFile, output, flags, previous, sbom } = JSON.parse(process.argv[2] ?? '{}') as { spec: string; output: string; flags: StoreFlags & RegistryFlags & MetadataFlags; previous?: string[][]; sbom?: SbomFormat[] };
const client = lazyClient(flags);
try {
  // The same metadata as `build` with these flags in this environment (CI metadata too): the same image.
  const spec = withCliMetadata(await loadCliSpec(specFile, flags), flags, process.env);
  const ctx = cliBuildContext({ registry: client.get, storeFetch: storeFetchOptions(flags) });
  // A multi-platform spec: every platform's image and the index over them.
  const built = spec.platforms ? await buildIndex(spec, ctx) : await buildImage(spec, ctx, previous ? { previous } : {});
  const artifact = 'index' in built ? built.index : built.image;
  // --with-referrers: each image's SBOMs, as build --sbom attaches them.
  const referrers = [];
  if (sbom && sbom.length > 0) {
    const { buildSboms } = await import('../sbom/index.js');
    for (const b of 'index' in built ? built.builds : [built]) for (const s of await buildSboms(b, sbom)) referrers.push(s.artifact);
  }
  await writeOciLayout(artifact, output, { referrers });
  const listed = referrers.map((r) => ({ subject: r.subject.digest, artifactType: r.descriptor.artifactType, digest: r.descriptor.digest }));
  process.stdout.write(`${JSON.stringify({ digest: artifact.descriptor.digest, referrers: listed })}\n`);
} catch (err) {
  const e = err as { code?: string; message?: string; hint?: string };
  process.stderr.write(`error[${e.code ?? 'internal'}]: ${e.message ?? String(err)}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
  process.exitCode = 1;
} finally {
  await client.close();
}
