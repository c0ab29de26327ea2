// Issue 3's acceptance: images built from each store source. An image from the real Nix store
// unpacks (umoci, which checks every digest and diff_id) with the closure's files byte-identical
// to the store's; the two-step CI flow (closure file + copied store) and the scanned copy give the
// very same manifest digest as the build straight from Nix.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildImage } from '../builder/build/build-image.js';
import { writeOciLayout } from '../builder/transports/oci-layout.js';
import { loadSpec } from '../builder/spec/load.js';
import { ClosureFileStoreSource } from '../builder/store/closure-file-source.js';
import { DirectoryStoreSource } from '../builder/store/directory-source.js';
import { NixStoreSource } from '../builder/store/nix-source.js';
import type { StoreSource } from '../builder/store/types.js';
import { toolFixture } from './helpers/tools.js';
import { makeTestNix, shDrv, type TestNix } from './helpers/nix.js';

let nix: TestNix;
let app: string;
let copy: string;
let specFile: string;

/** The file's Nix store and a copy of its closure, made by the first test that needs them. */
const nixStore = toolFixture(['nix', 'nix-store', 'nix-build'], () => {
  nix = makeTestNix();
  const data = nix.add('data', {
    'share/readme': 'text\n',
    'bin/tool': { content: '#!/bin/sh\necho tool\n', executable: true },
    'share/empty': '',
    'share/link': { symlink: 'readme' },
  });
  app = nix.build(
    `let
      data = builtins.storePath ${JSON.stringify(data)};
      lib = ${shDrv('lib', 'mkdir -p $out/lib; echo ${data}/share/readme > $out/lib/conf; echo $out > $out/lib/self')};
      app = ${shDrv('app', 'mkdir -p $out/bin; printf "#!/bin/sh\\nexec ${lib}/lib/conf\\n" > $out/bin/app; chmod +x $out/bin/app; ln -s ${lib}/lib $out/libdir')};
    in { inherit app; }`,
    'app',
  );
  copy = join(nix.root, 'ci-store');
  mkdirSync(copy);
  for (const p of nix.run('nix-store', ['--query', '--requisites', app]).trim().split('\n')) {
    cpSync(p, join(copy, basename(p)), { recursive: true, verbatimSymlinks: true });
  }
  specFile = join(nix.root, 'image.json');
  writeFileSync(
    specFile,
    JSON.stringify({ name: 'store-test/app', architecture: 'amd64', tag: 'v1', store: { dir: copy, storeDir: nix.storeDir }, contents: [app], config: { Cmd: [`${app}/bin/app`] } }),
  );
});

after(() => nix?.cleanup());

async function build(store: StoreSource, tag: string): Promise<{ digest: string; oci: string }> {
  const spec = await loadSpec(specFile, {});
  const { image } = await buildImage(spec, { store, cacheDir: join(nix.root, `cache-${tag}`), concurrency: 2 });
  const oci = join(nix.root, `oci-${tag}`);
  await writeOciLayout(image, oci);
  return { digest: image.descriptor.digest, oci };
}

/** Every file under `root` as `relative path → what it is` (content, symlink target, executable bit). */
function describeTree(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const p = join(root, rel);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) out.set(rel, `symlink ${readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, 'dir');
      for (const n of readdirSync(p).sort()) walk(join(rel, n));
    } else out.set(rel, `file x=${(st.mode & 0o100) !== 0} ${readFileSync(p).toString('base64')}`);
  };
  walk('.');
  return out;
}

test('an image built from the Nix store unpacks with umoci to the closure\'s files, byte for byte', async (t) => {
  if (!(await nixStore.need(t, 'umoci'))) return;
  const { oci } = await build(await NixStoreSource.open({ env: nix.env }), 'nix');
  const bundle = join(nix.root, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${oci}:v1`, bundle], { stdio: 'pipe' });
  const closure = nix.run('nix-store', ['--query', '--requisites', app]).trim().split('\n');
  assert.equal(closure.length, 3);
  for (const p of closure) {
    assert.deepEqual(describeTree(join(bundle, 'rootfs', p)), describeTree(p), p);
  }
  // Only the closure is in the image's store dir.
  assert.deepEqual(readdirSync(join(bundle, 'rootfs', nix.storeDir)).sort(), closure.map((p) => basename(p)).sort());
});

test('two-step CI flow: the image from a closure file and a copied store has the digest of the build straight from Nix', async (t) => {
  if (!(await nixStore.need(t))) return;
  const fromNix = await build(await NixStoreSource.open({ env: nix.env }), 'nix2');
  // Step 1 (a job with Nix): export the closure. Step 2 (a job without): build from the file and the copied files.
  const file = join(nix.root, 'closure.json');
  writeFileSync(file, nix.run('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', app]));
  const fromFile = await build(await ClosureFileStoreSource.open({ closureFile: file, dir: copy, verify: true }), 'file');
  assert.equal(fromFile.digest, fromNix.digest);
  // And the scanning source on the same copy finds the same closure, hence the same image.
  const fromScan = await build(new DirectoryStoreSource(copy, nix.storeDir, { cacheDir: false }), 'scan');
  assert.equal(fromScan.digest, fromNix.digest);
});
