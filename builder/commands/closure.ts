import { specClosure, specStore } from '../build/build-image.js';
import { formatClosure } from '../store/format.js';
import { cliBuildContext } from './context.js';
import { loadCliSpec, printJson, type StoreFlags } from './common.js';

export async function runClosure(specFile: string, flags: StoreFlags & { json?: boolean }): Promise<void> {
  const spec = await loadCliSpec(specFile, flags);
  const closure = await specClosure(spec, await specStore(spec, cliBuildContext()));
  if (flags.json) printJson(closure);
  else process.stdout.write(formatClosure(closure));
}
