import { nixBase32Decode, nixBase32Encode } from './nix-base32.js';

/**
 * Reads a SHA-256 NAR hash in any form Nix prints: SRI (`sha256-<base64>`), `sha256:<nix-base32>`,
 * `sha256:<hex>`, or bare nix-base32 / hex (as in `nix-store --dump-db` registrations).
 * Returns the 32 digest bytes, or undefined when the text is not a SHA-256 hash.
 */
export function parseNarHash(text: string): Buffer | undefined {
  let s = text.trim();
  if (s.startsWith('sha256-')) {
    const b64 = s.slice('sha256-'.length);
    if (!/^[A-Za-z0-9+/]{43}=$/.test(b64)) return undefined;
    return Buffer.from(b64, 'base64');
  }
  if (s.startsWith('sha256:')) s = s.slice('sha256:'.length);
  if (/^[0-9a-f]{64}$/i.test(s)) return Buffer.from(s, 'hex');
  if (s.length === 52) {
    const bytes = nixBase32Decode(s, 32);
    return bytes ? Buffer.from(bytes) : undefined;
  }
  if (/^[A-Za-z0-9+/]{43}=$/.test(s)) return Buffer.from(s, 'base64');
  return undefined;
}

/** `sha256:<nix-base32>`, the form `nix-store --query --hash` prints. */
export function formatNarHashBase32(digest: Uint8Array): string {
  return `sha256:${nixBase32Encode(digest)}`;
}

/** `sha256-<base64>`, the SRI form `nix path-info --json` prints from Nix 2.4 on. */
export function formatNarHashSri(digest: Uint8Array): string {
  return `sha256-${Buffer.from(digest).toString('base64')}`;
}
