import { createHash } from 'node:crypto';
import { deflateRawSync, type ZlibOptions } from 'node:zlib';
import { ImgbuildError } from '../errors.js';
import { goldenDeflateInput } from './golden-input.js';
import { blockDeflateSync, DEFLATE_OPTIONS } from './gzip.js';

/**
 * Layer digests are only reproducible if the deflate bytes are. We compress with the zlib that
 * Node bundles (Chromium's fork, not the system's libz), which has given identical output across
 * Node 20, 22 and 24, but nothing promises it will stay so. This guard compresses a fixed input
 * with the layer writer's settings once per process and compares the result with a pinned hash:
 * a Node whose zlib encodes differently is refused before it can publish digests that no other
 * machine reproduces. See docs/reproducibility.md.
 */

/** The layer writer's deflate settings (gzip.ts DEFLATE_OPTIONS). */
export const PINNED_DEFLATE_OPTIONS: Readonly<ZlibOptions> = DEFLATE_OPTIONS;

/**
 * sha256 of the layer writer's block-mode deflate (gzip.ts blockDeflateSync: 256 KiB blocks, each
 * with the previous 32 KiB as dictionary and a sync flush, the last finished) of
 * goldenDeflateInput() — two blocks, so the dictionary, sync-flush and finish paths are all
 * covered — as Node 20.20.2, 22.23.3 and 24.21.0 produce it.
 */
export const REFERENCE_DEFLATE_SHA256 = 'f726903436221486c7548ffa8cce05af759564827c100c78ef64874dfc9f876a';

/** Set to `1` to build anyway (with a warning) when this Node's deflate output differs. */
export const ALLOW_DRIFT_ENV = 'IMGBUILD_ALLOW_ZLIB_DRIFT';

export class ZlibDriftError extends ImgbuildError {
  override name = 'ZlibDriftError';
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      'zlib-drift',
      `this Node's zlib produces different deflate bytes from the reference (Node ${process.version}, zlib ${process.versions.zlib ?? 'unknown'}): ` +
        `layers built here would get digests that other machines do not reproduce (golden vector sha256 ${actual}, expected ${expected})`,
      `use a Node release whose bundled zlib matches (Node 20.18+, 22 and 24 are checked by the test suite), ` +
        `or set ${ALLOW_DRIFT_ENV}=1 to build anyway and accept digests that differ from other machines'`,
    );
  }
}

export type DeflateRaw = (input: Buffer, options: ZlibOptions) => Buffer;

export interface DeflateCheck {
  ok: boolean;
  /** sha256 hex of the reference output, and of what `compress` gave. */
  expected: string;
  actual: string;
}

/** Compress the golden input as the layer writer does (block mode, pinned settings) and compare with the reference. */
export function checkDeflate(compress: DeflateRaw = deflateRawSync): DeflateCheck {
  const actual = createHash('sha256').update(blockDeflateSync(goldenDeflateInput(), compress)).digest('hex');
  return { ok: actual === REFERENCE_DEFLATE_SHA256, expected: REFERENCE_DEFLATE_SHA256, actual };
}

/**
 * Throws ZlibDriftError for a failed check, unless IMGBUILD_ALLOW_ZLIB_DRIFT=1, in which case
 * it calls `warn` (the caller decides how often).
 */
export function enforceDeflateCheck(check: DeflateCheck, env: Readonly<Record<string, string | undefined>>, warn: (message: string) => void): void {
  if (check.ok) return;
  const error = new ZlibDriftError(check.expected, check.actual);
  if (env[ALLOW_DRIFT_ENV] !== '1') throw error;
  warn(`warning: ${error.message}; building anyway because ${ALLOW_DRIFT_ENV}=1`);
}

let checked: DeflateCheck | undefined;
let warned = false;

/**
 * The start-up guard for the layer writer: the check runs once per process (about 20 ms), later
 * calls only look at the remembered result. Throws ZlibDriftError when this Node's deflate
 * differs from the reference, unless `env` has IMGBUILD_ALLOW_ZLIB_DRIFT=1 (then one warning
 * through `warn`). The caller passes its environment: the library reads none of its own.
 */
export function assertReferenceDeflate(env: Readonly<Record<string, string | undefined>> = {}, warn: (message: string) => void = () => {}): void {
  checked ??= checkDeflate();
  enforceDeflateCheck(checked, env, (message) => {
    if (warned) return;
    warned = true;
    warn(message);
  });
}

/**
 * The sha256 this Node's deflate gives for the golden input when it differs from the reference
 * (a build allowed to drift, IMGBUILD_ALLOW_ZLIB_DRIFT=1, keys its layers on it, so that they are
 * never taken for reference bytes), or undefined when it is the reference. Checked once per process.
 */
export function deflateDrift(): string | undefined {
  checked ??= checkDeflate();
  return checked.ok ? undefined : checked.actual;
}
