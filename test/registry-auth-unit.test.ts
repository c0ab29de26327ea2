import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CredentialError, ScopeSet, choosePlatform, defaultCredentialProvider, describeCredential, parseChallenges, writeDockerLogin,
} from '../registry-client/index.js';
import { parseRetryAfter } from '../registry-client/retry.js';

describe('WWW-Authenticate challenges', () => {
  test('a Bearer challenge with realm, service and scope', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull,push' } },
    ]);
  });
  test('several challenges in one header, unquoted values, escapes and spaces', () => {
    assert.deepEqual(parseChallenges('Basic realm="Registry \\"R\\"", Bearer realm=https://t.example/token, service = svc, error="invalid_token"'), [
      { scheme: 'basic', params: { realm: 'Registry "R"' } },
      { scheme: 'bearer', params: { realm: 'https://t.example/token', service: 'svc', error: 'invalid_token' } },
    ]);
  });
  test('no header gives no challenge', () => {
    assert.deepEqual(parseChallenges(undefined), []);
  });
});

describe('token scopes', () => {
  test('actions of one resource merge; the string form is sorted and stable', () => {
    const s = new ScopeSet(['repository:b:push', 'repository:a:pull', 'repository:b:pull']);
    assert.equal(s.toString(), 'repository:a:pull repository:b:pull,push');
  });
  test('a wider set covers a narrower one, not the other way round', () => {
    const wide = new ScopeSet(['repository:a:pull,push', 'repository:b:pull']);
    assert.equal(wide.covers(new ScopeSet(['repository:a:pull'])), true);
    assert.equal(new ScopeSet(['repository:a:pull']).covers(wide), false);
    assert.equal(new ScopeSet(['repository:a:*']).covers(new ScopeSet(['repository:a:push'])), true);
  });
  test('registry names with ports keep their colon (only the last one splits the actions)', () => {
    assert.equal(new ScopeSet(['repository:x/y:pull']).add('registry:catalog:*').toString(), 'registry:catalog:* repository:x/y:pull');
  });
});

describe('Retry-After', () => {
  test('delta seconds, capped', () => {
    assert.equal(parseRetryAfter('2', 60_000), 2000);
    assert.equal(parseRetryAfter('3600', 60_000), 60_000);
  });
  test('an HTTP date counts from now', () => {
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', 60_000, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 5000);
  });
  test('missing or unreadable means "use backoff"', () => {
    assert.equal(parseRetryAfter(undefined, 1000), undefined);
    assert.equal(parseRetryAfter('soon', 1000), undefined);
  });
});

describe('platform choice in an index', () => {
  const d = (architecture: string, variant?: string, os = 'linux') => ({ mediaType: 'x', digest: `sha256:${architecture}${variant ?? ''}`, size: 1, platform: { os, architecture, ...(variant ? { variant } : {}) } });
  const idx = [d('amd64'), d('arm', 'v6'), d('arm', 'v7'), d('arm64', 'v8'), d('unknown', undefined, 'unknown')];
  test('os and architecture must match; an absent variant means the default (arm64 → v8, arm → v7)', () => {
    assert.equal(choosePlatform(idx, { os: 'linux', architecture: 'arm64' })?.digest, 'sha256:arm64v8');
    assert.equal(choosePlatform(idx, { os: 'linux', architecture: 'arm' })?.digest, 'sha256:armv7');
    assert.equal(choosePlatform(idx, { os: 'linux', architecture: 'arm', variant: 'v6' })?.digest, 'sha256:armv6');
    assert.equal(choosePlatform(idx, { os: 'linux', architecture: 'amd64' })?.digest, 'sha256:amd64');
  });
  test('a variant asked for and not present matches nothing', () => {
    assert.equal(choosePlatform(idx, { os: 'linux', architecture: 'arm', variant: 'v5' }), undefined);
    assert.equal(choosePlatform(idx, { os: 'windows', architecture: 'amd64' }), undefined);
  });
});

