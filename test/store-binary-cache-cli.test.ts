// Builds from binary caches made by hand on disk (no Nix needed): narinfos and NARs written by
// the test, read over file:// or served from 127.0.0.1, to pin how the CLI answers caches that
// Nix would not make (reference cycles) or that Nix reads and imgbuild must too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { dumpNar, readNarTree } from '../builder/store/nar.js';
import { nixBase32Encode } from '../builder/store/nix-base32.js';
import { runCli } from './helpers/cli.js';
import { writeTree } from './helpers/nix.js';
import { tempDir } from './helpers/tmp.js';

const A = `/nix/store/${'a'.repeat(32)}-a`;
const B = `/nix/store/${'b'.repeat(32)}-b`;

interface CachePath {
  path: string;
  references: string[];
  /** Extra narinfo lines (Sig: …). */
  extra?: string;
}

/** A file:// binary cache of `paths`, each a directory holding one file named after it; its NARs uncompressed. */
async function makeCache(dir: string, paths: CachePath[], cacheInfo = 'StoreDir: /nix/store\n'): Promise<Map<string, { narHash: string; narSize: number }>> {
  mkdirSync(join(dir, 'nar'), { recursive: true });
  if (cacheInfo !== undefined) writeFileSync(join(dir, 'nix-cache-info'), cacheInfo);
  const out = new Map<string, { narHash: string; narSize: number }>();
  for (const p of paths) {
    const base = p.path.slice('/nix/store/'.length);
    const tree = join(dir, 'trees', base);
    writeTree(tree, { [`share/${base}`]: `${base}\n` });
    const parts: Buffer[] = [];
    await dumpNar(tree, await readNarTree(tree), (c) => parts.push(Buffer.from(c)));
    const nar = Buffer.concat(parts);
    const narHash = `sha256:${nixBase32Encode(createHash('sha256').update(nar).digest())}`;
    writeFileSync(join(dir, 'nar', `${base}.nar`), nar);
    out.set(p.path, { narHash, narSize: nar.length });
    writeFileSync(
      join(dir, `${base.slice(0, 32)}.narinfo`),
      [`StorePath: ${p.path}`, `URL: nar/${base}.nar`, 'Compression: none', `NarHash: ${narHash}`, `NarSize: ${nar.length}`, `References: ${p.references.map((r) => r.slice('/nix/store/'.length)).join(' ')}`, ...(p.extra ? [p.extra] : []), ''].join('\n'),
    );
  }
  return out;
}

function spec(dir: string, contents: string[]): string {
  const file = join(dir, 'image.json');
  writeFileSync(file, JSON.stringify({ name: 'qa/bc', tag: '1', architecture: 'amd64', contents }));
  return file;
}

test('a reference cycle between narinfos is a store error naming the cycle, exit 1', async () => {
  const dir = await tempDir('imgbuild-bc-cycle-');
  await makeCache(join(dir, 'cache'), [
    { path: A, references: [B] },
    { path: B, references: [A] },
  ]);
  const r = await runCli(['build', spec(dir, [A]), '--substituter', `file://${dir}/cache`, '-o', join(dir, 'out.oci')]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.toString(), '');
  assert.match(r.stderr, new RegExp(`^error\\[store\\]: reference cycle between distinct store paths: ${A} -> ${B} -> ${A}$`, 'm'));
});

test('a narinfo that references itself builds', async () => {
  const dir = await tempDir('imgbuild-bc-self-');
  await makeCache(join(dir, 'cache'), [{ path: A, references: [A] }]);
  const r = await runCli(['closure', spec(dir, [A]), '--substituter', `file://${dir}/cache`, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.toString()).paths.map((p: { path: string }) => p.path), [A]);
});

/** A Nix secret key as nix-store --generate-binary-cache-key writes it: name:base64(seed ‖ public key). */
function nixSecretKey(name: string): string {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return `${name}:${Buffer.concat([seed, pub]).toString('base64')}`;
}

