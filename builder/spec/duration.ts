/** Go duration strings (`"30s"`, `"1m30s"`, `"500ms"`) as the nanoseconds Docker's Healthcheck wants. */
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

export function parseDuration(text: string): { ns: number } | { problem: string } {
  const bad = { problem: `"${text}" is not a duration like "30s", "1m30s" or "500ms" (or a number of nanoseconds)` };
  if (text === '0') return { ns: 0 };
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let ns = 0;
  let at = 0;
  while (at < text.length) {
    part.lastIndex = at;
    const m = part.exec(text);
    if (!m) return bad;
    ns += Number(m[1]) * UNIT_NS[m[2]!]!;
    at = part.lastIndex;
  }
  if (text.length === 0 || !Number.isSafeInteger(Math.round(ns))) return bad;
  return { ns: Math.round(ns) };
}
