import { RegistryClient, type RegistryClientOptions } from './client.js';
import { dockerConfigDir, writeDockerLogin } from './auth/docker-config.js';
import { normaliseRegistry } from './reference.js';

export interface LoginOptions extends Omit<RegistryClientOptions, 'credentials'> {
  /** Directory of config.json (default `$DOCKER_CONFIG` or `~/.docker`). */
  dockerConfigDir?: string;
  /** Check the credential against the registry before saving it (default true, as `docker login`). */
  verify?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * `docker login`: check that the registry accepts `username`/`password` (a GET of `/v2/`, through
 * the token service for Bearer registries), then save them in config.json — through the
 * configured credential helper if there is one, else base64 in `auths` (file mode 0600, written
 * to a temp name and renamed). Returns the file written and where the secret went.
 */
export async function login(registry: string, creds: { username: string; password: string }, options: LoginOptions = {}): Promise<{ path: string; storedIn: string }> {
  const name = normaliseRegistry(registry);
  if (options.verify !== false) {
    const source = `given to login for ${name}`;
    const client = new RegistryClient({ ...options, credentials: async () => ({ kind: 'basic', ...creds, source }) });
    try {
      await client.checkLogin(name);
    } finally {
      await client.close();
    }
  }
  const env = options.env ?? process.env;
  return writeDockerLogin(options.dockerConfigDir ?? dockerConfigDir(env), name, creds.username, creds.password, env);
}
