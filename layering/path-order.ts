/**
 * The two name orders nixpkgs uses. Both put the package name before the hash, so the order of
 * paths does not change when only hashes change.
 */

/** Plain code-unit comparison (Python's `str` order for the ASCII of store paths). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * popularity_contest's tie-break key: the first `-`-separated field (store dir + hash) moved to
 * the end, `/nix/store/abc-foo-1.0` → `foo-1.0-/nix/store/abc`.
 */
export function popularityNameKey(path: string): string {
  const dash = path.indexOf('-');
  return dash < 0 ? path : `${path.slice(dash + 1)}-${path.slice(0, dash)}`;
}

/**
 * auto-layer's in-layer order: compare the text after the first `-`, then the text before it
 * (a Python tuple comparison, which is not the same as comparing `name-hash` strings).
 */
export function compareAutoPathKey(a: string, b: string): number {
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  // A path without `-` is not a store path; give it an empty name so the order stays total.
  const nameA = da < 0 ? '' : a.slice(da + 1);
  const nameB = db < 0 ? '' : b.slice(db + 1);
  return compareStrings(nameA, nameB) || compareStrings(da < 0 ? a : a.slice(0, da), db < 0 ? b : b.slice(0, db));
}

/**
 * Every path's rank in auto-layer's name order (0 = first), computed once so that hot loops
 * compare two integers. The key `name \0 hash` sorts as the (name, hash) tuple does.
 */
export function autoKeyRanks(paths: readonly string[]): Int32Array {
  const keys = paths.map((p) => {
    const dash = p.indexOf('-');
    return dash < 0 ? `\0${p}` : `${p.slice(dash + 1)}\0${p.slice(0, dash)}`;
  });
  const order = paths.map((_, i) => i).sort((a, b) => compareStrings(keys[a]!, keys[b]!));
  const rank = new Int32Array(paths.length);
  order.forEach((v, r) => (rank[v] = r));
  return rank;
}