test('a secret key given as a trusted public key is refused by its name alone, on stderr and in --json', async () => {
  const dir = await tempDir('imgbuild-bc-secret-');
  await makeCache(join(dir, 'cache'), [{ path: A, references: [] }]);
  const secret = nixSecretKey('qa-cache-1');
  const material = secret.slice('qa-cache-1:'.length);
  for (const json of [false, true]) {
    const r = await runCli(['build', spec(dir, [A]), '--substituter', `file://${dir}/cache`, '--trusted-public-key', secret, '-o', join(dir, 'out.oci'), ...(json ? ['--json'] : [])]);
    assert.equal(r.code, 2, r.stderr);
    const all = r.stdout.toString() + r.stderr;
    assert.match(all, /trusted public key \\?"qa-cache-1\\?" is a Nix secret key \(64 bytes\), not a public key \(its value is not printed\)/);
    // No 8 characters of the key material anywhere.
    for (let i = 0; i + 8 <= material.length; i++) assert.ok(!all.includes(material.slice(i, i + 8)), `key material at ${i} printed`);
  }
});

for (const value of ['', '   ']) {
  test(`--trusted-public-key ${JSON.stringify(value)} is a usage error naming the flag, not signature checks off`, async () => {
    const dir = await tempDir('imgbuild-bc-emptykey-');
    await makeCache(join(dir, 'cache'), [{ path: A, references: [] }]);
    const r = await runCli(['build', spec(dir, [A]), '--substituter', `file://${dir}/cache`, '--trusted-public-key', value, '-o', join(dir, 'out.oci')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^error\\[usage\\]: --trusted-public-key \\(or store\\.publicKeys\\) was given an empty value${value === '' ? '' : ' \\(only whitespace\\)'}: signature checks would be off$`, 'm'));
  });
}

/**
 * A server on 127.0.0.1 over the cache in `root`: `/cache/…` serves files, `/r/<n>/…` redirects
 * (`status`) to `/r/<n-1>/…` down to `/cache/…`, `/loop/…` redirects to itself via `/loop2/…`.
 */
async function redirectingServer(root: string, status = 302): Promise<{ url: string; seen: string[]; stop(): Promise<void> }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push(path);
    const r = /^\/r\/(\d+)(\/.*)$/.exec(path);
    if (r) {
      const n = Number(r[1]);
      res.writeHead(status, { location: n <= 1 ? `/cache${r[2]}` : `/r/${n - 1}${r[2]}` }).end('moved');
      return;
    }
    const loop = /^\/loop(2?)(\/.*)$/.exec(path);
    if (loop) {
      res.writeHead(status, { location: `http://127.0.0.1:${(server.address() as AddressInfo).port}/loop${loop[1] ? '' : '2'}${loop[2]}` }).end();
      return;
    }
    try {
      const body = readFileSync(join(root, path.replace(/^\/cache\//, '')));
      res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, stop: () => new Promise<void>((ok) => server.close(() => ok())) };
}

for (const status of [301, 302, 303, 307, 308]) {
  test(`a binary cache answering HTTP ${status} redirects is read where they lead, giving the image of the cache itself`, async () => {
    const dir = await tempDir('imgbuild-bc-redirect-');
    await makeCache(join(dir, 'cache'), [{ path: A, references: [B] }, { path: B, references: [] }]);
    const s = await redirectingServer(join(dir, 'cache'), status);
    try {
      const direct = await runCli(['build', spec(dir, [A]), '--substituter', `file://${dir}/cache`, '-o', join(dir, 'direct.oci'), '--json']);
      assert.equal(direct.code, 0, direct.stderr);
      const r = await runCli(['build', spec(dir, [A]), '--substituter', `${s.url}/r/3`, '-o', join(dir, 'redirected.oci'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout.toString()).digest, JSON.parse(direct.stdout.toString()).digest);
      assert.ok(s.seen.includes(`/cache/nar/${A.slice('/nix/store/'.length)}.nar`), 'the NAR was fetched through the redirects');
    } finally {
      await s.stop();
    }
  });
}

test('a redirect loop is a binary-cache error naming the chain', async () => {
  const dir = await tempDir('imgbuild-bc-loop-');
  await makeCache(join(dir, 'cache'), [{ path: A, references: [] }]);
  const s = await redirectingServer(join(dir, 'cache'));
  try {
    const r = await runCli(['build', spec(dir, [A]), '--substituter', `${s.url}/loop`, '-o', join(dir, 'out.oci')]);
    assert.equal(r.code, 1, r.stderr);
    const u = `${s.url}/loop/nix-cache-info`;
    assert.match(r.stderr, new RegExp(`^error\\[binary-cache\\]: GET ${u}: redirect loop \\(${u} -> ${s.url}/loop2/nix-cache-info -> ${u}\\)$`, 'm'));
  } finally {
    await s.stop();
  }
});

test('more than 10 redirects is a binary-cache error', async () => {
  const dir = await tempDir('imgbuild-bc-many-');
  await makeCache(join(dir, 'cache'), [{ path: A, references: [] }]);
  const s = await redirectingServer(join(dir, 'cache'));
  try {
    const r = await runCli(['build', spec(dir, [A]), '--substituter', `${s.url}/r/11`, '-o', join(dir, 'out.oci')]);
    assert.equal(r.code, 1, r.stderr);
    const chain = [...Array.from({ length: 11 }, (_, i) => `${s.url}/r/${11 - i}/nix-cache-info`), `${s.url}/cache/nix-cache-info`].join(' -> ');
    assert.equal(r.stderr.split('\n')[0], `error[binary-cache]: GET ${s.url}/r/11/nix-cache-info: more than 10 redirects (${chain})`);
    // Ten are followed.
    const ten = await runCli(['closure', spec(dir, [A]), '--substituter', `${s.url}/r/10`, '--json']);
    assert.equal(ten.code, 0, ten.stderr);
  } finally {
    await s.stop();
  }
});

/** A server on 127.0.0.1 that takes every request and never answers. */
async function silentServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer(() => undefined);
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

for (const [how, args, env] of [
  ['--response-timeout 1s', ['--response-timeout', '1s'], {}],
  ['IMGBUILD_RESPONSE_TIMEOUT=1s', [], { IMGBUILD_RESPONSE_TIMEOUT: '1s' }],
] as const) {
  test(`${how} bounds each wait for a binary cache that never answers`, async () => {
    const dir = await tempDir('imgbuild-bc-timeout-');
    const s = await silentServer();
    try {
      const started = Date.now();
      const r = await runCli(['build', spec(dir, [A]), '--substituter', s.url, '-o', join(dir, 'out.oci'), ...args], { env: { ...process.env, ...env } });
      const took = Date.now() - started;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^error\\[network\\]: GET ${s.url}/nix-cache-info failed 5 times \\(last: Headers Timeout Error\\)$`, 'm'));
      // 5 waits of 1 s and backoff of 0.25 + 0.5 + 1 + 2 s: well under one default (30 s) wait.
      assert.ok(took < 25_000, `took ${took} ms`);
    } finally {
      await s.stop();
    }
  });
}

test('a nix-cache-info without StoreDir is read as one of /nix/store, as Nix reads it', async () => {
  const dir = await tempDir('imgbuild-bc-nostoredir-');
  await makeCache(join(dir, 'with'), [{ path: A, references: [] }]);
  await makeCache(join(dir, 'without'), [{ path: A, references: [] }], 'WantMassQuery: 1\nPriority: 40\n');
  const withDir = await runCli(['build', spec(dir, [A]), '--substituter', `file://${dir}/with`, '-o', join(dir, 'with.oci'), '--json']);
  assert.equal(withDir.code, 0, withDir.stderr);
  const without = await runCli(['build', spec(dir, [A]), '--substituter', `file://${dir}/without`, '-o', join(dir, 'without.oci'), '--json']);
  assert.equal(without.code, 0, without.stderr);
  assert.equal(JSON.parse(without.stdout.toString()).digest, JSON.parse(withDir.stdout.toString()).digest);
});

// A --substituter URL may carry user info (a token, user:password): it is never printed, on
// stderr or in --json, however the cache fails; it shows as ***@, as a presigned query shows as ?….
const SECRET = 'T0kenSECRET';

/** The output of a run, checked to hold no part of SECRET; then stderr's first line. */
function withoutSecret(r: { stdout: Buffer; stderr: string }): string {
  const all = r.stdout.toString() + r.stderr;
  assert.ok(!all.includes(SECRET) && !all.includes('bob'), all);
  return r.stderr.split('\n')[0]!;
}

test('a path not in a binary cache whose URL holds user info: the error shows the cache as http://***@host/…, on stderr and in --json', async () => {
  const dir = await tempDir('imgbuild-bc-userinfo-');
  await makeCache(join(dir, 'cache'), [{ path: A, references: [] }]);
  const s = await redirectingServer(join(dir, 'cache'));
  try {
    const cache = s.url.replace('http://', `http://bob:${SECRET}@`);
    const hidden = `${s.url.replace('http://', 'http://***@')}/cache`;
    const message = `${B} is not in the binary cache ${hidden} (no ${hidden}/${'b'.repeat(32)}.narinfo)`;
    const r = await runCli(['closure', spec(dir, [B]), '--substituter', `${cache}/cache`]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(withoutSecret(r), `error[binary-cache]: ${message}`);
    const json = await runCli(['closure', spec(dir, [B]), '--substituter', `${cache}/cache`, '--json']);
    assert.equal(json.code, 1, json.stderr);
    withoutSecret(json);
    assert.equal(JSON.parse(json.stdout.toString()).error.message, message);
  } finally {
    await s.stop();
  }
});

test('a binary cache that cannot be reached, named with user info: the error shows http://***@host/…', async () => {
  const dir = await tempDir('imgbuild-bc-userinfo-down-');
  const s = await silentServer();
  const url = s.url;
  await s.stop();
  const r = await runCli(['closure', spec(dir, [A]), '--substituter', url.replace('http://', `http://bob:${SECRET}@`)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(withoutSecret(r), new RegExp(`^error\\[network\\]: GET ${url.replace('http://', 'http://\\*\\*\\*@')}/nix-cache-info failed 5 times \\(last: .*ECONNREFUSED.*\\)$`));
});

test('a binary cache refusing access, named with user info: the error shows http://***@host/…', async () => {
  const dir = await tempDir('imgbuild-bc-userinfo-403-');
  const server = createServer((_req, res) => void res.writeHead(403).end());
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await runCli(['closure', spec(dir, [A]), '--substituter', `http://bob:${SECRET}@${host}/c`]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(withoutSecret(r), `error[binary-cache]: GET http://***@${host}/c/nix-cache-info answered HTTP 403`);
  } finally {
    await new Promise<void>((ok) => server.close(() => ok()));
  }
});

for (const [value, message] of [
  [`ftp://bob:${SECRET}@cache.example/`, 'error[usage]: --substituter ftp://***@cache.example/: imgbuild reads binary caches over http(s):// and file:// (not ftp://)'],
  [`http://bob:${SECRET}@cache.example/?priority=40`, 'error[usage]: --substituter http://***@cache.example/?…: query parameters are not read'],
  [`http://bob:${SECRET}@cache.example:99999/`, 'error[usage]: --substituter "http://***@cache.example:99999/" is not a URL'],
] as const) {
  test(`--substituter ${value.replace(SECRET, '…')} is a usage error that prints no user info`, async () => {
    const dir = await tempDir('imgbuild-bc-userinfo-usage-');
    const r = await runCli(['closure', spec(dir, [A]), '--substituter', value]);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(withoutSecret(r), message);
  });
}
