// `imgbuild push` of a registry image: a copy, blobs mounted within a registry and streamed
// between registries, nothing written to disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { startRegistry, type RunningRegistry } from './helpers/registry.js';
import { tempDir } from './helpers/tmp.js';
import { toolFixture } from './helpers/tools.js';

let work: string;
let env: NodeJS.ProcessEnv;
let a: RunningRegistry | undefined;
let b: RunningRegistry | undefined;
let digest: string;

before(async () => {
  work = await tempDir('imgbuild-copy-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
});

/** Two docker-registries, the first holding hello, started by the first test that needs them. */
const registries = toolFixture(['docker-registry'], async () => {
  [a, b] = await Promise.all([startRegistry(), startRegistry()]);
  const r = await runCli(['build', join(repoRoot, 'examples/hello'), '--push', `${a.host}/src/hello:1`, '--insecure-registry', a.host, '--json'], { env });
  assert.equal(r.code, 0, r.stderr);
  digest = JSON.parse(r.stdout.toString()).digest;
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
});

async function push(from: string, to: string) {
  const r = await runCli(['push', from, to, '--insecure-registry', a!.host, '--insecure-registry', b!.host, '--json'], { env: { ...env, IMGBUILD_CACHE_DIR: join(work, 'empty-cache') } });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout.toString()) as { digest: string; pushed: { uploaded: number; mounted: number; skipped: number } };
  return { digest: doc.digest, ...doc.pushed };
}

test('push docker://a/x docker://b/x copies an image between registries with its digest, every blob streamed', async (t) => {
  if (!(await registries.need(t, 'skopeo'))) return;
  const r = await push(`docker://${a!.host}/src/hello:1`, `docker://${b!.host}/dst/hello:1`);
  assert.equal(r.digest, digest);
  assert.deepEqual([r.uploaded, r.mounted], [6, 0], 'five layers and the config');
  const info = JSON.parse(await tool('skopeo', ['inspect', '--tls-verify=false', `docker://${b!.host}/dst/hello:1`]));
  assert.equal(info.Digest, digest);
  // Nothing of the image was kept on disk on the way: the cache dir holds at most the CLI's own
  // compiled code (compile/: the push bundle's V8 code cache, Node's compile cache) and the
  // record of where the blobs were pushed (blob-locations/: repository names, no bytes).
  const cache = join(work, 'empty-cache');
  assert.deepEqual((await readdir(work)).includes('empty-cache') ? (await readdir(cache)).filter((n) => n !== 'compile' && n !== 'blob-locations') : [], []);
});

test('push within one registry mounts every blob instead of copying it', async (t) => {
  if (!(await registries.need(t))) return;
  const r = await push(`docker://${a!.host}/src/hello:1`, `${a!.host}/other/hello:1`);
  assert.equal(r.digest, digest);
  assert.deepEqual([r.uploaded, r.mounted], [0, 6]);
});
