import { ImgbuildError } from '../errors.js';
import { imagePathProblem } from '../spec/schema.js';

/**
 * `--store-dir <path>` (build, plan, closure, sbom, verify, store add): the logical store dir, an
 * absolute path inside the image. A command-line flag, so a bad one is a usage error naming the
 * flag (the spec's own `store.storeDir` is checked with the spec, naming its field).
 */
export function checkStoreDirFlag(value: string | undefined): void {
  if (value === undefined) return;
  const problem = imagePathProblem(value);
  if (problem) throw new ImgbuildError('usage', `--store-dir ${problem}`, 'name the store dir as the image sees it, an absolute path: e.g. --store-dir /nix/store');
}
