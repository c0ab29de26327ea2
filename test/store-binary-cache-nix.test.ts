// Building straight from a Nix binary cache: caches made by Nix 2.8's own `nix copy --to
// file://…` (xz, zstd, none), signed with a key from `nix-store --generate-binary-cache-key`,
// served over HTTP on 127.0.0.1, read by builds that have no Nix and no store on disk.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { uploadsByDigest } from './helpers/fault-proxy.js';
import { startFileServer, type FileServer } from './helpers/file-server.js';
import { makeTestNix, makeWritable, shDrv, type TestNix } from './helpers/nix.js';
import { noise, proxiedRegistryFixture } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let nix: TestNix;
let app: string;
let data: string;
let publicKey: string;
let otherKey: string;
let caches: string;
let server: FileServer;
let fromNix: { digest: string; layers: { digest: string }[] };
/** An environment with no Nix on PATH and no Nix variables: a runner without Nix. */
let bare: NodeJS.ProcessEnv;

const COMPRESSIONS = ['xz', 'zstd', 'none'] as const;

/**
 * A closure of three paths (an app, its data with a 600 KB binary file, nested directories, a
 * symlink and an empty file), the `--nix` build of it, binary caches of it made by `nix copy`,
 * and the store moved away: every build from a cache runs with the local store absent.
 */
const fixture = toolFixture(['nix', 'nix-store', 'nix-build'], async () => {
  nix = makeTestNix();
  data = nix.add('greeting-data', {
    'share/text': 'hello from a binary cache\n',
    'share/noise.bin': { content: noise(600_000, 'binary-cache') },
    'share/empty': '',
    'share/deep/er/file': 'x',
    'share/link': { symlink: 'text' },
    'bin/tool': { content: '#!/bin/sh\necho tool\n', executable: true },
  });
  app = nix.build(
    `let
      data = builtins.storePath ${JSON.stringify(data)};
      app = ${shDrv('app', 'mkdir -p $out/bin; printf "#!/bin/sh\\ncat ${data}/share/text\\n" > $out/bin/app; chmod +x $out/bin/app; ln -s ${data}/share $out/share')};
    in { inherit app; }`,
    'app',
  );
  nix.run('nix-store', ['--generate-binary-cache-key', 'imgbuild-test-1', join(nix.root, 'sk'), join(nix.root, 'pk')]);
  nix.run('nix-store', ['--generate-binary-cache-key', 'imgbuild-other-1', join(nix.root, 'sk2'), join(nix.root, 'pk2')]);
  publicKey = readFileSync(join(nix.root, 'pk'), 'utf8').trim();
  otherKey = readFileSync(join(nix.root, 'pk2'), 'utf8').trim();
  caches = join(nix.root, 'caches');
  mkdirSync(caches);
  for (const c of COMPRESSIONS) nix.run('nix', ['copy', '--to', `file://${caches}/${c}?compression=${c}&secret-key=${join(nix.root, 'sk')}`, app]);
  nix.run('nix', ['copy', '--to', `file://${caches}/unsigned?compression=none`, app]);
  const ref = await runCli(['build', specFile(), '--nix', '-o', join(nix.root, 'from-nix.oci'), '--json'], { env: nix.env });
  assert.equal(ref.code, 0, ref.stderr);
  fromNix = JSON.parse(ref.stdout.toString());
  // From here on the store is gone: no build below can read a file of it.
  renameSync(nix.storeDir, `${nix.storeDir}-away`);
  bare = { PATH: '/nonexistent', HOME: join(nix.root, 'home') };
  server = await startFileServer(caches);
});

after(async () => {
  await server?.stop();
  if (nix && existsSync(`${nix.storeDir}-away`)) renameSync(`${nix.storeDir}-away`, nix.storeDir);
  nix?.cleanup();
});

function specFile(): string {
  const file = join(nix.root, 'image.json');
  writeFileSync(file, JSON.stringify({ name: 'bc/app', tag: 'v1', architecture: 'amd64', store: { storeDir: nix.storeDir }, contents: [app], config: { Cmd: ['/bin/app'] } }));
  return file;
}

function fromCache(cache: string, ...more: string[]): string[] {
  return ['build', specFile(), '--substituter', `${server.url}/${cache}`, ...more];
}

const narRequests = (s: FileServer) => s.requests().filter((r) => r.path.includes('/nar/'));

for (const c of COMPRESSIONS) {
  test(`a build from a ${c} binary cache made by nix copy, over HTTP, has the manifest digest of the --nix build`, async (t) => {
    if (!(await fixture.need(t))) return;
    const out = join(nix.root, `from-${c}.oci`);
    const r = await runCli([...fromCache(c, '--trusted-public-key', publicKey), '-o', out, '--json'], { env: bare });
    assert.equal(r.code, 0, r.stderr);
    const built = JSON.parse(r.stdout.toString());
    assert.equal(built.digest, fromNix.digest);
    assert.deepEqual(built.layers.map((l: { digest: string }) => l.digest), fromNix.layers.map((l) => l.digest));
  });
}

