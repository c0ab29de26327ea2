// Builds from binary caches made by hand on disk (no Nix needed): narinfos and NARs written by
// the test, read over file:// or served from 127.0.0.1, to pin how the CLI answers caches that
// Nix would not make (reference cycles) or that Nix reads and imgbuild must too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
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
