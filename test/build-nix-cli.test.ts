// The store sources from the command line: --nix, --closure-file (the two-step CI flow),
// `closure --nix`, and includeNixDB, against a real (isolated) Nix store.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runCli, tool } from './helpers/cli.js';
import { makeTestNix, shDrv, type TestNix } from './helpers/nix.js';
import { toolFixture } from './helpers/tools.js';

let nix: TestNix;
let app: string;
let ciStore: string;

/** The file's Nix store, an app built in it and its closure exported, made by the first test that needs them. */
const nixStore = toolFixture(['nix', 'nix-store', 'nix-build'], () => {
  nix = makeTestNix();
  const data = nix.add('greeting', { 'share/text': 'hello from nix\n' });
  app = nix.build(
    `let
      data = builtins.storePath ${JSON.stringify(data)};
      app = ${shDrv('app', 'mkdir -p $out/bin; printf "#!/bin/sh\\ncat ${data}/share/text\\n" > $out/bin/app; chmod +x $out/bin/app')};
    in { inherit app; }`,
    'app',
  );
  // Step 1 of a CI flow: export the closure and copy its files into a workspace.
  ciStore = join(nix.root, 'ci-store');
  mkdirSync(ciStore);
  for (const p of nix.run('nix-store', ['--query', '--requisites', app]).trim().split('\n')) {
    cpSync(p, join(ciStore, basename(p)), { recursive: true, verbatimSymlinks: true });
  }
  writeFileSync(join(nix.root, 'closure.json'), nix.run('nix', ['path-info', '--json', '--recursive', app]));
});

after(() => nix?.cleanup());

function spec(extra: Record<string, unknown> = {}): string {
  const file = join(nix.root, `image-${Object.keys(extra).join('-') || 'plain'}.json`);
  writeFileSync(file, JSON.stringify({ name: 'nix-cli/app', architecture: 'amd64', tag: 'v1', store: { storeDir: nix.storeDir }, contents: [app], ...extra }));
  return file;
}

/** Run the CLI against the test Nix (each run with a fresh cache of its own: runCli's). */
async function cli(args: string[]) {
  const r = await runCli(args, { env: nix.env });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

test('closure --nix lists exactly what nix-store --query --requisites lists', async (t) => {
  if (!(await nixStore.need(t))) return;
  const graph = JSON.parse(await cli(['closure', spec(), '--nix', '--json']));
  const expected = nix.run('nix-store', ['--query', '--requisites', app]).trim().split('\n').sort();
  assert.deepEqual(graph.paths.map((p: { path: string }) => p.path).sort(), expected);
});

test('a build from an exported closure file and a copied store has the digest of a build from Nix', async (t) => {
  if (!(await nixStore.need(t))) return;
  const fromNix = JSON.parse(await cli(['build', spec(), '--nix', '-o', join(nix.root, 'from-nix.oci'), '--json']));
  const fromFile = JSON.parse(
    await cli(['build', spec(), '--closure-file', join(nix.root, 'closure.json'), '--store', ciStore, '--verify-store', '-o', join(nix.root, 'from-file.oci'), '--json']),
  );
  assert.equal(fromFile.digest, fromNix.digest);
});

test('includeNixDB registers every closure path in the image’s Nix database', async (t) => {
  if (!(await nixStore.need(t, 'umoci', 'sqlite3'))) return;
  const out = join(nix.root, 'with-db.oci');
  await cli(['build', spec({ includeNixDB: true }), '--nix', '-o', out]);
  const bundle = join(nix.root, 'with-db-bundle');
  await tool('umoci', ['unpack', '--image', `${out}:v1`, bundle]);
  const db = join(bundle, 'rootfs/nix/var/nix/db/db.sqlite');
  const registered = (await tool('sqlite3', [db, 'select path from ValidPaths order by path'])).trim().split('\n');
  assert.deepEqual(registered, nix.run('nix-store', ['--query', '--requisites', app]).trim().split('\n').sort());
});
