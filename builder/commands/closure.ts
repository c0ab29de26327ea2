import { specClosure } from '../build.js';
import { formatClosure } from '../store/format.js';
import { loadSpecAndStore, printJson, type StoreFlags } from './common.js';

export async function runClosure(specFile: string, flags: StoreFlags & { json?: boolean }): Promise<void> {
  const { spec, store } = await loadSpecAndStore(specFile, flags);
  const closure = await specClosure(spec, store);
  if (flags.json) printJson(closure);
  else process.stdout.write(formatClosure(closure));
}
