import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ImgbuildError } from '../../errors.js';
import { formatNarHashBase32, parseNarHash } from '../nar-hash.js';
import type { NarInfo } from './narinfo.js';

/** A trusted public key: Nix's `name:base64(32-byte ed25519 key)`. */
export interface PublicKey {
  name: string;
  key: KeyObject;
}

/**
 * Parses keys in Nix's format (`trusted-public-keys`: `cache.nixos.org-1:6NCH…=`); one value may
 * hold several separated by spaces, as nix.conf writes them. A malformed key is a usage error
 * naming it by its name only (never its key material: a Nix secret key given by mistake is the
 * private key itself), and an empty or blank value is one too (never a silent "no key", which
 * would turn signature checks off: `--trusted-public-key "$CACHE_KEY"` with the variable unset).
 */
export function parsePublicKeys(values: readonly string[]): PublicKey[] {
  const out: PublicKey[] = [];
  const example = 'e.g. --trusted-public-key cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=';
  for (const value of values) {
    if (value.trim() === '') {
      throw new ImgbuildError(
        'usage',
        `--trusted-public-key (or store.publicKeys) was given an empty value${value === '' ? '' : ' (only whitespace)'}: signature checks would be off`,
        `give the key as nix.conf writes it, ${example}; from a variable (--trusted-public-key "$CACHE_KEY"), check that it is set; to read the cache without checking signatures, leave --trusted-public-key out`,
      );
    }
    for (const text of value.trim().split(/\s+/)) {
      const colon = text.indexOf(':');
      const name = text.slice(0, colon);
      const b64 = text.slice(colon + 1);
      const raw = colon > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? Buffer.from(b64, 'base64') : undefined;
      if (!raw || raw.length !== 32) {
        // Named by the part before ':' alone: what follows may be a secret.
        const named = colon > 0 ? `trusted public key ${JSON.stringify(name.length > 64 ? `${name.slice(0, 61)}...` : name)}` : 'a trusted public key';
        const why =
          colon <= 0
            ? 'has no name before a \':\''
            : raw === undefined
              ? 'has no base64 after its \':\''
              : raw.length === 64
                ? 'is a Nix secret key (64 bytes), not a public key (its value is not printed)'
                : `has ${raw.length} bytes after its ':', not 32`;
        throw new ImgbuildError(
          'usage',
          `${named} ${why}; a Nix public key reads "name:base64(32 bytes)"`,
          raw?.length === 64
            ? 'give the public key written with it by nix-store --generate-binary-cache-key (or nix key convert-secret-to-public < <secret-key-file>) to --trusted-public-key; keep the secret key out of command lines and logs'
            : `pass it to --trusted-public-key as nix.conf writes it, ${example}`,
        );
      }
      out.push({ name, key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }) });
    }
  }
  return out;
}

/**
 * What Nix signs for a path (`ValidPathInfo::fingerprint`):
 * `1;<storePath>;<narHash as sha256:nix-base32>;<narSize>;<full reference paths, sorted, comma-separated>`.
 */
export function narInfoFingerprint(info: NarInfo, storeDir: string): string | undefined {
  const digest = parseNarHash(info.narHash);
  if (!digest) return undefined;
  // Nix signs the reference *set* (a StorePathSet: sorted, each once), whatever order the narinfo lists.
  const refs = [...new Set(info.references)].sort().map((r) => `${storeDir}/${r}`).join(',');
  return `1;${info.storePath};${formatNarHashBase32(digest)};${info.narSize};${refs}`;
}

/** Whether one of the narinfo's signatures is by one of `keys` and valid for its fingerprint. */
export function isSignedBy(info: NarInfo, storeDir: string, keys: readonly PublicKey[]): boolean {
  const fingerprint = narInfoFingerprint(info, storeDir);
  if (fingerprint === undefined) return false;
  const data = Buffer.from(fingerprint, 'utf8');
  for (const sig of info.sigs) {
    const colon = sig.indexOf(':');
    if (colon <= 0) continue;
    const name = sig.slice(0, colon);
    const bytes = Buffer.from(sig.slice(colon + 1), 'base64');
    if (bytes.length !== 64) continue;
    for (const k of keys) {
      if (k.name === name && verify(null, data, k.key, bytes)) return true;
    }
  }
  return false;
}
