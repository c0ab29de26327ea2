import { ImgbuildError } from '../../errors.js';

/**
 * A binary cache could not give what a build needs: a path it lacks (no `<hash>.narinfo`), an
 * answer that is not a narinfo, a signature missing or wrong, a cache that stays unreachable.
 * Names the store path and the cache.
 */
export class BinaryCacheError extends ImgbuildError {
  override name = 'BinaryCacheError';
  constructor(message: string, readonly paths: string[] = [], hint?: string, options?: { cause?: unknown }) {
    super('binary-cache', message, hint, options);
  }
}

/**
 * A NAR whose bytes are not the ones its narinfo announces: a FileHash, FileSize, NarHash or
 * NarSize mismatch, a compressed stream that does not decompress, a NAR that does not parse or
 * ends early. Whatever the symptom, the cause is the same (corrupt, truncated or tampered
 * bytes), and nothing made from them is kept.
 */
export class NarMismatchError extends ImgbuildError {
  override name = 'NarMismatchError';
  constructor(message: string, readonly paths: string[] = [], hint?: string, options?: { cause?: unknown }) {
    super('nar-mismatch', message, hint ?? 'the cache holds a corrupt, truncated or tampered NAR: re-upload the path (nix copy --to <cache> <path>) or use another cache', options);
  }
}
