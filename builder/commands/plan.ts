import { formatPlan } from '../../layering/index.js';
import { specClosure, specPlan } from '../build.js';
import type { RegistryFlags } from '../registry.js';
import { loadSpecAndStore, printJson, readPrevious, type StoreFlags } from './common.js';

export async function runPlan(specFile: string, flags: StoreFlags & RegistryFlags & { json?: boolean; previous?: string }): Promise<void> {
  const { spec, store } = await loadSpecAndStore(specFile, flags);
  const closure = await specClosure(spec, store);
  const plan = specPlan(spec, closure, 0, await readPrevious(flags.previous, flags));
  if (flags.json) printJson(plan);
  else process.stdout.write(formatPlan(plan));
}