test('umoci unpacks the image built from the binary cache with every file of the closure', async (t) => {
  if (!(await fixture.need(t, 'umoci'))) return;
  const out = join(nix.root, 'umoci.oci');
  const r = await runCli([...fromCache('xz', '--trusted-public-key', publicKey), '-o', out], { env: bare });
  assert.equal(r.code, 0, r.stderr);
  const bundle = join(nix.root, 'umoci-bundle');
  await tool('umoci', ['unpack', '--image', `${out}:v1`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  assert.deepEqual(readFileSync(join(rootfs, data, 'share/noise.bin')), noise(600_000, 'binary-cache'));
  assert.equal(readFileSync(join(rootfs, data, 'share/text'), 'utf8'), 'hello from a binary cache\n');
  assert.match(readFileSync(join(rootfs, app, 'bin/app'), 'utf8'), /^#!\/bin\/sh\ncat \//);
  makeWritable(bundle);
  rmSync(bundle, { recursive: true, force: true });
});

test('a file:// binary cache gives the same image', async (t) => {
  if (!(await fixture.need(t))) return;
  const r = await runCli(['build', specFile(), '--substituter', `file://${caches}/zstd`, '--trusted-public-key', publicKey, '-o', join(nix.root, 'file.oci'), '--json'], { env: bare });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.toString()).digest, fromNix.digest);
});

test('imgbuild verify builds twice from the binary cache and finds the image reproducible', async (t) => {
  if (!(await fixture.need(t))) return;
  const r = await runCli(['verify', specFile(), '--substituter', `${server.url}/zstd`, '--trusted-public-key', publicKey, '--json'], { env: bare });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.toString());
  assert.equal(doc.reproducible, true);
  assert.equal(doc.digest, fromNix.digest);
});

test('an unsigned path is refused when keys are given, naming the path', async (t) => {
  if (!(await fixture.need(t))) return;
  const out = join(nix.root, 'unsigned.oci');
  const r = await runCli([...fromCache('unsigned', '--trusted-public-key', publicKey), '-o', out], { env: bare });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[binary-cache\]: \/\S+-(app|greeting-data) in the binary cache http:\/\/127\.0\.0\.1:\d+\/unsigned is not signed; trusted keys: imgbuild-test-1/);
  assert.equal(existsSync(out), false);
});

test('a path signed by a key that is not trusted is refused', async (t) => {
  if (!(await fixture.need(t))) return;
  const r = await runCli([...fromCache('none', '--trusted-public-key', otherKey), '-o', join(nix.root, 'other-key.oci')], { env: bare });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[binary-cache\]: .* carries no valid signature by a trusted key \(its signatures: imgbuild-test-1\); trusted keys: imgbuild-other-1/);
});

test('a tampered NAR is refused as a hash mismatch and nothing is written', async (t) => {
  if (!(await fixture.need(t))) return;
  const dir = join(caches, 'tampered');
  cpSync(join(caches, 'none'), dir, { recursive: true });
  // Flip one byte in the middle of the biggest NAR (the noise file's bytes): same size, other content.
  const nars = readdirSync(join(dir, 'nar')).map((n) => join(dir, 'nar', n));
  const biggest = nars.sort((a, b) => readFileSync(b).length - readFileSync(a).length)[0]!;
  const bytes = readFileSync(biggest);
  const middle = bytes.length >> 1;
  bytes[middle] = bytes[middle]! ^ 0xff;
  writeFileSync(biggest, bytes);
  const out = join(nix.root, 'tampered.oci');
  const cache = await tempDir('imgbuild-bc-cache-');
  const r = await runCli([...fromCache('tampered', '--trusted-public-key', publicKey), '-o', out], { env: { ...bare, IMGBUILD_CACHE_DIR: cache } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[nar-mismatch\]: the NAR of \/\S+-greeting-data \(http:\/\/127\.0\.0\.1:\d+\/tampered\/nar\/\S+\.nar\) is not the one its narinfo describes: FileHash is sha256:\w+, the download hashes to sha256:\w+/);
  assert.equal(existsSync(out), false);
  // Every layer that was written is whole; no temp file is left in the cache's blob store.
  const blobs = join(cache, 'blobs');
  const left = existsSync(blobs) ? readdirSync(blobs, { recursive: true }).map(String).filter((n) => /tmp|\.part/.test(n)) : [];
  assert.deepEqual(left, []);
  rmSync(cache, { recursive: true, force: true });
});

test('a path missing from the cache is named with the cache', async (t) => {
  if (!(await fixture.need(t))) return;
  const dir = join(caches, 'incomplete');
  cpSync(join(caches, 'zstd'), dir, { recursive: true });
  const hash = data.slice(nix.storeDir.length + 1, nix.storeDir.length + 33);
  rmSync(join(dir, `${hash}.narinfo`));
  const r = await runCli([...fromCache('incomplete'), '-o', join(nix.root, 'incomplete.oci')], { env: bare });
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`error[binary-cache]: ${data} is not in the binary cache ${server.url}/incomplete (no ${server.url}/incomplete/${hash}.narinfo)`), r.stderr);
});

