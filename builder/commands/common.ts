import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ImgbuildError, SpecError } from '../errors.js';
import { DEFAULT_SPEC_TIMEOUT_MS } from '../spec/guard.js';
import { loadSpec } from '../spec/load.js';
import { SPEC_EXTENSIONS } from '../spec/parse-file.js';
import type { ResolvedSpec } from '../spec/types.js';
import { previousStoreLayers } from '../build/previous-layers.js';
import { openImage } from '../transports/open.js';
import { hostPlatform } from './context.js';
import { lazyClient, type RegistryFlags } from './registry-flags.js';
import { checkStoreDirFlag } from './store-dir-flag.js';
import { refuseEmpty } from './arguments.js';
import { platformName, selectPlatforms } from '../build/build-index.js';

/**
 * The one platform of a spec that a command about one image works on (sbom, plan, closure):
 * `--platform`'s, or a single-platform spec's own. A spec of several platforms with no
 * --platform is a usage error listing them (`what`: why one is needed).
 */
export function specForPlatform(spec: ResolvedSpec, platform: string | undefined, what: string): ResolvedSpec {
  const platforms = selectPlatforms(spec, platform !== undefined ? [platform] : []);
  if (platforms.length !== 1) {
    throw new ImgbuildError('usage', `${spec.file} builds ${platforms.map((p) => platformName(p)).join(', ')}: ${what}`, `pick one with --platform ${platformName(platforms[0]!)}`);
  }
  return platforms[0]!;
}

export interface StoreFlags {
  store?: string;
  storeDir?: string;
  nix?: boolean;
  closureFile?: string;
  verifyStore?: boolean;
  substituter?: string;
  trustedPublicKey?: string[];
  cacheRef?: string;
}

/** Load a spec with `--store`/`--store-dir`/`--nix`/`--closure-file` taking precedence, in the process's environment. */
export async function loadCliSpec(specFile: string, flags: StoreFlags): Promise<ResolvedSpec> {
  const sources = [flags.nix && '--nix', flags.closureFile && '--closure-file', flags.substituter && '--substituter'].filter(Boolean);
  if (sources.length > 1) throw new ImgbuildError('usage', `${sources.join(' and ')} name different store sources`, 'give one of --nix, --closure-file, --substituter');
  checkStoreDirFlag(flags.storeDir);
  refuseEmpty(flags.store, '--store', 'a directory');
  refuseEmpty(flags.closureFile, '--closure-file', 'a file');
  refuseEmpty(flags.substituter, '--substituter', 'a binary cache URL');
  refuseEmpty(flags.cacheRef, '--cache-ref', 'an image reference');
  // --store/--store-dir are applied while resolving, so content paths are checked against them.
  return loadSpec(await specFilePath(specFile), {
    env: process.env,
    timeoutMs: specTimeoutMs(process.env.IMGBUILD_SPEC_TIMEOUT),
    overrides: {
      ...(flags.cacheRef !== undefined ? { cacheRef: flags.cacheRef } : {}),
      store: {
        url: flags.substituter,
        publicKeys: flags.trustedPublicKey,
        kind: flags.nix ? 'nix' : flags.closureFile ? 'closure-file' : flags.substituter ? 'binary-cache' : undefined,
        dir: flags.store ? resolve(flags.store) : undefined,
        storeDir: flags.storeDir,
        closureFile: flags.closureFile ? resolve(flags.closureFile) : undefined,
        verify: flags.verifyStore,
      },
    },
  });
}

/** IMGBUILD_SPEC_TIMEOUT (seconds, > 0) as milliseconds; the default (60 s) when unset. */
export function specTimeoutMs(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_SPEC_TIMEOUT_MS;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new ImgbuildError('usage', `IMGBUILD_SPEC_TIMEOUT=${JSON.stringify(value)} is not a number of seconds above 0`, 'e.g. IMGBUILD_SPEC_TIMEOUT=300');
  return Math.round(seconds * 1000);
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
 * `--previous <image>`: the store layers of an earlier build, for stable layering — any image
 * argument (a layout, an archive, a registry image: only its manifest is fetched).
 */
export async function readPrevious(image: string | undefined, registryFlags: RegistryFlags = {}, platform: { os: string; architecture: string; variant?: string } = hostPlatform(), signal?: AbortSignal): Promise<string[][] | undefined> {
  if (!image) return undefined;
  // `signal`: the command's interrupt, for the registry client.
  const client = lazyClient(registryFlags, undefined, signal);
  try {
    const previous = await openImage(image, { what: '--previous', registry: client.get, platform });
    return previousStoreLayers(previous.manifest);
  } finally {
    await client.close();
  }
}
