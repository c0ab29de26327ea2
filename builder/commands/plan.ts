import { planImage, formatImagePlan } from '../build/plan.js';
import { closureOnThreads, specStore } from '../build/build-image.js';
import { specAndBase } from '../build/architecture.js';
import { cliBuildContext } from './context.js';
import { fromImageReference, lazyClient, storeFetchOptions, type RegistryFlags } from './registry-flags.js';
import { watchInterrupts } from './interrupt.js';
import { loadCliSpec, readPrevious, specForPlatform, type StoreFlags } from './common.js';
import { checkImageArgument } from './arguments.js';
import { printJson } from './print.js';
import type { PlanDocument } from './documents.js';
import { SCHEMA_VERSION } from './schema-version.js';

/**
 * `imgbuild plan`: the plan `build` follows (the same function), base-image layers included; of a
 * multi-platform spec, --platform's (as sbom and closure pick it: required when it has several).
 */
export async function runPlan(specFile: string, flags: StoreFlags & RegistryFlags & { json?: boolean; previous?: string; platform?: string }): Promise<void> {
  checkImageArgument(flags.previous, '--previous');
  const given = specForPlatform(await loadCliSpec(specFile, flags), flags.platform, 'a plan describes one image');
  // --creds is for the registry of fromImage, the one registry a plan reads (besides --previous).
  const interrupt = watchInterrupts();
  const client = lazyClient(flags, [fromImageReference(given)], interrupt.signal);
  try {
    const ctx = cliBuildContext({ registry: client.get, signal: interrupt.signal, storeFetch: storeFetchOptions(flags) });
    const store = await specStore(given, ctx);
    const closure = await closureOnThreads(given, store, ctx);
    const { spec, base } = await specAndBase(given, store, closure, ctx);
    const plan = planImage(spec, closure, base, await readPrevious(flags.previous, flags, { os: spec.os, architecture: spec.architecture, ...(spec.variant ? { variant: spec.variant } : {}) }, interrupt.signal));
    if (flags.json) {
      const doc: PlanDocument = { schemaVersion: SCHEMA_VERSION, ...plan };
      printJson(doc);
    }
    else process.stdout.write(formatImagePlan(plan));
  } finally {
    await client.close();
    interrupt.stop();
  }
}
