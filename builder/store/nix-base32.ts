/**
 * Nix's base-32: an alphabet without e, o, u, t (to avoid words), and a bit order of its own —
 * the last character encodes the first bits — so it is not RFC 4648 base32.
 */
export const NIX_BASE32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** `IS_NIX_BASE32[byte] === 1` when the byte is a character of the alphabet. */
export const IS_NIX_BASE32: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < NIX_BASE32_ALPHABET.length; i++) t[NIX_BASE32_ALPHABET.charCodeAt(i)] = 1;
  return t;
})();

const VALUE_OF: Int8Array = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < NIX_BASE32_ALPHABET.length; i++) t[NIX_BASE32_ALPHABET.charCodeAt(i)] = i;
  return t;
})();

/** Characters needed for `byteLength` bytes. */
export function nixBase32Length(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

export function nixBase32Encode(bytes: Uint8Array): string {
  const len = nixBase32Length(bytes.length);
  let out = '';
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const lo = (bytes[i] ?? 0) >> j;
    const hi = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
    out += NIX_BASE32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

/** Decodes nix-base32; returns undefined when `s` is not a valid encoding of `byteLength` bytes. */
export function nixBase32Decode(s: string, byteLength: number): Uint8Array | undefined {
  if (s.length !== nixBase32Length(byteLength)) return undefined;
  const out = new Uint8Array(byteLength);
  for (let n = 0; n < s.length; n++) {
    const digit = VALUE_OF[s.charCodeAt(s.length - n - 1) & 0xff] ?? -1;
    if (digit < 0 || s.charCodeAt(s.length - n - 1) > 0xff) return undefined;
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = (out[i] ?? 0) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (carry) {
      // Bits past the last byte mean the string encodes more than byteLength bytes.
      if (i + 1 >= byteLength) return undefined;
      out[i + 1] = (out[i + 1] ?? 0) | carry;
    }
  }
  return out;
}

/** Whether `s` is a 32-character store-path hash part. */
export function isHashPart(s: string): boolean {
  if (s.length !== 32) return false;
  for (let i = 0; i < 32; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || IS_NIX_BASE32[c] !== 1) return false;
  }
  return true;
}
