import { createRequire, syncBuiltinESMExports } from 'node:module';

/**
 * Records every open() of a file under `dir` made through node:fs while `fn` runs (the NAR
 * dumper, the header walk and the caches all open files this way; listing a directory or
 * stat-ing a file is not an open), and every writeFile.
 */
export async function opensUnder<T>(dir: string, fn: () => Promise<T>): Promise<{ result: T; opened: string[] }> {
  const require = createRequire(import.meta.url);
  const fs = require('node:fs') as Record<string, unknown>;
  const fsp = require('node:fs/promises') as Record<string, unknown>;
  const opened: string[] = [];
  const restore: Array<() => void> = [];
  const spy = (mod: Record<string, unknown>, name: string) => {
    const orig = mod[name] as (...a: unknown[]) => unknown;
    mod[name] = function (this: unknown, p: unknown, ...rest: unknown[]) {
      if (String(p).startsWith(dir)) opened.push(`${name} ${String(p)}`);
      return orig.call(this, p, ...rest);
    };
    restore.push(() => (mod[name] = orig));
  };
  for (const n of ['open', 'openSync', 'readFile', 'readFileSync', 'createReadStream', 'writeFile', 'writeFileSync']) spy(fs, n);
  for (const n of ['open', 'readFile', 'writeFile']) spy(fsp, n);
  syncBuiltinESMExports();
  try {
    return { result: await fn(), opened };
  } finally {
    for (const r of restore) r();
    syncBuiltinESMExports();
  }
}
