/**
 * Sorting store paths by nixpkgs' name keys without building the keys: a multikey quicksort
 * (Bentley & Sedgewick's 3-way radix quicksort) over the key's UTF-16 code units, read straight
 * from the path. Same order as comparing the built keys with `<` (path-order.ts), several times
 * faster at 200,000 paths, where building and comparing key strings was a third of the planner.
 *
 * A key is the text after the path's first `-` (the name), then a separator, then the text before
 * it (store dir and hash):
 *   - `popularity`: `name-hash` as a string (popularityNameKey); a path without `-` is its own key.
 *   - `auto`: the tuple (name, hash) (compareAutoPathKey): the separator sorts below every
 *     character, so a name that is a prefix of another comes first, and equal names go by hash;
 *     a path without `-` has the empty name.
 *   - `auto-nul`: the string `name\0hash` (autoKeyRanks, which stable uses): like `auto` except
 *     that the separator is code unit 0, which only differs when a path contains NUL.
 */
export type NameKey = 'popularity' | 'auto' | 'auto-nul';

/** The key has ended (sorts first). */
const END = -2;
/** `auto`'s separator: below every code unit, above END. */
const TUPLE_SEP = -1;
/** Code units shifted by 2 (END is 0) span 0..65537. */
const RADIX = 65538;
/** Below this many paths, a range is sorted by insertion. */
const SMALL = 12;

/** Where each path's key parts are: name = path[nameStart .. nameStart + nameLen), then sep, then path[0 .. preLen). */
export class NameKeys {
  readonly nameStart: Int32Array;
  readonly nameLen: Int32Array;
  readonly preLen: Int32Array;
  readonly sep: Int32Array;
  /**
   * Some path has no `-`. Only then can two paths have equal keys (`p` and `p-` in the auto
   * shapes: both the empty name and hash `p`); `popularity` keys are always distinct.
   */
  readonly undashed: boolean = false;

  constructor(
    readonly paths: readonly string[],
    shape: NameKey,
  ) {
    const n = paths.length;
    this.nameStart = new Int32Array(n);
    this.nameLen = new Int32Array(n);
    this.preLen = new Int32Array(n);
    this.sep = new Int32Array(n);
    const sep = shape === 'popularity' ? 45 : shape === 'auto' ? TUPLE_SEP : 0;
    for (let v = 0; v < n; v++) {
      const p = paths[v]!;
      const dash = p.indexOf('-');
      if (dash < 0) {
        this.undashed = true;
        if (shape === 'popularity') {
          // The whole path is the key.
          this.nameLen[v] = p.length;
          this.sep[v] = END;
        } else {
          // Empty name, then the separator, then the whole path.
          this.sep[v] = sep;
          this.preLen[v] = p.length;
        }
      } else {
        this.nameStart[v] = dash + 1;
        this.nameLen[v] = p.length - dash - 1;
        this.sep[v] = sep;
        this.preLen[v] = dash;
      }
    }
  }

  /** Code unit `d` of v's key, END past its end. */
  at(v: number, d: number): number {
    const nameLen = this.nameLen[v]!;
    if (d < nameLen) return this.paths[v]!.charCodeAt(this.nameStart[v]! + d);
    if (d === nameLen) return this.sep[v]!;
    const k = d - nameLen - 1;
    return k < this.preLen[v]! ? this.paths[v]!.charCodeAt(k) : END;
  }

  /**
   * Code units 3u, 3u+1 and 3u+2 of v's key as one number that orders as they do (each shifted
   * by 2 so that END is 0): 0 exactly when the key has ended. Three at a time, a third of the
   * passes over the paths.
   */
  unit(v: number, u: number): number {
    const d = 3 * u;
    return ((this.at(v, d) + 2) * RADIX + (this.at(v, d + 1) + 2)) * RADIX + (this.at(v, d + 2) + 2);
  }

  /** Compare the keys of a and b, both known to agree before unit u. */
  compare(a: number, b: number, u = 0): number {
    for (;;) {
      const ca = this.unit(a, u);
      const cb = this.unit(b, u);
      if (ca !== cb) return ca - cb;
      if (ca === 0) return 0;
      u++;
    }
  }

