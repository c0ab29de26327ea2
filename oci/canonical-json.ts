/**
 * JSON with object keys sorted (by UTF-16 code units, recursively) and no white space.
 * Every JSON document imgbuild writes goes through this, so its bytes never depend on the
 * order in which code happened to build an object.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Printable ASCII but `"` and `\\`: what JSON.stringify writes between the quotes as it is. */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * `JSON.stringify(s)` for a string, without the call for the usual one (a store path, a digest,
 * a name): the hand-written documents of the hot paths (layer keys, closure digests, scan
 * records) write many thousands of them.
 */
export function jsonString(s: string): string {
  return JSON_PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}
