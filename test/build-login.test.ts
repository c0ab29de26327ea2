// login through the CLI against Debian's docker-registry with htpasswd (bcrypt) over TLS.
import { test, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { checkJsonOutput, runCli, tool } from './helpers/cli.js';
import { cliPath, repoRoot } from './helpers/paths.js';
import { makeTestCa, startRegistry, type RunningRegistry, type TestCa } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let registry: RunningRegistry | undefined;
let ca: TestCa;
/** This test's own dir: its cache, its docker config, its files. */
let work: string;
let env: NodeJS.ProcessEnv;

beforeEach(async () => {
  work = await tempDir('imgbuild-login-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache'), DOCKER_CONFIG: join(work, 'docker') };
});

/** A registry with htpasswd auth over TLS (a throwaway CA), started by the first test that needs it. */
const registryFixture = toolFixture(['docker-registry', 'openssl', 'htpasswd'], async () => {
  ca = makeTestCa(await tempDir('imgbuild-login-ca-'));
  registry = await startRegistry({ htpasswd: { alice: 'correct horse' }, tls: ca });
});

after(() => registry?.stop());

/** `imgbuild login ... --json` with the password on stdin; its stdout checked against the login (or error) document. */
async function login(password: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const args = ['login', registry!.host, '-u', 'alice', '--password-stdin', '--ca-file', ca.caCertPath, '--json'];
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(`${password}\n`);
  });
  checkJsonOutput(args, { ...r, signal: null, stdout: Buffer.from(r.stdout) });
  return r;
}

test('a wrong password is refused with the user named and the password never printed', async (t) => {
  if (!(await registryFixture.need(t))) return;
  const r = await login('tr0ub4dor');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /alice/);
  assert.doesNotMatch(r.stderr + r.stdout, /tr0ub4dor/);
  assert.equal(JSON.parse(r.stdout).error.code, 'auth');
  await assert.rejects(stat(join(work, 'docker', 'config.json')), { code: 'ENOENT' });
});

test('login stores the credentials (mode 0600) and build --push then uses them over TLS', async (t) => {
  if (!(await registryFixture.need(t, 'skopeo'))) return;
  const r = await login('correct horse');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { schemaVersion: 1, registry: registry!.host, username: 'alice', storedIn: join(work, 'docker', 'config.json') });
  const config = join(work, 'docker', 'config.json');
  assert.equal((await stat(config)).mode & 0o777, 0o600);
  const auths = JSON.parse(await readFile(config, 'utf8')).auths;
  assert.equal(Buffer.from(auths[registry!.host].auth, 'base64').toString(), 'alice:correct horse');

  const ref = `${registry!.host}/private/hello:1`;
  const pushed = await runCli(['build', join(repoRoot, 'examples/hello'), '--push', ref, '--ca-file', ca.caCertPath, '--json'], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
  const digest = JSON.parse(pushed.stdout.toString()).digest;
  // skopeo's --cert-dir takes a directory of CA certificates only.
  const certs = join(work, 'skopeo-certs');
  await mkdir(certs, { recursive: true });
  await copyFile(ca.caCertPath, join(certs, 'ca.crt'));
  const info = JSON.parse(await tool('skopeo', ['inspect', '--creds', 'alice:correct horse', '--cert-dir', certs, `docker://${ref}`]));
  assert.equal(info.Digest, digest);
});
