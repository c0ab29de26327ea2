// A RegistryClient made without `credentials` reads nothing ambient: not Docker's config.json (in
// $DOCKER_CONFIG or ~/.docker), not $GITHUB_TOKEN, no credential helper; it asks anonymously.
// Docker's lookup is one option away (`credentials: defaultCredentialProvider()`), which is what
// the CLI passes (commands/registry-flags.ts).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryAuthError, RegistryClient, defaultCredentialProvider } from '../registry-client/index.js';
import { startHostileRegistry, type HostileServer } from './helpers/hostile-registry.js';
import { tempDir } from './helpers/tmp.js';

const servers: HostileServer[] = [];
const clients: RegistryClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.stop()));
});

/** A registry that wants Basic credentials for everything, recording the Authorization header of each request. */
async function basicAuthRegistry(): Promise<{ host: string; authorizations: (string | undefined)[] }> {
  const authorizations: (string | undefined)[] = [];
  const s = await startHostileRegistry((req, res) => {
    authorizations.push(req.headers.authorization);
    res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}');
  });
  servers.push(s);
  return { host: s.host, authorizations };
}

test('a client made without credentials sends none, though $DOCKER_CONFIG names a config.json holding some and $GITHUB_TOKEN is set', async () => {
  const registry = await basicAuthRegistry();
  const dockerConfig = await tempDir('imgbuild-default-credentials-');
  await mkdir(dockerConfig, { recursive: true });
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('spy:secret').toString('base64') } } }));
  const saved = { DOCKER_CONFIG: process.env.DOCKER_CONFIG, GITHUB_TOKEN: process.env.GITHUB_TOKEN };
  process.env.DOCKER_CONFIG = dockerConfig;
  process.env.GITHUB_TOKEN = 'ghs_not_to_be_sent';
  try {
    const anonymous = new RegistryClient({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } });
    clients.push(anonymous);
    await assert.rejects(anonymous.getManifest({ registry: registry.host, repository: 'demo/app' }, '1'), (e: unknown) => e instanceof RegistryAuthError);
    assert.ok(registry.authorizations.length > 0);
    assert.deepEqual(registry.authorizations.filter((a) => a !== undefined), [], 'no Authorization header was sent');

    // Asked for, Docker's lookup finds them.
    registry.authorizations.length = 0;
    const docker = new RegistryClient({ retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 }, credentials: defaultCredentialProvider() });
    clients.push(docker);
    await assert.rejects(docker.getManifest({ registry: registry.host, repository: 'demo/app' }, '1'), (e: unknown) => e instanceof RegistryAuthError && /user "spy"/.test(e.message));
    assert.ok(registry.authorizations.includes(`Basic ${Buffer.from('spy:secret').toString('base64')}`));
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
