/**
 * Edit distance with adjacent transpositions (optimal string alignment): `maxLayres` is one edit
 * from `maxLayers`, as a person would count it.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known key closest to `key`, if it is close enough to be a likely typo. Case differences
 * count as nothing (`maxlayers` → `maxLayers`, `cmd` → `Cmd`); otherwise at most a third of the
 * key's length may differ (at least 1, at most 3 edits), or the key is the start of a known key
 * (3 characters or more). Ties go to the first known key.
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const allowed = Math.min(3, Math.max(1, Math.floor(key.length / 3)));
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    const edits = c === lower ? 0 : editDistance(lower, c);
    // Ranking: same letters in another case, then fewest edits, then a truncated key (`pin` for `pinned`).
    const score = edits <= allowed ? edits : lower.length >= 3 && c.startsWith(lower) ? allowed + 1 : Infinity;
    if (score < bestScore) {
      best = candidate;
      bestScore = score;
    }
  }
  return best;
}
