/**
 * The sum of `<number><unit>` parts written without separators (`1m30s`, `1w2d`), each part
 * weighted by its unit; undefined when the text is anything else (or empty). Longer unit names
 * are tried first, so `ms` is not read as `m` followed by garbage.
 */
export function sumOfUnits(text: string, units: Readonly<Record<string, number>>): number | undefined {
  if (text.length === 0) return undefined;
  const names = Object.keys(units)
    .sort((a, b) => b.length - a.length)
    .map((u) => u.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const part = new RegExp(`(\\d+(?:\\.\\d+)?)(${names.join('|')})`, 'y');
  let sum = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (!m) return undefined;
    sum += Number(m[1]) * units[m[2]!]!;
    at = part.lastIndex;
  }
  return sum;
}
