import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CredentialError } from '../errors.js';
import { DOCKER_HUB, normaliseRegistry } from '../reference.js';
import { timerDelay } from '../timer.js';

/** The parts of Docker's `config.json` we read; everything else is kept as is when we write. */
export interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; [k: string]: unknown }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

/** `$DOCKER_CONFIG`, else `~/.docker` (the directory holding config.json). */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** The key Docker files a registry under in `auths`/`credHelpers` (Docker Hub keeps its v1 URL). */
export function dockerConfigKey(registry: string): string {
  const r = normaliseRegistry(registry);
  return r === DOCKER_HUB ? 'https://index.docker.io/v1/' : r;
}

/** Read config.json from a directory; a missing file is an empty config, a broken one an error naming it. */
export async function readDockerConfig(dir: string): Promise<{ path: string; config: DockerConfigFile; exists: boolean }> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, config: {}, exists: false };
    throw new CredentialError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new CredentialError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CredentialError(`${path}: expected a JSON object at the top level`);
  }
  const config = parsed as DockerConfigFile;
  for (const field of ['auths', 'credHelpers'] as const) {
    const v = config[field];
    if (v !== undefined && (v === null || typeof v !== 'object' || Array.isArray(v))) {
      throw new CredentialError(`${path}: field "${field}" must be an object`);
    }
  }
  if (config.credsStore !== undefined && typeof config.credsStore !== 'string') {
    throw new CredentialError(`${path}: field "credsStore" must be a string`);
  }
  return { path, config, exists: true };
}

/** The `auths` entry for a registry, matching keys written with or without scheme and path. */
export function findAuthEntry(config: DockerConfigFile, registry: string): { key: string; entry: NonNullable<DockerConfigFile['auths']>[string] } | undefined {
  const want = normaliseRegistry(registry);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (entry && typeof entry === 'object' && normaliseRegistry(key) === want) return { key, entry };
  }
  return undefined;
}

/** The credential helper configured for a registry in `credHelpers` (by any spelling of its key). */
export function findCredHelper(config: DockerConfigFile, registry: string): string | undefined {
  const want = normaliseRegistry(registry);
  for (const [key, helper] of Object.entries(config.credHelpers ?? {})) {
    if (normaliseRegistry(key) === want && typeof helper === 'string' && helper) return helper;
  }
  return undefined;
}

/**
 * Run `docker-credential-<helper> <action>` with `input` on stdin (the credential helper
 * protocol). Returns stdout, or `undefined` for "credentials not found". The helper's output is
 * never put in an error message: it may hold the secret.
 */
export async function runCredentialHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<string | undefined> {
  const program = `docker-credential-${helper}`;
  // Loaded here: most pushes run no helper, and node:child_process costs ~5 ms of CPU to load.
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    let child;
    try {
      child = spawn(program, [action], { stdio: ['pipe', 'pipe', 'pipe'], env });
    } catch (e) {
      reject(new CredentialError(`cannot run credential helper ${program}: ${(e as Error).message}`));
      return;
    }
    // Our own timer (not spawn's `timeout`): it must also be cleared when the helper fails to start.
    const timer = setTimeout(() => child.kill('SIGKILL'), timerDelay(timeoutMs));
    timer.unref();
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.resume();
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new CredentialError(
        e.code === 'ENOENT' ? `credential helper ${program} is not installed (not found on PATH)` : `credential helper ${program} failed to start: ${e.message}`,
        'install the helper, or remove it from credHelpers/credsStore in config.json'));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) return resolve(stdout);
      // The protocol's "not found" answer is a message on stdout and a non-zero exit.
      if (action === 'get' && /credentials not found/i.test(stdout)) return resolve(undefined);
      reject(new CredentialError(`credential helper ${program} ${action} failed (${signal ? `signal ${signal}` : `exit ${code}`})`));
    });
    child.stdin.on('error', () => {}); // a helper that exits early closes stdin; its exit code says why
    child.stdin.end(input);
  });
}

/**
 * Record a login in `<dir>/config.json` the way `docker login` does: through the registry's
 * credential helper (or `credsStore`) when one is configured, else as base64 `user:pass` in
 * `auths`. The file is written to a temp name with mode 0600 and renamed over the old one, so a
 * reader never sees half a file and other users never see the secret.
 */
export async function writeDockerLogin(dir: string, registry: string, username: string, password: string, env: NodeJS.ProcessEnv = process.env): Promise<{ path: string; storedIn: string }> {
  const { path, config } = await readDockerConfig(dir);
  const key = dockerConfigKey(registry);
  const helper = findCredHelper(config, registry) ?? config.credsStore;
  config.auths = { ...(config.auths ?? {}) };
  let storedIn: string;
  if (helper) {
    await runCredentialHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: password }), env);
    // Docker leaves an empty marker entry so `docker logout` and listings know the registry.
    const existing = findAuthEntry(config, registry);
    if (existing) delete config.auths[existing.key];
    config.auths[key] = {};
    storedIn = `docker-credential-${helper}`;
  } else {
    const existing = findAuthEntry(config, registry);
    if (existing) delete config.auths[existing.key];
    config.auths[key] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
    storedIn = path;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.json.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(tmp, 0o600); // the umask could have narrowed it further, never widened; be exact
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new CredentialError(`cannot write ${path}: ${(e as Error).message}`);
  }
  return { path, storedIn };
}
