import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** One request the token server answered. */
export interface TokenRequest {
  /** The Basic user name, or undefined for an anonymous request. */
  user: string | undefined;
  scopes: string[];
  service: string | null;
  status: number;
  /** The access the token grants (`repository:name:actions`). */
  granted: string[];
}

export interface TokenServer {
  realm: string;
  host: string;
  service: string;
  issuer: string;
  /** The PEM certificate whose key signs tokens: the registry's `rootcertbundle`. */
  certPath: string;
  requests(): TokenRequest[];
  stop(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/**
 * A small Docker token service on 127.0.0.1 (the distribution token-auth spec): GET
 * `/token?service=..&scope=..` with optional Basic auth answers `{token, access_token, expires_in}`
 * where the token is an RS256 JWT with an `x5c` header holding the signing certificate.
 * Policy: known users get every action they ask for; anonymous requests get `pull` only;
 * a wrong password is 401.
 */
export async function startTokenServer(dir: string, users: Record<string, string>, opts: { service?: string; issuer?: string; expiresIn?: number } = {}): Promise<TokenServer> {
  const service = opts.service ?? 'imgbuild-test-registry';
  const issuer = opts.issuer ?? 'imgbuild-test-issuer';
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=imgbuild token signer'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const key: KeyObject = createPrivateKey(readFileSync(keyPath));
  const certDer = readFileSync(certPath, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const log: TokenRequest[] = [];

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const entry: TokenRequest = { user: undefined, scopes, service: url.searchParams.get('service'), status: 200, granted: [] };
    log.push(entry);
    const auth = req.headers.authorization;
    let known = false;
    if (auth?.startsWith('Basic ')) {
      const text = Buffer.from(auth.slice(6), 'base64').toString('utf8');
      const i = text.indexOf(':');
      entry.user = text.slice(0, i);
      if (users[entry.user] !== text.slice(i + 1)) {
        entry.status = 401;
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="token"' });
        res.end('{"details":"invalid username or password"}');
        return;
      }
      known = true;
    }
    const access = scopes.flatMap((s) => s.split(' ')).filter(Boolean).map((s) => {
      const last = s.lastIndexOf(':');
      const first = s.indexOf(':');
      const actions = s.slice(last + 1).split(',').filter((a) => known || a === 'pull');
      return { type: s.slice(0, first), name: s.slice(first + 1, last), actions };
    });
    entry.granted = access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`);
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] };
    const claims = { iss: issuer, sub: entry.user ?? '', aud: service, exp: now + (opts.expiresIn ?? 300), nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${b64url(sign('sha256', Buffer.from(signingInput), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: opts.expiresIn ?? 300, issued_at: new Date().toISOString() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    host: `127.0.0.1:${port}`,
    service,
    issuer,
    certPath,
    requests: () => log.slice(),
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
