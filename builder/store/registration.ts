import pLimit from 'p-limit';
import type { ClosureGraph } from '../../layering/types.js';
import { StoreError } from '../errors.js';
import { narHashOf } from './nar.js';
import { parseNarHash } from './nar-hash.js';

/**
 * The closure's registration in the `nix-store --load-db` format (what closureInfo's
 * `registration` and `nix-store --dump-db` contain): per path its store path, NAR hash (hex),
 * NAR size, an empty deriver, the reference count and the references. Derivers are left out, as
 * closureInfo does, so the text depends only on the closure. Paths whose source gave no narHash
 * are hashed from their files.
 */
export async function nixDbRegistration(
  graph: ClosureGraph,
  fsPathOf: (storePath: string) => string,
  concurrency = 2,
): Promise<string> {
  const limit = pLimit(concurrency);
  const hashes = await Promise.all(
    graph.paths.map((p) =>
      limit(async () => {
        if (p.narHash !== undefined) {
          const h = parseNarHash(p.narHash);
          if (!h) throw new StoreError(`${p.path}: narHash ${JSON.stringify(p.narHash)} is not a SHA-256 hash`, [p.path]);
          return h.toString('hex');
        }
        return parseNarHash((await narHashOf(fsPathOf(p.path))).narHash)!.toString('hex');
      }),
    ),
  );
  const sorted = graph.paths.map((p, i) => ({ p, hash: hashes[i]! })).sort((a, b) => (a.p.path < b.p.path ? -1 : 1));
  let out = '';
  for (const { p, hash } of sorted) {
    const refs = [...p.references].sort();
    out += `${p.path}\n${hash}\n${p.narSize}\n\n${refs.length}\n${refs.map((r) => `${r}\n`).join('')}`;
  }
  return out;
}
