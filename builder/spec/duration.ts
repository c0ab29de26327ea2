import { sumOfUnits } from '../unit-sum.js';

/** Go duration strings (`"30s"`, `"1m30s"`, `"500ms"`) as the nanoseconds Docker's Healthcheck wants. */
const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

export function parseDuration(text: string): { ns: number } | { problem: string } {
  const bad = { problem: `"${text}" is not a duration like "30s", "1m30s" or "500ms" (or a number of nanoseconds)` };
  if (text === '0') return { ns: 0 };
  const ns = sumOfUnits(text, UNIT_NS);
  if (ns === undefined || !Number.isSafeInteger(Math.round(ns))) return bad;
  return { ns: Math.round(ns) };
}
