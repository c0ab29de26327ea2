import { closureOnThreads, specStore } from '../build/build-image.js';
import { formatClosure } from '../store/format.js';
import { cliBuildContext } from './context.js';
import { storeFetchOptions } from './registry-flags.js';
import { loadCliSpec, specForPlatform, type StoreFlags } from './common.js';
import { printJson } from './print.js';
import type { ClosureDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';

/** `imgbuild closure`: the closure of a spec's image (of a multi-platform spec, --platform's, as sbom and plan pick it). */
export async function runClosure(specFile: string, flags: StoreFlags & { json?: boolean; platform?: string }): Promise<void> {
  const spec = specForPlatform(await loadCliSpec(specFile, flags), flags.platform, 'a closure describes one image');
  // closure takes no registry flags: IMGBUILD_RESPONSE_TIMEOUT and IMGBUILD_IDLE_TIMEOUT apply to a binary cache.
  const ctx = cliBuildContext({ storeFetch: storeFetchOptions({}) });
  const closure = await closureOnThreads(spec, await specStore(spec, ctx), ctx);
  if (flags.json) {
    const doc: ClosureDocument = {
      schemaVersion: SCHEMA_VERSION,
      storeDir: closure.storeDir,
      roots: closure.roots,
      paths: closure.paths.map((p) => ({ path: p.path, narSize: p.narSize, references: p.references, ...(p.narHash ? { narHash: p.narHash } : {}) })),
    };
    printJson(doc);
  }
  else process.stdout.write(formatClosure(closure));
}
