import { closureOnThreads, specStore } from '../build/build-image.js';
import { formatClosure } from '../store/format.js';
import { cliBuildContext } from './context.js';
import { loadCliSpec, type StoreFlags } from './common.js';
import { printJson } from './print.js';
import type { ClosureDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';

export async function runClosure(specFile: string, flags: StoreFlags & { json?: boolean }): Promise<void> {
  const spec = await loadCliSpec(specFile, flags);
  const ctx = cliBuildContext();
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
