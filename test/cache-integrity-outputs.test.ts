// A damaged cache never reaches an output: a flipped byte and a truncation in a cached layer blob,
// in a layer record, and in a base image's layer held in a local OCI layout, each followed by a
// build to every kind of output (-o oci, -o docker-archive, --stream, --push to Debian's
// docker-registry). Each output is either correct (skopeo copies it, the digest is the golden
// one) or the build stops with an error naming the damaged file and writes nothing.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, truncate, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { proxiedRegistryFixture } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { needTool } from './helpers/tools.js';

const hello = join(repoRoot, 'examples/hello');
/** examples/hello's manifest digest (the golden one). */
const HELLO = 'sha256:81ff4a65e376537449b46f082ae0f38075e75e615e713d24201b0054bde0e580';

const registryFixture = proxiedRegistryFixture();
let work: string;

before(async () => {
  work = await tempDir('imgbuild-integrity-');
});

type Damage = 'flip' | 'truncate';
type Output = 'oci' | 'docker-archive' | 'stream' | 'push';

/** Flip one bit in the middle of a file (same size), or cut it to half its length. */
async function damage(file: string, how: Damage): Promise<void> {
  const size = (await stat(file)).size;
  if (how === 'truncate') return truncate(file, Math.floor(size / 2));
  const fh = await open(file, 'r+');
  try {
    const at = Math.floor(size / 2);
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = b[0]! ^ 0x01;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

const sha256 = async (file: string) => `sha256:${createHash('sha256').update(await readFile(file)).digest('hex')}`;

/** A warm cache of examples/hello (written through a docker-archive, so no output shares a blob's inode), and its build document. */
async function warmCache(): Promise<{ cache: string; env: NodeJS.ProcessEnv; layers: { digest: string; reason: string }[]; archive: string }> {
  const cache = await tempDir('imgbuild-integrity-cache-');
  const env = { ...process.env, IMGBUILD_CACHE_DIR: cache, DOCKER_CONFIG: join(work, 'docker') };
  const archive = join(work, `warm-${++pushes}.tar`);
  const r = await runCli(['build', hello, '-f', 'docker-archive', '-o', archive, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  return { cache, env, layers: JSON.parse(r.stdout.toString()).layers, archive };
}

/**
 * The output is the right image: an OCI layout or a push, copied whole by skopeo (every blob
 * checked against its digest), has the golden digest; a docker-archive (a file or the stream)
 * is byte for byte the one a clean cache wrote, and skopeo copies it.
 */
async function assertCorrect(output: Output, at: string, cleanArchive: string): Promise<void> {
  if (output === 'oci' || output === 'push') {
    assert.equal(await skopeoDigest(output, at), HELLO);
    return;
  }
  assert.equal(await sha256(at), await sha256(cleanArchive));
  await skopeoDigest(output, at);
}

let pushes = 0;

/** Build `spec` to `output`; returns the CLI's result and where the output is (a file, a dir, or a registry reference). */
async function buildTo(spec: string, output: Output, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; stdout: Buffer; at: string }> {
  const name = `out-${output}-${++pushes}`;
  if (output === 'push') {
    const host = registryFixture.registry.host;
    const at = `${host}/integrity/${name}:1`;
    const r = await runCli(['build', spec, '--push', at, '--insecure-registry', host, '--digest-file', join(work, `${name}.digest`)], { env });
    return { ...r, at };
  }
  if (output === 'stream') {
    const r = await runCli(['build', spec, '--stream'], { env });
    const at = join(work, `${name}.tar`);
    await writeFile(at, r.stdout);
    return { ...r, at };
  }
  const at = join(work, output === 'oci' ? `${name}.oci` : `${name}.tar`);
  const r = await runCli(['build', spec, '-f', output, '-o', at], { env });
  return { ...r, at };
}

/** skopeo reads the output whole (every blob against its digest) into a fresh layout; its manifest digest. */
async function skopeoDigest(output: Output, at: string): Promise<string> {
  const dest = join(work, `copy-${++pushes}`);
  const src = output === 'push' ? `docker://${at}` : output === 'oci' ? `oci:${at}` : `docker-archive:${at}`;
  // A docker-archive's layers are checked against the config's diff_ids as skopeo copies them; its
  // manifest is skopeo's own, so --preserve-digests only for the sources that have one.
  await tool('skopeo', ['copy', '--src-tls-verify=false', ...(output === 'oci' || output === 'push' ? ['--preserve-digests'] : []), src, `oci:${dest}:x`]);
  return JSON.parse(await tool('skopeo', ['inspect', `oci:${dest}:x`])).Digest;
}

/** Nothing of the output exists: no file or directory under its name, no temp file beside it, no tag in the registry. */
async function assertNothingWritten(output: Output, at: string): Promise<void> {
  if (output === 'push') {
    const host = registryFixture.registry.host;
    const repo = at.slice(host.length + 1, at.lastIndexOf(':'));
    const res = await fetch(`http://${host}/v2/${repo}/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 404, `${at} was tagged`);
    await assert.rejects(stat(join(work, `${repo.split('/').pop()}.digest`)), { code: 'ENOENT' });
    return;
  }
  if (output === 'stream') return; // stdout is not a file: the exit code says the stream is not whole
  await assert.rejects(stat(at), { code: 'ENOENT' });
  const leftovers = (await readdir(work)).filter((n) => n.startsWith(`.${at.split('/').pop()}.`));
  assert.deepEqual(leftovers, []);
}

const outputs: Output[] = ['oci', 'docker-archive', 'stream', 'push'];
const damages: Damage[] = ['flip', 'truncate'];

for (const how of damages) {
  for (const output of outputs) {
    test(`a cached layer blob with a ${how === 'flip' ? 'flipped byte' : 'truncation'}: ${output} is correct and the cache is repaired from the store`, async (t) => {
      if (!needTool(t, 'skopeo')) return;
      if (output === 'push' && !(await registryFixture.need(t))) return;
      const { cache, env, layers, archive } = await warmCache();
      const store = layers.find((l) => l.reason !== 'customisation')!;
      const blob = join(cache, 'blobs', 'sha256', store.digest.slice('sha256:'.length));
      await damage(blob, how);

      const r = await buildTo(hello, output, env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`cache: ${blob} (does not hash to|is truncated).*made it again from the store`));
      await assertCorrect(output, r.at, archive);
      assert.equal(await sha256(blob), store.digest, 'the cache blob is whole again');
    });

    test(`a layer record with a ${how === 'flip' ? 'flipped diff_id digit' : 'truncation'}: ${output} is correct (the record is not used, and is written again)`, async (t) => {
      if (!needTool(t, 'skopeo')) return;
      if (output === 'push' && !(await registryFixture.need(t))) return;
      const { cache, env, archive } = await warmCache();
      const records = await recordFiles(cache);
      // The record of the layer whose diff_id a damaged record would put in the config.
      const file = records[0]!;
      const before = await readFile(file, 'utf8');
      if (how === 'flip') {
        // One hex digit of the diff_id changed: still JSON, still a digest: only the checksum tells.
        const at = before.indexOf('"diffId":"sha256:') + '"diffId":"sha256:'.length;
        await writeFile(file, before.slice(0, at) + (before[at] === '0' ? '1' : '0') + before.slice(at + 1));
      } else {
        await damage(file, 'truncate');
      }

      const r = await buildTo(hello, output, env);
      assert.equal(r.code, 0, r.stderr);
      await assertCorrect(output, r.at, archive);
      assert.equal(await readFile(file, 'utf8'), before, 'the record is written again as it was');
    });

    test(`a base layer in a local OCI layout with a ${how === 'flip' ? 'flipped byte' : 'truncation'}: ${output} stops naming the file, nothing written`, async (t) => {
      if (!needTool(t, 'skopeo')) return;
      if (output === 'push' && !(await registryFixture.need(t))) return;
      const { env } = await warmCache();
      // A base written by skopeo (its own files, not the cache's), and a spec on top of it.
      const base = join(work, `base-${++pushes}.oci`);
      await tool('skopeo', ['copy', `docker-archive:${await helloArchive(env)}`, `oci:${base}:1`]);
      const manifest = JSON.parse(await readFile(join(base, 'blobs', 'sha256', (JSON.parse(await readFile(join(base, 'index.json'), 'utf8')).manifests[0].digest as string).slice(7)), 'utf8'));
      const layer = join(base, 'blobs', 'sha256', (manifest.layers[0].digest as string).slice(7));
      const spec = join(work, `on-base-${pushes}.json`);
      await writeFile(spec, JSON.stringify({ name: 'integrity/on-base', tag: '1', architecture: 'amd64', fromImage: `oci:${base}`, files: [{ path: '/etc/motd', content: 'on a base\n' }] }));
      await damage(layer, how);

      const r = await buildTo(spec, output, env);
      assert.equal(r.code, 1, r.stderr);
      // Truncated, the layout's own size check refuses the base when it is opened (image-read).
      assert.match(r.stderr, how === 'flip' ? /^error\[blob-mismatch\]: /m : /^error\[(blob-mismatch|image-read)\]: /m);
      // The file itself, or (the size check, image-read) the layout and the blob's digest.
      const named = r.stderr.includes(layer) || (how === 'truncate' && r.stderr.includes(`oci:${base}`) && r.stderr.includes(manifest.layers[0].digest));
      assert.ok(named, `the error names ${layer}:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /internal error/);
      await assertNothingWritten(output, r.at);
    });
  }
}

test('cache verify names a damaged blob and a damaged record, exits 1; --repair removes them and the next build is correct', async (t) => {
  if (!needTool(t, 'skopeo')) return;
  const { cache, env, layers, archive } = await warmCache();
  const blob = join(cache, 'blobs', 'sha256', layers[0]!.digest.slice('sha256:'.length));
  const truncated = join(cache, 'blobs', 'sha256', layers[1]!.digest.slice('sha256:'.length));
  const record = (await recordFiles(cache))[0]!;
  await damage(blob, 'flip');
  await damage(truncated, 'truncate');
  const text = await readFile(record, 'utf8');
  const at = text.indexOf('"diffId":"sha256:') + '"diffId":"sha256:'.length;
  await writeFile(record, text.slice(0, at) + (text[at] === 'a' ? 'b' : 'a') + text.slice(at + 1));

  const found = await runCli(['cache', 'verify', '--json'], { env });
  assert.equal(found.code, 1);
  // The verify document, listing the damage (not the error document); the error on stderr.
  const report = JSON.parse(found.stdout.toString());
  assert.deepEqual([report.repaired, report.damaged.map((d: { path: string }) => d.path).sort()], [false, [blob, truncated, record].sort()]);
  assert.match(found.stderr, /^error\[cache\]: 3 damaged files in the cache /m);
  for (const f of [blob, truncated, record]) assert.ok(found.stderr.includes(f), `${f} named in: ${found.stderr}`);
  assert.match(found.stderr, /^hint: remove them with `imgbuild cache verify --repair`/m);

  const human = await runCli(['cache', 'verify'], { env });
  assert.equal(human.code, 1);
  assert.match(human.stdout.toString(), new RegExp(`damaged blob ${blob}: does not hash to its name`));
  assert.match(human.stdout.toString(), new RegExp(`damaged blob ${truncated}: does not hash to its name`));
  assert.match(human.stdout.toString(), new RegExp(`damaged layer record ${record}: does not match its checksum`));

  const repaired = await runCli(['cache', 'verify', '--repair', '--json'], { env });
  assert.equal(repaired.code, 0, repaired.stderr);
  const doc = JSON.parse(repaired.stdout.toString());
  assert.equal(doc.repaired, true);
  assert.deepEqual(doc.damaged.map((d: { path: string }) => d.path).sort(), [blob, truncated, record].sort());
  for (const f of [blob, truncated, record]) await assert.rejects(stat(f), { code: 'ENOENT' });

  const clean = await runCli(['cache', 'verify', '--json'], { env });
  assert.equal(clean.code, 0, clean.stderr);
  assert.deepEqual(JSON.parse(clean.stdout.toString()).damaged, []);

  const out = join(work, 'after-repair.tar');
  const r = await runCli(['build', hello, '-f', 'docker-archive', '-o', out], { env });
  assert.equal(r.code, 0, r.stderr);
  await assertCorrect('docker-archive', out, archive);
  const again = await runCli(['cache', 'verify', '--json'], { env });
  assert.deepEqual(JSON.parse(again.stdout.toString()).damaged, []);
});

test('cache verify checks a record against its blob: a diff_id that is not the gunzipped blob\'s is named, even with a matching checksum', async () => {
  const { cache, env } = await warmCache();
  const record = (await recordFiles(cache))[0]!;
  const r = JSON.parse(await readFile(record, 'utf8'));
  // A record that lies consistently (its checksum recomputed, as an older imgbuild without one would have it): only the blob can tell.
  delete r.sum;
  const wrong = `sha256:${'0'.repeat(64)}`;
  r.blob.diffId = wrong;
  await writeFile(record, JSON.stringify(r));
  const v = await runCli(['cache', 'verify'], { env });
  assert.equal(v.code, 1);
  assert.match(v.stdout.toString(), new RegExp(`damaged layer record ${record}: says the layer's diff_id is ${wrong}; .* uncompressed gives sha256:[0-9a-f]{64}`));
});

/** Every layer record file of a cache, sorted. */
async function recordFiles(cache: string): Promise<string[]> {
  const dir = join(cache, 'layers');
  const out: string[] = [];
  for (const sub of await readdir(dir)) for (const f of await readdir(join(dir, sub))) if (f.endsWith('.json')) out.push(join(dir, sub, f));
  return out.sort();
}

let helloTar: string | undefined;

/** examples/hello as a docker-archive, built once. */
async function helloArchive(env: NodeJS.ProcessEnv): Promise<string> {
  if (helloTar) return helloTar;
  const at = join(work, 'hello-base.tar');
  const r = await runCli(['build', hello, '-f', 'docker-archive', '-o', at], { env });
  assert.equal(r.code, 0, r.stderr);
  helloTar = at;
  return at;
}
