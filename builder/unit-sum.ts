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

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `1234`, `500M`, `10G`, `1.5GiB`, `2TB`: bytes, suffixes in powers of 1024. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isFinite(n) ? Math.floor(n) : undefined;
}