  /** Sort nodes[lo .. hi) by key, equal keys by node number, in place. */
  sort(a: Int32Array, lo = 0, hi = a.length): void {
    // Ranges still to sort, as (lo, hi, depth) triples: no recursion, however alike the keys.
    const todo: number[] = [lo, hi, 0];
    while (todo.length > 0) {
      let d = todo.pop()!;
      hi = todo.pop()!;
      lo = todo.pop()!;
      for (;;) {
        if (hi - lo < SMALL) {
          for (let i = lo + 1; i < hi; i++) {
            const v = a[i]!;
            let j = i - 1;
            while (j >= lo && (this.compare(a[j]!, v, d) || a[j]! - v) > 0) (a[j + 1] = a[j]!), j--;
            a[j + 1] = v;
          }
          break;
        }
        const pivot = median3(this.unit(a[lo]!, d), this.unit(a[(lo + hi) >>> 1]!, d), this.unit(a[hi - 1]!, d));
        // 3-way partition on unit d: [lo, lt) below the pivot, [lt, gt) equal, [gt, hi) above.
        let lt = lo;
        let gt = hi;
        let i = lo;
        while (i < gt) {
          const c = this.unit(a[i]!, d);
          if (c < pivot) {
            const t = a[i]!;
            a[i++] = a[lt]!;
            a[lt++] = t;
          } else if (c > pivot) {
            const t = a[i]!;
            a[i] = a[--gt]!;
            a[gt] = t;
          } else i++;
        }
        if (lt - lo > 1) todo.push(lo, lt, d);
        if (hi - gt > 1) todo.push(gt, hi, d);
        if (pivot === 0) {
          // The keys in [lt, gt) have ended: they are equal.
          a.subarray(lt, gt).sort();
          break;
        }
        lo = lt;
        hi = gt;
        d++;
      }
    }
  }
}

function median3(x: number, y: number, z: number): number {
  return x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
}

/**
 * Every path's rank in the key order (0 = first). `distinct`: equal keys are ranked by node
 * number (as a stable sort of the nodes in order would place them); `shared`: equal keys share
 * a rank (comparing ranks then agrees with comparing keys, ties included).
 */
export function nameRanks(paths: readonly string[], shape: NameKey, ties: 'distinct' | 'shared' = 'distinct'): Int32Array {
  return nameOrder(paths, shape, ties).rank;
}

/**
 * The nodes in key order, equal keys by node number (`order`), and each one's rank as
 * nameRanks gives it (`rank`): a caller that lists nodes by name walks `order` instead of
 * sorting by rank again.
 */
export function nameOrder(paths: readonly string[], shape: NameKey, ties: 'distinct' | 'shared' = 'distinct'): { order: Int32Array; rank: Int32Array } {
  const n = paths.length;
  const order = new Int32Array(n);
  for (let v = 0; v < n; v++) order[v] = v;
  const rank = new Int32Array(n);
  const strings = keyStrings(paths, shape);
  let same: (a: number, b: number) => boolean;
  if (strings) {
    // One sort by a plain string comparison: where a build plans once, at 50,000 paths, ~2.5
    // times faster than the multikey sort (its code mostly unoptimised the first time it runs);
    // at 200,000 they are alike.
    order.sort((a, b) => {
      const x = strings[a]!;
      const y = strings[b]!;
      return x < y ? -1 : x > y ? 1 : a - b;
    });
    same = (a, b) => strings[a] === strings[b];
  } else {
    const keys = new NameKeys(paths, shape);
    keys.sort(order);
    same = (a, b) => keys.undashed && keys.compare(a, b) === 0;
  }
  for (let r = 0; r < n; r++) {
    rank[order[r]!] = ties === 'shared' && r > 0 && same(order[r - 1]!, order[r]!) ? rank[order[r - 1]!]! : r;
  }
  return { order, rank };
}

/**
 * The keys as strings, when a string comparison orders them as NameKeys does: always for
 * `popularity` (`name-hash`) and `auto-nul` (`name\0hash`); for `auto` (the tuple) when no path
 * holds a NUL, below which the tuple's separator sorts. Undefined otherwise.
 */
function keyStrings(paths: readonly string[], shape: NameKey): string[] | undefined {
  const n = paths.length;
  const keys = new Array<string>(n);
  const sep = shape === 'popularity' ? '-' : '\0';
  for (let v = 0; v < n; v++) {
    const p = paths[v]!;
    if (shape === 'auto' && p.includes('\0')) return undefined;
    const dash = p.indexOf('-');
    keys[v] = dash < 0 ? (shape === 'popularity' ? p : `${sep}${p}`) : `${p.slice(dash + 1)}${sep}${p.slice(0, dash)}`;
  }
  return keys;
}
