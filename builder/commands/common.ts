import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SpecError } from '../errors.js';
import { loadSpec } from '../spec/load.js';
import { SPEC_EXTENSIONS } from '../spec/parse-file.js';
import { openImage } from '../input/open-image.js';
import { previousStoreLayers } from '../input/previous-layers.js';
import type { RegistryFlags } from '../registry.js';
import type { ResolvedSpec } from '../spec/schema.js';
import { specStore } from '../build.js';
import type { StoreSource } from '../store/types.js';

export interface StoreFlags {
  store?: string;
  storeDir?: string;
  nix?: boolean;
  closureFile?: string;
  verifyStore?: boolean;
}

/** Load a spec and open the store it names, with `--store`/`--store-dir` taking precedence. */
export async function loadSpecAndStore(specFile: string, flags: StoreFlags): Promise<{ spec: ResolvedSpec; store: StoreSource }> {
  // --store/--store-dir are applied while resolving, so content paths are checked against them.
  const spec = await loadSpec(await specFilePath(specFile), process.env, {
    store: {
      kind: flags.nix ? 'nix' : flags.closureFile ? 'closure-file' : undefined,
      dir: flags.store ? resolve(flags.store) : undefined,
      storeDir: flags.storeDir,
      closureFile: flags.closureFile ? resolve(flags.closureFile) : undefined,
      verify: flags.verifyStore,
    },
  });
  return { spec, store: await specStore(spec) };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

const specFileNames = SPEC_EXTENSIONS.map((ext) => `image${ext}`);

/** A spec argument may name a directory holding `image.<ext>` (as `examples/hello`). */
export async function specFilePath(arg: string): Promise<string> {
  const st = await stat(arg).catch(() => undefined);
  if (!st) throw new SpecError(arg, undefined, 'no such file or directory');
  if (!st.isDirectory()) return arg;
  for (const name of specFileNames) {
    const candidate = join(arg, name);
    if (await stat(candidate).then((s) => s.isFile(), () => false)) return candidate;
  }
  throw new SpecError(arg, undefined, `directory holds no spec (looked for ${specFileNames.join(', ')})`);
}

/**
 * `--previous <image>`: the store layers of an earlier build, for stable layering — from an OCI
 * layout or archive on disk, or else a registry reference (only its manifest is fetched).
 */
export async function readPrevious(image: string | undefined, registryFlags: RegistryFlags = {}): Promise<string[][] | undefined> {
  if (!image) return undefined;
  if (await stat(image).then(() => true, () => false)) return previousStoreLayers((await openImage(image)).manifest);
  const { resolveImage } = await import('../../registry-client/index.js');
  const { parseReference, registryClient } = await import('../registry.js');
  const ref = parseReference(image);
  const client = await registryClient(registryFlags, ref.registry);
  try {
    return previousStoreLayers((await resolveImage(client, ref)).manifest);
  } finally {
    await client.close();
  }
}