describe('credentials from Docker config, helpers and the environment', () => {
  let tmp: string;
  let binDir: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'imgbuild-creds-'));
    binDir = join(tmp, 'bin');
    await mkdir(binDir);
    // A credential helper speaking the docker-credential protocol: server URL on stdin, JSON out.
    const helper = join(binDir, 'docker-credential-testhelper');
    await writeFile(helper, `#!/bin/sh
read url
case "$1" in
  get)
    case "$url" in
      helped.example.com) printf '{"ServerURL":"%s","Username":"helperuser","Secret":"helper-secret"}' "$url" ;;
      token.example.com) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-123"}' "$url" ;;
      *) echo "credentials not found in native keychain"; exit 1 ;;
    esac ;;
  store) echo "$url" > "${tmp}/stored-url" ;;
esac
`);
    await chmod(helper, 0o755);
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const envWith = (dir: string, extra: Record<string, string> = {}) => ({ PATH: `${binDir}:${process.env.PATH}`, DOCKER_CONFIG: dir, ...extra });
  const configDir = async (name: string, config: object) => {
    const dir = join(tmp, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  };

  test('auths: base64 auth, matched whatever the key spelling', async () => {
    const dir = await configDir('auths', { auths: { 'https://registry.example.com/v2/': { auth: Buffer.from('me:pa:ss').toString('base64') } } });
    const c = await defaultCredentialProvider({ env: envWith(dir) })('registry.example.com');
    assert.deepEqual(c, { kind: 'basic', username: 'me', password: 'pa:ss', source: `from ${join(dir, 'config.json')} for registry.example.com` });
  });

  test('auths: identitytoken becomes an identity (refresh) token', async () => {
    const dir = await configDir('identity', { auths: { 'myregistry.azurecr.io': { auth: Buffer.from('00000000-0000-0000-0000-000000000000:').toString('base64'), identitytoken: 'eyJrefresh' } } });
    const c = await defaultCredentialProvider({ env: envWith(dir) })('myregistry.azurecr.io');
    assert.deepEqual(c, { kind: 'identity-token', token: 'eyJrefresh', username: '00000000-0000-0000-0000-000000000000', source: `from ${join(dir, 'config.json')} for myregistry.azurecr.io` });
  });

  test('credHelpers: runs docker-credential-<name> get', async () => {
    const dir = await configDir('helpers', { credHelpers: { 'helped.example.com': 'testhelper' }, auths: { 'helped.example.com': { auth: Buffer.from('ignored:x').toString('base64') } } });
    const c = await defaultCredentialProvider({ env: envWith(dir) })('helped.example.com');
    assert.deepEqual(c, { kind: 'basic', username: 'helperuser', password: 'helper-secret', source: `from docker-credential-testhelper (credHelpers in ${join(dir, 'config.json')}) for helped.example.com` });
  });

  test('credsStore: the helper\'s "<token>" user marks an identity token; "not found" means anonymous', async () => {
    const dir = await configDir('store', { credsStore: 'testhelper' });
    const p = defaultCredentialProvider({ env: envWith(dir) });
    assert.equal((await p('token.example.com'))?.kind, 'identity-token');
    assert.equal(await p('unknown.example.com'), undefined);
  });

  test('a helper that is not installed is a clear error', async () => {
    const dir = await configDir('missing-helper', { credHelpers: { 'x.example.com': 'nosuchhelper' } });
    await assert.rejects(defaultCredentialProvider({ env: envWith(dir) })('x.example.com'), (e: unknown) =>
      e instanceof CredentialError && /docker-credential-nosuchhelper is not installed/.test(e.message));
  });

  test('a broken config.json names the file', async () => {
    const dir = join(tmp, 'broken');
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), '{"auths": ');
    await assert.rejects(defaultCredentialProvider({ env: envWith(dir) })('ghcr.io'), (e: unknown) =>
      e instanceof CredentialError && e.message.startsWith(`${join(dir, 'config.json')} is not valid JSON`));
  });

  test('GITHUB_TOKEN is used for ghcr.io only, after Docker config, and explicit credentials win over both', async () => {
    const empty = join(tmp, 'none');
    const env = envWith(empty, { GITHUB_TOKEN: 'ghs_abc', GITHUB_ACTOR: 'octocat' });
    assert.deepEqual(await defaultCredentialProvider({ env })('ghcr.io'), { kind: 'basic', username: 'octocat', password: 'ghs_abc', source: 'from $GITHUB_TOKEN for ghcr.io' });
    assert.equal(await defaultCredentialProvider({ env })('docker.io'), undefined);
    const dir = await configDir('ghcr', { auths: { 'ghcr.io': { auth: Buffer.from('u:from-config').toString('base64') } } });
    assert.equal((await defaultCredentialProvider({ env: { ...env, DOCKER_CONFIG: dir } })('ghcr.io'))?.source, `from ${join(dir, 'config.json')} for ghcr.io`);
    const explicit = await defaultCredentialProvider({ env, explicit: { 'ghcr.io': 'me:given' } })('ghcr.io');
    assert.deepEqual(explicit, { kind: 'basic', username: 'me', password: 'given', source: 'given explicitly for ghcr.io' });
  });

  test('describing a credential never shows its secret', () => {
    const text = describeCredential({ kind: 'basic', username: 'me', password: 'hunter2', source: 'from /x/config.json for ghcr.io' });
    assert.equal(text, 'user "me" from /x/config.json for ghcr.io');
  });

  test('writeDockerLogin keeps other settings, replaces the old entry, and writes mode 0600', async () => {
    const dir = await configDir('login', { auths: { 'https://ghcr.io': { auth: 'b2xkOm9sZA==' }, 'other.io': { auth: 'eDp5' } }, detachKeys: 'ctrl-e' });
    await writeDockerLogin(dir, 'ghcr.io', 'new', 'pw', envWith(dir));
    const path = join(dir, 'config.json');
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { auths: { 'other.io': { auth: 'eDp5' }, 'ghcr.io': { auth: Buffer.from('new:pw').toString('base64') } }, detachKeys: 'ctrl-e' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test('writeDockerLogin stores through the credential helper when one is configured, leaving no secret in the file', async () => {
    const dir = await configDir('login-helper', { credsStore: 'testhelper' });
    const r = await writeDockerLogin(dir, 'docker.io', 'hubuser', 'hub-secret', envWith(dir));
    assert.equal(r.storedIn, 'docker-credential-testhelper');
    assert.deepEqual(JSON.parse(await readFile(join(tmp, 'stored-url'), 'utf8')), { ServerURL: 'https://index.docker.io/v1/', Username: 'hubuser', Secret: 'hub-secret' });
    const text = await readFile(join(dir, 'config.json'), 'utf8');
    assert.deepEqual(JSON.parse(text), { credsStore: 'testhelper', auths: { 'https://index.docker.io/v1/': {} } });
  });
});
