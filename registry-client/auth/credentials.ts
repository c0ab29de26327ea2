import { CredentialError } from '../errors.js';
import { normaliseRegistry } from '../reference.js';
import { dockerConfigDir, dockerConfigKey, findAuthEntry, findCredHelper, readDockerConfig, runCredentialHelper } from './docker-config.js';

/**
 * A credential for one registry. `source` says where it came from, for error messages
 * ("from /root/.docker/config.json for ghcr.io"); it never holds the secret.
 */
export type Credential =
  | { kind: 'basic'; username: string; password: string; source: string }
  /** An OAuth2 refresh token (`identitytoken` in config.json), exchanged at the token endpoint. */
  | { kind: 'identity-token'; token: string; username?: string; source: string };

/** Looks up the credential for a registry (normalised name, e.g. `docker.io`); `undefined` = anonymous. */
export type CredentialProvider = (registry: string) => Promise<Credential | undefined>;

/** `user:pass` as given on a command line (`--creds`); the password may contain ':'. */
export function parseUserPass(s: string, source = '--creds'): { username: string; password: string } {
  const i = s.indexOf(':');
  if (i <= 0) throw new CredentialError(`${source}: expected "user:password"`);
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

export interface CredentialLookupOptions {
  /** Explicit credentials by registry (`--creds`, `login`): these win over everything else. */
  explicit?: Record<string, { username: string; password: string } | string>;
  /** Environment to read `DOCKER_CONFIG`, `GITHUB_TOKEN`, `GITHUB_ACTOR` from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Directory of config.json (default `$DOCKER_CONFIG` or `~/.docker`). */
  dockerConfigDir?: string;
  /** Set false to ignore config.json entirely. */
  useDockerConfig?: boolean;
}

/**
 * The default lookup order: explicit credentials, then Docker's config (`credHelpers` for the
 * registry, then an `auths` entry with `auth`/`identitytoken`, then `credsStore`), then the
 * environment (`GITHUB_TOKEN` for ghcr.io, with `GITHUB_ACTOR` as user name when set).
 * Docker's config comes before the environment because a CI step that ran `docker login`
 * meant those credentials; `GITHUB_TOKEN` is the fallback that makes GHCR work with no setup.
 */
export function defaultCredentialProvider(options: CredentialLookupOptions = {}): CredentialProvider {
  const env = options.env ?? process.env;
  const explicit = new Map<string, { username: string; password: string }>();
  for (const [registry, c] of Object.entries(options.explicit ?? {})) {
    explicit.set(normaliseRegistry(registry), typeof c === 'string' ? parseUserPass(c) : c);
  }
  return async (registryIn) => {
    const registry = normaliseRegistry(registryIn);
    const given = explicit.get(registry);
    if (given) return { kind: 'basic', ...given, source: `given explicitly for ${registry}` };

    if (options.useDockerConfig !== false) {
      const fromConfig = await fromDockerConfig(options.dockerConfigDir ?? dockerConfigDir(env), registry, env);
      if (fromConfig) return fromConfig;
    }

    if (registry === 'ghcr.io' && env.GITHUB_TOKEN) {
      return { kind: 'basic', username: env.GITHUB_ACTOR || 'token', password: env.GITHUB_TOKEN, source: 'from $GITHUB_TOKEN for ghcr.io' };
    }
    return undefined;
  };
}

async function fromDockerConfig(dir: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credential | undefined> {
  const { path, config, exists } = await readDockerConfig(dir);
  if (!exists) return undefined;

  const helper = findCredHelper(config, registry);
  if (helper) return fromHelper(helper, registry, env, `credHelpers in ${path}`);

  const found = findAuthEntry(config, registry);
  if (found) {
    const { key, entry } = found;
    const source = `from ${path} for ${registry}`;
    if (typeof entry.identitytoken === 'string' && entry.identitytoken) {
      const username = entry.auth ? decodeAuth(entry.auth, path, key).username : entry.username;
      return { kind: 'identity-token', token: entry.identitytoken, ...(username ? { username } : {}), source };
    }
    if (typeof entry.auth === 'string' && entry.auth) {
      const { username, password } = decodeAuth(entry.auth, path, key);
      return { kind: 'basic', username, password, source };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      return { kind: 'basic', username: entry.username, password: entry.password, source };
    }
  }
  if (config.credsStore) return fromHelper(config.credsStore, registry, env, `credsStore in ${path}`);
  return undefined;
}

async function fromHelper(helper: string, registry: string, env: NodeJS.ProcessEnv, where: string): Promise<Credential | undefined> {
  const out = await runCredentialHelper(helper, 'get', dockerConfigKey(registry), env);
  if (out === undefined) return undefined;
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(out) as typeof parsed;
  } catch {
    throw new CredentialError(`credential helper docker-credential-${helper} (${where}) printed something that is not JSON`);
  }
  if (typeof parsed.Secret !== 'string' || !parsed.Secret) return undefined;
  const source = `from docker-credential-${helper} (${where}) for ${registry}`;
  // The helper protocol's convention: user name "<token>" marks an identity (refresh) token.
  if (parsed.Username === '<token>') return { kind: 'identity-token', token: parsed.Secret, source };
  return { kind: 'basic', username: typeof parsed.Username === 'string' ? parsed.Username : '', password: parsed.Secret, source };
}

function decodeAuth(auth: string, path: string, key: string): { username: string; password: string } {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (i < 0) throw new CredentialError(`${path}: auths["${key}"].auth is not base64 of "user:password"`);
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

/** What to print for a credential in an error: its source, never its value. */
export function describeCredential(c: Credential | undefined): string {
  if (!c) return 'anonymous (no credential found)';
  return c.kind === 'identity-token' ? `identity token ${c.source}` : `user "${c.username}" ${c.source}`;
}
