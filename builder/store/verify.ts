import pLimit from 'p-limit';
import type { ClosureGraph } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import { contentId } from './content-id.js';
import { narHashOf, readNarTree } from './nar.js';
import { formatNarHashSri, parseNarHash } from './nar-hash.js';

/**
 * `--verify-store`: recomputes the NAR hash (and size) of every path whose source gave a narHash,
 * by streaming its files, and throws a StoreError naming the first path that does not match.
 * Paths without a narHash are not checked (there is nothing to compare with). Each path that
 * matches is reported to `onVerified` with its content id (content-id.ts), now known to be its
 * files'.
 */
export async function verifyClosure(
  graph: ClosureGraph,
  fsPathOf: (storePath: string) => string,
  concurrency = 2,
  onVerified?: (storePath: string, contentId: string) => void,
): Promise<{ checked: number }> {
  const limit = pLimit(concurrency);
  let checked = 0;
  await Promise.all(
    graph.paths.map((info) =>
      limit(async () => {
        if (info.narHash === undefined) return;
        const expected = parseNarHash(info.narHash);
        if (!expected) throw new StoreError(`${info.path}: narHash ${JSON.stringify(info.narHash)} is not a SHA-256 hash`, [info.path]);
        const fsPath = fsPathOf(info.path);
        const tree = await readNarTree(fsPath);
        const { narHash, narSize } = await narHashOf(fsPath, tree);
        const actual = parseNarHash(narHash)!;
        if (!actual.equals(expected)) {
          throw new StoreError(
            `NAR hash mismatch for ${info.path}: the source says ${formatNarHashSri(expected)}, the files at ${fsPath} hash to ${formatNarHashSri(actual)}`,
            [info.path],
            'the store copy differs from what was exported; copy the path again',
          );
        }
        if (narSize !== info.narSize) {
          throw new StoreError(
            `NAR size mismatch for ${info.path}: the source says ${info.narSize} bytes, the files at ${fsPath} serialise to ${narSize}`,
            [info.path],
          );
        }
        checked++;
        onVerified?.(info.path, contentId(actual.toString('hex'), tree));
      }),
    ),
  );
  return { checked };
}
