import { access } from 'node:fs/promises';
import { SpecError } from '../errors.js';
import { fileError, thrownText } from './errors.js';
import { evaluateInThread } from './guard.js';
import type { SpecContext } from './types.js';

/**
 * Evaluate a `.ts`/`.mts`/`.cts`/`.js`/`.mjs`/`.cjs` spec: in a thread of its own (guard.ts,
 * spec-thread.ts), with `env` as its whole `process.env`, within `timeoutMs`. Gives the spec's
 * value as plain data; every failure is a SpecError naming the spec.
 */
export async function evaluateModuleSpec(file: string, env: Readonly<Record<string, string | undefined>>, options: { timeoutMs?: number } = {}): Promise<unknown> {
  try {
    await access(file);
  } catch (e) {
    throw fileError(file, e);
  }
  return evaluateInThread(file, env, options.timeoutMs);
}

/**
 * The module a spec gets for `import ... from 'imgbuild'`: this very copy of the library (the
 * package entry when it exists, else the spec API alone), so a spec resolves it wherever it
 * lives — in this repo's examples, in a project that installed imgbuild, or next to a global
 * install — and shares the spec thread's instances instead of loading a second copy: a spec's
 * `SpecError` is the class evaluateModule checks for. The specifiers are literal so that the
 * spec thread's bundle (scripts/bundle-cli.mjs) carries this module too.
 */
async function imgbuildModule(): Promise<unknown> {
  try {
    return await import('../index.js');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND' || !String((e as Error).message).includes('index.js')) throw e;
    return import('./index.js');
  }
}

/**
 * Evaluate a TS/JS spec with jiti (TypeScript on Node 20, which cannot strip types itself), in
 * the spec's thread (spec-thread.ts). The spec default-exports the spec object, or a (sync or
 * async) function of a {@link SpecContext} returning it. Nothing is cached: a changed spec is
 * re-read. Every jiti option is given, so that no `JITI_*` variable changes how a spec is read.
 */
export async function evaluateModule(file: string, env: NodeJS.ProcessEnv): Promise<unknown> {
  // Loaded only for TS/JS specs: JSON and YAML specs never pay for the TypeScript loader.
  const { createJiti } = await import('jiti');
  const jiti = createJiti(import.meta.url, {
    fsCache: false,
    rebuildFsCache: false,
    moduleCache: false,
    debug: false,
    sourceMaps: false,
    interopDefault: true,
    extensions: ['.js', '.mjs', '.cjs', '.ts', '.tsx', '.mts', '.cts', '.mtsx', '.ctsx'],
    alias: {},
    nativeModules: [],
    transformModules: [],
    tryNative: false,
    jsx: false,
    tsconfigPaths: false,
    virtualModules: { imgbuild: await imgbuildModule() },
  });
  let mod: unknown;
  try {
    mod = await jiti.import(file);
  } catch (e) {
    if (e instanceof SpecError) throw e;
    if (isNullDefaultExport(e)) throw new SpecError(file, undefined, `its default export is null; ${EXPECTED}`, EXPORT_HINT);
    throw new SpecError(file, undefined, `cannot load: ${firstLines(thrownText(e))}`);
  }
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) {
    // jiti gives a CommonJS module's `module.exports` itself when it is not an object.
    throw new SpecError(file, undefined, `module.exports is ${describeValue(mod)}; ${EXPECTED}`, EXPORT_HINT);
  }
  if (!Object.keys(mod).includes('default')) throw new SpecError(file, undefined, 'has no default export', EXPORT_HINT);
  // Read past jiti's interop, which answers `default` with the whole module when the export is
  // undefined (the spec would then be reported as a module with an unknown key "default").
  const own = Object.getOwnPropertyDescriptor(mod, 'default');
  if (own && 'value' in own && own.value === undefined) throw new SpecError(file, undefined, `its default export is undefined; ${EXPECTED}`, EXPORT_HINT);
  let value = (mod as { default: unknown }).default;
  if (typeof value === 'function') {
    const context: SpecContext = { env, file };
    try {
      value = await (value as (c: SpecContext) => unknown)(context);
    } catch (e) {
      if (e instanceof SpecError) throw e;
      throw new SpecError(file, undefined, `the exported function failed: ${firstLines(thrownText(e))}`);
    }
  }
  return value;
}

const EXPORT_HINT = 'end the spec with `export default defineImage({ ... })`';
/** What a spec's default export must be. */
const EXPECTED = 'it must be the image spec object, or a function returning it';

/**
 * jiti's interop (its `interopDefault`, on for the spec and what it imports) reads `then` of the
 * default export when the import is awaited, and fails on a null one with this TypeError, thrown
 * in jiti's own code. A spec's own `null.then` fails in the spec's file instead: its stack's top
 * frame names the spec, not jiti.
 */
function isNullDefaultExport(e: unknown): boolean {
  if (!(e instanceof TypeError) || e.message !== "Cannot read properties of null (reading 'then')") return false;
  const top = e.stack?.split('\n').find((line) => line.trimStart().startsWith('at '));
  return top !== undefined && /[\\/]node_modules[\\/]jiti[\\/]/.test(top);
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)})`;
  if (typeof value === 'symbol') return value.toString();
  return String(value);
}

/** jiti appends a require stack to module errors; the first lines say what matters. */
function firstLines(message: string): string {
  return message.split('\nRequire stack:')[0]!.trim();
}
