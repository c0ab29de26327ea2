import { hash } from 'node:crypto';

/**
 * A record's checksum, as its last field: `{…,"sum":"<sha256 hex of the text before ,"sum">"}`.
 * Scan records (scan-cache.ts) and closure records (closure-record.ts) carry it, as layer records
 * carry theirs (cache/layer-cache.ts `sum`): a record damaged on disk (one flipped character of a
 * reference's hash still parses, and would drop a dependency from a closure) does not match it and
 * is not used. The text is hashed as written, not the object re-serialised: one sha256 of the line,
 * with no JSON.stringify (a warm build reads the records of tens of thousands of paths).
 */
const SUM_FIELD = ',"sum":"';
/** `,"sum":"` + 64 hex digits + `"}`. */
const SEAL_LENGTH = SUM_FIELD.length + 64 + 2;

/** `json` (an object of at least one field, as JSON.stringify writes it) with its checksum as its last field. */
export function sealJson(json: string): string {
  const body = json.slice(0, -1);
  return `${body}${SUM_FIELD}${hash('sha256', body, 'hex')}"}`;
}

/** The checksum field to end a record whose text before it is `body` (written in pieces: closure-record.ts). */
export function sealOf(body: string | Uint8Array): string {
  return `${SUM_FIELD}${hash('sha256', body, 'hex')}"}`;
}

/** Whether `text` ends with the checksum of what comes before it (sealJson). */
export function isSealed(text: string): boolean {
  const at = text.length - SEAL_LENGTH;
  if (at <= 0 || !text.startsWith(SUM_FIELD, at) || !text.endsWith('"}')) return false;
  return hash('sha256', text.slice(0, at), 'hex') === text.slice(at + SUM_FIELD.length, text.length - 2);
}

/** isSealed of a file's bytes (no decoding before the check). */
export function isSealedBytes(bytes: Buffer): boolean {
  const at = bytes.length - SEAL_LENGTH;
  if (at <= 0 || bytes.toString('latin1', at, at + SUM_FIELD.length) !== SUM_FIELD || bytes.toString('latin1', bytes.length - 2) !== '"}') return false;
  return hash('sha256', bytes.subarray(0, at), 'hex') === bytes.toString('latin1', at + SUM_FIELD.length, bytes.length - 2);
}

/** The checksum field of a record whose text before it hashed (sha256) to `hex`. */
export function sealField(hex: string): string {
  return `${SUM_FIELD}${hex}"}`;
}

/**
 * Whether `text` ends with a checksum field (sealJson's shape), whatever it says: a record that
 * has one and does not match it is damaged; one without one is of a version before checksums
 * (never used by a build) unless it says it is of the current version.
 */
export function hasSealShape(text: string): boolean {
  const at = text.length - SEAL_LENGTH;
  return at > 0 && text.startsWith(SUM_FIELD, at) && text.endsWith('"}');
}
