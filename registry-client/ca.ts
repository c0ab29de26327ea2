import { X509Certificate } from 'node:crypto';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----\r?\n[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * What is wrong with a CA bundle given to trust (a `ca` option, a --ca-file), or undefined when
 * it holds one or more PEM certificates, each of which parses. Node's TLS would silently ignore
 * anything else (a private key, plain text, DER), and the failure would show later as an
 * unverifiable certificate.
 */
export function caBundleProblem(pem: string | Buffer): string | undefined {
  const text = typeof pem === 'string' ? pem : pem.toString('latin1');
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) return text.includes('PRIVATE KEY-----') ? 'holds no PEM certificate (a private key is not one)' : 'holds no PEM certificate';
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (e) {
      return `holds a certificate that does not parse (the ${ordinal(i + 1)}: ${(e as Error).message})`;
    }
  }
  return undefined;
}

function ordinal(n: number): string {
  return n === 1 ? '1st' : n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}
