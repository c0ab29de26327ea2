/**
 * Dates in a spec: ISO 8601 with an explicit time zone (so the result never depends on the host's
 * TZ), a plain date meaning midnight UTC, or `"now"`.
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

/** Largest mtime a ustar header holds in its 11 octal digits (year 2242). */
export const MAX_TAR_TIME = 0o77777777777;

/**
 * A date: milliseconds since the epoch and, when the text gives a fraction of a second finer than
 * a millisecond, its digits past the third (`subMs`, up to six: nanoseconds, which is what an
 * image config's `created` holds in Go, the language of every runtime that reads it); or a
 * message saying what is wrong.
 */
export function parseIsoDate(text: string): { ms: number; subMs?: string } | { problem: string } {
  const m = ISO.exec(text);
  if (!m) return { problem: `"${text}" is not an ISO 8601 date (e.g. "2024-05-01T12:00:00Z") or "now"` };
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (h !== undefined && zone === undefined) {
    return { problem: `"${text}" has no time zone; add "Z" for UTC or an offset like "+02:00"` };
  }
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  // The digits as given (no floating point): trailing zeros say nothing.
  const digits = (frac ?? '').replace(/0+$/, '');
  if (digits.length > 9) {
    return { problem: `"${text}" gives ${digits.length} digits of a second; an image's created holds nanoseconds (9 digits) at most, and the runtimes that read it drop the rest` };
  }
  const ms = Number(digits.slice(0, 3).padEnd(3, '0'));
  const subMs = digits.slice(3);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const back = new Date(utc);
  // Date.UTC rolls 2024-02-30 over into March; a round trip catches impossible dates.
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    return { problem: `"${text}" is not a valid date` };
  }
  let offsetMinutes = 0;
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const digits = zone.replace(':', '');
    const sign = digits[0] === '-' ? -1 : 1;
    const oh = Number(digits.slice(1, 3));
    const om = Number(digits.slice(3, 5));
    if (oh > 23 || om > 59) return { problem: `"${text}" has an invalid time zone offset` };
    offsetMinutes = sign * (oh * 60 + om);
  }
  const result = utc - offsetMinutes * 60_000;
  if (result < 0) return { problem: `"${text}" is before 1970-01-01T00:00:00Z; tar cannot record it` };
  if (result / 1000 > MAX_TAR_TIME) return { problem: `"${text}" is after the latest time a tar header holds` };
  return { ms: result, ...(subMs ? { subMs } : {}) };
}

/**
 * RFC 3339 in UTC, without a fraction when the milliseconds are zero (`1970-01-01T00:00:01Z`),
 * else with three digits (`.250Z`), or with the digits past the millisecond `subMs` gives
 * (`.123456789Z`, as given: none is dropped).
 */
export function formatRfc3339(ms: number, subMs?: string): string {
  const iso = new Date(ms).toISOString();
  if (subMs) return `${iso.slice(0, -1)}${subMs}Z`;
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

const SDE_HINT = 'set SOURCE_DATE_EPOCH to the last commit\'s time (SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)), or unset it';

/** SOURCE_DATE_EPOCH (reproducible-builds.org): whole seconds since the epoch, or a message and what to do. */
export function parseSourceDateEpoch(value: string): { seconds: number } | { problem: string; hint: string } {
  if (!/^\d+$/.test(value)) {
    return { problem: `SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01, got "${value}"`, hint: SDE_HINT };
  }
  if (Number(value) > MAX_TAR_TIME) {
    return { problem: `SOURCE_DATE_EPOCH "${value}" is out of range: a tar header holds times up to ${MAX_TAR_TIME} (${formatRfc3339(MAX_TAR_TIME * 1000)})`, hint: SDE_HINT };
  }
  return { seconds: Number(value) };
}
