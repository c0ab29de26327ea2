// `plan` = `build`: both run one planning function (base-image layers included); `plan --json`
// is a versioned document that `build --plan` follows, refused for another closure.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/paths.js';
import { tempDir } from './helpers/tmp.js';

const hello = join(repoRoot, 'examples/hello');
let work: string;
let env: NodeJS.ProcessEnv;
let baseLayout: string;
let onBase: string;

before(async () => {
  work = await tempDir('imgbuild-plan-');
  env = { ...process.env, IMGBUILD_CACHE_DIR: join(work, 'cache') };
  // A 5-layer base (the hello example), and a spec on top of it whose 4-path closure gets the
  // one store layer that maxLayers 7 leaves (7 - 5 base - 1 customisation).
  baseLayout = join(work, 'base.oci');
  assert.equal((await runCli(['build', hello, '-o', baseLayout], { env })).code, 0);
  onBase = join(work, 'on-base.json');
  await writeFile(onBase, JSON.stringify({
    name: 'plan/on-base',
    tag: '1',
    architecture: 'amd64',
    fromImage: `oci:${baseLayout}`,
    maxLayers: 7,
    store: { dir: join(repoRoot, 'examples/hello/store') },
    contents: ['/nix/store/yd3ba7lj520fcmbr3nn39mz0ppk4hizy-hello-2.12.1'],
  }));
});

async function json(args: string[]) {
  const r = await runCli(args, { env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.toString());
}

test('plan --json with a base image lists the layers build makes: base, store and customisation', async () => {
  const plan = await json(['plan', onBase, '--json']);
  const built = await json(['build', onBase, '-o', join(work, 'a.oci'), '--json']);
  assert.equal(plan.imgbuildPlan, 1);
  assert.equal(plan.base.layers.length, 5);
  assert.equal(plan.layers.length, 1, 'the base\'s layers count against maxLayers');
  assert.equal(plan.totalLayers, 7);
  assert.equal(built.layers.length, 7);
  assert.deepEqual(plan.base.layers.map((l: { digest: string }) => l.digest), built.layers.slice(0, 5).map((l: { digest: string }) => l.digest));
  const storeLayers = built.layers.filter((l: { reason: string }) => l.reason !== 'base' && l.reason !== 'customisation');
  assert.deepEqual(plan.layers.map((l: { paths: string[] }) => l.paths), storeLayers.map((l: { storePaths: string[] }) => l.storePaths));
});

test('build --plan of a plan file gives the digest of a build that plans for itself', async () => {
  const planFile = join(work, 'plan.json');
  await writeFile(planFile, (await runCli(['plan', onBase, '--json'], { env })).stdout);
  const planned = await json(['build', onBase, '--plan', planFile, '-o', join(work, 'b.oci'), '--json']);
  const self = await json(['build', onBase, '-o', join(work, 'c.oci'), '--json']);
  assert.equal(planned.digest, self.digest);
});

test('build --plan follows the plan\'s grouping, not its own', async () => {
  const planFile = join(work, 'one-layer.json');
  const plan = await json(['plan', hello, '--json']);
  const all = plan.layers.flatMap((l: { paths: string[] }) => l.paths);
  await writeFile(planFile, JSON.stringify({ ...plan, layers: [{ paths: all, reason: 'explicit', narSize: 0 }] }));
  const built = await json(['build', hello, '--plan', planFile, '-o', join(work, 'd.oci'), '--json']);
  assert.deepEqual(built.layers.map((l: { reason: string }) => l.reason), ['explicit', 'customisation']);
  assert.deepEqual(built.layers[0].storePaths, all);
});

test('a plan made for another closure is refused, naming both closures', async () => {
  const planFile = join(work, 'hello-plan.json');
  await writeFile(planFile, (await runCli(['plan', hello, '--json'], { env })).stdout);
  // The same spec over a store where one file changed size: another closure.
  const store = join(work, 'store-copy');
  await cp(join(repoRoot, 'examples/hello/store'), store, { recursive: true });
  const text = join(store, 'mnkg3va5qf67wd6pqbjgbs06v38jnh52-greeting-data-1.0/share/greeting/text');
  await writeFile(text, `${await readFile(text, 'utf8')}and more\n`);
  const r = await runCli(['build', hello, '--store', store, '--plan', planFile, '-o', join(work, 'e.oci')], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[plan\]: .*hello-plan\.json: the plan was made for another closure \(sha256:[0-9a-f]{64}, 4 paths\); this build's is sha256:[0-9a-f]{64} \(4 paths\)/);
  assert.match(r.stderr, /hint: make the plan again with `imgbuild plan <spec> --json > .*hello-plan\.json`/);
});

test('a file that is not a plan is refused with what it lacks', async () => {
  const planFile = join(work, 'not-a-plan.json');
  await writeFile(planFile, JSON.stringify({ strategy: 'auto', layers: [] }));
  const r = await runCli(['build', hello, '--plan', planFile, '-o', join(work, 'f.oci')], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error\[plan\]: .*not-a-plan\.json: not an imgbuild plan of version 1 \(no "imgbuildPlan": 1\)/);
});
