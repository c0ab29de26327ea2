/** A layer as alignment sees it: where it sits, and what identifies its content. */
export interface LayerKey {
  index: number;
  digest: string;
  /** The config's diff_id for the layer (undefined if the config lists too few). */
  diffId: string | undefined;
}

export type LayerPairing =
  | { kind: 'same'; a: LayerKey; b: LayerKey }
  | { kind: 'paired'; a: LayerKey; b: LayerKey }
  | { kind: 'removed'; a: LayerKey }
  | { kind: 'added'; b: LayerKey };

/**
 * Pair the layers of two images. Layers with the same content (diff_id, else digest) are paired
 * first, along their longest common subsequence so that an inserted or removed layer does not
 * shift everything after it; same-content layers out of that order are paired next (moved).
 * What remains is paired by position within each gap between anchors (a changed layer), and the
 * rest is added or removed. `same` pairs have equal content; `paired` ones are to be compared.
 */
export function alignLayers(a: LayerKey[], b: LayerKey[]): LayerPairing[] {
  const key = (l: LayerKey) => l.diffId ?? l.digest;
  const matchA = new Array<number | undefined>(a.length).fill(undefined);
  const matchB = new Array<number | undefined>(b.length).fill(undefined);

  // LCS over content keys; layer counts are small (≤ 127), so O(n·m) is nothing.
  const dp: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      dp[i]![j] = key(a[i]!) === key(b[j]!) ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
    }
  }
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    if (key(a[i]!) === key(b[j]!)) {
      matchA[i] = j;
      matchB[j] = i;
      i++;
      j++;
    } else if (dp[i + 1]![j]! >= dp[i]![j + 1]!) i++;
    else j++;
  }
  const anchors = matchA.map((j, i) => [i, j] as const).filter((p): p is readonly [number, number] => p[1] !== undefined);

  // Same content elsewhere: moved.
  for (let i = 0; i < a.length; i++) {
    if (matchA[i] !== undefined) continue;
    const j = b.findIndex((l, jj) => matchB[jj] === undefined && key(l) === key(a[i]!));
    if (j !== -1) {
      matchA[i] = j;
      matchB[j] = i;
    }
  }

  // Pair leftovers by position within each gap between consecutive anchors.
  const bounds = [[-1, -1] as const, ...anchors, [a.length, b.length] as const];
  for (let g = 0; g + 1 < bounds.length; g++) {
    const [ai, bj] = bounds[g]!;
    const [an, bn] = bounds[g + 1]!;
    const freeA: number[] = [];
    const freeB: number[] = [];
    for (let i = ai + 1; i < an; i++) if (matchA[i] === undefined) freeA.push(i);
    for (let j = bj + 1; j < bn; j++) if (matchB[j] === undefined) freeB.push(j);
    for (let k = 0; k < Math.min(freeA.length, freeB.length); k++) {
      matchA[freeA[k]!] = freeB[k]!;
      matchB[freeB[k]!] = freeA[k]!;
    }
  }

  const out: LayerPairing[] = [];
  for (let i = 0; i < a.length; i++) {
    const j = matchA[i];
    if (j === undefined) out.push({ kind: 'removed', a: a[i]! });
    else out.push({ kind: key(a[i]!) === key(b[j]!) ? 'same' : 'paired', a: a[i]!, b: b[j]! });
  }
  for (let j = 0; j < b.length; j++) if (matchB[j] === undefined) out.push({ kind: 'added', b: b[j]! });
  // Report in b's order (the newer image, usually), removed ones where they were in a.
  return out.sort((x, y) => position(x) - position(y));
}

function position(p: LayerPairing): number {
  if (p.kind === 'removed') return p.a.index - 0.5;
  return p.b.index;
}