test('a flaky cache (503s, a NAR cut mid-download) is retried with backoff and gives the same image', async (t) => {
  if (!(await fixture.need(t))) return;
  server.clearLog();
  server.inject({ match: (p) => p.startsWith('/xz/') && p.endsWith('.narinfo'), times: 2, fault: { kind: 'status', status: 503 } });
  // The biggest NAR (the 600 KB noise file, ~600 KB compressed too) is cut after 20,000 bytes.
  const biggest = readdirSync(join(caches, 'xz', 'nar')).sort((a, b) => statSync(join(caches, 'xz', 'nar', b)).size - statSync(join(caches, 'xz', 'nar', a)).size)[0]!;
  server.inject({ match: (p) => p === `/xz/nar/${biggest}`, times: 1, fault: { kind: 'cut-after', bytes: 20_000 } });
  server.inject({ match: (p) => p.startsWith('/xz/nar/'), times: 1, fault: { kind: 'status', status: 502 } });
  const r = await runCli([...fromCache('xz', '--trusted-public-key', publicKey), '-o', join(nix.root, 'flaky.oci'), '--json'], { env: bare });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout.toString()).digest, fromNix.digest);
  const seen = server.requests();
  assert.equal(seen.filter((q) => q.status === 503).length, 2);
  assert.equal(seen.filter((q) => q.status === 'cut').length, 1);
  // The cut download resumed where it stopped, with a Range request.
  assert.equal(seen.filter((q) => q.path === `/xz/nar/${biggest}` && q.range === 'bytes=20000-' && q.status === 206).length, 1);
});

const registry = proxiedRegistryFixture();

test('two runners with empty disks: the second, from the binary cache, uploads no layer blob and fetches no NAR', async (t) => {
  if (!(await fixture.need(t)) || !(await registry.need(t))) return;
  const host = registry.proxy.host;
  const push = (repo: string) => ['--push', `${host}/${repo}:v1`, '--cache-ref', `${host}/bc/app-cache`, '--insecure-registry', host, '--trusted-public-key', publicKey, '--json'];
  const runner = async (repo = 'bc/app') => {
    const cache = await tempDir('imgbuild-runner-');
    try {
      const r = await runCli([...fromCache('zstd'), ...push(repo)], { env: { ...bare, IMGBUILD_CACHE_DIR: cache } });
      assert.equal(r.code, 0, r.stderr);
      return { doc: JSON.parse(r.stdout.toString()), stderr: r.stderr };
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  };
  registry.proxy.clearLog();
  server.clearLog();
  const first = await runner();
  assert.equal(first.doc.digest, fromNix.digest);
  const layerDigests = fromNix.layers.map((l) => l.digest).sort();
  assert.deepEqual(Object.keys(uploadsByDigest(registry.proxy.requests())).filter((d) => layerDigests.includes(d)).sort(), layerDigests);
  assert.ok(narRequests(server).length > 0);

  registry.proxy.clearLog();
  server.clearLog();
  const second = await runner();
  assert.equal(second.doc.digest, fromNix.digest);
  assert.deepEqual(uploadsByDigest(registry.proxy.requests()), {});
  assert.deepEqual(narRequests(server), []);
  assert.match(second.stderr, /layer records: \d+ from /);
  // The second runner HEADed each layer it took from the records.
  for (const d of layerDigests) assert.ok(registry.proxy.requests().some((q) => q.method === 'HEAD' && q.path.endsWith(`/blobs/${d}`)), d);
});

test('a layer record whose blob the push target lacks is not trusted: the layer is made from the cache\'s NARs', async (t) => {
  if (!(await fixture.need(t)) || !(await registry.need(t))) return;
  const host = registry.proxy.host;
  const args = (repo: string) => [...fromCache('zstd'), '--push', `${host}/${repo}:v1`, '--cache-ref', `${host}/bc/hint-cache`, '--insecure-registry', host, '--trusted-public-key', publicKey, '--json'];
  const run = async (repo: string) => {
    const cache = await tempDir('imgbuild-runner-');
    try {
      const r = await runCli(args(repo), { env: { ...bare, IMGBUILD_CACHE_DIR: cache } });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout.toString());
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  };
  await run('bc/hinted');
  // Same records, another repository: it holds none of the blobs the records name.
  registry.proxy.clearLog();
  server.clearLog();
  const elsewhere = await run('bc/elsewhere');
  assert.equal(elsewhere.digest, fromNix.digest);
  assert.ok(narRequests(server).length > 0, 'the NARs were fetched');
  const layerDigests = fromNix.layers.map((l) => l.digest).sort();
  assert.deepEqual(Object.keys(uploadsByDigest(registry.proxy.requests())).filter((d) => layerDigests.includes(d)).sort(), layerDigests);
});
