// Stable layering through the CLI: a build given the previous image keeps the previous store
// layers whose paths are all still in the closure, byte for byte, and lays out only what is new.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const oldGreeting = 'mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0';
const newGreeting = 'q8f3vb0b5hqlxj9g2wzv7mdc1r4kp6sn-greeting-data-1.1';
const oldHello = 'yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1';
const newHello = 'a1pz4mrw7c9ksd2bn8gqv0jx5l3hfy6i-hello-2.12.1';

interface Layer {
  digest: string;
  reason: string;
  storePaths: string[];
}

async function build(dir: string, store: string, hello: string, extra: string[]): Promise<Layer[]> {
  const spec = join(dir, `spec-${hello.slice(0, 4)}.json`);
  await writeFile(spec, JSON.stringify({ name: 'stable/hello', architecture: 'amd64', store: { dir: store }, contents: [`/nix/store/${hello}`] }));
  const out = join(dir, `${hello.slice(0, 4)}.oci`);
  const r = await runCli(['build', spec, '-o', out, '--json', ...extra], { env: { ...process.env, IMGBUILD_CACHE_DIR: join(dir, 'cache') } });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString()).layers;
}

test('a dependency bump keeps every untouched store layer of the previous image, with the same digest', async () => {
  const dir = await tempDir();
  const v1Store = join(repoRoot, 'examples/hello/store');
  const v1 = await build(dir, v1Store, oldHello, []);

  // Bump greeting-data as Nix would: it and hello (which references it) get new hashes.
  const v2Store = join(dir, 'store-v2');
  await cp(v1Store, v2Store, { recursive: true, verbatimSymlinks: true });
  await writeFile(join(v2Store, oldGreeting, 'share/greeting/text'), 'Hello again, world!\n');
  await rename(join(v2Store, oldGreeting), join(v2Store, newGreeting));
  const helloBin = join(v2Store, oldHello, 'bin/hello');
  await writeFile(helloBin, (await readFile(helloBin, 'utf8')).replace(oldGreeting, newGreeting));
  await rename(join(v2Store, oldHello), join(v2Store, newHello));

  const v2 = await build(dir, v2Store, newHello, ['--previous', join(dir, `${oldHello.slice(0, 4)}.oci`)]);
  const v1ByPaths = new Map(v1.map((l) => [l.storePaths.join(' '), l.digest]));
  const carried = v2.filter((l) => l.reason === 'carried-over');
  assert.deepEqual(carried.map((l) => l.storePaths).sort(), [
    ['/nix/store/cc2pwmjqixkx2m97hdaq25slk9gg3ykf-hello-doc-2.12.1'],
    ['/nix/store/dmaldhkdzdzm54y43hgf1ybdv3ccpcwi-libgreet-0.3'],
  ]);
  for (const l of carried) assert.equal(l.digest, v1ByPaths.get(l.storePaths.join(' ')));
  const fresh = v2.filter((l) => l.reason === 'new').flatMap((l) => l.storePaths).sort();
  assert.deepEqual(fresh, [`/nix/store/${newHello}`, `/nix/store/${newGreeting}`]);
});
