// `verify` of stable-layered builds (issue 18): an image built with `--previous` is rebuilt
// carrying over exactly what it carried over, so `verify --against` says reproducible; a changed
// file is still reported; `verify --previous` builds twice as `build --previous` does.
import { before, test } from 'node:test';
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

let dir: string;
let v1: string;
let v2: string;
let v2Spec: string;
let v2Digest: string;

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runCli(args);
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

async function specFor(store: string, hello: string): Promise<string> {
  const spec = join(dir, `spec-${hello.slice(0, 4)}.json`);
  await writeFile(
    spec,
    JSON.stringify({ name: 'stable/hello', tag: 'v', architecture: 'amd64', store: { dir: store }, contents: [`/nix/store/${hello}`], files: [{ path: '/etc/motd', source: 'motd.txt' }] }),
  );
  return spec;
}

/** v1 of hello, then v2 (a dependency bump) built with `--previous v1`: two store layers carried over. */
before(async () => {
  dir = await tempDir('imgbuild-verify-previous-');
  await writeFile(join(dir, 'motd.txt'), 'welcome\n');
  const v1Store = join(repoRoot, 'examples/hello/store');
  v1 = join(dir, 'v1.oci');
  const b1 = await cli(['build', await specFor(v1Store, oldHello), '-o', v1]);
  assert.equal(b1.code, 0, b1.stderr);

  const v2Store = join(dir, 'store-v2');
  await cp(v1Store, v2Store, { recursive: true, verbatimSymlinks: true });
  await writeFile(join(v2Store, oldGreeting, 'share/greeting/text'), 'Hello again, world!\n');
  await rename(join(v2Store, oldGreeting), join(v2Store, newGreeting));
  const helloBin = join(v2Store, oldHello, 'bin/hello');
  await writeFile(helloBin, (await readFile(helloBin, 'utf8')).replace(oldGreeting, newGreeting));
  await rename(join(v2Store, oldHello), join(v2Store, newHello));
  v2Spec = await specFor(v2Store, newHello);
  v2 = join(dir, 'v2.oci');
  const b2 = await cli(['build', v2Spec, '-o', v2, '--previous', v1, '--json']);
  assert.equal(b2.code, 0, b2.stderr);
  const doc = JSON.parse(b2.stdout) as { digest: string; layers: { reason: string }[] };
  assert.equal(doc.layers.filter((l) => l.reason === 'carried-over').length, 2);
  v2Digest = doc.digest;
});

test('verify --against an image built with --previous reports it reproducible (the builds carry over what it carried over)', async () => {
  // Without the carried-over layers the same spec gives another image: the record is what makes it reproducible.
  const plain = await cli(['build', v2Spec, '-o', join(dir, 'plain.oci'), '--json']);
  assert.notEqual(JSON.parse(plain.stdout).digest, v2Digest);

  const r = await cli(['verify', v2Spec, '--against', v2, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { reproducible: boolean; digest: string; previous: unknown };
  assert.equal(doc.reproducible, true);
  assert.equal(doc.digest, v2Digest);
  assert.deepEqual(doc.previous, { from: 'against', source: `oci:${v2}`, layers: 2 });
  assert.match(r.stderr, /was built with --previous: the builds carry over its 2 carried-over layer\(s\)/);
});

test('verify --against an image built with --previous, after a file changed, still reports the file', async () => {
  await cp(v2Spec, join(dir, 'spec-changed.json'));
  await writeFile(join(dir, 'motd.txt'), 'welcome, changed\n');
  try {
    const r = await cli(['verify', join(dir, 'spec-changed.json'), '--against', v2]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /NOT reproducible/);
    assert.match(r.stdout, /etc\/motd/);
    // Only the customisation layer differs: the carried-over and new store layers were rebuilt exactly.
    assert.doesNotMatch(r.stdout, /hello-2\.12\.1/);
  } finally {
    await writeFile(join(dir, 'motd.txt'), 'welcome\n');
  }
});

test('verify --previous builds twice as build --previous does: reproducible, with the digest build --previous gave', async () => {
  const r = await cli(['verify', v2Spec, '--previous', v1, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { reproducible: boolean; digest: string; builds: unknown[]; previous: unknown };
  assert.equal(doc.reproducible, true);
  assert.equal(doc.builds.length, 2);
  assert.equal(doc.digest, v2Digest);
  assert.deepEqual(doc.previous, { from: 'previous', source: v1, layers: 4 });
});
